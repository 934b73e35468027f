/*
 * test_policy.c: lib/policy.c (the chain policy) with policy/mas.ini, and
 * the policy file's error reports.
 *
 * mas.ini is copied into a fresh tmpdir (mode 0644) before it is loaded,
 * so the test does not depend on the umask of the checkout; the hash is
 * compared with BLAKE2b-256 of the file in the source tree.  Events are
 * built from JSON with pbjson_from_json(), as the client does, and
 * changed by hand where JSON cannot express the fault (enum value 42,
 * unknown field numbers).  Every refusal is checked by its exact line.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>

#include "common.h"
#include "events.h"
#include "pbjson.h"
#include "policy.h"
#include "util.h"

TestSuite(policy, .init = test_init);

#define DAY_MS (24ULL * 3600 * 1000)
#define KNOWN_SECTIONS "(known: chain, referral, halt_outcome, " \
	"rvdk_advice, om_decision, jbt_request, reminder, care_notice)"
#define ROLES "(roles: leerplicht, halt, rvdk, om, jbt, zorg)"

enum { LP = KP_ROLE_LEERPLICHT, HALT = KP_ROLE_HALT, RVDK = KP_ROLE_RVDK,
	OM = KP_ROLE_OM, JBT = KP_ROLE_JBT, AUDITOR = KP_ROLE_AUDITOR };

/* ---- helpers ----------------------------------------------------- */

struct reports {
	char line[40][1024];
	int n;
};

static void
s_collect(void *arg, const char *line)
{
	struct reports *r = arg;

	cr_assert(strchr(line, '\n') == NULL, "report is not one line");
	if (r->n < 40)
		snprintf(r->line[r->n], sizeof(r->line[0]), "%s", line);
	r->n++;
}

/* dir/name with len bytes of text, mode 0644; the path into out. */
static const char *
s_write(const char *dir, const char *name, const char *text, size_t len,
    char *out, size_t outlen)
{
	FILE *f;

	snprintf(out, outlen, "%s/%s", dir, name);
	f = fopen(out, "w");
	cr_assert_not_null(f, "cannot write %s", out);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(out, 0644), 0);
	return out;
}

static void
s_rm(const char *dir)
{
	cr_assert_eq(test_sh("rm -rf '%s'", dir), 0);
}

/* The bytes of policy/mas.ini (malloc'd, NUL terminated). */
static char *
s_mas_text(size_t *len)
{
	char path[1024];
	uint8_t *buf;

	snprintf(path, sizeof(path), "%s/policy/mas.ini", test_source_dir());
	cr_assert_eq(kp_read_file(path, 1 << 20, &buf, len), 0, "read %s",
	    path);
	return (char *)buf;
}

/* Load text (len bytes) as tmp/policy.ini; expect no problem at all. */
static policy_t *
s_load_text(const char *text, size_t len)
{
	char tmp[256], path[1024];
	struct reports r = { .n = 0 };
	policy_t *pol = NULL;
	kp_err_t err;
	int n = -1;

	test_tmpdir(tmp, sizeof(tmp));
	s_write(tmp, "policy.ini", text, len, path, sizeof(path));
	cr_assert_eq(policy_load(path, &pol, s_collect, &r, &n, &err), 0,
	    "%s", err.msg);
	cr_assert_eq(n, 0);
	cr_assert_eq(r.n, 0, "first report: %s", r.line[0]);
	cr_assert_eq(err.code, KP_OK);
	cr_assert_not_null(pol);
	s_rm(tmp);
	return pol;
}

static policy_t *
s_mas(void)
{
	size_t len;
	char *text = s_mas_text(&len);
	policy_t *pol = s_load_text(text, len);

	free(text);
	return pol;
}

/*
 * Load text; expect it refused with exactly `want` problems, the reports
 * equal to expect[] with "F" standing for the file, err the first one
 * with KP_ERR_POLICY, and no policy returned.
 */
static void
s_load_bad(const char *text, int want, const char *const *expect)
{
	char tmp[256], path[1024], line[2048];
	struct reports r = { .n = 0 };
	policy_t *pol = (policy_t *)&r;
	kp_err_t err;
	int n = -1, i;

	test_tmpdir(tmp, sizeof(tmp));
	s_write(tmp, "p.ini", text, strlen(text), path, sizeof(path));
	cr_assert_eq(policy_load(path, &pol, s_collect, &r, &n, &err), -1,
	    "accepted:\n%s", text);
	cr_assert_null(pol);
	cr_assert_eq(n, r.n, "n_problems %d but %d reports", n, r.n);
	for (i = 0; i < r.n && i < 40; i++)
		cr_log_info("report %d: %s", i, r.line[i]);
	cr_assert_eq(n, want, "%d problems, not %d, in:\n%s", n, want, text);
	for (i = 0; i < want; i++) {
		snprintf(line, sizeof(line), "%s%s", path, expect[i] + 1);
		cr_assert_str_eq(r.line[i], line);
	}
	cr_assert_str_eq(err.msg, r.line[0]);
	cr_assert_eq(err.code, KP_ERR_POLICY);
	s_rm(tmp);
}

static void
s_bad1(const char *text, const char *expect)
{
	s_load_bad(text, 1, &expect);
}

/* An event of `type` from JSON text; freed with pbjson_free(). */
static ProtobufCMessage *
s_event(const char *type, const char *json)
{
	ProtobufCMessage *msg = NULL;
	json_error_t jerr;
	json_t *j = json_loads(json, 0, &jerr);
	kp_err_t err;

	cr_assert_not_null(j, "bad test JSON %s: %s", json, jerr.text);
	cr_assert_eq(pbjson_from_json(events_descriptor(
	    events_type_from_name(type)), j, &msg, &err), 0, "%s", err.msg);
	json_decref(j);
	return msg;
}

/* docs/examples/<type>.json as a JSON object. */
static json_t *
s_example_json(const char *type)
{
	char path[1024];
	json_error_t jerr;
	json_t *j;

	snprintf(path, sizeof(path), "%s/docs/examples/%s.json",
	    test_source_dir(), type);
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	cr_assert_not_null(j, "%s: %s", path, jerr.text);
	return j;
}

/* The example of type with member `name` set to JSON `value` (or removed
 * if value is NULL), as an event. */
static ProtobufCMessage *
s_example_with(const char *type, const char *name, const char *value)
{
	json_t *j = s_example_json(type);
	ProtobufCMessage *msg;
	char *text;

	if (value == NULL)
		json_object_del(j, name);
	else
		cr_assert_eq(json_object_set_new(j, name,
		    json_loads(value, JSON_DECODE_ANY, NULL)), 0, "%s", value);
	text = json_dumps(j, 0);
	cr_assert_not_null(text);
	msg = s_event(type, text);
	free(text);
	json_decref(j);
	return msg;
}

/*
 * What a receiver decides for msg (inbound.c: events_unpack, then
 * policy_check_unpacked, which does not read enum values again) is what
 * policy_check decided (rc, want): the same answer and message once msg
 * unpacks; what events_unpack refuses (an enum value outside its
 * enumeration, an unknown field) is malformed, as it always was on this
 * path, so the policy's enumeration rule never decided there.
 */
static void
s_same_unpacked(const policy_t *pol, const char *type, int from, int to,
    const ProtobufCMessage *msg, int rc, const kp_err_t *want)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len + 1);
	ProtobufCMessage *ev = NULL;
	kp_err_t err;

	cr_assert_not_null(buf);
	protobuf_c_message_pack(msg, buf);
	kp_err_clear(&err);
	if (events_unpack(events_type_from_name(type), buf, len, &ev,
	    &err) != 0) {
		cr_assert_eq(err.code, KP_ERR_MALFORMED_PAYLOAD, "%s", err.msg);
		cr_assert_eq(rc, -1, "events_unpack refused what the policy "
		    "passes: %s", err.msg);
		free(buf);
		return;
	}
	kp_err_clear(&err);
	cr_assert_eq(policy_check_unpacked(pol, events_type_from_name(type),
	    from, to, ev, &err), rc, "%s", err.msg);
	if (rc != 0) {
		cr_assert_eq(err.code, want->code);
		cr_assert_str_eq(err.msg, want->msg);
	}
	protobuf_c_message_free_unpacked(ev, NULL);
	free(buf);
}

static void
s_pass(const policy_t *pol, const char *type, int from, int to,
    const ProtobufCMessage *msg)
{
	kp_err_t err;

	kp_err_clear(&err);
	cr_assert_eq(policy_check(pol, events_type_from_name(type), from, to,
	    msg, &err), 0, "%s %s -> %s refused: %s", type, kp_role_name(from),
	    kp_role_name(to), err.msg);
	s_same_unpacked(pol, type, from, to, msg, 0, &err);
}

