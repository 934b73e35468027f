/*
 * commands.c: the subcommands that talk to the organisation's own daemon
 * over its local API (api.c): send, outbox, inbox, fetch, ack, status,
 * subject, purge.
 *
 * Every command here follows the same steps, in this order, so that the
 * exit status tells what went wrong (design.md §8):
 *   1. cmd_parse(): options and positional arguments; anything wrong is a
 *      usage error, exit 2, and nothing else happens;
 *   2. the command's own checks of its arguments (also exit 2) and, for
 *      send, the JSON input turned into the event's protobuf form: a bad
 *      file is refused with its name (exit 1) before any request exists;
 *   3. cmd_call(): find the daemon (--api, --config, $KETENPOST_API,
 *      $KETENPOST_CONFIG), send one Request, wait at most --timeout for
 *      the Response; no answer or a refusal is exit 1;
 *   4. print the result: JSON for programs, a table for people.
 *
 * The JSON form of an API item is made in one place, cmd_msg_json() (plus
 * s_inbox_json() for the payload), and the human tables are printed from
 * that JSON, so the two outputs cannot disagree.  This file must never
 * print an error on stdout or anything but the result there: scripts
 * capture `ketenpost send`'s stdout as the event id.
 *
 * The steps and the JSON helpers (cmd_*) are shared through cmdutil.h
 * with feedback.c (case, cases, remind, report), which works the same way.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "cmdutil.h"
#include "config.h"
#include "envelope.h"
#include "events.h"
#include "pseudonym.h"
#include "apijson.h"
#include "pbjson.h"
#include "util.h"

/* Latest moment kp_time_format() can show: 9999-12-31T23:59:59.999Z. */

#define S_API_HELP \
"Finding the daemon: --api ENDPOINT, or --config FILE (the daemon's config),\n"\
"or $KETENPOST_API, or $KETENPOST_CONFIG.  --timeout SECONDS bounds the wait\n"\
"for an answer (default 10).  --purpose ID states why (recorded in the\n"\
"audit log with every payload read).  Exit 0 ok, 1 refused or failed,\n"\
"2 usage.\n"

/* Decimal lo..hi into *out; 0 / -1. */
static int
s_uint_arg(const char *text, unsigned long lo, unsigned long hi,
    unsigned long *out)
{
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	*out = strtoul(text, &end, 10);
	return *end == '\0' && *out >= lo && *out <= hi ? 0 : -1;
}

static int
s_bad_option(const char *cmd, int c, char **argv)
{
	if (c == ':')
		return cli_usage_error(cmd, "option '%s' needs a value",
		    argv[optind - 1]);
	if (optopt != 0)
		return cli_usage_error(cmd, "unknown option '-%c'", optopt);
	return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}

/* Step 1 for every command.  0 or an exit status (after the message). */
int
cmd_parse(const struct cmd_spec *s, int argc, char **argv, struct cmd_ctx *x,
    void *args)
{
	unsigned long secs;
	int c, rc;

	memset(x, 0, sizeof(*x));
	x->cmd = s->name;
	x->timeout_ms = API_DEFAULT_TIMEOUT_MS;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", s->opts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(s->help, stdout); fputs(S_API_HELP, stdout);
			exit(0);
		case 'A': x->api = optarg; break;
		case 'C': x->config = optarg; break;
		case 'P': x->purpose = optarg; break;
		case 'T':
			if (s_uint_arg(optarg, 1, 3600, &secs) != 0)
				return cli_usage_error(s->name, "--timeout must "
				    "be 1..3600 seconds");
			x->timeout_ms = (int)secs * 1000;
			break;
		case ':': case '?': return s_bad_option(s->name, c, argv);
		default:
			if ((rc = s->opt(args, c, optarg, s->name)) != 0)
				return rc;
		}
	}
	x->args = argv + optind;
	x->nargs = argc - optind;
	if (x->nargs < s->min_args || (s->max_args >= 0 &&
	    x->nargs > s->max_args))
		return cli_usage_error(s->name, "%s", s->args_usage);
	return 0;
}

static const char *
s_env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* The systemd instance for the hint: FILE's base name without ".conf". */
static void
s_unit_name(const char *config, char *buf, size_t len)
{
	const char *base = config ? strrchr(config, '/') : NULL;
	size_t n;

	base = base ? base + 1 : config;
	if (base == NULL || *base == '\0') {
		snprintf(buf, len, "NAME");
		return;
	}
	snprintf(buf, len, "%s", base);
	n = strlen(buf);
	if (n > 5 && strcmp(buf + n - 5, ".conf") == 0)
		buf[n - 5] = '\0';
}

