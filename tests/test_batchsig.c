/*
 * test_batchsig.c: batch signatures (PROTOCOL.md §5.6) between real
 * daemons.
 *
 * - A burst of sends through the local API is signed in batches per
 *   recipient, survives a restart of the sender while queued, and every
 *   event the receiver stored verifies alone with the sender's key.
 * - A batch split across a restart of the receiver (its cache gone): the
 *   rest of the batch is accepted after it, and a tampered proof is
 *   refused with its own reason in a signed receipt.
 * - `ketenpost open` opens each envelope of a batch on its own.
 * - A receiver older than 1.2 (played here: it refuses field 6 as
 *   malformed, as such a ketenpostd does) gets single signatures.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <zmq.h>

#include "chain.h"
#include "common.h"
#include "daemons.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "pbjson.h"
#include "policy.h"

TestSuite(batchsig, .init = test_init, .timeout = 180);

#define BURST 40

/* One send request of the example referral to Halt, packed. */
static uint8_t *
s_send_request(size_t i, size_t *len)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest s = KP__SEND_REQUEST__INIT;
	uint8_t payload[4096], *buf;
	char ref[32];

	snprintf(ref, sizeof(ref), "LP-B-%zu", i);
	s.has_event_type = 1;
	s.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	s.has_payload = 1;
	s.payload = (ProtobufCBinaryData){ td_example_packed("referral", payload), payload };
	s.to_oin = (char *)OIN_HALT;
	s.case_ref = ref;
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &s;
	*len = kp__request__get_packed_size(&req);
	buf = malloc(*len);
	kp__request__pack(&req, buf);
	return buf;
}

/*
 * n sends through o's API at once: the daemon is stopped (SIGSTOP) while
 * they queue on its socket, so it finds them together and handles them
 * in one batch (one transaction), as a busy daemon would.
 */
static void
s_burst(td_org_t *o, size_t n)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0, tmo = 20000;
	size_t i, len, ok = 0;
	zmq_msg_t m;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	cr_assert_eq(zmq_connect(s, o->api), 0);
	td_pause(o);
	for (i = 0; i < n; i++) {
		uint8_t *req = s_send_request(i, &len);

		cr_assert(zmq_send(s, "", 0, ZMQ_SNDMORE) == 0);
		cr_assert(zmq_send(s, req, len, 0) >= 0);
		free(req);
	}
	usleep(200000);
	kill(o->pid, SIGCONT);
	for (i = 0; i < 2 * n; i++) {
		zmq_msg_init(&m);
		cr_assert(zmq_msg_recv(&m, s, 0) >= 0, "API answer %zu of %zu "
		    "missing", i / 2, n);
		if (zmq_msg_size(&m) > 0) {
			Kp__Response *r = kp__response__unpack(NULL,
			    zmq_msg_size(&m), zmq_msg_data(&m));

			cr_assert(r != NULL && r->ok, "send refused: %s",
			    r ? r->error : "unparsable answer");
			ok++;
			kp__response__free_unpacked(r, NULL);
		}
		zmq_msg_close(&m);
	}
	cr_assert_eq(ok, n);
	zmq_close(s);
	zmq_ctx_term(ctx);
}

/* A stored receipt verifies at the sender and names the envelope. */
static void
s_receipt_ok(chain_t *sender, const uint8_t *buf, size_t len,
    const uint8_t digest[32], uint32_t *largest_rc)
{
	Kp__Receipt *p = kp__receipt__unpack(NULL, len, buf);
	receipt_t r;
	kp_err_t e;

	cr_assert_not_null(p);
	if (p->batch != NULL && p->batch->size > *largest_rc)
		*largest_rc = p->batch->size;
	kp__receipt__free_unpacked(p, NULL);
	cr_assert(receipt_verify(sender->dir, buf, len, &r, &e) == 0,
	    "stored receipt: %s", e.msg);
	cr_assert_arr_eq(r.envelope_digest, digest, 32);
	cr_assert_eq(r.status, KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED);
}

