/*
 * rest.c: the REST/JSON API (rest.h), by the Dutch API Design Rules:
 * resources under /api/v1, standard methods and status codes, errors as
 * application/problem+json (RFC 9457) carrying the local API's error_code
 * and message, and its own OpenAPI document at /api/v1/openapi.json.
 *
 * It owns the HTTP side only.  It must never do what the local API does
 * (checks, storage, auditing): each request becomes one kp.Request, packed
 * and run by apisrv_execute() with the client's identity and roles, and
 * the kp.Response is printed with lib/apijson.c, the CLI's --json form.
 * A second implementation of any request would sooner or later differ
 * from the first in what it checks or audits.
 *
 * Threading: none, as in metrics.c.  libmicrohttpd runs in external mode
 * with epoll; its descriptor is polled by the daemon's loop (main.c),
 * which calls rest_run().  Handlers therefore use the daemon's store
 * without locks.
 *
 * Identity: the kernel's, never a header.  Each request's connection fd
 * is asked for SO_PEERCRED; access_roles_for_creds() gives the roles.
 * On the TLS listener (rest_tls.c) it is the verified client
 * certificate, and access_roles_for_cert() gives the roles.
 *
 * Long polls (?wait=N on GET /inbox, GET /outbox/{id} and GET
 * /cases?overdue=true): a request that finds nothing yet (no event; the
 * event still pending; nothing overdue) is suspended
 * (MHD_suspend_connection) on the waiter list, and resumed to run again
 * (s_access calls its handler anew) when
 *   1. rest_wake(): the loop saw traffic from a partner (an arrival, a
 *      receipt): what is there now is answered, else it waits again;
 *   2. its recheck time came (outbox and cases only: an event expires and
 *      an answer becomes overdue as time passes, with no traffic at all);
 *   3. its wait is over: answered with what there is (an empty list).
 * Nothing is polled while no request waits.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "access.h"
#include "api.pb-c.h"
#include "apijson.h"
#include "daemon.h"
#include "events.h"
#include "log.h"
#include "pbjson.h"
#include "reportfig.h"
#include "rest.h"
#include "rest_accept.h"
#include "rest_tls.h"
#include "util.h"
#include "webhook.h"

#define S_BODY_MAX (256 * 1024)      /* a JSON request body */
#define S_WAIT_MAX_S 60              /* longest long poll */
#define S_CONN_LIMIT 64
#define S_CONN_TIMEOUT_S 90
#define S_PREFIX "/api/v1"
/* The API's full version (Design Rules: in every answer's API-Version
 * header), equal to info.version of docs/openapi.json. */
#define S_API_VERSION "1.0.0"

/* The OpenAPI document, embedded at build time (cmake/embed.cmake). */
extern const char kp_openapi_json[];
extern const size_t kp_openapi_json_len;

struct rconn {
	struct MHD_Connection *c;
	char *body;
	size_t len, cap;
	bool too_big;
	uint64_t deadline_ms;         /* long poll: 0 = not waiting */
	uint64_t next_check_ms;       /* ... and look again then (0: only
	                               * when woken) */
	bool waiting;                 /* suspended, on rs->waiters */
	struct rconn *next;
};

struct rest {
	struct MHD_Daemon *mhd;       /* the Unix socket (NULL: listen = off) */
	rest_tls_t *tls;              /* tls_listen, or NULL */
	webhook_t *webhook;           /* [rest] webhook, or NULL */
	int epfd;                     /* the loop polls it: both servers'
	                               * epoll fds, the webhook's socket */
	struct kpd *d;
	struct rconn *waiters;
	char path[KP_PATH_MAX];       /* the socket file, unlinked at stop */
};

/* One request in progress: who asks, and the parts of its URL. */
struct call {
	rest_t *rs;
	struct rconn *rc;
	struct MHD_Connection *c;
	const char *method;
	char who[ACCESS_ID_MAX];
	unsigned roles;
	char seg[4][128];             /* path segments after /api/v1 */
	size_t nseg;
};

/* ---- answers ------------------------------------------------------- */

/* An answer body (NUL-terminated text) wiped before it is freed: it may
 * hold payload values, as the local API's answers do (atrest.c). */
static void
s_wipe_free(void *p)
{
	if (p != NULL)
		sodium_memzero(p, strlen(p));
	free(p);
}

static enum MHD_Result
s_send_text(struct MHD_Connection *c, unsigned status, char *body,
    const char *type, const char *hname, const char *hvalue)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (body == NULL)
		return MHD_NO;
	r = MHD_create_response_from_buffer_with_free_callback(strlen(body),
	    body, s_wipe_free);
	if (r == NULL) {
		s_wipe_free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (hname != NULL)
		MHD_add_response_header(r, hname, hvalue);
	MHD_add_response_header(r, "API-Version", S_API_VERSION);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* j (consumed) as the JSON body. */
static enum MHD_Result
s_send_json(struct MHD_Connection *c, unsigned status, json_t *j,
    const char *location)
{
	char *body = j != NULL ? json_dumps(j, JSON_COMPACT |
	    JSON_PRESERVE_ORDER) : NULL;

	json_decref(j);
	return s_send_text(c, status, body, "application/json", location ?
	    MHD_HTTP_HEADER_LOCATION : NULL, location);
}

static const char *
s_title(unsigned status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* An application/problem+json answer (RFC 9457) with the API's error
 * code as `code` and its message as `detail`. */
static enum MHD_Result
s_problem(struct MHD_Connection *c, unsigned status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result
s_problem(struct MHD_Connection *c, unsigned status, const char *code,
    const char *fmt, ...)
{
	char detail[KP_ERR_MSG_MAX], type[96], *body;
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(type, sizeof(type), "urn:ketenpost:problem:%s", code);
	j = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title",
	    s_title(status), "status", (int)status, "detail", detail, "code",
	    code);
	body = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) :
	    NULL;
	json_decref(j);
	return s_send_text(c, status, body, "application/problem+json", NULL,
	    NULL);
}

/* The HTTP status of an API error code. */
static unsigned
s_status_of(const char *code, bool missing_is_404)
{
	if (strcmp(code, "forbidden") == 0)
		return 403;
	if (strcmp(code, "idempotency_key_reused") == 0)
		return 409;
	if (strcmp(code, "oversize") == 0)
		return 413;
	if (strcmp(code, "io") == 0 || strcmp(code, "out_of_memory") == 0)
		return 503;
	if (missing_is_404 && strcmp(code, "invalid_argument") == 0)
		return 404;
	return 400;
}

/* ---- running a request through the local API ------------------------ */

/* req as the client of call; OUT: *resp.  A problem is answered here
 * (and -1 returned) when there is no answer to show. */
static int
s_exec(struct call *k, const Kp__Request *req, Kp__Response **resp)
{
	size_t n = kp__request__get_packed_size(req);
	uint8_t *buf = malloc(n + 1);
	int rc;

	*resp = NULL;
	if (buf == NULL)
		return -1;
	kp__request__pack(req, buf);
	rc = apisrv_execute(k->rs->d, k->who, k->roles, buf, n, resp);
	sodium_memzero(buf, n);  /* a send's payload */
	free(buf);
	return rc;
}

/* The message in resp's result oneof (NULL: none). */
static const ProtobufCMessage *
s_result(const Kp__Response *resp)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field(&kp__response__descriptor,
	    (unsigned)resp->result_case);

	if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return NULL;
	return *(ProtobufCMessage *const *)(const void *)((const char *)resp +
	    f->offset);
}

