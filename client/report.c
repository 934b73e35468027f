/*
 * report.c: the evaluation report for team leads and managers (ketenpost
 * report, MAS steps 9 and 10): per route the cases, referrals, outcomes
 * (in a fixed order, the overdue share apart and highlighted; interim
 * phases in their own table), the officer's record of the absence after
 * the route, and per partner the norm of the chain policy beside the lead
 * times; totals across routes and the trend per month.  As text, JSON,
 * CSV (a long format, one row per figure) or one self-contained XHTML
 * file with inline SVG charts (no script, nothing fetched; A4 in print).
 *
 * Everything shown is made from the JSON form of the daemon's answer, so
 * text, CSV and HTML cannot disagree with --json; the CSV writer and the
 * sums are lib/reportfig.c, shared with the REST API.  Human text is in the
 * language of labels.c; the CSV keeps the stable codes (with a label
 * column) and ISO 8601 months; every string from the daemon is escaped.
 * Must never compute a figure the daemon did not give, other than sums
 * and shares of them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "cmdutil.h"
#include "events.pb-c.h"
#include "feedback.h"
#include "labels.h"
#include "pbjson.h"
#include "reportfig.h"
#include "util.h"

/* Latest moment kp_time_format() can show: 9999-12-31T23:59:59.999Z. */
#define S_DAY_MS UINT64_C(86400000)

/* ---- options ---- */

struct rp_args {
	bool json;
	const char *html, *csv;        /* FILE; csv "-": stdout */
	int year;                      /* --year; 0: not given */
	bool has_at, has_from, has_to;
	uint64_t at, from, to;
};


static int
s_opt(void *args, int c, const char *arg, const char *cmd)
{
	struct rp_args *a = args;
	char *end;
	long y;

	switch (c) {
	case 'J': a->json = true; return 0;
	case 'H':
	case 'V':
		if (*arg == '\0')
			return cli_usage_error(cmd, "--%s needs a file name",
			    c == 'H' ? "html" : "csv");
		*(c == 'H' ? &a->html : &a->csv) = arg;
		return 0;
	case 'Y':
		y = strtol(arg, &end, 10);
		if (*arg == '\0' || *end != '\0' || y < 1970 || y > 9998)
			return cli_usage_error(cmd, "--year '%s' is not a year "
			    "from 1970 to 9998", arg);
		a->year = (int)y;
		return 0;
	case 't': return fb_time_opt(cmd, "--at", arg, &a->has_at, &a->at);
	case 'f': return fb_time_opt(cmd, "--from", arg, &a->has_from,
	    &a->from);
	case 'u': return fb_time_opt(cmd, "--to", arg, &a->has_to, &a->to);
	default: return cli_usage_error(cmd, "bad option");
	}
}

static const struct option s_opts[] = {
	{ "json", 0, NULL, 'J' }, { "html", 1, NULL, 'H' },
	{ "csv", 1, NULL, 'V' }, { "year", 1, NULL, 'Y' },
	{ "from", 1, NULL, 'f' }, { "to", 1, NULL, 'u' },
	{ "at", 1, NULL, 't' }, CMD_API_OPTIONS };

static const char s_help[] =
"usage: ketenpost report [--year YYYY | --from TIME] [--to TIME] [--at TIME]\n"
"                        [--json | --html FILE | --csv FILE] [--lang nl|en]\n"
"                        [--api ENDPOINT | --config FILE] [--timeout SECONDS]\n"
"The evaluation of the referrals sent in a period: by default the last 12\n"
"months (from the first day of the month 11 months ago); --year YYYY the\n"
"calendar year; --from/--to (ISO 8601 UTC, to exclusive) any period.  Per\n"
"route: cases, referrals, outcomes, interim phases, the absence after the\n"
"route, and per partner the norm (the chain policy's lead time), the\n"
"answers expected and given, the share within the lead time, the median\n"
"and 90th percentile lead time in days, and the answers overdue as of --at\n"
"(default now); totals across routes and the trend per month.  --json\n"
"prints the ReportResponse; --csv FILE (- for stdout) writes one row per\n"
"figure (table,route,partner_oin,partner_name,month,metric,label,value);\n"
"--html FILE one self-contained XHTML file with charts (no scripts,\n"
"nothing fetched; prints on A4).\n";

static const struct cmd_spec s_spec = {
	"report", s_help, s_opts, s_opt, 0, 0, "takes no arguments"
};

/* ms of 00:00Z on the first of month `mon` (0-11, may be out of range)
 * of year `year`. */
static uint64_t
s_month_start(int year, int mon)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	while (mon < 0) {
		mon += 12;
		year--;
	}
	tm.tm_year = year - 1900 + mon / 12;
	tm.tm_mon = mon % 12;
	tm.tm_mday = 1;
	return (uint64_t)timegm(&tm) * 1000;
}

/* The period asked: --year, --from/--to, or the last 12 months. */
static int
s_period_args(const struct cmd_ctx *x, struct rp_args *a)
{
	time_t now;
	struct tm tm;

	if (a->year != 0 && (a->has_from || a->has_to))
		return cli_usage_error(x->cmd, "give --year or --from/--to, "
		    "not both");
	if (a->year != 0) {
		a->from = s_month_start(a->year, 0);
		a->to = s_month_start(a->year + 1, 0);
		a->has_from = a->has_to = true;
	} else if (!a->has_from && !a->has_to) {
		now = (time_t)((a->has_at ? a->at : kp_now_ms()) / 1000);
		if (gmtime_r(&now, &tm) == NULL)
			return cli_error("cannot tell the current month");
		a->from = s_month_start(tm.tm_year + 1900, tm.tm_mon - 11);
		a->has_from = true;
	}
	if (a->has_from && a->has_to && a->from >= a->to)
		return cli_usage_error(x->cmd, "--from must be before --to");
	return 0;
}

/* ---- figures ---- */

