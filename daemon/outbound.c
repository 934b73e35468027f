/*
 * outbound.c: delivering the outbox to partners and settling receipts.
 *
 * One DEALER per partner (CURVE client, server key = the partner's
 * certified transport key, ZMQ_IMMEDIATE so nothing queues towards a
 * partner that is not connected).  The outbox in SQLite is the only queue
 * that matters; sockets are just pipes and may be torn down at any time
 * (reload, crash) without losing anything.
 *
 * Delivery state machine of an outbox row (store.h):
 *   0. new               -> stored with attempts 1, next = now + backoff,
 *                           and sent at once after the commit
 *                           (apisrv.c -> outbound_send_now)
 *   1. pending, due      -> sent; attempts+1, next = now + backoff
 *                           (outbound_send_due)
 *   2. pending, not due  -> due again when the backoff runs out, or at once
 *                           when the partner's connection comes up
 *                           (outbound_monitor -> store_outbox_wake)
 *   3. pending           -> delivered | rejected, on a verified receipt
 *                           from that partner naming our envelope digest
 *                           (outbound_drain -> store_outbox_settle)
 *   4. pending, expired  -> dead, logged as a dead letter (outbound_expire)
 * Many events are in flight per partner at once (pipelining); the
 * receiver's duplicate elimination makes every resend harmless.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "daemon.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "log.h"

uint64_t
outbound_backoff_ms(const config_t *cfg, uint32_t attempts)
{
	uint64_t t = cfg->retry_initial_ms;
	uint32_t i;

	for (i = 1; i < attempts && t < cfg->retry_max_ms; i++)
		t *= 2;
	if (t > cfg->retry_max_ms)
		t = cfg->retry_max_ms;
	/* jitter: 75%..125%, so partners coming back are not stampeded;
	 * never 0, or a row would be due again at once, forever */
	t = t * 3 / 4 + randombytes_uniform((uint32_t)(t / 2 + 1));
	return t > 0 ? t : 1;
}

static int
s_link_open(kpd_t *d, const partner_t *p, link_t *l, kp_err_t *err)
{
	const identity_t *self = d->chain->self;
	int one = 1, zero = 0, ivl = 100, ivl_max = 5000, hwm = 100000;
	int64_t maxmsg = KP_MAX_RECEIPT + 16;

	memset(l, 0, sizeof(*l));
	snprintf(l->oin, sizeof(l->oin), "%s", partner_oin(p));
	snprintf(l->endpoint, sizeof(l->endpoint), "%s", partner_endpoint(p));
	l->dealer = zmq_socket(d->zctx, ZMQ_DEALER);
	if (l->dealer == NULL ||
	    zmq_setsockopt(l->dealer, ZMQ_CURVE_SERVERKEY,
	    partner_transport_pk(p), 32) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_CURVE_PUBLICKEY,
	    partner_transport_pk(identity_public(self)), 32) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_CURVE_SECRETKEY,
	    identity_transport_sk(self), 32) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_IMMEDIATE, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_MAXMSGSIZE, &maxmsg,
	    sizeof(maxmsg)) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max,
	    sizeof(ivl_max)) != 0 ||
	    kpd_monitor_start(d, l->dealer, l->oin, ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
	    ZMQ_EVENT_DISCONNECTED, &l->monitor) != 0 ||
	    zmq_connect(l->dealer, l->endpoint) != 0) {
		kpd_close(&l->monitor);
		kpd_close(&l->dealer);
		return kp_fail(err, KP_ERR_IO, "cannot open link to %s at %s: %s",
		    l->oin, l->endpoint, zmq_strerror(zmq_errno()));
	}
	return 0;
}

/* Should we deliver to this partner at all? */
static bool
s_reachable(const kpd_t *d, const partner_t *p)
{
	return strcmp(partner_oin(p), d->cfg.org) != 0 &&
	    partner_role(p) != KP_ROLE_AUDITOR && partner_endpoint(p) != NULL;
}

