/*
 * audit.h: what the auditor's tools (`ketenpost audit ...`) share.
 *
 * One log is read as one stream of items (auditsrc.c): the log line (OIN
 * and certificate), then entries in seq order with their leaf hashes, and
 * the signed tree heads in size order, each right after the entry that
 * completes it.  The verifier (auditver_*) recomputes the tree from that
 * stream and checks every head; the subcommands build on both:
 *   audit.c            export, verify, proof, check-proof, heads; dispatch
 *   audit_reconcile.c  two organisations' logs matched event by event
 *   audit_witness.c    a partner's witnessed heads against the log
 *   audit_report.c     counts for the accountability report
 * docs/AUDIT.md is the specification of everything read and written.
 */
#ifndef KP_CLIENT_AUDIT_H
#define KP_CLIENT_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <sqlite3.h>

#include "auditlog.h"
#include "merkle.h"

#define S_LINE_MAX (1 << 16)      /* longest export line accepted */
#define S_CERT_MAX (1 << 15)      /* longest certificate PEM accepted */
#define S_FORMAT 1                /* the export format's version */

typedef unsigned long long ull;

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
 * key and validity (ms), from audit_meta 'certificate/<id>'. */
struct cert_hist {
	uint8_t pk[32];
	uint64_t from_ms, until_ms;
	char *pem;                    /* malloc'd, for the --ca check */
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

struct ver {
	const char *path;
	const char *oin;
	uint8_t pk[32];
	const struct cert_hist *hist; /* borrowed from the source */
	size_t n_hist;
	bool strict;                  /* --strict: unsigned tail, time order */
	bool check_validity;          /* --ca: heads within the validity */
	uint64_t not_before_ms, not_after_ms;
	bool revoked;                 /* --crl: the certificate is revoked */
	uint64_t revoked_ms;          /* ... since then */
	uint64_t last_time_ms;        /* of the previous entry (strict) */
	merkle_t *tree;
	audit_head_t *heads;          /* every head seen, increasing size */
	size_t n_heads, cap, n_checked;
};

typedef int (*auditsrc_item_cb)(void *arg, const struct item *it);

struct opts {
	const char *ca, *crl, *heads, *from, *to, *of;
	bool json, strict;
	int n_args;
	char **args;
};

enum { O_CA = 1, O_HEADS = 2, O_RANGE = 4, O_JSON = 8, O_CRL = 16,
    O_STRICT = 32, O_OF = 64 };

/* Sources (auditsrc.c). */
bool auditsrc_is_dir(const char *path);
/* OUT: *out, a source positioned after its log line.  0 or exit status. */
int auditsrc_open(const char *path, struct src **out);
void auditsrc_close(struct src **sp);
/* Stream s to the end: through the verifier v (if not NULL) and cb (if
 * not NULL).  0, or an exit status after printing the first failure. */
int auditsrc_run(struct src *s, struct ver *v, auditsrc_item_cb cb,
    void *arg);
/* A line of an export: OUT: *j, NULL at the end of the file. */
int auditsrc_read_line(struct src *s, json_t **j);
/* A state directory's database, read-only.  0 or exit status. */
int auditsrc_db_open(const char *dir, sqlite3 **out);
void auditsrc_db_close(sqlite3 **db);
int auditsrc_prepare(sqlite3 *db, const char *dir, const char *sql,
    sqlite3_stmt **st);
/* Heads from a prepared SELECT size, time_ms, root, signature. */
int auditsrc_db_heads(sqlite3_stmt *st, const char *dir, audit_head_t **out,
    size_t *n);

/* A filtered export cannot be verified: 0, or an exit status. */
int auditsrc_refuse_filtered(const struct src *s, const char *cmd);

/* The organisation's certificate: an Ed25519 certificate for oin and,
 * with ca_file, issued by that CA.  OUT: pk.  0 or exit status. */
int auditcert_key(const char *pem, const char *oin, const char *ca_file,
    const char *what, uint8_t pk[32]);

/* The verifier. */
/* With o->ca the certificate must chain to that CA and every head must be
 * signed within its validity; with o->crl (needs o->ca) before any
 * revocation; o->strict also fails on entries no head covers and on
 * times that go backwards. */
int auditver_init(struct ver *v, const struct src *s, const struct opts *o);
void auditver_free(struct ver *v);
/* A consistency proof from the recomputed tree, checked against the two
 * signed roots. */
bool auditver_consistent(merkle_t *t, const audit_head_t *old,
    const audit_head_t *new);

/* Parse argv for subcommand cmd accepting the options in `allowed` and
 * exactly n_args positional arguments.  0, or EXIT_USAGE (after the
 * message), or -1 after printing the help (exit 0). */
int auditopt_parse(int argc, char **argv, const char *cmd, const char *help,
    int allowed, int n_args, struct opts *o);

/* The subcommands in their own files. */
int audit_cmd_reconcile(int argc, char **argv);
int audit_cmd_witness(int argc, char **argv);
int audit_cmd_heads(int argc, char **argv);
int audit_cmd_report(int argc, char **argv);

#endif
