/*
 * test_gdpr.c: purpose binding and minimisation with real daemons — the
 * chain policy enforced on send (CLI and API) and again on receipt, a
 * policy mismatch between two daemons, per-partner case pseudonyms,
 * retention purge, and subject access.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "chain.h"
#include "common.h"
#include "daemons.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "pbjson.h"
#include "policy.h"

TestSuite(gdpr, .init = test_init, .timeout = 180);

/* Run the real client against org o; returns the exit status. */
static int
s_cli(const td_org_t *o, char *out, size_t len, const char *args)
{
	return test_sh_output(out, len, "%s/ketenpost %s --config %s",
	    test_bin(), args, o->conf);
}

/* A JSON file in the chain's folder, from text. */
static const char *
s_json_file(td_chain_t *c, const char *name, const char *text)
{
	static char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.json", c->dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Some line of o's audit export holds both a and b. */
static void
s_audit_has(const td_chain_t *c, const td_org_t *o, const char *a,
    const char *b)
{
	char out[65536], *line, *save = NULL;

	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit export "
	    "%s/orgs/%s/state", test_bin(), c->dir, o->oin), 0, "%s", out);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (strstr(line, a) != NULL && strstr(line, b) != NULL)
			return;
	cr_assert_fail("no audit entry of %s with %s and %s", o->oin, a, b);
}

static void
s_expect_refused(td_chain_t *c, td_org_t *o, const char *type,
    const char *to, const char *json, const char *needle)
{
	char out[4096], args[8192];

	snprintf(args, sizeof(args), "send %s --to %s --case LP-1 --json %s",
	    type, to, s_json_file(c, "bad", json));
	cr_assert_neq(s_cli(o, out, sizeof(out), args), 0, "accepted: %s", out);
	cr_assert(strstr(out, needle) != NULL, "expected '%s' in: %s", needle,
	    out);
	cr_assert(strchr(out, '\n') == strrchr(out, '\n'), "one line: %s", out);
}

Test(gdpr, send_refuses_what_the_policy_forbids_and_queues_nothing)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__StatusResponse st;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	/* wrong recipient role: a referral may not go to the JBT */
	s_expect_refused(&c, lp, "referral", OIN_JBT, td_example("referral"),
	    "rule 'recipients'");
	/* wrong sender role: leerplicht does not send Halt outcomes */
	s_expect_refused(&c, lp, "halt_outcome", OIN_HALT,
	    td_example("halt_outcome"), "rule 'senders'");
	/* a required field missing */
	s_expect_refused(&c, lp, "referral", OIN_HALT, "{\"route\": \"halt\", "
	    "\"referral_kind\": \"halt_pv\", \"absence_kind\": \"wettelijk\", "
	    "\"duty_kind\": \"leerplicht\", \"feedback_due_days\": 90}",
	    "required field 'age_years'");
	/* a value out of range: no 25-year-olds in the MAS */
	s_expect_refused(&c, lp, "referral", OIN_HALT, "{\"route\": \"halt\", "
	    "\"referral_kind\": \"halt_pv\", \"absence_kind\": \"wettelijk\", "
	    "\"duty_kind\": \"leerplicht\", \"feedback_due_days\": 90, "
	    "\"age_years\": 25}", "rule 'range'");
	/* a value outside its enumeration (refused before it is sent) */
	s_expect_refused(&c, lp, "referral", OIN_HALT, "{\"route\": \"bus\"}",
	    "not a Route");
	/* JBT indications never go back to leerplicht (JBT sends) */
	td_status(lp, &st);
	cr_assert_eq(st.outbox_pending + st.outbox_delivered, 0,
	    "nothing may be queued");
	td_chain_stop_all(&c);
	/* each refusal is audited with an event id and the rule, no value */
	s_audit_has(&c, lp, "\"kind\":\"refusal_out\"", "\"rule\":\"recipients\"");
	s_audit_has(&c, lp, "\"kind\":\"refusal_out\"", "\"rule\":\"senders\"");
	s_audit_has(&c, lp, "\"kind\":\"refusal_out\"",
	    "\"rule\":\"at least:age_years\"");
	s_audit_has(&c, lp, "\"kind\":\"refusal_out\"",
	    "\"rule\":\"range:age_years\"");
	s_audit_has(&c, lp, "\"rule\":\"range:age_years\"", "\"event_id\":");
}

