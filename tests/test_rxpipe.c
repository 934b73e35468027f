/*
 * test_rxpipe.c: the receiver's pipeline (daemon/inbound.c): while the
 * loop stores and commits one pass, the worker prepares the next.  What
 * must hold is what held with one pass after the other:
 *
 * - a burst spread over several passes (batch_max = 4) with copies of
 *   events in later passes, a refused frame and a reply to an event of an
 *   earlier pass: each event stored once, the copies answered with the
 *   stored receipt, the refused one refused with its reason, the reply
 *   accepted (its original was committed before the reply's pass was
 *   decided), a receipt for every frame; with the worker thread and with
 *   worker_threads = 0 (the same code inline);
 * - a receiver stopped (SIGTERM) during a drain, most likely with a pass
 *   in hand: after the restart the sender's resends are stored exactly
 *   once and every event is receipted; both modes again.
 *
 * The test process plays the sender on a real CURVE connection with
 * Leerplicht's keys, as test_refusals.c does, or runs a real Leerplicht.
 * No timing is asserted: where the passes begin depends on the machine,
 * and every assertion holds wherever they begin.
 */
#include <signal.h>
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
#include "events.h"
#include "pack.h"
#include "pbjson.h"
#include "policy.h"

TestSuite(rxpipe, .init = test_init, .timeout = 300);

#define PASS_MAX "batch_max = 4\n"
#define INLINE "\n[ketenpostd]\nworker_threads = 0\n"

static void
s_send_frame(td_rogue_t *r, const uint8_t *env, size_t len)
{
	uint8_t *frame = malloc(len + 1);

	cr_assert_not_null(frame);
	frame[0] = 0x01;
	memcpy(frame + 1, env, len);
	cr_assert(zmq_send(r->sock, frame, len + 1, 0) >= 0);
	free(frame);
}

/* The next receipt, verified as `as`; false if none came in time. */
static bool
s_next_receipt(td_rogue_t *rg, chain_t *as, receipt_t *r)
{
	zmq_msg_t m;
	kp_err_t e;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, rg->sock, 0) < 0) {
		zmq_msg_close(&m);
		return false;
	}
	cr_assert(zmq_msg_size(&m) > 1);
	cr_assert_eq(((uint8_t *)zmq_msg_data(&m))[0], 0x02, "not a receipt");
	cr_assert(receipt_verify(as->dir, (uint8_t *)zmq_msg_data(&m) + 1,
	    zmq_msg_size(&m) - 1, r, &e) == 0, "receipt: %s", e.msg);
	zmq_msg_close(&m);
	return true;
}

/*
 * n (1..4) referrals to Halt sealed by `from` under fresh ids (OUT: ids),
 * in reply to reply_to if not NULL, signed together: one batch signature
 * for n > 1 (PROTOCOL.md §5.6).  OUT: env[i], len[i].
 */
static void
s_seal_batch(td_chain_t *c, chain_t *from, size_t n, const uint8_t *reply_to,
    uint8_t ids[][16], uint8_t **env, size_t *len)
{
	cr_assert(n >= 1 && n <= 4);
	td_seal_referrals(c, from, n, ids, reply_to, kp_now_ms(),
	    TD_SEAL_FRESH_IDS | TD_SEAL_RANDOM_CASE, env, len, NULL);
}

/* One frame of the burst: what is sent and what must come back. */
struct frame {
	uint8_t *env;
	size_t len;
	uint8_t id[16];
	bool owned;                  /* env is this frame's to free; false:
	                              * a copy of an earlier frame */
	int want_reason;             /* 0: accepted */
	int got;                     /* receipts that named it */
	uint8_t first[32];           /* the first one's digest */
};

#define BURST 18

/* Append a frame (owned: env is freed with the burst). */
static void
s_put(struct frame *f, int *k, uint8_t *env, size_t len, const uint8_t id[16],
    bool owned)
{
	cr_assert(*k < BURST);
	memset(&f[*k], 0, sizeof(f[*k]));
	f[*k].env = env;
	f[*k].len = len;
	memcpy(f[*k].id, id, 16);
	f[*k].owned = owned;
	(*k)++;
}

/*
 * The burst, in this order (batch_max 4: frames 4 or more apart are in
 * different passes, wherever the passes begin):
 *   0-3    a batch of four referrals e0..e3
 *   4-8    a batch of four e4..e7, with a replayed referral (created 30
 *          days ago: refused as replay) at 6, between e5 and e6
 *   9      a copy of e1 (8 frames later)
 *   10     a reply to e3 (7 frames later)
 *   11-14  a batch of four e8..e11
 *   15     a copy of e5, 16 a copy of the reply, 17 a copy of e0
 */
