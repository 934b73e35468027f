/*
 * test_access.c: who may ask the daemon what (ketenpostd.conf [api]).
 *
 * Real daemons; the client runs as another Unix user (nobody, via
 * setpriv: the tests run as root) on the ipc:// socket, and with and
 * without a listed CURVE key on a tcp:// API.  Refusals must be clear,
 * logged and audited; reads of payload content must be audited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common.h"
#include "daemons.h"
#include "util.h"

TestSuite(access, .init = test_init, .timeout = 120);

#define AS_NOBODY "setpriv --reuid=nobody --regid=nogroup --clear-groups "

/* An API socket in a folder every user may enter, and [api] lines. */
static void
s_open_api(td_chain_t *c, td_org_t *o, const char *api_lines)
{
	char dir[4100];
	FILE *f;

	snprintf(dir, sizeof(dir), "%.4000s/pub-%s", c->dir, o->oin);
	cr_assert_eq(mkdir(dir, 0755), 0);
	cr_assert_eq(chmod(c->dir, 0755), 0);
	snprintf(o->api, sizeof(o->api), "ipc://%s/api.sock", dir);
	cr_assert_not_null(f = fopen(o->conf, "a"));
	fprintf(f, "\n[ketenpostd]\napi = %s\n[api]\n%s\n", o->api, api_lines);
	fclose(f);
}

/* Walk up from the chain folder so that nobody can reach the socket. */
static void
s_open_path(const char *dir)
{
	char p[4200], *slash;

	snprintf(p, sizeof(p), "%s", dir);
	while ((slash = strrchr(p, '/')) != NULL && slash != p) {
		*slash = '\0';
		(void)chmod(p, 0755);
	}
}

static int
s_as_nobody(const td_org_t *o, char *out, size_t len, const char *args)
{
	return test_sh_output(out, len, "timeout 20 " AS_NOBODY
	    "%s/ketenpost %s --api %s", test_bin(), args, o->api);
}

/* Some line of o's audit export holds both a and b. */
static bool
s_audit_has(const td_chain_t *c, const td_org_t *o, const char *a,
    const char *b)
{
	char out[65536], *line, *save = NULL;

	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost audit "
	    "export %s/orgs/%s/state", test_bin(), c->dir, o->oin), 0, "%s",
	    out);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (strstr(line, a) != NULL && strstr(line, b) != NULL)
			return true;
	return false;
}

Test(access, another_user_gets_only_its_roles)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char out[8192], nobody[32];
	uint8_t id[16];

	snprintf(nobody, sizeof(nobody), "\"actor\":\"uid:65534\"");
	td_chain_make(&c, NULL);
	s_open_path(c.dir);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	s_open_api(&c, halt, "allow = user:nobody inbox");
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-ACCESS-1", td_example("referral"),
	    NULL, id);
	cr_assert(td_wait_settled(lp, 10000));
	/* the inbox role: list, fetch and acknowledge */
	cr_assert_eq(s_as_nobody(halt, out, sizeof(out), "inbox --json"), 0,
	    "%s", out);
	cr_assert(strstr(out, "referral") != NULL, "%s", out);
	/* not submit, not subject, not admin: a clear refusal each */
	cr_assert_neq(s_as_nobody(halt, out, sizeof(out), "outbox"), 0, "%s",
	    out);
	cr_assert(strstr(out, "needs the role 'submit'") != NULL, "%s", out);
	cr_assert(strstr(out, "forbidden") != NULL, "%s", out);
	cr_assert_neq(s_as_nobody(halt, out, sizeof(out), "subject X-1"), 0);
	cr_assert(strstr(out, "needs the role 'subject'") != NULL, "%s", out);
	cr_assert_neq(s_as_nobody(halt, out, sizeof(out), "purge"), 0);
	cr_assert(strstr(out, "needs the role 'admin'") != NULL, "%s", out);
	cr_assert(td_log_has(halt, "api: uid:65534 refused 'purge'", 2000));
	/* the daemon's own user keeps every role */
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost status "
	    "--api %s", test_bin(), halt->api), 0, "%s", out);
	td_chain_stop_all(&c);
	/* refused and read, both in the audit log with the client */
	cr_assert(s_audit_has(&c, halt, "\"kind\":\"api_refused\"",
	    "\"rule\":\"role:admin\""));
	cr_assert(s_audit_has(&c, halt, "\"kind\":\"api_refused\"", nobody));
	cr_assert(s_audit_has(&c, halt, "\"kind\":\"read\"", nobody));
	cr_assert(s_audit_has(&c, halt, "\"kind\":\"read\"",
	    "\"purpose\":\"api.inbox\""));
	cr_assert(!s_audit_has(&c, halt, "\"kind\":\"read\"",
	    "\"actor\":\"uid:0\""), "root read nothing: no read entry");
}

/* A user the allow list does not name is refused at the connection. */
Test(access, an_unlisted_user_is_refused_and_logged)
{
	td_chain_t c;
	td_org_t *halt;
	char out[8192];

	td_chain_make(&c, NULL);
	s_open_path(c.dir);
	halt = td_org(&c, OIN_HALT);
	s_open_api(&c, halt, "allow = group:root admin");
	td_start(halt);
	cr_assert_neq(test_sh_output(out, sizeof(out), "timeout 20 " AS_NOBODY
	    "%s/ketenpost status --api %s", test_bin(), halt->api), 0, "%s",
	    out);
	cr_assert(td_log_has(halt, "API connection of uid:65534 refused: no "
	    "role", 5000));
	td_chain_stop_all(&c);
}

