/*
 * store_outbox.c: the outbox table, events we sent until their receipt
 * settles them (see store.h, store_int.h).
 *
 * Invariants:
 *  1. An outbox row is born PENDING in store_outbox_insert (attempts and
 *     next_attempt_ms as the caller scheduled the first send,
 *     updated_ms = created_ms, no receipt), its envelope beside it in
 *     outbox_env (same seq).  seq is an AUTOINCREMENT rowid: it only
 *     grows and is never reused.
 *  2. PENDING -> DELIVERED | REJECTED only in store_outbox_settle, and only
 *     when to_oin equals the receipt's issuer and envelope_digest matches;
 *     the UPDATE writes state and updated_ms, and the same settle inserts
 *     the receipt (bytes, receipt_digest, reason, receipted_ms) into
 *     outbox_receipts and deletes the envelope from outbox_env.  Side
 *     tables since schema version 9 (store_schema.c): the row keeps its
 *     size, so its page is not split or written twice.
 *  3. PENDING -> DEAD only in store_outbox_expire, when expires_ms <= now;
 *     DEAD -> DELIVERED | REJECTED on a late verified receipt (2).
 *  4. store_outbox_schedule changes only attempts and next_attempt_ms, and
 *     only of a PENDING row; it records a resend that was made (outbound.c),
 *     never a send that was not, and nothing else rewrites a pending row's
 *     schedule: a partner's outage and the catch-up after it
 *     (store_outbox_after, a read) leave its pending rows as they were.
 *  5. Nothing else changes a settled (DELIVERED, REJECTED, DEAD) row, and no
 *     row is deleted.  Every UPDATE of the outbox carries "state = 1" in its
 *     WHERE clause, so a late race (a schedule after a receipt) loses
 *     quietly instead of rewriting history — except store_outbox_settle,
 *     which also settles a DEAD row: a verified receipt that arrives just
 *     after expiry proves delivery, and the log must say so.  (Retention,
 *     store_retention.c, only drops a settled row's envelope and key, and
 *     at the end of metadata retention its case, route, fields and
 *     idempotency key.)
 *  6. Each of these changes of state is counted where it is made
 *     (sq_count, store_counts.c): the counts by state are kept, not
 *     counted when asked, so a new way to change a row's state must count
 *     it too.
 *
 * case_sealed and route_sealed hold the case reference and route sealed
 * at rest (store_seal.c); the statements seal and open them, so rows in
 * and out of this file carry the clear values.  link_id is the row's case
 * link (links.id), by which a look-up by case finds it (store_cases.c);
 * it never changes but to NULL when metadata retention clears the case.
 *
 * store_outbox_expire passes env = NULL to its callback: it uses UPDATE ...
 * RETURNING, which buffers every returned row, and after a long outage that
 * could be many envelopes for a callback that only needs the row.  All
 * changes happen in the first step, so a callback that stops the walk does
 * not stop the expiry.
 *
 * A settle is three statements (the UPDATE, the receipt's INSERT, the
 * envelope's DELETE) and an insert two: callers run them in one
 * transaction (kpd_begin: outbound.c, apisrv.c), whose rollback takes
 * back a half-done one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_int.h"
#include "util.h"

/* Column lists shared by the SELECTs and s_read_outbox: the outbox row
 * with the receipt's digest, reason and time between (RCPT).  Since
 * schema version 9 these are in outbox_receipts (store_schema.c): the
 * readers LEFT JOIN it (OB_RCPT_JOIN), so a row without a receipt reads
 * NULL, 0, 0, as its own columns did before. */
#define OB_COLS_OF(rcpt) "outbox.seq, event_id, event_type, to_oin, " \
	"kp_case_open(to_oin, case_sealed), case_ref, " \
	"in_reply_to, state, attempts, created_ms, expires_ms, " \
	"next_attempt_ms, updated_ms, envelope_digest, " rcpt ", " \
	"purpose, legal_basis, fields, " \
	"retention_until_ms, event_key, kp_route_open(event_id, route_sealed)"
