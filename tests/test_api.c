/*
 * test_api.c: the daemon's local API under load and under retries, with
 * real daemons (daemons.h): every request of a burst is answered; an
 * idempotency key makes a retried send return the event it stored (also
 * across a kill -9 and restart) and refuses the key for another request;
 * "queued" is logged only for events that committed; an oversize request
 * gets an error answer instead of silence; inbox and outbox lists come in
 * answers bounded by count and bytes that say whether more follow, and the
 * client pages through them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sqlite3.h>
#include <zmq.h>

#include "common.h"
#include "daemons.h"
#include "envelope.h"
#include "events.h"
#include "pbjson.h"
#include "util.h"

TestSuite(api, .init = test_init, .timeout = 240);

/* the DEALERs read slowly on purpose: answers pile up in the daemon */
#define SLOW_READER_HWM 100

/* A send request of the example referral; payload in buf. */
static void
s_send_req(Kp__Request *req, Kp__SendRequest *s, const char *case_ref,
    const char *key, uint8_t *buf, size_t cap)
{
	json_t *j = json_loads(td_example("referral"), 0, NULL);
	ProtobufCMessage *ev = NULL;
	kp_err_t e;

	cr_assert_not_null(j);
	cr_assert(pbjson_from_json(events_descriptor(
	    KP__EVENT_TYPE__EVENT_TYPE_REFERRAL), j, &ev, &e) == 0, "%s", e.msg);
	json_decref(j);
	cr_assert(protobuf_c_message_get_packed_size(ev) <= cap);
	kp__request__init(req);
	kp__send_request__init(s);
	s->has_event_type = s->has_payload = 1;
	s->event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	s->payload = (ProtobufCBinaryData){ protobuf_c_message_pack(ev, buf),
	    buf };
	pbjson_free(ev);
	s->to_oin = OIN_HALT;
	s->case_ref = (char *)case_ref;
	s->idempotency_key = (char *)key;
	req->op_case = KP__REQUEST__OP_SEND;
	req->send = s;
}

static size_t
s_outbox_count(const td_org_t *o)
{
	Kp__Response *r = td_outbox(o);
	size_t n = r->outbox->n_items;

	kp__response__free_unpacked(r, NULL);
	return n;
}

/* Lines of o's log containing needle. */
static int
s_log_count(const td_org_t *o, const char *needle)
{
	char out[64];

	cr_assert_eq(test_sh_output(out, sizeof(out), "grep -c -- '%s' '%s' "
	    "|| true", needle, o->log), 0);
	return atoi(out);
}

/* 20 000 requests in one burst, the answers read only afterwards: at the
 * default send high-water mark the daemon dropped answers. */
Test(api, a_burst_of_requests_gets_every_answer)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__Request st = KP__REQUEST__INIT, sr;
	Kp__SendRequest s;
	Kp__Response *r;
	uint8_t payload[4096];
	char ref[32];
	void *ctx, *sock;
	int i, n = 20000, every = 100, answers = 0, sends_ok = 0;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	td_start(td_org(&c, OIN_HALT));
	st.op_case = KP__REQUEST__OP_STATUS;
	st.status = 1;
	ctx = zmq_ctx_new();
	sock = td_api_dealer(ctx, lp, SLOW_READER_HWM);
	for (i = 0; i < n; i++) {
		if (i % every != 0) {
			td_api_dealer_send(sock, &st);
			continue;
		}
		snprintf(ref, sizeof(ref), "BURST-%d", i);
		s_send_req(&sr, &s, ref, NULL, payload, sizeof(payload));
		td_api_dealer_send(sock, &sr);
	}
	while (answers < n && (r = td_api_dealer_recv(sock)) != NULL) {
		answers++;
		cr_assert(r->ok, "answer %d: %s", answers, r->error);
		if (r->result_case == KP__RESPONSE__RESULT_SEND &&
		    r->send->event_id.len == 16)
			sends_ok++;
		kp__response__free_unpacked(r, NULL);
	}
	cr_assert_eq(answers, n, "%d of %d requests answered", answers, n);
	cr_assert_eq(sends_ok, n / every);
	cr_assert_eq(s_outbox_count(lp), (size_t)(n / every));
	zmq_close(sock);
	zmq_ctx_term(ctx);
	td_chain_stop_all(&c);
}

/* One call that must be answered; the Response (free it). */
static Kp__Response *
s_call(const td_org_t *o, const Kp__Request *req)
{
	Kp__Response *r = NULL;

	cr_assert_eq(td_call(o, req, &r, 10000), 0, "no answer from %s",
	    o->oin);
	return r;
}

