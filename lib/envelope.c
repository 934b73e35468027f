/*
 * envelope.c: seal and open case events; sign and verify receipts.
 *
 * Owns nothing long-lived: every call works on caller buffers and wipes
 * its own temporaries.  Never: decrypts before the signature is verified,
 * re-serialises a received protobuf to check a signature (the exact bytes
 * received are what is verified), or accepts a header field it cannot
 * check.  The byte layout is docs/PROTOCOL.md; keep the two in step.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <sodium.h>

#include "batch.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "events.pb-c.h"

static const char s_env_label[] = "ketenpost/v1/envelope";
static const char s_rcpt_label[] = "ketenpost/v1/receipt";

/*
 * What differs between signing envelopes and receipts in a batch: the
 * BTBS label, and the field numbers of the single signature and of the
 * batch proof (envelope 4 / 6, receipt 2 / 4; as protobuf tags).
 */
struct form {
	const char *label;
	uint8_t sig_tag, batch_tag;
	const char *what;
};
static const struct form s_env_form = { "ketenpost/v1/batch", 0x22, 0x32,
	"envelope" };
static const struct form s_rcpt_form = { "ketenpost/v1/receipt-batch", 0x12,
	0x22, "receipt" };

#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SIG_LEN crypto_sign_BYTES

/*
 * The signed bytes of PROTOCOL.md §5/§8 are hashed in the same order they
 * are signed, so one function computes both the Ed25519 input (tbs) and
 * the envelope / receipt digest.  OUT: *tbs (malloc'd), *tbs_len, digest.
 */
static int
s_tbs(const char *label, const uint8_t *body, size_t body_len,
    const uint8_t *tail, size_t tail_len, uint8_t **tbs, size_t *tbs_len,
    uint8_t digest[KP_DIGEST_LEN])
{
	size_t label_len = strlen(label);
	size_t n = label_len + 4 + body_len + tail_len;
	uint8_t *b = malloc(n);

	if (b == NULL)
		return -1;
	memcpy(b, label, label_len);
	b[label_len] = (uint8_t)(body_len >> 24);
	b[label_len + 1] = (uint8_t)(body_len >> 16);
	b[label_len + 2] = (uint8_t)(body_len >> 8);
	b[label_len + 3] = (uint8_t)body_len;
	memcpy(b + label_len + 4, body, body_len);
	if (tail_len > 0)
		memcpy(b + label_len + 4 + body_len, tail, tail_len);
	if (crypto_generichash(digest, KP_DIGEST_LEN, b, n, NULL, 0) != 0) {
		free(b);
		return -1;
	}
	*tbs = b;
	*tbs_len = n;
	return 0;
}

static bool
s_label_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > KP_LABEL_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr("._:/-", s[i]) != NULL))
			return false;
	return true;
}

static bool
s_event_type_valid(int type)
{
	return type != 0 && protobuf_c_enum_descriptor_get_value(
	    &kp__event_type__descriptor, type) != NULL;
}

static int
s_check_seal_args(const directory_t *dir, const peer_t *to,
    const envelope_meta_t *m, size_t payload_len, kp_err_t *err)
{
	const partner_t *me = identity_public(directory_self(dir));
	const partner_t *them = peer_partner(to);

	if (partner_role(me) == KP_ROLE_AUDITOR)
		return kp_fail(err, KP_ERR_ROLE, "organisation %s has role "
		    "auditor, which sends no events", partner_oin(me));
	if (partner_role(them) == KP_ROLE_AUDITOR)
		return kp_fail(err, KP_ERR_ROLE, "recipient %s has role "
		    "auditor, which receives no events", partner_oin(them));
	if (payload_len > KP_MAX_PAYLOAD)
		return kp_fail(err, KP_ERR_OVERSIZE, "payload of %zu bytes is "
		    "over the limit of %d bytes", payload_len, KP_MAX_PAYLOAD);
	if (!s_event_type_valid(m->event_type))
		return kp_fail(err, KP_ERR_INVALID_ARG, "event type %d is not "
		    "a known event type", m->event_type);
	if (!s_label_valid(m->purpose) || !s_label_valid(m->legal_basis))
		return kp_fail(err, KP_ERR_INVALID_ARG, "purpose and legal "
		    "basis must be 1-%d characters of [A-Za-z0-9._:/-]",
		    KP_LABEL_MAX);
	if (m->created_at_ms == 0 || m->expires_at_ms <= m->created_at_ms)
		return kp_fail(err, KP_ERR_INVALID_ARG, "expiry must be after "
		    "creation time");
	return 0;
}

/* Fill a Kp__Header from meta; the pointers borrow meta and nonce. */
static void
s_header_from_meta(Kp__Header *h, envelope_meta_t *m, uint8_t *nonce)
{
	kp__header__init(h);
	h->has_schema_major = h->has_schema_minor = 1;
	h->schema_major = m->schema_major;
	h->schema_minor = m->schema_minor;
	h->has_event_id = 1;
	h->event_id.data = m->event_id;
	h->event_id.len = KP_EVENT_ID_LEN;
	h->has_event_type = 1;
	h->event_type = (Kp__EventType)m->event_type;
	h->sender_oin = m->sender_oin;
	h->recipient_oin = m->recipient_oin;
	h->purpose = m->purpose;
	h->legal_basis = m->legal_basis;
	h->has_policy_hash = 1;
	h->policy_hash.data = m->policy_hash;
	h->policy_hash.len = KP_DIGEST_LEN;
	h->has_created_at_ms = h->has_expires_at_ms = 1;
	h->created_at_ms = m->created_at_ms;
	h->expires_at_ms = m->expires_at_ms;
	h->has_case_ref = 1;
	h->case_ref.data = m->case_ref;
	h->case_ref.len = KP_CASE_REF_LEN;
	h->has_in_reply_to = m->has_reply_to;
	h->in_reply_to.data = m->in_reply_to;
	h->in_reply_to.len = m->has_reply_to ? KP_EVENT_ID_LEN : 0;
	h->has_nonce = 1;
	h->nonce.data = nonce;
	h->nonce.len = NONCE_LEN;
}

/* Pack a protobuf-c message into a fresh malloc'd buffer. */
static uint8_t *
s_pack(const ProtobufCMessage *msg, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *b = malloc(n > 0 ? n : 1);

	if (b != NULL)
		*len = protobuf_c_message_pack(msg, b);
	return b;
}

static int
s_encrypt(const peer_t *to, const uint8_t *header, size_t header_len,
    const uint8_t *nonce, const uint8_t *payload, size_t payload_len,
    uint8_t **ct, size_t *ct_len)
{
	unsigned long long n = 0;
	uint8_t *c = malloc(payload_len + TAG_LEN);

	if (c == NULL)
		return -1;
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(c, &n, payload,
	    payload_len, header, header_len, NULL, nonce,
	    peer_tx_key(to)) != 0) {
		free(c);
		return -1;
	}
	*ct = c;
	*ct_len = (size_t)n;
	return 0;
}

