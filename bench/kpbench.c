/*
 * kpbench: what ketenpost sustains, and what the cryptography alone costs.
 *
 *   kpbench [--events N] [--window W] [--payload BYTES] [--bin DIR]
 *           [--rate EPS] [--backlog N [--outage S]] [--port-base P]
 *           [--dir DIR] [--keep]
 *
 * 1. The crypto floor: seal + open (+ sign and verify the receipt) of one
 *    event, in a loop on one core, with real keys made by ketenpost-certs.
 *    Envelopes are signed in batches (PROTOCOL.md §5.6), so the floor of
 *    this design depends on the batch size: it is measured after the run
 *    at the mean batch size B the sender actually formed (events queued
 *    per envelope signature, from its metrics): seal = draft + 1/B of a
 *    batch signature and proofs, open = path + decrypt + 1/B of a
 *    verification (the receiver's cache), and receipts the same way, in
 *    batches of the same B (the receiver batches the receipts of what one
 *    loop pass received: B is the design's best case for them).
 *    floor_ratio is set against that floor; the single-signature floor
 *    (B = 1, the design before batches) is printed beside it.
 * 2. The real thing: two ketenpostd processes on loopback with durable
 *    storage (SQLite WAL, synchronous=FULL) on both sides and signed
 *    receipts.  N events are pipelined into the sender's local API (W in
 *    flight, or paced at EPS offered with --rate); the clock stops when
 *    the sender holds a verified receipt for the last one.  Latency
 *    percentiles come from the daemons' own records: API acceptance ->
 *    stored at the receiver, and -> receipt at the sender.
 * 3. --backlog N: the receiver is down while N events are queued; then it
 *    starts and the drain is timed (until nothing is pending).  With
 *    --outage S it stays down S seconds more, after a sync(2): the
 *    queueing's writes are then on the disk when the drain starts, as
 *    after a real outage of that length (without it, a drain that starts
 *    at once shares the disk with their writeback: PERFORMANCE.md,
 *    "Issue 16, eleventh session").
 * Also measured, per daemon: CPU time per event (/proc/PID/stat; on a
 * shared machine the figure that load disturbs least, set against the
 * floor's own CPU time), peak RSS (VmHWM), bytes written to storage
 * (/proc/PID/io write_bytes, delta over the run; all three read before
 * kpbench lists the events for the latencies, whose answers and `read`
 * audit entries are its own load; a temporary file
 * deleted before writeback is not in it, so write calls, syscw, are
 * counted too) and database bytes per event; sends per event and
 * duplicates answered by the receiver (from the daemons' metrics); the
 * receipt rate of the first and the last tenth of the events.  The last line is "kpbench-summary key=value ..." for
 * scripts.  Ports P..P+3 (two links, two metrics listeners) and the work
 * folder under DIR are configurable, so two runs never collide.
 * Payloads are real `referral` events padded to at most BYTES (a bare
 * referral is 14 bytes; --payload 1024 makes 1,017) with at most 1,000
 * of the repeated `parallel_routes` field, packed, one byte per route (the
 * schemas have no free text, so that is the only way to make one bigger;
 * the bench chain's policy allows the padding, the MAS policy would not).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "api.pb-c.h"
#include "chain.h"
#include "envelope.h"
#include "events.pb-c.h"
#include "util.h"

#define LP "00000001001234567000"
#define HALT "00000001002345678000"

struct opts {
	int events, window, payload, rate, backlog, port;
	int outage_s;               /* --outage: receiver down this much longer */
	const char *bin, *dir;
};

/* The two daemons and the work folder: whatever way kpbench ends (an
 * exit(1) on the way, ^C, SIGTERM), s_cleanup stops them and removes it. */
static volatile pid_t s_pids[2];
static char s_dir[4096];
static bool s_keep;            /* --keep: leave the work folder for study */

static void
s_stop_daemons(void)
{
	int i;

	for (i = 0; i < 2; i++)
		if (s_pids[i] > 0) {
			kill(s_pids[i], SIGTERM);
			waitpid(s_pids[i], NULL, 0);
			s_pids[i] = 0;
		}
}