Test(api, the_same_idempotency_key_twice_stores_one_event)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__Request req;
	Kp__SendRequest s;
	Kp__Response *a, *b, *in;
	uint8_t payload[4096];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	s_send_req(&req, &s, "IDEM-1", "order-4711", payload, sizeof(payload));
	a = s_call(lp, &req);
	b = s_call(lp, &req);
	cr_assert(a->ok && b->ok, "%s / %s", a->error, b->error);
	cr_assert_eq(a->send->event_id.len, 16);
	cr_assert_eq(memcmp(a->send->event_id.data, b->send->event_id.data,
	    16), 0, "a retry with the same key must return the same event id");
	cr_assert(!a->send->repeated);
	cr_assert(b->send->has_repeated && b->send->repeated);
	cr_assert_eq(s_outbox_count(lp), 1);
	cr_assert(td_wait_settled(lp, 20000));
	in = td_inbox(halt, true);
	cr_assert_eq(in->inbox->n_items, 1, "delivered once");
	kp__response__free_unpacked(in, NULL);
	/* the key is scoped to the client: another client's "order-4711" is
	 * another event */
	s.client_id = "zaaksysteem-2";
	kp__response__free_unpacked(b, NULL);
	b = s_call(lp, &req);
	cr_assert(b->ok, "%s", b->error);
	cr_assert_neq(memcmp(a->send->event_id.data, b->send->event_id.data,
	    16), 0);
	cr_assert_eq(s_outbox_count(lp), 2);
	kp__response__free_unpacked(a, NULL);
	kp__response__free_unpacked(b, NULL);
	td_chain_stop_all(&c);
}

/*
 * A send stored before the repeated enums were packed (its payload as the
 * old `ketenpost send` or REST API wrote it: a tagged field per route)
 * and retried after the upgrade from the same JSON (now packed) is the
 * same event under its key; other routes under that key are still
 * another request.
 */
Test(api, a_retry_after_the_upgrade_to_packed_enums_is_the_same_event)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__Request req;
	Kp__SendRequest s;
	Kp__Response *a, *b;
	uint8_t payload[4096], old[4096], scratch[4096], *again;
	Kp__Referral *ref;
	ProtobufCMessage *ev = NULL;
	json_t *j = json_loads(td_example("referral"), 0, NULL);
	Kp__Route routes[2] = { KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP,
	    KP__ROUTE__ROUTE_DWANG_CIVIEL };
	size_t len, alen;
	kp_err_t e;

	cr_assert_not_null(j);
	cr_assert(pbjson_from_json(events_descriptor(
	    KP__EVENT_TYPE__EVENT_TYPE_REFERRAL), j, &ev, &e) == 0, "%s", e.msg);
	json_decref(j);
	ref = (Kp__Referral *)ev;
	cr_assert_eq(ref->n_parallel_routes, 0);
	ref->parallel_routes = routes;
	ref->n_parallel_routes = 2;
	len = protobuf_c_message_pack(ev, payload);
	ref->parallel_routes = NULL;
	ref->n_parallel_routes = 0;
	pbjson_free(ev);
	/* route (1) first, then parallel_routes (2) packed: 0x12, 2, a, b;
	 * unpacked: 0x10, a, 0x10, b */
	cr_assert(payload[0] == 0x08 && payload[2] == 0x12 && payload[3] == 2);
	memcpy(old, payload, len);
	old[2] = 0x10;
	old[3] = payload[4];
	old[4] = 0x10;
	old[5] = payload[5];
	cr_assert_eq(events_pack_unpacked(KP__EVENT_TYPE__EVENT_TYPE_REFERRAL,
	    payload, len, &again, &alen, &e), 0, "%s", e.msg);
	cr_assert_eq(alen, len);
	cr_assert_eq(memcmp(again, old, len), 0, "%02x %02x %02x %02x %02x %02x",
	    again[0], again[1], again[2], again[3], again[4], again[5]);
	free(again);

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	s_send_req(&req, &s, "IDEM-OLD", "order-0815", scratch,
	    sizeof(scratch));
	s.payload = (ProtobufCBinaryData){ len, old };
	a = s_call(lp, &req);
	cr_assert(a->ok, "%s", a->error);
	s.payload = (ProtobufCBinaryData){ len, payload };
	b = s_call(lp, &req);
	cr_assert(b->ok, "%s", b->error);
	cr_assert(b->send->has_repeated && b->send->repeated);
	cr_assert_eq(memcmp(a->send->event_id.data, b->send->event_id.data,
	    16), 0);
	cr_assert_eq(s_outbox_count(lp), 1);
	kp__response__free_unpacked(b, NULL);
	/* another second route: another request */
	payload[5] = KP__ROUTE__ROUTE_DWANG_STRAFRECHTELIJK;
	b = s_call(lp, &req);
	cr_assert_not(b->ok);
	cr_assert_str_eq(b->error_code, "idempotency_key_reused");
	cr_assert_eq(s_outbox_count(lp), 1);
	kp__response__free_unpacked(a, NULL);
	kp__response__free_unpacked(b, NULL);
	td_chain_stop_all(&c);
}

/*
 * A burst of sends under one key, pipelined so they share a batch: the
 * outbox row of the first is written only when the batch is signed, and
 * the others must still find it (one event, every answer its id); a
 * different request under the same key in the burst is refused.
 */
