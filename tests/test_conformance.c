/*
 * test_conformance.c: the conformance vectors of docs/PROTOCOL.md §14
 * (docs/conformance/vectors.json) against real daemons.
 *
 * First the document itself: tools/kpvectors must reproduce it byte for
 * byte from the source tree (so the vectors always match this policy and
 * these schemas).  Then a chain is laid out from the document alone (its
 * certificates, CRL and seeds; the policy file of the source tree, whose
 * hash the document states), the receivers run as real ketenpostd
 * processes with their clock at the document's `clock_ms`, and every
 * vector's frame (a single envelope, or a pack of them, §13.1) is sent
 * on a CURVE connection of its own as its `connect_as` organisation.
 * Every receipt must verify and say what `expect` says, or for a pack
 * what `expect_items` says of the item it answers; the connection
 * announces no X-Kp-Pack, so every receipt comes back in a 0x02 frame.
 * A second implementation of a receiver can be checked the same way.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <zmq.h>

#include "chain.h"
#include "common.h"
#include "daemons.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "pack.h"
#include "util.h"

TestSuite(conformance, .init = test_init, .timeout = 120);

struct run {
	char dir[512];                 /* the test's folder */
	char chain[600];
	json_t *doc;
	td_org_t receivers[2];
	size_t n_receivers;
	void *ctx;
	uint8_t (*digests)[32];        /* receipt digest per vector ... */
	bool *have;                    /* ... of those with one expect */
};

/* The most receipts one frame may get: one per item of a pack, and one
 * more to see a receipt too many. */
#define RECEIPTS_MAX (KP_PACK_ITEMS_MAX + 1)

static json_t *
s_org(const struct run *r, const char *oin)
{
	json_t *orgs = json_object_get(json_object_get(r->doc, "trust"),
	    "orgs"), *o;
	size_t i;

	json_array_foreach(orgs, i, o)
		if (strcmp(json_string_value(json_object_get(o, "oin")), oin) == 0)
			return o;
	cr_assert_fail("no org %s in the vectors", oin);
	return NULL;
}

static uint8_t
s_byte(const json_t *o, const char *key)
{
	return (uint8_t)json_integer_value(json_object_get(o, key));
}

static void
s_write(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
}

/* A PKCS#8 PEM private key of type from 32 × byte. */
static void
s_key(const char *path, int type, uint8_t byte)
{
	uint8_t raw[32];
	EVP_PKEY *k;
	FILE *f;

	memset(raw, byte, 32);
	cr_assert_not_null(k = EVP_PKEY_new_raw_private_key(type, NULL, raw,
	    32));
	cr_assert_not_null(f = fopen(path, "w"));
	cr_assert_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	EVP_PKEY_free(k);
	cr_assert_eq(chmod(path, 0600), 0);
}

