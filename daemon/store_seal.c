/*
 * store_seal.c: case references and payload-derived metadata sealed at
 * rest, as SQL functions of the store's one connection (see store.h,
 * "Metadata at rest").
 *
 * Owns the metadata keys (derived from the key store_open is given; atrest.c
 * derives that one from the storage key) and five functions the store's
 * statements call, so every statement seals and opens in SQL and no caller
 * ever sees a sealed value:
 *
 *   kp_case_seal(partner, ref)  -> the sealed reference (BLOB, 64 or 96);
 *                                  '' for '' (no case)
 *   kp_case_open(partner, v)    -> the reference (TEXT); '' for '' or NULL
 *   kp_route_seal(event_id, r)  -> the sealed route (BLOB); NULL for 0
 *   kp_route_open(event_id, v)  -> the route (INTEGER); 0 for NULL
 *   kp_absence_key(ref)         -> the officer-local key of a case (BLOB 32)
 *   kp_case_pseudonym(partner, ref) -> this organisation's own pseudonym
 *                                  of the case for that partner (BLOB 32,
 *                                  pseudonym.h); NULL for '' or an
 *                                  invalid reference
 *
 * It must never hand out a key, never log, and never seal one case under
 * one value for two partners.
 *
 * Keys (K_meta = store_open's meta_key):
 *   K_siv  = BLAKE2b-256(key = K_meta, "ketenpost/v1/meta-siv")
 *   K_aead = BLAKE2b-256(key = K_meta, "ketenpost/v1/meta-aead")
 *   K_abs  = BLAKE2b-256(key = K_meta, "ketenpost/v1/meta-absence")
 *   K_pseudonym = store_open's pseudonym_key, as given (pseudonym_key():
 *            the K of pseudonym.h, a sibling of K_meta under the same
 *            storage secret), so the store finds an own case's link by
 *            the pseudonym it was sent with (schema version 7,
 *            store_cases.c) without an index on the sealed reference
 *
 * A case reference R filed with partner Q (a synthetic-IV AEAD):
 *   ad    = "ketenpost/v1/meta/case" || 0x00 || Q
 *   p     = R padded with 0x00 to 32 bytes, or to 64 if it is longer
 *           (a reference has no NUL)
 *   siv   = BLAKE2b-128(key = K_siv, ad || 0x00 || p)
 *   value = siv || XChaCha20-Poly1305(K_aead, nonce = siv || 0^8, p, ad)
 *           (64 or 96 bytes)
 * The first 8 bytes of the value (of the SIV, a PRF output) are what the
 * indexes hold (store_schema.c): a lookup compares them, then the value.
 *
 * Why this is safe here.  The value is deterministic in (Q, R), so the
 * store can look a case up by equality (an index on the column) and still
 * decrypt it for the views.  A deterministic encryption reveals exactly
 * which stored values are equal, and nothing else: the nonce is a PRF of
 * the whole input, so two different inputs share one (and a key stream)
 * only with probability about n^2 / 2^129 for n values, 2^-65 at four
 * billion.  Equality per partner is no news to whoever holds the file:
 * the row already carries the per-partner pseudonym (PROTOCOL.md §9),
 * itself deterministic in (Q, R).  Across partners the values of one case
 * are unrelated, because Q is in the SIV input and the associated data: a
 * backup cannot group one pupil's pseudonyms of several partners by equal
 * ciphertext.  The padding hides the length of the reference (all but
 * whether it is over 32 bytes).  Forging a value, or moving one to another
 * partner's row, fails the tag, and kp_case_open then fails the statement.
 *
 * A route (an enum, looked up never) is sealed under a nonce derived from
 * its event id and value, bound to the row by the event id:
 *   ad    = "ketenpost/v1/meta/route" || 0x00 || event_id
 *   nonce = BLAKE2b-192(key = K_siv, ad || 0x00 || i32be)
 *   value = nonce || XChaCha20-Poly1305(K_aead, nonce, i32be, ad)
 * so equal routes of two events do not show as equal values (the event
 * id, unique, is in the nonce), and a nonce repeats only for the same
 * event and route, with the same plaintext (a synthetic IV, as for case
 * references).  The two rows of one send, outbox and expectation, hold
 * the same value; they already share the event id.  It was a random
 * nonce before (one getrandom(2) system call per row);
 * the open reads the nonce from the value, so old rows open alike.
 * kp_route_seal keeps its last input and value (store_seals_t): in an
 * API pass of one send (low load) the outbox row reuses its expectation's
 * seal; a pass of many stores its outbox rows after all its expectations
 * (apisrv.c s_finish), so there each is sealed twice, without a system
 * call.
 *
 * The officer's absence record (absence_after) is local: no partner, and
 * it is only ever looked up by case, never listed by case.  It is keyed
 * with a keyed hash, not encrypted: kp_absence_key(R) = BLAKE2b-256(key =
 * K_abs, "ketenpost/v1/meta/absence" || 0x00 || R).  The label and key
 * differ from every per-partner value, so it joins nothing else.
 *
 * The functions are SQLITE_DIRECTONLY: no trigger, view or schema object
 * (which a forged database file could carry) can call them.
 *
 * kp_case_seal keeps its last input and value (store_seals_t): one
 * send seals the same case for the same partner twice (the link's
 * look-up and insert; the outbox row and the expectation copy the link's
 * sealed value, store_int.h CASE_SEALED_OF), each a BLAKE2b and an
 * XChaCha20-Poly1305, 4.6% of the sender (PERFORMANCE.md).
 * The memo lives with the keys in sodium_malloc'd memory (locked, kept out
 * of core dumps, wiped when freed), is compared in constant time, and is
 * wiped at every commit and rollback (sq_seal_forget): the seals of one
 * send all happen in its transaction, and a clear case reference must not
 * outlive it in memory (after an erasure, say).
 */
