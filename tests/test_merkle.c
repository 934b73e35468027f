/*
 * test_merkle.c: the RFC 9162 Merkle tree (lib/merkle.c) against
 * 1. the published RFC 6962/9162 reference vectors: the 8-leaf tree used by
 *    every CT implementation, copied from transparency-dev/merkle
 *    proof/verify_test.go @02194e9 (roots for sizes 1..8, the empty root,
 *    inclusion proofs (0-based) 0/8, 5/8, 2/3, 1/5 and consistency proofs
 *    1/8, 6/8, 2/5, 6/7);
 * 2. an independent naive implementation in this file, written straight from
 *    the RFC definitions MTH, PATH (§2.1.3.1) and SUBPROOF (§2.1.4.1) as
 *    recursions over leaf arrays, hashing with libsodium instead of OpenSSL;
 * 3. tampered proofs.  What "wrong" means needs care: the RFC verifiers see
 *    (index, size) only through the left/right pattern of the path, so a
 *    proof for leaf 0 of 3 also checks out as leaf 0 of 4 against the same
 *    root (the signed tree head is what ties size to root).  Changed sizes
 *    and indices are therefore judged by an oracle: accept exactly when the
 *    naive recursion gives the same pattern (s_path_shape, s_proof_shape).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "common.h"
#include "merkle.h"

#define H MERKLE_HASH_LEN
#define N_ALL 70          /* every size and pair up to this is checked */
#define N_BIG 2053        /* 2^11 + 5: levels above the exhaustive range */
#define MAXP 80           /* naive proof buffers */

typedef uint8_t hash_t[H];

TestSuite(merkle, .init = test_init);

/* ---- reference data (transparency-dev/merkle proof/verify_test.go) ---- */

