/*
 * test_labels.c: the language of the officer's and the manager's output.
 * Every code of proto/events.proto, api.proto and envelope.proto has a
 * label in English and in Dutch (a new enum, or a new value, without one
 * fails here); the real `ketenpost` against the fake daemon of fakeapi.h
 * speaks Dutch by default and English with --lang en or LANG=en_*, for
 * todo, remind --all-overdue, case and report (key lines, not whole
 * pages); the report's CSV parses back; the HTML report is well-formed
 * XML (python3's parser, and xmllint when installed) with the norms,
 * totals and trend.
 */
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "api.pb-c.h"
#include "common.h"
#include "envelope.pb-c.h"
#include "events.pb-c.h"
#include "fakeapi.h"
#include "util.h"

/* The client's label tables themselves, not a copy of them. */
#include "../client/labels.c"

TestSuite(labels, .init = test_init);

#define DAY UINT64_C(86400000)
#define T0 UINT64_C(1798761600000)          /* 2027-01-01T00:00:00Z */
#define ID_A "0b0e4f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
#define ID_B "7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a"
#define ID_R1 "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
#define LONG_NAME "Stichting Halt Regio Midden-Nederland en Omstreken (Utrecht)"

/* ---- every code has a label in both languages ---- */

/* The enum names declared in proto file `name`; *n of them. */
static size_t
s_proto_enums(const char *name, char out[64][64])
{
	char path[1024], *p;
	uint8_t *text;
	size_t len, n = 0;

	snprintf(path, sizeof(path), "%s/proto/%s", test_source_dir(), name);
	cr_assert(kp_read_file(path, 1 << 20, &text, &len) == 0, "%s", path);
	for (p = (char *)text; (p = strstr(p, "\nenum ")) != NULL && n < 64;
	    p++)
		cr_assert(sscanf(p + 6, "%63[A-Za-z0-9_]", out[n++]) == 1);
	free(text);
	return n;
}

static const ProtobufCEnumDescriptor *
s_labelled(const char *name)
{
	const ProtobufCEnumDescriptor *const *all;
	size_t i, n;

	all = labels_enums(&n);
	for (i = 0; i < n; i++)
		if (strcmp(all[i]->short_name, name) == 0)
			return all[i];
	return NULL;
}

/* The Dutch catalogue of the build tree, bound as the client binds it. */
static void
s_dutch(void)
{
	char dir[1024];

	snprintf(dir, sizeof(dir), "%s/../share/locale", test_bin());
	setenv("LANGUAGE", "nl", 1);
	cr_assert(setlocale(LC_MESSAGES, "C.UTF-8") != NULL);
	cr_assert(bindtextdomain("ketenpost", dir) != NULL);
	bind_textdomain_codeset("ketenpost", "UTF-8");
	textdomain("ketenpost");
}

Test(labels, every_code_has_a_label_in_both_languages)
{
	static const char *const files[] = { "events.proto", "api.proto",
	    "envelope.proto" };
	char names[64][64];
	const ProtobufCEnumDescriptor *d;
	const char *en, *nl;
	size_t f, i, n, values = 0;
	unsigned v;

	s_dutch();
	for (f = 0; f < 3; f++) {
		n = s_proto_enums(files[f], names);
		cr_assert(n > 0, "no enums in %s", files[f]);
		for (i = 0; i < n; i++) {
			d = s_labelled(names[i]);
			cr_assert(d != NULL, "enum %s of %s has no labels in "
			    "client/labels.c", names[i], files[f]);
			for (v = 0; v < d->n_values; v++) {
				en = label_msgid(d, d->values[v].value);
				cr_assert(en != NULL && *en != '\0', "%s has no "
				    "English label", d->values[v].name);
				/* gettext returns the id itself when the
				 * catalogue has no translation */
				nl = dgettext("ketenpost", en);
				cr_assert(nl != en && *nl != '\0', "%s (\"%s\") "
				    "has no Dutch label in po/nl.po",
				    d->values[v].name, en);
				values++;
			}
		}
	}
	cr_assert(values > 150, "only %zu values", values);
	/* spot checks of the MAS terms */
	cr_assert_str_eq(label_enum(&kp__om_decision_kind__descriptor,
	    KP__OM_DECISION_KIND__OM_DECISION_KIND_PV_TERUGGEZONDEN),
	    "pv teruggezonden");
	cr_assert_str_eq(label_enum(&kp__next_step__descriptor,
	    KP__NEXT_STEP__NEXT_STEP_ESCALATE), "opschalen");
	setenv("LANGUAGE", "en", 1);
	textdomain("ketenpost");     /* a new language: read again */
	cr_assert_str_eq(label_enum(&kp__om_decision_kind__descriptor,
	    KP__OM_DECISION_KIND__OM_DECISION_KIND_PV_TERUGGEZONDEN),
	    "pv sent back");
}

