/*
 * log.h: the one logging API (after OpenSMTPD's log.c).
 *
 * Lines go to stderr, one per call (or held and written together:
 * log_hold), prefixed with a syslog priority marker
 * ("<4>") when stderr is the journal, so journald keeps the level.  Never
 * pass key material or payload content to these functions.  errno is kept.
 *
 * log_event is the line about one event: when stderr is the journal it is
 * sent natively (sd_journal_sendv) with the fields EVENT_ID, PARTNER_OIN
 * and REASON besides MESSAGE, PRIORITY and SYSLOG_IDENTIFIER, so
 * `journalctl EVENT_ID=...` finds one event's story; otherwise (a
 * foreground run, or the journal refusing) it is an ordinary stderr line.
 * Never a case reference or a payload value in any field.
 */
#ifndef KP_LOG_H
#define KP_LOG_H

#include <stddef.h>
#include <syslog.h>   /* LOG_INFO, LOG_WARNING for log_event */

void log_init(const char *progname, int verbose);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* prio is a syslog level (LOG_INFO, LOG_WARNING, ...); event_id, partner
 * and reason may each be NULL (that field is left out). */
void log_event(int prio, const char *event_id, const char *partner,
    const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* log_event of a message already made: text, then suffix (may be NULL). */
void log_event_text(int prio, const char *event_id, const char *partner,
    const char *reason, const char *text, const char *suffix);
/*
 * The journal fields of one log_event line, "NAME=value" each, into
 * fields[0..max) of LOG_FIELD_MAX bytes; values are cut to fit and control
 * characters replaced by '?'.  Returns the number of fields (0 if max
 * is below 6, the most there can be; for tests).
 */
#define LOG_FIELD_MAX 1100
size_t log_event_fields(char (*fields)[LOG_FIELD_MAX], size_t max, int prio,
    const char *event_id, const char *partner, const char *reason,
    const char *msg);
/*
 * Hold this thread's stderr lines from now on and write them with one
 * call at log_release (or sooner, when 16 KiB are held): a pass of a
 * thousand event lines was a thousand write(2) calls.  Same lines, same
 * order; lines sent natively to the journal are not held (nothing is
 * held under systemd's native journal).  Release before anything that
 * may take long or exit (fatal releases the calling thread's lines).
 * Limits: held lines are lost if the process dies before the release
 * (a crash, or fatal on another thread); holds do not nest (a release
 * ends the hold); each thread has its own 16 KiB buffer.
 */
void log_hold(void);
void log_release(void);
/* Is stderr the journal ($JOURNAL_STREAM names stderr's device:inode)? */
int log_to_journal(void);
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
