/*
 * ledger.c: the daemon's side of the purpose-bound audit log.
 *
 * Owns the right edge of the log's Merkle tree (a merkle_frontier_t, the
 * rest is in the store: audittree.c), the leaves of the transaction in
 * hand, and the latest signed tree head.  Memory does not grow with the
 * log.  Format and verification are lib/auditlog.c and docs/AUDIT.md.
 *
 * Invariants:
 *   1. An entry is written in the same SQLite transaction as the act it
 *      records (ledger_append between kpd_begin and kpd_commit).  If the
 *      entry cannot be written the act fails with it: fail-closed, nothing
 *      is sent, accepted or settled that the log does not show.
 *   2. The tree holds exactly the committed entries: appended leaves wait
 *      in `pending` until kpd_commit, and are dropped by kpd_rollback.
 *   3. Tree heads are signed at a cadence (when the log grew) and at
 *      shutdown, and stored; the latest one rides in every envelope and
 *      receipt this daemon sends, for partners to witness.
 *   4. Partners' heads are verified and kept (table witness); a head of
 *      the same size as one held but with another root is a proof that the
 *      partner forked its log: logged as an alarm and recorded as an
 *      entry.  So is a head that is smaller than the one held but signed
 *      later: the partner's log went back (a restored or rolled-back
 *      database).  Other heads of different sizes are checked offline by
 *      `ketenpost audit witness` against the partner's export.
 *   5. At start the stored log is checked before anything is appended
 *      (ledger_open, s_check_log): every entry's leaf is recomputed from
 *      its bytes, the tree over them must give the last signed head's
 *      root, and entries after that head must decode.  A damaged log
 *      stops the start, unless the operator accepted it
 *      (--accept-damaged-audit-log): then an alarm entry records it.
 * Never a payload value: entries carry field names and digests only.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audittree.h"
#include "daemon.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "log.h"

/* The last head seen from one partner, as it came over the wire: the
 * same bytes again (the common case: heads change once a minute) need no
 * second signature check and no database read. */
struct seen_head {
	char oin[21];
	uint8_t digest[32];        /* BLAKE2b-256 of the serialised head */
};

#define LEDGER_SEEN_MAX 64
/* A receipt with a head and a proof of n steps is ~351 + 34n bytes; 16
 * steps keep it well under KP_MAX_RECEIPT (1024).  A longer proof (a
 * partner that missed many heads) is left to the offline witness check. */
#define LEDGER_PROOF_MAX 16

/* The size of the last head given to a partner: the next head it gets
 * comes with a consistency proof from there. */
struct sent_head {
	char oin[21];
	uint64_t size;
};

/* A partner whose rollback was alarmed about, at the size held then: one
 * alarm per rollback, not one per head it signs until it has grown back. */
struct alarmed {
	char oin[21];
	uint64_t held_size;
};

struct ledger {
	struct alarmed alarmed[LEDGER_SEEN_MAX];
	size_t n_alarmed;
	struct alarmed alarmed_pending[LEDGER_SEEN_MAX]; /* until commit */
	size_t n_alarmed_pending;
	struct sent_head sent[LEDGER_SEEN_MAX];
	size_t n_sent;
	struct seen_head seen_pending[LEDGER_SEEN_MAX]; /* until commit */
	size_t n_seen_pending;
	merkle_frontier_t tree;    /* committed leaves (right edge) */
	merkle_frontier_t work;    /* tree + the open transaction's leaves */
	struct seen_head seen[LEDGER_SEEN_MAX];
	size_t n_seen;
	uint8_t (*pending)[32];    /* leaves of the open transaction (undo) */
	size_t n_pending, cap_pending;
	audit_head_t head;         /* latest signed head */
	bool has_head;
	bool unflushed;            /* the open transaction is unflushed */
};

/* What the start-up check of the stored log found (s_check_log). */
struct log_check {
	kpd_t *d;
	struct audittree_check tc; /* the tree rebuilt, its nodes checked */
	kp_err_t terr;             /* why the rebuild failed, if failed */
	bool failed;
	uint8_t head_root[32];     /* the tree's root at head_size */
	uint64_t head_size;        /* entries covered by the last signed head */
	uint64_t first_bad;        /* first damaged entry, if n_bad > 0 */
	uint64_t n_bad;
	const char *why;           /* of the first damaged entry */
};

