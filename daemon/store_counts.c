/*
 * store_counts.c: the outbox's events per partner and state, and the
 * inbox's unacknowledged and total events, kept up to date as rows change
 * instead of counted when asked.
 *
 * `ketenpost status` and every metrics scrape ask for these counts.
 * Counting them walked a whole index (outbox_partner; the inbox's table):
 * at 150,000 queued events kpbench's status poll every 50 ms took 48% of
 * the sender during a drain (perf), and at a million a scrape held the
 * daemon's loop, and with it delivery, for about a tenth of a second
 * (PERFORMANCE.md, "Counts kept, not counted").
 *
 * Owns two TEMP tables of the store's one connection and the TEMP triggers
 * on main.outbox and main.inbox that keep them.  TEMP: they live in memory
 * (temp_store = MEMORY), so they cost no page in the WAL and nothing on
 * disk; a trigger's write is part of the statement that fired it, so a
 * statement or transaction that rolls back takes its counts back with it.
 * They are rebuilt from the rows at every open (one walk of the same
 * indexes, once), so they are never the only record of anything and an
 * older daemon, which has no such triggers, can write the file meanwhile.
 *
 * Must never count a row that another connection wrote while the store is
 * open: only the daemon's own connection writes these tables (the offline
 * tools read; a hand edit with sqlite3 while the daemon runs shows after
 * its next start).
 */
#include <sqlite3.h>

#include "store_int.h"

static const char s_counts_sql[] =
	"CREATE TEMP TABLE outbox_counts ("
	" to_oin TEXT NOT NULL,"
	" state INTEGER NOT NULL,"
	" n INTEGER NOT NULL,"
	" PRIMARY KEY (to_oin, state)) WITHOUT ROWID;"
	"INSERT INTO temp.outbox_counts SELECT to_oin, state, count(*)"
	" FROM main.outbox INDEXED BY outbox_partner GROUP BY to_oin, state;"
	"CREATE TEMP TRIGGER outbox_counts_insert AFTER INSERT ON main.outbox"
	" BEGIN"
	" INSERT OR IGNORE INTO outbox_counts VALUES (new.to_oin, new.state, 0);"
	" UPDATE outbox_counts SET n = n + 1"
	"  WHERE to_oin = new.to_oin AND state = new.state;"
	" END;"
	"CREATE TEMP TRIGGER outbox_counts_update"
	" AFTER UPDATE OF to_oin, state ON main.outbox"
	" WHEN old.to_oin IS NOT new.to_oin OR old.state IS NOT new.state"
	" BEGIN"
	" UPDATE outbox_counts SET n = n - 1"
	"  WHERE to_oin = old.to_oin AND state = old.state;"
	" INSERT OR IGNORE INTO outbox_counts VALUES (new.to_oin, new.state, 0);"
	" UPDATE outbox_counts SET n = n + 1"
	"  WHERE to_oin = new.to_oin AND state = new.state;"
	" END;"
	"CREATE TEMP TRIGGER outbox_counts_delete AFTER DELETE ON main.outbox"
	" BEGIN"
	" UPDATE outbox_counts SET n = n - 1"
	"  WHERE to_oin = old.to_oin AND state = old.state;"
	" END;"
	"CREATE TEMP TABLE inbox_counts ("
	" unacked INTEGER NOT NULL,"
	" total INTEGER NOT NULL);"
	"INSERT INTO temp.inbox_counts SELECT"
	" (SELECT count(*) FROM main.inbox INDEXED BY inbox_unacked"
	"  WHERE acked = 0),"
	" (SELECT count(*) FROM main.inbox);"
	"CREATE TEMP TRIGGER inbox_counts_insert AFTER INSERT ON main.inbox"
	" BEGIN"
	" UPDATE inbox_counts SET total = total + 1,"
	"  unacked = unacked + (new.acked = 0);"
	" END;"
	"CREATE TEMP TRIGGER inbox_counts_update AFTER UPDATE OF acked"
	" ON main.inbox WHEN (old.acked = 0) IS NOT (new.acked = 0)"
	" BEGIN"
	" UPDATE inbox_counts SET unacked = unacked + (new.acked = 0)"
	"  - (old.acked = 0);"
	" END;"
	"CREATE TEMP TRIGGER inbox_counts_delete AFTER DELETE ON main.inbox"
	" BEGIN"
	" UPDATE inbox_counts SET total = total - 1,"
	"  unacked = unacked - (old.acked = 0);"
	" END;";

int
sq_counts_open(store_t *s, kp_err_t *err)
{
	if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return sq_open_fail(s, err, "count the outbox and inbox");
	if (sqlite3_exec(s->db, s_counts_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sq_open_fail(s, err, "count the outbox and inbox");
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}