Test(labels, dates_as_people_read_them)
{
	char buf[32];

	cr_assert_str_eq(label_date(T0 + 332 * DAY, buf, sizeof(buf)),
	    "29-11-2027");
	cr_assert_str_eq(label_datetime(T0 + 332 * DAY + 3600000 * 14 +
	    60000 * 5, buf, sizeof(buf)), "29-11-2027 14:05");
	cr_assert_str_eq(label_date(0, buf, sizeof(buf)), "-");
}

/* ---- todo and remind --all-overdue ---- */

static void
s_ok(Kp__Response *r, Kp__Response__ResultCase rc)
{
	r->has_ok = r->ok = 1;
	r->result_case = rc;
}

struct todo_fixture {
	uint8_t a[16], b[16];
	Kp__TodoItem it[2], *ip[2];
	Kp__TodoResponse tr;
	Kp__Response r;
};

static void
s_todo_fixture(struct todo_fixture *o)
{
	Kp__TodoItem init = KP__TODO_ITEM__INIT;
	Kp__TodoResponse tr = KP__TODO_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;

	cr_assert(kp_uuid_parse(ID_A, o->a) == 0);
	cr_assert(kp_uuid_parse(ID_B, o->b) == 0);
	o->it[0] = o->it[1] = init;
	o->it[0].case_ref = "ZAAK-1";
	o->it[0].partner_oin = OIN_HALT;
	o->it[0].partner_name = LONG_NAME;
	o->it[0].has_answer_type = o->it[0].has_due_at_ms = 1;
	o->it[0].answer_type = KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME;
	o->it[0].due_at_ms = T0 - 30 * DAY;
	o->it[0].has_days_overdue = o->it[0].has_reminders = 1;
	o->it[0].days_overdue = 30;
	o->it[0].reminders = 2;
	o->it[0].has_last_reminder_at_ms = 1;
	o->it[0].last_reminder_at_ms = T0 - 5 * DAY;
	o->it[0].has_next_step = 1;
	o->it[0].next_step = KP__NEXT_STEP__NEXT_STEP_ESCALATE;
	o->it[0].has_event_id = 1;
	o->it[0].event_id = (ProtobufCBinaryData){ 16, o->a };
	o->it[1].case_ref = "ZAAK-2";
	o->it[1].partner_oin = OIN_RVDK;
	o->it[1].partner_name = "Raad voor de Kinderbescherming";
	o->it[1].has_answer_type = o->it[1].has_due_at_ms = 1;
	o->it[1].answer_type = KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE;
	o->it[1].due_at_ms = T0 + 3 * DAY;
	o->it[1].has_days_overdue = o->it[1].has_reminders = 1;
	o->it[1].days_overdue = -3;
	o->it[1].has_next_step = 1;
	o->it[1].next_step = KP__NEXT_STEP__NEXT_STEP_WAIT;
	o->it[1].has_event_id = 1;
	o->it[1].event_id = (ProtobufCBinaryData){ 16, o->b };
	o->ip[0] = &o->it[0];
	o->ip[1] = &o->it[1];
	o->tr = tr;
	o->tr.has_at_ms = o->tr.has_days = 1;
	o->tr.at_ms = T0;
	o->tr.days = 7;
	o->tr.n_items = 2;
	o->tr.items = o->ip;
	o->r = r;
	s_ok(&o->r, KP__RESPONSE__RESULT_TODO);
	o->r.todo = &o->tr;
}