static void
s_refused(const policy_t *pol, const char *type, int from, int to,
    const ProtobufCMessage *msg, const char *want)
{
	kp_err_t err;

	kp_err_clear(&err);
	cr_assert_eq(policy_check(pol, events_type_from_name(type), from, to,
	    msg, &err), -1, "%s %s -> %s accepted, wanted: %s", type,
	    kp_role_name(from), kp_role_name(to), want);
	cr_assert_eq(err.code, KP_ERR_POLICY, "%s", err.msg);
	cr_assert_str_eq(err.msg, want);
	s_same_unpacked(pol, type, from, to, msg, -1, &err);
}

/* The example of type with `name` = value must be refused with want. */
static void
s_refused_with(const policy_t *pol, const char *type, int from, int to,
    const char *name, const char *value, const char *want)
{
	ProtobufCMessage *msg = s_example_with(type, name, value);

	s_refused(pol, type, from, to, msg, want);
	pbjson_free(msg);
}

static void
s_pass_with(const policy_t *pol, const char *type, int from, int to,
    const char *name, const char *value)
{
	ProtobufCMessage *msg = s_example_with(type, name, value);

	s_pass(pol, type, from, to, msg);
	pbjson_free(msg);
}

/* ---- the per-type cases of PROTOCOL.md §12 ----------------------- */

static const struct s_case {
	const char *type;
	int from, to;                   /* a proper pair */
	int bad_from, bad_to;
	const char *senders, *recipients;   /* "(allowed: ...)" */
	const char *missing;            /* a required field */
	const char *extra, *extra_value;    /* an allowed field */
} s_cases[] = {
	{ "referral", LP, HALT, HALT, JBT, "leerplicht", "halt, rvdk, om, zorg",
	    "age_years", "pv_subject", "\"jongere\"" },
	{ "halt_outcome", HALT, LP, LP, OM, "halt", "leerplicht",
	    "expected_next", "reason", "\"overig\"" },
	{ "rvdk_advice", RVDK, LP, OM, HALT, "rvdk", "leerplicht",
	    "advice_kind", "care_needed", "true" },
	{ "om_decision", OM, LP, HALT, RVDK, "om", "leerplicht",
	    "decided_on", "conditional", "false" },
	{ "jbt_request", LP, JBT, RVDK, OM, "leerplicht, jbt",
	    "leerplicht, jbt", "filed_by", "officer_attend_request", "true" },
};

#define NCASES (sizeof(s_cases) / sizeof(s_cases[0]))

/*
 * mas.ini with `field` taken out of the allowed list of [type]: the
 * policy under which that field is forbidden.
 */
static policy_t *
s_mas_without(const char *type, const char *field)
{
	char head[64], *text, *sec, *al, *eol, *hit;
	size_t len, fl = strlen(field);
	policy_t *pol;

	text = s_mas_text(&len);
	snprintf(head, sizeof(head), "\n[%s]\n", type);
	cr_assert_not_null(sec = strstr(text, head), "%s", head);
	cr_assert_not_null(al = strstr(sec, "\nallowed = "));
	eol = strchr(al + 1, '\n');
	for (hit = al + 11; hit < eol; hit++)
		if (strncmp(hit, field, fl) == 0 && (hit[fl] == ',' ||
		    hit[fl] == '\n') && (hit[-1] == ' ' || hit[-1] == ','))
			break;
	cr_assert(hit < eol, "%s not allowed in [%s]", field, type);
	if (hit[fl] == ',')                /* "f, " */
		memmove(hit, hit + fl + 2, strlen(hit + fl + 2) + 1);
	else                               /* ", f" at the end */
		memmove(hit - 2, hit + fl, strlen(hit + fl) + 1);
	pol = s_load_text(text, strlen(text));
	free(text);
	return pol;
}

/* ---- mas.ini ----------------------------------------------------- */

Test(policy, mas_loads_without_problems_and_hashes_its_bytes)
{
	char tmp[256], path[1024];
	uint8_t want[32];
	policy_t *pol = NULL;
	kp_err_t err;
	size_t len;
	char *text = s_mas_text(&len);
	int n = -1;

	cr_assert_eq(crypto_generichash(want, sizeof(want),
	    (const uint8_t *)text, len, NULL, 0), 0);
	test_tmpdir(tmp, sizeof(tmp));
	s_write(tmp, "mas.ini", text, len, path, sizeof(path));
	cr_assert_eq(policy_load(path, &pol, NULL, NULL, &n, &err), 0, "%s",
	    err.msg);
	cr_assert_eq(n, 0);
	cr_assert_eq(memcmp(policy_hash(pol), want, sizeof(want)), 0);
	cr_assert_str_eq(policy_path(pol), path);
	policy_destroy(&pol);
	cr_assert_null(pol);
	policy_destroy(&pol);
	/* One byte more (a trailing newline) is another agreement. */
	text[len] = '\n';
	s_write(tmp, "mas.ini", text, len + 1, path, sizeof(path));
	cr_assert_eq(policy_load(path, &pol, NULL, NULL, &n, &err), 0, "%s",
	    err.msg);
	cr_assert_neq(memcmp(policy_hash(pol), want, sizeof(want)), 0);
	policy_destroy(&pol);
	free(text);
	s_rm(tmp);
}

Test(policy, mas_purposes_retention_and_expected_answers)
{
	static const struct {
		int type;
		const char *purpose;
		uint64_t retention_days;
	} want[] = {
		{ KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, "mas.route_referral", 730 },
		{ KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME, "mas.route_feedback",
		    730 },
		{ KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE, "mas.route_feedback",
		    730 },
		{ KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION, "mas.route_feedback",
		    730 },
		{ KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST, "mas.jbt_agenda_request",
		    365 },
	};
	policy_t *pol = s_mas();
	const policy_rule_t *r;
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert_not_null(r = policy_rule(pol, want[i].type));
		cr_assert_str_eq(policy_rule_purpose(r), want[i].purpose);
		cr_assert_eq(strncmp(policy_rule_legal_basis(r), "EXAMPLE-", 8),
		    0, "%s", policy_rule_legal_basis(r));
		cr_assert_eq(policy_rule_retention_ms(r),
		    want[i].retention_days * DAY_MS);
	}
	cr_assert_null(policy_rule(pol, 0));
	cr_assert_null(policy_rule(pol, 99));
	cr_assert_null(policy_rule(pol, -1));
	cr_assert_eq(policy_metadata_retention_ms(pol), 1825 * DAY_MS);
	policy_destroy(&pol);
}

/* Expect answer type and lead days for (type, recipient); 0 days: none. */
static void
s_expects(const policy_t *pol, int type, int to, int answer, uint64_t days)
{
	const policy_rule_t *r = policy_rule(pol, type);
	int got = -1;
	uint64_t ms = 1;

	cr_assert_not_null(r);
	if (days == 0) {
		cr_assert_eq(policy_rule_expects(r, to, &got, &ms), -1,
		    "%s -> %s expects something", events_type_name(type),
		    kp_role_name(to));
		return;
	}
	cr_assert_eq(policy_rule_expects(r, to, &got, &ms), 0);
	cr_assert_eq(got, answer);
	cr_assert_eq(ms, days * DAY_MS);
}

Test(policy, mas_expected_answers)
{
	policy_t *pol = s_mas();
	const int ref = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	const int jbt = KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST;

	s_expects(pol, ref, HALT, KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME, 90);
	s_expects(pol, ref, RVDK, KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE, 42);
	s_expects(pol, ref, OM, KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION, 120);
	s_expects(pol, ref, JBT, 0, 0);
	s_expects(pol, ref, LP, 0, 0);
	s_expects(pol, jbt, JBT, jbt, 28);
	s_expects(pol, jbt, LP, 0, 0);
	s_expects(pol, KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME, LP, 0, 0);
	s_expects(pol, KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION, LP, 0, 0);
	s_expects(pol, ref, 0, 0, 0);
	s_expects(pol, ref, 99, 0, 0);
	cr_assert_eq(policy_rule_expects(NULL, HALT, NULL, NULL), -1);
	cr_assert_eq(policy_rule_expects(policy_rule(pol, ref), HALT, NULL,
	    NULL), 0);
	policy_destroy(&pol);
}

/* Proper sender and recipient of each example file (PROTOCOL.md §12). */
static const struct {
	const char *type;
	int from, to[3];
} s_pairs[] = {
	{ "referral", LP, { HALT } },       /* Halt's: only_to.* fields */
	{ "halt_outcome", HALT, { LP } },
	{ "rvdk_advice", RVDK, { LP } },
	{ "om_decision", OM, { LP } },
	{ "jbt_request", LP, { JBT } },
	{ "reminder", LP, { HALT, RVDK, OM } },
};