/*
 * Every envelope the receiver stored (inbox.envelope: the evidence, no
 * ciphertext, no tree head) verifies alone with the sender's certificate key, and every
 * receipt it gave (inbox.receipt) verifies alone at the sender.
 * OUT: *largest batch of envelopes and *largest_rc of receipts seen.
 * Returns the number verified.
 */
static size_t
s_verify_stored(td_chain_t *c, const char *oin, chain_t *sender,
    uint32_t *largest, uint32_t *largest_rc)
{
	const uint8_t *sign_pk = partner_sign_pk(identity_public(sender->self));
	char dir[4096], path[4200];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint8_t digest[32];
	size_t n = 0;
	kp_err_t e;

	*largest = *largest_rc = 1;
	td_state_dir(c, oin, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/ketenpost.db", dir);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT envelope, envelope_digest, "
	    "receipt FROM inbox", -1, &st, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		const uint8_t *ev = sqlite3_column_blob(st, 0);
		size_t evlen = (size_t)sqlite3_column_bytes(st, 0);
		Kp__Envelope *p = kp__envelope__unpack(NULL, evlen, ev);

		cr_assert_not_null(p);
		/* the sender's head rode along; the witness table keeps it
		 * (checked after the loop) */
		cr_assert_null(p->tree_head, "stored envelope %zu keeps a tree "
		    "head", n);
		if (p->batch != NULL && p->batch->size > *largest)
			*largest = p->batch->size;
		kp__envelope__free_unpacked(p, NULL);
		cr_assert(envelope_verify_evidence(sign_pk, ev, evlen, digest,
		    &e) == 0, "stored envelope %zu: %s", n, e.msg);
		cr_assert_eq(sqlite3_column_bytes(st, 1), 32);
		cr_assert_arr_eq(digest, sqlite3_column_blob(st, 1), 32);
		s_receipt_ok(sender, sqlite3_column_blob(st, 2), (size_t)
		    sqlite3_column_bytes(st, 2), digest, largest_rc);
		n++;
	}
	sqlite3_finalize(st);
	/* the heads that rode along were witnessed, apart from the rows */
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM witness "
	    "WHERE partner_oin = ?1", -1, &st, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, partner_oin(identity_public(sender->self)),
	    -1, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_gt(sqlite3_column_int(st, 0), 0, "no head of the sender "
	    "witnessed");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

Test(batchsig, a_burst_is_signed_in_batches_and_survives_a_sender_restart)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	chain_t *lpc;
	Kp__StatusResponse st;
	uint32_t largest, largest_rc;
	char lp_dir[4096], h_dir[4096], out[8192];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	s_burst(lp, BURST);
	/* stored signed, queued: a restart of the sender keeps the proofs */
	cr_assert_eq(td_stop(lp), 0);
	td_start(lp);
	td_start(halt);
	cr_assert(td_wait_settled(lp, 30000), "not all delivered");
	td_status(lp, &st);
	cr_assert_eq(st.outbox_delivered, BURST);
	lpc = td_chain_open(&c, OIN_LEERPLICHT);
	cr_assert_eq(s_verify_stored(&c, OIN_HALT, lpc, &largest, &largest_rc),
	    BURST);
	cr_assert_geq(largest, 2, "the burst was not signed as a batch");
	cr_assert_leq(largest, BURST);
	cr_assert_geq(largest_rc, 2, "no receipts were signed as a batch");
	cr_assert_leq(largest_rc, BURST);
	chain_close(&lpc);
	/* the audit tools prove what they proved: both logs intact, and the
	 * same envelope digests on both sides */
	td_chain_stop_all(&c);
	td_state_dir(&c, OIN_LEERPLICHT, lp_dir, sizeof(lp_dir));
	td_state_dir(&c, OIN_HALT, h_dir, sizeof(h_dir));
	cr_assert_eq(test_sh_output(out, sizeof(out), "'%s/ketenpost' audit "
	    "verify '%s'", test_bin(), lp_dir), 0, "%s", out);
	cr_assert_eq(test_sh_output(out, sizeof(out), "'%s/ketenpost' audit "
	    "verify '%s'", test_bin(), h_dir), 0, "%s", out);
	cr_assert_eq(test_sh_output(out, sizeof(out), "'%s/ketenpost' audit "
	    "reconcile '%s' '%s'", test_bin(), lp_dir, h_dir), 0, "%s", out);
}

