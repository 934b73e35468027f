/*
 * test_audittree.c: daemon/audittree.c, the audit log's Merkle tree kept in
 * the store (frontier in memory, nodes of height 8 and up in audit_nodes,
 * leaves recomputed from the audit entries).
 *
 * 1. Roots of every size and inclusion and consistency proofs are byte for
 *    byte those of lib/merkle.c's in-memory merkle_t over the same leaves,
 *    for a log of 1,300 entries written in transactions of varied sizes,
 *    before and after the store is closed and opened again (a restart:
 *    the frontier is rebuilt by the start-up check).
 * 2. The start-up check: a damaged node, a node beyond the log and missing
 *    nodes are told apart; repair rewrites the damaged ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "audittree.h"
#include "common.h"
#include "daemons.h"
#include "merkle.h"
#include "store.h"

/* the key that seals case references at rest: any fixed one will do */
static const uint8_t s_meta_key[32] = { 0x42 };

TestSuite(audittree, .init = test_init);

#define N_LOG 1300        /* > 1024 + 256: nodes of heights 8, 9, 10 */

struct fx {
	char tmp[256];
	char dir[300];
	store_t *s;
	kp_err_t err;
	merkle_t *ref;          /* the in-memory tree over the same leaves */
	merkle_frontier_t f;    /* committed right edge */
};

static void
s_entry(uint64_t i, uint8_t e[24])
{
	int b;

	memset(e, 0x5c, 24);
	for (b = 0; b < 8; b++)
		e[b] = (uint8_t)(i >> (8 * b));
}

/* Append entries [f->f.size, upto) in transactions of 1, 2, 3 ... entries;
 * one transaction is rolled back and redone, as a failed act would be. */
static void
s_fill(struct fx *f, uint64_t upto)
{
	uint8_t e[24], leaf[32];
	merkle_frontier_t work;
	uint64_t i = f->f.size, batch = 1, k;
	bool undone = false;

	while (i < upto) {
		cr_assert_eq(store_begin(f->s, &f->err), 0, "%s", f->err.msg);
		work = f->f;
		for (k = 0; k < batch && i + k < upto; k++) {
			s_entry(i + k, e);
			cr_assert_eq(merkle_leaf_hash(e, sizeof(e), leaf), 0);
			cr_assert_eq(store_audit_append(f->s, i + k, e,
			    sizeof(e), leaf, &f->err), 0, "%s", f->err.msg);
			cr_assert_eq(audittree_append(f->s, &work, leaf,
			    &f->err), 0, "%s", f->err.msg);
		}
		if (!undone && i > 600) {   /* nodes written, then undone */
			store_rollback(f->s);
			undone = true;
			continue;
		}
		cr_assert_eq(store_commit(f->s, &f->err), 0, "%s", f->err.msg);
		for (; i < work.size; i++) {
			s_entry(i, e);
			cr_assert_eq(merkle_leaf_hash(e, sizeof(e), leaf), 0);
			cr_assert_eq(merkle_append(f->ref, leaf), 0);
		}
		f->f = work;
		batch = batch % 37 + 1;
	}
}

static void
s_open(struct fx *f)
{
	test_tmpdir(f->tmp, sizeof(f->tmp));
	snprintf(f->dir, sizeof(f->dir), "%s/state", f->tmp);
	cr_assert_eq(store_open(f->dir, s_meta_key, test_pseudonym_key,
	    &f->s, &f->err), 0,
	    "store_open: %s", f->err.msg);
	cr_assert_not_null(f->ref = merkle_new());
	merkle_frontier_init(&f->f);
}

static void
s_close(struct fx *f)
{
	store_close(&f->s);
	merkle_destroy(&f->ref);
	cr_assert_eq(test_sh("rm -rf '%s'", f->tmp), 0);
}

/* What the daemon's start-up check does (ledger.c): every entry's leaf, in
 * order, through audittree_check_leaf, in one transaction. */
struct rebuild {
	store_t *s;
	struct audittree_check *c;
	kp_err_t *err;
};

