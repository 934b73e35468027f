/*
 * apisrv.c: the local API (proto/api.proto) for the organisation's own
 * systems and the `ketenpost` client.
 *
 * This file: the socket, the passes, sends and reminders; every other
 * request is answered by apiquery.c (what both share: apisrv_int.h).
 *
 * A ROUTER on ipc:// in the state folder (socket file 0600: other users
 * cannot connect).  Requests are [routing id][empty][Request]; the answer
 * goes back the same way.  Send requests are collected into one batch and
 * one transaction, and their event ids are answered only after the commit:
 * an event id handed out is an event that survives a crash.  Everything is
 * checked before it is stored (type, recipient, payload); a refusal is an
 * error response with a stable error code, and nothing is queued.
 *
 * A send with an idempotency key (proto/api.proto) that finds an event
 * stored under the same (client_id, key) answers that event's id and
 * stores nothing; with a different request it is refused.  The log says
 * only what committed: "queued" lines are kept with their request and
 * written after the commit; a batch that rolls back gets one warning.
 *
 * Batch signatures (PROTOCOL.md §5.6): a send keeps its envelope as a
 * draft in memory (sealed, not signed; its envelope digest is final) and
 * writes its audit entry, link and expectation.  Before the commit, the
 * drafts of the batch are signed per recipient, one Ed25519 signature per
 * recipient (s_sign_sends), and each outbox row is inserted once, with its
 * signed envelope, in the same transaction: no row is written twice.
 * Until then a repeated idempotency key is found among the batch's
 * requests (s_idem_in_batch).  A recipient that does not read batch proofs
 * (outbound_single_sig) gets single signatures.  Nothing unsigned ever
 * leaves: a batch whose signing fails rolls back.
 *
 * Two phases and two passes (issue 16, PERFORMANCE.md "the sender's second
 * core"): a send's prepare phase (s_prepare_send: decoding, checks,
 * idempotency hash, pseudonym from keys, sealing, the case and route
 * sealed at rest) reads no table and runs on d->api_worker; its store
 * phase (s_send) runs on the loop.  While the loop stores, signs,
 * commits and answers pass N, the worker prepares pass N+1; at most two
 * passes exist, and they are stored in the order they were received.
 * What the job may read while it holds a pass: the pass, and of d only
 * the chain, policy, storage key, the store's metadata keys
 * (store_seals_make) and fixed configuration, which nothing replaces
 * before apisrv_settle; it never logs, and of the store uses nothing
 * else (ARCHITECTURE.md, "While a job is in hand").
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "apisrv_int.h"
#include "envelope.h"
#include "events.h"
#include "later.h"
#include "log.h"
#include "pseudonym.h"
#include "worker.h"

#define API_REQUEST_MAX (KP_MAX_PAYLOAD + 4096)
/* What the socket takes in at all (ZMQ_MAXMSGSIZE): a request above
 * API_REQUEST_MAX but below this is read and answered with a clear
 * "too large" error; only a bigger one makes libzmq drop the connection
 * (the client checks the size before it sends, so that is a broken or
 * hostile client, and the socket is the organisation's own, mode 0600). */
#define API_WIRE_MAX (1024 * 1024)
#define API_IDEM_KEY_MAX 128
#define API_CLIENT_ID_MAX 64

/* OUT: r's error and code; returns -1 (apisrv_int.h). */
int
api_fail(struct api_req *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->code = kp_code_name(code);
	return -1;
}

/* ---- send ---------------------------------------------------------------- */

static bool
s_token_valid(const char *t, size_t min, size_t max)
{
	size_t i, n = strlen(t);

	if (n < min || n > max)
		return false;
	for (i = 0; i < n; i++)
		if (t[i] <= ' ' || t[i] > '~')
			return false;
	return true;
}

static void
s_hash_part(crypto_generichash_state *h, const void *p, size_t n)
{
	uint8_t len[8];
	size_t i;

	for (i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)n >> (8 * i));
	crypto_generichash_update(h, len, sizeof(len));
	if (n > 0)
		crypto_generichash_update(h, p, n);
}

/* What an idempotency key stands for: every field that makes the event
 * (each length-prefixed, so no two requests share an encoding). */
static void
s_request_hash(const Kp__SendRequest *s, uint8_t out[32])
{
	crypto_generichash_state h;
	uint32_t type = s->has_event_type ? (uint32_t)s->event_type : 0;
	uint32_t ttl = s->has_ttl_seconds ? s->ttl_seconds : 0;

	crypto_generichash_init(&h, (const uint8_t *)"kp-idem-v1", 10, 32);
	s_hash_part(&h, &type, sizeof(type));
	s_hash_part(&h, s->to_oin, s->to_oin ? strlen(s->to_oin) : 0);
	s_hash_part(&h, s->case_ref, s->case_ref ? strlen(s->case_ref) : 0);
	s_hash_part(&h, s->payload.data, s->has_payload ? s->payload.len : 0);
	s_hash_part(&h, s->in_reply_to.data, s->has_in_reply_to ?
	    s->in_reply_to.len : 0);
	s_hash_part(&h, &ttl, sizeof(ttl));
	crypto_generichash_final(&h, out, 32);
}

/*
 * old_hash is s's hash with the payload as a client wrote it before the
 * repeated enums were packed (PROTOCOL.md §10): a retry, after an
 * upgrade, of a send stored before it, made again from the same JSON by
 * `ketenpost send` or the REST API, whose payload bytes now differ.
 */
static bool
s_idem_same_before_packed(const Kp__SendRequest *s, const uint8_t
    old_hash[32])
{
	Kp__SendRequest before = *s;
	uint8_t *buf = NULL, hash[32];
	size_t len = 0;
	bool same;
	kp_err_t e;

	if (!s->has_payload || !s->has_event_type ||
	    events_pack_unpacked(s->event_type, s->payload.data,
	    s->payload.len, &buf, &len, &e) != 0)
		return false;
	before.payload = (ProtobufCBinaryData){ len, buf };
	s_request_hash(&before, hash);
	same = sodium_memcmp(hash, old_hash, 32) == 0;
	free(buf);
	return same;
}

/* An earlier send of r's batch under (client, key): its row is stored
 * only when the batch is signed (s_store_signed). */
static void
s_idem_in_batch(const struct api_req *r, const char *client, const char *key,
    uint8_t id[16], uint8_t hash[32], bool *found)
{
	const struct api_req *q;
	size_t i;

	*found = false;
	for (i = 0; i < r->index && r->batch != NULL; i++) {
		q = &r->batch[i];
		if (q->code != NULL || !q->has_draft || !q->row.has_idem ||
		    strcmp(q->row.idem_client, client) != 0 ||
		    strcmp(q->row.idem_key, key) != 0)
			continue;
		memcpy(id, q->row.event_id, 16);
		memcpy(hash, q->row.idem_hash, 32);
		*found = true;
		return;
	}
}

/*
 * A send with an idempotency key: *stored when an event was stored under
 * it before (then r is answered with that event's id), else row gets the
 * key to store with the new event.  The same key with another request is
 * refused: a key names one event.
 */
