/*
 * test_rest.c: the REST/JSON API (daemon/rest.c, docs/openapi.json).
 *
 * Real daemons; every request is made by the curl binary over the
 * daemon's Unix socket, as an integrator would.  Every JSON answer is
 * validated against the schemas of docs/openapi.json by
 * tests/openapi_validate.py (python3-jsonschema, strict: no undocumented
 * fields).  Role refusals are made as another Unix user (nobody, via
 * setpriv: the tests run as root), as in test_access.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common.h"
#include "daemons.h"
#include "rest_accept.h"
#include "util.h"

TestSuite(rest, .init = test_init, .timeout = 240);

#define AS_NOBODY "setpriv --reuid=nobody --regid=nogroup --clear-groups "
#define S_OUT_MAX 262144

/* One REST client: a socket, who runs curl, and where files go. */
struct client {
	char sock[4200];
	const char *as;               /* "" or AS_NOBODY */
	char tls[3400];               /* "": the socket; else curl's TLS
	                               * arguments (s_tls_client) */
	char base[64];                /* over TLS: https://127.0.0.1:PORT */
	char dir[4200];               /* for bodies and answers */
	int n;                        /* files made so far */
};

static void
s_client(struct client *k, const td_chain_t *c, const char *oin)
{
	memset(k, 0, sizeof(*k));
	td_state_dir(c, oin, k->dir, sizeof(k->dir));
	snprintf(k->sock, sizeof(k->sock), "%.4000s/rest.sock", k->dir);
	k->as = "";
}

/*
 * METHOD path with the JSON body (or NULL) and extra curl arguments (or
 * ""); the answer's body into out (NUL-terminated), also saved in *file
 * (for validation).  Returns the HTTP status.
 */
static int
s_http(struct client *k, const char *method, const char *path,
    const char *body, const char *extra, char *out, size_t len,
    char file[4300])
{
	char cmd[1024], bodyarg[4400] = "";
	char *nl;
	FILE *f;
	int status;

	if (body != NULL) {
		snprintf(file, 4300, "%s/rest-body-%d.json", k->dir, k->n++);
		cr_assert_not_null(f = fopen(file, "w"));
		fputs(body, f);
		fclose(f);
		cr_assert_eq(chmod(file, 0644), 0);
		snprintf(bodyarg, sizeof(bodyarg), "-H 'Content-Type: "
		    "application/json' --data-binary @%s", file);
	}
	snprintf(cmd, sizeof(cmd), "%.200s", extra);
	if (k->tls[0] != '\0')
		(void)test_sh_output(out, len, "timeout 60 curl -sS %s -X %s "
		    "%s %s -w '\\n%%{http_code}' '%s%s'", k->tls, method,
		    bodyarg, cmd, k->base, path);
	else
		(void)test_sh_output(out, len, "timeout 60 %scurl -sS "
		    "--unix-socket %s -X %s %s %s -w '\\n%%{http_code}' "
		    "'http://localhost%s'", k->as, k->sock, method, bodyarg,
		    cmd, path);
	cr_assert_not_null(nl = strrchr(out, '\n'), "curl: %s", out);
	status = atoi(nl + 1);
	*nl = '\0';
	snprintf(file, 4300, "%s/rest-answer-%d.json", k->dir, k->n++);
	cr_assert_not_null(f = fopen(file, "w"));
	fputs(out, f);
	fclose(f);
	return status;
}

/* The answer in file is valid against schema `name` of docs/openapi.json. */
static void
s_valid(const char *file, const char *name)
{
	char out[8192];

	cr_assert_eq(test_sh_output(out, sizeof(out), "python3 "
	    "%s/tests/openapi_validate.py %s/docs/openapi.json %s %s",
	    test_source_dir(), test_source_dir(), name, file), 0,
	    "%s against %s: %s", file, name, out);
}

/* Request, expect status, validate the answer against schema. */
static void
s_expect(struct client *k, const char *method, const char *path,
    const char *body, const char *extra, int want, const char *schema,
    char *out, size_t len)
{
	char file[4300];
	int got = s_http(k, method, path, body, extra, out, len, file);

	cr_assert_eq(got, want, "%s %s: %d, not %d: %s", method, path, got,
	    want, out);
	s_valid(file, schema);
}

/* A send body: an example event of type to to_oin on case ref. */
static char *
s_send_body(const char *type, const char *to, const char *ref)
{
	char *b = malloc(S_OUT_MAX);

	cr_assert_not_null(b);
	snprintf(b, S_OUT_MAX, "{\"event_type\":\"%s\",\"to_oin\":\"%s\","
	    "\"case_ref\":\"%s\",\"payload\":%s}", type, to, ref,
	    td_example_to(type, to));
	return b;
}

/* The event id of a SendResponse or item answer. */
static void
s_event_id(const char *json, char id[37])
{
	const char *p = strstr(json, "\"event_id\":\"");

	cr_assert_not_null(p, "%s", json);
	memcpy(id, p + 12, 36);
	id[36] = '\0';
}

