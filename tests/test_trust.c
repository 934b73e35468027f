/*
 * test_trust.c: a chain of independent organisations (issue 10).
 *
 * A CA folder and one folder per organisation that share nothing but the
 * bundle file: each organisation makes its own keys and request in its own
 * folder (`ketenpost-certs request`), the CA signs (`sign`) and publishes
 * the bundle, which is copied to the one shared place every daemon reads
 * (`bundle =`).  Real daemons, real sockets; the daemons re-read the bundle
 * every 300 ms, so every "within the interval" below is waited for with a
 * generous bound, never assumed.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <jansson.h>

#include "common.h"
#include "daemons.h"
#include "events.h"
#include "pbjson.h"
#include "util.h"

TestSuite(trust, .init = test_init, .timeout = 300);

#define TOOL "'%s/ketenpost-certs'"

typedef struct world {
	char dir[256];         /* everything below here */
	char ca[512];          /* the CA's folder */
	char shared[512];      /* the one shared file: the bundle */
	td_org_t lp, halt, om;
} world_t;

static int
s_port_base(void)
{
	/* the per-process formula of daemons.c, upper part of its block */
	return 10000 + (int)((unsigned)getpid() % 2700) * 8 + 5;
}

/* At the CA: publish the bundle to `to` (atomically). */
static void
s_publish_to(world_t *w, const char *to)
{
	cr_assert_eq(test_sh("cp '%s/bundle' '%s.new' && mv '%s.new' '%s'",
	    w->ca, to, to, to), 0);
}

/* At the CA: publish the bundle to the shared place. */
static void
s_publish(world_t *w)
{
	s_publish_to(w, w->shared);
}

static void
s_ca(world_t *w, const char *fmt, const char *arg)
{
	char cmd[2048], out[8192];
	int rc;

	snprintf(cmd, sizeof(cmd), fmt, arg);
	rc = test_sh_output(out, sizeof(out), TOOL " %s", test_bin(), cmd);
	cr_assert_eq(rc, 0, "ketenpost-certs %s: %s", cmd, out);
	(void)w;
}

/* An organisation's own folder: ca.crt (pinned), keys, request, config. */
static void
s_org(world_t *w, td_org_t *o, const char *name, const char *oin,
    const char *role, int port)
{
	char dir[600], out[8192];
	FILE *f;
	int rc;

	snprintf(dir, sizeof(dir), "%s/%s", w->dir, name);
	snprintf(o->oin, sizeof(o->oin), "%s", oin);
	snprintf(o->role, sizeof(o->role), "%s", role);
	snprintf(o->listen, sizeof(o->listen), "tcp://127.0.0.1:%d", port);
	snprintf(o->conf, sizeof(o->conf), "%s/ketenpostd.conf", dir);
	snprintf(o->log, sizeof(o->log), "%s/log", dir);
	snprintf(o->api, sizeof(o->api), "ipc://%s/state/api.sock", dir);
	cr_assert_eq(test_sh("mkdir -m 0700 '%s' && cp '%s/ca.crt' '%s/'",
	    dir, w->ca, dir), 0);
	rc = test_sh_output(out, sizeof(out), TOOL " request --dir '%s/keys' "
	    "--ca '%s/ca.crt' --oin %s --role %s --name 'Org %s' --endpoint %s",
	    test_bin(), dir, dir, oin, role, name, o->listen);
	cr_assert_eq(rc, 0, "request: %s", out);
	f = fopen(o->conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "[ketenpostd]\nbundle = %s\nca = %s/ca.crt\norg = %s\n"
	    "org_dir = %s/keys\nstate_dir = %s/state\nlisten = %s\n"
	    "bundle_check_interval = 300ms\n\n[delivery]\n"
	    "retry_initial = 200ms\nretry_max = 1s\nhead_interval = 500ms\n",
	    w->shared, dir, oin,
	    dir, dir, o->listen);
	fclose(f);
}

/* At the CA: sign the request the organisation sent. */
static void
s_sign(world_t *w, const char *name, const char *extra)
{
	char arg[1024];

	snprintf(arg, sizeof(arg), "sign --dir '%s' --request '%s/%s/keys/"
	    "request.csr' %s", w->ca, w->dir, name, extra);
	s_ca(w, "%s", arg);
}

