/*
 * policy.c: load the chain policy file and check events against it (see
 * policy.h and docs/POLICY.md).
 *
 * This module owns the meaning of the policy file and the per-event
 * checks; lib/inifile.c owns its syntax and the FILE:LINE reports.  Field
 * names are checked against the event's protobuf descriptor
 * (events_descriptor), so a policy can only name fields the schema has,
 * and a rule keeps one struct s_field per descriptor field, indexed like
 * desc->fields.
 *
 * Loading:
 *   1. inifile_read() reads the exact bytes once; the hash is taken of
 *      those bytes, so what is hashed is what was parsed;
 *   2. s_on_section / s_on_key fill a fresh policy_t, reporting every
 *      problem with its line and going on;
 *   3. s_finish checks what needs the whole file (required keys, roles of
 *      never_to and expects against recipients, expected answers against
 *      their own rule);
 *   4. on any problem the fresh policy_t is freed: a half-read policy is
 *      never returned, so a reload can keep the old one.
 *
 * Checking (policy_check) refuses on the first violation with one line
 * "TYPE: rule 'NAME': ..." (the rule names are stable; callers and tests
 * match them).  It must never log or echo field values other than the
 * offending number, and never accept what a rule does not mention: a
 * field that is neither required nor allowed is forbidden.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope.h"
#include "events.h"
#include "inifile.h"
#include "pbjson.h"
#include "policy.h"
#include "util.h"

#define S_MAX_TYPE 8                 /* event types are 1..S_MAX_TYPE-1 */
#define S_NROLES (KP_ROLE_ZORG + 1)
#define S_HASH_LEN 32
#define S_MS_PER_DAY (24ULL * 3600 * 1000)
#define S_DUR_MAX (36500 * S_MS_PER_DAY)   /* 100 years */
#define S_MAX_ITEMS_MAX 1000
#define S_ITEM_MAX 64                /* longest list item */
#define S_DURATION_HINT "(use e.g. 12h, 90d)"

_Static_assert(KP__EVENT_TYPE__EVENT_TYPE_CARE_NOTICE < S_MAX_TYPE,
    "S_MAX_TYPE must exceed every event type");

/* Keys with one value per rule (index into line_of / ok). */
enum {
	S_K_PURPOSE, S_K_LEGAL_BASIS, S_K_SENDERS, S_K_RECIPIENTS,
	S_K_REQUIRED, S_K_ALLOWED, S_K_RETENTION, S_K_LEAD_FIELD,
	S_K_INTERIM_LEAD, S_K_OUTCOME, S_K_ESC_REMINDERS, S_K_ESC_AFTER,
	S_NKEYS
};

/* Keys with one value per field (index into s_field.line). */
enum { S_F_REQUIRED, S_F_ALLOWED, S_F_RANGE, S_F_DATE, S_F_MAX, S_F_INTERIM,
	S_F_ONLY_TO, S_NF };

#define S_INTERIM_MAX 8          /* interim values per field */

/* What the rule says about one field of the event's message. */
struct s_field {
	bool required, allowed, date, has_range, has_max;
	unsigned never_to;        /* bit per role */
	unsigned only_to;         /* bit per role; 0: any recipient */
	uint64_t lo, hi;          /* range; two's complement if signed */
	size_t max_items;
	int interim[S_INTERIM_MAX];  /* enum values that make it interim */
	size_t n_interim;
	int line[S_NF];           /* loading: where each was set, 0 = not */
	/* an enum field whose values all lie in 0..255: a bit per value, so
	 * the check of each element (1,000 in kpbench's 1 KiB list) is one load, not
	 * protobuf-c's binary search (4.7% of a receiver: PERFORMANCE.md) */
	bool enum_small;
	uint64_t enum_ok[4];
};

struct s_expect {
	int type;                 /* 0: no answer expected */
	uint64_t lead_ms;
	bool has_bounds;          /* lead_bounds.ROLE: the sender's own lead */
	uint64_t lo_ms, hi_ms;    /* time (lead_field) must lie in these */
	int line, bounds_line;    /* loading */
};

struct policy_rule {
	int type;
	const char *name;                    /* "referral" */
	const ProtobufCMessageDescriptor *desc;
	char purpose[KP_LABEL_MAX + 1];
	char legal_basis[KP_LABEL_MAX + 1];
	unsigned senders, recipients;        /* bit per role */
	uint64_t retention_ms;
	struct s_expect expects[S_NROLES];
	int lead_field;                      /* index + 1 of lead_field, 0 */
	int outcome_field;                   /* index + 1 of outcome, 0 */
	uint64_t interim_lead_ms;            /* after an interim answer */
	bool any_interim;                    /* some interim value is set */
	bool interim_keyed;                  /* loading: an interim.* key */
	uint32_t esc_reminders;              /* escalate after N reminders */
	uint64_t esc_after_ms;               /* or this long overdue; 0: no */
	struct s_field *fields;              /* desc->n_fields of them */
	/* Loading only. */
	int line;                            /* first [name] header */
	int line_of[S_NKEYS];
	bool ok[S_NKEYS];
	int never_line[S_NROLES];
};

struct policy {
	char *path;
	uint8_t hash[S_HASH_LEN];
	uint64_t metadata_retention_ms;      /* [chain]; 0: not set */
	policy_rule_t *rules[S_MAX_TYPE];
};

/* One policy_load() run. */
struct s_load {
	inifile_t *ini;
	policy_t *pol;
	policy_rule_t *cur;       /* section being read; NULL for [chain] */
	int chain_line[3];        /* [chain] name, version,
	                           * metadata_retention */
};

typedef void (*s_setter)(struct s_load *, policy_rule_t *, const char *key,
    const char *sub, const char *value, int line);

/* ---- problems ---------------------------------------------------- */

/* A problem on line `line` (0: the whole file). */
static void __attribute__((format(printf, 3, 4)))
s_problem(struct s_load *ld, int line, const char *fmt, ...)
{
	char msg[480];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	inifile_problem(ld->ini, line, KP_ERR_POLICY, "%s", msg);
}

/* A problem with `key` on line `line`. */
static void __attribute__((format(printf, 4, 5)))
s_bad(struct s_load *ld, int line, const char *key, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s_problem(ld, line, "%s: %s", key, msg);
}

