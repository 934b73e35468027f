/*
 * feedback_report.c: the evaluation report per route (MAS step 10) —
 * referrals, distinct cases, outcomes, escalations, the absence after the
 * route, per partner the answers and their lead times against the norm,
 * and the trend per month, for the referrals sent in a period, as of a
 * moment `at` (see feedback.c for what "as of" means).
 *
 * The report aggregates while it walks the period's expectations once,
 * in table order (store_expect_period): it never holds the rows.  What
 * stays in memory is what the figures need: per route and partner the
 * lead times of the answers given (one double each: a median and a 90th
 * percentile need them all), and the set of (route or month, case) pairs
 * seen, to count distinct cases and look each case's absence record up
 * once.  Before, every row of the period (about 250 bytes) was held
 * sorted by sent time; a report over 200,000 referrals took the daemon's
 * peak past 100 MiB (docs/PERFORMANCE.md, "The officer's views").
 *
 * Order without a sorted walk: outcomes and partners are listed in the
 * order of their first referral by sent time (as the sorted walk listed
 * them), by keeping the earliest sent time of each; a tie keeps the one
 * met first.  Months are every month of the period in order, as before.
 *
 * It must never write to the store or log a case reference; payload
 * values appear only as outcome labels of answers received.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "events.h"
#include "events.pb-c.h"
#include "feedback_int.h"
#include "stats.h"

#define ROUTES 4              /* KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP.. */
#define MONTHS_MAX 120

/* ---- a set of strings, exact ---- */

/*
 * Keys are copied into one pool (a prefix naming the route or month, then
 * the case reference), found by open addressing over offsets into it:
 * about the key's length plus 8 bytes per entry, exact (no hash of the
 * reference stands in for it), nothing per row.
 */
struct strset {
	uint32_t *slot;               /* pool offsets; 0: empty */
	size_t cap, n;                /* cap: 0 or a power of two */
	char *pool;
	size_t used, room;            /* pool[0] is unused: offset 0 = empty */
};

static uint64_t
s_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)       /* FNV-1a */
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h ^ (h >> 29);
}

static int
s_set_grow(struct strset *set)
{
	size_t cap = set->cap ? 2 * set->cap : 1024, i, j;
	uint32_t *slot = calloc(cap, sizeof(*slot));

	if (slot == NULL)
		return -1;
	for (i = 0; i < set->cap; i++) {
		if (set->slot[i] == 0)
			continue;
		for (j = s_hash(set->pool + set->slot[i]) & (cap - 1);
		    slot[j] != 0; j = (j + 1) & (cap - 1))
			;
		slot[j] = set->slot[i];
	}
	free(set->slot);
	set->slot = slot;
	set->cap = cap;
	return 0;
}

/* Copy key into the pool.  OUT: *off.  -1: no memory or pool full. */
static int
s_pool_put(struct strset *set, const char *key, uint32_t *off)
{
	size_t len = strlen(key) + 1, room;
	char *grown;

	if (set->used + len > set->room) {
		room = set->room ? 2 * set->room : 65536;
		while (room < set->used + len + 1)
			room *= 2;
		if (room > UINT32_MAX || (grown = realloc(set->pool, room)) ==
		    NULL)
			return -1;
		set->pool = grown;
		set->room = room;
		if (set->used == 0)
			set->used = 1;
	}
	memcpy(set->pool + set->used, key, len);
	*off = (uint32_t)set->used;
	set->used += len;
	return 0;
}

/* Add key.  OUT: *added, false if it was there.  -1: no memory. */
static int
s_set_add(struct strset *set, const char *key, bool *added)
{
	size_t i;
	uint32_t off;

	*added = false;
	if (2 * (set->n + 1) > set->cap && s_set_grow(set) != 0)
		return -1;
	for (i = s_hash(key) & (set->cap - 1); set->slot[i] != 0;
	    i = (i + 1) & (set->cap - 1))
		if (strcmp(set->pool + set->slot[i], key) == 0)
			return 0;
	if (s_pool_put(set, key, &off) != 0)
		return -1;
	set->slot[i] = off;
	set->n++;
	*added = true;
	return 0;
}

static void
s_set_free(struct strset *set)
{
	free(set->slot);
	free(set->pool);
	memset(set, 0, sizeof(*set));
}

/* ---- the figures, as the walk adds them up ---- */

