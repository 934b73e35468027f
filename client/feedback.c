/*
 * feedback.c: the attendance officer's feedback commands (MAS steps 9 and
 * 10), through the daemon's local API:
 *   case REF     one case's timeline, the answers expected and each
 *                route's state;
 *   cases        every case (or those with overdue answers, or one route)
 *                with its counts;
 *   remind REF   a reminder (the MAS rappel) to each overdue partner
 *                (--all-overdue: todo.c, every case);
 *   link ID REF  a received event filed under this organisation's own
 *                case reference;
 *   outcome REF  the officer's record of the absence after the route;
 * (report.c has the evaluation report, todo.c the work list.)
 *
 * The commands take the steps of commands.c (cmdutil.h): parse (usage
 * errors exit 2 before anything else), check, ask the daemon, print.  The
 * JSON form is apijson_tree() (the REST API's too), and the
 * text and the HTML are made from that JSON, so they cannot disagree.
 * Human text is in the language of labels.c (codes as labels, dates as
 * 29-11-2026), tables with columns as wide as their content (todo.c).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "apijson.h"
#include "cmdutil.h"
#include "events.pb-c.h"
#include "feedback.h"
#include "labels.h"
#include "pbjson.h"
#include "util.h"

/* Latest moment kp_time_format() can show: 9999-12-31T23:59:59.999Z. */
#define S_TIME_MAX_MS UINT64_C(253402300799999)

#define S_ROUTES "vrijwillige_jeugdhulp, halt, dwang_civiel or " \
	"dwang_strafrechtelijk"

/* ---- options ---- */

struct fb_args {
	bool json, overdue, all;       /* all: remind --all-overdue */
	int absence;                   /* outcome --absence; 0: not given */
	int route;                     /* cases --route; 0: every route */
	bool has_at;
	uint64_t at;                   /* ms since the epoch */
};

/* An ISO 8601 UTC option value (--at, --from, --to) for cmd. */
int
fb_time_opt(const char *cmd, const char *opt, const char *arg, bool *has,
    uint64_t *ms)
{
	if (kp_time_parse(arg, ms) != 0 || *ms > S_TIME_MAX_MS)
		return cli_usage_error(cmd, "%s '%s' is not an ISO 8601 UTC "
		    "time like 2027-01-31T00:00:00Z", opt, arg);
	*has = true;
	return 0;
}

static int
s_fb_opt(void *args, int c, const char *arg, const char *cmd)
{
	struct fb_args *a = args;

	switch (c) {
	case 'J': a->json = true; return 0;
	case 'o': a->overdue = true; return 0;
	case 'a': a->all = true; return 0;
	case 'r':
		if (pbjson_enum_value(&kp__route__descriptor, arg,
		    &a->route) != 0)
			return cli_usage_error(cmd, "--route '%s' is not a "
			    "route (%s)", arg, S_ROUTES);
		return 0;
	case 'b':
		if (pbjson_enum_value(&kp__absence_after__descriptor, arg,
		    &a->absence) != 0)
			return cli_usage_error(cmd, "--absence '%s' is not "
			    "stopped, reduced or continued", arg);
		return 0;
	case 't': return fb_time_opt(cmd, "--at", arg, &a->has_at, &a->at);
	default: return cli_usage_error(cmd, "bad option");
	}
}

#define S_AT_OPTION { "at", 1, NULL, 't' }

static const struct option s_case_opts[] = {
	{ "json", 0, NULL, 'J' }, S_AT_OPTION, CMD_API_OPTIONS };
static const struct option s_cases_opts[] = {
	{ "json", 0, NULL, 'J' }, { "overdue", 0, NULL, 'o' },
	{ "route", 1, NULL, 'r' }, S_AT_OPTION, CMD_API_OPTIONS };
static const struct option s_remind_opts[] = {
	{ "all-overdue", 0, NULL, 'a' }, S_AT_OPTION, CMD_API_OPTIONS };

/* ---- the JSON form: apijson_tree() (lib/apijson.c), as the REST API ---- */

/*
 * Steps 3 and 4a: send req, and the answer's result `want` in its JSON
 * form.  0 with *out (the caller's), or an exit status after the message.
 */