/* ---- a partner played by the test ------------------------------------- */

/* Send one envelope; the verified receipt comes back. */
static receipt_t
s_deliver(td_rogue_t *r, chain_t *as, const uint8_t *env, size_t len)
{
	uint8_t *frame = malloc(len + 1);
	receipt_t rc;
	zmq_msg_t m;
	kp_err_t e;

	frame[0] = 0x01;
	memcpy(frame + 1, env, len);
	cr_assert(zmq_send(r->sock, frame, len + 1, 0) >= 0);
	free(frame);
	zmq_msg_init(&m);
	cr_assert(zmq_msg_recv(&m, r->sock, 0) > 1, "no receipt came back");
	cr_assert(receipt_verify(as->dir, (uint8_t *)zmq_msg_data(&m) + 1,
	    zmq_msg_size(&m) - 1, &rc, &e) == 0, "%s", e.msg);
	zmq_msg_close(&m);
	return rc;
}

/* n referrals from `from` to Halt under the chain's policy, signed as one
 * batch.  OUT: env[i], len[i], dg[i] (envelope digests). */
static void
s_batch(td_chain_t *c, chain_t *from, size_t n, uint8_t **env, size_t *len,
    uint8_t (*dg)[32])
{
	td_seal_referrals(c, from, n, NULL, NULL, kp_now_ms(),
	    TD_SEAL_FRESH_IDS | TD_SEAL_RANDOM_CASE, env, len, dg);
}

static void
s_flip_path(uint8_t **env, size_t *len)
{
	Kp__Envelope *p = kp__envelope__unpack(NULL, *len, *env);

	cr_assert(p != NULL && p->batch != NULL && p->batch->n_path > 0);
	p->batch->path[0].data[0] ^= 0x40;
	free(*env);
	*env = malloc(kp__envelope__get_packed_size(p));
	*len = kp__envelope__pack(p, *env);
	kp__envelope__free_unpacked(p, NULL);
}

Test(batchsig, a_batch_split_across_a_receiver_restart)
{
	enum { N = 6 };
	td_chain_t c;
	td_org_t *halt;
	chain_t *lp;
	td_rogue_t r;
	uint8_t *env[N], dg[N][32];
	size_t len[N], i;
	receipt_t rc;
	Kp__Response *in;

	td_chain_make(&c, NULL);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	lp = td_chain_open(&c, OIN_LEERPLICHT);
	s_batch(&c, lp, N, env, len, dg);
	s_flip_path(&env[N - 1], &len[N - 1]);
	td_rogue_connect_as(&r, lp, halt, 5000);
	for (i = 0; i < 3; i++) {
		rc = s_deliver(&r, lp, env[i], len[i]);
		cr_assert_eq(rc.status, KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED,
		    "envelope %zu: reason %d", i, rc.reason);
		cr_assert_arr_eq(rc.envelope_digest, dg[i], 32);
	}
	td_rogue_close(&r);
	cr_assert_eq(td_stop(halt), 0);
	td_start(halt);
	td_rogue_connect_as(&r, lp, halt, 5000);
	for (i = 3; i < N - 1; i++) {
		rc = s_deliver(&r, lp, env[i], len[i]);
		cr_assert_eq(rc.status, KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED,
		    "envelope %zu after the restart: reason %d", i, rc.reason);
		cr_assert_arr_eq(rc.envelope_digest, dg[i], 32);
	}
	/* a path altered: refused with its own reason, the event named */
	rc = s_deliver(&r, lp, env[N - 1], len[N - 1]);
	cr_assert_eq(rc.status, KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED);
	cr_assert_eq(rc.reason, KP__REASON__REASON_BATCH_PROOF);
	cr_assert(rc.has_event_id);
	cr_assert(td_log_has(halt, "REASON_BATCH_PROOF", 5000));
	/* a resend of an accepted one after the restart: the first receipt */
	rc = s_deliver(&r, lp, env[0], len[0]);
	cr_assert_eq(rc.status, KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED);
	td_rogue_close(&r);
	in = td_inbox(halt, true);
	cr_assert_eq(in->inbox->n_items, N - 1);
	kp__response__free_unpacked(in, NULL);
	for (i = 0; i < N; i++)
		free(env[i]);
	chain_close(&lp);
	td_chain_stop_all(&c);
}

