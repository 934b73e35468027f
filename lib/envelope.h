/*
 * envelope.h: sealing and opening case events, and signed receipts.
 *
 * seal: sign-then-encrypt in one structure.  The header travels in clear
 * (it is metadata the audit log records anyway) and is the associated data
 * of the XChaCha20-Poly1305 encryption of the payload; the Ed25519
 * signature covers the header bytes and the BLAKE2b digest of the
 * ciphertext, so an auditor can check it without the payload.  The exact
 * bytes are in docs/PROTOCOL.md; this module is their reference.
 *
 * open performs the checks in a fixed order, each with its own error code:
 * size, envelope protobuf, header protobuf, schema major, header fields,
 * recipient, known sender, signature, ciphertext digest, decryption.
 *
 * Batch signatures (PROTOCOL.md §5.6): a sender sealing several envelopes
 * for one recipient at once makes drafts (header, ciphertext, digest: the
 * envelope digest is final here) and signs them together with
 * envelope_sign_batch, one Ed25519 signature over the root of a hash tree
 * of their digests; each envelope carries its path and verifies alone.
 */
#ifndef KP_ENVELOPE_H
#define KP_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "directory.h"
#include "kperr.h"
#include "util.h"

#define KP_SCHEMA_MAJOR 1
#define KP_SCHEMA_MINOR 0
#define KP_MAX_PAYLOAD (32 * 1024)   /* plaintext event, bytes */
#define KP_MAX_ENVELOPE (64 * 1024)  /* whole sealed envelope, bytes */
/* A receipt with a batch proof (PROTOCOL.md §8.1) goes only to a sender
 * that sends batch proofs itself; a plain one stays within 1 024 bytes. */
#define KP_MAX_RECEIPT 2048
#define KP_MAX_PLAIN_RECEIPT 1024
#define KP_LABEL_MAX 64              /* purpose, legal basis */
#define KP_DIGEST_LEN 32
#define KP_CASE_REF_LEN 32
#define KP_EVENT_ID_LEN 16

/* The header fields of an event; envelope_seal fills the starred ones. */
typedef struct envelope_meta {
	uint32_t schema_major;                 /* * */
	uint32_t schema_minor;                 /* * */
	uint8_t event_id[KP_EVENT_ID_LEN];
	int event_type;                        /* Kp__EventType */
	char sender_oin[KP_OIN_LEN + 1];       /* * */
	char recipient_oin[KP_OIN_LEN + 1];    /* * */
	char purpose[KP_LABEL_MAX + 1];
	char legal_basis[KP_LABEL_MAX + 1];
	uint8_t policy_hash[KP_DIGEST_LEN];
	uint64_t created_at_ms;
	uint64_t expires_at_ms;
	uint8_t case_ref[KP_CASE_REF_LEN];
	bool has_reply_to;
	uint8_t in_reply_to[KP_EVENT_ID_LEN];
	bool batched;                          /* open: came with field 6 */
} envelope_meta_t;

/*
 * Seal payload for `to`.  meta: IN the caller's fields, OUT the starred
 * ones.  OUT: *out (malloc'd, caller frees), *out_len, digest (the
 * envelope digest, PROTOCOL.md §6).  Errors: KP_ERR_ROLE (auditors send
 * nothing), KP_ERR_OVERSIZE, KP_ERR_INVALID_ARG, KP_ERR_NOMEM.
 */
int envelope_seal(const directory_t *dir, const peer_t *to,
    envelope_meta_t *meta, const uint8_t *payload, size_t payload_len,
    uint8_t **out, size_t *out_len, uint8_t digest[KP_DIGEST_LEN],
    kp_err_t *err) __attribute__((warn_unused_result));

/*
 * A sealed envelope not yet signed: fields 1-3 of kp.Envelope packed, the
 * signed bytes TBS of §5.3 and the envelope digest (§5.5), which no form
 * of signature changes.  Owned by its holder: envelope_draft_clear.
 */
typedef struct envelope_draft {
	uint8_t *buf;
	size_t len;
	uint8_t *tbs;
	size_t tbs_len;
	uint8_t digest[KP_DIGEST_LEN];
	char recipient_oin[KP_OIN_LEN + 1];
} envelope_draft_t;

/* envelope_seal without the signature.  OUT: *d.  Errors as seal. */
int envelope_seal_draft(const directory_t *dir, const peer_t *to,
    envelope_meta_t *meta, const uint8_t *payload, size_t payload_len,
    envelope_draft_t *d, kp_err_t *err) __attribute__((warn_unused_result));
void envelope_draft_clear(envelope_draft_t *d);

