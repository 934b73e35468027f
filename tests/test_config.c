/*
 * test_config.c: daemon/config.c and the ketenpostd.conf that
 * certs/ketenpost-certs writes.
 *
 * Each config is written to a fresh tmpdir (mode 0644, so the test does
 * not depend on the umask).  Every refusal is checked by the exact line
 * it reports ("FILE:LINE: message"), by the count of problems, and by
 * *cfg being left untouched.  The shared test chain is read-only.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/socket.h>

#include <criterion/criterion.h>

#include "common.h"
#include "config.h"
#include "util.h"

TestSuite(config, .init = test_init);

#define TOOL "'%s/ketenpost-certs'"
#define DAY_MS (24ULL * 3600 * 1000)
#define HINT "(use e.g. 500ms, 30s, 5m, 2h, 14d)"
#define MINIMAL "[ketenpostd]\nchain_dir = /c\norg = " OIN_HALT "\n"

/* What the report callback was given. */
struct reports {
	char line[32][4800];
	int n;
};

static void
s_collect(void *arg, const char *line)
{
	struct reports *r = arg;

	cr_assert(strchr(line, '\n') == NULL, "report is not one line");
	if (r->n < 32)
		snprintf(r->line[r->n], sizeof(r->line[0]), "%s", line);
	r->n++;
}

/* dir/name with the given text, mode 0644; the path into out. */
static const char *
s_write(const char *dir, const char *name, const char *text, char *out,
    size_t len)
{
	FILE *f;

	snprintf(out, len, "%s/%s", dir, name);
	f = fopen(out, "w");
	cr_assert_not_null(f, "cannot write %s", out);
	cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(out, 0644), 0);
	return out;
}

/* realpath() of a folder that exists, into out. */
static const char *
s_real(const char *path, char *out)
{
	cr_assert_not_null(realpath(path, out), "realpath %s", path);
	return out;
}

static void
s_rm(const char *dir)
{
	cr_assert_eq(test_sh("rm -rf '%s'", dir), 0);
}

/* Load text as tmp/ketenpostd.conf; expect success. */
static void
s_load_ok(const char *text, config_t *cfg, char *tmp, size_t tmplen)
{
	char path[4096];
	struct reports r = { .n = 0 };
	kp_err_t err;
	int n = -1;

	test_tmpdir(tmp, tmplen);
	s_write(tmp, "ketenpostd.conf", text, path, sizeof(path));
	cr_assert_eq(config_load(path, cfg, s_collect, &r, &n, &err), 0,
	    "%s", err.msg);
	cr_assert_eq(n, 0);
	cr_assert_eq(r.n, 0, "first report: %s", r.line[0]);
	cr_assert_eq(err.code, KP_OK);
}

/*
 * Load text; expect it refused with exactly `want` problems, the first
 * `want` reports equal to expect[] with "F" standing for the file (so
 * "F:3: x" means "<path>:3: x"), err holding the first, *cfg untouched.
 */
static void
s_load_bad(const char *text, int want, const char *const *expect)
{
	char tmp[256], path[4096], line[8192];
	struct reports r = { .n = 0 };
	config_t *cfg = malloc(sizeof(*cfg));
	kp_err_t err;
	int n = -1, i;

	cr_assert_not_null(cfg);
	memset(cfg, 0xA5, sizeof(*cfg));
	test_tmpdir(tmp, sizeof(tmp));
	s_write(tmp, "ketenpostd.conf", text, path, sizeof(path));
	cr_assert_eq(config_load(path, cfg, s_collect, &r, &n, &err), -1,
	    "accepted:\n%s", text);
	cr_assert_eq(n, r.n, "n_problems %d but %d reports", n, r.n);
	for (i = 0; i < r.n && i < 32; i++)
		cr_log_info("report %d: %s", i, r.line[i]);
	cr_assert_eq(n, want, "%d problems, not %d, in:\n%s", n, want, text);
	for (i = 0; i < want; i++) {
		snprintf(line, sizeof(line), "%s%s", path, expect[i] + 1);
		cr_assert_str_eq(r.line[i], line);
	}
	cr_assert_str_eq(err.msg, r.line[0]);
	cr_assert_neq(err.code, KP_OK);
	for (i = 0; i < (int)sizeof(*cfg); i++)
		cr_assert_eq(((unsigned char *)cfg)[i], 0xA5,
		    "*cfg changed at byte %d", i);
	free(cfg);
	s_rm(tmp);
}

/* One problem: text is refused with exactly the report `expect`. */
static void
s_bad1(const char *text, const char *expect)
{
	s_load_bad(text, 1, &expect);
}

/* ---- valid files ------------------------------------------------- */

Test(config, full_valid_file_with_every_key)
{
	static const char text[] =
	    "# every key\n"
	    "[ketenpostd]\n"
	    "chain_dir = /etc/ketenpost/chain\n"
	    "org = " OIN_HALT "\n"
	    "org_dir = /etc/ketenpost/keys\n"
	    "listen = tcp://127.0.0.1:7001\n"
	    "state_dir = /var/lib/ketenpost\n"
	    "api = ipc:///run/ketenpost/api.sock\n"
	    "verbose = 2\n"
	    "\n"
	    "[delivery]\n"
	    "event_ttl = 7d\n"
	    "retry_initial = 250ms\n"
	    "retry_max = 2m\n"
	    "replay_window = 48h\n"
	    "max_clock_skew = 30s\n"
	    "batch_max = 10000 ; the most\n"
	    "watchdog = off\n";
	char tmp[256], path[4096], real[PATH_MAX];
	config_t cfg;

	s_load_ok(text, &cfg, tmp, sizeof(tmp));
	snprintf(path, sizeof(path), "%s/ketenpostd.conf", s_real(tmp, real));
	cr_assert_str_eq(cfg.path, path);
	cr_assert_str_eq(cfg.chain_dir, "/etc/ketenpost/chain");
	cr_assert_str_eq(cfg.org, OIN_HALT);
	cr_assert_str_eq(cfg.org_dir, "/etc/ketenpost/keys");
	cr_assert_str_eq(cfg.listen, "tcp://127.0.0.1:7001");
	cr_assert_str_eq(cfg.state_dir, "/var/lib/ketenpost");
	cr_assert_str_eq(cfg.api, "ipc:///run/ketenpost/api.sock");
	cr_assert_eq(cfg.verbose, 2);
	cr_assert_eq(cfg.event_ttl_ms, 7 * DAY_MS);
	cr_assert_eq(cfg.retry_initial_ms, 250);
	cr_assert_eq(cfg.retry_max_ms, 120000);
	cr_assert_eq(cfg.replay_window_ms, 2 * DAY_MS);
	cr_assert_eq(cfg.max_clock_skew_ms, 30000);
	cr_assert_eq(cfg.batch_max, 10000);
	cr_assert_eq(cfg.watchdog, 0);
	s_rm(tmp);
}

