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
 *
 * Flow control (struct flow, per link, memory only): at most FLOW_WINDOW
 * events in flight (sent, no receipt yet), each with its send time; a
 * receipt frees its slot and, for an event sent once, gives a round-trip
 * sample (smoothed as in RFC 6298).  The retry timer is the larger of the
 * configured backoff and srtt + 4 rttvar, so a slow partner is not sent
 * everything again after retry_initial.  A new event that finds the
 * window full waits in a bounded FIFO of ids (FLOW_DEFERRED; one that
 * does not fit waits for its timer) and is sent when a receipt frees a
 * slot; a due row of a partner whose window is full is skipped (and the
 * loop waits for receipts, not for the timer).  A row that comes due
 * while its event is in flight and younger than the retry timer is
 * rescheduled, not sent again; an overdue one is resent in its own slot.
 * The window is emptied on a disconnect (what was in the pipe is lost;
 * the rows' timers resend it) and a slot whose receipt is four retry
 * timers late is given up, so a receipt that never comes cannot shrink
 * the window for good (outbound_wait_ms wakes the loop for that, too).
 *
 * A link itself (link_t) is:
 *   a. connecting  -> up on a succeeded handshake (outbound_monitor);
 *                     libzmq reconnects by itself after a lost connection
 *   b. refused     -> a failed handshake (the partner's ZAP does not know
 *                     our certificate yet, a protocol error, a server key
 *                     the partner does not use): libzmq would give up;
 *                     reopen_at_ms is set (s_link_refused), and
 *                     outbound_links_tick then builds a fresh DEALER
 *                     (s_link_reopen) -> a.  With the partner's other
 *                     valid certificate first, if it has one not yet
 *                     tried (at once), then with its newest again after
 *                     the delivery backoff.
 *   c. up          -> a on a disconnect.
 * So a link recovers without a reload of this side once the partner
 * accepts us; the warnings of a refusing partner are rate-limited.
 *
 * Which server key (docs/TRUST.md §5): a partner in a renewal's overlap
 * has two valid certificates and listens with the key of one of them,
 * the old one until it switches, the new one after; nothing in the bundle
 * says which.  The link tries the newest first and falls back to the
 * other on a failed handshake, and keeps the one that worked until a
 * handshake with it fails (the partner switched and restarted its
 * listener): the key whose handshake succeeds is by definition the one
 * the partner uses, whatever order the bundle and the switch came in.
 * What we seal does not depend on it (envelope_seal: the newest; the
 * partner opens with its previous or next key too).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "daemon.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "later.h"
#include "log.h"
#include "webhook.h"

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

/* ---- flow control (see the header) ---- */

#define FLOW_WINDOW 2048      /* events in flight per partner */
#define FLOW_DEFERRED 8192    /* new events waiting for the window */

struct flight {
	uint8_t id[16];
	uint64_t sent_ms;
	bool resent;          /* Karn: no round-trip sample from a resend */
};

struct flow {
	struct flight fl[FLOW_WINDOW];
	size_t n;
	uint8_t def[FLOW_DEFERRED][16];   /* FIFO ring of event ids */
	size_t def_head, def_n;
	uint64_t srtt_ms, rttvar_ms;      /* srtt 0: no sample yet */
	bool skipped;                     /* a due row waited for the window */
};

static ssize_t
s_flow_find(const struct flow *f, const uint8_t id[16])
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (memcmp(f->fl[i].id, id, 16) == 0)
			return (ssize_t)i;
	return -1;
}

static bool
s_flow_room(const link_t *l)
{
	return l->flow == NULL || l->flow->n < FLOW_WINDOW;
}

/* The retry timer of link l: the configured backoff for this attempt,
 * or longer if the measured round trip says a receipt takes longer. */
static uint64_t
s_flow_rto(const kpd_t *d, const link_t *l, uint32_t attempts)
{
	uint64_t t = outbound_backoff_ms(&d->cfg, attempts), rto;

	if (l == NULL || l->flow == NULL || l->flow->srtt_ms == 0)
		return t;
	rto = l->flow->srtt_ms + 4 * l->flow->rttvar_ms;
	if (rto > d->cfg.retry_max_ms)
		rto = d->cfg.retry_max_ms;
	return rto > t ? rto : t;
}

