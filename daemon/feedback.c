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
#include "stats.h"

/* ---- arena ---- */

void *
arena_alloc(arena_t *a, size_t size)
{
	void **grown, *p;

	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 64;
		if ((grown = realloc(a->blocks, a->cap * sizeof(*grown))) == NULL)
			return NULL;
		a->blocks = grown;
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

/* A growing array of pointers in the arena. */
struct ptrs {
	void **v;
	size_t n, cap;
};

static int
s_push(arena_t *a, struct ptrs *p, void *item)
{
	void **grown;

	if (item == NULL)
		return -1;
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		if ((grown = arena_alloc(a, p->cap * sizeof(void *))) == NULL)
			return -1;
		if (p->n > 0)
			memcpy(grown, p->v, p->n * sizeof(void *));
		p->v = grown;
	}
	p->v[p->n++] = item;
	return 0;
}

/*
 * A set of (tag, case reference) pairs, to count distinct cases in one
 * walk: a scan of the cases seen so far for every row made a report n^2
 * (over 200,000 referrals it had not answered after two minutes, and the
 * daemon's loop waits for it).  Open addressing in arena memory, doubled
 * when half full; the strings are kept by pointer and must outlive it.
 */
struct caseset {
	const void **tag;
	const char **key;
	size_t n, cap;                /* cap: 0 or a power of two */
};

static size_t
s_caseset_home(const struct caseset *set, const void *tag, const char *key)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)tag;

	for (; *key != '\0'; key++)    /* FNV-1a */
		h = (h ^ (uint8_t)*key) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29)) & (set->cap - 1);
}

static void
s_caseset_put(struct caseset *set, const void *tag, const char *key)
{
	size_t i = s_caseset_home(set, tag, key);

	while (set->key[i] != NULL)
		i = (i + 1) & (set->cap - 1);
	set->tag[i] = tag;
	set->key[i] = key;
	set->n++;
}

static int
s_caseset_grow(arena_t *a, struct caseset *set)
{
	struct caseset bigger = { .cap = set->cap ? 2 * set->cap : 64 };
	size_t i;

	bigger.tag = arena_alloc(a, bigger.cap * sizeof(*bigger.tag));
	bigger.key = arena_alloc(a, bigger.cap * sizeof(*bigger.key));
	if (bigger.tag == NULL || bigger.key == NULL)
		return -1;
	for (i = 0; i < set->cap; i++)
		if (set->key[i] != NULL)
			s_caseset_put(&bigger, set->tag[i], set->key[i]);
	*set = bigger;
	return 0;
}

/* Add (tag, key).  OUT: *added, false if it was there.  -1: no memory. */
static int
s_caseset_add(arena_t *a, struct caseset *set, const void *tag,
    const char *key, bool *added)
{
	size_t i;

	*added = false;
	if (2 * (set->n + 1) > set->cap && s_caseset_grow(a, set) != 0)
		return -1;
	for (i = s_caseset_home(set, tag, key); set->key[i] != NULL;
	    i = (i + 1) & (set->cap - 1))
		if (set->tag[i] == tag && strcmp(set->key[i], key) == 0)
			return 0;
	s_caseset_put(set, tag, key);
	*added = true;
	return 0;
}

/* ---- expectations as of a moment ---- */

/* Had an interim answer (a phase) come by `at`? */
static bool
s_interim_at(const expect_row_t *x, uint64_t at)
{
	return x->interim && x->interim_ms <= at;
}

/* The due time as of `at`: after an interim answer, the final answer's. */
static uint64_t
s_due_at(const expect_row_t *x, uint64_t at)
{
	return s_interim_at(x, at) ? x->due_ms : x->first_due_ms;
}

static int
s_state_at(const expect_row_t *x, uint64_t at)
{
	if (x->answered && x->answered_ms <= at)
		return x->answered_ms <= x->due_ms ?
		    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED :
		    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED_LATE;
	return s_due_at(x, at) <= at ?
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE :
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN;
}

static const char *
s_partner_name(kpd_t *d, const char *oin)
{
	const peer_t *p = directory_find(d->chain->dir, oin);

	return p != NULL ? partner_name(peer_partner(p)) : "(not a partner)";
}

struct reminder_facts;
static int s_reminder_facts(kpd_t *d, const expect_row_t *x, uint64_t at,
    struct reminder_facts *f, kp_err_t *err);
