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
 *                           and sent at once after the commit if its link
 *                           is up, caught up and has room in its window
 *                           (apisrv.c -> outbound_send_now; the events of
 *                           one API pass to one partner in packs, PROTOCOL.md
 *                           §13.1); otherwise it waits in the store for the
 *                           catch-up
 *   1. pending, link down -> nothing: not read, not sent, not written,
 *                           whatever its timer says (a send that was not
 *                           made is not an attempt)
 *   2. pending, link up  -> sent once by the link's catch-up, in seq order,
 *                           as the window has room (s_catch_up); not
 *                           written
 *   3. pending, in flight, receipt overdue -> resent in its slot; attempts
 *                           +1 and next = when that resend's receipt is
 *                           overdue are recorded (s_resend_overdue); a
 *                           slot not yet overdue is neither read nor
 *                           written
 *   4. pending           -> delivered | rejected, on a verified receipt
 *                           from that partner naming our envelope digest
 *                           (outbound_drain -> store_outbox_settle)
 *   5. pending, expired  -> dead, logged as a dead letter (outbound_expire)
 * Many events are in flight per partner at once (pipelining); the
 * receiver's duplicate elimination makes every resend harmless.  So the
 * outbox is written at the insert, at a resend, and at the receipt: an
 * outage of any length and the drain after it rewrite no pending row.
 *
 * Flow control (struct flow, per link, memory only): at most FLOW_WINDOW
 * events and window_kib of envelopes in flight (sent, no receipt yet),
 * each with its send time and backoff; a receipt that settles a row
 * frees its slot and, for an event sent once, gives a round-trip sample
 * (smoothed as in RFC 6298).  The retry timer of a slot is the larger
 * of its backoff (retry_initial doubling per send on this connection)
 * and srtt + 4 rttvar, so a slow
 * partner is not sent everything again after retry_initial; while the
 * partner's receipts keep coming, a slot waits one timer after the last
 * of them (at most four after its send: s_flight_due).  A slot whose
 * row is no longer pending (a late receipt was settled, the event
 * expired) is freed when its timer runs out.
 *
 * The catch-up (per link): a cursor (the seq up to which the partner's
 * pending rows were read on this connection) and a flag `behind` (rows
 * after the cursor may be unsent).  Invariant, while the link is up:
 * every pending row of the partner with seq <= cursor is in the window
 * (or was skipped as undecryptable, logged).  A connection and a
 * disconnect reset both (cursor 0, behind, window empty: what was in the
 * pipe is lost and is read again); a new event that finds the link behind
 * or its window full sets behind and leaves the event to the catch-up; a
 * batch of receipts that could not be stored rewinds the cursor to 0 (it
 * then reads the window's rows, skipped, and those, sent again).  The
 * catch-up reads the store by outbox_pending (to_oin, state, seq): an
 * index range over the rows it sends, never the backlog of another
 * partner or the rows it already read.  Nothing waits on the store's
 * next_attempt_ms; outbound_wait_ms looks at the links only (a link not
 * up has nothing due), so it cannot spin on rows whose partner is away.
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
#include "flights.h"
#include "later.h"
#include "log.h"
#include "webhook.h"

/* The backoff of the given attempt, jittered by r (uniformly random):
 * 75%..125%, so partners coming back are not stampeded; never 0, or a
 * row would be due again at once, forever. */
static uint64_t
s_backoff(const config_t *cfg, uint32_t attempts, uint32_t r)
{
	uint64_t t = cfg->retry_initial_ms;
	uint32_t i;

	for (i = 1; i < attempts && t < cfg->retry_max_ms; i++)
		t *= 2;
	if (t > cfg->retry_max_ms)
		t = cfg->retry_max_ms;
	t = t * 3 / 4 + (((uint64_t)r * (t / 2 + 1)) >> 32);
	return t > 0 ? t : 1;
}

uint64_t
outbound_backoff_ms(const config_t *cfg, uint32_t attempts)
{
	return s_backoff(cfg, attempts, randombytes_random());
}

uint64_t
outbound_backoff_jittered_ms(const config_t *cfg, uint32_t attempts,
    uint32_t r)
{
	return s_backoff(cfg, attempts, r);
}

/* ---- flow control (see the header) ---- */

/*
 * Events in flight per partner; [delivery] window_kib bounds their
 * envelopes' bytes (s_flow_room).  In a throughput run (18,000 events/s)
 * 2,048 filled now and then: receipts come back 45-90 ms after the send
 * and in bursts of a pass, and each new event that found the window full
 * went back to the store for the catch-up to read and open again (4.5%
 * of the sender's loop); 4,096 hold 200 ms of 20,000 events/s.  The bytes
 * bound what the partner's queue and ours hold at the 32 KiB payload
 * maximum (8 MiB by default, plus one envelope, where 2,048 events alone
 * allowed 68 MiB).
 */
#define FLOW_WINDOW FLIGHTS_MAX

struct flow {
	flights_t in;         /* the window: flights.h */
	size_t in_bytes;      /* the envelopes' bytes in it */
	uint64_t cursor;      /* catch-up: rows up to this seq were read */
	bool behind;          /* pending rows after the cursor may be unsent */
	uint64_t stall_until_ms; /* a send failed although up: wait */
	uint64_t last_receipt_ms; /* the partner's progress (s_flight_due) */
	uint64_t srtt_ms, rttvar_ms;      /* srtt 0: no sample yet */
	uint64_t jitter;      /* splitmix64 state for the sends' jitter */
};

/* A jitter value for a send on f: a splitmix64 step, seeded from the
 * system's random source when the link opened.  Not a secret (it spreads
 * retries); randombytes_random per send was a getrandom(2) call each,
 * 1.3% of a sender's loop in a drain. */
static uint32_t
s_flow_jitter(struct flow *f)
{
	uint64_t z = (f->jitter += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static bool
s_flow_room(const kpd_t *d, const link_t *l)
{
	return l->flow != NULL && l->flow->in.n < FLOW_WINDOW &&
	    l->flow->in_bytes < (size_t)d->cfg.window_kib * 1024;
}

/* Forget flight i of f, and its bytes. */
static void
s_flow_forget(struct flow *f, size_t i)
{
	f->in_bytes -= f->in.fl[i].bytes;
	flights_forget(&f->in, i);
}

/* The retry timer of link l for a send with the given backoff: that
 * backoff, or longer if the measured round trip says a receipt takes
 * longer. */
static uint64_t
s_flow_rto(const kpd_t *d, const link_t *l, uint64_t backoff_ms)
{
	uint64_t rto;

	if (l->flow == NULL || l->flow->srtt_ms == 0)
		return backoff_ms;
	rto = l->flow->srtt_ms + 4 * l->flow->rttvar_ms;
	if (rto > d->cfg.retry_max_ms)
		rto = d->cfg.retry_max_ms;
	return rto > backoff_ms ? rto : backoff_ms;
}

/*
 * When the receipt of slot fl is overdue (then it is resent): one retry
 * timer after its send, and as long as receipts keep coming from the
 * partner (its progress through a full window can take longer than a
 * round trip measured at its start), one timer after the last of them,
 * up to four timers after the send.  A connection that broke is reset,
 * not waited for: what is in flight is only lost to a partner that drops
 * an envelope without a receipt (its storage failed), so waiting while
 * it works through the window costs little and resends nothing twice.
 */
static uint64_t
s_flight_due(const kpd_t *d, const link_t *l, const flight_t *fl)
{
	uint64_t rto = s_flow_rto(d, l, fl->backoff_ms);
	uint64_t due = fl->sent_ms + rto, late = fl->sent_ms + 4 * rto;
	uint64_t progress = l->flow->last_receipt_ms + rto;

	if (progress > due)
		due = progress < late ? progress : late;
	return due;
}

/* Event id (its outbox row's seq, 0 if not known) was handed to l's
 * socket at now: a new slot, or a resend in its slot.  OUT: the slot's
 * sends on this connection. */
static uint32_t
s_flow_sent(const kpd_t *d, link_t *l, const uint8_t id[16], uint64_t seq,
    size_t len, uint64_t now)
{
	struct flow *f = l->flow;
	flight_t *fl;
	ssize_t i;

	if (f == NULL)
		return 1;
	if ((i = flights_find(&f->in, id)) >= 0) {
		fl = &f->in.fl[i];
		fl->resent = true;
		fl->sends++;
	} else if ((fl = flights_add(&f->in, id)) != NULL) {
		fl->sends = 1;
		fl->bytes = (uint32_t)len;
		f->in_bytes += len;
	} else
		return 1;
	fl->sent_ms = now;
	fl->backoff_ms = s_backoff(&d->cfg, fl->sends, s_flow_jitter(f));
	if (seq != 0)
		fl->seq = seq;
	return fl->sends;
}

/* The outbox seq of event id in flight on l, or 0 (not in flight, or its
 * seq not known to the sender): the settle's hint. */
static uint64_t
s_flow_seq(const link_t *l, const uint8_t id[16])
{
	ssize_t i;

	if (l->flow == NULL || (i = flights_find(&l->flow->in, id)) < 0)
		return 0;
	return l->flow->in.fl[i].seq;
}

/* A receipt for event id arrived on l: free its slot, learn the RTT. */
static void
s_flow_receipt(link_t *l, const uint8_t id[16], uint64_t now)
{
	struct flow *f = l->flow;
	uint64_t r, dev;
	ssize_t i;

	if (f == NULL)
		return;
	f->last_receipt_ms = now;
	if ((i = flights_find(&f->in, id)) < 0)
		return;
	if (!f->in.fl[i].resent) {
		r = now > f->in.fl[i].sent_ms ? now - f->in.fl[i].sent_ms : 1;
		if (f->srtt_ms == 0) {
			f->srtt_ms = r;
			f->rttvar_ms = r / 2;
		} else {
			dev = r > f->srtt_ms ? r - f->srtt_ms : f->srtt_ms - r;
			f->rttvar_ms = (3 * f->rttvar_ms + dev) / 4;
			f->srtt_ms = (7 * f->srtt_ms + r) / 8;
		}
	}
	s_flow_forget(f, (size_t)i);
}

/* A send on l failed although the link is up (the connection just broke;
 * its monitor event follows): wait a little rather than spin. */
static void
s_flow_stall(const kpd_t *d, link_t *l)
{
	if (l->flow != NULL)
		l->flow->stall_until_ms = kp_now_ms() + d->cfg.retry_initial_ms;
}

/* A new connection (or none): nothing is in flight, and every pending
 * row of the partner is to be caught up from the start. */
static void
s_flow_reset(link_t *l)
{
	if (l->flow == NULL)
		return;
	flights_clear(&l->flow->in);
	l->flow->in_bytes = 0;
	l->flow->cursor = 0;
	l->flow->behind = true;
	l->flow->stall_until_ms = 0;
}

/* Events of a link's monitor: up, down, and every way a handshake can
 * fail (after some of these libzmq gives the endpoint up for good). */
#define LINK_EVENTS (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | \
    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | \
    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
/* Warnings per link: a burst, then one a minute with the count. */
#define LINK_LOG_BURST 3
#define LINK_LOG_INTERVAL_MS 60000

/* A new connection (a new DEALER, or ZeroMQ's reconnection of it, perhaps
 * to another version of the partner's daemon): single frames until the
 * partner's first message says what it reads (s_learn_packs). */
static void
s_packs_forget(link_t *l)
{
	l->pack_max = 1;
	l->no_packs = false;
}

/* Announce that we read receipt packs: 0 even if this libzmq cannot (the
 * partner then sends single receipts; main.c says so once, at start). */
static int
s_announce_packs(link_t *l)
{
	if (kpd_frame_announce_packs(l->dealer) != 0)
		log_debug("outbound: link to %s announces no packs", l->oin);
	return 0;
}

/* The DEALER and its monitor of link l (oin, endpoint already set). */
static int
s_link_sockets(kpd_t *d, const partner_t *p, link_t *l, kp_err_t *err)
{
	const identity_t *self = d->chain->self;
	int one = 1, zero = 0, ivl = 100, ivl_max = 5000, hwm = 100000;
	int64_t maxmsg = KPD_FRAME_HARD_MAX;  /* a pack of receipts */
	/* receipts queued: a pack may be 128 KiB, so this bounds what a
	 * partner can make us hold (256 MiB); more receipts than this wait
	 * in TCP (libzmq stops reading), none is dropped */
	int rcvhwm = 2048;

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
	    zmq_setsockopt(l->dealer, ZMQ_RCVHWM, &rcvhwm,
	    sizeof(rcvhwm)) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_MAXMSGSIZE, &maxmsg,
	    sizeof(maxmsg)) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) != 0 ||
	    zmq_setsockopt(l->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max,
	    sizeof(ivl_max)) != 0 ||
	    kpd_monitor_start(d, l->dealer, l->oin, LINK_EVENTS,
	    &l->monitor) != 0 ||
	    s_announce_packs(l) != 0 ||
	    zmq_connect(l->dealer, l->endpoint) != 0) {
		kpd_close_monitored(&l->dealer, &l->monitor);
		return kp_fail(err, KP_ERR_IO, "cannot open link to %s at %s: %s",
		    l->oin, l->endpoint, zmq_strerror(zmq_errno()));
	}
	s_packs_forget(l);
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
	    NULL || (l->flow = calloc(1, sizeof(*l->flow))) == NULL ||
	    (l->pack = pack_new(KPD_FRAME_ENVELOPE, KPD_FRAME_PACK)) == NULL) {
		ratelimit_destroy(&l->rl);
		free(l->flow);
		l->flow = NULL;
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	}
	randombytes_buf(&l->flow->jitter, sizeof(l->flow->jitter));
	if (s_link_sockets(d, peer_cert(peer, l->cert), l, err) != 0) {
		ratelimit_destroy(&l->rl);
		free(l->flow);
		l->flow = NULL;
		pack_destroy(&l->pack);
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
		pack_destroy(&d->links[i].pack);
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

/* A pack that did not go out: its events were recorded in flight as they
 * were packed; a send that was not made is no attempt, so their slots go
 * and the catch-up sends them again, from the start of the store (it
 * skips what is in flight). */
static void
s_pack_unsend(link_t *l, size_t n)
{
	struct flow *f = l->flow;
	ssize_t fi;
	size_t i;

	for (i = 0; f != NULL && i < n; i++)
		if ((fi = flights_find(&f->in, l->pack_ids[i])) >= 0)
			s_flow_forget(f, (size_t)fi);
	if (f != NULL) {
		f->behind = true;
		f->cursor = 0;
	}
}

/*
 * A fault for the tests (tests/test_pack.c): in a build with
 * KP_SIMULATED_CLOCK, KETENPOST_TEST_PACK_SEND_FAILS=N makes the first N
 * pack sends of the process fail as a link that takes nothing would.  A
 * release build has no such variable (as lib/util.c's clock file).
 */
static bool
s_pack_send_fails(void)
{
#ifdef KP_SIMULATED_CLOCK
	static long left = -1;  /* read once; the process's only such state */
	const char *v;

	if (left < 0)
		left = (v = getenv("KETENPOST_TEST_PACK_SEND_FAILS")) != NULL ?
		    strtol(v, NULL, 10) : 0;
	if (left > 0) {
		left--;
		return true;
	}
#endif
	return false;
}

/* Send the envelopes packed in l's round so far, and empty the pack; -1
 * if the link did not take them (s_pack_unsend). */
static int
s_pack_flush(kpd_t *d, link_t *l)
{
	const uint8_t *frame;
	size_t flen = 0, i, n = pack_count(l->pack);
	int rc = 0;

	if ((frame = pack_frame(l->pack, &flen)) == NULL)
		return 0;
	if (s_pack_send_fails() ||
	    zmq_send(l->dealer, frame, flen, ZMQ_DONTWAIT) < 0) {
		log_debug("outbound: %zu events to %s not sent (not "
		    "connected)", n, l->oin);
		s_pack_unsend(l, n);
		ledger_head_rewind(d, l->oin, l->pack_mark);
		rc = -1;
	} else {
		for (i = 0; i < n; i++)
			metrics_count(d->metrics, KPM_SENT, l->oin, 0, -1);
		if (n > 1)
			metrics_count(d->metrics, KPM_PACK, l->oin, 0, -1);
	}
	pack_reset(l->pack);
	return rc;
}

/* kpd_frame_pack_add to l's pack; the head mark is taken before its
 * first item (s_pack_flush rewinds to it if the pack is not taken). */
static int
s_pack_add(kpd_t *d, link_t *l, const uint8_t *env, size_t len, bool *full)
{
	if (pack_count(l->pack) == 0)
		l->pack_mark = ledger_head_mark(d, l->oin);
	return kpd_frame_pack_add(d, l->pack, l->pack_max, l->oin, false, env,
	    len, full);
}

/* Add an envelope to l's pack (the pack goes out when full or at the
 * round's end).  OUT: *alone if it fits no pack (send it as a single
 * frame).  -1: the link did not take the full pack before it, or no
 * memory. */
static int
s_pack_envelope(kpd_t *d, link_t *l, const uint8_t id[16],
    const uint8_t *env, size_t len, bool *alone)
{
	bool full = false;

	if (s_pack_add(d, l, env, len, &full) != 0)
		return -1;
	if (full && pack_count(l->pack) > 0 && (s_pack_flush(d, l) != 0 ||
	    s_pack_add(d, l, env, len, &full) != 0))
		return -1;
	*alone = full;  /* it fits no pack, not even an empty one */
	if (!full)
		memcpy(l->pack_ids[pack_count(l->pack) - 1], id, 16);
	return 0;
}

/* A round of sends on l (its catch-up, an API pass's new events): packed
 * if the partner reads packs (PROTOCOL.md §13.1). */
static void
s_round_begin(link_t *l)
{
	l->packing = l->pack_max > 1 && !l->no_packs;
}

/* The end of l's round: what is packed goes out; if the link does not
 * take it, it stalls. */
static void
s_round_end(kpd_t *d, link_t *l)
{
	if (l->packing && s_pack_flush(d, l) != 0)
		s_flow_stall(d, l);
	l->packing = false;
}

/* Send one envelope frame on l without blocking (in a packing round,
 * into its pack); -1 if not connected. */
static int
s_send_frame(kpd_t *d, link_t *l, const uint8_t id[16], const uint8_t *env,
    size_t len)
{
	uint8_t *frame;
	size_t flen = 0;
	uint64_t mark;
	char text[37];
	int rc = 0;

	if (l->packing) {
		bool alone = false;

		if (s_pack_envelope(d, l, id, env, len, &alone) != 0)
			return -1;
		if (!alone)
			return 0;
	}
	mark = ledger_head_mark(d, l->oin);
	if ((frame = kpd_frame_build(d, l->oin, KPD_FRAME_ENVELOPE, env, len,
	    &flen)) == NULL) {
		ledger_head_rewind(d, l->oin, mark);
		return -1;
	}
	if (zmq_send(l->dealer, frame, flen, ZMQ_DONTWAIT) < 0) {
		log_debug("event %s: %s not connected; retry later",
		    kpd_id(id, text), l->oin);
		ledger_head_rewind(d, l->oin, mark);
		rc = -1;
	} else
		metrics_count(d->metrics, KPM_SENT, l->oin, 0, -1);
	free(frame);
	return rc;
}

void
outbound_rounds_begin(kpd_t *d)
{
	size_t i;

	for (i = 0; i < d->n_links; i++)
		s_round_begin(&d->links[i]);
}

void
outbound_rounds_end(kpd_t *d)
{
	size_t i;

	for (i = 0; i < d->n_links; i++)
		s_round_end(d, &d->links[i]);
}

void
outbound_send_now(kpd_t *d, const char *oin, const uint8_t id[16],
    uint64_t seq, const uint8_t *env, size_t len)
{
	link_t *l = s_link_find(d, oin);
	char text[37];

	/* not connected: the catch-up at the connection sends it (nothing is
	 * tried, nothing recorded) */
	if (l == NULL || !l->up || l->flow == NULL)
		return;
	/* older rows wait for the catch-up, or the window is full: the
	 * catch-up sends this one too, in seq order, when there is room */
	if (l->flow->behind || !s_flow_room(d, l) ||
	    kp_now_ms() < l->flow->stall_until_ms) {
		l->flow->behind = true;
		return;
	}
	if (s_send_frame(d, l, id, env, len) != 0) {
		l->flow->behind = true;
		s_flow_stall(d, l);
		return;
	}
	/* with its row's seq, its receipt settles the row by its key */
	(void)s_flow_sent(d, l, id, seq, len, kp_now_ms());
	log_debug("event %s sent to %s (attempt 1)", kpd_id(id, text), oin);
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
	if (r->has_event_id || r->reason != KP__REASON__REASON_MALFORMED ||
	    strcmp(r->issuer_oin, l->oin) != 0)
		return;
	if (l->pack_max > 1)
		l->no_packs = true;  /* perhaps a pack of ours: no more */
	if (l->single_sig)
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

/* Send an envelope stored at rest under its per-event key: 0 sent (OUT:
 * *sent, its length on the wire), -1 the link did not take it (not
 * connected), 1 this row cannot be sent (it does not decrypt, or
 * re-signing it failed; logged). */
static int
s_send_stored(kpd_t *d, link_t *l, const outbox_row_t *row,
    const uint8_t *at_rest, size_t len, size_t *sent)
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
		return 1;
	}
	sodium_memzero(key, sizeof(key));
	rc = s_wire_form(d, l, &env, &elen) != 0 ? 1 :
	    s_send_frame(d, l, row->event_id, env, elen);
	*sent = elen;
	free(env);
	return rc;
}

