/*
 * test_auditd.c: the audit log as the daemons write it, checked with the
 * auditor's offline tools: a full exchange verifies and reconciles, holds
 * no payload value, partners witness each other's heads, a forked head is
 * an alarm, and an unwritable log stops sending (fail-closed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <zmq.h>

#include "auditlog.h"
#include "merkle.h"
#include "chain.h"
#include "common.h"
#include "daemons.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "events.h"

TestSuite(auditd, .init = test_init, .timeout = 180);

#define HEADS "\n[delivery]\nhead_interval = 200ms\n"

static void
s_state(const td_chain_t *c, const char *oin, char *buf, size_t len)
{
	snprintf(buf, len, "%s/orgs/%s/state", c->dir, oin);
}

/* The five event types between the five organisations, all settled. */
static void
s_full_run(td_chain_t *c)
{
	td_org_t *lp = td_org(c, OIN_LEERPLICHT), *halt = td_org(c, OIN_HALT);
	td_org_t *rvdk = td_org(c, OIN_RVDK), *om = td_org(c, OIN_OM);
	uint8_t id[16], ans[16];
	Kp__Response *in;
	size_t k;

	for (k = 0; k < c->n; k++)
		td_start(&c->orgs[k]);
	td_send(lp, OIN_HALT, "referral", "LP-1", td_example("referral"), NULL, id);
	td_send(lp, OIN_RVDK, "referral", "LP-2", td_example_to("referral", OIN_RVDK), NULL, id);
	td_send(lp, OIN_OM, "referral", "LP-3", td_example_to("referral", OIN_OM), NULL, id);
	td_send(lp, OIN_JBT, "jbt_request", "LP-2", td_example("jbt_request"),
	    NULL, id);
	cr_assert(td_wait_settled(lp, 10000));
	in = td_inbox(halt, true);
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", "H-1",
	    td_example("halt_outcome"), in->inbox->items[0]->event_id.data, ans);
	kp__response__free_unpacked(in, NULL);
	in = td_inbox(rvdk, true);
	td_send(rvdk, OIN_LEERPLICHT, "rvdk_advice", "R-1",
	    td_example("rvdk_advice"), in->inbox->items[0]->event_id.data, ans);
	kp__response__free_unpacked(in, NULL);
	in = td_inbox(om, true);
	td_send(om, OIN_LEERPLICHT, "om_decision", "OM-1",
	    td_example("om_decision"), in->inbox->items[0]->event_id.data, ans);
	kp__response__free_unpacked(in, NULL);
	cr_assert(td_wait_settled(halt, 10000));
	cr_assert(td_wait_settled(rvdk, 10000));
	cr_assert(td_wait_settled(om, 10000));
	usleep(500000);  /* a head covering the last entries (200 ms) */
}

/* `ketenpost audit export` of an organisation into DIR/OIN.jsonl. */
static const char *
s_export(const td_chain_t *c, const char *oin, char *path, size_t len)
{
	char state[4200];

	s_state(c, oin, state, sizeof(state));
	snprintf(path, len, "%s/%s.jsonl", c->dir, oin);
	cr_assert_eq(test_sh("%s/ketenpost audit export %s > %s", test_bin(),
	    state, path), 0, "export of %s failed", oin);
	return path;
}

/* Is name also a field name of some event (then the log may hold it)? */
static bool
s_is_field_name(const char *name)
{
	const ProtobufCMessageDescriptor *d;
	int t;
	unsigned i;

	for (t = 1; (d = events_descriptor(t)) != NULL; t++)
		for (i = 0; i < d->n_fields; i++)
			if (strcmp(d->fields[i].name, name) == 0)
				return true;
	return false;
}

/* Every string value of every example payload, as a JSON token (except
 * values that are also field names, such as advice_kind "strafadvies"). */
