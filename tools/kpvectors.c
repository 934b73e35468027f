/*
 * kpvectors.c: writes docs/conformance/vectors.json, the machine-readable
 * conformance vectors of docs/PROTOCOL.md §14, to standard output.
 *
 * Everything is derived from published seeds and fixed times, so the
 * output is the same on every run and every machine (Ed25519 signatures
 * are deterministic; no nonce or id is random): tests/test_conformance.c
 * runs this program and fails when the document differs, then plays every
 * vector against real daemons.  The identities are test identities: their
 * seeds are public and must never be used for anything else.
 *
 * Usage: kpvectors [--source DIR]   (DIR: the source tree, for
 * policy/mas.ini and docs/examples; default ".")
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "batch.h"
#include "directory.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "identity.h"
#include "pack.h"
#include "pbjson.h"
#include "policy.h"
#include "util.h"

#define T0 1799971200000ull            /* 2027-01-15T00:00:00Z: the clock */
#define HOUR 3600000ull
#define DAY (24 * HOUR)
#define NOT_BEFORE "20260101000000Z"
#define NOT_AFTER "20360101000000Z"

/* A test organisation: keys from one-byte seeds (32 × the byte). */
struct org {
	const char *oin, *role, *name;
	uint8_t sign_seed, transport_seed, payload_seed;
	bool certified;                    /* in the chain at all */
	uint8_t sign_pk[32], sign_sk[64], tr_pk[32], pl_sk[32], pl_pk[32];
};

#define ORG(o, r, n, b, c) { .oin = o, .role = r, .name = n, \
	.sign_seed = b, .transport_seed = b + 1, .payload_seed = b + 2, \
	.certified = c }
static struct org s_orgs[] = {
	ORG("00000001001234567000", "leerplicht", "Gemeente Conformiteit",
	    0x11, true),
	ORG("00000001002345678000", "halt", "Halt Conformiteit", 0x21, true),
	ORG("00000001003456789000", "rvdk", "Raad Conformiteit", 0x31, true),
	ORG("00000001006789012000", "auditor", "Auditor Conformiteit", 0x41,
	    true),
	ORG("00000001009999999000", "om", "Niet in de keten", 0x51, false),
};
enum { LP, HALT, RVDK, AUDITOR, STRANGER, N_ORGS };

static const uint8_t s_ca_seed = 0x01;
static const char *s_source = ".";
static uint8_t s_policy_hash[32];
static policy_t *s_policy;

static void __attribute__((noreturn))
s_die(const char *what)
{
	fprintf(stderr, "kpvectors: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void
s_keys(struct org *o)
{
	uint8_t seed[32];

	memset(seed, o->sign_seed, 32);
	if (crypto_sign_seed_keypair(o->sign_pk, o->sign_sk, seed) != 0)
		s_die("sign key");
	memset(seed, o->transport_seed, 32);
	if (crypto_scalarmult_base(o->tr_pk, seed) != 0)
		s_die("transport key");
	memset(o->pl_sk, o->payload_seed, 32);
	if (crypto_scalarmult_base(o->pl_pk, o->pl_sk) != 0)
		s_die("payload key");
}

static EVP_PKEY *
s_ed25519(uint8_t byte)
{
	uint8_t seed[32];

	memset(seed, byte, 32);
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
}

static char *
s_pem_cert(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	if (b == NULL || PEM_write_bio_X509(b, x) != 1)
		s_die("PEM");
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static void
s_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL ||
	    X509_add_ext(x, e, -1) != 1)
		s_die("extension");
	X509_EXTENSION_free(e);
}

/* A CA-signed extension holding one X25519 key as an OCTET STRING. */
static void
s_key_ext(X509 *x, const char *oid, const uint8_t key[32])
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *outer;
	X509_EXTENSION *e;
	unsigned char *der = NULL;
	int n;

	if (obj == NULL || inner == NULL ||
	    ASN1_OCTET_STRING_set(inner, key, 32) != 1 ||
	    (n = i2d_ASN1_OCTET_STRING(inner, &der)) <= 0 ||
	    (outer = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(outer, der, n) != 1 ||
	    (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, outer)) == NULL ||
	    X509_add_ext(x, e, -1) != 1)
		s_die("key extension");
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(outer);
	ASN1_OCTET_STRING_free(inner);
	OPENSSL_free(der);
	ASN1_OBJECT_free(obj);
}

static X509 *
s_cert_base(long serial, EVP_PKEY *key)
{
	X509 *x = X509_new();

	if (x == NULL || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), serial) != 1 ||
	    ASN1_TIME_set_string_X509(X509_getm_notBefore(x), NOT_BEFORE) != 1 ||
	    ASN1_TIME_set_string_X509(X509_getm_notAfter(x), NOT_AFTER) != 1 ||
	    X509_set_pubkey(x, key) != 1)
		s_die("certificate");
	return x;
}

static X509 *
s_ca_cert(EVP_PKEY *ca_key)
{
	X509 *x = s_cert_base(1, ca_key);
	X509_NAME *n = X509_get_subject_name(x);

	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"Ketenpost conformiteit CA", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, n) != 1)
		s_die("CA name");
	s_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
	s_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	s_ext(x, x, NID_subject_key_identifier, "hash");
	if (X509_sign(x, ca_key, NULL) <= 0)
		s_die("CA signature");
	return x;
}

