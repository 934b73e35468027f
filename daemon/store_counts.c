/*
 * store_counts.c: the outbox's events per state and the inbox's
 * unacknowledged and total events, kept as the store's own functions change
 * rows instead of counted when asked.
 *
 * `ketenpost status` and every metrics scrape ask for these counts.
 * Counting them walked a whole index (outbox_partner; the inbox's table):
 * at 150,000 queued events kpbench's status poll every 50 ms took 48% of
 * the sender during a drain (perf), and at a million each one held the
 * daemon's loop, and with it delivery, for a tenth of a second or more
 * (PERFORMANCE.md, "Counts kept, not counted").  TEMP triggers kept them
 * correctly but cost 6-15 us per insert and settle (measured), most of a
 * trigger being its own sub-program; a few additions here cost nothing.
 *
 * Owns s->counts.  Only the functions that change a row's state count, and
 * only once their statement succeeded: store_outbox_insert, _settle and
 * _expire (store_outbox.c, whose invariants say these are the only ones),
 * store_inbox_insert and _ack (store_inbox.c); no outbox or inbox row is
 * ever deleted.  A change inside a transaction is held apart until the
 * transaction commits (store_commit) and dropped if it rolls back
 * (store_rollback); one inside the open savepoint likewise until it is
 * released or undone (store_release, store_undo), so the counts follow
 * what the file holds through every rollback.  A change made outside any
 * transaction has committed when its statement returns.  They are counted
 * from the rows at every open (one walk of the same indexes, once), so a
 * count that went wrong is right again after a restart.
 *
 * Must never count a row another connection wrote: only the daemon's own
 * connection writes these tables (the offline tools read; a hand edit with
 * sqlite3 while the daemon runs shows after its next start).
 */
#include <string.h>

#include <sqlite3.h>

#include "store_int.h"

/* The counts at open: the pending, rejected and dead rows by their
 * partial indexes (store_schema.c, version 6), the delivered ones as all
 * rows (by the smallest full index) less those; the inbox by its partial
 * index of unacked rows and its table.  Every query is covered by its
 * index: no row is read. */
static const char s_outbox_sql[] = "SELECT 1, count(*) FROM outbox "
    "INDEXED BY outbox_pending WHERE state = 1 UNION ALL "
    "SELECT state, count(*) FROM outbox INDEXED BY outbox_rejected_dead "
    "WHERE state IN (3, 4) GROUP BY state UNION ALL "
    "SELECT 0, count(*) FROM outbox";
static const char s_inbox_sql[] = "SELECT (SELECT count(*) FROM inbox "
    "INDEXED BY inbox_unacked WHERE acked = 0), (SELECT count(*) FROM inbox)";

static int
s_count_outbox(store_t *s, kp_err_t *err)
{
	sqlite3_stmt *st = NULL;
	uint64_t all = 0, others = 0;
	int rc, state, ret = -1;

	if (sqlite3_prepare_v2(s->db, s_outbox_sql, -1, &st, NULL) !=
	    SQLITE_OK)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		state = sqlite3_column_int(st, 0);
		if (state >= STORE_PENDING && state <= STORE_DEAD)
			s->counts.kept[state] += sq_col_u64(st, 1);
		else if (state == 0)
			all = sq_col_u64(st, 1);
	}
	/* state is CHECKed to 1..4: what is not pending, rejected or dead
	 * was delivered */
	for (state = STORE_PENDING; state <= STORE_DEAD; state++)
		if (state != STORE_DELIVERED)
			others += s->counts.kept[state];
	s->counts.kept[STORE_DELIVERED] = all >= others ? all - others : 0;
	if (rc == SQLITE_DONE)
		ret = 0;
out:
	if (ret != 0)
		sq_open_fail(s, err, "count the outbox");
	sqlite3_finalize(st);
	return ret;
}

static int
s_count_inbox(store_t *s, kp_err_t *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(s->db, s_inbox_sql, -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		s->counts.kept[SC_IN_UNACKED] = sq_col_u64(st, 0);
		s->counts.kept[SC_IN_TOTAL] = sq_col_u64(st, 1);
		ret = 0;
	} else
		sq_open_fail(s, err, "count the inbox");
	sqlite3_finalize(st);
	return ret;
}

int
sq_counts_open(store_t *s, kp_err_t *err)
{
	memset(&s->counts, 0, sizeof(s->counts));
	return s_count_outbox(s, err) != 0 || s_count_inbox(s, err) != 0 ?
	    -1 : 0;
}

/* Drop what no transaction will commit any more. */
static void
s_forget(store_t *s)
{
	memset(s->counts.txn, 0, sizeof(s->counts.txn));
	memset(s->counts.item, 0, sizeof(s->counts.item));
	s->counts.in_item = false;
}

/* What txn and item hold has committed. */
static void
s_keep(store_t *s)
{
	int i;

	for (i = 0; i < SC_N; i++)
		s->counts.kept[i] += (uint64_t)(s->counts.txn[i] +
		    s->counts.item[i]);
	s_forget(s);
}

void
sq_count(store_t *s, int which, int64_t delta)
{
	if (sqlite3_get_autocommit(s->db)) {
		/* no transaction open: the statement committed, and anything
		 * held belonged to one SQLite ended without a commit */
		s_forget(s);
		s->counts.kept[which] += (uint64_t)delta;
	} else if (s->counts.in_item)
		s->counts.item[which] += delta;
	else
		s->counts.txn[which] += delta;
}

void
sq_counts_begin(store_t *s)
{
	s_forget(s);
}

void
sq_counts_commit(store_t *s)
{
	s_keep(s);
}

void
sq_counts_rollback(store_t *s)
{
	s_forget(s);
}

void
sq_counts_savepoint(store_t *s, bool fresh)
{
	if (fresh)
		s_forget(s);      /* the savepoint begins the transaction */
	memset(s->counts.item, 0, sizeof(s->counts.item));
	s->counts.in_item = true;
}

void
sq_counts_release(store_t *s)
{
	int i;

	if (sqlite3_get_autocommit(s->db)) {
		s_keep(s);        /* the savepoint was the transaction */
		return;
	}
	for (i = 0; i < SC_N; i++)
		s->counts.txn[i] += s->counts.item[i];
	memset(s->counts.item, 0, sizeof(s->counts.item));
	s->counts.in_item = false;
}

void
sq_counts_undo(store_t *s)
{
	memset(s->counts.item, 0, sizeof(s->counts.item));
}

/* What this connection sees: committed, and its own open transaction's,
 * as a count of the rows on it would. */
static uint64_t
s_seen(const store_t *s, int which)
{
	return s->counts.kept[which] + (uint64_t)(s->counts.txn[which] +
	    s->counts.item[which]);
}

int
store_outbox_counts(store_t *s, uint64_t counts[5], kp_err_t *err)
{
	int state;

	(void)err;
	counts[0] = 0;
	for (state = STORE_PENDING; state <= STORE_DEAD; state++)
		counts[state] = s_seen(s, state);
	return 0;
}

int
store_inbox_counts(store_t *s, uint64_t *unacked, uint64_t *total,
    kp_err_t *err)
{
	(void)err;
	*unacked = s_seen(s, SC_IN_UNACKED);
	*total = s_seen(s, SC_IN_TOTAL);
	return 0;
}