#include <stdint.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "pseudonym.h"
#include "store_int.h"

#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SIV 16                         /* synthetic IV stored */
#define CASE_MAX 64                    /* KP_CASE_LOCAL_MAX */
#define CASE_SHORT 32                  /* padding of a short reference */
#define ROUTE_SEALED (NONCE + 4 + TAG)
/* a label of under 32 bytes, 0x00, and a whole case reference */
#define AD_MAX (32 + CASE_MAX)

enum { K_SIV, K_AEAD, K_ABS, K_PSEUD, K_N };

/* store_seals_t (store.h) is kp_case_seal's last input (ad || 0x00 || p,
 * its SIV input) and value, and kp_route_seal's last event id and route,
 * and value: the sizes it names are these. */
_Static_assert(sizeof(((store_seals_t *)0)->in) == AD_MAX + 1 + CASE_MAX,
    "store_seals_t.in");
_Static_assert(sizeof(((store_seals_t *)0)->out) == SIV + CASE_MAX + TAG,
    "store_seals_t.out");
_Static_assert(sizeof(((store_seals_t *)0)->route_out) == ROUTE_SEALED,
    "store_seals_t.route_out");

static const char s_case_label[] = "ketenpost/v1/meta/case";
static const char s_route_label[] = "ketenpost/v1/meta/route";
static const char s_abs_label[] = "ketenpost/v1/meta/absence";
static const char s_open_fail[] = "sealed metadata cannot be opened: the "
    "storage key is not the one it was sealed with, or the row is damaged";

static const uint8_t *
s_key(sqlite3_context *ctx, int which)
{
	store_t *s = sqlite3_user_data(ctx);

	return s->meta_keys + 32 * which;
}

/* label || 0x00 || bytes; OUT: *len. */
static int
s_ad(uint8_t ad[AD_MAX], size_t *len, const char *label, const void *p,
    size_t n)
{
	size_t l = strlen(label);

	if (l + 1 + n > AD_MAX)
		return -1;
	memcpy(ad, label, l);
	ad[l] = 0;
	memcpy(ad + l + 1, p, n);
	*len = l + 1 + n;
	return 0;
}

/* Reference r (rlen bytes, NULL for none) padded (OUT: *plen, 32 or 64),
 * and the associated data of partner q (qn bytes). */
static int
s_case_in_text(const unsigned char *q, size_t qn, const unsigned char *r,
    size_t rlen, uint8_t ad[AD_MAX], size_t *adlen, uint8_t p[CASE_MAX],
    size_t *plen)
{
	if (q == NULL || rlen > CASE_MAX ||
	    (r != NULL && memchr(r, 0, rlen) != NULL) ||
	    s_ad(ad, adlen, s_case_label, q, qn) != 0)
		return -1;
	*plen = rlen <= CASE_SHORT ? CASE_SHORT : CASE_MAX;
	memset(p, 0, CASE_MAX);
	if (rlen > 0)
		memcpy(p, r, rlen);
	return 0;
}