/* "first" of a slot: its earliest referral's sent time, for the order. */
struct rp_outcome {
	char label[160];
	uint64_t first;
	size_t met;                   /* slots before it: the walk's order */
	uint32_t count;
};

struct rp_partner {
	char oin[21];
	uint64_t first;
	size_t met;                   /* slots before it: the walk's order */
	int first_type;               /* sent_type of that referral: the norm */
	uint32_t expected, answered, within, overdue;
	double *days;                 /* lead times of the answers (heap) */
	size_t n_days, cap_days;
};

struct rp_route {
	uint32_t referrals, overdue, escalated, cases, absence[4];
	struct rp_outcome *outcomes;  /* heap */
	size_t n_outcomes;
	struct rp_partner *partners;  /* heap */
	size_t n_partners;
};

struct rp_month {
	char month[8];
	uint64_t first;
	uint32_t referrals, answered, within, due, cases;
};

struct report_walk {
	kpd_t *d;
	uint64_t from, to, at, start;  /* start: the earliest referral */
	struct rp_route routes[ROUTES];
	struct rp_month *months;       /* heap; every month met */
	size_t n_months, last_month;
	struct strset seen;            /* "R<route><case>", "M<month><case>" */
	int failed;
};

/* Grow *v (n items of size) by one, zeroed.  NULL: no memory. */
static void *
s_grow_one(void **v, size_t *n, size_t size)
{
	char *grown;

	/* doubling: the capacity is n rounded up to a power of two */
	if (*n == 0 || (*n & (*n - 1)) == 0) {
		grown = realloc(*v, (*n ? 2 * *n : 1) * size);
		if (grown == NULL)
			return NULL;
		*v = grown;
	}
	memset((char *)*v + *n * size, 0, size);
	return (char *)*v + (*n)++ * size;
}

/* The outcome label of an expectation as of at. */
static void
s_outcome(kpd_t *d, const expect_row_t *x, uint64_t at, char *out,
    size_t len)
{
	char phase[128];
	int st = feedback_state_at(x, at);
	bool interim = feedback_interim_at(x, at);

	if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN && interim &&
	    feedback_answer_outcome(d, x->answer_type, x->interim_by, phase,
	    sizeof(phase)) == 0)
		snprintf(out, len, "interim: %s", phase);
	else if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN)
		snprintf(out, len, "awaited");
	else if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE)
		snprintf(out, len, interim ? "no final answer (overdue)" :
		    "no answer (overdue)");
	else if (feedback_answer_outcome(d, x->answer_type, x->answered_by,
	    out, len) != 0)
		snprintf(out, len, "answered (payload destroyed)");
}

static int
s_add_outcome(struct report_walk *w, struct rp_route *r,
    const expect_row_t *x)
{
	struct rp_outcome *o;
	char label[160];
	size_t i;

	s_outcome(w->d, x, w->at, label, sizeof(label));
	for (i = 0; i < r->n_outcomes; i++)
		if (strcmp(r->outcomes[i].label, label) == 0)
			break;
	if (i == r->n_outcomes) {
		if ((o = s_grow_one((void **)&r->outcomes, &r->n_outcomes,
		    sizeof(*o))) == NULL)
			return -1;
		memcpy(o->label, label, sizeof(label));
		o->first = x->sent_ms;
		o->met = i;
	}
	o = &r->outcomes[i];
	o->count++;
	if (x->sent_ms < o->first)
		o->first = x->sent_ms;
	return 0;
}

static struct rp_partner *
s_partner_slot(struct rp_route *r, const expect_row_t *x)
{
	struct rp_partner *p;
	size_t i;

	for (i = 0; i < r->n_partners; i++)
		if (strcmp(r->partners[i].oin, x->partner_oin) == 0) {
			p = &r->partners[i];
			if (x->sent_ms < p->first) {
				p->first = x->sent_ms;
				p->first_type = x->sent_type;
			}
			return p;
		}
	if ((p = s_grow_one((void **)&r->partners, &r->n_partners,
	    sizeof(*p))) == NULL)
		return NULL;
	snprintf(p->oin, sizeof(p->oin), "%s", x->partner_oin);
	p->first = x->sent_ms;
	p->first_type = x->sent_type;
	p->met = r->n_partners - 1;
	return p;
}