static bool s_facts_escalated(kpd_t *d, const expect_row_t *x, uint64_t at);

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
	e->escalated = s_facts_escalated(d, x, at);
	e->event_id = s_bytes(a, x->event_id, 16);
	e->partner_oin = arena_strdup(a, x->partner_oin);
	e->partner_name = arena_strdup(a, s_partner_name(d, x->partner_oin));
	e->sent_type = (Kp__EventType)x->sent_type;
	e->answer_type = (Kp__EventType)x->answer_type;
	e->has_route = x->route != 0;
	e->route = (Kp__Route)x->route;
	e->sent_at_ms = x->sent_ms;
	e->due_at_ms = s_due_at(x, at);
	e->state = (Kp__ExpectationState)s_state_at(x, at);
	e->reminders = x->reminders;
	if (s_interim_at(x, at)) {
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
	t->partner_name = arena_strdup(w->a, s_partner_name(w->d,
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
	return s_push(w->a, &w->items, t) != 0 ? (w->failed = 1) : 0;
}

/* The outcome of received answer `id` ("positief"), 0; -1 if its payload
 * is gone or unreadable. */
static int
s_answer_outcome(kpd_t *d, int type, const uint8_t id[16], char *out,
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
		st = s_state_at(&w->x[i], w->at);
		rs->has_route = 1;
		rs->route = (Kp__Route)w->x[i].route;
		rs->partner_oin = arena_strdup(w->a, w->x[i].partner_oin);
		rs->state = (char *)names[st];
		if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN &&
		    s_delivered(w->d, w->x[i].event_id, w->at))
			rs->state = "received";
		if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN &&
		    s_interim_at(&w->x[i], w->at))
			rs->state = "interim";   /* a phase came, the final not */
		if (st >= KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED &&
		    s_answer_outcome(w->d, w->x[i].answer_type,
		    w->x[i].answered_by, summary, sizeof(summary)) == 0)
			rs->outcome = arena_strdup(w->a, summary);
		else if (st < KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED &&
		    s_interim_at(&w->x[i], w->at) && s_answer_outcome(w->d,
		    w->x[i].answer_type, w->x[i].interim_by, summary,
		    sizeof(summary)) == 0)
			rs->outcome = arena_strdup(w->a, summary);
		if (s_push(w->a, &out, rs) != 0)
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
		if (s_push(a, &ex, s_expectation(d, a, &w.x[i], w.at)) != 0)
			w.failed = 1;
	r->n_expectations = ex.n;
	r->expectations = (Kp__Expectation **)ex.v;
	if (w.failed || s_routes(&w, r) != 0)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	*out = r;
	return 0;
}

/* ---- all cases ---- */

struct cases_walk {
	kpd_t *d;
	arena_t *a;
	const Kp__CasesRequest *q;
	uint64_t at;
	struct ptrs out;
	int failed;
};

struct case_counts {
	uint64_t at;
	uint32_t open, overdue, answered;
	int routes[8];
	size_t n_routes;
};

static int
s_count_x(void *arg, const expect_row_t *x)
{
	struct case_counts *c = arg;
	size_t i;
	int st;

	if (x->sent_ms > c->at)
		return 0;
	st = s_state_at(x, c->at);
	if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN)
		c->open++;
	else if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE)
		c->overdue++;
	else
		c->answered++;
	for (i = 0; i < c->n_routes && c->routes[i] != x->route; i++)
		;
	if (x->route != 0 && i == c->n_routes && c->n_routes < 8)
		c->routes[c->n_routes++] = x->route;
	return 0;
}

static bool
s_has_route(const struct case_counts *c, int route)
{
	size_t i;

	for (i = 0; i < c->n_routes; i++)
		if (c->routes[i] == route)
			return true;
	return false;
}

static int
s_case_summary(void *arg, const char *local, uint32_t events, uint64_t last)
{
	struct cases_walk *w = arg;
	struct case_counts c = { .at = w->at };
	Kp__CaseSummary *s;
	kp_err_t e;
	size_t i;

	if (store_expect_list(w->d->store, local, s_count_x, &c, &e) != 0)
		return (w->failed = 1);
	if ((w->q->has_overdue_only && w->q->overdue_only && c.overdue == 0) ||
	    (w->q->has_route && !s_has_route(&c, w->q->route)))
		return 0;
	if ((s = arena_alloc(w->a, sizeof(*s))) == NULL)
		return (w->failed = 1);
	kp__case_summary__init(s);
	s->routes = arena_alloc(w->a, 8 * sizeof(*s->routes));
	s->case_ref = arena_strdup(w->a, local);
	for (i = 0; s->routes != NULL && i < c.n_routes; i++)
		s->routes[s->n_routes++] = (Kp__Route)c.routes[i];
	s->has_events = s->has_open = s->has_overdue = s->has_answered = 1;
	s->has_last_at_ms = 1;
	s->events = events;
	s->open = c.open;
	s->overdue = c.overdue;
	s->answered = c.answered;
	s->last_at_ms = last;
	return s_push(w->a, &w->out, s) != 0 ? (w->failed = 1) : 0;
}