/* Event id was handed to l's socket at now. */
static void
s_flow_sent(link_t *l, const uint8_t id[16], uint64_t now)
{
	struct flow *f = l->flow;
	ssize_t i;

	if (f == NULL)
		return;
	if ((i = s_flow_find(f, id)) >= 0) {
		f->fl[i].sent_ms = now;
		f->fl[i].resent = true;
	} else if (f->n < FLOW_WINDOW) {
		memcpy(f->fl[f->n].id, id, 16);
		f->fl[f->n].sent_ms = now;
		f->fl[f->n].resent = false;
		f->n++;
	}
}

/* A receipt for event id arrived on l: free its slot, learn the RTT. */
static void
s_flow_receipt(link_t *l, const uint8_t id[16], uint64_t now)
{
	struct flow *f = l->flow;
	uint64_t r, dev;
	ssize_t i;

	if (f == NULL || (i = s_flow_find(f, id)) < 0)
		return;
	if (!f->fl[i].resent) {
		r = now > f->fl[i].sent_ms ? now - f->fl[i].sent_ms : 1;
		if (f->srtt_ms == 0) {
			f->srtt_ms = r;
			f->rttvar_ms = r / 2;
		} else {
			dev = r > f->srtt_ms ? r - f->srtt_ms : f->srtt_ms - r;
			f->rttvar_ms = (3 * f->rttvar_ms + dev) / 4;
			f->srtt_ms = (7 * f->srtt_ms + r) / 8;
		}
	}
	f->fl[i] = f->fl[--f->n];
}

/* How long after its send a slot is given up: four retry timers
 * (without the backoff's jitter, so the deadline is stable). */
static uint64_t
s_flow_late(const kpd_t *d, const struct flow *f)
{
	uint64_t late = f->srtt_ms + 4 * f->rttvar_ms;

	if (late < d->cfg.retry_initial_ms)
		late = d->cfg.retry_initial_ms;
	if (late > d->cfg.retry_max_ms)
		late = d->cfg.retry_max_ms;
	return 4 * late;
}

/* Give up slots whose receipt is four retry timers late (dropped by the
 * partner, sent into a connection that then broke, or an event that
 * expired meanwhile): a pending row is sent again by its own timer, and
 * takes a slot again then. */
static void
s_flow_reap(const kpd_t *d, link_t *l, uint64_t now)
{
	struct flow *f = l->flow;
	uint64_t late;
	size_t i = 0;

	if (f == NULL)
		return;
	late = s_flow_late(d, f);
	while (i < f->n)
		if (now > f->fl[i].sent_ms + late)
			f->fl[i] = f->fl[--f->n];
		else
			i++;
}

/* When the oldest slot of a full window will be given up. */
static uint64_t
s_flow_reap_at(const kpd_t *d, const struct flow *f)
{
	uint64_t oldest = UINT64_MAX;
	size_t i;

	for (i = 0; i < f->n; i++)
		if (f->fl[i].sent_ms < oldest)
			oldest = f->fl[i].sent_ms;
	return oldest == UINT64_MAX ? UINT64_MAX : oldest +
	    s_flow_late(d, f) + 1;
}

/* Has any link a free slot? */
static bool
s_any_room(const kpd_t *d)
{
	size_t i;

	for (i = 0; i < d->n_links; i++)
		if (s_flow_room(&d->links[i]))
			return true;
	return false;
}

static void
s_flow_defer(link_t *l, const uint8_t id[16])
{
	struct flow *f = l->flow;

	if (f == NULL || f->def_n == FLOW_DEFERRED)
		return;  /* sent when its timer runs out */
	memcpy(f->def[(f->def_head + f->def_n) % FLOW_DEFERRED], id, 16);
	f->def_n++;
}

static void
s_flow_reset(link_t *l)
{
	if (l->flow == NULL)
		return;
	l->flow->n = 0;
	l->flow->def_n = 0;
	l->flow->skipped = false;
}

/* Events of a link's monitor: up, down, and every way a handshake can
 * fail (after some of these libzmq gives the endpoint up for good). */
#define LINK_EVENTS (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | \
    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | \
    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
/* Warnings per link: a burst, then one a minute with the count. */
#define LINK_LOG_BURST 3
#define LINK_LOG_INTERVAL_MS 60000