Test(api, one_idempotency_key_within_one_batch_stores_one_event)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__Request req;
	Kp__SendRequest s;
	Kp__Response *r;
	uint8_t payload[4096], first[16];
	void *ctx = zmq_ctx_new(), *sock;
	int i, fresh = 0, repeated = 0, refused = 0, n = 40;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	sock = td_api_dealer(ctx, lp, SLOW_READER_HWM);
	s_send_req(&req, &s, "BURST-1", "burst-key", payload, sizeof(payload));
	for (i = 0; i < n; i++) {
		s.case_ref = i == n / 2 ? "BURST-2" : "BURST-1";
		td_api_dealer_send(sock, &req);
	}
	for (i = 0; i < n; i++) {
		r = td_api_dealer_recv(sock);
		cr_assert_not_null(r, "answer %d of %d missing", i + 1, n);
		if (!r->ok) {
			cr_assert_str_eq(r->error_code, "idempotency_key_reused");
			refused++;
		} else if (r->send->repeated) {
			cr_assert_eq(memcmp(r->send->event_id.data, first, 16), 0,
			    "a repeat answers the first event's id");
			repeated++;
		} else {
			memcpy(first, r->send->event_id.data, 16);
			fresh++;
		}
		kp__response__free_unpacked(r, NULL);
	}
	cr_assert_eq(fresh, 1, "one event stored, not %d", fresh);
	cr_assert_eq(repeated, n - 2);
	cr_assert_eq(refused, 1, "the other request under the key is refused");
	cr_assert_eq(s_outbox_count(lp), 1);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	td_chain_stop_all(&c);
}

Test(api, an_idempotency_key_reused_for_another_request_is_refused)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__Request req;
	Kp__SendRequest s;
	Kp__Response *a, *b;
	uint8_t payload[4096];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	s_send_req(&req, &s, "IDEM-A", "k-1", payload, sizeof(payload));
	a = s_call(lp, &req);
	cr_assert(a->ok, "%s", a->error);
	s.case_ref = "IDEM-B";             /* same key, other case */
	b = s_call(lp, &req);
	cr_assert(!b->ok);
	cr_assert_str_eq(b->error_code, "idempotency_key_reused");
	cr_assert(strstr(b->error, "different request") != NULL, "%s",
	    b->error);
	kp__response__free_unpacked(b, NULL);
	s.case_ref = "IDEM-A";             /* same key, other payload */
	s.payload.len--;
	b = s_call(lp, &req);
	cr_assert(!b->ok);
	cr_assert_str_eq(b->error_code, "idempotency_key_reused");
	kp__response__free_unpacked(b, NULL);
	s.idempotency_key = "k 1";         /* not a key */
	b = s_call(lp, &req);
	cr_assert(!b->ok);
	cr_assert(strstr(b->error, "idempotency key") != NULL, "%s", b->error);
	cr_assert_eq(s_outbox_count(lp), 1, "nothing stored for a refusal");
	kp__response__free_unpacked(a, NULL);
	kp__response__free_unpacked(b, NULL);
	td_chain_stop_all(&c);
}

/* The event's id printed by `ketenpost send` (last line of out). */
static void
s_printed_id(const char *out, uint8_t id[16])
{
	const char *p = out + strlen(out);
	char text[37];

	while (p > out && p[-1] == '\n')
		p--;
	cr_assert(p - out >= 36, "%s", out);
	memcpy(text, p - 36, 36);
	text[36] = '\0';
	cr_assert_eq(kp_uuid_parse(text, id), 0, "%s", out);
}

/*
 * The daemon stored the event and was killed before the client read its
 * answer; restarted, the retry with the same key (`ketenpost send
 * --idempotency-key`) returns that event, and HALT receives it once.
 */
Test(api, a_retry_after_a_kill_and_restart_delivers_once)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__Request req;
	Kp__SendRequest s;
	Kp__Response *ob, *in;
	Kp__StatusResponse st;
	uint8_t payload[4096], id[16];
	char out[8192];
	void *ctx, *sock;
	int i;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	s_send_req(&req, &s, "KILL-1", "retry-key-1", payload, sizeof(payload));
	ctx = zmq_ctx_new();
	sock = td_api_dealer(ctx, lp, SLOW_READER_HWM);
	td_api_dealer_send(sock, &req);       /* the answer is never read */
	for (i = 0; i < 200; i++) {
		td_status(lp, &st);
		if (st.outbox_pending == 1)
			break;
		usleep(50000);
	}
	cr_assert_eq(st.outbox_pending, 1);
	td_kill(lp);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	td_start(lp);
	td_start(halt);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost send "
	    "referral --to %s --case KILL-1 --json %s/docs/examples/"
	    "referral.json --idempotency-key retry-key-1 --config %s 2>&1",
	    test_bin(), OIN_HALT, test_source_dir(), lp->conf), 0, "%s", out);
	s_printed_id(out, id);
	ob = td_outbox(lp);
	cr_assert_eq(ob->outbox->n_items, 1, "one event stored");
	cr_assert_eq(memcmp(ob->outbox->items[0]->event_id.data, id, 16), 0,
	    "the retry answers the stored event");
	kp__response__free_unpacked(ob, NULL);
	cr_assert(td_wait_settled(lp, 30000));
	in = td_inbox(halt, true);
	cr_assert_eq(in->inbox->n_items, 1, "delivered once");
	cr_assert_eq(memcmp(in->inbox->items[0]->event_id.data, id, 16), 0);
	kp__response__free_unpacked(in, NULL);
	td_chain_stop_all(&c);
}

/*
 * `ketenpost send` without an answer retries by itself with its key: the
 * daemon is stopped (SIGSTOP) during the first try, killed, and started
 * again; the client's later try reaches the new daemon: one event.
 */