/* `ketenpost open` opens every envelope of a batch on its own. */
Test(batchsig, ketenpost_open_opens_each_envelope_of_a_batch)
{
	enum { N = 3 };
	td_chain_t c;
	chain_t *lp;
	uint8_t *env[N], dg[N][32];
	size_t len[N], i;
	char file[4200], out[8192], hex[65];
	FILE *f;

	td_chain_make(&c, NULL);
	lp = td_chain_open(&c, OIN_LEERPLICHT);
	s_batch(&c, lp, N, env, len, dg);
	for (i = 0; i < N; i++) {
		snprintf(file, sizeof(file), "%s/batch-%zu.env", c.dir, i);
		f = fopen(file, "wb");
		cr_assert_not_null(f);
		cr_assert_eq(fwrite(env[i], 1, len[i], f), len[i]);
		fclose(f);
		cr_assert_eq(test_sh_output(out, sizeof(out), "'%s/ketenpost' "
		    "open --chain '%s' --as %s '%s'", test_bin(), c.dir,
		    OIN_HALT, file), 0, "ketenpost open refused %zu: %s", i,
		    out);
		kp_hex(dg[i], 32, hex);
		cr_assert(strstr(out, hex) != NULL, "digest of %zu not in %s",
		    i, out);
		free(env[i]);
	}
	chain_close(&lp);
}

/* ---- a receiver older than protocol 1.2 --------------------------------- */

/*
 * Play Halt as a 1.1 ketenpostd would answer: an envelope with field 6 and
 * no field 4 is refused at §7 step 2 (malformed, no event id, the digest
 * of the raw bytes); a plain one is opened with Halt's real keys and
 * accepted.  Returns once `n` distinct plain envelopes were accepted or
 * the time is up; OUT: *refused, the batch envelopes refused.
 */