/* Refuse an event: KP_ERR_POLICY with one line; always -1. */
static int __attribute__((format(printf, 2, 3)))
s_refuse(kp_err_t *err, const char *fmt, ...)
{
	char msg[KP_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kp_fail(err, KP_ERR_POLICY, "%s", msg);
}

/*
 * A refusal fit for a log.  The messages of policy_check and events_unpack
 * name the field and then, for the value rules (enumeration, range, date,
 * max items), the refused value: "...: field 'age_years' is 11, outside
 * 12..18".  The client that sent the event may see that; a log (stderr,
 * the journal) must never hold a payload value.  Every value is a number,
 * so what follows the field name is cut when it holds a digit.
 */
/* The text inside key'...' of a refusal message (key "rule '" or
 * "field '"), and its length; NULL if the message has none. */
static const char *
s_quoted(const char *msg, const char *key, size_t *n)
{
	const char *p = msg != NULL ? strstr(msg, key) : NULL, *end;

	if (p == NULL || (end = strchr(p += strlen(key), '\'')) == NULL)
		return NULL;
	*n = (size_t)(end - p);
	return p;
}

void
policy_log_text(const char *msg, char *out, size_t len)
{
	const char *f, *p;
	size_t n = 0;

	if (len == 0)
		return;
	if ((f = s_quoted(msg, "field '", &n)) == NULL) {
		snprintf(out, len, "%s", msg);
		return;
	}
	for (p = f + n + 1; *p != '\0' && (*p < '0' || *p > '9'); p++)
		;
	if (*p == '\0')
		snprintf(out, len, "%s", msg);
	else
		snprintf(out, len, "%.*s (value not logged)",
		    (int)(f + n + 1 - msg), msg);
}

/* ---- small helpers ----------------------------------------------- */

static unsigned
s_role_bit(int role)
{
	return role > KP_ROLE_NONE && role < S_NROLES ? 1u << role : 0;
}

/* "halt, rvdk, om" for a role mask, into buf. */
static const char *
s_roles_text(unsigned mask, char *buf, size_t len)
{
	size_t o = 0;
	int r;

	buf[0] = '\0';
	for (r = KP_ROLE_NONE + 1; r < S_NROLES && o < len; r++)
		if (mask & s_role_bit(r))
			o += (size_t)snprintf(buf + o, len - o, "%s%s",
			    o > 0 ? ", " : "", kp_role_name(r));
	return buf;
}

/* "referral, halt_outcome, ..." into buf. */
static const char *
s_types_text(char *buf, size_t len)
{
	size_t o = 0;
	int t;

	buf[0] = '\0';
	for (t = 1; t < S_MAX_TYPE && o < len; t++)
		if (events_descriptor(t) != NULL)
			o += (size_t)snprintf(buf + o, len - o, "%s%s",
			    o > 0 ? ", " : "", events_type_name(t));
	return buf;
}

/* The index of field `name` of desc, or -1. */
static int
s_field_index(const ProtobufCMessageDescriptor *desc, const char *name)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(desc, name);

	return f != NULL ? (int)(f - desc->fields) : -1;
}

/*
 * The next item of a comma-separated list at *p, spaces around it
 * dropped, into out.  1 / 0 at the end / -1 for an empty item (",,", a
 * leading or trailing ',') or one longer than len - 1.
 */
static int
s_list_next(const char **p, char *out, size_t len)
{
	const char *s = *p, *e, *end;

	if (*s == '\0')
		return 0;
	e = strchrnul(s, ',');
	for (end = e; s < end && isspace((unsigned char)*s); s++)
		;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*p = e;
	if (*e == ',') {
		*p = e + 1;
		if (*(*p + strspn(*p, " \t")) == '\0')
			return -1;
	}
	if (end == s || (size_t)(end - s) >= len)
		return -1;
	memcpy(out, s, (size_t)(end - s));
	out[end - s] = '\0';
	return 1;
}

/* ---- integer field types ----------------------------------------- */

static bool
s_signed(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_ENUM:
		return true;
	default:
		return false;
	}
}

static bool
s_integer(const ProtobufCFieldDescriptor *f)
{
	return s_signed(f) || f->type == PROTOBUF_C_TYPE_UINT32 ||
	    f->type == PROTOBUF_C_TYPE_FIXED32 ||
	    f->type == PROTOBUF_C_TYPE_UINT64 ||
	    f->type == PROTOBUF_C_TYPE_FIXED64;
}

static bool
s_wide(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return true;
	default:
		return false;
	}
}

/* a < b in the field's own signedness. */
static bool
s_less(const ProtobufCFieldDescriptor *f, uint64_t a, uint64_t b)
{
	return s_signed(f) ? (int64_t)a < (int64_t)b : a < b;
}

/* v in decimal, signed or not as the field is. */
static const char *
s_num_text(const ProtobufCFieldDescriptor *f, uint64_t v, char *buf,
    size_t len)
{
	if (s_signed(f))
		snprintf(buf, len, "%jd", (intmax_t)(int64_t)v);
	else
		snprintf(buf, len, "%ju", (uintmax_t)v);
	return buf;
}

/*
 * One range bound for field f: decimal, '-' allowed for signed types,
 * within what the field's type can hold.  0 / -1.
 */
static int
s_parse_bound(const ProtobufCFieldDescriptor *f, const char *text,
    uint64_t *out)
{
	bool neg = s_signed(f) && *text == '-';
	uint64_t mag, max;

	if (s_signed(f))
		max = s_wide(f) ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX;
	else
		max = s_wide(f) ? UINT64_MAX : UINT32_MAX;
	if (kp_parse_uint(text + neg, max + neg, &mag) != 0)
		return -1;
	*out = neg ? (uint64_t)0 - mag : mag;
	return 0;
}

static uint64_t s_element(const ProtobufCMessage *msg,
    const ProtobufCFieldDescriptor *f, size_t i);

/* ---- values of rule keys: each reports its own problems ---------- */

