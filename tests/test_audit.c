/*
 * test_audit.c: the audit log's format (lib/auditlog.c) and the auditor's
 * tools (`ketenpost audit ...`, client/audit.c).
 *
 * 1. The format: canonical encoding round trips and its strictness, the
 *    JSON form round trips and its strictness, every field changes the
 *    leaf, tree-head signatures; and the worked example of docs/AUDIT.md
 *    (computed here, compared with the document; KP_PRINT_VECTORS=1
 *    prints it).
 * 2. The tools, on synthetic but realistic logs written through the
 *    daemon's own store (store_audit_append, store_head_put,
 *    store_witness_put) with the test chain's real keys: Leerplicht (A)
 *    sends six referrals to Halt (B), Halt answers three of them; both
 *    sign a head every 4 entries and at the end.  A's log, 19 entries:
 *      0 chain_load  1 policy_load  2 send#0  3 rcpt_rcvd#0
 *      4 rcpt_sent(reply#0)  5 send#1  6 rcpt_rcvd#1  7 send#2  ...
 *      17 refusal_out  18 purge;  heads at 4, 8, 12, 16, 19.
 *    Then the real binary: clean logs verify, each tampering kind is
 *    refused naming the bad entry or head, proofs round trip and tampered
 *    proofs fail, reconcile finds each discrepancy kind, a partner's
 *    witnessed heads expose a rewritten log, report counts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "auditlog.h"
#include "chain.h"
#include "common.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "merkle.h"
#include "store.h"
#include "util.h"

TestSuite(audit, .init = test_init, .timeout = 60);

#define DAY 86400000ull
#define N_EVENTS 6
#define OUT_MAX 65536

/* The store's metadata key (store_open): any 32 bytes in a test. */
static const uint8_t s_meta_key[32] = { 0x42, 0x42, 0x42, 0x42 };

/* ====================================================================== */
/* 1. The format                                                          */
/* ====================================================================== */

static void
s_full_entry(audit_entry_t *e)
{
	memset(e, 0, sizeof(*e));
	e->seq = 7;
	e->time_ms = 1800000000123ull;
	e->kind = AUDIT_SEND;
	e->direction = AUDIT_OUT;
	memcpy(e->own_oin, OIN_LEERPLICHT, 21);
	memcpy(e->partner_oin, OIN_HALT, 21);
	e->has_event_id = true;
	for (int i = 0; i < 16; i++)
		e->event_id[i] = (uint8_t)(0xa0 + i);
	e->event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	strcpy(e->purpose, "mas.referral");
	strcpy(e->legal_basis, "lpw-art-22");
	e->has_policy_hash = e->has_case_pseudonym = true;
	memset(e->policy_hash, 0x77, 32);
	memset(e->case_pseudonym, 0x99, 32);
	strcpy(e->fields, "route,age_years,school_brin");
	e->has_envelope_digest = e->has_receipt_digest = true;
	memset(e->envelope_digest, 0x31, 32);
	memset(e->receipt_digest, 0x32, 32);
	e->reason = KP__REASON__REASON_POLICY_VIOLATION;
}

static size_t
s_enc(const audit_entry_t *e, uint8_t buf[AUDIT_ENTRY_MAX])
{
	size_t n = 0;
	kp_err_t err;

	cr_assert_eq(audit_entry_encode(e, buf, AUDIT_ENTRY_MAX, &n, &err), 0,
	    "encode: %s", err.msg);
	return n;
}

static void
s_leaf_of(const audit_entry_t *e, uint8_t leaf[32])
{
	uint8_t buf[AUDIT_ENTRY_MAX];
	size_t n = s_enc(e, buf);

	cr_assert_eq(merkle_leaf_hash(buf, n, leaf), 0);
}

/* encode -> decode -> JSON -> from_json -> encode gives the same bytes. */
static void
s_round_trip(const audit_entry_t *e)
{
	uint8_t a[AUDIT_ENTRY_MAX], b[AUDIT_ENTRY_MAX];
	audit_entry_t d, f;
	size_t na = s_enc(e, a), nb;
	json_t *j;
	char *text;
	kp_err_t err;

	cr_assert_eq(audit_entry_decode(a, na, &d, &err), 0, "%s", err.msg);
	cr_assert(d.seq == e->seq && d.time_ms == e->time_ms &&
	    d.kind == e->kind && d.reason == e->reason &&
	    strcmp(d.fields, e->fields) == 0 &&
	    strcmp(d.purpose, e->purpose) == 0 &&
	    d.has_event_id == e->has_event_id, "decode differs");
	j = audit_entry_to_json(&d);
	cr_assert_not_null(j);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	j = json_loads(text, 0, NULL);
	cr_assert_eq(audit_entry_from_json(j, &f, &err), 0, "%s: %s", text,
	    err.msg);
	nb = s_enc(&f, b);
	cr_assert(na == nb && memcmp(a, b, na) == 0, "JSON round trip differs: "
	    "%s", text);
	json_decref(j);
	free(text);
}

/* "REASON_UNKNOWN_CASE" -> "unknown_case" (after the prefix). */
static void
s_lower_after(const char *name, const char *prefix, char *out, size_t len)
{
	size_t i;

	cr_assert(strncmp(name, prefix, strlen(prefix)) == 0);
	name += strlen(prefix);
	for (i = 0; name[i] != '\0' && i + 1 < len; i++)
		out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 :
		    name[i]);
	out[i] = '\0';
}

/* A strict reader of AUDIT.md must not refuse a real log: every reason and
 * event type the schema has is listed there. */
Test(audit, audit_md_lists_every_reason_and_event_type)
{
	char *doc = test_doc_load("docs/AUDIT.md");
	char name[64], want[96];
	unsigned i;

	for (i = 1; i < kp__reason__descriptor.n_values; i++) {
		s_lower_after(kp__reason__descriptor.values[i].name, "REASON_",
		    name, sizeof(name));
		snprintf(want, sizeof(want), "`%s`", name);
		cr_assert(strstr(doc, want) != NULL, "docs/AUDIT.md §6 does not "
		    "list reason %s", want);
	}
	for (i = 1; i < kp__event_type__descriptor.n_values; i++) {
		s_lower_after(kp__event_type__descriptor.values[i].name,
		    "EVENT_TYPE_", name, sizeof(name));
		snprintf(want, sizeof(want), "%d %s",
		    kp__event_type__descriptor.values[i].value, name);
		cr_assert(strstr(doc, want) != NULL, "docs/AUDIT.md §1 does not "
		    "list event type '%s'", want);
	}
	free(doc);
}

/* A refusal's rule or an API client (actor) makes the entry version 2;
 * without them it stays version 1, so every entry has one encoding and old
 * logs still verify. */
Test(audit, entry_with_rule_is_version_2)
{
	uint8_t a[AUDIT_ENTRY_MAX], b[AUDIT_ENTRY_MAX];
	audit_entry_t e, d;
	size_t na, nb;
	kp_err_t err;

	s_full_entry(&e);
	nb = s_enc(&e, b);
	cr_assert_eq(b[0], 1);
	strcpy(e.rule, "range:age_years");
	na = s_enc(&e, a);
	cr_assert_eq(a[0], 2);
	cr_assert_eq(na, nb + 2 + strlen("range:age_years") + 2);
	cr_assert_eq(memcmp(a + 1, b + 1, nb - 1), 0, "version 2 extends 1");
	cr_assert_eq(audit_entry_decode(a, na, &d, &err), 0, "%s", err.msg);
	cr_assert_str_eq(d.rule, "range:age_years");
	s_round_trip(&e);
	strcpy(e.actor, "uid:1001");
	s_round_trip(&e);
	e.rule[0] = '\0';
	s_round_trip(&e);
	/* a version 2 entry with neither, or truncated: refused */
	cr_assert_eq(audit_entry_decode(b + 0, nb, &d, &err), 0);
	memcpy(a, b, nb);
	a[0] = 2;
	memset(a + nb, 0, 4);
	cr_assert_eq(audit_entry_decode(a, nb + 4, &d, &err), -1);
	cr_assert_eq(audit_entry_decode(a, nb + 2, &d, &err), -1);
	cr_assert_eq(audit_entry_decode(a, nb, &d, &err), -1);
	a[0] = 3;
	cr_assert_eq(audit_entry_decode(a, nb, &d, &err), -1);
	cr_assert_eq(err.code, KP_ERR_SCHEMA_VERSION);
	/* no value-bearing control bytes in a rule */
	strcpy(e.rule, "range\n");
	cr_assert_eq(audit_entry_encode(&e, a, sizeof(a), &na, &err), -1);
}