Test(labels, todo_in_dutch_and_english)
{
	struct todo_fixture o;
	char out[16384];
	struct fake f;
	Kp__Request *q;
	json_t *j;
	int rc;

	s_todo_fixture(&o);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "todo");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_TODO);
	cr_assert(!q->todo->has_days && !q->todo->has_at_ms, "the defaults");
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
	cr_assert(strstr(out, "Werklijst van 01-01-2027: 2 antwoorden te laat "
	    "of binnen 7 dagen verwacht."), "%s", out);
	cr_assert(strstr(out, "ZAAK  ") && strstr(out, "UITERLIJK") &&
	    strstr(out, "VOLGENDE STAP"), "Dutch heads: %s", out);
	cr_assert(strstr(out, LONG_NAME) && strstr(out, "afloopbericht Halt") &&
	    strstr(out, "02-12-2026") && strstr(out, "27-12-2026") &&
	    strstr(out, "opschalen") && strstr(out, "over 3 dagen") &&
	    strstr(out, "afwachten"), "the items: %s", out);
	/* the most urgent first, as the daemon sorted them */
	cr_assert(strstr(out, "ZAAK-1") < strstr(out, "ZAAK-2"), "%s", out);

	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "todo --lang en "
	    "--days 14");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	q = fake_request(&f, 0);
	cr_assert(q->todo->has_days && q->todo->days == 14);
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
	cr_assert(strstr(out, "Work list of 01-01-2027: 2 answers overdue") &&
	    strstr(out, "NEXT STEP") && strstr(out, "escalate") &&
	    strstr(out, "in 3 days") && strstr(out, "Halt outcome"), "%s",
	    out);

	/* nothing to do; --json keeps the codes and ISO 8601 */
	o.tr.n_items = 0;
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "todo");
	fake_free(&f);
	cr_assert_str_eq(out, "Niets te doen op 01-01-2027: geen antwoord te "
	    "laat of binnen 7 dagen verwacht.\n");
	o.tr.n_items = 2;
	j = client_json_out(fake_serve_run(&f, &o.r, out, sizeof(out),
	    "todo --json"), out);
	fake_free(&f);
	cr_assert_str_eq(client_jstr(json_array_get(json_object_get(j,
	    "items"), 0), "next_step"), "escalate");
	cr_assert_str_eq(client_jstr(json_array_get(json_object_get(j,
	    "items"), 0), "due_at"), "2026-12-02T00:00:00.000Z");
	json_decref(j);
}

Test(labels, lang_from_the_environment)
{
	struct todo_fixture o;
	char out[16384];
	struct fake f;
	int rc;

	s_todo_fixture(&o);
	setenv("LANG", "en_GB.UTF-8", 1);
	unsetenv("LANGUAGE");
	unsetenv("LC_ALL");
	unsetenv("LC_MESSAGES");
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "todo");
	fake_free(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "Work list of"), "LANG=en_GB: %s", out);
	setenv("LANG", "nl_NL.UTF-8", 1);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "todo");
	fake_free(&f);
	cr_assert(strstr(out, "Werklijst van"), "LANG=nl_NL: %s", out);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "todo --lang=en");
	fake_free(&f);
	cr_assert(strstr(out, "Work list of"), "--lang=en wins: %s", out);
	cr_assert_eq(client_run(out, sizeof(out), "todo --lang fr"), 2,
	    "%s", out);
	cr_assert(strstr(out, "--lang 'fr' is not nl or en"), "%s", out);
}

Test(labels, remind_all_overdue)
{
	struct todo_fixture o;
	Kp__RemindResponse rr = KP__REMIND_RESPONSE__INIT;
	Kp__Response rem = KP__RESPONSE__INIT;
	const Kp__Response *answers[2];
	ProtobufCBinaryData ids[1];
	uint8_t r1[16];
	char out[16384];
	struct fake f;
	Kp__Request *q;
	int rc;

	s_todo_fixture(&o);
	cr_assert(kp_uuid_parse(ID_R1, r1) == 0);
	ids[0] = (ProtobufCBinaryData){ 16, r1 };
	rr.n_event_ids = 1;
	rr.event_ids = ids;
	s_ok(&rem, KP__RESPONSE__RESULT_REMIND);
	rem.remind = &rr;
	answers[0] = &o.r;
	answers[1] = &rem;
	fake_start_seq(&f, answers, 2);
	rc = client_run(out, sizeof(out), "remind --all-overdue --api %s",
	    f.endpoint);
	fake_stop(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	/* the work list as of now, overdue only; then one remind per case
	 * with an overdue answer (ZAAK-2 is not yet due) */
	cr_assert_eq(f.n, 2, "%d requests", f.n);
	q = fake_request(&f, 0);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_TODO);
	cr_assert(q->todo->has_days && q->todo->days == 0);
	kp__request__free_unpacked(q, NULL);
	q = fake_request(&f, 1);
	cr_assert_eq(q->op_case, KP__REQUEST__OP_REMIND);
	cr_assert_str_eq(q->remind->case_ref, "ZAAK-1");
	kp__request__free_unpacked(q, NULL);
	fake_free(&f);
	cr_assert(strstr(out, "zaak ZAAK-1: opschaling naar " LONG_NAME
	    " (afloopbericht Halt verwacht)") && strstr(out,
	    "verstuurd: gebeurtenis " ID_R1) && strstr(out,
	    "1 rappel verstuurd."), "%s", out);
	cr_assert_eq(client_run(out, sizeof(out), "remind ZAAK-1 "
	    "--all-overdue"), 2, "%s", out);
}