int
fb_ask(const struct cmd_ctx *x, const Kp__Request *req,
    Kp__Response__ResultCase want, json_t **out)
{
	const ProtobufCFieldDescriptor *f;
	const ProtobufCMessage *res;
	Kp__Response *r;
	int rc;

	*out = NULL;
	if ((rc = cmd_call(x, req, want, false, &r)) != 0)
		return rc;
	/* The result oneof's case is the field number of its member. */
	f = protobuf_c_message_descriptor_get_field(&kp__response__descriptor,
	    (unsigned)want);
	res = *(ProtobufCMessage *const *)(const void *)((const char *)r +
	    f->offset);
	*out = apijson_tree(res);
	kp__response__free_unpacked(r, NULL);
	if (*out == NULL)
		return cli_error("cannot show the daemon's answer (out of "
		    "memory or text that is not UTF-8)");
	return 0;
}

/* Print o (consumed) as JSON, or as text with print(); returns 0. */
static int
s_show(json_t *o, bool json, void (*print)(const json_t *o))
{
	if (json)
		cli_print_json(o);
	else
		print(o);
	json_decref(o);
	return 0;
}

/* Step 1 of case and remind: the options and one case reference. */
static int
s_parse_ref(const struct cmd_spec *s, int argc, char **argv,
    struct cmd_ctx *x, struct fb_args *a)
{
	int rc;

	memset(a, 0, sizeof(*a));
	if ((rc = cmd_parse(s, argc, argv, x, a)) != 0)
		return rc;
	if (*x->args[0] == '\0')
		return cli_usage_error(x->cmd, "the case reference must not be "
		    "empty");
	return 0;
}

/* ---- text helpers ---- */




/* ---- case ---- */

static const char s_case_help[] =
"usage: ketenpost case REF [--json] [--at TIME]\n"
"                      [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"One local case REF across routes and partners: its timeline (every event\n"
"sent or received about it, oldest first), the answers expected from\n"
"partners (due when; open, overdue, answered or answered late), and the\n"
"state of each route.  --at TIME (ISO 8601 UTC, 2027-01-31T00:00:00Z)\n"
"shows the case as it was then: only the events, answers and reminders\n"
"by then.  --json prints the\n"
"CaseResponse as a JSON object (see ketenpost(1)).\n";

static const struct cmd_spec s_case_spec = {
	"case", s_case_help, s_case_opts, s_fb_opt, 1, 1,
	"expected one local case reference"
};


/* A route's state for people (referred, received, outcome, overdue). */
static const char *
s_route_state(const char *state)
{
	static const char *const names[] = { N_("referred"), N_("received"),
	    N_("outcome"), N_("overdue"), N_("escalated") };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(state, names[i]) == 0)
			return _(names[i]);
	return state;
}

/* The name of partner oin from the case's timeline, else the OIN. */
static const char *
s_partner_of(const json_t *o, const char *oin)
{
	const json_t *it;
	size_t i;

	json_array_foreach(json_object_get(o, "timeline"), i, it)
		if (strcmp(cmd_str(it, "partner_oin"), oin) == 0 &&
		    json_object_get(it, "partner_name") != NULL)
			return cmd_partner(it);
	return oin;
}

