/*
 * test_identity.c: lib/identity.c and certs/ketenpost-certs.
 *
 * Every refusal is checked by its kp_err code and by a part of its message.
 * The shared test chain is read-only: tests that change a chain (revoke,
 * extra organisations, broken files) work on a `cp -a` copy in a tmpdir.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "common.h"
#include "identity.h"

TestSuite(identity, .init = test_init);

#define TOOL "'%s/ketenpost-certs'"
#define NEW_OIN "00000001009999999000"

static const struct {
	const char *oin;
	int role;
	const char *name;
	const char *endpoint;
} s_orgs[] = {
	{ OIN_LEERPLICHT, KP_ROLE_LEERPLICHT, "Gemeente Testdam / Leerplicht",
	  "tcp://127.0.0.1:17101" },
	{ OIN_HALT, KP_ROLE_HALT, "Halt Testregio", "tcp://127.0.0.1:17102" },
	{ OIN_RVDK, KP_ROLE_RVDK, "Raad voor de Kinderbescherming",
	  "tcp://127.0.0.1:17103" },
	{ OIN_OM, KP_ROLE_OM, "Openbaar Ministerie", "tcp://127.0.0.1:17104" },
	{ OIN_JBT, KP_ROLE_JBT, "Jeugdbeschermingstafel Testdam",
	  "tcp://127.0.0.1:17105" },
	{ OIN_AUDITOR, KP_ROLE_AUDITOR, "Ketenauditor",
	  "tcp://127.0.0.1:17106" },
};

/* A private copy of the test chain in a fresh tmpdir. */
static char *
s_copy_chain(char *buf, size_t len)
{
	test_tmpdir(buf, len);
	cr_assert_eq(test_sh("cp -a '%s/.' '%s/'", test_chain(), buf), 0);
	return buf;
}

