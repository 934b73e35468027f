/*
 * cases.c: systematic feedback for the referring organisation — every sent
 * event whose type has a feedback lead time in the chain policy opens an
 * expectation (what answer, from whom, due when); the partner's answer
 * closes it; an expectation past its due time is overdue, logged once.
 *
 * Owns no state of its own: expectations live in the store, written in the
 * same transaction as the event that opens or closes them.
 */
#include <string.h>

#include "daemon.h"
#include "events.h"
#include "events.pb-c.h"
#include "log.h"
#include "pbjson.h"

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

int
cases_on_send(kpd_t *d, const outbox_row_t *row, int recipient_role,
    kp_err_t *err)
{
	const policy_rule_t *r = policy_rule(d->policy, row->event_type);
	expect_row_t x;
	uint64_t lead = 0;
	int answer = 0;

	if (row->event_type == KP__EVENT_TYPE__EVENT_TYPE_REMINDER &&
	    row->has_reply_to)
		return store_expect_reminded(d->store, row->in_reply_to, err);
	if (r == NULL || policy_rule_expects(r, recipient_role, &answer,
	    &lead) != 0)
		return 0;
	memset(&x, 0, sizeof(x));
	memcpy(x.event_id, row->event_id, 16);
	memcpy(x.case_local, row->case_local, sizeof(x.case_local));
	memcpy(x.partner_oin, row->to_oin, sizeof(x.partner_oin));
	memcpy(x.case_ref, row->case_ref, 32);
	x.sent_type = row->event_type;
	x.answer_type = answer;
	x.route = row->route;
	x.sent_ms = row->created_ms;
	x.due_ms = row->created_ms + lead;
	return store_expect_put(d->store, &x, err);
}

int
cases_on_receive(kpd_t *d, const inbox_row_t *row, kp_err_t *err)
{
	expect_row_t x;
	bool found = false;
	char id[37], ans[37];

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
	char id[37], due[32];

	(void)arg;
	kp_time_format(x->due_ms, due);
	log_warnx("the %s from %s answering event %s is overdue "
	    "(due %s)", events_type_name(x->answer_type),
	    x->partner_oin, kpd_id(x->event_id, id), due);
	return 0;
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
	if (store_expect_newly_overdue(d->store, now, s_overdue, NULL, &e) != 0 ||
	    kpd_commit(d, &e) != 0) {
		kpd_rollback(d);
		log_warnx("overdue check failed: %s", e.msg);
	}
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
