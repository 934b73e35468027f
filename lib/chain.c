/*
 * chain.c: load trust, identity and partner directory together.
 */
#include <stdio.h>
#include <stdlib.h>

#include "chain.h"

int
chain_open(const char *chain_dir, const char *org_dir,
    void (*report)(void *, const kp_err_t *), void *arg, chain_t **out,
    kp_err_t *err)
{
	return chain_open_ex(chain_dir, org_dir, 0, report, arg, out, err);
}

int
chain_open_ex(const char *chain_dir, const char *org_dir, int flags,
    void (*report)(void *, const kp_err_t *), void *arg, chain_t **out,
    kp_err_t *err)
{
	chain_t *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	if (trust_load_ex(chain_dir, flags, &c->trust, err) != 0 ||
	    identity_find(c->trust, chain_dir, org_dir, &c->self, err) != 0)
		goto fail;
	if ((c->dir = directory_new(c->self)) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (directory_load(c->dir, c->trust, chain_dir, report, arg,
	    &c->n_problems, err) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	chain_close(&c);
	return -1;
}

int
chain_open_oin(const char *chain_dir, const char *oin,
    void (*report)(void *, const kp_err_t *), void *arg, chain_t **out,
    kp_err_t *err)
{
	char org_dir[4096];

	if (!kp_oin_valid(oin))
		return kp_fail(err, KP_ERR_INVALID_ARG, "OIN '%s' is not 20 "
		    "digits", oin);
	snprintf(org_dir, sizeof(org_dir), "%s/orgs/%s", chain_dir, oin);
	return chain_open(chain_dir, org_dir, report, arg, out, err);
}

void
chain_close(chain_t **self_p)
{
	chain_t *c = *self_p;

	if (c == NULL)
		return;
	directory_destroy(&c->dir);
	identity_destroy(&c->self);
	trust_destroy(&c->trust);
	free(c);
	*self_p = NULL;
}
