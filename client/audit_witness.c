/*
 * audit_witness.c: `ketenpost audit witness` (docs/AUDIT.md §10): the heads
 * a partner witnessed of a log, checked against the log itself.
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
/* audit witness                                                          */
/* ====================================================================== */

static const char s_witness_help[] =
"usage: ketenpost audit witness EXPORT_FILE|STATE_DIR --heads "
"PARTNER_STATE_DIR|FILE\n"
"                               [--ca CA_FILE]\n"
"Check the tree heads of this log that a partner holds (its state\n"
"directory's witness table, or FILE: JSON lines of \"tree_head\" objects;\n"
"\"log\" and \"entry\" lines are skipped, so an earlier export also\n"
"serves) against the log: each must be signed by the log's organisation\n"
"and match the root recomputed from the entries at its size.  A log\n"
"rewritten after the partner saw a head fails.  Exit 0 or 1.\n";

struct heads {
	audit_head_t *a;
	size_t n, cap;
};

static int
s_heads_add(struct heads *h, const audit_head_t *x)
{
	audit_head_t *grown;

	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 64;
		if ((grown = realloc(h->a, h->cap * sizeof(*grown))) == NULL)
			return cli_error("out of memory");
		h->a = grown;
	}
	h->a[h->n++] = *x;
	return 0;
}

static int
s_witness_db(const char *dir, const char *oin, struct heads *out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = auditsrc_db_open(dir, &db)) != 0)
		return rc;
	if ((rc = auditsrc_prepare(db, dir, "SELECT size, time_ms, root, signature "
	    "FROM witness WHERE partner_oin = ?1 ORDER BY size, time_ms",
	    &st)) == 0) {
		sqlite3_bind_text(st, 1, oin, -1, SQLITE_STATIC);
		rc = auditsrc_db_heads(st, dir, &out->a, &out->n);
	}
	sqlite3_finalize(st);
	auditsrc_db_close(&db);
	return rc;
}

static int
s_witness_file_line(const char *file, long ln, json_t *j, const char *oin,
    struct heads *out)
{
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *lo = json_string_value(json_object_get(j, "oin"));
	audit_head_t h;
	kp_err_t e;

	if (type != NULL && strcmp(type, "entry") == 0)
		return 0;
	if (type != NULL && strcmp(type, "log") == 0) {
		if (lo == NULL || strcmp(lo, oin) != 0)
			return cli_error("%s: line %ld: heads of the log of %s, "
			    "not of %s", file, ln, lo ? lo : "?", oin);
		return 0;
	}
	if (audit_head_from_json(j, &h, &e) != 0)
		return cli_error("%s: line %ld: %s", file, ln, e.msg);
	return s_heads_add(out, &h);
}

static int
s_witness_file(const char *file, const char *oin, struct heads *out)
{
	struct src s = { .path = file };
	json_t *j = NULL;
	int rc = 0;

	s.f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (s.f == NULL)
		return cli_error("--heads %s: %s", file, strerror(errno));
	while ((rc = auditsrc_read_line(&s, &j)) == 0 && j != NULL) {
		rc = s_witness_file_line(file, s.lineno, j, oin, out);
		json_decref(j);
		if (rc != 0)
			break;
	}
	if (s.f != stdin)
		fclose(s.f);
	free(s.line);
	return rc;
}

/* The export head nearest to w in size, for the consistency check. */
static const audit_head_t *
s_nearest(const struct ver *v, uint64_t size)
{
	const audit_head_t *best = NULL;
	size_t i;

	for (i = 0; i < v->n_heads; i++)
		if (best == NULL || (v->heads[i].size > size ?
		    v->heads[i].size - size : size - v->heads[i].size) <
		    (best->size > size ? best->size - size : size - best->size))
			best = &v->heads[i];
	return best;
}

