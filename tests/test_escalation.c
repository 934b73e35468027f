/*
 * test_escalation.c: the officer's work list and the MAS escalation step
 * (rappel, then opschaling) on real daemons under a simulated clock
 * (KETENPOST_CLOCK_FILE, as test_scenario.c): `todo` lists an overdue
 * answer with the next step; after escalate_after_reminders (2) reminders
 * the next reminder is the escalation, which the partner receives with
 * escalation = true and which the case and the work list show from then
 * on; escalate_after (28 days overdue) triggers it without reminders;
 * `ketenpost todo` and `remind --all-overdue` through the real client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common.h"
#include "daemons.h"
#include "events.pb-c.h"
#include "util.h"

TestSuite(escalation, .init = test_init, .timeout = 240);

#define DAY UINT64_C(86400000)
#define T0 UINT64_C(1798761600000)          /* 2027-01-01T00:00:00Z */

#define HALT_REFERRAL "{\"route\": \"halt\", \"referral_kind\": \"halt_pv\", " \
	"\"absence_kind\": \"wettelijk\", \"absence_hours\": 32, " \
	"\"age_years\": 15, \"duty_kind\": \"leerplicht\", \"culpable\": true, " \
	"\"consent_halt\": true, \"feedback_due_days\": 90}"

struct esc {
	td_chain_t c;
	td_org_t *lp, *halt;
	char clock[4200];
};

static void
s_clock(struct esc *s, uint64_t ms)
{
	td_set_clock(s->clock, ms);
}

static void
s_start(struct esc *s)
{
	td_chain_make(&s->c, NULL);
	snprintf(s->clock, sizeof(s->clock), "%s/clock", s->c.dir);
	s_clock(s, T0);
	cr_assert_eq(setenv("KETENPOST_CLOCK_FILE", s->clock, 1), 0);
	s->lp = td_org(&s->c, OIN_LEERPLICHT);
	s->halt = td_org(&s->c, OIN_HALT);
	td_start(s->lp);
	td_start(s->halt);
	unsetenv("KETENPOST_CLOCK_FILE");  /* the test keeps real time */
}

static Kp__Response *
s_call_ok(const td_org_t *o, Kp__Request *req)
{
	Kp__Response *r = NULL;

	cr_assert_eq(td_call(o, req, &r, 5000), 0, "no answer");
	cr_assert(r->ok, "%s", r->error);
	return r;
}

static Kp__Response *
s_todo(struct esc *s, uint64_t now)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__TodoRequest q = KP__TODO_REQUEST__INIT;

	s_clock(s, now);
	req.op_case = KP__REQUEST__OP_TODO;
	req.todo = &q;
	return s_call_ok(s->lp, &req);
}

/* remind REF at `now`: the number of reminders sent (delivered). */
static size_t
s_remind(struct esc *s, uint64_t now, const char *ref)
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
	/* the outbox scan's first attempt is one retry interval later */
	s_clock(s, now + 10000);
	cr_assert(td_wait_settled(s->lp, 10000));
	return n;
}

/* The reminders in Halt's inbox: how many, and how many escalations. */
static void
s_received(const td_org_t *halt, size_t *n, size_t *esc)
{
	Kp__Response *in = td_inbox(halt, true);
	Kp__Reminder *rem;
	size_t i;

	*n = *esc = 0;
	for (i = 0; i < in->inbox->n_items; i++) {
		if (in->inbox->items[i]->event_type !=
		    KP__EVENT_TYPE__EVENT_TYPE_REMINDER)
			continue;
		rem = kp__reminder__unpack(NULL, in->inbox->items[i]->payload.len,
		    in->inbox->items[i]->payload.data);
		cr_assert_not_null(rem);
		(*n)++;
		*esc += rem->has_escalation && rem->escalation;
		kp__reminder__free_unpacked(rem, NULL);
	}
	kp__response__free_unpacked(in, NULL);
}

