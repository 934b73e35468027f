/*
 * batch.h: batch signatures over a hash tree (docs/PROTOCOL.md §5.6).
 *
 * A sender that seals several envelopes to one recipient at once signs
 * one root instead of every envelope: the leaves are the envelope digests
 * (§5.5), the tree is the RFC 9162 Merkle tree of lib/merkle.h (SHA-256,
 * leaf = SHA-256(0x00 || digest)), and each envelope carries its inclusion
 * path and the signed root, so it still verifies on its own.
 *
 * Three parts:
 * 1. batch_tree_t: the tree over n digests, built bottom-up in O(n)
 *    hashes; gives the root and every leaf's path in O(log n).
 * 2. batch_tbs: the signed bytes BTBS of a root (label, size, root, the two
 *    OINs), shared by signer and verifiers so the layout exists once.
 * 3. batch_cache_t: a bounded LRU set of 32-byte keys, for a receiver to
 *    remember which batch signatures it already verified.  What a key
 *    stands for is the caller's business (lib/envelope.c hashes signer key,
 *    BTBS and signature into it); this module only remembers and forgets.
 *
 * Owns only its own memory.  Never: signs or verifies a signature (that is
 * lib/envelope.c, with the partner's certificate key), or knows a daemon.
 * Not safe for concurrent use; the verifier batch_verify_path is.
 */
#ifndef KP_BATCH_H
#define KP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BATCH_HASH_LEN 32
#define BATCH_MAX_SIZE 65536u     /* leaves per batch: paths of <= 16 */
#define BATCH_PATH_MAX 16
/* label (up to 26 bytes) || u32be(n) || root || 2 OINs of 20 digits */
#define BATCH_TBS_MAX (26 + 4 + BATCH_HASH_LEN + 40)

typedef struct batch_tree batch_tree_t;

/*
 * The tree over digests[0..n) (1 <= n <= BATCH_MAX_SIZE; the tree copies
 * what it needs).  OUT: *tree.  -1: n out of range, out of memory, or
 * hashing failed.
 */
int batch_tree_new(const uint8_t (*digests)[BATCH_HASH_LEN], size_t n,
    batch_tree_t **tree) __attribute__((warn_unused_result));
void batch_tree_destroy(batch_tree_t **tree_p);
size_t batch_tree_size(const batch_tree_t *t);
/* OUT: root = MTH of the leaves (RFC 9162 §2.1.1). */
void batch_tree_root(const batch_tree_t *t, uint8_t root[BATCH_HASH_LEN]);
/*
 * The inclusion path of leaf `index`, leaf sibling first (RFC 9162
 * §2.1.3.1).  OUT: path[0..*len), *len <= BATCH_PATH_MAX.  -1 if index is
 * out of range.
 */
int batch_tree_path(const batch_tree_t *t, size_t index,
    uint8_t path[BATCH_PATH_MAX][BATCH_HASH_LEN], size_t *len);

/*
 * Does path lead from `digest` (an envelope digest, not yet leaf-hashed)
 * at `index` of a tree of `size` leaves to `root`?  0 if so, -1 if not
 * (index >= size, a path of the wrong length or pattern).
 */
int batch_verify_path(const uint8_t digest[BATCH_HASH_LEN], uint32_t index,
    uint32_t size, const uint8_t (*path)[BATCH_HASH_LEN], size_t len,
    const uint8_t root[BATCH_HASH_LEN]) __attribute__((warn_unused_result));

/*
 * BTBS = label || u32be(size) || root || signer_oin || peer_oin
 * (PROTOCOL.md §5.6).  Both OINs must be 20 characters.  OUT: out, *len.
 * -1 if an argument does not fit.
 */
int batch_tbs(const char *label, uint32_t size,
    const uint8_t root[BATCH_HASH_LEN], const char *signer_oin,
    const char *peer_oin, uint8_t out[BATCH_TBS_MAX], size_t *len)
    __attribute__((warn_unused_result));

typedef struct batch_cache batch_cache_t;

/* A cache of at most `capacity` keys (>= 1), or NULL (out of memory). */
batch_cache_t *batch_cache_new(size_t capacity);
void batch_cache_destroy(batch_cache_t **cache_p);
/* Is key remembered?  A hit makes it the most recently used. */
bool batch_cache_has(batch_cache_t *c, const uint8_t key[BATCH_HASH_LEN]);
/* Remember key; when full, the least recently used key is forgotten. */
void batch_cache_put(batch_cache_t *c, const uint8_t key[BATCH_HASH_LEN]);
/* batch_verify_path with the cache's memo of the last path it proved
 * (merkle_verify_inclusion_memo): the same answer, and a batch's other
 * envelopes or receipts cost about 2 hashes each.  c may be NULL. */
int batch_verify_path_cached(batch_cache_t *c,
    const uint8_t digest[BATCH_HASH_LEN], uint32_t index, uint32_t size,
    const uint8_t (*path)[BATCH_HASH_LEN], size_t len,
    const uint8_t root[BATCH_HASH_LEN]) __attribute__((warn_unused_result));
/* Keys held now (<= capacity) and hits/misses since creation. */
size_t batch_cache_count(const batch_cache_t *c);
void batch_cache_stats(const batch_cache_t *c, uint64_t *hits,
    uint64_t *misses);

#endif