static void
s_cleanup(void)
{
	char cmd[4200];

	s_stop_daemons();
	if (s_dir[0] != '\0' && s_keep) {
		fprintf(stderr, "kpbench: kept %s (--keep)\n", s_dir);
		s_dir[0] = '\0';
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
	/* packed: one byte per route, after a tag and a length; at most
	 * the 1000 the bench policy allows (policy.c's limit); the loop
	 * below takes routes off until it fits */
	n = bytes > 1000 ? 1000 : (size_t)bytes;
	routes = calloc(n + 1, sizeof(*routes));
	for (size_t i = 0; i < n; i++)
		routes[i] = KP__ROUTE__ROUTE_VRIJWILLIGE_JEUGDHULP;
	r.parallel_routes = routes;
	r.n_parallel_routes = n;
	while ((len = kp__referral__get_packed_size(&r)) > (size_t)bytes &&
	    r.n_parallel_routes > 0)
		r.n_parallel_routes--;
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

/* Seal n envelopes for Halt, signed in batches of `batch`. */
static void
s_seal_batches(chain_t *a, envelope_meta_t *m, const uint8_t *payload,
    size_t plen, int n, int batch, uint8_t **env, size_t *elen)
{
	envelope_draft_t *d = calloc((size_t)batch, sizeof(*d));
	envelope_draft_t **dp = calloc((size_t)batch, sizeof(*dp));
	kp_err_t e;
	int i, k, b;

	if (d == NULL || dp == NULL)
		exit(1);
	for (i = 0; i < n; i += b) {
		b = n - i < batch ? n - i : batch;
		for (k = 0; k < b; k++) {
			kp_uuid_new(m->event_id);
			if (envelope_seal_draft(a->dir, directory_find(a->dir,
			    HALT), m, payload, plen, &d[k], &e) != 0)
				exit(1);
			dp[k] = &d[k];
		}
		if (envelope_sign_batch(a->dir, dp, (size_t)b, env + i, elen + i,
		    &e) != 0)
			exit(1);
		for (k = 0; k < b; k++)
			envelope_draft_clear(&d[k]);
	}
	free(d);
	free(dp);
}

/* Sign n receipts of b, in batches of `batch`, as the receiver does. */
static void
s_sign_receipts(chain_t *b, receipt_t *r, int n, int batch, uint8_t **rb,
    size_t *rlen)
{
	envelope_draft_t *d = calloc((size_t)batch, sizeof(*d));
	envelope_draft_t **dp = calloc((size_t)batch, sizeof(*dp));
	kp_err_t e;
	int i, k, m;

	if (d == NULL || dp == NULL)
		exit(1);
	for (i = 0; i < n; i += m) {
		m = n - i < batch ? n - i : batch;
		for (k = 0; k < m; k++) {
			r->received_at_ms = kp_now_ms();
			kp_uuid_new(r->event_id);
			if (receipt_draft(b->dir, r, &d[k], &e) != 0)
				exit(1);
			dp[k] = &d[k];
		}
		if (receipt_sign_batch(b->dir, dp, (size_t)m, rb + i, rlen + i,
		    &e) != 0)
			exit(1);
		for (k = 0; k < m; k++)
			envelope_draft_clear(&d[k]);
	}
	free(d);
	free(dp);
}

/*
 * The crypto floor, stage by stage on one core: n seals (signed in
 * batches of `batch`), then opening those n envelopes (one verification
 * per batch, as the receiver's cache gives), then n receipts signed in
 * batches of `batch` and their verification (one per batch, cached).
 */
static struct floor
s_crypto_floor(const char *chain, const uint8_t *payload, size_t plen, int n,
    int batch)
{
	chain_t *a = NULL, *b = NULL;
	envelope_meta_t m, got;
	uint8_t **env = calloc((size_t)n, sizeof(*env)), **rb = calloc((size_t)n,
	    sizeof(*rb)), *opened, digest[32];
	size_t *elen = calloc((size_t)n, sizeof(*elen)), *rlen = calloc((size_t)n,
	    sizeof(*rlen)), olen;
	struct floor f;
	receipt_t r, rv;
	batch_cache_t *cache = batch_cache_new(64);
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
	t = kp_mono_s();
	s_seal_batches(a, &m, payload, plen, n, batch, env, elen);
	f.seal_us = (kp_mono_s() - t) * 1e6 / n;
	t = kp_mono_s();
	for (i = 0; i < n; i++) {
		if (envelope_open_cached(b->dir, cache, env[i], elen[i], &got,
		    &opened, &olen, digest, &hd, &e) != 0)
			exit(1);
		free(opened);
	}
	f.open_us = (kp_mono_s() - t) * 1e6 / n;
	memset(&r, 0, sizeof(r));
	r.has_event_id = true;
	strcpy(r.subject_oin, LP);
	r.status = 1;
	t = kp_mono_s();
	s_sign_receipts(b, &r, n, batch, rb, rlen);
	f.rsign_us = (kp_mono_s() - t) * 1e6 / n;
	t = kp_mono_s();
	for (i = 0; i < n; i++)
		if (receipt_verify_cached(a->dir, cache, rb[i], rlen[i], &rv,
		    &e) != 0)
			exit(1);
	f.rverify_us = (kp_mono_s() - t) * 1e6 / n;
	for (i = 0; i < n; i++) {
		free(env[i]);
		free(rb[i]);
	}
	free(env);
	free(rb);
	free(elen);
	free(rlen);
	batch_cache_destroy(&cache);
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
		/* a killed kpbench takes its daemons with it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
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

/*
 * n send requests into the sender's API, at most `window` unanswered;
 * with rate > 0, request i is not sent before t0 + i / rate (offered
 * load; the window still caps what is in flight).
 */
static void
s_pipeline(void *ctx, const char *endpoint, const uint8_t *payload,
    size_t plen, int n, int window, int rate)
{
	void *s = s_api(ctx, endpoint, ZMQ_DEALER);
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest sr = KP__SEND_REQUEST__INIT;
	uint8_t buf[4096];
	char case_ref[32];
	int sent = 0, answered = 0;
	double t0 = kp_mono_s(), wait;
	zmq_pollitem_t pi;
	zmq_msg_t m;

	sr.has_event_type = sr.has_payload = 1;
	sr.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	sr.payload = (ProtobufCBinaryData){ plen, (uint8_t *)payload };
	sr.to_oin = HALT;
	sr.case_ref = case_ref;
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &sr;
	pi.socket = s;
	pi.events = ZMQ_POLLIN;
	while (answered < n) {
		wait = -1;
		while (sent < n && sent - answered < window) {
			if (rate > 0 && (wait = t0 + (double)sent / rate -
			    kp_mono_s()) > 0)
				break;
			snprintf(case_ref, sizeof(case_ref), "B-%d", sent++);
			zmq_send(s, "", 0, ZMQ_SNDMORE);
			zmq_send(s, buf, kp__request__pack(&req, buf), 0);
			wait = -1;
		}
		if (zmq_poll(&pi, 1, wait > 0 ? (long)(wait * 1000) + 1 :
		    10000) < 0 || (wait <= 0 && !(pi.revents & ZMQ_POLLIN))) {
			fprintf(stderr, "kpbench: the sender stopped answering\n");
			exit(1);
		}
		while (zmq_poll(&pi, 1, 0) > 0 && (pi.revents & ZMQ_POLLIN)) {
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&m);
				break;
			}
			if (zmq_msg_size(&m) > 0)
				answered++;
			zmq_msg_close(&m);
		}
	}
	zmq_close(s);
}

static int
s_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Latencies (ms) from the outbox (receipt) or inbox (stored) records,
 * and the wall time (ms) each event reached that point, both sorted. */
static size_t
s_latencies(void *ctx, const char *endpoint, bool inbox, uint64_t *lat,
    uint64_t *at, size_t cap)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;
	Kp__Response *r;
	size_t n = 0, i, count;
	uint64_t c, e;

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
				c = it->created_at_ms;
				e = it->received_at_ms;
				l.after_seq = it->seq;
			} else {
				Kp__OutboxItem *it = r->outbox->items[i];
				c = it->created_at_ms;
				e = it->receipted_at_ms;
				l.after_seq = it->seq;
			}
			lat[n] = e > c ? e - c : 0;
			at[n++] = e;
		}
		kp__response__free_unpacked(r, NULL);
		if (count == 0 || n >= cap)
			break;
	}
	qsort(lat, n, sizeof(*lat), s_cmp_u64);
	qsort(at, n, sizeof(*at), s_cmp_u64);
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

