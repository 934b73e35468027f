/*
 * test_atrest_meta.c: metadata minimised at rest (issue 11 item 4).
 *
 * A chain run with known case references: no reference is in any raw file
 * of any daemon's database (database, WAL, shared memory, journal), no row
 * or sealed value links one case's pseudonyms of two partners, and the
 * views (subject access, cases, timeline) still show the references.  At
 * the end of the policy's metadata_retention the rows are reduced to what
 * docs/OPERATIONS.md "What a backup reveals" says.  A database made by
 * schema version 3 is sealed in place at first open, and a store opened
 * with another key cannot read it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sqlite3.h>

#include "common.h"
#include "daemons.h"
#include "store.h"
#include "store_int.h"          /* sq_schema_step, STORE_APP_ID */
#include "util.h"

TestSuite(atrest_meta, .init = test_init, .timeout = 240);

static const char *const s_refs[] = { "LP-META-0001", "LP-META-0002",
    "HALT-META-0077" };

static int
s_cli(const td_org_t *o, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
s_cli(const td_org_t *o, char *out, size_t len, const char *fmt, ...)
{
	char args[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return test_sh_output(out, len, "%s/ketenpost %s --config %s",
	    test_bin(), args, o->conf);
}

/* Does a raw file of the database (db, -wal, -shm, -journal) hold the
 * bytes?  OUT: which (file and offset). */
static bool
s_files_hold(const char *state, const void *p, size_t n, char *which,
    size_t len)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char path[4400];
	uint8_t *buf;
	const uint8_t *at;
	size_t i, size;

	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s/ketenpost.db%s", state,
		    suffix[i]);
		if (kp_read_file(path, 1u << 30, &buf, &size) != 0)
			continue;          /* no such file: holds nothing */
		at = memmem(buf, size, p, n);
		if (at != NULL)
			snprintf(which, len, "%s at offset %zu", path,
			    (size_t)(at - buf));
		free(buf);
		if (at != NULL)
			return true;
	}
	return false;
}

/* No raw file of the state folder holds any of the case references. */
static void
s_no_reference_on_disk(const char *state)
{
	char where[4500];
	size_t i;

	for (i = 0; i < sizeof(s_refs) / sizeof(s_refs[0]); i++)
		cr_assert_not(s_files_hold(state, s_refs[i], strlen(s_refs[i]),
		    where, sizeof(where)), "case reference %s is in %s",
		    s_refs[i], where);
}

/* Some row of some table of the database holds both a and b (32 bytes
 * each) in its columns, or one value holds both. */
static bool
s_a_row_links(const char *state, const uint8_t a[32], const uint8_t b[32],
    char *which, size_t len)
{
	char path[4400], sql[256];
	sqlite3 *db = NULL;
	sqlite3_stmt *tables = NULL, *st = NULL;
	bool found = false;
	int i, n;

	snprintf(path, sizeof(path), "%s/ketenpost.db", state);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_schema "
	    "WHERE type = 'table'", -1, &tables, NULL), SQLITE_OK);
	while (!found && sqlite3_step(tables) == SQLITE_ROW) {
		snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"",
		    (const char *)sqlite3_column_text(tables, 0));
		cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
		    SQLITE_OK, "%s", sqlite3_errmsg(db));
		while (!found && sqlite3_step(st) == SQLITE_ROW) {
			bool has_a = false, has_b = false;

			n = sqlite3_column_count(st);
			for (i = 0; i < n; i++) {
				const void *v = sqlite3_column_blob(st, i);
				size_t vn = (size_t)sqlite3_column_bytes(st, i);

				if (v == NULL)
					continue;
				has_a |= memmem(v, vn, a, 32) != NULL;
				has_b |= memmem(v, vn, b, 32) != NULL;
			}
			found = has_a && has_b;
		}
		if (found)
			snprintf(which, len, "a row of %s",
			    (const char *)sqlite3_column_text(tables, 0));
		sqlite3_finalize(st);
	}
	sqlite3_finalize(tables);
	sqlite3_close(db);
	return found;
}

