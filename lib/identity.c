/*
 * identity.c: organisation identities, verified back to the chain CA.
 *
 * This module owns three things: the verification store (trust_t: ca.crt
 * and crl.pem in an X509_STORE), verified public identities (partner_t,
 * filled only from a certificate that X509_verify_cert() accepted), and the
 * own organisation's secret keys (identity_t, in sodium_malloc memory that
 * is read-only once loaded and wiped by identity_destroy()).
 *
 * It must never trust a field of a certificate that did not verify, never
 * read a secret key file that group or others can access, and never leave
 * key material in temporary buffers: every exit path wipes them.
 *
 * Rules, in the order they are checked:
 *   1. trust_load(): ca.crt is a self-signed CA certificate; crl.pem exists,
 *      parses, and is signed by that CA.  A missing CRL is an error rather
 *      than a silently skipped revocation check.
 *   2. partner_load(): X509_verify_cert() with X509_V_FLAG_CRL_CHECK (chain,
 *      validity now, revocation), then keyUsage digitalSignature, not a CA,
 *      then exactly one serialNumber (a valid OIN), O and OU (a known role),
 *      an Ed25519 public key and both X25519 key extensions.
 *   3. identity_load(): the three secret key files are opened and fstat()ed
 *      before a byte is read (any group/other permission refused, for all
 *      three before anything else), then cert.pem is loaded as in 2, then
 *      each key must be of the right type and its public key must equal
 *      the one in the verified certificate; then previous/payload.key and
 *      next/payload.key, if present, under the same file rules: kept only
 *      to open envelopes during a renewal, never to seal or sign.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "bundle.h"
#include "identity.h"

#define S_CERT_MAX (64 * 1024)        /* a certificate PEM file */
#define S_CRL_MAX (16 * 1024 * 1024)  /* a CRL PEM file */
#define S_KEY_LEN 32
#define S_NAME_BYTES (KP_NAME_MAX * 4 + 1) /* 64 UTF-8 characters */

/* Layout of identity_t.secrets (one sodium_malloc region). */
#define S_SIGN_SK_OFF 0
#define S_TRANSPORT_SK_OFF crypto_sign_SECRETKEYBYTES
#define S_PAYLOAD_SK_OFF (S_TRANSPORT_SK_OFF + crypto_scalarmult_SCALARBYTES)
#define S_STORAGE_OFF (S_PAYLOAD_SK_OFF + crypto_scalarmult_SCALARBYTES)
#define S_EXTRA_OFF (S_STORAGE_OFF + S_KEY_LEN) /* opening-only payload sks */
#define S_SECRETS_LEN (S_EXTRA_OFF + KP_EXTRA_PAYLOAD_KEYS * S_KEY_LEN)
#define S_STORAGE_FILE_LEN 65 /* 64 hex digits and "\n" */

struct trust {
	X509_STORE *store;
	int64_t crl_next;    /* CRL nextUpdate, Unix seconds (0: none) */
	int64_t ca_not_after;
};

struct partner {
	char oin[KP_OIN_LEN + 1];
	char name[S_NAME_BYTES];
	int role;
	char endpoint[KP_ENDPOINT_MAX];
	int has_endpoint;
	char *cert_file;
	int64_t not_after;   /* Unix seconds */
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t transport_pk[S_KEY_LEN];
	uint8_t payload_pk[S_KEY_LEN];
};

struct identity {
	partner_t *pub;
	int has_storage;  /* storage.key read: storage secret independent */
	uint8_t *secrets; /* sodium_malloc: sign_sk | transport_sk | payload_sk
	                   * | storage | extra payload sks */
	size_t n_extra;   /* payload keys of previous/ and next/ loaded */
	uint8_t extra_pk[KP_EXTRA_PAYLOAD_KEYS][S_KEY_LEN];
};

/* ---- files ---------------------------------------------------------- */

static int
s_path(char *buf, size_t len, const char *dir, const char *file,
    kp_err_t *err)
{
	int n = snprintf(buf, len, "%s/%s", dir, file);

	if (n < 0 || (size_t)n >= len)
		return kp_fail(err, KP_ERR_INVALID_ARG,
		    "path %s/%s is too long", dir, file);
	return 0;
}

/* Read a whole (public) PEM file into a memory BIO.  code and hint: the
 * error for a file that cannot be read (KP_ERR_IO, or KP_ERR_CRL). */
static int
s_read_bio(const char *path, size_t max, int code, const char *hint,
    BIO **out, kp_err_t *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int rc = -1;

	if (access(path, F_OK) == 0 && trust_file_check(path, err) == -1)
		goto out;
	if (kp_read_file(path, max, &buf, &len) == -1) {
		kp_fail(err, code, "cannot read %s: %s%s", path,
		    strerror(errno), hint);
		goto out;
	}
	/* Copy: a BIO_new_mem_buf() BIO would not own buf. */
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    BIO_write(bio, buf, (int)len) != (int)len) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory reading %s", path);
		goto out;
	}
	*out = bio;
	bio = NULL;
	rc = 0;
