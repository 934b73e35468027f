/*
 * zmqpack: what packing K events into one ZeroMQ message would save in the
 * transport alone, before anyone changes the protocol (issue 16, ninth
 * session; docs/PERFORMANCE.md).
 *
 *   zmqpack [--events E] [--bytes B] [--receipt R] [--window W]
 *           [--k K1,K2,...] [--port P] [--rate EPS [--burst N]]
 *   zmqpack --options [--port P]
 *
 * Two processes (fork), each with its own ZeroMQ context of one I/O thread
 * as the daemons have: a CURVE DEALER (the sender, "snd") connects over
 * loopback TCP to a CURVE ROUTER (the receiver, "rcv") with the socket
 * options of daemon/outbound.c s_link_sockets and daemon/main.c
 * s_router_open, and a ZAP handler in the receiver's loop that admits the
 * sender's key and labels it with an OIN (daemon/zap.c, reduced to one
 * key).  The sender streams E events of B bytes, K per message (one frame:
 * a type byte, then K times a 4-byte big-endian length and the body),
 * with at most W events unanswered (FLIGHTS_MAX) and, with --rate, at
 * most EPS a second, in bursts of N events (a drain's pace rather than
 * the loopback's); the receiver takes up to 512 events a pass (batch_max)
 * and answers each message with one message of K receipts of R bytes in
 * the same form.  MAXMSGSIZE is the daemons' or, if more, what a packed
 * message needs.  Per K it prints one line:
 * events/s, and CPU per event of each process's application thread and
 * its ZeroMQ I/O thread (ZMQbg/IO/0), from the scheduler's run time of
 * each thread (/proc/self/task/TID/schedstat, ns; utime+stime of .../stat
 * where schedstat is missing), read after a warm-up and after the last
 * receipt.  The application threads do nothing but the zmq calls and the
 * copies into the message, so their figure is the per-message cost of the
 * API side.  Left out of the daemons' sockets: the socket monitors (inproc
 * PAIR, connection events only) and the ZAP handler's trust look-up.
 *
 * --options tries the draft socket options a capability exchange in the
 * handshake (ZMQ_METADATA) or larger I/O batches (ZMQ_IN/OUT_BATCH_SIZE)
 * would need, on a CURVE pair in one process.
 *
 * Owns: a benchmark only.  Never: any of the daemon's code or state; the
 * protocol (PROTOCOL.md §13 sends one envelope per message).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "util.h"

#define T_EVENTS 0x01          /* sender -> receiver: K envelopes */
#define T_RECEIPTS 0x02        /* receiver -> sender: K receipts */
#define T_MARK 0x03            /* answered with the receiver's CPU so far */
#define T_QUIT 0x04

#define K_MAX 1024
#define NK_MAX 16
#define PASS_EVENTS 512        /* the daemon's batch_max */
#define POOL 64                /* distinct event bodies cycled through */
#define WAIT_MS 20000          /* no answer for this long: give up */
#define OIN "00000001001234567000"
#define FRAME_HARD_MAX (2 * 65536 + 1)   /* daemon.h KPD_FRAME_HARD_MAX */
#define RECEIPT_MAX (2048 + 16)          /* outbound.c: KP_MAX_RECEIPT + 16 */

struct opts {
	long events, bytes, receipt, window, port, rate, burst;
	bool options;           /* --options: the draft options' check */
	int k[NK_MAX];
	int nk;
};

struct keys {
	uint8_t spk[32], ssk[32], cpk[32], csk[32];
};

/* CPU time of this process's threads, ns, by kind. */
struct cpu {
	uint64_t app, io, other;
};

static bool s_ticks_used;      /* some thread had no schedstat */

static void
s_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
s_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* The first line of a small file into buf; 0 or -1. */
static int
s_read_line(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	int rc = -1;

	if (f == NULL)
		return -1;
	if (fgets(buf, (int)cap, f) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		rc = 0;
	}
	fclose(f);
	return rc;
}

/* One thread's run time in ns: schedstat's first field (exact), else
 * utime + stime of stat (clock ticks). */
