/*
 * store_inbox.c: the inbox table (events received, payload sealed at rest
 * by the caller, with the receipt we sent) and the rejected table (what we
 * refused and why).  See store.h, store_int.h.
 *
 * Invariant 6: an inbox row is written once by store_inbox_insert; the only
 * later changes are acked false -> true in store_inbox_ack, case_sealed
 * "" -> the sealed local reference of a link made later (store_link_file,
 * store_cases.c), the payload and key dropped at the end of retention and
 * the metadata reduced at the end of metadata retention
 * (store_retention.c).  event_id is UNIQUE: the table doubles as the
 * seen-event set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_int.h"
#include "util.h"

/* Column list shared by the SELECTs and s_read_inbox. */
#define IN_COLS "seq, event_id, event_type, from_oin, " \
	"kp_case_open(from_oin, case_sealed), case_ref, " \
	"in_reply_to, purpose, legal_basis, created_ms, received_ms, acked, " \
	"envelope_digest, receipt_digest, fields, retention_until_ms, " \
	"event_key"
#define IN_NCOLS 17

/* Statements of this file, prepared once by store_open (store.c). */
const char *const store_inbox_sql[ST_COUNT] = {
	[ST_IN_FIND] = "SELECT " IN_COLS ", receipt FROM inbox WHERE "
	    "event_id = ?1",
	[ST_IN_INSERT] = "INSERT INTO inbox (event_id, event_type, from_oin, "
	    "case_sealed, case_ref, in_reply_to, purpose, legal_basis, "
	    "created_ms, received_ms, acked, envelope_digest, receipt_digest, "
	    "fields, retention_until_ms, event_key, sealed_payload, envelope, "
	    "receipt) VALUES (?1, ?2, ?3, kp_case_seal(?3, ?4), ?5, ?6, ?7, "
	    "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
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
	[ST_REJ_INSERT] = "INSERT INTO rejected (from_oin, event_id, "
	    "envelope_digest, reason, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
};

/* Parameters ?1..?13 of ST_IN_INSERT. */
static int
s_bind_inbox(sqlite3_stmt *st, const inbox_row_t *r)
{
	int rc = 0;

	rc |= sqlite3_bind_blob(st, 1, r->event_id, 16, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 2, r->event_type);
	rc |= sq_bind_text(st, 3, r->from_oin, sizeof(r->from_oin));
	rc |= sq_bind_text(st, 4, r->case_local, sizeof(r->case_local));
	rc |= sqlite3_bind_blob(st, 5, r->case_ref, 32, SQLITE_STATIC);
	if (r->has_reply_to)
		rc |= sqlite3_bind_blob(st, 6, r->in_reply_to, 16,
		    SQLITE_STATIC);
	rc |= sq_bind_text(st, 7, r->purpose, sizeof(r->purpose));
	rc |= sq_bind_text(st, 8, r->legal_basis, sizeof(r->legal_basis));
	rc |= sq_bind_u64(st, 9, r->created_ms);
	rc |= sq_bind_u64(st, 10, r->received_ms);
	rc |= sqlite3_bind_int(st, 11, r->acked ? 1 : 0);
	rc |= sqlite3_bind_blob(st, 12, r->envelope_digest, 32, SQLITE_STATIC);
	rc |= sqlite3_bind_blob(st, 13, r->receipt_digest, 32, SQLITE_STATIC);
	rc |= sq_bind_text(st, 14, r->fields, sizeof(r->fields));
	rc |= sq_bind_u64(st, 15, r->retention_until_ms);
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
	r->seq = sq_col_u64(st, 0);
	sq_col_blob(st, 1, r->event_id, 16);
	r->event_type = sqlite3_column_int(st, 2);
	sq_col_text(st, 3, r->from_oin, sizeof(r->from_oin));
	sq_col_text(st, 4, r->case_local, sizeof(r->case_local));
	sq_col_blob(st, 5, r->case_ref, 32);
	r->has_reply_to = sq_col_blob(st, 6, r->in_reply_to, 16);
	sq_col_text(st, 7, r->purpose, sizeof(r->purpose));
	sq_col_text(st, 8, r->legal_basis, sizeof(r->legal_basis));
	r->created_ms = sq_col_u64(st, 9);
	r->received_ms = sq_col_u64(st, 10);
	r->acked = sqlite3_column_int(st, 11) != 0;
	sq_col_blob(st, 12, r->envelope_digest, 32);
	sq_col_blob(st, 13, r->receipt_digest, 32);
	sq_col_text(st, 14, r->fields, sizeof(r->fields));
	r->retention_until_ms = sq_col_u64(st, 15);
	r->has_event_key = sq_col_blob(st, 16, r->event_key,
	    STORE_KEY_WRAP_LEN);
}


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
		sq_fail(s, err, what);
		goto out;
	}
	if (sq_step_one(s, st, what, found, err) != 0)
		goto out;
	if (*found) {
		s_read_inbox(st, row);
		if (blob != NULL &&
		    sq_col_dup(st, IN_NCOLS, blob, blen, err) != 0) {
			*found = false;
			goto out;
		}
	}
	ret = 0;