static bool
s_leaks_payload(const char *export_text, char *found, size_t len)
{
	static const char *types[] = { "referral", "halt_outcome",
	    "rvdk_advice", "om_decision", "jbt_request" };
	const char *k;
	json_t *j, *v, *e;
	size_t i, x;
	char tok[128];

	for (i = 0; i < 5; i++) {
		j = json_loads(td_example(types[i]), 0, NULL);
		json_object_foreach(j, k, v) {
			json_t *arr = json_is_array(v) ? v : NULL;
			for (x = 0; x < (arr ? json_array_size(arr) : 1); x++) {
				e = arr ? json_array_get(arr, x) : v;
				if (!json_is_string(e) ||
				    s_is_field_name(json_string_value(e)))
					continue;
				snprintf(tok, sizeof(tok), "\"%s\"",
				    json_string_value(e));
				if (strstr(export_text, tok) != NULL) {
					snprintf(found, len, "%s", tok);
					json_decref(j);
					return true;
				}
			}
		}
		json_decref(j);
	}
	return false;
}

/*
 * In an export, every receipt_received entry names the event type,
 * purpose, legal basis and case pseudonym of the send it settled (the
 * settle returns them from the outbox row: outbound.c).  Returns the
 * number of receipt entries checked.
 */
static size_t
s_receipts_match_sends(const char *path)
{
	static const char *keys[] = { "event_type", "purpose", "legal_basis",
	    "case_pseudonym" };
	json_t *sends = json_object(), *e;
	char line[65536];
	size_t n = 0, k;
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *kind, *id;

		e = json_loads(line, 0, NULL);
		cr_assert_not_null(e, "export line: %s", line);
		kind = json_string_value(json_object_get(e, "kind"));
		id = json_string_value(json_object_get(e, "event_id"));
		if (kind != NULL && id != NULL && strcmp(kind, "send") == 0)
			json_object_set(sends, id, e);
		else if (kind != NULL && id != NULL &&
		    strcmp(kind, "receipt_received") == 0) {
			json_t *s = json_object_get(sends, id);

			cr_assert_not_null(s, "receipt for %s before its send", id);
			for (k = 0; k < 4; k++)
				cr_assert(json_equal(json_object_get(s, keys[k]),
				    json_object_get(e, keys[k])), "receipt of %s: "
				    "%s differs from its send", id, keys[k]);
			n++;
		}
		json_decref(e);
	}
	fclose(f);
	json_decref(sends);
	return n;
}

Test(auditd, full_run_verifies_reconciles_and_holds_no_payload)
{
	td_chain_t c;
	char a[4200], b[4200], state[4200], out[65536], leak[128];
	uint8_t *text;
	size_t n, k;

	td_chain_make(&c, HEADS);
	s_full_run(&c);
	td_chain_stop_all(&c);   /* each signs a final head at shutdown */
	for (k = 0; k < c.n; k++) {
		s_export(&c, c.orgs[k].oin, a, sizeof(a));
		cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
		    "verify %s", test_bin(), a), 0, "%s: %s", c.orgs[k].oin, out);
		s_state(&c, c.orgs[k].oin, state, sizeof(state));
		cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
		    "verify %s", test_bin(), state), 0, "%s: %s", c.orgs[k].oin,
		    out);
		cr_assert(kp_read_file(a, 1 << 22, &text, &n) == 0);
		cr_assert(!s_leaks_payload((char *)text, leak, sizeof(leak)),
		    "payload value %s in the audit log of %s", leak,
		    c.orgs[k].oin);
		cr_assert(strstr((char *)text, "\"send\"") ||
		    strstr((char *)text, "\"receipt_sent\""), "%s: no events",
		    c.orgs[k].oin);
		free(text);
	}
	s_export(&c, OIN_LEERPLICHT, a, sizeof(a));
	cr_assert_geq(s_receipts_match_sends(a), 3, "Leerplicht's receipts");
	s_export(&c, OIN_HALT, b, sizeof(b));
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
	    "reconcile %s %s", test_bin(), a, b), 0, "%s", out);
	cr_assert(strstr(out, "0 discrepancies") != NULL, "%s", out);
	/* the same from the state directories */
	s_state(&c, OIN_LEERPLICHT, a, sizeof(a));
	s_state(&c, OIN_OM, b, sizeof(b));
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
	    "reconcile %s %s", test_bin(), a, b), 0, "%s", out);
}

