/*
 * pbjson.c: protobuf-c messages <-> JSON, from descriptors alone (see
 * pbjson.h for the JSON form).
 *
 * This module owns the JSON mapping of every schema in proto/; it must
 * never contain per-message code, so a new field or message needs no
 * change here.  Input is refused, never repaired: an unknown member, a
 * null, a wrong JSON type, an out-of-range integer or an enum name not in
 * the enumeration ends the conversion with one line naming the field.
 *
 * Memory: pbjson_from_json() builds the message with malloc in the exact
 * layout protobuf_c_message_unpack() produces (arrays with their counts,
 * strdup'd strings, malloc'd bytes, sub-messages, oneof case set before
 * the member), so protobuf_c_message_free_unpacked(msg, NULL) frees a
 * finished or a half-built message alike.  The rejected alternative was
 * build, pack, unpack: it doubles the work and still needs a free walker
 * for the first copy.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "util.h"

#define S_LABEL_MAX 160     /* "outer.list[3].field" */

struct s_ctx {
	const char *root;           /* snake name of the top-level message */
	kp_err_t *err;              /* caller's error buffer, may be NULL */
};

#define S_MEMBER(type, msg, off) (*(type *)((char *)(msg) + (off)))
/* Read-only: S_CMEMBER(char *, ...) reads a member as `const char *`
 * (the const is added here; passing `const char *` would make it twice,
 * which clang refuses). */
#define S_CMEMBER(type, msg, off) \
	(*(const type *)((const char *)(msg) + (off)))

/* ---- names ------------------------------------------------------------ */

static const char *
s_snake(const char *camel, int upper, char *buf, size_t len)
{
	size_t i, o = 0;
	unsigned char c, prev, next;

	for (i = 0; camel[i] != '\0' && o + 1 < len; i++) {
		c = (unsigned char)camel[i];
		prev = i > 0 ? (unsigned char)camel[i - 1] : 0;
		next = (unsigned char)camel[i + 1];
		if (i > 0 && isupper(c) && (islower(prev) || isdigit(prev) ||
		    (isupper(prev) && islower(next)))) {
			if (o + 2 >= len)
				break;
			buf[o++] = '_';
		}
		buf[o++] = (char)(upper ? toupper(c) : tolower(c));
	}
	buf[o] = '\0';
	return buf;
}

const char *
pbjson_snake_name(const char *camel, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	return s_snake(camel, 0, buf, len);
}

/* The JSON name of one enum value; NULL if buf is too small. */
static const char *
s_value_json_name(const ProtobufCEnumDescriptor *d, const ProtobufCEnumValue *v,
    char *buf, size_t len)
{
	char prefix[PBJSON_ENUM_NAME_MAX];
	const char *s = v->name;
	size_t plen, i;

	s_snake(d->short_name, 1, prefix, sizeof(prefix) - 1);
	plen = strlen(prefix);
	prefix[plen++] = '_';
	prefix[plen] = '\0';
	if (strncmp(s, prefix, plen) == 0 && s[plen] != '\0')
		s += plen;
	if (strlen(s) + 1 > len)
		return NULL;
	for (i = 0; s[i] != '\0'; i++)
		buf[i] = (char)tolower((unsigned char)s[i]);
	buf[i] = '\0';
	return buf;
}

const char *
pbjson_enum_name(const ProtobufCEnumDescriptor *d, int value, char *buf,
    size_t len)
{
	const ProtobufCEnumValue *v;

	v = protobuf_c_enum_descriptor_get_value(d, value);
	if (v == NULL)
		return NULL;
	return s_value_json_name(d, v, buf, len);
}

/* *_UNSPECIFIED is never valid input (events.proto header). */
static bool
s_unspecified(const ProtobufCEnumValue *v)
{
	static const char suffix[] = "UNSPECIFIED";
	size_t n = strlen(v->name), k = sizeof(suffix) - 1;

	return n >= k && strcmp(v->name + n - k, suffix) == 0;
}

int
pbjson_enum_value(const ProtobufCEnumDescriptor *d, const char *name, int *out)
{
	char buf[PBJSON_ENUM_NAME_MAX];
	unsigned i;

	for (i = 0; i < d->n_values; i++) {
		if (s_unspecified(&d->values[i]))
			continue;
		if (s_value_json_name(d, &d->values[i], buf, sizeof(buf)) ==
		    NULL || strcmp(buf, name) != 0)
			continue;
		*out = d->values[i].value;
		return 0;
	}
	return -1;
}