static X509 *
s_org_cert(const struct org *o, long serial, X509 *ca, EVP_PKEY *ca_key)
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
	    o->sign_pk, 32);
	X509 *x;
	X509_NAME *n;

	if (k == NULL)
		s_die("org key");
	x = s_cert_base(serial, k);
	n = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_NID(n, NID_serialNumber, MBSTRING_UTF8,
	    (const unsigned char *)o->oin, -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
	    (const unsigned char *)o->name, -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_NID(n, NID_organizationalUnitName,
	    MBSTRING_UTF8, (const unsigned char *)o->role, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1)
		s_die("org name");
	s_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE");
	s_ext(x, ca, NID_key_usage, "critical,digitalSignature");
	s_ext(x, ca, NID_subject_key_identifier, "hash");
	s_ext(x, ca, NID_authority_key_identifier, "keyid:always");
	s_ext(x, ca, NID_subject_alt_name, "URI:tcp://127.0.0.1:1");
	s_key_ext(x, KP_OID_TRANSPORT_KEY, o->tr_pk);
	s_key_ext(x, KP_OID_PAYLOAD_KEY, o->pl_pk);
	if (X509_sign(x, ca_key, NULL) <= 0)
		s_die("org signature");
	EVP_PKEY_free(k);
	return x;
}

static char *
s_crl(X509 *ca, EVP_PKEY *ca_key)
{
	X509_CRL *c = X509_CRL_new();
	ASN1_TIME *t1 = ASN1_TIME_new(), *t2 = ASN1_TIME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	if (c == NULL || t1 == NULL || t2 == NULL || b == NULL ||
	    X509_CRL_set_version(c, 1) != 1 ||
	    X509_CRL_set_issuer_name(c, X509_get_subject_name(ca)) != 1 ||
	    ASN1_TIME_set_string_X509(t1, NOT_BEFORE) != 1 ||
	    ASN1_TIME_set_string_X509(t2, NOT_AFTER) != 1 ||
	    X509_CRL_set1_lastUpdate(c, t1) != 1 ||
	    X509_CRL_set1_nextUpdate(c, t2) != 1)
		s_die("CRL");
	X509V3_set_ctx(&ctx, ca, NULL, NULL, c, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
	    "keyid:always")) == NULL || X509_CRL_add_ext(c, e, -1) != 1 ||
	    X509_CRL_sign(c, ca_key, NULL) <= 0 ||
	    PEM_write_bio_X509_CRL(b, c) != 1)
		s_die("CRL signature");
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	X509_EXTENSION_free(e);
	BIO_free(b);
	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	X509_CRL_free(c);
	return out;
}

static json_t *
s_hex(const uint8_t *b, size_t n)
{
	char *h = malloc(2 * n + 1);
	json_t *j;

	if (h == NULL)
		s_die("memory");
	kp_hex(b, n, h);
	j = json_string(h);
	free(h);
	return j;
}

static json_t *
s_trust(void)
{
	EVP_PKEY *ca_key = s_ed25519(s_ca_seed);
	X509 *ca = ca_key ? s_ca_cert(ca_key) : NULL;
	json_t *t = json_object(), *orgs = json_array();
	char *pem;
	size_t i;

	if (ca == NULL || t == NULL || orgs == NULL)
		s_die("CA");
	json_object_set_new(t, "ca_sign_seed_byte", json_integer(s_ca_seed));
	json_object_set_new(t, "ca_certificate", json_string(pem = s_pem_cert(
	    ca)));
	free(pem);
	json_object_set_new(t, "crl", json_string(pem = s_crl(ca, ca_key)));
	free(pem);
	for (i = 0; i < N_ORGS; i++) {
		struct org *o = &s_orgs[i];
		json_t *j = json_object();
		X509 *x;

		s_keys(o);
		json_object_set_new(j, "oin", json_string(o->oin));
		json_object_set_new(j, "role", json_string(o->role));
		json_object_set_new(j, "sign_seed_byte", json_integer(
		    o->sign_seed));
		json_object_set_new(j, "transport_sk_byte", json_integer(
		    o->transport_seed));
		json_object_set_new(j, "payload_sk_byte", json_integer(
		    o->payload_seed));
		json_object_set_new(j, "transport_pk", s_hex(o->tr_pk, 32));
		if (o->certified) {
			x = s_org_cert(o, (long)i + 2, ca, ca_key);
			json_object_set_new(j, "certificate", json_string(pem =
			    s_pem_cert(x)));
			free(pem);
			X509_free(x);
		}
		json_array_append_new(orgs, j);
	}
	json_object_set_new(t, "orgs", orgs);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return t;
}

/* ---- envelopes ------------------------------------------------------- */

