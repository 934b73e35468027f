/*
 * audit.c: `ketenpost audit ...`, the auditor's tools.  Offline: they read
 * a daemon's state directory (read-only; the daemon may be running) or an
 * export file, and never need a daemon, a key or the network.
 * docs/AUDIT.md is the specification of everything read and written here.
 *
 * Every subcommand reads a log as one stream of items (s_src_*): the log
 * line (OIN and certificate), then entries in seq order with their leaf
 * hashes, and the signed tree heads in size order, each right after the
 * entry that completes it.  A state directory is read inside one SQLite
 * read transaction, so entries and heads are one consistent snapshot.
 * An entry from an export is re-encoded canonically from its JSON (lib/
 * auditlog.c refuses any JSON that does not map to exactly one encoding),
 * so the leaf hash, and with it every signed root, covers every member an
 * auditor reads.
 *
 * The checks (s_ver_*), in stream order, stopping at the first failure:
 *   1. the certificate is an Ed25519 certificate for the log's OIN (and,
 *      with --ca, issued by that chain CA);
 *   2. entry seqs run 0, 1, 2, ... without gap or repetition
 *      (s_ver_entry): a deleted, inserted or moved entry that kept its seq
 *      fails here, naming the seq;
 *   3. each head, once the entries it covers are in (s_ver_check_head):
 *      its signature (a forged head or another organisation's fails), its
 *      root against the root recomputed from the entries (an entry changed
 *      or renumbered before it fails), consistency with the previous head;
 *   4. at the end, a head that covers more entries than there are (a
 *      truncated tail) fails; entries after the last head are reported
 *      but are not a failure: the daemon signs at a cadence.
 * What no offline check of one log can see: the tail after the last head
 * removed together with nothing else, or a log rewritten and re-signed
 * entirely by its own organisation.  The partners' witnessed heads (`audit
 * witness`) and their own logs (`audit reconcile`) catch those.
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

#include "auditlog.h"
#include "cli.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "merkle.h"
#include "pbjson.h"
#include "util.h"

#define S_LINE_MAX (1 << 16)      /* longest export line accepted */
#define S_CERT_MAX (1 << 15)      /* longest certificate PEM accepted */
#define S_FORMAT 1                /* the export format's version */

typedef unsigned long long ull;

/* ====================================================================== */
/* Sources: a state directory or an export file, read as one stream.      */
/* ====================================================================== */

enum { IT_END = 0, IT_ENTRY, IT_HEAD };

struct item {
	int type;
	audit_entry_t e;
	uint8_t leaf[32];             /* SHA-256(0x00 || canonical bytes) */
	bool has_stored_leaf;         /* state directory: the leaf column */
	uint8_t stored_leaf[32];
	audit_head_t h;
	char where[32];               /* " (line 12)", or "" */
};

/* A certificate the organisation signed heads with before a renewal: its
 * key and validity (Unix seconds), from audit_meta 'certificate/<id>'. */
struct cert_hist {
	uint8_t pk[32];
	int64_t from, until;
};

struct src {
	const char *path;
	bool is_dir;
	char oin[21];
	char *cert;                   /* PEM, malloc'd */
	struct cert_hist *hist;       /* earlier certificates (renewals) */
	size_t n_hist;
	bool filtered;
	/* export file */
	FILE *f;
	char *line;
	size_t cap;
	long lineno;
	/* state directory */
	sqlite3 *db;
	sqlite3_stmt *st;
	audit_head_t *heads;
	size_t n_heads, next_head;
	uint64_t n_rows;
	bool rows_done;
};

static bool
s_is_dir(const char *path)
{
	struct stat st;

	return strcmp(path, "-") != 0 && stat(path, &st) == 0 &&
	    S_ISDIR(st.st_mode);
}

/* "file:" URI of path with immutable=1 (RFC 3986 escapes for SQLite). */
static void
s_immutable_uri(const char *path, char *out, size_t len)
{
	size_t o = 0;

	o += (size_t)snprintf(out, len, "file:");
	for (; *path != '\0' && o + 4 < len; path++) {
		if (*path == '?' || *path == '#' || *path == '%')
			o += (size_t)snprintf(out + o, len - o, "%%%02X",
			    (unsigned char)*path);
		else
			out[o++] = *path;
	}
	snprintf(out + o, len - o, "?immutable=1");
}

/* Open path read-only and start the read transaction: the snapshot every
 * later read sees. */
static int
s_db_try(const char *path, int flags, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 10000);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "BEGIN; SELECT count(*) FROM sqlite_master",
		    NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return SQLITE_OK;
}

/*
 * Open dir/ketenpost.db read-only in a read transaction.  Reading a WAL
 * database needs its -shm file, which SQLite creates if it is missing; in
 * a directory the auditor cannot write (a copy kept as evidence) that
 * fails, and then, if no write-ahead log is pending (no -wal file, or an
 * empty one: no daemon is writing), the file is read as immutable.
 */
static int
s_db_open(const char *dir, sqlite3 **out)
{
	char path[PATH_MAX], wal[PATH_MAX + 8], uri[3 * PATH_MAX + 32];
	struct stat st;
	int rc;

	*out = NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/ketenpost.db", dir) >=
	    sizeof(path))
		return cli_error("%s: path too long", dir);
	if (access(path, R_OK) != 0)
		return cli_error("%s: cannot read %s (%s); give a ketenpost "
		    "state directory or an export file", dir, path,
		    strerror(errno));
	rc = s_db_try(path, SQLITE_OPEN_READONLY, out);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (rc != SQLITE_OK && (stat(wal, &st) != 0 || st.st_size == 0)) {
		s_immutable_uri(path, uri, sizeof(uri));
		rc = s_db_try(uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, out);
	}
	if (rc != SQLITE_OK)
		return cli_error("%s: cannot open the database read-only: %s",
		    path, sqlite3_errstr(rc));
	return 0;
}

static void
s_db_close(sqlite3 **db)
{
	if (*db == NULL)
		return;
	sqlite3_exec(*db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(*db);
	*db = NULL;
}

static int
s_prepare(sqlite3 *db, const char *dir, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
		return cli_error("%s: %s: not a ketenpost state directory with "
		    "an audit log (or a newer one)", dir, sqlite3_errmsg(db));
	return 0;
}

/* A BLOB column of exactly n bytes. */
static bool
s_col(sqlite3_stmt *st, int col, uint8_t *out, size_t n)
{
	if (sqlite3_column_type(st, col) != SQLITE_BLOB ||
	    (size_t)sqlite3_column_bytes(st, col) != n)
		return false;
	memcpy(out, sqlite3_column_blob(st, col), n);
	return true;
}

/* Heads from a prepared SELECT size, time_ms, root, signature. */
static int
s_db_heads(sqlite3_stmt *st, const char *dir, audit_head_t **out, size_t *n)
{
	audit_head_t *a = NULL, *grown;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((grown = realloc(a, cap * sizeof(*a))) == NULL)
				goto nomem;
			a = grown;
		}
		a[*n].size = (uint64_t)sqlite3_column_int64(st, 0);
		a[*n].time_ms = (uint64_t)sqlite3_column_int64(st, 1);
		if (!s_col(st, 2, a[*n].root, 32) ||
		    !s_col(st, 3, a[*n].signature, 64)) {
			cli_error("%s: tree head of size %llu: root or "
			    "signature has the wrong length", dir,
			    (ull)a[*n].size);
			free(a);
			return EXIT_REFUSED;
		}
		(*n)++;
	}
	if (rc != SQLITE_DONE) {
		free(a);
		return cli_error("%s: reading tree heads: %s", dir,
		    sqlite3_errstr(rc));
	}
	*out = a;
	return 0;
