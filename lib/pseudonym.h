/*
 * pseudonym.h: per-partner pseudonyms for local case references.
 *
 * An organisation's own case reference (`--case REF`) never leaves it.  A
 * partner sees
 *   case_ref = BLAKE2b-256(key = K, msg = "ketenpost/v1/case" || 0x00 ||
 *              partner_oin (20 ASCII digits) || 0x00 || REF (UTF-8))
 * where K = BLAKE2b-256(key = own storage secret (identity_storage_sk():
 *                       storage.key, or else the payload secret key),
 *                       msg = "ketenpost/v1/pseudonym-key")
 * is a secret of the sending organisation.  The same case is stable for one
 * partner and unlinkable across partners (without K, two pseudonyms of one
 * case look like independent random strings); answers carry the pseudonym
 * back and the sender maps it to its local case through its own records.
 */
#ifndef KP_PSEUDONYM_H
#define KP_PSEUDONYM_H

#include <stdint.h>

#include "identity.h"
#include "kperr.h"

#define KP_CASE_LOCAL_MAX 64 /* bytes of a local case reference */

/* True if ref is 1..64 printable ASCII characters without spaces. */
int pseudonym_ref_valid(const char *ref);

/* The pseudonym of local case `ref` for partner `partner_oin`. OUT: out. */
int pseudonym_for(const identity_t *self, const char *partner_oin,
    const char *ref, uint8_t out[32], kp_err_t *err)
    __attribute__((warn_unused_result));

/* K of the comment above, for a holder that derives many pseudonyms (the
 * store: store_open).  The caller wipes it.  OUT: k.  0 or -1. */
int pseudonym_key(const identity_t *self, uint8_t k[32])
    __attribute__((warn_unused_result));

/* pseudonym_for with K given. OUT: out. */
int pseudonym_with_key(const uint8_t k[32], const char *partner_oin,
    const char *ref, uint8_t out[32], kp_err_t *err)
    __attribute__((warn_unused_result));

#endif