/* res in the CLI's JSON form, with every empty list as [] (the form
 * leaves absent fields out; an integrator should not need to tell "no
 * items" from "no such field").  New reference or NULL. */
static json_t *
s_result_json(const ProtobufCMessage *res)
{
	json_t *j = apijson_tree(res);
	const ProtobufCFieldDescriptor *f;
	unsigned i;

	for (i = 0; j != NULL && i < res->descriptor->n_fields; i++) {
		f = &res->descriptor->fields[i];
		if (f->label == PROTOBUF_C_LABEL_REPEATED &&
		    json_object_get(j, f->name) == NULL)
			json_object_set_new(j, f->name, json_array());
	}
	return j;
}

/* The problem answer of a refused request (resp->ok false). */
static enum MHD_Result
s_refused(struct call *k, const Kp__Response *resp, bool missing_is_404)
{
	const char *code = resp->error_code ? resp->error_code : "io";

	return s_problem(k->c, s_status_of(code, missing_is_404), code, "%s",
	    resp->error ? resp->error : "refused");
}

/* Run req and answer it: its result as JSON with ok_status, or its error
 * as a problem. */
static enum MHD_Result
s_run(struct call *k, const Kp__Request *req, unsigned ok_status,
    bool missing_is_404)
{
	Kp__Response *resp = NULL;
	const ProtobufCMessage *res;
	enum MHD_Result ret;

	if (s_exec(k, req, &resp) != 0)
		return s_problem(k->c, 503, "io", "the daemon could not run "
		    "the request (out of memory or the database is busy); "
		    "retry");
	if (!resp->ok)
		ret = s_refused(k, resp, missing_is_404);
	else if ((res = s_result(resp)) == NULL)
		ret = s_send_json(k->c, ok_status, json_object(), NULL);
	else
		ret = s_send_json(k->c, ok_status, s_result_json(res), NULL);
	kp__response__free_unpacked(resp, &atrest_allocator);
	return ret;
}

/* ---- query parameters ------------------------------------------------ */

/* An unsigned query parameter.  0 absent or valid (*has says which);
 * -1 after answering 400. */
static int
s_q_u64(struct call *k, const char *name, uint64_t max, uint64_t *v,
    protobuf_c_boolean *has, enum MHD_Result *ret)
{
	const char *s = MHD_lookup_connection_value(k->c,
	    MHD_GET_ARGUMENT_KIND, name);
	char *end;

	*has = 0;
	if (s == NULL)
		return 0;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || *v > max) {
		*ret = s_problem(k->c, 400, "invalid_argument", "query "
		    "parameter %s must be a whole number from 0 to %llu",
		    name, (unsigned long long)max);
		return -1;
	}
	*has = 1;
	return 0;
}

static int
s_q_bool(struct call *k, const char *name, protobuf_c_boolean *v,
    protobuf_c_boolean *has, enum MHD_Result *ret)
{
	const char *s = MHD_lookup_connection_value(k->c,
	    MHD_GET_ARGUMENT_KIND, name);

	*has = 0;
	if (s == NULL)
		return 0;
	if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0) {
		*ret = s_problem(k->c, 400, "invalid_argument", "query "
		    "parameter %s must be true or false", name);
		return -1;
	}
	*has = 1;
	*v = strcmp(s, "true") == 0;
	return 0;
}

/* An event id path segment (UUID text).  -1 after answering 400. */
static int
s_id(struct call *k, const char *text, uint8_t id[16],
    enum MHD_Result *ret)
{
	if (kp_uuid_parse(text, id) == 0)
		return 0;
	*ret = s_problem(k->c, 400, "invalid_argument", "'%.40s' is not an "
	    "event id (a UUID such as 0b5f...-...)", text);
	return -1;
}

/* The JSON body of a POST/PUT, after its media type is checked.  OUT:
 * *j (caller decrefs).  -1 after answering 413/415/400. */
