/*
 * sqlcost: what single SQLite statements of the sender's kind cost, alone
 * (docs/PERFORMANCE.md, twelfth session).  In a throwaway database in
 * DIR (default /tmp) with the daemon's page size, WAL and secure_delete
 * (synchronous OFF: the disk is not what is measured), in transactions
 * of 450 rows as an API pass:
 *   - an outbox-sized row (20 columns, a 1,600-byte envelope) inserted
 *     one per statement, then 10 and 50 rows per INSERT ... VALUES list;
 *   - a side table's insert of that envelope, its delete by rowid 1,000
 *     rows later, and a receipt's insert into a table of its own (the
 *     layout F of bench/outboxsim.py);
 *   - a new case's link (schema version 8's links, random pseudonyms),
 *     inserted as version 8 did (INSERT ... SELECT ... WHERE NOT EXISTS,
 *     which SQLite runs through a temporary table) and as since the
 *     thirteenth session (a look-up by pseudonym, then INSERT ...
 *     VALUES), and with no check at all, the floor.
 * Prints CPU microseconds per row, commits included but for the links.
 *
 *     build-bench/bin/sqlcost [DIR]
 */
#include <sodium.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define EVENTS 30000
#define PASS 450
#define LAG 1000
#define OB_NCOLS 20

static const char s_pragmas[] = "PRAGMA page_size = 8192;"
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;"
    "PRAGMA secure_delete = ON; PRAGMA cache_size = -8192;";

/* The outbox of schema version 8 (daemon/store_schema.c), its indexes. */
static const char s_outbox[] = "CREATE TABLE outbox (seq INTEGER PRIMARY "
    "KEY AUTOINCREMENT, event_id BLOB NOT NULL UNIQUE, event_type INTEGER "
    "NOT NULL, to_oin TEXT NOT NULL, case_sealed TEXT NOT NULL, case_ref "
    "BLOB NOT NULL, in_reply_to BLOB, state INTEGER NOT NULL, attempts "
    "INTEGER NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT "
    "NULL, next_attempt_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, "
    "envelope_digest BLOB NOT NULL, receipt_digest BLOB, reason INTEGER NOT "
    "NULL DEFAULT 0, receipted_ms INTEGER NOT NULL DEFAULT 0, purpose TEXT "
    "NOT NULL, legal_basis TEXT NOT NULL, fields TEXT NOT NULL, "
    "retention_until_ms INTEGER NOT NULL, event_key BLOB, envelope BLOB, "
    "receipt BLOB, idem_client TEXT, idem_key TEXT, idem_hash BLOB, "
    "route_sealed BLOB, reduced_ms INTEGER NOT NULL DEFAULT 0, link_id "
    "INTEGER);"
    "CREATE INDEX outbox_retention ON outbox (retention_until_ms) WHERE "
    "event_key IS NOT NULL;"
    "CREATE UNIQUE INDEX outbox_idem ON outbox (idem_client, idem_key) "
    "WHERE idem_key IS NOT NULL;"
    "CREATE INDEX outbox_meta ON outbox (created_ms) WHERE event_key IS "
    "NULL AND reduced_ms = 0;"
    "CREATE INDEX outbox_link ON outbox (link_id) WHERE link_id IS NOT NULL;"
    "CREATE INDEX outbox_pending ON outbox (to_oin, state) WHERE state = 1;"
    "CREATE INDEX outbox_expiry ON outbox (expires_ms) WHERE state = 1;";

static const char s_side[] = "CREATE TABLE env (seq INTEGER PRIMARY KEY, "
    "envelope BLOB NOT NULL); CREATE TABLE rcpt (seq INTEGER PRIMARY KEY, "
    "reason INTEGER NOT NULL, receipt_digest BLOB NOT NULL, receipt BLOB, "
    "receipted_ms INTEGER NOT NULL);";