/* What one envelope is made of, before the deliberate faults. */
struct env_spec {
	int from, to, enc_to;          /* indexes into s_orgs */
	int type;
	uint8_t id_byte;               /* event id: UUIDv7-shaped, this byte */
	uint8_t nonce_byte;
	uint64_t created, expires;
	const uint8_t *policy_hash;    /* NULL: the real one */
	uint32_t schema_major;
	const char *json;              /* the payload; NULL: the example */
	const uint8_t *payload;        /* ... or these bytes */
	size_t payload_len;
	int fault;                     /* F_* */
	int batch;                     /* B_*: signed in a batch (§5.6) */
	unsigned bindex;               /* ... as leaf 0 or 1 of 3 */
	uint8_t bpeer;                 /* ... the other leaf: ENV(this byte) */
};

enum { F_NONE, F_SIGNATURE, F_CIPHERTEXT, F_NO_SIGNATURE };
/* A batch of three leaves: this envelope at bindex, the envelope of id
 * byte bpeer (or 32 x b0/b1) at the other of 0 and 1, 32 x b2 at 2. */
enum { B_NONE, B_OK, B_PATH, B_ROOT, B_INDEX, B_SIZE, B_SIG, B_BOTH };

static void
s_event_id(uint8_t id[16], uint8_t byte)
{
	uint64_t ms = T0 - HOUR;
	int i;

	for (i = 0; i < 6; i++)
		id[i] = (uint8_t)(ms >> (8 * (5 - i)));
	memset(id + 6, byte, 10);
	id[6] = (uint8_t)(0x70 | (byte & 0x0f));
	id[8] = (uint8_t)(0x80 | (byte & 0x3f));
}

/* The payload of a type from JSON text, or its example file, packed.
 * OUT: *len. */
static uint8_t *
s_example(int type, const char *text, size_t *len)
{
	char path[4096];
	json_t *j;
	ProtobufCMessage *ev = NULL;
	uint8_t *out;
	kp_err_t e;

	snprintf(path, sizeof(path), "%s/docs/examples/%s.json", s_source,
	    events_type_name(type));
	j = text ? json_loads(text, 0, NULL) : json_load_file(path, 0, NULL);
	if (j == NULL ||
	    pbjson_from_json(events_descriptor(type), j, &ev, &e) != 0)
		s_die(text ? text : path);
	*len = protobuf_c_message_get_packed_size(ev);
	if ((out = malloc(*len + 1)) == NULL)
		s_die("memory");
	protobuf_c_message_pack(ev, out);
	pbjson_free(ev);
	json_decref(j);
	return out;
}

static size_t
s_tbs(const uint8_t *h, size_t hlen, const uint8_t d[32], uint8_t *out)
{
	static const char label[] = "ketenpost/v1/envelope";
	size_t l = sizeof(label) - 1;

	memcpy(out, label, l);
	out[l] = (uint8_t)(hlen >> 24);
	out[l + 1] = (uint8_t)(hlen >> 16);
	out[l + 2] = (uint8_t)(hlen >> 8);
	out[l + 3] = (uint8_t)hlen;
	memcpy(out + l + 4, h, hlen);
	memcpy(out + l + 4 + hlen, d, 32);
	return l + 4 + hlen + 32;
}

static size_t
s_header(const struct env_spec *s, const uint8_t nonce[24], uint8_t *out)
{
	Kp__Header h = KP__HEADER__INIT;
	uint8_t id[16], cr[32];
	const struct org *from = &s_orgs[s->from], *to = &s_orgs[s->to];

	s_event_id(id, s->id_byte);
	memset(cr, s->id_byte, 32);
	h.has_schema_major = h.has_schema_minor = h.has_event_id = 1;
	h.schema_major = s->schema_major ? s->schema_major : 1;
	h.event_id = (ProtobufCBinaryData){ 16, id };
	h.has_event_type = 1;
	h.event_type = (Kp__EventType)s->type;
	h.sender_oin = (char *)from->oin;
	h.recipient_oin = (char *)to->oin;
	h.purpose = (char *)policy_rule_purpose(policy_rule(s_policy, s->type));
	h.legal_basis = (char *)policy_rule_legal_basis(policy_rule(s_policy,
	    s->type));
	h.has_policy_hash = h.has_created_at_ms = h.has_expires_at_ms = 1;
	h.policy_hash = (ProtobufCBinaryData){ 32, (uint8_t *)(s->policy_hash ?
	    s->policy_hash : s_policy_hash) };
	h.created_at_ms = s->created;
	h.expires_at_ms = s->expires;
	h.has_case_ref = h.has_nonce = 1;
	h.case_ref = (ProtobufCBinaryData){ 32, cr };
	h.nonce = (ProtobufCBinaryData){ 24, (uint8_t *)nonce };
	return kp__header__pack(&h, out);
}

static uint8_t *s_seal(const struct env_spec *s, size_t *len,
    uint8_t digest[32]);

/* The leaves of a batch vector: this digest, its peer's, a filler. */
static void
s_batch_leaves(const struct env_spec *s, const uint8_t own[32],
    uint8_t leaves[3][32])
{
	struct env_spec peer = *s;
	unsigned other = 1 - s->bindex;
	uint8_t *buf;
	size_t len;

	memset(leaves[other], 0xb0 + other, 32);
	memset(leaves[2], 0xb2, 32);
	memcpy(leaves[s->bindex], own, 32);
	if (s->bpeer == 0)
		return;
	peer.id_byte = peer.nonce_byte = s->bpeer;
	peer.batch = B_NONE;
	buf = s_seal(&peer, &len, leaves[other]);
	free(buf);
}

