/*
 * merkle.h: the RFC 9162 (Certificate Transparency v2, §2.1) Merkle tree
 * behind the tamper-evident audit log, with SHA-256:
 *
 *   leaf hash  = SHA-256(0x00 || entry)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256("")
 *   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of
 *                two smaller than n
 *
 * Three parts:
 * 1. merkle_leaf_hash / merkle_node_hash / merkle_empty_root: the hashing
 *    itself, for callers that hash entries before appending them.
 * 2. merkle_t: an append-only in-memory tree of leaf hashes.  It owns a
 *    copy of every leaf hash and of every complete (perfect) subtree hash,
 *    about 64 bytes per leaf.  The offline audit tools build it from an
 *    export (the daemon keeps a frontier, 4.).  It produces roots for the
 *    current or any older size, and the
 *    inclusion and consistency proofs of RFC 9162 §2.1.3.1 / §2.1.4.1.
 * 3. merkle_verify_inclusion / merkle_verify_consistency: the auditor's
 *    checks, RFC 9162 §2.1.3.2 / §2.1.4.2.  They need no tree.
 * 4. A tree kept elsewhere (the daemon's database), so that memory does not
 *    grow with the log: merkle_frontier_t holds only the right edge (one
 *    perfect subtree per set bit of the size, at most 64 hashes), appends
 *    and gives the current root; it reports every perfect subtree an
 *    append completes, for the caller to store.  merkle_root_by and the
 *    *_proof_by functions run the same walks as merkle_t's, over perfect
 *    subtree hashes the caller fetches (merkle_subtree_fn), so they give
 *    byte-identical roots and proofs.
 *
 * What a proof does and does not bind: the verifiers bind a proof to
 * (index, size) only through the left/right pattern of the path, so a root
 * is meaningful only together with the size in the same signed tree head.
 * Callers must check the head's signature over (size, root) first.
 *
 * Proof arrays are malloc'd and owned by the caller (free()); an empty proof
 * is returned as *path = NULL, *n = 0.  Every function returns 0 or -1.
 * A merkle_t is not safe for concurrent use, not even for reads: it owns one
 * hashing context.  The verifiers and hash functions are thread-safe.
 */
#ifndef KP_MERKLE_H
#define KP_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN 32

typedef struct merkle merkle_t;

/* OUT: out = SHA-256(0x00 || entry[0..len)).  entry may be NULL if len 0. */
int merkle_leaf_hash(const uint8_t *entry, size_t len,
    uint8_t out[MERKLE_HASH_LEN]) __attribute__((nonnull(3)));
/* OUT: out = SHA-256(0x01 || l || r).  out may alias l or r. */
int merkle_node_hash(const uint8_t l[MERKLE_HASH_LEN],
    const uint8_t r[MERKLE_HASH_LEN], uint8_t out[MERKLE_HASH_LEN])
    __attribute__((nonnull));
/* OUT: the root of the empty tree, SHA-256(""). */
int merkle_empty_root(uint8_t out[MERKLE_HASH_LEN]) __attribute__((nonnull));

/* A new empty tree, or NULL (out of memory, no SHA-256 in OpenSSL). */
merkle_t *merkle_new(void);
/* Frees the tree and sets *self_p to NULL; accepts NULL and *self_p NULL. */
void merkle_destroy(merkle_t **self_p);

/*
 * Append one leaf hash (already merkle_leaf_hash'd; the tree copies it).
 * Atomic: on -1 (out of memory) the tree is unchanged.
 * Cost: amortised O(1) hashes and copies, worst case O(log n).
 */
int merkle_append(merkle_t *self, const uint8_t leaf_hash[MERKLE_HASH_LEN])
    __attribute__((nonnull, warn_unused_result));
/* Number of leaves appended so far. */
uint64_t merkle_size(const merkle_t *self) __attribute__((nonnull));

/*
 * OUT: out = MTH of the first `size` leaves (size 0: SHA-256("")), for any
 * size <= merkle_size(): old tree heads stay reproducible.
 * -1 if size > merkle_size().  Cost: popcount(size) - 1 hashes.
 */
