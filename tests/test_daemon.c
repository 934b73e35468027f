/*
 * test_daemon.c: several real ketenpostd processes on loopback exchanging
 * every event type, with signed receipts; a partner that is down for the
 * whole send; clean shutdown with SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common.h"
#include "daemons.h"
#include "envelope.pb-c.h"
#include "events.pb-c.h"
#include "util.h"

TestSuite(daemon, .init = test_init, .timeout = 240);

/* The outbox item of event id, asserted present. */
static const Kp__OutboxItem *
s_out_item(const Kp__Response *r, const uint8_t id[16])
{
	size_t i;

	for (i = 0; i < r->outbox->n_items; i++)
		if (memcmp(r->outbox->items[i]->event_id.data, id, 16) == 0)
			return r->outbox->items[i];
	cr_assert_fail("event not in outbox");
	return NULL;
}

static const Kp__InboxItem *
s_in_item(const Kp__Response *r, const uint8_t id[16])
{
	size_t i;

	for (i = 0; i < r->inbox->n_items; i++)
		if (memcmp(r->inbox->items[i]->event_id.data, id, 16) == 0)
			return r->inbox->items[i];
	cr_assert_fail("event not in inbox");
	return NULL;
}

/* Assert: delivered with a receipt at the sender, and in the recipient's
 * inbox with the same envelope digest.  Returns the inbox item's local
 * case reference (or "" if not linked). */
static void
s_assert_delivered(td_org_t *from, td_org_t *to, const uint8_t id[16],
    char *case_out, size_t case_len)
{
	Kp__Response *out, *in;
	const Kp__OutboxItem *o;
	const Kp__InboxItem *i;

	cr_assert(td_wait_settled(from, 15000), "%s: events still pending",
	    from->oin);
	out = td_outbox(from);
	in = td_inbox(to, true);
	o = s_out_item(out, id);
	i = s_in_item(in, id);
	cr_assert_eq(o->state, KP__DELIVERY_STATE__DELIVERY_STATE_DELIVERED);
	cr_assert(o->has_receipt_digest && o->receipt_digest.len == 32);
	cr_assert_eq(o->reason, KP__REASON__REASON_NONE);
	cr_assert_arr_eq(o->envelope_digest.data, i->envelope_digest.data, 32);
	cr_assert_str_eq(i->from_oin, from->oin);
	cr_assert(i->has_payload && i->payload.len > 0);
	snprintf(case_out, case_len, "%s", i->case_ref ? i->case_ref : "");
	kp__response__free_unpacked(out, NULL);
	kp__response__free_unpacked(in, NULL);
}

Test(daemon, all_five_event_types_delivered_and_receipted)
{
	td_chain_t c;
	td_org_t *lp, *halt, *rvdk, *om, *jbt;
	uint8_t ref[16], ans[16];
	char local[80];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	rvdk = td_org(&c, OIN_RVDK);
	om = td_org(&c, OIN_OM);
	jbt = td_org(&c, OIN_JBT);
	for (size_t k = 0; k < c.n; k++)
		td_start(&c.orgs[k]);

	td_send(lp, OIN_HALT, "referral", "LP-1", td_example("referral"), NULL, ref);
	s_assert_delivered(lp, halt, ref, local, sizeof(local));
	cr_assert_str_eq(local, "", "Halt must not learn the local case");
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", "H-9",
	    td_example("halt_outcome"), ref, ans);
	s_assert_delivered(halt, lp, ans, local, sizeof(local));
	cr_assert_str_eq(local, "LP-1", "the answer lands on the local case");

	td_send(lp, OIN_RVDK, "referral", "LP-2", td_example_to("referral", OIN_RVDK), NULL, ref);
	s_assert_delivered(lp, rvdk, ref, local, sizeof(local));
	td_send(rvdk, OIN_LEERPLICHT, "rvdk_advice", "R-1",
	    td_example("rvdk_advice"), ref, ans);
	s_assert_delivered(rvdk, lp, ans, local, sizeof(local));
	cr_assert_str_eq(local, "LP-2");

	td_send(lp, OIN_OM, "referral", "LP-3", td_example_to("referral", OIN_OM), NULL, ref);
	s_assert_delivered(lp, om, ref, local, sizeof(local));
	td_send(om, OIN_LEERPLICHT, "om_decision", "OM-1",
	    td_example("om_decision"), ref, ans);
	s_assert_delivered(om, lp, ans, local, sizeof(local));
	cr_assert_str_eq(local, "LP-3");

	td_send(lp, OIN_JBT, "jbt_request", "LP-2", td_example("jbt_request"),
	    NULL, ref);
	s_assert_delivered(lp, jbt, ref, local, sizeof(local));

	for (size_t k = 0; k < c.n; k++)
		cr_assert_eq(td_stop(&c.orgs[k]), 0, "%s did not stop cleanly",
		    c.orgs[k].oin);
	cr_assert(td_log_has(lp, "stopped", 0));
}