nomem:
	free(a);
	return cli_error("out of memory");
}

/* audit_meta value of key, malloc'd; NULL after an error message. */
static char *
s_db_meta(sqlite3 *db, const char *dir, const char *key)
{
	sqlite3_stmt *st = NULL;
	char *v = NULL;

	if (s_prepare(db, dir, "SELECT value FROM audit_meta WHERE key = ?1",
	    &st) != 0)
		return NULL;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_text(st, 0) != NULL)
		v = strdup((const char *)sqlite3_column_text(st, 0));
	else
		cli_error("%s: audit_meta has no '%s': the daemon has not "
		    "started its audit log here", dir, key);
	sqlite3_finalize(st);
	return v;
}

static int s_cert_key(const char *pem, const char *oin, const char *ca_file,
    const char *what, uint8_t pk[32]);
static X509 *s_x509_pem(const char *pem, size_t len);

static int64_t
s_asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;

	return t != NULL && ASN1_TIME_to_tm(t, &tm) == 1 ?
	    (int64_t)timegm(&tm) : 0;
}

/*
 * Every certificate the daemon has signed heads with (audit_meta
 * 'certificate/<id>', one per certificate, kept across renewals), so that
 * a head is checked against the certificate valid when it was signed.
 * Logs from before the history have none: the current one is used.
 */
static int
s_db_hist(struct src *s)
{
	sqlite3_stmt *st = NULL;
	const char *pem;
	struct cert_hist *h;
	X509 *x;
	int rc = 0;

	if (s_prepare(s->db, s->path, "SELECT value FROM audit_meta WHERE key "
	    "LIKE 'certificate/%' ORDER BY key", &st) != 0)
		return EXIT_REFUSED;
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if ((pem = (const char *)sqlite3_column_text(st, 0)) == NULL)
			continue;
		if ((h = realloc(s->hist, (s->n_hist + 1) * sizeof(*h))) == NULL) {
			rc = cli_error("out of memory");
			break;
		}
		s->hist = h;
		h = &s->hist[s->n_hist];
		if ((rc = s_cert_key(pem, s->oin, NULL, s->path, h->pk)) != 0 ||
		    (x = s_x509_pem(pem, strlen(pem))) == NULL)
			break;
		h->from = s_asn1_unix(X509_get0_notBefore(x));
		h->until = s_asn1_unix(X509_get0_notAfter(x));
		X509_free(x);
		s->n_hist++;
	}
	sqlite3_finalize(st);
	return rc;
}

static int
s_src_open_dir(struct src *s)
{
	sqlite3_stmt *st = NULL;
	char *oin = NULL;
	int rc;

	if ((rc = s_db_open(s->path, &s->db)) != 0)
		return rc;
	if ((oin = s_db_meta(s->db, s->path, "oin")) == NULL ||
	    (s->cert = s_db_meta(s->db, s->path, "certificate")) == NULL) {
		free(oin);
		return EXIT_REFUSED;
	}
	if (!kp_oin_valid(oin)) {
		free(oin);
		return cli_error("%s: audit_meta 'oin' is not a 20-digit OIN",
		    s->path);
	}
	memcpy(s->oin, oin, 21);
	free(oin);
	if ((rc = s_db_hist(s)) != 0)
		return rc;
	if (s_prepare(s->db, s->path, "SELECT size, time_ms, root, signature "
	    "FROM tree_heads ORDER BY size", &st) != 0)
		return EXIT_REFUSED;
	rc = s_db_heads(st, s->path, &s->heads, &s->n_heads);
	sqlite3_finalize(st);
	if (rc != 0)
		return rc;
	return s_prepare(s->db, s->path, "SELECT seq, entry, leaf FROM audit "
	    "ORDER BY seq", &s->st);
}

/* A line of the export: NUL-terminated, without its newline.  OUT: *j,
 * NULL at the end of the file.  Blank lines are skipped. */
static int
s_read_line(struct src *s, json_t **j)
{
	json_error_t je;
	ssize_t n;

	*j = NULL;
	for (;;) {
		errno = 0;
		if ((n = getline(&s->line, &s->cap, s->f)) < 0) {
			if (errno != 0 || ferror(s->f))
				return cli_error("%s: read error: %s", s->path,
				    strerror(errno));
			return 0;
		}
		s->lineno++;
		if (n > S_LINE_MAX)
			return cli_error("%s: line %ld is longer than %d bytes",
			    s->path, s->lineno, S_LINE_MAX);
		while (n > 0 && (s->line[n - 1] == '\n' ||
		    s->line[n - 1] == '\r'))
			s->line[--n] = '\0';
		if (n > 0)
			break;
	}
	if ((size_t)n != strlen(s->line))
		return cli_error("%s: line %ld holds a NUL byte", s->path,
		    s->lineno);
	*j = json_loads(s->line, JSON_REJECT_DUPLICATES, &je);
	if (*j == NULL || !json_is_object(*j)) {
		json_decref(*j);
		*j = NULL;
		return cli_error("%s: line %ld: not a JSON object (%s)",
		    s->path, s->lineno, je.text);
	}
	return 0;
}

static const char *const s_log_keys[] = { "type", "oin", "certificate",
	"format", "filtered", "from", "to", NULL };

/* The first line: {"type":"log","oin":..,"certificate":..,"format":1}. */
static int
s_parse_log_line(struct src *s, json_t *j)
{
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *oin = json_string_value(json_object_get(j, "oin"));
	const char *cert = json_string_value(json_object_get(j, "certificate"));
	json_t *fmt = json_object_get(j, "format"), *v;
	const char *k;
	size_t i;

	if (type == NULL || strcmp(type, "log") != 0)
		return cli_error("%s: line %ld must be the \"log\" line of an "
		    "export (ketenpost audit export)", s->path, s->lineno);
	json_object_foreach(j, k, v) {
		for (i = 0; s_log_keys[i] != NULL; i++)
			if (strcmp(k, s_log_keys[i]) == 0)
				break;
		if (s_log_keys[i] == NULL)
			return cli_error("%s: line %ld: unknown member '%s'",
			    s->path, s->lineno, k);
	}
	if (!json_is_integer(fmt) || json_integer_value(fmt) != S_FORMAT)
		return cli_error("%s: export format is not %d", s->path,
		    S_FORMAT);
	if (oin == NULL || !kp_oin_valid(oin) || cert == NULL ||
	    strlen(cert) > S_CERT_MAX)
		return cli_error("%s: line %ld: \"oin\" (20 digits) and "
		    "\"certificate\" (PEM) are required", s->path, s->lineno);
	memcpy(s->oin, oin, 21);
	if ((s->cert = strdup(cert)) == NULL)
		return cli_error("out of memory");
	s->filtered = json_is_true(json_object_get(j, "filtered"));
	return 0;
}