out:
	BIO_free(bio);
	free(buf);
	return rc;
}

static int
s_read_cert(const char *path, X509 **out, kp_err_t *err)
{
	BIO *bio = NULL;
	int rc = -1;

	if (s_read_bio(path, S_CERT_MAX, KP_ERR_IO, "", &bio, err) == -1)
		goto out;
	if ((*out = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		kp_fail(err, KP_ERR_CERT_INVALID, "%s is not a PEM X.509 "
		    "certificate; replace it with the one the chain CA issued",
		    path);
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio);
	return rc;
}

static int
s_read_crl(const char *path, X509_CRL **out, kp_err_t *err)
{
	BIO *bio = NULL;
	int rc = -1;

	if (s_read_bio(path, S_CRL_MAX, KP_ERR_CRL, "; the chain CA's CRL is "
	    "required (an empty one is fine): get crl.pem from the chain CA",
	    &bio, err) == -1)
		goto out;
	if ((*out = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) == NULL) {
		kp_fail(err, KP_ERR_CRL, "%s is not a PEM X.509 CRL; get a "
		    "current crl.pem from the chain CA", path);
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio);
	return rc;
}

/* ---- trust ---------------------------------------------------------- */

/* An ASN1_TIME as Unix seconds; 0 if absent or unreadable. */
static int64_t
s_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

/*
 * With TRUST_STALE_CRL_OK: an expired CRL (past nextUpdate) is still read
 * for its revocations, so a daemon can stay up and fail closed on its own
 * terms (see trust_crl_next_update()) rather than lose every partner.
 * Every other verification error stands.
 */
static int
s_verify_stale_ok(int ok, X509_STORE_CTX *ctx)
{
	if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CRL_HAS_EXPIRED)
		return 1;
	return ok;
}

static int
s_check_ca(X509 *ca, const char *path, kp_err_t *err)
{
	if (X509_check_ca(ca) != 1 || X509_self_signed(ca, 1) != 1)
		return kp_fail(err, KP_ERR_CERT_INVALID, "%s is not a "
		    "self-signed CA certificate; use the ca.crt made by "
		    "ketenpost-certs init", path);
	return 0;
}

static int
s_check_crl(X509_CRL *crl, X509 *ca, const char *path, kp_err_t *err)
{
	EVP_PKEY *pk = X509_get0_pubkey(ca);

	if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(ca)) != 0 || pk == NULL ||
	    X509_CRL_verify(crl, pk) != 1)
		return kp_fail(err, KP_ERR_CRL, "CRL %s is not signed by the "
		    "chain CA in ca.crt; get crl.pem from the same CA", path);
	return 0;
}

static int
s_store_new(X509 *ca, X509_CRL *crl, X509_STORE **out, kp_err_t *err)
{
	X509_STORE *store = X509_STORE_new();

	if (store == NULL || X509_STORE_add_cert(store, ca) != 1 ||
	    X509_STORE_add_crl(store, crl) != 1 ||
	    X509_STORE_set_flags(store,
	    X509_V_FLAG_CRL_CHECK | X509_V_FLAG_X509_STRICT) != 1) {
		X509_STORE_free(store);
		return kp_fail(err, KP_ERR_NOMEM,
		    "cannot build the X.509 verification store");
	}
	*out = store;
	return 0;
}

int
trust_load(const char *chain_dir, trust_t **out, kp_err_t *err)
{
	return trust_load_ex(chain_dir, 0, out, err);
}

int
trust_load_ex(const char *chain_dir, int flags, trust_t **out, kp_err_t *err)
{
	char ca_path[PATH_MAX], crl_path[PATH_MAX];
	trust_t *t = NULL;
	X509 *ca = NULL;
	X509_CRL *crl = NULL;
	int rc = -1;

	if (chain_dir == NULL || out == NULL)
		return kp_fail(err, KP_ERR_INVALID_ARG, "trust_load: NULL");
	*out = NULL;
	if (s_path(ca_path, sizeof(ca_path), chain_dir, "ca.crt", err) == -1 ||
	    s_path(crl_path, sizeof(crl_path), chain_dir, "crl.pem", err) == -1)
		goto out;
	if (s_read_cert(ca_path, &ca, err) == -1 ||
	    s_check_ca(ca, ca_path, err) == -1 ||
	    s_read_crl(crl_path, &crl, err) == -1 ||
	    s_check_crl(crl, ca, crl_path, err) == -1)
		goto out;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (s_store_new(ca, crl, &t->store, err) == -1)
		goto out;
	if (flags & TRUST_STALE_CRL_OK)
		X509_STORE_set_verify_cb(t->store, s_verify_stale_ok);
	t->crl_next = s_unix(X509_CRL_get0_nextUpdate(crl));
	t->ca_not_after = s_unix(X509_get0_notAfter(ca));
	*out = t;
	t = NULL;
	rc = 0;
out:
	trust_destroy(&t);
	X509_CRL_free(crl);
	X509_free(ca);
	ERR_clear_error();
	return rc;
}