Test(rest, every_resource_answers_in_its_documented_form)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	struct client k, h;
	char *out = malloc(S_OUT_MAX), *body, id[37], path[256], file[4300];
	char *doc;
	size_t n;

	cr_assert_not_null(out);
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	s_client(&k, &c, OIN_LEERPLICHT);
	s_client(&h, &c, OIN_HALT);

	s_expect(&k, "GET", "/api/v1/status", NULL, "", 200, "StatusResponse",
	    out, S_OUT_MAX);
	cr_assert(strstr(out, OIN_LEERPLICHT) != NULL, "%s", out);
	/* the OpenAPI document, served verbatim */
	cr_assert_eq(s_http(&k, "GET", "/api/v1/openapi.json", NULL, "", out,
	    S_OUT_MAX, file), 200);
	doc = test_doc_load("docs/openapi.json");
	cr_assert_eq(strncmp(out, doc, strlen(doc) - 1), 0);
	free(doc);

	/* send: 201 with Location; the same key again: 200, the same id */
	body = s_send_body("referral", OIN_HALT, "LP-REST-1");
	snprintf(path, sizeof(path), "-H 'Idempotency-Key: rest-k1' -D "
	    "%.150s/headers.txt", k.dir);
	s_expect(&k, "POST", "/api/v1/events", body, path, 201, "SendResponse",
	    out, S_OUT_MAX);
	s_event_id(out, id);
	snprintf(file, sizeof(file), "%s/headers.txt", k.dir);
	doc = NULL;
	cr_assert_eq(kp_read_file(file, 65536, (uint8_t **)&doc, &n), 0);
	snprintf(path, sizeof(path), "Location: /api/v1/outbox/%s", id);
	cr_assert(strstr(doc, path) != NULL, "%s", doc);
	cr_assert(strstr(doc, "API-Version: 1.0.0") != NULL, "%s", doc);
	free(doc);
	doc = test_doc_load("docs/openapi.json");
	cr_assert(strstr(doc, "\"version\": \"1.0.0\"") != NULL,
	    "API-Version and info.version agree");
	free(doc);
	s_expect(&k, "POST", "/api/v1/events", body, "-H 'Idempotency-Key: "
	    "rest-k1'", 200, "SendResponse", out, S_OUT_MAX);
	cr_assert(strstr(out, id) != NULL, "%s", out);
	cr_assert(strstr(out, "\"repeated\":true") != NULL, "%s", out);
	free(body);
	/* the same key for another event: 409, nothing stored */
	body = s_send_body("referral", OIN_HALT, "LP-REST-2");
	s_expect(&k, "POST", "/api/v1/events", body, "-H 'Idempotency-Key: "
	    "rest-k1'", 409, "Problem", out, S_OUT_MAX);
	cr_assert(strstr(out, "\"code\":\"idempotency_key_reused\"") != NULL,
	    "%s", out);
	/* bad input: wrong media type, too large, unknown type, recipient */
	s_expect(&k, "POST", "/api/v1/events", NULL, "-H 'Content-Type: "
	    "text/plain' --data-binary x", 415, "Problem", out, S_OUT_MAX);
	cr_assert_eq(test_sh("head -c 300000 /dev/zero | tr '\\0' ' ' > "
	    "%s/big.json", k.dir), 0);
	snprintf(path, sizeof(path), "-H 'Content-Type: application/json' "
	    "--data-binary @%.150s/big.json", k.dir);
	s_expect(&k, "POST", "/api/v1/events", NULL, path, 413, "Problem", out,
	    S_OUT_MAX);
	s_expect(&k, "POST", "/api/v1/events", "{\"event_type\":\"brief\"}",
	    "", 400, "Problem", out, S_OUT_MAX);
	free(body);
	body = s_send_body("referral", "00000001999999999000", "LP-REST-3");
	s_expect(&k, "POST", "/api/v1/events", body, "", 400, "Problem", out,
	    S_OUT_MAX);
	cr_assert(strstr(out, "\"code\":\"unknown_recipient\"") != NULL, "%s",
	    out);
	cr_assert(strstr(out, "is not a verified partner") != NULL, "%s", out);
	free(body);

	/* the outbox, and one event in it */
	cr_assert(td_wait_settled(lp, 15000));
	s_expect(&k, "GET", "/api/v1/outbox?limit=10", NULL, "", 200,
	    "OutboxList", out, S_OUT_MAX);
	cr_assert(strstr(out, id) != NULL && strstr(out, "\"delivered\"") !=
	    NULL, "%s", out);
	snprintf(path, sizeof(path), "/api/v1/outbox/%s", id);
	s_expect(&k, "GET", path, NULL, "", 200, "OutboxItem", out, S_OUT_MAX);

	/* the receiver: inbox, one event, link, acknowledge */
	s_expect(&h, "GET", "/api/v1/inbox", NULL, "", 200, "InboxList", out,
	    S_OUT_MAX);
	cr_assert(strstr(out, id) != NULL, "%s", out);
	snprintf(path, sizeof(path), "/api/v1/inbox/%s", id);
	s_expect(&h, "GET", path, NULL, "", 200, "InboxItem", out, S_OUT_MAX);
	cr_assert(strstr(out, "\"payload\":{") != NULL, "%s", out);
	snprintf(path, sizeof(path), "/api/v1/inbox/%s/link", id);
	s_expect(&h, "PUT", path, "{\"case_ref\":\"HALT-REST-9\"}", "", 200,
	    "LinkResponse", out, S_OUT_MAX);
	snprintf(path, sizeof(path), "/api/v1/inbox/%s/ack", id);
	s_expect(&h, "POST", path, NULL, "", 200, "AckResponse", out,
	    S_OUT_MAX);
	cr_assert(strstr(out, "\"acknowledged\":1") != NULL, "%s", out);
	s_expect(&h, "GET", "/api/v1/inbox", NULL, "", 200, "InboxList", out,
	    S_OUT_MAX);
	cr_assert(strstr(out, id) == NULL, "acknowledged: %s", out);
	s_expect(&h, "GET", "/api/v1/inbox?all=true&after_seq=0", NULL, "",
	    200, "InboxList", out, S_OUT_MAX);
	cr_assert(strstr(out, id) != NULL, "%s", out);
	s_expect(&h, "GET", "/api/v1/inbox/00000000-0000-4000-8000-"
	    "000000000000", NULL, "", 404, "Problem", out, S_OUT_MAX);
	s_expect(&h, "POST", "/api/v1/inbox/00000000-0000-4000-8000-"
	    "000000000000/ack", NULL, "", 404, "Problem", out, S_OUT_MAX);
	s_expect(&h, "GET", "/api/v1/inbox/not-an-id", NULL, "", 400,
	    "Problem", out, S_OUT_MAX);
	s_expect(&h, "GET", "/api/v1/inbox?limit=x", NULL, "", 400,
	    "Problem", out, S_OUT_MAX);

	/* cases, one case, reminders, subject access, the report */
	s_expect(&k, "GET", "/api/v1/cases", NULL, "", 200, "CasesResponse",
	    out, S_OUT_MAX);
	cr_assert(strstr(out, "LP-REST-1") != NULL, "%s", out);
	s_expect(&k, "GET", "/api/v1/cases?overdue=true&route=halt", NULL, "",
	    200, "CasesResponse", out, S_OUT_MAX);
	s_expect(&k, "GET", "/api/v1/cases?route=nowhere", NULL, "", 400,
	    "Problem", out, S_OUT_MAX);
	/* the to-do list as a long poll: nothing overdue, the wait ends */
	s_expect(&k, "GET", "/api/v1/cases?overdue=true&wait=1", NULL, "", 200,
	    "CasesResponse", out, S_OUT_MAX);
	cr_assert(strstr(out, "\"cases\":[]") != NULL, "%s", out);
	s_expect(&k, "GET", "/api/v1/cases?wait=1", NULL, "", 400, "Problem",
	    out, S_OUT_MAX);
	s_expect(&k, "GET", "/api/v1/cases/LP-REST-1", NULL, "", 200,
	    "CaseResponse", out, S_OUT_MAX);
	cr_assert(strstr(out, id) != NULL, "%s", out);
	s_expect(&k, "POST", "/api/v1/cases/LP-REST-1/reminders", NULL, "", 201,
	    "RemindResponse", out, S_OUT_MAX);
	s_expect(&k, "GET", "/api/v1/subjects/LP-REST-1", NULL, "", 200,
	    "SubjectResponse", out, S_OUT_MAX);
	cr_assert(strstr(out, id) != NULL, "%s", out);
	s_expect(&k, "GET", "/api/v1/report", NULL, "", 200, "ReportResponse",
	    out, S_OUT_MAX);
	s_expect(&k, "GET", "/api/v1/todo?days=400", NULL, "", 400, "Problem",
	    out, S_OUT_MAX);
	s_expect(&k, "GET", "/api/v1/todo?days=365", NULL, "", 200,
	    "TodoResponse", out, S_OUT_MAX);
	cr_assert(strstr(out, "\"next_step\"") != NULL, "the referral's "
	    "expected answer is on the work list: %s", out);
	s_expect(&k, "GET", "/api/v1/nothing", NULL, "", 404, "Problem", out,
	    S_OUT_MAX);
	s_expect(&k, "GET", "/metrics", NULL, "", 404, "Problem", out,
	    S_OUT_MAX);
	s_expect(&k, "DELETE", "/api/v1/status", NULL, "", 405, "Problem", out,
	    S_OUT_MAX);
	cr_assert(strstr(out, "\"code\":\"method_not_allowed\"") != NULL,
	    "%s", out);
	td_chain_stop_all(&c);
	free(out);
}