Test(config, defaults_are_derived)
{
	char tmp[256];
	config_t cfg;

	s_load_ok(MINIMAL, &cfg, tmp, sizeof(tmp));
	cr_assert_str_eq(cfg.chain_dir, "/c");
	cr_assert_str_eq(cfg.org_dir, "/c/orgs/" OIN_HALT);
	cr_assert_str_eq(cfg.state_dir, "/c/orgs/" OIN_HALT "/state");
	cr_assert_str_eq(cfg.api, "ipc:///c/orgs/" OIN_HALT "/state/api.sock");
	cr_assert_str_eq(cfg.listen, "");
	cr_assert_eq(cfg.verbose, 0);
	cr_assert_eq(cfg.event_ttl_ms, 30 * DAY_MS);
	cr_assert_eq(cfg.retry_initial_ms, 1000);
	cr_assert_eq(cfg.retry_max_ms, 60000);
	cr_assert_eq(cfg.replay_window_ms, 14 * DAY_MS);
	cr_assert_eq(cfg.max_clock_skew_ms, 300000);
	cr_assert_eq(cfg.batch_max, 512);
	cr_assert_eq(cfg.window_kib, 8192);
	cr_assert_eq(cfg.watchdog, 1);
	s_rm(tmp);
}

/* A given org_dir moves state_dir and api; a given state_dir moves api. */
Test(config, defaults_follow_what_is_given)
{
	char tmp[256];
	config_t cfg;

	s_load_ok(MINIMAL "org_dir = /keys\n", &cfg, tmp, sizeof(tmp));
	cr_assert_str_eq(cfg.state_dir, "/keys/state");
	cr_assert_str_eq(cfg.api, "ipc:///keys/state/api.sock");
	s_rm(tmp);
	s_load_ok(MINIMAL "state_dir = /st\n", &cfg, tmp, sizeof(tmp));
	cr_assert_str_eq(cfg.org_dir, "/c/orgs/" OIN_HALT);
	cr_assert_str_eq(cfg.api, "ipc:///st/api.sock");
	s_rm(tmp);
	s_load_ok(MINIMAL "api = tcp://127.0.0.1:7999\n[api]\nallow = "
	    "key:rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7 submit\n", &cfg, tmp,
	    sizeof(tmp));
	cr_assert_str_eq(cfg.api, "tcp://127.0.0.1:7999");
	cr_assert_eq(cfg.n_api_allow, 1);
	cr_assert_eq(cfg.api_allow[0].kind, ACCESS_KEY);
	s_rm(tmp);
}

/* [api] allow: who may use the local API for what (access.c). */
Test(config, api_allow_lines)
{
	static const char *const tcp_no_key[] = {
	    "F:4: api: a tcp:// API needs CURVE: list the clients' keys with "
	    "[api] allow = key:Z85 ROLE..." };
	static const char *const abstract[] = {
	    "F:4: api: an abstract socket (ipc://@...) cannot be protected; "
	    "use a socket path" };
	static const char *const bad[] = {
	    "F:5: allow: no user 'no-such-user-kp' on this system",
	    "F:6: allow: unknown role 'everything' (roles: submit, inbox, "
	    "officer, subject, admin, all)",
	    "F:7: allow: 'host:x' is not user:NAME, group:NAME, key:Z85 or "
	    "cert:SHA256",
	    "F:8: allow: 'short' is not a CURVE public key (40 characters of "
	    "Z85)" };
	char tmp[256];
	config_t cfg;

	s_load_ok(MINIMAL "[api]\nallow = user:nobody inbox,officer\n"
	    "allow = group:0 all\nallow = user:1234 subject\n", &cfg, tmp,
	    sizeof(tmp));
	cr_assert_eq(cfg.n_api_allow, 3);
	cr_assert_eq(cfg.api_allow[0].kind, ACCESS_USER);
	cr_assert_eq(cfg.api_allow[0].id, 65534);
	cr_assert_eq(cfg.api_allow[0].roles, 2 | 4);
	cr_assert_eq(cfg.api_allow[1].kind, ACCESS_GROUP);
	cr_assert_eq(cfg.api_allow[1].roles, 31);
	cr_assert_eq(cfg.api_allow[2].id, 1234);
	s_rm(tmp);
	s_load_bad(MINIMAL "api = tcp://127.0.0.1:7999\n", 1, tcp_no_key);
	s_load_bad(MINIMAL "api = ipc://@kp-api\n", 1, abstract);
	s_load_bad(MINIMAL "[api]\nallow = user:no-such-user-kp inbox\n"
	    "allow = user:nobody everything\nallow = host:x all\n"
	    "allow = key:short all\n", 4, bad);
}