/* Field 6 of §5.6 for envelope digest `own`, with the batch fault. */
static void
s_batch_proof(const struct env_spec *s, const uint8_t own[32],
    Kp__BatchProof *bp, uint8_t path[BATCH_PATH_MAX][32], uint8_t root[32],
    uint8_t sig[64], ProtobufCBinaryData *pd)
{
	const struct org *from = &s_orgs[s->from], *to = &s_orgs[s->to];
	uint8_t leaves[3][32], btbs[BATCH_TBS_MAX];
	batch_tree_t *t = NULL;
	size_t plen, blen, k;

	s_batch_leaves(s, own, leaves);
	if (batch_tree_new((const uint8_t (*)[32])leaves, 3, &t) != 0 ||
	    batch_tree_path(t, s->bindex, path, &plen) != 0)
		s_die("batch tree");
	batch_tree_root(t, root);
	batch_tree_destroy(&t);
	if (batch_tbs("ketenpost/v1/batch", 3, root, from->oin, to->oin, btbs,
	    &blen) != 0 || crypto_sign_detached(sig, NULL, btbs, blen,
	    from->sign_sk) != 0)
		s_die("batch signature");
	for (k = 0; k < plen; k++)
		pd[k] = (ProtobufCBinaryData){ 32, path[k] };
	bp->has_size = bp->has_index = bp->has_root = bp->has_signature = 1;
	bp->size = 3;
	bp->index = s->bindex;
	bp->n_path = plen;
	bp->path = pd;
	bp->root = (ProtobufCBinaryData){ 32, root };
	bp->signature = (ProtobufCBinaryData){ 64, sig };
	if (s->batch == B_PATH)
		path[0][4] ^= 0x01;
	if (s->batch == B_ROOT)
		root[4] ^= 0x01;
	if (s->batch == B_INDEX)
		bp->index ^= 1;
	if (s->batch == B_SIZE)
		bp->size = 4;  /* leaf 0's path of 3 fits a tree of 4 too */
	if (s->batch == B_SIG)
		sig[5] ^= 0x01;
}

/* Seal per PROTOCOL.md §4-§5, then apply the fault.  OUT: digest of TBS. */
static uint8_t *
s_seal(const struct env_spec *s, size_t *len, uint8_t digest[32])
{
	const struct org *from = &s_orgs[s->from], *enc = &s_orgs[s->enc_to];
	uint8_t h[1024], nonce[24], k[32], tbs[1200], sig[64], d[32];
	uint8_t *p, *c, *out;
	uint8_t bpath[BATCH_PATH_MAX][32], broot[32], bsig[64];
	ProtobufCBinaryData bpd[BATCH_PATH_MAX];
	Kp__BatchProof bp = KP__BATCH_PROOF__INIT;
	size_t hlen, plen, tlen;
	unsigned long long clen;
	Kp__Envelope e = KP__ENVELOPE__INIT;

	memset(nonce, s->nonce_byte, 24);
	hlen = s_header(s, nonce, h);
	p = s->payload ? (uint8_t *)s->payload : s_example(s->type, s->json,
	    &plen);
	if (s->payload)
		plen = s->payload_len;
	if (directory_derive_key(from->pl_sk, enc->pl_pk, from->pl_pk,
	    enc->pl_pk, k) != 0 || (c = malloc(plen + 16)) == NULL ||
	    crypto_aead_xchacha20poly1305_ietf_encrypt(c, &clen, p, plen, h,
	    hlen, NULL, nonce, k) != 0 ||
	    crypto_generichash(d, 32, c, clen, NULL, 0) != 0)
		s_die("seal");
	tlen = s_tbs(h, hlen, d, tbs);
	if (crypto_sign_detached(sig, NULL, tbs, tlen, from->sign_sk) != 0 ||
	    crypto_generichash(digest, 32, tbs, tlen, NULL, 0) != 0)
		s_die("sign");
	if (s->fault == F_SIGNATURE)
		sig[5] ^= 0x01;
	if (s->fault == F_CIPHERTEXT)
		c[3] ^= 0x01;
	e.has_header = e.has_ciphertext = e.has_ciphertext_digest = 1;
	e.has_signature = s->fault != F_NO_SIGNATURE;
	e.header = (ProtobufCBinaryData){ hlen, h };
	e.ciphertext = (ProtobufCBinaryData){ clen, c };
	e.ciphertext_digest = (ProtobufCBinaryData){ 32, d };
	e.signature = (ProtobufCBinaryData){ 64, sig };
	if (s->batch != B_NONE) {
		s_batch_proof(s, digest, &bp, bpath, broot, bsig, bpd);
		e.batch = &bp;
		e.has_signature = s->batch == B_BOTH;
	}
	*len = kp__envelope__get_packed_size(&e);
	if ((out = malloc(*len)) == NULL)
		s_die("memory");
	kp__envelope__pack(&e, out);
	free(c);
	if (s->payload == NULL)
		free(p);
	return out;
}

