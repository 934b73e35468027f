/*
 * bundle.c: read, verify and unpack the signed chain bundle.
 *
 * Owns one bundle file in memory and the index of its items.  It verifies
 * before it exposes anything: the CA's SHA-256 must be the pinned CA's, the
 * Ed25519 signature (libsodium; pure Ed25519 as `openssl pkeyutl -rawin`
 * makes it) must verify with the pinned CA's key, and every item name must
 * be one of a fixed set, so unpacking can never write outside its folder.
 * It must never trust the ca.crt inside a bundle (it only checks that it is
 * the pinned one) and never decide about versions (the caller does).
 *
 * Format (docs/PROTOCOL.md §2.5), all lines ending in "\n":
 *   ketenpost-bundle 1
 *   version <decimal>
 *   issued <YYYY-MM-DDTHH:MM:SSZ>
 *   ca-sha256 <64 hex>
 *   file <name> <length>      then <length> bytes and "\n"   (repeated)
 *   end
 *   signature <128 hex>       Ed25519 over every byte before this line
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "bundle.h"
#include "util.h"

#define S_ITEMS_MAX 4096
#define S_NAME_MAX 64
#define S_CA_MAX (64 * 1024)

struct s_item {
	char name[S_NAME_MAX + 1];
	size_t off, len;
};

struct bundle {
	uint8_t *buf;
	size_t len;
	uint64_t version;
	char issued[KP_BUNDLE_ISSUED_LEN + 1];
	struct s_item *items;
	size_t n_items;
};

/* The pinned CA: its DER's SHA-256 and its raw Ed25519 key. */
struct s_pin {
	uint8_t *der;
	int der_len;
	uint8_t sha[SHA256_DIGEST_LENGTH];
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
};

/* ---- files ---------------------------------------------------------- */

int
trust_file_check(const char *path, kp_err_t *err)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return kp_fail(err, KP_ERR_IO, "cannot read trust file %s: %s",
		    path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kp_fail(err, KP_ERR_IO, "trust file %s is not a regular "
		    "file", path);
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return kp_fail(err, KP_ERR_KEY_FILE_MODE, "trust file %s is "
		    "owned by uid %u, neither root nor the daemon's user (uid "
		    "%u): anyone who owns it can change what the daemon trusts; "
		    "chown it", path, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return kp_fail(err, KP_ERR_KEY_FILE_MODE, "trust file %s has "
		    "mode %04o: group or others may change it (chmod 644)",
		    path, (unsigned)(st.st_mode & 07777));
	return 0;
}

static int
s_pin_load(const char *ca_file, struct s_pin *pin, kp_err_t *err)
{
	uint8_t *buf = NULL;
	size_t len = 0, pklen = sizeof(pin->pk);
	BIO *bio = NULL;
	X509 *x = NULL;
	EVP_PKEY *pk;
	int rc = -1;

	if (trust_file_check(ca_file, err) == -1)
		return -1;
	if (kp_read_file(ca_file, S_CA_MAX, &buf, &len) == -1) {
		kp_fail(err, KP_ERR_IO, "cannot read the pinned CA certificate "
		    "%s: %s", ca_file, strerror(errno));
		goto out;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    (pk = X509_get0_pubkey(x)) == NULL ||
	    EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(pk, pin->pk, &pklen) != 1 ||
	    (pin->der_len = i2d_X509(x, &pin->der)) <= 0) {
		kp_fail(err, KP_ERR_CERT_INVALID, "pinned CA certificate %s is "
		    "not a PEM Ed25519 certificate; install the chain CA's "
		    "ca.crt", ca_file);
		goto out;
	}
	SHA256(pin->der, (size_t)pin->der_len, pin->sha);
	rc = 0;
out:
	X509_free(x);
	BIO_free(bio);
	free(buf);
	ERR_clear_error();
	return rc;
}

static void
s_pin_free(struct s_pin *pin)
{
	OPENSSL_free(pin->der);
	pin->der = NULL;
}

/* ---- parsing -------------------------------------------------------- */

/* The parser's position in b->buf. */
struct s_cur {
	const bundle_t *b;
	size_t pos;
	const char *path;
};

static int
s_malformed(const struct s_cur *c, const char *what, kp_err_t *err)
{
	return kp_fail(err, KP_ERR_MALFORMED, "bundle %s is malformed at byte "
	    "%zu: %s; get a fresh copy from the chain CA", c->path, c->pos,
	    what);
}

/* The next line (without "\n") into line; -1 if there is none. */
static int
s_line(struct s_cur *c, char *line, size_t max)
{
	const uint8_t *p = c->b->buf + c->pos;
	const uint8_t *nl = memchr(p, '\n', c->b->len - c->pos);
	size_t n;

	if (nl == NULL || (n = (size_t)(nl - p)) >= max || memchr(p, 0, n))
		return -1;
	memcpy(line, p, n);
	line[n] = '\0';
	c->pos += n + 1;
	return 0;
}

static int
s_hex(const char *hex, uint8_t *out, size_t len)
{
	size_t bin_len = 0;

	return strlen(hex) == 2 * len && sodium_hex2bin(out, len, hex,
	    2 * len, NULL, &bin_len, NULL) == 0 && bin_len == len ? 0 : -1;
}

static int
s_uint(const char *s, uint64_t *out)
{
	uint64_t n = 0;

	if (*s < '1' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++)
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*s - '0'), &n))
			return -1;
	*out = n;
	return *s == '\0' ? 0 : -1;
}