/* Step 3a: the endpoint, and the daemon's unit name for hints. */
static int
s_endpoint(const struct cmd_ctx *x, char *ep, size_t len, char *unit,
    size_t ulen)
{
	const char *api = x->api, *cfg = x->config;
	kp_err_t e;

	if (api != NULL && cfg != NULL)
		return cli_usage_error(x->cmd, "give --api or --config, not "
		    "both");
	if (api == NULL && cfg == NULL &&
	    (api = s_env("KETENPOST_API")) == NULL)
		cfg = s_env("KETENPOST_CONFIG");
	s_unit_name(cfg, unit, ulen);
	if (api != NULL) {
		if ((size_t)snprintf(ep, len, "%s", api) >= len)
			return cli_usage_error(x->cmd, "the API endpoint is "
			    "too long");
		return 0;
	}
	if (cfg == NULL)
		return cli_usage_error(x->cmd, "which daemon? give --api "
		    "ENDPOINT or --config FILE, or set KETENPOST_API or "
		    "KETENPOST_CONFIG");
	if (config_api_endpoint(cfg, ep, len, &e) != 0)
		return cli_error("%s", e.msg);
	return 0;
}

/*
 * Step 3: ask the daemon.  0 with *r (owned by the caller, freed with
 * kp__response__free_unpacked) carrying result `want`, or with no result
 * at all if empty_ok; otherwise an exit status after the message.
 */
/*
 * One request, tried up to x->attempts times while there is no answer
 * (a timeout, a daemon restarting).  Only for a request that is safe to
 * repeat: a send carries its idempotency key, so a retry of a send that
 * was stored but not answered gets the same event id and stores nothing.
 * Every try has a fresh socket (a REQ socket that timed out is out of
 * step) and the retries wait 1 s, 2 s, ... so a restarting daemon is met.
 */
static int
s_call_tries(const struct cmd_ctx *x, const char *ep, const Kp__Request *req,
    Kp__Response **r, kp_err_t *e)
{
	api_client_t *c;
	int tries = x->attempts > 1 ? x->attempts : 1, i, rc = -1;

	for (i = 1; i <= tries; i++) {
		if ((c = api_connect(ep, x->timeout_ms, e)) == NULL)
			return -1;
		rc = api_call(c, req, r, e);
		api_destroy(&c);
		if (rc == 0 || e->code != KP_ERR_IO || i == tries)
			break;
		fprintf(stderr, "ketenpost %s: %s; trying again (%d of %d), "
		    "safely: the same request with the same idempotency key\n",
		    x->cmd, e->msg, i + 1, tries);
		sleep((unsigned)i);
	}
	return rc;
}

int
cmd_call(const struct cmd_ctx *x, const Kp__Request *req,
    Kp__Response__ResultCase want, bool empty_ok, Kp__Response **r)
{
	char ep[KP_PATH_MAX + 16], unit[256];
	Kp__Request with = *req;
	kp_err_t e;
	int rc;

	*r = NULL;
	if (x->purpose != NULL)
		with.purpose = (char *)x->purpose;
	if ((rc = s_endpoint(x, ep, sizeof(ep), unit, sizeof(unit))) != 0)
		return rc;
	rc = s_call_tries(x, ep, &with, r, &e);
	if (rc != 0 && e.code == KP_ERR_IO)
		return cli_error("%s (is ketenpostd running? see 'systemctl "
		    "status ketenpostd@%s')", e.msg, unit);
	if (rc != 0)
		return cli_error("%s", e.msg);
	if ((*r)->result_case == want ||
	    (empty_ok && (*r)->result_case == KP__RESPONSE__RESULT__NOT_SET))
		return 0;
	kp__response__free_unpacked(*r, NULL);
	*r = NULL;
	return cli_error("the daemon at %s gave an answer of the wrong kind "
	    "to '%s'", ep, x->cmd);
}

/* ---- the JSON form of API items ---- */

/* The JSON form is lib/apijson.c's, shared with the daemon's REST API. */
json_t *
cmd_uuid_json(json_t *hex)
{
	return apijson_uuid(hex);
}

void
cmd_add_time(json_t *o, const char *key, const json_t *ms)
{
	apijson_add_time(o, key, ms);
}

json_t *
cmd_msg_json(const ProtobufCMessage *msg)
{
	return apijson_msg(msg);
}

/*
 * An inbox item: cmd_msg_json() with "payload" the event as a JSON object.
 * A payload that does not unpack as its event type (which the daemon
 * should never store) becomes null plus "payload_error".
 */
static json_t *
s_inbox_json(const Kp__InboxItem *it)
{
	return apijson_tree(&it->base);
}

/* ---- human output, read from the JSON form ---- */

const char *
cmd_str(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL && *v != '\0' ? v : "-";
}

