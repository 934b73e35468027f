/*
 * inbound.c: events arriving from partners.
 *
 * For every frame on the ROUTER, in this order (PROTOCOL.md §7 and the
 * daemon's own checks):
 *   1. the frame type and size; 2. envelope_open (signature, decryption;
 *      a batch signature verified once, then remembered);
 *   3. the envelope's sender is the partner ZAP authenticated (User-Id);
 *   4. a known event id is a duplicate: the original receipt goes back;
 *   5. the time window (replay) and expiry; 6. the payload is a valid event;
 *   7. store, then sign and send the receipt.
 * A whole batch is stored in one transaction and no receipt leaves before
 * the commit returns: a receipt is a promise that the event is durable.
 * The receipts of accepted envelopes that came with a batch proof (their
 * sender reads batch receipts, PROTOCOL.md §8.1) are drafted as they are
 * decided and signed per sender with one signature before the commit
 * (s_sign_receipts); their inbox rows are inserted then, once, with the
 * signed receipt, in the same transaction (an arrival earlier in the pass
 * is found in memory: s_duplicate_in_pass).
 * A refused envelope gets a signed negative receipt with its reason, is
 * recorded in the `rejected` table and logged; nothing reaches the inbox.
 * Log lines name event ids and reasons, never payload content.
 *
 * Two phases per pass (the frames one read of the ROUTER took):
 *   PREPARE (s_prepare_pass): what reads no store and nothing the loop
 *     changes: steps 1-3, 5 and 6, the policy check, the field names, the
 *     payload sealed at rest, the evidence (envelope_parsed_strip), the
 *     tree head taken out for witnessing, both from the envelope as the
 *     open parsed it.  It reads only its pass (struct pass):
 *     the frames, and the directory, policy, storage key and settings
 *     fixed in it when it was handed over.
 *   STORE (s_store_pass), on the loop, in the order above: duplicates (in
 *     the pass and in the store), a reply's original stored first, the
 *     prepared refusal if any, the case check, the rows, audit entries,
 *     refusals, receipts signed per sender, the commit, then receipts
 *     sent and log lines.  A refusal the prepare phase found is applied
 *     where the order above puts it, so a pass decides exactly as one
 *     frame after the other would.
 *
 * What a partner can make us store is bounded: refusals (a `rejected` row,
 * an audit entry and a signed receipt each) are capped per partner at
 * refusals_per_minute (s_cap_allow); beyond it a refused frame is dropped
 * unstored and unanswered, counted, and the count logged once the next
 * one is stored.  A legitimate sender loses nothing by it: without a
 * receipt it sends again later.  Lines about an arrival ("accepted",
 * "refused") are logged only after the batch committed (s_log_arrivals);
 * a rolled-back batch is one warning with its count.  Repeated warnings
 * are rate-limited (ratelimit.h).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "daemon.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "later.h"
#include "log.h"
#include "webhook.h"
#include "worker.h"

#define ROUTING_ID_MAX 256

/* What was decided about a frame so far. */
struct verdict {
	int reason;                   /* Kp__Reason; NONE = accept */
	char detail[KP_ERR_MSG_MAX];
	char rule[AUDIT_RULE_MAX + 1]; /* policy refusals: the rule broken */
	bool has_id;
	uint8_t event_id[16];
	uint8_t digest[32];
};

/* What the prepare phase made of a frame (s_prepare). */
enum prep {
	PREP_NONE,                    /* not prepared: the pass fails */
	PREP_IGNORE,                  /* not an envelope: a log line only */
	PREP_REFUSE,                  /* refused before any store check: v */
	PREP_OPENED,                  /* opened, from the connection's own
	                               * partner: the store phase decides */
	PREP_NOMEM                    /* ours, not the sender's: the pass
	                               * fails, no receipt, the sender retries */
};

/* One received frame and what we decided to answer. */
struct arrival {
	uint8_t rid[ROUTING_ID_MAX];  /* ROUTER routing id */
	size_t rid_len;
	char peer[21];                /* OIN from ZAP's User-Id */
	/* The prepare phase's (s_prepare): written in a job, read by the loop
	 * only after worker_wait. */
	zmq_msg_t body;               /* the frame: closed once prepared */
	bool has_body;
	uint8_t type;                 /* the frame's type byte; for an item of
	                               * a pack, KPD_FRAME_ENVELOPE */
	size_t off, len;              /* the body (or the pack's item) in it */
	size_t peer_pack;             /* items the peer reads in a receipt pack
	                               * (1: send it single frames) */
	size_t flen;                  /* the frame's length, for the log */
	enum prep prep;
	struct verdict v;             /* PREP_REFUSE's; PREP_OPENED: the first
	                               * refusal of the checks that read no
	                               * store (age, payload, policy), if any,
	                               * applied after the store's own */
	bool opened;                  /* m holds the envelope's header */
	envelope_meta_t m;
	ProtobufCMessage *ev;         /* the payload unpacked */
	uint8_t *head;                /* the tree head carried, or NULL */
	size_t hlen;
	bool ready;                   /* passed every check that reads no
	                               * store: sealed, evidence, row.fields and
	                               * row.event_key made */
	/* The store phase's (the loop). */
	uint8_t *receipt;             /* malloc'd, sent after commit */
	size_t receipt_len;
	bool receipt_sent;            /* handed to the socket (or given up) */
	envelope_draft_t rdraft;      /* ... until signed: s_sign_receipts */
	bool has_rdraft;
	bool stored;                  /* in the inbox under event_id */
	uint8_t event_id[16];
	later_t log;                  /* logged after commit (later.h) */
	/* an accepted event whose receipt waits for its batch signature: its
	 * inbox row is inserted once, with the signed receipt (s_store_row) */
	bool row_waits;
	inbox_row_t row;
	uint8_t *sealed, *evidence;   /* malloc'd: payload at rest, envelope */
	size_t slen, evlen;
	struct arrival *batch;        /* the arrivals before this one in its */
	size_t index;                 /* ... pass: s_duplicate_in_pass */
	struct waiting *waiting;      /* ... and their waiting rows by id */
};

/*
 * One pass: the frames one read of the ROUTER took (batch_max, and up to
 * KP_PACK_ITEMS_MAX - 1 more when the last was a pack), a pack's items
 * each an arrival of its own.
 * Received on the loop (s_receive), prepared (s_prepare_pass), stored on
 * the loop (s_store_pass), emptied (s_pass_clear).  What the prepare
 * phase reads besides the arrivals is fixed here when it is handed over
 * (s_pass_inputs): the chain's directory and the policy (the loop
 * replaces them only in main.c's s_reload, which first stores the pass in
 * hand: inbound_settle), the storage key (fixed from start to stop),
 * copies of two settings, and the batch-signature cache (only ever used
 * by the prepare phase).
 */
struct pass {
	batchbuf_t buf;               /* the arrivals, made once */
	struct arrival *arr;
	size_t n;
	uint64_t now;                 /* when it was received */
	const directory_t *dir;
	const policy_t *policy;
	int self_role;
	const uint8_t *storage_key;
	uint64_t replay_window_ms, max_clock_skew_ms;
	batch_cache_t *cache;
	/* ATREST_EVENT_RANDOM bytes for arrival i at i * ATREST_EVENT_RANDOM,
	 * drawn in one randombytes_buf for the pass and wiped after its
	 * prepare phase; NULL (out of memory): each event draws its own */
	uint8_t *rnd;
};

