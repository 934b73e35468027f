/*
 * config.c: read and validate ketenpostd.conf (see config.h and
 * docs/ketenpostd.conf.5).
 *
 * The syntax is lib/inifile.c's business: it hands out one physical line
 * at a time to inih, so every problem carries its real line number, and
 * it reports over-long lines, NUL bytes, syntax errors, headers without
 * ']' and indented continuation lines.  This module checks the meaning:
 * which sections (s_on_section) and keys (s_on_key) exist, their values,
 * duplicates, required keys and the defaults derived from them.
 *
 * Every problem is formatted "FILE:LINE: message" (or "FILE: message" for
 * whole-file problems such as a missing required key), passed to the
 * caller's report callback and counted; parsing goes on so one run shows
 * them all.  The result is built in a fresh, heap-allocated config_t and
 * copied to the caller's only when there was no problem at all: a failed
 * load (e.g. a SIGHUP reload) never leaves a half-updated config.
 * err gets the first problem with KP_ERR_IO (file unreadable), KP_ERR_NOMEM
 * or KP_ERR_INVALID_ARG (anything in the file: kperr.h has no config code).
 *
 * The file may be world-readable (ketenpost-certs writes it 0644: it holds
 * no secret) but not writable by group or others (style rule 12, checked
 * by inifile_read()): whoever can write it chooses the keys and peers the
 * daemon trusts.
 *
 * Paths: relative values are made absolute against the realpath() of the
 * file's folder, then "." and ".." are resolved by name (s_abspath), so
 * the result does not depend on which folders exist yet (state_dir may
 * not); the cost is that "link/.." is not what the kernel would make of
 * it.  cfg->path is absolute too, so a reload after chdir("/") works.
 *
 * This module must never act on a config that had a problem.  It keeps
 * no state between calls.  It lives in lib/ because the client (finding
 * the API endpoint, `ketenpost backup`) reads the same file the same way;
 * what the values mean at run time is the daemon's business (e.g. which
 * request an [api] role allows: daemon/access.c).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <grp.h>
#include <pwd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <sodium.h>
#include <zmq.h>

#include "config.h"
#include "inifile.h"
#include "util.h"

#define S_MS_PER_DAY (24ULL * 3600 * 1000)
#define S_DUR_MAX (36500 * S_MS_PER_DAY)          /* 100 years */
#define S_IPC_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define S_DURATION_HINT "(use e.g. 500ms, 30s, 5m, 2h, 14d)"

/* Indexes into s_keys, in file order. */
enum {
	S_CHAIN_DIR, S_ORG, S_ORG_DIR, S_LISTEN, S_STATE_DIR, S_API,
	S_POLICY, S_VERBOSE, S_EVENT_TTL, S_RETRY_INITIAL, S_RETRY_MAX,
	S_REPLAY_WINDOW, S_MAX_CLOCK_SKEW, S_BATCH_MAX, S_WATCHDOG,
	S_PURGE_INTERVAL, S_HEAD_INTERVAL, S_REFUSALS_PER_MINUTE, S_WINDOW_KIB,
	S_METRICS_LISTEN, S_BUNDLE, S_CA, S_BUNDLE_CHECK, S_EXPIRY_WARNING,
	S_REST_LISTEN, S_REST_TLS_LISTEN, S_REST_TLS_CERT, S_REST_TLS_KEY,
	S_REST_TLS_CLIENT_CA, S_REST_WEBHOOK, S_WORKER_THREADS, S_NKEYS
};

struct s_parse;
struct s_key;
typedef int (*s_setter)(struct s_parse *, const struct s_key *,
    const char *);

/* One known key: where it goes in config_t and what it accepts. */
struct s_key {
	const char *section;
	const char *name;
	s_setter set;
	size_t off;           /* offsetof(config_t, field) */
	size_t size;          /* sizeof the field */
	uint64_t min, max;    /* numbers and durations */
	int required;
};

/* The state of one config_load() run. */
struct s_parse {
	const char *file;            /* as given: used in every message */
	char base[KP_PATH_MAX];      /* absolute folder of the file */
	config_t *cfg;               /* the fresh struct being built */
	inifile_t *ini;              /* reads the file, counts problems */
	int lineno;                  /* of the key being set */
	int line_of[S_NKEYS];        /* per s_keys[i]: line set on, 0 = not */
	int ok[S_NKEYS];             /* per s_keys[i]: value accepted */
};

static int s_set_path(struct s_parse *, const struct s_key *, const char *);
static int s_set_oin(struct s_parse *, const struct s_key *, const char *);
static int s_set_listen(struct s_parse *, const struct s_key *,
    const char *);
static int s_set_api(struct s_parse *, const struct s_key *, const char *);
static int s_set_int(struct s_parse *, const struct s_key *, const char *);
static int s_set_unsigned(struct s_parse *, const struct s_key *,
    const char *);
static int s_set_duration(struct s_parse *, const struct s_key *,
    const char *);
static int s_set_bool(struct s_parse *, const struct s_key *, const char *);
static int s_set_metrics(struct s_parse *, const struct s_key *,
    const char *);