/* ---- the vectors ----------------------------------------------------- */

struct vec {
	const char *name, *why;
	int receiver, as;              /* indexes into s_orgs */
	const char *status, *reason;
	bool named;                    /* the receipt carries the event id */
	struct env_spec env;
	const uint8_t *raw;            /* instead of env: these bytes */
	size_t raw_len;
	int fill;                      /* ... or raw_len bytes of this (>= 0) */
	const char *same_receipt_as;
	/* A pack (frame type 3, §13.1): these items in order, then tail. */
	const struct vec *items;       /* each: its bytes and its expect */
	size_t n_items;
	const uint8_t *tail;           /* bytes after the last item */
	size_t tail_len;
	bool whole;                    /* refused as a whole: one receipt */
};

/* The bytes of a single vector or of a pack's item.  OUT: *len, and the
 * digest its receipt names: §5.5 for a sealed envelope that gets as far
 * as its header, else of the raw bytes. */
static uint8_t *
s_item(const struct vec *v, size_t *len, uint8_t digest[32])
{
	uint8_t *b;

	if (v->raw != NULL || v->fill >= 0) {
		/* +1: a zero-length item still gets a buffer */
		if ((b = malloc(v->raw_len + 1)) == NULL)
			s_die("memory");
		if (v->raw != NULL && v->raw_len > 0)
			memcpy(b, v->raw, v->raw_len);
		else if (v->fill >= 0)
			memset(b, v->fill, v->raw_len);
		*len = v->raw_len;
	} else
		b = s_seal(&v->env, len, digest);
	if (!v->named && crypto_generichash(digest, 32, b, *len, NULL, 0) != 0)
		s_die("digest");
	return b;
}

/* What the receipt answering v (or v's bytes with this digest) carries. */
static json_t *
s_expect(const struct vec *v, const uint8_t digest[32])
{
	json_t *x = json_object();
	uint8_t id[16];

	json_object_set_new(x, "status", json_string(v->status));
	json_object_set_new(x, "reason", json_string(v->reason));
	if (v->named) {
		s_event_id(id, v->env.id_byte);
		json_object_set_new(x, "event_id", s_hex(id, 16));
	} else
		json_object_set_new(x, "event_id", json_null());
	json_object_set_new(x, "envelope_digest", s_hex(digest, 32));
	json_object_set_new(x, "received_at_ms", json_integer((json_int_t)T0));
	if (v->same_receipt_as != NULL)
		json_object_set_new(x, "same_receipt_as",
		    json_string(v->same_receipt_as));
	return x;
}

/* A growing byte buffer for a pack body. */
struct body {
	uint8_t *b;
	size_t len, cap;
};

static void
s_put(struct body *o, const uint8_t *b, size_t n)
{
	while (o->len + n > o->cap) {
		o->cap = o->cap ? 2 * o->cap : 4096;
		if ((o->b = realloc(o->b, o->cap)) == NULL)
			s_die("memory");
	}
	if (n > 0)
		memcpy(o->b + o->len, b, n);
	o->len += n;
}

/* One item of `message Pack { repeated bytes item = 1; }`: tag 0x0a, the
 * length as a varint, the bytes.  Written here from §13.1's text rather
 * than with lib/pack, so the vectors check that writer too. */
