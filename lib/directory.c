/*
 * directory.c: the partner directory (see directory.h).
 *
 * Owns: the array of peers (partner identity + derived payload keys in
 * sodium_malloc memory).  Never: trusts a partner that partner_load() did
 * not verify, or keeps a derived key after the peer is dropped.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "directory.h"

static const char s_key_label[] = "ketenpost/v1/payload-key";

struct peer {
	partner_t *partner; /* owned */
	uint8_t *keys;      /* sodium_malloc: tx key (32) || rx key (32) */
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

	if (p == NULL)
		return;
	partner_destroy(&p->partner);
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

static int
s_peer_new(const identity_t *self, partner_t *partner, peer_t **out,
    kp_err_t *err)
{
	const uint8_t *own_pk = partner_payload_pk(identity_public(self));
	const uint8_t *their_pk = partner_payload_pk(partner);
	const uint8_t *own_sk = identity_payload_sk(self);
	peer_t *p;

	p = calloc(1, sizeof(*p));
	if (p == NULL || (p->keys = sodium_malloc(64)) == NULL) {
		free(p);
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	}
	if (directory_derive_key(own_sk, their_pk, own_pk, their_pk,
	    p->keys) != 0 ||
	    directory_derive_key(own_sk, their_pk, their_pk, own_pk,
	    p->keys + 32) != 0) {
		sodium_free(p->keys);
		free(p);
		return kp_fail(err, KP_ERR_KEY_INVALID,
		    "partner %s: payload key is degenerate (X25519 gave zero)",
		    partner_oin(partner));
	}
	p->partner = partner;
	*out = p;
	return 0;
}

static size_t
s_lower_bound(const directory_t *d, const char *oin)
{
	size_t lo = 0, hi = d->n_peers, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(partner_oin(d->peers[mid]->partner), oin) < 0)
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
	    strcmp(partner_oin(self->peers[at]->partner), oin) == 0) {
		s_peer_destroy(&self->peers[at]);
		self->peers[at] = p;
		return 0;
	}
	grown = realloc(self->peers, (self->n_peers + 1) * sizeof(*grown));
	if (grown == NULL) {
		*partner_p = p->partner;
		p->partner = NULL;
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

static int
s_load_one(directory_t *self, const trust_t *trust, const char *path,
    void (*report)(void *, const kp_err_t *), void *arg, int *n_problems)
{
	partner_t *partner = NULL;
	kp_err_t e;

	if (partner_load(trust, path, &partner, &e) != 0 ||
	    directory_add(self, &partner, &e) != 0) {
		partner_destroy(&partner);
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
		(void)s_load_one(self, trust, path, report, arg, n_problems);
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
	    strcmp(partner_oin(self->peers[at]->partner), oin) == 0)
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
const partner_t *peer_partner(const peer_t *peer) { return peer->partner; }
const uint8_t *peer_tx_key(const peer_t *peer) { return peer->keys; }
const uint8_t *peer_rx_key(const peer_t *peer) { return peer->keys + 32; }
