/*
 * feedback.c: the attendance officer's view of the feedback loop — one
 * case's timeline with its expected answers and route states, all cases
 * (or the overdue ones) as of any moment, the officer's work list, and the
 * evaluation report per route with its month-by-month trend (MAS steps 9
 * and 10).
 *
 * The officer's work list (todo) is every answer not given by `at` that is
 * overdue or due within N days, with the reminders sent for it and the next
 * step; the policy's escalation step (escalate_after_reminders,
 * escalate_after of [reminder]) decides when the next reminder is the
 * escalation (feedback_escalate_now, asked by apisrv.c's remind).  Whether
 * an escalation was sent is read from the field names stored with each
 * sent reminder ("escalation"), never from a payload: this organisation
 * cannot read what it sealed for a partner.
 *
 * Every view takes a moment `at` (default now) and is a true as-of view:
 * only what existed at `at` counts — expectations of events sent by then,
 * events sent or received by then, reminders sent by then, receipts that
 * had arrived by then; an answer received later is still open or overdue.
 * Reminding is not a view: it is always about now (apisrv.c refuses an
 * `at` for it).  After an interim answer (a phase) an expectation is due
 * at the final answer's due time, as of the moment the phase came.
 *
 * The list of all cases is in feedback_cases.c and the evaluation report
 * in feedback_report.c (what the three share: feedback_int.h); this file
 * keeps one case's view, the to-do list and the escalation step.  The
 * views run on the daemon's one loop, which delivers nothing meanwhile:
 * none walks the history sorted or holds its rows (docs/PERFORMANCE.md,
 * "The officer's views").  The to-do list reads only what can be on it
 * (store_expect_todo, by indexes) and the reminders of an expectation by
 * its link (store_reminders).
 *
 * Everything is computed from the store on request; nothing is cached.
 * Responses are built in an arena owned by the API request (apisrv.c),
 * freed after the reply.  Payload values appear only in summaries of
 * answers received (e.g. "outcome: positief"), which are this
 * organisation's own data; a purged payload shows as destroyed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "daemon.h"
#include "events.h"
#include "events.pb-c.h"
#include "feedback_int.h"

/* ---- arena ---- */

void *
arena_alloc(arena_t *a, size_t size)
{
	void **grown, *p;
	size_t cap;

	if (a->n == a->cap) {
		/* the capacity grows only once the blocks did: after a failed
		 * realloc the next call must not write past the end */
		cap = a->cap ? 2 * a->cap : 64;
		if ((grown = realloc(a->blocks, cap * sizeof(*grown))) == NULL)
			return NULL;
		a->blocks = grown;
		a->cap = cap;
	}
	if ((p = calloc(1, size > 0 ? size : 1)) != NULL)
		a->blocks[a->n++] = p;
	return p;
}

