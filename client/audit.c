/*
 * audit.c: `ketenpost audit ...`, the auditor's tools: export, verify,
 * proof, check-proof and the dispatch of every subcommand.  Offline: they
 * read a daemon's state directory (read-only; the daemon may be running)
 * or an export file, and never need a daemon, a key or the network.
 * docs/AUDIT.md is the specification; audit.h says where each tool lives.
 *
 * Must never: write to a state directory, trust an export's own claims
 * (every root is recomputed), or print payload values (there are none).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "auditlog.h"
#include "cli.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "merkle.h"
#include "pbjson.h"
#include "util.h"

/* ====================================================================== */
/* audit export                                                           */
/* ====================================================================== */

static const char s_export_help[] =
"usage: ketenpost audit export STATE_DIR [--from TIME] [--to TIME]\n"
"Write the audit log in STATE_DIR (opened read-only; the daemon may run)\n"
"to stdout as JSON lines: a \"log\" line (OIN, certificate), then every\n"
"entry in seq order and every signed tree head, each head right after\n"
"the entry that completes it (docs/AUDIT.md, \"Export format\").\n"
"--from/--to (ISO 8601 UTC, e.g. 2027-01-01T00:00:00Z) keep only the\n"
"entries with from <= time < to; such an export is marked \"filtered\"\n"
"and serves `audit report` and `audit reconcile`, not `audit verify`.\n";

struct export_ctx {
	uint64_t from, to;
	bool filtered;
};

static void
s_print_line(json_t *j)
{
	if (j != NULL)
		json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
}

static int
s_export_item(void *arg, const struct item *it)
{
	const struct export_ctx *c = arg;

	if (it->type == IT_HEAD) {
		s_print_line(audit_head_to_json(&it->h));
		return 0;
	}
	if (c->filtered && (it->e.time_ms < c->from || it->e.time_ms >= c->to))
		return 0;
	s_print_line(audit_entry_to_json(&it->e));
	return 0;
}

static int
s_parse_range(const struct opts *o, struct export_ctx *c)
{
	c->from = 0;
	c->to = UINT64_MAX;
	c->filtered = o->from != NULL || o->to != NULL;
	if (o->from != NULL && kp_time_parse(o->from, &c->from) != 0)
		return cli_usage_error("audit export", "--from '%s' is not an "
		    "ISO 8601 UTC time like 2027-01-01T00:00:00Z", o->from);
	if (o->to != NULL && kp_time_parse(o->to, &c->to) != 0)
		return cli_usage_error("audit export", "--to '%s' is not an "
		    "ISO 8601 UTC time like 2028-01-01T00:00:00Z", o->to);
	if (c->from >= c->to)
		return cli_usage_error("audit export", "--from must be before "
		    "--to");
	return 0;
}

static int
s_export(int argc, char **argv)
{
	struct export_ctx c;
	struct src *s = NULL;
	struct opts o;
	json_t *log;
	int rc;

	if ((rc = auditopt_parse(argc, argv, "export", s_export_help, O_RANGE, 1,
	    &o)) != 0 || (rc = s_parse_range(&o, &c)) != 0)
		return rc < 0 ? 0 : rc;
	if (!auditsrc_is_dir(o.args[0]))
		return cli_error("%s is not a state directory", o.args[0]);
	if ((rc = auditsrc_open(o.args[0], &s)) != 0)
		return rc;
	log = json_pack("{s:s, s:s, s:s, s:i}", "type", "log", "oin", s->oin,
	    "certificate", s->cert, "format", S_FORMAT);
	if (c.filtered && log != NULL) {
		json_object_set_new(log, "filtered", json_true());
		if (o.from != NULL)
			json_object_set_new(log, "from", json_string(o.from));
		if (o.to != NULL)
			json_object_set_new(log, "to", json_string(o.to));
	}
	s_print_line(log);
	rc = auditsrc_run(s, NULL, s_export_item, &c);
	auditsrc_close(&s);
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_error("cannot write the export: %s",
		    strerror(errno));
	return rc;
}

