/*
 * cases.c: systematic feedback for the referring organisation — every sent
 * event whose type has a feedback lead time in the chain policy opens an
 * expectation (what answer, from whom, due when: the policy's lead time,
 * or the event's own within the policy's bounds); the partner's answer
 * closes it, an interim one (a phase, by the policy) keeps it open with a
 * new due time; an expectation past its due time is overdue, logged once.
 *
 * Also what ties events to cases: a reply must name an event exchanged
 * with the same partner (checked on send and on receipt), a received
 * event can be filed under this organisation's own case reference
 * (link), and the officer's own record of the absence after the route
 * (outcome), which is local and never sent.
 *
 * Owns no state of its own: everything lives in the store, written in the
 * same transaction as the event or request that changes it.  Never logs a
 * case reference or a payload value.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "daemon.h"
#include "events.h"
#include "events.pb-c.h"
#include "log.h"
#include "webhook.h"
#include "pbjson.h"
#include "pseudonym.h"

int
cases_route_of(int type, const ProtobufCMessage *ev)
{
	if (type == KP__EVENT_TYPE__EVENT_TYPE_REFERRAL && ev != NULL &&
	    ((const Kp__Referral *)ev)->has_route)
		return ((const Kp__Referral *)ev)->route;
	if (type == KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST)
		return KP__ROUTE__ROUTE_DWANG_CIVIEL;  /* the civil route */
	return 0;
}

/* Is an event of `type` from a partner of `role` an answer to something
 * this organisation sends (policy: one of our sends expects it)? */
bool
cases_is_answer(kpd_t *d, int type, int role)
{
	int own = partner_role(identity_public(d->chain->self)), t, answer;
	const policy_rule_t *r;
	uint64_t lead;

	(void)own;
	for (t = 1; events_descriptor(t) != NULL; t++) {
		r = policy_rule(d->policy, t);
		if (r != NULL && policy_rule_expects(r, role, &answer, &lead) == 0 &&
		    answer == type && t != type)
			return true;
	}
	return false;
}

/*
 * Was event `id` exchanged with partner `oin` — sent to it, or received
 * from it?  OUT: *known, and the local case it is filed under (case_local,
 * may be NULL; "" if none).  An in_reply_to naming anything else (an
 * event of another partner, or none at all) would tie two partners'
 * business together or point nowhere.
 */
static int
s_exchanged(kpd_t *d, const char *oin, const uint8_t id[16], bool *known,
    char case_local[65], kp_err_t *err)
{
	outbox_row_t o;
	inbox_row_t in;
	bool found = false;

	*known = false;
	if (case_local != NULL)
		case_local[0] = '\0';
	if (store_outbox_get(d->store, id, &o, &found, err) != 0)
		return -1;
	if (found && strcmp(o.to_oin, oin) == 0) {
		*known = true;
		if (case_local != NULL)
			memcpy(case_local, o.case_local, 65);
		return 0;
	}
	if (!found && store_inbox_find(d->store, id, &in, NULL, NULL, &found,
	    err) != 0)
		return -1;
	if (found && strcmp(in.from_oin, oin) == 0) {
		*known = true;
		if (case_local != NULL)
			memcpy(case_local, in.case_local, 65);
	}
	return 0;
}

int
cases_check_reply(kpd_t *d, const char *to_oin, const uint8_t id[16],
    kp_err_t *err)
{
	bool known = false;
	char text[37];

	if (s_exchanged(d, to_oin, id, &known, NULL, err) != 0)
		return -1;
	if (!known) {
		log_warnx("send refused: in_reply_to %s was not exchanged with "
		    "%s", kpd_id(id, text), to_oin);
		return kp_fail(err, KP_ERR_INVALID_ARG, "in_reply_to %s names "
		    "no event sent to or received from %s: a reply must be "
		    "about an event exchanged with the same partner",
		    kpd_id(id, text), to_oin);
	}
	return 0;
}

bool
cases_reply_known(kpd_t *d, const envelope_meta_t *m, char *detail,
    size_t len)
{
	bool known = false;
	kp_err_t e;

	if (!m->has_reply_to)
		return true;
	if (s_exchanged(d, m->sender_oin, m->in_reply_to, &known, NULL,
	    &e) != 0) {
		snprintf(detail, len, "in_reply_to cannot be checked: %s", e.msg);
		return false;
	}
	if (!known)
		snprintf(detail, len, "in_reply_to names no event exchanged "
		    "with %s", m->sender_oin);
	return known;
}