static void
s_make_burst(td_chain_t *c, chain_t *lp, struct frame *f)
{
	uint8_t ids[4][16], *env[4], *rp, rid[16];
	size_t len[4], rlen, i;
	int k = 0;

	s_seal_batch(c, lp, 4, NULL, ids, env, len);
	for (i = 0; i < 4; i++)
		s_put(f, &k, env[i], len[i], ids[i], true);
	s_seal_batch(c, lp, 4, NULL, ids, env, len);
	for (i = 0; i < 4; i++) {
		if (i == 2) {
			td_seal(lp, c, OIN_HALT, "referral",
			    td_example("referral"), kp_now_ms() -
			    30ULL * 86400000u, &rp, &rlen, rid);
			s_put(f, &k, rp, rlen, rid, true);
			f[k - 1].want_reason = KP__REASON__REASON_REPLAY;
		}
		s_put(f, &k, env[i], len[i], ids[i], true);
	}
	s_put(f, &k, f[1].env, f[1].len, f[1].id, false);
	s_seal_batch(c, lp, 1, f[3].id, ids, env, len);
	s_put(f, &k, env[0], len[0], ids[0], true);
	s_seal_batch(c, lp, 4, NULL, ids, env, len);
	for (i = 0; i < 4; i++)
		s_put(f, &k, env[i], len[i], ids[i], true);
	s_put(f, &k, f[5].env, f[5].len, f[5].id, false);
	s_put(f, &k, f[10].env, f[10].len, f[10].id, false);
	s_put(f, &k, f[0].env, f[0].len, f[0].id, false);
	cr_assert_eq(k, BURST);
}

static struct frame *
s_frame_of(struct frame *f, const uint8_t id[16])
{
	size_t i;

	for (i = 0; i < BURST; i++)
		if (f[i].owned && memcmp(f[i].id, id, 16) == 0)
			return &f[i];
	return NULL;
}

/* Halt's inbox: rows, and distinct event ids. */
static void
s_inbox_rows(td_chain_t *c, long *rows, long *distinct)
{
	char dir[4096];

	td_state_dir(c, OIN_HALT, dir, sizeof(dir));
	*rows = td_sql_count(dir, "inbox");
	*distinct = td_sql_count(dir, "(SELECT DISTINCT event_id FROM inbox)");
}

static void
s_burst_over_passes(const char *extra)
{
	td_chain_t c;
	td_org_t *halt;
	chain_t *lp;
	td_rogue_t r;
	struct frame f[BURST], *fr;
	receipt_t rc;
	uint8_t warm[1][16], *wenv[1];
	size_t wlen[1], i, got = 0, distinct_ids = 0;
	long rows, distinct;
	char dir[4096];

	td_chain_make(&c, extra);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	lp = td_chain_open(&c, OIN_LEERPLICHT);
	td_rogue_connect_as(&r, lp, halt, 5000);
	/* the handshake first, so that the burst waits for nothing */
	s_seal_batch(&c, lp, 1, NULL, warm, wenv, wlen);
	s_send_frame(&r, wenv[0], wlen[0]);
	cr_assert(s_next_receipt(&r, lp, &rc), "no receipt");
	cr_assert_eq(rc.status, KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED);
	free(wenv[0]);
	s_make_burst(&c, lp, f);
	/* stopped while the frames queue: the receiver then finds them
	 * together and reads them in passes of batch_max */
	td_pause(halt);
	for (i = 0; i < BURST; i++)
		s_send_frame(&r, f[i].env, f[i].len);
	usleep(300000);
	kill(halt->pid, SIGCONT);
	while (got < BURST && s_next_receipt(&r, lp, &rc)) {
		got++;
		cr_assert(rc.has_event_id, "a receipt without an event id");
		fr = s_frame_of(f, rc.event_id);
		cr_assert_not_null(fr, "a receipt for an event not sent");
		if (fr->want_reason == 0)
			cr_assert_eq(rc.status,
			    KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED,
			    "frame %td refused with reason %d", fr - f,
			    rc.reason);
		else {
			cr_assert_eq(rc.status,
			    KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED);
			cr_assert_eq(rc.reason, fr->want_reason);
		}
		/* a copy gets the receipt stored for the first one */
		if (fr->got++ == 0) {
			memcpy(fr->first, rc.digest, 32);
			continue;
		}
		cr_assert_eq(rc.status,
		    KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED);
		cr_assert_arr_eq(rc.digest, fr->first, 32, "a copy's receipt "
		    "is not the one stored for its event");
	}
	cr_assert_eq(got, BURST, "a receipt for each of the %d frames (copies "
	    "in later passes included): %zu", BURST, got);
	for (i = 0; i < BURST; i++) {
		if (!f[i].owned)
			continue;
		distinct_ids++;
		cr_assert_eq(f[i].got, f[i].want_reason == 0 &&
		    (i == 0 || i == 1 || i == 5 || i == 10) ? 2 : 1,
		    "frame %zu: %d receipts", i, f[i].got);
	}
	cr_assert_eq(distinct_ids, 14);
	s_inbox_rows(&c, &rows, &distinct);
	/* the warm-up, 12 referrals and the reply; each once */
	cr_assert_eq(rows, 14, "inbox rows: %ld", rows);
	cr_assert_eq(distinct, 14, "distinct inbox ids: %ld", distinct);
	td_state_dir(&c, OIN_HALT, dir, sizeof(dir));
	cr_assert_eq(td_sql_count(dir, "rejected"), 1);
	/* the random bytes of a pass are drawn at once, each used once:
	 * the 14 key-wrapping and 14 payload nonces are 28 different ones */
	cr_assert_eq(td_sql_count(dir, "(SELECT substr(event_key, 1, 24) FROM "
	    "inbox UNION SELECT substr(sealed_payload, 1, 24) FROM inbox)"),
	    28);
	cr_assert(td_log_has(halt, "refused (REASON_REPLAY)", 2000));
	for (i = 0; i < BURST; i++)
		if (f[i].owned)
			free(f[i].env);
	td_rogue_close(&r);
	chain_close(&lp);
	td_chain_stop_all(&c);
}