Test(auditd, partners_witness_each_others_heads)
{
	td_chain_t c;
	char lp_export[4200], halt_state[4200], out[65536];

	td_chain_make(&c, HEADS);
	s_full_run(&c);
	td_chain_stop_all(&c);
	s_export(&c, OIN_LEERPLICHT, lp_export, sizeof(lp_export));
	s_state(&c, OIN_HALT, halt_state, sizeof(halt_state));
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
	    "witness %s --heads %s", test_bin(), lp_export, halt_state), 0,
	    "%s", out);
	/* Leerplicht rewrites one entry of its log: Halt's heads expose it */
	cr_assert_eq(test_sh("sed -i '0,/mas\\.route_referral/"
	    "s//mas.route_referrax/' %s && grep -q route_referrax %s",
	    lp_export, lp_export), 0);
	cr_assert_neq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
	    "witness %s --heads %s", test_bin(), lp_export, halt_state), 0,
	    "a rewritten log passed the partner's heads: %s", out);
}

Test(auditd, unwritable_log_stops_sending)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char db[4200], out[8192];
	Kp__StatusResponse st;
	sqlite3 *h = NULL;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	/* from now on every write to Leerplicht's audit log fails */
	snprintf(db, sizeof(db), "%s/orgs/%s/state/ketenpost.db", c.dir,
	    OIN_LEERPLICHT);
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_busy_timeout(h, 5000), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "CREATE TRIGGER audit_unwritable BEFORE "
	    "INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
	    NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
	sqlite3_close(h);
	snprintf(db, sizeof(db), "send referral --to %s --case LP-1 --json "
	    "%s/docs/examples/referral.json --config %s", OIN_HALT,
	    test_source_dir(), lp->conf);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost %s",
	    test_bin(), db), 1, "%s", out);
	cr_assert(strstr(out, "audit log") != NULL, "%s", out);
	usleep(500000);
	td_status(lp, &st);
	cr_assert_eq(st.outbox_pending + st.outbox_delivered, 0);
	td_status(halt, &st);
	cr_assert_eq(st.inbox_total, 0, "nothing may have been sent");
	td_chain_stop_all(&c);
}

/* A head of `size` leaves with `root`, signed by organisation `oin` with
 * its real key (`by`), with a consistency proof from `from` if n > 0,
 * serialised as it rides in an envelope or receipt.  OUT: wire (cap >=
 * 4096).  Its length. */
static size_t
s_signed_head(chain_t *by, const char *oin, uint64_t size,
    const uint8_t root[32], uint64_t from, uint8_t (*proof)[32], size_t n,
    uint8_t *wire)
{
	Kp__TreeHead th = KP__TREE_HEAD__INIT;
	ProtobufCBinaryData steps[64];
	audit_head_t h;
	size_t i;

	cr_assert(n <= 64);
	memset(&h, 0, sizeof(h));
	h.size = size;
	h.time_ms = kp_now_ms();
	memcpy(h.root, root, 32);
	cr_assert(audit_head_sign(&h, oin, identity_sign_sk(by->self)) == 0);
	th.oin = (char *)oin;
	th.has_size = th.has_time_ms = th.has_root = th.has_signature = 1;
	th.size = h.size;
	th.time_ms = h.time_ms;
	th.root = (ProtobufCBinaryData){ 32, h.root };
	th.signature = (ProtobufCBinaryData){ 64, h.signature };
	for (i = 0; i < n; i++)
		steps[i] = (ProtobufCBinaryData){ 32, proof[i] };
	if (n > 0) {
		th.has_proof_from_size = 1;
		th.proof_from_size = from;
		th.n_consistency = n;
		th.consistency = steps;
	}
	cr_assert(kp__tree_head__get_packed_size(&th) <= 4096);
	return kp__tree_head__pack(&th, wire);
}

