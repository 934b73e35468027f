/*
 * simyear: a year of one municipality's school-absence chain, simulated.
 *
 *   simyear [--reports N] [--seed S] [--bin DIR] [--keep DIR]
 *
 * Stands up a chain of five real ketenpostd processes (leerplicht, Halt,
 * RvdK, OM, JBT) on loopback and plays a year from the figures of the WODC
 * evaluation (domain.md §7): N absence reports (default 573, Utrecht's
 * year), routes 44% basic / 47% voluntary care (no chain events) / 3% Halt
 * / 3% civil / 3% criminal; Halt outcomes 68% positive, 16% not taken
 * place, 8% negative, 8% never answered; RvdK, OM and the JBT answering
 * after realistic delays, some late, some never.  Time is simulated: every
 * daemon reads its clock from one file (KETENPOST_CLOCK_FILE) that simyear
 * moves forward event by event, so a year takes seconds.  It needs a
 * build configured with -DKP_SIMULATED_CLOCK=ON (release builds ignore
 * that variable) and says so otherwise.
 *
 * At the end (the clock at day 365) it checks, from the daemons' own
 * records: every follow-up referral has its outcome on the case timeline
 * or is flagged overdue; the report's counts equal what was sent; no answer
 * landed on the wrong case.  Prints a JSON summary on stdout; exit 0 only
 * if every check holds.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "api.pb-c.h"
#include "events.pb-c.h"
#include "pbjson.h"
#include "util.h"

#define DAY (86400000ull)
#define N_ORGS 5
enum { LP, HALT, RVDK, OM, JBT };

static const char *const s_oin[N_ORGS] = { "00000001001234567000",
	"00000001002345678000", "00000001003456789000", "00000001004567890000",
	"00000001005678901000" };
static const char *const s_role[N_ORGS] = { "leerplicht", "halt", "rvdk",
	"om", "jbt" };

struct sim {
	char dir[256], clock[300], bin[1024];
	char api[N_ORGS][512];
	pid_t pid[N_ORGS];
	void *ctx;
	uint64_t t0, now;
	uint64_t rng;
};

/* One planned answer to a referral (or none). */
struct job {
	uint64_t at;                 /* when the partner answers */
	int org;                     /* who answers */
	int type;                    /* answer event type */
	int outcome;                 /* enum value of the answer's first field */
	uint8_t referral[16];        /* the event it answers */
	char case_ref[32];           /* leerplicht's local case */
	bool never;                  /* never answered */
};