Test(rxpipe, a_burst_over_several_passes_decides_as_frame_after_frame)
{
	s_burst_over_passes(PASS_MAX);
}

Test(rxpipe, a_burst_over_several_passes_without_a_worker_thread)
{
	s_burst_over_passes(PASS_MAX INLINE);
}

/* n referrals to Halt through o's API, pipelined; all answered ok. */
static void
s_queue(td_org_t *o, size_t n)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest sr = KP__SEND_REQUEST__INIT;
	Kp__Response *resp;
	uint8_t payload[256], buf[1024];
	int zero = 0, tmo = 30000;
	size_t i, len, ok = 0;
	char ref[32];
	zmq_msg_t m;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	cr_assert_eq(zmq_connect(s, o->api), 0);
	sr.has_event_type = sr.has_payload = 1;
	sr.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	sr.payload = (ProtobufCBinaryData){ td_example_packed("referral", payload), payload };
	sr.to_oin = (char *)OIN_HALT;
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &sr;
	for (i = 0; i < n; i++) {
		snprintf(ref, sizeof(ref), "LP-RX-%zu", i);
		sr.case_ref = ref;
		len = kp__request__pack(&req, buf);
		cr_assert(zmq_send(s, "", 0, ZMQ_SNDMORE) == 0);
		cr_assert(zmq_send(s, buf, len, 0) >= 0);
	}
	while (ok < n) {
		zmq_msg_init(&m);
		cr_assert(zmq_msg_recv(&m, s, 0) >= 0, "API answer %zu of %zu "
		    "missing", ok, n);
		if (zmq_msg_size(&m) > 0) {
			resp = kp__response__unpack(NULL, zmq_msg_size(&m),
			    zmq_msg_data(&m));
			cr_assert(resp != NULL && resp->ok, "send refused: %s",
			    resp ? resp->error : "unparsable answer");
			kp__response__free_unpacked(resp, NULL);
			ok++;
		}
		zmq_msg_close(&m);
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
}

#define QUEUED 400

/*
 * Leerplicht queues QUEUED events while Halt is down; Halt starts and,
 * as soon as its first pass is committed, gets SIGTERM, most likely with
 * the next pass in hand (prepared or being prepared): that pass is
 * stored before it stops (its receipts may not leave: the socket closes
 * with the daemon).  After a restart the sender's resends are stored
 * exactly once, and every event is receipted.
 */