static int
s_thread_ns(const char *tid, uint64_t *ns)
{
	char path[300], line[1024], *p;
	unsigned long long run, ut, st;

	snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", tid);
	if (s_read_line(path, line, sizeof(line)) == 0 &&
	    sscanf(line, "%llu", &run) == 1) {
		*ns = run;
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/task/%s/stat", tid);
	if (s_read_line(path, line, sizeof(line)) != 0 ||
	    (p = strrchr(line, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%llu %llu", &ut, &st) != 2)
		return -1;
	s_ticks_used = true;
	*ns = (ut + st) * (1000000000ULL / (unsigned long long)
	    sysconf(_SC_CLK_TCK));
	return 0;
}

/* Every thread of this process, summed by kind: the main thread (app),
 * ZeroMQ's I/O thread (comm ZMQbg/IO/N), the rest (its reaper). */
static int
s_cpu_read(struct cpu *c)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;
	char path[300], comm[64];
	uint64_t ns;
	long me = (long)getpid();

	memset(c, 0, sizeof(*c));
	if (dir == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
		    de->d_name);
		if (s_read_line(path, comm, sizeof(comm)) != 0 ||
		    s_thread_ns(de->d_name, &ns) != 0)
			continue;            /* a thread that just ended */
		if (strtol(de->d_name, NULL, 10) == me)
			c->app += ns;
		else if (strncmp(comm, "ZMQbg/IO/", 9) == 0)
			c->io += ns;
		else
			c->other += ns;
	}
	closedir(dir);
	return 0;
}

/* ---- the receiver ---- */

/* One ZAP request (RFC 27) answered: 200 with the OIN for the sender's
 * key, 400 for any other. */
static void
s_zap_answer(void *zap, const uint8_t cpk[32])
{
	zmq_msg_t f[8];
	int n = 0, i, admit;
	const char *status;

	do {
		zmq_msg_init(&f[n]);
		if (zmq_msg_recv(&f[n], zap, 0) < 0) {
			zmq_msg_close(&f[n]);
			break;
		}
		n++;
	} while (n < 8 && zmq_msg_more(&f[n - 1]));
	admit = n >= 7 && zmq_msg_size(&f[6]) == 32 &&
	    memcmp(zmq_msg_data(&f[6]), cpk, 32) == 0;
	status = admit ? "200" : "400";
	if (n >= 2) {
		zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
		zmq_send(zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]),
		    ZMQ_SNDMORE);
		zmq_send(zap, status, 3, ZMQ_SNDMORE);
		zmq_send(zap, admit ? "OK" : "no", 2, ZMQ_SNDMORE);
		zmq_send(zap, admit ? OIN : "", admit ? strlen(OIN) : 0,
		    ZMQ_SNDMORE);
		zmq_send(zap, "", 0, 0);
	}
	for (i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
}

/* The events of a packed message: count of its records, -1 if the
 * lengths do not fill it exactly. */
static long
s_count(const uint8_t *p, size_t len)
{
	size_t pos = 1;
	long n = 0;
	uint32_t l;

	while (pos < len) {
		if (len - pos < 4)
			return -1;
		l = s_get32(p + pos);
		if (l > len - pos - 4)
			return -1;
		pos += 4 + l;
		n++;
	}
	return n;
}

struct answer {
	uint8_t rid[256];
	size_t rid_len;
	uint8_t type;
	long count;
};

/* The answer to one message: K receipts, or the CPU so far to a mark. */
static int
s_answer(void *router, const struct answer *a, const uint8_t *pool, long r,
    uint8_t *buf)
{
	struct cpu c;
	size_t len = 1;
	long i;

	buf[0] = a->type;
	if (a->type == T_MARK) {
		if (s_cpu_read(&c) != 0)
			return -1;
		len += (size_t)snprintf((char *)buf + 1, 100, "%llu %llu %llu",
		    (unsigned long long)c.app, (unsigned long long)c.io,
		    (unsigned long long)c.other);
	} else
		for (i = 0; i < a->count; i++) {
			s_put32(buf + len, (uint32_t)r);
			memcpy(buf + len + 4, pool + (size_t)(i % POOL) *
			    (size_t)r, (size_t)r);
			len += 4 + (size_t)r;
		}
	if (zmq_send(router, a->rid, a->rid_len, ZMQ_SNDMORE |
	    ZMQ_DONTWAIT) < 0 || zmq_send(router, buf, len, ZMQ_DONTWAIT) < 0)
		return -1;
	return 0;
}

/* One message of the ROUTER into a; 1 got one, 0 none waiting, -1 bad. */
static int
s_take(void *router, struct answer *a, bool *quit)
{
	zmq_msg_t body;
	const uint8_t *p;
	int n;

	n = zmq_recv(router, a->rid, sizeof(a->rid), ZMQ_DONTWAIT);
	if (n < 0)
		return 0;
	if ((size_t)n > sizeof(a->rid)) {  /* zmq_recv truncated it */
		fprintf(stderr, "zmqpack: receiver: routing id of %d bytes\n",
		    n);
		return -1;
	}
	a->rid_len = (size_t)n;
	zmq_msg_init(&body);
	if (zmq_msg_recv(&body, router, ZMQ_DONTWAIT) < 0 ||
	    zmq_msg_more(&body) || zmq_msg_size(&body) < 1 ||
	    zmq_msg_gets(&body, "User-Id") == NULL) {
		zmq_msg_close(&body);
		fprintf(stderr, "zmqpack: receiver: a message not of one "
		    "frame from an admitted peer\n");
		return -1;
	}
	p = zmq_msg_data(&body);
	a->count = 1;
	a->type = p[0] == T_EVENTS ? T_RECEIPTS : p[0];
	if (p[0] == T_EVENTS && (a->count = s_count(p,
	    zmq_msg_size(&body))) < 1) {
		zmq_msg_close(&body);
		fprintf(stderr, "zmqpack: receiver: malformed packed message\n");
		return -1;
	}
	if (p[0] == T_QUIT)
		*quit = true;
	zmq_msg_close(&body);
	return 1;
}

/* One pass: up to PASS_EVENTS events taken, then answered. */
static int
s_serve_pass(void *router, struct answer *arr, const uint8_t *pool, long r,
    uint8_t *buf, bool *quit)
{
	size_t n = 0, i;
	long events = 0;
	int rc;

	while (events < PASS_EVENTS && !*quit &&
	    (rc = s_take(router, &arr[n], quit)) != 0) {
		if (rc < 0)
			return -1;
		events += arr[n].count;
		n++;
	}
	for (i = 0; i < n; i++)
		if (arr[i].type != T_QUIT &&
		    s_answer(router, &arr[i], pool, r, buf) != 0) {
			fprintf(stderr, "zmqpack: receiver: cannot answer: %s\n",
			    zmq_strerror(zmq_errno()));
			return -1;
		}
	return 0;
}

static void *
s_router_open(void *ctx, const struct opts *o, int k, const struct keys *ks)
{
	void *s = zmq_socket(ctx, ZMQ_ROUTER);
	int one = 1, zero = 0, hwm = 100000, rcvhwm = 8192;
	int64_t need = 1 + (int64_t)k * (4 + o->bytes);
	int64_t maxmsg = need > FRAME_HARD_MAX ? need : FRAME_HARD_MAX;
	char ep[64];

	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%ld", o->port);
	if (s == NULL ||
	    zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, ks->ssk, 32) ||
	    zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, "ketenpost", 9) ||
	    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) ||
	    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm)) ||
	    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_bind(s, ep) != 0) {
		fprintf(stderr, "zmqpack: receiver: cannot listen on %s: %s "
		    "(another --port?)\n", ep, zmq_strerror(zmq_errno()));
		if (s != NULL)
			zmq_close(s);
		return NULL;
	}
	return s;
}

