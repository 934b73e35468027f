/*
 * store.h: the daemon's durable state, one SQLite database in WAL mode
 * (state_dir/ketenpost.db, synchronous=FULL, secure_delete=ON).
 *
 * Tables: outbox (events sent, with outbox_env: their sealed envelopes
 * until receipted, and outbox_receipts: the receipts), inbox (received
 * events, payload encrypted at rest by the caller, plus the receipt we
 * sent, which doubles as the seen-event-id table for duplicate
 * elimination), rejected (envelopes we refused and why), links (local case
 * reference <-> per-partner pseudonym; outbox and expectations rows find
 * their case by its links.id), expectations (answers awaited),
 * absence_after (the officer's local record per case), meta_partners (the
 * partners the store has rows of).
 *
 * Metadata at rest: a local case reference is never stored in the clear.
 * In outbox, inbox, links and expectations it is sealed per partner, a
 * value bound to the partner's OIN (store_seal.c: deterministic, so rows
 * are found by it, and decryptable, so the views show it); routes are
 * sealed with a random nonce; absence_after is keyed by a keyed hash of
 * the case.  Rows handed in and out carry the clear values: the sealing
 * happens in the statements.  A copy of the file without the key reveals
 * no case reference and links no two partners' pseudonyms of one case.
 *
 * Durability contract: nothing written between store_begin() and a
 * successful store_commit() may be acknowledged to anyone (API caller or
 * partner) before that commit returns; callers batch many events in one
 * transaction (one fsync per batch, see toolchain.md).  Every function
 * returns 0 / -1 and fills err; a failed write inside a transaction leaves
 * the transaction open for the caller to roll back.
 *
 * Blobs handed in are copied; blobs handed out through callbacks are valid
 * only during the callback.
 */
#ifndef KP_STORE_H
#define KP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kperr.h"

typedef struct store store_t;

#define STORE_FIELDS_MAX 512   /* comma-separated names of fields shared */
#define STORE_KEY_WRAP_LEN 72  /* a per-event key wrapped by atrest.c */

enum store_state {                /* = kp.DeliveryState */
	STORE_PENDING = 1,
	STORE_DELIVERED = 2,
	STORE_REJECTED = 3,
	STORE_DEAD = 4,
};

typedef struct outbox_row {
	uint64_t seq;                 /* assigned by insert, increasing */
	uint8_t event_id[16];
	int event_type;
	char to_oin[21];
	char case_local[65];          /* local case reference ("" if none) */
	uint8_t case_ref[32];         /* pseudonym sent */
	bool has_reply_to;
	uint8_t in_reply_to[16];
	int state;                    /* enum store_state */
	uint32_t attempts;
	uint64_t created_ms, expires_ms, next_attempt_ms, updated_ms;
	uint8_t envelope_digest[32];
	bool has_receipt;
	uint8_t receipt_digest[32];
	int reason;                   /* Kp__Reason of the receipt */
	uint64_t receipted_ms;
	char purpose[65], legal_basis[65];
	char fields[STORE_FIELDS_MAX];  /* names of the fields shared */
	uint64_t retention_until_ms;  /* then the payload is destroyed */
	bool has_event_key;           /* false once purged */
	uint8_t event_key[STORE_KEY_WRAP_LEN]; /* wrapped per-event key */
	int route;                    /* Kp__Route of a referral, else 0 */
	/* The send's idempotency key (insert only; not read back): unique
	 * per client, kept with the row (store_outbox_by_idem). */
	bool has_idem;
	char idem_client[65];
	char idem_key[129];
	uint8_t idem_hash[32];        /* of the request it was given with */
	/* The links.id of (to_oin, case_local) (insert only; not read back):
	 * store_link_ensure gives it, with the case_ref above; 0, or one that
	 * is not the link of that case_ref, and the store finds the case's
	 * link by case_local (making it if there is none).  The row's case is
	 * its pseudonym's: case_local and case_ref must be a pair
	 * store_link_ensure gave (store_int.h LINK_OF, CASE_SEALED_OF). */
	uint64_t link_id;
} outbox_row_t;