#define OB_COLS OB_COLS_OF("r.receipt_digest, coalesce(r.reason, 0), " \
	"coalesce(r.receipted_ms, 0)")
#define OB_RCPT_JOIN " LEFT JOIN outbox_receipts r ON r.seq = outbox.seq"
#define OB_NCOLS 23
/* The columns a send reads (store_outbox_after, _pending): what
 * outbound.c needs to send or resend a row and record it, the envelope
 * last; s_read_send reads them and leaves the rest of the row zero.
 * Reading all of OB_COLS (without opening the case reference and route)
 * was 3% of a sender's loop in a drain, for fields no send looks at. */
#define OB_SEND_COLS "outbox.seq, event_id, to_oin, state, attempts, " \
	"event_key, e.envelope"
#define OB_SEND_ENV 6
/* the envelope of a pending row, in outbox_env since schema version 9,
 * looked up by its key (seq) after the row; LEFT: the row is read as
 * before even if it had none (a send then has no envelope, as an empty
 * one was sent before) */
#define OB_ENV_JOIN " LEFT JOIN outbox_env e ON e.seq = outbox.seq"

/* Statements of this file, prepared once by store_open (store.c). */
const char *const store_outbox_sql[ST_COUNT] = {
	/* the case reference and route sealed at rest (store_seal.c) */
	[ST_OB_INSERT] = "INSERT INTO outbox (event_id, event_type, to_oin, "
	    "case_sealed, case_ref, in_reply_to, state, attempts, created_ms, "
	    "expires_ms, next_attempt_ms, updated_ms, envelope_digest, "
	    "purpose, legal_basis, "
	    "fields, retention_until_ms, event_key, route_sealed, "
	    "idem_client, idem_key, idem_hash, link_id) VALUES "
	    "(?1, ?2, ?3, " CASE_SEALED_OF("?27", "?5", "?4") ", ?5, ?6, ?7, "
	    "?8, ?9, ?10, ?11, ?12, ?13, ?17, ?18, ?19, ?20, "
	    "?21, kp_route_seal(?1, ?22), ?24, ?25, ?26, "
	    LINK_OF("?27", "?5", "?4") ")",
	/* the envelope sealed at rest, beside its row (schema version 9):
	 * deleted at the settle, so the row's page is not written again */
	[ST_OB_ENV_PUT] = "INSERT INTO outbox_env (seq, envelope) VALUES "
	    "(?1, ?2)",
	[ST_OB_ENV_DROP] = "DELETE FROM outbox_env WHERE seq = ?1",
	/* the receipt of a settled row (schema version 9): one new row, at
	 * the end of the table (seq grows with time nearly) */
	[ST_OB_RCPT_PUT] = "INSERT INTO outbox_receipts (seq, reason, "
	    "receipt_digest, receipt, receipted_ms) VALUES (?1, ?2, ?3, ?4, "
	    "?5)",
	/* a link's catch-up (outbound.c): the partner's pending rows after its
	 * cursor in seq order, by outbox_pending (to_oin, state; pending rows
	 * only), whose entries are ordered by rowid = seq within a partner:
	 * an index range that reads only the rows it returns, however large
	 * the backlog or the history */
	[ST_OB_DUE] = "SELECT " OB_SEND_COLS " FROM outbox "
	    "INDEXED BY outbox_pending" OB_ENV_JOIN " WHERE to_oin = ?1 AND "
	    "state = 1 AND outbox.seq > ?2 ORDER BY outbox.seq LIMIT ?3",
	[ST_OB_SCHEDULE] = "UPDATE outbox SET attempts = ?2, "
	    "next_attempt_ms = ?3 WHERE event_id = ?1 AND state = 1",
	/* a settle without a hint, or whose row is not pending (dead, or
	 * settled already) or not the hint's, finds its row, then changes it
	 * by seq (the common settle is ST_OB_SETTLE_ONE): UPDATE ...
	 * RETURNING would open and close a temporary B-tree for every
	 * receipt to buffer its one row (~7% of the sender in a drain) */
	[ST_OB_SETTLE_FIND] = "SELECT seq, event_type, purpose, legal_basis, "
	    "case_ref, state FROM outbox WHERE event_id = ?1 AND to_oin = ?2 AND "
	    "envelope_digest = ?3 AND state IN (1, 4)",
	/* the same by the seq the caller read the row with (outbound.c keeps
	 * it with the event in flight): one look-up of the table by its key
	 * instead of event_id's index and then the table */
	[ST_OB_SETTLE_SEQ] = "SELECT seq, event_type, purpose, legal_basis, "
	    "case_ref, state FROM outbox WHERE seq = ?4 AND event_id = ?1 AND "
	    "to_oin = ?2 AND envelope_digest = ?3 AND state IN (1, 4)",
	/* the row's state and time only (its receipt: ST_OB_RCPT_PUT, its
	 * envelope dropped: ST_OB_ENV_DROP), so it keeps its size and its
	 * page does not split */
	[ST_OB_SETTLE] = "UPDATE outbox SET state = ?2, updated_ms = ?3 "
	    "WHERE seq = ?1 AND state IN (1, 4)",
	/* the common settle in one statement: a pending row by the seq the
	 * caller read it with.  kp_settle_note hands the row's audit fields
	 * to the settle and gives updated_ms its value: SQLite evaluates the
	 * SET clause only for the row it changes.  (RETURNING would buffer
	 * the row in a temporary B-tree: twice the instructions of the
	 * SELECT + UPDATE it replaces, PERFORMANCE.md.) */
	[ST_OB_SETTLE_ONE] = "UPDATE outbox SET state = ?5, "
	    "updated_ms = kp_settle_note(?6, event_type, "
	    "purpose, legal_basis, case_ref) WHERE seq = ?4 AND "
	    "event_id = ?1 AND to_oin = ?2 AND envelope_digest = ?3 AND "
	    "state = 1",
	/* by the partial index outbox_expiry (store_schema.c): the pending
	 * rows that expired, not a walk over every pending row.  RETURNING
	 * cannot join: a pending row has no receipt, so its receipt columns
	 * are those of none (NULL, 0, 0) */
	[ST_OB_EXPIRE] = "UPDATE outbox INDEXED BY outbox_expiry SET state = 4, "
	    "updated_ms = ?1 WHERE state = 1 AND expires_ms <= ?1 RETURNING "
	    OB_COLS_OF("NULL, 0, 0"),
	[ST_OB_GET] = "SELECT " OB_COLS " FROM outbox" OB_RCPT_JOIN " WHERE "
	    "event_id = ?1",
	[ST_OB_BY_IDEM] = "SELECT event_id, idem_hash FROM outbox WHERE "
	    "idem_client = ?1 AND idem_key = ?2",
	[ST_OB_LIST] = "SELECT " OB_COLS " FROM outbox" OB_RCPT_JOIN " WHERE "
	    "outbox.seq > ?1 ORDER BY outbox.seq LIMIT ?2",
	/* the row by event_id's index, then its receipt by its key */
	[ST_OB_RECEIPT] = "SELECT r.receipt FROM outbox CROSS JOIN "
	    "outbox_receipts r ON r.seq = outbox.seq WHERE event_id = ?1 AND "
	    "r.receipt IS NOT NULL",
	[ST_OB_PENDING] = "SELECT " OB_SEND_COLS " FROM outbox" OB_ENV_JOIN
	    " WHERE event_id = ?1 AND state = 1",
};

