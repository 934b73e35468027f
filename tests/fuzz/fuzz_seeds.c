/*
 * fuzz_seeds: the seed corpora of the fuzz targets, made at build time
 * from the build's own test chain (tests/make-chain.sh) and the worked
 * examples of docs/examples, so no binary blob or key is kept in git.
 *
 *   fuzz_seeds CHAIN_DIR SOURCE_DIR OUT_DIR
 *
 * Writes OUT_DIR/<target>/<name> for the targets envelope, receipt,
 * event, pbjson, config, policy, api, audit, bundle and pack: real sealed
 * envelopes and signed receipts between two organisations of the chain,
 * packed events, API requests, audit entries and export lines, the chain's
 * config files, the shipped policy, the chain's signed bundle and pack
 * bodies of receipts.  It only writes below OUT_DIR.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <sodium.h>

#include "api.pb-c.h"
#include "auditlog.h"
#include "envelope.h"
#include "events.h"
#include "fuzzcommon.h"
#include "pack.h"
#include "pbjson.h"

static const char *s_out;
static int s_count;

static void __attribute__((noreturn))
s_die(const char *what)
{
	fprintf(stderr, "fuzz_seeds: %s\n", what);
	exit(1);
}

static void
s_write(const char *target, const char *name, const void *a, size_t alen,
    const void *b, size_t blen)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", s_out, target);
	(void)mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", s_out, target, name);
	if ((f = fopen(path, "wb")) == NULL ||
	    (alen > 0 && fwrite(a, 1, alen, f) != alen) ||
	    (blen > 0 && fwrite(b, 1, blen, f) != blen) || fclose(f) != 0)
		s_die(path);
	s_count++;
}

static void
s_copy(const char *target, const char *name, const char *from)
{
	uint8_t *buf;
	size_t len;

	if (kp_read_file(from, 1 << 20, &buf, &len) != 0)
		s_die(from);
	s_write(target, name, buf, len, NULL, 0);
	free(buf);
}

/* The chain's bundle: whole ('A') and its item section for re-signing
 * ('B'), as fuzz_bundle reads them. */
static void
s_bundle(const char *chain)
{
	char path[4096];
	uint8_t *buf;
	size_t len, n, lines, end;

	snprintf(path, sizeof(path), "%s/bundle", chain);
	if (kp_read_file(path, 1 << 24, &buf, &len) != 0)
		s_die(path);
	s_write("bundle", "whole", "A", 1, buf, len);
	for (n = 0, lines = 0; n < len && lines < 4; n++)
		lines += buf[n] == '\n';
	for (end = len; end > n && memcmp(buf + end - 4, "end\n", 4) != 0;
	    end--)
		;
	if (lines != 4 || end - 4 < n)
		s_die("bundle layout");
	s_write("bundle", "items", "B", 1, buf + n, end - 4 - n);
	free(buf);
}

/* An envelope of `type` from lp to halt, whole and stripped. */
static void
s_envelope(fz_org_t *lp, int type, const uint8_t *pl, size_t len)
{
	const peer_t *to = directory_find(lp->dir, FZ_OIN_HALT);
	uint8_t digest[KP_DIGEST_LEN], *env, *ev;
	envelope_meta_t m;
	size_t n, evn;
	char name[64];
	kp_err_t e;

	memset(&m, 0, sizeof(m));
	kp_uuid_new(m.event_id);
	m.event_type = type;
	snprintf(m.purpose, sizeof(m.purpose), "verwijzing");
	snprintf(m.legal_basis, sizeof(m.legal_basis), "Lpw_art_22");
	m.created_at_ms = kp_now_ms();
	m.expires_at_ms = m.created_at_ms + 86400000u;
	randombytes_buf(m.case_ref, sizeof(m.case_ref));
	if (to == NULL || envelope_seal(lp->dir, to, &m, pl, len, &env, &n,
	    digest, &e) != 0)
		{ fprintf(stderr, "%s\n", e.msg); s_die("envelope_seal"); }
	snprintf(name, sizeof(name), "%s", events_type_name(type));
	s_write("envelope", name, env, n, NULL, 0);
	if (envelope_strip(env, n, &ev, &evn, &e) != 0)
		s_die("envelope_strip");
	snprintf(name, sizeof(name), "%s-stripped", events_type_name(type));
	s_write("envelope", name, ev, evn, NULL, 0);
	free(ev);
	free(env);
}

