/*
 * kpbench: what ketenpost sustains, and what the cryptography alone costs.
 *
 *   kpbench [--events N] [--window W] [--payload BYTES] [--bin DIR]
 *
 * 1. The crypto floor: seal + open (+ sign and verify the receipt) of one
 *    event, in a loop on one core, with real keys made by ketenpost-certs.
 * 2. The real thing: two ketenpostd processes on loopback with durable
 *    storage (SQLite WAL, synchronous=FULL) on both sides and signed
 *    receipts.  N events are pipelined into the sender's local API (W in
 *    flight); the clock stops when the sender holds a verified receipt for
 *    the last one.  Latency percentiles come from the daemons' own records:
 *    API acceptance -> stored at the receiver, and -> receipt at the sender.
 * Prints events/s for both and their ratio.  Payloads are real `referral`
 * events padded to BYTES with the repeated `parallel_routes` field (the
 * schemas have no free text, so that is the only way to make one bigger;
 * the bench chain's policy allows the padding, the MAS policy would not).
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

#include <sodium.h>
#include <zmq.h>

#include "api.pb-c.h"
#include "chain.h"
#include "envelope.h"
#include "events.pb-c.h"

#define LP "00000001001234567000"
#define HALT "00000001002345678000"

struct opts {
	int events, window, payload;
	const char *bin;
};

/* The two daemons and the work folder: whatever way kpbench ends (an
 * exit(1) on the way, ^C, SIGTERM), s_cleanup stops them and removes it. */
static volatile pid_t s_pids[2];
static char s_dir[64];

static void
s_cleanup(void)
{
	char cmd[128];
	int i;

	for (i = 0; i < 2; i++)
		if (s_pids[i] > 0) {
			kill(s_pids[i], SIGTERM);
			waitpid(s_pids[i], NULL, 0);
			s_pids[i] = 0;
		}
	if (s_dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "kpbench: could not remove %s\n", s_dir);
		s_dir[0] = '\0';
	}
}

/* A signal: kill the daemons (async-signal-safe: no rm here, the work
 * folder is named for the user to remove), then die of it. */