/* [rest] tls_listen: with its files and a cert: client, or refused. */
Test(config, rest_tls_needs_its_files_and_an_allowed_certificate)
{
	static const char *const no_client[] = {
	    "F:5: tls_listen: no client may use it; allow one with [api] allow "
	    "= cert:SHA256 ROLE... (openssl x509 -noout -fingerprint -sha256 "
	    "-in CLIENT.crt)" };
	static const char *const no_ca[] = {
	    "F:5: tls_listen: needs tls_cert = FILE, tls_key = FILE (the "
	    "server's) and tls_client_ca = FILE (the CA of the clients' "
	    "certificates) in [rest]" };
	static const char *const no_listen[] = {
	    "F: [rest] tls_cert, tls_key, tls_client_ca and [api] allow = "
	    "cert:... need [rest] tls_listen = ADDRESS:PORT" };
	static const char *const bad_fp[] = {
	    "F:5: allow: 'ab:cd...' is not a SHA-256 fingerprint (64 hex "
	    "digits: openssl x509 -noout -fingerprint -sha256 -in "
	    "CLIENT.crt)" };
#define S_FP "79:C8:5D:3A:28:69:A3:CB:EE:6C:66:F2:93:C1:B2:55:F2:49:43:D4:" \
	    "A6:9A:77:38:C4:98:22:23:1D:32:52:B8"
#define S_TLS "[rest]\ntls_listen = 127.0.0.1:8443\ntls_cert = s.crt\n" \
	    "tls_key = s.key\n"
	char tmp[256];
	config_t cfg;

	s_load_ok(MINIMAL S_TLS "tls_client_ca = ca.crt\n[api]\nallow = "
	    "cert:" S_FP " submit\nallow = cert:79c85d3a2869a3cbee6c66f293c1b2"
	    "55f24943d4a69a7738c49822231d3252b8 inbox\n", &cfg, tmp,
	    sizeof(tmp));
	cr_assert_eq(cfg.n_api_allow, 2);
	cr_assert_eq(cfg.api_allow[0].kind, ACCESS_CERT);
	cr_assert_eq(cfg.api_allow[0].key[0], 0x79);
	cr_assert_eq(cfg.api_allow[0].key[31], 0xb8);
	cr_assert_eq(memcmp(cfg.api_allow[0].key, cfg.api_allow[1].key, 32), 0);
	cr_assert_str_eq(cfg.rest_tls_listen, "127.0.0.1:8443");
	cr_assert(strstr(cfg.rest_tls_client_ca, "/ca.crt") != NULL &&
	    cfg.rest_tls_client_ca[0] == '/');
	s_rm(tmp);
	s_load_bad(MINIMAL S_TLS "tls_client_ca = ca.crt\n", 1, no_client);
	s_load_bad(MINIMAL S_TLS "[api]\nallow = cert:" S_FP " all\n", 1,
	    no_ca);
	s_load_bad(MINIMAL "[rest]\ntls_cert = s.crt\n", 1, no_listen);
	s_load_bad(MINIMAL "[api]\nallow = cert:ab:cd all\n", 1, bad_fp);
#undef S_FP
#undef S_TLS
}

/* [rest] webhook: a local http:// URL only. */
Test(config, rest_webhook_is_a_local_url)
{
	static const char *const remote[] = {
	    "F:5: webhook: 'http://192.0.2.1:80/x' is not a local URL "
	    "http://127.0.0.1:PORT/PATH (or localhost, [::1]; no TLS, no other "
	    "host)" };
	static const char *const tls[] = {
	    "F:5: webhook: 'https://127.0.0.1:8443/x' is not a local URL "
	    "http://127.0.0.1:PORT/PATH (or localhost, [::1]; no TLS, no other "
	    "host)" };
	struct sockaddr_storage sa;
	socklen_t len;
	char host[80], tmp[256];
	const char *path;
	config_t cfg;

	s_load_ok(MINIMAL "[rest]\nwebhook = http://localhost:8080/hook/in\n",
	    &cfg, tmp, sizeof(tmp));
	cr_assert_str_eq(cfg.rest_webhook, "http://localhost:8080/hook/in");
	s_rm(tmp);
	cr_assert_eq(config_webhook_url(cfg.rest_webhook, &sa, &len, host,
	    sizeof(host), &path), 0);
	cr_assert_str_eq(host, "localhost:8080");
	cr_assert_str_eq(path, "/hook/in");
	cr_assert_eq(sa.ss_family, AF_INET);
	cr_assert_eq(config_webhook_url("http://[::1]:9", &sa, &len, host,
	    sizeof(host), &path), 0);
	cr_assert_str_eq(path, "/");
	cr_assert_eq(config_webhook_url("http://127.1.2.3:9/", &sa, &len, host,
	    sizeof(host), &path), 0);
	cr_assert_eq(config_webhook_url("http://example.org:80/", &sa, &len,
	    host, sizeof(host), &path), -1);
	cr_assert_eq(config_webhook_url("http://[::2]:80/", &sa, &len, host,
	    sizeof(host), &path), -1);
	s_load_bad(MINIMAL "[rest]\nwebhook = http://192.0.2.1:80/x\n", 1,
	    remote);
	s_load_bad(MINIMAL "[rest]\nwebhook = https://127.0.0.1:8443/x\n", 1,
	    tls);
}

/* Relative to the file's folder, also when the file is named relatively. */
Test(config, relative_paths_resolve_against_the_files_folder)
{
	static const char text[] =
	    "[ketenpostd]\n"
	    "chain_dir = ../chain/\n"
	    "org = " OIN_OM "\n"
	    "org_dir = ./keys/./x/..//own\n"
	    "state_dir = state\n"
	    "api = ipc://run/../api.sock\n";
	char tmp[256], dir[512], path[4096], real[PATH_MAX], want[8192];
	char cwd[PATH_MAX];
	config_t cfg;
	kp_err_t err;
	int n;

	test_tmpdir(tmp, sizeof(tmp));
	s_real(tmp, real);
	snprintf(dir, sizeof(dir), "%s/etc", tmp);
	cr_assert_eq(mkdir(dir, 0755), 0);
	s_write(dir, "k.conf", text, path, sizeof(path));
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(tmp), 0);
	cr_assert_eq(config_load("etc/k.conf", &cfg, NULL, NULL, &n, &err), 0,
	    "%s", err.msg);
	cr_assert_eq(chdir(cwd), 0);
	snprintf(want, sizeof(want), "%s/etc/k.conf", real);
	cr_assert_str_eq(cfg.path, want);
	snprintf(want, sizeof(want), "%s/chain", real);
	cr_assert_str_eq(cfg.chain_dir, want);
	snprintf(want, sizeof(want), "%s/etc/keys/own", real);
	cr_assert_str_eq(cfg.org_dir, want);
	snprintf(want, sizeof(want), "%s/etc/state", real);
	cr_assert_str_eq(cfg.state_dir, want);
	snprintf(want, sizeof(want), "ipc://%s/etc/api.sock", real);
	cr_assert_str_eq(cfg.api, want);
	s_rm(tmp);
}