static int
s_body(struct call *k, json_t **j, enum MHD_Result *ret)
{
	const char *type = MHD_lookup_connection_value(k->c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	json_error_t je;

	*j = NULL;
	if (k->rc->too_big) {
		*ret = s_problem(k->c, 413, "oversize", "request body over the "
		    "limit of %d bytes", S_BODY_MAX);
		return -1;
	}
	if (type == NULL || strncmp(type, "application/json", 16) != 0 ||
	    (type[16] != '\0' && type[16] != ';')) {
		*ret = s_problem(k->c, 415, "unsupported_media_type", "the "
		    "request body must be application/json");
		return -1;
	}
	*j = json_loadb(k->rc->body ? k->rc->body : "", k->rc->len,
	    JSON_REJECT_DUPLICATES, &je);
	if (*j == NULL || !json_is_object(*j)) {
		json_decref(*j);
		*j = NULL;
		*ret = s_problem(k->c, 400, "malformed", "the request body is "
		    "not a JSON object (%s, line %d)", je.text, je.line);
		return -1;
	}
	return 0;
}

/* ---- resources --------------------------------------------------------- */

static enum MHD_Result
s_status(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;

	req.op_case = KP__REQUEST__OP_STATUS;
	req.status = 1;
	return s_run(k, &req, 200, false);
}

static int
s_list_args(struct call *k, Kp__ListRequest *l, enum MHD_Result *ret)
{
	uint64_t limit = 0;

	if (s_q_u64(k, "after_seq", INT64_MAX, &l->after_seq,
	    &l->has_after_seq, ret) != 0 ||
	    s_q_u64(k, "limit", 10000, &limit, &l->has_limit, ret) != 0 ||
	    s_q_bool(k, "all", &l->all, &l->has_all, ret) != 0)
		return -1;
	l->limit = (uint32_t)limit;
	return 0;
}

static enum MHD_Result
s_outbox(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;
	enum MHD_Result ret = MHD_NO;

	if (s_list_args(k, &l, &ret) != 0)
		return ret;
	req.op_case = KP__REQUEST__OP_OUTBOX;
	req.outbox = &l;
	return s_run(k, &req, 200, false);
}

/* The wait query parameter (0: none).  -1 after answering 400. */
static int
s_q_wait(struct call *k, uint64_t *wait, enum MHD_Result *ret)
{
	protobuf_c_boolean has;

	*wait = 0;
	return s_q_u64(k, "wait", S_WAIT_MAX_S, wait, &has, ret);
}

/* Is this request's long poll still on?  Its deadline is set by the
 * first run; recheck_ms > 0: look again that often even unwoken (for
 * what appears as time passes: a receipt's timeout, an overdue answer). */
static bool
s_still_waiting(struct call *k, uint64_t wait, uint64_t recheck_ms)
{
	uint64_t now = kp_now_ms();

	if (wait == 0)
		return false;
	if (k->rc->deadline_ms == 0)
		k->rc->deadline_ms = now + wait * 1000u;
	k->rc->next_check_ms = recheck_ms > 0 ? now + recheck_ms : 0;
	return now < k->rc->deadline_ms;
}

/* Long poll: suspend the connection until rest_wake, a recheck or the
 * deadline; then the handler runs again (s_access). */
static enum MHD_Result
s_wait(struct call *k)
{
	struct rconn *rc = k->rc;

	MHD_suspend_connection(k->c);
	rc->waiting = true;
	rc->next = k->rs->waiters;
	k->rs->waiters = rc;
	return MHD_YES;
}

/* The outbox page by page until event id.  OUT: *resp (caller frees;
 * the last page read, or an error) and *item (in *resp, NULL: not
 * there).  -1: no answer at all. */
static int
s_outbox_find(struct call *k, const uint8_t id[16], Kp__Response **resp,
    Kp__OutboxItem **item)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;
	size_t i;

	*item = NULL;
	req.op_case = KP__REQUEST__OP_OUTBOX;
	req.outbox = &l;
	l.has_after_seq = l.has_limit = 1;
	l.limit = 10000;
	for (;;) {
		if (s_exec(k, &req, resp) != 0)
			return -1;
		if (!(*resp)->ok || (*resp)->outbox == NULL ||
		    (*resp)->outbox->n_items == 0)
			return 0;
		for (i = 0; i < (*resp)->outbox->n_items; i++) {
			Kp__OutboxItem *it = (*resp)->outbox->items[i];

			if (it->event_id.len == 16 &&
			    memcmp(it->event_id.data, id, 16) == 0) {
				*item = it;
				return 0;
			}
			l.after_seq = it->seq;
		}
		kp__response__free_unpacked(*resp, &atrest_allocator);
		*resp = NULL;
	}
}

/* One event sent; with wait, answered once it is no longer pending (a
 * receipt arrived, or it expired) or the wait is over. */
static enum MHD_Result
s_outbox_one(struct call *k)
{
	Kp__Response *resp = NULL;
	Kp__OutboxItem *it = NULL;
	enum MHD_Result ret = MHD_NO;
	uint64_t wait;
	uint8_t id[16];

	if (s_id(k, k->seg[1], id, &ret) != 0 || s_q_wait(k, &wait, &ret) != 0)
		return ret;
	if (s_outbox_find(k, id, &resp, &it) != 0)
		return s_problem(k->c, 503, "io", "the daemon could not run "
		    "the request; retry");
	if (!resp->ok)
		ret = s_refused(k, resp, false);
	else if (it == NULL)
		ret = s_problem(k->c, 404, "not_found", "no event %s in the "
		    "outbox", k->seg[1]);
	else if (it->state == KP__DELIVERY_STATE__DELIVERY_STATE_PENDING &&
	    s_still_waiting(k, wait, 1000)) {
		kp__response__free_unpacked(resp, &atrest_allocator);
		return s_wait(k);
	} else
		ret = s_send_json(k->c, 200, apijson_tree(&it->base), NULL);
	kp__response__free_unpacked(resp, &atrest_allocator);
	return ret;
}

/* Run req; with wait, while nothing(answer) holds, wait and run again. */
static enum MHD_Result
s_run_wait(struct call *k, const Kp__Request *req, uint64_t wait,
    bool (*nothing)(const Kp__Response *), uint64_t recheck_ms)
{
	Kp__Response *resp = NULL;
	const ProtobufCMessage *res;
	enum MHD_Result ret;

	if (s_exec(k, req, &resp) != 0)
		return s_problem(k->c, 503, "io", "the daemon could not run "
		    "the request; retry");
	if (resp->ok && nothing(resp) && s_still_waiting(k, wait,
	    recheck_ms)) {
		kp__response__free_unpacked(resp, &atrest_allocator);
		return s_wait(k);
	}
	if (!resp->ok)
		ret = s_refused(k, resp, false);
	else if ((res = s_result(resp)) == NULL)
		ret = s_send_json(k->c, 200, json_object(), NULL);
	else
		ret = s_send_json(k->c, 200, s_result_json(res), NULL);
	kp__response__free_unpacked(resp, &atrest_allocator);
	return ret;
}

