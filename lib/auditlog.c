/*
 * auditlog.c: the audit log's entry format (canonical bytes and JSON) and
 * its signed tree heads.  docs/AUDIT.md is the specification; this is its
 * reference implementation, shared by the daemon that writes the log and
 * by `ketenpost audit`, which checks it offline.
 *
 * It must never accept two encodings of one entry: the leaf hash is taken
 * over the canonical bytes, so a verifier that re-encodes an entry from
 * its JSON export must get back exactly the bytes that were hashed.  Hence
 * the strictness, on both directions:
 *   1. audit_entry_encode refuses what audit_entry_decode would refuse
 *      (lengths other than 0/16/32, strings that are not printable ASCII,
 *      OINs that are not 20 digits, unknown kinds, integers above
 *      INT64_MAX), so the daemon cannot write an entry the tools reject;
 *   2. audit_entry_decode takes exactly one entry: no trailing bytes;
 *   3. audit_entry_from_json refuses unknown members, members that the
 *      exporter omits when empty but are present and empty, and a "time"
 *      that is not kp_time_format(time_ms): every JSON member an auditor
 *      reads is either hashed or checked against something hashed.
 * The field list is a comma-separated string in the entry and an array in
 * JSON; empty names and names with a comma are refused in both, so the two
 * forms map one-to-one.
 */
#include <string.h>

#include <sodium.h>

#include "auditlog.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "pbjson.h"
#include "util.h"

#define S_HEAD_LABEL "ketenpost/v1/tree-head"
#define S_HEAD_LABEL_LEN 22
#define S_HEAD_TBS_LEN (S_HEAD_LABEL_LEN + 8 + 8 + 32 + KP_OIN_LEN)
#define S_INT_MAX ((uint64_t)INT64_MAX)

static const char *const s_kinds[AUDIT_KIND_MAX] = {
	[AUDIT_SEND] = "send",
	[AUDIT_RECEIPT_SENT] = "receipt_sent",
	[AUDIT_RECEIPT_RECEIVED] = "receipt_received",
	[AUDIT_REFUSAL_IN] = "refusal_in",
	[AUDIT_REFUSAL_OUT] = "refusal_out",
	[AUDIT_DEAD_LETTER] = "dead_letter",
	[AUDIT_POLICY_LOAD] = "policy_load",
	[AUDIT_CHAIN_LOAD] = "chain_load",
	[AUDIT_PURGE] = "purge",
	[AUDIT_HEAD_ALARM] = "head_alarm",
	[AUDIT_READ] = "read",
	[AUDIT_API_REFUSED] = "api_refused",
};

static const char *const s_directions[] = { "none", "out", "in" };

const char *
audit_kind_name(int kind)
{
	if (kind <= 0 || kind >= AUDIT_KIND_MAX)
		return "unknown";
	return s_kinds[kind];
}

int
audit_kind_from_name(const char *name)
{
	int k;

	for (k = 1; name != NULL && k < AUDIT_KIND_MAX; k++)
		if (strcmp(name, s_kinds[k]) == 0)
			return k;
	return 0;
}

const char *
audit_direction_name(int direction)
{
	if (direction < AUDIT_NONE || direction > AUDIT_IN)
		return "unknown";
	return s_directions[direction];
}

static int
s_direction_from_name(const char *name)
{
	int d;

	for (d = AUDIT_NONE; d <= AUDIT_IN; d++)
		if (strcmp(name, s_directions[d]) == 0)
			return d;
	return -1;
}

/* ---- validation shared by encode, decode and from_json ---- */