static size_t
s_old_receiver(void *router, chain_t *halt, size_t n, size_t *refused)
{
	uint8_t ids[BURST][16];
	size_t got = 0, k;
	uint64_t until = kp_now_ms() + 60000;
	int tmo = 500;

	*refused = 0;
	zmq_setsockopt(router, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	while (got < n && kp_now_ms() < until) {
		zmq_msg_t rid, body;
		receipt_t r;
		envelope_meta_t m;
		uint8_t *payload = NULL, *out = NULL, *frame;
		size_t plen = 0, olen = 0;
		bool hd = false, seen = false;
		Kp__Envelope *p;
		kp_err_t e;

		zmq_msg_init(&rid);
		zmq_msg_init(&body);
		if (zmq_msg_recv(&rid, router, 0) < 0) {
			zmq_msg_close(&rid);
			zmq_msg_close(&body);
			continue;
		}
		cr_assert(zmq_msg_recv(&body, router, 0) > 1);
		p = kp__envelope__unpack(NULL, zmq_msg_size(&body) - 1,
		    (uint8_t *)zmq_msg_data(&body) + 1);
		cr_assert_not_null(p);
		memset(&r, 0, sizeof(r));
		snprintf(r.subject_oin, sizeof(r.subject_oin), "%s",
		    OIN_LEERPLICHT);
		r.received_at_ms = kp_now_ms();
		if (p->batch != NULL || !p->has_signature) {
			r.status = KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED;
			r.reason = KP__REASON__REASON_MALFORMED;
			crypto_generichash(r.envelope_digest, 32,
			    (uint8_t *)zmq_msg_data(&body) + 1,
			    zmq_msg_size(&body) - 1, NULL, 0);
			(*refused)++;
		} else {
			cr_assert(envelope_open(halt->dir, (uint8_t *)
			    zmq_msg_data(&body) + 1, zmq_msg_size(&body) - 1,
			    &m, &payload, &plen, r.envelope_digest, &hd,
			    &e) == 0, "plain envelope: %s", e.msg);
			free(payload);
			r.status = KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED;
			r.has_event_id = true;
			memcpy(r.event_id, m.event_id, 16);
			for (k = 0; k < got; k++)
				seen |= memcmp(ids[k], m.event_id, 16) == 0;
			if (!seen && got < BURST)
				memcpy(ids[got++], m.event_id, 16);
		}
		kp__envelope__free_unpacked(p, NULL);
		cr_assert(receipt_sign(halt->dir, &r, &out, &olen, &e) == 0);
		frame = malloc(olen + 1);
		frame[0] = 0x02;
		memcpy(frame + 1, out, olen);
		cr_assert(zmq_send(router, zmq_msg_data(&rid),
		    zmq_msg_size(&rid), ZMQ_SNDMORE) >= 0);
		cr_assert(zmq_send(router, frame, olen + 1, 0) >= 0);
		free(frame);
		free(out);
		zmq_msg_close(&rid);
		zmq_msg_close(&body);
	}
	return got;
}

Test(batchsig, a_receiver_older_than_1_2_gets_single_signatures)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	chain_t *hc;
	void *ctx, *router;
	int one = 1, zero = 0;
	size_t refused;
	Kp__StatusResponse st;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	hc = td_chain_open(&c, OIN_HALT);
	ctx = zmq_ctx_new();
	router = zmq_socket(ctx, ZMQ_ROUTER);
	zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
	cr_assert_eq(zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one,
	    sizeof(one)), 0);
	cr_assert_eq(zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY,
	    identity_transport_sk(hc->self), 32), 0);
	cr_assert_eq(zmq_bind(router, halt->listen), 0, "bind %s: %s",
	    halt->listen, zmq_strerror(zmq_errno()));
	td_start(lp);
	s_burst(lp, BURST);
	cr_assert_eq(s_old_receiver(router, hc, BURST, &refused), BURST,
	    "not every event arrived in the plain form");
	cr_assert_geq(refused, 1, "no batch signature was tried");
	cr_assert(td_log_has(lp, "does not read batch signatures", 5000));
	/* settled by the plain receipts: same envelope digests */
	cr_assert(td_wait_settled(lp, 20000));
	td_status(lp, &st);
	cr_assert_eq(st.outbox_delivered, BURST);
	zmq_close(router);
	zmq_ctx_term(ctx);
	chain_close(&hc);
	td_chain_stop_all(&c);
}

/* Send n envelopes back to back, then collect n receipt frames (raw). */
static void
s_pipelined(td_rogue_t *r, uint8_t **env, size_t *len, size_t n,
    uint8_t **rc, size_t *rlen)
{
	size_t i;
	zmq_msg_t m;

	for (i = 0; i < n; i++) {
		uint8_t *frame = malloc(len[i] + 1);

		frame[0] = 0x01;
		memcpy(frame + 1, env[i], len[i]);
		cr_assert(zmq_send(r->sock, frame, len[i] + 1, 0) >= 0);
		free(frame);
	}
	for (i = 0; i < n; i++) {
		zmq_msg_init(&m);
		cr_assert(zmq_msg_recv(&m, r->sock, 0) > 1, "receipt %zu of %zu "
		    "missing", i, n);
		rlen[i] = zmq_msg_size(&m) - 1;
		rc[i] = malloc(rlen[i]);
		memcpy(rc[i], (uint8_t *)zmq_msg_data(&m) + 1, rlen[i]);
		zmq_msg_close(&m);
	}
}

/* Envelopes signed alone (what a 1.1 sender sends) get plain receipts of
 * at most 1 024 bytes, however many arrive together; batch-signed ones
 * get receipts that each verify alone. */