/* purpose, legal_basis: what the envelope header can carry. */
static void
s_set_label(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	char *dst = strcmp(key, "purpose") == 0 ? r->purpose : r->legal_basis;
	size_t n = strlen(v);

	(void)sub;
	if (n > KP_LABEL_MAX || strspn(v, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-") != n) {
		s_bad(ld, line, key, "'%.80s' is not 1-%d characters of "
		    "[A-Za-z0-9._:/-]", v, KP_LABEL_MAX);
		return;
	}
	memcpy(dst, v, n + 1);
	r->ok[strcmp(key, "purpose") == 0 ? S_K_PURPOSE : S_K_LEGAL_BASIS] = 1;
}

/* One role of a list; its bit, or 0 after reporting. */
static unsigned
s_one_role(struct s_load *ld, const char *key, const char *name, int line)
{
	int role = kp_role_from_string(name);

	if (role == KP_ROLE_AUDITOR) {
		s_bad(ld, line, key, "role auditor may not send or receive "
		    "events");
		return 0;
	}
	if (role == KP_ROLE_NONE || s_role_bit(role) == 0) {
		s_bad(ld, line, key, "unknown role '%.40s' (roles: leerplicht, "
		    "halt, rvdk, om, jbt, zorg)", name);
		return 0;
	}
	return s_role_bit(role);
}

/* senders, recipients: a list of roles. */
static void
s_set_roles(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	char item[S_ITEM_MAX];
	unsigned mask = 0, bit;
	bool ok = true;
	int rc;

	(void)sub;
	while ((rc = s_list_next(&v, item, sizeof(item))) != 0) {
		bit = 0;
		if (rc < 0) {
			s_bad(ld, line, key, "empty or over-long list item");
			ok = false;
		} else if ((bit = s_one_role(ld, key, item, line)) == 0)
			ok = false;
		else if (mask & bit) {
			s_bad(ld, line, key, "role %s is listed twice", item);
			ok = false;
		}
		mask |= bit;
	}
	if (strcmp(key, "senders") == 0) {
		r->senders = mask;
		r->ok[S_K_SENDERS] = ok;
	} else {
		r->recipients = mask;
		r->ok[S_K_RECIPIENTS] = ok;
	}
}

/* One field of a required/allowed list; 0 / -1 after reporting. */
static int
s_list_field(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *name, int line)
{
	int req = strcmp(key, "required") == 0, i;
	struct s_field *f;

	if ((i = s_field_index(r->desc, name)) < 0) {
		s_bad(ld, line, key, "%s has no field '%.40s'", r->name, name);
		return -1;
	}
	f = &r->fields[i];
	if (f->line[req ? S_F_REQUIRED : S_F_ALLOWED] == line) {
		s_bad(ld, line, key, "field '%s' is listed twice", name);
		return -1;
	}
	if (req && f->allowed) {
		s_bad(ld, line, key, "field '%s' is both required and allowed "
		    "(line %d)", name, f->line[S_F_ALLOWED]);
		return -1;
	}
	if (!req && f->required) {
		s_bad(ld, line, key, "field '%s' is both required (line %d) "
		    "and allowed", name, f->line[S_F_REQUIRED]);
		return -1;
	}
	f->line[req ? S_F_REQUIRED : S_F_ALLOWED] = line;
	if (req)
		f->required = true;
	else
		f->allowed = true;
	return 0;
}

/* required, allowed: lists of field names. */
static void
s_set_fields(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	char item[S_ITEM_MAX];
	int rc;

	(void)sub;
	while ((rc = s_list_next(&v, item, sizeof(item))) != 0) {
		if (rc < 0)
			s_bad(ld, line, key, "empty or over-long list item");
		else
			(void)s_list_field(ld, r, key, item, line);
	}
}

/* A duration from 1ms to 36500d into *ms; 0 / -1 after reporting. */
static int
s_duration(struct s_load *ld, const char *key, const char *v, int line,
    uint64_t *ms)
{
	if (inifile_duration(v, ms) != 0) {
		s_bad(ld, line, key, "'%.80s' is not a duration "
		    S_DURATION_HINT, v);
		return -1;
	}
	if (*ms == 0 || *ms > S_DUR_MAX) {
		s_bad(ld, line, key, "'%.80s' is not from 1ms to 36500d", v);
		return -1;
	}
	return 0;
}

static void
s_set_retention(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	(void)sub;
	r->ok[S_K_RETENTION] =
	    s_duration(ld, key, v, line, &r->retention_ms) == 0;
}

/*
 * The field named by the key's suffix (range.SUB), not set before by a
 * key of the same kind (slot); NULL after reporting.
 */
static struct s_field *
s_sub_field(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, int slot, int line)
{
	struct s_field *f;
	int i;

	if ((i = s_field_index(r->desc, sub)) < 0) {
		s_bad(ld, line, key, "%s has no field '%.40s'", r->name, sub);
		return NULL;
	}
	f = &r->fields[i];
	if (f->line[slot] != 0) {
		s_problem(ld, line, "duplicate key "
		    "'%s' in [%s] (first set on line %d)", key, r->name,
		    f->line[slot]);
		return NULL;
	}
	f->line[slot] = line;
	return f;
}

/* range.FIELD = LOW..HIGH, inclusive, for an integer field. */
static void
s_set_range(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	struct s_field *f = s_sub_field(ld, r, key, sub, S_F_RANGE, line);
	const ProtobufCFieldDescriptor *fd;
	char lo[32];
	const char *dots = strstr(v, "..");
	uint64_t a, b;

	if (f == NULL)
		return;
	fd = &r->desc->fields[f - r->fields];
	if (!s_integer(fd) || fd->type == PROTOBUF_C_TYPE_ENUM) {
		s_bad(ld, line, key, "field '%s' is not an integer field", sub);
		return;
	}
	if (dots == NULL || (size_t)(dots - v) >= sizeof(lo)) {
		s_bad(ld, line, key, "'%.80s' is not a range LOW..HIGH", v);
		return;
	}
	snprintf(lo, sizeof(lo), "%.*s", (int)(dots - v), v);
	if (s_parse_bound(fd, lo, &a) != 0 ||
	    s_parse_bound(fd, dots + 2, &b) != 0 || s_less(fd, b, a)) {
		s_bad(ld, line, key, "'%.80s' is not a range LOW..HIGH of "
		    "numbers the field can hold, with LOW <= HIGH", v);
		return;
	}
	f->lo = a;
	f->hi = b;
	f->has_range = true;
}

/* date.FIELD = yes, for a uint32 field holding YYYYMMDD. */
static void
s_set_date(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	struct s_field *f = s_sub_field(ld, r, key, sub, S_F_DATE, line);

	if (f == NULL)
		return;
	if (r->desc->fields[f - r->fields].type != PROTOBUF_C_TYPE_UINT32) {
		s_bad(ld, line, key, "field '%s' is not a uint32 (YYYYMMDD)",
		    sub);
		return;
	}
	if (strcmp(v, "yes") != 0) {
		s_bad(ld, line, key, "'%.80s' is not yes (leave the key out "
		    "for no)", v);
		return;
	}
	f->date = true;
}

/* max_items.FIELD = N, for a repeated field. */
static void
s_set_max_items(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	struct s_field *f = s_sub_field(ld, r, key, sub, S_F_MAX, line);
	uint64_t n;

	if (f == NULL)
		return;
	if (r->desc->fields[f - r->fields].label != PROTOBUF_C_LABEL_REPEATED) {
		s_bad(ld, line, key, "field '%s' is not a repeated field", sub);
		return;
	}
	if (kp_parse_uint(v, S_MAX_ITEMS_MAX, &n) != 0 || n == 0) {
		s_bad(ld, line, key, "'%.80s' is not a number from 1 to %d", v,
		    S_MAX_ITEMS_MAX);
		return;
	}
	f->max_items = (size_t)n;
	f->has_max = true;
}

/* The role of never_to.ROLE / expects.ROLE, not set before; 0 if bad. */
static int
s_sub_role(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, int *lines, int line)
{
	int role = kp_role_from_string(sub);

	if (role == KP_ROLE_NONE || s_role_bit(role) == 0) {
		s_bad(ld, line, key, "unknown role '%.40s' (roles: leerplicht, "
		    "halt, rvdk, om, jbt, zorg)", sub);
		return 0;
	}
	if (lines[role] != 0) {
		s_problem(ld, line, "duplicate key "
		    "'%s' in [%s] (first set on line %d)", key, r->name,
		    lines[role]);
		return 0;
	}
	lines[role] = line;
	return role;
}

/* never_to.ROLE = fields never sent to that role. */
static void
s_set_never_to(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	char item[S_ITEM_MAX];
	int role, rc, i;

	if ((role = s_sub_role(ld, r, key, sub, r->never_line, line)) == 0)
		return;
	while ((rc = s_list_next(&v, item, sizeof(item))) != 0) {
		if (rc < 0)
			s_bad(ld, line, key, "empty or over-long list item");
		else if ((i = s_field_index(r->desc, item)) < 0)
			s_bad(ld, line, key, "%s has no field '%.40s'",
			    r->name, item);
		else
			r->fields[i].never_to |= s_role_bit(role);
	}
}

/* expects.ROLE = ANSWER_TYPE LEAD_TIME */
static void
s_set_expects(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	int lines[S_NROLES], role, type;
	char name[S_ITEM_MAX], types[200];
	size_t n = strcspn(v, " \t");
	uint64_t ms;

	for (role = 0; role < S_NROLES; role++)
		lines[role] = r->expects[role].line;
	if ((role = s_sub_role(ld, r, key, sub, lines, line)) == 0)
		return;
	r->expects[role].line = line;
	snprintf(name, sizeof(name), "%.*s", (int)n, v);
	if ((type = events_type_from_name(name)) == 0) {
		s_bad(ld, line, key, "unknown event type '%.40s' (known: %s)",
		    name, s_types_text(types, sizeof(types)));
		return;
	}
	v += n + strspn(v + n, " \t");
	if (s_duration(ld, key, v, line, &ms) != 0)
		return;
	r->expects[role].type = type;
	r->expects[role].lead_ms = ms;
}

/* only_to.FIELD = ROLE, ...: the only recipient roles FIELD may go to. */
static void
s_set_only_to(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	struct s_field *f = s_sub_field(ld, r, key, sub, S_F_ONLY_TO, line);
	char item[S_ITEM_MAX];
	unsigned bit;
	int rc;

	if (f == NULL)
		return;
	while ((rc = s_list_next(&v, item, sizeof(item))) != 0) {
		if (rc < 0)
			s_bad(ld, line, key, "empty or over-long list item");
		else if ((bit = s_one_role(ld, key, item, line)) != 0)
			f->only_to |= bit;
	}
}

/* lead_field = FIELD: an unsigned integer field, the sender's own lead
 * time in days (checked against lead_bounds.ROLE). */
static void
s_set_lead_field(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	const ProtobufCFieldDescriptor *fd;
	int i;

	(void)sub;
	if ((i = s_field_index(r->desc, v)) < 0) {
		s_bad(ld, line, key, "%s has no field '%.40s'", r->name, v);
		return;
	}
	fd = &r->desc->fields[i];
	if (fd->label == PROTOBUF_C_LABEL_REPEATED || !s_integer(fd) ||
	    s_signed(fd)) {
		s_bad(ld, line, key, "field '%s' is not a single unsigned "
		    "integer (a number of days)", fd->name);
		return;
	}
	r->lead_field = i + 1;
}

/* lead_bounds.ROLE = LOW..HIGH (durations): the lead time a sender may
 * set for ROLE in lead_field. */
static void
s_set_lead_bounds(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	int lines[S_NROLES], role;
	const char *dots = strstr(v, "..");
	char lo[32];
	uint64_t a, b;

	for (role = 0; role < S_NROLES; role++)
		lines[role] = r->expects[role].bounds_line;
	if ((role = s_sub_role(ld, r, key, sub, lines, line)) == 0)
		return;
	r->expects[role].bounds_line = line;
	if (dots == NULL || (size_t)(dots - v) >= sizeof(lo)) {
		s_bad(ld, line, key, "'%.80s' is not LOW..HIGH (e.g. 28d..120d)",
		    v);
		return;
	}
	snprintf(lo, sizeof(lo), "%.*s", (int)(dots - v), v);
	if (s_duration(ld, key, lo, line, &a) != 0 ||
	    s_duration(ld, key, dots + 2, line, &b) != 0)
		return;
	if (a > b) {
		s_bad(ld, line, key, "LOW is above HIGH");
		return;
	}
	r->expects[role].has_bounds = true;
	r->expects[role].lo_ms = a;
	r->expects[role].hi_ms = b;
}

/* interim.FIELD = VALUE, ...: an answer with one of these enum values in
 * FIELD is an interim one (a phase), not the final answer. */
static void
s_set_interim(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	struct s_field *f = s_sub_field(ld, r, key, sub, S_F_INTERIM, line);
	const ProtobufCFieldDescriptor *fd;
	char item[S_ITEM_MAX];
	int rc, val;

	if (f == NULL)
		return;
	r->interim_keyed = true;
	fd = &r->desc->fields[f - r->fields];
	if (fd->type != PROTOBUF_C_TYPE_ENUM ||
	    fd->label == PROTOBUF_C_LABEL_REPEATED) {
		s_bad(ld, line, key, "field '%s' is not a single enum field",
		    fd->name);
		return;
	}
	while ((rc = s_list_next(&v, item, sizeof(item))) != 0) {
		if (rc < 0)
			s_bad(ld, line, key, "empty or over-long list item");
		else if (pbjson_enum_value(fd->descriptor, item, &val) != 0)
			s_bad(ld, line, key, "'%.40s' is not a value of %s",
			    item, ((const ProtobufCEnumDescriptor *)
			    fd->descriptor)->short_name);
		else if (f->n_interim == S_INTERIM_MAX)
			s_bad(ld, line, key, "more than %d values",
			    S_INTERIM_MAX);
		else {
			f->interim[f->n_interim++] = val;
			r->any_interim = true;
		}
	}
}

static void
s_set_interim_lead(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	(void)sub;
	(void)s_duration(ld, key, v, line, &r->interim_lead_ms);
}

/* escalate_after_reminders = N (1..20): the step after N reminders. */
static void
s_set_esc_reminders(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	char *end;
	unsigned long n;

	(void)sub;
	if (r->type != KP__EVENT_TYPE__EVENT_TYPE_REMINDER) {
		s_bad(ld, line, key, "only [reminder] has an escalation step");
		return;
	}
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || *v == '-' || n < 1 ||
	    n > 20)
		s_bad(ld, line, key, "'%.40s' is not a number from 1 to 20", v);
	else
		r->esc_reminders = (uint32_t)n;
}