struct attempt {
	uint8_t id[16];
	uint32_t attempts;
	uint64_t next_ms;
};

/* One call of outbound_send_due: the resends made (recorded in one
 * transaction afterwards) and the rows it may still read. */
struct due_walk {
	kpd_t *d;
	uint64_t now;
	struct attempt *att;
	size_t n, cap;
	size_t budget;
};

struct resend {
	struct due_walk *w;
	link_t *l;
	bool found, failed;
};

/* Resend the overdue event of row (still pending) in its slot. */
static int
s_resend_one(void *arg, const outbox_row_t *row, const uint8_t *env,
    size_t len)
{
	struct resend *r = arg;
	struct due_walk *w = r->w;
	struct attempt *a = &w->att[w->n];
	ssize_t fi = flights_find(&r->l->flow->in, row->event_id);
	size_t sent = 0;
	char id[37];
	int rc;

	if (fi < 0)
		return 1;
	if ((rc = s_send_stored(w->d, r->l, row, env, len, &sent)) != 0) {
		/* link: stall and keep the slot; row: give the slot up
		 * (it would fail again; it stays pending until it expires) */
		r->failed = rc < 0;
		if (rc < 0)
			s_flow_stall(w->d, r->l);
		return 1;
	}
	r->found = true;
	(void)s_flow_sent(w->d, r->l, row->event_id, row->seq, sent, w->now);
	memcpy(a->id, row->event_id, 16);
	a->attempts = row->attempts + 1;
	a->next_ms = s_flight_due(w->d, r->l, &r->l->flow->in.fl[fi]);
	w->n++;
	metrics_count(w->d->metrics, KPM_RETRY, row->to_oin, 0, -1);
	log_debug("event %s sent to %s (attempt %u, its receipt overdue)",
	    kpd_id(row->event_id, id), row->to_oin, a->attempts);
	return 1;
}