static int
s_src_open_file(struct src *s)
{
	json_t *j = NULL;
	int rc;

	s->f = strcmp(s->path, "-") == 0 ? stdin : fopen(s->path, "r");
	if (s->f == NULL)
		return cli_error("cannot read %s: %s", s->path,
		    strerror(errno));
	if ((rc = s_read_line(s, &j)) != 0)
		return rc;
	if (j == NULL)
		return cli_error("%s: empty file, not an export", s->path);
	rc = s_parse_log_line(s, j);
	json_decref(j);
	return rc;
}

static void
s_src_close(struct src **sp)
{
	struct src *s = *sp;

	if (s == NULL)
		return;
	if (s->f != NULL && s->f != stdin)
		fclose(s->f);
	free(s->line);
	sqlite3_finalize(s->st);
	s_db_close(&s->db);
	free(s->heads);
	free(s->cert);
	free(s->hist);
	free(s);
	*sp = NULL;
}

/* OUT: *out, a source positioned after its log line. */
static int
s_src_open(const char *path, struct src **out)
{
	struct src *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (s == NULL)
		return cli_error("out of memory");
	s->path = path;
	s->is_dir = s_is_dir(path);
	rc = s->is_dir ? s_src_open_dir(s) : s_src_open_file(s);
	if (rc != 0) {
		s_src_close(&s);
		return rc;
	}
	*out = s;
	return 0;
}

static int
s_item_entry_bytes(struct src *s, struct item *it, const uint8_t *b,
    size_t n, uint64_t row_seq)
{
	kp_err_t e;

	if (audit_entry_decode(b, n, &it->e, &e) != 0)
		return cli_error("%s: entry seq %llu: malformed: %s", s->path,
		    (ull)row_seq, e.msg);
	if (it->e.seq != row_seq)
		return cli_error("%s: entry seq %llu: stored under seq %llu",
		    s->path, (ull)it->e.seq, (ull)row_seq);
	if (merkle_leaf_hash(b, n, it->leaf) != 0)
		return cli_error("SHA-256 failed");
	return 0;
}

static int
s_src_next_dir(struct src *s, struct item *it)
{
	int rc;

	for (;;) {
		if (s->next_head < s->n_heads &&
		    (s->rows_done || s->heads[s->next_head].size <= s->n_rows)) {
			it->type = IT_HEAD;
			it->h = s->heads[s->next_head++];
			return 0;
		}
		if (s->rows_done) {
			it->type = IT_END;
			return 0;
		}
		if ((rc = sqlite3_step(s->st)) == SQLITE_DONE) {
			s->rows_done = true;
			continue;
		}
		if (rc != SQLITE_ROW)
			return cli_error("%s: reading the audit log: %s",
			    s->path, sqlite3_errstr(rc));
		break;
	}
	it->type = IT_ENTRY;
	s->n_rows++;
	it->has_stored_leaf = s_col(s->st, 2, it->stored_leaf, 32);
	if (sqlite3_column_type(s->st, 1) != SQLITE_BLOB)
		return cli_error("%s: entry seq %lld: not a BLOB", s->path,
		    (long long)sqlite3_column_int64(s->st, 0));
	return s_item_entry_bytes(s, it, sqlite3_column_blob(s->st, 1),
	    (size_t)sqlite3_column_bytes(s->st, 1),
	    (uint64_t)sqlite3_column_int64(s->st, 0));
}

static int
s_item_from_json(struct src *s, json_t *j, struct item *it)
{
	const char *type = json_string_value(json_object_get(j, "type"));
	uint8_t buf[AUDIT_ENTRY_MAX];
	size_t n = 0;
	kp_err_t e;

	if (type != NULL && strcmp(type, "tree_head") == 0) {
		it->type = IT_HEAD;
		if (audit_head_from_json(j, &it->h, &e) != 0)
			return cli_error("%s: line %ld: %s", s->path, s->lineno,
			    e.msg);
		return 0;
	}
	if (type == NULL || strcmp(type, "entry") != 0)
		return cli_error("%s: line %ld: \"type\" must be \"entry\" or "
		    "\"tree_head\"", s->path, s->lineno);
	it->type = IT_ENTRY;
	if (audit_entry_from_json(j, &it->e, &e) != 0 ||
	    audit_entry_encode(&it->e, buf, sizeof(buf), &n, &e) != 0)
		return cli_error("%s: line %ld: %s", s->path, s->lineno, e.msg);
	if (merkle_leaf_hash(buf, n, it->leaf) != 0)
		return cli_error("SHA-256 failed");
	return 0;
}

/* The next item.  0 (it->type IT_END at the end) or an exit status after
 * printing the error. */
static int
s_src_next(struct src *s, struct item *it)
{
	json_t *j = NULL;
	int rc;

	memset(it, 0, sizeof(*it));
	if (s->is_dir)
		return s_src_next_dir(s, it);
	if ((rc = s_read_line(s, &j)) != 0)
		return rc;
	if (j == NULL) {
		it->type = IT_END;
		return 0;
	}
	snprintf(it->where, sizeof(it->where), " (line %ld)", s->lineno);
	rc = s_item_from_json(s, j, it);
	json_decref(j);
	return rc;
}

/* ====================================================================== */
/* The organisation's certificate                                         */
/* ====================================================================== */

static X509 *
s_x509_pem(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x;
}

/* X.509-verify x against the CA certificate in ca_file.  Validity periods
 * are not checked: heads signed while the certificate was valid stay
 * valid after it expires. */
static int
s_ca_check(X509 *x, const char *ca_file, const char *what)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	X509 *ca = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	int rc = EXIT_REFUSED, v;

	if (kp_read_file(ca_file, S_CERT_MAX, &buf, &len) != 0) {
		cli_error("--ca %s: %s", ca_file, strerror(errno));
		goto out;
	}
	if ((ca = s_x509_pem((char *)buf, len)) == NULL) {
		cli_error("--ca %s: not a PEM certificate", ca_file);
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_add_cert(store, ca) != 1 ||
	    X509_STORE_CTX_init(ctx, store, x, NULL) != 1) {
		cli_error("out of memory");
		goto out;
	}
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
	if (X509_verify_cert(ctx) != 1) {
		v = X509_STORE_CTX_get_error(ctx);
		cli_error("%s: the certificate is not issued by the CA in %s "
		    "(%s)", what, ca_file, X509_verify_cert_error_string(v));
		goto out;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(ca);
	free(buf);
	ERR_clear_error();
	return rc;
}

