/*
 * main.c: ketenpostd, the per-organisation daemon.
 *
 * Owns the one kpd_t: configuration, chain (trust, identity, partners),
 * store, ZeroMQ context and sockets.  Runs in the foreground, logs to
 * stderr (journald), talks to systemd with sd_notify, and stops cleanly on
 * SIGTERM: the loop finishes the batch in hand, and since every batch is
 * committed before it is acknowledged, stopping (or being killed) at any
 * point loses nothing that anyone was told was accepted.  SIGHUP reloads
 * the chain (CA, CRL, partner certificates) without touching the outbox.
 *
 * Before it touches anything it locks the state folder (s_lock_state): a
 * second daemon on the same state exits at once.  Once running, nothing
 * but a signal or our own revoked certificate ends it: a reload that
 * cannot bind keeps serving and binds again later (s_rebind_tick).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>
#include <zmq.h>

#include "access.h"
#include "daemon.h"
#include "envelope.h"
#include "log.h"
#include "pseudonym.h"
#include "rest.h"

static const char s_usage[] =
"usage: ketenpostd --config FILE [--check] [--accept-damaged-audit-log] [-v]\n"
"       ketenpostd --help | --version\n"
"Run the ketenpost daemon of one organisation in the foreground.\n"
"  --config FILE  the configuration (see ketenpostd.conf(5))\n"
"  --check        validate configuration, keys, certificates and partner\n"
"                 directory; print one line per problem; exit 0 or 1\n"
"  --accept-damaged-audit-log\n"
"                 start although the audit log does not verify against\n"
"                 its last signed head (an alarm entry records it)\n"
"  -v, --verbose  log debug lines too\n";

static void
s_report_partner(void *arg, const kp_err_t *e)
{
	const char *prefix = arg;

	if (prefix != NULL)
		printf("%s: partner refused (%s): %s\n", prefix,
		    kp_code_name(e->code), e->msg);
	else
		log_warnx("partner refused (%s): %s", kp_code_name(e->code),
		    e->msg);
}

static void
s_report_config(void *arg, const char *line)
{
	(void)arg;
	printf("ketenpostd: check: %s\n", line);
}

static int s_check_chain(const char *path, config_t *cfg);

/* --check: every problem, one line each; 0 if none. */
static int
s_check(const char *path)
{
	config_t cfg;
	int problems = 0, rc;
	char tmp[KP_PATH_MAX];
	kp_err_t e;

	if (config_load(path, &cfg, s_report_config, NULL, &problems, &e) != 0) {
		printf("ketenpostd: check: %s: %d problem(s)\n", path, problems);
		return 1;
	}
	if (kpd_bundle_for_check(&cfg, tmp, sizeof(tmp), &e) != 0) {
		printf("ketenpostd: check: %s\n", e.msg);
		return 1;
	}
	rc = s_check_chain(path, &cfg);
	kpd_bundle_check_done(tmp);
	return rc;
}

/* --check of policy and chain, from cfg (a bundle already unpacked). */
static int
s_check_chain(const char *path, config_t *cfgp)
{
	config_t cfg = *cfgp;
	chain_t *ch = NULL;
	policy_t *pol = NULL;
	int problems = 0;
	kp_err_t e;

	if (policy_load(cfg.policy, &pol, s_report_config, NULL, &problems,
	    &e) != 0) {
		if (problems == 0)
			printf("ketenpostd: check: %s\n", e.msg);
		printf("ketenpostd: check: %s: %d problem(s)\n", cfg.policy,
		    problems > 0 ? problems : 1);
		return 1;
	}
	policy_destroy(&pol);
	/* A stale CRL is a warning, not a failure: the daemon runs with it,
	 * failing closed (trustwatch.c), so systemd must still start it. */
	if (chain_open_ex(cfg.chain_dir, cfg.org_dir, TRUST_STALE_CRL_OK,
	    s_report_partner, "ketenpostd: check", &ch, &e) != 0) {
		printf("ketenpostd: check: %s (%s)\n", e.msg, kp_code_name(e.code));
		return 1;
	}
	if (trust_crl_next_update(ch->trust) != 0 &&
	    trust_crl_next_update(ch->trust) <= (int64_t)time(NULL))
		printf("ketenpostd: check: warning: the CRL of %s is past its "
		    "nextUpdate: the daemon will refuse every exchange until a "
		    "fresh CRL arrives (ask the chain CA: ketenpost-certs crl)\n",
		    cfg.chain_dir);
	problems = ch->n_problems;
	if (strcmp(partner_oin(identity_public(ch->self)), cfg.org) != 0) {
		printf("ketenpostd: check: %s: org %s does not match the "
		    "certificate's OIN %s\n", path, cfg.org,
		    partner_oin(identity_public(ch->self)));
		problems++;
	}
	if (cfg.listen[0] == '\0' &&
	    partner_role(identity_public(ch->self)) != KP_ROLE_AUDITOR) {
		printf("ketenpostd: check: %s: 'listen' is required for role "
		    "%s\n", path, kp_role_name(partner_role(
		    identity_public(ch->self))));
		problems++;
	}
	if (problems == 0)
		printf("ketenpostd: check: ok: %s (%s, %s), %zu partners\n",
		    cfg.org, partner_name(identity_public(ch->self)),
		    kp_role_name(partner_role(identity_public(ch->self))),
		    directory_count(ch->dir));
	chain_close(&ch);
	return problems == 0 ? 0 : 1;
}

