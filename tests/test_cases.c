/*
 * test_cases.c: systematic feedback with real daemons — expectations opened
 * by referrals, closed by answers, overdue at the edge of the lead time
 * (evaluated with `at`), the case timeline, reminders, the evaluation
 * report against known inputs, and a simulated year (tools/simyear).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "common.h"
#include "daemons.h"
#include "events.pb-c.h"
#include "util.h"

TestSuite(cases, .init = test_init, .timeout = 240);

#define DAY 86400000ull

static Kp__Response *
s_call_ok(const td_org_t *o, Kp__Request *req)
{
	Kp__Response *r = NULL;

	cr_assert_eq(td_call(o, req, &r, 5000), 0, "no answer");
	cr_assert(r->ok, "%s", r->error);
	return r;
}

static Kp__Response *
s_cases(const td_org_t *o, bool overdue, uint64_t at)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__CasesRequest q = KP__CASES_REQUEST__INIT;

	q.has_overdue_only = 1;
	q.overdue_only = overdue;
	q.has_at_ms = 1;
	q.at_ms = at;
	req.op_case = KP__REQUEST__OP_CASES;
	req.cases = &q;
	return s_call_ok(o, &req);
}

static Kp__Response *
s_case(const td_org_t *o, const char *ref, uint64_t at)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__CaseRequest q = KP__CASE_REQUEST__INIT;

	q.case_ref = (char *)ref;
	q.has_at_ms = at != 0;
	q.at_ms = at;
	req.op_case = KP__REQUEST__OP_CASE_TIMELINE;
	req.case_timeline = &q;
	return s_call_ok(o, &req);
}

static const char *
s_halt_outcome(const char *outcome)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "{\"outcome\": \"%s\", \"expected_next\": "
	    "\"geen\"}", outcome);
	return buf;
}

Test(cases, expectation_open_overdue_answered_at_the_edges)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t ref[16], ans[16];
	Kp__Response *r, *in;
	Kp__Expectation *x;
	uint64_t due;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-1", td_example("referral"), NULL, ref);
	cr_assert(td_wait_settled(lp, 10000));
	r = s_case(lp, "LP-1", 0);
	cr_assert_eq(r->case_timeline->n_expectations, 1);
	x = r->case_timeline->expectations[0];
	cr_assert_eq(x->answer_type, KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME);
	cr_assert_str_eq(x->partner_oin, OIN_HALT);
	cr_assert_eq(x->route, KP__ROUTE__ROUTE_HALT);
	cr_assert_eq(x->due_at_ms - x->sent_at_ms, 90 * DAY, "lead time 90d");
	cr_assert_eq(x->state, KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN);
	cr_assert_str_eq(r->case_timeline->routes[0]->state, "received");
	due = x->due_at_ms;
	kp__response__free_unpacked(r, NULL);
	/* one millisecond before the due time: not overdue; at it: overdue */
	r = s_cases(lp, true, due - 1);
	cr_assert_eq(r->cases->n_cases, 0);
	kp__response__free_unpacked(r, NULL);
	r = s_cases(lp, true, due);
	cr_assert_eq(r->cases->n_cases, 1);
	cr_assert_str_eq(r->cases->cases[0]->case_ref, "LP-1");
	cr_assert_eq(r->cases->cases[0]->overdue, 1);
	kp__response__free_unpacked(r, NULL);
	/* Halt answers: closed, within the lead time, on the timeline */
	in = td_inbox(halt, true);
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", "H-1",
	    s_halt_outcome("positief"), in->inbox->items[0]->event_id.data, ans);
	kp__response__free_unpacked(in, NULL);
	cr_assert(td_wait_settled(halt, 10000));
	r = s_cases(lp, true, due + 10 * DAY);
	cr_assert_eq(r->cases->n_cases, 0, "an answered case is not overdue");
	kp__response__free_unpacked(r, NULL);
	r = s_case(lp, "LP-1", 0);
	x = r->case_timeline->expectations[0];
	cr_assert_eq(x->state, KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED);
	cr_assert_arr_eq(x->answered_by.data, ans, 16);
	cr_assert_eq(r->case_timeline->n_timeline, 2);
	cr_assert_str_eq(r->case_timeline->timeline[0]->direction, "sent");
	cr_assert_eq(r->case_timeline->timeline[0]->event_type,
	    KP__EVENT_TYPE__EVENT_TYPE_REFERRAL);
	cr_assert_str_eq(r->case_timeline->timeline[1]->direction, "received");
	cr_assert_str_eq(r->case_timeline->timeline[1]->summary,
	    "outcome: positief");
	cr_assert_eq(r->case_timeline->timeline[1]->route, KP__ROUTE__ROUTE_HALT);
	cr_assert_str_eq(r->case_timeline->routes[0]->state, "outcome");
	cr_assert_str_eq(r->case_timeline->routes[0]->outcome, "positief");
	kp__response__free_unpacked(r, NULL);
	td_chain_stop_all(&c);
}