/* A decimal number with the language's decimal sign. */
static const char *
s_dec(double v, char *buf, size_t len)
{
	char *p;

	snprintf(buf, len, "%.1f", v);
	if (strcmp(labels_lang(), "nl") == 0 && (p = strchr(buf, '.')))
		*p = ',';
	return buf;
}

/* 100 * part / whole as "68,4%", or "-" for an empty whole. */
static const char *
s_pct(uint64_t part, uint64_t whole, char *buf, size_t len)
{
	if (whole == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	s_dec(100.0 * (double)part / (double)whole, buf, len - 1);
	strcat(buf, "%");
	return buf;
}

static const char *
s_days(const json_t *o, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_number(v))
		return s_dec(json_number_value(v), buf, len);
	snprintf(buf, len, "-");
	return buf;
}

/* The norm of a route's partners: "90 d" when they agree, "28-90 d". */
static const char *
s_route_norm(const json_t *r, char *buf, size_t len)
{
	const json_t *p, *v;
	double lo = 0, hi = 0, d;
	size_t i;
	bool any = false;

	json_array_foreach(json_object_get(r, "partners"), i, p) {
		if (!json_is_number(v = json_object_get(p, "norm_days")))
			continue;
		d = json_number_value(v);
		lo = any && lo < d ? lo : d;
		hi = any && hi > d ? hi : d;
		any = true;
	}
	if (!any)
		snprintf(buf, len, "-");
	else if (lo == hi)
		snprintf(buf, len, _("%.0f days"), lo);
	else
		snprintf(buf, len, _("%.0f-%.0f days"), lo, hi);
	return buf;
}

/* ---- outcomes in a fixed order ---- */

enum { S_OC_FINAL, S_OC_DESTROYED, S_OC_AWAITED, S_OC_OVERDUE_FINAL,
    S_OC_OVERDUE, S_OC_INTERIM };

static int
s_oc_kind(const char *oc)
{
	if (strncmp(oc, "interim: ", 9) == 0)
		return S_OC_INTERIM;
	if (strcmp(oc, "no answer (overdue)") == 0)
		return S_OC_OVERDUE;
	if (strcmp(oc, "no final answer (overdue)") == 0)
		return S_OC_OVERDUE_FINAL;
	if (strcmp(oc, "awaited") == 0)
		return S_OC_AWAITED;
	if (strcmp(oc, "answered (payload destroyed)") == 0)
		return S_OC_DESTROYED;
	return S_OC_FINAL;
}

/* The position of a final outcome: its value in the enum of the route
 * outcomes (positief before negatief), unknown ones last. */
static int
s_oc_value(const char *oc)
{
	static const ProtobufCEnumDescriptor *const enums[] = {
		&kp__halt_result__descriptor, &kp__om_decision_kind__descriptor,
		&kp__jbt_decision__descriptor, &kp__care_phase__descriptor,
		&kp__advice_kind__descriptor, &kp__investigation__descriptor,
	};
	size_t i;
	int v;

	for (i = 0; i < sizeof(enums) / sizeof(enums[0]); i++)
		if (pbjson_enum_value(enums[i], oc, &v) == 0)
			return (int)i * 32 + v;
	return 999;
}

static int
s_cmp_oc(const void *a, const void *b)
{
	const char *x = cmd_str(*(json_t *const *)a, "outcome");
	const char *y = cmd_str(*(json_t *const *)b, "outcome");
	int kx = s_oc_kind(x), ky = s_oc_kind(y);

	if (kx != ky)
		return kx - ky;
	if (kx == S_OC_FINAL && s_oc_value(x) != s_oc_value(y))
		return s_oc_value(x) - s_oc_value(y);
	return strcmp(x, y);
}

/* The outcomes of route r, interim phases apart (want_interim), in the
 * fixed order; *n of them in out (at most max). */
static size_t
s_outcomes(const json_t *r, bool want_interim, const json_t **out,
    size_t max)
{
	const json_t *oc;
	size_t i, n = 0;

	json_array_foreach(json_object_get(r, "outcomes"), i, oc)
		if ((s_oc_kind(cmd_str(oc, "outcome")) == S_OC_INTERIM) ==
		    want_interim && n < max)
			out[n++] = oc;
	qsort(out, n, sizeof(*out), s_cmp_oc);
	return n;
}

#define S_MAX_OC 64

static uint64_t
s_sum(const json_t *const *oc, size_t n)
{
	uint64_t t = 0;
	size_t i;

	for (i = 0; i < n; i++)
		t += cmd_u64(oc[i], "count");
	return t;
}

/* Okabe-Ito colours (readable with colour blindness): a final outcome's
 * by its value, the rest fixed; overdue is the one that stands out. */
#define S_C_WITHIN "#009E73"
#define S_C_LATE "#E69F00"
#define S_C_OVERDUE "#D55E00"
#define S_C_OPEN "#BBBBBB"

static const char *
s_oc_colour(const char *oc)
{
	static const char *const finals[] = { "#0072B2", "#009E73",
	    "#56B4E9", "#CC79A7", "#332288", "#117733", "#882255", "#44AA99" };

	switch (s_oc_kind(oc)) {
	case S_OC_OVERDUE: return S_C_OVERDUE;
	case S_OC_OVERDUE_FINAL: return S_C_LATE;
	case S_OC_AWAITED: return S_C_OPEN;
	case S_OC_DESTROYED: return "#777777";
	case S_OC_INTERIM: return "#56B4E9";
	default: return finals[(unsigned)s_oc_value(oc) % 8u];
	}
}

static bool
s_oc_overdue(const char *oc)
{
	int k = s_oc_kind(oc);

	return k == S_OC_OVERDUE || k == S_OC_OVERDUE_FINAL;
}

/* ---- words ---- */

static const char *
s_route_name(const json_t *r)
{
	return label_code(&kp__route__descriptor, cmd_str(r, "route"));
}

