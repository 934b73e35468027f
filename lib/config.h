/*
 * config.h: ketenpostd's configuration (INI, read with inih), documented
 * in docs/ketenpostd.conf.5.
 *
 *   [ketenpostd]
 *   chain_dir = /etc/ketenpost/chain     ; ca.crt, crl.pem, orgs/ (required)
 *   org = 00000001001234567000           ; own OIN (required)
 *   org_dir = <chain_dir>/orgs/<org>     ; own certificate and secret keys
 *   listen = tcp://127.0.0.1:7001        ; inbound endpoint (required for
 *                                        ; every role except auditor)
 *   state_dir = <org_dir>/state          ; database and API socket
 *   api = ipc://<state_dir>/api.sock     ; local API endpoint
 *   policy = <chain_dir>/policy.ini      ; the chain policy (agreement)
 *   verbose = 0
 *   bundle = /etc/ketenpost/bundle       ; instead of chain_dir: the signed
 *                                        ; chain bundle (PROTOCOL.md §2.5)
 *   ca = /etc/ketenpost/ca.crt           ; the pinned chain CA (with bundle)
 *   bundle_check_interval = 60s          ; how often the bundle is re-read
 *   expiry_warning = 14d                 ; warn this long before trust
 *                                        ; material (CRL, certs) expires
 *   worker_threads = 1                   ; 0: the checks and crypto of
 *                                        ; arrivals and API sends on the
 *                                        ; loop's one thread
 *
 *   [delivery]
 *   event_ttl = 30d          ; default expiry of sent events
 *   retry_initial = 1s       ; first receipt timeout; doubles per attempt
 *   retry_max = 60s          ; cap of the backoff
 *   replay_window = 14d      ; older events (not seen before) are refused
 *   max_clock_skew = 5m      ; events from further in the future are refused
 *   batch_max = 512          ; events per database transaction
 *   watchdog = on            ; sd_notify WATCHDOG=1 when systemd asks
 *   purge_interval = 1h      ; how often retention is enforced
 *   refusals_per_minute = 600 ; refused envelopes stored per partner
 *   window_kib = 8192        ; envelopes in flight per partner, KiB
 *
 *   [api]
 *   allow = user:NAME|group:NAME|key:Z85 ROLE...   ; repeatable: who may use
 *                            ; the local API, and for what (access.h)
 *
 *   [metrics]
 *   listen = 127.0.0.1:9464  ; Prometheus endpoint (off when unset)
 *
 *   [rest]
 *   listen = unix:<state_dir>/rest.sock ; REST/JSON API (rest.c), or off
 *   tls_listen = 127.0.0.1:8443        ; also over TLS (rest_tls.c), with
 *   tls_cert = FILE, tls_key = FILE    ; the server's certificate and key,
 *   tls_client_ca = FILE               ; the CA of the client certificates
 *                                      ; ([api] allow = cert:SHA256 ...)
 *   webhook = http://127.0.0.1:PORT/PATH ; notices of arrivals, receipts
 *                                      ; and overdue answers (local only)
 *
 * Durations are an integer with a unit: ms, s, m, h, d.  Relative paths are
 * relative to the folder of the config file.  Unknown sections or keys,
 * bad values and missing required keys are all reported, one line each,
 * as "FILE:LINE: message", and the whole config is refused.
 */
#ifndef KP_CONFIG_H
#define KP_CONFIG_H

#include <stdint.h>
#include <sys/socket.h>

#include "kperr.h"

#define KP_PATH_MAX 4096
#define KP_API_ALLOW_MAX 64

/* The roles of a local API client; a request needs one of them
 * (daemon/access.c decides which). */
enum api_role {
	API_ROLE_SUBMIT = 1,     /* send events, read the own outbox */
	API_ROLE_INBOX = 2,      /* read and acknowledge the inbox */
	API_ROLE_OFFICER = 4,    /* cases, timelines, reminders, report */
	API_ROLE_SUBJECT = 8,    /* subject access (GDPR art. 15) */
	API_ROLE_ADMIN = 16,     /* status, purge */
	API_ROLE_ALL = 31
};

/* One [api] allow line: PRINCIPAL ROLE..., PRINCIPAL user:NAME|UID,
 * group:NAME|GID, key:Z85 (a CURVE client key for a tcp:// API) or
 * cert:SHA256 (a client certificate on the REST API's tls_listen). */
