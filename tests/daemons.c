/*
 * daemons.c: real ketenpostd processes for the integration tests.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "common.h"
#include "daemons.h"
#include "chain.h"
#include "envelope.h"
#include "events.h"
#include "pack.h"
#include "pbjson.h"
#include "policy.h"

static const struct { const char *oin, *role, *name; } s_orgs[] = {
	{ OIN_LEERPLICHT, "leerplicht", "Gemeente Voorbeeldstad Leerplicht" },
	{ OIN_HALT, "halt", "Halt Voorbeeldregio" },
	{ OIN_RVDK, "rvdk", "Raad voor de Kinderbescherming" },
	{ OIN_OM, "om", "Openbaar Ministerie" },
	{ OIN_JBT, "jbt", "Jeugdbeschermingstafel" },
};

static int
s_port_base(void)
{
	/* distinct per test process (ctest and criterion run tests in
	 * parallel, so a fixed port would collide), and below Linux's
	 * ephemeral range (32768-60999), where outgoing connections could
	 * already hold the port */
	return 10000 + (int)((unsigned)getpid() % 2700) * 8;
}

static void
s_write_conf(td_chain_t *c, td_org_t *o, const char *extra)
{
	FILE *f = fopen(o->conf, "w");

	cr_assert_not_null(f, "cannot write %s", o->conf);
	fprintf(f, "[ketenpostd]\nchain_dir = %s\norg = %s\nlisten = %s\n\n"
	    "[delivery]\nretry_initial = 200ms\nretry_max = 2s\n%s",
	    c->dir, o->oin, o->listen, extra ? extra : "");
	fclose(f);
}

void
td_chain_make(td_chain_t *c, const char *extra_conf)
{
	char tmp[512], dir[600];
	int base = s_port_base();
	size_t i;

	memset(c, 0, sizeof(*c));
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dir, sizeof(dir), "%s/chain", tmp);
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	cr_assert_eq(test_sh("%s/ketenpost-certs init --dir %s >/dev/null",
	    test_bin(), c->dir), 0);
	for (i = 0; i < sizeof(s_orgs) / sizeof(s_orgs[0]); i++) {
		td_org_t *o = &c->orgs[c->n++];

		snprintf(o->oin, sizeof(o->oin), "%s", s_orgs[i].oin);
		snprintf(o->role, sizeof(o->role), "%s", s_orgs[i].role);
		snprintf(o->listen, sizeof(o->listen), "tcp://127.0.0.1:%d",
		    base + (int)i);
		cr_assert_eq(test_sh("%s/ketenpost-certs org --dir %s --oin %s "
		    "--role %s --name '%s' --endpoint %s >/dev/null", test_bin(),
		    c->dir, o->oin, o->role, s_orgs[i].name, o->listen), 0);
		snprintf(o->conf, sizeof(o->conf), "%s/%s.conf", tmp, s_orgs[i].oin);
		snprintf(o->log, sizeof(o->log), "%s/%s.log", tmp, s_orgs[i].oin);
		snprintf(o->api, sizeof(o->api), "ipc://%s/orgs/%s/state/api.sock",
		    dir, s_orgs[i].oin);
		s_write_conf(c, o, extra_conf);
	}
}

td_org_t *
td_org(td_chain_t *c, const char *oin)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->orgs[i].oin, oin) == 0)
			return &c->orgs[i];
	cr_assert_fail("no org %s in the test chain", oin);
	return NULL;
}

pid_t
td_spawn(td_org_t *o)
{
	char prog[4096];
	pid_t pid;
	int fd;

	snprintf(prog, sizeof(prog), "%s/ketenpostd", test_bin());
	pid = fork();
	cr_assert(pid >= 0, "fork failed");
	if (pid == 0) {
		/* a failed assertion ends the test process without cleanup:
		 * take the daemon down with it rather than leave it running */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(o->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(prog, prog, "--config", o->conf, "-v", (char *)NULL);
		_exit(127);
	}
	o->pid = pid;
	return pid;
}

void
td_start(td_org_t *o)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *resp = NULL;
	int i;

	td_spawn(o);
	req.op_case = KP__REQUEST__OP_STATUS;
	req.status = 1;
	for (i = 0; i < 100; i++) {
		if (td_call(o, &req, &resp, 200) == 0) {
			kp__response__free_unpacked(resp, NULL);
			return;
		}
		cr_assert_eq(waitpid(o->pid, NULL, WNOHANG), 0,
		    "ketenpostd %s exited at start; see %s", o->oin, o->log);
		usleep(50000);
	}
	cr_assert_fail("ketenpostd %s did not answer in time; see %s", o->oin,
	    o->log);
}

