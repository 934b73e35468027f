/*
 * test_logs.c: no personal data in the daemons' logs.
 *
 * A whole chain runs every event type (referrals to Halt, RvdK and OM, a
 * JBT request, a reminder, the three answers), subject access, and the
 * refusals: a send the policy refuses for a value (age 11, outside
 * 12..18) and an incoming event the receiver refuses for a value (age
 * 25, from a sender that skipped its own check).  Then every line of
 * every daemon's log (stderr, what the journal gets) is scanned for each
 * case reference used and each payload value: a distinctive value
 * anywhere, and any value next to its field name ("field 'age_years' is
 * 11", "age_years=11", "\"age_years\": 11").  Event ids, OINs, reasons
 * and field names may be logged; values and case references may not.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <zmq.h>

#include "chain.h"
#include "common.h"
#include "daemons.h"
#include "envelope.h"
#include "util.h"

TestSuite(logs, .init = test_init, .timeout = 240);

static const char *const s_case_refs[] = {
	"LOGSCAN-LP-0001", "LOGSCAN-LP-0002", "LOGSCAN-LP-0003",
	"LOGSCAN-LP-0004", "LOGSCAN-LP-REFUSED", "LOGSCAN-H-0001",
	"LOGSCAN-R-0001", "LOGSCAN-OM-0001", "LOGSCAN-JBT-0001", NULL
};

#define S_REFUSED_SEND "{\"route\": \"halt\", \"referral_kind\": " \
	"\"halt_pv\", \"absence_kind\": \"wettelijk\", \"duty_kind\": " \
	"\"leerplicht\", \"feedback_due_days\": 90, \"age_years\": 11}"
#define S_REFUSED_IN "{\"route\": \"halt\", \"referral_kind\": " \
	"\"halt_pv\", \"absence_kind\": \"wettelijk\", \"duty_kind\": " \
	"\"leerplicht\", \"feedback_due_days\": 77, \"age_years\": 25}"

static bool
s_word(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Is `w` in text as a whole word (not part of a longer name)? */
static const char *
s_find_word(const char *text, const char *w)
{
	const char *p = text;
	size_t n = strlen(w);

	while ((p = strstr(p, w)) != NULL) {
		if ((p == text || !s_word(p[-1])) && !s_word(p[n]))
			return p;
		p++;
	}
	return NULL;
}

/* Names that may be logged: field names, event types, roles. */
static bool
s_is_name(const char *v)
{
	static const char *const names[] = { "leerplicht", "halt", "rvdk",
	    "om", "jbt", "auditor", "strafadvies", "referral", "reminder",
	    "halt_outcome", "rvdk_advice", "om_decision", "jbt_request",
	    "request", "true", "false", NULL };
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(v, names[i]) == 0)
			return true;
	return false;
}

/* One field's value in the log?  Anywhere if distinctive; next to its
 * field name (within 32 characters after it) always.  OUT: why. */
static bool
s_has_value(const char *log, const char *field, const char *v, char *why,
    size_t len)
{
	const char *p = log, *hit;
	char window[40];
	bool distinctive = !s_is_name(v) && (strchr(v, '_') != NULL ||
	    strlen(v) >= 8);

	if (distinctive && (hit = s_find_word(log, v)) != NULL) {
		snprintf(why, len, "the payload value '%s' (field %s): ...%.80s",
		    v, field, hit > log + 40 ? hit - 40 : log);
		return true;
	}
	while ((p = s_find_word(p, field)) != NULL) {
		p += strlen(field);
		snprintf(window, sizeof(window), "%.32s", p);
		if (strchr(window, '\n') != NULL)
			*strchr(window, '\n') = '\0';
		if (s_find_word(window, v) != NULL) {
			snprintf(why, len, "field %s with its value %s: ...%s%s",
			    field, v, field, window);
			return true;
		}
	}
	return false;
}

