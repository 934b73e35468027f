/*
 * test_vectors.c: the worked example of docs/PROTOCOL.md §11, computed here
 * from the text of the specification alone (libsodium and protobuf-c, none
 * of lib/envelope.c), compared with the hex printed in PROTOCOL.md, and
 * cross-checked against the library where the library exposes the step.
 *
 * Run with KP_PRINT_VECTORS=1 to print the values (that is how §11 was
 * written); normally every value must match the document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "batch.h"
#include "common.h"
#include "directory.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "events.pb-c.h"

TestSuite(vectors, .init = test_init);

static char *s_doc;

static void
s_load_doc(void)
{
	free(s_doc);
	s_doc = test_doc_load("docs/PROTOCOL.md");
}

static void
s_check(const char *name, const uint8_t *v, size_t len)
{
	test_doc_check(s_doc, "PROTOCOL.md", "## 11. Worked example", name, v,
	    len);
}

/* The fixed inputs of §11. */
static const char *OIN_A = "00000001001234567000";   /* leerplicht */
static const char *OIN_B = "00000001002345678000";   /* halt */

static void
s_keys(uint8_t a_sign_sk[64], uint8_t a_sign_pk[32], uint8_t a_x_sk[32],
    uint8_t a_x_pk[32], uint8_t b_x_sk[32], uint8_t b_x_pk[32])
{
	uint8_t seed[32];

	memset(seed, 0x11, 32);
	cr_assert(crypto_sign_seed_keypair(a_sign_pk, a_sign_sk, seed) == 0);
	memset(a_x_sk, 0x22, 32);
	memset(b_x_sk, 0x44, 32);
	cr_assert(crypto_scalarmult_base(a_x_pk, a_x_sk) == 0);
	cr_assert(crypto_scalarmult_base(b_x_pk, b_x_sk) == 0);
}

static void
s_kdf(const uint8_t own_sk[32], const uint8_t other_pk[32],
    const uint8_t snd[32], const uint8_t rcv[32], uint8_t k[32])
{
	uint8_t s[32], msg[24 + 64];

	cr_assert(crypto_scalarmult(s, own_sk, other_pk) == 0);
	memcpy(msg, "ketenpost/v1/payload-key", 24);
	memcpy(msg + 24, snd, 32);
	memcpy(msg + 56, rcv, 32);
	cr_assert(crypto_generichash(k, 32, msg, sizeof(msg), s, 32) == 0);
}

static size_t
s_header(uint8_t *out, const uint8_t nonce[24])
{
	Kp__Header h = KP__HEADER__INIT;
	uint8_t id[16], ph[32], cr[32];

	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)i;
	id[6] = 0x46;  /* UUIDv4 layout */
	id[8] = 0x88;
	memset(ph, 0x77, 32);
	memset(cr, 0x99, 32);
	h.has_schema_major = h.has_schema_minor = h.has_event_id = 1;
	h.schema_major = 1;
	h.event_id = (ProtobufCBinaryData){ 16, id };
	h.has_event_type = 1;
	h.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	h.sender_oin = (char *)OIN_A;
	h.recipient_oin = (char *)OIN_B;
	h.purpose = "mas.referral";
	h.legal_basis = "lpw-art-22";
	h.has_policy_hash = h.has_created_at_ms = h.has_expires_at_ms = 1;
	h.policy_hash = (ProtobufCBinaryData){ 32, ph };
	h.created_at_ms = 1798761600000ull;           /* 2027-01-01T00:00:00Z */
	h.expires_at_ms = 1798761600000ull + 30ull * 86400000u;
	h.has_case_ref = h.has_nonce = 1;
	h.case_ref = (ProtobufCBinaryData){ 32, cr };
	h.nonce = (ProtobufCBinaryData){ 24, (uint8_t *)nonce };
	return kp__header__pack(&h, out);
}

static size_t
s_payload(uint8_t *out)
{
	Kp__Referral r = KP__REFERRAL__INIT;

	r.has_route = r.has_absence_hours = r.has_age_years = 1;
	r.route = KP__ROUTE__ROUTE_HALT;
	r.absence_hours = 32;
	r.age_years = 15;
	return kp__referral__pack(&r, out);
}