/* "3 cases, 4 referrals, 1 answer overdue now" */
static const char *
s_route_line(uint64_t cases, uint64_t refs, uint64_t overdue, char *buf,
    size_t len)
{
	char c[64], f[64], o[80];

	snprintf(c, sizeof(c), ngettext("%" PRIu64 " case", "%" PRIu64
	    " cases", (unsigned long)cases), cases);
	snprintf(f, sizeof(f), ngettext("%" PRIu64 " referral", "%" PRIu64
	    " referrals", (unsigned long)refs), refs);
	snprintf(o, sizeof(o), ngettext("%" PRIu64 " answer overdue now",
	    "%" PRIu64 " answers overdue now", (unsigned long)overdue),
	    overdue);
	snprintf(buf, len, "%s, %s, %s", c, f, o);
	return buf;
}

/* "referrals sent from 01-12-2025 to 01-01-2027; overdue as of ..." */
static const char *
s_period(const json_t *o, char *buf, size_t len)
{
	char from[32], to[32], at[32];

	label_date(cmd_u64(o, "from_ms"), from, sizeof(from));
	label_date(cmd_u64(o, "to_ms"), to, sizeof(to));
	label_date(cmd_u64(o, "at_ms"), at, sizeof(at));
	if (cmd_u64(o, "from_ms") && cmd_u64(o, "to_ms"))
		snprintf(buf, len, _("referrals sent from %s up to %s; overdue "
		    "as of %s"), from, to, at);
	else if (cmd_u64(o, "from_ms"))
		snprintf(buf, len, _("referrals sent from %s up to %s"), from,
		    at);
	else if (cmd_u64(o, "to_ms"))
		snprintf(buf, len, _("referrals sent before %s; overdue as of "
		    "%s"), to, at);
	else
		snprintf(buf, len, _("all referrals sent; overdue as of %s"),
		    at);
	return buf;
}

/* "8 of 11 due (72,7%)" */
static const char *
s_within(const struct reportfig_answers *n, char *buf, size_t len)
{
	char pct[16];

	snprintf(buf, len, _("%" PRIu64 " of %" PRIu64 " due (%s)"), n->within,
	    n->due, s_pct(n->within, n->due, pct, sizeof(pct)));
	return buf;
}

/* The officer's record ("stopped", "not recorded") for people. */
static const char *
s_absence_label(const char *code)
{
	if (strcmp(code, "not recorded") == 0)
		return label_enum(&kp__absence_after__descriptor, 0);
	return label_code(&kp__absence_after__descriptor, code);
}

/* "61,4% (43/70)": the same in the HTML tables, where space is short. */
static const char *
s_within_short(const struct reportfig_answers *n, char *buf, size_t len)
{
	char pct[16];

	snprintf(buf, len, "%s (%" PRIu64 "/%" PRIu64 ")", s_pct(n->within,
	    n->due, pct, sizeof(pct)), n->within, n->due);
	return buf;
}

/* A label as a heading: its first letter a capital (ASCII labels). */
static const char *
s_title(const char *label, char *buf, size_t len)
{
	snprintf(buf, len, "%s", label);
	if (buf[0] >= 'a' && buf[0] <= 'z')
		buf[0] = (char)(buf[0] - 'a' + 'A');
	return buf;
}

/* ---- text ---- */

static void
s_text_outcomes(const json_t *r, bool interim, const char *title)
{
	const json_t *oc[S_MAX_OC];
	size_t i, n = s_outcomes(r, interim, oc, S_MAX_OC);
	uint64_t total = s_sum(oc, n);
	char label[160], cnt[24], pct[32];
	const char *cells[3];
	struct fb_table t;

	printf("  %s\n", title);
	if (n == 0) {
		printf(_("    (none)\n"));
		return;
	}
	fb_table_init(&t, 3);
	for (i = 0; i < n; i++) {
		snprintf(cnt, sizeof(cnt), "%" PRIu64, cmd_u64(oc[i], "count"));
		cells[0] = label_outcome(cmd_str(oc[i], "outcome"), label,
		    sizeof(label));
		cells[1] = cnt;
		cells[2] = s_pct(cmd_u64(oc[i], "count"), total, pct, 16);
		/* the overdue share stands out here too */
		if (s_oc_overdue(cmd_str(oc[i], "outcome")))
			strcat(pct, "  <--");
		fb_table_row(&t, cells);
	}
	fb_table_print(&t, 4);
}

static void
s_text_partners(const json_t *r)
{
	const char *cells[8];
	const json_t *p;
	struct reportfig_answers n;
	char norm[24], e[24], an[24], w[64], med[24], p90[24], od[24];
	struct fb_table t;
	size_t i;

	printf(_("  Partners (lead times in days; within the norm: of the "
	    "answers due)\n"));
	if (json_array_size(json_object_get(r, "partners")) == 0) {
		printf(_("    (no answers expected)\n"));
		return;
	}
	fb_table_init(&t, 8);
	cells[0] = _("PARTNER"); cells[1] = _("NORM"); cells[2] = _("EXPECTED");
	cells[3] = _("ANSWERED"); cells[4] = _("WITHIN THE NORM");
	cells[5] = _("MEDIAN"); cells[6] = _("P90"); cells[7] = _("OVERDUE NOW");
	fb_table_row(&t, cells);
	json_array_foreach(json_object_get(r, "partners"), i, p) {
		reportfig_answers(p, &n);
		snprintf(e, sizeof(e), "%" PRIu64, n.expected);
		snprintf(an, sizeof(an), "%" PRIu64, n.answered);
		snprintf(od, sizeof(od), "%" PRIu64, n.overdue);
		cells[0] = cmd_partner(p);
		cells[1] = s_days(p, "norm_days", norm, sizeof(norm));
		cells[2] = e;
		cells[3] = an;
		cells[4] = s_within(&n, w, sizeof(w));
		cells[5] = s_days(p, "median_days", med, sizeof(med));
		cells[6] = s_days(p, "p90_days", p90, sizeof(p90));
		cells[7] = od;
		fb_table_row(&t, cells);
	}
	fb_table_print(&t, 4);
}

