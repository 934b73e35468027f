/*
 * test_pipeline.c: the local API's pipeline (daemon/apisrv.c): a pass of
 * requests is prepared (decoded, checked, sealed) by the worker while the
 * loop stores, signs, commits and answers the pass before it.  Real
 * daemons, with worker_threads = 1 and = 0 (the same code inline), and a
 * batch_max of 4, so that a burst spans many passes and a prepared pass
 * waits while the one before it is stored.
 *
 * What must hold whatever the passes are: every request of a client that
 * pipelines is answered in the order it was sent; an answer comes only
 * after the effect of every earlier request was committed (a list or a
 * status after a send sees the send, even in the same pass); refusals of
 * the prepare phase (policy, unknown partner) are answered at their place
 * and store nothing; an idempotency key repeated across passes answers the
 * first event's id and stores one row; a reply is sealed under the
 * pseudonym of the event it answers (sealed again on the loop); a reload
 * or a stop in the middle of a burst loses no event whose id was handed
 * out.  No timing is asserted.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <zmq.h>

#include "common.h"
#include "daemons.h"
#include "events.h"
#include "pbjson.h"

TestSuite(pipeline, .init = test_init, .timeout = 300);

#define OIN_UNKNOWN "00000009999999999000"

/* A chain whose daemons run passes of at most 4 requests, with or
 * without the worker thread. */
static void
s_chain(td_chain_t *c, int threads)
{
	char extra[128];

	snprintf(extra, sizeof(extra), "batch_max = 4\n\n[ketenpostd]\n"
	    "worker_threads = %d\n", threads);
	td_chain_make(c, extra);
}

/* A send request of `json` (an event of `type`) into req, s, buf. */
static void
s_send_req(Kp__Request *req, Kp__SendRequest *s, const char *type,
    const char *json, const char *to, const char *case_ref,
    const char *key, uint8_t *buf, size_t cap)
{
	int t = events_type_from_name(type);
	json_t *j = json_loads(json, 0, NULL);
	ProtobufCMessage *ev = NULL;
	kp_err_t e;

	cr_assert(t > 0 && j != NULL);
	cr_assert(pbjson_from_json(events_descriptor(t), j, &ev, &e) == 0,
	    "%s", e.msg);
	json_decref(j);
	cr_assert(protobuf_c_message_get_packed_size(ev) <= cap);
	kp__request__init(req);
	kp__send_request__init(s);
	s->has_event_type = s->has_payload = 1;
	s->event_type = (Kp__EventType)t;
	s->payload = (ProtobufCBinaryData){ protobuf_c_message_pack(ev, buf),
	    buf };
	pbjson_free(ev);
	s->to_oin = (char *)to;
	s->case_ref = (char *)case_ref;
	s->idempotency_key = (char *)key;
	req->op_case = KP__REQUEST__OP_SEND;
	req->send = s;
}

/* The kinds of request in the mixed burst, by position. */
enum { K_SEND, K_POLICY, K_IDEM, K_UNKNOWN, K_LIST, K_STATUS, K_KINDS };

#define BURST 60

/* Is id one of ids[0..n)? */
static bool
s_has(uint8_t (*ids)[16], size_t n, const uint8_t *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (memcmp(ids[i], id, 16) == 0)
			return true;
	return false;
}

/* The answer at position i of the mixed burst, checked against what was
 * answered before it (ids: the events stored so far). */