uint64_t
cmd_u64(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

const char *
cmd_partner(const json_t *o)
{
	const char *name = cmd_str(o, "partner_name");

	return strcmp(name, "-") != 0 ? name : cmd_str(o, "partner_oin");
}

/* An integer member as text into buf. */
const char *
cmd_num(const json_t *o, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	else
		snprintf(buf, len, "%s", cmd_str(o, key));
	return buf;
}

#define S_OUTBOX_ROW "%-36s  %-12s  %-20s  %-16s  %-9s  %5s  %-24s  %s\n"
#define S_INBOX_ROW "%-36s  %-12s  %-20s  %-16s  %-24s  %-5s  %s\n"

static void
s_outbox_head(void)
{
	printf(S_OUTBOX_ROW, "EVENT ID", "TYPE", "TO", "CASE", "STATE",
	    "TRIES", "CREATED", "RECEIPT (digest, reason)");
}

static void
s_outbox_row(const json_t *o)
{
	const char *reason = cmd_str(o, "reason");
	char n[32], receipt[64];

	bool has_reason = strcmp(reason, "none") != 0 && strcmp(reason, "-") != 0;

	snprintf(receipt, sizeof(receipt), "%.16s%s%s",
	    json_object_get(o, "receipt_digest") ? cmd_str(o, "receipt_digest") :
	    "", has_reason ? " " : "", has_reason ? reason : "");
	printf(S_OUTBOX_ROW, cmd_str(o, "event_id"), cmd_str(o, "event_type"),
	    cmd_str(o, "to_oin"), cmd_str(o, "case_ref"), cmd_str(o, "state"),
	    cmd_num(o, "attempts", n, sizeof(n)), cmd_str(o, "created_at"),
	    receipt);
}

static void
s_inbox_head(void)
{
	printf(S_INBOX_ROW, "EVENT ID", "TYPE", "FROM", "CASE", "RECEIVED",
	    "ACKED", "PAYLOAD");
}

static void
s_inbox_row(const json_t *o)
{
	char ref[16], *payload = NULL;
	const char *c = cmd_str(o, "case_ref");
	const json_t *p = json_object_get(o, "payload");

	if (strcmp(c, "-") == 0) {
		snprintf(ref, sizeof(ref), "%.12s", cmd_str(o,
		    "case_pseudonym"));
		c = ref;
	}
	if (p != NULL)
		payload = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER |
		    JSON_ENCODE_ANY);
	printf(S_INBOX_ROW, cmd_str(o, "event_id"), cmd_str(o, "event_type"),
	    cmd_str(o, "from_oin"), c, cmd_str(o, "received_at"),
	    json_is_true(json_object_get(o, "acknowledged")) ? "yes" : "no",
	    payload != NULL ? payload : "-");
	free(payload);
}

struct table {
	void (*head)(void);
	void (*row)(const json_t *item);
	const char *empty;             /* the line for an empty list */
};

/* Print the array items (consumed) as JSON or as a table. */
static int
s_print_items(json_t *items, bool json, const struct table *t)
{
	size_t i;
	json_t *v;

	if (items == NULL)
		return cli_error("cannot show the daemon's answer (out of "
		    "memory or text that is not UTF-8)");
	if (json)
		cli_print_json(items);
	else if (json_array_size(items) == 0)
		puts(t->empty);
	else {
		t->head();
		json_array_foreach(items, i, v)
			t->row(v);
	}
	json_decref(items);
	return 0;
}

/* Append item (consumed) to arr; on NULL drop arr.  Returns arr or NULL. */
json_t *
cmd_push(json_t *arr, json_t *item)
{
	return apijson_push(arr, item);
}

/* ---- send ---- */

#define S_SEND_ATTEMPTS 3
#define S_IDEM_KEY_MAX 128     /* as the daemon: apisrv.c */

struct send_args {
	const char *to, *ref, *json, *reply_to, *ttl, *idem;
	uint8_t reply_id[16];
	char key[KP_UUID_TEXT_LEN + 1];  /* made when no --idempotency-key */
};