/* Resend the events in flight on l whose receipt is overdue, each in its
 * slot; a slot whose row is no longer pending (settled, expired) is
 * freed.  Slots not yet overdue are neither read nor written. */
static void
s_resend_overdue(kpd_t *d, link_t *l, struct due_walk *w)
{
	struct flow *f = l->flow;
	size_t i = 0;
	kp_err_t e;

	if (f == NULL || !l->up || w->now < f->stall_until_ms)
		return;
	/* resends go as single frames, never packed: if what we believe the
	 * partner reads is wrong (a message of an older connection read after
	 * a reconnection to a 1.2 daemon), a dropped pack costs its events
	 * one retry timer, never more (PROTOCOL.md §13.1) */
	while (i < f->in.n && w->n < w->cap && w->budget > 0) {
		struct resend r = { w, l, false, false };

		if (s_flight_due(d, l, &f->in.fl[i]) > w->now) {
			i++;
			continue;
		}
		w->budget--;
		if (store_outbox_pending(d->store, f->in.fl[i].id, s_resend_one,
		    &r, &e) != 0) {
			log_warnx("outbound: reading the outbox failed: %s",
			    e.msg);
			break;
		}
		if (r.failed)
			break;  /* the link stalls */
		if (!r.found)
			s_flow_forget(f, i);
		else
			i++;
	}
}