static void
s_put_item(struct body *o, const uint8_t *b, size_t n)
{
	uint8_t head[11];
	size_t h = 0, v = n;

	head[h++] = 0x0a;
	do {
		head[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	s_put(o, head, h);
	s_put(o, b, n);
}

/* The body of pack vector v: its items, then its tail.  OUT: *len, and
 * the expectation of each item appended to items (distinct digests, so a
 * player can match receipts that come in any order). */
static uint8_t *
s_pack_body(const struct vec *v, size_t *len, json_t *items)
{
	struct body o = { NULL, 0, 0 };   /* o.b stays NULL for no bytes */
	uint8_t (*dg)[32] = calloc(v->n_items + 1, 32), *b;
	size_t i, k, n;

	if (dg == NULL)
		s_die("memory");
	for (i = 0; i < v->n_items; i++) {
		b = s_item(&v->items[i], &n, dg[i]);
		s_put_item(&o, b, n);
		free(b);
		for (k = 0; k < i; k++)
			if (memcmp(dg[k], dg[i], 32) == 0)
				s_die("two items of one pack with one digest");
		json_array_append_new(items, s_expect(&v->items[i], dg[i]));
	}
	if (v->tail_len > 0)
		s_put(&o, v->tail, v->tail_len);
	free(dg);
	*len = o.len;
	return o.b;
}

/* The envelope member(s) and the expectation(s) of v into j. */
static void
s_vector_body(const struct vec *v, json_t *j)
{
	json_t *items = json_array(), *f;
	uint8_t *b, digest[32];
	size_t len;

	if (v->n_items > 0 || v->tail_len > 0 || v->whole) {
		b = s_pack_body(v, &len, items);
		json_object_set_new(j, "frame_type", json_integer(3));
		json_object_set_new(j, "envelope", s_hex(b, len));
		if (v->whole) {
			if (crypto_generichash(digest, 32, b, len, NULL, 0) != 0)
				s_die("digest");
			json_object_set_new(j, "expect", s_expect(v, digest));
		} else
			json_object_set_new(j, "expect_items", json_incref(items));
	} else {
		b = s_item(v, &len, digest);
		if (v->fill >= 0) {
			f = json_object();
			json_object_set_new(f, "byte", json_integer(v->fill));
			json_object_set_new(f, "count", json_integer(
			    (json_int_t)len));
			json_object_set_new(j, "envelope_fill", f);
		} else
			json_object_set_new(j, "envelope", s_hex(b, len));
		json_object_set_new(j, "expect", s_expect(v, digest));
	}
	json_decref(items);
	free(b);
}

static json_t *
s_vector(const struct vec *v)
{
	json_t *j = json_object();

	json_object_set_new(j, "name", json_string(v->name));
	json_object_set_new(j, "why", json_string(v->why));
	json_object_set_new(j, "receiver", json_string(s_orgs[v->receiver].oin));
	json_object_set_new(j, "connect_as", json_string(s_orgs[v->as].oin));
	s_vector_body(v, j);
	return j;
}

static void
s_policy_hash_of_source(void)
{
	char path[4096];
	uint8_t *buf = NULL;
	size_t n = 0;

	int problems = 0;
	kp_err_t e;

	snprintf(path, sizeof(path), "%s/policy/mas.ini", s_source);
	if (kp_read_file(path, 1 << 20, &buf, &n) != 0 ||
	    crypto_generichash(s_policy_hash, 32, buf, n, NULL, 0) != 0 ||
	    policy_load(path, &s_policy, NULL, NULL, &problems, &e) != 0)
		s_die(path);
	free(buf);
}

/* The table below gives defaults, then overrides some per vector. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Winitializer-overrides"
#else
#pragma GCC diagnostic ignored "-Woverride-init"
#endif

#define REF KP__EVENT_TYPE__EVENT_TYPE_REFERRAL
#define OUTCOME KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME
/* A vector: defaults for everything not named. */
#define V(...) { .fill = -1, .receiver = HALT, .as = LP, \
	.status = "rejected", .named = true, __VA_ARGS__ }
/* An envelope from `f` to `t`, id and nonce byte `b`: a good one unless
 * the fields after it say otherwise. */
#define ENV(f, t, b, ...) { .from = f, .to = t, .enc_to = t, .type = REF, \
	.id_byte = b, .nonce_byte = b, .created = T0 - HOUR, \
	.expires = T0 + 30 * DAY, __VA_ARGS__ }

/* A pack's item: an envelope or raw bytes and what its receipt says. */
#define ITEM(...) { .fill = -1, .status = "rejected", .named = true, \
	__VA_ARGS__ }
/* A pack vector's items (frame type 3, §13.1). */
#define PACK(...) .items = (const struct vec[]){ __VA_ARGS__ }, \
	.n_items = sizeof((const struct vec[]){ __VA_ARGS__ }) / \
	sizeof(struct vec)
/* A pack refused as a whole: one receipt without an event id. */
#define WHOLE .whole = true, .reason = "malformed", .named = false

/* Items of no bytes (0x0a 0x00), one more than the receivers announce
 * (pack_items). */
#define EMPTY_ITEMS (KP_PACK_ITEMS_MAX + 1)
static const uint8_t *
s_empty_items(void)
{
	static uint8_t b[2 * EMPTY_ITEMS];
	size_t k;

	for (k = 0; k < sizeof(b); k += 2) {
		b[k] = 0x0a;
		b[k + 1] = 0x00;
	}
	return b;
}

static const char s_age25[] = "{\"route\": \"halt\", \"referral_kind\": "
    "\"halt_pv\", \"absence_kind\": \"wettelijk\", \"duty_kind\": "
    "\"leerplicht\", \"feedback_due_days\": 90, \"age_years\": 25}";