/* Parameters ?1..?27 of ST_OB_INSERT (?14..?16 and ?23, the receipt
 * and the envelope of schema versions 1 to 8, are in side tables now). */
static int
s_bind_outbox(sqlite3_stmt *st, const outbox_row_t *r)
{
	int rc = 0;

	rc |= sqlite3_bind_blob(st, 1, r->event_id, 16, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 2, r->event_type);
	rc |= sq_bind_text(st, 3, r->to_oin, sizeof(r->to_oin));
	rc |= sq_bind_text(st, 4, r->case_local, sizeof(r->case_local));
	rc |= sqlite3_bind_blob(st, 5, r->case_ref, 32, SQLITE_STATIC);
	if (r->has_reply_to)
		rc |= sqlite3_bind_blob(st, 6, r->in_reply_to, 16,
		    SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 7, r->state);
	rc |= sqlite3_bind_int64(st, 8, r->attempts);
	rc |= sq_bind_u64(st, 9, r->created_ms);
	rc |= sq_bind_u64(st, 10, r->expires_ms);
	rc |= sq_bind_u64(st, 11, r->next_attempt_ms);
	rc |= sq_bind_u64(st, 12, r->updated_ms);
	rc |= sqlite3_bind_blob(st, 13, r->envelope_digest, 32, SQLITE_STATIC);
	rc |= sq_bind_text(st, 17, r->purpose, sizeof(r->purpose));
	rc |= sq_bind_text(st, 18, r->legal_basis, sizeof(r->legal_basis));
	rc |= sq_bind_text(st, 19, r->fields, sizeof(r->fields));
	rc |= sq_bind_u64(st, 20, r->retention_until_ms);
	if (r->has_event_key)
		rc |= sqlite3_bind_blob(st, 21, r->event_key,
		    STORE_KEY_WRAP_LEN, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 22, r->route);
	if (r->has_idem) {
		rc |= sq_bind_text(st, 24, r->idem_client, sizeof(r->idem_client));
		rc |= sq_bind_text(st, 25, r->idem_key, sizeof(r->idem_key));
		rc |= sqlite3_bind_blob(st, 26, r->idem_hash, 32, SQLITE_STATIC);
	}
	rc |= sq_bind_u64(st, 27, r->link_id);
	return rc == SQLITE_OK ? 0 : -1;
}

