/*
 * reportfig.h: the figures of the evaluation report (a ReportResponse in
 * its JSON form, lib/apijson.h) that are sums of what the daemon gave,
 * and the report as CSV: one writer for `ketenpost report --csv` and the
 * REST API's GET /api/v1/report with Accept: text/csv (daemon/rest.c), so
 * the two cannot drift apart.
 *
 * The CSV is RFC 4180 (every field quoted, CRLF), a long format with one
 * row per figure: table,route,partner_oin,partner_name,month,metric,
 * label,value.  `label` is a word for people in the caller's language
 * (reportfig_labels; empty without one); every other column is a stable
 * code, a number in C form or an ISO 8601 month.
 */
#ifndef KP_REPORTFIG_H
#define KP_REPORTFIG_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* One partner's (or a sum's) answers: late and open are what is left. */
struct reportfig_answers {
	uint64_t expected, answered, within, overdue, late, open, due;
};

/* Totals across routes. */
struct reportfig_total {
	uint64_t cases, referrals, overdue, escalated;
	struct reportfig_answers a;
};

/* The answers of one partner object. */
void reportfig_answers(const json_t *partner, struct reportfig_answers *n);
/* sum += n. */
void reportfig_add(struct reportfig_answers *sum,
    const struct reportfig_answers *n);
/* The answers of every partner of a route. */
void reportfig_route_answers(const json_t *route,
    struct reportfig_answers *sum);
/* The totals of a report's routes array. */
void reportfig_total(const json_t *routes, struct reportfig_total *t);

/* Words for people in the label column; a NULL function (or no struct)
 * leaves the column empty for that kind of row. */
struct reportfig_labels {
	/* an outcome ("positief", "awaited", "interim: scheduled") */
	const char *(*outcome)(const char *outcome, char *buf, size_t len);
	/* the officer's record of the absence after the route */
	const char *(*absence)(const char *code);
};

/* The report (a ReportResponse's JSON form) as CSV to f, header first.
 * labels may be NULL.  Errors are f's (ferror). */
void reportfig_csv(FILE *f, const json_t *report,
    const struct reportfig_labels *labels);

#endif
