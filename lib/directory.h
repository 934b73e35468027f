/*
 * directory.h: the partner directory of one organisation.
 *
 * Holds every verified partner identity of the chain together with the
 * per-partner payload keys, derived once when the partner is added (an
 * X25519 per message costs ~31 µs; the derived keys make seal/open a
 * symmetric operation).  The directory owns its partners; it borrows the
 * own identity, which must outlive it.
 */
#ifndef KP_DIRECTORY_H
#define KP_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "kperr.h"

/* Valid certificates held per partner OIN: after a renewal the new one
 * and the previous one, accepted side by side (the overlap). */
#define KP_PEER_CERTS_MAX 2

typedef struct directory directory_t;
typedef struct peer peer_t;

/* A new, empty directory for `self` (borrowed). NULL on out of memory. */
directory_t *directory_new(const identity_t *self);
void directory_destroy(directory_t **self_p);

/*
 * Add a verified partner; the directory takes ownership of *partner_p on
 * success and sets it to NULL.  Replaces an existing entry of the same OIN.
 * Errors: KP_ERR_KEY_INVALID (degenerate X25519 key), KP_ERR_NOMEM.
 */
int directory_add(directory_t *self, partner_t **partner_p, kp_err_t *err)
    __attribute__((warn_unused_result));

/*
 * Add a verified partner as an older, still valid certificate of an OIN
 * already in the directory (after cert.pem: previous.pem), accepted beside
 * the newer one; as directory_add() if the OIN is new.  Takes ownership
 * on success.  Errors: KP_ERR_INVALID_ARG (already KP_PEER_CERTS_MAX),
 * KP_ERR_CERT_INVALID (another role), KP_ERR_KEY_INVALID, KP_ERR_NOMEM.
 */
int directory_add_older(directory_t *self, partner_t **partner_p,
    kp_err_t *err) __attribute__((warn_unused_result));

/*
 * Load every chain_dir/orgs/<OIN>/cert.pem, and previous.pem beside it
 * (directory_add_older; one that expired or was revoked is skipped
 * silently: its overlap is over).  A partner that fails to verify
 * is skipped and reported through `report` (one call per problem, may be
 * NULL); the directory keeps the rest.  Returns the number of problems in
 * *n_problems.  The own organisation is included (an org may send to
 * itself in tests).  0 / -1 (-1 only if the folder cannot be read).
 */
int directory_load(directory_t *self, const trust_t *trust,
    const char *chain_dir, void (*report)(void *arg, const kp_err_t *e),
    void *arg, int *n_problems, kp_err_t *err)
    __attribute__((warn_unused_result));

/* The partner with this OIN, or NULL. */
const peer_t *directory_find(const directory_t *self, const char *oin);
/* Number of partners and the i-th one (stable order by OIN). */
size_t directory_count(const directory_t *self);
const peer_t *directory_at(const directory_t *self, size_t i);
const identity_t *directory_self(const directory_t *self);

/* The newest certificate of the partner: the one to seal to. */
const partner_t *peer_partner(const peer_t *peer);
/* Key for payloads self -> peer (own payload key in use, the peer's
 * newest certificate), and peer -> self (the same two keys); 32 bytes. */
const uint8_t *peer_tx_key(const peer_t *peer);
const uint8_t *peer_rx_key(const peer_t *peer);
/*
 * Every valid certificate of the partner, newest first (c = 0 is
 * peer_partner), and the key for payloads from certificate c to own
 * payload key k (identity_payload_key_count); NULL out of range.  Who
 * opens or verifies tries each: during a renewal's overlap a partner may
 * sign with either certificate and seal to any of our keys.
 */
size_t peer_cert_count(const peer_t *peer);
const partner_t *peer_cert(const peer_t *peer, size_t c);
const uint8_t *peer_cert_rx_key(const peer_t *peer, size_t c, size_t k);

/*
 * The payload key for sender -> recipient, as PROTOCOL.md §4 defines it:
 *   s = X25519(own_sk, other_pk)
 *   k = BLAKE2b-256(key = s, msg = "ketenpost/v1/payload-key" ||
 *                   sender_payload_pk || recipient_payload_pk)
 * 0 / -1 (-1 if s is all zero).
 */
int directory_derive_key(const uint8_t own_sk[32], const uint8_t other_pk[32],
    const uint8_t sender_pk[32], const uint8_t recipient_pk[32],
    uint8_t key_out[32]) __attribute__((warn_unused_result));

#endif