/* ---- the report ---- */

struct report_fixture {
	Kp__OutcomeCount oc[5], *ocp[5], ab[2], *abp[2];
	Kp__PartnerLeadTimes p[1], *pp[1];
	Kp__RouteReport rt[2], *rp[2];
	Kp__MonthTrend m[2], *mp[2];
	Kp__ReportResponse rr;
	Kp__Response r;
};

static void
s_count(Kp__OutcomeCount *o, const char *name, uint32_t n)
{
	Kp__OutcomeCount init = KP__OUTCOME_COUNT__INIT;

	*o = init;
	o->outcome = (char *)name;
	o->has_count = 1;
	o->count = n;
}

static void
s_report_fixture(struct report_fixture *o)
{
	Kp__PartnerLeadTimes pinit = KP__PARTNER_LEAD_TIMES__INIT;
	Kp__RouteReport rinit = KP__ROUTE_REPORT__INIT;
	Kp__MonthTrend minit = KP__MONTH_TREND__INIT;
	Kp__ReportResponse rr = KP__REPORT_RESPONSE__INIT;
	Kp__Response r = KP__RESPONSE__INIT;
	int i;

	/* given out of order: the report puts them in the fixed one */
	s_count(&o->oc[0], "no answer (overdue)", 1);
	s_count(&o->oc[1], "negatief", 1);
	s_count(&o->oc[2], "interim: scheduled", 1);
	s_count(&o->oc[3], "positief", 2);
	s_count(&o->oc[4], "awaited", 1);
	s_count(&o->ab[0], "not recorded", 1);
	s_count(&o->ab[1], "stopped", 1);
	for (i = 0; i < 5; i++)
		o->ocp[i] = &o->oc[i];
	o->abp[0] = &o->ab[0];
	o->abp[1] = &o->ab[1];
	o->p[0] = pinit;
	o->p[0].partner_oin = OIN_HALT;
	o->p[0].partner_name = LONG_NAME;
	o->p[0].has_expected = o->p[0].has_answered = 1;
	o->p[0].has_within_lead_time = o->p[0].has_overdue_now = 1;
	o->p[0].expected = 6;
	o->p[0].answered = 3;
	o->p[0].within_lead_time = 2;
	o->p[0].overdue_now = 1;
	o->p[0].has_norm_days = o->p[0].has_median_days = 1;
	o->p[0].norm_days = 90;
	o->p[0].median_days = 41.5;
	o->pp[0] = &o->p[0];
	o->rt[0] = o->rt[1] = rinit;
	o->rt[0].has_route = o->rt[0].has_cases = o->rt[0].has_referrals = 1;
	o->rt[0].route = KP__ROUTE__ROUTE_HALT;
	o->rt[0].cases = 2;
	o->rt[0].referrals = 6;
	o->rt[0].has_overdue_now = 1;
	o->rt[0].overdue_now = 1;
	o->rt[0].n_outcomes = 5;
	o->rt[0].outcomes = o->ocp;
	o->rt[0].n_partners = 1;
	o->rt[0].partners = o->pp;
	o->rt[0].n_absence_after = 2;
	o->rt[0].absence_after = o->abp;
	o->rt[1].has_route = o->rt[1].has_cases = o->rt[1].has_referrals = 1;
	o->rt[1].route = KP__ROUTE__ROUTE_DWANG_STRAFRECHTELIJK;
	o->rt[1].cases = 1;
	o->rt[1].referrals = 1;
	o->rp[0] = &o->rt[0];
	o->rp[1] = &o->rt[1];
	for (i = 0; i < 2; i++) {
		o->m[i] = minit;
		o->m[i].month = i ? "2027-02" : "2027-01";
		o->m[i].has_cases = o->m[i].has_referrals = 1;
		o->m[i].has_answered = o->m[i].has_within_lead_time = 1;
		o->m[i].has_due = 1;
		o->m[i].cases = (uint32_t)(1 + i);
		o->m[i].referrals = (uint32_t)(3 + i);
		o->m[i].answered = 2;
		o->m[i].within_lead_time = 1;
		o->m[i].due = 2;
		o->mp[i] = &o->m[i];
	}
	o->rr = rr;
	o->rr.has_from_ms = o->rr.has_at_ms = 1;
	o->rr.from_ms = T0;
	o->rr.at_ms = T0 + 59 * DAY;
	o->rr.n_routes = 2;
	o->rr.routes = o->rp;
	o->rr.n_months = 2;
	o->rr.months = o->mp;
	o->r = r;
	s_ok(&o->r, KP__RESPONSE__RESULT_REPORT);
	o->r.report = &o->rr;
}