/* Columns OB_COLS (0..OB_NCOLS-1). */
static void
s_read_outbox(sqlite3_stmt *st, outbox_row_t *r)
{
	sqlite3_int64 attempts;

	memset(r, 0, sizeof(*r));
	r->seq = sq_col_u64(st, 0);
	sq_col_blob(st, 1, r->event_id, 16);
	r->event_type = sqlite3_column_int(st, 2);
	sq_col_text(st, 3, r->to_oin, sizeof(r->to_oin));
	sq_col_text(st, 4, r->case_local, sizeof(r->case_local));
	sq_col_blob(st, 5, r->case_ref, 32);
	r->has_reply_to = sq_col_blob(st, 6, r->in_reply_to, 16);
	r->state = sqlite3_column_int(st, 7);
	attempts = sqlite3_column_int64(st, 8);
	r->attempts = attempts < 0 ? 0 : attempts > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)attempts;
	r->created_ms = sq_col_u64(st, 9);
	r->expires_ms = sq_col_u64(st, 10);
	r->next_attempt_ms = sq_col_u64(st, 11);
	r->updated_ms = sq_col_u64(st, 12);
	sq_col_blob(st, 13, r->envelope_digest, 32);
	r->has_receipt = sq_col_blob(st, 14, r->receipt_digest, 32);
	r->reason = sqlite3_column_int(st, 15);
	r->receipted_ms = sq_col_u64(st, 16);
	sq_col_text(st, 17, r->purpose, sizeof(r->purpose));
	sq_col_text(st, 18, r->legal_basis, sizeof(r->legal_basis));
	sq_col_text(st, 19, r->fields, sizeof(r->fields));
	r->retention_until_ms = sq_col_u64(st, 20);
	r->has_event_key = sq_col_blob(st, 21, r->event_key,
	    STORE_KEY_WRAP_LEN);
	r->route = sqlite3_column_int(st, 22);
}