static void
s_world(world_t *w)
{
	int base = s_port_base();
	char arg[600];

	memset(w, 0, sizeof(*w));
	test_tmpdir(w->dir, sizeof(w->dir));
	snprintf(w->ca, sizeof(w->ca), "%s/ca", w->dir);
	snprintf(w->shared, sizeof(w->shared), "%s/bundle", w->dir);
	snprintf(arg, sizeof(arg), "init --dir '%s' --name 'Testketen'", w->ca);
	s_ca(w, "%s", arg);
	s_org(w, &w->lp, "lp", OIN_LEERPLICHT, "leerplicht", base);
	s_org(w, &w->halt, "halt", OIN_HALT, "halt", base + 1);
	s_org(w, &w->om, "om", OIN_OM, "om", base + 2);
}

/* One API call with a generous bound: a daemon in the middle of a reload
 * on a loaded machine may take seconds to answer.  Asserts an answer. */
static Kp__Response *
s_call(const td_org_t *o, Kp__Request *req)
{
	Kp__Response *r = NULL;

	cr_assert_eq(td_call(o, req, &r, 30000), 0, "no answer from %s in "
	    "30 s; see %s", o->oin, o->log);
	cr_assert(r->ok, "%s: %s", o->oin, r->error);
	return r;
}

static Kp__Response *
s_inbox(const td_org_t *o)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;

	l.has_limit = l.has_all = 1;
	l.limit = 10000;
	l.all = 1;
	req.op_case = KP__REQUEST__OP_INBOX;
	req.inbox = &l;
	return s_call(o, &req);
}

static Kp__Response *
s_status(const td_org_t *o)
{
	Kp__Request req = KP__REQUEST__INIT;

	req.op_case = KP__REQUEST__OP_STATUS;
	req.status = 1;
	return s_call(o, &req);
}

/* Number of inbox events of o from sender. */
static size_t
s_inbox_from(const td_org_t *o, const char *sender)
{
	Kp__Response *r = s_inbox(o);
	size_t i, n = 0;

	for (i = 0; i < r->inbox->n_items; i++)
		if (strcmp(r->inbox->items[i]->from_oin, sender) == 0)
			n++;
	kp__response__free_unpacked(r, NULL);
	return n;
}

static bool
s_wait_inbox(const td_org_t *o, const char *sender, size_t n, int ms)
{
	int waited;

	for (waited = 0; waited <= ms; waited += 100) {
		if (s_inbox_from(o, sender) >= n)
			return true;
		usleep(100000);
	}
	return false;
}

/* Submit one event to `from`'s API (bound 30 s).  0 and *id (if not
 * NULL) on success; -1 with the error in msg otherwise.  No assertion:
 * the sender process of the renewal test uses it too. */
static int
s_send_try(const td_org_t *from, const td_org_t *to, const char *type,
    const char *ref, const uint8_t *reply_to, uint8_t id[16], char *msg,
    size_t msg_len)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest sr = KP__SEND_REQUEST__INIT;
	Kp__Response *r = NULL;
	ProtobufCMessage *ev = NULL;
	json_t *j = json_loads(td_example_to(type, to->oin), 0, NULL);
	uint8_t payload[4096];
	kp_err_t e;
	int rc = -1;

	snprintf(msg, msg_len, "bad example %s", type);
	if (j == NULL)
		return -1;
	sr.has_event_type = 1;
	sr.event_type = events_type_from_name(type);
	if (pbjson_from_json(events_descriptor(sr.event_type), j, &ev,
	    &e) != 0) {
		json_decref(j);
		snprintf(msg, msg_len, "%s", e.msg);
		return -1;
	}
	json_decref(j);
	sr.has_payload = 1;
	sr.payload.data = payload;
	sr.payload.len = protobuf_c_message_pack(ev, payload);
	pbjson_free(ev);
	sr.to_oin = (char *)to->oin;
	sr.case_ref = (char *)ref;
	if (reply_to != NULL) {
		sr.has_in_reply_to = 1;
		sr.in_reply_to.data = (uint8_t *)reply_to;
		sr.in_reply_to.len = 16;
	}
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &sr;
	if (td_call(from, &req, &r, 30000) != 0) {
		snprintf(msg, msg_len, "no answer from %s in 30 s", from->oin);
		return -1;
	}
	if (r->ok && r->result_case == KP__RESPONSE__RESULT_SEND &&
	    r->send->has_event_id && r->send->event_id.len == 16) {
		if (id != NULL)
			memcpy(id, r->send->event_id.data, 16);
		rc = 0;
	} else
		snprintf(msg, msg_len, "%s: %s", from->oin, r->error ?
		    r->error : "no event id");
	kp__response__free_unpacked(r, NULL);
	return rc;
}