Test(policy, every_example_passes_for_its_roles)
{
	char pattern[1024], type[64], *base;
	policy_t *pol = s_mas();
	ProtobufCMessage *msg;
	glob_t g;
	size_t i, k, j;

	snprintf(pattern, sizeof(pattern), "%s/docs/examples/*.json",
	    test_source_dir());
	cr_assert_eq(glob(pattern, 0, NULL, &g), 0);
	cr_assert_geq(g.gl_pathc, 5);
	for (i = 0; i < g.gl_pathc; i++) {
		base = strrchr(g.gl_pathv[i], '/') + 1;
		snprintf(type, sizeof(type), "%.*s",
		    (int)(strlen(base) - 5), base);
		for (k = 0; k < sizeof(s_pairs) / sizeof(s_pairs[0]); k++)
			if (strcmp(s_pairs[k].type, type) == 0)
				break;
		cr_assert_lt(k, sizeof(s_pairs) / sizeof(s_pairs[0]),
		    "no roles known for example %s", base);
		msg = s_example_with(type, "-", NULL);
		for (j = 0; j < 3 && s_pairs[k].to[j] != 0; j++)
			s_pass(pol, type, s_pairs[k].from, s_pairs[k].to[j],
			    msg);
		pbjson_free(msg);
	}
	globfree(&g);
	policy_destroy(&pol);
}

/* The JBT's answer: back to Leerplicht, without indications. */
Test(policy, jbt_answers_leerplicht_without_indications)
{
	policy_t *pol = s_mas();
	ProtobufCMessage *msg = s_event("jbt_request", "{\"phase\": "
	    "\"decided\", \"request_kind\": \"vtb\", \"filed_by\": "
	    "\"leerplicht\", \"decision\": \"rvdk_onderzoek\"}");

	s_pass(pol, "jbt_request", JBT, LP, msg);
	pbjson_free(msg);
	s_refused_with(pol, "jbt_request", JBT, LP, "indications",
	    "[\"signalen_huiselijk_geweld\"]", "jbt_request: rule 'never to "
	    "leerplicht': field 'indications' may not be sent to leerplicht");
	/* The example (a request with indications) to Leerplicht, too. */
	s_refused_with(pol, "jbt_request", LP, LP, "-", NULL, "jbt_request: "
	    "rule 'never to leerplicht': field 'indications' may not be sent "
	    "to leerplicht");
	s_pass_with(pol, "jbt_request", LP, JBT, "-", NULL);
	policy_destroy(&pol);
}

/* ---- each event type: roles, at least, at most ------------------- */

Test(policy, wrong_sender_and_recipient_roles_are_refused)
{
	policy_t *pol = s_mas();
	ProtobufCMessage *msg;
	char want[512];
	size_t i;

	for (i = 0; i < NCASES; i++) {
		const struct s_case *c = &s_cases[i];

		msg = s_example_with(c->type, "-", NULL);
		s_pass(pol, c->type, c->from, c->to, msg);
		snprintf(want, sizeof(want), "%s: rule 'senders': role %s may "
		    "not send %s (allowed: %s)", c->type,
		    kp_role_name(c->bad_from), c->type, c->senders);
		s_refused(pol, c->type, c->bad_from, c->to, msg, want);
		snprintf(want, sizeof(want), "%s: rule 'recipients': role %s "
		    "may not receive %s (allowed: %s)", c->type,
		    kp_role_name(c->bad_to), c->type, c->recipients);
		s_refused(pol, c->type, c->from, c->bad_to, msg, want);
		pbjson_free(msg);
	}
	policy_destroy(&pol);
}

Test(policy, auditor_neither_sends_nor_receives)
{
	policy_t *pol = s_mas();
	ProtobufCMessage *msg;
	char want[512];
	size_t i;

	for (i = 0; i < NCASES; i++) {
		const struct s_case *c = &s_cases[i];

		msg = s_example_with(c->type, "-", NULL);
		snprintf(want, sizeof(want), "%s: rule 'senders': role auditor "
		    "may not send %s (allowed: %s)", c->type, c->type,
		    c->senders);
		s_refused(pol, c->type, AUDITOR, c->to, msg, want);
		snprintf(want, sizeof(want), "%s: rule 'recipients': role "
		    "auditor may not receive %s (allowed: %s)", c->type,
		    c->type, c->recipients);
		s_refused(pol, c->type, c->from, AUDITOR, msg, want);
		snprintf(want, sizeof(want), "%s: rule 'senders': role none "
		    "may not send %s (allowed: %s)", c->type, c->type,
		    c->senders);
		s_refused(pol, c->type, 0, c->to, msg, want);
		s_refused(pol, c->type, 77, c->to, msg, want);
		pbjson_free(msg);
	}
	policy_destroy(&pol);
}

Test(policy, missing_required_field_is_refused)
{
	policy_t *pol = s_mas();
	ProtobufCMessage *msg;
	char want[512];
	size_t i;

	for (i = 0; i < NCASES; i++) {
		const struct s_case *c = &s_cases[i];

		snprintf(want, sizeof(want), "%s: rule 'at least': required "
		    "field '%s' is missing", c->type, c->missing);
		s_refused_with(pol, c->type, c->from, c->to, c->missing, NULL,
		    want);
	}
	msg = s_event("om_decision", "{}");
	s_refused(pol, "om_decision", OM, LP, msg, "om_decision: rule 'at "
	    "least': required field 'decision' is missing");
	pbjson_free(msg);
	policy_destroy(&pol);
}

/* A field the policy does not allow is refused, although the schema has
 * it; the same event passes under mas.ini, which allows it. */
Test(policy, field_that_is_not_allowed_is_refused)
{
	policy_t *mas = s_mas(), *pol;
	char want[512];
	size_t i;

	for (i = 0; i < NCASES; i++) {
		const struct s_case *c = &s_cases[i];

		pol = s_mas_without(c->type, c->extra);
		snprintf(want, sizeof(want), "%s: rule 'at most': field '%s' "
		    "is not allowed", c->type, c->extra);
		s_refused_with(pol, c->type, c->from, c->to, c->extra,
		    c->extra_value, want);
		s_pass_with(mas, c->type, c->from, c->to, c->extra,
		    c->extra_value);
		policy_destroy(&pol);
	}
	policy_destroy(&mas);
}

/* Unknown field numbers (kept by protobuf-c) are not allowed either. */
Test(policy, unknown_field_number_is_refused)
{
	/* route = halt (1: 2), referral_kind = halt_pv (3: 1), absence_kind,
	 * age_years 15, duty_kind, feedback_due_days 90, field 99 = 1. */
	static const uint8_t bytes[] = { 0x08, 0x02, 0x18, 0x01, 0x28, 0x01,
	    0x40, 0x0f, 0x48, 0x01, 0x70, 0x5a, 0x98, 0x06, 0x01 };
	policy_t *pol = s_mas();
	ProtobufCMessage *msg = protobuf_c_message_unpack(
	    &kp__referral__descriptor, NULL, sizeof(bytes), bytes);

	cr_assert_not_null(msg);
	cr_assert_eq(msg->n_unknown_fields, 1);
	s_refused(pol, "referral", LP, HALT, msg, "referral: rule 'at most': "
	    "field number 99 is not allowed");
	protobuf_c_message_free_unpacked(msg, NULL);
	policy_destroy(&pol);
}

/* ---- values ------------------------------------------------------ */

