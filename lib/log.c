/*
 * log.c: stderr logging, journald-friendly.  Settings are fixed at start-up
 * by log_init() and are the only file-scope state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *s_progname = "ketenpost";
static int s_verbose;
static int s_journal; /* stderr is connected to journald: use <N> prefixes */

void
log_init(const char *progname, int verbose)
{
	s_progname = progname;
	s_verbose = verbose;
	s_journal = getenv("JOURNAL_STREAM") != NULL;
}

static void
s_vlog(int prio, const char *tag, const char *fmt, va_list ap, int with_errno)
{
	int saved = errno;
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (s_journal)
		fprintf(stderr, "<%d>%s%s%s%s\n", prio, tag, line,
		    with_errno ? ": " : "", with_errno ? strerror(saved) : "");
	else
		fprintf(stderr, "%s: %s%s%s%s\n", s_progname, tag, line,
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

void
fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	s_vlog(2, "fatal: ", fmt, ap, 1);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	s_vlog(2, "fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(1);
}