Test(audit, entry_round_trips)
{
	audit_entry_t e;

	s_full_entry(&e);
	s_round_trip(&e);
	memset(&e, 0, sizeof(e));
	e.kind = AUDIT_CHAIN_LOAD;
	s_round_trip(&e);
	s_full_entry(&e);
	e.event_type = 200;            /* a type this build does not know */
	e.reason = 4000;
	e.fields[0] = '\0';
	e.has_event_id = false;
	s_round_trip(&e);
	for (int k = 1; k < AUDIT_KIND_MAX; k++) {
		e.kind = k;
		cr_assert_eq(audit_kind_from_name(audit_kind_name(k)), k);
		s_round_trip(&e);
	}
	cr_assert_eq(audit_kind_from_name("sent"), 0);
	cr_assert_str_eq(audit_direction_name(AUDIT_IN), "in");
	cr_assert_str_eq(audit_direction_name(AUDIT_NONE), "none");
}

Test(audit, entry_json_is_as_documented)
{
	audit_entry_t e;
	json_t *j;
	char *text;

	s_full_entry(&e);
	j = audit_entry_to_json(&e);
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	cr_assert_str_eq(text, "{\"type\":\"entry\",\"seq\":7,\"time_ms\":"
	    "1800000000123,\"time\":\"2027-01-15T08:00:00.123Z\",\"kind\":"
	    "\"send\",\"direction\":\"out\",\"own_oin\":\"00000001001234567000\","
	    "\"partner_oin\":\"00000001002345678000\",\"event_id\":"
	    "\"a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf\",\"event_type\":\"referral\","
	    "\"purpose\":\"mas.referral\",\"legal_basis\":\"lpw-art-22\","
	    "\"policy_hash\":\"7777777777777777777777777777777777777777777777777"
	    "777777777777777\",\"case_pseudonym\":\"9999999999999999999999999999"
	    "999999999999999999999999999999999999\",\"fields\":[\"route\","
	    "\"age_years\",\"school_brin\"],\"envelope_digest\":\"313131313131"
	    "3131313131313131313131313131313131313131313131313131\","
	    "\"receipt_digest\":\"32323232323232323232323232323232323232323232"
	    "32323232323232323232\",\"reason\":\"policy_violation\"}");
	free(text);
	json_decref(j);
}

/* Every field of the entry changes its leaf. */
Test(audit, every_field_changes_the_leaf)
{
	audit_entry_t base, e;
	uint8_t l0[32], l1[32];
	int i;

	s_full_entry(&base);
	s_leaf_of(&base, l0);
	for (i = 0; i < 17; i++) {
		e = base;
		switch (i) {
		case 0: e.seq++; break;
		case 1: e.time_ms++; break;
		case 2: e.kind = AUDIT_RECEIPT_SENT; break;
		case 3: e.direction = AUDIT_IN; break;
		case 4: e.own_oin[19] = '1'; break;
		case 5: e.partner_oin[0] = '\0'; break;
		case 6: e.event_id[15] ^= 1; break;
		case 7: e.event_type = 2; break;
		case 8: e.purpose[0] = 'n'; break;
		case 9: strcpy(e.legal_basis, "lpw-art-21"); break;
		case 10: e.has_policy_hash = false; break;
		case 11: e.case_pseudonym[0] ^= 1; break;
		case 12: strcpy(e.fields, "route,age_years"); break;
		case 13: e.envelope_digest[31] ^= 1; break;
		case 14: e.has_receipt_digest = false; break;
		case 15: e.reason = 0; break;
		case 16: e.has_event_id = false; break;
		}
		s_leaf_of(&e, l1);
		cr_assert_neq(memcmp(l0, l1, 32), 0, "field %d does not change "
		    "the leaf", i);
	}
}

static void
s_decode_fails(const uint8_t *b, size_t n, const char *why)
{
	audit_entry_t e;
	kp_err_t err;

	cr_assert_eq(audit_entry_decode(b, n, &e, &err), -1, "accepted: %s",
	    why);
}

Test(audit, decode_is_strict)
{
	audit_entry_t e;
	uint8_t a[AUDIT_ENTRY_MAX + 8], b[AUDIT_ENTRY_MAX + 8];
	size_t n, off;

	s_full_entry(&e);
	n = s_enc(&e, a);
	s_decode_fails(a, n - 1, "truncated");
	a[n] = 0;
	s_decode_fails(a, n + 1, "a trailing byte");
	memcpy(b, a, n);
	b[0] = 2;
	s_decode_fails(b, n, "version 2");
	/* own_oin starts at 19: u8 version, u64 seq, u64 time, u8, u8 */
	off = 1 + 8 + 8 + 1 + 1;
	cr_assert_eq(b[off], 0);
	cr_assert_eq(b[off + 1], 20);
	memcpy(b, a, n);
	b[off + 2] = 'x';
	s_decode_fails(b, n, "an OIN with a letter");
	memcpy(b, a, n);
	b[off + 2 + 5] = '\0';
	s_decode_fails(b, n, "an OIN with a NUL");
	memcpy(b, a, n);
	b[1 + 8 + 8] = 0;
	s_decode_fails(b, n, "kind 0");
	b[1 + 8 + 8] = AUDIT_KIND_MAX;
	s_decode_fails(b, n, "an unknown kind");
	memcpy(b, a, n);
	b[1 + 8 + 8 + 1] = 3;
	s_decode_fails(b, n, "direction 3");
	memcpy(b, a, n);
	b[1] = 0x80;
	s_decode_fails(b, n, "seq above 2^63-1");
	/* event_id: after the two OINs (2 + 20 each) */
	off = 19 + 22 + 22;
	cr_assert_eq(b[off + 1], 16);
	memcpy(b, a, n);
	b[off + 1] = 15;                  /* length 15 */
	memmove(b + off + 2 + 15, a + off + 2 + 16, n - off - 2 - 16);
	s_decode_fails(b, n - 1, "a 15-byte event id");
	/* purpose after event_id and event_type: a control character */
	off += 2 + 16 + 1;
	memcpy(b, a, n);
	b[off + 2] = '\n';
	s_decode_fails(b, n, "a newline in purpose");
	memcpy(b, a, n);
	b[off + 2] = 0x80;
	s_decode_fails(b, n, "a non-ASCII byte in purpose");
	s_decode_fails(a, 0, "nothing");
}

Test(audit, encode_refuses_what_decode_would)
{
	audit_entry_t e;
	uint8_t buf[AUDIT_ENTRY_MAX];
	size_t n = 0;
	kp_err_t err;
	int i;

	for (i = 0; i < 7; i++) {
		s_full_entry(&e);
		switch (i) {
		case 0: strcpy(e.purpose, "mas\treferral"); break;
		case 1: strcpy(e.fields, "route,,age_years"); break;
		case 2: strcpy(e.fields, "route,"); break;
		case 3: strcpy(e.partner_oin, "123"); break;
		case 4: e.kind = 0; break;
		case 5: e.seq = (uint64_t)INT64_MAX + 1; break;
		case 6: e.reason = 70000; break;
		}
		cr_assert_eq(audit_entry_encode(&e, buf, sizeof(buf), &n, &err),
		    -1, "case %d encoded", i);
	}
	s_full_entry(&e);
	cr_assert_eq(audit_entry_encode(&e, buf, 20, &n, &err), -1);
	cr_assert_eq(err.code, KP_ERR_OVERSIZE);
}

static void
s_json_fails(const char *edit_key, json_t *value, const char *why)
{
	audit_entry_t e, f;
	json_t *j;
	kp_err_t err;

	s_full_entry(&e);
	j = audit_entry_to_json(&e);
	if (value != NULL)
		json_object_set_new(j, edit_key, value);
	else
		json_object_del(j, edit_key);
	cr_assert_eq(audit_entry_from_json(j, &f, &err), -1, "accepted: %s",
	    why);
	json_decref(j);
}

Test(audit, from_json_is_strict)
{
	s_json_fails("note", json_string("x"), "an unknown member");
	s_json_fails("time", json_string("2027-01-15T08:00:01.123Z"),
	    "a time that is not time_ms");
	s_json_fails("time", NULL, "no time");
	s_json_fails("seq", NULL, "no seq");
	s_json_fails("seq", json_integer(-1), "a negative seq");
	s_json_fails("reason", NULL, "no reason");
	s_json_fails("reason", json_string("unspecified"), "reason unspecified");
	s_json_fails("kind", json_string("sent"), "an unknown kind");
	s_json_fails("direction", json_string("both"), "an unknown direction");
	s_json_fails("purpose", json_string(""), "an empty purpose");
	s_json_fails("purpose", json_string("caf\xc3\xa9"), "non-ASCII");
	s_json_fails("fields", json_pack("[s]", ""), "an empty field name");
	s_json_fails("fields", json_pack("[s]", "a,b"), "a comma in a name");
	s_json_fails("fields", json_array(), "an empty field list");
	s_json_fails("policy_hash", json_string("77"), "a short hash");
	s_json_fails("policy_hash", json_string("7777777777777777777777777777"
	    "7777777777777777777777777777777777AA"), "uppercase hex");
	s_json_fails("event_id", json_string("A0A1A2A3-A4A5-A6A7-A8A9-"
	    "AAABACADAEAF"), "an uppercase event id");
	s_json_fails("event_type", json_string("referal"), "a misspelt type");
	s_json_fails("own_oin", json_string("0000000100123456700"), "19 digits");
	s_json_fails("type", json_string("tree_head"), "the wrong type");
}