Test(api, ketenpost_send_retries_through_a_restart)
{
	td_chain_t c;
	td_org_t *lp;
	char out[8192], file[4300];
	Kp__Response *ob;
	uint8_t id[16];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	snprintf(file, sizeof(file), "%s.send-out", lp->log);
	td_pause(lp);
	cr_assert_eq(test_sh("(%s/ketenpost send referral --to %s --case R-1 "
	    "--json %s/docs/examples/referral.json --timeout 2 --config %s "
	    ">'%s' 2>&1; echo \"exit $?\" >>'%s') & ", test_bin(), OIN_HALT,
	    test_source_dir(), lp->conf, file, file), 0);
	usleep(2500000);                 /* the first try has timed out */
	td_kill(lp);
	td_start(lp);
	cr_assert_eq(test_sh("for i in $(seq 1 150); do grep -q '^exit' '%s' "
	    "&& break; sleep 0.1; done; grep -q '^exit 0' '%s'", file, file), 0);
	cr_assert_eq(test_sh_output(out, sizeof(out), "grep -v '^exit' '%s'",
	    file), 0);
	cr_assert(strstr(out, "trying again") != NULL, "%s", out);
	s_printed_id(out, id);
	ob = td_outbox(lp);
	cr_assert_eq(ob->outbox->n_items, 1);
	cr_assert_eq(memcmp(ob->outbox->items[0]->event_id.data, id, 16), 0);
	kp__response__free_unpacked(ob, NULL);
	td_chain_stop_all(&c);
}

/* A trigger (sql) on o's database, made by a connection of the test. */
static void
s_trigger(const td_chain_t *c, const td_org_t *o, const char *sql)
{
	char db[4200];
	sqlite3 *h = NULL;

	snprintf(db, sizeof(db), "%s/orgs/%s/state/ketenpost.db", c->dir,
	    o->oin);
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_busy_timeout(h, 5000), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(h));
	sqlite3_close(h);
}

/* Requests ra and rb to o in one pass (o stopped while both are sent on
 * one connection).  OUT: both answers, not NULL. */
static void
s_two_in_one_pass(td_org_t *o, const Kp__Request *ra, const Kp__Request *rb,
    Kp__Response **a, Kp__Response **b)
{
	Kp__Request st = KP__REQUEST__INIT;
	void *ctx = zmq_ctx_new(), *sock;

	sock = td_api_dealer(ctx, o, SLOW_READER_HWM);
	/* connected first, then both requests wait for one drain */
	st.op_case = KP__REQUEST__OP_STATUS;
	st.status = 1;
	td_api_dealer_send(sock, &st);
	*a = td_api_dealer_recv(sock);
	cr_assert_not_null(*a);
	kp__response__free_unpacked(*a, NULL);
	td_pause(o);
	td_api_dealer_send(sock, ra);
	td_api_dealer_send(sock, rb);
	usleep(300000);
	kill(o->pid, SIGCONT);
	*a = td_api_dealer_recv(sock);
	*b = td_api_dealer_recv(sock);
	cr_assert(*a != NULL && *b != NULL);
	zmq_close(sock);
	zmq_ctx_term(ctx);
}

/* The number sqlite3 prints for sql on o's database. */
static long
s_sql_count(const td_chain_t *c, const td_org_t *o, const char *sql)
{
	char out[64];

	cr_assert_eq(test_sh_output(out, sizeof(out), "sqlite3 -cmd '.timeout "
	    "5000' '%s/orgs/%s/state/ketenpost.db' \"%s\"", c->dir, o->oin,
	    sql), 0, "%s", out);
	return strtol(out, NULL, 10);
}

/* Two send requests of the example referral to the Halt (cases ref_a and
 * ref_b) for the started Leerplicht daemon of a new chain; audit: its
 * audit entries before them.  Lives where the test's variables do (the
 * requests point into it). */
struct two_sends {
	td_chain_t c;
	td_org_t *lp;
	Kp__Request ra, rb;
	Kp__SendRequest sa, sb;
	uint8_t pa[4096], pb[4096];
	long audit;
};

static void
s_two_sends(struct two_sends *t, const char *ref_a, const char *ref_b)
{
	td_chain_make(&t->c, NULL);
	t->lp = td_org(&t->c, OIN_LEERPLICHT);
	td_start(t->lp);
	t->audit = s_sql_count(&t->c, t->lp, "SELECT count(*) FROM audit");
	s_send_req(&t->ra, &t->sa, ref_a, NULL, t->pa, sizeof(t->pa));
	s_send_req(&t->rb, &t->sb, ref_b, NULL, t->pb, sizeof(t->pb));
}

/*
 * Sends ra and rb to o in one pass, the second one's insert into `table`
 * refused (a trigger, as a full disk would, once two case links exist;
 * case references are sealed at rest, so it counts rows): both are
 * answered "not stored", and the outbox stays empty.
 */