/* One stored entry: its leaf recomputed from its bytes and appended;
 * damage noted.  -1 only for a gap in seq (the store reports it). */
static int
s_check_entry(void *arg, uint64_t seq, const uint8_t *entry, size_t len,
    const uint8_t stored_leaf[32])
{
	struct log_check *c = arg;
	uint8_t leaf[32];
	audit_entry_t e;
	kp_err_t err;
	const char *why = NULL;

	if (seq != c->tc.f.size)
		return -1;
	if (entry == NULL || merkle_leaf_hash(entry, len, leaf) != 0) {
		memset(leaf, 0, sizeof(leaf));
		why = "unreadable";
	} else if (sodium_memcmp(leaf, stored_leaf, 32) != 0)
		why = "its bytes do not match its leaf hash";
	else if (seq >= c->head_size && (audit_entry_decode(entry, len, &e,
	    &err) != 0 || e.seq != seq))
		why = "it does not decode as an audit entry of this position";
	if (why != NULL && c->n_bad++ == 0) {
		c->first_bad = seq;
		c->why = why;
	}
	if (audittree_check_leaf(c->d->store, &c->tc, leaf, &c->terr) != 0) {
		c->failed = true;
		return -1;
	}
	if (c->tc.f.size == c->head_size &&
	    merkle_frontier_root(&c->tc.f, c->head_root) != 0) {
		c->failed = true;
		return kp_fail(&c->terr, KP_ERR_IO, "audit log: hashing "
		    "failed");
	}
	return 0;
}

/* The last signed head against the tree: -1 (with *why) if it does not
 * match.  A signature by another key is only warned about: a renewed
 * certificate signs with a new key, and the root comparison is what
 * shows damage. */
static int
s_check_head(kpd_t *d, ledger_t *l, const struct log_check *c,
    const char **why)
{
	if (!l->has_head)
		return 0;
	if (l->head.size > c->tc.f.size) {
		*why = "the log is shorter than its last signed head";
		return -1;
	}
	if (sodium_memcmp(c->head_root, l->head.root, 32) != 0) {
		*why = "the entries up to the last signed head do not give its "
		    "root";
		return -1;
	}
	if (audit_head_verify(&l->head, d->cfg.org, partner_sign_pk(
	    identity_public(d->chain->self))) != 0)
		log_warnx("audit log: the last signed head (size %llu) is not "
		    "signed by our current key (a renewed certificate?); its "
		    "root matches the log", (unsigned long long)l->head.size);
	return 0;
}

/* Record that the daemon started on a damaged log (the override). */
static int
s_alarm_damaged(kpd_t *d, kp_err_t *err)
{
	audit_entry_t e;
	uint8_t root[32];

	memset(&e, 0, sizeof(e));
	e.kind = AUDIT_HEAD_ALARM;
	memcpy(e.partner_oin, d->cfg.org, sizeof(e.partner_oin));
	e.has_envelope_digest = e.has_receipt_digest = true;
	if (merkle_frontier_root(&d->ledger->tree, root) == 0)
		memcpy(e.envelope_digest, root, 32);
	memcpy(e.receipt_digest, d->ledger->head.root, 32);
	if (kpd_begin(d, err) != 0)
		return -1;
	if (ledger_append(d, &e, err) != 0 || kpd_commit(d, err) != 0) {
		kpd_rollback(d);
		return -1;
	}
	return 0;
}

