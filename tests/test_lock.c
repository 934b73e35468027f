/*
 * test_lock.c: one ketenpostd per state folder (issue 9, item 2).
 *
 * A second daemon started on the configuration of a running one must exit
 * at once, non-zero, naming the running one's pid, and change nothing:
 * not its API socket, not its database.  The first goes on serving its
 * API and delivering, and its audit log still verifies.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common.h"
#include "daemons.h"

TestSuite(lock, .init = test_init, .timeout = 120);

#define HEADS "\n[delivery]\nhead_interval = 200ms\n"

Test(lock, second_daemon_on_the_same_state_exits_and_changes_nothing)
{
	td_chain_t c;
	td_org_t *lp, *halt, second;
	char state[4200], needle[64], out[8192];
	struct stat before, after;
	long entries, heads;
	uint8_t id[16];

	td_chain_make(&c, HEADS);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	td_start(lp);
	td_send(lp, OIN_HALT, "referral", "LP-1", td_example("referral"), NULL,
	    id);
	cr_assert(td_wait_settled(lp, 10000));
	usleep(500000);  /* a head over everything so far */
	td_state_dir(&c, OIN_LEERPLICHT, state, sizeof(state));
	entries = td_sql_count(state, "audit");
	heads = td_sql_count(state, "tree_heads");
	cr_assert_gt(entries, 0);
	cr_assert_eq(stat(lp->api + strlen("ipc://"), &before), 0);

	second = *lp;
	cr_assert_lt(strlen(lp->log) + 8, sizeof(second.log));
	memcpy(second.log + strlen(lp->log), ".second", 8);
	td_spawn(&second);
	cr_assert_eq(td_wait_exit(&second, 5000), 1,
	    "the second daemon must exit at once with status 1");
	snprintf(needle, sizeof(needle), "another ketenpostd (pid %ld)",
	    (long)lp->pid);
	cr_assert(td_log_has(&second, needle, 10), "no clear message naming "
	    "the running daemon's pid");
	/* nothing changed */
	cr_assert_eq(stat(lp->api + strlen("ipc://"), &after), 0);
	cr_assert_eq(before.st_ino, after.st_ino, "the API socket was replaced");
	cr_assert_eq(td_sql_count(state, "audit"), entries);
	cr_assert_eq(td_sql_count(state, "tree_heads"), heads);

	/* the first one still serves and delivers */
	td_send(lp, OIN_HALT, "referral", "LP-2", td_example("referral"), NULL,
	    id);
	cr_assert(td_wait_settled(lp, 10000));
	cr_assert_eq(td_inbox_count(halt), 2);
	cr_assert_eq(td_stop(lp), 0);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
	    "verify %s", test_bin(), state), 0, "%s", out);
	td_chain_stop_all(&c);
}

Test(lock, lock_of_a_killed_daemon_does_not_hold)
{
	td_chain_t c;
	td_org_t *lp;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	td_kill(lp);
	td_start(lp);  /* asserts that it answers */
	cr_assert_eq(td_stop(lp), 0);
}