static const char *s_ct_entries[8] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};
static const char s_ct_empty[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char *s_ct_roots[8] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct ct_proof {
	uint64_t a, b;        /* inclusion: index, size; consistency: m, n */
	int n;
	const char *p[3];
};

static const struct ct_proof s_ct_incl[] = {
	{0, 8, 3, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{5, 8, 3, {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
	{1, 5, 3, {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const struct ct_proof s_ct_cons[] = {
	{1, 8, 3, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{6, 8, 3, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2, 5, 2, {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
	{6, 7, 3, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

static size_t
s_unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t len = 0;

	cr_assert(sodium_hex2bin(out, max, hex, strlen(hex), NULL, &len,
	    NULL) == 0, "bad hex %s", hex);
	return len;
}

static void
s_unhex32(const char *hex, uint8_t out[H])
{
	cr_assert_eq(s_unhex(hex, out, H), H);
}

/* ---- the naive reference, straight from RFC 9162 §2.1 (libsodium) ---- */

static void
n_leaf(const uint8_t *e, size_t len, uint8_t out[H])
{
	crypto_hash_sha256_state st;
	const uint8_t z = 0;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &z, 1);
	crypto_hash_sha256_update(&st, e, len);
	crypto_hash_sha256_final(&st, out);
}

static void
n_node(const uint8_t l[H], const uint8_t r[H], uint8_t out[H])
{
	crypto_hash_sha256_state st;
	const uint8_t one = 1;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &one, 1);
	crypto_hash_sha256_update(&st, l, H);
	crypto_hash_sha256_update(&st, r, H);
	crypto_hash_sha256_final(&st, out);
}

/* k: the largest power of two smaller than n (n > 1), by counting. */
static uint64_t
n_split(uint64_t n)
{
	uint64_t k = 1;

	while (k <= (n - 1) / 2)    /* k * 2 < n, without overflow */
		k *= 2;
	return k;
}

/* MTH(D[n]) of the leaf hashes d[0..n). */
static void
n_mth(const hash_t *d, uint64_t n, uint8_t out[H])
{
	uint8_t l[H], r[H];
	uint64_t k;

	if (n == 0) {
		crypto_hash_sha256(out, NULL, 0);
		return;
	}
	if (n == 1) {
		memcpy(out, d[0], H);
		return;
	}
	k = n_split(n);
	n_mth(d, k, l);
	n_mth(d + k, n - k, r);
	n_node(l, r, out);
}

/* PATH(m, D[n]) appended to p[*np..]. */
static void
n_path(uint64_t m, const hash_t *d, uint64_t n, hash_t *p, size_t *np)
{
	uint64_t k;

	if (n <= 1)
		return;
	k = n_split(n);
	if (m < k) {
		n_path(m, d, k, p, np);
		n_mth(d + k, n - k, p[(*np)++]);
	} else {
		n_path(m - k, d + k, n - k, p, np);
		n_mth(d, k, p[(*np)++]);
	}
}

/* SUBPROOF(m, D[n], b) appended to p[*np..]. */
static void
n_subproof(uint64_t m, const hash_t *d, uint64_t n, bool b, hash_t *p,
    size_t *np)
{
	uint64_t k;

	if (m == n) {
		if (!b)
			n_mth(d, n, p[(*np)++]);
		return;
	}
	k = n_split(n);
	if (m <= k) {
		n_subproof(m, d, k, b, p, np);
		n_mth(d + k, n - k, p[(*np)++]);
	} else {
		n_subproof(m - k, d + k, n - k, false, p, np);
		n_mth(d, k, p[(*np)++]);
	}
}

/*
 * The left/right pattern of PATH(m, D[n]) as a string, deepest first: 'L'
 * a left sibling, 'R' a right one.  "" for a one-leaf tree, "x" when
 * m >= n (no proof exists).
 */
static void
s_path_shape(uint64_t m, uint64_t n, char *out)
{
	char tmp[70];
	size_t i, len = 0;
	uint64_t k;

	if (m >= n) {
		strcpy(out, "x");
		return;
	}
	for (; n > 1; len++) {
		k = n_split(n);
		tmp[len] = m < k ? 'R' : 'L';
		if (m >= k) {
			m -= k;
			n -= k;
		} else {
			n = k;
		}
	}
	for (i = 0; i < len; i++)
		out[i] = tmp[len - 1 - i];
	out[len] = '\0';
}

/*
 * The pattern of PROOF(m, D[n]): 'S' when the proof carries its seed (the
 * old tree is no perfect subtree), 'O' when the verifier seeds with the old
 * root, then 'L' (sibling of a node in both trees) / 'R' (new only),
 * deepest first.  "x" when 0 < m < n does not hold.
 */
static void
s_proof_shape(uint64_t m, uint64_t n, char *out)
{
	char tmp[70];
	size_t i, len = 0;
	bool b = true;
	uint64_t k;

	if (m == 0 || m >= n) {
		strcpy(out, "x");
		return;
	}
	for (; m != n; len++) {
		k = n_split(n);
		tmp[len] = m <= k ? 'R' : 'L';
		if (m > k) {
			m -= k;
			n -= k;
			b = false;
		} else {
			n = k;
		}
	}
	out[0] = b ? 'O' : 'S';
	for (i = 0; i < len; i++)
		out[1 + i] = tmp[len - 1 - i];
	out[1 + len] = '\0';
}

/* ---- fixtures ---- */

/* Leaf hashes: the 8 CT entries, then 4-byte entries "i * 2654435761". */
static hash_t *
s_leaves(uint64_t n)
{
	uint8_t e[16];
	hash_t *d = calloc(n, H);
	uint64_t i;
	size_t len;

	cr_assert(d != NULL);
	for (i = 0; i < n; i++) {
		if (i < 8) {
			len = s_unhex(s_ct_entries[i], e, sizeof(e));
		} else {
			uint32_t v = (uint32_t)(i * 2654435761u);

			memcpy(e, &v, 4);
			len = 4;
		}
		n_leaf(e, len, d[i]);
	}
	return d;
}

static merkle_t *
s_tree(const hash_t *d, uint64_t n)
{
	merkle_t *m = merkle_new();
	uint64_t i;

	cr_assert(m != NULL);
	for (i = 0; i < n; i++)
		cr_assert_eq(merkle_append(m, d[i]), 0);
	cr_assert_eq(merkle_size(m), n);
	return m;
}

static void
s_root(merkle_t *t, uint64_t size, uint8_t out[H])
{
	cr_assert_eq(merkle_root(t, size, out), 0, "root of %lu",
	    (unsigned long)size);
}

/* ---- 1. known answers ---- */

Test(merkle, rfc_reference_roots_and_hashes)
{
	uint8_t e[16], want[H], got[H], a[H], b[H];
	hash_t *d = s_leaves(8);
	merkle_t *t = s_tree(d, 8);
	size_t len;
	int i;

	s_unhex32(s_ct_empty, want);
	cr_assert_eq(merkle_empty_root(got), 0);
	cr_assert_arr_eq(got, want, H);
	s_root(t, 0, got);
	cr_assert_arr_eq(got, want, H);
	for (i = 0; i < 8; i++) {
		s_unhex32(s_ct_roots[i], want);
		s_root(t, (uint64_t)i + 1, got);
		cr_assert_arr_eq(got, want, H, "root of size %d", i + 1);
		n_mth(d, (uint64_t)i + 1, got);
		cr_assert_arr_eq(got, want, H, "naive root of size %d", i + 1);
		/* The library's leaf hash agrees with the naive one. */
		len = s_unhex(s_ct_entries[i], e, sizeof(e));
		cr_assert_eq(merkle_leaf_hash(len ? e : NULL, len, got), 0);
		cr_assert_arr_eq(got, d[i], H);
	}
	/* The size-1 root is the leaf hash of "", SHA-256(0x00). */
	s_unhex32(s_ct_roots[0], want);
	cr_assert_arr_eq(d[0], want, H);
	/* Node hash: the size-2 root. */
	cr_assert_eq(merkle_node_hash(d[0], d[1], a), 0);
	s_unhex32(s_ct_roots[1], want);
	cr_assert_arr_eq(a, want, H);
	memcpy(b, d[0], H);
	cr_assert_eq(merkle_node_hash(b, d[1], b), 0, "out aliases l");
	cr_assert_arr_eq(b, want, H);
	cr_assert_eq(merkle_leaf_hash(NULL, 1, got), -1);
	merkle_destroy(&t);
	free(d);
}

static void
s_check_vector(const struct ct_proof *v, uint8_t (*got)[H], size_t n)
{
	uint8_t want[H];
	int j;

	cr_assert_eq(n, (size_t)v->n, "%lu/%lu: %zu elements",
	    (unsigned long)v->a, (unsigned long)v->b, n);
	for (j = 0; j < v->n; j++) {
		s_unhex32(v->p[j], want);
		cr_assert_arr_eq(got[j], want, H, "%lu/%lu element %d",
		    (unsigned long)v->a, (unsigned long)v->b, j);
	}
}

Test(merkle, rfc_reference_proofs)
{
	uint8_t (*p)[H], root[H], old[H];
	hash_t *d = s_leaves(8);
	merkle_t *t = s_tree(d, 8);
	const struct ct_proof *v;
	size_t i, n;

	for (i = 0; i < sizeof(s_ct_incl) / sizeof(s_ct_incl[0]); i++) {
		v = &s_ct_incl[i];
		cr_assert_eq(merkle_inclusion_proof(t, v->a, v->b, &p, &n), 0);
		s_check_vector(v, p, n);
		s_unhex32(s_ct_roots[v->b - 1], root);
		cr_assert_eq(merkle_verify_inclusion(d[v->a], v->a, v->b,
		    (const uint8_t (*)[H])p, n, root), 0);
		free(p);
	}
	for (i = 0; i < sizeof(s_ct_cons) / sizeof(s_ct_cons[0]); i++) {
		v = &s_ct_cons[i];
		cr_assert_eq(merkle_consistency_proof(t, v->a, v->b, &p, &n), 0);
		s_check_vector(v, p, n);
		s_unhex32(s_ct_roots[v->a - 1], old);
		s_unhex32(s_ct_roots[v->b - 1], root);
		cr_assert_eq(merkle_verify_consistency(v->a, v->b, old, root,
		    (const uint8_t (*)[H])p, n), 0);
		free(p);
	}
	merkle_destroy(&t);
	free(d);
}

/* ---- 2. every size and pair up to N_ALL against the naive recursion ---- */

Test(merkle, inclusion_every_leaf_every_size)
{
	hash_t *d = s_leaves(N_ALL), want[MAXP];
	uint8_t (*p)[H], root[H], naive[H];
	merkle_t *t = merkle_new();
	uint64_t size, i;
	size_t n, nw;

	cr_assert(t != NULL);
	for (size = 1; size <= N_ALL; size++) {
		/* Grow the tree as the daemon does; the current root first. */
		cr_assert_eq(merkle_append(t, d[size - 1]), 0);
		s_root(t, size, root);
		n_mth(d, size, naive);
		cr_assert_arr_eq(root, naive, H, "root of %lu", size);
		for (i = 0; i < size; i++) {
			cr_assert_eq(merkle_inclusion_proof(t, i, size, &p, &n), 0);
			nw = 0;
			n_path(i, d, size, want, &nw);
			cr_assert_eq(n, nw, "%lu/%lu length", i, size);
			cr_assert(n == 0 || memcmp(p, want, n * H) == 0,
			    "%lu/%lu differs from PATH", i, size);
			cr_assert_eq(merkle_verify_inclusion(d[i], i, size,
			    (const uint8_t (*)[H])p, n, root), 0,
			    "%lu/%lu refused", i, size);
			free(p);
		}
	}
	/* Old sizes stay reproducible after the tree has grown. */
	for (size = 0; size <= N_ALL; size++) {
		s_root(t, size, root);
		n_mth(d, size, naive);
		cr_assert_arr_eq(root, naive, H);
	}
	merkle_destroy(&t);
	cr_assert_null(t);
	free(d);
}

Test(merkle, consistency_every_pair)
{
	hash_t *d = s_leaves(N_ALL), want[MAXP];
	uint8_t (*p)[H], r1[H], r2[H];
	merkle_t *t = s_tree(d, N_ALL);
	uint64_t m, n;
	size_t np, nw;

	for (n = 1; n <= N_ALL; n++) {
		s_root(t, n, r2);
		for (m = 1; m <= n; m++) {
			s_root(t, m, r1);
			cr_assert_eq(merkle_consistency_proof(t, m, n, &p, &np), 0);
			nw = 0;
			if (m < n)
				n_subproof(m, d, n, true, want, &nw);
			cr_assert_eq(np, nw, "%lu->%lu length", m, n);
			cr_assert(np == 0 || memcmp(p, want, np * H) == 0,
			    "%lu->%lu differs from SUBPROOF", m, n);
			cr_assert_eq(merkle_verify_consistency(m, n, r1, r2,
			    (const uint8_t (*)[H])p, np), 0, "%lu->%lu refused",
			    m, n);
			free(p);
		}
	}
	merkle_destroy(&t);
	free(d);
}

/* Sizes past 2^11 so the cached levels above the exhaustive range count. */
Test(merkle, large_tree_sampled)
{
	static const uint64_t sizes[] = {1024, 1025, 1536, 2047, 2048, 2049,
	    N_BIG};
	hash_t *d = s_leaves(N_BIG), *want = calloc(MAXP, H);
	uint8_t (*p)[H], r1[H], r2[H], naive[H];
	merkle_t *t = s_tree(d, N_BIG);
	uint64_t n, i, m;
	size_t s, np, nw;

	cr_assert(want != NULL);
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		n = sizes[s];
		s_root(t, n, r2);
		n_mth(d, n, naive);
		cr_assert_arr_eq(r2, naive, H, "root of %lu", n);
		for (i = 0; i < n; i += 97) {
			for (m = i; m <= i + 1; m++) {
				cr_assert_eq(merkle_inclusion_proof(t, m, n, &p, &np), 0);
				nw = 0;
				n_path(m, d, n, want, &nw);
				cr_assert(np == nw && memcmp(p, want, np * H) == 0);
				cr_assert_eq(merkle_verify_inclusion(d[m], m, n,
				    (const uint8_t (*)[H])p, np, r2), 0);
				free(p);
			}
			m = i + 1;
			s_root(t, m, r1);
			cr_assert_eq(merkle_consistency_proof(t, m, n, &p, &np), 0);
			nw = 0;
			n_subproof(m, d, n, true, want, &nw);
			cr_assert(np == nw && memcmp(p, want, np * H) == 0,
			    "%lu->%lu", m, n);
			cr_assert_eq(merkle_verify_consistency(m, n, r1, r2,
			    (const uint8_t (*)[H])p, np), 0);
			free(p);
		}
	}
	merkle_destroy(&t);
	free(want);
	free(d);
}

/*
 * The pitfall of anchors.md §6: RFC 9162 §2.1.3.2 step 4.b.ii.  A verifier
 * without it, run on every valid proof with size < 40, refuses some; ours
 * accepts them all.
 */
static int
s_verify_without_step_ii(const uint8_t leaf[H], uint64_t fn, uint64_t size,
    const uint8_t (*p)[H], size_t n, const uint8_t root[H])
{
	uint64_t sn = size - 1;
	uint8_t r[H];
	size_t i;

	memcpy(r, leaf, H);
	for (i = 0; i < n; i++) {
		if (sn == 0)
			return -1;
		if ((fn & 1) || fn == sn)
			n_node(p[i], r, r);
		else
			n_node(r, p[i], r);
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, H) == 0 ? 0 : -1;
}

Test(merkle, step_4b_ii_pitfall)
{
	hash_t *d = s_leaves(40);
	merkle_t *t = s_tree(d, 40);
	uint8_t (*p)[H], root[H];
	uint64_t size, i;
	int total = 0, naive_refused = 0;
	size_t n;

	for (size = 1; size < 40; size++) {
		s_root(t, size, root);
		for (i = 0; i < size; i++, total++) {
			cr_assert_eq(merkle_inclusion_proof(t, i, size, &p, &n), 0);
			cr_assert_eq(merkle_verify_inclusion(d[i], i, size,
			    (const uint8_t (*)[H])p, n, root), 0);
			if (s_verify_without_step_ii(d[i], i, size,
			    (const uint8_t (*)[H])p, n, root) != 0)
				naive_refused++;
			free(p);
		}
	}
	cr_assert_eq(total, 780);
	/* anchors.md §6 counted 97 for the Python verifier that omits it. */
	cr_assert_eq(naive_refused, 97, "without step ii: %d refused",
	    naive_refused);
	merkle_destroy(&t);
	free(d);
}

/* ---- 3. wrong proofs refused ---- */

struct incl {
	const uint8_t *leaf;
	uint64_t index, size;
	uint8_t (*p)[H];
	size_t n;
	const uint8_t *root;
};

static int
s_vi(const struct incl *c, const uint8_t (*p)[H], size_t n)
{
	return merkle_verify_inclusion(c->leaf, c->index, c->size, p, n,
	    c->root);
}

/* Copy of c's path with room for one more element. */
static uint8_t (*s_copy(uint8_t (*p)[H], size_t n))[H]
{
	uint8_t (*q)[H] = malloc((n + 1) * H);

	cr_assert(q != NULL);
	if (n > 0)
		memcpy(q, p, n * H);
	return q;
}

/* Same path and root, another claimed (index, size): the shape oracle. */
static void
s_incl_claim(const struct incl *c, uint64_t index, uint64_t size)
{
	char want[72], have[72];
	int rc;

	s_path_shape(c->index, c->size, want);
	s_path_shape(index, size, have);
	rc = merkle_verify_inclusion(c->leaf, index, size,
	    (const uint8_t (*)[H])c->p, c->n, c->root);
	cr_assert_eq(rc, strcmp(want, have) == 0 ? 0 : -1,
	    "proof %lu/%lu claimed as %lu/%lu (shapes %s, %s): %d",
	    c->index, c->size, index, size, want, have, rc);
}

static void
s_incl_tamper_elements(const struct incl *c, const uint8_t *other_leaf)
{
	uint8_t (*q)[H] = s_copy(c->p, c->n), root[H];
	size_t j;

	for (j = 0; j < c->n; j++) {            /* a flipped byte anywhere */
		q[j][(j * 7 + c->index) % H] ^= 0x01;
		cr_assert_eq(s_vi(c, (const uint8_t (*)[H])q, c->n), -1);
		q[j][(j * 7 + c->index) % H] ^= 0x01;
	}
	for (j = 0; j + 1 < c->n; j++) {        /* two elements swapped */
		memcpy(q[j], c->p[j + 1], H);
		memcpy(q[j + 1], c->p[j], H);
		cr_assert_eq(s_vi(c, (const uint8_t (*)[H])q, c->n), -1);
		memcpy(q[j], c->p[j], H);
		memcpy(q[j + 1], c->p[j + 1], H);
	}
	if (c->n > 0) {                         /* truncated, either end */
		cr_assert_eq(s_vi(c, (const uint8_t (*)[H])q, c->n - 1), -1);
		cr_assert_eq(s_vi(c, (const uint8_t (*)[H])q + 1, c->n - 1), -1);
	}
	memcpy(q[c->n], c->root, H);           /* an extra element */
	cr_assert_eq(s_vi(c, (const uint8_t (*)[H])q, c->n + 1), -1);
	memset(q[c->n], 0, H);
	cr_assert_eq(s_vi(c, (const uint8_t (*)[H])q, c->n + 1), -1);
	memcpy(root, c->root, H);               /* wrong root, wrong leaf */
	root[31] ^= 0x80;
	cr_assert_eq(merkle_verify_inclusion(c->leaf, c->index, c->size,
	    (const uint8_t (*)[H])c->p, c->n, root), -1);
	cr_assert_eq(merkle_verify_inclusion(other_leaf, c->index, c->size,
	    (const uint8_t (*)[H])c->p, c->n, c->root), -1);
	free(q);
}

static void
s_incl_tamper_claims(const struct incl *c)
{
	uint64_t i = c->index, s = c->size;

	if (i > 0)
		s_incl_claim(c, i - 1, s);
	s_incl_claim(c, i + 1, s);
	s_incl_claim(c, i ^ 1, s);
	s_incl_claim(c, i ^ 2, s);
	s_incl_claim(c, s, s);
	s_incl_claim(c, UINT64_MAX, s);
	s_incl_claim(c, i, s - 1);
	s_incl_claim(c, i, s + 1);
	s_incl_claim(c, i, s * 2);
	s_incl_claim(c, i, s / 2);
	s_incl_claim(c, i, 0);
	s_incl_claim(c, i, UINT64_MAX);
}

Test(merkle, inclusion_wrong_proofs_refused)
{
	hash_t *d = s_leaves(N_ALL + 1);
	merkle_t *t = s_tree(d, N_ALL);
	uint8_t root[H], other[H];
	struct incl c;
	uint64_t size, i;
	int aliases = 0;
	char a[72], b[72];

	for (size = 1; size <= N_ALL; size++) {
		s_root(t, size, root);
		for (i = 0; i < size; i++) {
			c = (struct incl){ d[i], i, size, NULL, 0, root };
			cr_assert_eq(merkle_inclusion_proof(t, i, size, &c.p, &c.n), 0);
			cr_assert_eq(s_vi(&c, (const uint8_t (*)[H])c.p, c.n), 0);
			s_incl_tamper_elements(&c, d[(i + 1) % (N_ALL + 1)]);
			s_incl_tamper_claims(&c);
			s_path_shape(i, size, a);
			s_path_shape(i, size + 1, b);
			aliases += strcmp(a, b) == 0;
			free(c.p);
		}
	}
	/* The oracle really did have to accept some changed sizes. */
	cr_assert_gt(aliases, 0);
	/* A path element given as NULL with n > 0 is refused, not read. */
	memcpy(other, d[0], H);
	cr_assert_eq(merkle_verify_inclusion(other, 0, 2, NULL, 1, root), -1);
	merkle_destroy(&t);
	free(d);
}

struct cons {
	uint64_t m, n;
	uint8_t (*p)[H];
	size_t np;
	const uint8_t *r1, *r2;
};

static int
s_vc(const struct cons *c, const uint8_t (*p)[H], size_t n)
{
	return merkle_verify_consistency(c->m, c->n, c->r1, c->r2, p, n);
}

static void
s_cons_tamper_elements(const struct cons *c)
{
	uint8_t (*q)[H] = s_copy(c->p, c->np), bad[H];
	size_t j;

	for (j = 0; j < c->np; j++) {
		q[j][(j * 5 + c->m) % H] ^= 0x10;
		cr_assert_eq(s_vc(c, (const uint8_t (*)[H])q, c->np), -1,
		    "%lu->%lu flipped %zu", c->m, c->n, j);
		q[j][(j * 5 + c->m) % H] ^= 0x10;
	}
	for (j = 0; j + 1 < c->np; j++) {
		memcpy(q[j], c->p[j + 1], H);
		memcpy(q[j + 1], c->p[j], H);
		cr_assert_eq(s_vc(c, (const uint8_t (*)[H])q, c->np), -1);
		memcpy(q[j], c->p[j], H);
		memcpy(q[j + 1], c->p[j + 1], H);
	}
	/* Truncated at either end: the whole proof must be there (7: sn). */
	cr_assert_eq(s_vc(c, (const uint8_t (*)[H])q, c->np - 1), -1);
	cr_assert_eq(s_vc(c, (const uint8_t (*)[H])q + 1, c->np - 1), -1);
	/* One element too many: the whole proof must be used (6.a). */
	memcpy(q[c->np], c->r2, H);
	cr_assert_eq(s_vc(c, (const uint8_t (*)[H])q, c->np + 1), -1);
	memcpy(q[c->np], c->p[c->np - 1], H);
	cr_assert_eq(s_vc(c, (const uint8_t (*)[H])q, c->np + 1), -1);
	memcpy(bad, c->r1, H);
	bad[0] ^= 1;
	cr_assert_eq(merkle_verify_consistency(c->m, c->n, bad, c->r2,
	    (const uint8_t (*)[H])c->p, c->np), -1);
	memcpy(bad, c->r2, H);
	bad[0] ^= 1;
	cr_assert_eq(merkle_verify_consistency(c->m, c->n, c->r1, bad,
	    (const uint8_t (*)[H])c->p, c->np), -1);
	cr_assert_eq(merkle_verify_consistency(c->m, c->n, c->r2, c->r1,
	    (const uint8_t (*)[H])c->p, c->np), -1);
	free(q);
}

/* Same proof and roots, other sizes: accepted only for the same shape. */
static void
s_cons_claim(const struct cons *c, uint64_t m, uint64_t n)
{
	char want[72], have[72];
	int rc;

	s_proof_shape(c->m, c->n, want);
	s_proof_shape(m, n, have);
	rc = merkle_verify_consistency(m, n, c->r1, c->r2,
	    (const uint8_t (*)[H])c->p, c->np);
	cr_assert_eq(rc, strcmp(want, have) == 0 ? 0 : -1,
	    "proof %lu->%lu claimed as %lu->%lu (shapes %s, %s): %d",
	    c->m, c->n, m, n, want, have, rc);
}

/* The proof of another pair, with this pair's sizes and roots. */
static void
s_cons_other_pair(merkle_t *t, const struct cons *c, uint64_t m, uint64_t n)
{
	uint8_t (*p)[H];
	size_t np;
	bool same;

	if (m == 0 || m > n || n > N_ALL || (m == c->m && n == c->n))
		return;
	cr_assert_eq(merkle_consistency_proof(t, m, n, &p, &np), 0);
	same = np == c->np && memcmp(p, c->p, np * H) == 0;
	cr_assert_eq(s_vc(c, (const uint8_t (*)[H])p, np), same ? 0 : -1,
	    "proof %lu->%lu accepted for %lu->%lu", m, n, c->m, c->n);
	free(p);
}

static void
s_cons_tamper_pairs(merkle_t *t, const struct cons *c)
{
	uint64_t m = c->m, n = c->n;

	s_cons_claim(c, m - 1, n);
	s_cons_claim(c, m + 1, n);
	s_cons_claim(c, m ^ 2, n);
	s_cons_claim(c, m, n - 1);
	s_cons_claim(c, m, n + 1);
	s_cons_claim(c, m, n * 2);
	s_cons_claim(c, m * 2, n * 2);
	s_cons_claim(c, n, m);
	s_cons_claim(c, m, UINT64_MAX);
	s_cons_other_pair(t, c, m - 1, n);
	s_cons_other_pair(t, c, m + 1, n);
	s_cons_other_pair(t, c, m, n - 1);
	s_cons_other_pair(t, c, m, n + 1);
	s_cons_other_pair(t, c, n - m, n);
}

Test(merkle, consistency_wrong_proofs_refused)
{
	hash_t *d = s_leaves(N_ALL);
	merkle_t *t = s_tree(d, N_ALL);
	uint8_t r1[H], r2[H];
	struct cons c;
	uint64_t m, n;

	for (n = 2; n <= N_ALL; n++) {
		s_root(t, n, r2);
		for (m = 1; m < n; m++) {
			s_root(t, m, r1);
			c = (struct cons){ m, n, NULL, 0, r1, r2 };
			cr_assert_eq(merkle_consistency_proof(t, m, n, &c.p, &c.np), 0);
			cr_assert_gt(c.np, 0);
			cr_assert_eq(s_vc(&c, (const uint8_t (*)[H])c.p, c.np), 0);
			s_cons_tamper_elements(&c);
			s_cons_tamper_pairs(t, &c);
			/* An empty proof for a real extension (step 1). */
			cr_assert_eq(s_vc(&c, NULL, 0), -1);
			free(c.p);
		}
	}
	merkle_destroy(&t);
	free(d);
}

/* ---- edge cases ---- */

Test(merkle, edge_cases_inclusion_and_tree)
{
	hash_t *d = s_leaves(5);
	merkle_t *t = merkle_new(), *none = NULL;
	uint8_t (*p)[H] = (void *)1, root[H];
	size_t n = 7;

	cr_assert(t != NULL);
	/* Empty tree: root is SHA-256(""), no proofs, no bigger roots. */
	cr_assert_eq(merkle_size(t), 0);
	s_root(t, 0, root);
	n_mth(d, 0, d[4]);
	cr_assert_arr_eq(root, d[4], H);
	cr_assert_eq(merkle_root(t, 1, root), -1);
	cr_assert_eq(merkle_inclusion_proof(t, 0, 0, &p, &n), -1);
	cr_assert(p == NULL && n == 0, "OUT params cleared on failure");
	cr_assert_eq(merkle_append(t, d[0]), 0);
	/* One leaf: the root is the leaf hash, the proof is empty. */
	s_root(t, 1, root);
	cr_assert_arr_eq(root, d[0], H);
	cr_assert_eq(merkle_inclusion_proof(t, 0, 1, &p, &n), 0);
	cr_assert(p == NULL && n == 0);
	cr_assert_eq(merkle_verify_inclusion(d[0], 0, 1, NULL, 0, root), 0);
	cr_assert_eq(merkle_verify_inclusion(d[1], 0, 1, NULL, 0, root), -1);
	/* index >= size and size 0 always fail, even with matching hashes. */
	cr_assert_eq(merkle_verify_inclusion(d[0], 1, 1, NULL, 0, root), -1);
	cr_assert_eq(merkle_verify_inclusion(d[0], 0, 0, NULL, 0, root), -1);
	cr_assert_eq(merkle_verify_inclusion(d[0], UINT64_MAX, UINT64_MAX,
	    NULL, 0, root), -1);
	/* Proofs only for sizes the tree has. */
	cr_assert_eq(merkle_inclusion_proof(t, 0, 2, &p, &n), -1);
	cr_assert_eq(merkle_inclusion_proof(t, 1, 1, &p, &n), -1);
	merkle_destroy(&t);
	merkle_destroy(&t);
	merkle_destroy(&none);
	merkle_destroy(NULL);
	free(d);
}

Test(merkle, edge_cases_consistency)
{
	hash_t *d = s_leaves(4);
	merkle_t *t = s_tree(d, 4);
	uint8_t (*p)[H], empty[H], r2[H], r4[H], one[1][H];
	size_t n;

	cr_assert_eq(merkle_empty_root(empty), 0);
	s_root(t, 2, r2);
	s_root(t, 4, r4);
	memcpy(one[0], d[2], H);
	/* Generation: trivial pairs give the empty proof; no time travel. */
	cr_assert_eq(merkle_consistency_proof(t, 0, 4, &p, &n), 0);
	cr_assert(p == NULL && n == 0);
	cr_assert_eq(merkle_consistency_proof(t, 3, 3, &p, &n), 0);
	cr_assert(p == NULL && n == 0);
	cr_assert_eq(merkle_consistency_proof(t, 0, 0, &p, &n), 0);
	cr_assert_eq(merkle_consistency_proof(t, 3, 2, &p, &n), -1);
	cr_assert_eq(merkle_consistency_proof(t, 2, 5, &p, &n), -1);
	/* old == new: consistent iff same root and empty proof. */
	cr_assert_eq(merkle_verify_consistency(4, 4, r4, r4, NULL, 0), 0);
	cr_assert_eq(merkle_verify_consistency(4, 4, r2, r4, NULL, 0), -1);
	cr_assert_eq(merkle_verify_consistency(4, 4, r4, r4,
	    (const uint8_t (*)[H])one, 1), -1);
	cr_assert_eq(merkle_verify_consistency(0, 0, empty, empty, NULL, 0), 0);
	cr_assert_eq(merkle_verify_consistency(0, 0, r2, r2, NULL, 0), 0,
	    "0 == 0 compares the roots only, like any equal pair");
	/* old == 0: the empty tree (root SHA-256("")) precedes every tree. */
	cr_assert_eq(merkle_verify_consistency(0, 4, empty, r4, NULL, 0), 0);
	cr_assert_eq(merkle_verify_consistency(0, 4, r2, r4, NULL, 0), -1);
	cr_assert_eq(merkle_verify_consistency(0, 4, empty, r4,
	    (const uint8_t (*)[H])one, 1), -1);
	/* Time travel, and an empty proof for a real extension (step 1). */
	cr_assert_eq(merkle_verify_consistency(4, 2, r4, r2, NULL, 0), -1);
	cr_assert_eq(merkle_verify_consistency(2, 4, r2, r4, NULL, 0), -1);
	cr_assert_eq(merkle_verify_consistency(2, 4, r2, r4, NULL, 1), -1);
	merkle_destroy(&t);
	free(d);
}

/* Garbage paths at the largest sizes: refused, and in at most 64 steps. */
Test(merkle, huge_sizes_bounded)
{
	uint8_t (*junk)[H] = calloc(300, H), root[H];
	size_t j;

	cr_assert(junk != NULL);
	for (j = 0; j < 300; j++)
		junk[j][j % H] = (uint8_t)j;
	memset(root, 0xab, H);
	cr_assert_eq(merkle_verify_inclusion(root, UINT64_MAX - 1, UINT64_MAX,
	    (const uint8_t (*)[H])junk, 300, root), -1);
	cr_assert_eq(merkle_verify_inclusion(root, 0, UINT64_MAX,
	    (const uint8_t (*)[H])junk, 64, root), -1);
	cr_assert_eq(merkle_verify_inclusion(root, (uint64_t)1 << 63,
	    UINT64_MAX, (const uint8_t (*)[H])junk, 63, root), -1);
	cr_assert_eq(merkle_verify_consistency(UINT64_MAX - 1, UINT64_MAX,
	    root, root, (const uint8_t (*)[H])junk, 300), -1);
	cr_assert_eq(merkle_verify_consistency((uint64_t)1 << 63, UINT64_MAX,
	    root, root, (const uint8_t (*)[H])junk, 65), -1);
	cr_assert_eq(merkle_verify_consistency(1, UINT64_MAX, root, root,
	    (const uint8_t (*)[H])junk, 1), -1);
	free(junk);
}

/*
 * Work is bounded whatever n claims: 65 readable elements (a seed and 64
 * levels) end at a PROT_NONE page, and n says a million.  Reading past
 * them is a crash, which Criterion reports as a failure.
 */
Test(merkle, path_reads_bounded_by_tree_height)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *map, (*path)[H], root[H];

	map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(map != MAP_FAILED);
	cr_assert_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
	path = (uint8_t (*)[H])(map + pg - 65 * H);
	memset(path, 0x5a, 65 * H);
	memset(root, 0xab, H);
	cr_assert_eq(merkle_verify_inclusion(root, 0, UINT64_MAX,
	    (const uint8_t (*)[H])path, 1000000, root), -1);
	cr_assert_eq(merkle_verify_inclusion(root, UINT64_MAX - 1, UINT64_MAX,
	    (const uint8_t (*)[H])path, 1000000, root), -1);
	cr_assert_eq(merkle_verify_consistency(1, UINT64_MAX, root, root,
	    (const uint8_t (*)[H])path, 1000000), -1);
	cr_assert_eq(merkle_verify_consistency(3, UINT64_MAX, root, root,
	    (const uint8_t (*)[H])path, 1000000), -1);
	munmap(map, (size_t)pg * 2);
}

/* ---- the frontier and the *_by walks (a tree kept elsewhere) ---- */

#define N_FR 1100         /* past 2^10: eleven levels of stored nodes */

/* Every perfect subtree a frontier reported, by height and index: what a
 * store of nodes would hold. */
struct nodes {
	hash_t *lv[16];
	size_t len[16];
	int refuse_height;    /* refuse a node of this height (-1: none) */
};

static int
s_nodes_put(void *arg, unsigned height, uint64_t index, const uint8_t h[H])
{
	struct nodes *ns = arg;

	if ((int)height == ns->refuse_height)
		return -1;
	cr_assert_lt(height, 16u);
	cr_assert_eq(index, ns->len[height], "height %u: index %llu out of "
	    "order", height, (unsigned long long)index);
	memcpy(ns->lv[height][ns->len[height]++], h, H);
	return 0;
}

static int
s_nodes_get(void *arg, unsigned height, uint64_t index, uint8_t out[H])
{
	struct nodes *ns = arg;

	if (height >= 16 || index >= ns->len[height])
		return -1;
	memcpy(out, ns->lv[height][index], H);
	return 0;
}

static void
s_leaf_n(uint64_t i, uint8_t out[H])
{
	uint8_t e[8];
	int b;

	for (b = 0; b < 8; b++)
		e[b] = (uint8_t)(i >> (8 * b));
	cr_assert_eq(merkle_leaf_hash(e, sizeof(e), out), 0);
}

/* Roots after every append, and every completed subtree reported once,
 * in order, with the hash merkle_t holds for it. */
Test(merkle, frontier_roots_and_nodes_match_the_tree)
{
	merkle_t *t = merkle_new();
	merkle_frontier_t f;
	struct nodes ns = { .refuse_height = -1 };
	uint8_t leaf[H], a[H], b[H];
	uint64_t i;
	int h;

	cr_assert_not_null(t);
	for (h = 0; h < 16; h++)
		cr_assert_not_null(ns.lv[h] = calloc(N_FR + 8, H));
	merkle_frontier_init(&f);
	cr_assert_eq(merkle_frontier_root(&f, a), 0);
	cr_assert_eq(merkle_empty_root(b), 0);
	cr_assert_arr_eq(a, b, H);
	for (i = 0; i < N_FR; i++) {
		s_leaf_n(i, leaf);
		cr_assert_eq(merkle_append(t, leaf), 0);
		cr_assert_eq(merkle_frontier_append(&f, leaf, s_nodes_put, &ns),
		    0);
		cr_assert_eq(f.size, i + 1);
		cr_assert_eq(merkle_frontier_root(&f, a), 0);
		cr_assert_eq(merkle_root(t, i + 1, b), 0);
		cr_assert_arr_eq(a, b, H, "root of size %llu differs",
		    (unsigned long long)(i + 1));
	}
	/* each reported subtree is the root of its own leaves */
	for (h = 0; h < 11; h++) {
		cr_assert_eq(ns.len[h], (size_t)(N_FR >> h), "height %d", h);
		for (i = 0; i < ns.len[h]; i += 1 + i / 4) {
			merkle_t *sub = merkle_new();
			uint64_t k;

			cr_assert_not_null(sub);
			for (k = i << h; k < (i + 1) << h; k++) {
				s_leaf_n(k, leaf);
				cr_assert_eq(merkle_append(sub, leaf), 0);
			}
			cr_assert_eq(merkle_root(sub, (uint64_t)1 << h, a), 0);
			cr_assert_arr_eq(a, ns.lv[h][i], H, "node %d/%llu", h,
			    (unsigned long long)i);
			merkle_destroy(&sub);
		}
	}
	/* a refusing callback leaves the frontier as it was */
	{
		merkle_frontier_t before;

		/* at a size of 3 mod 4 the next leaf completes heights 0..2:
		 * refused at 2, after two merges were computed */
		for (i = N_FR; (f.size & 3) != 3; i++) {
			s_leaf_n(i, leaf);
			cr_assert_eq(merkle_frontier_append(&f, leaf,
			    s_nodes_put, &ns), 0);
		}
		before = f;
		ns.refuse_height = 2;
		s_leaf_n(i, leaf);
		cr_assert_eq(merkle_frontier_append(&f, leaf, s_nodes_put, &ns),
		    -1);
		cr_assert_eq(memcmp(&before, &f, sizeof(f)), 0);
		ns.refuse_height = -1;
	}
	for (h = 0; h < 16; h++)
		free(ns.lv[h]);
	merkle_destroy(&t);
}

/* Roots of every older size and proofs over a source of stored nodes are
 * byte for byte those of merkle_t. */
Test(merkle, proofs_by_source_match_the_tree)
{
	merkle_t *t = merkle_new();
	merkle_frontier_t f;
	struct nodes ns = { .refuse_height = -1 };
	uint8_t leaf[H], a[H], b[H], (*p1)[H], (*p2)[H];
	size_t n1, n2;
	uint64_t i, j, size;
	int h;

	cr_assert_not_null(t);
	for (h = 0; h < 16; h++)
		cr_assert_not_null(ns.lv[h] = calloc(N_FR + 8, H));
	merkle_frontier_init(&f);
	for (i = 0; i < N_FR; i++) {
		s_leaf_n(i, leaf);
		cr_assert_eq(merkle_append(t, leaf), 0);
		cr_assert_eq(merkle_frontier_append(&f, leaf, s_nodes_put, &ns),
		    0);
	}
	for (size = 0; size <= N_FR; size++) {
		cr_assert_eq(merkle_root_by(s_nodes_get, &ns, size, a), 0);
		cr_assert_eq(merkle_root(t, size, b), 0);
		cr_assert_arr_eq(a, b, H, "size %llu", (unsigned long long)size);
	}
	/* every pair up to N_ALL, then a stride through the rest */
	for (size = 1; size <= N_FR; size += size < N_ALL ? 1 : 37) {
		for (j = 0; j <= size; j += size < N_ALL ? 1 : 13) {
			if (j < size) {
				cr_assert_eq(merkle_inclusion_proof_by(
				    s_nodes_get, &ns, j, size, &p1, &n1), 0);
				cr_assert_eq(merkle_inclusion_proof(t, j, size,
				    &p2, &n2), 0);
				cr_assert_eq(n1, n2);
				cr_assert(n1 == 0 || memcmp(p1, p2, n1 * H) ==
				    0, "inclusion %llu/%llu", (unsigned long
				    long)j, (unsigned long long)size);
				free(p1);
				free(p2);
			}
			cr_assert_eq(merkle_consistency_proof_by(s_nodes_get,
			    &ns, j, size, &p1, &n1), 0);
			cr_assert_eq(merkle_consistency_proof(t, j, size, &p2,
			    &n2), 0);
			cr_assert_eq(n1, n2);
			cr_assert(n1 == 0 || memcmp(p1, p2, n1 * H) == 0,
			    "consistency %llu/%llu", (unsigned long long)j,
			    (unsigned long long)size);
			free(p1);
			free(p2);
		}
	}
	/* beyond what the source holds: refused, not invented */
	cr_assert_eq(merkle_root_by(s_nodes_get, &ns, N_FR + 1, a), -1);
	cr_assert_eq(merkle_inclusion_proof_by(s_nodes_get, &ns, 0, N_FR + 1,
	    &p1, &n1), -1);
	cr_assert_null(p1);
	cr_assert_eq(merkle_consistency_proof_by(s_nodes_get, &ns, 3,
	    N_FR + 1, &p1, &n1), -1);
	cr_assert_null(p1);
	for (h = 0; h < 16; h++)
		free(ns.lv[h]);
	merkle_destroy(&t);
}
