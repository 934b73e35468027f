/*
 * test_client.c: the API commands of the real `ketenpost` binary (send,
 * outbox, inbox, fetch, ack, status) against a fake daemon (fakeapi.h):
 * a ZMQ_ROUTER in a thread of the test, bound to an ipc:// endpoint in a
 * fresh folder, that answers every request with one canned kp.Response
 * and records the requests it got.  So each test checks both sides of
 * the contract: the bytes the client sends and what it prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "api.pb-c.h"
#include "common.h"
#include "events.h"
#include "fakeapi.h"
#include "pbjson.h"
#include "util.h"

TestSuite(client, .init = test_init);

#define ID_A "0b0e4f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
#define ID_B "7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a"
#define CASE_PSEUDONYM_HEX \
	"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

static const char *
s_example(const char *type, char *buf, size_t len)
{
	snprintf(buf, len, "%s/docs/examples/%s.json", test_source_dir(),
	    type);
	return buf;
}

/* The packed protobuf of an example JSON payload.  OUT: *buf, *len. */
static void
s_example_packed(const char *type, uint8_t **buf, size_t *len)
{
	char path[4096];
	json_error_t je;
	json_t *j = json_load_file(s_example(type, path, sizeof(path)), 0,
	    &je);
	ProtobufCMessage *m = NULL;
	kp_err_t e;

	cr_assert(j != NULL, "%s: %s", path, je.text);
	cr_assert(pbjson_from_json(events_descriptor(events_type_from_name(
	    type)), j, &m, &e) == 0, "%s: %s", path, e.msg);
	*len = protobuf_c_message_get_packed_size(m);
	*buf = malloc(*len + 1);
	protobuf_c_message_pack(m, *buf);
	pbjson_free(m);
	json_decref(j);
}

static void
s_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert(f != NULL, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

static void
s_id(const char *text, uint8_t id[16])
{
	cr_assert(kp_uuid_parse(text, id) == 0);
}

/* ---- send ---- */

/* The answer to a send: ok, event id `text` (stored in id). */
static void
s_send_answer(Kp__SendResponse *sr, Kp__Response *r, uint8_t id[16],
    const char *text)
{
	s_id(text, id);
	sr->has_event_id = 1;
	sr->event_id.data = id;
	sr->event_id.len = 16;
	r->has_ok = r->ok = 1;
	r->result_case = KP__RESPONSE__RESULT_SEND;
	r->send = sr;
}

/* The one request f got is a SendRequest of example `type`. */
static void
s_check_send_request(const struct fake *f, const char *type,
    const char *reply_to, uint32_t ttl)
{
	Kp__Request *q = fake_request(f, 0);
	uint8_t reply[16], *want;
	size_t want_len;

	cr_assert_eq(f->n, 1);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_SEND);
	cr_assert_eq((int)q->send->event_type, events_type_from_name(type));
	cr_assert_str_eq(q->send->to_oin, OIN_HALT);
	cr_assert_str_eq(q->send->case_ref, "ZAAK-2027-001");
	s_example_packed(type, &want, &want_len);
	cr_assert(q->send->has_payload);
	cr_assert_eq(q->send->payload.len, want_len, "%s payload length",
	    type);
	cr_assert(memcmp(q->send->payload.data, want, want_len) == 0);
	free(want);
	cr_assert_eq(q->send->has_in_reply_to, reply_to != NULL);
	if (reply_to != NULL) {
		s_id(reply_to, reply);
		cr_assert_eq(q->send->in_reply_to.len, 16);
		cr_assert(memcmp(q->send->in_reply_to.data, reply, 16) == 0);
	}
	cr_assert_eq(q->send->has_ttl_seconds, ttl != 0);
	cr_assert_eq(q->send->ttl_seconds, ttl);
	kp__request__free_unpacked(q, NULL);
}

static void
s_check_send(const char *type, const char *extra, const char *reply_to,
    uint32_t ttl)
{
	Kp__SendResponse sr = KP__SEND_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	uint8_t id[16];
	char out[4096], path[4096];
	struct fake f;
	int rc;

	s_send_answer(&sr, &r, id, ID_A);
	rc = fake_serve_run(&f, &r, out, sizeof(out), "send %s --to %s --case "
	    "ZAAK-2027-001 --json %s %s", type, OIN_HALT,
	    s_example(type, path, sizeof(path)), extra);
	cr_assert_eq(rc, 0, "send %s: exit %d: %s", type, rc, out);
	cr_assert_str_eq(out, ID_A "\n", "send must print the event id only");
	s_check_send_request(&f, type, reply_to, ttl);
	fake_free(&f);
}