/* The DEALER and its monitor of link l (oin, endpoint already set). */
static int
s_link_sockets(kpd_t *d, const partner_t *p, link_t *l, kp_err_t *err)
{
	const identity_t *self = d->chain->self;
	int one = 1, zero = 0, ivl = 100, ivl_max = 5000, hwm = 100000;
	int64_t maxmsg = KP_MAX_RECEIPT + 16;

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
	    kpd_monitor_start(d, l->dealer, l->oin, LINK_EVENTS,
	    &l->monitor) != 0 ||
	    zmq_connect(l->dealer, l->endpoint) != 0) {
		kpd_close_monitored(&l->dealer, &l->monitor);
		return kp_fail(err, KP_ERR_IO, "cannot open link to %s at %s: %s",
		    l->oin, l->endpoint, zmq_strerror(zmq_errno()));
	}
	return 0;
}

static int
s_link_open(kpd_t *d, const peer_t *peer, link_t *l, kp_err_t *err)
{
	const partner_t *p = peer_partner(peer);

	memset(l, 0, sizeof(*l));
	snprintf(l->oin, sizeof(l->oin), "%s", partner_oin(p));
	snprintf(l->endpoint, sizeof(l->endpoint), "%s", partner_endpoint(p));
	if ((l->rl = ratelimit_new(LINK_LOG_BURST, LINK_LOG_INTERVAL_MS)) ==
	    NULL || (l->flow = calloc(1, sizeof(*l->flow))) == NULL) {
		ratelimit_destroy(&l->rl);
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	}
	if (s_link_sockets(d, peer_cert(peer, l->cert), l, err) != 0) {
		ratelimit_destroy(&l->rl);
		free(l->flow);
		l->flow = NULL;
		return -1;
	}
	return 0;
}

/*
 * Rebuild a link whose handshake was refused: a fresh DEALER (and
 * monitor) to the same partner, from the directory in force now.  libzmq
 * does not reconnect an endpoint after the server refused the handshake
 * (a ZAP 400, a protocol error): the session is terminated, not retried.
 * Reconnecting the old socket (zmq_disconnect + zmq_connect) was rejected:
 * whether the endpoint is still known to the socket after libzmq dropped
 * its session depends on libzmq internals; a new socket does not.
 */
static void
s_link_reopen(kpd_t *d, link_t *l)
{
	const peer_t *peer = directory_find(d->chain->dir, l->oin);
	uint64_t sup = 0;
	char note[64];
	kp_err_t e;

	l->reopen_at_ms = 0;
	kpd_close_monitored(&l->dealer, &l->monitor);
	s_flow_reset(l);
	if (peer == NULL) {
		log_warnx("outbound: %s is no longer a verified partner; its "
		    "link stays closed until a reload", l->oin);
		return;
	}
	l->cert = l->next_cert < peer_cert_count(peer) ? l->next_cert : 0;
	if (s_link_sockets(d, peer_cert(peer, l->cert), l, &e) != 0) {
		l->reopen_at_ms = kp_now_ms() + outbound_backoff_ms(&d->cfg,
		    l->refusals);
		if (ratelimit_allow(l->rl, kp_now_ms(), &sup))
			log_warnx("outbound: %s; tried again later%s", e.msg,
			    ratelimit_note(sup, note, sizeof(note)));
		return;
	}
	log_debug("outbound: link to %s at %s re-established (after %u "
	    "refused handshakes)", l->oin, l->endpoint, l->refusals);
}

void
outbound_links_tick(kpd_t *d)
{
	uint64_t now = kp_now_ms();
	size_t i;

	for (i = 0; i < d->n_links; i++)
		if (d->links[i].reopen_at_ms != 0 &&
		    now >= d->links[i].reopen_at_ms)
			s_link_reopen(d, &d->links[i]);
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
		if (s_link_open(d, directory_at(dir, i), &d->links[n], err) !=
		    0) {
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
		kpd_close_monitored(&d->links[i].dealer,
		    &d->links[i].monitor);
		ratelimit_destroy(&d->links[i].rl);
		free(d->links[i].flow);
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
	} else
		metrics_count(d->metrics, KPM_SENT, l->oin, 0, -1);
	free(frame);
	return rc;
}

void
outbound_send_now(kpd_t *d, const char *oin, const uint8_t id[16],
    const uint8_t *env, size_t len)
{
	link_t *l = s_link_find(d, oin);
	char text[37];

	if (l == NULL)
		return;
	if (!s_flow_room(l)) {
		s_flow_defer(l, id);
		return;
	}
	if (s_send_frame(d, l, id, env, len) == 0) {
		s_flow_sent(l, id, kp_now_ms());
		log_debug("event %s sent to %s (attempt 1)", kpd_id(id, text),
		    oin);
	}
}

