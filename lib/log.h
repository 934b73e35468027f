/*
 * log.h: the one logging API (after OpenSMTPD's log.c).
 *
 * Lines go to stderr, one per call, prefixed with a syslog priority marker
 * ("<4>") when stderr is the journal, so journald keeps the level.  Never
 * pass key material or payload content to these functions.  errno is kept.
 */
#ifndef KP_LOG_H
#define KP_LOG_H

void log_init(const char *progname, int verbose);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