static int s_set_rest(struct s_parse *, const struct s_key *, const char *);
static int s_set_webhook(struct s_parse *, const struct s_key *,
    const char *);

#define S_F(field) offsetof(config_t, field), sizeof(((config_t *)0)->field)

static const struct s_key s_keys[S_NKEYS] = {
	/* chain_dir or bundle is required: s_finish() checks. */
	[S_CHAIN_DIR] = { "ketenpostd", "chain_dir", s_set_path,
	    S_F(chain_dir), 0, 0, 0 },
	[S_ORG] = { "ketenpostd", "org", s_set_oin, S_F(org), 0, 0, 1 },
	[S_ORG_DIR] = { "ketenpostd", "org_dir", s_set_path, S_F(org_dir),
	    0, 0, 0 },
	[S_LISTEN] = { "ketenpostd", "listen", s_set_listen, S_F(listen),
	    0, 0, 0 },
	[S_STATE_DIR] = { "ketenpostd", "state_dir", s_set_path,
	    S_F(state_dir), 0, 0, 0 },
	[S_API] = { "ketenpostd", "api", s_set_api, S_F(api), 0, 0, 0 },
	[S_POLICY] = { "ketenpostd", "policy", s_set_path, S_F(policy),
	    0, 0, 0 },
	[S_VERBOSE] = { "ketenpostd", "verbose", s_set_int, S_F(verbose),
	    0, 3, 0 },
	[S_EVENT_TTL] = { "delivery", "event_ttl", s_set_duration,
	    S_F(event_ttl_ms), 1, S_DUR_MAX, 0 },
	[S_RETRY_INITIAL] = { "delivery", "retry_initial", s_set_duration,
	    S_F(retry_initial_ms), 1, S_DUR_MAX, 0 },
	[S_RETRY_MAX] = { "delivery", "retry_max", s_set_duration,
	    S_F(retry_max_ms), 1, S_DUR_MAX, 0 },
	[S_REPLAY_WINDOW] = { "delivery", "replay_window", s_set_duration,
	    S_F(replay_window_ms), 1, S_DUR_MAX, 0 },
	[S_MAX_CLOCK_SKEW] = { "delivery", "max_clock_skew", s_set_duration,
	    S_F(max_clock_skew_ms), 0, S_DUR_MAX, 0 },
	[S_BATCH_MAX] = { "delivery", "batch_max", s_set_unsigned,
	    S_F(batch_max), 1, 10000, 0 },
	[S_WATCHDOG] = { "delivery", "watchdog", s_set_bool, S_F(watchdog),
	    0, 1, 0 },
	[S_PURGE_INTERVAL] = { "delivery", "purge_interval", s_set_duration,
	    S_F(purge_interval_ms), 1000, S_DUR_MAX, 0 },
	[S_HEAD_INTERVAL] = { "delivery", "head_interval", s_set_duration,
	    S_F(head_interval_ms), 100, S_DUR_MAX, 0 },
	[S_REFUSALS_PER_MINUTE] = { "delivery", "refusals_per_minute",
	    s_set_unsigned, S_F(refusals_per_minute), 1, 1000000, 0 },
	[S_WINDOW_KIB] = { "delivery", "window_kib", s_set_unsigned,
	    S_F(window_kib), 16, 1048576, 0 },
	[S_METRICS_LISTEN] = { "metrics", "listen", s_set_metrics,
	    S_F(metrics_listen), 0, 0, 0 },
	[S_BUNDLE] = { "ketenpostd", "bundle", s_set_path, S_F(bundle),
	    0, 0, 0 },
	[S_CA] = { "ketenpostd", "ca", s_set_path, S_F(ca), 0, 0, 0 },
	[S_BUNDLE_CHECK] = { "ketenpostd", "bundle_check_interval",
	    s_set_duration, S_F(bundle_check_interval_ms), 100, S_DUR_MAX, 0 },
	[S_EXPIRY_WARNING] = { "ketenpostd", "expiry_warning", s_set_duration,
	    S_F(expiry_warning_ms), 0, S_DUR_MAX, 0 },
	[S_REST_LISTEN] = { "rest", "listen", s_set_rest,
	    S_F(rest_listen), 0, 0, 0 },
	[S_REST_TLS_LISTEN] = { "rest", "tls_listen", s_set_metrics,
	    S_F(rest_tls_listen), 0, 0, 0 },
	[S_REST_TLS_CERT] = { "rest", "tls_cert", s_set_path,
	    S_F(rest_tls_cert), 0, 0, 0 },
	[S_REST_TLS_KEY] = { "rest", "tls_key", s_set_path,
	    S_F(rest_tls_key), 0, 0, 0 },
	[S_REST_TLS_CLIENT_CA] = { "rest", "tls_client_ca", s_set_path,
	    S_F(rest_tls_client_ca), 0, 0, 0 },
	[S_REST_WEBHOOK] = { "rest", "webhook", s_set_webhook,
	    S_F(rest_webhook), 0, 0, 0 },
	[S_WORKER_THREADS] = { "ketenpostd", "worker_threads", s_set_unsigned,
	    S_F(worker_threads), 0, 1, 0 },
};

static const char *const s_sections[] = { "ketenpostd", "delivery",
    "metrics", "api", "rest" };