Test(labels, report_text_in_dutch)
{
	struct report_fixture o;
	char out[32768];
	const char *pos, *neg, *awa, *od, *interim;
	struct fake f;
	int rc;

	s_report_fixture(&o);
	rc = fake_serve_run(&f, &o.r, out, sizeof(out), "report");
	fake_free(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "Terugkoppelingsrapport: verwijzingen verstuurd "
	    "van 01-01-2027 tot 01-03-2027"), "period: %s", out);
	/* plurals: 1 zaak, 2 zaken; totals across routes */
	cr_assert(strstr(out, "Totaal: 3 zaken, 7 verwijzingen, 1 antwoord nu "
	    "te laat"), "totals: %s", out);
	cr_assert(strstr(out, "Route Halt (norm 90 dagen): 2 zaken, 6 "
	    "verwijzingen, 1 antwoord nu te laat"), "%s", out);
	cr_assert(strstr(out, "Route dwang strafrechtelijk (norm -): 1 zaak, 1 "
	    "verwijzing, 0 antwoorden nu te laat"), "%s", out);
	pos = strstr(out, "positief");
	neg = strstr(out, "negatief");
	awa = strstr(out, "in afwachting");
	od = strstr(out, "geen antwoord (te laat)");
	interim = strstr(out, "Tussenfasen");
	cr_assert(pos && neg && awa && od && interim && pos < neg &&
	    neg < awa && awa < od && od < interim, "fixed order: %s", out);
	cr_assert(strstr(interim, "tussenfase: geagendeerd"), "%s", out);
	cr_assert(strstr(out, LONG_NAME) && strstr(out, "90,0") &&
	    strstr(out, "41,5") && strstr(out, "2 van 4 verschuldigd (50,0%)"),
	    "partner with its norm: %s", out);
	cr_assert(strstr(out, "Trend per maand") && strstr(out, "2027-02"),
	    "trend: %s", out);
	cr_assert(strstr(out, "niet vastgelegd") && strstr(out, "gestopt"),
	    "absence: %s", out);
}

/* Run `report ARGS` against o into file `name` of a fresh folder; its
 * text (free it) and the folder in dir. */