/* A number from /proc/PID/FILE on the line starting with key; 0 if none. */
static uint64_t
s_proc(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	uint64_t v = 0;
	size_t kl = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0) {
			v = strtoull(line + kl, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* CPU time (user + system) of a process so far, in microseconds. */
static uint64_t
s_cpu_us(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after "pid (comm) ": state is field 3, utime 14, stime 15 */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 2, "%*c %*d %*d %*d "
	    "%*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (ut + st) * 1000000ull / (unsigned long long)sysconf(_SC_CLK_TCK);
}

/* The sum of every sample of metric `name` a daemon serves on port. */
static uint64_t
s_metric(int port, const char *name)
{
	static const char get[] = "GET /metrics HTTP/1.0\r\nHost: kpbench\r\n\r\n";
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char *buf = NULL, *p;
	size_t len = 0, cap = 0, nl = strlen(name);
	uint64_t sum = 0;
	ssize_t got;
	int fd;

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(fd, get, sizeof(get) - 1) != (ssize_t)(sizeof(get) - 1))
		goto out;
	for (;;) {
		if (cap - len < 4096 &&
		    (buf = realloc(buf, cap += 65536)) == NULL)
			goto out;
		if ((got = read(fd, buf + len, cap - len - 1)) <= 0)
			break;
		len += (size_t)got;
	}
	if (buf == NULL)
		goto out;
	buf[len] = '\0';
	for (p = buf; (p = strstr(p, name)) != NULL; p += nl)
		if ((p == buf || p[-1] == '\n') && (p[nl] == '{' || p[nl] == ' ')) {
			char *sp = strchr(p, ' ');
			if (sp != NULL)
				sum += strtoull(sp + 1, NULL, 10);
		}
out:
	free(buf);
	close(fd);
	return sum;
}

/* Bytes of the database files (main file and WAL, if any) in a state
 * folder. */
static uint64_t
s_db_bytes(const char *dir, const char *oin)
{
	static const char *const tail[] = { "", "-wal" };
	char path[4300];
	struct stat st;
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/chain/orgs/%s/state/ketenpost.db%s",
		    dir, oin, tail[i]);
		if (stat(path, &st) == 0)
			sum += (uint64_t)st.st_size;
	}
	return sum;
}

