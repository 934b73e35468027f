/*
 * test_scenario.c: the officer's figures against a scenario with known
 * answers, played on real daemons under a simulated clock
 * (KETENPOST_CLOCK_FILE, lib/util.c): every referral and every answer
 * happens at a moment the test chooses, so lead times are exact and the
 * expected figures are computed by hand below, each with its arithmetic
 * in a comment, never by the code under test.
 *
 * Also lib/stats.c (median, nearest-rank percentile) on odd and even
 * counts.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "chain.h"
#include "common.h"
#include "daemons.h"
#include "envelope.h"
#include "policy.h"
#include "events.h"
#include "pbjson.h"
#include "events.pb-c.h"
#include "stats.h"
#include "util.h"

TestSuite(scenario, .init = test_init, .timeout = 240);
TestSuite(stats);

#define DAY 86400000ull
#define HOUR 3600000ull
#define T0 1798761600000ull          /* 2027-01-01T00:00:00Z */

/* ---- lib/stats.c ---- */

Test(stats, median_of_odd_and_even_counts)
{
	const double one[] = { 7.5 };
	const double odd[] = { 5.0, 12.0, 50.0 };
	const double even[] = { 10.0, 20.5, 40.0, 70.0 };
	/* the OM figures: lower middle 70.1, true median 75.2 */
	const double om[] = { 30.0, 70.1, 80.3, 130.0 };

	cr_assert_eq(kp_median(NULL, 0), 0);
	cr_assert_eq(kp_median(one, 1), 7.5);
	cr_assert_eq(kp_median(odd, 3), 12.0, "the middle one of 3");
	/* (20.5 + 40.0) / 2 = 60.5 / 2 = 30.25 */
	cr_assert_eq(kp_median(even, 4), 30.25);
	/* (70.1 + 80.3) / 2 = 150.4 / 2 = 75.2 */
	cr_assert_float_eq(kp_median(om, 4), 75.2, 1e-9);
}

Test(stats, percentile_is_nearest_rank)
{
	double v[20];
	size_t i;
	const double even[] = { 10.0, 20.5, 40.0, 70.0 };

	for (i = 0; i < 20; i++)
		v[i] = (double)(i + 1);     /* 1, 2, ..., 20 */
	/* rank ceil(0.9 * 20) = 18: the 18th value, 18 (not 19: 0.9 * 20
	 * in floating point must not push the rank up) */
	cr_assert_eq(kp_percentile(v, 20, 90), 18.0);
	/* rank ceil(0.9 * 10) = 9 */
	cr_assert_eq(kp_percentile(v, 10, 90), 9.0);
	/* rank ceil(0.9 * 4) = ceil(3.6) = 4: 70.0 */
	cr_assert_eq(kp_percentile(even, 4, 90), 70.0);
	/* rank ceil(0.5 * 4) = 2: nearest rank is not the median */
	cr_assert_eq(kp_percentile(even, 4, 50), 20.5);
	cr_assert_eq(kp_percentile(v, 1, 90), 1.0);
	cr_assert_eq(kp_percentile(NULL, 0, 90), 0);
}

/* ---- the scenario chain ---- */

struct scen {
	td_chain_t c;
	td_org_t *lp, *halt, *rvdk, *om, *jbt, *zorg;
	char clock[4200];
};

static void
s_clock(struct scen *s, uint64_t ms)
{
	td_set_clock(s->clock, ms);
}

#define OIN_ZORG "00000001007890123000"

/* snprintf that must not truncate. */
static void __attribute__((format(printf, 3, 4)))
s_fmt(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < cap, "path too long");
}

/* The care partner (role zorg, the wijkteam) added to the test chain: the
 * shared fixture has no care partner. */
static void
s_add_zorg(struct scen *s)
{
	const td_org_t *jbt = td_org(&s->c, OIN_JBT);
	td_org_t *o = &s->c.orgs[s->c.n++];
	char dir[4096];
	FILE *f;

	cr_assert_leq(s->c.n, TD_MAX_ORGS);
	snprintf(o->oin, sizeof(o->oin), "%s", OIN_ZORG);
	snprintf(o->role, sizeof(o->role), "zorg");
	snprintf(o->listen, sizeof(o->listen), "tcp://127.0.0.1:%d",
	    atoi(strrchr(jbt->listen, ':') + 1) + 1);
	cr_assert_eq(test_sh("%s/ketenpost-certs org --dir %s --oin %s --role "
	    "zorg --name 'Wijkteam Voorbeeldstad' --endpoint %s >/dev/null",
	    test_bin(), s->c.dir, o->oin, o->listen), 0);
	s_fmt(dir, sizeof(dir), "%.*s", (int)(strrchr(jbt->conf, '/') -
	    jbt->conf), jbt->conf);
	s_fmt(o->conf, sizeof(o->conf), "%s/%s.conf", dir, OIN_ZORG);
	s_fmt(o->log, sizeof(o->log), "%s/%s.log", dir, OIN_ZORG);
	s_fmt(o->api, sizeof(o->api), "ipc://%s/orgs/%s/state/api.sock",
	    s->c.dir, OIN_ZORG);
	cr_assert_not_null(f = fopen(o->conf, "w"));
	fprintf(f, "[ketenpostd]\nchain_dir = %s\norg = %s\nlisten = %s\n\n"
	    "[delivery]\nretry_initial = 200ms\nretry_max = 2s\n", s->c.dir,
	    o->oin, o->listen);
	cr_assert_eq(fclose(f), 0);
	s->zorg = o;
}

/* A chain under the simulated clock, at T0, with Leerplicht, Halt, RvdK,
 * OM, the JBT and a care partner running. */
static void
s_start(struct scen *s)
{
	td_chain_make(&s->c, NULL);
	s_add_zorg(s);
	snprintf(s->clock, sizeof(s->clock), "%s/clock", s->c.dir);
	s_clock(s, T0);
	cr_assert_eq(setenv("KETENPOST_CLOCK_FILE", s->clock, 1), 0);
	s->lp = td_org(&s->c, OIN_LEERPLICHT);
	s->halt = td_org(&s->c, OIN_HALT);
	s->rvdk = td_org(&s->c, OIN_RVDK);
	s->om = td_org(&s->c, OIN_OM);
	s->jbt = td_org(&s->c, OIN_JBT);
	td_start(s->jbt);
	td_start(s->zorg);
	td_start(s->lp);
	td_start(s->halt);
	td_start(s->rvdk);
	td_start(s->om);
	unsetenv("KETENPOST_CLOCK_FILE");  /* the test itself keeps real time */
}

static void
s_stop(struct scen *s)
{
	td_chain_stop_all(&s->c);
}

/* Send at simulated time `at` and wait until it is receipted. */
static void
s_send_at(struct scen *s, uint64_t at, td_org_t *from, const char *to,
    const char *type, const char *ref, const char *json,
    const uint8_t *reply_to, uint8_t id[16])
{
	s_clock(s, at);
	td_send(from, to, type, ref, json, reply_to, id);
	cr_assert(td_wait_settled(from, 10000), "%s: not delivered", ref);
}

#define HALT_REFERRAL "{\"route\": \"halt\", \"referral_kind\": \"halt_pv\", " \
	"\"absence_kind\": \"wettelijk\", \"absence_hours\": 32, " \
	"\"age_years\": 15, \"duty_kind\": \"leerplicht\", \"culpable\": true, " \
	"\"consent_halt\": true, \"feedback_due_days\": 90}"
#define RVDK_REFERRAL "{\"route\": \"dwang_civiel\", \"referral_kind\": " \
	"\"rvdk_consult\", \"absence_kind\": \"wettelijk\", \"age_years\": 14, " \
	"\"duty_kind\": \"leerplicht\", \"feedback_due_days\": 42}"
#define HALT_POSITIVE "{\"outcome\": \"positief\", \"expected_next\": \"geen\"}"
#define HALT_NEGATIVE "{\"outcome\": \"negatief\", \"expected_next\": " \
	"\"pv_door_leerplicht\"}"
#define RVDK_CONSULT "{\"advice_kind\": \"route_consult\"}"

static Kp__Response *
s_call_ok(const td_org_t *o, Kp__Request *req)
{
	Kp__Response *r = NULL;

	cr_assert_eq(td_call(o, req, &r, 5000), 0, "no answer");
	cr_assert(r->ok, "%s", r->error);
	return r;
}

static Kp__Response *
s_report(const td_org_t *o, uint64_t at)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ReportRequest q = KP__REPORT_REQUEST__INIT;

	q.has_at_ms = 1;
	q.at_ms = at;
	req.op_case = KP__REQUEST__OP_REPORT;
	req.report = &q;
	return s_call_ok(o, &req);
}