/* "a, b, c" of the accepted names into buf; "" if it does not fit. */
static void
s_enum_allowed(const ProtobufCEnumDescriptor *d, char *buf, size_t len)
{
	char name[PBJSON_ENUM_NAME_MAX];
	size_t o = 0;
	unsigned i;
	int n;

	buf[0] = '\0';
	for (i = 0; i < d->n_values; i++) {
		if (s_unspecified(&d->values[i]) ||
		    s_value_json_name(d, &d->values[i], name, sizeof(name)) == NULL)
			continue;
		n = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", name);
		if (n < 0 || (size_t)n >= len - o) {
			buf[0] = '\0';
			return;
		}
		o += (size_t)n;
	}
}

/* ---- presence --------------------------------------------------------- */

static bool
s_proto3_set(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const void *p = (const char *)msg + f->offset;

	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return *(const char *const *)p != NULL &&
		    **(const char *const *)p != '\0';
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len != 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(const void *const *)p != NULL;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return *(const uint64_t *)p != 0;
	default:
		return *(const uint32_t *)p != 0;
	}
}

bool
pbjson_field_present(const ProtobufCMessage *msg,
    const ProtobufCFieldDescriptor *f)
{
	const void *ptr;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return S_CMEMBER(uint32_t, msg, f->quantifier_offset) == f->id;
	switch (f->label) {
	case PROTOBUF_C_LABEL_REQUIRED:
		return true;
	case PROTOBUF_C_LABEL_REPEATED:
		return S_CMEMBER(size_t, msg, f->quantifier_offset) != 0;
	case PROTOBUF_C_LABEL_NONE:
		return s_proto3_set(msg, f);
	default:
		break;
	}
	if (f->type == PROTOBUF_C_TYPE_STRING ||
	    f->type == PROTOBUF_C_TYPE_MESSAGE) {
		ptr = S_CMEMBER(void *, msg, f->offset);
		return ptr != NULL && ptr != f->default_value;
	}
	return S_CMEMBER(protobuf_c_boolean, msg, f->quantifier_offset) != 0;
}

/* ---- JSON -> message: scalars ----------------------------------------- */

static size_t
s_elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 4;
	}
}

static int
s_type_error(struct s_ctx *c, const char *label, const char *what)
{
	return kp_fail(c->err, KP_ERR_INVALID_ARG, "%s: field '%s' must be %s",
	    c->root, label, what);
}

static int
s_range_error(struct s_ctx *c, const char *label, long long lo,
    unsigned long long hi)
{
	return kp_fail(c->err, KP_ERR_INVALID_ARG,
	    "%s: field '%s' out of range (%lld..%llu)", c->root, label, lo, hi);
}

/* A uint64 above INT64_MAX arrives as a decimal string (see pbjson.h). */
static int
s_u64_string(struct s_ctx *c, const char *label, const json_t *v,
    uint64_t *out)
{
	const char *s = json_string_value(v);
	unsigned long long u;
	char *end;
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isdigit((unsigned char)s[i]))
			return s_type_error(c, label, "an integer");
	if (i == 0 || i != json_string_length(v))
		return s_type_error(c, label, "an integer");
	errno = 0;
	u = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return s_range_error(c, label, 0, UINT64_MAX);
	*out = u;
	return 0;
}

static int
s_uint(struct s_ctx *c, const char *label, const json_t *v, uint64_t max,
    uint64_t *out)
{
	json_int_t i;

	if (max == UINT64_MAX && json_is_string(v))
		return s_u64_string(c, label, v, out);
	if (!json_is_integer(v))
		return s_type_error(c, label, "an integer");
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > max)
		return s_range_error(c, label, 0, max);
	*out = (uint64_t)i;
	return 0;
}

static int
s_int(struct s_ctx *c, const char *label, const json_t *v, int64_t min,
    int64_t max, int64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return s_type_error(c, label, "an integer");
	i = json_integer_value(v);
	if (i < min || i > max) {
		return kp_fail(c->err, KP_ERR_INVALID_ARG,
		    "%s: field '%s' out of range (%" PRId64 "..%" PRId64 ")",
		    c->root, label, min, max);
	}
	*out = i;
	return 0;
}