char *
arena_strdup(arena_t *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(a, n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

int
arena_adopt(arena_t *a, void *p)
{
	void **grown;

	if (a->n == a->cap) {
		if ((grown = realloc(a->blocks, (a->cap ? 2 * a->cap : 64) *
		    sizeof(*grown))) == NULL) {
			free(p);
			return -1;
		}
		a->blocks = grown;
		a->cap = a->cap ? 2 * a->cap : 64;
	}
	a->blocks[a->n++] = p;
	return 0;
}

void
arena_free(arena_t *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->blocks[i]);
	free(a->blocks);
	memset(a, 0, sizeof(*a));
}

static ProtobufCBinaryData
s_bytes(arena_t *a, const uint8_t *b, size_t n)
{
	uint8_t *p = arena_alloc(a, n);

	if (p != NULL)
		memcpy(p, b, n);
	return (ProtobufCBinaryData){ p ? n : 0, p };
}

int
feedback_push(arena_t *a, struct ptrs *p, void *item)
{
	void **grown;
	size_t cap;

	if (item == NULL)
		return -1;
	if (p->n == p->cap) {
		cap = p->cap ? 2 * p->cap : 16;
		if ((grown = arena_alloc(a, cap * sizeof(void *))) == NULL)
			return -1;
		if (p->n > 0)
			memcpy(grown, p->v, p->n * sizeof(void *));
		p->v = grown;
		p->cap = cap;
	}
	p->v[p->n++] = item;
	return 0;
}

/* ---- expectations as of a moment ---- */

bool
feedback_interim_at(const expect_row_t *x, uint64_t at)
{
	return x->interim && x->interim_ms <= at;
}

/* The due time as of `at`: after an interim answer, the final answer's. */
static uint64_t
s_due_at(const expect_row_t *x, uint64_t at)
{
	return feedback_interim_at(x, at) ? x->due_ms : x->first_due_ms;
}

int
feedback_state_at(const expect_row_t *x, uint64_t at)
{
	if (x->answered && x->answered_ms <= at)
		return x->answered_ms <= x->due_ms ?
		    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED :
		    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED_LATE;
	return s_due_at(x, at) <= at ?
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE :
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN;
}

const char *
feedback_partner_name(kpd_t *d, const char *oin)
{
	const peer_t *p = directory_find(d->chain->dir, oin);

	return p != NULL ? partner_name(peer_partner(p)) : "(not a partner)";
}

struct reminder_facts;
static int s_reminder_facts(kpd_t *d, const expect_row_t *x, uint64_t at,
    struct reminder_facts *f, kp_err_t *err);

static Kp__Expectation *
s_expectation(kpd_t *d, arena_t *a, const expect_row_t *x, uint64_t at)
{
	Kp__Expectation *e = arena_alloc(a, sizeof(*e));

	if (e == NULL)
		return NULL;
	kp__expectation__init(e);
	e->has_event_id = e->has_sent_type = e->has_answer_type = 1;
	e->has_sent_at_ms = e->has_due_at_ms = e->has_state = 1;
	e->has_reminders = e->has_escalated = 1;
	e->escalated = feedback_escalated(d, x, at);
	e->event_id = s_bytes(a, x->event_id, 16);
	e->partner_oin = arena_strdup(a, x->partner_oin);
	e->partner_name = arena_strdup(a, feedback_partner_name(d, x->partner_oin));
	e->sent_type = (Kp__EventType)x->sent_type;
	e->answer_type = (Kp__EventType)x->answer_type;
	e->has_route = x->route != 0;
	e->route = (Kp__Route)x->route;
	e->sent_at_ms = x->sent_ms;
	e->due_at_ms = s_due_at(x, at);
	e->state = (Kp__ExpectationState)feedback_state_at(x, at);
	e->reminders = x->reminders;
	if (feedback_interim_at(x, at)) {
		e->has_interim_by = e->has_interim_at_ms = 1;
		e->interim_by = s_bytes(a, x->interim_by, 16);
		e->interim_at_ms = x->interim_ms;
	}
	if (x->answered && x->answered_ms <= at) {
		e->has_answered_by = e->has_answered_at_ms = 1;
		e->answered_by = s_bytes(a, x->answered_by, 16);
		e->answered_at_ms = x->answered_ms;
	}
	return e;
}

/* ---- one case ---- */

struct case_walk {
	kpd_t *d;
	arena_t *a;
	uint64_t at;
	struct ptrs items;          /* Kp__TimelineItem* or Kp__Expectation* */
	expect_row_t *x;            /* the case's expectations (copy) */
	size_t n_x, cap_x;
	int failed;
};

static int
s_collect_x(void *arg, const expect_row_t *x)
{
	struct case_walk *w = arg;
	expect_row_t *grown;

	if (x->sent_ms > w->at)
		return 0;            /* did not exist yet at `at` */
	if (w->n_x == w->cap_x) {
		w->cap_x = w->cap_x ? 2 * w->cap_x : 8;
		grown = arena_alloc(w->a, w->cap_x * sizeof(*grown));
		if (grown == NULL) {
			w->failed = 1;
			return 1;
		}
		if (w->n_x > 0)
			memcpy(grown, w->x, w->n_x * sizeof(*grown));
		w->x = grown;
	}
	w->x[w->n_x] = *x;
	w->x[w->n_x++].reminders = 0;  /* counted as of `at` from the timeline */
	return 0;
}

/* A reminder sent by `at` counts for the expectation it names. */
static void
s_count_reminder(struct case_walk *w, const subject_row_t *row)
{
	size_t i;

	if (!row->sent || row->event_type != KP__EVENT_TYPE__EVENT_TYPE_REMINDER ||
	    !row->has_reply_to)
		return;
	for (i = 0; i < w->n_x; i++)
		if (memcmp(w->x[i].event_id, row->in_reply_to, 16) == 0)
			w->x[i].reminders++;
}

/* The delivery state of a sent event as it was at `at`: a receipt or an
 * expiry that came later had not happened yet. */
static int
s_state_of_sent(const subject_row_t *row, uint64_t at)
{
	return row->state != STORE_PENDING && row->settled_ms > at ?
	    STORE_PENDING : row->state;
}

/* The route of event id if this organisation sent it, else 0. */
static int
s_sent_route(kpd_t *d, const uint8_t id[16])
{
	outbox_row_t o;
	bool found = false;
	kp_err_t e;

	return store_outbox_get(d->store, id, &o, &found, &e) == 0 && found ?
	    o.route : 0;
}

/* The one route of the case's expectations from `oin`; 0 if none, or if
 * they are on more than one route. */
static int
s_partner_route(const struct case_walk *w, const char *oin)
{
	int route = 0;
	size_t i;

	for (i = 0; i < w->n_x; i++) {
		if (strcmp(w->x[i].partner_oin, oin) != 0 || w->x[i].route == 0)
			continue;
		if (route != 0 && route != w->x[i].route)
			return 0;
		route = w->x[i].route;
	}
	return route;
}

/*
 * The route of a timeline item: a sent event's own; that of the
 * expectation an answer answered (finally or in a phase); that of the
 * event it replies to (a reminder, a follow-up); else, for a follow-up
 * from a partner, the route the case has with that partner.
 */
static int
s_item_route(struct case_walk *w, const subject_row_t *row)
{
	int route = row->sent ? s_sent_route(w->d, row->event_id) : 0;
	size_t i;

	for (i = 0; route == 0 && !row->sent && i < w->n_x; i++)
		if ((w->x[i].answered && memcmp(w->x[i].answered_by,
		    row->event_id, 16) == 0) || (w->x[i].interim &&
		    memcmp(w->x[i].interim_by, row->event_id, 16) == 0))
			route = w->x[i].route;
	if (route == 0 && row->has_reply_to)
		route = s_sent_route(w->d, row->in_reply_to);
	if (route == 0 && !row->sent)
		route = s_partner_route(w, row->partner_oin);
	return route;
}

/* A received answer's phase: "interim" by the policy, "final" if it
 * closed an expectation. */
static void
s_phase(struct case_walk *w, Kp__TimelineItem *t, const subject_row_t *row,
    const uint8_t *plain, size_t plen)
{
	size_t i;

	if (cases_is_interim(w->d, row->event_type, plain, plen)) {
		t->phase = "interim";
		return;
	}
	for (i = 0; i < w->n_x; i++)
		if (w->x[i].answered && memcmp(w->x[i].answered_by,
		    row->event_id, 16) == 0)
			t->phase = "final";
}

static int
s_timeline_item(void *arg, const subject_row_t *row)
{
	struct case_walk *w = arg;
	Kp__TimelineItem *t;
	uint8_t *plain = NULL;
	size_t plen = 0;
	char summary[160] = "";

	if (row->at_ms > w->at)
		return 0;
	if ((t = arena_alloc(w->a, sizeof(*t))) == NULL) {
		w->failed = 1;
		return 1;
	}
	kp__timeline_item__init(t);
	t->has_event_id = t->has_event_type = t->has_at_ms = 1;
	t->event_id = s_bytes(w->a, row->event_id, 16);
	t->direction = row->sent ? "sent" : "received";
	t->partner_oin = arena_strdup(w->a, row->partner_oin);
	t->partner_name = arena_strdup(w->a, feedback_partner_name(w->d,
	    row->partner_oin));
	t->event_type = (Kp__EventType)row->event_type;
	t->at_ms = row->at_ms;
	t->route = (Kp__Route)s_item_route(w, row);
	t->has_route = t->route != 0;
	if (row->has_reply_to) {
		t->has_in_reply_to = 1;
		t->in_reply_to = s_bytes(w->a, row->in_reply_to, 16);
	}
	s_count_reminder(w, row);
	if (row->sent) {
		t->has_state = 1;
		t->state = (Kp__DeliveryState)s_state_of_sent(row, w->at);
	} else if (row->destroyed)
		snprintf(summary, sizeof(summary), "(payload destroyed)");
	else if (atrest_inbox_payload(w->d, row->event_id, &plain, &plen) == 0) {
		cases_summary(row->event_type, plain, plen, summary,
		    sizeof(summary), false);
		s_phase(w, t, row, plain, plen);
	}
	if (plain != NULL)
		sodium_memzero(plain, plen);
	free(plain);
	if (summary[0] != '\0')
		t->summary = arena_strdup(w->a, summary);
	return feedback_push(w->a, &w->items, t) != 0 ? (w->failed = 1) : 0;
}

int
feedback_answer_outcome(kpd_t *d, int type, const uint8_t id[16], char *out,
    size_t len)
{
	uint8_t *plain = NULL;
	size_t plen = 0;

	if (atrest_inbox_payload(d, id, &plain, &plen) != 0)
		return -1;
	cases_outcome(d, type, plain, plen, out, len);
	sodium_memzero(plain, plen);
	free(plain);
	return 0;
}

/* Was event id delivered (its receipt in) by `at`? */
static bool
s_delivered(kpd_t *d, const uint8_t id[16], uint64_t at)
{
	outbox_row_t o;
	bool found = false;
	kp_err_t e;

	return store_outbox_get(d->store, id, &o, &found, &e) == 0 && found &&
	    o.state == STORE_DELIVERED && o.updated_ms <= at;
}

/* One RouteState per route of the case's expectations. */
static int
s_routes(struct case_walk *w, Kp__CaseResponse *r)
{
	static const char *names[] = { "", "referred", "overdue", "outcome",
	    "outcome" };
	struct ptrs out = { 0 };
	Kp__RouteState *rs;
	size_t i;
	int st;
	char summary[160];

	for (i = 0; i < w->n_x; i++) {
		if (w->x[i].route == 0)
			continue;
		if ((rs = arena_alloc(w->a, sizeof(*rs))) == NULL)
			return -1;
		kp__route_state__init(rs);
		st = feedback_state_at(&w->x[i], w->at);
		rs->has_route = 1;
		rs->route = (Kp__Route)w->x[i].route;
		rs->partner_oin = arena_strdup(w->a, w->x[i].partner_oin);
		rs->state = (char *)names[st];
		if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN &&
		    s_delivered(w->d, w->x[i].event_id, w->at))
			rs->state = "received";
		if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN &&
		    feedback_interim_at(&w->x[i], w->at))
			rs->state = "interim";   /* a phase came, the final not */
		if (st >= KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED &&
		    feedback_answer_outcome(w->d, w->x[i].answer_type,
		    w->x[i].answered_by, summary, sizeof(summary)) == 0)
			rs->outcome = arena_strdup(w->a, summary);
		else if (st < KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED &&
		    feedback_interim_at(&w->x[i], w->at) && feedback_answer_outcome(w->d,
		    w->x[i].answer_type, w->x[i].interim_by, summary,
		    sizeof(summary)) == 0)
			rs->outcome = arena_strdup(w->a, summary);
		if (feedback_push(w->a, &out, rs) != 0)
			return -1;
	}
	r->n_routes = out.n;
	r->routes = (Kp__RouteState **)out.v;
	return 0;
}

