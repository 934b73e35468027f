/*
 * zap.c: the ZAP handler (ZeroMQ RFC 27) that makes CURVE authenticate.
 *
 * Without a handler a CURVE server accepts every client key (libzmq
 * #2594), so this module is what keeps strangers out.  It admits:
 *   - on domain "ketenpost", mechanism CURVE: a client key equal to the
 *     transport key of any valid certificate of a partner (chain, CRL,
 *     validity; after a renewal the old and the new one, until the old
 *     one expires or is revoked); the reply's User-Id is that OIN, which
 *     inbound.c reads from every message (zmq_msg_gets "User-Id");
 *   - on domain "ketenpost-api": a local API client with at least one
 *     role (access.c): on ipc:// (mechanism NULL) by the uid and gid the
 *     kernel reports for the connecting process (libzmq appends them to
 *     the ZAP Address as ":UID:GID:PID"); on tcp:// (mechanism CURVE) by
 *     its client key.  The User-Id carries identity and roles to apisrv.c.
 * Everything else gets 400 and one log line with the reason.  Keys are
 * compared in constant time; no credential is ever logged (a refused key
 * is logged by its BLAKE2b fingerprint).  Peer input is never asserted on.
 * Refusals are logged rate-limited (s_refused): a flood of strangers must
 * not turn into a flood of log lines.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "access.h"
#include "daemon.h"
#include "log.h"

#define ZAP_FRAMES_MAX 8
#define ZAP_FRAME_MAX 256

struct zap_req {
	char version[8];
	uint8_t request_id[ZAP_FRAME_MAX];
	size_t request_id_len;
	char domain[ZAP_FRAME_MAX];
	char address[ZAP_FRAME_MAX];
	char mechanism[16];
	uint8_t key[32];
	size_t n_frames;
};

/* One refusal line, rate-limited with the count of those held back. */
static void __attribute__((format(printf, 2, 3)))
s_refused(kpd_t *d, const char *fmt, ...)
{
	char line[768], note[64];
	uint64_t sup;
	va_list ap;

	if (!kpd_log_ok(d->rl_zap, &sup))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warnx("%s%s", line, ratelimit_note(sup, note, sizeof(note)));
}

/* Copy frame i into buf (NUL-terminated if text). */
static void
s_frame_text(zmq_msg_t *m, char *buf, size_t cap)
{
	size_t n = zmq_msg_size(m);

	if (n >= cap)
		n = cap - 1;
	memcpy(buf, zmq_msg_data(m), n);
	buf[n] = '\0';
}

/* Read all frames of one request (bounded); 0 / -1 for a bad request. */
static int
s_read(void *sock, struct zap_req *r)
{
	zmq_msg_t m;
	int more = 1, ok = 1;
	size_t i = 0, n;

	memset(r, 0, sizeof(*r));
	while (more) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) < 0) {
			zmq_msg_close(&m);
			return -1;
		}
		more = zmq_msg_more(&m);
		n = zmq_msg_size(&m);
		if (i == 0)
			s_frame_text(&m, r->version, sizeof(r->version));
		else if (i == 1 && n <= sizeof(r->request_id)) {
			memcpy(r->request_id, zmq_msg_data(&m), n);
			r->request_id_len = n;
		} else if (i == 2)
			s_frame_text(&m, r->domain, sizeof(r->domain));
		else if (i == 3)
			s_frame_text(&m, r->address, sizeof(r->address));
		else if (i == 5)
			s_frame_text(&m, r->mechanism, sizeof(r->mechanism));
		else if (i == 6 && n == 32)
			memcpy(r->key, zmq_msg_data(&m), 32);
		else if (i == 6 || i >= ZAP_FRAMES_MAX)
			ok = 0;
		zmq_msg_close(&m);
		i++;
	}
	r->n_frames = i;
	return ok && i >= 6 ? 0 : -1;
}

static void
s_reply(void *sock, const struct zap_req *r, const char *status,
    const char *text, const char *user_id)
{
	zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(sock, r->request_id, r->request_id_len, ZMQ_SNDMORE);
	zmq_send(sock, status, strlen(status), ZMQ_SNDMORE);
	zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(sock, user_id, strlen(user_id), ZMQ_SNDMORE);
	zmq_send(sock, "", 0, 0);
}

/*
 * The verified partner with a certificate whose transport key is `key`,
 * or NULL.  Every valid certificate of an OIN counts: during a renewal's
 * overlap the partner connects with its old key until it switches, and
 * with the new one after, and both map to its OIN.
 */
static const partner_t *
s_partner_by_key(const directory_t *dir, const uint8_t key[32])
{
	const partner_t *found = NULL, *p;
	const peer_t *peer;
	size_t i, c;

	for (i = 0; i < directory_count(dir); i++) {
		peer = directory_at(dir, i);
		for (c = 0; c < peer_cert_count(peer); c++) {
			p = peer_cert(peer, c);
			if (sodium_memcmp(partner_transport_pk(p), key, 32) == 0)
				found = peer_partner(peer);
		}
	}
	return found;
}