/* Columns OB_SEND_COLS but the envelope; the rest of r zero. */
static void
s_read_send(sqlite3_stmt *st, outbox_row_t *r)
{
	sqlite3_int64 attempts;

	r->seq = sq_col_u64(st, 0);
	sq_col_blob(st, 1, r->event_id, 16);
	sq_col_text(st, 2, r->to_oin, sizeof(r->to_oin));
	r->state = sqlite3_column_int(st, 3);
	attempts = sqlite3_column_int64(st, 4);
	r->attempts = attempts < 0 ? 0 : attempts > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)attempts;
	r->has_event_key = sq_col_blob(st, 5, r->event_key,
	    STORE_KEY_WRAP_LEN);
}

/* Walk the rows of a bound statement: OB_SEND_COLS with the envelope if
 * for_send, else OB_COLS without.  The statement is reset on return. */
static int
s_walk_outbox(store_t *s, sqlite3_stmt *st, bool for_send, store_outbox_cb cb,
    void *arg, const char *what, kp_err_t *err)
{
	outbox_row_t row;
	const void *env = NULL;
	size_t len = 0;
	int rc, ret = -1;

	if (for_send)
		memset(&row, 0, sizeof(row));  /* once: each row sets the same */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (for_send) {
			s_read_send(st, &row);
			env = sqlite3_column_blob(st, OB_SEND_ENV);
			len = (size_t)sqlite3_column_bytes(st, OB_SEND_ENV);
		} else
			s_read_outbox(st, &row);
		if (cb != NULL && cb(arg, &row, env, len) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sq_fail(s, err, what);
		goto out;
	}
	ret = 0;
out:
	sq_done(st);
	return ret;
}

/* The envelope of the new row seq, beside it in outbox_env. */
static int
s_env_put(store_t *s, uint64_t seq, const uint8_t *env, size_t env_len,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_ENV_PUT];

	return sq_run_u64(s, st, seq, sq_bind_blob(st, 2, env != NULL ? env :
	    (const uint8_t *)"", env_len), "outbox insert", err);
}

/* What a settle of row seq writes beside the row: its receipt into
 * outbox_receipts, and its envelope deleted from outbox_env (none for a
 * dead row whose retention ended: store_purge). */
static int
s_settle_rest(store_t *s, uint64_t seq, int reason,
    const uint8_t receipt_digest[32], const uint8_t *receipt, size_t rlen,
    uint64_t now, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_RCPT_PUT];
	int rc = 0;

	rc |= sqlite3_bind_int(st, 2, reason);
	rc |= sqlite3_bind_blob(st, 3, receipt_digest, 32, SQLITE_STATIC);
	rc |= sq_bind_blob(st, 4, receipt != NULL ? receipt :
	    (const uint8_t *)"", rlen);
	rc |= sq_bind_u64(st, 5, now);
	if (sq_run_u64(s, st, seq, rc, "outbox settle", err) != 0)
		return -1;
	return sq_run_u64(s, s->st[ST_OB_ENV_DROP], seq, SQLITE_OK,
	    "outbox settle", err);
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
	if (sq_link_of(s, row->to_oin, row->case_local, row->case_ref,
	    &row->link_id, err) != 0)
		goto out;
	if (s_bind_outbox(st, row) != 0) {
		sq_fail(s, err, "outbox insert");
		goto out;
	}
	if (sq_step_insert(s, st, row->event_id, "outbox", &row->seq,
	    err) != 0 || s_env_put(s, row->seq, env, env_len, err) != 0)
		goto out;
	sq_count(s, STORE_PENDING, 1);
	if (sq_partner_seen(s, row->to_oin, err) != 0)
		goto out;
	ret = 0;
out:
	sq_done(st);
	return ret;
}