/* The subject serialNumber (the OIN) of x into out[21]. */
static bool
s_cert_oin(X509 *x, char out[21])
{
	X509_NAME *name = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(name, NID_serialNumber, -1);
	const ASN1_STRING *v;

	if (i < 0 || X509_NAME_get_index_by_NID(name, NID_serialNumber, i) >= 0)
		return false;
	v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	if (ASN1_STRING_length(v) != KP_OIN_LEN)
		return false;
	memcpy(out, ASN1_STRING_get0_data(v), KP_OIN_LEN);
	out[KP_OIN_LEN] = '\0';
	return kp_oin_valid(out);
}

/*
 * The Ed25519 public key of the certificate in pem, which must be oin's
 * (subject serialNumber) and, with ca_file, issued by that CA.
 * `what` names the source in messages.  OUT: pk.
 */
static int
s_cert_key(const char *pem, const char *oin, const char *ca_file,
    const char *what, uint8_t pk[32])
{
	X509 *x = s_x509_pem(pem, strlen(pem));
	EVP_PKEY *k;
	size_t len = 32;
	char cert_oin[21];
	int rc = EXIT_REFUSED;

	if (x == NULL) {
		cli_error("%s: the certificate is not a PEM X.509 certificate",
		    what);
		goto out;
	}
	if (!s_cert_oin(x, cert_oin) || strcmp(cert_oin, oin) != 0) {
		cli_error("%s: the certificate is not that of the log's "
		    "organisation %s (its subject serialNumber is %s)", what,
		    oin, s_cert_oin(x, cert_oin) ? cert_oin : "not an OIN");
		goto out;
	}
	k = X509_get0_pubkey(x);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(k, pk, &len) != 1 || len != 32) {
		cli_error("%s: the certificate's key is not Ed25519", what);
		goto out;
	}
	if (ca_file != NULL && (rc = s_ca_check(x, ca_file, what)) != 0)
		goto out;
	rc = 0;
out:
	X509_free(x);
	ERR_clear_error();
	return rc;
}

/* ====================================================================== */
/* The verifier: the tree recomputed, every head checked                  */
/* ====================================================================== */

struct ver {
	const char *path;
	const char *oin;
	uint8_t pk[32];
	const struct cert_hist *hist; /* borrowed from the source */
	size_t n_hist;
	merkle_t *tree;
	audit_head_t *heads;          /* every head seen, increasing size */
	size_t n_heads, cap, n_checked;
};

static void
s_ver_free(struct ver *v)
{
	merkle_destroy(&v->tree);
	free(v->heads);
	v->heads = NULL;
}

static int
s_ver_init(struct ver *v, const struct src *s, const char *ca_file)
{
	memset(v, 0, sizeof(*v));
	v->path = s->path;
	v->oin = s->oin;
	v->hist = s->hist;
	v->n_hist = s->n_hist;
	if (s_cert_key(s->cert, s->oin, ca_file, s->path, v->pk) != 0)
		return EXIT_REFUSED;
	if ((v->tree = merkle_new()) == NULL)
		return cli_error("out of memory");
	return 0;
}

/* A consistency proof from the recomputed tree, checked against the two
 * signed roots. */
static bool
s_consistent(merkle_t *t, const audit_head_t *old, const audit_head_t *new)
{
	uint8_t (*path)[MERKLE_HASH_LEN] = NULL;
	size_t n = 0;
	bool ok;

	if (merkle_consistency_proof(t, old->size, new->size, &path, &n) != 0)
		return false;
	ok = merkle_verify_consistency(old->size, new->size, old->root,
	    new->root, (const uint8_t (*)[MERKLE_HASH_LEN])path, n) == 0;
	free(path);
	return ok;
}

/* Signed by a certificate of the history valid at the head's time. */
static bool
s_ver_hist(const struct ver *v, const audit_head_t *h)
{
	int64_t t = (int64_t)(h->time_ms / 1000);
	size_t i;

	for (i = 0; i < v->n_hist; i++)
		if (v->hist[i].from <= t && t <= v->hist[i].until &&
		    audit_head_verify(h, v->oin, v->hist[i].pk) == 0)
			return true;
	return false;
}

static int
s_ver_check_head(struct ver *v, size_t i, const char *where)
{
	const audit_head_t *h = &v->heads[i];
	uint64_t from = i > 0 ? v->heads[i - 1].size : 0;
	uint8_t root[32];

	if (audit_head_verify(h, v->oin, v->pk) != 0 && !s_ver_hist(v, h))
		return cli_error("%s: head size %llu%s: bad signature: not "
		    "signed by the key of %s's certificate (forged, altered, "
		    "or signed by another organisation)", v->path,
		    (ull)h->size, where, v->oin);
	if (merkle_root(v->tree, h->size, root) != 0)
		return cli_error("out of memory");
	if (sodium_memcmp(root, h->root, 32) != 0)
		return cli_error("%s: head size %llu%s: the signed root does not "
		    "match entries 0..%llu: an entry in seq %llu..%llu was "
		    "modified, inserted, deleted or reordered after the head "
		    "was signed", v->path, (ull)h->size, where,
		    (ull)h->size - 1, (ull)from, (ull)h->size - 1);
	if (i > 0 && !s_consistent(v->tree, &v->heads[i - 1], h))
		return cli_error("%s: head size %llu%s: not consistent with "
		    "head size %llu", v->path, (ull)h->size, where, (ull)from);
	v->n_checked = i + 1;
	return 0;
}

static int
s_ver_entry(struct ver *v, const struct item *it)
{
	uint64_t want = merkle_size(v->tree);
	const audit_entry_t *e = &it->e;
	int rc;

	if (e->seq > want)
		return cli_error("%s: entry seq %llu%s: expected seq %llu: "
		    "entry %llu is missing (deleted) or the entries are out "
		    "of order", v->path, (ull)e->seq, it->where, (ull)want,
		    (ull)want);
	if (e->seq < want)
		return cli_error("%s: entry seq %llu%s: expected seq %llu: seq "
		    "%llu appears twice (an entry was inserted) or the "
		    "entries are out of order", v->path, (ull)e->seq,
		    it->where, (ull)want, (ull)e->seq);
	if (e->own_oin[0] != '\0' && strcmp(e->own_oin, v->oin) != 0)
		return cli_error("%s: entry seq %llu%s: own_oin %s is not the "
		    "log's organisation %s", v->path, (ull)e->seq, it->where,
		    e->own_oin, v->oin);
	if (it->has_stored_leaf &&
	    memcmp(it->stored_leaf, it->leaf, 32) != 0)
		return cli_error("%s: entry seq %llu: the stored leaf hash "
		    "does not match the entry's bytes", v->path, (ull)e->seq);
	if (merkle_append(v->tree, it->leaf) != 0)
		return cli_error("out of memory");
	while (v->n_checked < v->n_heads &&
	    v->heads[v->n_checked].size == merkle_size(v->tree))
		if ((rc = s_ver_check_head(v, v->n_checked, "")) != 0)
			return rc;
	return 0;
}

