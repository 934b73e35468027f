/*
 * test_store.c: daemon/store.c.
 *
 * Every test opens a fresh store in its own tmpdir ("<tmp>/state", which
 * store_open creates).  Times are small synthetic numbers, never the clock.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <sodium.h>
#include <sqlite3.h>

#include "common.h"
#include "countvfs.h"
#include "pseudonym.h"
#include "store.h"
#include "store_int.h"   /* sq_schema_step */
#include "store_webhook.h"
#include "util.h"

TestSuite(store, .init = test_init);

#define T0 1000000u                /* a synthetic "now" */

/* The store's metadata key (store_open): any 32 bytes in a test. */
static const uint8_t s_meta_key[32] = { 0x42, 0x42, 0x42, 0x42 };

struct fx {
	char tmp[256];
	char dir[300];
	store_t *s;
	kp_err_t err;
};

static void
s_open(struct fx *f)
{
	test_tmpdir(f->tmp, sizeof(f->tmp));
	snprintf(f->dir, sizeof(f->dir), "%s/state", f->tmp);
	cr_assert_eq(store_open(f->dir, s_meta_key, test_pseudonym_key,
	    &f->s, &f->err), 0,
	    "store_open: %s",
	    f->err.msg);
}

static void
s_reopen(struct fx *f)
{
	store_close(&f->s);
	cr_assert_null(f->s);
	cr_assert_eq(store_open(f->dir, s_meta_key, test_pseudonym_key,
	    &f->s, &f->err), 0,
	    "reopen: %s",
	    f->err.msg);
}

static void
s_close(struct fx *f)
{
	store_close(&f->s);
	cr_assert_eq(test_sh("rm -rf '%s'", f->tmp), 0);
}

static void
s_expect(int rc, const kp_err_t *err, int code, const char *needle)
{
	cr_assert_eq(rc, -1, "expected failure %s", kp_code_name(code));
	cr_assert_eq(err->code, code, "expected %s, got %s: %s",
	    kp_code_name(code), kp_code_name(err->code), err->msg);
	cr_assert(strstr(err->msg, needle) != NULL,
	    "message '%s' lacks '%s'", err->msg, needle);
	cr_assert(strchr(err->msg, '\n') == NULL, "message is not one line");
}

static void
s_id(uint8_t id[16], int n)
{
	memset(id, 0, 16);
	id[0] = 0xe7;
	id[6] = 0x40;
	id[15] = (uint8_t)n;
}

/* Run sql on state_dir/ketenpost.db behind the store's back; the first
 * column of the last row (0 if none). */
static long long
s_raw_sql(const char *dir, const char *sql)
{
	char path[400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/ketenpost.db", dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK,
	    "%s", sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	cr_assert_eq(rc, SQLITE_DONE, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Run sql (several statements) on state_dir/ketenpost.db. */
static void
s_raw_exec(const char *dir, const char *sql)
{
	char path[400];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/ketenpost.db", dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* The outbox of a version 9 store taken back to version 8's layout: the
 * envelope and receipt columns back in the row, filled from the side
 * tables, which go.  As a daemon of version 8 left the file, but for the
 * columns' order, which no statement depends on. */
#define S_OUTBOX_V8 \
	"ALTER TABLE outbox ADD COLUMN receipt_digest BLOB;" \
	"ALTER TABLE outbox ADD COLUMN reason INTEGER NOT NULL DEFAULT 0;" \
	"ALTER TABLE outbox ADD COLUMN receipted_ms INTEGER NOT NULL " \
	"DEFAULT 0;" \
	"ALTER TABLE outbox ADD COLUMN envelope BLOB;" \
	"ALTER TABLE outbox ADD COLUMN receipt BLOB;" \
	"UPDATE outbox SET envelope = (SELECT envelope FROM outbox_env e " \
	"WHERE e.seq = outbox.seq);" \
	"UPDATE outbox SET (receipt_digest, reason, receipted_ms, receipt) " \
	"= (SELECT receipt_digest, reason, receipted_ms, receipt FROM " \
	"outbox_receipts r WHERE r.seq = outbox.seq) WHERE seq IN " \
	"(SELECT seq FROM outbox_receipts);" \
	"DROP TABLE outbox_env; DROP TABLE outbox_receipts;"

/* A database as schema `version` made it, with that version's own SQL. */
static void
s_make_old(const char *dir, int version)
{
	char sql[128];
	int v;

	cr_assert_eq(test_sh("mkdir -m 700 -p '%s'", dir), 0);
	for (v = 1; v <= version; v++)
		s_raw_exec(dir, sq_schema_step(v));
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; "
	    "PRAGMA user_version = %d;", STORE_APP_ID, version);
	s_raw_exec(dir, sql);
}

/* An outbox row with every field distinct, numbered n. */
static outbox_row_t
s_orow(int n, const char *to)
{
	outbox_row_t r;

	memset(&r, 0xAA, sizeof(r));          /* junk in ignored fields */
	s_id(r.event_id, n);
	r.event_type = 3 + n;
	snprintf(r.to_oin, sizeof(r.to_oin), "%s", to);
	snprintf(r.case_local, sizeof(r.case_local), "ZAAK-%04d", n);
	memset(r.case_ref, 0x10 + n, sizeof(r.case_ref));
	r.has_reply_to = (n % 2) == 1;
	memset(r.in_reply_to, 0x30 + n, sizeof(r.in_reply_to));
	if (!r.has_reply_to)
		memset(r.in_reply_to, 0, sizeof(r.in_reply_to));
	r.created_ms = T0 + (uint64_t)n;
	r.expires_ms = T0 + 1000000 + (uint64_t)n;
	r.next_attempt_ms = T0 + (uint64_t)n;
	r.attempts = 1;
	snprintf(r.purpose, sizeof(r.purpose), "mas.route_referral");
	snprintf(r.legal_basis, sizeof(r.legal_basis), "EXAMPLE-%d", n);
	snprintf(r.fields, sizeof(r.fields), "route,age_years");
	r.retention_until_ms = T0 + 5000000 + (uint64_t)n;
	r.has_event_key = (n % 2) == 0;
	memset(r.event_key, 0x33 + n, sizeof(r.event_key));
	memset(r.envelope_digest, 0x50 + n, sizeof(r.envelope_digest));
	r.has_idem = false;                   /* store_idem_* set keys */
	r.link_id = 0;                        /* the store makes the link */
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
s_same_outbox(const outbox_row_t *a, const outbox_row_t *b)
{
	cr_assert_eq(a->seq, b->seq);
	cr_assert_arr_eq(a->event_id, b->event_id, 16);
	cr_assert_eq(a->event_type, b->event_type);
	cr_assert_str_eq(a->to_oin, b->to_oin);
	cr_assert_str_eq(a->case_local, b->case_local);
	cr_assert_arr_eq(a->case_ref, b->case_ref, 32);
	cr_assert_eq(a->has_reply_to, b->has_reply_to);
	if (a->has_reply_to)
		cr_assert_arr_eq(a->in_reply_to, b->in_reply_to, 16);
	cr_assert_eq(a->state, b->state);
	cr_assert_eq(a->attempts, b->attempts);
	cr_assert_eq(a->created_ms, b->created_ms);
	cr_assert_eq(a->expires_ms, b->expires_ms);
	cr_assert_eq(a->next_attempt_ms, b->next_attempt_ms);
	cr_assert_eq(a->updated_ms, b->updated_ms);
	cr_assert_arr_eq(a->envelope_digest, b->envelope_digest, 32);
	cr_assert_eq(a->has_receipt, b->has_receipt);
	if (a->has_receipt)
		cr_assert_arr_eq(a->receipt_digest, b->receipt_digest, 32);
	cr_assert_eq(a->reason, b->reason);
	cr_assert_eq(a->receipted_ms, b->receipted_ms);
	cr_assert_str_eq(a->purpose, b->purpose);
	cr_assert_str_eq(a->legal_basis, b->legal_basis);
	cr_assert_str_eq(a->fields, b->fields);
	cr_assert_eq(a->retention_until_ms, b->retention_until_ms);
	cr_assert_eq(a->has_event_key, b->has_event_key);
	if (a->has_event_key)
		cr_assert_arr_eq(a->event_key, b->event_key, STORE_KEY_WRAP_LEN);
}

/* Collects what a callback saw; stops after `stop` rows if stop > 0. */
struct seen {
	int n, stop;
	outbox_row_t rows[16];
	size_t env_len[16];
	uint8_t env_first[16];
};

static int
s_collect(void *arg, const outbox_row_t *row, const uint8_t *env,
    size_t env_len)
{
	struct seen *sn = arg;

	cr_assert_lt(sn->n, 16);
	sn->rows[sn->n] = *row;
	sn->env_len[sn->n] = env_len;
	sn->env_first[sn->n] = env_len > 0 ? env[0] : 0;
	sn->n++;
	return sn->stop > 0 && sn->n >= sn->stop;
}

static outbox_row_t
s_get(struct fx *f, int n)
{
	outbox_row_t r;
	uint8_t id[16];
	bool found;

	s_id(id, n);
	cr_assert_eq(store_outbox_get(f->s, id, &r, &found, &f->err), 0, "%s",
	    f->err.msg);
	cr_assert(found, "row %d not found", n);
	return r;
}

/* ---- outbox ---- */

Test(store, outbox_round_trip)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), b = s_orow(2, OIN_RVDK), g;
	struct seen sn = { 0 };

	s_open(&f);
	s_insert(&f, &a);
	s_insert(&f, &b);
	cr_assert_eq(a.state, STORE_PENDING);
	cr_assert_eq(a.attempts, 1, "insert keeps the caller's first attempt");
	cr_assert_eq(a.updated_ms, a.created_ms);
	cr_assert_not(a.has_receipt);
	cr_assert_gt(a.seq, 0);
	cr_assert_gt(b.seq, a.seq, "seq must increase");
	g = s_get(&f, 1);
	s_same_outbox(&g, &a);
	g = s_get(&f, 2);
	s_same_outbox(&g, &b);
	cr_assert_not(g.has_reply_to);

	cr_assert_eq(store_outbox_list(f.s, 0, 10, s_collect, &sn, &f.err), 0);
	cr_assert_eq(sn.n, 2);
	s_same_outbox(&sn.rows[0], &a);
	s_same_outbox(&sn.rows[1], &b);
	cr_assert_eq(sn.env_len[0], 0, "list passes no envelope");
	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_outbox_list(f.s, a.seq, 10, s_collect, &sn, &f.err),
	    0);
	cr_assert_eq(sn.n, 1);
	cr_assert_eq(sn.rows[0].seq, b.seq);
	s_close(&f);
}

Test(store, outbox_get_unknown_and_duplicate)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), again = s_orow(1, OIN_OM), g;
	char text[KP_UUID_TEXT_LEN + 1];
	uint8_t id[16];
	bool found = true;
	uint64_t counts[5];

	s_open(&f);
	s_insert(&f, &a);
	s_id(id, 9);
	cr_assert_eq(store_outbox_get(f.s, id, &g, &found, &f.err), 0);
	cr_assert_not(found);
	kp_uuid_format(a.event_id, text);
	s_expect(store_outbox_insert(f.s, &again, (const uint8_t *)"x", 1,
	    &f.err), &f.err, KP_ERR_INVALID_ARG, text);
	cr_assert(strstr(f.err.msg, "already in outbox") != NULL);
	cr_assert_eq(store_outbox_counts(f.s, counts, &f.err), 0);
	cr_assert_eq(counts[STORE_PENDING], 1);
	g = s_get(&f, 1);
	cr_assert_str_eq(g.to_oin, OIN_HALT, "duplicate changed the row");
	s_close(&f);
}

/* A send's idempotency key is kept with its row: found by (client, key),
 * unique per client, also after a reopen. */
