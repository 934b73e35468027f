/*
 * test_batch.c: the batch tree of lib/batch.c against lib/merkle.c's
 * RFC 9162 tree (roots and paths for every size up to 70), the path
 * verifier's refusals, the signed bytes BTBS, and the verifier cache's
 * bound and LRU order.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "batch.h"
#include "common.h"
#include "merkle.h"

TestSuite(batch, .init = test_init);

static void
s_digests(uint8_t (*d)[32], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		memset(d[i], 0, 32);
		d[i][0] = (uint8_t)i;
		d[i][1] = (uint8_t)(i >> 8);
		d[i][31] = 0x5a;
	}
}

/* Same root and same path for every leaf as the audit log's tree. */
Test(batch, tree_is_the_rfc9162_tree_of_merkle_c)
{
	uint8_t d[70][32], leaf[32], r1[32], r2[32];
	uint8_t path[BATCH_PATH_MAX][32], (*mpath)[32] = NULL;
	size_t n, i, plen, mlen;

	s_digests(d, 70);
	for (n = 1; n <= 70; n++) {
		merkle_t *m = merkle_new();
		batch_tree_t *t = NULL;

		cr_assert_not_null(m);
		for (i = 0; i < n; i++) {
			cr_assert(merkle_leaf_hash(d[i], 32, leaf) == 0);
			cr_assert(merkle_append(m, leaf) == 0);
		}
		cr_assert(batch_tree_new((const uint8_t (*)[32])d, n, &t) == 0);
		cr_assert_eq(batch_tree_size(t), n);
		cr_assert(merkle_root(m, n, r1) == 0);
		batch_tree_root(t, r2);
		cr_assert_arr_eq(r1, r2, 32, "root differs at n %zu", n);
		for (i = 0; i < n; i++) {
			cr_assert(batch_tree_path(t, i, path, &plen) == 0);
			cr_assert(merkle_inclusion_proof(m, i, n, &mpath,
			    &mlen) == 0);
			cr_assert_eq(plen, mlen, "n %zu leaf %zu", n, i);
			if (mlen > 0)
				cr_assert_arr_eq(path, mpath, 32 * mlen);
			free(mpath);
			mpath = NULL;
			cr_assert(batch_verify_path(d[i], (uint32_t)i,
			    (uint32_t)n, (const uint8_t (*)[32])path, plen,
			    r2) == 0);
		}
		cr_assert(batch_tree_path(t, n, path, &plen) == -1);
		batch_tree_destroy(&t);
		cr_assert_null(t);
		merkle_destroy(&m);
	}
}

Test(batch, batch_of_one_is_its_leaf_hash_with_an_empty_path)
{
	uint8_t d[1][32], root[32], leaf[32], path[BATCH_PATH_MAX][32];
	batch_tree_t *t = NULL;
	size_t plen = 99;

	s_digests(d, 1);
	cr_assert(batch_tree_new((const uint8_t (*)[32])d, 1, &t) == 0);
	batch_tree_root(t, root);
	cr_assert(merkle_leaf_hash(d[0], 32, leaf) == 0);
	cr_assert_arr_eq(root, leaf, 32);
	cr_assert(batch_tree_path(t, 0, path, &plen) == 0);
	cr_assert_eq(plen, 0);
	batch_tree_destroy(&t);
}

Test(batch, sizes_out_of_range_are_refused)
{
	uint8_t d[1][32];
	batch_tree_t *t = NULL;

	s_digests(d, 1);
	cr_assert(batch_tree_new((const uint8_t (*)[32])d, 0, &t) == -1);
	cr_assert_null(t);
	cr_assert(batch_tree_new((const uint8_t (*)[32])d,
	    BATCH_MAX_SIZE + 1, &t) == -1);
	cr_assert_null(t);
}

/* Every single change to a path, its index, size or root fails. */
Test(batch, altered_paths_do_not_verify)
{
	uint8_t d[13][32], root[32], path[BATCH_PATH_MAX][32];
	batch_tree_t *t = NULL;
	size_t plen;

	s_digests(d, 13);
	cr_assert(batch_tree_new((const uint8_t (*)[32])d, 13, &t) == 0);
	batch_tree_root(t, root);
	cr_assert(batch_tree_path(t, 5, path, &plen) == 0);
	cr_assert(batch_verify_path(d[5], 5, 13, (const uint8_t (*)[32])path,
	    plen, root) == 0);
	/* another leaf's digest, another index, a size past the index */
	cr_assert(batch_verify_path(d[4], 5, 13, (const uint8_t (*)[32])path,
	    plen, root) == -1);
	cr_assert(batch_verify_path(d[5], 4, 13, (const uint8_t (*)[32])path,
	    plen, root) == -1);
	cr_assert(batch_verify_path(d[5], 13, 13, (const uint8_t (*)[32])path,
	    plen, root) == -1);
	cr_assert(batch_verify_path(d[5], 5, 0, (const uint8_t (*)[32])path,
	    plen, root) == -1);
	/* a path one short or one long */
	cr_assert(batch_verify_path(d[5], 5, 13, (const uint8_t (*)[32])path,
	    plen - 1, root) == -1);
	memcpy(path[plen], path[0], 32);
	cr_assert(batch_verify_path(d[5], 5, 13, (const uint8_t (*)[32])path,
	    plen + 1, root) == -1);
	for (size_t k = 0; k < plen; k++) {
		path[k][7] ^= 0x10;
		cr_assert(batch_verify_path(d[5], 5, 13,
		    (const uint8_t (*)[32])path, plen, root) == -1);
		path[k][7] ^= 0x10;
	}
	root[0] ^= 1;
	cr_assert(batch_verify_path(d[5], 5, 13, (const uint8_t (*)[32])path,
	    plen, root) == -1);
	batch_tree_destroy(&t);
}