/* The chain folder, from the document alone (and the policy file). */
static void
s_lay_out(struct run *r)
{
	const json_t *t = json_object_get(r->doc, "trust"), *o;
	char p[900], *policy;
	uint8_t h[32];
	char hex[65];
	size_t i;

	snprintf(r->chain, sizeof(r->chain), "%s/chain", r->dir);
	snprintf(p, sizeof(p), "%s/orgs", r->chain);
	cr_assert_eq(test_sh("mkdir -p %s", p), 0);
	snprintf(p, sizeof(p), "%s/ca.crt", r->chain);
	s_write(p, json_string_value(json_object_get(t, "ca_certificate")),
	    0644);
	snprintf(p, sizeof(p), "%s/crl.pem", r->chain);
	s_write(p, json_string_value(json_object_get(t, "crl")), 0644);
	policy = test_doc_load("policy/mas.ini");
	cr_assert(crypto_generichash(h, 32, (uint8_t *)policy, strlen(policy),
	    NULL, 0) == 0);
	kp_hex(h, 32, hex);
	cr_assert_str_eq(hex, json_string_value(json_object_get(r->doc,
	    "policy_hash")), "policy/mas.ini is not the vectors' policy");
	snprintf(p, sizeof(p), "%s/policy.ini", r->chain);
	s_write(p, policy, 0644);
	free(policy);
	json_array_foreach(json_object_get(t, "orgs"), i, o) {
		const char *oin = json_string_value(json_object_get(o, "oin"));

		if (json_object_get(o, "certificate") == NULL)
			continue;       /* not in the chain */
		snprintf(p, sizeof(p), "%s/orgs/%s", r->chain, oin);
		cr_assert_eq(mkdir(p, 0700), 0);
		snprintf(p, sizeof(p), "%s/orgs/%s/cert.pem", r->chain, oin);
		s_write(p, json_string_value(json_object_get(o, "certificate")),
		    0644);
		snprintf(p, sizeof(p), "%s/orgs/%s/sign.key", r->chain, oin);
		s_key(p, EVP_PKEY_ED25519, s_byte(o, "sign_seed_byte"));
		snprintf(p, sizeof(p), "%s/orgs/%s/transport.key", r->chain, oin);
		s_key(p, EVP_PKEY_X25519, s_byte(o, "transport_sk_byte"));
		snprintf(p, sizeof(p), "%s/orgs/%s/payload.key", r->chain, oin);
		s_key(p, EVP_PKEY_X25519, s_byte(o, "payload_sk_byte"));
	}
}

static td_org_t *
s_receiver(struct run *r, const char *oin_in)
{
	char oin[21], dir[512];
	size_t i;
	td_org_t *o;
	FILE *f;

	snprintf(oin, sizeof(oin), "%s", oin_in);
	snprintf(dir, sizeof(dir), "%s", r->dir);
	for (i = 0; i < r->n_receivers; i++)
		if (strcmp(r->receivers[i].oin, oin) == 0)
			return &r->receivers[i];
	cr_assert(r->n_receivers < 2);
	o = &r->receivers[r->n_receivers++];
	memset(o, 0, sizeof(*o));
	snprintf(o->oin, sizeof(o->oin), "%s", oin);
	snprintf(o->listen, sizeof(o->listen), "tcp://127.0.0.1:%d",
	    12000 + (int)((unsigned)getpid() % 900) * 2 + (int)r->n_receivers);
	snprintf(o->conf, sizeof(o->conf), "%s/%s.conf", dir, oin);
	snprintf(o->log, sizeof(o->log), "%s/%s.log", dir, oin);
	snprintf(o->api, sizeof(o->api), "ipc://%s/st-%s/api.sock", dir, oin);
	cr_assert_not_null(f = fopen(o->conf, "w"));
	fprintf(f, "[ketenpostd]\nchain_dir = %s\norg = %s\nlisten = %s\n"
	    "state_dir = %s/st-%s\n", r->chain, oin, o->listen, dir, oin);
	fclose(f);
	td_start(o);
	return o;
}

/* The receipts one vector's frame got back, in arrival order. */
struct answer {
	uint8_t *rc[RECEIPTS_MAX];     /* receipt bodies (malloc'd) */
	size_t len[RECEIPTS_MAX];
	size_t n;
	size_t junk;                   /* frames that were no receipt(s) */
	size_t packs;                  /* receipt packs (0x04) among them */
	char announced[16];            /* the receiver's X-Kp-Pack ("": none) */
};

static void
s_answer_add(struct answer *a, const uint8_t *b, size_t len)
{
	if (a->n == RECEIPTS_MAX) {
		a->junk++;
		return;
	}
	cr_assert_not_null(a->rc[a->n] = malloc(len + 1));
	memcpy(a->rc[a->n], b, len);
	a->len[a->n++] = len;
}

/* One message from the receiver: a receipt (0x02) or a pack of them
 * (0x04).  This player announces no X-Kp-Pack, so a 0x04 is owed to it
 * never (§13.1) and s_check fails it; its receipts are still taken, so
 * the report says whether they were right otherwise. */