static void
s_second_send_refused(const td_chain_t *c, td_org_t *o, const char *table,
    const Kp__Request *ra, const Kp__Request *rb, const char *why)
{
	Kp__Response *a, *b;
	char sql[512];

	snprintf(sql, sizeof(sql), "CREATE TRIGGER %s_full BEFORE INSERT ON %s "
	    "WHEN (SELECT count(*) FROM links) >= 2 "
	    "BEGIN SELECT RAISE(ABORT, 'disk full'); END;", table, table);
	s_trigger(c, o, sql);
	s_two_in_one_pass(o, ra, rb, &a, &b);
	cr_assert(!b->ok);
	cr_assert(!a->ok, "%s", why);
	cr_assert(strstr(a->error, "not stored") != NULL, "%s", a->error);
	cr_assert_eq(s_outbox_count(o), 0);
	kp__response__free_unpacked(a, NULL);
	kp__response__free_unpacked(b, NULL);
}

/*
 * Two sends in one batch, the second one's audit entry cannot be written
 * (a trigger, as a full disk would): the batch rolls back, and the log
 * claims no "queued" event; it says once how many were not queued.
 */
Test(api, queued_is_logged_only_for_what_committed)
{
	struct two_sends t;
	Kp__Response *a;

	/* the second send's audit entry (its case link is written first, its
	 * outbox row only when the batch is signed) */
	s_two_sends(&t, "FINE", "FULL");
	s_second_send_refused(&t.c, t.lp, "audit", &t.ra, &t.rb,
	    "both in one batch: the batch rolled back");
	cr_assert(td_log_has(t.lp, "batch rolled back, 1 event not queued",
	    5000));
	cr_assert_eq(s_log_count(t.lp, " queued (purpose"), 0,
	    "a \"queued\" line for an event that was not stored");
	/* and a send that commits is logged */
	a = s_call(t.lp, &t.ra);
	cr_assert(a->ok, "%s", a->error);
	cr_assert(td_log_has(t.lp, " queued (purpose", 5000));
	kp__response__free_unpacked(a, NULL);
	td_chain_stop_all(&t.c);
}

/*
 * A send takes no savepoint of its own (apisrv.c s_bare_end): it refuses
 * before its first write, or a failure once it has written fails its
 * batch.  Here the second send's expectation cannot be written (a
 * trigger, after its link and audit entry were): both sends of the
 * batch are not stored, and neither leaves a link or an audit entry.
 */
Test(api, a_send_that_fails_after_writing_fails_its_batch)
{
	struct two_sends t;
	Kp__Response *a;

	s_two_sends(&t, "EERSTE", "TWEEDE");
	s_second_send_refused(&t.c, t.lp, "expectations", &t.ra, &t.rb,
	    "the first send committed without the second");
	cr_assert_eq(s_sql_count(&t.c, t.lp, "SELECT count(*) FROM links"), 0,
	    "a link left behind");
	cr_assert_eq(s_sql_count(&t.c, t.lp, "SELECT count(*) FROM audit"),
	    t.audit, "an audit entry left behind");
	/* alone, a send commits */
	a = s_call(t.lp, &t.ra);
	cr_assert(a->ok, "%s", a->error);
	cr_assert_eq(s_outbox_count(t.lp), 1);
	kp__response__free_unpacked(a, NULL);
	td_chain_stop_all(&t.c);
}

/*
 * A send refused before it wrote anything (the policy: a referral may not
 * go to the JBT) in the same pass as one that is fine: the good one is
 * stored, the refused one answered with its rule, and the refusal
 * audited; the pass does not fail (apisrv.c s_bare_end).
 */
Test(api, a_send_refused_before_writing_leaves_its_pass_alone)
{
	struct two_sends t;
	Kp__Response *a, *b;

	s_two_sends(&t, "GOED", "JBT");
	t.sb.to_oin = OIN_JBT;
	s_two_in_one_pass(t.lp, &t.ra, &t.rb, &a, &b);
	cr_assert(a->ok, "%s", a->error);
	cr_assert(!b->ok);
	cr_assert(strstr(b->error, "rule 'recipients'") != NULL, "%s",
	    b->error);
	cr_assert_eq(s_outbox_count(t.lp), 1);
	cr_assert_eq(s_sql_count(&t.c, t.lp, "SELECT count(*) FROM links"), 1);
	/* the good send's entry and the refusal's */
	cr_assert_eq(s_sql_count(&t.c, t.lp, "SELECT count(*) FROM audit"),
	    t.audit + 2);
	kp__response__free_unpacked(a, NULL);
	kp__response__free_unpacked(b, NULL);
	td_chain_stop_all(&t.c);
}

/*
 * A read answered in a pass that then rolls back (a send after it fails
 * once it has written) is not answered with what it read: its `read`
 * audit entry went with the pass (no entry, no answer).
 */