Test(gdpr, forbidden_field_refused_with_a_narrower_policy)
{
	td_chain_t c;
	td_org_t *lp, *jbt;
	char conf[8192];

	/* a chain whose agreement does not allow `culpable` in referrals */
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	jbt = td_org(&c, OIN_JBT);
	cr_assert_eq(test_sh("sed -i 's/^\\(allowed *=.*\\)culpable, */\\1/' "
	    "%s/policy.ini && ! grep -q '^allowed.*culpable' %s/policy.ini",
	    c.dir, c.dir), 0, "could not narrow the policy");
	(void)conf;
	td_start(lp);
	td_start(jbt);
	s_expect_refused(&c, lp, "referral", OIN_HALT, td_example("referral"),
	    "rule 'at most': field 'culpable'");
	td_chain_stop_all(&c);
}

/* The rogue partner of test_refusals, compressed: connect as `as`. */
static uint8_t *
s_send_raw(chain_t *as, td_org_t *target, const uint8_t *env, size_t len,
    size_t *rlen)
{
	const partner_t *srv = peer_partner(directory_find(as->dir, target->oin));
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
	uint8_t *frame = malloc(len + 1), *out = NULL;
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
	if (zmq_msg_recv(&m, s, 0) > 1) {
		*rlen = zmq_msg_size(&m) - 1;
		out = malloc(*rlen);
		memcpy(out, (uint8_t *)zmq_msg_data(&m) + 1, *rlen);
	}
	zmq_msg_close(&m);
	free(frame);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return out;
}

Test(gdpr, receiver_enforces_the_policy_again)
{
	td_chain_t c;
	td_org_t *halt;
	chain_t *lp = NULL;
	uint8_t *env, *rc;
	size_t len, rlen;
	receipt_t r;
	Kp__StatusResponse st;
	uint8_t id[16];
	kp_err_t e;

	td_chain_make(&c, NULL);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	cr_assert(chain_open_oin(c.dir, OIN_LEERPLICHT, NULL, NULL, &lp, &e) == 0);
	/* a sender that skipped its own checks: age 25 */
	td_seal(lp, &c, OIN_HALT, "referral", "{\"route\": \"halt\", "
	    "\"referral_kind\": \"halt_pv\", \"absence_kind\": \"wettelijk\", "
	    "\"duty_kind\": \"leerplicht\", \"feedback_due_days\": 90, "
	    "\"age_years\": 25}", kp_now_ms(), &env, &len, id);
	rc = s_send_raw(lp, halt, env, len, &rlen);
	cr_assert_not_null(rc, "no receipt");
	cr_assert(receipt_verify(lp->dir, rc, rlen, &r, &e) == 0, "%s", e.msg);
	cr_assert_eq(r.status, KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED);
	cr_assert_eq(r.reason, KP__REASON__REASON_POLICY_VIOLATION);
	cr_assert(td_log_has(halt, "REASON_POLICY_VIOLATION", 2000));
	cr_assert(td_log_has(halt, "rule 'range'", 2000));
	td_status(halt, &st);
	cr_assert_eq(st.inbox_total, 0, "nothing reaches the inbox");
	{
		char idt[KP_UUID_TEXT_LEN + 1], want[80];

		kp_uuid_format(id, idt);
		snprintf(want, sizeof(want), "\"event_id\":\"%s\"", idt);
		s_audit_has(&c, halt, "\"kind\":\"refusal_in\"", want);
		s_audit_has(&c, halt, want, "\"rule\":\"range:age_years\"");
	}
	free(env);
	free(rc);
	chain_close(&lp);
	td_chain_stop_all(&c);
}

Test(gdpr, policy_mismatch_between_two_daemons)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t id[16];
	Kp__Response *out;
	char other[4200], conf_line[8800], ours[65], theirs[65];
	uint8_t h[32];
	size_t n;
	uint8_t *buf;

	/* Halt applies an edited agreement (another version) */
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	snprintf(other, sizeof(other), "%s/policy-halt.ini", c.dir);
	cr_assert_eq(test_sh("sed 's/^version *=.*/version = 2099-01/' "
	    "%s/policy.ini > %s && ! cmp -s %s/policy.ini %s", c.dir, other,
	    c.dir, other), 0);
	snprintf(conf_line, sizeof(conf_line), "sed -i 's|^\\[ketenpostd\\]|"
	    "[ketenpostd]\\npolicy = %s|' %s", other, halt->conf);
	cr_assert_eq(test_sh("%s", conf_line), 0);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-1", td_example("referral"), NULL, id);
	cr_assert(td_wait_settled(lp, 10000));
	out = td_outbox(lp);
	cr_assert_eq(out->outbox->items[0]->state,
	    KP__DELIVERY_STATE__DELIVERY_STATE_REJECTED);
	cr_assert_eq(out->outbox->items[0]->reason,
	    KP__REASON__REASON_POLICY_MISMATCH);
	kp__response__free_unpacked(out, NULL);
	/* the sender's log names both hashes */
	cr_assert(kp_read_file(other, 1 << 20, &buf, &n) == 0);
	cr_assert(crypto_generichash(h, 32, buf, n, NULL, 0) == 0);
	kp_hex(h, 32, theirs);
	free(buf);
	snprintf(other, sizeof(other), "%s/policy.ini", c.dir);
	cr_assert(kp_read_file(other, 1 << 20, &buf, &n) == 0);
	cr_assert(crypto_generichash(h, 32, buf, n, NULL, 0) == 0);
	kp_hex(h, 32, ours);
	free(buf);
	cr_assert(td_log_has(lp, "policy_mismatch", 3000));
	cr_assert(td_log_has(lp, ours, 0), "our hash %s not named", ours);
	cr_assert(td_log_has(lp, theirs, 0), "their hash %s not named", theirs);
	cr_assert(td_log_has(halt, "REASON_POLICY_MISMATCH", 0));
	td_chain_stop_all(&c);
}

