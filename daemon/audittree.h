/*
 * audittree.h: the audit log's Merkle tree (RFC 9162, lib/merkle.h) kept in
 * the store, so that the daemon's memory does not grow with the log.
 *
 * In memory: a merkle_frontier_t (the right edge, at most 64 hashes), held
 * by the caller (ledger.c).  On disk: the leaves are the audit entries
 * (table audit; a leaf is recomputed from the entry's bytes, as the
 * start-up check does, so a damaged entry accepted by the operator gives
 * the same tree everywhere), and every perfect subtree of height
 * AUDITTREE_NODE_MIN and up is a row of audit_nodes, written in the same
 * transaction as the entry that completes it: one row per 128 entries.
 * A subtree below that height is folded from its at most 128 entries.
 * Roots and proofs run lib/merkle.c's walks over these, so they are
 * byte-identical to an in-memory merkle_t over the same leaves.
 *
 * Never: keeps a node list in memory, or answers for a size beyond the
 * frontier it is given (the committed tree).
 */
#ifndef KP_AUDITTREE_H
#define KP_AUDITTREE_H

#include <stdbool.h>
#include <stdint.h>

#include "kperr.h"
#include "merkle.h"
#include "store.h"

#define AUDITTREE_NODE_MIN 8

/* Append leaf to *work and store the nodes it completes (inside the
 * caller's transaction).  On -1 *work is unchanged. */
int audittree_append(store_t *s, merkle_frontier_t *work,
    const uint8_t leaf[32], kp_err_t *err) __attribute__((warn_unused_result));

/* OUT: root of the first `size` leaves of the tree whose right edge is f
 * (size <= f->size). */
int audittree_root(store_t *s, const merkle_frontier_t *f, uint64_t size,
    uint8_t out[32]) __attribute__((warn_unused_result));
/* RFC 9162 proofs within the tree of f (sizes <= f->size); *path as
 * merkle_inclusion_proof / merkle_consistency_proof give it. */
int audittree_inclusion(store_t *s, const merkle_frontier_t *f,
    uint64_t index, uint64_t size, uint8_t (**path)[32], size_t *n)
    __attribute__((warn_unused_result));
int audittree_consistency(store_t *s, const merkle_frontier_t *f,
    uint64_t old_size, uint64_t new_size, uint8_t (**path)[32], size_t *n)
    __attribute__((warn_unused_result));

/*
 * The start-up rebuild: feed every leaf in order (audittree_check_leaf),
 * then audittree_check_end.  It rebuilds the frontier, compares every
 * stored node with the one the leaves give, adds missing nodes (a log
 * written by a daemon without the node table) and counts the nodes that
 * differ or lie beyond the log.  With repair, those are replaced or
 * dropped.  Run it inside one transaction.
 */
struct audittree_check {
	merkle_frontier_t f;
	bool repair;                 /* replace damaged nodes (operator's) */
	uint64_t added;              /* missing nodes written */
	uint64_t bad;                /* damaged nodes (differ or beyond) */
	unsigned first_bad_height;
	uint64_t first_bad_index;    /* UINT64_MAX: a node beyond the log */
};
void audittree_check_init(struct audittree_check *c, bool repair);
int audittree_check_leaf(store_t *s, struct audittree_check *c,
    const uint8_t leaf[32], kp_err_t *err) __attribute__((warn_unused_result));
int audittree_check_end(store_t *s, struct audittree_check *c,
    kp_err_t *err) __attribute__((warn_unused_result));

#endif