Test(policy, values_outside_their_range_are_refused)
{
	static const struct {
		const char *type, *field, *value, *range;
		int from, to;
	} bad[] = {
		{ "referral", "age_years", "25", "12..18", LP, HALT },
		{ "referral", "age_years", "11", "12..18", LP, RVDK },
		{ "referral", "absence_hours", "2001", "0..2000", LP, OM },
		{ "referral", "late_count", "65535", "0..2000", LP, HALT },
		{ "referral", "feedback_due_days", "0", "1..365", LP, HALT },
		{ "referral", "feedback_due_days", "366", "1..365", LP, HALT },
		{ "halt_outcome", "intervention_hours", "0", "1..40", HALT, LP },
		{ "halt_outcome", "intervention_hours", "41", "1..40", HALT,
		    LP },
	};
	static const struct { const char *type, *field, *value; } good[] = {
		{ "referral", "age_years", "12" },
		{ "referral", "age_years", "18" },
		{ "referral", "absence_hours", "0" },
		{ "referral", "absence_hours", "2000" },
		{ "referral", "late_count", "2000" },
		/* to Halt the lead time bounds (28..120) are narrower than
		 * the range: see mas_referral_sets_its_own_lead_time... */
		{ "referral", "feedback_due_days", "28" },
		{ "referral", "feedback_due_days", "120" },
		{ "halt_outcome", "intervention_hours", "1" },
		{ "halt_outcome", "intervention_hours", "40" },
	};
	policy_t *pol = s_mas();
	char want[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(want, sizeof(want), "%s: rule 'range': field '%s' is "
		    "%s, outside %s", bad[i].type, bad[i].field, bad[i].value,
		    bad[i].range);
		s_refused_with(pol, bad[i].type, bad[i].from, bad[i].to,
		    bad[i].field, bad[i].value, want);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		s_pass_with(pol, good[i].type, !strcmp(good[i].type,
		    "referral") ? LP : HALT, !strcmp(good[i].type, "referral") ?
		    HALT : LP, good[i].field, good[i].value);
	policy_destroy(&pol);
}

Test(policy, dates_must_exist)
{
	static const char *const bad[] = {
		"20270229", "20261131", "20261301", "20261200", "20260001",
		"2026123", "18991231", "100000101", "0", "21000229",
	};
	static const char *const good[] = {
		"20280229", "20000229", "20261231", "20270101", "19000101",
		"99991231",
	};
	policy_t *pol = s_mas();
	char want[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(want, sizeof(want), "halt_outcome: rule 'date': field "
		    "'completed_on' is %s, not an existing date YYYYMMDD",
		    bad[i]);
		s_refused_with(pol, "halt_outcome", HALT, LP, "completed_on",
		    bad[i], want);
		snprintf(want, sizeof(want), "om_decision: rule 'date': field "
		    "'decided_on' is %s, not an existing date YYYYMMDD",
		    bad[i]);
		s_refused_with(pol, "om_decision", OM, LP, "decided_on", bad[i],
		    want);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		s_pass_with(pol, "halt_outcome", HALT, LP, "completed_on",
		    good[i]);
		s_pass_with(pol, "om_decision", OM, LP, "decided_on", good[i]);
	}
	policy_destroy(&pol);
}

Test(policy, too_many_items_are_refused)
{
	static const struct {
		const char *type, *field, *ok, *over;
		int from, to, max;
	} c[] = {
		{ "referral", "parallel_routes",
		    "[\"halt\", \"dwang_civiel\", \"dwang_strafrechtelijk\", "
		    "\"vrijwillige_jeugdhulp\"]",
		    "[\"halt\", \"dwang_civiel\", \"dwang_strafrechtelijk\", "
		    "\"vrijwillige_jeugdhulp\", \"halt\"]", LP, HALT, 4 },
		{ "halt_outcome", "components",
		    "[\"leeropdracht\", \"reflectieopdracht\", "
		    "\"vervolgopdracht\", \"gesprek_jongere\", \"gesprek_school\", "
		    "\"gesprek_leerplicht\"]",
		    "[\"leeropdracht\", \"reflectieopdracht\", "
		    "\"vervolgopdracht\", \"gesprek_jongere\", \"gesprek_school\", "
		    "\"gesprek_leerplicht\", \"leeropdracht\"]", HALT, LP, 6 },
		{ "rvdk_advice", "strafadvies",
		    "[\"werkstraf\", \"geldboete\", \"jeugdhulp\", "
		    "\"jeugdreclasseringsmaatregel\"]",
		    "[\"werkstraf\", \"geldboete\", \"jeugdhulp\", "
		    "\"jeugdreclasseringsmaatregel\", \"werkstraf\"]", RVDK, LP,
		    4 },
		{ "om_decision", "sanctions",
		    "[\"werkstraf\", \"leerstraf\", \"jeugdreclassering\", "
		    "\"boete\"]",
		    "[\"werkstraf\", \"leerstraf\", \"jeugdreclassering\", "
		    "\"boete\", \"boete\"]", OM, LP, 4 },
		{ "jbt_request", "indications",
		    "[\"geen_bereidheid_vermogen\", \"ernstige_problemen_jeugdige\", "
		    "\"ernstige_opvoedproblemen\", \"signalen_huiselijk_geweld\"]",
		    "[\"geen_bereidheid_vermogen\", \"ernstige_problemen_jeugdige\", "
		    "\"ernstige_opvoedproblemen\", \"signalen_huiselijk_geweld\", "
		    "\"geen_bereidheid_vermogen\"]", LP, JBT, 4 },
	};
	policy_t *pol = s_mas();
	char want[512];
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		s_pass_with(pol, c[i].type, c[i].from, c[i].to, c[i].field,
		    c[i].ok);
		snprintf(want, sizeof(want), "%s: rule 'max items': field '%s' "
		    "has %d items, at most %d", c[i].type, c[i].field,
		    c[i].max + 1, c[i].max);
		s_refused_with(pol, c[i].type, c[i].from, c[i].to, c[i].field,
		    c[i].over, want);
	}
	policy_destroy(&pol);
}

/* JSON cannot carry an enum value outside its enumeration: by hand. */
Test(policy, enum_value_outside_its_enumeration_is_refused)
{
	policy_t *pol = s_mas();
	ProtobufCMessage *msg = s_example_with("referral", "parallel_routes",
	    "[\"halt\", \"dwang_civiel\"]");
	Kp__Referral *ref = (Kp__Referral *)msg;
	Kp__HaltOutcome *ho;

	s_pass(pol, "referral", LP, HALT, msg);
	ref->route = 42;
	s_refused(pol, "referral", LP, HALT, msg, "referral: rule "
	    "'enumeration': field 'route' is 42, not a value of Route");
	ref->route = 0;
	s_refused(pol, "referral", LP, HALT, msg, "referral: rule "
	    "'enumeration': field 'route' is 0, not a value of Route");
	/* each side of the known values' bit map (policy.c s_enum_known) */
	{
		static const int32_t outside[] = { 63, 64, 255, 256, 65536,
		    INT32_MAX, INT32_MIN };
		const ProtobufCEnumDescriptor *ed = &kp__route__descriptor;
		char want[160];
		size_t i;

		for (i = 0; i < ed->n_values; i++) {
			ref->route = ed->values[i].value;
			if (ref->route != 0)
				s_pass(pol, "referral", LP, HALT, msg);
		}
		for (i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
			ref->route = outside[i];
			snprintf(want, sizeof(want), "referral: rule "
			    "'enumeration': field 'route' is %d, not a value of "
			    "Route", (int)outside[i]);
			s_refused(pol, "referral", LP, HALT, msg, want);
		}
	}
	ref->route = KP__ROUTE__ROUTE_HALT;
	ref->parallel_routes[1] = -3;
	s_refused(pol, "referral", LP, HALT, msg, "referral: rule "
	    "'enumeration': field 'parallel_routes[1]' is -3, not a value of "
	    "Route");
	pbjson_free(msg);
	msg = s_example_with("halt_outcome", "-", NULL);
	ho = (Kp__HaltOutcome *)msg;
	ho->expected_next = 3;
	s_refused(pol, "halt_outcome", HALT, LP, msg, "halt_outcome: rule "
	    "'enumeration': field 'expected_next' is 3, not a value of "
	    "ExpectedNext");
	pbjson_free(msg);
	policy_destroy(&pol);
}

/* A receiver reads enum values once (events_unpack; the policy does not
 * again): the first bad value decides, and a bad enum value is malformed
 * even where the policy alone would have named another rule first. */
Test(policy, receiver_first_bad_enum_value_decides)
{
	policy_t *pol = s_mas();
	ProtobufCMessage *msg = s_example_with("referral", "parallel_routes",
	    "[\"halt\", \"dwang_civiel\", \"halt\"]");
	Kp__Referral *ref = (Kp__Referral *)msg;
	int t = events_type_from_name("referral");
	ProtobufCMessage *ev = NULL;
	size_t len;
	uint8_t *buf;
	kp_err_t err;

	ref->parallel_routes[1] = 77;
	ref->parallel_routes[2] = 0;
	len = protobuf_c_message_get_packed_size(msg);
	cr_assert_not_null(buf = malloc(len));
	protobuf_c_message_pack(msg, buf);
	cr_assert_eq(events_unpack(t, buf, len, &ev, &err), -1);
	cr_assert_eq(err.code, KP_ERR_MALFORMED_PAYLOAD);
	cr_assert_str_eq(err.msg, "referral: field 'parallel_routes[1]' has "
	    "value 77, not a valid Route");
	/* the policy alone: the role comes before the values */
	s_refused(pol, "referral", HALT, LP, msg, "referral: rule 'senders': "
	    "role halt may not send referral (allowed: leerplicht)");
	free(buf);
	pbjson_free(msg);
	policy_destroy(&pol);
}