static const char s_send_help[] =
"usage: ketenpost send TYPE --to OIN --case REF --json FILE|-\n"
"                      [--reply-to EVENT_ID] [--ttl DURATION]\n"
"                      [--idempotency-key KEY]\n"
"                      [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"Hand one event of TYPE (referral, halt_outcome, rvdk_advice, om_decision,\n"
"jbt_request) to the daemon for delivery to organisation OIN, about the\n"
"local case REF (1-64 printable characters, no spaces).  The payload is\n"
"the JSON object in FILE (- for stdin), with the proto field names, at\n"
"most 32768 bytes packed.  --ttl (30d, 12h, ...) overrides the daemon's\n"
"default expiry.  Without an answer the request is tried 3 times with\n"
"one idempotency key (made per invocation, or KEY: 1-128 printable\n"
"characters; the same KEY again returns the first event's id and sends\n"
"nothing new).  Prints the event id and nothing else.\n";

static int
s_send_opt(void *args, int c, const char *arg, const char *cmd)
{
	struct send_args *a = args;

	switch (c) {
	case 't': a->to = arg; break;
	case 'k': a->ref = arg; break;
	case 'j': a->json = arg; break;
	case 'r': a->reply_to = arg; break;
	case 'l': a->ttl = arg; break;
	case 'i': a->idem = arg; break;
	default: return cli_usage_error(cmd, "bad option");
	}
	return 0;
}

static const struct option s_send_opts[] = {
	{ "to", 1, NULL, 't' }, { "case", 1, NULL, 'k' },
	{ "json", 1, NULL, 'j' }, { "reply-to", 1, NULL, 'r' },
	{ "ttl", 1, NULL, 'l' }, { "idempotency-key", 1, NULL, 'i' },
	CMD_API_OPTIONS };

static const struct cmd_spec s_send_spec = {
	"send", s_send_help, s_send_opts, s_send_opt, 1, 1,
	"expected exactly one TYPE"
};

/* The idempotency key: --idempotency-key, or a fresh one for this run. */
static int
s_send_key(const struct cmd_ctx *x, struct send_args *a, Kp__SendRequest *s)
{
	uint8_t id[16];
	size_t i, n;

	if (a->idem != NULL) {
		n = strlen(a->idem);
		for (i = 0; i < n && a->idem[i] > ' ' && a->idem[i] <= '~'; i++)
			;
		if (n == 0 || n > S_IDEM_KEY_MAX || i < n)
			return cli_usage_error(x->cmd, "--idempotency-key must be "
			    "1-%d printable characters without spaces",
			    S_IDEM_KEY_MAX);
		s->idempotency_key = (char *)a->idem;
		return 0;
	}
	kp_uuid_new(id);
	kp_uuid_format(id, a->key);
	s->idempotency_key = a->key;
	return 0;
}

/* Step 2a: the arguments into s (pointing into argv and a). */
static int
s_send_check(const struct cmd_ctx *x, struct send_args *a,
    Kp__SendRequest *s)
{
	uint64_t ms;

	if ((s->event_type = events_type_from_name(x->args[0])) == 0)
		return cli_usage_error(x->cmd, "unknown event type '%s' "
		    "(referral, halt_outcome, rvdk_advice, om_decision or "
		    "jbt_request)", x->args[0]);
	s->has_event_type = 1;
	if (a->to == NULL || a->ref == NULL || a->json == NULL)
		return cli_usage_error(x->cmd, "--to, --case and --json are "
		    "required");
	if (!kp_oin_valid(a->to))
		return cli_usage_error(x->cmd, "--to '%s' is not an OIN (20 "
		    "digits)", a->to);
	if (*a->ref == '\0')
		return cli_usage_error(x->cmd, "--case must not be empty");
	if (!pseudonym_ref_valid(a->ref))
		return cli_usage_error(x->cmd, "--case must be 1-%d printable "
		    "characters without spaces (this one has %zu bytes)",
		    KP_CASE_LOCAL_MAX, strlen(a->ref));
	s->to_oin = (char *)a->to;
	s->case_ref = (char *)a->ref;
	if (a->reply_to != NULL) {
		if (kp_uuid_parse(a->reply_to, a->reply_id) != 0)
			return cli_usage_error(x->cmd, "--reply-to '%s' is not "
			    "an event id", a->reply_to);
		s->has_in_reply_to = 1;
		s->in_reply_to.data = a->reply_id;
		s->in_reply_to.len = sizeof(a->reply_id);
	}
	if (a->ttl != NULL) {
		if (config_parse_duration(a->ttl, &ms) == 0 && ms == 0)
			return cli_usage_error(x->cmd, "--ttl must be at least "
			    "1s: an event that expires at once cannot be "
			    "delivered (leave --ttl out for the daemon's "
			    "default)");
		if (config_parse_duration(a->ttl, &ms) != 0 || ms < 1000 ||
		    ms % 1000 != 0 || ms / 1000 > UINT32_MAX)
			return cli_usage_error(x->cmd, "--ttl '%s' is not a "
			    "duration of whole seconds (30d, 12h, 90m, 45s)",
			    a->ttl);
		s->has_ttl_seconds = 1;
		s->ttl_seconds = (uint32_t)(ms / 1000);
	}
	return s_send_key(x, a, s);
}

/* Step 2b: the JSON payload as the event's protobuf.  OUT: *out. */

int
cmd_send(int argc, char **argv)
{
	struct send_args a;
	struct cmd_ctx x;
	Kp__SendRequest s = KP__SEND_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r = NULL;
	char id[KP_UUID_TEXT_LEN + 1];
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_send_spec, argc, argv, &x, &a)) != 0 ||
	    (rc = s_send_check(&x, &a, &s)) != 0 ||
	    (rc = cli_event_payload(s.event_type, a.json, &s.payload)) != 0)
		return rc;
	s.has_payload = 1;
	if (s.payload.len > KP_MAX_PAYLOAD) {
		rc = cli_error("%s: the event is %zu bytes packed, over the limit "
		    "of %d bytes for one event; nothing was sent",
		    strcmp(a.json, "-") == 0 ? "<stdin>" : a.json,
		    s.payload.len, KP_MAX_PAYLOAD);
		goto out;
	}
	x.attempts = S_SEND_ATTEMPTS;
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &s;
	if ((rc = cmd_call(&x, &req, KP__RESPONSE__RESULT_SEND, false, &r)) != 0)
		goto out;
	if (!r->send->has_event_id || r->send->event_id.len != 16) {
		rc = cli_error("the daemon accepted the event but sent no event "
		    "id back");
		goto out;
	}
	kp_uuid_format(r->send->event_id.data, id);
	printf("%s\n", id);