/* Printable ASCII (0x20..0x7e), at most max bytes. */
static bool
s_printable(const char *s, size_t len, size_t max)
{
	size_t i;

	if (len > max)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static bool
s_oin_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return true;
	if (len != KP_OIN_LEN)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* "" or name(,name)*: printable, no empty name. */
static bool
s_fields_ok(const char *s, size_t len)
{
	size_t i;

	if (!s_printable(s, len, AUDIT_FIELDS_MAX - 1))
		return false;
	if (len == 0)
		return true;
	if (s[0] == ',' || s[len - 1] == ',')
		return false;
	for (i = 1; i < len; i++)
		if (s[i] == ',' && s[i - 1] == ',')
			return false;
	return true;
}

/* Everything about e that the encoding cannot express, or "" if none. */
static const char *
s_entry_problem(const audit_entry_t *e)
{
	if (e->seq > S_INT_MAX || e->time_ms > S_INT_MAX)
		return "seq and time_ms must be at most 2^63-1";
	if (e->kind <= 0 || e->kind >= AUDIT_KIND_MAX)
		return "unknown kind";
	if (e->direction < AUDIT_NONE || e->direction > AUDIT_IN)
		return "unknown direction";
	if (!s_oin_ok(e->own_oin, strnlen(e->own_oin, sizeof(e->own_oin))) ||
	    !s_oin_ok(e->partner_oin, strnlen(e->partner_oin,
	    sizeof(e->partner_oin))))
		return "an OIN is not 20 digits";
	if (e->event_type < 0 || e->event_type > 255)
		return "event_type out of range";
	if (!s_printable(e->purpose, strnlen(e->purpose, sizeof(e->purpose)),
	    sizeof(e->purpose) - 1) ||
	    !s_printable(e->legal_basis, strnlen(e->legal_basis,
	    sizeof(e->legal_basis)), sizeof(e->legal_basis) - 1))
		return "purpose or legal_basis is not printable ASCII of at "
		    "most 64 characters";
	if (!s_fields_ok(e->fields, strnlen(e->fields, sizeof(e->fields))))
		return "fields is not a comma-separated list of printable "
		    "names";
	if (e->reason < 0 || e->reason > 0xffff)
		return "reason out of range";
	if (!s_printable(e->rule, strnlen(e->rule, sizeof(e->rule)),
	    AUDIT_RULE_MAX))
		return "rule is not printable ASCII of at most 128 characters";
	if (!s_printable(e->actor, strnlen(e->actor, sizeof(e->actor)),
	    AUDIT_ACTOR_MAX))
		return "actor is not printable ASCII of at most 64 characters";
	return "";
}

/* ---- canonical encoding ---- */

struct s_wbuf {
	uint8_t *p;
	size_t cap, len;
	bool over;
};

static void
s_put(struct s_wbuf *w, const void *data, size_t n)
{
	if (w->over || n > w->cap - w->len) {
		w->over = true;
		return;
	}
	if (n > 0)
		memcpy(w->p + w->len, data, n);
	w->len += n;
}

static void
s_put_uint(struct s_wbuf *w, uint64_t v, int bytes)
{
	uint8_t b[8];
	int i;

	for (i = bytes - 1; i >= 0; i--) {
		b[i] = (uint8_t)v;
		v >>= 8;
	}
	s_put(w, b, (size_t)bytes);
}

/* u16 length, then the bytes. */
static void
s_put_var(struct s_wbuf *w, const void *data, size_t n)
{
	s_put_uint(w, n, 2);
	s_put(w, data, n);
}

static void
s_put_str(struct s_wbuf *w, const char *s, size_t max)
{
	s_put_var(w, s, strnlen(s, max));
}

static void
s_put_opt(struct s_wbuf *w, bool has, const uint8_t *b, size_t n)
{
	s_put_var(w, b, has ? n : 0);
}

/* Version 2 exactly when it says more than version 1 can. */
static bool
s_is_v2(const audit_entry_t *e)
{
	return e->rule[0] != '\0' || e->actor[0] != '\0';
}

int
audit_entry_encode(const audit_entry_t *e, uint8_t *buf, size_t cap,
    size_t *len, kp_err_t *err)
{
	struct s_wbuf w = { buf, cap, 0, false };
	const char *problem;

	if (e == NULL || buf == NULL || len == NULL)
		return kp_fail(err, KP_ERR_INVALID_ARG, "audit entry: NULL");
	if (*(problem = s_entry_problem(e)) != '\0')
		return kp_fail(err, KP_ERR_INVALID_ARG, "audit entry %llu: %s",
		    (unsigned long long)e->seq, problem);
	s_put_uint(&w, s_is_v2(e) ? AUDIT_ENTRY_VERSION_RULE :
	    AUDIT_ENTRY_VERSION, 1);
	s_put_uint(&w, e->seq, 8);
	s_put_uint(&w, e->time_ms, 8);
	s_put_uint(&w, (uint64_t)e->kind, 1);
	s_put_uint(&w, (uint64_t)e->direction, 1);
	s_put_str(&w, e->own_oin, sizeof(e->own_oin));
	s_put_str(&w, e->partner_oin, sizeof(e->partner_oin));
	s_put_opt(&w, e->has_event_id, e->event_id, 16);
	s_put_uint(&w, (uint64_t)e->event_type, 1);
	s_put_str(&w, e->purpose, sizeof(e->purpose));
	s_put_str(&w, e->legal_basis, sizeof(e->legal_basis));
	s_put_opt(&w, e->has_policy_hash, e->policy_hash, 32);
	s_put_opt(&w, e->has_case_pseudonym, e->case_pseudonym, 32);
	s_put_str(&w, e->fields, sizeof(e->fields));
	s_put_opt(&w, e->has_envelope_digest, e->envelope_digest, 32);
	s_put_opt(&w, e->has_receipt_digest, e->receipt_digest, 32);
	s_put_uint(&w, (uint64_t)e->reason, 2);
	if (s_is_v2(e)) {
		s_put_str(&w, e->rule, sizeof(e->rule));
		s_put_str(&w, e->actor, sizeof(e->actor));
	}
	if (w.over)
		return kp_fail(err, KP_ERR_OVERSIZE, "audit entry %llu does "
		    "not fit in %zu bytes", (unsigned long long)e->seq, cap);
	*len = w.len;
	return 0;
}

/* ---- decoding ---- */

struct s_rbuf {
	const uint8_t *p;
	size_t len, off;
	const char *bad;          /* first problem, or NULL */
};

static uint64_t
s_get_uint(struct s_rbuf *r, int bytes, const char *what)
{
	uint64_t v = 0;
	int i;

	if (r->bad != NULL)
		return 0;
	if ((size_t)bytes > r->len - r->off) {
		r->bad = what;
		return 0;
	}
	for (i = 0; i < bytes; i++)
		v = v << 8 | r->p[r->off++];
	return v;
}

/* A u16-length value into out (cap bytes). OUT: *n. */
static void
s_get_var(struct s_rbuf *r, uint8_t *out, size_t cap, size_t *n,
    const char *what)
{
	size_t l = (size_t)s_get_uint(r, 2, what);

	*n = 0;
	if (r->bad != NULL)
		return;
	if (l > cap || l > r->len - r->off) {
		r->bad = what;
		return;
	}
	if (l > 0)
		memcpy(out, r->p + r->off, l);
	r->off += l;
	*n = l;
}

/* A string field: NUL-terminated into out[size]. */
static void
s_get_str(struct s_rbuf *r, char *out, size_t size, const char *what)
{
	size_t n = 0;

	s_get_var(r, (uint8_t *)out, size - 1, &n, what);
	out[n] = '\0';
}

/* A bin field of length 0 or exactly n. */
static void
s_get_opt(struct s_rbuf *r, bool *has, uint8_t *out, size_t n,
    const char *what)
{
	size_t got = 0;

	s_get_var(r, out, n, &got, what);
	if (r->bad == NULL && got != 0 && got != n)
		r->bad = what;
	*has = got == n && r->bad == NULL;
	if (!*has)
		memset(out, 0, n);
}

static void
s_decode_fields(struct s_rbuf *r, audit_entry_t *e)
{
	e->seq = s_get_uint(r, 8, "seq");
	e->time_ms = s_get_uint(r, 8, "time_ms");
	e->kind = (int)s_get_uint(r, 1, "kind");
	e->direction = (int)s_get_uint(r, 1, "direction");
	s_get_str(r, e->own_oin, sizeof(e->own_oin), "own_oin");
	s_get_str(r, e->partner_oin, sizeof(e->partner_oin), "partner_oin");
	s_get_opt(r, &e->has_event_id, e->event_id, 16, "event_id");
	e->event_type = (int)s_get_uint(r, 1, "event_type");
	s_get_str(r, e->purpose, sizeof(e->purpose), "purpose");
	s_get_str(r, e->legal_basis, sizeof(e->legal_basis), "legal_basis");
	s_get_opt(r, &e->has_policy_hash, e->policy_hash, 32, "policy_hash");
	s_get_opt(r, &e->has_case_pseudonym, e->case_pseudonym, 32,
	    "case_pseudonym");
	s_get_str(r, e->fields, sizeof(e->fields), "fields");
	s_get_opt(r, &e->has_envelope_digest, e->envelope_digest, 32,
	    "envelope_digest");
	s_get_opt(r, &e->has_receipt_digest, e->receipt_digest, 32,
	    "receipt_digest");
	e->reason = (int)s_get_uint(r, 2, "reason");
}

/* A string field read as bytes may hold a NUL: then strnlen differs from
 * the stored length and the re-encoding would differ. */
static bool
s_no_nul(const audit_entry_t *e, const uint8_t *buf, size_t len)
{
	uint8_t again[AUDIT_ENTRY_MAX];
	size_t n = 0;

	return audit_entry_encode(e, again, sizeof(again), &n, NULL) == 0 &&
	    n == len && memcmp(again, buf, len) == 0;
}

int
audit_entry_decode(const uint8_t *buf, size_t len, audit_entry_t *e,
    kp_err_t *err)
{
	struct s_rbuf r = { buf, len, 0, NULL };
	const char *problem;
	unsigned version;

	if (buf == NULL || e == NULL)
		return kp_fail(err, KP_ERR_INVALID_ARG, "audit entry: NULL");
	memset(e, 0, sizeof(*e));
	if (len > AUDIT_ENTRY_MAX)
		return kp_fail(err, KP_ERR_MALFORMED, "audit entry: %zu bytes, "
		    "more than %d", len, AUDIT_ENTRY_MAX);
	version = (unsigned)s_get_uint(&r, 1, "version");
	if (r.bad == NULL && version != AUDIT_ENTRY_VERSION &&
	    version != AUDIT_ENTRY_VERSION_RULE)
		return kp_fail(err, KP_ERR_SCHEMA_VERSION, "audit entry: "
		    "version %u, expected %d or %d", version,
		    AUDIT_ENTRY_VERSION, AUDIT_ENTRY_VERSION_RULE);
	s_decode_fields(&r, e);
	if (version == AUDIT_ENTRY_VERSION_RULE) {
		s_get_str(&r, e->rule, sizeof(e->rule), "rule");
		s_get_str(&r, e->actor, sizeof(e->actor), "actor");
		if (r.bad == NULL && !s_is_v2(e))
			r.bad = "rule and actor (both empty in a version 2 entry)";
	}
	if (r.bad != NULL)
		return kp_fail(err, KP_ERR_MALFORMED, "audit entry: %s is "
		    "truncated or has a wrong length", r.bad);
	if (r.off != len)
		return kp_fail(err, KP_ERR_MALFORMED, "audit entry %llu: %zu "
		    "trailing bytes", (unsigned long long)e->seq, len - r.off);
	if (*(problem = s_entry_problem(e)) != '\0')
		return kp_fail(err, KP_ERR_MALFORMED, "audit entry %llu: %s",
		    (unsigned long long)e->seq, problem);
	if (!s_no_nul(e, buf, len))
		return kp_fail(err, KP_ERR_MALFORMED, "audit entry %llu: a "
		    "string holds a NUL byte", (unsigned long long)e->seq);
	return 0;
}

/* ---- tree heads ---- */

size_t
audit_head_tbs(const audit_head_t *h, const char *oin, uint8_t buf[96])
{
	struct s_wbuf w = { buf, 96, 0, false };

	if (h == NULL || oin == NULL || !kp_oin_valid(oin))
		return 0;
	s_put(&w, S_HEAD_LABEL, S_HEAD_LABEL_LEN);
	s_put_uint(&w, h->size, 8);
	s_put_uint(&w, h->time_ms, 8);
	s_put(&w, h->root, 32);
	s_put(&w, oin, KP_OIN_LEN);
	return w.over ? 0 : w.len;
}

int
audit_head_sign(audit_head_t *h, const char *oin, const uint8_t sign_sk[64])
{
	uint8_t tbs[96];
	size_t n;

	if (sign_sk == NULL || (n = audit_head_tbs(h, oin, tbs)) == 0)
		return -1;
	return crypto_sign_detached(h->signature, NULL, tbs, n, sign_sk) == 0 ?
	    0 : -1;
}

int
audit_head_verify(const audit_head_t *h, const char *oin,
    const uint8_t sign_pk[32])
{
	uint8_t tbs[96];
	size_t n;

	if (sign_pk == NULL || (n = audit_head_tbs(h, oin, tbs)) == 0)
		return -1;
	return crypto_sign_verify_detached(h->signature, tbs, n, sign_pk) == 0 ?
	    0 : -1;
}

/* ---- JSON ---- */

static void
s_set_hex(json_t *o, const char *key, const uint8_t *b, size_t n)
{
	char hex[2 * 64 + 1];

	kp_hex(b, n, hex);
	json_object_set_new(o, key, json_string(hex));
}

static void
s_set_time(json_t *o, uint64_t ms)
{
	char t[32];

	json_object_set_new(o, "time_ms", json_integer((json_int_t)ms));
	kp_time_format(ms, t);
	json_object_set_new(o, "time", json_string(t));
}

static void
s_set_str(json_t *o, const char *key, const char *s)
{
	if (*s != '\0')
		json_object_set_new(o, key, json_string(s));
}

static json_t *
s_fields_json(const char *fields)
{
	json_t *a = json_array();
	const char *p = fields, *c;

	while (a != NULL && *p != '\0') {
		c = strchr(p, ',');
		json_array_append_new(a, json_stringn(p, c ? (size_t)(c - p) :
		    strlen(p)));
		if (c == NULL)
			break;
		p = c + 1;
	}
	return a;
}

/* The reason's JSON name ("none", "policy_mismatch"), or its number. */
static json_t *
s_reason_json(int reason)
{
	char buf[PBJSON_ENUM_NAME_MAX];

	if (pbjson_enum_name(&kp__reason__descriptor, reason, buf,
	    sizeof(buf)) != NULL)
		return json_string(buf);
	return json_integer(reason);
}

static json_t *
s_event_type_json(int type)
{
	const char *name = events_type_name(type);

	if (strcmp(name, "unknown") != 0)
		return json_string(name);
	return json_integer(type);
}

json_t *
audit_entry_to_json(const audit_entry_t *e)
{
	json_t *o = json_object();
	char id[KP_UUID_TEXT_LEN + 1];

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "type", json_string("entry"));
	json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
	s_set_time(o, e->time_ms);
	json_object_set_new(o, "kind", json_string(audit_kind_name(e->kind)));
	json_object_set_new(o, "direction",
	    json_string(audit_direction_name(e->direction)));
	s_set_str(o, "own_oin", e->own_oin);
	s_set_str(o, "partner_oin", e->partner_oin);
	if (e->has_event_id) {
		kp_uuid_format(e->event_id, id);
		json_object_set_new(o, "event_id", json_string(id));
	}
	if (e->event_type != 0)
		json_object_set_new(o, "event_type",
		    s_event_type_json(e->event_type));
	s_set_str(o, "purpose", e->purpose);
	s_set_str(o, "legal_basis", e->legal_basis);
	if (e->has_policy_hash)
		s_set_hex(o, "policy_hash", e->policy_hash, 32);
	if (e->has_case_pseudonym)
		s_set_hex(o, "case_pseudonym", e->case_pseudonym, 32);
	if (e->fields[0] != '\0')
		json_object_set_new(o, "fields", s_fields_json(e->fields));
	if (e->has_envelope_digest)
		s_set_hex(o, "envelope_digest", e->envelope_digest, 32);
	if (e->has_receipt_digest)
		s_set_hex(o, "receipt_digest", e->receipt_digest, 32);
	json_object_set_new(o, "reason", s_reason_json(e->reason));
	s_set_str(o, "rule", e->rule);
	s_set_str(o, "actor", e->actor);
	return o;
}

