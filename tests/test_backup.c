/*
 * test_backup.c: `ketenpost backup` of a running daemon, and a restore
 * with traffic flowing: what a partner still retries after the backup is
 * recovered, nothing reaches an inbox twice, and what was receipted
 * between backup and restore is missing (the documented limit of
 * docs/OPERATIONS.md).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "common.h"
#include "daemons.h"

TestSuite(backup, .init = test_init, .timeout = 300);

static bool
s_inbox_has(const Kp__Response *r, const uint8_t id[16])
{
	size_t i;

	for (i = 0; i < r->inbox->n_items; i++)
		if (memcmp(r->inbox->items[i]->event_id.data, id, 16) == 0)
			return true;
	return false;
}

/* Every event id of the inbox list is there once. */
static void
s_assert_no_duplicates(const Kp__Response *r, const char *who)
{
	size_t i, j;

	for (i = 0; i < r->inbox->n_items; i++)
		for (j = i + 1; j < r->inbox->n_items; j++)
			cr_assert(memcmp(r->inbox->items[i]->event_id.data,
			    r->inbox->items[j]->event_id.data, 16) != 0,
			    "%s: an event reached the inbox twice", who);
}

static const Kp__OutboxItem *
s_out_item(const Kp__Response *r, const uint8_t id[16])
{
	size_t i;

	for (i = 0; i < r->outbox->n_items; i++)
		if (memcmp(r->outbox->items[i]->event_id.data, id, 16) == 0)
			return r->outbox->items[i];
	cr_assert_fail("event not in the outbox");
	return NULL;
}

static void
s_send_n(td_org_t *from, const char *to, const char *prefix, int n,
    uint8_t ids[][16])
{
	char ref[32];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(ref, sizeof(ref), "%s-%d", prefix, i);
		td_send(from, to, "referral", ref, td_example("referral"), NULL,
		    ids[i]);
	}
}

/* Run `ketenpost backup --json`; returns the inbox total it reports. */
static json_int_t
s_backup(const td_org_t *o, const char *out)
{
	char text[8192];
	json_t *j, *v;
	json_int_t n;

	cr_assert_eq(test_sh_output(text, sizeof(text), "%s/ketenpost backup "
	    "--config %s --json %s", test_bin(), o->conf, out), 0, "%s", text);
	j = json_loads(text, 0, NULL);
	cr_assert_not_null(j, "backup --json printed: %s", text);
	v = json_object_get(json_object_get(j, "inbox"), "total");
	cr_assert(json_is_integer(v), "%s", text);
	n = json_integer_value(v);
	cr_assert_gt(json_integer_value(json_object_get(j, "audit_entries")), 0);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(j,
	    "outbox"), "pending")), 1, "the answer pending at backup time");
	json_decref(j);
	return n;
}