static void
s_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("simyear: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* xorshift64*: a seeded, reproducible year. */
static double
s_rand(struct sim *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (double)((s->rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static uint64_t
s_days(struct sim *s, int lo, int hi)
{
	return (uint64_t)(lo + (int)(s_rand(s) * (hi - lo + 1))) * DAY +
	    (uint64_t)(s_rand(s) * 8 * 3600000.0);
}

static void
s_set_clock(struct sim *s, uint64_t ms)
{
	FILE *f;
	char tmp[320];

	s->now = ms;
	snprintf(tmp, sizeof(tmp), "%s.new", s->clock);
	if ((f = fopen(tmp, "w")) == NULL)
		s_die("cannot write %s", tmp);
	fprintf(f, "%llu\n", (unsigned long long)ms);
	fclose(f);
	if (rename(tmp, s->clock) != 0)
		s_die("cannot move the clock");
}

static void
s_run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		s_die("failed: %s", cmd);
}

static void
s_make_chain(struct sim *s)
{
	int port = 10000 + (int)(getpid() % 20000), i;
	char conf[512];
	FILE *f;

	s_run("%s/ketenpost-certs init --dir %s/chain >/dev/null", s->bin,
	    s->dir);
	for (i = 0; i < N_ORGS; i++) {
		s_run("%s/ketenpost-certs org --dir %s/chain --oin %s --role %s "
		    "--name 'Sim %s' --endpoint tcp://127.0.0.1:%d >/dev/null",
		    s->bin, s->dir, s_oin[i], s_role[i], s_role[i], port + i);
		snprintf(conf, sizeof(conf), "%s/%s.conf", s->dir, s_role[i]);
		if ((f = fopen(conf, "w")) == NULL)
			s_die("cannot write %s", conf);
		fprintf(f, "[ketenpostd]\nchain_dir = %s/chain\norg = %s\n"
		    "listen = tcp://127.0.0.1:%d\n\n[delivery]\nretry_initial = "
		    "200ms\nretry_max = 2s\nhead_interval = 1h\n", s->dir,
		    s_oin[i], port + i);
		fclose(f);
		snprintf(s->api[i], sizeof(s->api[i]),
		    "ipc://%s/chain/orgs/%s/state/api.sock", s->dir, s_oin[i]);
	}
}

/* One API call; NULL if the daemon does not answer. */
static Kp__Response *
s_call(struct sim *s, int org, const Kp__Request *req)
{
	void *sock = zmq_socket(s->ctx, ZMQ_REQ);
	size_t n = kp__request__get_packed_size(req);
	uint8_t *buf = malloc(n + 1);
	Kp__Response *r = NULL;
	int zero = 0, tmo = 10000;
	zmq_msg_t m;

	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	kp__request__pack(req, buf);
	zmq_msg_init(&m);
	if (zmq_connect(sock, s->api[org]) == 0 && zmq_send(sock, buf, n, 0) >=
	    0 && zmq_msg_recv(&m, sock, 0) >= 0)
		r = kp__response__unpack(NULL, zmq_msg_size(&m),
		    zmq_msg_data(&m));
	zmq_msg_close(&m);
	zmq_close(sock);
	free(buf);
	return r;
}

static uint64_t
s_pending(struct sim *s, int org)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r;
	uint64_t n = UINT64_MAX;

	req.op_case = KP__REQUEST__OP_STATUS;
	req.status = 1;
	if ((r = s_call(s, org, &req)) != NULL && r->ok && r->status != NULL)
		n = r->status->outbox_pending;
	if (r != NULL)
		kp__response__free_unpacked(r, NULL);
	return n;
}

static void
s_start(struct sim *s)
{
	char prog[1100], conf[512], log[512];
	int i, tries;

	setenv("KETENPOST_CLOCK_FILE", s->clock, 1);
	snprintf(prog, sizeof(prog), "%s/ketenpostd", s->bin);
	for (i = 0; i < N_ORGS; i++) {
		snprintf(conf, sizeof(conf), "%s/%s.conf", s->dir, s_role[i]);
		snprintf(log, sizeof(log), "%s/%s.log", s->dir, s_role[i]);
		if ((s->pid[i] = fork()) == 0) {
			if (freopen(log, "w", stderr) == NULL)
				_exit(127);
			execl(prog, prog, "--config", conf, (char *)NULL);
			_exit(127);
		}
	}
	for (i = 0; i < N_ORGS; i++)
		for (tries = 0; s_pending(s, i) == UINT64_MAX; tries++)
			if (tries > 100)
				s_die("ketenpostd %s did not start; see %s/%s.log",
				    s_role[i], s->dir, s_role[i]);
			else
				usleep(50000);
	usleep(300000);  /* links up */
}

static void
s_stop(struct sim *s)
{
	int i;

	for (i = 0; i < N_ORGS; i++)
		if (s->pid[i] > 0)
			kill(s->pid[i], SIGTERM);
	for (i = 0; i < N_ORGS; i++)
		if (s->pid[i] > 0)
			waitpid(s->pid[i], NULL, 0);
}

/* Wait until every daemon holds a receipt for everything it sent. */
static void
s_settle(struct sim *s)
{
	int i, tries;

	for (i = 0; i < N_ORGS; i++)
		for (tries = 0; s_pending(s, i) != 0; tries++) {
			if (tries > 400)
				s_die("%s: events still pending", s_role[i]);
			usleep(10000);
		}
}

/* Send an event; OUT: id.  The answer to a referral names it. */
static void
s_send(struct sim *s, int from, int to, int type, const char *case_ref,
    const uint8_t *payload, size_t len, const uint8_t *reply_to, uint8_t id[16])
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest sr = KP__SEND_REQUEST__INIT;
	Kp__Response *r;

	sr.has_event_type = sr.has_payload = 1;
	sr.event_type = (Kp__EventType)type;
	sr.payload = (ProtobufCBinaryData){ len, (uint8_t *)payload };
	sr.to_oin = (char *)s_oin[to];
	sr.case_ref = (char *)case_ref;
	if (reply_to != NULL) {
		sr.has_in_reply_to = 1;
		sr.in_reply_to = (ProtobufCBinaryData){ 16, (uint8_t *)reply_to };
	}
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &sr;
	if ((r = s_call(s, from, &req)) == NULL || !r->ok)
		s_die("%s: send refused: %s", s_role[from], r ? r->error :
		    "no answer");
	memcpy(id, r->send->event_id.data, 16);
	kp__response__free_unpacked(r, NULL);
}

/* ---- payloads ---- */

static size_t
s_referral(struct sim *s, int route, uint8_t *buf)
{
	Kp__Referral r = KP__REFERRAL__INIT;

	r.has_route = r.has_referral_kind = r.has_absence_kind = 1;
	r.has_age_years = r.has_duty_kind = r.has_feedback_due_days = 1;
	r.has_absence_hours = r.has_culpable = 1;
	r.route = (Kp__Route)route;
	r.referral_kind = route == KP__ROUTE__ROUTE_HALT ?
	    KP__REFERRAL_KIND__REFERRAL_KIND_HALT_PV :
	    route == KP__ROUTE__ROUTE_DWANG_CIVIEL ?
	    KP__REFERRAL_KIND__REFERRAL_KIND_RVDK_CONSULT :
	    KP__REFERRAL_KIND__REFERRAL_KIND_PV;
	r.absence_kind = KP__ABSENCE_KIND__ABSENCE_KIND_WETTELIJK;
	r.age_years = 12 + (uint32_t)(s_rand(s) * 6);
	r.duty_kind = KP__DUTY_KIND__DUTY_KIND_LEERPLICHT;
	r.feedback_due_days = route == KP__ROUTE__ROUTE_HALT ? 90 :
	    route == KP__ROUTE__ROUTE_DWANG_CIVIEL ? 42 : 120;
	r.absence_hours = route == KP__ROUTE__ROUTE_HALT ?
	    9 + (uint32_t)(s_rand(s) * 51) : 16 + (uint32_t)(s_rand(s) * 120);
	r.culpable = route != KP__ROUTE__ROUTE_DWANG_CIVIEL;
	return kp__referral__pack(&r, buf);
}

static size_t
s_jbt_request(uint8_t *buf, int phase)
{
	Kp__JbtRequest j = KP__JBT_REQUEST__INIT;

	j.has_phase = j.has_request_kind = j.has_filed_by = 1;
	j.phase = (Kp__JbtPhase)phase;
	j.request_kind = KP__JBT_REQUEST_KIND__JBT_REQUEST_KIND_VTB;
	j.filed_by = KP__FILED_BY__FILED_BY_LEERPLICHT;
	if (phase == KP__JBT_PHASE__JBT_PHASE_DECIDED) {
		j.has_decision = 1;
		j.decision = KP__JBT_DECISION__JBT_DECISION_RVDK_ONDERZOEK;
	}
	return kp__jbt_request__pack(&j, buf);
}

static uint32_t
s_yyyymmdd(uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	return (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 +
	    tm.tm_mday);
}

/* The answer of job j, packed. */
static size_t
s_answer(struct sim *s, const struct job *j, uint8_t *buf)
{
	Kp__HaltOutcome h = KP__HALT_OUTCOME__INIT;
	Kp__RvdkAdvice a = KP__RVDK_ADVICE__INIT;
	Kp__OmDecision o = KP__OM_DECISION__INIT;

	switch (j->type) {
	case KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME:
		h.has_outcome = h.has_expected_next = 1;
		h.outcome = (Kp__HaltResult)j->outcome;
		h.expected_next = j->outcome == KP__HALT_RESULT__HALT_RESULT_NEGATIEF ?
		    KP__EXPECTED_NEXT__EXPECTED_NEXT_PV_DOOR_LEERPLICHT :
		    KP__EXPECTED_NEXT__EXPECTED_NEXT_GEEN;
		return kp__halt_outcome__pack(&h, buf);
	case KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE:
		a.has_advice_kind = 1;
		a.advice_kind = (Kp__AdviceKind)j->outcome;
		return kp__rvdk_advice__pack(&a, buf);
	case KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION:
		o.has_decision = o.has_decided_on = 1;
		o.decision = (Kp__OmDecisionKind)j->outcome;
		o.decided_on = s_yyyymmdd(s->now);
		return kp__om_decision__pack(&o, buf);
	default:
		return s_jbt_request(buf, KP__JBT_PHASE__JBT_PHASE_DECIDED);
	}
}

/* ---- the year ---- */

struct plan {
	uint64_t at;
	int route;
	char case_ref[32];
};

struct year {
	struct plan *plans;
	size_t n_plans;
	struct job *jobs;
	size_t n_jobs, cap_jobs;
	uint8_t (*answer_ids)[16];   /* per job, when answered */
	bool *answered;
	int routes[6];               /* reports per route (0 = basic) */
	int events;
};

static int
s_cmp_plan(const void *a, const void *b)
{
	uint64_t x = ((const struct plan *)a)->at, y = ((const struct plan *)b)->at;

	return x < y ? -1 : x > y;
}

static void
s_add_job(struct year *y, struct sim *s, int org, int type, int outcome,
    const uint8_t ref[16], const char *case_ref, int lo, int hi,
    double never)
{
	struct job *j;

	if (y->n_jobs == y->cap_jobs) {
		y->cap_jobs = y->cap_jobs ? 2 * y->cap_jobs : 64;
		y->jobs = realloc(y->jobs, y->cap_jobs * sizeof(*y->jobs));
		if (y->jobs == NULL)
			s_die("out of memory");
	}
	j = &y->jobs[y->n_jobs++];
	memset(j, 0, sizeof(*j));
	j->org = org;
	j->type = type;
	j->outcome = outcome;
	memcpy(j->referral, ref, 16);
	snprintf(j->case_ref, sizeof(j->case_ref), "%s", case_ref);
	j->at = s->now + s_days(s, lo, hi);
	j->never = s_rand(s) < never;
}

/* Leerplicht refers one follow-up case; the partners' answers are planned. */
static void
s_refer(struct sim *s, struct year *y, const struct plan *p)
{
	uint8_t buf[512], id[16];
	size_t n;
	double u = s_rand(s);

	n = s_referral(s, p->route, buf);
	if (p->route == KP__ROUTE__ROUTE_HALT) {
		s_send(s, LP, HALT, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL,
		    p->case_ref, buf, n, NULL, id);
		s_add_job(y, s, HALT, KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME,
		    u < 0.68 / 0.92 ? KP__HALT_RESULT__HALT_RESULT_POSITIEF :
		    u < 0.84 / 0.92 ? KP__HALT_RESULT__HALT_RESULT_NIET_PLAATSGEVONDEN :
		    KP__HALT_RESULT__HALT_RESULT_NEGATIEF, id, p->case_ref, 20,
		    100, 0.08);
	} else if (p->route == KP__ROUTE__ROUTE_DWANG_CIVIEL) {
		s_send(s, LP, RVDK, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL,
		    p->case_ref, buf, n, NULL, id);
		s_add_job(y, s, RVDK, KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE,
		    1 + (int)(u * 4), id, p->case_ref, 10, 60, 0.10);
		n = s_jbt_request(buf, KP__JBT_PHASE__JBT_PHASE_REQUEST);
		s_send(s, LP, JBT, KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST,
		    p->case_ref, buf, n, NULL, id);
		s_add_job(y, s, JBT, KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST,
		    KP__JBT_PHASE__JBT_PHASE_DECIDED, id, p->case_ref, 7, 35,
		    0.05);
		y->events++;
	} else {
		s_send(s, LP, OM, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL,
		    p->case_ref, buf, n, NULL, id);
		s_add_job(y, s, OM, KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION,
		    1 + (int)(u * 6), id, p->case_ref, 30, 150, 0.10);
	}
	y->events++;
}

static void
s_plan(struct sim *s, struct year *y, int reports)
{
	int i, route;
	double u;

	y->plans = calloc((size_t)reports, sizeof(*y->plans));
	for (i = 0; i < reports; i++) {
		u = s_rand(s);
		route = u < 0.44 ? 0 : u < 0.91 ? KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP :
		    u < 0.94 ? KP__ROUTE__ROUTE_HALT : u < 0.97 ?
		    KP__ROUTE__ROUTE_DWANG_CIVIEL : KP__ROUTE__ROUTE_DWANG_STRAFRECHTELIJK;
		y->routes[route]++;
		if (route < KP__ROUTE__ROUTE_HALT)
			continue;  /* basic and voluntary care: no chain events */
		y->plans[y->n_plans].at = s->t0 + s_days(s, 0, 364);
		y->plans[y->n_plans].route = route;
		snprintf(y->plans[y->n_plans].case_ref, 32, "LP-2027-%04d", i + 1);
		y->n_plans++;
	}
	qsort(y->plans, y->n_plans, sizeof(*y->plans), s_cmp_plan);
}

/* The earliest job still to be answered within the year, or NULL. */
static struct job *
s_next_job(struct year *y, uint64_t end)
{
	struct job *best = NULL;
	size_t i;

	for (i = 0; i < y->n_jobs; i++)
		if (!y->answered[i] && !y->jobs[i].never &&
		    y->jobs[i].at <= end && (best == NULL ||
		    y->jobs[i].at < best->at))
			best = &y->jobs[i];
	return best;
}

static void
s_answer_job(struct sim *s, struct year *y, struct job *j)
{
	size_t k = (size_t)(j - y->jobs);
	uint8_t buf[256];
	char ref[40];

	snprintf(ref, sizeof(ref), "%s-%zu", s_role[j->org], k);
	s_set_clock(s, j->at);
	s_send(s, j->org, LP, j->type, ref, buf, s_answer(s, j, buf),
	    j->referral, y->answer_ids[k]);
	y->answered[k] = true;
	y->events++;
	s_settle(s);
}

static void
s_play(struct sim *s, struct year *y, uint64_t end)
{
	size_t i = 0;
	struct job *j;

	y->answer_ids = calloc(y->n_plans * 2 + 1, 16);
	y->answered = calloc(y->n_plans * 2 + 1, sizeof(bool));
	for (;;) {
		j = s_next_job(y, end);
		if (i < y->n_plans && (j == NULL || y->plans[i].at <= j->at)) {
			s_set_clock(s, y->plans[i].at);
			s_refer(s, y, &y->plans[i++]);
			s_settle(s);
		} else if (j != NULL)
			s_answer_job(s, y, j);
		else
			break;
	}
}

/* ---- the checks ---- */

static const ProtobufCEnumDescriptor *
s_outcome_enum(int type)
{
	switch (type) {
	case KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME:
		return &kp__halt_result__descriptor;
	case KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE:
		return &kp__advice_kind__descriptor;
	case KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION:
		return &kp__om_decision_kind__descriptor;
	default:
		return &kp__jbt_phase__descriptor;
	}
}

static int
s_route_of_job(const struct job *j)
{
	return j->org == HALT ? KP__ROUTE__ROUTE_HALT : j->org == OM ?
	    KP__ROUTE__ROUTE_DWANG_STRAFRECHTELIJK : KP__ROUTE__ROUTE_DWANG_CIVIEL;
}

/* The outcome label the report must show for job k (as of `at`). */
static void
s_expected_label(const struct year *y, size_t k, char *out, size_t len)
{
	const struct job *j = &y->jobs[k];

	if (!y->answered[k] || pbjson_enum_name(s_outcome_enum(j->type),
	    j->outcome, out, len) == NULL)
		snprintf(out, len, "no answer (overdue)");
}

static int
s_check_report(struct sim *s, struct year *y, uint64_t at, json_t *summary)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ReportRequest q = KP__REPORT_REQUEST__INIT;
	Kp__Response *r;
	size_t i, k, m;
	int bad = 0;
	char label[96];

	q.has_at_ms = 1;
	q.at_ms = at;
	req.op_case = KP__REQUEST__OP_REPORT;
	req.report = &q;
	if ((r = s_call(s, LP, &req)) == NULL || !r->ok)
		s_die("report: %s", r ? r->error : "no answer");
	for (i = 0; i < r->report->n_routes; i++) {
		Kp__RouteReport *rr = r->report->routes[i];
		uint32_t want = 0;

		for (k = 0; k < y->n_jobs; k++)
			want += s_route_of_job(&y->jobs[k]) == (int)rr->route;
		if (rr->referrals != want) {
			fprintf(stderr, "simyear: route %d: report %u referrals, "
			    "sent %u\n", rr->route, rr->referrals, want);
			bad++;
		}
		for (m = 0; m < rr->n_outcomes; m++) {
			uint32_t n = 0;
			for (k = 0; k < y->n_jobs; k++) {
				s_expected_label(y, k, label, sizeof(label));
				n += s_route_of_job(&y->jobs[k]) == (int)rr->route &&
				    strcmp(label, rr->outcomes[m]->outcome) == 0;
			}
			if (n != rr->outcomes[m]->count) {
				fprintf(stderr, "simyear: route %d outcome %s: report "
				    "%u, simulated %u\n", rr->route,
				    rr->outcomes[m]->outcome, rr->outcomes[m]->count, n);
				bad++;
			}
		}
	}
	json_object_set_new(summary, "report_routes",
	    json_integer((json_int_t)r->report->n_routes));
	kp__response__free_unpacked(r, NULL);
	return bad;
}

