/*
 * pseudonym.c: per-partner case pseudonyms (see pseudonym.h).
 *
 * Owns nothing; a derived key pseudonym_for makes lives on the stack and
 * is wiped before return (the store keeps its own copy: pseudonym_key).
 * Never: lets a local reference into anything but the keyed hash.
 */
#include <string.h>

#include <sodium.h>

#include "pseudonym.h"

static const char s_key_label[] = "ketenpost/v1/pseudonym-key";
static const char s_case_label[] = "ketenpost/v1/case";

int
pseudonym_ref_valid(const char *ref)
{
	size_t i, n;

	if (ref == NULL)
		return 0;
	n = strlen(ref);
	if (n == 0 || n > KP_CASE_LOCAL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (ref[i] <= ' ' || ref[i] > '~')
			return 0;
	return 1;
}

int
pseudonym_key(const identity_t *self, uint8_t k[32])
{
	return crypto_generichash(k, 32, (const uint8_t *)s_key_label,
	    sizeof(s_key_label) - 1, identity_storage_sk(self), 32);
}

int
pseudonym_with_key(const uint8_t k[32], const char *partner_oin,
    const char *ref, uint8_t out[32], kp_err_t *err)
{
	static const uint8_t zero = 0;
	crypto_generichash_state st;
	int rc = -1;

	if (!kp_oin_valid(partner_oin))
		return kp_fail(err, KP_ERR_INVALID_ARG, "partner OIN '%s' is not "
		    "20 digits", partner_oin);
	if (!pseudonym_ref_valid(ref))
		return kp_fail(err, KP_ERR_INVALID_ARG, "case reference must be "
		    "1-%d printable characters without spaces",
		    KP_CASE_LOCAL_MAX);
	if (crypto_generichash_init(&st, k, 32, 32) != 0 ||
	    crypto_generichash_update(&st, (const uint8_t *)s_case_label,
	    sizeof(s_case_label) - 1) != 0 ||
	    crypto_generichash_update(&st, &zero, 1) != 0 ||
	    crypto_generichash_update(&st, (const uint8_t *)partner_oin,
	    KP_OIN_LEN) != 0 ||
	    crypto_generichash_update(&st, &zero, 1) != 0 ||
	    crypto_generichash_update(&st, (const uint8_t *)ref,
	    strlen(ref)) != 0 ||
	    crypto_generichash_final(&st, out, 32) != 0) {
		kp_fail(err, KP_ERR_NOMEM, "pseudonym derivation failed");
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(&st, sizeof(st));
	return rc;
}

int
pseudonym_for(const identity_t *self, const char *partner_oin,
    const char *ref, uint8_t out[32], kp_err_t *err)
{
	uint8_t k[32];
	int rc;

	if (pseudonym_key(self, k) != 0)
		rc = kp_fail(err, KP_ERR_NOMEM, "pseudonym derivation failed");
	else
		rc = pseudonym_with_key(k, partner_oin, ref, out, err);
	sodium_memzero(k, sizeof(k));
	return rc;
}
