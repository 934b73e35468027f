/*
 * test_feedback.c: the officer's feedback commands of the real `ketenpost`
 * binary (case, cases, remind, report) against the fake daemon of
 * fakeapi.h: the request each command builds from its options, its JSON
 * and text output, and the HTML report: well-formed (checked here by a
 * small strict XML checker, and by xmllint when it is installed), one
 * chart per route, every string from the daemon escaped, nothing fetched.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "api.pb-c.h"
#include "common.h"
#include "events.pb-c.h"
#include "fakeapi.h"
#include "util.h"

/* These tests read the English output (--lang en and LANGUAGE=en are the
 * same); test_labels.c checks the Dutch one and every code's labels. */
static void
s_init(void)
{
	test_init();
	setenv("LANGUAGE", "en", 1);
}

TestSuite(feedback, .init = s_init);

#define ID_A "0b0e4f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
#define ID_B "7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a"
#define ID_C "11111111-2222-4333-8444-555555555555"
#define ID_R1 "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
#define ID_R2 "99999999-8888-4777-8666-555555555555"

#define DAY UINT64_C(86400000)
#define T0 UINT64_C(1798761600000)          /* 2027-01-01T00:00:00Z */
#define T_MARCH (T0 + 59 * DAY)             /* 2027-03-01T00:00:00Z */
#define T_2028 (T0 + 365 * DAY)             /* 2028-01-01T00:00:00Z */
#define T_REPORT_AT (T0 + 379 * DAY)        /* 2028-01-15T00:00:00Z */

/* A partner name that must be escaped in HTML. */
#define HALT_NAME "Halt <Midden> & \"Co\""
#define HALT_NAME_HTML "Halt &lt;Midden&gt; &amp; &quot;Co&quot;"
#define JBT_NAME "Jeugdbescherming Test"

static void
s_id(const char *text, uint8_t id[16])
{
	cr_assert(kp_uuid_parse(text, id) == 0);
}

static void
s_bytes(protobuf_c_boolean *has, ProtobufCBinaryData *b, uint8_t *id)
{
	*has = 1;
	b->data = id;
	b->len = 16;
}

static void
s_ok(Kp__Response *r, Kp__Response__ResultCase rc)
{
	r->has_ok = r->ok = 1;
	r->result_case = rc;
}

static int64_t
s_jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "no integer member '%s'", key);
	return json_integer_value(v);
}

/* ---- case ---- */

struct case_fixture {
	uint8_t a[16], b[16], c[16];
	Kp__TimelineItem t[3], *tp[3];
	Kp__Expectation e[3], *ep[3];
	Kp__RouteState s[2], *sp[2];
	Kp__CaseResponse cr;
	Kp__Response r;
};

static void
s_timeline(Kp__TimelineItem *t, uint8_t *id, const char *dir, const char *oin,
    const char *name, Kp__EventType type, Kp__Route route, uint64_t at)
{
	Kp__TimelineItem init = KP__TIMELINE_ITEM__INIT;

	*t = init;
	s_bytes(&t->has_event_id, &t->event_id, id);
	t->direction = (char *)dir;
	t->partner_oin = (char *)oin;
	t->partner_name = (char *)name;
	t->has_event_type = 1;
	t->event_type = type;
	t->has_route = 1;
	t->route = route;
	t->has_at_ms = 1;
	t->at_ms = at;
}

static void
s_expect(Kp__Expectation *e, uint8_t *id, const char *oin, const char *name,
    Kp__Route route, uint64_t sent, uint64_t due, Kp__ExpectationState st)
{
	Kp__Expectation init = KP__EXPECTATION__INIT;

	*e = init;
	s_bytes(&e->has_event_id, &e->event_id, id);
	e->partner_oin = (char *)oin;
	e->partner_name = (char *)name;
	e->has_sent_type = 1;
	e->sent_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	e->has_answer_type = 1;
	e->answer_type = KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME;
	e->has_route = 1;
	e->route = route;
	e->has_sent_at_ms = 1;
	e->sent_at_ms = sent;
	e->has_due_at_ms = 1;
	e->due_at_ms = due;
	e->has_state = 1;
	e->state = st;
}

static void
s_case_fixture(struct case_fixture *o)
{
	Kp__RouteState rs = KP__ROUTE_STATE__INIT;
	Kp__CaseResponse cr = KP__CASE_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	int i;

	s_id(ID_A, o->a);
	s_id(ID_B, o->b);
	s_id(ID_C, o->c);
	s_timeline(&o->t[0], o->a, "sent", OIN_HALT, HALT_NAME,
	    KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, KP__ROUTE__ROUTE_HALT, T0);
	o->t[0].has_state = 1;
	o->t[0].state = KP__DELIVERY_STATE__DELIVERY_STATE_DELIVERED;
	s_timeline(&o->t[1], o->c, "sent", OIN_JBT, JBT_NAME,
	    KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST,
	    KP__ROUTE__ROUTE_DWANG_CIVIEL, T0 + 4 * DAY);
	s_timeline(&o->t[2], o->b, "received", OIN_HALT, HALT_NAME,
	    KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME, KP__ROUTE__ROUTE_HALT,
	    T0 + 31 * DAY);
	o->t[2].summary = "outcome: positief";
	s_bytes(&o->t[2].has_in_reply_to, &o->t[2].in_reply_to, o->a);

	s_expect(&o->e[0], o->a, OIN_HALT, HALT_NAME, KP__ROUTE__ROUTE_HALT,
	    T0, T0 + 28 * DAY,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED_LATE);
	s_bytes(&o->e[0].has_answered_by, &o->e[0].answered_by, o->b);
	o->e[0].has_answered_at_ms = 1;
	o->e[0].answered_at_ms = T0 + 31 * DAY;
	s_expect(&o->e[1], o->c, OIN_JBT, JBT_NAME,
	    KP__ROUTE__ROUTE_DWANG_CIVIEL, T0 + 4 * DAY, T0 + 18 * DAY,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE);
	o->e[1].has_reminders = 1;
	o->e[1].reminders = 2;
	s_expect(&o->e[2], o->c, OIN_RVDK, NULL,
	    KP__ROUTE__ROUTE_DWANG_CIVIEL, T0 + 4 * DAY, T0 + 90 * DAY,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN);

	o->s[0] = o->s[1] = rs;
	o->s[0].has_route = 1;
	o->s[0].route = KP__ROUTE__ROUTE_HALT;
	o->s[0].state = "outcome";
	o->s[0].partner_oin = OIN_HALT;
	o->s[0].outcome = "positief";
	o->s[1].has_route = 1;
	o->s[1].route = KP__ROUTE__ROUTE_DWANG_CIVIEL;
	o->s[1].state = "overdue";
	o->s[1].partner_oin = OIN_JBT;
	for (i = 0; i < 3; i++) {
		o->tp[i] = &o->t[i];
		o->ep[i] = &o->e[i];
	}
	o->sp[0] = &o->s[0];
	o->sp[1] = &o->s[1];
	o->cr = cr;
	o->cr.case_ref = "ZAAK-1";
	o->cr.n_timeline = 3;
	o->cr.timeline = o->tp;
	o->cr.n_expectations = 3;
	o->cr.expectations = o->ep;
	o->cr.n_routes = 2;
	o->cr.routes = o->sp;
	o->r = r;
	s_ok(&o->r, KP__RESPONSE__RESULT_CASE_TIMELINE);
	o->r.case_timeline = &o->cr;
}