/* links of schema version 8 (daemon/store_schema.c), its two indexes */
static const char s_links[] = "CREATE TABLE links (id INTEGER PRIMARY KEY, "
    "partner_oin TEXT NOT NULL, local_sealed BLOB NOT NULL, case_ref BLOB "
    "NOT NULL CHECK (length(case_ref) = 32), own INTEGER NOT NULL DEFAULT "
    "0 CHECK (own IN (0, 1)));"
    "CREATE INDEX links_pseudonym ON links (substr(case_ref, 1, 8));"
    "CREATE UNIQUE INDEX links_filed ON links (partner_oin, local_sealed) "
    "WHERE own = 0;";

static uint8_t s_envelope[1600], s_receipt[650], s_bytes[64];

static double
s_cpu(void)
{
	struct rusage r;

	getrusage(RUSAGE_SELF, &r);
	return (double)r.ru_utime.tv_sec + (double)r.ru_stime.tv_sec +
	    ((double)r.ru_utime.tv_usec + (double)r.ru_stime.tv_usec) / 1e6;
}

static sqlite3 *
s_open(const char *dir, const char *schema)
{
	char path[4096];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/sqlcost.%ld.db", dir, (long)getpid());
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, s_pragmas, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlcost: %s: %s\n", path, sqlite3_errmsg(db));
		exit(1);
	}
	return db;
}

/* Close db and remove its file, log and shared memory. */
static void
s_close(sqlite3 *db)
{
	char path[4096], aux[4200];

	snprintf(path, sizeof(path), "%s", sqlite3_db_filename(db, "main"));
	sqlite3_close(db);
	remove(path);
	snprintf(aux, sizeof(aux), "%s-wal", path);
	remove(aux);
	snprintf(aux, sizeof(aux), "%s-shm", path);
	remove(aux);
}

static void
s_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlcost: %s: %s\n", sql, sqlite3_errmsg(db));
		exit(1);
	}
}