int64_t trust_crl_next_update(const trust_t *t) { return t->crl_next; }
int64_t trust_ca_not_after(const trust_t *t) { return t->ca_not_after; }

void
trust_destroy(trust_t **self_p)
{
	if (self_p == NULL || *self_p == NULL)
		return;
	X509_STORE_free((*self_p)->store);
	free(*self_p);
	*self_p = NULL;
}

/* ---- verification --------------------------------------------------- */

static int
s_map_verify_error(int e)
{
	switch (e) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return KP_ERR_CERT_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return KP_ERR_CERT_NOT_YET_VALID;
	case X509_V_ERR_CERT_REVOKED:
		return KP_ERR_CERT_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_REJECTED:
	case X509_V_ERR_SUBJECT_ISSUER_MISMATCH:
	case X509_V_ERR_AKID_SKID_MISMATCH:
	case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
		return KP_ERR_CERT_UNTRUSTED;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
	case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
		return KP_ERR_CRL;
	case X509_V_ERR_OUT_OF_MEM:
		return KP_ERR_NOMEM;
	default:
		return KP_ERR_CERT_INVALID;
	}
}

static const char *
s_advice(int code)
{
	switch (code) {
	case KP_ERR_CERT_EXPIRED:
		return "ask the chain CA for a new certificate";
	case KP_ERR_CERT_NOT_YET_VALID:
		return "check the system clock, or wait until it is valid";
	case KP_ERR_CERT_REVOKED:
		return "the chain CA revoked it: do not use it";
	case KP_ERR_CERT_UNTRUSTED:
		return "use a certificate issued by this chain's CA (ca.crt)";
	case KP_ERR_CRL:
		return "get a current crl.pem from the chain CA";
	default:
		return "ask the chain CA for a valid certificate";
	}
}

/* " (not after 2027-01-31T00:00:00Z)" for the validity errors, else "". */
static void
s_when(X509 *cur, int e, char *buf, size_t len)
{
	const ASN1_TIME *t = NULL;
	const char *label = "";
	struct tm tm;
	char stamp[32];

	buf[0] = '\0';
	if (cur != NULL && e == X509_V_ERR_CERT_HAS_EXPIRED) {
		t = X509_get0_notAfter(cur);
		label = "not after";
	} else if (cur != NULL && e == X509_V_ERR_CERT_NOT_YET_VALID) {
		t = X509_get0_notBefore(cur);
		label = "not before";
	}
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return;
	snprintf(buf, len, " (%s %s)", label, stamp);
}

static int
s_verify_fail(X509_STORE_CTX *ctx, const char *file, kp_err_t *err)
{
	int e = X509_STORE_CTX_get_error(ctx);
	int code = s_map_verify_error(e);
	char when[64];

	s_when(X509_STORE_CTX_get_current_cert(ctx), e, when, sizeof(when));
	return kp_fail(err, code, "certificate %s: %s%s%s; %s", file,
	    X509_STORE_CTX_get_error_depth(ctx) > 0 ? "chain CA certificate: "
	    : "", X509_verify_cert_error_string(e), when, s_advice(code));
}

static int
s_verify(const trust_t *trust, X509 *x, const char *file, kp_err_t *err)
{
	X509_STORE_CTX *ctx = NULL;
	int rc = -1;

	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, trust->store, x, NULL) != 1) {
		kp_fail(err, KP_ERR_NOMEM, "cannot verify %s: out of memory",
		    file);
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		s_verify_fail(ctx, file, err);
		goto out;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	return rc;
}

static int
s_check_usage(X509 *x, const char *file, kp_err_t *err)
{
	if (!(X509_get_extension_flags(x) & EXFLAG_KUSAGE) ||
	    !(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE))
		return kp_fail(err, KP_ERR_CERT_KEY_USAGE, "certificate %s: "
		    "keyUsage does not include digitalSignature; ask the chain "
		    "CA for a signing certificate", file);
	if (X509_check_ca(x) != 0)
		return kp_fail(err, KP_ERR_CERT_INVALID, "certificate %s is a "
		    "CA certificate, not an organisation's", file);
	return 0;
}

/* ---- certificate contents ------------------------------------------- */