static int
s_issued_ok(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
	size_t i;

	if (strlen(s) != KP_BUNDLE_ISSUED_LEN)
		return 0;
	for (i = 0; i < KP_BUNDLE_ISSUED_LEN; i++)
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return 0;
	return 1;
}

static int
s_header(struct s_cur *c, bundle_t *b, uint8_t ca_sha[32], kp_err_t *err)
{
	char line[256];

	if (s_line(c, line, sizeof(line)) == -1 ||
	    strcmp(line, "ketenpost-bundle 1") != 0)
		return s_malformed(c, "the first line is not 'ketenpost-bundle "
		    "1' (not a bundle, or a newer format)", err);
	if (s_line(c, line, sizeof(line)) == -1 ||
	    strncmp(line, "version ", 8) != 0 ||
	    s_uint(line + 8, &b->version) == -1)
		return s_malformed(c, "no 'version N' line", err);
	if (s_line(c, line, sizeof(line)) == -1 ||
	    strncmp(line, "issued ", 7) != 0 || !s_issued_ok(line + 7))
		return s_malformed(c, "no 'issued YYYY-MM-DDTHH:MM:SSZ' line",
		    err);
	memcpy(b->issued, line + 7, KP_BUNDLE_ISSUED_LEN + 1);
	if (s_line(c, line, sizeof(line)) == -1 ||
	    strncmp(line, "ca-sha256 ", 10) != 0 ||
	    s_hex(line + 10, ca_sha, 32) == -1)
		return s_malformed(c, "no 'ca-sha256 HEX' line", err);
	return 0;
}

/* "ca.crt", "crl.pem", "policy.ini", "orgs/<OIN>/cert.pem|previous.pem" */
static int
s_name_ok(const char *name)
{
	char oin[KP_OIN_LEN + 1];
	const char *rest;

	if (!strcmp(name, "ca.crt") || !strcmp(name, "crl.pem") ||
	    !strcmp(name, "policy.ini"))
		return 1;
	if (strncmp(name, "orgs/", 5) != 0 || strlen(name) < 5 + KP_OIN_LEN)
		return 0;
	memcpy(oin, name + 5, KP_OIN_LEN);
	oin[KP_OIN_LEN] = '\0';
	rest = name + 5 + KP_OIN_LEN;
	return kp_oin_valid(oin) && (!strcmp(rest, "/cert.pem") ||
	    !strcmp(rest, "/previous.pem"));
}

static const struct s_item *
s_find(const bundle_t *b, const char *name)
{
	size_t i;

	for (i = 0; i < b->n_items; i++)
		if (strcmp(b->items[i].name, name) == 0)
			return &b->items[i];
	return NULL;
}

