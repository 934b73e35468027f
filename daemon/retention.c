/*
 * retention.c: the retention period of the chain policy, enforced.
 *
 * When an event's retention ends its payload is destroyed: the wrapped
 * per-event key and the ciphertext are removed from the row (store_purge),
 * and the WAL is checkpointed and truncated so no old page keeps them in
 * the log.  Whatever copy of a ciphertext might still linger in a free
 * page is unreadable, because its key is gone (atrest.c).  The metadata of
 * the event (who, when, type, purpose, field names, digests) stays: it is
 * what the audit log and subject access are made of.  Every purge is an
 * audit entry per event, and logged (after the commit: only then is it
 * done), one line per event and one in total.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

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

int
retention_purge(kpd_t *d, size_t *n, kp_err_t *err)
{
	struct purge_walk w = { .d = d };
	char text[37];
	size_t i;

	*n = 0;
	if (kpd_begin(d, err) != 0)
		return -1;
	if (store_purge(d->store, kp_now_ms(), s_collect, &w, n, err) != 0 ||
	    (w.failed && kp_fail(err, KP_ERR_IO, "the audit log could not "
	    "record the purge") != 0) || kpd_commit(d, err) != 0) {
		kpd_rollback(d);
		free(w.v);
		log_warnx("purge failed, nothing destroyed: %s", err->msg);
		return -1;
	}
	if (*n > 0 && store_checkpoint(d->store, err) != 0)
		log_warnx("purge: checkpoint failed: %s", err->msg);
	for (i = 0; i < w.n; i++)
		log_info("event %s %s %s: retention ended, payload destroyed",
		    kpd_id(w.v[i].id, text), w.v[i].sent ? "to" : "from",
		    w.v[i].partner);
	free(w.v);
	log_info("purge: %zu payload(s) destroyed at the end of their "
	    "retention", *n);
	return 0;
}

void
retention_tick(kpd_t *d)
{
	uint64_t now = kp_now_ms();
	size_t n;
	kp_err_t e;

	if (now < d->next_purge_ms)
		return;
	d->next_purge_ms = now + d->cfg.purge_interval_ms;
	(void)retention_purge(d, &n, &e);
}