void
envelope_draft_clear(envelope_draft_t *d)
{
	free(d->buf);
	free(d->tbs);
	memset(d, 0, sizeof(*d));
}

int
envelope_seal_draft(const directory_t *dir, const peer_t *to,
    envelope_meta_t *m, const uint8_t *payload, size_t payload_len,
    envelope_draft_t *d, kp_err_t *err)
{
	const identity_t *self = directory_self(dir);
	uint8_t nonce[NONCE_LEN], ct_digest[KP_DIGEST_LEN];
	uint8_t *header = NULL, *ct = NULL;
	size_t header_len = 0, ct_len = 0;
	Kp__Header h;
	Kp__Envelope env = KP__ENVELOPE__INIT;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	if (s_check_seal_args(dir, to, m, payload_len, err) != 0)
		return -1;
	m->schema_major = KP_SCHEMA_MAJOR;
	m->schema_minor = KP_SCHEMA_MINOR;
	memcpy(m->sender_oin, partner_oin(identity_public(self)),
	    KP_OIN_LEN + 1);
	memcpy(m->recipient_oin, partner_oin(peer_partner(to)),
	    KP_OIN_LEN + 1);
	memcpy(d->recipient_oin, m->recipient_oin, KP_OIN_LEN + 1);
	randombytes_buf(nonce, sizeof(nonce));
	s_header_from_meta(&h, m, nonce);
	if ((header = s_pack(&h.base, &header_len)) == NULL ||
	    s_encrypt(to, header, header_len, nonce, payload, payload_len,
	    &ct, &ct_len) != 0 ||
	    crypto_generichash(ct_digest, sizeof(ct_digest), ct, ct_len,
	    NULL, 0) != 0 ||
	    s_tbs(s_env_label, header, header_len, ct_digest,
	    sizeof(ct_digest), &d->tbs, &d->tbs_len, d->digest) != 0) {
		kp_fail(err, KP_ERR_NOMEM, "sealing failed (out of memory)");
		goto out;
	}
	env.has_header = env.has_ciphertext = env.has_ciphertext_digest = 1;
	env.header = (ProtobufCBinaryData){ header_len, header };
	env.ciphertext = (ProtobufCBinaryData){ ct_len, ct };
	env.ciphertext_digest = (ProtobufCBinaryData){ KP_DIGEST_LEN,
	    ct_digest };
	if ((d->buf = s_pack(&env.base, &d->len)) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "sealing failed (out of memory)");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		envelope_draft_clear(d);
	free(header);
	free(ct);
	return rc;
}

/*
 * The signed envelope: the draft's fields 1-3 with field 4 (is_batch
 * false) or 6 appended.  protobuf-c writes fields in number order, so
 * this is byte for byte what packing the whole message would give.
 */
