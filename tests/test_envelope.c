/*
 * test_envelope.c: seal/open of every event type between organisations
 * made by the real certs/ketenpost-certs, and every refusal with its own
 * error code.  Tampering is done on the real wire bytes.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "common.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "events.pb-c.h"

struct org {
	identity_t *id;
	directory_t *dir;
};

static trust_t *s_trust;
static struct org s_lp, s_halt, s_rvdk, s_om, s_jbt, s_aud;

static void
s_org_load(struct org *o, const char *oin)
{
	char path[4096];
	kp_err_t e;
	int problems = 0;

	cr_assert(identity_load(s_trust, test_org_dir(test_chain(), oin, path,
	    sizeof(path)), &o->id, &e) == 0, "identity %s: %s", oin, e.msg);
	o->dir = directory_new(o->id);
	cr_assert(o->dir != NULL);
	cr_assert(directory_load(o->dir, s_trust, test_chain(), NULL, NULL,
	    &problems, &e) == 0, "%s", e.msg);
	cr_assert_eq(problems, 0);
}

static void
s_setup(void)
{
	kp_err_t e;

	test_init();
	cr_assert(trust_load(test_chain(), &s_trust, &e) == 0, "%s", e.msg);
	s_org_load(&s_lp, OIN_LEERPLICHT);
	s_org_load(&s_halt, OIN_HALT);
	s_org_load(&s_rvdk, OIN_RVDK);
	s_org_load(&s_om, OIN_OM);
	s_org_load(&s_jbt, OIN_JBT);
	s_org_load(&s_aud, OIN_AUDITOR);
}

static void
s_org_free(struct org *o)
{
	directory_destroy(&o->dir);
	identity_destroy(&o->id);
}

static void
s_teardown(void)
{
	s_org_free(&s_lp);
	s_org_free(&s_halt);
	s_org_free(&s_rvdk);
	s_org_free(&s_om);
	s_org_free(&s_jbt);
	s_org_free(&s_aud);
	trust_destroy(&s_trust);
}

TestSuite(envelope, .init = s_setup, .fini = s_teardown);

static void
s_meta(envelope_meta_t *m, int type)
{
	memset(m, 0, sizeof(*m));
	kp_uuid_new(m->event_id);
	m->event_type = type;
	snprintf(m->purpose, sizeof(m->purpose), "mas.route_referral");
	snprintf(m->legal_basis, sizeof(m->legal_basis), "lpw-art-22");
	memset(m->policy_hash, 0xab, sizeof(m->policy_hash));
	m->created_at_ms = kp_now_ms();
	m->expires_at_ms = m->created_at_ms + 86400000u;
	randombytes_buf(m->case_ref, sizeof(m->case_ref));
}

/* A packed, realistic event of each type. OUT: *buf (malloc'd). */
static size_t
s_event(int type, uint8_t **buf)
{
	Kp__Referral r = KP__REFERRAL__INIT;
	Kp__HaltOutcome h = KP__HALT_OUTCOME__INIT;
	Kp__RvdkAdvice a = KP__RVDK_ADVICE__INIT;
	Kp__OmDecision d = KP__OM_DECISION__INIT;
	Kp__JbtRequest j = KP__JBT_REQUEST__INIT;
	Kp__HaltComponent comps[] = { KP__HALT_COMPONENT__HALT_COMPONENT_LEEROPDRACHT,
	    KP__HALT_COMPONENT__HALT_COMPONENT_GESPREK_JONGERE };
	Kp__Sanction sanc[] = { KP__SANCTION__SANCTION_WERKSTRAF };
	ProtobufCMessage *m = NULL;

	switch (type) {
	case KP__EVENT_TYPE__EVENT_TYPE_REFERRAL:
		r.has_route = r.has_absence_hours = r.has_age_years = 1;
		r.route = KP__ROUTE__ROUTE_HALT;
		r.absence_hours = 32;
		r.age_years = 15;
		m = &r.base;
		break;
	case KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME:
		h.has_outcome = 1;
		h.outcome = KP__HALT_RESULT__HALT_RESULT_POSITIEF;
		h.n_components = 2;
		h.components = comps;
		m = &h.base;
		break;
	case KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE:
		a.has_advice_kind = a.has_care_needed = 1;
		a.advice_kind = KP__ADVICE_KIND__ADVICE_KIND_STRAFADVIES;
		a.care_needed = 1;
		m = &a.base;
		break;
	case KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION:
		d.has_decision = d.has_decided_on = 1;
		d.decision = KP__OM_DECISION_KIND__OM_DECISION_KIND_VOORWAARDELIJK_SEPOT;
		d.decided_on = 20270115;
		d.n_sanctions = 1;
		d.sanctions = sanc;
		m = &d.base;
		break;
	default:
		j.has_phase = j.has_request_kind = 1;
		j.phase = KP__JBT_PHASE__JBT_PHASE_REQUEST;
		j.request_kind = KP__JBT_REQUEST_KIND__JBT_REQUEST_KIND_VTB;
		m = &j.base;
		break;
	}
	*buf = malloc(protobuf_c_message_get_packed_size(m));
	cr_assert(*buf != NULL);
	return protobuf_c_message_pack(m, *buf);
}

/* Seal a referral from `from` to `to`. OUT: *env, *len, meta. */
static void
s_seal(struct org *from, const char *to_oin, envelope_meta_t *m,
    uint8_t **env, size_t *len)
{
	uint8_t *payload, digest[KP_DIGEST_LEN];
	size_t n = s_event(KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, &payload);
	const peer_t *to = directory_find(from->dir, to_oin);
	kp_err_t e;

	cr_assert(to != NULL);
	s_meta(m, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL);
	cr_assert(envelope_seal(from->dir, to, m, payload, n, env, len, digest,
	    &e) == 0, "seal: %s", e.msg);
	free(payload);
}

/* Open and expect failure with `code`; returns the message. */
static void
s_expect_open_fails(struct org *at, const uint8_t *env, size_t len, int code,
    const char *needle)
{
	envelope_meta_t m;
	uint8_t *payload = NULL, digest[KP_DIGEST_LEN];
	size_t plen = 0;
	bool has_digest;
	kp_err_t e;

	kp_err_clear(&e);
	cr_assert_eq(envelope_open(at->dir, env, len, &m, &payload, &plen,
	    digest, &has_digest, &e), -1);
	cr_assert_eq(e.code, code, "expected %s, got %s: %s",
	    kp_code_name(code), kp_code_name(e.code), e.msg);
	cr_assert(strstr(e.msg, needle) != NULL, "message '%s' lacks '%s'",
	    e.msg, needle);
	cr_assert_null(payload);
}