static size_t
s_tbs(const char *label, const uint8_t *body, size_t blen,
    const uint8_t *tail, size_t tlen, uint8_t *out)
{
	size_t l = strlen(label);

	memcpy(out, label, l);
	out[l] = (uint8_t)(blen >> 24);
	out[l + 1] = (uint8_t)(blen >> 16);
	out[l + 2] = (uint8_t)(blen >> 8);
	out[l + 3] = (uint8_t)blen;
	memcpy(out + l + 4, body, blen);
	if (tlen > 0)
		memcpy(out + l + 4 + blen, tail, tlen);
	return l + 4 + blen + tlen;
}

Test(vectors, envelope_worked_example)
{
	uint8_t a_sk[64], a_pk[32], a_x[32], a_xp[32], b_x[32], b_xp[32];
	uint8_t k[32], k_lib[32], k_rev[32], nonce[24], h[512], p[64];
	uint8_t c[128], d[32], tbs[1024], sig[64], digest[32];
	unsigned long long clen;
	size_t hlen, plen, tlen;
	kp_err_t e;

	s_load_doc();
	s_keys(a_sk, a_pk, a_x, a_xp, b_x, b_xp);
	s_check("A_sign_pk", a_pk, 32);
	s_check("A_payload_pk", a_xp, 32);
	s_check("B_payload_pk", b_xp, 32);
	/* §4, computed by both sides, and by the library */
	s_kdf(a_x, b_xp, a_xp, b_xp, k);
	s_kdf(b_x, a_xp, a_xp, b_xp, k_rev);
	cr_assert_arr_eq(k, k_rev, 32, "both sides derive the same key");
	cr_assert(directory_derive_key(a_x, b_xp, a_xp, b_xp, k_lib) == 0);
	cr_assert_arr_eq(k, k_lib, 32, "library key differs from §4");
	s_check("K", k, 32);
	/* §5 */
	memset(nonce, 0x55, sizeof(nonce));
	hlen = s_header(h, nonce);
	s_check("H", h, hlen);
	plen = s_payload(p);
	s_check("P", p, plen);
	cr_assert(crypto_aead_xchacha20poly1305_ietf_encrypt(c, &clen, p, plen,
	    h, hlen, NULL, nonce, k) == 0);
	s_check("C", c, (size_t)clen);
	cr_assert(crypto_generichash(d, 32, c, (size_t)clen, NULL, 0) == 0);
	s_check("D", d, 32);
	tlen = s_tbs("ketenpost/v1/envelope", h, hlen, d, 32, tbs);
	s_check("TBS", tbs, tlen);
	cr_assert(crypto_sign_detached(sig, NULL, tbs, tlen, a_sk) == 0);
	s_check("S", sig, 64);
	cr_assert(crypto_generichash(digest, 32, tbs, tlen, NULL, 0) == 0);
	s_check("envelope_digest", digest, 32);
	/* the library's auditor check accepts the independent signature */
	cr_assert(envelope_verify_detached(a_pk, h, hlen, d, sig, &e) == 0,
	    "%s", e.msg);
}

Test(vectors, receipt_and_pseudonym_worked_example)
{
	uint8_t b_sk[64], b_pk[32], seed[32], body[256], tbs[512], sig[64];
	uint8_t id[16], dg[32], rd[32], kp[32], ref[32], b_x[32], msg[128];
	Kp__ReceiptBody rb = KP__RECEIPT_BODY__INIT;
	size_t blen, tlen, n;

	s_load_doc();
	memset(seed, 0x33, 32);
	cr_assert(crypto_sign_seed_keypair(b_pk, b_sk, seed) == 0);
	s_check("B_sign_pk", b_pk, 32);
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)i;
	id[6] = 0x46;
	id[8] = 0x88;
	memset(dg, 0xee, 32);
	rb.has_schema_major = rb.has_schema_minor = rb.has_event_id = 1;
	rb.schema_major = 1;
	rb.event_id = (ProtobufCBinaryData){ 16, id };
	rb.issuer_oin = (char *)OIN_B;
	rb.subject_oin = (char *)OIN_A;
	rb.has_envelope_digest = rb.has_status = rb.has_reason = 1;
	rb.envelope_digest = (ProtobufCBinaryData){ 32, dg };
	rb.status = KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED;
	rb.reason = KP__REASON__REASON_NONE;
	rb.has_received_at_ms = 1;
	rb.received_at_ms = 1798761601234ull;
	blen = kp__receipt_body__pack(&rb, body);
	s_check("B_receipt_body", body, blen);
	tlen = s_tbs("ketenpost/v1/receipt", body, blen, NULL, 0, tbs);
	cr_assert(crypto_sign_detached(sig, NULL, tbs, tlen, b_sk) == 0);
	s_check("B_receipt_signature", sig, 64);
	cr_assert(crypto_generichash(rd, 32, tbs, tlen, NULL, 0) == 0);
	s_check("receipt_digest", rd, 32);
	/* §9: the pseudonym of local case "LP-2026-0042" for partner B */
	memset(b_x, 0x22, 32);  /* A's payload secret key, as in §11 */
	cr_assert(crypto_generichash(kp, 32,
	    (const uint8_t *)"ketenpost/v1/pseudonym-key", 26, b_x, 32) == 0);
	n = 0;
	memcpy(msg, "ketenpost/v1/case", 17); n += 17;
	msg[n++] = 0;
	memcpy(msg + n, OIN_B, 20); n += 20;
	msg[n++] = 0;
	memcpy(msg + n, "LP-2026-0042", 12); n += 12;
	cr_assert(crypto_generichash(ref, 32, msg, n, kp, 32) == 0);
	s_check("case_ref", ref, 32);
}

