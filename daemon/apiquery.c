/*
 * apiquery.c: the local API's requests other than send and remind
 * (apisrv.c): the outbox and inbox lists, fetch, ack, status, subject
 * access and purge, and the feedback views (case, cases, report, link,
 * outcome, todo).
 *
 * Each handler runs on the loop inside its request's savepoint (apisrv.c
 * s_handle; purge after its batch, in its own transaction: s_finish),
 * reads or writes the store through store.h and feedback.c, and answers
 * in the request (apisrv_int.h): what an answer points into lives in
 * r->arena or r->owned, freed by apisrv.c after the answer is sent.
 * Never: sends an event, touches the socket or a pass, or answers more
 * than one page of a list (the client pages on with after_seq).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "apisrv_int.h"
#include "log.h"
#include "pseudonym.h"

#define API_LIST_DEFAULT 1000
#define API_LIST_MAX 10000

/* ---- lists ---------------------------------------------------------------- */

/*
 * A list answer (outbox, inbox) holds at most this many bytes packed, and
 * at least one item so that paging always moves on: the memory a listing
 * takes is then one answer's, whatever the limit asked and the payloads
 * (10,000 inbox items of 1 KiB were ~17 MB packed, of 32 KiB 330 MB, plus
 * the items unpacked and their audit entries).  The answer says `more`
 * and the client pages on with after_seq (proto/api.proto).  4 MiB: a
 * full outbox answer (10,000 items of at most ~250 bytes) always fits, so
 * a client that takes a short outbox answer for the end, as before `more`
 * existed, still sees every item; only inbox answers (payloads) are cut.
 */
#define API_ANSWER_BYTES_MAX (4u << 20)

/* A growing array of items plus the byte buffers they point into. */
struct items {
	Kp__OutboxList olist;
	Kp__InboxList ilist;
	kpd_t *d;
	size_t limit;                 /* items an answer holds at most */
	size_t packed;                /* their packed bytes so far */
	bool more;                    /* stopped at limit or bytes: more follow */
	bool with_values;             /* subject: the values shared too */
	bool failed;                  /* subject: an item could not be shown */
	kp_err_t err;                 /* ... why */
	void **items;         /* Kp__OutboxItem* or Kp__InboxItem* */
	size_t n, cap;
};

static void
s_items_free(void *arg)
{
	struct items *it = arg;
	size_t i;

	for (i = 0; i < it->n; i++)
		atrest_free(it->items[i]);  /* item and inline payload: wiped */
	free(it->items);
	free(it);
}

static void *
s_items_push(struct items *it, size_t size)
{
	void **grown, *item;
	size_t cap;

	if (it->n == it->cap) {
		cap = it->cap ? it->cap * 2 : 64;
		if ((grown = realloc(it->items, cap * sizeof(*grown))) == NULL)
			goto nomem;
		it->items = grown;
		it->cap = cap;
	}
	if ((item = atrest_alloc(size)) == NULL)
		goto nomem;
	it->items[it->n++] = item;
	return item;
nomem:
	it->more = true;  /* a short answer, not the end of the list */
	return NULL;
}

/* The last item pushed, packed into `size` bytes: kept if the answer
 * stays within API_ANSWER_BYTES_MAX (or it is the first), else dropped
 * and the answer has `more`.  0 kept, 1 dropped: the walk stops. */
static int
s_items_fit(struct items *it, size_t size)
{
	size += 1 + 5;                /* the field's tag and length */
	if (it->n > 1 && it->packed + size > API_ANSWER_BYTES_MAX) {
		atrest_free(it->items[--it->n]);
		it->more = true;
		return 1;
	}
	it->packed += size;
	return 0;
}

/* Is the answer full by count?  Then the row just read (the store was
 * asked for one more than the limit) says that more follow. */
static bool
s_items_full(struct items *it)
{
	if (it->n < it->limit)
		return false;
	it->more = true;
	return true;
}

/* An OutboxItem and copies of its strings/bytes in one allocation. */
struct outbox_block {
	Kp__OutboxItem item;
	uint8_t event_id[16], in_reply_to[16], env_digest[32], rcpt_digest[32];
	char to_oin[21], case_ref[65];
};