/* ====================================================================== */
/* audit verify                                                           */
/* ====================================================================== */

static const char s_verify_help[] =
"usage: ketenpost audit verify STATE_DIR|EXPORT_FILE\n"
"                              [--ca CA_FILE [--crl CRL_FILE]] [--strict]\n"
"Recompute the Merkle tree from the entries, check that seqs run from 0\n"
"without gaps, that every signed tree head is signed by the log's\n"
"organisation (its certificate; with --ca also issued by that chain CA)\n"
"and matches the recomputed root of its size, and that successive heads\n"
"are consistent.  With --ca every head must also have been signed within\n"
"the certificate's validity, and with --crl before its revocation.\n"
"--strict also fails on entries after the last signed head and on times\n"
"that go backwards.  Exit 0 if all holds; otherwise one line naming the\n"
"first bad entry (seq) or head (size), exit 1.\n";

static void
s_verified_line(const struct src *s, const struct ver *v)
{
	uint64_t n = merkle_size(v->tree);
	const audit_head_t *h = v->n_heads ? &v->heads[v->n_heads - 1] : NULL;
	char t[32];

	if (h == NULL) {
		printf("intact: log of %s is empty\n", s->oin);
		return;
	}
	kp_time_format(h->time_ms, t);
	printf("intact: log of %s: %llu entries, %zu signed heads, latest "
	    "head size %llu at %s", s->oin, (ull)n, v->n_heads, (ull)h->size,
	    t);
	if (n > h->size)
		printf("; %llu entries after it are not signed yet",
		    (ull)(n - h->size));
	printf("\n");
}

static int
s_verify(int argc, char **argv)
{
	struct src *s = NULL;
	struct ver v = { 0 };
	struct opts o;
	int rc;

	if ((rc = auditopt_parse(argc, argv, "verify", s_verify_help,
	    O_CA | O_CRL | O_STRICT, 1, &o)) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = auditsrc_open(o.args[0], &s)) != 0)
		return rc;
	if ((rc = auditsrc_refuse_filtered(s, "verify")) == 0 &&
	    (rc = auditver_init(&v, s, &o)) == 0 &&
	    (rc = auditsrc_run(s, &v, NULL, NULL)) == 0)
		s_verified_line(s, &v);
	auditver_free(&v);
	auditsrc_close(&s);
	return rc;
}

/* ====================================================================== */
/* audit proof / check-proof                                              */
/* ====================================================================== */

static const char s_proof_help[] =
"usage: ketenpost audit proof EXPORT_FILE|STATE_DIR EVENT_ID [--ca FILE]\n"
"Verify the log (as `audit verify`), then print as JSON an inclusion\n"
"proof of every entry about EVENT_ID in the tree of the latest signed\n"
"head, with that head and the organisation's certificate: everything\n"
"`audit check-proof` needs, and nothing else of the log.\n";

struct proof_ctx {
	uint8_t id[16];
	struct item *hits;
	size_t n, cap;
};

static int
s_proof_item(void *arg, const struct item *it)
{
	struct proof_ctx *c = arg;
	struct item *grown;

	if (it->type != IT_ENTRY || !it->e.has_event_id ||
	    memcmp(it->e.event_id, c->id, 16) != 0)
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 8;
		if ((grown = realloc(c->hits, c->cap * sizeof(*grown))) == NULL)
			return cli_error("out of memory");
		c->hits = grown;
	}
	c->hits[c->n++] = *it;
	return 0;
}

static json_t *
s_path_json(const uint8_t (*path)[32], size_t n)
{
	json_t *a = json_array();
	char hex[65];
	size_t i;

	for (i = 0; a != NULL && i < n; i++) {
		kp_hex(path[i], 32, hex);
		json_array_append_new(a, json_string(hex));
	}
	return a;
}

