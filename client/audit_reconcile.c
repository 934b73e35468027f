/*
 * audit_reconcile.c: `ketenpost audit reconcile A B` (docs/AUDIT.md §11):
 * two organisations' logs matched event by event.  It does not check
 * integrity (that is `audit verify`); it finds what one side claims and
 * the other does not confirm.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "auditlog.h"
#include "cli.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "merkle.h"
#include "pbjson.h"
#include "util.h"

/* ====================================================================== */
/* audit reconcile                                                        */
/* ====================================================================== */

static const char s_reconcile_help[] =
"usage: ketenpost audit reconcile A B\n"
"A and B are exports or state directories of two organisations' logs.\n"
"Every event A sent to B must appear in B's log as received (receipt_sent\n"
"or refusal_in) with the same envelope digest, and vice versa; A's\n"
"receipt_received entry must carry the digest and reason of B's receipt,\n"
"and what both logged of the event (type, purpose, legal basis, policy\n"
"hash, case pseudonym, field names) must be the same.\n"
"Lists every discrepancy, one per line, and exits 1 if there is any.\n"
"Reconcile does not check the logs' integrity: run `audit verify` first.\n";

/* What one entry claims about the event itself: both sides log it, so a
 * log rewritten (and re-signed) to change what was shared disagrees with
 * the partner's.  Field names are kept as a digest: only equality counts. */
struct claims {
	bool known;                   /* the entry carries the metadata */
	int event_type;
	char purpose[65], legal_basis[65];
	bool has_policy, has_case, has_fields;
	uint8_t policy_hash[32], case_pseudonym[32], fields[32];
};

struct rec {
	uint8_t id[16];
	uint64_t seq, time_ms;
	bool has_env, has_rcpt;
	uint8_t env[32], rcpt[32];
	int reason;
	struct claims cl;
};

struct recs {
	struct rec *a;
	size_t n, cap;
};

struct side {
	const char *label;            /* "A" or "B" */
	struct src *src;
	const char *other;            /* the other side's OIN */
	struct recs sends, recvs, rcpts, deads;
};

static void
s_claims(const audit_entry_t *e, struct claims *cl)
{
	memset(cl, 0, sizeof(*cl));
	/* a refusal before the envelope parsed has no metadata to compare */
	cl->known = e->has_policy_hash || e->event_type != 0;
	cl->event_type = e->event_type;
	memcpy(cl->purpose, e->purpose, sizeof(cl->purpose));
	memcpy(cl->legal_basis, e->legal_basis, sizeof(cl->legal_basis));
	cl->has_policy = e->has_policy_hash;
	memcpy(cl->policy_hash, e->policy_hash, 32);
	cl->has_case = e->has_case_pseudonym;
	memcpy(cl->case_pseudonym, e->case_pseudonym, 32);
	/* a refusal_in records no field names: the event was not taken */
	cl->has_fields = e->kind == AUDIT_SEND || e->kind == AUDIT_RECEIPT_SENT;
	if (cl->has_fields && crypto_generichash(cl->fields, 32,
	    (const uint8_t *)e->fields, strlen(e->fields), NULL, 0) != 0)
		cl->has_fields = false;
}

static int
s_recs_add(struct recs *r, const audit_entry_t *e)
{
	struct rec *grown, *x;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		if ((grown = realloc(r->a, r->cap * sizeof(*grown))) == NULL)
			return cli_error("out of memory");
		r->a = grown;
	}
	x = &r->a[r->n++];
	memcpy(x->id, e->event_id, 16);
	x->seq = e->seq;
	x->time_ms = e->time_ms;
	x->has_env = e->has_envelope_digest;
	memcpy(x->env, e->envelope_digest, 32);
	x->has_rcpt = e->has_receipt_digest;
	memcpy(x->rcpt, e->receipt_digest, 32);
	x->reason = e->reason;
	s_claims(e, &x->cl);
	return 0;
}

static int
s_side_item(void *arg, const struct item *it)
{
	struct side *s = arg;
	const audit_entry_t *e = &it->e;

	if (it->type != IT_ENTRY || !e->has_event_id ||
	    strcmp(e->partner_oin, s->other) != 0)
		return 0;
	switch (e->kind) {
	case AUDIT_SEND:
		return s_recs_add(&s->sends, e);
	case AUDIT_RECEIPT_SENT:
	case AUDIT_REFUSAL_IN:
		return s_recs_add(&s->recvs, e);
	case AUDIT_RECEIPT_RECEIVED:
		return s_recs_add(&s->rcpts, e);
	case AUDIT_DEAD_LETTER:
		return s_recs_add(&s->deads, e);
	default:
		return 0;
	}
}