/* The reference, padded (OUT: *plen, 32 or 64), and the associated data
 * of partner Q; *rlen 0 for no case. */
static int
s_case_in(sqlite3_value **argv, uint8_t ad[AD_MAX], size_t *adlen,
    uint8_t p[CASE_MAX], size_t *plen, size_t *rlen)
{
	const unsigned char *q = sqlite3_value_text(argv[0]);
	const unsigned char *r = sqlite3_value_text(argv[1]);
	size_t qn = (size_t)sqlite3_value_bytes(argv[0]);

	*rlen = r != NULL ? (size_t)sqlite3_value_bytes(argv[1]) : 0;
	return s_case_in_text(q, qn, r, *rlen, ad, adlen, p, plen);
}

/* ad || 0x00 || p into buf (the SIV's input); OUT: *len. */
static void
s_case_memo_input(uint8_t buf[AD_MAX + 1 + CASE_MAX], size_t *len,
    const uint8_t *ad, size_t adlen, const uint8_t *p, size_t plen)
{
	memcpy(buf, ad, adlen);
	buf[adlen] = 0;
	memcpy(buf + adlen + 1, p, plen);
	*len = adlen + 1 + plen;
}

/* Was (ad, p) the last input sealed?  Constant time in its bytes. */
static bool
s_case_memo_find(const store_seals_t *m, const uint8_t *ad, size_t adlen,
    const uint8_t *p, size_t plen)
{
	uint8_t in[AD_MAX + 1 + CASE_MAX];
	size_t inlen;
	bool same;

	s_case_memo_input(in, &inlen, ad, adlen, p, plen);
	same = m->inlen == inlen && sodium_memcmp(m->in, in, inlen) == 0;
	sodium_memzero(in, sizeof(in));
	return same;
}

static void
s_case_memo_keep(store_seals_t *m, const uint8_t *ad, size_t adlen,
    const uint8_t *p, size_t plen, const uint8_t *out, size_t outlen)
{
	s_case_memo_input(m->in, &m->inlen, ad, adlen, p, plen);
	memcpy(m->out, out, outlen);
	m->outlen = outlen;
}

/* Seal (ad, p) with the metadata keys into memo m. */
static void
s_case_seal_into(const uint8_t *keys, const uint8_t *ad, size_t adlen,
    const uint8_t *p, size_t plen, store_seals_t *m)
{
	uint8_t out[SIV + CASE_MAX + TAG], nonce[NONCE] = { 0 };
	crypto_generichash_state h;
	unsigned long long n = 0;

	crypto_generichash_init(&h, keys + 32 * K_SIV, 32, SIV);
	crypto_generichash_update(&h, ad, adlen);
	crypto_generichash_update(&h, (const uint8_t *)"", 1);
	crypto_generichash_update(&h, p, plen);
	crypto_generichash_final(&h, out, SIV);
	memcpy(nonce, out, SIV);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + SIV, &n, p, plen, ad,
	    adlen, NULL, nonce, keys + 32 * K_AEAD);
	s_case_memo_keep(m, ad, adlen, p, plen, out, (size_t)(SIV + n));
	sodium_memzero(&h, sizeof(h));
}

static void
s_case_seal(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	store_t *s = sqlite3_user_data(ctx);
	store_seals_t *m = s->case_memo;
	uint8_t ad[AD_MAX], p[CASE_MAX];
	size_t adlen, plen, rlen;

	(void)argc;
	if (s_case_in(argv, ad, &adlen, p, &plen, &rlen) != 0) {
		sqlite3_result_error(ctx, "kp_case_seal: a partner OIN and a "
		    "case reference of at most 64 bytes are needed", -1);
		return;
	}
	if (rlen == 0) {
		sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
		return;
	}
	if (!s_case_memo_find(m, ad, adlen, p, plen))
		s_case_seal_into(s->meta_keys, ad, adlen, p, plen, m);
	sodium_memzero(p, sizeof(p));
	sqlite3_result_blob(ctx, m->out, (int)m->outlen, SQLITE_TRANSIENT);
}