json_t *
audit_head_to_json(const audit_head_t *h)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "type", json_string("tree_head"));
	json_object_set_new(o, "size", json_integer((json_int_t)h->size));
	s_set_time(o, h->time_ms);
	s_set_hex(o, "root", h->root, 32);
	s_set_hex(o, "signature", h->signature, 64);
	return o;
}

/* ---- from JSON ---- */

static int
s_only_keys(const json_t *j, const char *const *keys, const char *what,
    kp_err_t *err)
{
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(j))
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s is not a JSON "
		    "object", what);
	json_object_foreach((json_t *)j, k, v) {
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL)
			return kp_fail(err, KP_ERR_INVALID_ARG, "%s: unknown "
			    "member '%s'", what, k);
	}
	return 0;
}

static int
s_type(const json_t *j, const char *want, const char *what, kp_err_t *err)
{
	const char *t = json_string_value(json_object_get(j, "type"));

	if (t == NULL || strcmp(t, want) != 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"type\" must be "
		    "\"%s\"", what, want);
	return 0;
}

static int
s_get_u64(const json_t *j, const char *key, uint64_t *out, const char *what,
    kp_err_t *err)
{
	json_t *v = json_object_get(j, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"%s\" must be a "
		    "non-negative integer", what, key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* time_ms, and "time" which must be its formatting. */
static int
s_get_time(const json_t *j, uint64_t *ms, const char *what, kp_err_t *err)
{
	const char *t;
	char want[32];

	if (s_get_u64(j, "time_ms", ms, what, err) != 0)
		return -1;
	kp_time_format(*ms, want);
	t = json_string_value(json_object_get(j, "time"));
	if (t == NULL || strcmp(t, want) != 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"time\" must be "
		    "\"%s\", the time of time_ms", what, want);
	return 0;
}

/* Optional string member into out[size]; present means non-empty. */
static int
s_get_str_opt(const json_t *j, const char *key, char *out, size_t size,
    const char *what, kp_err_t *err)
{
	json_t *v = json_object_get(j, key);
	size_t n;

	out[0] = '\0';
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || (n = json_string_length(v)) == 0 ||
	    n >= size || !s_printable(json_string_value(v), n, size - 1))
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"%s\" must be a "
		    "non-empty printable ASCII string of at most %zu "
		    "characters", what, key, size - 1);
	memcpy(out, json_string_value(v), n + 1);
	return 0;
}

