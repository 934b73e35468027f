/*
 * store.c: the daemon's durable state in one SQLite database (see store.h).
 *
 * Owns the sqlite3 connection to state_dir/ketenpost.db, its pragmas, the
 * transactions and savepoints, and the helpers every store_*.c file uses
 * (store_int.h says how the SQL is split).  The store never interprets
 * payloads (the caller seals them before they arrive), never logs and never
 * acknowledges anything: when data is durable is the caller's business
 * (store_begin / store_commit, store.h "Durability contract").  One thread
 * at a time per store_t (the connection is opened SQLITE_OPEN_NOMUTEX);
 * the WAL checkpoints run on a thread of their own with a connection of
 * their own (store_ckpt.c), woken by this connection's WAL hook.
 *
 * Why quick_check only on small files: it reads every page; for a big
 * database it would delay start-up by seconds, and SQLite still reports
 * SQLITE_CORRUPT on any page it reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store_int.h"
#include "util.h"

#define STORE_QUICK_CHECK_BYTES (16 * 1024 * 1024) /* quick_check up to */
/* Page cache of the main connection (SQLite's default is 2 MB): with
 * 2 MB a batch's transaction spilled dirty pages to the WAL before its
 * commit (sqlite3PcacheFetchStress, 6.5% of the sender) and read pages
 * back with pread (5%); at 8 MiB both are gone or halved, and the RSS
 * stays well within its 64 MiB budget (16 MiB gained little more and put
 * the receiver at 60 MiB while listing; docs/PERFORMANCE.md, "Checkpoints
 * and cache").  No mmap: mapped pages count in the RSS and grow with the
 * file. */
#define STORE_CACHE_SIZE "-8192"          /* negative: KiB */
/*
 * Pages of 8 KiB for a new file (an existing one keeps its own: SQLite
 * fixes the size when it first writes the file, and only a VACUUM outside
 * WAL mode changes it; docs/OPERATIONS.md).  At 4 KiB an outbox or inbox
 * row with its envelope (2.4-2.8 KB at a 1 KiB payload) had a page to
 * itself, and the receipt's update rewrote that whole page; at 8 KiB three
 * rows share one, so a batch's inserts and its receipts write a third
 * fewer bytes and half as many calls (kpbench: 21 -> 16 KB and 10.5 -> 5.3
 * write calls per event at the sender; 16 KiB gained little more, and
 * each page a random-key index touches costs twice as much).
 */
#define STORE_PAGE_SIZE "8192"

const char *const store_core_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT item",
	[ST_RELEASE] = "RELEASE item",
	[ST_UNDO] = "ROLLBACK TO item",
};

/* Every file's statements, in the order store_open prepares them. */
static const char *const *const s_sql_files[] = {
	store_core_sql, store_outbox_sql, store_inbox_sql, store_cases_sql,
	store_audit_sql, store_retention_sql,
};

/* ---- small helpers ---- */

int
sq_fail(store_t *s, kp_err_t *err, const char *what)
{
	return kp_fail(err, KP_ERR_IO, "store: %s: %s", what,
	    sqlite3_errmsg(s->db));
}

/* Reset a statement after use (its step error was reported already). */
void
sq_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

bool
sq_is_dup(store_t *s)
{
	int x = sqlite3_extended_errcode(s->db);

	return x == SQLITE_CONSTRAINT_UNIQUE ||
	    x == SQLITE_CONSTRAINT_PRIMARYKEY;
}

int
sq_bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
	return sqlite3_bind_int64(st, i,
	    v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v);
}

/* A blob, or NULL when p is NULL and n is 0; an empty blob is not NULL. */
int
sq_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (p == NULL && n == 0)
		return sqlite3_bind_null(st, i);
	if (n == 0)
		return sqlite3_bind_zeroblob(st, i, 0);
	return sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

/* Text of at most cap - 1 bytes (the size of the row's char array). */
int
sq_bind_text(sqlite3_stmt *st, int i, const char *t, size_t cap)
{
	return sqlite3_bind_text(st, i, t, (int)strnlen(t, cap - 1),
	    SQLITE_STATIC);
}

uint64_t
sq_col_u64(sqlite3_stmt *st, int i)
{
	sqlite3_int64 v = sqlite3_column_int64(st, i);

	if (v < 0)
		return 0;
	return v == INT64_MAX ? UINT64_MAX : (uint64_t)v;
}

void
sq_copy_text(const unsigned char *t, size_t n, char *dst, size_t cap)
{
	if (t == NULL)
		n = 0;
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, t != NULL ? (const char *)t : "", n);
	dst[n] = '\0';
}