int
feedback_cases(kpd_t *d, arena_t *a, const Kp__CasesRequest *q,
    Kp__CasesResponse **out, kp_err_t *err)
{
	struct cases_walk w = { .d = d, .a = a, .q = q };
	Kp__CasesResponse *r = arena_alloc(a, sizeof(*r));

	w.at = q->has_at_ms && q->at_ms > 0 ? q->at_ms : kp_now_ms();
	if (r == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	if (store_cases(d->store, w.at, s_case_summary, &w, err) != 0)
		return -1;
	if (w.failed)
		return kp_fail(err, KP_ERR_NOMEM, "cases: out of memory or "
		    "storage error");
	kp__cases_response__init(r);
	r->has_at_ms = 1;
	r->at_ms = w.at;
	r->n_cases = w.out.n;
	r->cases = (Kp__CaseSummary **)w.out.v;
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

	if (x->sent_ms <= w->at && s_state_at(x, w->at) ==
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

/* ---- the evaluation report ---- */

struct report_walk {
	uint64_t from, to, at;
	arena_t *a;
	expect_row_t *x;
	size_t n, cap;
	int failed;
};

/* The rows of the period, on the heap (freed by feedback_report once
 * the answer holds copies of what it needs): grown in place, not copied
 * into a new arena block at every doubling, which kept every smaller
 * copy until the answer was sent. */
static int
s_report_x(void *arg, const expect_row_t *x)
{
	struct report_walk *w = arg;
	expect_row_t *grown;
	size_t cap;

	if (x->route == 0 || x->sent_ms < w->from || x->sent_ms >= w->to ||
	    x->sent_ms > w->at)
		return 0;            /* outside the period, or not sent by `at` */
	if (w->n == w->cap) {
		cap = w->cap ? 2 * w->cap : 64;
		if ((grown = realloc(w->x, cap * sizeof(*grown))) == NULL)
			return (w->failed = 1);
		w->x = grown;
		w->cap = cap;
	}
	w->x[w->n++] = *x;
	return 0;
}

static int
s_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The outcome label of an expectation as of at. */
static void
s_outcome(kpd_t *d, const expect_row_t *x, uint64_t at, char *out,
    size_t len)
{
	char phase[128];
	int st = s_state_at(x, at);
	bool interim = s_interim_at(x, at);

	if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN && interim &&
	    s_answer_outcome(d, x->answer_type, x->interim_by, phase,
	    sizeof(phase)) == 0)
		snprintf(out, len, "interim: %s", phase);
	else if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN)
		snprintf(out, len, "awaited");
	else if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE)
		snprintf(out, len, interim ? "no final answer (overdue)" :
		    "no answer (overdue)");
	else if (s_answer_outcome(d, x->answer_type, x->answered_by, out,
	    len) != 0)
		snprintf(out, len, "answered (payload destroyed)");
}

static Kp__OutcomeCount *
s_outcome_slot(arena_t *a, struct ptrs *p, const char *name)
{
	Kp__OutcomeCount *o;
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(((Kp__OutcomeCount *)p->v[i])->outcome, name) == 0)
			return p->v[i];
	if ((o = arena_alloc(a, sizeof(*o))) == NULL)
		return NULL;
	kp__outcome_count__init(o);
	o->outcome = arena_strdup(a, name);
	o->has_count = 1;
	return s_push(a, p, o) == 0 ? o : NULL;
}

/* The chain policy's lead time for the answers of partner oin on route
 * (expects.ROLE of the event that asked them), when there is one. */
