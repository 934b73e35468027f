/*
 * rest_tls.c: the REST API's TLS listener and its clients' identities
 * (rest_tls.h).
 *
 * libmicrohttpd (GnuTLS) serves TLS with the server's certificate and
 * key and, given the client CA (MHD_OPTION_HTTPS_MEM_TRUST), asks the
 * client for a certificate, but only asks: it lets a client without one,
 * or with one of another CA, finish the handshake.  So each new
 * connection's session is told, before its handshake, to require a
 * certificate and to verify it against the CA (s_on_connection); a
 * client without a certificate of the CA never gets to send a request.
 * The request path checks it again (rest_tls_identify) instead of
 * trusting that the first step ran.
 *
 * Which certificates may use the API, and with which roles, is the
 * [api] allow list (access.c), by SHA-256 fingerprint: a fingerprint pins
 * one certificate, where a subject name would admit any certificate the
 * CA issues, now or later, under that name.
 *
 * This module must never grant a role from anything but a verified
 * certificate, never log or keep the server's key outside the wiped
 * buffer it is loaded into, and serves no request itself (rest.c does).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>

#include "access.h"
#include "log.h"
#include "rest_tls.h"
#include "util.h"

#define S_PEM_MAX (256 * 1024)
#define S_CONN_LIMIT 64
#define S_CONN_TIMEOUT_S 90
/* TLS 1.2 and 1.3 only (NCSC ICT-beveiligingsrichtlijnen voor TLS). */
#define S_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct rest_tls {
	struct MHD_Daemon *mhd;
	char *cert, *ca;              /* PEM, NUL-terminated */
	char *key;                    /* PEM, sodium_malloc'd, wiped */
	size_t key_len;
};

/* A PEM file as a NUL-terminated string.  OUT: *pem (malloc'd). */
static int
s_read_pem(const char *what, const char *path, char **pem, kp_err_t *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	*pem = NULL;
	if (kp_read_file(path, S_PEM_MAX, &buf, &len) != 0)
		return kp_fail(err, KP_ERR_IO, "rest: cannot read %s %s: %s",
		    what, path, strerror(errno));
	if (len == 0 || strstr((char *)buf, "-----BEGIN ") == NULL) {
		free(buf);
		return kp_fail(err, KP_ERR_INVALID_ARG, "rest: %s %s is not a "
		    "PEM file", what, path);
	}
	*pem = (char *)buf;
	return 0;
}

/* The server's key, from a file only the daemon's user may read (style
 * rule 12), into wiped memory.  OUT: t->key, t->key_len. */