/* Is id the answer of one of case `ref`'s jobs? */
static bool
s_answer_of_case(const struct year *y, const char *ref, const uint8_t *id)
{
	size_t k;

	for (k = 0; k < y->n_jobs; k++)
		if (y->answered[k] && strcmp(y->jobs[k].case_ref, ref) == 0 &&
		    memcmp(y->answer_ids[k], id, 16) == 0)
			return true;
	return false;
}

/* Every expectation answered or overdue; every answer on its own case. */
static int
s_check_case(struct sim *s, const struct year *y, const char *ref,
    uint64_t at)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__CaseRequest q = KP__CASE_REQUEST__INIT;
	Kp__Response *r;
	size_t i;
	int bad = 0;

	q.case_ref = (char *)ref;
	q.has_at_ms = 1;
	q.at_ms = at;
	req.op_case = KP__REQUEST__OP_CASE_TIMELINE;
	req.case_timeline = &q;
	if ((r = s_call(s, LP, &req)) == NULL || !r->ok)
		s_die("case %s: %s", ref, r ? r->error : "no answer");
	for (i = 0; i < r->case_timeline->n_expectations; i++)
		if (r->case_timeline->expectations[i]->state ==
		    KP__EXPECTATION_STATE__EXPECTATION_STATE_OPEN) {
			fprintf(stderr, "simyear: case %s: an expectation is "
			    "neither answered nor overdue\n", ref);
			bad++;
		}
	for (i = 0; i < r->case_timeline->n_timeline; i++) {
		Kp__TimelineItem *t = r->case_timeline->timeline[i];
		if (strcmp(t->direction, "received") != 0)
			continue;
		if (!s_answer_of_case(y, ref, t->event_id.data) ||
		    t->summary == NULL) {
			fprintf(stderr, "simyear: case %s: an answer that is not "
			    "this case's, or without its outcome\n", ref);
			bad++;
		}
	}
	kp__response__free_unpacked(r, NULL);
	return bad;
}