static const Kp__RouteReport *
s_route(const Kp__Response *r, Kp__Route route)
{
	size_t i;

	for (i = 0; i < r->report->n_routes; i++)
		if (r->report->routes[i]->route == route)
			return r->report->routes[i];
	cr_assert_fail("no route %d in the report", route);
	return NULL;
}

static uint32_t
s_outcome_count(const Kp__RouteReport *rr, const char *name)
{
	size_t i;

	for (i = 0; i < rr->n_outcomes; i++)
		if (strcmp(rr->outcomes[i]->outcome, name) == 0)
			return rr->outcomes[i]->count;
	return 0;
}

/*
 * A case referred twice on one route within one month counts as one case
 * of that route and of that month, beside two referrals (the report counts
 * distinct cases with a set, not by comparing each row with those seen).
 */
Test(scenario, a_case_referred_twice_counts_once)
{
	struct scen s;
	uint8_t id[3][16];
	const Kp__RouteReport *rr;
	Kp__Response *r;
	uint32_t month_cases = 0, month_refs = 0;
	size_t i;

	s_start(&s);
	s_send_at(&s, T0, s.lp, OIN_HALT, "referral", "TWICE-1",
	    HALT_REFERRAL, NULL, id[0]);
	s_send_at(&s, T0 + DAY, s.lp, OIN_HALT, "referral", "TWICE-1",
	    HALT_REFERRAL, NULL, id[1]);
	s_send_at(&s, T0 + 2 * DAY, s.lp, OIN_HALT, "referral", "ONCE-2",
	    HALT_REFERRAL, NULL, id[2]);
	r = s_report(s.lp, T0 + 3 * DAY);
	rr = s_route(r, KP__ROUTE__ROUTE_HALT);
	cr_assert_eq(rr->referrals, 3);
	cr_assert_eq(rr->cases, 2);
	for (i = 0; i < r->report->n_months; i++) {
		month_cases += r->report->months[i]->cases;
		month_refs += r->report->months[i]->referrals;
	}
	cr_assert_eq(month_refs, 3);
	cr_assert_eq(month_cases, 2, "a case counted once in its month");
	kp__response__free_unpacked(r, NULL);
	s_stop(&s);
}

/*
 * Five Halt referrals and three RvdK referrals, all at T0.  Halt answers
 * after 10, 20.5, 40 and 70 days (lead time 90 d) and never for the fifth;
 * RvdK after 5, 12 and 50 days (lead time 42 d).
 */
Test(scenario, report_figures_by_hand)
{
	struct scen s;
	uint8_t halt_ref[5][16], rvdk_ref[3][16], ans[16];
	const uint64_t halt_after[4] = { 10 * DAY, 20 * DAY + 12 * HOUR,
	    40 * DAY, 70 * DAY };
	const uint64_t rvdk_after[3] = { 5 * DAY, 12 * DAY, 50 * DAY };
	const Kp__RouteReport *rr;
	Kp__Response *r;
	char ref[32];
	int i;

	s_start(&s);
	for (i = 0; i < 5; i++) {
		snprintf(ref, sizeof(ref), "H-%d", i + 1);
		s_send_at(&s, T0, s.lp, OIN_HALT, "referral", ref,
		    HALT_REFERRAL, NULL, halt_ref[i]);
	}
	for (i = 0; i < 3; i++) {
		snprintf(ref, sizeof(ref), "R-%d", i + 1);
		s_send_at(&s, T0, s.lp, OIN_RVDK, "referral", ref,
		    RVDK_REFERRAL, NULL, rvdk_ref[i]);
	}
	for (i = 0; i < 4; i++)
		s_send_at(&s, T0 + halt_after[i], s.halt, OIN_LEERPLICHT,
		    "halt_outcome", "HALT-X", i == 2 ? HALT_NEGATIVE :
		    HALT_POSITIVE, halt_ref[i], ans);
	for (i = 0; i < 3; i++)
		s_send_at(&s, T0 + rvdk_after[i], s.rvdk, OIN_LEERPLICHT,
		    "rvdk_advice", "RVDK-X", RVDK_CONSULT, rvdk_ref[i], ans);

	r = s_report(s.lp, T0 + 100 * DAY);
	rr = s_route(r, KP__ROUTE__ROUTE_HALT);
	cr_assert_eq(rr->referrals, 5);
	cr_assert_eq(rr->cases, 5);
	cr_assert_eq(rr->n_partners, 1);
	cr_assert_eq(rr->partners[0]->expected, 5);
	cr_assert_eq(rr->partners[0]->answered, 4);
	/* every answer came before day 90 */
	cr_assert_eq(rr->partners[0]->within_lead_time, 4);
	/* sorted 10, 20.5, 40, 70: even count, (20.5 + 40) / 2 = 30.25 */
	cr_assert_float_eq(rr->partners[0]->median_days, 30.25, 1e-6);
	/* nearest rank ceil(0.9 * 4) = 4: the 4th value, 70 */
	cr_assert_float_eq(rr->partners[0]->p90_days, 70.0, 1e-6);
	/* the fifth fell due at T0 + 90 d <= T0 + 100 d */
	cr_assert_eq(rr->partners[0]->overdue_now, 1);
	cr_assert_eq(rr->overdue_now, 1);
	/* outcomes: 3 positief (10, 20.5, 70), 1 negatief (40), 1 overdue */
	cr_assert_eq(s_outcome_count(rr, "positief"), 3);
	cr_assert_eq(s_outcome_count(rr, "negatief"), 1);
	cr_assert_eq(s_outcome_count(rr, "no answer (overdue)"), 1);

	rr = s_route(r, KP__ROUTE__ROUTE_DWANG_CIVIEL);
	cr_assert_eq(rr->referrals, 3);
	cr_assert_eq(rr->partners[0]->answered, 3);
	/* 5 and 12 within 42 d, 50 late: 2 within */
	cr_assert_eq(rr->partners[0]->within_lead_time, 2);
	/* sorted 5, 12, 50: odd count, the middle one, 12 */
	cr_assert_float_eq(rr->partners[0]->median_days, 12.0, 1e-6);
	/* nearest rank ceil(0.9 * 3) = ceil(2.7) = 3: 50 */
	cr_assert_float_eq(rr->partners[0]->p90_days, 50.0, 1e-6);
	kp__response__free_unpacked(r, NULL);
	s_stop(&s);
}

static Kp__Response *
s_cases_at(const td_org_t *o, uint64_t at)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__CasesRequest q = KP__CASES_REQUEST__INIT;

	q.has_at_ms = 1;
	q.at_ms = at;
	req.op_case = KP__REQUEST__OP_CASES;
	req.cases = &q;
	return s_call_ok(o, &req);
}

static Kp__Response *
s_case_at(const td_org_t *o, const char *ref, uint64_t at)
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

/* remind REF now: the number of reminders sent. */
static size_t
s_remind(struct scen *s, uint64_t now, const char *ref)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__RemindRequest q = KP__REMIND_REQUEST__INIT;
	Kp__Response *r;
	size_t n;

	s_clock(s, now);
	q.case_ref = (char *)ref;
	req.op_case = KP__REQUEST__OP_REMIND;
	req.remind = &q;
	r = s_call_ok(s->lp, &req);
	n = r->remind->n_event_ids;
	kp__response__free_unpacked(r, NULL);
	/* reminders are queued for the outbox scan, whose first attempt is
	 * one retry interval (at most 2 s in the test config) later */
	s_clock(s, now + 10000);
	cr_assert(td_wait_settled(s->lp, 10000));
	return n;
}

static const Kp__CaseSummary *
s_summary(const Kp__Response *r, const char *ref)
{
	size_t i;

	for (i = 0; i < r->cases->n_cases; i++)
		if (strcmp(r->cases->cases[i]->case_ref, ref) == 0)
			return r->cases->cases[i];
	return NULL;
}

/* The days_overdue of the last reminder in Halt's inbox. */
static uint32_t
s_last_reminder_days(const td_org_t *o)
{
	Kp__Response *in = td_inbox(o, true);
	Kp__InboxItem *it = NULL;
	Kp__Reminder *rem;
	uint32_t d;
	size_t i;

	for (i = 0; i < in->inbox->n_items; i++)
		if (in->inbox->items[i]->event_type ==
		    KP__EVENT_TYPE__EVENT_TYPE_REMINDER)
			it = in->inbox->items[i];
	cr_assert_not_null(it, "no reminder received");
	rem = kp__reminder__unpack(NULL, it->payload.len, it->payload.data);
	cr_assert_not_null(rem);
	d = rem->days_overdue;
	kp__reminder__free_unpacked(rem, NULL);
	kp__response__free_unpacked(in, NULL);
	return d;
}

