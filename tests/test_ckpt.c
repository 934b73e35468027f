/*
 * test_ckpt.c: daemon/store_ckpt.c, the WAL checkpoints on their own
 * thread.
 *
 * A stream of commits through the real store (audit entries of a few KiB,
 * several per transaction, as a daemon's batch writes them): the -wal
 * file never passes the bound (STORE_WAL_HARD bytes plus one transaction),
 * with the thread keeping up and with the thread held (then the main
 * thread's bound alone keeps it); everything committed is there after
 * close and reopen; closing while a pass runs leaves a whole database and
 * no log.  No timing asserts: waits are for a condition, with a bound
 * (thread_copies_the_tail_at_low_load needs, once in three cycles, one
 * commit to land while a pass copies 32 MiB, tens of milliseconds: it
 * did in 26 runs of 26, with both cores busy and under ASan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "common.h"
#include "store.h"
#include "store_int.h"

TestSuite(ckpt, .init = test_init);

#define NEW_PAGE 8192        /* a new store's page size (store.c) */
#define ENTRY_MAX 6144       /* an entry is 3/4 of a page, at most this */
#define PER_TXN 40           /* entries per transaction */

/* The page size of this test's file (a file made by an older version has
 * 4 KiB pages: the bounds are in bytes, so they hold for both) and the
 * length of each audit entry. */
static int s_page = NEW_PAGE;
static size_t s_entry_len = NEW_PAGE * 3 / 4;

#define FRAME (s_page + 24)  /* a WAL frame: page and frame header */
#define HARD_PAGES (STORE_WAL_HARD / s_page)
#define SOFT_PAGES (STORE_WAL_SOFT / s_page)

static const uint8_t s_meta_key[32] = { 0x43 };

struct fx {
	char tmp[256];
	char dir[300];
	char wal[340];
	store_t *s;
	kp_err_t err;
	uint64_t seq;            /* entries appended so far */
};

static void
s_open(struct fx *f)
{
	cr_assert_eq(store_open(f->dir, s_meta_key, test_pseudonym_key,
	    &f->s, &f->err), 0,
	    "store_open: %s", f->err.msg);
	cr_assert_not_null(f->s->ckpt, "no checkpoint thread");
	cr_assert_eq(f->s->page_size, s_page, "page size %d", f->s->page_size);
}

/* A store in a new folder; its file made beforehand with `page`-byte
 * pages unless that is what a new store gets anyway. */
static void
s_setup_page(struct fx *f, int page)
{
	char path[400];

	memset(f, 0, sizeof(*f));
	s_page = page;
	s_entry_len = (size_t)page * 3 / 4;
	test_tmpdir(f->tmp, sizeof(f->tmp));
	snprintf(f->dir, sizeof(f->dir), "%s/state", f->tmp);
	snprintf(f->wal, sizeof(f->wal), "%s/ketenpost.db-wal", f->dir);
	if (page != NEW_PAGE) {
		snprintf(path, sizeof(path), "%s/ketenpost.db", f->dir);
		cr_assert_eq(test_sh("mkdir -m 700 '%s' && sqlite3 '%s' "
		    "'PRAGMA page_size = %d; CREATE TABLE t (a); DROP TABLE t;'",
		    f->dir, path, page), 0);
	}
	s_open(f);
}

static void
s_setup(struct fx *f)
{
	s_setup_page(f, NEW_PAGE);
}

/* Entry seq: its number, then a byte pattern of it. */
static void
s_entry(uint64_t seq, uint8_t e[ENTRY_MAX], uint8_t leaf[32])
{
	size_t i;

	for (i = 0; i < s_entry_len; i++)
		e[i] = (uint8_t)(seq * 31 + i);
	memcpy(e, &seq, sizeof(seq));
	memset(leaf, (int)(seq & 0xff), 32);
}

/* One transaction of PER_TXN entries. */
static void
s_txn(struct fx *f)
{
	uint8_t e[ENTRY_MAX], leaf[32];
	int i;

	cr_assert_eq(store_begin(f->s, &f->err), 0, "%s", f->err.msg);
	for (i = 0; i < PER_TXN; i++) {
		f->seq++;
		s_entry(f->seq, e, leaf);
		cr_assert_eq(store_audit_append(f->s, f->seq, e, s_entry_len,
		    leaf, &f->err), 0, "%s", f->err.msg);
	}
	cr_assert_eq(store_commit(f->s, &f->err), 0, "%s", f->err.msg);
}