static void
s_on_signal(int sig)
{
	static const char msg[] = "kpbench: interrupted; daemons stopped, "
	    "work folder left: ";
	int i;

	for (i = 0; i < 2; i++)
		if (s_pids[i] > 0)
			kill(s_pids[i], SIGKILL);
	if (write(2, msg, sizeof(msg) - 1) < 0 ||
	    write(2, s_dir, strlen(s_dir)) < 0 || write(2, "\n", 1) < 0)
		_exit(128 + sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static double
s_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t
s_payload(int bytes, uint8_t *out, size_t cap)
{
	Kp__Referral r = KP__REFERRAL__INIT;
	Kp__Route *routes;
	size_t n, len;

	r.has_route = r.has_absence_hours = r.has_age_years = 1;
	r.has_referral_kind = r.has_absence_kind = r.has_duty_kind = 1;
	r.has_feedback_due_days = 1;
	r.route = KP__ROUTE__ROUTE_HALT;
	r.referral_kind = KP__REFERRAL_KIND__REFERRAL_KIND_HALT_PV;
	r.absence_kind = KP__ABSENCE_KIND__ABSENCE_KIND_WETTELIJK;
	r.duty_kind = KP__DUTY_KIND__DUTY_KIND_LEERPLICHT;
	r.feedback_due_days = 90;
	r.absence_hours = 32;
	r.age_years = 15;
	n = bytes > 20 ? (size_t)(bytes - 20) / 2 : 0;
	routes = calloc(n + 1, sizeof(*routes));
	for (size_t i = 0; i < n; i++)
		routes[i] = KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP;
	r.n_parallel_routes = n;
	r.parallel_routes = routes;
	len = kp__referral__get_packed_size(&r);
	if (len > cap)
		exit(2);
	len = kp__referral__pack(&r, out);
	free(routes);
	return len;
}

static void
s_run(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0) {
		fprintf(stderr, "kpbench: failed: %s\n", cmd);
		exit(1);
	}
}

struct floor {
	double seal_us, open_us, rsign_us, rverify_us;
};

static void
s_open_pair(const char *chain, chain_t **a, chain_t **b)
{
	kp_err_t e;

	if (chain_open_oin(chain, LP, NULL, NULL, a, &e) != 0 ||
	    chain_open_oin(chain, HALT, NULL, NULL, b, &e) != 0) {
		fprintf(stderr, "kpbench: %s\n", e.msg);
		exit(1);
	}
}

/*
 * The crypto floor, stage by stage on one core: n seals, then opening
 * those n envelopes, then n receipt signatures and their verification.
 */
static struct floor
s_crypto_floor(const char *chain, const uint8_t *payload, size_t plen, int n)
{
	chain_t *a = NULL, *b = NULL;
	envelope_meta_t m, got;
	uint8_t **env = calloc((size_t)n, sizeof(*env)), **rb = calloc((size_t)n,
	    sizeof(*rb)), *opened, digest[32];
	size_t *elen = calloc((size_t)n, sizeof(*elen)), *rlen = calloc((size_t)n,
	    sizeof(*rlen)), olen;
	struct floor f;
	receipt_t r, rv;
	bool hd;
	kp_err_t e;
	double t;
	int i;

	s_open_pair(chain, &a, &b);
	memset(&m, 0, sizeof(m));
	m.event_type = 1;
	strcpy(m.purpose, "bench");
	strcpy(m.legal_basis, "bench");
	m.created_at_ms = kp_now_ms();
	m.expires_at_ms = m.created_at_ms + 60000;
	t = s_now();
	for (i = 0; i < n; i++) {
		kp_uuid_new(m.event_id);
		if (envelope_seal(a->dir, directory_find(a->dir, HALT), &m, payload,
		    plen, &env[i], &elen[i], digest, &e) != 0)
			exit(1);
	}
	f.seal_us = (s_now() - t) * 1e6 / n;
	t = s_now();
	for (i = 0; i < n; i++) {
		if (envelope_open(b->dir, env[i], elen[i], &got, &opened, &olen,
		    digest, &hd, &e) != 0)
			exit(1);
		free(opened);
	}
	f.open_us = (s_now() - t) * 1e6 / n;
	memset(&r, 0, sizeof(r));
	r.has_event_id = true;
	strcpy(r.subject_oin, LP);
	r.status = 1;
	t = s_now();
	for (i = 0; i < n; i++) {
		r.received_at_ms = kp_now_ms();
		if (receipt_sign(b->dir, &r, &rb[i], &rlen[i], &e) != 0)
			exit(1);
	}
	f.rsign_us = (s_now() - t) * 1e6 / n;
	t = s_now();
	for (i = 0; i < n; i++)
		if (receipt_verify(a->dir, rb[i], rlen[i], &rv, &e) != 0)
			exit(1);
	f.rverify_us = (s_now() - t) * 1e6 / n;
	for (i = 0; i < n; i++) {
		free(env[i]);
		free(rb[i]);
	}
	free(env);
	free(rb);
	free(elen);
	free(rlen);
	chain_close(&a);
	chain_close(&b);
	return f;
}

static pid_t
s_daemon(const char *bin, const char *conf, const char *log)
{
	char prog[4096];
	pid_t pid = fork();

	if (pid == 0) {
		if (freopen(log, "w", stderr) == NULL)
			_exit(127);
		snprintf(prog, sizeof(prog), "%s/ketenpostd", bin);
		execl(prog, prog, "--config", conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void *
s_api(void *ctx, const char *endpoint, int type)
{
	void *s = zmq_socket(ctx, type);
	int zero = 0, tmo = 10000;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_connect(s, endpoint);
	return s;
}

/* One request on a REQ socket; NULL on timeout. */
static Kp__Response *
s_call(void *ctx, const char *endpoint, Kp__Request *req)
{
	void *s = s_api(ctx, endpoint, ZMQ_REQ);
	uint8_t buf[256];
	size_t n = kp__request__pack(req, buf);
	Kp__Response *resp = NULL;
	zmq_msg_t m;

	zmq_msg_init(&m);
	if (zmq_send(s, buf, n, 0) >= 0 && zmq_msg_recv(&m, s, 0) >= 0)
		resp = kp__response__unpack(NULL, zmq_msg_size(&m),
		    zmq_msg_data(&m));
	zmq_msg_close(&m);
	zmq_close(s);
	return resp;
}

static uint64_t
s_pending(void *ctx, const char *endpoint)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *r;
	uint64_t n = UINT64_MAX;

	req.op_case = KP__REQUEST__OP_STATUS;
	req.status = 1;
	if ((r = s_call(ctx, endpoint, &req)) != NULL && r->ok)
		n = r->status->outbox_pending;
	if (r != NULL)
		kp__response__free_unpacked(r, NULL);
	return n;
}

static void
s_pipeline(void *ctx, const char *endpoint, const uint8_t *payload,
    size_t plen, int n, int window)
{
	void *s = s_api(ctx, endpoint, ZMQ_DEALER);
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest sr = KP__SEND_REQUEST__INIT;
	uint8_t buf[4096];
	char case_ref[32];
	int sent = 0, answered = 0;
	zmq_msg_t m;

	sr.has_event_type = sr.has_payload = 1;
	sr.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	sr.payload = (ProtobufCBinaryData){ plen, (uint8_t *)payload };
	sr.to_oin = HALT;
	sr.case_ref = case_ref;
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &sr;
	while (answered < n) {
		while (sent < n && sent - answered < window) {
			snprintf(case_ref, sizeof(case_ref), "B-%d", sent++);
			zmq_send(s, "", 0, ZMQ_SNDMORE);
			zmq_send(s, buf, kp__request__pack(&req, buf), 0);
		}
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, 0) < 0) {
			fprintf(stderr, "kpbench: the sender stopped answering\n");
			exit(1);
		}
		if (zmq_msg_size(&m) > 0)
			answered++;
		zmq_msg_close(&m);
	}
	zmq_close(s);
}

static int
s_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Latencies (ms) from the outbox (receipt) or inbox (stored) records. */
static size_t
s_latencies(void *ctx, const char *endpoint, bool inbox, uint64_t *lat,
    size_t cap)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;
	Kp__Response *r;
	size_t n = 0, i, count;

	l.has_limit = l.has_after_seq = l.has_all = 1;
	l.limit = 10000;
	l.all = 1;
	req.op_case = inbox ? KP__REQUEST__OP_INBOX : KP__REQUEST__OP_OUTBOX;
	req.inbox = req.outbox = &l;
	for (;;) {
		if ((r = s_call(ctx, endpoint, &req)) == NULL || !r->ok)
			exit(1);
		count = inbox ? r->inbox->n_items : r->outbox->n_items;
		for (i = 0; i < count && n < cap; i++) {
			if (inbox) {
				Kp__InboxItem *it = r->inbox->items[i];
				lat[n++] = it->received_at_ms > it->created_at_ms ?
				    it->received_at_ms - it->created_at_ms : 0;
				l.after_seq = it->seq;
			} else {
				Kp__OutboxItem *it = r->outbox->items[i];
				lat[n++] = it->receipted_at_ms > it->created_at_ms ?
				    it->receipted_at_ms - it->created_at_ms : 0;
				l.after_seq = it->seq;
			}
		}
		kp__response__free_unpacked(r, NULL);
		if (count == 0 || n >= cap)
			break;
	}
	qsort(lat, n, sizeof(*lat), s_cmp_u64);
	return n;
}

