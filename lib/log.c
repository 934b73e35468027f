/*
 * log.c: stderr logging, journald-friendly, and the structured line about
 * one event (log_event) sent natively to the journal under systemd.
 * Settings are fixed at start-up by log_init() and are the only
 * file-scope state.  This module knows no daemon: it formats what it is
 * given.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"

static const char *s_progname = "ketenpost";
static int s_verbose;
static int s_journal; /* stderr is connected to journald: use <N> prefixes */
static int s_native;  /* and journald's native socket is there */

/* This thread's stderr lines while it holds them (log_hold): written
 * with one call when the buffer is full and at log_release.  Per thread,
 * so another thread's lines are never held, nor written into this one's
 * buffer. */
#define LOG_HELD_MAX 16384
static _Thread_local struct {
	int on;
	size_t len;
	char buf[LOG_HELD_MAX];
} s_held;

static void
s_held_flush(void)
{
	if (s_held.len > 0)
		(void)fwrite(s_held.buf, 1, s_held.len, stderr);
	s_held.len = 0;
}

/* One whole line of len bytes (with its newline), made: to stderr in
 * one call, or into the held lines. */
static void
s_text(const char *line, size_t len)
{
	if (s_held.on) {
		if (len < LOG_HELD_MAX - s_held.len) {
			memcpy(s_held.buf + s_held.len, line, len);
			s_held.len += len;
			return;
		}
		s_held_flush();
	}
	(void)fwrite(line, 1, len, stderr);
}

/* One whole line (with its newline) to stderr, or into the held lines. */
static void __attribute__((format(printf, 1, 2)))
s_line(const char *fmt, ...)
{
	size_t room = LOG_HELD_MAX - s_held.len;
	va_list ap;
	int n;

	if (s_held.on) {
		va_start(ap, fmt);
		n = vsnprintf(s_held.buf + s_held.len, room, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < room) {
			s_held.len += (size_t)n;
			return;
		}
		s_held_flush();       /* did not fit: what is held first */
	}
	va_start(ap, fmt);
	(void)vfprintf(stderr, fmt, ap);
	va_end(ap);
}

void
log_hold(void)
{
	s_held.on = !s_native;   /* native journal lines are never held */
}

void
log_release(void)
{
	int saved = errno;

	s_held_flush();
	s_held.on = 0;
	errno = saved;
}

void
log_init(const char *progname, int verbose)
{
	s_progname = progname;
	s_verbose = verbose;
	s_journal = log_to_journal();
	/* sd_journal_sendv drops a message silently (returns 0) when the
	 * socket is missing, e.g. in a chroot: then stay on stderr */
	s_native = s_journal &&
	    access("/run/systemd/journal/socket", W_OK) == 0;
}

/*
 * systemd sets JOURNAL_STREAM to "DEVICE:INODE" of the stream it connects
 * stdout/stderr to; only if that is still stderr (not redirected since)
 * are we talking to journald.
 */