static int
s_text_ok(const unsigned char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* The one subject entry nid as a NUL-terminated UTF-8 string. */
static int
s_subject_entry(X509 *x, int nid, const char *label, char *out, size_t outlen,
    const char *file, kp_err_t *err)
{
	X509_NAME *name = X509_get_subject_name(x);
	unsigned char *utf8 = NULL;
	int i, len = -1, rc = -1;

	i = X509_NAME_get_index_by_NID(name, nid, -1);
	if (i < 0 || X509_NAME_get_index_by_NID(name, nid, i) >= 0) {
		kp_fail(err, KP_ERR_CERT_INVALID, "certificate %s: the subject "
		    "must have exactly one %s", file, label);
		goto out;
	}
	len = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (len <= 0 || (size_t)len >= outlen || !s_text_ok(utf8, len)) {
		kp_fail(err, KP_ERR_CERT_INVALID, "certificate %s: subject %s "
		    "is empty, too long or not printable", file, label);
		goto out;
	}
	memcpy(out, utf8, (size_t)len);
	out[len] = '\0';
	rc = 0;
out:
	OPENSSL_free(utf8);
	return rc;
}

static size_t
s_utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static int
s_subject(X509 *x, partner_t *p, const char *file, kp_err_t *err)
{
	char ou[32];

	if (s_subject_entry(x, NID_serialNumber, "serialNumber (OIN)", p->oin,
	    sizeof(p->oin), file, err) == -1 ||
	    s_subject_entry(x, NID_organizationName, "O (name)", p->name,
	    sizeof(p->name), file, err) == -1 ||
	    s_subject_entry(x, NID_organizationalUnitName, "OU (role)", ou,
	    sizeof(ou), file, err) == -1)
		return -1;
	if (!kp_oin_valid(p->oin))
		return kp_fail(err, KP_ERR_CERT_INVALID, "certificate %s: "
		    "subject serialNumber '%s' is not a 20-digit OIN", file,
		    p->oin);
	if (s_utf8_chars(p->name) > KP_NAME_MAX)
		return kp_fail(err, KP_ERR_CERT_INVALID, "certificate %s: "
		    "subject O is longer than %d characters", file,
		    KP_NAME_MAX);
	if ((p->role = kp_role_from_string(ou)) == KP_ROLE_NONE)
		return kp_fail(err, KP_ERR_CERT_INVALID, "certificate %s: "
		    "subject OU '%s' is not a known role", file, ou);
	return 0;
}

static int
s_sign_pk(X509 *x, partner_t *p, const char *file, kp_err_t *err)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	size_t len = sizeof(p->sign_pk);

	if (pk == NULL || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(pk, p->sign_pk, &len) != 1 ||
	    len != sizeof(p->sign_pk))
		return kp_fail(err, KP_ERR_CERT_INVALID, "certificate %s: the "
		    "public key is not Ed25519", file);
	return 0;
}

/* The 32 bytes in the one extension oid: a DER OCTET STRING, nothing else. */
static int
s_ext_key(X509 *x, const char *oid, const char *label, uint8_t out[S_KEY_LEN],
    const char *file, kp_err_t *err)
{
	ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *inner = NULL;
	const ASN1_OCTET_STRING *data;
	const unsigned char *q, *end;
	int i, rc = -1;

	if ((obj = OBJ_txt2obj(oid, 1)) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "cannot parse OID %s", oid);
		goto out;
	}
	i = X509_get_ext_by_OBJ(x, obj, -1);
	if (i < 0 || X509_get_ext_by_OBJ(x, obj, i) >= 0) {
		kp_fail(err, KP_ERR_CERT_INVALID, "certificate %s must have "
		    "exactly one %s key extension (%s)", file, label, oid);
		goto out;
	}
	data = X509_EXTENSION_get_data(X509_get_ext(x, i));
	q = ASN1_STRING_get0_data(data);
	end = q + ASN1_STRING_length(data);
	inner = d2i_ASN1_OCTET_STRING(NULL, &q, end - q);
	if (inner == NULL || q != end || ASN1_STRING_length(inner) != S_KEY_LEN
	    || sodium_is_zero(ASN1_STRING_get0_data(inner), S_KEY_LEN)) {
		kp_fail(err, KP_ERR_CERT_INVALID, "certificate %s: the %s key "
		    "extension is not a 32-byte OCTET STRING", file, label);
		goto out;
	}
	memcpy(out, ASN1_STRING_get0_data(inner), S_KEY_LEN);
	rc = 0;
out:
	ASN1_OCTET_STRING_free(inner);
	ASN1_OBJECT_free(obj);
	return rc;
}