Test(policy, event_type_without_rule_and_bad_arguments)
{
	static const char text[] =
	    "[halt_outcome]\npurpose = mas.route_feedback\n"
	    "legal_basis = EXAMPLE-x\nsenders = halt\nrecipients = leerplicht\n"
	    "required = outcome, expected_next\nretention = 1d\n";
	policy_t *pol = s_load_text(text, strlen(text));
	ProtobufCMessage *msg = s_example_with("referral", "-", NULL);
	kp_err_t err;

	s_refused(pol, "referral", LP, HALT, msg, "referral: rule 'event "
	    "type': the policy has no rule for referral");
	cr_assert_eq(policy_check(pol, 42, LP, HALT, msg, &err), -1);
	cr_assert_eq(err.code, KP_ERR_POLICY);
	cr_assert_str_eq(err.msg, "event type 42: rule 'event type': not an "
	    "event type");
	cr_assert_eq(policy_check(pol, KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME,
	    HALT, LP, msg, &err), -1);
	cr_assert_eq(err.code, KP_ERR_INVALID_ARG);
	cr_assert_eq(policy_check(NULL, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL,
	    LP, HALT, msg, &err), -1);
	cr_assert_eq(policy_check(pol, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL,
	    LP, HALT, NULL, &err), -1);
	cr_assert_eq(policy_check(pol, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL,
	    LP, HALT, msg, NULL), -1);
	pbjson_free(msg);
	policy_destroy(&pol);
	policy_destroy(NULL);
	cr_assert_null(policy_rule_purpose(NULL));
	cr_assert_eq(policy_rule_retention_ms(NULL), 0);
}

/* ---- the policy file: every kind of problem, with its line ------- */

/* Lines 1-3, then senders (4), recipients (5), required (6), retention
 * (7), then `extra` from line 8. */
#define POL(senders, recipients, required, retention, extra) \
	"[referral]\npurpose = mas.route_referral\n" \
	"legal_basis = EXAMPLE-x\nsenders = " senders "\n" \
	"recipients = " recipients "\nrequired = " required "\n" \
	"retention = " retention "\n" extra
#define OK_POL(extra) POL("leerplicht", "halt", "route", "1d", extra)

Test(policy, test_base_policy_is_valid)
{
	policy_t *pol = s_load_text(OK_POL(""), strlen(OK_POL("")));

	policy_destroy(&pol);
	pol = s_load_text(OK_POL("allowed = age_years\nrange.age_years = "
	    "0..4294967295\n"), strlen(OK_POL("allowed = age_years\n"
	    "range.age_years = 0..4294967295\n")));
	policy_destroy(&pol);
}

/* metadata_retention: a duration, optional (0 without it), at least every
 * event type's retention. */
Test(policy, metadata_retention)
{
	policy_t *pol = s_load_text(OK_POL(""), strlen(OK_POL("")));

	cr_assert_eq(policy_metadata_retention_ms(pol), 0);
	policy_destroy(&pol);
	pol = s_load_text(OK_POL("[chain]\nmetadata_retention = 2d\n"),
	    strlen(OK_POL("[chain]\nmetadata_retention = 2d\n")));
	cr_assert_eq(policy_metadata_retention_ms(pol), 2 * DAY_MS);
	policy_destroy(&pol);
	s_bad1(OK_POL("[chain]\nmetadata_retention = 12h\n"),
	    "F:9: metadata_retention is shorter than the retention of "
	    "[referral] (line 7): metadata must be kept at least as long as "
	    "the payload");
	s_bad1(OK_POL("[chain]\nmetadata_retention = soon\n"),
	    "F:9: metadata_retention: 'soon' is not a duration (use e.g. "
	    "12h, 90d)");
}

Test(policy, unknown_sections_keys_and_roles)
{
	s_bad1(OK_POL("[referal]\npurpose = x\n"),
	    "F:8: unknown section [referal] " KNOWN_SECTIONS);
	s_bad1(OK_POL("[chain]\nname = x\nowner = y\n"),
	    "F:10: unknown key 'owner' in [chain] (known: name, version, "
	    "metadata_retention)");
	s_bad1(OK_POL("colour = red\n"),
	    "F:8: unknown key 'colour' in [referral]");
	s_bad1(OK_POL("forbidden = pv_subject\n"),
	    "F:8: unknown key 'forbidden' in [referral]");
	s_bad1(OK_POL("range_age_years = 1..2\n"),
	    "F:8: unknown key 'range_age_years' in [referral]");
	s_bad1("purpose = x\n" OK_POL(""),
	    "F:1: 'purpose' is outside any section (put it under [chain] or "
	    "an event type such as [referral])");
	s_bad1(POL("leerplicht, school", "halt", "route", "1d", ""),
	    "F:4: senders: unknown role 'school' " ROLES);
	s_bad1(POL("leerplicht", "halt, Leerplicht", "route", "1d", ""),
	    "F:5: recipients: unknown role 'Leerplicht' " ROLES);
	s_bad1(POL("leerplicht", "halt, auditor", "route", "1d", ""),
	    "F:5: recipients: role auditor may not send or receive events");
	s_bad1(POL("auditor", "halt", "route", "1d", ""),
	    "F:4: senders: role auditor may not send or receive events");
	s_bad1(POL("leerplicht", "halt, halt", "route", "1d", ""),
	    "F:5: recipients: role halt is listed twice");
	s_bad1(POL("leerplicht", "halt,, om", "route", "1d", ""),
	    "F:5: recipients: empty or over-long list item");
	s_bad1(POL("leerplicht,", "halt", "route", "1d", ""),
	    "F:4: senders: empty or over-long list item");
	s_bad1(OK_POL("never_to.school = route\n"),
	    "F:8: never_to.school: unknown role 'school' " ROLES);
	s_bad1(OK_POL("allowed = age_years\nnever_to.auditor = age_years\n"),
	    "F:9: never_to.auditor: auditor is not a recipient of referral");
}

Test(policy, unknown_fields)
{
	s_bad1(POL("leerplicht", "halt", "route, naam", "1d", ""),
	    "F:6: required: referral has no field 'naam'");
	s_bad1(OK_POL("allowed = bsn\n"),
	    "F:8: allowed: referral has no field 'bsn'");
	s_bad1(OK_POL("allowed = outcome\n"),
	    "F:8: allowed: referral has no field 'outcome'");
	s_bad1(OK_POL("range.birth_date = 1..2\n"),
	    "F:8: range.birth_date: referral has no field 'birth_date'");
	s_bad1(OK_POL("date.birth_date = yes\n"),
	    "F:8: date.birth_date: referral has no field 'birth_date'");
	s_bad1(OK_POL("max_items.diagnoses = 1\n"),
	    "F:8: max_items.diagnoses: referral has no field 'diagnoses'");
	s_bad1(OK_POL("never_to.halt = naam\n"),
	    "F:8: never_to.halt: referral has no field 'naam'");
}

Test(policy, field_both_required_and_allowed)
{
	s_bad1(OK_POL("allowed = age_years, route\n"),
	    "F:8: allowed: field 'route' is both required (line 6) and "
	    "allowed");
	s_bad1("[referral]\nallowed = route\n" "purpose = p\n"
	    "legal_basis = l\nsenders = leerplicht\nrecipients = halt\n"
	    "retention = 1d\nrequired = route\n",
	    "F:8: required: field 'route' is both required and allowed "
	    "(line 2)");
	s_bad1(POL("leerplicht", "halt", "route, route", "1d", ""),
	    "F:6: required: field 'route' is listed twice");
}

Test(policy, bad_durations)
{
	s_bad1(POL("leerplicht", "halt", "route", "2y", ""),
	    "F:7: retention: '2y' is not a duration (use e.g. 12h, 90d)");
	s_bad1(POL("leerplicht", "halt", "route", "0d", ""),
	    "F:7: retention: '0d' is not from 1ms to 36500d");
	s_bad1(POL("leerplicht", "halt", "route", "36501d", ""),
	    "F:7: retention: '36501d' is not from 1ms to 36500d");
	s_bad1(POL("leerplicht", "halt", "route", "1.5d", ""),
	    "F:7: retention: '1.5d' is not a duration (use e.g. 12h, 90d)");
	s_bad1(OK_POL("expects.halt = referral 3w\n"),
	    "F:8: expects.halt: '3w' is not a duration (use e.g. 12h, 90d)");
	s_bad1(OK_POL("expects.halt = referral\n"),
	    "F:8: expects.halt: '' is not a duration (use e.g. 12h, 90d)");
}