/* Comments, CRLF, a BOM, ':' for '=', spaces, repeated sections. */
Test(config, ini_syntax_variants)
{
	static const char text[] =
	    "\xEF\xBB\xBF; a comment\r\n"
	    "# another\r\n"
	    "[ketenpostd]\r\n"
	    "   ; indented comment\r\n"
	    "chain_dir:/c\r\n"
	    "\r\n"
	    "org   =   " OIN_OM "   ; inline\r\n"
	    "[delivery]\r\n"
	    "watchdog = No\r\n"
	    "[ketenpostd]\r\n"
	    "listen = tcp://[::1]:7001\r\n"
	    "[delivery]\r\n"
	    "batch_max = 1";
	char tmp[256];
	config_t cfg;

	s_load_ok(text, &cfg, tmp, sizeof(tmp));
	cr_assert_str_eq(cfg.chain_dir, "/c");
	cr_assert_str_eq(cfg.org, OIN_OM);
	cr_assert_str_eq(cfg.listen, "tcp://[::1]:7001");
	cr_assert_eq(cfg.watchdog, 0);
	cr_assert_eq(cfg.batch_max, 1);
	s_rm(tmp);
}

Test(config, listen_forms)
{
	static const char *const good[] = {
		"tcp://127.0.0.1:1", "tcp://*:7001", "tcp://halt.example.nl:65535",
		"tcp://[::1]:7001", "tcp://eth0:7001", "tcp://[fe80::1]:80",
	};
	char tmp[256], text[512];
	config_t cfg;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), MINIMAL "listen = %s\n", good[i]);
		s_load_ok(text, &cfg, tmp, sizeof(tmp));
		cr_assert_str_eq(cfg.listen, good[i]);
		s_rm(tmp);
	}
}

/* ---- durations --------------------------------------------------- */

Test(config, parse_duration)
{
	static const struct { const char *text; uint64_t ms; } good[] = {
		{ "0ms", 0 }, { "500ms", 500 }, { "1s", 1000 }, { "30s", 30000 },
		{ "5m", 300000 }, { "2h", 7200000 }, { "14d", 14 * DAY_MS },
		{ "007s", 7000 }, { "18446744073709551615ms", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", "abc", "5", "s", "-5s", "+5s", " 5s", "5s ", "5 s", "1.5h",
		"5S", "5sec", "5ms5", "5w", "5y", "18446744073709551616ms",
		"213503982335d", "0x10s",
	};
	uint64_t ms;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = 1;
		cr_assert_eq(config_parse_duration(good[i].text, &ms), 0, "%s",
		    good[i].text);
		cr_assert_eq(ms, good[i].ms, "%s", good[i].text);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 42;
		cr_assert_eq(config_parse_duration(bad[i], &ms), -1, "'%s'",
		    bad[i]);
		cr_assert_eq(ms, 42, "'%s' changed the output", bad[i]);
	}
	cr_assert_eq(config_parse_duration(NULL, &ms), -1);
	cr_assert_eq(config_parse_duration("1s", NULL), -1);
}

Test(config, bad_durations_are_reported)
{
	s_bad1(MINIMAL "[delivery]\nretry_max = abc\n",
	    "F:5: retry_max: 'abc' is not a duration " HINT);
	s_bad1(MINIMAL "[delivery]\n\nevent_ttl = 30\n",
	    "F:6: event_ttl: '30' is not a duration " HINT);
	s_bad1(MINIMAL "[delivery]\nreplay_window = 0d\n",
	    "F:5: replay_window: '0d' must be longer than 0");
	s_bad1(MINIMAL "[delivery]\nevent_ttl = 36501d\n",
	    "F:5: event_ttl: '36501d' is longer than 36500d");
	s_bad1(MINIMAL "[delivery]\nretry_initial = 2m\n",
	    "F:5: retry_initial (120000 ms) is longer than retry_max "
	    "(60000 ms)");
	s_bad1(MINIMAL "[delivery]\nretry_max = 500ms\n",
	    "F:5: retry_initial (1000 ms) is longer than retry_max (500 ms)");
}

Test(config, zero_clock_skew_and_extreme_durations_are_allowed)
{
	char tmp[256];
	config_t cfg;

	s_load_ok(MINIMAL "[delivery]\nmax_clock_skew = 0s\n"
	    "event_ttl = 36500d\nretry_initial = 1ms\n", &cfg, tmp,
	    sizeof(tmp));
	cr_assert_eq(cfg.max_clock_skew_ms, 0);
	cr_assert_eq(cfg.event_ttl_ms, 36500 * DAY_MS);
	cr_assert_eq(cfg.retry_initial_ms, 1);
	s_rm(tmp);
}

/* ---- every kind of error, one at a time -------------------------- */

Test(config, unknown_section_and_key)
{
	s_bad1(MINIMAL "[deliveries]\nbatch_max = 5\n",
	    "F:4: unknown section [deliveries] (known: [ketenpostd], "
	    "[delivery])");
	s_bad1(MINIMAL "[ delivery ]\n",
	    "F:4: unknown section [ delivery ] (known: [ketenpostd], "
	    "[delivery])");
	s_bad1(MINIMAL "colour = blue\n",
	    "F:4: unknown key 'colour' in [ketenpostd]");
	s_bad1(MINIMAL "[delivery]\nlisten = tcp://127.0.0.1:1\n",
	    "F:5: unknown key 'listen' in [delivery]");
	s_bad1("org = " OIN_OM "\n" MINIMAL,
	    "F:1: 'org' is outside any section (put it under [ketenpostd] "
	    "or [delivery])");
}