/* Is every thread of pid stopped (state T or t in /proc)? */
static bool
s_all_stopped(pid_t pid)
{
	char path[64], line[512], *st;
	struct dirent *e;
	bool all = true;
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return false;
	while (all && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/stat",
		    (int)pid, e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;  /* the thread ended */
		/* "tid (comm) S ...": comm may hold spaces and parentheses */
		all = fgets(line, sizeof(line), f) != NULL &&
		    (st = strrchr(line, ')')) != NULL &&
		    (st[2] == 'T' || st[2] == 't');
		fclose(f);
	}
	closedir(d);
	return all;
}

void
td_pause(td_org_t *o)
{
	int i;

	cr_assert_eq(kill(o->pid, SIGSTOP), 0);
	for (i = 0; i < 400 && !s_all_stopped(o->pid); i++)
		usleep(5000);
	cr_assert(s_all_stopped(o->pid), "%s did not stop", o->oin);
}

int
td_stop(td_org_t *o)
{
	int status = 0;

	if (o->pid <= 0)
		return 0;
	kill(o->pid, SIGTERM);
	waitpid(o->pid, &status, 0);
	o->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
td_kill(td_org_t *o)
{
	if (o->pid <= 0)
		return;
	kill(o->pid, SIGKILL);
	waitpid(o->pid, NULL, 0);
	o->pid = 0;
}

void
td_hup(td_org_t *o)
{
	cr_assert(o->pid > 0);
	kill(o->pid, SIGHUP);
}

void
td_chain_stop_all(td_chain_t *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		td_stop(&c->orgs[i]);
}

bool
td_log_has(const td_org_t *o, const char *needle, int wait_ms)
{
	char buf[1 << 16];
	size_t n;
	FILE *f;
	int waited = 0;

	for (;;) {
		f = fopen(o->log, "r");
		if (f != NULL) {
			while ((n = fread(buf, 1, sizeof(buf) - 1, f)) > 0) {
				buf[n] = '\0';
				if (strstr(buf, needle) != NULL) {
					fclose(f);
					return true;
				}
			}
			fclose(f);
		}
		if (waited >= wait_ms)
			return false;
		usleep(50000);
		waited += 50;
	}
}

int
td_call(const td_org_t *o, const Kp__Request *req, Kp__Response **resp,
    int timeout_ms)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_REQ);
	uint8_t *buf = malloc(kp__request__get_packed_size(req) + 1);
	size_t n = kp__request__pack(req, buf);
	int zero = 0, rc = -1;
	zmq_msg_t m;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
	zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout_ms, sizeof(timeout_ms));
	zmq_msg_init(&m);
	if (zmq_connect(s, o->api) == 0 && zmq_send(s, buf, n, 0) >= 0 &&
	    zmq_msg_recv(&m, s, 0) >= 0) {
		*resp = kp__response__unpack(NULL, zmq_msg_size(&m),
		    zmq_msg_data(&m));
		rc = *resp != NULL ? 0 : -1;
	}
	zmq_msg_close(&m);
	free(buf);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return rc;
}