Test(batch, btbs_layout)
{
	uint8_t root[32], out[BATCH_TBS_MAX];
	size_t len;

	memset(root, 0xcd, 32);
	cr_assert(batch_tbs("ketenpost/v1/batch", 0x01020304, root,
	    "00000001001234567000", "00000001002345678000", out, &len) == 0);
	cr_assert_eq(len, 18 + 4 + 32 + 40);
	cr_assert(memcmp(out, "ketenpost/v1/batch\x01\x02\x03\x04", 22) == 0);
	cr_assert_arr_eq(out + 22, root, 32);
	cr_assert(memcmp(out + 54, "0000000100123456700000000001002345678000",
	    40) == 0);
	cr_assert(batch_tbs("ketenpost/v1/batch", 2, root, "123",
	    "00000001002345678000", out, &len) == -1);
}

static void
s_key(uint8_t k[32], unsigned i)
{
	crypto_generichash(k, 32, (const uint8_t *)&i, sizeof(i), NULL, 0);
}

/* Never more than its capacity; the least recently used goes first. */
Test(batch, cache_is_bounded_and_forgets_the_least_recently_used)
{
	batch_cache_t *c = batch_cache_new(4);
	uint8_t k[32];
	uint64_t hits, misses;
	unsigned i;

	cr_assert_not_null(c);
	for (i = 0; i < 4; i++) {
		s_key(k, i);
		cr_assert(!batch_cache_has(c, k));
		batch_cache_put(c, k);
	}
	cr_assert_eq(batch_cache_count(c), 4);
	s_key(k, 0);
	cr_assert(batch_cache_has(c, k));      /* 0 is now the most recent */
	s_key(k, 4);
	batch_cache_put(c, k);                 /* evicts 1 */
	cr_assert_eq(batch_cache_count(c), 4);
	s_key(k, 1);
	cr_assert(!batch_cache_has(c, k));
	for (i = 0; i < 5; i++) {
		if (i == 1)
			continue;
		s_key(k, i);
		cr_assert(batch_cache_has(c, k), "key %u lost", i);
	}
	for (i = 100; i < 1100; i++) {         /* churn: the bound holds */
		s_key(k, i);
		batch_cache_put(c, k);
		cr_assert_leq(batch_cache_count(c), 4);
	}
	for (i = 1096; i < 1100; i++) {
		s_key(k, i);
		cr_assert(batch_cache_has(c, k));
	}
	s_key(k, 0);
	cr_assert(!batch_cache_has(c, k));
	batch_cache_stats(c, &hits, &misses);
	cr_assert_eq(hits, 9);
	cr_assert_eq(misses, 6);
	batch_cache_destroy(&c);
	cr_assert_null(c);
	cr_assert_null(batch_cache_new(0));
}

/*
 * The memo (batch_verify_path_cached, merkle_verify_inclusion_memo) gives
 * the plain verifier's answer for every input: each leaf of trees of every
 * size up to 70 and a few larger, in order and again in a scattered order,
 * with the memo warm from the leaf before; each path altered at every
 * step (the steps above the join with the memo's path included), a wrong
 * index, size or root, one path step short.
 */
/* Prove leaf i of the tree t of n leaves with the cache's memo: so the
 * memo holds leaf i's proof. */
static void
s_memo_warm(batch_cache_t *c, const uint8_t (*d)[32], const batch_tree_t *t,
    size_t n, size_t i, const uint8_t root[32])
{
	uint8_t path[BATCH_PATH_MAX][32];
	size_t plen;

	cr_assert(batch_tree_path(t, i, path, &plen) == 0);
	cr_assert(batch_verify_path_cached(c, d[i], (uint32_t)i, (uint32_t)n,
	    (const uint8_t (*)[32])path, plen, root) == 0,
	    "size %zu leaf %zu must verify", n, i);
}

/* Leaf i's proof altered in each way, each time with the memo warm from
 * leaf `prev`'s, must fail; the right one must pass. */