Test(store, idempotency_key_kept_with_the_row)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), b = s_orow(2, OIN_HALT);
	outbox_row_t c = s_orow(3, OIN_HALT);
	uint8_t id[16], hash[32];
	bool found = true;

	s_open(&f);
	a.has_idem = b.has_idem = c.has_idem = true;
	snprintf(a.idem_client, sizeof(a.idem_client), "%s", "");
	snprintf(a.idem_key, sizeof(a.idem_key), "%s", "K-1");
	memset(a.idem_hash, 0x77, 32);
	b = a;
	s_id(b.event_id, 2);
	c = a;
	s_id(c.event_id, 3);
	snprintf(c.idem_client, sizeof(c.idem_client), "%s", "other");
	s_insert(&f, &a);
	s_expect(store_outbox_insert(f.s, &b, (const uint8_t *)"x", 1,
	    &f.err), &f.err, KP_ERR_INVALID_ARG, "already");
	s_insert(&f, &c);                  /* same key, other client: ok */
	s_reopen(&f);
	cr_assert_eq(store_outbox_by_idem(f.s, "", "K-1", id, hash, &found,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert(found);
	cr_assert_eq(memcmp(id, a.event_id, 16), 0);
	cr_assert_eq(hash[0], 0x77);
	cr_assert_eq(store_outbox_by_idem(f.s, "other", "K-1", id, hash,
	    &found, &f.err), 0);
	cr_assert(found);
	cr_assert_eq(memcmp(id, c.event_id, 16), 0);
	cr_assert_eq(store_outbox_by_idem(f.s, "", "K-2", id, hash, &found,
	    &f.err), 0);
	cr_assert_not(found);
	s_close(&f);
}

/* A database made by schema version 1 (its own SQL, before idempotency
 * keys, answer phases and sealed metadata) is migrated at open, step by
 * step to the current version; its row reads back, its case reference and
 * route now sealed. */
Test(store, version_1_database_migrated)
{
	struct fx f = { 0 };
	outbox_row_t b = s_orow(2, OIN_HALT), got;
	uint8_t id[16] = { 0 }, hash[32];
	bool found = false;

	test_tmpdir(f.tmp, sizeof(f.tmp));
	snprintf(f.dir, sizeof(f.dir), "%s/state", f.tmp);
	s_make_old(f.dir, 1);
	s_raw_exec(f.dir, "INSERT INTO outbox (event_id, event_type, to_oin, "
	    "case_local, case_ref, state, attempts, created_ms, expires_ms, "
	    "next_attempt_ms, updated_ms, envelope_digest, purpose, "
	    "legal_basis, fields, retention_until_ms, route) VALUES "
	    "(zeroblob(16), 1, '" OIN_HALT "', 'ZAAK-OLD', zeroblob(32), 1, 0, "
	    "1, 2, 1, 1, zeroblob(32), 'p', 'l', 'route', 9, 2)");
	cr_assert_eq(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &f.s, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert_eq(s_raw_sql(f.dir, "PRAGMA user_version"), 9);
	/* version 3's columns and table are there */
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM pragma_table_info("
	    "'expectations') WHERE name IN ('interim_by', 'interim_ms', "
	    "'first_due_ms')"), 3);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM absence_after"), 0);
	/* an existing file keeps its page size (only a VACUUM outside WAL
	 * mode changes it) */
	cr_assert_eq(s_raw_sql(f.dir, "PRAGMA page_size"), 4096);
	/* version 1's outbox_due is dropped at open (and version 6 drops
	 * outbox_partner: the counts by state use its partial indexes) */
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE name = 'outbox_due'"), 0);
	/* version 4: sealed, and read back in the clear */
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox WHERE "
	    "typeof(case_sealed) = 'blob' AND typeof(route_sealed) = 'blob'"),
	    1);
	cr_assert_eq(store_outbox_get(f.s, id, &got, &found, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert(found);
	cr_assert_str_eq(got.case_local, "ZAAK-OLD");
	cr_assert_eq(got.route, 2);
	b.has_idem = true;
	snprintf(b.idem_key, sizeof(b.idem_key), "%s", "K-9");
	b.idem_client[0] = '\0';
	s_insert(&f, &b);
	cr_assert_eq(store_outbox_by_idem(f.s, "", "K-9", id, hash, &found,
	    &f.err), 0);
	cr_assert(found);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox"), 2);
	s_close(&f);
}

/* ---- schema version 6: a receipt moves its row in no index ---- */

/* The counts by state, each as expected. */
static void
s_counts_are(struct fx *f, uint64_t pending, uint64_t delivered,
    uint64_t rejected, uint64_t dead)
{
	uint64_t counts[5];

	cr_assert_eq(store_outbox_counts(f->s, counts, &f->err), 0, "%s",
	    f->err.msg);
	cr_expect_eq(counts[STORE_PENDING], pending);
	cr_expect_eq(counts[STORE_DELIVERED], delivered);
	cr_expect_eq(counts[STORE_REJECTED], rejected);
	cr_expect_eq(counts[STORE_DEAD], dead);
}

/* A version 5 file (its outbox_partner over every row, none of version
 * 6's partial indexes) holding events in every state is migrated at
 * open: outbox_partner is gone, outbox_pending holds just the pending
 * rows and outbox_rejected_dead the rejected and dead ones; the counts
 * at open are right, a link's catch-up reads the pending rows of its
 * partner in seq order, and a settle or an expiry afterwards counts and
 * leaves each index as it should. */
Test(store, version_5_database_migrated)
{
	struct fx f = { 0 };
	outbox_row_t r[6];
	uint8_t rdig[32] = { 0 };
	struct seen sn = { 0 };
	bool applied = false;
	int i;

	s_open(&f);
	for (i = 0; i < 6; i++) {
		r[i] = s_orow(i + 1, i == 1 ? OIN_OM : OIN_HALT);
		r[i].expires_ms = i == 4 ? T0 + 10 : T0 + 1000000;
		s_insert(&f, &r[i]);
	}
	cr_assert_eq(store_outbox_settle(f.s, r[2].event_id, OIN_HALT,
	    r[2].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0, T0,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	cr_assert_eq(store_outbox_settle(f.s, r[3].event_id, OIN_HALT,
	    r[3].envelope_digest, STORE_REJECTED, 6, rdig, NULL, 0, T0,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	cr_assert_eq(store_outbox_expire(f.s, T0 + 10, NULL, NULL, &f.err), 0);
	store_close(&f.s);
	/* back to what version 5 left: its index, none of version 6's */
	s_raw_exec(f.dir, "DROP INDEX outbox_pending; "
	    "DROP INDEX outbox_rejected_dead; "
	    "CREATE INDEX outbox_partner ON outbox (to_oin, state); "
	    S_OUTBOX_V8 "PRAGMA user_version = 5;");

	cr_assert_eq(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &f.s, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert_eq(s_raw_sql(f.dir, "PRAGMA user_version"), 9);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE name = 'outbox_partner'"), 0);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox INDEXED BY "
	    "outbox_pending WHERE state = 1"), 3);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox INDEXED BY "
	    "outbox_rejected_dead WHERE state IN (3, 4)"), 2);
	/* pending r1, r2 (OM), r6; delivered r3; rejected r4; dead r5 */
	s_counts_are(&f, 3, 1, 1, 1);
	cr_assert_eq(store_outbox_after(f.s, OIN_HALT, 0, 10, s_collect, &sn,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(sn.n, 2);
	cr_assert_arr_eq(sn.rows[0].event_id, r[0].event_id, 16);
	cr_assert_arr_eq(sn.rows[1].event_id, r[5].event_id, 16);
	cr_assert_lt(sn.rows[0].seq, sn.rows[1].seq);

	/* a delivery leaves outbox_pending and enters no index; a late
	 * receipt for a dead row leaves outbox_rejected_dead */
	cr_assert_eq(store_outbox_settle(f.s, r[0].event_id, OIN_HALT,
	    r[0].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0, T0 + 20,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	cr_assert_eq(store_outbox_settle(f.s, r[4].event_id, OIN_HALT,
	    r[4].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0, T0 + 20,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	s_counts_are(&f, 2, 3, 1, 0);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox INDEXED BY "
	    "outbox_pending WHERE state = 1"), 2);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox INDEXED BY "
	    "outbox_rejected_dead WHERE state IN (3, 4)"), 1);
	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_outbox_after(f.s, OIN_HALT, 0, 10, s_collect, &sn,
	    &f.err), 0);
	cr_assert_eq(sn.n, 1);
	cr_assert_arr_eq(sn.rows[0].event_id, r[5].event_id, 16);
	/* counted again from the file at the next open: the same */
	s_reopen(&f);
	s_counts_are(&f, 2, 3, 1, 0);
	s_close(&f);
}

/* ---- schema version 5: rows find their case by its link ---- */

/* A version 4 database made with version 1-4's own SQL and the store's
 * sealing functions (registered on a raw connection as store_open does),
 * holding a case ZAAK-A sent to two partners — with HALT through a link,
 * with RVDK without one (none is made without one, but the step must not
 * lose such a row) — their expectations, and a reduced row. */
static void
s_make_v4(const char *dir)
{
	struct store raw;
	char sql[128];
	kp_err_t err;
	int v;

	memset(&raw, 0, sizeof(raw));
	cr_assert_eq(test_sh("mkdir -m 700 -p '%s'", dir), 0);
	snprintf(raw.path, sizeof(raw.path), "%s/ketenpost.db", dir);
	cr_assert_eq(sqlite3_open(raw.path, &raw.db), SQLITE_OK);
	cr_assert_eq(sq_seal_register(&raw, s_meta_key, test_pseudonym_key,
	    &err), 0, "%s",
	    err.msg);
	for (v = 1; v <= 4; v++)
		cr_assert_eq(sqlite3_exec(raw.db, sq_schema_step(v), NULL, NULL,
		    NULL), SQLITE_OK, "step %d: %s", v, sqlite3_errmsg(raw.db));
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; "
	    "PRAGMA user_version = 4;", STORE_APP_ID);
	cr_assert_eq(sqlite3_exec(raw.db, sql, NULL, NULL, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(raw.db,
	    "INSERT INTO meta_partners VALUES ('" OIN_HALT "'), "
	    "('" OIN_RVDK "');"
	    "INSERT INTO links (partner_oin, local_sealed, case_ref) VALUES "
	    "('" OIN_HALT "', kp_case_seal('" OIN_HALT "', 'ZAAK-A'), "
	    "x'1111111111111111111111111111111111111111111111111111111111111111');"
	    "INSERT INTO outbox (event_id, event_type, to_oin, case_sealed, "
	    "case_ref, state, attempts, created_ms, expires_ms, "
	    "next_attempt_ms, updated_ms, envelope_digest, purpose, "
	    "legal_basis, fields, retention_until_ms, route_sealed) VALUES "
	    "(x'01000000000000000000000000000000', 1, '" OIN_HALT "', "
	    "kp_case_seal('" OIN_HALT "', 'ZAAK-A'), "
	    "x'1111111111111111111111111111111111111111111111111111111111111111', "
	    "2, 1, 10, 20, 10, 11, randomblob(32), 'p', 'l', 'route', 99, "
	    "kp_route_seal(x'01000000000000000000000000000000', 2)), "
	    "(x'02000000000000000000000000000000', 1, '" OIN_RVDK "', "
	    "kp_case_seal('" OIN_RVDK "', 'ZAAK-A'), "
	    "x'2222222222222222222222222222222222222222222222222222222222222222', "
	    "2, 1, 12, 20, 12, 13, randomblob(32), 'p', 'l', 'route', 99, "
	    "NULL), "
	    "(x'03000000000000000000000000000000', 1, '" OIN_HALT "', '', "
	    "zeroblob(32), 2, 1, 14, 20, 14, 15, randomblob(32), 'p', 'l', "
	    "'', 99, NULL);"
	    "UPDATE outbox SET reduced_ms = 16 WHERE case_sealed = '';"
	    "INSERT INTO expectations (event_id, case_sealed, partner_oin, "
	    "case_ref, sent_type, answer_type, route_sealed, sent_ms, due_ms) "
	    "SELECT event_id, case_sealed, to_oin, case_ref, 1, 2, "
	    "route_sealed, created_ms, created_ms + 100 FROM outbox "
	    "WHERE case_sealed <> '';", NULL, NULL, NULL), SQLITE_OK, "%s",
	    sqlite3_errmsg(raw.db));
	sq_seal_free(&raw);
	sqlite3_close(raw.db);
}

static int
s_count_rows(void *arg, const subject_row_t *row)
{
	(void)row;
	(*(int *)arg)++;
	return 0;
}

static int
s_count_expect(void *arg, const expect_row_t *x)
{
	cr_assert_str_eq(x->case_local, "ZAAK-A");
	(*(int *)arg)++;
	return 0;
}

Test(store, version_4_database_migrated)
{
	struct fx f = { 0 };
	outbox_row_t n = s_orow(7, OIN_HALT);
	expect_row_t x;
	store_reduced_t red;
	uint8_t ref[32], by[16] = { 9 };
	int rows = 0, exps = 0;
	bool found = false;

	test_tmpdir(f.tmp, sizeof(f.tmp));
	snprintf(f.dir, sizeof(f.dir), "%s/state", f.tmp);
	s_make_v4(f.dir);
	cr_assert_eq(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &f.s, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert_eq(s_raw_sql(f.dir, "PRAGMA user_version"), 9);
	/* the random-keyed indexes are gone, the link_id ones there */
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE name IN ('outbox_case', 'expectations_case', "
	    "'expectations_ref')"), 0);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE name IN ('outbox_link', 'expectations_link_sent')"), 2);
	/* every row with a case refers to its own link; the RVDK one made */
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links"), 2);
	/* version 7: the links kept as filed, in links_filed, the unique
	 * index by reference of version 1 gone; version 8: the one by
	 * pseudonym too, links_pseudonym instead */
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links INDEXED BY "
	    "links_filed WHERE own = 0"), 2);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE tbl_name = 'links' AND type = 'index'"), 2);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE tbl_name = 'links' AND name IN ('links_filed', "
	    "'links_pseudonym')"), 2);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox o JOIN "
	    "links l ON l.id = o.link_id AND l.partner_oin = o.to_oin AND "
	    "l.local_sealed = o.case_sealed AND l.case_ref = o.case_ref"), 2);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox WHERE "
	    "case_sealed = '' AND link_id IS NULL"), 1);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM expectations e "
	    "JOIN links l ON l.id = e.link_id AND l.partner_oin = "
	    "e.partner_oin AND l.case_ref = e.case_ref"), 2);
	/* the look-ups by case and by pseudonym answer as before */
	cr_assert_eq(store_subject(f.s, "ZAAK-A", s_count_rows, &rows,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(rows, 2);
	cr_assert_eq(store_expect_list(f.s, "ZAAK-A", s_count_expect, &exps,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(exps, 2);
	cr_assert_eq(store_link_by_local(f.s, OIN_RVDK, "ZAAK-A", ref, &found,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert(found);
	cr_assert_eq(ref[0], 0x22);
	memset(ref, 0x22, sizeof(ref));
	cr_assert_eq(store_expect_answer(f.s, OIN_RVDK, 2, NULL, ref, by, 50,
	    &x, &found, &f.err), 0, "%s", f.err.msg);
	cr_assert(found, "the open expectation found by its pseudonym");
	cr_assert_eq(x.event_id[0], 2);
	/* a new row of the case with HALT joins its link, makes none */
	snprintf(n.case_local, sizeof(n.case_local), "ZAAK-A");
	memset(n.case_ref, 0x11, sizeof(n.case_ref));
	s_insert(&f, &n);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links"), 2);
	rows = 0;
	cr_assert_eq(store_subject(f.s, "ZAAK-A", s_count_rows, &rows,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(rows, 3);
	/* metadata retention: the settled rows reduced, their expectations
	 * gone, RVDK's link with them; HALT's kept by the pending row */
	cr_assert_eq(store_meta_reduce(f.s, 100, 200, &red, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert_eq(red.outbox, 2);
	cr_assert_eq(red.expectations, 2);
	cr_assert_eq(red.links, 1);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox WHERE "
	    "link_id IS NOT NULL"), 1);
	cr_assert_eq(store_link_by_local(f.s, OIN_RVDK, "ZAAK-A", ref, &found,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_not(found);
	rows = 0;
	cr_assert_eq(store_subject(f.s, "ZAAK-A", s_count_rows, &rows,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(rows, 1);
	s_close(&f);
}

/* Case `local` and pseudonym `ref` are linked for `oin`, found both ways. */
static void
s_linked_both_ways(struct fx *f, const char *oin, const char *local,
    const uint8_t ref[32])
{
	uint8_t got[32];
	char back[65];
	bool found = false;

	cr_assert_eq(store_link_by_local(f->s, oin, local, got, &found,
	    &f->err), 0, "%s", f->err.msg);
	cr_assert(found, "%s found by its reference", local);
	cr_assert_arr_eq(got, ref, 32);
	found = false;
	cr_assert_eq(store_link_by_ref(f->s, oin, ref, back, &found, &f->err),
	    0, "%s", f->err.msg);
	cr_assert(found, "%s found by its pseudonym", local);
	cr_assert_str_eq(back, local);
}

/* The version 4 database of s_make_v4 taken to version 6 by steps 5 and
 * 6, as a daemon of version 6 left it, plus `extra` SQL. */
static void
s_make_v6(const char *dir, const char *extra)
{
	struct store raw;
	char sql[128];
	kp_err_t err;

	s_make_v4(dir);
	memset(&raw, 0, sizeof(raw));
	snprintf(raw.path, sizeof(raw.path), "%s/ketenpost.db", dir);
	cr_assert_eq(sqlite3_open(raw.path, &raw.db), SQLITE_OK);
	cr_assert_eq(sq_seal_register(&raw, s_meta_key, test_pseudonym_key,
	    &err), 0, "%s", err.msg);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = 6; %s", extra);
	cr_assert_eq(sqlite3_exec(raw.db, sq_schema_step(5), NULL, NULL, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(raw.db));
	cr_assert_eq(sqlite3_exec(raw.db, sq_schema_step(6), NULL, NULL, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(raw.db));
	cr_assert_eq(sqlite3_exec(raw.db, sql, NULL, NULL, NULL), SQLITE_OK,
	    "%s", sqlite3_errmsg(raw.db));
	sq_seal_free(&raw);
	sqlite3_close(raw.db);
}

/* A version step that fails (an obstacle table in its way): the open
 * names the step (`what`) and leaves the file at version `old`. */
static void
s_step_fails(struct fx *f, const char *what, int old)
{
	store_t *s = NULL;

	s_expect(store_open(f->dir, s_meta_key, test_pseudonym_key, &s,
	    &f->err), &f->err, KP_ERR_IO, what);
	cr_assert_null(s);
	cr_assert_eq(s_raw_sql(f->dir, "PRAGMA user_version"), old);
}

/* The obstacle dropped, the steps run to the current version. */
static void
s_step_retried(struct fx *f, const char *obstacle)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "DROP TABLE %s;", obstacle);
	s_raw_exec(f->dir, sql);
	cr_assert_eq(store_open(f->dir, s_meta_key, test_pseudonym_key, &f->s,
	    &f->err), 0, "%s", f->err.msg);
	cr_assert_eq(s_raw_sql(f->dir, "PRAGMA user_version"), 9);
}

/* A step to version 7 that fails (here: a table in the way of its copy)
 * says which step, and leaves the version 6 file as it was: its links,
 * their index by reference, its version; once the obstacle is gone the
 * step runs and every old link is found by its reference as before. */
Test(store, a_failed_step_to_version_7_leaves_version_6_intact)
{
	struct fx f = { 0 };
	uint8_t ref[32];
	bool found = false;

	test_tmpdir(f.tmp, sizeof(f.tmp));
	snprintf(f.dir, sizeof(f.dir), "%s/state", f.tmp);
	s_make_v6(f.dir, "CREATE TABLE links_v7 (x);");
	s_step_fails(&f, "migrate schema to version 7 (own cases found by "
	    "their pseudonym)", 6);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links"), 2);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE tbl_name = 'links' AND type = 'index'"), 2,
	    "both unique indexes of version 1 kept");
	s_step_retried(&f, "links_v7");
	memset(ref, 0, sizeof(ref));
	cr_assert_eq(store_link_by_local(f.s, OIN_RVDK, "ZAAK-A", ref, &found,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert(found);
	cr_assert_eq(ref[0], 0x22);
	memset(ref, 0x11, sizeof(ref));
	s_linked_both_ways(&f, OIN_HALT, "ZAAK-A", ref);
	s_close(&f);
}

/* Our own pseudonym of `local` for `oin` under the test store's key. */
static void
s_own_ref(const char *oin, const char *local, uint8_t out[32])
{
	kp_err_t err;

	cr_assert_eq(pseudonym_with_key(test_pseudonym_key, oin, local, out,
	    &err), 0, "%s", err.msg);
}

/* The version 6 database of s_make_v6 taken to version 7 by its step, as
 * a daemon of version 7 left it: its two links filed (own = 0, ids 1 and
 * 2), one own link of HALT's made by it (own = 1, our pseudonym of
 * "ZAAK-9", id 10), a copy of every link in links_before (to compare
 * with after the step), plus `extra` SQL. */
static void
s_make_v7(const char *dir, const char *extra)
{
	struct store raw;
	kp_err_t err;

	s_make_v6(dir, "");
	memset(&raw, 0, sizeof(raw));
	snprintf(raw.path, sizeof(raw.path), "%s/ketenpost.db", dir);
	cr_assert_eq(sqlite3_open(raw.path, &raw.db), SQLITE_OK);
	cr_assert_eq(sq_seal_register(&raw, s_meta_key, test_pseudonym_key,
	    &err), 0, "%s", err.msg);
	cr_assert_eq(sqlite3_exec(raw.db, sq_schema_step(7), NULL, NULL, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(raw.db));
	cr_assert_eq(sqlite3_exec(raw.db, "PRAGMA user_version = 7;"
	    "INSERT INTO links (id, partner_oin, local_sealed, case_ref, own) "
	    "VALUES (10, '" OIN_HALT "', kp_case_seal('" OIN_HALT "', "
	    "'ZAAK-9'), kp_case_pseudonym('" OIN_HALT "', 'ZAAK-9'), 1);"
	    "CREATE TABLE links_before AS SELECT * FROM links;", NULL, NULL,
	    NULL), SQLITE_OK, "%s", sqlite3_errmsg(raw.db));
	cr_assert_eq(sqlite3_exec(raw.db, extra, NULL, NULL, NULL), SQLITE_OK,
	    "%s", sqlite3_errmsg(raw.db));
	sq_seal_free(&raw);
	sqlite3_close(raw.db);
}

/* The links of s_make_v7 are all there, each found both ways; the own
 * one by its reference, an expectation by its pseudonym; a new row of
 * an own case with a wrong hint joins its link; a case can take none of
 * the old pseudonyms. */
static void
s_v7_links_found(struct fx *f)
{
	uint8_t ref[32], own9[32], got[32];
	outbox_row_t row = s_orow(9, OIN_HALT);
	expect_row_t x;
	uint8_t by[16] = { 9 };
	uint64_t id = 0;
	bool found = false;

	memset(ref, 0x11, sizeof(ref));
	s_linked_both_ways(f, OIN_HALT, "ZAAK-A", ref);
	memset(ref, 0x22, sizeof(ref));
	s_linked_both_ways(f, OIN_RVDK, "ZAAK-A", ref);
	s_own_ref(OIN_HALT, "ZAAK-9", own9);
	s_linked_both_ways(f, OIN_HALT, "ZAAK-9", own9);
	cr_assert_eq(store_expect_answer(f->s, OIN_RVDK, 2, NULL, ref, by, 50,
	    &x, &found, &f->err), 0, "%s", f->err.msg);
	cr_assert(found, "the open expectation found by its pseudonym");
	cr_assert_eq(x.event_id[0], 2);
	cr_assert_eq(store_link_ensure(f->s, OIN_HALT, "ZAAK-9", own9, got,
	    &id, &f->err), 0, "%s", f->err.msg);
	cr_assert_eq(id, 10, "the own link kept its id");
	s_expect(store_link_put(f->s, OIN_HALT, "ZAAK-B", own9, &f->err),
	    &f->err, KP_ERR_INVALID_ARG, "linked differently");
	memset(ref, 0x11, sizeof(ref));
	s_expect(store_link_put(f->s, OIN_HALT, "ZAAK-B", ref, &f->err),
	    &f->err, KP_ERR_INVALID_ARG, "linked differently");
	cr_assert_eq(s_raw_sql(f->dir, "SELECT count(*) FROM links"), 3);
	snprintf(row.case_local, sizeof(row.case_local), "ZAAK-9");
	memcpy(row.case_ref, own9, 32);
	row.link_id = 999;
	s_insert(f, &row);
	cr_assert_eq(s_raw_sql(f->dir, "SELECT link_id FROM outbox WHERE "
	    "event_id = x'e7000000000040000000000000000009'"), 10);
}

/* Schema version 8: a version 7 file keeps every link (id, partner,
 * sealed reference, pseudonym, own), loses the unique index by pseudonym
 * for links_pseudonym, and every look-up finds what it found before. */
Test(store, version_7_database_migrated)
{
	struct fx f = { 0 };

	test_tmpdir(f.tmp, sizeof(f.tmp));
	snprintf(f.dir, sizeof(f.dir), "%s/state", f.tmp);
	s_make_v7(f.dir, "");
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE name LIKE 'sqlite_autoindex_links%'"), 1);
	cr_assert_eq(store_open(f.dir, s_meta_key, test_pseudonym_key, &f.s,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(s_raw_sql(f.dir, "PRAGMA user_version"), 9);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links"), 3);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links l JOIN "
	    "links_before b ON b.id = l.id AND b.partner_oin = l.partner_oin "
	    "AND b.local_sealed = l.local_sealed AND b.case_ref = l.case_ref "
	    "AND b.own = l.own"), 3);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links WHERE "
	    "own = 1"), 1);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE tbl_name = 'links' AND type = 'index'"), 2,
	    "links_pseudonym and links_filed, no unique index by pseudonym");
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE tbl_name = 'links' AND name IN ('links_filed', "
	    "'links_pseudonym')"), 2);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links INDEXED BY "
	    "links_filed WHERE own = 0"), 2);
	s_v7_links_found(&f);
	s_reopen(&f);
	cr_assert_eq(s_raw_sql(f.dir, "PRAGMA user_version"), 9);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links"), 3);
	s_close(&f);
}

/* A step to version 8 that fails (here: a table in the way of its copy)
 * says which step and leaves the version 7 file as it was: its links,
 * the unique index by pseudonym, its version; once the obstacle is gone
 * the step runs and every link is found as before. */
Test(store, a_failed_step_to_version_8_leaves_version_7_intact)
{
	struct fx f = { 0 };

	test_tmpdir(f.tmp, sizeof(f.tmp));
	snprintf(f.dir, sizeof(f.dir), "%s/state", f.tmp);
	s_make_v7(f.dir, "CREATE TABLE links_v8 (x);");
	s_step_fails(&f, "migrate schema to version 8 (links found by 8 "
	    "bytes of their pseudonym)", 7);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links l JOIN "
	    "links_before b ON b.id = l.id AND b.partner_oin = l.partner_oin "
	    "AND b.local_sealed = l.local_sealed AND b.case_ref = l.case_ref "
	    "AND b.own = l.own"), 3);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE name LIKE 'sqlite_autoindex_links%'"), 1,
	    "the unique index by pseudonym of version 7 kept");
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE name = 'links_pseudonym'"), 0);
	s_step_retried(&f, "links_v8");
	s_v7_links_found(&f);
	s_close(&f);
}

/* The rows of s_make_v8: pending (1 and 5), delivered (2), rejected (3),
 * dead (4, its envelope kept), dead and then delivered by a late receipt
 * (6); rows 4 and 6 have an event key (s_orow), so retention purges
 * them. */
static void
s_v8_rows(struct fx *f, outbox_row_t r[6])
{
	static const uint8_t rc[3][8] = { "rc-2", "rc-3", "rc-6" };
	uint8_t rdig[32];
	bool applied = false;
	int i;
	static const int settle[3] = { 1, 2, 5 };

	for (i = 0; i < 6; i++) {
		r[i] = s_orow(i + 1, OIN_HALT);
		if (i == 3 || i == 5)
			r[i].expires_ms = T0 + 10;
		s_insert(f, &r[i]);
	}
	cr_assert_eq(store_outbox_expire(f->s, T0 + 10, NULL, NULL, &f->err),
	    0, "%s", f->err.msg);
	for (i = 0; i < 3; i++) {
		memset(rdig, 0x71 + i, sizeof(rdig));
		cr_assert_eq(store_outbox_settle(f->s, r[settle[i]].event_id,
		    OIN_HALT, r[settle[i]].envelope_digest, i == 1 ?
		    STORE_REJECTED : STORE_DELIVERED, i == 1 ? 6 : 0, rdig,
		    rc[i], 4, T0 + 20 + (uint64_t)i, &applied, NULL, &f->err),
		    0, "%s", f->err.msg);
		cr_assert(applied);
	}
}

/* A version 8 file of the rows of s_v8_rows: made by this store, its
 * outbox taken back to version 8's layout (S_OUTBOX_V8), with a copy of
 * the side tables as they were (env_before, rcpt_before), plus `extra`
 * SQL.  OUT: what store_outbox_list read before (in *before). */
static void
s_make_v8(struct fx *f, outbox_row_t r[6], struct seen *before,
    const char *extra)
{
	s_open(f);
	s_v8_rows(f, r);
	memset(before, 0, sizeof(*before));
	cr_assert_eq(store_outbox_list(f->s, 0, 16, s_collect, before,
	    &f->err), 0, "%s", f->err.msg);
	cr_assert_eq(before->n, 6);
	store_close(&f->s);
	s_raw_exec(f->dir, "CREATE TABLE env_before AS SELECT * FROM "
	    "outbox_env; CREATE TABLE rcpt_before AS SELECT * FROM "
	    "outbox_receipts;" S_OUTBOX_V8 "PRAGMA user_version = 8;");
	s_raw_exec(f->dir, extra);
	cr_assert_eq(s_raw_sql(f->dir, "SELECT count(*) FROM outbox WHERE "
	    "envelope IS NOT NULL"), 3, "rows 1, 4 and 5");
	cr_assert_eq(s_raw_sql(f->dir, "SELECT count(*) FROM outbox WHERE "
	    "length(receipt_digest) = 32 AND receipt IS NOT NULL AND "
	    "receipted_ms > 0"), 3, "rows 2, 3 and 6");
}

/* Every envelope and receipt of s_make_v8 in the side tables as before,
 * and the outbox read back through the store as before. */
static void
s_v8_kept(struct fx *f, const outbox_row_t r[6], const struct seen *before)
{
	struct seen after = { 0 }, sn = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	bool found = false;
	int i;

	cr_assert_eq(s_raw_sql(f->dir, "PRAGMA user_version"), 9);
	cr_assert_eq(s_raw_sql(f->dir, "SELECT count(*) FROM "
	    "pragma_table_info('outbox') WHERE name IN ('envelope', "
	    "'receipt', 'receipt_digest', 'reason', 'receipted_ms')"), 0,
	    "the columns dropped");
	cr_assert_eq(s_raw_sql(f->dir, "SELECT count(*) FROM outbox_env"), 3);
	cr_assert_eq(s_raw_sql(f->dir, "SELECT count(*) FROM outbox_env e "
	    "JOIN env_before b ON b.seq = e.seq AND b.envelope = e.envelope"),
	    3);
	cr_assert_eq(s_raw_sql(f->dir, "SELECT count(*) FROM "
	    "outbox_receipts"), 3);
	cr_assert_eq(s_raw_sql(f->dir, "SELECT count(*) FROM outbox_receipts "
	    "r JOIN rcpt_before b ON b.seq = r.seq AND b.reason = r.reason "
	    "AND b.receipt_digest = r.receipt_digest AND b.receipt = r.receipt "
	    "AND b.receipted_ms = r.receipted_ms"), 3);
	cr_assert_eq(store_outbox_list(f->s, 0, 16, s_collect, &after,
	    &f->err), 0, "%s", f->err.msg);
	cr_assert_eq(after.n, before->n);
	for (i = 0; i < after.n; i++)
		s_same_outbox(&after.rows[i], &before->rows[i]);
	cr_assert_eq(after.rows[2].reason, 6);
	cr_assert(after.rows[5].has_receipt);
	cr_assert_eq(store_outbox_receipt(f->s, r[5].event_id, &buf, &len,
	    &found, &f->err), 0, "%s", f->err.msg);
	cr_assert(found);
	cr_assert_eq(len, 4);
	cr_assert_arr_eq(buf, "rc-6", 4);
	free(buf);
	cr_assert_eq(store_outbox_after(f->s, OIN_HALT, 0, 16, s_collect, &sn,
	    &f->err), 0, "%s", f->err.msg);
	cr_assert_eq(sn.n, 2, "the pending rows, with their envelopes");
	cr_assert_eq(sn.rows[0].seq, r[0].seq);
	cr_assert_eq(sn.env_len[0], 64);
	cr_assert_eq(sn.env_first[0], 1);
	cr_assert_eq(sn.rows[1].seq, r[4].seq);
	cr_assert_eq(sn.env_first[1], 5);
	s_counts_are(f, 2, 2, 1, 1);
}

/* Schema version 9: a version 8 file with rows in every state keeps
 * every envelope a row still had and every receipt (digest, reason,
 * time), now in outbox_env and outbox_receipts, and reads back as
 * before; a settle then drops the envelope and stores the receipt
 * beside the row, and retention's purge drops a dead row's envelope. */
Test(store, version_8_database_migrated)
{
	struct fx f = { 0 };
	outbox_row_t r[6];
	struct seen before;
	uint8_t rdig[32] = { 0x7f }, *buf = NULL;
	size_t len = 0, n = 0;
	bool applied = false, found = false;

	s_make_v8(&f, r, &before, "");
	cr_assert_eq(store_open(f.dir, s_meta_key, test_pseudonym_key, &f.s,
	    &f.err), 0, "%s", f.err.msg);
	s_v8_kept(&f, r, &before);
	/* a settle: the envelope gone, the receipt beside the row */
	cr_assert_eq(store_outbox_settle(f.s, r[0].event_id, OIN_HALT,
	    r[0].envelope_digest, STORE_DELIVERED, 0, rdig,
	    (const uint8_t *)"rc-1", 4, T0 + 30, &applied, NULL, &f.err), 0,
	    "%s", f.err.msg);
	cr_assert(applied);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox_env"), 2);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox_receipts "
	    "WHERE seq = 1 AND reason = 0 AND receipted_ms = 1000030 AND "
	    "receipt = CAST('rc-1' AS BLOB) AND substr(receipt_digest, 1, 1) "
	    "= x'7f' AND substr(receipt_digest, 2) = zeroblob(31)"), 1);
	cr_assert_eq(store_outbox_receipt(f.s, r[0].event_id, &buf, &len,
	    &found, &f.err), 0, "%s", f.err.msg);
	cr_assert(found);
	cr_assert_eq(len, 4);
	free(buf);
	/* retention's end: the dead row's envelope goes with its key; a
	 * pending row's stays */
	cr_assert_eq(store_purge(f.s, T0 + 6000000, NULL, NULL, &n, &f.err),
	    0, "%s", f.err.msg);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox_env"), 1);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT seq FROM outbox_env"), 5);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox WHERE "
	    "seq IN (4, 6) AND event_key IS NULL"), 2);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox_receipts"),
	    4, "receipts stay");
	s_reopen(&f);
	cr_assert_eq(s_raw_sql(f.dir, "PRAGMA user_version"), 9);
	s_counts_are(&f, 1, 3, 1, 1);
	s_close(&f);
}