static uint64_t
s_ms(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

/* A received answer's summary ("outcome: positief") with its value for
 * people, and its phase. */
static const char *
s_summary(const json_t *it, char *buf, size_t len)
{
	const char *sum = cmd_str(it, "summary"), *colon = strstr(sum, ": ");
	const char *phase = cmd_str(it, "phase");
	char v[160];

	if (colon != NULL)
		snprintf(buf, len, "%s", label_outcome(colon + 2, v, sizeof(v)));
	else
		snprintf(buf, len, "%s", sum);
	if (strcmp(phase, "interim") == 0 && strlen(buf) + 16 < len)
		strcat(buf, _(" (interim)"));
	else if (strcmp(phase, "final") == 0 && strlen(buf) + 16 < len)
		strcat(buf, _(" (final)"));
	return buf;
}

static void
s_case_timeline(const json_t *o)
{
	const char *head[7];
	const char *cells[7];
	const json_t *it, *list = json_object_get(o, "timeline");
	char when[32], summary[256];
	struct fb_table t;
	size_t i;

	head[0] = _("WHEN"); head[1] = _("SENT/RECEIVED");
	head[2] = _("PARTNER"); head[3] = _("TYPE"); head[4] = _("ROUTE");
	head[5] = _("STATE"); head[6] = _("SUMMARY");
	fb_table_init(&t, 7);
	fb_table_row(&t, head);
	json_array_foreach(list, i, it) {
		cells[0] = label_datetime(s_ms(it, "at_ms"), when, sizeof(when));
		cells[1] = strcmp(cmd_str(it, "direction"), "sent") == 0 ?
		    _("sent") : _("received");
		cells[2] = cmd_partner(it);
		cells[3] = label_code(&kp__event_type__descriptor, cmd_str(it,
		    "event_type"));
		cells[4] = json_object_get(it, "route") ? label_code(
		    &kp__route__descriptor, cmd_str(it, "route")) : "-";
		cells[5] = json_object_get(it, "state") ? label_code(
		    &kp__delivery_state__descriptor, cmd_str(it, "state")) :
		    "-";
		cells[6] = s_summary(it, summary, sizeof(summary));
		fb_table_row(&t, cells);
	}
	if (json_array_size(list) == 0) {
		printf(_("  (no events)\n"));
		fb_table_free(&t);
	} else
		fb_table_print(&t, 2);
}

static void
s_case_expected(const json_t *o)
{
	const char *head[7];
	const char *cells[7];
	const json_t *it, *list = json_object_get(o, "expectations");
	char due[32], ans[32], rem[24], st[96];
	struct fb_table t;
	size_t i;

	head[0] = _("PARTNER"); head[1] = _("ANSWER"); head[2] = _("DUE");
	head[3] = _("STATE"); head[4] = _("ANSWERED"); head[5] = _("REMINDERS");
	head[6] = _("ROUTE");
	fb_table_init(&t, 7);
	fb_table_row(&t, head);
	json_array_foreach(list, i, it) {
		snprintf(rem, sizeof(rem), "%" PRIu64, cmd_u64(it, "reminders"));
		cells[0] = cmd_partner(it);
		cells[1] = label_code(&kp__event_type__descriptor, cmd_str(it,
		    "answer_type"));
		cells[2] = label_date(s_ms(it, "due_at_ms"), due, sizeof(due));
		snprintf(st, sizeof(st), "%s%s", label_code(
		    &kp__expectation_state__descriptor, cmd_str(it, "state")),
		    json_is_true(json_object_get(it, "escalated")) ?
		    _(" (escalated)") : "");
		cells[3] = st;
		cells[4] = label_date(s_ms(it, "answered_at_ms"), ans,
		    sizeof(ans));
		cells[5] = rem;
		cells[6] = json_object_get(it, "route") ? label_code(
		    &kp__route__descriptor, cmd_str(it, "route")) : "-";
		fb_table_row(&t, cells);
	}
	if (json_array_size(list) == 0) {
		printf(_("  (none)\n"));
		fb_table_free(&t);
	} else
		fb_table_print(&t, 2);
}

static void
s_case_print(const json_t *o)
{
	const char *head[4];
	const char *cells[4];
	const json_t *it, *list;
	char oc[160];
	struct fb_table t;
	size_t i;

	printf(_("Case %s\n\nTimeline\n"), cmd_str(o, "case_ref"));
	s_case_timeline(o);
	printf(_("\nExpected answers\n"));
	s_case_expected(o);
	printf(_("\nRoutes\n"));
	list = json_object_get(o, "routes");
	head[0] = _("ROUTE"); head[1] = _("STATE"); head[2] = _("PARTNER");
	head[3] = _("OUTCOME");
	fb_table_init(&t, 4);
	fb_table_row(&t, head);
	json_array_foreach(list, i, it) {
		cells[0] = label_code(&kp__route__descriptor, cmd_str(it,
		    "route"));
		cells[1] = s_route_state(cmd_str(it, "state"));
		cells[2] = s_partner_of(o, cmd_str(it, "partner_oin"));
		cells[3] = json_object_get(it, "outcome") ? label_outcome(
		    cmd_str(it, "outcome"), oc, sizeof(oc)) : "-";
		fb_table_row(&t, cells);
	}
	if (json_array_size(list) == 0) {
		printf(_("  (none)\n"));
		fb_table_free(&t);
	} else
		fb_table_print(&t, 2);
}

int
cmd_case(int argc, char **argv)
{
	Kp__CaseRequest q = KP__CASE_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	struct fb_args a;
	struct cmd_ctx x;
	json_t *o;
	int rc;

	if ((rc = s_parse_ref(&s_case_spec, argc, argv, &x, &a)) != 0)
		return rc;
	q.case_ref = x.args[0];
	q.has_at_ms = a.has_at;
	q.at_ms = a.at;
	req.op_case = KP__REQUEST__OP_CASE_TIMELINE;
	req.case_timeline = &q;
	if ((rc = fb_ask(&x, &req, KP__RESPONSE__RESULT_CASE_TIMELINE,
	    &o)) != 0)
		return rc;
	return s_show(o, a.json, s_case_print);
}

/* ---- cases ---- */

static const char s_cases_help[] =
"usage: ketenpost cases [--overdue] [--route R] [--at TIME] [--json]\n"
"                       [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"Every local case with its routes, number of events, and answers expected\n"
"from partners: open (not yet due), overdue, answered.  --overdue: only\n"
"cases with an overdue answer.  --route R: only cases on route R\n"
"(" S_ROUTES ").\n"
"--at TIME (ISO 8601 UTC, 2027-01-31T00:00:00Z) evaluates as of that time,\n"
"for example next week's, instead of now; in the past, only the cases and\n"
"events that existed then.  --json prints the\n"
"CasesResponse as a JSON object (see ketenpost(1)).\n";

static const struct cmd_spec s_cases_spec = {
	"cases", s_cases_help, s_cases_opts, s_fb_opt, 0, 0,
	"takes no arguments"
};

static void
s_cases_print(const json_t *o)
{
	const json_t *cases = json_object_get(o, "cases"), *c, *r;
	char routes[256], ev[32], op[32], od[32], an[32], last[32], at[32];
	const char *head[7], *cells[7];
	struct fb_table t;
	size_t i, j, n;

	label_date(s_ms(o, "at_ms"), at, sizeof(at));
	if (json_array_size(cases) == 0) {
		printf(_("no cases (as of %s)\n"), at);
		return;
	}
	head[0] = _("CASE"); head[1] = _("ROUTES"); head[2] = _("EVENTS");
	head[3] = _("OPEN"); head[4] = _("OVERDUE"); head[5] = _("ANSWERED");
	head[6] = _("LAST ACTIVITY");
	fb_table_init(&t, 7);
	fb_table_row(&t, head);
	json_array_foreach(cases, i, c) {
		n = 0;
		routes[0] = '\0';
		json_array_foreach(json_object_get(c, "routes"), j, r)
			if (n < sizeof(routes))
				n += (size_t)snprintf(routes + n,
				    sizeof(routes) - n, "%s%s", j ? ", " : "",
				    label_code(&kp__route__descriptor,
				    json_string_value(r)));
		cells[0] = cmd_str(c, "case_ref");
		cells[1] = routes[0] ? routes : "-";
		cells[2] = cmd_num(c, "events", ev, sizeof(ev));
		cells[3] = cmd_num(c, "open", op, sizeof(op));
		cells[4] = cmd_num(c, "overdue", od, sizeof(od));
		cells[5] = cmd_num(c, "answered", an, sizeof(an));
		cells[6] = label_datetime(s_ms(c, "last_at_ms"), last,
		    sizeof(last));
		fb_table_row(&t, cells);
	}
	fb_table_print(&t, 0);
}

int
cmd_cases(int argc, char **argv)
{
	Kp__CasesRequest q = KP__CASES_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	struct fb_args a;
	struct cmd_ctx x;
	json_t *o;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_cases_spec, argc, argv, &x, &a)) != 0)
		return rc;
	q.has_overdue_only = a.overdue;
	q.overdue_only = a.overdue;
	q.has_route = a.route != 0;
	q.route = (Kp__Route)a.route;
	q.has_at_ms = a.has_at;
	q.at_ms = a.at;
	req.op_case = KP__REQUEST__OP_CASES;
	req.cases = &q;
	if ((rc = fb_ask(&x, &req, KP__RESPONSE__RESULT_CASES, &o)) != 0)
		return rc;
	return s_show(o, a.json, s_cases_print);
}