static void
s_text_trend(const json_t *o)
{
	const char *cells[5];
	const json_t *m;
	char c[24], f[24], an[24], w[64], pct[16];
	struct fb_table t;
	size_t i;

	printf(_("\nTrend per month (by the month the referral was sent)\n"));
	if (json_array_size(json_object_get(o, "months")) == 0) {
		printf(_("  (none)\n"));
		return;
	}
	fb_table_init(&t, 5);
	cells[0] = _("MONTH"); cells[1] = _("CASES"); cells[2] = _("REFERRALS");
	cells[3] = _("ANSWERED"); cells[4] = _("WITHIN THE NORM");
	fb_table_row(&t, cells);
	json_array_foreach(json_object_get(o, "months"), i, m) {
		snprintf(c, sizeof(c), "%" PRIu64, cmd_u64(m, "cases"));
		snprintf(f, sizeof(f), "%" PRIu64, cmd_u64(m, "referrals"));
		snprintf(an, sizeof(an), "%" PRIu64, cmd_u64(m, "answered"));
		snprintf(w, sizeof(w), "%" PRIu64 "/%" PRIu64 " %s", cmd_u64(m,
		    "within_lead_time"), cmd_u64(m, "due"), s_pct(cmd_u64(m,
		    "within_lead_time"), cmd_u64(m, "due"), pct, sizeof(pct)));
		cells[0] = cmd_str(m, "month");
		cells[1] = c;
		cells[2] = f;
		cells[3] = an;
		cells[4] = w;
		fb_table_row(&t, cells);
	}
	fb_table_print(&t, 2);
}

static void
s_text_absence(const json_t *r)
{
	const json_t *it;
	char cnt[24], pct[16];
	const char *cells[3];
	struct fb_table t;
	size_t i;

	printf(_("  Absence after the route (officer's record, per case)\n"));
	fb_table_init(&t, 3);
	json_array_foreach(json_object_get(r, "absence_after"), i, it) {
		snprintf(cnt, sizeof(cnt), "%" PRIu64, cmd_u64(it, "count"));
		cells[0] = s_absence_label(cmd_str(it, "outcome"));
		cells[1] = cnt;
		cells[2] = s_pct(cmd_u64(it, "count"), cmd_u64(r, "cases"), pct,
		    sizeof(pct));
		fb_table_row(&t, cells);
	}
	fb_table_print(&t, 4);
}

static void
s_text(const json_t *o)
{
	const json_t *routes = json_object_get(o, "routes"), *r;
	struct reportfig_total tot;
	struct reportfig_answers n;
	char period[256], line[256], w[64], norm[32];
	size_t i;

	printf(_("Feedback report: %s\n"), s_period(o, period, sizeof(period)));
	reportfig_total(routes, &tot);
	printf(_("\nTotal: %s; within the norm %s\n"), s_route_line(tot.cases,
	    tot.referrals, tot.overdue, line, sizeof(line)), s_within(&tot.a,
	    w, sizeof(w)));
	json_array_foreach(routes, i, r) {
		reportfig_route_answers(r, &n);
		printf(_("\nRoute %s (norm %s): %s\n"), s_route_name(r),
		    s_route_norm(r, norm, sizeof(norm)), s_route_line(cmd_u64(r,
		    "cases"), cmd_u64(r, "referrals"), cmd_u64(r, "overdue_now"), line,
		    sizeof(line)));
		if (cmd_u64(r, "escalated") > 0)
			printf(ngettext("  %" PRIu64 " answer escalated\n",
			    "  %" PRIu64 " answers escalated\n",
			    (unsigned long)cmd_u64(r, "escalated")), cmd_u64(r,
			    "escalated"));
		s_text_outcomes(r, false, _("Outcomes (per referral)"));
		s_text_outcomes(r, true, _("Interim phases (answer still "
		    "open)"));
		s_text_absence(r);
		s_text_partners(r);
	}
	s_text_trend(o);
}

/* ---- HTML ---- */

/* Chart geometry (SVG user units); labels sit above their bars, so a
 * long name never has to be cut. */
#define S_W 760
#define S_BAR_X 16
#define S_BAR_W 520
#define S_ROW 40
#define S_BAR_H 14

static const char s_css[] =
"@page{size:A4;margin:15mm}\n"
"body{font-family:system-ui,-apple-system,\"Segoe UI\",sans-serif;"
"color:#1b1b1b;margin:2em auto;max-width:64em;padding:0 1.5em;"
"line-height:1.45}\n"
"h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:2em;"
"border-bottom:2px solid #ddd;font-size:1.3em}h3{font-size:1.05em}\n"
"table{border-collapse:collapse;margin:.8em 0 1.2em;max-width:100%}caption{text-align:"
"left;font-weight:bold;padding:.3em 0}\n"
"th,td{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left;"
"vertical-align:top}\n"
"th{background:#f3f3f3;font-size:.92em}td.n,th.n{text-align:right;"
"font-variant-numeric:tabular-nums}td.n{white-space:nowrap}\n"
"tr.total td{font-weight:bold;border-top:2px solid #999}\n"
"tr.overdue td{color:#a33a00;font-weight:bold;background:#fdeee6}\n"
".swatch{display:inline-block;width:.8em;height:.8em;margin-right:.4em;"
"border:1px solid #666;vertical-align:baseline}\n"
"figure{margin:1em 0}figcaption{font-size:.9em;color:#444;max-width:50em}\n"
"svg{max-width:100%;height:auto}svg text{font-size:13px;fill:#1b1b1b}"
"svg text.h{font-weight:bold;font-size:14px}svg text.od{fill:#a33a00;"
"font-weight:bold}\n"
".period,.note{color:#444}.norms{background:#f6f8fa;padding:.6em 1em;"
"border-left:4px solid #0072B2}code{background:#f3f3f3;padding:0 .2em}\n"
"@media print{body{margin:0;max-width:none;font-size:10pt}"
"section.route{break-before:page}figure,table{break-inside:avoid}"
"h2{break-after:avoid}}\n";

static void
s_esc(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			/* control characters are not allowed in XML 1.0 */
			if ((unsigned char)*s < 0x20 && *s != '\t' &&
			    *s != '\n' && *s != '\r')
				fputs("\xef\xbf\xbd", f);
			else
				fputc(*s, f);
		}
}