static bool
s_no_items(const Kp__Response *r)
{
	return r->inbox == NULL || r->inbox->n_items == 0;
}

static bool
s_no_cases(const Kp__Response *r)
{
	return r->cases == NULL || r->cases->n_cases == 0;
}

/* The inbox; with wait, a long poll answered at the first arrival. */
static enum MHD_Result
s_inbox(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;
	enum MHD_Result ret = MHD_NO;
	uint64_t wait;

	if (s_list_args(k, &l, &ret) != 0 || s_q_wait(k, &wait, &ret) != 0)
		return ret;
	req.op_case = KP__REQUEST__OP_INBOX;
	req.inbox = &l;
	return s_run_wait(k, &req, wait, s_no_items, 0);
}

static enum MHD_Result
s_fetch(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__FetchRequest f = KP__FETCH_REQUEST__INIT;
	enum MHD_Result ret = MHD_NO;
	uint8_t id[16];

	if (s_id(k, k->seg[1], id, &ret) != 0)
		return ret;
	f.has_event_id = 1;
	f.event_id = (ProtobufCBinaryData){ 16, id };
	req.op_case = KP__REQUEST__OP_FETCH;
	req.fetch = &f;
	return s_run(k, &req, 200, true);
}

static enum MHD_Result
s_ack(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__AckRequest a = KP__ACK_REQUEST__INIT;
	ProtobufCBinaryData ids[1];
	enum MHD_Result ret = MHD_NO;
	uint8_t id[16];

	if (s_id(k, k->seg[1], id, &ret) != 0)
		return ret;
	ids[0] = (ProtobufCBinaryData){ 16, id };
	a.n_event_ids = 1;
	a.event_ids = ids;
	req.op_case = KP__REQUEST__OP_ACK;
	req.ack = &a;
	return s_run(k, &req, 200, true);
}

static enum MHD_Result
s_link(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__LinkRequest l = KP__LINK_REQUEST__INIT;
	enum MHD_Result ret = MHD_NO;
	json_t *j = NULL;
	uint8_t id[16];

	if (s_id(k, k->seg[1], id, &ret) != 0 || s_body(k, &j, &ret) != 0)
		return ret;
	if (json_object_size(j) != 1 ||
	    !json_is_string(json_object_get(j, "case_ref"))) {
		json_decref(j);
		return s_problem(k->c, 400, "invalid_argument", "the body must "
		    "be {\"case_ref\": \"YOUR-CASE-REFERENCE\"}");
	}
	l.has_event_id = 1;
	l.event_id = (ProtobufCBinaryData){ 16, id };
	l.case_ref = (char *)json_string_value(json_object_get(j, "case_ref"));
	req.op_case = KP__REQUEST__OP_LINK;
	req.link = &l;
	ret = s_run(k, &req, 200, false);
	json_decref(j);
	return ret;
}

/* Only the fields of a send: a misspelt optional field must not be
 * silently ignored (a "ttl_second" would send with the default). */
static int
s_send_keys(struct call *k, json_t *j, enum MHD_Result *ret)
{
	static const char *const keys[] = { "event_type", "to_oin",
	    "case_ref", "payload", "in_reply_to", "ttl_seconds", "client_id" };
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(j, key, v) {
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(key, keys[i]) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			*ret = s_problem(k->c, 400, "invalid_argument", "unknown "
			    "field '%.64s' (event_type, to_oin, case_ref, "
			    "payload, in_reply_to, ttl_seconds, client_id)", key);
			return -1;
		}
	}
	return 0;
}

/* The fields of POST /events besides payload: a SendRequest's. */
static int
s_send_fields(struct call *k, json_t *j, Kp__SendRequest *s,
    uint8_t reply[16], enum MHD_Result *ret)
{
	const char *type;
	json_t *v;

	if (s_send_keys(k, j, ret) != 0)
		return -1;
	type = json_string_value(json_object_get(j, "event_type"));
	if (type == NULL || (s->event_type = events_type_from_name(type)) == 0) {
		*ret = s_problem(k->c, 400, "invalid_argument", "event_type "
		    "must be referral, halt_outcome, rvdk_advice, om_decision, "
		    "jbt_request, ...");
		return -1;
	}
	s->has_event_type = 1;
	s->to_oin = (char *)json_string_value(json_object_get(j, "to_oin"));
	s->case_ref = (char *)json_string_value(json_object_get(j, "case_ref"));
	s->client_id = (char *)json_string_value(json_object_get(j,
	    "client_id"));
	if ((v = json_object_get(j, "in_reply_to")) != NULL) {
		if (!json_is_string(v) || kp_uuid_parse(json_string_value(v),
		    reply) != 0) {
			*ret = s_problem(k->c, 400, "invalid_argument",
			    "in_reply_to must be an event id (UUID text)");
			return -1;
		}
		s->has_in_reply_to = 1;
		s->in_reply_to = (ProtobufCBinaryData){ 16, reply };
	}
	if ((v = json_object_get(j, "ttl_seconds")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > UINT32_MAX) {
			*ret = s_problem(k->c, 400, "invalid_argument",
			    "ttl_seconds must be a whole number of seconds, at "
			    "least 1");
			return -1;
		}
		s->has_ttl_seconds = 1;
		s->ttl_seconds = (uint32_t)json_integer_value(v);
	}
	return 0;
}

/* The payload object as the packed event.  OUT: s->payload (malloc'd). */
static int
s_send_payload(struct call *k, json_t *j, Kp__SendRequest *s,
    enum MHD_Result *ret)
{
	ProtobufCMessage *ev = NULL;
	kp_err_t e;