/* ---- remind ---- */

static const char s_remind_help[] =
"usage: ketenpost remind REF | --all-overdue\n"
"                        [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"Send a reminder event (the MAS rappel) now to every partner whose answer\n"
"about local case REF is overdue now; with --all-overdue, for every case:\n"
"one reminder per overdue answer of the work list (ketenpost todo), each\n"
"audited as a send.  When the chain policy's escalation step is due for an\n"
"answer (after escalate_after_reminders reminders, or escalate_after\n"
"overdue), its reminder is the escalation (escalation: true; MAS\n"
"opschaling) and the answer shows as escalated from then on.  --at is refused: a reminder is sent\n"
"at once, so it can only be about what is overdue now (see what is overdue\n"
"at another time with 'ketenpost cases --overdue --at TIME').\n"
"Prints \"reminded OIN: event EVENT_ID\" per reminder sent, or \"no overdue\n"
"answers for case REF\".\n";

static const struct cmd_spec s_remind_spec = {
	"remind", s_remind_help, s_remind_opts, s_fb_opt, 0, 1,
	"expected one local case reference (or --all-overdue)"
};

/* The case's timeline, to name the partner of each reminder (or NULL). */
static json_t *
s_remind_timeline(const struct cmd_ctx *x, const char *ref)
{
	Kp__CaseRequest q = KP__CASE_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	json_t *o;

	q.case_ref = (char *)ref;
	req.op_case = KP__REQUEST__OP_CASE_TIMELINE;
	req.case_timeline = &q;
	if (fb_ask(x, &req, KP__RESPONSE__RESULT_CASE_TIMELINE, &o) != 0) {
		cli_error("the reminders were sent, but their partners cannot "
		    "be shown; see 'ketenpost case %s'", ref);
		return NULL;
	}
	return o;
}