Test(feedback, case_request_and_json)
{
	struct case_fixture o;
	char out[32768];
	json_t *j, *t, *e;
	struct fake f;
	Kp__Request *q;

	s_case_fixture(&o);
	j = client_json_out(fake_serve_run(&f, &o.r, out, sizeof(out),
	    "case ZAAK-1 --json --at 2027-03-01T00:00:00Z"), out);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_CASE_TIMELINE);
	cr_assert_str_eq(q->case_timeline->case_ref, "ZAAK-1");
	cr_assert(q->case_timeline->has_at_ms);
	cr_assert_eq(q->case_timeline->at_ms, T_MARCH);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);

	cr_assert_str_eq(client_jstr(j, "case_ref"), "ZAAK-1");
	t = json_object_get(j, "timeline");
	cr_assert_eq(json_array_size(t), 3, "%s", out);
	cr_assert_str_eq(client_jstr(json_array_get(t, 0), "event_id"), ID_A);
	cr_assert_str_eq(client_jstr(json_array_get(t, 0), "event_type"),
	    "referral");
	cr_assert_str_eq(client_jstr(json_array_get(t, 0), "route"), "halt");
	cr_assert_str_eq(client_jstr(json_array_get(t, 0), "state"),
	    "delivered");
	cr_assert_str_eq(client_jstr(json_array_get(t, 0), "partner_name"),
	    HALT_NAME);
	cr_assert_eq(s_jint(json_array_get(t, 0), "at_ms"), (int64_t)T0);
	cr_assert_str_eq(client_jstr(json_array_get(t, 0), "at"),
	    "2027-01-01T00:00:00.000Z");
	cr_assert_str_eq(client_jstr(json_array_get(t, 1), "route"),
	    "dwang_civiel");
	cr_assert_str_eq(client_jstr(json_array_get(t, 2), "in_reply_to"),
	    ID_A);
	cr_assert_str_eq(client_jstr(json_array_get(t, 2), "summary"),
	    "outcome: positief");
	e = json_object_get(j, "expectations");
	cr_assert_eq(json_array_size(e), 3);
	cr_assert_str_eq(client_jstr(json_array_get(e, 0), "state"),
	    "answered_late");
	cr_assert_str_eq(client_jstr(json_array_get(e, 0), "answered_by"),
	    ID_B);
	cr_assert_str_eq(client_jstr(json_array_get(e, 0), "answer_type"),
	    "halt_outcome");
	cr_assert_str_eq(client_jstr(json_array_get(e, 0), "due_at"),
	    "2027-01-29T00:00:00.000Z");
	cr_assert_str_eq(client_jstr(json_array_get(e, 0), "answered_at"),
	    "2027-02-01T00:00:00.000Z");
	cr_assert_str_eq(client_jstr(json_array_get(e, 0), "sent_at"),
	    "2027-01-01T00:00:00.000Z");
	cr_assert_str_eq(client_jstr(json_array_get(e, 1), "state"), "overdue");
	cr_assert_eq(s_jint(json_array_get(e, 1), "reminders"), 2);
	cr_assert_str_eq(client_jstr(json_array_get(e, 2), "state"), "open");
	t = json_object_get(j, "routes");
	cr_assert_eq(json_array_size(t), 2);
	cr_assert_str_eq(client_jstr(json_array_get(t, 0), "route"), "halt");
	cr_assert_str_eq(client_jstr(json_array_get(t, 0), "outcome"),
	    "positief");
	cr_assert_str_eq(client_jstr(json_array_get(t, 1), "state"), "overdue");
	json_decref(j);
}

Test(feedback, case_text)
{
	struct case_fixture o;
	char out[32768];
	const char *tl, *ex, *ro;
	struct fake f;
	Kp__Request *q;
	int rc;

	s_case_fixture(&o);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "case ZAAK-1");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	q = fake_request(&f, 0);
	cr_assert(!q->case_timeline->has_at_ms, "no --at: the daemon's now");
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
	cr_assert(strncmp(out, "Case ZAAK-1\n", 12) == 0, "%s", out);
	tl = strstr(out, "Timeline");
	ex = strstr(out, "Expected answers");
	ro = strstr(out, "\nRoutes");
	cr_assert(tl && ex && ro && tl < ex && ex < ro, "sections: %s", out);
	/* dates as people read them; codes as labels; names never cut */
	cr_assert(strstr(out, "01-01-2027 00:00") &&
	    strstr(out, HALT_NAME) && strstr(out, "referral") &&
	    strstr(out, "delivered") && strstr(out, "positive") &&
	    strstr(out, "received"), "timeline: %s", out);
	cr_assert(strstr(out, "T00:00") == NULL, "an ISO time: %s", out);
	cr_assert(strstr(ex, "answered late") && strstr(ex, "overdue") &&
	    strstr(ex, "open") && strstr(ex, "29-01-2027") &&
	    strstr(ex, "01-02-2027") && strstr(ex, OIN_RVDK) &&
	    strstr(ex, JBT_NAME), "expected answers: %s", out);
	cr_assert(strstr(ro, "Halt") && strstr(ro, "positive") &&
	    strstr(ro, "coercion, civil law") && strstr(ro, JBT_NAME),
	    "routes: %s", out);
}

/* ---- cases ---- */

struct cases_fixture {
	Kp__CaseSummary c[2], *cp[2];
	Kp__Route r1[2], r2[1];
	Kp__CasesResponse cr;
	Kp__Response r;
};

static void
s_summary(Kp__CaseSummary *c, const char *ref, uint32_t events,
    uint32_t open, uint32_t overdue, uint32_t answered, uint64_t last)
{
	Kp__CaseSummary init = KP__CASE_SUMMARY__INIT;

	*c = init;
	c->case_ref = (char *)ref;
	c->has_events = c->has_open = c->has_overdue = c->has_answered = 1;
	c->events = events;
	c->open = open;
	c->overdue = overdue;
	c->answered = answered;
	c->has_last_at_ms = 1;
	c->last_at_ms = last;
}