static int
s_append_field(const envelope_draft_t *d, uint8_t tag, const uint8_t *v,
    size_t vlen, uint8_t **out, size_t *out_len)
{
	uint8_t pre[11];
	size_t n = 0, x = vlen;
	uint8_t *b;

	pre[n++] = tag;
	do {
		pre[n++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
		x >>= 7;
	} while (x != 0);
	if ((b = malloc(d->len + n + vlen)) == NULL)
		return -1;
	memcpy(b, d->buf, d->len);
	memcpy(b + d->len, pre, n);
	memcpy(b + d->len + n, v, vlen);
	*out = b;
	*out_len = d->len + n + vlen;
	return 0;
}

static int
s_sign_one(const identity_t *self, const struct form *f,
    const envelope_draft_t *d, uint8_t **out, size_t *out_len)
{
	uint8_t sig[SIG_LEN];

	if (crypto_sign_detached(sig, NULL, d->tbs, d->tbs_len,
	    identity_sign_sk(self)) != 0)
		return -1;
	return s_append_field(d, f->sig_tag, sig, SIG_LEN, out, out_len);
}

/* The proof field of leaf i: its path, the root and the one signature. */
static int
s_batch_proof(const struct form *f, const batch_tree_t *t, size_t i,
    const uint8_t root[32], const uint8_t sig[SIG_LEN],
    const envelope_draft_t *d, uint8_t **out, size_t *out_len)
{
	uint8_t path[BATCH_PATH_MAX][BATCH_HASH_LEN], buf[1024];
	ProtobufCBinaryData pd[BATCH_PATH_MAX];
	Kp__BatchProof bp = KP__BATCH_PROOF__INIT;
	size_t k, plen;

	if (batch_tree_path(t, i, path, &plen) != 0)
		return -1;
	for (k = 0; k < plen; k++)
		pd[k] = (ProtobufCBinaryData){ BATCH_HASH_LEN, path[k] };
	bp.has_size = bp.has_index = bp.has_root = bp.has_signature = 1;
	bp.size = (uint32_t)batch_tree_size(t);
	bp.index = (uint32_t)i;
	bp.n_path = plen;
	bp.path = pd;
	bp.root = (ProtobufCBinaryData){ BATCH_HASH_LEN, (uint8_t *)root };
	bp.signature = (ProtobufCBinaryData){ SIG_LEN, (uint8_t *)sig };
	if (kp__batch_proof__get_packed_size(&bp) > sizeof(buf))
		return -1;
	return s_append_field(d, f->batch_tag, buf,
	    kp__batch_proof__pack(&bp, buf), out, out_len);
}

/* One signature over the root of drafts[0..n), n >= 2, one recipient. */
static int
s_sign_batch(const identity_t *self, const struct form *f,
    envelope_draft_t *const *drafts, size_t n, uint8_t **outs, size_t *lens)
{
	uint8_t (*dg)[BATCH_HASH_LEN] = malloc(n * BATCH_HASH_LEN);
	uint8_t root[BATCH_HASH_LEN], btbs[BATCH_TBS_MAX], sig[SIG_LEN];
	batch_tree_t *t = NULL;
	size_t i, blen, done = 0;
	int rc = -1;

	if (dg == NULL)
		return -1;
	for (i = 0; i < n; i++)
		memcpy(dg[i], drafts[i]->digest, BATCH_HASH_LEN);
	if (batch_tree_new((const uint8_t (*)[BATCH_HASH_LEN])dg, n, &t) != 0)
		goto out;
	batch_tree_root(t, root);
	if (batch_tbs(f->label, (uint32_t)n, root,
	    partner_oin(identity_public(self)), drafts[0]->recipient_oin,
	    btbs, &blen) != 0 ||
	    crypto_sign_detached(sig, NULL, btbs, blen,
	    identity_sign_sk(self)) != 0)
		goto out;
	for (done = 0; done < n; done++)
		if (s_batch_proof(f, t, done, root, sig, drafts[done],
		    &outs[done], &lens[done]) != 0)
			goto out;
	rc = 0;
out:
	if (rc != 0)
		for (; done > 0; done--) {
			free(outs[done - 1]);
			outs[done - 1] = NULL;
		}
	batch_tree_destroy(&t);
	free(dg);
	return rc;
}

/* envelope_sign_batch and receipt_sign_batch, in the form f. */
static int
s_sign_drafts(const directory_t *dir, const struct form *f,
    envelope_draft_t *const *drafts, size_t n, uint8_t **outs, size_t *lens,
    kp_err_t *err)
{
	const identity_t *self = directory_self(dir);
	size_t i;

	if (n == 0 || n > BATCH_MAX_SIZE)
		return kp_fail(err, KP_ERR_INVALID_ARG, "a batch has 1 to %u "
		    "envelopes, not %zu", BATCH_MAX_SIZE, n);
	for (i = 1; i < n; i++)
		if (strcmp(drafts[i]->recipient_oin,
		    drafts[0]->recipient_oin) != 0)
			return kp_fail(err, KP_ERR_INVALID_ARG, "a batch goes "
			    "to one recipient; %s %zu is for another", f->what,
			    i);
	if (n == 1 ? s_sign_one(self, f, drafts[0], &outs[0], &lens[0]) :
	    s_sign_batch(self, f, drafts, n, outs, lens))
		return kp_fail(err, KP_ERR_NOMEM, "signing failed (out of "
		    "memory)");
	return 0;
}

int
envelope_sign_batch(const directory_t *dir, envelope_draft_t *const *drafts,
    size_t n, uint8_t **outs, size_t *lens, kp_err_t *err)
{
	return s_sign_drafts(dir, &s_env_form, drafts, n, outs, lens, err);
}

int
envelope_seal(const directory_t *dir, const peer_t *to, envelope_meta_t *m,
    const uint8_t *payload, size_t payload_len, uint8_t **out,
    size_t *out_len, uint8_t digest[KP_DIGEST_LEN], kp_err_t *err)
{
	envelope_draft_t d, *dp = &d;
	int rc;

	if (envelope_seal_draft(dir, to, m, payload, payload_len, &d, err) != 0)
		return -1;
	memcpy(digest, d.digest, KP_DIGEST_LEN);
	rc = envelope_sign_batch(dir, &dp, 1, out, out_len, err);
	envelope_draft_clear(&d);
	return rc;
}

/* Unknown fields are refused unless the sender speaks a newer minor. */
static bool
s_unknown_ok(const ProtobufCMessage *msg, uint32_t minor)
{
	return msg->n_unknown_fields == 0 || minor > KP_SCHEMA_MINOR;
}

static int
s_check_header(const Kp__Header *h, kp_err_t *err)
{
	const char *missing = NULL;

	if (!h->has_event_id || h->event_id.len != KP_EVENT_ID_LEN)
		missing = "event_id";
	else if (!h->has_event_type || !s_event_type_valid(h->event_type))
		missing = "event_type";
	else if (!kp_oin_valid(h->sender_oin))
		missing = "sender_oin";
	else if (!kp_oin_valid(h->recipient_oin))
		missing = "recipient_oin";
	else if (h->purpose == NULL || !s_label_valid(h->purpose))
		missing = "purpose";
	else if (h->legal_basis == NULL || !s_label_valid(h->legal_basis))
		missing = "legal_basis";
	else if (!h->has_policy_hash || h->policy_hash.len != KP_DIGEST_LEN)
		missing = "policy_hash";
	else if (!h->has_created_at_ms || !h->has_expires_at_ms ||
	    h->expires_at_ms <= h->created_at_ms)
		missing = "created_at_ms/expires_at_ms (expiry after creation)";
	else if (!h->has_case_ref || h->case_ref.len != KP_CASE_REF_LEN)
		missing = "case_ref";
	else if (h->has_in_reply_to && h->in_reply_to.len != KP_EVENT_ID_LEN)
		missing = "in_reply_to";
	else if (!h->has_nonce || h->nonce.len != NONCE_LEN)
		missing = "nonce";
	if (missing != NULL)
		return kp_fail(err, KP_ERR_MALFORMED, "envelope header field "
		    "%s is missing or invalid", missing);
	return 0;
}

static void
s_meta_from_header(envelope_meta_t *m, const Kp__Header *h)
{
	memset(m, 0, sizeof(*m));
	m->schema_major = h->schema_major;
	m->schema_minor = h->schema_minor;
	memcpy(m->event_id, h->event_id.data, KP_EVENT_ID_LEN);
	m->event_type = (int)h->event_type;
	memcpy(m->sender_oin, h->sender_oin, KP_OIN_LEN + 1);
	memcpy(m->recipient_oin, h->recipient_oin, KP_OIN_LEN + 1);
	snprintf(m->purpose, sizeof(m->purpose), "%s", h->purpose);
	snprintf(m->legal_basis, sizeof(m->legal_basis), "%s", h->legal_basis);
	memcpy(m->policy_hash, h->policy_hash.data, KP_DIGEST_LEN);
	m->created_at_ms = h->created_at_ms;
	m->expires_at_ms = h->expires_at_ms;
	memcpy(m->case_ref, h->case_ref.data, KP_CASE_REF_LEN);
	m->has_reply_to = h->has_in_reply_to;
	if (h->has_in_reply_to)
		memcpy(m->in_reply_to, h->in_reply_to.data, KP_EVENT_ID_LEN);
}

/* Exactly one of field 4 (a signature) and field 6 (a batch proof). */
static bool
s_signed_once(const Kp__Envelope *env)
{
	if (env->batch != NULL)
		return !env->has_signature;
	return env->has_signature && env->signature.len == SIG_LEN;
}

static bool
s_batch_wellformed(const Kp__BatchProof *b)
{
	size_t i;

	if (!b->has_size || !b->has_index || !b->has_root ||
	    !b->has_signature || b->size == 0 || b->size > BATCH_MAX_SIZE ||
	    b->index >= b->size || b->root.len != BATCH_HASH_LEN ||
	    b->signature.len != SIG_LEN || b->n_path > BATCH_PATH_MAX)
		return false;
	for (i = 0; i < b->n_path; i++)
		if (b->path[i].len != BATCH_HASH_LEN)
			return false;
	return true;
}

/* Steps 1-3 of PROTOCOL.md §7: size, envelope, header, version. */
static int
s_parse(const uint8_t *buf, size_t len, Kp__Envelope **env_out,
    Kp__Header **h_out, kp_err_t *err)
{
	Kp__Envelope *env;
	Kp__Header *h;

	if (len > KP_MAX_ENVELOPE)
		return kp_fail(err, KP_ERR_OVERSIZE, "envelope of %zu bytes is "
		    "over the limit of %d bytes", len, KP_MAX_ENVELOPE);
	env = kp__envelope__unpack(NULL, len, buf);
	if (env == NULL)
		return kp_fail(err, KP_ERR_MALFORMED, "envelope is not a valid "
		    "protobuf message (truncated or corrupt, %zu bytes)", len);
	if (!env->has_header || !env->has_ciphertext ||
	    !env->has_ciphertext_digest || !s_signed_once(env) ||
	    env->ciphertext_digest.len != KP_DIGEST_LEN ||
	    env->ciphertext.len < TAG_LEN) {
		kp__envelope__free_unpacked(env, NULL);
		return kp_fail(err, KP_ERR_MALFORMED, "envelope lacks header, "
		    "ciphertext, digest or signature, or one has a bad length");
	}
	if (env->batch != NULL && !s_batch_wellformed(env->batch)) {
		kp__envelope__free_unpacked(env, NULL);
		return kp_fail(err, KP_ERR_MALFORMED, "envelope batch proof "
		    "lacks a field, has one of a bad length, or an index "
		    "outside its size");
	}
	h = kp__header__unpack(NULL, env->header.len, env->header.data);
	if (h == NULL || !h->has_schema_major) {
		if (h != NULL)
			kp__header__free_unpacked(h, NULL);
		kp__envelope__free_unpacked(env, NULL);
		return kp_fail(err, KP_ERR_MALFORMED, "envelope header is not "
		    "a valid protobuf message or has no schema version");
	}
	*env_out = env;
	*h_out = h;
	return 0;
}

static int
s_check_version(const Kp__Envelope *env, const Kp__Header *h, kp_err_t *err)
{
	if (h->schema_major != KP_SCHEMA_MAJOR)
		return kp_fail(err, KP_ERR_SCHEMA_VERSION, "envelope schema "
		    "version %u.%u is not supported (this build reads %d.x)",
		    h->schema_major, h->schema_minor, KP_SCHEMA_MAJOR);
	if (!s_unknown_ok(&env->base, h->schema_minor) ||
	    !s_unknown_ok(&h->base, h->schema_minor) || (env->batch != NULL &&
	    !s_unknown_ok(&env->batch->base, h->schema_minor)))
		return kp_fail(err, KP_ERR_MALFORMED, "envelope of schema %u.%u "
		    "has unknown fields", h->schema_major, h->schema_minor);
	return 0;
}

/*
 * Step 7 for a batch proof (§5.6): the path must lead from the envelope
 * digest to the carried root (else batch_proof), and the root's signature
 * must verify (else bad_signature).  A signature this receiver verified
 * before, by the same key over the same BTBS, is taken from the cache:
 * its key is BLAKE2b-256(sign_pk || BTBS || signature), so a hit is
 * exactly the same check already passed, never a weaker one.
 */
static int
s_batch_authentic(batch_cache_t *cache, const uint8_t *sign_pk,
    const struct form *f, const Kp__BatchProof *b, const char *signer_oin,
    const char *peer_oin, const uint8_t digest[KP_DIGEST_LEN], kp_err_t *err)
{
	uint8_t path[BATCH_PATH_MAX][BATCH_HASH_LEN], btbs[BATCH_TBS_MAX];
	uint8_t key[BATCH_HASH_LEN];
	crypto_generichash_state st;
	size_t i, blen;

	for (i = 0; i < b->n_path; i++)
		memcpy(path[i], b->path[i].data, BATCH_HASH_LEN);
	if (batch_verify_path_cached(cache, digest, b->index, b->size,
	    (const uint8_t (*)[BATCH_HASH_LEN])path, b->n_path,
	    b->root.data) != 0)
		return kp_fail(err, KP_ERR_BATCH_PROOF, "batch proof does not "
		    "lead from this %s to the signed root: path, index, "
		    "size or root altered", f->what);
	if (batch_tbs(f->label, b->size, b->root.data, signer_oin, peer_oin,
	    btbs, &blen) != 0 ||
	    crypto_generichash_init(&st, NULL, 0, sizeof(key)) != 0 ||
	    crypto_generichash_update(&st, sign_pk, 32) != 0 ||
	    crypto_generichash_update(&st, btbs, blen) != 0 ||
	    crypto_generichash_update(&st, b->signature.data, SIG_LEN) != 0 ||
	    crypto_generichash_final(&st, key, sizeof(key)) != 0)
		return kp_fail(err, KP_ERR_NOMEM, "hashing failed");
	if (cache != NULL && batch_cache_has(cache, key))
		return 0;
	if (crypto_sign_verify_detached(b->signature.data, btbs, blen,
	    sign_pk) != 0)
		return kp_fail(err, KP_ERR_BAD_SIGNATURE, "batch signature does "
		    "not verify with the certificate of %s: root, size or "
		    "signature altered, or signed by another organisation",
		    signer_oin);
	if (cache != NULL)
		batch_cache_put(cache, key);
	return 0;
}

/* Step 7 in either form: S over TBS, or a batch proof.  0 or -1. */
static int
s_signature_ok(batch_cache_t *cache, const uint8_t *sign_pk,
    const Kp__Envelope *env, const Kp__Header *h, const uint8_t *tbs,
    size_t tbs_len, const uint8_t digest[KP_DIGEST_LEN], kp_err_t *err)
{
	if (env->batch != NULL)
		return s_batch_authentic(cache, sign_pk, &s_env_form,
		    env->batch, h->sender_oin, h->recipient_oin, digest, err);
	if (crypto_sign_verify_detached(env->signature.data, tbs, tbs_len,
	    sign_pk) != 0)
		return kp_fail(err, KP_ERR_BAD_SIGNATURE, "signature does not "
		    "verify with the certificate of %s: header or signature "
		    "altered, or signed by another organisation", h->sender_oin);
	return 0;
}

/*
 * Step 7 with each valid certificate of `from` (during a renewal's overlap
 * a partner signs with either): OUT *cert, the one whose key verified.  A
 * batch path that does not lead to its root fails whatever the key, so
 * only a bad signature tries the next certificate.
 */
static int
s_signed_by(batch_cache_t *cache, const peer_t *from,
    const Kp__Envelope *env, const Kp__Header *h, const uint8_t *tbs,
    size_t tbs_len, const uint8_t digest[KP_DIGEST_LEN], size_t *cert,
    kp_err_t *err)
{
	kp_err_t e = { 0 };
	size_t c;

	e.code = KP_ERR_BAD_SIGNATURE;
	for (c = 0; c < peer_cert_count(from); c++) {
		if (s_signature_ok(cache, partner_sign_pk(peer_cert(from, c)),
		    env, h, tbs, tbs_len, digest, &e) == 0) {
			*cert = c;
			return 0;
		}
		if (e.code != KP_ERR_BAD_SIGNATURE)
			break;
	}
	if (err != NULL)
		*err = e;
	return -1;
}

/* Steps 5-7: recipient, sender, signature over tbs.  OUT: *from, *cert
 * (which of its certificates signed). */
static int
s_authenticate(const directory_t *dir, batch_cache_t *cache,
    const Kp__Envelope *env, const Kp__Header *h, const uint8_t *tbs,
    size_t tbs_len, const uint8_t digest[KP_DIGEST_LEN],
    const peer_t **from, size_t *cert, kp_err_t *err)
{
	const char *own = partner_oin(identity_public(directory_self(dir)));

	if (strcmp(h->recipient_oin, own) != 0)
		return kp_fail(err, KP_ERR_WRONG_RECIPIENT, "envelope is "
		    "addressed to %s, not to this organisation (%s)",
		    h->recipient_oin, own);
	if ((*from = directory_find(dir, h->sender_oin)) == NULL)
		return kp_fail(err, KP_ERR_UNKNOWN_SENDER, "sender %s is not "
		    "a verified partner in the directory", h->sender_oin);
	if (s_signed_by(cache, *from, env, h, tbs, tbs_len, digest, cert,
	    err) != 0)
		return -1;
	if (partner_role(peer_partner(*from)) == KP_ROLE_AUDITOR)
		return kp_fail(err, KP_ERR_ROLE, "sender %s has role auditor, "
		    "which sends no events", h->sender_oin);
	return 0;
}

/*
 * Steps 8-9: ciphertext digest, decryption with the keys between the
 * signing certificate and each of our payload keys (the one in use first;
 * during a renewal the sender may have sealed to our previous or next
 * key).  OUT: *payload, *len.
 */
static int
s_decrypt(const peer_t *from, size_t cert, const Kp__Envelope *env,
    const uint8_t *nonce, uint8_t **payload, size_t *payload_len,
    kp_err_t *err)
{
	uint8_t d[KP_DIGEST_LEN];
	unsigned long long n = 0;
	const uint8_t *key;
	uint8_t *p;
	size_t k;

	if (crypto_generichash(d, sizeof(d), env->ciphertext.data,
	    env->ciphertext.len, NULL, 0) != 0 ||
	    sodium_memcmp(d, env->ciphertext_digest.data, KP_DIGEST_LEN) != 0)
		return kp_fail(err, KP_ERR_CIPHERTEXT_CORRUPT, "ciphertext does "
		    "not match the signed digest: altered in transit or storage");
	p = malloc(env->ciphertext.len);
	if (p == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	for (k = 0; (key = peer_cert_rx_key(from, cert, k)) != NULL; k++)
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(p, &n, NULL,
		    env->ciphertext.data, env->ciphertext.len,
		    env->header.data, env->header.len, nonce, key) == 0) {
			*payload = p;
			*payload_len = (size_t)n;
			return 0;
		}
	free(p);
	return kp_fail(err, KP_ERR_DECRYPT, "payload does not decrypt with "
	    "the key shared with %s", partner_oin(peer_partner(from)));
}

int
envelope_open(const directory_t *dir, const uint8_t *buf, size_t len,
    envelope_meta_t *meta, uint8_t **payload, size_t *payload_len,
    uint8_t digest[KP_DIGEST_LEN], bool *has_digest, kp_err_t *err)
{
	return envelope_open_cached(dir, NULL, buf, len, meta, payload,
	    payload_len, digest, has_digest, err);
}

int
envelope_open_cached(const directory_t *dir, batch_cache_t *cache,
    const uint8_t *buf, size_t len, envelope_meta_t *meta, uint8_t **payload,
    size_t *payload_len, uint8_t digest[KP_DIGEST_LEN], bool *has_digest,
    kp_err_t *err)
{
	return envelope_open_parsed(dir, cache, buf, len, meta, payload,
	    payload_len, digest, has_digest, NULL, err);
}

/* What envelope_open_parsed keeps: the message as s_parse unpacked it. */
struct envelope_parsed {
	Kp__Envelope *env;
};

int
envelope_open_parsed(const directory_t *dir, batch_cache_t *cache,
    const uint8_t *buf, size_t len, envelope_meta_t *meta, uint8_t **payload,
    size_t *payload_len, uint8_t digest[KP_DIGEST_LEN], bool *has_digest,
    envelope_parsed_t **parsed, kp_err_t *err)
{
	Kp__Envelope *env = NULL;
	Kp__Header *h = NULL;
	const peer_t *from = NULL;
	uint8_t *tbs = NULL;
	size_t tbs_len = 0, cert = 0;
	int rc = -1;

	*has_digest = false;
	if (parsed != NULL)
		*parsed = NULL;
	if (s_parse(buf, len, &env, &h, err) != 0)
		return -1;
	if (s_check_version(env, h, err) != 0 || s_check_header(h, err) != 0)
		goto out;
	if (s_tbs(s_env_label, env->header.data, env->header.len,
	    env->ciphertext_digest.data, KP_DIGEST_LEN, &tbs, &tbs_len,
	    digest) != 0) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory");
		goto out;
	}
	*has_digest = true;
	/* from here on the header is complete: a refusal can name the event
	 * (PROTOCOL.md §8), though what it says is not yet authenticated */
	s_meta_from_header(meta, h);
	meta->batched = env->batch != NULL;
	if (s_authenticate(dir, cache, env, h, tbs, tbs_len, digest, &from,
	    &cert, err) != 0)
		goto out;
	if (s_decrypt(from, cert, env, h->nonce.data, payload, payload_len,
	    err) != 0)
		goto out;
	if (parsed != NULL) {
		if ((*parsed = malloc(sizeof(**parsed))) == NULL) {
			sodium_memzero(*payload, *payload_len);
			free(*payload);
			*payload = NULL;
			kp_fail(err, KP_ERR_NOMEM, "out of memory");
			goto out;
		}
		(*parsed)->env = env;
		env = NULL;
	}
	rc = 0;
out:
	free(tbs);
	kp__header__free_unpacked(h, NULL);
	if (env != NULL)
		kp__envelope__free_unpacked(env, NULL);
	return rc;
}