/*
 * As of a moment, only what existed then counts; remind is about now.
 *   referral to Halt at T0 (due T0 + 90 d), never answered;
 *   B-1: referral to RvdK at T0 (due T0 + 42 d), reminded at T0 + 45 d,
 *        answered at T0 + 50 d (late);
 *   C-1: referral to Halt at T0 + 60 d (due T0 + 150 d);
 *   A-1 reminded at T0 + 100 d.
 */
Test(scenario, as_of_views_and_remind_now)
{
	struct scen s;
	uint8_t a1[16], b1[16], c1[16], ans[16];
	const Kp__CaseSummary *cs;
	const Kp__RouteReport *rr;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__RemindRequest q = KP__REMIND_REQUEST__INIT;
	Kp__Response *r;

	s_start(&s);
	s_send_at(&s, T0, s.lp, OIN_HALT, "referral", "A-1", HALT_REFERRAL,
	    NULL, a1);
	s_send_at(&s, T0, s.lp, OIN_RVDK, "referral", "B-1", RVDK_REFERRAL,
	    NULL, b1);
	/* T0 + 45 d: A-1 is not due (day 90): no rappel for it; B-1 is 3
	 * days overdue (45 - 42 = 3) */
	cr_assert_eq(s_remind(&s, T0 + 45 * DAY, "A-1"), 0);
	cr_assert_eq(s_remind(&s, T0 + 45 * DAY, "B-1"), 1);
	s_send_at(&s, T0 + 50 * DAY, s.rvdk, OIN_LEERPLICHT, "rvdk_advice",
	    "RV-1", RVDK_CONSULT, b1, ans);
	s_send_at(&s, T0 + 60 * DAY, s.lp, OIN_HALT, "referral", "C-1",
	    HALT_REFERRAL, NULL, c1);
	/* T0 + 100 d: B-1 was answered: nothing to remind; A-1 is
	 * 100 - 90 = 10 days overdue */
	cr_assert_eq(s_remind(&s, T0 + 100 * DAY, "B-1"), 0);
	cr_assert_eq(s_remind(&s, T0 + 100 * DAY, "A-1"), 1);
	cr_assert_eq(s_last_reminder_days(s.halt), 10);
	/* remind with an `at` is refused, and sends nothing */
	q.case_ref = "A-1";
	q.has_at_ms = 1;
	q.at_ms = T0 + 200 * DAY;
	req.op_case = KP__REQUEST__OP_REMIND;
	req.remind = &q;
	cr_assert_eq(td_call(s.lp, &req, &r, 5000), 0);
	cr_assert_not(r->ok);
	cr_assert(strstr(r->error, "takes no 'at'") != NULL, "%s", r->error);
	kp__response__free_unpacked(r, NULL);

	/* cases as of T0 + 46 d: C-1 did not exist; B-1 had its referral
	 * and one reminder (2 events), overdue, not yet answered; A-1 one
	 * event, open */
	r = s_cases_at(s.lp, T0 + 46 * DAY);
	cr_assert_eq(r->cases->n_cases, 2);
	cr_assert_null(s_summary(r, "C-1"));
	cs = s_summary(r, "B-1");
	cr_assert_not_null(cs);
	cr_assert_eq(cs->events, 2);
	cr_assert_eq(cs->overdue, 1);
	cr_assert_eq(cs->answered, 0);
	cr_assert_eq(cs->last_at_ms, T0 + 45 * DAY);
	cs = s_summary(r, "A-1");
	cr_assert_not_null(cs);
	cr_assert_eq(cs->events, 1);
	cr_assert_eq(cs->open, 1);
	kp__response__free_unpacked(r, NULL);
	/* and now (T0 + 100 d): three cases; B-1 has 3 events, answered */
	r = s_cases_at(s.lp, T0 + 100 * DAY);
	cr_assert_eq(r->cases->n_cases, 3);
	cs = s_summary(r, "B-1");
	cr_assert_eq(cs->events, 3);
	cr_assert_eq(cs->answered, 1);
	kp__response__free_unpacked(r, NULL);

	/* case A-1 as of T0 + 46 d: the referral only, no reminder yet */
	r = s_case_at(s.lp, "A-1", T0 + 46 * DAY);
	cr_assert_eq(r->case_timeline->n_timeline, 1);
	cr_assert_eq(r->case_timeline->expectations[0]->reminders, 0);
	cr_assert_eq(r->case_timeline->expectations[0]->state,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN);
	kp__response__free_unpacked(r, NULL);
	r = s_case_at(s.lp, "A-1", T0 + 100 * DAY);
	cr_assert_eq(r->case_timeline->n_timeline, 2);
	cr_assert_eq(r->case_timeline->expectations[0]->reminders, 1);
	cr_assert_eq(r->case_timeline->expectations[0]->state,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE);
	kp__response__free_unpacked(r, NULL);
	/* case B-1 as of T0 + 46 d: no answer yet, one reminder */
	r = s_case_at(s.lp, "B-1", T0 + 46 * DAY);
	cr_assert_eq(r->case_timeline->n_timeline, 2);
	cr_assert_eq(r->case_timeline->expectations[0]->reminders, 1);
	cr_assert_eq(r->case_timeline->expectations[0]->state,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE);
	cr_assert_not(r->case_timeline->expectations[0]->has_answered_by);
	cr_assert_str_eq(r->case_timeline->routes[0]->state, "overdue");
	cr_assert_null(r->case_timeline->routes[0]->outcome);
	kp__response__free_unpacked(r, NULL);

	/* report as of T0 + 46 d: Halt 1 referral (C-1 came later), awaited;
	 * civil 1 referral, overdue, none answered */
	r = s_report(s.lp, T0 + 46 * DAY);
	rr = s_route(r, KP__ROUTE__ROUTE_HALT);
	cr_assert_eq(rr->referrals, 1);
	cr_assert_eq(rr->cases, 1);
	cr_assert_eq(s_outcome_count(rr, "awaited"), 1);
	cr_assert_eq(rr->overdue_now, 0);
	rr = s_route(r, KP__ROUTE__ROUTE_DWANG_CIVIEL);
	cr_assert_eq(rr->referrals, 1);
	cr_assert_eq(rr->partners[0]->answered, 0);
	cr_assert_eq(rr->overdue_now, 1);
	kp__response__free_unpacked(r, NULL);
	/* as of T0 + 100 d: Halt 2 referrals, A-1 overdue (90 <= 100), C-1
	 * open (150 > 100); civil answered after 50 days, late (50 > 42) */
	r = s_report(s.lp, T0 + 100 * DAY);
	rr = s_route(r, KP__ROUTE__ROUTE_HALT);
	cr_assert_eq(rr->referrals, 2);
	cr_assert_eq(rr->overdue_now, 1);
	cr_assert_eq(s_outcome_count(rr, "awaited"), 1);
	rr = s_route(r, KP__ROUTE__ROUTE_DWANG_CIVIEL);
	cr_assert_eq(rr->partners[0]->answered, 1);
	cr_assert_eq(rr->partners[0]->within_lead_time, 0);
	cr_assert_float_eq(rr->partners[0]->median_days, 50.0, 1e-6);
	kp__response__free_unpacked(r, NULL);
	s_stop(&s);
}

/* Send and expect a refusal whose error contains `want`. */
static void
s_send_refused(const td_org_t *from, const char *to, int type,
    const char *ref, const char *json, const uint8_t *reply_to,
    const char *want)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest sr = KP__SEND_REQUEST__INIT;
	ProtobufCMessage *ev = NULL;
	Kp__Response *r = NULL;
	json_t *j = json_loads(json, 0, NULL);
	uint8_t buf[1024];
	kp_err_t e;

	cr_assert_not_null(j);
	cr_assert_eq(pbjson_from_json(events_descriptor(type), j, &ev, &e), 0,
	    "%s", e.msg);
	json_decref(j);
	sr.has_event_type = sr.has_payload = 1;
	sr.event_type = (Kp__EventType)type;
	sr.payload = (ProtobufCBinaryData){ protobuf_c_message_pack(ev, buf),
	    buf };
	sr.to_oin = (char *)to;
	sr.case_ref = (char *)ref;
	if (reply_to != NULL) {
		sr.has_in_reply_to = 1;
		sr.in_reply_to = (ProtobufCBinaryData){ 16, (uint8_t *)reply_to };
	}
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &sr;
	cr_assert_eq(td_call(from, &req, &r, 5000), 0, "no answer");
	cr_assert_not(r->ok, "%s: accepted, wanted: %s", ref, want);
	cr_assert(strstr(r->error, want) != NULL, "%s", r->error);
	kp__response__free_unpacked(r, NULL);
	pbjson_free(ev);
}

