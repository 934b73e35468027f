/*
 * store_ckpt.c: WAL checkpoints on a second thread, off the daemon's loop.
 *
 * Owns one thread and its own sqlite3 connection to the store's file
 * (SQLite's pattern for checkpoints beside a busy writer: automatic
 * checkpoints are off on the main connection, whose WAL hook, store.c,
 * wakes this thread once the log passes STORE_WAL_SOFT pages).  The thread
 * runs PASSIVE checkpoints: they copy committed frames into the database
 * file without ever taking the writer's lock, so the loop keeps writing
 * while the other core copies and fsyncs.
 *
 * Why a bound is still needed: SQLite starts the log from its beginning
 * only when a write transaction begins with every frame already copied.
 * A writer that commits while each pass runs leaves a few frames behind
 * each time, and the log would grow.  Past STORE_WAL_HARD pages the main
 * thread closes the gap itself (store_ckpt_bound: waits for the pass in
 * progress, then one PASSIVE checkpoint of the few frames left, with no
 * writer running, so the next transaction restarts the log).  The log is
 * therefore at most STORE_WAL_HARD pages plus one transaction, except
 * while an outside reader (a read transaction of another process) pins
 * old frames, which no checkpoint mode can copy past.
 *
 * Shared state, all under mu: want (main: the log passed the soft mark),
 * stop (main: store_close), hold (main: holders checkpointing themselves
 * now, start no pass), running (thread: a pass is in progress), and the counters.
 * cv wakes the thread (want, stop, hold released) and the main thread
 * waiting for a pass to end.  Nothing else is shared: the connection is
 * opened by store_ckpt_new before the thread exists, used by the thread
 * only, and closed after the join.
 *
 * Must never: touch the main connection, its statements or any other
 * store state; write rows (a checkpoint only copies committed pages);
 * handle signals (all blocked in the thread: the daemon reads them from
 * a signalfd); log (the store never logs); outlive store_close.  Nothing
 * is lost on a crash: a frame not yet copied is still in the WAL, which
 * SQLite replays at the next open.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_int.h"

struct store_ckpt {
	pthread_t thread;
	sqlite3 *db;                 /* the thread's own connection */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool want, stop, running;
	unsigned hold;               /* holders: no pass starts while > 0 */
	store_ckpt_stats_t stats;
	int kicked_at;               /* main thread only: log pages at the
	                              * last kick (not shared, not under mu) */
};

/* One PASSIVE checkpoint on the thread's connection (mu not held). */
static int
s_pass(store_ckpt_t *c)
{
	int log = 0, done = 0;

	return sqlite3_wal_checkpoint_v2(c->db, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, &log, &done);
}

static void *
s_main(void *arg)
{
	store_ckpt_t *c = arg;
	int rc;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->stop && (!c->want || c->hold > 0))
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		c->want = false;
		c->running = true;
		pthread_mutex_unlock(&c->mu);
		rc = s_pass(c);
		pthread_mutex_lock(&c->mu);
		c->running = false;
		c->stats.passes++;
		if (rc != SQLITE_OK)
			c->stats.failed++;   /* busy or error: the next kick retries */
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

/* Start the thread with every signal blocked (it inherits the mask). */
static int
s_start(store_ckpt_t *c, kp_err_t *err)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->thread, NULL, s_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return kp_fail(err, KP_ERR_IO, "store: checkpoint thread: %s",
		    strerror(rc));
	return 0;
}

int
store_ckpt_new(const char *path, store_ckpt_t **out, kp_err_t *err)
{
	store_ckpt_t *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "store: out of memory");
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
store_ckpt_kick(store_ckpt_t *c, int pages)
{
	if (c == NULL)
		return;
	if (pages < c->kicked_at)
		c->kicked_at = 0;            /* the log started afresh */
	if (pages < c->kicked_at + STORE_WAL_SOFT)
		return;
	c->kicked_at = pages;
	pthread_mutex_lock(&c->mu);
	if (!c->want) {
		c->want = true;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
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

/* The hard bound (from the main connection's WAL hook, between
 * transactions): no pass running, then one PASSIVE checkpoint on the main
 * connection of what the thread has not copied yet. */
void
store_ckpt_bound(store_ckpt_t *c, sqlite3 *main_db)
{
	int log = 0, done = 0;

	store_ckpt_hold(c);
	(void)sqlite3_wal_checkpoint_v2(main_db, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, &log, &done);
	pthread_mutex_lock(&c->mu);
	c->stats.bounds++;
	pthread_mutex_unlock(&c->mu);
	store_ckpt_release(c);
}

void
store_ckpt_stats(store_ckpt_t *c, store_ckpt_stats_t *st)
{
	pthread_mutex_lock(&c->mu);
	*st = c->stats;
	st->running = c->running;
	pthread_mutex_unlock(&c->mu);
}