/* The pseudonym of the outbox row of event id. */
static void
s_pseudonym_of(const char *state, const uint8_t id[16], uint8_t ref[32])
{
	char path[4400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	snprintf(path, sizeof(path), "%s/ketenpost.db", state);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT case_ref FROM outbox "
	    "WHERE event_id = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_bytes(st, 0), 32);
	memcpy(ref, sqlite3_column_blob(st, 0), 32);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* SELECT count(*) FROM from_sql on the live database (its own
 * connection, so quotes need no shell). */
static long
s_count(const char *state, const char *from_sql)
{
	char path[4400], sql[1024];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long n;

	snprintf(path, sizeof(path), "%s/ketenpost.db", state);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", from_sql);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sqlite3_errmsg(db));
	n = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* The number of items of a `subject REF --json` answer. */
static size_t
s_subject_items(const td_org_t *o, const char *ref)
{
	char out[32768];
	json_t *j;
	size_t n;

	cr_assert_eq(s_cli(o, out, sizeof(out), "subject %s --json", ref), 0,
	    "%s", out);
	j = json_loads(out, 0, NULL);
	cr_assert_not_null(j, "%s", out);
	n = json_array_size(json_object_get(j, "items"));
	json_decref(j);
	return n;
}

/*
 * One case (LP-META-0001) referred by Leerplicht to Halt and RvdK, another
 * to Halt; Halt files the referral under its own HALT-META-0077 and
 * answers; Leerplicht records the absence after the route.  Every view
 * shows the references; no raw file holds one; no row, and no sealed
 * value, ties the case's Halt pseudonym to its RvdK pseudonym.
 */
Test(atrest_meta, no_case_reference_or_pseudonym_link_on_disk)
{
	td_chain_t c;
	td_org_t *lp, *halt, *rvdk;
	uint8_t a[16], b[16], d[16], ans[16], ref_h[32], ref_r[32];
	char out[32768], id[37], state[3][4200], where[4500];
	Kp__Response *hin;
	size_t i;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	rvdk = td_org(&c, OIN_RVDK);
	td_start(lp);
	td_start(halt);
	td_start(rvdk);
	td_send(lp, OIN_HALT, "referral", s_refs[0], td_example("referral"),
	    NULL, a);
	td_send(lp, OIN_RVDK, "referral", s_refs[0], td_example_to("referral",
	    OIN_RVDK), NULL, b);
	td_send(lp, OIN_HALT, "referral", s_refs[1], td_example("referral"),
	    NULL, d);
	cr_assert(td_wait_settled(lp, 10000));
	hin = td_inbox(halt, true);
	cr_assert_eq(hin->inbox->n_items, 2);
	kp_uuid_format(hin->inbox->items[0]->event_id.data, id);
	cr_assert_eq(s_cli(halt, out, sizeof(out), "link %s %s", id,
	    s_refs[2]), 0, "%s", out);
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", s_refs[2],
	    td_example("halt_outcome"), hin->inbox->items[0]->event_id.data,
	    ans);
	kp__response__free_unpacked(hin, NULL);
	cr_assert(td_wait_settled(halt, 10000));
	cr_assert_eq(s_cli(lp, out, sizeof(out), "outcome %s --absence "
	    "stopped", s_refs[0]), 0, "%s", out);

	/* the views decrypt: the references are shown back */
	cr_assert_eq(s_subject_items(lp, s_refs[0]) + s_subject_items(lp,
	    s_refs[1]), 4, "three referrals and one answer");
	cr_assert_eq(s_subject_items(halt, s_refs[2]), 2);
	cr_assert_eq(s_cli(lp, out, sizeof(out), "cases --json"), 0, "%s",
	    out);
	cr_assert(strstr(out, s_refs[0]) != NULL && strstr(out, s_refs[1]) !=
	    NULL, "%s", out);
	cr_assert_eq(s_cli(lp, out, sizeof(out), "case %s --json", s_refs[0]),
	    0, "%s", out);
	cr_assert(strstr(out, "\"outcome\"") != NULL, "%s", out);

	/* the raw files, live (with the WAL) */
	td_state_dir(&c, OIN_LEERPLICHT, state[0], sizeof(state[0]));
	td_state_dir(&c, OIN_HALT, state[1], sizeof(state[1]));
	td_state_dir(&c, OIN_RVDK, state[2], sizeof(state[2]));
	for (i = 0; i < 3; i++)
		s_no_reference_on_disk(state[i]);

	/* one case, two partners: two pseudonyms no row puts together, and
	 * sealed references that differ per partner */
	s_pseudonym_of(state[0], a, ref_h);
	s_pseudonym_of(state[0], b, ref_r);
	cr_assert_neq(memcmp(ref_h, ref_r, 32), 0);
	cr_assert(s_a_row_links(state[0], ref_h, ref_h, where, sizeof(where)),
	    "the search finds a row with the Halt pseudonym");
	cr_assert_not(s_a_row_links(state[0], ref_h, ref_r, where,
	    sizeof(where)), "%s links the case's pseudonyms", where);
	cr_assert_eq(s_count(state[0], "(SELECT case_sealed FROM outbox "
	    "WHERE case_sealed <> '' GROUP BY case_sealed HAVING "
	    "count(DISTINCT to_oin) > 1)"), 0, "a sealed reference shared "
	    "by two partners");
	cr_assert_eq(s_count(state[0], "(SELECT local_sealed FROM links "
	    "GROUP BY local_sealed HAVING count(DISTINCT partner_oin) > 1)"),
	    0);
	cr_assert_eq(s_count(state[0], "outbox WHERE typeof(case_sealed) "
	    "<> 'blob' OR typeof(route_sealed) <> 'blob'"), 0,
	    "every referral's case and route sealed");
	cr_assert_eq(s_count(state[0], "links"), 3, "LP-META-0001 with "
	    "Halt and RvdK, LP-META-0002 with Halt: %ld",
	    s_count(state[0], "links"));
	/* schema version 7: the referrals' links are own ones (found through
	 * their pseudonym, in no index by reference); Halt's answer went on a
	 * received pseudonym: a filed link */
	cr_assert_eq(s_count(state[0], "links WHERE own = 1"), 3);
	cr_assert_eq(s_count(state[1], "links WHERE own = 0"), 1);
	cr_assert_eq(s_count(state[1], "links"), 1);

	/* and stopped (the WAL checkpointed into the database file) */
	td_chain_stop_all(&c);
	for (i = 0; i < 3; i++)
		s_no_reference_on_disk(state[i]);
}

/*
 * Retention 2s, metadata_retention 3s: after both, the retention pass
 * reduces the rows to what the audit needs; the views no longer know the
 * case; the audit log still verifies.
 */
Test(atrest_meta, metadata_retention_reduces_rows)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t a[16], ans[16];
	char out[32768], id[37], lps[4200], hs[4200];
	Kp__Response *hin;

	td_chain_make(&c, NULL);
	cr_assert_eq(test_sh("sed -i 's/^retention *=.*/retention = 2s/; "
	    "s/^metadata_retention *=.*/metadata_retention = 3s/' "
	    "%s/policy.ini", c.dir), 0);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", s_refs[0], td_example("referral"),
	    NULL, a);
	cr_assert(td_wait_settled(lp, 10000));
	hin = td_inbox(halt, true);
	kp_uuid_format(hin->inbox->items[0]->event_id.data, id);
	cr_assert_eq(s_cli(halt, out, sizeof(out), "link %s %s", id,
	    s_refs[2]), 0, "%s", out);
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", s_refs[2],
	    td_example("halt_outcome"), hin->inbox->items[0]->event_id.data,
	    ans);
	kp__response__free_unpacked(hin, NULL);
	cr_assert(td_wait_settled(halt, 10000));
	cr_assert_eq(s_cli(lp, out, sizeof(out), "outcome %s --absence "
	    "reduced", s_refs[0]), 0, "%s", out);
	td_state_dir(&c, OIN_LEERPLICHT, lps, sizeof(lps));
	td_state_dir(&c, OIN_HALT, hs, sizeof(hs));
	cr_assert_eq(s_subject_items(lp, s_refs[0]), 2);
	cr_assert_eq(s_count(lps, "expectations"), 1);
	cr_assert_eq(s_count(lps, "absence_after"), 1);

	sleep(5);
	cr_assert_eq(s_cli(lp, out, sizeof(out), "purge"), 0, "%s", out);
	cr_assert_eq(s_cli(halt, out, sizeof(out), "purge"), 0, "%s", out);
	cr_assert(td_log_has(lp, "metadata retention ended: 1 sent and 1 "
	    "received event(s) reduced", 5000));

	/* Leerplicht: the referral sent and the answer received, reduced */
	cr_assert_eq(s_count(lps, "outbox WHERE reduced_ms > 0 AND "
	    "case_sealed = '' AND case_ref = zeroblob(32) AND route_sealed IS "
	    "NULL AND fields = '' AND idem_key IS NULL AND event_key IS NULL "
	    "AND seq NOT IN (SELECT seq FROM outbox_env)"), 1);
	cr_assert_eq(s_count(lps, "outbox o JOIN outbox_receipts r ON "
	    "r.seq = o.seq WHERE length(event_id) = 16 AND "
	    "event_type = 1 AND to_oin = '" OIN_HALT "' AND created_ms > 0 AND "
	    "state = 2 AND length(envelope_digest) = 32 AND "
	    "length(r.receipt_digest) = 32 AND r.receipt IS NOT NULL AND "
	    "purpose <> '' AND legal_basis <> ''"), 1, "what the audit needs "
	    "stays");
	cr_assert_eq(s_count(lps, "inbox WHERE reduced_ms > 0 AND "
	    "case_sealed = '' AND case_ref = zeroblob(32) AND fields = '' AND "
	    "envelope IS NOT NULL AND receipt IS NOT NULL AND from_oin = '"
	    OIN_HALT "'"), 1);
	cr_assert_eq(s_count(lps, "expectations"), 0);
	cr_assert_eq(s_count(lps, "absence_after"), 0);
	cr_assert_eq(s_count(lps, "links"), 0);
	/* Halt: the referral received and its answer, and its link */
	cr_assert_eq(s_count(hs, "inbox WHERE reduced_ms > 0 AND "
	    "case_sealed = '' AND fields = ''"), 1);
	cr_assert_eq(s_count(hs, "outbox WHERE reduced_ms > 0 AND "
	    "case_sealed = ''"), 1);
	cr_assert_eq(s_count(hs, "links"), 0);

	/* the views no longer know the case; the audit log is whole */
	cr_assert_eq(s_subject_items(lp, s_refs[0]), 0);
	cr_assert_eq(s_subject_items(halt, s_refs[2]), 0);
	cr_assert_eq(s_cli(lp, out, sizeof(out), "cases --json"), 0, "%s",
	    out);
	cr_assert_null(strstr(out, s_refs[0]), "%s", out);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
	    "verify %s", test_bin(), lps), 0, "%s", out);
	/* a second pass has nothing more to reduce */
	cr_assert_eq(s_cli(lp, out, sizeof(out), "purge"), 0, "%s", out);
	cr_assert_eq(td_log_count(lp, "metadata retention ended"), 1);
	td_chain_stop_all(&c);
}