/* td_send, with s_call's generous bound; reply_to may be NULL.  OUT:
 * id (may be NULL). */
static void
s_send_id(td_org_t *from, const td_org_t *to, const char *type,
    const char *ref, const uint8_t *reply_to, uint8_t id[16])
{
	char msg[512];

	cr_assert_eq(s_send_try(from, to, type, ref, reply_to, id, msg,
	    sizeof(msg)), 0, "%s", msg);
}

static void
s_send(td_org_t *from, const td_org_t *to, const char *type,
    const char *ref)
{
	s_send_id(from, to, type, ref, NULL, NULL);
}

Test(trust, bundle_only_chain_picks_up_partners_and_revocations_live)
{
	world_t w;
	char arg[600];

	s_world(&w);
	s_sign(&w, "lp", "");
	s_sign(&w, "halt", "");
	snprintf(arg, sizeof(arg), "bundle --dir '%s'", w.ca);
	s_ca(&w, "%s", arg);
	s_publish(&w);
	/* The CA's folder holds no organisation secret. */
	cr_assert_eq(test_sh("test -z \"$(find '%s' -name '*.key' "
	    "! -path '%s/ca/*')\"", w.ca, w.ca), 0);
	td_start(&w.lp);
	td_start(&w.halt);
	s_send(&w.lp, &w.halt, "referral", "case-1");
	cr_assert(s_wait_inbox(&w.halt, OIN_LEERPLICHT, 1, 20000),
	    "halt did not receive the referral; see %s", w.halt.log);

	/* A new partner: om's certificate arrives with bundle version 2,
	 * picked up by the running daemons without a restart. */
	s_sign(&w, "om", "");
	s_publish(&w);
	cr_assert(td_log_has(&w.lp, "version 2 (issued", 10000),
	    "lp did not apply bundle version 2; see %s", w.lp.log);
	cr_assert(td_log_has(&w.lp, "reload: 3 partners, 0 refused", 10000),
	    "see %s", w.lp.log);
	td_start(&w.om);
	s_send(&w.lp, &w.om, "referral", "case-2");
	cr_assert(s_wait_inbox(&w.om, OIN_LEERPLICHT, 1, 20000),
	    "om did not receive; see %s", w.om.log);

	/* Bad bundles at the shared place: each refused with its own line,
	 * the applied version kept (om stays a partner). */
	cr_assert_eq(test_sh("cp '%s' '%s/good' && sed -i 's/^issued 2/issued 1/'"
	    " '%s'", w.shared, w.dir, w.shared), 0);
	cr_assert(td_log_has(&w.lp, "signature does not verify (damaged or "
	    "tampered with); get a fresh copy from the chain CA; keeping the "
	    "applied version 2", 10000), "see %s", w.lp.log);
	cr_assert_eq(test_sh("cp '%s/good' '%s'", w.dir, w.shared), 0);

	/* Revocation: within the interval, halt's connection is dropped and
	 * its next event refused, with no SIGHUP. */
	snprintf(arg, sizeof(arg), "revoke --dir '%s' --oin %s", w.ca, OIN_HALT);
	s_ca(&w, "%s", arg);
	s_publish(&w);
	cr_assert(td_log_has(&w.lp, "version 3 (issued", 10000),
	    "lp did not apply bundle version 3; see %s", w.lp.log);
	cr_assert(td_log_has(&w.lp, "reload: 2 partners, 0 refused", 10000),
	    "see %s", w.lp.log);
	/* halt's connection to lp is dropped, and its reconnection refused
	 * by lp's ZAP: halt's key is no longer any verified partner's. */
	cr_assert(td_log_has(&w.halt, "outbound: disconnected from "
	    OIN_LEERPLICHT, 10000), "see %s", w.halt.log);
	cr_assert(td_log_has(&w.lp, "is not the transport key of any verified "
	    "partner", 10000), "see %s", w.lp.log);
	s_send(&w.halt, &w.lp, "halt_outcome", "case-1");
	sleep(3);
	cr_assert_eq(s_inbox_from(&w.lp, OIN_HALT), 0,
	    "lp accepted an event from revoked halt");
	s_send(&w.lp, &w.om, "referral", "case-3");
	cr_assert(s_wait_inbox(&w.om, OIN_LEERPLICHT, 2, 20000),
	    "om no longer receives from lp; see %s", w.om.log);
	td_stop(&w.lp);
	td_stop(&w.halt);
	td_stop(&w.om);
	test_sh("rm -rf '%s'", w.dir);
}