Test(escalation, after_two_reminders_the_third_is_the_escalation)
{
	struct esc s;
	uint8_t ref[16];
	Kp__Response *r;
	Kp__TodoItem *it;
	Kp__Request req = KP__REQUEST__INIT;
	Kp__CaseRequest cq = KP__CASE_REQUEST__INIT;
	size_t n, esc;
	uint64_t due = T0 + 90 * DAY;

	s_start(&s);
	td_send(s.lp, OIN_HALT, "referral", "LP-E", HALT_REFERRAL, NULL, ref);
	s_clock(&s, T0 + 10000);
	cr_assert(td_wait_settled(s.lp, 10000));

	/* a week before the due date: on the list, to wait for */
	r = s_todo(&s, due - 5 * DAY);
	cr_assert_eq(r->todo->n_items, 1);
	it = r->todo->items[0];
	cr_assert_str_eq(it->case_ref, "LP-E");
	cr_assert_eq(it->next_step, KP__NEXT_STEP__NEXT_STEP_WAIT);
	cr_assert_eq(it->days_overdue, -5);
	cr_assert_eq(it->answer_type, KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME);
	kp__response__free_unpacked(r, NULL);
	r = s_todo(&s, due - 9 * DAY);
	cr_assert_eq(r->todo->n_items, 0, "due in 9 days: not within 7");
	kp__response__free_unpacked(r, NULL);

	/* overdue: remind, twice (rappels) */
	r = s_todo(&s, due + 2 * DAY);
	cr_assert_eq(r->todo->items[0]->next_step,
	    KP__NEXT_STEP__NEXT_STEP_REMIND);
	cr_assert_eq(r->todo->items[0]->days_overdue, 2);
	kp__response__free_unpacked(r, NULL);
	cr_assert_eq(s_remind(&s, due + 2 * DAY, "LP-E"), 1);
	cr_assert_eq(s_remind(&s, due + 9 * DAY, "LP-E"), 1);
	s_received(s.halt, &n, &esc);
	cr_assert(n == 2 && esc == 0, "%zu reminders, %zu escalations", n, esc);

	/* after 2 reminders the next step is the escalation */
	r = s_todo(&s, due + 10 * DAY);
	it = r->todo->items[0];
	cr_assert_eq(it->reminders, 2);
	cr_assert(it->has_last_reminder_at_ms);
	cr_assert_eq(it->last_reminder_at_ms, due + 9 * DAY);
	cr_assert_eq(it->next_step, KP__NEXT_STEP__NEXT_STEP_ESCALATE);
	cr_assert_not(it->escalated);
	kp__response__free_unpacked(r, NULL);
	cr_assert_eq(s_remind(&s, due + 10 * DAY, "LP-E"), 1);
	s_received(s.halt, &n, &esc);
	cr_assert(n == 3 && esc == 1, "%zu reminders, %zu escalations", n, esc);

	/* escalated: follow up; the case shows it */
	r = s_todo(&s, due + 11 * DAY);
	cr_assert(r->todo->items[0]->escalated);
	cr_assert_eq(r->todo->items[0]->next_step,
	    KP__NEXT_STEP__NEXT_STEP_FOLLOW_UP);
	kp__response__free_unpacked(r, NULL);
	cq.case_ref = "LP-E";
	req.op_case = KP__REQUEST__OP_CASE_TIMELINE;
	req.case_timeline = &cq;
	r = s_call_ok(s.lp, &req);
	cr_assert(r->case_timeline->expectations[0]->escalated);
	kp__response__free_unpacked(r, NULL);
	/* as of before the escalation, it was not escalated */
	cq.has_at_ms = 1;
	cq.at_ms = due + 9 * DAY + 1;
	r = s_call_ok(s.lp, &req);
	cr_assert_not(r->case_timeline->expectations[0]->escalated);
	kp__response__free_unpacked(r, NULL);
	td_chain_stop_all(&s.c);
}

Test(escalation, four_weeks_overdue_escalates_without_reminders)
{
	struct esc s;
	uint8_t ref[16];
	char out[16384];
	Kp__Response *r;
	size_t n, esc;
	uint64_t due = T0 + 90 * DAY;

	s_start(&s);
	td_send(s.lp, OIN_HALT, "referral", "LP-F", HALT_REFERRAL, NULL, ref);
	s_clock(&s, T0 + 10000);
	cr_assert(td_wait_settled(s.lp, 10000));
	r = s_todo(&s, due + 27 * DAY);
	cr_assert_eq(r->todo->items[0]->next_step,
	    KP__NEXT_STEP__NEXT_STEP_REMIND);
	kp__response__free_unpacked(r, NULL);
	r = s_todo(&s, due + 28 * DAY);
	cr_assert_eq(r->todo->items[0]->next_step,
	    KP__NEXT_STEP__NEXT_STEP_ESCALATE);
	kp__response__free_unpacked(r, NULL);

	/* the real client: the work list in Dutch, then all of it reminded */
	cr_assert_eq(test_sh_output(out, sizeof(out), "KETENPOST_CLOCK_FILE=%s "
	    "%s/ketenpost todo --lang nl --config %s", s.clock, test_bin(),
	    s.lp->conf), 0, "%s", out);
	cr_assert(strstr(out, "LP-F") && strstr(out, "opschalen") &&
	    strstr(out, "afloopbericht Halt") && strstr(out, "01-04-2027"),
	    "%s", out);
	cr_assert_eq(test_sh_output(out, sizeof(out), "KETENPOST_CLOCK_FILE=%s "
	    "%s/ketenpost remind --all-overdue --lang en --config %s", s.clock,
	    test_bin(), s.lp->conf), 0, "%s", out);
	cr_assert(strstr(out, "case LP-F: escalation to") && strstr(out,
	    "1 reminder sent."), "%s", out);
	s_clock(&s, due + 28 * DAY + 10000);
	cr_assert(td_wait_settled(s.lp, 10000));
	s_received(s.halt, &n, &esc);
	cr_assert(n == 1 && esc == 1, "%zu reminders, %zu escalations", n, esc);
	td_chain_stop_all(&s.c);
}