/* ---- problems ---------------------------------------------------- */

/* Report one problem at `line` (0: the whole file) and count it. */
static void __attribute__((format(printf, 4, 5)))
s_problem(struct s_parse *st, int line, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	inifile_problem(st->ini, line, code, "%s", msg);
}

/* A bad value of key k on the current line; always -1. */
static int __attribute__((format(printf, 3, 4)))
s_bad(struct s_parse *st, const struct s_key *k, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s_problem(st, st->lineno, KP_ERR_INVALID_ARG, "%s: %s", k->name, msg);
	return -1;
}

/* ---- values ------------------------------------------------------ */

int
config_parse_duration(const char *text, uint64_t *ms)
{
	return inifile_duration(text, ms);
}

/* "tcp://host:port": a DNS name, IPv4, [IPv6] or (if star) '*'. */
static int
s_tcp_endpoint_valid(const char *s, int star)
{
	const char *host, *colon, *p;
	uint64_t port;

	if (strncmp(s, "tcp://", 6) != 0)
		return 0;
	host = s + 6;
	colon = strrchr(host, ':');
	if (colon == NULL || colon == host ||
	    kp_parse_uint(colon + 1, 65535, &port) != 0 || port == 0 ||
	    strlen(colon + 1) > 5)
		return 0;
	if (star && colon == host + 1 && *host == '*')
		return 1;
	if (*host == '[') {
		for (p = host + 1; p < colon - 1; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' &&
			    *p != '.')
				return 0;
		return colon - host > 2 && colon[-1] == ']';
	}
	for (p = host; p < colon; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			return 0;
	return isalnum((unsigned char)*host) &&
	    isalnum((unsigned char)colon[-1]);
}

/* ---- paths ------------------------------------------------------- */

/*
 * Append the components of `path` to the absolute path out[0..*n),
 * dropping "" and "." and undoing ".." by name; 0 / -1 (too long).
 */
static int
s_push_components(char *out, size_t len, size_t *n, const char *path)
{
	const char *p = path, *e;
	size_t cl;

	while (*p != '\0') {
		e = strchrnul(p, '/');
		cl = (size_t)(e - p);
		if (cl == 2 && p[0] == '.' && p[1] == '.') {
			while (*n > 0 && out[--*n] != '/')
				;
		} else if (cl > 0 && !(cl == 1 && *p == '.')) {
			if (*n + 1 + cl >= len)
				return -1;
			out[(*n)++] = '/';
			memcpy(out + *n, p, cl);
			*n += cl;
		}
		p = *e == '/' ? e + 1 : e;
	}
	return 0;
}

/*
 * `path` made absolute against `base` (itself absolute) and cleaned up by
 * name: no "//", "." or ".." remain.  ".." is undone without looking at
 * symlinks, so the result does not depend on what exists yet.  0 / -1.
 */
static int
s_abspath(const char *base, const char *path, char *out, size_t len)
{
	size_t n = 0;

	if (len < 2)
		return -1;
	if ((path[0] != '/' && s_push_components(out, len, &n, base) != 0) ||
	    s_push_components(out, len, &n, path) != 0) {
		out[0] = '\0';
		return -1;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return 0;
}

/* a + "/" + b (+ "/" + c) into out; 0 / -1 (too long: out is ""). */
static int
s_join(char *out, size_t len, const char *a, const char *b, const char *c)
{
	int r;

	if (c != NULL)
		r = snprintf(out, len, "%s/%s/%s", a, b, c);
	else
		r = snprintf(out, len, "%s/%s", a, b);
	if (r >= 0 && (size_t)r < len)
		return 0;
	out[0] = '\0';
	return -1;
}

/* The absolute folder of the config file `path` into out; 0 / -1. */
static int
s_base_dir(const char *path, char *out, size_t len)
{
	char dir[KP_PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (realpath(dir, real) == NULL)
		return -1;
	if (strlen(real) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(out, real, strlen(real) + 1);
	return 0;
}

/* ---- setters: one per kind of value; 0, or -1 after s_bad() ------ */

static void *
s_field(struct s_parse *st, const struct s_key *k)
{
	return (char *)st->cfg + k->off;
}

static int
s_set_path(struct s_parse *st, const struct s_key *k, const char *v)
{
	if (s_abspath(st->base, v, s_field(st, k), k->size) != 0)
		return s_bad(st, k, "path is too long (at most %zu bytes)",
		    k->size - 1);
	return 0;
}

static int
s_set_oin(struct s_parse *st, const struct s_key *k, const char *v)
{
	if (!kp_oin_valid(v))
		return s_bad(st, k, "'%.80s' is not an OIN (exactly 20 digits)",
		    v);
	memcpy(s_field(st, k), v, KP_OIN_LEN + 1);
	return 0;
}

static int
s_set_listen(struct s_parse *st, const struct s_key *k, const char *v)
{
	if (strlen(v) >= k->size || !s_tcp_endpoint_valid(v, 1))
		return s_bad(st, k, "'%.80s' is not of the form tcp://host:port",
		    v);
	memcpy(s_field(st, k), v, strlen(v) + 1);
	return 0;
}

/* ipc://PATH (a relative PATH is made absolute) or tcp://host:port. */
static int
s_set_api(struct s_parse *st, const struct s_key *k, const char *v)
{
	char path[KP_PATH_MAX];

	if (strncmp(v, "tcp://", 6) == 0) {
		if (strlen(v) >= k->size || !s_tcp_endpoint_valid(v, 1))
			return s_bad(st, k, "'%.80s' is not of the form "
			    "tcp://host:port", v);
		memcpy(s_field(st, k), v, strlen(v) + 1);
		return 0;
	}
	if (strncmp(v, "ipc://", 6) != 0 || v[6] == '\0')
		return s_bad(st, k, "'%.80s' is not ipc://PATH or "
		    "tcp://host:port", v);
	if (v[6] == '@') {           /* Linux abstract socket: as is */
		if (strlen(v + 6) > S_IPC_MAX || strlen(v) >= k->size)
			return s_bad(st, k, "socket name is too long");
		memcpy(s_field(st, k), v, strlen(v) + 1);
		return 0;
	}
	if (s_abspath(st->base, v + 6, path, sizeof(path)) != 0 ||
	    strlen(path) > S_IPC_MAX)
		return s_bad(st, k, "socket path '%.80s' is longer than the "
		    "%zu bytes a Unix socket allows", v + 6, S_IPC_MAX);
	snprintf(s_field(st, k), k->size, "ipc://%s", path);
	return 0;
}

/* A whole number within the key's [min, max]; OUT: *n. */
static int
s_number(struct s_parse *st, const struct s_key *k, const char *v,
    uint64_t *n)
{
	if (kp_parse_uint(v, k->max, n) != 0 || *n < k->min)
		return s_bad(st, k, "'%.80s' is not a number from %ju to %ju",
		    v, (uintmax_t)k->min, (uintmax_t)k->max);
	return 0;
}

static int
s_set_int(struct s_parse *st, const struct s_key *k, const char *v)
{
	uint64_t n;

	if (s_number(st, k, v, &n) != 0)
		return -1;
	*(int *)s_field(st, k) = (int)n;
	return 0;
}

static int
s_set_unsigned(struct s_parse *st, const struct s_key *k, const char *v)
{
	uint64_t n;

	if (s_number(st, k, v, &n) != 0)
		return -1;
	*(unsigned *)s_field(st, k) = (unsigned)n;
	return 0;
}

static int
s_set_duration(struct s_parse *st, const struct s_key *k, const char *v)
{
	uint64_t ms;

	if (config_parse_duration(v, &ms) != 0)
		return s_bad(st, k, "'%.80s' is not a duration "
		    S_DURATION_HINT, v);
	if (ms < k->min)
		return s_bad(st, k, "'%.80s' must be longer than 0", v);
	if (ms > k->max)
		return s_bad(st, k, "'%.80s' is longer than 36500d", v);
	*(uint64_t *)s_field(st, k) = ms;
	return 0;
}

static int
s_set_bool(struct s_parse *st, const struct s_key *k, const char *v)
{
	static const char *const on[] = { "on", "yes", "true", "1" };
	static const char *const off[] = { "off", "no", "false", "0" };
	size_t i;

	for (i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		if (strcasecmp(v, on[i]) == 0 || strcasecmp(v, off[i]) == 0) {
			*(int *)s_field(st, k) = strcasecmp(v, on[i]) == 0;
			return 0;
		}
	}
	return s_bad(st, k, "'%.80s' is not on or off", v);
}

/* [metrics] listen: a literal address and port (metrics.c binds it). */
static int
s_set_metrics(struct s_parse *st, const struct s_key *k, const char *v)
{
	struct sockaddr_storage sa;
	socklen_t len;

	if (strlen(v) >= k->size || kp_parse_host_port(v, &sa, &len) != 0)
		return s_bad(st, k, "'%.80s' is not ADDRESS:PORT with a "
		    "literal address (127.0.0.1:9464, [::1]:9464)", v);
	memcpy(s_field(st, k), v, strlen(v) + 1);
	return 0;
}

/* [rest] listen: off, or unix:/ABSOLUTE/PATH of the socket (rest.c). */
static int
s_set_rest(struct s_parse *st, const struct s_key *k, const char *v)
{
	if (strcmp(v, "off") == 0) {
		strcpy(s_field(st, k), "off");
		return 0;
	}
	if (strncmp(v, "unix:/", 6) != 0 || strlen(v) >= k->size)
		return s_bad(st, k, "'%.80s' is not off or unix:/PATH (an "
		    "absolute path of the REST API's Unix socket)", v);
	memcpy(s_field(st, k), v, strlen(v) + 1);
	return 0;
}

int
config_webhook_url(const char *url, struct sockaddr_storage *sa,
    socklen_t *salen, char *host, size_t hostlen, const char **path)
{
	char hp[80];
	const char *a = url + 7, *slash;
	size_t n;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	slash = strchr(a, '/');
	n = slash != NULL ? (size_t)(slash - a) : strlen(a);
	if (n == 0 || n >= hostlen || n + 4 >= sizeof(hp))
		return -1;
	memcpy(host, a, n);
	host[n] = '\0';
	*path = slash != NULL ? slash : "/";
	if (strncmp(host, "localhost:", 10) == 0)
		snprintf(hp, sizeof(hp), "127.0.0.1%s", host + 9);
	else
		snprintf(hp, sizeof(hp), "%s", host);
	if (kp_parse_host_port(hp, sa, salen) != 0)
		return -1;
	/* local only: 127.0.0.0/8 or ::1 */
	if (sa->ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)sa)->sin_addr.s_addr) >>
		    24) == 127 ? 0 : -1;
	return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)sa)->sin6_addr) ?
	    0 : -1;
}