int
envelope_verify_detached(const uint8_t sign_pk[32], const uint8_t *header,
    size_t header_len, const uint8_t ciphertext_digest[KP_DIGEST_LEN],
    const uint8_t signature[64], kp_err_t *err)
{
	uint8_t digest[KP_DIGEST_LEN], *tbs = NULL;
	size_t tbs_len = 0;
	int ok;

	if (s_tbs(s_env_label, header, header_len, ciphertext_digest,
	    KP_DIGEST_LEN, &tbs, &tbs_len, digest) != 0)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	ok = crypto_sign_verify_detached(signature, tbs, tbs_len, sign_pk) == 0;
	free(tbs);
	if (!ok)
		return kp_fail(err, KP_ERR_BAD_SIGNATURE, "signature does not "
		    "cover this header and ciphertext digest");
	return 0;
}

int
envelope_verify_evidence(const uint8_t sign_pk[32], const uint8_t *buf,
    size_t len, uint8_t digest[KP_DIGEST_LEN], kp_err_t *err)
{
	Kp__Envelope *env = kp__envelope__unpack(NULL, len, buf);
	Kp__Header *h = NULL;
	uint8_t *tbs = NULL;
	size_t tbs_len = 0;
	int rc = -1;

	if (env == NULL || !env->has_header || !env->has_ciphertext_digest ||
	    env->ciphertext_digest.len != KP_DIGEST_LEN ||
	    !s_signed_once(env) || (env->batch != NULL &&
	    !s_batch_wellformed(env->batch)) ||
	    (h = kp__header__unpack(NULL, env->header.len, env->header.data))
	    == NULL || s_check_header(h, err) != 0) {
		kp_fail(err, KP_ERR_MALFORMED, "evidence is not an envelope "
		    "with a complete header, digest and signature");
		goto out;
	}
	if (s_tbs(s_env_label, env->header.data, env->header.len,
	    env->ciphertext_digest.data, KP_DIGEST_LEN, &tbs, &tbs_len,
	    digest) != 0) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = s_signature_ok(NULL, sign_pk, env, h, tbs, tbs_len, digest, err);
out:
	free(tbs);
	if (h != NULL)
		kp__header__free_unpacked(h, NULL);
	if (env != NULL)
		kp__envelope__free_unpacked(env, NULL);
	return rc;
}