static void
s_fingerprint(const uint8_t key[32], char out[17])
{
	uint8_t fp[8];

	if (crypto_generichash(fp, sizeof(fp), key, 32, NULL, 0) != 0)
		memset(fp, 0, sizeof(fp));
	kp_hex(fp, sizeof(fp), out);
}

static void
s_curve(kpd_t *d, const struct zap_req *r)
{
	const partner_t *p;
	char fp[17];

	if (strcmp(r->mechanism, "CURVE") != 0 || r->n_frames != 7) {
		s_refused(d, "zap: refused connection from %s: mechanism %s is "
		    "not CURVE", r->address, r->mechanism);
		s_reply(d->zap, r, "400", "CURVE required", "");
		return;
	}
	p = s_partner_by_key(d->chain->dir, r->key);
	if (p == NULL) {
		s_fingerprint(r->key, fp);
		s_refused(d, "zap: refused connection from %s: client key %s is "
		    "not the transport key of any verified partner "
		    "(unknown, expired or revoked)", r->address, fp);
		s_reply(d->zap, r, "400", "unknown client key", "");
		return;
	}
	if (partner_role(p) == KP_ROLE_AUDITOR) {
		s_refused(d, "zap: refused connection from %s: %s has role auditor",
		    r->address, partner_oin(p));
		s_reply(d->zap, r, "400", "auditors send nothing", "");
		return;
	}
	if (kpd_trust_stale(d)) {  /* fail closed: trustwatch.c */
		log_warnx("zap: refused connection from %s (%s): the CRL is "
		    "stale; waiting for a fresh one", r->address, partner_oin(p));
		s_reply(d->zap, r, "400", "trust material stale", "");
		return;
	}
	log_debug("zap: admitted %s (%s) from %s", partner_oin(p),
	    partner_name(p), r->address);
	s_reply(d->zap, r, "200", "OK", partner_oin(p));
}

/* "...:UID:GID:PID" at the end of an ipc:// ZAP Address.  0 / -1. */
static int
s_peer_creds(const char *address, uid_t *uid, gid_t *gid)
{
	unsigned long u, g;
	const char *p = address + strlen(address);
	int colons = 0;

	while (p > address && colons < 3)
		if (*--p == ':')
			colons++;
	if (colons != 3 || sscanf(p, ":%lu:%lu:", &u, &g) != 2)
		return -1;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

/* A local API client: admitted with its roles, or refused. */
static void
s_api(kpd_t *d, const struct zap_req *r)
{
	char who[ACCESS_ID_MAX], user_id[ACCESS_ID_MAX + 16], fp[17];
	unsigned roles = 0;
	uid_t uid;
	gid_t gid;

	if (strcmp(r->mechanism, "NULL") == 0 &&
	    s_peer_creds(r->address, &uid, &gid) == 0) {
		snprintf(who, sizeof(who), "uid:%lu", (unsigned long)uid);
		roles = access_roles_for_creds(&d->cfg, uid, gid);
	} else if (strcmp(r->mechanism, "CURVE") == 0 && r->n_frames == 7) {
		s_fingerprint(r->key, fp);
		snprintf(who, sizeof(who), "key:%s", fp);
		roles = access_roles_for_key(&d->cfg, r->key);
	} else {
		s_refused(d, "zap: API connection refused: no peer credentials "
		    "and no CURVE key (mechanism %s)", r->mechanism);
		s_reply(d->zap, r, "400", "unidentified client", "");
		return;
	}
	if (roles == 0 || access_user_id(who, roles, user_id,
	    sizeof(user_id)) != 0) {
		s_refused(d, "zap: API connection of %s refused: no role in "
		    "[api] allow", who);
		s_reply(d->zap, r, "400", "no access", "");
		return;
	}
	s_reply(d->zap, r, "200", "OK", user_id);
}

void
zap_handle(kpd_t *d)
{
	struct zap_req r;

	if (s_read(d->zap, &r) != 0) {
		s_refused(d, "zap: malformed ZAP request (%zu frames) refused",
		    r.n_frames);
		s_reply(d->zap, &r, "500", "malformed request", "");
		return;
	}
	if (strcmp(r.version, "1.0") != 0) {
		s_reply(d->zap, &r, "500", "version not supported", "");
		return;
	}
	if (strcmp(r.domain, KPD_ZAP_DOMAIN) == 0) {
		s_curve(d, &r);
		return;
	}
	if (strcmp(r.domain, KPD_API_ZAP_DOMAIN) == 0) {
		s_api(d, &r);
		return;
	}
	s_refused(d, "zap: refused connection from %s: domain '%s', mechanism %s",
	    r.address, r.domain, r.mechanism);
	s_reply(d->zap, &r, "400", "no access", "");
}
