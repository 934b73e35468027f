/*
 * events.c: the table of the five event types and the strict unpacking of
 * their payloads.
 *
 * This module owns the mapping between Kp__EventType values, their text
 * names and their message descriptors; nothing else in lib/ may keep its
 * own copy of it.  A payload is refused, never repaired: protobuf-c keeps
 * unknown fields and enum numbers it does not know, so events_unpack()
 * checks both itself after protobuf_c_message_unpack():
 *   1. the bytes must parse to the end (trailing garbage fails to parse or
 *      shows up as unknown fields);
 *   2. no unknown field, at any depth (a newer schema must bump the schema
 *      version rather than sneak fields past an older receiver);
 *   3. every enum value present is in its enumeration and is not 0.
 * It must never log payload content; error lines name only the event type,
 * field names and field numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "pbjson.h"

struct s_event {
	int type;                                 /* Kp__EventType value */
	const char *name;                         /* design.md TYPE name */
	const ProtobufCMessageDescriptor *desc;   /* payload message */
};

static const struct s_event s_events[] = {
	{ KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, "referral",
	    &kp__referral__descriptor },
	{ KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME, "halt_outcome",
	    &kp__halt_outcome__descriptor },
	{ KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE, "rvdk_advice",
	    &kp__rvdk_advice__descriptor },
	{ KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION, "om_decision",
	    &kp__om_decision__descriptor },
	{ KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST, "jbt_request",
	    &kp__jbt_request__descriptor },
	{ KP__EVENT_TYPE__EVENT_TYPE_REMINDER, "reminder",
	    &kp__reminder__descriptor },
	{ KP__EVENT_TYPE__EVENT_TYPE_CARE_NOTICE, "care_notice",
	    &kp__care_notice__descriptor },
};

#define S_NEVENTS (sizeof(s_events) / sizeof(s_events[0]))

static const struct s_event *
s_find(int event_type)
{
	size_t i;

	for (i = 0; i < S_NEVENTS; i++)
		if (s_events[i].type == event_type)
			return &s_events[i];
	return NULL;
}

const ProtobufCMessageDescriptor *
events_descriptor(int event_type)
{
	const struct s_event *e = s_find(event_type);

	return e != NULL ? e->desc : NULL;
}

int
events_type_from_name(const char *name)
{
	size_t i;

	if (name == NULL)
		return 0;
	for (i = 0; i < S_NEVENTS; i++)
		if (strcmp(s_events[i].name, name) == 0)
			return s_events[i].type;
	return 0;
}

const char *
events_type_name(int event_type)
{
	const struct s_event *e = s_find(event_type);

	return e != NULL ? e->name : "unknown";
}

static int s_check_message(const char *tname, const ProtobufCMessage *msg,
    kp_err_t *err);

/*
 * v is a value of enum ed.  An enum whose values form one run (all of
 * ours) is a range check; protobuf-c's lookup was 7% of a receiver's
 * worker on a list of enums.  value_ranges ends in a sentinel whose
 * orig_index is the number of values.
 */
static bool
s_enum_valid(const ProtobufCEnumDescriptor *ed, int32_t v)
{
	int64_t lo;

	if (ed->n_value_ranges == 1) {
		lo = ed->value_ranges[0].start_value;
		return v >= lo && v - lo < (int64_t)ed->value_ranges[1].orig_index;
	}
	return protobuf_c_enum_descriptor_get_value(ed, v) != NULL;
}

/*
 * How many of the n values v, from the first, are valid (not 0) in an
 * enum of one run: the loop over a repeated enum without a call per
 * element.  0 for another enum; s_check_enum checks the rest and words
 * the refusal.
 */
static size_t
s_enums_valid(const ProtobufCEnumDescriptor *ed, const int32_t *v, size_t n)
{
	int64_t lo, count;
	size_t i;

	if (ed->n_value_ranges != 1)
		return 0;
	lo = ed->value_ranges[0].start_value;
	count = ed->value_ranges[1].orig_index;
	for (i = 0; i < n; i++)
		if (v[i] == 0 || v[i] < lo || v[i] - lo >= count)
			break;
	return i;
}

/* One enum value (element idx of a repeated field, or -1). */
static int
s_check_enum(const char *tname, const ProtobufCFieldDescriptor *f, int32_t v,
    long idx, kp_err_t *err)
{
	char at[32] = "";

	if (v != 0 && s_enum_valid(f->descriptor, v))
		return 0;
	if (idx >= 0)
		snprintf(at, sizeof(at), "[%ld]", idx);
	return kp_fail(err, KP_ERR_MALFORMED_PAYLOAD,
	    "%s: field '%s%s' has value %d, not a valid %s", tname, f->name, at,
	    (int)v, ((const ProtobufCEnumDescriptor *)f->descriptor)->short_name);
}