out:
	if (r != NULL)
		kp__response__free_unpacked(r, NULL);
	free(s.payload.data);
	return rc;
}

/* ---- outbox, inbox, fetch, status: --json, --all, --limit ---- */

struct list_args {
	bool json, all, values;       /* values: subject --values */
	uint32_t limit;                /* 0: the daemon's default */
};

static int
s_list_opt(void *args, int c, const char *arg, const char *cmd)
{
	struct list_args *a = args;
	unsigned long n;

	switch (c) {
	case 'J': a->json = true; break;
	case 'a': a->all = true; break;
	case 'V': a->values = true; break;
	case 'n':
		if (s_uint_arg(arg, 1, 1000000, &n) != 0)
			return cli_usage_error(cmd, "--limit must be "
			    "1..1000000");
		a->limit = (uint32_t)n;
		break;
	default: return cli_usage_error(cmd, "bad option");
	}
	return 0;
}

static const struct option s_outbox_opts[] = {
	{ "json", 0, NULL, 'J' }, { "limit", 1, NULL, 'n' }, CMD_API_OPTIONS };
static const struct option s_inbox_opts[] = {
	{ "json", 0, NULL, 'J' }, { "limit", 1, NULL, 'n' },
	{ "all", 0, NULL, 'a' }, CMD_API_OPTIONS };
static const struct option s_json_opts[] = {
	{ "json", 0, NULL, 'J' }, CMD_API_OPTIONS };
static const struct option s_subject_opts[] = {
	{ "json", 0, NULL, 'J' }, { "values", 0, NULL, 'V' }, CMD_API_OPTIONS };

/* outbox and inbox: ListRequests page by page, one list of items. */
struct list_cmd {
	const struct cmd_spec *spec;
	Kp__Request__OpCase op;
	Kp__Response__ResultCase result;
	/* one answer's items appended to the JSON array (NULL: dropped);
	 * OUT: how many, the last one's seq, and whether more follow */
	json_t *(*items)(json_t *arr, const Kp__Response *r, size_t *n,
	    uint64_t *last_seq, bool *more);
	struct table table;
};

#define LIST_DEFAULT 1000              /* the daemon's default limit */
#define LIST_PAGE_MAX 10000            /* the most it answers at once */

/*
 * Up to the limit asked (default LIST_DEFAULT) in pages of at most
 * LIST_PAGE_MAX, each asked after the last seq of the one before.  The
 * daemon also stops an answer at a byte bound, so an answer shorter than
 * asked is not the end: `more` says whether items follow.  An older
 * daemon leaves it unset; then an answer without items is the end.
 */
static int
s_list_run(const struct list_cmd *lc, int argc, char **argv)
{
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r = NULL;
	struct list_args a;
	struct cmd_ctx x;
	json_t *items = json_array();
	size_t got = 0, want, n;
	bool more = true;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(lc->spec, argc, argv, &x, &a)) != 0) {
		json_decref(items);
		return rc;
	}
	want = a.limit != 0 ? a.limit : LIST_DEFAULT;
	l.has_limit = l.has_after_seq = 1;
	l.has_all = a.all;
	l.all = a.all;
	req.op_case = lc->op;
	if (lc->op == KP__REQUEST__OP_OUTBOX)
		req.outbox = &l;
	else
		req.inbox = &l;
	while (more && got < want && items != NULL) {
		l.limit = (uint32_t)(want - got < LIST_PAGE_MAX ? want - got :
		    LIST_PAGE_MAX);
		if ((rc = cmd_call(&x, &req, lc->result, true, &r)) != 0) {
			json_decref(items);
			return rc;
		}
		items = lc->items(items, r, &n, &l.after_seq, &more);
		kp__response__free_unpacked(r, NULL);
		got += n;
		if (more && n == 0) {
			/* cannot page on from nothing: not the end either */
			fprintf(stderr, "ketenpost: the daemon said more items "
			    "follow but sent none; the list is incomplete\n");
			json_decref(items);
			return 1;
		}
	}
	return s_print_items(items, a.json, &lc->table);
}

/* An answer's `more`, or for an older daemon that leaves it unset: any
 * items at all (page on until an empty answer). */
static bool
s_more(protobuf_c_boolean has_more, protobuf_c_boolean more, size_t n)
{
	return has_more ? more != 0 : n > 0;
}

static json_t *
s_outbox_items(json_t *items, const Kp__Response *r, size_t *n,
    uint64_t *last_seq, bool *more)
{
	const Kp__OutboxList *o = r->outbox;
	size_t i;

	*n = o != NULL ? o->n_items : 0;
	*more = o != NULL && s_more(o->has_more, o->more, *n);
	for (i = 0; i < *n; i++) {
		items = cmd_push(items, cmd_msg_json(&o->items[i]->base));
		*last_seq = o->items[i]->seq;
	}
	return items;
}