/* A socket folder everyone may enter, and the [rest]/[api] lines. */
static void
s_open_rest(td_chain_t *c, td_org_t *o, struct client *k,
    const char *api_lines)
{
	char dir[4100], p[4200], *slash;
	FILE *f;

	snprintf(dir, sizeof(dir), "%.4000s/pub-%s", c->dir, o->oin);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(p, sizeof(p), "%s", dir);
	while ((slash = strrchr(p, '/')) != NULL && slash != p) {
		*slash = '\0';
		(void)chmod(p, 0755);
	}
	snprintf(k->sock, sizeof(k->sock), "%.4000s/rest.sock", dir);
	snprintf(k->dir, sizeof(k->dir), "%.4000s", dir);  /* nobody reads bodies */
	cr_assert_not_null(f = fopen(o->conf, "a"));
	fprintf(f, "\n[rest]\nlisten = unix:%s\n[api]\n%s\n", k->sock,
	    api_lines);
	fclose(f);
}

Test(rest, another_user_gets_only_its_roles)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	struct client h, nb;
	char *out = malloc(S_OUT_MAX), *body;
	uint8_t id[16];

	cr_assert_not_null(out);
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	s_client(&h, &c, OIN_HALT);
	s_open_rest(&c, halt, &h, "allow = user:nobody inbox");
	nb = h;
	nb.as = AS_NOBODY;
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-REST-R", td_example("referral"),
	    NULL, id);
	cr_assert(td_wait_settled(lp, 15000));
	/* nobody files nothing of its own: answers are kept in memory */
	s_expect(&h, "GET", "/api/v1/status", NULL, "", 200, "StatusResponse",
	    out, S_OUT_MAX);
	s_expect(&nb, "GET", "/api/v1/inbox", NULL, "", 200, "InboxList", out,
	    S_OUT_MAX);
	cr_assert(strstr(out, "\"referral\"") != NULL, "%s", out);
	s_expect(&nb, "GET", "/api/v1/outbox", NULL, "", 403, "Problem", out,
	    S_OUT_MAX);
	cr_assert(strstr(out, "needs the role 'submit'") != NULL, "%s", out);
	cr_assert(strstr(out, "\"code\":\"forbidden\"") != NULL, "%s", out);
	s_expect(&nb, "GET", "/api/v1/status", NULL, "", 403, "Problem", out,
	    S_OUT_MAX);
	cr_assert(strstr(out, "needs the role 'admin'") != NULL, "%s", out);
	s_expect(&nb, "GET", "/api/v1/subjects/X-1", NULL, "", 403, "Problem",
	    out, S_OUT_MAX);
	s_expect(&nb, "GET", "/api/v1/cases", NULL, "", 403, "Problem", out,
	    S_OUT_MAX);
	body = s_send_body("halt_outcome", OIN_LEERPLICHT, "H-1");
	s_expect(&nb, "POST", "/api/v1/events", body, "", 403, "Problem", out,
	    S_OUT_MAX);
	free(body);
	cr_assert(td_log_has(halt, "api: uid:65534 refused 'outbox'", 2000));
	td_chain_stop_all(&c);
	/* what nobody read over REST is in the audit log under its uid */
	cr_assert_eq(test_sh_output(out, S_OUT_MAX, "%s/ketenpost audit export "
	    "%s/orgs/%s/state | grep '\"kind\":\"read\"' | grep -c "
	    "'\"actor\":\"uid:65534\"'", test_bin(), c.dir, OIN_HALT), 0,
	    "no read entry for nobody: %s", out);
	cr_assert_eq(test_sh_output(out, S_OUT_MAX, "%s/ketenpost audit export "
	    "%s/orgs/%s/state | grep '\"kind\":\"api_refused\"' | grep -c "
	    "'\"actor\":\"uid:65534\"'", test_bin(), c.dir, OIN_HALT), 0,
	    "no refusal entry for nobody: %s", out);
	free(out);
}