#define OM_REFERRAL(days) "{\"route\": \"dwang_strafrechtelijk\", " \
	"\"referral_kind\": \"pv\", \"absence_kind\": \"wettelijk\", " \
	"\"age_years\": 16, \"duty_kind\": \"leerplicht\", " \
	"\"feedback_due_days\": " #days "}"

/* The referral's own feedback_due_days is the due date (within the
 * policy's bounds), and outside them the send is refused. */
Test(scenario, referral_lead_time_sets_the_due_date)
{
	struct scen s;
	uint8_t id[16];
	Kp__Response *r, *out;

	s_start(&s);
	/* OM: 60 days, inside 30..180: due T0 + 60 d, not the policy's 120 */
	s_send_at(&s, T0, s.lp, OIN_OM, "referral", "D-1", OM_REFERRAL(60),
	    NULL, id);
	r = s_case_at(s.lp, "D-1", T0 + DAY);
	cr_assert_eq(r->case_timeline->expectations[0]->due_at_ms, T0 + 60 * DAY);
	kp__response__free_unpacked(r, NULL);
	/* as of day 61 it is overdue (60 <= 61) */
	r = s_case_at(s.lp, "D-1", T0 + 61 * DAY);
	cr_assert_eq(r->case_timeline->expectations[0]->state,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE);
	kp__response__free_unpacked(r, NULL);
	/* 200 days to OM, 20 days to OM: refused, nothing queued */
	s_send_refused(s.lp, OIN_OM, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, "D-2",
	    OM_REFERRAL(200), NULL, "rule 'lead time': field "
	    "'feedback_due_days' is 200 days, outside 30..180 days for om");
	s_send_refused(s.lp, OIN_OM, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, "D-3",
	    OM_REFERRAL(20), NULL, "is 20 days, outside 30..180 days for om");
	out = td_outbox(s.lp);
	cr_assert_eq(out->outbox->n_items, 1, "only D-1 was sent");
	kp__response__free_unpacked(out, NULL);
	s_stop(&s);
}

/*
 * An event sealed by hand as organisation `as` and delivered on a raw
 * connection, so that the receiver's own checks are what is tested (an
 * honest daemon refuses such a send itself).  Created at `created`, with
 * a fresh random case pseudonym and in_reply_to `reply_to`.  Returns the
 * reason in the receipt.
 */
static int
s_rogue_send(struct scen *s, const char *as, const td_org_t *to,
    const char *type, const char *json, const uint8_t reply_to[16],
    uint64_t created)
{
	int et = events_type_from_name(type), problems = 0, zero = 0;
	int tmo = 5000, reason = -1;
	ProtobufCMessage *ev = NULL;
	json_t *j = json_loads(json, 0, NULL);
	policy_t *pol = NULL;
	const policy_rule_t *rule;
	chain_t *ch = NULL;
	envelope_meta_t m;
	uint8_t payload[4096], digest[32], *env = NULL, *frame;
	char path[4200];
	size_t plen, elen = 0;
	void *ctx, *sock;
	const partner_t *srv;
	receipt_t rc;
	zmq_msg_t msg;
	kp_err_t e;

	snprintf(path, sizeof(path), "%s/policy.ini", s->c.dir);
	cr_assert(policy_load(path, &pol, NULL, NULL, &problems, &e) == 0,
	    "%s", e.msg);
	rule = policy_rule(pol, et);
	cr_assert(chain_open_oin(s->c.dir, as, NULL, NULL, &ch, &e) == 0, "%s",
	    e.msg);
	cr_assert(pbjson_from_json(events_descriptor(et), j, &ev, &e) == 0,
	    "%s", e.msg);
	plen = protobuf_c_message_pack(ev, payload);
	memset(&m, 0, sizeof(m));
	kp_uuid_new(m.event_id);
	m.event_type = et;
	snprintf(m.purpose, sizeof(m.purpose), "%s", policy_rule_purpose(rule));
	snprintf(m.legal_basis, sizeof(m.legal_basis), "%s",
	    policy_rule_legal_basis(rule));
	memcpy(m.policy_hash, policy_hash(pol), 32);
	m.created_at_ms = created;
	m.expires_at_ms = created + DAY;
	randombytes_buf(m.case_ref, 32);
	m.has_reply_to = reply_to != NULL;
	if (reply_to != NULL)
		memcpy(m.in_reply_to, reply_to, 16);
	cr_assert(envelope_seal(ch->dir, directory_find(ch->dir, to->oin), &m,
	    payload, plen, &env, &elen, digest, &e) == 0, "%s", e.msg);

	srv = peer_partner(directory_find(ch->dir, to->oin));
	ctx = zmq_ctx_new();
	sock = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, partner_transport_pk(srv), 32);
	zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, partner_transport_pk(
	    identity_public(ch->self)), 32);
	zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, identity_transport_sk(
	    ch->self), 32);
	cr_assert_eq(zmq_connect(sock, to->listen), 0);
	cr_assert_not_null(frame = malloc(elen + 1));
	frame[0] = 0x01;                  /* an envelope frame */
	memcpy(frame + 1, env, elen);
	cr_assert(zmq_send(sock, frame, elen + 1, 0) >= 0);
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, sock, 0) >= 0 && zmq_msg_size(&msg) > 1 &&
	    receipt_verify(ch->dir, (uint8_t *)zmq_msg_data(&msg) + 1,
	    zmq_msg_size(&msg) - 1, &rc, &e) == 0)
		reason = rc.reason;
	zmq_msg_close(&msg);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	free(frame);
	free(env);
	pbjson_free(ev);
	json_decref(j);
	chain_close(&ch);
	policy_destroy(&pol);
	return reason;
}

/* The local case of the received event `id` at o, NULL if none. */
static char *
s_inbox_case(const td_org_t *o, const uint8_t id[16])
{
	Kp__Response *in = td_inbox(o, true);
	char *ref = NULL;
	size_t i;

	for (i = 0; i < in->inbox->n_items; i++)
		if (in->inbox->items[i]->event_id.len == 16 && memcmp(
		    in->inbox->items[i]->event_id.data, id, 16) == 0 &&
		    in->inbox->items[i]->case_ref != NULL)
			ref = strdup(in->inbox->items[i]->case_ref);
	kp__response__free_unpacked(in, NULL);
	return ref;
}

/* in_reply_to names an event exchanged with the same partner, on send
 * and on receipt; an answer naming our referral lands on its case even
 * under a pseudonym we never sent. */
Test(scenario, in_reply_to_must_be_exchanged_with_the_same_partner)
{
	struct scen s;
	uint8_t h1[16], r1[16], ans[16], bogus[16];
	Kp__Response *r, *in;
	char *ref;

	s_start(&s);
	s_send_at(&s, T0, s.lp, OIN_HALT, "referral", "E-1", HALT_REFERRAL,
	    NULL, h1);
	s_send_at(&s, T0, s.lp, OIN_RVDK, "referral", "E-2", RVDK_REFERRAL,
	    NULL, r1);
	/* on send: Leerplicht's referral to OM "in reply to" an event it
	 * exchanged with Halt, or to no event at all */
	s_send_refused(s.lp, OIN_OM, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, "E-3",
	    OM_REFERRAL(60), h1, "names no event sent to or received from "
	    OIN_OM);
	randombytes_buf(bogus, 16);
	s_send_refused(s.lp, OIN_OM, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, "E-3",
	    OM_REFERRAL(60), bogus, "a reply must be about an event exchanged "
	    "with the same partner");
	/* Halt cannot answer RvdK's referral either */
	s_send_refused(s.halt, OIN_LEERPLICHT,
	    KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME, "X", HALT_POSITIVE, r1,
	    "names no event sent to or received from " OIN_LEERPLICHT);
	/* on receipt: Halt's answer naming the RvdK referral is refused */
	s_clock(&s, T0 + DAY);
	cr_assert_eq(s_rogue_send(&s, OIN_HALT, s.lp, "halt_outcome",
	    HALT_POSITIVE, r1, T0 + DAY), KP__REASON__REASON_UNKNOWN_CASE);
	in = td_inbox(s.lp, true);
	cr_assert_eq(in->inbox->n_items, 0, "nothing filed");
	kp__response__free_unpacked(in, NULL);
	/* an answer naming the Halt referral under a pseudonym never sent:
	 * accepted, filed under E-1, closing its expectation */
	cr_assert_eq(s_rogue_send(&s, OIN_HALT, s.lp, "halt_outcome",
	    HALT_POSITIVE, h1, T0 + DAY), KP__REASON__REASON_NONE);
	in = td_inbox(s.lp, true);
	cr_assert_eq(in->inbox->n_items, 1);
	memcpy(ans, in->inbox->items[0]->event_id.data, 16);
	kp__response__free_unpacked(in, NULL);
	ref = s_inbox_case(s.lp, ans);
	cr_assert_not_null(ref, "filed under no case");
	cr_assert_str_eq(ref, "E-1");
	free(ref);
	r = s_case_at(s.lp, "E-1", T0 + 2 * DAY);
	cr_assert_eq(r->case_timeline->n_timeline, 2);
	cr_assert_eq(r->case_timeline->expectations[0]->state,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED);
	cr_assert(r->case_timeline->timeline[1]->has_in_reply_to);
	cr_assert_arr_eq(r->case_timeline->timeline[1]->in_reply_to.data, h1,
	    16);
	cr_assert_eq(r->case_timeline->timeline[1]->route,
	    KP__ROUTE__ROUTE_HALT);
	kp__response__free_unpacked(r, NULL);
	s_stop(&s);
}

