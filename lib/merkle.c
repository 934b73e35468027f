/*
 * merkle.c: the RFC 9162 §2.1 Merkle tree of the audit log (see merkle.h).
 *
 * Owns: each merkle_t owns its leaf hashes, its cached perfect-subtree
 * hashes and one EVP_MD_CTX.  The module holds one process-wide SHA-256
 * EVP_MD, fetched once (pthread_once) and read-only afterwards: an implicit
 * fetch per hash (EVP_sha256() + EVP_DigestInit_ex) costs about 35% more
 * (toolchain.md).  It is never freed; OpenSSL's own exit handler does that.
 * Never: hashes anything but the RFC 9162 domain-separated forms, accepts a
 * proof that is not consumed exactly, or leaves a tree half-appended.
 *
 * How a merkle_t stores the tree (the invariants every function relies on):
 * 1. lv[h].len == size >> h for every height h, and lv[h].hash[i] is the
 *    hash of the perfect subtree over leaves [i * 2^h, (i + 1) * 2^h).
 *    lv[0] holds the leaf hashes.  The levels above 0 add fewer than
 *    `size` hashes, so the cache doubles the memory of the leaves alone.
 * 2. merkle_append keeps (1) atomically: it computes the new subtree hashes
 *    first, then reserves room in every level that grows, then writes.
 * 3. Every subtree the RFC recursion (MTH, PATH, SUBPROOF) visits is
 *    D[lo:lo+n] with lo a multiple of the smallest power of two >= n.  Its
 *    MTH is then the right fold of the perfect subtrees named by the bits of
 *    n, all of them cached (s_range_hash): popcount(n) - 1 hashes.  So a
 *    root costs O(log n) and a proof O(log n): each proof has at most one
 *    sibling that is not perfect (the one on the right edge).
 * Rejected: keeping only the leaves (O(n) per root and proof), and keeping
 * only the compact range of the current size (no roots or proofs for older
 * tree heads, which auditors ask for).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "merkle.h"

#define MERKLE_MAX_LEVELS 64   /* heights 0..63: sizes are below 2^64 */
#define MERKLE_MAX_PATH 65     /* consistency: 64 siblings + the seed */

struct merkle_level {
	uint8_t (*hash)[MERKLE_HASH_LEN];  /* perfect subtrees of this height */
	size_t len;                        /* == size >> height (invariant 1) */
	size_t cap;                        /* allocated elements */
};

struct merkle {
	EVP_MD_CTX *ctx;                   /* reused by every hash of the tree */
	uint64_t size;                     /* leaves appended */
	struct merkle_level lv[MERKLE_MAX_LEVELS];  /* lv[0]: leaf hashes */
};

static pthread_once_t s_md_once = PTHREAD_ONCE_INIT;
static EVP_MD *s_md;                   /* SHA-256, read-only after s_md_init */

