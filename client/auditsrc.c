/*
 * auditsrc.c: what the audit tools share: sources, the certificate, the
 * verifier, option parsing.  The tools are offline: they read a daemon's
 * state directory (read-only; the daemon may be running) or an
 * export file, and never need a daemon, a key or the network.
 * docs/AUDIT.md is the specification of everything read and written here.
 *
 * Every subcommand reads a log as one stream of items (auditsrc_*): the log
 * line (OIN and certificate), then entries in seq order with their leaf
 * hashes, and the signed tree heads in size order, each right after the
 * entry that completes it.  A state directory is read inside one SQLite
 * read transaction, so entries and heads are one consistent snapshot.
 * An entry from an export is re-encoded canonically from its JSON (lib/
 * auditlog.c refuses any JSON that does not map to exactly one encoding),
 * so the leaf hash, and with it every signed root, covers every member an
 * auditor reads.
 *
 * The checks (auditver_* and s_ver_*), in stream order, stopping at the first failure:
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

#include "audit.h"
#include "auditlog.h"
#include "cli.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "merkle.h"
#include "pbjson.h"
#include "util.h"

/* ====================================================================== */
/* Sources: a state directory or an export file, read as one stream.      */
/* ====================================================================== */




bool
auditsrc_is_dir(const char *path)
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
int
auditsrc_db_open(const char *dir, sqlite3 **out)
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

