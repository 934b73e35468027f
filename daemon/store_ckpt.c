/*
 * store_ckpt.c: WAL checkpoints on a second thread, off the daemon's loop.
 *
 * Owns one thread and its own sqlite3 connection to the store's file
 * (SQLite's pattern for checkpoints beside a busy writer: automatic
 * checkpoints are off on the main connection, whose WAL hook, store.c,
 * calls store_ckpt_commit after every commit).  The thread runs PASSIVE
 * checkpoints: they copy committed frames into the database file without
 * ever taking the writer's lock, so the loop keeps writing while the
 * other core copies and fsyncs.
 *
 * How a cycle of the log ends: SQLite starts the log from its beginning
 * only when a write transaction begins with every frame already copied.
 * One cycle: at STORE_WAL_SOFT bytes the thread copies the log (the
 * bulk); the frames committed meanwhile are copied by a further pass
 * while there are more than STORE_WAL_TAIL; once they are fewer, the
 * thread is asked again, up to TAIL_PASSES times, for what each last pass
 * left (a commit or two at low load): a pass during which the loop
 * committed nothing leaves every frame copied, and the next transaction
 * restarts the log.  Only a loop that committed during each of the
 * cycle's TAIL_PASSES tail passes (a drain) gets the rest copied by the
 * main thread itself between two transactions (at most STORE_WAL_TAIL
 * bytes).  An outside reader that pins frames keeps that copy from
 * finishing, and then every commit tries it again, as before this rule.  Why not the main
 * thread at once, as before: its copy syncs the log and the database
 * file, 1-30 ms on this kind of disk, on the loop, in the commit of the
 * pass that happened to end the cycle (the WAL hook runs inside it), so
 * every event then in the daemon waited for it; at 1,000 events/s that
 * was once or twice a second on each side (PERFORMANCE.md, ninth
 * session).  So each page is copied about once per cycle, as with
 * SQLite's own automatic checkpoint: passes on every commit would copy
 * the often-written pages (those of the random-key indexes) over and
 * over.  Past STORE_WAL_HARD bytes (the thread lags, or its passes fail)
 * the main thread copies all that is left.  The log is therefore at most
 * STORE_WAL_HARD bytes plus one transaction, except while an outside
 * reader (a read transaction of another process) pins old frames, which
 * no checkpoint mode can copy past.
 *
 * Shared state, all under mu: want (main: run a pass), stop (main:
 * store_close), hold (main: holders checkpointing themselves now, start
 * no pass), running (thread: a pass in progress), last_done (thread: the
 * frames copied when its last pass ended) and the counters.  cv wakes the
 * thread (want, stop, hold released) and the main thread waiting for a
 * pass to end.  cycle, kicked_at, kick_passes and tail_asks belong to
 * the main thread alone.  Nothing else is shared: the connection is opened by
 * store_ckpt_new before the thread exists, used by the thread only, and
 * closed after the join.
 *
 * The thread must never: touch the main connection (store_ckpt_commit
 * and the hold functions run on the main thread and use it there), its
 * statements or any other store state; write rows (a checkpoint only copies committed pages);
 * handle signals (all blocked in the thread: the daemon reads them from
 * a signalfd); log (the store never logs); outlive store_close.  Nothing
 * is lost on a crash: a frame not yet copied is still in the WAL, which
 * SQLite replays at the next open.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_int.h"
#include "worker.h"

/* Passes asked for a cycle's last frames before the main thread copies
 * them itself (a loop that committed during each of them: a drain). */
#define TAIL_PASSES 8

struct store_ckpt {
	pthread_t thread;
	sqlite3 *db;                 /* the thread's own connection */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool want, stop, running;
	unsigned hold;               /* holders: no pass starts while > 0 */
	store_ckpt_stats_t stats;
	int last_done;               /* frames copied as the last pass ended */
	/* set by store_ckpt_new, then read only: the bounds in pages */
	int soft, tail, hard;
	/* the main thread's alone (not under mu): */
	bool cycle;                  /* a pass asked for in this cycle */
	int kicked_at;               /* log pages at the last ask */
	uint64_t kick_passes;        /* stats.passes at the last ask */
	int tail_asks;               /* passes asked for this cycle's tail */
};

/* One PASSIVE checkpoint on the thread's connection (mu not held).
 * OUT: *done, the frames copied into the database by its end. */
static int
s_pass(store_ckpt_t *c, int *done)
{
	int log = 0;

	*done = 0;
	return sqlite3_wal_checkpoint_v2(c->db, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, &log, done);
}

static void *
s_main(void *arg)
{
	store_ckpt_t *c = arg;
	int rc, done;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->stop && (!c->want || c->hold > 0))
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		c->want = false;
		c->running = true;
		pthread_mutex_unlock(&c->mu);
		rc = s_pass(c, &done);
		pthread_mutex_lock(&c->mu);
		c->running = false;
		c->stats.passes++;
		c->last_done = rc == SQLITE_OK ? done : 0;
		if (rc != SQLITE_OK)
			c->stats.failed++;   /* busy or error: asked again */
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* The thread's connection: the same file, FULL sync (a checkpoint fsyncs
 * the log before it copies and the database after), a small cache (a
 * checkpoint copies frames through its own buffer, not the cache). */