static int
s_outbox_item(void *arg, const outbox_row_t *row, const uint8_t *env,
    size_t len)
{
	struct outbox_block *b;
	Kp__OutboxItem *o;

	(void)env;
	(void)len;
	if (s_items_full(arg))
		return 1;
	if ((b = s_items_push(arg, sizeof(*b))) == NULL)
		return 1;
	o = &b->item;
	kp__outbox_item__init(o);
	memcpy(b->event_id, row->event_id, 16);
	memcpy(b->env_digest, row->envelope_digest, 32);
	memcpy(b->to_oin, row->to_oin, sizeof(b->to_oin));
	memcpy(b->case_ref, row->case_local, sizeof(b->case_ref));
	o->has_seq = o->has_event_id = o->has_event_type = o->has_state = 1;
	o->has_attempts = o->has_created_at_ms = o->has_updated_at_ms = 1;
	o->has_envelope_digest = 1;
	o->seq = row->seq;
	o->event_id = (ProtobufCBinaryData){ 16, b->event_id };
	o->event_type = (Kp__EventType)row->event_type;
	o->to_oin = b->to_oin;
	o->case_ref = b->case_ref;
	o->state = (Kp__DeliveryState)row->state;
	o->attempts = row->attempts;
	o->created_at_ms = row->created_ms;
	o->updated_at_ms = row->updated_ms;
	o->envelope_digest = (ProtobufCBinaryData){ 32, b->env_digest };
	o->has_retention_until_ms = o->has_payload_destroyed = 1;
	o->retention_until_ms = row->retention_until_ms;
	o->payload_destroyed = !row->has_event_key;
	if (row->has_reply_to) {
		memcpy(b->in_reply_to, row->in_reply_to, 16);
		o->has_in_reply_to = 1;
		o->in_reply_to = (ProtobufCBinaryData){ 16, b->in_reply_to };
	}
	if (row->has_receipt) {
		memcpy(b->rcpt_digest, row->receipt_digest, 32);
		o->has_receipt_digest = o->has_reason = o->has_receipted_at_ms = 1;
		o->receipt_digest = (ProtobufCBinaryData){ 32, b->rcpt_digest };
		o->reason = (Kp__Reason)row->reason;
		o->receipted_at_ms = row->receipted_ms;
	}
	return s_items_fit(arg, kp__outbox_item__get_packed_size(o));
}

static size_t
s_limit(const Kp__ListRequest *l)
{
	if (l == NULL || !l->has_limit || l->limit == 0)
		return API_LIST_DEFAULT;
	return l->limit > API_LIST_MAX ? API_LIST_MAX : l->limit;
}

static struct items *
s_items_new(kpd_t *d, struct api_req *r)
{
	struct items *it = calloc(1, sizeof(*it));

	if (it == NULL) {
		api_fail(r, KP_ERR_NOMEM, "out of memory");
		return NULL;
	}
	kp__outbox_list__init(&it->olist);
	kp__inbox_list__init(&it->ilist);
	it->d = d;
	it->limit = SIZE_MAX;
	r->owned = it;
	r->free_owned = s_items_free;
	return it;
}