int
store_outbox_after(store_t *s, const char *oin, uint64_t after_seq,
    size_t max, store_outbox_cb cb, void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_DUE];

	if (max == 0)
		return 0;
	if (sq_bind_text(st, 1, oin, KP_OIN_LEN + 1) != SQLITE_OK ||
	    sq_bind_u64(st, 2, after_seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, sq_limit(max)) != SQLITE_OK) {
		sq_fail(s, err, "outbox catch-up");
		sq_done(st);
		return -1;
	}
	return s_walk_outbox(s, st, true, cb, arg, "outbox catch-up", err);
}

int
store_outbox_schedule(store_t *s, const uint8_t id[16], uint32_t attempts,
    uint64_t next_ms, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_SCHEDULE];
	int ret = -1;

	if (sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, attempts) != SQLITE_OK ||
	    sq_bind_u64(st, 3, next_ms) != SQLITE_OK) {
		sq_fail(s, err, "outbox schedule");
		goto out;
	}
	ret = sq_step_done(s, st, "outbox schedule", err);
out:
	sq_done(st);
	return ret;
}

/* The row a receipt settles (event_id is UNIQUE: at most one), with
 * what its audit entry needs; by *seq if not 0 (a hint: the row must
 * still have event id).  OUT: *seq, and *found. */
static int
s_settle_find(store_t *s, const uint8_t id[16], const char *issuer_oin,
    const uint8_t envelope_digest[32], uint64_t *seq, int *state,
    outbox_row_t *settled, bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[*seq != 0 ? ST_OB_SETTLE_SEQ :
	    ST_OB_SETTLE_FIND];
	int rc = 0, ret = -1;

	rc |= sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
	rc |= sq_bind_text(st, 2, issuer_oin, KP_OIN_LEN + 1);
	rc |= sqlite3_bind_blob(st, 3, envelope_digest, 32, SQLITE_STATIC);
	if (*seq != 0)
		rc |= sq_bind_u64(st, 4, *seq);
	if (rc != SQLITE_OK) {
		sq_fail(s, err, "outbox settle");
		goto out;
	}
	if (sq_step_one(s, st, "outbox settle", found, err) != 0)
		goto out;
	if (*found) {
		*seq = sq_col_u64(st, 0);
		*state = sqlite3_column_int(st, 5);
		if (settled != NULL) {
			settled->event_type = sqlite3_column_int(st, 1);
			sq_col_text(st, 2, settled->purpose,
			    sizeof(settled->purpose));
			sq_col_text(st, 3, settled->legal_basis,
			    sizeof(settled->legal_basis));
			(void)sq_col_blob(st, 4, settled->case_ref, 32);
		}
	}
	ret = 0;
out:
	sq_done(st);
	return ret;
}

int
store_outbox_settle(store_t *s, const uint8_t id[16], const char *issuer_oin,
    const uint8_t envelope_digest[32], int state, int reason,
    const uint8_t receipt_digest[32], const uint8_t *receipt, size_t rlen,
    uint64_t now, bool *applied, outbox_row_t *settled, kp_err_t *err)
{
	return store_outbox_settle_seq(s, id, 0, issuer_oin, envelope_digest,
	    state, reason, receipt_digest, receipt, rlen, now, applied,
	    settled, err);
}

/* A text value into dst (cap bytes, cut and terminated). */
static void
s_value_text(sqlite3_value *v, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_value_text(v);

	sq_copy_text(t, (size_t)sqlite3_value_bytes(v), dst, cap);
}

/* kp_settle_note(now, event_type, purpose, legal_basis, case_ref), only
 * in ST_OB_SETTLE_ONE's SET clause: notes the settled row's audit fields
 * into s->settle_note (when a settle asked for them) and returns now. */