/* remind is about now (test_scenario.c plays it under a simulated clock):
 * an answer not yet due gets no rappel, and an `at` is refused. */
Test(cases, remind_sends_nothing_for_an_answer_not_yet_due)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t ref[16];
	Kp__Request req = KP__REQUEST__INIT;
	Kp__RemindRequest q = KP__REMIND_REQUEST__INIT;
	Kp__Response *r, *in;
	uint64_t due;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-9", td_example("referral"), NULL, ref);
	cr_assert(td_wait_settled(lp, 10000));
	r = s_case(lp, "LP-9", 0);
	due = r->case_timeline->expectations[0]->due_at_ms;
	kp__response__free_unpacked(r, NULL);
	q.case_ref = "LP-9";
	req.op_case = KP__REQUEST__OP_REMIND;
	req.remind = &q;
	/* a future `at` once sent a real rappel now: refused */
	q.has_at_ms = 1;
	q.at_ms = due + 3 * DAY;
	cr_assert_eq(td_call(lp, &req, &r, 5000), 0);
	cr_assert_not(r->ok, "remind with an at must be refused");
	cr_assert_str_eq(r->error_code, "invalid_argument");
	kp__response__free_unpacked(r, NULL);
	/* now: due in 90 days, nothing to remind */
	q.has_at_ms = 0;
	q.at_ms = 0;
	r = s_call_ok(lp, &req);
	cr_assert_eq(r->remind->n_event_ids, 0);
	kp__response__free_unpacked(r, NULL);
	cr_assert(td_wait_settled(lp, 10000));
	in = td_inbox(halt, true);
	cr_assert_eq(in->inbox->n_items, 1, "the referral only, no reminder");
	kp__response__free_unpacked(in, NULL);
	td_chain_stop_all(&c);
}

static const Kp__OutcomeCount *
s_outcome(const Kp__RouteReport *rr, const char *name)
{
	size_t i;

	for (i = 0; i < rr->n_outcomes; i++)
		if (strcmp(rr->outcomes[i]->outcome, name) == 0)
			return rr->outcomes[i];
	cr_assert_fail("no outcome %s in the report", name);
	return NULL;
}

