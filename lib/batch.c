/*
 * batch.c: the hash tree of a batch signature and the verifier's cache.
 *
 * Owns: the node hashes of one batch tree, the keys of one cache.  Never
 * signs or verifies a signature, never reads a certificate (the caller
 * holds the keys), never knows a daemon.  The hashing is lib/merkle.c's
 * RFC 9162 leaf and node hash, so an auditor's inclusion verifier checks
 * a batch path unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "merkle.h"

/*
 * Level 0 holds the leaf hashes; level k+1 pairs the nodes of level k and
 * promotes an odd last node unchanged.  This bottom-up form is the same
 * tree as RFC 9162's top-down split at the largest power of two below n
 * (tests/test_batch.c checks it against lib/merkle.c for every small n).
 */
struct batch_tree {
	size_t n;                          /* leaves */
	size_t levels;                     /* including the root's */
	size_t off[BATCH_PATH_MAX + 2];    /* first node of each level */
	size_t len[BATCH_PATH_MAX + 2];    /* nodes in each level */
	uint8_t (*node)[BATCH_HASH_LEN];   /* all levels, leaves first */
};

static size_t
s_node_count(size_t n, size_t *levels)
{
	size_t total = 0;

	*levels = 0;
	for (;;) {
		total += n;
		(*levels)++;
		if (n == 1)
			return total;
		n = (n + 1) / 2;
	}
}

static int
s_build_level(batch_tree_t *t, size_t l)
{
	const uint8_t (*below)[BATCH_HASH_LEN] = t->node + t->off[l - 1];
	uint8_t (*here)[BATCH_HASH_LEN] = t->node + t->off[l];
	size_t i, m = t->len[l - 1];

	for (i = 0; i + 1 < m; i += 2)
		if (merkle_node_hash(below[i], below[i + 1], here[i / 2]) != 0)
			return -1;
	if (m % 2 == 1)
		memcpy(here[m / 2], below[m - 1], BATCH_HASH_LEN);
	return 0;
}

int
batch_tree_new(const uint8_t (*digests)[BATCH_HASH_LEN], size_t n,
    batch_tree_t **tree)
{
	batch_tree_t *t;
	size_t i, l, total;

	*tree = NULL;
	if (n == 0 || n > BATCH_MAX_SIZE || (t = calloc(1, sizeof(*t))) ==
	    NULL)
		return -1;
	total = s_node_count(n, &t->levels);
	t->n = n;
	if ((t->node = malloc(total * BATCH_HASH_LEN)) == NULL)
		goto fail;
	t->len[0] = n;
	for (l = 1; l < t->levels; l++) {
		t->off[l] = t->off[l - 1] + t->len[l - 1];
		t->len[l] = (t->len[l - 1] + 1) / 2;
	}
	for (i = 0; i < n; i++)
		if (merkle_leaf_hash(digests[i], BATCH_HASH_LEN,
		    t->node[i]) != 0)
			goto fail;
	for (l = 1; l < t->levels; l++)
		if (s_build_level(t, l) != 0)
			goto fail;
	*tree = t;
	return 0;
fail:
	batch_tree_destroy(&t);
	return -1;
}

void
batch_tree_destroy(batch_tree_t **tree_p)
{
	if (tree_p == NULL || *tree_p == NULL)
		return;
	free((*tree_p)->node);
	free(*tree_p);
	*tree_p = NULL;
}

size_t batch_tree_size(const batch_tree_t *t) { return t->n; }

void
batch_tree_root(const batch_tree_t *t, uint8_t root[BATCH_HASH_LEN])
{
	memcpy(root, t->node[t->off[t->levels - 1]], BATCH_HASH_LEN);
}

int
batch_tree_path(const batch_tree_t *t, size_t index,
    uint8_t path[BATCH_PATH_MAX][BATCH_HASH_LEN], size_t *len)
{
	size_t l, sib;

	*len = 0;
	if (index >= t->n)
		return -1;
	for (l = 0; l + 1 < t->levels; l++, index /= 2) {
		sib = index ^ 1;
		if (sib < t->len[l])  /* else promoted: no sibling here */
			memcpy(path[(*len)++], t->node[t->off[l] + sib],
			    BATCH_HASH_LEN);
	}
	return 0;
}

static int
s_verify_path(merkle_memo_t *memo, const uint8_t digest[BATCH_HASH_LEN],
    uint32_t index, uint32_t size, const uint8_t (*path)[BATCH_HASH_LEN],
    size_t len, const uint8_t root[BATCH_HASH_LEN])
{
	uint8_t leaf[BATCH_HASH_LEN];

	if (size == 0 || size > BATCH_MAX_SIZE || index >= size ||
	    len > BATCH_PATH_MAX ||
	    merkle_leaf_hash(digest, BATCH_HASH_LEN, leaf) != 0)
		return -1;
	return merkle_verify_inclusion_memo(memo, leaf, index, size, path, len,
	    root);
}

int
batch_verify_path(const uint8_t digest[BATCH_HASH_LEN], uint32_t index,
    uint32_t size, const uint8_t (*path)[BATCH_HASH_LEN], size_t len,
    const uint8_t root[BATCH_HASH_LEN])
{
	return s_verify_path(NULL, digest, index, size, path, len, root);
}