static bool
s_wait_status(const td_org_t *o, bool stale, int ms)
{
	Kp__Response *r;
	bool now;
	int waited;

	for (waited = 0; waited <= ms; waited += 100) {
		r = s_status(o);
		now = r->status->trust_stale;
		kp__response__free_unpacked(r, NULL);
		if (now == stale)
			return true;
		usleep(100000);
	}
	return false;
}

/* The status warnings of o, joined (static buffer). */
static const char *
s_warnings(const td_org_t *o)
{
	static char out[8192];
	Kp__Response *r = s_status(o);
	size_t i;

	out[0] = '\0';
	for (i = 0; i < r->status->n_trust_warnings; i++) {
		strncat(out, r->status->trust_warnings[i],
		    sizeof(out) - strlen(out) - 2);
		strcat(out, "\n");
	}
	kp__response__free_unpacked(r, NULL);
	return out;
}

Test(trust, stale_crl_fails_closed_while_up_and_resumes_on_a_fresh_bundle)
{
	world_t w;
	char arg[600];
	Kp__Response *r;

	s_world(&w);
	s_sign(&w, "lp", "");
	s_sign(&w, "halt", "");
	/* A CRL that lapses 6 s from now: the routine reissue "missed". */
	snprintf(arg, sizeof(arg), "crl --dir '%s' --seconds 6", w.ca);
	s_ca(&w, "%s", arg);
	s_publish(&w);
	td_start(&w.lp);
	td_start(&w.halt);
	/* Ahead of the lapse: a warning in status (threshold 14 days). */
	cr_assert(strstr(s_warnings(&w.lp), "the CRL expires at") != NULL,
	    "%s", s_warnings(&w.lp));
	s_send(&w.lp, &w.halt, "referral", "case-1");
	cr_assert(s_wait_inbox(&w.halt, OIN_LEERPLICHT, 1, 20000),
	    "see %s", w.halt.log);

	/* Stale: both stay up, say why, and exchange nothing. */
	cr_assert(s_wait_status(&w.lp, true, 15000), "lp never went stale");
	cr_assert(s_wait_status(&w.halt, true, 15000), "halt never went stale");
	cr_assert(strstr(s_warnings(&w.lp), "trust is stale: the CRL is past "
	    "its nextUpdate") != NULL, "%s", s_warnings(&w.lp));
	s_send(&w.lp, &w.halt, "referral", "case-2");
	sleep(3);
	cr_assert_eq(s_inbox_from(&w.halt, OIN_LEERPLICHT), 1,
	    "an event was delivered on stale trust");
	r = s_status(&w.lp);
	cr_assert_eq(r->status->outbox_pending, 1, "the event must be held, "
	    "not lost");
	cr_assert_eq(r->status->outbox_dead + r->status->outbox_rejected, 0);
	kp__response__free_unpacked(r, NULL);

	/* The CA reissues the CRL: the daemons resume by themselves and the
	 * held event is delivered. */
	snprintf(arg, sizeof(arg), "crl --dir '%s' --days 7", w.ca);
	s_ca(&w, "%s", arg);
	s_publish(&w);
	cr_assert(s_wait_status(&w.lp, false, 15000), "lp stayed stale");
	cr_assert(s_wait_status(&w.halt, false, 15000), "halt stayed stale");
	cr_assert(s_wait_inbox(&w.halt, OIN_LEERPLICHT, 2, 30000),
	    "the held event was not delivered; see %s", w.lp.log);
	td_stop(&w.lp);
	td_stop(&w.halt);
	test_sh("rm -rf '%s'", w.dir);
}

