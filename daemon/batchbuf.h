/*
 * batchbuf.h: an array of a drain's batch (API requests, arrivals), kept
 * zeroed between drains.
 *
 * Why: apisrv.c and inbound.c took a calloc of batch_max entries (2.9 KB
 * and 1.5 KB each: 1.5 MB and 0.8 MB at 512) for every drain and freed it
 * after; at 1,000 events/s a drain holds one or two, and zeroing the rest
 * was 4.6% of the sender (perf).  Now the array is made once (again when
 * batch_max changes on a reload) and only the entries a drain used are
 * zeroed after it, so every drain still starts from zeroed entries.
 *
 * Owned by the kpd_t field that holds it; one drain at a time (the
 * daemon's one loop).  Holds no secret after batchbuf_done: what a drain
 * wrote into its entries is zeroed.
 */
#ifndef KP_BATCHBUF_H
#define KP_BATCHBUF_H

#include <stddef.h>

typedef struct batchbuf {
	void *v;
	size_t cap;                  /* entries */
	size_t size;                 /* bytes each */
} batchbuf_t;

/* cap zeroed entries of size bytes, or NULL (out of memory). */
void *batchbuf_get(batchbuf_t *b, size_t cap, size_t size);
/* The drain is over: zero its first `used` entries (at most cap). */
void batchbuf_done(batchbuf_t *b, size_t used);
void batchbuf_free(batchbuf_t *b);

#endif
