/*
 * test_flush.c: which commits of the store flush the disk (daemon/store.c,
 * store_begin_unflushed).
 *
 * A VFS in front of SQLite's own counts the syncs of the write-ahead log
 * (every method is passed through unchanged), so the test sees what the
 * disk would: a receipt's settlement committed unflushed syncs nothing, and
 * every other commit after it, a transaction's or a single statement's,
 * syncs again.  A commit that would go unflushed although it must not
 * (synchronous could not be set back) is refused by the commit hook.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "common.h"
#include "store.h"
#include "store_int.h"

TestSuite(flush, .init = test_init);

#define T0 1000000u

static const uint8_t s_meta_key[32] = { 0x44 };

/* ---- a counting VFS: SQLite's default one, with xSync counted ---- */

struct cfile {
	sqlite3_file base;
	sqlite3_file *real;          /* right after this struct */
	bool wal;
};

static sqlite3_vfs *s_real;
static sqlite3_vfs s_vfs;
static sqlite3_io_methods s_io;
static atomic_int s_wal_syncs;

static sqlite3_file *
R(sqlite3_file *f)
{
	return ((struct cfile *)f)->real;
}

static int
c_close(sqlite3_file *f)
{
	return R(f)->pMethods->xClose(R(f));
}

static int
c_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return R(f)->pMethods->xRead(R(f), b, n, o);
}

static int
c_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	return R(f)->pMethods->xWrite(R(f), b, n, o);
}

static int
c_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	return R(f)->pMethods->xTruncate(R(f), n);
}

static int
c_sync(sqlite3_file *f, int flags)
{
	if (((struct cfile *)f)->wal)
		atomic_fetch_add(&s_wal_syncs, 1);
	return R(f)->pMethods->xSync(R(f), flags);
}

static int
c_size(sqlite3_file *f, sqlite3_int64 *n)
{
	return R(f)->pMethods->xFileSize(R(f), n);
}

static int
c_lock(sqlite3_file *f, int l)
{
	return R(f)->pMethods->xLock(R(f), l);
}

static int
c_unlock(sqlite3_file *f, int l)
{
	return R(f)->pMethods->xUnlock(R(f), l);
}

static int
c_reserved(sqlite3_file *f, int *out)
{
	return R(f)->pMethods->xCheckReservedLock(R(f), out);
}

static int
c_control(sqlite3_file *f, int op, void *arg)
{
	return R(f)->pMethods->xFileControl(R(f), op, arg);
}

static int
c_sector(sqlite3_file *f)
{
	return R(f)->pMethods->xSectorSize(R(f));
}

static int
c_device(sqlite3_file *f)
{
	return R(f)->pMethods->xDeviceCharacteristics(R(f));
}

static int
c_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **p)
{
	return R(f)->pMethods->xShmMap(R(f), pg, sz, extend, p);
}

static int
c_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return R(f)->pMethods->xShmLock(R(f), off, n, flags);
}

static void
c_shm_barrier(sqlite3_file *f)
{
	R(f)->pMethods->xShmBarrier(R(f));
}

static int
c_shm_unmap(sqlite3_file *f, int del)
{
	return R(f)->pMethods->xShmUnmap(R(f), del);
}

static int
c_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{
	return R(f)->pMethods->xFetch(R(f), o, n, p);
}

static int
c_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return R(f)->pMethods->xUnfetch(R(f), o, p);
}

static int
c_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags,
    int *out)
{
	struct cfile *cf = (struct cfile *)f;
	int rc;

	(void)v;
	cf->real = (sqlite3_file *)(cf + 1);
	cf->wal = (flags & SQLITE_OPEN_WAL) != 0;
	rc = s_real->xOpen(s_real, name, cf->real, flags, out);
	/* no methods: SQLite then closes nothing */
	cf->base.pMethods = rc == SQLITE_OK && cf->real->pMethods != NULL ?
	    &s_io : NULL;
	return rc;
}