#define JBT_PHASE(p, extra) "{\"phase\": \"" p "\", \"request_kind\": " \
	"\"vtb\", \"filed_by\": \"leerplicht\"" extra "}"
#define RVDK_STARTED "{\"advice_kind\": \"onderzoek_status\", " \
	"\"investigation\": \"gestart\"}"
#define RVDK_DONE "{\"advice_kind\": \"onderzoek_status\", " \
	"\"investigation\": \"afgerond\", \"civil_measure\": \"ots\"}"
#define RVDK_STRAF "{\"advice_kind\": \"strafadvies\", \"strafadvies\": " \
	"[\"werkstraf\"]}"

static const Kp__TimelineItem *
s_item(const Kp__Response *r, const uint8_t id[16])
{
	size_t i;

	for (i = 0; i < r->case_timeline->n_timeline; i++)
		if (memcmp(r->case_timeline->timeline[i]->event_id.data, id,
		    16) == 0)
			return r->case_timeline->timeline[i];
	cr_assert_fail("event not on the timeline");
	return NULL;
}

/*
 * Answers in phases (mas.ini: jbt_request phase scheduled and rvdk_advice
 * investigation gestart are interim):
 *   J-1: VTB to the JBT at T0 (due T0 + 28 d); "scheduled" at T0 + 10 d
 *        (final now due 10 + 42 = T0 + 52 d); "decided" (rvdk_onderzoek)
 *        at T0 + 40 d, within 52: answered, lead time 40 days;
 *   K-1: referral to RvdK at T0 (due T0 + 42 d); "investigation gestart"
 *        at T0 + 20 d (final due 20 + 90 = T0 + 110 d); the result at
 *        T0 + 100 d, within 110; a follow-up strafadvies at T0 + 105 d.
 */
Test(scenario, answers_in_phases)
{
	struct scen s;
	uint8_t vtb[16], sched[16], dec[16], k1[16], started[16], done[16];
	uint8_t follow[16];
	const Kp__TimelineItem *t;
	const Kp__RouteReport *rr;
	Kp__Response *r;

	s_start(&s);
	s_send_at(&s, T0, s.lp, OIN_JBT, "jbt_request", "J-1",
	    JBT_PHASE("request", ""), NULL, vtb);
	s_send_at(&s, T0, s.lp, OIN_RVDK, "referral", "K-1", RVDK_REFERRAL,
	    NULL, k1);
	s_send_at(&s, T0 + 10 * DAY, s.jbt, OIN_LEERPLICHT, "jbt_request",
	    "JBT-1", JBT_PHASE("scheduled", ""), vtb, sched);
	s_send_at(&s, T0 + 20 * DAY, s.rvdk, OIN_LEERPLICHT, "rvdk_advice",
	    "RV-K1", RVDK_STARTED, k1, started);
	/* the phases are logged by event id and partner, never by case */
	cr_assert(td_log_has(s.lp, "sent interim answer", 5000));
	cr_expect_not(td_log_has(s.lp, "J-1", 0), "a case reference logged");
	cr_expect_not(td_log_has(s.lp, "K-1", 0), "a case reference logged");

	/* day 5: before the phase, due T0 + 28 d, open */
	r = s_case_at(s.lp, "J-1", T0 + 5 * DAY);
	cr_assert_eq(r->case_timeline->expectations[0]->due_at_ms, T0 + 28 * DAY);
	cr_assert_not(r->case_timeline->expectations[0]->has_interim_by);
	kp__response__free_unpacked(r, NULL);
	/* day 30: past the first due date (28) but the phase moved it to
	 * 52: open, route "interim" with outcome "scheduled" */
	r = s_case_at(s.lp, "J-1", T0 + 30 * DAY);
	cr_assert_eq(r->case_timeline->expectations[0]->state,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN);
	cr_assert_eq(r->case_timeline->expectations[0]->due_at_ms, T0 + 52 * DAY);
	cr_assert_eq(r->case_timeline->expectations[0]->interim_at_ms,
	    T0 + 10 * DAY);
	cr_assert_arr_eq(r->case_timeline->expectations[0]->interim_by.data,
	    sched, 16);
	cr_assert_str_eq(r->case_timeline->routes[0]->state, "interim");
	cr_assert_str_eq(r->case_timeline->routes[0]->outcome, "scheduled");
	t = s_item(r, sched);
	cr_assert_str_eq(t->phase, "interim");
	cr_assert_eq(t->route, KP__ROUTE__ROUTE_DWANG_CIVIEL);
	kp__response__free_unpacked(r, NULL);
	/* K-1 on day 50: past 42, but the investigation started: open */
	r = s_case_at(s.lp, "K-1", T0 + 50 * DAY);
	cr_assert_eq(r->case_timeline->expectations[0]->state,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN);
	cr_assert_eq(r->case_timeline->expectations[0]->due_at_ms,
	    T0 + 110 * DAY);
	cr_assert_str_eq(r->case_timeline->routes[0]->state, "interim");
	kp__response__free_unpacked(r, NULL);

	s_send_at(&s, T0 + 40 * DAY, s.jbt, OIN_LEERPLICHT, "jbt_request",
	    "JBT-1", JBT_PHASE("decided", ", \"decision\": \"rvdk_onderzoek\""),
	    vtb, dec);
	s_send_at(&s, T0 + 100 * DAY, s.rvdk, OIN_LEERPLICHT, "rvdk_advice",
	    "RV-K1", RVDK_DONE, k1, done);
	s_send_at(&s, T0 + 105 * DAY, s.rvdk, OIN_LEERPLICHT, "rvdk_advice",
	    "RV-K1", RVDK_STRAF, NULL, follow);

	/* the decision is the route's outcome; the answer is final */
	r = s_case_at(s.lp, "J-1", T0 + 60 * DAY);
	cr_assert_eq(r->case_timeline->expectations[0]->state,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED);
	cr_assert_arr_eq(r->case_timeline->expectations[0]->answered_by.data,
	    dec, 16);
	cr_assert_str_eq(r->case_timeline->routes[0]->state, "outcome");
	cr_assert_str_eq(r->case_timeline->routes[0]->outcome,
	    "rvdk_onderzoek");
	t = s_item(r, dec);
	cr_assert_str_eq(t->phase, "final");
	cr_assert_eq(t->route, KP__ROUTE__ROUTE_DWANG_CIVIEL);
	kp__response__free_unpacked(r, NULL);
	/* K-1: result within 110; the follow-up carries its route too */
	r = s_case_at(s.lp, "K-1", T0 + 120 * DAY);
	cr_assert_eq(r->case_timeline->n_timeline, 4);
	cr_assert_eq(r->case_timeline->expectations[0]->state,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED);
	cr_assert_str_eq(s_item(r, started)->phase, "interim");
	cr_assert_str_eq(s_item(r, done)->phase, "final");
	t = s_item(r, follow);
	cr_assert_null(t->phase, "a follow-up answers no expectation");
	cr_assert_eq(t->route, KP__ROUTE__ROUTE_DWANG_CIVIEL);
	kp__response__free_unpacked(r, NULL);

	/* the report at day 120, civil route: JBT answered after 40 days
	 * (within its 52), RvdK after 100 (within its 110) */
	r = s_report(s.lp, T0 + 120 * DAY);
	rr = s_route(r, KP__ROUTE__ROUTE_DWANG_CIVIEL);
	cr_assert_eq(rr->referrals, 2);
	cr_assert_eq(s_outcome_count(rr, "rvdk_onderzoek"), 1);
	cr_assert_eq(s_outcome_count(rr, "onderzoek_status"), 1);
	cr_assert_eq(rr->overdue_now, 0);
	kp__response__free_unpacked(r, NULL);
	/* and at day 30: both in a phase (JBT since day 10, RvdK since day
	 * 20), neither overdue: JBT due 52, RvdK 110 */
	r = s_report(s.lp, T0 + 30 * DAY);
	rr = s_route(r, KP__ROUTE__ROUTE_DWANG_CIVIEL);
	cr_assert_eq(s_outcome_count(rr, "interim: scheduled"), 1);
	cr_assert_eq(s_outcome_count(rr, "interim: onderzoek_status"), 1);
	cr_assert_eq(rr->overdue_now, 0, "phases moved both due dates");
	kp__response__free_unpacked(r, NULL);
	s_stop(&s);
}

