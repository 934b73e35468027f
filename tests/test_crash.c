/*
 * test_crash.c: nothing lost, nothing twice, while both daemons are killed
 * with SIGKILL again and again during a flow of 5,000 events.
 *
 * The test pipelines send requests to the sender's real API, and between
 * windows kills -9 and restarts the receiver and the sender several times
 * each.  At the end every event the sender ever stored is delivered with a
 * signed receipt, the receiver's inbox holds each of them exactly once,
 * and every event id the API handed out is among them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <zmq.h>

#include "api.pb-c.h"
#include "common.h"
#include "daemons.h"
#include "events.pb-c.h"

#define N_EVENTS 5000
#define WINDOW 125

TestSuite(crash, .init = test_init, .timeout = 600);

struct sender {
	void *ctx, *sock;
};

static void
s_open(struct sender *s, const td_org_t *o)
{
	int zero = 0, tmo = 3000;

	s->ctx = zmq_ctx_new();
	s->sock = zmq_socket(s->ctx, ZMQ_DEALER);
	zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s->sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	cr_assert_eq(zmq_connect(s->sock, o->api), 0);
}

static void
s_close(struct sender *s)
{
	zmq_close(s->sock);
	zmq_ctx_term(s->ctx);
}

static void
s_request(struct sender *s, int i)
{
	Kp__Referral ref = KP__REFERRAL__INIT;
	Kp__SendRequest sr = KP__SEND_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	uint8_t payload[64], buf[512];
	char case_ref[32];
	size_t n;

	ref.has_route = ref.has_absence_hours = ref.has_referral_kind = 1;
	ref.has_absence_kind = ref.has_age_years = ref.has_duty_kind = 1;
	ref.has_feedback_due_days = 1;
	ref.route = KP__ROUTE__ROUTE_HALT;
	ref.referral_kind = KP__REFERRAL_KIND__REFERRAL_KIND_HALT_PV;
	ref.absence_kind = KP__ABSENCE_KIND__ABSENCE_KIND_WETTELIJK;
	ref.absence_hours = (uint32_t)(9 + i % 50);
	ref.age_years = (uint32_t)(12 + i % 7);
	ref.duty_kind = KP__DUTY_KIND__DUTY_KIND_LEERPLICHT;
	ref.feedback_due_days = 90;
	snprintf(case_ref, sizeof(case_ref), "LP-%d", i);
	sr.has_event_type = sr.has_payload = 1;
	sr.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	sr.payload.data = payload;
	sr.payload.len = kp__referral__pack(&ref, payload);
	sr.to_oin = OIN_HALT;
	sr.case_ref = case_ref;
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &sr;
	n = kp__request__pack(&req, buf);
	zmq_send(s->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(s->sock, buf, n, ZMQ_DONTWAIT);
}

/* Collect up to `want` answers; store event ids of the positive ones. */
static size_t
s_collect(struct sender *s, size_t want, uint8_t (*ids)[16], size_t n_ids)
{
	Kp__Response *resp;
	zmq_msg_t m;
	size_t got = 0;

	while (got < want) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s->sock, 0) < 0) {   /* timeout: daemon gone */
			zmq_msg_close(&m);
			break;
		}
		if (zmq_msg_size(&m) == 0) {             /* the empty delimiter */
			zmq_msg_close(&m);
			continue;
		}
		resp = kp__response__unpack(NULL, zmq_msg_size(&m),
		    zmq_msg_data(&m));
		zmq_msg_close(&m);
		cr_assert_not_null(resp);
		cr_assert(resp->ok, "send refused: %s", resp->error);
		memcpy(ids[n_ids + got], resp->send->event_id.data, 16);
		kp__response__free_unpacked(resp, NULL);
		got++;
	}
	return got;
}

static int
s_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Sorted ids of a list response (outbox or inbox). */
static uint8_t (*s_ids(Kp__Response *r, bool inbox, size_t *n))[16]
{
	size_t i, count = inbox ? r->inbox->n_items : r->outbox->n_items;
	uint8_t (*ids)[16] = calloc(count + 1, 16);

	for (i = 0; i < count; i++)
		memcpy(ids[i], inbox ? r->inbox->items[i]->event_id.data :
		    r->outbox->items[i]->event_id.data, 16);
	qsort(ids, count, 16, s_cmp);
	*n = count;
	return ids;
}

Test(crash, kill9_both_daemons_during_5000_events)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	struct sender s;
	uint8_t (*acked)[16] = calloc(N_EVENTS + WINDOW, 16), (*out)[16], (*in)[16];
	size_t n_acked = 0, n_out, n_in, i, k;
	int round = 0, next = 0, kills_lp = 0, kills_halt = 0;
	Kp__Response *ro, *ri;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	s_open(&s, lp);
	while (n_acked < N_EVENTS) {
		for (k = 0; k < WINDOW; k++)
			s_request(&s, next++);
		n_acked += s_collect(&s, WINDOW, acked, n_acked);
		round++;
		if (round % 8 == 2) {
			td_kill(halt);
			kills_halt++;
		} else if (round % 8 == 4)
			td_start(halt);
		else if (round % 8 == 6) {
			td_kill(lp);
			kills_lp++;
			s_close(&s);
			td_start(lp);
			s_open(&s, lp);
		}
	}
	s_close(&s);
	if (halt->pid == 0)
		td_start(halt);
	cr_assert_geq(kills_lp, 3);
	cr_assert_geq(kills_halt, 3);
	cr_assert(td_wait_settled(lp, 120000), "events still pending");

	ro = td_outbox(lp);
	ri = td_inbox(halt, true);
	out = s_ids(ro, false, &n_out);
	in = s_ids(ri, true, &n_in);
	for (i = 0; i < ro->outbox->n_items; i++)
		cr_assert_eq(ro->outbox->items[i]->state,
		    KP__DELIVERY_STATE__DELIVERY_STATE_DELIVERED,
		    "every stored event is receipted");
	cr_assert_eq(n_in, n_out, "inbox %zu vs outbox %zu", n_in, n_out);
	for (i = 0; i < n_out; i++)
		cr_assert_arr_eq(out[i], in[i], 16, "same events on both sides");
	for (i = 1; i < n_in; i++)
		cr_assert_arr_neq(in[i - 1], in[i], 16, "an event twice in inbox");
	for (i = 0; i < n_acked; i++)
		cr_assert_not_null(bsearch(acked[i], out, n_out, 16, s_cmp),
		    "an acknowledged event id was lost");
	cr_assert_geq(n_out, N_EVENTS);
	kp__response__free_unpacked(ro, NULL);
	kp__response__free_unpacked(ri, NULL);
	free(out);
	free(in);
	free(acked);
	td_chain_stop_all(&c);
}