Test(policy, bad_ranges_dates_and_max_items)
{
	static const char *const ranges[] = {
		"18..12", "12..", "..18", "12-18", "a..b", "-1..5",
		"0..4294967296", "12..18..20", "12 ..18", "1.5..3",
	};
	char text[1024], want[512];
	size_t i;

	for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		snprintf(text, sizeof(text), OK_POL("allowed = age_years\n"
		    "range.age_years = %s\n"), ranges[i]);
		snprintf(want, sizeof(want), "F:9: range.age_years: '%s' is "
		    "not a range LOW..HIGH%s", ranges[i],
		    strstr(ranges[i], "..") ? " of numbers the field can hold, "
		    "with LOW <= HIGH" : "");
		s_bad1(text, want);
	}
	s_bad1(OK_POL("range.route = 1..2\n"),
	    "F:8: range.route: field 'route' is not an integer field");
	s_bad1(OK_POL("allowed = culpable\nrange.culpable = 0..1\n"),
	    "F:9: range.culpable: field 'culpable' is not an integer field");
	s_bad1(OK_POL("date.route = yes\n"),
	    "F:8: date.route: field 'route' is not a uint32 (YYYYMMDD)");
	s_bad1(OK_POL("allowed = age_years\ndate.age_years = no\n"),
	    "F:9: date.age_years: 'no' is not yes (leave the key out for no)");
	s_bad1(OK_POL("max_items.route = 2\n"),
	    "F:8: max_items.route: field 'route' is not a repeated field");
	s_bad1(OK_POL("allowed = parallel_routes\nmax_items.parallel_routes = "
	    "0\n"), "F:9: max_items.parallel_routes: '0' is not a number from "
	    "1 to 1000");
	s_bad1(OK_POL("allowed = parallel_routes\nmax_items.parallel_routes = "
	    "-1\n"), "F:9: max_items.parallel_routes: '-1' is not a number "
	    "from 1 to 1000");
	/* A rule on a field that may not occur is a mistake. */
	s_bad1(OK_POL("range.age_years = 12..18\n"),
	    "F:8: range.age_years: field 'age_years' is neither required nor "
	    "allowed");
	s_bad1(OK_POL("max_items.parallel_routes = 4\n"),
	    "F:8: max_items.parallel_routes: field 'parallel_routes' is "
	    "neither required nor allowed");
}

/* 65 characters: one more than an envelope header label may have. */
#define LONG65 "EXAMPLE-0123456789012345678901234567890123456789" \
	"01234567890123456"

Test(policy, bad_labels_and_empty_values)
{
	s_bad1("[referral]\npurpose = mas route\nlegal_basis = l\n"
	    "senders = leerplicht\nrecipients = halt\nretention = 1d\n",
	    "F:2: purpose: 'mas route' is not 1-64 characters of "
	    "[A-Za-z0-9._:/-]");
	s_bad1("[referral]\npurpose = p\nlegal_basis = " LONG65 "\n"
	    "senders = leerplicht\nrecipients = halt\nretention = 1d\n",
	    "F:3: legal_basis: '" LONG65 "' is not 1-64 characters of "
	    "[A-Za-z0-9._:/-]");
	s_bad1(OK_POL("allowed =\n"), "F:8: allowed: empty value");
	s_bad1(OK_POL("range.age_years =\n"), "F:8: range.age_years: empty "
	    "value");
}

Test(policy, expects_problems)
{
	static const char *const two[] = {
		"F:8: expects.om: om is not a recipient of referral",
		"F:8: expects.om: om may not send referral",
	};
	static const char *const dup[] = {
		"F:9: duplicate key 'expects.halt' in [referral] (first set on "
		"line 8)",
		"F:8: expects.halt: halt may not send referral",
	};
	static const char *const auditor[] = {
		"F:8: expects.auditor: auditor is not a recipient of referral",
		"F:8: expects.auditor: auditor may not send referral",
	};

	s_bad1(OK_POL("expects.halt = halt_uitkomst 90d\n"),
	    "F:8: expects.halt: unknown event type 'halt_uitkomst' (known: "
	    "referral, halt_outcome, rvdk_advice, om_decision, jbt_request, "
	    "reminder, care_notice)");
	s_bad1(OK_POL("expects.halt = halt_outcome 90d\n"),
	    "F:8: expects.halt: the policy has no [halt_outcome] section");
	s_bad1(OK_POL("expects.halt = referral 90d\n"),
	    "F:8: expects.halt: halt may not send referral");
	s_load_bad(OK_POL("expects.om = referral 90d\n"), 2, two);
	s_load_bad(OK_POL("expects.halt = referral 90d\nexpects.halt = "
	    "referral 1d\n"), 2, dup);
	s_load_bad(OK_POL("expects.auditor = referral 1d\n"), 2, auditor);
}

Test(policy, never_to_problems)
{
	s_bad1(OK_POL("allowed = age_years\nnever_to.om = age_years\n"),
	    "F:9: never_to.om: om is not a recipient of referral");
	s_bad1(OK_POL("never_to.halt = route\n"),
	    "F:8: never_to.halt: field 'route' is required, so referral could "
	    "never be sent to halt");
	s_bad1(OK_POL("never_to.halt = age_years\n"),
	    "F:8: never_to.halt: field 'age_years' is neither required nor "
	    "allowed");
	s_bad1(OK_POL("allowed = age_years\nnever_to.halt = age_years\n"
	    "never_to.halt = age_years\n"),
	    "F:10: duplicate key 'never_to.halt' in [referral] (first set on "
	    "line 9)");
}

Test(policy, missing_required_keys_name_the_section_line)
{
	static const char *const all[] = {
		"F:3: [referral] has no 'purpose' (required)",
		"F:3: [referral] has no 'legal_basis' (required)",
		"F:3: [referral] has no 'senders' (required)",
		"F:3: [referral] has no 'recipients' (required)",
		"F:3: [referral] has no 'retention' (required)",
	};

	s_bad1("[referral]\nlegal_basis = l\nsenders = leerplicht\n"
	    "recipients = halt\nretention = 1d\n",
	    "F:1: [referral] has no 'purpose' (required)");
	s_bad1("[referral]\npurpose = p\nsenders = leerplicht\n"
	    "recipients = halt\nlegal_basis = l\n",
	    "F:1: [referral] has no 'retention' (required)");
	s_load_bad("[chain]\nname = x\n[referral]\n", 5, all);
	s_bad1("", "F: has no event type section (such as [referral]): "
	    "nothing may be exchanged");
	s_bad1("[chain]\nname = MAS\nversion = 1\n", "F: has no event type "
	    "section (such as [referral]): nothing may be exchanged");
}

Test(policy, syntax_problems_of_the_reader)
{
	char text[1024], *p;

	s_bad1(OK_POL("just words\n"), "F:8: syntax error: expected "
	    "'key = value', '[section]' or a comment");
	s_bad1(OK_POL("[halt_outcome\n"),
	    "F:8: section header has no closing ']'");
	s_bad1(OK_POL("  , age_years\n"), "F:8: indented line continues the "
	    "value of 'retention'; values are one line (remove the "
	    "indentation)");
	s_bad1(OK_POL("retention = 2d\n"), "F:8: duplicate key 'retention' in "
	    "[referral] (first set on line 7)");
	p = text + snprintf(text, sizeof(text), OK_POL("allowed = "));
	memset(p, 'x', 250);
	snprintf(p + 250, sizeof(text) - (size_t)(p + 250 - text),
	    "\ncolour = red\n");
	{
		static const char *const want[] = {
			"F:8: line is 260 characters long; at most 199 are "
			"allowed",
			"F:9: unknown key 'colour' in [referral]",
		};
		s_load_bad(text, 2, want);
	}
}

/* BOM, CRLF, comments, ':' and repeated sections are fine. */
Test(policy, ini_syntax_variants)
{
	static const char text[] =
	    "\xEF\xBB\xBF; a policy\r\n"
	    "[referral]\r\n"
	    "purpose: mas.route_referral   ; inline\r\n"
	    "legal_basis = EXAMPLE-x\r\n"
	    "[chain]\r\n"
	    "version = 1\r\n"
	    "[referral]\r\n"
	    "senders=leerplicht\r\n"
	    "recipients =halt ,rvdk\r\n"
	    "required = route,age_years\r\n"
	    "retention = 12h";
	policy_t *pol = s_load_text(text, strlen(text));
	const policy_rule_t *r = policy_rule(pol,
	    KP__EVENT_TYPE__EVENT_TYPE_REFERRAL);
	ProtobufCMessage *msg = s_event("referral", "{\"route\": \"halt\", "
	    "\"age_years\": 40}");

	cr_assert_str_eq(policy_rule_purpose(r), "mas.route_referral");
	cr_assert_eq(policy_rule_retention_ms(r), 12 * 3600 * 1000ULL);
	s_pass(pol, "referral", LP, RVDK, msg);
	pbjson_free(msg);
	policy_destroy(&pol);
}

