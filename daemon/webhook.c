/*
 * webhook.c: posting the notices of webhook.h.
 *
 * One attempt at a time, oldest notice first (a receiver sees them in
 * the order the acts committed), over a non-blocking socket to a local
 * address (config_webhook_url admits only loopback: the notice leaves no
 * host, so it needs no TLS).  Each attempt moves through
 *   1. S_IDLE: nothing queued, or waiting out the backoff of the oldest;
 *   2. S_CONNECT (s_start): connect() in progress;
 *   3. S_SEND (s_send): the request written as the socket takes it;
 *   4. S_RECV (s_recv): the status line read; then s_finish records it:
 *      2xx delivered, anything else (or no answer in S_ATTEMPT_MS) retried
 *      after 1 s, 2 s, 4 s ... up to S_BACKOFF_MAX_MS, and given up after
 *      S_MAX_ATTEMPTS (the row says so; the case system can still poll).
 * Every step is tried from the daemon's loop (rest_run) and returns at
 * once when the socket is not ready; the socket sits in the REST API's
 * epoll set so its readiness wakes the loop.
 *
 * Backoff and timeouts run on the monotonic clock: they are about the
 * network, not about the chain's (possibly simulated) time.  The rows'
 * times are the daemon's clock, like every other record.  Must never
 * block, never send a payload value or case reference, and never follow
 * a redirect to somewhere else.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "rest.h"
#include "store_webhook.h"
#include "util.h"
#include "webhook.h"

#define S_ATTEMPT_MS 5000            /* connect, send and answer */
#define S_BACKOFF_MS 1000            /* after the first failure */
#define S_BACKOFF_MAX_MS 60000
#define S_MAX_ATTEMPTS 10            /* about 8.5 minutes in all */
#define S_KEEP_MS (7ULL * 24 * 3600 * 1000)  /* settled rows kept */
#define S_PRUNE_EVERY_MS (3600ULL * 1000)

enum { S_IDLE, S_CONNECT, S_SEND, S_RECV };

struct webhook {
	struct kpd *d;
	struct sockaddr_storage sa;
	socklen_t salen;
	char host[80];                /* for the Host header */
	char path[200];
	int phase;
	int fd;
	bool queued;                  /* the table may hold a notice */
	uint64_t retry_at;            /* monotonic ms: the oldest's backoff */
	uint64_t deadline;            /* monotonic ms: this attempt's end */
	uint64_t prune_at;            /* monotonic ms */
	webhook_row_t row;            /* the notice being posted */
	char req[768];
	size_t req_len, sent;
	char resp[256];
	size_t resp_len;
};

static const char *const s_kinds[] = { "event", "receipt", "overdue" };

static uint64_t
s_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
webhook_notice(struct kpd *d, enum webhook_kind kind, const uint8_t id[16],
    kp_err_t *err)
{
	webhook_t *w = rest_webhook(d->rest);

	/* only while a poster runs: it made the table (a webhook added by
	 * a reload starts with the next start) */
	if (w == NULL || (unsigned)kind > WEBHOOK_OVERDUE)
		return 0;
	if (store_webhook_add(d->store, s_kinds[kind], id, kp_now_ms(),
	    err) != 0)
		return -1;
	webhook_poke(w);
	return 0;
}

bool
webhook_running(struct kpd *d)
{
	return rest_webhook(d->rest) != NULL;
}

webhook_t *
webhook_new(struct kpd *d, kp_err_t *err)
{
	webhook_t *w = calloc(1, sizeof(*w));
	const char *path;

	if (w == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "webhook: out of memory");
		return NULL;
	}
	w->d = d;
	w->fd = -1;
	w->queued = true;  /* what an earlier run left undelivered */
	if (config_webhook_url(d->cfg.rest_webhook, &w->sa, &w->salen,
	    w->host, sizeof(w->host), &path) != 0 ||
	    strlen(path) >= sizeof(w->path)) {
		kp_fail(err, KP_ERR_INVALID_ARG, "webhook: '%s' is not a local "
		    "http:// URL", d->cfg.rest_webhook);
		free(w);
		return NULL;
	}
	snprintf(w->path, sizeof(w->path), "%s", path);
	if (store_webhook_init(d->store, err) != 0) {
		free(w);
		return NULL;
	}
	log_info("webhook: notices go to %s", d->cfg.rest_webhook);
	return w;
}