int
apiquery_outbox(kpd_t *d, struct api_req *r)
{
	const Kp__ListRequest *l = r->req->outbox;
	struct items *it = s_items_new(d, r);
	kp_err_t e;

	if (it == NULL)
		return -1;
	it->limit = s_limit(l);
	if (store_outbox_list(d->store, l && l->has_after_seq ? l->after_seq : 0,
	    it->limit + 1, s_outbox_item, it, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	if (it->more && it->n == 0)   /* not even one item: out of memory */
		return api_fail(r, KP_ERR_NOMEM, "out of memory listing the "
		    "outbox");
	it->olist.n_items = it->n;
	it->olist.items = (Kp__OutboxItem **)it->items;
	it->olist.has_more = 1;
	it->olist.more = it->more;
	r->resp.result_case = KP__RESPONSE__RESULT_OUTBOX;
	r->resp.outbox = &it->olist;
	return 0;
}

/* An InboxItem with copies of its strings and the decrypted payload. */
struct inbox_block {
	Kp__InboxItem item;
	uint8_t event_id[16], in_reply_to[16], pseudonym[32], env_digest[32];
	char from_oin[21], case_ref[65], purpose[65], legal_basis[65];
	uint8_t payload[];
};

static void
s_inbox_fields(struct inbox_block *b, const inbox_row_t *row)
{
	Kp__InboxItem *o = &b->item;

	kp__inbox_item__init(o);
	memcpy(b->event_id, row->event_id, 16);
	memcpy(b->pseudonym, row->case_ref, 32);
	memcpy(b->env_digest, row->envelope_digest, 32);
	memcpy(b->from_oin, row->from_oin, sizeof(b->from_oin));
	memcpy(b->case_ref, row->case_local, sizeof(b->case_ref));
	memcpy(b->purpose, row->purpose, sizeof(b->purpose));
	memcpy(b->legal_basis, row->legal_basis, sizeof(b->legal_basis));
	o->has_seq = o->has_event_id = o->has_event_type = 1;
	o->has_case_pseudonym = o->has_created_at_ms = 1;
	o->has_received_at_ms = o->has_acknowledged = o->has_envelope_digest = 1;
	o->has_retention_until_ms = 1;
	o->retention_until_ms = row->retention_until_ms;
	o->seq = row->seq;
	o->event_id = (ProtobufCBinaryData){ 16, b->event_id };
	o->event_type = (Kp__EventType)row->event_type;
	o->from_oin = b->from_oin;
	o->case_ref = b->case_ref[0] ? b->case_ref : NULL;
	o->case_pseudonym = (ProtobufCBinaryData){ 32, b->pseudonym };
	o->created_at_ms = row->created_ms;
	o->received_at_ms = row->received_ms;
	o->acknowledged = row->acked;
	o->envelope_digest = (ProtobufCBinaryData){ 32, b->env_digest };
	o->purpose = b->purpose;
	o->legal_basis = b->legal_basis;
	if (row->has_reply_to) {
		memcpy(b->in_reply_to, row->in_reply_to, 16);
		o->has_in_reply_to = 1;
		o->in_reply_to = (ProtobufCBinaryData){ 16, b->in_reply_to };
	}
}

/* Decrypt a stored payload with its per-event key. */
static int
s_open_payload(kpd_t *d, const inbox_row_t *row, const uint8_t *sealed,
    size_t slen, uint8_t **plain, size_t *plen)
{
	uint8_t key[32];
	int rc;

	rc = atrest_event_key_unwrap(d->storage_key, row->event_id,
	    row->event_key, key) != 0 || atrest_open(key, row->event_id, sealed,
	    slen, plain, plen) != 0 ? -1 : 0;
	sodium_memzero(key, sizeof(key));
	return rc;
}

static int
s_inbox_item(void *arg, const inbox_row_t *row, const uint8_t *sealed,
    size_t slen)
{
	struct items *it = arg;
	struct inbox_block *b;
	uint8_t *plain = NULL;
	size_t plen = 0;
	char id[37];

	if (s_items_full(it))
		return 1;
	if (row->has_event_key && s_open_payload(it->d, row, sealed, slen,
	    &plain, &plen) != 0) {
		log_warnx("inbox: stored payload of %s does not decrypt "
		    "(corrupt database or wrong key files)",
		    kpd_id(row->event_id, id));
		plen = 0;
	}
	b = s_items_push(it, sizeof(*b) + plen);
	if (b != NULL) {
		s_inbox_fields(b, row);
		b->item.has_payload_destroyed = 1;
		b->item.payload_destroyed = !row->has_event_key;
		if (plain != NULL) {
			memcpy(b->payload, plain, plen);
			b->item.has_payload = 1;
			b->item.payload = (ProtobufCBinaryData){ plen, b->payload };
		}
	}
	if (plain != NULL)
		sodium_memzero(plain, plen);
	free(plain);
	if (b == NULL)
		return 1;
	return s_items_fit(it, kp__inbox_item__get_packed_size(&b->item));
}

int
apiquery_inbox(kpd_t *d, struct api_req *r)
{
	const Kp__ListRequest *l = r->req->inbox;
	struct items *it = s_items_new(d, r);
	kp_err_t e;

	if (it == NULL)
		return -1;
	it->limit = s_limit(l);
	if (store_inbox_list(d->store, l && l->has_all && l->all,
	    l && l->has_after_seq ? l->after_seq : 0, it->limit + 1,
	    s_inbox_item, it, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	if (it->more && it->n == 0)   /* not even one item: out of memory */
		return api_fail(r, KP_ERR_NOMEM, "out of memory listing the "
		    "inbox");
	it->ilist.n_items = it->n;
	it->ilist.items = (Kp__InboxItem **)it->items;
	it->ilist.has_more = 1;
	it->ilist.more = it->more;
	r->resp.result_case = KP__RESPONSE__RESULT_INBOX;
	r->resp.inbox = &it->ilist;
	return 0;
}

int
apiquery_fetch(kpd_t *d, struct api_req *r)
{
	const Kp__FetchRequest *f = r->req->fetch;
	struct items *it;
	inbox_row_t row;
	uint8_t *sealed = NULL;
	size_t slen = 0;
	bool found = false;
	kp_err_t e;

	if (!f->has_event_id || f->event_id.len != 16)
		return api_fail(r, KP_ERR_INVALID_ARG,
		    "fetch needs an event id");
	if ((it = s_items_new(d, r)) == NULL)
		return -1;
	if (store_inbox_get(d->store, f->event_id.data, &row, &sealed, &slen,
	    &found, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	if (!found)
		return api_fail(r, KP_ERR_INVALID_ARG,
		    "no event %s in the inbox",
		    kpd_id(f->event_id.data, (char[37]){ 0 }));
	(void)s_inbox_item(it, &row, sealed, slen);
	free(sealed);
	if (it->n != 1)
		return api_fail(r, KP_ERR_NOMEM, "out of memory");
	r->resp.result_case = KP__RESPONSE__RESULT_ITEM;
	r->resp.item = it->items[0];
	return 0;
}

int
apiquery_ack(kpd_t *d, struct api_req *r, Kp__AckResponse *out)
{
	const Kp__AckRequest *a = r->req->ack;
	bool newly;
	size_t i;
	kp_err_t e;

	kp__ack_response__init(out);
	out->has_acknowledged = 1;
	for (i = 0; i < a->n_event_ids; i++) {
		if (a->event_ids[i].len != 16)
			return api_fail(r, KP_ERR_INVALID_ARG,
			    "event id %zu is not 16 bytes", i);
		if (store_inbox_ack(d->store, a->event_ids[i].data, &newly,
		    &e) != 0)
			return api_fail(r, e.code, "%s", e.msg);
		out->acknowledged += newly;
	}
	r->resp.result_case = KP__RESPONSE__RESULT_ACK;
	r->resp.ack = out;
	return 0;
}

/* Trust freshness (trustwatch.c) into the status; static storage: one
 * status answer is built and sent at a time. */
static void
s_status_trust(kpd_t *d, Kp__StatusResponse *st)
{
	static char lines[16][KPD_TRUST_LINE];
	static char *ptrs[16];
	size_t i;

	st->n_trust_warnings = kpd_trust_warnings(d, lines, 16);
	for (i = 0; i < st->n_trust_warnings; i++)
		ptrs[i] = lines[i];
	st->trust_warnings = ptrs;
	st->has_trust_stale = 1;
	st->trust_stale = kpd_trust_stale(d);
	st->has_bundle_version = 1;
	st->bundle_version = kpd_bundle_applied(d);
}

int
apiquery_status(kpd_t *d, struct api_req *r, Kp__StatusResponse *st)
{
	const partner_t *me = identity_public(d->chain->self);
	uint64_t c[5] = { 0 }, unacked = 0, total = 0;
	kp_err_t e;

	if (store_outbox_counts(d->store, c, &e) != 0 ||
	    store_inbox_counts(d->store, &unacked, &total, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	kp__status_response__init(st);
	st->oin = (char *)partner_oin(me);
	st->role = (char *)kp_role_name(partner_role(me));
	st->name = (char *)partner_name(me);
	st->version = (char *)KP_VERSION;
	st->has_partners = st->has_outbox_pending = st->has_outbox_delivered = 1;
	st->has_outbox_rejected = st->has_outbox_dead = 1;
	st->has_inbox_unacknowledged = st->has_inbox_total = st->has_uptime_ms = 1;
	st->partners = (uint32_t)directory_count(d->chain->dir);
	st->outbox_pending = c[STORE_PENDING];
	st->outbox_delivered = c[STORE_DELIVERED];
	st->outbox_rejected = c[STORE_REJECTED];
	st->outbox_dead = c[STORE_DEAD];
	st->inbox_unacknowledged = unacked;
	st->inbox_total = total;
	st->uptime_ms = kp_now_ms() - d->started_ms;
	st->has_policy_hash = 1;
	st->policy_hash = (ProtobufCBinaryData){ 32,
	    (uint8_t *)policy_hash(d->policy) };
	st->policy = (char *)policy_path(d->policy);
	st->has_destruction_pending = 1;
	st->destruction_pending = d->destroy_pending;
	s_status_trust(d, st);
	r->resp.result_case = KP__RESPONSE__RESULT_STATUS;
	r->resp.status = st;
	return 0;
}

/* ---- subject access and retention ------------------------------------------ */

/* A SubjectItem and copies of its strings in one allocation. */
struct subject_block {
	Kp__SubjectItem item;
	uint8_t event_id[16];
	char partner[21], purpose[65], legal_basis[65];
	char fields[STORE_FIELDS_MAX];
	char *names[64];
	char partner_name[KP_NAME_MAX * 4 + 1];
};

static void
s_split_fields(struct subject_block *b)
{
	char *save = NULL, *t;

	b->item.n_fields = 0;
	b->item.fields = b->names;
	for (t = strtok_r(b->fields, ",", &save); t != NULL &&
	    b->item.n_fields < 64; t = strtok_r(NULL, ",", &save))
		b->names[b->item.n_fields++] = t;
}

static int
s_subject_item(void *arg, const subject_row_t *row)
{
	struct items *it = arg;
	char *values = NULL;
	size_t vlen;
	struct subject_block *b;
	const peer_t *p = directory_find(it->d->chain->dir, row->partner_oin);
	Kp__SubjectItem *o;

	if (it->with_values && cases_values_json(it->d, row, &values,
	    &it->err) != 0) {
		it->failed = true;
		return 1;
	}
	vlen = values != NULL ? strlen(values) + 1 : 0;
	/* the values' text lives right after the block, in one allocation */
	if ((b = s_items_push(it, sizeof(*b) + vlen)) == NULL) {
		free(values);
		kp_fail(&it->err, KP_ERR_NOMEM, "out of memory listing the "
		    "case's events");
		it->failed = true;
		return 1;
	}
	snprintf(b->partner_name, sizeof(b->partner_name), "%s", p != NULL ?
	    partner_name(peer_partner(p)) : "(no longer a partner)");
	o = &b->item;
	kp__subject_item__init(o);
	memcpy(b->event_id, row->event_id, 16);
	memcpy(b->partner, row->partner_oin, sizeof(b->partner));
	memcpy(b->purpose, row->purpose, sizeof(b->purpose));
	memcpy(b->legal_basis, row->legal_basis, sizeof(b->legal_basis));
	memcpy(b->fields, row->fields, sizeof(b->fields));
	s_split_fields(b);
	o->has_event_id = o->has_event_type = o->has_at_ms = 1;
	o->has_retention_until_ms = o->has_payload_destroyed = 1;
	o->event_id = (ProtobufCBinaryData){ 16, b->event_id };
	o->direction = row->sent ? "sent" : "received";
	o->partner_oin = b->partner;
	o->partner_name = b->partner_name;
	o->event_type = (Kp__EventType)row->event_type;
	o->purpose = b->purpose;
	o->legal_basis = b->legal_basis;
	o->at_ms = row->at_ms;
	o->retention_until_ms = row->retention_until_ms;
	o->payload_destroyed = row->destroyed;
	if (values != NULL) {
		o->values_json = memcpy(b + 1, values, vlen);
		free(values);
	}
	if (row->sent) {
		o->has_state = o->has_reason = 1;
		o->state = (Kp__DeliveryState)row->state;
		o->reason = (Kp__Reason)row->reason;
	}
	return 0;
}

int
apiquery_subject(kpd_t *d, struct api_req *r)
{
	const Kp__SubjectRequest *q = r->req->subject;
	struct items *it;
	kp_err_t e;

	if (q->case_ref == NULL || !pseudonym_ref_valid(q->case_ref))
		return api_fail(r, KP_ERR_INVALID_ARG, "subject needs a local "
		    "case reference");
	if ((it = s_items_new(d, r)) == NULL)
		return -1;
	it->with_values = q->has_with_values && q->with_values;
	if (store_subject(d->store, q->case_ref, s_subject_item, it, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	/* all or nothing: a subject-access answer is a legal answer to the
	 * person, and a short one would look complete */
	if (it->failed) {
		log_warnx("subject access by %s failed: %s", r->who,
		    it->err.msg);
		return api_fail(r, it->err.code, "subject access could not be "
		    "answered completely: %s", it->err.msg);
	}
	kp__subject_response__init(&r->subject);
	r->subject.case_ref = q->case_ref;
	r->subject.n_items = it->n;
	r->subject.items = (Kp__SubjectItem **)it->items;
	r->resp.result_case = KP__RESPONSE__RESULT_SUBJECT;
	r->resp.subject = &r->subject;
	log_info("subject access by %s: %zu events listed", r->who, it->n);
	return 0;
}

int
apiquery_purge(kpd_t *d, struct api_req *r)
{
	size_t n = 0;
	kp_err_t e;

	if (retention_purge(d, &n, &e) != 0)
		return api_fail(r, e.code, "%s", e.msg);
	kp__purge_response__init(&r->purge);
	r->purge.has_purged = 1;
	r->purge.purged = (uint32_t)n;
	r->purge.has_destruction_pending = 1;
	r->purge.destruction_pending = d->destroy_pending;
	r->resp.result_case = KP__RESPONSE__RESULT_PURGE;
	r->resp.purge = &r->purge;
	return 0;
}

/* ---- feedback: case, cases, report, link, outcome, todo ------------------- */

/* The answer of a feedback view (feedback.c): rc its return, e its error,
 * result the response field it filled. */
static int
s_view_answer(struct api_req *r, int rc, const kp_err_t *e,
    Kp__Response__ResultCase result)
{
	if (rc != 0)
		return api_fail(r, e->code, "%s", e->msg);
	r->resp.result_case = result;
	return 0;
}

int
apiquery_case(kpd_t *d, struct api_req *r)
{
	const Kp__CaseRequest *q = r->req->case_timeline;
	kp_err_t e;

	if (q->case_ref == NULL || !pseudonym_ref_valid(q->case_ref))
		return api_fail(r, KP_ERR_INVALID_ARG,
		    "case needs a local case reference");
	return s_view_answer(r, feedback_case(d, &r->arena, q,
	    &r->resp.case_timeline, &e), &e,
	    KP__RESPONSE__RESULT_CASE_TIMELINE);
}

int
apiquery_cases(kpd_t *d, struct api_req *r)
{
	kp_err_t e;

	return s_view_answer(r, feedback_cases(d, &r->arena, r->req->cases,
	    &r->resp.cases, &e), &e, KP__RESPONSE__RESULT_CASES);
}

int
apiquery_report(kpd_t *d, struct api_req *r)
{
	kp_err_t e;

	return s_view_answer(r, feedback_report(d, &r->arena, r->req->report,
	    &r->resp.report, &e), &e, KP__RESPONSE__RESULT_REPORT);
}

int
apiquery_link(kpd_t *d, struct api_req *r)
{
	kp_err_t e;

	return s_view_answer(r, feedback_link(d, &r->arena, r->req->link,
	    &r->resp.link, &e), &e, KP__RESPONSE__RESULT_LINK);
}

int
apiquery_outcome(kpd_t *d, struct api_req *r)
{
	kp_err_t e;

	return s_view_answer(r, feedback_outcome(d, &r->arena,
	    r->req->outcome, &r->resp.outcome, &e), &e,
	    KP__RESPONSE__RESULT_OUTCOME);
}

int
apiquery_todo(kpd_t *d, struct api_req *r)
{
	kp_err_t e;

	return s_view_answer(r, feedback_todo(d, &r->arena, r->req->todo,
	    &r->resp.todo, &e), &e, KP__RESPONSE__RESULT_TODO);
}