/* escalate_after = DURATION: the step after this long overdue. */
static void
s_set_esc_after(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	(void)sub;
	if (r->type != KP__EVENT_TYPE__EVENT_TYPE_REMINDER)
		s_bad(ld, line, key, "only [reminder] has an escalation step");
	else
		(void)s_duration(ld, key, v, line, &r->esc_after_ms);
}

/* outcome = FIELD: the enum field that is the route's outcome. */
static void
s_set_outcome(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *sub, const char *v, int line)
{
	const ProtobufCFieldDescriptor *fd;
	int i;

	(void)sub;
	if ((i = s_field_index(r->desc, v)) < 0) {
		s_bad(ld, line, key, "%s has no field '%.40s'", r->name, v);
		return;
	}
	fd = &r->desc->fields[i];
	if (fd->type != PROTOBUF_C_TYPE_ENUM ||
	    fd->label == PROTOBUF_C_LABEL_REPEATED) {
		s_bad(ld, line, key, "field '%s' is not a single enum field",
		    fd->name);
		return;
	}
	r->outcome_field = i + 1;
}

/* ---- sections and keys ------------------------------------------- */

static const struct {
	const char *name;
	int slot;                 /* S_K_* */
	s_setter set;
} s_keys[] = {
	{ "purpose", S_K_PURPOSE, s_set_label },
	{ "legal_basis", S_K_LEGAL_BASIS, s_set_label },
	{ "senders", S_K_SENDERS, s_set_roles },
	{ "recipients", S_K_RECIPIENTS, s_set_roles },
	{ "required", S_K_REQUIRED, s_set_fields },
	{ "allowed", S_K_ALLOWED, s_set_fields },
	{ "retention", S_K_RETENTION, s_set_retention },
	{ "lead_field", S_K_LEAD_FIELD, s_set_lead_field },
	{ "interim_lead", S_K_INTERIM_LEAD, s_set_interim_lead },
	{ "outcome", S_K_OUTCOME, s_set_outcome },
	{ "escalate_after_reminders", S_K_ESC_REMINDERS, s_set_esc_reminders },
	{ "escalate_after", S_K_ESC_AFTER, s_set_esc_after },
};

/* Keys NAME.SUB: SUB is a field or a role; duplicates checked per SUB. */
static const struct {
	const char *prefix;       /* with the dot */
	s_setter set;
} s_dotted[] = {
	{ "never_to.", s_set_never_to },
	{ "range.", s_set_range },
	{ "date.", s_set_date },
	{ "max_items.", s_set_max_items },
	{ "expects.", s_set_expects },
	{ "lead_bounds.", s_set_lead_bounds },
	{ "interim.", s_set_interim },
	{ "only_to.", s_set_only_to },
};

#define S_N(a) (sizeof(a) / sizeof((a)[0]))