/*
 * Bind, waiting out EADDRINUSE for a few seconds: on reload the previous
 * socket's close completes asynchronously in libzmq's I/O thread, and a
 * restarted daemon may find the port in TIME_WAIT-like states briefly.
 */
static int
s_bind_retry(void *sock, const char *endpoint, int tries)
{
	int i;

	for (i = 0; i < tries; i++) {
		if (zmq_bind(sock, endpoint) == 0)
			return 0;
		if (zmq_errno() != EADDRINUSE)
			return -1;
		usleep(20000);
	}
	return -1;
}

/* Bind tries: 5 s at start; 1 s on reload, then again from the loop. */
#define BIND_TRIES_START 250
#define BIND_TRIES_RELOAD 50
#define REBIND_INTERVAL_MS 1000

/* The inbound ROUTER and its monitor, bound with `tries` attempts.  On a
 * failed bind the socket stays (d->listening false) for s_rebind_tick.
 * Receive queue: at most ROUTER_RCVHWM envelopes per partner connection
 * (4x a sender's flow window, outbound.c); past it libzmq stops reading
 * that connection (TCP holds the rest, nothing is dropped), so a partner
 * without a window cannot grow our memory with its backlog.  Send queue
 * (receipts, <= 1 KiB each): kept large, since a receipt dropped there
 * costs a resend and a duplicate. */