static void
s_settle_note(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	store_t *s = sqlite3_user_data(ctx);
	outbox_row_t *n = s->settle_note;
	const void *p;
	size_t got;

	(void)argc;
	s->settle_noted++;
	if (n != NULL) {
		n->event_type = sqlite3_value_int(argv[1]);
		s_value_text(argv[2], n->purpose, sizeof(n->purpose));
		s_value_text(argv[3], n->legal_basis, sizeof(n->legal_basis));
		memset(n->case_ref, 0, sizeof(n->case_ref));
		p = sqlite3_value_blob(argv[4]);
		got = (size_t)sqlite3_value_bytes(argv[4]);
		if (p != NULL)
			memcpy(n->case_ref, p, got < 32 ? got : 32);
	}
	sqlite3_result_value(ctx, argv[0]);
}

int
sq_outbox_register(store_t *s, kp_err_t *err)
{
	/* direct only: the schema (a trigger, a view) cannot call it */
	if (sqlite3_create_function_v2(s->db, "kp_settle_note", 5,
	    SQLITE_UTF8 | SQLITE_DIRECTONLY, s, s_settle_note, NULL, NULL,
	    NULL) != SQLITE_OK)
		return sq_open_fail(s, err, "register functions");
	return 0;
}

/* A pending row settled by seq in one statement (ST_OB_SETTLE_ONE).
 * OUT: *applied (false: the row is not pending, or the hint does not name
 * it; then nothing changed). */
static int
s_settle_one(store_t *s, const uint8_t id[16], uint64_t seq,
    const char *issuer_oin, const uint8_t envelope_digest[32], int state,
    int reason, const uint8_t receipt_digest[32], const uint8_t *receipt,
    size_t rlen, uint64_t now, bool *applied, outbox_row_t *settled,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_SETTLE_ONE];
	int rc = 0, ret = -1;

	rc |= sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
	rc |= sq_bind_text(st, 2, issuer_oin, KP_OIN_LEN + 1);
	rc |= sqlite3_bind_blob(st, 3, envelope_digest, 32, SQLITE_STATIC);
	rc |= sq_bind_u64(st, 4, seq);
	rc |= sqlite3_bind_int(st, 5, state);
	rc |= sq_bind_u64(st, 6, now);
	if (rc != SQLITE_OK) {
		sq_fail(s, err, "outbox settle");
		goto out;
	}
	s->settle_note = settled;
	s->settle_noted = 0;
	if (sq_step_done(s, st, "outbox settle", err) != 0)
		goto out;
	*applied = sqlite3_changes(s->db) == 1;
	/* seq is the table's key: one row or none, noted iff changed */
	if (s->settle_noted != (*applied ? 1u : 0u)) {
		*applied = false;
		kp_fail(err, KP_ERR_IO, "store: outbox settle: %u rows noted "
		    "for one settle", s->settle_noted);
		goto out;
	}
	if (*applied && s_settle_rest(s, seq, reason, receipt_digest,
	    receipt, rlen, now, err) != 0) {
		*applied = false;
		goto out;
	}
	if (*applied) {
		sq_count(s, STORE_PENDING, -1);
		sq_count(s, state, 1);
	}
	ret = 0;
out:
	s->settle_note = NULL;
	sq_done(st);
	return ret;
}