static void
s_cases_fixture(struct cases_fixture *o)
{
	Kp__CasesResponse cr = KP__CASES_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;

	s_summary(&o->c[0], "ZAAK-1", 3, 0, 1, 1, T0 + 31 * DAY);
	o->r1[0] = KP__ROUTE__ROUTE_HALT;
	o->r1[1] = KP__ROUTE__ROUTE_DWANG_CIVIEL;
	o->c[0].n_routes = 2;
	o->c[0].routes = o->r1;
	s_summary(&o->c[1], "ZAAK-2", 1, 1, 0, 0, T0 + 40 * DAY);
	o->r2[0] = KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP;
	o->c[1].n_routes = 1;
	o->c[1].routes = o->r2;
	o->cp[0] = &o->c[0];
	o->cp[1] = &o->c[1];
	o->cr = cr;
	o->cr.has_at_ms = 1;
	o->cr.at_ms = T_MARCH;
	o->cr.n_cases = 2;
	o->cr.cases = o->cp;
	o->r = r;
	s_ok(&o->r, KP__RESPONSE__RESULT_CASES);
	o->r.cases = &o->cr;
}

Test(feedback, cases_request_and_json)
{
	struct cases_fixture o;
	char out[16384];
	json_t *j, *c, *routes;
	struct fake f;
	Kp__Request *q;

	s_cases_fixture(&o);
	j = client_json_out(fake_serve_run(&f, &o.r, out, sizeof(out),
	    "cases --overdue --route dwang_civiel --at 2027-03-01T00:00:00Z "
	    "--json"), out);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_CASES);
	cr_assert(q->cases->has_overdue_only && q->cases->overdue_only);
	cr_assert(q->cases->has_route);
	cr_assert_eq(q->cases->route, KP__ROUTE__ROUTE_DWANG_CIVIEL);
	cr_assert(q->cases->has_at_ms);
	cr_assert_eq(q->cases->at_ms, T_MARCH);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);

	cr_assert_str_eq(client_jstr(j, "at"), "2027-03-01T00:00:00.000Z");
	cr_assert_eq(json_array_size(json_object_get(j, "cases")), 2, "%s",
	    out);
	c = json_array_get(json_object_get(j, "cases"), 0);
	cr_assert_str_eq(client_jstr(c, "case_ref"), "ZAAK-1");
	routes = json_object_get(c, "routes");
	cr_assert_eq(json_array_size(routes), 2);
	cr_assert_str_eq(json_string_value(json_array_get(routes, 0)), "halt");
	cr_assert_str_eq(json_string_value(json_array_get(routes, 1)),
	    "dwang_civiel");
	cr_assert_eq(s_jint(c, "events"), 3);
	cr_assert_eq(s_jint(c, "overdue"), 1);
	cr_assert_eq(s_jint(c, "answered"), 1);
	cr_assert_eq(s_jint(c, "open"), 0);
	cr_assert_str_eq(client_jstr(c, "last_at"), "2027-02-01T00:00:00.000Z");
	json_decref(j);
}

Test(feedback, cases_table_and_defaults)
{
	struct cases_fixture o;
	char out[16384];
	struct fake f;
	Kp__Request *q;
	int rc;

	s_cases_fixture(&o);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "cases");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	q = fake_request(&f, 0);
	cr_assert(!q->cases->has_overdue_only && !q->cases->has_route &&
	    !q->cases->has_at_ms, "no options: nothing set");
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
	cr_assert(strncmp(out, "CASE ", 5) == 0, "%s", out);
	cr_assert(strstr(out, "ROUTES") && strstr(out, "OVERDUE") &&
	    strstr(out, "LAST ACTIVITY"), "%s", out);
	cr_assert(strstr(out, "ZAAK-1") && strstr(out,
	    "Halt, coercion, civil law") && strstr(out, "01-02-2027") &&
	    strstr(out, "ZAAK-2") && strstr(out, "voluntary youth care"),
	    "%s", out);

	o.cr.n_cases = 0;
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "cases --overdue");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert_str_eq(out, "no cases (as of 01-03-2027)\n");
	fake_free(&f);
}

Test(feedback, cases_every_route_name)
{
	static const struct { const char *name; Kp__Route v; } routes[] = {
		{ "vrijwillige_jeugdhulp",
		  KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP },
		{ "halt", KP__ROUTE__ROUTE_HALT },
		{ "dwang_civiel", KP__ROUTE__ROUTE_DWANG_CIVIEL },
		{ "dwang_strafrechtelijk",
		  KP__ROUTE__ROUTE_DWANG_STRAFRECHTELIJK },
	};
	struct cases_fixture o;
	char out[16384];
	struct fake f;
	Kp__Request *q;
	size_t i;
	int rc;

	s_cases_fixture(&o);
	fake_start(&f, &o.r);
	for (i = 0; i < 4; i++) {
		rc = client_run(out, sizeof(out), "cases --json --route %s "
		    "--api %s", routes[i].name, f.endpoint);
		cr_assert_eq(rc, 0, "%s: exit %d: %s", routes[i].name, rc, out);
	}
	fake_stop(&f);
	for (i = 0; i < 4; i++) {
		q = fake_request(&f, (int)i);
		cr_assert(q->cases->has_route);
		cr_assert_eq(q->cases->route, routes[i].v, "%s",
		    routes[i].name);
		kp__request__free_unpacked(q, NULL);
	}
	fake_free(&f);
}

/* ---- remind ---- */

Test(feedback, remind_names_each_partner)
{
	Kp__RemindResponse rr = KP__REMIND_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	const Kp__Response *answers[2];
	ProtobufCBinaryData ids[2];
	uint8_t r1[16], r2[16];
	struct case_fixture o;
	char out[4096];
	struct fake f;
	Kp__Request *q;
	int rc;

	s_id(ID_R1, r1);
	s_id(ID_R2, r2);
	ids[0].data = r1;
	ids[1].data = r2;
	ids[0].len = ids[1].len = 16;
	rr.n_event_ids = 2;
	rr.event_ids = ids;
	s_ok(&r, KP__RESPONSE__RESULT_REMIND);
	r.remind = &rr;
	/* the case afterwards: the reminders on its timeline */
	s_case_fixture(&o);
	s_timeline(&o.t[0], r2, "sent", OIN_JBT, JBT_NAME,
	    KP__EVENT_TYPE__EVENT_TYPE_REMINDER,
	    KP__ROUTE__ROUTE_DWANG_CIVIEL, T_MARCH);
	s_timeline(&o.t[1], r1, "sent", OIN_HALT, HALT_NAME,
	    KP__EVENT_TYPE__EVENT_TYPE_REMINDER, KP__ROUTE__ROUTE_HALT,
	    T_MARCH);
	answers[0] = &r;
	answers[1] = &o.r;
	fake_start_seq(&f, answers, 2);
	rc = client_run(out, sizeof(out), "remind ZAAK-1 --api %s",
	    f.endpoint);
	fake_stop(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert_str_eq(out, "reminded " OIN_HALT ": event " ID_R1 "\n"
	    "reminded " OIN_JBT ": event " ID_R2 "\n");
	cr_assert_eq(f.n, 2);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_REMIND);
	cr_assert_str_eq(q->remind->case_ref, "ZAAK-1");
	cr_assert_not(q->remind->has_at_ms, "remind is about now");
	kp__request__free_unpacked(q, NULL);
	q = fake_request(&f, 1);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_CASE_TIMELINE);
	cr_assert_str_eq(q->case_timeline->case_ref, "ZAAK-1");
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
}

