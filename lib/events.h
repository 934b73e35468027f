/*
 * events.h: the table of the five case event types (proto/events.proto)
 * and the strict unpacking of a decrypted event payload.
 *
 * Event types are Kp__EventType values (KP__EVENT_TYPE__EVENT_TYPE_REFERRAL
 * ...); their text names are "referral", "halt_outcome", "rvdk_advice",
 * "om_decision" and "jbt_request" (design.md, `ketenpost send TYPE`).
 */
#ifndef KP_EVENTS_H
#define KP_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "events.pb-c.h"
#include "kperr.h"

/* The message descriptor of event_type, or NULL if it is not an event type. */
const ProtobufCMessageDescriptor *events_descriptor(int event_type);

/* "referral" -> KP__EVENT_TYPE__EVENT_TYPE_REFERRAL; 0 for anything else. */
int events_type_from_name(const char *name);

/* KP__EVENT_TYPE__EVENT_TYPE_REFERRAL -> "referral"; "unknown" otherwise. */
const char *events_type_name(int event_type);

/*
 * Unpack the payload buf[0..len) as an event of event_type and check it:
 * it must parse completely (no trailing garbage), carry no unknown field,
 * and every enum value present must be in its enumeration and not 0
 * (*_UNSPECIFIED).  Sub-messages, if a schema ever has them, are checked
 * the same way.
 * OUT: *out, owned by the caller, freed with
 * protobuf_c_message_free_unpacked(*out, NULL) (or pbjson_free).
 * 0 / -1: KP_ERR_MALFORMED_PAYLOAD for a payload that fails any check,
 * KP_ERR_INVALID_ARG for an unknown event_type; *out is NULL on -1.
 * Empty payloads are accepted here (an event with no fields); whether the
 * fields are enough is policy's business.
 */
int events_unpack(int event_type, const uint8_t *buf, size_t len,
    ProtobufCMessage **out, kp_err_t *err)
    __attribute__((warn_unused_result, nonnull(4)));

/*
 * The payload buf[0..len) of an event of event_type encoded again as a
 * sender wrote it before the repeated enums were packed (PROTOCOL.md
 * §10): the same values, each repeated enum value as its own tagged
 * field.  protobuf-c writes deterministically, so for a payload made from
 * the same event this is byte for byte what the old schema wrote; the
 * daemon needs it to recognise a retry, after an upgrade, of a send made
 * before it (an idempotency key's hash covers the payload's bytes).
 * OUT: *out (malloc'd, the caller frees it), *out_len.  0 / -1 (the
 * payload does not pass events_unpack, or out of memory).
 */
int events_pack_unpacked(int event_type, const uint8_t *buf, size_t len,
    uint8_t **out, size_t *out_len, kp_err_t *err)
    __attribute__((warn_unused_result, nonnull(4, 5)));

/*
 * The names of the fields present in msg, comma separated without spaces,
 * in descriptor (field number) order, into out ("route,age_years"; "" for
 * none).  Present means has_ set, or n > 0 for a repeated field.  This is
 * the audit log's "names of the fields shared".  0 / -1; -1 if out is too
 * small (out is then "").
 */
int events_field_names(const ProtobufCMessage *msg, char *out, size_t outlen)
    __attribute__((warn_unused_result, nonnull(1, 2)));

#endif