static int
s_read_key(rest_tls_t *t, const char *path, kp_err_t *err)
{
	struct stat st;
	ssize_t n;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return kp_fail(err, KP_ERR_IO, "rest: cannot open tls_key %s: "
		    "%s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > S_PEM_MAX) {
		kp_fail(err, KP_ERR_IO, "rest: tls_key %s is not a key file",
		    path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		kp_fail(err, KP_ERR_KEY_FILE_MODE, "rest: tls_key %s has mode "
		    "%04o; it must not be accessible by group or others "
		    "(chmod 600)", path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	t->key_len = (size_t)st.st_size + 1;
	if ((t->key = sodium_malloc(t->key_len)) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "rest: out of memory");
		goto out;
	}
	n = read(fd, t->key, t->key_len - 1);
	if (n != st.st_size) {
		kp_fail(err, KP_ERR_IO, "rest: cannot read tls_key %s", path);
		goto out;
	}
	t->key[n] = '\0';
	rc = 0;
out:
	close(fd);
	return rc;
}

/* Before the handshake of each new connection: a certificate of the CA
 * is required (the handshake fails without one, or with another). */
static void
s_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t s;

	(void)cls;
	(void)socket_context;
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return;  /* rest_tls_identify refuses it */
	s = (gnutls_session_t)ci->tls_session;
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_cert(s, NULL, 0);
}

rest_tls_t *
rest_tls_start(const config_t *cfg, const struct rest_tls_handlers *h,
    kp_err_t *err)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG | MHD_USE_TLS;
	rest_tls_t *t = NULL;

	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		kp_fail(err, KP_ERR_INVALID_ARG, "rest: tls_listen: this "
		    "libmicrohttpd has no TLS support");
		return NULL;
	}
	if (kp_parse_host_port(cfg->rest_tls_listen, &sa, &salen) != 0) {
		kp_fail(err, KP_ERR_INVALID_ARG, "rest: tls_listen '%s' is "
		    "not ADDRESS:PORT", cfg->rest_tls_listen);
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "rest: out of memory");
		return NULL;
	}
	if (s_read_pem("tls_cert", cfg->rest_tls_cert, &t->cert, err) != 0 ||
	    s_read_pem("tls_client_ca", cfg->rest_tls_client_ca, &t->ca,
	    err) != 0 || s_read_key(t, cfg->rest_tls_key, err) != 0)
		goto fail;
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	t->mhd = MHD_start_daemon(flags, 0, NULL, NULL, h->access, h->cls,
	    MHD_OPTION_EXTERNAL_LOGGER, h->log, NULL,  /* first: MHD */
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_HTTPS_MEM_CERT, t->cert,
	    MHD_OPTION_HTTPS_MEM_KEY, t->key,
	    MHD_OPTION_HTTPS_MEM_TRUST, t->ca,
	    MHD_OPTION_HTTPS_PRIORITIES, S_PRIORITIES,
	    MHD_OPTION_NOTIFY_CONNECTION, s_on_connection, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, h->completed, h->cls,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)S_CONN_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)S_CONN_TIMEOUT_S,
	    MHD_OPTION_END);
	if (t->mhd == NULL) {
		kp_fail(err, KP_ERR_IO, "rest: cannot serve TLS on %s (the "
		    "address in use or not of this host, or tls_cert, tls_key "
		    "and tls_client_ca not a matching PEM certificate, key and "
		    "CA; see the lines above)", cfg->rest_tls_listen);
		goto fail;
	}
	log_info("rest: serving the REST API on https://%s (client "
	    "certificates of %s)", cfg->rest_tls_listen,
	    cfg->rest_tls_client_ca);
	return t;
fail:
	rest_tls_destroy(&t);
	return NULL;
}

void
rest_tls_destroy(rest_tls_t **self_p)
{
	rest_tls_t *t = self_p ? *self_p : NULL;

	if (t == NULL)
		return;
	if (t->mhd != NULL)
		MHD_stop_daemon(t->mhd);
	sodium_free(t->key);  /* wipes */
	free(t->cert);
	free(t->ca);
	free(t);
	*self_p = NULL;
}

struct MHD_Daemon *
rest_tls_mhd(const rest_tls_t *t)
{
	return t != NULL ? t->mhd : NULL;
}

/* The SHA-256 of the verified leaf certificate of session s.  -1: none,
 * or not verified against the client CA. */
static int
s_peer_fingerprint(gnutls_session_t s, uint8_t fp[32])
{
	const gnutls_datum_t *peers;
	unsigned n = 0, status = 1;
	size_t len = 32;

	if (gnutls_certificate_type_get(s) != GNUTLS_CRT_X509 ||
	    gnutls_certificate_verify_peers2(s, &status) != GNUTLS_E_SUCCESS ||
	    status != 0 || (peers = gnutls_certificate_get_peers(s, &n)) ==
	    NULL || n == 0)
		return -1;
	if (gnutls_fingerprint(GNUTLS_DIG_SHA256, &peers[0], fp, &len) !=
	    GNUTLS_E_SUCCESS || len != 32)
		return -1;
	return 0;
}

int
rest_tls_identify(struct MHD_Connection *c, const config_t *cfg,
    char *who, size_t wholen, char fp[96], unsigned *roles)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_GNUTLS_SESSION);
	uint8_t sha[32];
	char hex[65];
	size_t i;

	*roles = 0;
	if (ci == NULL || ci->tls_session == NULL ||
	    s_peer_fingerprint((gnutls_session_t)ci->tls_session, sha) != 0)
		return -1;
	kp_hex(sha, 32, hex);
	snprintf(who, wholen, "cert:%.16s", hex);
	for (i = 0; i < 32; i++) {  /* "ab:cd:...", as openssl prints it */
		fp[3 * i] = hex[2 * i];
		fp[3 * i + 1] = hex[2 * i + 1];
		fp[3 * i + 2] = i < 31 ? ':' : '\0';
	}
	*roles = access_roles_for_cert(cfg, sha);
	return 0;
}
