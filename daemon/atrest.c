/*
 * atrest.c: payloads at rest, each under its own key.
 *
 * Every stored event gets a fresh random 32-byte key K_e.  What is stored:
 *   payload (inbox) or envelope (outbox):
 *       nonce (24) || XChaCha20-Poly1305(K_e, data, ad = event_id)
 *   K_e, wrapped:
 *       nonce (24) || XChaCha20-Poly1305(K_store, K_e, ad = event_id)
 * with K_store = BLAKE2b-256(key = own storage secret (storage.key, or the
 *                            payload secret key before it existed),
 *                            "ketenpost/v1/storage-key").
 * Metadata (case references, routes: store_seal.c) is sealed under
 *   K_meta = BLAKE2b-256(key = K_store, "ketenpost/v1/metadata-key"),
 * its own sub-key, from which store_seal.c derives one key per use.
 * The database alone (a backup, a stolen disk image) reveals no payload;
 * the key files are needed too.  Retention ends an event by destroying its
 * wrapped key: whatever copies of the ciphertext may linger in free SQLite
 * pages or an old WAL frame are then unreadable for good, even with the
 * key files.  Binding the event id as associated data stops one stored
 * payload (or key) from being swapped for another.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon.h"

static const char s_label[] = "ketenpost/v1/storage-key";
static const char s_meta_label[] = "ketenpost/v1/metadata-key";

#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
_Static_assert(NONCE == ATREST_NONCE_LEN, "the XChaCha20 nonce is 24 bytes");

int
atrest_key_derive(const uint8_t payload_sk[32], uint8_t key[32])
{
	return crypto_generichash(key, 32, (const uint8_t *)s_label,
	    sizeof(s_label) - 1, payload_sk, 32);
}

int
atrest_meta_key_derive(const uint8_t store_key[32], uint8_t key[32])
{
	return crypto_generichash(key, 32, (const uint8_t *)s_meta_label,
	    sizeof(s_meta_label) - 1, store_key, 32);
}

int
atrest_seal(const uint8_t key[32], const uint8_t id[16], const uint8_t *in,
    size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t nonce[NONCE];

	randombytes_buf(nonce, sizeof(nonce));
	return atrest_seal_nonce(key, id, nonce, in, len, out, out_len);
}

int
atrest_seal_nonce(const uint8_t key[32], const uint8_t id[16],
    const uint8_t nonce[ATREST_NONCE_LEN], const uint8_t *in, size_t len,
    uint8_t **out, size_t *out_len)
{
	unsigned long long n = 0;
	uint8_t *b = malloc(NONCE + len + TAG);

	if (b == NULL)
		return -1;
	memcpy(b, nonce, NONCE);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(b + NONCE, &n, in, len,
	    id, 16, NULL, b, key) != 0) {
		free(b);
		return -1;
	}
	*out = b;
	*out_len = NONCE + (size_t)n;
	return 0;
}

int
atrest_open(const uint8_t key[32], const uint8_t id[16], const uint8_t *in,
    size_t len, uint8_t **out, size_t *out_len)
{
	unsigned long long n = 0;
	uint8_t *b;

	if (len < NONCE + TAG)
		return -1;
	b = malloc(len - NONCE);
	if (b == NULL)
		return -1;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(b, &n, NULL, in + NONCE,
	    len - NONCE, id, 16, in, key) != 0) {
		free(b);
		return -1;
	}
	*out = b;
	*out_len = (size_t)n;
	return 0;
}

int
atrest_event_key(const uint8_t store_key[32], const uint8_t id[16],
    uint8_t key[32], uint8_t wrapped[STORE_KEY_WRAP_LEN])
{
	uint8_t r[32 + NONCE];
	int rc;

	/* one call for both: each is a getrandom(2) system call */
	randombytes_buf(r, sizeof(r));
	rc = atrest_event_key_from(store_key, id, r, key, wrapped);
	sodium_memzero(r, sizeof(r));
	return rc;
}

int
atrest_event_key_from(const uint8_t store_key[32], const uint8_t id[16],
    const uint8_t r[32 + ATREST_NONCE_LEN], uint8_t key[32],
    uint8_t wrapped[STORE_KEY_WRAP_LEN])
{
	unsigned long long n = 0;

	memcpy(key, r, 32);
	memcpy(wrapped, r + 32, NONCE);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped + NONCE, &n, key,
	    32, id, 16, NULL, wrapped, store_key) != 0 ||
	    NONCE + n != STORE_KEY_WRAP_LEN) {
		sodium_memzero(key, 32);
		return -1;
	}
	return 0;
}

int
atrest_event_key_unwrap(const uint8_t store_key[32], const uint8_t id[16],
    const uint8_t wrapped[STORE_KEY_WRAP_LEN], uint8_t key[32])
{
	unsigned long long n = 0;

	if (crypto_aead_xchacha20poly1305_ietf_decrypt(key, &n, NULL,
	    wrapped + NONCE, STORE_KEY_WRAP_LEN - NONCE, id, 16, wrapped,
	    store_key) != 0 || n != 32) {
		sodium_memzero(key, 32);
		return -1;
	}
	return 0;
}

/*
 * Heap blocks that hold plaintext (API requests and answers with
 * payloads) are wiped before they go back to the allocator, so a freed
 * page or a core file (there should be none: main.c) does not keep them.
 * A block remembers its size in a header in front of it.
 */
#define WIPE_HDR 16   /* keeps the block 16-byte aligned */

void *
atrest_alloc(size_t size)
{
	uint8_t *b;

	if (size > SIZE_MAX - WIPE_HDR ||
	    (b = calloc(1, WIPE_HDR + size)) == NULL)
		return NULL;
	memcpy(b, &size, sizeof(size));
	return b + WIPE_HDR;
}

void
atrest_free(void *p)
{
	uint8_t *b;
	size_t size;

	if (p == NULL)
		return;
	b = (uint8_t *)p - WIPE_HDR;
	memcpy(&size, b, sizeof(size));
	sodium_memzero(b, WIPE_HDR + size);
	free(b);
}

static void *
s_pb_alloc(void *unused, size_t size)
{
	(void)unused;
	return atrest_alloc(size);
}

static void
s_pb_free(void *unused, void *p)
{
	(void)unused;
	atrest_free(p);
}

ProtobufCAllocator atrest_allocator = { s_pb_alloc, s_pb_free, NULL };

void
atrest_zmq_free(void *data, void *hint)
{
	sodium_memzero(data, (size_t)(uintptr_t)hint);
	free(data);
}

const char *
kpd_id(const uint8_t id[16], char buf[37])
{
	kp_uuid_format(id, buf);
	return buf;
}

int
atrest_inbox_payload(kpd_t *d, const uint8_t id[16], uint8_t **plain,
    size_t *plen)
{
	inbox_row_t row;
	uint8_t *sealed = NULL, key[32];
	size_t slen = 0;
	bool found = false;
	kp_err_t e;
	int rc = -1;

	*plain = NULL;
	if (store_inbox_get(d->store, id, &row, &sealed, &slen, &found,
	    &e) != 0 || !found || !row.has_event_key)
		goto out;
	if (atrest_event_key_unwrap(d->storage_key, id, row.event_key,
	    key) == 0 && atrest_open(key, id, sealed, slen, plain, plen) == 0)
		rc = 0;
	sodium_memzero(key, sizeof(key));
out:
	free(sealed);
	return rc;
}
