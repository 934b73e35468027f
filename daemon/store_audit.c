/*
 * store_audit.c: the local copy of the audit log (entries and Merkle leaves),
 * our signed tree heads, the heads partners showed us (witness) and the
 * log's metadata (audit_meta: policy, certificates), and the interior
 * nodes of the log's Merkle tree (audit_nodes: perfect subtrees of height
 * 8 and up, daemon/audittree.c).  Append-only: nothing here updates or
 * deletes an entry; nodes are derived from the entries and only the
 * start-up check replaces a damaged one.  See store.h, store_int.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_int.h"
#include "util.h"

/* Statements of this file, prepared once by store_open (store.c). */
const char *const store_audit_sql[ST_COUNT] = {
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
	[ST_AUDIT_NODE_PUT] = "INSERT OR REPLACE INTO audit_nodes (height, "
	    "idx, hash) VALUES (?1, ?2, ?3)",
	[ST_AUDIT_NODE_GET] = "SELECT hash FROM audit_nodes WHERE height = ?1 "
	    "AND idx = ?2",
	[ST_AUDIT_RANGE] = "SELECT seq, entry, leaf FROM audit WHERE seq >= ?1 "
	    "AND seq < ?2 ORDER BY seq",
};

int
store_audit_append(store_t *s, uint64_t seq, const uint8_t *entry,
    size_t len, const uint8_t leaf[32], kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_AUDIT_APPEND];
	int ret = -1;

	if (sq_bind_u64(st, 1, seq) != SQLITE_OK ||
	    sq_bind_blob(st, 2, entry, len) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, leaf, 32, SQLITE_STATIC) != SQLITE_OK ||
	    sq_step_done(s, st, "audit append", err) != 0) {
		if (err != NULL && err->code == KP_OK)
			sq_fail(s, err, "audit append");
		goto out;
	}
	ret = 0;
out:
	sq_done(st);
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
		sq_fail(s, err, "audit entries");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sq_col_blob(st, 2, leaf, 32);
		if (cb(arg, sq_col_u64(st, 0), sqlite3_column_blob(st, 1),
		    (size_t)sqlite3_column_bytes(st, 1), leaf) != 0) {
			kp_fail(err, KP_ERR_IO, "store: audit log is not "
			    "contiguous at seq %llu", (unsigned long long)
			    sq_col_u64(st, 0));
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		sq_fail(s, err, "audit entries");
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

	rc |= sq_bind_u64(st, first, size);
	rc |= sq_bind_u64(st, first + 1, time_ms);
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
		ret = sq_fail(s, err, "tree head");
	sq_done(st);
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

	if (oin != NULL && sq_bind_text(st, 1, oin, 21) != SQLITE_OK) {
		sq_fail(s, err, "last head");
		goto out;
	}
	if (sq_step_one(s, st, "last head", found, err) != 0)
		goto out;
	if (*found) {
		*size = sq_col_u64(st, 0);
		*time_ms = sq_col_u64(st, 1);
		sq_col_blob(st, 2, root, 32);
		sq_col_blob(st, 3, sig, 64);
	}
	ret = 0;
out:
	sq_done(st);
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

	if (sq_bind_text(st, 1, oin, 21) != SQLITE_OK ||
	    s_head_bind(st, 2, size, time_ms, root, sig) != SQLITE_OK ||
	    sq_bind_u64(st, 6, now) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = sq_fail(s, err, "witness");
	sq_done(st);
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

	if (sq_bind_text(st, 1, key, strlen(key) + 1) != SQLITE_OK ||
	    sq_bind_text(st, 2, value, strlen(value) + 1) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = sq_fail(s, err, "audit meta");
	sq_done(st);
	return ret;
}

int
store_audit_node_put(store_t *s, unsigned height, uint64_t idx,
    const uint8_t hash[32], kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_AUDIT_NODE_PUT];
	int ret = 0;

	if (sqlite3_bind_int(st, 1, (int)height) != SQLITE_OK ||
	    sq_bind_u64(st, 2, idx) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = sq_fail(s, err, "audit tree node");
	sq_done(st);
	return ret;
}

int
store_audit_node_get(store_t *s, unsigned height, uint64_t idx,
    uint8_t hash[32], bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_AUDIT_NODE_GET];
	int ret = -1;

	if (sqlite3_bind_int(st, 1, (int)height) != SQLITE_OK ||
	    sq_bind_u64(st, 2, idx) != SQLITE_OK) {
		sq_fail(s, err, "audit tree node");
		goto out;
	}
	if (sq_step_one(s, st, "audit tree node", found, err) != 0)
		goto out;
	/* a hash of another length (a damaged row) reads as all zero, which
	 * no node is: the start-up check counts it as damage, never as a
	 * missing node to add quietly */
	if (*found && (sqlite3_column_bytes(st, 0) != 32 ||
	    !sq_col_blob(st, 0, hash, 32)))
		memset(hash, 0, 32);
	ret = 0;
out:
	sq_done(st);
	return ret;
}

int
store_audit_range(store_t *s, uint64_t lo, uint64_t n,
    int (*cb)(void *arg, uint64_t seq, const uint8_t *entry, size_t len,
    const uint8_t leaf[32]), void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_AUDIT_RANGE];
	uint8_t leaf[32];
	uint64_t want = lo;
	int rc, ret = -1;

	if (n > UINT64_MAX - lo || sq_bind_u64(st, 1, lo) != SQLITE_OK ||
	    sq_bind_u64(st, 2, lo + n) != SQLITE_OK) {
		sq_fail(s, err, "audit range");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sq_col_blob(st, 2, leaf, 32);
		if (sq_col_u64(st, 0) != want++ || cb(arg, sq_col_u64(st, 0),
		    sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st,
		    1), leaf) != 0) {
			kp_fail(err, KP_ERR_IO, "store: audit log is not "
			    "contiguous at seq %llu", (unsigned long long)
			    (want - 1));
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		sq_fail(s, err, "audit range");
		goto out;
	}
	if (want != lo + n) {
		kp_fail(err, KP_ERR_IO, "store: audit log has no entry %llu",
		    (unsigned long long)want);
		goto out;
	}
	ret = 0;
out:
	sq_done(st);
	return ret;
}

/* One-off (start-up check), so not kept prepared. */
static int
s_exec_u64(store_t *s, const char *sql, uint64_t arg, uint64_t *out,
    const char *what, kp_err_t *err)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    (sqlite3_bind_parameter_count(st) > 0 && sq_bind_u64(st, 1, arg) !=
	    SQLITE_OK)) {
		sq_fail(s, err, what);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sq_fail(s, err, what);
		goto out;
	}
	if (out != NULL)
		*out = rc == SQLITE_ROW ? sq_col_u64(st, 0) : 0;
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

int
store_audit_nodes_beyond(store_t *s, uint64_t size, uint64_t *n,
    kp_err_t *err)
{
	/* a log of size leaves has size >> h complete subtrees of height h:
	 * comparing idx with that never shifts idx, so nothing overflows */
	return s_exec_u64(s, "SELECT count(*) FROM audit_nodes WHERE height "
	    "NOT BETWEEN 0 AND 63 OR idx < 0 OR idx >= (?1 >> height)", size, n,
	    "audit tree nodes", err);
}

int
store_audit_nodes_drop_beyond(store_t *s, uint64_t size, kp_err_t *err)
{
	return s_exec_u64(s, "DELETE FROM audit_nodes WHERE height NOT BETWEEN "
	    "0 AND 63 OR idx < 0 OR idx >= (?1 >> height)", size, NULL,
	    "audit tree nodes", err);
}
