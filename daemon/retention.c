/*
 * retention.c: the retention period of the chain policy, enforced.
 *
 * When an event's retention ends its payload is destroyed: the wrapped
 * per-event key and the ciphertext are removed from the row (store_purge;
 * secure_delete zeroes the freed bytes and pages), and the WAL is
 * checkpointed and truncated so no old page keeps them in the log or the
 * database file.  Only then is the purge done.  While a reader holds old
 * pages (a read transaction open on the database) the checkpoint cannot
 * finish: the payloads are "destruction pending" (status, the purge
 * answer, the log), never reported destroyed, and the checkpoint is
 * retried every second until it succeeds.  Whatever copy of a ciphertext
 * might still linger elsewhere is unreadable, because its key is gone
 * (atrest.c).  The metadata of
 * the event (who, when, type, purpose, field names, digests) stays: it is
 * what the audit log and subject access are made of.  Every purge is an
 * audit entry per event, and logged (after the commit: only then is it
 * done), one line per event and one in total.
 *
 * When the chain policy's metadata_retention ends too (counted from the
 * event's creation or receipt; never before its payload is destroyed),
 * the same pass reduces the row to what the audit needs
 * (store_meta_reduce: no case reference, pseudonym, route or field names;
 * the officer's expectations, absence records and unused links deleted),
 * in the same transaction, logged by counts only.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

/* How long a purge waits for readers before it answers "pending"; the
 * retries every second do not wait (the daemon's loop must not stall). */
#define RETENTION_WAIT_MS 250

struct purged {
	uint8_t id[16];
	char partner[21];
	bool sent;
};

struct purge_walk {
	kpd_t *d;
	int failed;          /* an audit entry could not be written */
	struct purged *v;
	size_t n, cap;
};

static int
s_collect(void *arg, const uint8_t id[16], const char *partner, bool sent)
{
	struct purge_walk *w = arg;
	struct purged *grown;
	audit_entry_t e;
	kp_err_t err;

	memset(&e, 0, sizeof(e));
	e.kind = AUDIT_PURGE;
	e.direction = sent ? AUDIT_OUT : AUDIT_IN;
	memcpy(e.partner_oin, partner, sizeof(e.partner_oin));
	e.has_event_id = true;
	memcpy(e.event_id, id, 16);
	if (ledger_append(w->d, &e, &err) != 0)
		w->failed = 1;
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		if ((grown = realloc(w->v, w->cap * sizeof(*grown))) == NULL)
			return 0;     /* only the per-event log lines are lost */
		w->v = grown;
	}
	memcpy(w->v[w->n].id, id, 16);
	memcpy(w->v[w->n].partner, partner, sizeof(w->v[w->n].partner));
	w->v[w->n++].sent = sent;
	return 0;
}

/*
 * Checkpoint until no WAL frame can hold a destroyed key, waiting at most
 * wait_ms for readers.  Always tried, even with nothing newly purged: a
 * WAL left by a daemon that stopped while a reader held it is cleared too.
 * 0 once destroyed (or nothing pending), 1 while pending, -1 on a
 * database error (still pending; err says why).
 */
static int
s_destroy(kpd_t *d, int wait_ms, kp_err_t *err)
{
	bool done = false;

	if (store_checkpoint(d->store, wait_ms, &done, err) != 0)
		return -1;
	if (!done)
		return 1;
	d->destroy_pending = 0;
	return 0;
}

/* Reduce the rows whose metadata retention (chain policy) ended by now;
 * nothing when the policy sets none. */
static int
s_reduce(kpd_t *d, uint64_t now, store_reduced_t *red, kp_err_t *err)
{
	uint64_t keep = policy_metadata_retention_ms(d->policy);

	memset(red, 0, sizeof(*red));
	if (keep == 0 || now <= keep)
		return 0;
	return store_meta_reduce(d->store, now - keep, now, red, err);
}

int
retention_purge(kpd_t *d, size_t *n, kp_err_t *err)
{
	struct purge_walk w = { .d = d };
	store_reduced_t red;
	uint64_t now = kp_now_ms();
	char text[37];
	size_t i;

	*n = 0;
	if (kpd_begin(d, err) != 0)
		return -1;
	if (store_purge(d->store, now, s_collect, &w, n, err) != 0 ||
	    (w.failed && kp_fail(err, KP_ERR_IO, "the audit log could not "
	    "record the purge") != 0) || s_reduce(d, now, &red, err) != 0 ||
	    kpd_commit(d, err) != 0) {
		kpd_rollback(d);
		free(w.v);
		log_warnx("purge failed, nothing destroyed: %s", err->msg);
		return -1;
	}
	for (i = 0; i < w.n; i++)
		log_info("event %s %s %s: retention ended, payload removed",
		    kpd_id(w.v[i].id, text), w.v[i].sent ? "to" : "from",
		    w.v[i].partner);
	free(w.v);
	if (red.outbox + red.inbox + red.expectations + red.absence +
	    red.links > 0)
		log_info("metadata retention ended: %" PRIu64 " sent and %"
		    PRIu64 " received event(s) reduced to their audit "
		    "metadata; %" PRIu64 " expectation(s), %" PRIu64 " absence "
		    "record(s) and %" PRIu64 " case link(s) deleted",
		    red.outbox, red.inbox, red.expectations, red.absence,
		    red.links);
	d->destroy_pending += (uint32_t)*n;
	d->next_destroy_ms = kp_now_ms() + 1000;
	switch (s_destroy(d, RETENTION_WAIT_MS, err)) {
	case 0:
		log_info("purge: %zu payload(s) destroyed at the end of their "
		    "retention", *n);
		break;
	case 1:
		if (d->destroy_pending == 0)
			break;        /* nothing destroyed waits for it */
		log_warnx("purge: %" PRIu32 " payload(s) removed but not yet "
		    "destroyed: a reader holds old database pages (the WAL "
		    "cannot be checkpointed); retrying every second",
		    d->destroy_pending);
		break;
	default:
		if (d->destroy_pending > 0)
			log_warnx("purge: %" PRIu32 " payload(s) not yet "
			    "destroyed: %s; retrying every second",
			    d->destroy_pending, err->msg);
		else
			log_warnx("purge: checkpoint failed: %s", err->msg);
	}
	return 0;
}

void
retention_tick(kpd_t *d)
{
	uint64_t now = kp_now_ms();
	size_t n;
	kp_err_t e;

	if (d->destroy_pending > 0 && now >= d->next_destroy_ms) {
		uint32_t was = d->destroy_pending;

		d->next_destroy_ms = now + 1000;
		if (s_destroy(d, 0, &e) == 0)
			log_info("purge: %" PRIu32 " payload(s) destroyed (the "
			    "WAL is checkpointed at last)", was);
	}
	if (now < d->next_purge_ms)
		return;
	d->next_purge_ms = now + d->cfg.purge_interval_ms;
	(void)retention_purge(d, &n, &e);
}