static void
s_check_answer(int i, const Kp__Response *r, uint8_t (*ids)[16], size_t *n,
    uint8_t idem[16], bool *idem_seen)
{
	uint64_t total;
	size_t k;

	switch (i % K_KINDS) {
	case K_SEND:
		cr_assert(r->ok, "answer %d: %s", i, r->error);
		cr_assert_eq(r->result_case, KP__RESPONSE__RESULT_SEND,
		    "answer %d is not its send's: out of order", i);
		cr_assert(!r->send->repeated);
		cr_assert(!s_has(ids, *n, r->send->event_id.data));
		memcpy(ids[(*n)++], r->send->event_id.data, 16);
		break;
	case K_POLICY:
		cr_assert(!r->ok, "answer %d: a policy violation accepted", i);
		cr_assert_str_eq(r->error_code, "policy_violation");
		break;
	case K_IDEM:
		cr_assert(r->ok, "answer %d: %s", i, r->error);
		cr_assert_eq(r->result_case, KP__RESPONSE__RESULT_SEND);
		if (!*idem_seen) {
			cr_assert(!r->send->repeated);
			memcpy(idem, r->send->event_id.data, 16);
			memcpy(ids[(*n)++], idem, 16);
			*idem_seen = true;
		} else {
			cr_assert(r->send->repeated, "answer %d: the key's "
			    "event stored again", i);
			cr_assert_eq(memcmp(r->send->event_id.data, idem, 16), 0,
			    "a repeated key answers the first event's id");
		}
		break;
	case K_UNKNOWN:
		cr_assert(!r->ok, "answer %d: an unknown partner accepted", i);
		cr_assert_str_eq(r->error_code, "unknown_recipient");
		break;
	case K_LIST:
		cr_assert(r->ok, "answer %d: %s", i, r->error);
		cr_assert_eq(r->result_case, KP__RESPONSE__RESULT_OUTBOX,
		    "answer %d is not its list's: out of order", i);
		cr_assert_eq(r->outbox->n_items, *n, "answer %d: the list has "
		    "%zu events, %zu were answered before it", i,
		    r->outbox->n_items, *n);
		for (k = 0; k < r->outbox->n_items; k++)
			cr_assert(s_has(ids, *n,
			    r->outbox->items[k]->event_id.data));
		break;
	case K_STATUS:
		cr_assert(r->ok, "answer %d: %s", i, r->error);
		cr_assert_eq(r->result_case, KP__RESPONSE__RESULT_STATUS,
		    "answer %d is not its status': out of order", i);
		total = r->status->outbox_pending + r->status->outbox_delivered +
		    r->status->outbox_rejected + r->status->outbox_dead;
		cr_assert_eq(total, *n, "answer %d: status counts %llu events, "
		    "%zu were answered before it", i, (unsigned long long)total,
		    *n);
		break;
	}
}

/* The request at position i of the mixed burst, sent on sock. */
static void
s_burst_send(void *sock, int i)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest s;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;
	uint8_t buf[4096];
	char ref[32];

	snprintf(ref, sizeof(ref), "PIPE-%d", i);
	switch (i % K_KINDS) {
	case K_SEND:
		s_send_req(&req, &s, "referral", td_example("referral"),
		    OIN_HALT, ref, NULL, buf, sizeof(buf));
		break;
	case K_POLICY:   /* Halt's own fields, to the OM: refused */
		s_send_req(&req, &s, "referral", td_example("referral"),
		    OIN_OM, ref, NULL, buf, sizeof(buf));
		break;
	case K_IDEM:     /* one request under one key, in every pass */
		s_send_req(&req, &s, "referral", td_example("referral"),
		    OIN_HALT, "PIPE-IDEM", "pipe-key", buf, sizeof(buf));
		break;
	case K_UNKNOWN:
		s_send_req(&req, &s, "referral", td_example("referral"),
		    OIN_UNKNOWN, ref, NULL, buf, sizeof(buf));
		break;
	case K_LIST:
		req.op_case = KP__REQUEST__OP_OUTBOX;
		req.outbox = &l;
		break;
	case K_STATUS:
		req.op_case = KP__REQUEST__OP_STATUS;
		req.status = 1;
		break;
	}
	td_api_dealer_send(sock, &req);
}

static void
s_mixed_burst(int threads)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__Response *r;
	uint8_t ids[BURST][16], idem[16];
	size_t n = 0;
	bool idem_seen = false;
	void *ctx = zmq_ctx_new(), *sock;
	int i;

	s_chain(&c, threads);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	sock = td_api_dealer(ctx, lp, 0);
	for (i = 0; i < BURST; i++)
		s_burst_send(sock, i);
	for (i = 0; i < BURST; i++) {
		r = td_api_dealer_recv(sock);
		cr_assert_not_null(r, "answer %d of %d missing", i + 1, BURST);
		s_check_answer(i, r, ids, &n, idem, &idem_seen);
		kp__response__free_unpacked(r, NULL);
	}
	/* 10 sends, one event under the key; the refusals stored nothing,
	 * and each policy refusal was logged where it was answered */
	cr_assert_eq(n, BURST / K_KINDS + 1);
	cr_assert_eq(td_log_count(lp, "send refused"), BURST / K_KINDS);
	cr_assert(td_wait_settled(lp, 30000));
	r = td_inbox(halt, true);
	cr_assert_eq(r->inbox->n_items, n, "Halt opened %zu of %zu",
	    r->inbox->n_items, n);
	kp__response__free_unpacked(r, NULL);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	td_chain_stop_all(&c);
}