/* Per recipient: the Halt-only fields go to Halt and nowhere else, on
 * send and on receipt (mas.ini only_to.*). */
Test(scenario, halt_only_fields_go_only_to_halt)
{
	struct scen s;
	uint8_t id[16];
	Kp__Response *in;

	s_start(&s);
	/* to Halt: consent_halt is what its decision needs */
	s_send_at(&s, T0, s.lp, OIN_HALT, "referral", "F-1", HALT_REFERRAL,
	    NULL, id);
	/* to OM and RvdK: refused on send, nothing queued */
	s_send_refused(s.lp, OIN_OM, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, "F-2",
	    "{\"route\": \"dwang_strafrechtelijk\", \"referral_kind\": \"pv\", "
	    "\"absence_kind\": \"wettelijk\", \"age_years\": 16, "
	    "\"duty_kind\": \"leerplicht\", \"feedback_due_days\": 120, "
	    "\"prior_halt_leerplicht\": true}", NULL, "rule 'only to': field "
	    "'prior_halt_leerplicht' may go only to halt, not to om");
	s_send_refused(s.lp, OIN_RVDK, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL, "F-3",
	    "{\"route\": \"dwang_civiel\", \"referral_kind\": \"rvdk_consult\", "
	    "\"absence_kind\": \"wettelijk\", \"age_years\": 14, "
	    "\"duty_kind\": \"leerplicht\", \"feedback_due_days\": 42, "
	    "\"parallel_routes\": [\"halt\"]}", NULL, "rule 'only to': field "
	    "'parallel_routes' may go only to halt, not to rvdk");
	/* on receipt: OM refuses one sealed by hand */
	cr_assert_eq(s_rogue_send(&s, OIN_LEERPLICHT, s.om, "referral",
	    "{\"route\": \"dwang_strafrechtelijk\", \"referral_kind\": \"pv\", "
	    "\"absence_kind\": \"wettelijk\", \"age_years\": 16, "
	    "\"duty_kind\": \"leerplicht\", \"feedback_due_days\": 120, "
	    "\"consent_halt\": true}", NULL, T0),
	    KP__REASON__REASON_POLICY_VIOLATION);
	in = td_inbox(s.om, true);
	cr_assert_eq(in->inbox->n_items, 0);
	kp__response__free_unpacked(in, NULL);
	cr_assert(td_log_has(s.om, "rule 'only to'", 2000));
	s_stop(&s);
}

static Kp__Response *
s_link(const td_org_t *o, const uint8_t id[16], const char *ref, bool ok)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__LinkRequest q = KP__LINK_REQUEST__INIT;
	Kp__Response *r = NULL;

	q.has_event_id = 1;
	q.event_id = (ProtobufCBinaryData){ 16, (uint8_t *)id };
	q.case_ref = (char *)ref;
	req.op_case = KP__REQUEST__OP_LINK;
	req.link = &q;
	cr_assert_eq(td_call(o, &req, &r, 5000), 0, "no answer");
	cr_assert_eq(r->ok, ok, "%s", r->error ? r->error : "accepted");
	return r;
}

/*
 * The receiving organisation files a received referral under its own
 * case reference; its case and subject access then show it, later events
 * on the same case land there, and an answer sent on its own reference
 * reaches the referrer's case.
 */
Test(scenario, receiver_links_a_referral_to_its_own_case)
{
	struct scen s;
	uint8_t ref1[16], ref2[16], ans[16], none[16];
	char out[16384], uuid[37];
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SubjectRequest sq = KP__SUBJECT_REQUEST__INIT;
	Kp__Response *r;

	s_start(&s);
	s_send_at(&s, T0, s.lp, OIN_HALT, "referral", "L-1", HALT_REFERRAL,
	    NULL, ref1);
	/* before linking, Halt's case HALT-7 has nothing */
	r = s_case_at(s.halt, "HALT-7", 0);
	cr_assert_eq(r->case_timeline->n_timeline, 0);
	kp__response__free_unpacked(r, NULL);
	/* link it, by the command */
	kp_uuid_format(ref1, uuid);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost link %s "
	    "HALT-7 --lang en --config %s", test_bin(), uuid, s.halt->conf), 0,
	    "%s", out);
	cr_assert(strstr(out, "linked ") != NULL && strstr(out, "HALT-7 (1 "
	    "event filed)") != NULL, "%s", out);
	/* the same again is fine; another reference, or an unknown event,
	 * is refused */
	kp__response__free_unpacked(s_link(s.halt, ref1, "HALT-7", true), NULL);
	r = s_link(s.halt, ref1, "HALT-8", false);
	cr_assert(strstr(r->error, "already filed under another local case")
	    != NULL, "%s", r->error);
	kp__response__free_unpacked(r, NULL);
	randombytes_buf(none, 16);
	r = s_link(s.halt, none, "HALT-9", false);
	cr_assert(strstr(r->error, "was not received here") != NULL, "%s",
	    r->error);
	kp__response__free_unpacked(r, NULL);
	/* a second event on the same case lands on HALT-7 by itself */
	s_send_at(&s, T0 + DAY, s.lp, OIN_HALT, "referral", "L-1",
	    HALT_REFERRAL, NULL, ref2);
	r = s_case_at(s.halt, "HALT-7", T0 + 2 * DAY);
	cr_assert_eq(r->case_timeline->n_timeline, 2);
	cr_assert_str_eq(r->case_timeline->timeline[0]->direction, "received");
	cr_assert_str_eq(r->case_timeline->timeline[0]->summary, "route: halt");
	kp__response__free_unpacked(r, NULL);
	/* subject access at Halt: the referral with its values */
	sq.case_ref = "HALT-7";
	sq.has_with_values = sq.with_values = 1;
	req.op_case = KP__REQUEST__OP_SUBJECT;
	req.subject = &sq;
	r = s_call_ok(s.halt, &req);
	cr_assert_eq(r->subject->n_items, 2);
	cr_assert_not_null(r->subject->items[0]->values_json);
	cr_assert(strstr(r->subject->items[0]->values_json,
	    "\"consent_halt\":true") != NULL, "%s",
	    r->subject->items[0]->values_json);
	cr_assert(strstr(r->subject->items[0]->values_json,
	    "\"absence_hours\":32") != NULL, "%s",
	    r->subject->items[0]->values_json);
	kp__response__free_unpacked(r, NULL);
	sq.with_values = 0;
	r = s_call_ok(s.halt, &req);
	cr_assert_null(r->subject->items[0]->values_json, "names only");
	kp__response__free_unpacked(r, NULL);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost subject "
	    "HALT-7 --values --config %s", test_bin(), s.halt->conf), 0, "%s",
	    out);
	cr_assert(strstr(out, "values: {") != NULL, "%s", out);
	/* Halt answers on its own reference, without in_reply_to: it is
	 * Leerplicht's case L-1 (oldest open expectation: the first) */
	s_send_at(&s, T0 + 10 * DAY, s.halt, OIN_LEERPLICHT, "halt_outcome",
	    "HALT-7", HALT_POSITIVE, NULL, ans);
	r = s_case_at(s.lp, "L-1", T0 + 11 * DAY);
	cr_assert_eq(r->case_timeline->n_timeline, 3);
	cr_assert_eq(r->case_timeline->expectations[0]->state,
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED);
	cr_assert_arr_eq(r->case_timeline->expectations[0]->answered_by.data,
	    ans, 16);
	kp__response__free_unpacked(r, NULL);
	r = s_case_at(s.halt, "HALT-7", T0 + 11 * DAY);
	cr_assert_eq(r->case_timeline->n_timeline, 3, "its own answer too");
	kp__response__free_unpacked(r, NULL);
	/* case --json carries in_reply_to (ketenpost(1)) */
	s_send_at(&s, T0 + 12 * DAY, s.halt, OIN_LEERPLICHT, "halt_outcome",
	    "HALT-7", HALT_POSITIVE, ref2, ans);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost case L-1 "
	    "--json --config %s", test_bin(), s.lp->conf), 0, "%s", out);
	kp_uuid_format(ref2, uuid);
	cr_assert(strstr(out, "\"in_reply_to\"") != NULL, "%s", out);
	cr_assert(strstr(out, uuid) != NULL, "%s", out);
	s_stop(&s);
}