Test(client, send_builds_the_request_from_each_example)
{
	s_check_send("referral", "", NULL, 0);
	s_check_send("halt_outcome", "--reply-to " ID_B, ID_B, 0);
	s_check_send("rvdk_advice", "--reply-to " ID_B " --ttl 2d", ID_B,
	    172800);
	s_check_send("om_decision", "--ttl 90m", NULL, 5400);
	s_check_send("jbt_request", "", NULL, 0);
}

Test(client, send_reads_stdin)
{
	Kp__SendResponse sr = KP__SEND_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	uint8_t id[16];
	char out[4096], path[4096];
	struct fake f;
	int rc;

	s_send_answer(&sr, &r, id, ID_B);
	rc = fake_serve_run(&f, &r, out, sizeof(out), "send referral --to %s "
	    "--case ZAAK-2027-001 --json - < %s", OIN_HALT,
	    s_example("referral", path, sizeof(path)));
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert_str_eq(out, ID_B "\n");
	s_check_send_request(&f, "referral", NULL, 0);
	fake_free(&f);
}

/* Every bad input is refused, naming the file, before any request. */
Test(client, send_refuses_bad_json_before_sending)
{
	static const struct { const char *text, *says; } bad[] = {
		{ "{ \"route\": ", "bad.json:1:" },
		{ "{ \"route\": \"halt\", \"naam\": \"Jan\" }",
		  "referral: unknown field 'naam'" },
		{ "{ \"route\": \"bus\" }", "'bus' is not a Route" },
		{ "{ \"age_years\": \"15\" }", "age_years" },
		{ "[ 1, 2 ]", "must be a JSON object" },
	};
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096], path[1024];
	struct fake f;
	size_t i;
	int rc;

	r.has_ok = r.ok = 1;
	fake_start(&f, &r);
	snprintf(path, sizeof(path), "%s/bad.json", f.dir);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s_write(path, bad[i].text);
		rc = client_run(out, sizeof(out), "send referral --api %s --to %s "
		    "--case C1 --json %s", f.endpoint, OIN_HALT, path);
		cr_assert_eq(rc, 1, "%s: exit %d: %s", bad[i].text, rc, out);
		cr_assert(strncmp(out, "ketenpost: ", 11) == 0, "%s", out);
		cr_assert(strstr(out, path) != NULL, "no file name: %s", out);
		cr_assert(strstr(out, bad[i].says) != NULL, "%s", out);
		cr_assert(strchr(out, '\n') == out + strlen(out) - 1,
		    "not one line: %s", out);
	}
	rc = client_run(out, sizeof(out), "send referral --api %s --to %s --case "
	    "C1 --json %s/missing.json", f.endpoint, OIN_HALT, f.dir);
	cr_assert_eq(rc, 1, "missing file: exit %d: %s", rc, out);
	cr_assert(strstr(out, "missing.json") != NULL, "%s", out);
	fake_stop(&f);
	cr_assert_eq(f.n, 0, "a refused send reached the daemon");
	fake_free(&f);
}

/* The idempotency key: one per run, made fresh, or --idempotency-key. */
Test(client, send_carries_an_idempotency_key)
{
	Kp__SendResponse sr = KP__SEND_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	Kp__Request *q;
	uint8_t id[16], parsed[16];
	char out[4096], path[4096], first[64];
	struct fake f;
	int rc;

	s_send_answer(&sr, &r, id, ID_A);
	s_example("referral", path, sizeof(path));
	rc = fake_serve_run(&f, &r, out, sizeof(out), "send referral --to %s "
	    "--case C1 --json %s", OIN_HALT, path);
	cr_assert_eq(rc, 0, "%s", out);
	q = fake_request(&f, 0);
	cr_assert_not_null(q->send->idempotency_key);
	cr_assert_eq(kp_uuid_parse(q->send->idempotency_key, parsed), 0,
	    "a fresh key is a UUID: %s", q->send->idempotency_key);
	snprintf(first, sizeof(first), "%s", q->send->idempotency_key);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
	rc = fake_serve_run(&f, &r, out, sizeof(out), "send referral --to %s "
	    "--case C1 --json %s", OIN_HALT, path);
	cr_assert_eq(rc, 0, "%s", out);
	q = fake_request(&f, 0);
	cr_assert_str_neq(q->send->idempotency_key, first, "one key per run");
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
	rc = fake_serve_run(&f, &r, out, sizeof(out), "send referral --to %s "
	    "--case C1 --json %s --idempotency-key zaak-2027-001/verwijzing-1",
	    OIN_HALT, path);
	cr_assert_eq(rc, 0, "%s", out);
	q = fake_request(&f, 0);
	cr_assert_str_eq(q->send->idempotency_key, "zaak-2027-001/verwijzing-1");
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
}

