/*
 * feedback_cases.c: the officer's list of all cases (or those overdue, or
 * on one route) as of a moment `at`: per case its routes, its events, and
 * the answers expected from partners that were open, overdue or answered
 * then (see feedback.c for what "as of" means).
 *
 * Two walks of the store, whatever the number of cases: the events per
 * case and partner (store_cases: by link, no sort), then every
 * expectation sent by `at` (store_expect_period: table order), each
 * counted for its case, found by binary search in the list sorted by
 * reference.  Before, the list asked the store for each case's
 * expectations (a sealed look-up per case and partner): 7.8-10.8 s for
 * 200,000 cases on the daemon's one loop, where nothing is delivered
 * meanwhile (docs/PERFORMANCE.md, "The officer's views").
 *
 * Only the overdue ones (--overdue, and a REST client waiting for one,
 * which has the list made every second): the cases found among what can
 * be overdue (store_expect_todo, by indexes), each summed up on its own;
 * work in the overdue cases, not the history.
 *
 * The answer holds every case (CasesRequest has no paging), so its memory
 * is linear in the number of cases listed: the summaries are one array,
 * the references one pool, both handed to the request's arena; about 110
 * bytes per case while the list is made, nothing per expectation or
 * event.  Routes are listed in the order of their first referral by sent
 * time (a tie: the route met first).
 *
 * It must never write to the store or log a case reference.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "daemon.h"
#include "events.h"
#include "events.pb-c.h"
#include "feedback_int.h"

#define CASE_ROUTES 4          /* distinct routes one case can be on */
/* Overdue answers above which the overdue cases are found by the walks
 * of the whole list instead: one case summed up on its own costs some
 * 40 us, the whole list some 6 us per case (200,000 cases, 1.2 s). */
#define OVERDUE_ONE_BY_ONE_MAX 4096

/* The events of one case with one partner (store_cases). */
struct case_link {
	const char *s;             /* the reference, once the pool is whole */
	uint32_t ref;              /* its offset in the pool */
	uint32_t events;
	uint64_t last_ms;
};

/* What a case's summary cannot hold while the expectations are walked. */
struct case_side {
	uint64_t route_ms[CASE_ROUTES]; /* first referral on each route */
	int route[CASE_ROUTES];
	uint8_t n_routes;
};

struct cases_walk {
	kpd_t *d;
	arena_t *a;
	uint64_t at;
	char *pool;                /* the references, NUL-terminated */
	size_t used, room;
	struct case_link *link;    /* heap, freed once grouped */
	size_t n_link, cap_link;
	Kp__CaseSummary *cs;       /* one per case, sorted by reference */
	struct case_side *side;    /* beside cs; heap, freed at the end */
	size_t n;
	size_t cur;                /* the case s_event counts for */
	int failed;
};

/* Copy s into the pool.  OUT: *off.  -1: no memory. */
static int
s_pool_put(struct cases_walk *w, const char *s, uint32_t *off)
{
	size_t len = strlen(s) + 1, room = w->room ? w->room : 65536;
	char *grown;

	while (room < w->used + len)
		room *= 2;
	if (room > UINT32_MAX)
		return -1;
	if (room != w->room) {
		if ((grown = realloc(w->pool, room)) == NULL)
			return -1;
		w->pool = grown;
		w->room = room;
	}
	memcpy(w->pool + w->used, s, len);
	*off = (uint32_t)w->used;
	w->used += len;
	return 0;
}

static int
s_case_link(void *arg, const char *local, uint32_t events, uint64_t last)
{
	struct cases_walk *w = arg;
	struct case_link *grown, *l;
	size_t cap;

	if (local[0] == '\0')
		return 0;            /* no case */
	if (w->n_link == w->cap_link) {
		cap = w->cap_link ? 2 * w->cap_link : 1024;
		if ((grown = realloc(w->link, cap * sizeof(*grown))) == NULL)
			return (w->failed = 1);
		w->link = grown;
		w->cap_link = cap;
	}
	l = &w->link[w->n_link];
	if (s_pool_put(w, local, &l->ref) != 0)
		return (w->failed = 1);
	l->events = events;
	l->last_ms = last;
	w->n_link++;
	return 0;
}

static int
s_cmp_link(const void *a, const void *b)
{
	const struct case_link *x = a, *y = b;

	return strcmp(x->s, y->s);
}