Test(config, bad_values)
{
	s_bad1("[ketenpostd]\nchain_dir = /c\norg = 123\n",
	    "F:3: org: '123' is not an OIN (exactly 20 digits)");
	s_bad1("[ketenpostd]\nchain_dir = /c\norg = 0000000100234567800X\n",
	    "F:3: org: '0000000100234567800X' is not an OIN (exactly 20 "
	    "digits)");
	s_bad1(MINIMAL "listen = 127.0.0.1:7001\n",
	    "F:4: listen: '127.0.0.1:7001' is not of the form tcp://host:port");
	s_bad1(MINIMAL "listen = tcp://127.0.0.1:0\n",
	    "F:4: listen: 'tcp://127.0.0.1:0' is not of the form "
	    "tcp://host:port");
	s_bad1(MINIMAL "listen = tcp://127.0.0.1:65536\n",
	    "F:4: listen: 'tcp://127.0.0.1:65536' is not of the form "
	    "tcp://host:port");
	s_bad1(MINIMAL "listen = tcp://bad_host:7001\n",
	    "F:4: listen: 'tcp://bad_host:7001' is not of the form "
	    "tcp://host:port");
	s_bad1(MINIMAL "listen = ipc:///x\n",
	    "F:4: listen: 'ipc:///x' is not of the form tcp://host:port");
	s_bad1(MINIMAL "api = http://x\n",
	    "F:4: api: 'http://x' is not ipc://PATH or tcp://host:port");
	s_bad1(MINIMAL "verbose = 4\n",
	    "F:4: verbose: '4' is not a number from 0 to 3");
	s_bad1(MINIMAL "verbose = -1\n",
	    "F:4: verbose: '-1' is not a number from 0 to 3");
	s_bad1(MINIMAL "[delivery]\nwatchdog = maybe\n",
	    "F:5: watchdog: 'maybe' is not on or off");
	s_bad1(MINIMAL "state_dir =\n",
	    "F:4: state_dir: empty value (leave the key out for the default)");
}

Test(config, batch_max_range)
{
	char tmp[256];
	config_t cfg;

	s_bad1(MINIMAL "[delivery]\nbatch_max = 0\n",
	    "F:5: batch_max: '0' is not a number from 1 to 10000");
	s_bad1(MINIMAL "[delivery]\nbatch_max = 10001\n",
	    "F:5: batch_max: '10001' is not a number from 1 to 10000");
	s_bad1(MINIMAL "[delivery]\nbatch_max = 99999999999999999999999\n",
	    "F:5: batch_max: '99999999999999999999999' is not a number from "
	    "1 to 10000");
	s_bad1(MINIMAL "[delivery]\nbatch_max = 12x\n",
	    "F:5: batch_max: '12x' is not a number from 1 to 10000");
	s_load_ok(MINIMAL "[delivery]\nbatch_max = 10000\n", &cfg, tmp,
	    sizeof(tmp));
	cr_assert_eq(cfg.batch_max, 10000);
	s_rm(tmp);
}

/* [delivery] window_kib: the envelopes' bytes in flight to a partner
 * (daemon/outbound.c), 16 KiB to 1 GiB. */
Test(config, window_kib_range)
{
	char tmp[256];
	config_t cfg;

	s_bad1(MINIMAL "[delivery]\nwindow_kib = 15\n",
	    "F:5: window_kib: '15' is not a number from 16 to 1048576");
	s_bad1(MINIMAL "[delivery]\nwindow_kib = 1048577\n",
	    "F:5: window_kib: '1048577' is not a number from 16 to 1048576");
	s_bad1(MINIMAL "[delivery]\nwindow_kib = 8M\n",
	    "F:5: window_kib: '8M' is not a number from 16 to 1048576");
	s_load_ok(MINIMAL "[delivery]\nwindow_kib = 16\n", &cfg, tmp,
	    sizeof(tmp));
	cr_assert_eq(cfg.window_kib, 16);
	s_rm(tmp);
}

/* The worker threads (daemon/inbound.c, daemon/apisrv.c): on by default;
 * 0 runs the same work on the loop; nothing else is a valid value. */
Test(config, worker_threads_is_0_or_1)
{
	char tmp[256];
	config_t cfg;

	s_load_ok(MINIMAL, &cfg, tmp, sizeof(tmp));
	cr_assert_eq(cfg.worker_threads, 1);
	s_rm(tmp);
	s_load_ok(MINIMAL "worker_threads = 0\n", &cfg, tmp, sizeof(tmp));
	cr_assert_eq(cfg.worker_threads, 0);
	s_rm(tmp);
	s_bad1(MINIMAL "worker_threads = 2\n",
	    "F:4: worker_threads: '2' is not a number from 0 to 1");
	s_bad1(MINIMAL "worker_threads = on\n",
	    "F:4: worker_threads: 'on' is not a number from 0 to 1");
	s_bad1(MINIMAL "[delivery]\nworker_threads = 1\n",
	    "F:5: unknown key 'worker_threads' in [delivery]");
}

Test(config, missing_required_keys_have_no_line)
{
	s_bad1("[ketenpostd]\norg = " OIN_OM "\n",
	    "F: missing required key 'chain_dir' in [ketenpostd]");
	s_bad1("[ketenpostd]\nchain_dir = /c\n",
	    "F: missing required key 'org' in [ketenpostd]");
}

Test(config, empty_file_misses_both_required_keys)
{
	static const char *const want[] = {
		"F: missing required key 'chain_dir' in [ketenpostd]",
		"F: missing required key 'org' in [ketenpostd]",
	};

	s_load_bad("", 2, want);
}