static json_t *
s_inbox_items(json_t *items, const Kp__Response *r, size_t *n,
    uint64_t *last_seq, bool *more)
{
	const Kp__InboxList *o = r->inbox;
	size_t i;

	*n = o != NULL ? o->n_items : 0;
	*more = o != NULL && s_more(o->has_more, o->more, *n);
	for (i = 0; i < *n; i++) {
		items = cmd_push(items, s_inbox_json(o->items[i]));
		*last_seq = o->items[i]->seq;
	}
	return items;
}

static const char s_outbox_help[] =
"usage: ketenpost outbox [--json] [--limit N]\n"
"                        [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"Show the delivery state (pending, delivered, rejected, dead) of the events\n"
"this organisation sent (at most N, default 1000).  --json prints a JSON\n"
"array (see ketenpost(1)).\n";

static const struct cmd_spec s_outbox_spec = {
	"outbox", s_outbox_help, s_outbox_opts, s_list_opt, 0, 0,
	"takes no arguments"
};

static const struct list_cmd s_outbox_cmd = {
	&s_outbox_spec, KP__REQUEST__OP_OUTBOX, KP__RESPONSE__RESULT_OUTBOX,
	s_outbox_items, { s_outbox_head, s_outbox_row, "the outbox is empty" }
};

int
cmd_outbox(int argc, char **argv)
{
	return s_list_run(&s_outbox_cmd, argc, argv);
}

static const char s_inbox_help[] =
"usage: ketenpost inbox [--json] [--all] [--limit N]\n"
"                       [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"Show the events received and not yet acknowledged (with --all also the\n"
"acknowledged ones), at most N (default 1000), each with its payload.\n"
"--json prints a JSON array (see ketenpost(1)).\n";

static const struct cmd_spec s_inbox_spec = {
	"inbox", s_inbox_help, s_inbox_opts, s_list_opt, 0, 0,
	"takes no arguments"
};

static const struct list_cmd s_inbox_cmd = {
	&s_inbox_spec, KP__REQUEST__OP_INBOX, KP__RESPONSE__RESULT_INBOX,
	s_inbox_items, { s_inbox_head, s_inbox_row,
	"no unacknowledged events in the inbox (--all shows all)" }
};

int
cmd_inbox(int argc, char **argv)
{
	return s_list_run(&s_inbox_cmd, argc, argv);
}

/* ---- fetch, ack ---- */

/* The positional arguments as 16-byte event ids.  OUT: *ids (malloc'd). */
static int
s_event_ids(const struct cmd_ctx *x, ProtobufCBinaryData **ids)
{
	uint8_t *raw;
	int i;

	*ids = calloc((size_t)x->nargs, sizeof(**ids) + 16);
	if (*ids == NULL)
		return cli_error("out of memory");
	raw = (uint8_t *)(*ids + x->nargs);
	for (i = 0; i < x->nargs; i++) {
		if (kp_uuid_parse(x->args[i], raw + 16 * i) != 0) {
			free(*ids);
			*ids = NULL;
			return cli_usage_error(x->cmd, "'%s' is not an event "
			    "id", x->args[i]);
		}
		(*ids)[i].data = raw + 16 * i;
		(*ids)[i].len = 16;
	}
	return 0;
}

static const char s_fetch_help[] =
"usage: ketenpost fetch EVENT_ID [--json]\n"
"                       [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"Print one received event, with its payload, as a JSON object (the form of\n"
"one 'inbox --json' item; --json is accepted and changes nothing).\n";

static const struct cmd_spec s_fetch_spec = {
	"fetch", s_fetch_help, s_json_opts, s_list_opt, 1, 1,
	"expected exactly one EVENT_ID"
};

int
cmd_fetch(int argc, char **argv)
{
	struct list_args a;
	struct cmd_ctx x;
	Kp__FetchRequest f = KP__FETCH_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r = NULL;
	ProtobufCBinaryData *ids = NULL;
	json_t *o;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_fetch_spec, argc, argv, &x, &a)) != 0 ||
	    (rc = s_event_ids(&x, &ids)) != 0)
		return rc;
	f.has_event_id = 1;
	f.event_id = ids[0];
	req.op_case = KP__REQUEST__OP_FETCH;
	req.fetch = &f;
	rc = cmd_call(&x, &req, KP__RESPONSE__RESULT_ITEM, false, &r);
	free(ids);
	if (rc != 0)
		return rc;
	if ((o = s_inbox_json(r->item)) != NULL) {
		cli_print_json(o);
		json_decref(o);
	} else
		rc = cli_error("cannot show the daemon's answer");
	kp__response__free_unpacked(r, NULL);
	return rc;
}

static const char s_ack_help[] =
"usage: ketenpost ack EVENT_ID... [--api ENDPOINT | --config FILE]\n"
"                     [--timeout SECONDS]\n"
"Mark received events as handled, so that 'inbox' no longer shows them.\n"
"Prints \"acknowledged N\", N the events newly acknowledged (repeats and\n"
"unknown ids count 0).\n";

