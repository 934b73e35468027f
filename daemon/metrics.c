/*
 * metrics.c: Prometheus metrics of one ketenpostd, served by libmicrohttpd.
 *
 * Owns the counters (one row per metric family and label set, in a small
 * array: a daemon has a few dozen) and the HTTP server.  It must never
 * expose a case reference, a pseudonym, a payload value or an event id:
 * labels are partner OINs, event type names and refusal reasons only.
 *
 * Threading: none.  libmicrohttpd runs in "external" mode with epoll:
 * its epoll descriptor is one more item in the daemon's zmq_poll set
 * (main.c), and metrics_run() calls MHD_run(), which never blocks, from
 * the daemon's own thread.  The scrape handler therefore reads the store
 * (a SQLite connection opened without a mutex) and the counters without
 * any locking.  The alternative, MHD's own thread, would need either a
 * second database connection plus a lock around the counters, or copies
 * handed between threads; a scrape costs a few indexed queries, so
 * serving it in the loop is the simpler safe choice.  A slow or stuck
 * client cannot stall the loop: MHD only does the I/O that is ready, and
 * drops a connection idle for 10 s.
 *
 * Counters count at the point of the log line that reports the act; an
 * act inside a database batch that is then rolled back as a whole (a
 * full disk) may have been counted.  Gauges are read at scrape time.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <netinet/in.h>

#include <microhttpd.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "daemon.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define S_CONN_LIMIT 16
#define S_CONN_TIMEOUT_S 10

/* A counter is found by the arguments of metrics_count that made it
 * (fam, partner, type, reason: its key), so an increment compares a few
 * values and formats nothing; its label text is made once, when it is
 * made (formatting it per increment was 2% of a sender's loop in a
 * drain).  Arguments that give the same labels as another key's (a
 * partner cut or with other characters, a type without a name) find
 * their counter by its labels; keyed is false for a partner too long for
 * the key, which is then found by its labels each time. */
struct s_counter {
	enum metrics_counter fam;
	bool keyed, has_partner;
	char partner[24];
	int type, reason;
	char labels[128];              /* partner="..",type="..",reason=".." */
	uint64_t value;
};

struct metrics {
	struct s_counter *c;
	size_t n, cap;
	struct MHD_Daemon *mhd;
	struct kpd *d;                 /* read at scrape time */
};

/* Read-only table: name and help of each counter family. */
static const struct {
	const char *name, *help;
} s_fam[KPM_COUNT] = {
	[KPM_QUEUED] = { "ketenpost_events_queued_total",
	    "Events accepted from the local API and queued for a partner." },
	[KPM_SENT] = { "ketenpost_send_attempts_total",
	    "Envelopes handed to a partner link (first sends and resends)." },
	[KPM_RETRY] = { "ketenpost_retries_total",
	    "Resends of events whose receipt did not arrive in time." },
	[KPM_RECEIPT] = { "ketenpost_receipts_total",
	    "Signed receipts received for events sent, by reason "
	    "(none: delivered)." },
	[KPM_RECEIVED] = { "ketenpost_events_received_total",
	    "Events accepted into the inbox." },
	[KPM_REFUSED] = { "ketenpost_events_refused_total",
	    "Events received and refused with a negative receipt." },
	[KPM_DUPLICATE] = { "ketenpost_duplicates_total",
	    "Events received again, answered with the original receipt." },
	[KPM_DEAD] = { "ketenpost_dead_letters_total",
	    "Events sent that expired without a receipt." },
	[KPM_SIGNATURE] = { "ketenpost_envelope_signatures_total",
	    "Ed25519 signatures made over new envelopes: one per batch "
	    "(PROTOCOL.md 5.6) or per envelope signed alone." },
	[KPM_PACK] = { "ketenpost_packs_sent_total",
	    "Packs of several envelopes sent in one message (PROTOCOL.md "
	    "13.1); each envelope in one counts in send_attempts too." },
};

/* ---- a growing text buffer --------------------------------------- */