static void
s_rm(const char *dir)
{
	cr_assert_eq(test_sh("rm -rf '%s'", dir), 0);
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

/* Mint an extra organisation in chain with extra tool options. */
static void
s_mint(const char *chain, const char *oin, const char *opts)
{
	char out[8192];
	int rc;

	rc = test_sh_output(out, sizeof(out), TOOL " org --dir '%s' --oin %s "
	    "--role halt --name 'Extra org' %s", test_bin(), chain, oin, opts);
	cr_assert_eq(rc, 0, "ketenpost-certs org failed: %s", out);
}

static trust_t *
s_trust(const char *chain)
{
	trust_t *trust = NULL;
	kp_err_t err;

	cr_assert_eq(trust_load(chain, &trust, &err), 0, "%s", err.msg);
	return trust;
}

/* partner_load of chain/orgs/oin/cert.pem must fail with code. */
static void
s_expect_partner(const char *chain, const char *oin, int code,
    const char *needle)
{
	char cert[4096];
	trust_t *trust = s_trust(chain);
	partner_t *p = NULL;
	kp_err_t err;

	test_cert(chain, oin, cert, sizeof(cert));
	s_expect(partner_load(trust, cert, &p, &err), &err, code, needle);
	cr_assert(strstr(err.msg, cert) != NULL, "message lacks the file");
	cr_assert_null(p);
	trust_destroy(&trust);
}

/* identity_load of chain/orgs/oin must fail with code. */
static void
s_expect_identity(const char *chain, const char *oin, int code,
    const char *needle)
{
	char dir[4096];
	trust_t *trust = s_trust(chain);
	identity_t *id = NULL;
	kp_err_t err;

	test_org_dir(chain, oin, dir, sizeof(dir));
	s_expect(identity_load(trust, dir, &id, &err), &err, code, needle);
	cr_assert_null(id);
	trust_destroy(&trust);
}

static void
s_check_secrets(const identity_t *id)
{
	const partner_t *pub = identity_public(id);
	uint8_t pk[32], sig[crypto_sign_BYTES];
	const uint8_t msg[] = "ketenpost";

	cr_assert(!sodium_is_zero(partner_sign_pk(pub), 32));
	cr_assert(!sodium_is_zero(partner_transport_pk(pub), 32));
	cr_assert(!sodium_is_zero(partner_payload_pk(pub), 32));
	cr_assert_neq(memcmp(partner_transport_pk(pub),
	    partner_payload_pk(pub), 32), 0);
	cr_assert_eq(crypto_sign_detached(sig, NULL, msg, sizeof(msg),
	    identity_sign_sk(id)), 0);
	cr_assert_eq(crypto_sign_verify_detached(sig, msg, sizeof(msg),
	    partner_sign_pk(pub)), 0);
	cr_assert_eq(crypto_scalarmult_base(pk, identity_transport_sk(id)), 0);
	cr_assert_eq(memcmp(pk, partner_transport_pk(pub), 32), 0);
	cr_assert_eq(crypto_scalarmult_base(pk, identity_payload_sk(id)), 0);
	cr_assert_eq(memcmp(pk, partner_payload_pk(pub), 32), 0);
}

Test(identity, loads_every_org_of_the_test_chain)
{
	trust_t *trust = s_trust(test_chain());
	char dir[4096], cert[4096];
	identity_t *id = NULL;
	partner_t *p = NULL;
	const partner_t *pub;
	kp_err_t err;
	size_t i;

	for (i = 0; i < sizeof(s_orgs) / sizeof(s_orgs[0]); i++) {
		test_org_dir(test_chain(), s_orgs[i].oin, dir, sizeof(dir));
		cr_assert_eq(identity_load(trust, dir, &id, &err), 0, "%s",
		    err.msg);
		pub = identity_public(id);
		cr_assert_str_eq(partner_oin(pub), s_orgs[i].oin);
		cr_assert_eq(partner_role(pub), s_orgs[i].role);
		cr_assert_str_eq(partner_name(pub), s_orgs[i].name);
		cr_assert_str_eq(partner_endpoint(pub), s_orgs[i].endpoint);
		test_cert(test_chain(), s_orgs[i].oin, cert, sizeof(cert));
		cr_assert_str_eq(partner_cert_file(pub), cert);
		s_check_secrets(id);
		cr_assert_eq(partner_load(trust, cert, &p, &err), 0, "%s",
		    err.msg);
		cr_assert_eq(memcmp(partner_sign_pk(p), partner_sign_pk(pub),
		    32), 0);
		partner_destroy(&p);
		identity_destroy(&id);
		cr_assert_null(id);
	}
	identity_destroy(&id);
	partner_destroy(&p);
	trust_destroy(&trust);
	trust_destroy(&trust);
	cr_assert_null(trust);
}

/* A name with a space, slash, plus, backslash and a non-ASCII letter. */
Test(identity, name_with_special_characters_and_no_endpoint)
{
	char tmp[256], cert[4096];
	trust_t *trust;
	partner_t *p = NULL;
	kp_err_t err;

	s_copy_chain(tmp, sizeof(tmp));
	cr_assert_eq(test_sh(TOOL " org --dir '%s' --oin %s --role om "
	    "--name 'Gemeente A/B + C\\D \xc3\xa9' >/dev/null", test_bin(),
	    tmp, NEW_OIN), 0);
	trust = s_trust(tmp);
	test_cert(tmp, NEW_OIN, cert, sizeof(cert));
	cr_assert_eq(partner_load(trust, cert, &p, &err), 0, "%s", err.msg);
	cr_assert_str_eq(partner_name(p), "Gemeente A/B + C\\D \xc3\xa9");
	cr_assert_eq(partner_role(p), KP_ROLE_OM);
	cr_assert_null(partner_endpoint(p));
	partner_destroy(&p);
	trust_destroy(&trust);
	s_rm(tmp);
}

static void
s_other_ca(const char *ca_opts)
{
	char tmp[256], other[512], cert[4096];
	trust_t *trust = s_trust(test_chain());
	partner_t *p = NULL;
	kp_err_t err;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(other, sizeof(other), "%s/other", tmp);
	cr_assert_eq(test_sh(TOOL " init --dir '%s' %s >/dev/null", test_bin(),
	    other, ca_opts), 0);
	cr_assert_eq(test_sh(TOOL " org --dir '%s' --oin %s --role halt "
	    "--name Imposter >/dev/null", test_bin(), other, OIN_HALT), 0);
	test_cert(other, OIN_HALT, cert, sizeof(cert));
	s_expect(partner_load(trust, cert, &p, &err), &err,
	    KP_ERR_CERT_UNTRUSTED, cert);
	cr_assert(strstr(err.msg, "chain's CA") != NULL, "%s", err.msg);
	trust_destroy(&trust);
	s_rm(tmp);
}

Test(identity, cert_from_another_ca_is_untrusted)
{
	s_other_ca("");
}

/* Same CA subject as the test chain: found by name, refused by key. */
Test(identity, cert_from_another_ca_with_same_name_is_untrusted)
{
	s_other_ca("--name 'Ketenpost testketen'");
}

Test(identity, expired_cert)
{
	char tmp[256];

	s_copy_chain(tmp, sizeof(tmp));
	s_mint(tmp, NEW_OIN,
	    "--valid-from 20200101000000Z --valid-until 20210101000000Z");
	s_expect_partner(tmp, NEW_OIN, KP_ERR_CERT_EXPIRED,
	    "has expired (not after 2021-01-01T00:00:00Z)");
	s_rm(tmp);
}

Test(identity, not_yet_valid_cert)
{
	char tmp[256];

	s_copy_chain(tmp, sizeof(tmp));
	s_mint(tmp, NEW_OIN,
	    "--valid-from 20400101000000Z --valid-until 20410101000000Z");
	s_expect_partner(tmp, NEW_OIN, KP_ERR_CERT_NOT_YET_VALID,
	    "not yet valid (not before 2040-01-01T00:00:00Z)");
	s_rm(tmp);
}

Test(identity, revoked_cert)
{
	char tmp[256], out[8192], cert[4096];
	trust_t *trust;
	partner_t *p = NULL;
	kp_err_t err;

	s_copy_chain(tmp, sizeof(tmp));
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " revoke --dir '%s' "
	    "--oin %s", test_bin(), tmp, OIN_HALT), 0, "%s", out);
	cr_assert(strstr(out, "revoked " OIN_HALT) != NULL, "%s", out);
	s_expect_partner(tmp, OIN_HALT, KP_ERR_CERT_REVOKED, "revoked");
	s_expect_identity(tmp, OIN_HALT, KP_ERR_CERT_REVOKED, "revoked");
	/* Others in the copy are fine, and the original chain is untouched. */
	trust = s_trust(tmp);
	test_cert(tmp, OIN_OM, cert, sizeof(cert));
	cr_assert_eq(partner_load(trust, cert, &p, &err), 0, "%s", err.msg);
	partner_destroy(&p);
	trust_destroy(&trust);
	trust = s_trust(test_chain());
	test_cert(test_chain(), OIN_HALT, cert, sizeof(cert));
	cr_assert_eq(partner_load(trust, cert, &p, &err), 0, "%s", err.msg);
	partner_destroy(&p);
	trust_destroy(&trust);
	/* Revoking again is harmless. */
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " revoke --dir '%s' "
	    "--oin %s", test_bin(), tmp, OIN_HALT), 0, "%s", out);
	cr_assert(strstr(out, "already revoked") != NULL, "%s", out);
	s_expect_partner(tmp, OIN_HALT, KP_ERR_CERT_REVOKED, "revoked");
	s_rm(tmp);
}