static char *
s_report_file(const struct report_fixture *o, const char *opts,
    const char *name, char *dir, size_t dlen)
{
	char out[4096], path[1024];
	uint8_t *buf;
	size_t len;
	struct fake f;
	int rc;

	test_tmpdir(dir, dlen);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = fake_serve_run(&f, &o->r, out, sizeof(out), "report %s %s", opts,
	    path);
	fake_free(&f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert(kp_read_file(path, 1 << 22, &buf, &len) == 0, "no %s", path);
	return (char *)buf;
}

Test(labels, report_csv_parses_back)
{
	static const char head[] = "table,route,partner_oin,partner_name,"
	    "month,metric,label,value\r\n";
	struct report_fixture o;
	char dir[512], out[8192];
	char *csv;

	s_report_fixture(&o);
	csv = s_report_file(&o, "--lang en --csv", "r.csv", dir, sizeof(dir));
	cr_assert(strncmp(csv, head, strlen(head)) == 0, "%s", csv);
	free(csv);
	/* Python's csv module reads it back: every row 8 fields, and the
	 * figures are the daemon's (the name with its comma intact) */
	cr_assert_eq(test_sh_output(out, sizeof(out), "python3 -c '\n"
	    "import csv,sys\n"
	    "rows=list(csv.DictReader(open(sys.argv[1],newline=\"\")))\n"
	    "assert all(len(r)==8 and None not in r for r in rows), rows\n"
	    "v={(r[\"table\"],r[\"route\"],r[\"partner_name\"],r[\"month\"],"
    "r[\"metric\"]):r for r in rows}\n"
	    "assert v[(\"summary\",\"total\",\"\",\"\",\"cases\")][\"value\"]"
    "==\"3\"\n"
	    "assert v[(\"summary\",\"halt\",\"\",\"\",\"referrals\")]"
    "[\"value\"]==\"6\"\n"
	    "p=v[(\"partner\",\"halt\",\"" LONG_NAME "\",\"\",\"norm_days\")]\n"
	    "assert p[\"value\"]==\"90.0\" and p[\"partner_oin\"]==\""
    OIN_HALT "\", p\n"
	    "o=v[(\"outcome\",\"halt\",\"\",\"\",\"no answer (overdue)\")]\n"
	    "assert o[\"value\"]==\"1\" and o[\"label\"]==\"no answer "
    "(overdue)\"\n"
	    "assert v[(\"interim\",\"halt\",\"\",\"\",\"interim: scheduled\")]"
    "[\"value\"]==\"1\"\n"
	    "assert v[(\"month\",\"\",\"\",\"2027-02\",\"referrals\")]"
    "[\"value\"]==\"4\"\n"
	    "print(len(rows))\n' %s/r.csv", dir), 0, "%s", out);
	test_sh("rm -rf '%s'", dir);
}

Test(labels, report_html_well_formed_with_norms_totals_trend)
{
	struct report_fixture o;
	char dir[512], out[8192];
	char *html;

	s_report_fixture(&o);
	html = s_report_file(&o, "--html", "r.html", dir, sizeof(dir));
	cr_assert(strstr(html, "lang=\"nl\"") && strstr(html,
	    "<h1>Terugkoppelingsrapport</h1>"), "Dutch");
	cr_assert(strstr(html, "<th scope=\"col\" class=\"n\">Norm (dagen)</th>") &&
	    strstr(html, ">90 dagen<") && strstr(html, ">90,0<"), "norms");
	cr_assert(strstr(html, "<tr class=\"total\"><td>Totaal</td>"),
	    "totals");
	cr_assert(strstr(html, "class=\"trend-chart\"") && strstr(html,
	    "<table class=\"trend\">") && strstr(html, "2027-02"), "trend");
	cr_assert(strstr(html, "<tr class=\"overdue\">") && strstr(html,
	    "#D55E00"), "the overdue share highlighted");
	cr_assert(strstr(html, "<table class=\"interim\">"), "interim apart");
	/* the chart names every bar (interim phases not among them) */
	cr_assert(strstr(html, ">positief: 2 (40,0%)</text>") && strstr(html,
	    ">in afwachting: 1 (20,0%)</text>") && strstr(html, "class=\"od\">"
	    "geen antwoord (te laat): 1 (20,0%)</text>") && !strstr(html,
	    ">tussenfase: geagendeerd: 1"), "chart labels");
	cr_assert(strstr(html, LONG_NAME), "a long name never cut");
	cr_assert(strstr(html, "@page{size:A4") && strstr(html,
	    "@media print"), "A4 print");
	cr_assert(!strstr(html, "<script") && !strstr(html, " src=") &&
	    !strstr(html, " href="), "self-contained");
	free(html);
	/* well-formed XML, the SVG inside it too */
	cr_assert_eq(test_sh_output(out, sizeof(out), "python3 -c '\n"
	    "import sys, xml.etree.ElementTree as ET\n"
	    "t=ET.parse(sys.argv[1]).getroot()\n"
	    "s=t.findall(\".//{http://www.w3.org/2000/svg}svg\")\n"
	    "assert len(s)==3, len(s)\n' %s/r.html", dir), 0, "%s", out);
	if (test_sh("command -v xmllint >/dev/null 2>&1") == 0)
		cr_assert_eq(test_sh("xmllint --noout --nonet '%s/r.html'",
		    dir), 0);
	test_sh("rm -rf '%s'", dir);
}