/* Clear messages for what used to be unclear (issue 9, item 6). */
Test(client, send_says_what_is_wrong)
{
	static const struct { const char *args, *says; int rc; } bad[] = {
		{ "--case C1 --ttl 0s --json %s", "--ttl must be at least 1s", 2 },
		{ "--case C1 --json %s --idempotency-key 'a b'",
		  "--idempotency-key must be 1-128 printable", 2 },
		{ "--case " "R123456789012345678901234567890123456789012345678901"
		  "234567890123456789012345678901234567890123456789012345678901"
		  "234567890123456789012345678901234567890123456789012345678901"
		  "2345678901234567890123456789 --json %s",
		  "--case must be 1-64 printable characters without spaces "
		  "(this one has 200 bytes)", 2 },
		{ "--case C1 --json %s/..", "is a folder; --json needs a JSON "
		  "file", 1 },
		{ "--case C1 --json %s/nothing-here.json", "cannot read the JSON "
		  "file", 1 },
		{ "--case C1 --json %s/big.json", "over the limit of 32768 bytes "
		  "for one event; nothing was sent", 1 },
	};
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096], args[2048], path[1024];
	struct fake f;
	FILE *fp;
	size_t i;
	int rc, k;

	r.has_ok = r.ok = 1;
	fake_start(&f, &r);
	snprintf(path, sizeof(path), "%s/big.json", f.dir);
	cr_assert_not_null(fp = fopen(path, "w"));
	fputs("{ \"route\": \"halt\", \"parallel_routes\": [", fp);
	for (k = 0; k < 40000; k++)     /* a byte each, packed */
		fprintf(fp, "%s\"halt\"", k ? ", " : "");
	fputs("] }\n", fp);
	fclose(fp);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(args, sizeof(args), bad[i].args, strstr(bad[i].args,
		    "--json %s/") ? f.dir : path);
		rc = client_run(out, sizeof(out), "send referral --api %s --to %s "
		    "%s", f.endpoint, OIN_HALT, args);
		cr_assert_eq(rc, bad[i].rc, "%s: exit %d: %s", args, rc, out);
		cr_assert(strstr(out, bad[i].says) != NULL, "%s: %s", args, out);
		cr_assert(strstr(out, ":-1:") == NULL, "%s", out);
		cr_assert(strchr(out, '\n') == out + strlen(out) - 1,
		    "not one line: %s", out);
	}
	fake_stop(&f);
	cr_assert_eq(f.n, 0, "a refused send reached the daemon");
	fake_free(&f);
}

Test(client, send_usage_errors_exit_2)
{
	static const char *bad[] = {
		"send parcel --to " OIN_HALT " --case C1",
		"send referral --case C1",
		"send referral --to 123 --case C1",
		"send referral --to " OIN_HALT,
		"send referral --to " OIN_HALT " --case ''",
		"send referral --to " OIN_HALT " --case C1 --reply-to nope",
		"send referral --to " OIN_HALT " --case C1 --ttl soon",
		"send referral --to " OIN_HALT " --case C1 --ttl 1500ms",
		"send referral --to " OIN_HALT " --case C1 --timeout 0",
		"send referral --to " OIN_HALT " --case C1 --bogus",
		"send referral referral --to " OIN_HALT " --case C1",
	};
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096], path[4096];
	struct fake f;
	size_t i;
	int rc;

	r.has_ok = r.ok = 1;
	fake_start(&f, &r);
	s_example("referral", path, sizeof(path));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = client_run(out, sizeof(out), "%s --json %s --api %s", bad[i],
		    path, f.endpoint);
		cr_assert_eq(rc, 2, "%s: exit %d: %s", bad[i], rc, out);
		cr_assert(strncmp(out, "ketenpost send: ", 16) == 0 &&
		    strchr(out, '\n') == out + strlen(out) - 1, "%s", out);
	}
	rc = client_run(out, sizeof(out), "%s --json %s", bad[0], path);
	cr_assert(strstr(out, "unknown event type 'parcel'") != NULL, "%s",
	    out);
	rc = client_run(out, sizeof(out), "send referral --to %s --case C1 --json "
	    "%s", OIN_HALT, path);
	cr_assert_eq(rc, 2, "no daemon named: exit %d: %s", rc, out);
	cr_assert(strstr(out, "--api") && strstr(out, "--config") &&
	    strstr(out, "KETENPOST_API") && strstr(out, "KETENPOST_CONFIG"),
	    "%s", out);
	fake_stop(&f);
	cr_assert_eq(f.n, 0);
	fake_free(&f);
}