Test(rest, an_idempotent_send_retried_across_a_restart_is_one_event)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	struct client k;
	char *out = malloc(S_OUT_MAX), *body, id[37];
	Kp__Response *r;
	size_t i, n = 0;

	cr_assert_not_null(out);
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	s_client(&k, &c, OIN_LEERPLICHT);
	body = s_send_body("referral", OIN_HALT, "LP-REST-IDEM");
	s_expect(&k, "POST", "/api/v1/events", body, "-H 'Idempotency-Key: "
	    "restart-1'", 201, "SendResponse", out, S_OUT_MAX);
	s_event_id(out, id);
	cr_assert_eq(td_stop(lp), 0);
	td_start(lp);
	s_expect(&k, "POST", "/api/v1/events", body, "-H 'Idempotency-Key: "
	    "restart-1'", 200, "SendResponse", out, S_OUT_MAX);
	cr_assert(strstr(out, id) != NULL, "the same event: %s", out);
	free(body);
	r = td_outbox(lp);
	for (i = 0; i < r->outbox->n_items; i++)
		n += strcmp(r->outbox->items[i]->case_ref, "LP-REST-IDEM") == 0;
	kp__response__free_unpacked(r, NULL);
	cr_assert_eq(n, 1, "one event in the outbox, not %zu", n);
	td_chain_stop_all(&c);
	free(out);
}