/* remind sends now: --at is a usage error, and nothing is asked. */
Test(feedback, remind_refuses_at)
{
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096];
	struct fake f;
	int rc;

	s_ok(&r, KP__RESPONSE__RESULT_REMIND);
	fake_start(&f, &r);
	rc = client_run(out, sizeof(out), "remind ZAAK-1 --at "
	    "2027-03-01T00:00:00Z --api %s", f.endpoint);
	fake_stop(&f);
	cr_assert_eq(rc, 2, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "--at is not accepted") != NULL, "%s", out);
	cr_assert(strstr(out, "cases --overdue --at") != NULL, "%s", out);
	cr_assert_eq(f.n, 0, "nothing sent to the daemon");
	fake_free(&f);
}

/* Reminders sent but the timeline refused: still exit 0, partner "-". */
Test(feedback, remind_partner_lookup_fails)
{
	Kp__RemindResponse rr = KP__REMIND_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT, no = KP__RESPONSE__INIT;
	const Kp__Response *answers[2] = { &r, &no };
	ProtobufCBinaryData id;
	uint8_t r1[16];
	char out[4096];
	struct fake f;
	int rc;

	s_id(ID_R1, r1);
	id.data = r1;
	id.len = 16;
	rr.n_event_ids = 1;
	rr.event_ids = &id;
	s_ok(&r, KP__RESPONSE__RESULT_REMIND);
	r.remind = &rr;
	no.has_ok = 1;
	no.error = "busy";
	no.error_code = "busy";
	fake_start_seq(&f, answers, 2);
	rc = client_run(out, sizeof(out), "remind ZAAK-1 --api %s",
	    f.endpoint);
	fake_stop(&f);
	fake_free(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "\nreminded -: event " ID_R1 "\n") &&
	    strstr(out, "the reminders were sent"), "%s", out);
}

Test(feedback, remind_nothing_overdue)
{
	Kp__RemindResponse rr = KP__REMIND_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096];
	struct fake f;
	Kp__Request *q;
	int rc;

	s_ok(&r, KP__RESPONSE__RESULT_REMIND);
	r.remind = &rr;
	rc = fake_serve_run(&f, &r, out, sizeof(out), "remind ZAAK-9");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert_str_eq(out, "no overdue answers for case ZAAK-9\n");
	cr_assert_eq(f.n, 1, "no second request when nothing was sent");
	q = fake_request(&f, 0);
	cr_assert_str_eq(q->remind->case_ref, "ZAAK-9");
	cr_assert(!q->remind->has_at_ms);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
}

/* ---- report ---- */

struct report_fixture {
	Kp__OutcomeCount oc[5], *halt_oc[4], *civ_oc[1];
	Kp__PartnerLeadTimes p[3], *halt_p[1], *civ_p[2];
	Kp__RouteReport rt[3], *rp[3];
	Kp__ReportResponse rr;
	Kp__Response r;
};

static void
s_outcome(Kp__OutcomeCount *o, const char *name, uint32_t count)
{
	Kp__OutcomeCount init = KP__OUTCOME_COUNT__INIT;

	*o = init;
	o->outcome = (char *)name;
	o->has_count = 1;
	o->count = count;
}

static void
s_partner(Kp__PartnerLeadTimes *p, const char *oin, const char *name,
    uint32_t expected, uint32_t answered, uint32_t within, double median,
    double p90, uint32_t overdue)
{
	Kp__PartnerLeadTimes init = KP__PARTNER_LEAD_TIMES__INIT;

	*p = init;
	p->partner_oin = (char *)oin;
	p->partner_name = (char *)name;
	p->has_expected = p->has_answered = p->has_within_lead_time = 1;
	p->expected = expected;
	p->answered = answered;
	p->within_lead_time = within;
	if (answered > 0) {
		p->has_median_days = p->has_p90_days = 1;
		p->median_days = median;
		p->p90_days = p90;
	}
	p->has_overdue_now = 1;
	p->overdue_now = overdue;
}

static void
s_route(Kp__RouteReport *rt, Kp__Route route, uint32_t cases,
    uint32_t referrals, uint32_t overdue)
{
	Kp__RouteReport init = KP__ROUTE_REPORT__INIT;

	*rt = init;
	rt->has_route = rt->has_cases = rt->has_referrals = 1;
	rt->route = route;
	rt->cases = cases;
	rt->referrals = referrals;
	rt->has_overdue_now = 1;
	rt->overdue_now = overdue;
}

static void
s_report_fixture(struct report_fixture *o)
{
	Kp__ReportResponse rr = KP__REPORT_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	int i;

	s_outcome(&o->oc[0], "positief", 13);
	s_outcome(&o->oc[1], "niet_doorgegaan", 3);
	s_outcome(&o->oc[2], "negatief", 1);
	s_outcome(&o->oc[3], "no answer", 2);
	s_outcome(&o->oc[4], "ots", 1);
	for (i = 0; i < 4; i++)
		o->halt_oc[i] = &o->oc[i];
	o->civ_oc[0] = &o->oc[4];
	s_partner(&o->p[0], OIN_HALT, HALT_NAME, 19, 17, 15, 41.5, 80.3, 2);
	s_partner(&o->p[1], OIN_JBT, JBT_NAME, 3, 1, 0, 50, 50, 1);
	s_partner(&o->p[2], OIN_RVDK, NULL, 2, 2, 2, 10, 12, 0);
	o->halt_p[0] = &o->p[0];
	o->civ_p[0] = &o->p[1];
	o->civ_p[1] = &o->p[2];
	s_route(&o->rt[0], KP__ROUTE__ROUTE_HALT, 17, 19, 2);
	o->rt[0].n_outcomes = 4;
	o->rt[0].outcomes = o->halt_oc;
	o->rt[0].n_partners = 1;
	o->rt[0].partners = o->halt_p;
	s_route(&o->rt[1], KP__ROUTE__ROUTE_DWANG_CIVIEL, 3, 3, 1);
	o->rt[1].n_outcomes = 1;
	o->rt[1].outcomes = o->civ_oc;
	o->rt[1].n_partners = 2;
	o->rt[1].partners = o->civ_p;
	s_route(&o->rt[2], KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP, 10, 10, 0);
	for (i = 0; i < 3; i++)
		o->rp[i] = &o->rt[i];
	o->rr = rr;
	o->rr.has_from_ms = o->rr.has_to_ms = o->rr.has_at_ms = 1;
	o->rr.from_ms = T0;
	o->rr.to_ms = T_2028;
	o->rr.at_ms = T_REPORT_AT;
	o->rr.n_routes = 3;
	o->rr.routes = o->rp;
	o->r = r;
	s_ok(&o->r, KP__RESPONSE__RESULT_REPORT);
	o->r.report = &o->rr;
}