/* Close the attempt's socket (and take it out of epfd). */
static void
s_close(webhook_t *w, int epfd)
{
	if (w->fd >= 0) {
		if (epfd >= 0)
			(void)epoll_ctl(epfd, EPOLL_CTL_DEL, w->fd, NULL);
		close(w->fd);
	}
	w->fd = -1;
	w->phase = S_IDLE;
}

void
webhook_destroy(webhook_t **self_p)
{
	webhook_t *w = self_p ? *self_p : NULL;

	if (w == NULL)
		return;
	s_close(w, -1);  /* the fd leaves epoll as it closes */
	free(w);
	*self_p = NULL;
}

void
webhook_poke(webhook_t *w)
{
	if (w != NULL)
		w->queued = true;
}

/* Record how attempt ended (status: HTTP, 0 for none) and plan the next. */
static void
s_finish(webhook_t *w, int epfd, int status)
{
	bool ok = status >= 200 && status <= 299;
	uint32_t n = w->row.attempts + 1;
	bool give_up = !ok && n >= S_MAX_ATTEMPTS;
	uint64_t backoff = S_BACKOFF_MS;
	char id[37];
	kp_err_t e;

	s_close(w, epfd);
	kpd_id(w->row.event_id, id);
	if (store_webhook_attempt(w->d->store, w->row.seq, status, ok, give_up,
	    kp_now_ms(), &e) != 0)
		log_warnx("webhook: %s (notice %llu is posted again)", e.msg,
		    (unsigned long long)w->row.seq);
	backoff <<= n - 1 < 6 ? n - 1 : 6;  /* 1 s, 2 s, 4 s, ... */
	backoff = backoff < S_BACKOFF_MAX_MS ? backoff : S_BACKOFF_MAX_MS;
	w->retry_at = ok || give_up ? 0 : s_mono_ms() + backoff;
	w->queued = true;  /* the next one, or this one again */
	if (ok)
		log_info("webhook: notice %llu (%s, event %s) delivered on "
		    "attempt %u", (unsigned long long)w->row.seq, w->row.kind, id,
		    w->row.attempts + 1);
	else
		log_warnx("webhook: notice %llu (%s, event %s) attempt %u: %s%d; "
		    "%s", (unsigned long long)w->row.seq, w->row.kind, id,
		    w->row.attempts + 1, status ? "HTTP " : "no answer ",
		    status, give_up ? "given up" : "retried later");
}

/* The request of notice w->row into w->req. */
static void
s_request(webhook_t *w)
{
	char id[37], at[32], body[256];
	int n;

	kpd_id(w->row.event_id, id);
	kp_time_format(w->row.created_ms, at);
	n = snprintf(body, sizeof(body), "{\"kind\":\"%s\",\"event_id\":\"%s\","
	    "\"notice\":%llu,\"at_ms\":%llu,\"at\":\"%s\"}", w->row.kind, id,
	    (unsigned long long)w->row.seq,
	    (unsigned long long)w->row.created_ms, at);
	w->req_len = (size_t)snprintf(w->req, sizeof(w->req), "POST %s "
	    "HTTP/1.1\r\nHost: %s\r\nUser-Agent: ketenpostd/%s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %d\r\n"
	    "Connection: close\r\n\r\n%s", w->path, w->host, KP_VERSION, n,
	    body);
	w->sent = w->resp_len = 0;
}