static void
s_roundtrip(struct org *from, struct org *to, const char *to_oin, int type)
{
	envelope_meta_t m, got;
	uint8_t *payload, *env, *opened = NULL;
	uint8_t d1[KP_DIGEST_LEN], d2[KP_DIGEST_LEN];
	size_t n = s_event(type, &payload), len, olen = 0;
	bool has_digest = false;
	kp_err_t e;

	s_meta(&m, type);
	cr_assert(envelope_seal(from->dir, directory_find(from->dir, to_oin),
	    &m, payload, n, &env, &len, d1, &e) == 0, "seal: %s", e.msg);
	cr_assert(envelope_open(to->dir, env, len, &got, &opened, &olen, d2,
	    &has_digest, &e) == 0, "open %s: %s", kp_code_name(e.code), e.msg);
	cr_assert(has_digest);
	cr_assert_arr_eq(d1, d2, KP_DIGEST_LEN, "envelope digests differ");
	cr_assert_eq(olen, n);
	cr_assert_arr_eq(opened, payload, n);
	cr_assert_arr_eq(got.event_id, m.event_id, KP_EVENT_ID_LEN);
	cr_assert_eq(got.event_type, type);
	cr_assert_str_eq(got.sender_oin, partner_oin(identity_public(from->id)));
	cr_assert_str_eq(got.recipient_oin, to_oin);
	cr_assert_str_eq(got.purpose, m.purpose);
	cr_assert_str_eq(got.legal_basis, m.legal_basis);
	cr_assert_arr_eq(got.policy_hash, m.policy_hash, KP_DIGEST_LEN);
	cr_assert_arr_eq(got.case_ref, m.case_ref, KP_CASE_REF_LEN);
	cr_assert_eq(got.created_at_ms, m.created_at_ms);
	cr_assert_eq(got.schema_major, KP_SCHEMA_MAJOR);
	free(payload);
	free(env);
	free(opened);
}

Test(envelope, roundtrip_every_event_type)
{
	s_roundtrip(&s_lp, &s_halt, OIN_HALT, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL);
	s_roundtrip(&s_halt, &s_lp, OIN_LEERPLICHT,
	    KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME);
	s_roundtrip(&s_rvdk, &s_lp, OIN_LEERPLICHT,
	    KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE);
	s_roundtrip(&s_om, &s_lp, OIN_LEERPLICHT,
	    KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION);
	s_roundtrip(&s_lp, &s_jbt, OIN_JBT, KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST);
}

Test(envelope, reply_to_is_carried)
{
	envelope_meta_t m, got;
	uint8_t *payload, *env, *opened = NULL, d[KP_DIGEST_LEN];
	size_t n = s_event(KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME, &payload);
	size_t len, olen;
	bool hd;
	kp_err_t e;

	s_meta(&m, KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME);
	m.has_reply_to = true;
	kp_uuid_new(m.in_reply_to);
	cr_assert(envelope_seal(s_halt.dir, directory_find(s_halt.dir,
	    OIN_LEERPLICHT), &m, payload, n, &env, &len, d, &e) == 0);
	cr_assert(envelope_open(s_lp.dir, env, len, &got, &opened, &olen, d,
	    &hd, &e) == 0, "%s", e.msg);
	cr_assert(got.has_reply_to);
	cr_assert_arr_eq(got.in_reply_to, m.in_reply_to, KP_EVENT_ID_LEN);
	free(payload);
	free(env);
	free(opened);
}

Test(envelope, payload_keys_are_directional_and_agree)
{
	const peer_t *lp_to_halt = directory_find(s_lp.dir, OIN_HALT);
	const peer_t *halt_to_lp = directory_find(s_halt.dir, OIN_LEERPLICHT);
	const peer_t *lp_to_rvdk = directory_find(s_lp.dir, OIN_RVDK);

	cr_assert_arr_eq(peer_tx_key(lp_to_halt), peer_rx_key(halt_to_lp), 32);
	cr_assert_arr_eq(peer_rx_key(lp_to_halt), peer_tx_key(halt_to_lp), 32);
	cr_assert_arr_neq(peer_tx_key(lp_to_halt), peer_rx_key(lp_to_halt), 32);
	cr_assert_arr_neq(peer_tx_key(lp_to_halt), peer_tx_key(lp_to_rvdk), 32);
}

/* Unpack the envelope, let `edit` change it, repack. */
static void
s_tamper(uint8_t **env, size_t *len, void (*edit)(Kp__Envelope *))
{
	Kp__Envelope *m = kp__envelope__unpack(NULL, *len, *env);
	uint8_t *out;

	cr_assert_not_null(m);
	edit(m);
	out = malloc(protobuf_c_message_get_packed_size(&m->base));
	*len = protobuf_c_message_pack(&m->base, out);
	kp__envelope__free_unpacked(m, NULL);
	free(*env);
	*env = out;
}

/* Header bytes: 08 01 10 00 1a 10 <event_id>: byte 8 is in event_id. */
static void s_flip_header(Kp__Envelope *m) { m->header.data[8] ^= 0x01; }
static void s_flip_ct(Kp__Envelope *m) { m->ciphertext.data[3] ^= 0x80; }
static void s_flip_sig(Kp__Envelope *m) { m->signature.data[10] ^= 0x04; }

static void
s_flip_ct_and_digest(Kp__Envelope *m)
{
	m->ciphertext.data[3] ^= 0x80;
	cr_assert(crypto_generichash(m->ciphertext_digest.data, 32,
	    m->ciphertext.data, m->ciphertext.len, NULL, 0) == 0);
}

Test(envelope, flipped_bit_in_header_is_bad_signature)
{
	envelope_meta_t m;
	uint8_t *env;
	size_t len;

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	s_tamper(&env, &len, s_flip_header);
	s_expect_open_fails(&s_halt, env, len, KP_ERR_BAD_SIGNATURE,
	    "signature does not verify");
	free(env);
}

Test(envelope, flipped_bit_in_ciphertext_is_ciphertext_corrupt)
{
	envelope_meta_t m;
	uint8_t *env;
	size_t len;

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	s_tamper(&env, &len, s_flip_ct);
	s_expect_open_fails(&s_halt, env, len, KP_ERR_CIPHERTEXT_CORRUPT,
	    "does not match the signed digest");
	free(env);
}

Test(envelope, altered_ciphertext_with_new_digest_is_bad_signature)
{
	envelope_meta_t m;
	uint8_t *env;
	size_t len;

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	s_tamper(&env, &len, s_flip_ct_and_digest);
	s_expect_open_fails(&s_halt, env, len, KP_ERR_BAD_SIGNATURE,
	    "signature does not verify");
	free(env);
}

