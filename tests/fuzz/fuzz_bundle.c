/*
 * fuzz_bundle: the chain bundle reader (bundle_load, then bundle_unpack of
 * what it accepts), two ways by the input's first byte:
 *
 *   'A' + FILE   the rest is the whole bundle file: the format, the CA hash
 *                and the signature checks that a damaged, foreign or
 *                forged file meets;
 *   'B' + ITEMS  the rest is the item section of a bundle that the build's
 *                chain CA then signs (header, "end", signature added here):
 *                the item checks and unpacking, which a forgery never
 *                reaches because the signature is checked first.
 *
 * The CA key is the build-time test chain's (fuzzcommon.h), never in git.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "bundle.h"
#include "fuzzcommon.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t s_sk[crypto_sign_SECRETKEYBYTES];
static char s_header[256];             /* up to and including ca-sha256 */
static char s_ca[FZ_PATH_MAX];

static void __attribute__((noreturn))
s_die(const char *what)
{
	fprintf(stderr, "fuzz_bundle set-up: %s\n", what);
	abort();
}

/* The chain CA's Ed25519 key and the first four lines of its bundle. */
static void
s_setup(void)
{
	uint8_t seed[32], pk[crypto_sign_PUBLICKEYBYTES], *buf;
	size_t len = sizeof(seed), n, lines;
	char path[FZ_PATH_MAX];
	EVP_PKEY *key;
	FILE *f;

	if (sodium_init() < 0)
		s_die("sodium_init");
	snprintf(s_ca, sizeof(s_ca), "%s/ca.crt", fz_chain());
	snprintf(path, sizeof(path), "%s/ca/ca.key", fz_chain());
	if ((f = fopen(path, "r")) == NULL ||
	    (key = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		s_die(path);
	fclose(f);
	if (EVP_PKEY_get_raw_private_key(key, seed, &len) != 1 || len != 32)
		s_die("CA key is not Ed25519");
	EVP_PKEY_free(key);
	crypto_sign_seed_keypair(pk, s_sk, seed);
	sodium_memzero(seed, sizeof(seed));
	snprintf(path, sizeof(path), "%s/bundle", fz_chain());
	if (kp_read_file(path, 1 << 24, &buf, &len) != 0)
		s_die(path);
	for (n = 0, lines = 0; n < len && lines < 4; n++)
		lines += buf[n] == '\n';
	if (lines != 4 || n >= sizeof(s_header))
		s_die("bundle header");
	memcpy(s_header, buf, n);
	s_header[n] = '\0';
	free(buf);
}

/* header + items + "end\n" + "signature <hex>\n", signed by the CA. */
static uint8_t *
s_signed(const uint8_t *items, size_t n, size_t *out_len)
{
	size_t h = strlen(s_header), body = h + n + 4;
	uint8_t sig[crypto_sign_BYTES], *p;
	char hex[2 * crypto_sign_BYTES + 1];

	if ((p = malloc(body + 11 + sizeof(hex))) == NULL)
		return NULL;
	memcpy(p, s_header, h);
	if (n > 0)
		memcpy(p + h, items, n);
	memcpy(p + h + n, "end\n", 4);
	crypto_sign_detached(sig, NULL, p, body, s_sk);
	sodium_bin2hex(hex, sizeof(hex), sig, sizeof(sig));
	memcpy(p + body, "signature ", 10);
	memcpy(p + body + 10, hex, 2 * crypto_sign_BYTES);
	p[body + 10 + 2 * crypto_sign_BYTES] = '\n';
	*out_len = body + 11 + 2 * crypto_sign_BYTES;
	return p;
}

static int
s_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Load, and unpack what loads into a fresh folder (removed after). */
static void
s_load(const uint8_t *file, size_t len)
{
	char path[FZ_PATH_MAX], dir[FZ_PATH_MAX + 8];
	bundle_t *b = NULL;
	kp_err_t e;

	fz_tmpfile(file, len, path);
	if (bundle_load(path, s_ca, &b, &e) == 0) {
		(void)bundle_version(b);
		(void)bundle_issued(b);
		snprintf(dir, sizeof(dir), "%s.d", path);
		if (bundle_unpack(b, dir, &e) == 0 &&
		    nftw(dir, s_rm, 16, FTW_DEPTH | FTW_PHYS) != 0)
			abort();
		bundle_destroy(&b);
	}
	unlink(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *file;
	size_t len;

	if (s_header[0] == '\0')
		s_setup();
	if (size == 0)
		return 0;
	if (data[0] == 'A')
		s_load(data + 1, size - 1);
	else if (data[0] == 'B' && (file = s_signed(data + 1, size - 1,
	    &len)) != NULL) {
		s_load(file, len);
		free(file);
	}
	return 0;
}