Test(rest, a_long_poll_wakes_on_an_arrival)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	struct client h, k;
	char *out = malloc(S_OUT_MAX), line[512], cmd[9000], text[37];
	uint8_t id[16];
	uint64_t t0, took, sent;
	FILE *p;
	size_t n = 0;

	cr_assert_not_null(out);
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	s_client(&h, &c, OIN_HALT);
	/* nothing there: a short wait ends empty */
	s_expect(&h, "GET", "/api/v1/inbox?wait=1", NULL, "", 200, "InboxList",
	    out, S_OUT_MAX);
	cr_assert(strstr(out, "event_id") == NULL &&
	    strstr(out, "\"items\":[]") != NULL, "%s", out);
	/* a 30 s wait, and an event sent while it waits */
	snprintf(cmd, sizeof(cmd), "curl -sS --unix-socket %s "
	    "'http://localhost/api/v1/inbox?wait=30'", h.sock);
	t0 = kp_now_ms();
	cr_assert_not_null(p = popen(cmd, "r"));
	usleep(500 * 1000);  /* let it reach the daemon (order, not timing) */
	td_send(lp, OIN_HALT, "referral", "LP-REST-POLL", td_example("referral"),
	    NULL, id);
	sent = kp_now_ms();
	while (n + 1 < S_OUT_MAX && fgets(line, sizeof(line), p) != NULL) {
		snprintf(out + n, S_OUT_MAX - n, "%s", line);
		n += strlen(line);
	}
	cr_assert_eq(pclose(p), 0, "%s", out);
	took = kp_now_ms() - t0;
	cr_log_info("long poll answered %llu ms after the send returned",
	    (unsigned long long)(kp_now_ms() - sent));
	kp_uuid_format(id, text);
	cr_assert(strstr(out, text) != NULL, "the event: %s", out);
	snprintf(cmd, sizeof(cmd), "%.4000s/rest-pushed.json", h.dir);
	cr_assert_not_null(p = fopen(cmd, "w"));
	fputs(out, p);
	fclose(p);
	s_valid(cmd, "InboxList");
	cr_assert(took < 29000, "answered at the arrival, not at the end of "
	    "its wait (%llu ms)", (unsigned long long)took);
	/* the sender's side: a wait on the event sent ends at its receipt */
	td_send(lp, OIN_HALT, "referral", "LP-REST-POLL2",
	    td_example("referral"), NULL, id);
	kp_uuid_format(id, text);
	s_client(&k, &c, OIN_LEERPLICHT);
	snprintf(line, sizeof(line), "/api/v1/outbox/%s?wait=30", text);
	t0 = kp_now_ms();
	s_expect(&k, "GET", line, NULL, "", 200, "OutboxItem", out, S_OUT_MAX);
	took = kp_now_ms() - t0;
	cr_assert(strstr(out, "\"state\":\"delivered\"") != NULL, "%s", out);
	cr_assert(took < 29000, "answered at the receipt (%llu ms)",
	    (unsigned long long)took);
	td_chain_stop_all(&c);
	free(out);
}

/* ---- TLS with client certificates (daemon/rest_tls.c) -------------- */

/* The port of o's TLS listener (beside its own and metrics' ports). */
static int
s_tls_port(const td_org_t *o)
{
	const char *c = strrchr(o->listen, ':');

	cr_assert_not_null(c);
	return atoi(c + 1) + 7;
}

/* k as a TLS client of o with certificate name (NULL: none) from pki. */
static void
s_tls_client(struct client *k, const td_chain_t *c, const td_org_t *o,
    const char *pki, const char *name)
{
	s_client(k, c, o->oin);
	snprintf(k->base, sizeof(k->base), "https://127.0.0.1:%d",
	    s_tls_port(o));
	if (name == NULL)
		snprintf(k->tls, sizeof(k->tls), "--cacert %.1000s/ca.crt", pki);
	else
		snprintf(k->tls, sizeof(k->tls), "--cacert %.1000s/ca.crt "
		    "--cert %.1000s/%s.crt --key %.1000s/%s.key", pki, pki, name,
		    pki, name);
}

/* The certificates (tests/make-tls.sh) in <chain>/../tls, and o's
 * [rest] TLS lines with `allow` (NULL: no allow line). */
static void
s_tls_setup(td_chain_t *c, td_org_t *o, char pki[4200], bool allow)
{
	char fp[128] = "";
	FILE *f;

	snprintf(pki, 4200, "%.4000s/../tls", c->dir);
	cr_assert_eq(test_sh("bash %s/tests/make-tls.sh %s", test_source_dir(),
	    pki), 0);
	cr_assert_eq(test_sh_output(fp, sizeof(fp), "cat %s/allowed.fp", pki),
	    0);
	fp[strcspn(fp, "\n")] = '\0';
	cr_assert_not_null(f = fopen(o->conf, "a"));
	fprintf(f, "\n[rest]\ntls_listen = 127.0.0.1:%d\ntls_cert = "
	    "%s/server.crt\ntls_key = %s/server.key\ntls_client_ca = "
	    "%s/ca.crt\n", s_tls_port(o), pki, pki, pki);
	if (allow)
		fprintf(f, "[api]\nallow = cert:%s submit officer\n", fp);
	fclose(f);
}