/* The proof object for the hits covered by head h. */
static int
s_proof_build(const struct src *s, struct ver *v, const struct proof_ctx *c,
    const audit_head_t *h, const char *id_text, json_t **out)
{
	json_t *o, *entries = json_array(), *one;
	uint8_t (*path)[MERKLE_HASH_LEN] = NULL;
	size_t i, n;

	for (i = 0; entries != NULL && i < c->n; i++) {
		if (c->hits[i].e.seq >= h->size)
			continue;
		if (merkle_inclusion_proof(v->tree, c->hits[i].e.seq, h->size,
		    &path, &n) != 0) {
			json_decref(entries);
			return cli_error("out of memory");
		}
		one = json_object();
		json_object_set_new(one, "entry",
		    audit_entry_to_json(&c->hits[i].e));
		json_object_set_new(one, "leaf_index",
		    json_integer((json_int_t)c->hits[i].e.seq));
		json_object_set_new(one, "path", s_path_json(
		    (const uint8_t (*)[32])path, n));
		json_array_append_new(entries, one);
		free(path);
		path = NULL;
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "type",
	    "inclusion_proof", "oin", s->oin, "certificate", s->cert,
	    "event_id", id_text, "tree_head", audit_head_to_json(h),
	    "entries", entries);
	if (o == NULL)
		return cli_error("out of memory");
	*out = o;
	return 0;
}

static int
s_proof_emit(const struct src *s, struct ver *v, const struct proof_ctx *c,
    const char *id_text)
{
	const audit_head_t *h = v->n_heads ? &v->heads[v->n_heads - 1] : NULL;
	json_t *o = NULL;
	size_t i;
	int rc;

	if (c->n == 0)
		return cli_error("%s: no entry about event %s", s->path, id_text);
	if (h == NULL || c->hits[0].e.seq >= h->size)
		return cli_error("%s: the entries about event %s are not yet "
		    "covered by a signed tree head (latest head size %llu); "
		    "try again after the daemon signs the next one", s->path,
		    id_text, h ? (ull)h->size : 0ULL);
	for (i = 0; i < c->n; i++)
		if (c->hits[i].e.seq >= h->size)
			fprintf(stderr, "ketenpost: note: entry seq %llu about "
			    "event %s is not yet covered by a signed head; "
			    "left out\n", (ull)c->hits[i].e.seq, id_text);
	if ((rc = s_proof_build(s, v, c, h, id_text, &o)) != 0)
		return rc;
	cli_print_json(o);
	json_decref(o);
	return 0;
}

static int
s_proof(int argc, char **argv)
{
	struct proof_ctx c = { 0 };
	struct src *s = NULL;
	struct ver v = { 0 };
	struct opts o;
	int rc;

	if ((rc = auditopt_parse(argc, argv, "proof", s_proof_help,
	    O_CA | O_CRL, 2, &o)) != 0)
		return rc < 0 ? 0 : rc;
	if (kp_uuid_parse(o.args[1], c.id) != 0)
		return cli_usage_error("audit proof", "'%s' is not an event id",
		    o.args[1]);
	if ((rc = auditsrc_open(o.args[0], &s)) != 0)
		return rc;
	if ((rc = auditsrc_refuse_filtered(s, "proof")) == 0 &&
	    (rc = auditver_init(&v, s, &o)) == 0 &&
	    (rc = auditsrc_run(s, &v, s_proof_item, &c)) == 0) {
		char id[KP_UUID_TEXT_LEN + 1];

		kp_uuid_format(c.id, id);
		rc = s_proof_emit(s, &v, &c, id);
	}
	free(c.hits);
	auditver_free(&v);
	auditsrc_close(&s);
	return rc;
}

static const char s_check_proof_help[] =
"usage: ketenpost audit check-proof PROOF_FILE [--ca CA_FILE]\n"
"Check an inclusion proof made by `audit proof`, given only the file: the\n"
"tree head's signature by the certificate in it (with --ca, a certificate\n"
"issued by that chain CA), and for every entry its leaf hash (of its\n"
"canonical encoding) and path against the signed root (RFC 9162\n"
"§2.1.3.2).  Exit 0 if all hold, else 1 with one line naming what failed.\n";