/*
 * The receiver's pipeline.  At most two passes exist: one in the prepare
 * phase, a job on d->in_worker (in_hand), and one in the store phase on
 * the loop.  While the job is in hand its pass, and all its arrivals
 * point to, are the job's; the loop reads the pass again only after
 * worker_wait.  cache is used only by the prepare phase, so by one
 * thread at a time.
 */
struct inpipe {
	batch_cache_t *cache;         /* envelope batch signatures verified */
	pack_t *rpack;                /* receipts to one connection (the loop) */
	struct pass pass[2];
	struct pass *in_hand;         /* handed to the worker, not waited for */
};

/*
 * The event ids of a pass's rows that wait for their receipt's signature
 * (row_waits), so that a second copy of an event or a reply to it within
 * the same pass finds it at once: a scan of the arrivals before each one
 * cost n^2/2 comparisons a pass (7% of the receiver's CPU in a backlog's
 * drain at 512 a pass; batch_max may be 10,000).  Open addressing over
 * arrival indexes; the hash is SipHash under a key drawn per pass, so a
 * partner cannot choose ids that collide.  An entry whose row has been
 * stored since (s_store_replied_to) no longer waits and is passed over:
 * the inbox finds that row.
 */
struct waiting {
	uint8_t key[crypto_shorthash_KEYBYTES];
	size_t mask;                  /* slots - 1, slots a power of two */
	uint32_t slot[];              /* arrival index + 1; 0 = free */
};

static struct waiting *
s_waiting_new(size_t arrivals)
{
	struct waiting *w;
	size_t slots = 16;

	while (slots < 2 * arrivals)
		slots *= 2;
	if ((w = calloc(1, sizeof(*w) + slots * sizeof(w->slot[0]))) == NULL)
		return NULL;
	w->mask = slots - 1;
	crypto_shorthash_keygen(w->key);
	return w;
}

static size_t
s_waiting_hash(const struct waiting *w, const uint8_t id[16])
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, id, 16, w->key);
	memcpy(&v, h, sizeof(v));
	return (size_t)v & w->mask;
}

/* Remember arrival a, whose row now waits.  The table has twice the
 * slots of its pass's arrivals (s_store_pass), so a free slot is always
 * found; the probes are bounded all the same, so a table made too small
 * costs a lookup, never the loop. */
static void
s_waiting_add(struct arrival *a)
{
	struct waiting *w = a->waiting;
	size_t i, probes;

	if (w == NULL)
		return;
	for (i = s_waiting_hash(w, a->row.event_id), probes = 0;
	    w->slot[i] != 0 && probes <= w->mask; i = (i + 1) & w->mask)
		probes++;
	if (w->slot[i] == 0)
		w->slot[i] = (uint32_t)a->index + 1;
}

/* The arrival of this pass whose row waits under event id, or NULL.
 * (Event ids are not secret: a plain memcmp.) */
static struct arrival *
s_waiting_find(const struct arrival *a, const uint8_t id[16])
{
	const struct waiting *w = a->waiting;
	struct arrival *q;
	size_t i, probes;

	if (w == NULL || a->batch == NULL)
		return NULL;
	for (i = s_waiting_hash(w, id), probes = 0; w->slot[i] != 0 &&
	    probes <= w->mask; i = (i + 1) & w->mask, probes++) {
		q = &a->batch[w->slot[i] - 1];
		if (q->row_waits && memcmp(q->row.event_id, id, 16) == 0)
			return q;
	}
	return NULL;
}

/* Stored refusals per partner per minute (s_cap_allow). */
#define CAP_SLOTS 64
struct caps {
	size_t n;
	struct {
		char oin[21];
		ratelimit_t *rl;
	} slot[CAP_SLOTS];
};

/* src into dst of cap bytes, cut to fit: snprintf "%s" without parsing
 * a format, for the strings copied per event (a few % of the loop). */
static void
s_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool
s_age_ok(const struct pass *p, const envelope_meta_t *m, struct verdict *v)
{
	uint64_t now = p->now;

	if (m->created_at_ms + p->replay_window_ms < now ||
	    m->created_at_ms > now + p->max_clock_skew_ms) {
		v->reason = KP__REASON__REASON_REPLAY;
		snprintf(v->detail, sizeof(v->detail), "created %lld s from now, "
		    "outside the accepted window",
		    ((long long)m->created_at_ms - (long long)now) / 1000);
		return false;
	}
	if (m->expires_at_ms < now) {
		v->reason = KP__REASON__REASON_EXPIRED;
		snprintf(v->detail, sizeof(v->detail), "expired before arrival");
		return false;
	}
	return true;
}

/* Sign a receipt for the arrival, or only draft it for a batch. */
static int
s_sign(kpd_t *d, struct arrival *a, const struct verdict *v, uint64_t now,
    bool batched, receipt_t *r)
{
	kp_err_t e;

	memset(r, 0, sizeof(*r));
	r->has_event_id = v->has_id;
	memcpy(r->event_id, v->event_id, 16);
	memcpy(r->subject_oin, a->peer, sizeof(r->subject_oin));
	memcpy(r->envelope_digest, v->digest, 32);
	r->status = v->reason == KP__REASON__REASON_NONE ?
	    KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED :
	    KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED;
	r->reason = v->reason;
	r->received_at_ms = now;
	if (v->reason == KP__REASON__REASON_POLICY_MISMATCH) {
		r->has_expected_policy_hash = true;
		memcpy(r->expected_policy_hash, policy_hash(d->policy), 32);
	}
	if (batched ? receipt_draft(d->chain->dir, r, &a->rdraft, &e) :
	    receipt_sign(d->chain->dir, r, &a->receipt, &a->receipt_len,
	    &e)) {
		log_warnx("inbound: cannot sign receipt: %s", e.msg);
		return -1;
	}
	a->has_rdraft = batched;
	return 0;
}

/* The audit entry of an incoming event, accepted or refused. */
static int
s_audit(kpd_t *d, int kind, const char *peer, const struct verdict *v,
    const envelope_meta_t *m, const char *fields, const receipt_t *r)
{
	audit_entry_t e;
	kp_err_t err;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	e.direction = AUDIT_IN;
	e.time_ms = r->received_at_ms;
	memcpy(e.partner_oin, peer, sizeof(e.partner_oin));
	e.has_event_id = v->has_id;
	memcpy(e.event_id, v->event_id, 16);
	if (m != NULL) {
		e.event_type = m->event_type;
		memcpy(e.purpose, m->purpose, sizeof(e.purpose));
		memcpy(e.legal_basis, m->legal_basis, sizeof(e.legal_basis));
		e.has_policy_hash = e.has_case_pseudonym = true;
		memcpy(e.policy_hash, m->policy_hash, 32);
		memcpy(e.case_pseudonym, m->case_ref, 32);
	}
	if (fields != NULL)
		s_copy(e.fields, sizeof(e.fields), fields);
	e.has_envelope_digest = e.has_receipt_digest = true;
	memcpy(e.envelope_digest, v->digest, 32);
	memcpy(e.receipt_digest, r->digest, 32);
	e.reason = v->reason;
	memcpy(e.rule, v->rule, sizeof(e.rule));
	return ledger_append(d, &e, &err);
}