int merkle_root(merkle_t *self, uint64_t size, uint8_t out[MERKLE_HASH_LEN])
    __attribute__((nonnull, warn_unused_result));

/*
 * The inclusion proof PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), ordered
 * from the leaf's sibling up to the root's child.
 * OUT: *path (malloc'd, caller frees; NULL when *n is 0), *n elements.
 * -1 if index >= size, size > merkle_size(), or out of memory.
 * Cost: O(log size) hashes (one right-edge subtree hash, the rest cached).
 */
int merkle_inclusion_proof(merkle_t *self, uint64_t index, uint64_t size,
    uint8_t (**path)[MERKLE_HASH_LEN], size_t *n)
    __attribute__((nonnull, warn_unused_result));

/*
 * The consistency proof PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1).
 * old_size == new_size and old_size == 0 give the empty proof: there is
 * nothing to prove (see merkle_verify_consistency).
 * OUT: *path (malloc'd, caller frees; NULL when *n is 0), *n elements.
 * -1 if old_size > new_size, new_size > merkle_size(), or out of memory.
 * Cost: O(log new_size) hashes.
 */
int merkle_consistency_proof(merkle_t *self, uint64_t old_size,
    uint64_t new_size, uint8_t (**path)[MERKLE_HASH_LEN], size_t *n)
    __attribute__((nonnull, warn_unused_result));

/*
 * RFC 9162 §2.1.3.2: does `path` prove that `leaf` (a leaf hash) is leaf
 * number `index` of the tree of `size` leaves whose root is `root`?
 * 0 if so; -1 if not, including index >= size (so size 0 always fails), a
 * path too short or too long, or a hashing failure.  path may be NULL if n
 * is 0.  Work is bounded by 64 hashes whatever n is.
 */
int merkle_verify_inclusion(const uint8_t leaf[MERKLE_HASH_LEN],
    uint64_t index, uint64_t size, const uint8_t (*path)[MERKLE_HASH_LEN],
    size_t n, const uint8_t root[MERKLE_HASH_LEN])
    __attribute__((nonnull(1, 6), warn_unused_result));

/*
 * The steps of the last inclusion merkle_verify_inclusion_memo proved, so
 * the next one, of another leaf of the same tree, stops where its path
 * joins this one: from there both compute the same hashes from the same
 * values (the rest of the path must be equal too), so the result is the
 * one already proved.  Leaves verified in order (a batch's receipts) then
 * cost about 2 hashes each instead of log2(size).  Zero it before use; it
 * holds only public values.  One per thread (not locked).
 */
#define MERKLE_MEMO_STEPS 64
typedef struct merkle_memo {
	bool valid;
	uint64_t size;
	size_t n;
	uint8_t root[MERKLE_HASH_LEN];
	uint8_t path[MERKLE_MEMO_STEPS][MERKLE_HASH_LEN];
	uint64_t fn[MERKLE_MEMO_STEPS], sn[MERKLE_MEMO_STEPS]; /* before step i */
	uint8_t r[MERKLE_MEMO_STEPS][MERKLE_HASH_LEN];         /* before step i */
} merkle_memo_t;

/* merkle_verify_inclusion with a memo (NULL: none); the same answer for
 * every input, at less cost when the memo holds a path of the same tree. */
int merkle_verify_inclusion_memo(merkle_memo_t *memo,
    const uint8_t leaf[MERKLE_HASH_LEN], uint64_t index, uint64_t size,
    const uint8_t (*path)[MERKLE_HASH_LEN], size_t n,
    const uint8_t root[MERKLE_HASH_LEN])
    __attribute__((nonnull(2, 7), warn_unused_result));