/* Enum values and sub-messages of one present field. */
static int
s_check_field(const char *tname, const ProtobufCMessage *msg,
    const ProtobufCFieldDescriptor *f, kp_err_t *err)
{
	const char *p = (const char *)msg + f->offset;
	size_t i, n = 1;

	if (f->type != PROTOBUF_C_TYPE_ENUM && f->type != PROTOBUF_C_TYPE_MESSAGE)
		return 0;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		n = *(const size_t *)((const char *)msg + f->quantifier_offset);
		p = *(const char *const *)p;
	}
	i = f->type == PROTOBUF_C_TYPE_ENUM ?
	    s_enums_valid(f->descriptor, (const int32_t *)p, n) : 0;
	for (; i < n; i++) {
		if (f->type == PROTOBUF_C_TYPE_ENUM &&
		    s_check_enum(tname, f, ((const int32_t *)p)[i],
		    f->label == PROTOBUF_C_LABEL_REPEATED ? (long)i : -1,
		    err) == -1)
			return -1;
		if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
		    s_check_message(tname,
		    ((const ProtobufCMessage *const *)p)[i], err) == -1)
			return -1;
	}
	return 0;
}

static int
s_check_message(const char *tname, const ProtobufCMessage *msg,
    kp_err_t *err)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	unsigned i;

	if (msg->n_unknown_fields != 0) {
		return kp_fail(err, KP_ERR_MALFORMED_PAYLOAD,
		    "%s: unknown field number %u", tname,
		    (unsigned)msg->unknown_fields[0].tag);
	}
	for (i = 0; i < desc->n_fields; i++) {
		if (!pbjson_field_present(msg, &desc->fields[i]))
			continue;
		if (s_check_field(tname, msg, &desc->fields[i], err) == -1)
			return -1;
	}
	return 0;
}

int
events_unpack(int event_type, const uint8_t *buf, size_t len,
    ProtobufCMessage **out, kp_err_t *err)
{
	const struct s_event *e = s_find(event_type);
	ProtobufCMessage *msg = NULL;
	int rc = -1;

	*out = NULL;
	if (e == NULL) {
		kp_fail(err, KP_ERR_INVALID_ARG, "unknown event type %d",
		    event_type);
		goto out;
	}
	if (buf == NULL && len != 0) {
		kp_fail(err, KP_ERR_INVALID_ARG, "%s: no payload buffer",
		    e->name);
		goto out;
	}
	msg = protobuf_c_message_unpack(e->desc, NULL, len, buf);
	if (msg == NULL) {
		kp_fail(err, KP_ERR_MALFORMED_PAYLOAD,
		    "%s: payload is not a valid %s message (%zu bytes)",
		    e->name, e->desc->short_name, len);
		goto out;
	}
	if (s_check_message(e->name, msg, err) == -1)
		goto out;
	*out = msg;
	msg = NULL;
	rc = 0;
out:
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, NULL);
	return rc;
}

int
events_pack_unpacked(int event_type, const uint8_t *buf, size_t len,
    uint8_t **out, size_t *out_len, kp_err_t *err)
{
	const ProtobufCMessageDescriptor *desc;
	ProtobufCMessageDescriptor old;
	ProtobufCFieldDescriptor *fields = NULL;
	ProtobufCMessage *msg = NULL;
	unsigned i;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	if (events_unpack(event_type, buf, len, &msg, err) != 0)
		goto out;
	/* the same message under a copy of its descriptor without the
	 * packed flag: protobuf-c then writes a field per value */
	desc = msg->descriptor;
	old = *desc;
	fields = malloc((desc->n_fields ? desc->n_fields : 1) *
	    sizeof(*fields));
	if (fields == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < desc->n_fields; i++) {
		fields[i] = desc->fields[i];
		fields[i].flags &= ~(uint32_t)PROTOBUF_C_FIELD_FLAG_PACKED;
	}
	old.fields = fields;
	msg->descriptor = &old;
	*out_len = protobuf_c_message_get_packed_size(msg);
	if ((*out = malloc(*out_len + 1)) != NULL)
		protobuf_c_message_pack(msg, *out);
	msg->descriptor = desc;
	if (*out == NULL) {
		*out_len = 0;
		kp_fail(err, KP_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	free(fields);
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, NULL);
	return rc;
}

int
events_field_names(const ProtobufCMessage *msg, char *out, size_t outlen)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	size_t o = 0, n;
	unsigned i;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	for (i = 0; i < desc->n_fields; i++) {
		if (!pbjson_field_present(msg, &desc->fields[i]))
			continue;
		n = strlen(desc->fields[i].name);
		/* a comma before every name but the first, and the NUL */
		if ((o != 0) + n + 1 > outlen - o) {
			out[0] = '\0';
			return -1;
		}
		if (o != 0)
			out[o++] = ',';
		memcpy(out + o, desc->fields[i].name, n + 1);
		o += n;
	}
	return 0;
}
