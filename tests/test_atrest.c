/*
 * test_atrest.c: a payload's key and nonces drawn by the caller
 * (atrest_event_key_from, atrest_seal_nonce: a receiver draws them for a
 * whole pass at once) give exactly the bytes the functions that draw
 * their own gave with those random bytes, and open again.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "common.h"
#include "daemon.h"

TestSuite(atrest, .init = test_init);

#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

/* The key and its wrapping as atrest_event_key made them at e944e58,
 * given its random bytes r (K_e || nonce): the reference. */
static void
s_wrap_reference(const uint8_t store_key[32], const uint8_t id[16],
    const uint8_t r[32 + NONCE], uint8_t wrapped[STORE_KEY_WRAP_LEN])
{
	unsigned long long n = 0;

	memcpy(wrapped, r + 32, NONCE);
	cr_assert(crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped + NONCE,
	    &n, r, 32, id, 16, NULL, wrapped, store_key) == 0);
	cr_assert_eq(NONCE + n, STORE_KEY_WRAP_LEN);
}

Test(atrest, key_and_nonces_from_the_caller_as_before)
{
	uint8_t store_key[32], id[16], r[ATREST_EVENT_RANDOM], key[32];
	uint8_t wrapped[STORE_KEY_WRAP_LEN], ref[STORE_KEY_WRAP_LEN];
	uint8_t key2[32], payload[300], *sealed, *plain, *ref_sealed;
	size_t slen, plen;
	unsigned long long n = 0;

	cr_assert_eq(ATREST_NONCE_LEN, NONCE);
	randombytes_buf(store_key, sizeof(store_key));
	randombytes_buf(id, sizeof(id));
	randombytes_buf(r, sizeof(r));
	randombytes_buf(payload, sizeof(payload));
	cr_assert(atrest_event_key_from(store_key, id, r, key, wrapped) == 0);
	cr_assert_arr_eq(key, r, 32, "K_e is the caller's first 32 bytes");
	s_wrap_reference(store_key, id, r, ref);
	cr_assert_arr_eq(wrapped, ref, STORE_KEY_WRAP_LEN);
	cr_assert(atrest_event_key_unwrap(store_key, id, wrapped, key2) == 0);
	cr_assert_arr_eq(key2, key, 32);

	cr_assert(atrest_seal_nonce(key, id, r + 32 + NONCE, payload,
	    sizeof(payload), &sealed, &slen) == 0);
	cr_assert_eq(slen, NONCE + sizeof(payload) +
	    crypto_aead_xchacha20poly1305_ietf_ABYTES);
	cr_assert_arr_eq(sealed, r + 32 + NONCE, NONCE);
	cr_assert_not_null(ref_sealed = malloc(slen));
	memcpy(ref_sealed, r + 32 + NONCE, NONCE);
	cr_assert(crypto_aead_xchacha20poly1305_ietf_encrypt(ref_sealed +
	    NONCE, &n, payload, sizeof(payload), id, 16, NULL, ref_sealed,
	    key) == 0);
	cr_assert_arr_eq(sealed, ref_sealed, slen);
	cr_assert(atrest_open(key, id, sealed, slen, &plain, &plen) == 0);
	cr_assert_eq(plen, sizeof(payload));
	cr_assert_arr_eq(plain, payload, plen);
	/* another event id does not open it (the id is bound) */
	id[0] ^= 1;
	cr_assert_eq(atrest_open(key, id, sealed, slen, &plain, &plen), -1);
	free(ref_sealed);
	free(sealed);
}

/* The functions that draw their own bytes still do, fresh each call. */
Test(atrest, own_draws_are_fresh)
{
	uint8_t store_key[32], id[16], k1[32], k2[32], key[32];
	uint8_t w1[STORE_KEY_WRAP_LEN], w2[STORE_KEY_WRAP_LEN], p[16] = { 1 };
	uint8_t *s1, *s2;
	size_t l1, l2;

	randombytes_buf(store_key, sizeof(store_key));
	randombytes_buf(id, sizeof(id));
	cr_assert(atrest_event_key(store_key, id, k1, w1) == 0);
	cr_assert(atrest_event_key(store_key, id, k2, w2) == 0);
	cr_assert_arr_neq(k1, k2, 32);
	cr_assert_arr_neq(w1, w2, NONCE);
	cr_assert(atrest_event_key_unwrap(store_key, id, w1, key) == 0);
	cr_assert_arr_eq(key, k1, 32);
	cr_assert(atrest_seal(k1, id, p, sizeof(p), &s1, &l1) == 0);
	cr_assert(atrest_seal(k1, id, p, sizeof(p), &s2, &l2) == 0);
	cr_assert_arr_neq(s1, s2, NONCE);
	free(s1);
	free(s2);
}