static void
s_parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "events", 1, NULL, 'n' }, { "window", 1, NULL, 'w' },
		{ "payload", 1, NULL, 'p' }, { "bin", 1, NULL, 'b' },
		{ "rate", 1, NULL, 'r' }, { "backlog", 1, NULL, 'B' },
		{ "port-base", 1, NULL, 'P' }, { "dir", 1, NULL, 'd' },
		{ "outage", 1, NULL, 'O' },
		{ "keep", 0, NULL, 'k' }, { "help", 0, NULL, 'h' },
		{ "version", 0, NULL, 'V' }, { NULL, 0, NULL, 0 } };
	FILE *to = stderr;
	int c;

	o->events = 20000;
	o->window = 1000;
	o->payload = 1024;
	o->rate = o->backlog = o->outage_s = 0;
	o->port = 10000 + getpid() % 20000;  /* below the ephemeral range */
	o->bin = "build/bin";
	o->dir = "/tmp";
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': o->events = atoi(optarg); break;
		case 'w': o->window = atoi(optarg); break;
		case 'p': o->payload = atoi(optarg); break;
		case 'b': o->bin = optarg; break;
		case 'r': o->rate = atoi(optarg); break;
		case 'B': o->backlog = atoi(optarg); break;
		case 'O': o->outage_s = atoi(optarg); break;
		case 'P': o->port = atoi(optarg); break;
		case 'd': o->dir = optarg; break;
		case 'k': s_keep = true; break;
		case 'V': printf("kpbench %s\n", KP_VERSION); exit(0);
		case 'h': to = stdout; goto usage;
		default:
			goto usage;
		}
	}
	if (o->backlog > 0)
		o->events = o->backlog;
	if (optind == argc && o->events > 0 && o->window > 0 &&
	    o->rate >= 0 && o->port > 0 && o->port < 65532 &&
	    o->outage_s >= 0 && (o->outage_s == 0 || o->backlog > 0) &&
	    o->payload > 0 && o->payload <= 1024 && strlen(o->dir) < 4000)
		return;
usage:
	fprintf(to, "usage: kpbench [--events N] [--window W] "
	    "[--payload BYTES] [--bin DIR] [--rate EPS] [--backlog N "
	    "[--outage S]] [--port-base P] [--dir DIR] [--keep]\n"
	    "  --outage S: with --backlog, the receiver stays down S s more "
	    "after a sync(2) before the drain is timed\n"
	    "  --payload BYTES: 1..1024, the most a referral padded with up to "
	    "1000 routes may have\n"
	    "  one kpbench-summary line at the end; docs/PERFORMANCE.md says "
	    "what each figure measures\n");
	exit(to == stdout ? 0 : 2);
}

