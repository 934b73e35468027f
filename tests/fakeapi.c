/*
 * fakeapi.c: the fake daemon of the client tests (see fakeapi.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <zmq.h>

#include "common.h"
#include "fakeapi.h"

static void
s_fake_serve_one(struct fake *f)
{
	zmq_msg_t id, delim, body;
	int a;

	zmq_msg_init(&id);
	zmq_msg_init(&delim);
	zmq_msg_init(&body);
	if (zmq_msg_recv(&id, f->sock, 0) >= 0 &&
	    zmq_msg_recv(&delim, f->sock, 0) >= 0 &&
	    zmq_msg_recv(&body, f->sock, 0) >= 0) {
		if (f->n < FAKE_MAX) {
			f->req_len[f->n] = zmq_msg_size(&body);
			f->req[f->n] = malloc(f->req_len[f->n] + 1);
			memcpy(f->req[f->n], zmq_msg_data(&body),
			    f->req_len[f->n]);
		}
		a = f->n < f->answers ? f->n : f->answers - 1;
		f->n++;
		zmq_send(f->sock, zmq_msg_data(&id), zmq_msg_size(&id),
		    ZMQ_SNDMORE);
		zmq_send(f->sock, "", 0, ZMQ_SNDMORE);
		zmq_send(f->sock, f->answer[a], f->answer_len[a], 0);
	}
	zmq_msg_close(&body);
	zmq_msg_close(&delim);
	zmq_msg_close(&id);
}

static void *
s_fake_main(void *arg)
{
	struct fake *f = arg;
	zmq_pollitem_t it = { f->sock, 0, ZMQ_POLLIN, 0 };

	while (!atomic_load(&f->stop))
		if (zmq_poll(&it, 1, 20) > 0 && (it.revents & ZMQ_POLLIN))
			s_fake_serve_one(f);
	return NULL;
}

/* Add one canned answer (before the server starts). */
static void
s_fake_answer(struct fake *f, const void *answer, size_t len)
{
	cr_assert(f->answers < FAKE_ANSWERS, "too many canned answers");
	f->answer[f->answers] = malloc(len + 1);
	memcpy(f->answer[f->answers], answer, len);
	f->answer_len[f->answers++] = len;
}

static void
s_fake_answer_msg(struct fake *f, const Kp__Response *r)
{
	size_t len = kp__response__get_packed_size(r);
	uint8_t *buf = malloc(len + 1);

	kp__response__pack(r, buf);
	s_fake_answer(f, buf, len);
	free(buf);
}

static void
s_fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	test_tmpdir(f->dir, sizeof(f->dir));
	snprintf(f->endpoint, sizeof(f->endpoint), "ipc://%s/api.sock",
	    f->dir);
}

static void
s_fake_run(struct fake *f)
{
	int linger = 0;

	f->ctx = zmq_ctx_new();
	f->sock = zmq_socket(f->ctx, ZMQ_ROUTER);
	cr_assert(f->sock != NULL);
	zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof(linger));
	cr_assert(zmq_bind(f->sock, f->endpoint) == 0, "bind %s: %s",
	    f->endpoint, zmq_strerror(zmq_errno()));
	cr_assert(pthread_create(&f->thread, NULL, s_fake_main, f) == 0);
}

void
fake_start_raw(struct fake *f, const void *answer, size_t len)
{
	s_fake_init(f);
	s_fake_answer(f, answer, len);
	s_fake_run(f);
}

void
fake_start(struct fake *f, const Kp__Response *r)
{
	fake_start_seq(f, &r, 1);
}

void
fake_start_seq(struct fake *f, const Kp__Response *const *rs, int n)
{
	int i;

	s_fake_init(f);
	for (i = 0; i < n; i++)
		s_fake_answer_msg(f, rs[i]);
	s_fake_run(f);
}

void
fake_stop(struct fake *f)
{
	int i;

	atomic_store(&f->stop, 1);
	pthread_join(f->thread, NULL);
	zmq_close(f->sock);
	zmq_ctx_term(f->ctx);
	for (i = 0; i < f->answers; i++)
		free(f->answer[i]);
}

void
fake_free(struct fake *f)
{
	int i;

	for (i = 0; i < f->n && i < FAKE_MAX; i++)
		free(f->req[i]);
	test_sh("rm -rf '%s'", f->dir);
}

Kp__Request *
fake_request(const struct fake *f, int i)
{
	Kp__Request *r;

	cr_assert(i < f->n, "the fake daemon got %d requests, not %d", f->n,
	    i + 1);
	r = kp__request__unpack(NULL, f->req_len[i], f->req[i]);
	cr_assert(r != NULL, "request %d does not unpack", i);
	return r;
}

int
client_run(char *out, size_t len, const char *fmt, ...)
{
	char args[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return test_sh_output(out, len, "env -u KETENPOST_API -u "
	    "KETENPOST_CONFIG %s/ketenpost %s", test_bin(), args);
}

int
fake_serve_run(struct fake *f, const Kp__Response *r, char *out, size_t len,
    const char *fmt, ...)
{
	char args[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	fake_start(f, r);
	rc = client_run(out, len, "%s --api %s", args, f->endpoint);
	fake_stop(f);
	return rc;
}

json_t *
client_json_out(int rc, const char *out)
{
	json_error_t je;
	json_t *j;

	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	j = json_loads(out, 0, &je);
	cr_assert(j != NULL, "not JSON: %s (%s)", out, je.text);
	return j;
}

const char *
client_jstr(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	cr_assert(v != NULL, "no string member '%s'", key);
	return v;
}