int
feedback_case(kpd_t *d, arena_t *a, const Kp__CaseRequest *q,
    Kp__CaseResponse **out, kp_err_t *err)
{
	struct case_walk w = { .d = d, .a = a };
	struct ptrs ex = { 0 };
	Kp__CaseResponse *r = arena_alloc(a, sizeof(*r));
	size_t i;

	w.at = q->has_at_ms && q->at_ms > 0 ? q->at_ms : kp_now_ms();
	if (r == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	kp__case_response__init(r);
	r->case_ref = q->case_ref;
	if (store_expect_list(d->store, q->case_ref, s_collect_x, &w, err) != 0 ||
	    store_subject(d->store, q->case_ref, s_timeline_item, &w, err) != 0)
		return -1;
	r->n_timeline = w.items.n;
	r->timeline = (Kp__TimelineItem **)w.items.v;
	for (i = 0; i < w.n_x; i++)
		if (feedback_push(a, &ex, s_expectation(d, a, &w.x[i], w.at)) != 0)
			w.failed = 1;
	r->n_expectations = ex.n;
	r->expectations = (Kp__Expectation **)ex.v;
	if (w.failed || s_routes(&w, r) != 0)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	*out = r;
	return 0;
}

struct overdue_walk {
	uint64_t at;
	int (*cb)(void *, const expect_row_t *);
	void *arg;
};

static int
s_overdue_x(void *arg, const expect_row_t *x)
{
	struct overdue_walk *w = arg;

	if (x->sent_ms <= w->at && feedback_state_at(x, w->at) ==
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE)
		return w->cb(w->arg, x);
	return 0;
}

int
feedback_overdue(kpd_t *d, const char *case_local, uint64_t at,
    int (*cb)(void *, const expect_row_t *), void *arg, kp_err_t *err)
{
	struct overdue_walk w = { at, cb, arg };

	return store_expect_list(d->store, case_local, s_overdue_x, &w, err);
}

/* ---- the officer's work list, and the escalation step ---- */

/* What the reminders sent for one expectation by `at` come to. */
struct reminder_facts {
	const uint8_t *event_id;    /* the expectation's event */
	uint64_t at;
	uint32_t n;                 /* reminders (escalations included) */
	uint64_t last_ms;           /* the latest one's time, 0: none */
	bool escalated;             /* one of them was an escalation */
};

/* Does the comma-separated list `fields` name `name`? */
static bool
s_names(const char *fields, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = fields; (p = strstr(p, name)) != NULL; p += n)
		if ((p == fields || p[-1] == ',') && (p[n] == ',' ||
		    p[n] == '\0'))
			return true;
	return false;
}