static const char *const s_proof_keys[] = { "type", "oin", "certificate",
	"event_id", "tree_head", "entries", NULL };
static const char *const s_proof_entry_keys[] = { "entry", "leaf_index",
	"path", NULL };

static bool
s_keys_only(const json_t *j, const char *const *keys)
{
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(j))
		return false;
	json_object_foreach((json_t *)j, k, v) {
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL)
			return false;
	}
	return true;
}

/* The path array as hashes.  OUT: *path (malloc'd), *n. */
static int
s_path_parse(const json_t *a, uint8_t (**path)[32], size_t *n)
{
	size_t i;
	json_t *v;

	*path = NULL;
	*n = 0;
	if (!json_is_array(a) || json_array_size(a) > 64)
		return -1;
	if (json_array_size(a) == 0)
		return 0;
	if ((*path = calloc(json_array_size(a), 32)) == NULL)
		return -1;
	json_array_foreach(a, i, v)
		if (!json_is_string(v) ||
		    kp_unhex(json_string_value(v), (*path)[i], 32) != 0) {
			free(*path);
			*path = NULL;
			return -1;
		}
	*n = json_array_size(a);
	return 0;
}

/* One element of "entries": 0, or an exit status after the message. */
static int
s_check_one(const char *file, const char *oin, const uint8_t id[16],
    const audit_head_t *h, const json_t *el, size_t i)
{
	json_t *idx = json_object_get(el, "leaf_index");
	uint8_t buf[AUDIT_ENTRY_MAX], leaf[32], (*path)[32] = NULL;
	audit_entry_t e;
	size_t len = 0, n = 0;
	kp_err_t err;
	int rc = EXIT_REFUSED;

	if (!s_keys_only(el, s_proof_entry_keys) || !json_is_integer(idx) ||
	    json_integer_value(idx) < 0)
		return cli_error("%s: entries[%zu] must have \"entry\", "
		    "\"leaf_index\" and \"path\" only", file, i);
	if (audit_entry_from_json(json_object_get(el, "entry"), &e, &err) != 0 ||
	    audit_entry_encode(&e, buf, sizeof(buf), &len, &err) != 0)
		return cli_error("%s: entries[%zu]: %s", file, i, err.msg);
	if (e.seq != (uint64_t)json_integer_value(idx) || !e.has_event_id ||
	    memcmp(e.event_id, id, 16) != 0 ||
	    (e.own_oin[0] != '\0' && strcmp(e.own_oin, oin) != 0))
		return cli_error("%s: entries[%zu] (seq %llu): not an entry of "
		    "%s about this event at leaf_index %lld", file, i,
		    (ull)e.seq, oin, (long long)json_integer_value(idx));
	if (s_path_parse(json_object_get(el, "path"), &path, &n) != 0)
		return cli_error("%s: entries[%zu]: \"path\" must be an array "
		    "of 32-byte hex hashes", file, i);
	if (merkle_leaf_hash(buf, len, leaf) != 0 ||
	    merkle_verify_inclusion(leaf, e.seq, h->size,
	    (const uint8_t (*)[32])path, n, h->root) != 0)
		cli_error("%s: entries[%zu] (seq %llu): not included in the "
		    "signed tree head of size %llu: the entry, its path or "
		    "the head was altered", file, i, (ull)e.seq, (ull)h->size);
	else
		rc = 0;
	free(path);
	return rc;
}