Test(policy, every_problem_of_a_file_is_reported_in_one_run)
{
	static const char text[] =
	    "[chain]\n"                                       /* 1 */
	    "name = test\n"                                   /* 2 */
	    "[referral]\n"                                    /* 3 */
	    "purpose = mas.route_referral\n"                  /* 4 */
	    "senders = leerplicht, school\n"                  /* 5 */
	    "recipients = halt, rvdk\n"                       /* 6 */
	    "required = route, naam\n"                        /* 7 */
	    "allowed = route, age_years\n"                    /* 8 */
	    "range.age_years = 18..12\n"                      /* 9 */
	    "retention = 2y\n"                                /* 10 */
	    "expects.halt = halt_uitkomst 90d\n"              /* 11 */
	    "colour = red\n"                                  /* 12 */
	    "[referal]\n"                                     /* 13 */
	    "purpose = ignored in an unknown section\n"       /* 14 */
	    "[halt_outcome]\n"                                /* 15 */
	    "purpose = mas.route_feedback\n"                  /* 16 */
	    "legal_basis = EXAMPLE-x\n"                       /* 17 */
	    "senders = halt\n"                                /* 18 */
	    "recipients = leerplicht\n"                       /* 19 */
	    "required = outcome\n"                            /* 20 */
	    "date.completed_on = yes\n"                       /* 21 */
	    "retention = 730d\n"                              /* 22 */
	    "nonsense\n";                                     /* 23 */
	static const char *const want[] = {
		"F:5: senders: unknown role 'school' " ROLES,
		"F:7: required: referral has no field 'naam'",
		"F:8: allowed: field 'route' is both required (line 7) and "
		"allowed",
		"F:9: range.age_years: '18..12' is not a range LOW..HIGH of "
		"numbers the field can hold, with LOW <= HIGH",
		"F:10: retention: '2y' is not a duration (use e.g. 12h, 90d)",
		"F:11: expects.halt: unknown event type 'halt_uitkomst' (known: "
		"referral, halt_outcome, rvdk_advice, om_decision, jbt_request, "
		"reminder, care_notice)",
		"F:12: unknown key 'colour' in [referral]",
		"F:13: unknown section [referal] " KNOWN_SECTIONS,
		"F:23: syntax error: expected 'key = value', '[section]' or a "
		"comment",
		"F:3: [referral] has no 'legal_basis' (required)",
		"F:21: date.completed_on: field 'completed_on' is neither "
		"required nor allowed",
	};

	s_load_bad(text, 11, want);
}

/* ---- the file itself --------------------------------------------- */

Test(policy, unreadable_and_writable_files)
{
	char tmp[256], path[1024], want[1200];
	struct reports r = { .n = 0 };
	policy_t *pol = NULL;
	kp_err_t err;
	int n = 0;

	cr_assert_eq(policy_load("/nonexistent/mas.ini", &pol, s_collect, &r,
	    &n, &err), -1);
	cr_assert_eq(err.code, KP_ERR_IO);
	cr_assert_str_eq(err.msg, "/nonexistent/mas.ini: cannot read: No such "
	    "file or directory");
	cr_assert_eq(n, 1);
	cr_assert_null(pol);
	test_tmpdir(tmp, sizeof(tmp));
	cr_assert_eq(policy_load(tmp, &pol, NULL, NULL, &n, &err), -1);
	cr_assert_eq(err.code, KP_ERR_IO);
	s_write(tmp, "p.ini", OK_POL(""), strlen(OK_POL("")), path,
	    sizeof(path));
	cr_assert_eq(chmod(path, 0664), 0);
	cr_assert_eq(policy_load(path, &pol, NULL, NULL, &n, &err), -1);
	cr_assert_eq(n, 1);
	cr_assert_eq(err.code, KP_ERR_POLICY);
	snprintf(want, sizeof(want), "%s: is writable by group or others "
	    "(mode 0664); run chmod go-w on it", path);
	cr_assert_str_eq(err.msg, want);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(policy_load(path, &pol, NULL, NULL, NULL, NULL), 0);
	policy_destroy(&pol);
	cr_assert_eq(policy_load(NULL, &pol, NULL, NULL, &n, &err), -1);
	cr_assert_eq(err.code, KP_ERR_INVALID_ARG);
	cr_assert_eq(policy_load(path, NULL, NULL, NULL, &n, &err), -1);
	s_rm(tmp);
}

/* The example referral without the Halt-only fields (mas.ini only_to.*),
 * with member `name` set to JSON `value` (NULL: none), as an event. */
static ProtobufCMessage *
s_plain_referral(const char *name, const char *value)
{
	static const char *const halt_only[] = { "consent_halt",
	    "prior_halt_leerplicht", "parallel_routes" };
	json_t *j = s_example_json("referral");
	ProtobufCMessage *m;
	char *text;
	size_t i;

	for (i = 0; i < 3; i++)
		json_object_del(j, halt_only[i]);
	if (name != NULL)
		cr_assert_eq(json_object_set_new(j, name, json_loads(value,
		    JSON_DECODE_ANY, NULL)), 0);
	text = json_dumps(j, 0);
	m = s_event("referral", text);
	free(text);
	json_decref(j);
	return m;
}

/* ---- the sender's own lead time (lead_field, lead_bounds) ---------- */

static uint64_t
s_lead_days(const policy_t *pol, int role, const ProtobufCMessage *ev)
{
	uint64_t ms = 0;
	int answer = 0;

	cr_assert_eq(policy_rule_lead(policy_rule(pol,
	    KP__EVENT_TYPE__EVENT_TYPE_REFERRAL), role, ev, &answer, &ms), 0);
	cr_assert_neq(answer, 0);
	return ms / (24ull * 3600 * 1000);
}

Test(policy, mas_referral_sets_its_own_lead_time_within_bounds)
{
	policy_t *pol = s_mas();
	ProtobufCMessage *m;

	/* the example says 90: to Halt (28..120) that is the due date */
	m = s_plain_referral("feedback_due_days", "60");
	s_pass(pol, "referral", LP, HALT, m);
	cr_assert_eq(s_lead_days(pol, HALT, m), 60, "the referral's 60 days");
	s_pass(pol, "referral", LP, RVDK, m);
	cr_assert_eq(s_lead_days(pol, RVDK, m), 60);
	pbjson_free(m);
	/* without the event, or without the field: the policy's default */
	cr_assert_eq(s_lead_days(pol, HALT, NULL), 90);
	m = s_example_with("referral", "feedback_due_days", NULL);
	cr_assert_eq(s_lead_days(pol, OM, m), 120);
	pbjson_free(m);
	/* the edges are inside */
	m = s_example_with("referral", "feedback_due_days", "28");
	s_pass(pol, "referral", LP, HALT, m);
	cr_assert_eq(s_lead_days(pol, HALT, m), 28);
	pbjson_free(m);
	s_pass_with(pol, "referral", LP, HALT, "feedback_due_days", "120");
	/* outside: refused, naming field, value, bounds and role */
	s_refused_with(pol, "referral", LP, HALT, "feedback_due_days", "27",
	    "referral: rule 'lead time': field 'feedback_due_days' is 27 days, "
	    "outside 28..120 days for halt");
	s_refused_with(pol, "referral", LP, HALT, "feedback_due_days", "121",
	    "referral: rule 'lead time': field 'feedback_due_days' is 121 "
	    "days, outside 28..120 days for halt");
	m = s_plain_referral("feedback_due_days", "200");
	s_refused(pol, "referral", LP, OM, m, "referral: rule 'lead time': "
	    "field 'feedback_due_days' is 200 days, outside 30..180 days for "
	    "om");
	pbjson_free(m);
	/* bounds are per recipient: 20 days is fine for RvdK (14..90) */
	m = s_plain_referral("feedback_due_days", "20");
	s_pass(pol, "referral", LP, RVDK, m);
	cr_assert_eq(s_lead_days(pol, RVDK, m), 20);
	pbjson_free(m);
	policy_destroy(&pol);
}

/* Lines 1-3, senders (4), recipients (5), required (6), retention (7),
 * then extra from line 8; halt may answer a referral with a referral. */
#define LEAD_POL(extra) POL("leerplicht, halt", "halt, leerplicht", "route", \
	"1d", extra)

Test(policy, lead_time_problems)
{
	policy_t *pol;

	pol = s_load_text(LEAD_POL("allowed = feedback_due_days\nexpects.halt = "
	    "referral 90d\nlead_field = feedback_due_days\nlead_bounds.halt = "
	    "90d..90d\n"), strlen(LEAD_POL("allowed = feedback_due_days\n"
	    "expects.halt = referral 90d\nlead_field = feedback_due_days\n"
	    "lead_bounds.halt = 90d..90d\n")));
	policy_destroy(&pol);
	s_bad1(LEAD_POL("allowed = feedback_due_days\nexpects.halt = referral "
	    "90d\nlead_field = feedback_due_days\n"),
	    "F:9: expects.halt: [referral] has a lead_field but no "
	    "lead_bounds.halt");
	s_bad1(LEAD_POL("lead_field = route\n"),
	    "F:8: lead_field: field 'route' is not a single unsigned integer "
	    "(a number of days)");
	s_bad1(LEAD_POL("lead_field = nope\n"),
	    "F:8: lead_field: referral has no field 'nope'");
	s_bad1(LEAD_POL("lead_field = feedback_due_days\n"),
	    "F:8: lead_field: field 'feedback_due_days' is neither required "
	    "nor allowed");
	s_bad1(LEAD_POL("lead_bounds.halt = 1d..2d\n"),
	    "F:8: lead_bounds.halt: no expects.halt in [referral]");
	s_bad1(LEAD_POL("expects.halt = referral 90d\nlead_bounds.halt = "
	    "1d..200d\n"),
	    "F:9: lead_bounds.halt: [referral] has no lead_field");
	s_bad1(LEAD_POL("allowed = feedback_due_days\nexpects.halt = referral "
	    "90d\nlead_bounds.halt = 1d..30d\nlead_field = feedback_due_days\n"),
	    "F:10: lead_bounds.halt: the lead time of expects.halt is outside "
	    "these bounds");
	s_bad1(LEAD_POL("lead_bounds.halt = 30d\n"),
	    "F:8: lead_bounds.halt: '30d' is not LOW..HIGH (e.g. 28d..120d)");
	s_bad1(LEAD_POL("lead_bounds.halt = 9d..2d\n"),
	    "F:8: lead_bounds.halt: LOW is above HIGH");
	s_bad1(LEAD_POL("lead_bounds.auditor = 1d..2d\n"),
	    "F:8: lead_bounds.auditor: no expects.auditor in [referral]");
	s_bad1(LEAD_POL("lead_bounds.rector = 1d..2d\n"),
	    "F:8: lead_bounds.rector: unknown role 'rector' (roles: "
	    "leerplicht, halt, rvdk, om, jbt, zorg)");
}