/* ---- the store alone: migration from schema version 3, the key ---- */

static const uint8_t s_key[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t s_other_key[32] = { 9, 9, 9 };

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

/* A version 3 database (made with version 1-3's own SQL) holding, in the
 * clear, rows of every table that has a case reference. */
static void
s_make_v3(const char *dir)
{
	char sql[128];
	int v;

	cr_assert_eq(test_sh("mkdir -m 700 -p '%s'", dir), 0);
	for (v = 1; v <= 3; v++)
		s_raw_exec(dir, sq_schema_step(v));
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; "
	    "PRAGMA user_version = 3;", STORE_APP_ID);
	s_raw_exec(dir, sql);
	s_raw_exec(dir,
	    "INSERT INTO outbox (event_id, event_type, to_oin, case_local, "
	    "case_ref, state, attempts, created_ms, expires_ms, "
	    "next_attempt_ms, updated_ms, envelope_digest, purpose, "
	    "legal_basis, fields, retention_until_ms, route) VALUES "
	    "(x'01000000000000000000000000000000', 1, '" OIN_HALT "', "
	    "'LP-META-0001', randomblob(32), 2, 1, 10, 20, 10, 11, "
	    "randomblob(32), 'p', 'l', 'route', 99, 2), "
	    "(x'02000000000000000000000000000000', 1, '" OIN_RVDK "', "
	    "'LP-META-0001', randomblob(32), 2, 1, 12, 20, 12, 13, "
	    "randomblob(32), 'p', 'l', 'route', 99, 3);"
	    "INSERT INTO inbox (event_id, event_type, from_oin, case_local, "
	    "case_ref, in_reply_to, purpose, legal_basis, created_ms, "
	    "received_ms, envelope_digest, receipt_digest, fields, "
	    "retention_until_ms, envelope, receipt) VALUES "
	    "(x'03000000000000000000000000000000', 2, '" OIN_HALT "', "
	    "'LP-META-0001', randomblob(32), "
	    "x'01000000000000000000000000000000', 'p', 'l', 14, 15, "
	    "randomblob(32), randomblob(32), 'outcome', 99, x'00', x'00'),"
	    "(x'04000000000000000000000000000000', 1, '" OIN_OM "', '', "
	    "randomblob(32), NULL, 'p', 'l', 16, 17, randomblob(32), "
	    "randomblob(32), 'route', 99, x'00', x'00');"
	    "INSERT INTO links (partner_oin, local, case_ref) SELECT to_oin, "
	    "case_local, case_ref FROM outbox;"
	    "INSERT INTO expectations (event_id, case_local, partner_oin, "
	    "case_ref, sent_type, answer_type, route, sent_ms, due_ms) "
	    "SELECT event_id, case_local, to_oin, case_ref, 1, 2, route, "
	    "created_ms, created_ms + 100 FROM outbox;"
	    "INSERT INTO absence_after VALUES ('LP-META-0001', 1, 18);");
}