static void
s_parse(int argc, char **argv, int *reports, uint64_t *seed, char *bin,
    size_t blen, const char **keep)
{
	static const struct option o[] = { { "reports", 1, NULL, 'n' },
	    { "seed", 1, NULL, 's' }, { "bin", 1, NULL, 'b' },
	    { "keep", 1, NULL, 'k' }, { NULL, 0, NULL, 0 } };
	int c;

	*reports = 573;
	*seed = 20270101;
	*keep = NULL;
	snprintf(bin, blen, "build/bin");
	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (c == 'n')
			*reports = atoi(optarg);
		else if (c == 's')
			*seed = strtoull(optarg, NULL, 10);
		else if (c == 'b')
			snprintf(bin, blen, "%s", optarg);
		else if (c == 'k')
			*keep = optarg;
		else {
			fprintf(stderr, "usage: simyear [--reports N] [--seed S] "
			    "[--bin DIR] [--keep DIR]\n");
			exit(2);
		}
	}
	if (*reports < 1 || *reports > 100000)
		s_die("--reports must be 1..100000");
}

int
main(int argc, char **argv)
{
	struct sim s;
	struct year y;
	const char *keep;
	char tmpl[] = "/tmp/simyear.XXXXXX";
	uint64_t end, at, seed;
	json_t *sum = json_object(), *routes = json_object();
	int reports, bad = 0;
	size_t i, never = 0;

	memset(&s, 0, sizeof(s));
	memset(&y, 0, sizeof(y));
	s_parse(argc, argv, &reports, &seed, s.bin, sizeof(s.bin), &keep);
	if (!kp_clock_simulated())
		s_die("this build has no simulated clock; configure it with "
		    "-DKP_SIMULATED_CLOCK=ON (as scripts/test.sh does)");
	if (sodium_init() < 0 || mkdtemp(tmpl) == NULL)
		return 1;
	snprintf(s.dir, sizeof(s.dir), "%s", keep ? keep : tmpl);
	if (keep != NULL)
		s_run("mkdir -p %s", keep);
	snprintf(s.clock, sizeof(s.clock), "%s/clock", s.dir);
	s.rng = seed ? seed : 1;
	if (kp_time_parse("2027-01-04T08:00:00Z", &s.t0) != 0)
		return 1;
	end = s.t0 + 365 * DAY;
	at = end + 150 * DAY;   /* every lead time has run out by then */
	s_set_clock(&s, s.t0);
	s_make_chain(&s);
	s.ctx = zmq_ctx_new();
	s_start(&s);
	s_plan(&s, &y, reports);
	s_play(&s, &y, end);
	s_set_clock(&s, end);
	usleep(1500000);        /* the daemons' overdue checks run */
	bad += s_check_report(&s, &y, at, sum);
	for (i = 0; i < y.n_plans; i++)
		bad += s_check_case(&s, &y, y.plans[i].case_ref, at);
	for (i = 0; i < y.n_jobs; i++)
		never += !y.answered[i];
	s_stop(&s);
	zmq_ctx_term(s.ctx);
	json_object_set_new(routes, "basic", json_integer(y.routes[0]));
	json_object_set_new(routes, "vrijwillige_jeugdhulp", json_integer(y.routes[1]));
	json_object_set_new(routes, "halt", json_integer(y.routes[2]));
	json_object_set_new(routes, "dwang_civiel", json_integer(y.routes[3]));
	json_object_set_new(routes, "dwang_strafrechtelijk", json_integer(y.routes[4]));
	json_object_set_new(sum, "reports", json_integer(reports));
	json_object_set_new(sum, "routes", routes);
	json_object_set_new(sum, "follow_up_cases", json_integer((json_int_t)y.n_plans));
	json_object_set_new(sum, "expected_answers", json_integer((json_int_t)y.n_jobs));
	json_object_set_new(sum, "unanswered", json_integer((json_int_t)never));
	json_object_set_new(sum, "events", json_integer(y.events));
	json_object_set_new(sum, "problems", json_integer(bad));
	json_object_set_new(sum, "ok", json_boolean(bad == 0));
	json_object_set_new(sum, "chain", json_string(s.dir));
	json_dumpf(sum, stdout, JSON_INDENT(2));
	putchar('\n');
	if (keep == NULL)
		s_run("rm -rf %s", s.dir);
	json_decref(sum);
	free(y.plans);
	free(y.jobs);
	free(y.answer_ids);
	free(y.answered);
	return bad == 0 ? 0 : 1;
}
