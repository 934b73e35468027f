/*
 * simyear: a year of one municipality's school-absence chain, simulated.
 *
 *   simyear [--reports N] [--seed S] [--bin DIR] [--keep DIR]
 *
 * Stands up a chain of six real ketenpostd processes (leerplicht, Halt,
 * RvdK, OM, JBT and a wijkteam as care partner, role zorg) on loopback and
 * plays a year from the figures of the WODC evaluation (domain.md §7): N
 * absence reports (default 573, Utrecht's year), routes 44% basic / 47%
 * voluntary care (a referral to the wijkteam, answered by care notices:
 * started, ended, no contact, or nothing) / 3% Halt / 3% civil / 3%
 * criminal; Halt outcomes 68% positive, 16% not taken
 * place, 8% negative, 8% never answered; RvdK, OM and the JBT answering
 * after realistic delays, some late, some never, the JBT and RvdK often in
 * two phases (scheduled / investigation started, then the decision or
 * result: mas.ini interim.*).  Time is simulated: every
 * daemon reads its clock from one file (KETENPOST_CLOCK_FILE) that simyear
 * moves forward event by event, so a year takes seconds.  It needs a
 * build configured with -DKP_SIMULATED_CLOCK=ON (release builds ignore
 * that variable) and says so otherwise.
 *
 * At the end (the clock at day 365) it checks, from the daemons' own
 * records: every follow-up referral has its outcome on the case timeline
 * or is flagged overdue; the report's counts equal what was sent; no answer
 * landed on the wrong case; every answer shows its phase (interim or
 * final) and a route; the officer's records of the absence after the route
 * are counted per route; and as of mid-year the report and the case list
 * count only what existed then.  Prints a JSON summary on stdout; exit 0
 * only if every check holds.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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
#define N_ORGS 6
enum { LP, HALT, RVDK, OM, JBT, ZORG };

static const char *const s_oin[N_ORGS] = { "00000001001234567000",
	"00000001002345678000", "00000001003456789000", "00000001004567890000",
	"00000001005678901000", "00000001007890123000" };
static const char *const s_role[N_ORGS] = { "leerplicht", "halt", "rvdk",
	"om", "jbt", "zorg" };

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
	uint64_t sent;               /* when the referral was sent */
	uint64_t phase_at;           /* an interim answer first (0: none) */
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
			/* a killed simyear takes its daemons with it */
			prctl(PR_SET_PDEATHSIG, SIGTERM);
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
	    route == KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP ?
	    KP__REFERRAL_KIND__REFERRAL_KIND_WIJKTEAM_REFERRAL :
	    KP__REFERRAL_KIND__REFERRAL_KIND_PV;
	r.absence_kind = KP__ABSENCE_KIND__ABSENCE_KIND_WETTELIJK;
	r.age_years = 12 + (uint32_t)(s_rand(s) * 6);
	r.duty_kind = KP__DUTY_KIND__DUTY_KIND_LEERPLICHT;
	r.feedback_due_days = route == KP__ROUTE__ROUTE_HALT ? 90 :
	    route == KP__ROUTE__ROUTE_DWANG_CIVIEL ? 42 :
	    route == KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP ? 42 : 120;
	r.absence_hours = route == KP__ROUTE__ROUTE_HALT ?
	    9 + (uint32_t)(s_rand(s) * 51) : 16 + (uint32_t)(s_rand(s) * 120);
	r.culpable = route != KP__ROUTE__ROUTE_DWANG_CIVIEL;
	return kp__referral__pack(&r, buf);
}