static int
s_rebuild_entry(void *arg, uint64_t seq, const uint8_t *entry, size_t len,
    const uint8_t stored_leaf[32])
{
	struct rebuild *r = arg;
	uint8_t leaf[32];

	(void)seq;
	(void)stored_leaf;
	cr_assert_eq(merkle_leaf_hash(entry, len, leaf), 0);
	return audittree_check_leaf(r->s, r->c, leaf, r->err);
}

static void
s_check(struct fx *f, struct audittree_check *c, bool repair)
{
	struct rebuild r = { f->s, c, &f->err };

	audittree_check_init(c, repair);
	cr_assert_eq(store_begin(f->s, &f->err), 0);
	cr_assert_eq(store_audit_entries(f->s, s_rebuild_entry, &r, &f->err),
	    0, "%s", f->err.msg);
	cr_assert_eq(audittree_check_end(f->s, c, &f->err), 0, "%s",
	    f->err.msg);
	cr_assert_eq(store_commit(f->s, &f->err), 0);
}

static void
s_reopen(struct fx *f)
{
	struct audittree_check c;

	store_close(&f->s);
	cr_assert_eq(store_open(f->dir, s_meta_key, test_pseudonym_key,
	    &f->s, &f->err), 0,
	    "reopen: %s", f->err.msg);
	s_check(f, &c, false);
	cr_assert_eq(c.bad, 0);
	cr_assert_eq(c.added, 0);
	cr_assert_eq(c.f.size, f->f.size);
	cr_assert_eq(memcmp(&c.f, &f->f, sizeof(c.f)), 0,
	    "the rebuilt frontier differs from the one kept while writing");
	f->f = c.f;
}

static void
s_same_as_memory(struct fx *f)
{
	uint8_t a[32], b[32], (*p1)[32], (*p2)[32];
	uint64_t size = f->f.size, old, j;
	size_t n1, n2;

	for (old = 0; old <= size; old++) {
		cr_assert_eq(audittree_root(f->s, &f->f, old, a), 0);
		cr_assert_eq(merkle_root(f->ref, old, b), 0);
		cr_assert_arr_eq(a, b, 32, "root of size %llu",
		    (unsigned long long)old);
	}
	for (old = 1; old <= size; old += old < 300 ? 7 : 61) {
		for (j = 0; j < old; j += 1 + j / 3) {
			cr_assert_eq(audittree_inclusion(f->s, &f->f, j, old,
			    &p1, &n1), 0);
			cr_assert_eq(merkle_inclusion_proof(f->ref, j, old, &p2,
			    &n2), 0);
			cr_assert_eq(n1, n2);
			cr_assert(n1 == 0 || memcmp(p1, p2, n1 * 32) == 0,
			    "inclusion %llu/%llu", (unsigned long long)j,
			    (unsigned long long)old);
			free(p1);
			free(p2);
		}
		cr_assert_eq(audittree_consistency(f->s, &f->f, old, size, &p1,
		    &n1), 0);
		cr_assert_eq(merkle_consistency_proof(f->ref, old, size, &p2,
		    &n2), 0);
		cr_assert_eq(n1, n2);
		cr_assert(n1 == 0 || memcmp(p1, p2, n1 * 32) == 0,
		    "consistency %llu/%llu", (unsigned long long)old,
		    (unsigned long long)size);
		free(p1);
		free(p2);
	}
	/* nothing beyond the committed tree */
	cr_assert_eq(audittree_root(f->s, &f->f, size + 1, a), -1);
	cr_assert_eq(audittree_consistency(f->s, &f->f, 1, size + 1, &p1,
	    &n1), -1);
}

Test(audittree, same_roots_and_proofs_as_in_memory_across_a_restart)
{
	struct fx f = { 0 };

	s_open(&f);
	s_fill(&f, N_LOG / 2);
	s_same_as_memory(&f);
	s_reopen(&f);
	s_fill(&f, N_LOG);
	/* heights 8.. only, one row each: 1300 >> 8 + >> 9 + >> 10 */
	cr_assert_eq(td_sql_count(f.dir, "audit_nodes"), 5 + 2 + 1);
	s_same_as_memory(&f);
	s_reopen(&f);
	s_same_as_memory(&f);
	s_close(&f);
}