static int
s_ver_head(struct ver *v, const struct item *it)
{
	audit_head_t *grown;

	if (v->n_heads > 0 && it->h.size <= v->heads[v->n_heads - 1].size)
		return cli_error("%s: head size %llu%s: comes after head size "
		    "%llu: heads must be in increasing size", v->path,
		    (ull)it->h.size, it->where,
		    (ull)v->heads[v->n_heads - 1].size);
	if (v->n_heads == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 64;
		if ((grown = realloc(v->heads, v->cap * sizeof(*grown))) ==
		    NULL)
			return cli_error("out of memory");
		v->heads = grown;
	}
	v->heads[v->n_heads++] = it->h;
	if (it->h.size <= merkle_size(v->tree))
		return s_ver_check_head(v, v->n_heads - 1, it->where);
	return 0;
}

static int
s_ver_finish(struct ver *v)
{
	uint64_t n = merkle_size(v->tree);
	const audit_head_t *h;

	if (v->n_checked < v->n_heads) {
		h = &v->heads[v->n_checked];
		return cli_error("%s: head size %llu: covers %llu entries but "
		    "the log has only %llu: entries seq %llu..%llu were "
		    "removed (tail truncated)", v->path, (ull)h->size,
		    (ull)h->size, (ull)n, (ull)n, (ull)h->size - 1);
	}
	if (v->n_heads == 0 && n > 0)
		return cli_error("%s: no signed tree head: none of the %llu "
		    "entries is covered by a signature", v->path, (ull)n);
	return 0;
}

typedef int (*s_item_cb)(void *arg, const struct item *it);

/*
 * Stream s to the end: through the verifier v (if not NULL) and cb (if
 * not NULL).  0, or an exit status after printing the first failure.
 */
static int
s_run(struct src *s, struct ver *v, s_item_cb cb, void *arg)
{
	struct item *it = malloc(sizeof(*it));
	int rc = 0;

	if (it == NULL)
		return cli_error("out of memory");
	for (;;) {
		if ((rc = s_src_next(s, it)) != 0 || it->type == IT_END)
			break;
		if (v != NULL && (rc = it->type == IT_ENTRY ?
		    s_ver_entry(v, it) : s_ver_head(v, it)) != 0)
			break;
		if (cb != NULL && (rc = cb(arg, it)) != 0)
			break;
	}
	if (rc == 0 && v != NULL)
		rc = s_ver_finish(v);
	free(it);
	return rc;
}

/* ====================================================================== */
/* Option parsing shared by the subcommands                               */
/* ====================================================================== */

struct opts {
	const char *ca, *heads, *from, *to;
	bool json;
	int n_args;
	char **args;
};

enum { O_CA = 1, O_HEADS = 2, O_RANGE = 4, O_JSON = 8 };

/* Parse argv for subcommand cmd accepting the options in `allowed` and
 * exactly n_args positional arguments.  0, or EXIT_USAGE (after the
 * message), or -1 after printing the help (exit 0). */
static int
s_opts(int argc, char **argv, const char *cmd, const char *help,
    int allowed, int n_args, struct opts *o)
{
	static const struct option lo[] = {
		{ "ca", 1, NULL, 'c' }, { "heads", 1, NULL, 'H' },
		{ "from", 1, NULL, 'f' }, { "to", 1, NULL, 't' },
		{ "json", 0, NULL, 'j' }, { "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	char full[32];
	int c, flag;

	snprintf(full, sizeof(full), "audit %s", cmd);
	memset(o, 0, sizeof(*o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		flag = c == 'c' ? O_CA : c == 'H' ? O_HEADS : c == 'j' ?
		    O_JSON : c == 'f' || c == 't' ? O_RANGE : 0;
		if (c == 'h') {
			fputs(help, stdout);
			return -1;
		}
		if (flag == 0 || !(allowed & flag))
			return cli_usage_error(full, "unknown option or missing "
			    "value: '%s'", argv[optind - 1]);
		if (c == 'c') o->ca = optarg;
		if (c == 'H') o->heads = optarg;
		if (c == 'f') o->from = optarg;
		if (c == 't') o->to = optarg;
		if (c == 'j') o->json = true;
	}
	if (argc - optind != n_args)
		return cli_usage_error(full, "expected %d argument%s", n_args,
		    n_args == 1 ? "" : "s");
	if ((allowed & O_HEADS) && o->heads == NULL)
		return cli_usage_error(full, "--heads is required");
	o->args = argv + optind;
	o->n_args = n_args;
	return 0;
}

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

	if ((rc = s_opts(argc, argv, "export", s_export_help, O_RANGE, 1,
	    &o)) != 0 || (rc = s_parse_range(&o, &c)) != 0)
		return rc < 0 ? 0 : rc;
	if (!s_is_dir(o.args[0]))
		return cli_error("%s is not a state directory", o.args[0]);
	if ((rc = s_src_open(o.args[0], &s)) != 0)
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
	rc = s_run(s, NULL, s_export_item, &c);
	s_src_close(&s);
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_error("cannot write the export: %s",
		    strerror(errno));
	return rc;
}

/* ====================================================================== */
/* audit verify                                                           */
/* ====================================================================== */

static const char s_verify_help[] =
"usage: ketenpost audit verify STATE_DIR|EXPORT_FILE [--ca CA_FILE]\n"
"Recompute the Merkle tree from the entries, check that seqs run from 0\n"
"without gaps, that every signed tree head is signed by the log's\n"
"organisation (its certificate; with --ca also issued by that chain CA)\n"
"and matches the recomputed root of its size, and that successive heads\n"
"are consistent.  Exit 0 if all holds; otherwise one line naming the\n"
"first bad entry (seq) or head (size), exit 1.\n";

static int
s_refuse_filtered(const struct src *s, const char *cmd)
{
	if (!s->filtered)
		return 0;
	return cli_error("%s is a filtered export (--from/--to): %s needs the "
	    "full log; export again without --from/--to", s->path, cmd);
}

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

	if ((rc = s_opts(argc, argv, "verify", s_verify_help, O_CA, 1, &o)) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = s_src_open(o.args[0], &s)) != 0)
		return rc;
	if ((rc = s_refuse_filtered(s, "verify")) == 0 &&
	    (rc = s_ver_init(&v, s, o.ca)) == 0 &&
	    (rc = s_run(s, &v, NULL, NULL)) == 0)
		s_verified_line(s, &v);
	s_ver_free(&v);
	s_src_close(&s);
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

	if ((rc = s_opts(argc, argv, "proof", s_proof_help, O_CA, 2, &o)) != 0)
		return rc < 0 ? 0 : rc;
	if (kp_uuid_parse(o.args[1], c.id) != 0)
		return cli_usage_error("audit proof", "'%s' is not an event id",
		    o.args[1]);
	if ((rc = s_src_open(o.args[0], &s)) != 0)
		return rc;
	if ((rc = s_refuse_filtered(s, "proof")) == 0 &&
	    (rc = s_ver_init(&v, s, o.ca)) == 0 &&
	    (rc = s_run(s, &v, s_proof_item, &c)) == 0) {
		char id[KP_UUID_TEXT_LEN + 1];

		kp_uuid_format(c.id, id);
		rc = s_proof_emit(s, &v, &c, id);
	}
	free(c.hits);
	s_ver_free(&v);
	s_src_close(&s);
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
	if ((rc = s_cert_key(cert, oin, ca, file, pk)) != 0)
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

	if ((rc = s_opts(argc, argv, "check-proof", s_check_proof_help, O_CA,
	    1, &o)) != 0)
		return rc < 0 ? 0 : rc;
	if ((j = cli_read_json(o.args[0])) == NULL)
		return EXIT_REFUSED;
	rc = s_check_proof_doc(o.args[0], j, o.ca);
	json_decref(j);
	return rc;
}