/* Integer field types into dst (4 or 8 bytes); 1 if t is not an integer. */
static int
s_integer(struct s_ctx *c, const char *label, ProtobufCType t,
    const json_t *v, void *dst)
{
	uint64_t u;
	int64_t i;

	switch (t) {
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		if (s_uint(c, label, v, UINT32_MAX, &u) == -1)
			return -1;
		*(uint32_t *)dst = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		if (s_uint(c, label, v, UINT64_MAX, &u) == -1)
			return -1;
		*(uint64_t *)dst = u;
		return 0;
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (s_int(c, label, v, INT32_MIN, INT32_MAX, &i) == -1)
			return -1;
		*(int32_t *)dst = (int32_t)i;
		return 0;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (s_int(c, label, v, INT64_MIN, INT64_MAX, &i) == -1)
			return -1;
		*(int64_t *)dst = i;
		return 0;
	default:
		return 1;
	}
}

static int
s_float(struct s_ctx *c, const char *label, ProtobufCType t, const json_t *v,
    void *dst)
{
	double d;

	if (!json_is_number(v))
		return s_type_error(c, label, "a number");
	d = json_number_value(v);
	if (t == PROTOBUF_C_TYPE_DOUBLE) {
		*(double *)dst = d;
		return 0;
	}
	if (d > FLT_MAX || d < -FLT_MAX) {
		return kp_fail(c->err, KP_ERR_INVALID_ARG,
		    "%s: field '%s' out of range for a float", c->root, label);
	}
	*(float *)dst = (float)d;
	return 0;
}

static int
s_enum(struct s_ctx *c, const char *label, const ProtobufCEnumDescriptor *d,
    const json_t *v, void *dst)
{
	char allowed[200];
	int value;

	if (!json_is_string(v))
		return s_type_error(c, label, "a string (enum name)");
	if (pbjson_enum_value(d, json_string_value(v), &value) == 0) {
		*(int32_t *)dst = value;
		return 0;
	}
	s_enum_allowed(d, allowed, sizeof(allowed));
	if (allowed[0] == '\0') {
		return kp_fail(c->err, KP_ERR_INVALID_ARG,
		    "%s: field '%s': '%.60s' is not a %s", c->root, label,
		    json_string_value(v), d->short_name);
	}
	return kp_fail(c->err, KP_ERR_INVALID_ARG,
	    "%s: field '%s': '%.60s' is not a %s (one of: %s)", c->root, label,
	    json_string_value(v), d->short_name, allowed);
}

static int
s_string(struct s_ctx *c, const char *label, const json_t *v, char **dst)
{
	if (!json_is_string(v))
		return s_type_error(c, label, "a string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return s_type_error(c, label, "a string without NUL");
	if ((*dst = strdup(json_string_value(v))) == NULL)
		return kp_fail(c->err, KP_ERR_NOMEM, "%s: out of memory", c->root);
	return 0;
}

static int
s_bytes(struct s_ctx *c, const char *label, const json_t *v,
    ProtobufCBinaryData *dst)
{
	const char *s;
	size_t i, n;

	if (!json_is_string(v))
		return s_type_error(c, label, "a lowercase hex string");
	s = json_string_value(v);
	n = json_string_length(v);
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && (s[i] < 'a' || s[i] > 'f'))
			return s_type_error(c, label, "a lowercase hex string");
	if (n % 2 != 0)
		return s_type_error(c, label, "a lowercase hex string");
	dst->len = 0;
	if ((dst->data = malloc(n / 2 + 1)) == NULL)
		return kp_fail(c->err, KP_ERR_NOMEM, "%s: out of memory", c->root);
	if (kp_unhex(s, dst->data, n / 2) == -1)
		return s_type_error(c, label, "a lowercase hex string");
	dst->len = n / 2;
	return 0;
}

/* ---- JSON -> message: fields and messages ----------------------------- */

static int s_fill(struct s_ctx *c, const char *prefix,
    const ProtobufCMessageDescriptor *desc, const json_t *obj,
    ProtobufCMessage *msg);

/* Field paths for error lines; one cut short only shortens the line. */
static void __attribute__((format(printf, 3, 4)))
s_label(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(buf, len, fmt, ap) < 0)
		buf[0] = '\0';
	va_end(ap);
}

static ProtobufCMessage *
s_new_message(const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m;

	if ((m = malloc(desc->sizeof_message)) == NULL)
		return NULL;
	protobuf_c_message_init(desc, m);
	return m;
}

