/*
 * feedback.c: the attendance officer's feedback commands (MAS steps 9 and
 * 10), through the daemon's local API:
 *   case REF     one case's timeline, the answers expected and each
 *                route's state;
 *   cases        every case (or those with overdue answers, or one route)
 *                with its counts;
 *   remind REF   a reminder (the MAS rappel) to each overdue partner;
 *   link ID REF  a received event filed under this organisation's own
 *                case reference;
 *   outcome REF  the officer's record of the absence after the route;
 *   report       per route: cases, outcomes, and per partner the lead
 *                times; as text, JSON, or one self-contained HTML file.
 *
 * The commands take the steps of commands.c (cmdutil.h): parse (usage
 * errors exit 2 before anything else), check, ask the daemon, print.  The
 * JSON form is cmd_msg_json() all the way down (s_tree_json), and the
 * text and the HTML are made from that JSON, so they cannot disagree.
 * The HTML report is XML-well-formed HTML5 (polyglot XHTML): no script,
 * no external resource, every string from the daemon escaped.
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
	const char *html;              /* report --html FILE */
	int route;                     /* cases --route; 0: every route */
	bool has_at, has_from, has_to;
	uint64_t at, from, to;         /* ms since the epoch */
};

static int
s_time_opt(const char *cmd, const char *opt, const char *arg, bool *has,
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
	case 'H':
		if (*arg == '\0')
			return cli_usage_error(cmd, "--html needs a file name");
		a->html = arg;
		return 0;
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
	case 't': return s_time_opt(cmd, "--at", arg, &a->has_at, &a->at);
	case 'f': return s_time_opt(cmd, "--from", arg, &a->has_from,
	    &a->from);
	case 'u': return s_time_opt(cmd, "--to", arg, &a->has_to, &a->to);
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
static const struct option s_report_opts[] = {
	{ "json", 0, NULL, 'J' }, { "html", 1, NULL, 'H' },
	{ "from", 1, NULL, 'f' }, { "to", 1, NULL, 'u' }, S_AT_OPTION,
	CMD_API_OPTIONS };

/* ---- the JSON form ---- */

static json_t *s_tree_json(const ProtobufCMessage *m);

/* Field f of m (a message field, present) in its JSON form. */
static json_t *
s_sub_json(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const char *p = (const char *)m + f->offset;
	ProtobufCMessage *const *subs;
	json_t *arr;
	size_t i, n;

	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return s_tree_json(*(ProtobufCMessage *const *)(const void *)p);
	n = *(const size_t *)(const void *)((const char *)m +
	    f->quantifier_offset);
	subs = *(ProtobufCMessage *const *const *)(const void *)p;
	arr = json_array();
	for (i = 0; i < n; i++)
		arr = cmd_push(arr, s_tree_json(subs[i]));
	return arr;
}

/* Event ids (one, or an array) as UUID text. */
static json_t *
s_ids_json(json_t *v)
{
	json_t *arr, *id;
	size_t i;

	if (!json_is_array(v))
		return cmd_uuid_json(v);
	arr = json_array();
	json_array_foreach(v, i, id)
		arr = cmd_push(arr, cmd_uuid_json(id));
	return arr;
}

/*
 * cmd_msg_json() of m and of every message inside it, plus: the other
 * event ids of the feedback messages (answered_by, event_ids) as UUID
 * text, and beside a report's from_ms and to_ms their ISO 8601 text.
 */
static json_t *
s_tree_json(const ProtobufCMessage *m)
{
	json_t *in = cmd_msg_json(m), *out = json_object(), *v;
	const ProtobufCFieldDescriptor *f;
	const char *k;

	if (in == NULL || out == NULL)
		goto fail;
	json_object_foreach(in, k, v) {
		f = protobuf_c_message_descriptor_get_field_by_name(
		    m->descriptor, k);
		if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE)
			v = s_sub_json(m, f);
		else if (strcmp(k, "answered_by") == 0 ||
		    strcmp(k, "event_ids") == 0)
			v = s_ids_json(v);
		else
			v = json_incref(v);
		if (v == NULL || json_object_set_new(out, k, v) != 0)
			goto fail;
		if (strcmp(k, "from_ms") == 0 || strcmp(k, "to_ms") == 0)
			cmd_add_time(out, k, v);
	}
	json_decref(in);
	return out;
fail:
	json_decref(in);
	json_decref(out);
	return NULL;
}

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
	*out = s_tree_json(res);
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