static void
s_norm(kpd_t *d, const struct report_walk *w, int route, const char *oin,
    Kp__PartnerLeadTimes *p)
{
	const peer_t *peer = directory_find(d->chain->dir, oin);
	uint64_t lead;
	size_t i;
	int answer;

	for (i = 0; i < w->n && peer != NULL; i++)
		if (w->x[i].route == route && strcmp(w->x[i].partner_oin,
		    oin) == 0) {
			if (policy_rule_expects(policy_rule(d->policy,
			    w->x[i].sent_type), partner_role(peer_partner(peer)),
			    &answer, &lead) == 0) {
				p->has_norm_days = 1;
				p->norm_days = (double)lead / 86400000.0;
			}
			return;
		}
}

/* Lead times and counts of one partner on one route. */
static Kp__PartnerLeadTimes *
s_partner(kpd_t *d, arena_t *a, const struct report_walk *w, int route,
    const char *oin, uint64_t at)
{
	Kp__PartnerLeadTimes *p = arena_alloc(a, sizeof(*p));
	double *days = arena_alloc(a, (w->n + 1) * sizeof(double));
	size_t i, n = 0;
	int st;

	if (p == NULL || days == NULL)
		return NULL;
	kp__partner_lead_times__init(p);
	p->partner_oin = arena_strdup(a, oin);
	p->partner_name = arena_strdup(a, s_partner_name(d, oin));
	p->has_expected = p->has_answered = p->has_within_lead_time = 1;
	p->has_median_days = p->has_p90_days = p->has_overdue_now = 1;
	for (i = 0; i < w->n; i++) {
		if (w->x[i].route != route || strcmp(w->x[i].partner_oin, oin))
			continue;
		p->expected++;
		st = s_state_at(&w->x[i], at);
		if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE)
			p->overdue_now++;
		if (st < KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED)
			continue;
		p->answered++;
		p->within_lead_time += st ==
		    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED;
		days[n++] = (double)(w->x[i].answered_ms - w->x[i].sent_ms) /
		    86400000.0;
	}
	qsort(days, n, sizeof(double), s_cmp_double);
	s_norm(d, w, route, oin, p);
	p->median_days = kp_median(days, n);
	p->p90_days = kp_percentile(days, n, 90);
	return p;
}

/* The officer's record of the absence after the route, per case of the
 * route, as of at: stopped, reduced, continued or not recorded. */
static int
s_absence_after(kpd_t *d, arena_t *a, Kp__RouteReport *r,
    const struct ptrs *cases, uint64_t at)
{
	static const char *const names[] = { "not recorded", "stopped",
	    "reduced", "continued" };
	struct ptrs counts = { 0 };
	Kp__OutcomeCount *o;
	uint64_t when = 0;
	bool found;
	kp_err_t e;
	size_t i;
	int v;

	for (i = 0; i < 4; i++)          /* every label, also at 0 */
		if (s_outcome_slot(a, &counts, names[i]) == NULL)
			return -1;
	for (i = 0; i < cases->n; i++) {
		v = 0;
		if (store_absence_get(d->store, cases->v[i], &v, &when, &found,
		    &e) != 0)
			return -1;
		if (!found || when > at || v < 1 || v > 3)
			v = 0;
		o = counts.v[v];
		o->count++;
	}
	r->n_absence_after = counts.n;
	r->absence_after = (Kp__OutcomeCount **)counts.v;
	return 0;
}

static Kp__RouteReport *
s_route_report(kpd_t *d, arena_t *a, const struct report_walk *w, int route,
    uint64_t at)
{
	Kp__RouteReport *r = arena_alloc(a, sizeof(*r));
	struct ptrs outcomes = { 0 }, partners = { 0 }, cases = { 0 };
	struct caseset seen = { 0 };
	Kp__OutcomeCount *o;
	char label[160];
	size_t i, j;
	bool added;

	if (r == NULL)
		return NULL;
	kp__route_report__init(r);
	r->has_route = r->has_cases = r->has_referrals = r->has_overdue_now = 1;
	r->has_escalated = 1;
	r->route = (Kp__Route)route;
	for (i = 0; i < w->n; i++) {
		const expect_row_t *x = &w->x[i];

		if (x->route != route)
			continue;
		r->referrals++;
		r->overdue_now += s_state_at(x, at) ==
		    KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE;
		r->escalated += s_facts_escalated(d, x, at);
		s_outcome(d, x, at, label, sizeof(label));
		if ((o = s_outcome_slot(a, &outcomes, label)) == NULL)
			return NULL;
		o->count++;
		if (s_caseset_add(a, &seen, NULL, x->case_local, &added) != 0 ||
		    (added && s_push(a, &cases, (void *)x->case_local) != 0))
			return NULL;
		for (j = 0; j < partners.n && strcmp(((Kp__PartnerLeadTimes *)
		    partners.v[j])->partner_oin, x->partner_oin); j++)
			;
		if (j == partners.n && s_push(a, &partners, s_partner(d, a, w,
		    route, x->partner_oin, at)) != 0)
			return NULL;
	}
	if (s_absence_after(d, a, r, &cases, at) != 0)
		return NULL;
	r->cases = (uint32_t)cases.n;
	r->n_outcomes = outcomes.n;
	r->outcomes = (Kp__OutcomeCount **)outcomes.v;
	r->n_partners = partners.n;
	r->partners = (Kp__PartnerLeadTimes **)partners.v;
	return r;
}