/* 00:00Z on the first of the month 11 months before the month of ms. */
static uint64_t
s_months_ago_11(uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	cr_assert(gmtime_r(&t, &tm) != NULL);
	tm.tm_mon -= 11;
	while (tm.tm_mon < 0) {
		tm.tm_mon += 12;
		tm.tm_year--;
	}
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return (uint64_t)timegm(&tm) * 1000;
}

Test(feedback, report_request_and_json)
{
	struct report_fixture o;
	char out[32768];
	json_t *j, *rt, *p, *oc;
	struct fake f;
	Kp__Request *q;

	s_report_fixture(&o);
	j = client_json_out(fake_serve_run(&f, &o.r, out, sizeof(out),
	    "report --from 2027-01-01T00:00:00Z --to 2028-01-01T00:00:00Z "
	    "--at 2028-01-15T00:00:00Z --json"), out);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_REPORT);
	cr_assert(q->report->has_from_ms && q->report->has_to_ms &&
	    q->report->has_at_ms);
	cr_assert_eq(q->report->from_ms, T0);
	cr_assert_eq(q->report->to_ms, T_2028);
	cr_assert_eq(q->report->at_ms, T_REPORT_AT);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);

	cr_assert_str_eq(client_jstr(j, "from"), "2027-01-01T00:00:00.000Z");
	cr_assert_str_eq(client_jstr(j, "to"), "2028-01-01T00:00:00.000Z");
	cr_assert_str_eq(client_jstr(j, "at"), "2028-01-15T00:00:00.000Z");
	cr_assert_eq(s_jint(j, "from_ms"), (int64_t)T0);
	cr_assert_eq(json_array_size(json_object_get(j, "routes")), 3);
	rt = json_array_get(json_object_get(j, "routes"), 0);
	cr_assert_str_eq(client_jstr(rt, "route"), "halt");
	cr_assert_eq(s_jint(rt, "cases"), 17);
	cr_assert_eq(s_jint(rt, "referrals"), 19);
	cr_assert_eq(s_jint(rt, "overdue_now"), 2);
	oc = json_array_get(json_object_get(rt, "outcomes"), 0);
	cr_assert_str_eq(client_jstr(oc, "outcome"), "positief");
	cr_assert_eq(s_jint(oc, "count"), 13);
	p = json_array_get(json_object_get(rt, "partners"), 0);
	cr_assert_str_eq(client_jstr(p, "partner_name"), HALT_NAME);
	cr_assert_str_eq(client_jstr(p, "partner_oin"), OIN_HALT);
	cr_assert_eq(s_jint(p, "expected"), 19);
	cr_assert_eq(s_jint(p, "within_lead_time"), 15);
	cr_assert_float_eq(json_number_value(json_object_get(p,
	    "median_days")), 41.5, 1e-9);
	cr_assert_float_eq(json_number_value(json_object_get(p, "p90_days")),
	    80.3, 1e-9);
	rt = json_array_get(json_object_get(j, "routes"), 2);
	cr_assert_str_eq(client_jstr(rt, "route"), "vrijwillige_jeugdhulp");
	json_decref(j);

	/* no options: the last 12 months, from the first of the month 11
	 * months before this one, up to now */
	json_decref(client_json_out(fake_serve_run(&f, &o.r, out, sizeof(out),
	    "report --json"), out));
	q = fake_request(&f, 0);
	cr_assert(q->report->has_from_ms && !q->report->has_to_ms &&
	    !q->report->has_at_ms);
	cr_assert_eq(q->report->from_ms, s_months_ago_11(kp_now_ms()));
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);

	/* --at: 12 months before then; --year: that calendar year */
	json_decref(client_json_out(fake_serve_run(&f, &o.r, out, sizeof(out),
	    "report --json --at 2028-01-15T00:00:00Z"), out));
	q = fake_request(&f, 0);
	cr_assert_eq(q->report->from_ms, T0 + 31 * DAY, "2027-02-01");
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
	json_decref(client_json_out(fake_serve_run(&f, &o.r, out, sizeof(out),
	    "report --json --year 2027"), out));
	q = fake_request(&f, 0);
	cr_assert(q->report->has_from_ms && q->report->has_to_ms);
	cr_assert_eq(q->report->from_ms, T0);
	cr_assert_eq(q->report->to_ms, T_2028);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
}

Test(feedback, report_text)
{
	struct report_fixture o;
	char out[32768];
	const char *halt, *civ;
	struct fake f;
	int rc;

	s_report_fixture(&o);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "report");
	fake_free(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "from 01-01-2027 up to 01-01-2028") && strstr(out,
	    "as of 15-01-2028"), "period: %s", out);
	cr_assert(strstr(out, "Total: 30 cases, 32 referrals, 3 answers "
	    "overdue now"), "totals: %s", out);
	halt = strstr(out, "Route Halt (norm -): 17 cases, 19 referrals, 2 "
	    "answers overdue now");
	civ = strstr(out, "Route coercion, civil law (norm -): 3 cases, 3 "
	    "referrals, 1 answer overdue now");
	cr_assert(halt && civ && halt < civ, "%s", out);
	cr_assert(strstr(out, "Route voluntary youth care (norm -): 10 cases") &&
	    strstr(out, "(no answers expected)"), "%s", out);
	/* 13 of 19 outcomes; 15 of the 19 answers due (17 answered, 2
	 * overdue) came in time */
	cr_assert(strstr(halt, "positive") && strstr(halt, "68.4%") &&
	    strstr(halt, "no answer") && strstr(halt, HALT_NAME) &&
	    strstr(halt, "15 of 19 due (78.9%)") && strstr(halt, "41.5") &&
	    strstr(halt, "80.3"), "%s", out);
	/* JBT: 0 of 2 due (1 answered late, 1 overdue); RvdK by OIN */
	cr_assert(strstr(civ, JBT_NAME) && strstr(civ, "0 of 2 due (0.0%)") &&
	    strstr(civ, OIN_RVDK) && strstr(civ, "2 of 2 due (100.0%)"), "%s",
	    out);
}

/* ---- report --html: a small strict XML well-formedness checker ---- */

#define XML_DEPTH 64

struct xml_scan {
	int elements, charts;
	char chart_tag[8][64], chart_route[8][64];
	char err[256];
};

static bool
s_name_start(int c)
{
	return isalpha(c) || c == '_' || c == ':';
}

static bool
s_name_char(int c)
{
	return isalnum(c) || c == '_' || c == ':' || c == '-' || c == '.';
}