/* One summary per case: its links' events summed, the latest of their
 * times; the references stay in the pool (a case's first copy). */
static int
s_group(struct cases_walk *w)
{
	size_t i, n = 0;
	Kp__CaseSummary *s = NULL;

	for (i = 0; i < w->n_link; i++)      /* the pool grows no more */
		w->link[i].s = w->pool + w->link[i].ref;
	if (w->n_link > 1)
		qsort(w->link, w->n_link, sizeof(*w->link), s_cmp_link);
	for (i = 0; i < w->n_link; i++)
		n += i == 0 || strcmp(w->link[i].s, w->link[i - 1].s) != 0;
	if ((w->cs = arena_alloc(w->a, (n ? n : 1) * sizeof(*w->cs))) == NULL)
		return -1;
	for (i = 0; i < w->n_link; i++) {
		if (s == NULL || strcmp(w->link[i].s, s->case_ref) != 0) {
			s = &w->cs[w->n++];
			kp__case_summary__init(s);
			s->case_ref = (char *)w->link[i].s;
		}
		s->events += w->link[i].events;
		if (w->link[i].last_ms > s->last_at_ms)
			s->last_at_ms = w->link[i].last_ms;
	}
	free(w->link);
	w->link = NULL;
	/* made once the links are gone: they are not needed at once */
	return (w->side = calloc(n ? n : 1, sizeof(*w->side))) != NULL ? 0 : -1;
}

/* The summary of case `local`, or -1 if it is not listed. */
static ssize_t
s_find(const struct cases_walk *w, const char *local)
{
	size_t lo = 0, hi = w->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(local, w->cs[mid].case_ref)) == 0)
			return (ssize_t)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* Route r of a referral sent at ms: kept with its earliest referral,
 * the list in that order (a tie keeps the route met first). */
static void
s_add_route(struct case_side *c, int r, uint64_t ms)
{
	size_t i;
	int route;
	uint64_t t;

	for (i = 0; i < c->n_routes && c->route[i] != r; i++)
		;
	if (i == c->n_routes) {
		if (c->n_routes == CASE_ROUTES)
			return;
		c->route[c->n_routes] = r;
		c->route_ms[c->n_routes++] = ms;
	} else if (ms < c->route_ms[i])
		c->route_ms[i] = ms;
	else
		return;
	for (; i > 0 && c->route_ms[i] < c->route_ms[i - 1]; i--) {
		route = c->route[i];
		c->route[i] = c->route[i - 1];
		c->route[i - 1] = route;
		t = c->route_ms[i];
		c->route_ms[i] = c->route_ms[i - 1];
		c->route_ms[i - 1] = t;
	}
}

static int
s_case_x(void *arg, const expect_row_t *x)
{
	struct cases_walk *w = arg;
	Kp__CaseSummary *s;
	ssize_t i;
	int st;

	if (x->sent_ms > w->at || (i = s_find(w, x->case_local)) < 0)
		return 0;            /* not sent by `at`, or no listed case */
	s = &w->cs[i];
	st = feedback_state_at(x, w->at);
	if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN)
		s->open++;
	else if (st == KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE)
		s->overdue++;
	else
		s->answered++;
	if (x->route != 0)
		s_add_route(&w->side[i], x->route, x->sent_ms);
	return 0;
}

static bool
s_has_route(const struct case_side *c, int route)
{
	size_t i;

	for (i = 0; i < c->n_routes; i++)
		if (c->route[i] == route)
			return true;
	return false;
}

/* The summaries the request asks for, with their routes.  OUT: r. */
static int
s_answer(struct cases_walk *w, const Kp__CasesRequest *q,
    Kp__CasesResponse *r)
{
	Kp__CaseSummary **out = arena_alloc(w->a, (w->n ? w->n : 1) *
	    sizeof(*out));
	Kp__Route *routes;
	size_t i, j, n = 0, n_routes = 0;

	for (i = 0; i < w->n; i++)
		n_routes += w->side[i].n_routes;
	routes = arena_alloc(w->a, (n_routes ? n_routes : 1) * sizeof(*routes));
	if (out == NULL || routes == NULL)
		return -1;
	for (i = 0; i < w->n; i++) {
		const struct case_side *c = &w->side[i];
		Kp__CaseSummary *s = &w->cs[i];

		if (s->events == 0 ||    /* no event by `at` (metadata gone) */
		    (q->has_overdue_only && q->overdue_only && s->overdue == 0) ||
		    (q->has_route && !s_has_route(c, q->route)))
			continue;
		s->has_events = s->has_open = s->has_overdue = 1;
		s->has_answered = s->has_last_at_ms = 1;
		s->routes = routes;
		for (j = 0; j < c->n_routes; j++)
			s->routes[s->n_routes++] = (Kp__Route)c->route[j];
		routes += c->n_routes;
		out[n++] = s;
	}
	kp__cases_response__init(r);
	r->has_at_ms = 1;
	r->at_ms = w->at;
	r->n_cases = n;
	r->cases = out;
	return 0;
}