typedef struct inbox_row {
	uint64_t seq;                 /* assigned by insert, increasing */
	uint8_t event_id[16];
	int event_type;
	char from_oin[21];
	char case_local[65];          /* linked local case ("" if none) */
	uint8_t case_ref[32];         /* pseudonym received */
	bool has_reply_to;
	uint8_t in_reply_to[16];
	char purpose[65], legal_basis[65];
	uint64_t created_ms, received_ms;
	bool acked;
	uint8_t envelope_digest[32];
	uint8_t receipt_digest[32];
	char fields[STORE_FIELDS_MAX];  /* names of the fields received */
	uint64_t retention_until_ms;  /* then the payload is destroyed */
	bool has_event_key;           /* false once purged */
	uint8_t event_key[STORE_KEY_WRAP_LEN]; /* wrapped per-event key */
} inbox_row_t;

/* meta_key (32 bytes, atrest_meta_key_derive) seals case references and
 * routes at rest ("Metadata at rest" above); a database written under
 * another key opens, but reading a sealed value from it fails.
 * pseudonym_key (pseudonym_key(): the key pseudonym_for derives the
 * organisation's own case pseudonyms with) lets the store find the link
 * of an own case by its pseudonym (store_link_ensure); under another key
 * the links of the cases already sent are not found by their reference.
 * Both must stay the same for the life of the file (both derive from the
 * storage secret).  The store keeps copies; the caller wipes its own. */
int store_open(const char *state_dir, const uint8_t meta_key[32],
    const uint8_t pseudonym_key[32], store_t **out, kp_err_t *err)
    __attribute__((warn_unused_result));
void store_close(store_t **self_p);

int store_begin(store_t *s, kp_err_t *err) __attribute__((warn_unused_result));
int store_commit(store_t *s, kp_err_t *err) __attribute__((warn_unused_result));
void store_rollback(store_t *s);
/*
 * A transaction whose commit is not flushed to the disk: only for what a
 * power loss may undo because it comes back by itself (a receipt's
 * settlement: the event is sent again and the receiver answers with the
 * same receipt).  Its pages are written to the log at commit like any
 * other; the next flushed commit, or the next checkpoint, carries them to
 * the disk with its own (the log is one file, written in order).  A
 * process crash loses nothing: the pages are in the kernel by then.
 * Every other commit stays flushed: one that would begin while the
 * connection could not be set back is refused (the commit hook).
 */
int store_begin_unflushed(store_t *s, kp_err_t *err)
    __attribute__((warn_unused_result));

/* One request inside a batch: its writes can be undone on their own.
 * store_undo rolls back to the savepoint and releases it.  One level:
 * a savepoint while one is open is KP_ERR_INVALID_ARG. */
int store_savepoint(store_t *s, kp_err_t *err)
    __attribute__((warn_unused_result));
int store_release(store_t *s, kp_err_t *err)
    __attribute__((warn_unused_result));
int store_undo(store_t *s, kp_err_t *err) __attribute__((warn_unused_result));
/* Is a transaction open?  SQLite may roll one back by itself on a full
 * disk or an I/O error; then nothing more may be written in the batch. */
bool store_in_txn(store_t *s);
/* Rows written by the connection so far (inserted, updated, deleted):
 * whether a request without a savepoint has written anything yet. */
uint64_t store_changes(store_t *s);

/* ---- outbox ---- */

/* Insert a new pending row (state, updated_ms, seq and the receipt fields
 * are ignored; attempts and next_attempt_ms are the caller's schedule; seq
 * is returned in row->seq).  env is the envelope as the caller sealed it
 * at rest under the row's per-event key.  A duplicate event_id is
 * KP_ERR_INVALID_ARG. */
int store_outbox_insert(store_t *s, outbox_row_t *row, const uint8_t *env,
    size_t env_len, kp_err_t *err) __attribute__((warn_unused_result));

/* The event stored with idempotency key (client, key), if any: *found,
 * its event_id and the request hash stored with it. */
int store_outbox_by_idem(store_t *s, const char *client, const char *key,
    uint8_t event_id[16], uint8_t hash[32], bool *found, kp_err_t *err)
    __attribute__((warn_unused_result));

typedef int (*store_outbox_cb)(void *arg, const outbox_row_t *row,
    const uint8_t *env, size_t env_len);

/* A link's catch-up: the pending rows to partner `oin` with seq >
 * after_seq, in seq order, at most max, each with its envelope; the row
 * carries only what a send needs (seq, event_id, to_oin, state, attempts,
 * event_key), its other fields are zero; cb returning non-zero stops the
 * walk (not an error).  An index range: it reads only the rows it
 * returns. */