void
cases_file_reply(kpd_t *d, inbox_row_t *row)
{
	bool known = false;
	char local[65];
	kp_err_t e;

	if (row->case_local[0] != '\0' || !row->has_reply_to)
		return;
	if (s_exchanged(d, row->from_oin, row->in_reply_to, &known, local,
	    &e) == 0 && known)
		memcpy(row->case_local, local, sizeof(local));
}

int
cases_on_send(kpd_t *d, const outbox_row_t *row, int recipient_role,
    const ProtobufCMessage *ev, kp_err_t *err)
{
	const policy_rule_t *r = policy_rule(d->policy, row->event_type);
	expect_row_t x;
	uint64_t lead = 0;
	int answer = 0;

	if (row->event_type == KP__EVENT_TYPE__EVENT_TYPE_REMINDER &&
	    row->has_reply_to)
		return store_expect_reminded(d->store, row->in_reply_to, err);
	/* the referral's own feedback_due_days when within the policy's
	 * bounds (policy_check refused it on send otherwise) */
	if (r == NULL || policy_rule_lead(r, recipient_role, ev, &answer,
	    &lead) != 0)
		return 0;
	memset(&x, 0, sizeof(x));
	memcpy(x.event_id, row->event_id, 16);
	memcpy(x.case_local, row->case_local, sizeof(x.case_local));
	memcpy(x.partner_oin, row->to_oin, sizeof(x.partner_oin));
	memcpy(x.case_ref, row->case_ref, 32);
	x.link_id = row->link_id;
	x.sent_type = row->event_type;
	x.answer_type = answer;
	x.route = row->route;
	x.sent_ms = row->created_ms;
	x.due_ms = row->created_ms + lead;
	return store_expect_put(d->store, &x, err);
}

/* An interim answer (a phase): the expectation stays open, now due
 * interim_lead after this answer. */
static int
s_on_interim(kpd_t *d, const inbox_row_t *row, uint64_t lead, kp_err_t *err)
{
	expect_row_t x;
	bool found = false;
	char id[37], ans[37], due[32];

	if (store_expect_interim(d->store, row->from_oin, row->event_type,
	    row->has_reply_to ? row->in_reply_to : NULL, row->case_ref,
	    row->event_id, row->received_ms, row->received_ms + lead, &x,
	    &found, err) != 0)
		return -1;
	if (found) {
		kp_time_format(row->received_ms + lead, due);
		/* no case reference: logs carry ids and OINs only */
		log_info("%s sent interim answer %s to event %s; the final "
		    "answer is due %s", row->from_oin,
		    kpd_id(row->event_id, ans), kpd_id(x.event_id, id), due);
	}
	return 0;
}

int
cases_on_receive(kpd_t *d, const inbox_row_t *row, const ProtobufCMessage *ev,
    kp_err_t *err)
{
	expect_row_t x;
	bool found = false;
	uint64_t lead = 0;
	char id[37], ans[37];

	if (policy_rule_interim(policy_rule(d->policy, row->event_type), ev,
	    &lead))
		return s_on_interim(d, row, lead, err);
	if (store_expect_answer(d->store, row->from_oin, row->event_type,
	    row->has_reply_to ? row->in_reply_to : NULL, row->case_ref,
	    row->event_id, row->received_ms, &x, &found, err) != 0)
		return -1;
	if (found)
		log_info("%s answered event %s with %s (%s)",
		    row->from_oin, kpd_id(x.event_id, id),
		    kpd_id(row->event_id, ans), row->received_ms <= x.due_ms ?
		    "within the lead time" : "late");
	return 0;
}

static int
s_overdue(void *arg, const expect_row_t *x)
{
	kpd_t *d = arg;
	char id[37], due[32];
	kp_err_t e;

	kp_time_format(x->due_ms, due);
	log_warnx("the %s from %s answering event %s is overdue "
	    "(due %s)", events_type_name(x->answer_type),
	    x->partner_oin, kpd_id(x->event_id, id), due);
	return webhook_notice(d, WEBHOOK_OVERDUE, x->event_id, &e);
}