/* ---- renewal with events flowing ------------------------------------ */

/*
 * The sender of the renewal test, in its own process: lp submits a
 * referral to halt, and every other time one to om, every 40 ms until
 * `stop` exists.  Each accepted submission goes to `ids` as "OIN HEXID",
 * a refused or unanswered one as "FAIL message".
 */
static void __attribute__((noreturn))
s_sender(world_t *w, const char *ids, const char *stop)
{
	const td_org_t *to;
	char ref[32], msg[512], hex[33];
	uint8_t id[16];
	FILE *f = fopen(ids, "w");
	unsigned i;

	if (f == NULL)
		_exit(1);
	for (i = 0; access(stop, F_OK) != 0; i++) {
		to = i % 2 ? &w->om : &w->halt;
		snprintf(ref, sizeof(ref), "flow-%u", i);
		if (s_send_try(&w->lp, to, "referral", ref, NULL, id, msg,
		    sizeof(msg)) == 0) {
			kp_hex(id, 16, hex);
			fprintf(f, "%s %s\n", to->oin, hex);
		} else
			fprintf(f, "FAIL %s\n", msg);
		fflush(f);
		usleep(40000);
	}
	fclose(f);
	_exit(0);
}

static size_t
s_lines(const char *path)
{
	char line[1024];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n++;
	fclose(f);
	return n;
}

/* Times o's inbox holds the event with this hex id. */
static size_t
s_inbox_count(const Kp__Response *r, const char *hex_id)
{
	char hex[33];
	size_t i, n = 0;

	for (i = 0; i < r->inbox->n_items; i++) {
		if (r->inbox->items[i]->event_id.len != 16)
			continue;
		kp_hex(r->inbox->items[i]->event_id.data, 16, hex);
		if (strcmp(hex, hex_id) == 0)
			n++;
	}
	return n;
}

/* Every id in the sender's file is in its recipient's inbox exactly once;
 * no submission failed.  Returns the number of events. */
static size_t
s_check_all_stored_once(world_t *w, const char *ids)
{
	Kp__Response *halt = s_inbox(&w->halt), *om = s_inbox(&w->om);
	char line[1024], oin[32], hex[64];
	size_t n = 0;
	FILE *f = fopen(ids, "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		cr_assert(strncmp(line, "FAIL", 4) != 0, "a submission during "
		    "the renewal failed: %s", line);
		cr_assert_eq(sscanf(line, "%31s %63s", oin, hex), 2, "%s", line);
		cr_assert_eq(s_inbox_count(strcmp(oin, OIN_OM) == 0 ? om : halt,
		    hex), 1, "event %s to %s is not stored exactly once", hex,
		    oin);
		n++;
	}
	fclose(f);
	kp__response__free_unpacked(halt, NULL);
	kp__response__free_unpacked(om, NULL);
	return n;
}