/* ====================================================================== */
/* audit reconcile                                                        */
/* ====================================================================== */

static const char s_reconcile_help[] =
"usage: ketenpost audit reconcile A B\n"
"A and B are exports or state directories of two organisations' logs.\n"
"Every event A sent to B must appear in B's log as received (receipt_sent\n"
"or refusal_in) with the same envelope digest, and vice versa; A's\n"
"receipt_received entry must carry the digest and reason of B's receipt.\n"
"Lists every discrepancy, one per line, and exits 1 if there is any.\n"
"Reconcile does not check the logs' integrity: run `audit verify` first.\n";

struct rec {
	uint8_t id[16];
	uint64_t seq, time_ms;
	bool has_env, has_rcpt;
	uint8_t env[32], rcpt[32];
	int reason;
};

struct recs {
	struct rec *a;
	size_t n, cap;
};

struct side {
	const char *label;            /* "A" or "B" */
	struct src *src;
	const char *other;            /* the other side's OIN */
	struct recs sends, recvs, rcpts, deads;
};

static int
s_recs_add(struct recs *r, const audit_entry_t *e)
{
	struct rec *grown, *x;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		if ((grown = realloc(r->a, r->cap * sizeof(*grown))) == NULL)
			return cli_error("out of memory");
		r->a = grown;
	}
	x = &r->a[r->n++];
	memcpy(x->id, e->event_id, 16);
	x->seq = e->seq;
	x->time_ms = e->time_ms;
	x->has_env = e->has_envelope_digest;
	memcpy(x->env, e->envelope_digest, 32);
	x->has_rcpt = e->has_receipt_digest;
	memcpy(x->rcpt, e->receipt_digest, 32);
	x->reason = e->reason;
	return 0;
}

static int
s_side_item(void *arg, const struct item *it)
{
	struct side *s = arg;
	const audit_entry_t *e = &it->e;

	if (it->type != IT_ENTRY || !e->has_event_id ||
	    strcmp(e->partner_oin, s->other) != 0)
		return 0;
	switch (e->kind) {
	case AUDIT_SEND:
		return s_recs_add(&s->sends, e);
	case AUDIT_RECEIPT_SENT:
	case AUDIT_REFUSAL_IN:
		return s_recs_add(&s->recvs, e);
	case AUDIT_RECEIPT_RECEIVED:
		return s_recs_add(&s->rcpts, e);
	case AUDIT_DEAD_LETTER:
		return s_recs_add(&s->deads, e);
	default:
		return 0;
	}
}

static int
s_rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int c = memcmp(x->id, y->id, 16);

	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort by event id, keeping only the first (lowest seq) of each id. */
static void
s_recs_sort(struct recs *r)
{
	size_t i, o = 0;

	if (r->n == 0)
		return;
	qsort(r->a, r->n, sizeof(*r->a), s_rec_cmp);
	for (i = 1; i < r->n; i++)
		if (memcmp(r->a[i].id, r->a[o].id, 16) != 0)
			r->a[++o] = r->a[i];
	r->n = o + 1;
}