/* SHA-256(prefix || a || b), b may be NULL: RFC 9162's leaf and node. */
static void
s_sha(uint8_t prefix, const uint8_t *a, const uint8_t *b, uint8_t out[32])
{
	uint8_t m[65];
	unsigned int n = 0;

	m[0] = prefix;
	memcpy(m + 1, a, 32);
	if (b != NULL)
		memcpy(m + 33, b, 32);
	cr_assert(EVP_Digest(m, b != NULL ? 65 : 33, out, &n, EVP_sha256(),
	    NULL) == 1 && n == 32);
}

/* The §11 envelope's H, D and digest, recomputed (checked above). */
static void
s_example_envelope(uint8_t *h, size_t *hlen, uint8_t d[32],
    uint8_t digest[32])
{
	uint8_t a_sk[64], a_pk[32], a_x[32], a_xp[32], b_x[32], b_xp[32];
	uint8_t k[32], nonce[24], p[64], c[128], tbs[1024];
	unsigned long long clen;
	size_t plen, tlen;

	s_keys(a_sk, a_pk, a_x, a_xp, b_x, b_xp);
	s_kdf(a_x, b_xp, a_xp, b_xp, k);
	memset(nonce, 0x55, sizeof(nonce));
	*hlen = s_header(h, nonce);
	plen = s_payload(p);
	cr_assert(crypto_aead_xchacha20poly1305_ietf_encrypt(c, &clen, p, plen,
	    h, *hlen, NULL, nonce, k) == 0);
	cr_assert(crypto_generichash(d, 32, c, (size_t)clen, NULL, 0) == 0);
	tlen = s_tbs("ketenpost/v1/envelope", h, *hlen, d, 32, tbs);
	cr_assert(crypto_generichash(digest, 32, tbs, tlen, NULL, 0) == 0);
}