/* A step to version 9 that fails (here: a table in the way) says which
 * step and leaves the version 8 file as it was: its columns, envelopes
 * and receipts in the rows, its version; once the obstacle is gone the
 * step runs and keeps them all. */
Test(store, a_failed_step_to_version_9_leaves_version_8_intact)
{
	struct fx f = { 0 };
	outbox_row_t r[6];
	struct seen before;

	s_make_v8(&f, r, &before, "CREATE TABLE outbox_receipts (x);");
	s_step_fails(&f, "migrate schema to version 9 (the outbox's envelope "
	    "and receipt in side tables)", 8);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM "
	    "pragma_table_info('outbox') WHERE name IN ('envelope', "
	    "'receipt', 'receipt_digest', 'reason', 'receipted_ms')"), 5);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_schema "
	    "WHERE name = 'outbox_env'"), 0);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox o JOIN "
	    "env_before b ON b.seq = o.seq AND b.envelope = o.envelope"), 3);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox o JOIN "
	    "rcpt_before b ON b.seq = o.seq AND b.receipt = o.receipt AND "
	    "b.receipt_digest = o.receipt_digest AND b.reason = o.reason AND "
	    "b.receipted_ms = o.receipted_ms"), 3);
	s_step_retried(&f, "outbox_receipts");
	s_v8_kept(&f, r, &before);
	s_close(&f);
}

/* A link's catch-up reads its partner's pending rows after a cursor, in
 * seq order whatever their timers say, each with its envelope. */
Test(store, outbox_after_cursor_in_seq_order)
{
	struct fx f = { 0 };
	outbox_row_t r[5];
	struct seen sn = { 0 };
	bool applied;
	uint8_t rdig[32] = { 0 };
	int i;

	s_open(&f);
	for (i = 0; i < 5; i++) {
		r[i] = s_orow(i + 1, i == 2 ? OIN_RVDK : OIN_HALT);
		/* timers in reverse order: the catch-up does not follow them */
		r[i].next_attempt_ms = T0 + 100 - 10 * (uint64_t)i;
		s_insert(&f, &r[i]);
	}
	cr_assert_eq(store_outbox_after(f.s, OIN_HALT, 0, 10, s_collect, &sn,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(sn.n, 4, "only the partner's rows");
	cr_assert_eq(sn.rows[0].event_id[15], 1);
	cr_assert_eq(sn.rows[1].event_id[15], 2);
	cr_assert_eq(sn.rows[2].event_id[15], 4);
	cr_assert_eq(sn.rows[3].event_id[15], 5);
	cr_assert_lt(sn.rows[0].seq, sn.rows[1].seq);
	cr_assert_eq(sn.env_len[0], 64);
	cr_assert_eq(sn.env_first[2], 4, "envelope of the right row");
	cr_assert_str_eq(sn.rows[0].case_local, "", "a send opens no case");
	/* what a send needs, and the rest zero */
	for (i = 0; i < 2; i++) {
		cr_assert_eq(sn.rows[i].seq, r[i].seq);
		cr_assert_str_eq(sn.rows[i].to_oin, OIN_HALT);
		cr_assert_eq(sn.rows[i].state, STORE_PENDING);
		cr_assert_eq(sn.rows[i].attempts, r[i].attempts);
		cr_assert_eq(sn.rows[i].has_event_key, r[i].has_event_key);
		if (r[i].has_event_key)
			cr_assert_arr_eq(sn.rows[i].event_key, r[i].event_key,
			    STORE_KEY_WRAP_LEN);
		cr_assert_eq(sn.rows[i].event_type, 0);
		cr_assert_str_eq(sn.rows[i].purpose, "");
	}

	/* after the cursor; max respected; a stopping callback */
	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_outbox_after(f.s, OIN_HALT, r[1].seq, 2, s_collect,
	    &sn, &f.err), 0);
	cr_assert_eq(sn.n, 2, "max respected");
	cr_assert_eq(sn.rows[0].event_id[15], 4);
	memset(&sn, 0, sizeof(sn));
	sn.stop = 1;
	cr_assert_eq(store_outbox_after(f.s, OIN_HALT, 0, 10, s_collect, &sn,
	    &f.err), 0, "a stopping callback is not an error");
	cr_assert_eq(sn.n, 1);

	/* a settled row is not caught up */
	cr_assert_eq(store_outbox_settle(f.s, r[3].event_id, OIN_HALT,
	    r[3].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0, T0 + 5,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_outbox_after(f.s, OIN_HALT, r[1].seq, 10,
	    s_collect, &sn, &f.err), 0);
	cr_assert_eq(sn.n, 1);
	cr_assert_eq(sn.rows[0].event_id[15], 5);
	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_outbox_after(f.s, OIN_HALT, r[4].seq, 10,
	    s_collect, &sn, &f.err), 0);
	cr_assert_eq(sn.n, 0, "nothing after the last row");
	s_close(&f);
}

Test(store, outbox_schedule_records_a_resend)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), b = s_orow(2, OIN_RVDK), g;

	s_open(&f);
	s_insert(&f, &a);
	s_insert(&f, &b);
	cr_assert_eq(store_outbox_schedule(f.s, a.event_id, 3, T0 + 9000,
	    &f.err), 0);
	g = s_get(&f, 1);
	cr_assert_eq(g.attempts, 3);
	cr_assert_eq(g.next_attempt_ms, T0 + 9000);
	cr_assert_eq(g.state, STORE_PENDING);
	g = s_get(&f, 2);
	cr_assert_eq(g.attempts, b.attempts, "only that row");
	cr_assert_eq(g.next_attempt_ms, b.next_attempt_ms);
	s_close(&f);
}

