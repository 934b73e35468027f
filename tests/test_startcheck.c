/*
 * test_startcheck.c: the audit log checked at start, and a partner's
 * rolled-back log seen by its partner (issue 9, item 7).
 *
 * 1. An entry after the last signed head is damaged in the database (with
 *    sqlite3, as a disk or an operator could): the daemon refuses to start
 *    and appends nothing; with --accept-damaged-audit-log it starts, and a
 *    head_alarm entry records that it did.
 * 2. An entry covered by the last signed head is damaged: refused too.
 * 3. A partner's database is restored to an earlier copy: the head it
 *    signs after the restart is smaller than the one its partner holds,
 *    yet signed later; the partner raises the alarm, exactly once.
 * 4. The tree's nodes on disk (audit_nodes, daemon/audittree.c): a log
 *    past 256 entries across restarts gives heads the offline verifier
 *    (an in-memory tree) accepts and consistency proofs the partner
 *    accepts; a damaged node stops the start, named; the override
 *    rebuilds the nodes and records the alarm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "auditlog.h"
#include "common.h"
#include "daemons.h"

TestSuite(startcheck, .init = test_init, .timeout = 180);

#define HEADS "\n[delivery]\nhead_interval = 200ms\n"

static void
s_send_n(td_org_t *from, int first, int n)
{
	uint8_t id[16];
	char ref[32];
	int i;

	for (i = first; i < first + n; i++) {
		snprintf(ref, sizeof(ref), "LP-%d", i);
		td_send(from, OIN_HALT, "referral", ref, td_example("referral"),
		    NULL, id);
	}
}

/* Flip the first byte of entry `seq_sql` (an SQL expression). */
static void
s_damage(const char *state, const char *seq_sql)
{
	cr_assert_eq(test_sh("sqlite3 -cmd '.timeout 5000' '%s/ketenpost.db' "
	    "\"UPDATE audit SET entry = CAST(X'FF' || substr(entry, 2) AS BLOB) WHERE seq = "
	    "(%s);\"", state, seq_sql), 0);
}

static bool
s_export_has(const char *state, const char *needle)
{
	char out[1 << 16];

	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
	    "export %s", test_bin(), state), 0, "%s", out);
	return strstr(out, needle) != NULL;
}

/* Entries of kind head_alarm about partner oin in the log of state, read
 * straight from the database (an export stops at the damaged entry). */
static int
s_alarms(const char *state, const char *oin)
{
	char db[4300];
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	audit_entry_t e;
	kp_err_t err;
	int n = 0;

	snprintf(db, sizeof(db), "%s/ketenpost.db", state);
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	cr_assert_eq(sqlite3_prepare_v2(h, "SELECT entry FROM audit", -1, &st,
	    NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		if (audit_entry_decode(sqlite3_column_blob(st, 0),
		    (size_t)sqlite3_column_bytes(st, 0), &e, &err) == 0 &&
		    e.kind == AUDIT_HEAD_ALARM &&
		    strcmp(e.partner_oin, oin) == 0)
			n++;
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

Test(startcheck, damaged_entry_after_the_last_head)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char state[4200];
	long entries;

	/* the default head interval (60 s): after a kill -9, the entries of
	 * the sends are not covered by any signed head */
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	td_start(lp);
	s_send_n(lp, 0, 3);
	cr_assert(td_wait_settled(lp, 10000));
	td_kill(lp);
	td_state_dir(&c, OIN_LEERPLICHT, state, sizeof(state));
	cr_assert_gt(td_sql_count(state, "audit WHERE seq >= (SELECT "
	    "max(size) FROM tree_heads)"), 0, "no entries after the last head");
	s_damage(state, "SELECT max(seq) FROM audit");
	entries = td_sql_count(state, "audit");

	td_spawn(lp);
	cr_assert_eq(td_wait_exit(lp, 10000), 1, "started on a damaged log");
	cr_assert(td_log_has(lp, "does not verify against its last signed "
	    "head", 10));
	cr_assert(td_log_has(lp, "--accept-damaged-audit-log", 10));
	cr_assert_eq(td_sql_count(state, "audit"), entries,
	    "a refused start appended to the log");

	td_spawn_arg(lp, "--accept-damaged-audit-log");
	cr_assert(td_wait_api(lp, 10000), "the override did not start");
	cr_assert(td_log_has(lp, "ALARM: audit log damaged", 10));
	cr_assert_eq(td_stop(lp), 0);
	cr_assert_eq(s_alarms(state, OIN_LEERPLICHT), 1,
	    "no alarm entry recorded");
	td_chain_stop_all(&c);
}

Test(startcheck, damaged_entry_under_the_last_head)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char state[4200];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	td_start(lp);
	s_send_n(lp, 0, 2);
	cr_assert(td_wait_settled(lp, 10000));
	cr_assert_eq(td_stop(lp), 0);  /* signs a head over everything */
	td_state_dir(&c, OIN_LEERPLICHT, state, sizeof(state));
	s_damage(state, "SELECT 1");
	td_spawn(lp);
	cr_assert_eq(td_wait_exit(lp, 10000), 1, "started on a damaged log");
	cr_assert(td_log_has(lp, "does not verify against its last signed "
	    "head", 10));
	td_chain_stop_all(&c);
}

Test(startcheck, partner_restored_to_an_earlier_copy_raises_the_alarm)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char state[4200], halt_state[4200];

	td_chain_make(&c, HEADS);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_state_dir(&c, OIN_LEERPLICHT, state, sizeof(state));
	td_state_dir(&c, OIN_HALT, halt_state, sizeof(halt_state));
	td_start(halt);
	td_start(lp);
	s_send_n(lp, 0, 2);
	cr_assert(td_wait_settled(lp, 10000));
	cr_assert_eq(td_stop(lp), 0);
	cr_assert_eq(test_sh("cp '%s/ketenpost.db' '%s/backup.db'", state,
	    state), 0);
	/* the log grows well past the copy, and Halt witnesses that */
	td_start(lp);
	s_send_n(lp, 2, 8);
	cr_assert(td_wait_settled(lp, 10000));
	usleep(600000);              /* a head over all of it ... */
	s_send_n(lp, 10, 1);         /* ... carried to Halt */
	cr_assert(td_wait_settled(lp, 10000));
	cr_assert_eq(td_log_count(halt, "ALARM"), 0);
	/* restored from the copy */
	td_kill(lp);
	cr_assert_eq(test_sh("cd '%s' && rm -f ketenpost.db-wal ketenpost.db-shm "
	    "&& mv backup.db ketenpost.db", state), 0);
	td_start(lp);
	s_send_n(lp, 100, 3);
	cr_assert(td_wait_settled(lp, 10000));
	cr_assert(td_log_has(halt, "ALARM: " OIN_LEERPLICHT " signed a head",
	    5000), "Halt did not see the rolled-back log");
	usleep(600000);
	s_send_n(lp, 200, 2);
	cr_assert(td_wait_settled(lp, 10000));
	cr_assert_eq(td_log_count(halt, "ALARM"), 1, "one alarm per rollback");
	cr_assert_eq(td_stop(halt), 0);
	cr_assert(s_export_has(halt_state, "\"head_alarm\""));
	cr_assert_eq(s_alarms(halt_state, OIN_LEERPLICHT), 1);
	td_chain_stop_all(&c);
}