const char *
td_example(const char *type)
{
	static char buf[8192];
	char path[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/docs/examples/%s.json",
	    test_source_dir(), type);
	f = fopen(path, "r");
	cr_assert_not_null(f, "no example %s", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

const char *
td_example_to(const char *type, const char *to_oin)
{
	static char buf[8192];
	static const char *const halt_only[] = { "consent_halt",
	    "prior_halt_leerplicht", "parallel_routes" };
	json_t *j = json_loads(td_example(type), 0, NULL);
	char *text;
	size_t i;

	cr_assert_not_null(j);
	if (strcmp(type, "referral") == 0 && strcmp(to_oin, OIN_HALT) != 0)
		for (i = 0; i < sizeof(halt_only) / sizeof(halt_only[0]); i++)
			json_object_del(j, halt_only[i]);
	cr_assert_not_null(text = json_dumps(j, 0));
	snprintf(buf, sizeof(buf), "%s", text);
	free(text);
	json_decref(j);
	return buf;
}

void
td_send(td_org_t *from, const char *to_oin, const char *type,
    const char *case_ref, const char *json_text, const uint8_t *reply_to,
    uint8_t event_id[16])
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest s = KP__SEND_REQUEST__INIT;
	Kp__Response *resp = NULL;
	ProtobufCMessage *ev = NULL;
	json_t *j = json_loads(json_text, 0, NULL);
	uint8_t payload[4096];
	kp_err_t e;

	cr_assert_not_null(j);
	s.has_event_type = 1;
	s.event_type = events_type_from_name(type);
	cr_assert(pbjson_from_json(events_descriptor(s.event_type), j, &ev,
	    &e) == 0, "%s", e.msg);
	json_decref(j);
	s.has_payload = 1;
	s.payload.data = payload;
	s.payload.len = protobuf_c_message_pack(ev, payload);
	pbjson_free(ev);
	s.to_oin = (char *)to_oin;
	s.case_ref = (char *)case_ref;
	if (reply_to != NULL) {
		s.has_in_reply_to = 1;
		s.in_reply_to = (ProtobufCBinaryData){ 16, (uint8_t *)reply_to };
	}
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &s;
	cr_assert_eq(td_call(from, &req, &resp, 5000), 0, "no answer from %s",
	    from->oin);
	cr_assert(resp->ok, "send refused: %s (%s)", resp->error,
	    resp->error_code);
	memcpy(event_id, resp->send->event_id.data, 16);
	kp__response__free_unpacked(resp, NULL);
}

static Kp__Response *
s_call_ok(const td_org_t *o, Kp__Request *req)
{
	Kp__Response *resp = NULL;

	cr_assert_eq(td_call(o, req, &resp, 5000), 0, "no answer from %s",
	    o->oin);
	cr_assert(resp->ok, "%s: %s", o->oin, resp->error);
	return resp;
}

void
td_status(const td_org_t *o, Kp__StatusResponse *out)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *resp;

	req.op_case = KP__REQUEST__OP_STATUS;
	req.status = 1;
	resp = s_call_ok(o, &req);
	*out = *resp->status;
	out->oin = out->role = out->name = out->version = NULL;
	kp__response__free_unpacked(resp, NULL);
}

bool
td_wait_settled(const td_org_t *o, int ms)
{
	Kp__StatusResponse st;
	int waited = 0;

	for (;;) {
		td_status(o, &st);
		if (st.outbox_pending == 0)
			return true;
		if (waited >= ms)
			return false;
		usleep(100000);
		waited += 100;
	}
}

static Kp__Response *
s_list(const td_org_t *o, bool inbox, bool all)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;

	l.has_limit = 1;
	l.limit = 10000;
	l.has_all = 1;
	l.all = all;
	req.op_case = inbox ? KP__REQUEST__OP_INBOX : KP__REQUEST__OP_OUTBOX;
	if (inbox)
		req.inbox = &l;
	else
		req.outbox = &l;
	return s_call_ok(o, &req);
}

Kp__Response *td_outbox(const td_org_t *o) { return s_list(o, false, true); }
Kp__Response *td_inbox(const td_org_t *o, bool all) { return s_list(o, true, all); }

void
td_seal(struct chain *from, const td_chain_t *c, const char *to,
    const char *type, const char *json, uint64_t created_ms, uint8_t **env,
    size_t *len, uint8_t id[16])
{
	int et = events_type_from_name(type), problems = 0;
	ProtobufCMessage *ev = NULL;
	json_t *j = json_loads(json, 0, NULL);
	policy_t *pol = NULL;
	const policy_rule_t *rule;
	envelope_meta_t m;
	uint8_t payload[4096], digest[32];
	char path[4200];
	size_t plen;
	kp_err_t e;

	snprintf(path, sizeof(path), "%s/policy.ini", c->dir);
	cr_assert(policy_load(path, &pol, NULL, NULL, &problems, &e) == 0,
	    "%s", e.msg);
	rule = policy_rule(pol, et);
	cr_assert_not_null(j, "bad JSON in test");
	cr_assert(pbjson_from_json(events_descriptor(et), j, &ev, &e) == 0,
	    "%s", e.msg);
	plen = protobuf_c_message_pack(ev, payload);
	memset(&m, 0, sizeof(m));
	kp_uuid_new(m.event_id);
	memcpy(id, m.event_id, 16);
	m.event_type = et;
	snprintf(m.purpose, sizeof(m.purpose), "%s", policy_rule_purpose(rule));
	snprintf(m.legal_basis, sizeof(m.legal_basis), "%s",
	    policy_rule_legal_basis(rule));
	memcpy(m.policy_hash, policy_hash(pol), 32);
	m.created_at_ms = created_ms;
	m.expires_at_ms = kp_now_ms() + 86400000u;
	randombytes_buf(m.case_ref, 32);
	cr_assert(envelope_seal(from->dir, directory_find(from->dir, to), &m,
	    payload, plen, env, len, digest, &e) == 0, "%s", e.msg);
	pbjson_free(ev);
	json_decref(j);
	policy_destroy(&pol);
}