static void
s_answer_take(struct answer *a, const uint8_t *m, size_t len)
{
	pack_item_t items[KP_PACK_ITEMS_MAX];
	size_t n, i;

	if (len >= 1 && m[0] == 0x02) {
		s_answer_add(a, m + 1, len - 1);
	} else if (len >= 1 && m[0] == 0x04 && pack_parse(m + 1, len - 1,
	    items, KP_PACK_ITEMS_MAX, &n) == 0) {
		a->packs++;
		for (i = 0; i < n; i++)
			s_answer_add(a, m + 1 + items[i].off, items[i].len);
	} else
		a->junk++;
}

static void
s_answer_free(struct answer *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->rc[i]);
	a->n = 0;
}

/* A DEALER to o as organisation `as`, as a partner's daemon connects
 * (without announcing X-Kp-Pack). */
static void *
s_connect(struct run *r, const char *as, const td_org_t *o)
{
	const json_t *a = s_org(r, as), *to = s_org(r, o->oin);
	uint8_t sk[32], pk[32], server[32];
	void *s = zmq_socket(r->ctx, ZMQ_DEALER);
	int zero = 0;

	memset(sk, s_byte(a, "transport_sk_byte"), 32);
	cr_assert(crypto_scalarmult_base(pk, sk) == 0);
	cr_assert(sodium_hex2bin(server, 32, json_string_value(json_object_get(
	    to, "transport_pk")), 64, NULL, NULL, NULL) == 0);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, 32), 0);
	cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pk, 32), 0);
	cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sk, 32), 0);
	cr_assert_eq(zmq_connect(s, o->listen), 0);
	return s;
}

/* Receive into a until it holds want receipts, and what the receiver
 * announced in its handshake; each wait for a message ends after ms.
 * false: a wait ended with nothing. */
static bool
s_receive(void *s, struct answer *a, size_t want, int ms)
{
	zmq_pollitem_t pi = { s, 0, ZMQ_POLLIN, 0 };
	const char *prop;
	zmq_msg_t m;

	while (a->n < want) {
		if (zmq_poll(&pi, 1, ms) <= 0)
			return false;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) >= 0) {
			prop = zmq_msg_gets(&m, KP_PACK_PROPERTY);
			snprintf(a->announced, sizeof(a->announced), "%s",
			    prop != NULL ? prop : "");
			s_answer_take(a, zmq_msg_data(&m), zmq_msg_size(&m));
		}
		zmq_msg_close(&m);
	}
	return true;
}

/* Send one frame, type || env, as `as` to o, and collect the receipts
 * that answer it: want of them, then for a pack whatever else comes in a
 * short while (a receipt too many, e.g. for the items of a pack refused
 * as a whole, can only be seen by waiting for it). */
static void
s_exchange(struct run *r, const char *as, const td_org_t *o, uint8_t type,
    const uint8_t *env, size_t len, size_t want, struct answer *a)
{
	void *s = s_connect(r, as, o);
	uint8_t *frame = malloc(len + 1);

	cr_assert_not_null(frame);
	frame[0] = type;
	if (len > 0)
		memcpy(frame + 1, env, len);
	cr_assert(zmq_send(s, frame, len + 1, 0) >= 0);
	if (s_receive(s, a, want, 5000) && type != 0x01)
		(void)s_receive(s, a, want + 1, 300);
	zmq_close(s);
	free(frame);
}

/* The envelope bytes of a vector.  OUT: *len. */
static uint8_t *
s_envelope(const json_t *v, size_t *len)
{
	const json_t *fill = json_object_get(v, "envelope_fill");
	const char *hex;
	uint8_t *b;

	if (fill != NULL) {
		*len = (size_t)json_integer_value(json_object_get(fill, "count"));
		cr_assert_not_null(b = malloc(*len));
		memset(b, (int)json_integer_value(json_object_get(fill, "byte")),
		    *len);
		return b;
	}
	hex = json_string_value(json_object_get(v, "envelope"));
	cr_assert_not_null(hex);
	cr_assert_not_null(b = malloc(strlen(hex) / 2 + 1));
	cr_assert(sodium_hex2bin(b, strlen(hex) / 2, hex, strlen(hex), NULL,
	    len, NULL) == 0);
	return b;
}