/* One line naming the first damage found (entries, head, tree nodes). */
static void
s_damage_msg(const struct log_check *c, const char *why, char *msg,
    size_t cap)
{
	size_t n = 0;

	msg[0] = '\0';
	if (c->n_bad > 0)
		n = (size_t)snprintf(msg, cap, "%llu damaged entr%s, the first "
		    "at seq %llu (%s)", (unsigned long long)c->n_bad,
		    c->n_bad == 1 ? "y" : "ies", (unsigned long long)
		    c->first_bad, c->why);
	if (why != NULL && n < cap)
		n += (size_t)snprintf(msg + n, cap - n, "%s%s", n ? "; " : "",
		    why);
	if (c->tc.bad > 0 && n < cap) {
		if (c->tc.first_bad_index == UINT64_MAX)
			snprintf(msg + n, cap - n, "%s%llu damaged tree node%s "
			    "(table audit_nodes), the first beyond the log's "
			    "%llu entries", n ? "; " : "", (unsigned long long)
			    c->tc.bad, c->tc.bad == 1 ? "" : "s",
			    (unsigned long long)c->tc.f.size);
		else
			snprintf(msg + n, cap - n, "%s%llu damaged tree node%s "
			    "(table audit_nodes), the first at height %u index "
			    "%llu", n ? "; " : "", (unsigned long long)c->tc.bad,
			    c->tc.bad == 1 ? "" : "s", c->tc.first_bad_height,
			    (unsigned long long)c->tc.first_bad_index);
	}
}

/*
 * Check the stored log at start (invariant 5).  The tree is built from
 * the recomputed leaves, so what is appended next extends the log as it
 * really is on disk: damage stays visible to every verifier and partner.
 */
static int
s_check_log(kpd_t *d, ledger_t *l, kp_err_t *err)
{
	struct log_check c = { .d = d };
	const char *why = NULL;
	char msg[KP_ERR_MSG_MAX];

	c.head_size = l->has_head ? l->head.size : 0;
	audittree_check_init(&c.tc, d->accept_damaged_log);
	if (c.head_size == 0 && merkle_empty_root(c.head_root) != 0)
		return kp_fail(err, KP_ERR_IO, "audit log: hashing failed");
	/* one transaction: nodes a log written without them lacks are added
	 * at once, and nothing is written if the start is refused */
	if (store_begin(d->store, err) != 0)
		return -1;
	if (store_audit_entries(d->store, s_check_entry, &c, err) != 0) {
		if (c.failed)   /* the tree's own message, not a gap */
			*err = c.terr;
		goto fail;
	}
	if (audittree_check_end(d->store, &c.tc, err) != 0)
		goto fail;
	if (s_check_head(d, l, &c, &why) != 0 || c.n_bad > 0 || c.tc.bad > 0) {
		s_damage_msg(&c, why, msg, sizeof(msg));
		if (!d->accept_damaged_log) {
			kp_fail(err, KP_ERR_IO, "audit log in %s does not "
			    "verify against its last signed head (size %llu): "
			    "%s; refusing to start.  Restore the database from "
			    "a backup, or start with --accept-damaged-audit-log "
			    "(recorded as an alarm in the log)", d->cfg.state_dir,
			    (unsigned long long)c.head_size, msg);
			goto fail;
		}
	}
	if (store_commit(d->store, err) != 0)
		goto fail;
	l->tree = l->work = c.tc.f;
	if (c.tc.added > 0)
		log_info("audit log: %llu tree nodes written from the entries "
		    "(a log kept by an earlier version)",
		    (unsigned long long)c.tc.added);
	if (c.n_bad > 0 || c.tc.bad > 0 || why != NULL) {
		log_warnx("ALARM: audit log damaged: %s; starting anyway "
		    "(--accept-damaged-audit-log), recorded as an alarm entry%s",
		    msg, c.tc.bad > 0 ? "; the tree nodes were rebuilt from "
		    "the entries" : "");
		if (s_alarm_damaged(d, err) != 0)
			return -1;
	}
	return 0;
fail:
	store_rollback(d->store);
	return -1;
}