/* ---- helpers for link, lock and start-check tests (issue 9) ---- */

void
td_state_dir(const td_chain_t *c, const char *oin, char *buf, size_t len)
{
	snprintf(buf, len, "%s/orgs/%s/state", c->dir, oin);
}

void
td_org_own_chain(td_chain_t *c, td_org_t *o, const char *hidden_oin,
    char *dir, size_t len)
{
	snprintf(dir, len, "%s-%s", c->dir, o->oin);
	cr_assert_eq(test_sh("rm -rf '%s' && cp -a '%s' '%s' && rm -rf "
	    "'%s/orgs/%s' && sed -i 's|^chain_dir = .*|chain_dir = %s|' '%s'",
	    dir, c->dir, dir, dir, hidden_oin, dir, o->conf), 0);
	snprintf(o->api, sizeof(o->api), "ipc://%s/orgs/%s/state/api.sock",
	    dir, o->oin);
}

void
td_chain_reveal(const td_chain_t *c, const char *dir, const char *oin)
{
	cr_assert_eq(test_sh("mkdir -p '%s/orgs/%s' && cp '%s/orgs/%s/cert.pem' "
	    "'%s/orgs/%s/cert.pem.tmp' && mv '%s/orgs/%s/cert.pem.tmp' "
	    "'%s/orgs/%s/cert.pem'", dir, oin, c->dir, oin, dir, oin, dir, oin,
	    dir, oin), 0);
}

int
td_wait_exit(td_org_t *o, int ms)
{
	int status = 0, waited = 0;
	pid_t r;

	for (;;) {
		r = waitpid(o->pid, &status, WNOHANG);
		if (r == o->pid) {
			o->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) :
			    128 + WTERMSIG(status);
		}
		if (waited >= ms)
			return -1;
		usleep(20000);
		waited += 20;
	}
}

