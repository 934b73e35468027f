/*
 * metrics.h: ketenpostd's metrics in the Prometheus text exposition
 * format, served over HTTP (GET /metrics) on the local endpoint of
 * `[metrics] listen` (off when unset; ketenpostd.conf(5)).
 *
 * Counters are incremented where things happen, one call each
 * (metrics_count); gauges (queue depths, overdue expectations, the last
 * signed head, days until the CRL and certificates expire, link state)
 * are read from the store and the chain files when scraped.
 */
#ifndef KP_METRICS_H
#define KP_METRICS_H

#include <stdint.h>
#include <sys/socket.h>

#include "kperr.h"

typedef struct metrics metrics_t;
struct kpd;

enum metrics_counter {
	KPM_QUEUED,      /* an event accepted from the API: partner, type */
	KPM_SENT,        /* an envelope handed to a link: partner */
	KPM_RETRY,       /* a resend after a receipt timeout: partner */
	KPM_RECEIPT,     /* a receipt for an event sent: partner, reason */
	KPM_RECEIVED,    /* an event accepted into the inbox: partner, type */
	KPM_REFUSED,     /* an event refused: partner, reason */
	KPM_DUPLICATE,   /* an event received again: partner */
	KPM_DEAD,        /* an event expired unreceipted: partner */
	KPM_SIGNATURE,   /* a signature over envelopes sent: partner */
	KPM_PACK,        /* a pack of envelopes sent: partner */
	KPM_COUNT
};

/* An empty set of counters, no endpoint.  NULL on out of memory. */
metrics_t *metrics_new(void);
void metrics_destroy(metrics_t **self_p);

/*
 * Count one occurrence.  partner NULL, type 0 or reason -1 leave that
 * label out (each counter has the labels named above).  Safe with m
 * NULL (does nothing): the hooks need no checks.
 */
void metrics_count(metrics_t *m, enum metrics_counter c, const char *partner,
    int type, int reason);

/*
 * Serve GET /metrics on `listen` ("127.0.0.1:9464", "[::1]:9464") with
 * gauges read from d at each scrape.  The HTTP server runs in the
 * daemon's own loop (see metrics.c), so d is only touched from there.
 */
int metrics_listen(metrics_t *m, const char *listen, struct kpd *d,
    kp_err_t *err) __attribute__((warn_unused_result));
/* The file descriptor to poll for reading (-1 when not serving). */
int metrics_fd(const metrics_t *m);
/* cap, or less if the HTTP server has work due sooner. */
uint64_t metrics_wait_ms(metrics_t *m, uint64_t cap);
/* Do whatever HTTP work is ready; never blocks.  m may be NULL. */
void metrics_run(metrics_t *m);

/* The exposition text as served (malloc'd, NUL-terminated; tests); with
 * d NULL the counters only. */
char *metrics_render(metrics_t *m, struct kpd *d);

#endif