static void
s_memo_leaf(batch_cache_t *c, const uint8_t (*d)[32], const batch_tree_t *t,
    size_t n, size_t prev, size_t i, const uint8_t root[32])
{
	uint8_t path[BATCH_PATH_MAX + 1][32], bad[32];
	const uint8_t (*p)[32] = (const uint8_t (*)[32])path;
	size_t plen, k;

	cr_assert(batch_tree_path(t, i, path, &plen) == 0);
	for (k = 0; k < plen; k++) {
		s_memo_warm(c, d, t, n, prev, root);
		path[k][9] ^= 0x04;
		cr_assert(batch_verify_path_cached(c, d[i], (uint32_t)i,
		    (uint32_t)n, p, plen, root) == -1, "size %zu leaf %zu: "
		    "step %zu altered must fail", n, i, k);
		path[k][9] ^= 0x04;
	}
	s_memo_warm(c, d, t, n, prev, root);
	if (plen > 0)
		cr_assert(batch_verify_path_cached(c, d[i], (uint32_t)i,
		    (uint32_t)n, p, plen - 1, root) == -1);
	s_memo_warm(c, d, t, n, prev, root);
	if (n > 1)
		cr_assert(batch_verify_path_cached(c, d[i],
		    (uint32_t)((i + 1) % n), (uint32_t)n, p, plen, root) == -1);
	s_memo_warm(c, d, t, n, prev, root);
	/* another size: (the size is signed with the root, so a path that
	 * fits both trees, leaf 0 of 3 and of 4, needs no refusal here) */
	cr_assert_eq(batch_verify_path_cached(c, d[i], (uint32_t)i,
	    (uint32_t)n + 1, p, plen, root), batch_verify_path(d[i],
	    (uint32_t)i, (uint32_t)n + 1, p, plen, root), "size %zu leaf "
	    "%zu: another size", n, i);
	s_memo_warm(c, d, t, n, prev, root);
	memcpy(bad, root, 32);
	bad[31] ^= 0x80;
	cr_assert(batch_verify_path_cached(c, d[i], (uint32_t)i, (uint32_t)n,
	    p, plen, bad) == -1);
	s_memo_warm(c, d, t, n, prev, root);
	cr_assert(batch_verify_path_cached(c, d[i], (uint32_t)i, (uint32_t)n,
	    p, plen, root) == 0, "size %zu leaf %zu must verify", n, i);
}

Test(batch, the_memo_gives_the_plain_verifiers_answer)
{
	static const size_t big[] = { 127, 128, 129, 1000 };
	uint8_t (*d)[32] = calloc(1000, 32), root[32];
	batch_cache_t *c = batch_cache_new(4);
	batch_tree_t *t = NULL;
	size_t n, i, j;

	cr_assert_not_null(d);
	cr_assert_not_null(c);
	s_digests(d, 1000);
	for (j = 0; j < 70 + sizeof(big) / sizeof(big[0]); j++) {
		n = j < 70 ? j + 1 : big[j - 70];
		cr_assert(batch_tree_new((const uint8_t (*)[32])d, n, &t) == 0);
		batch_tree_root(t, root);
		for (i = 0; i < n; i++)
			s_memo_leaf(c, (const uint8_t (*)[32])d, t, n,
			    i > 0 ? i - 1 : 0, i, root);
		for (i = 1; i < n; i++)      /* a scattered order */
			s_memo_leaf(c, (const uint8_t (*)[32])d, t, n,
			    (i * 7 + 3) % n, ((i + 1) * 7 + 3) % n, root);
		batch_tree_destroy(&t);
	}
	batch_cache_destroy(&c);
	free(d);
}

/* A path that is right below the join with the memo's and wrong above it
 * (a forger copying the honest lower steps) still fails. */
Test(batch, a_path_wrong_above_the_join_with_the_memo_fails)
{
	uint8_t d[16][32], root[32], p4[BATCH_PATH_MAX][32], p5[BATCH_PATH_MAX][32];
	batch_cache_t *c = batch_cache_new(4);
	batch_tree_t *t = NULL;
	size_t l4, l5;

	s_digests(d, 16);
	cr_assert(batch_tree_new((const uint8_t (*)[32])d, 16, &t) == 0);
	batch_tree_root(t, root);
	cr_assert(batch_tree_path(t, 4, p4, &l4) == 0);
	cr_assert(batch_tree_path(t, 5, p5, &l5) == 0);
	cr_assert_eq(l4, 4);
	cr_assert(batch_verify_path_cached(c, d[4], 4, 16,
	    (const uint8_t (*)[32])p4, l4, root) == 0);
	/* leaves 4 and 5 join at step 1; alter step 3 of 5's path */
	p5[3][0] ^= 1;
	cr_assert(batch_verify_path_cached(c, d[5], 5, 16,
	    (const uint8_t (*)[32])p5, l5, root) == -1);
	p5[3][0] ^= 1;
	cr_assert(batch_verify_path_cached(c, d[5], 5, 16,
	    (const uint8_t (*)[32])p5, l5, root) == 0);
	batch_tree_destroy(&t);
	batch_cache_destroy(&c);
}