/* A receipt Halt signs for a fresh event of Leerplicht's, with status
 * and reason.  OUT: *buf (malloc'd), *n. */
static void
s_signed_receipt(fz_org_t *halt, int status, int reason, uint8_t **buf,
    size_t *n)
{
	receipt_t r;
	kp_err_t e;

	memset(&r, 0, sizeof(r));
	r.has_event_id = true;
	kp_uuid_new(r.event_id);
	snprintf(r.subject_oin, sizeof(r.subject_oin), "%s", FZ_OIN_LEERPLICHT);
	randombytes_buf(r.envelope_digest, sizeof(r.envelope_digest));
	r.status = status;
	r.reason = reason;
	r.received_at_ms = kp_now_ms();
	if (receipt_sign(halt->dir, &r, buf, n, &e) != 0)
		s_die("receipt_sign");
}

static void
s_receipts(fz_org_t *halt)
{
	static const int status[] = { 1, 2, 2 }, reason[] = { 0, 3, 7 };
	uint8_t *buf;
	size_t i, n;
	char name[32];

	for (i = 0; i < 3; i++) {
		s_signed_receipt(halt, status[i], reason[i], &buf, &n);
		snprintf(name, sizeof(name), "receipt-%zu", i);
		s_write("receipt", name, buf, n, NULL, 0);
		free(buf);
	}
}

/* The pack body (without its type byte) of n >= 2 items, as `name`; with
 * `first_only`, cut after its first item (a pack of one: malformed). */
static void
s_pack_body(const char *name, uint8_t *const *item, const size_t *len,
    size_t n, int first_only)
{
	pack_t *p = pack_new(0x02, 0x04);
	pack_item_t at[KP_PACK_ITEMS_MAX + 1];
	const uint8_t *f;
	size_t i, flen, got;

	if (p == NULL)
		s_die("out of memory");
	for (i = 0; i < n; i++)
		if (pack_add(p, item[i], len[i]) != 0)
			s_die("pack_add");
	if ((f = pack_frame(p, &flen)) == NULL || n < 2)
		s_die("pack_frame");
	if (first_only) {
		if (pack_parse(f + 1, flen - 1, at, KP_PACK_ITEMS_MAX + 1,
		    &got) != 0)
			s_die("pack_parse");
		flen = 1 + at[0].off + at[0].len;
	}
	s_write("pack", name, f + 1, flen - 1, NULL, 0);
	pack_destroy(&p);
}

/* Pack bodies: of real signed receipts (two, three, one alone), of the
 * most small items a pack holds and one more, of empty items. */
static void
s_packs(fz_org_t *halt)
{
	uint8_t *item[KP_PACK_ITEMS_MAX + 1], small[KP_PACK_ITEMS_MAX + 1][16];
	size_t len[KP_PACK_ITEMS_MAX + 1], i;

	for (i = 0; i < 3; i++)
		s_signed_receipt(halt, 1, 0, &item[i], &len[i]);
	s_pack_body("receipts-2", item, len, 2, 0);
	s_pack_body("receipts-3", item, len, 3, 0);
	s_pack_body("receipt-alone", item, len, 2, 1);
	for (i = 0; i < 3; i++)
		free(item[i]);
	for (i = 0; i <= KP_PACK_ITEMS_MAX; i++) {
		randombytes_buf(small[i], sizeof(small[i]));
		item[i] = small[i];
		len[i] = sizeof(small[i]);
	}
	s_pack_body("items-max", item, len, KP_PACK_ITEMS_MAX, 0);
	s_pack_body("items-over-max", item, len, KP_PACK_ITEMS_MAX + 1, 0);
	len[0] = len[1] = 0;
	s_pack_body("items-empty", item, len, 2, 0);
}

/* A packed send request carrying payload pl of `type`. */
static void
s_api_send(int type, const uint8_t *pl, size_t len)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest s = KP__SEND_REQUEST__INIT;
	uint8_t buf[KP_MAX_PAYLOAD + 4096];
	char name[64];

	s.has_event_type = 1;
	s.event_type = type;
	s.to_oin = (char *)FZ_OIN_HALT;
	s.case_ref = (char *)"LP-FUZZ-0001";
	s.has_payload = 1;
	s.payload.data = (uint8_t *)pl;
	s.payload.len = len;
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &s;
	if (kp__request__get_packed_size(&req) > sizeof(buf))
		return;
	snprintf(name, sizeof(name), "send-%s", events_type_name(type));
	s_write("api", name, buf, kp__request__pack(&req, buf), NULL, 0);
}