/* Does the log hold a value of the payload (JSON text)?  OUT: why. */
static bool
s_has_payload(const char *log, const char *json, char *why, size_t len)
{
	json_t *j = json_loads(json, 0, NULL), *v, *el;
	const char *field;
	char text[64];
	bool found = false;
	size_t i;

	cr_assert_not_null(j);
	json_object_foreach(j, field, v) {
		for (i = 0; !found && i < (json_is_array(v) ?
		    json_array_size(v) : 1); i++) {
			el = json_is_array(v) ? json_array_get(v, i) : v;
			if (json_is_string(el))
				snprintf(text, sizeof(text), "%s",
				    json_string_value(el));
			else if (json_is_integer(el))
				snprintf(text, sizeof(text), "%lld",
				    (long long)json_integer_value(el));
			else
				snprintf(text, sizeof(text), "%s",
				    json_is_true(el) ? "true" : "false");
			found = s_has_value(log, field, text, why, len);
		}
	}
	json_decref(j);
	return found;
}

/* The rogue sender of test_gdpr: deliver a sealed envelope to `target`
 * over CURVE as `as`, and wait for its receipt. */
static void
s_send_raw(chain_t *as, td_org_t *target, const uint8_t *env, size_t len)
{
	const partner_t *srv = peer_partner(directory_find(as->dir, target->oin));
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
	uint8_t *frame = malloc(len + 1);
	int zero = 0, tmo = 5000;
	zmq_msg_t m;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, partner_transport_pk(srv), 32);
	zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY,
	    partner_transport_pk(identity_public(as->self)), 32);
	zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, identity_transport_sk(as->self),
	    32);
	cr_assert_eq(zmq_connect(s, target->listen), 0);
	frame[0] = 0x01;
	memcpy(frame + 1, env, len);
	cr_assert(zmq_send(s, frame, len + 1, 0) >= 0);
	zmq_msg_init(&m);
	cr_assert_gt(zmq_msg_recv(&m, s, 0), 1, "no receipt");
	zmq_msg_close(&m);
	free(frame);
	zmq_close(s);
	zmq_ctx_term(ctx);
}

static const uint8_t *
s_first_in(td_org_t *o, Kp__Response **keep)
{
	*keep = td_inbox(o, true);
	cr_assert_gt((*keep)->inbox->n_items, 0, "%s received nothing", o->oin);
	return (*keep)->inbox->items[0]->event_id.data;
}

/* Every event type, answers, subject access and both kinds of refusal. */
static void
s_run_chain(td_chain_t *c)
{
	td_org_t *lp = td_org(c, OIN_LEERPLICHT), *halt = td_org(c, OIN_HALT);
	td_org_t *rvdk = td_org(c, OIN_RVDK), *om = td_org(c, OIN_OM);
	td_org_t *jbt = td_org(c, OIN_JBT);
	char path[4200], out[8192];
	chain_t *rogue = NULL;
	Kp__Response *in;
	uint8_t id[16], *env;
	size_t k, len;
	kp_err_t e;
	FILE *f;

	for (k = 0; k < c->n; k++)
		if (strcmp(c->orgs[k].oin, OIN_AUDITOR) != 0)
			td_start(&c->orgs[k]);
	td_send(lp, OIN_HALT, "referral", s_case_refs[0],
	    td_example("referral"), NULL, id);
	td_send(lp, OIN_RVDK, "referral", s_case_refs[1],
	    td_example_to("referral", OIN_RVDK), NULL, id);
	td_send(lp, OIN_OM, "referral", s_case_refs[2],
	    td_example_to("referral", OIN_OM), NULL, id);
	td_send(lp, OIN_JBT, "jbt_request", s_case_refs[3],
	    td_example("jbt_request"), NULL, id);
	td_send(lp, OIN_HALT, "reminder", s_case_refs[0],
	    td_example("reminder"), NULL, id);
	cr_assert(td_wait_settled(lp, 10000));
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", s_case_refs[5],
	    td_example("halt_outcome"), s_first_in(halt, &in), id);
	kp__response__free_unpacked(in, NULL);
	td_send(rvdk, OIN_LEERPLICHT, "rvdk_advice", s_case_refs[6],
	    td_example("rvdk_advice"), s_first_in(rvdk, &in), id);
	kp__response__free_unpacked(in, NULL);
	td_send(om, OIN_LEERPLICHT, "om_decision", s_case_refs[7],
	    td_example("om_decision"), s_first_in(om, &in), id);
	kp__response__free_unpacked(in, NULL);
	cr_assert(td_wait_settled(halt, 10000));
	cr_assert(td_wait_settled(rvdk, 10000));
	cr_assert(td_wait_settled(om, 10000));
	(void)jbt;

	/* subject access, and the officer's views of a case */
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost subject "
	    "%s --config %s", test_bin(), s_case_refs[0], lp->conf), 0, "%s",
	    out);
	(void)test_sh_output(out, sizeof(out), "%s/ketenpost case %s --config "
	    "%s", test_bin(), s_case_refs[0], lp->conf);
	/* refused at the sender, for a value: the client hears the value */
	snprintf(path, sizeof(path), "%s/refused.json", c->dir);
	cr_assert_not_null(f = fopen(path, "w"));
	fputs(S_REFUSED_SEND, f);
	fclose(f);
	cr_assert_neq(test_sh_output(out, sizeof(out), "%s/ketenpost send "
	    "referral --to %s --case %s --json %s --config %s", test_bin(),
	    OIN_HALT, s_case_refs[4], path, lp->conf), 0, "%s", out);
	cr_assert(strstr(out, "is 11") != NULL, "the client is told: %s", out);
	cr_assert(td_log_has(lp, "send refused", 2000));
	/* refused at the receiver, for a value */
	cr_assert(chain_open_oin(c->dir, OIN_LEERPLICHT, NULL, NULL, &rogue,
	    &e) == 0, "%s", e.msg);
	td_seal(rogue, c, OIN_HALT, "referral", S_REFUSED_IN, kp_now_ms(),
	    &env, &len, id);
	s_send_raw(rogue, halt, env, len);
	free(env);
	chain_close(&rogue);
	cr_assert(td_log_has(halt, "REASON_POLICY_VIOLATION", 2000));
	cr_assert(td_log_has(halt, "rule 'range': field 'age_years'", 2000));
}