static int
s_check_proof_doc(const char *file, const json_t *j, const char *ca)
{
	const char *oin = json_string_value(json_object_get(j, "oin"));
	const char *cert = json_string_value(json_object_get(j, "certificate"));
	const char *idt = json_string_value(json_object_get(j, "event_id"));
	const char *type = json_string_value(json_object_get(j, "type"));
	json_t *entries = json_object_get(j, "entries"), *el;
	uint8_t pk[32], id[16];
	audit_head_t h;
	kp_err_t err;
	char t[32];
	size_t i;
	int rc;

	if (!s_keys_only(j, s_proof_keys) || type == NULL ||
	    strcmp(type, "inclusion_proof") != 0 || oin == NULL ||
	    !kp_oin_valid(oin) || cert == NULL || idt == NULL ||
	    kp_uuid_parse(idt, id) != 0 || !json_is_array(entries) ||
	    json_array_size(entries) == 0)
		return cli_error("%s: not an inclusion proof of `ketenpost audit "
		    "proof` (type, oin, certificate, event_id, tree_head, "
		    "entries)", file);
	if ((rc = auditcert_key(cert, oin, ca, file, pk)) != 0)
		return rc;
	if (audit_head_from_json(json_object_get(j, "tree_head"), &h, &err) != 0)
		return cli_error("%s: %s", file, err.msg);
	if (audit_head_verify(&h, oin, pk) != 0)
		return cli_error("%s: tree head size %llu: bad signature: not "
		    "signed by the key of %s's certificate", file,
		    (ull)h.size, oin);
	json_array_foreach(entries, i, el)
		if ((rc = s_check_one(file, oin, id, &h, el, i)) != 0)
			return rc;
	kp_time_format(h.time_ms, t);
	printf("proof valid: %zu entr%s about event %s in the log of %s, "
	    "signed tree head size %llu at %s%s\n", json_array_size(entries),
	    json_array_size(entries) == 1 ? "y" : "ies", idt, oin,
	    (ull)h.size, t, ca ? "" : " (certificate not checked against a "
	    "CA: use --ca)");
	return 0;
}

static int
s_check_proof(int argc, char **argv)
{
	struct opts o;
	json_t *j;
	int rc;

	if ((rc = auditopt_parse(argc, argv, "check-proof", s_check_proof_help, O_CA,
	    1, &o)) != 0)
		return rc < 0 ? 0 : rc;
	if ((j = cli_read_json(o.args[0])) == NULL)
		return EXIT_REFUSED;
	rc = s_check_proof_doc(o.args[0], j, o.ca);
	json_decref(j);
	return rc;
}

/* ====================================================================== */
/* dispatch                                                               */
/* ====================================================================== */

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} s_subs[] = {
	{ "export", s_export, "the log as JSON lines (read-only)" },
	{ "verify", s_verify, "recompute the tree, check every signed head" },
	{ "proof", s_proof, "inclusion proof of one event's entries" },
	{ "check-proof", s_check_proof, "check an inclusion proof file" },
	{ "reconcile", audit_cmd_reconcile, "match two organisations' logs" },
	{ "witness", audit_cmd_witness, "check the heads a partner holds of the log" },
	{ "heads", audit_cmd_heads, "the heads of a partner's log held here" },
	{ "report", audit_cmd_report, "counts for the accountability report" },
};

static void
s_audit_usage(FILE *to)
{
	size_t i;

	fprintf(to, "usage: ketenpost audit SUBCOMMAND ...\n"
	    "Offline checks of a ketenpost audit log (docs/AUDIT.md); no "
	    "daemon needed.\n\nsubcommands:\n");
	for (i = 0; i < sizeof(s_subs) / sizeof(s_subs[0]); i++)
		fprintf(to, "  %-12s %s\n", s_subs[i].name, s_subs[i].summary);
	fprintf(to, "\n'ketenpost audit SUBCOMMAND --help' describes one.\n");
}

int
cmd_audit(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		s_audit_usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		s_audit_usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(s_subs) / sizeof(s_subs[0]); i++)
		if (strcmp(argv[1], s_subs[i].name) == 0)
			return s_subs[i].run(argc - 1, argv + 1);
	return cli_usage_error("audit", "unknown subcommand '%s'", argv[1]);
}