Test(audittree, start_up_check_tells_damage_from_missing_nodes)
{
	struct fx f = { 0 };
	struct audittree_check c;
	uint8_t (*p1)[32], (*p2)[32];
	size_t n1, n2;

	s_open(&f);
	s_fill(&f, N_LOG);
	store_close(&f.s);
	/* a log written before the node table: every node is added */
	cr_assert_eq(test_sh("sqlite3 '%s/ketenpost.db' 'DELETE FROM "
	    "audit_nodes'", f.dir), 0);
	cr_assert_eq(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &f.s, &f.err), 0);
	s_check(&f, &c, false);
	cr_assert_eq(c.bad, 0);
	cr_assert_eq(c.added, 8);
	cr_assert_eq(memcmp(&c.f, &f.f, sizeof(c.f)), 0);
	s_same_as_memory(&f);
	/* one node changed: damage, named by height and index, kept as is
	 * without repair */
	store_close(&f.s);
	cr_assert_eq(test_sh("sqlite3 '%s/ketenpost.db' \"UPDATE audit_nodes "
	    "SET hash = zeroblob(32) WHERE height = 9 AND idx = 1\"", f.dir),
	    0);
	cr_assert_eq(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &f.s, &f.err), 0);
	s_check(&f, &c, false);
	cr_assert_eq(c.bad, 1);
	cr_assert_eq(c.first_bad_height, 9);
	cr_assert_eq(c.first_bad_index, 1);
	cr_assert_eq(td_sql_count(f.dir, "audit_nodes WHERE hash = "
	    "zeroblob(32)"), 1);
	/* the damaged node is served as stored: a proof through it differs
	 * (leaf 0 of 1024: its top sibling is leaves 512..1023) */
	cr_assert_eq(audittree_inclusion(f.s, &f.f, 0, 1024, &p1, &n1), 0);
	cr_assert_eq(merkle_inclusion_proof(f.ref, 0, 1024, &p2, &n2), 0);
	cr_assert_eq(n1, 10);
	cr_assert_eq(n2, 10);
	cr_assert(memcmp(p1[9], p2[9], 32) != 0);
	cr_assert_eq(memcmp(p1, p2, 9 * 32), 0);
	free(p1);
	free(p2);
	/* repair rewrites it from the entries */
	s_check(&f, &c, true);
	cr_assert_eq(c.bad, 1);
	s_check(&f, &c, false);
	cr_assert_eq(c.bad, 0);
	s_same_as_memory(&f);
	/* a hash of another length: damage as well, never a "missing" node
	 * added quietly */
	store_close(&f.s);
	cr_assert_eq(test_sh("sqlite3 '%s/ketenpost.db' \"UPDATE audit_nodes "
	    "SET hash = zeroblob(7) WHERE height = 8 AND idx = 2\"", f.dir),
	    0);
	cr_assert_eq(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &f.s, &f.err), 0);
	s_check(&f, &c, false);
	cr_assert_eq(c.bad, 1);
	cr_assert_eq(c.added, 0);
	cr_assert_eq(c.first_bad_height, 8);
	cr_assert_eq(c.first_bad_index, 2);
	s_check(&f, &c, true);
	s_check(&f, &c, false);
	cr_assert_eq(c.bad, 0);
	s_same_as_memory(&f);
	/* a node beyond the log: damage too; repair drops it */
	store_close(&f.s);
	cr_assert_eq(test_sh("sqlite3 '%s/ketenpost.db' \"INSERT INTO "
	    "audit_nodes VALUES (8, 99, zeroblob(32))\"", f.dir), 0);
	cr_assert_eq(store_open(f.dir, s_meta_key, test_pseudonym_key,
	    &f.s, &f.err), 0);
	s_check(&f, &c, false);
	cr_assert_eq(c.bad, 1);
	cr_assert_eq(c.first_bad_index, UINT64_MAX);
	s_check(&f, &c, true);
	s_check(&f, &c, false);
	cr_assert_eq(c.bad, 0);
	cr_assert_eq(td_sql_count(f.dir, "audit_nodes"), 8);
	s_close(&f);
}