Test(logs, no_case_reference_or_payload_value_in_any_log)
{
	static const char *const types[] = { "referral", "jbt_request",
	    "reminder", "halt_outcome", "rvdk_advice", "om_decision", NULL };
	td_chain_t c;
	uint8_t *buf;
	size_t k, i, n;
	char *log, why[256];

	td_chain_make(&c, NULL);
	s_run_chain(&c);
	td_chain_stop_all(&c);
	for (k = 0; k < c.n; k++) {
		if (kp_read_file(c.orgs[k].log, 64u << 20, &buf, &n) != 0)
			continue;             /* the auditor did not run */
		cr_assert_not_null(log = malloc(n + 1));
		memcpy(log, buf, n);
		log[n] = '\0';
		free(buf);
		cr_assert_gt(n, 0);
		for (i = 0; s_case_refs[i] != NULL; i++)
			cr_assert_null(strstr(log, s_case_refs[i]),
			    "%s logs the case reference %s", c.orgs[k].log,
			    s_case_refs[i]);
		for (i = 0; types[i] != NULL; i++)
			cr_assert(!s_has_payload(log, td_example(types[i]), why,
			    sizeof(why)), "%s logs %s", c.orgs[k].log, why);
		cr_assert(!s_has_payload(log, S_REFUSED_SEND, why,
		    sizeof(why)), "%s logs %s", c.orgs[k].log, why);
		cr_assert(!s_has_payload(log, S_REFUSED_IN, why,
		    sizeof(why)), "%s logs %s", c.orgs[k].log, why);
		free(log);
	}
}

/* The scan itself is not blind: lines the daemons used to write. */
Test(logs, the_scan_finds_what_it_looks_for)
{
	static const char *const bad[] = {
	    "ketenpostd: send refused: referral: rule 'range': field "
	    "'age_years' is 11, outside 12..18\n",
	    "ketenpostd: event x refused: \"age_years\": 11\n",
	    "ketenpostd: referral carries referral_kind halt_pv\n", NULL };
	static const char good[] = "ketenpostd: send refused: referral: rule "
	    "'range': field 'age_years' (value not logged)\nketenpostd: event "
	    "x type referral accepted (inbox seq 11; fields route,age_years)\n";
	char why[256];
	size_t i;

	for (i = 0; bad[i] != NULL; i++)
		cr_assert(s_has_payload(bad[i], S_REFUSED_SEND, why, sizeof(why)),
		    "not caught: %s", bad[i]);
	cr_assert(!s_has_payload(good, S_REFUSED_SEND, why, sizeof(why)),
	    "a false alarm: %s", why);
}