static void
s_api_others(void)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__ListRequest l = KP__LIST_REQUEST__INIT;
	Kp__FetchRequest f = KP__FETCH_REQUEST__INIT;
	Kp__SubjectRequest sub = KP__SUBJECT_REQUEST__INIT;
	uint8_t id[16], buf[256];

	req.op_case = KP__REQUEST__OP_STATUS;
	req.status = 1;
	s_write("api", "status", buf, kp__request__pack(&req, buf), NULL, 0);
	req.op_case = KP__REQUEST__OP_INBOX;
	l.has_all = l.has_limit = l.has_after_seq = 1;
	l.all = 1;
	l.limit = 10;
	l.after_seq = 3;
	req.inbox = &l;
	s_write("api", "inbox", buf, kp__request__pack(&req, buf), NULL, 0);
	kp_uuid_new(id);
	f.has_event_id = 1;
	f.event_id.data = id;
	f.event_id.len = 16;
	req.op_case = KP__REQUEST__OP_FETCH;
	req.fetch = &f;
	s_write("api", "fetch", buf, kp__request__pack(&req, buf), NULL, 0);
	sub.case_ref = (char *)"LP-FUZZ-0001";
	req.op_case = KP__REQUEST__OP_SUBJECT;
	req.subject = &sub;
	s_write("api", "subject", buf, kp__request__pack(&req, buf), NULL, 0);
}

