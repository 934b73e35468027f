/*
 * apijson.c: the JSON form of local API messages (apijson.h).  Moved here
 * from the client so that the REST API prints exactly what `ketenpost
 * --json` prints; it must never grow daemon or client knowledge (no
 * sockets, no store, no printing).
 */
#include <stdint.h>
#include <string.h>

#include "api.pb-c.h"
#include "apijson.h"
#include "events.h"
#include "kperr.h"
#include "pbjson.h"
#include "util.h"

/* 9999-12-31T23:59:59.999Z: the last moment ISO 8601 text is written for */
#define S_TIME_MAX_MS UINT64_C(253402300799999)

static bool
s_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

json_t *
apijson_uuid(json_t *hex)
{
	const char *h = json_string_value(hex);
	uint8_t id[16];
	char text[KP_UUID_TEXT_LEN + 1];

	if (h == NULL || strlen(h) != 32 || kp_unhex(h, id, 16) != 0)
		return json_incref(hex);
	kp_uuid_format(id, text);
	return json_string(text);
}

void
apijson_add_time(json_t *o, const char *key, const json_t *ms)
{
	char name[64], t[32];
	json_int_t v = json_integer_value(ms);

	if (!json_is_integer(ms) || v < 0 || (uint64_t)v > S_TIME_MAX_MS ||
	    strlen(key) >= sizeof(name))
		return;
	snprintf(name, sizeof(name), "%.*s", (int)strlen(key) - 3, key);
	kp_time_format((uint64_t)v, t);
	json_object_set_new(o, name, json_string(t));
}

json_t *
apijson_push(json_t *arr, json_t *item)
{
	if (arr == NULL || item == NULL || json_array_append_new(arr,
	    item) != 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

json_t *
apijson_msg(const ProtobufCMessage *msg)
{
	json_t *in = pbjson_to_json(msg), *out, *v;
	const char *k;

	if (in == NULL || (out = json_object()) == NULL) {
		json_decref(in);
		return NULL;
	}
	json_object_foreach(in, k, v) {
		if (strcmp(k, "event_id") == 0 || strcmp(k, "in_reply_to") == 0)
			json_object_set_new(out, k, apijson_uuid(v));
		else
			json_object_set(out, k, v);
		if (s_ends_with(k, "_at_ms") || s_ends_with(k, "_until_ms") ||
		    strcmp(k, "at_ms") == 0)
			apijson_add_time(out, k, v);
	}
	json_decref(in);
	return out;
}

/*
 * An inbox item's payload as the event's JSON object.  A payload that
 * does not unpack as its event type (which the daemon should never store)
 * becomes null plus "payload_error".
 */
static void
s_payload_json(json_t *o, const Kp__InboxItem *it)
{
	ProtobufCMessage *ev = NULL;
	kp_err_t e;

	if (!it->has_payload)
		return;
	if (events_unpack(it->event_type, it->payload.data, it->payload.len,
	    &ev, &e) != 0) {
		json_object_set_new(o, "payload", json_null());
		json_object_set_new(o, "payload_error", json_string(e.msg));
		return;
	}
	json_object_set_new(o, "payload", pbjson_to_json(ev));
	pbjson_free(ev);
}

/* Field f of m (a message field, present) in its JSON form. */
static json_t *
s_sub_json(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const char *p = (const char *)m + f->offset;
	ProtobufCMessage *const *subs;
	json_t *arr;
	size_t i, n;

	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return apijson_tree(*(ProtobufCMessage *const *)(const void *)p);
	n = *(const size_t *)(const void *)((const char *)m +
	    f->quantifier_offset);
	subs = *(ProtobufCMessage *const *const *)(const void *)p;
	arr = json_array();
	for (i = 0; i < n; i++)
		arr = apijson_push(arr, apijson_tree(subs[i]));
	return arr;
}

/* Event ids (one, or an array) as UUID text. */
static json_t *
s_ids_json(json_t *v)
{
	json_t *arr, *id;
	size_t i;

	if (!json_is_array(v))
		return apijson_uuid(v);
	arr = json_array();
	json_array_foreach(v, i, id)
		arr = apijson_push(arr, apijson_uuid(id));
	return arr;
}

json_t *
apijson_tree(const ProtobufCMessage *m)
{
	json_t *in = apijson_msg(m), *out = json_object(), *v;
	const ProtobufCFieldDescriptor *f;
	const char *k;

	if (in == NULL || out == NULL)
		goto fail;
	json_object_foreach(in, k, v) {
		f = protobuf_c_message_descriptor_get_field_by_name(
		    m->descriptor, k);
		if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE)
			v = s_sub_json(m, f);
		else if (strcmp(k, "answered_by") == 0 ||
		    strcmp(k, "event_ids") == 0)
			v = s_ids_json(v);
		else
			v = json_incref(v);
		if (v == NULL || json_object_set_new(out, k, v) != 0)
			goto fail;
		if (strcmp(k, "from_ms") == 0 || strcmp(k, "to_ms") == 0)
			apijson_add_time(out, k, v);
	}
	if (m->descriptor == &kp__inbox_item__descriptor)
		s_payload_json(out, (const Kp__InboxItem *)(const void *)m);
	json_decref(in);
	return out;
fail:
	json_decref(in);
	json_decref(out);
	return NULL;
}