static long long
s_wal_size(const struct fx *f)
{
	struct stat sb;

	if (stat(f->wal, &sb) != 0)
		return 0;        /* no log: nothing in it */
	return (long long)sb.st_size;
}

/* The bound: STORE_WAL_HARD bytes of pages, the transaction that passed
 * it (each entry is less than a page, plus index and free-list pages),
 * the header. */
static long long
s_bound(void)
{
	return (long long)(HARD_PAGES + 2 * PER_TXN + 16) * FRAME + 32;
}

/* Commit until `pages` pages have gone through the log, asserting the
 * bound after every commit. */
static void
s_stream(struct fx *f, long long pages)
{
	long long n, max = 0, sz;

	for (n = 0; n * PER_TXN < pages; n++) {
		s_txn(f);
		sz = s_wal_size(f);
		if (sz > max)
			max = sz;
		cr_assert_leq(sz, s_bound(), "WAL %lld bytes after %llu "
		    "entries, bound %lld", sz, (unsigned long long)f->seq,
		    s_bound());
	}
	cr_log_info("largest WAL %lld bytes (bound %lld)", max, s_bound());
}

struct check {
	uint64_t n;
	int bad;
};

static int
s_check_one(void *arg, uint64_t seq, const uint8_t *entry, size_t len,
    const uint8_t leaf[32])
{
	struct check *c = arg;
	uint8_t e[ENTRY_MAX], l[32];

	s_entry(seq, e, l);
	if (seq != c->n + 1 || len != s_entry_len ||
	    memcmp(entry, e, len) != 0 || memcmp(leaf, l, 32) != 0)
		c->bad++;
	c->n = seq;
	return 0;
}