static int
s_receiver(const struct opts *o, int k, const struct keys *ks)
{
	void *ctx = zmq_ctx_new(), *zap = NULL, *router = NULL;
	struct answer *arr = calloc(PASS_EVENTS, sizeof(*arr));
	uint8_t *pool = malloc((size_t)POOL * (size_t)o->receipt);
	uint8_t *buf = malloc(1 + (size_t)k * (4 + (size_t)o->receipt) + 128);
	zmq_pollitem_t it[2];
	bool quit = false;
	int zero = 0, rc = -1;

	if (ctx == NULL || arr == NULL || pool == NULL || buf == NULL)
		goto out;
	memset(pool, 0xa5, (size_t)POOL * (size_t)o->receipt);
	if ((zap = zmq_socket(ctx, ZMQ_REP)) == NULL ||
	    zmq_setsockopt(zap, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_bind(zap, "inproc://zeromq.zap.01") != 0 ||
	    (router = s_router_open(ctx, o, k, ks)) == NULL)
		goto out;
	while (!quit) {
		it[0] = (zmq_pollitem_t){ zap, 0, ZMQ_POLLIN, 0 };
		it[1] = (zmq_pollitem_t){ router, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(it, 2, 2 * WAIT_MS) <= 0) {
			fprintf(stderr, "zmqpack: receiver: nothing for %d s; "
			    "the sender is gone\n", 2 * WAIT_MS / 1000);
			goto out;
		}
		if (it[0].revents & ZMQ_POLLIN)
			s_zap_answer(zap, ks->cpk);
		if ((it[1].revents & ZMQ_POLLIN) &&
		    s_serve_pass(router, arr, pool, o->receipt, buf, &quit) != 0)
			goto out;
	}
	rc = 0;
out:
	if (router != NULL)
		zmq_close(router);
	if (zap != NULL)
		zmq_close(zap);
	if (ctx != NULL)
		zmq_ctx_term(ctx);
	free(arr);
	free(pool);
	free(buf);
	return rc;
}

/* ---- the sender ---- */

struct sender {
	void *dealer;
	const struct opts *o;
	int k;
	uint8_t *pool, *buf;
	unsigned long msgs;     /* messages sent */
};

/* Send a control message, retrying while not yet connected (ZMQ_IMMEDIATE
 * refuses until the handshake is done), and wait for its answer into
 * text (a mark's) ; 0 or -1. */
static int
s_control(struct sender *s, uint8_t type, char *text, size_t cap)
{
	zmq_pollitem_t it = { s->dealer, 0, ZMQ_POLLIN, 0 };
	zmq_msg_t m;
	double until = kp_mono_s() + WAIT_MS / 1000.0;
	size_t n;

	while (zmq_send(s->dealer, &type, 1, ZMQ_DONTWAIT) < 0) {
		if (zmq_errno() != EAGAIN || kp_mono_s() > until) {
			fprintf(stderr, "zmqpack: sender: cannot reach the "
			    "receiver: %s\n", zmq_strerror(zmq_errno()));
			return -1;
		}
		usleep(10000);
	}
	if (type == T_QUIT)
		return 0;
	if (zmq_poll(&it, 1, WAIT_MS) <= 0)
		goto late;
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, s->dealer, 0) < 0 || zmq_msg_size(&m) < 1 ||
	    ((uint8_t *)zmq_msg_data(&m))[0] != type) {
		zmq_msg_close(&m);
		goto late;
	}
	n = zmq_msg_size(&m) - 1 < cap - 1 ? zmq_msg_size(&m) - 1 : cap - 1;
	memcpy(text, (uint8_t *)zmq_msg_data(&m) + 1, n);
	text[n] = '\0';
	zmq_msg_close(&m);
	return 0;