#define ROUTER_RCVHWM 8192
static int
s_router_open(kpd_t *d, int tries, kp_err_t *err)
{
	int one = 1, zero = 0, hwm = 100000, rcvhwm = ROUTER_RCVHWM;
	int64_t maxmsg = KPD_FRAME_HARD_MAX;

	d->listening = false;
	d->router = zmq_socket(d->zctx, ZMQ_ROUTER);
	if (d->router == NULL ||
	    zmq_setsockopt(d->router, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
	    zmq_setsockopt(d->router, ZMQ_CURVE_SECRETKEY,
	    identity_transport_sk(d->chain->self), 32) ||
	    zmq_setsockopt(d->router, ZMQ_ZAP_DOMAIN, KPD_ZAP_DOMAIN,
	    strlen(KPD_ZAP_DOMAIN)) ||
	    zmq_setsockopt(d->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) ||
	    zmq_setsockopt(d->router, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(d->router, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm)) ||
	    zmq_setsockopt(d->router, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    kpd_monitor_start(d, d->router, "router",
	    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
	    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
	    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_DISCONNECTED,
	    &d->router_mon)) {
		kpd_close_monitored(&d->router, &d->router_mon);
		return kp_fail(err, KP_ERR_IO, "cannot open the inbound socket "
		    "for %s: %s", d->cfg.listen, zmq_strerror(zmq_errno()));
	}
	/* without it partners send one event per message (slower only) */
	if (kpd_frame_announce_packs(d->router) != 0)
		log_info("inbound: this libzmq cannot announce packs (%s); "
		    "partners send one event per message",
		    zmq_strerror(zmq_errno()));
	if (s_bind_retry(d->router, d->cfg.listen, tries) != 0)
		return kp_fail(err, KP_ERR_IO, "cannot listen on %s: %s",
		    d->cfg.listen, zmq_strerror(zmq_errno()));
	d->listening = true;
	d->rebind_at_ms = 0;
	return 0;
}

/*
 * Not listening after a reload could not bind (the old listener's close
 * had not completed, or another process took the port): try again every
 * REBIND_INTERVAL_MS.  Sending, receipts on our links and the API go on
 * meanwhile; partners' events wait in their outboxes.
 */
static void
s_rebind_tick(kpd_t *d)
{
	uint64_t now = kp_now_ms();
	kp_err_t e;

	if (d->rebind_at_ms == 0 || now < d->rebind_at_ms)
		return;
	if (d->router != NULL && zmq_bind(d->router, d->cfg.listen) == 0) {
		d->listening = true;
		d->rebind_at_ms = 0;
	} else if (d->router == NULL &&
	    s_router_open(d, 1, &e) == 0) {
		/* listening again */
	} else {
		d->rebind_at_ms = now + REBIND_INTERVAL_MS;
		return;
	}
	log_info("listening on %s again: partners can deliver to us",
	    d->cfg.listen);
}

/*
 * Who can reach the API (access.c decides what each client may do): on
 * tcp:// CURVE with the organisation's transport key as server key, so
 * only listed client keys get through ZAP; on a socket path the file is
 * the owner's alone unless the allow list names other users or groups,
 * whose processes the kernel's peer credentials then identify.
 */
static int
s_api_protect(kpd_t *d, kp_err_t *err)
{
	const char *path = d->cfg.api + strlen("ipc://");
	char z85[41];
	int one = 1;

	if (strncmp(d->cfg.api, "tcp://", 6) == 0) {
		if (zmq_setsockopt(d->api, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
		    zmq_setsockopt(d->api, ZMQ_CURVE_SECRETKEY,
		    identity_transport_sk(d->chain->self), 32))
			return kp_fail(err, KP_ERR_IO, "API: CURVE: %s",
			    zmq_strerror(zmq_errno()));
		if (zmq_z85_encode(z85, partner_transport_pk(identity_public(
		    d->chain->self)), 32) != NULL)
			log_info("api: %s with CURVE, server key %s", d->cfg.api,
			    z85);
		return 0;
	}
	if (access_has_others(&d->cfg) && chmod(path, 0666) != 0)
		return kp_fail(err, KP_ERR_IO, "API: chmod %s: %s", path,
		    strerror(errno));
	return 0;
}

static int
s_api_open(kpd_t *d, kp_err_t *err)
{
	int zero = 0;
	const char *path = d->cfg.api + strlen("ipc://");

	if (strncmp(d->cfg.api, "ipc://", 6) == 0)
		(void)unlink(path);  /* a stale socket of a killed daemon */
	d->api = zmq_socket(d->zctx, ZMQ_ROUTER);
	if (d->api == NULL ||
	    zmq_setsockopt(d->api, ZMQ_ZAP_DOMAIN, KPD_API_ZAP_DOMAIN,
	    strlen(KPD_API_ZAP_DOMAIN)) ||
	    apisrv_socket_options(d->api) != 0 ||
	    zmq_setsockopt(d->api, ZMQ_LINGER, &zero, sizeof(zero)))
		return kp_fail(err, KP_ERR_IO, "cannot open the API at %s: %s",
		    d->cfg.api, zmq_strerror(zmq_errno()));
	if (strncmp(d->cfg.api, "tcp://", 6) == 0 && s_api_protect(d, err) != 0)
		return -1;
	if (apisrv_bind(d->api, d->cfg.api) != 0)
		return kp_fail(err, KP_ERR_IO, "cannot open the API at %s: %s",
		    d->cfg.api, zmq_strerror(zmq_errno()));
	if (strncmp(d->cfg.api, "ipc://", 6) == 0 && s_api_protect(d, err) != 0)
		return -1;
	return 0;
}

static int
s_zap_open(kpd_t *d, kp_err_t *err)
{
	int zero = 0;

	d->zap = zmq_socket(d->zctx, ZMQ_REP);
	if (d->zap == NULL ||
	    zmq_setsockopt(d->zap, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_bind(d->zap, "inproc://zeromq.zap.01") != 0)
		return kp_fail(err, KP_ERR_IO, "cannot start the ZAP handler: %s",
		    zmq_strerror(zmq_errno()));
	return 0;
}

/*
 * One daemon per state folder: an exclusive flock on
 * state_dir/ketenpostd.lock, taken before the database is opened or the
 * API socket unlinked.  A second daemon on the same folder would otherwise
 * unlink and rebind the running one's API socket and append to its audit
 * log behind its back.  flock rather than fcntl: the lock belongs to the
 * open file, released by the kernel when the process dies however it
 * dies (a kill -9 leaves no stale lock), and is not lost when some library
 * closes another descriptor of the same file.  The file holds the pid of
 * the holder, for the message of the one refused.
 */
static int
s_lock_state(kpd_t *d, kp_err_t *err)
{
	char path[KP_PATH_MAX + 32], buf[32];
	int fd, n;
	ssize_t got;

	if (mkdir(d->cfg.state_dir, 0700) != 0 && errno != EEXIST)
		return kp_fail(err, KP_ERR_IO, "cannot create the state folder "
		    "%s: %s", d->cfg.state_dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/ketenpostd.lock", d->cfg.state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return kp_fail(err, KP_ERR_IO, "cannot open the lock file %s: %s",
		    path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		n = errno;
		got = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[got > 0 ? got : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		close(fd);
		if (n == EWOULDBLOCK)
			return kp_fail(err, KP_ERR_IO, "another ketenpostd (pid %s)"
			    " runs on the state folder %s; this one exits and "
			    "changes nothing (stop that one first, or give this "
			    "configuration its own state_dir)", buf[0] ? buf :
			    "unknown", d->cfg.state_dir);
		return kp_fail(err, KP_ERR_IO, "cannot lock %s: %s", path,
		    strerror(n));
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		log_warn("cannot write the pid to %s (the lock holds)", path);
	d->lock_fd = fd;
	return 0;
}

static bool
s_is_auditor(const kpd_t *d)
{
	return partner_role(identity_public(d->chain->self)) == KP_ROLE_AUDITOR;
}

/* The store, with the metadata key derived from the storage key (atrest.c)
 * and the case pseudonym key (pseudonym.h); the derived keys are wiped once
 * the store holds its own copies. */
static int
s_store_open(kpd_t *d, kp_err_t *err)
{
	uint8_t *keys = sodium_malloc(64);
	int ret = -1;

	if (keys == NULL || atrest_meta_key_derive(d->storage_key, keys) != 0 ||
	    pseudonym_key(d->chain->self, keys + 32) != 0)
		kp_fail(err, KP_ERR_NOMEM, "out of memory");
	else
		ret = store_open(d->cfg.state_dir, keys, keys + 32, &d->store,
		    err);
	sodium_free(keys);
	return ret;
}

/* The audit entries of a (re)load of `pol` and the chain, in one
 * transaction: written before the new ones are put in force. */
static int
s_audit_load(kpd_t *d, const policy_t *pol, kp_err_t *err)
{
	audit_entry_t e;

	if (kpd_begin(d, err) != 0)
		return -1;
	memset(&e, 0, sizeof(e));
	e.kind = AUDIT_POLICY_LOAD;
	e.has_policy_hash = true;
	memcpy(e.policy_hash, policy_hash(pol), 32);
	if (ledger_append(d, &e, err) != 0)
		goto fail;
	memset(&e, 0, sizeof(e));
	e.kind = AUDIT_CHAIN_LOAD;
	if (ledger_append(d, &e, err) != 0 || kpd_commit(d, err) != 0)
		goto fail;
	return 0;
fail:
	kpd_rollback(d);
	return -1;
}

static void
s_report_policy(void *arg, const char *line)
{
	(void)arg;
	log_warnx("policy: %s", line);
}

/* Repeated warnings: a burst each, then one a minute with a count
 * (ketenpostd(8), LOGGING). */
#define LOG_BURST 10
#define LOG_INTERVAL_MS 60000

static int
s_limits_new(kpd_t *d, kp_err_t *err)
{
	if ((d->rl_handshake = ratelimit_new(LOG_BURST,
	    LOG_INTERVAL_MS)) == NULL ||
	    (d->rl_refusal = ratelimit_new(LOG_BURST, LOG_INTERVAL_MS)) ==
	    NULL || (d->rl_zap = ratelimit_new(LOG_BURST,
	    LOG_INTERVAL_MS)) == NULL || (d->rl_storage = ratelimit_new(
	    LOG_BURST, LOG_INTERVAL_MS)) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	return 0;
}

static void
s_limits_destroy(kpd_t *d)
{
	ratelimit_destroy(&d->rl_handshake);
	ratelimit_destroy(&d->rl_refusal);
	ratelimit_destroy(&d->rl_zap);
	ratelimit_destroy(&d->rl_storage);
	inbound_caps_destroy(d);
	batchbuf_free(&d->api_batch);
}

/* Everything after the config: policy, chain, store, sockets. */
static int
s_start(kpd_t *d, kp_err_t *err)
{
	int problems = 0;

	d->started_ms = kp_now_ms();
	if (s_lock_state(d, err) != 0 || s_limits_new(d, err) != 0)
		return -1;
	if ((d->metrics = metrics_new()) == NULL ||
	    (d->batch_cache = batch_cache_new(KPD_BATCH_CACHE)) == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	if (kpd_bundle_start(d, err) != 0)
		return -1;
	if (policy_load(d->cfg.policy, &d->policy, s_report_policy, NULL,
	    &problems, err) != 0)
		return -1;
	if (chain_open_ex(d->cfg.chain_dir, d->cfg.org_dir, TRUST_STALE_CRL_OK,
	    s_report_partner, NULL, &d->chain, err) != 0)
		return -1;
	if (strcmp(partner_oin(identity_public(d->chain->self)), d->cfg.org))
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: org %s does not "
		    "match the certificate's OIN %s", d->cfg.path, d->cfg.org,
		    partner_oin(identity_public(d->chain->self)));
	if (d->cfg.listen[0] == '\0' && !s_is_auditor(d))
		return kp_fail(err, KP_ERR_INVALID_ARG, "%s: 'listen' is "
		    "required", d->cfg.path);
	d->storage_key = sodium_malloc(32);
	if (d->storage_key == NULL || atrest_key_derive(identity_storage_sk(
	    d->chain->self), d->storage_key) != 0)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	if (s_store_open(d, err) != 0 ||
	    ledger_open(d, err) != 0 || s_audit_load(d, d->policy, err) != 0)
		return -1;
	ledger_sign_head(d, false);
	if ((d->zctx = zmq_ctx_new()) == NULL)
		return kp_fail(err, KP_ERR_IO, "cannot create a ZeroMQ context");
	if (s_zap_open(d, err) != 0 || s_api_open(d, err) != 0 ||
	    apisrv_start(d, err) != 0)
		return -1;
	/* an auditor too: a reload may give it a partner's certificate and
	 * open the ROUTER (its passes then run inline: no thread to idle) */
	if (inbound_start(d, !s_is_auditor(d) && d->cfg.worker_threads > 0,
	    err) != 0)
		return -1;
	/* On stale trust neither listen nor connect: partners retry, our
	 * events stay queued (trustwatch.c). */
	if (!s_is_auditor(d) && !kpd_trust_stale(d) &&
	    (s_router_open(d, BIND_TRIES_START, err) != 0 ||
	    outbound_links_open(d, err) != 0))
		return -1;
	if (d->cfg.metrics_listen[0] != '\0' && metrics_listen(d->metrics,
	    d->cfg.metrics_listen, d, err) != 0)
		return -1;
	if (((strcmp(d->cfg.rest_listen, "off") != 0 && d->cfg.rest_listen[0])
	    || d->cfg.rest_tls_listen[0] || d->cfg.rest_webhook[0]) &&
	    ((d->rest = rest_new()) == NULL || rest_listen(d->rest,
	    d->cfg.rest_listen, d, err) != 0))
		return -1;
	return 0;
}

static void
s_stop(kpd_t *d)
{
	inbound_stop(d);  /* first: it may store a pass (store, router) */
	apisrv_stop(d);  /* the pass in hand stored and answered first */
	rest_destroy(&d->rest);
	metrics_destroy(&d->metrics);
	batch_cache_destroy(&d->batch_cache);
	/* a head for the whole log; none under a revoked certificate */
	if (d->ledger != NULL && d->chain != NULL &&
	    d->exit_status != KPD_EXIT_REVOKED)
		ledger_sign_head(d, false);
	ledger_close(d);
	outbound_links_close(d);
	kpd_close_monitored(&d->router, &d->router_mon);
	kpd_close(&d->api);
	kpd_close(&d->zap);
	if (d->zctx != NULL)
		zmq_ctx_term(d->zctx);
	d->zctx = NULL;
	store_close(&d->store);
	sodium_free(d->storage_key);
	d->storage_key = NULL;
	chain_close(&d->chain);
	policy_destroy(&d->policy);
	kpd_bundle_stop(d);
	kpd_trust_stop(d);
	s_limits_destroy(d);
	if (d->lock_fd >= 0)
		close(d->lock_fd);  /* last: the state is left alone now */
	d->lock_fd = -1;
}

/*
 * Our own certificate is revoked: stop.  Going on would mean signing
 * receipts, tree heads and envelopes with a key the chain has withdrawn
 * (partners refuse them, but our own audit log would go on under it).
 * Staying up without signing was rejected: the API would accept sends
 * that can never leave.  Start refuses a revoked certificate too, so the
 * daemon stays down until the organisation has a valid one.
 */
static void
s_own_cert_revoked(kpd_t *d, const kp_err_t *e)
{
	log_warnx("reload: our own certificate is revoked (%s); stopping: a "
	    "revoked organisation signs nothing.  Pending events stay in the "
	    "outbox; start again with a new certificate", e->msg);
	d->stopping = true;
	d->exit_status = KPD_EXIT_REVOKED;
}

/* Put the new chain's sockets in force; never fatal (issue 9 item 3). */
static void
s_reopen_sockets(kpd_t *d)
{
	kp_err_t e;

	/* on stale trust neither listen nor connect (trustwatch.c) */
	if (s_is_auditor(d) || kpd_trust_stale(d))
		return;
	if (s_router_open(d, BIND_TRIES_RELOAD, &e) != 0) {
		d->rebind_at_ms = kp_now_ms() + REBIND_INTERVAL_MS;
		log_warnx("reload: %s; still sending and serving the API, "
		    "binding again every %d ms", e.msg, REBIND_INTERVAL_MS);
	}
	if (outbound_links_open(d, &e) != 0)
		log_warnx("reload: %s; events stay queued", e.msg);
}

/*
 * SIGHUP: load the chain again (CA, CRL, partner certificates).  Only a
 * clean load replaces the running one.  The inbound socket is opened
 * anew so every partner re-authenticates against the new directory (a
 * revoked partner's open connection is dropped), and the links are
 * rebuilt; the outbox is untouched and resends whatever was in flight.
 * Nothing here ends the process, except our own certificate being
 * revoked (s_own_cert_revoked).
 */
static void
s_reload(kpd_t *d)
{
	chain_t *fresh = NULL;
	policy_t *pol = NULL;
	int problems = 0;
	kp_err_t e;

	log_info("reload: reading %s and %s", d->cfg.chain_dir, d->cfg.policy);
	sd_notify(0, "RELOADING=1");
	/* The passes in hand were prepared under the running chain and
	 * policy: store them (receipts, answers) before anything below swaps
	 * them. */
	inbound_settle(d);
	apisrv_settle(d);
	rest_wake(d->rest);
	if (policy_load(d->cfg.policy, &pol, s_report_policy, NULL, &problems,
	    &e) != 0 || chain_open_ex(d->cfg.chain_dir, d->cfg.org_dir,
	    TRUST_STALE_CRL_OK, s_report_partner, NULL, &fresh, &e) != 0 ||
	    s_audit_load(d, pol, &e) != 0) {
		chain_close(&fresh);
		policy_destroy(&pol);
		if (e.code == KP_ERR_CERT_REVOKED) {
			s_own_cert_revoked(d, &e);
			return;
		}
		log_warnx("reload failed, keeping the running chain and policy: "
		    "%s", e.msg);
		sd_notify(0, "READY=1");
		return;
	}
	policy_destroy(&d->policy);
	d->policy = pol;
	outbound_links_close(d);
	kpd_close_monitored(&d->router, &d->router_mon);
	d->listening = false;
	chain_close(&d->chain);
	d->chain = fresh;
	if (ledger_meta(d, &e) != 0)  /* a renewal: the new certificate */
		log_warnx("reload: audit log certificate not recorded: %s",
		    e.msg);
	s_reopen_sockets(d);
	log_info("reload: %zu partners, %d refused",
	    directory_count(d->chain->dir), d->chain->n_problems);
	sd_notify(0, "READY=1");
}

static int
s_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void
s_on_signal(kpd_t *d, int sigfd)
{
	struct signalfd_siginfo si;

	while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			(void)kpd_bundle_tick(d, true);
			s_reload(d);
		}
		else {
			log_info("signal %u: stopping", si.ssi_signo);
			d->stopping = true;
		}
	}
}

enum { P_SIG, P_ZAP, P_API, P_ROUTER, P_ROUTER_MON, P_METRICS, P_REST,
    P_INBOUND_WORK, P_API_WORK, P_FIXED };

/* The poll set: fixed sockets, then a dealer and a monitor per link. */
static size_t
s_pollset(kpd_t *d, int sigfd, zmq_pollitem_t **items)
{
	size_t n = P_FIXED + 2 * d->n_links, i;
	zmq_pollitem_t *it = calloc(n, sizeof(*it));

	if (it == NULL)
		fatalx("out of memory");
	it[P_SIG] = (zmq_pollitem_t){ NULL, sigfd, ZMQ_POLLIN, 0 };
	it[P_ZAP] = (zmq_pollitem_t){ d->zap, 0, ZMQ_POLLIN, 0 };
	it[P_API] = (zmq_pollitem_t){ d->api, 0,
	    apisrv_wants_requests(d) ? ZMQ_POLLIN : 0, 0 };
	it[P_API_WORK] = (zmq_pollitem_t){ NULL, apisrv_work_fd(d),
	    apisrv_work_fd(d) >= 0 ? ZMQ_POLLIN : 0, 0 };
	/* while a pass is prepared the next read waits for it (inbound.c) */
	it[P_ROUTER] = (zmq_pollitem_t){ d->router, 0,
	    d->router && inbound_work_fd(d) < 0 ? ZMQ_POLLIN : 0, 0 };
	it[P_ROUTER_MON] = (zmq_pollitem_t){ d->router_mon, 0,
	    d->router_mon ? ZMQ_POLLIN : 0, 0 };
	if (d->router == NULL)  /* an auditor: poll a harmless fd instead */
		it[P_ROUTER] = it[P_ROUTER_MON] =
		    (zmq_pollitem_t){ NULL, -1, 0, 0 };
	it[P_METRICS] = (zmq_pollitem_t){ NULL, metrics_fd(d->metrics),
	    metrics_fd(d->metrics) >= 0 ? ZMQ_POLLIN : 0, 0 };
	it[P_REST] = (zmq_pollitem_t){ NULL, rest_fd(d->rest),
	    rest_fd(d->rest) >= 0 ? ZMQ_POLLIN : 0, 0 };
	it[P_INBOUND_WORK] = (zmq_pollitem_t){ NULL, inbound_work_fd(d),
	    inbound_work_fd(d) >= 0 ? ZMQ_POLLIN : 0, 0 };
	for (i = 0; i < d->n_links; i++) {
		it[P_FIXED + 2 * i] = (zmq_pollitem_t){ d->links[i].dealer, 0,
		    ZMQ_POLLIN, 0 };
		it[P_FIXED + 2 * i + 1] = (zmq_pollitem_t){
		    d->links[i].monitor, 0, ZMQ_POLLIN, 0 };
	}
	*items = it;
	return n;
}

static void
s_dispatch(kpd_t *d, zmq_pollitem_t *it, size_t n)
{
	size_t i;

	if (it[P_ZAP].revents & ZMQ_POLLIN)
		zap_handle(d);
	if (it[P_INBOUND_WORK].revents & ZMQ_POLLIN)
		inbound_work(d);
	if (it[P_ROUTER].revents & ZMQ_POLLIN)
		inbound_drain(d);
	if (it[P_ROUTER_MON].revents & ZMQ_POLLIN)
		inbound_monitor(d);
	if (it[P_API].revents & ZMQ_POLLIN)
		apisrv_drain(d);
	/* arrivals stored (inbound_drain stores a drain's first pass
	 * itself): long polls look again */
	if ((it[P_INBOUND_WORK].revents | it[P_ROUTER].revents) & ZMQ_POLLIN)
		rest_wake(d->rest);
	if (it[P_API_WORK].revents & ZMQ_POLLIN)
		apisrv_work_done(d);
	for (i = 0; P_FIXED + 2 * i + 1 < n && i < d->n_links; i++) {
		if (it[P_FIXED + 2 * i].revents & ZMQ_POLLIN)
			rest_wake(d->rest);  /* a receipt or answer */
		if (it[P_FIXED + 2 * i].revents & ZMQ_POLLIN)
			outbound_drain(d, &d->links[i]);
		if (it[P_FIXED + 2 * i + 1].revents & ZMQ_POLLIN)
			outbound_monitor(d, &d->links[i]);
	}
}

static void
s_loop(kpd_t *d, int sigfd)
{
	uint64_t wd_usec = 0, next_wd = 0, next_ckpt = 0, now;
	zmq_pollitem_t *it;
	size_t n;
	long timeout;
	int ready;

	if (d->cfg.watchdog && sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;
	while (!d->stopping) {
		n = s_pollset(d, sigfd, &it);
		timeout = kpd_trust_stale(d) ? 1000 : (long)rest_wait_ms(d->rest,
		    metrics_wait_ms(d->metrics, outbound_wait_ms(d, 1000)));
		if ((ready = zmq_poll(it, (int)n, timeout)) < 0 &&
		    zmq_errno() != EINTR)
			fatalx("zmq_poll: %s", zmq_strerror(zmq_errno()));
		/* idle: copy what the checkpoint thread (store_ckpt.c) left in
		 * the WAL, so the next write starts the log afresh; at most
		 * once a second */
		if (ready == 0 && timeout > 0 && (now = kp_now_ms()) >= next_ckpt) {
			(void)store_checkpoint_idle(d->store);
			next_ckpt = now + 1000;
		}
		if (it[P_SIG].revents & ZMQ_POLLIN)
			s_on_signal(d, sigfd);
		if (!d->stopping)
			s_dispatch(d, it, n);
		metrics_run(d->metrics);
		rest_run(d->rest);
		free(it);
		if (d->stopping)
			break;
		s_rebind_tick(d);
		retention_tick(d);
		ledger_tick(d);
		cases_tick(d);
		/* a newer chain bundle was unpacked, or a CRL or certificate
		 * time passed (trustwatch.c) */
		if (kpd_bundle_tick(d, false) || kpd_trust_tick(d))
			s_reload(d);
		if (!s_is_auditor(d)) {
			outbound_links_tick(d);
			outbound_expire(d);
			if (!kpd_trust_stale(d) && outbound_wait_ms(d, 1) == 0)
				outbound_send_due(d);
		}
		now = kp_now_ms();
		if (wd_usec > 0 && now >= next_wd) {
			sd_notify(0, "WATCHDOG=1");
			next_wd = now + wd_usec / 2000;
		}
	}
}

static int
s_parse_args(int argc, char **argv, const char **config, int *check,
    int *verbose, bool *accept_damaged)
{
	static const struct option opts[] = {
		{ "config", 1, NULL, 'c' }, { "check", 0, NULL, 'k' },
		{ "accept-damaged-audit-log", 0, NULL, 'A' },
		{ "verbose", 0, NULL, 'v' }, { "help", 0, NULL, 'h' },
		{ "version", 0, NULL, 'V' }, { NULL, 0, NULL, 0 } };
	int c;

	*config = NULL;
	*check = *verbose = 0;
	*accept_damaged = false;
	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': *config = optarg; break;
		case 'k': *check = 1; break;
		case 'A': *accept_damaged = true; break;
		case 'v': (*verbose)++; break;
		case 'h': fputs(s_usage, stdout); exit(0);
		case 'V': printf("ketenpostd %s\n", KP_VERSION); exit(0);
		default: fputs(s_usage, stderr); return -1;
		}
	}
	if (*config == NULL || optind != argc) {
		fputs("ketenpostd: --config FILE is required\n", stderr);
		fputs(s_usage, stderr);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *config;
	int check, verbose, sigfd, problems = 0;
	bool accept_damaged;
	kpd_t d;
	kp_err_t e;

	/* no core dump, no ptrace by same-user processes: keys, payloads */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (s_parse_args(argc, argv, &config, &check, &verbose,
	    &accept_damaged) != 0)
		return 2;
	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	umask(077);  /* the API socket, the database: owner only */
	if (check)
		return s_check(config);
	memset(&d, 0, sizeof(d));
	d.lock_fd = -1;
	d.accept_damaged_log = accept_damaged;
	if (config_load(config, &d.cfg, s_report_config, NULL, &problems,
	    &e) != 0)
		return 1;
	log_init("ketenpostd", verbose > d.cfg.verbose ? verbose : d.cfg.verbose);
	if ((sigfd = s_signals()) < 0)
		fatal("signalfd");
	if (s_start(&d, &e) != 0) {
		log_warnx("%s", e.msg);
		s_stop(&d);
		return 1;
	}
	log_info("%s (%s, %s) listening on %s, API %s, %zu partners",
	    d.cfg.org, partner_name(identity_public(d.chain->self)),
	    kp_role_name(partner_role(identity_public(d.chain->self))),
	    d.cfg.listen[0] ? d.cfg.listen : "(none)", d.cfg.api,
	    directory_count(d.chain->dir));
	sd_notify(0, "READY=1\nSTATUS=running");
	s_loop(&d, sigfd);
	sd_notify(0, "STOPPING=1");
	s_stop(&d);
	close(sigfd);
	log_info("stopped");
	return d.exit_status;
}
