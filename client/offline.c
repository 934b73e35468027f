/*
 * offline.c: `ketenpost seal` and `ketenpost open`, the envelope without a
 * daemon.  For integrators checking their payloads, for the demo, and for
 * anyone who wants to see exactly what travels: the same lib/ code the
 * daemon uses, on files.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chain.h"
#include "cli.h"
#include "envelope.h"
#include "events.h"
#include "pbjson.h"
#include "pseudonym.h"
#include "util.h"

struct seal_args {
	const char *type, *chain, *from, *to, *ref, *json, *out, *reply_to;
	const char *purpose, *legal_basis;
	int ttl_days;
};

static const char s_seal_help[] =
"usage: ketenpost seal TYPE --chain DIR --from OIN --to OIN --case REF\n"
"                      --json FILE|- --out FILE [--reply-to EVENT_ID]\n"
"                      [--purpose ID] [--legal-basis REF] [--ttl-days N]\n"
"Seal one event of TYPE (referral, halt_outcome, rvdk_advice, om_decision,\n"
"jbt_request) from organisation --from to --to, both in chain folder DIR,\n"
"and write the envelope to --out.  Prints the event id.\n";

static int
s_seal_parse(int argc, char **argv, struct seal_args *a)
{
	static const struct option opts[] = {
		{ "chain", 1, NULL, 'c' }, { "from", 1, NULL, 'f' },
		{ "to", 1, NULL, 't' }, { "case", 1, NULL, 'k' },
		{ "json", 1, NULL, 'j' }, { "out", 1, NULL, 'o' },
		{ "reply-to", 1, NULL, 'r' }, { "purpose", 1, NULL, 'p' },
		{ "legal-basis", 1, NULL, 'l' }, { "ttl-days", 1, NULL, 'd' },
		{ "help", 0, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	int c;

	memset(a, 0, sizeof(*a));
	a->ttl_days = 30;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->chain = optarg; break;
		case 'f': a->from = optarg; break;
		case 't': a->to = optarg; break;
		case 'k': a->ref = optarg; break;
		case 'j': a->json = optarg; break;
		case 'o': a->out = optarg; break;
		case 'r': a->reply_to = optarg; break;
		case 'p': a->purpose = optarg; break;
		case 'l': a->legal_basis = optarg; break;
		case 'd': a->ttl_days = atoi(optarg); break;
		case 'h': fputs(s_seal_help, stdout); exit(0);
		default: return cli_usage_error("seal", "bad option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("seal", "expected exactly one TYPE");
	a->type = argv[optind];
	if (!a->chain || !a->from || !a->to || !a->ref || !a->json || !a->out)
		return cli_usage_error("seal", "--chain, --from, --to, --case, "
		    "--json and --out are required");
	if (a->ttl_days < 1 || a->ttl_days > 3650)
		return cli_usage_error("seal", "--ttl-days must be 1..3650");
	return 0;
}

static int
s_meta_fill(const struct seal_args *a, const chain_t *ch, int type,
    envelope_meta_t *m)
{
	kp_err_t e;

	memset(m, 0, sizeof(*m));
	kp_uuid_new(m->event_id);
	m->event_type = type;
	snprintf(m->purpose, sizeof(m->purpose), "%s", a->purpose ?
	    a->purpose : "mas");
	snprintf(m->legal_basis, sizeof(m->legal_basis), "%s",
	    a->legal_basis ? a->legal_basis : "unspecified");
	m->created_at_ms = kp_now_ms();
	m->expires_at_ms = m->created_at_ms + (uint64_t)a->ttl_days * 86400000u;
	if (a->reply_to != NULL) {
		if (kp_uuid_parse(a->reply_to, m->in_reply_to) != 0)
			return cli_error("--reply-to '%s' is not an event id",
			    a->reply_to);
		m->has_reply_to = true;
	}
	if (pseudonym_for(ch->self, a->to, a->ref, m->case_ref, &e) != 0)
		return cli_error("--case: %s", e.msg);
	return 0;
}

static int
s_write_file(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(buf, 1, len, f) != len) {
		if (f != NULL)
			fclose(f);
		return cli_error("cannot write %s", path);
	}
	if (fclose(f) != 0)
		return cli_error("cannot write %s", path);
	return 0;
}

int
cmd_seal(int argc, char **argv)
{
	struct seal_args a;
	chain_t *ch = NULL;
	const peer_t *to;
	envelope_meta_t m;
	ProtobufCBinaryData payload = { 0, NULL };
	uint8_t *env = NULL, digest[KP_DIGEST_LEN];
	size_t elen = 0;
	char id[KP_UUID_TEXT_LEN + 1];
	int type, rc;
	kp_err_t e;

	if ((rc = s_seal_parse(argc, argv, &a)) != 0)
		return rc;
	if ((type = events_type_from_name(a.type)) == 0)
		return cli_usage_error("seal", "unknown event type '%s'", a.type);
	if (chain_open_oin(a.chain, a.from, NULL, NULL, &ch, &e) != 0)
		return cli_error("%s (%s)", e.msg, kp_code_name(e.code));
	rc = EXIT_REFUSED;
	if ((to = directory_find(ch->dir, a.to)) == NULL) {
		cli_error("--to %s is not a verified partner in %s", a.to, a.chain);
		goto out;
	}
	if (cli_event_payload(type, a.json, &payload) != 0 ||
	    s_meta_fill(&a, ch, type, &m) != 0)
		goto out;
	if (envelope_seal(ch->dir, to, &m, payload.data, payload.len, &env,
	    &elen, digest,
	    &e) != 0) {
		cli_error("refused (%s): %s", kp_code_name(e.code), e.msg);
		goto out;
	}
	if (s_write_file(a.out, env, elen) != 0)
		goto out;
	kp_uuid_format(m.event_id, id);
	printf("%s\n", id);
	rc = 0;
out:
	free(env);
	free(payload.data);
	chain_close(&ch);
	return rc;
}

static void
s_set_hex(json_t *o, const char *key, const uint8_t *b, size_t n)
{
	char hex[2 * 64 + 1];

	kp_hex(b, n, hex);
	json_object_set_new(o, key, json_string(hex));
}

/* The opened envelope as JSON: header fields plus the payload object. */
static json_t *
s_opened_json(const envelope_meta_t *m, const uint8_t digest[32],
    json_t *payload)
{
	json_t *o = json_object();
	char id[KP_UUID_TEXT_LEN + 1], t[32];

	kp_uuid_format(m->event_id, id);
	json_object_set_new(o, "event_id", json_string(id));
	json_object_set_new(o, "event_type",
	    json_string(events_type_name(m->event_type)));
	json_object_set_new(o, "schema_version",
	    json_sprintf("%u.%u", m->schema_major, m->schema_minor));
	json_object_set_new(o, "sender_oin", json_string(m->sender_oin));
	json_object_set_new(o, "recipient_oin", json_string(m->recipient_oin));
	json_object_set_new(o, "purpose", json_string(m->purpose));
	json_object_set_new(o, "legal_basis", json_string(m->legal_basis));
	s_set_hex(o, "policy_hash", m->policy_hash, 32);
	kp_time_format(m->created_at_ms, t);
	json_object_set_new(o, "created_at", json_string(t));
	kp_time_format(m->expires_at_ms, t);
	json_object_set_new(o, "expires_at", json_string(t));
	s_set_hex(o, "case_ref", m->case_ref, 32);
	if (m->has_reply_to) {
		kp_uuid_format(m->in_reply_to, id);
		json_object_set_new(o, "in_reply_to", json_string(id));
	}
	s_set_hex(o, "envelope_digest", digest, 32);
	json_object_set_new(o, "payload", payload);
	return o;
}