late:
	fprintf(stderr, "zmqpack: sender: no answer to a control message\n");
	return -1;
}

/* One message of k events (numbered from first) sent; 0, 1 would block,
 * -1 error. */
static int
s_send_events(struct sender *s, long first, long k)
{
	size_t len = 1, b = (size_t)s->o->bytes;
	long i;

	s->buf[0] = T_EVENTS;
	for (i = 0; i < k; i++) {
		s_put32(s->buf + len, (uint32_t)b);
		memcpy(s->buf + len + 4, s->pool + (size_t)((first + i) %
		    POOL) * b, b);
		len += 4 + b;
	}
	if (zmq_send(s->dealer, s->buf, len, ZMQ_DONTWAIT) < 0)
		return zmq_errno() == EAGAIN ? 1 : -1;
	s->msgs++;
	return 0;
}

/* Receipts waiting, counted into *done; -1 on a malformed answer. */
static int
s_take_receipts(struct sender *s, long *done)
{
	zmq_msg_t m;
	long n;

	for (;;) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s->dealer, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return 0;
		}
		n = zmq_msg_size(&m) > 0 && ((uint8_t *)zmq_msg_data(&m))[0] ==
		    T_RECEIPTS ? s_count(zmq_msg_data(&m), zmq_msg_size(&m)) :
		    -1;
		zmq_msg_close(&m);
		if (n < 1) {
			fprintf(stderr, "zmqpack: sender: malformed answer\n");
			return -1;
		}
		*done += n;
	}
}

/* How long to wait for the next receipt or the next send the rate allows,
 * ms. */
static int
s_timeout(long sent, long n, long rate, long burst, double t0)
{
	double due;

	if (rate <= 0 || sent >= n)
		return WAIT_MS;
	due = (double)(sent / burst * burst) / (double)rate -
	    (kp_mono_s() - t0);
	return due <= 0 ? 0 : (int)(due * 1000.0) + 1;
}

/* n events streamed, K a message, at most W unanswered and, with rate,
 * no more than rate a second since the start, in bursts of `burst`
 * events (1: as a 1 ms poll allows; the daemon's loop sends what a
 * receipt batch of up to batch_max freed at once); 0 or -1. */
