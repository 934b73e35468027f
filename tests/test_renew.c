/*
 * test_renew.c: key rotation keeps what is stored readable (issue 10).
 *
 * An organisation made before storage.key existed renews its keys with the
 * real tool: `renew` first writes storage.key from the payload key in use,
 * the CA signs the new request with --renew (the old certificate is kept as
 * previous.pem), and after the switch to the new keys the storage key and
 * every case pseudonym are what they were, while the payload key is new.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "chain.h"
#include "common.h"
#include "daemon.h"
#include "daemons.h"
#include "pseudonym.h"

TestSuite(renew, .init = test_init);

#define TOOL "'%s/ketenpost-certs'"

struct keys {
	uint8_t storage[32], payload_pk[32], pseudonym[32];
};

static void
s_keys(const char *chain, const char *org_dir, struct keys *k)
{
	trust_t *t = NULL;
	identity_t *id = NULL;
	kp_err_t e;

	cr_assert_eq(trust_load(chain, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(identity_load(t, org_dir, &id, &e), 0, "%s", e.msg);
	cr_assert_eq(atrest_key_derive(identity_storage_sk(id), k->storage), 0);
	memcpy(k->payload_pk, partner_payload_pk(identity_public(id)), 32);
	cr_assert_eq(pseudonym_for(id, OIN_OM, "HALT-2026-7", k->pseudonym,
	    &e), 0, "%s", e.msg);
	identity_destroy(&id);
	trust_destroy(&t);
}

static void
s_run(const char *fmt, const char *a, const char *b)
{
	char cmd[2048], out[8192];
	int rc;

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	rc = test_sh_output(out, sizeof(out), TOOL " %s", test_bin(), cmd);
	cr_assert_eq(rc, 0, "ketenpost-certs %s: %s", cmd, out);
}

Test(renew, storage_and_pseudonyms_survive_new_keys)
{
	char tmp[256], org[512], path[600];
	struct keys before, after;
	struct stat st;

	test_tmpdir(tmp, sizeof(tmp));
	cr_assert_eq(test_sh("cp -a '%s/.' '%s/'", test_chain(), tmp), 0);
	snprintf(org, sizeof(org), "%s/orgs/%s", tmp, OIN_HALT);
	snprintf(path, sizeof(path), "%s/storage.key", org);
	cr_assert_neq(stat(path, &st), 0, "a legacy org has no storage.key");
	s_keys(tmp, org, &before);

	/* At the organisation: renew.  At the CA: sign --renew. */
	snprintf(path, sizeof(path), "%s/ca.crt", tmp);
	s_run("renew --dir '%s' --ca '%s'", org, path);
	snprintf(path, sizeof(path), "%s/storage.key", org);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/next/request.csr", org);
	s_run("sign --dir '%s' --renew --request '%s'", tmp, path);
	cr_assert_eq(test_sh("test -f '%s/previous.pem'", org), 0,
	    "the CA keeps the old certificate for the overlap");
	/* The switch: the new keys and certificate in place of the old. */
	cr_assert_eq(test_sh("cd '%s' && mv next/sign.key next/transport.key "
	    "next/payload.key . && rmdir next 2>/dev/null; rm -rf next", org), 0);
	s_keys(tmp, org, &after);
	cr_assert(memcmp(before.payload_pk, after.payload_pk, 32) != 0,
	    "the payload key must be new");
	cr_assert(memcmp(before.storage, after.storage, 32) == 0,
	    "payloads stored before the renewal became unreadable");
	cr_assert(memcmp(before.pseudonym, after.pseudonym, 32) == 0,
	    "case pseudonyms changed with the renewal");
	/* A second renewal keeps storage.key as it is. */
	snprintf(path, sizeof(path), "%s/ca.crt", tmp);
	s_run("renew --dir '%s' --ca '%s'", org, path);
	s_keys(tmp, org, &before);
	cr_assert(memcmp(before.storage, after.storage, 32) == 0);
	test_sh("rm -rf '%s'", tmp);
}

