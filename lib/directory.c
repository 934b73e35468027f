/*
 * directory.c: the partner directory (see directory.h).
 *
 * Owns: the array of peers (partner identity + derived payload keys in
 * sodium_malloc memory).  Never: trusts a partner that partner_load() did
 * not verify, or keeps a derived key after the peer is dropped.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "directory.h"

static const char s_key_label[] = "ketenpost/v1/payload-key";

/*
 * One partner OIN with every currently valid certificate it has: after a
 * renewal the new one (cert.pem, index 0, the one to seal to) and the
 * previous one, both accepted until the old one expires or is revoked.
 * keys: per certificate c, its tx key (own payload key in use -> c), then
 * one rx key (c -> own payload key k) for each own payload key k
 * (identity_payload_key_count: the one in use, previous/, next/).
 */
#define S_KEY 32

struct peer {
	partner_t *certs[KP_PEER_CERTS_MAX]; /* owned, newest first */
	size_t n_certs;
	size_t n_own;       /* own payload keys the rx keys are for */
	uint8_t *keys;      /* sodium_malloc: see above */
};

struct directory {
	const identity_t *self; /* borrowed */
	peer_t **peers;         /* sorted by OIN */
	size_t n_peers;
};

directory_t *
directory_new(const identity_t *self)
{
	directory_t *d = calloc(1, sizeof(*d));

	if (d != NULL)
		d->self = self;
	return d;
}

static void
s_peer_destroy(peer_t **peer_p)
{
	peer_t *p = *peer_p;
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n_certs; i++)
		partner_destroy(&p->certs[i]);
	sodium_free(p->keys);
	free(p);
	*peer_p = NULL;
}

void
directory_destroy(directory_t **self_p)
{
	directory_t *d = *self_p;
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n_peers; i++)
		s_peer_destroy(&d->peers[i]);
	free(d->peers);
	free(d);
	*self_p = NULL;
}

int
directory_derive_key(const uint8_t own_sk[32], const uint8_t other_pk[32],
    const uint8_t sender_pk[32], const uint8_t recipient_pk[32],
    uint8_t key_out[32])
{
	crypto_generichash_state st;
	uint8_t shared[crypto_scalarmult_BYTES];
	int rc = -1;

	if (crypto_scalarmult(shared, own_sk, other_pk) != 0)
		goto out;
	if (crypto_generichash_init(&st, shared, sizeof(shared), 32) != 0 ||
	    crypto_generichash_update(&st, (const uint8_t *)s_key_label,
	    sizeof(s_key_label) - 1) != 0 ||
	    crypto_generichash_update(&st, sender_pk, 32) != 0 ||
	    crypto_generichash_update(&st, recipient_pk, 32) != 0 ||
	    crypto_generichash_final(&st, key_out, 32) != 0)
		goto out;
	rc = 0;
out:
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(&st, sizeof(st));
	return rc;
}

/* Bytes of the keys of one certificate: tx and n_own rx keys. */
static size_t
s_cert_keys_len(size_t n_own)
{
	return S_KEY * (1 + n_own);
}

/* The tx and rx keys between the own identity and one certificate. */
static int
s_derive_cert(const identity_t *self, const partner_t *partner, uint8_t *keys)
{
	const uint8_t *own_pk = partner_payload_pk(identity_public(self));
	const uint8_t *their_pk = partner_payload_pk(partner);
	size_t k;

	if (directory_derive_key(identity_payload_sk(self), their_pk, own_pk,
	    their_pk, keys) != 0)
		return -1;
	for (k = 0; k < identity_payload_key_count(self); k++)
		if (directory_derive_key(identity_payload_sk_at(self, k),
		    their_pk, their_pk, identity_payload_pk_at(self, k),
		    keys + S_KEY * (1 + k)) != 0)
			return -1;
	return 0;
}