bool
outbound_single_sig(kpd_t *d, const char *oin)
{
	link_t *l = s_link_find(d, oin);

	return l != NULL && l->single_sig;
}

/*
 * A verified refusal as `malformed` without an event id: the partner did
 * not parse our envelope (PROTOCOL.md §7 step 2).  What we seal parses,
 * unless it carries a batch proof to a receiver older than protocol 1.2,
 * so from now on this link gets single signatures (§3); its pending
 * events are resent re-signed when their timers run out.
 */
static void
s_batch_refused(link_t *l, const receipt_t *r)
{
	if (l->single_sig || r->has_event_id ||
	    r->reason != KP__REASON__REASON_MALFORMED ||
	    strcmp(r->issuer_oin, l->oin) != 0)
		return;
	l->single_sig = true;
	log_warnx("partner %s refused an envelope before reading its header "
	    "(malformed): a ketenpostd older than protocol 1.2 does not read "
	    "batch signatures; signing every envelope to it singly from now "
	    "on (PROTOCOL.md §3)", l->oin);
}

/* The envelope to send on l: as stored, or re-signed singly for a link
 * that reads no batch proofs.  OUT: *out (malloc'd), or -1. */
static int
s_wire_form(kpd_t *d, link_t *l, uint8_t **env, size_t *elen)
{
	uint8_t *plain = NULL;
	size_t plen = 0;
	kp_err_t e;

	if (!l->single_sig)
		return 0;
	if (envelope_single(d->chain->dir, *env, *elen, &plain, &plen,
	    &e) != 0) {
		log_warnx("outbound: re-signing an envelope for %s failed: %s",
		    l->oin, e.msg);
		return -1;
	}
	free(*env);
	*env = plain;
	*elen = plen;
	return 0;
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
	rc = s_wire_form(d, l, &env, &elen) != 0 ? -1 :
	    s_send_frame(d, l, row->event_id, env, elen);
	free(env);
	return rc;
}

struct deferred_send {
	kpd_t *d;
	link_t *l;
};

/* Send one deferred event (row and envelope from the store) on arg's
 * link, if it is still pending and not in flight already. */
static int
s_send_deferred(void *arg, const outbox_row_t *row, const uint8_t *env,
    size_t len)
{
	struct deferred_send *a = arg;

	if (s_flow_find(a->l->flow, row->event_id) < 0 &&
	    s_send_stored(a->d, a->l, row, env, len) == 0)
		s_flow_sent(a->l, row->event_id, kp_now_ms());
	return 0;
}

/* Receipts freed slots on l: the deferred new events go first, then due
 * rows that were skipped for the window (outbound_send_due). */
static void
s_flow_refill(kpd_t *d, link_t *l)
{
	struct flow *f = l->flow;
	struct deferred_send a = { d, l };
	kp_err_t e;

	while (f != NULL && f->def_n > 0 && f->n < FLOW_WINDOW) {
		uint8_t id[16];

		memcpy(id, f->def[f->def_head], 16);
		f->def_head = (f->def_head + 1) % FLOW_DEFERRED;
		f->def_n--;
		if (store_outbox_pending(d->store, id, s_send_deferred, &a,
		    &e) != 0) {
			log_warnx("outbound: reading the outbox failed: %s",
			    e.msg);
			break;
		}
	}
	if (f != NULL && f->skipped && f->n < FLOW_WINDOW) {
		f->skipped = false;
		d->outbound_dirty = true;
	}
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
	uint64_t timer;
	ssize_t fi;
	char id[37];

	if (w->n == w->cap)
		return 1;
	fi = l != NULL && l->flow != NULL ? s_flow_find(l->flow,
	    row->event_id) : -1;
	if (fi >= 0 && (timer = s_flow_rto(w->d, l, row->attempts)) > 0 &&
	    w->now < l->flow->fl[fi].sent_ms + timer) {
		/* in flight, its receipt not yet overdue: wait, do not resend */
		memcpy(a->id, row->event_id, 16);
		a->attempts = row->attempts;
		a->next_ms = l->flow->fl[fi].sent_ms + timer;
		w->n++;
		return 0;
	}
	/* a resend of an event in the window keeps its slot */
	if (fi < 0 && l != NULL && !s_flow_room(l)) {
		l->flow->skipped = true;  /* sent when a receipt frees a slot */
		/* every window full: reading more rows (each with its
		 * envelope) would only skip them too */
		return s_any_room(w->d) ? 0 : 1;
	}
	memcpy(a->id, row->event_id, 16);
	a->attempts = row->attempts + 1;
	a->next_ms = w->now + s_flow_rto(w->d, l, a->attempts);
	w->n++;
	if (a->attempts > 1)
		metrics_count(w->d->metrics, KPM_RETRY, row->to_oin, 0, -1);
	if (l == NULL) {
		log_warnx("event %s: no link to %s (not a reachable partner); "
		    "kept pending", kpd_id(row->event_id, id), row->to_oin);
		return 0;
	}
	if (s_send_stored(w->d, l, row, env, len) != 0)
		return 0;
	s_flow_sent(l, row->event_id, w->now);
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
	uint64_t sup;
	char note[64];

	d->outbound_blocked_until = kp_now_ms() + d->cfg.retry_initial_ms;
	if (kpd_log_ok(d->rl_storage, &sup))
		log_warnx("outbound: recording attempts failed (%s); sending "
		    "paused for %llu ms%s", why, (unsigned long long)
		    d->cfg.retry_initial_ms, ratelimit_note(sup, note,
		    sizeof(note)));
}