Test(store, outbox_settle)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), b = s_orow(2, OIN_HALT), g, h;
	uint8_t wrong[32], rdig[32], *buf = NULL;
	const uint8_t receipt[] = "signed receipt bytes";
	uint64_t counts[5];
	size_t len = 0;
	bool applied = true, found;

	s_open(&f);
	s_insert(&f, &a);
	s_insert(&f, &b);
	memset(wrong, 0xEE, sizeof(wrong));
	memset(rdig, 0x77, sizeof(rdig));

	/* Wrong digest, wrong issuer, unknown id: not applied, unchanged. */
	cr_assert_eq(store_outbox_settle(f.s, a.event_id, OIN_HALT, wrong,
	    STORE_DELIVERED, 0, rdig, receipt, sizeof(receipt), T0 + 5,
	    &applied, NULL, &f.err), 0, "%s", f.err.msg);
	cr_assert_not(applied);
	cr_assert_eq(store_outbox_settle(f.s, a.event_id, OIN_OM,
	    a.envelope_digest, STORE_DELIVERED, 0, rdig, receipt,
	    sizeof(receipt), T0 + 5, &applied, NULL, &f.err), 0);
	cr_assert_not(applied);
	g = s_get(&f, 1);
	s_same_outbox(&g, &a);
	cr_assert_eq(store_outbox_receipt(f.s, a.event_id, &buf, &len, &found,
	    &f.err), 0);
	cr_assert_not(found, "no receipt on a pending row");

	cr_assert_eq(store_outbox_settle(f.s, a.event_id, OIN_HALT,
	    a.envelope_digest, STORE_DELIVERED, 0, rdig, receipt,
	    sizeof(receipt), T0 + 5, &applied, NULL, &f.err), 0);
	cr_assert(applied);
	g = s_get(&f, 1);
	cr_assert_eq(g.state, STORE_DELIVERED);
	cr_assert(g.has_receipt);
	cr_assert_arr_eq(g.receipt_digest, rdig, 32);
	cr_assert_eq(g.receipted_ms, T0 + 5);
	cr_assert_eq(g.updated_ms, T0 + 5);
	cr_assert_eq(store_outbox_receipt(f.s, a.event_id, &buf, &len, &found,
	    &f.err), 0);
	cr_assert(found);
	cr_assert_eq(len, sizeof(receipt));
	cr_assert_arr_eq(buf, receipt, len);
	free(buf);

	/* A second receipt (even a REJECTED one) does not apply. */
	cr_assert_eq(store_outbox_settle(f.s, a.event_id, OIN_HALT,
	    a.envelope_digest, STORE_REJECTED, 7, rdig, receipt, 3, T0 + 9,
	    &applied, NULL, &f.err), 0);
	cr_assert_not(applied);
	g = s_get(&f, 1);
	cr_assert_eq(g.state, STORE_DELIVERED);
	cr_assert_eq(g.receipted_ms, T0 + 5);

	cr_assert_eq(store_outbox_settle(f.s, b.event_id, OIN_HALT,
	    b.envelope_digest, STORE_REJECTED, 7, rdig, receipt, 3, T0 + 9,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	g = s_get(&f, 2);
	cr_assert_eq(g.state, STORE_REJECTED);
	cr_assert_eq(g.reason, 7);

	/* A schedule does not touch a settled row. */
	cr_assert_eq(store_outbox_schedule(f.s, b.event_id, 9, T0 + 99,
	    &f.err), 0);
	h = s_get(&f, 2);
	s_same_outbox(&h, &g);

	s_expect(store_outbox_settle(f.s, b.event_id, OIN_HALT,
	    b.envelope_digest, STORE_DEAD, 0, rdig, receipt, 3, T0, &applied, NULL,
	    &f.err), &f.err, KP_ERR_INVALID_ARG, "state");
	cr_assert_eq(store_outbox_counts(f.s, counts, &f.err), 0);
	cr_assert_eq(counts[STORE_PENDING], 0);
	cr_assert_eq(counts[STORE_DELIVERED], 1);
	cr_assert_eq(counts[STORE_REJECTED], 1);

	/* the counts by state add up over partners */
	a = s_orow(3, OIN_OM);
	b = s_orow(4, OIN_OM);
	s_insert(&f, &a);
	s_insert(&f, &b);
	cr_assert_eq(store_outbox_settle(f.s, b.event_id, OIN_OM,
	    b.envelope_digest, STORE_DELIVERED, 0, rdig, receipt, 3, T0 + 9,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	cr_assert_eq(store_outbox_counts(f.s, counts, &f.err), 0);
	cr_assert_eq(counts[STORE_PENDING], 1);
	cr_assert_eq(counts[STORE_DELIVERED], 2);
	cr_assert_eq(counts[STORE_REJECTED], 1);
	cr_assert_eq(counts[STORE_DEAD], 0);
	s_close(&f);
}

/* A settle by the seq its caller read the row with (outbound.c's hint)
 * settles exactly what a settle by event id does: the right hint finds
 * the row, a hint naming another row (pending too) or none leaves that
 * row alone and settles the event's own; a receipt that does not fit
 * (another partner, another digest) settles nothing whatever the hint. */
Test(store, a_settle_by_seq_settles_what_a_settle_by_id_does)
{
	struct fx f = { 0 };
	outbox_row_t r[3], g, set;
	uint8_t rdig[32] = { 7 }, other[32];
	bool applied = false;
	int i;

	s_open(&f);
	for (i = 0; i < 3; i++) {
		r[i] = s_orow(i + 1, OIN_HALT);
		s_insert(&f, &r[i]);
	}
	/* the right hint */
	memset(&set, 0, sizeof(set));
	cr_assert_eq(store_outbox_settle_seq(f.s, r[0].event_id, r[0].seq,
	    OIN_HALT, r[0].envelope_digest, STORE_DELIVERED, 0, rdig,
	    (const uint8_t *)"rc", 2, T0 + 5, &applied, &set, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert(applied);
	cr_assert_eq(set.event_type, r[0].event_type);
	cr_assert_str_eq(set.legal_basis, r[0].legal_basis);
	cr_assert_arr_eq(set.case_ref, r[0].case_ref, 32);
	g = s_get(&f, 1);
	cr_assert_eq(g.state, STORE_DELIVERED);
	cr_assert_eq(g.receipted_ms, T0 + 5);
	/* a settled row is not settled again, hint or not */
	cr_assert_eq(store_outbox_settle_seq(f.s, r[0].event_id, r[0].seq,
	    OIN_HALT, r[0].envelope_digest, STORE_REJECTED, 6, rdig, NULL, 0,
	    T0 + 6, &applied, NULL, &f.err), 0);
	cr_assert_not(applied);
	/* a hint naming another pending row: that row stays pending */
	memset(&set, 0, sizeof(set));
	cr_assert_eq(store_outbox_settle_seq(f.s, r[1].event_id, r[2].seq,
	    OIN_HALT, r[1].envelope_digest, STORE_REJECTED, 6, rdig, NULL, 0,
	    T0 + 7, &applied, &set, &f.err), 0);
	cr_assert(applied);
	cr_assert_str_eq(set.legal_basis, r[1].legal_basis);
	g = s_get(&f, 2);
	cr_assert_eq(g.state, STORE_REJECTED);
	g = s_get(&f, 3);
	cr_assert_eq(g.state, STORE_PENDING);
	/* another digest or partner: nothing, even with the right hint */
	memset(other, 0x99, sizeof(other));
	cr_assert_eq(store_outbox_settle_seq(f.s, r[2].event_id, r[2].seq,
	    OIN_HALT, other, STORE_DELIVERED, 0, rdig, NULL, 0, T0 + 8,
	    &applied, NULL, &f.err), 0);
	cr_assert_not(applied);
	cr_assert_eq(store_outbox_settle_seq(f.s, r[2].event_id, r[2].seq,
	    OIN_OM, r[2].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0,
	    T0 + 8, &applied, NULL, &f.err), 0);
	cr_assert_not(applied);
	/* a hint past every row: found by its id */
	cr_assert_eq(store_outbox_settle_seq(f.s, r[2].event_id, 999999,
	    OIN_HALT, r[2].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0,
	    T0 + 9, &applied, NULL, &f.err), 0);
	cr_assert(applied);
	s_counts_are(&f, 0, 2, 1, 0);
	s_close(&f);
}

static void s_counts_match(struct fx *f, const char *when);

/* Runs of the settle's SELECTs, the look-up the one-statement settle
 * (ST_OB_SETTLE_ONE) saves: they run only on its fall-back. */
static int
s_settle_selects(struct fx *f)
{
	return sqlite3_stmt_status(f->s->st[ST_OB_SETTLE_SEQ],
	    SQLITE_STMTSTATUS_RUN, 0) + sqlite3_stmt_status(
	    f->s->st[ST_OB_SETTLE_FIND], SQLITE_STMTSTATUS_RUN, 0);
}

/* The first column of sql (one ? bound to seq) on the store's own
 * connection. */
static long long
s_seq_sql(struct fx *f, const char *sql, uint64_t seq)
{
	sqlite3_stmt *st = NULL;
	long long v;

	cr_assert_eq(sqlite3_prepare_v2(f->s->db, sql, -1, &st, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(f->s->db));
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
s_settle_hint(struct fx *f, const outbox_row_t *r, uint64_t hint,
    const uint8_t digest[32], int state, int reason, uint64_t now,
    bool *applied, outbox_row_t *set)
{
	static const uint8_t rdig[32] = { 7 };

	if (set != NULL)
		memset(set, 0, sizeof(*set));
	cr_assert_eq(store_outbox_settle_seq(f->s, r->event_id, hint,
	    OIN_HALT, digest, state, reason, rdig, (const uint8_t *)"rc", 2,
	    now, applied, set, &f->err), 0, "%s", f->err.msg);
}

static void
s_same_audit(const outbox_row_t *set, const outbox_row_t *r)
{
	cr_assert_eq(set->event_type, r->event_type);
	cr_assert_str_eq(set->purpose, r->purpose);
	cr_assert_str_eq(set->legal_basis, r->legal_basis);
	cr_assert_arr_eq(set->case_ref, r->case_ref, 32);
}

/* A pending row with the right hint settles in one statement (no SELECT)
 * and hands back its audit fields; everything else falls back to the
 * look-up and ends as it did before: a second receipt, a stale hint, a
 * dead row, a digest that does not match; the counts stay exact. */
Test(store, a_settle_by_seq_is_one_statement_and_falls_back_exactly)
{
	struct fx f = { 0 };
	outbox_row_t r[5], g, set;
	uint8_t other[32];
	bool applied = false;
	int i, sel;

	s_open(&f);
	for (i = 0; i < 5; i++) {
		r[i] = s_orow(i + 1, OIN_HALT);
		s_insert(&f, &r[i]);
	}
	/* delivered, in one statement */
	s_settle_hint(&f, &r[0], r[0].seq, r[0].envelope_digest,
	    STORE_DELIVERED, 0, T0 + 5, &applied, &set);
	cr_assert(applied);
	cr_assert_eq(s_settle_selects(&f), 0, "the common path ran a SELECT");
	s_same_audit(&set, &r[0]);
	g = s_get(&f, 1);
	cr_assert_eq(g.state, STORE_DELIVERED);
	cr_assert_eq(g.receipted_ms, T0 + 5);
	cr_assert_eq(g.updated_ms, T0 + 5);
	cr_assert(g.has_receipt);
	cr_assert_eq(g.receipt_digest[0], 7);
	cr_assert_eq(s_seq_sql(&f, "SELECT NOT EXISTS (SELECT 1 FROM "
	    "outbox_env WHERE seq = ?1) AND (SELECT receipt = CAST('rc' AS "
	    "BLOB) AND reason = 0 AND receipted_ms = 1000005 AND "
	    "substr(receipt_digest, 1, 1) = x'07' AND "
	    "substr(receipt_digest, 2) = zeroblob(31) FROM outbox_receipts "
	    "WHERE seq = ?1)", r[0].seq), 1, "envelope dropped, receipt "
	    "stored");
	s_counts_are(&f, 4, 1, 0, 0);
	/* a second receipt (rejecting) for the settled row: nothing */
	s_settle_hint(&f, &r[0], r[0].seq, r[0].envelope_digest,
	    STORE_REJECTED, 6, T0 + 6, &applied, &set);
	cr_assert_not(applied);
	cr_assert_gt(s_settle_selects(&f), 0, "no fall-back");
	g = s_get(&f, 1);
	cr_assert_eq(g.state, STORE_DELIVERED);
	cr_assert_eq(g.reason, 0);
	cr_assert_eq(g.updated_ms, T0 + 5);
	s_counts_are(&f, 4, 1, 0, 0);
	/* rejected, in one statement */
	sel = s_settle_selects(&f);
	s_settle_hint(&f, &r[1], r[1].seq, r[1].envelope_digest,
	    STORE_REJECTED, 6, T0 + 7, &applied, &set);
	cr_assert(applied);
	cr_assert_eq(s_settle_selects(&f), sel);
	s_same_audit(&set, &r[1]);
	g = s_get(&f, 2);
	cr_assert_eq(g.state, STORE_REJECTED);
	cr_assert_eq(g.reason, 6);
	s_counts_are(&f, 3, 1, 1, 0);
	/* a stale hint (row 4's) for row 3: row 3 settles, row 4 stays */
	s_settle_hint(&f, &r[2], r[3].seq, r[2].envelope_digest,
	    STORE_DELIVERED, 0, T0 + 8, &applied, &set);
	cr_assert(applied);
	s_same_audit(&set, &r[2]);
	cr_assert_eq(s_get(&f, 3).state, STORE_DELIVERED);
	g = s_get(&f, 4);
	cr_assert_eq(g.state, STORE_PENDING);
	cr_assert_eq(s_seq_sql(&f, "SELECT count(*) FROM outbox_env "
	    "WHERE seq = ?", r[3].seq), 1);
	s_counts_are(&f, 2, 2, 1, 0);
	/* the right hint but another digest: nothing */
	memset(other, 0x99, sizeof(other));
	s_settle_hint(&f, &r[4], r[4].seq, other, STORE_DELIVERED, 0, T0 + 9,
	    &applied, &set);
	cr_assert_not(applied);
	g = s_get(&f, 5);
	cr_assert_eq(g.state, STORE_PENDING);
	cr_assert_eq(g.updated_ms, r[4].created_ms);
	s_counts_are(&f, 2, 2, 1, 0);
	/* no audit fields asked for: settled all the same */
	s_settle_hint(&f, &r[4], r[4].seq, r[4].envelope_digest,
	    STORE_DELIVERED, 0, T0 + 10, &applied, NULL);
	cr_assert(applied);
	cr_assert_eq(s_get(&f, 5).state, STORE_DELIVERED);
	s_counts_are(&f, 1, 3, 1, 0);
	/* a dead row: not pending, settled by the fall-back */
	cr_assert_eq(store_outbox_expire(f.s, r[3].expires_ms, NULL, NULL,
	    &f.err), 0);
	s_counts_are(&f, 0, 3, 1, 1);
	sel = s_settle_selects(&f);
	s_settle_hint(&f, &r[3], r[3].seq, r[3].envelope_digest,
	    STORE_DELIVERED, 0, T0 + 11, &applied, &set);
	cr_assert(applied);
	cr_assert_gt(s_settle_selects(&f), sel, "no fall-back");
	s_same_audit(&set, &r[3]);
	cr_assert_eq(s_get(&f, 4).state, STORE_DELIVERED);
	s_counts_are(&f, 0, 4, 1, 0);
	s_counts_match(&f, "one-statement settles");
	s_close(&f);
}

Test(store, outbox_expire)
{
	struct fx f = { 0 };
	outbox_row_t r[3], g;
	uint8_t rdig[32] = { 0 };
	struct seen sn = { 0 };
	uint64_t counts[5];
	bool applied;
	int i;

	s_open(&f);
	for (i = 0; i < 3; i++) {
		r[i] = s_orow(i + 1, OIN_HALT);
		r[i].expires_ms = T0 + 10;
		s_insert(&f, &r[i]);
	}
	cr_assert_eq(store_outbox_settle(f.s, r[0].event_id, OIN_HALT,
	    r[0].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0, T0,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	cr_assert_eq(store_outbox_expire(f.s, T0 + 9, s_collect, &sn, &f.err),
	    0);
	cr_assert_eq(sn.n, 0, "nothing expired yet");
	sn.stop = 1;
	cr_assert_eq(store_outbox_expire(f.s, T0 + 10, s_collect, &sn, &f.err),
	    0);
	cr_assert_eq(sn.n, 1, "the callback stopped the walk");
	cr_assert_eq(sn.rows[0].state, STORE_DEAD);
	cr_assert_eq(sn.rows[0].updated_ms, T0 + 10);
	cr_assert_neq(sn.rows[0].event_id[15], 1);
	for (i = 2; i <= 3; i++) {
		g = s_get(&f, i);
		cr_assert_eq(g.state, STORE_DEAD, "row %d expired anyway", i);
		cr_assert_eq(g.updated_ms, T0 + 10);
	}
	g = s_get(&f, 1);
	cr_assert_eq(g.state, STORE_DELIVERED, "settled row untouched");
	g = s_get(&f, 3);
	cr_assert_eq(g.state, STORE_DEAD);
	cr_assert_eq(store_outbox_counts(f.s, counts, &f.err), 0);
	cr_assert_eq(counts[STORE_DELIVERED], 1);
	cr_assert_eq(counts[STORE_DEAD], 2);
	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_outbox_after(f.s, OIN_HALT, 0, 10, s_collect, &sn,
	    &f.err), 0);
	cr_assert_eq(sn.n, 0, "dead rows are never sent again");

	/* A late, verified receipt for a dead row is the truth: delivered. */
	cr_assert_eq(store_outbox_settle(f.s, r[1].event_id, OIN_HALT,
	    r[1].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0, T0 + 20,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	g = s_get(&f, 2);
	cr_assert_eq(g.state, STORE_DELIVERED);
	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_outbox_expire(f.s, T0 + 99, s_collect, &sn, &f.err),
	    0);
	cr_assert_eq(sn.n, 0);
	s_close(&f);
}

/* A deferred send reads one row with its envelope while it is pending,
 * and nothing once it is settled or unknown; the expiry index is there. */
Test(store, outbox_pending_one)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), b = s_orow(2, OIN_HALT);
	uint8_t rdig[32] = { 0 }, unknown[16];
	struct seen sn = { 0 };
	bool applied;

	s_open(&f);
	s_insert(&f, &a);
	s_insert(&f, &b);
	cr_assert_eq(store_outbox_pending(f.s, b.event_id, s_collect, &sn,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(sn.n, 1);
	cr_assert_eq(sn.rows[0].event_id[15], 2);
	cr_assert_eq(sn.env_len[0], 64);
	cr_assert_eq(sn.env_first[0], 2, "envelope of the right row");
	cr_assert_eq(store_outbox_settle(f.s, b.event_id, OIN_HALT,
	    b.envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0, T0,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_outbox_pending(f.s, b.event_id, s_collect, &sn,
	    &f.err), 0);
	cr_assert_eq(sn.n, 0, "a settled row is not sent again");
	s_id(unknown, 9);
	cr_assert_eq(store_outbox_pending(f.s, unknown, s_collect, &sn,
	    &f.err), 0);
	cr_assert_eq(sn.n, 0);
	store_close(&f.s);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'outbox_expiry'"), 1);
	cr_assert_eq(test_sh("rm -rf '%s'", f.tmp), 0);
}

/* ---- inbox ---- */

static inbox_row_t
s_irow(int n)
{
	inbox_row_t r;

	memset(&r, 0, sizeof(r));
	s_id(r.event_id, n);
	r.event_type = 10 + n;
	snprintf(r.from_oin, sizeof(r.from_oin), "%s", OIN_LEERPLICHT);
	snprintf(r.case_local, sizeof(r.case_local), "LOCAL-%d", n);
	memset(r.case_ref, 0x20 + n, sizeof(r.case_ref));
	r.has_reply_to = n == 2;
	if (r.has_reply_to)
		memset(r.in_reply_to, 0x40, sizeof(r.in_reply_to));
	snprintf(r.purpose, sizeof(r.purpose), "verzuim-%d", n);
	snprintf(r.legal_basis, sizeof(r.legal_basis), "Lpw art. %d", n);
	r.created_ms = T0 + (uint64_t)n;
	r.received_ms = T0 + 100 + (uint64_t)n;
	memset(r.envelope_digest, 0x60 + n, sizeof(r.envelope_digest));
	memset(r.receipt_digest, 0x70 + n, sizeof(r.receipt_digest));
	return r;
}

static void
s_same_inbox(const inbox_row_t *a, const inbox_row_t *b)
{
	cr_assert_eq(a->seq, b->seq);
	cr_assert_arr_eq(a->event_id, b->event_id, 16);
	cr_assert_eq(a->event_type, b->event_type);
	cr_assert_str_eq(a->from_oin, b->from_oin);
	cr_assert_str_eq(a->case_local, b->case_local);
	cr_assert_arr_eq(a->case_ref, b->case_ref, 32);
	cr_assert_eq(a->has_reply_to, b->has_reply_to);
	cr_assert_arr_eq(a->in_reply_to, b->in_reply_to, 16);
	cr_assert_str_eq(a->purpose, b->purpose);
	cr_assert_str_eq(a->legal_basis, b->legal_basis);
	cr_assert_eq(a->created_ms, b->created_ms);
	cr_assert_eq(a->received_ms, b->received_ms);
	cr_assert_eq(a->acked, b->acked);
	cr_assert_arr_eq(a->envelope_digest, b->envelope_digest, 32);
	cr_assert_arr_eq(a->receipt_digest, b->receipt_digest, 32);
}

static void
s_in_insert(struct fx *f, inbox_row_t *r)
{
	char payload[32], env[32], rcpt[32];

	snprintf(payload, sizeof(payload), "sealed-%d", r->event_id[15]);
	snprintf(env, sizeof(env), "envelope-%d", r->event_id[15]);
	snprintf(rcpt, sizeof(rcpt), "receipt-%d", r->event_id[15]);
	cr_assert_eq(store_inbox_insert(f->s, r, (uint8_t *)payload,
	    strlen(payload), (uint8_t *)env, strlen(env), (uint8_t *)rcpt,
	    strlen(rcpt), &f->err), 0, "inbox insert: %s", f->err.msg);
}

struct iseen {
	int n;
	inbox_row_t rows[8];
	char payload[8][32];
};

static int
s_icollect(void *arg, const inbox_row_t *row, const uint8_t *p, size_t n)
{
	struct iseen *sn = arg;

	cr_assert_lt(sn->n, 8);
	cr_assert_lt(n, 32);
	sn->rows[sn->n] = *row;
	memcpy(sn->payload[sn->n], p, n);
	sn->payload[sn->n][n] = '\0';
	sn->n++;
	return 0;
}

Test(store, inbox_insert_find_get)
{
	struct fx f = { 0 };
	inbox_row_t a = s_irow(1), b = s_irow(2), dup = s_irow(1), g;
	uint8_t *buf = NULL, id[16];
	size_t len = 0;
	bool found;
	char text[KP_UUID_TEXT_LEN + 1];

	s_open(&f);
	s_in_insert(&f, &a);
	s_in_insert(&f, &b);
	cr_assert_gt(b.seq, a.seq);
	cr_assert_eq(store_inbox_find(f.s, b.event_id, &g, &buf, &len, &found,
	    &f.err), 0);
	cr_assert(found);
	s_same_inbox(&g, &b);
	cr_assert_eq(len, strlen("receipt-2"));
	cr_assert_arr_eq(buf, "receipt-2", len);
	free(buf);
	cr_assert_eq(store_inbox_find(f.s, a.event_id, &g, NULL, NULL, &found,
	    &f.err), 0, "receipt may be skipped");
	cr_assert(found);
	s_same_inbox(&g, &a);

	cr_assert_eq(store_inbox_get(f.s, a.event_id, &g, &buf, &len, &found,
	    &f.err), 0);
	cr_assert(found);
	s_same_inbox(&g, &a);
	cr_assert_eq(len, strlen("sealed-1"));
	cr_assert_arr_eq(buf, "sealed-1", len);
	free(buf);

	s_id(id, 7);
	cr_assert_eq(store_inbox_find(f.s, id, &g, &buf, &len, &found, &f.err),
	    0);
	cr_assert_not(found);
	cr_assert_eq(store_inbox_get(f.s, id, &g, &buf, &len, &found, &f.err),
	    0);
	cr_assert_not(found);

	kp_uuid_format(dup.event_id, text);
	s_expect(store_inbox_insert(f.s, &dup, (const uint8_t *)"p", 1,
	    (const uint8_t *)"e", 1, (const uint8_t *)"r", 1, &f.err), &f.err,
	    KP_ERR_INVALID_ARG, text);
	s_close(&f);
}

/* Find or miss one inbox id. */
static bool
s_in_find_id(struct fx *f, const uint8_t id[16])
{
	inbox_row_t g;
	uint8_t *rc = NULL;
	size_t len = 0;
	bool found = true;

	cr_assert_eq(store_inbox_find(f->s, id, &g, &rc, &len, &found,
	    &f->err), 0, "find: %s", f->err.msg);
	free(rc);
	return found;
}

static bool
s_in_found(struct fx *f, int n)
{
	inbox_row_t g;
	uint8_t id[16], *rc = NULL;
	size_t len = 0;
	bool found = true;

	s_id(id, n);
	cr_assert_eq(store_inbox_find(f->s, id, &g, &rc, &len, &found,
	    &f->err), 0, "find %d: %s", n, f->err.msg);
	cr_assert_eq(found, rc != NULL, "a receipt exactly when found");
	if (found)
		cr_assert_arr_eq(g.event_id, id, 16);
	free(rc);
	return found;
}

/* The duplicate check skips the look-up of an id above every stored one
 * (store_inbox_find): whatever the order of ids, a rollback or a reopen,
 * every stored id is still found and no other one is. */
Test(store, inbox_find_in_any_order_across_rollback_and_reopen)
{
	struct fx f = { 0 };
	inbox_row_t r;
	int n;

	s_open(&f);
	cr_assert_not(s_in_found(&f, 0), "an empty inbox: id 0");
	cr_assert_not(s_in_found(&f, 5));
	r = s_irow(5);
	s_in_insert(&f, &r);
	cr_assert(s_in_found(&f, 5), "the highest id itself");
	r = s_irow(3);                    /* below the highest */
	s_in_insert(&f, &r);
	cr_assert(s_in_found(&f, 3));
	cr_assert_not(s_in_found(&f, 4));
	cr_assert_not(s_in_found(&f, 9));
	/* a rolled-back higher id is gone; the lower ones stay found */
	cr_assert_eq(store_begin(f.s, &f.err), 0);
	r = s_irow(9);
	s_in_insert(&f, &r);
	cr_assert(s_in_found(&f, 9));
	store_rollback(f.s);
	cr_assert_not(s_in_found(&f, 9));
	cr_assert_not(s_in_found(&f, 7));
	for (n = 3; n <= 5; n += 2)
		cr_assert(s_in_found(&f, n), "id %d after the rollback", n);
	r = s_irow(7);
	s_in_insert(&f, &r);
	cr_assert(s_in_found(&f, 7));
	/* a reopened store reads its highest id again */
	s_reopen(&f);
	for (n = 0; n <= 10; n++)
		cr_assert_eq(s_in_found(&f, n), n == 3 || n == 5 || n == 7,
		    "id %d after the reopen", n);
	/* ids ordered by their first byte, not their last: an id whose
	 * byte 0 is below the highest's is looked up whatever its byte 15 */
	r = s_irow(200);
	r.event_id[0] = 0x01;             /* below 0xe7: not the highest */
	s_in_insert(&f, &r);
	cr_assert(s_in_find_id(&f, r.event_id), "a low first byte, high last");
	r.event_id[15] = 201;
	cr_assert_not(s_in_find_id(&f, r.event_id));
	r = s_irow(0);
	r.event_id[0] = 0xff;             /* above every stored id */
	cr_assert_not(s_in_find_id(&f, r.event_id));
	s_in_insert(&f, &r);
	cr_assert(s_in_find_id(&f, r.event_id), "the new highest, last byte 0");
	cr_assert(s_in_found(&f, 7), "a lower id after a higher first byte");
	s_close(&f);
}

Test(store, inbox_list_ack_counts)
{
	struct fx f = { 0 };
	inbox_row_t r[5];
	struct iseen sn = { 0 };
	uint64_t unacked, total;
	uint8_t id[16];
	bool newly;
	int i;

	s_open(&f);
	for (i = 0; i < 5; i++) {
		r[i] = s_irow(i + 1);
		s_in_insert(&f, &r[i]);
	}
	cr_assert_eq(store_inbox_ack(f.s, r[1].event_id, &newly, &f.err), 0);
	cr_assert(newly);
	cr_assert_eq(store_inbox_ack(f.s, r[1].event_id, &newly, &f.err), 0);
	cr_assert_not(newly, "second ack is not new");
	cr_assert_eq(store_inbox_ack(f.s, r[3].event_id, &newly, &f.err), 0);
	s_id(id, 42);
	s_expect(store_inbox_ack(f.s, id, &newly, &f.err), &f.err,
	    KP_ERR_INVALID_ARG, "not in inbox");
	cr_assert_eq(store_inbox_counts(f.s, &unacked, &total, &f.err), 0);
	cr_assert_eq(unacked, 3);
	cr_assert_eq(total, 5);

	cr_assert_eq(store_inbox_list(f.s, false, 0, 10, s_icollect, &sn,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(sn.n, 3, "unacked only");
	cr_assert_eq(sn.rows[0].event_id[15], 1);
	cr_assert_eq(sn.rows[1].event_id[15], 3);
	cr_assert_eq(sn.rows[2].event_id[15], 5);
	cr_assert_str_eq(sn.payload[1], "sealed-3");
	cr_assert_not(sn.rows[0].acked);

	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_inbox_list(f.s, true, 0, 10, s_icollect, &sn,
	    &f.err), 0);
	cr_assert_eq(sn.n, 5, "all");
	cr_assert(sn.rows[1].acked);
	r[1].acked = true;
	s_same_inbox(&sn.rows[1], &r[1]);

	/* Paging: after_seq and limit. */
	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_inbox_list(f.s, true, r[1].seq, 2, s_icollect, &sn,
	    &f.err), 0);
	cr_assert_eq(sn.n, 2);
	cr_assert_eq(sn.rows[0].seq, r[2].seq);
	cr_assert_eq(sn.rows[1].seq, r[3].seq);
	memset(&sn, 0, sizeof(sn));
	cr_assert_eq(store_inbox_list(f.s, false, r[2].seq, 10, s_icollect,
	    &sn, &f.err), 0);
	cr_assert_eq(sn.n, 1);
	cr_assert_eq(sn.rows[0].seq, r[4].seq);
	s_close(&f);
}

/* ---- refusals and links ---- */

Test(store, reject_insert)
{
	struct fx f = { 0 };
	uint8_t id[16], dig[32];

	s_open(&f);
	s_id(id, 1);
	memset(dig, 0x99, sizeof(dig));
	cr_assert_eq(store_reject_insert(f.s, OIN_OM, id, dig, 4, T0, &f.err),
	    0, "%s", f.err.msg);
	cr_assert_eq(store_reject_insert(f.s, OIN_OM, NULL, dig, 5, T0,
	    &f.err), 0, "event id is optional: %s", f.err.msg);
	cr_assert_eq(store_reject_insert(f.s, OIN_OM, id, dig, 4, T0, &f.err),
	    0, "the same refusal twice is recorded twice");
	s_reopen(&f);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM rejected"), 3);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM rejected WHERE "
	    "event_id IS NULL AND reason = 5"), 1);
	s_close(&f);
}

Test(store, links)
{
	struct fx f = { 0 };
	uint8_t ref[32], other[32], got[32];
	char local[65];
	bool found;

	s_open(&f);
	memset(ref, 0x11, sizeof(ref));
	memset(other, 0x22, sizeof(other));
	cr_assert_eq(store_link_by_local(f.s, OIN_HALT, "Z-1", got, &found,
	    &f.err), 0);
	cr_assert_not(found);
	cr_assert_eq(store_link_put(f.s, OIN_HALT, "Z-1", ref, &f.err), 0,
	    "%s", f.err.msg);
	cr_assert_eq(store_link_put(f.s, OIN_HALT, "Z-1", ref, &f.err), 0,
	    "an identical put is fine");
	s_linked_both_ways(&f, OIN_HALT, "Z-1", ref);

	s_expect(store_link_put(f.s, OIN_HALT, "Z-1", other, &f.err), &f.err,
	    KP_ERR_INVALID_ARG, "Z-1");
	s_expect(store_link_put(f.s, OIN_HALT, "Z-2", ref, &f.err), &f.err,
	    KP_ERR_INVALID_ARG, "linked");
	/* Per partner: the same local and pseudonym may exist for another. */
	cr_assert_eq(store_link_put(f.s, OIN_RVDK, "Z-1", other, &f.err), 0);
	cr_assert_eq(store_link_by_ref(f.s, OIN_HALT, other, local, &found,
	    &f.err), 0);
	cr_assert_not(found);
	cr_assert_eq(store_link_by_local(f.s, OIN_HALT, "Z-1", got, &found,
	    &f.err), 0);
	cr_assert_arr_eq(got, ref, 32, "the conflicting put changed nothing");
	s_close(&f);
}

static int
s_collect_due(void *arg, const expect_row_t *x)
{
	expect_row_t *got = arg;
	size_t i;

	for (i = 0; got[i].due_ms != 0; i++)
		;
	cr_assert_lt(i, 4, "more rows than were due");
	got[i] = *x;
	return 0;
}

/* store_expect_open_due (the metrics' overdue gauge): the open
 * expectations due by `now`, earliest first, by the index of open ones;
 * answered, later and interim-moved ones are not among them. */
Test(store, open_expectations_due)
{
	struct fx f = { 0 };
	expect_row_t x, got[5];
	uint8_t by[16] = { 9 };
	bool found = false;
	int i;
	const uint64_t due[4] = { T0 + 30, T0 + 10, T0 + 50, T0 + 20 };

	s_open(&f);
	for (i = 0; i < 4; i++) {
		memset(&x, 0, sizeof(x));
		s_id(x.event_id, 40 + i);
		snprintf(x.case_local, sizeof(x.case_local), "Z-%d", i);
		snprintf(x.partner_oin, sizeof(x.partner_oin), "%s",
		    i == 2 ? OIN_RVDK : OIN_HALT);
		memset(x.case_ref, 0x30 + i, sizeof(x.case_ref));
		x.sent_type = 1;
		x.answer_type = 2;
		x.sent_ms = T0;
		x.due_ms = due[i];
		cr_assert_eq(store_expect_put(f.s, &x, &f.err), 0, "%s",
		    f.err.msg);
	}
	/* the one due at T0 + 20 is answered */
	memset(x.case_ref, 0x33, sizeof(x.case_ref));
	cr_assert_eq(store_expect_answer(f.s, OIN_HALT, 2, NULL, x.case_ref,
	    by, T0 + 5, &x, &found, &f.err), 0, "%s", f.err.msg);
	cr_assert(found);

	memset(got, 0, sizeof(got));
	cr_assert_eq(store_expect_open_due(f.s, T0 + 30, s_collect_due, got,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(got[0].due_ms, T0 + 10);
	cr_assert_eq(got[0].event_id[15], 41);
	cr_assert_str_eq(got[0].partner_oin, OIN_HALT);
	cr_assert_str_eq(got[0].case_local, "", "the case is not opened");
	cr_assert_not(got[0].answered);
	cr_assert_eq(got[1].due_ms, T0 + 30);
	cr_assert_eq(got[1].event_id[15], 40);
	cr_assert_eq(got[2].due_ms, 0, "only the two open ones due by then");

	memset(got, 0, sizeof(got));
	cr_assert_eq(store_expect_open_due(f.s, T0 + 100, s_collect_due, got,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(got[2].due_ms, T0 + 50);
	cr_assert_str_eq(got[2].partner_oin, OIN_RVDK);
	cr_assert_eq(got[3].due_ms, 0);
	s_close(&f);
}

/*
 * An answer without in_reply_to closes the oldest open expectation of its
 * case (by sent_ms, not by insertion order), then the next; and the
 * look-up reads them in the order of an index, with no sort: it runs for
 * every event received, and the temporary B-tree of an ORDER BY was 6.5%
 * of the receiver even when the case had no expectation at all.
 */
Test(store, an_answer_closes_the_oldest_open_expectation_by_index_order)
{
	struct fx f = { 0 };
	expect_row_t x;
	uint8_t by[16] = { 9 }, ref[32];
	bool found = false;
	sqlite3_stmt *plan = NULL;
	char sql[1024];
	int i;
	const uint64_t sent[2] = { T0 + 20, T0 + 10 };

	s_open(&f);
	memset(ref, 0x5a, sizeof(ref));
	for (i = 0; i < 2; i++) {
		memset(&x, 0, sizeof(x));
		s_id(x.event_id, 50 + i);
		snprintf(x.case_local, sizeof(x.case_local), "%s", "Z-OLD");
		snprintf(x.partner_oin, sizeof(x.partner_oin), "%s", OIN_HALT);
		memcpy(x.case_ref, ref, sizeof(ref));
		x.sent_type = 1;
		x.answer_type = 2;
		x.sent_ms = sent[i];
		x.due_ms = sent[i] + 1000;
		cr_assert_eq(store_expect_put(f.s, &x, &f.err), 0, "%s",
		    f.err.msg);
	}
	for (i = 0; i < 2; i++) {
		cr_assert_eq(store_expect_answer(f.s, OIN_HALT, 2, NULL, ref, by,
		    T0 + 30, &x, &found, &f.err), 0, "%s", f.err.msg);
		cr_assert(found, "answer %d", i);
		cr_assert_eq(x.event_id[15], 51 - i, "answer %d closed the "
		    "expectation sent at %" PRIu64, i, x.sent_ms);
	}
	cr_assert_eq(store_expect_answer(f.s, OIN_HALT, 2, NULL, ref, by,
	    T0 + 30, &x, &found, &f.err), 0, "%s", f.err.msg);
	cr_assert_not(found, "both are answered");
	snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s",
	    sqlite3_sql(f.s->st[ST_EXP_BY_REF]));
	cr_assert_eq(sqlite3_prepare_v2(f.s->db, sql, -1, &plan, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(f.s->db));
	while (sqlite3_step(plan) == SQLITE_ROW)
		cr_assert_null(strstr((const char *)sqlite3_column_text(plan, 3),
		    "TEMP B-TREE"), "%s", sqlite3_column_text(plan, 3));
	sqlite3_finalize(plan);
	s_close(&f);
}

/* store_link_ensure (the sender's): a new case gets its candidate
 * pseudonym and a new, larger id; a known case keeps its pseudonym and id
 * whatever the candidate; a candidate linked to another case is refused
 * and changes nothing. */
Test(store, link_ensure)
{
	struct fx f = { 0 };
	uint8_t ref[32], other[32], got[32];
	uint64_t id1 = 0, id2 = 0, id = 0;
	char local[65];
	bool found;

	s_open(&f);
	memset(ref, 0x11, sizeof(ref));
	memset(other, 0x22, sizeof(other));
	cr_assert_eq(store_link_ensure(f.s, OIN_HALT, "Z-1", ref, got, &id1,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_arr_eq(got, ref, 32);
	cr_assert_gt(id1, 0);
	cr_assert_eq(store_link_ensure(f.s, OIN_HALT, "Z-1", other, got, &id,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_arr_eq(got, ref, 32, "the existing link's pseudonym");
	cr_assert_eq(id, id1);
	cr_assert_eq(store_link_ensure(f.s, OIN_HALT, "Z-2", other, got, &id2,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_arr_eq(got, other, 32);
	cr_assert_gt(id2, id1, "ids grow with new cases: their indexes append");
	s_expect(store_link_ensure(f.s, OIN_HALT, "Z-3", ref, got, &id,
	    &f.err), &f.err, KP_ERR_INVALID_ARG, "linked differently");
	cr_assert_eq(store_link_by_local(f.s, OIN_HALT, "Z-3", got, &found,
	    &f.err), 0);
	cr_assert_not(found);
	cr_assert_eq(store_link_by_ref(f.s, OIN_HALT, ref, local, &found,
	    &f.err), 0);
	cr_assert(found);
	cr_assert_str_eq(local, "Z-1");
	s_close(&f);
}

/* The query plan of statement `which` has no step containing `what`. */
static void
s_plan_has_no(struct fx *f, int which, const char *what)
{
	sqlite3_stmt *plan;
	char sql[4096];

	snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s",
	    sqlite3_sql(f->s->st[which]));
	cr_assert_eq(sqlite3_prepare_v2(f->s->db, sql, -1, &plan, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(f->s->db));
	while (sqlite3_step(plan) == SQLITE_ROW) {
		cr_assert_null(strstr((const char *)sqlite3_column_text(plan, 3),
		    what), "%s", sqlite3_column_text(plan, 3));
	}
	sqlite3_finalize(plan);
}

/* The program of statement `which` (EXPLAIN) has no opcode `op`. */
static void
s_program_has_no(struct fx *f, int which, const char *op)
{
	sqlite3_stmt *prog;
	char sql[4096];

	snprintf(sql, sizeof(sql), "EXPLAIN %s", sqlite3_sql(f->s->st[which]));
	cr_assert_eq(sqlite3_prepare_v2(f->s->db, sql, -1, &prog, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(f->s->db));
	while (sqlite3_step(prog) == SQLITE_ROW)
		cr_assert_str_neq((const char *)sqlite3_column_text(prog, 1),
		    op, "statement %d has %s", which, op);
	sqlite3_finalize(prog);
}

/* The query plan of statement `which` has a step containing `what`. */
static void
s_plan_has(struct fx *f, int which, const char *what)
{
	sqlite3_stmt *plan;
	char sql[4096];
	bool seen = false;

	snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s",
	    sqlite3_sql(f->s->st[which]));
	cr_assert_eq(sqlite3_prepare_v2(f->s->db, sql, -1, &plan, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(f->s->db));
	while (sqlite3_step(plan) == SQLITE_ROW) {
		seen = seen || strstr((const char *)sqlite3_column_text(plan,
		    3), what) != NULL;
	}
	sqlite3_finalize(plan);
	cr_assert(seen, "statement %d: no step with %s", which, what);
}

/* Schema version 7: a case of our own (its pseudonym our keyed hash of
 * it) is linked without an entry in the index by reference, found by
 * its reference through its pseudonym, and stays one-to-one with it per
 * partner against filed links of either order. */
Test(store, own_links_found_through_their_pseudonym)
{
	struct fx f = { 0 };
	uint8_t own1[32], own5[32], other[32], got[32];
	outbox_row_t row = s_orow(1, OIN_HALT);
	uint64_t id1 = 0, id = 0;
	bool found = false;
	int rows = 0;

	s_open(&f);
	s_own_ref(OIN_HALT, "Z-1", own1);
	s_own_ref(OIN_HALT, "Z-5", own5);
	memset(other, 0x22, sizeof(other));
	cr_assert_eq(store_link_ensure(f.s, OIN_HALT, "Z-1", own1, got, &id1,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_arr_eq(got, own1, 32);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT own FROM links"), 1);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT partial FROM pragma_index_list("
	    "'links') WHERE name = 'links_filed'"), 1, "an own link is in no "
	    "index by reference");
	s_linked_both_ways(&f, OIN_HALT, "Z-1", own1);
	/* the partner's pseudonym for it later: the own link wins */
	cr_assert_eq(store_link_ensure(f.s, OIN_HALT, "Z-1", other, got, &id,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_arr_eq(got, own1, 32);
	cr_assert_eq(id, id1);
	cr_assert_eq(store_link_ensure(f.s, OIN_HALT, "Z-1", own1, got, &id,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(id, id1, "the same case again: the same link");
	s_expect(store_link_put(f.s, OIN_HALT, "Z-1", other, &f.err), &f.err,
	    KP_ERR_INVALID_ARG, "linked differently");
	cr_assert_eq(store_link_put(f.s, OIN_HALT, "Z-1", own1, &f.err), 0,
	    "%s", f.err.msg);
	/* another case may not take our pseudonym of Z-1 */
	s_expect(store_link_put(f.s, OIN_HALT, "Z-2", own1, &f.err), &f.err,
	    KP_ERR_INVALID_ARG, "linked differently");
	/* a filed case first: our pseudonym of it comes later, and loses */
	cr_assert_eq(store_link_put(f.s, OIN_HALT, "Z-5", other, &f.err), 0,
	    "%s", f.err.msg);
	cr_assert_eq(store_link_ensure(f.s, OIN_HALT, "Z-5", own5, got, &id,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_arr_eq(got, other, 32, "the filed link of Z-5 kept");
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links"), 2);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM links INDEXED BY "
	    "links_filed WHERE own = 0"), 1);
	/* the look-ups by case see rows of an own link */
	snprintf(row.case_local, sizeof(row.case_local), "Z-1");
	memcpy(row.case_ref, own1, 32);
	row.link_id = id1;
	s_insert(&f, &row);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox o JOIN "
	    "links l ON l.id = o.link_id WHERE l.own = 1"), 1);
	cr_assert_eq(store_subject(f.s, "Z-1", s_count_rows, &rows,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(rows, 1);
	rows = 0;
	cr_assert_eq(store_subject(f.s, "Z-2", s_count_rows, &rows,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(rows, 0);
	/* a row given the wrong link id still joins its own case's link */
	row = s_orow(3, OIN_HALT);
	snprintf(row.case_local, sizeof(row.case_local), "Z-1");
	memcpy(row.case_ref, own1, 32);
	row.link_id = id1 + 1;
	s_insert(&f, &row);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox WHERE "
	    "link_id = (SELECT id FROM links WHERE own = 1)"), 2);
	/* ... and so does one whose hint and pseudonym are both off: by its
	 * reference (Z-5's filed link), sealed as its own reference */
	row = s_orow(5, OIN_HALT);
	snprintf(row.case_local, sizeof(row.case_local), "Z-5");
	memset(row.case_ref, 0x44, sizeof(row.case_ref));
	row.link_id = id1 + 100;
	s_insert(&f, &row);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox o JOIN "
	    "links l ON l.id = o.link_id AND l.local_sealed = o.case_sealed "
	    "WHERE l.own = 0 AND o.case_ref = x'" "4444444444444444"
	    "444444444444444444444444444444444444444444444444'"), 1);
	/* every row carries its own link's sealed reference (the copy of
	 * CASE_SEALED_OF taken only from the link the hint names) */
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox o JOIN "
	    "links l ON l.id = o.link_id WHERE o.case_sealed <> "
	    "l.local_sealed"), 0);
	/* a row of no case joins no link, whatever its pseudonym */
	row = s_orow(7, OIN_HALT);
	row.case_local[0] = '\0';
	memcpy(row.case_ref, own1, 32);
	row.link_id = id1;
	s_insert(&f, &row);
	cr_assert_eq(s_raw_sql(f.dir, "SELECT count(*) FROM outbox WHERE "
	    "case_sealed = '' AND link_id IS NULL"), 1);
	/* no look-up by case walks the links */
	s_plan_has_no(&f, ST_SUBJECT, "SCAN l");
	s_plan_has_no(&f, ST_EXP_BY_CASE, "SCAN l");
	s_plan_has_no(&f, ST_LINK_BY_LOCAL, "SCAN links");
	s_plan_has_no(&f, ST_OB_INSERT, "SCAN links");
	s_plan_has_no(&f, ST_EXP_PUT, "SCAN links");
	/* schema version 8: every look-up by pseudonym goes by
	 * links_pseudonym (an index on an expression serves only a WHERE
	 * naming that expression), one by a hint by the rowid */
	s_plan_has_no(&f, ST_LINK_BY_PSEUDONYM, "SCAN links");
	s_plan_has_no(&f, ST_LINK_BY_REF, "SCAN links");
	s_plan_has_no(&f, ST_LINK_INSERT, "SCAN links");
	/* ... and a link's insert reads no links: with a NOT EXISTS it
	 * copied each row into a temporary table first */
	s_program_has_no(&f, ST_LINK_INSERT, "OpenEphemeral");
	s_plan_has_no(&f, ST_EXP_BY_REF, "SCAN links");
	s_plan_has(&f, ST_LINK_BY_PSEUDONYM, "INDEX links_pseudonym");
	s_plan_has(&f, ST_LINK_BY_REF, "INDEX links_pseudonym");
	s_plan_has(&f, ST_EXP_BY_REF, "INDEX links_pseudonym");
	s_plan_has(&f, ST_SUBJECT, "INDEX links_pseudonym");
	s_plan_has(&f, ST_EXP_BY_CASE, "INDEX links_pseudonym");
	s_plan_has(&f, ST_OB_INSERT, "INDEX links_pseudonym");
	s_plan_has(&f, ST_EXP_PUT, "INDEX links_pseudonym");
	s_plan_has(&f, ST_OB_INSERT, "INTEGER PRIMARY KEY");
	s_plan_has(&f, ST_EXP_PUT, "INTEGER PRIMARY KEY");
	s_reopen(&f);
	cr_assert_eq(store_link_by_local(f.s, OIN_HALT, "Z-1", got, &found,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert(found, "found again after a restart");
	s_close(&f);
}

/* ---- durability, transactions, files ---- */

Test(store, committed_data_survives_reopen)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), b = s_orow(2, OIN_HALT), g, c;
	inbox_row_t in = s_irow(3), gi;
	uint8_t ref[32], got[32];
	bool found;

	s_open(&f);
	memset(ref, 0x33, sizeof(ref));
	cr_assert_eq(store_begin(f.s, &f.err), 0, "%s", f.err.msg);
	s_insert(&f, &a);
	s_insert(&f, &b);
	s_in_insert(&f, &in);
	cr_assert_eq(store_link_put(f.s, OIN_HALT, "Z-9", ref, &f.err), 0);
	cr_assert_eq(store_commit(f.s, &f.err), 0, "%s", f.err.msg);
	s_reopen(&f);
	g = s_get(&f, 1);
	s_same_outbox(&g, &a);
	g = s_get(&f, 2);
	s_same_outbox(&g, &b);
	cr_assert_eq(store_inbox_find(f.s, in.event_id, &gi, NULL, NULL,
	    &found, &f.err), 0);
	cr_assert(found);
	s_same_inbox(&gi, &in);
	cr_assert_eq(store_link_by_local(f.s, OIN_HALT, "Z-9", got, &found,
	    &f.err), 0);
	cr_assert(found);

	/* seq keeps increasing across a reopen. */
	c = s_orow(3, OIN_HALT);
	s_insert(&f, &c);
	cr_assert_gt(c.seq, b.seq);
	/* a new file is made with pages of 8 KiB (store.c STORE_PAGE_SIZE) */
	cr_assert_eq(s_raw_sql(f.dir, "PRAGMA page_size"), 8192);
	s_close(&f);
}

Test(store, rollback_leaves_nothing)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), b = s_orow(2, OIN_HALT), dup;
	inbox_row_t in = s_irow(3);
	uint64_t counts[5], unacked, total;

	s_open(&f);
	cr_assert_eq(store_begin(f.s, &f.err), 0);
	s_insert(&f, &a);
	s_in_insert(&f, &in);
	/* A failed write inside the transaction leaves it open... */
	dup = s_orow(1, OIN_HALT);
	s_expect(store_outbox_insert(f.s, &dup, (const uint8_t *)"x", 1,
	    &f.err), &f.err, KP_ERR_INVALID_ARG, "already in outbox");
	s_insert(&f, &b);
	/* ...for the caller to roll back. */
	store_rollback(f.s);
	store_rollback(f.s);              /* harmless when nothing is open */
	cr_assert_eq(store_outbox_counts(f.s, counts, &f.err), 0);
	cr_assert_eq(counts[STORE_PENDING], 0);
	s_reopen(&f);
	cr_assert_eq(store_outbox_counts(f.s, counts, &f.err), 0);
	cr_assert_eq(counts[STORE_PENDING], 0);
	cr_assert_eq(store_inbox_counts(f.s, &unacked, &total, &f.err), 0);
	cr_assert_eq(total, 0);
	/* The rolled-back event ids are free again. */
	a = s_orow(1, OIN_HALT);
	s_insert(&f, &a);
	s_close(&f);
}

Test(store, file_modes)
{
	struct fx f = { 0 };
	char path[400];
	struct stat sb;

	s_open(&f);
	cr_assert_eq(stat(f.dir, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700, "state dir mode %o",
	    sb.st_mode & 0777);
	snprintf(path, sizeof(path), "%s/ketenpost.db", f.dir);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600, "db mode %o", sb.st_mode & 0777);

	/* A loosened file is tightened again at open. */
	store_close(&f.s);
	cr_assert_eq(chmod(path, 0644), 0);
	s_reopen(&f);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/ketenpost.db-wal", f.dir);
	cr_assert_eq(stat(path, &sb), 0, "WAL mode");
	cr_assert_eq(sb.st_mode & 0777, 0600, "wal mode %o", sb.st_mode & 0777);
	s_close(&f);
}

Test(store, garbage_file_refused)
{
	struct fx f = { 0 };
	store_t *s = NULL;

	test_tmpdir(f.tmp, sizeof(f.tmp));
	snprintf(f.dir, sizeof(f.dir), "%s/state", f.tmp);
	cr_assert_eq(test_sh("mkdir -m 700 '%s' && head -c 4096 /dev/urandom "
	    "> '%s/ketenpost.db'", f.dir, f.dir), 0);
	s_expect(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &s, &f.err), &f.err, KP_ERR_IO,
	    "ketenpost.db");
	cr_assert(strstr(f.err.msg, "not a ketenpost database or corrupt") !=
	    NULL, "%s", f.err.msg);
	cr_assert_null(s);
	s_close(&f);
}

Test(store, damaged_pages_refused)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT);
	store_t *s = NULL;

	s_open(&f);
	s_insert(&f, &a);
	store_close(&f.s);
	/* Keep the header page, overwrite page 2 onward (the tables). */
	cr_assert_eq(test_sh("head -c 16384 /dev/zero | tr '\\0' '\\377' | "
	    "dd of='%s/ketenpost.db' bs=4096 seek=1 conv=notrunc status=none",
	    f.dir), 0);
	s_expect(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &s, &f.err), &f.err, KP_ERR_IO,
	    "not a ketenpost database or corrupt");
	cr_assert(strstr(f.err.msg, "ketenpost.db") != NULL);
	cr_assert_null(s);
	s_close(&f);
}

Test(store, foreign_and_newer_databases_refused)
{
	struct fx f = { 0 };
	store_t *s = NULL;

	s_open(&f);
	store_close(&f.s);
	s_raw_sql(f.dir, "PRAGMA user_version = 99");
	s_expect(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &s, &f.err), &f.err,
	    KP_ERR_IO, "newer");
	cr_assert(strstr(f.err.msg, "ketenpost.db") != NULL);

	cr_assert_eq(test_sh("rm -f '%s'/ketenpost.db*", f.dir), 0);
	s_raw_sql(f.dir, "CREATE TABLE t (x)");
	s_expect(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &s, &f.err), &f.err, KP_ERR_IO,
	    "not a ketenpost database");
	s_close(&f);
}

/* The officer's absence record for a case reference of the longest
 * allowed length (64 bytes) is kept under its keyed hash like any other. */
Test(store, absence_record_of_a_64_byte_case_reference)
{
	char ref[65];
	struct fx f;
	int absence = 0;
	uint64_t at = 0;
	bool found = false;

	memset(ref, 'R', 64);
	ref[64] = '\0';
	s_open(&f);
	cr_assert_eq(store_absence_put(f.s, ref, 2, 1234, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert_eq(store_absence_get(f.s, ref, &absence, &at, &found,
	    &f.err), 0, "%s", f.err.msg);
	cr_assert(found);
	cr_assert_eq(absence, 2);
	cr_assert_eq(at, 1234);
	store_close(&f.s);
}

/* A damaged webhook row (an event id of another length) never holds up
 * the notices queued after it. */
Test(store, a_damaged_webhook_row_is_passed_over)
{
	static const uint8_t id[16] = { 7 };
	webhook_row_t row;
	struct fx f;
	bool found = false;
	sqlite3 *h;
	char path[400];

	s_open(&f);
	cr_assert_eq(store_webhook_init(f.s, &f.err), 0, "%s", f.err.msg);
	snprintf(path, sizeof(path), "%s/ketenpost.db", f.dir);
	cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "INSERT INTO webhook (kind, event_id, "
	    "created_ms) VALUES ('event', x'0102', 1)", NULL, NULL, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(h));
	sqlite3_close(h);
	cr_assert_eq(store_webhook_add(f.s, "receipt", id, 2, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert_eq(store_webhook_next(f.s, &row, &found, &f.err), 0, "%s",
	    f.err.msg);
	cr_assert(found);
	cr_assert_str_eq(row.kind, "receipt");
	cr_assert_arr_eq(row.event_id, id, 16);
	store_close(&f.s);
}

/* ---- kp_case_seal's memo of its last input ---- */

/* The sealed value of ref for partner q, computed here from the format in
 * store_seal.c's header (an independent reading of it). */
static size_t
s_case_seal_ref(const char *q, const char *ref, uint8_t out[96])
{
	static const char label[] = "ketenpost/v1/meta/case";
	uint8_t siv_key[32], aead_key[32], ad[128], p[64] = { 0 };
	uint8_t nonce[24] = { 0 };
	size_t adlen, plen = strlen(ref) <= 32 ? 32 : 64;
	unsigned long long n = 0;
	crypto_generichash_state h;

	crypto_generichash(siv_key, 32, (const uint8_t *)"ketenpost/v1/"
	    "meta-siv", strlen("ketenpost/v1/meta-siv"), s_meta_key, 32);
	crypto_generichash(aead_key, 32, (const uint8_t *)"ketenpost/v1/"
	    "meta-aead", strlen("ketenpost/v1/meta-aead"), s_meta_key, 32);
	memcpy(ad, label, sizeof(label));      /* with its 0x00 */
	memcpy(ad + sizeof(label), q, strlen(q));
	adlen = sizeof(label) + strlen(q);
	memcpy(p, ref, strlen(ref));
	crypto_generichash_init(&h, siv_key, 32, 16);
	crypto_generichash_update(&h, ad, adlen);
	crypto_generichash_update(&h, (const uint8_t *)"", 1);
	crypto_generichash_update(&h, p, plen);
	crypto_generichash_final(&h, out, 16);
	memcpy(nonce, out, 16);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 16, &n, p, plen, ad,
	    adlen, NULL, nonce, aead_key);
	return 16 + (size_t)n;
}

/*
 * The sender seals one case three or four times per send, so the function
 * remembers its last input; a sequence that repeats, alternates partners
 * and references, and changes only the length, must give every input its
 * own value, each as the format says, and open back to its reference.
 */
Test(store, case_seal_memo_gives_each_input_its_own_value)
{
	static const char *const seq[][2] = {
		{ OIN_HALT, "ZAAK-A" }, { OIN_HALT, "ZAAK-A" },
		{ OIN_HALT, "ZAAK-B" }, { OIN_RVDK, "ZAAK-B" },
		{ OIN_RVDK, "ZAAK-A" }, { OIN_HALT, "ZAAK-A" },
		{ OIN_HALT, "ZAAK-A-" "0123456789012345678901234567890" },
		{ OIN_HALT, "ZAAK-A" }, { OIN_HALT, "ZAAK-AB" },
		{ OIN_HALT, "ZAAK-A" },
	};
	struct store raw;
	sqlite3_stmt *st = NULL, *op = NULL;
	uint8_t want[96];
	size_t i, wlen;
	kp_err_t err;

	memset(&raw, 0, sizeof(raw));
	cr_assert_eq(sqlite3_open(":memory:", &raw.db), SQLITE_OK);
	cr_assert_eq(sq_seal_register(&raw, s_meta_key, test_pseudonym_key,
	    &err), 0, "%s",
	    err.msg);
	cr_assert_eq(sqlite3_prepare_v2(raw.db, "SELECT kp_case_seal(?1, ?2)",
	    -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(raw.db, "SELECT kp_case_open(?1, ?2)",
	    -1, &op, NULL), SQLITE_OK);
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		wlen = s_case_seal_ref(seq[i][0], seq[i][1], want);
		sqlite3_bind_text(st, 1, seq[i][0], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, seq[i][1], -1, SQLITE_STATIC);
		cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
		cr_assert_eq((size_t)sqlite3_column_bytes(st, 0), wlen,
		    "input %zu", i);
		cr_assert_eq(memcmp(sqlite3_column_blob(st, 0), want, wlen), 0,
		    "input %zu (%s, %s) sealed to another's value", i,
		    seq[i][0], seq[i][1]);
		sqlite3_bind_text(op, 1, seq[i][0], -1, SQLITE_STATIC);
		sqlite3_bind_value(op, 2, sqlite3_column_value(st, 0));
		cr_assert_eq(sqlite3_step(op), SQLITE_ROW);
		cr_assert_str_eq((const char *)sqlite3_column_text(op, 0),
		    seq[i][1]);
		sqlite3_reset(op);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(op);
	sq_seal_free(&raw);
	sqlite3_close(raw.db);
}

/* The sealed route of event `id` as store_seal.c's comment specifies it
 * (the nonce derived from event id and route). OUT: out (24 + 4 + 16). */
static void
s_route_seal_ref(const uint8_t id[16], int32_t route, uint8_t out[44])
{
	static const char label[] = "ketenpost/v1/meta/route";
	uint8_t siv_key[32], aead_key[32], ad[sizeof(label) + 16], p[4];
	crypto_generichash_state h;
	unsigned long long n = 0;

	crypto_generichash(siv_key, 32, (const uint8_t *)"ketenpost/v1/"
	    "meta-siv", strlen("ketenpost/v1/meta-siv"), s_meta_key, 32);
	crypto_generichash(aead_key, 32, (const uint8_t *)"ketenpost/v1/"
	    "meta-aead", strlen("ketenpost/v1/meta-aead"), s_meta_key, 32);
	memcpy(ad, label, sizeof(label));      /* with its 0x00 */
	memcpy(ad + sizeof(label), id, 16);
	p[0] = (uint8_t)((uint32_t)route >> 24);
	p[1] = (uint8_t)((uint32_t)route >> 16);
	p[2] = (uint8_t)((uint32_t)route >> 8);
	p[3] = (uint8_t)route;
	crypto_generichash_init(&h, siv_key, 32, 24);
	crypto_generichash_update(&h, ad, sizeof(ad));
	crypto_generichash_update(&h, (const uint8_t *)"", 1);
	crypto_generichash_update(&h, p, 4);
	crypto_generichash_final(&h, out, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 24, &n, p, 4, ad,
	    sizeof(ad), NULL, out, aead_key);
	cr_assert_eq(n, 20);
}

/* kp_case_seal(q, ref) and kp_route_seal(id, route) of raw, as the
 * statements get them. OUT: case value (*clen bytes), route value. */
static void
s_sql_seals(struct store *raw, const char *q, const char *ref,
    const uint8_t id[16], int32_t route, uint8_t c[96], size_t *clen,
    uint8_t r[44])
{
	sqlite3_stmt *st = NULL;

	cr_assert_eq(sqlite3_prepare_v2(raw->db, "SELECT kp_case_seal(?1, ?2), "
	    "kp_route_seal(?3, ?4)", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ref, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, id, 16, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, route);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	*clen = (size_t)sqlite3_column_bytes(st, 0);
	cr_assert_leq(*clen, 96);
	memcpy(c, sqlite3_column_blob(st, 0), *clen);
	cr_assert_eq(sqlite3_column_bytes(st, 1), 44);
	memcpy(r, sqlite3_column_blob(st, 1), 44);
	sqlite3_finalize(st);
}

/*
 * The API worker seals a send's case and route ahead (store_seals_make)
 * and the loop hands them to the memo (store_seals_use): they are the
 * format's values, the statements are given them for their own input
 * (shown by handing over a changed value), and any other input is
 * sealed anew.  No case and no route make no seal.
 */
Test(store, seals_made_ahead_are_the_formats_and_serve_only_their_input)
{
	struct store raw;
	store_seals_t m, bad;
	uint8_t id[16], other[16], want[96], rwant[44], c[96], r[44];
	uint8_t pwant[32], pseud[32];
	size_t wlen, clen;
	kp_err_t err;

	memset(&raw, 0, sizeof(raw));
	memset(id, 7, sizeof(id));
	memset(other, 8, sizeof(other));
	cr_assert_eq(sqlite3_open(":memory:", &raw.db), SQLITE_OK);
	cr_assert_eq(sq_seal_register(&raw, s_meta_key, test_pseudonym_key,
	    &err), 0, "%s", err.msg);
	cr_assert_eq(store_seals_make(&raw, OIN_HALT, "ZAAK-A", id, 2, &m), 0);
	wlen = s_case_seal_ref(OIN_HALT, "ZAAK-A", want);
	s_route_seal_ref(id, 2, rwant);
	cr_assert_eq(m.outlen, wlen);
	cr_assert_eq(memcmp(m.out, want, wlen), 0);
	cr_assert(m.has_route);
	cr_assert_eq(memcmp(m.route_out, rwant, 44), 0);
	/* handed over changed, the statements get the changed values */
	bad = m;
	bad.out[0] ^= 1;
	bad.route_out[0] ^= 1;
	store_seals_use(&raw, &bad);
	s_sql_seals(&raw, OIN_HALT, "ZAAK-A", id, 2, c, &clen, r);
	cr_assert(clen == wlen && c[0] == (want[0] ^ 1) &&
	    memcmp(c + 1, want + 1, wlen - 1) == 0, "the memo was not used");
	cr_assert(r[0] == (rwant[0] ^ 1), "the route memo was not used");
	/* our pseudonym of the case: made ahead, the key's; used only for
	 * its own partner and case */
	cr_assert_eq(pseudonym_with_key(test_pseudonym_key, OIN_HALT, "ZAAK-A",
	    pwant, &err), 0);
	cr_assert_str_eq(m.pseud_local, "ZAAK-A");
	cr_assert_eq(memcmp(m.pseud, pwant, 32), 0);
	bad.pseud[0] ^= 1;
	store_seals_use(&raw, &bad);
	cr_assert_eq(sq_case_pseudonym(&raw, OIN_HALT, "ZAAK-A", pseud, &err),
	    0);
	cr_assert(pseud[0] == (pwant[0] ^ 1), "the pseudonym memo was not used");
	cr_assert_eq(sq_case_pseudonym(&raw, OIN_RVDK, "ZAAK-A", pseud, &err),
	    0);
	cr_assert_eq(pseudonym_with_key(test_pseudonym_key, OIN_RVDK, "ZAAK-A",
	    pwant, &err), 0);
	cr_assert_eq(memcmp(pseud, pwant, 32), 0);
	cr_assert_eq(sq_case_pseudonym(&raw, OIN_HALT, "ZAAK-B", pseud, &err),
	    0);
	cr_assert_eq(pseudonym_with_key(test_pseudonym_key, OIN_HALT, "ZAAK-B",
	    pwant, &err), 0);
	cr_assert_eq(memcmp(pseud, pwant, 32), 0);
	sq_seal_forget(&raw);
	cr_assert_eq(sq_case_pseudonym(&raw, OIN_HALT, "ZAAK-A", pseud, &err),
	    0);
	cr_assert_eq(pseudonym_with_key(test_pseudonym_key, OIN_HALT, "ZAAK-A",
	    pwant, &err), 0);
	cr_assert_eq(memcmp(pseud, pwant, 32), 0, "forgotten at commit");
	/* another partner, another event: sealed anew, the format's */
	store_seals_use(&raw, &bad);
	s_sql_seals(&raw, OIN_RVDK, "ZAAK-A", other, 2, c, &clen, r);
	wlen = s_case_seal_ref(OIN_RVDK, "ZAAK-A", want);
	s_route_seal_ref(other, 2, rwant);
	cr_assert(clen == wlen && memcmp(c, want, wlen) == 0);
	cr_assert_eq(memcmp(r, rwant, 44), 0);
	/* no case, no route: nothing to hand over */
	cr_assert_eq(store_seals_make(&raw, OIN_HALT, "", id, 0, &m), 0);
	cr_assert_eq(m.inlen, 0);
	cr_assert_not(m.has_route);
	cr_assert_str_eq(m.pseud_local, "");
	/* a reference over 64 bytes is refused, and nothing is kept */
	cr_assert_neq(store_seals_make(&raw, OIN_HALT, "Z0123456789012345678"
	    "90123456789012345678901234567890123456789012345", id, 2, &m), 0);
	cr_assert(m.inlen == 0 && !m.has_route);
	sq_seal_free(&raw);
	sqlite3_close(raw.db);
}

/*
 * A route is sealed under a nonce derived from its event id and value
 * (no system call per row) and remembered for the next row of the send:
 * each value is the format's, equal only for the same event and route,
 * and a value sealed under a random nonce (before) still opens.
 */
Test(store, route_seal_derives_its_nonce_and_remembers_its_last_value)
{
	static const struct { uint8_t id; int32_t route; } seq[] = {
		{ 1, 2 }, { 1, 2 }, { 1, 3 }, { 2, 2 }, { 1, 3 }, { 2, 2 },
		{ 1, 2 },
		{ 3, -7 },
	};
	struct store raw;
	sqlite3_stmt *st = NULL, *op = NULL;
	uint8_t id[16], want[44], first[44];
	size_t i;
	kp_err_t err;

	memset(&raw, 0, sizeof(raw));
	cr_assert_eq(sqlite3_open(":memory:", &raw.db), SQLITE_OK);
	cr_assert_eq(sq_seal_register(&raw, s_meta_key, test_pseudonym_key,
	    &err), 0, "%s", err.msg);
	cr_assert_eq(sqlite3_prepare_v2(raw.db, "SELECT kp_route_seal(?1, ?2)",
	    -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(raw.db, "SELECT kp_route_open(?1, ?2)",
	    -1, &op, NULL), SQLITE_OK);
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		memset(id, seq[i].id, sizeof(id));
		s_route_seal_ref(id, seq[i].route, want);
		if (i == 0)
			memcpy(first, want, sizeof(first));
		sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, seq[i].route);
		cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
		cr_assert_eq(sqlite3_column_bytes(st, 0), 44);
		cr_assert_eq(memcmp(sqlite3_column_blob(st, 0), want, 44), 0,
		    "input %zu sealed to another value", i);
		cr_assert((memcmp(want, first, 44) == 0) == (seq[i].id == 1 &&
		    seq[i].route == 2), "input %zu", i);
		sqlite3_bind_blob(op, 1, id, 16, SQLITE_STATIC);
		sqlite3_bind_value(op, 2, sqlite3_column_value(st, 0));
		cr_assert_eq(sqlite3_step(op), SQLITE_ROW);
		cr_assert_eq(sqlite3_column_int(op, 0), seq[i].route);
		sqlite3_reset(op);
		sqlite3_reset(st);
	}
	/* a random nonce, as a row sealed before has it, opens alike */
	memset(id, 1, sizeof(id));
	s_route_seal_ref(id, 2, want);
	randombytes_buf(want, 24);
	{
		uint8_t aead_key[32], ad[24 + 16];
		unsigned long long n = 0;
		static const uint8_t p[4] = { 0, 0, 0, 2 };

		crypto_generichash(aead_key, 32, (const uint8_t *)"ketenpost/"
		    "v1/meta-aead", strlen("ketenpost/v1/meta-aead"), s_meta_key,
		    32);
		memcpy(ad, "ketenpost/v1/meta/route", 24);
		memcpy(ad + 24, id, 16);
		crypto_aead_xchacha20poly1305_ietf_encrypt(want + 24, &n, p, 4,
		    ad, sizeof(ad), NULL, want, aead_key);
	}
	sqlite3_bind_blob(op, 1, id, 16, SQLITE_STATIC);
	sqlite3_bind_blob(op, 2, want, 44, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(op), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(op, 0), 2);
	sqlite3_finalize(st);
	sqlite3_finalize(op);
	sq_seal_free(&raw);
	sqlite3_close(raw.db);
}

/* ---- counts kept as rows change (store_counts.c) ---- */

/* The counts the store keeps must equal the rows, counted here. */
static void
s_counts_match(struct fx *f, const char *when)
{
	uint64_t kept[5], unacked, total, want;
	sqlite3_stmt *st = NULL;
	int state;

	cr_assert_eq(store_outbox_counts(f->s, kept, &f->err), 0, "%s",
	    f->err.msg);
	for (state = STORE_PENDING; state <= STORE_DEAD; state++) {
		cr_assert_eq(sqlite3_prepare_v2(f->s->db, "SELECT count(*) FROM "
		    "main.outbox WHERE state = ?1", -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_int(st, 1, state);
		cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
		want = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		cr_assert_eq(kept[state], want, "%s: state %d kept %" PRIu64
		    ", rows %" PRIu64, when, state, kept[state], want);
	}
	cr_assert_eq(store_inbox_counts(f->s, &unacked, &total, &f->err), 0);
	cr_assert_eq(sqlite3_prepare_v2(f->s->db, "SELECT count(*), "
	    "coalesce(sum(acked = 0), 0) FROM main.inbox", -1, &st, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_eq(total, (uint64_t)sqlite3_column_int64(st, 0), "%s", when);
	cr_assert_eq(unacked, (uint64_t)sqlite3_column_int64(st, 1), "%s",
	    when);
	sqlite3_finalize(st);
}

/*
 * Status and metrics read counts kept as rows change, not counted: through
 * inserts to two partners, settles both ways, expiry, acks, a statement
 * that fails inside a transaction, a rollback and a reopen, they equal
 * the rows at every step.
 */
Test(store, counts_kept_equal_the_rows_through_every_change)
{
	struct fx f = { 0 };
	outbox_row_t r[6], dup;
	inbox_row_t in[3];
	uint8_t rdig[32] = { 0 };
	struct seen sn = { 0 };
	bool applied, newly;
	int i;

	s_open(&f);
	s_counts_match(&f, "empty");
	for (i = 0; i < 5; i++) {
		r[i] = s_orow(i + 1, i < 3 ? OIN_HALT : OIN_OM);
		r[i].expires_ms = T0 + 10;
		s_insert(&f, &r[i]);
	}
	s_counts_match(&f, "five queued");
	cr_assert_eq(store_outbox_settle(f.s, r[0].event_id, OIN_HALT,
	    r[0].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0, T0,
	    &applied, NULL, &f.err), 0);
	cr_assert_eq(store_outbox_settle(f.s, r[3].event_id, OIN_OM,
	    r[3].envelope_digest, STORE_REJECTED, 7, rdig, NULL, 0, T0,
	    &applied, NULL, &f.err), 0);
	s_counts_match(&f, "settled");
	/* a settle of a settled row changes nothing */
	cr_assert_eq(store_outbox_settle(f.s, r[0].event_id, OIN_HALT,
	    r[0].envelope_digest, STORE_REJECTED, 7, rdig, NULL, 0, T0,
	    &applied, NULL, &f.err), 0);
	s_counts_match(&f, "settled again");
	/* inside a transaction: a failed statement takes back its own
	 * changes only, the rollback all of them */
	cr_assert_eq(store_begin(f.s, &f.err), 0);
	r[5] = s_orow(6, OIN_RVDK);
	s_insert(&f, &r[5]);
	cr_assert_eq(store_outbox_settle(f.s, r[1].event_id, OIN_HALT,
	    r[1].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0, T0,
	    &applied, NULL, &f.err), 0);
	dup = s_orow(2, OIN_HALT);
	s_expect(store_outbox_insert(f.s, &dup, (const uint8_t *)"x", 1,
	    &f.err), &f.err, KP_ERR_INVALID_ARG, "already in outbox");
	s_counts_match(&f, "in the transaction, after a failed insert");
	store_rollback(f.s);
	s_counts_match(&f, "rolled back");
	cr_assert_eq(store_outbox_expire(f.s, T0 + 10, s_collect, &sn, &f.err),
	    0);
	cr_assert_eq(sn.n, 3, "r[1], r[2], r[4] expired");
	s_counts_match(&f, "expired");
	/* a late verified receipt settles a dead row */
	cr_assert_eq(store_outbox_settle(f.s, r[2].event_id, OIN_HALT,
	    r[2].envelope_digest, STORE_DELIVERED, 0, rdig, NULL, 0, T0 + 11,
	    &applied, NULL, &f.err), 0);
	cr_assert(applied);
	s_counts_match(&f, "a dead row delivered late");
	for (i = 0; i < 3; i++) {
		in[i] = s_irow(10 + i);
		s_in_insert(&f, &in[i]);
	}
	cr_assert_eq(store_inbox_ack(f.s, in[1].event_id, &newly, &f.err), 0);
	cr_assert_eq(store_inbox_ack(f.s, in[1].event_id, &newly, &f.err), 0);
	s_counts_match(&f, "inbox, one acked twice");
	/* savepoints (one per API request): an undone one takes back only
	 * its own changes, a released one's commit with the transaction */
	cr_assert_eq(store_begin(f.s, &f.err), 0);
	cr_assert_eq(store_inbox_ack(f.s, in[0].event_id, &newly, &f.err), 0);
	cr_assert_eq(store_savepoint(f.s, &f.err), 0);
	s_expect(store_savepoint(f.s, &f.err), &f.err, KP_ERR_INVALID_ARG,
	    "already open");
	r[5] = s_orow(7, OIN_RVDK);
	s_insert(&f, &r[5]);
	cr_assert_eq(store_inbox_ack(f.s, in[2].event_id, &newly, &f.err), 0);
	s_counts_match(&f, "in a savepoint");
	cr_assert_eq(store_undo(f.s, &f.err), 0);
	s_counts_match(&f, "savepoint undone");
	cr_assert_eq(store_savepoint(f.s, &f.err), 0);
	r[5] = s_orow(8, OIN_RVDK);
	s_insert(&f, &r[5]);
	cr_assert_eq(store_release(f.s, &f.err), 0);
	cr_assert_eq(store_commit(f.s, &f.err), 0);
	s_counts_match(&f, "savepoint released, committed");
	/* a savepoint outside a transaction is one, committed by release */
	cr_assert_eq(store_savepoint(f.s, &f.err), 0);
	r[5] = s_orow(9, OIN_RVDK);
	s_insert(&f, &r[5]);
	cr_assert_eq(store_release(f.s, &f.err), 0);
	s_counts_match(&f, "savepoint as a transaction");
	cr_assert_eq(store_begin(f.s, &f.err), 0);
	cr_assert_eq(store_inbox_ack(f.s, in[2].event_id, &newly, &f.err), 0);
	store_rollback(f.s);
	s_counts_match(&f, "an ack rolled back");
	s_reopen(&f);
	s_counts_match(&f, "reopened");
	s_close(&f);
}

/* Is oin in meta_partners (what a look-up by case reference seals for)? */
static long long
s_partner_rows(struct fx *f, const char *oin)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM meta_partners WHERE "
	    "oin = '%s'", oin);
	return s_raw_sql(f->dir, sql);
}

/* sq_partner_seen remembers the partners it put in meta_partners, so a
 * row runs no statement for them; one the transaction, or the request's
 * savepoint, took back must not be remembered, or the next row for that
 * partner would leave it out of meta_partners for good. */
Test(store, a_partner_taken_back_is_recorded_by_its_next_row)
{
	struct fx f = { 0 };
	outbox_row_t r;

	s_open(&f);
	cr_assert_eq(store_begin(f.s, &f.err), 0);
	r = s_orow(1, OIN_OM);
	s_insert(&f, &r);
	store_rollback(f.s);
	cr_assert_eq(s_partner_rows(&f, OIN_OM), 0);
	cr_assert_eq(store_begin(f.s, &f.err), 0);
	r = s_orow(1, OIN_OM);
	s_insert(&f, &r);
	cr_assert_eq(store_commit(f.s, &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(s_partner_rows(&f, OIN_OM), 1,
	    "a partner rolled back must be recorded again");

	cr_assert_eq(store_begin(f.s, &f.err), 0);
	cr_assert_eq(store_savepoint(f.s, &f.err), 0);
	r = s_orow(2, OIN_RVDK);
	s_insert(&f, &r);
	cr_assert_eq(store_undo(f.s, &f.err), 0);
	r = s_orow(3, OIN_RVDK);
	s_insert(&f, &r);
	cr_assert_eq(store_commit(f.s, &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(s_partner_rows(&f, OIN_RVDK), 1,
	    "a partner undone with a savepoint must be recorded again");

	/* a statement of its own (no transaction) is remembered at once */
	r = s_orow(4, OIN_HALT);
	s_insert(&f, &r);
	cr_assert_eq(s_partner_rows(&f, OIN_HALT), 1);
	s_close(&f);
}

/* ---- which commits flush the disk (store_begin_unflushed) ---- */

static void
s_settle_one(struct fx *f, const outbox_row_t *r)
{
	const uint8_t receipt[] = "signed receipt bytes";
	uint8_t rdig[32];
	bool applied = false;

	memset(rdig, 0x77, sizeof(rdig));
	cr_assert_eq(store_outbox_settle(f->s, r->event_id, r->to_oin,
	    r->envelope_digest, STORE_DELIVERED, 0, rdig, receipt,
	    sizeof(receipt), T0 + 5, &applied, NULL, &f->err), 0, "%s",
	    f->err.msg);
	cr_assert(applied);
}

/* Through countvfs (tests/countvfs.c), which counts the log's syncs: a
 * receipt's settlement committed unflushed syncs nothing, and every
 * commit after it, a transaction's or a single statement's, syncs. */
Test(store, a_settlement_commits_without_a_flush_and_the_next_commit_flushes)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), b = s_orow(2, OIN_HALT);
	outbox_row_t c = s_orow(3, OIN_HALT);
	int n;

	countvfs_install();
	s_open(&f);
	n = countvfs_wal_syncs();
	s_insert(&f, &a);            /* a statement of its own */
	cr_assert_gt(countvfs_wal_syncs(), n, "an insert is flushed");
	s_insert(&f, &b);

	n = countvfs_wal_syncs();
	cr_assert_eq(store_begin_unflushed(f.s, &f.err), 0, "%s", f.err.msg);
	s_settle_one(&f, &a);
	cr_assert_eq(store_commit(f.s, &f.err), 0, "%s", f.err.msg);
	cr_assert_eq(countvfs_wal_syncs(), n,
	    "the settlement's commit must not sync the log");
	cr_assert_eq(s_get(&f, 1).state, STORE_DELIVERED);

	/* the next transaction is flushed, and so is a single statement */
	cr_assert_eq(store_begin(f.s, &f.err), 0, "%s", f.err.msg);
	s_settle_one(&f, &b);
	cr_assert_eq(store_commit(f.s, &f.err), 0, "%s", f.err.msg);
	cr_assert_gt(countvfs_wal_syncs(), n,
	    "a commit after an unflushed one must sync the log");
	n = countvfs_wal_syncs();
	s_insert(&f, &c);
	cr_assert_gt(countvfs_wal_syncs(), n, "an insert is flushed");

	/* an unflushed transaction rolled back leaves flushing on too */
	cr_assert_eq(store_begin_unflushed(f.s, &f.err), 0, "%s", f.err.msg);
	s_settle_one(&f, &c);
	store_rollback(f.s);
	cr_assert_eq(s_get(&f, 3).state, STORE_PENDING);
	n = countvfs_wal_syncs();
	cr_assert_eq(store_begin(f.s, &f.err), 0, "%s", f.err.msg);
	s_settle_one(&f, &c);
	cr_assert_eq(store_commit(f.s, &f.err), 0, "%s", f.err.msg);
	cr_assert_gt(countvfs_wal_syncs(), n,
	    "a commit after a rolled back unflushed one must sync the log");

	/* what was committed unflushed is in the file after a reopen */
	s_reopen(&f);
	cr_assert_eq(s_get(&f, 1).state, STORE_DELIVERED);
	cr_assert_eq(s_get(&f, 2).state, STORE_DELIVERED);
	s_close(&f);
	countvfs_remove();
}

Test(store, a_commit_that_would_not_be_flushed_is_refused)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), b = s_orow(2, OIN_HALT);
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
	cr_assert_eq(s_get(&f, 2).state, STORE_PENDING);
	s_close(&f);
}

/* SQLite may roll a transaction back by itself (a full disk, an I/O
 * error): the caller's next statements would each commit on their own.
 * After an unflushed transaction they would also commit unflushed; the
 * commit hook refuses them until the caller's rollback. */
Test(store, statements_after_an_unflushed_transaction_vanished_are_refused)
{
	struct fx f = { 0 };
	outbox_row_t a = s_orow(1, OIN_HALT), b = s_orow(2, OIN_HALT);
	uint8_t env[64] = { 0 };

	s_open(&f);
	s_insert(&f, &a);
	cr_assert_eq(store_begin_unflushed(f.s, &f.err), 0, "%s", f.err.msg);
	/* what SQLite does by itself on SQLITE_FULL */
	cr_assert_eq(sqlite3_exec(f.s->db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	cr_assert_not(store_in_txn(f.s));
	cr_assert_eq(store_outbox_insert(f.s, &b, env, sizeof(env), &f.err),
	    -1, "a statement after the transaction vanished must be refused");
	cr_assert_eq(sqlite3_extended_errcode(f.s->db),
	    SQLITE_CONSTRAINT_COMMITHOOK, "%s", sqlite3_errmsg(f.s->db));
	store_rollback(f.s);
	s_insert(&f, &b);           /* flushed again after the rollback */
	cr_assert_eq(s_get(&f, 2).state, STORE_PENDING);
	s_close(&f);
}

/* Schema version 9: the side tables are read by their key after the
 * outbox row, never walked: the due walk by outbox_pending, a get and
 * the receipt by event_id's index, the list by seq; the purge finds the
 * envelopes by outbox_retention. */
Test(store, the_outbox_side_tables_are_read_by_their_key)
{
	struct fx f = { 0 };
	static const int st[] = { ST_OB_DUE, ST_OB_PENDING, ST_OB_GET,
	    ST_OB_LIST, ST_OB_RECEIPT, ST_OB_EXPIRE, ST_OB_ENV_DROP,
	    ST_OB_PURGE_ENV, ST_SUBJECT };
	size_t i;

	s_open(&f);
	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		s_plan_has_no(&f, st[i], "SCAN e");
		s_plan_has_no(&f, st[i], "SCAN r");
		s_plan_has_no(&f, st[i], "SCAN outbox");
	}
	s_plan_has(&f, ST_OB_DUE, "INDEX outbox_pending");
	s_plan_has(&f, ST_OB_DUE, "SEARCH e USING INTEGER PRIMARY KEY");
	s_plan_has(&f, ST_OB_PENDING, "SEARCH e USING INTEGER PRIMARY KEY");
	s_plan_has(&f, ST_OB_GET, "SEARCH r USING INTEGER PRIMARY KEY");
	s_plan_has(&f, ST_OB_LIST, "SEARCH r USING INTEGER PRIMARY KEY");
	s_plan_has(&f, ST_OB_RECEIPT, "SEARCH r USING INTEGER PRIMARY KEY");
	s_plan_has(&f, ST_OB_PURGE_ENV, "INDEX outbox_retention");
	s_close(&f);
}