/* The OIN the timeline item with event id `id` went to, or "-". */
static const char *
s_sent_to(const json_t *timeline, const char *id)
{
	const json_t *it;
	size_t i;

	json_array_foreach(timeline, i, it)
		if (strcmp(cmd_str(it, "event_id"), id) == 0)
			return cmd_str(it, "partner_oin");
	return "-";
}

int
cmd_remind(int argc, char **argv)
{
	Kp__RemindRequest q = KP__REMIND_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	struct fb_args a;
	struct cmd_ctx x;
	json_t *o, *ids, *id, *tl = NULL;
	size_t i;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_remind_spec, argc, argv, &x, &a)) != 0)
		return rc;
	if (a.all && x.nargs > 0)
		return cli_usage_error(x.cmd, "give a case reference or "
		    "--all-overdue, not both");
	if (!a.all && (x.nargs == 0 || *x.args[0] == '\0'))
		return cli_usage_error(x.cmd, "expected one local case reference "
		    "(or --all-overdue)");
	if (a.has_at)
		return cli_usage_error(x.cmd, "--at is not accepted: remind "
		    "sends now, for the answers overdue now; see what is "
		    "overdue at a time with 'ketenpost cases --overdue --at "
		    "TIME'");
	if (a.all)
		return fb_remind_all(&x);
	q.case_ref = x.args[0];
	req.op_case = KP__REQUEST__OP_REMIND;
	req.remind = &q;
	if ((rc = fb_ask(&x, &req, KP__RESPONSE__RESULT_REMIND, &o)) != 0)
		return rc;
	ids = json_object_get(o, "event_ids");
	if (json_array_size(ids) == 0)
		printf(_("no overdue answers for case %s\n"), x.args[0]);
	else
		tl = s_remind_timeline(&x, x.args[0]);
	json_array_foreach(ids, i, id)
		printf(_("reminded %s: event %s\n"), s_sent_to(json_object_get(tl,
		    "timeline"), json_string_value(id)),
		    json_string_value(id));
	json_decref(tl);
	json_decref(o);
	return 0;
}