void
sq_col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	sq_copy_text(t, (size_t)sqlite3_column_bytes(st, i), dst, cap);
}

/* Copy a fixed-size blob; false (and zeros) for NULL. */
bool
sq_col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t n)
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
int
sq_col_dup(sqlite3_stmt *st, int i, uint8_t **buf, size_t *len, kp_err_t *err)
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
int
sq_step_done(store_t *s, sqlite3_stmt *st, const char *what, kp_err_t *err)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		return sq_fail(s, err, what);
	return 0;
}

/* Run a statement that returns no rows with ?1 = v and ?2.. bound by the
 * caller (rc: their bind results, OR-ed); reset on return.  0 / -1. */
int
sq_run_u64(store_t *s, sqlite3_stmt *st, uint64_t v, int rc,
    const char *what, kp_err_t *err)
{
	int ret = -1;

	if ((rc | sq_bind_u64(st, 1, v)) != SQLITE_OK) {
		sq_fail(s, err, what);
		goto out;
	}
	ret = sq_step_done(s, st, what, err);
out:
	sq_done(st);
	return ret;
}

/* Step a statement that returns at most one row: *found. */
int
sq_step_one(store_t *s, sqlite3_stmt *st, const char *what, bool *found,
    kp_err_t *err)
{
	int rc = sqlite3_step(st);

	*found = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(s, err, what);
	return 0;
}

sqlite3_int64
sq_limit(size_t n)
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
int
sq_open_fail(store_t *s, kp_err_t *err, const char *what)
{
	int rc = sqlite3_errcode(s->db);

	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
		return kp_fail(err, KP_ERR_IO, "store: %s: not a ketenpost "
		    "database or corrupt (%s)", s->path, sqlite3_errmsg(s->db));
	return kp_fail(err, KP_ERR_IO, "store: %s: %s: %s", s->path, what,
	    sqlite3_errmsg(s->db));
}

/* Run a one-off statement and fetch the first column of its first row. */
int
sq_query_int(store_t *s, const char *sql, sqlite3_int64 *v, kp_err_t *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sq_open_fail(s, err, sql);
		goto out;
	}
	*v = sqlite3_column_int64(st, 0);
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

/* Same, for a text result into buf. */
int
sq_query_text(store_t *s, const char *sql, char *buf, size_t len,
    kp_err_t *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sq_open_fail(s, err, sql);
		goto out;
	}
	sq_col_text(st, 0, buf, len);
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

static int s_commit_hook(void *arg);

static int
s_configure(store_t *s, kp_err_t *err)
{
	sqlite3_int64 page_size;
	char mode[16];

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	if (sqlite3_exec(s->db, "PRAGMA page_size = " STORE_PAGE_SIZE, NULL,
	    NULL, NULL) != SQLITE_OK)
		return sq_open_fail(s, err, "page size");
	if (sq_query_int(s, "PRAGMA page_size", &page_size, err) != 0)
		return -1;
	s->page_size = (int)page_size;
	if (sq_query_text(s, "PRAGMA journal_mode = WAL", mode, sizeof(mode),
	    err) != 0)
		return -1;
	if (strcmp(mode, "wal") != 0)
		return kp_fail(err, KP_ERR_IO, "store: %s: cannot use WAL "
		    "journal (got %s)", s->path, mode);
	/* temp_store = MEMORY: the statement and savepoint sub-journals
	 * (a SAVEPOINT per API request but a send, apisrv.c) stay in
	 * memory instead of a temporary file; they only serve a rollback
	 * within the open transaction, never recovery, so durability is
	 * unchanged.  On disk
	 * they were most of the sender's writes (docs/PERFORMANCE.md).
	 * Until the checkpoint thread runs (end of store_open), SQLite's own
	 * automatic checkpoint serves the migration, as often as before. */
	if (sqlite3_exec(s->db, "PRAGMA synchronous = FULL;"
	    "PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;"
	    "PRAGMA temp_store = MEMORY;"
	    "PRAGMA cache_size = " STORE_CACHE_SIZE ";",
	    NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_wal_autocheckpoint(s->db, STORE_WAL_SOFT / s->page_size) !=
	    SQLITE_OK)
		return sq_open_fail(s, err, "pragmas");
	(void)sqlite3_commit_hook(s->db, s_commit_hook, s);
	return 0;
}

/*
 * After every commit (SQLite calls it with the write lock released and
 * the pages in the log): the checkpoint thread's cue (store_ckpt.c says
 * what happens when).  Always SQLITE_OK: the commit has happened, and a
 * checkpoint that did not is retried at the next commit.
 */
static int
s_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	store_t *s = arg;

	(void)name;
	store_ckpt_commit(s->ckpt, db, pages);
	return SQLITE_OK;
}

