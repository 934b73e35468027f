/*
 * batchbuf.c: a drain's batch array, kept zeroed between drains (see
 * batchbuf.h).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "batchbuf.h"

void *
batchbuf_get(batchbuf_t *b, size_t cap, size_t size)
{
	if (b->v != NULL && b->cap == cap && b->size == size)
		return b->v;
	batchbuf_free(b);
	if ((b->v = calloc(cap, size)) == NULL)
		return NULL;
	b->cap = cap;
	b->size = size;
	return b->v;
}

void
batchbuf_done(batchbuf_t *b, size_t used)
{
	if (b->v == NULL)
		return;
	if (used > b->cap)
		used = b->cap;
	sodium_memzero(b->v, used * b->size);
}

void
batchbuf_free(batchbuf_t *b)
{
	if (b->v != NULL)
		sodium_memzero(b->v, b->cap * b->size);
	free(b->v);
	b->v = NULL;
	b->cap = b->size = 0;
}