Test(daemon, partner_down_for_the_whole_send_then_starts)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t ids[200][16];
	Kp__StatusResponse st;
	Kp__Response *in;
	size_t i;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	for (i = 0; i < 200; i++) {
		char ref[32];
		snprintf(ref, sizeof(ref), "LP-%zu", i);
		td_send(lp, OIN_HALT, "referral", ref, td_example("referral"),
		    NULL, ids[i]);
	}
	usleep(500000);
	td_status(lp, &st);
	cr_assert_eq(st.outbox_pending, 200, "nothing can be delivered yet");
	td_start(halt);
	cr_assert(td_wait_settled(lp, 20000), "not all delivered after start");
	td_status(lp, &st);
	cr_assert_eq(st.outbox_delivered, 200);
	in = td_inbox(halt, true);
	cr_assert_eq(in->inbox->n_items, 200);
	for (i = 0; i < 200; i++)
		(void)s_in_item(in, ids[i]);
	kp__response__free_unpacked(in, NULL);
	td_chain_stop_all(&c);
}

/* A backlog larger than the flow-control window (4,096 in flight per
 * partner, outbound.c): the window fills, the rest waits for receipts to
 * free slots, and every event arrives exactly once. */
Test(daemon, backlog_larger_than_the_window_delivered)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__StatusResponse st;
	uint8_t id[16];
	size_t i;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	/* more than the 4,096 events a link keeps in flight (outbound.c) */
	for (i = 0; i < 4200; i++) {
		char ref[32];
		snprintf(ref, sizeof(ref), "LP-W%zu", i);
		td_send(lp, OIN_HALT, "referral", ref, td_example("referral"),
		    NULL, id);
	}
	td_start(halt);
	cr_assert(td_wait_settled(lp, 120000), "not all delivered after start");
	td_status(lp, &st);
	cr_assert_eq(st.outbox_delivered, 4200);
	td_status(halt, &st);
	cr_assert_eq(st.inbox_total, 4200, "each event stored once");
	td_chain_stop_all(&c);
}

/*
 * [delivery] window_kib bounds the envelopes' bytes in flight to a
 * partner (outbound.c s_flow_room): with the partner stopped (connected,
 * reading nothing) the sender sends about 16 KiB of a backlog far below
 * the window's 4,096 events and leaves the rest in its store; when the
 * partner goes on, the catch-up sends the rest, and each event arrives
 * once.
 */
