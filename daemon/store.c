/*
 * store.c: the daemon's durable state in one SQLite database (see store.h).
 *
 * Owns the sqlite3 connection to state_dir/ketenpost.db and every prepared
 * statement on it.  It never interprets payloads (the caller seals them
 * before they arrive), never logs and never acknowledges anything: when
 * data is durable is the caller's business (store_begin / store_commit,
 * store.h "Durability contract").  One thread at a time per store_t (the
 * connection is opened SQLITE_OPEN_NOMUTEX).
 *
 * Invariants:
 *  1. An outbox row is born PENDING in store_outbox_insert (attempts and
 *     next_attempt_ms as the caller scheduled the first send,
 *     updated_ms = created_ms, no receipt).  seq is an AUTOINCREMENT rowid:
 *     it only grows and is never reused.
 *  2. PENDING -> DELIVERED | REJECTED only in store_outbox_settle, and only
 *     when to_oin equals the receipt's issuer and envelope_digest matches;
 *     receipt bytes, receipt_digest, reason, receipted_ms and updated_ms are
 *     written by that same UPDATE.
 *  3. PENDING -> DEAD only in store_outbox_expire, when expires_ms <= now;
 *     DEAD -> DELIVERED | REJECTED on a late verified receipt (2).
 *  4. store_outbox_schedule and store_outbox_wake change only attempts and
 *     next_attempt_ms, and only of PENDING rows (wake sets next_attempt_ms
 *     to 0, "due at any now", so woken rows go first, in seq order).
 *  5. Nothing else changes a settled (DELIVERED, REJECTED, DEAD) row, and no
 *     row of any table is deleted here.  Every UPDATE of the outbox carries
 *     "state = 1" in its WHERE clause, so a late race (a schedule after a
 *     receipt) loses quietly instead of rewriting history — except
 *     store_outbox_settle, which also settles a DEAD row: a verified
 *     receipt that arrives just after expiry proves delivery, and the log
 *     must say so.
 *  6. An inbox row is written once by store_inbox_insert; the only later
 *     changes are acked false -> true in store_inbox_ack, and case_local
 *     "" -> the local reference of a link made later (store_link_file).  event_id is UNIQUE:
 *     the table doubles as the seen-event set.
 *  7. A link never changes once written; per partner, local <-> case_ref is
 *     one-to-one (two UNIQUE constraints; store_link_put).
 *  8. Statements are prepared once, in store_open; each is reset and its
 *     bindings cleared before the function using it returns, so no read
 *     transaction outlives a call.  Callbacks run while their statement is
 *     stepping: they may call other store functions, but not the one that
 *     is calling them.  Updating a row that store_outbox_due is walking is
 *     safe; whether the walk sees it again is not defined (schedule past
 *     `now`, or collect first).
 *
 * Integers: SQLite keeps signed 64 bits.  A u64 above INT64_MAX (UINT64_MAX
 * as "never") is stored as INT64_MAX and read back as UINT64_MAX.
 *
 * Why user_version and application_id: user_version (STORE_SCHEMA_VERSION)
 * lets a later version migrate and makes an older one refuse a newer file;
 * application_id marks the file as ours, so a stray SQLite file is refused
 * rather than having our tables added to it.  Why quick_check only on small
 * files: it reads every page; for a big database it would delay start-up by
 * seconds, and SQLite still reports SQLITE_CORRUPT on any page it reads.
 *
 * store_outbox_expire passes env = NULL to its callback: it uses UPDATE ...
 * RETURNING, which buffers every returned row, and after a long outage that
 * could be many envelopes for a callback that only needs the row.  All
 * changes happen in the first step, so a callback that stops the walk does
 * not stop the expiry.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "util.h"

#define STORE_SCHEMA_VERSION 3
#define STORE_APP_ID 0x6b707374          /* "kpst" */
#define STORE_QUICK_CHECK_PAGES 4096     /* quick_check at open up to this */
#define STORE_BUSY_MS 5000
/* WAL pages before a checkpoint in the hot path (SQLite's default is
 * 1000): a page written again before the checkpoint is copied to the
 * database once, and the loop checkpoints when idle (store_checkpoint_idle)
 * so a busy moment rarely pays for one.  32 MiB of log at most. */
#define STORE_WAL_AUTOCHECKPOINT 8192

enum {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_UNDO,
	ST_OB_INSERT, ST_OB_DUE, ST_OB_NEXT_DUE, ST_OB_SCHEDULE, ST_OB_WAKE,
	ST_OB_SETTLE, ST_OB_EXPIRE, ST_OB_GET, ST_OB_LIST, ST_OB_RECEIPT,
	ST_OB_COUNTS,
	ST_IN_FIND, ST_IN_INSERT, ST_IN_LIST_ALL, ST_IN_LIST_UNACKED, ST_IN_GET,
	ST_IN_ACK, ST_IN_EXISTS, ST_IN_COUNTS,
	ST_REJ_INSERT,
	ST_LINK_BY_LOCAL, ST_LINK_BY_REF, ST_LINK_INSERT,
	ST_OB_PURGE, ST_IN_PURGE, ST_SUBJECT,
	ST_AUDIT_APPEND, ST_HEAD_PUT, ST_HEAD_LAST,
	ST_WITNESS_PUT, ST_WITNESS_LAST, ST_META_PUT,
	ST_EXP_PUT, ST_EXP_BY_REPLY, ST_EXP_BY_REF, ST_EXP_CLOSE,
	ST_EXP_OVERDUE, ST_EXP_BY_CASE, ST_EXP_ALL, ST_EXP_REMINDED, ST_CASES,
	ST_OB_BY_IDEM,
	ST_EXP_INTERIM, ST_LINK_FILE, ST_ABS_PUT, ST_ABS_GET,
	ST_OB_PENDING,
	ST_COUNT
};

/* Column lists shared by the SELECTs and s_read_outbox / s_read_inbox. */
#define OB_COLS "seq, event_id, event_type, to_oin, case_local, case_ref, " \
	"in_reply_to, state, attempts, created_ms, expires_ms, " \
	"next_attempt_ms, updated_ms, envelope_digest, receipt_digest, " \
	"reason, receipted_ms, purpose, legal_basis, fields, " \
	"retention_until_ms, event_key, route"
#define OB_NCOLS 23
#define IN_COLS "seq, event_id, event_type, from_oin, case_local, case_ref, " \
	"in_reply_to, purpose, legal_basis, created_ms, received_ms, acked, " \
	"envelope_digest, receipt_digest, fields, retention_until_ms, " \
	"event_key"
#define IN_NCOLS 17

#define EXP_COLS "event_id, case_local, partner_oin, case_ref, sent_type, " \
	"answer_type, route, sent_ms, due_ms, answered_by, answered_ms, " \
	"reminders, interim_by, interim_ms, first_due_ms"