int
store_outbox_settle_seq(store_t *s, const uint8_t id[16], uint64_t seq_hint,
    const char *issuer_oin, const uint8_t envelope_digest[32], int state,
    int reason, const uint8_t receipt_digest[32], const uint8_t *receipt,
    size_t rlen, uint64_t now, bool *applied, outbox_row_t *settled,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_SETTLE];
	uint64_t seq = seq_hint;
	bool found = false;
	int rc = 0, ret = -1, was = 0;

	*applied = false;
	if (state != STORE_DELIVERED && state != STORE_REJECTED)
		return kp_fail(err, KP_ERR_INVALID_ARG, "store: settle to "
		    "state %d (want delivered or rejected)", state);
	if (seq_hint != 0) {
		if (s_settle_one(s, id, seq_hint, issuer_oin, envelope_digest,
		    state, reason, receipt_digest, receipt, rlen, now, applied,
		    settled, err) != 0)
			return -1;
		if (*applied)
			return 0;
	}
	if (s_settle_find(s, id, issuer_oin, envelope_digest, &seq, &was,
	    settled, &found, err) != 0)
		return -1;
	/* a hint that names another row (it cannot, but the event id is
	 * what counts): look the event up by its id */
	if (!found && seq_hint != 0) {
		seq = 0;
		if (s_settle_find(s, id, issuer_oin, envelope_digest, &seq,
		    &was, settled, &found, err) != 0)
			return -1;
	}
	if (!found)
		return 0;
	rc |= sq_bind_u64(st, 1, seq);
	rc |= sqlite3_bind_int(st, 2, state);
	rc |= sq_bind_u64(st, 3, now);
	if (rc != SQLITE_OK) {
		sq_fail(s, err, "outbox settle");
		goto out;
	}
	if (sq_step_done(s, st, "outbox settle", err) != 0)
		goto out;
	*applied = sqlite3_changes(s->db) == 1;
	sq_done(st);
	if (*applied && s_settle_rest(s, seq, reason, receipt_digest,
	    receipt, rlen, now, err) != 0) {
		*applied = false;
		goto out;
	}
	if (*applied) {
		sq_count(s, was, -1);
		sq_count(s, state, 1);
	}
	ret = 0;
out:
	sq_done(st);
	return ret;
}

int
store_outbox_expire(store_t *s, uint64_t now, store_outbox_cb cb, void *arg,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_EXPIRE];
	outbox_row_t row;
	bool stopped = false;
	int64_t n = 0;
	int rc, ret = -1;

	if (sq_bind_u64(st, 1, now) != SQLITE_OK) {
		sq_fail(s, err, "outbox expire");
		goto out;
	}
	/* every row returned expired (all in the first step); once the
	 * callback stops, the rest are only counted */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (stopped || cb == NULL)
			continue;
		s_read_outbox(st, &row);
		stopped = cb(arg, &row, NULL, 0) != 0;
	}
	if (rc != SQLITE_DONE) {
		sq_fail(s, err, "outbox expire");
		goto out;
	}
	sq_count(s, STORE_PENDING, -n);
	sq_count(s, STORE_DEAD, n);
	ret = 0;
out:
	sq_done(st);
	return ret;
}

int
store_outbox_pending(store_t *s, const uint8_t id[16], store_outbox_cb cb,
    void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_PENDING];

	if (sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC) != SQLITE_OK) {
		sq_fail(s, err, "outbox pending");
		sq_done(st);
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
		sq_fail(s, err, "outbox get");
		goto out;
	}
	if (sq_step_one(s, st, "outbox get", found, err) != 0)
		goto out;
	if (*found)
		s_read_outbox(st, row);
	ret = 0;
out:
	sq_done(st);
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
		sq_fail(s, err, "outbox by idempotency key");
		goto out;
	}
	if (sq_step_one(s, st, "outbox by idempotency key", found, err) != 0)
		goto out;
	if (*found) {
		(void)sq_col_blob(st, 0, event_id, 16);
		(void)sq_col_blob(st, 1, hash, 32);
	}
	ret = 0;
out:
	sq_done(st);
	return ret;
}

int
store_outbox_list(store_t *s, uint64_t after_seq, size_t limit,
    store_outbox_cb cb, void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_OB_LIST];

	if (limit == 0)
		return 0;
	if (sq_bind_u64(st, 1, after_seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, sq_limit(limit)) != SQLITE_OK) {
		sq_fail(s, err, "outbox list");
		sq_done(st);
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
		sq_fail(s, err, "outbox receipt");
		goto out;
	}
	if (sq_step_one(s, st, "outbox receipt", found, err) != 0)
		goto out;
	if (*found && sq_col_dup(st, 0, buf, len, err) != 0) {
		*found = false;
		goto out;
	}
	ret = 0;
out:
	sq_done(st);
	return ret;
}