Test(audit, heads_sign_and_verify)
{
	uint8_t pk[32], sk[64], seed[32], tbs[96];
	audit_head_t h, g;
	json_t *j;
	kp_err_t err;

	memset(seed, 0x42, 32);
	crypto_sign_seed_keypair(pk, sk, seed);
	memset(&h, 0, sizeof(h));
	h.size = 19;
	h.time_ms = 1800000000000ull;
	memset(h.root, 0xab, 32);
	cr_assert_eq(audit_head_tbs(&h, OIN_LEERPLICHT, tbs), 90);
	cr_assert_eq(memcmp(tbs, "ketenpost/v1/tree-head", 22), 0);
	cr_assert_eq(memcmp(tbs + 70, OIN_LEERPLICHT, 20), 0);
	cr_assert_eq(audit_head_tbs(&h, "123", tbs), 0);
	cr_assert_eq(audit_head_sign(&h, OIN_LEERPLICHT, sk), 0);
	cr_assert_eq(audit_head_verify(&h, OIN_LEERPLICHT, pk), 0);
	cr_assert_eq(audit_head_verify(&h, OIN_HALT, pk), -1);
	g = h;
	g.size++;
	cr_assert_eq(audit_head_verify(&g, OIN_LEERPLICHT, pk), -1);
	g = h;
	g.time_ms++;
	cr_assert_eq(audit_head_verify(&g, OIN_LEERPLICHT, pk), -1);
	g = h;
	g.root[5] ^= 1;
	cr_assert_eq(audit_head_verify(&g, OIN_LEERPLICHT, pk), -1);
	j = audit_head_to_json(&h);
	cr_assert_eq(audit_head_from_json(j, &g, &err), 0, "%s", err.msg);
	cr_assert_eq(memcmp(&g, &h, sizeof(g)), 0);
	json_object_set_new(j, "time", json_string("2027-01-15T08:00:00Z"));
	cr_assert_eq(audit_head_from_json(j, &g, &err), -1);
	json_decref(j);
}

/* ---- the worked example of docs/AUDIT.md ---- */

static char *s_doc;

static void
s_load_doc(void)
{
	free(s_doc);
	s_doc = test_doc_load("docs/AUDIT.md");
}

static void
s_check(const char *name, const uint8_t *v, size_t len)
{
	test_doc_check(s_doc, "AUDIT.md", "## 13. Worked example", name, v, len);
}

/* The example's three entries, hashed straight from the specification
 * with libsodium (SHA-256), checked against lib/merkle.c too. */
Test(audit, worked_example_matches_the_document)
{
	audit_entry_t e[3];
	uint8_t buf[AUDIT_ENTRY_MAX], leaf[3][32], m[65], n01[32], root[32];
	uint8_t pk[32], sk[64], seed[32], tbs[96], r2[32];
	merkle_t *t = merkle_new();
	audit_head_t h;
	size_t len;
	int i;

	s_load_doc();
	s_full_entry(&e[0]);
	e[0].seq = 0;
	e[0].reason = 0;
	e[0].has_receipt_digest = false;
	memset(&e[1], 0, sizeof(e[1]));
	e[1].seq = 1;
	e[1].time_ms = e[0].time_ms + 1000;
	e[1].kind = AUDIT_POLICY_LOAD;
	memcpy(e[1].own_oin, OIN_LEERPLICHT, 21);
	e[1].has_policy_hash = true;
	memset(e[1].policy_hash, 0x77, 32);
	e[2] = e[0];
	e[2].seq = 2;
	e[2].time_ms += 2000;
	e[2].kind = AUDIT_RECEIPT_RECEIVED;
	e[2].fields[0] = '\0';
	e[2].has_receipt_digest = true;
	for (i = 0; i < 3; i++) {
		char name[32];

		len = s_enc(&e[i], buf);
		snprintf(name, sizeof(name), "entry%d", i);
		s_check(name, buf, len);
		/* leaf = SHA-256(0x00 || entry), independently */
		m[0] = 0x00;
		crypto_hash_sha256_state st;
		crypto_hash_sha256_init(&st);
		crypto_hash_sha256_update(&st, m, 1);
		crypto_hash_sha256_update(&st, buf, len);
		crypto_hash_sha256_final(&st, leaf[i]);
		snprintf(name, sizeof(name), "leaf%d", i);
		s_check(name, leaf[i], 32);
		cr_assert_eq(merkle_append(t, leaf[i]), 0);
	}
	/* MTH(3) = node(node(l0, l1), l2) */
	m[0] = 0x01;
	memcpy(m + 1, leaf[0], 32);
	memcpy(m + 33, leaf[1], 32);
	crypto_hash_sha256(n01, m, 65);
	memcpy(m + 1, n01, 32);
	memcpy(m + 33, leaf[2], 32);
	crypto_hash_sha256(root, m, 65);
	s_check("root3", root, 32);
	cr_assert_eq(merkle_root(t, 3, r2), 0);
	cr_assert_eq(memcmp(root, r2, 32), 0, "merkle.c disagrees");
	memset(seed, 0x42, 32);
	crypto_sign_seed_keypair(pk, sk, seed);
	s_check("public_key", pk, 32);
	memset(&h, 0, sizeof(h));
	h.size = 3;
	h.time_ms = e[2].time_ms + 500;
	memcpy(h.root, root, 32);
	len = audit_head_tbs(&h, OIN_LEERPLICHT, tbs);
	s_check("head_tbs", tbs, len);
	cr_assert_eq(audit_head_sign(&h, OIN_LEERPLICHT, sk), 0);
	s_check("head_signature", h.signature, 64);
	merkle_destroy(&t);
}

/* ====================================================================== */
/* 2. The tools                                                           */
/* ====================================================================== */

struct tlog {
	char dir[300];
	const char *oin;
	store_t *st;
	merkle_t *tree;
	chain_t *ch;
	audit_head_t heads[16];
	size_t n_heads;
	uint64_t last_ms;
};

static void
s_tlog_open(struct tlog *l, const char *tmp, const char *oin)
{
	char cert[4096];
	uint8_t *pem = NULL;
	size_t n = 0;
	kp_err_t e;

	memset(l, 0, sizeof(*l));
	l->oin = oin;
	snprintf(l->dir, sizeof(l->dir), "%s/%s", tmp, oin);
	cr_assert_eq(store_open(l->dir, s_meta_key, test_pseudonym_key,
	    &l->st, &e), 0, "%s",
	    e.msg);
	cr_assert_eq(chain_open_oin(test_chain(), oin, NULL, NULL, &l->ch, &e),
	    0, "%s", e.msg);
	test_cert(test_chain(), oin, cert, sizeof(cert));
	cr_assert_eq(kp_read_file(cert, 1 << 16, &pem, &n), 0);
	cr_assert_eq(store_meta_put(l->st, "oin", oin, &e), 0, "%s", e.msg);
	cr_assert_eq(store_meta_put(l->st, "certificate", (char *)pem, &e), 0);
	free(pem);
	cr_assert_not_null(l->tree = merkle_new());
	cr_assert_eq(store_begin(l->st, &e), 0);
}

static void
s_tlog_head(struct tlog *l)
{
	audit_head_t *h = &l->heads[l->n_heads++];
	kp_err_t e;

	h->size = merkle_size(l->tree);
	h->time_ms = l->last_ms + 1000;
	cr_assert_eq(merkle_root(l->tree, h->size, h->root), 0);
	cr_assert_eq(audit_head_sign(h, l->oin,
	    identity_sign_sk(l->ch->self)), 0);
	cr_assert_eq(store_head_put(l->st, h->size, h->time_ms, h->root,
	    h->signature, &e), 0, "%s", e.msg);
}

static void
s_tlog_append(struct tlog *l, audit_entry_t *x)
{
	uint8_t buf[AUDIT_ENTRY_MAX], leaf[32];
	size_t n;
	kp_err_t e;

	x->seq = merkle_size(l->tree);
	memcpy(x->own_oin, l->oin, 21);
	n = s_enc(x, buf);
	cr_assert_eq(merkle_leaf_hash(buf, n, leaf), 0);
	cr_assert_eq(store_audit_append(l->st, x->seq, buf, n, leaf, &e), 0,
	    "%s", e.msg);
	cr_assert_eq(merkle_append(l->tree, leaf), 0);
	l->last_ms = x->time_ms;
	if (merkle_size(l->tree) % 4 == 0)
		s_tlog_head(l);
}