/* "2026-11" of a time (UTC). */
static void
s_month_of(uint64_t ms, char out[8])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		snprintf(out, 8, "?");
	else
		snprintf(out, 8, "%04u-%02u", (unsigned)(tm.tm_year + 1900) %
		    10000u, (unsigned)(tm.tm_mon + 1) % 13u);
}

static Kp__MonthTrend *
s_month_slot(arena_t *a, struct ptrs *p, const char *month)
{
	Kp__MonthTrend *m;
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(((Kp__MonthTrend *)p->v[i])->month, month) == 0)
			return p->v[i];
	if (p->n >= 120 || (m = arena_alloc(a, sizeof(*m))) == NULL)
		return NULL;
	kp__month_trend__init(m);
	m->month = arena_strdup(a, month);
	m->has_cases = m->has_referrals = m->has_answered = 1;
	m->has_within_lead_time = m->has_due = 1;
	return s_push(a, p, m) == 0 ? m : NULL;
}

/* Every month from `from` (or the first referral) to `to` (or `at`), and
 * per month the referrals sent in it and what became of them by `at`. */
static int
s_months(arena_t *a, const struct report_walk *w, Kp__ReportResponse *r)
{
	struct ptrs months = { 0 };
	struct caseset seen = { 0 };
	uint64_t start = w->from, end = w->to == UINT64_MAX ? w->at : w->to;
	Kp__MonthTrend *m;
	char month[8];
	bool added;
	size_t i;
	int st;

	for (i = 0; i < w->n && w->from == 0; i++)
		if (start == 0 || w->x[i].sent_ms < start)
			start = w->x[i].sent_ms;
	/* every month, also one without referrals: steps of 28 days never
	 * skip one, and a month met twice is the same slot */
	for (; start > 0 && start < end && months.n < 120;
	    start += 28 * 86400000ull) {
		s_month_of(start, month);
		(void)s_month_slot(a, &months, month);
	}
	for (i = 0; i < w->n; i++) {
		s_month_of(w->x[i].sent_ms, month);
		if ((m = s_month_slot(a, &months, month)) == NULL)
			continue;    /* more than 120 months: left out */
		m->referrals++;
		st = s_state_at(&w->x[i], w->at);
		m->answered += st >=
		    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED;
		m->within_lead_time += st ==
		    KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED;
		m->due += st != KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN;
		/* a case counts once per month */
		if (s_caseset_add(a, &seen, m, w->x[i].case_local, &added) != 0)
			return -1;
		m->cases += added;
	}
	r->n_months = months.n;
	r->months = (Kp__MonthTrend **)months.v;
	return 0;
}