Test(auditd, a_forked_head_from_a_partner_is_an_alarm)
{
	td_chain_t c;
	td_org_t *halt;
	chain_t *lp = NULL;
	uint8_t *env, id[16], wire[4096], root[32];
	size_t len, wlen;
	void *ctx, *s;
	int zero = 0, tmo = 3000, round;
	kp_err_t e;
	char buf[2048];

	td_chain_make(&c, NULL);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	cr_assert(chain_open_oin(c.dir, OIN_LEERPLICHT, NULL, NULL, &lp, &e) == 0);
	ctx = zmq_ctx_new();
	s = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, partner_transport_pk(peer_partner(
	    directory_find(lp->dir, OIN_HALT))), 32);
	zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY,
	    partner_transport_pk(identity_public(lp->self)), 32);
	zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, identity_transport_sk(lp->self), 32);
	cr_assert_eq(zmq_connect(s, halt->listen), 0);
	/* two heads of size 7, both really signed by Leerplicht, other roots */
	for (round = 0; round < 2; round++) {
		memset(root, 0x40 + round, 32);
		wlen = s_signed_head(lp, OIN_LEERPLICHT, 7, root, 0, NULL, 0,
		    wire);
		td_seal(lp, &c, OIN_HALT, "referral", td_example("referral"),
		    kp_now_ms(), &env, &len, id);
		cr_assert(envelope_attach_head(&env, &len, false, wire, wlen) == 0);
		buf[0] = 0x01;
		memcpy(buf + 1, env, len);
		cr_assert(zmq_send(s, buf, len + 1, 0) >= 0);
		cr_assert(zmq_recv(s, buf, sizeof(buf), 0) > 0, "no receipt");
		free(env);
	}
	cr_assert(td_log_has(halt, "ALARM", 2000), "no alarm for a fork");
	cr_assert(td_log_has(halt, OIN_LEERPLICHT, 0));
	zmq_close(s);
	zmq_ctx_term(ctx);
	chain_close(&lp);
	td_chain_stop_all(&c);
}

/* A rogue Leerplicht that sends referrals to Halt with chosen heads. */
struct rogue {
	td_chain_t *c;
	chain_t *lp;
	void *ctx, *s;
};

