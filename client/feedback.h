/*
 * feedback.h: what the officer's commands (feedback.c, todo.c, report
 * parts) share inside the client.  Internal to the client.
 */
#ifndef KP_CLIENT_FEEDBACK_H
#define KP_CLIENT_FEEDBACK_H

#include <stddef.h>

#include <jansson.h>

#include "cmdutil.h"

/* Send req and return the answer's result `want` in its JSON form (every
 * message inside it too, ids as UUID text, times beside their *_ms).  0
 * with *out (the caller's), or an exit status after the message. */
int fb_ask(const struct cmd_ctx *x, const Kp__Request *req,
    Kp__Response__ResultCase want, json_t **out);

/* A text table whose columns are as wide as their widest cell (UTF-8
 * characters, never cut).  Rows are copied. */
struct fb_table {
	size_t ncols, nrows;
	char **cells;                 /* nrows * ncols */
	size_t *width;
	int failed;
};
void fb_table_init(struct fb_table *t, size_t ncols);
void fb_table_row(struct fb_table *t, const char *const *cells);
/* Print with `indent` spaces before each row; frees the table. */
void fb_table_print(struct fb_table *t, int indent);
void fb_table_free(struct fb_table *t);
/* An ISO 8601 UTC option value (--at, --from, --to) into *ms, *has set;
 * 0, or a usage error naming cmd and opt. */
int fb_time_opt(const char *cmd, const char *opt, const char *arg, bool *has,
    uint64_t *ms);

/* remind --all-overdue: every overdue expectation of the work list. */
int fb_remind_all(const struct cmd_ctx *x);

#endif
