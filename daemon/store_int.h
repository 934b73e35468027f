/*
 * store_int.h: what the store_*.c files share and nobody else sees.
 *
 * The store is one SQLite connection (store.c owns it: open, pragmas,
 * transactions) whose SQL is split by concern: store_schema.c (tables and
 * versions), store_outbox.c, store_inbox.c, store_cases.c (links,
 * expectations, subject access), store_audit.c, store_retention.c (purge,
 * checkpoint, metadata retention); store_seal.c seals case references and
 * routes at rest as SQL functions the statements call; store_ckpt.c runs
 * the WAL checkpoints on a thread with a connection of its own.  Each of
 * those files owns its statements: it lists their SQL in its own sparse array
 * indexed by the ST_ ids below, and store_open
 * prepares all of them once (a slot with no SQL, or with SQL in two files,
 * stops the open: a programming error caught by every test).
 *
 * Statements are reset and their bindings cleared before the function using
 * them returns, so no read transaction outlives a call.  Callbacks run while
 * their statement is stepping: they may call other store functions, but not
 * the one that is calling them.  Updating a row that a walk is visiting is
 * safe; whether the walk sees it again is not defined (schedule past `now`,
 * or collect first).
 *
 * Integers: SQLite keeps signed 64 bits.  A u64 above INT64_MAX (UINT64_MAX
 * as "never") is stored as INT64_MAX and read back as UINT64_MAX
 * (sq_bind_u64, sq_col_u64).
 */
#ifndef KP_STORE_INT_H
#define KP_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"
#include "util.h"     /* KP_OIN_LEN */

#define STORE_BUSY_MS 5000

enum {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_UNDO,
	ST_OB_INSERT, ST_OB_DUE, ST_OB_SCHEDULE,
	ST_OB_SETTLE_FIND, ST_OB_SETTLE, ST_OB_EXPIRE, ST_OB_GET, ST_OB_LIST,
	ST_OB_RECEIPT,
	ST_IN_FIND, ST_IN_INSERT, ST_IN_LIST_ALL, ST_IN_LIST_UNACKED, ST_IN_GET,
	ST_IN_ACK, ST_IN_EXISTS,
	ST_REJ_INSERT,
	ST_LINK_BY_LOCAL, ST_LINK_BY_REF, ST_LINK_INSERT, ST_LINK_BY_PSEUDONYM,
	ST_OB_PURGE, ST_IN_PURGE, ST_SUBJECT,
	ST_AUDIT_APPEND, ST_HEAD_PUT, ST_HEAD_LAST,
	ST_WITNESS_PUT, ST_WITNESS_LAST, ST_META_PUT,
	ST_EXP_PUT, ST_EXP_BY_REPLY, ST_EXP_BY_REF, ST_EXP_CLOSE,
	ST_EXP_OVERDUE, ST_EXP_BY_CASE, ST_EXP_ALL, ST_EXP_REMINDED, ST_CASES,
	ST_OB_BY_IDEM,
	ST_EXP_INTERIM, ST_LINK_FILE, ST_ABS_PUT, ST_ABS_GET,
	ST_OB_PENDING,
	ST_PARTNER_SEEN, ST_REDUCE_OB, ST_REDUCE_IN, ST_REDUCE_EXP,
	ST_REDUCE_ABS, ST_REDUCE_LINKS,
	ST_AUDIT_NODE_PUT, ST_AUDIT_NODE_GET, ST_AUDIT_RANGE,
	ST_EXP_OPEN_DUE, ST_EXP_PERIOD, ST_EXP_TODO, ST_REMINDERS,
	ST_OB_SETTLE_SEQ, ST_OB_SETTLE_ONE,
	ST_OB_ENV_PUT, ST_OB_ENV_DROP, ST_OB_RCPT_PUT, ST_OB_PURGE_ENV,
	ST_COUNT
};

/* WAL checkpoints (store_ckpt.c), in bytes of pages: from
 * STORE_WAL_SOFT on the thread copies the log, then the last frames (at
 * most STORE_WAL_TAIL; the main thread only if the thread never caught
 * up) so the next transaction restarts the log, and past STORE_WAL_HARD
 * (the log's bound) the main thread all that is left.  A file
 * keeps the page size it was made with (store.c, STORE_PAGE_SIZE), so the
 * bounds in pages follow from its own. */