static int
s_submessage(struct s_ctx *c, const char *label,
    const ProtobufCMessageDescriptor *desc, const json_t *v,
    ProtobufCMessage **dst)
{
	char prefix[S_LABEL_MAX];

	if (!json_is_object(v))
		return s_type_error(c, label, "an object");
	if ((*dst = s_new_message(desc)) == NULL)
		return kp_fail(c->err, KP_ERR_NOMEM, "%s: out of memory", c->root);
	s_label(prefix, sizeof(prefix), "%s.", label);
	return s_fill(c, prefix, desc, v, *dst);
}

/* One value of field f (singular, or one array element) into dst. */
static int
s_value(struct s_ctx *c, const char *label, const ProtobufCFieldDescriptor *f,
    const json_t *v, void *dst)
{
	int rc;

	if (json_is_null(v)) {
		return kp_fail(c->err, KP_ERR_INVALID_ARG,
		    "%s: field '%s' is null", c->root, label);
	}
	if ((rc = s_integer(c, label, f->type, v, dst)) != 1)
		return rc;
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return s_type_error(c, label, "true or false");
		*(protobuf_c_boolean *)dst = json_is_true(v);
		return 0;
	case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_DOUBLE:
		return s_float(c, label, f->type, v, dst);
	case PROTOBUF_C_TYPE_ENUM:
		return s_enum(c, label, f->descriptor, v, dst);
	case PROTOBUF_C_TYPE_STRING:
		return s_string(c, label, v, dst);
	case PROTOBUF_C_TYPE_BYTES:
		return s_bytes(c, label, v, dst);
	case PROTOBUF_C_TYPE_MESSAGE:
		return s_submessage(c, label, f->descriptor, v, dst);
	default:
		return kp_fail(c->err, KP_ERR_INVALID_ARG,
		    "%s: field '%s' has an unsupported type", c->root, label);
	}
}

static int
s_repeated(struct s_ctx *c, const char *label, ProtobufCMessage *msg,
    const ProtobufCFieldDescriptor *f, const json_t *arr)
{
	char elabel[S_LABEL_MAX];
	size_t i, n, size = s_elem_size(f->type);
	char *a;

	if (!json_is_array(arr))
		return s_type_error(c, label, "an array");
	if ((n = json_array_size(arr)) == 0)
		return 0;
	if ((a = calloc(n, size)) == NULL)
		return kp_fail(c->err, KP_ERR_NOMEM, "%s: out of memory", c->root);
	/* Count and array first: free_unpacked copes with NULL elements. */
	S_MEMBER(void *, msg, f->offset) = a;
	S_MEMBER(size_t, msg, f->quantifier_offset) = n;
	for (i = 0; i < n; i++) {
		s_label(elabel, sizeof(elabel), "%s[%zu]", label, i);
		if (s_value(c, elabel, f, json_array_get(arr, i),
		    a + i * size) == -1)
			return -1;
	}
	return 0;
}

/* Mark f present (has_ flag or oneof case) before its value is stored. */
static int
s_claim(struct s_ctx *c, const char *label, ProtobufCMessage *msg,
    const ProtobufCFieldDescriptor *f)
{
	const ProtobufCFieldDescriptor *other;
	uint32_t *oneof_case;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		oneof_case = &S_MEMBER(uint32_t, msg, f->quantifier_offset);
		if (*oneof_case != 0 && *oneof_case != f->id) {
			other = protobuf_c_message_descriptor_get_field(
			    msg->descriptor, *oneof_case);
			return kp_fail(c->err, KP_ERR_INVALID_ARG,
			    "%s: field '%s' excludes '%s' (oneof)", c->root,
			    label, other != NULL ? other->name : "?");
		}
		*oneof_case = f->id;
	} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    f->type != PROTOBUF_C_TYPE_STRING &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE) {
		S_MEMBER(protobuf_c_boolean, msg, f->quantifier_offset) = 1;
	}
	return 0;
}

static int
s_field(struct s_ctx *c, const char *label, ProtobufCMessage *msg,
    const ProtobufCFieldDescriptor *f, const json_t *v)
{
	if (json_is_null(v)) {
		return kp_fail(c->err, KP_ERR_INVALID_ARG,
		    "%s: field '%s' is null", c->root, label);
	}
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return s_repeated(c, label, msg, f, v);
	if (s_claim(c, label, msg, f) == -1)
		return -1;
	return s_value(c, label, f, v, (char *)msg + f->offset);
}