static size_t
s_jbt_request(uint8_t *buf, int phase, int decision)
{
	Kp__JbtRequest j = KP__JBT_REQUEST__INIT;

	j.has_phase = j.has_request_kind = j.has_filed_by = 1;
	j.phase = (Kp__JbtPhase)phase;
	j.request_kind = KP__JBT_REQUEST_KIND__JBT_REQUEST_KIND_VTB;
	j.filed_by = KP__FILED_BY__FILED_BY_LEERPLICHT;
	if (phase == KP__JBT_PHASE__JBT_PHASE_DECIDED) {
		j.has_decision = 1;
		j.decision = (Kp__JbtDecision)decision;
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

/* The interim answer of job j (a phase), packed. */
static size_t
s_phase(const struct job *j, uint8_t *buf)
{
	Kp__RvdkAdvice a = KP__RVDK_ADVICE__INIT;

	Kp__CareNotice c = KP__CARE_NOTICE__INIT;

	if (j->type == KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST)
		return s_jbt_request(buf, KP__JBT_PHASE__JBT_PHASE_SCHEDULED, 0);
	if (j->type == KP__EVENT_TYPE__EVENT_TYPE_CARE_NOTICE) {
		c.has_phase = 1;
		c.phase = KP__CARE_PHASE__CARE_PHASE_STARTED;
		return kp__care_notice__pack(&c, buf);
	}
	a.has_advice_kind = a.has_investigation = 1;
	a.advice_kind = KP__ADVICE_KIND__ADVICE_KIND_ONDERZOEK_STATUS;
	a.investigation = KP__INVESTIGATION__INVESTIGATION_GESTART;
	return kp__rvdk_advice__pack(&a, buf);
}

/* The answer of job j, packed. */
static size_t
s_answer(struct sim *s, const struct job *j, uint8_t *buf)
{
	Kp__HaltOutcome h = KP__HALT_OUTCOME__INIT;
	Kp__RvdkAdvice a = KP__RVDK_ADVICE__INIT;
	Kp__OmDecision o = KP__OM_DECISION__INIT;
	Kp__CareNotice c = KP__CARE_NOTICE__INIT;

	switch (j->type) {
	case KP__EVENT_TYPE__EVENT_TYPE_CARE_NOTICE:
		c.has_phase = 1;
		c.phase = (Kp__CarePhase)j->outcome;
		return kp__care_notice__pack(&c, buf);
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
		if (j->phase_at != 0) {    /* the investigation's result */
			a.has_investigation = 1;
			a.investigation = KP__INVESTIGATION__INVESTIGATION_AFGEROND;
		}
		return kp__rvdk_advice__pack(&a, buf);
	case KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION:
		o.has_decision = o.has_decided_on = 1;
		o.decision = (Kp__OmDecisionKind)j->outcome;
		o.decided_on = s_yyyymmdd(s->now);
		return kp__om_decision__pack(&o, buf);
	default:
		return s_jbt_request(buf, KP__JBT_PHASE__JBT_PHASE_DECIDED,
		    j->outcome);
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
	uint8_t (*phase_ids)[16];    /* per job, its interim answer */
	bool *phased;
	int routes[6];               /* reports per route (0 = basic) */
	uint32_t absence[6][4];      /* per route: not recorded, stopped,
	                              * reduced, continued (kp.AbsenceAfter) */
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
	j->sent = s->now;
	j->at = s->now + s_days(s, lo, hi);
	j->never = s_rand(s) < never;
}

/*
 * Answers in phases (mas.ini interim.*): the JBT first says "scheduled"
 * (in 80% of requests, after 5-20 days), then decides within 7-50 days of
 * that (lead 42 d: some late); RvdK says "investigation gestart" first in
 * 30% of referrals (after 10-30 days), its result 30-100 days later (lead
 * 90 d: some late).
 */
static void
s_add_phase(struct year *y, struct sim *s)
{
	struct job *j = &y->jobs[y->n_jobs - 1];

	if (j->type == KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST &&
	    s_rand(s) < 0.8) {
		j->phase_at = s->now + s_days(s, 5, 20);
		j->at = j->phase_at + s_days(s, 7, 50);
	} else if (j->type == KP__EVENT_TYPE__EVENT_TYPE_RVDK_ADVICE &&
	    s_rand(s) < 0.3) {
		j->phase_at = s->now + s_days(s, 10, 30);
		j->at = j->phase_at + s_days(s, 30, 100);
		j->outcome = KP__ADVICE_KIND__ADVICE_KIND_ONDERZOEK_STATUS;
	}
}

/*
 * The voluntary-care route (47% of the cases, domain.md §7): the referral
 * to the wijkteam expects a care notice within the 6-week check.  The
 * report gives no shares for what the wijkteam reports (it says they often
 * report nothing, §4.5.3, and that waiting lists break the 6-week term);
 * these are this simulation's assumptions: care starts in 60% (after 7-60
 * days: some after the check fell due), then ends 60-200 days later (the
 * end is due 180 days after the start: some late); no contact in 15%
 * (after 10-40 days); not a word in 25%.
 */
static void
s_care_job(struct sim *s, struct year *y, const uint8_t id[16],
    const char *case_ref, double u)
{
	struct job *j;

	if (u < 0.60) {
		s_add_job(y, s, ZORG, KP__EVENT_TYPE__EVENT_TYPE_CARE_NOTICE,
		    KP__CARE_PHASE__CARE_PHASE_ENDED, id, case_ref, 60, 200, 0);
		j = &y->jobs[y->n_jobs - 1];
		j->phase_at = s->now + s_days(s, 7, 60);
		j->at = j->phase_at + s_days(s, 60, 200);
	} else
		s_add_job(y, s, ZORG, KP__EVENT_TYPE__EVENT_TYPE_CARE_NOTICE,
		    KP__CARE_PHASE__CARE_PHASE_NO_CONTACT, id, case_ref, 10, 40,
		    (0.25 / 0.40));
}

/* Leerplicht refers one follow-up case; the partners' answers are planned. */
static void
s_refer(struct sim *s, struct year *y, const struct plan *p)
{
	uint8_t buf[512], id[16];
	size_t n;
	double u = s_rand(s);

	n = s_referral(s, p->route, buf);
	if (p->route == KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP) {
		s_send(s, LP, ZORG, KP__EVENT_TYPE__EVENT_TYPE_REFERRAL,
		    p->case_ref, buf, n, NULL, id);
		s_care_job(s, y, id, p->case_ref, u);
	} else if (p->route == KP__ROUTE__ROUTE_HALT) {
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
		s_add_phase(y, s);
		n = s_jbt_request(buf, KP__JBT_PHASE__JBT_PHASE_REQUEST, 0);
		s_send(s, LP, JBT, KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST,
		    p->case_ref, buf, n, NULL, id);
		s_add_job(y, s, JBT, KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST,
		    KP__JBT_DECISION__JBT_DECISION_RVDK_ONDERZOEK, id,
		    p->case_ref, 7, 35, 0.05);
		s_add_phase(y, s);
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
		if (route == 0)
			continue;  /* basic route: no chain events */
		y->plans[y->n_plans].at = s->t0 + s_days(s, 0, 364);
		y->plans[y->n_plans].route = route;
		snprintf(y->plans[y->n_plans].case_ref, 32, "LP-2027-%04d", i + 1);
		y->n_plans++;
	}
	qsort(y->plans, y->n_plans, sizeof(*y->plans), s_cmp_plan);
}

/* When job i acts next: its phase, else its answer; UINT64_MAX: never
 * (within the year). */
static uint64_t
s_job_next_at(const struct year *y, size_t i, uint64_t end)
{
	const struct job *j = &y->jobs[i];
	uint64_t t = UINT64_MAX;

	if (j->phase_at != 0 && !y->phased[i])
		t = j->phase_at;
	else if (!y->answered[i] && !j->never)
		t = j->at;
	return t <= end ? t : UINT64_MAX;
}

/* The earliest job still to act within the year, or NULL. */
static struct job *
s_next_job(struct year *y, uint64_t end)
{
	uint64_t t, best_at = UINT64_MAX;
	struct job *best = NULL;
	size_t i;

	for (i = 0; i < y->n_jobs; i++)
		if ((t = s_job_next_at(y, i, end)) < best_at) {
			best_at = t;
			best = &y->jobs[i];
		}
	return best;
}

static void
s_answer_job(struct sim *s, struct year *y, struct job *j)
{
	size_t k = (size_t)(j - y->jobs);
	uint8_t buf[256];
	char ref[40];

	snprintf(ref, sizeof(ref), "%s-%zu", s_role[j->org], k);
	if (j->phase_at != 0 && !y->phased[k]) {
		s_set_clock(s, j->phase_at);
		s_send(s, j->org, LP, j->type, ref, buf, s_phase(j, buf),
		    j->referral, y->phase_ids[k]);
		y->phased[k] = true;
		y->events++;
		s_settle(s);
		return;
	}
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
	y->phase_ids = calloc(y->n_plans * 2 + 1, 16);
	y->phased = calloc(y->n_plans * 2 + 1, sizeof(bool));
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

/*
 * At the year's end the officer records, per case, whether the absence
 * stopped after the route (ketenpost outcome).  Shares from the report
 * where it has them: after Halt, absence stopped in 53% (§4.2, of positive
 * ends; here of all); civil: continued in all 17 (§4.3); criminal:
 * continued in 17 of 18 (§4.4).  Voluntary care: no figure in the report;
 * assumed 45% stopped, 30% reduced, 25% continued.  One case in five is
 * not recorded at all.
 */
static int
s_absence_value(struct sim *s, int route)
{
	double u = s_rand(s);

	switch (route) {
	case KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP:
		return u < 0.45 ? 1 : u < 0.75 ? 2 : 3;
	case KP__ROUTE__ROUTE_HALT:
		return u < 0.53 ? 1 : 3;
	case KP__ROUTE__ROUTE_DWANG_CIVIEL:
		return 3;
	default:
		return u < 1.0 / 18 ? 1 : 3;
	}
}

static void
s_record_outcomes(struct sim *s, struct year *y)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__OutcomeRequest q = KP__OUTCOME_REQUEST__INIT;
	Kp__Response *r;
	size_t i;
	int v;

	for (i = 0; i < y->n_plans; i++) {
		if (s_rand(s) < 0.2) {
			y->absence[y->plans[i].route][0]++;
			continue;
		}
		v = s_absence_value(s, y->plans[i].route);
		q.case_ref = y->plans[i].case_ref;
		q.has_absence = 1;
		q.absence = (Kp__AbsenceAfter)v;
		req.op_case = KP__REQUEST__OP_OUTCOME;
		req.outcome = &q;
		if ((r = s_call(s, LP, &req)) == NULL || !r->ok)
			s_die("outcome %s: %s", q.case_ref, r ? r->error :
			    "no answer");
		kp__response__free_unpacked(r, NULL);
		y->absence[y->plans[i].route][v]++;
	}
}

/* The report's absence-after counts of one route against the records. */
static int
s_check_absence(const struct year *y, const Kp__RouteReport *rr)
{
	static const char *const names[] = { "not recorded", "stopped",
	    "reduced", "continued" };
	size_t m, k;
	int bad = 0;

	for (k = 0; k < 4; k++) {
		for (m = 0; m < rr->n_absence_after &&
		    strcmp(rr->absence_after[m]->outcome, names[k]); m++)
			;
		if (m == rr->n_absence_after || rr->absence_after[m]->count !=
		    y->absence[rr->route][k]) {
			fprintf(stderr, "simyear: route %d absence %s: report "
			    "%u, recorded %u\n", rr->route, names[k], m <
			    rr->n_absence_after ? rr->absence_after[m]->count :
			    0, y->absence[rr->route][k]);
			bad++;
		}
	}
	return bad;
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
	case KP__EVENT_TYPE__EVENT_TYPE_CARE_NOTICE:
		return &kp__care_phase__descriptor;
	default:            /* mas.ini: outcome = decision */
		return &kp__jbt_decision__descriptor;
	}
}

static int
s_route_of_job(const struct job *j)
{
	return j->org == HALT ? KP__ROUTE__ROUTE_HALT : j->org == OM ?
	    KP__ROUTE__ROUTE_DWANG_STRAFRECHTELIJK : j->org == ZORG ?
	    KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP : KP__ROUTE__ROUTE_DWANG_CIVIEL;
}

/* The outcome label the report must show for job k (as of `at`). */
static void
s_expected_label(const struct year *y, size_t k, char *out, size_t len)
{
	const struct job *j = &y->jobs[k];

	if (!y->answered[k] || pbjson_enum_name(s_outcome_enum(j->type),
	    j->outcome, out, len) == NULL)
		snprintf(out, len, y->phased[k] ? "no final answer (overdue)" :
		    "no answer (overdue)");
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
		bad += s_check_absence(y, rr);
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

/* The phase id has as an answer of one of case `ref`'s jobs: "final",
 * "interim", or NULL if it is none of them. */
static const char *
s_answer_of_case(const struct year *y, const char *ref, const uint8_t *id)
{
	size_t k;

	for (k = 0; k < y->n_jobs; k++) {
		if (strcmp(y->jobs[k].case_ref, ref) != 0)
			continue;
		if (y->answered[k] && memcmp(y->answer_ids[k], id, 16) == 0)
			return "final";
		if (y->phased[k] && memcmp(y->phase_ids[k], id, 16) == 0)
			return "interim";
	}
	return NULL;
}

/* Every expectation answered or overdue; every answer on its own case. */
static int
s_check_case(struct sim *s, const struct year *y, const char *ref,
    uint64_t at)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__CaseRequest q = KP__CASE_REQUEST__INIT;
	Kp__Response *r;
	const char *phase;
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
		phase = s_answer_of_case(y, ref, t->event_id.data);
		if (phase == NULL || t->summary == NULL) {
			fprintf(stderr, "simyear: case %s: an answer that is not "
			    "this case's, or without its outcome\n", ref);
			bad++;
		} else if (t->phase == NULL || strcmp(t->phase, phase) != 0 ||
		    t->route == 0) {
			fprintf(stderr, "simyear: case %s: a %s answer shown as "
			    "%s, route %d\n", ref, phase, t->phase ? t->phase :
			    "no phase", t->route);
			bad++;
		}
	}
	kp__response__free_unpacked(r, NULL);
	return bad;
}

/*
 * As of mid-year only what existed then counts: the report's referrals
 * per route are the ones sent by then, the cases listed are the ones
 * with a referral by then, and answers that came later are not there.
 */
static int
s_check_as_of(struct sim *s, const struct year *y, uint64_t mid)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ReportRequest q = KP__REPORT_REQUEST__INIT;
	Kp__CasesRequest cq = KP__CASES_REQUEST__INIT;
	Kp__Response *r;
	uint32_t want, answered, got, cases = 0;
	size_t i, k;
	int bad = 0;

	q.has_at_ms = 1;
	q.at_ms = mid;
	req.op_case = KP__REQUEST__OP_REPORT;
	req.report = &q;
	if ((r = s_call(s, LP, &req)) == NULL || !r->ok)
		s_die("report as of mid-year: %s", r ? r->error : "no answer");
	for (i = 0; i < r->report->n_routes; i++) {
		Kp__RouteReport *rr = r->report->routes[i];

		want = answered = 0;
		for (k = 0; k < y->n_jobs; k++) {
			if (s_route_of_job(&y->jobs[k]) != (int)rr->route ||
			    y->jobs[k].sent > mid)
				continue;
			want++;
			answered += y->answered[k] && y->jobs[k].at <= mid;
		}
		for (k = 0, got = 0; k < rr->n_partners; k++)
			got += rr->partners[k]->answered;
		/* recorded at the year's end: none yet at mid-year */
		for (k = 0; k < rr->n_absence_after; k++)
			if (strcmp(rr->absence_after[k]->outcome,
			    "not recorded") == 0 && rr->absence_after[k]->count !=
			    rr->cases) {
				fprintf(stderr, "simyear: as of mid-year route %d: "
				    "an absence outcome recorded later counts\n",
				    rr->route);
				bad++;
			}
		if (rr->referrals != want || got != answered) {
			fprintf(stderr, "simyear: as of mid-year route %d: %u "
			    "referrals (sent %u), %u answered (simulated %u)\n",
			    rr->route, rr->referrals, want, got, answered);
			bad++;
		}
	}
	kp__response__free_unpacked(r, NULL);
	for (i = 0; i < y->n_plans; i++)
		cases += y->plans[i].at <= mid;
	cq.has_at_ms = 1;
	cq.at_ms = mid;
	req.op_case = KP__REQUEST__OP_CASES;
	req.cases = &cq;
	if ((r = s_call(s, LP, &req)) == NULL || !r->ok)
		s_die("cases as of mid-year: %s", r ? r->error : "no answer");
	if (r->cases->n_cases != cases) {
		fprintf(stderr, "simyear: as of mid-year %zu cases listed, %u "
		    "referred by then\n", r->cases->n_cases, cases);
		bad++;
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
	    { "keep", 1, NULL, 'k' }, { "version", 0, NULL, 'V' },
	    { NULL, 0, NULL, 0 } };
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
		else if (c == 'V') {
			printf("simyear %s\n", KP_VERSION);
			exit(0);
		}
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
	size_t i, never = 0, phases = 0;

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
	at = end + 200 * DAY;   /* every lead time has run out by then (the
	                         * longest: a care end, 180 days after a start
	                         * within the year) */
	s_set_clock(&s, s.t0);
	s_make_chain(&s);
	s.ctx = zmq_ctx_new();
	s_start(&s);
	s_plan(&s, &y, reports);
	s_play(&s, &y, end);
	s_set_clock(&s, end);
	s_record_outcomes(&s, &y);
	usleep(1500000);        /* the daemons' overdue checks run */
	bad += s_check_report(&s, &y, at, sum);
	bad += s_check_as_of(&s, &y, s.t0 + 182 * DAY);
	for (i = 0; i < y.n_plans; i++)
		bad += s_check_case(&s, &y, y.plans[i].case_ref, at);
	for (i = 0; i < y.n_jobs; i++) {
		never += !y.answered[i];
		phases += y.phased[i];
	}
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
	json_object_set_new(sum, "interim_answers", json_integer((json_int_t)phases));
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
	free(y.phase_ids);
	free(y.phased);
	return bad == 0 ? 0 : 1;
}