static void
s_md_init(void)
{
	s_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* A fresh context for the fetched SHA-256, or NULL. */
static EVP_MD_CTX *
s_ctx_new(void)
{
	if (pthread_once(&s_md_once, s_md_init) != 0 || s_md == NULL)
		return NULL;
	return EVP_MD_CTX_new();
}

/* OUT: out = SHA-256(p || a || b); any part may be empty (NULL, 0). */
static int
s_hash(EVP_MD_CTX *ctx, const uint8_t *p, size_t plen, const uint8_t *a,
    size_t alen, const uint8_t *b, size_t blen, uint8_t out[MERKLE_HASH_LEN])
{
	unsigned int len = 0;

	/* EVP_DigestUpdate returns 1 at once for 0 bytes, NULL or not. */
	if (EVP_DigestInit_ex2(ctx, s_md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, p, plen) != 1 ||
	    EVP_DigestUpdate(ctx, a, alen) != 1 ||
	    EVP_DigestUpdate(ctx, b, blen) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != MERKLE_HASH_LEN)
		return -1;
	return 0;
}

/*
 * RFC 9162 §2.1.1: the 0x00 / 0x01 prefixes keep leaves and interior nodes
 * apart, so no interior node can be passed off as a leaf (second preimage).
 * The inputs are all read before out is written, so out may alias l or r.
 */
static int
s_node(EVP_MD_CTX *ctx, const uint8_t l[MERKLE_HASH_LEN],
    const uint8_t r[MERKLE_HASH_LEN], uint8_t out[MERKLE_HASH_LEN])
{
	static const uint8_t one = 0x01;

	return s_hash(ctx, &one, 1, l, MERKLE_HASH_LEN, r, MERKLE_HASH_LEN, out);
}

static int
s_leaf(EVP_MD_CTX *ctx, const uint8_t *entry, size_t len,
    uint8_t out[MERKLE_HASH_LEN])
{
	static const uint8_t zero = 0x00;

	return s_hash(ctx, &zero, 1, entry, len, NULL, 0, out);
}

int
merkle_leaf_hash(const uint8_t *entry, size_t len,
    uint8_t out[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx;
	int rc = -1;

	if (entry == NULL && len > 0)
		return -1;
	if ((ctx = s_ctx_new()) == NULL)
		goto out;
	rc = s_leaf(ctx, entry, len, out);
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
merkle_node_hash(const uint8_t l[MERKLE_HASH_LEN],
    const uint8_t r[MERKLE_HASH_LEN], uint8_t out[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx;
	int rc = -1;

	if ((ctx = s_ctx_new()) == NULL)
		goto out;
	rc = s_node(ctx, l, r, out);
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* RFC 9162 §2.1.1: MTH({}) = HASH(), the hash of the empty string. */
int
merkle_empty_root(uint8_t out[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx;
	int rc = -1;

	if ((ctx = s_ctx_new()) == NULL)
		goto out;
	rc = s_hash(ctx, NULL, 0, NULL, 0, NULL, 0, out);
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

merkle_t *
merkle_new(void)
{
	merkle_t *self;

	if ((self = calloc(1, sizeof(*self))) == NULL)
		return NULL;
	if ((self->ctx = s_ctx_new()) == NULL) {
		free(self);
		return NULL;
	}
	return self;
}

void
merkle_destroy(merkle_t **self_p)
{
	merkle_t *self;
	int h;

	if (self_p == NULL || (self = *self_p) == NULL)
		return;
	for (h = 0; h < MERKLE_MAX_LEVELS; h++)
		free(self->lv[h].hash);
	EVP_MD_CTX_free(self->ctx);
	free(self);
	*self_p = NULL;
}

uint64_t
merkle_size(const merkle_t *self)
{
	return self->size;
}

/* Room for one more hash in lv; 0 / -1 (lv unchanged on -1). */
static int
s_level_reserve(struct merkle_level *lv)
{
	uint8_t (*grown)[MERKLE_HASH_LEN];
	size_t cap;

	if (lv->len < lv->cap)
		return 0;
	cap = lv->cap == 0 ? 16 : lv->cap * 2;
	if (cap < lv->cap || cap > SIZE_MAX / MERKLE_HASH_LEN)
		return -1;
	if ((grown = realloc(lv->hash, cap * MERKLE_HASH_LEN)) == NULL)
		return -1;
	lv->hash = grown;
	lv->cap = cap;
	return 0;
}

int
merkle_append(merkle_t *self, const uint8_t leaf_hash[MERKLE_HASH_LEN])
{
	uint8_t node[MERKLE_MAX_LEVELS][MERKLE_HASH_LEN];  /* new, per height */
	const struct merkle_level *below;
	uint64_t n;
	int h, top;

	if (self->size == UINT64_MAX)
		return -1;
	n = self->size + 1;
	/*
	 * Leaf n - 1 completes one perfect subtree at each height 0..top,
	 * top = ctz(n): the one over [n - 2^h, n).  Its left half is the last
	 * cached subtree one level down, its right half the one just made.
	 */
	top = __builtin_ctzll(n);
	memcpy(node[0], leaf_hash, MERKLE_HASH_LEN);
	for (h = 1; h <= top; h++) {
		below = &self->lv[h - 1];
		if (s_node(self->ctx, below->hash[below->len - 1], node[h - 1],
		    node[h]) != 0)
			return -1;
	}
	/* Invariant 2: all allocation before the first write. */
	for (h = 0; h <= top; h++)
		if (s_level_reserve(&self->lv[h]) != 0)
			return -1;
	for (h = 0; h <= top; h++)
		memcpy(self->lv[h].hash[self->lv[h].len++], node[h],
		    MERKLE_HASH_LEN);
	self->size = n;
	return 0;
}

/*
 * Where a proof or root gets its perfect-subtree hashes from: the levels of
 * a merkle_t (s_mem_get), or a caller's store (the *_by functions).  ctx is
 * the hashing context of the walk.
 */
struct src {
	merkle_subtree_fn get;
	void *arg;
	EVP_MD_CTX *ctx;
};

/*
 * OUT: out = MTH(D[lo:lo+n]), n >= 1, lo + n <= size, lo a multiple of the
 * smallest power of two >= n (invariant 3).  Unrolling MTH's split at the
 * largest power of two below n gives D[lo:lo+n] = P1 P2 ... Pj, the perfect
 * subtrees for the set bits of n from the highest, and MTH = node(P1,
 * node(P2, ... Pj)).  Fold from the right, lowest bit first.
 */
static int
s_range_hash(const struct src *src, uint64_t lo, uint64_t n,
    uint8_t out[MERKLE_HASH_LEN])
{
	uint8_t sub[MERKLE_HASH_LEN];
	uint64_t end = lo + n, start;
	bool first = true;
	int b;

	for (b = 0; b < MERKLE_MAX_LEVELS; b++) {
		if (((n >> b) & 1) == 0)
			continue;
		start = end - ((uint64_t)1 << b);
		if (src->get(src->arg, (unsigned)b, start >> b, sub) != 0)
			return -1;
		if (first)
			memcpy(out, sub, MERKLE_HASH_LEN);
		else if (s_node(src->ctx, sub, out, out) != 0)
			return -1;
		first = false;
		end = start;
	}
	return 0;
}

/* merkle_subtree_fn over the levels of a merkle_t (invariant 1). */
static int
s_mem_get(void *arg, unsigned height, uint64_t index,
    uint8_t out[MERKLE_HASH_LEN])
{
	const merkle_t *self = arg;

	if (height >= MERKLE_MAX_LEVELS || index >= self->lv[height].len)
		return -1;
	memcpy(out, self->lv[height].hash[index], MERKLE_HASH_LEN);
	return 0;
}

static int
s_root(const struct src *src, uint64_t size, uint8_t out[MERKLE_HASH_LEN])
{
	if (size == 0)
		return s_hash(src->ctx, NULL, 0, NULL, 0, NULL, 0, out);
	return s_range_hash(src, 0, size, out);
}

int
merkle_root(merkle_t *self, uint64_t size, uint8_t out[MERKLE_HASH_LEN])
{
	struct src src = { s_mem_get, self, self->ctx };

	if (size > self->size)
		return -1;
	return s_root(&src, size, out);
}

/* k of RFC 9162 §2.1.1: the largest power of two smaller than n (n >= 2). */
static uint64_t
s_split(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

/*
 * OUT: *path = the depth elements of tmp in reverse order (the recursion
 * finds the root's child first; proofs list the deepest sibling first).
 */
static int
s_emit_reversed(uint8_t (*tmp)[MERKLE_HASH_LEN], size_t depth,
    uint8_t (**path)[MERKLE_HASH_LEN], size_t *n)
{
	size_t i;

	if (depth == 0)
		return 0;
	if ((*path = malloc(depth * MERKLE_HASH_LEN)) == NULL)
		return -1;
	for (i = 0; i < depth; i++)
		memcpy((*path)[i], tmp[depth - 1 - i], MERKLE_HASH_LEN);
	*n = depth;
	return 0;
}

static int
s_inclusion(const struct src *src, uint64_t index, uint64_t size,
    uint8_t (**path)[MERKLE_HASH_LEN], size_t *n)
{
	uint8_t tmp[MERKLE_MAX_LEVELS][MERKLE_HASH_LEN];
	uint64_t lo = 0, len = size, m = index, k;
	size_t depth = 0;

	if (index >= size)
		return -1;
	/*
	 * RFC 9162 §2.1.3.1, for D[lo:lo+len] and k = s_split(len):
	 *   PATH(m, {d}) = {}
	 *   PATH(m, D) = PATH(m, D[0:k]) : MTH(D[k:n])       if m < k
	 *   PATH(m, D) = PATH(m - k, D[k:n]) : MTH(D[0:k])   if m >= k
	 * Walked top down without recursion; each step halves the height.
	 */
	while (len > 1) {
		if (depth == MERKLE_MAX_LEVELS)
			return -1;	/* cannot happen: each step lowers the height */
		k = s_split(len);
		if (m < k) {
			if (s_range_hash(src, lo + k, len - k, tmp[depth++]) != 0)
				return -1;
			len = k;
		} else {
			if (s_range_hash(src, lo, k, tmp[depth++]) != 0)
				return -1;
			lo += k;
			m -= k;
			len -= k;
		}
	}
	return s_emit_reversed(tmp, depth, path, n);
}

static int
s_consistency(const struct src *src, uint64_t old_size, uint64_t new_size,
    uint8_t (**path)[MERKLE_HASH_LEN], size_t *n)
{
	uint8_t tmp[MERKLE_MAX_PATH][MERKLE_HASH_LEN];
	uint64_t lo = 0, len = new_size, m = old_size, k;
	size_t depth = 0;
	bool b = true;

	if (old_size > new_size)
		return -1;
	if (old_size == 0 || old_size == new_size)
		return 0;	/* nothing to prove: the empty proof */
	/*
	 * RFC 9162 §2.1.4.1: PROOF(m, D[n]) = SUBPROOF(m, D[n], true), with
	 *   SUBPROOF(m, D[m], true)  = {}   (the verifier knows MTH(D[m]))
	 *   SUBPROOF(m, D[m], false) = {MTH(D[m])}
	 *   SUBPROOF(m, D, b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])  m <= k
	 *   SUBPROOF(m, D, b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
	 *                                                             m > k
	 */
	while (m != len) {
		if (depth == MERKLE_MAX_PATH - 1)
			return -1;	/* cannot happen: each step lowers the height */
		k = s_split(len);
		if (m <= k) {
			if (s_range_hash(src, lo + k, len - k, tmp[depth++]) != 0)
				return -1;
			len = k;
		} else {
			if (s_range_hash(src, lo, k, tmp[depth++]) != 0)
				return -1;
			lo += k;
			m -= k;
			len -= k;
			b = false;
		}
	}
	if (!b && s_range_hash(src, lo, len, tmp[depth++]) != 0)
		return -1;
	return s_emit_reversed(tmp, depth, path, n);
}

int
merkle_inclusion_proof(merkle_t *self, uint64_t index, uint64_t size,
    uint8_t (**path)[MERKLE_HASH_LEN], size_t *n)
{
	struct src src = { s_mem_get, self, self->ctx };

	*path = NULL;
	*n = 0;
	if (size > self->size)
		return -1;
	return s_inclusion(&src, index, size, path, n);
}

int
merkle_consistency_proof(merkle_t *self, uint64_t old_size,
    uint64_t new_size, uint8_t (**path)[MERKLE_HASH_LEN], size_t *n)
{
	struct src src = { s_mem_get, self, self->ctx };

	*path = NULL;
	*n = 0;
	if (new_size > self->size)
		return -1;
	return s_consistency(&src, old_size, new_size, path, n);
}

/* The *_by forms: the same walks, with a context of their own. */
int
merkle_root_by(merkle_subtree_fn get, void *arg, uint64_t size,
    uint8_t out[MERKLE_HASH_LEN])
{
	struct src src = { get, arg, s_ctx_new() };
	int rc = -1;

	if (src.ctx != NULL)
		rc = s_root(&src, size, out);
	EVP_MD_CTX_free(src.ctx);
	return rc;
}

int
merkle_inclusion_proof_by(merkle_subtree_fn get, void *arg, uint64_t index,
    uint64_t size, uint8_t (**path)[MERKLE_HASH_LEN], size_t *n)
{
	struct src src = { get, arg, s_ctx_new() };
	int rc = -1;

	*path = NULL;
	*n = 0;
	if (src.ctx != NULL)
		rc = s_inclusion(&src, index, size, path, n);
	EVP_MD_CTX_free(src.ctx);
	return rc;
}

int
merkle_consistency_proof_by(merkle_subtree_fn get, void *arg,
    uint64_t old_size, uint64_t new_size, uint8_t (**path)[MERKLE_HASH_LEN],
    size_t *n)
{
	struct src src = { get, arg, s_ctx_new() };
	int rc = -1;

	*path = NULL;
	*n = 0;
	if (src.ctx != NULL)
		rc = s_consistency(&src, old_size, new_size, path, n);
	EVP_MD_CTX_free(src.ctx);
	return rc;
}

/*
 * The frontier.  node[h], for each set bit h of size, is the perfect
 * subtree over leaves [(size >> h) - 1) << h, (size >> h) << h): the
 * right edge, one subtree per bit, as s_range_hash folds them.  Appending
 * adds 1 to size: the carry merges the subtrees of the set low bits.
 */
void
merkle_frontier_init(merkle_frontier_t *f)
{
	memset(f, 0, sizeof(*f));
}

int
merkle_frontier_append(merkle_frontier_t *f,
    const uint8_t leaf_hash[MERKLE_HASH_LEN], merkle_node_fn done, void *arg)
{
	uint8_t node[MERKLE_HASH_LEN];
	EVP_MD_CTX *ctx = NULL;
	uint64_t n;
	unsigned h;
	int rc = -1;

	if (f->size == UINT64_MAX || (ctx = s_ctx_new()) == NULL)
		goto out;
	n = f->size + 1;
	memcpy(node, leaf_hash, MERKLE_HASH_LEN);
	/* Leaf n - 1 completes the subtree over [n - 2^h, n) at each height
	 * h = 0..ctz(n); all are reported before anything changes, so a
	 * failing callback leaves the frontier as it was. */
	for (h = 0;; h++) {
		if (done != NULL && done(arg, h, (n >> h) - 1, node) != 0)
			goto out;
		if (((f->size >> h) & 1) == 0)
			break;
		if (s_node(ctx, f->node[h], node, node) != 0)
			goto out;
	}
	memcpy(f->node[h], node, MERKLE_HASH_LEN);
	f->size = n;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
merkle_frontier_subtree(const merkle_frontier_t *f, unsigned height,
    uint64_t index, uint8_t out[MERKLE_HASH_LEN])
{
	if (height >= MERKLE_MAX_LEVELS || ((f->size >> height) & 1) == 0 ||
	    index != (f->size >> height) - 1)
		return -1;
	memcpy(out, f->node[height], MERKLE_HASH_LEN);
	return 0;
}

static int
s_frontier_get(void *arg, unsigned height, uint64_t index,
    uint8_t out[MERKLE_HASH_LEN])
{
	return merkle_frontier_subtree(arg, height, index, out);
}

int
merkle_frontier_root(const merkle_frontier_t *f, uint8_t out[MERKLE_HASH_LEN])
{
	return merkle_root_by(s_frontier_get, (void *)f, f->size, out);
}

/*
 * RFC 9162 §2.1.3.2 step 4.b.ii (and §2.1.4.2 step 6.b.iii): when fn == sn
 * and fn is even, the node is the last on its level with no right sibling;
 * MTH carries it up unchanged until it becomes a right child.  Skip those
 * levels, "until either LSB(fn) is set or fn is 0".  Without this step a
 * valid proof for a leaf on the right edge of an unbalanced tree is
 * rejected; the fn == 0 stop keeps the loop finite.
 */
static void
s_skip_promotions(uint64_t *fn, uint64_t *sn)
{
	while ((*fn & 1) == 0 && *fn != 0) {
		*fn >>= 1;
		*sn >>= 1;
	}
}

/* Does step i of this verification start where the memo's did, with the
 * same path from there on?  Then it ends where the memo's ended. */
static bool
s_memo_joins(const merkle_memo_t *m, size_t i, uint64_t fn, uint64_t sn,
    const uint8_t r[MERKLE_HASH_LEN], const uint8_t (*path)[MERKLE_HASH_LEN],
    size_t n)
{
	return m->fn[i] == fn && m->sn[i] == sn &&
	    memcmp(m->r[i], r, MERKLE_HASH_LEN) == 0 &&
	    memcmp(m->path[i], path[i], (n - i) * MERKLE_HASH_LEN) == 0;
}

int
merkle_verify_inclusion_memo(merkle_memo_t *memo,
    const uint8_t leaf[MERKLE_HASH_LEN], uint64_t index, uint64_t size,
    const uint8_t (*path)[MERKLE_HASH_LEN], size_t n,
    const uint8_t root[MERKLE_HASH_LEN])
{
	merkle_memo_t *m = memo;
	uint8_t r[MERKLE_HASH_LEN];
	EVP_MD_CTX *ctx = NULL;
	uint64_t fn, sn;
	bool join;
	size_t i;
	int rc = -1;

	/* 1. If leaf_index >= tree_size, fail (this covers size 0). */
	if (index >= size || (n > 0 && path == NULL))
		goto out;
	/* a longer path runs past the root (4.a) before it ends: no memo */
	if (n > MERKLE_MEMO_STEPS)
		m = NULL;
	join = m != NULL && m->valid && m->size == size && m->n == n &&
	    memcmp(m->root, root, MERKLE_HASH_LEN) == 0;
	if (m != NULL)
		m->valid = false;   /* rewritten below, valid again if proved */
	if ((ctx = s_ctx_new()) == NULL)
		goto out;
	/* 2. Set fn to leaf_index and sn to tree_size - 1.  3. Set r to hash. */
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, MERKLE_HASH_LEN);
	/* 4. For each value p in the inclusion_path array: */
	for (i = 0; i < n; i++) {
		if (join && s_memo_joins(m, i, fn, sn, r, path, n)) {
			/* the memo's steps i..n, proved; with this leaf's
			 * steps before i it is now this leaf's proof */
			memcpy(m->path, path, i * MERKLE_HASH_LEN);
			m->valid = true;
			rc = 0;
			goto out;
		}
		if (m != NULL) {
			m->fn[i] = fn;
			m->sn[i] = sn;
			memcpy(m->r[i], r, MERKLE_HASH_LEN);
		}
		/* a. If sn is 0, fail: more path than tree height. */
		if (sn == 0)
			goto out;
		/* b. If LSB(fn) is set, or fn == sn, p is a left sibling: */
		if ((fn & 1) == 1 || fn == sn) {
			/* i. Set r to HASH(0x01 || p || r). */
			if (s_node(ctx, path[i], r, r) != 0)
				goto out;
			/* ii. If LSB(fn) is not set, skip promotions. */
			s_skip_promotions(&fn, &sn);
		} else if (s_node(ctx, r, path[i], r) != 0) {
			goto out;	/* otherwise: r = HASH(0x01 || r || p) */
		}
		/* c. Right-shift both fn and sn one time. */
		fn >>= 1;
		sn >>= 1;
	}
	/* 5. Prove only if sn is 0 (path reached the root) and r == root. */
	if (sn != 0 || CRYPTO_memcmp(r, root, MERKLE_HASH_LEN) != 0)
		goto out;
	if (m != NULL) {
		m->size = size;
		m->n = n;
		memcpy(m->root, root, MERKLE_HASH_LEN);
		if (n > 0)
			memcpy(m->path, path, n * MERKLE_HASH_LEN);
		m->valid = true;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
merkle_verify_inclusion(const uint8_t leaf[MERKLE_HASH_LEN], uint64_t index,
    uint64_t size, const uint8_t (*path)[MERKLE_HASH_LEN], size_t n,
    const uint8_t root[MERKLE_HASH_LEN])
{
	return merkle_verify_inclusion_memo(NULL, leaf, index, size, path, n,
	    root);
}

/*
 * RFC 9162 §2.1.4.2 steps 6-7, from fr = sr = seed and path[i..n).
 * OUT: fr, sr.  -1 if the path runs past the root (6.a) or stops short of
 * it (sn != 0 at 7): the whole path must be consumed, exactly (the bug fixed
 * in hash-tree 0.1.1 was accepting a proof that stopped short).
 */
static int
s_consistency_walk(EVP_MD_CTX *ctx, uint64_t fn, uint64_t sn,
    const uint8_t (*path)[MERKLE_HASH_LEN], size_t i, size_t n,
    uint8_t fr[MERKLE_HASH_LEN], uint8_t sr[MERKLE_HASH_LEN])
{
	/* 6. For each subsequent value c in the consistency_path array: */
	for (; i < n; i++) {
		/* a. If sn is 0, stop and fail. */
		if (sn == 0)
			return -1;
		/* b. If LSB(fn) is set, or fn == sn: c is a left sibling, of
		 * a node in both trees. */
		if ((fn & 1) == 1 || fn == sn) {
			/* i. fr = HASH(0x01 || c || fr); ii. sr likewise. */
			if (s_node(ctx, path[i], fr, fr) != 0 ||
			    s_node(ctx, path[i], sr, sr) != 0)
				return -1;
			/* iii. If LSB(fn) is not set, skip promotions. */
			s_skip_promotions(&fn, &sn);
		} else if (s_node(ctx, sr, path[i], sr) != 0) {
			/* Otherwise c is new: sr = HASH(0x01 || sr || c). */
			return -1;
		}
		/* c. Right-shift both fn and sn one time. */
		fn >>= 1;
		sn >>= 1;
	}
	/* 7. (part) sn must be 0. */
	return sn == 0 ? 0 : -1;
}

/* The cases RFC 9162 leaves outside its algorithm; see merkle.h. */
static int
s_consistency_trivial(uint64_t old_size, uint64_t new_size,
    const uint8_t old_root[MERKLE_HASH_LEN],
    const uint8_t new_root[MERKLE_HASH_LEN], size_t n)
{
	uint8_t empty[MERKLE_HASH_LEN];

	if (n != 0)
		return -1;
	if (old_size == new_size)
		return CRYPTO_memcmp(old_root, new_root, MERKLE_HASH_LEN) == 0 ?
		    0 : -1;
	if (merkle_empty_root(empty) != 0)
		return -1;
	return CRYPTO_memcmp(old_root, empty, MERKLE_HASH_LEN) == 0 ? 0 : -1;
}

int
merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
    const uint8_t old_root[MERKLE_HASH_LEN],
    const uint8_t new_root[MERKLE_HASH_LEN],
    const uint8_t (*path)[MERKLE_HASH_LEN], size_t n)
{
	uint8_t fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
	EVP_MD_CTX *ctx = NULL;
	uint64_t fn, sn;
	bool pow2;
	int rc = -1;

	if (old_size > new_size || (n > 0 && path == NULL))
		goto out;
	if (old_size == 0 || old_size == new_size) {
		rc = s_consistency_trivial(old_size, new_size, old_root,
		    new_root, n);
		goto out;
	}
	/* 1. If consistency_path is an empty array, fail. */
	if (n == 0 || (ctx = s_ctx_new()) == NULL)
		goto out;
	/* 2. If first is an exact power of 2, prepend first_hash: the old tree
	 * is then a perfect subtree of the new one, which PROOF leaves out. */
	pow2 = (old_size & (old_size - 1)) == 0;
	/* 3. Set fn to first - 1 and sn to second - 1. */
	fn = old_size - 1;
	sn = new_size - 1;
	/* 4. If LSB(fn) is set, right-shift both until it is not: start at the
	 * largest perfect subtree that ends the old tree (the proof's seed). */
	while ((fn & 1) == 1) {
		fn >>= 1;
		sn >>= 1;
	}
	/* 5. Set both fr and sr to the first value of the (prepended) path. */
	memcpy(fr, pow2 ? old_root : path[0], MERKLE_HASH_LEN);
	memcpy(sr, fr, MERKLE_HASH_LEN);
	/* 6, 7. Walk the rest; then fr must be first_hash, sr second_hash. */
	if (s_consistency_walk(ctx, fn, sn, path, pow2 ? 0 : 1, n, fr, sr) != 0 ||
	    CRYPTO_memcmp(fr, old_root, MERKLE_HASH_LEN) != 0 ||
	    CRYPTO_memcmp(sr, new_root, MERKLE_HASH_LEN) != 0)
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}