	if (pbjson_from_json(events_descriptor(s->event_type),
	    json_object_get(j, "payload") ? json_object_get(j, "payload") :
	    json_null(), &ev, &e) != 0) {
		*ret = s_problem(k->c, 400, "invalid_argument", "payload: %s",
		    e.msg);
		return -1;
	}
	s->payload.len = protobuf_c_message_get_packed_size(ev);
	if ((s->payload.data = malloc(s->payload.len + 1)) != NULL)
		protobuf_c_message_pack(ev, s->payload.data);
	pbjson_free(ev);
	if (s->payload.data == NULL)
		return -1;
	s->has_payload = 1;
	return 0;
}

/* POST /events: 201 with Location, or 200 for a repeat of a stored one. */
static enum MHD_Result
s_send(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest s = KP__SEND_REQUEST__INIT;
	Kp__Response *resp = NULL;
	enum MHD_Result ret = MHD_NO;
	char loc[64], id[KP_UUID_TEXT_LEN + 1];
	json_t *j = NULL;
	uint8_t reply[16];

	if (s_body(k, &j, &ret) != 0 || s_send_fields(k, j, &s, reply,
	    &ret) != 0 || s_send_payload(k, j, &s, &ret) != 0)
		goto out;
	s.idempotency_key = (char *)MHD_lookup_connection_value(k->c,
	    MHD_HEADER_KIND, "Idempotency-Key");
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &s;
	if (s_exec(k, &req, &resp) != 0)
		ret = s_problem(k->c, 503, "io", "the daemon could not run "
		    "the request; retry");
	else if (!resp->ok || resp->send == NULL ||
	    resp->send->event_id.len != 16)
		ret = s_refused(k, resp, false);
	else {
		kp_uuid_format(resp->send->event_id.data, id);
		snprintf(loc, sizeof(loc), S_PREFIX "/outbox/%s", id);
		ret = s_send_json(k->c, resp->send->repeated ? 200 : 201,
		    apijson_tree(&resp->send->base), loc);
	}
out:
	if (resp != NULL)
		kp__response__free_unpacked(resp, &atrest_allocator);
	free(s.payload.data);
	json_decref(j);
	return ret;
}

static enum MHD_Result
s_cases(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__CasesRequest q = KP__CASES_REQUEST__INIT;
	enum MHD_Result ret = MHD_NO;
	const char *route = MHD_lookup_connection_value(k->c,
	    MHD_GET_ARGUMENT_KIND, "route");
	uint64_t wait;
	int v;

	if (s_q_bool(k, "overdue", &q.overdue_only, &q.has_overdue_only,
	    &ret) != 0 || s_q_u64(k, "at_ms", INT64_MAX, &q.at_ms, &q.has_at_ms,
	    &ret) != 0 || s_q_wait(k, &wait, &ret) != 0)
		return ret;
	if (wait > 0 && !(q.has_overdue_only && q.overdue_only))
		return s_problem(k->c, 400, "invalid_argument", "wait goes with "
		    "overdue=true: it waits until an answer is overdue");
	if (route != NULL) {
		if (pbjson_enum_value(&kp__route__descriptor, route, &v) != 0)
			return s_problem(k->c, 400, "invalid_argument", "route "
			    "'%.40s' is not a route (halt, rvdk, om, jbt, ...)",
			    route);
		q.has_route = 1;
		q.route = (Kp__Route)v;
	}
	req.op_case = KP__REQUEST__OP_CASES;
	req.cases = &q;
	/* an answer becomes overdue as time passes: look every second */
	return s_run_wait(k, &req, wait, s_no_cases, 1000);
}

static enum MHD_Result
s_case(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__CaseRequest q = KP__CASE_REQUEST__INIT;
	enum MHD_Result ret = MHD_NO;

	if (s_q_u64(k, "at_ms", INT64_MAX, &q.at_ms, &q.has_at_ms, &ret) != 0)
		return ret;
	q.case_ref = k->seg[1];
	req.op_case = KP__REQUEST__OP_CASE_TIMELINE;
	req.case_timeline = &q;
	return s_run(k, &req, 200, false);
}

static enum MHD_Result
s_remind(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__RemindRequest q = KP__REMIND_REQUEST__INIT;

	q.case_ref = k->seg[1];
	req.op_case = KP__REQUEST__OP_REMIND;
	req.remind = &q;
	return s_run(k, &req, 201, false);
}

/* The officer's work list (ketenpost todo): overdue and due soon. */
static enum MHD_Result
s_todo(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__TodoRequest q = KP__TODO_REQUEST__INIT;
	enum MHD_Result ret = MHD_NO;
	uint64_t days = 0;
	protobuf_c_boolean has_days = 0;

	if (s_q_u64(k, "days", 365, &days, &has_days, &ret) != 0 ||
	    s_q_u64(k, "at_ms", INT64_MAX, &q.at_ms, &q.has_at_ms, &ret) != 0)
		return ret;
	q.has_days = has_days;
	q.days = (uint32_t)days;
	req.op_case = KP__REQUEST__OP_TODO;
	req.todo = &q;
	return s_run(k, &req, 200, false);
}

static enum MHD_Result
s_subject(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SubjectRequest q = KP__SUBJECT_REQUEST__INIT;
	enum MHD_Result ret = MHD_NO;

	if (s_q_bool(k, "with_values", &q.with_values, &q.has_with_values,
	    &ret) != 0)
		return ret;
	q.case_ref = k->seg[1];
	req.op_case = KP__REQUEST__OP_SUBJECT;
	req.subject = &q;
	return s_run(k, &req, 200, false);
}

/* What GET /report can be (content negotiation, Accept): the JSON form
 * first, the CSV of `ketenpost report --csv` (lib/reportfig.c). */
static const char *const s_report_types[] = { "application/json",
    "text/csv" };
#define S_CSV_TYPE "text/csv; charset=utf-8; header=present"

/* The report (res) as the media type picked; both vary with Accept. */
static enum MHD_Result
s_report_answer(struct call *k, const ProtobufCMessage *res, int pick)
{
	json_t *j = s_result_json(res);
	char *body = NULL;
	size_t len = 0;
	FILE *f;

	if (j != NULL && pick == 0)
		body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	else if (j != NULL && (f = open_memstream(&body, &len)) != NULL) {
		reportfig_csv(f, j, NULL);  /* codes only: no label language */
		if (ferror(f)) {
			fclose(f);
			free(body);
			body = NULL;
		} else if (fclose(f) != 0) {
			free(body);
			body = NULL;
		}
	}
	json_decref(j);
	if (body == NULL)
		return s_problem(k->c, 503, "out_of_memory", "the daemon could "
		    "not write the report; retry");
	return s_send_text(k->c, 200, body, pick == 0 ? "application/json" :
	    S_CSV_TYPE, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT);
}