int
outbound_links_open(kpd_t *d, kp_err_t *err)
{
	const directory_t *dir = d->chain->dir;
	size_t i, n = 0;

	d->links = calloc(directory_count(dir) + 1, sizeof(link_t));
	if (d->links == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	for (i = 0; i < directory_count(dir); i++) {
		const partner_t *p = peer_partner(directory_at(dir, i));

		if (!s_reachable(d, p))
			continue;
		if (s_link_open(d, p, &d->links[n], err) != 0) {
			log_warnx("outbound: %s; events to it stay queued",
			    err->msg);
			continue;
		}
		log_debug("outbound: link to %s (%s) at %s", partner_oin(p),
		    partner_name(p), partner_endpoint(p));
		n++;
	}
	d->n_links = n;
	d->outbound_dirty = true;
	return 0;
}

void
outbound_links_close(kpd_t *d)
{
	size_t i;

	for (i = 0; i < d->n_links; i++) {
		/* monitor stopped before its reader closes: see main.c */
		(void)zmq_socket_monitor(d->links[i].dealer, NULL, 0);
		kpd_close(&d->links[i].monitor);
		kpd_close(&d->links[i].dealer);
	}
	free(d->links);
	d->links = NULL;
	d->n_links = 0;
}

static link_t *
s_link_find(kpd_t *d, const char *oin)
{
	size_t i;

	for (i = 0; i < d->n_links; i++)
		if (strcmp(d->links[i].oin, oin) == 0)
			return &d->links[i];
	return NULL;
}

/* Send one envelope frame on l without blocking; -1 if not connected. */
static int
s_send_frame(kpd_t *d, link_t *l, const uint8_t id[16], const uint8_t *env,
    size_t len)
{
	uint8_t *frame;
	size_t flen = 0;
	char text[37];
	int rc = 0;

	if ((frame = kpd_frame_build(d, l->oin, KPD_FRAME_ENVELOPE, env, len,
	    &flen)) == NULL)
		return -1;
	if (zmq_send(l->dealer, frame, flen, ZMQ_DONTWAIT) < 0) {
		log_debug("event %s: %s not connected; retry later",
		    kpd_id(id, text), l->oin);
		rc = -1;
	}
	free(frame);
	return rc;
}

void
outbound_send_now(kpd_t *d, const char *oin, const uint8_t id[16],
    const uint8_t *env, size_t len)
{
	link_t *l = s_link_find(d, oin);
	char text[37];

	if (l != NULL && s_send_frame(d, l, id, env, len) == 0)
		log_debug("event %s sent to %s (attempt 1)", kpd_id(id, text),
		    oin);
}

/* Send an envelope stored at rest under its per-event key. */
static int
s_send_stored(kpd_t *d, link_t *l, const outbox_row_t *row,
    const uint8_t *at_rest, size_t len)
{
	uint8_t key[32], *env = NULL;
	size_t elen = 0;
	char id[37];
	int rc;

	if (!row->has_event_key ||
	    atrest_event_key_unwrap(d->storage_key, row->event_id,
	    row->event_key, key) != 0 ||
	    atrest_open(key, row->event_id, at_rest, len, &env, &elen) != 0) {
		sodium_memzero(key, sizeof(key));
		log_warnx("event %s: stored envelope does not decrypt "
		    "(corrupt database or wrong key files)",
		    kpd_id(row->event_id, id));
		return -1;
	}
	sodium_memzero(key, sizeof(key));
	rc = s_send_frame(d, l, row->event_id, env, elen);
	free(env);
	return rc;
}

struct attempt {
	uint8_t id[16];
	uint32_t attempts;
	uint64_t next_ms;
};

struct due_walk {
	kpd_t *d;
	uint64_t now;
	struct attempt *att;
	size_t n, cap;
	size_t sent;
};

static int
s_send_one(void *arg, const outbox_row_t *row, const uint8_t *env,
    size_t len)
{
	struct due_walk *w = arg;
	link_t *l = s_link_find(w->d, row->to_oin);
	struct attempt *a = &w->att[w->n];
	char id[37];

	if (w->n == w->cap)
		return 1;
	memcpy(a->id, row->event_id, 16);
	a->attempts = row->attempts + 1;
	a->next_ms = w->now + outbound_backoff_ms(&w->d->cfg, a->attempts);
	w->n++;
	if (l == NULL) {
		log_warnx("event %s: no link to %s (not a reachable partner); "
		    "kept pending", kpd_id(row->event_id, id), row->to_oin);
		return 0;
	}
	if (s_send_stored(w->d, l, row, env, len) != 0)
		return 0;
	w->sent++;
	log_debug("event %s sent to %s (attempt %u)", kpd_id(row->event_id, id),
	    row->to_oin, a->attempts);
	return 0;
}

/* The database refuses writes: resend nothing for a while rather than
 * spin on rows that stay due (they were sent; their attempt is not
 * recorded). */
static void
s_blocked(kpd_t *d, const char *why)
{
	d->outbound_blocked_until = kp_now_ms() + d->cfg.retry_initial_ms;
	log_warnx("outbound: recording attempts failed (%s); sending paused "
	    "for %llu ms", why, (unsigned long long)d->cfg.retry_initial_ms);
}

void
outbound_send_due(kpd_t *d)
{
	struct due_walk w = { .d = d, .now = kp_now_ms(),
	    .cap = d->cfg.batch_max };
	size_t i;
	kp_err_t e;

	d->outbound_dirty = false;
	w.att = calloc(w.cap, sizeof(*w.att));
	if (w.att == NULL)
		return;
	if (store_outbox_due(d->store, w.now, w.cap, s_send_one, &w, &e) != 0)
		log_warnx("outbound: reading the outbox failed: %s", e.msg);
	if (w.n > 0 && kpd_begin(d, &e) == 0) {
		for (i = 0; i < w.n; i++)
			if (store_outbox_schedule(d->store, w.att[i].id,
			    w.att[i].attempts, w.att[i].next_ms, &e) != 0)
				break;
		if (i < w.n || kpd_commit(d, &e) != 0) {
			kpd_rollback(d);
			s_blocked(d, e.msg);
		}
	} else if (w.n > 0)
		s_blocked(d, e.msg);
	if (w.n == w.cap)
		d->outbound_dirty = true;  /* more may be due right now */
	free(w.att);
}

/* A partner applies another chain policy: name both hashes. */
static void
s_log_mismatch(kpd_t *d, link_t *l, const char *id, const receipt_t *r)
{
	char ours[65], theirs[65] = "(not given)";

	kp_hex(policy_hash(d->policy), 32, ours);
	if (r->has_expected_policy_hash)
		kp_hex(r->expected_policy_hash, 32, theirs);
	log_warnx("event %s rejected by %s: policy_mismatch: we apply policy "
	    "%s, %s applies %s; align the chain agreement", id, l->oin, ours,
	    l->oin, theirs);
}

/* The audit entry of a settled receipt (fail-closed: -1 fails the batch). */
static int
s_audit_receipt(kpd_t *d, const receipt_t *r, uint64_t now)
{
	outbox_row_t row;
	audit_entry_t e;
	bool found = false;
	kp_err_t err;

	memset(&e, 0, sizeof(e));
	e.kind = AUDIT_RECEIPT_RECEIVED;
	e.direction = AUDIT_OUT;
	e.time_ms = now;
	memcpy(e.partner_oin, r->issuer_oin, sizeof(e.partner_oin));
	e.has_event_id = e.has_envelope_digest = e.has_receipt_digest = true;
	memcpy(e.event_id, r->event_id, 16);
	memcpy(e.envelope_digest, r->envelope_digest, 32);
	memcpy(e.receipt_digest, r->digest, 32);
	e.reason = r->reason;
	if (store_outbox_get(d->store, r->event_id, &row, &found, &err) == 0 &&
	    found) {
		e.event_type = row.event_type;
		memcpy(e.purpose, row.purpose, sizeof(e.purpose));
		memcpy(e.legal_basis, row.legal_basis, sizeof(e.legal_basis));
		e.has_case_pseudonym = true;
		memcpy(e.case_pseudonym, row.case_ref, 32);
	}
	return ledger_append(d, &e, &err);
}

/* Settle one receipt frame received on link l; -1 if it could not be
 * recorded (then the whole batch of receipts is rolled back). */
static int
s_settle(kpd_t *d, link_t *l, const uint8_t *buf, size_t len, uint64_t now)
{
	receipt_t r;
	bool applied = false;
	int state;
	kp_err_t e;
	char id[37] = "-";

	if (receipt_verify(d->chain->dir, buf, len, &r, &e) != 0) {
		log_warnx("outbound: receipt from %s refused (%s): %s", l->oin,
		    kp_code_name(e.code), e.msg);
		return 0;
	}
	if (r.has_event_id)
		kpd_id(r.event_id, id);
	if (strcmp(r.issuer_oin, l->oin) != 0 || !r.has_event_id) {
		log_warnx("outbound: receipt for event %s by %s arrived on the "
		    "link to %s; ignored", id, r.issuer_oin, l->oin);
		return 0;
	}
	ledger_witness(d, l->oin, buf, len, true);
	state = r.status == KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED ?
	    STORE_DELIVERED : STORE_REJECTED;
	if (store_outbox_settle(d->store, r.event_id, r.issuer_oin,
	    r.envelope_digest, state, r.reason, r.digest, buf, len, now,
	    &applied, &e) != 0) {
		log_warnx("outbound: storing receipt for %s failed: %s", id,
		    e.msg);
		return -1;
	}
	if (applied && s_audit_receipt(d, &r, now) != 0)
		return -1;
	if (applied && state == STORE_DELIVERED)
		log_info("event %s delivered to %s (signed receipt)", id, l->oin);
	else if (applied && r.reason == KP__REASON__REASON_POLICY_MISMATCH)
		s_log_mismatch(d, l, id, &r);
	else if (applied)
		log_warnx("event %s rejected by %s: %s", id, l->oin,
		    protobuf_c_enum_descriptor_get_value(&kp__reason__descriptor,
		    r.reason) ? protobuf_c_enum_descriptor_get_value(
		    &kp__reason__descriptor, r.reason)->name : "unknown");
	return 0;
}

void
outbound_drain(kpd_t *d, link_t *l)
{
	uint64_t now = kp_now_ms();
	unsigned n = 0;
	int failed = 0;
	zmq_msg_t m;
	kp_err_t e;

	if (kpd_begin(d, &e) != 0) {
		log_warnx("outbound: %s; receipts wait", e.msg);
		usleep(100000);  /* the socket stays readable: do not spin */
		return;
	}
	while (n < d->cfg.batch_max) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, l->dealer, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		if (zmq_msg_size(&m) > 1 &&
		    ((uint8_t *)zmq_msg_data(&m))[0] == KPD_FRAME_RECEIPT) {
			if (s_settle(d, l, (uint8_t *)zmq_msg_data(&m) + 1,
			    zmq_msg_size(&m) - 1, now) != 0)
				failed = 1;
		}
		else
			log_warnx("outbound: unexpected frame from %s ignored",
			    l->oin);
		zmq_msg_close(&m);
		n++;
	}
	if (failed || kpd_commit(d, &e) != 0) {
		kpd_rollback(d);
		log_warnx("outbound: storing receipts failed (%s); the partner "
		    "will send them again on our retry", failed ? "storage or "
		    "audit log" : e.msg);
	}
}

