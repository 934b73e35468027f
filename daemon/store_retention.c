/*
 * store_retention.c: the end of an event's retention — its wrapped key and
 * sealed payload dropped (atrest.c explains why that destroys it) — the
 * end of its metadata retention — the row reduced to what the audit needs
 * (store_meta_reduce) — and the WAL checkpoint that proves no old frame
 * still holds what was dropped.  See store.h, store_int.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "store_int.h"
#include "util.h"

/* An inbox row of the link's case and partner (by the index on the
 * first 8 bytes of the sealed value, store_schema.c); outbox and
 * expectations rows refer to the link by link_id (schema version 5). */
#define LINKED(partner) "substr(case_sealed, 1, 8) = " \
	"substr(links.local_sealed, 1, 8) AND case_sealed = " \
	"links.local_sealed AND " partner " = links.partner_oin"

/* Statements of this file, prepared once by store_open (store.c). */
const char *const store_retention_sql[ST_COUNT] = {
	/* a settled row's envelope (only a dead row still has one: a settle
	 * deletes it), in outbox_env since schema version 9; then its key */
	[ST_OB_PURGE_ENV] = "DELETE FROM outbox_env WHERE seq IN (SELECT seq "
	    "FROM outbox WHERE retention_until_ms <= ?1 AND "
	    "event_key IS NOT NULL AND state <> 1)",
	[ST_OB_PURGE] = "UPDATE outbox SET event_key = NULL "
	    "WHERE retention_until_ms <= ?1 AND event_key IS NOT NULL AND "
	    "state <> 1 RETURNING event_id, to_oin",
	[ST_IN_PURGE] = "UPDATE inbox SET sealed_payload = NULL, "
	    "event_key = NULL WHERE retention_until_ms <= ?1 AND "
	    "event_key IS NOT NULL RETURNING event_id, from_oin",
	/* metadata retention: by the partial indexes outbox_meta and
	 * inbox_meta (payload destroyed, not yet reduced) */
	[ST_REDUCE_OB] = "UPDATE outbox INDEXED BY outbox_meta SET "
	    "case_sealed = '', case_ref = zeroblob(32), route_sealed = NULL, "
	    "link_id = NULL, fields = '', idem_client = NULL, idem_key = NULL, "
	    "idem_hash = NULL, reduced_ms = ?2 WHERE event_key IS NULL AND "
	    "reduced_ms = 0 AND created_ms <= ?1 AND state <> 1",
	[ST_REDUCE_IN] = "UPDATE inbox INDEXED BY inbox_meta SET "
	    "case_sealed = '', case_ref = zeroblob(32), fields = '', "
	    "reduced_ms = ?2 WHERE event_key IS NULL AND reduced_ms = 0 AND "
	    "received_ms <= ?1",
	[ST_REDUCE_EXP] = "DELETE FROM expectations WHERE sent_ms <= ?1",
	[ST_REDUCE_ABS] = "DELETE FROM absence_after WHERE at_ms <= ?1",
	/* a link no row with metadata refers to any more */
	[ST_REDUCE_LINKS] = "DELETE FROM links WHERE NOT EXISTS (SELECT 1 "
	    "FROM outbox WHERE link_id = links.id) AND NOT EXISTS (SELECT 1 "
	    "FROM inbox WHERE " LINKED("from_oin") ") AND NOT EXISTS (SELECT 1 "
	    "FROM expectations WHERE link_id = links.id)",
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
	/* first the envelopes of the outbox rows ST_OB_PURGE purges */
	if (sq_run_u64(s, s->st[ST_OB_PURGE_ENV], now, SQLITE_OK, "purge",
	    err) != 0 ||
	    s_purge_one(s, ST_OB_PURGE, true, now, cb, arg, n, err) != 0 ||
	    s_purge_one(s, ST_IN_PURGE, false, now, cb, arg, n, err) != 0)
		return -1;
	return 0;
}

/* Run reduce statement `which` with ?1 = cutoff (?2 = now if it has one);
 * OUT: *n += rows changed. */
static int
s_reduce_one(store_t *s, int which, uint64_t cutoff, uint64_t now,
    uint64_t *n, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[which];
	int ret = -1, np = sqlite3_bind_parameter_count(st);

	if ((np >= 1 && sq_bind_u64(st, 1, cutoff) != SQLITE_OK) ||
	    (np >= 2 && sq_bind_u64(st, 2, now) != SQLITE_OK)) {
		sq_fail(s, err, "metadata retention");
		goto out;
	}
	if (sq_step_done(s, st, "metadata retention", err) != 0)
		goto out;
	*n += (uint64_t)sqlite3_changes(s->db);
	ret = 0;
out:
	sq_done(st);
	return ret;
}

int
store_meta_reduce(store_t *s, uint64_t cutoff, uint64_t now,
    store_reduced_t *r, kp_err_t *err)
{
	memset(r, 0, sizeof(*r));
	if (s_reduce_one(s, ST_REDUCE_OB, cutoff, now, &r->outbox, err) != 0 ||
	    s_reduce_one(s, ST_REDUCE_IN, cutoff, now, &r->inbox, err) != 0 ||
	    s_reduce_one(s, ST_REDUCE_EXP, cutoff, now, &r->expectations,
	    err) != 0 ||
	    s_reduce_one(s, ST_REDUCE_ABS, cutoff, now, &r->absence, err) != 0)
		return -1;
	/* links only change when rows did: the walk over links is skipped
	 * on the (usual) pass that reduced nothing */
	if (r->outbox + r->inbox + r->expectations > 0 &&
	    s_reduce_one(s, ST_REDUCE_LINKS, cutoff, now, &r->links, err) != 0)
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
	store_ckpt_hold(s->ckpt);       /* else busy while the thread copies */
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    &nlog, &ncopied);
	store_ckpt_release(s->ckpt);
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
	int log = 0, done = 0, rc;

	if (sqlite3_get_autocommit(s->db) == 0)
		return -1;
	store_ckpt_hold(s->ckpt);
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &log, &done);
	store_ckpt_release(s->ckpt);
	if (rc != SQLITE_OK)
		return -1;
	return log - done;
}