Test(api, a_read_in_a_pass_that_rolls_back_gets_no_content)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__Request ra, rs = KP__REQUEST__INIT, rb;
	Kp__SendRequest sa, sb;
	Kp__SubjectRequest sq = KP__SUBJECT_REQUEST__INIT;
	Kp__Response *a, *b;
	uint8_t pa[4096], pb[4096];
	long audit;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	s_send_req(&ra, &sa, "EERSTE", NULL, pa, sizeof(pa));
	a = s_call(lp, &ra);
	cr_assert(a->ok, "%s", a->error);
	kp__response__free_unpacked(a, NULL);
	/* a subject access listing of the first case answers with its event
	 * and audits the read; then the second send cannot write its
	 * expectation (the second link) */
	s_trigger(&c, lp, "CREATE TRIGGER expectations_full BEFORE INSERT ON "
	    "expectations WHEN (SELECT count(*) FROM links) >= 2 "
	    "BEGIN SELECT RAISE(ABORT, 'disk full'); END;");
	audit = s_sql_count(&c, lp, "SELECT count(*) FROM audit");
	sq.case_ref = "EERSTE";
	rs.op_case = KP__REQUEST__OP_SUBJECT;
	rs.subject = &sq;
	s_send_req(&rb, &sb, "TWEEDE", NULL, pb, sizeof(pb));
	s_two_in_one_pass(lp, &rs, &rb, &a, &b);
	cr_assert(!b->ok);
	cr_assert(!a->ok, "the listing was answered, its audit entry undone");
	cr_assert(strstr(a->error, "not stored") != NULL, "%s", a->error);
	cr_assert_eq(a->result_case, KP__RESPONSE__RESULT__NOT_SET);
	cr_assert_eq(s_sql_count(&c, lp, "SELECT count(*) FROM audit"), audit);
	kp__response__free_unpacked(a, NULL);
	kp__response__free_unpacked(b, NULL);
	/* alone, the listing is answered (and audited) */
	a = s_call(lp, &rs);
	cr_assert(a->ok, "%s", a->error);
	cr_assert_eq(a->subject->n_items, 1);
	kp__response__free_unpacked(a, NULL);
	cr_assert_eq(s_sql_count(&c, lp, "SELECT count(*) FROM audit"),
	    audit + 1);
	td_chain_stop_all(&c);
}

/* A request over the API limit gets an error answer, not silence. */
Test(api, an_oversize_request_is_answered_with_an_error)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__Request req;
	Kp__SendRequest s;
	Kp__Response *r;
	uint8_t *big = calloc(1, 100000);

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	s_send_req(&req, &s, "BIG-1", NULL, big, 100000);
	s.payload = (ProtobufCBinaryData){ 100000, big };
	r = s_call(lp, &req);
	cr_assert(!r->ok);
	cr_assert_str_eq(r->error_code, "oversize");
	cr_assert(strstr(r->error, "32768") != NULL, "%s", r->error);
	kp__response__free_unpacked(r, NULL);
	/* and the daemon still serves */
	s_send_req(&req, &s, "SMALL-1", NULL, big, 100000);
	r = s_call(lp, &req);
	cr_assert(r->ok, "%s", r->error);
	kp__response__free_unpacked(r, NULL);
	free(big);
	td_chain_stop_all(&c);
}

/*
 * A chain in a folder so deep that <state_dir>/api.sock is longer than
 * the 107 bytes of a Unix socket address: the daemon starts with the
 * default API socket, and the client reaches it through the config.
 */
Test(api, a_daemon_in_a_deep_folder_serves_its_api)
{
	char tmp[512], deep[1024], out[8192];
	td_org_t o;
	int n, port = 10000 + (int)((unsigned)getpid() % 2700) * 8 + 6, i, rc;

	memset(&o, 0, sizeof(o));
	test_tmpdir(tmp, sizeof(tmp));
	n = snprintf(deep, sizeof(deep), "%s", tmp);
	while (n < 120)
		n += snprintf(deep + n, sizeof(deep) - (size_t)n,
		    "/a-folder-deep-down");
	cr_assert_eq(test_sh("mkdir -p '%s' && %s/ketenpost-certs init --dir "
	    "'%s/chain' >/dev/null && %s/ketenpost-certs org --dir '%s/chain' "
	    "--oin %s --role leerplicht --name LP --endpoint "
	    "tcp://127.0.0.1:%d >/dev/null && %s/ketenpost-certs org --dir "
	    "'%s/chain' --oin %s --role halt --name Halt --endpoint "
	    "tcp://127.0.0.1:%d >/dev/null", deep, test_bin(), deep,
	    test_bin(), deep, OIN_LEERPLICHT, port, test_bin(), deep, OIN_HALT,
	    port + 1), 0);
	snprintf(o.conf, sizeof(o.conf), "%s/chain/orgs/%s/ketenpostd.conf",
	    deep, OIN_LEERPLICHT);
	snprintf(o.log, sizeof(o.log), "%s/lp.log", tmp);
	snprintf(o.api, sizeof(o.api), "ipc://%s/chain/orgs/%s/state/api.sock",
	    deep, OIN_LEERPLICHT);
	cr_assert(strlen(o.api) - strlen("ipc://") > 107, "%s", o.api);
	td_spawn(&o);
	for (i = 0, rc = -1; i < 100 && rc != 0; i++) {
		rc = test_sh_output(out, sizeof(out), "%s/ketenpost status "
		    "--config '%s' --timeout 1 --json", test_bin(), o.conf);
		if (rc != 0)
			usleep(100000);
	}
	cr_assert_eq(rc, 0, "%s (log %s)", out, o.log);
	cr_assert(strstr(out, OIN_LEERPLICHT) != NULL, "%s", out);
	cr_assert_eq(test_sh("test -S '%s'", o.api + strlen("ipc://")), 0,
	    "the socket is where the config says");
	cr_assert_eq(td_stop(&o), 0);
	test_sh("rm -rf '%s'", tmp);
}

/* ---- lists in pages: the byte bound of an answer and `more` ---------- */