/* Reads name the purpose the client states. */
Test(access, reads_are_audited_with_the_stated_purpose)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char out[8192], idt[KP_UUID_TEXT_LEN + 1], want[80];
	uint8_t id[16];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-ACCESS-2", td_example("referral"),
	    NULL, id);
	cr_assert(td_wait_settled(lp, 10000));
	kp_uuid_format(id, idt);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost fetch %s "
	    "--purpose intake.halt --config %s", test_bin(), idt, halt->conf), 0,
	    "%s", out);
	td_chain_stop_all(&c);
	snprintf(want, sizeof(want), "\"event_id\":\"%s\"", idt);
	cr_assert(s_audit_has(&c, halt, "\"kind\":\"read\"", want));
	cr_assert(s_audit_has(&c, halt, "\"purpose\":\"intake.halt\"", want));
	/* the sender's send entry names who submitted it */
	cr_assert(s_audit_has(&c, lp, "\"kind\":\"send\"", "\"actor\":\"uid:"));
}

/* A tcp:// API needs CURVE: refused without keys; a listed key works,
 * with its roles; an unlisted key is refused at the connection. */
Test(access, tcp_api_needs_a_listed_curve_key)
{
	td_chain_t c;
	td_org_t *halt;
	char out[8192], key[4200], other[4200], pk[41], server[64], env[9000];
	FILE *f;

	td_chain_make(&c, NULL);
	halt = td_org(&c, OIN_HALT);
	snprintf(key, sizeof(key), "%s/client.key", c.dir);
	snprintf(other, sizeof(other), "%s/other.key", c.dir);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost api-key %s",
	    test_bin(), key), 0, "%s", out);
	cr_assert(sscanf(strstr(out, "key:"), "key:%40s", pk) == 1, "%s", out);
	cr_assert_eq(test_sh("%s/ketenpost api-key %s >/dev/null", test_bin(),
	    other), 0);
	cr_assert_neq(test_sh("%s/ketenpost api-key %s >/dev/null 2>&1",
	    test_bin(), key), 0, "an existing key file is never overwritten");
	/* tcp without a key line: the config is refused */
	snprintf(halt->api, sizeof(halt->api), "tcp://127.0.0.1:%d",
	    atoi(strrchr(halt->listen, ':') + 1) + 100);
	cr_assert_not_null(f = fopen(halt->conf, "a"));
	fprintf(f, "\n[ketenpostd]\napi = %s\n", halt->api);
	fclose(f);
	cr_assert_neq(test_sh_output(out, sizeof(out), "%s/ketenpostd --config "
	    "%s --check", test_bin(), halt->conf), 0);
	cr_assert(strstr(out, "a tcp:// API needs CURVE") != NULL, "%s", out);
	cr_assert_not_null(f = fopen(halt->conf, "a"));
	fprintf(f, "[api]\nallow = key:%s submit\n", pk);
	fclose(f);
	td_spawn(halt);
	cr_assert(td_log_has(halt, "with CURVE, server key ", 10000));
	cr_assert_eq(test_sh_output(server, sizeof(server), "grep -o 'server "
	    "key .*' %s | head -1 | cut -c12-51", halt->log), 0);
	server[strcspn(server, "\n")] = '\0';
	snprintf(env, sizeof(env), "KETENPOST_API_SERVER_KEY='%s' "
	    "KETENPOST_API_KEY=%s", server, key);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s %s/ketenpost outbox "
	    "--api %s", env, test_bin(), halt->api), 0, "%s", out);
	cr_assert_neq(test_sh_output(out, sizeof(out), "%s %s/ketenpost inbox "
	    "--api %s", env, test_bin(), halt->api), 0, "%s", out);
	cr_assert(strstr(out, "needs the role 'inbox'") != NULL, "%s", out);
	/* no keys at all: the client says what is missing */
	cr_assert_neq(test_sh_output(out, sizeof(out), "%s/ketenpost outbox "
	    "--api %s", test_bin(), halt->api), 0);
	cr_assert(strstr(out, "KETENPOST_API_KEY") != NULL, "%s", out);
	/* another key: refused by ZAP */
	snprintf(env, sizeof(env), "KETENPOST_API_SERVER_KEY='%s' "
	    "KETENPOST_API_KEY=%s timeout 20", server, other);
	cr_assert_neq(test_sh_output(out, sizeof(out), "%s %s/ketenpost outbox "
	    "--api %s", env, test_bin(), halt->api), 0, "%s", out);
	cr_assert(td_log_has(halt, "API connection of key:", 5000));
	td_chain_stop_all(&c);
}

Test(access, abstract_sockets_are_refused)
{
	td_chain_t c;
	td_org_t *halt;
	char out[8192];
	FILE *f;

	td_chain_make(&c, NULL);
	halt = td_org(&c, OIN_HALT);
	cr_assert_not_null(f = fopen(halt->conf, "a"));
	fprintf(f, "\n[ketenpostd]\napi = ipc://@kp-access-test\n");
	fclose(f);
	cr_assert_neq(test_sh_output(out, sizeof(out), "%s/ketenpostd --config "
	    "%s --check", test_bin(), halt->conf), 0);
	cr_assert(strstr(out, "abstract socket") != NULL, "%s", out);
	td_chain_stop_all(&c);
}
