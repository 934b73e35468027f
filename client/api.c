/*
 * api.c: the client side of ketenpostd's local API, one request at a time
 * over a ZMQ_REQ socket (see api.h).
 *
 * This module moves bytes and checks the answer's framing; it never
 * interprets requests or results (that is the commands' business) and
 * never waits without a bound: every send and receive has the caller's
 * timeout, and linger is 0, so a missing daemon costs exactly one timeout
 * and never a hang at exit.
 *
 * The answer is peer input: it must be one frame of at most
 * API_MAX_RESPONSE bytes (ZMQ_MAXMSGSIZE drops larger ones before they are
 * buffered) that unpacks as a kp.Response.  Unknown fields are tolerated
 * so that an older client keeps working with a newer daemon.  The daemon's
 * error text is made printable before it reaches the terminal.
 *
 * A tcp:// API is CURVE-encrypted and authenticated (the daemon refuses a
 * tcp:// API otherwise): the client's key pair comes from the file named
 * by $KETENPOST_API_KEY (two lines: public key, secret key, Z85; mode
 * 0600) and the daemon's server key (its transport key, which it logs at
 * start) from $KETENPOST_API_SERVER_KEY.
 *
 * REQ rather than DEALER: the client has exactly one request in flight,
 * and REQ's strict send/receive alternation is what we want; the rejected
 * alternative (DEALER with an empty delimiter) only pays off when
 * pipelining, which the daemon supports for integrators.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <zmq.h>

#include "api.h"
#include "util.h"

struct api_client {
	void *ctx;
	void *sock;
	char endpoint[4200];          /* as given, for messages */
	int timeout_ms;
	int dir_fd;                   /* kp_ipc_address's, or -1 */
};

static int
s_setopt_int(void *sock, int opt, int value)
{
	return zmq_setsockopt(sock, opt, &value, sizeof(value));
}

static int
s_configure(api_client_t *c)
{
	int64_t maxmsg = API_MAX_RESPONSE;

	if (s_setopt_int(c->sock, ZMQ_LINGER, 0) != 0 ||
	    s_setopt_int(c->sock, ZMQ_RCVTIMEO, c->timeout_ms) != 0 ||
	    s_setopt_int(c->sock, ZMQ_SNDTIMEO, c->timeout_ms) != 0 ||
	    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg,
	    sizeof(maxmsg)) != 0)
		return -1;
	return 0;
}

/* The client key file: "PUBLIC\nSECRET\n" in Z85.  OUT: pk, sk. */
static int
s_key_file(const char *path, char pk[41], char sk[41], kp_err_t *err)
{
	char line[2][128];
	struct stat sb;
	FILE *f;
	int ok;

	if ((f = fopen(path, "r")) == NULL)
		return kp_fail(err, KP_ERR_IO, "KETENPOST_API_KEY %s: %s", path,
		    strerror(errno));
	if (fstat(fileno(f), &sb) != 0 || (sb.st_mode & 077) != 0) {
		fclose(f);
		return kp_fail(err, KP_ERR_KEY_FILE_MODE, "KETENPOST_API_KEY "
		    "%s: readable by group or others (chmod 600 it)", path);
	}
	ok = fgets(line[0], sizeof(line[0]), f) != NULL &&
	    fgets(line[1], sizeof(line[1]), f) != NULL &&
	    strcspn(line[0], "\n") == 40 && strcspn(line[1], "\n") == 40;
	fclose(f);
	if (ok) {
		memcpy(pk, line[0], 40);
		memcpy(sk, line[1], 40);
		pk[40] = sk[40] = '\0';
	}
	explicit_bzero(line, sizeof(line));
	return ok ? 0 : kp_fail(err, KP_ERR_KEY_INVALID, "KETENPOST_API_KEY "
	    "%s: not two lines of 40 Z85 characters (make one with "
	    "`ketenpost api-key FILE`)", path);
}

/* CURVE for a tcp:// endpoint (see the top of this file). */
static int
s_curve(api_client_t *c, kp_err_t *err)
{
	const char *file = getenv("KETENPOST_API_KEY");
	const char *server = getenv("KETENPOST_API_SERVER_KEY");
	char pk[41], sk[41];
	int rc;

	if (strncmp(c->endpoint, "tcp://", 6) != 0)
		return 0;
	if (file == NULL || server == NULL || strlen(server) != 40)
		return kp_fail(err, KP_ERR_INVALID_ARG, "a tcp:// API needs "
		    "CURVE: set KETENPOST_API_KEY (the client's key file) and "
		    "KETENPOST_API_SERVER_KEY (the daemon's key, Z85)");
	if (s_key_file(file, pk, sk, err) != 0)
		return -1;
	rc = zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server, 40) != 0 ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pk, 40) != 0 ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, sk, 40) != 0 ? -1 : 0;
	explicit_bzero(sk, sizeof(sk));
	return rc == 0 ? 0 : kp_fail(err, KP_ERR_KEY_INVALID, "CURVE keys "
	    "refused by ZeroMQ: %s", zmq_strerror(errno));
}

