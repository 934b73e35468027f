/*
 * todo.c: the attendance officer's work list (ketenpost todo) — every
 * answer expected from a partner that is overdue or due within N days,
 * the most urgent first, with what to do next (wait, remind, escalate,
 * follow up) — and reminding the whole list at once (remind
 * --all-overdue).  Also the text tables of the officer's commands, whose
 * columns grow with their content so that no name is ever cut.
 *
 * Human output is in the language of labels.c; --json prints the
 * TodoResponse with its stable codes and ISO 8601 times.  Never decides
 * anything itself: the next step and the escalation come from the daemon
 * (the chain policy's escalation step, daemon/feedback.c).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cli.h"
#include "cmdutil.h"
#include "events.pb-c.h"
#include "feedback.h"
#include "labels.h"
#include "util.h"

/* ---- tables ---- */

/* Characters (not bytes) of UTF-8 text s. */
static size_t
s_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

void
fb_table_init(struct fb_table *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	if ((t->width = calloc(ncols, sizeof(size_t))) == NULL)
		t->failed = 1;
}

void
fb_table_row(struct fb_table *t, const char *const *cells)
{
	char **grown;
	size_t i, w;

	if (t->failed)
		return;
	grown = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
	if (grown == NULL) {
		t->failed = 1;
		return;
	}
	t->cells = grown;
	for (i = 0; i < t->ncols; i++) {
		grown[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] :
		    "-");
		if (grown[t->nrows * t->ncols + i] == NULL)
			t->failed = 1;
		else if ((w = s_chars(cells[i] ? cells[i] : "-")) > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
}

void
fb_table_print(struct fb_table *t, int indent)
{
	size_t r, c, pad;
	const char *cell;

	for (r = 0; r < t->nrows && !t->failed; r++) {
		printf("%*s", indent, "");
		for (c = 0; c < t->ncols; c++) {
			cell = t->cells[r * t->ncols + c];
			fputs(cell, stdout);
			if (c + 1 == t->ncols)
				break;
			for (pad = s_chars(cell); pad < t->width[c] + 2; pad++)
				fputc(' ', stdout);
		}
		fputc('\n', stdout);
	}
	if (t->failed)
		fprintf(stderr, "ketenpost: out of memory printing a table\n");
	fb_table_free(t);
}

void
fb_table_free(struct fb_table *t)
{
	size_t r;

	for (r = 0; r < t->nrows * t->ncols && t->cells != NULL; r++)
		free(t->cells[r]);
	free(t->cells);
	free(t->width);
	memset(t, 0, sizeof(*t));
}

/* ---- todo ---- */

struct todo_args {
	bool json;
	bool has_days;
	uint32_t days;
	bool has_at;
	uint64_t at;
};

static const char s_todo_help[] =
"usage: ketenpost todo [--days N] [--at TIME] [--json] [--lang nl|en]\n"
"                      [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"The officer's work list: every answer expected from a partner that is\n"
"overdue, or due within N days (default 7, at most 365), the most urgent\n"
"first: the case, the partner, the answer expected, its due date, days\n"
"overdue, the reminders sent and the last one's date, and the next step:\n"
"wait, remind (ketenpost remind), escalate (the chain policy's escalation\n"
"step: the next reminder is the escalation) or follow up (escalated).\n"
"--at TIME (ISO 8601 UTC) as of then instead of now.  --json prints the\n"
"TodoResponse as a JSON object (stable codes, ISO 8601 times).\n";

static int
s_todo_opt(void *args, int c, const char *arg, const char *cmd)
{
	struct todo_args *a = args;
	char *end;
	unsigned long n;

	switch (c) {
	case 'J': a->json = true; return 0;
	case 'd':
		n = strtoul(arg, &end, 10);
		if (*arg == '\0' || *arg == '-' || *end != '\0' || n > 365)
			return cli_usage_error(cmd, "--days '%s' is not a "
			    "number of days from 0 to 365", arg);
		a->has_days = true;
		a->days = (uint32_t)n;
		return 0;
	case 't':
		if (kp_time_parse(arg, &a->at) != 0)
			return cli_usage_error(cmd, "--at '%s' is not an ISO "
			    "8601 UTC time like 2027-01-31T00:00:00Z", arg);
		a->has_at = true;
		return 0;
	default: return cli_usage_error(cmd, "bad option");
	}
}

static const struct option s_todo_opts[] = {
	{ "json", 0, NULL, 'J' }, { "days", 1, NULL, 'd' },
	{ "at", 1, NULL, 't' }, CMD_API_OPTIONS };

static const struct cmd_spec s_todo_spec = {
	"todo", s_todo_help, s_todo_opts, s_todo_opt, 0, 0,
	"takes no arguments"
};

static int
s_todo_ask(const struct cmd_ctx *x, bool has_days, uint32_t days,
    bool has_at, uint64_t at, json_t **o)
{
	Kp__TodoRequest q = KP__TODO_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;

	q.has_days = has_days;
	q.days = days;
	q.has_at_ms = has_at;
	q.at_ms = at;
	req.op_case = KP__REQUEST__OP_TODO;
	req.todo = &q;
	return fb_ask(x, &req, KP__RESPONSE__RESULT_TODO, o);
}

static uint64_t
s_ms(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

/* A partner as people know it: the name, else the OIN. */
static const char *
s_who(const json_t *o)
{
	const char *name = cmd_str(o, "partner_name");

	return strcmp(name, "-") != 0 ? name : cmd_str(o, "partner_oin");
}

/* "12" days overdue, or "in 3 d" when not yet due. */
static const char *
s_overdue_text(const json_t *it, char *buf, size_t len)
{
	json_int_t d = json_integer_value(json_object_get(it, "days_overdue"));

	if (d >= 0)
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, d);
	else
		snprintf(buf, len, ngettext("in %d day", "in %d days",
		    (unsigned long)-d), (int)-d);
	return buf;
}

/* The next step, "(escalated)" beside it when an escalation was sent. */
static const char *
s_step_text(const json_t *it, char *buf, size_t len)
{
	const char *step = label_code(&kp__next_step__descriptor,
	    cmd_str(it, "next_step"));

	if (json_is_true(json_object_get(it, "escalated")))
		snprintf(buf, len, "%s (%s)", step, _("escalated"));
	else
		snprintf(buf, len, "%s", step);
	return buf;
}

static void
s_todo_row(struct fb_table *t, const json_t *it)
{
	char due[32], od[32], rem[24], last[32], step[96], what[160];
	const char *cells[8];

	snprintf(what, sizeof(what), "%s%s", label_code(
	    &kp__event_type__descriptor, cmd_str(it, "answer_type")),
	    json_is_true(json_object_get(it, "interim")) ? _(" (final)") : "");
	snprintf(rem, sizeof(rem), "%" PRIu64, s_ms(it, "reminders"));
	cells[0] = cmd_str(it, "case_ref");
	cells[1] = s_who(it);
	cells[2] = what;
	cells[3] = label_date(s_ms(it, "due_at_ms"), due, sizeof(due));
	cells[4] = s_overdue_text(it, od, sizeof(od));
	cells[5] = rem;
	cells[6] = label_date(s_ms(it, "last_reminder_at_ms"), last,
	    sizeof(last));
	cells[7] = s_step_text(it, step, sizeof(step));
	fb_table_row(t, cells);
}

static void
s_todo_print(const json_t *o)
{
	const json_t *items = json_object_get(o, "items"), *it;
	const char *head[8];
	struct fb_table t;
	char at[32];
	size_t i, n = json_array_size(items);
	unsigned long days = (unsigned long)s_ms(o, "days");

	label_date(s_ms(o, "at_ms"), at, sizeof(at));
	if (n == 0) {
		printf(ngettext("Nothing to do on %s: no answer overdue or due "
		    "within %lu day.\n", "Nothing to do on %s: no answer "
		    "overdue or due within %lu days.\n", days), at, days);
		return;
	}
	printf(ngettext("Work list of %s: %zu answer overdue or due within "
	    "%lu days.\n\n", "Work list of %s: %zu answers overdue or due "
	    "within %lu days.\n\n", n), at, n, days);
	head[0] = _("CASE");
	head[1] = _("PARTNER");
	head[2] = _("EXPECTED");
	head[3] = _("DUE");
	head[4] = _("DAYS OVERDUE");
	head[5] = _("REMINDERS");
	head[6] = _("LAST REMINDER");
	head[7] = _("NEXT STEP");
	fb_table_init(&t, 8);
	fb_table_row(&t, head);
	json_array_foreach(items, i, it)
		s_todo_row(&t, it);
	fb_table_print(&t, 0);
}

int
cmd_todo(int argc, char **argv)
{
	struct todo_args a;
	struct cmd_ctx x;
	json_t *o;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_todo_spec, argc, argv, &x, &a)) != 0)
		return rc;
	if ((rc = s_todo_ask(&x, a.has_days, a.days, a.has_at, a.at,
	    &o)) != 0)
		return rc;
	if (a.json)
		cli_print_json(o);
	else
		s_todo_print(o);
	json_decref(o);
	return 0;
}

