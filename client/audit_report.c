/*
 * audit_report.c: `ketenpost audit report` (docs/AUDIT.md §12): counts per
 * month, partner, event type and purpose for the accountability report.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "auditlog.h"
#include "cli.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "merkle.h"
#include "pbjson.h"
#include "util.h"

/* ====================================================================== */
/* audit report                                                           */
/* ====================================================================== */

static const char s_report_help[] =
"usage: ketenpost audit report EXPORT_FILE|STATE_DIR [--json]\n"
"Count what was shared, for the annual accountability report: per month\n"
"(UTC), partner, event type and purpose the events sent (send), received\n"
"(receipt_sent), refused on arrival (refusal_in) and refused before\n"
"sending (refusal_out); and every entry kind in total.  Export with\n"
"--from/--to to report one period.  The report does not verify the log:\n"
"run `audit verify` on the full log first.\n";

enum { R_SENT, R_RECEIVED, R_REFUSED_IN, R_REFUSED_OUT, R_N };
static const char *const s_rcols[R_N] = { "sent", "received",
	"refused_in", "refused_out" };

struct rrow {
	char month[8];
	char partner[21];
	int event_type;
	char purpose[65];
	uint64_t n[R_N];
};

struct report {
	struct rrow *rows;
	size_t n, cap;
	uint64_t kinds[AUDIT_KIND_MAX];
	uint64_t entries, first_ms, last_ms;
};

static int
s_report_col(int kind)
{
	switch (kind) {
	case AUDIT_SEND: return R_SENT;
	case AUDIT_RECEIPT_SENT: return R_RECEIVED;
	case AUDIT_REFUSAL_IN: return R_REFUSED_IN;
	case AUDIT_REFUSAL_OUT: return R_REFUSED_OUT;
	default: return -1;
	}
}

static void
s_month(uint64_t ms, char out[8])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	char buf[32];

	gmtime_r(&t, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d", tm.tm_year + 1900,
	    tm.tm_mon + 1);
	snprintf(out, 8, "%.7s", buf);
}

/* The row of e's key.  Entries come in time order, so the row is almost
 * always among the last few: search backwards. */
static struct rrow *
s_report_row(struct report *r, const audit_entry_t *e)
{
	struct rrow *x, *grown;
	char month[8];
	size_t i;

	s_month(e->time_ms, month);
	for (i = r->n; i-- > 0;) {
		x = &r->rows[i];
		if (x->event_type == e->event_type &&
		    strcmp(x->month, month) == 0 &&
		    strcmp(x->partner, e->partner_oin) == 0 &&
		    strcmp(x->purpose, e->purpose) == 0)
			return x;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		if ((grown = realloc(r->rows, r->cap * sizeof(*grown))) == NULL)
			return NULL;
		r->rows = grown;
	}
	x = &r->rows[r->n++];
	memset(x, 0, sizeof(*x));
	memcpy(x->month, month, 8);
	memcpy(x->partner, e->partner_oin, 21);
	x->event_type = e->event_type;
	memcpy(x->purpose, e->purpose, 65);
	return x;
}

static int
s_report_item(void *arg, const struct item *it)
{
	struct report *r = arg;
	struct rrow *row;
	int col;

	if (it->type != IT_ENTRY)
		return 0;
	if (r->entries == 0 || it->e.time_ms < r->first_ms)
		r->first_ms = it->e.time_ms;
	if (it->e.time_ms > r->last_ms)
		r->last_ms = it->e.time_ms;
	r->entries++;
	r->kinds[it->e.kind]++;
	if ((col = s_report_col(it->e.kind)) < 0)
		return 0;
	if ((row = s_report_row(r, &it->e)) == NULL)
		return cli_error("out of memory");
	row->n[col]++;
	return 0;
}

static int
s_rrow_cmp(const void *a, const void *b)
{
	const struct rrow *x = a, *y = b;
	int c;

	if ((c = strcmp(x->month, y->month)) != 0 ||
	    (c = strcmp(x->partner, y->partner)) != 0)
		return c;
	if (x->event_type != y->event_type)
		return x->event_type < y->event_type ? -1 : 1;
	return strcmp(x->purpose, y->purpose);
}