/* Nothing refused, dead or rejected at o: status and audit log. */
static void
s_check_no_refusal(const td_org_t *o, const char *state)
{
	Kp__Response *r;
	char out[4096];

	cr_assert(td_wait_settled(o, 30000), "%s: events still pending; see %s",
	    o->oin, o->log);
	r = s_status(o);
	cr_assert_eq(r->status->outbox_rejected + r->status->outbox_dead, 0,
	    "%s: %ju rejected, %ju dead", o->oin,
	    (uintmax_t)r->status->outbox_rejected,
	    (uintmax_t)r->status->outbox_dead);
	kp__response__free_unpacked(r, NULL);
	cr_assert_eq(test_sh_output(out, sizeof(out), "'%s/ketenpost' audit "
	    "export '%s' > '%s.audit.jsonl'", test_bin(), state, state), 0,
	    "%s", out);
	/* the pattern matches this export's entries at all ... */
	cr_assert_eq(test_sh("grep -Eq '\"kind\": ?\"(send|receipt_sent)\"' "
	    "'%s.audit.jsonl'", state), 0, "no entry of %s matched", o->oin);
	/* ... and none of them is a refusal, dead letter or alarm */
	cr_assert_neq(test_sh("grep -Eq '\"kind\": ?\"(refusal_in|"
	    "refusal_out|dead_letter|head_alarm)\"' '%s.audit.jsonl'", state),
	    0, "the audit log of %s records a refusal, dead letter or alarm; "
	    "see %s.audit.jsonl", o->oin, state);
	cr_assert_eq(td_log_count(o, "does not verify; ignored"), 0,
	    "%s could not verify a partner's tree head; see %s", o->oin,
	    o->log);
}