Test(client, no_daemon_times_out)
{
	char out[4096], dir[512], ep[600], path[4096], want[1024];
	struct timespec t0, t1;
	double secs;
	int rc;

	test_tmpdir(dir, sizeof(dir));
	snprintf(ep, sizeof(ep), "ipc://%s/nobody.sock", dir);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = client_run(out, sizeof(out), "status --api %s --timeout 1", ep);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) /
	    1e9;
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	snprintf(want, sizeof(want), "ketenpost: no answer from the daemon at "
	    "%s within 1 s (is ketenpostd running? see 'systemctl status "
	    "ketenpostd@NAME')\n", ep);
	cr_assert_str_eq(out, want);
	cr_assert(secs >= 0.9 && secs < 5.0, "took %.2f s", secs);
	/* send tries 3 times (1 s, then 2 s apart) with its idempotency key,
	 * then gives up with the same message */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = client_run(out, sizeof(out), "send referral --api %s --timeout 1 "
	    "--to %s --case C1 --json %s", ep, OIN_HALT,
	    s_example("referral", path, sizeof(path)));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) /
	    1e9;
	cr_assert_eq(rc, 1, "send: exit %d: %s", rc, out);
	cr_assert(strstr(out, "trying again (2 of 3), safely") != NULL &&
	    strstr(out, "trying again (3 of 3)") != NULL, "%s", out);
	cr_assert(strlen(out) >= strlen(want) &&
	    strcmp(out + strlen(out) - strlen(want), want) == 0, "%s", out);
	cr_assert(secs >= 5.5 && secs < 15.0, "took %.2f s", secs);
	test_sh("rm -rf '%s'", dir);
}

Test(client, refusal_prints_error_and_code)
{
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096], path[4096];
	struct fake f;
	int rc;

	r.has_ok = 1;
	r.ok = 0;
	r.error = "to " OIN_OM ": not a partner of this organisation";
	r.error_code = "unknown_partner";
	rc = fake_serve_run(&f, &r, out, sizeof(out), "send referral --to %s "
	    "--case C1 --json %s", OIN_OM,
	    s_example("referral", path, sizeof(path)));
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert_str_eq(out, "ketenpost: to " OIN_OM ": not a partner of "
	    "this organisation (unknown_partner)\n");
	cr_assert_eq(f.n, 1);
	fake_free(&f);
}

Test(client, malformed_or_wrong_answers_are_refused)
{
	Kp__AckResponse ar = KP__ACK_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096];
	struct fake f;
	int rc;

	fake_start_raw(&f, "\xff\xff\xff\xff", 4);
	rc = client_run(out, sizeof(out), "status --api %s", f.endpoint);
	fake_stop(&f);
	cr_assert_eq(rc, 1, "garbage: exit %d: %s", rc, out);
	cr_assert(strstr(out, "not a kp.Response") != NULL, "%s", out);
	fake_free(&f);

	r.has_ok = r.ok = 1;
	r.result_case = KP__RESPONSE__RESULT_ACK;
	r.ack = &ar;
	rc = fake_serve_run(&f, &r, out, sizeof(out), "status");
	cr_assert_eq(rc, 1, "wrong kind: exit %d: %s", rc, out);
	cr_assert(strstr(out, "wrong kind") != NULL, "%s", out);
	fake_free(&f);
}

/* ---- outbox ---- */

struct outbox_fixture {
	Kp__OutboxItem a, b, *items[2];
	Kp__OutboxList list;
	Kp__Response r;
	uint8_t id_a[16], id_b[16], digest[32];
};

static void
s_outbox_fixture(struct outbox_fixture *o)
{
	Kp__OutboxItem init = KP__OUTBOX_ITEM__INIT;
	Kp__OutboxList l = KP__OUTBOX_LIST__INIT;
	Kp__Response r = KP__RESPONSE__INIT;

	s_id(ID_A, o->id_a);
	s_id(ID_B, o->id_b);
	memset(o->digest, 0xab, sizeof(o->digest));
	o->a = o->b = init;
	o->a.has_seq = 1; o->a.seq = 1;
	o->a.has_event_id = 1; o->a.event_id.data = o->id_a;
	o->a.event_id.len = 16;
	o->a.has_event_type = 1;
	o->a.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	o->a.to_oin = OIN_HALT;
	o->a.case_ref = "ZAAK-1";
	o->a.has_state = 1;
	o->a.state = KP__DELIVERY_STATE__DELIVERY_STATE_DELIVERED;
	o->a.has_attempts = 1; o->a.attempts = 1;
	o->a.has_created_at_ms = 1; o->a.created_at_ms = 1798761600000ull;
	o->a.has_envelope_digest = 1; o->a.envelope_digest.data = o->digest;
	o->a.envelope_digest.len = 32;
	o->b.has_event_id = 1; o->b.event_id.data = o->id_b;
	o->b.event_id.len = 16;
	o->b.has_event_type = 1;
	o->b.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	o->b.to_oin = OIN_RVDK;
	o->b.case_ref = "ZAAK-2";
	o->b.has_state = 1;
	o->b.state = KP__DELIVERY_STATE__DELIVERY_STATE_REJECTED;
	o->b.has_reason = 1; o->b.reason = KP__REASON__REASON_BAD_SIGNATURE;
	o->b.has_in_reply_to = 1; o->b.in_reply_to.data = o->id_a;
	o->b.in_reply_to.len = 16;
	o->items[0] = &o->a;
	o->items[1] = &o->b;
	o->list = l;
	o->list.n_items = 2;
	o->list.items = o->items;
	o->list.has_more = 1;          /* a daemon that says so: the end */
	o->r = r;
	o->r.has_ok = o->r.ok = 1;
	o->r.result_case = KP__RESPONSE__RESULT_OUTBOX;
	o->r.outbox = &o->list;
}