static int
s_idem(kpd_t *d, struct api_req *r, const Kp__SendRequest *s,
    const uint8_t hash[32], outbox_row_t *row, bool *stored)
{
	const char *client = s->client_id != NULL ? s->client_id : "";
	uint8_t old_hash[32], id[16];
	char text[37];
	bool found = false;
	kp_err_t e;

	*stored = false;
	if (!s_token_valid(s->idempotency_key, 1, API_IDEM_KEY_MAX) ||
	    (*client != '\0' && !s_token_valid(client, 1, API_CLIENT_ID_MAX)))
		return api_fail(r, KP_ERR_INVALID_ARG,
		    "idempotency key must be 1-%d and client id 0-%d printable "
		    "characters without spaces", API_IDEM_KEY_MAX,
		    API_CLIENT_ID_MAX);
	s_idem_in_batch(r, client, s->idempotency_key, id, old_hash, &found);
	if (!found && store_outbox_by_idem(d->store, client,
	    s->idempotency_key, id, old_hash, &found, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	if (found && sodium_memcmp(hash, old_hash, 32) != 0 &&
	    !s_idem_same_before_packed(s, old_hash)) {
		log_warnx("send refused: idempotency key reused for a different "
		    "request (event %s)", kpd_id(id, text));
		api_fail(r, KP_ERR_INVALID_ARG,
		    "idempotency key already used for event %s with a different "
		    "request; a key names one event: use a new key for a new "
		    "event", text);
		r->code = "idempotency_key_reused";
		return -1;
	}
	if (found) {
		memcpy(r->event_id, id, 16);
		*stored = r->repeated = true;
		log_info("event %s: send repeated with its idempotency key; "
		    "nothing new stored", kpd_id(id, text));
		return 0;
	}
	row->has_idem = true;
	snprintf(row->idem_client, sizeof(row->idem_client), "%s", client);
	snprintf(row->idem_key, sizeof(row->idem_key), "%s",
	    s->idempotency_key);
	memcpy(row->idem_hash, hash, 32);
	return 0;
}

/* The case pseudonym for (partner, local ref): an existing link, the
 * pseudonym of the event answered, or a fresh keyed hash (computed in
 * the prepare phase: p->m.case_ref).  store_link_ensure makes or finds
 * the link; a new case of ours (most sends) costs it the insert and a
 * look-up in the index of filed links.  OUT: case_ref, *link_id. */
static int
s_case_ref(kpd_t *d, struct api_req *r, const Kp__SendRequest *s,
    const struct send_prep *p, uint8_t case_ref[32], uint64_t *link_id)
{
	inbox_row_t orig;
	uint8_t candidate[32];
	bool found = false;
	kp_err_t e;

	if (s->has_in_reply_to) {
		if (store_inbox_find(d->store, s->in_reply_to.data, &orig, NULL,
		    NULL, &found, &e) != 0)
			return api_fail(r, e.code, "%s", e.msg);
		if (found && strcmp(orig.from_oin, s->to_oin) == 0)
			memcpy(candidate, orig.case_ref, 32);
		else
			found = false;
	}
	if (!found && p->has_candidate)
		memcpy(candidate, p->m.case_ref, 32);
	else if (!found && pseudonym_for(d->chain->self, s->to_oin,
	    s->case_ref, candidate, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	if (store_link_ensure(d->store, s->to_oin, s->case_ref, candidate,
	    case_ref, link_id, &e) != 0)
		return api_fail(r, e.code, "case %s: %s", s->case_ref, e.msg);
	return 0;
}

/* The audit entry of a send, or of a send refused here (refusal_out). */
static int
s_audit_send(kpd_t *d, struct api_req *r, const envelope_meta_t *m,
    const outbox_row_t *row, const Kp__SendRequest *s, int reason)
{
	audit_entry_t e;
	kp_err_t err;

	memset(&e, 0, sizeof(e));
	e.kind = reason == 0 ? AUDIT_SEND : AUDIT_REFUSAL_OUT;
	e.direction = AUDIT_OUT;
	snprintf(e.partner_oin, sizeof(e.partner_oin), "%s",
	    s->to_oin && kp_oin_valid(s->to_oin) ? s->to_oin : "");
	e.event_type = s->has_event_type && events_descriptor(s->event_type) ?
	    (int)s->event_type : 0;
	e.reason = reason;
	snprintf(e.rule, sizeof(e.rule), "%s", r->refusal_rule);
	snprintf(e.actor, sizeof(e.actor), "%s", r->who);
	e.has_event_id = true;
	memcpy(e.event_id, r->event_id, 16);
	if (m != NULL) {
		e.has_event_id = e.has_policy_hash = e.has_case_pseudonym = true;
		e.has_envelope_digest = true;
		memcpy(e.event_id, m->event_id, 16);
		memcpy(e.purpose, m->purpose, sizeof(e.purpose));
		memcpy(e.legal_basis, m->legal_basis, sizeof(e.legal_basis));
		memcpy(e.policy_hash, m->policy_hash, 32);
		memcpy(e.case_pseudonym, m->case_ref, 32);
		memcpy(e.envelope_digest, row->envelope_digest, 32);
		memcpy(e.fields, row->fields, sizeof(e.fields));
	}
	if (ledger_append(d, &e, &err) != 0) {
		r->fatal = true;
		return api_fail(r, KP_ERR_IO, "the audit log cannot be written "
		    "(%s); nothing was sent", err.msg);
	}
	return 0;
}

/* A failure of the prepare phase, at stage `stage`: -1 (p->failed says
 * where it applies).  Nothing is logged here: s_prep_apply does that on
 * the loop, once the failure is the request's answer. */
static int
s_prep_fail(struct send_prep *p, int stage, const kp_err_t *e)
{
	p->failed = stage;
	p->err = *e;
	return -1;
}

/*
 * Everything is checked before anything is stored: the event type, the
 * recipient (a verified partner), the local case reference, the payload
 * (a valid event) and the chain policy (roles, fields, values).  Reads no
 * store: the reply's check (cases_check_reply) is the store phase's, and
 * a failure here is reported at its stage (PREP_EARLY before that check,
 * PREP_CHECK after it), as before the split.  OUT: p->to, p->ev, p->rule.
 */
static int
s_send_check(const kpd_t *d, const Kp__SendRequest *s, struct send_prep *p)
{
	const partner_t *me = identity_public(d->chain->self);
	kp_err_t e;

	if (!s->has_event_type || events_descriptor(s->event_type) == NULL) {
		kp_fail(&e, KP_ERR_INVALID_ARG, "unknown event type");
		return s_prep_fail(p, PREP_EARLY, &e);
	}
	if (s->to_oin == NULL || (p->to = directory_find(d->chain->dir,
	    s->to_oin)) == NULL) {
		kp_fail(&e, KP_ERR_UNKNOWN_RECIPIENT, "recipient %s is not a "
		    "verified partner (unknown, expired or revoked)",
		    s->to_oin ? s->to_oin : "(none)");
		return s_prep_fail(p, PREP_EARLY, &e);
	}
	if (!pseudonym_ref_valid(s->case_ref)) {
		kp_fail(&e, KP_ERR_INVALID_ARG, "case reference must be 1-64 "
		    "printable characters without spaces");
		return s_prep_fail(p, PREP_EARLY, &e);
	}
	if (s->has_in_reply_to && s->in_reply_to.len != 16) {
		kp_fail(&e, KP_ERR_INVALID_ARG, "in_reply_to must be an event "
		    "id of 16 bytes");
		return s_prep_fail(p, PREP_EARLY, &e);
	}
	if (!s->has_payload) {
		kp_fail(&e, KP_ERR_INVALID_ARG, "no payload");
		return s_prep_fail(p, PREP_CHECK, &e);
	}
	/* p->ev is from events_unpack: its enum values are checked there */
	if (events_unpack(s->event_type, s->payload.data, s->payload.len,
	    &p->ev, &e) != 0 || policy_check_unpacked(d->policy, s->event_type,
	    partner_role(me), partner_role(peer_partner(p->to)), p->ev,
	    &e) != 0) {
		p->log_refused = true;
		p->refusal_reason = e.code == KP_ERR_POLICY ?
		    KP__REASON__REASON_POLICY_VIOLATION :
		    KP__REASON__REASON_MALFORMED;
		policy_refusal_rule(e.msg, p->refusal_rule,
		    sizeof(p->refusal_rule));
		return s_prep_fail(p, PREP_CHECK, &e);
	}
	p->rule = policy_rule(d->policy, s->event_type);
	return 0;
}

/* Apply a failure of the prepare phase found at `stage`: r's answer, its
 * log line and what s_handle audits.  true if there was one. */
static bool
s_prep_apply(struct api_req *r, int stage)
{
	struct send_prep *p = &r->prep;
	char safe[KP_ERR_MSG_MAX];

	if (p->failed != stage)
		return false;
	if (p->log_refused) {
		policy_log_text(p->err.msg, safe, sizeof(safe));
		log_warnx("send refused: %s", safe);
		r->refusal_reason = p->refusal_reason;
		memcpy(r->refusal_rule, p->refusal_rule,
		    sizeof(r->refusal_rule));
	}
	api_fail(r, p->err.code, "%s", p->err.msg);
	return true;
}

static void
s_meta(const kpd_t *d, const Kp__SendRequest *s, const policy_rule_t *rule,
    const uint8_t id[16], envelope_meta_t *m, uint64_t now)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->event_id, id, 16);
	m->event_type = s->event_type;
	snprintf(m->purpose, sizeof(m->purpose), "%s",
	    policy_rule_purpose(rule));
	snprintf(m->legal_basis, sizeof(m->legal_basis), "%s",
	    policy_rule_legal_basis(rule));
	memcpy(m->policy_hash, policy_hash(d->policy), KP_DIGEST_LEN);
	m->created_at_ms = now;
	m->expires_at_ms = now + (s->has_ttl_seconds && s->ttl_seconds > 0 ?
	    (uint64_t)s->ttl_seconds * 1000u : d->cfg.event_ttl_ms);
	m->has_reply_to = s->has_in_reply_to;
	if (s->has_in_reply_to)
		memcpy(m->in_reply_to, s->in_reply_to.data, 16);
}

/* The outbox row of a sealed event, but its case pseudonym, link and
 * envelope digest (the store phase's: s_send); its envelope is stored with
 * it once signed (s_store_signed), under a fresh per-event key made here.
 * OUT: *row, rest (send_prep's). */
static int
s_outbox_row(const kpd_t *d, const envelope_meta_t *m,
    const Kp__SendRequest *s, const ProtobufCMessage *ev,
    const policy_rule_t *rule, uint64_t now, outbox_row_t *row,
    uint8_t rest[32 + ATREST_NONCE_LEN])
{
	/* the key, its wrapping nonce, the envelope's; the retry's jitter */
	uint8_t rnd[ATREST_EVENT_RANDOM + 4];
	uint32_t jitter;
	int rc;

	memcpy(row->event_id, m->event_id, 16);
	row->event_type = m->event_type;
	memcpy(row->to_oin, m->recipient_oin, sizeof(row->to_oin));
	snprintf(row->case_local, sizeof(row->case_local), "%s", s->case_ref);
	row->has_reply_to = m->has_reply_to;
	memcpy(row->in_reply_to, m->in_reply_to, 16);
	row->created_ms = now;
	row->expires_ms = m->expires_at_ms;
	row->route = cases_route_of(m->event_type, ev);
	row->attempts = 1;  /* sent right after the commit: outbound_send_now */
	memcpy(row->purpose, m->purpose, sizeof(m->purpose));
	memcpy(row->legal_basis, m->legal_basis, sizeof(m->legal_basis));
	if (events_field_names(ev, row->fields, sizeof(row->fields)) != 0)
		row->fields[0] = '\0';
	row->retention_until_ms = now + policy_rule_retention_ms(rule);
	row->has_event_key = true;
	/* one getrandom(2) for all four */
	randombytes_buf(rnd, sizeof(rnd));
	memcpy(&jitter, rnd + ATREST_EVENT_RANDOM, 4);
	row->next_attempt_ms = now + outbound_backoff_jittered_ms(&d->cfg, 1,
	    jitter);
	rc = atrest_event_key_from(d->storage_key, row->event_id, rnd, rest,
	    row->event_key);
	memcpy(rest + 32, rnd + 32 + ATREST_NONCE_LEN, ATREST_NONCE_LEN);
	sodium_memzero(rnd, sizeof(rnd));
	return rc;
}

/*
 * The prepare phase of a send: every part of it that reads no table, into
 * r->prep.  Runs on the worker's thread (s_prepare_job) or inline (the
 * REST API, reminders).  Reads r's request and, of d, only what the loop
 * does not change while a job is in hand: the chain (directory, own
 * keys), the policy, the storage key, the store's metadata keys (the
 * case and route sealed ahead: store_seals_make) and fixed configuration
 * (s_reload and stop settle the pass in hand first: apisrv_settle).
 * Writes nothing but r->prep and logs nothing.
 *
 * The envelope is sealed here under the pseudonym a new link gets (keyed
 * hash of partner and local reference): the store phase finds the
 * pseudonym actually used (an existing link, the event answered) and
 * seals again on the loop only when that one differs.
 */
static void
s_prepare_send(const kpd_t *d, struct api_req *r, uint64_t now)
{
	const Kp__SendRequest *s = r->req->send;
	struct send_prep *p = &r->prep;
	kp_err_t e;

	p->done = true;
	if (s->idempotency_key != NULL)
		s_request_hash(s, p->hash);
	/* the id is the event's from the start: a refusal is audited by it */
	kp_uuid_new(p->event_id);
	if (s_send_check(d, s, p) != 0)
		return;
	s_meta(d, s, p->rule, p->event_id, &p->m, now);
	p->has_candidate = pseudonym_for(d->chain->self, s->to_oin,
	    s->case_ref, p->m.case_ref, &e) == 0;
	if (!p->has_candidate)
		return;   /* the store phase tries again and says why */
	if (envelope_seal_draft(d->chain->dir, p->to, &p->m, s->payload.data,
	    s->payload.len, &p->draft, &e) != 0) {
		s_prep_fail(p, PREP_SEAL, &e);
		return;
	}
	if (s_outbox_row(d, &p->m, s, p->ev, p->rule, now, &p->row,
	    p->rest) != 0) {
		kp_fail(&e, KP_ERR_NOMEM, "sealing at rest failed");
		s_prep_fail(p, PREP_SEAL, &e);
		return;
	}
	/* a failure only leaves the sealing to the statements */
	p->has_seals = store_seals_make(d->store, s->to_oin, s->case_ref,
	    p->event_id, p->row.route, &p->seals) == 0;
}

/* The envelope sealed under m, for the store phase: the prepared draft
 * if it was sealed under the same pseudonym, else sealed again here. */
static int
s_send_draft(kpd_t *d, struct api_req *r, const Kp__SendRequest *s,
    envelope_meta_t *m, envelope_draft_t *draft, uint64_t now)
{
	struct send_prep *p = &r->prep;
	kp_err_t e;

	if (p->has_candidate && p->draft.buf != NULL &&
	    sodium_memcmp(m->case_ref, p->m.case_ref, 32) == 0) {
		*draft = p->draft;
		memset(&p->draft, 0, sizeof(p->draft));
		return 0;
	}
	if (envelope_seal_draft(d->chain->dir, p->to, m, s->payload.data,
	    s->payload.len, draft, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	if (!p->has_candidate && s_outbox_row(d, m, s, p->ev, p->rule, now,
	    &p->row, p->rest) != 0)
		return api_fail(r, KP_ERR_NOMEM, "sealing at rest failed");
	return 0;
}

/*
 * The store phase of a send, on the loop: idempotency, the reply's check,
 * the case link, the audit entry and the expectation; the outbox row is
 * inserted once the batch is signed (s_sign_sends).  Prepares inline what
 * was not prepared (REST, reminders).  Everything that refuses a send
 * does so before its first write (the link): a send of the API has no
 * savepoint (s_handle), and one that fails once it has written fails its
 * batch (s_bare_end).  A reminder's sends run in the REMIND request's
 * savepoint.
 */
static int
s_send(kpd_t *d, struct api_req *r, uint64_t now)
{
	const Kp__SendRequest *s = r->req->send;
	struct send_prep *p = &r->prep;
	envelope_meta_t m;
	envelope_draft_t draft;
	outbox_row_t row;
	uint64_t link_id = 0;
	kp_err_t e;
	char id[37];
	bool stored = false;
	int rc = -1;

	memset(&draft, 0, sizeof(draft));
	if (!p->done)
		s_prepare_send(d, r, now);
	if (s->idempotency_key != NULL && s_idem(d, r, s, p->hash, &p->row,
	    &stored) != 0)
		goto out;
	if (stored)
		return 0;
	memcpy(r->event_id, p->event_id, 16);
	if (s_prep_apply(r, PREP_EARLY))
		goto out;
	if (s->has_in_reply_to && cases_check_reply(d, s->to_oin,
	    s->in_reply_to.data, &e) != 0) {
		api_fail(r, e.code, "%s", e.msg);
		goto out;
	}
	/* every refusal before the first write (the link): a send has no
	 * savepoint (s_handle), so what fails after it fails the pass */
	if (s_prep_apply(r, PREP_CHECK) || s_prep_apply(r, PREP_SEAL))
		goto out;
	m = p->m;
	if (p->has_seals)
		store_seals_use(d->store, &p->seals);
	if (s_case_ref(d, r, s, p, m.case_ref, &link_id) != 0 ||
	    s_send_draft(d, r, s, &m, &draft, now) != 0)
		goto out;
	row = p->row;  /* with the key s_idem gave it */
	memcpy(row.case_ref, m.case_ref, 32);
	memcpy(row.envelope_digest, draft.digest, KP_DIGEST_LEN);
	row.link_id = link_id;
	if (s_audit_send(d, r, &m, &row, s, 0) != 0)
		goto out;
	if (cases_on_send(d, &row, partner_role(peer_partner(p->to)), p->ev,
	    &e) != 0) {
		api_fail(r, e.code, "%s", e.msg);
		goto out;
	}
	r->draft = draft;
	r->has_draft = true;
	memset(&draft, 0, sizeof(draft));
	r->row = row;
	r->immediate = true;
	memcpy(r->to_oin, row.to_oin, sizeof(r->to_oin));
	memcpy(r->event_id, m.event_id, 16);
	later_add(&r->log, LOG_INFO, kpd_id(m.event_id, id), m.recipient_oin,
	    NULL, "event %s type %s to %s queued (purpose %s; fields %s)", id,
	    events_type_name(m.event_type), m.recipient_oin, m.purpose,
	    row.fields);
	later_count(&r->log, d->metrics, KPM_QUEUED, m.recipient_oin,
	    m.event_type, -1);
	rc = 0;
out:
	envelope_draft_clear(&draft);
	return rc;
}

/* The prepared send's memory: its decoded payload, an unused draft. */
static void
s_prep_clear(struct send_prep *p)
{
	if (p->ev != NULL)
		protobuf_c_message_free_unpacked(p->ev, NULL);
	p->ev = NULL;
	envelope_draft_clear(&p->draft);
	sodium_memzero(p->row.event_key, sizeof(p->row.event_key));
	sodium_memzero(p->rest, sizeof(p->rest));
	sodium_memzero(&p->seals, sizeof(p->seals));
	p->has_seals = false;
}

/* ---- batch signatures ------------------------------------------------------ */

/*
 * Store r's outbox row with its signed envelope sealed at rest: the row is
 * written once, in the batch's transaction, after the signature (the
 * draft is never stored).  Until then a repeated idempotency key finds the
 * request in its batch (s_idem_in_batch).
 */
static int
s_store_signed(kpd_t *d, struct api_req *r, kp_err_t *e)
{
	uint8_t *at_rest = NULL;
	size_t alen = 0;
	int rc;

	if (r->prep.has_seals)
		store_seals_use(d->store, &r->prep.seals);
	if (atrest_seal_nonce(r->prep.rest, r->event_id, r->prep.rest + 32,
	    r->env, r->env_len, &at_rest, &alen) != 0)
		rc = kp_fail(e, KP_ERR_NOMEM, "sealing at rest failed");
	else
		rc = store_outbox_insert(d->store, &r->row, at_rest, alen, e);
	free(at_rest);
	return rc;
}

/* A send made inside another request (a reminder): signed alone, now. */
static int
s_sign_alone(kpd_t *d, struct api_req *r)
{
	envelope_draft_t *dp = &r->draft;
	kp_err_t e;

	if (!r->has_draft)
		return 0;
	if (envelope_sign_batch(d->chain->dir, &dp, 1, &r->env, &r->env_len,
	    &e) != 0 || s_store_signed(d, r, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	envelope_draft_clear(&r->draft);
	r->has_draft = false;
	metrics_count(d->metrics, KPM_SIGNATURE, r->to_oin, 0, -1);
	return 0;
}

/* Does r hold a draft still to be signed for `oin`? */
static bool
s_unsigned_for(const struct api_req *r, const char *oin)
{
	return r->has_draft && r->code == NULL && r->env == NULL &&
	    strcmp(r->to_oin, oin) == 0;
}

/*
 * Sign the drafts to batch[first].to_oin, from `first` on, as one batch
 * (or one by one for a partner that reads no batch proofs), then store
 * them.  grp, drafts, out, lens: scratch of n entries.
 */
static int
s_sign_group(kpd_t *d, struct api_req *batch, size_t n, size_t first,
    struct api_req **grp, envelope_draft_t **drafts, uint8_t **out,
    size_t *lens, kp_err_t *e)
{
	const char *oin = batch[first].to_oin;
	bool single = outbound_single_sig(d, oin);
	size_t i, m = 0, k, step;

	for (i = first; i < n; i++)
		if (s_unsigned_for(&batch[i], oin)) {
			grp[m] = &batch[i];
			drafts[m++] = &batch[i].draft;
		}
	for (k = 0; k < m; k += step) {
		step = single ? 1 : m - k;
		if (envelope_sign_batch(d->chain->dir, drafts + k, step,
		    out + k, lens + k, e) != 0) {
			while (k > 0)
				free(out[--k]);
			return -1;
		}
		metrics_count(d->metrics, KPM_SIGNATURE, oin, 0, -1);
	}
	for (k = 0; k < m; k++) {
		grp[k]->env = out[k];
		grp[k]->env_len = lens[k];
		out[k] = NULL;
		envelope_draft_clear(&grp[k]->draft);
		grp[k]->has_draft = false;
	}
	for (k = 0; k < m; k++)
		if (s_store_signed(d, grp[k], e) != 0)
			return -1;
	return 0;
}

/* Sign every stored draft of the batch, one signature per recipient. */
static int
s_sign_sends(kpd_t *d, struct api_req *batch, size_t n, kp_err_t *e)
{
	struct api_req **grp = calloc(n, sizeof(*grp));
	envelope_draft_t **drafts = calloc(n, sizeof(*drafts));
	uint8_t **out = calloc(n, sizeof(*out));
	size_t *lens = calloc(n, sizeof(*lens)), i;
	int rc = -1;

	if (grp == NULL || drafts == NULL || out == NULL || lens == NULL) {
		kp_fail(e, KP_ERR_NOMEM, "out of memory signing the batch");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (s_unsigned_for(&batch[i], batch[i].to_oin) &&
		    s_sign_group(d, batch, n, i, grp, drafts, out, lens, e) != 0)
			goto out;
	rc = 0;
out:
	free(grp);
	free(drafts);
	free(out);
	free(lens);
	return rc;
}

/* ---- feedback: remind (a send per overdue answer) ------------------------ */

struct remind_walk {
	kpd_t *d;
	struct api_req *r;
	uint64_t now, at;
	const char *case_ref;
	ProtobufCBinaryData *ids;
	size_t n;
};

/* Send one reminder (the MAS rappel) through the ordinary send path. */
static int
s_remind_one(void *arg, const expect_row_t *x)
{
	struct remind_walk *w = arg;
	Kp__Reminder rem = KP__REMINDER__INIT;
	Kp__SendRequest sr = KP__SEND_REQUEST__INIT;
	Kp__Request req = KP__REQUEST__INIT;
	struct api_req sub;
	uint8_t payload[32], *id;

	rem.has_expected = rem.has_days_overdue = 1;
	rem.expected = (Kp__EventType)x->answer_type;
	rem.days_overdue = (uint32_t)((w->at - x->due_ms) / 86400000u);
	rem.has_escalation = rem.escalation = feedback_escalate_now(w->d, x,
	    w->now);
	sr.has_event_type = sr.has_payload = sr.has_in_reply_to = 1;
	sr.event_type = KP__EVENT_TYPE__EVENT_TYPE_REMINDER;
	sr.payload = (ProtobufCBinaryData){ kp__reminder__pack(&rem, payload),
	    payload };
	sr.to_oin = (char *)x->partner_oin;
	sr.case_ref = (char *)w->case_ref;
	sr.in_reply_to = (ProtobufCBinaryData){ 16, (uint8_t *)x->event_id };
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &sr;
	memset(&sub, 0, sizeof(sub));
	sub.req = &req;
	memcpy(sub.who, w->r->who, sizeof(sub.who));  /* the reminder's actor */
	sub.roles = w->r->roles;
	if (s_send(w->d, &sub, w->now) != 0 || s_sign_alone(w->d, &sub) != 0) {
		w->r->fatal |= sub.fatal;
		api_fail(w->r, KP_ERR_INVALID_ARG, "reminder to %s: %s",
		    x->partner_oin, sub.error);
		s_prep_clear(&sub.prep);
		free(sub.env);
		envelope_draft_clear(&sub.draft);
		later_clear(&sub.log);
		return 1;
	}
	s_prep_clear(&sub.prep);
	free(sub.env);  /* queued: the outbox scan sends it */
	later_move(&w->r->log, &sub.log);
	if ((id = arena_alloc(&w->r->arena, 16)) == NULL)
		return 1;
	memcpy(id, sub.event_id, 16);
	w->ids[w->n++] = (ProtobufCBinaryData){ 16, id };
	w->d->outbound_dirty = true;
	return w->n == 64;
}

static int
s_remind(kpd_t *d, struct api_req *r, uint64_t now)
{
	const Kp__RemindRequest *q = r->req->remind;
	struct remind_walk w = { .d = d, .r = r, .now = now };
	kp_err_t e;

	if (q->case_ref == NULL || !pseudonym_ref_valid(q->case_ref))
		return api_fail(r, KP_ERR_INVALID_ARG,
		    "remind needs a local case reference");
	if (q->has_at_ms && q->at_ms > 0)
		return api_fail(r, KP_ERR_INVALID_ARG,
		    "remind sends now, to the partners whose answer is "
		    "overdue now: it takes no 'at' (see what is overdue at a "
		    "time with cases --overdue --at)");
	w.case_ref = q->case_ref;
	w.at = now;
	if ((w.ids = arena_alloc(&r->arena, 64 * sizeof(*w.ids))) == NULL)
		return api_fail(r, KP_ERR_NOMEM, "out of memory");
	if (feedback_overdue(d, q->case_ref, w.at, s_remind_one, &w, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	if (r->code != NULL)
		return -1;
	kp__remind_response__init(&r->remind);
	r->remind.n_event_ids = w.n;
	r->remind.event_ids = w.ids;
	r->resp.result_case = KP__RESPONSE__RESULT_REMIND;
	r->resp.remind = &r->remind;
	return 0;
}

/* ---- the loop ------------------------------------------------------------- */

/*
 * Every request gets its answer.  A ROUTER that reaches a peer's send
 * high-water mark drops the message without a word (and with
 * ZMQ_ROUTER_MANDATORY it refuses it with EAGAIN instead), so at the
 * default of 1000 messages a client that pipelines (kpbench: a window of
 * 1000 sends, answered while the I/O thread lags behind) lost answers for
 * events that were stored and delivered.  Of the three ways out:
 *   - unlimited SNDHWM (chosen): an answer is queued until the client
 *     reads it.  The memory this takes is bounded by what the client asked
 *     for and has not read; the socket is the organisation's own (0600),
 *     a REQ client has one request in flight, and a pipelining integrator
 *     chooses its window;
 *   - stop reading requests while answers are pending: needs a queue of
 *     unsent answers and POLLOUT in the main loop, and one slow reader
 *     would then stall every other client of the daemon;
 *   - ZMQ_ROUTER_MANDATORY alone only turns the silent drop into an error
 *     we could not do anything useful with.
 * ZMQ_ROUTER_MANDATORY is set as well, so that an answer that cannot be
 * delivered (the client has gone: EHOSTUNREACH) is seen and logged instead
 * of vanishing.
 */
int
apisrv_socket_options(void *sock)
{
	int unlimited = 0, one = 1;
	int64_t maxmsg = API_WIRE_MAX;

	if (zmq_setsockopt(sock, ZMQ_SNDHWM, &unlimited, sizeof(unlimited)) ||
	    zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) ||
	    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)))
		return -1;
	return 0;
}

/* The state folder of a long API socket path (kp_ipc_address), open for
 * as long as the daemon runs: the socket's address goes through it. */
static int s_api_dir_fd = -1;

int
apisrv_bind(void *sock, const char *endpoint)
{
	char addr[600];

	if (s_api_dir_fd >= 0)
		close(s_api_dir_fd);
	s_api_dir_fd = -1;
	if (kp_ipc_address(endpoint, addr, sizeof(addr), &s_api_dir_fd) != 0)
		return -1;  /* errno set: zmq_strerror(zmq_errno()) says it */
	return zmq_bind(sock, addr);
}

/* Is a request of len bytes within the API's limit?  If not, r's error
 * (logged: on the loop only). */
static bool
s_size_ok(struct api_req *r, size_t len)
{
	kp__response__init(&r->resp);
	if (len <= API_REQUEST_MAX)
		return true;
	log_warnx("api: a request of %zu bytes refused (limit %d)", len,
	    API_REQUEST_MAX);
	api_fail(r, KP_ERR_OVERSIZE, "request of %zu bytes is over the API "
	    "limit of %d bytes (an event payload may be at most %d bytes)",
	    len, API_REQUEST_MAX, KP_MAX_PAYLOAD);
	return false;
}

/* The request in buf (size-checked) unpacked into r; a refusal is r's
 * error.  Logs nothing: the prepare job runs it too (s_prepare). */
static void
s_unpack_only(struct api_req *r, const uint8_t *buf, size_t len)
{
	if ((r->req = kp__request__unpack(&atrest_allocator, len, buf)) ==
	    NULL)
		api_fail(r, KP_ERR_MALFORMED,
		    "request is not a valid kp.Request");
}

/* The request in buf into r, for apisrv_execute (REST). */
static void
s_unpack(struct api_req *r, const uint8_t *buf, size_t len)
{
	if (s_size_ok(r, len))
		s_unpack_only(r, buf, len);
}

static int
s_recv(kpd_t *d, struct api_req *r)
{
	uint8_t empty[1];
	zmq_msg_t *m;
	int n;

	n = zmq_recv(d->api, r->rid, sizeof(r->rid), ZMQ_DONTWAIT);
	if (n < 0)
		return 0;
	r->rid_len = (size_t)n < sizeof(r->rid) ? (size_t)n : sizeof(r->rid);
	/* exactly [routing id][empty][request]; anything else is dropped,
	 * that message's frames only, so other clients keep their turn */
	if (!kpd_more(d->api) || zmq_recv(d->api, empty, sizeof(empty),
	    ZMQ_DONTWAIT) != 0 || !kpd_more(d->api)) {
		kpd_drain_message(d->api);
		log_warnx("api: a request without the [empty][request] framing "
		    "dropped");
		return -1;
	}
	/* unpacked by the prepare job (s_prepare), which wipes and closes
	 * it (s_cleanup closes one a pass never prepared) */
	m = &r->msg;
	zmq_msg_init(m);
	if (zmq_msg_recv(m, d->api, ZMQ_DONTWAIT) < 0 || zmq_msg_more(m)) {
		kpd_drain_message(d->api);
		zmq_msg_close(m);
		log_warnx("api: a request of more than one frame dropped");
		return -1;
	}
	if (access_parse_user_id(zmq_msg_gets(m, "User-Id"), r->who,
	    sizeof(r->who), &r->roles) != 0)
		snprintf(r->who, sizeof(r->who), "unknown");  /* no roles */
	r->has_msg = s_size_ok(r, zmq_msg_size(m));
	if (!r->has_msg) {
		sodium_memzero(zmq_msg_data(m), zmq_msg_size(m));
		zmq_msg_close(m);
	}
	return 1;
}

/* r's answer packed (malloc'd, caller frees), or NULL: out of memory. */
static uint8_t *
s_pack(struct api_req *r, size_t *len)
{
	size_t n;
	uint8_t *buf;

	r->resp.has_ok = 1;
	r->resp.ok = r->code == NULL;
	if (r->code != NULL) {
		r->resp.result_case = KP__RESPONSE__RESULT__NOT_SET;
		r->resp.error = r->error;
		r->resp.error_code = (char *)r->code;
	}
	n = kp__response__get_packed_size(&r->resp);
	if ((buf = malloc(n + 1)) != NULL)
		*len = kp__response__pack(&r->resp, buf);
	return buf;
}

/* r's answer for the caller of apisrv_execute: unpacked again (with the
 * wiping allocator, as requests are), so it owns nothing of r, which is
 * freed right after. */
static void
s_reply_out(struct api_req *r, Kp__Response **out)
{
	size_t n = 0;
	uint8_t *buf = s_pack(r, &n);

	*out = buf != NULL ? kp__response__unpack(&atrest_allocator, n, buf) :
	    NULL;
	if (buf != NULL)
		atrest_zmq_free(buf, (void *)(uintptr_t)n);  /* wiped, freed */
}

static void
s_reply(kpd_t *d, struct api_req *r)
{
	size_t n = 0;
	uint8_t *buf = s_pack(r, &n);
	zmq_msg_t m;

	if (buf == NULL) {
		log_warnx("api: out of memory: an answer not sent");
		return;
	}
	/* handed to libzmq without a copy; wiped when it is done with it */
	if (zmq_msg_init_data(&m, buf, n, atrest_zmq_free,
	    (void *)(uintptr_t)n) != 0) {
		atrest_zmq_free(buf, (void *)(uintptr_t)n);
		log_warnx("api: out of memory: an answer not sent");
		return;
	}
	/* SNDHWM is unlimited (apisrv_socket_options): the only failure
	 * left is a client that is gone (EHOSTUNREACH, ROUTER_MANDATORY) */
	if (zmq_send(d->api, r->rid, r->rid_len, ZMQ_SNDMORE |
	    ZMQ_DONTWAIT) < 0 || zmq_send(d->api, "", 0, ZMQ_SNDMORE |
	    ZMQ_DONTWAIT) < 0 || zmq_msg_send(&m, d->api, ZMQ_DONTWAIT) < 0) {
		if (zmq_errno() == EHOSTUNREACH)
			log_debug("api: client went away before the answer");
		else
			log_warnx("api: an answer not sent: %s",
			    zmq_strerror(zmq_errno()));
	}
	zmq_msg_close(&m);
}

static void
s_cleanup(struct api_req *r)
{
	if (r->has_msg)
		zmq_msg_close(&r->msg);  /* a pass dropped unprepared */
	r->has_msg = false;
	s_prep_clear(&r->prep);
	free(r->env);
	envelope_draft_clear(&r->draft);
	later_clear(&r->log);
	arena_free(&r->arena);
	if (r->free_owned != NULL)
		r->free_owned(r->owned);
	if (r->req != NULL)
		kp__request__free_unpacked(r->req, &atrest_allocator);
}

/* Handle one request inside the batch's transaction; no reply yet. */
static void s_dispatch(kpd_t *d, struct api_req *r, uint64_t now);

static const char *
s_op_name(int op)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
	    &kp__request__descriptor, (unsigned)op);

	return f != NULL ? f->name : "unknown";
}

/* The purpose of a request: the client's, or "api.OP". */
static void
s_purpose(const struct api_req *r, char out[65])
{
	const char *p = r->req->purpose;
	size_t i, n = p ? strlen(p) : 0;

	for (i = 0; i < n && n <= 64; i++)
		if (!isalnum((unsigned char)p[i]) && strchr("._:/-", p[i]) ==
		    NULL)
			break;
	if (n > 0 && n <= 64 && i == n)
		snprintf(out, 65, "%s", p);
	else
		snprintf(out, 65, "api.%s", s_op_name(r->req->op_case));
}

/* Has the client the role this request needs?  If not: refused, logged
 * and audited (api_refused), and false. */
static bool
s_allowed(kpd_t *d, struct api_req *r)
{
	unsigned need = access_role_for_op(r->req->op_case);
	audit_entry_t a;
	kp_err_t e;

	if ((r->roles & need) != 0)
		return true;
	api_fail(r, KP_ERR_ROLE, "this API client (%s) may not use '%s': it "
	    "needs the role '%s' (ketenpostd.conf [api] allow)", r->who,
	    s_op_name(r->req->op_case), access_role_name(need));
	r->code = "forbidden";
	log_warnx("api: %s refused '%s' (needs role %s)", r->who,
	    s_op_name(r->req->op_case), access_role_name(need));
	memset(&a, 0, sizeof(a));
	a.kind = AUDIT_API_REFUSED;
	snprintf(a.purpose, sizeof(a.purpose), "api.%s",
	    s_op_name(r->req->op_case));
	snprintf(a.rule, sizeof(a.rule), "role:%s", access_role_name(need));
	snprintf(a.actor, sizeof(a.actor), "%s", r->who);
	if (!store_in_txn(d->store) || ledger_append(d, &a, &e) != 0)
		r->fatal = true;  /* fail closed: the batch is undone */
	return false;
}

/* One `read` entry (AUDIT.md §1a).  -1 fails the request closed. */
static int
s_audit_read(kpd_t *d, struct api_req *r, const ProtobufCBinaryData *id,
    int type, const char *partner, const char *fields)
{
	audit_entry_t a;
	kp_err_t e;

	memset(&a, 0, sizeof(a));
	a.kind = AUDIT_READ;
	a.has_event_id = id->len == 16;
	if (a.has_event_id)
		memcpy(a.event_id, id->data, 16);
	a.event_type = type;
	snprintf(a.partner_oin, sizeof(a.partner_oin), "%s",
	    partner && kp_oin_valid(partner) ? partner : "");
	s_purpose(r, a.purpose);
	snprintf(a.fields, sizeof(a.fields), "%s", fields ? fields : "");
	snprintf(a.actor, sizeof(a.actor), "%s", r->who);
	if (ledger_append(d, &a, &e) != 0)
		return api_fail(r, KP_ERR_IO, "the audit log cannot be written "
		    "(%s); nothing is shown", e.msg);
	return 0;
}

static int
s_audit_inbox_item(kpd_t *d, struct api_req *r, const Kp__InboxItem *it)
{
	if (!it->has_payload)
		return 0;
	return s_audit_read(d, r, &it->event_id, it->event_type, it->from_oin,
	    NULL);
}

/*
 * Every answer that hands out payload content (an inbox item's payload, a
 * timeline's summaries of what partners answered) or a subject-access
 * listing is one `read` audit entry per event, in the request's
 * savepoint: no entry, no answer.
 */
static void
s_audit_reads(kpd_t *d, struct api_req *r)
{
	const Kp__Response *o = &r->resp;
	char fields[AUDIT_FIELDS_MAX];
	size_t i, j;
	int rc = 0;

	switch (o->result_case) {
	case KP__RESPONSE__RESULT_ITEM:
		rc = s_audit_inbox_item(d, r, o->item);
		break;
	case KP__RESPONSE__RESULT_INBOX:
		for (i = 0; rc == 0 && i < o->inbox->n_items; i++)
			rc = s_audit_inbox_item(d, r, o->inbox->items[i]);
		break;
	case KP__RESPONSE__RESULT_SUBJECT:
		for (i = 0; rc == 0 && i < o->subject->n_items; i++) {
			const Kp__SubjectItem *it = o->subject->items[i];

			fields[0] = '\0';
			for (j = 0; j < it->n_fields; j++)
				snprintf(fields + strlen(fields), sizeof(fields) -
				    strlen(fields), "%s%s", j ? "," : "",
				    it->fields[j]);
			rc = s_audit_read(d, r, &it->event_id, it->event_type,
			    it->partner_oin, fields);
		}
		break;
	case KP__RESPONSE__RESULT_CASE_TIMELINE:
		for (i = 0; rc == 0 && i < o->case_timeline->n_timeline; i++) {
			const Kp__TimelineItem *it = o->case_timeline->timeline[i];

			if (it->summary != NULL && it->summary[0] != '\0')
				rc = s_audit_read(d, r, &it->event_id,
				    it->event_type, it->partner_oin, NULL);
		}
		break;
	default:
		break;
	}
}

/*
 * A request other than a send sees the sends before it in its pass: their
 * drafts are signed and their outbox rows stored now (one more signature
 * per recipient, only when reads and sends are mixed in one pass), not at
 * the end of the pass, or a client that pipelines a send and then a list
 * or status would be answered without its send.  A failure undoes the
 * batch, as one in s_finish does.
 */
static int
s_sign_before(kpd_t *d, struct api_req *r)
{
	size_t i;
	kp_err_t e;

	if (r->req->op_case == KP__REQUEST__OP_SEND || r->batch == NULL)
		return 0;
	for (i = 0; i < r->index; i++)
		if (s_unsigned_for(&r->batch[i], r->batch[i].to_oin))
			break;
	if (i == r->index)
		return 0;
	if (s_sign_sends(d, r->batch, r->index, &e) == 0) {
		r->saw_early = true;
		return 0;
	}
	r->fatal = true;
	return api_fail(r, KP_ERR_IO, "not stored: %s", e.msg);
}

/*
 * A send runs without a savepoint: s_send refuses before its first write
 * or not at all, and a send that fails once it has written (out of
 * memory, the store) fails the pass (fatal: rolled back, every request
 * answered "not stored").  A savepoint made SQLite copy every page a
 * request touched into its sub-journal first: 4-5 µs of the sender's CPU
 * per event (docs/PERFORMANCE.md, thirteenth session).  OUT: r->fatal.
 */
static void
s_bare_end(kpd_t *d, struct api_req *r, uint64_t changes_before)
{
	if (!store_in_txn(d->store) || (r->code != NULL &&
	    store_changes(d->store) != changes_before)) {
		r->fatal = true;
		if (r->code == NULL)
			api_fail(r, KP_ERR_IO, "not stored: the database "
			    "refused the batch; retry");
	}
}

/*
 * Each request but a send (s_bare_end) runs in its own savepoint inside
 * the batch: a request that fails leaves nothing behind (no half-queued
 * event, no half-done ack), while the others still commit together.  A
 * send refused by the policy is audited after its undo (or, having no
 * savepoint, after its refusal, which wrote nothing), so the refusal is
 * the one thing it leaves.
 */
static void
s_handle(kpd_t *d, struct api_req *r, uint64_t now)
{
	bool bare = r->req != NULL && r->req->op_case == KP__REQUEST__OP_SEND;
	uint64_t changes = 0;
	size_t mark = 0;
	kp_err_t e;

	if (r->req == NULL || !s_allowed(d, r))
		return;
	/* first: with no transaction (SQLite may undo one by itself on a
	 * full disk or an I/O error) an early signing would store each
	 * outbox row on its own, without the rest of its send */
	if (store_in_txn(d->store) && s_sign_before(d, r) != 0)
		return;
	if (!store_in_txn(d->store) ||
	    (!bare && kpd_item_begin(d, &mark, &e) != 0)) {
		r->fatal = true;
		api_fail(r, KP_ERR_IO, "the database refused the batch; retry");
		return;
	}
	changes = store_changes(d->store);
	s_dispatch(d, r, now);
	if (r->code == NULL)
		s_audit_reads(d, r);
	if (r->code != NULL)
		later_clear(&r->log);  /* undone (a send: nothing written) */
	if (bare)
		s_bare_end(d, r, changes);
	else if (kpd_item_end(d, mark, r->code == NULL, &e) != 0 ||
	    !store_in_txn(d->store)) {
		r->fatal = true;
		if (r->code == NULL)
			api_fail(r, KP_ERR_IO, "not stored: %s", e.msg);
	}
	if (r->fatal)
		return;
	if (r->code != NULL && r->refusal_reason != 0)
		(void)s_audit_send(d, r, NULL, NULL, r->req->send,
		    r->refusal_reason);
}

static void
s_dispatch(kpd_t *d, struct api_req *r, uint64_t now)
{
	switch (r->req->op_case) {
	case KP__REQUEST__OP_SEND: (void)s_send(d, r, now); break;
	case KP__REQUEST__OP_OUTBOX: (void)apiquery_outbox(d, r); break;
	case KP__REQUEST__OP_INBOX: (void)apiquery_inbox(d, r); break;
	case KP__REQUEST__OP_FETCH: (void)apiquery_fetch(d, r); break;
	case KP__REQUEST__OP_ACK: (void)apiquery_ack(d, r, &r->ack); break;
	case KP__REQUEST__OP_STATUS:
		(void)apiquery_status(d, r, &r->status);
		break;
	case KP__REQUEST__OP_SUBJECT: (void)apiquery_subject(d, r); break;
	case KP__REQUEST__OP_PURGE: break;  /* after the batch: s_finish */
	case KP__REQUEST__OP_CASE_TIMELINE: (void)apiquery_case(d, r); break;
	case KP__REQUEST__OP_CASES: (void)apiquery_cases(d, r); break;
	case KP__REQUEST__OP_REPORT: (void)apiquery_report(d, r); break;
	case KP__REQUEST__OP_REMIND: (void)s_remind(d, r, now); break;
	case KP__REQUEST__OP_LINK: (void)apiquery_link(d, r); break;
	case KP__REQUEST__OP_OUTCOME: (void)apiquery_outcome(d, r); break;
	case KP__REQUEST__OP_TODO: (void)apiquery_todo(d, r); break;
	default: api_fail(r, KP_ERR_INVALID_ARG, "unknown request"); break;
	}
}

/* The batch's "queued" lines: logged once the commit returned, or one
 * warning with their count when it did not (nothing is claimed). */
static void
s_finish_log(struct api_req *batch, size_t n, bool committed,
    const kp_err_t *e)
{
	size_t i, lost = 0;

	log_hold();       /* a pass's lines in one write, not one each */
	for (i = 0; i < n; i++) {
		lost += later_nlines(&batch[i].log);
		later_flush(&batch[i].log, committed);
	}
	log_release();
	if (!committed && lost > 0)
		log_warnx("api: batch rolled back, %zu event%s not queued: %s",
		    lost, lost == 1 ? "" : "s", e->msg);
}

/* The answer of a send that is stored (now or by an earlier request). */
static void
s_send_answer(kpd_t *d, struct api_req *r)
{
	kp__send_response__init(&r->send_resp);
	r->send_resp.has_event_id = 1;
	r->send_resp.event_id = (ProtobufCBinaryData){ 16, r->event_id };
	r->send_resp.has_repeated = r->repeated;
	r->send_resp.repeated = r->repeated;
	r->resp.result_case = KP__RESPONSE__RESULT_SEND;
	r->resp.send = &r->send_resp;
	if (r->immediate)
		outbound_send_now(d, r->to_oin, r->event_id, r->row.seq, r->env,
		    r->env_len);
}

/* Is r's answer void once its batch rolled back?  What it wrote, and a
 * read whose `read` audit entries went with the batch (no entry, no
 * answer: s_audit_reads), or one that saw sends stored early. */
static bool
s_void_on_rollback(const struct api_req *r)
{
	if (r->code != NULL || r->req == NULL)
		return false;
	switch (r->req->op_case) {
	case KP__REQUEST__OP_SEND:
	case KP__REQUEST__OP_ACK:
	case KP__REQUEST__OP_LINK:
	case KP__REQUEST__OP_OUTCOME:
	case KP__REQUEST__OP_REMIND:
		return true;
	default:
		break;
	}
	switch (r->resp.result_case) {
	case KP__RESPONSE__RESULT_ITEM:
	case KP__RESPONSE__RESULT_INBOX:
	case KP__RESPONSE__RESULT_SUBJECT:
	case KP__RESPONSE__RESULT_CASE_TIMELINE:
		return true;
	default:
		return r->saw_early;
	}
}

/*
 * Commit the batch, then answer every request in it.  Nothing that was
 * written (a queued event, an acknowledgement, a read's audit entry) is
 * confirmed before the commit returns; if it fails, those requests get
 * an error instead.
 */
static void
s_finish(kpd_t *d, struct api_req *batch, size_t n, Kp__Response **out)
{
	size_t i;
	bool fatal = false, committed = true;
	kp_err_t e;

	for (i = 0; i < n; i++)
		fatal |= batch[i].fatal;
	if (fatal)
		kp_fail(&e, KP_ERR_IO, "a request of this batch could not be "
		    "stored whole (the audit log or the database failed); "
		    "nothing in this batch was stored");
	else if (s_sign_sends(d, batch, n, &e) != 0)
		fatal = true;
	if (fatal || kpd_commit(d, &e) != 0) {
		kpd_rollback(d);
		committed = false;
		for (i = 0; i < n; i++)
			if (s_void_on_rollback(&batch[i]))
				api_fail(&batch[i], KP_ERR_IO, "not stored: %s",
				    e.msg);
	}
	s_finish_log(batch, n, committed, &e);
	outbound_rounds_begin(d);  /* the pass's events: in packs */
	for (i = 0; i < n; i++) {
		if (batch[i].code == NULL &&
		    batch[i].req->op_case == KP__REQUEST__OP_PURGE)
			(void)apiquery_purge(d, &batch[i]);
		if (batch[i].code == NULL && (batch[i].immediate ||
		    batch[i].repeated) &&
		    batch[i].req->op_case == KP__REQUEST__OP_SEND)
			s_send_answer(d, &batch[i]);
		if (out != NULL)
			s_reply_out(&batch[i], out);  /* a batch of one */
		else
			s_reply(d, &batch[i]);
		s_cleanup(&batch[i]);
	}
	outbound_rounds_end(d);
}

/* ---- the pipeline: prepare the next pass while this one is stored ------- */

/*
 * A pass: the requests one receive took from the socket (at most
 * batch_max), in arrival order.  At most two exist (struct api_pipe): the
 * one the worker prepares, or has prepared (held: from worker_submit to
 * worker_wait it and every request in it belong to the job), and the one
 * the loop stores, signs, commits and answers.  Passes are stored in the
 * order they were received, so a client that pipelines gets every answer
 * after the effects of its earlier requests were committed, whatever the
 * request (sends and the rest go through the same passes).
 */
struct api_pass {
	kpd_t *d;
	struct api_req *reqs;
	size_t n;
	uint64_t now;                 /* when it was received */
	batchbuf_t *buf;              /* reqs' array */
};

struct api_pipe {
	struct api_pass pass[2];
	batchbuf_t other;             /* pass[1]'s array; pass[0]'s: api_batch */
	unsigned next;                /* the pass the next receive fills */
};

/* The prepare phase of one request, on the worker's thread (or inline):
 * unpack it, wipe the bytes received, and prepare a send its client may
 * make.  Logs nothing; touches no store. */
static void
s_prepare(const kpd_t *d, struct api_req *r, uint64_t now)
{
	if (r->has_msg) {
		s_unpack_only(r, zmq_msg_data(&r->msg), zmq_msg_size(&r->msg));
		sodium_memzero(zmq_msg_data(&r->msg), zmq_msg_size(&r->msg));
		/* the unpacked request holds copies: the frame need not wait
		 * for the pass's end (with two passes, it would double what a
		 * pass holds); libzmq's reference counts are atomic */
		zmq_msg_close(&r->msg);
		r->has_msg = false;
	}
	if (r->req != NULL && r->req->op_case == KP__REQUEST__OP_SEND &&
	    (r->roles & access_role_for_op(r->req->op_case)) != 0)
		s_prepare_send(d, r, now);
}

/* worker_job_fn: prepare a pass. */
static void
s_prepare_job(void *arg)
{
	struct api_pass *p = arg;
	size_t i;

	for (i = 0; i < p->n; i++)
		s_prepare(p->d, &p->reqs[i], p->now);
}

/* The pass the next receive fills: never the one the worker holds (the
 * other one was stored before its array is filled again). */
static struct api_pass *
s_next_pass(struct api_pipe *pp)
{
	struct api_pass *p = &pp->pass[pp->next];

	pp->next ^= 1u;
	return p;
}

/* Receive a pass from the socket (at most batch_max requests): p->n. */
static size_t
s_recv_pass(kpd_t *d, struct api_pass *p)
{
	struct api_req *batch = batchbuf_get(p->buf, d->cfg.batch_max,
	    sizeof(*batch));
	size_t n = 0;
	uint64_t sup;
	char note[64];
	int got;

	p->n = 0;
	if (batch == NULL) {
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("api: out of memory; requests wait in the "
			    "socket%s", ratelimit_note(sup, note, sizeof(note)));
		usleep(100000);  /* the socket stays readable: do not spin */
		return 0;
	}
	p->d = d;
	p->reqs = batch;
	p->now = kp_now_ms();
	while (n < d->cfg.batch_max && (got = s_recv(d, &batch[n])) != 0) {
		if (got < 0)
			continue;
		batch[n].batch = batch;
		batch[n].index = n;
		n++;
	}
	if (n == 0)  /* the entry a failed read may have touched */
		batchbuf_done(p->buf, 1);
	return p->n = n;
}

/*
 * Store pass p on the loop, as one transaction, in request order: each
 * request but a send in its savepoint (s_handle), then the batch signed,
 * committed and answered (s_finish).  A transaction that cannot start
 * refuses the pass's requests (they were taken from the socket), stores
 * nothing.
 */
static void
s_store_pass(kpd_t *d, struct api_pass *p)
{
	size_t i;
	kp_err_t e;

	if (p->n > 0 && kpd_begin(d, &e) != 0) {
		log_warnx("api: cannot start a transaction; %zu request%s "
		    "refused: %s", p->n, p->n == 1 ? "" : "s", e.msg);
		for (i = 0; i < p->n; i++) {
			if (p->reqs[i].code == NULL)
				api_fail(&p->reqs[i], KP_ERR_IO, "the database "
				    "refused the batch; retry");
			s_reply(d, &p->reqs[i]);
			s_cleanup(&p->reqs[i]);
		}
	} else if (p->n > 0) {
		for (i = 0; i < p->n; i++)
			s_handle(d, &p->reqs[i], p->now);
		s_finish(d, p->reqs, p->n, NULL);
	}
	/* and the entry a failed or empty last read may have touched */
	batchbuf_done(p->buf, p->n + 1);
	p->n = 0;
}

/* Give pass p to the worker (if p has requests). */
static void
s_submit(kpd_t *d, struct api_pass *p)
{
	if (p->n == 0)
		return;
	if (worker_submit(d->api_worker, s_prepare_job, p) != 0) {
		/* a job in hand already: a bug here, never a lost pass */
		log_warnx("api: the worker is busy; a pass prepared inline");
		s_prepare_job(p);
		s_store_pass(d, p);
	}
}

/*
 * Pass p is prepared: take the next one from the socket and give it to
 * the worker, then store, commit and answer p while the worker prepares
 * the next.
 */
static void
s_pass_ready(kpd_t *d, struct api_pass *p)
{
	struct api_pass *next;

	if (!d->stopping) {
		next = s_next_pass(d->api_pipe);
		if (s_recv_pass(d, next) > 0)
			s_submit(d, next);
	}
	s_store_pass(d, p);
}

/*
 * The socket is readable and no pass is in the worker's hands: the loop
 * has nothing to overlap this pass with, so it prepares it itself (no
 * hand-over to wait for: at low load a request costs no thread switch)
 * and the pipeline starts with the next pass, if requests are waiting.
 */
void
apisrv_drain(kpd_t *d)
{
	struct api_pass *p;

	if (d->api_pipe == NULL || worker_busy(d->api_worker))
		return;  /* the pass in hand first: apisrv_work_done */
	p = s_next_pass(d->api_pipe);
	if (s_recv_pass(d, p) == 0)
		return;
	s_prepare_job(p);
	s_pass_ready(d, p);
}

/* The worker has prepared a pass (its fd is readable). */
void
apisrv_work_done(kpd_t *d)
{
	struct api_pass *p;

	if (d->api_pipe == NULL || !worker_busy(d->api_worker))
		return;
	if ((p = worker_wait(d->api_worker)) != NULL)
		s_pass_ready(d, p);
}

bool
apisrv_wants_requests(const kpd_t *d)
{
	return d->api_worker != NULL && !worker_busy(d->api_worker);
}

int
apisrv_work_fd(const kpd_t *d)
{
	return d->api_worker != NULL ? worker_fd(d->api_worker) : -1;
}

void
apisrv_settle(kpd_t *d)
{
	struct api_pass *p;

	if (d->api_worker != NULL &&
	    (p = worker_wait(d->api_worker)) != NULL)
		s_store_pass(d, p);
}

int
apisrv_start(kpd_t *d, kp_err_t *err)
{
	struct api_pipe *pp = calloc(1, sizeof(*pp));

	if (pp == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	pp->pass[0].buf = &d->api_batch;
	pp->pass[1].buf = &pp->other;
	d->api_pipe = pp;
	return worker_new(d->cfg.worker_threads != 0, &d->api_worker, err);
}

void
apisrv_stop(kpd_t *d)
{
	apisrv_settle(d);
	worker_destroy(&d->api_worker);
	if (d->api_pipe != NULL)
		batchbuf_free(&d->api_pipe->other);
	free(d->api_pipe);
	d->api_pipe = NULL;
}

int
apisrv_execute(kpd_t *d, const char *who, unsigned roles, const uint8_t *req,
    size_t len, Kp__Response **resp)
{
	struct api_req *r = calloc(1, sizeof(*r));
	kp_err_t e;

	*resp = NULL;
	if (r == NULL || kpd_begin(d, &e) != 0) {
		log_warnx("api: cannot start a transaction for a REST request");
		free(r);
		return -1;
	}
	snprintf(r->who, sizeof(r->who), "%s", who);
	r->roles = roles;
	s_unpack(r, req, len);
	s_handle(d, r, kp_now_ms());
	s_finish(d, r, 1, resp);
	free(r);
	return *resp != NULL ? 0 : -1;
}