/* The URI subjectAltName, if any; more than one is an error. */
static int
s_endpoint(X509 *x, partner_t *p, const char *file, kp_err_t *err)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *g;
	int crit = -1, i, len, rc = 0;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL)
		return crit == -1 ? 0 : kp_fail(err, KP_ERR_CERT_INVALID,
		    "certificate %s: unreadable subjectAltName", file);
	for (i = 0; rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_URI)
			continue;
		len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (p->has_endpoint || len <= 0 || len >= KP_ENDPOINT_MAX ||
		    !s_text_ok(ASN1_STRING_get0_data(
		    g->d.uniformResourceIdentifier), (size_t)len)) {
			rc = kp_fail(err, KP_ERR_CERT_INVALID, "certificate %s: "
			    "the URI subjectAltName (endpoint) must be one "
			    "printable URI", file);
			break;
		}
		memcpy(p->endpoint,
		    ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
		    (size_t)len);
		p->endpoint[len] = '\0';
		p->has_endpoint = 1;
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

/* ---- partner -------------------------------------------------------- */

int
partner_load(const trust_t *trust, const char *cert_file, partner_t **out,
    kp_err_t *err)
{
	partner_t *p = NULL;
	X509 *x = NULL;
	int rc = -1;

	if (trust == NULL || cert_file == NULL || out == NULL)
		return kp_fail(err, KP_ERR_INVALID_ARG, "partner_load: NULL");
	*out = NULL;
	if (s_read_cert(cert_file, &x, err) == -1 ||
	    s_verify(trust, x, cert_file, err) == -1 ||
	    s_check_usage(x, cert_file, err) == -1)
		goto out;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->cert_file = strdup(cert_file)) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory loading %s",
		    cert_file);
		goto out;
	}
	p->not_after = s_unix(X509_get0_notAfter(x));
	if (s_subject(x, p, cert_file, err) == -1 ||
	    s_sign_pk(x, p, cert_file, err) == -1 ||
	    s_ext_key(x, KP_OID_TRANSPORT_KEY, "transport", p->transport_pk,
	    cert_file, err) == -1 ||
	    s_ext_key(x, KP_OID_PAYLOAD_KEY, "payload", p->payload_pk,
	    cert_file, err) == -1 ||
	    s_endpoint(x, p, cert_file, err) == -1)
		goto out;
	*out = p;
	p = NULL;
	rc = 0;
out:
	partner_destroy(&p);
	X509_free(x);
	ERR_clear_error();
	return rc;
}

void
partner_destroy(partner_t **self_p)
{
	if (self_p == NULL || *self_p == NULL)
		return;
	free((*self_p)->cert_file);
	free(*self_p);
	*self_p = NULL;
}

const char *partner_oin(const partner_t *self) { return self->oin; }
const char *partner_name(const partner_t *self) { return self->name; }
int partner_role(const partner_t *self) { return self->role; }
const char *partner_cert_file(const partner_t *self) { return self->cert_file; }
int64_t partner_not_after(const partner_t *self) { return self->not_after; }
const uint8_t *partner_sign_pk(const partner_t *self) { return self->sign_pk; }

const char *
partner_endpoint(const partner_t *self)
{
	return self->has_endpoint ? self->endpoint : NULL;
}

const uint8_t *
partner_transport_pk(const partner_t *self)
{
	return self->transport_pk;
}

const uint8_t *
partner_payload_pk(const partner_t *self)
{
	return self->payload_pk;
}

/* ---- secret keys ---------------------------------------------------- */

/* Never prompt for a passphrase: a daemon has no terminal. */
static int
s_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

/* Open a secret key file and refuse it, before reading, if group or
 * others have any access.  fstat() on the open descriptor: no race. */
static int
s_open_secret(const char *path, int *fd_out, kp_err_t *err)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) ==
	    -1)
		return kp_fail(err, KP_ERR_IO, "cannot open secret key file "
		    "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return kp_fail(err, KP_ERR_IO, "secret key file %s is not a "
		    "readable regular file", path);
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return kp_fail(err, KP_ERR_KEY_FILE_MODE, "secret key file %s "
		    "is owned by uid %u, not by the daemon's user (uid %u); "
		    "chown it", path, (unsigned)st.st_uid, (unsigned)geteuid());
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return kp_fail(err, KP_ERR_KEY_FILE_MODE, "secret key file %s "
		    "has mode %04o; it must not be accessible by group or "
		    "others (chmod 600)", path, (unsigned)(st.st_mode & 07777));
	}
	*fd_out = fd;
	return 0;
}

/* The raw 32-byte private key of type type (EVP_PKEY_ED25519: the seed)
 * from a PEM file, into raw, which the caller wipes. */