/* [rest] webhook: a local http:// URL (webhook.c posts notices to it). */
static int
s_set_webhook(struct s_parse *st, const struct s_key *k, const char *v)
{
	struct sockaddr_storage sa;
	socklen_t len;
	char host[80];
	const char *path;

	if (strlen(v) >= k->size || strpbrk(v, " \t\r\n") != NULL ||
	    config_webhook_url(v, &sa, &len, host, sizeof(host), &path) != 0)
		return s_bad(st, k, "'%.80s' is not a local URL "
		    "http://127.0.0.1:PORT/PATH (or localhost, [::1]; no TLS, "
		    "no other host)", v);
	memcpy(s_field(st, k), v, strlen(v) + 1);
	return 0;
}

/* ---- inifile callbacks ------------------------------------------ */

static const struct s_key *
s_find_key(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < S_NKEYS; i++)
		if (strcmp(s_keys[i].section, section) == 0 &&
		    strcmp(s_keys[i].name, name) == 0)
			return &s_keys[i];
	return NULL;
}

/* A [name] header: 0 if known, else reported and -1 (its keys skipped). */
static int
s_on_section(void *arg, const char *name, int lineno)
{
	struct s_parse *st = arg;
	size_t i;

	for (i = 0; i < sizeof(s_sections) / sizeof(s_sections[0]); i++)
		if (strcmp(name, s_sections[i]) == 0)
			return 0;
	s_problem(st, lineno, KP_ERR_INVALID_ARG, "unknown section "
	    "[%.60s] (known: [ketenpostd], [delivery])", name);
	return -1;
}