/* Serialise head h of oin, with a consistency proof if n_proof > 0. */
static uint8_t *
s_pack_head(const char *oin, const audit_head_t *h, uint64_t from,
    uint8_t (*proof)[32], size_t n_proof, size_t *len)
{
	Kp__TreeHead th = KP__TREE_HEAD__INIT;
	ProtobufCBinaryData *steps = NULL;
	uint8_t *wire = NULL;
	size_t i;

	th.oin = (char *)oin;
	th.has_size = th.has_time_ms = th.has_root = th.has_signature = 1;
	th.size = h->size;
	th.time_ms = h->time_ms;
	th.root = (ProtobufCBinaryData){ 32, (uint8_t *)h->root };
	th.signature = (ProtobufCBinaryData){ 64, (uint8_t *)h->signature };
	if (n_proof > 0 && (steps = calloc(n_proof, sizeof(*steps))) != NULL) {
		for (i = 0; i < n_proof; i++)
			steps[i] = (ProtobufCBinaryData){ 32, proof[i] };
		th.has_proof_from_size = 1;
		th.proof_from_size = from;
		th.n_consistency = n_proof;
		th.consistency = steps;
	}
	*len = kp__tree_head__get_packed_size(&th);
	if ((wire = malloc(*len)) != NULL)
		kp__tree_head__pack(&th, wire);
	free(steps);
	return wire;
}

static struct sent_head *
s_sent_slot(ledger_t *l, const char *oin)
{
	size_t i;

	for (i = 0; i < l->n_sent; i++)
		if (strcmp(l->sent[i].oin, oin) == 0)
			return &l->sent[i];
	if (l->n_sent == LEDGER_SEEN_MAX)
		return NULL;
	memcpy(l->sent[l->n_sent].oin, oin, 21);
	l->sent[l->n_sent].size = 0;
	return &l->sent[l->n_sent++];
}

int
ledger_head_for(kpd_t *d, const char *to_oin, uint8_t **wire, size_t *len)
{
	ledger_t *l = d->ledger;
	struct sent_head *sh = s_sent_slot(l, to_oin);
	uint8_t (*proof)[32] = NULL;
	size_t n = 0;
	uint64_t from = sh != NULL ? sh->size : 0;

	*wire = NULL;
	if (!l->has_head)
		return 0;
	if (from > 0 && from < l->head.size &&
	    audittree_consistency(d->store, &l->tree, from, l->head.size,
	    &proof, &n) != 0)
		n = 0;
	if (n > LEDGER_PROOF_MAX)  /* keep receipts within KP_MAX_RECEIPT */
		n = 0;
	*wire = s_pack_head(d->cfg.org, &l->head, from, proof, n, len);
	free(proof);
	if (*wire == NULL)
		return -1;
	if (sh != NULL)
		sh->size = l->head.size;
	return 0;
}

uint64_t
ledger_head_mark(kpd_t *d, const char *to_oin)
{
	struct sent_head *sh = s_sent_slot(d->ledger, to_oin);

	return sh != NULL ? sh->size : 0;
}

void
ledger_head_rewind(kpd_t *d, const char *to_oin, uint64_t mark)
{
	struct sent_head *sh = s_sent_slot(d->ledger, to_oin);

	if (sh != NULL)
		sh->size = mark;
}

/* The certificate PEM, for the offline tools (audit_meta): the current one
 * as 'certificate', and every one ever used as 'certificate/<id>', so heads
 * signed before a renewal still verify (client/audit.c). */
static int
s_meta(kpd_t *d, kp_err_t *err)
{
	const char *cert = partner_cert_file(identity_public(d->chain->self));
	uint8_t *pem = NULL, id[8];
	char key[32] = "certificate/";
	size_t n = 0;
	int rc;

	if (kp_read_file(cert, 1 << 16, &pem, &n) != 0)
		return kp_fail(err, KP_ERR_IO, "cannot read %s", cert);
	(void)crypto_generichash(id, sizeof(id), pem, n, NULL, 0);
	kp_hex(id, sizeof(id), key + strlen(key));
	rc = store_meta_put(d->store, "oin", d->cfg.org, err) != 0 ||
	    store_meta_put(d->store, "certificate", (char *)pem, err) != 0 ||
	    store_meta_put(d->store, key, (char *)pem, err) != 0 ? -1 : 0;
	free(pem);
	return rc;
}

int
ledger_meta(kpd_t *d, kp_err_t *err)
{
	return s_meta(d, err);
}