/* Optional lowercase hex member of exactly n bytes. */
static int
s_get_hex_opt(const json_t *j, const char *key, bool *has, uint8_t *out,
    size_t n, const char *what, kp_err_t *err)
{
	json_t *v = json_object_get(j, key);
	const char *s;
	size_t i;

	*has = false;
	memset(out, 0, n);
	if (v == NULL)
		return 0;
	s = json_string_value(v);
	for (i = 0; s != NULL && s[i] != '\0'; i++)
		if (s[i] >= 'A' && s[i] <= 'F')
			s = NULL;
	if (s == NULL || kp_unhex(s, out, n) != 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"%s\" must be "
		    "%zu bytes in lowercase hex", what, key, n);
	*has = true;
	return 0;
}

static int
s_get_hex(const json_t *j, const char *key, uint8_t *out, size_t n,
    const char *what, kp_err_t *err)
{
	bool has = false;

	if (s_get_hex_opt(j, key, &has, out, n, what, err) != 0)
		return -1;
	if (!has)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"%s\" is "
		    "missing", what, key);
	return 0;
}

static int
s_get_fields(const json_t *j, char out[AUDIT_FIELDS_MAX], const char *what,
    kp_err_t *err)
{
	json_t *a = json_object_get(j, "fields"), *v;
	size_t i, n, len = 0;
	const char *s;

	out[0] = '\0';
	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) == 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"fields\" must be "
		    "a non-empty array of field names", what);
	json_array_foreach(a, i, v) {
		s = json_string_value(v);
		n = s != NULL ? json_string_length(v) : 0;
		if (s == NULL || n == 0 || strchr(s, ',') != NULL ||
		    strlen(s) != n || len + n + 1 >= AUDIT_FIELDS_MAX ||
		    !s_printable(s, n, AUDIT_FIELDS_MAX))
			return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"fields\" "
			    "element %zu is not a printable field name without "
			    "a comma (or the list is too long)", what, i);
		if (i > 0)
			out[len++] = ',';
		memcpy(out + len, s, n + 1);
		len += n;
	}
	return 0;
}