/* The bit per value of each enum field of r whose values fit 0..255. */
static void
s_enum_bits(policy_rule_t *r)
{
	const ProtobufCEnumDescriptor *ed;
	struct s_field *fr;
	unsigned i, j;
	int v;

	for (i = 0; i < r->desc->n_fields; i++) {
		if (r->desc->fields[i].type != PROTOBUF_C_TYPE_ENUM)
			continue;
		ed = r->desc->fields[i].descriptor;
		fr = &r->fields[i];
		fr->enum_small = true;
		for (j = 0; j < ed->n_values && fr->enum_small; j++) {
			v = ed->values[j].value;
			if (v < 0 || v > 255)
				fr->enum_small = false;
			else
				fr->enum_ok[v / 64] |= UINT64_C(1) << (v % 64);
		}
	}
}

/* v (an enum field's value) names a value of its enum. */
static bool
s_enum_known(const ProtobufCFieldDescriptor *f, const struct s_field *fr,
    int32_t v)
{
	if (fr->enum_small)
		return v >= 0 && v <= 255 &&
		    (fr->enum_ok[v / 64] >> (v % 64) & 1) != 0;
	return protobuf_c_enum_descriptor_get_value(f->descriptor, v) != NULL;
}

/* A new empty rule for event type t; NULL if out of memory. */
static policy_rule_t *
s_rule_new(int t)
{
	policy_rule_t *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->type = t;
	r->name = events_type_name(t);
	r->desc = events_descriptor(t);
	r->fields = calloc(r->desc->n_fields ? r->desc->n_fields : 1,
	    sizeof(*r->fields));
	if (r->fields == NULL) {
		free(r);
		return NULL;
	}
	s_enum_bits(r);
	return r;
}

static int
s_on_section(void *arg, const char *name, int lineno)
{
	struct s_load *ld = arg;
	char types[200];
	int t;

	ld->cur = NULL;
	if (strcmp(name, "chain") == 0)
		return 0;
	if ((t = events_type_from_name(name)) <= 0 || t >= S_MAX_TYPE) {
		s_problem(ld, lineno, "unknown section "
		    "[%.60s] (known: chain, %s)", name,
		    s_types_text(types, sizeof(types)));
		return -1;
	}
	if (ld->pol->rules[t] == NULL &&
	    (ld->pol->rules[t] = s_rule_new(t)) == NULL) {
		inifile_problem(ld->ini, lineno, KP_ERR_NOMEM, "out of memory");
		return -1;
	}
	ld->cur = ld->pol->rules[t];
	if (ld->cur->line == 0)
		ld->cur->line = lineno;
	return 0;
}

/* [chain] name = free text, version = label (both informational);
 * metadata_retention = duration (how long metadata rows keep the case). */
static void
s_chain_key(struct s_load *ld, const char *key, const char *v, int line)
{
	int i = strcmp(key, "name") == 0 ? 0 :
	    strcmp(key, "version") == 0 ? 1 :
	    strcmp(key, "metadata_retention") == 0 ? 2 : -1;

	if (i < 0) {
		s_problem(ld, line, "unknown key '%.40s' in [chain] (known: "
		    "name, version, metadata_retention)", key);
		return;
	}
	if (ld->chain_line[i] != 0) {
		s_problem(ld, line, "duplicate key "
		    "'%s' in [chain] (first set on line %d)", key,
		    ld->chain_line[i]);
		return;
	}
	ld->chain_line[i] = line;
	if (*v == '\0')
		s_bad(ld, line, key, "empty value");
	else if (i == 2)
		(void)s_duration(ld, key, v, line,
		    &ld->pol->metadata_retention_ms);
}

/* A key of an event type section. */
static void
s_rule_key(struct s_load *ld, policy_rule_t *r, const char *key,
    const char *v, int line)
{
	size_t i, n;

	for (i = 0; i < S_N(s_keys); i++) {
		if (strcmp(key, s_keys[i].name) != 0)
			continue;
		if (r->line_of[s_keys[i].slot] != 0) {
			s_problem(ld, line, "duplicate "
			    "key '%s' in [%s] (first set on line %d)", key,
			    r->name, r->line_of[s_keys[i].slot]);
			return;
		}
		r->line_of[s_keys[i].slot] = line;
		if (*v == '\0')
			s_bad(ld, line, key, "empty value");
		else
			s_keys[i].set(ld, r, key, NULL, v, line);
		return;
	}
	for (i = 0; i < S_N(s_dotted); i++) {
		n = strlen(s_dotted[i].prefix);
		if (strncmp(key, s_dotted[i].prefix, n) != 0)
			continue;
		if (*v == '\0')
			s_bad(ld, line, key, "empty value");
		else
			s_dotted[i].set(ld, r, key, key + n, v, line);
		return;
	}
	s_problem(ld, line, "unknown key '%.40s' "
	    "in [%s]", key, r->name);
}

static void
s_on_key(void *arg, const char *section, const char *key, const char *v,
    int line)
{
	struct s_load *ld = arg;

	if (*section == '\0')
		s_problem(ld, line, "'%.40s' is "
		    "outside any section (put it under [chain] or an event "
		    "type such as [referral])", key);
	else if (ld->cur == NULL)
		s_chain_key(ld, key, v, line);
	else
		s_rule_key(ld, ld->cur, key, v, line);
}

/* ---- whole-file checks ------------------------------------------- */

/* Every rule names its purpose, legal basis, roles and retention. */
static void
s_finish_keys(struct s_load *ld, const policy_rule_t *r)
{
	static const int need[] = { S_K_PURPOSE, S_K_LEGAL_BASIS, S_K_SENDERS,
	    S_K_RECIPIENTS, S_K_RETENTION };
	size_t i, k;

	for (i = 0; i < S_N(need); i++) {
		for (k = 0; s_keys[k].slot != need[i]; k++)
			;
		if (r->line_of[need[i]] == 0)
			s_problem(ld, r->line, "[%s] "
			    "has no '%s' (required)", r->name, s_keys[k].name);
	}
}

/* Range, date and max_items only make sense for fields that may occur. */
static void
s_finish_field(struct s_load *ld, const policy_rule_t *r, size_t i)
{
	static const struct { int slot; const char *prefix; } kinds[] = {
		{ S_F_RANGE, "range" }, { S_F_DATE, "date" },
		{ S_F_MAX, "max_items" }, { S_F_INTERIM, "interim" },
		{ S_F_ONLY_TO, "only_to" },
	};
	const struct s_field *f = &r->fields[i];
	const char *name = r->desc->fields[i].name;
	size_t k;

	if (f->only_to != 0 && f->required)
		s_problem(ld, f->line[S_F_ONLY_TO], "only_to.%s: field '%s' is "
		    "required, so %s could never be sent to the other "
		    "recipients", name, name, r->name);
	if (f->only_to != 0 && r->ok[S_K_RECIPIENTS] &&
	    (f->only_to & ~r->recipients) != 0)
		s_problem(ld, f->line[S_F_ONLY_TO], "only_to.%s: a role that "
		    "is not a recipient of %s", name, r->name);
	if (f->required || f->allowed)
		return;
	for (k = 0; k < S_N(kinds); k++)
		if (f->line[kinds[k].slot] != 0)
			s_problem(ld, f->line[kinds[k].slot], "%s.%s: field "
			    "'%s' is neither required nor allowed",
			    kinds[k].prefix, name, name);
}