/*
 * Sign drafts[0..n), all for one recipient: n == 1 gives the plain form
 * (field 4, §5.3), n >= 2 one batch signature and a proof in each (field
 * 6, §5.6).  OUT: outs[i] (malloc'd, caller frees), lens[i]; on error none
 * is set.  Errors: KP_ERR_INVALID_ARG (n 0 or over BATCH_MAX_SIZE, mixed
 * recipients), KP_ERR_NOMEM.
 */
int envelope_sign_batch(const directory_t *dir,
    envelope_draft_t *const *drafts, size_t n, uint8_t **outs, size_t *lens,
    kp_err_t *err) __attribute__((warn_unused_result));

/*
 * Open an envelope addressed to the directory's own organisation.
 * OUT: *meta, *payload (malloc'd, caller wipes and frees), *payload_len,
 * digest.  On error the digest is still filled when the envelope parsed
 * far enough (*has_digest says so), so a negative receipt can name it;
 * *meta is then filled too, from the header as received: the event id
 * for the receipt, nothing to trust (the signature may not have verified).
 */
int envelope_open(const directory_t *dir, const uint8_t *buf, size_t len,
    envelope_meta_t *meta, uint8_t **payload, size_t *payload_len,
    uint8_t digest[KP_DIGEST_LEN], bool *has_digest, kp_err_t *err)
    __attribute__((warn_unused_result));

/*
 * envelope_open with a cache of verified batch signatures (NULL: none):
 * the envelopes of one batch after the first cost a hash path, not an
 * Ed25519 verification.  The cache is the caller's (one thread).
 */
int envelope_open_cached(const directory_t *dir, batch_cache_t *cache,
    const uint8_t *buf, size_t len, envelope_meta_t *meta, uint8_t **payload,
    size_t *payload_len, uint8_t digest[KP_DIGEST_LEN], bool *has_digest,
    kp_err_t *err) __attribute__((warn_unused_result));

/*
 * envelope_open_cached that also keeps the envelope as it parsed it, so
 * that what a receiver stores from it (envelope_parsed_strip: the bytes
 * envelope_strip makes; envelope_parsed_head: those of
 * envelope_extract_head) costs no second parse.  parsed NULL: as
 * envelope_open_cached.  OUT: *parsed, only on success (NULL on error;
 * the caller's, envelope_parsed_destroy).
 */
typedef struct envelope_parsed envelope_parsed_t;
int envelope_open_parsed(const directory_t *dir, batch_cache_t *cache,
    const uint8_t *buf, size_t len, envelope_meta_t *meta, uint8_t **payload,
    size_t *payload_len, uint8_t digest[KP_DIGEST_LEN], bool *has_digest,
    envelope_parsed_t **parsed, kp_err_t *err)
    __attribute__((warn_unused_result));
int envelope_parsed_strip(const envelope_parsed_t *p, uint8_t **out,
    size_t *out_len, kp_err_t *err) __attribute__((warn_unused_result));
int envelope_parsed_head(const envelope_parsed_t *p, uint8_t **head,
    size_t *head_len) __attribute__((warn_unused_result));
void envelope_parsed_destroy(envelope_parsed_t **p);

/*
 * The third party's check of an envelope or its evidence (envelope_strip):
 * does its signature, plain or batch, by sign_pk cover its header and
 * ciphertext digest?  Needs no payload, no decryption key, no cache.
 * OUT: digest (the envelope digest).  Errors: KP_ERR_MALFORMED,
 * KP_ERR_BATCH_PROOF, KP_ERR_BAD_SIGNATURE.
 */
int envelope_verify_evidence(const uint8_t sign_pk[32], const uint8_t *buf,
    size_t len, uint8_t digest[KP_DIGEST_LEN], kp_err_t *err)
    __attribute__((warn_unused_result));

/*
 * The auditor's check: does `signature` by sign_pk cover this header and
 * this ciphertext digest?  Needs no payload and no decryption key.
 */
int envelope_verify_detached(const uint8_t sign_pk[32], const uint8_t *header,
    size_t header_len, const uint8_t ciphertext_digest[KP_DIGEST_LEN],
    const uint8_t signature[64], kp_err_t *err)
    __attribute__((warn_unused_result));

/*
 * The plain form (§5.3, field 4) of an envelope this organisation sealed:
 * a batch-signed one gets a fresh signature over its unchanged TBS (same
 * envelope digest) and loses field 6 and any tree head; a plain one is
 * copied.  For a partner that does not read batch proofs (PROTOCOL.md §3).
 * OUT: *out (malloc'd).  Errors: KP_ERR_MALFORMED, KP_ERR_INVALID_ARG (not
 * sealed by us), KP_ERR_NOMEM.
 */
int envelope_single(const directory_t *dir, const uint8_t *buf, size_t len,
    uint8_t **out, size_t *out_len, kp_err_t *err)
    __attribute__((warn_unused_result));