/*
 * RFC 9162 §2.1.4.2: does `path` prove that the tree (new_size, new_root)
 * extends the tree (old_size, old_root)?  0 if so, -1 if not.
 * The trivial cases, where the RFC algorithm itself does not apply, take
 * an empty path only (as sigsum does):
 * - old_size == new_size: consistent iff old_root == new_root.
 * - old_size == 0: consistent iff old_root == SHA-256("") (any tree extends
 *   the empty tree; new_root cannot be checked without the leaves).
 * Otherwise 0 < old_size < new_size is required, and the whole path must be
 * consumed with sn ending at 0.  path may be NULL if n is 0.
 */
int merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
    const uint8_t old_root[MERKLE_HASH_LEN],
    const uint8_t new_root[MERKLE_HASH_LEN],
    const uint8_t (*path)[MERKLE_HASH_LEN], size_t n)
    __attribute__((nonnull(3, 4), warn_unused_result));

/*
 * A source of perfect-subtree hashes.  OUT: out = the hash of the perfect
 * subtree of height `height` over leaves [index << height, (index + 1) <<
 * height) (height 0: leaf hash number index).  0, or -1 if it cannot
 * (unknown, unreadable): the walk asking then fails with -1.
 */
typedef int (*merkle_subtree_fn)(void *arg, unsigned height, uint64_t index,
    uint8_t out[MERKLE_HASH_LEN]);

/* merkle_root, merkle_inclusion_proof and merkle_consistency_proof over a
 * source: same results, same ownership of *path.  The caller ensures the
 * sizes asked for are within what the source holds (else -1 from get). */
int merkle_root_by(merkle_subtree_fn get, void *arg, uint64_t size,
    uint8_t out[MERKLE_HASH_LEN])
    __attribute__((nonnull(1, 4), warn_unused_result));
int merkle_inclusion_proof_by(merkle_subtree_fn get, void *arg,
    uint64_t index, uint64_t size, uint8_t (**path)[MERKLE_HASH_LEN],
    size_t *n) __attribute__((nonnull(1, 5, 6), warn_unused_result));
int merkle_consistency_proof_by(merkle_subtree_fn get, void *arg,
    uint64_t old_size, uint64_t new_size, uint8_t (**path)[MERKLE_HASH_LEN],
    size_t *n) __attribute__((nonnull(1, 5, 6), warn_unused_result));

/*
 * The right edge of a tree of `size` leaves: node[h] is valid for each set
 * bit h of size (the perfect subtree ending the leaves that bit covers).
 * A plain value (2 KiB): copy it to keep a state to return to.
 */
typedef struct merkle_frontier {
	uint64_t size;
	uint8_t node[64][MERKLE_HASH_LEN];
} merkle_frontier_t;

/* Called for every perfect subtree an append completes (height 0: the leaf
 * itself, then each merge), lowest first; non-zero stops the append. */
typedef int (*merkle_node_fn)(void *arg, unsigned height, uint64_t index,
    const uint8_t hash[MERKLE_HASH_LEN]);

/* The empty frontier (size 0). */
void merkle_frontier_init(merkle_frontier_t *f) __attribute__((nonnull));
/*
 * Append one leaf hash; done (may be NULL) sees each completed subtree.
 * Atomic: on -1 (hashing failed, done refused, size at its limit) *f is
 * unchanged.  Cost: ctz(size + 1) + 1 hashes, no allocation but a context.
 */
int merkle_frontier_append(merkle_frontier_t *f,
    const uint8_t leaf_hash[MERKLE_HASH_LEN], merkle_node_fn done, void *arg)
    __attribute__((nonnull(1, 2), warn_unused_result));
/* OUT: the root of the frontier's whole tree (size 0: SHA-256("")). */
int merkle_frontier_root(const merkle_frontier_t *f,
    uint8_t out[MERKLE_HASH_LEN]) __attribute__((nonnull, warn_unused_result));
/* A merkle_subtree_fn-shaped look-up of the subtrees the frontier holds: 0
 * with out if (height, index) is one of them, else -1. */
int merkle_frontier_subtree(const merkle_frontier_t *f, unsigned height,
    uint64_t index, uint8_t out[MERKLE_HASH_LEN])
    __attribute__((nonnull, warn_unused_result));

#endif