void
outbound_send_due(kpd_t *d)
{
	struct due_walk w = { .d = d, .now = kp_now_ms(),
	    .cap = d->cfg.batch_max };
	size_t i;
	kp_err_t e;

	d->outbound_dirty = false;
	for (i = 0; i < d->n_links; i++)
		s_flow_reap(d, &d->links[i], w.now);
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
s_log_mismatch(kpd_t *d, link_t *l, const char *id, const receipt_t *r,
    later_t *lt)
{
	char ours[65], theirs[65] = "(not given)";

	kp_hex(policy_hash(d->policy), 32, ours);
	if (r->has_expected_policy_hash)
		kp_hex(r->expected_policy_hash, 32, theirs);
	later_add(lt, LOG_WARNING, id, l->oin, "REASON_POLICY_MISMATCH",
	    "event %s rejected by %s: policy_mismatch: we apply "
	    "policy %s, %s applies %s; align the chain agreement", id, l->oin,
	    ours, l->oin, theirs);
}

/* The audit entry of a settled receipt (fail-closed: -1 fails the batch). */
/* The audit entry of a receipt that settled `row` (as the settle
 * returned it: type, purpose, legal basis, pseudonym). */
static int
s_audit_receipt(kpd_t *d, const receipt_t *r, const outbox_row_t *row,
    uint64_t now)
{
	audit_entry_t e;
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
	e.event_type = row->event_type;
	memcpy(e.purpose, row->purpose, sizeof(e.purpose));
	memcpy(e.legal_basis, row->legal_basis, sizeof(e.legal_basis));
	e.has_case_pseudonym = true;
	memcpy(e.case_pseudonym, row->case_ref, 32);
	return ledger_append(d, &e, &err);
}

/* Settle one receipt frame received on link l; -1 if it could not be
 * recorded (then the whole batch of receipts is rolled back). */
static int
s_settle(kpd_t *d, link_t *l, const uint8_t *buf, size_t len, uint64_t now,
    later_t *lt)
{
	receipt_t r;
	outbox_row_t row;
	bool applied = false;
	int state;
	kp_err_t e;
	char id[37] = "-";

	if (receipt_verify_cached(d->chain->dir, d->batch_cache, buf, len, &r,
	    &e) != 0) {
		log_warnx("outbound: receipt from %s refused (%s): %s", l->oin,
		    kp_code_name(e.code), e.msg);
		return 0;
	}
	if (r.has_event_id)
		kpd_id(r.event_id, id);
	s_batch_refused(l, &r);
	if (strcmp(r.issuer_oin, l->oin) != 0 || !r.has_event_id) {
		log_warnx("outbound: receipt for event %s by %s arrived on the "
		    "link to %s; ignored", id, r.issuer_oin, l->oin);
		return 0;
	}
	s_flow_receipt(l, r.event_id, now);
	ledger_witness(d, l->oin, buf, len, true);
	state = r.status == KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED ?
	    STORE_DELIVERED : STORE_REJECTED;
	memset(&row, 0, sizeof(row));
	if (store_outbox_settle(d->store, r.event_id, r.issuer_oin,
	    r.envelope_digest, state, r.reason, r.digest, buf, len, now,
	    &applied, &row, &e) != 0) {
		log_warnx("outbound: storing receipt for %s failed: %s", id,
		    e.msg);
		return -1;
	}
	if (applied && (s_audit_receipt(d, &r, &row, now) != 0 ||
	    webhook_notice(d, WEBHOOK_RECEIPT, r.event_id, &e) != 0))
		return -1;
	if (applied)
		later_count(lt, d->metrics, KPM_RECEIPT, l->oin, 0, r.reason);
	if (applied && state == STORE_DELIVERED)
		later_add(lt, LOG_INFO, id, l->oin, NULL, "event %s delivered to "
		    "%s (signed receipt)", id, l->oin);
	else if (applied && r.reason == KP__REASON__REASON_POLICY_MISMATCH)
		s_log_mismatch(d, l, id, &r, lt);
	else if (applied) {
		const ProtobufCEnumValue *why =
		    protobuf_c_enum_descriptor_get_value(&kp__reason__descriptor,
		    r.reason);
		later_add(lt, LOG_WARNING, id, l->oin, why ? why->name :
		    "unknown", "event %s rejected by %s: %s", id, l->oin,
		    why ? why->name : "unknown");
	}
	return 0;
}

void
outbound_drain(kpd_t *d, link_t *l)
{
	uint64_t now = kp_now_ms();
	unsigned n = 0;
	int failed = 0;
	uint64_t sup;
	char note[64];
	later_t lt = { 0 };
	zmq_msg_t m;
	kp_err_t e;

	if (kpd_begin(d, &e) != 0) {
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("outbound: %s; receipts wait%s", e.msg,
			    ratelimit_note(sup, note, sizeof(note)));
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
			    zmq_msg_size(&m) - 1, now, &lt) != 0)
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
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("outbound: %u receipts not stored (%s); the "
			    "partner will send them again on our retry%s", n,
			    failed ? "storage or audit log" : e.msg,
			    ratelimit_note(sup, note, sizeof(note)));
		later_flush(&lt, false);
	} else
		later_flush(&lt, true);
	s_flow_refill(d, l);
}