static const char s_open_help[] =
"usage: ketenpost open --chain DIR --as OIN FILE\n"
"Open the envelope in FILE as organisation OIN of chain folder DIR: verify\n"
"the sender's signature and certificate, decrypt, check the event, and\n"
"print header and payload as JSON.  A refused envelope prints one line\n"
"naming the reason (e.g. bad_signature) and exits 1.\n";

static int
s_open_parse(int argc, char **argv, const char **chain, const char **as,
    const char **file)
{
	static const struct option opts[] = {
		{ "chain", 1, NULL, 'c' }, { "as", 1, NULL, 'a' },
		{ "help", 0, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	int c;

	*chain = *as = *file = NULL;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': *chain = optarg; break;
		case 'a': *as = optarg; break;
		case 'h': fputs(s_open_help, stdout); exit(0);
		default: return cli_usage_error("open", "bad option");
		}
	}
	if (optind + 1 != argc || *chain == NULL || *as == NULL)
		return cli_usage_error("open", "expected --chain, --as and FILE");
	*file = argv[optind];
	return 0;
}

int
cmd_open(int argc, char **argv)
{
	const char *chain_dir, *as, *file;
	chain_t *ch = NULL;
	envelope_meta_t m;
	ProtobufCMessage *ev = NULL;
	uint8_t *buf = NULL, *payload = NULL, digest[KP_DIGEST_LEN];
	size_t len = 0, plen = 0;
	bool has_digest;
	int rc;
	kp_err_t e;

	if ((rc = s_open_parse(argc, argv, &chain_dir, &as, &file)) != 0)
		return rc;
	if (kp_read_file(file, KP_MAX_ENVELOPE + 1, &buf, &len) != 0)
		return cli_error("cannot read %s: %m", file);
	rc = EXIT_REFUSED;
	if (chain_open_oin(chain_dir, as, NULL, NULL, &ch, &e) != 0) {
		cli_error("%s (%s)", e.msg, kp_code_name(e.code));
		goto out;
	}
	if (envelope_open(ch->dir, buf, len, &m, &payload, &plen, digest,
	    &has_digest, &e) != 0 ||
	    events_unpack(m.event_type, payload, plen, &ev, &e) != 0) {
		cli_error("%s: refused (%s): %s", file, kp_code_name(e.code),
		    e.msg);
		goto out;
	}
	json_t *out = s_opened_json(&m, digest, pbjson_to_json(ev));
	cli_print_json(out);
	json_decref(out);
	rc = 0;
out:
	pbjson_free(ev);
	if (payload != NULL)
		sodium_memzero(payload, plen);
	free(payload);
	free(buf);
	chain_close(&ch);
	return rc;
}
