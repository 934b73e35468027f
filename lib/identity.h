/*
 * identity.h: organisation identities, verified back to the chain CA.
 *
 * A chain folder (made by certs/ketenpost-certs) holds:
 *   ca.crt                      the chain CA (Ed25519, self-signed)
 *   crl.pem                     the CA's current CRL
 *   orgs/<OIN>/cert.pem         the organisation's public identity
 *   orgs/<OIN>/sign.key         Ed25519 private key (PKCS#8 PEM, 0600)
 *   orgs/<OIN>/transport.key    X25519 private key for CURVE (0600)
 *   orgs/<OIN>/payload.key      X25519 private key for payloads (0600)
 *   orgs/<OIN>/storage.key      storage/pseudonym root (0600, optional)
 *   orgs/<OIN>/next/payload.key, previous/payload.key
 *                               during a renewal: open-only payload keys
 *                               (0600, optional; docs/TRUST.md §5)
 *
 * The certificate is the whole public identity: subject serialNumber = OIN,
 * O = name, OU = role; keyUsage digitalSignature; the X25519 public keys sit
 * in two CA-signed extensions (OIDs below) and the endpoint, if any, is a
 * URI subjectAltName.  Nothing is trusted that X509_verify_cert() does not
 * accept against ca.crt and crl.pem.
 *
 * trust_t owns the X509_STORE; partner_t owns one verified public identity;
 * identity_t owns the own organisation's secrets (in sodium_malloc memory,
 * wiped on destroy) and its public identity.
 */
#ifndef KP_IDENTITY_H
#define KP_IDENTITY_H

#include <stdint.h>

#include "kperr.h"
#include "util.h"

/*
 * The project-private arc 1.3.6.1.4.1.99999.4711 (docs/PROTOCOL.md §2):
 * every arc fits in 32 bits, so mainstream X.509 parsers (python3-
 * cryptography, Go, Java) read it; the former 2.25.<128-bit UUID> arc was
 * rejected by python3-cryptography.
 */
#define KP_OID_ARC "1.3.6.1.4.1.99999.4711"
#define KP_OID_TRANSPORT_KEY KP_OID_ARC ".1" /* OCTET STRING, 32 bytes */
#define KP_OID_PAYLOAD_KEY KP_OID_ARC ".2"   /* OCTET STRING, 32 bytes */

#define KP_NAME_MAX 64
/* Payload keys kept only to open envelopes during a renewal: the
 * organisation's previous/ and next/ keys (identity_payload_sk_at). */
#define KP_EXTRA_PAYLOAD_KEYS 2
#define KP_ENDPOINT_MAX 256

typedef struct trust trust_t;
typedef struct partner partner_t;
typedef struct identity identity_t;

/*
 * Load chain_dir/ca.crt and chain_dir/crl.pem into a verification store.
 * The CRL is required (an empty CRL is fine): a chain without one cannot
 * revoke, and we would rather refuse than silently skip the check.
 */
int trust_load(const char *chain_dir, trust_t **out, kp_err_t *err)
    __attribute__((warn_unused_result));
/*
 * trust_load() with flags: TRUST_STALE_CRL_OK accepts a CRL past its
 * nextUpdate (its revocations still apply).  Only for a caller that
 * enforces freshness itself (the daemon fails closed on a stale CRL while
 * staying up); everything else uses trust_load().
 */
#define TRUST_STALE_CRL_OK 1
int trust_load_ex(const char *chain_dir, int flags, trust_t **out,
    kp_err_t *err) __attribute__((warn_unused_result));
void trust_destroy(trust_t **self_p);
/* The CRL's nextUpdate and the CA certificate's notAfter, Unix seconds
 * (0 if the CRL has no nextUpdate). */
int64_t trust_crl_next_update(const trust_t *t);
int64_t trust_ca_not_after(const trust_t *t);