#define CARE_REFERRAL "{\"route\": \"vrijwillige_jeugdhulp\", " \
	"\"referral_kind\": \"wijkteam_referral\", \"absence_kind\": " \
	"\"overig\", \"age_years\": 13, \"duty_kind\": \"leerplicht\", " \
	"\"help_offered\": \"accepted\", \"feedback_due_days\": 42}"
#define CARE(p) "{\"phase\": \"" p "\"}"

static Kp__Response *
s_overdue_cases(const td_org_t *o, uint64_t at)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__CasesRequest q = KP__CASES_REQUEST__INIT;

	q.has_overdue_only = q.overdue_only = 1;
	q.has_at_ms = 1;
	q.at_ms = at;
	req.op_case = KP__REQUEST__OP_CASES;
	req.cases = &q;
	return s_call_ok(o, &req);
}

static void
s_outcome_rec(const td_org_t *o, const char *ref, Kp__AbsenceAfter v,
    bool ok)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__OutcomeRequest q = KP__OUTCOME_REQUEST__INIT;
	Kp__Response *r = NULL;

	q.case_ref = (char *)ref;
	q.has_absence = 1;
	q.absence = v;
	req.op_case = KP__REQUEST__OP_OUTCOME;
	req.outcome = &q;
	cr_assert_eq(td_call(o, &req, &r, 5000), 0);
	cr_assert_eq(r->ok, ok, "%s: %s", ref, r->error ? r->error : "ok");
	kp__response__free_unpacked(r, NULL);
}

static uint32_t
s_absence_count(const Kp__RouteReport *rr, const char *name)
{
	size_t i;

	for (i = 0; i < rr->n_absence_after; i++)
		if (strcmp(rr->absence_after[i]->outcome, name) == 0)
			return rr->absence_after[i]->count;
	cr_assert_fail("no absence label %s", name);
	return 0;
}

/*
 * The voluntary-care route with a care partner (role zorg), all referred
 * at T0 with the 6-week check (42 days) as lead time:
 *   V-1: care started day 30 (a phase: the end now due 30 + 180 = 210),
 *        ended day 150: answered within, lead time 150 days;
 *   V-2: no contact, day 20: answered within, lead time 20 days;
 *   V-3: never a word: overdue from day 42;
 *   V-4: care started day 50, after the check fell due (42).
 * The officer records the absence after the route on day 155: V-1
 * stopped, V-2 continued, V-4 reduced; V-3 not recorded.
 */
Test(scenario, voluntary_care_route)
{
	struct scen s;
	uint8_t v[4][16], id[16];
	char ref[16], out[16384];
	const Kp__RouteReport *rr;
	Kp__Response *r;
	int i;

	s_start(&s);
	for (i = 0; i < 4; i++) {
		snprintf(ref, sizeof(ref), "V-%d", i + 1);
		s_send_at(&s, T0, s.lp, OIN_ZORG, "referral", ref, CARE_REFERRAL,
		    NULL, v[i]);
	}
	s_send_at(&s, T0 + 20 * DAY, s.zorg, OIN_LEERPLICHT, "care_notice",
	    "W-2", CARE("no_contact"), v[1], id);
	s_send_at(&s, T0 + 30 * DAY, s.zorg, OIN_LEERPLICHT, "care_notice",
	    "W-1", CARE("started"), v[0], id);
	/* the 6-week check: on day 43 V-3 and V-4 are overdue (no word
	 * yet); V-1 started (a phase), V-2 answered */
	r = s_overdue_cases(s.lp, T0 + 43 * DAY);
	cr_assert_eq(r->cases->n_cases, 2);
	cr_assert_not_null(s_summary(r, "V-3"));
	cr_assert_not_null(s_summary(r, "V-4"));
	kp__response__free_unpacked(r, NULL);
	s_send_at(&s, T0 + 50 * DAY, s.zorg, OIN_LEERPLICHT, "care_notice",
	    "W-4", CARE("started"), v[3], id);
	s_send_at(&s, T0 + 150 * DAY, s.zorg, OIN_LEERPLICHT, "care_notice",
	    "W-1", CARE("ended"), v[0], id);
	/* V-1's timeline: the start as a phase, the end as the answer */
	r = s_case_at(s.lp, "V-1", T0 + 151 * DAY);
	cr_assert_eq(r->case_timeline->n_timeline, 3);
	cr_assert_str_eq(r->case_timeline->timeline[1]->phase, "interim");
	cr_assert_str_eq(r->case_timeline->timeline[1]->summary,
	    "phase: started");
	cr_assert_str_eq(r->case_timeline->timeline[2]->phase, "final");
	cr_assert_eq(r->case_timeline->timeline[2]->route,
	    KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP);
	cr_assert_str_eq(r->case_timeline->routes[0]->outcome, "ended");
	kp__response__free_unpacked(r, NULL);

	/* the officer's record: local, on a case with a route only */
	s_clock(&s, T0 + 155 * DAY);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost outcome V-1 "
	    "--absence stopped --lang en --config %s", test_bin(), s.lp->conf),
	    0, "%s", out);
	cr_assert(strstr(out, "case V-1: absence after the route") != NULL,
	    "%s", out);
	s_outcome_rec(s.lp, "V-2", KP__ABSENCE_AFTER__ABSENCE_AFTER_CONTINUED,
	    true);
	s_outcome_rec(s.lp, "V-4", KP__ABSENCE_AFTER__ABSENCE_AFTER_REDUCED,
	    true);
	s_outcome_rec(s.lp, "NO-ROUTE", KP__ABSENCE_AFTER__ABSENCE_AFTER_STOPPED,
	    false);
	cr_assert_neq(test_sh_output(out, sizeof(out), "%s/ketenpost outcome V-1 "
	    "--absence gone --config %s", test_bin(), s.lp->conf), 0, "%s",
	    out);
	/* never shared: the care partner received only the referrals */
	cr_assert(td_wait_settled(s.lp, 10000));
	r = td_inbox(s.zorg, true);
	cr_assert_eq(r->inbox->n_items, 4);
	kp__response__free_unpacked(r, NULL);

	/* the report on day 160, route vrijwillige_jeugdhulp */
	r = s_report(s.lp, T0 + 160 * DAY);
	rr = s_route(r, KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP);
	cr_assert_eq(rr->referrals, 4);
	cr_assert_eq(rr->cases, 4);
	cr_assert_eq(s_outcome_count(rr, "ended"), 1);
	cr_assert_eq(s_outcome_count(rr, "no_contact"), 1);
	cr_assert_eq(s_outcome_count(rr, "no answer (overdue)"), 1);
	/* V-4: started on day 50, end due 50 + 180 = 230 > 160: open */
	cr_assert_eq(s_outcome_count(rr, "interim: started"), 1);
	cr_assert_eq(rr->overdue_now, 1);
	cr_assert_eq(rr->partners[0]->expected, 4);
	cr_assert_eq(rr->partners[0]->answered, 2);
	cr_assert_eq(rr->partners[0]->within_lead_time, 2);
	/* lead times 20 and 150: median (20 + 150) / 2 = 85; nearest rank
	 * ceil(0.9 * 2) = 2: 150 */
	cr_assert_float_eq(rr->partners[0]->median_days, 85.0, 1e-6);
	cr_assert_float_eq(rr->partners[0]->p90_days, 150.0, 1e-6);
	cr_assert_eq(s_absence_count(rr, "stopped"), 1);
	cr_assert_eq(s_absence_count(rr, "reduced"), 1);
	cr_assert_eq(s_absence_count(rr, "continued"), 1);
	cr_assert_eq(s_absence_count(rr, "not recorded"), 1);
	kp__response__free_unpacked(r, NULL);
	/* as of day 100 nothing was recorded yet */
	r = s_report(s.lp, T0 + 100 * DAY);
	rr = s_route(r, KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP);
	cr_assert_eq(s_absence_count(rr, "not recorded"), 4);
	cr_assert_eq(s_absence_count(rr, "stopped"), 0);
	kp__response__free_unpacked(r, NULL);
	/* the text report shows the officer's record per route */
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost report "
	    "--lang en --config %s", test_bin(), s.lp->conf), 0, "%s", out);
	cr_assert(strstr(out, "Absence after the route") != NULL, "%s", out);
	s_stop(&s);
}

static Kp__Response *
s_todo_at(const td_org_t *o, uint64_t at, uint32_t days)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__TodoRequest q = KP__TODO_REQUEST__INIT;

	q.has_at_ms = q.has_days = 1;
	q.at_ms = at;
	q.days = days;
	req.op_case = KP__REQUEST__OP_TODO;
	req.todo = &q;
	return s_call_ok(o, &req);
}