Test(client, outbox_json)
{
	struct outbox_fixture o;
	char out[16384];
	json_t *j, *a, *b;
	struct fake f;
	Kp__Request *q;

	s_outbox_fixture(&o);
	j = client_json_out(fake_serve_run(&f, &o.r, out, sizeof(out), "outbox --json "
	    "--limit 5"), out);
	cr_assert(json_is_array(j) && json_array_size(j) == 2, "%s", out);
	a = json_array_get(j, 0);
	b = json_array_get(j, 1);
	cr_assert_str_eq(client_jstr(a, "event_id"), ID_A);
	cr_assert_str_eq(client_jstr(a, "event_type"), "referral");
	cr_assert_str_eq(client_jstr(a, "to_oin"), OIN_HALT);
	cr_assert_str_eq(client_jstr(a, "case_ref"), "ZAAK-1");
	cr_assert_str_eq(client_jstr(a, "state"), "delivered");
	cr_assert_eq(json_integer_value(json_object_get(a, "attempts")), 1);
	cr_assert_eq(json_integer_value(json_object_get(a, "created_at_ms")),
	    1798761600000ll);
	cr_assert_str_eq(client_jstr(a, "created_at"), "2027-01-01T00:00:00.000Z");
	cr_assert_str_eq(client_jstr(a, "envelope_digest"),
	    "abababababababababababababababababababababababababababababababab");
	cr_assert_str_eq(client_jstr(b, "state"), "rejected");
	cr_assert_str_eq(client_jstr(b, "reason"), "bad_signature");
	cr_assert_str_eq(client_jstr(b, "in_reply_to"), ID_A);
	cr_assert_null(json_object_get(b, "created_at"));
	json_decref(j);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_OUTBOX);
	cr_assert(q->outbox->has_limit && q->outbox->limit == 5);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
}

Test(client, outbox_table)
{
	struct outbox_fixture o;
	char out[16384];
	struct fake f;
	int rc;

	s_outbox_fixture(&o);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "outbox");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert(strncmp(out, "EVENT ID", 8) == 0, "%s", out);
	cr_assert(strstr(out, ID_A) && strstr(out, ID_B), "%s", out);
	cr_assert(strstr(out, "delivered") && strstr(out, "rejected") &&
	    strstr(out, "bad_signature") &&
	    strstr(out, "2027-01-01T00:00:00.000Z"), "%s", out);
	fake_free(&f);
}

/*
 * An answer shorter than asked that says `more` is paged on, after the
 * last item's seq, for what is still wanted; one that says no more ends
 * the list.  From a daemon that never says (older), the client pages on
 * until an answer holds no items.
 */
Test(client, outbox_pages_on_while_the_daemon_says_more)
{
	struct outbox_fixture o, end;
	const Kp__Response *seq[2];
	Kp__OutboxItem *second[1];
	char out[16384];
	json_t *j;
	struct fake f;
	Kp__Request *q;

	s_outbox_fixture(&o);
	s_outbox_fixture(&end);
	o.list.more = 1;                /* 2 of the 5 asked, more follow */
	o.b.has_seq = 1;
	o.b.seq = 7;
	second[0] = &end.a;             /* then 1, and the end */
	end.list.n_items = 1;
	end.list.items = second;
	seq[0] = &o.r;
	seq[1] = &end.r;
	fake_start_seq(&f, seq, 2);
	j = client_json_out(client_run(out, sizeof(out), "outbox --json "
	    "--limit 5 --api %s", f.endpoint), out);
	fake_stop(&f);
	cr_assert_eq(json_array_size(j), 3, "%s", out);
	json_decref(j);
	cr_assert_eq(f.n, 2, "%d requests", f.n);
	q = fake_request(&f, 1);
	cr_assert(q->outbox->has_after_seq && q->outbox->after_seq == 7);
	cr_assert(q->outbox->has_limit && q->outbox->limit == 3);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);

	/* an older daemon: no `more`; its empty answer is the end */
	o.list.has_more = o.list.more = 0;
	end.list.has_more = 0;
	end.list.n_items = 0;
	fake_start_seq(&f, seq, 2);
	j = client_json_out(client_run(out, sizeof(out), "outbox --json "
	    "--limit 5 --api %s", f.endpoint), out);
	fake_stop(&f);
	cr_assert_eq(json_array_size(j), 2, "%s", out);
	json_decref(j);
	cr_assert_eq(f.n, 2, "%d requests", f.n);
	fake_free(&f);

	/* `more` with no item (the daemon ran out of memory): an error, not
	 * a list that looks complete */
	o.list.has_more = o.list.more = 1;
	end.list.has_more = end.list.more = 1;
	fake_start_seq(&f, seq, 2);
	cr_assert_neq(client_run(out, sizeof(out), "outbox --json --limit 5 "
	    "--api %s", f.endpoint), 0, "%s", out);
	fake_stop(&f);
	cr_assert(strstr(out, "list is incomplete") != NULL, "%s", out);
	fake_free(&f);
}