Test(daemon, window_kib_bounds_the_bytes_in_flight)
{
	char out[64], sent[128];
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__StatusResponse st;
	uint8_t id[16];
	size_t i, n = 200;
	long distinct;

	td_chain_make(&c, "window_kib = 16\n\n[ketenpostd]\nverbose = 1\n");
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	td_start(lp);
	td_send(lp, OIN_HALT, "referral", "LP-K0", td_example("referral"),
	    NULL, id);
	cr_assert(td_wait_settled(lp, 20000), "the first event not delivered");
	td_pause(halt);
	for (i = 1; i <= n; i++) {
		char ref[32];
		snprintf(ref, sizeof(ref), "LP-K%zu", i);
		td_send(lp, OIN_HALT, "referral", ref, td_example("referral"),
		    NULL, id);
	}
	usleep(1000000);
	snprintf(sent, sizeof(sent), "%s", "event [0-9a-f-]* sent to");
	cr_assert_eq(test_sh_output(out, sizeof(out), "grep -o '%s' '%s' | "
	    "sort -u | wc -l", sent, lp->log), 0);
	distinct = strtol(out, NULL, 10);
	/* the first, and at least one more: the window is not shut */
	cr_assert_gt(distinct, 1, "%s", out);
	/* the example referral's envelope is over 300 bytes (about 360):
	 * 16 KiB hold at most 54, and the one that crosses the bound */
	cr_assert_leq(distinct, 1 + 54 + 1, "sent %ld of %zu with the partner "
	    "stopped", distinct, n);
	td_status(lp, &st);
	cr_assert_eq(st.outbox_pending, n, "no receipt while stopped");
	cr_assert_eq(kill(halt->pid, SIGCONT), 0);
	cr_assert(td_wait_settled(lp, 60000), "not all delivered after "
	    "SIGCONT");
	td_status(lp, &st);
	cr_assert_eq(st.outbox_delivered, n + 1);
	td_status(halt, &st);
	cr_assert_eq(st.inbox_total, n + 1, "each event stored once");
	td_chain_stop_all(&c);
}

/* One line of sqlite3 output from oin's database: sql's single value. */
static void
s_sql_text(const td_chain_t *c, const char *oin, const char *sql, char *out,
    size_t len)
{
	char dir[4200];

	td_state_dir(c, oin, dir, sizeof(dir));
	cr_assert_eq(test_sh_output(out, len, "sqlite3 -cmd '.timeout 5000' "
	    "'%s/ketenpost.db' \"%s\"", dir, sql), 0, "%s", out);
}

/*
 * A partner outage rewrites no pending row, and the catch-up after it
 * sends each event once, in the order they were queued (outbound.c).
 * The daemons run on a simulated clock the test moves past several retry
 * timers (retry_max is 2 s in the test chain) while the partner is down:
 * the rows queued meanwhile keep their attempts and next_attempt_ms.
 * Then the partner starts: every event arrives once (no duplicate in its
 * log) and in seq order, and the sender's rows still show one attempt
 * (the catch-up wrote no schedule).
 */
Test(daemon, an_outage_rewrites_no_row_and_the_catch_up_sends_each_once)
{
	static char before[65536], after[65536], sent[65536], got[65536];
	const char *snap = "SELECT group_concat(seq || ':' || attempts || ':' "
	    "|| next_attempt_ms || ':' || updated_ms, ',') FROM outbox";
	char clock[4200], dir[4200];
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__StatusResponse st;
	uint64_t t0 = kp_now_ms();
	uint8_t id[16];
	size_t i, n = 300;
	int k;

	if (!kp_clock_simulated())
		cr_skip_test("built without KP_SIMULATED_CLOCK (scripts/test.sh "
		    "turns it on)");
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	snprintf(clock, sizeof(clock), "%.4000s/clock", c.dir);
	td_set_clock(clock, t0);
	cr_assert_eq(setenv("KETENPOST_CLOCK_FILE", clock, 1), 0);
	td_start(lp);
	for (i = 0; i < n; i++) {
		char ref[32];
		snprintf(ref, sizeof(ref), "LP-O%zu", i);
		td_send(lp, OIN_HALT, "referral", ref, td_example("referral"),
		    NULL, id);
	}
	s_sql_text(&c, lp->oin, snap, before, sizeof(before));
	cr_assert_gt(strlen(before), n, "%s", before);
	/* four retry_max periods, each long enough (in real time) for the
	 * daemon's loop to act on timers that ran out */
	for (k = 1; k <= 4; k++) {
		td_set_clock(clock, t0 + 3000 * (uint64_t)k);
		usleep(1500 * 1000);
	}
	s_sql_text(&c, lp->oin, snap, after, sizeof(after));
	cr_assert_str_eq(after, before, "pending rows were rewritten during "
	    "the outage");
	td_status(lp, &st);
	cr_assert_eq(st.outbox_pending, n);

	td_start(halt);
	unsetenv("KETENPOST_CLOCK_FILE");
	cr_assert(td_wait_settled(lp, 60000), "not all delivered after start");
	td_status(lp, &st);
	cr_assert_eq(st.outbox_delivered, n);
	td_status(halt, &st);
	cr_assert_eq(st.inbox_total, n, "each event stored once");
	cr_assert_eq(td_log_count(halt, "is a duplicate"), 0,
	    "an event was sent twice");
	/* in seq order: the receiver stored them in the order queued */
	s_sql_text(&c, lp->oin, "SELECT group_concat(hex(event_id), ',') FROM "
	    "(SELECT event_id FROM outbox ORDER BY seq)", sent, sizeof(sent));
	s_sql_text(&c, halt->oin, "SELECT group_concat(hex(event_id), ',') "
	    "FROM (SELECT event_id FROM inbox ORDER BY seq)", got, sizeof(got));
	cr_assert_str_eq(got, sent, "not caught up in seq order");
	/* the drain recorded no attempt: each row was sent once, unwritten
	 * until its receipt */
	td_state_dir(&c, lp->oin, dir, sizeof(dir));
	cr_assert_eq(td_sql_count(dir, "outbox WHERE attempts = 1"), (long)n);
	td_chain_stop_all(&c);
}