Test(identity, key_usage_without_digital_signature)
{
	char tmp[256];

	s_copy_chain(tmp, sizeof(tmp));
	s_mint(tmp, NEW_OIN, "--key-usage keyAgreement");
	s_expect_partner(tmp, NEW_OIN, KP_ERR_CERT_KEY_USAGE,
	    "keyUsage does not include digitalSignature");
	s_rm(tmp);
}

static void
s_mode_case(const char *file, const char *mode, const char *shown)
{
	char tmp[256], path[4096], needle[4200];

	s_copy_chain(tmp, sizeof(tmp));
	snprintf(path, sizeof(path), "%s/orgs/%s/%s", tmp, OIN_JBT, file);
	cr_assert_eq(test_sh("chmod %s '%s'", mode, path), 0);
	snprintf(needle, sizeof(needle), "secret key file %s has mode %s",
	    path, shown);
	s_expect_identity(tmp, OIN_JBT, KP_ERR_KEY_FILE_MODE, needle);
	s_expect_identity(tmp, OIN_JBT, KP_ERR_KEY_FILE_MODE, "chmod 600");
	s_rm(tmp);
}

Test(identity, secret_key_mode_0644_is_refused)
{
	s_mode_case("sign.key", "0644", "0644");
}

Test(identity, secret_key_group_or_other_bits_are_refused)
{
	s_mode_case("transport.key", "0640", "0640");
	s_mode_case("payload.key", "0602", "0602");
	s_mode_case("payload.key", "0610", "0610");
}