Test(envelope, flipped_bit_in_signature_is_bad_signature)
{
	envelope_meta_t m;
	uint8_t *env;
	size_t len;

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	s_tamper(&env, &len, s_flip_sig);
	s_expect_open_fails(&s_halt, env, len, KP_ERR_BAD_SIGNATURE,
	    "signature does not verify");
	free(env);
}

Test(envelope, wrong_recipient)
{
	envelope_meta_t m;
	uint8_t *env;
	size_t len;

	s_seal(&s_lp, OIN_RVDK, &m, &env, &len);
	s_expect_open_fails(&s_halt, env, len, KP_ERR_WRONG_RECIPIENT,
	    OIN_RVDK);
	free(env);
}

/* OM re-signs a header that claims to come from Leerplicht. */
static const identity_t *s_forger;
static void
s_resign(Kp__Envelope *m)
{
	uint8_t *tbs;
	size_t n = 21 + 4 + m->header.len + 32;

	tbs = malloc(n);
	memcpy(tbs, "ketenpost/v1/envelope", 21);
	tbs[21] = (uint8_t)(m->header.len >> 24);
	tbs[22] = (uint8_t)(m->header.len >> 16);
	tbs[23] = (uint8_t)(m->header.len >> 8);
	tbs[24] = (uint8_t)m->header.len;
	memcpy(tbs + 25, m->header.data, m->header.len);
	memcpy(tbs + 25 + m->header.len, m->ciphertext_digest.data, 32);
	cr_assert(crypto_sign_detached(m->signature.data, NULL, tbs, n,
	    identity_sign_sk(s_forger)) == 0);
	free(tbs);
}

Test(envelope, signature_by_another_organisation)
{
	envelope_meta_t m;
	uint8_t *env;
	size_t len;

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	s_forger = s_om.id;
	s_tamper(&env, &len, s_resign);
	s_expect_open_fails(&s_halt, env, len, KP_ERR_BAD_SIGNATURE,
	    OIN_LEERPLICHT);
	free(env);
}

Test(envelope, the_protocol_tbs_is_what_is_signed)
{
	/* Re-signing with the real sender's key per PROTOCOL.md must pass:
	 * proves the documented to-be-signed layout is the implemented one. */
	envelope_meta_t m, got;
	uint8_t *env, *payload = NULL, d[32];
	size_t len, plen;
	bool hd;
	kp_err_t e;

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	s_forger = s_lp.id;
	s_tamper(&env, &len, s_resign);
	cr_assert(envelope_open(s_halt.dir, env, len, &got, &payload, &plen, d,
	    &hd, &e) == 0, "%s", e.msg);
	free(payload);
	free(env);
}

Test(envelope, unknown_sender)
{
	envelope_meta_t m;
	uint8_t *env;
	size_t len;
	directory_t *lonely = directory_new(s_halt.id);

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	struct org o = { s_halt.id, lonely };
	s_expect_open_fails(&o, env, len, KP_ERR_UNKNOWN_SENDER, OIN_LEERPLICHT);
	directory_destroy(&lonely);
	free(env);
}

Test(envelope, truncated_protobuf)
{
	envelope_meta_t m;
	uint8_t *env;
	size_t len;

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	s_expect_open_fails(&s_halt, env, len - 7, KP_ERR_MALFORMED,
	    "truncated or corrupt");
	s_expect_open_fails(&s_halt, env, 3, KP_ERR_MALFORMED,
	    "truncated or corrupt");
	free(env);
}

Test(envelope, malformed_protobuf)
{
	uint8_t junk[200];

	memset(junk, 0xff, sizeof(junk));
	s_expect_open_fails(&s_halt, junk, sizeof(junk), KP_ERR_MALFORMED,
	    "not a valid protobuf");
	/* valid protobuf, but not an envelope: nothing of it present */
	s_expect_open_fails(&s_halt, (const uint8_t *)"", 0, KP_ERR_MALFORMED,
	    "lacks header");
}

/* Replace *env by the packing of `copy` (a shallow, edited copy). */
static void
s_repack(const Kp__Envelope *copy, uint8_t **env, size_t *len)
{
	uint8_t *out = malloc(protobuf_c_message_get_packed_size(&copy->base));

	*len = protobuf_c_message_pack(&copy->base, out);
	free(*env);
	*env = out;
}

Test(envelope, unknown_schema_major_version)
{
	envelope_meta_t m;
	uint8_t *env, hb[1024];
	size_t len;
	Kp__Envelope *p, copy;
	Kp__Header *h;

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	p = kp__envelope__unpack(NULL, len, env);
	h = kp__header__unpack(NULL, p->header.len, p->header.data);
	h->schema_major = 2;
	copy = *p;
	copy.header.data = hb;
	copy.header.len = protobuf_c_message_pack(&h->base, hb);
	s_repack(&copy, &env, &len);
	kp__header__free_unpacked(h, NULL);
	kp__envelope__free_unpacked(p, NULL);
	s_expect_open_fails(&s_halt, env, len, KP_ERR_SCHEMA_VERSION,
	    "schema version 2.0 is not supported");
	free(env);
}

Test(envelope, oversize_payload_and_envelope)
{
	envelope_meta_t m;
	uint8_t *big = calloc(1, KP_MAX_ENVELOPE + 1), *env = NULL;
	uint8_t d[KP_DIGEST_LEN];
	size_t len;
	kp_err_t e;

	s_meta(&m, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL);
	cr_assert_eq(envelope_seal(s_lp.dir, directory_find(s_lp.dir, OIN_HALT),
	    &m, big, KP_MAX_PAYLOAD + 1, &env, &len, d, &e), -1);
	cr_assert_eq(e.code, KP_ERR_OVERSIZE, "%s", e.msg);
	cr_assert(strstr(e.msg, "over the limit") != NULL);
	s_expect_open_fails(&s_halt, big, KP_MAX_ENVELOPE + 1, KP_ERR_OVERSIZE,
	    "over the limit");
	free(big);
}

Test(envelope, auditor_sends_and_receives_nothing)
{
	envelope_meta_t m;
	uint8_t payload[4] = { 8, 2, 0x30, 32 }, *env = NULL, d[32];
	size_t len;
	kp_err_t e;

	s_meta(&m, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL);
	cr_assert_eq(envelope_seal(s_aud.dir, directory_find(s_aud.dir,
	    OIN_HALT), &m, payload, 2, &env, &len, d, &e), -1);
	cr_assert_eq(e.code, KP_ERR_ROLE);
	cr_assert(strstr(e.msg, "auditor") != NULL, "%s", e.msg);
	cr_assert_eq(envelope_seal(s_lp.dir, directory_find(s_lp.dir,
	    OIN_AUDITOR), &m, payload, 2, &env, &len, d, &e), -1);
	cr_assert_eq(e.code, KP_ERR_ROLE);
}