Test(rest, tls_serves_allowed_client_certificates_with_their_roles)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	struct client ok, other, none, stranger;
	char *out = malloc(S_OUT_MAX), *body, pki[4200], file[4300];

	cr_assert_not_null(out);
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	s_tls_setup(&c, lp, pki, true);
	td_start(lp);
	td_start(halt);
	cr_assert(td_log_has(lp, "serving the REST API on https://", 5000));
	s_tls_client(&ok, &c, lp, pki, "allowed");
	s_tls_client(&other, &c, lp, pki, "other");
	s_tls_client(&none, &c, lp, pki, NULL);
	s_tls_client(&stranger, &c, lp, pki, "stranger");

	/* allowed: submit and officer, as its allow line says */
	body = s_send_body("referral", OIN_HALT, "LP-TLS-1");
	s_expect(&ok, "POST", "/api/v1/events", body, "-H 'Idempotency-Key: "
	    "tls-1'", 201, "SendResponse", out, S_OUT_MAX);
	s_expect(&ok, "GET", "/api/v1/cases", NULL, "", 200, "CasesResponse",
	    out, S_OUT_MAX);
	cr_assert(strstr(out, "LP-TLS-1") != NULL, "%s", out);
	s_expect(&ok, "GET", "/api/v1/inbox", NULL, "", 403, "Problem", out,
	    S_OUT_MAX);
	cr_assert(strstr(out, "needs the role 'inbox'") != NULL, "%s", out);
	s_expect(&ok, "GET", "/api/v1/status", NULL, "", 403, "Problem", out,
	    S_OUT_MAX);
	/* the same CA, not allowed: 403 naming its fingerprint */
	s_expect(&other, "GET", "/api/v1/cases", NULL, "", 403, "Problem", out,
	    S_OUT_MAX);
	cr_assert(strstr(out, "\"code\":\"forbidden\"") != NULL &&
	    strstr(out, "is not allowed here") != NULL, "%s", out);
	s_expect(&other, "POST", "/api/v1/events", body, "", 403, "Problem",
	    out, S_OUT_MAX);
	free(body);
	/* no certificate, or one of another CA: no HTTP at all */
	cr_assert_eq(s_http(&none, "GET", "/api/v1/cases", NULL, "", out,
	    S_OUT_MAX, file), 0, "no certificate got an answer: %s", out);
	cr_assert_eq(s_http(&stranger, "GET", "/api/v1/cases", NULL, "", out,
	    S_OUT_MAX, file), 0, "another CA's certificate got an answer: %s",
	    out);
	/* ... refused in the handshake itself: under TLS 1.2 (where the
	 * client learns of it there) curl fails to connect (exit 35) */
	cr_assert_eq(test_sh("curl -sS --tls-max 1.2 %s -o /dev/null '%s/api/"
	    "v1/cases' 2>/dev/null", none.tls, none.base), 35);
	cr_assert_eq(test_sh("curl -sS --tls-max 1.2 %s -o /dev/null '%s/api/"
	    "v1/cases' 2>/dev/null", stranger.tls, stranger.base), 35);
	cr_assert_eq(test_sh("curl -sS --tls-max 1.2 %s -o /dev/null '%s/api/"
	    "v1/cases' 2>/dev/null", ok.tls, ok.base), 0, "TLS 1.2 itself "
	    "works");
	/* and the Unix socket is served as before */
	s_client(&ok, &c, OIN_LEERPLICHT);
	s_expect(&ok, "GET", "/api/v1/status", NULL, "", 200, "StatusResponse",
	    out, S_OUT_MAX);
	td_chain_stop_all(&c);
	/* what the certificate did is in the audit log under its name */
	cr_assert_eq(test_sh_output(out, S_OUT_MAX, "%s/ketenpost audit export "
	    "%s/orgs/%s/state | grep '\"actor\":\"cert:' | grep -c "
	    "'\"kind\":\"send\"'", test_bin(), c.dir, OIN_LEERPLICHT), 0,
	    "no send entry for the certificate: %s", out);
	free(out);
}

Test(rest, tls_without_an_allowed_client_refuses_to_start)
{
	td_chain_t c;
	td_org_t *lp;
	char pki[4200];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	s_tls_setup(&c, lp, pki, false);
	td_spawn(lp);
	cr_assert_neq(td_wait_exit(lp, 10000), -1, "it started");
	cr_assert(td_log_has(lp, "tls_listen: no client may use it", 1000));
	td_chain_stop_all(&c);
}

/* ---- the report by content negotiation ----------------------------- */

Test(rest, accept_picks_the_most_wanted_type)
{
	static const char *const t[] = { "application/json", "text/csv" };

	cr_assert_eq(rest_accept_pick(NULL, t, 2), 0);
	cr_assert_eq(rest_accept_pick("", t, 2), 0);
	cr_assert_eq(rest_accept_pick("text/csv", t, 2), 1);
	cr_assert_eq(rest_accept_pick("TEXT/CSV;charset=utf-8", t, 2), 1);
	cr_assert_eq(rest_accept_pick("application/json", t, 2), 0);
	cr_assert_eq(rest_accept_pick("*/*", t, 2), 0);
	cr_assert_eq(rest_accept_pick("text/*", t, 2), 1);
	cr_assert_eq(rest_accept_pick("application/json;q=0.5, text/csv", t,
	    2), 1);
	cr_assert_eq(rest_accept_pick("text/csv;q=0.9, */*;q=0.1", t, 2), 1);
	cr_assert_eq(rest_accept_pick("*/*, application/json;q=0", t, 2), 1,
	    "q=0 excludes the type the wildcard would admit");
	cr_assert_eq(rest_accept_pick("application/xml", t, 2), -1);
	cr_assert_eq(rest_accept_pick("text/html, application/*;q=0", t, 2),
	    -1);
	cr_assert_eq(rest_accept_pick("text/csv;q=2, application/json;q=x", t,
	    2), -1, "bad qualities match nothing");
	cr_assert_eq(rest_accept_pick(" , ,text/csv ; q=1.000 ,", t, 2), 1);
}

/* The CSV in file without its label column (people's words, in the
 * CLI's language; the API gives codes only), one line per row. */
static void
s_csv_codes(const char *file, char *out, size_t len)
{
	cr_assert_eq(test_sh_output(out, len, "python3 -c 'import csv,sys\n"
	    "rows = list(csv.reader(open(sys.argv[1], newline=\"\")))\n"
	    "assert rows[0][6] == \"label\", rows[0]\n"
	    "for r in rows: print(r[:6] + r[7:])' %s", file), 0, "%s: %s",
	    file, out);
}