static void
s_vfs_install(void)
{
	s_real = sqlite3_vfs_find(NULL);
	cr_assert_not_null(s_real);
	s_vfs = *s_real;
	s_vfs.zName = "kp-count-syncs";
	s_vfs.szOsFile = (int)sizeof(struct cfile) + s_real->szOsFile;
	s_vfs.xOpen = c_open;
	s_io = (sqlite3_io_methods) {
		.iVersion = 3, .xClose = c_close, .xRead = c_read,
		.xWrite = c_write, .xTruncate = c_truncate, .xSync = c_sync,
		.xFileSize = c_size, .xLock = c_lock, .xUnlock = c_unlock,
		.xCheckReservedLock = c_reserved, .xFileControl = c_control,
		.xSectorSize = c_sector,
		.xDeviceCharacteristics = c_device, .xShmMap = c_shm_map,
		.xShmLock = c_shm_lock, .xShmBarrier = c_shm_barrier,
		.xShmUnmap = c_shm_unmap, .xFetch = c_fetch,
		.xUnfetch = c_unfetch,
	};
	cr_assert_eq(sqlite3_vfs_register(&s_vfs, 1), SQLITE_OK);
}

static void
s_vfs_remove(void)
{
	sqlite3_vfs_unregister(&s_vfs);
}

/* ---- the store ---- */

struct fx {
	char tmp[256];
	char dir[300];
	store_t *s;
	kp_err_t err;
};

static void
s_open(struct fx *f)
{
	s_vfs_install();
	test_tmpdir(f->tmp, sizeof(f->tmp));
	snprintf(f->dir, sizeof(f->dir), "%s/state", f->tmp);
	cr_assert_eq(store_open(f->dir, s_meta_key, &f->s, &f->err), 0,
	    "store_open: %s", f->err.msg);
}

static void
s_close(struct fx *f)
{
	store_close(&f->s);
	s_vfs_remove();
	cr_assert_eq(test_sh("rm -rf '%s'", f->tmp), 0);
}

/* An outbox row numbered n (as test_store.c makes them). */
static outbox_row_t
s_row(int n)
{
	outbox_row_t r;

	memset(&r, 0, sizeof(r));
	r.event_id[0] = 0xe7;
	r.event_id[6] = 0x70;
	r.event_id[15] = (uint8_t)n;
	r.event_type = 4;
	snprintf(r.to_oin, sizeof(r.to_oin), "%s", OIN_HALT);
	snprintf(r.case_local, sizeof(r.case_local), "ZAAK-%04d", n);
	memset(r.case_ref, 0x10 + n, sizeof(r.case_ref));
	r.created_ms = T0 + (uint64_t)n;
	r.expires_ms = T0 + 1000000 + (uint64_t)n;
	r.next_attempt_ms = T0 + (uint64_t)n;
	r.attempts = 1;
	snprintf(r.purpose, sizeof(r.purpose), "mas.route_referral");
	snprintf(r.legal_basis, sizeof(r.legal_basis), "EXAMPLE-%d", n);
	snprintf(r.fields, sizeof(r.fields), "route,age_years");
	r.retention_until_ms = T0 + 5000000 + (uint64_t)n;
	memset(r.envelope_digest, 0x50 + n, sizeof(r.envelope_digest));
	return r;
}

static void
s_insert(struct fx *f, outbox_row_t *r)
{
	uint8_t env[64];

	memset(env, r->event_id[15], sizeof(env));
	cr_assert_eq(store_outbox_insert(f->s, r, env, sizeof(env), &f->err),
	    0, "insert: %s", f->err.msg);
}

static void
s_settle(struct fx *f, const outbox_row_t *r)
{
	const uint8_t receipt[] = "signed receipt bytes";
	uint8_t rdig[32];
	bool applied = false;

	memset(rdig, 0x77, sizeof(rdig));
	cr_assert_eq(store_outbox_settle(f->s, r->event_id, OIN_HALT,
	    r->envelope_digest, STORE_DELIVERED, 0, rdig, receipt,
	    sizeof(receipt), T0 + 5, &applied, NULL, &f->err), 0, "%s",
	    f->err.msg);
	cr_assert(applied);
}

