/*
 * inifile.h: read an INI file (with inih) so that every problem is
 * reported as "FILE:LINE: message" with the right physical line, and all
 * of them are reported in one run.  Used by lib/config.c
 * (ketenpostd.conf) and lib/policy.c (the chain policy).
 *
 * The reader owns the syntax: over-long lines, NUL bytes, lines that are
 * not `key = value`, `[section]` or a comment, section headers without
 * ']', indented continuation lines (refused: values are one line), a
 * UTF-8 BOM and CRLF line ends (accepted).  The caller owns the meaning:
 * a section callback accepts or refuses each header, a key callback gets
 * every key = value with its line and reports its own problems through
 * inifile_problem(), which counts them with the reader's own.
 *
 * Use:
 *   ini = inifile_new(path, KP_ERR_POLICY, report, arg, err);
 *   if (inifile_read(ini) == 0) {          // whole file, mode checked
 *           inifile_parse(ini, on_section, on_key, state);
 *           ... whole-file checks, inifile_problem(ini, 0, ...) ...
 *   }
 *   n = inifile_problems(ini);
 *   inifile_destroy(&ini);
 */
#ifndef KP_INIFILE_H
#define KP_INIFILE_H

#include <stddef.h>
#include <stdint.h>

#include "kperr.h"

/* Largest file inifile_read() accepts. */
#define INIFILE_MAX_FILE (1024 * 1024)

typedef struct inifile inifile_t;

/*
 * A well-formed "[name]" header on line lineno (name exactly as between
 * the brackets, spaces kept).  0: the section's keys go to the key
 * callback; -1: they are skipped silently (the callback reports why).
 */
typedef int (*inifile_section_fn)(void *arg, const char *name, int lineno);

/*
 * One `key = value` of an accepted section on line lineno; section is ""
 * for keys before the first header.  Key and value are stripped of
 * spaces and of an inline " ; comment".  Problems go to inifile_problem().
 */
typedef void (*inifile_key_fn)(void *arg, const char *section,
    const char *key, const char *value, int lineno);

/*
 * A reader for `path` (borrowed: it must outlive the reader; it is the
 * FILE of every report).  `code` is the kp_code given to err for problems
 * in the file's content and mode (the file's own kind of error, e.g.
 * KP_ERR_POLICY); an unreadable file is KP_ERR_IO.  report(report_arg,
 * line) gets every problem as one line and may be NULL.  err (may be
 * NULL) is cleared now and gets the first problem.  NULL (and err
 * KP_ERR_NOMEM) if out of memory.
 */
inifile_t *inifile_new(const char *path, int code,
    void (*report)(void *arg, const char *line), void *report_arg,
    kp_err_t *err);
void inifile_destroy(inifile_t **self_p);

/*
 * Read the whole file (a regular file of at most INIFILE_MAX_FILE bytes)
 * and check that it is not writable by group or others: whoever can
 * write it decides what the daemon trusts.  0 / -1 when it could not be
 * read (reported); a bad mode is reported but the file is still read, so
 * one run shows every problem.
 */
int inifile_read(inifile_t *self) __attribute__((warn_unused_result));

/*
 * Parse what inifile_read() read, calling section (may be NULL: every
 * section accepted) and key for each line in file order.  0 if there is
 * no problem so far (the caller's included), else -1.
 */
int inifile_parse(inifile_t *self, inifile_section_fn section,
    inifile_key_fn key, void *arg);

/* Report one problem at line (0: the whole file, "FILE: message") and
 * count it; the first one goes to err with `code`. */
void inifile_problem(inifile_t *self, int line, int code, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

/* Problems reported so far. */
int inifile_problems(const inifile_t *self);

/* The bytes inifile_read() read (NUL terminated, the NUL not in *len),
 * owned by the reader; NULL before a successful read. */
const uint8_t *inifile_data(const inifile_t *self, size_t *len);

/* "500ms", "30s", "5m", "12h", "90d" into milliseconds; 0 / -1 (also on
 * overflow).  No spaces, no sign, no fractions, no other units. */
int inifile_duration(const char *text, uint64_t *ms);

#endif