static const char *const s_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT item",
	[ST_RELEASE] = "RELEASE item",
	[ST_UNDO] = "ROLLBACK TO item",
	[ST_OB_INSERT] = "INSERT INTO outbox (event_id, event_type, to_oin, "
	    "case_local, case_ref, in_reply_to, state, attempts, created_ms, "
	    "expires_ms, next_attempt_ms, updated_ms, envelope_digest, "
	    "receipt_digest, reason, receipted_ms, purpose, legal_basis, "
	    "fields, retention_until_ms, event_key, route, envelope, "
	    "idem_client, idem_key, idem_hash) VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
	    "?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
	[ST_OB_DUE] = "SELECT " OB_COLS ", envelope FROM outbox WHERE "
	    "state = 1 AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, seq "
	    "LIMIT ?2",
	[ST_OB_NEXT_DUE] = "SELECT next_attempt_ms FROM outbox WHERE state = 1 "
	    "ORDER BY next_attempt_ms LIMIT 1",
	[ST_OB_SCHEDULE] = "UPDATE outbox SET attempts = ?2, "
	    "next_attempt_ms = ?3 WHERE event_id = ?1 AND state = 1",
	[ST_OB_WAKE] = "UPDATE outbox SET next_attempt_ms = 0 WHERE "
	    "to_oin = ?1 AND state = 1",
	[ST_OB_SETTLE] = "UPDATE outbox SET state = ?4, reason = ?5, "
	    "receipt_digest = ?6, receipt = ?7, receipted_ms = ?8, envelope = NULL, "
	    "updated_ms = ?8 WHERE event_id = ?1 AND to_oin = ?2 AND "
	    "envelope_digest = ?3 AND state IN (1, 4)",
	/* by the partial index outbox_expiry (s_schema_perf): the pending
	 * rows that expired, not a walk over every pending row */
	[ST_OB_EXPIRE] = "UPDATE outbox INDEXED BY outbox_expiry SET state = 4, "
	    "updated_ms = ?1 WHERE state = 1 AND expires_ms <= ?1 RETURNING "
	    OB_COLS,
	[ST_OB_GET] = "SELECT " OB_COLS " FROM outbox WHERE event_id = ?1",
	[ST_OB_BY_IDEM] = "SELECT event_id, idem_hash FROM outbox WHERE "
	    "idem_client = ?1 AND idem_key = ?2",
	[ST_OB_LIST] = "SELECT " OB_COLS " FROM outbox WHERE seq > ?1 "
	    "ORDER BY seq LIMIT ?2",
	[ST_OB_RECEIPT] = "SELECT receipt FROM outbox WHERE event_id = ?1 AND "
	    "receipt IS NOT NULL",
	[ST_OB_COUNTS] = "SELECT state, count(*) FROM outbox GROUP BY state",
	[ST_IN_FIND] = "SELECT " IN_COLS ", receipt FROM inbox WHERE "
	    "event_id = ?1",
	[ST_IN_INSERT] = "INSERT INTO inbox (event_id, event_type, from_oin, "
	    "case_local, case_ref, in_reply_to, purpose, legal_basis, "
	    "created_ms, received_ms, acked, envelope_digest, receipt_digest, "
	    "fields, retention_until_ms, event_key, sealed_payload, envelope, "
	    "receipt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
	    "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
	[ST_IN_LIST_ALL] = "SELECT " IN_COLS ", sealed_payload FROM inbox "
	    "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[ST_IN_LIST_UNACKED] = "SELECT " IN_COLS ", sealed_payload FROM inbox "
	    "INDEXED BY inbox_unacked WHERE acked = 0 AND seq > ?1 "
	    "ORDER BY seq LIMIT ?2",
	[ST_IN_GET] = "SELECT " IN_COLS ", sealed_payload FROM inbox WHERE "
	    "event_id = ?1",
	[ST_IN_ACK] = "UPDATE inbox SET acked = 1 WHERE event_id = ?1 AND "
	    "acked = 0",
	[ST_IN_EXISTS] = "SELECT 1 FROM inbox WHERE event_id = ?1",
	[ST_IN_COUNTS] = "SELECT (SELECT count(*) FROM inbox INDEXED BY "
	    "inbox_unacked WHERE acked = 0), (SELECT count(*) FROM inbox)",
	[ST_REJ_INSERT] = "INSERT INTO rejected (from_oin, event_id, "
	    "envelope_digest, reason, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_LINK_BY_LOCAL] = "SELECT case_ref FROM links WHERE "
	    "partner_oin = ?1 AND local = ?2",
	[ST_LINK_BY_REF] = "SELECT local FROM links WHERE partner_oin = ?1 AND "
	    "case_ref = ?2",
	[ST_LINK_INSERT] = "INSERT INTO links (partner_oin, local, case_ref) "
	    "VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
	[ST_OB_PURGE] = "UPDATE outbox SET envelope = NULL, event_key = NULL "
	    "WHERE retention_until_ms <= ?1 AND event_key IS NOT NULL AND "
	    "state <> 1 RETURNING event_id, to_oin",
	[ST_IN_PURGE] = "UPDATE inbox SET sealed_payload = NULL, "
	    "event_key = NULL WHERE retention_until_ms <= ?1 AND "
	    "event_key IS NOT NULL RETURNING event_id, from_oin",
	[ST_SUBJECT] = "SELECT event_id, 1, to_oin, event_type, purpose, "
	    "legal_basis, fields, created_ms, state, reason, "
	    "retention_until_ms, event_key IS NULL, in_reply_to, updated_ms "
	    "FROM outbox WHERE case_local = ?1 UNION ALL "
	    "SELECT event_id, 0, from_oin, event_type, purpose, legal_basis, "
	    "fields, received_ms, 0, 0, retention_until_ms, event_key IS NULL, "
	    "in_reply_to, received_ms "
	    "FROM inbox WHERE case_local = ?1 ORDER BY 8",
	[ST_AUDIT_APPEND] = "INSERT INTO audit (seq, entry, leaf) VALUES "
	    "(?1, ?2, ?3)",
	[ST_HEAD_PUT] = "INSERT OR REPLACE INTO tree_heads (size, time_ms, "
	    "root, signature) VALUES (?1, ?2, ?3, ?4)",
	[ST_HEAD_LAST] = "SELECT size, time_ms, root, signature FROM "
	    "tree_heads ORDER BY size DESC LIMIT 1",
	[ST_WITNESS_PUT] = "INSERT OR IGNORE INTO witness (partner_oin, size, "
	    "time_ms, root, signature, received_ms) VALUES (?1, ?2, ?3, ?4, "
	    "?5, ?6)",
	[ST_WITNESS_LAST] = "SELECT size, time_ms, root, signature FROM "
	    "witness WHERE partner_oin = ?1 ORDER BY size DESC, time_ms DESC "
	    "LIMIT 1",
	[ST_META_PUT] = "INSERT OR REPLACE INTO audit_meta (key, value) "
	    "VALUES (?1, ?2)",
	[ST_EXP_PUT] = "INSERT OR IGNORE INTO expectations (event_id, "
	    "case_local, partner_oin, case_ref, sent_type, answer_type, route, "
	    "sent_ms, due_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[ST_EXP_BY_REPLY] = "SELECT " EXP_COLS " FROM expectations WHERE "
	    "event_id = ?1 AND partner_oin = ?2 AND answer_type = ?3 AND "
	    "answered_by IS NULL",
	[ST_EXP_BY_REF] = "SELECT " EXP_COLS " FROM expectations WHERE "
	    "partner_oin = ?1 AND case_ref = ?2 AND answer_type = ?3 AND "
	    "answered_by IS NULL ORDER BY sent_ms LIMIT 1",
	[ST_EXP_CLOSE] = "UPDATE expectations SET answered_by = ?2, "
	    "answered_ms = ?3 WHERE event_id = ?1 AND answered_by IS NULL",
	[ST_EXP_OVERDUE] = "UPDATE expectations SET overdue_reported = 1 "
	    "WHERE answered_by IS NULL AND overdue_reported = 0 AND "
	    "due_ms <= ?1 RETURNING " EXP_COLS,
	[ST_EXP_BY_CASE] = "SELECT " EXP_COLS " FROM expectations WHERE "
	    "case_local = ?1 ORDER BY sent_ms",
	[ST_EXP_ALL] = "SELECT " EXP_COLS " FROM expectations ORDER BY sent_ms",
	[ST_EXP_REMINDED] = "UPDATE expectations SET reminders = reminders + 1 "
	    "WHERE event_id = ?1",
	[ST_CASES] = "SELECT c, count(*), max(t) FROM (SELECT case_local c, "
	    "created_ms t FROM outbox WHERE case_local <> '' UNION ALL "
	    "SELECT case_local, received_ms FROM inbox WHERE case_local <> '') "
	    "WHERE t <= ?1 GROUP BY c ORDER BY c",
	/* an interim answer: the phase is recorded, the expectation stays
	 * open with a new due time (the first one kept for as-of views) */
	[ST_EXP_INTERIM] = "UPDATE expectations SET interim_by = ?2, "
	    "interim_ms = ?3, first_due_ms = CASE WHEN interim_by IS NULL "
	    "THEN due_ms ELSE first_due_ms END, due_ms = ?4, "
	    "overdue_reported = 0 WHERE event_id = ?1 AND answered_by IS NULL",
	[ST_LINK_FILE] = "UPDATE inbox SET case_local = ?3 WHERE from_oin = ?1 "
	    "AND case_ref = ?2 AND case_local = ''",
	[ST_ABS_PUT] = "INSERT OR REPLACE INTO absence_after (case_local, "
	    "absence, at_ms) VALUES (?1, ?2, ?3)",
	[ST_ABS_GET] = "SELECT absence, at_ms FROM absence_after WHERE "
	    "case_local = ?1",
	[ST_OB_PENDING] = "SELECT " OB_COLS ", envelope FROM outbox WHERE "
	    "event_id = ?1 AND state = 1",
};

/*
 * Version 1.  Blobs of fixed size are checked so a bug cannot store junk.
 * outbox_due serves due, next_due, expire and counts (covering);
 * outbox_partner serves wake, which would otherwise walk every pending row
 * of every partner.  Each index costs every insert: the UNIQUE index on a
 * random (UUIDv4) event_id dirties one more page per row once the table is
 * large, roughly doubling the bytes written per row; time-ordered ids
 * (UUIDv7) would append instead.  Envelopes stay in the row: a side table
 * would write the same pages and add a B-tree.
 */