static int
s_stream(struct sender *s, long n, long rate)
{
	zmq_pollitem_t it = { s->dealer, 0, ZMQ_POLLIN, 0 };
	long sent = 0, done = 0, k, allowed = n, last = -1;
	double t0 = kp_mono_s(), quiet = t0;
	bool blocked;
	int rc, wait;

	while (done < n) {
		if (rate > 0)
			allowed = ((long)((kp_mono_s() - t0) * (double)rate) /
			    s->o->burst + 1) * s->o->burst;
		blocked = false;
		while (sent < n && sent < allowed) {
			k = n - sent < s->k ? n - sent : s->k;
			if (sent - done + k > s->o->window) {
				blocked = true;
				break;
			}
			if ((rc = s_send_events(s, sent, k)) < 0) {
				fprintf(stderr, "zmqpack: sender: send: %s\n",
				    zmq_strerror(zmq_errno()));
				return -1;
			}
			if (rc > 0) {
				blocked = true;
				break;
			}
			sent += k;
		}
		/* the window full or the pipe at its HWM: only a receipt
		 * frees a send, so wait for one (not for the rate's next
		 * tick, which may have passed: a spin) */
		wait = blocked ? WAIT_MS : s_timeout(sent, n, rate,
		    s->o->burst, t0);
		if (zmq_poll(&it, 1, wait) < 0 ||
		    s_take_receipts(s, &done) != 0)
			return -1;
		if (done != last || sent == done) {  /* nothing owed: pacing */
			last = done;
			quiet = kp_mono_s();
		} else if (kp_mono_s() - quiet > WAIT_MS / 1000.0) {
			fprintf(stderr, "zmqpack: sender: no receipts for %d s "
			    "(%ld of %ld answered)\n", WAIT_MS / 1000, done, n);
			return -1;
		}
	}
	return 0;
}

static void *
s_dealer_open(void *ctx, const struct opts *o, int k, const struct keys *ks)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	int one = 1, zero = 0, ivl = 100, ivl_max = 5000, hwm = 100000;
	int64_t need = 1 + (int64_t)k * (4 + o->receipt) + 128;
	int64_t maxmsg = need > RECEIPT_MAX ? need : RECEIPT_MAX;
	char ep[64];

	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%ld", o->port);
	if (s == NULL ||
	    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, ks->spk, 32) ||
	    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, ks->cpk, 32) ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, ks->csk, 32) ||
	    zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one)) ||
	    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) ||
	    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) ||
	    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max,
	    sizeof(ivl_max)) || zmq_connect(s, ep) != 0) {
		fprintf(stderr, "zmqpack: sender: cannot connect to %s: %s\n",
		    ep, zmq_strerror(zmq_errno()));
		if (s != NULL)
			zmq_close(s);
		return NULL;
	}
	return s;
}

static int
s_parse_mark(const char *text, struct cpu *c)
{
	unsigned long long a, i, r;

	if (sscanf(text, "%llu %llu %llu", &a, &i, &r) != 3) {
		fprintf(stderr, "zmqpack: sender: bad mark answer\n");
		return -1;
	}
	c->app = a;
	c->io = i;
	c->other = r;
	return 0;
}

static double
s_us(uint64_t a, uint64_t b, long n)
{
	return (double)(b - a) / 1000.0 / (double)n;
}

static void
s_print(const struct sender *s, double wall, const struct cpu c[2],
    const struct cpu r[2])
{
	long e = s->o->events;
	double sa = s_us(c[0].app, c[1].app, e), si = s_us(c[0].io, c[1].io, e);
	double ra = s_us(r[0].app, r[1].app, e), ri = s_us(r[0].io, r[1].io, e);
	double so = s_us(c[0].other, c[1].other, e);
	double ro = s_us(r[0].other, r[1].other, e);

	printf("zmqpack k=%d events=%ld bytes=%ld receipt=%ld window=%ld "
	    "rate=%ld burst=%ld msgs=%lu wall_s=%.3f eps=%.0f "
	    "snd_app_us=%.2f snd_io_us=%.2f "
	    "rcv_app_us=%.2f rcv_io_us=%.2f io_us=%.2f app_us=%.2f "
	    "other_us=%.2f total_us=%.2f clock=%s\n", s->k, e, s->o->bytes,
	    s->o->receipt, s->o->window, s->o->rate, s->o->burst, s->msgs,
	    wall, (double)e / wall, sa, si, ra, ri, si + ri, sa + ra, so + ro,
	    sa + si + ra + ri + so + ro,
	    s_ticks_used ? "stat" : "schedstat");
	fflush(stdout);
}