static void
s_case_open(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *q = sqlite3_value_text(argv[0]);
	const uint8_t *v;
	uint8_t ad[AD_MAX], p[CASE_MAX], nonce[NONCE] = { 0 };
	unsigned long long n = 0;
	size_t adlen, vn;

	(void)argc;
	if (sqlite3_value_type(argv[1]) != SQLITE_BLOB) {
		sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);  /* no case */
		return;
	}
	v = sqlite3_value_blob(argv[1]);
	vn = (size_t)sqlite3_value_bytes(argv[1]);
	if (q == NULL || v == NULL || (vn != SIV + CASE_SHORT + TAG &&
	    vn != SIV + CASE_MAX + TAG) || s_ad(ad, &adlen, s_case_label, q,
	    (size_t)sqlite3_value_bytes(argv[0])) != 0) {
		sqlite3_result_error(ctx, s_open_fail, -1);
		return;
	}
	memcpy(nonce, v, SIV);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(p, &n, NULL, v + SIV,
	    vn - SIV, ad, adlen, nonce, s_key(ctx, K_AEAD)) != 0) {
		sqlite3_result_error(ctx, s_open_fail, -1);
		return;
	}
	sqlite3_result_text(ctx, (const char *)p, (int)strnlen((char *)p,
	    (size_t)n), SQLITE_TRANSIENT);
	sodium_memzero(p, sizeof(p));
}

/* The associated data of event id (16 bytes). */
static int
s_route_ad(sqlite3_value *id, uint8_t ad[AD_MAX], size_t *adlen)
{
	if (sqlite3_value_type(id) != SQLITE_BLOB ||
	    sqlite3_value_bytes(id) != 16)
		return -1;
	return s_ad(ad, adlen, s_route_label, sqlite3_value_blob(id), 16);
}

/* The sealed route `p` (i32be) of the event whose ad is `ad`. OUT: out. */
static void
s_route_seal_value(const uint8_t *keys, const uint8_t *ad, size_t adlen,
    const uint8_t p[4], uint8_t out[ROUTE_SEALED])
{
	crypto_generichash_state h;
	unsigned long long n = 0;

	crypto_generichash_init(&h, keys + 32 * K_SIV, 32, NONCE);
	crypto_generichash_update(&h, ad, adlen);
	crypto_generichash_update(&h, (const uint8_t *)"", 1);
	crypto_generichash_update(&h, p, 4);
	crypto_generichash_final(&h, out, NONCE);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE, &n, p, 4, ad,
	    adlen, NULL, out, keys + 32 * K_AEAD);
	sodium_memzero(&h, sizeof(h));
}

/* The route memo's input: event id || i32be route. */
static void
s_route_in(const uint8_t id[16], uint32_t u, uint8_t in[16 + 4])
{
	memcpy(in, id, 16);
	in[16] = (uint8_t)(u >> 24);
	in[17] = (uint8_t)(u >> 16);
	in[18] = (uint8_t)(u >> 8);
	in[19] = (uint8_t)u;
}

static void
s_route_seal(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	store_t *s = sqlite3_user_data(ctx);
	store_seals_t *m = s->case_memo;
	sqlite3_int64 r = sqlite3_value_int64(argv[1]);
	uint32_t u = (uint32_t)(int32_t)r;     /* an int, as the row has it */
	uint8_t ad[AD_MAX], in[16 + 4];
	size_t adlen;

	(void)argc;
	if (r == 0) {
		sqlite3_result_null(ctx);
		return;
	}
	if (r < INT32_MIN || r > INT32_MAX ||
	    s_route_ad(argv[0], ad, &adlen) != 0) {
		sqlite3_result_error(ctx, "kp_route_seal: an event id and a "
		    "route are needed", -1);
		return;
	}
	s_route_in(sqlite3_value_blob(argv[0]), u, in);
	if (!m->has_route || sodium_memcmp(m->route_in, in, sizeof(in)) != 0) {
		s_route_seal_value(s->meta_keys, ad, adlen, in + 16,
		    m->route_out);
		memcpy(m->route_in, in, sizeof(in));
		m->has_route = true;
	}
	sodium_memzero(in, sizeof(in));
	sqlite3_result_blob(ctx, m->route_out, ROUTE_SEALED, SQLITE_TRANSIENT);
}

static void
s_route_open(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const uint8_t *v;
	uint8_t ad[AD_MAX], p[4];
	unsigned long long n = 0;
	size_t adlen;

	(void)argc;
	if (sqlite3_value_type(argv[1]) == SQLITE_NULL) {
		sqlite3_result_int(ctx, 0);
		return;
	}
	v = sqlite3_value_blob(argv[1]);
	if (v == NULL || sqlite3_value_bytes(argv[1]) != ROUTE_SEALED ||
	    s_route_ad(argv[0], ad, &adlen) != 0 ||
	    crypto_aead_xchacha20poly1305_ietf_decrypt(p, &n, NULL, v + NONCE,
	    ROUTE_SEALED - NONCE, ad, adlen, v, s_key(ctx, K_AEAD)) != 0 ||
	    n != sizeof(p)) {
		sqlite3_result_error(ctx, s_open_fail, -1);
		return;
	}
	sqlite3_result_int64(ctx, (sqlite3_int64)(int32_t)((uint32_t)p[0] <<
	    24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]));
}

