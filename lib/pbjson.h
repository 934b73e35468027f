/*
 * pbjson.h: protobuf-c messages <-> JSON (jansson), driven only by the
 * message and enum descriptors; there is no per-type code.
 *
 * The JSON form (design.md "JSON field names are the proto field names"):
 *   - an object whose member names are exactly the proto field names;
 *   - enums are the lowercase value name without the enum's prefix: enum
 *     Route value ROUTE_HALT is "halt", OmDecisionKind value
 *     OM_DECISION_KIND_SEPOT is "sepot".  The prefix is the enum's short
 *     name turned from CamelCase into UPPER_SNAKE plus "_".  The
 *     *_UNSPECIFIED value (0) is never accepted on input;
 *   - repeated fields are arrays, nested messages are objects;
 *   - bool is true/false; integer fields are JSON integers, range checked
 *     (a uint64 above INT64_MAX, which a jansson integer cannot hold, is
 *     written as a decimal string and read back from one);
 *   - bytes are lowercase hex strings; strings are JSON strings without NUL.
 *   - float/double are JSON numbers (finite only).
 * Only present fields are written (has_ set, non-NULL, n > 0, the selected
 * oneof member, or non-zero for proto3 fields).
 */
#ifndef KP_PBJSON_H
#define KP_PBJSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "kperr.h"

/* Longest JSON enum name (buffer size for pbjson_enum_name). */
#define PBJSON_ENUM_NAME_MAX 96

/*
 * Build a message of type desc from the JSON object obj.
 * OUT: *out, owned by the caller, freed with pbjson_free() (which is
 * protobuf_c_message_free_unpacked(msg, NULL): the message is built with
 * malloc in exactly the layout protobuf_c_message_unpack() produces).
 * Every refusal is KP_ERR_INVALID_ARG with one line naming the message and
 * field ("referral: unknown field 'naam'"); allocation failure is
 * KP_ERR_NOMEM.  On -1 *out is NULL.  obj is not modified.
 */
int pbjson_from_json(const ProtobufCMessageDescriptor *desc, const json_t *obj,
    ProtobufCMessage **out, kp_err_t *err)
    __attribute__((warn_unused_result, nonnull(1, 3)));

/* Free a message from pbjson_from_json (or protobuf_c_message_unpack). NULL ok. */
void pbjson_free(ProtobufCMessage *msg);

/*
 * The JSON form of msg (a new reference, owned by the caller), or NULL on
 * allocation failure, a string that is not valid UTF-8 or a non-finite
 * float.  Enum values outside the enumeration are written as integers.
 */
json_t *pbjson_to_json(const ProtobufCMessage *msg)
    __attribute__((nonnull(1)));

/*
 * The JSON name of enum value `value` ("halt") into buf; returns buf, or
 * NULL if the value is not in the enumeration or buf is too small.
 * *_UNSPECIFIED yields "unspecified" (for display; it is never accepted).
 */
const char *pbjson_enum_name(const ProtobufCEnumDescriptor *d, int value,
    char *buf, size_t len) __attribute__((nonnull(1, 3)));

/*
 * The value of JSON enum name `name` ("halt" -> ROUTE_HALT).  0 / -1; -1
 * for a name not in the enumeration (exact, lowercase) and for a value
 * named *_UNSPECIFIED (a 0 with another name, such as envelope.proto's
 * REASON_NONE, is accepted).  OUT: *out.
 */
int pbjson_enum_value(const ProtobufCEnumDescriptor *d, const char *name,
    int *out) __attribute__((nonnull(1, 2, 3)));

/*
 * True if field f of msg is present in the sense above (what pack would
 * write).  Shared with events.c (audit field names, enum checks).
 */
bool pbjson_field_present(const ProtobufCMessage *msg,
    const ProtobufCFieldDescriptor *f) __attribute__((nonnull(1, 2)));

/* "HaltOutcome" -> "halt_outcome" into buf (truncated to len); returns buf. */
const char *pbjson_snake_name(const char *camel, char *buf, size_t len)
    __attribute__((nonnull(1, 2)));

#endif