static int
s_get_oin_opt(const json_t *j, const char *key, char out[21],
    const char *what, kp_err_t *err)
{
	if (s_get_str_opt(j, key, out, 21, what, err) != 0)
		return -1;
	if (out[0] != '\0' && !kp_oin_valid(out))
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"%s\" is not a "
		    "20-digit OIN", what, key);
	return 0;
}

/* "referral", or the number of a type this build does not know. */
static int
s_get_event_type(const json_t *j, audit_entry_t *e, const char *what,
    kp_err_t *err)
{
	json_t *t = json_object_get(j, "event_type");
	json_int_t v;

	e->event_type = 0;
	if (t == NULL)
		return 0;
	if (json_is_string(t) &&
	    (e->event_type = events_type_from_name(json_string_value(t))) != 0)
		return 0;
	v = json_is_integer(t) ? json_integer_value(t) : 0;
	if (v > 0 && v <= 255 &&
	    strcmp(events_type_name((int)v), "unknown") == 0) {
		e->event_type = (int)v;
		return 0;
	}
	return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"event_type\" is not an "
	    "event type", what);
}

/* "none", "policy_mismatch", or the number of an unknown reason. */
static int
s_get_reason(const json_t *j, audit_entry_t *e, const char *what,
    kp_err_t *err)
{
	json_t *r = json_object_get(j, "reason");
	char buf[PBJSON_ENUM_NAME_MAX];
	json_int_t v;

	if (json_is_string(r) && pbjson_enum_value(&kp__reason__descriptor,
	    json_string_value(r), &e->reason) == 0)
		return 0;
	v = json_is_integer(r) ? json_integer_value(r) : -1;
	if (v >= 0 && v <= 0xffff && pbjson_enum_name(&kp__reason__descriptor,
	    (int)v, buf, sizeof(buf)) == NULL) {
		e->reason = (int)v;
		return 0;
	}
	return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"reason\" is missing or "
	    "not a receipt reason", what);
}

