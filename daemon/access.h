/*
 * access.h: who may ask the local API what (ketenpostd.conf [api] allow).
 *
 * A client is identified when it connects, by the kernel (the uid and gid
 * of a process on the ipc:// socket), by its CURVE key (tcp://) or, on the
 * REST API's TLS listener, by its verified certificate (rest_tls.c), never
 * by anything it says about itself.  The ZAP handler (zap.c) turns that
 * identity into a set of roles once per connection and hands both to every
 * message as the ZAP User-Id; apisrv.c checks the role of each request.
 */
#ifndef KP_ACCESS_H
#define KP_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define ACCESS_ID_MAX 64         /* "uid:4294967295", "key:<16 hex>",
                                  * "cert:<16 hex>" */

/* The roles of a process of uid (primary gid gid) on the ipc:// socket:
 * every role for the daemon's own user, else the union of the lines that
 * name the user or one of its groups. */
unsigned access_roles_for_creds(const config_t *cfg, uid_t uid, gid_t gid);
/* The roles of a CURVE client key on a tcp:// API. */
unsigned access_roles_for_key(const config_t *cfg, const uint8_t key[32]);

/* The roles of a TLS client certificate on the REST API (rest_tls.c):
 * sha256 is the fingerprint of its DER form.  0: none (not allowed). */
unsigned access_roles_for_cert(const config_t *cfg, const uint8_t sha256[32]);

/* The role a request (Kp__Request op_case) needs. */
unsigned access_role_for_op(int op_case);
/* "submit", "inbox", ... for one role bit. */
const char *access_role_name(unsigned role);

/* The ZAP User-Id for identity and roles, and back.  0 / -1. */
int access_user_id(const char *identity, unsigned roles, char *out,
    size_t len);
int access_parse_user_id(const char *user_id, char *identity, size_t len,
    unsigned *roles);

/* Does the allow list name anyone but the daemon's own user (so the
 * socket must be reachable by others, and credentials decide)? */
bool access_has_others(const config_t *cfg);

#endif