/* A mode problem is reported even when the certificate is bad too. */
Test(identity, key_mode_checked_before_certificate)
{
	char tmp[256];

	s_copy_chain(tmp, sizeof(tmp));
	cr_assert_eq(test_sh("echo garbage > '%s/orgs/%s/cert.pem' && "
	    "chmod 644 '%s/orgs/%s/payload.key'", tmp, OIN_OM, tmp, OIN_OM), 0);
	s_expect_identity(tmp, OIN_OM, KP_ERR_KEY_FILE_MODE, "payload.key");
	s_rm(tmp);
}

static void
s_swap_case(const char *file, const char *from_oin)
{
	char tmp[256], needle[512];

	s_copy_chain(tmp, sizeof(tmp));
	cr_assert_eq(test_sh("cp '%s/orgs/%s/%s' '%s/orgs/%s/%s'", tmp,
	    from_oin, file, tmp, OIN_LEERPLICHT, file), 0);
	snprintf(needle, sizeof(needle), "%s/orgs/%s/%s does not match", tmp,
	    OIN_LEERPLICHT, file);
	s_expect_identity(tmp, OIN_LEERPLICHT, KP_ERR_KEY_INVALID, needle);
	s_rm(tmp);
}

Test(identity, swapped_key_files_are_refused)
{
	s_swap_case("sign.key", OIN_HALT);
	s_swap_case("transport.key", OIN_OM);
	s_swap_case("payload.key", OIN_HALT);
}

Test(identity, wrong_key_type_or_garbage_key_is_refused)
{
	char tmp[256], path[4096];

	s_copy_chain(tmp, sizeof(tmp));
	snprintf(path, sizeof(path), "%s/orgs/%s/transport.key", tmp,
	    OIN_RVDK);
	cr_assert_eq(test_sh("cp '%s/orgs/%s/sign.key' '%s'", tmp, OIN_RVDK,
	    path), 0);
	s_expect_identity(tmp, OIN_RVDK, KP_ERR_KEY_INVALID,
	    "transport.key is not an unencrypted PEM X25519 private key");
	cr_assert_eq(test_sh("echo garbage > '%s/orgs/%s/sign.key'", tmp,
	    OIN_RVDK), 0);
	s_expect_identity(tmp, OIN_RVDK, KP_ERR_KEY_INVALID,
	    "sign.key is not an unencrypted PEM Ed25519 private key");
	cr_assert_eq(test_sh("rm '%s/orgs/%s/sign.key'", tmp, OIN_RVDK), 0);
	s_expect_identity(tmp, OIN_RVDK, KP_ERR_IO, "sign.key");
	s_rm(tmp);
}

Test(identity, missing_crl_is_refused)
{
	char tmp[256];
	trust_t *trust = NULL;
	kp_err_t err;

	s_copy_chain(tmp, sizeof(tmp));
	cr_assert_eq(test_sh("rm '%s/crl.pem'", tmp), 0);
	s_expect(trust_load(tmp, &trust, &err), &err, KP_ERR_CRL, "crl.pem");
	cr_assert_null(trust);
	cr_assert_eq(test_sh("echo garbage > '%s/crl.pem'", tmp), 0);
	s_expect(trust_load(tmp, &trust, &err), &err, KP_ERR_CRL,
	    "is not a PEM X.509 CRL");
	s_rm(tmp);
}

Test(identity, crl_of_another_ca_is_refused)
{
	char tmp[256], copy[512];
	trust_t *trust = NULL;
	kp_err_t err;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(copy, sizeof(copy), "%s/copy", tmp);
	cr_assert_eq(test_sh(TOOL " init --dir '%s/other' --name "
	    "'Ketenpost testketen' >/dev/null", test_bin(), tmp), 0);
	cr_assert_eq(test_sh("mkdir '%s' && cp -a '%s/.' '%s/' && "
	    "cp '%s/other/crl.pem' '%s/crl.pem'", copy, test_chain(), copy,
	    tmp, copy), 0);
	s_expect(trust_load(copy, &trust, &err), &err, KP_ERR_CRL,
	    "is not signed by the chain CA");
	cr_assert_null(trust);
	s_rm(tmp);
}

