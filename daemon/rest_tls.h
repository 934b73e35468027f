/*
 * rest_tls.h: the REST API over TLS with client certificates
 * (`[rest] tls_listen`, `tls_cert`, `tls_key`, `tls_client_ca`;
 * ketenpostd.conf(5)), for case systems on another host.
 *
 * A client is its certificate: it must be signed by tls_client_ca (else
 * the handshake fails) and its SHA-256 fingerprint named by an
 * `[api] allow = cert:SHA256 ROLE...` line (else every request is
 * answered 403).  rest.c serves the requests exactly as on its Unix
 * socket; this module only starts the TLS listener and says who a TLS
 * connection is.
 */
#ifndef KP_REST_TLS_H
#define KP_REST_TLS_H

#include <stddef.h>

#include <microhttpd.h>

#include "config.h"
#include "kperr.h"

typedef struct rest_tls rest_tls_t;

/* The handlers rest.c serves with (its MHD callbacks and their cls). */
struct rest_tls_handlers {
	MHD_AccessHandlerCallback access;
	MHD_RequestCompletedCallback completed;
	MHD_LogCallback log;
	void *cls;
};

/* Listen on cfg->rest_tls_listen with cfg's certificate, key and client
 * CA.  NULL after err is set (a file unreadable or not PEM, a key file
 * group or others can read, no TLS in libmicrohttpd, the port taken). */
rest_tls_t *rest_tls_start(const config_t *cfg,
    const struct rest_tls_handlers *h, kp_err_t *err);
/* Stop listening (no connection may be suspended) and free.  NULL ok. */
void rest_tls_destroy(rest_tls_t **self_p);
/* The HTTP server, for MHD_run / MHD_get_timeout / the epoll fd. */
struct MHD_Daemon *rest_tls_mhd(const rest_tls_t *t);

/*
 * Who is at the other end of TLS connection c: OUT: who ("cert:<first 16
 * hex digits of the fingerprint>"), fp (the fingerprint as colon hex, for
 * messages) and *roles (0: a certificate of the CA, but not allowed).
 * -1: no verified client certificate (the handshake should have refused
 * it; checked again here rather than trusted).
 */
int rest_tls_identify(struct MHD_Connection *c, const config_t *cfg,
    char *who, size_t wholen, char fp[96], unsigned *roles);

#endif
