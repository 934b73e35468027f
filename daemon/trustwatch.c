/*
 * trustwatch.c: freshness of the daemon's trust material.
 *
 * Owns the watch over the times at which the loaded chain changes meaning:
 * the CRL's nextUpdate, the CA's, the own and every partner's notAfter.
 * Before each it warns (log, and `ketenpost status` through
 * kpd_trust_warnings) once the expiry_warning threshold is reached, again
 * at most once a day; when one passes it asks for a reload (an expired
 * partner is then dropped and refused by the normal verification).
 *
 * A CRL past its nextUpdate makes the trust stale: the chain is still
 * loaded (TRUST_STALE_CRL_OK, revocations in the old CRL still apply), but
 * the daemon fails closed for every partner the CRL vouches for, i.e. all
 * of them: it neither listens nor opens outbound links (main.c), so
 * partners' connections are refused and retried by them, its own events
 * stay queued, and status says why (ZAP also refuses, should a connection
 * get through).  A listener is closed rather than ZAP-refusing, because
 * libzmq never reconnects after a refused handshake.  It resumes
 * by itself when a fresh CRL arrives (a newer bundle or a SIGHUP).  This
 * module never decides trust in a partner: lib/identity.c does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "log.h"

#define S_DAY_MS (24ULL * 3600 * 1000)

struct kpd_trustwatch {
	const chain_t *chain;    /* the chain the times below are for */
	int64_t next_s;          /* next time that passes (0: none) */
	uint64_t next_warn_ms;   /* when to log the warnings again */
	bool stale_logged;
};

/* The wall clock, as OpenSSL's certificate and CRL checks use it (not
 * kp_now_ms(), which tests and simyear may move forward). */
static int64_t
s_now_s(void)
{
	return (int64_t)time(NULL);
}

static void
s_stamp(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

bool
kpd_trust_stale(const kpd_t *d)
{
	int64_t next;

	if (d->chain == NULL)
		return false;
	next = trust_crl_next_update(d->chain->trust);
	return next != 0 && s_now_s() >= next;
}

/* The earliest of the chain's times that is still in the future. */
int64_t
kpd_trust_next_s(const chain_t *ch, int64_t now)
{
	int64_t t[3], best = 0, v;
	size_t i;

	t[0] = trust_crl_next_update(ch->trust);
	t[1] = trust_ca_not_after(ch->trust);
	t[2] = partner_not_after(identity_public(ch->self));
	for (i = 0; i < 3; i++)
		if (t[i] > now && (best == 0 || t[i] < best))
			best = t[i];
	/* every certificate of a partner: during a renewal's overlap the
	 * previous one expires first, and its key must stop working then */
	for (i = 0; i < directory_count(ch->dir); i++) {
		const peer_t *p = directory_at(ch->dir, i);
		size_t c;

		for (c = 0; c < peer_cert_count(p); c++) {
			v = partner_not_after(peer_cert(p, c));
			if (v > now && (best == 0 || v < best))
				best = v;
		}
	}
	return best;
}

/* One warning line about `what` expiring at t, if within the threshold. */
static int
s_line(const kpd_t *d, const char *what, int64_t t, const char *todo,
    char *buf, size_t len)
{
	int64_t now = s_now_s(), left = t - now;
	char when[32];

	if (t == 0 || left * 1000 > (int64_t)d->cfg.expiry_warning_ms)
		return 0;
	s_stamp(t, when, sizeof(when));
	if (left <= 0)
		snprintf(buf, len, "%s expired at %s; %s", what, when, todo);
	else
		snprintf(buf, len, "%s expires at %s (in %lld h); %s", what, when,
		    (long long)(left / 3600), todo);
	return 1;
}

size_t
kpd_trust_warnings(const kpd_t *d, char lines[][KPD_TRUST_LINE],
    size_t max)
{
	const chain_t *ch = d->chain;
	const partner_t *p;
	char what[80];
	size_t n = 0, i;

	if (ch == NULL)
		return 0;
	if (n < max && kpd_trust_stale(d))
		snprintf(lines[n++], KPD_TRUST_LINE, "trust is stale: the CRL "
		    "is past its nextUpdate, so exchanges with every partner "
		    "are refused (inbound) and held (outbound) until a fresh "
		    "CRL arrives; ask the chain CA to run ketenpost-certs crl "
		    "and install the new bundle");
	else if (n < max)
		n += (size_t)s_line(d, "the CRL", trust_crl_next_update(ch->trust),
		    "ask the chain CA to run ketenpost-certs crl (routinely: "
		    "ketenpost-crl.timer)", lines[n], KPD_TRUST_LINE);
	if (n < max)
		n += (size_t)s_line(d, "the chain CA certificate",
		    trust_ca_not_after(ch->trust), "the chain CA must make a new "
		    "CA and every organisation pin it", lines[n],
		    KPD_TRUST_LINE);
	if (n < max)
		n += (size_t)s_line(d, "this organisation's certificate",
		    partner_not_after(identity_public(ch->self)), "renew it: "
		    "ketenpost-certs renew, then sign --renew at the CA",
		    lines[n], KPD_TRUST_LINE);
	for (i = 0; i < directory_count(ch->dir) && n < max; i++) {
		p = peer_partner(directory_at(ch->dir, i));
		if (p == identity_public(ch->self) ||
		    !strcmp(partner_oin(p), partner_oin(identity_public(ch->self))))
			continue;
		snprintf(what, sizeof(what), "partner %s's certificate",
		    partner_oin(p));
		n += (size_t)s_line(d, what, partner_not_after(p), "that partner "
		    "must renew it", lines[n], KPD_TRUST_LINE);
	}
	return n;
}

static void
s_log_warnings(const kpd_t *d)
{
	char lines[16][KPD_TRUST_LINE];
	size_t n = kpd_trust_warnings(d, lines, 16), i;

	for (i = 0; i < n; i++)
		log_warnx("trust: %s", lines[i]);
}

bool
kpd_trust_tick(kpd_t *d)
{
	struct kpd_trustwatch *w = d->trustwatch;
	uint64_t now_ms = (uint64_t)s_now_s() * 1000;
	bool stale;

	if (d->chain == NULL)
		return false;
	if (w == NULL && (w = d->trustwatch = calloc(1, sizeof(*w))) == NULL)
		return false;
	if (w->chain != d->chain) {  /* a new chain: new times, warn now */
		w->chain = d->chain;
		w->next_s = kpd_trust_next_s(d->chain, s_now_s());
		w->next_warn_ms = 0;
		w->stale_logged = false;
	}
	stale = kpd_trust_stale(d);
	if (stale && !w->stale_logged)
		log_warnx("trust: the CRL is past its nextUpdate: refusing "
		    "inbound and holding outbound events for every partner "
		    "until a fresh CRL arrives");
	w->stale_logged = stale;
	if (now_ms >= w->next_warn_ms) {
		s_log_warnings(d);
		w->next_warn_ms = now_ms + S_DAY_MS;
	}
	if (w->next_s != 0 && s_now_s() >= w->next_s) {
		w->chain = NULL;  /* recompute after the reload */
		return true;
	}
	return false;
}

void
kpd_trust_stop(kpd_t *d)
{
	free(d->trustwatch);
	d->trustwatch = NULL;
}