/* A correctly signed envelope whose ciphertext is under another key. */
Test(envelope, payload_under_wrong_key_is_decrypt_failed)
{
	envelope_meta_t m;
	uint8_t *env, key[32], ct[64], digest[32], sig[64];
	size_t len;
	Kp__Envelope *p, copy;
	Kp__Header *h;
	unsigned long long clen;

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	p = kp__envelope__unpack(NULL, len, env);
	h = kp__header__unpack(NULL, p->header.len, p->header.data);
	randombytes_buf(key, sizeof(key));
	cr_assert(crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen,
	    (const uint8_t *)"hello", 5, p->header.data, p->header.len, NULL,
	    h->nonce.data, key) == 0);
	cr_assert(crypto_generichash(digest, 32, ct, (size_t)clen, NULL, 0) == 0);
	copy = *p;
	copy.ciphertext = (ProtobufCBinaryData){ (size_t)clen, ct };
	copy.ciphertext_digest = (ProtobufCBinaryData){ 32, digest };
	copy.signature = (ProtobufCBinaryData){ 64, sig };
	s_forger = s_lp.id;
	s_resign(&copy);
	s_repack(&copy, &env, &len);
	kp__header__free_unpacked(h, NULL);
	kp__envelope__free_unpacked(p, NULL);
	s_expect_open_fails(&s_halt, env, len, KP_ERR_DECRYPT,
	    "does not decrypt");
	free(env);
}

Test(envelope, auditor_verifies_without_payload)
{
	envelope_meta_t m;
	uint8_t *env;
	size_t len;
	Kp__Envelope *p;
	const partner_t *lp = identity_public(s_lp.id);
	kp_err_t e;

	s_seal(&s_lp, OIN_HALT, &m, &env, &len);
	p = kp__envelope__unpack(NULL, len, env);
	cr_assert(envelope_verify_detached(partner_sign_pk(lp), p->header.data,
	    p->header.len, p->ciphertext_digest.data, p->signature.data,
	    &e) == 0, "%s", e.msg);
	p->ciphertext_digest.data[0] ^= 1;
	cr_assert_eq(envelope_verify_detached(partner_sign_pk(lp),
	    p->header.data, p->header.len, p->ciphertext_digest.data,
	    p->signature.data, &e), -1);
	cr_assert_eq(e.code, KP_ERR_BAD_SIGNATURE);
	kp__envelope__free_unpacked(p, NULL);
	free(env);
}

/* ---- receipts ---------------------------------------------------------- */

static void
s_receipt(receipt_t *r, int status, int reason)
{
	memset(r, 0, sizeof(*r));
	r->has_event_id = true;
	kp_uuid_new(r->event_id);
	snprintf(r->subject_oin, sizeof(r->subject_oin), "%s", OIN_LEERPLICHT);
	randombytes_buf(r->envelope_digest, sizeof(r->envelope_digest));
	r->status = status;
	r->reason = reason;
	r->received_at_ms = kp_now_ms();
}

Test(envelope, receipts_positive_and_negative_roundtrip)
{
	receipt_t r, got;
	uint8_t *buf;
	size_t len;
	kp_err_t e;

	s_receipt(&r, KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED,
	    KP__REASON__REASON_NONE);
	cr_assert(receipt_sign(s_halt.dir, &r, &buf, &len, &e) == 0, "%s", e.msg);
	cr_assert(receipt_verify(s_lp.dir, buf, len, &got, &e) == 0, "%s", e.msg);
	cr_assert_str_eq(got.issuer_oin, OIN_HALT);
	cr_assert_eq(got.status, KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED);
	cr_assert_arr_eq(got.envelope_digest, r.envelope_digest, 32);
	cr_assert_arr_eq(got.event_id, r.event_id, 16);
	cr_assert_arr_eq(got.digest, r.digest, 32);
	free(buf);

	s_receipt(&r, KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED,
	    KP__REASON__REASON_POLICY_MISMATCH);
	r.has_expected_policy_hash = true;
	memset(r.expected_policy_hash, 0x11, 32);
	cr_assert(receipt_sign(s_halt.dir, &r, &buf, &len, &e) == 0);
	cr_assert(receipt_verify(s_lp.dir, buf, len, &got, &e) == 0, "%s", e.msg);
	cr_assert_eq(got.status, KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED);
	cr_assert_eq(got.reason, KP__REASON__REASON_POLICY_MISMATCH);
	cr_assert(got.has_expected_policy_hash);
	cr_assert_eq(got.expected_policy_hash[31], 0x11);
	free(buf);
}

Test(envelope, receipt_refusals)
{
	receipt_t r, got;
	uint8_t *buf;
	size_t len;
	kp_err_t e;

	s_receipt(&r, KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED,
	    KP__REASON__REASON_NONE);
	cr_assert(receipt_sign(s_halt.dir, &r, &buf, &len, &e) == 0);
	/* addressed to Leerplicht, verified by RvdK */
	cr_assert_eq(receipt_verify(s_rvdk.dir, buf, len, &got, &e), -1);
	cr_assert_eq(e.code, KP_ERR_WRONG_RECIPIENT, "%s", e.msg);
	/* a flipped bit in the signed body */
	buf[len - 70] ^= 0x01;
	cr_assert_eq(receipt_verify(s_lp.dir, buf, len, &got, &e), -1);
	cr_assert_eq(e.code, KP_ERR_BAD_SIGNATURE, "%s", e.msg);
	buf[len - 70] ^= 0x01;
	/* a flipped bit in the signature */
	buf[len - 1] ^= 0x01;
	cr_assert_eq(receipt_verify(s_lp.dir, buf, len, &got, &e), -1);
	cr_assert_eq(e.code, KP_ERR_BAD_SIGNATURE, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "receipt signature does not verify "
	    "with a certificate of "), "%s", e.msg);
	cr_assert_eq(receipt_verify(s_lp.dir, buf, 5, &got, &e), -1);
	cr_assert_eq(e.code, KP_ERR_MALFORMED, "%s", e.msg);
	free(buf);
}

/* ---- batch signatures (PROTOCOL.md §5.6) --------------------------------- */

#define NB 7

/* Seal n referrals from `from` to `to_oin` and sign them as one batch.
 * OUT: env[i], len[i], digest[i] (the envelope digest of each draft). */