Test(config, duplicate_key)
{
	s_bad1(MINIMAL "\norg = " OIN_OM "\n",
	    "F:5: duplicate key 'org' in [ketenpostd] (first set on line 3)");
	s_bad1(MINIMAL "[delivery]\nbatch_max = 1\n[ketenpostd]\n"
	    "[delivery]\nbatch_max = 2\n",
	    "F:8: duplicate key 'batch_max' in [delivery] (first set on "
	    "line 5)");
}

Test(config, syntax_errors)
{
	s_bad1(MINIMAL "just some words\n",
	    "F:4: syntax error: expected 'key = value', '[section]' or a "
	    "comment");
	s_bad1(MINIMAL "[delivery\n",
	    "F:4: section header has no closing ']'");
	s_bad1(MINIMAL "[delivery ; comment]\n",
	    "F:4: section header has no closing ']'");
	s_bad1(MINIMAL "  listen = tcp://127.0.0.1:7001\n",
	    "F:4: indented line continues the value of 'org'; values are one "
	    "line (remove the indentation)");
}

/* inih reads at most 199 characters; a longer line is one error. */
Test(config, long_line_is_one_error_and_lines_stay_counted)
{
	char text[1024], *p;
	static const char *const want[] = {
		"F:4: line is 306 characters long; at most 199 are allowed",
		"F:5: unknown key 'after' in [ketenpostd]",
	};

	p = text + snprintf(text, sizeof(text), MINIMAL "state_dir = /");
	memset(p, 'x', 293);
	snprintf(p + 293, sizeof(text) - (size_t)(p + 293 - text),
	    "\nafter = 1\n");
	s_load_bad(text, 2, want);
}

Test(config, nul_byte_is_reported)
{
	char tmp[256], path[4096];
	struct reports r = { .n = 0 };
	config_t cfg;
	kp_err_t err;
	FILE *f;
	int n;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(path, sizeof(path), "%s/k.conf", tmp);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(MINIMAL, f);
	fwrite("verbose = 1\0x\n", 1, 14, f);
	fclose(f);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(config_load(path, &cfg, s_collect, &r, &n, &err), -1);
	cr_assert_eq(n, 1);
	cr_assert(strstr(r.line[0], "k.conf:4: line contains a NUL byte"),
	    "%s", r.line[0]);
	s_rm(tmp);
}

/* ---- many errors: all of them in one run ------------------------- */

Test(config, every_problem_of_a_file_is_reported_in_one_run)
{
	static const char text[] =
	    "[ketenpostd]\n"                          /* 1 */
	    "org = 12345\n"                           /* 2 */
	    "listen = tcp://host\n"                   /* 3 */
	    "colour = blue\n"                         /* 4 */
	    "nonsense\n"                              /* 5 */
	    "[extra]\n"                               /* 6 */
	    "ignored = inside an unknown section\n"   /* 7 */
	    "[delivery]\n"                            /* 8 */
	    "retry_max = abc\n"                       /* 9 */
	    "batch_max = 0\n"                         /* 10 */
	    "batch_max = 5\n"                         /* 11 */
	    "event_ttl = 1w\n";                       /* 12 */
	static const char *const want[] = {
		"F:2: org: '12345' is not an OIN (exactly 20 digits)",
		"F:3: listen: 'tcp://host' is not of the form tcp://host:port",
		"F:4: unknown key 'colour' in [ketenpostd]",
		"F:5: syntax error: expected 'key = value', '[section]' or a "
		"comment",
		"F:6: unknown section [extra] (known: [ketenpostd], "
		"[delivery])",
		"F:9: retry_max: 'abc' is not a duration " HINT,
		"F:10: batch_max: '0' is not a number from 1 to 10000",
		"F:11: duplicate key 'batch_max' in [delivery] (first set on "
		"line 10)",
		"F:12: event_ttl: '1w' is not a duration " HINT,
		"F: missing required key 'chain_dir' in [ketenpostd]",
	};

	s_load_bad(text, 10, want);
}

Test(config, report_may_be_null_and_err_holds_the_first_problem)
{
	char tmp[256], path[4096], want[4400];
	config_t cfg;
	kp_err_t err;
	int n = 0;

	test_tmpdir(tmp, sizeof(tmp));
	s_write(tmp, "k.conf", "[x]\n[y]\n", path, sizeof(path));
	cr_assert_eq(config_load(path, &cfg, NULL, NULL, &n, &err), -1);
	cr_assert_eq(n, 4);
	cr_assert_eq(err.code, KP_ERR_INVALID_ARG);
	snprintf(want, sizeof(want), "%s:1: unknown section [x] (known: "
	    "[ketenpostd], [delivery])", path);
	cr_assert_str_eq(err.msg, want);
	cr_assert_eq(config_load(path, &cfg, NULL, NULL, NULL, NULL), -1);
	s_rm(tmp);
}

/* ---- the file itself --------------------------------------------- */

Test(config, missing_file_is_an_io_error_naming_the_file)
{
	struct reports r = { .n = 0 };
	config_t cfg;
	kp_err_t err;
	int n = 0;

	cr_assert_eq(config_load("/nonexistent/ketenpostd.conf", &cfg,
	    s_collect, &r, &n, &err), -1);
	cr_assert_eq(err.code, KP_ERR_IO);
	cr_assert_str_eq(err.msg, "/nonexistent/ketenpostd.conf: cannot "
	    "read: No such file or directory");
	cr_assert_eq(n, 1);
	cr_assert_eq(r.n, 1);
	cr_assert_str_eq(r.line[0], err.msg);
}

Test(config, folder_is_not_a_config_file)
{
	char tmp[256];
	config_t cfg;
	kp_err_t err;
	int n = 0;

	test_tmpdir(tmp, sizeof(tmp));
	cr_assert_eq(config_load(tmp, &cfg, NULL, NULL, &n, &err), -1);
	cr_assert_eq(err.code, KP_ERR_IO);
	cr_assert(strstr(err.msg, "is not a regular file") != NULL, "%s",
	    err.msg);
	s_rm(tmp);
}

