/*
 * store_retention.c: the end of an event's retention — its wrapped key and
 * sealed payload dropped (atrest.c explains why that destroys it) — and the
 * WAL checkpoint that proves no old frame still holds them.  See store.h,
 * store_int.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "store_int.h"
#include "util.h"

/* Statements of this file, prepared once by store_open (store.c). */
const char *const store_retention_sql[ST_COUNT] = {
	[ST_OB_PURGE] = "UPDATE outbox SET envelope = NULL, event_key = NULL "
	    "WHERE retention_until_ms <= ?1 AND event_key IS NOT NULL AND "
	    "state <> 1 RETURNING event_id, to_oin",
	[ST_IN_PURGE] = "UPDATE inbox SET sealed_payload = NULL, "
	    "event_key = NULL WHERE retention_until_ms <= ?1 AND "
	    "event_key IS NOT NULL RETURNING event_id, from_oin",
};

static int
s_purge_one(store_t *s, int which, bool sent, uint64_t now, store_purge_cb cb,
    void *arg, size_t *n, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[which];
	uint8_t id[16];
	char oin[21];
	int rc, ret = -1;

	if (sq_bind_u64(st, 1, now) != SQLITE_OK) {
		sq_fail(s, err, "purge");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sq_col_blob(st, 0, id, 16);
		sq_col_text(st, 1, oin, sizeof(oin));
		(*n)++;
		if (cb != NULL)
			(void)cb(arg, id, oin, sent);
	}
	if (rc != SQLITE_DONE) {
		sq_fail(s, err, "purge");
		goto out;
	}
	ret = 0;
out:
	sq_done(st);
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
		return sq_fail(s, err, "checkpoint");
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