/* ---- [api] allow: principals and roles (daemon/access.c decides) ---- */

static const struct {
	const char *name;
	unsigned role;
} s_roles[] = {
	{ "submit", API_ROLE_SUBMIT }, { "inbox", API_ROLE_INBOX },
	{ "officer", API_ROLE_OFFICER }, { "subject", API_ROLE_SUBJECT },
	{ "admin", API_ROLE_ADMIN }, { "all", API_ROLE_ALL },
};

const char *
config_role_name(unsigned role)
{
	size_t i;

	for (i = 0; i < sizeof(s_roles) / sizeof(s_roles[0]); i++)
		if (s_roles[i].role == role)
			return s_roles[i].name;
	return "?";
}

static int
s_role_bit(const char *name, unsigned *out)
{
	size_t i;

	for (i = 0; i < sizeof(s_roles) / sizeof(s_roles[0]); i++)
		if (strcmp(s_roles[i].name, name) == 0) {
			*out |= s_roles[i].role;
			return 0;
		}
	return -1;
}

/* A user or group by name or number.  OUT: *id.  0 / -1. */
static int
s_resolve(int kind, const char *v, uint32_t *id)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	struct passwd *pw;
	struct group *gr;

	if (*v != '\0' && *end == '\0' && n <= 0xfffffffeUL) {
		*id = (uint32_t)n;
		return 0;
	}
	if (kind == ACCESS_USER && (pw = getpwnam(v)) != NULL) {
		*id = (uint32_t)pw->pw_uid;
		return 0;
	}
	if (kind == ACCESS_GROUP && (gr = getgrnam(v)) != NULL) {
		*id = (uint32_t)gr->gr_gid;
		return 0;
	}
	return -1;
}

/* A SHA-256 fingerprint as 64 hex digits, with or without a colon
 * between bytes (openssl's -fingerprint form).  OUT: fp. */
static int
s_fingerprint(const char *v, uint8_t fp[32])
{
	char hex[65];
	size_t n = 0;

	for (; *v != '\0'; v++) {
		if (*v == ':' && n % 2 == 0 && n > 0 && v[1] != '\0')
			continue;
		if (!isxdigit((unsigned char)*v) || n == 64)
			return -1;
		hex[n++] = (char)tolower((unsigned char)*v);
	}
	hex[n] = '\0';
	return n == 64 ? kp_unhex(hex, fp, 32) : -1;
}

