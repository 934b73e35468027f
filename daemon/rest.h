/*
 * rest.h: the REST/JSON API of ketenpostd (docs/openapi.json,
 * docs/INTEGRATION.md), served by libmicrohttpd on a Unix socket
 * (`[rest] listen`, default unix:<state_dir>/rest.sock; ketenpostd.conf(5)).
 *
 * Every request is turned into one kp.Request and run through the local
 * API's own path (apisrv_execute): the same roles, read auditing,
 * idempotency and error codes.  The client is the process at the other
 * end of the socket (SO_PEERCRED), given its roles by access.c exactly as
 * on the ZeroMQ API.  Over TLS (`[rest] tls_listen`) the client is its
 * verified certificate, given roles by `[api] allow = cert:SHA256`.
 */
#ifndef KP_REST_H
#define KP_REST_H

#include <stdint.h>

#include "kperr.h"

typedef struct rest rest_t;
struct kpd;

/* Not serving yet.  NULL on out of memory. */
rest_t *rest_new(void);
/* Stops serving (waiting clients are dropped) and frees.  NULL ok. */
void rest_destroy(rest_t **self_p);

/* Serve on `listen` ("unix:/PATH", or "off") and, when d's config has
 * [rest] tls_listen, over TLS too (rest_tls.h); post notices to [rest]
 * webhook (webhook.h); requests act on d.  0 / -1. */
int rest_listen(rest_t *rs, const char *listen, struct kpd *d,
    kp_err_t *err) __attribute__((warn_unused_result));
/* The file descriptor to poll for reading (-1 when not serving). */
int rest_fd(const rest_t *rs);
/* cap, or less if the HTTP server has work due sooner. */
uint64_t rest_wait_ms(rest_t *rs, uint64_t cap);
/* Do the HTTP work that is ready and answer long polls whose wait is
 * over; never blocks.  rs may be NULL. */
void rest_run(rest_t *rs);
/* Something may have arrived (an event, a receipt): every waiting long
 * poll looks again.  rs may be NULL. */
void rest_wake(rest_t *rs);
/* The webhook poster ([rest] webhook, webhook.h), or NULL. */
struct webhook *rest_webhook(rest_t *rs);

#endif