/* One example file docs/examples/<type>.json through every seed form. */
static void
s_example(fz_org_t *lp, const char *src, const char *file)
{
	static const uint8_t roles[][2] = { { 1, 2 }, { 2, 1 }, { 1, 3 },
	    { 1, 5 }, { 3, 1 }, { 4, 1 } };
	ProtobufCMessage *msg = NULL;
	char path[4096], type_name[64], name[96], *dot, *text;
	uint8_t *pl, hdr[3];
	json_t *j;
	size_t len, r;
	kp_err_t e;
	int type;

	snprintf(type_name, sizeof(type_name), "%s", file);
	if ((dot = strrchr(type_name, '.')) == NULL || strcmp(dot, ".json"))
		return;
	*dot = '\0';
	if ((type = events_type_from_name(type_name)) <= 0)
		return;
	snprintf(path, sizeof(path), "%s/docs/examples/%s", src, file);
	if ((j = json_load_file(path, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    pbjson_from_json(events_descriptor(type), j, &msg, &e) != 0)
		s_die(path);
	len = protobuf_c_message_get_packed_size(msg);
	if ((pl = malloc(len + 1)) == NULL)
		s_die("out of memory");
	len = protobuf_c_message_pack(msg, pl);
	s_envelope(lp, type, pl, len);
	s_api_send(type, pl, len);
	for (r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
		hdr[0] = (uint8_t)type;
		hdr[1] = roles[r][0];
		hdr[2] = roles[r][1];
		snprintf(name, sizeof(name), "%s-%zu", type_name, r);
		s_write("event", name, hdr, 3, pl, len);
	}
	hdr[0] = (uint8_t)type;
	text = json_dumps(j, JSON_COMPACT);
	s_write("pbjson", type_name, hdr, 1, text, strlen(text));
	free(text);
	free(pl);
	pbjson_free(msg);
	json_decref(j);
}

static void
s_examples(fz_org_t *lp, const char *src)
{
	char path[4096];
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/docs/examples", src);
	if ((dir = opendir(path)) == NULL)
		s_die(path);
	while ((de = readdir(dir)) != NULL)
		s_example(lp, src, de->d_name);
	closedir(dir);
	s_write("pbjson", "request-status", "\x07{\"status\":true}", 16,
	    NULL, 0);
}

static void
s_audit_one(const audit_entry_t *e, const char *name)
{
	uint8_t buf[AUDIT_ENTRY_MAX];
	size_t n = 0;
	json_t *j;
	char *text, fname[64];
	kp_err_t err;

	if (audit_entry_encode(e, buf, sizeof(buf), &n, &err) != 0)
		s_die("audit_entry_encode");
	snprintf(fname, sizeof(fname), "%s-bytes", name);
	s_write("audit", fname, "\x01", 1, buf, n);
	j = audit_entry_to_json(e);
	json_object_set_new(j, "type", json_string("entry"));
	text = json_dumps(j, JSON_COMPACT);
	snprintf(fname, sizeof(fname), "%s-line", name);
	s_write("audit", fname, "\x00", 1, text, strlen(text));
	free(text);
	json_decref(j);
}

static void
s_audit(void)
{
	audit_entry_t e;
	audit_head_t h;
	json_t *j;
	char *text;

	memset(&e, 0, sizeof(e));
	e.seq = 4;
	e.time_ms = kp_now_ms();
	e.kind = AUDIT_SEND;
	e.direction = AUDIT_OUT;
	snprintf(e.own_oin, sizeof(e.own_oin), "%s", FZ_OIN_LEERPLICHT);
	snprintf(e.partner_oin, sizeof(e.partner_oin), "%s", FZ_OIN_HALT);
	e.has_event_id = true;
	kp_uuid_new(e.event_id);
	e.event_type = 1;
	snprintf(e.purpose, sizeof(e.purpose), "verwijzing");
	snprintf(e.legal_basis, sizeof(e.legal_basis), "Lpw_art_22");
	e.has_policy_hash = e.has_case_pseudonym = true;
	e.has_envelope_digest = true;
	randombytes_buf(e.policy_hash, 32);
	randombytes_buf(e.case_pseudonym, 32);
	randombytes_buf(e.envelope_digest, 32);
	snprintf(e.fields, sizeof(e.fields), "route,age_years");
	s_audit_one(&e, "send");
	e.kind = AUDIT_REFUSAL_IN;
	e.direction = AUDIT_IN;
	e.reason = 5;
	e.has_receipt_digest = true;
	randombytes_buf(e.receipt_digest, 32);
	s_audit_one(&e, "refusal");
	memset(&e, 0, sizeof(e));
	e.kind = AUDIT_POLICY_LOAD;
	e.time_ms = kp_now_ms();
	snprintf(e.own_oin, sizeof(e.own_oin), "%s", FZ_OIN_HALT);
	s_audit_one(&e, "policy");
	memset(&h, 0, sizeof(h));
	h.size = 5;
	h.time_ms = kp_now_ms();
	randombytes_buf(h.root, 32);
	randombytes_buf(h.signature, 64);
	j = audit_head_to_json(&h);
	json_object_set_new(j, "type", json_string("tree_head"));
	text = json_dumps(j, JSON_COMPACT);
	s_write("audit", "head-line", "\x00", 1, text, strlen(text));
	free(text);
	json_decref(j);
}

int
main(int argc, char **argv)
{
	fz_org_t lp, halt;
	char path[4096];

	if (argc != 4)
		s_die("usage: fuzz_seeds CHAIN_DIR SOURCE_DIR OUT_DIR");
	setenv("KP_FUZZ_CHAIN", argv[1], 1);
	s_out = argv[3];
	(void)mkdir(s_out, 0755);
	fz_org_load(FZ_OIN_LEERPLICHT, &lp);
	fz_org_load(FZ_OIN_HALT, &halt);
	s_examples(&lp, argv[2]);
	s_receipts(&halt);
	s_packs(&halt);
	s_api_others();
	s_audit();
	s_bundle(argv[1]);
	snprintf(path, sizeof(path), "%s/policy/mas.ini", argv[2]);
	s_copy("policy", "mas.ini", path);
	snprintf(path, sizeof(path), "%s/orgs/%s/ketenpostd.conf", argv[1],
	    FZ_OIN_LEERPLICHT);
	s_copy("config", "leerplicht.conf", path);
	snprintf(path, sizeof(path), "%s/orgs/%s/ketenpostd.conf", argv[1],
	    FZ_OIN_HALT);
	s_copy("config", "halt.conf", path);
	directory_destroy(&lp.dir);
	identity_destroy(&lp.id);
	directory_destroy(&halt.dir);
	identity_destroy(&halt.id);
	printf("fuzz_seeds: %d seeds in %s\n", s_count, s_out);
	return 0;
}