Test(batchsig, plain_envelopes_get_plain_receipts)
{
	enum { N = 8 };
	td_chain_t c;
	td_org_t *halt;
	chain_t *lp;
	td_rogue_t r;
	uint8_t *env[N], *rc[N], id[16], dg[N][32];
	size_t len[N], rlen[N], i;
	receipt_t got;
	Kp__Receipt *p;
	kp_err_t e;

	td_chain_make(&c, NULL);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	lp = td_chain_open(&c, OIN_LEERPLICHT);
	for (i = 0; i < N; i++)
		td_seal(lp, &c, OIN_HALT, "referral", td_example("referral"),
		    kp_now_ms(), &env[i], &len[i], id);
	td_rogue_connect_as(&r, lp, halt, 5000);
	s_pipelined(&r, env, len, N, rc, rlen);
	for (i = 0; i < N; i++) {
		p = kp__receipt__unpack(NULL, rlen[i], rc[i]);
		cr_assert(p != NULL && p->batch == NULL && p->has_signature,
		    "receipt %zu of a plain envelope is not plain", i);
		kp__receipt__free_unpacked(p, NULL);
		cr_assert_leq(rlen[i], KP_MAX_PLAIN_RECEIPT);
		cr_assert(receipt_verify(lp->dir, rc[i], rlen[i], &got,
		    &e) == 0, "%s", e.msg);
		cr_assert_eq(got.status,
		    KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED);
		free(rc[i]);
		free(env[i]);
	}
	s_batch(&c, lp, N, env, len, dg);
	s_pipelined(&r, env, len, N, rc, rlen);
	for (i = 0; i < N; i++) {
		cr_assert(receipt_verify(lp->dir, rc[i], rlen[i], &got,
		    &e) == 0, "%s", e.msg);
		cr_assert_eq(got.status,
		    KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED);
		free(rc[i]);
		free(env[i]);
	}
	td_rogue_close(&r);
	chain_close(&lp);
	td_chain_stop_all(&c);
}

/* The same batch-signed envelope twice back to back: if both arrive in
 * one pass, the second finds the first's receipt still a draft and gets
 * none; whatever comes back is signed, and a later resend gets the stored
 * receipt byte for byte. */
Test(batchsig, a_resend_in_the_same_pass_never_gets_a_draft)
{
	td_chain_t c;
	td_org_t *halt;
	chain_t *lp;
	td_rogue_t r;
	uint8_t *env[2], *frame, dg[2][32], *first = NULL;
	size_t len[2], flen = 0, got = 0;
	receipt_t rc;
	zmq_msg_t m;
	kp_err_t e;
	int tmo = 1500;

	td_chain_make(&c, NULL);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	lp = td_chain_open(&c, OIN_LEERPLICHT);
	s_batch(&c, lp, 2, env, len, dg);
	td_rogue_connect_as(&r, lp, halt, 5000);
	zmq_setsockopt(r.sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	frame = malloc(len[0] + 1);
	frame[0] = 0x01;
	memcpy(frame + 1, env[0], len[0]);
	cr_assert(zmq_send(r.sock, frame, len[0] + 1, 0) >= 0);
	cr_assert(zmq_send(r.sock, frame, len[0] + 1, 0) >= 0);
	for (;;) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, r.sock, 0) < 0) {
			zmq_msg_close(&m);
			break;
		}
		cr_assert(receipt_verify(lp->dir, (uint8_t *)zmq_msg_data(&m) +
		    1, zmq_msg_size(&m) - 1, &rc, &e) == 0, "receipt %zu: %s",
		    got, e.msg);
		cr_assert_arr_eq(rc.envelope_digest, dg[0], 32);
		if (first == NULL) {
			flen = zmq_msg_size(&m) - 1;
			first = malloc(flen);
			memcpy(first, (uint8_t *)zmq_msg_data(&m) + 1, flen);
		}
		got++;
		zmq_msg_close(&m);
	}
	cr_assert(got == 1 || got == 2, "%zu receipts", got);
	cr_assert(zmq_send(r.sock, frame, len[0] + 1, 0) >= 0);
	zmq_msg_init(&m);
	cr_assert(zmq_msg_recv(&m, r.sock, 0) > 1, "no receipt for the resend");
	cr_assert_eq(zmq_msg_size(&m) - 1, flen);
	cr_assert_arr_eq((uint8_t *)zmq_msg_data(&m) + 1, first, flen,
	    "the resend's receipt is not the stored one");
	zmq_msg_close(&m);
	free(first);
	free(frame);
	free(env[0]);
	free(env[1]);
	td_rogue_close(&r);
	chain_close(&lp);
	td_chain_stop_all(&c);
}