static const char s_schema_v1[] =
	"CREATE TABLE outbox ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" event_id BLOB NOT NULL UNIQUE CHECK (length(event_id) = 16),"
	" event_type INTEGER NOT NULL,"
	" to_oin TEXT NOT NULL,"
	" case_local TEXT NOT NULL,"
	" case_ref BLOB NOT NULL CHECK (length(case_ref) = 32),"
	" in_reply_to BLOB CHECK (in_reply_to IS NULL OR"
	"  length(in_reply_to) = 16),"
	" state INTEGER NOT NULL CHECK (state BETWEEN 1 AND 4),"
	" attempts INTEGER NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" expires_ms INTEGER NOT NULL,"
	" next_attempt_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" envelope_digest BLOB NOT NULL CHECK (length(envelope_digest) = 32),"
	" receipt_digest BLOB,"
	" reason INTEGER NOT NULL DEFAULT 0,"
	" receipted_ms INTEGER NOT NULL DEFAULT 0,"
	" purpose TEXT NOT NULL,"
	" legal_basis TEXT NOT NULL,"
	" fields TEXT NOT NULL,"
	" retention_until_ms INTEGER NOT NULL,"
	" event_key BLOB,"
	" route INTEGER NOT NULL DEFAULT 0,"
	" envelope BLOB,"
	" receipt BLOB);"
	"CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);"
	"CREATE INDEX outbox_partner ON outbox (to_oin, state);"
	"CREATE INDEX outbox_case ON outbox (case_local);"
	"CREATE INDEX outbox_retention ON outbox (retention_until_ms) "
	" WHERE event_key IS NOT NULL;"
	"CREATE TABLE inbox ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" event_id BLOB NOT NULL UNIQUE CHECK (length(event_id) = 16),"
	" event_type INTEGER NOT NULL,"
	" from_oin TEXT NOT NULL,"
	" case_local TEXT NOT NULL,"
	" case_ref BLOB NOT NULL CHECK (length(case_ref) = 32),"
	" in_reply_to BLOB,"
	" purpose TEXT NOT NULL,"
	" legal_basis TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" received_ms INTEGER NOT NULL,"
	" acked INTEGER NOT NULL DEFAULT 0,"
	" envelope_digest BLOB NOT NULL,"
	" receipt_digest BLOB NOT NULL,"
	" fields TEXT NOT NULL,"
	" retention_until_ms INTEGER NOT NULL,"
	" event_key BLOB,"
	" sealed_payload BLOB,"
	" envelope BLOB NOT NULL,"
	" receipt BLOB NOT NULL);"
	"CREATE INDEX inbox_unacked ON inbox (seq) WHERE acked = 0;"
	"CREATE INDEX inbox_case ON inbox (case_local);"
	"CREATE INDEX inbox_retention ON inbox (retention_until_ms) "
	" WHERE event_key IS NOT NULL;"
	"CREATE TABLE rejected ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" from_oin TEXT NOT NULL,"
	" event_id BLOB,"
	" envelope_digest BLOB NOT NULL,"
	" reason INTEGER NOT NULL,"
	" at_ms INTEGER NOT NULL);"
	"CREATE TABLE links ("
	" id INTEGER PRIMARY KEY,"
	" partner_oin TEXT NOT NULL,"
	" local TEXT NOT NULL,"
	" case_ref BLOB NOT NULL CHECK (length(case_ref) = 32),"
	" UNIQUE (partner_oin, local),"
	" UNIQUE (partner_oin, case_ref));"
	"CREATE TABLE audit ("
	" seq INTEGER PRIMARY KEY,"
	" entry BLOB NOT NULL,"
	" leaf BLOB NOT NULL CHECK (length(leaf) = 32));"
	"CREATE TABLE tree_heads ("
	" size INTEGER PRIMARY KEY,"
	" time_ms INTEGER NOT NULL,"
	" root BLOB NOT NULL CHECK (length(root) = 32),"
	" signature BLOB NOT NULL CHECK (length(signature) = 64));"
	"CREATE TABLE witness ("
	" partner_oin TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" time_ms INTEGER NOT NULL,"
	" root BLOB NOT NULL CHECK (length(root) = 32),"
	" signature BLOB NOT NULL CHECK (length(signature) = 64),"
	" received_ms INTEGER NOT NULL,"
	" PRIMARY KEY (partner_oin, size, root));"
	"CREATE TABLE audit_meta ("
	" key TEXT PRIMARY KEY,"
	" value TEXT NOT NULL);"
	"CREATE TABLE expectations ("
	" event_id BLOB PRIMARY KEY CHECK (length(event_id) = 16),"
	" case_local TEXT NOT NULL,"
	" partner_oin TEXT NOT NULL,"
	" case_ref BLOB NOT NULL CHECK (length(case_ref) = 32),"
	" sent_type INTEGER NOT NULL,"
	" answer_type INTEGER NOT NULL,"
	" route INTEGER NOT NULL,"
	" sent_ms INTEGER NOT NULL,"
	" due_ms INTEGER NOT NULL,"
	" answered_by BLOB,"
	" answered_ms INTEGER NOT NULL DEFAULT 0,"
	" overdue_reported INTEGER NOT NULL DEFAULT 0,"
	" reminders INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX expectations_open ON expectations (due_ms)"
	" WHERE answered_by IS NULL;"
	"CREATE INDEX expectations_case ON expectations (case_local);"
	"CREATE INDEX expectations_ref ON expectations (partner_oin, case_ref);";

struct store {
	sqlite3 *db;                      /* the one connection */
	char path[4096];                  /* state_dir/ketenpost.db */
	sqlite3_stmt *st[ST_COUNT];       /* s_sql, prepared in store_open */
};

/* ---- small helpers ---- */

static int
s_fail(store_t *s, kp_err_t *err, const char *what)
{
	return kp_fail(err, KP_ERR_IO, "store: %s: %s", what,
	    sqlite3_errmsg(s->db));
}

/* Reset a statement after use (its step error was reported already). */
static void
s_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static bool
s_is_dup(store_t *s)
{
	int x = sqlite3_extended_errcode(s->db);

	return x == SQLITE_CONSTRAINT_UNIQUE ||
	    x == SQLITE_CONSTRAINT_PRIMARYKEY;
}

static int
s_bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
	return sqlite3_bind_int64(st, i,
	    v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v);
}

/* A blob, or NULL when p is NULL and n is 0; an empty blob is not NULL. */
static int
s_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (p == NULL && n == 0)
		return sqlite3_bind_null(st, i);
	if (n == 0)
		return sqlite3_bind_zeroblob(st, i, 0);
	return sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

/* Text of at most cap - 1 bytes (the size of the row's char array). */
static int
s_bind_text(sqlite3_stmt *st, int i, const char *t, size_t cap)
{
	return sqlite3_bind_text(st, i, t, (int)strnlen(t, cap - 1),
	    SQLITE_STATIC);
}

static uint64_t
s_col_u64(sqlite3_stmt *st, int i)
{
	sqlite3_int64 v = sqlite3_column_int64(st, i);

	if (v < 0)
		return 0;
	return v == INT64_MAX ? UINT64_MAX : (uint64_t)v;
}

static void
s_col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);

	if (t == NULL)
		n = 0;
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, t != NULL ? (const char *)t : "", n);
	dst[n] = '\0';
}

/* Copy a fixed-size blob; false (and zeros) for NULL. */
static bool
s_col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t n)
{
	const void *p = sqlite3_column_blob(st, i);
	size_t got = (size_t)sqlite3_column_bytes(st, i);

	memset(dst, 0, n);
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return false;
	if (p != NULL)
		memcpy(dst, p, got < n ? got : n);
	return true;
}

/* A malloc'd copy of a blob column (never NULL on success). */
static int
s_col_dup(sqlite3_stmt *st, int i, uint8_t **buf, size_t *len, kp_err_t *err)
{
	const void *p = sqlite3_column_blob(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);

	if ((*buf = malloc(n > 0 ? n : 1)) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "store: out of memory");
	if (n > 0)
		memcpy(*buf, p, n);
	if (len != NULL)
		*len = n;
	return 0;
}

/* Step a statement that returns no rows; 0 / -1 (not reset). */
static int
s_step_done(store_t *s, sqlite3_stmt *st, const char *what, kp_err_t *err)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		return s_fail(s, err, what);
	return 0;
}

/* Step a statement that returns at most one row: *found. */
static int
s_step_one(store_t *s, sqlite3_stmt *st, const char *what, bool *found,
    kp_err_t *err)
{
	int rc = sqlite3_step(st);

	*found = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return s_fail(s, err, what);
	return 0;
}

/* ---- row <-> statement ---- */

/* Parameters ?1..?16 of ST_OB_INSERT. */
static int
s_bind_outbox(sqlite3_stmt *st, const outbox_row_t *r)
{
	int rc = 0;

	rc |= sqlite3_bind_blob(st, 1, r->event_id, 16, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 2, r->event_type);
	rc |= s_bind_text(st, 3, r->to_oin, sizeof(r->to_oin));
	rc |= s_bind_text(st, 4, r->case_local, sizeof(r->case_local));
	rc |= sqlite3_bind_blob(st, 5, r->case_ref, 32, SQLITE_STATIC);
	if (r->has_reply_to)
		rc |= sqlite3_bind_blob(st, 6, r->in_reply_to, 16,
		    SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 7, r->state);
	rc |= sqlite3_bind_int64(st, 8, r->attempts);
	rc |= s_bind_u64(st, 9, r->created_ms);
	rc |= s_bind_u64(st, 10, r->expires_ms);
	rc |= s_bind_u64(st, 11, r->next_attempt_ms);
	rc |= s_bind_u64(st, 12, r->updated_ms);
	rc |= sqlite3_bind_blob(st, 13, r->envelope_digest, 32, SQLITE_STATIC);
	if (r->has_receipt)
		rc |= sqlite3_bind_blob(st, 14, r->receipt_digest, 32,
		    SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 15, r->reason);
	rc |= s_bind_u64(st, 16, r->receipted_ms);
	rc |= s_bind_text(st, 17, r->purpose, sizeof(r->purpose));
	rc |= s_bind_text(st, 18, r->legal_basis, sizeof(r->legal_basis));
	rc |= s_bind_text(st, 19, r->fields, sizeof(r->fields));
	rc |= s_bind_u64(st, 20, r->retention_until_ms);
	if (r->has_event_key)
		rc |= sqlite3_bind_blob(st, 21, r->event_key,
		    STORE_KEY_WRAP_LEN, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 22, r->route);
	if (r->has_idem) {  /* ?23 is the envelope: store_outbox_insert */
		rc |= s_bind_text(st, 24, r->idem_client, sizeof(r->idem_client));
		rc |= s_bind_text(st, 25, r->idem_key, sizeof(r->idem_key));
		rc |= sqlite3_bind_blob(st, 26, r->idem_hash, 32, SQLITE_STATIC);
	}
	return rc == SQLITE_OK ? 0 : -1;
}

/* Columns OB_COLS (0..OB_NCOLS-1). */
static void
s_read_outbox(sqlite3_stmt *st, outbox_row_t *r)
{
	sqlite3_int64 attempts;

	memset(r, 0, sizeof(*r));
	r->seq = s_col_u64(st, 0);
	s_col_blob(st, 1, r->event_id, 16);
	r->event_type = sqlite3_column_int(st, 2);
	s_col_text(st, 3, r->to_oin, sizeof(r->to_oin));
	s_col_text(st, 4, r->case_local, sizeof(r->case_local));
	s_col_blob(st, 5, r->case_ref, 32);
	r->has_reply_to = s_col_blob(st, 6, r->in_reply_to, 16);
	r->state = sqlite3_column_int(st, 7);
	attempts = sqlite3_column_int64(st, 8);
	r->attempts = attempts < 0 ? 0 : attempts > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)attempts;
	r->created_ms = s_col_u64(st, 9);
	r->expires_ms = s_col_u64(st, 10);
	r->next_attempt_ms = s_col_u64(st, 11);
	r->updated_ms = s_col_u64(st, 12);
	s_col_blob(st, 13, r->envelope_digest, 32);
	r->has_receipt = s_col_blob(st, 14, r->receipt_digest, 32);
	r->reason = sqlite3_column_int(st, 15);
	r->receipted_ms = s_col_u64(st, 16);
	s_col_text(st, 17, r->purpose, sizeof(r->purpose));
	s_col_text(st, 18, r->legal_basis, sizeof(r->legal_basis));
	s_col_text(st, 19, r->fields, sizeof(r->fields));
	r->retention_until_ms = s_col_u64(st, 20);
	r->has_event_key = s_col_blob(st, 21, r->event_key,
	    STORE_KEY_WRAP_LEN);
	r->route = sqlite3_column_int(st, 22);
}