/*
 * The MAS policy, except that a referral may carry up to 1000 parallel
 * routes: the padding that makes a 1 KiB event (one byte per route,
 * packed).  Both daemons apply it.
 * Ports: port and port+1 the links, port+2 and port+3 the metrics.
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
	    "tcp://127.0.0.1:%d\\n[metrics]\\nlisten = 127.0.0.1:%d\\n' > "
	    "%s/lp.conf", dir, LP, port, port + 2, dir);
	s_run("printf '[ketenpostd]\\nchain_dir = %s/chain\\norg = %s\\nlisten = "
	    "tcp://127.0.0.1:%d\\n[metrics]\\nlisten = 127.0.0.1:%d\\n' > "
	    "%s/halt.conf", dir, HALT, port + 1, port + 3, dir);
}

/* Start daemon i (0 the sender, 1 the receiver) and wait for its API. */
static void
s_start(const struct opts *o, void *ctx, int i, const char *api)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s.conf", s_dir, i == 0 ? "lp" :
	    "halt");
	s_pids[i] = s_daemon(o->bin, path, "/dev/null");
	while (s_pending(ctx, api) == UINT64_MAX) {
		if (waitpid(s_pids[i], NULL, WNOHANG) == s_pids[i]) {
			s_pids[i] = 0;
			fprintf(stderr, "kpbench: ketenpostd %s did not start\n",
			    path);
			exit(1);
		}
		usleep(50000);
	}
}

/* The receipt rate of the first and the last tenth of the events: does
 * throughput fall as the stores grow?  The first tenth is timed from the
 * first receipt, so the time to fill the pipe is not counted as slowness. */
static void
s_tenths(const uint64_t *at, size_t n, double *first, double *last)
{
	size_t t = n / 10;

	*first = *last = 0;
	if (t == 0)
		return;
	if (at[t] > at[0])
		*first = t * 1000.0 / (double)(at[t] - at[0]);
	if (at[n - 1] > at[n - t - 1])
		*last = t * 1000.0 / (double)(at[n - 1] - at[n - t - 1]);
}

struct result {
	double floor, api, eps, queue_eps, drain_s, first, last;
	uint64_t disk[2];            /* p50, p99 us of a durable write */
	double floor_single, batch;  /* B = 1 floor; mean batch size B */
	uint64_t st[3], rc[3];       /* p50, p99, max: stored, receipt */
	uint64_t rss[2], wb[2], wc[2], db[2], cpu[2], sends, dups;
	uint64_t packs;              /* messages of several envelopes */
	uint64_t rss_read[2];        /* peak RSS after kpbench read the records */
	double floor_cpu_us;         /* the floor in CPU time, per event */
};

static void
s_pcts(const uint64_t *lat, size_t n, uint64_t out[3])
{
	out[0] = n ? lat[n / 2] : 0;
	out[1] = n ? lat[n * 99 / 100] : 0;
	out[2] = n ? lat[n - 1] : 0;
}

/* The figures of the daemons themselves, read before they stop. */
static void
s_measure(const struct opts *o, void *ctx, const char *lp_api,
    const char *h_api, struct result *res)
{
	uint64_t *lat = calloc((size_t)o->events, sizeof(*lat));
	uint64_t *at = calloc((size_t)o->events, sizeof(*at));
	size_t n;
	int i;

	if (lat == NULL || at == NULL)
		exit(1);
	/* before kpbench lists every event through the API: that listing
	 * (10,000 items an answer, and a `read` audit entry per inbox item)
	 * is the benchmark's own work, not the daemons' */
	for (i = 0; i < 2; i++) {
		res->rss[i] = s_proc(s_pids[i], "status", "VmHWM:");
		res->wb[i] = s_proc(s_pids[i], "io", "write_bytes:") - res->wb[i];
		res->wc[i] = s_proc(s_pids[i], "io", "syscw:") - res->wc[i];
		res->cpu[i] = s_cpu_us(s_pids[i]) - res->cpu[i];
	}
	n = s_latencies(ctx, h_api, true, lat, at, (size_t)o->events);
	s_print_latency("API -> stored at receiver:", lat, n);
	s_pcts(lat, n, res->st);
	n = s_latencies(ctx, lp_api, false, lat, at, (size_t)o->events);
	s_print_latency("API -> signed receipt at sender:", lat, n);
	s_pcts(lat, n, res->rc);
	s_tenths(at, n, &res->first, &res->last);
	free(lat);
	free(at);
	res->sends = s_metric(o->port + 2, "ketenpost_send_attempts_total");
	res->batch = s_metric(o->port + 2, "ketenpost_envelope_signatures_total");
	/* events queued per signature; an older daemon signs each alone */
	res->batch = res->batch > 0 ? s_metric(o->port + 2,
	    "ketenpost_events_queued_total") / res->batch : 1;
	res->dups = s_metric(o->port + 3, "ketenpost_duplicates_total");
	res->packs = s_metric(o->port + 2, "ketenpost_packs_sent_total");
	for (i = 0; i < 2; i++)
		res->rss_read[i] = s_proc(s_pids[i], "status", "VmHWM:");
	/* a clean stop checkpoints the WAL into the database and removes
	 * it: what is left is what the events take */
	s_stop_daemons();
	for (i = 0; i < 2; i++)
		res->db[i] = s_db_bytes(s_dir, i == 0 ? LP : HALT);
}