struct catch_up {
	kpd_t *d;
	link_t *l;
	uint64_t now;
	size_t read;
	bool stopped;
};

/* Send one row of the catch-up unless it is in flight already. */
static int
s_catch_one(void *arg, const outbox_row_t *row, const uint8_t *env,
    size_t len)
{
	struct catch_up *c = arg;
	struct flow *f = c->l->flow;
	size_t sent = 0;
	char id[37];
	int rc = 0;

	if (!s_flow_room(c->d, c->l)) {
		c->stopped = true;  /* the window's bytes are full */
		return 1;
	}
	c->read++;
	if (flights_find(&f->in, row->event_id) >= 0)
		rc = 1;  /* sent at once when it was queued: in flight */
	else if ((rc = s_send_stored(c->d, c->l, row, env, len, &sent)) < 0) {
		s_flow_stall(c->d, c->l);
		c->stopped = true;  /* the cursor stays before this row */
		return 1;
	}
	if (rc == 0) {
		(void)s_flow_sent(c->d, c->l, row->event_id, row->seq, sent,
		    c->now);
		log_debug("event %s sent to %s (catch-up)",
		    kpd_id(row->event_id, id), row->to_oin);
	}
	f->cursor = row->seq;
	return 0;
}

/*
 * Catch l up from the store: the partner's pending rows after its cursor,
 * in seq order, as many as its window has room for (and the walk's
 * budget); each is read once and sent once.  When the store has no more
 * after the cursor, the link is caught up: new events go out at once
 * (outbound_send_now) until the window fills again.
 */