static void
s_rect(FILE *f, double x, double y, double w, const char *fill,
    const char *tip)
{
	if (w <= 0)
		return;
	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
	    "fill=\"%s\"><title>", x, y, w, S_BAR_H, fill);
	s_esc(f, tip);
	fputs("</title></rect>\n", f);
}

static void
s_svg_text(FILE *f, double x, double y, const char *cls, const char *text)
{
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\"%s%s%s>", x, y,
	    cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
	s_esc(f, text);
	fputs("</text>\n", f);
}

static void
s_cell(FILE *f, const char *tag, bool num, const char *text)
{
	fprintf(f, "<%s%s%s>", tag, strcmp(tag, "th") == 0 ?
	    " scope=\"col\"" : "", num ? " class=\"n\"" : "");
	s_esc(f, text);
	fprintf(f, "</%s>", tag);
}

static void
s_cell_u(FILE *f, uint64_t v)
{
	fprintf(f, "<td class=\"n\">%" PRIu64 "</td>", v);
}

static void
s_head_row(FILE *f, const char *const *cells, size_t n)
{
	size_t i;

	fputs("<thead><tr>", f);
	for (i = 0; i < n; i++)
		s_cell(f, "th", i > 0, cells[i]);
	fputs("</tr></thead>\n<tbody>\n", f);
}

/* The outcome bars of route r from y on; returns the next free y. */
static int
s_chart_outcomes(FILE *f, const json_t *r, int y)
{
	const json_t *oc[S_MAX_OC];
	size_t i, n = s_outcomes(r, false, oc, S_MAX_OC);
	uint64_t total = s_sum(oc, n), c, max = 0;
	char label[160], tip[320], val[200], pct[16];
	const char *code;
	double w;

	s_svg_text(f, 8, y, "h", _("Outcomes (per referral)"));
	y += 24;
	for (i = 0; i < n; i++)
		if ((c = cmd_u64(oc[i], "count")) > max)
			max = c;
	for (i = 0; i < n; i++) {
		code = cmd_str(oc[i], "outcome");
		c = cmd_u64(oc[i], "count");
		w = max ? (double)S_BAR_W * (double)c / (double)max : 0;
		snprintf(val, sizeof(val), "%s: %" PRIu64 " (%s)",
		    label_outcome(code, label, sizeof(label)), c,
		    s_pct(c, total, pct, sizeof(pct)));
		s_svg_text(f, S_BAR_X, y, s_oc_overdue(code) ? "od" : NULL,
		    val);
		snprintf(tip, sizeof(tip), "%s", val);
		s_rect(f, S_BAR_X, y + 5, w, s_oc_colour(code), tip);
		y += S_ROW;
	}
	if (n == 0) {
		s_svg_text(f, S_BAR_X, y, NULL, _("no outcomes"));
		y += S_ROW;
	}
	return y;
}

/* One partner's stacked bar: within, late, overdue, open. */
static void
s_chart_partner(FILE *f, const json_t *p, uint64_t max, int y)
{
	const char *what[4], *fill[4] = { S_C_WITHIN, S_C_LATE, S_C_OVERDUE,
	    S_C_OPEN };
	struct reportfig_answers n;
	uint64_t part[4];
	char tip[400], val[400], w[64], norm[24];
	double x = S_BAR_X, bw;
	size_t i;

	what[0] = _("answered within the norm");
	what[1] = _("answered late");
	what[2] = _("overdue now");
	what[3] = _("open, not yet due");
	reportfig_answers(p, &n);
	part[0] = n.within;
	part[1] = n.late;
	part[2] = n.overdue;
	part[3] = n.open;
	snprintf(val, sizeof(val), _("%s (norm %s days): %s within the norm"),
	    cmd_partner(p), s_days(p, "norm_days", norm, sizeof(norm)),
	    s_within(&n, w, sizeof(w)));
	s_svg_text(f, S_BAR_X, y, NULL, val);
	for (i = 0; i < 4; i++) {
		bw = max ? (double)S_BAR_W * (double)part[i] / (double)max : 0;
		snprintf(tip, sizeof(tip), "%s: %" PRIu64 " %s", cmd_partner(p),
		    part[i], what[i]);
		s_rect(f, x, y + 5, bw, fill[i], tip);
		x += bw;
	}
}

static void
s_chart_legend(FILE *f, int y)
{
	const char *what[4], *fill[4] = { S_C_WITHIN, S_C_LATE, S_C_OVERDUE,
	    S_C_OPEN };
	double x = S_BAR_X;
	size_t i;

	what[0] = _("within the norm");
	what[1] = _("late");
	what[2] = _("overdue now");
	what[3] = _("open");
	for (i = 0; i < 4; i++) {
		fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"12\" height=\"12\" "
		    "fill=\"%s\"/>\n", x, y - 10, fill[i]);
		s_svg_text(f, x + 16, y, NULL, what[i]);
		x += 16 + 8 * (double)strlen(what[i]) + 20;
	}
}

static void
s_svg_open(FILE *f, const char *cls, const char *route, const char *id,
    int h, const char *title, const char *desc)
{
	fprintf(f, "<figure>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "class=\"%s\"", cls);
	if (route != NULL) {
		fputs(" data-route=\"", f);
		s_esc(f, route);
		fputc('"', f);
	}
	fprintf(f, " width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	    "role=\"img\" aria-labelledby=\"%s-title %s-desc\">\n<title "
	    "id=\"%s-title\">", S_W, h, S_W, h, id, id, id);
	s_esc(f, title);
	fprintf(f, "</title>\n<desc id=\"%s-desc\">", id);
	s_esc(f, desc);
	fputs("</desc>\n", f);
}