/* ---- answers in phases (interim.FIELD, interim_lead, outcome) ------- */

Test(policy, mas_interim_answers_and_outcome_field)
{
	policy_t *pol = s_mas();
	const policy_rule_t *jbt = policy_rule(pol,
	    KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST);
	const policy_rule_t *rvdk = policy_rule(pol,
	    KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE);
	ProtobufCMessage *m;
	uint64_t lead = 0;

	m = s_event("jbt_request", "{\"phase\": \"scheduled\", \"request_kind\": "
	    "\"vtb\", \"filed_by\": \"leerplicht\"}");
	cr_assert(policy_rule_interim(jbt, m, &lead));
	cr_assert_eq(lead, 42ull * 24 * 3600 * 1000);
	pbjson_free(m);
	m = s_event("jbt_request", "{\"phase\": \"decided\", \"request_kind\": "
	    "\"vtb\", \"filed_by\": \"leerplicht\"}");
	cr_assert_not(policy_rule_interim(jbt, m, &lead));
	pbjson_free(m);
	cr_assert_str_eq(policy_rule_outcome_field(jbt), "decision");
	m = s_event("rvdk_advice", "{\"advice_kind\": \"onderzoek_status\", "
	    "\"investigation\": \"gestart\"}");
	cr_assert(policy_rule_interim(rvdk, m, &lead));
	cr_assert_eq(lead, 90ull * 24 * 3600 * 1000);
	cr_assert_not(policy_rule_interim(jbt, m, NULL), "another type");
	pbjson_free(m);
	m = s_event("rvdk_advice", "{\"advice_kind\": \"route_consult\"}");
	cr_assert_not(policy_rule_interim(rvdk, m, NULL), "no investigation");
	pbjson_free(m);
	cr_assert_null(policy_rule_outcome_field(rvdk));
	cr_assert_not(policy_rule_interim(NULL, NULL, NULL));
	cr_assert_not(policy_rule_interim(policy_rule(pol,
	    KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME), NULL, NULL));
	policy_destroy(&pol);
}

Test(policy, interim_problems)
{
	policy_t *pol;

	pol = s_load_text(OK_POL("allowed = pv_subject\ninterim.pv_subject = "
	    "ouder, beide\ninterim_lead = 10d\noutcome = pv_subject\n"),
	    strlen(OK_POL("allowed = pv_subject\ninterim.pv_subject = ouder, "
	    "beide\ninterim_lead = 10d\noutcome = pv_subject\n")));
	policy_destroy(&pol);
	s_bad1(OK_POL("allowed = pv_subject\ninterim.pv_subject = ouder\n"),
	    "F:1: [referral]: interim.FIELD and interim_lead go together");
	s_bad1(OK_POL("interim_lead = 10d\n"),
	    "F:8: [referral]: interim.FIELD and interim_lead go together");
	s_bad1(OK_POL("allowed = pv_subject\ninterim.pv_subject = grootouder\n"
	    "interim_lead = 1d\n"),
	    "F:9: interim.pv_subject: 'grootouder' is not a value of PvSubject");
	s_bad1(OK_POL("allowed = age_years\ninterim.age_years = 12\n"
	    "interim_lead = 1d\n"),
	    "F:9: interim.age_years: field 'age_years' is not a single enum "
	    "field");
	s_bad1(OK_POL("interim.pv_subject = ouder\ninterim_lead = 1d\n"),
	    "F:8: interim.pv_subject: field 'pv_subject' is neither required "
	    "nor allowed");
	s_bad1(OK_POL("outcome = age_years\n"),
	    "F:8: outcome: field 'age_years' is not a single enum field");
	s_bad1(OK_POL("outcome = pv_subject\n"),
	    "F:8: outcome: field 'pv_subject' is neither required nor allowed");
	s_bad1(OK_POL("outcome = nope\n"),
	    "F:8: outcome: referral has no field 'nope'");
}

/* ---- per recipient: only_to.FIELD ----------------------------------- */

Test(policy, mas_halt_only_fields_go_only_to_halt)
{
	static const char *const halt_only[] = { "consent_halt",
	    "prior_halt_leerplicht", "parallel_routes" };
	static const char *const value[] = { "true", "false",
	    "[\"vrijwillige_jeugdhulp\"]" };
	policy_t *pol = s_mas();
	ProtobufCMessage *m;
	char want[256];
	size_t i;

	for (i = 0; i < 3; i++) {
		m = s_plain_referral(halt_only[i], value[i]);
		s_pass(pol, "referral", LP, HALT, m);
		snprintf(want, sizeof(want), "referral: rule 'only to': field "
		    "'%s' may go only to halt, not to rvdk", halt_only[i]);
		s_refused(pol, "referral", LP, RVDK, m, want);
		snprintf(want, sizeof(want), "referral: rule 'only to': field "
		    "'%s' may go only to halt, not to om", halt_only[i]);
		s_refused(pol, "referral", LP, OM, m, want);
		pbjson_free(m);
	}
	/* the referral without them goes to RvdK and OM */
	m = s_plain_referral(NULL, NULL);
	s_pass(pol, "referral", LP, RVDK, m);
	s_pass(pol, "referral", LP, OM, m);
	pbjson_free(m);
	policy_destroy(&pol);
}

Test(policy, only_to_problems)
{
	s_bad1(OK_POL("allowed = consent_halt\nonly_to.consent_halt = om\n"),
	    "F:9: only_to.consent_halt: a role that is not a recipient of "
	    "referral");
	s_bad1(OK_POL("only_to.route = halt\n"),
	    "F:8: only_to.route: field 'route' is required, so referral could "
	    "never be sent to the other recipients");
	s_bad1(OK_POL("only_to.consent_halt = halt\n"),
	    "F:8: only_to.consent_halt: field 'consent_halt' is neither "
	    "required nor allowed");
	s_bad1(OK_POL("allowed = consent_halt\nonly_to.consent_halt = rector\n"),
	    "F:9: only_to.consent_halt: unknown role 'rector' (roles: "
	    "leerplicht, halt, rvdk, om, jbt, zorg)");
	s_bad1(OK_POL("allowed = consent_halt\nonly_to.consent_halt = halt\n"
	    "only_to.consent_halt = halt\n"),
	    "F:10: duplicate key 'only_to.consent_halt' in [referral] (first "
	    "set on line 9)");
}

/* The MAS escalation step (opschaling): keys of [reminder] only. */
Test(policy, escalation_step_of_the_reminder_rule)
{
	policy_t *pol = s_mas();
	uint32_t n;
	uint64_t ms;

	policy_escalation(pol, &n, &ms);
	cr_assert_eq(n, 2, "escalate_after_reminders of mas.ini");
	cr_assert_eq(ms, 28 * DAY_MS, "escalate_after of mas.ini");
	policy_destroy(&pol);
	pol = s_load_text(OK_POL(""), strlen(OK_POL("")));
	policy_escalation(pol, &n, &ms);
	cr_assert(n == 0 && ms == 0, "no [reminder]: no escalation step");
	policy_destroy(&pol);
	s_bad1(OK_POL("escalate_after_reminders = 2\n"),
	    "F:8: escalate_after_reminders: only [reminder] has an "
	    "escalation step");
	s_bad1(OK_POL("escalate_after = 28d\n"),
	    "F:8: escalate_after: only [reminder] has an escalation step");
	s_bad1(OK_POL("[reminder]\npurpose = p\nlegal_basis = l\nsenders = "
	    "leerplicht\nrecipients = halt\nrequired = expected\nretention = "
	    "1d\nescalate_after_reminders = 0\n"),
	    "F:15: escalate_after_reminders: '0' is not a number from 1 to 20");
}