struct count {
	size_t n;
	char last[65];
	uint32_t events;
};

static int
s_count_subject(void *arg, const subject_row_t *row)
{
	struct count *c = arg;

	(void)row;
	c->n++;
	return 0;
}

static int
s_count_expect(void *arg, const expect_row_t *x)
{
	struct count *c = arg;

	c->n++;
	cr_assert_str_eq(x->case_local, "LP-META-0001");
	cr_assert(x->route == 2 || x->route == 3, "route %d", x->route);
	return 0;
}

static int
s_count_case(void *arg, const char *local, uint32_t events, uint64_t last)
{
	struct count *c = arg;

	(void)last;
	/* one row per case and partner: every one of the same case here */
	cr_assert(c->n == 0 || strcmp(c->last, local) == 0);
	c->n++;
	c->events += events;
	snprintf(c->last, sizeof(c->last), "%s", local);
	return 0;
}

Test(atrest_meta, version_3_database_sealed_in_place)
{
	char tmp[256], dir[300], local[65], where[4500];
	uint8_t id1[16] = { 1 }, ref[32];
	struct count sub = { 0 }, exp = { 0 }, cs = { 0 };
	outbox_row_t o;
	store_t *s = NULL;
	kp_err_t err;
	bool found = false;
	int absence = 0;
	uint64_t at = 0;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dir, sizeof(dir), "%s/state", tmp);
	s_make_v3(dir);
	cr_assert(s_files_hold(dir, "LP-META-0001", 12, where, sizeof(where)),
	    "the version 3 file holds the reference in the clear");
	cr_assert_eq(store_open(dir, s_key, test_pseudonym_key,
	    &s, &err), 0, "%s", err.msg);
	/* everything found and shown by the reference, as before */
	cr_assert_eq(store_outbox_get(s, id1, &o, &found, &err), 0, "%s",
	    err.msg);
	cr_assert(found);
	cr_assert_str_eq(o.case_local, "LP-META-0001");
	cr_assert_eq(o.route, 2);
	cr_assert_eq(store_subject(s, "LP-META-0001", s_count_subject, &sub,
	    &err), 0, "%s", err.msg);
	cr_assert_eq(sub.n, 3, "two sent, one received");
	cr_assert_eq(store_expect_list(s, "LP-META-0001", s_count_expect, &exp,
	    &err), 0, "%s", err.msg);
	cr_assert_eq(exp.n, 2);
	cr_assert_eq(store_cases(s, UINT64_MAX, s_count_case, &cs, &err), 0,
	    "%s", err.msg);
	cr_assert_eq(cs.n, 3, "one case: sent to two partners, received "
	    "from one (a row per partner and table)");
	cr_assert_str_eq(cs.last, "LP-META-0001");
	cr_assert_eq(cs.events, 3);
	cr_assert_eq(store_link_by_local(s, OIN_RVDK, "LP-META-0001", ref,
	    &found, &err), 0, "%s", err.msg);
	cr_assert(found);
	cr_assert_eq(store_link_by_ref(s, OIN_RVDK, ref, local, &found, &err),
	    0, "%s", err.msg);
	cr_assert(found);
	cr_assert_str_eq(local, "LP-META-0001");
	cr_assert_eq(store_absence_get(s, "LP-META-0001", &absence, &at,
	    &found, &err), 0, "%s", err.msg);
	cr_assert(found && absence == 1 && at == 18);
	store_close(&s);
	/* nothing of it left in the clear: database, WAL, journal */
	cr_assert_not(s_files_hold(dir, "LP-META-0001", 12, where,
	    sizeof(where)), "the reference is still in %s", where);

	/* another key opens the file but reads no sealed value */
	cr_assert_eq(store_open(dir, s_other_key, test_pseudonym_key,
	    &s, &err), 0, "%s", err.msg);
	cr_assert_eq(store_outbox_get(s, id1, &o, &found, &err), -1);
	cr_assert(strstr(err.msg, "sealed metadata cannot be opened") != NULL,
	    "%s", err.msg);
	cr_assert_eq(store_link_by_local(s, OIN_RVDK, "LP-META-0001", ref,
	    &found, &err), 0, "%s", err.msg);
	cr_assert_not(found, "another key finds no link");
	store_close(&s);
	test_sh("rm -rf '%s'", tmp);
}