/* The length of the XML name at p (0: none). */
static size_t
s_xml_name(const char *p)
{
	size_t n = 0;

	if (!s_name_start((unsigned char)p[0]))
		return 0;
	while (s_name_char((unsigned char)p[++n]))
		;
	return n;
}

/* The length of the entity or character reference at p ('&'), or 0. */
static size_t
s_xml_ref(const char *p)
{
	static const char *const named[] = { "&amp;", "&lt;", "&gt;",
	    "&quot;", "&apos;" };
	size_t i, j;
	bool hex;

	for (i = 0; i < 5; i++)
		if (strncmp(p, named[i], strlen(named[i])) == 0)
			return strlen(named[i]);
	if (p[1] != '#')
		return 0;
	hex = p[2] == 'x';
	for (j = hex ? 3 : 2; hex ? isxdigit((unsigned char)p[j]) :
	    isdigit((unsigned char)p[j]); j++)
		;
	return j > (hex ? 3u : 2u) && p[j] == ';' ? j + 1 : 0;
}

static bool
s_xml_fail(struct xml_scan *x, const char *doc, const char *p,
    const char *what)
{
	snprintf(x->err, sizeof(x->err), "offset %ld: %s near '%.40s'",
	    (long)(p - doc), what, p);
	return false;
}

/* Character data (text or an attribute value up to stop). */
static bool
s_xml_chars(struct xml_scan *x, const char *doc, const char **pp, char stop)
{
	const char *p = *pp;
	size_t n;

	for (; *p != '\0' && *p != stop && *p != '<'; p++) {
		if (*p == '&') {
			if ((n = s_xml_ref(p)) == 0)
				return s_xml_fail(x, doc, p, "bare '&'");
			p += n - 1;
		} else if ((unsigned char)*p < 0x20 && !isspace(
		    (unsigned char)*p))
			return s_xml_fail(x, doc, p, "control character");
	}
	*pp = p;
	return true;
}

/* A start tag at p ('<'); OUT: its name, whether it is empty (/>). */
static bool
s_xml_start(struct xml_scan *x, const char *doc, const char **pp,
    char *name, bool *empty)
{
	char attrs[32][64], tag[64], cls[128] = "", route[64] = "";
	const char *p = *pp + 1, *v;
	size_t n, na = 0, i;
	char q;

	if ((n = s_xml_name(p)) == 0 || n >= sizeof(tag))
		return s_xml_fail(x, doc, p, "bad element name");
	snprintf(tag, sizeof(tag), "%.*s", (int)n, p);
	p += n;
	for (;;) {
		bool ws = isspace((unsigned char)*p);

		while (isspace((unsigned char)*p))
			p++;
		if (*p == '>' || (p[0] == '/' && p[1] == '>'))
			break;
		if (!ws)
			return s_xml_fail(x, doc, p, "no space before attribute");
		if ((n = s_xml_name(p)) == 0 || n >= 64 || na == 32)
			return s_xml_fail(x, doc, p, "bad attribute name");
		for (i = 0; i < na; i++)
			if (strlen(attrs[i]) == n && strncmp(attrs[i], p, n) == 0)
				return s_xml_fail(x, doc, p, "duplicate "
				    "attribute");
		snprintf(attrs[na++], 64, "%.*s", (int)n, p);
		p += n;
		while (isspace((unsigned char)*p))
			p++;
		if (*p++ != '=')
			return s_xml_fail(x, doc, p - 1, "attribute without =");
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '"' && *p != '\'')
			return s_xml_fail(x, doc, p, "unquoted attribute");
		q = *p++;
		v = p;
		if (!s_xml_chars(x, doc, &p, q))
			return false;
		if (*p != q)
			return s_xml_fail(x, doc, p, "'<' in attribute value");
		if (strcmp(attrs[na - 1], "class") == 0)
			snprintf(cls, sizeof(cls), "%.*s", (int)(p - v), v);
		if (strcmp(attrs[na - 1], "data-route") == 0)
			snprintf(route, sizeof(route), "%.*s", (int)(p - v), v);
		p++;
	}
	*empty = *p == '/';
	*pp = p + (*empty ? 2 : 1);
	strcpy(name, tag);
	x->elements++;
	if (strcmp(cls, "route-chart") == 0 || strstr(cls, "route-chart ") ||
	    (strlen(cls) > 12 && strcmp(cls + strlen(cls) - 12,
	    " route-chart") == 0)) {
		if (x->charts < 8) {
			snprintf(x->chart_tag[x->charts], 64, "%s", tag);
			snprintf(x->chart_route[x->charts], 64, "%s", route);
		}
		x->charts++;
	}
	return true;
}

/* True if doc is `<!DOCTYPE html>` plus one well-formed XML element. */
static bool
s_xml_check(const char *doc, struct xml_scan *x)
{
	char stack[XML_DEPTH][64], name[64];
	const char *p = doc, *end;
	int depth = 0;
	bool root = false, empty;
	size_t n;

	memset(x, 0, sizeof(*x));
	if (strncmp(p, "<!DOCTYPE html>", 15) != 0)
		return s_xml_fail(x, doc, p, "no <!DOCTYPE html>");
	p += 15;
	while (*p != '\0') {
		if (*p != '<') {
			const char *t = p;

			if (!s_xml_chars(x, doc, &p, '<'))
				return false;
			for (; depth == 0 && t < p; t++)
				if (!isspace((unsigned char)*t))
					return s_xml_fail(x, doc, t, "text "
					    "outside the root element");
		} else if (strncmp(p, "<!--", 4) == 0) {
			if ((end = strstr(p + 4, "--")) == NULL || end[2] != '>')
				return s_xml_fail(x, doc, p, "bad comment");
			p = end + 3;
		} else if (p[1] == '/') {
			n = s_xml_name(p + 2);
			if (depth == 0 || n == 0 || strlen(stack[depth - 1]) != n ||
			    strncmp(stack[depth - 1], p + 2, n) != 0)
				return s_xml_fail(x, doc, p, "end tag does not "
				    "match");
			p += 2 + n;
			while (isspace((unsigned char)*p))
				p++;
			if (*p++ != '>')
				return s_xml_fail(x, doc, p - 1, "bad end tag");
			depth--;
		} else if (p[1] == '!' || p[1] == '?') {
			return s_xml_fail(x, doc, p, "unexpected markup");
		} else {
			if (depth == 0 && root)
				return s_xml_fail(x, doc, p, "second root");
			if (!s_xml_start(x, doc, &p, name, &empty))
				return false;
			root = true;
			if (!empty) {
				if (depth == XML_DEPTH)
					return s_xml_fail(x, doc, p, "too deep");
				strcpy(stack[depth++], name);
			}
		}
	}
	if (depth != 0)
		return s_xml_fail(x, doc, p, "unclosed elements at the end");
	if (!root)
		return s_xml_fail(x, doc, p, "no root element");
	return true;
}