static int
s_reminder_row(void *arg, uint64_t at_ms, const char *fields)
{
	struct reminder_facts *f = arg;

	f->n++;
	if (at_ms > f->last_ms)
		f->last_ms = at_ms;
	/* the field list of a sent event is stored with it: an escalation
	 * is the reminder that carried the escalation field */
	if (s_names(fields, "escalation"))
		f->escalated = true;
	return 0;
}

/*
 * The reminders about x by `at`: the outbox rows of x's link (its partner
 * and case) in reply to it (store_reminders), not the whole case's
 * timeline, which the report and the to-do list read once per expectation.
 * None to look for when x->reminders is 0: that is either the store's
 * count of every reminder ever sent about x (cases_on_send counts each
 * one as it is stored) or, in one case's view, the count as of `at`.
 */
static int
s_reminder_facts(kpd_t *d, const expect_row_t *x, uint64_t at,
    struct reminder_facts *f, kp_err_t *err)
{
	memset(f, 0, sizeof(*f));
	f->event_id = x->event_id;
	f->at = at;
	if (x->reminders == 0)
		return 0;
	return store_reminders(d->store, x->event_id,
	    KP__EVENT_TYPE__EVENT_TYPE_REMINDER, at, s_reminder_row, f, err);
}

bool
feedback_escalated(kpd_t *d, const expect_row_t *x, uint64_t at)
{
	struct reminder_facts f;
	kp_err_t e;

	return s_reminder_facts(d, x, at, &f, &e) == 0 && f.escalated;
}