static const Kp__InboxItem *
s_only_item(Kp__Response *r, size_t i)
{
	cr_assert_gt(r->inbox->n_items, i);
	return r->inbox->items[i];
}

Test(gdpr, case_pseudonyms_per_partner)
{
	td_chain_t c;
	td_org_t *lp, *halt, *rvdk;
	uint8_t a[16], b[16], x[16], ans[16], ans2[16];
	Kp__Response *hin, *rin, *lin;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	rvdk = td_org(&c, OIN_RVDK);
	td_start(lp);
	td_start(halt);
	td_start(rvdk);
	td_send(lp, OIN_HALT, "referral", "LP-2026-0042", td_example("referral"),
	    NULL, a);
	td_send(lp, OIN_HALT, "referral", "LP-2026-0042", td_example("referral"),
	    NULL, b);
	td_send(lp, OIN_HALT, "referral", "LP-2026-0099", td_example("referral"),
	    NULL, x);
	td_send(lp, OIN_RVDK, "referral", "LP-2026-0042",
	    td_example_to("referral", OIN_RVDK), NULL, x);
	cr_assert(td_wait_settled(lp, 10000));
	hin = td_inbox(halt, true);
	rin = td_inbox(rvdk, true);
	/* same case, same partner: the same pseudonym */
	cr_assert_arr_eq(s_only_item(hin, 0)->case_pseudonym.data,
	    s_only_item(hin, 1)->case_pseudonym.data, 32);
	/* another case: another pseudonym */
	cr_assert_arr_neq(s_only_item(hin, 0)->case_pseudonym.data,
	    s_only_item(hin, 2)->case_pseudonym.data, 32);
	/* same case, another partner: unlinkable */
	cr_assert_arr_neq(s_only_item(hin, 0)->case_pseudonym.data,
	    s_only_item(rin, 0)->case_pseudonym.data, 32);
	/* the local reference never leaves Leerplicht */
	cr_assert_null(s_only_item(hin, 0)->case_ref);
	cr_assert(!td_log_has(halt, "LP-2026-0042", 0));
	/* Halt answers the second case and the first: each lands right */
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", "H-2", td_example(
	    "halt_outcome"), s_only_item(hin, 2)->event_id.data, ans);
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", "H-1", td_example(
	    "halt_outcome"), s_only_item(hin, 0)->event_id.data, ans2);
	cr_assert(td_wait_settled(halt, 10000));
	lin = td_inbox(lp, true);
	cr_assert_str_eq(s_only_item(lin, 0)->case_ref, "LP-2026-0099");
	cr_assert_str_eq(s_only_item(lin, 1)->case_ref, "LP-2026-0042");
	kp__response__free_unpacked(hin, NULL);
	kp__response__free_unpacked(rin, NULL);
	kp__response__free_unpacked(lin, NULL);
	td_chain_stop_all(&c);
}

Test(gdpr, answer_on_an_unknown_pseudonym_is_refused)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t id[16];
	Kp__Response *out;
	Kp__StatusResponse st;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	/* Halt sends an outcome about a case Leerplicht never referred */
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", "H-77",
	    td_example("halt_outcome"), NULL, id);
	cr_assert(td_wait_settled(halt, 10000));
	out = td_outbox(halt);
	cr_assert_eq(out->outbox->items[0]->state,
	    KP__DELIVERY_STATE__DELIVERY_STATE_REJECTED);
	cr_assert_eq(out->outbox->items[0]->reason,
	    KP__REASON__REASON_UNKNOWN_CASE);
	kp__response__free_unpacked(out, NULL);
	td_status(lp, &st);
	cr_assert_eq(st.inbox_total, 0, "it must not land on any case");
	cr_assert(td_log_has(lp, "REASON_UNKNOWN_CASE", 1000));
	td_chain_stop_all(&c);
}