/* The checker itself refuses what it must. */
Test(feedback, xml_checker_refuses_bad_documents)
{
	static const char *bad[] = {
		"<html><body></html>",
		"<!DOCTYPE html><html><p>a & b</p></html>",
		"<!DOCTYPE html><html><p>a < b</p></html>",
		"<!DOCTYPE html><html><p class=x></p></html>",
		"<!DOCTYPE html><html><p a=\"1\" a=\"2\"></p></html>",
		"<!DOCTYPE html><html><p a=\"<\"></p></html>",
		"<!DOCTYPE html><html><br></html>",
		"<!DOCTYPE html><html></html><html></html>",
		"<!DOCTYPE html><html><p a=\"1\"b=\"2\"></p></html>",
		"<!DOCTYPE html><html>&nbsp;</html>",
	};
	struct xml_scan x;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(!s_xml_check(bad[i], &x), "accepted: %s", bad[i]);
	cr_assert(s_xml_check("<!DOCTYPE html>\n<html a='1'><!-- c --><p>a "
	    "&amp; &#60; &#x3c;</p><br/><svg class=\"route-chart\" "
	    "data-route=\"halt\"/></html>\n", &x), "%s", x.err);
	cr_assert_eq(x.charts, 1);
	cr_assert_str_eq(x.chart_route[0], "halt");
}

/* Every http(s) URL in doc is a namespace name (XHTML once, SVG per
 * chart): nothing that could be fetched. */
static void
s_check_no_urls(const char *doc)
{
	static const char ns[] = "http://www.w3.org/1999/xhtml\"";
	static const char svg[] = "http://www.w3.org/2000/svg\"";
	const char *p;
	int n = 0;

	for (p = doc; (p = strcasestr(p, "http")) != NULL; p++) {
		if (strncasecmp(p, "http://", 7) != 0 &&
		    strncasecmp(p, "https://", 8) != 0)
			continue;
		cr_assert(strncmp(p, ns, strlen(ns)) == 0 ||
		    strncmp(p, svg, strlen(svg)) == 0, "a URL: %.60s", p);
		n += strncmp(p, ns, strlen(ns)) == 0;
	}
	cr_assert_eq(n, 1, "the XHTML namespace %d times", n);
	cr_assert(!strcasestr(doc, "<script") && !strcasestr(doc, " src=") &&
	    !strcasestr(doc, " href=") && !strcasestr(doc, "url(") &&
	    !strcasestr(doc, "@import"), "something is fetched or run");
}

/* Run report --html FILE against o; the file's text (free it). */
static char *
s_html_report(const Kp__Response *r, const char *extra)
{
	char out[4096], dir[512], path[1024];
	uint8_t *buf;
	size_t len;
	struct fake f;
	int rc;

	test_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/report.html", dir);
	rc = fake_serve_run(&f, r, out, sizeof(out), "report --html %s %s",
	    path, extra);
	fake_free(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert_str_eq(out, "", "--html prints nothing: %s", out);
	cr_assert(kp_read_file(path, 1 << 22, &buf, &len) == 0, "no %s", path);
	cr_assert_eq(strlen((char *)buf), len, "a NUL in the HTML");
	if (test_sh("command -v xmllint >/dev/null 2>&1") == 0)
		cr_assert_eq(test_sh("xmllint --noout --nonet '%s'", path), 0,
		    "xmllint refuses %s", path);
	test_sh("rm -rf '%s'", dir);
	return (char *)buf;
}

Test(feedback, report_html)
{
	struct report_fixture o;
	struct xml_scan x;
	char *html;
	int i;

	s_report_fixture(&o);
	html = s_html_report(&o.r, "--from 2027-01-01T00:00:00Z");
	cr_assert(s_xml_check(html, &x), "not well-formed: %s", x.err);
	cr_assert(strstr(html, "<html xmlns=\"http://www.w3.org/1999/xhtml\""),
	    "no XHTML namespace");
	cr_assert(strstr(html, "<meta charset=\"utf-8\"/>") &&
	    strstr(html, "<style>") && strstr(html, "<title>"), "head");
	cr_assert_eq(x.charts, 3, "%d charts for 3 routes", x.charts);
	for (i = 0; i < 3; i++)
		cr_assert_str_eq(x.chart_tag[i], "svg");
	cr_assert_str_eq(x.chart_route[0], "halt");
	cr_assert_str_eq(x.chart_route[1], "dwang_civiel");
	cr_assert_str_eq(x.chart_route[2], "vrijwillige_jeugdhulp");
	cr_assert(strstr(html, "01-01-2027") && strstr(html, "01-01-2028") &&
	    strstr(html, "15-01-2028"), "the period");
	cr_assert(strstr(html, "<h2>Halt</h2>") &&
	    strstr(html, "<h2>Coercion, civil law</h2>") &&
	    strstr(html, "<h2>Voluntary youth care</h2>"), "route names");
	cr_assert(strstr(html, HALT_NAME_HTML) != NULL, "escaped partner");
	cr_assert(strstr(html, "<Midden>") == NULL && strstr(html,
	    "& \"Co") == NULL, "an unescaped partner name");
	cr_assert(strstr(html, JBT_NAME) && strstr(html, OIN_RVDK) &&
	    strstr(html, "positive") && strstr(html, "68.4%") &&
	    strstr(html, "41.5") && strstr(html, "80.3"), "the numbers");
	cr_assert(strstr(html, "<figcaption>") && strstr(html, "<desc ") &&
	    strstr(html, "aria-labelledby=") && strstr(html,
	    "<table class=\"summary\">"), "accessible");
	s_check_no_urls(html);
	free(html);
}

Test(feedback, report_html_no_routes)
{
	struct report_fixture o;
	struct xml_scan x;
	char *html;

	s_report_fixture(&o);
	o.rr.n_routes = 0;
	o.rr.has_from_ms = o.rr.has_to_ms = 0;
	html = s_html_report(&o.r, "");
	cr_assert(s_xml_check(html, &x), "not well-formed: %s", x.err);
	cr_assert_eq(x.charts, 0);
	cr_assert(strstr(html, "<tr class=\"total\"><td>Total</td>"),
	    "the totals row: %s", html);
	s_check_no_urls(html);
	free(html);
}

Test(feedback, report_html_unwritable)
{
	struct report_fixture o;
	char out[4096];
	struct fake f;
	int rc;

	s_report_fixture(&o);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "report --html "
	    "/nonexistent-dir/r.html");
	fake_free(&f);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert(strncmp(out, "ketenpost: ", 11) == 0 &&
	    strstr(out, "/nonexistent-dir/r.html") &&
	    strchr(out, '\n') == out + strlen(out) - 1, "%s", out);
}

/* ---- errors ---- */