static void
s_u32be(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

int
batch_tbs(const char *label, uint32_t size,
    const uint8_t root[BATCH_HASH_LEN], const char *signer_oin,
    const char *peer_oin, uint8_t out[BATCH_TBS_MAX], size_t *len)
{
	size_t ll = strlen(label), n = 0;

	if (ll > 26 || strlen(signer_oin) != 20 || strlen(peer_oin) != 20)
		return -1;
	memcpy(out, label, ll);
	n = ll;
	s_u32be(out + n, size);
	n += 4;
	memcpy(out + n, root, BATCH_HASH_LEN);
	n += BATCH_HASH_LEN;
	memcpy(out + n, signer_oin, 20);
	memcpy(out + n + 20, peer_oin, 20);
	*len = n + 40;
	return 0;
}

/* ---- the verifier's cache ------------------------------------------------ */

/*
 * A hash table of chains (bucket heads and links are entry index + 1, 0 is
 * none) over a fixed array of entries that also form the LRU list.  Keys
 * are BLAKE2b outputs, so their first bytes are a good enough hash.
 */
struct centry {
	uint8_t key[BATCH_HASH_LEN];
	uint32_t prev, next;    /* LRU list, most recent at head */
	uint32_t chain;         /* next in the bucket */
};

struct batch_cache {
	size_t cap, count, nbuckets;
	uint32_t head, tail;    /* LRU ends (index + 1) */
	uint32_t *bucket;
	struct centry *e;
	uint64_t hits, misses;
	merkle_memo_t memo;     /* the last path proved */
};

batch_cache_t *
batch_cache_new(size_t capacity)
{
	batch_cache_t *c;

	if (capacity == 0 || capacity > UINT32_MAX / 4 ||
	    (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->cap = capacity;
	for (c->nbuckets = 16; c->nbuckets < 2 * capacity; c->nbuckets *= 2)
		;
	c->bucket = calloc(c->nbuckets, sizeof(*c->bucket));
	c->e = calloc(capacity, sizeof(*c->e));
	if (c->bucket == NULL || c->e == NULL)
		batch_cache_destroy(&c);
	return c;
}

int
batch_verify_path_cached(batch_cache_t *c,
    const uint8_t digest[BATCH_HASH_LEN], uint32_t index, uint32_t size,
    const uint8_t (*path)[BATCH_HASH_LEN], size_t len,
    const uint8_t root[BATCH_HASH_LEN])
{
	return s_verify_path(c != NULL ? &c->memo : NULL, digest, index, size,
	    path, len, root);
}

void
batch_cache_destroy(batch_cache_t **cache_p)
{
	if (cache_p == NULL || *cache_p == NULL)
		return;
	free((*cache_p)->bucket);
	free((*cache_p)->e);
	free(*cache_p);
	*cache_p = NULL;
}

static size_t
s_bucket(const batch_cache_t *c, const uint8_t key[BATCH_HASH_LEN])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)(h & (c->nbuckets - 1));
}

static void
s_unlink(batch_cache_t *c, uint32_t i)
{
	struct centry *x = &c->e[i - 1];

	if (x->prev != 0)
		c->e[x->prev - 1].next = x->next;
	else
		c->head = x->next;
	if (x->next != 0)
		c->e[x->next - 1].prev = x->prev;
	else
		c->tail = x->prev;
	x->prev = x->next = 0;
}

static void
s_push_front(batch_cache_t *c, uint32_t i)
{
	struct centry *x = &c->e[i - 1];

	x->prev = 0;
	x->next = c->head;
	if (c->head != 0)
		c->e[c->head - 1].prev = i;
	c->head = i;
	if (c->tail == 0)
		c->tail = i;
}

static uint32_t
s_find(const batch_cache_t *c, const uint8_t key[BATCH_HASH_LEN])
{
	uint32_t i = c->bucket[s_bucket(c, key)];

	while (i != 0 && memcmp(c->e[i - 1].key, key, BATCH_HASH_LEN) != 0)
		i = c->e[i - 1].chain;
	return i;
}

/* Take entry i out of its bucket's chain. */
static void
s_unchain(batch_cache_t *c, uint32_t i)
{
	uint32_t *p = &c->bucket[s_bucket(c, c->e[i - 1].key)];

	while (*p != 0 && *p != i)
		p = &c->e[*p - 1].chain;
	if (*p == i)
		*p = c->e[i - 1].chain;
	c->e[i - 1].chain = 0;
}

bool
batch_cache_has(batch_cache_t *c, const uint8_t key[BATCH_HASH_LEN])
{
	uint32_t i = s_find(c, key);

	if (i == 0) {
		c->misses++;
		return false;
	}
	c->hits++;
	s_unlink(c, i);
	s_push_front(c, i);
	return true;
}

void
batch_cache_put(batch_cache_t *c, const uint8_t key[BATCH_HASH_LEN])
{
	uint32_t i = s_find(c, key);
	size_t b;

	if (i != 0) {
		s_unlink(c, i);
		s_push_front(c, i);
		return;
	}
	if (c->count < c->cap) {
		i = (uint32_t)++c->count;
	} else {                       /* full: reuse the least recent */
		i = c->tail;
		s_unlink(c, i);
		s_unchain(c, i);
	}
	memcpy(c->e[i - 1].key, key, BATCH_HASH_LEN);
	b = s_bucket(c, key);
	c->e[i - 1].chain = c->bucket[b];
	c->bucket[b] = i;
	s_push_front(c, i);
}

size_t batch_cache_count(const batch_cache_t *c) { return c->count; }

void
batch_cache_stats(const batch_cache_t *c, uint64_t *hits, uint64_t *misses)
{
	*hits = c->hits;
	*misses = c->misses;
}
