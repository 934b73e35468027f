/*
 * inifile.c: the line-tracking INI reader (see inifile.h).
 *
 * The file is read whole into memory and handed to inih line by line
 * through our own ini_reader (s_reader), never with ini_parse().  Debian's
 * libinih is built without INI_HANDLER_LINENO, so the handler is not told
 * the line; the reader is, because inih asks for exactly one line, parses
 * it and calls the handler for it before it asks for the next.  Counting
 * in the reader also fixes two ways inih's own count goes wrong: a line
 * longer than ini_max_line (200) is split by fgets() into several "lines",
 * and only the first syntax error is returned.  So the reader:
 *   1. hands out one physical line at a time and counts it (s_next_line);
 *      an over-long line or one with a NUL byte is reported and handed to
 *      inih as an empty line, so nothing of it is parsed;
 *   2. classifies it the way inih will (s_classify): blank or comment,
 *      [section] header (checked here, by the caller's section callback:
 *      inih does not tell the handler about sections, so an unknown or
 *      malformed header would otherwise go unnoticed), an indented
 *      continuation of the previous value, or a key = value line;
 *   3. on the next call checks that a line that had to reach the handler
 *      did (s_line_done); if inih found no '=' or ':' it never does, and
 *      that is reported as a syntax error on that line.
 * The rejected alternative, ini_parse_string() once per line, loses the
 * section and the continuation state between calls.
 *
 * This module owns the syntax and the counting of problems; it must never
 * interpret a key, never stop at the first problem, and never read more
 * than INIFILE_MAX_FILE bytes.  It keeps no state outside an inifile_t.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "inifile.h"

enum s_kind { S_BLANK, S_SECTION, S_KEY, S_CONT };

struct inifile {
	const char *file;            /* as given: used in every message */
	int code;                    /* kp_code of problems in the content */
	void (*report)(void *, const char *);
	void *report_arg;
	kp_err_t *err;
	int n;                       /* problems so far */
	char *buf;                   /* the whole file, NUL terminated */
	size_t len, pos;
	/* One inifile_parse() run. */
	inifile_section_fn on_section;
	inifile_key_fn on_key;
	void *arg;
	int lineno;                  /* of the line inih is parsing */
	enum s_kind kind;            /* of that line */
	int handled;                 /* handler calls for that line */
	int prev_key;                /* inih has a previous key to continue */
	int skip_section;            /* in a refused or malformed section */
};

/* ---- problems ---------------------------------------------------- */

void
inifile_problem(inifile_t *self, int line, int code, const char *fmt, ...)
{
	char msg[512], out[4096 + 600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(out, sizeof(out), "%s:%d: %s", self->file, line, msg);
	else
		snprintf(out, sizeof(out), "%s: %s", self->file, msg);
	if (self->report != NULL)
		self->report(self->report_arg, out);
	if (self->n++ == 0)
		kp_fail(self->err, code, "%s", out);
}

int
inifile_problems(const inifile_t *self)
{
	return self->n;
}

/* ---- values ------------------------------------------------------ */

int
inifile_duration(const char *text, uint64_t *ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 24ULL * 3600000 },
	};
	uint64_t n = 0;
	const char *p = text;
	size_t i;

	if (text == NULL || ms == NULL || !isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++)
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
			return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (__builtin_mul_overflow(n, units[i].ms, &n))
			return -1;
		*ms = n;
		return 0;
	}
	return -1;
}

/* ---- inih handler ------------------------------------------------ */

/* One name = value of the line self->lineno.  Always 1: we report. */
static int
s_handler(void *user, const char *section, const char *name,
    const char *value)
{
	inifile_t *self = user;

	self->handled++;
	if (self->kind == S_CONT) {
		if (!self->skip_section)
			inifile_problem(self, self->lineno, self->code,
			    "indented line continues the value of '%.40s'; "
			    "values are one line (remove the indentation)",
			    name);
		return 1;
	}
	self->prev_key = 1;
	if (!self->skip_section && self->on_key != NULL)
		self->on_key(self->arg, section, name, value, self->lineno);
	return 1;
}

/* ---- the reader: one physical line per call ---------------------- */