int
ledger_open(kpd_t *d, kp_err_t *err)
{
	ledger_t *l = calloc(1, sizeof(*l));
	bool found = false;

	if (l == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	merkle_frontier_init(&l->tree);
	l->work = l->tree;
	d->ledger = l;
	if (store_head_last(d->store, &l->head.size, &l->head.time_ms,
	    l->head.root, l->head.signature, &found, err) != 0)
		return -1;
	l->has_head = found;
	if (s_check_log(d, l, err) != 0 || s_meta(d, err) != 0)
		return -1;
	log_info("audit log: %llu entries, last signed head at %llu",
	    (unsigned long long)l->tree.size,
	    (unsigned long long)(found ? l->head.size : 0));
	return 0;
}

void
ledger_close(kpd_t *d)
{
	ledger_t *l = d->ledger;

	if (l == NULL)
		return;
	free(l->pending);
	free(l);
	d->ledger = NULL;
}

/* Append e (seq, own OIN and time filled here) inside the open
 * transaction.  -1 means the log could not be written: fail the act. */
int
ledger_append(kpd_t *d, audit_entry_t *e, kp_err_t *err)
{
	ledger_t *l = d->ledger;
	uint8_t buf[AUDIT_ENTRY_MAX], (*grown)[32];
	uint64_t sup;
	char note[64];
	size_t n = 0;

	if (l->n_pending == l->cap_pending) {
		l->cap_pending = l->cap_pending ? 2 * l->cap_pending : 256;
		grown = realloc(l->pending, l->cap_pending * 32);
		if (grown == NULL)
			return kp_fail(err, KP_ERR_NOMEM, "audit log: out of "
			    "memory");
		l->pending = grown;
	}
	if (!store_in_txn(d->store))  /* SQLite rolled the batch back */
		return kp_fail(err, KP_ERR_IO, "audit log: the transaction was "
		    "rolled back by the database; nothing more is written");
	e->seq = l->work.size;
	memcpy(e->own_oin, d->cfg.org, sizeof(e->own_oin));
	if (e->time_ms == 0)
		e->time_ms = kp_now_ms();
	if (audit_entry_encode(e, buf, sizeof(buf), &n, err) != 0 ||
	    merkle_leaf_hash(buf, n, l->pending[l->n_pending]) != 0 ||
	    store_audit_append(d->store, e->seq, buf, n,
	    l->pending[l->n_pending], err) != 0 ||
	    audittree_append(d->store, &l->work, l->pending[l->n_pending],
	    err) != 0) {
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("audit log: entry %llu not written (%s); the "
			    "act it records is refused%s", (unsigned long long)
			    e->seq, err->msg, ratelimit_note(sup, note,
			    sizeof(note)));
		return -1;
	}
	l->n_pending++;
	return 0;
}

static void s_seen_commit(ledger_t *l);

static void
s_begin(ledger_t *l, bool unflushed)
{
	l->unflushed = unflushed;
	l->work = l->tree;
	l->n_pending = 0;
	l->n_seen_pending = 0;
	l->n_alarmed_pending = 0;
}

int
kpd_begin(kpd_t *d, kp_err_t *err)
{
	s_begin(d->ledger, false);
	return store_begin(d->store, err);
}

int
kpd_begin_unflushed(kpd_t *d, kp_err_t *err)
{
	s_begin(d->ledger, true);
	return store_begin_unflushed(d->store, err);
}

int
kpd_commit(kpd_t *d, kp_err_t *err)
{
	ledger_t *l = d->ledger;
	bool alarm = l->unflushed && l->n_alarmed_pending > 0;

	if (store_commit(d->store, err) != 0)
		return -1;
	l->tree = l->work;
	l->n_pending = 0;
	l->unflushed = false;
	s_seen_commit(l);
	/* an alarm (a partner's fork or rollback) committed unflushed: a
	 * power loss must not take back the only record of it (the head
	 * that showed it does not come again), so a head is signed now, by
	 * a flushed commit that carries the alarm to the disk with it */
	if (alarm)
		ledger_sign_head(d, false);
	return 0;
}

int
kpd_item_begin(kpd_t *d, size_t *mark, kp_err_t *err)
{
	*mark = d->ledger->n_pending;
	return store_savepoint(d->store, err);
}

int
kpd_item_end(kpd_t *d, size_t mark, bool ok, kp_err_t *err)
{
	if (ok)
		return store_release(d->store, err);
	ledger_t *l = d->ledger;
	size_t i;

	if (store_undo(d->store, err) != 0)
		return -1;
	/* the undone entries' leaves too: the right edge is rebuilt from the
	 * committed one and the leaves kept (their nodes stay stored) */
	l->n_pending = mark;
	l->work = l->tree;
	for (i = 0; i < mark; i++)
		if (merkle_frontier_append(&l->work, l->pending[i], NULL,
		    NULL) != 0)
			return kp_fail(err, KP_ERR_IO, "audit log: hashing "
			    "failed");
	return 0;
}

void
kpd_rollback(kpd_t *d)
{
	store_rollback(d->store);
	d->ledger->unflushed = false;
	d->ledger->work = d->ledger->tree;
	d->ledger->n_pending = 0;
	d->ledger->n_seen_pending = 0;
	d->ledger->n_alarmed_pending = 0;
}

/* Sign a head of the committed tree if it grew (or `force`). */
void
ledger_sign_head(kpd_t *d, bool force)
{
	ledger_t *l = d->ledger;
	audit_head_t h;
	uint64_t sup;
	char note[64];
	kp_err_t e;

	memset(&h, 0, sizeof(h));
	h.size = l->tree.size;
	if (l->has_head && h.size == l->head.size && !force)
		return;
	h.time_ms = kp_now_ms();
	if (merkle_frontier_root(&l->tree, h.root) != 0 ||
	    audit_head_sign(&h, d->cfg.org,
	    identity_sign_sk(d->chain->self)) != 0 ||
	    store_head_put(d->store, h.size, h.time_ms, h.root, h.signature,
	    &e) != 0) {
		if (kpd_log_ok(d->rl_storage, &sup))
			log_warnx("audit log: signing the tree head failed%s",
			    ratelimit_note(sup, note, sizeof(note)));
		return;
	}
	l->head = h;
	l->has_head = true;
	log_debug("audit log: signed tree head, size %llu",
	    (unsigned long long)h.size);
}

void
ledger_tick(kpd_t *d)
{
	uint64_t now = kp_now_ms();

	if (now < d->next_head_ms)
		return;
	d->next_head_ms = now + d->cfg.head_interval_ms;
	ledger_sign_head(d, false);
}

/* A partner's head from the wire, with its consistency proof if any. */
struct wire_head {
	audit_head_t h;
	char oin[21];
	uint64_t from;               /* proof_from_size, 0 if no proof */
	uint8_t (*proof)[32];        /* malloc'd */
	size_t n_proof;
};

static int
s_head_parse(const uint8_t *wire, size_t len, struct wire_head *w)
{
	Kp__TreeHead *th = kp__tree_head__unpack(NULL, len, wire);
	size_t i;
	int rc = -1;

	memset(w, 0, sizeof(*w));
	if (th == NULL)
		return -1;
	if (th->oin == NULL || !kp_oin_valid(th->oin) || !th->has_size ||
	    !th->has_time_ms || !th->has_root || th->root.len != 32 ||
	    !th->has_signature || th->signature.len != 64 ||
	    th->n_consistency > 64)
		goto out;
	memcpy(w->oin, th->oin, 21);
	w->h.size = th->size;
	w->h.time_ms = th->time_ms;
	memcpy(w->h.root, th->root.data, 32);
	memcpy(w->h.signature, th->signature.data, 64);
	if (th->has_proof_from_size && th->n_consistency > 0) {
		if ((w->proof = calloc(th->n_consistency, 32)) == NULL)
			goto out;
		for (i = 0; i < th->n_consistency; i++) {
			if (th->consistency[i].len != 32)
				goto out;
			memcpy(w->proof[i], th->consistency[i].data, 32);
		}
		w->n_proof = th->n_consistency;
		w->from = th->proof_from_size;
	}
	rc = 0;
out:
	kp__tree_head__free_unpacked(th, NULL);
	return rc;
}

static void
s_alarm(kpd_t *d, const char *oin, const audit_head_t *held,
    const audit_head_t *got)
{
	audit_entry_t e;
	char a[65], b[65];
	kp_err_t err;

	kp_hex(held->root, 32, a);
	kp_hex(got->root, 32, b);
	log_warnx("ALARM: %s signed a head of size %llu (root %s) that is "
	    "not consistent with its head of size %llu (root %s) held here: "
	    "it rewrote or rolled back its log", oin, (unsigned long long)got->size, b,
	    (unsigned long long)held->size, a);
	memset(&e, 0, sizeof(e));
	e.kind = AUDIT_HEAD_ALARM;
	memcpy(e.partner_oin, oin, 21);
	e.has_envelope_digest = e.has_receipt_digest = true;
	memcpy(e.envelope_digest, got->root, 32);
	memcpy(e.receipt_digest, held->root, 32);
	if (ledger_append(d, &e, &err) != 0)
		log_warnx("ALARM not recorded in the audit log: %s", err.msg);
}

static struct seen_head *
s_seen_slot(ledger_t *l, const char *oin)
{
	size_t i;

	for (i = 0; i < l->n_seen; i++)
		if (strcmp(l->seen[i].oin, oin) == 0)
			return &l->seen[i];
	return NULL;
}

/* Is this exactly the head last verified from oin? */
static bool
s_seen(ledger_t *l, const char *oin, const uint8_t *wire, size_t len)
{
	struct seen_head *sh = s_seen_slot(l, oin);
	uint8_t dg[32];

	return sh != NULL && crypto_generichash(dg, 32, wire, len, NULL,
	    0) == 0 && memcmp(dg, sh->digest, 32) == 0;
}

/* Remember a verified head once the transaction that judged it (and
 * may have recorded an alarm about it) commits; s_seen_commit. */
static void
s_remember(ledger_t *l, const char *oin, const uint8_t *wire, size_t len)
{
	struct seen_head *p;

	if (l->n_seen_pending == LEDGER_SEEN_MAX)
		return;
	p = &l->seen_pending[l->n_seen_pending];
	memcpy(p->oin, oin, sizeof(p->oin));
	if (crypto_generichash(p->digest, 32, wire, len, NULL, 0) == 0)
		l->n_seen_pending++;
}

/* Was an alarm about oin at this held size raised (or is one pending in
 * this transaction)?  If not, note one as pending (s_seen_commit). */
static bool
s_alarmed(ledger_t *l, const char *oin, uint64_t held_size)
{
	struct alarmed *a;
	size_t i;

	for (i = 0; i < l->n_alarmed; i++)
		if (strcmp(l->alarmed[i].oin, oin) == 0 &&
		    l->alarmed[i].held_size == held_size)
			return true;
	for (i = 0; i < l->n_alarmed_pending; i++)
		if (strcmp(l->alarmed_pending[i].oin, oin) == 0 &&
		    l->alarmed_pending[i].held_size == held_size)
			return true;
	if (l->n_alarmed_pending < LEDGER_SEEN_MAX) {
		a = &l->alarmed_pending[l->n_alarmed_pending++];
		memcpy(a->oin, oin, sizeof(a->oin));
		a->held_size = held_size;
	}
	return false;
}

static void
s_alarmed_commit(ledger_t *l)
{
	size_t i, j;

	for (i = 0; i < l->n_alarmed_pending; i++) {
		for (j = 0; j < l->n_alarmed; j++)
			if (strcmp(l->alarmed[j].oin,
			    l->alarmed_pending[i].oin) == 0)
				break;
		if (j == l->n_alarmed && l->n_alarmed < LEDGER_SEEN_MAX)
			l->n_alarmed++;
		if (j < l->n_alarmed)
			l->alarmed[j] = l->alarmed_pending[i];
	}
	l->n_alarmed_pending = 0;
}

static void
s_seen_commit(ledger_t *l)
{
	struct seen_head *sh;
	size_t i;

	s_alarmed_commit(l);
	for (i = 0; i < l->n_seen_pending; i++) {
		sh = s_seen_slot(l, l->seen_pending[i].oin);
		if (sh == NULL && l->n_seen < LEDGER_SEEN_MAX)
			sh = &l->seen[l->n_seen++];
		if (sh != NULL)
			*sh = l->seen_pending[i];
	}
	l->n_seen_pending = 0;
}

/*
 * Is the partner's new head consistent with the one we hold?  Same size:
 * the roots must be equal.  Grown from the size we hold, with a proof from
 * exactly that size: the RFC 9162 consistency proof must verify.  Smaller
 * but signed later: never consistent (a rolled-back log).  Other cases
 * (older heads arriving late, a grown head without a proof) cannot be
 * judged here; `ketenpost audit witness` judges them against an export.
 */
static bool
s_consistent(const audit_head_t *held, const struct wire_head *w)
{
	/* smaller, yet signed after the larger one: the log went back.
	 * (An older head arriving late was signed earlier.) */
	if (w->h.size < held->size && w->h.time_ms > held->time_ms)
		return false;
	if (held->size == w->h.size)
		return memcmp(held->root, w->h.root, 32) == 0;
	if (w->n_proof > 0 && w->from == held->size && held->size < w->h.size)
		return merkle_verify_consistency(held->size, w->h.size,
		    held->root, w->h.root, (const uint8_t (*)[32])w->proof,
		    w->n_proof) == 0;
	return true;
}

/* Is h signed by a valid certificate of p?  During a renewal's overlap
 * the partner signs with the old key until it switches. */
static bool
s_head_by_partner(const audit_head_t *h, const char *oin, const peer_t *p)
{
	size_t c;

	for (c = 0; c < peer_cert_count(p); c++)
		if (audit_head_verify(h, oin, partner_sign_pk(peer_cert(p,
		    c))) == 0)
			return true;
	return false;
}

void
ledger_witness(kpd_t *d, const char *from_oin, const uint8_t *msg,
    size_t len, bool is_receipt)
{
	uint8_t *wire = NULL;
	size_t wlen = 0;

	if (envelope_extract_head(msg, len, is_receipt, &wire, &wlen) == 0 &&
	    wire != NULL)
		ledger_witness_head(d, from_oin, wire, wlen);
	free(wire);
}

void
ledger_witness_head(kpd_t *d, const char *from_oin, const uint8_t *wire,
    size_t wlen)
{
	const peer_t *p = directory_find(d->chain->dir, from_oin);
	struct wire_head w = { 0 };
	audit_head_t held;
	bool found = false;
	kp_err_t e;

	if (p == NULL || wire == NULL || s_seen(d->ledger, from_oin, wire,
	    wlen))
		goto out;
	if (s_head_parse(wire, wlen, &w) != 0 || strcmp(w.oin, from_oin) != 0 ||
	    !s_head_by_partner(&w.h, w.oin, p)) {
		log_warnx("witness: tree head from %s does not verify; ignored",
		    from_oin);
		goto out;
	}
	if (store_witness_last(d->store, w.oin, &held.size, &held.time_ms,
	    held.root, held.signature, &found, &e) != 0)
		goto out;
	if (found && !s_consistent(&held, &w) &&
	    !s_alarmed(d->ledger, w.oin, held.size))
		s_alarm(d, w.oin, &held, &w.h);
	/* remembered as seen only once stored: the inbox evidence keeps
	 * no head (envelope_strip), so a head whose put failed must be
	 * tried again when it comes with the next event */
	if ((!found || held.size != w.h.size || held.time_ms != w.h.time_ms) &&
	    store_witness_put(d->store, w.oin, w.h.size, w.h.time_ms, w.h.root,
	    w.h.signature, kp_now_ms(), &e) != 0) {
		log_warnx("witness: %s", e.msg);
		goto out;
	}
	s_remember(d->ledger, from_oin, wire, wlen);
out:
	free(w.proof);
}