static void
s_tlog_close(struct tlog *l)
{
	kp_err_t e;

	if (l->n_heads == 0 ||
	    l->heads[l->n_heads - 1].size != merkle_size(l->tree))
		s_tlog_head(l);
	cr_assert_eq(store_commit(l->st, &e), 0, "%s", e.msg);
	store_close(&l->st);
	merkle_destroy(&l->tree);
	chain_close(&l->ch);
}

/* Deterministic ids and digests. */
static void
s_id(uint8_t id[16], int what, int i)
{
	memset(id, 0, 16);
	id[0] = 0x01;
	id[1] = 0x94;
	id[6] = 0x70;
	id[8] = 0x80;
	id[14] = (uint8_t)what;
	id[15] = (uint8_t)i;
}

static void
s_digest(uint8_t d[32], const char *label, int i)
{
	char in[64];

	snprintf(in, sizeof(in), "%s/%d", label, i);
	crypto_hash_sha256(d, (const uint8_t *)in, strlen(in));
}

/* One event's entry of kind k at t, partner p. */
static void
s_event_entry(audit_entry_t *e, int kind, int dir, uint64_t t,
    const char *partner, const uint8_t id[16], int type, const char *env,
    const char *rcpt, int i)
{
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->direction = dir;
	e->time_ms = t;
	memcpy(e->partner_oin, partner, 21);
	e->has_event_id = true;
	memcpy(e->event_id, id, 16);
	e->event_type = type;
	snprintf(e->purpose, sizeof(e->purpose), "mas.%s",
	    events_type_name(type));
	strcpy(e->legal_basis, type == 1 ? "lpw-art-22" : "bw-halt");
	e->has_policy_hash = e->has_case_pseudonym = true;
	memset(e->policy_hash, 0x77, 32);
	s_digest(e->case_pseudonym, "case", i);
	if (kind == AUDIT_SEND || kind == AUDIT_RECEIPT_SENT)
		strcpy(e->fields, type == 1 ? "route,age_years,school_brin" :
		    "outcome,completed_on");
	if (env != NULL) {
		e->has_envelope_digest = true;
		s_digest(e->envelope_digest, env, i);
	}
	if (rcpt != NULL) {
		e->has_receipt_digest = true;
		s_digest(e->receipt_digest, rcpt, i);
	}
}

static uint64_t
s_t0(void)
{
	uint64_t t;

	cr_assert_eq(kp_time_parse("2027-01-15T10:00:00Z", &t), 0);
	return t;
}

static void
s_loads(struct tlog *l, uint64_t t)
{
	audit_entry_t e;

	memset(&e, 0, sizeof(e));
	e.kind = AUDIT_CHAIN_LOAD;
	e.time_ms = t;
	s_tlog_append(l, &e);
	e.kind = AUDIT_POLICY_LOAD;
	e.time_ms = t + 1;
	e.has_policy_hash = true;
	memset(e.policy_hash, 0x77, 32);
	s_tlog_append(l, &e);
}

/* Event i: A's referral to B, and B's answer for even i. */
static void
s_exchange(struct tlog *a, struct tlog *b, int i, bool rewrite)
{
	const int REF = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	const int OUTC = KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME;
	uint64_t t = s_t0() + (uint64_t)i * 7 * DAY;
	audit_entry_t e;
	uint8_t id[16];

	s_id(id, 1, i);
	s_event_entry(&e, AUDIT_SEND, AUDIT_OUT, t, b->oin, id, REF, "env",
	    NULL, i);
	if (rewrite && i == 1)
		strcpy(e.purpose, "mas.rewritten");
	s_tlog_append(a, &e);
	s_event_entry(&e, AUDIT_RECEIPT_SENT, AUDIT_IN, t + 500, a->oin, id,
	    REF, "env", "rcpt", i);
	s_tlog_append(b, &e);
	s_event_entry(&e, AUDIT_RECEIPT_RECEIVED, AUDIT_OUT, t + 1000, b->oin,
	    id, REF, "env", "rcpt", i);
	s_tlog_append(a, &e);
	if (i % 2 != 0)
		return;
	s_id(id, 2, i);
	t += DAY;
	s_event_entry(&e, AUDIT_SEND, AUDIT_OUT, t, a->oin, id, OUTC, "renv",
	    NULL, i);
	s_tlog_append(b, &e);
	s_event_entry(&e, AUDIT_RECEIPT_SENT, AUDIT_IN, t + 500, b->oin, id,
	    OUTC, "renv", "rrcpt", i);
	s_tlog_append(a, &e);
	s_event_entry(&e, AUDIT_RECEIPT_RECEIVED, AUDIT_OUT, t + 1000, a->oin,
	    id, OUTC, "renv", "rrcpt", i);
	s_tlog_append(b, &e);
}

struct pair {
	char tmp[256];
	char a_dir[300], b_dir[300];
	char a_x[400], b_x[400];         /* exports */
	char out[OUT_MAX];
};

static int s_run(struct pair *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* `ketenpost ARGS`, output into p->out; returns the exit status. */
static int
s_run(struct pair *p, const char *fmt, ...)
{
	char args[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return test_sh_output(p->out, sizeof(p->out), "%s/ketenpost %s",
	    test_bin(), args);
}

static void
s_has(const struct pair *p, const char *needle)
{
	cr_assert(strstr(p->out, needle) != NULL, "expected '%s' in:\n%s",
	    needle, p->out);
}

/* Build both logs in a fresh tmpdir; `rewrite` changes A's entry 5. */
static void
s_pair(struct pair *p, bool rewrite)
{
	struct tlog a, b;
	audit_entry_t e;
	uint8_t id[16];
	size_t k;
	kp_err_t err;
	int i;

	memset(p, 0, sizeof(*p));
	test_tmpdir(p->tmp, sizeof(p->tmp));
	s_tlog_open(&a, p->tmp, OIN_LEERPLICHT);
	s_tlog_open(&b, p->tmp, OIN_HALT);
	s_loads(&a, s_t0() - 2 * DAY);
	s_loads(&b, s_t0() - 2 * DAY);
	for (i = 0; i < N_EVENTS; i++)
		s_exchange(&a, &b, i, rewrite);
	s_id(id, 3, 0);
	s_event_entry(&e, AUDIT_REFUSAL_OUT, AUDIT_OUT, s_t0() + 50 * DAY,
	    OIN_HALT, id, 1, NULL, NULL, 9);
	e.reason = KP__REASON__REASON_POLICY_VIOLATION;
	s_tlog_append(&a, &e);
	s_id(id, 1, 0);
	s_event_entry(&e, AUDIT_PURGE, AUDIT_OUT, s_t0() + 60 * DAY, OIN_HALT,
	    id, 1, NULL, NULL, 0);
	s_tlog_append(&a, &e);
	cr_assert_eq(merkle_size(a.tree), 19);
	cr_assert_eq(merkle_size(b.tree), 14);
	s_tlog_close(&a);
	s_tlog_close(&b);
	/* each holds the other's heads, as seen on envelopes and receipts */
	cr_assert_eq(store_open(b.dir, s_meta_key, test_pseudonym_key,
	    &b.st, &err), 0);
	for (k = 0; k < a.n_heads; k++)
		cr_assert_eq(store_witness_put(b.st, OIN_LEERPLICHT,
		    a.heads[k].size, a.heads[k].time_ms, a.heads[k].root,
		    a.heads[k].signature, a.heads[k].time_ms + 5, &err), 0);
	store_close(&b.st);
	snprintf(p->a_dir, sizeof(p->a_dir), "%s", a.dir);
	snprintf(p->b_dir, sizeof(p->b_dir), "%s", b.dir);
	snprintf(p->a_x, sizeof(p->a_x), "%s/a.jsonl", p->tmp);
	snprintf(p->b_x, sizeof(p->b_x), "%s/b.jsonl", p->tmp);
	cr_assert_eq(s_run(p, "audit export %s > %s", p->a_dir, p->a_x), 0,
	    "%s", p->out);
	cr_assert_eq(s_run(p, "audit export %s > %s", p->b_dir, p->b_x), 0,
	    "%s", p->out);
}

static void
s_pair_done(struct pair *p)
{
	test_sh("rm -rf '%s'", p->tmp);
}

/* ---- export files as lines ---- */

struct lines {
	char *l[256];
	size_t n;
};

static void
s_lines_read(const char *path, struct lines *x)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	cr_assert_not_null(f, "cannot read %s", path);
	x->n = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		cr_assert(x->n < 256);
		x->l[x->n++] = strdup(line);
	}
	free(line);
	fclose(f);
}

static void
s_lines_free(struct lines *x)
{
	for (size_t i = 0; i < x->n; i++)
		free(x->l[i]);
	x->n = 0;
}

static void
s_lines_write(const char *path, struct lines *x)
{
	FILE *f = fopen(path, "w");
	size_t i;

	cr_assert_not_null(f);
	for (i = 0; i < x->n; i++) {
		fprintf(f, "%s\n", x->l[i]);
		free(x->l[i]);
	}
	x->n = 0;
	fclose(f);
}

