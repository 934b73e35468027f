/*
 * apijson.h: the JSON form of local API messages (proto/api.proto), one
 * for every user of it: the `ketenpost` client's --json output and the
 * daemon's REST API (daemon/rest.c) print the same thing.
 *
 * It is pbjson's form (proto field names, enum names, bytes as hex) with:
 * event ids (event_id, in_reply_to, answered_by, event_ids) as UUID text;
 * beside every *_at_ms, *_until_ms, at_ms, from_ms and to_ms integer its
 * ISO 8601 UTC text under the name without "_ms"; nested messages in the
 * same form; and an inbox item's payload as the event's own JSON object.
 * It knows no daemon and no socket.
 */
#ifndef KP_APIJSON_H
#define KP_APIJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* The top level of msg in the form above (nested messages as pbjson
 * has them).  New reference, or NULL on allocation failure. */
json_t *apijson_msg(const ProtobufCMessage *msg);
/* msg and every message inside it in the form above.  New reference or
 * NULL. */
json_t *apijson_tree(const ProtobufCMessage *msg);
/* A 16-byte id in pbjson's hex form as UUID text; anything else as is. */
json_t *apijson_uuid(json_t *hex);
/* Beside "x_ms" (an integer ms): "x", its ISO 8601 UTC text. */
void apijson_add_time(json_t *o, const char *key, const json_t *ms);
/* Append item (consumed) to arr; on NULL drop arr.  Returns arr or NULL. */
json_t *apijson_push(json_t *arr, json_t *item);

#endif