static void
s_seal_batch(struct org *from, const char *to_oin, size_t n, uint8_t **env,
    size_t *len, uint8_t digest[][KP_DIGEST_LEN])
{
	envelope_draft_t d[NB], *dp[NB];
	const peer_t *to = directory_find(from->dir, to_oin);
	envelope_meta_t m;
	uint8_t *payload;
	size_t plen = s_event(KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, &payload);
	kp_err_t e;

	cr_assert(to != NULL && n <= NB);
	for (size_t i = 0; i < n; i++) {
		s_meta(&m, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL);
		cr_assert(envelope_seal_draft(from->dir, to, &m, payload, plen,
		    &d[i], &e) == 0, "draft: %s", e.msg);
		memcpy(digest[i], d[i].digest, KP_DIGEST_LEN);
		dp[i] = &d[i];
	}
	cr_assert(envelope_sign_batch(from->dir, dp, n, env, len, &e) == 0,
	    "sign: %s", e.msg);
	for (size_t i = 0; i < n; i++)
		envelope_draft_clear(&d[i]);
	free(payload);
}

static void
s_free_all(uint8_t **env, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(env[i]);
}

/* Open with an optional cache; OUT: the envelope digest. */
static void
s_open_ok(struct org *at, batch_cache_t *c, const uint8_t *env, size_t len,
    uint8_t digest[KP_DIGEST_LEN])
{
	envelope_meta_t m;
	uint8_t *payload = NULL;
	size_t plen = 0;
	bool has_digest = false;
	kp_err_t e;

	cr_assert(envelope_open_cached(at->dir, c, env, len, &m, &payload,
	    &plen, digest, &has_digest, &e) == 0, "open %s: %s",
	    kp_code_name(e.code), e.msg);
	cr_assert(has_digest);
	free(payload);
}

/* Every envelope of a batch verifies alone: opened by the recipient with
 * no cache, and its evidence (no ciphertext) by anyone holding the
 * sender's certificate key; the digest is the one of §5.5. */
Test(envelope, every_envelope_of_a_batch_verifies_alone)
{
	uint8_t *env[NB], dg[NB][KP_DIGEST_LEN], got[KP_DIGEST_LEN], *ev;
	size_t len[NB], evlen;
	const partner_t *lp = identity_public(s_lp.id);
	Kp__Envelope *p;
	kp_err_t e;

	s_seal_batch(&s_lp, OIN_HALT, NB, env, len, dg);
	for (size_t i = NB; i > 0; i--) {      /* any order, each alone */
		s_open_ok(&s_halt, NULL, env[i - 1], len[i - 1], got);
		cr_assert_arr_eq(got, dg[i - 1], KP_DIGEST_LEN);
		p = kp__envelope__unpack(NULL, len[i - 1], env[i - 1]);
		cr_assert_not_null(p->batch);
		cr_assert(!p->has_signature, "field 4 absent in a batch");
		cr_assert_eq(p->batch->size, NB);
		cr_assert_eq(p->batch->index, i - 1);
		kp__envelope__free_unpacked(p, NULL);
		cr_assert(envelope_strip(env[i - 1], len[i - 1], &ev, &evlen,
		    &e) == 0);
		cr_assert(envelope_verify_evidence(partner_sign_pk(lp), ev,
		    evlen, got, &e) == 0, "%s", e.msg);
		cr_assert_arr_eq(got, dg[i - 1], KP_DIGEST_LEN);
		/* another organisation's key does not verify it */
		cr_assert_eq(envelope_verify_evidence(partner_sign_pk(
		    identity_public(s_rvdk.id)), ev, evlen, got, &e), -1);
		cr_assert_eq(e.code, KP_ERR_BAD_SIGNATURE);
		free(ev);
	}
	s_free_all(env, NB);
}

/* A packed tree head of Leerplicht's log, of size with a root of root32
 * (32 bytes).  OUT: *hlen; the caller frees it. */
static uint8_t *
s_lp_head(uint64_t size, uint8_t *root32, size_t *hlen)
{
	Kp__TreeHead th = KP__TREE_HEAD__INIT;
	uint8_t *head;

	th.oin = (char *)OIN_LEERPLICHT;
	th.has_size = th.has_root = 1;
	th.size = size;
	th.root = (ProtobufCBinaryData){ 32, root32 };
	*hlen = kp__tree_head__get_packed_size(&th);
	cr_assert_not_null(head = malloc(*hlen));
	kp__tree_head__pack(&th, head);
	return head;
}

/* The evidence keeps what the signature covers and loses the ciphertext
 * and the tree head riding along (kept apart by the receiver's witness
 * table): it still verifies, with the same digest, and is the same
 * evidence as that of the envelope without a head. */
Test(envelope, evidence_has_no_tree_head)
{
	uint8_t *env[2], dg[2][KP_DIGEST_LEN], got[KP_DIGEST_LEN], *head;
	uint8_t *ev, *ev0, *h2, root[32] = { 7 };
	size_t len[2], hlen, evlen, ev0len, h2len;
	kp_err_t e;

	s_seal_batch(&s_lp, OIN_HALT, 2, env, len, dg);
	cr_assert(envelope_strip(env[0], len[0], &ev0, &ev0len, &e) == 0);
	head = s_lp_head(12, root, &hlen);
	cr_assert(envelope_attach_head(&env[0], &len[0], false, head, hlen) ==
	    0);
	cr_assert(envelope_extract_head(env[0], len[0], false, &h2, &h2len) ==
	    0);
	cr_assert_not_null(h2, "the envelope carries a head");
	free(h2);
	cr_assert(envelope_strip(env[0], len[0], &ev, &evlen, &e) == 0);
	cr_assert(envelope_extract_head(ev, evlen, false, &h2, &h2len) == 0);
	cr_assert_null(h2, "the evidence carries no head");
	cr_assert_eq(evlen, ev0len);
	cr_assert_arr_eq(ev, ev0, evlen);
	cr_assert(envelope_verify_evidence(partner_sign_pk(identity_public(
	    s_lp.id)), ev, evlen, got, &e) == 0, "%s", e.msg);
	cr_assert_arr_eq(got, dg[0], KP_DIGEST_LEN);
	free(head);
	free(ev);
	free(ev0);
	s_free_all(env, 2);
}

/* The evidence as envelope_strip made it before the open kept its parse
 * (its code at e944e58, copied here as the reference): parse the bytes
 * again, drop the ciphertext and the head, pack. */
static void
s_strip_reference(const uint8_t *buf, size_t len, uint8_t **out,
    size_t *out_len)
{
	Kp__Envelope *env = kp__envelope__unpack(NULL, len, buf);
	Kp__TreeHead *head;

	cr_assert_not_null(env);
	head = env->tree_head;
	env->tree_head = NULL;
	env->has_ciphertext = 0;
	*out_len = kp__envelope__get_packed_size(env);
	cr_assert_not_null(*out = malloc(*out_len + 1));
	kp__envelope__pack(env, *out);
	env->tree_head = head;
	kp__envelope__free_unpacked(env, NULL);
}

/* The open that keeps its parse gives the same evidence and tree head
 * bytes as envelope_strip and envelope_extract_head on the wire bytes,
 * and the same as the reference above. */
