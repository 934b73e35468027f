/*
 * countvfs.c: SQLite's default VFS with the syncs of write-ahead logs
 * counted (countvfs.h).  A file opened through it is a struct cfile with
 * the default VFS's own file right after it (szOsFile covers both).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "countvfs.h"

struct cfile {
	sqlite3_file base;
	sqlite3_file *real;          /* right after this struct */
	bool wal;
};

static sqlite3_vfs *s_real;
static sqlite3_vfs s_vfs;
static sqlite3_io_methods s_io;
static atomic_int s_wal_syncs;
static pthread_t s_owner;      /* the thread whose syncs count */

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
	/* the test's own thread's: not the store's checkpoint thread, whose
	 * passes sync the log whenever they run */
	if (((struct cfile *)f)->wal && pthread_equal(pthread_self(), s_owner))
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

void
countvfs_install(void)
{
	s_owner = pthread_self();
	s_real = sqlite3_vfs_find(NULL);
	if (s_real == NULL)
		abort();
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
	if (sqlite3_vfs_register(&s_vfs, 1) != SQLITE_OK)
		abort();
}

void
countvfs_remove(void)
{
	sqlite3_vfs_unregister(&s_vfs);
}

int
countvfs_wal_syncs(void)
{
	return atomic_load(&s_wal_syncs);
}