static const char *
s_handshake_failure(uint16_t event)
{
	switch (event) {
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
		return "refused by the partner: it does not (yet) know our "
		    "certificate, or no longer";
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		return "protocol error: not the server key we have for it?";
	default:
		return "failed";
	}
}

/* Number of valid certificates of the link's partner (1 if gone). */
static size_t
s_link_certs(const kpd_t *d, const link_t *l)
{
	const peer_t *peer = directory_find(d->chain->dir, l->oin);

	return peer != NULL ? peer_cert_count(peer) : 1;
}

/* Milliseconds before trying a partner's other certificate: at once, but
 * not in a loop should both fail at once. */
#define LINK_OTHER_CERT_MS 50

/* A handshake failed: rebuild the link after a backoff, whatever libzmq
 * would have done (it gives some failures up for good); first with the
 * partner's other certificate, if it has one not yet tried. */
static void
s_link_refused(kpd_t *d, link_t *l, uint16_t event, const char *addr)
{
	size_t n = s_link_certs(d, l);
	uint64_t wait, sup = 0;
	char note[64];

	/* The dealer stays until the rebuild: should libzmq's own reconnect
	 * succeed meanwhile, the success cancels the rebuild and l->cert
	 * still names the key it used.  Its further failures until then
	 * (libzmq retries on its own) change nothing: the rebuild is due. */
	l->up = false;
	if (l->reopen_at_ms != 0)
		return;
	if (++l->tried < n) {
		l->next_cert = (l->cert + 1) % (unsigned)n;
		l->reopen_at_ms = kp_now_ms() + LINK_OTHER_CERT_MS;
		log_info("outbound: handshake with %s at %s %s; trying the "
		    "server key of its %s certificate", l->oin,
		    addr[0] ? addr : l->endpoint, s_handshake_failure(event),
		    l->next_cert == 0 ? "newest" : "previous");
		return;
	}
	l->tried = 0;
	l->next_cert = 0;
	if (l->refusals < 64)
		l->refusals++;
	wait = outbound_backoff_ms(&d->cfg, l->refusals);
	l->reopen_at_ms = kp_now_ms() + wait;
	if (ratelimit_allow(l->rl, kp_now_ms(), &sup))
		log_warnx("outbound: handshake with %s at %s %s; link "
		    "re-established in %llu ms (refusal %u)%s", l->oin,
		    addr[0] ? addr : l->endpoint, s_handshake_failure(event),
		    (unsigned long long)wait, l->refusals,
		    ratelimit_note(sup, note, sizeof(note)));
}