static void
s_step(sqlite3 *db, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE) {
		fprintf(stderr, "sqlcost: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	sqlite3_reset(st);
}

/* Row i's columns into st from parameter `at` on (OB_NCOLS of them). */
static void
s_bind_row(sqlite3_stmt *st, int at, int64_t i)
{
	int64_t t = 1700000000000 + i;
	uint8_t id[16] = { 0 };
	int k;

	for (k = 0; k < 8; k++)          /* time-ordered, as UUIDv7 */
		id[k] = (uint8_t)(t >> (56 - 8 * k));
	memcpy(id + 8, &i, sizeof(i));
	sqlite3_bind_blob(st, at++, id, 16, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, at++, 1);
	sqlite3_bind_text(st, at++, "00000001002345678000", -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, at++, s_bytes, 64, SQLITE_STATIC);
	sqlite3_bind_blob(st, at++, s_bytes, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, at++, 1);
	sqlite3_bind_int(st, at++, 0);
	sqlite3_bind_int64(st, at++, t);
	sqlite3_bind_int64(st, at++, t + 86400000);
	sqlite3_bind_int64(st, at++, t);
	sqlite3_bind_int64(st, at++, t);
	sqlite3_bind_blob(st, at++, s_bytes, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, at++, "leerplicht_verzuim", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, at++, "Leerplichtwet 1969", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, at++, "route,parallel_routes,referral_kind,"
	    "absence_kind,absence_hours,age_years,duty_kind,feedback_due_days",
	    -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, at++, t + 63072000000LL);
	sqlite3_bind_blob(st, at++, s_bytes, 64, SQLITE_STATIC);
	sqlite3_bind_blob(st, at++, s_envelope, sizeof(s_envelope),
	    SQLITE_STATIC);
	sqlite3_bind_blob(st, at++, s_bytes, 44, SQLITE_STATIC);
	sqlite3_bind_int64(st, at, i + 1);
}

/* An INSERT of `rows` outbox rows: "(?, ... ?), (...)". */
static char *
s_insert_sql(int rows)
{
	static const char head[] = "INSERT INTO outbox (event_id, event_type, "
	    "to_oin, case_sealed, case_ref, state, attempts, created_ms, "
	    "expires_ms, next_attempt_ms, updated_ms, envelope_digest, purpose, "
	    "legal_basis, fields, retention_until_ms, event_key, envelope, "
	    "route_sealed, link_id) VALUES ";
	size_t cap = sizeof(head) + (size_t)rows * (OB_NCOLS * 2 + 4);
	char *sql = malloc(cap);
	size_t n;
	int r, c;

	if (sql == NULL)
		exit(1);
	n = (size_t)snprintf(sql, cap, "%s", head);
	for (r = 0; r < rows; r++) {
		n += (size_t)snprintf(sql + n, cap - n, "%s(", r ? "," : "");
		for (c = 0; c < OB_NCOLS; c++)
			n += (size_t)snprintf(sql + n, cap - n, "%s?",
			    c ? "," : "");
		n += (size_t)snprintf(sql + n, cap - n, ")");
	}
	return sql;
}

/* CPU µs per outbox row inserted `rows` to a statement. */
static double
s_outbox_rows(const char *dir, int rows)
{
	sqlite3 *db = s_open(dir, s_outbox);
	char *sql = s_insert_sql(rows);
	sqlite3_stmt *st;
	double t0;
	int64_t i = 0;
	int k, r;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		exit(1);
	t0 = s_cpu();
	while (i < EVENTS) {
		s_exec(db, "BEGIN");
		for (k = 0; k < PASS && i < EVENTS; k += rows, i += rows) {
			for (r = 0; r < rows; r++)
				s_bind_row(st, 1 + r * OB_NCOLS, i + r);
			s_step(db, st);
		}
		s_exec(db, "COMMIT");
	}
	t0 = s_cpu() - t0;
	sqlite3_finalize(st);
	free(sql);
	s_close(db);
	return t0 * 1e6 / (double)i;
}

/* The side tables' three statements, each timed apart (commits in the
 * first). OUT: µs per row of each. */
static void
s_side_tables(const char *dir, double *ins, double *del, double *rcpt)
{
	sqlite3 *db = s_open(dir, s_side);
	sqlite3_stmt *si, *sd, *sr;
	double t, a = 0, b = 0, c = 0;
	int64_t i, k;

	if (sqlite3_prepare_v2(db, "INSERT INTO env VALUES (?1, ?2)", -1, &si,
	    NULL) != SQLITE_OK || sqlite3_prepare_v2(db, "DELETE FROM env "
	    "WHERE seq = ?1", -1, &sd, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO rcpt VALUES (?1, 0, ?2, ?3, "
	    "?4)", -1, &sr, NULL) != SQLITE_OK)
		exit(1);
	for (i = 1; i <= EVENTS; i += PASS) {
		t = s_cpu();
		s_exec(db, "BEGIN");
		for (k = i; k < i + PASS; k++) {
			sqlite3_bind_int64(si, 1, k);
			sqlite3_bind_blob(si, 2, s_envelope,
			    sizeof(s_envelope), SQLITE_STATIC);
			s_step(db, si);
		}
		s_exec(db, "COMMIT");
		a += s_cpu() - t;
		if (i <= LAG)
			continue;
		s_exec(db, "BEGIN");
		t = s_cpu();
		for (k = i - LAG; k < i - LAG + PASS; k++) {
			sqlite3_bind_int64(sd, 1, k);
			s_step(db, sd);
		}
		b += s_cpu() - t;
		t = s_cpu();
		for (k = i - LAG; k < i - LAG + PASS; k++) {
			sqlite3_bind_int64(sr, 1, k);
			sqlite3_bind_blob(sr, 2, s_bytes, 32, SQLITE_STATIC);
			sqlite3_bind_blob(sr, 3, s_receipt, sizeof(s_receipt),
			    SQLITE_STATIC);
			sqlite3_bind_int64(sr, 4, k);
			s_step(db, sr);
		}
		c += s_cpu() - t;
		s_exec(db, "COMMIT");
	}
	k = (EVENTS / PASS - (LAG / PASS)) * PASS;   /* rows settled */
	*ins = a * 1e6 / EVENTS;
	*del = b * 1e6 / (double)k;
	*rcpt = c * 1e6 / (double)k;
	sqlite3_finalize(si);
	sqlite3_finalize(sd);
	sqlite3_finalize(sr);
	s_close(db);
}

enum { LINK_NOT_EXISTS, LINK_LOOK_UP, LINK_UNCHECKED };

/* CPU µs per new link (EVENTS of them, random pseudonyms, in
 * transactions of PASS; commits not counted) inserted the way `how`. */
static double
s_link_inserts(const char *dir, int how)
{
	static const char *const insert[] = {
		[LINK_NOT_EXISTS] = "INSERT INTO links (partner_oin, "
		    "local_sealed, case_ref, own) SELECT ?1, ?2, ?3, 1 WHERE "
		    "NOT EXISTS (SELECT 1 FROM links WHERE substr(case_ref, 1, "
		    "8) = substr(?3, 1, 8) AND partner_oin = ?1 AND case_ref = "
		    "?3) ON CONFLICT DO NOTHING",
		[LINK_LOOK_UP] = "INSERT INTO links (partner_oin, "
		    "local_sealed, case_ref, own) VALUES (?1, ?2, ?3, 1) ON "
		    "CONFLICT DO NOTHING",
		[LINK_UNCHECKED] = "INSERT INTO links (partner_oin, "
		    "local_sealed, case_ref, own) VALUES (?1, ?2, ?3, 1) ON "
		    "CONFLICT DO NOTHING",
	};
	sqlite3 *db = s_open(dir, s_links);
	sqlite3_stmt *si, *sl;
	uint8_t ref[32], local[80];
	double t, sum = 0;
	int64_t i;

	if (sqlite3_prepare_v2(db, insert[how], -1, &si, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT id FROM links WHERE substr("
	    "case_ref, 1, 8) = substr(?2, 1, 8) AND partner_oin = ?1 AND "
	    "case_ref = ?2", -1, &sl, NULL) != SQLITE_OK)
		exit(1);
	for (i = 0; i < EVENTS; i++) {
		if (i % PASS == 0)
			s_exec(db, "BEGIN");
		randombytes_buf(ref, sizeof(ref));
		randombytes_buf(local, sizeof(local));
		t = s_cpu();
		if (how == LINK_LOOK_UP) {
			sqlite3_bind_text(sl, 1, "00000001002345678000", -1,
			    SQLITE_STATIC);
			sqlite3_bind_blob(sl, 2, ref, 32, SQLITE_STATIC);
			if (sqlite3_step(sl) != SQLITE_DONE)
				exit(1);  /* a random pseudonym is new */
			sqlite3_reset(sl);
		}
		sqlite3_bind_text(si, 1, "00000001002345678000", -1,
		    SQLITE_STATIC);
		sqlite3_bind_blob(si, 2, local, sizeof(local), SQLITE_STATIC);
		sqlite3_bind_blob(si, 3, ref, 32, SQLITE_STATIC);
		s_step(db, si);
		sum += s_cpu() - t;
		if (i % PASS == PASS - 1 || i == EVENTS - 1)
			s_exec(db, "COMMIT");
	}
	sqlite3_finalize(si);
	sqlite3_finalize(sl);
	s_close(db);
	return sum * 1e6 / EVENTS;
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	static const int per[] = { 1, 10, 50 };
	double ins, del, rcpt;
	size_t i;

	memset(s_envelope, 0xa5, sizeof(s_envelope));
	memset(s_receipt, 0x5a, sizeof(s_receipt));
	for (i = 0; i < sizeof(per) / sizeof(per[0]); i++)
		printf("outbox row, %d per INSERT: %.2f us CPU per row\n",
		    per[i], s_outbox_rows(dir, per[i]));
	s_side_tables(dir, &ins, &del, &rcpt);
	printf("side table: envelope insert %.2f us (commit included), "
	    "delete by rowid %.2f us, receipt insert %.2f us\n", ins, del,
	    rcpt);
	printf("new link: INSERT ... WHERE NOT EXISTS %.2f us, look-up then "
	    "INSERT ... VALUES %.2f us, unchecked INSERT %.2f us\n",
	    s_link_inserts(dir, LINK_NOT_EXISTS),
	    s_link_inserts(dir, LINK_LOOK_UP),
	    s_link_inserts(dir, LINK_UNCHECKED));
	return 0;
}