static int
s_read_secret(const char *path, int type, const char *type_name,
    uint8_t raw[S_KEY_LEN], kp_err_t *err)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	size_t len = S_KEY_LEN;
	int fd = -1, rc = -1;

	if (s_open_secret(path, &fd, err) == -1)
		goto out;
	if ((bio = BIO_new_fd(fd, BIO_NOCLOSE)) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory reading %s", path);
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, s_no_passphrase, NULL);
	if (pkey == NULL || EVP_PKEY_get_id(pkey) != type ||
	    EVP_PKEY_get_raw_private_key(pkey, raw, &len) != 1 ||
	    len != S_KEY_LEN) {
		kp_fail(err, KP_ERR_KEY_INVALID, "secret key file %s is not an "
		    "unencrypted PEM %s private key; restore it from the "
		    "organisation's key backup", path, type_name);
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	if (fd != -1)
		close(fd);
	ERR_clear_error();
	return rc;
}

static int
s_mismatch(const char *key_path, const char *cert_file, kp_err_t *err)
{
	return kp_fail(err, KP_ERR_KEY_INVALID, "secret key file %s does not "
	    "match the public key in %s; restore this organisation's own key",
	    key_path, cert_file);
}

static int
s_load_sign(const char *org_dir, identity_t *id, kp_err_t *err)
{
	char path[PATH_MAX];
	uint8_t seed[S_KEY_LEN], pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t *sk = id->secrets + S_SIGN_SK_OFF;
	int rc = -1;

	if (s_path(path, sizeof(path), org_dir, "sign.key", err) == -1 ||
	    s_read_secret(path, EVP_PKEY_ED25519, "Ed25519", seed, err) == -1)
		goto out;
	if (crypto_sign_seed_keypair(pk, sk, seed) != 0) {
		kp_fail(err, KP_ERR_KEY_INVALID, "secret key file %s: cannot "
		    "derive the Ed25519 key pair", path);
		goto out;
	}
	if (sodium_memcmp(pk, partner_sign_pk(id->pub), sizeof(pk)) != 0) {
		s_mismatch(path, partner_cert_file(id->pub), err);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	return rc;
}

static int
s_load_x25519(const char *org_dir, const char *file, uint8_t *sk,
    const uint8_t *cert_pk, const char *cert_file, kp_err_t *err)
{
	char path[PATH_MAX];
	uint8_t pk[crypto_scalarmult_BYTES];

	if (s_path(path, sizeof(path), org_dir, file, err) == -1 ||
	    s_read_secret(path, EVP_PKEY_X25519, "X25519", sk, err) == -1)
		return -1;
	if (crypto_scalarmult_base(pk, sk) != 0)
		return kp_fail(err, KP_ERR_KEY_INVALID, "secret key file %s: "
		    "cannot derive the X25519 public key", path);
	if (sodium_memcmp(pk, cert_pk, sizeof(pk)) != 0)
		return s_mismatch(path, cert_file, err);
	return 0;
}

/* ---- identity ------------------------------------------------------- */

/* All three modes first: a key that others can read is reported even when
 * something else (an expired certificate) is wrong too. */
static int
s_check_modes(const char *org_dir, kp_err_t *err)
{
	static const char *const files[] = {
		"sign.key", "transport.key", "payload.key"
	};
	char path[PATH_MAX];
	size_t i;
	int fd;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (s_path(path, sizeof(path), org_dir, files[i], err) == -1 ||
		    s_open_secret(path, &fd, err) == -1)
			return -1;
		close(fd);
	}
	return 0;
}

/*
 * org_dir/storage.key, if present: 64 hex digits, the root of the storage
 * and pseudonym keys, independent of the transport and payload keys so
 * that renewing those keeps stored payloads and pseudonyms readable.
 * Absent (an organisation from before storage.key): the payload secret
 * key plays its part, as it always did.
 */
static int
s_load_storage(const char *org_dir, identity_t *id, kp_err_t *err)
{
	char path[PATH_MAX], buf[S_STORAGE_FILE_LEN + 1];
	size_t bin_len = 0;
	ssize_t n;
	int fd = -1, rc = -1;

	if (s_path(path, sizeof(path), org_dir, "storage.key", err) == -1)
		return -1;
	if (access(path, F_OK) != 0)
		return 0;
	if (s_open_secret(path, &fd, err) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf));
	if (n < 64 || n > S_STORAGE_FILE_LEN || (n == 65 && buf[64] != '\n') ||
	    sodium_hex2bin(id->secrets + S_STORAGE_OFF, S_KEY_LEN, buf, 64,
	    NULL, &bin_len, NULL) != 0 || bin_len != S_KEY_LEN) {
		kp_fail(err, KP_ERR_KEY_INVALID, "secret key file %s is not 64 "
		    "hex digits; restore it from the organisation's key backup",
		    path);
		goto out;
	}
	id->has_storage = 1;
	rc = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