static void
s_html_chart(FILE *f, const json_t *r, size_t idx)
{
	const json_t *partners = json_object_get(r, "partners"), *p;
	size_t i, np = json_array_size(partners);
	const json_t *oc[S_MAX_OC];
	size_t no = s_outcomes(r, false, oc, S_MAX_OC);
	struct reportfig_answers n;
	uint64_t max = 0;
	char id[32], title[200], rt[128];
	int y;

	snprintf(id, sizeof(id), "chart%zu", idx);
	snprintf(title, sizeof(title), _("%s: outcomes and answers per "
	    "partner"), s_title(s_route_name(r), rt, sizeof(rt)));
	s_svg_open(f, "route-chart", cmd_str(r, "route"), id, 76 + S_ROW *
	    (int)((no ? no : 1) + (np ? np : 1)), title, _("Bars per outcome "
	    "with its number of referrals; per partner one bar of the answers "
	    "expected: within the norm, late, overdue now, open. The tables "
	    "below give the same numbers."));
	y = s_chart_outcomes(f, r, 20) + 4;
	s_svg_text(f, 8, y, "h", _("Answers expected per partner"));
	y += 24;
	json_array_foreach(partners, i, p) {
		reportfig_answers(p, &n);
		if (n.expected > max)
			max = n.expected;
	}
	json_array_foreach(partners, i, p) {
		s_chart_partner(f, p, max, y);
		y += S_ROW;
	}
	if (np == 0) {
		s_svg_text(f, S_BAR_X, y, NULL, _("no answers expected"));
		y += S_ROW;
	}
	s_chart_legend(f, y);
	fprintf(f, "</svg>\n<figcaption>");
	s_esc(f, title);
	fputs("</figcaption>\n</figure>\n", f);
}

/* The trend chart: referrals per month (bars) and the share within the
 * norm (a line, 0-100%). */
static void
s_html_trend_chart(FILE *f, const json_t *months)
{
	size_t i, n = json_array_size(months);
	const json_t *m;
	uint64_t max = 1;
	double step, x, h, px = -1, py = 0, share;
	const int top = 30, ch = 160, base = top + ch;
	char tip[200], pct[16];

	if (n == 0)
		return;
	s_svg_open(f, "trend-chart", NULL, "trend", base + 50, _("Trend per month"),
	    _("Bars: referrals sent per month; line: the share of the answers "
	    "due that came within the norm (0 to 100%)."));
	json_array_foreach(months, i, m)
		if (cmd_u64(m, "referrals") > max)
			max = cmd_u64(m, "referrals");
	step = (double)(S_W - 80) / (double)n;   /* 40 left, 40 right */
	s_svg_text(f, 8, 16, "h", _("Referrals (bars) and share within the "
	    "norm (line)"));
	fprintf(f, "<line x1=\"40\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
	    "stroke=\"#999\"/>\n", base, S_W - 30, base);
	/* the scales: referrals on the left, the share on the right */
	fprintf(f, "<text x=\"34\" y=\"%d\" text-anchor=\"end\" "
	    "font-size=\"11\">%" PRIu64 "</text>\n<text x=\"34\" y=\"%d\" "
	    "text-anchor=\"end\" font-size=\"11\">0</text>\n<text x=\"%d\" "
	    "y=\"%d\" font-size=\"11\" fill=\"#007a5a\">100%%</text>\n"
	    "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#007a5a\">"
	    "0%%</text>\n", top + 4, max, base, S_W - 26, top + 4, S_W - 26,
	    base);
	json_array_foreach(months, i, m) {
		x = 40 + step * (double)i;
		h = (double)ch * (double)cmd_u64(m, "referrals") / (double)max;
		snprintf(tip, sizeof(tip), "%s: %" PRIu64 " / %s",
		    cmd_str(m, "month"), cmd_u64(m, "referrals"), s_pct(cmd_u64(m,
		    "within_lead_time"), cmd_u64(m, "due"), pct, sizeof(pct)));
		if (h > 0) {
			fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			    "height=\"%.1f\" fill=\"#0072B2\"><title>", x + 4,
			    base - h, step - 8, h);
			s_esc(f, tip);
			fputs("</title></rect>\n", f);
		}
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" "
		    "font-size=\"11\">%s</text>\n", x + step / 2, base + 16,
		    cmd_str(m, "month") + 2);
		if (cmd_u64(m, "due") == 0)
			continue;
		share = (double)cmd_u64(m, "within_lead_time") /
		    (double)cmd_u64(m, "due");
		if (px >= 0)
			fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
			    "y2=\"%.1f\" stroke=\"#009E73\" stroke-width=\"2\"/>"
			    "\n", px, py, x + step / 2, base - ch * share);
		px = x + step / 2;
		py = base - ch * share;
		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" "
		    "fill=\"#009E73\"/>\n", px, py);
	}
	fputs("</svg>\n<figcaption>", f);
	s_esc(f, _("Referrals sent per month (bars) and the share of the "
	    "answers due that came within the norm (line)."));
	fputs("</figcaption>\n</figure>\n", f);
}

static void
s_html_summary(FILE *f, const json_t *routes)
{
	const char *head[9];
	struct reportfig_answers n;
	struct reportfig_total tot;
	const json_t *r;
	char w[64], norm[32], title[128];
	size_t i;

	head[0] = _("Route"); head[1] = _("Norm"); head[2] = _("Cases");
	head[3] = _("Referrals"); head[4] = _("Answers expected");
	head[5] = _("Answered"); head[6] = _("Within the norm");
	head[7] = _("Overdue now");
	head[8] = _("Escalated");
	fprintf(f, "<table class=\"summary\">\n<caption>");
	s_esc(f, _("Summary per route, with the totals"));
	fputs("</caption>\n", f);
	s_head_row(f, head, 9);
	json_array_foreach(routes, i, r) {
		reportfig_route_answers(r, &n);
		fputs("<tr>", f);
		s_cell(f, "td", false, s_title(s_route_name(r), title,
		    sizeof(title)));
		s_cell(f, "td", true, s_route_norm(r, norm, sizeof(norm)));
		s_cell_u(f, cmd_u64(r, "cases"));
		s_cell_u(f, cmd_u64(r, "referrals"));
		s_cell_u(f, n.expected);
		s_cell_u(f, n.answered);
		s_cell(f, "td", true, s_within_short(&n, w, sizeof(w)));
		s_cell_u(f, cmd_u64(r, "overdue_now"));
		s_cell_u(f, cmd_u64(r, "escalated"));
		fputs("</tr>\n", f);
	}
	reportfig_total(routes, &tot);
	fputs("<tr class=\"total\">", f);
	s_cell(f, "td", false, _("Total"));
	s_cell(f, "td", true, "");
	s_cell_u(f, tot.cases);
	s_cell_u(f, tot.referrals);
	s_cell_u(f, tot.a.expected);
	s_cell_u(f, tot.a.answered);
	s_cell(f, "td", true, s_within_short(&tot.a, w, sizeof(w)));
	s_cell_u(f, tot.overdue);
	s_cell_u(f, tot.escalated);
	fputs("</tr>\n</tbody>\n</table>\n", f);
}