void
cases_tick(kpd_t *d)
{
	uint64_t now = kp_now_ms();
	kp_err_t e;

	if (now < d->next_overdue_ms)
		return;
	d->next_overdue_ms = now + 1000;
	if (kpd_begin(d, &e) != 0)
		return;
	if (store_expect_newly_overdue(d->store, now, s_overdue, d, &e) != 0 ||
	    kpd_commit(d, &e) != 0) {
		kpd_rollback(d);
		log_warnx("overdue check failed: %s", e.msg);
	}
}

bool
cases_is_interim(kpd_t *d, int type, const uint8_t *payload, size_t len)
{
	ProtobufCMessage *ev = NULL;
	kp_err_t e;
	bool interim;

	if (payload == NULL || events_unpack(type, payload, len, &ev, &e) != 0)
		return false;
	interim = policy_rule_interim(policy_rule(d->policy, type), ev, NULL);
	protobuf_c_message_free_unpacked(ev, NULL);
	return interim;
}

void
cases_outcome(kpd_t *d, int type, const uint8_t *payload, size_t len,
    char *out, size_t outlen)
{
	const char *field = policy_rule_outcome_field(policy_rule(d->policy,
	    type));
	const ProtobufCFieldDescriptor *f;
	ProtobufCMessage *ev = NULL;
	char name[PBJSON_ENUM_NAME_MAX];
	kp_err_t e;

	out[0] = '\0';
	if (field != NULL && payload != NULL &&
	    events_unpack(type, payload, len, &ev, &e) == 0) {
		f = protobuf_c_message_descriptor_get_field_by_name(
		    ev->descriptor, field);
		if (f != NULL && pbjson_field_present(ev, f) &&
		    pbjson_enum_name(f->descriptor, *(const int *)(const void *)
		    ((const char *)ev + f->offset), name, sizeof(name)) != NULL)
			snprintf(out, outlen, "%s", name);
		protobuf_c_message_free_unpacked(ev, NULL);
	}
	if (out[0] == '\0')
		cases_summary(type, payload, len, out, outlen, true);
}

/* "outcome: positief": the first enum field of an event, for timelines. */
void
cases_summary(int type, const uint8_t *payload, size_t len, char *out,
    size_t outlen, bool value_only)
{
	ProtobufCMessage *ev = NULL;
	const ProtobufCMessageDescriptor *desc;
	char name[PBJSON_ENUM_NAME_MAX];
	kp_err_t e;
	unsigned i;

	out[0] = '\0';
	if (payload == NULL || events_unpack(type, payload, len, &ev, &e) != 0)
		return;
	desc = ev->descriptor;
	for (i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		if (f->type != PROTOBUF_C_TYPE_ENUM ||
		    f->label == PROTOBUF_C_LABEL_REPEATED ||
		    !pbjson_field_present(ev, f))
			continue;
		if (pbjson_enum_name(f->descriptor, *(const int *)((const char *)
		    ev + f->offset), name, sizeof(name)) != NULL)
			snprintf(out, outlen, value_only ? "%s" : "%s: %s",
			    value_only ? name : f->name, name);
		break;
	}
	protobuf_c_message_free_unpacked(ev, NULL);
}

/* ---- the receiving organisation's own case reference ---- */