int
log_to_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (v == NULL || sscanf(v, "%llu:%llu%c", &dev, &ino, &tail) != 2 ||
	    fstat(2, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

static void
s_vlog(int prio, const char *tag, const char *fmt, va_list ap, int with_errno)
{
	int saved = errno;
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (s_journal)
		s_line("<%d>%s%s%s%s\n", prio, tag, line,
		    with_errno ? ": " : "", with_errno ? strerror(saved) : "");
	else
		s_line("%s: %s%s%s%s\n", s_progname, tag, line,
		    with_errno ? ": " : "", with_errno ? strerror(saved) : "");
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	s_vlog(4, "warn: ", fmt, ap, 1);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	s_vlog(4, "warn: ", fmt, ap, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	s_vlog(6, "", fmt, ap, 0);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;
	if (s_verbose < 1)
		return;
	va_start(ap, fmt);
	s_vlog(7, "debug: ", fmt, ap, 0);
	va_end(ap);
}

/* "NAME=value" into f, value cut to fit, control characters as '?'. */
static void
s_field(char *f, const char *name, const char *value)
{
	size_t o = (size_t)snprintf(f, LOG_FIELD_MAX, "%s=", name), i;

	for (i = 0; value[i] != '\0' && o + 1 < LOG_FIELD_MAX; i++)
		f[o++] = (unsigned char)value[i] < 0x20 || value[i] == 0x7f ?
		    '?' : value[i];
	f[o] = '\0';
}

size_t
log_event_fields(char (*fields)[LOG_FIELD_MAX], size_t max, int prio,
    const char *event_id, const char *partner, const char *reason,
    const char *msg)
{
	char p[8];
	size_t n = 0;

	if (max < 6)
		return 0;
	snprintf(p, sizeof(p), "%d", prio);
	s_field(fields[n++], "MESSAGE", msg);
	s_field(fields[n++], "PRIORITY", p);
	s_field(fields[n++], "SYSLOG_IDENTIFIER", s_progname);
	if (event_id != NULL)
		s_field(fields[n++], "EVENT_ID", event_id);
	if (partner != NULL)
		s_field(fields[n++], "PARTNER_OIN", partner);
	if (reason != NULL)
		s_field(fields[n++], "REASON", reason);
	return n;
}

static const char *
s_tag(int prio)
{
	return prio <= 3 ? "error: " : prio == 4 ? "warn: " :
	    prio == 7 ? "debug: " : "";
}

/* Up to cap - 1 bytes of src at dst + *o; *o advanced. */
static void
s_put(char *dst, size_t cap, size_t *o, const char *src)
{
	size_t n = strnlen(src, cap - 1 - *o);

	memcpy(dst + *o, src, n);
	*o += n;
	dst[*o] = '\0';
}

/* One event line, its message made: natively to the journal, else one
 * stderr line put together by copying (log_event's three formatting
 * passes per line were 2% of a loop that logs every event). */
static void
s_event(int prio, const char *event_id, const char *partner,
    const char *reason, const char *msg)
{
	char fields[6][LOG_FIELD_MAX], line[1100], marker[16];
	struct iovec iov[6];
	size_t n, i, o = 0;

	if (s_native) {
		n = log_event_fields(fields, 6, prio, event_id, partner,
		    reason, msg);
		for (i = 0; i < n; i++)
			iov[i] = (struct iovec){ fields[i], strlen(fields[i]) };
		if (sd_journal_sendv(iov, (int)n) == 0)
			return;
	}
	if (s_journal) {
		snprintf(marker, sizeof(marker), "<%d>", prio);
		s_put(line, sizeof(line) - 1, &o, marker);
	} else {
		s_put(line, sizeof(line) - 1, &o, s_progname);
		s_put(line, sizeof(line) - 1, &o, ": ");
	}
	s_put(line, sizeof(line) - 1, &o, s_tag(prio));
	s_put(line, sizeof(line) - 1, &o, msg);
	line[o++] = '\n';
	s_text(line, o);
}

void
log_event(int prio, const char *event_id, const char *partner,
    const char *reason, const char *fmt, ...)
{
	int saved = errno;
	char msg[1024];
	va_list ap;

	if (prio >= 7 && s_verbose < 1)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s_event(prio, event_id, partner, reason, msg);
	errno = saved;
}

void
log_event_text(int prio, const char *event_id, const char *partner,
    const char *reason, const char *text, const char *suffix)
{
	int saved = errno;
	char msg[1024];
	size_t o = 0;

	if (prio >= 7 && s_verbose < 1)
		return;
	msg[0] = '\0';
	s_put(msg, sizeof(msg), &o, text);
	if (suffix != NULL)
		s_put(msg, sizeof(msg), &o, suffix);
	s_event(prio, event_id, partner, reason, msg);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	log_release();
	va_start(ap, fmt);
	s_vlog(2, "fatal: ", fmt, ap, 1);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;
	log_release();
	va_start(ap, fmt);
	s_vlog(2, "fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(1);
}