static int
s_get_enums(const json_t *j, audit_entry_t *e, const char *what,
    kp_err_t *err)
{
	const char *kind = json_string_value(json_object_get(j, "kind"));
	const char *dir = json_string_value(json_object_get(j, "direction"));

	if ((e->kind = audit_kind_from_name(kind)) == 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"kind\" is "
		    "missing or unknown", what);
	if (dir == NULL || (e->direction = s_direction_from_name(dir)) < 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"direction\" must "
		    "be \"none\", \"out\" or \"in\"", what);
	if (s_get_event_type(j, e, what, err) != 0 ||
	    s_get_reason(j, e, what, err) != 0)
		return -1;
	return 0;
}

static int
s_get_event_id(const json_t *j, audit_entry_t *e, const char *what,
    kp_err_t *err)
{
	json_t *v = json_object_get(j, "event_id");
	const char *s = json_string_value(v);
	char again[KP_UUID_TEXT_LEN + 1];

	e->has_event_id = false;
	if (v == NULL)
		return 0;
	if (s == NULL || kp_uuid_parse(s, e->event_id) != 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"event_id\" is "
		    "not a UUID", what);
	kp_uuid_format(e->event_id, again);
	if (strcmp(again, s) != 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: \"event_id\" must "
		    "be lowercase", what);
	e->has_event_id = true;
	return 0;
}