static void
s_rogue_open(struct rogue *r, td_chain_t *c, td_org_t *halt)
{
	int zero = 0, tmo = 3000;
	kp_err_t e;

	r->c = c;
	cr_assert(chain_open_oin(c->dir, OIN_LEERPLICHT, NULL, NULL, &r->lp,
	    &e) == 0);
	r->ctx = zmq_ctx_new();
	r->s = zmq_socket(r->ctx, ZMQ_DEALER);
	zmq_setsockopt(r->s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(r->s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(r->s, ZMQ_CURVE_SERVERKEY, partner_transport_pk(
	    peer_partner(directory_find(r->lp->dir, OIN_HALT))), 32);
	zmq_setsockopt(r->s, ZMQ_CURVE_PUBLICKEY,
	    partner_transport_pk(identity_public(r->lp->self)), 32);
	zmq_setsockopt(r->s, ZMQ_CURVE_SECRETKEY,
	    identity_transport_sk(r->lp->self), 32);
	cr_assert_eq(zmq_connect(r->s, halt->listen), 0);
}

/* Send one referral carrying head (size, root) and an optional proof. */
static void
s_rogue_send(struct rogue *r, uint64_t size, const uint8_t root[32],
    uint64_t from, uint8_t (*proof)[32], size_t n)
{
	uint8_t *env, id[16], wire[4096], buf[8192];
	size_t len, wlen;

	wlen = s_signed_head(r->lp, OIN_LEERPLICHT, size, root, from, proof, n,
	    wire);
	td_seal(r->lp, r->c, OIN_HALT, "referral", td_example("referral"),
	    kp_now_ms(), &env, &len, id);
	cr_assert(envelope_attach_head(&env, &len, false, wire, wlen) == 0);
	buf[0] = 0x01;
	memcpy(buf + 1, env, len);
	cr_assert(zmq_send(r->s, buf, len + 1, 0) >= 0);
	cr_assert(zmq_recv(r->s, buf, sizeof(buf), 0) > 0, "no receipt");
	free(env);
}

static void
s_rogue_close(struct rogue *r)
{
	zmq_close(r->s);
	zmq_ctx_term(r->ctx);
	chain_close(&r->lp);
}

Test(auditd, grown_heads_are_checked_with_their_consistency_proof)
{
	td_chain_t c;
	td_org_t *halt;
	struct rogue r;
	merkle_t *t = merkle_new();
	uint8_t leaf[32], r4[32], r8[32], (*proof)[32] = NULL, bad[32];
	size_t n = 0;
	int i;

	for (i = 0; i < 8; i++) {
		randombytes_buf(leaf, sizeof(leaf));
		cr_assert(merkle_append(t, leaf) == 0);
	}
	cr_assert(merkle_root(t, 4, r4) == 0 && merkle_root(t, 8, r8) == 0);
	cr_assert(merkle_consistency_proof(t, 4, 8, &proof, &n) == 0 && n > 0);
	td_chain_make(&c, NULL);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	s_rogue_open(&r, &c, halt);
	/* an honest log growing from 4 to 8 entries: no alarm */
	s_rogue_send(&r, 4, r4, 0, NULL, 0);
	s_rogue_send(&r, 8, r8, 4, proof, n);
	usleep(300000);
	cr_assert(!td_log_has(halt, "ALARM", 0), "an honest log raised an alarm");
	/* a head of 12 whose proof from 8 does not hold: a rewritten log */
	memset(bad, 0x5a, sizeof(bad));
	s_rogue_send(&r, 12, bad, 8, proof, n);
	cr_assert(td_log_has(halt, "ALARM", 2000), "no alarm for a bad proof");
	cr_assert(td_log_has(halt, "not consistent with its head of size 8", 0));
	free(proof);
	merkle_destroy(&t);
	s_rogue_close(&r);
	td_chain_stop_all(&c);
}

/* ---- a forked head on a receipt, in an unflushed settlement ---- */

/* A rogue Halt's answer to the next envelope on router: a receipt signed
 * with Halt's real key, carrying a head of `size` leaves whose root is
 * all `root_byte` (signed by Halt too). */
static void
s_answer_with_head(void *router, chain_t *halt, uint64_t size,
    uint8_t root_byte)
{
	envelope_meta_t m;
	receipt_t r;
	uint8_t rid[256], buf[16384], digest[32], wire[4096], root[32];
	uint8_t *rc = NULL;
	uint8_t *payload = NULL, frame[4096];
	size_t plen = 0, rlen = 0, wlen;
	bool has_digest = false;
	int idlen, n;
	kp_err_t e;

	idlen = zmq_recv(router, rid, sizeof(rid), 0);
	cr_assert_gt(idlen, 0, "no envelope from Leerplicht");
	n = zmq_recv(router, buf, sizeof(buf), 0);
	cr_assert(n > 1 && buf[0] == 0x01, "not an envelope frame");
	cr_assert_eq(envelope_open(halt->dir, buf + 1, (size_t)n - 1, &m,
	    &payload, &plen, digest, &has_digest, &e), 0, "%s", e.msg);
	free(payload);
	memset(&r, 0, sizeof(r));
	r.has_event_id = true;
	memcpy(r.event_id, m.event_id, 16);
	snprintf(r.subject_oin, sizeof(r.subject_oin), "%s", m.sender_oin);
	memcpy(r.envelope_digest, digest, 32);
	r.status = KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED;
	r.reason = KP__REASON__REASON_NONE;
	r.received_at_ms = kp_now_ms();
	cr_assert_eq(receipt_sign(halt->dir, &r, &rc, &rlen, &e), 0, "%s",
	    e.msg);
	memset(root, root_byte, 32);
	wlen = s_signed_head(halt, OIN_HALT, size, root, 0, NULL, 0, wire);
	cr_assert(envelope_attach_head(&rc, &rlen, true, wire, wlen) == 0);
	cr_assert(rlen + 1 <= sizeof(frame));
	frame[0] = 0x02;
	memcpy(frame + 1, rc, rlen);
	cr_assert(zmq_send(router, rid, (size_t)idlen, ZMQ_SNDMORE) >= 0);
	cr_assert(zmq_send(router, frame, rlen + 1, 0) >= 0);
	free(rc);
}

/* The first column of sql on the state of oin (read-only, beside the
 * running daemon). */
static long long
s_state_int(const td_chain_t *c, const char *oin, const char *sql)
{
	char path[4400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	snprintf(path, sizeof(path), "%s/orgs/%s/state/ketenpost.db", c->dir,
	    oin);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK,
	    "%s", sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/*
 * A sender settles receipts without flushing the disk (AUDIT.md §5); an
 * alarm about a partner's fork, seen on a receipt's head, must not wait
 * for the next flushed commit (the head that showed the fork does not
 * come again): a head is signed at once.  head_interval is an hour, so
 * only that can sign a head covering the alarm.
 */
Test(auditd, a_forked_head_on_a_receipt_is_an_alarm_signed_into_a_head_at_once)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	chain_t *hc = NULL;
	void *ctx, *router;
	uint8_t id[16];
	long long entries = 0, signed_size = 0;
	int one = 1, zero = 0, tmo = 10000, i;
	kp_err_t e;

	td_chain_make(&c, "\n[delivery]\nhead_interval = 1h\n");
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	cr_assert(chain_open_oin(c.dir, OIN_HALT, NULL, NULL, &hc, &e) == 0,
	    "%s", e.msg);
	ctx = zmq_ctx_new();
	router = zmq_socket(ctx, ZMQ_ROUTER);
	zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(router, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof(one));
	zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY,
	    identity_transport_sk(hc->self), 32);
	cr_assert_eq(zmq_bind(router, halt->listen), 0, "%s",
	    zmq_strerror(zmq_errno()));
	td_start(lp);
	/* two heads of size 7 with other roots, both signed by Halt */
	td_send(lp, OIN_HALT, "referral", "ZAAK-FORK-1", td_example("referral"),
	    NULL, id);
	s_answer_with_head(router, hc, 7, 0x40);
	td_send(lp, OIN_HALT, "referral", "ZAAK-FORK-2", td_example("referral"),
	    NULL, id);
	s_answer_with_head(router, hc, 7, 0x41);
	cr_assert(td_log_has(lp, "ALARM", 5000), "no alarm for a fork");
	for (i = 0; i < 50; i++) {
		entries = s_state_int(&c, OIN_LEERPLICHT,
		    "SELECT count(*) FROM audit");
		signed_size = s_state_int(&c, OIN_LEERPLICHT,
		    "SELECT max(size) FROM tree_heads");
		if (entries > 0 && signed_size == entries)
			break;
		usleep(100000);
	}
	cr_assert_eq(signed_size, entries, "the alarm (entry %lld) must be "
	    "in a signed head at once, not at the next head_interval (the "
	    "last head covers %lld)", entries, signed_size);
	zmq_close(router);
	zmq_ctx_term(ctx);
	chain_close(&hc);
	td_chain_stop_all(&c);
}