Test(trust, renewal_with_events_flowing_loses_and_refuses_nothing)
{
	world_t w;
	char arg[1600], ids[600], stop[600], om_bundle[600], keys[600];
	char state[600], out[8192];
	uint8_t ref1[16], ref2[16], ref3[16];
	size_t reloads, at_switch, total;
	Kp__Response *r;
	pid_t pid;
	int status;

	s_world(&w);
	/* om receives its copy of the bundle by itself, late: it learns of
	 * lp's new certificate only after lp switched (the other order). */
	snprintf(om_bundle, sizeof(om_bundle), "%s/om/bundle", w.dir);
	cr_assert_eq(test_sh("sed -i 's|^bundle = .*|bundle = %s|' '%s'",
	    om_bundle, w.om.conf), 0);
	s_sign(&w, "lp", "");
	s_sign(&w, "halt", "");
	s_sign(&w, "om", "");
	snprintf(arg, sizeof(arg), "bundle --dir '%s'", w.ca);
	s_ca(&w, "%s", arg);
	s_publish(&w);
	s_publish_to(&w, om_bundle);
	td_start(&w.lp);
	td_start(&w.halt);
	td_start(&w.om);
	s_send_id(&w.lp, &w.halt, "referral", "case-1", NULL, ref1);
	s_send_id(&w.lp, &w.om, "referral", "case-2", NULL, ref2);
	s_send_id(&w.lp, &w.halt, "referral", "case-3", NULL, ref3);
	cr_assert(s_wait_inbox(&w.halt, OIN_LEERPLICHT, 2, 20000), "see %s",
	    w.halt.log);
	cr_assert(s_wait_inbox(&w.om, OIN_LEERPLICHT, 1, 20000), "see %s",
	    w.om.log);

	/* From here to the end lp keeps submitting, in its own process. */
	snprintf(ids, sizeof(ids), "%s/sent-ids", w.dir);
	snprintf(stop, sizeof(stop), "%s/stop-sending", w.dir);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		s_sender(&w, ids, stop);
	}
	cr_assert(s_wait_inbox(&w.halt, OIN_LEERPLICHT, 5, 20000), "the "
	    "events of the sender do not arrive; see %s", w.lp.log);

	/* Renewal: lp makes new keys (keys/next/), the CA signs them with
	 * --renew and publishes bundle version 2 with both certificates. */
	snprintf(keys, sizeof(keys), "%s/lp/keys", w.dir);
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " renew --dir '%s' "
	    "--ca '%s/lp/ca.crt'", test_bin(), keys, w.dir), 0, "%s", out);
	snprintf(arg, sizeof(arg), "sign --dir '%s' --renew --request "
	    "'%s/next/request.csr'", w.ca, keys);
	s_ca(&w, "%s", arg);
	s_publish(&w);
	cr_assert(td_log_has(&w.lp, "version 2 (issued", 10000), "see %s",
	    w.lp.log);
	cr_assert(td_log_has(&w.halt, "version 2 (issued", 10000), "see %s",
	    w.halt.log);
	/* lp has not switched: halt's link tries lp's new server key first
	 * and falls back to the old one, which lp still listens with. */
	cr_assert(td_log_has(&w.halt, "(server key of its previous certificate",
	    15000), "halt did not fall back to lp's old key; see %s",
	    w.halt.log);
	/* halt seals to lp's newest certificate; lp, not yet switched, opens
	 * it with keys/next/payload.key. */
	s_send_id(&w.halt, &w.lp, "halt_outcome", "H-1", ref1, NULL);
	cr_assert(s_wait_inbox(&w.lp, OIN_HALT, 1, 20000), "lp could not "
	    "take an event sealed to its next key; see %s", w.lp.log);

	/* The switch, while the sender goes on. */
	reloads = td_log_count(&w.lp, "reload: 3 partners, 0 refused");
	at_switch = s_lines(ids);
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " switch --dir "
	    "'%s'", test_bin(), keys), 0, "%s", out);
	cr_assert_eq(test_sh("test -f '%s/previous/payload.key' && "
	    "test \"$(stat -c %%a '%s/previous/payload.key')\" = 600 && "
	    "test ! -e '%s/next'", keys, keys, keys), 0);
	td_hup(&w.lp);
	cr_assert(td_log_count_reaches(&w.lp, "reload: 3 partners, 0 refused",
	    reloads + 1, 15000), "lp did not reload with its new keys; see %s",
	    w.lp.log);
	/* om still knows only lp's old certificate: what it sends to lp is
	 * held (lp now listens with its new key), not refused. */
	s_send_id(&w.om, &w.lp, "om_decision", "OM-2", ref2, NULL);
	sleep(3);
	cr_assert_eq(s_inbox_from(&w.lp, OIN_OM), 0, "om reached lp with its "
	    "old key: lp did not switch");
	r = s_status(&w.om);
	cr_assert_eq(r->status->outbox_pending, 1);
	cr_assert_eq(r->status->outbox_rejected + r->status->outbox_dead, 0);
	kp__response__free_unpacked(r, NULL);
	/* The bundle reaches om: the held events flow both ways, and lp
	 * opens om's event (sealed to its old key) with keys/previous/. */
	s_publish_to(&w, om_bundle);
	cr_assert(td_log_has(&w.om, "version 2 (issued", 10000), "see %s",
	    w.om.log);
	cr_assert(s_wait_inbox(&w.lp, OIN_OM, 1, 30000), "om's held event "
	    "did not reach lp; see %s and %s", w.om.log, w.lp.log);
	s_send_id(&w.halt, &w.lp, "halt_outcome", "H-3", ref3, NULL);
	cr_assert(s_wait_inbox(&w.lp, OIN_HALT, 2, 20000), "see %s", w.lp.log);
	cr_assert(s_wait_inbox(&w.om, OIN_LEERPLICHT, 2 + (at_switch + 1) / 2,
	    30000), "lp's events to om did not resume; see %s", w.lp.log);

	cr_assert_eq(test_sh("touch '%s'", stop), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_assert(td_wait_settled(&w.lp, 60000), "lp's outbox did not drain; "
	    "see %s", w.lp.log);
	total = s_check_all_stored_once(&w, ids);
	cr_assert(at_switch >= 4 && total >= at_switch + 20, "the sender "
	    "must have submitted before and through the switch (%zu of %zu "
	    "before)", at_switch, total);
	snprintf(state, sizeof(state), "%s/lp/state", w.dir);
	s_check_no_refusal(&w.lp, state);
	snprintf(state, sizeof(state), "%s/halt/state", w.dir);
	s_check_no_refusal(&w.halt, state);
	snprintf(state, sizeof(state), "%s/om/state", w.dir);
	s_check_no_refusal(&w.om, state);
	td_stop(&w.lp);
	td_stop(&w.halt);
	td_stop(&w.om);

	/* lp's heads signed with the old key still verify, against the
	 * certificate valid when they were signed. */
	snprintf(state, sizeof(state), "%s/lp/state", w.dir);
	cr_assert_eq(test_sh_output(out, sizeof(out), "'%s/ketenpost' audit "
	    "verify '%s' --ca '%s/lp/ca.crt'", test_bin(), state, w.dir), 0,
	    "%s", out);
	cr_assert(strstr(out, "intact") != NULL, "%s", out);
	test_sh("rm -rf '%s'", w.dir);
}
