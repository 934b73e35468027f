/*
 * store_webhook.c: the webhook table (store_webhook.h).
 *
 * Its own file and its own table, made on first use rather than by a
 * schema version: a daemon without a webhook never has it, and the
 * store's schema and migrations (store.c) stay as they are.  The rows
 * hold event ids, kinds and delivery outcomes, never a case reference or
 * payload value.  Statements are prepared per call: notices are few
 * beside the events themselves, and this file then needs nothing of
 * store.c but its connection (store_int.h).  It must never decide when to send (that
 * is webhook.c) and never open a transaction of its own.
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"
#include "store_webhook.h"

static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS webhook ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL,"
    " event_id BLOB NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " last_ms INTEGER,"                 /* the latest attempt */
    " last_status INTEGER,"             /* its HTTP status, 0: none */
    " delivered_ms INTEGER,"            /* NULL until a 2xx */
    " given_up INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS webhook_open ON webhook(seq)"
    " WHERE delivered_ms IS NULL AND given_up = 0;";

static int
s_fail(sqlite3 *db, kp_err_t *err, const char *what)
{
	return kp_fail(err, KP_ERR_IO, "store: webhook %s: %s", what,
	    sqlite3_errmsg(db));
}

/* Prepare sql; -1 after err is set. */
static int
s_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, kp_err_t *err)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return s_fail(db, err, "prepare");
	}
	return 0;
}

int
store_webhook_init(store_t *s, kp_err_t *err)
{
	sqlite3 *db = s->db;

	if (sqlite3_exec(db, s_schema, NULL, NULL, NULL) != SQLITE_OK)
		return s_fail(db, err, "create table");
	return 0;
}

int
store_webhook_add(store_t *s, const char *kind, const uint8_t id[16],
    uint64_t now, kp_err_t *err)
{
	sqlite3 *db = s->db;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (s_prepare(db, "INSERT INTO webhook (kind, event_id, created_ms) "
	    "VALUES (?1, ?2, ?3)", &st, err) != 0)
		return -1;
	if (sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, id, 16, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, (sqlite3_int64)now) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		s_fail(db, err, "insert");
	else
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

int
store_webhook_next(store_t *s, webhook_row_t *row, bool *found,
    kp_err_t *err)
{
	sqlite3 *db = s->db;
	sqlite3_stmt *st = NULL;
	int step, rc = -1;

	*found = false;
	memset(row, 0, sizeof(*row));
	/* a damaged row (an id of another length) is passed over, so it can
	 * never hold up the notices after it */
	if (s_prepare(db, "SELECT seq, kind, event_id, created_ms, attempts "
	    "FROM webhook WHERE delivered_ms IS NULL AND given_up = 0 AND "
	    "length(event_id) = 16 ORDER BY seq LIMIT 1", &st, err) != 0)
		return -1;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		row->seq = (uint64_t)sqlite3_column_int64(st, 0);
		snprintf(row->kind, sizeof(row->kind), "%s",
		    (const char *)sqlite3_column_text(st, 1));
		memcpy(row->event_id, sqlite3_column_blob(st, 2), 16);
		row->created_ms = (uint64_t)sqlite3_column_int64(st, 3);
		row->attempts = (uint32_t)sqlite3_column_int64(st, 4);
		*found = true;
		rc = 0;
	} else if (step == SQLITE_DONE)
		rc = 0;
	else
		s_fail(db, err, "select");
	sqlite3_finalize(st);
	return rc;
}

int
store_webhook_attempt(store_t *s, uint64_t seq, int status, bool delivered,
    bool give_up, uint64_t now, kp_err_t *err)
{
	sqlite3 *db = s->db;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (s_prepare(db, "UPDATE webhook SET attempts = attempts + 1, "
	    "last_ms = ?2, last_status = ?3, delivered_ms = CASE WHEN ?4 "
	    "THEN ?2 END, given_up = ?5 WHERE seq = ?1", &st, err) != 0)
		return -1;
	if (sqlite3_bind_int64(st, 1, (sqlite3_int64)seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, (sqlite3_int64)now) != SQLITE_OK ||
	    sqlite3_bind_int(st, 3, status) != SQLITE_OK ||
	    sqlite3_bind_int(st, 4, delivered) != SQLITE_OK ||
	    sqlite3_bind_int(st, 5, give_up) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		s_fail(db, err, "update");
	else
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

int
store_webhook_prune(store_t *s, uint64_t before, kp_err_t *err)
{
	sqlite3 *db = s->db;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (s_prepare(db, "DELETE FROM webhook WHERE (delivered_ms IS NOT NULL "
	    "OR given_up = 1) AND created_ms < ?1", &st, err) != 0)
		return -1;
	if (sqlite3_bind_int64(st, 1, (sqlite3_int64)before) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		s_fail(db, err, "prune");
	else
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}