static int
s_fill(struct s_ctx *c, const char *prefix,
    const ProtobufCMessageDescriptor *desc, const json_t *obj,
    ProtobufCMessage *msg)
{
	const ProtobufCFieldDescriptor *f;
	char label[S_LABEL_MAX];
	const char *key;
	json_t *v;
	unsigned i;

	json_object_foreach((json_t *)obj, key, v) {
		s_label(label, sizeof(label), "%s%s", prefix, key);
		f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
		if (f == NULL) {
			return kp_fail(c->err, KP_ERR_INVALID_ARG,
			    "%s: unknown field '%.80s'", c->root, label);
		}
		if (s_field(c, label, msg, f, v) == -1)
			return -1;
	}
	for (i = 0; i < desc->n_fields; i++) {
		f = &desc->fields[i];
		if (f->label == PROTOBUF_C_LABEL_REQUIRED &&
		    json_object_get(obj, f->name) == NULL) {
			return kp_fail(c->err, KP_ERR_INVALID_ARG,
			    "%s: missing required field '%s%s'", c->root,
			    prefix, f->name);
		}
	}
	return 0;
}

int
pbjson_from_json(const ProtobufCMessageDescriptor *desc, const json_t *obj,
    ProtobufCMessage **out, kp_err_t *err)
{
	char root[64];
	struct s_ctx c = { root, err };
	ProtobufCMessage *msg = NULL;
	int rc = -1;

	*out = NULL;
	pbjson_snake_name(desc->short_name, root, sizeof(root));
	if (obj == NULL || !json_is_object(obj)) {
		kp_fail(err, KP_ERR_INVALID_ARG, "%s: expected a JSON object",
		    root);
		goto out;
	}
	if ((msg = s_new_message(desc)) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "%s: out of memory", root);
		goto out;
	}
	if (s_fill(&c, "", desc, obj, msg) == -1)
		goto out;
	*out = msg;
	msg = NULL;
	rc = 0;
out:
	pbjson_free(msg);
	return rc;
}

void
pbjson_free(ProtobufCMessage *msg)
{
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, NULL);
}

/* ---- message -> JSON -------------------------------------------------- */

static json_t *
s_enum_to_json(const ProtobufCEnumDescriptor *d, int value)
{
	char name[PBJSON_ENUM_NAME_MAX];

	if (pbjson_enum_name(d, value, name, sizeof(name)) == NULL)
		return json_integer(value);
	return json_string(name);
}

static json_t *
s_bytes_to_json(const ProtobufCBinaryData *b)
{
	json_t *j;
	char *hex;

	if (b->len > (SIZE_MAX - 1) / 2 || (hex = malloc(2 * b->len + 1)) == NULL)
		return NULL;
	kp_hex(b->data, b->len, hex);
	j = json_string(hex);
	free(hex);
	return j;
}

static json_t *
s_u64_to_json(uint64_t u)
{
	char buf[24];

	if (u <= INT64_MAX)
		return json_integer((json_int_t)u);
	snprintf(buf, sizeof(buf), "%" PRIu64, u);
	return json_string(buf);
}

static json_t *
s_value_to_json(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_integer(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		return s_u64_to_json(*(const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return json_real(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_real(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM:
		return s_enum_to_json(f->descriptor, *(const int32_t *)p);
	case PROTOBUF_C_TYPE_STRING:
		return json_string(*(const char *const *)p);
	case PROTOBUF_C_TYPE_BYTES:
		return s_bytes_to_json(p);
	case PROTOBUF_C_TYPE_MESSAGE:
		return pbjson_to_json(*(const ProtobufCMessage *const *)p);
	default:
		return NULL;
	}
}

static json_t *
s_field_to_json(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const char *a;
	json_t *arr = NULL, *v;
	size_t i, n, size = s_elem_size(f->type);

	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return s_value_to_json(f, (const char *)msg + f->offset);
	n = S_CMEMBER(size_t, msg, f->quantifier_offset);
	a = S_CMEMBER(char *, msg, f->offset);
	if ((arr = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if ((v = s_value_to_json(f, a + i * size)) == NULL ||
		    json_array_append_new(arr, v) == -1) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *
pbjson_to_json(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	const ProtobufCFieldDescriptor *f;
	json_t *obj, *v;
	unsigned i;

	if ((obj = json_object()) == NULL)
		return NULL;
	for (i = 0; i < desc->n_fields; i++) {
		f = &desc->fields[i];
		if (!pbjson_field_present(msg, f))
			continue;
		if ((v = s_field_to_json(msg, f)) == NULL ||
		    json_object_set_new(obj, f->name, v) == -1) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}