static int
s_sender(const struct opts *o, int k, const struct keys *ks)
{
	struct sender s = { .o = o, .k = k };
	void *ctx = zmq_ctx_new();
	struct cpu c[2], r[2];
	char text[128];
	double t0, t1;
	size_t i;
	long warm = o->events / 10 > 20000 ? 20000 : o->events / 10 + 1;
	int rc = -1;

	s.pool = malloc((size_t)POOL * (size_t)o->bytes);
	s.buf = malloc(1 + (size_t)k * (4 + (size_t)o->bytes));
	if (ctx == NULL || s.pool == NULL || s.buf == NULL)
		goto out;
	for (i = 0; i < (size_t)POOL * (size_t)o->bytes; i++)
		s.pool[i] = (uint8_t)(i * 131 + 7);
	if ((s.dealer = s_dealer_open(ctx, o, k, ks)) == NULL ||
	    s_control(&s, T_MARK, text, sizeof(text)) != 0 ||
	    s_stream(&s, warm, 0) != 0 ||
	    s_control(&s, T_MARK, text, sizeof(text)) != 0 ||
	    s_parse_mark(text, &r[0]) != 0 || s_cpu_read(&c[0]) != 0)
		goto out;
	s.msgs = 0;
	t0 = kp_mono_s();
	if (s_stream(&s, o->events, o->rate) != 0)
		goto out;
	t1 = kp_mono_s();
	if (s_cpu_read(&c[1]) != 0 ||
	    s_control(&s, T_MARK, text, sizeof(text)) != 0 ||
	    s_parse_mark(text, &r[1]) != 0)
		goto out;
	s_print(&s, t1 - t0, c, r);
	rc = s_control(&s, T_QUIT, NULL, 0);
	usleep(100000);   /* LINGER 0: let the quit leave before the close */
out:
	if (s.dealer != NULL)
		zmq_close(s.dealer);
	if (ctx != NULL)
		zmq_ctx_term(ctx);
	free(s.pool);
	free(s.buf);
	return rc;
}

/* ---- --options: which draft options this libzmq takes ---- */

/* Draft options: zmq.h defines them only with ZMQ_BUILD_DRAFT_API. */
#define OPT_METADATA 95
#define OPT_IN_BATCH_SIZE 101
#define OPT_OUT_BATCH_SIZE 102

static void
s_report_opt(const char *name, int opt, int rc)
{
	printf("zmqpack-option %s (%d): setsockopt %s\n", name, opt,
	    rc == 0 ? "accepted" : zmq_strerror(zmq_errno()));
}

/* Receive one message on sock and print what the peer of its connection
 * announced as X-Kp-Pack, if anything; 0 or -1. */
static int
s_recv_report_prop(void *sock, const char *who)
{
	zmq_msg_t m;
	const char *v;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, sock, 0) < 0) {
		zmq_msg_close(&m);
		return -1;
	}
	v = zmq_msg_gets(&m, "X-Kp-Pack");
	printf("zmqpack-option %s: X-Kp-Pack = %s\n", who, v ? v : "(none)");
	zmq_msg_close(&m);
	return 0;
}

static int
s_curve_pair(void *r, void *d, const struct keys *ks)
{
	int one = 1, zero = 0, wait = 5000;

	return zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
	    zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, ks->ssk, 32) ||
	    zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, ks->spk, 32) ||
	    zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, ks->cpk, 32) ||
	    zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, ks->csk, 32) ||
	    zmq_setsockopt(r, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(r, ZMQ_RCVTIMEO, &wait, sizeof(wait)) ||
	    zmq_setsockopt(d, ZMQ_RCVTIMEO, &wait, sizeof(wait)) ? -1 : 0;
}

/* The draft options a capability exchange or larger I/O batches would
 * use, tried on this libzmq; with ZMQ_METADATA, whether each side of a
 * CURVE connection reads the other's property off a message. */