/* Parameters ?1..?13 of ST_IN_INSERT. */
static int
s_bind_inbox(sqlite3_stmt *st, const inbox_row_t *r)
{
	int rc = 0;

	rc |= sqlite3_bind_blob(st, 1, r->event_id, 16, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 2, r->event_type);
	rc |= s_bind_text(st, 3, r->from_oin, sizeof(r->from_oin));
	rc |= s_bind_text(st, 4, r->case_local, sizeof(r->case_local));
	rc |= sqlite3_bind_blob(st, 5, r->case_ref, 32, SQLITE_STATIC);
	if (r->has_reply_to)
		rc |= sqlite3_bind_blob(st, 6, r->in_reply_to, 16,
		    SQLITE_STATIC);
	rc |= s_bind_text(st, 7, r->purpose, sizeof(r->purpose));
	rc |= s_bind_text(st, 8, r->legal_basis, sizeof(r->legal_basis));
	rc |= s_bind_u64(st, 9, r->created_ms);
	rc |= s_bind_u64(st, 10, r->received_ms);
	rc |= sqlite3_bind_int(st, 11, r->acked ? 1 : 0);
	rc |= sqlite3_bind_blob(st, 12, r->envelope_digest, 32, SQLITE_STATIC);
	rc |= sqlite3_bind_blob(st, 13, r->receipt_digest, 32, SQLITE_STATIC);
	rc |= s_bind_text(st, 14, r->fields, sizeof(r->fields));
	rc |= s_bind_u64(st, 15, r->retention_until_ms);
	if (r->has_event_key)
		rc |= sqlite3_bind_blob(st, 16, r->event_key,
		    STORE_KEY_WRAP_LEN, SQLITE_STATIC);
	return rc == SQLITE_OK ? 0 : -1;
}

/* Columns IN_COLS (0..IN_NCOLS-1). */
static void
s_read_inbox(sqlite3_stmt *st, inbox_row_t *r)
{
	memset(r, 0, sizeof(*r));
	r->seq = s_col_u64(st, 0);
	s_col_blob(st, 1, r->event_id, 16);
	r->event_type = sqlite3_column_int(st, 2);
	s_col_text(st, 3, r->from_oin, sizeof(r->from_oin));
	s_col_text(st, 4, r->case_local, sizeof(r->case_local));
	s_col_blob(st, 5, r->case_ref, 32);
	r->has_reply_to = s_col_blob(st, 6, r->in_reply_to, 16);
	s_col_text(st, 7, r->purpose, sizeof(r->purpose));
	s_col_text(st, 8, r->legal_basis, sizeof(r->legal_basis));
	r->created_ms = s_col_u64(st, 9);
	r->received_ms = s_col_u64(st, 10);
	r->acked = sqlite3_column_int(st, 11) != 0;
	s_col_blob(st, 12, r->envelope_digest, 32);
	s_col_blob(st, 13, r->receipt_digest, 32);
	s_col_text(st, 14, r->fields, sizeof(r->fields));
	r->retention_until_ms = s_col_u64(st, 15);
	r->has_event_key = s_col_blob(st, 16, r->event_key,
	    STORE_KEY_WRAP_LEN);
}

/* Walk the rows of a bound statement; env from column OB_NCOLS if with_env.
 * The statement is reset on return. */