Test(cases, report_counts_known_inputs)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t ref[16], ans[16];
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ReportRequest q = KP__REPORT_REQUEST__INIT;
	Kp__Response *r, *in;
	const Kp__RouteReport *halt_route = NULL;
	size_t i;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "A-1", td_example("referral"), NULL, ref);
	td_send(lp, OIN_HALT, "referral", "A-2", td_example("referral"), NULL, ref);
	td_send(lp, OIN_HALT, "referral", "A-3", td_example("referral"), NULL, ref);
	cr_assert(td_wait_settled(lp, 10000));
	in = td_inbox(halt, true);
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", "H-1",
	    s_halt_outcome("positief"), in->inbox->items[0]->event_id.data, ans);
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", "H-2",
	    s_halt_outcome("negatief"), in->inbox->items[1]->event_id.data, ans);
	kp__response__free_unpacked(in, NULL);
	cr_assert(td_wait_settled(halt, 10000));
	q.has_at_ms = 1;
	q.at_ms = kp_now_ms() + 100 * DAY;   /* the third is overdue by then */
	req.op_case = KP__REQUEST__OP_REPORT;
	req.report = &q;
	r = s_call_ok(lp, &req);
	cr_assert_eq(r->report->n_routes, 4, "one block per route");
	for (i = 0; i < r->report->n_routes; i++)
		if (r->report->routes[i]->route == KP__ROUTE__ROUTE_HALT)
			halt_route = r->report->routes[i];
	cr_assert_not_null(halt_route);
	cr_assert_eq(halt_route->referrals, 3);
	cr_assert_eq(halt_route->cases, 3);
	cr_assert_eq(s_outcome(halt_route, "positief")->count, 1);
	cr_assert_eq(s_outcome(halt_route, "negatief")->count, 1);
	cr_assert_eq(s_outcome(halt_route, "no answer (overdue)")->count, 1);
	cr_assert_eq(halt_route->overdue_now, 1);
	cr_assert_eq(halt_route->n_partners, 1);
	cr_assert_str_eq(halt_route->partners[0]->partner_oin, OIN_HALT);
	cr_assert_eq(halt_route->partners[0]->expected, 3);
	cr_assert_eq(halt_route->partners[0]->answered, 2);
	cr_assert_eq(halt_route->partners[0]->within_lead_time, 2);
	cr_assert_lt(halt_route->partners[0]->median_days, 1.0,
	    "answered within seconds");
	kp__response__free_unpacked(r, NULL);
	td_chain_stop_all(&c);
}

Test(cases, a_simulated_municipality_year)
{
	char out[16384];
	json_t *j;

	if (!kp_clock_simulated())
		cr_skip_test("built without KP_SIMULATED_CLOCK (scripts/test.sh "
		    "turns it on)");
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/simyear --bin %s "
	    "--reports 250 --seed 42", test_bin(), test_bin()), 0, "%s", out);
	j = json_loads(strchr(out, '{'), 0, NULL);
	cr_assert_not_null(j, "%s", out);
	cr_assert(json_is_true(json_object_get(j, "ok")), "%s", out);
	cr_assert_eq(json_integer_value(json_object_get(j, "problems")), 0);
	cr_assert_gt(json_integer_value(json_object_get(j, "follow_up_cases")),
	    0, "%s", out);
	cr_assert_gt(json_integer_value(json_object_get(j, "events")), 0);
	cr_assert_gt(json_integer_value(json_object_get(j, "interim_answers")),
	    0, "answers in phases were played: %s", out);
	json_decref(j);
}

Test(cases, html_report_from_a_real_daemon)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t ref[16];
	char out[4096], path[4200];
	uint8_t *html;
	size_t n;
	const char *p;
	int charts = 0;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "R-1", td_example("referral"), NULL, ref);
	cr_assert(td_wait_settled(lp, 10000));
	snprintf(path, sizeof(path), "%s/report.html", c.dir);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost report "
	    "--html %s --config %s", test_bin(), path, lp->conf), 0, "%s", out);
	cr_assert(kp_read_file(path, 1 << 22, &html, &n) == 0);
	for (p = (char *)html; (p = strstr(p, "class=\"route-chart\"")) != NULL;
	    p++)
		charts++;
	cr_assert_eq(charts, 4, "one chart per route");
	cr_assert(strstr((char *)html, "data-route=\"halt\"") != NULL);
	cr_assert(strstr((char *)html, "<script") == NULL);
	cr_assert(strstr((char *)html, "</html>") != NULL);
	free(html);
	td_chain_stop_all(&c);
}
