/*
 * fakeapi.h: a fake ketenpostd for the client tests: a ZMQ_ROUTER in a
 * thread of the test, bound to an ipc:// endpoint in a fresh folder, that
 * answers the requests with canned kp.Responses (request i gets answer i,
 * the last answer repeating) and records the requests it got.  So each
 * test checks both sides of the contract: the bytes the real `ketenpost`
 * sends and what it prints.
 */
#ifndef KP_TEST_FAKEAPI_H
#define KP_TEST_FAKEAPI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api.pb-c.h"

#define FAKE_MAX 8                     /* requests recorded */
#define FAKE_ANSWERS 4                 /* canned answers */

struct fake {
	char dir[512];
	char endpoint[600];
	void *ctx, *sock;
	uint8_t *answer[FAKE_ANSWERS]; /* the canned Responses, packed */
	size_t answer_len[FAKE_ANSWERS];
	int answers;
	int n;                         /* requests received */
	uint8_t *req[FAKE_MAX];
	size_t req_len[FAKE_MAX];
	atomic_int stop;
	pthread_t thread;
};

/* Start serving the raw bytes answer to every request. */
void fake_start_raw(struct fake *f, const void *answer, size_t len);
/* Start serving r to every request. */
void fake_start(struct fake *f, const Kp__Response *r);
/* Start serving rs[i] to request i, rs[n - 1] to the later ones. */
void fake_start_seq(struct fake *f, const Kp__Response *const *rs, int n);
/* Stop the server; the recorded requests stay for the asserts. */
void fake_stop(struct fake *f);
/* Free the recorded requests and remove the folder. */
void fake_free(struct fake *f);
/* Request number i, unpacked (free with kp__request__free_unpacked). */
Kp__Request *fake_request(const struct fake *f, int i);

/* Run `ketenpost ARGS` (a shell fragment); stdout+stderr into out. */
int client_run(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Serve the canned answer r, run `ketenpost ARGS --api ENDPOINT`, stop the
 * server.  Returns the exit status; f keeps the requests (fake_free).
 */
int fake_serve_run(struct fake *f, const Kp__Response *r, char *out,
    size_t len, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The output of a successful run, parsed (caller json_decref's it). */
json_t *client_json_out(int rc, const char *out);
/* A string member of o; asserts that it is there. */
const char *client_jstr(const json_t *o, const char *key);

#endif