Test(client, outbox_empty)
{
	Kp__OutboxList l = KP__OUTBOX_LIST__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096];
	struct fake f;
	int rc;

	r.has_ok = r.ok = 1;
	r.result_case = KP__RESPONSE__RESULT_OUTBOX;
	r.outbox = &l;
	rc = fake_serve_run(&f, &r, out, sizeof(out), "outbox --json");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert_str_eq(out, "[]\n");
	fake_free(&f);
}

/* ---- inbox, fetch ---- */

struct inbox_fixture {
	Kp__InboxItem a, b, *items[2];
	Kp__InboxList list;
	Kp__Response r;
	uint8_t id_a[16], id_b[16], pseudonym[32], *payload;
};

static void
s_inbox_item(Kp__InboxItem *it, uint8_t *id, uint8_t *payload, size_t len)
{
	Kp__InboxItem init = KP__INBOX_ITEM__INIT;

	*it = init;
	it->has_event_id = 1;
	it->event_id.data = id;
	it->event_id.len = 16;
	it->has_event_type = 1;
	it->event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	it->from_oin = OIN_LEERPLICHT;
	it->has_received_at_ms = 1;
	it->received_at_ms = 1798761600123ull;
	it->has_payload = 1;
	it->payload.data = payload;
	it->payload.len = len;
	it->purpose = "mas";
}

/* Two items; free o->payload when done. */
static void
s_inbox_fixture(struct inbox_fixture *o)
{
	Kp__InboxList l = KP__INBOX_LIST__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	size_t len;

	s_id(ID_A, o->id_a);
	s_id(ID_B, o->id_b);
	cr_assert(kp_unhex(CASE_PSEUDONYM_HEX, o->pseudonym, 32) == 0);
	s_example_packed("referral", &o->payload, &len);
	s_inbox_item(&o->a, o->id_a, o->payload, len);
	o->a.case_ref = "HALT-77";
	o->a.has_acknowledged = 1;
	o->a.acknowledged = 1;
	s_inbox_item(&o->b, o->id_b, o->payload, len);
	o->b.has_case_pseudonym = 1;
	o->b.case_pseudonym.data = o->pseudonym;
	o->b.case_pseudonym.len = 32;
	o->b.has_in_reply_to = 1;
	o->b.in_reply_to.data = o->id_a;
	o->b.in_reply_to.len = 16;
	o->items[0] = &o->a;
	o->items[1] = &o->b;
	o->list = l;
	o->list.n_items = 2;
	o->list.items = o->items;
	o->list.has_more = 1;          /* a daemon that says so: the end */
	o->r = r;
	o->r.has_ok = o->r.ok = 1;
	o->r.result_case = KP__RESPONSE__RESULT_INBOX;
	o->r.inbox = &o->list;
}

/* The payload member equals the example file, as JSON. */
static void
s_check_payload(const json_t *item)
{
	char path[4096];
	json_error_t je;
	json_t *want = json_load_file(s_example("referral", path,
	    sizeof(path)), 0, &je);
	const json_t *p = json_object_get(item, "payload");

	cr_assert(json_is_object(p), "payload is not an object");
	cr_assert(json_equal(p, want), "payload differs from %s", path);
	cr_assert_str_eq(client_jstr(p, "route"), "halt");
	json_decref(want);
}

Test(client, inbox_json)
{
	struct inbox_fixture o;
	char out[16384];
	json_t *j, *a, *b;
	struct fake f;
	Kp__Request *q;

	s_inbox_fixture(&o);
	j = client_json_out(fake_serve_run(&f, &o.r, out, sizeof(out), "inbox --all "
	    "--json"), out);
	free(o.payload);
	cr_assert(json_is_array(j) && json_array_size(j) == 2, "%s", out);
	a = json_array_get(j, 0);
	b = json_array_get(j, 1);
	cr_assert_str_eq(client_jstr(a, "event_id"), ID_A);
	cr_assert_str_eq(client_jstr(a, "event_type"), "referral");
	cr_assert_str_eq(client_jstr(a, "from_oin"), OIN_LEERPLICHT);
	cr_assert_str_eq(client_jstr(a, "case_ref"), "HALT-77");
	cr_assert(json_is_true(json_object_get(a, "acknowledged")));
	cr_assert_str_eq(client_jstr(a, "received_at"), "2027-01-01T00:00:00.123Z");
	s_check_payload(a);
	s_check_payload(b);
	cr_assert_str_eq(client_jstr(b, "case_pseudonym"), CASE_PSEUDONYM_HEX);
	cr_assert_str_eq(client_jstr(b, "in_reply_to"), ID_A);
	json_decref(j);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_INBOX);
	cr_assert(q->inbox->has_all && q->inbox->all);
	/* no --limit: the default, stated, since the client pages up to it */
	cr_assert(q->inbox->has_limit && q->inbox->limit == 1000);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
}