static int
s_options_check(const struct opts *o, const struct keys *ks)
{
	void *ctx = zmq_ctx_new(), *r = NULL, *d = NULL;
	int batch = 65536, n, rc = -1;
	char ep[64], rid[256];

	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%ld", o->port);
	if (ctx == NULL || (r = zmq_socket(ctx, ZMQ_ROUTER)) == NULL ||
	    (d = zmq_socket(ctx, ZMQ_DEALER)) == NULL ||
	    s_curve_pair(r, d, ks) != 0)
		goto out;
	s_report_opt("ZMQ_IN_BATCH_SIZE", OPT_IN_BATCH_SIZE, zmq_setsockopt(d,
	    OPT_IN_BATCH_SIZE, &batch, sizeof(batch)));
	s_report_opt("ZMQ_OUT_BATCH_SIZE", OPT_OUT_BATCH_SIZE,
	    zmq_setsockopt(d, OPT_OUT_BATCH_SIZE, &batch, sizeof(batch)));
	s_report_opt("ZMQ_METADATA on the ROUTER", OPT_METADATA,
	    zmq_setsockopt(r, OPT_METADATA, "X-Kp-Pack:receipts", 18));
	s_report_opt("ZMQ_METADATA on the DEALER", OPT_METADATA,
	    zmq_setsockopt(d, OPT_METADATA, "X-Kp-Pack:envelopes", 19));
	if (zmq_bind(r, ep) != 0 || zmq_connect(d, ep) != 0 ||
	    zmq_send(d, "?", 1, 0) < 0 ||
	    (n = zmq_recv(r, rid, sizeof(rid), 0)) < 0 ||
	    (size_t)n > sizeof(rid) ||   /* truncated: cannot answer it */
	    s_recv_report_prop(r, "the ROUTER reads the DEALER's") != 0 ||
	    zmq_send(r, rid, (size_t)n, ZMQ_SNDMORE) < 0 ||
	    zmq_send(r, "!", 1, 0) < 0 ||
	    s_recv_report_prop(d, "the DEALER reads the ROUTER's") != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "zmqpack: --options on %s: %s\n", ep,
		    zmq_strerror(zmq_errno()));
	if (r != NULL)
		zmq_close(r);
	if (d != NULL)
		zmq_close(d);
	if (ctx != NULL)
		zmq_ctx_term(ctx);
	return rc;
}

/* ---- the driver ---- */

static int
s_wait(pid_t pid, const char *who, int k)
{
	int st;

	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "zmqpack: the %s failed at k=%d\n", who, k);
		return -1;
	}
	return 0;
}

/* The receiver after the sender ended: it stops at the sender's quit; a
 * quit lost to LINGER 0 is no failure (its figures came with the last
 * mark), so after 2 s it is stopped.  -1 if it failed by itself. */
static int
s_reap_receiver(pid_t rcv, int k)
{
	int st, i;

	for (i = 0; i < 200; i++) {
		if (waitpid(rcv, &st, WNOHANG) == rcv) {
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				return 0;
			fprintf(stderr, "zmqpack: the receiver failed at k=%d\n",
			    k);
			return -1;
		}
		usleep(10000);
	}
	kill(rcv, SIGTERM);
	waitpid(rcv, NULL, 0);
	return 0;
}

/* One K: the receiver and the sender forked (each makes its own context
 * after the fork). */
static int
s_one(const struct opts *o, int k, const struct keys *ks)
{
	pid_t rcv, snd;

	fflush(stdout);
	if ((rcv = fork()) < 0)
		return -1;
	if (rcv == 0)
		_exit(s_receiver(o, k, ks) == 0 ? 0 : 1);
	if ((snd = fork()) < 0) {
		kill(rcv, SIGTERM);
		waitpid(rcv, NULL, 0);
		return -1;
	}
	if (snd == 0)
		_exit(s_sender(o, k, ks) == 0 ? 0 : 1);
	if (s_wait(snd, "sender", k) != 0) {
		kill(rcv, SIGTERM);
		waitpid(rcv, NULL, 0);
		return -1;
	}
	return s_reap_receiver(rcv, k);
}

static int
s_keys(struct keys *ks)
{
	char pub[41], sec[41];

	if (zmq_curve_keypair(pub, sec) != 0 ||
	    zmq_z85_decode(ks->spk, pub) == NULL ||
	    zmq_z85_decode(ks->ssk, sec) == NULL ||
	    zmq_curve_keypair(pub, sec) != 0 ||
	    zmq_z85_decode(ks->cpk, pub) == NULL ||
	    zmq_z85_decode(ks->csk, sec) == NULL) {
		fprintf(stderr, "zmqpack: no CURVE in this libzmq: %s\n",
		    zmq_strerror(zmq_errno()));
		return -1;
	}
	return 0;
}

static void
s_usage(FILE *f)
{
	fprintf(f,
	    "usage: zmqpack [--events E] [--bytes B] [--receipt R] "
	    "[--window W] [--k K1,K2,...]\n"
	    "               [--port P] [--rate EPS [--burst N]]\n"
	    "       zmqpack --options [--port P]\n"
	    "  CURVE DEALER -> ROUTER over loopback TCP in two processes, the "
	    "daemons'\n  socket options; E events of B bytes, K per message, W "
	    "in flight (and at\n  most EPS a second, N at a time, with --rate); "
	    "each message answered with\n  K receipts of R bytes.  One line per "
	    "K: events/s and CPU us per event of\n  each side's application and "
	    "ZeroMQ I/O thread.\n"
	    "  --options: which draft socket options (ZMQ_METADATA, "
	    "ZMQ_IN/OUT_BATCH_SIZE)\n  this libzmq accepts, and whether "
	    "each side reads the other's metadata.\n"
	    "  defaults: --events 200000 --bytes 1835 --receipt 665 "
	    "--window 2048\n"
	    "            --k 1,2,4,8,16,32,64 --port 34090 (one port "
	    "per K: P, P+1, ...)\n"
	    "            --rate 0 (as fast as the window allows) --burst 1\n");
}