static const struct rec *
s_recs_find(const struct recs *r, const uint8_t id[16])
{
	size_t lo = 0, hi = r->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(r->a[mid].id, id, 16);
		if (c == 0)
			return &r->a[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const char *
s_reason_name(int reason, char buf[PBJSON_ENUM_NAME_MAX])
{
	if (pbjson_enum_name(&kp__reason__descriptor, reason, buf,
	    PBJSON_ENUM_NAME_MAX) == NULL)
		snprintf(buf, PBJSON_ENUM_NAME_MAX, "%d", reason);
	return buf;
}

static const char *
s_digest(bool has, const uint8_t d[32], char hex[65])
{
	if (!has)
		return "(none)";
	kp_hex(d, 32, hex);
	return hex;
}

/* Receipt of event s (sent by x, received by y as r). */
static size_t
s_match_receipt(const struct side *x, const struct side *y,
    const struct rec *r, const char *id)
{
	const struct rec *c = s_recs_find(&x->rcpts, r->id);
	char a[65], b[65], ra[PBJSON_ENUM_NAME_MAX], rb[PBJSON_ENUM_NAME_MAX];
	char t[32];
	size_t n = 0;

	if (c == NULL) {
		kp_time_format(r->time_ms, t);
		printf("receipt missing in %s: event %s: %s sent a receipt "
		    "(%s) at %s, %s logged none%s\n", x->label, id, y->label,
		    s_reason_name(r->reason, ra), t, x->label,
		    s_recs_find(&x->deads, r->id) ? " (it dead-lettered the "
		    "event)" : "");
		return 1;
	}
	if (c->has_rcpt != r->has_rcpt || (c->has_rcpt &&
	    memcmp(c->rcpt, r->rcpt, 32) != 0)) {
		printf("receipt digest differs for event %s: %s sent %s, %s "
		    "received %s\n", id, y->label,
		    s_digest(r->has_rcpt, r->rcpt, a), x->label,
		    s_digest(c->has_rcpt, c->rcpt, b));
		n++;
	}
	if (c->reason != r->reason) {
		printf("receipt reason differs for event %s: %s sent %s, %s "
		    "received %s\n", id, y->label, s_reason_name(r->reason, ra),
		    x->label, s_reason_name(c->reason, rb));
		n++;
	}
	return n;
}

/* Events x sent to y.  OUT: *events counted.  Returns discrepancies. */
static size_t
s_reconcile_dir(const struct side *x, const struct side *y, size_t *events)
{
	const struct rec *s, *r;
	char id[KP_UUID_TEXT_LEN + 1], t[32], a[65], b[65];
	size_t i, n = 0;

	for (i = 0; i < x->sends.n; i++) {
		s = &x->sends.a[i];
		kp_uuid_format(s->id, id);
		kp_time_format(s->time_ms, t);
		(*events)++;
		if ((r = s_recs_find(&y->recvs, s->id)) == NULL) {
			if (s_recs_find(&x->deads, s->id) != NULL)
				continue;   /* never arrived, and x knows it */
			printf("missing in %s: event %s sent by %s at %s%s\n",
			    y->label, id, x->label, t,
			    s_recs_find(&x->rcpts, s->id) ? " (the sender "
			    "holds a receipt for it)" : " (no receipt either: "
			    "in flight or lost)");
			n++;
			continue;
		}
		if (s->has_env != r->has_env || (s->has_env &&
		    memcmp(s->env, r->env, 32) != 0)) {
			printf("envelope digest differs for event %s: %s sent "
			    "%s, %s received %s\n", id, x->label,
			    s_digest(s->has_env, s->env, a), y->label,
			    s_digest(r->has_env, r->env, b));
			n++;
		}
		n += s_match_receipt(x, y, r, id);
	}
	for (i = 0; i < y->recvs.n; i++) {
		r = &y->recvs.a[i];
		if (s_recs_find(&x->sends, r->id) != NULL)
			continue;
		kp_uuid_format(r->id, id);
		kp_time_format(r->time_ms, t);
		printf("missing in %s: event %s received by %s at %s\n",
		    x->label, id, y->label, t);
		(*events)++;
		n++;
	}
	for (i = 0; i < x->rcpts.n; i++) {
		r = &x->rcpts.a[i];
		if (s_recs_find(&x->sends, r->id) != NULL ||
		    s_recs_find(&y->recvs, r->id) != NULL)
			continue;
		kp_uuid_format(r->id, id);
		printf("receipt without event: %s logged a receipt from %s "
		    "for event %s, which neither log shows sent\n", x->label,
		    y->label, id);
		n++;
	}
	return n;
}

static void
s_side_free(struct side *s)
{
	free(s->sends.a);
	free(s->recvs.a);
	free(s->rcpts.a);
	free(s->deads.a);
	s_src_close(&s->src);
}

static int
s_side_load(struct side *s)
{
	int rc = s_run(s->src, NULL, s_side_item, s);

	s_recs_sort(&s->sends);
	s_recs_sort(&s->recvs);
	s_recs_sort(&s->rcpts);
	s_recs_sort(&s->deads);
	return rc;
}

static int
s_reconcile(int argc, char **argv)
{
	struct side a = { .label = "A" }, b = { .label = "B" };
	size_t events = 0, bad;
	struct opts o;
	int rc;

	if ((rc = s_opts(argc, argv, "reconcile", s_reconcile_help, 0, 2,
	    &o)) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = s_src_open(o.args[0], &a.src)) != 0 ||
	    (rc = s_src_open(o.args[1], &b.src)) != 0)
		goto out;
	if (strcmp(a.src->oin, b.src->oin) == 0) {
		rc = cli_usage_error("audit reconcile", "A and B are both logs "
		    "of %s; give two organisations' logs", a.src->oin);
		goto out;
	}
	a.other = b.src->oin;
	b.other = a.src->oin;
	if ((rc = s_side_load(&a)) != 0 || (rc = s_side_load(&b)) != 0)
		goto out;
	bad = s_reconcile_dir(&a, &b, &events);
	bad += s_reconcile_dir(&b, &a, &events);
	if (bad == 0) {
		printf("reconciled: %zu events, 0 discrepancies\n", events);
	} else {
		printf("%zu discrepanc%s in %zu events (A = %s, %s; B = %s, "
		    "%s)\n", bad, bad == 1 ? "y" : "ies", events, o.args[0],
		    a.src->oin, o.args[1], b.src->oin);
		rc = EXIT_REFUSED;
	}
out:
	s_side_free(&a);
	s_side_free(&b);
	return rc;
}

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

	if ((rc = s_db_open(dir, &db)) != 0)
		return rc;
	if ((rc = s_prepare(db, dir, "SELECT size, time_ms, root, signature "
	    "FROM witness WHERE partner_oin = ?1 ORDER BY size, time_ms",
	    &st)) == 0) {
		sqlite3_bind_text(st, 1, oin, -1, SQLITE_STATIC);
		rc = s_db_heads(st, dir, &out->a, &out->n);
	}
	sqlite3_finalize(st);
	s_db_close(&db);
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
	while ((rc = s_read_line(&s, &j)) == 0 && j != NULL) {
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
	    s_consistent(v->tree, w, near) : s_consistent(v->tree, near, w)))
		return cli_error("witnessed head size %llu (%s) held by %s: not "
		    "consistent with the log's head size %llu", (ull)w->size,
		    t, heads_from, (ull)near->size);
	return 0;
}

static int
s_witness(int argc, char **argv)
{
	struct heads w = { 0 };
	struct src *s = NULL;
	struct ver v = { 0 };
	struct opts o;
	size_t i;
	int rc;

	if ((rc = s_opts(argc, argv, "witness", s_witness_help,
	    O_HEADS | O_CA, 1, &o)) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = s_src_open(o.args[0], &s)) != 0)
		return rc;
	if ((rc = s_refuse_filtered(s, "witness")) != 0 ||
	    (rc = s_ver_init(&v, s, o.ca)) != 0 ||
	    (rc = s_run(s, &v, NULL, NULL)) != 0)
		goto out;
	rc = s_is_dir(o.heads) ? s_witness_db(o.heads, s->oin, &w) :
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
	s_ver_free(&v);
	s_src_close(&s);
	return rc;
}

/* ====================================================================== */
/* audit report                                                           */
/* ====================================================================== */

static const char s_report_help[] =
"usage: ketenpost audit report EXPORT_FILE|STATE_DIR [--json]\n"
"Count what was shared, for the annual accountability report: per month\n"
"(UTC), partner, event type and purpose the events sent (send), received\n"
"(receipt_sent), refused on arrival (refusal_in) and refused before\n"
"sending (refusal_out); and every entry kind in total.  Export with\n"
"--from/--to to report one period.  The report does not verify the log:\n"
"run `audit verify` on the full log first.\n";

enum { R_SENT, R_RECEIVED, R_REFUSED_IN, R_REFUSED_OUT, R_N };
static const char *const s_rcols[R_N] = { "sent", "received",
	"refused_in", "refused_out" };

struct rrow {
	char month[8];
	char partner[21];
	int event_type;
	char purpose[65];
	uint64_t n[R_N];
};

struct report {
	struct rrow *rows;
	size_t n, cap;
	uint64_t kinds[AUDIT_KIND_MAX];
	uint64_t entries, first_ms, last_ms;
};