/* ---- link ---- */

static const char s_link_help[] =
"usage: ketenpost link EVENT_ID REF\n"
"                      [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"File received event EVENT_ID under this organisation's own case reference\n"
"REF: it and every other event from the same partner about the same case\n"
"then show in 'ketenpost case REF' and 'ketenpost subject REF', and\n"
"events sent with case REF to that partner (answers) are about that case.\n"
"A link never changes.  Prints \"linked EVENT_ID to REF (N events filed)\".\n";

static const struct option s_link_opts[] = { CMD_API_OPTIONS };

static const struct cmd_spec s_link_spec = {
	"link", s_link_help, s_link_opts, s_fb_opt, 2, 2,
	"expected a received event id and a local case reference"
};

int
cmd_link(int argc, char **argv)
{
	Kp__LinkRequest q = KP__LINK_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r;
	struct fb_args a;
	struct cmd_ctx x;
	uint8_t id[16];
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_link_spec, argc, argv, &x, &a)) != 0)
		return rc;
	if (kp_uuid_parse(x.args[0], id) != 0)
		return cli_usage_error(x.cmd, "'%s' is not an event id (a UUID "
		    "like 0b0e4f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b)", x.args[0]);
	if (*x.args[1] == '\0')
		return cli_usage_error(x.cmd, "the case reference must not be "
		    "empty");
	q.has_event_id = 1;
	q.event_id = (ProtobufCBinaryData){ 16, id };
	q.case_ref = x.args[1];
	req.op_case = KP__REQUEST__OP_LINK;
	req.link = &q;
	if ((rc = cmd_call(&x, &req, KP__RESPONSE__RESULT_LINK, false,
	    &r)) != 0)
		return rc;
	printf(ngettext("linked %s to %s (%u event filed)\n",
	    "linked %s to %s (%u events filed)\n", r->link->filed), x.args[0],
	    x.args[1], r->link->filed);
	kp__response__free_unpacked(r, NULL);
	return 0;
}

/* ---- outcome ---- */

static const char s_outcome_help[] =
"usage: ketenpost outcome REF --absence stopped|reduced|continued\n"
"                         [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"Record for local case REF whether the absence stopped, was reduced or\n"
"continued after its route: the one outcome the MAS is for.  The record is\n"
"this organisation's own: it is never sent to anyone.  A later record\n"
"replaces the earlier one.  'ketenpost report' counts them per route.\n";

static const struct option s_outcome_opts[] = {
	{ "absence", 1, NULL, 'b' }, CMD_API_OPTIONS };

static const struct cmd_spec s_outcome_spec = {
	"outcome", s_outcome_help, s_outcome_opts, s_fb_opt, 1, 1,
	"expected one local case reference"
};

int
cmd_outcome(int argc, char **argv)
{
	Kp__OutcomeRequest q = KP__OUTCOME_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r;
	struct fb_args a;
	struct cmd_ctx x;
	int rc;

	if ((rc = s_parse_ref(&s_outcome_spec, argc, argv, &x, &a)) != 0)
		return rc;
	if (a.absence == 0)
		return cli_usage_error(x.cmd, "--absence stopped, reduced or "
		    "continued is required");
	q.case_ref = x.args[0];
	q.has_absence = 1;
	q.absence = (Kp__AbsenceAfter)a.absence;
	req.op_case = KP__REQUEST__OP_OUTCOME;
	req.outcome = &q;
	if ((rc = cmd_call(&x, &req, KP__RESPONSE__RESULT_OUTCOME, false,
	    &r)) != 0)
		return rc;
	printf(_("case %s: absence after the route %s (recorded, not "
	    "shared)\n"), x.args[0], label_enum(&kp__absence_after__descriptor,
	    (int)r->outcome->absence));
	kp__response__free_unpacked(r, NULL);
	return 0;
}