/* Begin an attempt at the oldest open notice, if one is due. */
static void
s_start(webhook_t *w, int epfd)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	bool found = false;
	kp_err_t e;

	if (!w->queued || s_mono_ms() < w->retry_at)
		return;
	if (store_webhook_next(w->d->store, &w->row, &found, &e) != 0) {
		log_warnx("webhook: %s", e.msg);
		w->retry_at = s_mono_ms() + S_BACKOFF_MS;
		return;
	}
	if (!found) {
		w->queued = false;
		return;
	}
	s_request(w);
	w->deadline = s_mono_ms() + S_ATTEMPT_MS;
	w->phase = S_CONNECT;
	w->fd = socket(w->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (w->fd < 0 || (connect(w->fd, (struct sockaddr *)&w->sa,
	    w->salen) != 0 && errno != EINPROGRESS) ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, w->fd, &ev) != 0)
		s_finish(w, epfd, 0);
}

/* Is fd ready for events (without waiting)? */
static bool
s_ready(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, 0) == 1 && p.revents != 0;
}

static void
s_send(webhook_t *w, int epfd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	ssize_t n;

	if (!s_ready(w->fd, POLLOUT))
		return;
	if (w->phase == S_CONNECT) {
		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 ||
		    soerr != 0) {
			s_finish(w, epfd, 0);
			return;
		}
		w->phase = S_SEND;
	}
	n = send(w->fd, w->req + w->sent, w->req_len - w->sent, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		s_finish(w, epfd, 0);
		return;
	}
	w->sent += (size_t)n;
	if (w->sent == w->req_len) {
		w->phase = S_RECV;
		if (epoll_ctl(epfd, EPOLL_CTL_MOD, w->fd, &ev) != 0)
			s_finish(w, epfd, 0);
	}
}

/* The status of a complete status line in resp (-1: not yet, 0: bad). */
static int
s_status(const webhook_t *w)
{
	int major, minor, status;

	if (memchr(w->resp, '\n', w->resp_len) == NULL)
		return w->resp_len == sizeof(w->resp) - 1 ? 0 : -1;
	if (sscanf(w->resp, "HTTP/%d.%d %3d", &major, &minor, &status) != 3 ||
	    status < 100 || status > 599)
		return 0;
	return status;
}

static void
s_recv(webhook_t *w, int epfd)
{
	ssize_t n;
	int status;

	if (!s_ready(w->fd, POLLIN))
		return;
	n = recv(w->fd, w->resp + w->resp_len, sizeof(w->resp) - 1 -
	    w->resp_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		w->resp_len += (size_t)n;
		w->resp[w->resp_len] = '\0';
	}
	if ((status = s_status(w)) >= 0)
		s_finish(w, epfd, status);
	else if (n <= 0)
		s_finish(w, epfd, 0);  /* closed before a status line */
}

void
webhook_run(webhook_t *w, int epfd)
{
	uint64_t now;
	kp_err_t e;

	if (w == NULL)
		return;
	now = s_mono_ms();
	if (w->phase != S_IDLE && now >= w->deadline) {
		s_finish(w, epfd, 0);
		now = s_mono_ms();
	}
	if (w->phase == S_IDLE && now >= w->prune_at) {
		w->prune_at = now + S_PRUNE_EVERY_MS;
		if (store_webhook_prune(w->d->store, kp_now_ms() > S_KEEP_MS ?
		    kp_now_ms() - S_KEEP_MS : 0, &e) != 0)
			log_warnx("webhook: %s", e.msg);
	}
	if (w->phase == S_IDLE)
		s_start(w, epfd);
	if (w->phase == S_CONNECT || w->phase == S_SEND)
		s_send(w, epfd);
	if (w->phase == S_RECV)
		s_recv(w, epfd);
}

uint64_t
webhook_wait_ms(const webhook_t *w, uint64_t cap)
{
	uint64_t now = s_mono_ms(), at;

	if (w == NULL)
		return cap;
	if (w->phase != S_IDLE)
		at = w->deadline;       /* readiness wakes the loop sooner */
	else if (w->queued)
		at = w->retry_at;
	else
		return cap;
	return at <= now ? 0 : (at - now < cap ? at - now : cap);
}
