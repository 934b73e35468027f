/*
 * policy.h: the chain policy, the machine-readable chain agreement.
 *
 * One INI file (policy/mas.ini is the MAS chain's) states per event type:
 * who may send it to whom, for which purpose and on which legal basis,
 * which fields must and which may be present (everything else is
 * forbidden), value ranges, how long payloads are kept, and which answer
 * the sender expects from each recipient role and within what lead time.
 * The BLAKE2b-256 hash of the file's exact bytes travels in every envelope
 * header, so two daemons applying different agreements notice at once.
 *
 * File format (docs/POLICY.md has the full reference):
 *
 *   [chain]
 *   name = MAS school-absence chain (example agreement)
 *   version = 2026-11
 *   metadata_retention = 1825d          ; metadata rows keep the case
 *
 *   [referral]                          ; one section per event type
 *   purpose = mas.route_referral        ; processing-activity id
 *   legal_basis = EXAMPLE-lpw-art-22    ; short legal reference
 *   senders = leerplicht                ; roles allowed to send
 *   recipients = halt, rvdk, om         ; roles allowed to receive
 *   required = route, referral_kind, age_years   ; "at least"
 *   allowed = absence_hours, late_count          ; "at most", in addition
 *   never_to.leerplicht = indications   ; fields never sent to a role
 *   only_to.consent_halt = halt         ; the only roles a field goes to
 *   range.age_years = 12..18            ; inclusive integer range
 *   date.completed_on = yes             ; YYYYMMDD that exists
 *   max_items.parallel_routes = 4       ; repeated field length cap
 *   retention = 365d                    ; payload kept this long
 *   expects.halt = halt_outcome 90d     ; answer type and lead time
 *   lead_field = feedback_due_days      ; the sender's own lead (days)
 *   lead_bounds.halt = 28d..120d        ; ... within these for halt
 *
 * policy_t owns everything it returns; rules are borrowed pointers valid
 * until policy_destroy.
 */
#ifndef KP_POLICY_H
#define KP_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "kperr.h"

typedef struct policy policy_t;
typedef struct policy_rule policy_rule_t;

/*
 * Read and validate the policy file.  Every problem is passed to
 * report(arg, "FILE:LINE: message") (report may be NULL) and counted in
 * *n_problems: unknown sections (not an event type or "chain"), unknown
 * keys, unknown roles, field names that the event's schema does not have,
 * a field both required and allowed, bad durations/ranges, an `expects`
 * naming an unknown event type or a role that is not a recipient, missing
 * purpose/legal_basis/senders/recipients/retention.  0 if valid, else -1
 * (err = first problem, KP_ERR_POLICY; KP_ERR_IO if unreadable).
 */
int policy_load(const char *path, policy_t **out,
    void (*report)(void *arg, const char *line), void *arg, int *n_problems,
    kp_err_t *err) __attribute__((warn_unused_result));
void policy_destroy(policy_t **self_p);

/* BLAKE2b-256 of the file's bytes (32 bytes). */
const uint8_t *policy_hash(const policy_t *self);
/* [chain] metadata_retention: after this long (from an event's creation
 * or receipt, and not before its payload is destroyed) its stored metadata
 * is reduced to what the audit needs; 0 if the policy sets none. */
uint64_t policy_metadata_retention_ms(const policy_t *self);
/* The file it was read from. */
const char *policy_path(const policy_t *self);

/* The rule of an event type (Kp__EventType), NULL if the policy has none
 * (then that type may not be exchanged at all). */
const policy_rule_t *policy_rule(const policy_t *self, int event_type);
const char *policy_rule_purpose(const policy_rule_t *r);
const char *policy_rule_legal_basis(const policy_rule_t *r);
uint64_t policy_rule_retention_ms(const policy_rule_t *r);
/* The answer expected when sending to recipient_role: 0 and OUT
 * answer_type, lead_ms; -1 if none is expected. */
int policy_rule_expects(const policy_rule_t *r, int recipient_role,
    int *answer_type, uint64_t *lead_ms);

/*
 * Like policy_rule_expects, but the lead time is the sender's own when
 * the rule has a lead_field, `ev` (a message of the rule's type, or NULL)
 * carries it and it lies within lead_bounds.ROLE (policy_check refuses an
 * event where it does not).
 */
int policy_rule_lead(const policy_rule_t *r, int recipient_role,
    const ProtobufCMessage *ev, int *answer_type, uint64_t *lead_ms);

/*
 * Is the answer `ev` (a message of the rule's type) an interim one — a
 * phase such as the JBT's "scheduled" — by interim.FIELD = VALUE?  Then
 * the final answer is due within *lead_ms (interim_lead) after it.
 */
bool policy_rule_interim(const policy_rule_t *r, const ProtobufCMessage *ev,
    uint64_t *lead_ms);
/* The field named by `outcome` (the route's outcome), or NULL: then the
 * first enum field present is the outcome. */
const char *policy_rule_outcome_field(const policy_rule_t *r);
/* The escalation step of the reminder rule (MAS opschaling): due after
 * *after_reminders reminders for one answer, or once it is *after_ms
 * overdue; 0 for either: that trigger is off (keys escalate_after_reminders
 * and escalate_after of [reminder], docs/POLICY.md). */
void policy_escalation(const policy_t *self, uint32_t *after_reminders,
    uint64_t *after_ms);

/*
 * Check one event against the policy: a rule exists for event_type; the
 * sender role and the recipient role are allowed; every required field is
 * present; every present field is required or allowed, not never_to the
 * recipient role and, with only_to, one of its roles; every enum value is
 * in its enumeration (never 0);
 * ranges, dates and max_items hold.  On the first violation: -1 with
 * KP_ERR_POLICY and one line naming the event type, the rule and the
 * field, e.g.
 *   "referral: rule 'at most': field 'pv_subject' is not allowed"
 *   "referral: rule 'senders': role halt may not send referral (allowed: leerplicht)"
 *   "referral: rule 'at least': required field 'age_years' is missing"
 *   "referral: rule 'range': field 'age_years' is 25, outside 12..18"
 *   "jbt_request: rule 'never to leerplicht': field 'indications' may not be sent to leerplicht"
 *   "referral: rule 'lead time': field 'feedback_due_days' is 200 days, outside 28..120 days for halt"
 * `event` must be a message of events_descriptor(event_type).
 */
int policy_check(const policy_t *self, int event_type, int sender_role,
    int recipient_role, const ProtobufCMessage *event, kp_err_t *err)
    __attribute__((warn_unused_result));

/*
 * policy_check of an event that events_unpack made (and so checked: every
 * enum value, nested ones too, is a value of its enum other than 0; one
 * that is not is refused there, as malformed, before any policy rule):
 * the rule 'enumeration' holds already and its values are not read a
 * second time.  Every other rule, and every refusal, as policy_check.
 */
int policy_check_unpacked(const policy_t *self, int event_type,
    int sender_role, int recipient_role, const ProtobufCMessage *event,
    kp_err_t *err) __attribute__((warn_unused_result));

/* The rule of a policy refusal message (KP_ERR_POLICY), without any
 * value: "RULE" or "RULE:FIELD" into out (e.g. "range:age_years"); ""
 * if the message names none.  For audit entries. */
void policy_refusal_rule(const char *msg, char *out, size_t len);

/*
 * The message of a refused event (policy_check, events_unpack) as a log
 * may hold it: event type, rule and field name, never the field's value
 *   "referral: rule 'range': field 'age_years' (value not logged)"
 * (the client that sent it still gets the whole message).  OUT: out.
 */
void policy_log_text(const char *msg, char *out, size_t len);

#endif