static int
s_add_partner(struct rp_route *r, const expect_row_t *x, int st)
{
	struct rp_partner *p = s_partner_slot(r, x);
	double *day;

	if (p == NULL)
		return -1;
	p->expected++;
	p->overdue += st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE;
	if (st < KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED)
		return 0;
	p->answered++;
	p->within += st == KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED;
	if ((day = s_grow_one((void **)&p->days, &p->n_days,
	    sizeof(*day))) == NULL)
		return -1;
	*day = (double)(x->answered_ms - x->sent_ms) / 86400000.0;
	return 0;
}

/* A case first met on this route: counted, and its absence record (as of
 * at) looked up once. */
static int
s_add_case(struct report_walk *w, struct rp_route *r, const expect_row_t *x)
{
	char key[2 + sizeof(x->case_local)];
	uint64_t when = 0;
	bool added, found = false;
	kp_err_t e;
	int v = 0;

	snprintf(key, sizeof(key), "R%c%s", '0' + x->route, x->case_local);
	if (s_set_add(&w->seen, key, &added) != 0)
		return -1;
	if (!added)
		return 0;
	r->cases++;
	if (store_absence_get(w->d->store, x->case_local, &v, &when, &found,
	    &e) != 0)
		return -1;
	if (!found || when > w->at || v < 1 || v > 3)
		v = 0;
	r->absence[v]++;
	return 0;
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

static struct rp_month *
s_month_find(struct report_walk *w, const char *month)
{
	size_t i;

	if (w->last_month < w->n_months &&
	    strcmp(w->months[w->last_month].month, month) == 0)
		return &w->months[w->last_month];
	for (i = 0; i < w->n_months; i++)
		if (strcmp(w->months[i].month, month) == 0)
			return &w->months[w->last_month = i];
	return NULL;
}

static int
s_add_month(struct report_walk *w, const expect_row_t *x, int st)
{
	char month[8], key[10 + sizeof(x->case_local)];
	struct rp_month *m;
	bool added;

	s_month_of(x->sent_ms, month);
	if ((m = s_month_find(w, month)) == NULL) {
		if ((m = s_grow_one((void **)&w->months, &w->n_months,
		    sizeof(*m))) == NULL)
			return -1;
		memcpy(m->month, month, sizeof(month));
		m->first = x->sent_ms;
	}
	if (x->sent_ms < m->first)
		m->first = x->sent_ms;
	m->referrals++;
	m->answered += st >= KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED;
	m->within += st == KP__EXPECTATION_STATE__EXPECTATION_STATE_ANSWERED;
	m->due += st != KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN;
	/* a case counts once per month */
	snprintf(key, sizeof(key), "M%s%s", month, x->case_local);
	if (s_set_add(&w->seen, key, &added) != 0)
		return -1;
	m->cases += added;
	return 0;
}

/* One referral of the period: everything it counts for. */
static int
s_report_x(void *arg, const expect_row_t *x)
{
	struct report_walk *w = arg;
	struct rp_route *r;
	int st;

	if (x->route == 0 || x->sent_ms > w->at)
		return 0;            /* no route, or not sent by `at` */
	st = feedback_state_at(x, w->at);
	if (w->start == 0 || x->sent_ms < w->start)
		w->start = x->sent_ms;
	if (s_add_month(w, x, st) != 0)
		return (w->failed = 1);
	if (x->route < 1 || x->route > ROUTES)
		return 0;            /* a route the report does not list */
	r = &w->routes[x->route - 1];
	r->referrals++;
	r->overdue += st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE;
	r->escalated += feedback_escalated(w->d, x, w->at);
	if (s_add_outcome(w, r, x) != 0 || s_add_partner(r, x, st) != 0 ||
	    s_add_case(w, r, x) != 0)
		return (w->failed = 1);
	return 0;
}

static void
s_walk_free(struct report_walk *w)
{
	size_t i, j;

	for (i = 0; i < ROUTES; i++) {
		for (j = 0; j < w->routes[i].n_partners; j++)
			free(w->routes[i].partners[j].days);
		free(w->routes[i].partners);
		free(w->routes[i].outcomes);
	}
	free(w->months);
	s_set_free(&w->seen);
}

/* ---- the answer ---- */

static int
s_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Slots in the order of their first referral; a tie keeps walk order
 * (`met`: qsort itself need not be stable, and moves what it sorts). */
static int
s_cmp_outcome(const void *a, const void *b)
{
	const struct rp_outcome *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->met < y->met ? -1 : x->met > y->met;
}

static int
s_cmp_partner(const void *a, const void *b)
{
	const struct rp_partner *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->met < y->met ? -1 : x->met > y->met;
}

static Kp__OutcomeCount *
s_count(arena_t *a, const char *name, uint32_t n)
{
	Kp__OutcomeCount *o = arena_alloc(a, sizeof(*o));

	if (o == NULL)
		return NULL;
	kp__outcome_count__init(o);
	o->outcome = arena_strdup(a, name);
	o->has_count = 1;
	o->count = n;
	return o->outcome != NULL ? o : NULL;
}

/* The chain policy's lead time for the answers of partner p on its route
 * (expects.ROLE of its first referral), when there is one. */
static void
s_norm(kpd_t *d, const struct rp_partner *p, Kp__PartnerLeadTimes *out)
{
	const peer_t *peer = directory_find(d->chain->dir, p->oin);
	uint64_t lead;
	int answer;

	if (peer != NULL && policy_rule_expects(policy_rule(d->policy,
	    p->first_type), partner_role(peer_partner(peer)), &answer,
	    &lead) == 0) {
		out->has_norm_days = 1;
		out->norm_days = (double)lead / 86400000.0;
	}
}

static Kp__PartnerLeadTimes *
s_partner(kpd_t *d, arena_t *a, struct rp_partner *p)
{
	Kp__PartnerLeadTimes *o = arena_alloc(a, sizeof(*o));

	if (o == NULL)
		return NULL;
	kp__partner_lead_times__init(o);
	o->partner_oin = arena_strdup(a, p->oin);
	o->partner_name = arena_strdup(a, feedback_partner_name(d, p->oin));
	o->has_expected = o->has_answered = o->has_within_lead_time = 1;
	o->has_median_days = o->has_p90_days = o->has_overdue_now = 1;
	o->expected = p->expected;
	o->answered = p->answered;
	o->within_lead_time = p->within;
	o->overdue_now = p->overdue;
	if (p->n_days > 1)
		qsort(p->days, p->n_days, sizeof(double), s_cmp_double);
	s_norm(d, p, o);
	o->median_days = kp_median(p->days, p->n_days);
	o->p90_days = kp_percentile(p->days, p->n_days, 90);
	return o->partner_oin != NULL && o->partner_name != NULL ? o : NULL;
}

static Kp__RouteReport *
s_route_report(kpd_t *d, arena_t *a, struct rp_route *w, int route)
{
	static const char *const absence[] = { "not recorded", "stopped",
	    "reduced", "continued" };
	Kp__RouteReport *r = arena_alloc(a, sizeof(*r));
	struct ptrs outcomes = { 0 }, partners = { 0 }, after = { 0 };
	size_t i;

	if (r == NULL)
		return NULL;
	kp__route_report__init(r);
	r->has_route = r->has_cases = r->has_referrals = r->has_overdue_now = 1;
	r->has_escalated = 1;
	r->route = (Kp__Route)route;
	r->referrals = w->referrals;
	r->overdue_now = w->overdue;
	r->escalated = w->escalated;
	r->cases = w->cases;
	if (w->n_outcomes > 1)
		qsort(w->outcomes, w->n_outcomes, sizeof(*w->outcomes),
		    s_cmp_outcome);
	if (w->n_partners > 1)
		qsort(w->partners, w->n_partners, sizeof(*w->partners),
		    s_cmp_partner);
	for (i = 0; i < w->n_outcomes; i++)
		if (feedback_push(a, &outcomes, s_count(a, w->outcomes[i].label,
		    w->outcomes[i].count)) != 0)
			return NULL;
	for (i = 0; i < w->n_partners; i++)
		if (feedback_push(a, &partners, s_partner(d, a,
		    &w->partners[i])) != 0)
			return NULL;
	for (i = 0; i < 4; i++)          /* every label, also at 0 */
		if (feedback_push(a, &after, s_count(a, absence[i],
		    w->absence[i])) != 0)
			return NULL;
	r->n_outcomes = outcomes.n;
	r->outcomes = (Kp__OutcomeCount **)outcomes.v;
	r->n_partners = partners.n;
	r->partners = (Kp__PartnerLeadTimes **)partners.v;
	r->n_absence_after = after.n;
	r->absence_after = (Kp__OutcomeCount **)after.v;
	return r;
}

static int
s_month_out(arena_t *a, struct ptrs *out, const struct rp_month *m,
    const char *month)
{
	Kp__MonthTrend *t;
	size_t i;

	for (i = 0; i < out->n; i++)     /* a month met twice: one entry */
		if (strcmp(((Kp__MonthTrend *)out->v[i])->month, month) == 0)
			return 0;
	if ((t = arena_alloc(a, sizeof(*t))) == NULL)
		return -1;
	kp__month_trend__init(t);
	if ((t->month = arena_strdup(a, month)) == NULL)
		return -1;
	t->has_cases = t->has_referrals = t->has_answered = 1;
	t->has_within_lead_time = t->has_due = 1;
	if (m != NULL) {
		t->cases = m->cases;
		t->referrals = m->referrals;
		t->answered = m->answered;
		t->within_lead_time = m->within;
		t->due = m->due;
	}
	return feedback_push(a, out, t);
}

static int
s_cmp_month(const void *a, const void *b)
{
	const struct rp_month *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return strcmp(x->month, y->month);
}

/*
 * Every month from `from` (or the first referral) to `to` (or `at`),
 * also one without referrals: steps of 28 days never skip one.  Then any
 * month of a referral not listed yet (only the month of the period's end
 * can be one), at most 120 in all; a referral of a month left out counts
 * in none.
 */
static int
s_months(arena_t *a, struct report_walk *w, Kp__ReportResponse *r)
{
	struct ptrs out = { 0 };
	uint64_t start = w->from ? w->from : w->start;
	uint64_t end = w->to == UINT64_MAX ? w->at : w->to;
	char month[8];
	size_t i;

	for (; start > 0 && start < end && out.n < MONTHS_MAX;
	    start += 28 * 86400000ull) {
		s_month_of(start, month);
		if (s_month_out(a, &out, s_month_find(w, month), month) != 0)
			return -1;
	}
	if (w->n_months > 1)
		qsort(w->months, w->n_months, sizeof(*w->months), s_cmp_month);
	w->last_month = 0;
	for (i = 0; i < w->n_months && out.n < MONTHS_MAX; i++)
		if (s_month_out(a, &out, &w->months[i], w->months[i].month) != 0)
			return -1;
	r->n_months = out.n;
	r->months = (Kp__MonthTrend **)out.v;
	return 0;
}

static int
s_answer(kpd_t *d, arena_t *a, struct report_walk *w, Kp__ReportResponse *r)
{
	struct ptrs routes = { 0 };
	int route;

	kp__report_response__init(r);
	r->has_from_ms = r->has_to_ms = r->has_at_ms = 1;
	r->from_ms = w->from;
	r->to_ms = w->to == UINT64_MAX ? 0 : w->to;
	r->at_ms = w->at;
	for (route = 1; route <= ROUTES; route++)
		if (feedback_push(a, &routes, s_route_report(d, a,
		    &w->routes[route - 1], route)) != 0)
			return -1;
	r->n_routes = routes.n;
	r->routes = (Kp__RouteReport **)routes.v;
	return s_months(a, w, r);
}

int
feedback_report(kpd_t *d, arena_t *a, const Kp__ReportRequest *q,
    Kp__ReportResponse **out, kp_err_t *err)
{
	struct report_walk w = { .d = d };
	Kp__ReportResponse *r = arena_alloc(a, sizeof(*r));
	uint64_t hi;
	int ret = -1;

	w.at = q->has_at_ms && q->at_ms > 0 ? q->at_ms : kp_now_ms();
	w.from = q->has_from_ms ? q->from_ms : 0;
	w.to = q->has_to_ms && q->to_ms > 0 ? q->to_ms : UINT64_MAX;
	/* sent in [from, to) and by at */
	hi = w.at < UINT64_MAX && w.at + 1 < w.to ? w.at + 1 : w.to;
	if (r == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	if (store_expect_period(d->store, w.from, hi, s_report_x, &w,
	    err) != 0)
		goto out;
	if (w.failed || s_answer(d, a, &w, r) != 0) {
		kp_fail(err, KP_ERR_NOMEM, "report: out of memory or storage "
		    "error");
		goto out;
	}
	*out = r;
	ret = 0;
out:
	s_walk_free(&w);
	return ret;
}