/* Every case with events by `at`: their events per link, then every
 * expectation sent by then. */
static int
s_all_cases(struct cases_walk *w, kp_err_t *err)
{
	if (store_cases(w->d->store, w->at, s_case_link, w, err) != 0)
		return -1;
	if (w->failed || s_group(w) != 0)
		return kp_fail(err, KP_ERR_NOMEM, "cases: out of memory");
	return store_expect_period(w->d->store, 0, w->at < UINT64_MAX ?
	    w->at + 1 : w->at, s_case_x, w, err);
}

/* ---- only the overdue cases ---- */

/* A candidate of store_expect_todo: its case, if overdue at `at`. */
static int
s_overdue_x(void *arg, const expect_row_t *x)
{
	struct cases_walk *w = arg;

	if (x->sent_ms > w->at || feedback_state_at(x, w->at) !=
	    KP__EXPECTATION_STATE__EXPECTATION_STATE_OVERDUE)
		return 0;
	return s_case_link(w, x->case_local, 0, 0);
}

/* The events of one case by `at`: its timeline, counted. */
static int
s_event(void *arg, const subject_row_t *row)
{
	struct cases_walk *w = arg;
	Kp__CaseSummary *s = &w->cs[w->cur];

	if (row->at_ms <= w->at) {
		s->events++;
		if (row->at_ms > s->last_at_ms)
			s->last_at_ms = row->at_ms;
	}
	return 0;
}

/*
 * The cases with an answer overdue as of `at`: those found among what
 * can be overdue then (store_expect_todo with the horizon at `at`, by
 * indexes), each then summed up on its own (its timeline and its
 * expectations).  Work in the overdue cases, not in the history: a
 * REST client waiting for one (GET /cases?overdue=true&wait=N) has the
 * list made again every second.
 */
static int
s_overdue_cases(struct cases_walk *w, kp_err_t *err)
{
	size_t i;

	if (store_expect_todo(w->d->store, w->at, w->at, s_overdue_x, w,
	    err) != 0)
		return -1;
	if (!w->failed && w->n_link > OVERDUE_ONE_BY_ONE_MAX) {
		w->n_link = 0;       /* many: the whole list, filtered */
		w->used = 0;
		return s_all_cases(w, err);
	}
	if (w->failed || s_group(w) != 0)
		return kp_fail(err, KP_ERR_NOMEM, "cases: out of memory");
	for (i = 0; i < w->n; i++) {
		w->cur = i;
		if (store_subject(w->d->store, w->cs[i].case_ref, s_event, w,
		    err) != 0 || store_expect_list(w->d->store,
		    w->cs[i].case_ref, s_case_x, w, err) != 0)
			return -1;
	}
	return 0;
}

int
feedback_cases(kpd_t *d, arena_t *a, const Kp__CasesRequest *q,
    Kp__CasesResponse **out, kp_err_t *err)
{
	struct cases_walk w = { .d = d, .a = a };
	Kp__CasesResponse *r = arena_alloc(a, sizeof(*r));
	char *pool;
	int ret = -1;

	w.at = q->has_at_ms && q->at_ms > 0 ? q->at_ms : kp_now_ms();
	if (r == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	if ((q->has_overdue_only && q->overdue_only ? s_overdue_cases(&w,
	    err) : s_all_cases(&w, err)) != 0)
		goto out;
	if (s_answer(&w, q, r) != 0)
		goto nomem;
	/* the pool holds the answer's references: the arena frees it */
	pool = w.pool;
	w.pool = NULL;
	if (arena_adopt(a, pool) != 0)
		goto nomem;
	*out = r;
	ret = 0;
	goto out;
nomem:
	kp_fail(err, KP_ERR_NOMEM, "cases: out of memory");
out:
	free(w.link);
	free(w.side);
	free(w.pool);
	return ret;
}