int
feedback_report(kpd_t *d, arena_t *a, const Kp__ReportRequest *q,
    Kp__ReportResponse **out, kp_err_t *err)
{
	struct report_walk w = { .a = a };
	Kp__ReportResponse *r = arena_alloc(a, sizeof(*r));
	struct ptrs routes = { 0 };
	uint64_t at = q->has_at_ms && q->at_ms > 0 ? q->at_ms : kp_now_ms();
	int route;

	w.at = at;
	w.from = q->has_from_ms ? q->from_ms : 0;
	w.to = q->has_to_ms && q->to_ms > 0 ? q->to_ms : UINT64_MAX;
	if (r == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	if (store_expect_list(d->store, NULL, s_report_x, &w, err) != 0)
		goto fail;
	for (route = KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP;
	    route <= KP__ROUTE__ROUTE_DWANG_STRAFRECHTELIJK && !w.failed;
	    route++)
		if (s_push(a, &routes, s_route_report(d, a, &w, route, at)) != 0)
			w.failed = 1;
	if (w.failed) {
		kp_fail(err, KP_ERR_NOMEM, "report: out of memory");
		goto fail;
	}
	kp__report_response__init(r);
	r->has_from_ms = r->has_to_ms = r->has_at_ms = 1;
	r->from_ms = w.from;
	r->to_ms = w.to == UINT64_MAX ? 0 : w.to;
	r->at_ms = at;
	r->n_routes = routes.n;
	r->routes = (Kp__RouteReport **)routes.v;
	if (s_months(a, &w, r) != 0) {
		kp_fail(err, KP_ERR_NOMEM, "report: out of memory");
		goto fail;
	}
	free(w.x);
	*out = r;
	return 0;
fail:
	free(w.x);
	return -1;
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
s_reminder_row(void *arg, const subject_row_t *row)
{
	struct reminder_facts *f = arg;

	if (!row->sent || row->event_type !=
	    KP__EVENT_TYPE__EVENT_TYPE_REMINDER || !row->has_reply_to ||
	    row->at_ms > f->at || memcmp(row->in_reply_to, f->event_id, 16))
		return 0;
	f->n++;
	if (row->at_ms > f->last_ms)
		f->last_ms = row->at_ms;
	/* the field list of a sent event is stored with it: an escalation
	 * is the reminder that carried the escalation field */
	if (s_names(row->fields, "escalation"))
		f->escalated = true;
	return 0;
}

static int
s_reminder_facts(kpd_t *d, const expect_row_t *x, uint64_t at,
    struct reminder_facts *f, kp_err_t *err)
{
	memset(f, 0, sizeof(*f));
	f->event_id = x->event_id;
	f->at = at;
	return store_subject(d->store, x->case_local, s_reminder_row, f, err);
}

/* Had an escalation been sent for x by `at`? */
static bool
s_facts_escalated(kpd_t *d, const expect_row_t *x, uint64_t at)
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

struct todo_walk {
	uint64_t at, horizon;
	arena_t *a;
	expect_row_t *x;
	size_t n, cap;
	int failed;
};

static int
s_todo_x(void *arg, const expect_row_t *x)
{
	struct todo_walk *w = arg;
	expect_row_t *grown;

	if (x->sent_ms > w->at || (x->answered && x->answered_ms <= w->at) ||
	    s_due_at(x, w->at) > w->horizon)
		return 0;            /* not yet sent, answered, or not due soon */
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 32;
		if ((grown = arena_alloc(w->a, w->cap * sizeof(*grown))) == NULL)
			return (w->failed = 1);
		if (w->n > 0)
			memcpy(grown, w->x, w->n * sizeof(*grown));
		w->x = grown;
	}
	w->x[w->n++] = *x;
	return 0;
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
	t->partner_name = arena_strdup(a, s_partner_name(d, x->partner_oin));
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
	t->interim = s_interim_at(x, at);
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
	return strcmp(x->partner_oin, y->partner_oin);
}

int
feedback_todo(kpd_t *d, arena_t *a, const Kp__TodoRequest *q,
    Kp__TodoResponse **out, kp_err_t *err)
{
	struct todo_walk w = { .a = a };
	Kp__TodoResponse *r = arena_alloc(a, sizeof(*r));
	struct ptrs items = { 0 };
	uint32_t days = q->has_days ? q->days : 7;
	Kp__TodoItem *t;
	size_t i;

	if (days > 365)
		return kp_fail(err, KP_ERR_INVALID_ARG, "todo: days %u is more "
		    "than 365", days);
	w.at = q->has_at_ms && q->at_ms > 0 ? q->at_ms : kp_now_ms();
	w.horizon = w.at + (uint64_t)days * 86400000u;
	if (r == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	if (store_expect_list(d->store, NULL, s_todo_x, &w, err) != 0)
		return -1;
	if (w.failed)
		return kp_fail(err, KP_ERR_NOMEM, "todo: out of memory");
	for (i = 0; i < w.n; i++) {
		if ((t = s_todo_item(d, a, &w.x[i], w.at, err)) == NULL)
			return -1;
		if (s_push(a, &items, t) != 0)
			return kp_fail(err, KP_ERR_NOMEM, "todo: out of memory");
	}
	if (items.n > 1)
		qsort(items.v, items.n, sizeof(void *), s_cmp_todo);
	kp__todo_response__init(r);
	r->has_at_ms = r->has_days = 1;
	r->at_ms = w.at;
	r->days = days;
	r->n_items = items.n;
	r->items = (Kp__TodoItem **)items.v;
	*out = r;
	return 0;
}