/* Is the escalation step due for overdue expectation x (policy keys
 * escalate_after_reminders and escalate_after of [reminder])? */
static bool
s_escalation_due(kpd_t *d, const expect_row_t *x, uint64_t at,
    const struct reminder_facts *f)
{
	uint32_t after_n;
	uint64_t after_ms, due = s_due_at(x, at);

	policy_escalation(d->policy, &after_n, &after_ms);
	if (f->escalated || due > at)
		return false;
	return (after_n > 0 && f->n >= after_n) ||
	    (after_ms > 0 && at - due >= after_ms);
}

bool
feedback_escalate_now(kpd_t *d, const expect_row_t *x, uint64_t now)
{
	struct reminder_facts f;
	kp_err_t e;

	if (s_reminder_facts(d, x, now, &f, &e) != 0)
		return false;       /* a plain reminder; the error shows later */
	return s_escalation_due(d, x, now, &f);
}

/* Whole days from due to at; negative: whole days (rounded up) to go. */
static int32_t
s_days_overdue(uint64_t due, uint64_t at)
{
	if (at >= due)
		return (int32_t)((at - due) / 86400000u);
	return -(int32_t)((due - at + 86400000u - 1) / 86400000u);
}

static Kp__TodoItem *
s_todo_item(kpd_t *d, arena_t *a, const expect_row_t *x, uint64_t at,
    kp_err_t *err)
{
	Kp__TodoItem *t = arena_alloc(a, sizeof(*t));
	struct reminder_facts f;

	if (t == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "todo: out of memory");
		return NULL;
	}
	if (s_reminder_facts(d, x, at, &f, err) != 0)
		return NULL;
	kp__todo_item__init(t);
	t->case_ref = arena_strdup(a, x->case_local);
	t->partner_oin = arena_strdup(a, x->partner_oin);
	t->partner_name = arena_strdup(a, feedback_partner_name(d, x->partner_oin));
	t->has_answer_type = t->has_event_id = t->has_sent_at_ms = 1;
	t->has_due_at_ms = t->has_days_overdue = t->has_reminders = 1;
	t->has_next_step = t->has_interim = t->has_escalated = 1;
	t->answer_type = (Kp__EventType)x->answer_type;
	t->has_route = x->route != 0;
	t->route = (Kp__Route)x->route;
	t->event_id = s_bytes(a, x->event_id, 16);
	t->sent_at_ms = x->sent_ms;
	t->due_at_ms = s_due_at(x, at);
	t->days_overdue = s_days_overdue(t->due_at_ms, at);
	t->reminders = f.n;
	t->has_last_reminder_at_ms = f.last_ms != 0;
	t->last_reminder_at_ms = f.last_ms;
	t->interim = feedback_interim_at(x, at);
	t->escalated = f.escalated;
	if (t->due_at_ms > at)
		t->next_step = KP__NEXT_STEP__NEXT_STEP_WAIT;
	else if (f.escalated)
		t->next_step = KP__NEXT_STEP__NEXT_STEP_FOLLOW_UP;
	else if (s_escalation_due(d, x, at, &f))
		t->next_step = KP__NEXT_STEP__NEXT_STEP_ESCALATE;
	else
		t->next_step = KP__NEXT_STEP__NEXT_STEP_REMIND;
	return t;
}