Test(gdpr, retention_purge_destroys_payloads_keeps_metadata)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t id[16];
	char out[16384], uuid[37];
	json_t *j, *it;

	td_chain_make(&c, NULL);
	cr_assert_eq(test_sh("sed -i 's/^retention *=.*/retention = 2s/' "
	    "%s/policy.ini", c.dir), 0);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-1", td_example("referral"), NULL, id);
	cr_assert(td_wait_settled(lp, 10000));
	kp_uuid_format(id, uuid);
	/* before: the payload can be read */
	cr_assert_eq(s_cli(halt, out, sizeof(out), "inbox --json"), 0);
	cr_assert(strstr(out, "\"route\": \"halt\"") != NULL, "%s", out);
	sleep(3);
	cr_assert_eq(s_cli(halt, out, sizeof(out), "purge"), 0, "%s", out);
	cr_assert(strstr(out, "purged 1") != NULL, "%s", out);
	cr_assert_eq(s_cli(lp, out, sizeof(out), "purge"), 0, "%s", out);
	cr_assert(strstr(out, "purged 1") != NULL, "%s", out);
	cr_assert(td_log_has(halt, "payload removed", 1000));
	cr_assert(td_log_has(halt, "purge: 1 payload", 1000));
	/* after: no command can read the payload; the metadata is there */
	cr_assert_eq(s_cli(halt, out, sizeof(out), "inbox --json"), 0);
	j = json_loads(out, 0, NULL);
	cr_assert_not_null(j, "%s", out);
	it = json_array_get(j, 0);
	cr_assert_str_eq(json_string_value(json_object_get(it, "event_id")), uuid);
	cr_assert_null(json_object_get(it, "payload"), "%s", out);
	cr_assert(json_is_true(json_object_get(it, "payload_destroyed")));
	cr_assert_not_null(json_object_get(it, "envelope_digest"));
	json_decref(j);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost fetch %s "
	    "--config %s", test_bin(), uuid, halt->conf), 0, "%s", out);
	cr_assert(strstr(out, "\"route\"") == NULL, "%s", out);
	cr_assert_eq(s_cli(lp, out, sizeof(out), "outbox --json"), 0);
	cr_assert(strstr(out, "\"payload_destroyed\": true") != NULL, "%s", out);
	/* a second purge finds nothing more */
	cr_assert_eq(s_cli(halt, out, sizeof(out), "purge"), 0);
	cr_assert(strstr(out, "purged 0") != NULL, "%s", out);
	td_chain_stop_all(&c);
}

/* lp refers case lp_case to Halt, which answers it under h_case; both
 * settled. */
static void
s_halt_answers(td_org_t *lp, td_org_t *halt, const char *lp_case,
    const char *h_case)
{
	uint8_t id[16], ans[16];
	Kp__Response *hin;

	td_send(lp, OIN_HALT, "referral", lp_case, td_example("referral"), NULL,
	    id);
	cr_assert(td_wait_settled(lp, 10000));
	hin = td_inbox(halt, true);
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", h_case,
	    td_example("halt_outcome"), hin->inbox->items[0]->event_id.data, ans);
	kp__response__free_unpacked(hin, NULL);
	cr_assert(td_wait_settled(halt, 10000));
}

Test(gdpr, subject_access_lists_what_was_shared)
{
	td_chain_t c;
	td_org_t *lp, *halt, *rvdk;
	uint8_t b[16];
	char out[16384];
	json_t *j, *items, *first, *fields;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	rvdk = td_org(&c, OIN_RVDK);
	td_start(lp);
	td_start(halt);
	td_start(rvdk);
	s_halt_answers(lp, halt, "LP-7", "H-1");
	td_send(lp, OIN_RVDK, "referral", "LP-8", td_example_to("referral", OIN_RVDK), NULL, b);
	cr_assert(td_wait_settled(lp, 10000));
	cr_assert_eq(s_cli(lp, out, sizeof(out), "subject LP-7 --json"), 0, "%s",
	    out);
	j = json_loads(out, 0, NULL);
	cr_assert_not_null(j, "%s", out);
	items = json_object_get(j, "items");
	cr_assert_eq(json_array_size(items), 2, "LP-8 must not appear: %s", out);
	first = json_array_get(items, 0);
	cr_assert_str_eq(json_string_value(json_object_get(first, "direction")),
	    "sent");
	cr_assert_str_eq(json_string_value(json_object_get(first,
	    "partner_oin")), OIN_HALT);
	cr_assert_str_eq(json_string_value(json_object_get(first, "event_type")),
	    "referral");
	cr_assert_str_eq(json_string_value(json_object_get(first, "state")),
	    "delivered");
	cr_assert_not_null(json_object_get(first, "purpose"));
	cr_assert_not_null(json_object_get(first, "legal_basis"));
	fields = json_object_get(first, "fields");
	cr_assert(json_array_size(fields) >= 6);
	cr_assert_str_eq(json_string_value(json_array_get(fields, 0)), "route");
	cr_assert_null(strstr(out, "\"halt_pv\""), "never a value: %s", out);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(items,
	    1), "direction")), "received");
	json_decref(j);
	/* the human form names the organisation */
	cr_assert_eq(s_cli(lp, out, sizeof(out), "subject LP-7"), 0);
	cr_assert(strstr(out, "Halt Voorbeeldregio") != NULL, "%s", out);
	td_chain_stop_all(&c);
}

