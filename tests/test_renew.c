/*
 * test_renew.c: key rotation keeps what is stored readable (issue 10).
 *
 * An organisation made before storage.key existed renews its keys with the
 * real tool: `renew` first writes storage.key from the payload key in use,
 * the CA signs the new request with --renew (the old certificate is kept as
 * previous.pem), and after the switch to the new keys the storage key and
 * every case pseudonym are what they were, while the payload key is new.
 * During the overlap (before and after the switch) both certificates are
 * accepted and every envelope opens, whichever key it was sealed to.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "chain.h"
#include "envelope.h"
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

/* ---- the overlap, at the library level ------------------------------ */

static chain_t *
s_open(const char *dir, const char *oin)
{
	chain_t *c = NULL;
	kp_err_t e;

	cr_assert_eq(chain_open_oin(dir, oin, NULL, NULL, &c, &e), 0, "%s %s",
	    oin, e.msg);
	cr_assert_eq(c->n_problems, 0);
	return c;
}

/* An envelope from `from` to to_oin, sealed as a daemon seals it. */
static void
s_seal(const chain_t *from, const char *to_oin, uint8_t **env, size_t *len)
{
	const peer_t *to = directory_find(from->dir, to_oin);
	uint8_t digest[32], payload[8] = "payload";
	envelope_meta_t m;
	kp_err_t e;

	cr_assert_not_null(to);
	memset(&m, 0, sizeof(m));
	kp_uuid_new(m.event_id);
	m.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	snprintf(m.purpose, sizeof(m.purpose), "mas.route_referral");
	snprintf(m.legal_basis, sizeof(m.legal_basis), "lpw-art-22");
	m.created_at_ms = kp_now_ms();
	m.expires_at_ms = m.created_at_ms + 86400000u;
	randombytes_buf(m.case_ref, sizeof(m.case_ref));
	cr_assert_eq(envelope_seal(from->dir, to, &m, payload, sizeof(payload),
	    env, len, digest, &e), 0, "%s", e.msg);
}

/* Open env at `at`: 0, or the error code. */
static int
s_open_env(const chain_t *at, const uint8_t *env, size_t len)
{
	envelope_meta_t m;
	uint8_t *p = NULL, digest[32];
	size_t plen = 0;
	bool has_digest;
	kp_err_t e;

	if (envelope_open(at->dir, env, len, &m, &p, &plen, digest,
	    &has_digest, &e) != 0)
		return e.code;
	cr_assert_eq(plen, 8);
	cr_assert_str_eq((char *)p, "payload");
	free(p);
	return 0;
}

/* A receipt issued by `by` for lp, verified at lp: 0 or the error code. */
static int
s_receipt_roundtrip(const chain_t *by, const chain_t *lp)
{
	receipt_t r, got;
	uint8_t *buf = NULL;
	size_t len = 0;
	kp_err_t e;
	int rc;

	memset(&r, 0, sizeof(r));
	r.has_event_id = true;
	kp_uuid_new(r.event_id);
	snprintf(r.subject_oin, sizeof(r.subject_oin), "%s", OIN_LEERPLICHT);
	randombytes_buf(r.envelope_digest, sizeof(r.envelope_digest));
	r.status = KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED;
	r.reason = KP__REASON__REASON_NONE;
	r.received_at_ms = kp_now_ms();
	cr_assert_eq(receipt_sign(by->dir, &r, &buf, &len, &e), 0, "%s", e.msg);
	rc = receipt_verify(lp->dir, buf, len, &got, &e) == 0 ? 0 : e.code;
	free(buf);
	return rc;
}