static void
s_absence_key(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *r = sqlite3_value_text(argv[0]);
	uint8_t ad[AD_MAX], out[32];
	size_t adlen;

	(void)argc;
	if (r == NULL || s_ad(ad, &adlen, s_abs_label, r,
	    (size_t)sqlite3_value_bytes(argv[0])) != 0) {
		sqlite3_result_error(ctx, "kp_absence_key: a case reference of "
		    "at most 64 bytes is needed", -1);
		return;
	}
	crypto_generichash(out, sizeof(out), ad, adlen, s_key(ctx, K_ABS), 32);
	sodium_memzero(ad, sizeof(ad));     /* held the clear reference */
	sqlite3_result_blob(ctx, out, (int)sizeof(out), SQLITE_TRANSIENT);
}

/* kp_case_pseudonym(partner, ref): pseudonym_with_key under K_pseudonym;
 * NULL where no pseudonym is made (no case, or what is not a partner OIN
 * and a valid reference): such a case has no own link to find.  A
 * derivation that fails fails the statement: a look-up by case must not
 * come back silently short. */
static void
s_case_pseudonym(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *q = (const char *)sqlite3_value_text(argv[0]);
	const char *r = (const char *)sqlite3_value_text(argv[1]);
	uint8_t out[32];
	kp_err_t err;

	(void)argc;
	if (q == NULL || r == NULL || !kp_oin_valid(q) ||
	    !pseudonym_ref_valid(r)) {
		sqlite3_result_null(ctx);
		return;
	}
	if (pseudonym_with_key(s_key(ctx, K_PSEUD), q, r, out, &err) != 0) {
		sqlite3_result_error(ctx, err.msg, -1);
		return;
	}
	sqlite3_result_blob(ctx, out, (int)sizeof(out), SQLITE_TRANSIENT);
}

/* Does memo m hold our pseudonym of case local for partner_oin?  Constant
 * time in the bytes of equal lengths, as s_case_memo_find. */
static bool
s_pseud_memo_is(const store_seals_t *m, const char *partner_oin,
    const char *local)
{
	size_t pl = strlen(partner_oin), ll = strlen(local);

	return m->pseud_local[0] != '\0' &&
	    strnlen(m->pseud_partner, sizeof(m->pseud_partner)) == pl &&
	    strnlen(m->pseud_local, sizeof(m->pseud_local)) == ll &&
	    sodium_memcmp(m->pseud_partner, partner_oin, pl) == 0 &&
	    sodium_memcmp(m->pseud_local, local, ll) == 0;
}

int
sq_case_pseudonym(store_t *s, const char *partner_oin, const char *local,
    uint8_t out[32], kp_err_t *err)
{
	if (s_pseud_memo_is(s->case_memo, partner_oin, local)) {
		memcpy(out, s->case_memo->pseud, 32);
		return 0;
	}
	return pseudonym_with_key(s->meta_keys + 32 * K_PSEUD, partner_oin,
	    local, out, err);
}

/* Our pseudonym of case local for partner_oin into out's memo, where one
 * is made (pseudonym_with_key refuses the rest: then none). */
static void
s_pseud_ahead(const store_t *s, const char *partner_oin, const char *local,
    store_seals_t *out)
{
	kp_err_t e;

	if (strlen(partner_oin) >= sizeof(out->pseud_partner) ||
	    strlen(local) >= sizeof(out->pseud_local) ||
	    pseudonym_with_key(s->meta_keys + 32 * K_PSEUD, partner_oin,
	    local, out->pseud, &e) != 0)
		return;
	memcpy(out->pseud_partner, partner_oin, strlen(partner_oin) + 1);
	memcpy(out->pseud_local, local, strlen(local) + 1);
}