Test(renew, request_makes_a_random_storage_key)
{
	char tmp[256], out[4096];
	int rc;

	test_tmpdir(tmp, sizeof(tmp));
	rc = test_sh_output(out, sizeof(out), TOOL " request --dir '%s/o' --ca "
	    "'%s/ca.crt' --oin %s --role om --name X", test_bin(), tmp,
	    test_chain(), OIN_OM);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert_eq(test_sh("test \"$(stat -c %%a '%s/o/storage.key')\" = 600 "
	    "&& grep -Eqx '[0-9a-f]{64}' '%s/o/storage.key'", tmp, tmp), 0);
	test_sh("rm -rf '%s'", tmp);
}

/* The case pseudonyms o received, in inbox order, as hex. */
static size_t
s_case_refs(const td_org_t *o, char refs[][65], size_t max)
{
	Kp__Response *r = td_inbox(o, true);
	size_t i, n = 0;

	for (i = 0; i < r->inbox->n_items && n < max; i++) {
		cr_assert(r->inbox->items[i]->has_case_pseudonym &&
		    r->inbox->items[i]->case_pseudonym.len == 32);
		kp_hex(r->inbox->items[i]->case_pseudonym.data, 32, refs[n++]);
	}
	kp__response__free_unpacked(r, NULL);
	return n;
}

Test(renew, a_renewed_organisation_keeps_its_log_and_pseudonyms)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char org[4200], out[8192], refs[4][65];
	uint8_t id[16];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-9", td_example("referral"), NULL,
	    id);
	cr_assert(td_wait_settled(lp, 15000), "see %s", lp->log);
	td_stop(lp);  /* signs a last head with the old key */

	/* Renewal: new keys for the same OIN, signed with --renew; the
	 * partner learns the new certificate (SIGHUP: chain_dir mode). */
	snprintf(org, sizeof(org), "%s/orgs/%s", c.dir, OIN_LEERPLICHT);
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " renew --dir '%s' "
	    "--ca '%s/ca.crt' && " TOOL " sign --dir '%s' --renew --request "
	    "'%s/next/request.csr'", test_bin(), org, c.dir, test_bin(), c.dir,
	    org), 0, "%s", out);
	td_hup(halt);
	cr_assert(td_log_has(halt, "reload: 5 partners", 10000), "see %s",
	    halt->log);
	/* Before the switch: the CA's cert.pem beside the keys is already
	 * the new one; the daemon runs on previous.pem, which holds them. */
	td_start(lp);
	td_send(lp, OIN_HALT, "referral", "LP-8", td_example("referral"), NULL,
	    id);
	cr_assert(td_wait_settled(lp, 15000), "see %s", lp->log);
	td_stop(lp);
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " switch --dir "
	    "'%s'", test_bin(), org), 0, "%s", out);
	td_start(lp);
	td_send(lp, OIN_HALT, "referral", "LP-9", td_example("referral"), NULL,
	    id);
	cr_assert(td_wait_settled(lp, 15000), "see %s", lp->log);
	td_send(halt, OIN_LEERPLICHT, "halt_outcome", "H-9",
	    td_example("halt_outcome"), NULL, id);
	cr_assert(td_wait_settled(halt, 15000), "see %s", halt->log);
	/* The same local case, the same pseudonym, before and after. */
	cr_assert_eq(s_case_refs(halt, refs, 4), 3);
	cr_assert_str_eq(refs[0], refs[2], "pseudonym changed with the keys");
	td_stop(lp);
	td_stop(halt);
	/* Heads signed before the renewal verify against the certificate
	 * valid then, those after against the new one. */
	cr_assert_eq(test_sh_output(out, sizeof(out), "'%s/ketenpost' audit "
	    "verify '%s/state'", test_bin(), org), 0, "%s", out);
	cr_assert(strstr(out, "intact") != NULL, "%s", out);
}
