/*
 * chain.h: one organisation's view of the chain, loaded in one step.
 *
 * Bundles what every program needs before it can seal or open: the trust
 * store (CA + CRL), the own identity with its secrets, and the partner
 * directory with derived keys.  chain_t owns all three.  The daemon loads a
 * fresh chain_t on SIGHUP and swaps it in only when it loaded cleanly.
 */
#ifndef KP_CHAIN_H
#define KP_CHAIN_H

#include "directory.h"
#include "identity.h"
#include "kperr.h"

typedef struct chain {
	trust_t *trust;       /* CA + CRL */
	identity_t *self;     /* own organisation, with secrets */
	directory_t *dir;     /* verified partners, derived keys */
	int n_problems;       /* partners skipped while loading */
} chain_t;

/*
 * Load chain_dir (ca.crt, crl.pem, orgs/) and the organisation in org_dir
 * (its keys, and its cert.pem or else the chain's certificate that matches
 * them: identity_find()).
 * Partners that fail verification are skipped and reported through
 * `report` (may be NULL).  The own identity failing is an error.
 */
int chain_open(const char *chain_dir, const char *org_dir,
    void (*report)(void *arg, const kp_err_t *e), void *arg,
    chain_t **out, kp_err_t *err) __attribute__((warn_unused_result));
void chain_close(chain_t **self_p);

/* chain_open with trust_load_ex() flags (TRUST_STALE_CRL_OK: the daemon,
 * which fails closed on a stale CRL by itself). */
int chain_open_ex(const char *chain_dir, const char *org_dir, int flags,
    void (*report)(void *arg, const kp_err_t *e), void *arg,
    chain_t **out, kp_err_t *err) __attribute__((warn_unused_result));

/* chain_open with org_dir = chain_dir/orgs/<oin>. */
int chain_open_oin(const char *chain_dir, const char *oin,
    void (*report)(void *arg, const kp_err_t *e), void *arg,
    chain_t **out, kp_err_t *err) __attribute__((warn_unused_result));

#endif