Test(pipeline, a_mixed_burst_over_many_passes_is_answered_in_order_threaded)
{
	s_mixed_burst(1);
}

Test(pipeline, a_mixed_burst_over_many_passes_is_answered_in_order_inline)
{
	s_mixed_burst(0);
}

/* A send and, pipelined right behind it on the same socket, a status and
 * an outbox list: both see the send, pass after pass. */
static void
s_send_then_read(int threads)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__Request req, st = KP__REQUEST__INIT, ls = KP__REQUEST__INIT;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;
	Kp__SendRequest s;
	Kp__Response *a, *b, *d;
	uint8_t buf[4096];
	char ref[32];
	void *ctx = zmq_ctx_new(), *sock;
	size_t i, k;
	bool found;

	s_chain(&c, threads);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);    /* Halt down: every event stays pending */
	sock = td_api_dealer(ctx, lp, 0);
	st.op_case = KP__REQUEST__OP_STATUS;
	st.status = 1;
	ls.op_case = KP__REQUEST__OP_OUTBOX;
	ls.outbox = &l;
	for (i = 1; i <= 30; i++) {
		snprintf(ref, sizeof(ref), "READ-%zu", i);
		s_send_req(&req, &s, "referral", td_example("referral"),
		    OIN_HALT, ref, NULL, buf, sizeof(buf));
		td_api_dealer_send(sock, &req);
		td_api_dealer_send(sock, &st);
		td_api_dealer_send(sock, &ls);
		cr_assert_not_null(a = td_api_dealer_recv(sock));
		cr_assert_not_null(b = td_api_dealer_recv(sock));
		cr_assert_not_null(d = td_api_dealer_recv(sock));
		cr_assert(a->ok && b->ok && d->ok, "%s / %s / %s", a->error,
		    b->error, d->error);
		cr_assert_eq(a->result_case, KP__RESPONSE__RESULT_SEND);
		cr_assert_eq(b->status->outbox_pending, i, "status after send "
		    "%zu counts %llu", i,
		    (unsigned long long)b->status->outbox_pending);
		cr_assert_eq(d->outbox->n_items, i);
		for (k = 0, found = false; k < d->outbox->n_items; k++)
			found |= memcmp(d->outbox->items[k]->event_id.data,
			    a->send->event_id.data, 16) == 0;
		cr_assert(found, "the list after send %zu lacks it", i);
		kp__response__free_unpacked(a, NULL);
		kp__response__free_unpacked(b, NULL);
		kp__response__free_unpacked(d, NULL);
	}
	zmq_close(sock);
	zmq_ctx_term(ctx);
	td_chain_stop_all(&c);
}

Test(pipeline, a_list_and_a_status_behind_a_send_see_it_threaded)
{
	s_send_then_read(1);
}

Test(pipeline, a_list_and_a_status_behind_a_send_see_it_inline)
{
	s_send_then_read(0);
}

/* Halt answers referrals in a burst: each answer is sealed under the
 * pseudonym of the referral it answers (not the one Halt's own keys give
 * its case, which the prepare phase sealed under first), so it carries
 * Leerplicht's pseudonym back and lands on Leerplicht's case. */