/*
 * The payload keys of a renewal in progress or just done, kept only to
 * open envelopes: org_dir/previous/payload.key (the key in use before the
 * switch: partners may have sealed to it until they saw the new
 * certificate) and org_dir/next/payload.key (the renewed key before the
 * switch: partners that have the new certificate seal to it).  Each is
 * optional, read under the same rules as the others, and skipped when it
 * is the payload key in use.  Sealing and signing always use the keys in
 * org_dir itself.
 */
static int
s_load_extra(const char *org_dir, identity_t *id, kp_err_t *err)
{
	static const char *const subs[KP_EXTRA_PAYLOAD_KEYS] = {
		"previous/payload.key", "next/payload.key"
	};
	char path[PATH_MAX];
	uint8_t *sk;
	size_t i;

	for (i = 0; i < KP_EXTRA_PAYLOAD_KEYS; i++) {
		sk = id->secrets + S_EXTRA_OFF + id->n_extra * S_KEY_LEN;
		if (s_path(path, sizeof(path), org_dir, subs[i], err) == -1)
			return -1;
		if (access(path, F_OK) != 0)
			continue;
		if (s_read_secret(path, EVP_PKEY_X25519, "X25519", sk, err) ==
		    -1)
			return -1;
		if (crypto_scalarmult_base(id->extra_pk[id->n_extra], sk) != 0)
			return kp_fail(err, KP_ERR_KEY_INVALID, "secret key "
			    "file %s: cannot derive the X25519 public key",
			    path);
		if (sodium_memcmp(id->extra_pk[id->n_extra],
		    partner_payload_pk(id->pub), S_KEY_LEN) == 0) {
			sodium_memzero(sk, S_KEY_LEN);
			continue;
		}
		id->n_extra++;
	}
	return 0;
}

/* The identity of the key files in org_dir, certified by cert. */
static int
s_identity_from(const trust_t *trust, const char *cert, const char *org_dir,
    identity_t **out, kp_err_t *err)
{
	identity_t *id = NULL;
	int rc = -1;

	*out = NULL;
	if ((id = calloc(1, sizeof(*id))) == NULL ||
	    (id->secrets = sodium_malloc(S_SECRETS_LEN)) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory for secret keys");
		goto out;
	}
	if (s_check_modes(org_dir, err) == -1 ||
	    partner_load(trust, cert, &id->pub, err) == -1 ||
	    s_load_sign(org_dir, id, err) == -1 ||
	    s_load_x25519(org_dir, "transport.key",
	    id->secrets + S_TRANSPORT_SK_OFF, partner_transport_pk(id->pub),
	    cert, err) == -1 ||
	    s_load_x25519(org_dir, "payload.key",
	    id->secrets + S_PAYLOAD_SK_OFF, partner_payload_pk(id->pub),
	    cert, err) == -1 || s_load_storage(org_dir, id, err) == -1 ||
	    s_load_extra(org_dir, id, err) == -1)
		goto out;
	(void)sodium_mprotect_readonly(id->secrets);
	*out = id;
	id = NULL;
	rc = 0;
out:
	identity_destroy(&id);
	return rc;
}

int
identity_load(const trust_t *trust, const char *org_dir, identity_t **out,
    kp_err_t *err)
{
	char cert[PATH_MAX];

	if (trust == NULL || org_dir == NULL || out == NULL)
		return kp_fail(err, KP_ERR_INVALID_ARG, "identity_load: NULL");
	*out = NULL;
	if (s_path(cert, sizeof(cert), org_dir, "cert.pem", err) == -1)
		return -1;
	return s_identity_from(trust, cert, org_dir, out, err);
}