void
auditsrc_db_close(sqlite3 **db)
{
	if (*db == NULL)
		return;
	sqlite3_exec(*db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(*db);
	*db = NULL;
}

int
auditsrc_prepare(sqlite3 *db, const char *dir, const char *sql, sqlite3_stmt **st)
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
int
auditsrc_db_heads(sqlite3_stmt *st, const char *dir, audit_head_t **out, size_t *n)
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

	if (auditsrc_prepare(db, dir, "SELECT value FROM audit_meta WHERE key = ?1",
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

static X509 *s_x509_pem(const char *pem, size_t len);
static bool s_asn1_ms(const ASN1_TIME *t, uint64_t *ms);

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

	if (auditsrc_prepare(s->db, s->path, "SELECT value FROM audit_meta "
	    "WHERE key LIKE 'certificate/%' ORDER BY key", &st) != 0)
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
		memset(h, 0, sizeof(*h));
		if ((rc = auditcert_key(pem, s->oin, NULL, s->path, h->pk)) != 0)
			break;
		if ((x = s_x509_pem(pem, strlen(pem))) == NULL ||
		    !s_asn1_ms(X509_get0_notBefore(x), &h->from_ms) ||
		    !s_asn1_ms(X509_get0_notAfter(x), &h->until_ms) ||
		    (h->pem = strdup(pem)) == NULL) {
			X509_free(x);
			rc = cli_error("%s: a certificate of the history cannot be "
			    "read", s->path);
			break;
		}
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

	if ((rc = auditsrc_db_open(s->path, &s->db)) != 0)
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
	if (auditsrc_prepare(s->db, s->path, "SELECT size, time_ms, root, signature "
	    "FROM tree_heads ORDER BY size", &st) != 0)
		return EXIT_REFUSED;
	rc = auditsrc_db_heads(st, s->path, &s->heads, &s->n_heads);
	sqlite3_finalize(st);
	if (rc != 0)
		return rc;
	return auditsrc_prepare(s->db, s->path, "SELECT seq, entry, leaf FROM audit "
	    "ORDER BY seq", &s->st);
}

/* A line of the export: NUL-terminated, without its newline.  OUT: *j,
 * NULL at the end of the file.  Blank lines are skipped. */
int
auditsrc_read_line(struct src *s, json_t **j)
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
	if ((rc = auditsrc_read_line(s, &j)) != 0)
		return rc;
	if (j == NULL)
		return cli_error("%s: empty file, not an export", s->path);
	rc = s_parse_log_line(s, j);
	json_decref(j);
	return rc;
}

void
auditsrc_close(struct src **sp)
{
	struct src *s = *sp;

	if (s == NULL)
		return;
	if (s->f != NULL && s->f != stdin)
		fclose(s->f);
	free(s->line);
	sqlite3_finalize(s->st);
	auditsrc_db_close(&s->db);
	free(s->heads);
	free(s->cert);
	while (s->n_hist > 0)
		free(s->hist[--s->n_hist].pem);
	free(s->hist);
	free(s);
	*sp = NULL;
}

/* OUT: *out, a source positioned after its log line. */
int
auditsrc_open(const char *path, struct src **out)
{
	struct src *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (s == NULL)
		return cli_error("out of memory");
	s->path = path;
	s->is_dir = auditsrc_is_dir(path);
	rc = s->is_dir ? s_src_open_dir(s) : s_src_open_file(s);
	if (rc != 0) {
		auditsrc_close(&s);
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
	if ((rc = auditsrc_read_line(s, &j)) != 0)
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
int
auditcert_key(const char *pem, const char *oin, const char *ca_file,
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


void
auditver_free(struct ver *v)
{
	merkle_destroy(&v->tree);
	free(v->heads);
	v->heads = NULL;
}

/* An ASN1_TIME as ms since the epoch; false if it cannot be read. */
static bool
s_asn1_ms(const ASN1_TIME *t, uint64_t *ms)
{
	struct tm tm;
	time_t s;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 || (s = timegm(&tm)) < 0)
		return false;
	*ms = (uint64_t)s * 1000u;
	return true;
}

/* The CRL in crl_file, signed by the CA in ca_file.  OUT: *revoked and
 * *since for certificate x.  0, or an exit status after the message. */
static int
s_crl_check(X509 *x, const char *ca_file, const char *crl_file,
    bool *revoked, uint64_t *since)
{
	X509_CRL *crl = NULL;
	X509_REVOKED *r = NULL;
	X509 *ca = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *b = NULL;
	int rc = EXIT_REFUSED;

	*revoked = false;
	if (kp_read_file(ca_file, S_CERT_MAX, &buf, &len) != 0 ||
	    (ca = s_x509_pem((char *)buf, len)) == NULL) {
		cli_error("--ca %s: not a readable PEM certificate", ca_file);
		goto out;
	}
	free(buf);
	buf = NULL;
	if (kp_read_file(crl_file, 1 << 24, &buf, &len) != 0 ||
	    (b = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) == NULL) {
		cli_error("--crl %s: not a readable PEM CRL", crl_file);
		goto out;
	}
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1) {
		cli_error("--crl %s: not signed by the CA in %s", crl_file,
		    ca_file);
		goto out;
	}
	if (X509_CRL_get0_by_cert(crl, &r, x) == 1) {
		*revoked = true;
		if (!s_asn1_ms(X509_REVOKED_get0_revocationDate(r), since)) {
			cli_error("--crl %s: unreadable revocation date", crl_file);
			goto out;
		}
	}
	rc = 0;
out:
	X509_CRL_free(crl);
	BIO_free(b);
	X509_free(ca);
	free(buf);
	ERR_clear_error();
	return rc;
}

/* With --ca: the validity window (and with --crl the revocation) of the
 * log's certificate, which every head's time must respect. */
static int
s_ver_cert_window(struct ver *v, const char *pem, const struct opts *o)
{
	X509 *x = s_x509_pem(pem, strlen(pem));
	int rc = EXIT_REFUSED;

	if (x == NULL)
		return cli_error("%s: the certificate is not PEM", v->path);
	if (!s_asn1_ms(X509_get0_notBefore(x), &v->not_before_ms) ||
	    !s_asn1_ms(X509_get0_notAfter(x), &v->not_after_ms)) {
		cli_error("%s: the certificate's validity cannot be read",
		    v->path);
		goto out;
	}
	v->check_validity = true;
	if (o->crl != NULL && s_crl_check(x, o->ca, o->crl, &v->revoked,
	    &v->revoked_ms) != 0)
		goto out;
	rc = 0;
out:
	X509_free(x);
	ERR_clear_error();
	return rc;
}

int
auditver_init(struct ver *v, const struct src *s, const struct opts *o)
{
	uint8_t pk[32];
	size_t i;

	memset(v, 0, sizeof(*v));
	v->path = s->path;
	v->oin = s->oin;
	v->strict = o->strict;
	v->hist = s->hist;
	v->n_hist = s->n_hist;
	if (o->crl != NULL && o->ca == NULL)
		return cli_error("--crl needs --ca: the CRL is checked against "
		    "the chain CA");
	if (auditcert_key(s->cert, s->oin, o->ca, s->path, v->pk) != 0)
		return EXIT_REFUSED;
	if (o->ca != NULL && s_ver_cert_window(v, s->cert, o) != 0)
		return EXIT_REFUSED;
	for (i = 0; o->ca != NULL && i < s->n_hist; i++)
		if (auditcert_key(s->hist[i].pem, s->oin, o->ca, s->path,
		    pk) != 0)
			return EXIT_REFUSED;
	if ((v->tree = merkle_new()) == NULL)
		return cli_error("out of memory");
	return 0;
}

/* A consistency proof from the recomputed tree, checked against the two
 * signed roots. */
bool
auditver_consistent(merkle_t *t, const audit_head_t *old, const audit_head_t *new)
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
	size_t i;

	for (i = 0; i < v->n_hist; i++)
		if (v->hist[i].from_ms <= h->time_ms &&
		    h->time_ms <= v->hist[i].until_ms &&
		    audit_head_verify(h, v->oin, v->hist[i].pk) == 0)
			return true;
	return false;
}

/* A head's time against the certificate (--ca, --crl) and, strictly,
 * against the head before it.  A head signed with an earlier certificate
 * of the history (a renewal) is judged by that one's validity. */
static int
s_ver_head_time(const struct ver *v, size_t i, const char *where)
{
	const audit_head_t *h = &v->heads[i];
	char t[32], a[32], b[32];

	kp_time_format(h->time_ms, t);
	if (v->check_validity && (h->time_ms < v->not_before_ms ||
	    h->time_ms > v->not_after_ms) && !s_ver_hist(v, h)) {
		kp_time_format(v->not_before_ms, a);
		kp_time_format(v->not_after_ms, b);
		return cli_error("%s: head size %llu%s: signed at %s, outside "
		    "the certificate's validity %s .. %s", v->path,
		    (ull)h->size, where, t, a, b);
	}
	if (v->revoked && h->time_ms >= v->revoked_ms) {
		kp_time_format(v->revoked_ms, a);
		return cli_error("%s: head size %llu%s: signed at %s, after the "
		    "certificate was revoked at %s", v->path, (ull)h->size,
		    where, t, a);
	}
	if (v->strict && i > 0 && h->time_ms < v->heads[i - 1].time_ms)
		return cli_error("%s: head size %llu%s: signed at %s, before the "
		    "head it follows (--strict: time went backwards)", v->path,
		    (ull)h->size, where, t);
	return 0;
}

static int
s_ver_check_head(struct ver *v, size_t i, const char *where)
{
	const audit_head_t *h = &v->heads[i];
	uint64_t from = i > 0 ? v->heads[i - 1].size : 0;
	uint8_t root[32];
	int rc;

	if (audit_head_verify(h, v->oin, v->pk) != 0 && !s_ver_hist(v, h))
		return cli_error("%s: head size %llu%s: bad signature: not "
		    "signed by the key of %s's certificate (forged, altered, "
		    "or signed by another organisation)", v->path,
		    (ull)h->size, where, v->oin);
	if ((rc = s_ver_head_time(v, i, where)) != 0)
		return rc;
	if (merkle_root(v->tree, h->size, root) != 0)
		return cli_error("out of memory");
	if (sodium_memcmp(root, h->root, 32) != 0)
		return cli_error("%s: head size %llu%s: the signed root does not "
		    "match entries 0..%llu: an entry in seq %llu..%llu was "
		    "modified, inserted, deleted or reordered after the head "
		    "was signed", v->path, (ull)h->size, where,
		    (ull)h->size - 1, (ull)from, (ull)h->size - 1);
	if (i > 0 && !auditver_consistent(v->tree, &v->heads[i - 1], h))
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
	if (v->strict && e->seq > 0 && e->time_ms < v->last_time_ms)
		return cli_error("%s: entry seq %llu%s: its time is before the "
		    "time of entry %llu (--strict: time went backwards)",
		    v->path, (ull)e->seq, it->where, (ull)e->seq - 1);
	v->last_time_ms = e->time_ms;
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
	if (v->strict && v->n_heads > 0 && n > v->heads[v->n_heads - 1].size)
		return cli_error("%s: entries seq %llu..%llu are not covered by "
		    "a signed head (--strict; without it they are reported, "
		    "not failed)", v->path,
		    (ull)v->heads[v->n_heads - 1].size, (ull)n - 1);
	return 0;
}


/*
 * Stream s to the end: through the verifier v (if not NULL) and cb (if
 * not NULL).  0, or an exit status after printing the first failure.
 */
int
auditsrc_run(struct src *s, struct ver *v, auditsrc_item_cb cb, void *arg)
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



/* Parse argv for subcommand cmd accepting the options in `allowed` and
 * exactly n_args positional arguments.  0, or EXIT_USAGE (after the
 * message), or -1 after printing the help (exit 0). */
int
auditopt_parse(int argc, char **argv, const char *cmd, const char *help,
    int allowed, int n_args, struct opts *o)
{
	static const struct option lo[] = {
		{ "ca", 1, NULL, 'c' }, { "heads", 1, NULL, 'H' },
		{ "crl", 1, NULL, 'r' }, { "strict", 0, NULL, 's' },
		{ "of", 1, NULL, 'o' },
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
		    O_JSON : c == 'f' || c == 't' ? O_RANGE : c == 'r' ? O_CRL :
		    c == 's' ? O_STRICT : c == 'o' ? O_OF : 0;
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
		if (c == 'r') o->crl = optarg;
		if (c == 's') o->strict = true;
		if (c == 'o') o->of = optarg;
	}
	if (argc - optind != n_args)
		return cli_usage_error(full, "expected %d argument%s", n_args,
		    n_args == 1 ? "" : "s");
	if ((allowed & O_HEADS) && o->heads == NULL)
		return cli_usage_error(full, "--heads is required");
	if ((allowed & O_OF) && o->of == NULL)
		return cli_usage_error(full, "--of OIN is required");
	o->args = argv + optind;
	o->n_args = n_args;
	return 0;
}

/* A filtered export cannot be verified: 0, or an exit status. */
int
auditsrc_refuse_filtered(const struct src *s, const char *cmd)
{
	if (!s->filtered)
		return 0;
	return cli_error("%s is a filtered export (--from/--to): %s needs the "
	    "full log; export again without --from/--to", s->path, cmd);
}