/*
 * A subject-access answer is all or nothing: a received event whose kept
 * payload cannot be read fails the answer with its reason, instead of
 * listing the event without its values as if nothing had been kept.
 */
Test(gdpr, subject_access_with_values_fails_whole_when_a_payload_is_unreadable)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char out[16384], dir[4096];
	json_t *j, *items, *second;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	s_halt_answers(lp, halt, "LP-9", "H-9");
	/* readable: the received answer comes with its values */
	cr_assert_eq(s_cli(lp, out, sizeof(out), "subject LP-9 --values "
	    "--json"), 0, "%s", out);
	j = json_loads(out, 0, NULL);
	cr_assert_not_null(j, "%s", out);
	items = json_object_get(j, "items");
	cr_assert_eq(json_array_size(items), 2, "%s", out);
	second = json_array_get(items, 1);
	cr_assert_str_eq(json_string_value(json_object_get(second,
	    "direction")), "received");
	cr_assert_not_null(json_object_get(second, "values_json"), "%s", out);
	json_decref(j);
	/* its kept payload damaged on disk */
	cr_assert_eq(td_stop(lp), 0);
	td_state_dir(&c, OIN_LEERPLICHT, dir, sizeof(dir));
	cr_assert_eq(test_sh_output(out, sizeof(out), "sqlite3 '%s/ketenpost.db'"
	    " \"UPDATE inbox SET sealed_payload = zeroblob(length("
	    "sealed_payload)) WHERE sealed_payload IS NOT NULL; SELECT "
	    "changes();\"", dir), 0, "%s", out);
	cr_assert_eq(strtol(out, NULL, 10), 1, "%s", out);
	td_start(lp);
	cr_assert_neq(s_cli(lp, out, sizeof(out), "subject LP-9 --values "
	    "--json"), 0, "a short answer must not pass for a whole one: %s",
	    out);
	cr_assert(strstr(out, "could not be answered completely") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "kept payload could not be read") != NULL, "%s",
	    out);
	cr_assert(td_log_has(lp, "subject access by", 2000));
	/* without values the metadata is still there to list */
	cr_assert_eq(s_cli(lp, out, sizeof(out), "subject LP-9 --json"), 0,
	    "%s", out);
	j = json_loads(out, 0, NULL);
	cr_assert_not_null(j, "%s", out);
	cr_assert_eq(json_array_size(json_object_get(j, "items")), 2, "%s",
	    out);
	json_decref(j);
	td_chain_stop_all(&c);
}

Test(gdpr, check_reports_every_policy_problem_with_file_and_line)
{
	td_chain_t c;
	td_org_t *lp;
	char out[8192];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	cr_assert_eq(test_sh("sed -i '0,/^senders = leerplicht$/s//senders = "
	    "leerplicht, school/; s/^range.age_years = .*/range.age_yeers = 1..2/'"
	    " %s/policy.ini", c.dir), 0);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpostd --config "
	    "%s --check", test_bin(), lp->conf), 1, "%s", out);
	cr_assert(strstr(out, "policy.ini:") != NULL, "%s", out);
	cr_assert(strstr(out, "school") != NULL, "unknown role named: %s", out);
	cr_assert(strstr(out, "age_yeers") != NULL, "unknown field named: %s",
	    out);
	cr_assert(strstr(out, "2 problem(s)") != NULL, "%s", out);
	/* and the daemon refuses to start on it */
	cr_assert_neq(test_sh("%s/ketenpostd --config %s 2>/dev/null",
	    test_bin(), lp->conf), 0);
}