Test(client, inbox_table)
{
	struct inbox_fixture o;
	char out[16384];
	struct fake f;
	int rc;

	s_inbox_fixture(&o);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "inbox");
	free(o.payload);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert(strncmp(out, "EVENT ID", 8) == 0, "%s", out);
	cr_assert(strstr(out, "HALT-77") != NULL, "%s", out);
	cr_assert(strstr(out, "a1b2c3d4e5f6 ") != NULL, "pseudonym: %s", out);
	cr_assert(strstr(out, "{\"route\":\"halt\",\"referral_kind\":"
	    "\"halt_pv\"") != NULL, "compact payload: %s", out);
	cr_assert(strstr(out, "yes") && strstr(out, "no "), "%s", out);
	fake_free(&f);
}

/* A payload that is not its event type shows as null plus the reason. */
Test(client, inbox_undecodable_payload)
{
	struct inbox_fixture o;
	char out[16384];
	json_t *j, *a;
	struct fake f;

	s_inbox_fixture(&o);
	o.a.event_type = KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION;
	o.list.n_items = 1;
	j = client_json_out(fake_serve_run(&f, &o.r, out, sizeof(out), "inbox "
	    "--json"), out);
	free(o.payload);
	a = json_array_get(j, 0);
	cr_assert(json_is_null(json_object_get(a, "payload")), "%s", out);
	cr_assert(json_is_string(json_object_get(a, "payload_error")), "%s",
	    out);
	json_decref(j);
	fake_free(&f);
}

Test(client, fetch_prints_one_item)
{
	struct inbox_fixture o;
	Kp__Response r = KP__RESPONSE__INIT;
	char out[16384];
	json_t *j;
	struct fake f;
	Kp__Request *q;

	s_inbox_fixture(&o);
	r.has_ok = r.ok = 1;
	r.result_case = KP__RESPONSE__RESULT_ITEM;
	r.item = &o.b;
	j = client_json_out(fake_serve_run(&f, &r, out, sizeof(out), "fetch %s",
	    ID_B), out);
	free(o.payload);
	cr_assert(json_is_object(j), "not a JSON object: %s", out);
	cr_assert_str_eq(client_jstr(j, "event_id"), ID_B);
	s_check_payload(j);
	json_decref(j);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_FETCH);
	cr_assert(q->fetch->has_event_id && q->fetch->event_id.len == 16);
	cr_assert(memcmp(q->fetch->event_id.data, o.id_b, 16) == 0);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
}

/* ---- ack, status ---- */

Test(client, ack_prints_the_count)
{
	Kp__AckResponse ar = KP__ACK_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	uint8_t a[16], b[16];
	char out[4096];
	struct fake f;
	Kp__Request *q;
	int rc;

	ar.has_acknowledged = 1;
	ar.acknowledged = 2;
	r.has_ok = r.ok = 1;
	r.result_case = KP__RESPONSE__RESULT_ACK;
	r.ack = &ar;
	fake_start(&f, &r);
	rc = client_run(out, sizeof(out), "ack --api %s %s %s", f.endpoint, ID_A,
	    ID_B);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert_str_eq(out, "acknowledged 2\n");
	rc = client_run(out, sizeof(out), "ack --api %s %s not-an-id", f.endpoint,
	    ID_A);
	cr_assert_eq(rc, 2, "bad id: exit %d: %s", rc, out);
	cr_assert(strstr(out, "'not-an-id' is not an event id"), "%s", out);
	rc = client_run(out, sizeof(out), "ack --api %s", f.endpoint);
	cr_assert_eq(rc, 2, "no id: exit %d: %s", rc, out);
	fake_stop(&f);
	cr_assert_eq(f.n, 1);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_ACK);
	cr_assert_eq(q->ack->n_event_ids, 2);
	s_id(ID_A, a);
	s_id(ID_B, b);
	cr_assert(memcmp(q->ack->event_ids[0].data, a, 16) == 0);
	cr_assert(memcmp(q->ack->event_ids[1].data, b, 16) == 0);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
}