/* The limiter of stored refusals for partner oin (NULL: out of memory,
 * or more partners than slots: then they share the last one). */
static ratelimit_t *
s_cap_of(kpd_t *d, const char *oin)
{
	struct caps *c = d->refuse_caps;
	size_t i;

	if (c == NULL && (c = d->refuse_caps = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	for (i = 0; i < c->n; i++)
		if (strcmp(c->slot[i].oin, oin) == 0)
			return c->slot[i].rl;
	if (c->n == CAP_SLOTS)
		return c->slot[CAP_SLOTS - 1].rl;
	c->slot[c->n].rl = ratelimit_new(d->cfg.refusals_per_minute, 60000);
	if (c->slot[c->n].rl == NULL)
		return NULL;
	snprintf(c->slot[c->n].oin, sizeof(c->slot[c->n].oin), "%s", oin);
	return c->slot[c->n++].rl;
}

/* May one more refusal from peer be stored?  Fails closed: without a
 * limiter (out of memory) nothing more is stored. */
static bool
s_cap_allow(kpd_t *d, const char *peer, uint64_t now)
{
	ratelimit_t *rl = s_cap_of(d, peer);
	uint64_t dropped = 0;

	if (rl != NULL && ratelimit_allow(rl, now, &dropped)) {
		if (dropped > 0)
			log_warnx("inbound: %llu refused frames from %s were "
			    "dropped unstored and unanswered (over "
			    "refusals_per_minute = %u)", (unsigned long long)
			    dropped, peer, d->cfg.refusals_per_minute);
		return true;
	}
	/* said once per partner and minute, whatever the refusal lines
	 * used of their own rate limit: ketenpostd.conf(5) promises the
	 * warning, and a flood's refusal lines used to spend the budget
	 * first (test_limits under load) */
	if (rl != NULL && ratelimit_suppressed(rl) == 1)
		log_warnx("inbound: %s sends more refused frames than "
		    "refusals_per_minute = %u; dropping them unstored until the "
		    "minute is over", peer, d->cfg.refusals_per_minute);
	return false;
}

/* A refusal: recorded, answered with a signed negative receipt, logged
 * after the commit.  -1 only if it could not be recorded (the batch then
 * fails closed).  Over the partner's cap: dropped, 0. */
static int
s_refuse(kpd_t *d, struct arrival *a, struct verdict *v,
    const envelope_meta_t *m, uint64_t now)
{
	char id[37] = "-", safe[KP_ERR_MSG_MAX];
	receipt_t r;
	kp_err_t e;

	if (!s_cap_allow(d, a->peer, now))
		return 0;
	if (v->has_id)
		kpd_id(v->event_id, id);
	later_count(&a->log, d->metrics, KPM_REFUSED, a->peer, 0, v->reason);
	if (store_reject_insert(d->store, a->peer, v->has_id ? v->event_id :
	    NULL, v->digest, v->reason, now, &e) != 0) {
		log_warnx("inbound: recording refusal failed: %s", e.msg);
		return -1;
	}
	if (s_sign(d, a, v, now, false, &r) != 0)
		return -1;
	/* the partner is told the value; the log is not (issue 11) */
	policy_log_text(v->detail, safe, sizeof(safe));
	later_add(&a->log, LOG_WARNING, v->has_id ? id : NULL, a->peer,
	    protobuf_c_enum_descriptor_get_value(&kp__reason__descriptor,
	    v->reason)->name, "event %s from %s refused (%s): %s", id, a->peer,
	    protobuf_c_enum_descriptor_get_value(&kp__reason__descriptor,
	    v->reason)->name, safe);
	return s_audit(d, AUDIT_REFUSAL_IN, a->peer, v, m, NULL, &r);
}

/* The inbox row of an accepted event (metadata only).  The row started
 * zeroed (batchbuf.h); its fields and event_key are the prepare phase's
 * (s_prepare_accept). */
static void
s_inbox_row(kpd_t *d, const envelope_meta_t *m, const struct verdict *v,
    uint64_t now, inbox_row_t *row)
{
	const policy_rule_t *rule = policy_rule(d->policy, m->event_type);
	bool found = false;
	kp_err_t e;

	memcpy(row->event_id, m->event_id, 16);
	row->event_type = m->event_type;
	memcpy(row->from_oin, m->sender_oin, sizeof(row->from_oin));
	memcpy(row->case_ref, m->case_ref, 32);
	row->has_reply_to = m->has_reply_to;
	memcpy(row->in_reply_to, m->in_reply_to, 16);
	s_copy(row->purpose, sizeof(row->purpose), m->purpose);
	s_copy(row->legal_basis, sizeof(row->legal_basis), m->legal_basis);
	row->created_ms = m->created_at_ms;
	row->received_ms = now;
	memcpy(row->envelope_digest, v->digest, 32);
	row->retention_until_ms = now + (rule != NULL ?
	    policy_rule_retention_ms(rule) : 0);
	if (store_link_by_ref(d->store, row->from_oin, row->case_ref,
	    row->case_local, &found, &e) != 0 || !found)
		row->case_local[0] = '\0';
	cases_file_reply(d, row);
}

/* Insert a's accepted row with its receipt (signed by now), then log. */
static int
s_store_row(kpd_t *d, struct arrival *a)
{
	kp_err_t e;
	char id[37];

	if (store_inbox_insert(d->store, &a->row, a->sealed, a->slen,
	    a->evidence, a->evlen, a->receipt, a->receipt_len, &e) != 0) {
		log_warnx("inbound: storing event %s failed: %s",
		    kpd_id(a->row.event_id, id), e.msg);
		return -1;
	}
	a->row_waits = false;
	later_add(&a->log, LOG_INFO, kpd_id(a->row.event_id, id),
	    a->row.from_oin, NULL, "event %s type %s from %s accepted (inbox "
	    "seq %llu; purpose %s; fields %s)", id,
	    events_type_name(a->row.event_type), a->row.from_oin,
	    (unsigned long long)a->row.seq, a->row.purpose, a->row.fields);
	later_count(&a->log, d->metrics, KPM_RECEIVED, a->row.from_oin,
	    a->row.event_type, -1);
	return 0;
}

/*
 * Store an accepted event with its receipt: the payload sealed at rest
 * under a fresh per-event key, and as evidence the envelope without its
 * ciphertext (which, under the long-lived pairwise key, could not be
 * destroyed event by event at the end of retention) and without the
 * sender's tree head (witnessed apart: ledger.c); both made by the
 * prepare phase (s_prepare_accept).  A receipt drafted for a batch
 * signature keeps the row in the arrival until the receipts of the pass
 * are signed (s_sign_group), so the row is written once; everything else
 * about the event (audit entry, case, webhook) is written now, in the
 * same transaction.
 */
static int
s_accept(kpd_t *d, struct arrival *a, struct verdict *v,
    const envelope_meta_t *m, uint64_t now)
{
	inbox_row_t *row = &a->row;
	receipt_t r;
	kp_err_t e;

	if (!a->ready)
		return -1;  /* the prepare phase ran out of memory */
	s_inbox_row(d, m, v, now, row);
	row->has_event_key = true;
	if (s_sign(d, a, v, now, m->batched, &r) != 0)
		return -1;
	memcpy(row->receipt_digest, r.digest, 32);
	a->stored = true;
	memcpy(a->event_id, row->event_id, 16);
	a->row_waits = a->has_rdraft;
	if (a->row_waits)
		s_waiting_add(a);
	if ((!a->row_waits && s_store_row(d, a) != 0) ||
	    s_audit(d, AUDIT_RECEIPT_SENT, a->peer, v, m, row->fields,
	    &r) != 0 || cases_on_receive(d, row, a->ev, &e) != 0 ||
	    webhook_notice(d, WEBHOOK_EVENT, row->event_id, &e) != 0)
		return -1;
	return 0;
}

/*
 * An answer (an event type our own sends expect from this partner, by the
 * chain policy) must be about a case we shared with that partner: its
 * pseudonym is one we sent it, or it names one of our events in reply.
 * Anything else would land on no case, or on a wrong one.
 */
static bool
s_case_known(kpd_t *d, const envelope_meta_t *m, struct verdict *v)
{
	const peer_t *from = directory_find(d->chain->dir, m->sender_oin);
	outbox_row_t o;
	char local[65];
	bool found = false;
	kp_err_t e;

	if (!cases_reply_known(d, m, v->detail, sizeof(v->detail))) {
		v->reason = KP__REASON__REASON_UNKNOWN_CASE;
		return false;
	}
	if (!cases_is_answer(d, m->event_type, partner_role(peer_partner(from))))
		return true;
	if (store_link_by_ref(d->store, m->sender_oin, m->case_ref, local,
	    &found, &e) == 0 && found)
		return true;
	if (m->has_reply_to && store_outbox_get(d->store, m->in_reply_to, &o,
	    &found, &e) == 0 && found && strcmp(o.to_oin, m->sender_oin) == 0)
		return true;
	v->reason = KP__REASON__REASON_UNKNOWN_CASE;
	snprintf(v->detail, sizeof(v->detail), "%s answers a case pseudonym "
	    "that was never sent to %s", events_type_name(m->event_type),
	    m->sender_oin);
	return false;
}

/* Defence in depth: the same policy, and the same checks as on send. */
static bool
s_policy_ok(const struct pass *p, const envelope_meta_t *m,
    const ProtobufCMessage *ev, struct verdict *v)
{
	const peer_t *from = directory_find(p->dir, m->sender_oin);
	const policy_rule_t *rule = policy_rule(p->policy, m->event_type);
	char ours[65], theirs[65];
	kp_err_t e = { 0 };

	if (sodium_memcmp(m->policy_hash, policy_hash(p->policy), 32) != 0) {
		kp_hex(policy_hash(p->policy), 32, ours);
		kp_hex(m->policy_hash, 32, theirs);
		v->reason = KP__REASON__REASON_POLICY_MISMATCH;
		snprintf(v->detail, sizeof(v->detail), "sender applies policy %s, "
		    "this organisation applies %s", theirs, ours);
		return false;
	}
	/* ev is from events_unpack (s_unpack): its enum values are checked */
	if (policy_check_unpacked(p->policy, m->event_type, partner_role(
	    peer_partner(from)), p->self_role, ev, &e) != 0 ||
	    strcmp(m->purpose, policy_rule_purpose(rule)) != 0 ||
	    strcmp(m->legal_basis, policy_rule_legal_basis(rule)) != 0) {
		v->reason = KP__REASON__REASON_POLICY_VIOLATION;
		snprintf(v->detail, sizeof(v->detail), "%s", e.code ==
		    KP_ERR_POLICY ? e.msg : "purpose or legal basis differs "
		    "from the policy");
		if (e.code == KP_ERR_POLICY)
			policy_refusal_rule(e.msg, v->rule, sizeof(v->rule));
		else
			snprintf(v->rule, sizeof(v->rule), "%s", strcmp(
			    m->purpose, policy_rule_purpose(rule)) != 0 ?
			    "purpose" : "legal_basis");
		return false;
	}
	return true;
}

/* The event id of an arrival earlier in this pass whose row waits for
 * its receipt's signature: the same envelope from the same partner is a
 * duplicate that gets no receipt yet (the sender asks again), another one
 * a clash.  true if found. */
static bool
s_duplicate_in_pass(const struct arrival *a, const envelope_meta_t *m,
    const uint8_t digest[32], bool *dup, bool *clash)
{
	const struct arrival *q = s_waiting_find(a, m->event_id);

	if (q == NULL)
		return false;
	if (strcmp(q->row.from_oin, a->peer) == 0 &&
	    sodium_memcmp(q->row.envelope_digest, digest, 32) == 0)
		*dup = true;
	else
		*clash = true;
	return true;
}

/*
 * A known event id: the same envelope again (a resend: same digest, the
 * tree head outside the signed bytes may differ) gets the receipt we gave
 * the first time.  Another envelope under that id, from this partner or
 * another, is a clash: refused as id_conflict, never mistaken for a resend.
 */
static int
s_duplicate(kpd_t *d, struct arrival *a, const envelope_meta_t *m,
    const uint8_t digest[32], bool *dup, bool *clash)
{
	inbox_row_t row;
	kp_err_t e;
	char id[37];

	*dup = *clash = false;
	if (s_duplicate_in_pass(a, m, digest, dup, clash))
		return 0;
	if (store_inbox_find(d->store, m->event_id, &row, &a->receipt,
	    &a->receipt_len, dup, &e) != 0) {
		log_warnx("inbound: duplicate check failed: %s", e.msg);
		return -1;
	}
	if (*dup && (strcmp(row.from_oin, a->peer) != 0 ||
	    sodium_memcmp(row.envelope_digest, digest, 32) != 0)) {
		/* not a resend: and that receipt is not this envelope's (nor,
		 * for another partner's id, this partner's business) */
		free(a->receipt);
		a->receipt = NULL;
		a->receipt_len = 0;
		*dup = false;
		*clash = true;
		return 0;
	}
	if (*dup) {
		later_add(&a->log, LOG_INFO, kpd_id(m->event_id, id), a->peer,
		    NULL, "event %s from %s is a duplicate; original receipt "
		    "sent again", id, a->peer);
		later_count(&a->log, d->metrics, KPM_DUPLICATE, a->peer, 0,
		    -1);
	}
	return 0;
}

static int s_sign_receipts(kpd_t *d, struct arrival *arr, size_t n);

/*
 * An envelope in reply to an event that arrived earlier in this pass and
 * whose row still waits for its receipt's signature: what checks the reply
 * (cases_reply_known, cases_file_reply) reads the inbox, so the receipts
 * waiting so far are signed and their rows stored first (a batch of
 * receipts may be split; the rest of the pass forms the next one).
 * -1: that failed, and the pass rolls back.
 */
static int
s_store_replied_to(kpd_t *d, struct arrival *a, const envelope_meta_t *m)
{
	if (!m->has_reply_to || s_waiting_find(a, m->in_reply_to) == NULL)
		return 0;
	return s_sign_receipts(d, a->batch, a->index);
}

/* ---- the prepare phase: reads only its pass --------------------------- */

/* The payload as an event; false (MALFORMED) if it is none. */
static bool
s_unpack(struct arrival *a, const uint8_t *payload, size_t plen)
{
	kp_err_t e;

	if (events_unpack(a->m.event_type, payload, plen, &a->ev, &e) == 0)
		return true;
	a->v.reason = KP__REASON__REASON_MALFORMED;
	snprintf(a->v.detail, sizeof(a->v.detail), "%s", e.msg);
	return false;
}

/* What an accepted event's row needs that reads no store: its field
 * names, the payload sealed at rest under a fresh per-event key (the key
 * wrapped in row.event_key), the evidence.  a->ready if all were made. */
static void
s_prepare_accept(const struct pass *p, struct arrival *a,
    const uint8_t *payload, size_t plen, const envelope_parsed_t *env)
{
	uint8_t *r = p->rnd == NULL ? NULL :
	    p->rnd + (size_t)(a - p->arr) * ATREST_EVENT_RANDOM;
	uint8_t key[32];
	kp_err_t e;
	int rc;

	if (events_field_names(a->ev, a->row.fields, sizeof(a->row.fields)) != 0)
		a->row.fields[0] = '\0';
	if (r != NULL)            /* this arrival's bytes, used here only */
		rc = atrest_event_key_from(p->storage_key, a->m.event_id, r,
		    key, a->row.event_key) == 0 ? atrest_seal_nonce(key,
		    a->m.event_id, r + 32 + ATREST_NONCE_LEN, payload, plen,
		    &a->sealed, &a->slen) : -1;
	else
		rc = atrest_event_key(p->storage_key, a->m.event_id, key,
		    a->row.event_key) == 0 ? atrest_seal(key, a->m.event_id,
		    payload, plen, &a->sealed, &a->slen) : -1;
	a->ready = rc == 0 && envelope_parsed_strip(env, &a->evidence,
	    &a->evlen, &e) == 0;
	sodium_memzero(key, sizeof(key));
	/* the key's bytes live no longer than the key: not until the pass's
	 * last arrival is prepared */
	if (r != NULL)
		sodium_memzero(r, ATREST_EVENT_RANDOM);
}

/* Open an envelope and run the checks that read no store (steps 2, 3, 5,
 * 6 and the policy); the first refusal is kept in a->v. */
static void
s_prepare_envelope(const struct pass *p, struct arrival *a,
    const uint8_t *buf, size_t len)
{
	struct verdict *v = &a->v;
	envelope_parsed_t *env = NULL;
	uint8_t *payload = NULL;
	size_t plen = 0;
	bool has_digest = false;
	kp_err_t e;

	/* parsed once: the evidence and the tree head are taken from it */
	if (envelope_open_parsed(p->dir, p->cache, buf, len, &a->m, &payload,
	    &plen, v->digest, &has_digest, &env, &e) != 0) {
		/* out of memory is ours, not the sender's: no receipt */
		a->prep = e.code == KP_ERR_NOMEM ? PREP_NOMEM : PREP_REFUSE;
		v->reason = envelope_reason_for(e.code);
		snprintf(v->detail, sizeof(v->detail), "%s", e.msg);
		/* a complete header names the event (PROTOCOL.md §8) */
		v->has_id = has_digest;
		if (has_digest)
			memcpy(v->event_id, a->m.event_id, 16);
		else if (crypto_generichash(v->digest, 32, buf, len, NULL,
		    0) != 0)
			memset(v->digest, 0, 32);
		goto out;
	}
	a->opened = v->has_id = true;
	memcpy(v->event_id, a->m.event_id, 16);
	if (strcmp(a->m.sender_oin, a->peer) != 0) {
		a->prep = PREP_REFUSE;
		v->reason = KP__REASON__REASON_SENDER_MISMATCH;
		snprintf(v->detail, sizeof(v->detail), "envelope claims sender %s "
		    "but the connection is authenticated as %s", a->m.sender_oin,
		    a->peer);
		goto out;
	}
	a->prep = PREP_OPENED;
	/* out of memory: not witnessed this time (ledger_witness alike) */
	if (envelope_parsed_head(env, &a->head, &a->hlen) != 0)
		a->head = NULL;
	if (s_age_ok(p, &a->m, v) && s_unpack(a, payload, plen) &&
	    s_policy_ok(p, &a->m, a->ev, v))
		s_prepare_accept(p, a, payload, plen, env);
out:
	envelope_parsed_destroy(&env);
	if (payload != NULL)
		sodium_memzero(payload, plen);
	free(payload);
}

/* A refusal before the header is read (§7 steps 1-4 alike): reason, and
 * the digest of the raw bytes. */
static void
s_refuse_raw(struct arrival *a, Kp__Reason reason, const uint8_t *raw,
    size_t len, const char *what)
{
	struct verdict *v = &a->v;

	a->prep = PREP_REFUSE;
	v->reason = reason;
	snprintf(v->detail, sizeof(v->detail), "%s", what);
	if (crypto_generichash(v->digest, 32, raw, len, NULL, 0) != 0)
		memset(v->digest, 0, 32);
}

/* Prepare one frame, or one item of a pack (step 1 here); its message is
 * closed after. */
static void
s_prepare(const struct pass *p, struct arrival *a)
{
	const uint8_t *body = (const uint8_t *)zmq_msg_data(&a->body) + a->off;
	char what[sizeof(a->v.detail)];

	a->v.reason = KP__REASON__REASON_NONE;
	if (a->type == KPD_FRAME_PACK) {
		snprintf(what, sizeof(what), "pack of %zu bytes is malformed "
		    "(PROTOCOL.md §13.1)", a->len);
		s_refuse_raw(a, KP__REASON__REASON_MALFORMED, body, a->len,
		    what);
	} else if (a->type != KPD_FRAME_ENVELOPE) {
		a->prep = PREP_IGNORE;
	} else if (a->len > KP_MAX_ENVELOPE) {
		snprintf(what, sizeof(what), "frame of %zu bytes is over the "
		    "limit of %d bytes", a->len, KP_MAX_ENVELOPE);
		s_refuse_raw(a, KP__REASON__REASON_OVERSIZE, body, a->len, what);
	} else {
		s_prepare_envelope(p, a, body, a->len);
	}
	zmq_msg_close(&a->body);
	a->has_body = false;
}

/* The prepare phase of a whole pass (arg: struct pass). */
static void
s_prepare_pass(void *arg)
{
	struct pass *p = arg;
	size_t i, rlen = p->n * ATREST_EVENT_RANDOM;

	/* one draw for the pass's keys and nonces, not two calls an event */
	if (p->n != 0 && (p->rnd = malloc(rlen)) != NULL)
		randombytes_buf(p->rnd, rlen);
	for (i = 0; i < p->n; i++)
		s_prepare(p, &p->arr[i]);
	if (p->rnd != NULL) {
		sodium_memzero(p->rnd, rlen);
		free(p->rnd);
		p->rnd = NULL;
	}
}

/* ---- the store phase: on the loop -------------------------------------- */

/* An opened envelope from its own partner: the checks that read the store
 * (duplicate, clash, the case), in their place among the prepared ones,
 * then store or refuse.  -1: no receipt at all (a storage failure; the
 * sender will retry). */
static int
s_decide(kpd_t *d, struct arrival *a, uint64_t now)
{
	struct verdict *v = &a->v;
	bool dup = false, clash = false;

	if (s_duplicate(d, a, &a->m, v->digest, &dup, &clash) != 0)
		return -1;
	if (dup)
		return 0;
	if (clash) {
		v->reason = KP__REASON__REASON_ID_CONFLICT;
		snprintf(v->detail, sizeof(v->detail), "event id already used for "
		    "another envelope");
		v->rule[0] = '\0';
		return s_refuse(d, a, v, &a->m, now);
	}
	if (s_store_replied_to(d, a, &a->m) != 0)
		return -1;
	if (v->reason != KP__REASON__REASON_NONE || !s_case_known(d, &a->m, v))
		return s_refuse(d, a, v, &a->m, now);
	return s_accept(d, a, v, &a->m, now);
}

/* The store phase of one prepared frame; -1: the pass fails. */
static int
s_store_frame(kpd_t *d, struct arrival *a, uint64_t now)
{
	uint64_t sup;
	char note[64];
	int rc;

	switch (a->prep) {
	case PREP_IGNORE:
		if (kpd_log_ok(d->rl_refusal, &sup))
			log_warnx("inbound: frame of %zu bytes from %s is not "
			    "an envelope; ignored%s", a->flen, a->peer,
			    ratelimit_note(sup, note, sizeof(note)));
		return 0;
	case PREP_REFUSE:
		return s_refuse(d, a, &a->v, a->opened ? &a->m : NULL, now);
	case PREP_OPENED:
		rc = s_decide(d, a, now);
		ledger_witness_head(d, a->peer, a->head, a->hlen);
		return rc;
	case PREP_NONE:
	case PREP_NOMEM:
	default:
		return -1;
	}
}

/*
 * Split the pack in a (its body parsed: items) into arrivals a[0..n): each
 * holds a copy of the message (libzmq shares the bytes, counting
 * references) and where its item lies.  -1: out of memory (nothing kept).
 */
static int
s_split_pack(struct arrival *a, const pack_item_t *items, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++) {
		zmq_msg_init(&a[i].body);
		if (zmq_msg_copy(&a[i].body, &a[0].body) != 0) {
			while (i-- > 1) {
				zmq_msg_close(&a[i].body);
				a[i].has_body = false;
			}
			return -1;
		}
		memcpy(a[i].rid, a[0].rid, a[0].rid_len);
		a[i].rid_len = a[0].rid_len;
		memcpy(a[i].peer, a[0].peer, sizeof(a[i].peer));
		a[i].peer_pack = a[0].peer_pack;
		a[i].flen = a[0].flen;
		a[i].has_body = true;
	}
	for (i = 0; i < n; i++) {
		a[i].type = KPD_FRAME_ENVELOPE;
		a[i].off = 1 + items[i].off;
		a[i].len = items[i].len;
	}
	return 0;
}

/* Where the body of the frame in a lies; a pack's items into a[0..), at
 * most KP_PACK_ITEMS_MAX.  How many arrivals it fills (a malformed pack:
 * one, refused whole in s_prepare); -1: out of memory. */
static int
s_frame_items(struct arrival *a)
{
	const uint8_t *data = zmq_msg_data(&a->body);
	pack_item_t items[KP_PACK_ITEMS_MAX];
	size_t len = zmq_msg_size(&a->body), n = 0;

	a->flen = len;
	a->type = len > 0 ? data[0] : 0;
	a->off = 1;
	a->len = len > 0 ? len - 1 : 0;
	if (a->type != KPD_FRAME_PACK ||
	    pack_parse(data + 1, len - 1, items, KP_PACK_ITEMS_MAX, &n) != 0)
		return 1;
	return s_split_pack(a, items, n) == 0 ? (int)n : -1;
}

/* Receive [routing id][frame] into a, a pack's items into a[0..) (room
 * for KP_PACK_ITEMS_MAX); how many arrivals it filled, 0 nothing waiting,
 * -1 error. */
static int
s_recv(kpd_t *d, struct arrival *a)
{
	zmq_msg_t *body = &a->body;
	const char *uid;
	int n;

	n = zmq_recv(d->router, a->rid, sizeof(a->rid), ZMQ_DONTWAIT);
	if (n < 0)
		return 0;
	a->rid_len = (size_t)n < sizeof(a->rid) ? (size_t)n : sizeof(a->rid);
	zmq_msg_init(body);
	if (zmq_msg_recv(body, d->router, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(body);
		return -1;
	}
	if (zmq_msg_more(body)) {     /* a frame is one message: refuse more */
		kpd_drain_message(d->router);
		zmq_msg_close(body);
		return -1;
	}
	uid = zmq_msg_gets(body, "User-Id");
	s_copy(a->peer, sizeof(a->peer), uid ? uid : "");
	if (!kp_oin_valid(a->peer)) {
		zmq_msg_close(body);
		return -1;
	}
	a->peer_pack = pack_announced(zmq_msg_gets(body, KP_PACK_PROPERTY));
	a->has_body = true;
	if ((n = s_frame_items(a)) < 0) {
		zmq_msg_close(body);
		a->has_body = false;
	}
	return n;
}

/*
 * Sign the drafted receipts to arr[first].peer, from `first` on, with one
 * batch signature, and insert the inbox row of each accepted event with
 * its signed receipt.  grp, drafts, out,
 * lens: scratch of n entries.
 */
static int
s_sign_group(kpd_t *d, struct arrival *arr, size_t n, size_t first,
    struct arrival **grp, envelope_draft_t **drafts, uint8_t **out,
    size_t *lens)
{
	const char *peer = arr[first].peer;
	size_t i, m = 0;
	kp_err_t e;

	for (i = first; i < n; i++)
		if (arr[i].has_rdraft && strcmp(arr[i].peer, peer) == 0) {
			grp[m] = &arr[i];
			drafts[m++] = &arr[i].rdraft;
		}
	if (receipt_sign_batch(d->chain->dir, drafts, m, out, lens, &e) != 0) {
		log_warnx("inbound: cannot sign receipts: %s", e.msg);
		return -1;
	}
	for (i = 0; i < m; i++) {
		grp[i]->receipt = out[i];
		grp[i]->receipt_len = lens[i];
		envelope_draft_clear(&grp[i]->rdraft);
		grp[i]->has_rdraft = false;
	}
	for (i = 0; i < m; i++)
		if (grp[i]->row_waits && s_store_row(d, grp[i]) != 0)
			return -1;
	return 0;
}

/* Sign every drafted receipt of the pass: one signature per sender. */
static int
s_sign_receipts(kpd_t *d, struct arrival *arr, size_t n)
{
	struct arrival **grp = calloc(n, sizeof(*grp));
	envelope_draft_t **drafts = calloc(n, sizeof(*drafts));
	uint8_t **out = calloc(n, sizeof(*out));
	size_t *lens = calloc(n, sizeof(*lens)), i;
	int rc = -1;

	if (n > 0 && (grp == NULL || drafts == NULL || out == NULL ||
	    lens == NULL))
		goto out;
	for (i = 0; i < n; i++)
		if (arr[i].has_rdraft && s_sign_group(d, arr, n, i, grp, drafts,
		    out, lens) != 0)
			goto out;
	rc = 0;
out:
	free(grp);
	free(drafts);
	free(out);
	free(lens);
	return rc;
}

static bool
s_same_connection(const struct arrival *a, const struct arrival *b)
{
	return a->rid_len == b->rid_len && memcmp(a->rid, b->rid,
	    a->rid_len) == 0;
}

/* Send pack's frame on the connection a came in on, and empty it; if it
 * is not sent, the heads its receipts carried were not given (mark). */
static void
s_send_pack(kpd_t *d, pack_t *pack, const struct arrival *a, uint64_t mark)
{
	const uint8_t *frame;
	size_t flen = 0;

	if ((frame = pack_frame(pack, &flen)) != NULL &&
	    (zmq_send(d->router, a->rid, a->rid_len, ZMQ_SNDMORE |
	    ZMQ_DONTWAIT) < 0 || zmq_send(d->router, frame, flen,
	    ZMQ_DONTWAIT) < 0)) {
		log_debug("inbound: %zu receipts to %s not sent (peer gone); "
		    "they will be sent again on the retries", pack_count(pack),
		    a->peer);
		ledger_head_rewind(d, a->peer, mark);
	}
	pack_reset(pack);
}

/*
 * Send the pass's receipts, each on the connection its envelope came in
 * on: to a peer that announced it reads packs, as many in one frame as it
 * reads (PROTOCOL.md §13.1), to any other one frame each.  A receipt that
 * cannot be framed (out of memory) is not sent: the sender's retry gets
 * it.
 */
static void
s_send_receipts(kpd_t *d, struct arrival *arr, size_t n)
{
	pack_t *pack = d->in_pipe->rpack;
	size_t i, j;
	uint64_t mark;
	bool full = false;

	for (i = 0; i < n; i++) {
		if (arr[i].receipt == NULL || arr[i].receipt_sent)
			continue;
		mark = ledger_head_mark(d, arr[i].peer);
		for (j = i; j < n; j++) {
			if (arr[j].receipt == NULL || arr[j].receipt_sent ||
			    !s_same_connection(&arr[i], &arr[j]))
				continue;
			if (kpd_frame_pack_add(d, pack, arr[i].peer_pack,
			    arr[i].peer, true, arr[j].receipt,
			    arr[j].receipt_len, &full) != 0 || full)
				break;  /* full: the rest go in the next frame */
			arr[j].receipt_sent = true;
		}
		arr[i].receipt_sent = true;
		s_send_pack(d, pack, &arr[i], mark);
	}
}

/* The lines of a committed batch: accepted ones always, refusals
 * rate-limited. */
static void
s_log_arrivals(kpd_t *d, const struct arrival *arr, size_t n)
{
	uint64_t sup;
	char note[64];
	size_t i, j;

	log_hold();       /* a pass's lines in one write, not one each */
	for (i = 0; i < n; i++)
		for (j = 0; j < arr[i].log.n; j++) {
			const later_line_t *l = &arr[i].log.line[j];

			if (l->prio != LOG_WARNING)
				later_log(l, NULL);
			else if (kpd_log_ok(d->rl_refusal, &sup))
				later_log(l, ratelimit_note(sup, note,
				    sizeof(note)));
		}
	log_release();
}

/* Empty a stored (or dropped) pass; its arrivals are zeroed for the
 * next. */
static void
s_pass_clear(struct pass *p)
{
	struct arrival *a;
	size_t i;

	for (i = 0; i < p->n; i++) {
		a = &p->arr[i];
		if (a->has_body)
			zmq_msg_close(&a->body);
		if (a->ev != NULL)
			protobuf_c_message_free_unpacked(a->ev, NULL);
		free(a->head);
		free(a->receipt);
		envelope_draft_clear(&a->rdraft);
		free(a->sealed);
		free(a->evidence);
		later_clear(&a->log);
	}
	/* and the entries a failed or empty last read may have touched (a
	 * pack's split writes up to KP_PACK_ITEMS_MAX) */
	if (p->arr != NULL)
		batchbuf_done(&p->buf, p->n + KP_PACK_ITEMS_MAX);
	p->n = 0;
}

/* Read frames into the empty pass p until it holds batch_max arrivals or
 * more (a pack read last adds all its items); how many. */
static size_t
s_receive(kpd_t *d, struct pass *p)
{
	uint64_t sup;
	char note[64];
	int got;

	p->n = 0;
	if (d->router == NULL)
		return 0;
	/* a pack read last may add up to its whole count past batch_max */
	p->arr = batchbuf_get(&p->buf, d->cfg.batch_max + KP_PACK_ITEMS_MAX,
	    sizeof(*p->arr));
	if (p->arr == NULL) {
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("inbound: out of memory for a pass; frames "
			    "wait in the socket%s", ratelimit_note(sup, note,
			    sizeof(note)));
		usleep(100000);  /* the socket stays readable: do not spin */
		return 0;
	}
	p->now = kp_now_ms();
	while (p->n < d->cfg.batch_max &&
	    (got = s_recv(d, &p->arr[p->n])) != 0) {
		if (got > 0)
			p->n += (size_t)got;
		else if (kpd_log_ok(d->rl_refusal, &sup))
			log_warnx("inbound: a message of more than one frame, "
			    "without an authenticated partner, or a pack with "
			    "no memory to split it, dropped%s",
			    ratelimit_note(sup, note, sizeof(note)));
	}
	return p->n;
}

/* Fix in p what its prepare phase reads besides the frames (struct
 * pass). */
static void
s_pass_inputs(kpd_t *d, struct pass *p)
{
	p->dir = d->chain->dir;
	p->policy = d->policy;
	p->self_role = partner_role(identity_public(d->chain->self));
	p->storage_key = d->storage_key;
	p->replay_window_ms = d->cfg.replay_window_ms;
	p->max_clock_skew_ms = d->cfg.max_clock_skew_ms;
	p->cache = d->in_pipe->cache;
}

/* The store phase of a prepared pass: one transaction, receipts after
 * the commit; then the pass is emptied. */
static void
s_store_pass(kpd_t *d, struct pass *p)
{
	struct arrival *arr = p->arr;
	/* p->n, not batch_max: a pack read last adds up to 63 more */
	struct waiting *waiting = s_waiting_new(p->n);
	size_t i;
	int failed = 0;
	uint64_t sup;
	char note[64];
	kp_err_t e;

	if (waiting == NULL || kpd_begin(d, &e) != 0) {
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("inbound: cannot start a transaction; %zu "
			    "frames get no receipt, senders will retry%s", p->n,
			    ratelimit_note(sup, note, sizeof(note)));
		goto out;
	}
	for (i = 0; i < p->n; i++) {
		arr[i].batch = arr;
		arr[i].index = i;
		arr[i].waiting = waiting;
		if (!store_in_txn(d->store) || s_store_frame(d, &arr[i],
		    p->now) != 0)
			failed = 1;
	}
	if (!failed && s_sign_receipts(d, arr, p->n) != 0)
		failed = 1;
	if (failed || kpd_commit(d, &e) != 0) {
		kpd_rollback(d);
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("inbound: batch of %zu not stored (%s); no "
			    "receipts sent, senders will retry%s", p->n, failed ?
			    "storage error" : e.msg, ratelimit_note(sup, note,
			    sizeof(note)));
	} else {
		s_log_arrivals(d, arr, p->n);
		s_send_receipts(d, arr, p->n);
	}
out:
	s_pass_clear(p);
	free(waiting);
}

/* ---- the pipeline ------------------------------------------------------ */

/* Read the empty pass p and hand it to the worker; nothing if no frame
 * waits. */
static void
s_read_and_submit(kpd_t *d, struct pass *p)
{
	struct inpipe *ip = d->in_pipe;

	if (s_receive(d, p) == 0) {
		s_pass_clear(p);  /* what a failed read may have written */
		return;
	}
	s_pass_inputs(d, p);
	if (worker_submit(d->in_worker, s_prepare_pass, p) != 0) {
		/* only with a job in hand, which the callers rule out */
		log_warnx("inbound: the worker is busy: %zu frames dropped "
		    "without a receipt (their senders send them again)", p->n);
		s_pass_clear(p);
		return;
	}
	ip->in_hand = p;
}

/* Wait for the job in hand: its prepared pass, or NULL if none. */
static struct pass *
s_wait(kpd_t *d)
{
	struct inpipe *ip = d->in_pipe;
	struct pass *p;

	if (ip == NULL || ip->in_hand == NULL)
		return NULL;
	p = worker_wait(d->in_worker);
	ip->in_hand = NULL;
	return p;
}

/*
 * The ROUTER is readable and no pass is in hand (main.c polls it only
 * then).  This first pass is prepared on the loop itself: there is no
 * stored pass for the worker's job to overlap with, so handing it over
 * would only add a thread switch and a wake-up to every event at low
 * load (about 15-30% more CPU per event at 1,000/s, PERFORMANCE.md).  What
 * arrived meanwhile goes to the worker, and is prepared while the loop
 * stores the first; inbound_work carries the pipeline on from there.
 */
void
inbound_drain(kpd_t *d)
{
	struct inpipe *ip = d->in_pipe;
	struct pass *first;

	if (ip == NULL || ip->in_hand != NULL)
		return;
	first = &ip->pass[0];
	if (s_receive(d, first) == 0) {
		s_pass_clear(first);  /* what a failed read may have written */
		return;
	}
	s_pass_inputs(d, first);
	s_prepare_pass(first);  /* no job in hand: the cache is the loop's */
	s_read_and_submit(d, &ip->pass[1]);
	s_store_pass(d, first);
}

/* The pass in hand is prepared: hand the next one (what the ROUTER holds
 * now) to the worker, then store this one, so the worker prepares pass
 * N+1 while the loop stores and commits pass N. */
void
inbound_work(kpd_t *d)
{
	struct inpipe *ip = d->in_pipe;
	struct pass *done = s_wait(d);

	if (done == NULL)
		return;
	/* the other slot: empty, since only inbound_work hands one over
	 * while a pass is stored, and stores that pass before it returns */
	s_read_and_submit(d, done == &ip->pass[0] ? &ip->pass[1] :
	    &ip->pass[0]);
	s_store_pass(d, done);
}

void
inbound_settle(kpd_t *d)
{
	struct pass *done = s_wait(d);

	if (done != NULL)
		s_store_pass(d, done);
}

int
inbound_work_fd(const kpd_t *d)
{
	return d->in_pipe != NULL && d->in_pipe->in_hand != NULL ?
	    worker_fd(d->in_worker) : -1;
}

int
inbound_start(kpd_t *d, bool threaded, kp_err_t *err)
{
	struct inpipe *ip = calloc(1, sizeof(*ip));

	if (ip == NULL || (ip->cache = batch_cache_new(KPD_BATCH_CACHE)) ==
	    NULL || (ip->rpack = pack_new(KPD_FRAME_RECEIPT,
	    KPD_FRAME_RECEIPT_PACK)) == NULL) {
		if (ip != NULL)
			batch_cache_destroy(&ip->cache);
		free(ip);
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	}
	d->in_pipe = ip;
	return worker_new(threaded, &d->in_worker, err);
}

/*
 * At stop, a pass in hand (prepared, or being prepared) is stored like
 * any other, receipts and all: it was prepared under the chain and policy
 * in force (a reload stores it before it swaps them), the store is still
 * open, and storing it now spares its senders a resend.  With our own
 * certificate revoked it is dropped instead, unreceipted (a revoked
 * organisation signs nothing; the senders send it again).
 */
void
inbound_stop(kpd_t *d)
{
	struct inpipe *ip = d->in_pipe;
	struct pass *done = s_wait(d);
	size_t i;

	if (done != NULL && d->exit_status == KPD_EXIT_REVOKED) {
		log_info("inbound: stopping: %zu frames prepared, not stored "
		    "(no receipt: their senders send them again)", done->n);
		s_pass_clear(done);
	} else if (done != NULL) {
		log_info("inbound: stopping: the pass in hand (%zu frames) "
		    "stored first", done->n);
		s_store_pass(d, done);
	}
	worker_destroy(&d->in_worker);
	if (ip == NULL)
		return;
	for (i = 0; i < 2; i++) {
		s_pass_clear(&ip->pass[i]);
		batchbuf_free(&ip->pass[i].buf);
	}
	batch_cache_destroy(&ip->cache);
	pack_destroy(&ip->rpack);
	free(ip);
	d->in_pipe = NULL;
}

void
inbound_caps_destroy(kpd_t *d)
{
	struct caps *c = d->refuse_caps;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		ratelimit_destroy(&c->slot[i].rl);
	free(c);
	d->refuse_caps = NULL;
}

void
inbound_monitor(kpd_t *d)
{
	uint16_t event;
	uint64_t sup;
	char addr[256], note[64];

	if (kpd_monitor_read(d->router_mon, &event, addr, sizeof(addr)) != 0)
		return;
	if ((event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
	    event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) &&
	    kpd_log_ok(d->rl_handshake, &sup))
		log_warnx("inbound: handshake refused on %s (not a CURVE client "
		    "of this server key, or a protocol error)%s", addr,
		    ratelimit_note(sup, note, sizeof(note)));
	else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
		log_debug("inbound: a client on %s was refused by ZAP", addr);
	else if (event == ZMQ_EVENT_DISCONNECTED)
		log_debug("inbound: a connection on %s closed", addr);
}
