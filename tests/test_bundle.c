/*
 * test_bundle.c: the signed chain bundle (lib/bundle.c, `ketenpost-certs
 * bundle`, ketenpostd --check with `bundle =`).
 *
 * Each test works on a `cp -a` copy of the shared test chain and makes its
 * bundles with the real tool.  Every refusal is checked by code and by a
 * part of its one-line message, and a refused bundle changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bundle.h"
#include "chain.h"
#include "common.h"

TestSuite(bundle, .init = test_init);

#define TOOL "'%s/ketenpost-certs'"

static char *
s_copy_chain(char *buf, size_t len)
{
	test_tmpdir(buf, len);
	cr_assert_eq(test_sh("cp -a '%s/.' '%s/'", test_chain(), buf), 0);
	return buf;
}

static void
s_make_bundle(const char *chain)
{
	char out[4096];

	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " bundle --dir '%s'",
	    test_bin(), chain), 0, "%s", out);
}

static void
s_expect(int rc, const kp_err_t *err, int code, const char *needle)
{
	cr_assert_eq(rc, -1, "expected failure %s", kp_code_name(code));
	cr_assert_eq(err->code, code, "expected %s, got %s: %s",
	    kp_code_name(code), kp_code_name(err->code), err->msg);
	cr_assert(strstr(err->msg, needle) != NULL,
	    "message '%s' lacks '%s'", err->msg, needle);
	cr_assert(strchr(err->msg, '\n') == NULL, "message is not one line");
}

static int
s_load(const char *chain, bundle_t **b, kp_err_t *e)
{
	char path[512], ca[512];

	snprintf(path, sizeof(path), "%s/bundle", chain);
	snprintf(ca, sizeof(ca), "%s/ca.crt", chain);
	return bundle_load(path, ca, b, e);
}

Test(bundle, made_by_the_tool_verifies_and_unpacks_into_a_chain)
{
	char tmp[256], dir[512], org[512];
	bundle_t *b = NULL;
	chain_t *ch = NULL;
	uint64_t v;
	kp_err_t e;

	s_copy_chain(tmp, sizeof(tmp));
	s_make_bundle(tmp);
	cr_assert_eq(s_load(tmp, &b, &e), 0, "%s", e.msg);
	v = bundle_version(b);  /* make-chain.sh made one before */
	cr_assert_eq(v, 2);
	cr_assert_eq(bundle_count(b), 3 + 6, "ca, crl, policy, 6 orgs");
	snprintf(dir, sizeof(dir), "%s/unpacked", tmp);
	cr_assert_eq(bundle_unpack(b, dir, &e), 0, "%s", e.msg);
	snprintf(org, sizeof(org), "%s/orgs/%s", tmp, OIN_HALT);
	cr_assert_eq(chain_open(dir, org, NULL, NULL, &ch, &e), 0, "%s", e.msg);
	cr_assert_eq(directory_count(ch->dir), 6);
	cr_assert_eq(ch->n_problems, 0);
	chain_close(&ch);
	/* An existing folder is never written into. */
	s_expect(bundle_unpack(b, dir, &e), &e, KP_ERR_IO, "cannot make");
	bundle_destroy(&b);
	/* The next bundle has the next version. */
	s_make_bundle(tmp);
	cr_assert_eq(s_load(tmp, &b, &e), 0, "%s", e.msg);
	cr_assert_eq(bundle_version(b), v + 1);
	bundle_destroy(&b);
	test_sh("rm -rf '%s'", tmp);
}

/* Change one base64 character on the second line after `marker`. */
static void
s_flip(const char *chain, const char *marker)
{
	char path[512];
	uint8_t *buf = NULL;
	size_t len = 0;
	char *p;
	FILE *f;

	snprintf(path, sizeof(path), "%s/bundle", chain);
	cr_assert_eq(kp_read_file(path, 1 << 20, &buf, &len), 0);
	p = memmem(buf, len, marker, strlen(marker));
	cr_assert_not_null(p);
	p = strchr(strchr(p, '\n') + 1, '\n') + 5;
	*p = *p == 'A' ? 'B' : 'A';
	cr_assert_not_null(f = fopen(path, "w"));
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	free(buf);
}

Test(bundle, tampered_is_refused)
{
	char tmp[256];
	bundle_t *b = NULL;
	kp_err_t e;

	s_copy_chain(tmp, sizeof(tmp));
	s_make_bundle(tmp);
	/* One character of the halt certificate's base64 changed. */
	s_flip(tmp, "file orgs/" OIN_HALT "/cert.pem");
	s_expect(s_load(tmp, &b, &e), &e, KP_ERR_BAD_SIGNATURE,
	    "signature does not verify (damaged or tampered with)");
	cr_assert_null(b);
	/* Cut short: a malformed file. */
	cr_assert_eq(test_sh("head -c 300 '%s/bundle' > '%s/b2' && "
	    "mv '%s/b2' '%s/bundle'", tmp, tmp, tmp, tmp), 0);
	s_expect(s_load(tmp, &b, &e), &e, KP_ERR_MALFORMED, "is malformed at "
	    "byte");
	test_sh("rm -rf '%s'", tmp);
}