void
outbound_monitor(kpd_t *d, link_t *l)
{
	uint16_t event;
	char addr[256];
	kp_err_t e;

	while (l->monitor != NULL &&
	    kpd_monitor_read(l->monitor, &event, addr, sizeof(addr)) == 0) {
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			l->up = true;
			l->refusals = 0;
			l->tried = 0;
			l->reopen_at_ms = 0;
			log_info("outbound: connected to %s at %s%s", l->oin, addr,
			    l->cert == 0 ? "" : " (server key of its previous "
			    "certificate: it has not switched to the new one)");
			if (store_outbox_wake(d->store, l->oin, &e) != 0)
				log_warnx("outbound: %s", e.msg);
			d->outbound_dirty = true;
		} else if (event == ZMQ_EVENT_DISCONNECTED) {
			s_flow_reset(l);
			if (l->up)
				log_info("outbound: disconnected from %s",
				    l->oin);
			l->up = false;
		} else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
		    event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
		    event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
			s_link_refused(d, l, event, addr);
	}
}

struct dead_walk {
	kpd_t *d;
	int failed;
	size_t n;
	later_t lt;
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
	w->n++;
	later_add(&w->lt, LOG_WARNING, kpd_id(row->event_id, id), row->to_oin,
	    NULL, "event %s to %s expired after %u attempts: dead letter", id,
	    row->to_oin, row->attempts);
	later_count(&w->lt, w->d->metrics, KPM_DEAD, row->to_oin, 0, -1);
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
	struct dead_walk w = { .d = d };
	uint64_t sup;
	char note[64];
	kp_err_t e;

	if (now < d->next_expire_ms)
		return;
	d->next_expire_ms = now + 1000;
	if (kpd_begin(d, &e) != 0)
		return;
	if (store_outbox_expire(d->store, now, s_dead, &w, &e) != 0 ||
	    w.failed || kpd_commit(d, &e) != 0) {
		kpd_rollback(d);
		later_flush(&w.lt, false);
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("outbound: expiring %zu events failed; retried "
			    "later%s", w.n, ratelimit_note(sup, note,
			    sizeof(note)));
	} else
		later_flush(&w.lt, true);
}

uint64_t
outbound_wait_ms(kpd_t *d, uint64_t cap_ms)
{
	uint64_t when = UINT64_MAX, now = kp_now_ms();
	size_t i;
	kp_err_t e;

	/* a link waiting to be rebuilt must not wait for the poll timeout */
	for (i = 0; i < d->n_links; i++)
		if (d->links[i].reopen_at_ms != 0)
			cap_ms = d->links[i].reopen_at_ms <= now ? 0 :
			    (d->links[i].reopen_at_ms - now < cap_ms ?
			    d->links[i].reopen_at_ms - now : cap_ms);
	if (now < d->outbound_blocked_until)
		return d->outbound_blocked_until - now < cap_ms ?
		    d->outbound_blocked_until - now : cap_ms;
	if (d->outbound_dirty)
		return 0;
	if (store_outbox_next_due(d->store, &when, &e) != 0 || when == UINT64_MAX)
		return cap_ms;
	if (when <= now) {
		/* due rows waiting for a full window: the receipt that frees
		 * a slot wakes the loop (s_flow_refill), or the time at which
		 * the oldest slot is given up if no receipt comes at all */
		for (i = 0; i < d->n_links; i++) {
			struct flow *f = d->links[i].flow;
			uint64_t at;

			if (f == NULL || !f->skipped)
				continue;
			if (f->n < FLOW_WINDOW) {
				f->skipped = false;  /* room again */
				return 0;
			}
			if ((at = s_flow_reap_at(d, f)) <= now)
				return 0;
			if (at - now < cap_ms)
				cap_ms = at - now;
		}
		for (i = 0; i < d->n_links; i++)
			if (d->links[i].flow != NULL && d->links[i].flow->skipped)
				return cap_ms;
		return 0;
	}
	return when - now < cap_ms ? when - now : cap_ms;
}