static int
s_reason(const char *name)
{
	char full[64];
	const ProtobufCEnumValue *e;
	size_t i;

	snprintf(full, sizeof(full), "REASON_%s", name);
	for (i = 7; full[i] != '\0'; i++)
		if (full[i] >= 'a' && full[i] <= 'z')
			full[i] = (char)(full[i] - 32);
	e = protobuf_c_enum_descriptor_get_value_by_name(&kp__reason__descriptor,
	    full);
	cr_assert_not_null(e, "unknown reason %s", name);
	return e->value;
}

/* A line "what: problem" appended to out. */
static void __attribute__((format(printf, 4, 5)))
s_fail(char *out, size_t len, const char *what, const char *fmt, ...)
{
	size_t at = strlen(out);
	va_list ap;

	snprintf(out + at, len - at, "%s: ", what);
	at = strlen(out);
	va_start(ap, fmt);
	vsnprintf(out + at, len - at, fmt, ap);
	va_end(ap);
	at = strlen(out);
	snprintf(out + at, len - at, "\n");
}

/* Whether the verified receipt rcpt from o says what expectation x says;
 * a line per difference into out, under the label `what`. */
static bool
s_fields(struct run *r, size_t idx, const char *what, const json_t *x,
    const receipt_t *rcpt, const td_org_t *o, char *out, size_t len)
{
	const char *want_id = json_string_value(json_object_get(x, "event_id"));
	const char *same = json_string_value(json_object_get(x,
	    "same_receipt_as"));
	const char *reason = json_string_value(json_object_get(x, "reason"));
	char hex[65], id[33];
	size_t problems = 0, i;
	json_t *w;

#define FAIL(...) (problems++, s_fail(out, len, what, __VA_ARGS__))
	if (strcmp(json_string_value(json_object_get(x, "status")),
	    rcpt->status == KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED ?
	    "accepted" : "rejected") != 0)
		FAIL("status %d", rcpt->status);
	if (rcpt->reason != s_reason(reason))
		FAIL("reason %d, expected %s", rcpt->reason, reason);
	if ((want_id != NULL) != rcpt->has_event_id)
		FAIL("event_id %s, expected %s", rcpt->has_event_id ? "present" :
		    "absent", want_id ? "present" : "absent");
	kp_hex(rcpt->event_id, 16, id);
	if (want_id != NULL && rcpt->has_event_id && strcmp(id, want_id) != 0)
		FAIL("event_id %s, expected %s", id, want_id);
	kp_hex(rcpt->envelope_digest, 32, hex);
	if (strcmp(hex, json_string_value(json_object_get(x,
	    "envelope_digest"))) != 0)
		FAIL("envelope_digest %s", hex);
	if ((json_int_t)rcpt->received_at_ms != json_integer_value(
	    json_object_get(x, "received_at_ms")))
		FAIL("received_at_ms %llu", (unsigned long long)
		    rcpt->received_at_ms);
	if (strcmp(rcpt->issuer_oin, o->oin) != 0)
		FAIL("issuer %s", rcpt->issuer_oin);
	/* same_receipt_as names an earlier vector with a single expect */
	json_array_foreach(json_object_get(r->doc, "vectors"), i, w)
		if (same != NULL && i < idx && strcmp(json_string_value(
		    json_object_get(w, "name")), same) == 0)
			break;
	if (same != NULL && i >= idx)
		FAIL("same_receipt_as %s: no such earlier vector", same);
	else if (same != NULL && !r->have[i])
		FAIL("same_receipt_as %s: it has no one receipt to compare", same);
	else if (same != NULL && memcmp(r->digests[i], rcpt->digest, 32) != 0)
		FAIL("not the receipt of %s", same);
#undef FAIL
	return problems == 0;
}