/* A referral padded to about routes bytes with parallel_routes (packed; the
 * schemas have no free text; the test's policy allows the padding), packed
 * into buf.  Returns its length. */
static size_t
s_big_referral(uint8_t *buf, size_t cap, size_t routes)
{
	json_t *j = json_loads(td_example("referral"), 0, NULL);
	ProtobufCMessage *ev = NULL;
	Kp__Referral *r;
	Kp__Route *keep, *many = calloc(routes, sizeof(*many));
	size_t keep_n, i, len;
	kp_err_t e;

	cr_assert_not_null(j);
	cr_assert_not_null(many);
	cr_assert(pbjson_from_json(events_descriptor(
	    KP__EVENT_TYPE__EVENT_TYPE_REFERRAL), j, &ev, &e) == 0, "%s", e.msg);
	json_decref(j);
	r = (Kp__Referral *)ev;
	for (i = 0; i < routes; i++)
		many[i] = KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP;
	keep = r->parallel_routes;
	keep_n = r->n_parallel_routes;
	r->parallel_routes = many;
	r->n_parallel_routes = routes;
	len = protobuf_c_message_get_packed_size(ev);
	cr_assert(len <= cap, "%zu bytes", len);
	protobuf_c_message_pack(ev, buf);
	r->parallel_routes = keep;     /* pbjson_free frees its own */
	r->n_parallel_routes = keep_n;
	pbjson_free(ev);
	free(many);
	return len;
}

/* One page of o's inbox (all) or outbox: at most limit items after seq. */
static Kp__Response *
s_page(const td_org_t *o, bool inbox, uint64_t after, uint32_t limit)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;
	Kp__Response *r;

	l.has_limit = l.has_after_seq = l.has_all = 1;
	l.limit = limit;
	l.after_seq = after;
	l.all = 1;
	req.op_case = inbox ? KP__REQUEST__OP_INBOX : KP__REQUEST__OP_OUTBOX;
	req.inbox = req.outbox = &l;
	r = s_call(o, &req);
	cr_assert(r->ok, "%s", r->error);
	cr_assert_not_null(inbox ? (void *)r->inbox : (void *)r->outbox);
	return r;
}

/* The event ids `ketenpost inbox|outbox --all? --limit N` prints, in
 * order, one per line, into out. */
static void
s_cli_ids(const td_org_t *o, const char *cmd, int limit, char *out,
    size_t len)
{
	cr_assert_eq(test_sh_output(out, len, "%s/ketenpost %s --limit %d "
	    "--config '%s' | awk 'NR > 1 { print $1 }'", test_bin(), cmd, limit,
	    o->conf), 0, "%s", out);
}

#define BIG_EVENTS 4400                /* past the 4 MiB an answer holds */
#define BIG_ROUTES 1000                /* a payload of about 1 KB, the most
                                        * a policy allows */

/*
 * 4,400 events of about 1 KB (4.5 MB): listed with a limit of 10,000, the
 * inbox comes in answers of at most about 4 MiB (apiquery.c
 * API_ANSWER_BYTES_MAX), each but the last saying
 * `more`, with every event once, in seq order, its payload whole; a page
 * cut by the limit says `more` only if an item follows; `ketenpost inbox`
 * pages on through answers shorter than it asked for.
 */