Test(renew, both_certificates_are_accepted_and_every_key_opens)
{
	char tmp[256], org[512], out[8192];
	chain_t *lp_old, *lp_new, *halt_before, *halt_after;
	uint8_t *to_old, *to_new, *from_old, *from_new;
	size_t to_old_len, to_new_len, from_old_len, from_new_len;
	const peer_t *p;

	test_tmpdir(tmp, sizeof(tmp));
	cr_assert_eq(test_sh("cp -a '%s/.' '%s/'", test_chain(), tmp), 0);
	snprintf(org, sizeof(org), "%s/orgs/%s", tmp, OIN_HALT);
	lp_old = s_open(tmp, OIN_LEERPLICHT);
	s_seal(lp_old, OIN_HALT, &to_old, &to_old_len);

	/* Renewed and signed, not switched. */
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " renew --dir '%s' "
	    "--ca '%s/ca.crt' && " TOOL " sign --dir '%s' --renew --request "
	    "'%s/next/request.csr'", test_bin(), org, tmp, test_bin(), tmp,
	    org), 0, "%s", out);
	lp_new = s_open(tmp, OIN_LEERPLICHT);
	cr_assert_not_null(p = directory_find(lp_new->dir, OIN_HALT));
	cr_assert_eq(peer_cert_count(p), 2, "both certificates of halt");
	cr_assert(strstr(partner_cert_file(peer_partner(p)), "cert.pem"));
	cr_assert(memcmp(partner_payload_pk(peer_partner(p)), partner_payload_pk(
	    peer_partner(directory_find(lp_old->dir, OIN_HALT))), 32) != 0,
	    "lp must seal to halt's new certificate");
	s_seal(lp_new, OIN_HALT, &to_new, &to_new_len);
	halt_before = s_open(tmp, OIN_HALT);
	cr_assert(strstr(partner_cert_file(identity_public(halt_before->self)),
	    "previous.pem"), "halt runs on its old certificate until it "
	    "switches");
	cr_assert_eq(identity_payload_key_count(halt_before->self), 2);
	cr_assert_eq(s_open_env(halt_before, to_old, to_old_len), 0);
	cr_assert_eq(s_open_env(halt_before, to_new, to_new_len), 0,
	    "sealed to the new key before the switch: next/payload.key");
	s_seal(halt_before, OIN_LEERPLICHT, &from_old, &from_old_len);
	cr_assert_eq(s_open_env(lp_new, from_old, from_old_len), 0,
	    "signed with halt's old key: its previous certificate");
	cr_assert_eq(s_receipt_roundtrip(halt_before, lp_new), 0);

	/* The switch. */
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " switch --dir "
	    "'%s'", test_bin(), org), 0, "%s", out);
	halt_after = s_open(tmp, OIN_HALT);
	cr_assert(strstr(partner_cert_file(identity_public(halt_after->self)),
	    "cert.pem"));
	cr_assert_eq(identity_payload_key_count(halt_after->self), 2);
	cr_assert_eq(s_open_env(halt_after, to_new, to_new_len), 0);
	cr_assert_eq(s_open_env(halt_after, to_old, to_old_len), 0,
	    "sealed to the old key before the sender saw the new "
	    "certificate: previous/payload.key");
	s_seal(halt_after, OIN_LEERPLICHT, &from_new, &from_new_len);
	cr_assert_eq(s_open_env(lp_new, from_new, from_new_len), 0);
	cr_assert_eq(s_receipt_roundtrip(halt_after, lp_new), 0);
	/* Who knows only the old certificate cannot take the new key's. */
	cr_assert_eq(s_open_env(lp_old, from_new, from_new_len),
	    KP_ERR_BAD_SIGNATURE);
	cr_assert_eq(s_receipt_roundtrip(halt_after, lp_old),
	    KP_ERR_BAD_SIGNATURE);
	chain_close(&halt_after);

	/* Without previous/ what was sealed to the old key is lost. */
	cr_assert_eq(test_sh("rm -r '%s/previous'", org), 0);
	halt_after = s_open(tmp, OIN_HALT);
	cr_assert_eq(identity_payload_key_count(halt_after->self), 1);
	cr_assert_eq(s_open_env(halt_after, to_old, to_old_len), KP_ERR_DECRYPT);
	free(to_old);
	free(to_new);
	free(from_old);
	free(from_new);
	chain_close(&halt_after);
	chain_close(&halt_before);
	chain_close(&lp_new);
	chain_close(&lp_old);
	test_sh("rm -rf '%s'", tmp);
}

/* A renewed partner's previous certificate expires before its new one:
 * the daemon reloads then (trustwatch.c), so the old key stops working on
 * time rather than at the next unrelated reload. */
Test(renew, a_previous_certificates_expiry_is_a_reload_time)
{
	char tmp[256], org[512], out[8192], from[32], until[32];
	time_t now = time(NULL), soon = now + 3600;
	const peer_t *p;
	chain_t *lp;
	int64_t old_end;

	test_tmpdir(tmp, sizeof(tmp));
	cr_assert_eq(test_sh("cp -a '%s/.' '%s/'", test_chain(), tmp), 0);
	snprintf(org, sizeof(org), "%s/orgs/%s", tmp, OIN_HALT);
	strftime(from, sizeof(from), "%Y%m%d%H%M%SZ", gmtime(&now));
	strftime(until, sizeof(until), "%Y%m%d%H%M%SZ", gmtime(&soon));
	/* an hour-long certificate, switched to, then renewed as usual: the
	 * short one is now previous.pem, in its overlap */
	cr_assert_eq(test_sh_output(out, sizeof(out), TOOL " renew --dir '%s' "
	    "--ca '%s/ca.crt' && " TOOL " sign --dir '%s' --renew --request "
	    "'%s/next/request.csr' --valid-from %s --valid-until %s && " TOOL
	    " switch --dir '%s' && " TOOL " renew --dir '%s' --ca '%s/ca.crt' "
	    "&& " TOOL " sign --dir '%s' --renew --request "
	    "'%s/next/request.csr'", test_bin(), org, tmp, test_bin(), tmp,
	    org, from, until, test_bin(), org, test_bin(), org, tmp,
	    test_bin(), tmp, org), 0, "%s", out);
	lp = s_open(tmp, OIN_LEERPLICHT);
	cr_assert_not_null(p = directory_find(lp->dir, OIN_HALT));
	cr_assert_eq(peer_cert_count(p), 2);
	old_end = partner_not_after(peer_cert(p, 1));
	cr_assert_lt(old_end, partner_not_after(peer_cert(p, 0)));
	cr_assert_leq(old_end, (int64_t)soon);
	cr_assert_eq(kpd_trust_next_s(lp, now), old_end, "the reload must "
	    "come when halt's previous certificate expires");
	chain_close(&lp);
}