/* never_to.ROLE: ROLE receives this type; its fields are only allowed. */
static void
s_finish_never_to(struct s_load *ld, const policy_rule_t *r, int role)
{
	const char *rn = kp_role_name(role);
	int line = r->never_line[role];
	size_t i;

	if (r->ok[S_K_RECIPIENTS] && !(r->recipients & s_role_bit(role)))
		s_problem(ld, line, "never_to.%s: %s is not a recipient of %s",
		    rn, rn, r->name);
	for (i = 0; i < r->desc->n_fields; i++) {
		if (!(r->fields[i].never_to & s_role_bit(role)))
			continue;
		if (r->fields[i].required)
			s_problem(ld, line, "never_to.%s: field '%s' is "
			    "required, so %s could never be sent to %s", rn,
			    r->desc->fields[i].name, r->name, rn);
		else if (!r->fields[i].allowed)
			s_problem(ld, line, "never_to.%s: field '%s' is "
			    "neither required nor allowed", rn,
			    r->desc->fields[i].name);
	}
}

/* expects.ROLE: ROLE receives this type and may send the answer. */
static void
s_finish_expects(struct s_load *ld, const policy_rule_t *r, int role)
{
	const struct s_expect *e = &r->expects[role];
	const policy_rule_t *a;
	const char *rn = kp_role_name(role);

	if (r->ok[S_K_RECIPIENTS] && !(r->recipients & s_role_bit(role)))
		s_problem(ld, e->line, "expects.%s: %s "
		    "is not a recipient of %s", rn, rn, r->name);
	if (e->type == 0)
		return;
	if ((a = ld->pol->rules[e->type]) == NULL)
		s_problem(ld, e->line, "expects.%s: "
		    "the policy has no [%s] section", rn,
		    events_type_name(e->type));
	else if (a->ok[S_K_SENDERS] && !(a->senders & s_role_bit(role)))
		s_problem(ld, e->line, "expects.%s: %s "
		    "may not send %s", rn, rn, a->name);
}

/*
 * lead_field: a field that may occur; with it, every expects.ROLE has its
 * lead_bounds.ROLE holding the default lead time; lead_bounds.ROLE only
 * with expects.ROLE and lead_field.
 */
static void
s_finish_lead(struct s_load *ld, const policy_rule_t *r, int role)
{
	const struct s_expect *e = &r->expects[role];
	const char *rn = kp_role_name(role);

	if (e->has_bounds && e->type == 0)
		s_problem(ld, e->bounds_line, "lead_bounds.%s: no expects.%s "
		    "in [%s]", rn, rn, r->name);
	else if (e->has_bounds && r->lead_field == 0)
		s_problem(ld, e->bounds_line, "lead_bounds.%s: [%s] has no "
		    "lead_field", rn, r->name);
	else if (r->lead_field != 0 && e->type != 0 && !e->has_bounds &&
	    e->bounds_line == 0)
		s_problem(ld, e->line, "expects.%s: [%s] has a lead_field but "
		    "no lead_bounds.%s", rn, r->name, rn);
	else if (e->has_bounds && e->type != 0 && (e->lead_ms < e->lo_ms ||
	    e->lead_ms > e->hi_ms))
		s_problem(ld, e->bounds_line, "lead_bounds.%s: the lead time of "
		    "expects.%s is outside these bounds", rn, rn);
}

static void
s_finish(struct s_load *ld)
{
	const policy_rule_t *r;
	int t, role, any = 0;
	size_t i;

	for (t = 1; t < S_MAX_TYPE; t++) {
		if ((r = ld->pol->rules[t]) == NULL)
			continue;
		any = 1;
		s_finish_keys(ld, r);
		/* metadata outlives its payload: the reduced row keeps no
		 * case, so the payload could no longer be found by it */
		if (ld->pol->metadata_retention_ms != 0 &&
		    r->retention_ms > ld->pol->metadata_retention_ms)
			s_problem(ld, ld->chain_line[2], "metadata_retention "
			    "is shorter than the retention of [%s] (line %d): "
			    "metadata must be kept at least as long as the "
			    "payload", r->name, r->line_of[S_K_RETENTION]);
		for (i = 0; i < r->desc->n_fields; i++)
			s_finish_field(ld, r, i);
		if (r->interim_keyed != (r->line_of[S_K_INTERIM_LEAD] != 0))
			s_problem(ld, r->interim_keyed ? r->line : r->line_of[
			    S_K_INTERIM_LEAD], "[%s]: interim.FIELD and "
			    "interim_lead go together", r->name);
		if (r->outcome_field != 0 &&
		    !r->fields[r->outcome_field - 1].required &&
		    !r->fields[r->outcome_field - 1].allowed)
			s_problem(ld, r->line_of[S_K_OUTCOME], "outcome: field "
			    "'%s' is neither required nor allowed",
			    r->desc->fields[r->outcome_field - 1].name);
		if (r->lead_field != 0 && !r->fields[r->lead_field - 1].required &&
		    !r->fields[r->lead_field - 1].allowed)
			s_problem(ld, r->line_of[S_K_LEAD_FIELD], "lead_field: "
			    "field '%s' is neither required nor allowed",
			    r->desc->fields[r->lead_field - 1].name);
		for (role = KP_ROLE_NONE + 1; role < S_NROLES; role++) {
			s_finish_lead(ld, r, role);
			if (r->never_line[role] != 0)
				s_finish_never_to(ld, r, role);
			if (r->expects[role].line != 0)
				s_finish_expects(ld, r, role);
		}
	}
	if (!any)
		s_problem(ld, 0, "has no event type "
		    "section (such as [referral]): nothing may be exchanged");
}

/* ---- load and accessors ------------------------------------------ */

static void
s_rule_free(policy_rule_t *r)
{
	if (r == NULL)
		return;
	free(r->fields);
	free(r);
}

void
policy_destroy(policy_t **self_p)
{
	int t;

	if (self_p == NULL || *self_p == NULL)
		return;
	for (t = 0; t < S_MAX_TYPE; t++)
		s_rule_free((*self_p)->rules[t]);
	free((*self_p)->path);
	free(*self_p);
	*self_p = NULL;
}

/* Read, parse and check into ld->pol; the hash of the bytes read. */
static void
s_load(struct s_load *ld, const char *path)
{
	const uint8_t *data;
	size_t len;

	if ((ld->pol = calloc(1, sizeof(*ld->pol))) == NULL ||
	    (ld->pol->path = strdup(path)) == NULL) {
		inifile_problem(ld->ini, 0, KP_ERR_NOMEM, "out of memory");
		return;
	}
	if (inifile_read(ld->ini) != 0)
		return;
	(void)inifile_parse(ld->ini, s_on_section, s_on_key, ld);
	s_finish(ld);
	data = inifile_data(ld->ini, &len);
	if (crypto_generichash(ld->pol->hash, sizeof(ld->pol->hash), data, len,
	    NULL, 0) != 0)
		s_problem(ld, 0, "cannot hash");
}

int
policy_load(const char *path, policy_t **out,
    void (*report)(void *arg, const char *line), void *arg, int *n_problems,
    kp_err_t *err)
{
	struct s_load ld;
	int n;

	kp_err_clear(err);
	if (n_problems != NULL)
		*n_problems = 0;
	if (out == NULL || path == NULL)
		return kp_fail(err, KP_ERR_INVALID_ARG, "policy_load: no path");
	*out = NULL;
	memset(&ld, 0, sizeof(ld));
	if ((ld.ini = inifile_new(path, KP_ERR_POLICY, report, arg, err)) ==
	    NULL)
		return -1;
	s_load(&ld, path);
	n = inifile_problems(ld.ini);
	if (n == 0) {
		*out = ld.pol;
		ld.pol = NULL;
	}
	policy_destroy(&ld.pol);
	inifile_destroy(&ld.ini);
	if (n_problems != NULL)
		*n_problems = n;
	return n == 0 ? 0 : -1;
}