#define STORE_WAL_SOFT (32 * 1024 * 1024)
#define STORE_WAL_TAIL (4 * 1024 * 1024)
#define STORE_WAL_HARD (64 * 1024 * 1024)

typedef struct store_ckpt store_ckpt_t;
typedef struct store_ckpt_stats {
	uint64_t passes;   /* checkpoints the thread ran */
	uint64_t failed;   /* of which busy or failed (asked again) */
	uint64_t tails;    /* the main thread's copies of a cycle's last frames */
	uint64_t bounds;   /* the main thread's copies at the bound */
	uint64_t restarts; /* cycles ended: the log started afresh */
	uint64_t tail_asks; /* passes asked for a cycle's last frames */
	bool running;      /* a pass in progress now */
	bool asked;        /* a pass asked for, not started yet */
} store_ckpt_stats_t;

/* Open the thread's connection to path and start it; destroy stops it
 * after the pass in progress, joins it and closes its connection. */
int store_ckpt_new(const char *path, int page_size, store_ckpt_t **out,
    kp_err_t *err);
void store_ckpt_destroy(store_ckpt_t **c);
/* Main thread, from the WAL hook after each commit with the log at
 * `pages`: ask the thread for a pass, or copy a cycle's last frames, or
 * all that is left at the bound (store_ckpt.c says when).  Nothing with
 * c NULL. */
void store_ckpt_commit(store_ckpt_t *c, sqlite3 *main_db, int pages);
/* Main thread, around a checkpoint of its own on the main connection:
 * wait for the pass in progress to end and start none until release
 * (two checkpoints never run at once; one would fail busy); holds nest.
 * Nothing with c NULL (before the thread starts). */
void store_ckpt_hold(store_ckpt_t *c);
void store_ckpt_release(store_ckpt_t *c);
void store_ckpt_stats(store_ckpt_t *c, store_ckpt_stats_t *st);

#define STORE_PARTNERS_MEMO 16    /* partners sq_partner_seen remembers */

/* The counts store_counts.c keeps: the outbox's per state (indexes
 * STORE_PENDING..STORE_DEAD), then the inbox's. */
enum { SC_IN_UNACKED = STORE_DEAD + 1, SC_IN_TOTAL, SC_N };

struct store_counts {
	uint64_t kept[SC_N];              /* committed */
	int64_t txn[SC_N];                /* the open transaction's, ... */
	int64_t item[SC_N];               /* ... of it, its savepoint's */
	bool in_item;                     /* a savepoint is open */
};

struct store {
	sqlite3 *db;                      /* the main connection */
	store_ckpt_t *ckpt;               /* the checkpoint thread */
	char path[4096];                  /* state_dir/ketenpost.db */
	int page_size;                    /* the file's, from s_configure */
	sqlite3_stmt *st[ST_COUNT];       /* prepared in store_open */
	uint8_t *meta_keys;               /* sodium_malloc: store_seal.c */
	store_seals_t *case_memo;         /* sodium_malloc: store_seal.c */
	struct store_counts counts;       /* store_counts.c */
	uint8_t inbox_top[16];            /* store_inbox.c: no inbox event */
	bool inbox_top_known;             /* ... id is above it, once known */
	/* store_cases.c: partners known to be in meta_partners, committed,
	 * and those the open transaction put there (moved at its commit,
	 * dropped at a rollback or an undo), so sq_partner_seen runs its
	 * statement once per partner instead of once per row */
	char partners_known[STORE_PARTNERS_MEMO][KP_OIN_LEN + 1];
	char partners_txn[STORE_PARTNERS_MEMO][KP_OIN_LEN + 1];
	unsigned n_partners_known, n_partners_txn;
	/* store.c: the open transaction is store_begin_unflushed's, and
	 * the connection's synchronous is NORMAL (not yet FULL again) */
	bool unflushed_txn, sync_normal;
	bool committing;                  /* store_commit's COMMIT runs */
	/* store_outbox.c: where kp_settle_note puts the audit fields of the
	 * row a settle changes (NULL: not wanted), and how often it ran */
	outbox_row_t *settle_note;
	unsigned settle_noted;
};