/* (Re)derive every key of p, for p->certs. */
static int
s_peer_keys(const identity_t *self, peer_t *p, kp_err_t *err)
{
	size_t per = s_cert_keys_len(identity_payload_key_count(self)), c;
	uint8_t *keys = sodium_malloc(per * p->n_certs);

	if (keys == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	for (c = 0; c < p->n_certs; c++)
		if (s_derive_cert(self, p->certs[c], keys + per * c) != 0) {
			sodium_free(keys);
			return kp_fail(err, KP_ERR_KEY_INVALID, "partner %s: "
			    "payload key in %s is degenerate (X25519 gave "
			    "zero)", partner_oin(p->certs[c]),
			    partner_cert_file(p->certs[c]));
		}
	sodium_free(p->keys);
	p->keys = keys;
	p->n_own = identity_payload_key_count(self);
	return 0;
}

static int
s_peer_new(const identity_t *self, partner_t *partner, peer_t **out,
    kp_err_t *err)
{
	peer_t *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	p->certs[0] = partner;
	p->n_certs = 1;
	if (s_peer_keys(self, p, err) != 0) {
		free(p);
		return -1;
	}
	*out = p;
	return 0;
}

static size_t
s_lower_bound(const directory_t *d, const char *oin)
{
	size_t lo = 0, hi = d->n_peers, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(partner_oin(d->peers[mid]->certs[0]), oin) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
directory_add(directory_t *self, partner_t **partner_p, kp_err_t *err)
{
	const char *oin = partner_oin(*partner_p);
	peer_t *p = NULL, **grown;
	size_t at;

	if (s_peer_new(self->self, *partner_p, &p, err) != 0)
		return -1;
	*partner_p = NULL;
	at = s_lower_bound(self, oin);
	if (at < self->n_peers &&
	    strcmp(partner_oin(self->peers[at]->certs[0]), oin) == 0) {
		s_peer_destroy(&self->peers[at]);
		self->peers[at] = p;
		return 0;
	}
	grown = realloc(self->peers, (self->n_peers + 1) * sizeof(*grown));
	if (grown == NULL) {
		*partner_p = p->certs[0];
		p->n_certs = 0;
		s_peer_destroy(&p);
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	}
	self->peers = grown;
	memmove(&grown[at + 1], &grown[at],
	    (self->n_peers - at) * sizeof(*grown));
	grown[at] = p;
	self->n_peers++;
	return 0;
}

int
directory_add_older(directory_t *self, partner_t **partner_p, kp_err_t *err)
{
	const char *oin = partner_oin(*partner_p);
	size_t at = s_lower_bound(self, oin);
	peer_t *p;

	if (at >= self->n_peers ||
	    strcmp(partner_oin(self->peers[at]->certs[0]), oin) != 0)
		return directory_add(self, partner_p, err);
	p = self->peers[at];
	if (p->n_certs >= KP_PEER_CERTS_MAX)
		return kp_fail(err, KP_ERR_INVALID_ARG, "partner %s: more than "
		    "%d valid certificates; %s ignored", oin, KP_PEER_CERTS_MAX,
		    partner_cert_file(*partner_p));
	if (partner_role(*partner_p) != partner_role(p->certs[0]))
		return kp_fail(err, KP_ERR_CERT_INVALID, "partner %s: %s has "
		    "another role than %s; ignored", oin,
		    partner_cert_file(*partner_p), partner_cert_file(p->certs[0]));
	p->certs[p->n_certs++] = *partner_p;
	if (s_peer_keys(self->self, p, err) != 0) {
		p->certs[--p->n_certs] = NULL;
		return -1;
	}
	*partner_p = NULL;
	return 0;
}

/* A previous.pem that no longer verifies only ended its overlap. */
static bool
s_overlap_over(const char *file, const kp_err_t *e)
{
	size_t n = strlen(file), suffix = strlen("/previous.pem");

	return (e->code == KP_ERR_CERT_EXPIRED ||
	    e->code == KP_ERR_CERT_REVOKED) && n > suffix &&
	    strcmp(file + n - suffix, "/previous.pem") == 0;
}

static int
s_load_one(directory_t *self, const trust_t *trust, const char *path,
    bool older, void (*report)(void *, const kp_err_t *), void *arg,
    int *n_problems)
{
	partner_t *partner = NULL;
	kp_err_t e;

	if (partner_load(trust, path, &partner, &e) != 0 ||
	    (older ? directory_add_older(self, &partner, &e) :
	    directory_add(self, &partner, &e)) != 0) {
		partner_destroy(&partner);
		if (s_overlap_over(path, &e))
			return 0;
		(*n_problems)++;
		if (report != NULL)
			report(arg, &e);
		return -1;
	}
	return 0;
}

int
directory_load(directory_t *self, const trust_t *trust, const char *chain_dir,
    void (*report)(void *, const kp_err_t *), void *arg, int *n_problems,
    kp_err_t *err)
{
	char path[4096];
	struct dirent *ent;
	DIR *dir;

	*n_problems = 0;
	snprintf(path, sizeof(path), "%s/orgs", chain_dir);
	dir = opendir(path);
	if (dir == NULL)
		return kp_fail(err, KP_ERR_IO, "cannot read partner folder %s: %s",
		    path, strerror(errno));
	while ((ent = readdir(dir)) != NULL) {
		if (!kp_oin_valid(ent->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/orgs/%s/cert.pem", chain_dir,
		    ent->d_name);
		(void)s_load_one(self, trust, path, false, report, arg,
		    n_problems);
		/* After a renewal: the old certificate, for the overlap. */
		snprintf(path, sizeof(path), "%s/orgs/%s/previous.pem",
		    chain_dir, ent->d_name);
		if (access(path, F_OK) == 0)
			(void)s_load_one(self, trust, path, true, report, arg,
			    n_problems);
	}
	closedir(dir);
	return 0;
}

const peer_t *
directory_find(const directory_t *self, const char *oin)
{
	size_t at;

	if (oin == NULL)
		return NULL;
	at = s_lower_bound(self, oin);
	if (at < self->n_peers &&
	    strcmp(partner_oin(self->peers[at]->certs[0]), oin) == 0)
		return self->peers[at];
	return NULL;
}

size_t directory_count(const directory_t *self) { return self->n_peers; }

const peer_t *
directory_at(const directory_t *self, size_t i)
{
	return i < self->n_peers ? self->peers[i] : NULL;
}

const identity_t *directory_self(const directory_t *self) { return self->self; }
const partner_t *peer_partner(const peer_t *peer) { return peer->certs[0]; }
const uint8_t *peer_tx_key(const peer_t *peer) { return peer->keys; }
const uint8_t *peer_rx_key(const peer_t *peer) { return peer->keys + S_KEY; }
size_t peer_cert_count(const peer_t *peer) { return peer->n_certs; }

const partner_t *
peer_cert(const peer_t *peer, size_t c)
{
	return c < peer->n_certs ? peer->certs[c] : NULL;
}

const uint8_t *
peer_cert_rx_key(const peer_t *peer, size_t c, size_t k)
{
	if (c >= peer->n_certs || k >= peer->n_own)
		return NULL;
	return peer->keys + s_cert_keys_len(peer->n_own) * c + S_KEY * (1 + k);
}