static void
s_catch_up(kpd_t *d, link_t *l, struct due_walk *w)
{
	struct flow *f = l->flow;
	struct catch_up c = { d, l, w->now, 0, false };
	size_t max;
	kp_err_t e;

	if (f == NULL || !l->up || !f->behind || !s_flow_room(d, l) ||
	    w->now < f->stall_until_ms || w->budget == 0)
		return;
	max = FLOW_WINDOW - f->in.n < w->budget ? FLOW_WINDOW - f->in.n : w->budget;
	s_round_begin(l);
	if (store_outbox_after(d->store, l->oin, f->cursor, max, s_catch_one,
	    &c, &e) != 0) {
		log_warnx("outbound: reading the outbox failed: %s", e.msg);
		s_round_end(d, l);
		s_flow_stall(d, l);
		return;
	}
	w->budget -= c.read < w->budget ? c.read : w->budget;
	if (!c.stopped && c.read < max)
		f->behind = false;
	s_round_end(d, l);  /* a pack it did not take: behind again */
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

/* Record the resends of w (attempts, next_attempt_ms) in one transaction. */
static void
s_record(kpd_t *d, struct due_walk *w)
{
	size_t i;
	kp_err_t e;

	if (w->n == 0)
		return;
	if (kpd_begin(d, &e) != 0) {
		s_blocked(d, e.msg);
		return;
	}
	for (i = 0; i < w->n; i++)
		if (store_outbox_schedule(d->store, w->att[i].id,
		    w->att[i].attempts, w->att[i].next_ms, &e) != 0)
			break;
	if (i < w->n || kpd_commit(d, &e) != 0) {
		kpd_rollback(d);
		s_blocked(d, e.msg);
	}
}

void
outbound_send_due(kpd_t *d)
{
	struct due_walk w = { .d = d, .now = kp_now_ms(),
	    .cap = d->cfg.batch_max, .budget = d->cfg.batch_max };
	size_t i, k, first;

	/* rows may have been queued without outbound_send_now (reminders,
	 * apisrv.c): every link looks after its cursor again, an index seek
	 * that reads what it finds there and nothing else */
	for (i = 0; d->outbound_dirty && i < d->n_links; i++)
		if (d->links[i].flow != NULL)
			d->links[i].flow->behind = true;
	d->outbound_dirty = false;
	if ((w.att = calloc(w.cap, sizeof(*w.att))) == NULL)
		return;
	for (i = 0; i < d->n_links; i++)
		s_resend_overdue(d, &d->links[i], &w);
	s_record(d, &w);
	/* which link's catch-up goes first moves with the clock, so one
	 * partner's backlog cannot hold the others' back (without state
	 * outside main, style rule 8) */
	first = d->n_links > 0 ? (size_t)(w.now % d->n_links) : 0;
	for (k = 0; k < d->n_links; k++)
		s_catch_up(d, &d->links[(first + k) % d->n_links], &w);
	/* more may be due right now: the links that are still behind say so
	 * themselves (outbound_wait_ms); dirty would make all look again */
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
	uint8_t *head = NULL;
	size_t hlen = 0;
	int state, ret = -1;
	kp_err_t e;
	char id[37] = "-";

	/* the tree head for the witness comes out of the one parse of the
	 * receipt (parsing it again was 5% of a sender's loop in a drain) */
	if (receipt_verify_head(d->chain->dir, d->batch_cache, buf, len, &r,
	    &head, &hlen, &e) != 0) {
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
		ret = 0;
		goto out;
	}
	if (head != NULL)
		ledger_witness_head(d, l->oin, head, hlen);
	if (l->flow != NULL)
		l->flow->last_receipt_ms = now;  /* the partner makes progress */
	state = r.status == KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED ?
	    STORE_DELIVERED : STORE_REJECTED;
	memset(&row, 0, sizeof(row));
	if (store_outbox_settle_seq(d->store, r.event_id, s_flow_seq(l,
	    r.event_id), r.issuer_oin, r.envelope_digest, state, r.reason,
	    r.digest, buf, len, now, &applied, &row, &e) != 0) {
		log_warnx("outbound: storing receipt for %s failed: %s", id,
		    e.msg);
		goto out;
	}
	/* a receipt that settled nothing leaves the slot: its resend finds
	 * the row settled (and frees it) or still pending (and resends) */
	if (applied)
		s_flow_receipt(l, r.event_id, now);
	if (applied && (s_audit_receipt(d, &r, &row, now) != 0 ||
	    webhook_notice(d, WEBHOOK_RECEIPT, r.event_id, &e) != 0))
		goto out;
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
	ret = 0;
out:
	free(head);
	return ret;
}

/* What the partner announced it reads (PROTOCOL.md §13.1): each of its
 * messages carries the property of the handshake of the connection it
 * came on, so read it off every one (a message of an older connection,
 * read after a reconnection, teaches nothing for long). */
static void
s_learn_packs(link_t *l, zmq_msg_t *m)
{
	size_t reads = pack_announced(zmq_msg_gets(m, KP_PACK_PROPERTY));

	if (reads != l->pack_max && reads > 1)
		log_debug("outbound: %s reads packs of %zu envelopes", l->oin,
		    reads);
	l->pack_max = reads;
}

/* Settle the receipt, or each receipt of the pack, in one message from
 * l; *n counts the receipts.  -1: storing one failed. */
static int
s_settle_message(kpd_t *d, link_t *l, const uint8_t *data, size_t len,
    uint64_t now, later_t *lt, unsigned *n)
{
	pack_item_t items[KP_PACK_ITEMS_MAX];
	size_t i, count = 0;
	uint64_t sup = 0;
	char note[64];
	int rc = 0;

	(*n)++;  /* every message counts toward the batch, whatever it is */
	if (len > 1 && data[0] == KPD_FRAME_RECEIPT)
		return s_settle(d, l, data + 1, len - 1, now, lt);
	if (len < 1 || data[0] != KPD_FRAME_RECEIPT_PACK) {
		if (ratelimit_allow(l->rl, now, &sup))
			log_warnx("outbound: unexpected frame from %s ignored%s",
			    l->oin, ratelimit_note(sup, note, sizeof(note)));
		return 0;
	}
	if (pack_parse(data + 1, len - 1, items, KP_PACK_ITEMS_MAX,
	    &count) != 0) {
		if (ratelimit_allow(l->rl, now, &sup))
			log_warnx("outbound: malformed pack of receipts from %s "
			    "ignored (PROTOCOL.md §13.1); they come again with "
			    "the resends%s", l->oin, ratelimit_note(sup, note,
			    sizeof(note)));
		return 0;
	}
	for (i = 0; i < count && rc == 0; i++)
		rc = s_settle(d, l, data + 1 + items[i].off, items[i].len, now,
		    lt);
	*n += (unsigned)count - 1;
	return rc;
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

	/* unflushed: a settlement a power loss undoes comes back by
	 * itself (the event is resent, the receiver answers a duplicate with
	 * its stored receipt), so no flush of the disk per receipt batch;
	 * flushed while a webhook runs (webhook_running says why) */
	if ((webhook_running(d) ? kpd_begin(d, &e) :
	    kpd_begin_unflushed(d, &e)) != 0) {
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("outbound: %s; receipts wait%s", e.msg,
			    ratelimit_note(sup, note, sizeof(note)));
		usleep(100000);  /* the socket stays readable: do not spin */
		return;
	}
	while (n < d->cfg.batch_max) {
		/* SQLite may roll the batch back by itself (a full disk):
		 * then nothing more is settled in it (the receipts left come
		 * again with the resends) */
		if (!store_in_txn(d->store)) {
			failed = 1;
			break;
		}
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, l->dealer, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		s_learn_packs(l, &m);
		if (s_settle_message(d, l, zmq_msg_data(&m), zmq_msg_size(&m),
		    now, &lt, &n) != 0)
			failed = 1;
		zmq_msg_close(&m);
	}
	if (failed || kpd_commit(d, &e) != 0) {
		kpd_rollback(d);
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("outbound: %u receipts not stored (%s); the "
			    "partner will send them again on our retry%s", n,
			    failed ? "storage or audit log" : e.msg,
			    ratelimit_note(sup, note, sizeof(note)));
		later_flush(&lt, false);
		/* the slots of these receipts were freed: catch up again from
		 * the start, which reads only the rows in flight (skipped)
		 * and these (sent again) */
		if (l->flow != NULL) {
			l->flow->cursor = 0;
			l->flow->behind = true;
		}
	} else
		later_flush_held(&lt);
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
			/* nothing of the outbox is written: the link catches
			 * up from the store (s_catch_up) */
			s_flow_reset(l);
			s_packs_forget(l);
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
		later_flush_held(&w.lt);
}

/* ms until link l has something to send (0: now), at most cap_ms. */
static uint64_t
s_link_wait_ms(const kpd_t *d, const link_t *l, uint64_t now, uint64_t cap_ms)
{
	const struct flow *f = l->flow;
	uint64_t at;
	size_t i;

	/* a link that is not up has nothing due: its rows wait in the store,
	 * unread, for the catch-up at its connection */
	if (f == NULL || !l->up)
		return cap_ms;
	if (now < f->stall_until_ms)
		return f->stall_until_ms - now < cap_ms ?
		    f->stall_until_ms - now : cap_ms;
	if (f->behind && s_flow_room(d, l))
		return 0;
	for (i = 0; i < f->in.n; i++) {
		if ((at = s_flight_due(d, l, &f->in.fl[i])) <= now)
			return 0;
		if (at - now < cap_ms)
			cap_ms = at - now;
	}
	return cap_ms;
}

uint64_t
outbound_wait_ms(kpd_t *d, uint64_t cap_ms)
{
	uint64_t now = kp_now_ms();
	size_t i;

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
	for (i = 0; i < d->n_links && cap_ms > 0; i++)
		cap_ms = s_link_wait_ms(d, &d->links[i], now, cap_ms);
	return cap_ms;
}