static int
s_principal(const char *p, api_allow_t *a, char *why, size_t whylen)
{
	if (strncmp(p, "user:", 5) == 0 || strncmp(p, "group:", 6) == 0) {
		a->kind = p[0] == 'u' ? ACCESS_USER : ACCESS_GROUP;
		p += a->kind == ACCESS_USER ? 5 : 6;
		if (s_resolve(a->kind, p, &a->id) == 0)
			return 0;
		snprintf(why, whylen, "no %s '%.40s' on this system",
		    a->kind == ACCESS_USER ? "user" : "group", p);
		return -1;
	}
	if (strncmp(p, "key:", 4) == 0) {
		a->kind = ACCESS_KEY;
		if (strlen(p + 4) == 40 && zmq_z85_decode(a->key, p + 4) != NULL)
			return 0;
		snprintf(why, whylen, "'%.50s' is not a CURVE public key "
		    "(40 characters of Z85)", p + 4);
		return -1;
	}
	if (strncmp(p, "cert:", 5) == 0) {
		a->kind = ACCESS_CERT;
		if (s_fingerprint(p + 5, a->key) == 0)
			return 0;
		snprintf(why, whylen, "'%.24s...' is not a SHA-256 "
		    "fingerprint (64 hex digits: openssl x509 -noout "
		    "-fingerprint -sha256 -in CLIENT.crt)", p + 5);
		return -1;
	}
	snprintf(why, whylen, "'%.40s' is not user:NAME, group:NAME, "
	    "key:Z85 or cert:SHA256", p);
	return -1;
}