Test(rest, the_report_is_json_or_the_clis_csv_by_accept)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	struct client k;
	char *out = malloc(S_OUT_MAX), *cli = malloc(S_OUT_MAX), *api =
	    malloc(S_OUT_MAX), path[256], file[4300], from[32], to[32], at[32];
	char hdr[4400], *h;
	uint64_t at_ms = (kp_now_ms() / 1000 + 60) * 1000;
	uint8_t id[16];
	size_t n;

	cr_assert(out != NULL && cli != NULL && api != NULL);
	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_start(td_org(&c, OIN_RVDK));
	s_client(&k, &c, OIN_LEERPLICHT);
	td_send(lp, OIN_HALT, "referral", "LP-CSV-1", td_example("referral"),
	    NULL, id);
	td_send(lp, OIN_RVDK, "referral", "LP-CSV-2", td_example_to("referral",
	    OIN_RVDK), NULL, id);
	cr_assert(td_wait_settled(lp, 15000));
	kp_time_format(1577836800000ull, from);  /* 2020-01-01 */
	kp_time_format(at_ms + 86400000ull, to);
	kp_time_format(at_ms, at);
	snprintf(path, sizeof(path), "/api/v1/report?from_ms=1577836800000&"
	    "to_ms=%llu&at_ms=%llu", (unsigned long long)(at_ms + 86400000ull),
	    (unsigned long long)at_ms);

	/* CSV: the CLI's rows, as text/csv, varying with Accept */
	snprintf(hdr, sizeof(hdr), "-H 'Accept: text/csv' -D %.4000s/csv.h",
	    k.dir);
	cr_assert_eq(s_http(&k, "GET", path, NULL, hdr, out, S_OUT_MAX, file),
	    200, "%s", out);
	snprintf(hdr, sizeof(hdr), "%.4000s/csv.h", k.dir);
	h = NULL;
	cr_assert_eq(kp_read_file(hdr, 65536, (uint8_t **)&h, &n), 0);
	cr_assert(strstr(h, "Content-Type: text/csv; charset=utf-8; "
	    "header=present") != NULL && strstr(h, "Vary: Accept") != NULL,
	    "%s", h);
	free(h);
	cr_assert(strncmp(out, "table,route,partner_oin,partner_name,month,"
	    "metric,label,value\r\n", 60) == 0, "%s", out);
	cr_assert(strstr(out, "\"summary\",\"halt\",\"\",\"\",\"\","
	    "\"referrals\",\"\",\"2\"\r\n") != NULL, "%s", out);
	s_csv_codes(file, api, S_OUT_MAX);
	snprintf(hdr, sizeof(hdr), "%.4000s/cli.csv", k.dir);
	cr_assert_eq(test_sh_output(cli, S_OUT_MAX, "%s/ketenpost report --csv "
	    "%s --from %s --to %s --at %s --config %s", test_bin(), hdr, from,
	    to, at, lp->conf), 0, "%s", cli);
	s_csv_codes(hdr, cli, S_OUT_MAX);
	cr_assert_str_eq(api, cli, "the API's CSV is the CLI's");
	cr_assert(strstr(api, "['partner', 'halt', '" OIN_HALT "'") != NULL,
	    "%s", api);

	/* JSON by default, on request and by preference */
	s_expect(&k, "GET", path, NULL, "", 200, "ReportResponse", out,
	    S_OUT_MAX);
	s_expect(&k, "GET", path, NULL, "-H 'Accept: application/json'", 200,
	    "ReportResponse", out, S_OUT_MAX);
	s_expect(&k, "GET", path, NULL, "-H 'Accept: text/csv;q=0.5, "
	    "application/*'", 200, "ReportResponse", out, S_OUT_MAX);
	/* nothing it can give: 406 */
	s_expect(&k, "GET", path, NULL, "-H 'Accept: application/xml'", 406,
	    "Problem", out, S_OUT_MAX);
	cr_assert(strstr(out, "\"code\":\"not_acceptable\"") != NULL, "%s",
	    out);
	td_chain_stop_all(&c);
	free(out);
	free(cli);
	free(api);
}

/* ---- webhooks (daemon/webhook.c) ---------------------------------- */