static enum MHD_Result
s_report(struct call *k)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ReportRequest q = KP__REPORT_REQUEST__INIT;
	Kp__Response *resp = NULL;
	const ProtobufCMessage *res;
	enum MHD_Result ret = MHD_NO;
	int pick;

	if (s_q_u64(k, "from_ms", INT64_MAX, &q.from_ms, &q.has_from_ms,
	    &ret) != 0 || s_q_u64(k, "to_ms", INT64_MAX, &q.to_ms, &q.has_to_ms,
	    &ret) != 0 || s_q_u64(k, "at_ms", INT64_MAX, &q.at_ms, &q.has_at_ms,
	    &ret) != 0)
		return ret;
	pick = rest_accept_pick(MHD_lookup_connection_value(k->c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT), s_report_types, 2);
	if (pick < 0)
		return s_problem(k->c, 406, "not_acceptable", "the report is "
		    "application/json or text/csv; ask for one of them in "
		    "Accept");
	req.op_case = KP__REQUEST__OP_REPORT;
	req.report = &q;
	if (s_exec(k, &req, &resp) != 0)
		return s_problem(k->c, 503, "io", "the daemon could not run "
		    "the request; retry");
	if (!resp->ok)
		ret = s_refused(k, resp, false);
	else if ((res = s_result(resp)) == NULL)
		ret = s_problem(k->c, 503, "io", "the daemon gave no report");
	else
		ret = s_report_answer(k, res, pick);
	kp__response__free_unpacked(resp, &atrest_allocator);
	return ret;
}

static enum MHD_Result
s_openapi(struct call *k)
{
	char *body = malloc(kp_openapi_json_len + 1);

	if (body == NULL)
		return MHD_NO;
	memcpy(body, kp_openapi_json, kp_openapi_json_len);
	body[kp_openapi_json_len] = '\0';
	return s_send_text(k->c, 200, body, "application/json", NULL, NULL);
}

/* ---- routing ------------------------------------------------------------ */

/* Split url after /api/v1 into k->seg.  -1: not under /api/v1, too
 * many or too long segments. */
static int
s_split(struct call *k, const char *url)
{
	const char *p, *slash;
	size_t n;

	if (strncmp(url, S_PREFIX "/", sizeof(S_PREFIX)) != 0)
		return -1;
	for (p = url + sizeof(S_PREFIX); *p != '\0'; p = slash + 1) {
		slash = strchr(p, '/');
		n = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || n >= sizeof(k->seg[0]) ||
		    k->nseg == sizeof(k->seg) / sizeof(k->seg[0]))
			return -1;
		memcpy(k->seg[k->nseg], p, n);
		k->seg[k->nseg++][n] = '\0';
		if (slash == NULL)
			break;
	}
	return k->nseg > 0 ? 0 : -1;
}

/* The resources: method, number of path segments, the first and (for
 * three) the third segment; the second is an event id or case ref. */
static const struct route {
	const char *method;
	size_t nseg;
	const char *s0, *s2;
	enum MHD_Result (*handle)(struct call *);
} s_routes[] = {
	{ "GET", 1, "status", NULL, s_status },
	{ "GET", 1, "openapi.json", NULL, s_openapi },
	{ "POST", 1, "events", NULL, s_send },
	{ "GET", 1, "outbox", NULL, s_outbox },
	{ "GET", 2, "outbox", NULL, s_outbox_one },
	{ "GET", 1, "inbox", NULL, s_inbox },
	{ "GET", 2, "inbox", NULL, s_fetch },
	{ "POST", 3, "inbox", "ack", s_ack },
	{ "PUT", 3, "inbox", "link", s_link },
	{ "GET", 1, "cases", NULL, s_cases },
	{ "GET", 2, "cases", NULL, s_case },
	{ "POST", 3, "cases", "reminders", s_remind },
	{ "GET", 2, "subjects", NULL, s_subject },
	{ "GET", 1, "report", NULL, s_report },
	{ "GET", 1, "todo", NULL, s_todo },
};

static bool
s_path_is(const struct call *k, const struct route *r)
{
	return k->nseg == r->nseg && strcmp(k->seg[0], r->s0) == 0 &&
	    (r->s2 == NULL || strcmp(k->seg[2], r->s2) == 0);
}

/* A known resource with a method it does not have: 405 and Allow. */
static enum MHD_Result
s_not_allowed(struct call *k, const char *allow)
{
	json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type",
	    "urn:ketenpost:problem:method_not_allowed", "title",
	    s_title(405), "status", 405, "detail", "this resource does not "
	    "take that method; see the Allow header", "code",
	    "method_not_allowed");
	char *body = j != NULL ? json_dumps(j, JSON_COMPACT |
	    JSON_PRESERVE_ORDER) : NULL;

	json_decref(j);
	return s_send_text(k->c, 405, body, "application/problem+json",
	    MHD_HTTP_HEADER_ALLOW, allow);
}

static enum MHD_Result
s_dispatch(struct call *k)
{
	char allow[32] = "";
	size_t i;

	for (i = 0; i < sizeof(s_routes) / sizeof(s_routes[0]); i++) {
		if (!s_path_is(k, &s_routes[i]))
			continue;
		if (strcmp(k->method, s_routes[i].method) == 0)
			return s_routes[i].handle(k);
		snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow),
		    "%s%s", allow[0] ? ", " : "", s_routes[i].method);
	}
	if (allow[0] != '\0')
		return s_not_allowed(k, allow);
	return s_problem(k->c, 404, "not_found", "no resource %s/%s%s%s%s%s "
	    "(see " S_PREFIX "/openapi.json)", S_PREFIX, k->seg[0],
	    k->nseg > 1 ? "/" : "", k->nseg > 1 ? k->seg[1] : "",
	    k->nseg > 2 ? "/" : "", k->nseg > 2 ? k->seg[2] : "");
}