api_client_t *
api_connect(const char *endpoint, int timeout_ms, kp_err_t *err)
{
	api_client_t *c;
	char addr[600];

	if (timeout_ms <= 0 || strlen(endpoint) >= sizeof(c->endpoint)) {
		kp_fail(err, KP_ERR_INVALID_ARG, "unusable API endpoint or "
		    "timeout");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		kp_fail(err, KP_ERR_NOMEM, "out of memory");
		return NULL;
	}
	snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
	c->timeout_ms = timeout_ms;
	c->dir_fd = -1;
	if (kp_ipc_address(endpoint, addr, sizeof(addr), &c->dir_fd) != 0) {
		kp_fail(err, KP_ERR_IO, "cannot reach the daemon's socket %s: "
		    "%s", endpoint, strerror(errno));
		goto fail;
	}
	if ((c->ctx = zmq_ctx_new()) == NULL ||
	    (c->sock = zmq_socket(c->ctx, ZMQ_REQ)) == NULL ||
	    s_configure(c) != 0) {
		kp_fail(err, KP_ERR_IO, "ZeroMQ: %s", zmq_strerror(errno));
		goto fail;
	}
	if (s_curve(c, err) != 0)
		goto fail;
	if (zmq_connect(c->sock, addr) != 0) {
		kp_fail(err, KP_ERR_IO, "cannot connect to the daemon at '%s': "
		    "%s", endpoint, zmq_strerror(errno));
		goto fail;
	}
	return c;
fail:
	api_destroy(&c);
	return NULL;
}

void
api_destroy(api_client_t **self_p)
{
	api_client_t *c;
	int saved = errno;

	if (self_p == NULL || (c = *self_p) == NULL)
		return;
	if (c->sock != NULL)
		zmq_close(c->sock);
	if (c->ctx != NULL)
		zmq_ctx_term(c->ctx);
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	free(c);
	*self_p = NULL;
	errno = saved;
}

static int
s_io_error(const api_client_t *c, kp_err_t *err)
{
	if (errno == EAGAIN)
		return kp_fail(err, KP_ERR_IO, "no answer from the daemon at %s "
		    "within %d s", c->endpoint, (c->timeout_ms + 999) / 1000);
	return kp_fail(err, KP_ERR_IO, "talking to the daemon at %s: %s",
	    c->endpoint, zmq_strerror(errno));
}

static int
s_send(api_client_t *c, const Kp__Request *req, kp_err_t *err)
{
	size_t len = kp__request__get_packed_size(req);
	uint8_t *buf = malloc(len + 1);
	int rc;

	if (buf == NULL)
		return kp_fail(err, KP_ERR_NOMEM, "out of memory");
	kp__request__pack(req, buf);
	rc = zmq_send(c->sock, buf, len, 0);
	free(buf);
	return rc < 0 ? s_io_error(c, err) : 0;
}

/* The daemon's text, one printable line, into buf. */
static void
s_printable(const char *text, const char *fallback, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "%s", text != NULL && *text != '\0' ? text :
	    fallback);
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
}

static int
s_refusal(const Kp__Response *r, kp_err_t *err)
{
	char msg[200], code[64];

	s_printable(r->error, "the daemon refused the request", msg,
	    sizeof(msg));
	s_printable(r->error_code, "no_error_code", code, sizeof(code));
	return kp_fail(err, KP_ERR_INVALID_ARG, "%s (%s)", msg, code);
}

static int
s_receive(api_client_t *c, Kp__Response **out, kp_err_t *err)
{
	zmq_msg_t m;
	int more = 0, rc = -1;
	size_t more_len = sizeof(more);

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, c->sock, 0) < 0) {
		rc = s_io_error(c, err);
		goto out;
	}
	if (zmq_getsockopt(c->sock, ZMQ_RCVMORE, &more, &more_len) != 0 ||
	    more) {
		kp_fail(err, KP_ERR_MALFORMED, "the daemon at %s answered with "
		    "more than one frame", c->endpoint);
		goto out;
	}
	*out = kp__response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
	if (*out == NULL) {
		kp_fail(err, KP_ERR_MALFORMED, "the daemon at %s sent an answer "
		    "that is not a kp.Response (%zu bytes)", c->endpoint,
		    zmq_msg_size(&m));
		goto out;
	}
	rc = 0;
out:
	zmq_msg_close(&m);
	return rc;
}

int
api_call(api_client_t *c, const Kp__Request *req, Kp__Response **out,
    kp_err_t *err)
{
	*out = NULL;
	if (s_send(c, req, err) != 0 || s_receive(c, out, err) != 0)
		return -1;
	if (!(*out)->has_ok || !(*out)->ok) {
		s_refusal(*out, err);
		kp__response__free_unpacked(*out, NULL);
		*out = NULL;
		return -1;
	}
	return 0;
}