/* Like inih: the first of `chars`, or of an inline ';' after a space. */
static const char *
s_find_chars_or_comment(const char *s, const char *chars)
{
	int was_space = 0;

	while (*s != '\0' && strchr(chars, *s) == NULL &&
	    !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/* A [section] header at p (inih's rules: ']' before any inline comment). */
static void
s_section(inifile_t *self, const char *p)
{
	const char *end = s_find_chars_or_comment(p + 1, "]");
	char name[INI_MAX_LINE + 1];
	size_t len = (size_t)(end - p - 1);

	self->skip_section = 1;
	if (*end != ']') {
		inifile_problem(self, self->lineno, self->code,
		    "section header has no closing ']'");
		return;
	}
	self->prev_key = 0;
	if (len >= sizeof(name))
		len = sizeof(name) - 1;
	memcpy(name, p + 1, len);
	name[len] = '\0';
	if (self->on_section == NULL ||
	    self->on_section(self->arg, name, self->lineno) == 0)
		self->skip_section = 0;
}

/* What inih will make of `line` (as handed to it); sections handled. */
static enum s_kind
s_classify(inifile_t *self, const char *line)
{
	const char *p = line;

	if (self->lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == ';' || *p == '#')
		return S_BLANK;
	if (self->prev_key && p > line)
		return S_CONT;
	if (*p == '[') {
		s_section(self, p);
		return S_SECTION;
	}
	return S_KEY;
}

/* The line inih just parsed had to reach the handler: did it? */
static void
s_line_done(inifile_t *self)
{
	if ((self->kind == S_KEY || self->kind == S_CONT) &&
	    self->handled == 0)
		inifile_problem(self, self->lineno, self->code, "syntax error: "
		    "expected 'key = value', '[section]' or a comment");
	self->kind = S_BLANK;
	self->handled = 0;
}

/* Copy the next physical line (no newline) to str, or "" if unusable. */
static void
s_next_line(inifile_t *self, char *str, int num)
{
	const char *line = self->buf + self->pos;
	const char *nl = memchr(line, '\n', self->len - self->pos);
	size_t len = nl ? (size_t)(nl - line) : self->len - self->pos;

	self->pos += len + (nl != NULL);
	self->lineno++;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	str[0] = '\0';
	if (memchr(line, '\0', len) != NULL)
		inifile_problem(self, self->lineno, self->code,
		    "line contains a NUL byte");
	else if (num < 1 || len > (size_t)num - 1)
		inifile_problem(self, self->lineno, self->code, "line is %zu "
		    "characters long; at most %d are allowed", len, num - 1);
	else {
		memcpy(str, line, len);
		str[len] = '\0';
	}
}

static char *
s_reader(char *str, int num, void *stream)
{
	inifile_t *self = stream;

	s_line_done(self);
	if (self->pos >= self->len)
		return NULL;
	s_next_line(self, str, num);
	self->kind = s_classify(self, str);
	return str;
}

int
inifile_parse(inifile_t *self, inifile_section_fn section,
    inifile_key_fn key, void *arg)
{
	int rc;

	if (self->buf == NULL)
		return -1;
	self->on_section = section;
	self->on_key = key;
	self->arg = arg;
	self->pos = 0;
	self->lineno = 0;
	self->kind = S_BLANK;
	self->handled = 0;
	self->prev_key = 0;
	self->skip_section = 0;
	rc = ini_parse_stream(s_reader, self, s_handler, self);
	/* Belt and braces: inih saw an error that s_line_done() did not. */
	if (rc != 0 && self->n == 0)
		inifile_problem(self, rc > 0 ? rc : 0, self->code,
		    "inih could not parse this (error %d)", rc);
	return self->n == 0 ? 0 : -1;
}

/* ---- whole file -------------------------------------------------- */

/* Read fd (st_size bytes) into self->buf; 0 / -1 reported. */
static int
s_read_all(inifile_t *self, int fd, size_t size)
{
	ssize_t r = 0;
	size_t len;

	if ((self->buf = malloc(size + 1)) == NULL) {
		inifile_problem(self, 0, KP_ERR_NOMEM, "out of memory");
		return -1;
	}
	for (len = 0; len < size; len += (size_t)r)
		if ((r = read(fd, self->buf + len, size - len)) <= 0)
			break;
	if (len < size) {
		inifile_problem(self, 0, KP_ERR_IO, "cannot read: %s",
		    r == 0 ? "file shrank while reading" : strerror(errno));
		free(self->buf);
		self->buf = NULL;
		return -1;
	}
	self->buf[len] = '\0';
	self->len = len;
	return 0;
}

int
inifile_read(inifile_t *self)
{
	struct stat sb;
	int fd, rc = -1;

	free(self->buf);
	self->buf = NULL;
	self->len = 0;
	if ((fd = open(self->file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1 ||
	    fstat(fd, &sb) == -1) {
		inifile_problem(self, 0, KP_ERR_IO, "cannot read: %s",
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > INIFILE_MAX_FILE) {
		inifile_problem(self, 0, KP_ERR_IO, "is not a regular file of "
		    "at most %d bytes", INIFILE_MAX_FILE);
		goto out;
	}
	if (sb.st_mode & (S_IWGRP | S_IWOTH))
		inifile_problem(self, 0, self->code, "is writable by group or "
		    "others (mode %04o); run chmod go-w on it",
		    (unsigned)(sb.st_mode & 07777));
	rc = s_read_all(self, fd, (size_t)sb.st_size);
out:
	if (fd != -1)
		close(fd);
	return rc;
}

const uint8_t *
inifile_data(const inifile_t *self, size_t *len)
{
	if (len != NULL)
		*len = self->buf != NULL ? self->len : 0;
	return (const uint8_t *)self->buf;
}

/* ---- life cycle -------------------------------------------------- */

inifile_t *
inifile_new(const char *path, int code,
    void (*report)(void *arg, const char *line), void *report_arg,
    kp_err_t *err)
{
	inifile_t *self;

	kp_err_clear(err);
	if (path == NULL) {
		kp_fail(err, KP_ERR_INVALID_ARG, "inifile_new: no path");
		return NULL;
	}
	if ((self = calloc(1, sizeof(*self))) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "%s: out of memory", path);
		return NULL;
	}
	self->file = path;
	self->code = code;
	self->report = report;
	self->report_arg = report_arg;
	self->err = err;
	return self;
}

void
inifile_destroy(inifile_t **self_p)
{
	if (self_p == NULL || *self_p == NULL)
		return;
	free((*self_p)->buf);
	free(*self_p);
	*self_p = NULL;
}