struct todo_walk {
	kpd_t *d;
	arena_t *a;
	uint64_t at, horizon;
	struct ptrs items;
	kp_err_t *err;
	int failed;
};

/* One candidate (store_expect_todo): an item if it was open at `at` and
 * due by the horizon, made at once (the rows are not kept). */
static int
s_todo_x(void *arg, const expect_row_t *x)
{
	struct todo_walk *w = arg;
	Kp__TodoItem *t;

	if (x->sent_ms > w->at || (x->answered && x->answered_ms <= w->at) ||
	    s_due_at(x, w->at) > w->horizon)
		return 0;            /* not yet sent, answered, or not due soon */
	if ((t = s_todo_item(w->d, w->a, x, w->at, w->err)) == NULL)
		return (w->failed = 1);
	if (feedback_push(w->a, &w->items, t) != 0) {
		kp_fail(w->err, KP_ERR_NOMEM, "todo: out of memory");
		return (w->failed = 1);
	}
	return 0;
}

/* Most urgent first: the earliest due (so the most days overdue), then
 * by case and partner for a stable order. */
static int
s_cmp_todo(const void *a, const void *b)
{
	const Kp__TodoItem *x = *(Kp__TodoItem *const *)a;
	const Kp__TodoItem *y = *(Kp__TodoItem *const *)b;
	int c;

	if (x->due_at_ms != y->due_at_ms)
		return x->due_at_ms < y->due_at_ms ? -1 : 1;
	if ((c = strcmp(x->case_ref, y->case_ref)) != 0)
		return c;
	if ((c = strcmp(x->partner_oin, y->partner_oin)) != 0)
		return c;
	/* the candidates come in no set order: sent first, then by id */
	if (x->sent_at_ms != y->sent_at_ms)
		return x->sent_at_ms < y->sent_at_ms ? -1 : 1;
	return memcmp(x->event_id.data, y->event_id.data, 16);
}

int
feedback_todo(kpd_t *d, arena_t *a, const Kp__TodoRequest *q,
    Kp__TodoResponse **out, kp_err_t *err)
{
	struct todo_walk w = { .d = d, .a = a, .err = err };
	Kp__TodoResponse *r = arena_alloc(a, sizeof(*r));
	uint32_t days = q->has_days ? q->days : 7;

	if (days > 365)
		return kp_fail(err, KP_ERR_INVALID_ARG, "todo: days %u is more "
		    "than 365", days);
	w.at = q->has_at_ms && q->at_ms > 0 ? q->at_ms : kp_now_ms();
	w.horizon = w.at + (uint64_t)days * 86400000u;
	if (r == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	if (store_expect_todo(d->store, w.at, w.horizon, s_todo_x, &w,
	    err) != 0 || w.failed)
		return -1;
	if (w.items.n > 1)
		qsort(w.items.v, w.items.n, sizeof(void *), s_cmp_todo);
	kp__todo_response__init(r);
	r->has_at_ms = r->has_days = 1;
	r->at_ms = w.at;
	r->days = days;
	r->n_items = w.items.n;
	r->items = (Kp__TodoItem **)w.items.v;
	*out = r;
	return 0;
}