Test(feedback, usage_errors_exit_2_before_any_request)
{
	static const char *bad[] = {
		"cases --route bus",
		"cases --route HALT",
		"cases --route unspecified",
		"cases --route ''",
		"cases --at tomorrow",
		"cases --at 2027-01-01",
		"cases --at 2027-01-01T00:00:00+01:00",
		"cases extra",
		"cases --bogus",
		"case",
		"case ''",
		"case A B",
		"case A --at 2027-02-30T25:00:00Z",
		"case A --overdue",
		"remind",
		"remind A --at now",
		"link",
		"link " ID_A,
		"link not-a-uuid REF",
		"link " ID_A " ''",
		"link " ID_A " A B",
		"outcome A",
		"outcome A --absence gone",
		"outcome A --absence ''",
		"outcome --absence stopped",
		"report --from 2027-01-01",
		"report --to x",
		"report --from 2028-01-01T00:00:00Z --to 2027-01-01T00:00:00Z",
		"report --json --html r.html",
		"report --html ''",
		"report --at yesterday --json",
		"report extra",
	};
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096], want[64];
	struct fake f;
	size_t i;
	int rc;

	r.has_ok = r.ok = 1;
	fake_start(&f, &r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = client_run(out, sizeof(out), "%s --api %s", bad[i],
		    f.endpoint);
		cr_assert_eq(rc, 2, "%s: exit %d: %s", bad[i], rc, out);
		snprintf(want, sizeof(want), "ketenpost %.*s: ",
		    (int)strcspn(bad[i], " "), bad[i]);
		cr_assert(strncmp(out, want, strlen(want)) == 0 &&
		    strchr(out, '\n') == out + strlen(out) - 1, "%s: %s",
		    bad[i], out);
	}
	rc = client_run(out, sizeof(out), "cases --route bus --api %s",
	    f.endpoint);
	cr_assert(strstr(out, "'bus' is not a route") &&
	    strstr(out, "dwang_strafrechtelijk"), "%s", out);
	rc = client_run(out, sizeof(out), "cases --at tomorrow --api %s",
	    f.endpoint);
	cr_assert(strstr(out, "--at 'tomorrow'") && strstr(out, "ISO 8601"),
	    "%s", out);
	fake_stop(&f);
	cr_assert_eq(f.n, 0, "a refused command reached the daemon");
	fake_free(&f);
}

Test(feedback, refusal_and_wrong_answer_exit_1)
{
	struct report_fixture o;
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096];
	struct fake f;
	int rc;

	r.has_ok = 1;
	r.ok = 0;
	r.error = "no case ZAAK-404 here";
	r.error_code = "unknown_case";
	rc = fake_serve_run(&f, &r, out, sizeof(out), "case ZAAK-404");
	fake_free(&f);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert_str_eq(out, "ketenpost: no case ZAAK-404 here "
	    "(unknown_case)\n");
	s_report_fixture(&o);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "cases");
	fake_free(&f);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "wrong kind") != NULL, "%s", out);
}

Test(feedback, every_command_has_help)
{
	static const char *cmds[] = { "case", "cases", "remind", "report",
	    "link", "outcome" };
	char out[8192];
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cr_assert_eq(client_run(out, sizeof(out), "%s --help",
		    cmds[i]), 0, "%s --help", cmds[i]);
		cr_assert(strncmp(out, "usage: ketenpost ", 17) == 0 &&
		    strstr(out, "--api ENDPOINT"), "%s", out);
	}
	cr_assert_eq(client_run(out, sizeof(out), "--help"), 0);
	cr_assert(strstr(out, "\n  case ") && strstr(out, "\n  cases ") &&
	    strstr(out, "\n  remind ") && strstr(out, "\n  report ") &&
	    strstr(out, "\n  link ") && strstr(out, "\n  outcome "), "%s",
	    out);
}

/* ---- link and outcome ---- */

Test(feedback, link_request_and_text)
{
	Kp__LinkResponse lr = KP__LINK_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	uint8_t a[16];
	char out[4096];
	struct fake f;
	Kp__Request *q;
	int rc;

	s_id(ID_A, a);
	lr.has_filed = 1;
	lr.filed = 2;
	s_ok(&r, KP__RESPONSE__RESULT_LINK);
	r.link = &lr;
	fake_start(&f, &r);
	rc = client_run(out, sizeof(out), "link " ID_A " HALT-7 --api %s",
	    f.endpoint);
	fake_stop(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert_str_eq(out, "linked " ID_A " to HALT-7 (2 events filed)\n");
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_LINK);
	cr_assert_arr_eq(q->link->event_id.data, a, 16);
	cr_assert_str_eq(q->link->case_ref, "HALT-7");
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
}

Test(feedback, outcome_request_and_text)
{
	Kp__OutcomeResponse orr = KP__OUTCOME_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	char out[4096];
	struct fake f;
	Kp__Request *q;
	int rc;

	orr.has_absence = 1;
	orr.absence = KP__ABSENCE_AFTER__ABSENCE_AFTER_REDUCED;
	s_ok(&r, KP__RESPONSE__RESULT_OUTCOME);
	r.outcome = &orr;
	fake_start(&f, &r);
	rc = client_run(out, sizeof(out), "outcome ZAAK-1 --absence reduced "
	    "--api %s", f.endpoint);
	fake_stop(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "case ZAAK-1: absence after the route") != NULL &&
	    strstr(out, "not shared") != NULL, "%s", out);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_OUTCOME);
	cr_assert_str_eq(q->outcome->case_ref, "ZAAK-1");
	cr_assert_eq(q->outcome->absence,
	    KP__ABSENCE_AFTER__ABSENCE_AFTER_REDUCED);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
}

/* The officer's record per route in the text and the HTML report. */
Test(feedback, report_absence_after_the_route)
{
	struct report_fixture o;
	Kp__OutcomeCount ab[4], *abp[4];
	char out[32768], path[512], tmp[256];
	uint8_t *html;
	size_t n;
	struct fake f;
	int rc, i;

	s_report_fixture(&o);
	s_outcome(&ab[0], "not recorded", 4);
	s_outcome(&ab[1], "stopped", 3);
	s_outcome(&ab[2], "reduced", 2);
	s_outcome(&ab[3], "continued", 1);
	for (i = 0; i < 4; i++)
		abp[i] = &ab[i];
	o.rt[2].n_absence_after = 4;     /* vrijwillige_jeugdhulp, 10 cases */
	o.rt[2].absence_after = abp;
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "report");
	fake_free(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	/* 3 of the route's 10 cases: 30.0% */
	cr_assert(strstr(out, "Absence after the route") != NULL &&
	    strstr(out, "stopped") != NULL && strstr(out, "30.0%") != NULL,
	    "%s", out);
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(path, sizeof(path), "%s/r.html", tmp);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "report --html %s",
	    path);
	fake_free(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert(kp_read_file(path, 1 << 22, &html, &n) == 0);
	cr_assert(strstr((char *)html, "<table class=\"absence\">") != NULL);
	cr_assert(strstr((char *)html, "<td>continued</td>") != NULL);
	free(html);
}
