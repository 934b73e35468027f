/*
 * api.h: the client side of ketenpostd's local API (proto/api.proto).
 *
 * One ZMQ_REQ socket connected to the daemon's API endpoint (a ZMQ_ROUTER,
 * normally ipc://<state_dir>/api.sock): one frame with a packed
 * kp.Request goes out, one frame with a packed kp.Response comes back.
 */
#ifndef KP_CLIENT_API_H
#define KP_CLIENT_API_H

#include "api.pb-c.h"
#include "kperr.h"

#define API_DEFAULT_TIMEOUT_MS 10000
#define API_MAX_RESPONSE (16 * 1024 * 1024)  /* ZMQ_MAXMSGSIZE on receive */

typedef struct api_client api_client_t;

/*
 * A client for the daemon at endpoint ("ipc:///var/lib/.../api.sock"),
 * waiting at most timeout_ms (> 0) for each send and each answer.
 * Connecting does not wait for the daemon: a daemon that is not there
 * shows as a timeout in api_call().  Returns NULL with err filled
 * (KP_ERR_IO: a bad endpoint or a ZeroMQ failure; KP_ERR_NOMEM).
 * The caller owns the result; free it with api_destroy().
 */
api_client_t *api_connect(const char *endpoint, int timeout_ms,
    kp_err_t *err) __attribute__((nonnull(1)));

/*
 * Send req and wait for the answer.  0 / -1.  On 0, *out is the daemon's
 * Response with ok true, owned by the caller, freed with
 * kp__response__free_unpacked(*out, NULL).  On -1, *out is NULL and err
 * holds one line:
 *   KP_ERR_IO          nothing sent or no answer within the timeout
 *                      ("no answer from the daemon at E within N s");
 *   KP_ERR_MALFORMED   an answer that is not one kp.Response frame;
 *   KP_ERR_INVALID_ARG the daemon refused: "<error> (<error_code>)";
 *   KP_ERR_NOMEM.
 * After -1 with KP_ERR_IO or KP_ERR_MALFORMED the REQ socket is out of
 * step; destroy the client rather than calling again.
 */
int api_call(api_client_t *c, const Kp__Request *req, Kp__Response **out,
    kp_err_t *err) __attribute__((warn_unused_result, nonnull(1, 2, 3)));

/* Close the socket and the ZeroMQ context; NULL and *self_p NULL are ok. */
void api_destroy(api_client_t **self_p);

#endif