/* One "file NAME LEN" item; 1 if it was "end" instead, 0, -1. */
static int
s_item(struct s_cur *c, bundle_t *b, kp_err_t *err)
{
	char line[160], name[S_NAME_MAX + 1];
	uint64_t len = 0;
	char *sp;
	struct s_item *it;

	if (s_line(c, line, sizeof(line)) == -1)
		return s_malformed(c, "an item line is missing", err);
	if (strcmp(line, "end") == 0)
		return 1;
	if (strncmp(line, "file ", 5) != 0 ||
	    (sp = strrchr(line + 5, ' ')) == NULL ||
	    (size_t)(sp - (line + 5)) >= sizeof(name) ||
	    (strcmp(sp + 1, "0") != 0 && s_uint(sp + 1, &len) == -1))
		return s_malformed(c, "not a 'file NAME LENGTH' line", err);
	memcpy(name, line + 5, (size_t)(sp - (line + 5)));
	name[sp - (line + 5)] = '\0';
	if (!s_name_ok(name) || s_find(b, name) != NULL ||
	    b->n_items == S_ITEMS_MAX)
		return s_malformed(c, "an unknown or repeated item name", err);
	if (len >= c->b->len - c->pos || c->b->buf[c->pos + len] != '\n')
		return s_malformed(c, "an item is cut short", err);
	it = &b->items[b->n_items++];
	snprintf(it->name, sizeof(it->name), "%s", name);
	it->off = c->pos;
	it->len = (size_t)len;
	c->pos += (size_t)len + 1;
	return 0;
}

/* Items, "end", and the signature line, which must end the file. */
static int
s_body(struct s_cur *c, bundle_t *b, size_t *signed_len,
    uint8_t sig[crypto_sign_BYTES], kp_err_t *err)
{
	char line[160];
	int r;

	while ((r = s_item(c, b, err)) == 0)
		;
	if (r == -1)
		return -1;
	*signed_len = c->pos;
	if (s_line(c, line, sizeof(line)) == -1 ||
	    strncmp(line, "signature ", 10) != 0 ||
	    s_hex(line + 10, sig, crypto_sign_BYTES) == -1)
		return s_malformed(c, "no 'signature HEX' line after 'end'",
		    err);
	if (c->pos != b->len)
		return s_malformed(c, "bytes after the signature", err);
	return 0;
}

/* The ca.crt item is the pinned certificate; the required items exist. */
static int
s_items_check(const bundle_t *b, const struct s_pin *pin, const char *path,
    kp_err_t *err)
{
	static const char *const need[] = { "ca.crt", "crl.pem", "policy.ini" };
	const struct s_item *it;
	const unsigned char *p;
	BIO *bio;
	X509 *x = NULL;
	uint8_t *der = NULL;
	int der_len = -1;
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (s_find(b, need[i]) == NULL)
			return kp_fail(err, KP_ERR_MALFORMED, "bundle %s has no "
			    "%s; get a complete bundle from the chain CA", path,
			    need[i]);
	it = s_find(b, "ca.crt");
	p = b->buf + it->off;
	if ((bio = BIO_new_mem_buf(p, (int)it->len)) != NULL &&
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		der_len = i2d_X509(x, &der);
	BIO_free(bio);
	X509_free(x);
	i = der_len == pin->der_len && memcmp(der, pin->der,
	    (size_t)der_len) == 0;
	OPENSSL_free(der);
	ERR_clear_error();
	if (!i)
		return kp_fail(err, KP_ERR_CERT_UNTRUSTED, "bundle %s: its "
		    "ca.crt is not the pinned CA certificate", path);
	return 0;
}

int
bundle_load(const char *path, const char *ca_file, bundle_t **out,
    kp_err_t *err)
{
	struct s_pin pin = { 0 };
	struct s_cur c;
	bundle_t *b = NULL;
	uint8_t ca_sha[32], sig[crypto_sign_BYTES];
	size_t signed_len = 0;
	int rc = -1;

	*out = NULL;
	if (trust_file_check(path, err) == -1 ||
	    s_pin_load(ca_file, &pin, err) == -1)
		goto out;
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->items = calloc(S_ITEMS_MAX, sizeof(*b->items))) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory reading %s", path);
		goto out;
	}
	if (kp_read_file(path, KP_BUNDLE_MAX, &b->buf, &b->len) == -1) {
		kp_fail(err, KP_ERR_IO, "cannot read bundle %s: %s", path,
		    strerror(errno));
		goto out;
	}
	c = (struct s_cur){ b, 0, path };
	if (s_header(&c, b, ca_sha, err) == -1)
		goto out;
	if (memcmp(ca_sha, pin.sha, sizeof(ca_sha)) != 0) {
		kp_fail(err, KP_ERR_CERT_UNTRUSTED, "bundle %s comes from "
		    "another CA than the pinned %s; install the bundle of your "
		    "own chain", path, ca_file);
		goto out;
	}
	if (s_body(&c, b, &signed_len, sig, err) == -1)
		goto out;
	if (crypto_sign_verify_detached(sig, b->buf, signed_len, pin.pk) != 0) {
		kp_fail(err, KP_ERR_BAD_SIGNATURE, "bundle %s: the chain CA's "
		    "signature does not verify (damaged or tampered with); get "
		    "a fresh copy from the chain CA", path);
		goto out;
	}
	if (s_items_check(b, &pin, path, err) == -1)
		goto out;
	*out = b;
	b = NULL;
	rc = 0;