int store_outbox_after(store_t *s, const char *oin, uint64_t after_seq,
    size_t max, store_outbox_cb cb, void *arg, kp_err_t *err)
    __attribute__((warn_unused_result));

/* Record a resend that was made: attempts = attempts, next_attempt_ms =
 * next (pending rows only). */
int store_outbox_schedule(store_t *s, const uint8_t id[16], uint32_t attempts,
    uint64_t next_ms, kp_err_t *err) __attribute__((warn_unused_result));

/*
 * A verified receipt arrived for event `id` from `issuer_oin`.  Applies only
 * if the row exists, belongs to that partner, is still pending (or dead: a
 * receipt arriving just after expiry is still the truth), and its
 * envelope_digest equals `envelope_digest`; *applied says whether it did
 * (a second receipt for a settled event is not an error).  Stores the
 * receipt (bytes, reason, receipt_digest, receipted_ms = now) in
 * outbox_receipts, sets state (DELIVERED or REJECTED) and updated_ms =
 * now, and deletes the sealed envelope from outbox_env: it is never sent
 * again, and the partner now holds the data.
 * When it did and `settled` is not NULL, OUT: settled->event_type,
 * purpose, legal_basis and case_ref of the row (for the audit entry of
 * the receipt, without reading the row again); on -1 `settled` may be
 * partly written and means nothing.
 */
int store_outbox_settle(store_t *s, const uint8_t id[16], const char *issuer_oin,
    const uint8_t envelope_digest[32], int state, int reason,
    const uint8_t receipt_digest[32], const uint8_t *receipt, size_t rlen,
    uint64_t now, bool *applied, outbox_row_t *settled, kp_err_t *err)
    __attribute__((warn_unused_result));
/* store_outbox_settle with the row's seq as the caller read it (0: not
 * known), a hint that saves a look-up by event id; a hint that does not
 * name the event's row is ignored (the event id decides).  With a hint,
 * a pending row settles in one statement; a row not pending or not named
 * by the hint is looked up first, as store_outbox_settle does: the
 * outcome, the counts and `settled` are the same either way. */
int store_outbox_settle_seq(store_t *s, const uint8_t id[16],
    uint64_t seq_hint, const char *issuer_oin,
    const uint8_t envelope_digest[32], int state, int reason,
    const uint8_t receipt_digest[32], const uint8_t *receipt, size_t rlen,
    uint64_t now, bool *applied, outbox_row_t *settled, kp_err_t *err)
    __attribute__((warn_unused_result));

/* Pending rows with expires_ms <= now become DEAD; cb sees each (after the
 * update, state == STORE_DEAD). */
int store_outbox_expire(store_t *s, uint64_t now, store_outbox_cb cb, void *arg,
    kp_err_t *err) __attribute__((warn_unused_result));

/* The row of event id with its envelope, if it is still pending: cb is
 * called once, or not at all (flow control's resend of an event in
 * flight; the row carries what a send needs, as in store_outbox_after). */
int store_outbox_pending(store_t *s, const uint8_t id[16], store_outbox_cb cb,
    void *arg, kp_err_t *err) __attribute__((warn_unused_result));

int store_outbox_get(store_t *s, const uint8_t id[16], outbox_row_t *row,
    bool *found, kp_err_t *err) __attribute__((warn_unused_result));

/* Rows with seq > after_seq in seq order, at most limit (env is NULL). */
int store_outbox_list(store_t *s, uint64_t after_seq, size_t limit,
    store_outbox_cb cb, void *arg, kp_err_t *err)
    __attribute__((warn_unused_result));

/* The stored receipt of a settled row. OUT: *buf (malloc'd), *len. */
int store_outbox_receipt(store_t *s, const uint8_t id[16], uint8_t **buf,
    size_t *len, bool *found, kp_err_t *err) __attribute__((warn_unused_result));

/* counts[state] for state 1..4 (counts has 5 entries; [0] unused). */
int store_outbox_counts(store_t *s, uint64_t counts[5], kp_err_t *err)
    __attribute__((warn_unused_result));

/* ---- inbox ---- */

/*
 * Look up a received event: *found, and when found the row and the
 * receipt we sent for it (malloc'd into *receipt; NULL allowed to skip).
 */
int store_inbox_find(store_t *s, const uint8_t id[16], inbox_row_t *row,
    uint8_t **receipt, size_t *rlen, bool *found, kp_err_t *err)
    __attribute__((warn_unused_result));