static void
s_replies(int threads)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__Response *in, *r, *got;
	Kp__Request req;
	Kp__SendRequest s;
	uint8_t ids[8][16], buf[4096];
	char ref[32];
	void *ctx = zmq_ctx_new(), *sock;
	size_t i, k;

	s_chain(&c, threads);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	for (i = 0; i < 8; i++) {
		snprintf(ref, sizeof(ref), "LP-%zu", i);
		td_send(lp, OIN_HALT, "referral", ref, td_example("referral"),
		    NULL, ids[i]);
	}
	cr_assert(td_wait_settled(lp, 30000));
	got = td_inbox(halt, true);   /* the referrals' pseudonyms */
	cr_assert_eq(got->inbox->n_items, 8);
	sock = td_api_dealer(ctx, halt, 0);
	for (i = 0; i < 8; i++) {
		snprintf(ref, sizeof(ref), "H-%zu", i);
		s_send_req(&req, &s, "halt_outcome", td_example("halt_outcome"),
		    OIN_LEERPLICHT, ref, NULL, buf, sizeof(buf));
		s.has_in_reply_to = 1;
		s.in_reply_to = (ProtobufCBinaryData){ 16, ids[i] };
		td_api_dealer_send(sock, &req);
	}
	for (i = 0; i < 8; i++) {
		cr_assert_not_null(r = td_api_dealer_recv(sock));
		cr_assert(r->ok, "answer %zu: %s", i, r->error);
		kp__response__free_unpacked(r, NULL);
	}
	cr_assert(td_wait_settled(halt, 30000));
	in = td_inbox(lp, true);
	cr_assert_eq(in->inbox->n_items, 8);
	for (k = 0; k < in->inbox->n_items; k++) {
		for (i = 0; i < 8; i++)
			if (memcmp(in->inbox->items[k]->in_reply_to.data, ids[i],
			    16) == 0)
				break;
		cr_assert(i < 8);
		snprintf(ref, sizeof(ref), "LP-%zu", i);
		cr_assert_str_eq(in->inbox->items[k]->case_ref ?
		    in->inbox->items[k]->case_ref : "", ref,
		    "the answer to %s landed elsewhere", ref);
		for (i = 0; i < got->inbox->n_items; i++)
			if (memcmp(got->inbox->items[i]->event_id.data,
			    in->inbox->items[k]->in_reply_to.data, 16) == 0)
				break;
		cr_assert(i < got->inbox->n_items);
		cr_assert_eq(memcmp(in->inbox->items[k]->case_pseudonym.data,
		    got->inbox->items[i]->case_pseudonym.data, 32), 0,
		    "the answer to %s carries another pseudonym", ref);
	}
	kp__response__free_unpacked(in, NULL);
	kp__response__free_unpacked(got, NULL);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	td_chain_stop_all(&c);
}

Test(pipeline, a_reply_is_sealed_under_the_pseudonym_it_answers_threaded)
{
	s_replies(1);
}

Test(pipeline, a_reply_is_sealed_under_the_pseudonym_it_answers_inline)
{
	s_replies(0);
}

#define STREAM 300

/*
 * A burst of sends with a reload (SIGHUP: chain and policy replaced) and
 * then a stop (SIGTERM) in the middle of it: every send answered ok is in
 * the outbox after a restart (no id handed out for an uncommitted event),
 * once; sends after the stop get no answer or an error, never an id of
 * nothing.
 */
static void
s_reload_and_stop(int threads)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__Request req;
	Kp__SendRequest s;
	Kp__Response *r, *out;
	uint8_t (*ok)[16] = calloc(STREAM, 16), buf[4096];
	char ref[32];
	void *ctx = zmq_ctx_new(), *sock;
	size_t n_ok = 0, i, k;
	int tmo = 3000;

	cr_assert_not_null(ok);
	s_chain(&c, threads);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	sock = td_api_dealer(ctx, lp, 0);
	for (i = 0; i < STREAM; i++) {
		snprintf(ref, sizeof(ref), "STOP-%zu", i);
		s_send_req(&req, &s, "referral", td_example("referral"),
		    OIN_HALT, ref, NULL, buf, sizeof(buf));
		td_api_dealer_send(sock, &req);
		if (i == STREAM / 3)
			td_hup(lp);
	}
	for (i = 0; i < STREAM; i++) {
		if (i == STREAM / 2) {
			kill(lp->pid, SIGTERM);
			zmq_setsockopt(sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
		}
		if ((r = td_api_dealer_recv(sock)) == NULL)
			break;
		if (r->ok)
			memcpy(ok[n_ok++], r->send->event_id.data, 16);
		else
			cr_assert(i >= STREAM / 2, "answer %zu before the stop: "
			    "%s", i, r->error);
		kp__response__free_unpacked(r, NULL);
	}
	cr_assert_geq(n_ok, (size_t)STREAM / 2);
	cr_assert_eq(td_wait_exit(lp, 20000), 0, "not stopped cleanly");
	lp->pid = 0;
	td_start(lp);
	out = td_outbox(lp);
	for (i = 0; i < n_ok; i++) {
		size_t seen = 0;

		for (k = 0; k < out->outbox->n_items; k++)
			seen += memcmp(out->outbox->items[k]->event_id.data,
			    ok[i], 16) == 0;
		cr_assert_eq(seen, 1, "event %zu answered ok is stored %zu "
		    "times", i, seen);
	}
	cr_assert(td_log_has(lp, "reload: ", 0));
	kp__response__free_unpacked(out, NULL);
	free(ok);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	td_chain_stop_all(&c);
}

Test(pipeline, a_reload_and_a_stop_in_a_burst_lose_no_answered_event_threaded)
{
	s_reload_and_stop(1);
}

Test(pipeline, a_reload_and_a_stop_in_a_burst_lose_no_answered_event_inline)
{
	s_reload_and_stop(0);
}