/* A whole number in [lo, hi] from optarg; -1 with a message otherwise. */
static int
s_num(const char *what, const char *arg, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "zmqpack: %s must be a whole number from %ld "
		    "to %ld, not '%s'\n", what, lo, hi, arg);
		return -1;
	}
	*out = v;
	return 0;
}

static int
s_klist(const char *arg, struct opts *o)
{
	char copy[256], *tok, *save = NULL;
	long v;

	if (strlen(arg) >= sizeof(copy)) {
		fprintf(stderr, "zmqpack: --k: list too long\n");
		return -1;
	}
	snprintf(copy, sizeof(copy), "%s", arg);
	o->nk = 0;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (o->nk == NK_MAX) {
			fprintf(stderr, "zmqpack: --k: at most %d values\n",
			    NK_MAX);
			return -1;
		}
		if (s_num("each --k", tok, 1, K_MAX, &v) != 0)
			return -1;
		o->k[o->nk++] = (int)v;
	}
	if (o->nk == 0) {
		fprintf(stderr, "zmqpack: --k: no value\n");
		return -1;
	}
	return 0;
}

static int
s_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "events", required_argument, NULL, 'e' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "receipt", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'w' },
		{ "k", required_argument, NULL, 'k' },
		{ "port", required_argument, NULL, 'p' },
		{ "rate", required_argument, NULL, 'R' },
		{ "burst", required_argument, NULL, 'B' },
		{ "options", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c, i, rc = 0;

	*o = (struct opts){ .events = 200000, .bytes = 1835, .receipt = 665,
	    .window = 2048, .port = 34090, .burst = 1,
	    .k = { 1, 2, 4, 8, 16, 32, 64 }, .nk = 7 };
	while (rc == 0 && (c = getopt_long(argc, argv, "", lo, NULL)) != -1)
		switch (c) {
		case 'e': rc = s_num("--events", optarg, 1, 100000000,
			      &o->events); break;
		case 'b': rc = s_num("--bytes", optarg, 1, 65536, &o->bytes);
			  break;
		case 'r': rc = s_num("--receipt", optarg, 1, 2048,
			      &o->receipt); break;
		case 'w': rc = s_num("--window", optarg, 1, 1000000,
			      &o->window); break;
		case 'k': rc = s_klist(optarg, o); break;
		case 'p': rc = s_num("--port", optarg, 1, 65535, &o->port);
			  break;
		case 'R': rc = s_num("--rate", optarg, 0, 100000000, &o->rate);
			  break;
		case 'B': rc = s_num("--burst", optarg, 1, 1000000, &o->burst);
			  break;
		case 'o': o->options = true; break;
		case 'h': s_usage(stdout); exit(0);
		default: s_usage(stderr); return -1;
		}
	if (rc != 0)
		return -1;
	if (optind < argc) {
		fprintf(stderr, "zmqpack: unexpected argument '%s'\n",
		    argv[optind]);
		s_usage(stderr);
		return -1;
	}
	for (i = 0; i < o->nk; i++)
		if (o->k[i] > o->window) {
			fprintf(stderr, "zmqpack: --k %d is more than the window "
			    "(%ld): nothing could be sent\n", o->k[i], o->window);
			return -1;
		}
	if (o->port + o->nk - 1 > 65535) {
		fprintf(stderr, "zmqpack: --port %ld: one port per K needed, "
		    "up to %ld\n", o->port, o->port + o->nk - 1);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct opts o, one;
	struct keys ks;
	int i, rc = 0;

	if (s_opts(argc, argv, &o) != 0 || s_keys(&ks) != 0)
		return 2;
	if (o.options)
		return s_options_check(&o, &ks) == 0 ? 0 : 1;
	printf("# zmqpack: libzmq %d.%d.%d, CURVE, loopback TCP; us per event "
	    "over the %ld events after a warm-up\n", ZMQ_VERSION_MAJOR,
	    ZMQ_VERSION_MINOR, ZMQ_VERSION_PATCH, o.events);
	for (i = 0; i < o.nk && rc == 0; i++) {
		one = o;
		one.port = o.port + i;  /* no TIME_WAIT or slow close between K */
		rc = s_one(&one, o.k[i], &ks);
	}
	return rc == 0 ? 0 : 1;
}