int
feedback_link(kpd_t *d, arena_t *a, const Kp__LinkRequest *q,
    Kp__LinkResponse **out, kp_err_t *err)
{
	Kp__LinkResponse *r;
	inbox_row_t row;
	bool found = false;
	uint32_t n = 0;
	char id[37];

	if (!q->has_event_id || q->event_id.len != 16)
		return kp_fail(err, KP_ERR_INVALID_ARG, "link needs the event "
		    "id of a received event (16 bytes)");
	if (q->case_ref == NULL || !pseudonym_ref_valid(q->case_ref))
		return kp_fail(err, KP_ERR_INVALID_ARG, "link needs a local "
		    "case reference of 1-64 printable characters without "
		    "spaces");
	if (store_inbox_find(d->store, q->event_id.data, &row, NULL, NULL,
	    &found, err) != 0)
		return -1;
	if (!found)
		return kp_fail(err, KP_ERR_INVALID_ARG, "event %s was not "
		    "received here (see 'ketenpost inbox --all')",
		    kpd_id(q->event_id.data, id));
	if (row.case_local[0] != '\0' && strcmp(row.case_local, q->case_ref))
		return kp_fail(err, KP_ERR_INVALID_ARG, "event %s is already "
		    "filed under another local case; a link never changes",
		    kpd_id(q->event_id.data, id));
	if (store_link_put(d->store, row.from_oin, q->case_ref, row.case_ref,
	    err) != 0 || store_link_file(d->store, row.from_oin, row.case_ref,
	    q->case_ref, &n, err) != 0)
		return -1;
	if ((r = arena_alloc(a, sizeof(*r))) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	kp__link_response__init(r);
	r->has_event_id = r->has_filed = 1;
	r->event_id = q->event_id;
	r->case_ref = q->case_ref;
	r->partner_oin = arena_strdup(a, row.from_oin);
	r->filed = n;
	log_info("event %s from %s linked to a local case (%u events filed)",
	    kpd_id(q->event_id.data, id), row.from_oin, n);
	*out = r;
	return 0;
}

int
cases_values_json(kpd_t *d, const subject_row_t *row, char **text,
    kp_err_t *e)
{
	ProtobufCMessage *ev = NULL;
	uint8_t *plain = NULL;
	size_t plen = 0;
	json_t *j = NULL;
	char id[37];
	int rc = -1;

	*text = NULL;
	/* a sent event's payload is not kept once delivered (the partner
	 * holds it); a received one until its retention ends */
	if (row->sent || row->destroyed)
		return 0;
	/* a kept payload that cannot be shown fails the whole answer: a
	 * subject-access answer that silently leaves values out would tell
	 * the person less than was shared about them */
	if (atrest_inbox_payload(d, row->event_id, &plain, &plen) != 0) {
		kp_fail(e, KP_ERR_IO, "event %s: its kept payload could "
		    "not be read (store damaged or out of memory)",
		    kpd_id(row->event_id, id));
		goto out;
	}
	/* its own message may quote a value: not for the log or the client */
	if (events_unpack(row->event_type, plain, plen, &ev, e) != 0) {
		kp_fail(e, KP_ERR_IO, "event %s: its kept payload cannot be "
		    "decoded (store damaged, or written by another version)",
		    kpd_id(row->event_id, id));
		goto out;
	}
	if ((j = pbjson_to_json(ev)) == NULL ||
	    (*text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		kp_fail(e, KP_ERR_NOMEM, "event %s: out of memory showing its "
		    "values", kpd_id(row->event_id, id));
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	if (ev != NULL)
		protobuf_c_message_free_unpacked(ev, NULL);
	if (plain != NULL)
		sodium_memzero(plain, plen);
	free(plain);
	return rc;
}

/* ---- the officer's record of the absence after the route ---- */

struct has_route {
	bool any;
};

static int
s_has_route(void *arg, const expect_row_t *x)
{
	struct has_route *h = arg;

	h->any |= x->route != 0;
	return h->any;
}

int
feedback_outcome(kpd_t *d, arena_t *a, const Kp__OutcomeRequest *q,
    Kp__OutcomeResponse **out, kp_err_t *err)
{
	struct has_route h = { false };
	Kp__OutcomeResponse *r;
	uint64_t now = kp_now_ms();

	if (q->case_ref == NULL || !pseudonym_ref_valid(q->case_ref))
		return kp_fail(err, KP_ERR_INVALID_ARG, "outcome needs a local "
		    "case reference");
	if (!q->has_absence || q->absence < KP__ABSENCE_AFTER__ABSENCE_AFTER_STOPPED ||
	    q->absence > KP__ABSENCE_AFTER__ABSENCE_AFTER_CONTINUED)
		return kp_fail(err, KP_ERR_INVALID_ARG, "outcome needs the "
		    "absence after the route: stopped, reduced or continued");
	if (store_expect_list(d->store, q->case_ref, s_has_route, &h, err) != 0)
		return -1;
	if (!h.any)
		return kp_fail(err, KP_ERR_INVALID_ARG, "case %s is on no "
		    "route (no referral sent): nothing to record an outcome "
		    "for", q->case_ref);
	if (store_absence_put(d->store, q->case_ref, q->absence, now,
	    err) != 0)
		return -1;
	if ((r = arena_alloc(a, sizeof(*r))) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	kp__outcome_response__init(r);
	r->case_ref = q->case_ref;
	r->has_absence = r->has_recorded_at_ms = 1;
	r->absence = q->absence;
	r->recorded_at_ms = now;
	/* the case reference is not logged; the record never leaves here */
	log_info("absence after the route recorded for a case: %s",
	    protobuf_c_enum_descriptor_get_value(&kp__absence_after__descriptor,
	    q->absence)->name);
	*out = r;
	return 0;
}