/* Verify one receipt as `as`, its partner, would.  OUT: *rcpt. */
static bool
s_verify(struct run *r, const char *as, const char *what,
    const uint8_t *rc, size_t rlen, receipt_t *rcpt, char *out, size_t len)
{
	chain_t *ch = NULL;
	kp_err_t e;
	bool ok;

	cr_assert(chain_open_oin(r->chain, as, NULL, NULL, &ch, &e) == 0, "%s",
	    e.msg);
	ok = receipt_verify(ch->dir, rc, rlen, rcpt, &e) == 0;
	if (!ok)
		s_fail(out, len, what, "receipt does not verify: %s", e.msg);
	chain_close(&ch);
	return ok;
}

/* The first item not done[] whose envelope_digest is hex; SIZE_MAX if
 * none. */
static size_t
s_match(const json_t *items, const bool *done, const char *hex)
{
	const json_t *x;
	size_t k;

	json_array_foreach(items, k, x)
		if (!done[k] && strcmp(hex, json_string_value(json_object_get(x,
		    "envelope_digest"))) == 0)
			return k;
	return SIZE_MAX;
}

/* A vector's expect_items against the receipts a: each receipt matched
 * to the item whose envelope digest it names (receipts may come in any
 * order, §13; the items of a vector have distinct digests). */
static bool
s_check_items(struct run *r, size_t idx, const json_t *v,
    const struct answer *a, const td_org_t *o, char *out, size_t len)
{
	const json_t *items = json_object_get(v, "expect_items"), *x;
	const char *name = json_string_value(json_object_get(v, "name"));
	const char *as = json_string_value(json_object_get(v, "connect_as"));
	bool done[RECEIPTS_MAX] = { false }, ok = true;
	char what[128], hex[65];
	receipt_t rcpt;
	size_t i, k;

	cr_assert(json_array_size(items) <= RECEIPTS_MAX);
	for (i = 0; i < a->n; i++) {
		snprintf(what, sizeof(what), "%s, receipt %zu", name, i);
		if (!s_verify(r, as, what, a->rc[i], a->len[i], &rcpt, out, len)) {
			ok = false;
			continue;
		}
		kp_hex(rcpt.envelope_digest, 32, hex);
		if ((k = s_match(items, done, hex)) == SIZE_MAX) {
			s_fail(out, len, what, "answers no item (digest %s)", hex);
			ok = false;
			continue;
		}
		done[k] = true;
		snprintf(what, sizeof(what), "%s, item %zu", name, k);
		ok = s_fields(r, idx, what, json_array_get(items, k), &rcpt, o,
		    out, len) && ok;
	}
	json_array_foreach(items, k, x)
		if (!done[k]) {
			snprintf(what, sizeof(what), "%s, item %zu", name, k);
			s_fail(out, len, what, "no receipt");
			ok = false;
		}
	return ok;
}

/* Whether a receiver that announced `value` reads the packs the vectors
 * hold: it must have announced pack_items (§14). */
static bool
s_announced_ok(const struct run *r, const char *value)
{
	char want[24];

	snprintf(want, sizeof(want), "%lld", (long long)json_integer_value(
	    json_object_get(r->doc, "pack_items")));
	return strcmp(value, want) == 0;
}