static void
s_html_trend(FILE *f, const json_t *o)
{
	const json_t *months = json_object_get(o, "months"), *m;
	const char *head[5];
	char w[64];
	struct reportfig_answers n;
	size_t i;

	fputs("<h2>", f);
	s_esc(f, _("Trend per month"));
	fputs("</h2>\n", f);
	if (json_array_size(months) == 0) {
		fputs("<p>-</p>\n", f);
		return;
	}
	s_html_trend_chart(f, months);
	head[0] = _("Month"); head[1] = _("Cases"); head[2] = _("Referrals");
	head[3] = _("Answered"); head[4] = _("Within the norm");
	fprintf(f, "<table class=\"trend\">\n<caption>");
	s_esc(f, _("Trend per month (by the month the referral was sent)"));
	fputs("</caption>\n", f);
	s_head_row(f, head, 5);
	json_array_foreach(months, i, m) {
		memset(&n, 0, sizeof(n));
		n.within = cmd_u64(m, "within_lead_time");
		n.due = cmd_u64(m, "due");
		fputs("<tr>", f);
		s_cell(f, "td", false, cmd_str(m, "month"));
		s_cell_u(f, cmd_u64(m, "cases"));
		s_cell_u(f, cmd_u64(m, "referrals"));
		s_cell_u(f, cmd_u64(m, "answered"));
		s_cell(f, "td", true, s_within_short(&n, w, sizeof(w)));
		fputs("</tr>\n", f);
	}
	fputs("</tbody>\n</table>\n", f);
}

static void
s_html_outcomes(FILE *f, const json_t *r, bool interim)
{
	const json_t *oc[S_MAX_OC];
	size_t i, n = s_outcomes(r, interim, oc, S_MAX_OC);
	uint64_t total = s_sum(oc, n);
	const char *head[3], *code;
	char label[160], pct[16];

	if (interim && n == 0)
		return;
	head[0] = interim ? _("Interim phase") : _("Outcome");
	head[1] = _("Referrals");
	head[2] = _("Share");
	fprintf(f, "<table class=\"%s\">\n<caption>", interim ? "interim" :
	    "outcomes");
	s_esc(f, interim ? _("Interim phases (answer still open)") :
	    _("Outcomes (per referral)"));
	fputs("</caption>\n", f);
	s_head_row(f, head, 3);
	for (i = 0; i < n; i++) {
		code = cmd_str(oc[i], "outcome");
		fprintf(f, "<tr%s><td><span class=\"swatch\" style=\""
		    "background:%s\"></span>", s_oc_overdue(code) ?
		    " class=\"overdue\"" : "", s_oc_colour(code));
		s_esc(f, label_outcome(code, label, sizeof(label)));
		fputs("</td>", f);
		s_cell_u(f, cmd_u64(oc[i], "count"));
		s_cell(f, "td", true, s_pct(cmd_u64(oc[i], "count"), total, pct,
		    sizeof(pct)));
		fputs("</tr>\n", f);
	}
	if (n == 0)
		fputs("<tr><td>-</td><td class=\"n\">0</td><td class=\"n\">-"
		    "</td></tr>\n", f);
	fputs("</tbody>\n</table>\n", f);
}

static void
s_html_absence(FILE *f, const json_t *r)
{
	const char *head[3];
	const json_t *it;
	char pct[16];
	size_t i;

	head[0] = _("Absence after the route");
	head[1] = _("Cases");
	head[2] = _("Share");
	fprintf(f, "<table class=\"absence\">\n<caption>");
	s_esc(f, _("Absence after the route (officer's record, per case)"));
	fputs("</caption>\n", f);
	s_head_row(f, head, 3);
	json_array_foreach(json_object_get(r, "absence_after"), i, it) {
		fputs("<tr>", f);
		s_cell(f, "td", false, s_absence_label(cmd_str(it, "outcome")));
		s_cell_u(f, cmd_u64(it, "count"));
		s_cell(f, "td", true, s_pct(cmd_u64(it, "count"), cmd_u64(r, "cases"),
		    pct, sizeof(pct)));
		fputs("</tr>\n", f);
	}
	fputs("</tbody>\n</table>\n", f);
}

static void
s_html_partners(FILE *f, const json_t *r)
{
	const char *head[8];
	struct reportfig_answers n;
	const json_t *it;
	char buf[64];
	size_t i;

	head[0] = _("Partner"); head[1] = _("Norm (days)");
	head[2] = _("Expected"); head[3] = _("Answered");
	head[4] = _("Within the norm"); head[5] = _("Median (days)");
	head[6] = _("90th percentile (days)"); head[7] = _("Overdue now");
	fprintf(f, "<table class=\"partners\">\n<caption>");
	s_esc(f, _("Lead times per partner, next to the norm"));
	fputs("</caption>\n", f);
	s_head_row(f, head, 8);
	json_array_foreach(json_object_get(r, "partners"), i, it) {
		reportfig_answers(it, &n);
		fputs("<tr><td>", f);
		s_esc(f, cmd_partner(it));
		fputs(" <code>", f);
		s_esc(f, cmd_str(it, "partner_oin"));
		fputs("</code></td>", f);
		s_cell(f, "td", true, s_days(it, "norm_days", buf,
		    sizeof(buf)));
		s_cell_u(f, n.expected);
		s_cell_u(f, n.answered);
		s_cell(f, "td", true, s_within_short(&n, buf, sizeof(buf)));
		s_cell(f, "td", true, s_days(it, "median_days", buf,
		    sizeof(buf)));
		s_cell(f, "td", true, s_days(it, "p90_days", buf, sizeof(buf)));
		s_cell_u(f, n.overdue);
		fputs("</tr>\n", f);
	}
	fputs("</tbody>\n</table>\n", f);
}