static const char *const s_entry_keys[] = {
	"type", "seq", "time_ms", "time", "kind", "direction", "own_oin",
	"partner_oin", "event_id", "event_type", "purpose", "legal_basis",
	"policy_hash", "case_pseudonym", "fields", "envelope_digest",
	"receipt_digest", "reason", "rule", "actor", NULL };

int
audit_entry_from_json(const json_t *j, audit_entry_t *e, kp_err_t *err)
{
	const char *w = "audit entry";
	const char *problem;

	if (e == NULL)
		return kp_fail(err, KP_ERR_INVALID_ARG, "audit entry: NULL");
	memset(e, 0, sizeof(*e));
	if (s_only_keys(j, s_entry_keys, w, err) != 0 ||
	    s_type(j, "entry", w, err) != 0 ||
	    s_get_u64(j, "seq", &e->seq, w, err) != 0 ||
	    s_get_time(j, &e->time_ms, w, err) != 0 ||
	    s_get_enums(j, e, w, err) != 0 ||
	    s_get_oin_opt(j, "own_oin", e->own_oin, w, err) != 0 ||
	    s_get_oin_opt(j, "partner_oin", e->partner_oin, w, err) != 0 ||
	    s_get_event_id(j, e, w, err) != 0 ||
	    s_get_str_opt(j, "purpose", e->purpose, sizeof(e->purpose), w,
	    err) != 0 ||
	    s_get_str_opt(j, "legal_basis", e->legal_basis,
	    sizeof(e->legal_basis), w, err) != 0 ||
	    s_get_hex_opt(j, "policy_hash", &e->has_policy_hash,
	    e->policy_hash, 32, w, err) != 0 ||
	    s_get_hex_opt(j, "case_pseudonym", &e->has_case_pseudonym,
	    e->case_pseudonym, 32, w, err) != 0 ||
	    s_get_fields(j, e->fields, w, err) != 0 ||
	    s_get_hex_opt(j, "envelope_digest", &e->has_envelope_digest,
	    e->envelope_digest, 32, w, err) != 0 ||
	    s_get_hex_opt(j, "receipt_digest", &e->has_receipt_digest,
	    e->receipt_digest, 32, w, err) != 0 ||
	    s_get_str_opt(j, "rule", e->rule, sizeof(e->rule), w, err) != 0 ||
	    s_get_str_opt(j, "actor", e->actor, sizeof(e->actor), w, err) != 0)
		return -1;
	if (*(problem = s_entry_problem(e)) != '\0')
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s %llu: %s", w,
		    (unsigned long long)e->seq, problem);
	return 0;
}

static const char *const s_head_keys[] = {
	"type", "size", "time_ms", "time", "root", "signature", NULL };

int
audit_head_from_json(const json_t *j, audit_head_t *h, kp_err_t *err)
{
	const char *w = "tree head";

	if (h == NULL)
		return kp_fail(err, KP_ERR_INVALID_ARG, "tree head: NULL");
	memset(h, 0, sizeof(*h));
	if (s_only_keys(j, s_head_keys, w, err) != 0 ||
	    s_type(j, "tree_head", w, err) != 0 ||
	    s_get_u64(j, "size", &h->size, w, err) != 0 ||
	    s_get_time(j, &h->time_ms, w, err) != 0 ||
	    s_get_hex(j, "root", h->root, 32, w, err) != 0 ||
	    s_get_hex(j, "signature", h->signature, 64, w, err) != 0)
		return -1;
	return 0;
}
