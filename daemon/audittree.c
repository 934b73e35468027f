/*
 * audittree.c: the audit log's Merkle tree over the store (audittree.h).
 *
 * Owns no state: the frontier belongs to the caller, the nodes and leaves
 * to the store.  Never hashes anything itself but through lib/merkle.c, so
 * the tree cannot drift from the one the auditors' tools compute.
 *
 * Why height 8: each row costs an index entry (~45 bytes in a WITHOUT ROWID
 * B-tree appended at its end) per 128 entries, well under a byte per
 * event; a subtree below it is folded from at most 128 entries read by
 * primary key, and one proof needs at most 255 of them (its low siblings
 * all lie in one 256-entry block) — about a millisecond, once per tree
 * head sent to a partner.
 */
#include <string.h>

#include "audittree.h"

/* The source of subtree hashes for lib/merkle.c's walks. */
struct src {
	store_t *s;
	const merkle_frontier_t *f;
	kp_err_t *err;
};

/* Fold the leaves of a small perfect subtree: a frontier over them ends as
 * one node, the subtree's root. */
static int
s_fold_entry(void *arg, uint64_t seq, const uint8_t *entry, size_t len,
    const uint8_t stored_leaf[32])
{
	merkle_frontier_t *f = arg;
	uint8_t leaf[32];

	(void)seq;
	(void)stored_leaf;   /* recomputed, as the start-up check does */
	if (entry == NULL)   /* unreadable: all zeros, as in ledger.c */
		memset(leaf, 0, sizeof(leaf));
	else if (merkle_leaf_hash(entry, len, leaf) != 0)
		return -1;
	return merkle_frontier_append(f, leaf, NULL, NULL);
}

static int
s_get(void *arg, unsigned height, uint64_t index, uint8_t out[32])
{
	struct src *src = arg;
	merkle_frontier_t tmp;
	bool found = false;
	uint64_t n;

	if (height >= 64 || index > (src->f->size >> height))
		return -1;
	if (merkle_frontier_subtree(src->f, height, index, out) == 0)
		return 0;
	if (index >= (src->f->size >> height))
		return -1;           /* not complete in the committed tree */
	if (height >= AUDITTREE_NODE_MIN) {
		if (store_audit_node_get(src->s, height, index, out, &found,
		    src->err) != 0)
			return -1;
		if (!found)
			kp_fail(src->err, KP_ERR_IO, "audit log: tree node "
			    "(height %u, index %llu) missing", height,
			    (unsigned long long)index);
		return found ? 0 : -1;
	}
	n = (uint64_t)1 << height;
	merkle_frontier_init(&tmp);
	if (store_audit_range(src->s, index << height, n, s_fold_entry, &tmp,
	    src->err) != 0)
		return -1;
	return merkle_frontier_root(&tmp, out);
}

int
audittree_root(store_t *s, const merkle_frontier_t *f, uint64_t size,
    uint8_t out[32])
{
	kp_err_t err;
	struct src src = { s, f, &err };

	if (size > f->size)
		return -1;
	if (size == f->size)
		return merkle_frontier_root(f, out);
	return merkle_root_by(s_get, &src, size, out);
}

int
audittree_inclusion(store_t *s, const merkle_frontier_t *f, uint64_t index,
    uint64_t size, uint8_t (**path)[32], size_t *n)
{
	kp_err_t err;
	struct src src = { s, f, &err };

	*path = NULL;
	*n = 0;
	if (size > f->size)
		return -1;
	return merkle_inclusion_proof_by(s_get, &src, index, size, path, n);
}

int
audittree_consistency(store_t *s, const merkle_frontier_t *f,
    uint64_t old_size, uint64_t new_size, uint8_t (**path)[32], size_t *n)
{
	kp_err_t err;
	struct src src = { s, f, &err };

	*path = NULL;
	*n = 0;
	if (new_size > f->size)
		return -1;
	return merkle_consistency_proof_by(s_get, &src, old_size, new_size,
	    path, n);
}

struct put {
	store_t *s;
	kp_err_t *err;
	bool failed;                 /* the store failed (err is set) */
};

static int
s_put(void *arg, unsigned height, uint64_t index, const uint8_t hash[32])
{
	struct put *p = arg;

	if (height < AUDITTREE_NODE_MIN)
		return 0;
	if (store_audit_node_put(p->s, height, index, hash, p->err) != 0) {
		p->failed = true;
		return -1;
	}
	return 0;
}

int
audittree_append(store_t *s, merkle_frontier_t *work, const uint8_t leaf[32],
    kp_err_t *err)
{
	struct put p = { s, err, false };

	if (merkle_frontier_append(work, leaf, s_put, &p) != 0) {
		if (!p.failed)
			kp_fail(err, KP_ERR_IO, "audit log: the tree could not "
			    "be extended (hashing failed)");
		return -1;
	}
	return 0;
}

void
audittree_check_init(struct audittree_check *c, bool repair)
{
	memset(c, 0, sizeof(*c));
	merkle_frontier_init(&c->f);
	c->repair = repair;
}

struct check {
	store_t *s;
	struct audittree_check *c;
	kp_err_t *err;
	bool failed;                 /* the store failed (err is set) */
};

/* A node the leaves give against the stored one: missing is added,
 * different is damage (replaced only with repair). */
static int
s_check_node(void *arg, unsigned height, uint64_t index,
    const uint8_t hash[32])
{
	struct check *k = arg;
	uint8_t stored[32];
	bool found = false;

	if (height < AUDITTREE_NODE_MIN)
		return 0;
	if (store_audit_node_get(k->s, height, index, stored, &found,
	    k->err) != 0) {
		k->failed = true;
		return -1;
	}
	if (found && memcmp(stored, hash, 32) == 0)
		return 0;
	if (!found)
		k->c->added++;
	else if (k->c->bad++ == 0) {
		k->c->first_bad_height = height;
		k->c->first_bad_index = index;
	}
	if (found && !k->c->repair)
		return 0;
	if (store_audit_node_put(k->s, height, index, hash, k->err) != 0) {
		k->failed = true;
		return -1;
	}
	return 0;
}

int
audittree_check_leaf(store_t *s, struct audittree_check *c,
    const uint8_t leaf[32], kp_err_t *err)
{
	struct check k = { s, c, err, false };

	if (merkle_frontier_append(&c->f, leaf, s_check_node, &k) != 0) {
		if (!k.failed)
			kp_fail(err, KP_ERR_IO, "audit log: the tree could not "
			    "be rebuilt");
		return -1;
	}
	return 0;
}

int
audittree_check_end(store_t *s, struct audittree_check *c, kp_err_t *err)
{
	uint64_t beyond = 0;

	if (store_audit_nodes_beyond(s, c->f.size, &beyond, err) != 0)
		return -1;
	if (beyond > 0 && c->bad == 0) {
		c->first_bad_height = 0;
		c->first_bad_index = UINT64_MAX;
	}
	c->bad += beyond;
	if (beyond > 0 && c->repair)
		return store_audit_nodes_drop_beyond(s, c->f.size, err);
	return 0;
}