static void
s_parsed_same(const uint8_t *env, size_t len, bool want_head)
{
	envelope_meta_t m;
	envelope_parsed_t *p = NULL;
	uint8_t dg[KP_DIGEST_LEN], *payload = NULL, *ev, *ref, *old, *h, *h0;
	size_t plen = 0, evlen, reflen, oldlen, hlen = 0, h0len = 0;
	bool has_digest = false;
	kp_err_t e;

	cr_assert(envelope_open_parsed(s_halt.dir, NULL, env, len, &m,
	    &payload, &plen, dg, &has_digest, &p, &e) == 0, "%s", e.msg);
	cr_assert_not_null(p);
	cr_assert(envelope_parsed_strip(p, &ev, &evlen, &e) == 0);
	s_strip_reference(env, len, &ref, &reflen);
	cr_assert(envelope_strip(env, len, &old, &oldlen, &e) == 0);
	cr_assert_eq(evlen, reflen);
	cr_assert_arr_eq(ev, ref, evlen);
	cr_assert_eq(oldlen, reflen);
	cr_assert_arr_eq(old, ref, oldlen);
	cr_assert(envelope_parsed_head(p, &h, &hlen) == 0);
	cr_assert(envelope_extract_head(env, len, false, &h0, &h0len) == 0);
	cr_assert_eq(h != NULL, want_head);
	cr_assert_eq(h0 != NULL, want_head);
	if (want_head) {
		cr_assert_eq(hlen, h0len);
		cr_assert_arr_eq(h, h0, hlen);
	}
	envelope_parsed_destroy(&p);
	cr_assert_null(p);
	envelope_parsed_destroy(&p);             /* twice: harmless */
	free(h);
	free(h0);
	free(ev);
	free(ref);
	free(old);
	free(payload);
}

Test(envelope, open_parsed_strips_and_extracts_as_before)
{
	uint8_t *env[NB], *one[1], dg[NB][KP_DIGEST_LEN], *head;
	uint8_t root[32] = { 9 }, *payload = NULL, *bad;
	size_t len[NB], onelen[1], hlen, plen = 0;
	envelope_parsed_t *p = NULL, *kept;
	envelope_meta_t m;
	bool has_digest;
	kp_err_t e;

	s_seal_batch(&s_lp, OIN_HALT, NB, env, len, dg);   /* batch-signed */
	s_seal_batch(&s_lp, OIN_HALT, 1, one, onelen, dg); /* batch of one */
	head = s_lp_head(40, root, &hlen);
	cr_assert(envelope_attach_head(&env[3], &len[3], false, head, hlen) ==
	    0);
	cr_assert(envelope_attach_head(&one[0], &onelen[0], false, head,
	    hlen) == 0);
	for (size_t i = 0; i < NB; i++)
		s_parsed_same(env[i], len[i], i == 3);
	s_parsed_same(one[0], onelen[0], true);
	/* a refused envelope keeps nothing: *parsed, a parse before, is NULL */
	cr_assert_eq(envelope_open_parsed(s_halt.dir, NULL, env[0], len[0], &m,
	    &payload, &plen, dg[0], &has_digest, &p, &e), 0, "%s", e.msg);
	cr_assert_not_null(kept = p);
	free(payload);
	payload = NULL;
	cr_assert_not_null(bad = malloc(len[0]));
	memcpy(bad, env[0], len[0]);
	bad[len[0] - 1] ^= 1;
	cr_assert_eq(envelope_open_parsed(s_halt.dir, NULL, bad, len[0], &m,
	    &payload, &plen, dg[0], &has_digest, &p, &e), -1);
	cr_assert_null(p);
	envelope_parsed_destroy(&kept);
	free(bad);
	free(head);
	s_free_all(env, NB);
	s_free_all(one, 1);
}

Test(envelope, batch_of_one_is_the_plain_form)
{
	uint8_t *env[1], dg[1][KP_DIGEST_LEN], got[KP_DIGEST_LEN];
	size_t len[1];
	Kp__Envelope *p;
	Kp__Header *h;
	kp_err_t e;

	s_seal_batch(&s_lp, OIN_HALT, 1, env, len, dg);
	p = kp__envelope__unpack(NULL, len[0], env[0]);
	cr_assert_null(p->batch);
	cr_assert(p->has_signature && p->signature.len == 64);
	h = kp__header__unpack(NULL, p->header.len, p->header.data);
	cr_assert(envelope_verify_detached(partner_sign_pk(identity_public(
	    s_lp.id)), p->header.data, p->header.len,
	    p->ciphertext_digest.data, p->signature.data, &e) == 0);
	cr_assert_eq(h->schema_minor, 0, "the header is schema 1.0");
	kp__header__free_unpacked(h, NULL);
	kp__envelope__free_unpacked(p, NULL);
	s_open_ok(&s_halt, NULL, env[0], len[0], got);
	cr_assert_arr_eq(got, dg[0], KP_DIGEST_LEN);
	s_free_all(env, 1);
}

/* One Ed25519 verification per batch: the others hit the cache. */
Test(envelope, receiver_verifies_one_signature_per_batch)
{
	uint8_t *env[NB], *env2[NB], dg[NB][KP_DIGEST_LEN], got[32];
	size_t len[NB], len2[NB];
	batch_cache_t *c = batch_cache_new(1);
	uint64_t hits, misses;

	s_seal_batch(&s_lp, OIN_HALT, NB, env, len, dg);
	s_seal_batch(&s_lp, OIN_HALT, NB, env2, len2, dg);
	for (size_t i = 0; i < NB; i++)
		s_open_ok(&s_halt, c, env[i], len[i], got);
	batch_cache_stats(c, &hits, &misses);
	cr_assert_eq(misses, 1);
	cr_assert_eq(hits, NB - 1);
	/* a second batch pushes the first out of a cache of one */
	for (size_t i = 0; i < NB; i++)
		s_open_ok(&s_halt, c, env2[i], len2[i], got);
	s_open_ok(&s_halt, c, env[0], len[0], got);
	batch_cache_stats(c, &hits, &misses);
	cr_assert_eq(misses, 3);
	cr_assert_eq(hits, 2 * (NB - 1));
	cr_assert_eq(batch_cache_count(c), 1);
	batch_cache_destroy(&c);
	s_free_all(env, NB);
	s_free_all(env2, NB);
}

static void s_flip_path(Kp__Envelope *m) { m->batch->path[1].data[3] ^= 8; }
static void s_flip_root(Kp__Envelope *m) { m->batch->root.data[0] ^= 1; }
static void s_index(Kp__Envelope *m) { m->batch->index ^= 1; }
static void s_bsig(Kp__Envelope *m) { m->batch->signature.data[9] ^= 2; }
static void s_size_up(Kp__Envelope *m) { m->batch->size = NB + 1; }
static void s_index_out(Kp__Envelope *m) { m->batch->index = NB; }