/* Insert (seq returned in row->seq).  sealed_payload is the payload as the
 * caller encrypted it at rest under the row's per-event key; envelope is
 * the evidence kept for the audit (the envelope without its ciphertext:
 * header, ciphertext digest, signature or batch proof; no tree head);
 * receipt is the signed receipt
 * sent back.  Duplicate id: KP_ERR_INVALID_ARG. */
int store_inbox_insert(store_t *s, inbox_row_t *row,
    const uint8_t *sealed_payload, size_t plen, const uint8_t *envelope,
    size_t elen, const uint8_t *receipt, size_t rlen, kp_err_t *err)
    __attribute__((warn_unused_result));

typedef int (*store_inbox_cb)(void *arg, const inbox_row_t *row,
    const uint8_t *sealed_payload, size_t plen);

/* Rows with seq > after_seq in seq order, at most limit; unacked only
 * unless all. */
int store_inbox_list(store_t *s, bool all, uint64_t after_seq, size_t limit,
    store_inbox_cb cb, void *arg, kp_err_t *err)
    __attribute__((warn_unused_result));

/* One row with its sealed payload (malloc'd into *payload). */
int store_inbox_get(store_t *s, const uint8_t id[16], inbox_row_t *row,
    uint8_t **payload, size_t *plen, bool *found, kp_err_t *err)
    __attribute__((warn_unused_result));

/* Mark acknowledged; *newly is true if it was not acknowledged before.
 * An unknown id is KP_ERR_INVALID_ARG. */
int store_inbox_ack(store_t *s, const uint8_t id[16], bool *newly,
    kp_err_t *err) __attribute__((warn_unused_result));

int store_inbox_counts(store_t *s, uint64_t *unacked, uint64_t *total,
    kp_err_t *err) __attribute__((warn_unused_result));

/* ---- retention ---- */

typedef int (*store_purge_cb)(void *arg, const uint8_t id[16],
    const char *partner_oin, bool sent);

/*
 * Destroy the payloads whose retention ended (retention_until_ms <= now):
 * the wrapped per-event key becomes NULL, and the encrypted payload
 * (inbox) too, or the sealed envelope is deleted from outbox_env (outbox,
 * settled rows only, so dead ones: a settle deletes it; a pending row is
 * purged once it has expired); every other column stays for the audit.  With
 * secure_delete the freed bytes are zeroed in the database file, and a
 * WAL checkpoint afterwards (store_checkpoint) truncates the log that may
 * still hold old pages.  cb sees each purged event.  OUT: *n.
 */
int store_purge(store_t *s, uint64_t now, store_purge_cb cb, void *arg,
    size_t *n, kp_err_t *err) __attribute__((warn_unused_result));

/*
 * Metadata retention: rows whose metadata retention ended (created or
 * received at or before cutoff, payload already destroyed) are reduced to
 * what the audit needs — outbox and inbox rows lose their case reference,
 * pseudonym (zeroed), route, field names and idempotency key, and get
 * reduced_ms = now; event id, type, partner, purpose, legal basis, times,
 * state, reason and digests stay (and the inbox's evidence envelope and
 * receipt).  Expectations sent and absence records made at or before
 * cutoff are deleted, then every link no row with metadata still refers
 * to.  OUT: what changed.
 */
typedef struct store_reduced {
	uint64_t outbox, inbox, expectations, absence, links;
} store_reduced_t;

int store_meta_reduce(store_t *s, uint64_t cutoff, uint64_t now,
    store_reduced_t *r, kp_err_t *err) __attribute__((warn_unused_result));

/* A TRUNCATE checkpoint of the WAL, waiting at most wait_ms for readers.
 * OUT: *done, false while a reader pins old pages (they may still hold
 * destroyed keys: retry later). */
int store_checkpoint(store_t *s, int wait_ms, bool *done, kp_err_t *err)
    __attribute__((warn_unused_result));

/* A PASSIVE checkpoint when nothing else is waiting (main loop, idle):
 * copies what the WAL holds into the database without blocking; never
 * inside a transaction.  Returns the frames left, or -1. */
int store_checkpoint_idle(store_t *s);

/* ---- subject access: everything about one local case ---- */