static const struct option s_ack_opts[] = { CMD_API_OPTIONS };

static const struct cmd_spec s_ack_spec = {
	"ack", s_ack_help, s_ack_opts, s_list_opt, 1, -1,
	"expected one or more EVENT_IDs"
};

int
cmd_ack(int argc, char **argv)
{
	struct list_args a;
	struct cmd_ctx x;
	Kp__AckRequest ack = KP__ACK_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r = NULL;
	ProtobufCBinaryData *ids = NULL;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_ack_spec, argc, argv, &x, &a)) != 0 ||
	    (rc = s_event_ids(&x, &ids)) != 0)
		return rc;
	ack.n_event_ids = (size_t)x.nargs;
	ack.event_ids = ids;
	req.op_case = KP__REQUEST__OP_ACK;
	req.ack = &ack;
	rc = cmd_call(&x, &req, KP__RESPONSE__RESULT_ACK, false, &r);
	free(ids);
	if (rc != 0)
		return rc;
	printf("acknowledged %" PRIu32 "\n", r->ack->has_acknowledged ?
	    r->ack->acknowledged : 0);
	kp__response__free_unpacked(r, NULL);
	return 0;
}

/* ---- status ---- */

static const char s_status_help[] =
"usage: ketenpost status [--json] [--api ENDPOINT | --config FILE]\n"
"                        [--timeout SECONDS]\n"
"Show who the daemon is (OIN, role, name), its version and uptime, the\n"
"counts of its outbox and inbox, and the state of its trust material: the\n"
"chain bundle version, whether the CRL is stale (exchanges refused and\n"
"held) and warnings before the CRL or a certificate expires.  --json\n"
"prints the StatusResponse fields.\n";

static const struct cmd_spec s_status_spec = {
	"status", s_status_help, s_json_opts, s_list_opt, 0, 0,
	"takes no arguments"
};

/* Trust freshness: the bundle version, stale trust, expiry warnings. */
static void
s_status_trust_print(const Kp__StatusResponse *s)
{
	size_t i;

	if (s->has_bundle_version && s->bundle_version > 0)
		printf("bundle        version %" PRIu64 "\n", s->bundle_version);
	printf("trust         %s\n", s->trust_stale ? "STALE: exchanges "
	    "refused and held" : s->n_trust_warnings ? "ok, with warnings" :
	    "ok");
	for (i = 0; i < s->n_trust_warnings; i++)
		printf("  warning     %s\n", s->trust_warnings[i]);
}

static void
s_status_print(const Kp__StatusResponse *s)
{
	uint64_t up = s->uptime_ms / 1000;

	printf("organisation  %s (%s, %s)\n", s->oin ? s->oin : "-",
	    s->role ? s->role : "-", s->name ? s->name : "-");
	printf("version       %s\n", s->version ? s->version : "-");
	printf("uptime        %" PRIu64 "d %02u:%02u:%02u\n", up / 86400,
	    (unsigned)(up / 3600 % 24), (unsigned)(up / 60 % 60),
	    (unsigned)(up % 60));
	printf("partners      %" PRIu32 "\n", s->partners);
	printf("outbox        %" PRIu64 " pending, %" PRIu64 " delivered, %"
	    PRIu64 " rejected, %" PRIu64 " dead\n", s->outbox_pending,
	    s->outbox_delivered, s->outbox_rejected, s->outbox_dead);
	printf("inbox         %" PRIu64 " unacknowledged, %" PRIu64
	    " in total\n", s->inbox_unacknowledged, s->inbox_total);
	if (s->destruction_pending > 0)
		printf("purge         %" PRIu32 " payload(s) removed, destruction "
		    "pending (a reader holds the database)\n",
		    s->destruction_pending);
	s_status_trust_print(s);
}

int
cmd_status(int argc, char **argv)
{
	struct list_args a;
	struct cmd_ctx x;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r = NULL;
	json_t *o;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_status_spec, argc, argv, &x, &a)) != 0)
		return rc;
	req.op_case = KP__REQUEST__OP_STATUS;
	req.status = 1;
	if ((rc = cmd_call(&x, &req, KP__RESPONSE__RESULT_STATUS, false,
	    &r)) != 0)
		return rc;
	if (!a.json)
		s_status_print(r->status);
	else if ((o = cmd_msg_json(&r->status->base)) != NULL) {
		cli_print_json(o);
		json_decref(o);
	} else
		rc = cli_error("cannot show the daemon's answer");
	kp__response__free_unpacked(r, NULL);
	return rc;
}

/* ---- subject: what was shared about one case (GDPR art. 15) ---- */

static const char s_subject_help[] =
"usage: ketenpost subject REF [--values] [--json]\n"
"                         [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"Everything shared about local case REF, for the parents or youth who ask\n"
"what was shared (GDPR art. 15): each event sent or received, when, with\n"
"which organisation, its type, purpose and legal basis, the names of the\n"
"fields shared, the delivery state, and whether the payload has been\n"
"destroyed at the end of its retention.  --values adds the values shared,\n"
"as far as they are still kept (events received, until their retention\n"
"ends; a sent event's payload is not kept once delivered).\n";