struct s_buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3)))
s_put(struct s_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *np;
	int n;

	if (b->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0,
	    fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (b->p != NULL && (size_t)n < b->cap - b->len) {
		b->len += (size_t)n;
		return;
	}
	need = b->len + (size_t)n + 1;
	if ((np = realloc(b->p, need * 2)) == NULL) {
		b->failed = true;
		return;
	}
	b->p = np;
	b->cap = need * 2;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* ---- counters ---------------------------------------------------- */

metrics_t *
metrics_new(void)
{
	return calloc(1, sizeof(metrics_t));
}

void
metrics_destroy(metrics_t **self_p)
{
	metrics_t *m = *self_p;

	if (m == NULL)
		return;
	if (m->mhd != NULL)
		MHD_stop_daemon(m->mhd);
	free(m->c);
	free(m);
	*self_p = NULL;
}

/* "REASON_BAD_SIGNATURE" -> "bad_signature". */
static void
s_reason_label(int reason, char *out, size_t len)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &kp__reason__descriptor, reason);
	const char *name = v != NULL ? v->name : "unknown";
	size_t i;

	if (strncmp(name, "REASON_", 7) == 0)
		name += 7;
	for (i = 0; name[i] != '\0' && i + 1 < len; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
}

/* Labels as exposition text; only digits, letters and '_' get in (OINs,
 * type and reason names), so nothing needs escaping. */
static void
s_labels(const char *partner, int type, int reason, char *out, size_t len)
{
	char r[48], p[24] = "";
	const char *t = type > 0 ? events_type_name(type) : NULL;
	size_t i, o = 0;

	for (i = 0; partner != NULL && partner[i] != '\0' && i + 1 <
	    sizeof(p); i++)
		p[i] = isdigit((unsigned char)partner[i]) ? partner[i] : '_';
	p[i] = '\0';
	out[0] = '\0';
	if (partner != NULL)
		o += (size_t)snprintf(out + o, len - o, "partner=\"%s\"", p);
	if (t != NULL && o < len)
		o += (size_t)snprintf(out + o, len - o, "%stype=\"%s\"",
		    o ? "," : "", t);
	if (reason >= 0 && o < len) {
		s_reason_label(reason, r, sizeof(r));
		snprintf(out + o, len - o, "%sreason=\"%s\"", o ? "," : "", r);
	}
}

/* Is x the counter made by exactly these arguments of metrics_count? */
static bool
s_same_key(const struct s_counter *x, enum metrics_counter c,
    const char *partner, int type, int reason)
{
	return x->keyed && x->fam == c && x->type == type &&
	    x->reason == reason && x->has_partner == (partner != NULL) &&
	    (partner == NULL || strcmp(x->partner, partner) == 0);
}

void
metrics_count(metrics_t *m, enum metrics_counter c, const char *partner,
    int type, int reason)
{
	char labels[128];
	struct s_counter *nc, *x;
	size_t i;

	if (m == NULL || c >= KPM_COUNT)
		return;
	for (i = 0; i < m->n; i++)
		if (s_same_key(&m->c[i], c, partner, type, reason)) {
			m->c[i].value++;
			return;
		}
	s_labels(partner, type, reason, labels, sizeof(labels));
	for (i = 0; i < m->n; i++)
		if (m->c[i].fam == c && strcmp(m->c[i].labels, labels) == 0) {
			m->c[i].value++;
			return;
		}
	if (m->n == m->cap) {
		nc = realloc(m->c, (m->cap ? m->cap * 2 : 32) * sizeof(*nc));
		if (nc == NULL)
			return;  /* a metric lost, never the daemon */
		m->c = nc;
		m->cap = m->cap ? m->cap * 2 : 32;
	}
	x = &m->c[m->n++];
	memset(x, 0, sizeof(*x));
	x->fam = c;
	x->has_partner = partner != NULL;
	x->keyed = partner == NULL || strlen(partner) < sizeof(x->partner);
	if (partner != NULL && x->keyed)
		memcpy(x->partner, partner, strlen(partner) + 1);
	x->type = type;
	x->reason = reason;
	memcpy(x->labels, labels, sizeof(labels));
	x->value = 1;
}

static void
s_render_counters(const metrics_t *m, struct s_buf *b)
{
	size_t i;
	int f;

	for (f = 0; f < KPM_COUNT; f++) {
		s_put(b, "# HELP %s %s\n# TYPE %s counter\n", s_fam[f].name,
		    s_fam[f].help, s_fam[f].name);
		for (i = 0; i < m->n; i++)
			if ((int)m->c[i].fam == f)
				s_put(b, "%s{%s} %llu\n", s_fam[f].name,
				    m->c[i].labels,
				    (unsigned long long)m->c[i].value);
	}
}

/* ---- gauges read at scrape time ----------------------------------- */

static void
s_gauge_head(struct s_buf *b, const char *name, const char *help)
{
	s_put(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void
s_render_queues(struct kpd *d, struct s_buf *b)
{
	static const char *const states[5] = { NULL, "pending", "delivered",
	    "rejected", "dead" };
	uint64_t counts[5] = { 0 }, unacked = 0, total = 0;
	kp_err_t e;
	int i;

	if (store_outbox_counts(d->store, counts, &e) == 0) {
		s_gauge_head(b, "ketenpost_outbox_events",
		    "Events in the outbox by delivery state (pending: the "
		    "send queue).");
		for (i = 1; i <= 4; i++)
			s_put(b, "ketenpost_outbox_events{state=\"%s\"} %llu\n",
			    states[i], (unsigned long long)counts[i]);
	}
	if (store_inbox_counts(d->store, &unacked, &total, &e) == 0) {
		s_gauge_head(b, "ketenpost_inbox_events",
		    "Events in the inbox (unacked: not yet handled).");
		s_put(b, "ketenpost_inbox_events{acked=\"false\"} %llu\n"
		    "ketenpost_inbox_events{acked=\"true\"} %llu\n",
		    (unsigned long long)unacked,
		    (unsigned long long)(total - unacked));
	}
}

/* Overdue expectations per partner (open, due at or before now). */
struct s_overdue {
	struct { char oin[21]; uint64_t n; } *p;
	size_t k, cap;
	uint64_t now;
	bool failed;
};

static int
s_overdue_cb(void *arg, const expect_row_t *x)
{
	struct s_overdue *o = arg;
	size_t i;
	void *np;

	if (x->answered || x->due_ms > o->now)
		return 0;
	for (i = 0; i < o->k && strcmp(o->p[i].oin, x->partner_oin) != 0; i++)
		;
	if (i == o->k) {
		if (o->k == o->cap) {
			np = realloc(o->p, (o->cap ? o->cap * 2 : 16) *
			    sizeof(*o->p));
			if (np == NULL) {
				o->failed = true;
				return 1;
			}
			o->p = np;
			o->cap = o->cap ? o->cap * 2 : 16;
		}
		memcpy(o->p[o->k].oin, x->partner_oin, 21);
		o->p[o->k++].n = 0;
	}
	o->p[i].n++;
	return 0;
}

static void
s_render_overdue(struct kpd *d, struct s_buf *b)
{
	struct s_overdue o;
	kp_err_t e;
	size_t i;

	memset(&o, 0, sizeof(o));
	o.now = kp_now_ms();
	/* only the open ones due, by their index: a scrape neither sorts
	 * nor decrypts the whole history (it took ~140 bytes of RAM per
	 * expectation ever sent, every scrape) */
	if (store_expect_open_due(d->store, o.now, s_overdue_cb, &o, &e) == 0 &&
	    !o.failed) {
		s_gauge_head(b, "ketenpost_overdue_expectations",
		    "Answers a partner owes that are past their lead time.");
		for (i = 0; i < o.k; i++)
			s_put(b, "ketenpost_overdue_expectations{partner=\"%s\"} "
			    "%llu\n", o.p[i].oin, (unsigned long long)o.p[i].n);
	}
	free(o.p);
}

static void
s_render_head(struct kpd *d, struct s_buf *b)
{
	uint64_t size = 0, time_ms = 0;
	uint8_t root[32], sig[64];
	bool found = false;
	kp_err_t e;

	if (store_head_last(d->store, &size, &time_ms, root, sig, &found,
	    &e) != 0 || !found)
		return;
	s_gauge_head(b, "ketenpost_audit_head_size",
	    "Entries covered by the last signed tree head of the audit log.");
	s_put(b, "ketenpost_audit_head_size %llu\n", (unsigned long long)size);
	s_gauge_head(b, "ketenpost_audit_head_timestamp_seconds",
	    "When the last tree head was signed (Unix time).");
	s_put(b, "ketenpost_audit_head_timestamp_seconds %.3f\n",
	    (double)time_ms / 1000.0);
}

/* Days from now until t (negative once past). */
static int
s_days_until(const ASN1_TIME *t, double *days)
{
	int d = 0, s = 0;

	if (t == NULL || !ASN1_TIME_diff(&d, &s, NULL, t))
		return -1;
	*days = (double)d + (double)s / 86400.0;
	return 0;
}

static void
s_render_cert(struct s_buf *b, const char *path, const char *oin,
    bool self)
{
	FILE *f = fopen(path, "r");
	X509 *x = NULL;
	double days;

	if (f == NULL)
		return;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x != NULL && s_days_until(X509_get0_notAfter(x), &days) == 0)
		s_put(b, "ketenpost_certificate_expiry_days{oin=\"%s\","
		    "self=\"%s\"} %.3f\n", oin, self ? "true" : "false", days);
	X509_free(x);
}

static void
s_render_crl(struct kpd *d, struct s_buf *b)
{
	char path[KP_PATH_MAX + 16];
	X509_CRL *crl = NULL;
	X509 *ca = NULL;
	double days;
	FILE *f;

	snprintf(path, sizeof(path), "%s/crl.pem", d->cfg.chain_dir);
	if ((f = fopen(path, "r")) != NULL) {
		crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (crl != NULL && s_days_until(X509_CRL_get0_nextUpdate(crl),
	    &days) == 0) {
		s_gauge_head(b, "ketenpost_crl_expiry_days", "Days until the "
		    "chain's CRL (crl.pem) must be replaced (nextUpdate).");
		s_put(b, "ketenpost_crl_expiry_days %.3f\n", days);
	}
	X509_CRL_free(crl);
	snprintf(path, sizeof(path), "%s/ca.crt", d->cfg.chain_dir);
	if ((f = fopen(path, "r")) != NULL) {
		ca = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (ca != NULL && s_days_until(X509_get0_notAfter(ca), &days) == 0) {
		s_gauge_head(b, "ketenpost_ca_expiry_days",
		    "Days until the chain CA certificate expires.");
		s_put(b, "ketenpost_ca_expiry_days %.3f\n", days);
	}
	X509_free(ca);
}

/* Own and partner certificates, as on disk (orgs/<OIN>/cert.pem). */
static void
s_render_certs(struct kpd *d, struct s_buf *b)
{
	char dir[KP_PATH_MAX + 8], path[2 * KP_PATH_MAX];
	struct dirent *de;
	DIR *dh;

	s_gauge_head(b, "ketenpost_certificate_expiry_days",
	    "Days until an organisation certificate expires (self: our own).");
	snprintf(path, sizeof(path), "%s/cert.pem", d->cfg.org_dir);
	s_render_cert(b, path, d->cfg.org, true);
	snprintf(dir, sizeof(dir), "%s/orgs", d->cfg.chain_dir);
	if ((dh = opendir(dir)) == NULL)
		return;
	while ((de = readdir(dh)) != NULL) {
		if (strlen(de->d_name) != 20 || strcmp(de->d_name,
		    d->cfg.org) == 0 || strspn(de->d_name, "0123456789") != 20)
			continue;
		snprintf(path, sizeof(path), "%s/%s/cert.pem", dir, de->d_name);
		s_render_cert(b, path, de->d_name, false);
	}
	closedir(dh);
}

static void
s_render_links(struct kpd *d, struct s_buf *b)
{
	size_t i;

	s_gauge_head(b, "ketenpost_partner_link_up",
	    "1 while the link to a partner is connected.");
	for (i = 0; i < d->n_links; i++)
		s_put(b, "ketenpost_partner_link_up{partner=\"%s\"} %d\n",
		    d->links[i].oin, d->links[i].up ? 1 : 0);
	s_gauge_head(b, "ketenpost_start_time_seconds",
	    "When this ketenpostd started (Unix time).");
	s_put(b, "ketenpost_start_time_seconds %.3f\n",
	    (double)d->started_ms / 1000.0);
	s_gauge_head(b, "ketenpost_build_info", "The ketenpost version.");
	s_put(b, "ketenpost_build_info{version=\"%s\"} 1\n", KP_VERSION);
}

char *
metrics_render(metrics_t *m, struct kpd *d)
{
	struct s_buf b = { NULL, 0, 0, false };

	s_put(&b, "%s", "");
	s_render_counters(m, &b);
	if (d != NULL) {
		s_render_queues(d, &b);
		s_render_overdue(d, &b);
		s_render_head(d, &b);
		s_render_crl(d, &b);
		s_render_certs(d, &b);
		s_render_links(d, &b);
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- HTTP ---------------------------------------------------------- */

static enum MHD_Result
s_reply(struct MHD_Connection *c, unsigned status, char *body,
    const char *type)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), body,
	    MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
s_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **con_cls)
{
	metrics_t *m = cls;
	char *body;

	(void)version;
	(void)upload;
	(void)con_cls;
	if (*upload_len != 0)
		return MHD_NO;  /* a body on a scrape: drop the connection */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return s_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    strdup("only GET /metrics\n"), "text/plain");
	if (strcmp(url, "/metrics") != 0)
		return s_reply(c, MHD_HTTP_NOT_FOUND,
		    strdup("not found; the metrics are at /metrics\n"),
		    "text/plain");
	if ((body = metrics_render(m, m->d)) == NULL)
		return MHD_NO;
	return s_reply(c, MHD_HTTP_OK, body,
	    "text/plain; version=0.0.4; charset=utf-8");
}

static void
s_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_warnx("metrics: %s", line);
}


int
metrics_listen(metrics_t *m, const char *listen, struct kpd *d,
    kp_err_t *err)
{
	struct sockaddr_storage sa;
	socklen_t len;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

	if (kp_parse_host_port(listen, &sa, &len) != 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "metrics: listen '%s' "
		    "is not ADDRESS:PORT", listen);
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->d = d;
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, s_handle, m,
	    MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,  /* first: MHD */
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)S_CONN_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)S_CONN_TIMEOUT_S,
	    MHD_OPTION_END);
	if (m->mhd == NULL)
		return kp_fail(err, KP_ERR_IO, "metrics: cannot listen on %s "
		    "(address in use, or not an address of this host?)", listen);
	log_info("metrics: serving http://%s/metrics", listen);
	return 0;
}

int
metrics_fd(const metrics_t *m)
{
	const union MHD_DaemonInfo *i;

	if (m == NULL || m->mhd == NULL)
		return -1;
	i = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	return i != NULL ? i->epoll_fd : -1;
}

uint64_t
metrics_wait_ms(metrics_t *m, uint64_t cap)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (m == NULL || m->mhd == NULL || MHD_get_timeout(m->mhd, &t) != MHD_YES)
		return cap;
	return t < cap ? (uint64_t)t : cap;
}

void
metrics_run(metrics_t *m)
{
	if (m != NULL && m->mhd != NULL)
		(void)MHD_run(m->mhd);
}