/* Who is at the other end of TLS connection c: its certificate.  -1
 * after answering 401 (no verified certificate) or 403 (not allowed). */
static int
s_identify_tls(struct call *k, enum MHD_Result *ret)
{
	char fp[96];

	if (rest_tls_identify(k->c, &k->rs->d->cfg, k->who, sizeof(k->who),
	    fp, &k->roles) != 0) {
		log_warnx("rest: a TLS client without a verified client "
		    "certificate refused");
		*ret = s_problem(k->c, 401, "unauthenticated", "this API needs "
		    "a client certificate signed by the CA of [rest] "
		    "tls_client_ca");
		return -1;
	}
	if (k->roles == 0) {
		log_warnx("rest: client certificate %s refused: not in [api] "
		    "allow", fp);
		*ret = s_problem(k->c, 403, "forbidden", "client certificate "
		    "%s is not allowed here (ask the operator to add [api] "
		    "allow = cert:%s ROLE...)", fp, fp);
		return -1;
	}
	return 0;
}

/* Is c a connection of the TLS listener? */
static bool
s_is_tls(const rest_t *rs, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_DAEMON);

	return rs->tls != NULL && ci != NULL &&
	    ci->daemon == rest_tls_mhd(rs->tls);
}

/* Who is at the other end of c: the kernel's word (SO_PEERCRED). */
static int
s_identify(struct call *k)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(k->c,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (ci == NULL || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED,
	    &uc, &len) != 0 || len != sizeof(uc))
		return -1;
	snprintf(k->who, sizeof(k->who), "uid:%lu", (unsigned long)uc.uid);
	k->roles = access_roles_for_creds(&k->rs->d->cfg, uc.uid, uc.gid);
	return 0;
}

static enum MHD_Result
s_route(rest_t *rs, struct rconn *rc, struct MHD_Connection *c,
    const char *url, const char *method)
{
	struct call k;
	enum MHD_Result ret = MHD_NO;

	memset(&k, 0, sizeof(k));
	k.rs = rs;
	k.rc = rc;
	k.c = c;
	k.method = method;
	if (s_is_tls(rs, c)) {
		if (s_identify_tls(&k, &ret) != 0)
			return ret;
	} else if (s_identify(&k) != 0) {
		log_warnx("rest: a client without peer credentials refused");
		return MHD_NO;
	}
	if (s_split(&k, url) != 0)
		return s_problem(c, 404, "not_found", "no resource here; the "
		    "API is under " S_PREFIX " (see " S_PREFIX
		    "/openapi.json)");
	return s_dispatch(&k);
}

/* A piece of the request body.  Grown by copying, not realloc, so that
 * no unwiped copy of a payload is left behind; over S_BODY_MAX the rest
 * is read and dropped, and the request answered 413. */
static void
s_body_add(struct rconn *rc, const char *data, size_t n)
{
	size_t cap = rc->cap ? rc->cap : 4096;
	char *grown;

	if (rc->too_big || rc->len + n > S_BODY_MAX) {
		rc->too_big = true;
		return;
	}
	while (cap < rc->len + n + 1)
		cap *= 2;
	if (cap != rc->cap) {
		if ((grown = malloc(cap)) == NULL) {
			rc->too_big = true;
			return;
		}
		if (rc->body != NULL) {
			memcpy(grown, rc->body, rc->len);
			sodium_memzero(rc->body, rc->len);
			free(rc->body);
		}
		rc->body = grown;
		rc->cap = cap;
	}
	memcpy(rc->body + rc->len, data, n);
	rc->len += n;
}

static enum MHD_Result
s_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **con_cls)
{
	struct rconn *rc = *con_cls;

	(void)version;
	if (rc == NULL) {
		if ((rc = calloc(1, sizeof(*rc))) == NULL)
			return MHD_NO;
		rc->c = c;
		*con_cls = rc;
		return MHD_YES;
	}
	if (*upload_len > 0) {
		s_body_add(rc, upload, *upload_len);
		*upload_len = 0;
		return MHD_YES;
	}
	return s_route(cls, rc, c, url, method);
}

static void
s_unwait(rest_t *rs, struct rconn *rc)
{
	struct rconn **p;

	for (p = &rs->waiters; *p != NULL; p = &(*p)->next)
		if (*p == rc) {
			*p = rc->next;
			break;
		}
	rc->waiting = false;
	rc->next = NULL;
}

static void
s_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct rconn *rc = *con_cls;

	(void)c;
	(void)toe;
	if (rc == NULL)
		return;
	if (rc->waiting)
		s_unwait(cls, rc);
	if (rc->body != NULL)
		sodium_memzero(rc->body, rc->len);  /* a send's payload */
	free(rc->body);
	free(rc);
	*con_cls = NULL;
}

static void
s_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_warnx("rest: %s", line);
}

/* ---- the socket and the loop ------------------------------------------- */

rest_t *
rest_new(void)
{
	rest_t *rs = calloc(1, sizeof(rest_t));

	if (rs != NULL)
		rs->epfd = -1;
	return rs;
}

/* Resume every waiter (optionally only those whose wait is over). */
static void
s_resume(rest_t *rs, bool all)
{
	struct rconn *rc, *next;
	uint64_t now = kp_now_ms();

	for (rc = rs->waiters; rc != NULL; rc = next) {
		next = rc->next;
		if (all || now >= rc->deadline_ms || (rc->next_check_ms > 0 &&
		    now >= rc->next_check_ms)) {
			s_unwait(rs, rc);
			MHD_resume_connection(rc->c);
		}
	}
}

void
rest_destroy(rest_t **self_p)
{
	rest_t *rs = self_p ? *self_p : NULL;

	if (rs == NULL)
		return;
	s_resume(rs, true);  /* MHD stops only without suspended ones */
	if (rs->mhd != NULL)
		MHD_stop_daemon(rs->mhd);
	rest_tls_destroy(&rs->tls);
	webhook_destroy(&rs->webhook);
	if (rs->path[0] != '\0')
		(void)unlink(rs->path);
	if (rs->epfd >= 0)
		close(rs->epfd);
	free(rs);
	*self_p = NULL;
}