Test(daemon, inbox_ack_consumes_each_event_once)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t id[16];
	Kp__Request req = KP__REQUEST__INIT;
	Kp__AckRequest ack = KP__ACK_REQUEST__INIT;
	ProtobufCBinaryData ids[1];
	Kp__Response *resp;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-7", td_example("referral"), NULL, id);
	cr_assert(td_wait_settled(lp, 10000));
	resp = td_inbox(halt, false);
	cr_assert_eq(resp->inbox->n_items, 1);
	kp__response__free_unpacked(resp, NULL);
	ids[0] = (ProtobufCBinaryData){ 16, id };
	ack.n_event_ids = 1;
	ack.event_ids = ids;
	req.op_case = KP__REQUEST__OP_ACK;
	req.ack = &ack;
	cr_assert_eq(td_call(halt, &req, &resp, 5000), 0);
	cr_assert(resp->ok);
	cr_assert_eq(resp->ack->acknowledged, 1);
	kp__response__free_unpacked(resp, NULL);
	cr_assert_eq(td_call(halt, &req, &resp, 5000), 0);
	cr_assert_eq(resp->ack->acknowledged, 0, "a second ack changes nothing");
	kp__response__free_unpacked(resp, NULL);
	/* survives a restart: the acknowledgement was durable */
	td_kill(halt);
	td_start(halt);
	resp = td_inbox(halt, false);
	cr_assert_eq(resp->inbox->n_items, 0);
	kp__response__free_unpacked(resp, NULL);
	resp = td_inbox(halt, true);
	cr_assert_eq(resp->inbox->n_items, 1);
	cr_assert(resp->inbox->items[0]->acknowledged);
	kp__response__free_unpacked(resp, NULL);
	td_chain_stop_all(&c);
}