static int
s_parse_allow(const char *value, api_allow_t *a, char *why,
    size_t whylen)
{
	char buf[256], *tok, *save = NULL;
	int rc = -1;

	memset(a, 0, sizeof(*a));
	if (strlen(value) >= sizeof(buf)) {
		snprintf(why, whylen, "value too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", value);
	if ((tok = strtok_r(buf, " \t", &save)) == NULL ||
	    s_principal(tok, a, why, whylen) != 0)
		goto out;
	while ((tok = strtok_r(NULL, " \t,", &save)) != NULL)
		if (s_role_bit(tok, &a->roles) != 0) {
			snprintf(why, whylen, "unknown role '%.30s' (roles: "
			    "submit, inbox, officer, subject, admin, all)", tok);
			goto out;
		}
	if (a->roles == 0) {
		snprintf(why, whylen, "no role given (e.g. allow = %s submit "
		    "inbox)", strtok_r(buf, " ", &save));
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

/* [api] allow: repeatable, so not in s_keys. */
static void
s_api_allow(struct s_parse *st, const char *value, int lineno)
{
	config_t *c = st->cfg;
	char why[160];

	if (c->n_api_allow == KP_API_ALLOW_MAX) {
		s_problem(st, lineno, KP_ERR_INVALID_ARG, "allow: more than %d "
		    "lines (use group:NAME)", KP_API_ALLOW_MAX);
		return;
	}
	if (s_parse_allow(value, &c->api_allow[c->n_api_allow], why,
	    sizeof(why)) != 0) {
		s_problem(st, lineno, KP_ERR_INVALID_ARG, "allow: %s", why);
		return;
	}
	c->n_api_allow++;
}

/* The API endpoint against the allow list: a tcp:// API has no peer
 * credentials, so only CURVE keys can be allowed there; an abstract
 * socket has no file permissions and would be open to every process. */
static void
s_check_api_access(struct s_parse *st)
{
	const config_t *c = st->cfg;
	size_t i, keys = 0;

	for (i = 0; i < c->n_api_allow; i++)
		keys += c->api_allow[i].kind == ACCESS_KEY;
	if (strncmp(c->api, "ipc://@", 7) == 0)
		s_problem(st, st->line_of[S_API], KP_ERR_INVALID_ARG, "api: an "
		    "abstract socket (ipc://@...) cannot be protected; use a "
		    "socket path");
	else if (strncmp(c->api, "tcp://", 6) == 0 && keys == 0)
		s_problem(st, st->line_of[S_API], KP_ERR_INVALID_ARG, "api: a "
		    "tcp:// API needs CURVE: list the clients' keys with "
		    "[api] allow = key:Z85 ROLE...");
	else if (strncmp(c->api, "tcp://", 6) != 0 && keys != 0)
		s_problem(st, st->line_of[S_API], KP_ERR_INVALID_ARG, "allow: "
		    "key: principals need api = tcp://... (an ipc:// API "
		    "knows its clients by user and group)");
}

/* [rest] tls_listen: a TLS listener serves only clients with a
 * certificate of tls_client_ca that an allow line names; without both it
 * would serve nobody, or (worse, were the check left to chance) anybody
 * with a certificate of some CA. */
static void
s_check_rest_tls(struct s_parse *st)
{
	const config_t *c = st->cfg;
	int at = st->line_of[S_REST_TLS_LISTEN];
	size_t i, certs = 0;

	for (i = 0; i < c->n_api_allow; i++)
		certs += c->api_allow[i].kind == ACCESS_CERT;
	if (at == 0) {
		if (st->line_of[S_REST_TLS_CERT] || st->line_of[S_REST_TLS_KEY] ||
		    st->line_of[S_REST_TLS_CLIENT_CA] || certs > 0)
			s_problem(st, 0, KP_ERR_INVALID_ARG, "[rest] tls_cert, "
			    "tls_key, tls_client_ca and [api] allow = cert:... "
			    "need [rest] tls_listen = ADDRESS:PORT");
		return;
	}
	if (!st->line_of[S_REST_TLS_CERT] || !st->line_of[S_REST_TLS_KEY] ||
	    !st->line_of[S_REST_TLS_CLIENT_CA])
		s_problem(st, at, KP_ERR_INVALID_ARG, "tls_listen: needs "
		    "tls_cert = FILE, tls_key = FILE (the server's) and "
		    "tls_client_ca = FILE (the CA of the clients' "
		    "certificates) in [rest]");
	if (certs == 0)
		s_problem(st, at, KP_ERR_INVALID_ARG, "tls_listen: no client "
		    "may use it; allow one with [api] allow = cert:SHA256 "
		    "ROLE... (openssl x509 -noout -fingerprint -sha256 -in "
		    "CLIENT.crt)");
}

/* One name = value on line lineno of a known section (or of none). */
static void
s_on_key(void *arg, const char *section, const char *name,
    const char *value, int lineno)
{
	struct s_parse *st = arg;
	const struct s_key *k;
	size_t i;

	st->lineno = lineno;
	if (*section == '\0') {
		s_problem(st, lineno, KP_ERR_INVALID_ARG, "'%.40s' "
		    "is outside any section (put it under [ketenpostd] or "
		    "[delivery])", name);
		return;
	}
	if (strcmp(section, "api") == 0 && strcmp(name, "allow") == 0) {
		s_api_allow(st, value, lineno);
		return;
	}
	if ((k = s_find_key(section, name)) == NULL) {
		s_problem(st, lineno, KP_ERR_INVALID_ARG,
		    "unknown key '%.40s' in [%s]", name, section);
		return;
	}
	i = (size_t)(k - s_keys);
	if (st->line_of[i] != 0) {
		s_problem(st, lineno, KP_ERR_INVALID_ARG, "duplicate "
		    "key '%s' in [%s] (first set on line %d)", name, section,
		    st->line_of[i]);
		return;
	}
	st->line_of[i] = lineno;
	if (*value == '\0')
		s_bad(st, k, "empty value (leave the key out for the default)");
	else
		st->ok[i] = k->set(st, k, value) == 0;
}

/* ---- whole file -------------------------------------------------- */

static void
s_defaults(config_t *c)
{
	memset(c, 0, sizeof(*c));
	c->verbose = 0;
	c->event_ttl_ms = 30 * S_MS_PER_DAY;
	c->retry_initial_ms = 1000;
	c->retry_max_ms = 60 * 1000;
	c->replay_window_ms = 14 * S_MS_PER_DAY;
	c->max_clock_skew_ms = 5 * 60 * 1000;
	c->batch_max = 512;
	c->watchdog = 1;
	c->purge_interval_ms = 3600 * 1000;
	c->head_interval_ms = 60 * 1000;
	c->refusals_per_minute = 600;
	c->window_kib = 8192;
	c->bundle_check_interval_ms = 60 * 1000;
	c->expiry_warning_ms = 14 * S_MS_PER_DAY;
	c->worker_threads = 1;
}

/*
 * org_dir, state_dir and api from what was given; problems reported.  A
 * path that was refused is "", so nothing is derived from it.
 */
static void
s_derive(struct s_parse *st)
{
	config_t *c = st->cfg;

	if (!st->line_of[S_ORG_DIR] && st->ok[S_CHAIN_DIR] && st->ok[S_ORG] &&
	    s_join(c->org_dir, sizeof(c->org_dir), c->chain_dir, "orgs",
	    c->org) != 0)
		s_problem(st, 0, KP_ERR_INVALID_ARG, "org_dir: the default "
		    "<chain_dir>/orgs/<org> is too long; set org_dir");
	if (!st->line_of[S_STATE_DIR] && c->org_dir[0] != '\0' &&
	    s_join(c->state_dir, sizeof(c->state_dir), c->org_dir, "state",
	    NULL) != 0)
		s_problem(st, 0, KP_ERR_INVALID_ARG, "state_dir: the default "
		    "<org_dir>/state is too long; set state_dir");
	if (!st->line_of[S_POLICY] && st->ok[S_CHAIN_DIR] &&
	    s_join(c->policy, sizeof(c->policy), c->chain_dir, "policy.ini",
	    NULL) != 0)
		s_problem(st, 0, KP_ERR_INVALID_ARG, "policy: the default "
		    "<chain_dir>/policy.ini is too long; set policy");
	if (!st->line_of[S_REST_LISTEN] && c->state_dir[0] != '\0' &&
	    (size_t)snprintf(c->rest_listen, sizeof(c->rest_listen),
	    "unix:%s/%s", c->state_dir, "rest.sock") >= sizeof(c->rest_listen))
		s_problem(st, 0, KP_ERR_INVALID_ARG, "[rest] listen: the "
		    "default unix:<state_dir>/rest.sock is too long; set it");
	if (st->line_of[S_API] || c->state_dir[0] == '\0')
		return;
	/* wherever the state folder is: a path longer than a Unix socket
	 * address holds is reached by a short alias (kp_ipc_address) */
	snprintf(c->api, sizeof(c->api), "ipc://%s/api.sock", c->state_dir);
}

/* chain_dir or bundle (with ca and org_dir), not both. */
static void
s_finish_bundle(struct s_parse *st)
{
	if (!st->line_of[S_CHAIN_DIR] && !st->line_of[S_BUNDLE])
		s_problem(st, 0, KP_ERR_INVALID_ARG, "missing required key "
		    "'chain_dir' in [ketenpostd]");
	if (st->line_of[S_CHAIN_DIR] && st->line_of[S_BUNDLE])
		s_problem(st, st->line_of[S_BUNDLE], KP_ERR_INVALID_ARG,
		    "bundle: give either chain_dir or bundle, not both");
	if (!st->line_of[S_BUNDLE])
		return;
	if (!st->line_of[S_CA])
		s_problem(st, st->line_of[S_BUNDLE], KP_ERR_INVALID_ARG,
		    "bundle: requires ca = FILE, the chain CA certificate to "
		    "pin (check its fingerprint with the chain CA)");
	if (!st->line_of[S_ORG_DIR])
		s_problem(st, st->line_of[S_BUNDLE], KP_ERR_INVALID_ARG,
		    "bundle: requires org_dir = DIR, the folder with this "
		    "organisation's keys (made by ketenpost-certs request)");
}

/* Required keys, cross-key rules and derived defaults. */
static void
s_finish(struct s_parse *st)
{
	const config_t *c = st->cfg;
	size_t i;
	int line;

	s_finish_bundle(st);
	for (i = 0; i < S_NKEYS; i++)
		if (s_keys[i].required && st->line_of[i] == 0)
			s_problem(st, 0, KP_ERR_INVALID_ARG, "missing required "
			    "key '%s' in [%s]", s_keys[i].name,
			    s_keys[i].section);
	if (c->retry_initial_ms > c->retry_max_ms &&
	    (!st->line_of[S_RETRY_INITIAL] || st->ok[S_RETRY_INITIAL]) &&
	    (!st->line_of[S_RETRY_MAX] || st->ok[S_RETRY_MAX])) {
		line = st->line_of[S_RETRY_INITIAL] ?
		    st->line_of[S_RETRY_INITIAL] : st->line_of[S_RETRY_MAX];
		s_problem(st, line, KP_ERR_INVALID_ARG, "retry_initial (%ju ms)"
		    " is longer than retry_max (%ju ms)",
		    (uintmax_t)c->retry_initial_ms,
		    (uintmax_t)c->retry_max_ms);
	}
	s_derive(st);
	s_check_api_access(st);
	s_check_rest_tls(st);
}

/* st->base and cfg->path: absolute, so a reload after chdir() works. */
static int
s_locate(struct s_parse *st)
{
	const char *slash = strrchr(st->file, '/');

	if (s_base_dir(st->file, st->base, sizeof(st->base)) != 0) {
		s_problem(st, 0, KP_ERR_IO, "cannot resolve its folder: %s",
		    strerror(errno));
		return -1;
	}
	if (s_join(st->cfg->path, sizeof(st->cfg->path), st->base,
	    slash ? slash + 1 : st->file, NULL) != 0) {
		s_problem(st, 0, KP_ERR_IO, "path is too long");
		return -1;
	}
	return 0;
}

/* Read, parse and check st->file into st->cfg; problems counted. */
static void
s_load(struct s_parse *st)
{
	if (inifile_read(st->ini) != 0 || s_locate(st) != 0)
		return;
	(void)inifile_parse(st->ini, s_on_section, s_on_key, st);
	s_finish(st);
}

int
config_load(const char *path, config_t *cfg,
    void (*report)(void *arg, const char *line), void *arg,
    int *n_problems, kp_err_t *err)
{
	struct s_parse st;
	int n;

	kp_err_clear(err);
	if (n_problems != NULL)
		*n_problems = 0;
	if (path == NULL || cfg == NULL)
		return kp_fail(err, KP_ERR_INVALID_ARG, "config_load: no path");
	memset(&st, 0, sizeof(st));
	st.file = path;
	if ((st.cfg = malloc(sizeof(*st.cfg))) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "%s: out of memory", path);
	if ((st.ini = inifile_new(path, KP_ERR_INVALID_ARG, report, arg,
	    err)) == NULL) {
		free(st.cfg);
		return -1;
	}
	s_defaults(st.cfg);
	s_load(&st);
	n = inifile_problems(st.ini);
	if (n == 0)
		memcpy(cfg, st.cfg, sizeof(*cfg));
	inifile_destroy(&st.ini);
	free(st.cfg);
	if (n_problems != NULL)
		*n_problems = n;
	return n == 0 ? 0 : -1;
}

int
config_api_endpoint(const char *path, char *endpoint, size_t len,
    kp_err_t *err)
{
	config_t *cfg;
	int n, rc = -1;

	if (endpoint == NULL || len == 0)
		return kp_fail(err, KP_ERR_INVALID_ARG,
		    "config_api_endpoint: no buffer");
	if ((cfg = malloc(sizeof(*cfg))) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	if (config_load(path, cfg, NULL, NULL, &n, err) == 0) {
		if (strlen(cfg->api) >= len)
			kp_fail(err, KP_ERR_INVALID_ARG, "%s: api endpoint is "
			    "longer than %zu bytes", path, len - 1);
		else {
			memcpy(endpoint, cfg->api, strlen(cfg->api) + 1);
			rc = 0;
		}
	}
	free(cfg);
	return rc;
}