static int
s_walk_outbox(store_t *s, sqlite3_stmt *st, bool with_env, store_outbox_cb cb,
    void *arg, const char *what, kp_err_t *err)
{
	outbox_row_t row;
	const void *env;
	size_t len;
	int rc, ret = -1;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s_read_outbox(st, &row);
		env = with_env ? sqlite3_column_blob(st, OB_NCOLS) : NULL;
		len = with_env ? (size_t)sqlite3_column_bytes(st, OB_NCOLS) : 0;
		if (cb != NULL && cb(arg, &row, env, len) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		s_fail(s, err, what);
		goto out;
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

static sqlite3_int64
s_limit(size_t n)
{
	return n > INT64_MAX ? INT64_MAX : (sqlite3_int64)n;
}

/* ---- open / close ---- */

/* Create state_dir (0700) if missing; it must be a directory. */
static int
s_make_dir(const char *dir, kp_err_t *err)
{
	struct stat sb;

	if (mkdir(dir, 0700) == 0) {
		if (chmod(dir, 0700) != 0)
			return kp_fail(err, KP_ERR_IO, "store: chmod %s: %s",
			    dir, strerror(errno));
		return 0;
	}
	if (errno != EEXIST)
		return kp_fail(err, KP_ERR_IO, "store: mkdir %s: %s", dir,
		    strerror(errno));
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return kp_fail(err, KP_ERR_IO, "store: %s is not a directory",
		    dir);
	return 0;
}

/*
 * Create the database file 0600 before SQLite sees it (SQLite gives the
 * -wal and -shm files the database file's mode), and tighten an existing
 * file that is group- or world-accessible.  No symlinks.
 */
static int
s_make_file(const char *path, kp_err_t *err)
{
	struct stat sb;
	int fd, ret = -1;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return kp_fail(err, KP_ERR_IO, "store: open %s: %s", path,
		    strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		kp_fail(err, KP_ERR_IO, "store: %s is not a regular file",
		    path);
		goto out;
	}
	if ((sb.st_mode & 0777) != 0600 && fchmod(fd, 0600) != 0) {
		kp_fail(err, KP_ERR_IO, "store: chmod %s: %s", path,
		    strerror(errno));
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

/* An error while opening: a foreign or damaged file gets one clear text. */
static int
s_open_fail(store_t *s, kp_err_t *err, const char *what)
{
	int rc = sqlite3_errcode(s->db);

	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
		return kp_fail(err, KP_ERR_IO, "store: %s: not a ketenpost "
		    "database or corrupt (%s)", s->path, sqlite3_errmsg(s->db));
	return kp_fail(err, KP_ERR_IO, "store: %s: %s: %s", s->path, what,
	    sqlite3_errmsg(s->db));
}

/* Run a one-off statement and fetch the first column of its first row. */
static int
s_query_int(store_t *s, const char *sql, sqlite3_int64 *v, kp_err_t *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		s_open_fail(s, err, sql);
		goto out;
	}
	*v = sqlite3_column_int64(st, 0);
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

/* Same, for a text result into buf. */
static int
s_query_text(store_t *s, const char *sql, char *buf, size_t len,
    kp_err_t *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		s_open_fail(s, err, sql);
		goto out;
	}
	s_col_text(st, 0, buf, len);
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

static int
s_configure(store_t *s, kp_err_t *err)
{
	char mode[16];

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	if (s_query_text(s, "PRAGMA journal_mode = WAL", mode, sizeof(mode),
	    err) != 0)
		return -1;
	if (strcmp(mode, "wal") != 0)
		return kp_fail(err, KP_ERR_IO, "store: %s: cannot use WAL "
		    "journal (got %s)", s->path, mode);
	/* temp_store = MEMORY: the statement and savepoint sub-journals
	 * (one SAVEPOINT per API request, apisrv.c) stay in memory instead
	 * of a temporary file; they only serve a rollback within the open
	 * transaction, never recovery, so durability is unchanged.  On disk
	 * they were most of the sender's writes (docs/PERFORMANCE.md). */
	if (sqlite3_exec(s->db, "PRAGMA synchronous = FULL;"
	    "PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;"
	    "PRAGMA temp_store = MEMORY;",
	    NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_wal_autocheckpoint(s->db, STORE_WAL_AUTOCHECKPOINT) !=
	    SQLITE_OK)
		return s_open_fail(s, err, "pragmas");
	return 0;
}

/* PRAGMA quick_check on a small database; a big one is left to SQLite's
 * per-page checks (see the header comment). */
static int
s_quick_check(store_t *s, kp_err_t *err)
{
	sqlite3_int64 pages;
	char res[128], *p;

	if (s_query_int(s, "PRAGMA page_count", &pages, err) != 0)
		return -1;
	if (pages > STORE_QUICK_CHECK_PAGES)
		return 0;
	if (s_query_text(s, "PRAGMA quick_check(1)", res, sizeof(res),
	    err) != 0)
		return -1;
	if (strcmp(res, "ok") != 0) {
		for (p = res; *p != '\0'; p++)   /* one line per message */
			if (*p == '\n' || *p == '\r' || *p == '\t')
				*p = ' ';
		return kp_fail(err, KP_ERR_IO, "store: %s: not a ketenpost "
		    "database or corrupt (quick_check: %s)", s->path, res);
	}
	return 0;
}

/* Decide, inside the open write transaction, whether to create v1. */
static int
s_schema_check(store_t *s, bool *create, kp_err_t *err)
{
	sqlite3_int64 app, ver, tables;

	if (s_query_int(s, "PRAGMA application_id", &app, err) != 0 ||
	    s_query_int(s, "PRAGMA user_version", &ver, err) != 0 ||
	    s_query_int(s, "SELECT count(*) FROM sqlite_schema", &tables,
	    err) != 0)
		return -1;
	if (ver > STORE_SCHEMA_VERSION)
		return kp_fail(err, KP_ERR_IO, "store: %s has schema version "
		    "%lld, newer than this ketenpost supports (%d); upgrade "
		    "ketenpost", s->path, (long long)ver, STORE_SCHEMA_VERSION);
	if ((app != 0 && app != STORE_APP_ID) || (app == 0 && tables > 0))
		return kp_fail(err, KP_ERR_IO, "store: %s: not a ketenpost "
		    "database or corrupt (foreign SQLite database)", s->path);
	if (app == STORE_APP_ID && ver < 1)
		return kp_fail(err, KP_ERR_IO, "store: %s: not a ketenpost "
		    "database or corrupt (no schema version)", s->path);
	*create = ver == 0;
	return 0;
}

/*
 * Version 2: the idempotency key of a send (apisrv.c), kept in the outbox
 * row for as long as the row: a retried request with the same (client,
 * key) finds the event it stored, across restarts.  The unique index is
 * what makes "stores nothing new" hold even if a caller skipped the look-up.
 */
static const char s_schema_v2[] =
	"ALTER TABLE outbox ADD COLUMN idem_client TEXT;"
	"ALTER TABLE outbox ADD COLUMN idem_key TEXT;"
	"ALTER TABLE outbox ADD COLUMN idem_hash BLOB"
	" CHECK (idem_hash IS NULL OR length(idem_hash) = 32);"
	"CREATE UNIQUE INDEX outbox_idem ON outbox (idem_client, idem_key)"
	" WHERE idem_key IS NOT NULL;";

/*
 * Version 3: answers in phases (an interim answer keeps its expectation
 * open with a new due time; the first one is kept for as-of views) and
 * the officer's own record of the absence after the route: local, never
 * sent; the latest record per case.
 */
static const char s_schema_v3[] =
	"ALTER TABLE expectations ADD COLUMN interim_by BLOB;"
	"ALTER TABLE expectations ADD COLUMN interim_ms INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE expectations ADD COLUMN first_due_ms INTEGER NOT NULL"
	" DEFAULT 0;"
	"CREATE TABLE absence_after ("
	" case_local TEXT PRIMARY KEY,"
	" absence INTEGER NOT NULL CHECK (absence BETWEEN 1 AND 3),"
	" at_ms INTEGER NOT NULL);";

/*
 * Indexes for performance only, at every open of any version (no version
 * step: an older daemon reading the file just has one more index).
 * outbox_expiry holds only pending rows, ordered by expiry, so the
 * once-a-second expiry check (store_outbox_expire) reads the few rows
 * that expired instead of every pending row; it stays as small as the
 * pending set, so its pages stay hot.
 */
static const char s_schema_perf[] =
	"CREATE INDEX IF NOT EXISTS outbox_expiry ON outbox (expires_ms)"
	" WHERE state = 1;";

/* Create or check the schema in one BEGIN IMMEDIATE, so two processes
 * opening a new file cannot both create it. */
static int
s_migrate(store_t *s, kp_err_t *err)
{
	char sql[128];
	bool create = false;
	sqlite3_int64 ver = 0;

	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return s_open_fail(s, err, "begin");
	if (s_schema_check(s, &create, err) != 0 ||
	    s_query_int(s, "PRAGMA user_version", &ver, err) != 0)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d;"
	    "PRAGMA user_version = %d;", STORE_APP_ID, STORE_SCHEMA_VERSION);
	if (create && (sqlite3_exec(s->db, s_schema_v1, NULL, NULL, NULL) !=
	    SQLITE_OK || sqlite3_exec(s->db, sql, NULL, NULL, NULL) !=
	    SQLITE_OK)) {
		s_open_fail(s, err, "create schema");
		goto fail;
	}
	/* each step from the version found, in order */
	if ((create || ver == 1) && (sqlite3_exec(s->db, s_schema_v2, NULL,
	    NULL, NULL) != SQLITE_OK || sqlite3_exec(s->db, sql, NULL, NULL,
	    NULL) != SQLITE_OK)) {
		s_open_fail(s, err, "migrate schema to version 2");
		goto fail;
	}
	if ((create || ver <= 2) && (sqlite3_exec(s->db, s_schema_v3, NULL,
	    NULL, NULL) != SQLITE_OK || sqlite3_exec(s->db, sql, NULL, NULL,
	    NULL) != SQLITE_OK)) {
		s_open_fail(s, err, "migrate schema to version 3");
		goto fail;
	}
	if (sqlite3_exec(s->db, s_schema_perf, NULL, NULL, NULL) != SQLITE_OK) {
		s_open_fail(s, err, "create performance indexes");
		goto fail;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		s_open_fail(s, err, "commit schema");
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
s_prepare(store_t *s, kp_err_t *err)
{
	int i;

	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, s_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK)
			return s_open_fail(s, err, s_sql[i]);
	}
	return 0;
}

int
store_open(const char *state_dir, store_t **out, kp_err_t *err)
{
	store_t *s;
	int n;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "store: out of memory");
	n = snprintf(s->path, sizeof(s->path), "%s/ketenpost.db", state_dir);
	if (n < 0 || (size_t)n >= sizeof(s->path)) {
		kp_fail(err, KP_ERR_INVALID_ARG, "store: state dir too long");
		goto fail;
	}
	if (s_make_dir(state_dir, err) != 0 || s_make_file(s->path, err) != 0)
		goto fail;
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		if (s->db == NULL)
			kp_fail(err, KP_ERR_NOMEM, "store: out of memory");
		else
			s_open_fail(s, err, "open");
		goto fail;
	}
	if (s_configure(s, err) != 0 || s_quick_check(s, err) != 0 ||
	    s_migrate(s, err) != 0 || s_prepare(s, err) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(&s);
	return -1;
}

void
store_close(store_t **self_p)
{
	store_t *s = *self_p;
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
	*self_p = NULL;
}

/* ---- transactions ---- */

static int
s_exec_st(store_t *s, int which, const char *what, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[which];
	int ret = s_step_done(s, st, what, err);

	s_done(st);
	return ret;
}

int
store_begin(store_t *s, kp_err_t *err)
{
	return s_exec_st(s, ST_BEGIN, "begin", err);
}

int
store_commit(store_t *s, kp_err_t *err)
{
	return s_exec_st(s, ST_COMMIT, "commit", err);
}

void
store_rollback(store_t *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;           /* nothing open (or SQLite undid it) */
	(void)s_exec_st(s, ST_ROLLBACK, "rollback", NULL);
}

/* ---- outbox ---- */

/* Step an INSERT of event `id` into `table`: a duplicate id is
 * KP_ERR_INVALID_ARG, anything else KP_ERR_IO.  OUT: *seq. */
static int
s_step_insert(store_t *s, sqlite3_stmt *st, const uint8_t id[16],
    const char *table, uint64_t *seq, kp_err_t *err)
{
	char text[KP_UUID_TEXT_LEN + 1], what[32];

	if (sqlite3_step(st) == SQLITE_DONE) {
		*seq = (uint64_t)sqlite3_last_insert_rowid(s->db);
		return 0;
	}
	kp_uuid_format(id, text);
	if (s_is_dup(s))
		return kp_fail(err, KP_ERR_INVALID_ARG, "store: event %s "
		    "already in %s", text, table);
	snprintf(what, sizeof(what), "%s insert", table);
	return s_fail(s, err, what);
}

int
store_outbox_insert(store_t *s, outbox_row_t *row, const uint8_t *env,
    size_t env_len, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_INSERT];
	int ret = -1;

	row->state = STORE_PENDING;
	row->updated_ms = row->created_ms;
	row->has_receipt = false;
	memset(row->receipt_digest, 0, sizeof(row->receipt_digest));
	row->reason = 0;
	row->receipted_ms = 0;
	if (s_bind_outbox(st, row) != 0 ||
	    s_bind_blob(st, 23, env != NULL ? env : (const uint8_t *)"",
	    env_len) != SQLITE_OK) {
		s_fail(s, err, "outbox insert");
		goto out;
	}
	if (s_step_insert(s, st, row->event_id, "outbox", &row->seq, err) != 0)
		goto out;
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_outbox_due(store_t *s, uint64_t now, size_t max, store_outbox_cb cb,
    void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_DUE];

	if (max == 0)
		return 0;
	if (s_bind_u64(st, 1, now) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, s_limit(max)) != SQLITE_OK) {
		s_fail(s, err, "outbox due");
		s_done(st);
		return -1;
	}
	return s_walk_outbox(s, st, true, cb, arg, "outbox due", err);
}

int
store_outbox_next_due(store_t *s, uint64_t *when, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_NEXT_DUE];
	bool found;
	int ret = -1;

	*when = UINT64_MAX;
	if (s_step_one(s, st, "outbox next due", &found, err) != 0)
		goto out;
	if (found)
		*when = s_col_u64(st, 0);
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_outbox_schedule(store_t *s, const uint8_t id[16], uint32_t attempts,
    uint64_t next_ms, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_SCHEDULE];
	int ret = -1;

	if (sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, attempts) != SQLITE_OK ||
	    s_bind_u64(st, 3, next_ms) != SQLITE_OK) {
		s_fail(s, err, "outbox schedule");
		goto out;
	}
	ret = s_step_done(s, st, "outbox schedule", err);
out:
	s_done(st);
	return ret;
}

int
store_outbox_wake(store_t *s, const char *oin, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_WAKE];
	int ret = -1;

	if (s_bind_text(st, 1, oin, KP_OIN_LEN + 1) != SQLITE_OK) {
		s_fail(s, err, "outbox wake");
		goto out;
	}
	ret = s_step_done(s, st, "outbox wake", err);
out:
	s_done(st);
	return ret;
}

int
store_outbox_settle(store_t *s, const uint8_t id[16], const char *issuer_oin,
    const uint8_t envelope_digest[32], int state, int reason,
    const uint8_t receipt_digest[32], const uint8_t *receipt, size_t rlen,
    uint64_t now, bool *applied, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_SETTLE];
	int rc = 0, ret = -1;

	*applied = false;
	if (state != STORE_DELIVERED && state != STORE_REJECTED)
		return kp_fail(err, KP_ERR_INVALID_ARG, "store: settle to "
		    "state %d (want delivered or rejected)", state);
	rc |= sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
	rc |= s_bind_text(st, 2, issuer_oin, KP_OIN_LEN + 1);
	rc |= sqlite3_bind_blob(st, 3, envelope_digest, 32, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 4, state);
	rc |= sqlite3_bind_int(st, 5, reason);
	rc |= sqlite3_bind_blob(st, 6, receipt_digest, 32, SQLITE_STATIC);
	rc |= s_bind_blob(st, 7, receipt != NULL ? receipt :
	    (const uint8_t *)"", rlen);
	rc |= s_bind_u64(st, 8, now);
	if (rc != SQLITE_OK) {
		s_fail(s, err, "outbox settle");
		goto out;
	}
	if (s_step_done(s, st, "outbox settle", err) != 0)
		goto out;
	*applied = sqlite3_changes(s->db) == 1;
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_outbox_expire(store_t *s, uint64_t now, store_outbox_cb cb, void *arg,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_EXPIRE];

	if (s_bind_u64(st, 1, now) != SQLITE_OK) {
		s_fail(s, err, "outbox expire");
		s_done(st);
		return -1;
	}
	return s_walk_outbox(s, st, false, cb, arg, "outbox expire", err);
}