size_t
td_log_count(const td_org_t *o, const char *needle)
{
	char line[8192];
	size_t n = 0;
	FILE *f = fopen(o->log, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

bool
td_log_count_reaches(const td_org_t *o, const char *needle, size_t n,
    int wait_ms)
{
	int waited = 0;

	while (td_log_count(o, needle) < n) {
		if (waited >= wait_ms)
			return false;
		usleep(50000);
		waited += 50;
	}
	return true;
}

long
td_sql_count(const char *state_dir, const char *where_sql)
{
	char out[256];

	if (test_sh_output(out, sizeof(out), "sqlite3 -cmd '.timeout 5000' "
	    "'%s/ketenpost.db' 'SELECT count(*) FROM %s;'", state_dir,
	    where_sql) != 0)
		return -1;
	return strtol(out, NULL, 10);
}

pid_t
td_spawn_arg(td_org_t *o, const char *arg)
{
	char prog[4096];
	pid_t pid;
	int fd;

	snprintf(prog, sizeof(prog), "%s/ketenpostd", test_bin());
	pid = fork();
	cr_assert(pid >= 0, "fork failed");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(o->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(prog, prog, "--config", o->conf, "-v", arg, (char *)NULL);
		_exit(127);
	}
	o->pid = pid;
	return pid;
}

bool
td_wait_api(td_org_t *o, int ms)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__Response *resp = NULL;
	int waited = 0;

	req.op_case = KP__REQUEST__OP_STATUS;
	req.status = 1;
	for (;;) {
		if (td_call(o, &req, &resp, 200) == 0) {
			kp__response__free_unpacked(resp, NULL);
			return true;
		}
		if (waited >= ms || waitpid(o->pid, NULL, WNOHANG) != 0)
			return false;
		usleep(50000);
		waited += 250;
	}
}

void
td_set_clock(const char *file, uint64_t ms)
{
	char tmp[4300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", file);
	cr_assert_not_null(f = fopen(tmp, "w"));
	fprintf(f, "%llu\n", (unsigned long long)ms);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(rename(tmp, file), 0);
}

void
td_announce_packs(void *sock, const char *value)
{
	char prop[64];

	if (value == NULL)
		return;
	snprintf(prop, sizeof(prop), "%s:%s", KP_PACK_PROPERTY, value);
	cr_assert_eq(zmq_setsockopt(sock, TD_ZMQ_METADATA, prop, strlen(prop)),
	    0, "ZMQ_METADATA: %s", zmq_strerror(errno));
}

/* td_rogue_connect, announcing `announce` (NULL: nothing) before it
 * connects. */
static void
s_rogue_open(td_rogue_t *r, const td_org_t *target, const uint8_t pk[32],
    const uint8_t sk[32], const uint8_t server_pk[32], int rcv_timeout_ms,
    const char *announce)
{
	int zero = 0;

	r->ctx = zmq_ctx_new();
	r->sock = zmq_socket(r->ctx, ZMQ_DEALER);
	zmq_setsockopt(r->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(r->sock, ZMQ_RCVTIMEO, &rcv_timeout_ms,
	    sizeof(rcv_timeout_ms));
	td_announce_packs(r->sock, announce);
	cr_assert_eq(zmq_setsockopt(r->sock, ZMQ_CURVE_SERVERKEY, server_pk,
	    32), 0);
	cr_assert_eq(zmq_setsockopt(r->sock, ZMQ_CURVE_PUBLICKEY, pk, 32), 0);
	cr_assert_eq(zmq_setsockopt(r->sock, ZMQ_CURVE_SECRETKEY, sk, 32), 0);
	cr_assert_eq(zmq_connect(r->sock, target->listen), 0);
}

void
td_rogue_connect(td_rogue_t *r, const td_org_t *target, const uint8_t pk[32],
    const uint8_t sk[32], const uint8_t server_pk[32], int rcv_timeout_ms)
{
	s_rogue_open(r, target, pk, sk, server_pk, rcv_timeout_ms, NULL);
}

void
td_rogue_connect_announcing(td_rogue_t *r, struct chain *as,
    const td_org_t *target, const char *announce, int rcv_timeout_ms)
{
	const partner_t *srv = peer_partner(directory_find(as->dir,
	    target->oin));

	cr_assert_not_null(srv, "%s is not a partner of the connecting "
	    "organisation", target->oin);
	s_rogue_open(r, target, partner_transport_pk(identity_public(
	    as->self)), identity_transport_sk(as->self),
	    partner_transport_pk(srv), rcv_timeout_ms, announce);
}

void
td_rogue_connect_as(td_rogue_t *r, struct chain *as, const td_org_t *target,
    int rcv_timeout_ms)
{
	td_rogue_connect_announcing(r, as, target, NULL, rcv_timeout_ms);
}

size_t
td_inbox_count(const td_org_t *o)
{
	Kp__Response *r = td_inbox(o, true);
	size_t n = r->inbox->n_items;

	kp__response__free_unpacked(r, NULL);
	return n;
}

void
td_rogue_close(td_rogue_t *r)
{
	zmq_close(r->sock);
	zmq_ctx_term(r->ctx);
}

void *
td_api_dealer(void *ctx, const td_org_t *o, int rcvhwm)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0, tmo = 60000;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	if (rcvhwm > 0)
		zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
	cr_assert_eq(zmq_connect(s, o->api), 0);
	return s;
}

void
td_api_dealer_send(void *s, const Kp__Request *req)
{
	uint8_t buf[8192];
	size_t n = kp__request__get_packed_size(req);

	cr_assert(n <= sizeof(buf));
	kp__request__pack(req, buf);
	cr_assert(zmq_send(s, "", 0, ZMQ_SNDMORE) == 0);
	cr_assert(zmq_send(s, buf, n, 0) == (int)n);
}

Kp__Response *
td_api_dealer_recv(void *s)
{
	zmq_msg_t m;
	Kp__Response *r = NULL;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, s, 0) < 0 || zmq_msg_size(&m) != 0) {
		zmq_msg_close(&m);
		return NULL;
	}
	if (zmq_msg_recv(&m, s, 0) >= 0)
		r = kp__response__unpack(NULL, zmq_msg_size(&m),
		    zmq_msg_data(&m));
	zmq_msg_close(&m);
	return r;
}