/* The Ed25519 public key of org_dir/sign.key. */
static int
s_own_sign_pk(const char *org_dir, uint8_t pk[crypto_sign_PUBLICKEYBYTES],
    kp_err_t *err)
{
	char path[PATH_MAX];
	uint8_t seed[S_KEY_LEN], *sk = NULL;
	int rc = -1;

	if (s_path(path, sizeof(path), org_dir, "sign.key", err) == -1 ||
	    s_read_secret(path, EVP_PKEY_ED25519, "Ed25519", seed, err) == -1)
		goto out;
	if ((sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL ||
	    crypto_sign_seed_keypair(pk, sk, seed) != 0) {
		kp_fail(err, KP_ERR_KEY_INVALID, "secret key file %s: cannot "
		    "derive the Ed25519 key pair", path);
		goto out;
	}
	rc = 0;
out:
	sodium_free(sk);
	sodium_memzero(seed, sizeof(seed));
	return rc;
}

/* 1 if the certificate in path (not yet verified) has public key pk. */
static int
s_cert_has_key(const char *path, const uint8_t pk[crypto_sign_PUBLICKEYBYTES])
{
	partner_t p;
	X509 *x = NULL;
	kp_err_t e;
	int same = 0;

	if (access(path, F_OK) != 0 || s_read_cert(path, &x, &e) == -1)
		return 0;
	if (s_sign_pk(x, &p, path, &e) == 0)
		same = sodium_memcmp(p.sign_pk, pk, sizeof(p.sign_pk)) == 0;
	X509_free(x);
	ERR_clear_error();
	return same;
}

/*
 * org_dir holds cert.pem: that certificate, unless the CA already put the
 * renewed one there (sign --renew in a shared folder) while the keys are
 * still those of previous.pem: then previous.pem, until the switch.
 */
static int
s_find_in_org_dir(const trust_t *trust, const char *org_dir,
    identity_t **out, kp_err_t *err)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	char cert[PATH_MAX], prev[PATH_MAX];

	if (s_path(cert, sizeof(cert), org_dir, "cert.pem", err) == -1 ||
	    s_path(prev, sizeof(prev), org_dir, "previous.pem", err) == -1)
		return -1;
	if (access(prev, F_OK) == 0 && s_check_modes(org_dir, err) == 0 &&
	    s_own_sign_pk(org_dir, pk, err) == 0 && !s_cert_has_key(cert, pk) &&
	    s_cert_has_key(prev, pk))
		return s_identity_from(trust, prev, org_dir, out, err);
	return identity_load(trust, org_dir, out, err);
}

int
identity_find(const trust_t *trust, const char *chain_dir,
    const char *org_dir, identity_t **out, kp_err_t *err)
{
	static const char *const names[] = { "cert.pem", "previous.pem" };
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	char path[PATH_MAX];
	struct dirent *ent;
	DIR *dir;
	size_t i;
	int rc = -2;

	if (s_path(path, sizeof(path), org_dir, "cert.pem", err) == -1)
		return -1;
	if (access(path, F_OK) == 0)
		return s_find_in_org_dir(trust, org_dir, out, err);
	if (s_check_modes(org_dir, err) == -1 ||
	    s_own_sign_pk(org_dir, pk, err) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/orgs", chain_dir);
	if ((dir = opendir(path)) == NULL)
		return kp_fail(err, KP_ERR_IO, "cannot read %s: %s", path,
		    strerror(errno));
	while (rc == -2 && (ent = readdir(dir)) != NULL) {
		if (!kp_oin_valid(ent->d_name))
			continue;
		for (i = 0; rc == -2 && i < 2; i++) {
			snprintf(path, sizeof(path), "%s/orgs/%s/%s", chain_dir,
			    ent->d_name, names[i]);
			if (s_cert_has_key(path, pk))
				rc = s_identity_from(trust, path, org_dir, out,
				    err);
		}
	}
	closedir(dir);
	if (rc == -2)
		rc = kp_fail(err, KP_ERR_CERT_INVALID, "no certificate in %s "
		    "holds the key of %s/sign.key; send its request.csr to the "
		    "chain CA and install the bundle that holds the certificate",
		    chain_dir, org_dir);
	return rc;
}

void
identity_destroy(identity_t **self_p)
{
	identity_t *id;

	if (self_p == NULL || *self_p == NULL)
		return;
	id = *self_p;
	partner_destroy(&id->pub);
	sodium_free(id->secrets); /* wipes, also when read-only */
	free(id);
	*self_p = NULL;
}

const partner_t *
identity_public(const identity_t *self)
{
	return self->pub;
}

const uint8_t *
identity_sign_sk(const identity_t *self)
{
	return self->secrets + S_SIGN_SK_OFF;
}

const uint8_t *
identity_transport_sk(const identity_t *self)
{
	return self->secrets + S_TRANSPORT_SK_OFF;
}

const uint8_t *
identity_payload_sk(const identity_t *self)
{
	return self->secrets + S_PAYLOAD_SK_OFF;
}

size_t
identity_payload_key_count(const identity_t *self)
{
	return 1 + self->n_extra;
}

const uint8_t *
identity_payload_sk_at(const identity_t *self, size_t i)
{
	if (i == 0)
		return identity_payload_sk(self);
	return i <= self->n_extra ? self->secrets + S_EXTRA_OFF +
	    (i - 1) * S_KEY_LEN : NULL;
}

const uint8_t *
identity_payload_pk_at(const identity_t *self, size_t i)
{
	if (i == 0)
		return partner_payload_pk(self->pub);
	return i <= self->n_extra ? self->extra_pk[i - 1] : NULL;
}

const uint8_t *
identity_storage_sk(const identity_t *self)
{
	return self->secrets + (self->has_storage ? S_STORAGE_OFF :
	    S_PAYLOAD_SK_OFF);
}