static void
s_html_route(FILE *f, const json_t *r, size_t idx)
{
	char line[256], norm[32], title[128];

	fputs("<section class=\"route\">\n<h2>", f);
	s_esc(f, s_title(s_route_name(r), title, sizeof(title)));
	fputs("</h2>\n<p>", f);
	s_esc(f, s_route_line(cmd_u64(r, "cases"), cmd_u64(r, "referrals"), cmd_u64(r,
	    "overdue_now"), line, sizeof(line)));
	fputs(". ", f);
	if (cmd_u64(r, "escalated") > 0) {
		snprintf(line, sizeof(line), ngettext("%" PRIu64 " answer "
		    "escalated.", "%" PRIu64 " answers escalated.",
		    (unsigned long)cmd_u64(r, "escalated")), cmd_u64(r, "escalated"));
		s_esc(f, line);
		fputc(' ', f);
	}
	snprintf(line, sizeof(line), _("Norm: %s."), s_route_norm(r, norm,
	    sizeof(norm)));
	s_esc(f, line);
	fputs("</p>\n", f);
	s_html_chart(f, r, idx);
	s_html_outcomes(f, r, false);
	s_html_outcomes(f, r, true);
	s_html_absence(f, r);
	s_html_partners(f, r);
	fputs("</section>\n", f);
}

static void
s_html(FILE *f, const json_t *o)
{
	const json_t *routes = json_object_get(o, "routes"), *r;
	char period[256];
	size_t i;

	s_period(o, period, sizeof(period));
	fprintf(f, "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/"
	    "xhtml\" lang=\"%s\" xml:lang=\"%s\">\n<head>\n<meta charset="
	    "\"utf-8\"/>\n<meta name=\"viewport\" content=\"width=device-"
	    "width, initial-scale=1\"/>\n<meta name=\"generator\" content="
	    "\"ketenpost " KP_VERSION "\"/>\n<title>", labels_lang(),
	    labels_lang());
	s_esc(f, _("Feedback report"));
	fputs(": ", f);
	s_esc(f, period);
	fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>",
	    s_css);
	s_esc(f, _("Feedback report"));
	fputs("</h1>\n<p class=\"period\">", f);
	s_esc(f, period);
	fputs(".</p>\n<p class=\"note norms\">", f);
	s_esc(f, _("The norm is the lead time of the chain policy for an "
	    "answer (the MAS agreement): within the norm counts the answers "
	    "that came by their due date, of the answers due (answered, or "
	    "overdue now). Overdue answers are shown in red."));
	fputs("</p>\n<h2>", f);
	s_esc(f, _("Summary"));
	fputs("</h2>\n", f);
	s_html_summary(f, routes);
	s_html_trend(f, o);
	json_array_foreach(routes, i, r)
		s_html_route(f, r, i);
	fputs("<p class=\"note\">", f);
	s_esc(f, _("Made by ketenpost from the daemon's records."));
	fputs(" " KP_VERSION "</p>\n</body>\n</html>\n", f);
}

/* ---- CSV (lib/reportfig.c, shared with the REST API) ---- */

static void
s_csv(FILE *f, const json_t *o)
{
	static const struct reportfig_labels l = { label_outcome,
	    s_absence_label };

	reportfig_csv(f, o, &l);
}

/* ---- the command ---- */

/* Write o to path with write(); 0 or an exit status after the message. */
static int
s_file(const char *path, const json_t *o, void (*write)(FILE *,
    const json_t *), const char *what)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
	int err;

	if (f == NULL)
		return cli_error("cannot write the %s to %s: %s", what, path,
		    strerror(errno));
	write(f, o);
	err = ferror(f) ? EIO : 0;
	if (f == stdout)
		return err ? cli_error("cannot write the %s: %s", what,
		    strerror(err)) : 0;
	if (fclose(f) != 0 && err == 0)
		err = errno;
	if (err != 0) {
		unlink(path);
		return cli_error("cannot write the %s to %s: %s", what, path,
		    strerror(err));
	}
	return 0;
}

int
cmd_report(int argc, char **argv)
{
	Kp__ReportRequest q = KP__REPORT_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	struct rp_args a;
	struct cmd_ctx x;
	json_t *o;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = cmd_parse(&s_spec, argc, argv, &x, &a)) != 0)
		return rc;
	if ((a.json ? 1 : 0) + (a.html ? 1 : 0) + (a.csv ? 1 : 0) > 1)
		return cli_usage_error(x.cmd, "give one of --json, --html and "
		    "--csv");
	if ((rc = s_period_args(&x, &a)) != 0)
		return rc;
	q.has_from_ms = a.has_from;
	q.from_ms = a.from;
	q.has_to_ms = a.has_to;
	q.to_ms = a.to;
	q.has_at_ms = a.has_at;
	q.at_ms = a.at;
	req.op_case = KP__REQUEST__OP_REPORT;
	req.report = &q;
	if ((rc = fb_ask(&x, &req, KP__RESPONSE__RESULT_REPORT, &o)) != 0)
		return rc;
	if (a.json)
		cli_print_json(o);
	else if (a.html != NULL)
		rc = s_file(a.html, o, s_html, "report");
	else if (a.csv != NULL)
		rc = s_file(a.csv, o, s_csv, "CSV");
	else
		s_text(o);
	json_decref(o);
	return rc;
}