static int
s_report_col(int kind)
{
	switch (kind) {
	case AUDIT_SEND: return R_SENT;
	case AUDIT_RECEIPT_SENT: return R_RECEIVED;
	case AUDIT_REFUSAL_IN: return R_REFUSED_IN;
	case AUDIT_REFUSAL_OUT: return R_REFUSED_OUT;
	default: return -1;
	}
}

static void
s_month(uint64_t ms, char out[8])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	char buf[32];

	gmtime_r(&t, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d", tm.tm_year + 1900,
	    tm.tm_mon + 1);
	snprintf(out, 8, "%.7s", buf);
}

/* The row of e's key.  Entries come in time order, so the row is almost
 * always among the last few: search backwards. */
static struct rrow *
s_report_row(struct report *r, const audit_entry_t *e)
{
	struct rrow *x, *grown;
	char month[8];
	size_t i;

	s_month(e->time_ms, month);
	for (i = r->n; i-- > 0;) {
		x = &r->rows[i];
		if (x->event_type == e->event_type &&
		    strcmp(x->month, month) == 0 &&
		    strcmp(x->partner, e->partner_oin) == 0 &&
		    strcmp(x->purpose, e->purpose) == 0)
			return x;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		if ((grown = realloc(r->rows, r->cap * sizeof(*grown))) == NULL)
			return NULL;
		r->rows = grown;
	}
	x = &r->rows[r->n++];
	memset(x, 0, sizeof(*x));
	memcpy(x->month, month, 8);
	memcpy(x->partner, e->partner_oin, 21);
	x->event_type = e->event_type;
	memcpy(x->purpose, e->purpose, 65);
	return x;
}

static int
s_report_item(void *arg, const struct item *it)
{
	struct report *r = arg;
	struct rrow *row;
	int col;

	if (it->type != IT_ENTRY)
		return 0;
	if (r->entries == 0 || it->e.time_ms < r->first_ms)
		r->first_ms = it->e.time_ms;
	if (it->e.time_ms > r->last_ms)
		r->last_ms = it->e.time_ms;
	r->entries++;
	r->kinds[it->e.kind]++;
	if ((col = s_report_col(it->e.kind)) < 0)
		return 0;
	if ((row = s_report_row(r, &it->e)) == NULL)
		return cli_error("out of memory");
	row->n[col]++;
	return 0;
}

static int
s_rrow_cmp(const void *a, const void *b)
{
	const struct rrow *x = a, *y = b;
	int c;

	if ((c = strcmp(x->month, y->month)) != 0 ||
	    (c = strcmp(x->partner, y->partner)) != 0)
		return c;
	if (x->event_type != y->event_type)
		return x->event_type < y->event_type ? -1 : 1;
	return strcmp(x->purpose, y->purpose);
}

static json_t *
s_report_json(const struct src *s, const struct report *r)
{
	json_t *o = json_object(), *rows = json_array(), *kinds = json_object();
	json_t *row;
	char t[32];
	size_t i;
	int k;

	json_object_set_new(o, "type", json_string("report"));
	json_object_set_new(o, "oin", json_string(s->oin));
	json_object_set_new(o, "filtered", json_boolean(s->filtered));
	json_object_set_new(o, "entries", json_integer((json_int_t)r->entries));
	if (r->entries > 0) {
		kp_time_format(r->first_ms, t);
		json_object_set_new(o, "first", json_string(t));
		kp_time_format(r->last_ms, t);
		json_object_set_new(o, "last", json_string(t));
	}
	for (i = 0; i < r->n; i++) {
		row = json_pack("{s:s, s:s, s:s, s:s}", "month",
		    r->rows[i].month, "partner_oin", r->rows[i].partner,
		    "event_type", r->rows[i].event_type ?
		    events_type_name(r->rows[i].event_type) : "",
		    "purpose", r->rows[i].purpose);
		for (k = 0; k < R_N; k++)
			json_object_set_new(row, s_rcols[k],
			    json_integer((json_int_t)r->rows[i].n[k]));
		json_array_append_new(rows, row);
	}
	json_object_set_new(o, "rows", rows);
	for (k = 1; k < AUDIT_KIND_MAX; k++)
		json_object_set_new(kinds, audit_kind_name(k),
		    json_integer((json_int_t)r->kinds[k]));
	json_object_set_new(o, "totals", kinds);
	return o;
}

static void
s_report_table(const struct src *s, const struct report *r)
{
	uint64_t tot[R_N] = { 0 };
	char a[32], b[32];
	size_t i;
	int k;

	kp_time_format(r->first_ms, a);
	kp_time_format(r->last_ms, b);
	printf("audit report: log of %s%s, %llu entries", s->oin,
	    s->filtered ? " (filtered export)" : "", (ull)r->entries);
	if (r->entries > 0)
		printf(" from %s to %s", a, b);
	printf("\n\n%-7s  %-20s  %-12s  %-16s %6s %8s %10s %11s\n", "month",
	    "partner", "event type", "purpose", "sent", "received",
	    "refused in", "refused out");
	for (i = 0; i < r->n; i++) {
		const struct rrow *x = &r->rows[i];

		printf("%-7s  %-20s  %-12s  %-16s %6llu %8llu %10llu %11llu\n",
		    x->month, x->partner[0] ? x->partner : "-",
		    x->event_type ? events_type_name(x->event_type) : "-",
		    x->purpose[0] ? x->purpose : "-", (ull)x->n[0],
		    (ull)x->n[1], (ull)x->n[2], (ull)x->n[3]);
		for (k = 0; k < R_N; k++)
			tot[k] += x->n[k];
	}
	printf("%-7s  %-20s  %-12s  %-16s %6llu %8llu %10llu %11llu\n\n",
	    "total", "", "", "", (ull)tot[0], (ull)tot[1], (ull)tot[2],
	    (ull)tot[3]);
	printf("entries by kind:");
	for (k = 1; k < AUDIT_KIND_MAX; k++)
		printf("%s %s %llu", k > 1 ? "," : "", audit_kind_name(k),
		    (ull)r->kinds[k]);
	printf("\n");
}

static int
s_report(int argc, char **argv)
{
	struct report r = { 0 };
	struct src *s = NULL;
	struct opts o;
	json_t *j;
	int rc;

	if ((rc = s_opts(argc, argv, "report", s_report_help, O_JSON, 1,
	    &o)) != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = s_src_open(o.args[0], &s)) != 0)
		return rc;
	if ((rc = s_run(s, NULL, s_report_item, &r)) == 0) {
		if (r.n > 0)
			qsort(r.rows, r.n, sizeof(*r.rows), s_rrow_cmp);
		if (o.json) {
			j = s_report_json(s, &r);
			cli_print_json(j);
			json_decref(j);
		} else {
			s_report_table(s, &r);
		}
	}
	free(r.rows);
	s_src_close(&s);
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
	{ "reconcile", s_reconcile, "match two organisations' logs" },
	{ "witness", s_witness, "check the heads a partner holds of the log" },
	{ "report", s_report, "counts for the accountability report" },
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
