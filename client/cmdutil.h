/*
 * cmdutil.h: the steps every API command takes (see commands.c), shared
 * by commands.c, which defines them, and feedback.c.  Internal to the
 * client.
 */
#ifndef KP_CLIENT_CMDUTIL_H
#define KP_CLIENT_CMDUTIL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api.h"

/* The options every API command takes, closing its option table. */
#define CMD_API_OPTIONS \
	{ "api", 1, NULL, 'A' }, { "config", 1, NULL, 'C' }, \
	{ "timeout", 1, NULL, 'T' }, { "help", 0, NULL, 'h' }, \
	{ "purpose", 1, NULL, 'P' }, \
	{ NULL, 0, NULL, 0 }

/* One parsed command line of an API command. */
struct cmd_ctx {
	const char *cmd;               /* "send" */
	const char *api, *config;      /* --api, --config, or NULL */
	int timeout_ms;
	const char *purpose;           /* --purpose: why (audited reads) */
	int attempts;                  /* cmd_call tries; 0 is once (send: 3) */
	char **args;                   /* positional arguments (argv's) */
	int nargs;
};

/* How one command parses its command line. */
struct cmd_spec {
	const char *name;
	const char *help;
	const struct option *opts;     /* ends with CMD_API_OPTIONS */
	int (*opt)(void *args, int c, const char *arg, const char *cmd);
	int min_args, max_args;        /* positional; max_args -1: no limit */
	const char *args_usage;        /* the usage error when they are wrong */
};

/* Step 1: options (s->opt for the command's own) and positional
 * arguments.  0, or an exit status after the message; --help exits 0. */
int cmd_parse(const struct cmd_spec *s, int argc, char **argv,
    struct cmd_ctx *x, void *args);

/* Step 3: one request to the daemon.  0 with *r (free with
 * kp__response__free_unpacked) carrying result `want`, or no result at
 * all if empty_ok; otherwise an exit status after the message. */
int cmd_call(const struct cmd_ctx *x, const Kp__Request *req,
    Kp__Response__ResultCase want, bool empty_ok, Kp__Response **r);

/* The client's JSON form of an API message (new reference, or NULL):
 * pbjson's, with event_id and in_reply_to as UUID text and each *_at_ms
 * (*_until_ms, at_ms) followed by its ISO 8601 text. */
json_t *cmd_msg_json(const ProtobufCMessage *msg);
/* A 16-byte id in pbjson's hex form as UUID text; anything else as is. */
json_t *cmd_uuid_json(json_t *hex);
/* Beside "x_ms" (an integer ms): "x", its ISO 8601 UTC text. */
void cmd_add_time(json_t *o, const char *key, const json_t *ms);
/* Append item (consumed) to arr; on NULL drop arr.  Returns arr or NULL. */
json_t *cmd_push(json_t *arr, json_t *item);

/* For tables: a string member, "-" when absent or empty. */
const char *cmd_str(const json_t *o, const char *key);
/* An integer member as a count (0 when absent or negative). */
uint64_t cmd_u64(const json_t *o, const char *key);
/* A partner as people know it: partner_name, else partner_oin. */
const char *cmd_partner(const json_t *o);
/* For tables: an integer member as text into buf (else as cmd_str). */
const char *cmd_num(const json_t *o, const char *key, char *buf, size_t len);

#endif