static json_t *
s_vectors(void)
{
	static const uint8_t junk[100] = { [0 ... 99] = 0xff };
	static const uint8_t other_hash[32] = { [0 ... 31] = 0x77 };
	static const uint8_t not_an_event[] = { 0xff, 0xff, 0xff };
	static const uint8_t zeros[4] = { 0 };
	static const uint8_t field_2[] = { 0x12, 0x00 };
	static const uint8_t no_envelope[16] = { [0 ... 15] = 0xfe };
	/* an item said to be 100 bytes long, of which 10 follow */
	static const uint8_t cut[12] = { 0x0a, 100, [2 ... 11] = 0xfe };
	const struct vec v[] = {
	V(.name = "accepted_referral", .why = "a complete referral, within "
	    "the policy", .status = "accepted", .reason = "none",
	    .env = ENV(LP, HALT, 0x01)),
	V(.name = "resend_gets_the_first_receipt", .why = "the same envelope "
	    "again (7.1 step 12)", .status = "accepted", .reason = "none",
	    .env = ENV(LP, HALT, 0x01), .same_receipt_as = "accepted_referral"),
	V(.name = "same_id_other_envelope", .why = "the first vector's id "
	    "with another nonce (7.1 step 12)", .reason = "id_conflict",
	    .env = ENV(LP, HALT, 0x01, .nonce_byte = 0x02)),
	V(.name = "not_protobuf", .why = "7 step 2", .reason = "malformed",
	    .named = false, .raw = junk, .raw_len = sizeof(junk)),
	V(.name = "no_signature", .why = "7 step 2: field 4 missing",
	    .reason = "malformed", .named = false,
	    .env = ENV(LP, HALT, 0x03, .fault = F_NO_SIGNATURE)),
	V(.name = "schema_major_2", .why = "7 step 3",
	    .reason = "schema_version", .named = false,
	    .env = ENV(LP, HALT, 0x04, .schema_major = 2)),
	V(.name = "expiry_not_after_creation", .why = "7 step 4",
	    .reason = "malformed", .named = false,
	    .env = ENV(LP, HALT, 0x05, .expires = T0 - HOUR)),
	V(.name = "oversize", .why = "7 step 1: 70 000 bytes",
	    .reason = "oversize", .named = false, .fill = 0,
	    .raw_len = 70000),
	V(.name = "addressed_to_another", .why = "7 step 5",
	    .reason = "wrong_recipient", .env = ENV(LP, RVDK, 0x06)),
	V(.name = "sender_not_in_the_chain", .why = "7 step 6",
	    .reason = "unknown_sender", .env = ENV(STRANGER, HALT, 0x07)),
	V(.name = "signature_altered", .why = "7 step 7",
	    .reason = "bad_signature",
	    .env = ENV(LP, HALT, 0x08, .fault = F_SIGNATURE)),
	V(.name = "auditor_as_sender", .why = "7 step 7: role auditor",
	    .reason = "sender_role", .env = ENV(AUDITOR, HALT, 0x09)),
	V(.name = "ciphertext_altered", .why = "7 step 8",
	    .reason = "ciphertext_corrupt",
	    .env = ENV(LP, HALT, 0x0a, .fault = F_CIPHERTEXT)),
	V(.name = "encrypted_for_another", .why = "7 step 9",
	    .reason = "decrypt_failed", .env = ENV(LP, HALT, 0x0b,
	    .enc_to = RVDK)),
	V(.name = "sealed_by_another_partner", .why = "7.1 step 11",
	    .reason = "sender_mismatch", .env = ENV(RVDK, HALT, 0x0c)),
	V(.name = "another_partners_id", .why = "7.1 step 12: the first "
	    "vector's id, sent by RvdK", .as = RVDK, .reason = "id_conflict",
	    .env = ENV(RVDK, HALT, 0x01)),
	V(.name = "thirty_days_old", .why = "7.1 step 13", .reason = "replay",
	    .env = ENV(LP, HALT, 0x0d, .created = T0 - 30 * DAY)),
	V(.name = "expired", .why = "7.1 step 14", .reason = "expired",
	    .env = ENV(LP, HALT, 0x0e, .created = T0 - 2 * DAY,
	    .expires = T0 - DAY)),
	V(.name = "payload_not_an_event", .why = "7.1 step 15",
	    .reason = "malformed", .env = ENV(LP, HALT, 0x0f,
	    .payload = not_an_event, .payload_len = sizeof(not_an_event))),
	V(.name = "another_policy", .why = "7.1 step 16",
	    .reason = "policy_mismatch", .env = ENV(LP, HALT, 0x10,
	    .policy_hash = other_hash)),
	V(.name = "age_25", .why = "7.1 step 17: rule range",
	    .reason = "policy_violation", .env = ENV(LP, HALT, 0x11,
	    .json = s_age25)),
	V(.name = "answer_on_an_unknown_case", .why = "7.1 step 18",
	    .receiver = LP, .as = HALT, .reason = "unknown_case",
	    .env = ENV(HALT, LP, 0x12, .type = OUTCOME)),
	V(.name = "batch_leaf_0", .why = "5.6: leaf 0 of a batch of 3 "
	    "(the next vector is leaf 1)", .status = "accepted",
	    .reason = "none", .env = ENV(LP, HALT, 0x20, .batch = B_OK,
	    .bindex = 0, .bpeer = 0x21)),
	V(.name = "batch_leaf_1", .why = "5.6: leaf 1 of the same batch "
	    "(the same signed root)", .status = "accepted", .reason = "none",
	    .env = ENV(LP, HALT, 0x21, .batch = B_OK, .bindex = 1,
	    .bpeer = 0x20)),
	V(.name = "batch_path_altered", .why = "7 step 7: a path hash "
	    "changed", .reason = "batch_proof", .env = ENV(LP, HALT, 0x22,
	    .batch = B_PATH)),
	V(.name = "batch_root_altered", .why = "7 step 7: the root changed",
	    .reason = "batch_proof", .env = ENV(LP, HALT, 0x23,
	    .batch = B_ROOT)),
	V(.name = "batch_index_altered", .why = "7 step 7: index 0 said 1",
	    .reason = "batch_proof", .env = ENV(LP, HALT, 0x24,
	    .batch = B_INDEX)),
	V(.name = "batch_size_altered", .why = "7 step 7: size 3 said 4, "
	    "which the path still fits", .reason = "bad_signature",
	    .env = ENV(LP, HALT, 0x25, .batch = B_SIZE)),
	V(.name = "batch_signature_altered", .why = "7 step 7: the batch "
	    "signature changed", .reason = "bad_signature",
	    .env = ENV(LP, HALT, 0x26, .batch = B_SIG)),
	V(.name = "batch_and_signature", .why = "7 step 2: fields 4 and 6 "
	    "both present", .reason = "malformed", .named = false,
	    .env = ENV(LP, HALT, 0x27, .batch = B_BOTH)),
	V(.name = "pack_two_accepted", .why = "13.1: a pack of two "
	    "envelopes, each handled as a single frame would be",
	    PACK(ITEM(.status = "accepted", .reason = "none",
	    .env = ENV(LP, HALT, 0x30)),
	    ITEM(.status = "accepted", .reason = "none",
	    .env = ENV(LP, HALT, 0x31)))),
	V(.name = "pack_mixed", .why = "13.1: a fresh envelope, a resend "
	    "(7.1 step 12), a bad signature (7 step 7) and bytes that are no "
	    "envelope (7 step 2), each answered on its own",
	    PACK(ITEM(.status = "accepted", .reason = "none",
	    .env = ENV(LP, HALT, 0x32)),
	    ITEM(.status = "accepted", .reason = "none",
	    .env = ENV(LP, HALT, 0x01), .same_receipt_as = "accepted_referral"),
	    ITEM(.reason = "bad_signature",
	    .env = ENV(LP, HALT, 0x33, .fault = F_SIGNATURE)),
	    ITEM(.reason = "malformed", .named = false, .raw = no_envelope,
	    .raw_len = sizeof(no_envelope)))),
	V(.name = "pack_one_item_malformed", .why = "13.1: a pack of one "
	    "item is refused as a whole; its item is not read", WHOLE,
	    PACK(ITEM(.env = ENV(LP, HALT, 0x34)))),
	V(.name = "unread_item_id_is_free", .why = "13.1: the event id of "
	    "the item of pack_one_item_malformed, with another nonce, is no "
	    "conflict (7.1 step 12): that item was never read",
	    .status = "accepted", .reason = "none",
	    .env = ENV(LP, HALT, 0x34, .nonce_byte = 0x3f)),
	V(.name = "pack_trailing_garbage_malformed", .why = "13.1: two "
	    "envelopes, then four zero bytes", WHOLE,
	    PACK(ITEM(.env = ENV(LP, HALT, 0x35)),
	    ITEM(.env = ENV(LP, HALT, 0x36))),
	    .tail = zeros, .tail_len = sizeof(zeros)),
	V(.name = "pack_other_field_malformed", .why = "13.1: two envelopes "
	    "and an empty field 2, which a lenient protobuf parser skips",
	    WHOLE, PACK(ITEM(.env = ENV(LP, HALT, 0x37)),
	    ITEM(.env = ENV(LP, HALT, 0x38))),
	    .tail = field_2, .tail_len = sizeof(field_2)),
	V(.name = "pack_length_past_end_malformed", .why = "13.1: an "
	    "envelope, then an item said to be 100 bytes long of which 10 "
	    "follow", WHOLE, PACK(ITEM(.env = ENV(LP, HALT, 0x39))),
	    .tail = cut, .tail_len = sizeof(cut)),
	V(.name = "pack_65_items_malformed", .why = "13.1: 65 empty items, "
	    "more than the receiver announced (pack_items)", WHOLE,
	    .tail = s_empty_items(), .tail_len = 2 * EMPTY_ITEMS),
	V(.name = "pack_empty_malformed", .why = "13.1: a pack of no items",
	    WHOLE),
	};
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		json_array_append_new(a, s_vector(&v[i]));
	return a;
}