static void
s_stop_during_a_drain(const char *extra)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__Response *out;
	char dir[4096];
	long rows = 0, distinct;
	size_t i;
	int spins;

	td_chain_make(&c, extra);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	s_queue(lp, QUEUED);
	td_state_dir(&c, OIN_HALT, dir, sizeof(dir));
	td_start(halt);
	for (spins = 0; spins < 20000 && rows <= 0; spins++)
		rows = td_sql_count(dir, "inbox");
	cr_assert_eq(td_stop(halt), 0, "a clean stop");
	s_inbox_rows(&c, &rows, &distinct);
	cr_log_info("stopped with %ld of %d stored; a pass in hand then: %s",
	    rows, QUEUED, td_log_has(halt, "stored first", 0) ? "yes" : "no");
	cr_assert(rows > 0 && rows == distinct, "each once: %ld rows, %ld ids",
	    rows, distinct);
	td_start(halt);
	cr_assert(td_wait_settled(lp, 120000), "events still pending");
	s_inbox_rows(&c, &rows, &distinct);
	cr_assert_eq(rows, QUEUED, "inbox rows after the restart: %ld", rows);
	cr_assert_eq(distinct, QUEUED, "distinct ids: %ld", distinct);
	out = td_outbox(lp);
	cr_assert_eq(out->outbox->n_items, QUEUED);
	for (i = 0; i < out->outbox->n_items; i++)
		cr_assert_eq(out->outbox->items[i]->state,
		    KP__DELIVERY_STATE__DELIVERY_STATE_DELIVERED,
		    "every event receipted");
	kp__response__free_unpacked(out, NULL);
	td_chain_stop_all(&c);
}

Test(rxpipe, a_stop_with_a_pass_in_hand_loses_nothing_and_stores_once)
{
	s_stop_during_a_drain("batch_max = 8\n");
}

Test(rxpipe, a_stop_during_a_drain_without_a_worker_thread)
{
	s_stop_during_a_drain("batch_max = 8\n" INLINE);
}

/*
 * A pack (PROTOCOL.md §13.1) read last makes a pass longer than
 * batch_max: with batch_max = 1, one pack of 20 batch-signed envelopes and
 * a copy of the last is a pass of 21 whose receipts all wait for one
 * signature.  The table that finds those waiting rows was sized by
 * batch_max (16 slots): the loop spun in it for good, or (its probes
 * bounded) the copy found no row waiting, was stored a second time and
 * failed the pass.  Every event must get its one receipt; the copy at
 * most the same receipt again (today none: a copy in its original's pass
 * is answered when it is resent, with the stored receipt, as the burst
 * test above shows; PROTOCOL.md §7.1 would allow answering it at once).
 */
Test(rxpipe, a_pack_longer_than_batch_max_is_one_pass)
{
	enum { N = 20 };
	td_chain_t c;
	td_org_t *halt;
	chain_t *lp;
	td_rogue_t r;
	uint8_t ids[N][16], *env[4];
	size_t len[4], i, k, flen = 0;
	pack_t *p = pack_new(0x01, 0x03);
	const uint8_t *frame;
	receipt_t rc;
	int seen[N] = { 0 }, quiet = 1000;
	uint8_t last_receipt[32];
	uint8_t *last = NULL;
	size_t last_len = 0;

	cr_assert_not_null(p);
	td_chain_make(&c, "batch_max = 1\n");
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	lp = td_chain_open(&c, OIN_LEERPLICHT);
	td_rogue_connect_as(&r, lp, halt, 30000);
	for (k = 0; k < N; k += 4) {
		s_seal_batch(&c, lp, 4, NULL, &ids[k], env, len);
		for (i = 0; i < 4; i++) {
			cr_assert(pack_add(p, env[i], len[i]) == 0);
			free(last);
			last = env[i];
			last_len = len[i];
		}
	}
	cr_assert(pack_add(p, last, last_len) == 0);  /* the copy */
	free(last);
	frame = pack_frame(p, &flen);
	cr_assert_eq(frame[0], 0x03);
	cr_assert(zmq_send(r.sock, frame, flen, 0) >= 0);
	for (k = 0; k < N; k++) {
		cr_assert(s_next_receipt(&r, lp, &rc), "receipt %zu of %d "
		    "never came", k + 1, N);
		cr_assert_eq(rc.reason, 0, "refused: reason %d", rc.reason);
		for (i = 0; i < N && memcmp(ids[i], rc.event_id, 16) != 0; i++)
			;
		cr_assert(i < N, "a receipt for an event not sent");
		seen[i]++;
		if (i == N - 1)
			memcpy(last_receipt, rc.digest, 32);
	}
	for (i = 0; i < N; i++)
		cr_assert_eq(seen[i], 1, "event %zu: %d receipts", i, seen[i]);
	zmq_setsockopt(r.sock, ZMQ_RCVTIMEO, &quiet, sizeof(quiet));
	if (s_next_receipt(&r, lp, &rc)) {
		cr_assert(memcmp(rc.event_id, ids[N - 1], 16) == 0 &&
		    memcmp(rc.digest, last_receipt, 32) == 0, "the copy's "
		    "receipt is not its original's");
		cr_assert(!s_next_receipt(&r, lp, &rc), "a receipt too many");
	}
	td_rogue_close(&r);
	chain_close(&lp);
	td_chain_stop_all(&c);
	pack_destroy(&p);
}