typedef struct subject_row {
	uint8_t event_id[16];
	bool sent;                    /* outbox (true) or inbox (false) */
	char partner_oin[21];
	int event_type;
	char purpose[65], legal_basis[65];
	char fields[STORE_FIELDS_MAX];
	uint64_t at_ms;               /* created (sent) or received */
	int state;                    /* sent: enum store_state; else 0 */
	int reason;
	uint64_t retention_until_ms;
	bool destroyed;               /* payload purged */
	bool has_reply_to;
	uint8_t in_reply_to[16];
	uint64_t settled_ms;          /* sent: when state was last set (a
	                               * receipt or expiry); received: at_ms */
} subject_row_t;

typedef int (*store_subject_cb)(void *arg, const subject_row_t *row);

/* Every event sent or received about local case `local`, oldest first. */
int store_subject(store_t *s, const char *local, store_subject_cb cb,
    void *arg, kp_err_t *err) __attribute__((warn_unused_result));

/* ---- audit log (lib/auditlog.h: format; docs/AUDIT.md) ---- */

/* Append entry `seq` (must be the next leaf index) with its leaf hash.
 * Inside the caller's transaction: the entry and the act it records are
 * committed together or not at all (fail-closed). */
int store_audit_append(store_t *s, uint64_t seq, const uint8_t *entry,
    size_t len, const uint8_t leaf[32], kp_err_t *err)
    __attribute__((warn_unused_result));
/* Every entry (bytes as stored) with its stored leaf hash, in seq order;
 * cb non-zero is an error (gap found).  entry may be NULL if len is 0. */
int store_audit_entries(store_t *s, int (*cb)(void *arg, uint64_t seq,
    const uint8_t *entry, size_t len, const uint8_t leaf[32]), void *arg,
    kp_err_t *err) __attribute__((warn_unused_result));
/* Entries [lo, lo + n) as store_audit_entries gives them; all n must
 * exist (else -1: a gap or a short log). */
int store_audit_range(store_t *s, uint64_t lo, uint64_t n,
    int (*cb)(void *arg, uint64_t seq, const uint8_t *entry, size_t len,
    const uint8_t leaf[32]), void *arg, kp_err_t *err)
    __attribute__((warn_unused_result));
/* audit_nodes: the hash of the perfect subtree of the log's Merkle tree of
 * `height` over leaves [idx << height, (idx + 1) << height)
 * (daemon/audittree.c).  put replaces; get: *found false if absent, and
 * a stored hash of another length than 32 (damage) reads as all zero. */
int store_audit_node_put(store_t *s, unsigned height, uint64_t idx,
    const uint8_t hash[32], kp_err_t *err)
    __attribute__((warn_unused_result));
int store_audit_node_get(store_t *s, unsigned height, uint64_t idx,
    uint8_t hash[32], bool *found, kp_err_t *err)
    __attribute__((warn_unused_result));
/* Nodes that do not lie within a log of `size` entries: count / drop. */
int store_audit_nodes_beyond(store_t *s, uint64_t size, uint64_t *n,
    kp_err_t *err) __attribute__((warn_unused_result));
int store_audit_nodes_drop_beyond(store_t *s, uint64_t size, kp_err_t *err)
    __attribute__((warn_unused_result));
/* Own signed tree heads. */
int store_head_put(store_t *s, uint64_t size, uint64_t time_ms,
    const uint8_t root[32], const uint8_t sig[64], kp_err_t *err)
    __attribute__((warn_unused_result));
int store_head_last(store_t *s, uint64_t *size, uint64_t *time_ms,
    uint8_t root[32], uint8_t sig[64], bool *found, kp_err_t *err)
    __attribute__((warn_unused_result));
/* Partners' signed tree heads, as witnessed (verified by the caller). */
int store_witness_put(store_t *s, const char *oin, uint64_t size,
    uint64_t time_ms, const uint8_t root[32], const uint8_t sig[64],
    uint64_t now, kp_err_t *err) __attribute__((warn_unused_result));
int store_witness_last(store_t *s, const char *oin, uint64_t *size,
    uint64_t *time_ms, uint8_t root[32], uint8_t sig[64], bool *found,
    kp_err_t *err) __attribute__((warn_unused_result));
/* audit_meta: 'oin', 'certificate' (PEM) for the offline tools. */
int store_meta_put(store_t *s, const char *key, const char *value,
    kp_err_t *err) __attribute__((warn_unused_result));

/* ---- expectations: answers the officer is waiting for ---- */