int
main(int argc, char **argv)
{
	json_t *doc;
	char *text;

	if (argc == 3 && strcmp(argv[1], "--source") == 0)
		s_source = argv[2];
	else if (argc != 1) {
		fprintf(stderr, "usage: kpvectors [--source DIR] > "
		    "docs/conformance/vectors.json\n");
		return 2;
	}
	if (sodium_init() < 0)
		s_die("libsodium");
	s_policy_hash_of_source();
	doc = json_object();
	json_object_set_new(doc, "format", json_integer(1));
	json_object_set_new(doc, "about", json_string("ketenpost conformance "
	    "vectors: docs/PROTOCOL.md §14.  Test identities only: their seeds "
	    "are public."));
	json_object_set_new(doc, "clock_ms", json_integer((json_int_t)T0));
	json_object_set_new(doc, "policy_file", json_string("policy/mas.ini"));
	json_object_set_new(doc, "policy_hash", s_hex(s_policy_hash, 32));
	json_object_set_new(doc, "pack_items", json_integer(KP_PACK_ITEMS_MAX));
	json_object_set_new(doc, "trust", s_trust());
	json_object_set_new(doc, "vectors", s_vectors());
	if ((text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER)) ==
	    NULL)
		s_die("JSON");
	printf("%s\n", text);
	free(text);
	json_decref(doc);
	return 0;
}