static void
s_assert_todo(const Kp__Response *r, size_t i, const char *ref,
    const char *oin, uint64_t due)
{
	cr_assert_gt(r->todo->n_items, i);
	cr_assert_str_eq(r->todo->items[i]->case_ref, ref);
	cr_assert_str_eq(r->todo->items[i]->partner_oin, oin);
	cr_assert_eq(r->todo->items[i]->due_at_ms, due, "item %zu", i);
}

/*
 * The views walk the store in table order, not in sent order (no sort of
 * the history): what they list in sent order must not follow the order
 * the rows were stored in.  ORD-2 is referred to Halt on day 1, ORD-1 to
 * RvdK on day 2 and then (the clock set back) to Halt on day 0: stored
 * after both, sent before both.  Halt answers ORD-2 on day 3 (positief),
 * RvdK gives ORD-1 an interim answer on day 3 (due 42 -> 93 days after).
 */
Test(scenario, views_in_sent_order_whatever_the_table_order)
{
	struct scen s;
	uint8_t o2[16], r1[16], h1[16], ans[16], started[16];
	const Kp__CaseSummary *cs;
	const Kp__RouteReport *rr;
	Kp__Response *r;

	s_start(&s);
	s_send_at(&s, T0 + DAY, s.lp, OIN_HALT, "referral", "ORD-2",
	    HALT_REFERRAL, NULL, o2);
	s_send_at(&s, T0 + 2 * DAY, s.lp, OIN_RVDK, "referral", "ORD-1",
	    RVDK_REFERRAL, NULL, r1);
	s_send_at(&s, T0, s.lp, OIN_HALT, "referral", "ORD-1", HALT_REFERRAL,
	    NULL, h1);
	s_send_at(&s, T0 + 3 * DAY, s.halt, OIN_LEERPLICHT, "halt_outcome",
	    "HALT-O2", HALT_POSITIVE, o2, ans);
	s_send_at(&s, T0 + 3 * DAY, s.rvdk, OIN_LEERPLICHT, "rvdk_advice",
	    "RV-O1", RVDK_STARTED, r1, started);

	/* the case list: ORD-1 once, its events with both partners summed
	 * (two referrals, RvdK's interim answer), its routes in the order of
	 * their first referral (Halt's, day 0) */
	r = s_cases_at(s.lp, T0 + 4 * DAY);
	cr_assert_eq(r->cases->n_cases, 2);
	cr_assert_str_eq(r->cases->cases[0]->case_ref, "ORD-1");
	cs = r->cases->cases[0];
	cr_assert_eq(cs->events, 3);
	cr_assert_eq(cs->open, 2);
	cr_assert_eq(cs->n_routes, 2);
	cr_assert_eq(cs->routes[0], KP__ROUTE__ROUTE_HALT);
	cr_assert_eq(cs->routes[1], KP__ROUTE__ROUTE_DWANG_CIVIEL);
	cs = s_summary(r, "ORD-2");
	cr_assert_eq(cs->events, 2, "the referral and its answer");
	cr_assert_eq(cs->answered, 1);
	kp__response__free_unpacked(r, NULL);
	/* as of day 1: ORD-1 had only its Halt referral */
	r = s_cases_at(s.lp, T0 + DAY);
	cs = s_summary(r, "ORD-1");
	cr_assert_not_null(cs);
	cr_assert_eq(cs->events, 1);
	cr_assert_eq(cs->n_routes, 1);
	cr_assert_eq(cs->routes[0], KP__ROUTE__ROUTE_HALT);
	kp__response__free_unpacked(r, NULL);
	/* one route asked for: only the case on it */
	{
		Kp__Request req = KP__REQUEST__INIT;
		Kp__CasesRequest q = KP__CASES_REQUEST__INIT;

		q.has_at_ms = q.has_route = 1;
		q.at_ms = T0 + 4 * DAY;
		q.route = KP__ROUTE__ROUTE_DWANG_CIVIEL;
		req.op_case = KP__REQUEST__OP_CASES;
		req.cases = &q;
		r = s_call_ok(s.lp, &req);
		cr_assert_eq(r->cases->n_cases, 1);
		cr_assert_str_eq(r->cases->cases[0]->case_ref, "ORD-1");
		kp__response__free_unpacked(r, NULL);
	}

	/* only the overdue cases (found by what can be overdue, then summed
	 * up one by one): none on day 45, RvdK's interim answer moved its
	 * due day from 44 to 93; on day 95 ORD-1, both answers overdue, the
	 * same summary as in the whole list */
	r = s_overdue_cases(s.lp, T0 + 45 * DAY);
	cr_assert_eq(r->cases->n_cases, 0);
	kp__response__free_unpacked(r, NULL);
	r = s_overdue_cases(s.lp, T0 + 95 * DAY);
	cr_assert_eq(r->cases->n_cases, 1);
	cs = r->cases->cases[0];
	cr_assert_str_eq(cs->case_ref, "ORD-1");
	cr_assert_eq(cs->events, 3);
	cr_assert_eq(cs->overdue, 2);
	cr_assert_eq(cs->open, 0);
	cr_assert_eq(cs->last_at_ms, T0 + 3 * DAY);
	cr_assert_eq(cs->n_routes, 2);
	cr_assert_eq(cs->routes[0], KP__ROUTE__ROUTE_HALT);
	cr_assert_eq(cs->routes[1], KP__ROUTE__ROUTE_DWANG_CIVIEL);
	kp__response__free_unpacked(r, NULL);
	/* ... and as of day 2, before the interim answer and before Halt's
	 * answer to ORD-2, nothing was overdue yet either */
	r = s_overdue_cases(s.lp, T0 + 2 * DAY);
	cr_assert_eq(r->cases->n_cases, 0);
	kp__response__free_unpacked(r, NULL);

	/* the report: Halt's outcomes in the order of their first referral
	 * (ORD-1 awaited, day 0; ORD-2 positief, day 1), stored the other
	 * way round; two cases, three referrals, Halt and RvdK as partners */
	r = s_report(s.lp, T0 + 4 * DAY);
	rr = s_route(r, KP__ROUTE__ROUTE_HALT);
	cr_assert_eq(rr->referrals, 2);
	cr_assert_eq(rr->cases, 2);
	cr_assert_eq(rr->n_outcomes, 2);
	cr_assert_str_eq(rr->outcomes[0]->outcome, "awaited");
	cr_assert_str_eq(rr->outcomes[1]->outcome, "positief");
	cr_assert_eq(rr->n_partners, 1);
	cr_assert_eq(rr->partners[0]->answered, 1);
	rr = s_route(r, KP__ROUTE__ROUTE_DWANG_CIVIEL);
	cr_assert_eq(s_outcome_count(rr, "interim: onderzoek_status"), 1);
	kp__response__free_unpacked(r, NULL);

	/* the to-do list as of day 2, before both answers: ORD-2 was still
	 * open then (answered on day 3), RvdK's answer due on day 44 (the
	 * interim answer came later); most urgent first */
	r = s_todo_at(s.lp, T0 + 2 * DAY, 365);
	cr_assert_eq(r->todo->n_items, 3);
	s_assert_todo(r, 0, "ORD-1", OIN_RVDK, T0 + 44 * DAY);
	s_assert_todo(r, 1, "ORD-1", OIN_HALT, T0 + 90 * DAY);
	s_assert_todo(r, 2, "ORD-2", OIN_HALT, T0 + 91 * DAY);
	cr_assert_not(r->todo->items[0]->interim);
	kp__response__free_unpacked(r, NULL);
	/* due within 45 days as of day 2: only RvdK's, at its first due
	 * time; as of day 4 its interim answer moved it to day 93 */
	r = s_todo_at(s.lp, T0 + 2 * DAY, 45);
	cr_assert_eq(r->todo->n_items, 1);
	s_assert_todo(r, 0, "ORD-1", OIN_RVDK, T0 + 44 * DAY);
	kp__response__free_unpacked(r, NULL);
	r = s_todo_at(s.lp, T0 + 4 * DAY, 45);
	cr_assert_eq(r->todo->n_items, 0);
	kp__response__free_unpacked(r, NULL);
	/* and now: ORD-2 is answered, ORD-1's two answers are awaited */
	r = s_todo_at(s.lp, T0 + 4 * DAY, 365);
	cr_assert_eq(r->todo->n_items, 2);
	s_assert_todo(r, 0, "ORD-1", OIN_HALT, T0 + 90 * DAY);
	s_assert_todo(r, 1, "ORD-1", OIN_RVDK, T0 + 93 * DAY);
	cr_assert(r->todo->items[1]->interim);
	kp__response__free_unpacked(r, NULL);
	s_stop(&s);
}