int
envelope_single(const directory_t *dir, const uint8_t *buf, size_t len,
    uint8_t **out, size_t *out_len, kp_err_t *err)
{
	const identity_t *self = directory_self(dir);
	Kp__Envelope *env = kp__envelope__unpack(NULL, len, buf);
	Kp__Envelope plain = KP__ENVELOPE__INIT;
	Kp__Header *h = NULL;
	uint8_t sig[SIG_LEN], digest[KP_DIGEST_LEN], *tbs = NULL;
	size_t tbs_len = 0;
	int rc = -1;

	if (env == NULL || !env->has_header || !env->has_ciphertext ||
	    !env->has_ciphertext_digest ||
	    env->ciphertext_digest.len != KP_DIGEST_LEN ||
	    (h = kp__header__unpack(NULL, env->header.len, env->header.data))
	    == NULL || h->sender_oin == NULL) {
		kp_fail(err, KP_ERR_MALFORMED, "stored envelope is not an "
		    "envelope with header, ciphertext and digest");
		goto out;
	}
	if (strcmp(h->sender_oin, partner_oin(identity_public(self))) != 0) {
		kp_fail(err, KP_ERR_INVALID_ARG, "envelope was sealed by %s, "
		    "not by this organisation", h->sender_oin);
		goto out;
	}
	if (env->batch == NULL && env->has_signature) {
		if ((*out = malloc(len)) == NULL) {
			kp_fail(err, KP_ERR_NOMEM, "out of memory");
			goto out;
		}
		memcpy(*out, buf, len);
		*out_len = len;
		rc = 0;
		goto out;
	}
	if (s_tbs(s_env_label, env->header.data, env->header.len,
	    env->ciphertext_digest.data, KP_DIGEST_LEN, &tbs, &tbs_len,
	    digest) != 0 || crypto_sign_detached(sig, NULL, tbs, tbs_len,
	    identity_sign_sk(self)) != 0) {
		kp_fail(err, KP_ERR_NOMEM, "signing failed (out of memory)");
		goto out;
	}
	plain.has_header = plain.has_ciphertext = 1;
	plain.has_ciphertext_digest = plain.has_signature = 1;
	plain.header = env->header;
	plain.ciphertext = env->ciphertext;
	plain.ciphertext_digest = env->ciphertext_digest;
	plain.signature = (ProtobufCBinaryData){ SIG_LEN, sig };
	if ((*out = s_pack(&plain.base, out_len)) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	free(tbs);
	if (h != NULL)
		kp__header__free_unpacked(h, NULL);
	if (env != NULL)
		kp__envelope__free_unpacked(env, NULL);
	return rc;
}

/*
 * The evidence of env: packed again without its ciphertext and tree head.
 * A shallow copy is packed, so env (one parse, shared) stays as it is.
 */
static int
s_strip(const Kp__Envelope *env, uint8_t **out, size_t *out_len,
    kp_err_t *err)
{
	Kp__Envelope ev = *env;

	/* the head is outside the signed bytes and kept apart (witness) */
	ev.tree_head = NULL;
	ev.has_ciphertext = 0;
	if ((*out = s_pack(&ev.base, out_len)) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	return 0;
}

int
envelope_strip(const uint8_t *buf, size_t len, uint8_t **out,
    size_t *out_len, kp_err_t *err)
{
	Kp__Envelope *env = kp__envelope__unpack(NULL, len, buf);
	int rc;

	if (env == NULL)
		return kp_fail(err, KP_ERR_MALFORMED, "envelope is not a valid "
		    "protobuf message");
	rc = s_strip(env, out, out_len, err);
	kp__envelope__free_unpacked(env, NULL);
	return rc;
}

int
envelope_parsed_strip(const envelope_parsed_t *p, uint8_t **out,
    size_t *out_len, kp_err_t *err)
{
	return s_strip(p->env, out, out_len, err);
}

void
envelope_parsed_destroy(envelope_parsed_t **p)
{
	if (p == NULL || *p == NULL)
		return;
	kp__envelope__free_unpacked((*p)->env, NULL);
	free(*p);
	*p = NULL;
}

int
envelope_attach_head(uint8_t **buf, size_t *len, bool is_receipt,
    const uint8_t *head, size_t head_len)
{
	uint8_t tag = is_receipt ? 0x1a : 0x2a;  /* field 3 / 5, bytes */
	uint8_t pre[11], *grown;
	size_t n = 0, v = head_len;

	pre[n++] = tag;
	do {                                     /* varint length */
		pre[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	grown = realloc(*buf, *len + n + head_len);
	if (grown == NULL)
		return -1;
	memcpy(grown + *len, pre, n);
	memcpy(grown + *len + n, head, head_len);
	*buf = grown;
	*len += n + head_len;
	return 0;
}

/* A copy of the serialised tree head th, or NULL if none; -1: no memory. */
static int
s_head_copy(const Kp__TreeHead *th, uint8_t **head, size_t *head_len)
{
	*head = NULL;
	if (th == NULL)
		return 0;
	*head_len = kp__tree_head__get_packed_size(th);
	if ((*head = malloc(*head_len + 1)) == NULL)
		return -1;
	kp__tree_head__pack(th, *head);
	return 0;
}

int
envelope_extract_head(const uint8_t *buf, size_t len, bool is_receipt,
    uint8_t **head, size_t *head_len)
{
	const Kp__TreeHead *th = NULL;
	Kp__Envelope *env = NULL;
	Kp__Receipt *rc = NULL;
	int ret;

	if (is_receipt && (rc = kp__receipt__unpack(NULL, len, buf)) != NULL)
		th = rc->tree_head;
	else if (!is_receipt && (env = kp__envelope__unpack(NULL, len,
	    buf)) != NULL)
		th = env->tree_head;
	ret = s_head_copy(th, head, head_len);
	if (rc != NULL)
		kp__receipt__free_unpacked(rc, NULL);
	if (env != NULL)
		kp__envelope__free_unpacked(env, NULL);
	return ret;
}

int
envelope_parsed_head(const envelope_parsed_t *p, uint8_t **head,
    size_t *head_len)
{
	return s_head_copy(p->env->tree_head, head, head_len);
}

/* ---- receipts ---------------------------------------------------------- */

static void
s_body_from_receipt(Kp__ReceiptBody *b, receipt_t *r)
{
	kp__receipt_body__init(b);
	b->has_schema_major = b->has_schema_minor = 1;
	b->schema_major = r->schema_major;
	b->schema_minor = r->schema_minor;
	b->has_event_id = r->has_event_id;
	b->event_id.data = r->event_id;
	b->event_id.len = r->has_event_id ? KP_EVENT_ID_LEN : 0;
	b->issuer_oin = r->issuer_oin;
	b->subject_oin = r->subject_oin;
	b->has_envelope_digest = 1;
	b->envelope_digest.data = r->envelope_digest;
	b->envelope_digest.len = KP_DIGEST_LEN;
	b->has_status = b->has_reason = b->has_received_at_ms = 1;
	b->status = (Kp__ReceiptStatus)r->status;
	b->reason = (Kp__Reason)r->reason;
	b->received_at_ms = r->received_at_ms;
	b->has_expected_policy_hash = r->has_expected_policy_hash;
	b->expected_policy_hash.data = r->expected_policy_hash;
	b->expected_policy_hash.len = r->has_expected_policy_hash ?
	    KP_DIGEST_LEN : 0;
}

int
receipt_draft(const directory_t *dir, receipt_t *r, envelope_draft_t *d,
    kp_err_t *err)
{
	const identity_t *self = directory_self(dir);
	Kp__ReceiptBody b;
	Kp__Receipt rc_msg = KP__RECEIPT__INIT;
	uint8_t *body = NULL;
	size_t body_len = 0;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	if (!kp_oin_valid(r->subject_oin))
		return kp_fail(err, KP_ERR_INVALID_ARG, "receipt subject OIN "
		    "is not 20 digits");
	r->schema_major = KP_SCHEMA_MAJOR;
	r->schema_minor = KP_SCHEMA_MINOR;
	memcpy(r->issuer_oin, partner_oin(identity_public(self)),
	    KP_OIN_LEN + 1);
	memcpy(d->recipient_oin, r->subject_oin, KP_OIN_LEN + 1);
	s_body_from_receipt(&b, r);
	if ((body = s_pack(&b.base, &body_len)) == NULL ||
	    s_tbs(s_rcpt_label, body, body_len, NULL, 0, &d->tbs, &d->tbs_len,
	    d->digest) != 0) {
		kp_fail(err, KP_ERR_NOMEM, "signing receipt failed");
		goto out;
	}
	memcpy(r->digest, d->digest, KP_DIGEST_LEN);
	rc_msg.has_body = 1;
	rc_msg.body = (ProtobufCBinaryData){ body_len, body };
	if ((d->buf = s_pack(&rc_msg.base, &d->len)) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "signing receipt failed");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		envelope_draft_clear(d);
	free(body);
	return rc;
}

int
receipt_sign_batch(const directory_t *dir, envelope_draft_t *const *drafts,
    size_t n, uint8_t **outs, size_t *lens, kp_err_t *err)
{
	return s_sign_drafts(dir, &s_rcpt_form, drafts, n, outs, lens, err);
}

int
receipt_sign(const directory_t *dir, receipt_t *r, uint8_t **out,
    size_t *out_len, kp_err_t *err)
{
	envelope_draft_t d, *dp = &d;
	int rc;

	if (receipt_draft(dir, r, &d, err) != 0)
		return -1;
	rc = receipt_sign_batch(dir, &dp, 1, out, out_len, err);
	envelope_draft_clear(&d);
	return rc;
}

static int
s_receipt_fields(const Kp__ReceiptBody *b, receipt_t *r, kp_err_t *err)
{
	if ((b->has_event_id && b->event_id.len != KP_EVENT_ID_LEN) ||
	    !kp_oin_valid(b->issuer_oin) || !kp_oin_valid(b->subject_oin) ||
	    !b->has_envelope_digest || b->envelope_digest.len !=
	    KP_DIGEST_LEN || !b->has_status || !b->has_reason ||
	    !b->has_received_at_ms || (b->has_expected_policy_hash &&
	    b->expected_policy_hash.len != KP_DIGEST_LEN) ||
	    protobuf_c_enum_descriptor_get_value(&kp__receipt_status__descriptor,
	    b->status) == NULL || b->status == 0 ||
	    protobuf_c_enum_descriptor_get_value(&kp__reason__descriptor,
	    b->reason) == NULL)
		return kp_fail(err, KP_ERR_MALFORMED, "receipt body lacks a "
		    "field, has one of a bad length, or a status or reason "
		    "outside its enumeration");
	memset(r, 0, sizeof(*r));
	r->schema_major = b->schema_major;
	r->schema_minor = b->schema_minor;
	r->has_event_id = b->has_event_id;
	if (b->has_event_id)
		memcpy(r->event_id, b->event_id.data, KP_EVENT_ID_LEN);
	memcpy(r->issuer_oin, b->issuer_oin, KP_OIN_LEN + 1);
	memcpy(r->subject_oin, b->subject_oin, KP_OIN_LEN + 1);
	memcpy(r->envelope_digest, b->envelope_digest.data, KP_DIGEST_LEN);
	r->status = (int)b->status;
	r->reason = (int)b->reason;
	r->received_at_ms = b->received_at_ms;
	r->has_expected_policy_hash = b->has_expected_policy_hash;
	if (b->has_expected_policy_hash)
		memcpy(r->expected_policy_hash, b->expected_policy_hash.data,
		    KP_DIGEST_LEN);
	return 0;
}

/* Is body addressed to us and signed by its issuer (field 2, or a batch
 * proof in field 4)?  OUT: digest. */
static int
s_receipt_authentic(const directory_t *dir, batch_cache_t *cache,
    const Kp__Receipt *m, const Kp__ReceiptBody *b,
    uint8_t digest[KP_DIGEST_LEN], kp_err_t *err)
{
	const char *own = partner_oin(identity_public(directory_self(dir)));
	const peer_t *issuer;
	const uint8_t *pk;
	uint8_t *tbs = NULL;
	size_t tbs_len = 0, c;
	kp_err_t e = { 0 };
	int rc;

	if (strcmp(b->subject_oin, own) != 0)
		return kp_fail(err, KP_ERR_WRONG_RECIPIENT, "receipt is for %s, "
		    "not for this organisation (%s)", b->subject_oin, own);
	if ((issuer = directory_find(dir, b->issuer_oin)) == NULL)
		return kp_fail(err, KP_ERR_UNKNOWN_SENDER, "receipt issuer %s "
		    "is not a verified partner", b->issuer_oin);
	if (s_tbs(s_rcpt_label, m->body.data, m->body.len, NULL, 0, &tbs,
	    &tbs_len, digest) != 0)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	rc = -1;
	for (c = 0; c < peer_cert_count(issuer); c++) {
		pk = partner_sign_pk(peer_cert(issuer, c));
		if (m->batch != NULL) {
			/* a path that does not lead to its root fails with
			 * every key: its own reason */
			rc = s_batch_authentic(cache, pk, &s_rcpt_form,
			    m->batch, b->issuer_oin, b->subject_oin, digest,
			    &e);
			if (rc == 0 || e.code != KP_ERR_BAD_SIGNATURE) {
				if (rc != 0 && err != NULL)
					*err = e;
				break;
			}
		} else if (crypto_sign_verify_detached(m->signature.data, tbs,
		    tbs_len, pk) == 0) {
			rc = 0;
			break;
		}
	}
	/* the message is made only for a failure: every receipt of a drain
	 * passes here (formatting it each time was 0.5% of a sender) */
	if (rc != 0 && (e.code == 0 || e.code == KP_ERR_BAD_SIGNATURE))
		kp_fail(err, KP_ERR_BAD_SIGNATURE, "receipt signature does not "
		    "verify with a certificate of %s", b->issuer_oin);
	free(tbs);
	return rc;
}

/* Exactly one of field 2 (a signature) and field 4 (a batch proof). */
static bool
s_receipt_signed_once(const Kp__Receipt *m)
{
	if (m->batch != NULL)
		return !m->has_signature && s_batch_wellformed(m->batch);
	return m->has_signature && m->signature.len == SIG_LEN;
}

int
receipt_verify(const directory_t *dir, const uint8_t *buf, size_t len,
    receipt_t *r, kp_err_t *err)
{
	return receipt_verify_cached(dir, NULL, buf, len, r, err);
}

int
receipt_verify_cached(const directory_t *dir, batch_cache_t *cache,
    const uint8_t *buf, size_t len, receipt_t *r, kp_err_t *err)
{
	return receipt_verify_head(dir, cache, buf, len, r, NULL, NULL, err);
}

/* The tree head of verified receipt m as its bytes (envelope_extract_head
 * packs it the same way).  OUT: *head (malloc'd; NULL if m has none, or
 * out of memory: the head is then not witnessed, the receipt stands). */
static void
s_receipt_head(const Kp__Receipt *m, uint8_t **head, size_t *head_len)
{
	if (m->tree_head == NULL)
		return;
	*head_len = kp__tree_head__get_packed_size(m->tree_head);
	if ((*head = malloc(*head_len + 1)) != NULL)
		kp__tree_head__pack(m->tree_head, *head);
}

int
receipt_verify_head(const directory_t *dir, batch_cache_t *cache,
    const uint8_t *buf, size_t len, receipt_t *r, uint8_t **head,
    size_t *head_len, kp_err_t *err)
{
	Kp__Receipt *m = NULL;
	Kp__ReceiptBody *b = NULL;
	uint8_t digest[KP_DIGEST_LEN];
	int rc = -1;

	if (head != NULL)
		*head = NULL;
	if (len > KP_MAX_RECEIPT)
		return kp_fail(err, KP_ERR_OVERSIZE, "receipt of %zu bytes is "
		    "over the limit of %d bytes", len, KP_MAX_RECEIPT);
	m = kp__receipt__unpack(NULL, len, buf);
	if (m == NULL || !m->has_body || !s_receipt_signed_once(m) ||
	    (b = kp__receipt_body__unpack(NULL, m->body.len, m->body.data))
	    == NULL || !b->has_schema_major) {
		kp_fail(err, KP_ERR_MALFORMED, "receipt is not a valid "
		    "protobuf message (truncated or corrupt)");
		goto out;
	}
	if (m->batch == NULL && len > KP_MAX_PLAIN_RECEIPT) {
		kp_fail(err, KP_ERR_OVERSIZE, "receipt of %zu bytes without a "
		    "batch proof is over the limit of %d bytes", len,
		    KP_MAX_PLAIN_RECEIPT);
		goto out;
	}
	if (b->schema_major != KP_SCHEMA_MAJOR) {
		kp_fail(err, KP_ERR_SCHEMA_VERSION, "receipt schema version "
		    "%u.%u is not supported", b->schema_major, b->schema_minor);
		goto out;
	}
	if (!s_unknown_ok(&b->base, b->schema_minor) || (m->batch != NULL &&
	    !s_unknown_ok(&m->batch->base, b->schema_minor))) {
		kp_fail(err, KP_ERR_MALFORMED, "receipt has unknown fields");
		goto out;
	}
	if (s_receipt_fields(b, r, err) != 0 ||
	    s_receipt_authentic(dir, cache, m, b, digest, err) != 0)
		goto out;
	if (head != NULL)
		s_receipt_head(m, head, head_len);
	memcpy(r->digest, digest, KP_DIGEST_LEN);
	rc = 0;
out:
	if (b != NULL)
		kp__receipt_body__free_unpacked(b, NULL);
	if (m != NULL)
		kp__receipt__free_unpacked(m, NULL);
	return rc;
}

int
envelope_reason_for(int code)
{
	switch (code) {
	case KP_ERR_MALFORMED: return KP__REASON__REASON_MALFORMED;
	case KP_ERR_MALFORMED_PAYLOAD: return KP__REASON__REASON_MALFORMED;
	case KP_ERR_SCHEMA_VERSION: return KP__REASON__REASON_SCHEMA_VERSION;
	case KP_ERR_OVERSIZE: return KP__REASON__REASON_OVERSIZE;
	case KP_ERR_WRONG_RECIPIENT: return KP__REASON__REASON_WRONG_RECIPIENT;
	case KP_ERR_UNKNOWN_SENDER: return KP__REASON__REASON_UNKNOWN_SENDER;
	case KP_ERR_BAD_SIGNATURE: return KP__REASON__REASON_BAD_SIGNATURE;
	case KP_ERR_CIPHERTEXT_CORRUPT:
		return KP__REASON__REASON_CIPHERTEXT_CORRUPT;
	case KP_ERR_DECRYPT: return KP__REASON__REASON_DECRYPT_FAILED;
	case KP_ERR_ROLE: return KP__REASON__REASON_SENDER_ROLE;
	case KP_ERR_BATCH_PROOF: return KP__REASON__REASON_BATCH_PROOF;
	default: return KP__REASON__REASON_INTERNAL;
	}
}