Test(daemon, expired_event_becomes_a_dead_letter)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest s = KP__SEND_REQUEST__INIT;
	Kp__Response *resp, *out;
	Kp__StatusResponse st;
	Kp__Referral ref = KP__REFERRAL__INIT;
	uint8_t payload[64];

	ref.has_route = ref.has_referral_kind = ref.has_absence_kind = 1;
	ref.has_age_years = ref.has_duty_kind = ref.has_feedback_due_days = 1;
	ref.route = KP__ROUTE__ROUTE_HALT;
	ref.referral_kind = KP__REFERRAL_KIND__REFERRAL_KIND_HALT_PV;
	ref.absence_kind = KP__ABSENCE_KIND__ABSENCE_KIND_WETTELIJK;
	ref.age_years = 14;
	ref.duty_kind = KP__DUTY_KIND__DUTY_KIND_LEERPLICHT;
	ref.feedback_due_days = 90;
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);                       /* Halt never comes up */
	s.has_event_type = s.has_payload = s.has_ttl_seconds = 1;
	s.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	s.payload = (ProtobufCBinaryData){ kp__referral__pack(&ref, payload),
	    payload };
	s.to_oin = OIN_HALT;
	s.case_ref = "LP-DEAD";
	s.ttl_seconds = 1;
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &s;
	cr_assert_eq(td_call(lp, &req, &resp, 5000), 0);
	cr_assert(resp->ok, "%s", resp->error);
	kp__response__free_unpacked(resp, NULL);
	cr_assert(td_log_has(lp, "dead letter", 5000));
	td_status(lp, &st);
	cr_assert_eq(st.outbox_dead, 1);
	cr_assert_eq(st.outbox_pending, 0);
	out = td_outbox(lp);
	cr_assert_eq(out->outbox->items[0]->state,
	    KP__DELIVERY_STATE__DELIVERY_STATE_DEAD);
	kp__response__free_unpacked(out, NULL);
	td_chain_stop_all(&c);
}

Test(daemon, check_reports_every_problem_and_exits_1)
{
	td_chain_t c;
	td_org_t *lp;
	char out[8192];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpostd --config "
	    "%s --check", test_bin(), lp->conf), 0, "%s", out);
	cr_assert(strstr(out, "check: ok") != NULL, "%s", out);
	/* a secret key readable by others: refused, naming the file */
	cr_assert_eq(test_sh("chmod 0644 %s/orgs/%s/sign.key", c.dir,
	    OIN_LEERPLICHT), 0);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpostd --config "
	    "%s --check", test_bin(), lp->conf), 1, "%s", out);
	cr_assert(strstr(out, "sign.key") && strstr(out, "0644"), "%s", out);
	cr_assert(strstr(out, "key_file_mode") != NULL, "%s", out);
	/* the daemon itself refuses to start the same way */
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpostd --config "
	    "%s", test_bin(), lp->conf), 1, "%s", out);
	cr_assert(strstr(out, "sign.key") != NULL, "%s", out);
	cr_assert_eq(test_sh("chmod 0600 %s/orgs/%s/sign.key", c.dir,
	    OIN_LEERPLICHT), 0);
	/* a revoked partner is named, and makes the check fail */
	cr_assert_eq(test_sh("%s/ketenpost-certs revoke --dir %s --oin %s "
	    ">/dev/null", test_bin(), c.dir, OIN_HALT), 0);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpostd --config "
	    "%s --check", test_bin(), lp->conf), 1, "%s", out);
	cr_assert(strstr(out, "cert_revoked") && strstr(out, OIN_HALT), "%s",
	    out);
	/* a broken config: every problem with FILE:LINE */
	cr_assert_eq(test_sh("printf '[ketenpostd]\\nchain_dir = %s\\norg = 123\\n"
	    "bogus = 1\\n' > %s.bad", c.dir, lp->conf), 0);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpostd --config "
	    "%s.bad --check", test_bin(), lp->conf), 1, "%s", out);
	cr_assert(strstr(out, ".bad:3:") && strstr(out, ".bad:4:"), "%s", out);
}

Test(daemon, api_socket_and_database_are_private)
{
	td_chain_t c;
	td_org_t *lp;
	struct stat st;
	char path[4200];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	cr_assert_eq(stat(lp->api + strlen("ipc://"), &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 077, 0, "api.sock mode %o", st.st_mode & 0777);
	snprintf(path, sizeof(path), "%s/orgs/%s/state", c.dir, OIN_LEERPLICHT);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 077, 0, "state dir mode %o", st.st_mode & 0777);
	snprintf(path, sizeof(path), "%s/orgs/%s/state/ketenpost.db", c.dir,
	    OIN_LEERPLICHT);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 077, 0, "database mode %o", st.st_mode & 0777);
	td_chain_stop_all(&c);
}