/* Drop the path's last hash (freed here: free_unpacked sees n_path). */
static void
s_short_path(Kp__Envelope *m)
{
	free(m->batch->path[--m->batch->n_path].data);
}

static void
s_both_forms(Kp__Envelope *m)
{
	m->has_signature = 1;
	m->signature = (ProtobufCBinaryData){ 64, calloc(1, 64) };
}

/* Tamper with envelope 2 of a fresh batch; opening must fail with code. */
static void
s_batch_refused(void (*edit)(Kp__Envelope *), int code, const char *needle,
    batch_cache_t *c)
{
	uint8_t *env[NB], dg[NB][KP_DIGEST_LEN], got[KP_DIGEST_LEN];
	size_t len[NB];
	envelope_meta_t m;
	uint8_t *payload = NULL;
	size_t plen = 0;
	bool has_digest;
	kp_err_t e;

	s_seal_batch(&s_lp, OIN_HALT, NB, env, len, dg);
	if (c != NULL)                 /* the true root is verified, cached */
		s_open_ok(&s_halt, c, env[0], len[0], got);
	s_tamper(&env[2], &len[2], edit);
	cr_assert_eq(envelope_open_cached(s_halt.dir, c, env[2], len[2], &m,
	    &payload, &plen, got, &has_digest, &e), -1);
	cr_assert_eq(e.code, code, "expected %s, got %s: %s",
	    kp_code_name(code), kp_code_name(e.code), e.msg);
	cr_assert(strstr(e.msg, needle) != NULL, "'%s' lacks '%s'", e.msg,
	    needle);
	cr_assert_null(payload);
	s_free_all(env, NB);
}

Test(envelope, tampered_batch_proofs_are_refused_with_their_reason)
{
	batch_cache_t *c = batch_cache_new(8);

	for (int pass = 0; pass < 2; pass++) {  /* without, with a warm cache */
		batch_cache_t *cc = pass == 0 ? NULL : c;

		s_batch_refused(s_flip_path, KP_ERR_BATCH_PROOF,
		    "does not lead", cc);
		s_batch_refused(s_short_path, KP_ERR_BATCH_PROOF,
		    "does not lead", cc);
		s_batch_refused(s_index, KP_ERR_BATCH_PROOF, "does not lead",
		    cc);
		s_batch_refused(s_flip_root, KP_ERR_BATCH_PROOF,
		    "does not lead", cc);
		/* a size the path still fits is caught by the signature */
		s_batch_refused(s_size_up, KP_ERR_BAD_SIGNATURE,
		    "batch signature does not verify", cc);
		s_batch_refused(s_bsig, KP_ERR_BAD_SIGNATURE,
		    "batch signature does not verify", cc);
		s_batch_refused(s_index_out, KP_ERR_MALFORMED, "batch proof",
		    cc);
		s_batch_refused(s_both_forms, KP_ERR_MALFORMED, "signature",
		    cc);
		s_batch_refused(s_flip_header, KP_ERR_BATCH_PROOF,
		    "does not lead", cc);
	}
	batch_cache_destroy(&c);
	cr_assert_eq(envelope_reason_for(KP_ERR_BATCH_PROOF),
	    KP__REASON__REASON_BATCH_PROOF);
}

/* A batch is for one recipient (a partner never sees digests of
 * envelopes to others); the root a sender signed for one partner does not
 * verify at another. */
Test(envelope, a_batch_has_one_recipient)
{
	envelope_draft_t d[2], *dp[2] = { &d[0], &d[1] };
	envelope_meta_t m;
	uint8_t *payload, *out[2] = { NULL, NULL };
	size_t plen = s_event(KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, &payload);
	size_t olen[2];
	kp_err_t e;

	s_meta(&m, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL);
	cr_assert(envelope_seal_draft(s_lp.dir, directory_find(s_lp.dir,
	    OIN_HALT), &m, payload, plen, &d[0], &e) == 0);
	s_meta(&m, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL);
	cr_assert(envelope_seal_draft(s_lp.dir, directory_find(s_lp.dir,
	    OIN_RVDK), &m, payload, plen, &d[1], &e) == 0);
	cr_assert_eq(envelope_sign_batch(s_lp.dir, dp, 2, out, olen, &e), -1);
	cr_assert_eq(e.code, KP_ERR_INVALID_ARG);
	cr_assert_null(out[0]);
	envelope_draft_clear(&d[0]);
	envelope_draft_clear(&d[1]);
	free(payload);
}

/* ---- receipts in a batch (PROTOCOL.md §8.1) ------------------------------ */

/* NB receipts by Halt to Leerplicht, signed as one batch. */
static void
s_receipt_batch(size_t n, uint8_t **out, size_t *len, receipt_t *r)
{
	envelope_draft_t d[NB], *dp[NB];
	kp_err_t e;

	for (size_t i = 0; i < n; i++) {
		s_receipt(&r[i], KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED, 0);
		cr_assert(receipt_draft(s_halt.dir, &r[i], &d[i], &e) == 0,
		    "%s", e.msg);
		dp[i] = &d[i];
	}
	cr_assert(receipt_sign_batch(s_halt.dir, dp, n, out, len, &e) == 0,
	    "%s", e.msg);
	for (size_t i = 0; i < n; i++)
		envelope_draft_clear(&d[i]);
}

Test(envelope, every_receipt_of_a_batch_verifies_alone)
{
	uint8_t *out[NB];
	size_t len[NB];
	receipt_t r[NB], got;
	batch_cache_t *c = batch_cache_new(4);
	uint64_t hits, misses;
	Kp__Receipt *p;
	kp_err_t e;

	s_receipt_batch(NB, out, len, r);
	for (size_t i = 0; i < NB; i++) {
		p = kp__receipt__unpack(NULL, len[i], out[i]);
		cr_assert(p != NULL && p->batch != NULL && !p->has_signature);
		cr_assert_eq(p->batch->size, NB);
		kp__receipt__free_unpacked(p, NULL);
		cr_assert(receipt_verify(s_lp.dir, out[i], len[i], &got,
		    &e) == 0, "%s", e.msg);
		cr_assert_arr_eq(got.digest, r[i].digest, 32);
		cr_assert_arr_eq(got.event_id, r[i].event_id, 16);
		cr_assert(receipt_verify_cached(s_lp.dir, c, out[i], len[i],
		    &got, &e) == 0, "%s", e.msg);
	}
	batch_cache_stats(c, &hits, &misses);
	cr_assert_eq(misses, 1);
	cr_assert_eq(hits, NB - 1);
	batch_cache_destroy(&c);
	s_free_all(out, NB);
}