static int
s_connect(store_ckpt_t *c, const char *path, kp_err_t *err)
{
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(c->db, 1);
	if (sqlite3_exec(c->db, "PRAGMA synchronous = FULL;"
	    "PRAGMA cache_size = -256; PRAGMA schema_version;", NULL, NULL,
	    NULL) != SQLITE_OK)
		goto fail;
	/* a connection of its own never checkpoints by itself */
	sqlite3_wal_autocheckpoint(c->db, 0);
	return 0;
fail:
	return kp_fail(err, KP_ERR_IO, "store: %s: checkpoint connection: %s",
	    path, c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
}

/* Start the thread (signals blocked in it, named: worker.c). */
static int
s_start(store_ckpt_t *c, kp_err_t *err)
{
	int rc = worker_thread_start(&c->thread, s_main, c, "kp-checkpoint");

	if (rc != 0)
		return kp_fail(err, KP_ERR_IO, "store: checkpoint thread: %s",
		    strerror(rc));
	return 0;
}

int
store_ckpt_new(const char *path, int page_size, store_ckpt_t **out,
    kp_err_t *err)
{
	store_ckpt_t *c;

	*out = NULL;
	if (page_size < 512)
		return kp_fail(err, KP_ERR_IO, "store: %s: page size %d",
		    path, page_size);
	/* two connections on two threads need SQLite's own locking */
	if (sqlite3_threadsafe() == 0)
		return kp_fail(err, KP_ERR_IO, "store: this SQLite library was "
		    "built without threads (SQLITE_THREADSAFE=0); ketenpostd "
		    "needs a threadsafe one");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "store: out of memory");
	c->soft = STORE_WAL_SOFT / page_size;
	c->tail = STORE_WAL_TAIL / page_size;
	c->hard = STORE_WAL_HARD / page_size;
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return kp_fail(err, KP_ERR_NOMEM, "store: checkpoint mutex");
	}
	if (pthread_cond_init(&c->cv, NULL) != 0) {
		pthread_mutex_destroy(&c->mu);
		free(c);
		return kp_fail(err, KP_ERR_NOMEM, "store: checkpoint condvar");
	}
	if (s_connect(c, path, err) != 0 || s_start(c, err) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	sqlite3_close(c->db);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
	return -1;
}

/* Stop after the pass in progress (a checkpoint is not interrupted: it
 * ends in a consistent file either way, but a whole one ends sooner than
 * a retried one), join, close the connection. */
void
store_ckpt_destroy(store_ckpt_t **cp)
{
	store_ckpt_t *c = *cp;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	sqlite3_close(c->db);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
	*cp = NULL;
}

void
store_ckpt_hold(store_ckpt_t *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->hold++;
	while (c->running)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

void
store_ckpt_release(store_ckpt_t *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->hold--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Ask the thread for a pass (coalesced with one pending); `tail`: for a
 * cycle's last frames. */
static void
s_ask(store_ckpt_t *c, int pages, bool tail)
{
	c->cycle = true;
	c->kicked_at = pages;
	pthread_mutex_lock(&c->mu);
	c->stats.tail_asks += tail;
	c->kick_passes = c->stats.passes;
	if (!c->want) {
		c->want = true;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
}

/* One PASSIVE checkpoint on the main connection, no pass running; with
 * no writer running either, it copies every frame not pinned by a
 * reader, and the next transaction restarts the log. */
static void
s_main_copy(store_ckpt_t *c, sqlite3 *main_db, uint64_t *counter)
{
	int log = 0, done = 0;

	store_ckpt_hold(c);
	(void)sqlite3_wal_checkpoint_v2(main_db, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, &log, &done);
	pthread_mutex_lock(&c->mu);
	(*counter)++;
	pthread_mutex_unlock(&c->mu);
	store_ckpt_release(c);
}

void
store_ckpt_commit(store_ckpt_t *c, sqlite3 *main_db, int pages)
{
	bool idle;
	int left;

	if (c == NULL)
		return;
	if (c->cycle && pages < c->kicked_at) {
		c->cycle = false;            /* the log started afresh */
		pthread_mutex_lock(&c->mu);
		c->stats.restarts++;
		pthread_mutex_unlock(&c->mu);
	}
	if (pages >= c->hard) {
		s_main_copy(c, main_db, &c->stats.bounds);
		return;
	}
	if (!c->cycle) {
		if (pages >= c->soft) {
			c->tail_asks = 0;
			s_ask(c, pages, false);
		}
		return;
	}
	pthread_mutex_lock(&c->mu);
	idle = !c->running && !c->want && c->stats.passes > c->kick_passes;
	left = pages - c->last_done;
	pthread_mutex_unlock(&c->mu);
	if (!idle)
		return;                      /* a pass is on its way */
	if (left > c->tail)
		s_ask(c, pages, false);      /* what came in during the last */
	else if (left > 0 && c->tail_asks < TAIL_PASSES) {
		c->tail_asks++;              /* the tail, off the loop */
		s_ask(c, pages, true);
	} else if (left > 0)
		s_main_copy(c, main_db, &c->stats.tails);
}

void
store_ckpt_stats(store_ckpt_t *c, store_ckpt_stats_t *st)
{
	pthread_mutex_lock(&c->mu);
	*st = c->stats;
	st->running = c->running;
	st->asked = c->want;
	pthread_mutex_unlock(&c->mu);
}