enum { ACCESS_USER = 1, ACCESS_GROUP, ACCESS_KEY, ACCESS_CERT };
typedef struct api_allow {
	int kind;                      /* ACCESS_USER, _GROUP or _KEY */
	uint32_t id;                   /* uid or gid */
	uint8_t key[32];               /* a CURVE client public key, or
	                                * (ACCESS_CERT) the SHA-256 of a TLS
	                                * client certificate (DER) */
	unsigned roles;                /* enum api_role bits */
} api_allow_t;

typedef struct config {
	char path[KP_PATH_MAX];        /* the file read */
	char chain_dir[KP_PATH_MAX];
	char org[21];
	char org_dir[KP_PATH_MAX];
	char listen[256];              /* "" for none (auditor) */
	char state_dir[KP_PATH_MAX];
	char api[KP_PATH_MAX + 16];
	char policy[KP_PATH_MAX];      /* "" until set: <chain_dir>/policy.ini */
	int verbose;
	uint64_t event_ttl_ms;
	uint64_t retry_initial_ms;
	uint64_t retry_max_ms;
	uint64_t replay_window_ms;
	uint64_t max_clock_skew_ms;
	unsigned batch_max;
	int watchdog;
	uint64_t purge_interval_ms;
	uint64_t head_interval_ms;     /* [delivery] head_interval, 60s */
	unsigned refusals_per_minute;  /* stored refusals per partner, 600 */
	unsigned window_kib;           /* [delivery] window_kib, 8192 */
	api_allow_t api_allow[KP_API_ALLOW_MAX]; /* [api] allow, in order */
	size_t n_api_allow;
	char metrics_listen[64];       /* [metrics] listen, "" = off */
	char bundle[KP_PATH_MAX];      /* "" unless the chain is a bundle */
	char ca[KP_PATH_MAX];          /* pinned CA certificate (bundle) */
	uint64_t bundle_check_interval_ms; /* 60s */
	uint64_t expiry_warning_ms;    /* 14d */
	/* [rest] listen: "unix:PATH" (default unix:<state_dir>/rest.sock)
	 * or "off" */
	char rest_listen[KP_PATH_MAX + 8];
	/* [rest] tls_listen ("" = off): the REST API over TLS with client
	 * certificates, with its certificate, key and the clients' CA */
	char rest_tls_listen[64];
	char rest_tls_cert[KP_PATH_MAX];
	char rest_tls_key[KP_PATH_MAX];
	char rest_tls_client_ca[KP_PATH_MAX];
	/* [rest] webhook ("" = off): a local http:// URL that gets a notice
	 * of every arrival, receipt and overdue answer (webhook.c) */
	char rest_webhook[256];
	/* [ketenpostd] worker_threads: 1 (default) runs the work that reads
	 * no store (opening, checking, sealing) of arrivals and of API sends
	 * on a thread beside the loop each (daemon/worker.c); 0 runs the same
	 * code on the loop */
	unsigned worker_threads;
} config_t;

/*
 * Read and validate `path` into *cfg (fully initialised with defaults
 * first).  Every problem is passed to report(arg, line) as one
 * "FILE:LINE: message" line (report may be NULL); returns the number of
 * problems in *n_problems.  0 if the file was valid, -1 otherwise (err
 * holds the first problem).
 */
int config_load(const char *path, config_t *cfg,
    void (*report)(void *arg, const char *line), void *arg,
    int *n_problems, kp_err_t *err) __attribute__((warn_unused_result));

/* "submit", "inbox", ... for one role bit ("?" for none). */
const char *config_role_name(unsigned role);

/* A [rest] webhook URL, http://HOST:PORT/PATH with HOST 127.0.0.1 (any
 * of 127/8), localhost or [::1] (local only): OUT: the address, the HOST:PORT
 * text (for the Host header) and *path (in url; "/" when none).  0 / -1. */
int config_webhook_url(const char *url, struct sockaddr_storage *sa,
    socklen_t *salen, char *host, size_t hostlen, const char **path);

/* Parse "30d", "250ms", ... into milliseconds; 0 / -1. */
int config_parse_duration(const char *text, uint64_t *ms);

/* The API endpoint a client should use for the daemon configured in
 * `path` (reads the file like config_load). OUT: endpoint. */
int config_api_endpoint(const char *path, char *endpoint, size_t len,
    kp_err_t *err) __attribute__((warn_unused_result));

#endif