typedef struct expect_row {
	uint8_t event_id[16];         /* the event that expects an answer */
	char case_local[65];
	char partner_oin[21];
	uint8_t case_ref[32];         /* pseudonym shared with the partner */
	int sent_type, answer_type;   /* Kp__EventType */
	int route;                    /* Kp__Route, 0 if none */
	uint64_t sent_ms, due_ms;
	bool answered;
	uint8_t answered_by[16];
	uint64_t answered_ms;
	uint32_t reminders;
	bool interim;                 /* an interim answer (a phase) came */
	uint8_t interim_by[16];       /* the latest interim answer */
	uint64_t interim_ms;          /* when it came; due_ms is then the
	                               * final answer's due time */
	uint64_t first_due_ms;        /* due before any interim answer */
	uint64_t link_id;             /* put only: as outbox_row_t's */
} expect_row_t;

typedef int (*store_expect_cb)(void *arg, const expect_row_t *row);

int store_expect_put(store_t *s, const expect_row_t *row, kp_err_t *err)
    __attribute__((warn_unused_result));
/*
 * An answer arrived from `partner` of type `answer_type`: close the open
 * expectation it answers — the one named by in_reply_to if given and
 * matching, else the oldest open one on the same pseudonym.  OUT: *found
 * and the expectation as it was (row).
 */
int store_expect_answer(store_t *s, const char *partner, int answer_type,
    const uint8_t *in_reply_to, const uint8_t case_ref[32],
    const uint8_t answered_by[16], uint64_t at, expect_row_t *row,
    bool *found, kp_err_t *err) __attribute__((warn_unused_result));
/*
 * An interim answer (a phase, policy interim.FIELD) from `partner`: the
 * expectation it is about (found as by store_expect_answer) stays open,
 * records interim_by and `at`, and is now due at new_due_ms (reported
 * overdue afresh).  OUT: *found, row as it was.
 */
int store_expect_interim(store_t *s, const char *partner, int answer_type,
    const uint8_t *in_reply_to, const uint8_t case_ref[32],
    const uint8_t interim_by[16], uint64_t at, uint64_t new_due_ms,
    expect_row_t *row, bool *found, kp_err_t *err)
    __attribute__((warn_unused_result));
/* Open expectations that fell due at or before now and were not yet
 * reported; each is marked reported.  cb sees each. */
int store_expect_newly_overdue(store_t *s, uint64_t now, store_expect_cb cb,
    void *arg, kp_err_t *err) __attribute__((warn_unused_result));
/* Expectations of one case (case_local), or all (case_local NULL). */
int store_expect_list(store_t *s, const char *case_local, store_expect_cb cb,
    void *arg, kp_err_t *err) __attribute__((warn_unused_result));
/* Open expectations due at or before now, in due order, by the partial
 * index of open ones: memory and work independent of the history.  The
 * rows carry no case reference ("") and no route (0). */
int store_expect_open_due(store_t *s, uint64_t now, store_expect_cb cb,
    void *arg, kp_err_t *err) __attribute__((warn_unused_result));
/* Expectations sent in [from, to), in no set order (no sort: memory
 * independent of the history; the walk is linear in it). */
int store_expect_period(store_t *s, uint64_t from, uint64_t to,
    store_expect_cb cb, void *arg, kp_err_t *err)
    __attribute__((warn_unused_result));
/* Every expectation that may have been open as of `at` and due by
 * `horizon` (a superset: the caller checks each as of `at`), in no set
 * order, by indexes: the open ones due by horizon, those answered or
 * given an interim answer after `at`. */
int store_expect_todo(store_t *s, uint64_t at, uint64_t horizon,
    store_expect_cb cb, void *arg, kp_err_t *err)
    __attribute__((warn_unused_result));
/* The events of type `type` (a reminder) sent by `at` in reply to
 * expectation event_id, to its partner on its case: cb gets each one's
 * time and stored field names. */
int store_reminders(store_t *s, const uint8_t event_id[16], int type,
    uint64_t at, int (*cb)(void *arg, uint64_t at_ms, const char *fields), void *arg,
    kp_err_t *err) __attribute__((warn_unused_result));
int store_expect_reminded(store_t *s, const uint8_t event_id[16],
    kp_err_t *err) __attribute__((warn_unused_result));
/* Every local case with events at or before `at` (UINT64_MAX: all): name,
 * count and last activity of those events only, one row per partner and
 * per table (a case's sent and received events with one partner are two
 * rows; the caller sums them), in no set order. */
int store_cases(store_t *s, uint64_t at, int (*cb)(void *arg,
    const char *case_local, uint32_t events, uint64_t last_ms), void *arg,
    kp_err_t *err)
    __attribute__((warn_unused_result));