Test(backup, restore_recovers_what_partners_retry_and_no_duplicates)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t a[5][16], b[5][16], cc[5][16], x[16], receipt[32];
	char tmp[512], out[600], state[4200], text[4096];
	Kp__Response *r;
	json_int_t in_backup;
	int i;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	snprintf(state, sizeof(state), "%s/orgs/%s/state", c.dir, halt->oin);
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(out, sizeof(out), "%s/halt.backup", tmp);
	td_start(lp);
	td_start(halt);

	/* A: delivered before the backup */
	s_send_n(lp, halt->oin, "A", 5, a);
	cr_assert(td_wait_settled(lp, 20000));
	/* X: halt's answer, pending while leerplicht is down; halt keeps
	 * retrying (writing) while the backup runs */
	cr_assert_eq(td_stop(lp), 0);
	td_send(halt, lp->oin, "halt_outcome", "H-1", td_example("halt_outcome"),
	    a[0], x);
	in_backup = s_backup(halt, out);
	cr_assert_eq(in_backup, 5, "the backup holds the 5 events of A");
	cr_assert_neq(test_sh_output(text, sizeof(text), "%s/ketenpost backup "
	    "--config %s %s", test_bin(), halt->conf, out), 0,
	    "backup must refuse to overwrite %s", out);
	cr_assert(strstr(text, "already exists") != NULL, "%s", text);

	/* B: traffic after the backup, receipted by halt; X delivered */
	td_start(lp);
	s_send_n(lp, halt->oin, "B", 5, b);
	cr_assert(td_wait_settled(lp, 20000));
	cr_assert(td_wait_settled(halt, 20000));
	r = td_outbox(halt);
	cr_assert_eq(s_out_item(r, x)->state, KP__DELIVERY_STATE__DELIVERY_STATE_DELIVERED);
	memcpy(receipt, s_out_item(r, x)->receipt_digest.data, 32);
	kp__response__free_unpacked(r, NULL);

	/* C: halt is down (lost its disk); leerplicht keeps sending */
	cr_assert_eq(td_stop(halt), 0);
	s_send_n(lp, halt->oin, "C", 5, cc);
	cr_assert_eq(test_sh("cp %s %s/ketenpost.db && rm -f %s/ketenpost.db-wal "
	    "%s/ketenpost.db-shm", out, state, state, state), 0);
	td_start(halt);
	cr_assert(td_wait_settled(lp, 30000), "leerplicht's retries of C");
	cr_assert(td_wait_settled(halt, 30000), "halt's retry of X");

	r = td_inbox(halt, true);
	s_assert_no_duplicates(r, "halt");
	for (i = 0; i < 5; i++) {
		cr_assert(s_inbox_has(r, a[i]), "A%d (in the backup) lost", i);
		cr_assert(s_inbox_has(r, cc[i]), "C%d (retried) lost", i);
		cr_assert(!s_inbox_has(r, b[i]), "B%d: receipted after the "
		    "backup, so no partner resends it (the documented limit)", i);
	}
	cr_assert_eq(r->inbox->n_items, 10);
	kp__response__free_unpacked(r, NULL);
	/* X was sent again by the restored halt: leerplicht keeps one copy
	 * and answers with its original receipt */
	cr_assert(td_log_has(lp, "is a duplicate; original receipt sent again",
	    5000), "the restored halt sent X again");
	r = td_inbox(lp, true);
	s_assert_no_duplicates(r, "leerplicht");
	cr_assert(s_inbox_has(r, x));
	kp__response__free_unpacked(r, NULL);
	r = td_outbox(halt);
	cr_assert_eq(s_out_item(r, x)->state, KP__DELIVERY_STATE__DELIVERY_STATE_DELIVERED);
	cr_assert_eq(memcmp(s_out_item(r, x)->receipt_digest.data, receipt, 32),
	    0, "the duplicate must be answered with the original receipt");
	kp__response__free_unpacked(r, NULL);

	cr_assert_eq(td_stop(halt), 0);
	cr_assert_eq(test_sh_output(text, sizeof(text), "%s/ketenpost audit "
	    "verify %s", test_bin(), state), 0, "restored log: %s", text);
	td_chain_stop_all(&c);
	test_sh("rm -rf %s", tmp);
}

Test(backup, refuses_a_config_without_a_state_database)
{
	char tmp[512], text[4096];

	test_tmpdir(tmp, sizeof(tmp));
	cr_assert_eq(test_sh("printf '[ketenpostd]\\nchain_dir = %s\\norg = %s\\n"
	    "listen = tcp://127.0.0.1:1\\nstate_dir = %s/none\\n' > %s/k.conf",
	    test_chain(), OIN_HALT, tmp, tmp), 0);
	cr_assert_eq(test_sh_output(text, sizeof(text), "%s/ketenpost backup "
	    "--config %s/k.conf %s/out", test_bin(), tmp, tmp), 1, "%s", text);
	cr_assert(strstr(text, "no state database") != NULL, "%s", text);
	cr_assert_neq(test_sh("test -e %s/out", tmp), 0);
	cr_assert_eq(test_sh_output(text, sizeof(text), "%s/ketenpost backup "
	    "%s/out", test_bin(), tmp), 2, "%s", text);
	test_sh("rm -rf %s", tmp);
}