static uint64_t
s_u(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

/* A partner as people know it: the name, else the OIN. */
static const char *
s_partner(const json_t *o)
{
	const char *name = cmd_str(o, "partner_name");

	return strcmp(name, "-") != 0 ? name : cmd_str(o, "partner_oin");
}

/* An enum name for people: "answered_late" -> "answered late". */
static const char *
s_words(const char *name, char *buf, size_t len)
{
	char *p;

	snprintf(buf, len, "%s", name);
	for (p = buf; *p != '\0'; p++)
		if (*p == '_')
			*p = ' ';
	return buf;
}

/* 100 * part / whole as "68.4%", or "-" for an empty whole. */
static const char *
s_pct(uint64_t part, uint64_t whole, char *buf, size_t len)
{
	if (whole == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * (double)part /
		    (double)whole);
	return buf;
}

/* A number of days ("41.5"), "-" when absent. */
static const char *
s_days(const json_t *o, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_number(v))
		snprintf(buf, len, "%.1f", json_number_value(v));
	else
		snprintf(buf, len, "-");
	return buf;
}

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

#define S_TIMELINE_ROW "  %-24s  %-8s  %-32.32s  %-12s  %-21s  %-9s  %s\n"
#define S_EXPECT_ROW "  %-32.32s  %-12s  %-24s  %-13s  %-24s  %s\n"
#define S_EXPECT_ROWN "  %-32.32s  %-12s  %-24s  %-13s  %-24s  %" PRIu64 "\n"
#define S_ROUTE_ROW "  %-21s  %-9s  %-32.32s  %s\n"

/* The name of partner oin from the case's timeline, else the OIN. */
static const char *
s_partner_of(const json_t *o, const char *oin)
{
	const json_t *it;
	size_t i;

	json_array_foreach(json_object_get(o, "timeline"), i, it)
		if (strcmp(cmd_str(it, "partner_oin"), oin) == 0 &&
		    json_object_get(it, "partner_name") != NULL)
			return s_partner(it);
	return oin;
}