static void
s_report(const struct opts *o, size_t plen, const struct result *r)
{
	double ev = o->events;

	printf("  receipts, first tenth %.0f events/s, last tenth %.0f events/s\n",
	    r->first, r->last);
	printf("  sends per event %.2f, duplicates answered by the receiver "
	    "%llu, packs of envelopes sent %llu\n", r->sends / ev,
	    (unsigned long long)r->dups, (unsigned long long)r->packs);
	printf("  CPU per event: sender %.0f us, receiver %.0f us; the crypto "
	    "floor %.0f us CPU (%.1f%% of both daemons' CPU)\n", r->cpu[0] / ev,
	    r->cpu[1] / ev, r->floor_cpu_us, 100.0 * r->floor_cpu_us /
	    ((r->cpu[0] + r->cpu[1]) / ev));
	printf("  peak RSS sender %.1f MiB, receiver %.1f MiB (%.1f / %.1f MiB "
	    "once kpbench has listed every event)\n", r->rss[0] / 1024.0,
	    r->rss[1] / 1024.0, r->rss_read[0] / 1024.0,
	    r->rss_read[1] / 1024.0);
	printf("  written per event: sender %.0f B in %.1f write calls, "
	    "receiver %.0f B in %.1f; database per event: sender %.0f B, "
	    "receiver %.0f B\n", r->wb[0] / ev, r->wc[0] / ev, r->wb[1] / ev,
	    r->wc[1] / ev, r->db[0] / ev, r->db[1] / ev);
	printf("kpbench-summary mode=%s events=%d payload=%zu window=%d rate=%d "
	    "floor_eps=%.0f api_eps=%.0f eps=%.0f floor_ratio=%.3f "
	    "queue_eps=%.0f drain_s=%.2f "
	    "stored_p50_ms=%llu stored_p99_ms=%llu stored_max_ms=%llu "
	    "receipt_p50_ms=%llu receipt_p99_ms=%llu receipt_max_ms=%llu "
	    "first_tenth_eps=%.0f last_tenth_eps=%.0f sends_per_event=%.3f "
	    "duplicates=%llu snd_rss_kib=%llu rcv_rss_kib=%llu "
	    "snd_write_b_per_ev=%.0f rcv_write_b_per_ev=%.0f "
	    "snd_writes_per_ev=%.1f rcv_writes_per_ev=%.1f "
	    "snd_db_b_per_ev=%.0f rcv_db_b_per_ev=%.0f "
	    "snd_cpu_us_per_ev=%.0f rcv_cpu_us_per_ev=%.0f floor_cpu_us=%.0f "
	    "cpu_floor_ratio=%.3f batch_mean=%.1f floor_single_eps=%.0f "
	    "snd_rss_read_kib=%llu rcv_rss_read_kib=%llu "
	    "disk_sync_p50_us=%llu disk_sync_p99_us=%llu packs=%llu "
	    "outage_s=%d\n",
	    o->backlog ? "backlog" : o->rate ? "paced" : "throughput",
	    o->events, plen, o->window, o->rate, r->floor, r->api, r->eps,
	    r->eps / r->floor, r->queue_eps, r->drain_s,
	    (unsigned long long)r->st[0], (unsigned long long)r->st[1],
	    (unsigned long long)r->st[2], (unsigned long long)r->rc[0],
	    (unsigned long long)r->rc[1], (unsigned long long)r->rc[2],
	    r->first, r->last, r->sends / ev, (unsigned long long)r->dups,
	    (unsigned long long)r->rss[0], (unsigned long long)r->rss[1],
	    r->wb[0] / ev, r->wb[1] / ev, r->wc[0] / ev, r->wc[1] / ev,
	    r->db[0] / ev, r->db[1] / ev, r->cpu[0] / ev, r->cpu[1] / ev,
	    r->floor_cpu_us, r->floor_cpu_us / ((r->cpu[0] + r->cpu[1]) / ev),
	    r->batch, r->floor_single, (unsigned long long)r->rss_read[0],
	    (unsigned long long)r->rss_read[1], (unsigned long long)r->disk[0],
	    (unsigned long long)r->disk[1], (unsigned long long)r->packs,
	    o->outage_s);
}