Test(bundle, from_another_ca_is_refused)
{
	char tmp[256], other[512], path[600], ca[600];
	bundle_t *b = NULL;
	kp_err_t e;

	s_copy_chain(tmp, sizeof(tmp));
	snprintf(other, sizeof(other), "%s/other", tmp);
	cr_assert_eq(test_sh(TOOL " init --dir '%s' >/dev/null", test_bin(),
	    other), 0);
	s_make_bundle(other);
	snprintf(path, sizeof(path), "%s/bundle", other);
	snprintf(ca, sizeof(ca), "%s/ca.crt", tmp);
	s_expect(bundle_load(path, ca, &b, &e), &e, KP_ERR_CERT_UNTRUSTED,
	    "comes from another CA than the pinned");
	/* The other CA's bundle with a forged ca-sha256: the signature. */
	cr_assert_eq(test_sh("h=$(openssl x509 -in '%s' -outform DER | "
	    "openssl dgst -sha256 -r | cut -d' ' -f1) && "
	    "sed -i \"s/^ca-sha256 .*/ca-sha256 $h/\" '%s'", ca, path), 0);
	s_expect(bundle_load(path, ca, &b, &e), &e, KP_ERR_BAD_SIGNATURE,
	    "signature does not verify");
	test_sh("rm -rf '%s'", tmp);
}

Test(bundle, writable_by_others_is_refused)
{
	char tmp[256];
	bundle_t *b = NULL;
	kp_err_t e;

	s_copy_chain(tmp, sizeof(tmp));
	s_make_bundle(tmp);
	cr_assert_eq(test_sh("chmod 0664 '%s/bundle'", tmp), 0);
	s_expect(s_load(tmp, &b, &e), &e, KP_ERR_KEY_FILE_MODE,
	    "/bundle has mode 0664: group or others may change it");
	cr_assert_eq(test_sh("chmod 0644 '%s/bundle' && chmod 0666 "
	    "'%s/ca.crt'", tmp, tmp), 0);
	s_expect(s_load(tmp, &b, &e), &e, KP_ERR_KEY_FILE_MODE,
	    "/ca.crt has mode 0666");
	test_sh("rm -rf '%s'", tmp);
}

/* A bundle-mode config for org in chain (keys in orgs/<org>). */
static void
s_conf(const char *chain, const char *oin, const char *path)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fprintf(f, "[ketenpostd]\nbundle = %s/bundle\nca = %s/ca.crt\n"
	    "org = %s\norg_dir = %s/orgs/%s\nstate_dir = %s/state\n"
	    "listen = tcp://127.0.0.1:17999\n", chain, chain, oin, chain, oin,
	    chain);
	fclose(f);
}

static int
s_check(const char *conf, char *out, size_t len)
{
	return test_sh_output(out, len, "'%s/ketenpostd' --config '%s' --check",
	    test_bin(), conf);
}

Test(bundle, daemon_check_reads_the_bundle_and_refuses_a_rollback)
{
	char tmp[256], conf[512], out[8192];

	s_copy_chain(tmp, sizeof(tmp));
	s_make_bundle(tmp);
	snprintf(conf, sizeof(conf), "%s/k.conf", tmp);
	s_conf(tmp, OIN_HALT, conf);
	cr_assert_eq(s_check(conf, out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "ketenpostd: check: ok: " OIN_HALT) != NULL,
	    "%s", out);
	/* The daemon applied version 5 before: version 1 is a rollback. */
	cr_assert_eq(test_sh("mkdir -p '%s/state/trust/v00000000000000000005'",
	    tmp), 0);
	cr_assert_eq(s_check(conf, out, sizeof(out)), 1, "%s", out);
	cr_assert(strstr(out, "has version 2, older than the applied version "
	    "5: refused (rollback)") != NULL, "%s", out);
	cr_assert(strchr(out, '\n') == out + strlen(out) - 1, "one line: %s",
	    out);
	test_sh("rm -rf '%s'", tmp);
}

Test(bundle, daemon_check_warns_about_a_stale_crl_but_lets_the_daemon_start)
{
	char tmp[256], conf[512], out[8192];

	s_copy_chain(tmp, sizeof(tmp));
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " crl --dir '%s' "
	    "--seconds 1", test_bin(), tmp), 0, "%s", out);
	sleep(2);
	snprintf(conf, sizeof(conf), "%s/k.conf", tmp);
	s_conf(tmp, OIN_HALT, conf);
	cr_assert_eq(s_check(conf, out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "warning: the CRL of ") != NULL, "%s", out);
	cr_assert(strstr(out, "is past its nextUpdate: the daemon will refuse "
	    "every exchange") != NULL, "%s", out);
	test_sh("rm -rf '%s'", tmp);
}