out:
	sq_done(st);
	return ret;
}

/*
 * The highest event id in the inbox, read once (an index's last entry),
 * then raised by every insert: s->inbox_top.  A rolled-back insert leaves
 * it higher than the highest id stored, which only costs a look-up; rows
 * are never deleted and only store_inbox_insert adds any, so no stored id
 * is ever above it.  (Blobs compare as memcmp, then by length; every
 * event_id is 16 bytes.)
 */
static int
s_inbox_top(store_t *s, kp_err_t *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (s->inbox_top_known)
		return 0;
	if (sqlite3_prepare_v2(s->db, "SELECT max(event_id) FROM inbox", -1,
	    &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		sq_fail(s, err, "inbox find");
		goto out;
	}
	memset(s->inbox_top, 0, sizeof(s->inbox_top));
	(void)sq_col_blob(st, 0, s->inbox_top, sizeof(s->inbox_top));
	s->inbox_top_known = true;
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

/*
 * The duplicate check of every arrival.  Event ids are time-ordered
 * (UUIDv7), so in a drain nearly every new one is above all ids stored:
 * then it cannot be there, and the index is not descended (4.8% of the
 * receiver's loop in a backlog's drain, PERFORMANCE.md).  Any other id,
 * whatever a partner chose, is looked up as before.
 */
int
store_inbox_find(store_t *s, const uint8_t id[16], inbox_row_t *row,
    uint8_t **receipt, size_t *rlen, bool *found, kp_err_t *err)
{
	if (s_inbox_top(s, err) != 0)
		return -1;
	if (memcmp(id, s->inbox_top, sizeof(s->inbox_top)) > 0) {
		*found = false;
		if (receipt != NULL)
			*receipt = NULL;
		return 0;
	}
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
	    sq_bind_blob(st, 17, sealed_payload ? sealed_payload : none, plen) ||
	    sq_bind_blob(st, 18, envelope ? envelope : none, elen) ||
	    sq_bind_blob(st, 19, receipt ? receipt : none, rlen)) {
		sq_fail(s, err, "inbox insert");
		goto out;
	}
	if (sq_step_insert(s, st, row->event_id, "inbox", &row->seq,
	    err) != 0)
		goto out;
	if (s->inbox_top_known && memcmp(row->event_id, s->inbox_top,
	    sizeof(s->inbox_top)) > 0)
		memcpy(s->inbox_top, row->event_id, sizeof(s->inbox_top));
	sq_count(s, SC_IN_TOTAL, 1);
	if (!row->acked)
		sq_count(s, SC_IN_UNACKED, 1);
	if (sq_partner_seen(s, row->from_oin, err) != 0)
		goto out;
	ret = 0;
out:
	sq_done(st);
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
	if (sq_bind_u64(st, 1, after_seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, sq_limit(limit)) != SQLITE_OK) {
		sq_fail(s, err, "inbox list");
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
		sq_fail(s, err, "inbox list");
		goto out;
	}
	ret = 0;
out:
	sq_done(st);
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
		sq_fail(s, err, "inbox ack");
		goto out;
	}
	ret = sq_step_one(s, st, "inbox ack", found, err);
out:
	sq_done(st);
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
		sq_fail(s, err, "inbox ack");
		goto out;
	}
	if (sq_step_done(s, st, "inbox ack", err) != 0)
		goto out;
	*newly = sqlite3_changes(s->db) == 1;
	if (*newly)
		sq_count(s, SC_IN_UNACKED, -1);
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
	sq_done(st);
	return ret;
}



int
store_reject_insert(store_t *s, const char *from_oin, const uint8_t *event_id,
    const uint8_t envelope_digest[32], int reason, uint64_t now,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_REJ_INSERT];
	int rc = 0, ret = -1;

	rc |= sq_bind_text(st, 1, from_oin != NULL ? from_oin : "",
	    KP_OIN_LEN + 1);
	rc |= sq_bind_blob(st, 2, event_id, event_id != NULL ? 16 : 0);
	rc |= sqlite3_bind_blob(st, 3, envelope_digest, 32, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 4, reason);
	rc |= sq_bind_u64(st, 5, now);
	if (rc != SQLITE_OK) {
		sq_fail(s, err, "reject insert");
		goto out;
	}
	ret = sq_step_done(s, st, "reject insert", err);
out:
	sq_done(st);
	return ret;
}