/* §11.1: a batch of three, the §11 envelope first. */
Test(vectors, batch_worked_example)
{
	uint8_t a_sk[64], a_pk[32], a_x[32], a_xp[32], b_x[32], b_xp[32];
	uint8_t h[512], d[32], dg[3][32], leaf[3][32], n01[32], root[32];
	uint8_t btbs[256], bs[64], proof[512], env[1024], got[32], lib[32];
	ProtobufCBinaryData path[2];
	Kp__BatchProof bp = KP__BATCH_PROOF__INIT;
	Kp__Envelope e = KP__ENVELOPE__INIT;
	batch_tree_t *t = NULL;
	size_t hlen, blen = 0, plen, elen;
	kp_err_t err;

	s_load_doc();
	s_keys(a_sk, a_pk, a_x, a_xp, b_x, b_xp);
	s_example_envelope(h, &hlen, d, dg[0]);
	memset(dg[1], 0xe1, 32);
	memset(dg[2], 0xe2, 32);
	for (int i = 0; i < 3; i++)
		s_sha(0x00, dg[i], NULL, leaf[i]);
	s_check("leaf_0", leaf[0], 32);
	s_check("leaf_1", leaf[1], 32);
	s_check("leaf_2", leaf[2], 32);
	s_sha(0x01, leaf[0], leaf[1], n01);
	s_check("node_01", n01, 32);
	s_sha(0x01, n01, leaf[2], root);  /* leaf 2 is promoted, unhashed */
	s_check("root", root, 32);
	memcpy(btbs, "ketenpost/v1/batch", 18); blen = 18;
	btbs[blen++] = 0; btbs[blen++] = 0; btbs[blen++] = 0; btbs[blen++] = 3;
	memcpy(btbs + blen, root, 32); blen += 32;
	memcpy(btbs + blen, OIN_A, 20); blen += 20;
	memcpy(btbs + blen, OIN_B, 20); blen += 20;
	s_check("BTBS", btbs, blen);
	cr_assert(crypto_sign_detached(bs, NULL, btbs, blen, a_sk) == 0);
	s_check("BS", bs, 64);
	/* the proof of the §11 envelope (index 0): its sibling, then leaf 2 */
	path[0] = (ProtobufCBinaryData){ 32, leaf[1] };
	path[1] = (ProtobufCBinaryData){ 32, leaf[2] };
	bp.has_size = bp.has_index = bp.has_root = bp.has_signature = 1;
	bp.size = 3;
	bp.index = 0;
	bp.n_path = 2;
	bp.path = path;
	bp.root = (ProtobufCBinaryData){ 32, root };
	bp.signature = (ProtobufCBinaryData){ 64, bs };
	plen = kp__batch_proof__pack(&bp, proof);
	s_check("batch_proof_0", proof, plen);
	/* the library agrees: tree, and a third party's check of the
	 * evidence (header, digest, proof; no ciphertext) */
	cr_assert(batch_tree_new((const uint8_t (*)[32])dg, 3, &t) == 0);
	batch_tree_root(t, lib);
	cr_assert_arr_eq(lib, root, 32);
	batch_tree_destroy(&t);
	e.has_header = e.has_ciphertext_digest = 1;
	e.header = (ProtobufCBinaryData){ hlen, h };
	e.ciphertext_digest = (ProtobufCBinaryData){ 32, d };
	e.batch = &bp;
	elen = kp__envelope__pack(&e, env);
	cr_assert(envelope_verify_evidence(a_pk, env, elen, got, &err) == 0,
	    "%s", err.msg);
	cr_assert_arr_eq(got, dg[0], 32);
}

/* 64 hex digits into 32 bytes; -1 if they are not. */
static int
hex_decode_32(const char *hex, uint8_t out[32])
{
	size_t n = 0;

	return sodium_hex2bin(out, 32, hex, strlen(hex), NULL, &n, NULL) == 0 &&
	    n == 32 ? 0 : -1;
}

/* §11.2: B signs the §11 receipt and a stand-in as a batch of two. */
Test(vectors, receipt_batch_worked_example)
{
	uint8_t b_sk[64], b_pk[32], seed[32], rd[2][32], leaf[2][32], root[32];
	uint8_t btbs[256], bs[64];
	size_t blen = 0;
	int i;

	s_load_doc();
	memset(seed, 0x33, 32);
	cr_assert(crypto_sign_seed_keypair(b_pk, b_sk, seed) == 0);
	cr_assert(hex_decode_32("a154b2182a505ac1881471e463b4b307ab7319b67ad3b6"
	    "7d37170bfa04b69aa2", rd[0]) == 0);
	memset(rd[1], 0xd2, 32);
	for (i = 0; i < 2; i++)
		s_sha(0x00, rd[i], NULL, leaf[i]);
	s_check("receipt_leaf_0", leaf[0], 32);
	s_check("receipt_leaf_1", leaf[1], 32);
	s_sha(0x01, leaf[0], leaf[1], root);
	s_check("receipt_root", root, 32);
	memcpy(btbs, "ketenpost/v1/receipt-batch", 26); blen = 26;
	btbs[blen++] = 0; btbs[blen++] = 0; btbs[blen++] = 0; btbs[blen++] = 2;
	memcpy(btbs + blen, root, 32); blen += 32;
	memcpy(btbs + blen, OIN_B, 20); blen += 20;
	memcpy(btbs + blen, OIN_A, 20); blen += 20;
	s_check("receipt_BTBS", btbs, blen);
	cr_assert(crypto_sign_detached(bs, NULL, btbs, blen, b_sk) == 0);
	s_check("receipt_BS", bs, 64);
}
