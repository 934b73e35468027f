/*
 * reportfig.c: the report's sums and its CSV form (reportfig.h).
 *
 * Moved here from client/report.c so that the CLI and the daemon's REST
 * API write one CSV: a second writer in the daemon would soon differ in a
 * row, an order or a quote.  It reads only the JSON form of the daemon's
 * answer, and must never compute a figure the daemon did not give other
 * than sums of them; it knows no daemon, no socket and no language (the
 * caller lends its words for the label column).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "reportfig.h"

/* A string member; "-" when absent or empty (as the CLI shows it). */
static const char *
s_str(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL && *v != '\0' ? v : "-";
}

static uint64_t
s_u64(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

void
reportfig_answers(const json_t *p, struct reportfig_answers *n)
{
	n->expected = s_u64(p, "expected");
	n->answered = s_u64(p, "answered");
	n->within = s_u64(p, "within_lead_time");
	n->overdue = s_u64(p, "overdue_now");
	n->late = n->answered > n->within ? n->answered - n->within : 0;
	n->due = n->answered + n->overdue;
	n->open = n->expected > n->due ? n->expected - n->due : 0;
}

void
reportfig_add(struct reportfig_answers *sum,
    const struct reportfig_answers *n)
{
	sum->expected += n->expected;
	sum->answered += n->answered;
	sum->within += n->within;
	sum->overdue += n->overdue;
	sum->late += n->late;
	sum->open += n->open;
	sum->due += n->due;
}

void
reportfig_route_answers(const json_t *route, struct reportfig_answers *sum)
{
	struct reportfig_answers n;
	const json_t *p;
	size_t i;

	memset(sum, 0, sizeof(*sum));
	json_array_foreach(json_object_get(route, "partners"), i, p) {
		reportfig_answers(p, &n);
		reportfig_add(sum, &n);
	}
}

void
reportfig_total(const json_t *routes, struct reportfig_total *t)
{
	struct reportfig_answers n;
	const json_t *r;
	size_t i;

	memset(t, 0, sizeof(*t));
	json_array_foreach(routes, i, r) {
		t->cases += s_u64(r, "cases");
		t->referrals += s_u64(r, "referrals");
		t->overdue += s_u64(r, "overdue_now");
		t->escalated += s_u64(r, "escalated");
		reportfig_route_answers(r, &n);
		reportfig_add(&t->a, &n);
	}
}

/* ---- CSV ---- */

/* One row's columns besides metric, label and value. */
struct row {
	FILE *f;
	const struct reportfig_labels *l;
	const char *table, *route, *oin, *name, *month, *metric, *label;
};

/* A text a spreadsheet would run as a formula (=, +, -, @, a tab or CR
 * first), e.g. a partner name taken from a certificate: it gets a leading
 * apostrophe (OWASP, CSV injection).  No figure of the report is
 * negative, so no number is touched. */
static bool
s_formula_like(const char *s)
{
	return s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' ||
	    s[0] == '\t' || s[0] == '\r';
}

/* One CSV field, quoted (RFC 4180): quotes doubled. */
static void
s_field(FILE *f, const char *s, bool last)
{
	fputc('"', f);
	if (s_formula_like(s))
		fputc('\'', f);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputs(last ? "\"\r\n" : "\",", f);
}

static void
s_row(const struct row *r, const char *value)
{
	s_field(r->f, r->table, false);
	s_field(r->f, r->route ? r->route : "", false);
	s_field(r->f, r->oin ? r->oin : "", false);
	s_field(r->f, r->name ? r->name : "", false);
	s_field(r->f, r->month ? r->month : "", false);
	s_field(r->f, r->metric, false);
	s_field(r->f, r->label ? r->label : "", false);
	s_field(r->f, value, true);
}

static void
s_u(struct row *r, const char *metric, uint64_t v)
{
	char buf[24];

	r->metric = metric;
	r->label = NULL;
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	s_row(r, buf);
}

/* A number of days; empty when absent (C form: a point, never a comma). */
static void
s_days(struct row *r, const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	char buf[32] = "";

	if (json_is_number(v))
		snprintf(buf, sizeof(buf), "%.1f", json_number_value(v));
	r->metric = key;
	r->label = NULL;
	s_row(r, buf);
}

static void
s_answers_rows(struct row *r, const struct reportfig_answers *n)
{
	s_u(r, "expected", n->expected);
	s_u(r, "answered", n->answered);
	s_u(r, "within_lead_time", n->within);
	s_u(r, "due", n->due);
}

/* The outcome and interim rows of route rt. */
static void
s_outcome_rows(struct row *r, const json_t *rt)
{
	const json_t *it;
	char label[160], value[24];
	size_t i;

	json_array_foreach(json_object_get(rt, "outcomes"), i, it) {
		r->metric = s_str(it, "outcome");
		r->table = strncmp(r->metric, "interim: ", 9) == 0 ?
		    "interim" : "outcome";
		r->label = r->l && r->l->outcome ? r->l->outcome(r->metric,
		    label, sizeof(label)) : NULL;
		snprintf(value, sizeof(value), "%" PRIu64, s_u64(it, "count"));
		s_row(r, value);
	}
	r->table = "absence_after";
	json_array_foreach(json_object_get(rt, "absence_after"), i, it) {
		r->metric = s_str(it, "outcome");
		r->label = r->l && r->l->absence ? r->l->absence(r->metric) :
		    NULL;
		snprintf(value, sizeof(value), "%" PRIu64, s_u64(it, "count"));
		s_row(r, value);
	}
}

static void
s_route(struct row *r, const json_t *rt)
{
	struct reportfig_answers n;
	const json_t *it;
	size_t i;

	r->table = "summary";
	r->route = s_str(rt, "route");
	r->oin = r->name = r->month = NULL;
	reportfig_route_answers(rt, &n);
	s_u(r, "cases", s_u64(rt, "cases"));
	s_u(r, "referrals", s_u64(rt, "referrals"));
	s_answers_rows(r, &n);
	s_u(r, "overdue_now", s_u64(rt, "overdue_now"));
	s_u(r, "escalated", s_u64(rt, "escalated"));
	s_outcome_rows(r, rt);
	r->table = "partner";
	json_array_foreach(json_object_get(rt, "partners"), i, it) {
		r->oin = s_str(it, "partner_oin");
		r->name = strcmp(s_str(it, "partner_name"), "-") != 0 ?
		    s_str(it, "partner_name") : r->oin;
		reportfig_answers(it, &n);
		s_days(r, it, "norm_days");
		s_answers_rows(r, &n);
		s_days(r, it, "median_days");
		s_days(r, it, "p90_days");
		s_u(r, "overdue_now", n.overdue);
	}
}

void
reportfig_csv(FILE *f, const json_t *o, const struct reportfig_labels *l)
{
	const json_t *routes = json_object_get(o, "routes"), *it;
	struct row r = { .f = f, .l = l };
	struct reportfig_total t;
	size_t i;

	fputs("table,route,partner_oin,partner_name,month,metric,label,value"
	    "\r\n", f);
	json_array_foreach(routes, i, it)
		s_route(&r, it);
	reportfig_total(routes, &t);
	r.table = "summary";
	r.route = "total";
	r.oin = r.name = r.month = NULL;
	s_u(&r, "cases", t.cases);
	s_u(&r, "referrals", t.referrals);
	s_answers_rows(&r, &t.a);
	s_u(&r, "overdue_now", t.overdue);
	s_u(&r, "escalated", t.escalated);
	r.table = "month";
	r.route = NULL;
	json_array_foreach(json_object_get(o, "months"), i, it) {
		r.month = s_str(it, "month");
		s_u(&r, "cases", s_u64(it, "cases"));
		s_u(&r, "referrals", s_u64(it, "referrals"));
		s_u(&r, "answered", s_u64(it, "answered"));
		s_u(&r, "within_lead_time", s_u64(it, "within_lead_time"));
		s_u(&r, "due", s_u64(it, "due"));
	}
}