/* The SQL of each file's statements (NULL where another file owns it). */
extern const char *const store_core_sql[ST_COUNT];
extern const char *const store_outbox_sql[ST_COUNT];
extern const char *const store_inbox_sql[ST_COUNT];
extern const char *const store_cases_sql[ST_COUNT];
extern const char *const store_audit_sql[ST_COUNT];
extern const char *const store_retention_sql[ST_COUNT];

/* The metadata keys and the SQL functions that seal and open case
 * references and routes (store_seal.c), registered before the schema is
 * migrated or any statement prepared; freed (wiped) by store_close. */
int sq_seal_register(store_t *s, const uint8_t meta_key[32],
    const uint8_t pseudonym_key[32], kp_err_t *err);
/* This organisation's own pseudonym of case `local` for partner_oin
 * (pseudonym.h, under store_open's pseudonym key). OUT: out. */
int sq_case_pseudonym(store_t *s, const char *partner_oin, const char *local,
    uint8_t out[32], kp_err_t *err);
void sq_seal_free(store_t *s);
/* Wipe kp_case_seal's memo of its last input (at commit and rollback). */
void sq_seal_forget(store_t *s);
/* kp_settle_note, the settle's SQL function (store_outbox.c), registered
 * with the seal's before any statement is prepared. */
int sq_outbox_register(store_t *s, kp_err_t *err);

/* Record that partner oin has rows (meta_partners: the partners a lookup
 * by case reference computes a sealed value for). */
int sq_partner_seen(store_t *s, const char *oin, kp_err_t *err);
/* At a commit: the transaction's partners are known from now on; at a
 * begin, rollback or undo: forget them (store.c). */
void sq_partners_commit(store_t *s);
void sq_partners_forget(store_t *s);

/* The link id an outbox or expectations row of case `local` with partner
 * partner_oin is inserted with: *link_id as given if not 0 (the insert
 * checks it, store_cases.c LINK_OF), none for no case, else the case's
 * link, made with pseudonym case_ref if there is none (store_cases.c). */
int sq_link_of(store_t *s, const char *partner_oin, const char *local,
    const uint8_t case_ref[32], uint64_t *link_id, kp_err_t *err);
/* The link_id value of such an insert, in SQL, with the partner in ?3:
 * the id the caller gave (parameter `hint`) if it is the link of the
 * row's pseudonym (parameter `ref`) with that partner (a look-up by
 * rowid: the recent links' pages are in the cache), else the link of the
 * case (parameter `local`) found by its reference, as store_link_by_local
 * does (a filed one by links_filed, an own one by its pseudonym through
 * links_pseudonym, on its first 8 bytes: schema version 8); NULL if
 * none, and for no case.  The row never refers to another case's link,
 * given what every caller passes: the pseudonym store_link_ensure gave
 * for the case, which names that case alone (invariant 7,
 * store_cases.c). */
#define LINK_OF(hint, ref, local) "CASE WHEN " local " = '' THEN NULL " \
	"ELSE coalesce((SELECT id FROM links WHERE id = " hint " AND " \
	"partner_oin = ?3 AND case_ref = " ref "), (SELECT id FROM links " \
	"WHERE partner_oin = ?3 AND own = 0 AND local_sealed = " \
	"kp_case_seal(?3, " local ")), (SELECT id FROM links WHERE " \
	"substr(case_ref, 1, 8) = substr(kp_case_pseudonym(?3, " local \
	"), 1, 8) AND partner_oin = ?3 AND own = 1 AND case_ref = " \
	"kp_case_pseudonym(?3, " local "))) END"
/* The case_sealed value of such an insert: the sealed reference of the
 * link the hint names (as LINK_OF accepts it: the same function of
 * partner and reference), else sealed here ('' for no case).  Copying it
 * saves sealing the case again: an API pass stores its outbox rows after
 * all its links, so kp_case_seal's memo of the last case has moved on
 * (one BLAKE2b and one XChaCha20-Poly1305 per row, 3% of the sender). */