/* ---- the officer's record of the absence after the route (local) ---- */

/* absence: 1 stopped, 2 reduced, 3 continued (kp.AbsenceAfter); the
 * latest record per case replaces the one before. */
int store_absence_put(store_t *s, const char *case_local, int absence,
    uint64_t at, kp_err_t *err) __attribute__((warn_unused_result));
int store_absence_get(store_t *s, const char *case_local, int *absence,
    uint64_t *at, bool *found, kp_err_t *err)
    __attribute__((warn_unused_result));

/* ---- refusals (envelopes we rejected) ---- */

int store_reject_insert(store_t *s, const char *from_oin, const uint8_t *event_id,
    const uint8_t envelope_digest[32], int reason, uint64_t now,
    kp_err_t *err) __attribute__((warn_unused_result));

/* ---- seals made ahead, off the loop ---- */

/*
 * The sealed case reference and route of one send (store_seal.c), made
 * before its store phase on the API worker and handed to the store's
 * memo on the loop just before the statements that seal them, which then
 * find them made: the loop seals nothing of a send prepared ahead.
 * store_seals_make reads only the store's metadata keys, which do not
 * change while the store is open (the loop settles the pass in hand
 * before it closes or reopens the store).  The memo of kp_case_seal and
 * kp_route_seal has this form too; store_seal.c owns its layout.  It
 * holds the clear reference and route: wipe it (sodium_memzero).
 */
typedef struct store_seals {
	uint8_t in[161];               /* kp_case_seal's input; inlen 0: none */
	size_t inlen;
	uint8_t out[96];
	size_t outlen;
	uint8_t route_in[16 + 4];      /* kp_route_seal's event id, i32be */
	bool has_route;
	uint8_t route_out[44];
	char pseud_partner[21];        /* our pseudonym of the case for the */
	char pseud_local[65];          /* partner; pseud_local "": none */
	uint8_t pseud[32];
} store_seals_t;

/* The seals of case reference local ("": none) with partner_oin and of
 * route (0: none) of event_id, and our pseudonym of the case for the
 * partner (store_link_ensure's).  Thread-safe against the loop's use of s
 * (above). */
int store_seals_make(const store_t *s, const char *partner_oin,
    const char *local, const uint8_t event_id[16], int32_t route,
    store_seals_t *out) __attribute__((warn_unused_result));
/* On the loop: the memo takes what m holds. */
void store_seals_use(store_t *s, const store_seals_t *m);

/* ---- case links: local reference <-> pseudonym, per partner ---- */

int store_link_by_local(store_t *s, const char *partner_oin, const char *local,
    uint8_t case_ref[32], bool *found, kp_err_t *err)
    __attribute__((warn_unused_result));
int store_link_by_ref(store_t *s, const char *partner_oin,
    const uint8_t case_ref[32], char local[65], bool *found, kp_err_t *err)
    __attribute__((warn_unused_result));
/* File every received event from partner_oin on case_ref that is on no
 * case yet under `local` (after store_link_put).  OUT: *n filed. */
int store_link_file(store_t *s, const char *partner_oin,
    const uint8_t case_ref[32], const char *local, uint32_t *n,
    kp_err_t *err) __attribute__((warn_unused_result));
/* Insert or keep (an existing identical link is not an error; a conflicting
 * one is KP_ERR_INVALID_ARG). */
int store_link_put(store_t *s, const char *partner_oin, const char *local,
    const uint8_t case_ref[32], kp_err_t *err)
    __attribute__((warn_unused_result));
/* The link of (partner_oin, local): the existing one, else a new one with
 * pseudonym `candidate` (a candidate linked to another local is
 * KP_ERR_INVALID_ARG).  OUT: case_ref (its pseudonym), *link_id (its
 * links.id, for outbox_row_t and expect_row_t).  A candidate that is our
 * own pseudonym of the case (pseudonym_for: a new case of ours) makes an
 * own link, found later through that pseudonym; another (the partner's)
 * a filed one (store_cases.c).  A new own case costs the insert and a
 * look-up in the index of filed links (small in a file made since schema
 * version 7; an upgraded file keeps every older link there). */
int store_link_ensure(store_t *s, const char *partner_oin, const char *local,
    const uint8_t candidate[32], uint8_t case_ref[32], uint64_t *link_id,
    kp_err_t *err) __attribute__((warn_unused_result));

#endif