/* ---- remind --all-overdue ---- */

/* Remind case `ref` (every overdue partner on it); print what was sent. */
static int
s_remind_case(const struct cmd_ctx *x, const json_t *items, const char *ref,
    size_t *sent)
{
	Kp__RemindRequest q = KP__REMIND_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	const json_t *it, *id;
	json_t *o;
	size_t i;
	int rc;

	q.case_ref = (char *)ref;
	req.op_case = KP__REQUEST__OP_REMIND;
	req.remind = &q;
	if ((rc = fb_ask(x, &req, KP__RESPONSE__RESULT_REMIND, &o)) != 0)
		return rc;
	json_array_foreach(items, i, it) {
		if (strcmp(cmd_str(it, "case_ref"), ref) != 0 ||
		    json_integer_value(json_object_get(it, "days_overdue")) < 0)
			continue;
		printf(strcmp(cmd_str(it, "next_step"), "escalate") == 0 ?
		    _("case %s: escalation to %s (%s awaited)\n") :
		    _("case %s: reminder to %s (%s awaited)\n"), ref, s_who(it),
		    label_code(&kp__event_type__descriptor, cmd_str(it,
		    "answer_type")));
	}
	json_array_foreach(json_object_get(o, "event_ids"), i, id) {
		printf(_("  sent: event %s\n"), json_string_value(id));
		(*sent)++;
	}
	json_decref(o);
	return 0;
}

int
fb_remind_all(const struct cmd_ctx *x)
{
	const json_t *items, *it, *prev;
	json_t *o;
	size_t i, j, sent = 0;
	int rc;

	/* days 0: only what is due by now, i.e. overdue */
	if ((rc = s_todo_ask(x, true, 0, false, 0, &o)) != 0)
		return rc;
	items = json_object_get(o, "items");
	json_array_foreach(items, i, it) {
		if (json_integer_value(json_object_get(it, "days_overdue")) < 0)
			continue;
		/* one request per case: it reminds every overdue partner */
		for (j = 0; j < i; j++) {
			prev = json_array_get(items, j);
			if (strcmp(cmd_str(prev, "case_ref"), cmd_str(it,
			    "case_ref")) == 0)
				break;
		}
		if (j < i)
			continue;
		if ((rc = s_remind_case(x, items, cmd_str(it, "case_ref"),
		    &sent)) != 0)
			break;
	}
	if (rc == 0)
		printf(ngettext("%zu reminder sent.\n", "%zu reminders sent.\n",
		    sent), sent);
	json_decref(o);
	return rc;
}