size_t
td_example_packed(const char *type, uint8_t *out)
{
	ProtobufCMessage *ev = NULL;
	json_t *j = json_loads(td_example(type), 0, NULL);
	kp_err_t e;
	size_t n;

	cr_assert(pbjson_from_json(events_descriptor(events_type_from_name(
	    type)), j, &ev, &e) == 0, "%s", e.msg);
	n = protobuf_c_message_get_packed_size(ev);
	cr_assert(n <= TD_EXAMPLE_MAX, "example %s packs to %zu bytes", type,
	    n);
	n = protobuf_c_message_pack(ev, out);
	pbjson_free(ev);
	json_decref(j);
	return n;
}

/* The header of the i-th referral of td_seal_referrals. */
static void
s_referral_meta(const policy_t *pol, const uint8_t id[16],
    const uint8_t *reply_to, uint64_t created, unsigned flags,
    envelope_meta_t *m)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->event_id, id, 16);
	m->event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	snprintf(m->purpose, sizeof(m->purpose), "%s", policy_rule_purpose(
	    policy_rule(pol, m->event_type)));
	snprintf(m->legal_basis, sizeof(m->legal_basis), "%s",
	    policy_rule_legal_basis(policy_rule(pol, m->event_type)));
	memcpy(m->policy_hash, policy_hash(pol), 32);
	if (flags & TD_SEAL_RANDOM_CASE)
		randombytes_buf(m->case_ref, 32);
	m->created_at_ms = created;
	m->expires_at_ms = created + 86400000u;
	m->has_reply_to = reply_to != NULL;
	if (reply_to != NULL)
		memcpy(m->in_reply_to, reply_to, 16);
}

void
td_seal_referrals(const td_chain_t *c, struct chain *from, size_t n,
    uint8_t (*ids)[16], const uint8_t *reply_to, uint64_t created,
    unsigned flags, uint8_t **env, size_t *len, uint8_t (*dg)[32])
{
	envelope_draft_t *d = calloc(n, sizeof(*d)), **dp = calloc(n,
	    sizeof(*dp));
	policy_t *pol = NULL;
	envelope_meta_t m;
	uint8_t payload[TD_EXAMPLE_MAX], id[16];
	size_t plen = td_example_packed("referral", payload), i;
	char path[4200];
	int problems;
	kp_err_t e;

	cr_assert(n >= 1 && d != NULL && dp != NULL);
	cr_assert(ids != NULL || (flags & TD_SEAL_FRESH_IDS));
	snprintf(path, sizeof(path), "%s/policy.ini", c->dir);
	cr_assert(policy_load(path, &pol, NULL, NULL, &problems, &e) == 0,
	    "%s", e.msg);
	for (i = 0; i < n; i++) {
		if (flags & TD_SEAL_FRESH_IDS)
			kp_uuid_new(id);
		else
			memcpy(id, ids[i], 16);
		if (ids != NULL)
			memcpy(ids[i], id, 16);
		s_referral_meta(pol, id, reply_to, created, flags, &m);
		cr_assert(envelope_seal_draft(from->dir, directory_find(
		    from->dir, OIN_HALT), &m, payload, plen, &d[i], &e) == 0,
		    "%s", e.msg);
		if (dg != NULL)
			memcpy(dg[i], d[i].digest, 32);
		dp[i] = &d[i];
	}
	cr_assert(envelope_sign_batch(from->dir, dp, n, env, len, &e) == 0,
	    "%s", e.msg);
	for (i = 0; i < n; i++)
		envelope_draft_clear(&d[i]);
	free(d);
	free(dp);
	policy_destroy(&pol);
}

struct chain *
td_chain_open(const td_chain_t *c, const char *oin)
{
	chain_t *ch = NULL;
	kp_err_t e;

	cr_assert(chain_open_oin(c->dir, oin, NULL, NULL, &ch, &e) == 0, "%s",
	    e.msg);
	return ch;
}