/* Index of the line with prefix {"type":TYPE,KEY:N, */
static size_t
s_line_of(const struct lines *x, const char *type, const char *key,
    uint64_t v)
{
	char want[96];
	size_t i;

	snprintf(want, sizeof(want), "{\"type\":\"%s\",\"%s\":%llu,", type,
	    key, (unsigned long long)v);
	for (i = 0; i < x->n; i++)
		if (strncmp(x->l[i], want, strlen(want)) == 0)
			return i;
	cr_assert_fail("no line %s", want);
	return 0;
}

static size_t
s_entry_line(const struct lines *x, uint64_t seq)
{
	return s_line_of(x, "entry", "seq", seq);
}

static size_t
s_head_line(const struct lines *x, uint64_t size)
{
	return s_line_of(x, "tree_head", "size", size);
}

/* Set member key of line i to v (stolen); NULL v deletes it. */
static void
s_set(struct lines *x, size_t i, const char *key, json_t *v)
{
	json_t *j = json_loads(x->l[i], 0, NULL);

	cr_assert_not_null(j);
	if (v != NULL)
		json_object_set_new(j, key, v);
	else
		json_object_del(j, key);
	free(x->l[i]);
	x->l[i] = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
}

static void
s_delete(struct lines *x, size_t i)
{
	free(x->l[i]);
	memmove(&x->l[i], &x->l[i + 1], (x->n - i - 1) * sizeof(char *));
	x->n--;
}

static void
s_insert(struct lines *x, size_t i, char *line)
{
	cr_assert(x->n < 256);
	memmove(&x->l[i + 1], &x->l[i], (x->n - i) * sizeof(char *));
	x->l[i] = line;
	x->n++;
}

/* Add d to the seq of every entry line from index i on. */
static void
s_renumber(struct lines *x, size_t i, int d)
{
	json_t *j;

	for (; i < x->n; i++) {
		if (strncmp(x->l[i], "{\"type\":\"entry\"", 15) != 0)
			continue;
		j = json_loads(x->l[i], 0, NULL);
		s_set(x, i, "seq", json_integer(json_integer_value(
		    json_object_get(j, "seq")) + d));
		json_decref(j);
	}
}

/* Line i, a head, with its root changed and, if signer, signed by that
 * organisation's key (for the log's OIN, A). */
static void
s_forge_head(struct lines *x, size_t i, const char *signer, uint64_t size)
{
	json_t *j = json_loads(x->l[i], 0, NULL);
	audit_head_t h;
	chain_t *ch = NULL;
	kp_err_t e;

	cr_assert_eq(audit_head_from_json(j, &h, &e), 0, "%s", e.msg);
	json_decref(j);
	h.root[0] ^= 0x01;
	if (size != 0)
		h.size = size;
	if (signer != NULL) {
		cr_assert_eq(chain_open_oin(test_chain(), signer, NULL, NULL,
		    &ch, &e), 0, "%s", e.msg);
		cr_assert_eq(audit_head_sign(&h, OIN_LEERPLICHT,
		    identity_sign_sk(ch->self)), 0);
		chain_close(&ch);
	}
	free(x->l[i]);
	j = audit_head_to_json(&h);
	x->l[i] = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
}

/* Verify the edited export of A: exit 1 with all needles. */
static void
s_verify_refuses(struct pair *p, struct lines *x, const char *n1,
    const char *n2)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/tampered.jsonl", p->tmp);
	s_lines_write(path, x);
	cr_assert_eq(s_run(p, "audit verify %s", path), 1, "tampered log "
	    "accepted or wrong status:\n%s", p->out);
	s_has(p, n1);
	if (n2 != NULL)
		s_has(p, n2);
	cr_assert_eq(strchr(p->out, '\n'), p->out + strlen(p->out) - 1,
	    "not one line: %s", p->out);
}

/* ---- clean logs ---- */

Test(audit, clean_log_verifies_from_state_dir_and_export)
{
	struct pair p;
	char again[400];

	s_pair(&p, false);
	cr_assert_eq(s_run(&p, "audit verify %s", p.a_dir), 0, "%s", p.out);
	s_has(&p, "intact: log of " OIN_LEERPLICHT ": 19 entries, 5 signed "
	    "heads, latest head size 19");
	cr_assert_eq(s_run(&p, "audit verify %s", p.a_x), 0, "%s", p.out);
	s_has(&p, "19 entries, 5 signed heads");
	cr_assert_eq(s_run(&p, "audit verify %s", p.b_x), 0, "%s", p.out);
	cr_assert_eq(s_run(&p, "audit verify --ca %s/ca.crt %s", test_chain(),
	    p.a_x), 0, "%s", p.out);
	/* another certificate as "CA" */
	cr_assert_eq(s_run(&p, "audit verify --ca %s/orgs/%s/cert.pem %s",
	    test_chain(), OIN_HALT, p.a_x), 1, "%s", p.out);
	s_has(&p, "not issued by the CA");
	/* the export is deterministic and read-only */
	snprintf(again, sizeof(again), "%s/again.jsonl", p.tmp);
	cr_assert_eq(s_run(&p, "audit export %s > %s && cmp %s %s", p.a_dir,
	    again, again, p.a_x), 0, "%s", p.out);
	cr_assert_eq(s_run(&p, "audit verify < /dev/null"), 2);
	cr_assert_eq(s_run(&p, "audit verify --help"), 0);
	s_has(&p, "usage: ketenpost audit verify");
	cr_assert_eq(s_run(&p, "audit frobnicate"), 2);
	cr_assert_eq(s_run(&p, "audit verify %s/nonexistent", p.tmp), 1);
	s_pair_done(&p);
}

Test(audit, export_format_and_filter)
{
	struct pair p;
	struct lines x;
	char path[400];
	json_t *j;
	size_t i, entries = 0;

	s_pair(&p, false);
	s_lines_read(p.a_x, &x);
	j = json_loads(x.l[0], 0, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "log");
	cr_assert_str_eq(json_string_value(json_object_get(j, "oin")),
	    OIN_LEERPLICHT);
	cr_assert(strstr(json_string_value(json_object_get(j, "certificate")),
	    "-----BEGIN CERTIFICATE-----") != NULL);
	cr_assert_eq(json_integer_value(json_object_get(j, "format")), 1);
	json_decref(j);
	/* 1 log line, 19 entries, 5 heads; head 8 right after entry 7 */
	cr_assert_eq(x.n, 25);
	cr_assert_eq(s_head_line(&x, 8), s_entry_line(&x, 7) + 1);
	cr_assert_eq(s_head_line(&x, 19), x.n - 1);
	s_lines_free(&x);
	/* January only: events 0..2 (sends, receipts, answers) */
	snprintf(path, sizeof(path), "%s/jan.jsonl", p.tmp);
	cr_assert_eq(s_run(&p, "audit export %s --from 2027-01-01T00:00:00Z "
	    "--to 2027-02-01T00:00:00Z > %s", p.a_dir, path), 0, "%s", p.out);
	s_lines_read(path, &x);
	cr_assert(strstr(x.l[0], "\"filtered\":true") != NULL, "%s", x.l[0]);
	for (i = 1; i < x.n; i++)
		entries += strncmp(x.l[i], "{\"type\":\"entry\"", 15) == 0;
	cr_assert_eq(entries, 10, "%zu entries in January", entries);
	s_lines_write(path, &x);
	cr_assert_eq(s_run(&p, "audit verify %s", path), 1);
	s_has(&p, "filtered export");
	cr_assert_eq(s_run(&p, "audit export %s --from yesterday", p.a_dir), 2);
	s_pair_done(&p);
}

/* ---- one test per tampering kind ---- */

/* Change one byte of the purpose of entry seq in dir's database, and if
 * `leaf`, store the matching leaf hash too. */