static const struct cmd_spec s_subject_spec = {
	"subject", s_subject_help, s_subject_opts, s_list_opt, 1, 1,
	"expected one local case reference"
};

static json_t *
s_subject_json(const Kp__SubjectResponse *sr)
{
	json_t *o = json_object(), *items = json_array();
	size_t i;

	json_object_set_new(o, "case_ref", json_string(sr->case_ref ?
	    sr->case_ref : ""));
	for (i = 0; i < sr->n_items; i++)
		json_array_append_new(items, cmd_msg_json(&sr->items[i]->base));
	json_object_set_new(o, "items", items);
	return o;
}

#define S_SUBJECT_ROW "%-24s  %-8s  %-32.32s  %-12s  %-22s  %-24s  %-9s  %s\n"

static void
s_subject_print(const json_t *o)
{
	const json_t *items = json_object_get(o, "items"), *it, *f;
	char fields[600];
	size_t i, j, n;

	printf("Case %s: %zu event(s) shared\n", cmd_str(o, "case_ref"),
	    json_array_size(items));
	printf(S_SUBJECT_ROW, "WHEN", "SHARED", "WITH", "TYPE", "PURPOSE",
	    "LEGAL BASIS", "STATE", "FIELDS SHARED");
	json_array_foreach(items, i, it) {
		n = 0;
		fields[0] = '\0';
		json_array_foreach(json_object_get(it, "fields"), j, f)
			n += (size_t)snprintf(fields + n, n < sizeof(fields) ?
			    sizeof(fields) - n : 0, "%s%s", j ? ", " : "",
			    json_string_value(f));
		printf(S_SUBJECT_ROW, cmd_str(it, "at"), cmd_str(it, "direction"),
		    cmd_str(it, "partner_name"), cmd_str(it, "event_type"),
		    cmd_str(it, "purpose"), cmd_str(it, "legal_basis"),
		    json_object_get(it, "state") ? cmd_str(it, "state") : "received",
		    json_is_true(json_object_get(it, "payload_destroyed")) ?
		    "(payload destroyed) " : "");
		if (fields[0] != '\0')
			printf("%*s%s\n", 2, "", fields);
		if (json_object_get(it, "values_json") != NULL)
			printf("%*svalues: %s\n", 2, "", cmd_str(it,
			    "values_json"));
	}
}

int
cmd_subject(int argc, char **argv)
{
	Kp__SubjectRequest q = KP__SUBJECT_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r = NULL;
	struct list_args a;
	struct cmd_ctx x;
	json_t *o;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_subject_spec, argc, argv, &x, &a)) != 0)
		return rc;
	q.case_ref = x.args[0];
	q.has_with_values = a.values;
	q.with_values = a.values;
	req.op_case = KP__REQUEST__OP_SUBJECT;
	req.subject = &q;
	if ((rc = cmd_call(&x, &req, KP__RESPONSE__RESULT_SUBJECT, false,
	    &r)) != 0)
		return rc;
	o = s_subject_json(r->subject);
	if (a.json)
		cli_print_json(o);
	else
		s_subject_print(o);
	json_decref(o);
	kp__response__free_unpacked(r, NULL);
	return 0;
}

/* ---- purge: enforce retention now ---- */

static const char s_purge_help[] =
"usage: ketenpost purge [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"Destroy now every payload whose retention period (chain policy) has ended;\n"
"their metadata stays for the audit.  The daemon also does this on a timer.\n"
"Prints \"purged N\".  While a reader holds the database open, removed\n"
"payloads are not yet destroyed: then it prints \"purged N, destruction\n"
"pending M\" and exits 1 (the daemon retries; see status).\n";

static const struct cmd_spec s_purge_spec = {
	"purge", s_purge_help, s_json_opts, s_list_opt, 0, 0,
	"takes no arguments"
};

int
cmd_purge(int argc, char **argv)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r = NULL;
	struct list_args a;
	struct cmd_ctx x;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_purge_spec, argc, argv, &x, &a)) != 0)
		return rc;
	req.op_case = KP__REQUEST__OP_PURGE;
	req.purge = 1;
	if ((rc = cmd_call(&x, &req, KP__RESPONSE__RESULT_PURGE, false, &r)) != 0)
		return rc;
	if (r->purge->destruction_pending > 0) {
		printf("purged %" PRIu32 ", destruction pending %" PRIu32 "\n",
		    r->purge->purged, r->purge->destruction_pending);
		rc = cli_error("purge: %" PRIu32 " payload(s) not yet "
		    "destroyed: a reader holds the database open; the daemon "
		    "retries every second (see ketenpost status)",
		    r->purge->destruction_pending);
	} else {
		printf("purged %" PRIu32 "\n", r->purge->purged);
	}
	kp__response__free_unpacked(r, NULL);
	return rc;
}