/*
 * The evidence of an envelope: the same Envelope message without its
 * ciphertext (header, ciphertext digest, signature or batch proof) and
 * without the sender's tree head (not signed with the envelope; the
 * receiver keeps the heads it witnessed apart, in its witness table).
 * Enough for envelope_verify_detached and the envelope digest, nothing to
 * decrypt.
 * OUT: *out (malloc'd).  Errors: KP_ERR_MALFORMED, KP_ERR_NOMEM.
 */
int envelope_strip(const uint8_t *buf, size_t len, uint8_t **out,
    size_t *out_len, kp_err_t *err) __attribute__((warn_unused_result));

/*
 * Tree heads ride along (docs/AUDIT.md, PROTOCOL.md §5.4 and §8): they are
 * self-signed, so they sit outside the envelope's and receipt's signed
 * bytes, appended as field 5 of Envelope / field 3 of Receipt.
 * attach: append `head` (a serialised kp.TreeHead) to *buf (realloc'd).
 * extract: the serialised TreeHead in an envelope (is_receipt false) or
 * receipt, if any.  OUT: *head (malloc'd) or NULL.
 */
int envelope_attach_head(uint8_t **buf, size_t *len, bool is_receipt,
    const uint8_t *head, size_t head_len) __attribute__((warn_unused_result));
int envelope_extract_head(const uint8_t *buf, size_t len, bool is_receipt,
    uint8_t **head, size_t *head_len) __attribute__((warn_unused_result));

/* A receipt's fields; receipt_sign fills the starred ones. */
typedef struct receipt {
	uint32_t schema_major;                 /* * */
	uint32_t schema_minor;                 /* * */
	bool has_event_id;
	uint8_t event_id[KP_EVENT_ID_LEN];
	char issuer_oin[KP_OIN_LEN + 1];       /* * the event's recipient */
	char subject_oin[KP_OIN_LEN + 1];      /* the event's sender */
	uint8_t envelope_digest[KP_DIGEST_LEN];
	int status;                            /* Kp__ReceiptStatus */
	int reason;                            /* Kp__Reason */
	uint64_t received_at_ms;
	bool has_expected_policy_hash;
	uint8_t expected_policy_hash[KP_DIGEST_LEN];
	uint8_t digest[KP_DIGEST_LEN];         /* * and by receipt_verify */
} receipt_t;

/* Sign r as the directory's own organisation.  OUT: *out (malloc'd). */
int receipt_sign(const directory_t *dir, receipt_t *r, uint8_t **out,
    size_t *out_len, kp_err_t *err) __attribute__((warn_unused_result));

/*
 * Receipts in a batch (PROTOCOL.md §8.1), as envelopes: receipt_draft
 * fills r's starred fields and r->digest (final) and makes *d (the
 * subject in d->recipient_oin); receipt_sign_batch signs drafts of one
 * subject, n == 1 plain (field 2), n >= 2 one batch signature and a proof
 * in each (field 4).  Same ownership and errors as the envelope calls.
 */
int receipt_draft(const directory_t *dir, receipt_t *r, envelope_draft_t *d,
    kp_err_t *err) __attribute__((warn_unused_result));
int receipt_sign_batch(const directory_t *dir,
    envelope_draft_t *const *drafts, size_t n, uint8_t **outs, size_t *lens,
    kp_err_t *err) __attribute__((warn_unused_result));

/*
 * Verify a receipt issued by a partner to us.  OUT: *r.  Errors:
 * KP_ERR_OVERSIZE, KP_ERR_MALFORMED, KP_ERR_SCHEMA_VERSION,
 * KP_ERR_WRONG_RECIPIENT, KP_ERR_UNKNOWN_SENDER, KP_ERR_BAD_SIGNATURE.
 */
int receipt_verify(const directory_t *dir, const uint8_t *buf, size_t len,
    receipt_t *r, kp_err_t *err) __attribute__((warn_unused_result));
/* receipt_verify with a cache of verified batch signatures (or NULL);
 * a batch proof that does not lead to its root is KP_ERR_BATCH_PROOF. */
int receipt_verify_cached(const directory_t *dir, batch_cache_t *cache,
    const uint8_t *buf, size_t len, receipt_t *r, kp_err_t *err)
    __attribute__((warn_unused_result));
/* receipt_verify_cached that also hands back the receipt's tree head
 * (field 3) as envelope_extract_head would: *head malloc'd, NULL if the
 * receipt carries none, does not verify, or memory ran out (the receipt
 * still verifies); the receipt is parsed once. */
int receipt_verify_head(const directory_t *dir, batch_cache_t *cache,
    const uint8_t *buf, size_t len, receipt_t *r, uint8_t **head,
    size_t *head_len, kp_err_t *err) __attribute__((warn_unused_result));

/* Map an error code of envelope_open to the receipt's Kp__Reason. */
int envelope_reason_for(int kp_code);

#endif