static void
s_case_print(const json_t *o)
{
	const json_t *it, *list;
	char w[32], summary[256];
	size_t i;

	printf("Case %s\n\nTimeline\n", cmd_str(o, "case_ref"));
	list = json_object_get(o, "timeline");
	printf(S_TIMELINE_ROW, "WHEN", "SENT/REC", "PARTNER", "TYPE", "ROUTE",
	    "STATE", "SUMMARY");
	json_array_foreach(list, i, it) {
		/* an answer's phase beside its summary: "phase: scheduled
		 * (interim)" */
		snprintf(summary, sizeof(summary), "%s%s%s%s", cmd_str(it,
		    "summary"), json_object_get(it, "phase") ? " (" : "",
		    json_object_get(it, "phase") ? cmd_str(it, "phase") : "",
		    json_object_get(it, "phase") ? ")" : "");
		printf(S_TIMELINE_ROW, cmd_str(it, "at"), cmd_str(it,
		    "direction"), s_partner(it), cmd_str(it, "event_type"),
		    cmd_str(it, "route"), cmd_str(it, "state"), summary);
	}
	if (json_array_size(list) == 0)
		printf("  (no events)\n");

	printf("\nExpected answers\n");
	list = json_object_get(o, "expectations");
	printf(S_EXPECT_ROW, "PARTNER", "ANSWER", "DUE", "STATE", "ANSWERED",
	    "REMINDERS");
	json_array_foreach(list, i, it)
		printf(S_EXPECT_ROWN, s_partner(it), cmd_str(it, "answer_type"),
		    cmd_str(it, "due_at"), s_words(cmd_str(it, "state"), w,
		    sizeof(w)), cmd_str(it, "answered_at"), s_u(it,
		    "reminders"));
	if (json_array_size(list) == 0)
		printf("  (none)\n");

	printf("\nRoutes\n");
	list = json_object_get(o, "routes");
	printf(S_ROUTE_ROW, "ROUTE", "STATE", "PARTNER", "OUTCOME");
	json_array_foreach(list, i, it)
		printf(S_ROUTE_ROW, cmd_str(it, "route"), cmd_str(it, "state"),
		    s_partner_of(o, cmd_str(it, "partner_oin")), cmd_str(it,
		    "outcome"));
	if (json_array_size(list) == 0)
		printf("  (none)\n");
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

#define S_CASES_ROW "%-20s  %-32s  %6s  %4s  %7s  %8s  %s\n"

static void
s_cases_print(const json_t *o)
{
	const json_t *cases = json_object_get(o, "cases"), *c, *r;
	char routes[256], ev[32], op[32], od[32], an[32];
	size_t i, j, n;

	if (json_array_size(cases) == 0) {
		printf("no cases (as of %s)\n", cmd_str(o, "at"));
		return;
	}
	printf(S_CASES_ROW, "CASE", "ROUTES", "EVENTS", "OPEN", "OVERDUE",
	    "ANSWERED", "LAST ACTIVITY");
	json_array_foreach(cases, i, c) {
		n = 0;
		routes[0] = '\0';
		json_array_foreach(json_object_get(c, "routes"), j, r)
			if (n < sizeof(routes))
				n += (size_t)snprintf(routes + n,
				    sizeof(routes) - n, "%s%s", j ? "," : "",
				    json_is_string(r) ? json_string_value(r) :
				    "?");
		printf(S_CASES_ROW, cmd_str(c, "case_ref"), routes[0] ? routes :
		    "-", cmd_num(c, "events", ev, sizeof(ev)), cmd_num(c,
		    "open", op, sizeof(op)), cmd_num(c, "overdue", od,
		    sizeof(od)), cmd_num(c, "answered", an, sizeof(an)),
		    cmd_str(c, "last_at"));
	}
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
		printf("no overdue answers for case %s\n", x.args[0]);
	else
		tl = s_remind_timeline(&x, x.args[0]);
	json_array_foreach(ids, i, id)
		printf("reminded %s: event %s\n", s_sent_to(json_object_get(tl,
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
	printf("linked %s to %s (%u events filed)\n", x.args[0], x.args[1],
	    r->link->filed);
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
	printf("case %s: absence after the route %s (recorded, not shared)\n",
	    x.args[0], protobuf_c_enum_descriptor_get_value(
	    &kp__absence_after__descriptor, (int)r->outcome->absence)->name);
	kp__response__free_unpacked(r, NULL);
	return 0;
}

/* ---- report: the numbers ---- */

static const char s_report_help[] =
"usage: ketenpost report [--from TIME] [--to TIME] [--at TIME]\n"
"                        [--json | --html FILE]\n"
"                        [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"The evaluation of the referrals sent in [--from, --to) (ISO 8601 UTC,\n"
"2027-01-01T00:00:00Z; default all), per route: cases, referrals,\n"
"outcomes, and per partner the answers expected and given, the share\n"
"answered within the lead time, the median and 90th percentile lead time\n"
"in days, and the answers overdue as of --at (default now); with --at only\n"
"the referrals sent and the answers received by then count.  --json prints\n"
"the ReportResponse as a JSON object; --html FILE writes the report with\n"
"one chart per route to FILE, one self-contained HTML file (no scripts,\n"
"nothing fetched), for a team lead.\n";

static const struct cmd_spec s_report_spec = {
	"report", s_report_help, s_report_opts, s_fb_opt, 0, 0,
	"takes no arguments"
};

/* One partner's answers; late and open are what the others leave. */
struct fb_answers {
	uint64_t expected, answered, within, overdue;
	uint64_t late, open, due;      /* due: answered or overdue now */
};

static void
s_answers(const json_t *p, struct fb_answers *n)
{
	n->expected = s_u(p, "expected");
	n->answered = s_u(p, "answered");
	n->within = s_u(p, "within_lead_time");
	n->overdue = s_u(p, "overdue_now");
	n->late = n->answered > n->within ? n->answered - n->within : 0;
	n->due = n->answered + n->overdue;
	n->open = n->expected > n->due ? n->expected - n->due : 0;
}

/* A route's partners added up. */
static void
s_route_answers(const json_t *route, struct fb_answers *sum)
{
	struct fb_answers n;
	const json_t *p;
	size_t i;

	memset(sum, 0, sizeof(*sum));
	json_array_foreach(json_object_get(route, "partners"), i, p) {
		s_answers(p, &n);
		sum->expected += n.expected;
		sum->answered += n.answered;
		sum->within += n.within;
		sum->overdue += n.overdue;
		sum->late += n.late;
		sum->open += n.open;
		sum->due += n.due;
	}
}

static uint64_t
s_outcome_total(const json_t *route)
{
	const json_t *oc;
	uint64_t total = 0;
	size_t i;

	json_array_foreach(json_object_get(route, "outcomes"), i, oc)
		total += s_u(oc, "count");
	return total;
}

/* "referrals sent from A to B; overdue as of C" into buf. */
static const char *
s_period(const json_t *o, char *buf, size_t len)
{
	const char *from = cmd_str(o, "from"), *to = cmd_str(o, "to");
	const char *at = cmd_str(o, "at");
	int n;

	if (*from != '-' && *to != '-')
		n = snprintf(buf, len, "referrals sent from %s to %s", from, to);
	else if (*from != '-')
		n = snprintf(buf, len, "referrals sent since %s", from);
	else if (*to != '-')
		n = snprintf(buf, len, "referrals sent before %s", to);
	else
		n = snprintf(buf, len, "all referrals sent");
	if (n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "; overdue as of %s",
		    *at != '-' ? at : "now");
	return buf;
}

/* ---- report: text ---- */

#define S_PARTNER_ROW "    %-32.32s  %8s  %8s  %-16s  %11s  %8s  %11s\n"

static void
s_report_partner(const json_t *p)
{
	struct fb_answers n;
	char e[24], an[24], w[48], pct[16], med[24], p90[24], od[24];

	s_answers(p, &n);
	snprintf(w, sizeof(w), "%" PRIu64 "/%" PRIu64 " %s", n.within, n.due,
	    s_pct(n.within, n.due, pct, sizeof(pct)));
	printf(S_PARTNER_ROW, s_partner(p), cmd_num(p, "expected", e,
	    sizeof(e)), cmd_num(p, "answered", an, sizeof(an)), w,
	    s_days(p, "median_days", med, sizeof(med)), s_days(p, "p90_days",
	    p90, sizeof(p90)), cmd_num(p, "overdue_now", od, sizeof(od)));
}

static void
s_report_print(const json_t *o)
{
	const json_t *routes = json_object_get(o, "routes"), *r, *it;
	char period[256], pct[16];
	uint64_t total;
	size_t i, j;

	printf("Report: %s\n", s_period(o, period, sizeof(period)));
	if (json_array_size(routes) == 0)
		printf("\nno referrals in this period\n");
	json_array_foreach(routes, i, r) {
		printf("\nRoute %s: %" PRIu64 " cases, %" PRIu64 " referrals, %"
		    PRIu64 " overdue now\n", cmd_str(r, "route"), s_u(r,
		    "cases"), s_u(r, "referrals"), s_u(r, "overdue_now"));
		printf("  Outcomes\n");
		total = s_outcome_total(r);
		json_array_foreach(json_object_get(r, "outcomes"), j, it)
			printf("    %-32s  %6" PRIu64 "  %6s\n", cmd_str(it,
			    "outcome"), s_u(it, "count"), s_pct(s_u(it,
			    "count"), total, pct, sizeof(pct)));
		if (total == 0)
			printf("    (none)\n");
		printf("  Absence after the route (officer's record, per case)\n");
		json_array_foreach(json_object_get(r, "absence_after"), j, it)
			printf("    %-32s  %6" PRIu64 "  %6s\n", cmd_str(it,
			    "outcome"), s_u(it, "count"), s_pct(s_u(it,
			    "count"), s_u(r, "cases"), pct, sizeof(pct)));
		printf("  Partners (lead times in days; within lead time: of "
		    "the answers due)\n");
		if (json_array_size(json_object_get(r, "partners")) == 0) {
			printf("    (no answers expected)\n");
			continue;
		}
		printf(S_PARTNER_ROW, "PARTNER", "EXPECTED", "ANSWERED",
		    "WITHIN LEAD TIME", "MEDIAN DAYS", "P90 DAYS",
		    "OVERDUE NOW");
		json_array_foreach(json_object_get(r, "partners"), j, it)
			s_report_partner(it);
	}
}

/* ---- report: HTML ---- */

/* Chart geometry (SVG user units). */
#define S_W 800               /* chart width */
#define S_BAR_X 250           /* bars start */
#define S_BAR_W 360           /* longest bar */
#define S_ROW 24              /* row height */
#define S_BAR_H 15

static const char s_css[] =
"body{font-family:system-ui,-apple-system,\"Segoe UI\",sans-serif;"
"color:#1b1b1b;margin:2em auto;max-width:62em;padding:0 1em;"
"line-height:1.45}\n"
"h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;"
"border-bottom:2px solid #ddd}\n"
"table{border-collapse:collapse;margin:1em 0}caption{text-align:left;"
"font-weight:bold;padding:.3em 0}\n"
"th,td{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left;"
"vertical-align:top}\n"
"th{background:#f3f3f3}td.n,th.n{text-align:right;"
"font-variant-numeric:tabular-nums}\n"
"figure{margin:1em 0}figcaption{font-size:.9em;color:#444;"
"max-width:50em}\n"
"svg{max-width:100%;height:auto}svg text{font-size:12px;"
"fill:#1b1b1b}svg text.h{font-weight:bold;font-size:13px}\n"
".period,.note{color:#444}code{background:#f3f3f3;padding:0 .2em}\n"
"@media print{h2{break-before:auto}figure{break-inside:avoid}}\n";

/* Okabe-Ito colours, readable with every kind of colour blindness. */
#define S_C_OUTCOME "#0072B2"
#define S_C_WITHIN "#009E73"
#define S_C_LATE "#E69F00"
#define S_C_OVERDUE "#D55E00"
#define S_C_OPEN "#BBBBBB"

/* Text for XML (element content and quoted attributes). */
static void
s_esc(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			/* control characters are not allowed in XML 1.0 */
			if ((unsigned char)*s < 0x20 && *s != '\t' &&
			    *s != '\n' && *s != '\r')
				fputs("\xef\xbf\xbd", f);
			else
				fputc(*s, f);
		}
}

/* s cut to at most max characters (UTF-8), "…" marking a cut. */
static const char *
s_clip(const char *s, size_t max, char *buf, size_t len)
{
	size_t i, chars = 0;

	for (i = 0; s[i] != '\0'; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80 && ++chars > max)
			break;
	if (s[i] == '\0' || i + 4 > len) {
		snprintf(buf, len, "%s", s[i] == '\0' ? s : "");
		return buf;
	}
	snprintf(buf, len, "%.*s\xe2\x80\xa6", (int)i, s);
	return buf;
}

/* The route's name for people. */
static const char *
s_route_title(const char *route)
{
	static const char *const names[][2] = {
		{ "vrijwillige_jeugdhulp", "Vrijwillige jeugdhulp (voluntary "
		  "youth care)" },
		{ "halt", "Halt" },
		{ "dwang_civiel", "Dwang civiel (coercion, civil law)" },
		{ "dwang_strafrechtelijk", "Dwang strafrechtelijk (coercion, "
		  "criminal law)" },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(route, names[i][0]) == 0)
			return names[i][1];
	return route;
}

/* One bar segment of width w at x, with its tooltip. */
static void
s_rect(FILE *f, double x, double y, double w, const char *fill,
    const char *tip)
{
	if (w <= 0)
		return;
	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
	    "fill=\"%s\"><title>", x, y, w, S_BAR_H, fill);
	s_esc(f, tip);
	fputs("</title></rect>\n", f);
}

/* A text label; anchor "start" or "end". */
static void
s_text(FILE *f, double x, double y, const char *anchor, const char *cls,
    const char *text)
{
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s%s>", x,
	    y, anchor, cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" :
	    "");
	s_esc(f, text);
	fputs("</text>\n", f);
}

/* The outcome bars from y on; returns the next free y. */
static int
s_chart_outcomes(FILE *f, const json_t *r, int y)
{
	const json_t *oc;
	uint64_t total = s_outcome_total(r), max = 0, c;
	char label[160], tip[320], val[64], pct[16];
	size_t i;

	s_text(f, 8, y, "start", "h", "Outcomes reported (referrals)");
	y += S_ROW;
	json_array_foreach(json_object_get(r, "outcomes"), i, oc)
		if ((c = s_u(oc, "count")) > max)
			max = c;
	json_array_foreach(json_object_get(r, "outcomes"), i, oc) {
		c = s_u(oc, "count");
		s_pct(c, total, pct, sizeof(pct));
		s_text(f, S_BAR_X - 8, y, "end", NULL, s_clip(cmd_str(oc,
		    "outcome"), 34, label, sizeof(label)));
		snprintf(tip, sizeof(tip), "%s: %" PRIu64 " of %" PRIu64
		    " (%s)", cmd_str(oc, "outcome"), c, total, pct);
		s_rect(f, S_BAR_X, y - 12, max ? (double)S_BAR_W *
		    (double)c / (double)max : 0, S_C_OUTCOME, tip);
		snprintf(val, sizeof(val), "%" PRIu64 " (%s)", c, pct);
		s_text(f, S_BAR_X + (max ? (double)S_BAR_W * (double)c /
		    (double)max : 0) + 6, y, "start", NULL, val);
		y += S_ROW;
	}
	if (total == 0) {
		s_text(f, S_BAR_X, y, "start", NULL, "no outcomes");
		y += S_ROW;
	}
	return y;
}

/* One partner's stacked bar: within, late, overdue, open. */
static void
s_chart_partner(FILE *f, const json_t *p, uint64_t max, int y)
{
	static const struct { const char *what, *fill; } seg[] = {
		{ "answered within the lead time", S_C_WITHIN },
		{ "answered late", S_C_LATE },
		{ "overdue now", S_C_OVERDUE },
		{ "open, not yet due", S_C_OPEN },
	};
	struct fb_answers n;
	uint64_t part[4];
	char label[160], tip[400], val[64], pct[16];
	double x = S_BAR_X, w;
	size_t i;

	s_answers(p, &n);
	part[0] = n.within;
	part[1] = n.late;
	part[2] = n.overdue;
	part[3] = n.open;
	s_text(f, S_BAR_X - 8, y, "end", NULL, s_clip(s_partner(p), 34, label,
	    sizeof(label)));
	for (i = 0; i < 4; i++) {
		w = max ? (double)S_BAR_W * (double)part[i] / (double)max : 0;
		snprintf(tip, sizeof(tip), "%s: %" PRIu64 " of %" PRIu64
		    " expected %s", s_partner(p), part[i], n.expected,
		    seg[i].what);
		s_rect(f, x, y - 12, w, seg[i].fill, tip);
		x += w;
	}
	snprintf(val, sizeof(val), "%" PRIu64 "/%" PRIu64 " in time (%s)",
	    n.within, n.due, s_pct(n.within, n.due, pct, sizeof(pct)));
	s_text(f, x + 6, y, "start", NULL, val);
}

/* The legend of the partner bars at y. */
static void
s_chart_legend(FILE *f, int y)
{
	static const struct { const char *what, *fill; } key[] = {
		{ "within lead time", S_C_WITHIN }, { "late", S_C_LATE },
		{ "overdue now", S_C_OVERDUE }, { "open", S_C_OPEN },
	};
	double x = S_BAR_X;
	size_t i;

	for (i = 0; i < 4; i++) {
		fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"12\" height=\"12\" "
		    "fill=\"%s\"/>\n", x, y - 10, key[i].fill);
		s_text(f, x + 16, y, "start", NULL, key[i].what);
		x += 16 + 7 * (double)strlen(key[i].what) + 18;
	}
}

/* Route number idx's chart: outcomes, then answers per partner. */
static void
s_html_chart(FILE *f, const json_t *r, size_t idx)
{
	const json_t *partners = json_object_get(r, "partners"), *p;
	const char *route = cmd_str(r, "route");
	size_t i, np = json_array_size(partners);
	size_t no = json_array_size(json_object_get(r, "outcomes"));
	uint64_t max = 0;
	struct fb_answers n;
	int h, y;

	h = 8 + S_ROW * (int)((no ? no : 1) + (np ? np : 1) + 4);
	fputs("<figure>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "class=\"route-chart\" data-route=\"", f);
	s_esc(f, route);
	fprintf(f, "\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	    "role=\"img\" aria-labelledby=\"chart%zu-title chart%zu-desc\">\n",
	    S_W, h, S_W, h, idx, idx);
	fprintf(f, "<title id=\"chart%zu-title\">", idx);
	s_esc(f, s_route_title(route));
	fprintf(f, ": outcomes and answers per partner</title>\n"
	    "<desc id=\"chart%zu-desc\">Bars per outcome with its number of "
	    "referrals; per partner one bar of the answers expected, split "
	    "into answered within the lead time, answered late, overdue now "
	    "and open. The tables below give the same numbers.</desc>\n",
	    idx);
	y = s_chart_outcomes(f, r, 20) + 8;
	s_text(f, 8, y, "start", "h", "Answers expected per partner");
	y += S_ROW;
	json_array_foreach(partners, i, p) {
		s_answers(p, &n);
		if (n.expected > max)
			max = n.expected;
	}
	json_array_foreach(partners, i, p) {
		s_chart_partner(f, p, max, y);
		y += S_ROW;
	}
	if (np == 0) {
		s_text(f, S_BAR_X, y, "start", NULL, "no answers expected");
		y += S_ROW;
	}
	s_chart_legend(f, y + 4);
	fprintf(f, "</svg>\n<figcaption>Figure %zu. ", idx + 1);
	s_esc(f, s_route_title(route));
	fputs(": outcomes of the referrals, and per partner how many of the "
	    "answers expected came within the lead time, came late, are "
	    "overdue, or are still open.</figcaption>\n</figure>\n", f);
}

/* A table cell: th (a column head) or td, numeric (right-aligned) or not. */
static void
s_cell(FILE *f, const char *tag, bool num, const char *text)
{
	fprintf(f, "<%s%s%s>", tag, strcmp(tag, "th") == 0 ?
	    " scope=\"col\"" : "", num ? " class=\"n\"" : "");
	s_esc(f, text);
	fprintf(f, "</%s>", tag);
}

static void
s_cell_u(FILE *f, uint64_t v)
{
	fprintf(f, "<td class=\"n\">%" PRIu64 "</td>", v);
}

/* A header row of n cells; the first is text, the rest numbers. */
static void
s_head_row(FILE *f, const char *const *cells, size_t n)
{
	size_t i;

	fputs("<thead><tr>", f);
	for (i = 0; i < n; i++)
		s_cell(f, "th", i > 0, cells[i]);
	fputs("</tr></thead>\n<tbody>\n", f);
}

static void
s_html_summary(FILE *f, const json_t *routes)
{
	static const char *const head[] = { "Route", "Cases", "Referrals",
	    "Answers expected", "Answered", "Within lead time",
	    "Overdue now" };
	struct fb_answers n;
	const json_t *r;
	char w[64], pct[16];
	size_t i;

	fputs("<table class=\"summary\">\n<caption>Summary per route"
	    "</caption>\n", f);
	s_head_row(f, head, sizeof(head) / sizeof(head[0]));
	json_array_foreach(routes, i, r) {
		s_route_answers(r, &n);
		fputs("<tr>", f);
		s_cell(f, "td", false, s_route_title(cmd_str(r, "route")));
		s_cell_u(f, s_u(r, "cases"));
		s_cell_u(f, s_u(r, "referrals"));
		s_cell_u(f, n.expected);
		s_cell_u(f, n.answered);
		snprintf(w, sizeof(w), "%" PRIu64 " of %" PRIu64 " due (%s)",
		    n.within, n.due, s_pct(n.within, n.due, pct, sizeof(pct)));
		s_cell(f, "td", true, w);
		s_cell_u(f, s_u(r, "overdue_now"));
		fputs("</tr>\n", f);
	}
	fputs("</tbody>\n</table>\n", f);
}

static void
s_html_tables(FILE *f, const json_t *r)
{
	static const char *const oh[] = { "Outcome", "Referrals", "Share" };
	static const char *const ah[] = { "Absence after the route", "Cases",
	    "Share" };
	static const char *const ph[] = { "Partner", "Expected", "Answered",
	    "Within lead time", "Median (days)", "90th percentile (days)",
	    "Overdue now" };
	uint64_t total = s_outcome_total(r);
	struct fb_answers n;
	const json_t *it;
	char buf[64], pct[16];
	size_t i;

	fputs("<table class=\"outcomes\">\n<caption>Outcomes</caption>\n", f);
	s_head_row(f, oh, 3);
	json_array_foreach(json_object_get(r, "outcomes"), i, it) {
		fputs("<tr>", f);
		s_cell(f, "td", false, cmd_str(it, "outcome"));
		s_cell_u(f, s_u(it, "count"));
		s_cell(f, "td", true, s_pct(s_u(it, "count"), total, pct,
		    sizeof(pct)));
		fputs("</tr>\n", f);
	}
	fputs("</tbody>\n</table>\n<table class=\"absence\">\n<caption>"
	    "Absence after the route (officer's record, per case)</caption>\n",
	    f);
	s_head_row(f, ah, 3);
	json_array_foreach(json_object_get(r, "absence_after"), i, it) {
		fputs("<tr>", f);
		s_cell(f, "td", false, cmd_str(it, "outcome"));
		s_cell_u(f, s_u(it, "count"));
		s_cell(f, "td", true, s_pct(s_u(it, "count"), s_u(r, "cases"),
		    pct, sizeof(pct)));
		fputs("</tr>\n", f);
	}
	fputs("</tbody>\n</table>\n<table class=\"partners\">\n<caption>"
	    "Lead times per partner</caption>\n", f);
	s_head_row(f, ph, 7);
	json_array_foreach(json_object_get(r, "partners"), i, it) {
		s_answers(it, &n);
		fputs("<tr><td>", f);
		s_esc(f, s_partner(it));
		fputs(" <code>", f);
		s_esc(f, cmd_str(it, "partner_oin"));
		fputs("</code></td>", f);
		s_cell_u(f, n.expected);
		s_cell_u(f, n.answered);
		snprintf(buf, sizeof(buf), "%" PRIu64 " of %" PRIu64 " due "
		    "(%s)", n.within, n.due, s_pct(n.within, n.due, pct,
		    sizeof(pct)));
		s_cell(f, "td", true, buf);
		s_cell(f, "td", true, s_days(it, "median_days", buf,
		    sizeof(buf)));
		s_cell(f, "td", true, s_days(it, "p90_days", buf, sizeof(buf)));
		s_cell_u(f, n.overdue);
		fputs("</tr>\n", f);
	}
	fputs("</tbody>\n</table>\n", f);
}

static void
s_html(FILE *f, const json_t *o)
{
	const json_t *routes = json_object_get(o, "routes"), *r;
	char period[256];
	size_t i;

	s_period(o, period, sizeof(period));
	period[0] = (char)toupper((unsigned char)period[0]);
	fputs("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" "
	    "lang=\"en\" xml:lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
	    "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\"/>\n<meta name=\"generator\" content=\"ketenpost "
	    KP_VERSION "\"/>\n<title>Feedback report: ", f);
	s_esc(f, period);
	fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n"
	    "<h1>Feedback report</h1>\n<p class=\"period\">", s_css);
	s_esc(f, period);
	fputs(".</p>\n<p class=\"note\">Per route (MAS steps 9 and 10): the "
	    "cases and referrals, the outcomes partners reported, and per "
	    "partner how many answers were expected, how many came within "
	    "the lead time of the chain policy (of the answers due: answered, "
	    "or overdue now), the median and 90th percentile lead time, and "
	    "the answers overdue now.</p>\n<h2>Summary</h2>\n", f);
	if (json_array_size(routes) == 0)
		fputs("<p>No referrals in this period.</p>\n", f);
	else
		s_html_summary(f, routes);
	json_array_foreach(routes, i, r) {
		fputs("<section class=\"route\">\n<h2>", f);
		s_esc(f, s_route_title(cmd_str(r, "route")));
		fputs(" <code>", f);
		s_esc(f, cmd_str(r, "route"));
		fprintf(f, "</code></h2>\n<p>%" PRIu64 " cases, %" PRIu64
		    " referrals, %" PRIu64 " answers overdue now.</p>\n",
		    s_u(r, "cases"), s_u(r, "referrals"),
		    s_u(r, "overdue_now"));
		s_html_chart(f, r, i);
		s_html_tables(f, r);
		fputs("</section>\n", f);
	}
	fputs("<p class=\"note\">Made by ketenpost " KP_VERSION " from the "
	    "daemon's records.</p>\n</body>\n</html>\n", f);
}

