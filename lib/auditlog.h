/*
 * auditlog.h: the purpose-bound audit log's format, shared by the daemon
 * (which writes it) and the auditor's tools (which check it offline).
 * docs/AUDIT.md is the specification; this module is its reference.
 *
 * An entry records one act of sharing or refusing, by metadata only: never
 * a payload value.  Entries are leaves of an RFC 9162 Merkle tree (leaf =
 * SHA-256(0x00 || canonical entry bytes), lib/merkle.c); the organisation
 * signs tree heads (size, time, root) with its Ed25519 key.
 *
 * Canonical entry encoding, version 1 (all integers big-endian; str and bin
 * are a u16 length then that many bytes; absent = length 0):
 *   u8 version (1) | u64 seq | u64 time_ms | u8 kind | u8 direction |
 *   str own_oin | str partner_oin | bin event_id (0/16) | u8 event_type |
 *   str purpose | str legal_basis | bin policy_hash (0/32) |
 *   bin case_pseudonym (0/32) | str fields | bin envelope_digest (0/32) |
 *   bin receipt_digest (0/32) | u16 reason
 * Version 2 is version 1 followed by `str rule` (0..128 printable ASCII
 * bytes: the rule a refusal broke, e.g. "range:age_years", never a value)
 * and `str actor` (0..64: the local API client that caused the act, e.g.
 * "uid:1001"); it is written exactly when either is not empty, so every
 * entry still has one encoding.
 *
 * Signed tree head: Ed25519 over
 *   "ketenpost/v1/tree-head" (22 bytes) | u64 size | u64 time_ms |
 *   root (32) | own OIN (20 ASCII digits)
 *
 * Storage (the daemon's state_dir/ketenpost.db; read-only for the tools):
 *   audit(seq INTEGER PRIMARY KEY, entry BLOB, leaf BLOB)   seq = leaf index
 *   tree_heads(size INTEGER PRIMARY KEY, time_ms, root BLOB, signature BLOB)
 *   witness(partner_oin, size, time_ms, root, signature, received_ms)
 *   audit_meta(key TEXT PRIMARY KEY, value TEXT)  'oin', 'certificate' (PEM)
 */
#ifndef KP_AUDITLOG_H
#define KP_AUDITLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kperr.h"

#define AUDIT_ENTRY_VERSION 1   /* an entry without a rule or actor */
#define AUDIT_ENTRY_VERSION_RULE 2 /* version 1 + rule + actor */
#define AUDIT_RULE_MAX 128       /* bytes of printable ASCII */
#define AUDIT_ACTOR_MAX 64       /* bytes of printable ASCII */
#define AUDIT_ENTRY_MAX 2048
#define AUDIT_FIELDS_MAX 512

enum audit_kind {
	AUDIT_SEND = 1,             /* an event sealed and queued (out) */
	AUDIT_RECEIPT_SENT,         /* an event accepted; receipt sent (in) */
	AUDIT_RECEIPT_RECEIVED,     /* a partner's receipt settled one (out) */
	AUDIT_REFUSAL_IN,           /* an incoming envelope refused (in) */
	AUDIT_REFUSAL_OUT,          /* a send refused here by policy (out) */
	AUDIT_DEAD_LETTER,          /* a sent event expired unreceipted (out) */
	AUDIT_POLICY_LOAD,          /* the chain policy loaded or reloaded */
	AUDIT_CHAIN_LOAD,           /* keys, CA, CRL, partners (re)loaded */
	AUDIT_PURGE,                /* a payload destroyed: retention ended */
	AUDIT_HEAD_ALARM,           /* a partner's tree head is inconsistent */
	AUDIT_READ,                 /* payload content read over the API */
	AUDIT_API_REFUSED,          /* an API request refused: no role */
	AUDIT_KIND_MAX
};

enum audit_direction { AUDIT_NONE = 0, AUDIT_OUT = 1, AUDIT_IN = 2 };

typedef struct audit_entry {
	uint64_t seq;               /* leaf index, 0-based, contiguous */
	uint64_t time_ms;
	int kind;                   /* enum audit_kind */
	int direction;              /* enum audit_direction */
	char own_oin[21];
	char partner_oin[21];       /* "" if none */
	bool has_event_id;
	uint8_t event_id[16];
	int event_type;             /* Kp__EventType, 0 if none */
	char purpose[65];
	char legal_basis[65];
	bool has_policy_hash;
	uint8_t policy_hash[32];
	bool has_case_pseudonym;
	uint8_t case_pseudonym[32];
	char fields[AUDIT_FIELDS_MAX]; /* comma-separated field names */
	bool has_envelope_digest;
	uint8_t envelope_digest[32];
	bool has_receipt_digest;
	uint8_t receipt_digest[32];
	int reason;                 /* Kp__Reason, 0 none */
	char rule[AUDIT_RULE_MAX + 1]; /* refusals: the rule broken, or "" */
	char actor[AUDIT_ACTOR_MAX + 1]; /* the API client, or "" */
} audit_entry_t;

typedef struct audit_head {
	uint64_t size;
	uint64_t time_ms;
	uint8_t root[32];
	uint8_t signature[64];
} audit_head_t;

/* Canonical bytes of e into buf (AUDIT_ENTRY_MAX).  OUT: *len. */
int audit_entry_encode(const audit_entry_t *e, uint8_t *buf, size_t cap,
    size_t *len, kp_err_t *err) __attribute__((warn_unused_result));
/* Parse canonical bytes (exactly, no trailing bytes).  OUT: *e. */
int audit_entry_decode(const uint8_t *buf, size_t len, audit_entry_t *e,
    kp_err_t *err) __attribute__((warn_unused_result));

/* The signed bytes of a head for OIN (format above). OUT: buf (90 B). */
size_t audit_head_tbs(const audit_head_t *h, const char *oin, uint8_t buf[96]);
/* Sign h (size, time_ms, root set) with a libsodium Ed25519 secret key. */
int audit_head_sign(audit_head_t *h, const char *oin,
    const uint8_t sign_sk[64]);
/* 0 if h->signature is oin's over h, by sign_pk; -1 otherwise. */
int audit_head_verify(const audit_head_t *h, const char *oin,
    const uint8_t sign_pk[32]) __attribute__((warn_unused_result));

/* Names for JSON and reports: "send", "receipt_sent", ...; "out"/"in". */
const char *audit_kind_name(int kind);
int audit_kind_from_name(const char *name);
const char *audit_direction_name(int direction);

/* JSON lines (docs/AUDIT.md "Export format"). */
json_t *audit_entry_to_json(const audit_entry_t *e);
int audit_entry_from_json(const json_t *j, audit_entry_t *e, kp_err_t *err)
    __attribute__((warn_unused_result));
json_t *audit_head_to_json(const audit_head_t *h);
int audit_head_from_json(const json_t *j, audit_head_t *h, kp_err_t *err)
    __attribute__((warn_unused_result));

#endif