static void
s_print_latency(const char *what, const uint64_t *lat, size_t n)
{
	if (n == 0)
		return;
	printf("  %-34s p50 %4llu ms  p90 %4llu ms  p99 %4llu ms  max %4llu ms\n",
	    what, (unsigned long long)lat[n / 2],
	    (unsigned long long)lat[n * 9 / 10],
	    (unsigned long long)lat[n * 99 / 100],
	    (unsigned long long)lat[n - 1]);
}

static void
s_parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "events", 1, NULL, 'n' }, { "window", 1, NULL, 'w' },
		{ "payload", 1, NULL, 'p' }, { "bin", 1, NULL, 'b' },
		{ "version", 0, NULL, 'V' }, { NULL, 0, NULL, 0 } };
	int c;

	o->events = 20000;
	o->window = 1000;
	o->payload = 1024;
	o->bin = "build/bin";
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': o->events = atoi(optarg); break;
		case 'w': o->window = atoi(optarg); break;
		case 'p': o->payload = atoi(optarg); break;
		case 'b': o->bin = optarg; break;
		case 'V': printf("kpbench %s\n", KP_VERSION); exit(0);
		default:
			fprintf(stderr, "usage: kpbench [--events N] [--window W] "
			    "[--payload BYTES] [--bin DIR]\n");
			exit(2);
		}
	}
}

/*
 * The MAS policy, except that a referral may carry up to 1000 parallel
 * routes: the padding that makes a 1 KiB event.  Both daemons apply it.
 */