/*
 * The disk's floor of a stored event's latency: DISK_SAMPLES rewrites of
 * one 8 KiB page of a file already written and synced (so no sync also
 * writes the file's size), each followed by a timed fdatasync, paced 1 ms
 * apart like a commit at 1,000 events/s, in the run's own folder (so on
 * the daemons' disk).  Sampled before the daemons start and after they
 * stop, into out[] (us, kept to merge both): an event is stored at the
 * receiver only after the sender's commit, so its latency cannot beat one
 * durable write, and on a shared virtual disk that write's p99 varies
 * from under 1 to 9 ms between one hour and the next (PERFORMANCE.md,
 * "The disk's floor").
 */
#define DISK_SAMPLES 500

static void
s_disk_fail(const char *path, const char *what)
{
	fprintf(stderr, "kpbench: %s: %s: %s\n", path, what, strerror(errno));
	exit(1);
}

static void
s_disk_sample(const char *dir, uint64_t *out)
{
	static uint8_t page[8192];
	char path[4200];
	struct timespec a, b;
	int fd, i;

	snprintf(path, sizeof(path), "%s/disk-probe", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		s_disk_fail(path, "open");
	for (i = 0; i < 64; i++)
		if (pwrite(fd, page, sizeof(page), (off_t)i *
		    (off_t)sizeof(page)) != (ssize_t)sizeof(page))
			s_disk_fail(path, "write");
	if (fsync(fd) != 0)
		s_disk_fail(path, "fsync");
	for (i = 0; i < DISK_SAMPLES; i++) {
		page[0] = (uint8_t)i;
		if (pwrite(fd, page, sizeof(page), (off_t)(i % 64) *
		    (off_t)sizeof(page)) != (ssize_t)sizeof(page))
			s_disk_fail(path, "write");
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (fdatasync(fd) != 0)
			s_disk_fail(path, "fdatasync");
		clock_gettime(CLOCK_MONOTONIC, &b);
		out[i] = (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000LL +
		    (b.tv_nsec - a.tv_nsec)) / 1000;
		usleep(1000);
	}
	close(fd);
	unlink(path);
}

static void
s_disk_report(uint64_t *samples, size_t n, uint64_t out[2])
{
	qsort(samples, n, sizeof(*samples), s_cmp_u64);
	out[0] = samples[n / 2];
	out[1] = samples[n * 99 / 100];
	printf("  disk: fdatasync of one rewritten 8 KiB page, p50 %llu us, "
	    "p99 %llu us, max %llu us (%zu samples, before and after the "
	    "run)\n",
	    (unsigned long long)out[0], (unsigned long long)out[1],
	    (unsigned long long)samples[n - 1], n);
}

static double
s_floor(const char *dir, const uint8_t *payload, size_t plen, int batch,
    double *cpu_us)
{
	struct timespec c0, c1;
	char path[4200];
	struct floor fl;
	double rate;

	snprintf(path, sizeof(path), "%s/chain", dir);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	fl = s_crypto_floor(path, payload, plen, 5000, batch);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	*cpu_us = ((double)(c1.tv_sec - c0.tv_sec) * 1e6 +
	    (double)(c1.tv_nsec - c0.tv_nsec) / 1e3) / 5000;
	rate = 1e6 / (fl.seal_us + fl.open_us + fl.rsign_us + fl.rverify_us);
	printf("  seal %.1f us (%.0f/s), open %.1f us (%.0f/s), receipt sign "
	    "%.1f us, receipt verify %.1f us (1 core each)\n", fl.seal_us,
	    1e6 / fl.seal_us, fl.open_us, 1e6 / fl.open_us, fl.rsign_us,
	    fl.rverify_us);
	printf("  crypto floor (all four, 1 core, batches of %d): %.0f "
	    "events/s, %.1f us/event\n", batch, rate, 1e6 / rate);
	return rate;
}

/* Poll the sender until its outbox is settled, every 50 ms.  A status
 * request used to count the whole outbox (polling every 2 ms made that a
 * quarter of the sender's CPU, every 50 ms still 48% during a drain of
 * 150,000); the daemon now keeps its counts (daemon/store_counts.c), but
 * the bench still asks no more often than it needs. */
static void
s_wait_drained(void *ctx, const char *lp_api)
{
	while (s_pending(ctx, lp_api) != 0)
		usleep(50000);
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct result res;
	char lp_api[4200], h_api[4200];
	uint8_t payload[KP_MAX_PAYLOAD];
	size_t plen;
	double t0;
	void *ctx;
	static uint64_t disk[2 * DISK_SAMPLES];

	setvbuf(stdout, NULL, _IOLBF, 0);
	s_parse(argc, argv, &o);
	memset(&res, 0, sizeof(res));
	snprintf(s_dir, sizeof(s_dir), "%s/kpbench.XXXXXX", o.dir);
	if (sodium_init() < 0 || mkdtemp(s_dir) == NULL) {
		fprintf(stderr, "kpbench: cannot make a work folder in %s\n",
		    o.dir);
		return 1;
	}
	atexit(s_cleanup);
	signal(SIGINT, s_on_signal);
	signal(SIGTERM, s_on_signal);
	signal(SIGHUP, s_on_signal);
	plen = s_payload(o.payload, payload, sizeof(payload));
	s_make_chain(o.bin, s_dir, o.port);
	printf("kpbench: %d events of %zu bytes (referral), window %d%s, 2 "
	    "daemons on loopback (ports %d-%d), %ld cores, in %s\n", o.events,
	    plen, o.window, o.backlog ? ", backlog" : o.rate ? ", paced" : "",
	    o.port, o.port + 3, sysconf(_SC_NPROCESSORS_ONLN), s_dir);
	res.floor_single = s_floor(s_dir, payload, plen, 1, &res.floor_cpu_us);
	s_disk_sample(s_dir, disk);

	snprintf(lp_api, sizeof(lp_api), "ipc://%s/chain/orgs/%s/state/api.sock",
	    s_dir, LP);
	snprintf(h_api, sizeof(h_api), "ipc://%s/chain/orgs/%s/state/api.sock",
	    s_dir, HALT);
	ctx = zmq_ctx_new();
	s_start(&o, ctx, 0, lp_api);
	if (o.backlog == 0) {
		s_start(&o, ctx, 1, h_api);
		usleep(300000);  /* let the links connect */
		res.wb[1] = s_proc(s_pids[1], "io", "write_bytes:");
		res.wc[1] = s_proc(s_pids[1], "io", "syscw:");
		res.cpu[1] = s_cpu_us(s_pids[1]);
	}
	res.cpu[0] = s_cpu_us(s_pids[0]);
	res.wb[0] = s_proc(s_pids[0], "io", "write_bytes:");
	res.wc[0] = s_proc(s_pids[0], "io", "syscw:");
	t0 = kp_mono_s();
	s_pipeline(ctx, lp_api, payload, plen, o.events, o.window, o.rate);
	res.api = o.events / (kp_mono_s() - t0);
	printf("  accepted by the sender's API:      %.0f events/s\n", res.api);
	if (o.backlog > 0) {
		res.queue_eps = res.api;
		if (o.outage_s > 0) {
			sync();
			sleep((unsigned)o.outage_s);
		}
		s_start(&o, ctx, 1, h_api);
		res.wb[1] = s_proc(s_pids[1], "io", "write_bytes:");
		res.wc[1] = s_proc(s_pids[1], "io", "syscw:");
		res.cpu[1] = s_cpu_us(s_pids[1]);
		t0 = kp_mono_s();
		s_wait_drained(ctx, lp_api);
		res.drain_s = kp_mono_s() - t0;
		res.eps = o.events / res.drain_s;
		printf("  backlog of %d drained in %.2f s: %.0f events/s\n",
		    o.events, res.drain_s, res.eps);
	} else {
		s_wait_drained(ctx, lp_api);
		res.eps = o.events / (kp_mono_s() - t0);
		printf("  sustained, durable both sides, receipted: %.0f "
		    "events/s\n", res.eps);
	}
	s_measure(&o, ctx, lp_api, h_api, &res);
	s_disk_sample(s_dir, disk + DISK_SAMPLES);
	s_disk_report(disk, 2 * DISK_SAMPLES, res.disk);
	/* the floor of this design at the batch size the run formed */
	res.floor = s_floor(s_dir, payload, plen, (int)(res.batch + 0.5),
	    &res.floor_cpu_us);
	printf("  %.1f%% of the crypto floor at the run's mean batch of %.1f "
	    "(%.1f%% of the single-signature floor)\n", 100.0 * res.eps /
	    res.floor, res.batch, 100.0 * res.eps / res.floor_single);
	s_report(&o, plen, &res);
	zmq_ctx_term(ctx);
	s_cleanup();
	return 0;
}