/*
 * Load and verify a public identity from a PEM certificate file: chain to
 * the CA, validity period (now), CRL, keyUsage digitalSignature, subject
 * serialNumber a valid OIN, OU a known role, both X25519 keys present.
 * Errors: KP_ERR_IO, KP_ERR_CERT_INVALID, KP_ERR_CERT_UNTRUSTED,
 * KP_ERR_CERT_EXPIRED, KP_ERR_CERT_NOT_YET_VALID, KP_ERR_CERT_REVOKED,
 * KP_ERR_CERT_KEY_USAGE, KP_ERR_CRL.  The message names the file.
 */
int partner_load(const trust_t *trust, const char *cert_file,
    partner_t **out, kp_err_t *err) __attribute__((warn_unused_result));
void partner_destroy(partner_t **self_p);

const char *partner_oin(const partner_t *self);      /* 20 digits */
const char *partner_name(const partner_t *self);     /* O= */
int partner_role(const partner_t *self);             /* enum kp_role */
const char *partner_endpoint(const partner_t *self); /* NULL if none */
const char *partner_cert_file(const partner_t *self);
int64_t partner_not_after(const partner_t *self);   /* Unix seconds */
const uint8_t *partner_sign_pk(const partner_t *self);      /* 32 bytes */
const uint8_t *partner_transport_pk(const partner_t *self); /* 32 bytes */
const uint8_t *partner_payload_pk(const partner_t *self);   /* 32 bytes */

/*
 * Load the own organisation from org_dir: cert.pem verified as above, and
 * the three secret key files, each refused (KP_ERR_KEY_FILE_MODE, naming
 * the file) if group or others have any access, and each checked to match
 * the public key in the certificate (KP_ERR_KEY_INVALID otherwise).
 */
int identity_load(const trust_t *trust, const char *org_dir,
    identity_t **out, kp_err_t *err) __attribute__((warn_unused_result));
void identity_destroy(identity_t **self_p);

/*
 * identity_load() (with org_dir/previous.pem instead of cert.pem when
 * only that one holds the key of sign.key: renewed, not yet switched),
 * or, when org_dir holds no cert.pem (an organisation
 * that installed only its keys and the chain bundle), with the certificate
 * in chain_dir/orgs/<OIN>/{cert,previous}.pem whose public key is that of
 * org_dir/sign.key: after a renewal the certificate that matches the keys
 * in use.  A matching certificate that does not verify (revoked, expired)
 * is that error; none matching is KP_ERR_CERT_INVALID.
 */
int identity_find(const trust_t *trust, const char *chain_dir,
    const char *org_dir, identity_t **out, kp_err_t *err)
    __attribute__((warn_unused_result));

const partner_t *identity_public(const identity_t *self);
const uint8_t *identity_sign_sk(const identity_t *self);      /* 64 bytes */
const uint8_t *identity_transport_sk(const identity_t *self); /* 32 bytes */
const uint8_t *identity_payload_sk(const identity_t *self);   /* 32 bytes */
/*
 * Every payload key the organisation can open envelopes with: 0 is the
 * one in use (identity_payload_sk, certified by identity_public), then
 * org_dir/previous/payload.key and org_dir/next/payload.key when present
 * and different (a renewal: envelopes a partner sealed to the old key
 * before it saw the new certificate, or to the new one before the
 * switch).  Secret and public key of the i-th; NULL past the count.
 */
size_t identity_payload_key_count(const identity_t *self);
const uint8_t *identity_payload_sk_at(const identity_t *self, size_t i);
const uint8_t *identity_payload_pk_at(const identity_t *self, size_t i);
/*
 * The root of the storage (payloads at rest) and pseudonym keys, 32 bytes:
 * org_dir/storage.key (0600, 64 hex digits) when present, else the payload
 * secret key (organisations from before storage.key; `ketenpost-certs
 * renew` writes storage.key from it before making new keys, so nothing
 * stored becomes unreadable and pseudonyms stay stable).
 */
const uint8_t *identity_storage_sk(const identity_t *self);

#endif