#define CASE_SEALED_OF(hint, ref, local) "CASE WHEN " local " = '' THEN " \
	"'' ELSE coalesce((SELECT local_sealed FROM links WHERE id = " hint \
	" AND partner_oin = ?3 AND case_ref = " ref "), kp_case_seal(?3, " \
	local ")) END"

/* The outbox and inbox counts (store_counts.c): counted from the rows once
 * the schema is migrated; then sq_count(which, delta) by the functions
 * that change them, once their statement succeeded, and the hooks by
 * store.c's transaction functions once theirs did. */
int sq_counts_open(store_t *s, kp_err_t *err);
void sq_count(store_t *s, int which, int64_t delta);
void sq_counts_begin(store_t *s);
void sq_counts_commit(store_t *s);
void sq_counts_rollback(store_t *s);
/* fresh: no transaction was open, the savepoint begins one */
void sq_counts_savepoint(store_t *s, bool fresh);
void sq_counts_release(store_t *s);
void sq_counts_undo(store_t *s);

/* Create or migrate the schema (store_schema.c). */
int sq_migrate(store_t *s, kp_err_t *err);
/* The SQL of the step to schema `version` (1 creates), NULL if none: the
 * tests make a database of an older version with it. */
const char *sq_schema_step(int version);
#define STORE_APP_ID 0x6b707374          /* "kpst" */

/* Errors: KP_ERR_IO with SQLite's message; sq_open_fail names the file and
 * gives a foreign or damaged file one clear text. */
int sq_fail(store_t *s, kp_err_t *err, const char *what);
int sq_open_fail(store_t *s, kp_err_t *err, const char *what);
bool sq_is_dup(store_t *s);

/* Reset a statement after use (its step error was reported already). */
void sq_done(sqlite3_stmt *st);

/* Binding: a u64 clamped to INT64_MAX; a blob (NULL when p is NULL and n is
 * 0); text of at most cap - 1 bytes (the size of the row's char array). */
int sq_bind_u64(sqlite3_stmt *st, int i, uint64_t v);
int sq_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n);
int sq_bind_text(sqlite3_stmt *st, int i, const char *t, size_t cap);

/* Columns: INT64_MAX reads as UINT64_MAX; text truncated to cap - 1; a
 * fixed-size blob (false and zeros for NULL); a malloc'd copy of a blob. */
uint64_t sq_col_u64(sqlite3_stmt *st, int i);
void sq_col_text(sqlite3_stmt *st, int i, char *dst, size_t cap);
/* t of n bytes (NULL: none) into dst, cut to cap - 1 and terminated. */
void sq_copy_text(const unsigned char *t, size_t n, char *dst, size_t cap);
bool sq_col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t n);
int sq_col_dup(sqlite3_stmt *st, int i, uint8_t **buf, size_t *len,
    kp_err_t *err);

/* Stepping: no rows expected (not reset); at most one row (*found); a
 * prepared statement run to completion and reset; an INSERT of event id
 * into table (a duplicate id is KP_ERR_INVALID_ARG; OUT: *seq). */
int sq_step_done(store_t *s, sqlite3_stmt *st, const char *what,
    kp_err_t *err);
int sq_step_one(store_t *s, sqlite3_stmt *st, const char *what, bool *found,
    kp_err_t *err);
/* A statement of no rows run and reset, ?1 = v, ?2.. bound by the caller
 * (rc: their bind results). */
int sq_run_u64(store_t *s, sqlite3_stmt *st, uint64_t v, int rc,
    const char *what, kp_err_t *err);
int sq_exec_st(store_t *s, int which, const char *what, kp_err_t *err);
int sq_step_insert(store_t *s, sqlite3_stmt *st, const uint8_t id[16],
    const char *table, uint64_t *seq, kp_err_t *err);

/* One-off queries (at open): the first column of the first row. */
int sq_query_int(store_t *s, const char *sql, sqlite3_int64 *v,
    kp_err_t *err);
int sq_query_text(store_t *s, const char *sql, char *buf, size_t len,
    kp_err_t *err);

/* A LIMIT from a size_t. */
sqlite3_int64 sq_limit(size_t n);

#endif