static void
s_db_tamper(const char *dir, int seq, bool leaf)
{
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint8_t buf[AUDIT_ENTRY_MAX], h[32], *m;
	int n;

	snprintf(path, sizeof(path), "%s/ketenpost.db", dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT entry FROM audit WHERE "
	    "seq = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int(st, 1, seq);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_bytes(st, 0);
	memcpy(buf, sqlite3_column_blob(st, 0), (size_t)n);
	sqlite3_finalize(st);
	m = memmem(buf, (size_t)n, "mas.", 4);
	cr_assert_not_null(m);
	m[4] = 'X';
	cr_assert_eq(merkle_leaf_hash(buf, (size_t)n, h), 0);
	cr_assert_eq(sqlite3_prepare_v2(db, leaf ? "UPDATE audit SET entry = "
	    "?2, leaf = ?3 WHERE seq = ?1" : "UPDATE audit SET entry = ?2 "
	    "WHERE seq = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int(st, 1, seq);
	sqlite3_bind_blob(st, 2, buf, n, SQLITE_STATIC);
	if (leaf)
		sqlite3_bind_blob(st, 3, h, 32, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

Test(audit, modified_field_detected)
{
	struct pair p;
	struct lines x;
	int k;

	s_pair(&p, false);
	for (k = 0; k < 8; k++) {
		size_t i;

		s_lines_read(p.a_x, &x);
		i = s_entry_line(&x, 5);
		switch (k) {
		case 0: s_set(&x, i, "purpose", json_string("mas.other"));
			break;
		case 1: s_set(&x, i, "partner_oin", json_string(OIN_RVDK));
			break;
		case 2: s_set(&x, i, "fields", json_pack("[s]", "route"));
			break;
		case 3: s_set(&x, i, "envelope_digest", json_string("00000000"
			    "000000000000000000000000000000000000000000000000"
			    "00000000"));
			break;
		case 4: s_set(&x, i, "kind", json_string("refusal_out"));
			break;
		case 5: s_set(&x, i, "case_pseudonym", NULL);
			break;
		case 6: s_set(&x, i, "event_type", json_string("jbt_request"));
			break;
		case 7:   /* time moved consistently: still the leaf */
			s_set(&x, i, "time_ms", json_integer(1800000000000));
			s_set(&x, i, "time",
			    json_string("2027-01-15T08:00:00.000Z"));
			break;
		}
		s_verify_refuses(&p, &x, "head size 8", "seq 4..7");
	}
	/* the human-readable time alone: refused where it stands */
	s_lines_read(p.a_x, &x);
	s_set(&x, s_entry_line(&x, 5), "time",
	    json_string("2027-01-23T10:00:00.000Z"));
	s_verify_refuses(&p, &x, "line 8", "\"time\" must be");
	/* a modified entry in the state directory itself: alone, then with
	 * its stored leaf hash updated too */
	s_db_tamper(p.a_dir, 10, false);
	cr_assert_eq(s_run(&p, "audit verify %s", p.a_dir), 1, "%s", p.out);
	s_has(&p, "entry seq 10: the stored leaf hash does not match");
	s_db_tamper(p.a_dir, 10, true);
	cr_assert_eq(s_run(&p, "audit verify %s", p.a_dir), 1, "%s", p.out);
	s_has(&p, "head size 12");
	s_has(&p, "seq 8..11");
	s_pair_done(&p);
}

Test(audit, deleted_entry_detected)
{
	struct pair p;
	struct lines x;

	s_pair(&p, false);
	s_lines_read(p.a_x, &x);
	s_delete(&x, s_entry_line(&x, 5));
	s_verify_refuses(&p, &x, "entry seq 6", "expected seq 5: entry 5 is "
	    "missing");
	/* deleted and the rest renumbered: the head covering it fails */
	s_lines_read(p.a_x, &x);
	s_delete(&x, s_entry_line(&x, 5));
	s_renumber(&x, s_entry_line(&x, 6), -1);
	s_verify_refuses(&p, &x, "head size 8", "does not match");
	s_pair_done(&p);
}

Test(audit, inserted_entry_detected)
{
	struct pair p;
	struct lines x;
	size_t i;

	s_pair(&p, false);
	s_lines_read(p.a_x, &x);
	i = s_entry_line(&x, 5);
	s_insert(&x, i, strdup(x.l[i]));
	s_set(&x, i, "event_id", json_string("01940000-0000-7000-8000-"
	    "000000000999"));
	s_verify_refuses(&p, &x, "entry seq 5", "appears twice (an entry "
	    "was inserted)");
	/* inserted and the rest renumbered */
	s_lines_read(p.a_x, &x);
	i = s_entry_line(&x, 5);
	s_renumber(&x, i, 1);
	s_insert(&x, i, strdup(x.l[i]));
	s_set(&x, i, "seq", json_integer(5));
	s_set(&x, i, "purpose", json_string("mas.inserted"));
	s_verify_refuses(&p, &x, "head size 8", "seq 4..7");
	s_pair_done(&p);
}

Test(audit, reordered_entries_detected)
{
	struct pair p;
	struct lines x;
	size_t i;
	char *t;

	s_pair(&p, false);
	s_lines_read(p.a_x, &x);
	i = s_entry_line(&x, 5);
	t = x.l[i];
	x.l[i] = x.l[i + 1];
	x.l[i + 1] = t;
	s_verify_refuses(&p, &x, "entry seq 6", "expected seq 5");
	/* swapped and renumbered so the seqs still run */
	s_lines_read(p.a_x, &x);
	i = s_entry_line(&x, 5);
	t = x.l[i];
	x.l[i] = x.l[i + 1];
	x.l[i + 1] = t;
	s_set(&x, i, "seq", json_integer(5));
	s_set(&x, i + 1, "seq", json_integer(6));
	s_verify_refuses(&p, &x, "head size 8", "reordered");
	s_pair_done(&p);
}

Test(audit, truncated_tail_detected)
{
	struct pair p;
	struct lines x;

	s_pair(&p, false);
	s_lines_read(p.a_x, &x);
	s_delete(&x, s_entry_line(&x, 18));
	s_delete(&x, s_entry_line(&x, 17));
	s_verify_refuses(&p, &x, "head size 19: covers 19 entries but the log "
	    "has only 17", "tail truncated");
	/* The limit, documented: the tail removed with the heads covering
	 * it is a valid older log.  Only a partner's heads expose it. */
	s_lines_read(p.a_x, &x);
	s_delete(&x, s_head_line(&x, 19));
	s_delete(&x, s_entry_line(&x, 18));
	s_delete(&x, s_entry_line(&x, 17));
	s_delete(&x, s_entry_line(&x, 16));
	s_lines_write(p.a_x, &x);
	cr_assert_eq(s_run(&p, "audit verify %s", p.a_x), 0, "%s", p.out);
	cr_assert_eq(s_run(&p, "audit witness %s --heads %s", p.a_x, p.b_dir),
	    1, "%s", p.out);
	s_has(&p, "witnessed head size 19");
	s_has(&p, "only 16 entries");
	s_pair_done(&p);
}

Test(audit, forged_head_detected)
{
	struct pair p;
	struct lines x;

	s_pair(&p, false);
	/* root changed, signature left: bad signature */
	s_lines_read(p.a_x, &x);
	s_forge_head(&x, s_head_line(&x, 8), NULL, 0);
	s_verify_refuses(&p, &x, "head size 8", "bad signature");
	/* root changed and signed with the organisation's own key (an
	 * insider with the key): the root does not match the entries */
	s_lines_read(p.a_x, &x);
	s_forge_head(&x, s_head_line(&x, 12), OIN_LEERPLICHT, 0);
	s_verify_refuses(&p, &x, "head size 12", "does not match entries "
	    "0..11");
	/* a head signed (with the key) for entries that are not there */
	s_lines_read(p.a_x, &x);
	s_forge_head(&x, s_head_line(&x, 19), OIN_LEERPLICHT, 25);
	s_verify_refuses(&p, &x, "head size 25: covers 25 entries but the log "
	    "has only 19", NULL);
	s_pair_done(&p);
}

Test(audit, head_signed_by_another_organisation_detected)
{
	struct pair p;
	struct lines x;
	char *pem;
	uint8_t *buf;
	size_t n;
	char cert[4096];

	s_pair(&p, false);
	s_lines_read(p.a_x, &x);
	s_forge_head(&x, s_head_line(&x, 8), OIN_HALT, 0);
	s_verify_refuses(&p, &x, "head size 8", "signed by another "
	    "organisation");
	/* ... and with Halt's certificate put in the log line */
	s_lines_read(p.a_x, &x);
	s_forge_head(&x, s_head_line(&x, 8), OIN_HALT, 0);
	test_cert(test_chain(), OIN_HALT, cert, sizeof(cert));
	cr_assert_eq(kp_read_file(cert, 1 << 16, &buf, &n), 0);
	pem = (char *)buf;
	s_set(&x, 0, "certificate", json_string(pem));
	free(pem);
	s_verify_refuses(&p, &x, "not that of the log's organisation "
	    OIN_LEERPLICHT, OIN_HALT);
	s_pair_done(&p);
}

/* ---- proofs ---- */

Test(audit, proof_round_trip_and_tampered_proofs)
{
	struct pair p;
	char proof[400], bad[400], id[KP_UUID_TEXT_LEN + 1];
	uint8_t raw[16];
	json_t *j, *e0;
	int k;

	s_pair(&p, false);
	s_id(raw, 1, 2);
	kp_uuid_format(raw, id);
	snprintf(proof, sizeof(proof), "%s/proof.json", p.tmp);
	snprintf(bad, sizeof(bad), "%s/bad.json", p.tmp);
	cr_assert_eq(s_run(&p, "audit proof %s %s > %s", p.a_x, id, proof), 0,
	    "%s", p.out);
	cr_assert_eq(s_run(&p, "audit check-proof %s", proof), 0, "%s", p.out);
	s_has(&p, "proof valid: 2 entries about event");
	s_has(&p, "signed tree head size 19");
	cr_assert_eq(s_run(&p, "audit check-proof --ca %s/ca.crt %s",
	    test_chain(), proof), 0, "%s", p.out);
	/* from the state directory: the same proof */
	cr_assert_eq(s_run(&p, "audit proof %s %s | cmp - %s", p.a_dir, id,
	    proof), 0, "%s", p.out);
	j = json_load_file(proof, 0, NULL);
	cr_assert_eq(json_array_size(json_object_get(j, "entries")), 2);
	e0 = json_array_get(json_object_get(j, "entries"), 0);
	cr_assert_eq(json_integer_value(json_object_get(e0, "leaf_index")), 7);
	json_decref(j);
	for (k = 0; k < 4; k++) {
		j = json_load_file(proof, 0, NULL);
		e0 = json_array_get(json_object_get(j, "entries"), 0);
		switch (k) {
		case 0:
			json_array_set_new(json_object_get(e0, "path"), 1,
			    json_string("00000000000000000000000000000000"
			    "00000000000000000000000000000000"));
			break;
		case 1:
			json_object_set_new(json_object_get(e0, "entry"),
			    "purpose", json_string("mas.other"));
			break;
		case 2:
			json_object_set_new(json_object_get(j, "tree_head"),
			    "root", json_string("00000000000000000000000000000000"
			    "00000000000000000000000000000000"));
			break;
		case 3:
			json_object_set_new(e0, "leaf_index", json_integer(6));
			break;
		}
		json_dump_file(j, bad, JSON_INDENT(2));
		json_decref(j);
		cr_assert_eq(s_run(&p, "audit check-proof %s", bad), 1,
		    "tampered proof %d accepted: %s", k, p.out);
		s_has(&p, k == 2 ? "bad signature" : "entries[0] (seq 7)");
	}
	/* an event the log does not know */
	cr_assert_eq(s_run(&p, "audit proof %s 01940000-0000-7000-8000-"
	    "00000000ffff", p.a_x), 1);
	s_has(&p, "no entry about event");
	cr_assert_eq(s_run(&p, "audit proof %s not-an-id", p.a_x), 2);
	s_pair_done(&p);
}

/* --strict fails where the default mode only reports (docs/AUDIT.md §7). */
Test(audit, verify_strict_fails_on_unsigned_tail_and_time_going_back)
{
	struct pair p;
	struct lines x;
	char x2[400];

	s_pair(&p, false);
	cr_assert_eq(s_run(&p, "audit verify --strict %s", p.a_x), 0, "%s",
	    p.out);
	snprintf(x2, sizeof(x2), "%s/x2.jsonl", p.tmp);
	/* the last head removed: its entries are an unsigned tail */
	s_lines_read(p.a_x, &x);
	s_delete(&x, s_head_line(&x, 19));
	s_lines_write(x2, &x);
	cr_assert_eq(s_run(&p, "audit verify %s", x2), 0, "%s", p.out);
	s_has(&p, "not signed yet");
	cr_assert_eq(s_run(&p, "audit verify --strict %s", x2), 1, "%s", p.out);
	s_has(&p, "are not covered by a signed head (--strict");
	/* an entry dated before the one it follows */
	s_lines_read(p.a_x, &x);
	s_set(&x, s_entry_line(&x, 4), "time_ms", json_integer(1000));
	s_set(&x, s_entry_line(&x, 4), "time",
	    json_string("1970-01-01T00:00:01.000Z"));
	s_lines_write(x2, &x);
	cr_assert_eq(s_run(&p, "audit verify --strict %s", x2), 1, "%s", p.out);
	s_has(&p, "entry seq 4 (line 7): its time is before the time of entry 3");
	s_pair_done(&p);
}

/* With --ca every head must be signed while the certificate was valid,
 * and with --crl before it was revoked. */
Test(audit, verify_checks_certificate_validity_and_revocation)
{
	struct pair p;
	char chain[400];

	s_pair(&p, false);
	cr_assert_eq(s_run(&p, "audit verify --ca %s/ca.crt --crl %s/crl.pem %s",
	    test_chain(), test_chain(), p.a_x), 0, "%s", p.out);
	cr_assert_eq(s_run(&p, "audit verify --crl %s/crl.pem %s",
	    test_chain(), p.a_x), 1, "%s", p.out);
	s_has(&p, "--crl needs --ca");
	/* a CRL not signed by that CA */
	cr_assert_eq(s_run(&p, "audit verify --ca %s/ca.crt --crl %s/ca.crt %s",
	    test_chain(), test_chain(), p.a_x), 1, "%s", p.out);
	s_has(&p, "not a readable PEM CRL");
	/* revoked now: the heads (dated 2027) come after the revocation */
	snprintf(chain, sizeof(chain), "%s/chain", p.tmp);
	cr_assert_eq(test_sh("cp -a %s %s && %s/ketenpost-certs revoke --dir %s "
	    "--oin %s >/dev/null", test_chain(), chain, test_bin(), chain,
	    OIN_LEERPLICHT), 0);
	cr_assert_eq(s_run(&p, "audit verify --ca %s/ca.crt --crl %s/crl.pem %s",
	    chain, chain, p.a_x), 1, "%s", p.out);
	s_has(&p, "after the certificate was revoked at");
	/* the partner's certificate is not revoked */
	cr_assert_eq(s_run(&p, "audit verify --ca %s/ca.crt --crl %s/crl.pem %s",
	    chain, chain, p.b_x), 0, "%s", p.out);
	s_pair_done(&p);
}

/* A partner hands the auditor only the heads it witnessed, not its whole
 * state directory. */
Test(audit, heads_export_serves_witness)
{
	struct pair p;
	char heads[400];

	s_pair(&p, false);
	snprintf(heads, sizeof(heads), "%s/heads.jsonl", p.tmp);
	cr_assert_eq(s_run(&p, "audit heads %s --of %s > %s", p.b_dir,
	    OIN_LEERPLICHT, heads), 0, "%s", p.out);
	cr_assert_eq(test_sh_output(p.out, sizeof(p.out), "grep -c "
	    "'^{\"type\":\"tree_head\"' %s", heads), 0);
	s_has(&p, "5");
	cr_assert_eq(s_run(&p, "audit witness %s --heads %s", p.a_x, heads), 0,
	    "%s", p.out);
	s_has(&p, "witnessed: all 5 heads");
	cr_assert_eq(s_run(&p, "audit heads %s --of %s", p.b_dir, OIN_OM), 1,
	    "%s", p.out);
	s_has(&p, "holds no heads of the log of " OIN_OM);
	cr_assert_eq(s_run(&p, "audit heads %s --of 123", p.b_dir), 2);
	cr_assert_eq(s_run(&p, "audit heads %s", p.b_dir), 2);
	s_pair_done(&p);
}

/* ---- reconcile ---- */

Test(audit, reconcile_clean)
{
	struct pair p;

	s_pair(&p, false);
	cr_assert_eq(s_run(&p, "audit reconcile %s %s", p.a_dir, p.b_dir), 0,
	    "%s", p.out);
	s_has(&p, "reconciled: 9 events, 0 discrepancies");
	cr_assert_eq(s_run(&p, "audit reconcile %s %s", p.b_x, p.a_x), 0,
	    "%s", p.out);
	s_has(&p, "reconciled: 9 events, 0 discrepancies");
	cr_assert_eq(s_run(&p, "audit reconcile %s %s", p.a_x, p.a_dir), 2);
	s_pair_done(&p);
}

Test(audit, reconcile_lists_every_discrepancy)
{
	struct pair p;
	struct lines x;
	char a2[400], b2[400], id[6][KP_UUID_TEXT_LEN + 1], line[512];
	uint8_t raw[16];
	int i;

	s_pair(&p, false);
	for (i = 0; i < 5; i++) {
		s_id(raw, i == 4 ? 2 : 1, i == 4 ? 2 : i + 1);
		kp_uuid_format(raw, id[i]);
	}
	snprintf(a2, sizeof(a2), "%s/a2.jsonl", p.tmp);
	snprintf(b2, sizeof(b2), "%s/b2.jsonl", p.tmp);
	/* B's log: the receipt of event 1 gone; event 2's envelope digest
	 * altered; the reason of event 3's receipt altered */
	s_lines_read(p.b_x, &x);
	s_set(&x, s_entry_line(&x, 6), "envelope_digest", json_string(
	    "1111111111111111111111111111111111111111111111111111111111111111"));
	s_set(&x, s_entry_line(&x, 9), "reason", json_string("expired"));
	s_delete(&x, s_entry_line(&x, 5));
	s_lines_write(b2, &x);
	/* A's log: the receipt digest of event 4 altered; the receipt of
	 * B's answer to event 2 gone */
	s_lines_read(p.a_x, &x);
	s_set(&x, s_entry_line(&x, 13), "receipt_digest", json_string(
	    "2222222222222222222222222222222222222222222222222222222222222222"));
	s_delete(&x, s_entry_line(&x, 9));
	s_lines_write(a2, &x);
	cr_assert_eq(s_run(&p, "audit reconcile %s %s", a2, b2), 1, "%s",
	    p.out);
	snprintf(line, sizeof(line), "missing in B: event %s sent by A at "
	    "2027-01-22T10:00:00.000Z (the sender holds a receipt for it)",
	    id[0]);
	s_has(&p, line);
	snprintf(line, sizeof(line), "envelope digest differs for event %s: A "
	    "sent ", id[1]);
	s_has(&p, line);
	s_has(&p, "B received 1111111111111111");
	snprintf(line, sizeof(line), "receipt reason differs for event %s: B "
	    "sent expired, A received none", id[2]);
	s_has(&p, line);
	snprintf(line, sizeof(line), "receipt digest differs for event %s: B "
	    "sent ", id[3]);
	s_has(&p, line);
	s_has(&p, "A received 2222222222222222");
	snprintf(line, sizeof(line), "missing in A: event %s sent by B at "
	    "2027-01-30T10:00:00.000Z", id[4]);
	s_has(&p, line);
	s_has(&p, "5 discrepancies in 9 events");
	/* a receipt B sent that A never logged */
	s_lines_read(p.a_x, &x);
	s_delete(&x, s_entry_line(&x, 3));
	s_lines_write(a2, &x);
	cr_assert_eq(s_run(&p, "audit reconcile %s %s", a2, p.b_x), 1, "%s",
	    p.out);
	s_has(&p, "receipt missing in A: event");
	s_has(&p, "1 discrepancy in 9 events");
	s_pair_done(&p);
}

/* The line of the first entry of `kind` for event id. */
static size_t
s_kind_line(const struct lines *x, const char *kind, const char *id)
{
	char k[64], e[80];
	size_t i;

	snprintf(k, sizeof(k), "\"kind\":\"%s\"", kind);
	snprintf(e, sizeof(e), "\"event_id\":\"%s\"", id);
	for (i = 0; i < x->n; i++)
		if (strstr(x->l[i], k) != NULL && strstr(x->l[i], e) != NULL)
			return i;
	cr_assert_fail("no %s entry for %s", kind, id);
	return 0;
}

/* An organisation that rewrites (and re-signs) what its own log says it
 * sent is contradicted by the partner's log: every claim is compared. */
Test(audit, reconcile_compares_every_claim)
{
	struct pair p;
	struct lines x;
	char a2[400], id[4][KP_UUID_TEXT_LEN + 1], line[512];
	uint8_t raw[16];
	size_t i;

	s_pair(&p, false);
	for (i = 0; i < 4; i++) {
		s_id(raw, 1, (int)i + 1);
		kp_uuid_format(raw, id[i]);
	}
	snprintf(a2, sizeof(a2), "%s/a2.jsonl", p.tmp);
	s_lines_read(p.a_x, &x);
	s_set(&x, s_kind_line(&x, "send", id[0]), "fields",
	    json_pack("[s]", "route"));
	s_set(&x, s_kind_line(&x, "send", id[1]), "purpose",
	    json_string("mas.other"));
	s_set(&x, s_kind_line(&x, "send", id[2]), "case_pseudonym", json_string(
	    "5555555555555555555555555555555555555555555555555555555555555555"));
	s_set(&x, s_kind_line(&x, "send", id[3]), "legal_basis",
	    json_string("elsewhere"));
	s_lines_write(a2, &x);
	cr_assert_eq(s_run(&p, "audit reconcile %s %s", a2, p.b_x), 1, "%s",
	    p.out);
	snprintf(line, sizeof(line), "claim differs for event %s: fields:",
	    id[0]);
	s_has(&p, line);
	snprintf(line, sizeof(line), "claim differs for event %s: purpose: A "
	    "logged mas.other, B logged ", id[1]);
	s_has(&p, line);
	snprintf(line, sizeof(line), "claim differs for event %s: "
	    "case_pseudonym: A logged 5555", id[2]);
	s_has(&p, line);
	snprintf(line, sizeof(line), "claim differs for event %s: legal_basis: "
	    "A logged elsewhere", id[3]);
	s_has(&p, line);
	s_has(&p, "4 discrepancies in 9 events");
	s_pair_done(&p);
}

/* ---- witness ---- */

Test(audit, witness_consistent_then_rewritten_log_fails)
{
	struct pair p, q;
	char heads[400];
	struct lines x;
	size_t i, o = 0;

	s_pair(&p, false);
	cr_assert_eq(s_run(&p, "audit witness %s --heads %s", p.a_x, p.b_dir),
	    0, "%s", p.out);
	s_has(&p, "witnessed: all 5 heads of the log of " OIN_LEERPLICHT);
	/* --heads FILE: the head lines of an older export */
	snprintf(heads, sizeof(heads), "%s/heads.jsonl", p.tmp);
	s_lines_read(p.a_x, &x);
	for (i = 0; i < x.n; i++) {
		if (strncmp(x.l[i], "{\"type\":\"tree_head\"", 19) == 0 &&
		    o < 3)
			x.l[o++] = x.l[i];
		else
			free(x.l[i]);
	}
	x.n = o;
	s_lines_write(heads, &x);
	cr_assert_eq(s_run(&p, "audit witness %s --heads %s", p.a_dir, heads),
	    0, "%s", p.out);
	s_has(&p, "all 3 heads");
	cr_assert_eq(s_run(&p, "audit witness %s --heads %s", p.a_x,
	    p.a_dir), 1, "%s", p.out);
	s_has(&p, "holds no heads");
	cr_assert_eq(s_run(&p, "audit witness %s", p.a_x), 2);
	/* A rewrites entry 5 and re-signs every head: its own log verifies,
	 * Halt's heads of the original expose it */
	s_pair(&q, true);
	cr_assert_eq(s_run(&q, "audit verify %s", q.a_x), 0, "%s", q.out);
	cr_assert_eq(s_run(&q, "audit witness %s --heads %s", q.a_x, p.b_dir),
	    1, "%s", q.out);
	s_has(&q, "witnessed head size 8");
	s_has(&q, "the log was rewritten");
	s_pair_done(&q);
	s_pair_done(&p);
}

/* ---- report ---- */

static json_t *
s_row(json_t *rows, const char *month, const char *type)
{
	json_t *r;
	size_t i;

	json_array_foreach(rows, i, r)
		if (strcmp(json_string_value(json_object_get(r, "month")),
		    month) == 0 && strcmp(json_string_value(json_object_get(r,
		    "event_type")), type) == 0)
			return r;
	cr_assert_fail("no row %s %s", month, type);
	return NULL;
}

static json_int_t
s_int(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

Test(audit, report_counts_what_was_logged)
{
	struct pair p;
	json_t *j, *rows, *r, *tot;

	s_pair(&p, false);
	cr_assert_eq(s_run(&p, "audit report %s --json", p.a_x), 0, "%s",
	    p.out);
	j = json_loads(p.out, 0, NULL);
	cr_assert_not_null(j, "%s", p.out);
	cr_assert_eq(s_int(j, "entries"), 19);
	rows = json_object_get(j, "rows");
	cr_assert_eq(json_array_size(rows), 5, "%s", p.out);
	r = s_row(rows, "2027-01", "referral");
	cr_assert_str_eq(json_string_value(json_object_get(r, "partner_oin")),
	    OIN_HALT);
	cr_assert_str_eq(json_string_value(json_object_get(r, "purpose")),
	    "mas.referral");
	cr_assert_eq(s_int(r, "sent"), 3);
	cr_assert_eq(s_int(r, "received"), 0);
	cr_assert_eq(s_int(s_row(rows, "2027-02", "referral"), "sent"), 3);
	cr_assert_eq(s_int(s_row(rows, "2027-01", "halt_outcome"), "received"),
	    2);
	cr_assert_eq(s_int(s_row(rows, "2027-02", "halt_outcome"), "received"),
	    1);
	cr_assert_eq(s_int(s_row(rows, "2027-03", "referral"), "refused_out"),
	    1);
	tot = json_object_get(j, "totals");
	cr_assert_eq(s_int(tot, "send"), 6);
	cr_assert_eq(s_int(tot, "receipt_received"), 6);
	cr_assert_eq(s_int(tot, "receipt_sent"), 3);
	cr_assert_eq(s_int(tot, "refusal_out"), 1);
	cr_assert_eq(s_int(tot, "purge"), 1);
	cr_assert_eq(s_int(tot, "chain_load"), 1);
	cr_assert_eq(s_int(tot, "refusal_in"), 0);
	json_decref(j);
	cr_assert_eq(s_run(&p, "audit report %s", p.b_dir), 0, "%s", p.out);
	s_has(&p, "2027-01  " OIN_LEERPLICHT "  halt_outcome  mas.halt_outcome");
	s_has(&p, "entries by kind: send 3, receipt_sent 6");
	s_pair_done(&p);
}