static json_t *
s_report_json(const struct src *s, const struct report *r)
{
	json_t *o = json_object(), *rows = json_array(), *kinds = json_object();
	json_t *row;
	char t[32];
	size_t i;
	int k;

	json_object_set_new(o, "type", json_string("report"));
	json_object_set_new(o, "oin", json_string(s->oin));
	json_object_set_new(o, "filtered", json_boolean(s->filtered));
	json_object_set_new(o, "entries", json_integer((json_int_t)r->entries));
	if (r->entries > 0) {
		kp_time_format(r->first_ms, t);
		json_object_set_new(o, "first", json_string(t));
		kp_time_format(r->last_ms, t);
		json_object_set_new(o, "last", json_string(t));
	}
	for (i = 0; i < r->n; i++) {
		row = json_pack("{s:s, s:s, s:s, s:s}", "month",
		    r->rows[i].month, "partner_oin", r->rows[i].partner,
		    "event_type", r->rows[i].event_type ?
		    events_type_name(r->rows[i].event_type) : "",
		    "purpose", r->rows[i].purpose);
		for (k = 0; k < R_N; k++)
			json_object_set_new(row, s_rcols[k],
			    json_integer((json_int_t)r->rows[i].n[k]));
		json_array_append_new(rows, row);
	}
	json_object_set_new(o, "rows", rows);
	for (k = 1; k < AUDIT_KIND_MAX; k++)
		json_object_set_new(kinds, audit_kind_name(k),
		    json_integer((json_int_t)r->kinds[k]));
	json_object_set_new(o, "totals", kinds);
	return o;
}

static void
s_report_table(const struct src *s, const struct report *r)
{
	uint64_t tot[R_N] = { 0 };
	char a[32], b[32];
	size_t i;
	int k;

	kp_time_format(r->first_ms, a);
	kp_time_format(r->last_ms, b);
	printf("audit report: log of %s%s, %llu entries", s->oin,
	    s->filtered ? " (filtered export)" : "", (ull)r->entries);
	if (r->entries > 0)
		printf(" from %s to %s", a, b);
	printf("\n\n%-7s  %-20s  %-12s  %-16s %6s %8s %10s %11s\n", "month",
	    "partner", "event type", "purpose", "sent", "received",
	    "refused in", "refused out");
	for (i = 0; i < r->n; i++) {
		const struct rrow *x = &r->rows[i];

		printf("%-7s  %-20s  %-12s  %-16s %6llu %8llu %10llu %11llu\n",
		    x->month, x->partner[0] ? x->partner : "-",
		    x->event_type ? events_type_name(x->event_type) : "-",
		    x->purpose[0] ? x->purpose : "-", (ull)x->n[0],
		    (ull)x->n[1], (ull)x->n[2], (ull)x->n[3]);
		for (k = 0; k < R_N; k++)
			tot[k] += x->n[k];
	}
	printf("%-7s  %-20s  %-12s  %-16s %6llu %8llu %10llu %11llu\n\n",
	    "total", "", "", "", (ull)tot[0], (ull)tot[1], (ull)tot[2],
	    (ull)tot[3]);
	printf("entries by kind:");
	for (k = 1; k < AUDIT_KIND_MAX; k++)
		printf("%s %s %llu", k > 1 ? "," : "", audit_kind_name(k),
		    (ull)r->kinds[k]);
	printf("\n");
}

int
audit_cmd_report(int argc, char **argv)
{
	struct report r = { 0 };
	struct src *s = NULL;
	struct opts o;
	json_t *j;
	int rc;

	if ((rc = auditopt_parse(argc, argv, "report", s_report_help, O_JSON, 1,
	    &o)) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = auditsrc_open(o.args[0], &s)) != 0)
		return rc;
	if ((rc = auditsrc_run(s, NULL, s_report_item, &r)) == 0) {
		if (r.n > 0)
			qsort(r.rows, r.n, sizeof(*r.rows), s_rrow_cmp);
		if (o.json) {
			j = s_report_json(s, &r);
			cli_print_json(j);
			json_decref(j);
		} else {
			s_report_table(s, &r);
		}
	}
	free(r.rows);
	auditsrc_close(&s);
	return rc;
}