static int
s_witness_one(const struct ver *v, const char *heads_from,
    const audit_head_t *w)
{
	uint64_t n = merkle_size(v->tree);
	const audit_head_t *near = s_nearest(v, w->size);
	uint8_t root[32];
	char t[32];

	kp_time_format(w->time_ms, t);
	if (audit_head_verify(w, v->oin, v->pk) != 0)
		return cli_error("witnessed head size %llu (%s) held by %s: "
		    "bad signature: not a head signed by %s", (ull)w->size, t,
		    heads_from, v->oin);
	if (w->size > n)
		return cli_error("witnessed head size %llu (%s) held by %s: "
		    "the log has only %llu entries: it was truncated (or the "
		    "export is older than the head)", (ull)w->size, t,
		    heads_from, (ull)n);
	if (merkle_root(v->tree, w->size, root) != 0)
		return cli_error("out of memory");
	if (sodium_memcmp(root, w->root, 32) != 0)
		return cli_error("witnessed head size %llu (%s) held by %s: its "
		    "root differs from the log's at that size: the log was "
		    "rewritten after the partner saw this head", (ull)w->size,
		    t, heads_from);
	if (near != NULL && !(near->size >= w->size ?
	    auditver_consistent(v->tree, w, near) : auditver_consistent(v->tree, near, w)))
		return cli_error("witnessed head size %llu (%s) held by %s: not "
		    "consistent with the log's head size %llu", (ull)w->size,
		    t, heads_from, (ull)near->size);
	return 0;
}

int
audit_cmd_witness(int argc, char **argv)
{
	struct heads w = { 0 };
	struct src *s = NULL;
	struct ver v = { 0 };
	struct opts o;
	size_t i;
	int rc;

	if ((rc = auditopt_parse(argc, argv, "witness", s_witness_help,
	    O_HEADS | O_CA, 1, &o)) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = auditsrc_open(o.args[0], &s)) != 0)
		return rc;
	if ((rc = auditsrc_refuse_filtered(s, "witness")) != 0 ||
	    (rc = auditver_init(&v, s, &o)) != 0 ||
	    (rc = auditsrc_run(s, &v, NULL, NULL)) != 0)
		goto out;
	rc = auditsrc_is_dir(o.heads) ? s_witness_db(o.heads, s->oin, &w) :
	    s_witness_file(o.heads, s->oin, &w);
	if (rc != 0)
		goto out;
	if (w.n == 0) {
		rc = cli_error("%s holds no heads of the log of %s: nothing to "
		    "check", o.heads, s->oin);
		goto out;
	}
	for (i = 0; i < w.n; i++)
		if ((rc = s_witness_one(&v, o.heads, &w.a[i])) != 0)
			goto out;
	printf("witnessed: all %zu heads of the log of %s held by %s (sizes "
	    "%llu..%llu) match the log\n", w.n, s->oin, o.heads,
	    (ull)w.a[0].size, (ull)w.a[w.n - 1].size);
out:
	free(w.a);
	auditver_free(&v);
	auditsrc_close(&s);
	return rc;
}

static const char s_heads_help[] =
"usage: ketenpost audit heads STATE_DIR --of OIN\n"
"Print, as JSON lines of \"tree_head\" objects (docs/AUDIT.md §6), the\n"
"signed heads of OIN's log that this organisation witnessed (each was\n"
"verified on arrival).  Hand the output to OIN's auditor, who runs\n"
"`audit witness OIN_EXPORT --heads FILE`: no other part of this state\n"
"directory is needed.\n";

int
audit_cmd_heads(int argc, char **argv)
{
	struct heads w = { 0 };
	struct opts o;
	json_t *j;
	char *text;
	size_t i;
	int rc;

	if ((rc = auditopt_parse(argc, argv, "heads", s_heads_help, O_OF, 1,
	    &o)) != 0)
		return rc < 0 ? 0 : rc;
	if (!kp_oin_valid(o.of))
		return cli_usage_error("audit heads", "--of %s is not an OIN "
		    "(20 digits)", o.of);
	if (!auditsrc_is_dir(o.args[0]))
		return cli_error("%s is not a state directory", o.args[0]);
	if ((rc = s_witness_db(o.args[0], o.of, &w)) != 0)
		goto out;
	if (w.n == 0) {
		rc = cli_error("%s holds no heads of the log of %s", o.args[0],
		    o.of);
		goto out;
	}
	for (i = 0; i < w.n; i++) {
		if ((j = audit_head_to_json(&w.a[i])) == NULL ||
		    (text = json_dumps(j, JSON_COMPACT |
		    JSON_PRESERVE_ORDER)) == NULL) {
			json_decref(j);
			rc = cli_error("out of memory");
			goto out;
		}
		printf("%s\n", text);
		free(text);
		json_decref(j);
	}
out:
	free(w.a);
	return rc;
}
