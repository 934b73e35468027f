/*
 * test_limits.c: what a misbehaving certified partner can make a daemon
 * store, and log (issue 9, item 5).
 *
 * The test connects with Leerplicht's real CURVE keys on a raw DEALER and
 * sends a flood of garbage envelopes to Halt, whose config caps stored
 * refusals at 20 a minute.  Halt stores (rejected rows, audit entries,
 * signed receipts) at most the cap within the minute, logs the refusals
 * rate-limited with one line saying it drops the rest, and keeps serving:
 * a real event from the real Leerplicht daemon is still delivered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <zmq.h>

#include "chain.h"
#include "common.h"
#include "daemons.h"

TestSuite(limits, .init = test_init, .timeout = 120);

#define CAP 20
#define FLOOD 400

static void *
s_connect_as(void *ctx, const char *chain_dir, const char *as,
    const td_org_t *target)
{
	chain_t *ch = NULL;
	const partner_t *srv;
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0;
	kp_err_t e;

	cr_assert(chain_open_oin(chain_dir, as, NULL, NULL, &ch, &e) == 0, "%s",
	    e.msg);
	srv = peer_partner(directory_find(ch->dir, target->oin));
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY,
	    partner_transport_pk(srv), 32), 0);
	cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, partner_transport_pk(
	    identity_public(ch->self)), 32), 0);
	cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY,
	    identity_transport_sk(ch->self), 32), 0);
	cr_assert_eq(zmq_connect(s, target->listen), 0);
	chain_close(&ch);
	return s;
}

Test(limits, garbage_from_a_certified_partner_is_stored_up_to_the_cap)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char state[4200];
	uint8_t junk[101], id[16];
	long audit_before, rows, entries;
	void *ctx, *s;
	int i, tmo = 200, quiet = 0;
	zmq_msg_t m;
	size_t receipts = 0;

	td_chain_make(&c, "\n[delivery]\nrefusals_per_minute = 20\n");
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_state_dir(&c, OIN_HALT, state, sizeof(state));
	td_start(halt);
	audit_before = td_sql_count(state, "audit");

	ctx = zmq_ctx_new();
	s = s_connect_as(ctx, c.dir, OIN_LEERPLICHT, halt);
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	junk[0] = 0x01;                       /* an "envelope" ... */
	memset(junk + 1, 0xff, sizeof(junk) - 1);  /* ... of garbage */
	for (i = 0; i < FLOOD; i++)
		cr_assert(zmq_send(s, junk, sizeof(junk), 0) >= 0);
	/* collect what comes back until it stops coming */
	for (;;) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, 0) < 0) {
			zmq_msg_close(&m);
			/* quiet for 200 ms: done once the daemon has said it
			 * caps (a slow, sanitized daemon can pause longer; 30 s
			 * at most) */
			if (td_log_has(halt, "dropping them unstored", 0) ||
			    ++quiet > 150)
				break;
			continue;
		}
		receipts++;
		zmq_msg_close(&m);
	}
	zmq_close(s);
	zmq_ctx_term(ctx);

	cr_assert(td_log_has(halt, "dropping them unstored", 5000),
	    "the cap must be said in the log");
	rows = td_sql_count(state, "rejected");
	entries = td_sql_count(state, "audit") - audit_before;
	/* at most two windows of the cap can fall in the run */
	cr_assert_geq(rows, 1);
	cr_assert_leq(rows, 2 * CAP, "%ld refusals stored", rows);
	cr_assert_leq(entries, 2 * CAP, "%ld audit entries", entries);
	cr_assert_leq(receipts, (size_t)(2 * CAP));
	/* the refusal lines themselves are rate-limited */
	cr_assert_leq(td_log_count(halt, "REASON_MALFORMED"), 2 * 10);

	/* and Halt still serves a real partner */
	td_start(lp);
	td_send(lp, OIN_HALT, "referral", "LP-1", td_example("referral"), NULL,
	    id);
	cr_assert(td_wait_settled(lp, 10000));
	td_chain_stop_all(&c);
}