Test(config, group_or_world_writable_file_is_refused)
{
	char tmp[256], path[4096], want[4400];
	struct reports r = { .n = 0 };
	config_t cfg;
	kp_err_t err;
	int n = 0;

	test_tmpdir(tmp, sizeof(tmp));
	s_write(tmp, "k.conf", MINIMAL, path, sizeof(path));
	cr_assert_eq(chmod(path, 0664), 0);
	cr_assert_eq(config_load(path, &cfg, s_collect, &r, &n, &err), -1);
	cr_assert_eq(n, 1);
	snprintf(want, sizeof(want), "%s: is writable by group or others "
	    "(mode 0664); run chmod go-w on it", path);
	cr_assert_str_eq(r.line[0], want);
	cr_assert_eq(chmod(path, 0602), 0);
	cr_assert_eq(config_load(path, &cfg, NULL, NULL, &n, &err), -1);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(config_load(path, &cfg, NULL, NULL, &n, &err), 0, "%s",
	    err.msg);
	s_rm(tmp);
}

/* A state folder deep in the file system: the default API socket path is
 * longer than a Unix socket address holds, and still works (the daemon
 * and the client reach it by a short alias: kp_ipc_address; test_api
 * runs a daemon there).  A configured path that long is an error at its
 * line. */
Test(config, default_api_socket_follows_a_deep_state_dir)
{
	char text[512], want[512], tmp[256];
	const char *st = "/0123456789/0123456789/0123456789/0123456789/"
	    "0123456789/0123456789/0123456789/0123456789/0123456789";
	const char *msg[1] = { want };
	config_t cfg;

	snprintf(text, sizeof(text), MINIMAL "state_dir = %s\n", st);
	s_load_ok(text, &cfg, tmp, sizeof(tmp));
	snprintf(want, sizeof(want), "ipc://%s/api.sock", st);
	cr_assert_str_eq(cfg.api, want);
	cr_assert(strlen(cfg.api) - 6 > 107);
	s_rm(tmp);
	snprintf(text, sizeof(text), MINIMAL "api = ipc://%s/api.sock\n", st);
	snprintf(want, sizeof(want), "F:4: api: socket path '%.80s' is longer "
	    "than the 107 bytes a Unix socket allows", st);
	s_load_bad(text, 1, msg);
}

/* The short alias of a long socket path: the same file. */
Test(config, long_socket_paths_get_a_short_address)
{
	char tmp[256], deep[600], ep[700], addr[700];
	int fd = -1, n;

	test_tmpdir(tmp, sizeof(tmp));
	n = snprintf(deep, sizeof(deep), "%s", tmp);
	while (n < 200)
		n += snprintf(deep + n, sizeof(deep) - (size_t)n, "/deep-folder");
	cr_assert_eq(test_sh("mkdir -p '%s'", deep), 0);
	snprintf(ep, sizeof(ep), "ipc://%s/api.sock", deep);
	cr_assert_eq(kp_ipc_address(ep, addr, sizeof(addr), &fd), 0);
	cr_assert(fd >= 0);
	snprintf(deep, sizeof(deep), "ipc:///proc/self/fd/%d/api.sock", fd);
	cr_assert_str_eq(addr, deep);
	close(fd);
	cr_assert_eq(kp_ipc_address("ipc:///run/k/api.sock", addr, sizeof(addr),
	    &fd), 0);
	cr_assert_str_eq(addr, "ipc:///run/k/api.sock");
	cr_assert_eq(fd, -1);
	cr_assert_eq(kp_ipc_address("tcp://127.0.0.1:7000", addr, sizeof(addr),
	    &fd), 0);
	cr_assert_str_eq(addr, "tcp://127.0.0.1:7000");
	ep[strlen(ep) - strlen("/api.sock")] = '\0';
	strcat(ep, "/missing/api.sock");
	cr_assert_eq(kp_ipc_address(ep, addr, sizeof(addr), &fd), -1);
	cr_assert_eq(fd, -1);
	s_rm(tmp);
}

Test(config, api_endpoint)
{
	char tmp[256], path[4096], ep[64];
	kp_err_t err;

	test_tmpdir(tmp, sizeof(tmp));
	s_write(tmp, "k.conf", MINIMAL, path, sizeof(path));
	cr_assert_eq(config_api_endpoint(path, ep, sizeof(ep), &err), 0, "%s",
	    err.msg);
	cr_assert_str_eq(ep, "ipc:///c/orgs/" OIN_HALT "/state/api.sock");
	cr_assert_eq(config_api_endpoint(path, ep, 10, &err), -1);
	cr_assert(strstr(err.msg, "longer than 9 bytes") != NULL, "%s",
	    err.msg);
	s_write(tmp, "bad.conf", "[ketenpostd]\n", path, sizeof(path));
	cr_assert_eq(config_api_endpoint(path, ep, sizeof(ep), &err), -1);
	cr_assert(strstr(err.msg, "missing required key 'chain_dir'"), "%s",
	    err.msg);
	cr_assert_eq(config_api_endpoint("/nonexistent.conf", ep, sizeof(ep),
	    &err), -1);
	cr_assert_eq(err.code, KP_ERR_IO);
	s_rm(tmp);
}

/* ---- the conf that ketenpost-certs writes ------------------------ */

/* chain/orgs/oin/ketenpostd.conf loads with the right values. */
static void
s_check_org_conf(const char *chain, const char *oin, const char *listen)
{
	char path[4096], real[PATH_MAX], want[8192];
	config_t cfg;
	kp_err_t err;
	struct stat sb;
	int n = -1;

	snprintf(path, sizeof(path), "%s/orgs/%s/ketenpostd.conf", chain, oin);
	cr_assert_eq(stat(path, &sb), 0, "no %s", path);
	cr_assert_eq(sb.st_mode & 07777, 0644, "%s has mode %04o", path,
	    (unsigned)(sb.st_mode & 07777));
	cr_assert_eq(config_load(path, &cfg, NULL, NULL, &n, &err), 0,
	    "%s", err.msg);
	cr_assert_eq(n, 0);
	s_real(chain, real);
	cr_assert_str_eq(cfg.chain_dir, real);
	cr_assert_str_eq(cfg.org, oin);
	cr_assert_str_eq(cfg.listen, listen);
	snprintf(want, sizeof(want), "%s/orgs/%s", real, oin);
	cr_assert_str_eq(cfg.org_dir, want);
	snprintf(want, sizeof(want), "%s/orgs/%s/state", real, oin);
	cr_assert_str_eq(cfg.state_dir, want);
	snprintf(want, sizeof(want), "ipc://%s/orgs/%s/state/api.sock", real,
	    oin);
	cr_assert_str_eq(cfg.api, want);
}