/* Start tests/webhook_receiver.py on port, logging to log.  OUT: pid. */
static pid_t
s_receiver(const char *dir, int port, char log[4200])
{
	char ready[4200], portarg[16], script[4200];
	pid_t pid;
	int i;

	snprintf(log, 4200, "%.4000s/webhook.log", dir);
	snprintf(ready, sizeof(ready), "%.4000s/webhook.ready", dir);
	snprintf(script, sizeof(script), "%.4000s/tests/webhook_receiver.py",
	    test_source_dir());
	snprintf(portarg, sizeof(portarg), "%d", port);
	cr_assert((pid = fork()) >= 0);
	if (pid == 0) {
		execlp("python3", "python3", script, portarg, log, ready,
		    (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200 && access(ready, F_OK) != 0; i++)
		usleep(50 * 1000);
	cr_assert_eq(access(ready, F_OK), 0, "the receiver did not start");
	return pid;
}

/* Wait (up to about ms) until log has a line with every needle. */
static bool
s_log_line(const char *log, const char *n1, const char *n2, int ms)
{
	char out[65536];
	int i;

	for (i = 0; i < ms / 100; i++) {
		if (test_sh_output(out, sizeof(out), "grep -F -- '%s' %s "
		    "2>/dev/null | grep -c -F -- '%s'", n1, log, n2) == 0 &&
		    atoi(out) > 0)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* SELECT count(*) FROM webhook WHERE where, in o's database. */
static long
s_webhook_rows(const td_chain_t *c, const char *oin, const char *where)
{
	char dir[4200], out[256];

	td_state_dir(c, oin, dir, sizeof(dir));
	cr_assert_eq(test_sh_output(out, sizeof(out), "sqlite3 -cmd '.timeout "
	    "5000' %s/ketenpost.db \"SELECT count(*) FROM webhook WHERE %s\"",
	    dir, where), 0, "%s", out);
	return strtol(out, NULL, 10);
}

Test(rest, a_webhook_notice_is_retried_until_delivered_and_recorded)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char log[4200], text[37], n1[128], file[4300], out[4096], clock[4200];
	uint64_t t0 = kp_now_ms();
	uint8_t id[16];
	pid_t rx;
	FILE *f;
	int port;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	port = s_tls_port(lp) - 2;  /* beside its own ports: base + 5 */
	rx = s_receiver(c.dir, port, log);
	cr_assert_not_null(f = fopen(lp->conf, "a"));
	fprintf(f, "\n[rest]\nwebhook = http://127.0.0.1:%d/lp\n", port);
	fclose(f);
	cr_assert_not_null(f = fopen(halt->conf, "a"));
	fprintf(f, "\n[rest]\nwebhook = http://localhost:%d/halt/in\n", port);
	fclose(f);
	/* a clock the test moves, for the overdue answer at the end */
	snprintf(clock, sizeof(clock), "%.4000s/clock", c.dir);
	td_set_clock(clock, t0);
	cr_assert_eq(setenv("KETENPOST_CLOCK_FILE", clock, 1), 0);
	td_start(lp);
	td_start(halt);
	unsetenv("KETENPOST_CLOCK_FILE");
	td_send(lp, OIN_HALT, "referral", "LP-HOOK-1", td_example("referral"),
	    NULL, id);
	td_set_clock(clock, t0 + 10000);
	kp_uuid_format(id, text);

	/* Halt is told of the arrival, Leerplicht of the receipt: each
	 * first answered 500, then delivered on the retry */
	snprintf(n1, sizeof(n1), "\"event_id\": \"%s\"", text);
	cr_assert(s_log_line(log, "\"path\": \"/halt/in\", \"status\": 500",
	    n1, 20000), "no first notice of the arrival");
	cr_assert(s_log_line(log, "\"path\": \"/halt/in\", \"status\": 204",
	    n1, 20000), "the arrival's notice was not retried");
	cr_assert(s_log_line(log, "\"path\": \"/lp\", \"status\": 500", n1,
	    20000), "no first notice of the receipt");
	cr_assert(s_log_line(log, "\"path\": \"/lp\", \"status\": 204", n1,
	    20000), "the receipt's notice was not retried");
	cr_assert(s_log_line(log, "\"/halt/in\"", "\"kind\": \"event\"",
	    100));
	cr_assert(s_log_line(log, "\"/lp\"", "\"kind\": \"receipt\"", 100));
	cr_assert(s_log_line(log, "\"/lp\"", "\"type\": \"application/json\"",
	    100));
	/* the notice's form, documented in openapi.json */
	snprintf(file, sizeof(file), "%.4000s/notice.json", c.dir);
	cr_assert_eq(test_sh_output(out, sizeof(out), "grep -F '\"/lp\"' %s | "
	    "tail -1 | python3 -c 'import json,sys; print(json.dumps(json.load("
	    "sys.stdin)[\"notice\"]))' > %s", log, file), 0, "%s", out);
	s_valid(file, "WebhookNotice");
	/* each delivery recorded: two attempts, the last one 204 */
	cr_assert(td_log_has(lp, "webhook: notice 1 (receipt, event", 5000));
	cr_assert(td_log_has(lp, "attempt 1: HTTP 500; retried later", 100));
	cr_assert(td_log_has(lp, "delivered on attempt 2", 5000));
	cr_assert_eq(s_webhook_rows(&c, OIN_LEERPLICHT, "kind = 'receipt' AND "
	    "attempts = 2 AND last_status = 204 AND delivered_ms IS NOT NULL"),
	    1);
	cr_assert_eq(s_webhook_rows(&c, OIN_HALT, "kind = 'event' AND "
	    "attempts = 2 AND last_status = 204 AND delivered_ms IS NOT NULL"),
	    1);
	cr_assert_eq(s_webhook_rows(&c, OIN_HALT, "delivered_ms IS NULL"), 0);
	/* 91 days on, Halt's answer (due in 90) is overdue: a notice */
	td_set_clock(clock, t0 + 91ull * 86400000ull);
	cr_assert(s_log_line(log, "\"path\": \"/lp\", \"status\": 204",
	    "\"kind\": \"overdue\"", 20000), "no notice of the overdue answer");
	cr_assert(s_log_line(log, "\"kind\": \"overdue\"", n1, 100));
	cr_assert_eq(s_webhook_rows(&c, OIN_LEERPLICHT, "kind = 'overdue' AND "
	    "attempts = 1 AND delivered_ms IS NOT NULL"), 1);
	td_chain_stop_all(&c);
	kill(rx, SIGTERM);
	waitpid(rx, NULL, 0);
}