static int
s_state(struct fx *f, const outbox_row_t *r)
{
	outbox_row_t g;
	bool found = false;

	cr_assert_eq(store_outbox_get(f->s, r->event_id, &g, &found, &f->err),
	    0, "%s", f->err.msg);
	cr_assert(found);
	return g.state;
}

Test(flush, a_settlement_commits_without_a_flush_and_the_next_commit_flushes)
{
	struct fx f = { 0 };
	outbox_row_t a = s_row(1), b = s_row(2), c = s_row(3);
	int n;

	s_open(&f);
	n = atomic_load(&s_wal_syncs);
	s_insert(&f, &a);            /* a statement of its own */
	cr_assert_gt(atomic_load(&s_wal_syncs), n, "an insert is flushed");
	s_insert(&f, &b);

	n = atomic_load(&s_wal_syncs);
	cr_assert_eq(store_begin_unflushed(f.s, &f.err), 0, "%s", f.err.msg);
	s_settle(&f, &a);
	cr_assert_eq(store_commit(f.s, &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(atomic_load(&s_wal_syncs), n,
	    "the settlement's commit must not sync the log");
	cr_assert_eq(s_state(&f, &a), STORE_DELIVERED);

	/* the next transaction is flushed, and so is a single statement */
	cr_assert_eq(store_begin(f.s, &f.err), 0, "%s", f.err.msg);
	s_settle(&f, &b);
	cr_assert_eq(store_commit(f.s, &f.err), 0, "%s", f.err.msg);
	cr_assert_gt(atomic_load(&s_wal_syncs), n,
	    "a commit after an unflushed one must sync the log");
	n = atomic_load(&s_wal_syncs);
	s_insert(&f, &c);
	cr_assert_gt(atomic_load(&s_wal_syncs), n, "an insert is flushed");

	/* an unflushed transaction rolled back leaves flushing on too */
	cr_assert_eq(store_begin_unflushed(f.s, &f.err), 0, "%s", f.err.msg);
	s_settle(&f, &c);
	store_rollback(f.s);
	cr_assert_eq(s_state(&f, &c), STORE_PENDING);
	n = atomic_load(&s_wal_syncs);
	cr_assert_eq(store_begin(f.s, &f.err), 0, "%s", f.err.msg);
	s_settle(&f, &c);
	cr_assert_eq(store_commit(f.s, &f.err), 0, "%s", f.err.msg);
	cr_assert_gt(atomic_load(&s_wal_syncs), n,
	    "a commit after a rolled back unflushed one must sync the log");

	/* what was committed unflushed is in the file after a reopen */
	store_close(&f.s);
	cr_assert_eq(store_open(f.dir, s_meta_key, &f.s, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert_eq(s_state(&f, &a), STORE_DELIVERED);
	cr_assert_eq(s_state(&f, &b), STORE_DELIVERED);
	s_close(&f);
}

Test(flush, a_commit_that_would_not_be_flushed_is_refused)
{
	struct fx f = { 0 };
	outbox_row_t a = s_row(1), b = s_row(2);
	uint8_t env[64] = { 0 };

	s_open(&f);
	s_insert(&f, &a);
	/* as if setting synchronous back to FULL had failed after an
	 * unflushed commit: the connection is still NORMAL */
	cr_assert_eq(sqlite3_exec(f.s->db, "PRAGMA synchronous = NORMAL",
	    NULL, NULL, NULL), SQLITE_OK);
	f.s->sync_normal = true;
	cr_assert_eq(store_outbox_insert(f.s, &b, env, sizeof(env), &f.err),
	    -1, "a statement committed unflushed must be refused");
	cr_assert_eq(sqlite3_extended_errcode(f.s->db),
	    SQLITE_CONSTRAINT_COMMITHOOK, "%s", sqlite3_errmsg(f.s->db));
	/* the next transaction sets FULL again first, and commits */
	cr_assert_eq(store_begin(f.s, &f.err), 0, "%s", f.err.msg);
	cr_assert_not(f.s->sync_normal);
	s_insert(&f, &b);
	cr_assert_eq(store_commit(f.s, &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(s_state(&f, &b), STORE_PENDING);
	s_close(&f);
}