Test(identity, expired_crl_is_refused)
{
	char tmp[256], out[8192];

	s_copy_chain(tmp, sizeof(tmp));
	cr_assert_eq(test_sh_output(out, sizeof(out), "cd '%s/ca' && openssl "
	    "ca -config ca.cnf -gencrl -crl_lastupdate 20200101000000Z "
	    "-crl_nextupdate 20200201000000Z -out ../crl.pem", tmp), 0, "%s",
	    out);
	s_expect_partner(tmp, OIN_OM, KP_ERR_CRL, "CRL has expired");
	s_expect_identity(tmp, OIN_OM, KP_ERR_CRL, "crl.pem");
	s_rm(tmp);
}

Test(identity, garbage_or_missing_cert_is_refused)
{
	char tmp[256], path[512];
	trust_t *trust = s_trust(test_chain());
	partner_t *p = NULL;
	kp_err_t err;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(path, sizeof(path), "%s/cert.pem", tmp);
	cr_assert_eq(test_sh("echo garbage > '%s'", path), 0);
	s_expect(partner_load(trust, path, &p, &err), &err,
	    KP_ERR_CERT_INVALID, path);
	cr_assert(strstr(err.msg, "not a PEM X.509 certificate") != NULL);
	snprintf(path, sizeof(path), "%s/absent.pem", tmp);
	s_expect(partner_load(trust, path, &p, &err), &err, KP_ERR_IO, path);
	cr_assert_null(p);
	trust_destroy(&trust);
	s_rm(tmp);
}

/* The CA certificate is not an organisation identity. */
Test(identity, ca_cert_as_partner_is_refused)
{
	char path[4096];
	trust_t *trust = s_trust(test_chain());
	partner_t *p = NULL;
	kp_err_t err;

	snprintf(path, sizeof(path), "%s/ca.crt", test_chain());
	cr_assert_eq(partner_load(trust, path, &p, &err), -1);
	cr_assert_neq(err.code, KP_OK);
	cr_assert_null(p);
	trust_destroy(&trust);
}

Test(identity, missing_or_garbage_ca_is_refused)
{
	char tmp[256];
	trust_t *trust = NULL;
	kp_err_t err;

	test_tmpdir(tmp, sizeof(tmp));
	s_expect(trust_load(tmp, &trust, &err), &err, KP_ERR_IO, "ca.crt");
	cr_assert_eq(test_sh("echo garbage > '%s/ca.crt'", tmp), 0);
	s_expect(trust_load(tmp, &trust, &err), &err, KP_ERR_CERT_INVALID,
	    "ca.crt");
	cr_assert_eq(test_sh("cp '%s/orgs/%s/cert.pem' '%s/ca.crt'",
	    test_chain(), OIN_OM, tmp), 0);
	s_expect(trust_load(tmp, &trust, &err), &err, KP_ERR_CERT_INVALID,
	    "is not a self-signed CA certificate");
	cr_assert_null(trust);
	s_rm(tmp);
}

/* ---- the ketenpost-certs tool ---------------------------------------- */

static void
s_cli_refuses(const char *args, const char *needle)
{
	char out[8192];
	int rc;

	rc = test_sh_output(out, sizeof(out), TOOL " %s", test_bin(), args);
	cr_assert_eq(rc, 2, "exit %d for '%s': %s", rc, args, out);
	cr_assert(strstr(out, needle) != NULL, "'%s': output '%s' lacks '%s'",
	    args, out, needle);
}