uint64_t
policy_metadata_retention_ms(const policy_t *self)
{
	return self != NULL ? self->metadata_retention_ms : 0;
}

const uint8_t *
policy_hash(const policy_t *self)
{
	return self != NULL ? self->hash : NULL;
}

const char *
policy_path(const policy_t *self)
{
	return self != NULL ? self->path : NULL;
}

const policy_rule_t *
policy_rule(const policy_t *self, int event_type)
{
	if (self == NULL || event_type <= 0 || event_type >= S_MAX_TYPE)
		return NULL;
	return self->rules[event_type];
}

const char *
policy_rule_purpose(const policy_rule_t *r)
{
	return r != NULL ? r->purpose : NULL;
}

const char *
policy_rule_legal_basis(const policy_rule_t *r)
{
	return r != NULL ? r->legal_basis : NULL;
}

uint64_t
policy_rule_retention_ms(const policy_rule_t *r)
{
	return r != NULL ? r->retention_ms : 0;
}

int
policy_rule_expects(const policy_rule_t *r, int recipient_role,
    int *answer_type, uint64_t *lead_ms)
{
	if (r == NULL || s_role_bit(recipient_role) == 0 ||
	    r->expects[recipient_role].type == 0)
		return -1;
	if (answer_type != NULL)
		*answer_type = r->expects[recipient_role].type;
	if (lead_ms != NULL)
		*lead_ms = r->expects[recipient_role].lead_ms;
	return 0;
}

/* The value of lead_field in ev as milliseconds; false if absent. */
static bool
s_lead_of(const policy_rule_t *r, const ProtobufCMessage *ev, uint64_t *ms)
{
	const ProtobufCFieldDescriptor *f;

	if (r->lead_field == 0 || ev == NULL || ev->descriptor != r->desc)
		return false;
	f = &r->desc->fields[r->lead_field - 1];
	if (!pbjson_field_present(ev, f))
		return false;
	*ms = s_element(ev, f, 0) * S_MS_PER_DAY;
	return true;
}

int
policy_rule_lead(const policy_rule_t *r, int recipient_role,
    const ProtobufCMessage *ev, int *answer_type, uint64_t *lead_ms)
{
	uint64_t own;

	if (policy_rule_expects(r, recipient_role, answer_type, lead_ms) != 0)
		return -1;
	if (r->expects[recipient_role].has_bounds && s_lead_of(r, ev, &own) &&
	    own >= r->expects[recipient_role].lo_ms &&
	    own <= r->expects[recipient_role].hi_ms && lead_ms != NULL)
		*lead_ms = own;
	return 0;
}

bool
policy_rule_interim(const policy_rule_t *r, const ProtobufCMessage *ev,
    uint64_t *lead_ms)
{
	const ProtobufCFieldDescriptor *f;
	size_t i, k;
	int v;

	if (r == NULL || !r->any_interim || ev == NULL ||
	    ev->descriptor != r->desc)
		return false;
	for (i = 0; i < r->desc->n_fields; i++) {
		f = &r->desc->fields[i];
		if (r->fields[i].n_interim == 0 || !pbjson_field_present(ev, f))
			continue;
		v = *(const int *)(const void *)((const char *)ev + f->offset);
		for (k = 0; k < r->fields[i].n_interim; k++)
			if (r->fields[i].interim[k] == v) {
				if (lead_ms != NULL)
					*lead_ms = r->interim_lead_ms;
				return true;
			}
	}
	return false;
}

void
policy_escalation(const policy_t *self, uint32_t *after_reminders,
    uint64_t *after_ms)
{
	const policy_rule_t *r = policy_rule(self,
	    KP__EVENT_TYPE__EVENT_TYPE_REMINDER);

	*after_reminders = r != NULL ? r->esc_reminders : 0;
	*after_ms = r != NULL ? r->esc_after_ms : 0;
}

const char *
policy_rule_outcome_field(const policy_rule_t *r)
{
	return r != NULL && r->outcome_field != 0 ?
	    r->desc->fields[r->outcome_field - 1].name : NULL;
}

/* ---- checking events --------------------------------------------- */

/* Sender and recipient roles of rule r. */
static int
s_check_roles(const policy_rule_t *r, int sender, int recipient,
    kp_err_t *err)
{
	char allowed[128];

	if (!(r->senders & s_role_bit(sender)))
		return s_refuse(err, "%s: rule 'senders': role %s "
		    "may not send %s (allowed: %s)", r->name,
		    kp_role_name(sender), r->name,
		    s_roles_text(r->senders, allowed, sizeof(allowed)));
	if (!(r->recipients & s_role_bit(recipient)))
		return s_refuse(err, "%s: rule 'recipients': role "
		    "%s may not receive %s (allowed: %s)", r->name,
		    kp_role_name(recipient), r->name,
		    s_roles_text(r->recipients, allowed, sizeof(allowed)));
	return 0;
}

/* True if YYYYMMDD is a date that exists, years 1900 to 9999. */
static bool
s_date_valid(uint64_t v)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	uint64_t y = v / 10000, m = v / 100 % 100, d = v % 100;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (y < 1900 || y > 9999 || m < 1 || m > 12 || d < 1)
		return false;
	return d <= (uint64_t)mdays[m - 1] + (m == 2 && leap);
}

/* Element i of integer or enum field f, sign-extended if signed. */
static uint64_t
s_element(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
    size_t i)
{
	const char *p = (const char *)msg + f->offset;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		p = *(const char *const *)p;
	if (s_wide(f))
		return ((const uint64_t *)p)[i];
	if (s_signed(f))
		return (uint64_t)(int64_t)((const int32_t *)p)[i];
	return ((const uint32_t *)p)[i];
}

/*
 * Enumeration, range and date of one value v of field f, element idx of a
 * repeated field or -1.  The field's display name ("name[i]") is made
 * only for a refusal: checking is the hot path, refusing is not.
 */
static int
s_check_value(const policy_rule_t *r, const ProtobufCFieldDescriptor *f,
    const struct s_field *fr, uint64_t v, long idx, kp_err_t *err)
{
	const ProtobufCEnumDescriptor *ed = f->descriptor;
	char a[32], b[32], c[32], at[96];
	bool bad_enum = f->type == PROTOBUF_C_TYPE_ENUM && ((int32_t)v == 0 ||
	    !s_enum_known(f, fr, (int32_t)v));
	bool bad_range = fr->has_range && (s_less(f, v, fr->lo) ||
	    s_less(f, fr->hi, v));
	bool bad_date = fr->date && !s_date_valid(v);

	if (!bad_enum && !bad_range && !bad_date)
		return 0;
	snprintf(at, sizeof(at), idx >= 0 ? "%s[%ld]" : "%s", f->name, idx);
	if (bad_enum)
		return s_refuse(err, "%s: rule 'enumeration': field '%s' is "
		    "%d, not a value of %s", r->name, at, (int)(int32_t)v,
		    ed->short_name);
	if (bad_range)
		return s_refuse(err, "%s: rule 'range': field '%s' "
		    "is %s, outside %s..%s", r->name, at,
		    s_num_text(f, v, a, sizeof(a)),
		    s_num_text(f, fr->lo, b, sizeof(b)),
		    s_num_text(f, fr->hi, c, sizeof(c)));
	return s_refuse(err, "%s: rule 'date': field '%s' "
	    "is %ju, not an existing date YYYYMMDD", r->name, at, (uintmax_t)v);
}