static void
s_make_chain(const char *bin, const char *dir, int port)
{
	s_run("sed 's/^max_items.parallel_routes *=.*/max_items.parallel_routes"
	    " = 1000/' %s/../share/ketenpost/mas.ini > %s/bench-policy.ini", bin,
	    dir);
	s_run("%s/ketenpost-certs init --dir %s/chain --policy "
	    "%s/bench-policy.ini >/dev/null", bin, dir, dir);
	s_run("%s/ketenpost-certs org --dir %s/chain --oin %s --role leerplicht "
	    "--name Bench-LP --endpoint tcp://127.0.0.1:%d >/dev/null", bin, dir,
	    LP, port);
	s_run("%s/ketenpost-certs org --dir %s/chain --oin %s --role halt "
	    "--name Bench-Halt --endpoint tcp://127.0.0.1:%d >/dev/null", bin,
	    dir, HALT, port + 1);
	s_run("printf '[ketenpostd]\\nchain_dir = %s/chain\\norg = %s\\nlisten = "
	    "tcp://127.0.0.1:%d\\n' > %s/lp.conf", dir, LP, port, dir);
	s_run("printf '[ketenpostd]\\nchain_dir = %s/chain\\norg = %s\\nlisten = "
	    "tcp://127.0.0.1:%d\\n' > %s/halt.conf", dir, HALT, port + 1, dir);
}

int
main(int argc, char **argv)
{
	struct opts o;
	char dir[] = "/tmp/kpbench.XXXXXX", path[4096], lp_api[4200], h_api[4200];
	uint8_t payload[KP_MAX_PAYLOAD];
	size_t plen, n;
	double floor_rate, t0, rate;
	struct floor fl;
	uint64_t *lat;
	void *ctx;
	int port = 10000 + getpid() % 20000;  /* below the ephemeral range */

	s_parse(argc, argv, &o);
	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		return 1;
	snprintf(s_dir, sizeof(s_dir), "%s", dir);
	atexit(s_cleanup);
	signal(SIGINT, s_on_signal);
	signal(SIGTERM, s_on_signal);
	signal(SIGHUP, s_on_signal);
	plen = s_payload(o.payload, payload, sizeof(payload));
	s_make_chain(o.bin, dir, port);
	printf("kpbench: %d events of %zu bytes (referral), window %d, 2 daemons "
	    "on loopback, %ld cores\n", o.events, plen, o.window,
	    sysconf(_SC_NPROCESSORS_ONLN));
	snprintf(path, sizeof(path), "%s/chain", dir);
	fl = s_crypto_floor(path, payload, plen, 5000);
	floor_rate = 1e6 / (fl.seal_us + fl.open_us + fl.rsign_us +
	    fl.rverify_us);
	printf("  seal %.1f us (%.0f/s), open %.1f us (%.0f/s), receipt sign "
	    "%.1f us, receipt verify %.1f us (1 core each)\n", fl.seal_us,
	    1e6 / fl.seal_us, fl.open_us, 1e6 / fl.open_us, fl.rsign_us,
	    fl.rverify_us);
	printf("  crypto floor (all four, 1 core): %.0f events/s, %.1f "
	    "us/event\n", floor_rate, 1e6 / floor_rate);

	snprintf(path, sizeof(path), "%s/lp.conf", dir);
	s_pids[0] = s_daemon(o.bin, path, "/dev/null");
	snprintf(path, sizeof(path), "%s/halt.conf", dir);
	s_pids[1] = s_daemon(o.bin, path, "/dev/null");
	snprintf(lp_api, sizeof(lp_api), "ipc://%s/chain/orgs/%s/state/api.sock",
	    dir, LP);
	snprintf(h_api, sizeof(h_api), "ipc://%s/chain/orgs/%s/state/api.sock",
	    dir, HALT);
	ctx = zmq_ctx_new();
	while (s_pending(ctx, lp_api) == UINT64_MAX || s_pending(ctx, h_api) ==
	    UINT64_MAX)
		usleep(50000);
	usleep(300000);  /* let the links connect */

	t0 = s_now();
	s_pipeline(ctx, lp_api, payload, plen, o.events, o.window);
	printf("  accepted by the sender's API:      %.0f events/s\n",
	    o.events / (s_now() - t0));
	while (s_pending(ctx, lp_api) != 0)
		usleep(2000);
	rate = o.events / (s_now() - t0);
	printf("  sustained, durable both sides, receipted: %.0f events/s "
	    "(%.1f%% of the crypto floor)\n", rate, 100.0 * rate / floor_rate);
	lat = calloc((size_t)o.events, sizeof(*lat));
	n = s_latencies(ctx, h_api, true, lat, (size_t)o.events);
	s_print_latency("API -> stored at receiver:", lat, n);
	n = s_latencies(ctx, lp_api, false, lat, (size_t)o.events);
	s_print_latency("API -> signed receipt at sender:", lat, n);
	free(lat);
	zmq_ctx_term(ctx);
	s_cleanup();
	return 0;
}