/* Every entry appended, in order and intact, and the file whole. */
static void
s_check_all(struct fx *f)
{
	struct check c = { 0, 0 };
	char path[400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	cr_assert_eq(store_audit_entries(f->s, s_check_one, &c, &f->err), 0,
	    "%s", f->err.msg);
	cr_assert_eq(c.n, f->seq, "%llu of %llu entries",
	    (unsigned long long)c.n, (unsigned long long)f->seq);
	cr_assert_eq(c.bad, 0, "%d entries damaged", c.bad);
	snprintf(path, sizeof(path), "%s/ketenpost.db", f->dir);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st,
	    NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
s_teardown(struct fx *f)
{
	store_close(&f->s);
	cr_assert_eq(test_sh("rm -rf '%s'", f->tmp), 0);
}

/* The thread keeps the log bounded while the loop writes, its passes
 * doing the copying (how much the main thread copies at a cycle's end
 * depends on timing: logged, not asserted). */
static void
s_thread_keeps_wal_bounded(int page)
{
	struct fx f;
	store_ckpt_stats_t st;

	s_setup_page(&f, page);
	s_stream(&f, 2LL * HARD_PAGES);
	store_ckpt_stats(f.s->ckpt, &st);
	cr_log_info("%llu passes (%llu busy); main thread: %llu tails, %llu "
	    "at the bound", (unsigned long long)st.passes,
	    (unsigned long long)st.failed, (unsigned long long)st.tails,
	    (unsigned long long)st.bounds);
	cr_assert_gt(st.passes, 0, "the thread never checkpointed");
	store_close(&f.s);
	cr_assert_eq(s_wal_size(&f), 0, "log left after a clean close");
	s_open(&f);
	s_check_all(&f);
	s_teardown(&f);
}

Test(ckpt, thread_keeps_wal_bounded)
{
	s_thread_keeps_wal_bounded(NEW_PAGE);
}

/* A file made by an older version (pages of 4 KiB) keeps its page size,
 * and its log the same bound in bytes. */
Test(ckpt, thread_keeps_wal_bounded_with_4_kib_pages)
{
	s_thread_keeps_wal_bounded(4096);
}

/* With the thread held (as if it never finished a pass), the main
 * thread's bound alone keeps the log within STORE_WAL_HARD bytes. */
Test(ckpt, bound_without_thread)
{
	struct fx f;
	store_ckpt_stats_t st;

	s_setup(&f);
	store_ckpt_hold(f.s->ckpt);
	s_stream(&f, 2LL * HARD_PAGES + 8 * PER_TXN);
	store_ckpt_stats(f.s->ckpt, &st);
	cr_assert_eq(st.passes, 0, "a pass ran while held");
	cr_assert_eq(st.tails, 0, "a tail copied with no pass before it");
	cr_assert_geq(st.bounds, 2, "the bound checkpointed %llu times",
	    (unsigned long long)st.bounds);
	store_ckpt_release(f.s->ckpt);
	store_close(&f.s);
	s_open(&f);
	s_check_all(&f);
	s_teardown(&f);
}

/* Wait (bounded) until the thread has no pass running or asked for. */
static void
s_thread_quiet(struct fx *f, store_ckpt_stats_t *st)
{
	int i;

	for (i = 0; i < 6000; i++) {
		store_ckpt_stats(f->s->ckpt, st);
		if (!st->running && !st->asked)
			return;
		usleep(5000);
	}
	cr_assert_fail("the checkpoint thread did not come to rest in 30 s");
}

/* A writer that leaves the thread time between its commits (a daemon at
 * low load), but commits once while a pass copies, so that the pass ends
 * with frames left: the thread copies those last frames too, the main
 * thread never copies, and the log still starts afresh every cycle.  (The
 * main thread's copy synced two files inside the commit that ended the
 * cycle, ahead of everything the daemon was answering.) */
Test(ckpt, thread_copies_the_tail_at_low_load)
{
	struct fx f;
	store_ckpt_stats_t st;
	long long n;
	uint64_t tails_asked = 0;
	int i;

	s_setup(&f);
	for (n = 0; n * PER_TXN < 3LL * SOFT_PAGES + 2 * PER_TXN; n++) {
		s_txn(&f);
		store_ckpt_stats(f.s->ckpt, &st);
		if ((st.asked || st.running) && st.tail_asks == tails_asked) {
			/* a cycle's first pass: commit once more as it copies
			 * (waiting up to 10 s for the thread to start it) */
			for (i = 0; i < 200000 && st.asked && !st.running;
			    i++) {
				usleep(50);
				store_ckpt_stats(f.s->ckpt, &st);
			}
			s_txn(&f);
			n++;
		}
		s_thread_quiet(&f, &st);
		tails_asked = st.tail_asks;
		cr_assert_leq(s_wal_size(&f), s_bound());
	}
	store_ckpt_stats(f.s->ckpt, &st);
	cr_log_info("%llu passes, %llu for a tail, %llu restarts; main "
	    "thread: %llu tails, %llu at the bound",
	    (unsigned long long)st.passes, (unsigned long long)st.tail_asks,
	    (unsigned long long)st.restarts, (unsigned long long)st.tails,
	    (unsigned long long)st.bounds);
	cr_assert_geq(st.tail_asks, 1, "no pass ended with frames left");
	cr_assert_geq(st.restarts, 2, "the log started afresh %llu times",
	    (unsigned long long)st.restarts);
	cr_assert_eq(st.tails, 0, "the main thread copied %llu tails",
	    (unsigned long long)st.tails);
	cr_assert_eq(st.bounds, 0, "the main thread copied at the bound");
	store_close(&f.s);
	s_open(&f);
	s_check_all(&f);
	s_teardown(&f);
}

/* Closed while a pass is copying: the close waits for it, the main
 * connection closes last and removes the log, nothing is lost.  Several
 * rounds, each closing the moment a pass is seen running. */
Test(ckpt, close_during_pass)
{
	struct fx f;
	store_ckpt_stats_t st;
	int round, n, seen = 0;

	s_setup(&f);
	for (round = 0; round < 4; round++) {
		st.running = false;
		for (n = 0; n < 4 * HARD_PAGES / PER_TXN && !st.running;
		    n++) {
			s_txn(&f);
			store_ckpt_stats(f.s->ckpt, &st);
		}
		seen += st.running;
		store_close(&f.s);
		cr_assert_eq(s_wal_size(&f), 0, "log left after close");
		s_open(&f);
		s_check_all(&f);
	}
	cr_log_info("%d of 4 closes during a pass", seen);
	cr_assert_gt(seen, 0, "no close happened during a pass");
	s_teardown(&f);
}

/* A checkpoint of the main connection (the purge's TRUNCATE) waits for
 * the thread's pass instead of failing busy, and empties the log. */
Test(ckpt, truncate_beside_thread)
{
	struct fx f;
	bool done = false;
	int n;

	s_setup(&f);
	for (n = 0; n < (SOFT_PAGES + 1024) / PER_TXN; n++)
		s_txn(&f);
	cr_assert_eq(store_checkpoint(f.s, 1000, &done, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert(done, "TRUNCATE checkpoint not done beside the thread");
	cr_assert_eq(s_wal_size(&f), 0);
	s_check_all(&f);
	s_teardown(&f);
}