/* Write the HTML report to path; 0 or an exit status after the message. */
static int
s_html_file(const char *path, const json_t *o)
{
	FILE *f = fopen(path, "w");
	int err;

	if (f == NULL)
		return cli_error("cannot write the report to %s: %s", path,
		    strerror(errno));
	s_html(f, o);
	err = ferror(f) ? EIO : 0;
	if (fclose(f) != 0 && err == 0)
		err = errno;
	if (err != 0) {
		unlink(path);
		return cli_error("cannot write the report to %s: %s", path,
		    strerror(err));
	}
	return 0;
}

int
cmd_report(int argc, char **argv)
{
	Kp__ReportRequest q = KP__REPORT_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	struct fb_args a;
	struct cmd_ctx x;
	json_t *o;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_report_spec, argc, argv, &x, &a)) != 0)
		return rc;
	if (a.json && a.html != NULL)
		return cli_usage_error(x.cmd, "give --json or --html, not both");
	if (a.has_from && a.has_to && a.from >= a.to)
		return cli_usage_error(x.cmd, "--from must be before --to");
	q.has_from_ms = a.has_from;
	q.from_ms = a.from;
	q.has_to_ms = a.has_to;
	q.to_ms = a.to;
	q.has_at_ms = a.has_at;
	q.at_ms = a.at;
	req.op_case = KP__REQUEST__OP_REPORT;
	req.report = &q;
	if ((rc = fb_ask(&x, &req, KP__RESPONSE__RESULT_REPORT, &o)) != 0)
		return rc;
	if (a.html == NULL)
		return s_show(o, a.json, s_report_print);
	rc = s_html_file(a.html, o);
	json_decref(o);
	return rc;
}