int
store_seals_make(const store_t *s, const char *partner_oin,
    const char *local, const uint8_t event_id[16], int32_t route,
    store_seals_t *out)
{
	uint8_t ad[AD_MAX], p[CASE_MAX];
	size_t adlen, plen, rlen = strlen(local);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (rlen > 0) {
		if (s_case_in_text((const unsigned char *)partner_oin,
		    strlen(partner_oin), (const unsigned char *)local, rlen,
		    ad, &adlen, p, &plen) != 0)
			goto out;
		s_case_seal_into(s->meta_keys, ad, adlen, p, plen, out);
		s_pseud_ahead(s, partner_oin, local, out);
	}
	if (route != 0) {
		if (s_ad(ad, &adlen, s_route_label, event_id, 16) != 0)
			goto out;
		s_route_in(event_id, (uint32_t)route, out->route_in);
		s_route_seal_value(s->meta_keys, ad, adlen,
		    out->route_in + 16, out->route_out);
		out->has_route = true;
	}
	rc = 0;
out:
	sodium_memzero(p, sizeof(p));
	if (rc != 0)
		sodium_memzero(out, sizeof(*out));
	return rc;
}

void
store_seals_use(store_t *s, const store_seals_t *m)
{
	if (m->inlen > 0) {
		memcpy(s->case_memo->in, m->in, m->inlen);
		s->case_memo->inlen = m->inlen;
		memcpy(s->case_memo->out, m->out, m->outlen);
		s->case_memo->outlen = m->outlen;
	}
	if (m->has_route) {
		memcpy(s->case_memo->route_in, m->route_in,
		    sizeof(m->route_in));
		memcpy(s->case_memo->route_out, m->route_out,
		    sizeof(m->route_out));
		s->case_memo->has_route = true;
	}
	if (m->pseud_local[0] != '\0') {
		memcpy(s->case_memo->pseud_partner, m->pseud_partner,
		    sizeof(m->pseud_partner));
		memcpy(s->case_memo->pseud_local, m->pseud_local,
		    sizeof(m->pseud_local));
		memcpy(s->case_memo->pseud, m->pseud, 32);
	}
}

static const struct {
	const char *name;
	int nargs;
	bool deterministic;
	void (*fn)(sqlite3_context *, int, sqlite3_value **);
} s_fns[] = {
	{ "kp_case_seal", 2, true, s_case_seal },
	{ "kp_case_open", 2, true, s_case_open },
	{ "kp_route_seal", 2, true, s_route_seal },
	{ "kp_route_open", 2, true, s_route_open },
	{ "kp_absence_key", 1, true, s_absence_key },
	{ "kp_case_pseudonym", 2, true, s_case_pseudonym },
};

int
sq_seal_register(store_t *s, const uint8_t meta_key[32],
    const uint8_t pseudonym_key[32], kp_err_t *err)
{
	static const char *const labels[K_PSEUD] = { "ketenpost/v1/meta-siv",
	    "ketenpost/v1/meta-aead", "ketenpost/v1/meta-absence" };
	size_t i;
	int flags;

	if (sodium_init() < 0 ||
	    (s->meta_keys = sodium_malloc(32 * K_N)) == NULL ||
	    (s->case_memo = sodium_malloc(sizeof(*s->case_memo))) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "store: out of memory");
	sodium_memzero(s->case_memo, sizeof(*s->case_memo));
	for (i = 0; i < K_PSEUD; i++)
		if (crypto_generichash(s->meta_keys + 32 * i, 32,
		    (const uint8_t *)labels[i], strlen(labels[i]), meta_key,
		    32) != 0)
			return kp_fail(err, KP_ERR_IO, "store: cannot derive "
			    "the metadata keys");
	memcpy(s->meta_keys + 32 * K_PSEUD, pseudonym_key, 32);
	for (i = 0; i < sizeof(s_fns) / sizeof(s_fns[0]); i++) {
		flags = SQLITE_UTF8 | SQLITE_DIRECTONLY |
		    (s_fns[i].deterministic ? SQLITE_DETERMINISTIC : 0);
		if (sqlite3_create_function_v2(s->db, s_fns[i].name,
		    s_fns[i].nargs, flags, s, s_fns[i].fn, NULL, NULL,
		    NULL) != SQLITE_OK)
			return sq_open_fail(s, err, "register functions");
	}
	return 0;
}

void
sq_seal_forget(store_t *s)
{
	if (s->case_memo != NULL)
		sodium_memzero(s->case_memo, sizeof(*s->case_memo));
}

void
sq_seal_free(store_t *s)
{
	sodium_free(s->meta_keys);     /* wipes */
	s->meta_keys = NULL;
	sodium_free(s->case_memo);     /* wipes */
	s->case_memo = NULL;
}