/* One vector; a line per problem into out.  true if it passed. */
static bool
s_check(struct run *r, size_t idx, const json_t *v, char *out, size_t len)
{
	const json_t *x = json_object_get(v, "expect");
	const json_t *items = json_object_get(v, "expect_items");
	const json_t *ft = json_object_get(v, "frame_type");
	const char *name = json_string_value(json_object_get(v, "name"));
	const char *as = json_string_value(json_object_get(v, "connect_as"));
	td_org_t *o = s_receiver(r, json_string_value(json_object_get(v,
	    "receiver")));
	size_t want = items != NULL ? json_array_size(items) : 1, elen;
	struct answer a = { .n = 0 };
	receipt_t rcpt;
	uint8_t *env;
	bool ok;

	cr_assert((x != NULL) != (items != NULL), "%s: expect or expect_items",
	    name);
	env = s_envelope(v, &elen);
	s_exchange(r, as, o, ft != NULL ? (uint8_t)json_integer_value(ft) :
	    0x01, env, elen, want, &a);
	free(env);
	ok = a.junk == 0 && a.packs == 0 && a.n <= want;
	if (a.junk > 0)
		s_fail(out, len, name, "%zu frames that are no receipt", a.junk);
	if (a.packs > 0)
		s_fail(out, len, name, "%zu receipt packs (0x04) to a client that "
		    "announced no X-Kp-Pack (13.1)", a.packs);
	if (ft != NULL && a.n > 0 && !s_announced_ok(r, a.announced)) {
		s_fail(out, len, name, "the receiver announced X-Kp-Pack \"%s\", "
		    "the pack vectors are for pack_items %lld", a.announced,
		    (long long)json_integer_value(json_object_get(r->doc,
		    "pack_items")));
		ok = false;
	}
	if (a.n > want)
		s_fail(out, len, name, "%zu receipts, expected %zu", a.n, want);
	if (items != NULL) {
		ok = s_check_items(r, idx, v, &a, o, out, len) && ok;
	} else if (a.n == 0) {
		s_fail(out, len, name, "no receipt");
		ok = false;
	} else if (s_verify(r, as, name, a.rc[0], a.len[0], &rcpt, out, len)) {
		memcpy(r->digests[idx], rcpt.digest, 32);
		r->have[idx] = true;
		ok = s_fields(r, idx, name, x, &rcpt, o, out, len) && ok;
	} else
		ok = false;
	s_answer_free(&a);
	return ok;
}

Test(conformance, the_document_is_what_the_generator_makes)
{
	size_t room = 1 << 20;     /* the document is some 55 kB */
	char *out = malloc(room);
	char *doc = test_doc_load("docs/conformance/vectors.json");

	cr_assert_not_null(out);
	cr_assert_eq(test_sh_output(out, room, "%s/kpvectors --source %s",
	    test_bin(), test_source_dir()), 0, "%s", out);
	cr_assert_lt(strlen(out), room - 1, "kpvectors wrote more than %zu "
	    "bytes", room);
	cr_assert_str_eq(out, doc, "docs/conformance/vectors.json is out of "
	    "date: regenerate it with `build/bin/kpvectors > "
	    "docs/conformance/vectors.json` and review the diff");
	free(doc);
	free(out);
}

Test(conformance, every_vector_against_real_daemons)
{
	struct run r;
	char clock[700], problems[16384] = "";
	json_t *v;
	size_t i, n, passed = 0, failed = 0;
	char *text = test_doc_load("docs/conformance/vectors.json");
	FILE *f;

	memset(&r, 0, sizeof(r));
	cr_assert_not_null(r.doc = json_loads(text, 0, NULL));
	free(text);
	test_tmpdir(r.dir, sizeof(r.dir));
	s_lay_out(&r);
	snprintf(clock, sizeof(clock), "%s/clock", r.dir);
	cr_assert_not_null(f = fopen(clock, "w"));
	fprintf(f, "%lld\n", (long long)json_integer_value(json_object_get(
	    r.doc, "clock_ms")));
	fclose(f);
	setenv("KETENPOST_CLOCK_FILE", clock, 1);
	r.ctx = zmq_ctx_new();
	n = json_array_size(json_object_get(r.doc, "vectors"));
	cr_assert_not_null(r.digests = calloc(n + 1, 32));
	cr_assert_not_null(r.have = calloc(n + 1, sizeof(bool)));
	json_array_foreach(json_object_get(r.doc, "vectors"), i, v) {
		if (s_check(&r, i, v, problems, sizeof(problems)))
			passed++;
		else
			failed++;
	}
	printf("conformance: %zu passed, %zu failed\n", passed, failed);
	for (i = 0; i < r.n_receivers; i++)
		td_stop(&r.receivers[i]);
	zmq_ctx_term(r.ctx);
	json_decref(r.doc);
	free(r.digests);
	free(r.have);
	cr_assert_eq(failed, 0, "%zu of %zu vectors failed:\n%s", failed,
	    passed + failed, problems);
	cr_assert_geq(passed, 20);
}