out:
	bundle_destroy(&b);
	s_pin_free(&pin);
	return rc;
}

void
bundle_destroy(bundle_t **self_p)
{
	if (self_p == NULL || *self_p == NULL)
		return;
	free((*self_p)->buf);
	free((*self_p)->items);
	free(*self_p);
	*self_p = NULL;
}

uint64_t bundle_version(const bundle_t *self) { return self->version; }
const char *bundle_issued(const bundle_t *self) { return self->issued; }
size_t bundle_count(const bundle_t *self) { return self->n_items; }

/* ---- unpacking ------------------------------------------------------ */

static int
s_write(const char *path, const uint8_t *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ssize_t n;

	if (fd == -1)
		return -1;
	while (len > 0) {
		if ((n = write(fd, p, len)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return close(fd);
}

/* Remove what bundle_unpack may have made below dir. */
static void
s_unmake(const bundle_t *b, const char *dir)
{
	char path[PATH_MAX];
	size_t i;

	for (i = b->n_items; i-- > 0;) {
		snprintf(path, sizeof(path), "%s/%s", dir, b->items[i].name);
		(void)unlink(path);
		if (strncmp(b->items[i].name, "orgs/", 5) == 0) {
			snprintf(path, sizeof(path), "%s/orgs/%.*s", dir,
			    KP_OIN_LEN, b->items[i].name + 5);
			(void)rmdir(path);
		}
	}
	snprintf(path, sizeof(path), "%s/orgs", dir);
	(void)rmdir(path);
	(void)rmdir(dir);
}

int
bundle_unpack(const bundle_t *self, const char *dir, kp_err_t *err)
{
	char path[PATH_MAX];
	const struct s_item *it;
	size_t i;

	if (mkdir(dir, 0700) == -1)
		return kp_fail(err, KP_ERR_IO, "cannot make %s: %s", dir,
		    strerror(errno));
	snprintf(path, sizeof(path), "%s/orgs", dir);
	if (mkdir(path, 0755) == -1)
		goto fail;
	for (i = 0; i < self->n_items; i++) {
		it = &self->items[i];
		if (strncmp(it->name, "orgs/", 5) == 0) {
			snprintf(path, sizeof(path), "%s/orgs/%.*s", dir,
			    KP_OIN_LEN, it->name + 5);
			if (mkdir(path, 0755) == -1 && errno != EEXIST)
				goto fail;
		}
		if (snprintf(path, sizeof(path), "%s/%s", dir, it->name) >=
		    (int)sizeof(path) ||
		    s_write(path, self->buf + it->off, it->len) == -1)
			goto fail;
	}
	return 0;
fail:
	kp_fail(err, KP_ERR_IO, "cannot unpack the bundle into %s: %s", dir,
	    strerror(errno));
	s_unmake(self, dir);
	return -1;
}