/* A listening Unix socket at path (a long path through its folder's
 * /proc/self/fd alias, as the API's: kp_ipc_address).  OUT: *fd. */
static int
s_socket(const char *path, bool others, int *fd, kp_err_t *err)
{
	struct sockaddr_un sa;
	char ep[KP_PATH_MAX + 16], addr[KP_PATH_MAX + 16];
	int dirfd = -1, rc = -1;

	*fd = -1;
	snprintf(ep, sizeof(ep), "ipc://%s", path);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (kp_ipc_address(ep, addr, sizeof(addr), &dirfd) != 0 ||
	    strlen(addr + 6) >= sizeof(sa.sun_path)) {
		kp_fail(err, KP_ERR_INVALID_ARG, "rest: socket path %s is too "
		    "long", path);
		goto out;
	}
	memcpy(sa.sun_path, addr + 6, strlen(addr + 6) + 1);
	(void)unlink(sa.sun_path);  /* a stale socket of a killed daemon */
	if ((*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(*fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(sa.sun_path, others ? 0666 : 0600) != 0 ||
	    listen(*fd, 64) != 0) {
		kp_fail(err, KP_ERR_IO, "rest: cannot listen on %s: %s", path,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (rc != 0 && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

/* Serve on the Unix socket of listen ("unix:/PATH"). */
static int
s_listen_unix(rest_t *rs, const char *listen, kp_err_t *err)
{
	const char *path = listen + strlen("unix:");
	int fd;

	if (strncmp(listen, "unix:/", 6) != 0)
		return kp_fail(err, KP_ERR_INVALID_ARG, "rest: listen '%s' is "
		    "not unix:/PATH", listen);
	if (s_socket(path, access_has_others(&rs->d->cfg), &fd, err) != 0)
		return -1;
	snprintf(rs->path, sizeof(rs->path), "%s", path);
	rs->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG, 0, NULL, NULL, s_access, rs,
	    MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,  /* first: MHD */
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_NOTIFY_COMPLETED, s_completed, rs,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)S_CONN_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)S_CONN_TIMEOUT_S,
	    MHD_OPTION_END);
	if (rs->mhd == NULL) {
		close(fd);
		return kp_fail(err, KP_ERR_IO, "rest: cannot serve on %s", path);
	}
	log_info("rest: serving the REST API on unix:%s", path);
	return 0;
}

/* Add mhd's epoll fd to the one the daemon's loop polls. */
static int
s_poll_add(rest_t *rs, struct MHD_Daemon *mhd, kp_err_t *err)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(mhd,
	    MHD_DAEMON_INFO_EPOLL_FD);
	struct epoll_event ev = { .events = EPOLLIN };

	if (i == NULL || epoll_ctl(rs->epfd, EPOLL_CTL_ADD, i->epoll_fd,
	    &ev) != 0)
		return kp_fail(err, KP_ERR_IO, "rest: cannot poll the HTTP "
		    "server: %s", strerror(errno));
	return 0;
}

int
rest_listen(rest_t *rs, const char *listen, struct kpd *d, kp_err_t *err)
{
	struct rest_tls_handlers h = { s_access, s_completed, s_mhd_log, rs };

	rs->d = d;
	if ((rs->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return kp_fail(err, KP_ERR_IO, "rest: epoll: %s",
		    strerror(errno));
	if (listen[0] != '\0' && strcmp(listen, "off") != 0 &&
	    (s_listen_unix(rs, listen, err) != 0 ||
	    s_poll_add(rs, rs->mhd, err) != 0))
		return -1;
	if (d->cfg.rest_tls_listen[0] != '\0' && ((rs->tls =
	    rest_tls_start(&d->cfg, &h, err)) == NULL ||
	    s_poll_add(rs, rest_tls_mhd(rs->tls), err) != 0))
		return -1;
	if (d->cfg.rest_webhook[0] != '\0' &&
	    (rs->webhook = webhook_new(d, err)) == NULL)
		return -1;
	return 0;
}

webhook_t *
rest_webhook(rest_t *rs)
{
	return rs != NULL ? rs->webhook : NULL;
}

int
rest_fd(const rest_t *rs)
{
	return rs != NULL ? rs->epfd : -1;
}

/* cap, or the time until `at` if that is sooner. */
static uint64_t
s_until(uint64_t at, uint64_t now, uint64_t cap)
{
	if (at <= now)
		return 0;
	return at - now < cap ? at - now : cap;
}

/* cap, or less if mhd (may be NULL) has work due sooner. */
static uint64_t
s_mhd_wait(struct MHD_Daemon *mhd, uint64_t cap)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (mhd == NULL || MHD_get_timeout(mhd, &t) != MHD_YES)
		return cap;
	return t < cap ? (uint64_t)t : cap;
}

uint64_t
rest_wait_ms(rest_t *rs, uint64_t cap)
{
	uint64_t now = kp_now_ms();
	struct rconn *rc;

	if (rs == NULL || rs->epfd < 0)
		return cap;
	for (rc = rs->waiters; rc != NULL; rc = rc->next) {
		cap = s_until(rc->deadline_ms, now, cap);
		if (rc->next_check_ms > 0)
			cap = s_until(rc->next_check_ms, now, cap);
	}
	cap = webhook_wait_ms(rs->webhook, cap);
	return s_mhd_wait(rest_tls_mhd(rs->tls), s_mhd_wait(rs->mhd, cap));
}

void
rest_run(rest_t *rs)
{
	if (rs == NULL || rs->epfd < 0)
		return;
	s_resume(rs, false);
	if (rs->mhd != NULL)
		(void)MHD_run(rs->mhd);
	if (rs->tls != NULL)
		(void)MHD_run(rest_tls_mhd(rs->tls));
	webhook_run(rs->webhook, rs->epfd);
}

void
rest_wake(rest_t *rs)
{
	if (rs != NULL && rs->waiters != NULL)
		s_resume(rs, true);
}