int
store_outbox_pending(store_t *s, const uint8_t id[16], store_outbox_cb cb,
    void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_PENDING];

	if (sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC) != SQLITE_OK) {
		s_fail(s, err, "outbox pending");
		s_done(st);
		return -1;
	}
	return s_walk_outbox(s, st, true, cb, arg, "outbox pending", err);
}

int
store_outbox_get(store_t *s, const uint8_t id[16], outbox_row_t *row,
    bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_GET];
	int ret = -1;

	*found = false;
	if (sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC) != SQLITE_OK) {
		s_fail(s, err, "outbox get");
		goto out;
	}
	if (s_step_one(s, st, "outbox get", found, err) != 0)
		goto out;
	if (*found)
		s_read_outbox(st, row);
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_outbox_by_idem(store_t *s, const char *client, const char *key,
    uint8_t event_id[16], uint8_t hash[32], bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_BY_IDEM];
	int ret = -1;

	*found = false;
	if (sqlite3_bind_text(st, 1, client, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC) != SQLITE_OK) {
		s_fail(s, err, "outbox by idempotency key");
		goto out;
	}
	if (s_step_one(s, st, "outbox by idempotency key", found, err) != 0)
		goto out;
	if (*found) {
		(void)s_col_blob(st, 0, event_id, 16);
		(void)s_col_blob(st, 1, hash, 32);
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_outbox_list(store_t *s, uint64_t after_seq, size_t limit,
    store_outbox_cb cb, void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_LIST];

	if (limit == 0)
		return 0;
	if (s_bind_u64(st, 1, after_seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, s_limit(limit)) != SQLITE_OK) {
		s_fail(s, err, "outbox list");
		s_done(st);
		return -1;
	}
	return s_walk_outbox(s, st, false, cb, arg, "outbox list", err);
}