static void
s_receipt_tampered(void (*edit)(Kp__Receipt *), int code)
{
	uint8_t *out[NB], *bad;
	size_t len[NB], blen;
	receipt_t r[NB], got;
	Kp__Receipt *p;
	kp_err_t e;

	s_receipt_batch(NB, out, len, r);
	p = kp__receipt__unpack(NULL, len[3], out[3]);
	edit(p);
	bad = malloc(kp__receipt__get_packed_size(p));
	blen = kp__receipt__pack(p, bad);
	kp__receipt__free_unpacked(p, NULL);
	cr_assert_eq(receipt_verify(s_lp.dir, bad, blen, &got, &e), -1);
	cr_assert_eq(e.code, code, "expected %s, got %s: %s",
	    kp_code_name(code), kp_code_name(e.code), e.msg);
	free(bad);
	s_free_all(out, NB);
}

static void r_path(Kp__Receipt *m) { m->batch->path[0].data[1] ^= 1; }
static void r_root(Kp__Receipt *m) { m->batch->root.data[1] ^= 1; }
static void r_index(Kp__Receipt *m) { m->batch->index ^= 1; }
static void r_sig(Kp__Receipt *m) { m->batch->signature.data[1] ^= 1; }
static void r_body(Kp__Receipt *m) { m->body.data[m->body.len - 1] ^= 1; }

static void
r_both(Kp__Receipt *m)
{
	m->has_signature = 1;
	m->signature = (ProtobufCBinaryData){ 64, calloc(1, 64) };
}

Test(envelope, tampered_receipt_batch_proofs_are_refused)
{
	s_receipt_tampered(r_path, KP_ERR_BATCH_PROOF);
	s_receipt_tampered(r_root, KP_ERR_BATCH_PROOF);
	s_receipt_tampered(r_index, KP_ERR_BATCH_PROOF);
	s_receipt_tampered(r_body, KP_ERR_BATCH_PROOF);
	s_receipt_tampered(r_sig, KP_ERR_BAD_SIGNATURE);
	s_receipt_tampered(r_both, KP_ERR_MALFORMED);
}

/* A batch of one receipt is byte for byte receipt_sign's plain form. */
Test(envelope, receipt_batch_of_one_is_the_plain_form)
{
	uint8_t *out[1];
	size_t len[1];
	receipt_t r[1], got;
	Kp__Receipt *p;
	kp_err_t e;

	s_receipt_batch(1, out, len, r);
	p = kp__receipt__unpack(NULL, len[0], out[0]);
	cr_assert(p->batch == NULL && p->has_signature);
	kp__receipt__free_unpacked(p, NULL);
	cr_assert_leq(len[0], KP_MAX_PLAIN_RECEIPT);
	cr_assert(receipt_verify(s_lp.dir, out[0], len[0], &got, &e) == 0);
	s_free_all(out, 1);
}

/* A plain receipt stays within 1 024 bytes; only a batch proof may take a
 * receipt up to KP_MAX_RECEIPT (PROTOCOL.md §8). */
Test(envelope, a_plain_receipt_over_1024_bytes_is_oversize)
{
	uint8_t *out[1], *head, zero[32] = { 0 }, root[32] = { 0 };
	ProtobufCBinaryData cons[30];
	Kp__TreeHead th = KP__TREE_HEAD__INIT;
	size_t len[1], hlen;
	receipt_t r[1], got;
	kp_err_t e;

	s_receipt_batch(1, out, len, r);
	for (int i = 0; i < 30; i++)
		cons[i] = (ProtobufCBinaryData){ 32, zero };
	th.oin = (char *)OIN_HALT;
	th.has_root = 1;
	th.root = (ProtobufCBinaryData){ 32, root };
	th.n_consistency = 30;
	th.consistency = cons;
	hlen = kp__tree_head__get_packed_size(&th);
	head = malloc(hlen);
	kp__tree_head__pack(&th, head);
	cr_assert(envelope_attach_head(&out[0], &len[0], true, head, hlen) == 0);
	cr_assert_gt(len[0], KP_MAX_PLAIN_RECEIPT);
	cr_assert_leq(len[0], KP_MAX_RECEIPT);
	cr_assert_eq(receipt_verify(s_lp.dir, out[0], len[0], &got, &e), -1);
	cr_assert_eq(e.code, KP_ERR_OVERSIZE, "%s", e.msg);
	free(head);
	s_free_all(out, 1);
}

/* The witness's tree head from the one parse of a receipt
 * (receipt_verify_head) is byte for byte what envelope_extract_head
 * takes out of the same receipt; none without one, none from a receipt
 * refused. */
Test(envelope, a_receipts_tree_head_comes_with_its_verification)
{
	uint8_t *out[3], *head, *got_head, *want, root[32];
	Kp__TreeHead th = KP__TREE_HEAD__INIT;
	size_t len[3], hlen, got_len = 0, want_len = 0;
	receipt_t r[3], got;
	kp_err_t e;

	s_receipt_batch(3, out, len, r);
	memset(root, 0x5a, sizeof(root));
	th.oin = (char *)OIN_HALT;
	th.has_size = th.has_time_ms = th.has_root = 1;
	th.size = 42;
	th.time_ms = 1700000000000ull;
	th.root = (ProtobufCBinaryData){ 32, root };
	hlen = kp__tree_head__get_packed_size(&th);
	cr_assert_not_null(head = malloc(hlen));
	kp__tree_head__pack(&th, head);
	cr_assert(envelope_attach_head(&out[0], &len[0], true, head, hlen) == 0);

	cr_assert_eq(receipt_verify_head(s_lp.dir, NULL, out[0], len[0], &got,
	    &got_head, &got_len, &e), 0, "%s", e.msg);
	cr_assert_arr_eq(got.event_id, r[0].event_id, 16);
	cr_assert(envelope_extract_head(out[0], len[0], true, &want,
	    &want_len) == 0);
	cr_assert_not_null(got_head);
	cr_assert_not_null(want);
	cr_assert_eq(got_len, want_len);
	cr_assert_eq(got_len, hlen);
	cr_assert_arr_eq(got_head, want, want_len);
	free(got_head);
	free(want);

	/* without a head: verified, no head */
	got_head = (uint8_t *)"not touched";
	cr_assert_eq(receipt_verify_head(s_lp.dir, NULL, out[1], len[1], &got,
	    &got_head, &got_len, &e), 0, "%s", e.msg);
	cr_assert_null(got_head);

	/* refused (a flipped byte of its body): no head either */
	out[0][4] ^= 0x01;
	got_head = (uint8_t *)"not touched";
	cr_assert_eq(receipt_verify_head(s_lp.dir, NULL, out[0], len[0], &got,
	    &got_head, &got_len, &e), -1);
	cr_assert_null(got_head);
	free(head);
	s_free_all(out, 3);
}