static int
s_rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int c = memcmp(x->id, y->id, 16);

	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort by event id, keeping only the first (lowest seq) of each id. */
static void
s_recs_sort(struct recs *r)
{
	size_t i, o = 0;

	if (r->n == 0)
		return;
	qsort(r->a, r->n, sizeof(*r->a), s_rec_cmp);
	for (i = 1; i < r->n; i++)
		if (memcmp(r->a[i].id, r->a[o].id, 16) != 0)
			r->a[++o] = r->a[i];
	r->n = o + 1;
}

static const struct rec *
s_recs_find(const struct recs *r, const uint8_t id[16])
{
	size_t lo = 0, hi = r->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(r->a[mid].id, id, 16);
		if (c == 0)
			return &r->a[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const char *
s_reason_name(int reason, char buf[PBJSON_ENUM_NAME_MAX])
{
	if (pbjson_enum_name(&kp__reason__descriptor, reason, buf,
	    PBJSON_ENUM_NAME_MAX) == NULL)
		snprintf(buf, PBJSON_ENUM_NAME_MAX, "%d", reason);
	return buf;
}

static const char *
s_digest(bool has, const uint8_t d[32], char hex[65])
{
	if (!has)
		return "(none)";
	kp_hex(d, 32, hex);
	return hex;
}

/* Receipt of event s (sent by x, received by y as r). */
static size_t
s_match_receipt(const struct side *x, const struct side *y,
    const struct rec *r, const char *id)
{
	const struct rec *c = s_recs_find(&x->rcpts, r->id);
	char a[65], b[65], ra[PBJSON_ENUM_NAME_MAX], rb[PBJSON_ENUM_NAME_MAX];
	char t[32];
	size_t n = 0;

	if (c == NULL) {
		kp_time_format(r->time_ms, t);
		printf("receipt missing in %s: event %s: %s sent a receipt "
		    "(%s) at %s, %s logged none%s\n", x->label, id, y->label,
		    s_reason_name(r->reason, ra), t, x->label,
		    s_recs_find(&x->deads, r->id) ? " (it dead-lettered the "
		    "event)" : "");
		return 1;
	}
	if (c->has_rcpt != r->has_rcpt || (c->has_rcpt &&
	    memcmp(c->rcpt, r->rcpt, 32) != 0)) {
		printf("receipt digest differs for event %s: %s sent %s, %s "
		    "received %s\n", id, y->label,
		    s_digest(r->has_rcpt, r->rcpt, a), x->label,
		    s_digest(c->has_rcpt, c->rcpt, b));
		n++;
	}
	if (c->reason != r->reason) {
		printf("receipt reason differs for event %s: %s sent %s, %s "
		    "received %s\n", id, y->label, s_reason_name(r->reason, ra),
		    x->label, s_reason_name(c->reason, rb));
		n++;
	}
	return n;
}

static size_t
s_claim_differs(const char *id, const char *what, const struct side *x,
    const char *xv, const struct side *y, const char *yv)
{
	printf("claim differs for event %s: %s: %s logged %s, %s logged %s\n",
	    id, what, x->label, xv, y->label, yv);
	return 1;
}

/* What x logged sending (s) against what y logged receiving (r). */
static size_t
s_match_claims(const struct side *x, const struct side *y,
    const struct claims *s, const struct claims *r, const char *id)
{
	char a[65], b[65];
	size_t n = 0;

	if (!s->known || !r->known)
		return 0;
	if (s->event_type != r->event_type) {
		snprintf(a, sizeof(a), "%s", events_type_name(s->event_type));
		snprintf(b, sizeof(b), "%s", events_type_name(r->event_type));
		n += s_claim_differs(id, "event_type", x, a, y, b);
	}
	if (strcmp(s->purpose, r->purpose) != 0)
		n += s_claim_differs(id, "purpose", x, s->purpose, y, r->purpose);
	if (strcmp(s->legal_basis, r->legal_basis) != 0)
		n += s_claim_differs(id, "legal_basis", x, s->legal_basis, y,
		    r->legal_basis);
	if (s->has_policy != r->has_policy || memcmp(s->policy_hash,
	    r->policy_hash, 32) != 0)
		n += s_claim_differs(id, "policy_hash", x, s_digest(s->has_policy,
		    s->policy_hash, a), y, s_digest(r->has_policy,
		    r->policy_hash, b));
	if (s->has_case != r->has_case || memcmp(s->case_pseudonym,
	    r->case_pseudonym, 32) != 0)
		n += s_claim_differs(id, "case_pseudonym", x, s_digest(
		    s->has_case, s->case_pseudonym, a), y, s_digest(r->has_case,
		    r->case_pseudonym, b));
	if (s->has_fields && r->has_fields && memcmp(s->fields, r->fields,
	    32) != 0)
		n += s_claim_differs(id, "fields", x, "one list of field names",
		    y, "another");
	return n;
}

/* Events x sent to y.  OUT: *events counted.  Returns discrepancies. */
static size_t
s_reconcile_dir(const struct side *x, const struct side *y, size_t *events)
{
	const struct rec *s, *r;
	char id[KP_UUID_TEXT_LEN + 1], t[32], a[65], b[65];
	size_t i, n = 0;

	for (i = 0; i < x->sends.n; i++) {
		s = &x->sends.a[i];
		kp_uuid_format(s->id, id);
		kp_time_format(s->time_ms, t);
		(*events)++;
		if ((r = s_recs_find(&y->recvs, s->id)) == NULL) {
			if (s_recs_find(&x->deads, s->id) != NULL)
				continue;   /* never arrived, and x knows it */
			printf("missing in %s: event %s sent by %s at %s%s\n",
			    y->label, id, x->label, t,
			    s_recs_find(&x->rcpts, s->id) ? " (the sender "
			    "holds a receipt for it)" : " (no receipt either: "
			    "in flight or lost)");
			n++;
			continue;
		}
		if (s->has_env != r->has_env || (s->has_env &&
		    memcmp(s->env, r->env, 32) != 0)) {
			printf("envelope digest differs for event %s: %s sent "
			    "%s, %s received %s\n", id, x->label,
			    s_digest(s->has_env, s->env, a), y->label,
			    s_digest(r->has_env, r->env, b));
			n++;
		}
		n += s_match_claims(x, y, &s->cl, &r->cl, id);
		n += s_match_receipt(x, y, r, id);
	}
	for (i = 0; i < y->recvs.n; i++) {
		r = &y->recvs.a[i];
		if (s_recs_find(&x->sends, r->id) != NULL)
			continue;
		kp_uuid_format(r->id, id);
		kp_time_format(r->time_ms, t);
		printf("missing in %s: event %s received by %s at %s\n",
		    x->label, id, y->label, t);
		(*events)++;
		n++;
	}
	for (i = 0; i < x->rcpts.n; i++) {
		r = &x->rcpts.a[i];
		if (s_recs_find(&x->sends, r->id) != NULL ||
		    s_recs_find(&y->recvs, r->id) != NULL)
			continue;
		kp_uuid_format(r->id, id);
		printf("receipt without event: %s logged a receipt from %s "
		    "for event %s, which neither log shows sent\n", x->label,
		    y->label, id);
		n++;
	}
	return n;
}

static void
s_side_free(struct side *s)
{
	free(s->sends.a);
	free(s->recvs.a);
	free(s->rcpts.a);
	free(s->deads.a);
	auditsrc_close(&s->src);
}

static int
s_side_load(struct side *s)
{
	int rc = auditsrc_run(s->src, NULL, s_side_item, s);

	s_recs_sort(&s->sends);
	s_recs_sort(&s->recvs);
	s_recs_sort(&s->rcpts);
	s_recs_sort(&s->deads);
	return rc;
}

int
audit_cmd_reconcile(int argc, char **argv)
{
	struct side a = { .label = "A" }, b = { .label = "B" };
	size_t events = 0, bad;
	struct opts o;
	int rc;

	if ((rc = auditopt_parse(argc, argv, "reconcile", s_reconcile_help, 0, 2,
	    &o)) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = auditsrc_open(o.args[0], &a.src)) != 0 ||
	    (rc = auditsrc_open(o.args[1], &b.src)) != 0)
		goto out;
	if (strcmp(a.src->oin, b.src->oin) == 0) {
		rc = cli_usage_error("audit reconcile", "A and B are both logs "
		    "of %s; give two organisations' logs", a.src->oin);
		goto out;
	}
	a.other = b.src->oin;
	b.other = a.src->oin;
	if ((rc = s_side_load(&a)) != 0 || (rc = s_side_load(&b)) != 0)
		goto out;
	bad = s_reconcile_dir(&a, &b, &events);
	bad += s_reconcile_dir(&b, &a, &events);
	if (bad == 0) {
		printf("reconciled: %zu events, 0 discrepancies\n", events);
	} else {
		printf("%zu discrepanc%s in %zu events (A = %s, %s; B = %s, "
		    "%s)\n", bad, bad == 1 ? "y" : "ies", events, o.args[0],
		    a.src->oin, o.args[1], b.src->oin);
		rc = EXIT_REFUSED;
	}
out:
	s_side_free(&a);
	s_side_free(&b);
	return rc;
}