Test(identity, cli_refusals)
{
	char tmp[256], args[1024];

	s_copy_chain(tmp, sizeof(tmp));
	snprintf(args, sizeof(args), "org --dir '%s' --oin %s --role foo "
	    "--name X", tmp, NEW_OIN);
	s_cli_refuses(args, "ketenpost-certs: role 'foo' is not one of: "
	    "leerplicht halt rvdk om jbt zorg auditor");
	snprintf(args, sizeof(args), "org --dir '%s' --oin 0000000100999999900 "
	    "--role om --name X", tmp);
	s_cli_refuses(args, "OIN '0000000100999999900' is not exactly 20 "
	    "digits");
	snprintf(args, sizeof(args), "org --dir '%s' --oin %s --role om "
	    "--name X", tmp, OIN_OM);
	s_cli_refuses(args, "OIN " OIN_OM " already exists");
	snprintf(args, sizeof(args), "org --dir '%s' --oin %s --role om "
	    "--name X --endpoint http://example.org", tmp, NEW_OIN);
	s_cli_refuses(args, "is not of the form tcp://host:port");
	snprintf(args, sizeof(args), "org --dir '%s' --oin %s --role om "
	    "--name \"$(printf 'a\\tb')\"", tmp, NEW_OIN);
	s_cli_refuses(args, "must not contain control characters");
	snprintf(args, sizeof(args), "init --dir '%s'", tmp);
	s_cli_refuses(args, "already holds a chain CA");
	snprintf(args, sizeof(args), "revoke --dir '%s' --oin %s", tmp,
	    NEW_OIN);
	s_cli_refuses(args, "OIN " NEW_OIN " is unknown");
	s_cli_refuses("frobnicate", "unknown command 'frobnicate'");
	s_cli_refuses("org --dir x --bogus", "unknown option '--bogus'");
	/* Nothing was made by the refusals. */
	cr_assert_neq(test_sh("test -e '%s/orgs/%s'", tmp, NEW_OIN), 0);
	s_rm(tmp);
}

Test(identity, cli_help)
{
	char out[8192];

	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " --help",
	    test_bin()), 0);
	cr_assert(strstr(out, "--key-usage") != NULL);
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " help",
	    test_bin()), 0);
	cr_assert(strstr(out, "revoke --dir DIR --oin OIN") != NULL);
}

static void
s_mode_is(const char *path, unsigned mode)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat %s", path);
	cr_assert_eq(st.st_mode & 07777, mode, "%s has mode %04o, not %04o",
	    path, st.st_mode & 07777, mode);
}

Test(identity, cli_file_modes)
{
	static const char *const secrets[] = {
		"sign.key", "transport.key", "payload.key"
	};
	char path[4096];
	size_t i, j;

	snprintf(path, sizeof(path), "%s/ca", test_chain());
	s_mode_is(path, 0700);
	snprintf(path, sizeof(path), "%s/ca/ca.key", test_chain());
	s_mode_is(path, 0600);
	for (i = 0; i < sizeof(s_orgs) / sizeof(s_orgs[0]); i++) {
		test_org_dir(test_chain(), s_orgs[i].oin, path, sizeof(path));
		s_mode_is(path, 0700);
		for (j = 0; j < 3; j++) {
			snprintf(path, sizeof(path), "%s/orgs/%s/%s",
			    test_chain(), s_orgs[i].oin, secrets[j]);
			s_mode_is(path, 0600);
		}
		test_cert(test_chain(), s_orgs[i].oin, path, sizeof(path));
		s_mode_is(path, 0644);
	}
}

static void
s_text_has(const char *path, const char *const *needles)
{
	static char out[65536];

	cr_assert_eq(test_sh_output(out, sizeof(out), "openssl x509 -in '%s' "
	    "-noout -text", path), 0, "%s", out);
	for (; *needles != NULL; needles++)
		cr_assert(strstr(out, *needles) != NULL, "%s lacks '%s':\n%s",
		    path, *needles, out);
}

Test(identity, cli_certs_are_v3_with_the_right_extensions)
{
	static const char *const org[] = {
		"Version: 3 (0x2)", "Signature Algorithm: ED25519",
		"Subject: serialNumber = " OIN_LEERPLICHT
		", O = Gemeente Testdam / Leerplicht, OU = leerplicht",
		"X509v3 Basic Constraints: critical\n                CA:FALSE",
		"X509v3 Key Usage: critical\n                Digital Signature\n",
		"URI:tcp://127.0.0.1:17101", KP_OID_TRANSPORT_KEY ":",
		KP_OID_PAYLOAD_KEY ":", "X509v3 Authority Key Identifier", NULL
	};
	static const char *const ca[] = {
		"Version: 3 (0x2)", "Subject: CN = ketenpost chain CA",
		"X509v3 Basic Constraints: critical\n                CA:TRUE",
		"X509v3 Key Usage: critical\n                Certificate Sign, "
		"CRL Sign", NULL
	};
	char path[4096];

	test_cert(test_chain(), OIN_LEERPLICHT, path, sizeof(path));
	s_text_has(path, org);
	snprintf(path, sizeof(path), "%s/ca.crt", test_chain());
	s_text_has(path, ca);
}