void
outbound_monitor(kpd_t *d, link_t *l)
{
	uint16_t event;
	char addr[256];
	kp_err_t e;

	while (kpd_monitor_read(l->monitor, &event, addr, sizeof(addr)) == 0) {
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			l->up = true;
			log_info("outbound: connected to %s at %s", l->oin, addr);
			if (store_outbox_wake(d->store, l->oin, &e) != 0)
				log_warnx("outbound: %s", e.msg);
			d->outbound_dirty = true;
		} else if (event == ZMQ_EVENT_DISCONNECTED && l->up) {
			l->up = false;
			log_info("outbound: disconnected from %s", l->oin);
		}
	}
}

struct dead_walk {
	kpd_t *d;
	int failed;
};

static int
s_dead(void *arg, const outbox_row_t *row, const uint8_t *env, size_t len)
{
	struct dead_walk *w = arg;
	audit_entry_t e;
	kp_err_t err;
	char id[37];

	(void)env;
	(void)len;
	log_warnx("event %s to %s expired after %u attempts: dead letter",
	    kpd_id(row->event_id, id), row->to_oin, row->attempts);
	memset(&e, 0, sizeof(e));
	e.kind = AUDIT_DEAD_LETTER;
	e.direction = AUDIT_OUT;
	memcpy(e.partner_oin, row->to_oin, sizeof(e.partner_oin));
	e.has_event_id = e.has_envelope_digest = e.has_case_pseudonym = true;
	memcpy(e.event_id, row->event_id, 16);
	memcpy(e.envelope_digest, row->envelope_digest, 32);
	memcpy(e.case_pseudonym, row->case_ref, 32);
	e.event_type = row->event_type;
	memcpy(e.purpose, row->purpose, sizeof(e.purpose));
	memcpy(e.legal_basis, row->legal_basis, sizeof(e.legal_basis));
	if (ledger_append(w->d, &e, &err) != 0)
		w->failed = 1;
	return 0;
}

void
outbound_expire(kpd_t *d)
{
	uint64_t now = kp_now_ms();
	struct dead_walk w = { d, 0 };
	kp_err_t e;

	if (now < d->next_expire_ms)
		return;
	d->next_expire_ms = now + 1000;
	if (kpd_begin(d, &e) != 0)
		return;
	if (store_outbox_expire(d->store, now, s_dead, &w, &e) != 0 ||
	    w.failed || kpd_commit(d, &e) != 0) {
		kpd_rollback(d);
		log_warnx("outbound: expiring the outbox failed; retried later");
	}
}

uint64_t
outbound_wait_ms(kpd_t *d, uint64_t cap_ms)
{
	uint64_t when = UINT64_MAX, now = kp_now_ms();
	kp_err_t e;

	if (now < d->outbound_blocked_until)
		return d->outbound_blocked_until - now < cap_ms ?
		    d->outbound_blocked_until - now : cap_ms;
	if (d->outbound_dirty)
		return 0;
	if (store_outbox_next_due(d->store, &when, &e) != 0 || when == UINT64_MAX)
		return cap_ms;
	if (when <= now)
		return 0;
	return when - now < cap_ms ? when - now : cap_ms;
}