Test(startcheck, tree_nodes_on_disk_across_restarts_and_damaged)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char state[4200], out[1 << 16];
	long nodes;

	td_chain_make(&c, HEADS);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_state_dir(&c, OIN_LEERPLICHT, state, sizeof(state));
	td_start(halt);
	td_start(lp);
	s_send_n(lp, 0, 70);
	cr_assert(td_wait_settled(lp, 20000));
	cr_assert_eq(td_stop(lp), 0);
	td_start(lp);                 /* the frontier rebuilt from the store */
	s_send_n(lp, 70, 70);
	cr_assert(td_wait_settled(lp, 20000));
	usleep(600000);               /* a head over all of it ... */
	s_send_n(lp, 140, 2);         /* ... with its proof, to Halt */
	cr_assert(td_wait_settled(lp, 20000));
	cr_assert_eq(td_stop(lp), 0);
	cr_assert_gt(td_sql_count(state, "audit"), 256, "too few entries for "
	    "a stored node");
	nodes = td_sql_count(state, "audit_nodes");
	cr_assert_geq(nodes, 1);
	cr_assert_eq(td_log_count(halt, "ALARM"), 0, "a proof from the "
	    "stored tree was refused by the partner");
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
	    "verify %s", test_bin(), state), 0, "%s", out);

	/* one node damaged: refused, named, nothing appended */
	cr_assert_eq(test_sh("sqlite3 -cmd '.timeout 5000' "
	    "'%s/ketenpost.db' \"UPDATE audit_nodes SET hash = zeroblob(32) "
	    "WHERE height = 8 AND idx = 0\"", state), 0);
	td_spawn(lp);
	cr_assert_eq(td_wait_exit(lp, 10000), 1, "started on a damaged node");
	cr_assert(td_log_has(lp, "1 damaged tree node (table audit_nodes), "
	    "the first at height 8 index 0", 10));
	cr_assert(td_log_has(lp, "--accept-damaged-audit-log", 10));
	cr_assert_eq(td_sql_count(state, "audit_nodes WHERE hash = "
	    "zeroblob(32)"), 1);

	/* the override rebuilds it and records the alarm */
	td_spawn_arg(lp, "--accept-damaged-audit-log");
	cr_assert(td_wait_api(lp, 10000), "the override did not start");
	cr_assert(td_log_has(lp, "the tree nodes were rebuilt", 10));
	cr_assert_eq(td_stop(lp), 0);
	cr_assert_eq(td_sql_count(state, "audit_nodes WHERE hash = "
	    "zeroblob(32)"), 0);
	cr_assert_eq(s_alarms(state, OIN_LEERPLICHT), 1);
	td_start(lp);                 /* and starts cleanly afterwards */
	cr_assert_eq(td_stop(lp), 0);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
	    "verify %s", test_bin(), state), 0, "%s", out);
	td_chain_stop_all(&c);
}