int
store_outbox_receipt(store_t *s, const uint8_t id[16], uint8_t **buf,
    size_t *len, bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_RECEIPT];
	int ret = -1;

	*found = false;
	*buf = NULL;
	*len = 0;
	if (sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC) != SQLITE_OK) {
		s_fail(s, err, "outbox receipt");
		goto out;
	}
	if (s_step_one(s, st, "outbox receipt", found, err) != 0)
		goto out;
	if (*found && s_col_dup(st, 0, buf, len, err) != 0) {
		*found = false;
		goto out;
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_outbox_counts(store_t *s, uint64_t counts[5], kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_COUNTS];
	int rc, state, ret = -1;

	memset(counts, 0, 5 * sizeof(counts[0]));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		state = sqlite3_column_int(st, 0);
		if (state >= STORE_PENDING && state <= STORE_DEAD)
			counts[state] = s_col_u64(st, 1);
	}
	if (rc != SQLITE_DONE) {
		s_fail(s, err, "outbox counts");
		goto out;
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

/* ---- inbox ---- */

/* One inbox row by id, with the extra blob column of statement `which`
 * (the receipt for ST_IN_FIND, the sealed payload for ST_IN_GET). */
static int
s_inbox_one(store_t *s, int which, const char *what, const uint8_t id[16],
    inbox_row_t *row, uint8_t **blob, size_t *blen, bool *found,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[which];
	int ret = -1;

	*found = false;
	if (blob != NULL)
		*blob = NULL;
	if (sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC) != SQLITE_OK) {
		s_fail(s, err, what);
		goto out;
	}
	if (s_step_one(s, st, what, found, err) != 0)
		goto out;
	if (*found) {
		s_read_inbox(st, row);
		if (blob != NULL &&
		    s_col_dup(st, IN_NCOLS, blob, blen, err) != 0) {
			*found = false;
			goto out;
		}
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_inbox_find(store_t *s, const uint8_t id[16], inbox_row_t *row,
    uint8_t **receipt, size_t *rlen, bool *found, kp_err_t *err)
{
	return s_inbox_one(s, ST_IN_FIND, "inbox find", id, row, receipt, rlen,
	    found, err);
}

int
store_inbox_insert(store_t *s, inbox_row_t *row,
    const uint8_t *sealed_payload, size_t plen, const uint8_t *envelope,
    size_t elen, const uint8_t *receipt, size_t rlen, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_IN_INSERT];
	const uint8_t *none = (const uint8_t *)"";
	int ret = -1;

	if (s_bind_inbox(st, row) != 0 ||
	    s_bind_blob(st, 17, sealed_payload ? sealed_payload : none, plen) ||
	    s_bind_blob(st, 18, envelope ? envelope : none, elen) ||
	    s_bind_blob(st, 19, receipt ? receipt : none, rlen)) {
		s_fail(s, err, "inbox insert");
		goto out;
	}
	if (s_step_insert(s, st, row->event_id, "inbox", &row->seq, err) != 0)
		goto out;
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_inbox_list(store_t *s, bool all, uint64_t after_seq, size_t limit,
    store_inbox_cb cb, void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[all ? ST_IN_LIST_ALL : ST_IN_LIST_UNACKED];
	inbox_row_t row;
	const void *p;
	size_t n;
	int rc, ret = -1;

	if (limit == 0)
		return 0;
	if (s_bind_u64(st, 1, after_seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, s_limit(limit)) != SQLITE_OK) {
		s_fail(s, err, "inbox list");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s_read_inbox(st, &row);
		p = sqlite3_column_blob(st, IN_NCOLS);
		n = (size_t)sqlite3_column_bytes(st, IN_NCOLS);
		if (cb != NULL && cb(arg, &row, p, n) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		s_fail(s, err, "inbox list");
		goto out;
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_inbox_get(store_t *s, const uint8_t id[16], inbox_row_t *row,
    uint8_t **payload, size_t *plen, bool *found, kp_err_t *err)
{
	return s_inbox_one(s, ST_IN_GET, "inbox get", id, row, payload, plen,
	    found, err);
}

/* Whether an inbox row exists (for store_inbox_ack's error). */
static int
s_inbox_exists(store_t *s, const uint8_t id[16], bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_IN_EXISTS];
	int ret = -1;

	*found = false;
	if (sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC) != SQLITE_OK) {
		s_fail(s, err, "inbox ack");
		goto out;
	}
	ret = s_step_one(s, st, "inbox ack", found, err);
out:
	s_done(st);
	return ret;
}

int
store_inbox_ack(store_t *s, const uint8_t id[16], bool *newly, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_IN_ACK];
	char text[KP_UUID_TEXT_LEN + 1];
	bool found;
	int ret = -1;

	*newly = false;
	if (sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC) != SQLITE_OK) {
		s_fail(s, err, "inbox ack");
		goto out;
	}
	if (s_step_done(s, st, "inbox ack", err) != 0)
		goto out;
	*newly = sqlite3_changes(s->db) == 1;
	if (!*newly) {
		if (s_inbox_exists(s, id, &found, err) != 0)
			goto out;
		if (!found) {
			kp_uuid_format(id, text);
			kp_fail(err, KP_ERR_INVALID_ARG, "store: event %s not "
			    "in inbox", text);
			goto out;
		}
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_inbox_counts(store_t *s, uint64_t *unacked, uint64_t *total,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_IN_COUNTS];
	bool found;
	int ret = -1;

	*unacked = *total = 0;
	if (s_step_one(s, st, "inbox counts", &found, err) != 0)
		goto out;
	if (found) {
		*unacked = s_col_u64(st, 0);
		*total = s_col_u64(st, 1);
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

/* ---- refusals ---- */

int
store_reject_insert(store_t *s, const char *from_oin, const uint8_t *event_id,
    const uint8_t envelope_digest[32], int reason, uint64_t now,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_REJ_INSERT];
	int rc = 0, ret = -1;

	rc |= s_bind_text(st, 1, from_oin != NULL ? from_oin : "",
	    KP_OIN_LEN + 1);
	rc |= s_bind_blob(st, 2, event_id, event_id != NULL ? 16 : 0);
	rc |= sqlite3_bind_blob(st, 3, envelope_digest, 32, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 4, reason);
	rc |= s_bind_u64(st, 5, now);
	if (rc != SQLITE_OK) {
		s_fail(s, err, "reject insert");
		goto out;
	}
	ret = s_step_done(s, st, "reject insert", err);
out:
	s_done(st);
	return ret;
}

/* ---- case links ---- */

int
store_link_by_local(store_t *s, const char *partner_oin, const char *local,
    uint8_t case_ref[32], bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_LINK_BY_LOCAL];
	int ret = -1;

	*found = false;
	if (s_bind_text(st, 1, partner_oin, KP_OIN_LEN + 1) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC) != SQLITE_OK) {
		s_fail(s, err, "link by local");
		goto out;
	}
	if (s_step_one(s, st, "link by local", found, err) != 0)
		goto out;
	if (*found)
		s_col_blob(st, 0, case_ref, 32);
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_link_by_ref(store_t *s, const char *partner_oin,
    const uint8_t case_ref[32], char local[65], bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_LINK_BY_REF];
	int ret = -1;

	*found = false;
	if (s_bind_text(st, 1, partner_oin, KP_OIN_LEN + 1) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, case_ref, 32, SQLITE_STATIC) !=
	    SQLITE_OK) {
		s_fail(s, err, "link by ref");
		goto out;
	}
	if (s_step_one(s, st, "link by ref", found, err) != 0)
		goto out;
	if (*found)
		s_col_text(st, 0, local, 65);
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_link_put(store_t *s, const char *partner_oin, const char *local,
    const uint8_t case_ref[32], kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_LINK_INSERT];
	uint8_t have[32];
	bool found;
	int ret = -1;

	if (strlen(local) > 64)
		return kp_fail(err, KP_ERR_INVALID_ARG, "store: case reference "
		    "longer than 64 bytes");
	if (s_bind_text(st, 1, partner_oin, KP_OIN_LEN + 1) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, case_ref, 32, SQLITE_STATIC) !=
	    SQLITE_OK) {
		s_fail(s, err, "link put");
		goto out;
	}
	if (s_step_done(s, st, "link put", err) != 0)
		goto out;
	if (sqlite3_changes(s->db) == 0) {
		/* A link with this local or this pseudonym exists already. */
		if (store_link_by_local(s, partner_oin, local, have, &found,
		    err) != 0)
			goto out;
		if (!found || memcmp(have, case_ref, 32) != 0) {
			kp_fail(err, KP_ERR_INVALID_ARG, "store: case '%s' or "
			    "its pseudonym is already linked differently for "
			    "partner %s", local, partner_oin);
			goto out;
		}
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

/* ---- retention ---- */

static int
s_purge_one(store_t *s, int which, bool sent, uint64_t now, store_purge_cb cb,
    void *arg, size_t *n, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[which];
	uint8_t id[16];
	char oin[21];
	int rc, ret = -1;

	if (s_bind_u64(st, 1, now) != SQLITE_OK) {
		s_fail(s, err, "purge");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s_col_blob(st, 0, id, 16);
		s_col_text(st, 1, oin, sizeof(oin));
		(*n)++;
		if (cb != NULL)
			(void)cb(arg, id, oin, sent);
	}
	if (rc != SQLITE_DONE) {
		s_fail(s, err, "purge");
		goto out;
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_purge(store_t *s, uint64_t now, store_purge_cb cb, void *arg,
    size_t *n, kp_err_t *err)
{
	*n = 0;
	if (s_purge_one(s, ST_OB_PURGE, true, now, cb, arg, n, err) != 0 ||
	    s_purge_one(s, ST_IN_PURGE, false, now, cb, arg, n, err) != 0)
		return -1;
	return 0;
}

/*
 * Copy every WAL frame into the database file (where secure_delete has
 * zeroed what a purge freed) and truncate the WAL to nothing, so no old
 * frame keeps a destroyed key.  A reader in a read transaction (e.g.
 * `ketenpost audit` on a live state folder) pins the old pages: then the
 * checkpoint is busy, retried by the busy handler for at most wait_ms,
 * and *done is false.  Done means: every frame copied and the -wal file
 * empty.
 */
int
store_checkpoint(store_t *s, int wait_ms, bool *done, kp_err_t *err)
{
	char wal[sizeof(s->path) + 8];
	int rc, nlog = -1, ncopied = -1;
	struct stat sb;

	*done = false;
	sqlite3_busy_timeout(s->db, wait_ms);
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    &nlog, &ncopied);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return 0;             /* extended result codes are on */
	if (rc != SQLITE_OK)
		return s_fail(s, err, "checkpoint");
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	if (stat(wal, &sb) == 0 && sb.st_size != 0)
		return 0;             /* not truncated: not destroyed yet */
	*done = nlog == ncopied;
	return 0;
}

int
store_checkpoint_idle(store_t *s)
{
	int log = 0, done = 0;

	if (sqlite3_get_autocommit(s->db) == 0 ||
	    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &log, &done) != SQLITE_OK)
		return -1;
	return log - done;
}

/* ---- subject access ---- */

static void
s_read_subject(sqlite3_stmt *st, subject_row_t *r)
{
	memset(r, 0, sizeof(*r));
	s_col_blob(st, 0, r->event_id, 16);
	r->sent = sqlite3_column_int(st, 1) != 0;
	s_col_text(st, 2, r->partner_oin, sizeof(r->partner_oin));
	r->event_type = sqlite3_column_int(st, 3);
	s_col_text(st, 4, r->purpose, sizeof(r->purpose));
	s_col_text(st, 5, r->legal_basis, sizeof(r->legal_basis));
	s_col_text(st, 6, r->fields, sizeof(r->fields));
	r->at_ms = s_col_u64(st, 7);
	r->state = sqlite3_column_int(st, 8);
	r->reason = sqlite3_column_int(st, 9);
	r->retention_until_ms = s_col_u64(st, 10);
	r->destroyed = sqlite3_column_int(st, 11) != 0;
	r->has_reply_to = s_col_blob(st, 12, r->in_reply_to, 16);
	r->settled_ms = s_col_u64(st, 13);
}

int
store_subject(store_t *s, const char *local, store_subject_cb cb, void *arg,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_SUBJECT];
	subject_row_t row;
	int rc, ret = -1;

	if (s_bind_text(st, 1, local, strlen(local) + 1) != SQLITE_OK) {
		s_fail(s, err, "subject");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s_read_subject(st, &row);
		if (cb(arg, &row) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		s_fail(s, err, "subject");
		goto out;
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

/* ---- audit log ---- */

int
store_audit_append(store_t *s, uint64_t seq, const uint8_t *entry,
    size_t len, const uint8_t leaf[32], kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_AUDIT_APPEND];
	int ret = -1;

	if (s_bind_u64(st, 1, seq) != SQLITE_OK ||
	    s_bind_blob(st, 2, entry, len) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, leaf, 32, SQLITE_STATIC) != SQLITE_OK ||
	    s_step_done(s, st, "audit append", err) != 0) {
		if (err != NULL && err->code == KP_OK)
			s_fail(s, err, "audit append");
		goto out;
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

/* Run once at start (ledger_open checks the log), so prepared here rather
 * than kept in s->st. */
int
store_audit_entries(store_t *s, int (*cb)(void *arg, uint64_t seq,
    const uint8_t *entry, size_t len, const uint8_t leaf[32]), void *arg,
    kp_err_t *err)
{
	sqlite3_stmt *st = NULL;
	uint8_t leaf[32];
	int rc, ret = -1;

	if (sqlite3_prepare_v2(s->db, "SELECT seq, entry, leaf FROM audit "
	    "ORDER BY seq", -1, &st, NULL) != SQLITE_OK) {
		s_fail(s, err, "audit entries");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s_col_blob(st, 2, leaf, 32);
		if (cb(arg, s_col_u64(st, 0), sqlite3_column_blob(st, 1),
		    (size_t)sqlite3_column_bytes(st, 1), leaf) != 0) {
			kp_fail(err, KP_ERR_IO, "store: audit log is not "
			    "contiguous at seq %llu", (unsigned long long)
			    s_col_u64(st, 0));
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		s_fail(s, err, "audit entries");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

static int
s_head_bind(sqlite3_stmt *st, int first, uint64_t size, uint64_t time_ms,
    const uint8_t root[32], const uint8_t sig[64])
{
	int rc = 0;

	rc |= s_bind_u64(st, first, size);
	rc |= s_bind_u64(st, first + 1, time_ms);
	rc |= sqlite3_bind_blob(st, first + 2, root, 32, SQLITE_STATIC);
	rc |= sqlite3_bind_blob(st, first + 3, sig, 64, SQLITE_STATIC);
	return rc;
}

int
store_head_put(store_t *s, uint64_t size, uint64_t time_ms,
    const uint8_t root[32], const uint8_t sig[64], kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_HEAD_PUT];
	int ret = 0;

	if (s_head_bind(st, 1, size, time_ms, root, sig) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = s_fail(s, err, "tree head");
	s_done(st);
	return ret;
}

/* The newest head of statement `which` (own, or one partner's). */
static int
s_head_last(store_t *s, int which, const char *oin, uint64_t *size,
    uint64_t *time_ms, uint8_t root[32], uint8_t sig[64], bool *found,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[which];
	int ret = -1;

	if (oin != NULL && s_bind_text(st, 1, oin, 21) != SQLITE_OK) {
		s_fail(s, err, "last head");
		goto out;
	}
	if (s_step_one(s, st, "last head", found, err) != 0)
		goto out;
	if (*found) {
		*size = s_col_u64(st, 0);
		*time_ms = s_col_u64(st, 1);
		s_col_blob(st, 2, root, 32);
		s_col_blob(st, 3, sig, 64);
	}
	ret = 0;
out:
	s_done(st);
	return ret;
}

int
store_head_last(store_t *s, uint64_t *size, uint64_t *time_ms,
    uint8_t root[32], uint8_t sig[64], bool *found, kp_err_t *err)
{
	return s_head_last(s, ST_HEAD_LAST, NULL, size, time_ms, root, sig,
	    found, err);
}

int
store_witness_put(store_t *s, const char *oin, uint64_t size,
    uint64_t time_ms, const uint8_t root[32], const uint8_t sig[64],
    uint64_t now, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_WITNESS_PUT];
	int ret = 0;

	if (s_bind_text(st, 1, oin, 21) != SQLITE_OK ||
	    s_head_bind(st, 2, size, time_ms, root, sig) != SQLITE_OK ||
	    s_bind_u64(st, 6, now) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = s_fail(s, err, "witness");
	s_done(st);
	return ret;
}

int
store_witness_last(store_t *s, const char *oin, uint64_t *size,
    uint64_t *time_ms, uint8_t root[32], uint8_t sig[64], bool *found,
    kp_err_t *err)
{
	return s_head_last(s, ST_WITNESS_LAST, oin, size, time_ms, root, sig,
	    found, err);
}

int
store_meta_put(store_t *s, const char *key, const char *value, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_META_PUT];
	int ret = 0;

	if (s_bind_text(st, 1, key, strlen(key) + 1) != SQLITE_OK ||
	    s_bind_text(st, 2, value, strlen(value) + 1) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = s_fail(s, err, "audit meta");
	s_done(st);
	return ret;
}

/* ---- expectations ---- */

static void
s_read_expect(sqlite3_stmt *st, expect_row_t *r)
{
	memset(r, 0, sizeof(*r));
	s_col_blob(st, 0, r->event_id, 16);
	s_col_text(st, 1, r->case_local, sizeof(r->case_local));
	s_col_text(st, 2, r->partner_oin, sizeof(r->partner_oin));
	s_col_blob(st, 3, r->case_ref, 32);
	r->sent_type = sqlite3_column_int(st, 4);
	r->answer_type = sqlite3_column_int(st, 5);
	r->route = sqlite3_column_int(st, 6);
	r->sent_ms = s_col_u64(st, 7);
	r->due_ms = s_col_u64(st, 8);
	r->answered = s_col_blob(st, 9, r->answered_by, 16);
	r->answered_ms = s_col_u64(st, 10);
	r->reminders = (uint32_t)sqlite3_column_int(st, 11);
	r->interim = s_col_blob(st, 12, r->interim_by, 16);
	r->interim_ms = s_col_u64(st, 13);
	r->first_due_ms = r->interim ? s_col_u64(st, 14) : r->due_ms;
}

int
store_expect_put(store_t *s, const expect_row_t *r, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_EXP_PUT];
	int rc = 0, ret = 0;

	rc |= sqlite3_bind_blob(st, 1, r->event_id, 16, SQLITE_STATIC);
	rc |= s_bind_text(st, 2, r->case_local, sizeof(r->case_local));
	rc |= s_bind_text(st, 3, r->partner_oin, sizeof(r->partner_oin));
	rc |= sqlite3_bind_blob(st, 4, r->case_ref, 32, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 5, r->sent_type);
	rc |= sqlite3_bind_int(st, 6, r->answer_type);
	rc |= sqlite3_bind_int(st, 7, r->route);
	rc |= s_bind_u64(st, 8, r->sent_ms);
	rc |= s_bind_u64(st, 9, r->due_ms);
	if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
		ret = s_fail(s, err, "expectation");
	s_done(st);
	return ret;
}

/* One row of a bound expectations SELECT; *found. */
static int
s_expect_one(store_t *s, sqlite3_stmt *st, expect_row_t *row, bool *found,
    kp_err_t *err)
{
	int ret = s_step_one(s, st, "expectation", found, err);

	if (ret == 0 && *found)
		s_read_expect(st, row);
	s_done(st);
	return ret;
}

/* The open expectation an answer is about: by in_reply_to, else the oldest
 * open one on the same pseudonym.  *found. */
static int
s_expect_find(store_t *s, const char *partner, int answer_type,
    const uint8_t *in_reply_to, const uint8_t case_ref[32], expect_row_t *row,
    bool *found, kp_err_t *err)
{
	sqlite3_stmt *st;

	*found = false;
	if (in_reply_to != NULL) {
		st = s->st[ST_EXP_BY_REPLY];
		if (sqlite3_bind_blob(st, 1, in_reply_to, 16, SQLITE_STATIC) ||
		    s_bind_text(st, 2, partner, 21) ||
		    sqlite3_bind_int(st, 3, answer_type) ||
		    s_expect_one(s, st, row, found, err) != 0)
			return s_fail(s, err, "expectation by reply");
	}
	if (!*found) {
		st = s->st[ST_EXP_BY_REF];
		if (s_bind_text(st, 1, partner, 21) ||
		    sqlite3_bind_blob(st, 2, case_ref, 32, SQLITE_STATIC) ||
		    sqlite3_bind_int(st, 3, answer_type) ||
		    s_expect_one(s, st, row, found, err) != 0)
			return s_fail(s, err, "expectation by case");
	}
	return 0;
}

int
store_expect_interim(store_t *s, const char *partner, int answer_type,
    const uint8_t *in_reply_to, const uint8_t case_ref[32],
    const uint8_t interim_by[16], uint64_t at, uint64_t new_due_ms,
    expect_row_t *row, bool *found, kp_err_t *err)
{
	sqlite3_stmt *st;
	int ret = 0;

	if (s_expect_find(s, partner, answer_type, in_reply_to, case_ref, row,
	    found, err) != 0)
		return -1;
	if (!*found)
		return 0;
	st = s->st[ST_EXP_INTERIM];
	if (sqlite3_bind_blob(st, 1, row->event_id, 16, SQLITE_STATIC) ||
	    sqlite3_bind_blob(st, 2, interim_by, 16, SQLITE_STATIC) ||
	    s_bind_u64(st, 3, at) || s_bind_u64(st, 4, new_due_ms) ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = s_fail(s, err, "interim answer");
	s_done(st);
	return ret;
}

int
store_expect_answer(store_t *s, const char *partner, int answer_type,
    const uint8_t *in_reply_to, const uint8_t case_ref[32],
    const uint8_t answered_by[16], uint64_t at, expect_row_t *row,
    bool *found, kp_err_t *err)
{
	sqlite3_stmt *st;
	int ret = 0;

	if (s_expect_find(s, partner, answer_type, in_reply_to, case_ref, row,
	    found, err) != 0)
		return -1;
	if (!*found)
		return 0;
	st = s->st[ST_EXP_CLOSE];
	if (sqlite3_bind_blob(st, 1, row->event_id, 16, SQLITE_STATIC) ||
	    sqlite3_bind_blob(st, 2, answered_by, 16, SQLITE_STATIC) ||
	    s_bind_u64(st, 3, at) || sqlite3_step(st) != SQLITE_DONE)
		ret = s_fail(s, err, "close expectation");
	s_done(st);
	return ret;
}

static int
s_walk_expect(store_t *s, sqlite3_stmt *st, store_expect_cb cb, void *arg,
    kp_err_t *err)
{
	expect_row_t row;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s_read_expect(st, &row);
		if (cb(arg, &row) != 0)
			break;
	}
	s_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return s_fail(s, err, "expectations");
	return 0;
}

int
store_expect_newly_overdue(store_t *s, uint64_t now, store_expect_cb cb,
    void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_EXP_OVERDUE];

	if (s_bind_u64(st, 1, now) != SQLITE_OK) {
		s_done(st);
		return s_fail(s, err, "overdue");
	}
	return s_walk_expect(s, st, cb, arg, err);
}

int
store_expect_list(store_t *s, const char *case_local, store_expect_cb cb,
    void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[case_local ? ST_EXP_BY_CASE : ST_EXP_ALL];

	if (case_local != NULL && s_bind_text(st, 1, case_local,
	    strlen(case_local) + 1) != SQLITE_OK) {
		s_done(st);
		return s_fail(s, err, "expectations");
	}
	return s_walk_expect(s, st, cb, arg, err);
}

int
store_expect_reminded(store_t *s, const uint8_t event_id[16], kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_EXP_REMINDED];
	int ret = 0;

	if (sqlite3_bind_blob(st, 1, event_id, 16, SQLITE_STATIC) ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = s_fail(s, err, "reminder");
	s_done(st);
	return ret;
}

int
store_cases(store_t *s, uint64_t at, int (*cb)(void *, const char *,
    uint32_t, uint64_t), void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_CASES];
	char local[65];
	int rc;

	if (s_bind_u64(st, 1, at) != SQLITE_OK) {
		s_done(st);
		return s_fail(s, err, "cases");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s_col_text(st, 0, local, sizeof(local));
		if (cb(arg, local, (uint32_t)sqlite3_column_int(st, 1),
		    s_col_u64(st, 2)) != 0)
			break;
	}
	s_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return s_fail(s, err, "cases");
	return 0;
}

int
store_link_file(store_t *s, const char *partner_oin,
    const uint8_t case_ref[32], const char *local, uint32_t *n,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_LINK_FILE];
	int ret = 0;

	*n = 0;
	if (s_bind_text(st, 1, partner_oin, 21) ||
	    sqlite3_bind_blob(st, 2, case_ref, 32, SQLITE_STATIC) ||
	    s_bind_text(st, 3, local, strlen(local) + 1) ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = s_fail(s, err, "link file");
	else
		*n = (uint32_t)sqlite3_changes(s->db);
	s_done(st);
	return ret;
}

int
store_absence_put(store_t *s, const char *case_local, int absence,
    uint64_t at, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_ABS_PUT];
	int ret = 0;

	if (s_bind_text(st, 1, case_local, strlen(case_local) + 1) ||
	    sqlite3_bind_int(st, 2, absence) || s_bind_u64(st, 3, at) ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = s_fail(s, err, "absence outcome");
	s_done(st);
	return ret;
}

int
store_absence_get(store_t *s, const char *case_local, int *absence,
    uint64_t *at, bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_ABS_GET];
	int ret;

	*found = false;
	if (s_bind_text(st, 1, case_local, strlen(case_local) + 1) !=
	    SQLITE_OK) {
		s_done(st);
		return s_fail(s, err, "absence outcome");
	}
	ret = s_step_one(s, st, "absence outcome", found, err);
	if (ret == 0 && *found) {
		*absence = sqlite3_column_int(st, 0);
		*at = s_col_u64(st, 1);
	}
	s_done(st);
	return ret;
}

/* ---- savepoints: one request inside a batch ---- */

static int
s_exec(store_t *s, int which, const char *what, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[which];
	int rc = sqlite3_step(st);

	s_done(st);
	return rc == SQLITE_DONE ? 0 : s_fail(s, err, what);
}

int
store_savepoint(store_t *s, kp_err_t *err)
{
	return s_exec(s, ST_SAVEPOINT, "savepoint", err);
}

int
store_release(store_t *s, kp_err_t *err)
{
	return s_exec(s, ST_RELEASE, "release", err);
}

int
store_undo(store_t *s, kp_err_t *err)
{
	if (s_exec(s, ST_UNDO, "rollback to savepoint", err) != 0)
		return -1;
	return store_release(s, err);
}

bool
store_in_txn(store_t *s)
{
	return sqlite3_get_autocommit(s->db) == 0;
}

/* The connection, for the statements of store_webhook.c (its own table,
 * in the caller's transactions). */
sqlite3 *
store_sqlite(store_t *s)
{
	return s->db;
}