Test(api, an_inbox_listing_past_the_byte_bound_comes_in_pages)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest s = KP__SEND_REQUEST__INIT;
	Kp__Response *r;
	static uint8_t sent[BIG_EVENTS][16];
	static uint64_t seqs[BIG_EVENTS];
	static bool seen[BIG_EVENTS];
	static char ids[BIG_EVENTS * 40], want[BIG_EVENTS * 40];
	uint8_t *payload = malloc(KP_MAX_PAYLOAD);
	uint64_t after = 0;
	char ref[32], id[37];
	size_t plen, total = 0, pages = 0, i, k, n;
	bool more = true;
	void *ctx, *sock;

	cr_assert_not_null(payload);
	td_chain_make(&c, NULL);
	cr_assert_eq(test_sh("sed -i 's/^max_items.parallel_routes *=.*/"
	    "max_items.parallel_routes = %d/' %s/policy.ini", BIG_ROUTES,
	    c.dir), 0);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	plen = s_big_referral(payload, KP_MAX_PAYLOAD, BIG_ROUTES);
	s.has_event_type = s.has_payload = 1;
	s.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	s.payload = (ProtobufCBinaryData){ plen, payload };
	s.to_oin = OIN_HALT;
	s.case_ref = ref;
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &s;
	ctx = zmq_ctx_new();
	sock = td_api_dealer(ctx, lp, SLOW_READER_HWM);
	for (i = 0; i < BIG_EVENTS; i++) {
		snprintf(ref, sizeof(ref), "BIG-%zu", i);
		td_api_dealer_send(sock, &req);
	}
	for (i = 0; i < BIG_EVENTS; i++) {
		r = td_api_dealer_recv(sock);
		cr_assert_not_null(r, "answer %zu", i);
		cr_assert(r->ok, "send %zu: %s", i, r->error);
		memcpy(sent[i], r->send->event_id.data, 16);
		kp__response__free_unpacked(r, NULL);
	}
	zmq_close(sock);
	zmq_ctx_term(ctx);
	cr_assert(td_wait_settled(lp, 120000));

	want[0] = '\0';
	while (more) {
		r = s_page(halt, true, after, 10000);
		n = r->inbox->n_items;
		cr_assert(r->inbox->has_more, "the answer says whether more follow");
		more = r->inbox->more;
		cr_assert_leq(kp__response__get_packed_size(r), (4u << 20) +
		    KP_MAX_PAYLOAD, "an answer of %zu bytes",
		    kp__response__get_packed_size(r));
		cr_assert(n > 0 || !more);
		if (more)
			cr_assert_lt(n, BIG_EVENTS, "cut by bytes, not by count");
		for (i = 0; i < n; i++) {
			const Kp__InboxItem *it = r->inbox->items[i];

			cr_assert_gt(it->seq, after, "in seq order");
			after = it->seq;
			cr_assert(it->has_payload);
			cr_assert_eq(it->payload.len, plen);
			cr_assert_eq(memcmp(it->payload.data, payload, plen), 0);
			for (k = 0; k < BIG_EVENTS && memcmp(sent[k],
			    it->event_id.data, 16) != 0; k++)
				;
			cr_assert_lt(k, BIG_EVENTS, "an event that was sent");
			cr_assert_not(seen[k], "event %zu twice", k);
			seen[k] = true;
			cr_assert_lt(total, BIG_EVENTS);
			seqs[total++] = it->seq;
			kp_uuid_format(it->event_id.data, id);
			snprintf(want + strlen(want), sizeof(want) - strlen(want),
			    "%s\n", id);
		}
		pages++;
		kp__response__free_unpacked(r, NULL);
	}
	cr_assert_eq(total, BIG_EVENTS, "every event listed once");
	cr_assert_geq(pages, 2, "%zu answers", pages);

	/* cut by the limit: `more` if an item follows, not at the last one */
	r = s_page(halt, true, 0, 3);
	cr_assert_eq(r->inbox->n_items, 3);
	cr_assert(r->inbox->has_more && r->inbox->more);
	kp__response__free_unpacked(r, NULL);
	r = s_page(halt, true, seqs[BIG_EVENTS - 4], 3);
	cr_assert_eq(r->inbox->n_items, 3);
	cr_assert_eq(r->inbox->items[2]->seq, seqs[BIG_EVENTS - 1]);
	cr_assert(r->inbox->has_more && !r->inbox->more);
	kp__response__free_unpacked(r, NULL);

	/* the client pages through answers shorter than it asked for */
	s_cli_ids(halt, "inbox --all", 5000, ids, sizeof(ids));
	cr_assert_str_eq(ids, want);
	s_cli_ids(halt, "inbox --all", BIG_EVENTS - 5, ids, sizeof(ids));
	cr_assert_eq(strlen(ids), (size_t)(BIG_EVENTS - 5) * 37);
	cr_assert_eq(strncmp(ids, want, strlen(ids)), 0);
	free(payload);
	td_chain_stop_all(&c);
}

/*
 * The outbox in pages cut by the limit: each says `more` while an event
 * follows and not after the last one (also when the last page is exactly
 * the limit); `ketenpost outbox --limit` shows as many as asked or all.
 */
Test(api, an_outbox_listing_says_more_until_its_last_event)
{
	td_chain_t c;
	td_org_t *lp;
	Kp__Response *r;
	uint8_t id[16];
	uint64_t after = 0;
	char ref[32], ids[1024], want[1024], uuid[37];
	const size_t sizes[3] = { 2, 2, 1 };
	size_t i, page;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);                  /* Halt is down: the events wait */
	want[0] = '\0';
	for (i = 0; i < 5; i++) {
		snprintf(ref, sizeof(ref), "PAGE-%zu", i);
		td_send(lp, OIN_HALT, "referral", ref, td_example("referral"),
		    NULL, id);
		kp_uuid_format(id, uuid);
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
		    "%s\n", uuid);
	}
	for (page = 0; page < 3; page++) {
		r = s_page(lp, false, after, 2);
		cr_assert_eq(r->outbox->n_items, sizes[page]);
		cr_assert(r->outbox->has_more);
		cr_assert_eq(r->outbox->more, page < 2, "page %zu", page);
		after = r->outbox->items[r->outbox->n_items - 1]->seq;
		kp__response__free_unpacked(r, NULL);
	}
	r = s_page(lp, false, 0, 5);
	cr_assert_eq(r->outbox->n_items, 5);
	cr_assert(r->outbox->has_more && !r->outbox->more);
	kp__response__free_unpacked(r, NULL);
	r = s_page(lp, false, after, 2);
	cr_assert_eq(r->outbox->n_items, 0);
	cr_assert(r->outbox->has_more && !r->outbox->more);
	kp__response__free_unpacked(r, NULL);

	s_cli_ids(lp, "outbox", 3, ids, sizeof(ids));
	cr_assert_eq(strlen(ids), 3 * 37);
	cr_assert_eq(strncmp(ids, want, strlen(ids)), 0, "%s", ids);
	s_cli_ids(lp, "outbox", 100, ids, sizeof(ids));
	cr_assert_str_eq(ids, want);
	td_chain_stop_all(&c);
}
