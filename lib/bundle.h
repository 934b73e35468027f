/*
 * bundle.h: the signed chain bundle (docs/PROTOCOL.md §2.5).
 *
 * One file, made by `ketenpost-certs bundle` and signed (Ed25519) by the
 * chain CA, holding ca.crt, crl.pem, policy.ini and every organisation's
 * certificate, with a version number that only grows.  bundle_t owns one
 * verified bundle in memory: nothing in it is exposed unless its signature
 * verified against the pinned CA certificate.  This module never decides
 * whether a version may replace another (the daemon does: rollback) and
 * never trusts the CA certificate inside the bundle: the caller pins it.
 */
#ifndef KP_BUNDLE_H
#define KP_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "kperr.h"

#define KP_BUNDLE_MAX (64u * 1024 * 1024)
#define KP_BUNDLE_ISSUED_LEN 20 /* "2026-11-29T17:00:00Z" */

typedef struct bundle bundle_t;

/*
 * Read the bundle in `path` and verify it against the pinned CA
 * certificate in `ca_file` (PEM): the format, the CA's SHA-256 (another
 * CA: KP_ERR_CERT_UNTRUSTED), the signature (KP_ERR_BAD_SIGNATURE), then
 * every item (names from the fixed set; the ca.crt item must be the pinned
 * certificate).  The message names the file and says what to do.
 */
int bundle_load(const char *path, const char *ca_file, bundle_t **out,
    kp_err_t *err) __attribute__((warn_unused_result));
void bundle_destroy(bundle_t **self_p);

uint64_t bundle_version(const bundle_t *self);
const char *bundle_issued(const bundle_t *self); /* as in the file */
size_t bundle_count(const bundle_t *self);        /* items */

/*
 * Write every item below `dir`, which must not exist yet (made 0700;
 * files 0644, orgs/<OIN>/ folders 0755): the chain folder layout that
 * chain_open() reads.  On failure nothing is left behind.
 */
int bundle_unpack(const bundle_t *self, const char *dir, kp_err_t *err)
    __attribute__((warn_unused_result));

/*
 * A trust file (certificate, CRL, bundle, policy) the daemon relies on:
 * refused, naming the file, unless it is a regular file owned by root or
 * the effective user and not writable by group or others.
 */
int trust_file_check(const char *path, kp_err_t *err)
    __attribute__((warn_unused_result));

#endif