/*
 * How many of the n values of enum field f, from the first, are known
 * values other than 0, by the bit map alone: the loop over a repeated
 * enum's elements without a call per element (a 1 KiB list of routes).
 * 0 unless the map decides alone (no range, no date); s_check_value then
 * checks the rest, and words the refusal of the first bad one.
 */
static size_t
s_enums_known(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
    const struct s_field *fr, size_t n)
{
	const int32_t *v;
	size_t i;

	if (f->type != PROTOBUF_C_TYPE_ENUM || !fr->enum_small ||
	    fr->has_range || fr->date)
		return 0;
	v = (const int32_t *)((const char *)msg + f->offset);
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		v = *(const int32_t *const *)v;
	for (i = 0; i < n; i++)
		if (v[i] <= 0 || v[i] > 255 ||
		    (fr->enum_ok[v[i] / 64] >> (v[i] % 64) & 1) == 0)
			break;
	return i;
}

/* One present field: allowed, not never_to recipient, its values.
 * enums_valid: every enum value is already known to be a value of its
 * enum other than 0 (policy_check_unpacked), so an enum field without a
 * range or date rule has nothing left to check. */
static int
s_check_field(const policy_rule_t *r, const ProtobufCMessage *msg,
    size_t idx, int recipient, bool enums_valid, kp_err_t *err)
{
	const ProtobufCFieldDescriptor *f = &r->desc->fields[idx];
	const struct s_field *fr = &r->fields[idx];
	bool rep = f->label == PROTOBUF_C_LABEL_REPEATED;
	size_t i, n = 1;

	if (!fr->required && !fr->allowed)
		return s_refuse(err, "%s: rule 'at most': field "
		    "'%s' is not allowed", r->name, f->name);
	if (fr->never_to & s_role_bit(recipient))
		return s_refuse(err, "%s: rule 'never to %s': "
		    "field '%s' may not be sent to %s", r->name,
		    kp_role_name(recipient), f->name, kp_role_name(recipient));
	if (fr->only_to != 0 && !(fr->only_to & s_role_bit(recipient))) {
		char only[128];

		return s_refuse(err, "%s: rule 'only to': field '%s' may go "
		    "only to %s, not to %s", r->name, f->name,
		    s_roles_text(fr->only_to, only, sizeof(only)),
		    kp_role_name(recipient));
	}
	if (rep)
		n = *(const size_t *)((const char *)msg + f->quantifier_offset);
	if (fr->has_max && n > fr->max_items)
		return s_refuse(err, "%s: rule 'max items': field "
		    "'%s' has %zu items, at most %zu", r->name, f->name, n,
		    fr->max_items);
	if (!s_integer(f) || (enums_valid && f->type == PROTOBUF_C_TYPE_ENUM &&
	    !fr->has_range && !fr->date))
		return 0;
	i = s_enums_known(msg, f, fr, n);
	for (; i < n; i++)
		if (s_check_value(r, f, fr, s_element(msg, f, i), rep ? (long)i :
		    -1, err) != 0)
			return -1;
	return 0;
}

/* The sender's own lead time within the bounds for the recipient. */
static int
s_check_lead(const policy_rule_t *r, const ProtobufCMessage *msg,
    int recipient, kp_err_t *err)
{
	const struct s_expect *e;
	uint64_t own;

	if (s_role_bit(recipient) == 0)
		return 0;
	e = &r->expects[recipient];
	if (!e->has_bounds || !s_lead_of(r, msg, &own) ||
	    (own >= e->lo_ms && own <= e->hi_ms))
		return 0;
	return s_refuse(err, "%s: rule 'lead time': field '%s' is %ju days, "
	    "outside %ju..%ju days for %s", r->name,
	    r->desc->fields[r->lead_field - 1].name,
	    (uintmax_t)(own / S_MS_PER_DAY), (uintmax_t)(e->lo_ms /
	    S_MS_PER_DAY), (uintmax_t)((e->hi_ms + S_MS_PER_DAY - 1) /
	    S_MS_PER_DAY), kp_role_name(recipient));
}

/* Every required field present (rule 'at least'). */
static int
s_check_required(const policy_rule_t *r, const ProtobufCMessage *msg,
    kp_err_t *err)
{
	size_t i;

	for (i = 0; i < r->desc->n_fields; i++)
		if (r->fields[i].required &&
		    !pbjson_field_present(msg, &r->desc->fields[i]))
			return s_refuse(err, "%s: rule 'at least': "
			    "required field '%s' is missing", r->name,
			    r->desc->fields[i].name);
	return 0;
}

static int s_check(const policy_t *self, int event_type, int sender_role,
    int recipient_role, const ProtobufCMessage *event, bool enums_valid,
    kp_err_t *err);

int
policy_check(const policy_t *self, int event_type, int sender_role,
    int recipient_role, const ProtobufCMessage *event, kp_err_t *err)
{
	return s_check(self, event_type, sender_role, recipient_role, event,
	    false, err);
}

int
policy_check_unpacked(const policy_t *self, int event_type, int sender_role,
    int recipient_role, const ProtobufCMessage *event, kp_err_t *err)
{
	return s_check(self, event_type, sender_role, recipient_role, event,
	    true, err);
}

static int
s_check(const policy_t *self, int event_type, int sender_role,
    int recipient_role, const ProtobufCMessage *event, bool enums_valid,
    kp_err_t *err)
{
	const policy_rule_t *r;
	size_t i;

	if (self == NULL || event == NULL)
		return kp_fail(err, KP_ERR_INVALID_ARG, "policy_check: no "
		    "policy or no event");
	if (events_descriptor(event_type) == NULL)
		return s_refuse(err, "event type %d: rule 'event "
		    "type': not an event type", event_type);
	if ((r = policy_rule(self, event_type)) == NULL)
		return s_refuse(err, "%s: rule 'event type': the "
		    "policy has no rule for %s", events_type_name(event_type),
		    events_type_name(event_type));
	if (event->descriptor != r->desc)
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: the event is a %s "
		    "message, not a %s", r->name, event->descriptor->short_name,
		    r->desc->short_name);
	if (s_check_roles(r, sender_role, recipient_role, err) != 0 ||
	    s_check_required(r, event, err) != 0)
		return -1;
	if (event->n_unknown_fields != 0)
		return s_refuse(err, "%s: rule 'at most': field "
		    "number %u is not allowed", r->name,
		    (unsigned)event->unknown_fields[0].tag);
	for (i = 0; i < r->desc->n_fields; i++)
		if (pbjson_field_present(event, &r->desc->fields[i]) &&
		    s_check_field(r, event, i, recipient_role, enums_valid,
		    err) != 0)
			return -1;
	return s_check_lead(r, event, recipient_role, err);
}

/*
 * A policy refusal's message names its rule as "rule 'R'" and, where one
 * field broke it, "field 'F'" (s_refuse above); the audit log keeps just
 * those, "R" or "R:F", so that it records why without recording a value.
 */
void
policy_refusal_rule(const char *msg, char *out, size_t len)
{
	size_t rn = 0, fn = 0;
	const char *r = s_quoted(msg, "rule '", &rn);
	const char *f = s_quoted(msg, "field '", &fn);

	if (len == 0)
		return;
	out[0] = '\0';
	if (r != NULL && f != NULL)
		snprintf(out, len, "%.*s:%.*s", (int)rn, r, (int)fn, f);
	else if (r != NULL)
		snprintf(out, len, "%.*s", (int)rn, r);
}