Test(config, certs_tool_writes_a_conf_that_loads)
{
	static const char want[] =
	    "# ketenpostd.conf for Halt Zuid ; \"x\" (halt), written by "
	    "ketenpost-certs\n"
	    "[ketenpostd]\n"
	    "chain_dir = ../..\n"
	    "org = " OIN_HALT "\n"
	    "listen = tcp://halt.example.nl:7002\n"
	    "# state_dir defaults to <org_dir>/state, api to "
	    "ipc://<state_dir>/api.sock\n";
	char tmp[256], chain[512], moved[512], out[8192], path[4096];
	FILE *f;
	size_t got;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(chain, sizeof(chain), "%s/chain", tmp);
	cr_assert_eq(test_sh(TOOL " init --dir '%s' >/dev/null", test_bin(),
	    chain), 0);
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " org --dir '%s' "
	    "--oin %s --role halt --name 'Halt Zuid ; \"x\"' --endpoint "
	    "tcp://halt.example.nl:7002", test_bin(), chain, OIN_HALT), 0,
	    "%s", out);
	cr_assert(strstr(out, "/ketenpostd.conf\n") != NULL, "%s", out);
	snprintf(path, sizeof(path), "%s/orgs/%s/ketenpostd.conf", chain,
	    OIN_HALT);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	got = fread(out, 1, sizeof(out) - 1, f);
	out[got] = '\0';
	fclose(f);
	cr_assert_str_eq(out, want);
	s_check_org_conf(chain, OIN_HALT, "tcp://halt.example.nl:7002");
	/* chain_dir is relative: a moved chain needs no edit. */
	snprintf(moved, sizeof(moved), "%s/elsewhere", tmp);
	cr_assert_eq(rename(chain, moved), 0);
	s_check_org_conf(moved, OIN_HALT, "tcp://halt.example.nl:7002");
	s_rm(tmp);
}

Test(config, certs_tool_writes_no_conf_without_endpoint)
{
	char tmp[256], chain[512], out[8192], path[4096];
	struct stat sb;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(chain, sizeof(chain), "%s/chain", tmp);
	cr_assert_eq(test_sh(TOOL " init --dir '%s' >/dev/null", test_bin(),
	    chain), 0);
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " org --dir '%s' "
	    "--oin %s --role auditor --name Auditor", test_bin(), chain,
	    OIN_AUDITOR), 0, "%s", out);
	cr_assert(strstr(out, "ketenpostd.conf") == NULL, "%s", out);
	snprintf(path, sizeof(path), "%s/orgs/%s/ketenpostd.conf", chain,
	    OIN_AUDITOR);
	cr_assert_eq(stat(path, &sb), -1, "%s exists", path);
	snprintf(path, sizeof(path), "%s/orgs/%s/cert.pem", chain,
	    OIN_AUDITOR);
	cr_assert_eq(stat(path, &sb), 0, "no %s", path);
	s_rm(tmp);
}

Test(config, certs_tool_help_mentions_the_conf)
{
	char out[8192];

	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " --help",
	    test_bin()), 0);
	cr_assert(strstr(out, "DIR/orgs/OIN/ketenpostd.conf") != NULL, "%s",
	    out);
}

/* make-chain.sh gives every org an endpoint, so every org has a conf. */
Test(config, every_org_of_the_test_chain_has_a_loadable_conf)
{
	static const char *const oins[] = {
		OIN_LEERPLICHT, OIN_HALT, OIN_RVDK, OIN_OM, OIN_JBT,
		OIN_AUDITOR,
	};
	char listen[64];
	size_t i;

	for (i = 0; i < sizeof(oins) / sizeof(oins[0]); i++) {
		snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%zu",
		    17101 + i);
		s_check_org_conf(test_chain(), oins[i], listen);
	}
}

/* A file deep enough that the defaults no longer fit in KP_PATH_MAX. */
Test(config, paths_too_long_are_reported)
{
	char tmp[256], deep[4200], path[4300], real[PATH_MAX];
	struct reports r = { .n = 0 };
	config_t cfg;
	kp_err_t err;
	size_t n;
	int np;

	test_tmpdir(tmp, sizeof(tmp));
	s_real(tmp, real);
	n = (size_t)snprintf(deep, sizeof(deep), "%s", real);
	while (n < 4070) /* components of 9 'd' and a '/' */
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "/ddddddddd");
	cr_assert_eq(test_sh("mkdir -p '%s'", deep), 0);
	s_write(deep, "k.conf", "[ketenpostd]\nchain_dir = x\norg = " OIN_OM
	    "\n", path, sizeof(path));
	cr_assert_eq(config_load(path, &cfg, s_collect, &r, &np, &err), -1);
	cr_assert_eq(np, 1);
	cr_assert(strstr(r.line[0], "k.conf: org_dir: the default "
	    "<chain_dir>/orgs/<org> is too long; set org_dir"), "%s",
	    r.line[0]);
	s_write(deep, "k.conf", "[ketenpostd]\norg = " OIN_OM "\nchain_dir = "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", path,
	    sizeof(path));
	r.n = 0;
	cr_assert_eq(config_load(path, &cfg, s_collect, &r, &np, &err), -1);
	cr_assert_eq(np, 1);
	cr_assert(strstr(r.line[0], "k.conf:3: chain_dir: path is too long "
	    "(at most 4095 bytes)"), "%s", r.line[0]);
	s_rm(tmp);
}