/* Checkpoints from now on by the thread; replaces the automatic one. */
static int
s_start_ckpt(store_t *s, kp_err_t *err)
{
	if (store_ckpt_new(s->path, s->page_size, &s->ckpt, err) != 0)
		return -1;
	sqlite3_wal_hook(s->db, s_wal_hook, s);
	return 0;
}

/* PRAGMA quick_check on a small database; a big one is left to SQLite's
 * per-page checks (see the header comment). */
static int
s_quick_check(store_t *s, kp_err_t *err)
{
	sqlite3_int64 pages;
	char res[128], *p;

	if (sq_query_int(s, "PRAGMA page_count", &pages, err) != 0)
		return -1;
	if (pages > STORE_QUICK_CHECK_BYTES / s->page_size)
		return 0;
	if (sq_query_text(s, "PRAGMA quick_check(1)", res, sizeof(res),
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

/* The one file's SQL for statement id, or NULL (none, or two). */
static const char *
s_sql_of(int id)
{
	const char *sql = NULL;
	size_t f;

	for (f = 0; f < sizeof(s_sql_files) / sizeof(s_sql_files[0]); f++) {
		if (s_sql_files[f][id] == NULL)
			continue;
		if (sql != NULL)
			return NULL;
		sql = s_sql_files[f][id];
	}
	return sql;
}

static int
s_prepare(store_t *s, kp_err_t *err)
{
	const char *sql;
	int i;

	for (i = 0; i < ST_COUNT; i++) {
		if ((sql = s_sql_of(i)) == NULL)
			return kp_fail(err, KP_ERR_IO, "store: statement %d has "
			    "no SQL or two (a bug)", i);
		if (sqlite3_prepare_v3(s->db, sql, -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK)
			return sq_open_fail(s, err, sql);
	}
	return 0;
}

/*
 * Process-wide SQLite settings, before its first use.  Memory statistics
 * off: with them on, every allocation SQLite makes (several per row
 * written) takes a global mutex to count bytes nobody reads here
 * (sqlite3_status is not used).  sqlite3_config refuses once SQLite is
 * initialised; that only costs the saving, so its answer is ignored.
 */
static void
s_library_init(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int
store_open(const char *state_dir, const uint8_t meta_key[32],
    const uint8_t pseudonym_key[32], store_t **out, kp_err_t *err)
{
	static pthread_once_t library_once = PTHREAD_ONCE_INIT;

	store_t *s;
	int n;

	*out = NULL;
	(void)pthread_once(&library_once, s_library_init);
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
			sq_open_fail(s, err, "open");
		goto fail;
	}
	if (s_configure(s, err) != 0 || s_quick_check(s, err) != 0 ||
	    sq_seal_register(s, meta_key, pseudonym_key, err) != 0 ||
	    sq_outbox_register(s, err) != 0 ||
	    sq_migrate(s, err) != 0 || sq_counts_open(s, err) != 0 ||
	    s_prepare(s, err) != 0 ||
	    s_start_ckpt(s, err) != 0)
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
	/* the thread first: the main connection must close last, so that its
	 * close checkpoints the whole log and removes it, as before */
	store_ckpt_destroy(&s->ckpt);
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	sq_seal_free(s);
	free(s);
	*self_p = NULL;
}


/* ---- transactions and savepoints ---- */

int
sq_exec_st(store_t *s, int which, const char *what, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[which];
	int ret = sq_step_done(s, st, what, err);

	sq_done(st);
	return ret;
}

/*
 * PRAGMA synchronous, not a prepared statement: SQLite applies a pragma
 * when it compiles it, so a prepared one would set nothing when stepped
 * again.  Only outside a transaction ("Safety level may not be changed
 * inside a transaction").
 */
static int
s_sync(store_t *s, bool full)
{
	if (sqlite3_exec(s->db, full ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	s->sync_normal = !full;
	return 0;
}

/* The end of an unflushed transaction: synchronous back to FULL.  If that
 * fails (out of memory) the next store_begin tries again, and until it
 * succeeds the commit hook refuses every commit but an unflushed one. */
static void
s_unflushed_end(store_t *s)
{
	if (!s->unflushed_txn)
		return;
	s->unflushed_txn = false;
	(void)s_sync(s, true);
}

/* Before every commit, autocommitted statements included: a non-zero
 * return turns it into a rollback.  While the connection is NORMAL only
 * the COMMIT of the unflushed transaction itself may pass: not a
 * statement committing on its own after SQLite rolled that transaction
 * back by itself (a full disk), nor anything once setting FULL again
 * failed. */
static int
s_commit_hook(void *arg)
{
	store_t *s = arg;

	return s->sync_normal && !(s->unflushed_txn && s->committing);
}

int
store_begin(store_t *s, kp_err_t *err)
{
	if (s->sync_normal && s_sync(s, true) != 0)
		return sq_fail(s, err, "begin (synchronous = FULL)");
	if (sq_exec_st(s, ST_BEGIN, "begin", err) != 0)
		return -1;
	sq_counts_begin(s);
	sq_partners_forget(s);
	return 0;
}

int
store_begin_unflushed(store_t *s, kp_err_t *err)
{
	if (s_sync(s, false) != 0)
		return sq_fail(s, err, "begin (synchronous = NORMAL)");
	s->unflushed_txn = true;
	if (sq_exec_st(s, ST_BEGIN, "begin", err) != 0) {
		s_unflushed_end(s);
		return -1;
	}
	sq_counts_begin(s);
	sq_partners_forget(s);
	return 0;
}

int
store_commit(store_t *s, kp_err_t *err)
{
	s->committing = true;
	if (sq_exec_st(s, ST_COMMIT, "commit", err) != 0) {
		s->committing = false;
		return -1;
	}
	s->committing = false;
	s_unflushed_end(s);
	sq_counts_commit(s);
	sq_partners_commit(s);
	sq_seal_forget(s);
	return 0;
}

void
store_rollback(store_t *s)
{
	sq_counts_rollback(s);
	sq_partners_forget(s);
	sq_seal_forget(s);
	if (!sqlite3_get_autocommit(s->db))  /* else SQLite undid it */
		(void)sq_exec_st(s, ST_ROLLBACK, "rollback", NULL);
	s_unflushed_end(s);
}


/* Step an INSERT of event `id` into `table`: a duplicate id is
 * KP_ERR_INVALID_ARG, anything else KP_ERR_IO.  OUT: *seq. */
int
sq_step_insert(store_t *s, sqlite3_stmt *st, const uint8_t id[16],
    const char *table, uint64_t *seq, kp_err_t *err)
{
	char text[KP_UUID_TEXT_LEN + 1], what[32];

	if (sqlite3_step(st) == SQLITE_DONE) {
		*seq = (uint64_t)sqlite3_last_insert_rowid(s->db);
		return 0;
	}
	kp_uuid_format(id, text);
	if (sq_is_dup(s))
		return kp_fail(err, KP_ERR_INVALID_ARG, "store: event %s "
		    "already in %s", text, table);
	snprintf(what, sizeof(what), "%s insert", table);
	return sq_fail(s, err, what);
}

int
store_savepoint(store_t *s, kp_err_t *err)
{
	bool fresh = sqlite3_get_autocommit(s->db) != 0;

	/* one level: the counts (store_counts.c) hold one savepoint's */
	if (s->counts.in_item && !fresh)
		return kp_fail(err, KP_ERR_INVALID_ARG, "store: a savepoint is "
		    "already open");
	if (sq_exec_st(s, ST_SAVEPOINT, "savepoint", err) != 0)
		return -1;
	sq_counts_savepoint(s, fresh);
	if (fresh)
		sq_partners_forget(s);  /* the savepoint begins the transaction */
	return 0;
}

int
store_release(store_t *s, kp_err_t *err)
{
	if (sq_exec_st(s, ST_RELEASE, "release", err) != 0) {
		sq_partners_forget(s);  /* whatever became of them */
		return -1;
	}
	sq_counts_release(s);
	if (sqlite3_get_autocommit(s->db))
		sq_partners_commit(s);  /* the savepoint was the transaction */
	return 0;
}

int
store_undo(store_t *s, kp_err_t *err)
{
	if (sq_exec_st(s, ST_UNDO, "rollback to savepoint", err) != 0)
		return -1;
	sq_counts_undo(s);
	/* the partners of the whole transaction, not only the undone part:
	 * forgetting one only costs its statement again */
	sq_partners_forget(s);
	return store_release(s, err);
}

bool
store_in_txn(store_t *s)
{
	return sqlite3_get_autocommit(s->db) == 0;
}

uint64_t
store_changes(store_t *s)
{
	return (uint64_t)sqlite3_total_changes64(s->db);
}