static void
s_status_response(Kp__StatusResponse *s, Kp__Response *r)
{
	s->oin = OIN_LEERPLICHT;
	s->role = "leerplicht";
	s->name = "Gemeente Test";
	s->version = "0.1.0";
	s->has_partners = 1; s->partners = 4;
	s->has_outbox_pending = 1; s->outbox_pending = 3;
	s->has_outbox_delivered = 1; s->outbox_delivered = 10;
	s->has_inbox_total = 1; s->inbox_total = 7;
	s->has_uptime_ms = 1; s->uptime_ms = 90061000;
	r->has_ok = r->ok = 1;
	r->result_case = KP__RESPONSE__RESULT_STATUS;
	r->status = s;
}

Test(client, status_json_and_text)
{
	Kp__StatusResponse s = KP__STATUS_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096];
	json_t *j;
	struct fake f;
	Kp__Request *q;
	int rc;

	s_status_response(&s, &r);
	j = client_json_out(fake_serve_run(&f, &r, out, sizeof(out), "status --json"),
	    out);
	cr_assert_str_eq(client_jstr(j, "oin"), OIN_LEERPLICHT);
	cr_assert_eq(json_integer_value(json_object_get(j, "outbox_pending")),
	    3);
	json_decref(j);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_STATUS);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
	rc = fake_serve_run(&f, &r, out, sizeof(out), "status");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "Gemeente Test") && strstr(out, "1d 01:01:01") &&
	    strstr(out, "3 pending, 10 delivered"), "%s", out);
	fake_free(&f);
}

/* --api, $KETENPOST_API, --config and $KETENPOST_CONFIG all find it. */
Test(client, finds_the_daemon_four_ways)
{
	Kp__StatusResponse s = KP__STATUS_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096], conf[1024], text[2048];
	struct fake f;
	int rc;

	s_status_response(&s, &r);
	fake_start(&f, &r);
	snprintf(conf, sizeof(conf), "%s/ketenpostd.conf", f.dir);
	snprintf(text, sizeof(text), "[ketenpostd]\nchain_dir = %s\n"
	    "org = %s\nlisten = tcp://127.0.0.1:7001\nstate_dir = %s\n",
	    test_chain(), OIN_LEERPLICHT, f.dir);
	s_write(conf, text);
	chmod(conf, 0600);
	rc = test_sh_output(out, sizeof(out), "KETENPOST_API=%s %s/ketenpost "
	    "status", f.endpoint, test_bin());
	cr_assert_eq(rc, 0, "KETENPOST_API: exit %d: %s", rc, out);
	rc = client_run(out, sizeof(out), "status --config %s", conf);
	cr_assert_eq(rc, 0, "--config: exit %d: %s", rc, out);
	rc = test_sh_output(out, sizeof(out), "env -u KETENPOST_API "
	    "KETENPOST_CONFIG=%s %s/ketenpost status", conf, test_bin());
	cr_assert_eq(rc, 0, "KETENPOST_CONFIG: exit %d: %s", rc, out);
	rc = client_run(out, sizeof(out), "status --config %s --api %s", conf,
	    f.endpoint);
	cr_assert_eq(rc, 2, "both: exit %d: %s", rc, out);
	rc = client_run(out, sizeof(out), "status --config %s/nothere.conf",
	    f.dir);
	cr_assert_eq(rc, 1, "missing config: exit %d: %s", rc, out);
	cr_assert(strstr(out, "nothere.conf") != NULL, "%s", out);
	fake_stop(&f);
	cr_assert_eq(f.n, 3);
	fake_free(&f);
}

/* The hint names the systemd instance after the config file. */
Test(client, no_answer_hint_names_the_instance)
{
	char out[4096], dir[512], conf[1024], text[2048];
	int rc;

	test_tmpdir(dir, sizeof(dir));
	snprintf(conf, sizeof(conf), "%s/gemeente.conf", dir);
	snprintf(text, sizeof(text), "[ketenpostd]\nchain_dir = %s\n"
	    "org = %s\nlisten = tcp://127.0.0.1:7001\nstate_dir = %s\n",
	    test_chain(), OIN_LEERPLICHT, dir);
	s_write(conf, text);
	chmod(conf, 0600);
	rc = client_run(out, sizeof(out), "outbox --config %s --timeout 1", conf);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "within 1 s") &&
	    strstr(out, "'systemctl status ketenpostd@gemeente')"), "%s", out);
	test_sh("rm -rf '%s'", dir);
}

Test(client, every_command_has_help)
{
	static const char *cmds[] = { "send", "outbox", "inbox", "fetch",
	    "ack", "status" };
	char out[8192];
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cr_assert_eq(client_run(out, sizeof(out), "%s --help", cmds[i]), 0,
		    "%s --help", cmds[i]);
		cr_assert(strncmp(out, "usage: ketenpost ", 17) == 0, "%s",
		    out);
	}
}
