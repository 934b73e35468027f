/*
 * backup.c: `ketenpost backup --config FILE OUT`, a consistent copy of a
 * daemon's state database while the daemon runs, and what the copy holds.
 *
 * The state folder is found through the daemon's own configuration
 * (config_load), the database is opened read-only, and SQLite's online
 * backup API copies every page inside one read transaction: in WAL mode a
 * reader sees one committed snapshot and never blocks the daemon's writer,
 * so the copy is exactly the state after some commit (a file copy of a
 * live WAL database is not: the database file and its -wal are read at
 * different moments).  `VACUUM INTO` would also do, but rewrites every
 * row; the backup API copies pages as they are.
 *
 * The copy is written as OUT.partial, switched to a rollback journal (one
 * self-contained file, no -wal beside it), checked with quick_check, made
 * durable and only then renamed to OUT: a file named OUT is always a whole
 * backup.  This module never writes to the state folder and never
 * overwrites an existing file.  Payloads stay encrypted at rest in the
 * copy (the organisation's payload key is needed to read them, as in the
 * original); restoring is an operator step (docs/OPERATIONS.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cli.h"
#include "config.h"

static const char s_backup_help[] =
"usage: ketenpost backup --config FILE [--json] OUT\n"
"Copy the state database of the daemon configured in FILE to OUT (a new\n"
"file), consistently, while the daemon runs; then say what the copy holds.\n"
"  --config FILE  the daemon's configuration (ketenpostd.conf(5))\n"
"  --json         print the summary as JSON\n"
"Restore: see docs/OPERATIONS.md (stop the daemon, replace ketenpost.db,\n"
"remove ketenpost.db-wal and -shm, start it).\n";

/* What a backup holds, read from the copy itself. */
struct summary {
	int64_t schema;
	int64_t outbox[5];          /* by enum store_state, [0] = total */
	int64_t inbox, inbox_unacked;
	int64_t audit_entries;
	int64_t head_size, head_time_ms;  /* head_size -1: none signed */
};

static int
s_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = -1;
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE)
		rc = SQLITE_OK;  /* no row: *out stays -1 */
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -1;
}

static int
s_summarise(sqlite3 *db, struct summary *s)
{
	char sql[96];
	int i;

	memset(s, 0, sizeof(*s));
	if (s_int(db, "PRAGMA user_version", &s->schema) != 0 ||
	    s_int(db, "SELECT count(*) FROM outbox", &s->outbox[0]) != 0 ||
	    s_int(db, "SELECT count(*) FROM inbox", &s->inbox) != 0 ||
	    s_int(db, "SELECT count(*) FROM inbox WHERE acked = 0",
	    &s->inbox_unacked) != 0 ||
	    s_int(db, "SELECT count(*) FROM audit", &s->audit_entries) != 0 ||
	    s_int(db, "SELECT max(size) FROM tree_heads", &s->head_size) != 0 ||
	    s_int(db, "SELECT time_ms FROM tree_heads ORDER BY size DESC "
	    "LIMIT 1", &s->head_time_ms) != 0)
		return -1;
	/* pending, rejected and dead by the partial indexes of schema 6
	 * (store_schema.c; the redundant IN lets SQLite use the second),
	 * delivered as the rest: a count by state = 2 would read the whole
	 * table, envelopes and all */
	if (s_int(db, "SELECT count(*) FROM outbox WHERE state = 1",
	    &s->outbox[1]) != 0)
		return -1;
	for (i = 3; i <= 4; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE "
		    "state = %d AND state IN (3, 4)", i);
		if (s_int(db, sql, &s->outbox[i]) != 0)
			return -1;
	}
	s->outbox[2] = s->outbox[0] - s->outbox[1] - s->outbox[3] -
	    s->outbox[4];
	return 0;
}

static void
s_iso(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms < 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
s_print(const char *out, const char *src, const struct summary *s, bool json)
{
	char when[32];
	json_t *j;

	s_iso(s->head_size > 0 ? s->head_time_ms : -1, when, sizeof(when));
	if (json) {
		j = json_pack("{s:s, s:s, s:I, s:{s:I, s:I, s:I, s:I, s:I}, "
		    "s:{s:I, s:I}, s:I, s:{s:I, s:s}}", "backup", out, "of", src,
		    "schema", (json_int_t)s->schema, "outbox", "total",
		    (json_int_t)s->outbox[0], "pending", (json_int_t)s->outbox[1],
		    "delivered", (json_int_t)s->outbox[2], "rejected",
		    (json_int_t)s->outbox[3], "dead", (json_int_t)s->outbox[4],
		    "inbox", "total", (json_int_t)s->inbox, "unacked",
		    (json_int_t)s->inbox_unacked, "audit_entries",
		    (json_int_t)s->audit_entries, "last_head", "size",
		    (json_int_t)(s->head_size > 0 ? s->head_size : 0), "time",
		    when);
		if (j != NULL)
			cli_print_json(j);
		json_decref(j);
		return;
	}
	printf("backup %s of %s (schema %" PRId64 ")\n", out, src, s->schema);
	printf("  outbox: %" PRId64 " events (%" PRId64 " pending, %" PRId64
	    " delivered, %" PRId64 " rejected, %" PRId64 " dead letters)\n",
	    s->outbox[0], s->outbox[1], s->outbox[2], s->outbox[3],
	    s->outbox[4]);
	printf("  inbox: %" PRId64 " events (%" PRId64 " not yet acknowledged)\n",
	    s->inbox, s->inbox_unacked);
	printf("  audit log: %" PRId64 " entries, last signed head: size %"
	    PRId64 " at %s\n", s->audit_entries,
	    s->head_size > 0 ? s->head_size : 0, when);
}

/*
 * Copy src (read-only) to dst with the backup API in one step, so the
 * whole copy is made inside one read transaction.  A busy source (the
 * daemon checkpointing or recovering) is retried for up to ~10 s.
 */
static int
s_copy(const char *src, const char *dst)
{
	sqlite3 *from = NULL, *to = NULL;
	sqlite3_backup *b = NULL;
	int rc, tries = 0;

	rc = sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(from, 10000);
	if (rc != SQLITE_OK) {
		cli_error("%s: cannot open the state database read-only: %s "
		    "(run as the daemon's user or root)", src, from ?
		    sqlite3_errmsg(from) : sqlite3_errstr(rc));
		goto out;
	}
	rc = sqlite3_open_v2(dst, &to, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE, NULL);
	if (rc != SQLITE_OK) {
		cli_error("%s: cannot create: %s", dst, to ?
		    sqlite3_errmsg(to) : sqlite3_errstr(rc));
		goto out;
	}
	if ((b = sqlite3_backup_init(to, "main", from, "main")) == NULL) {
		rc = SQLITE_ERROR;
		cli_error("%s: cannot start the backup: %s", dst,
		    sqlite3_errmsg(to));
		goto out;
	}
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY ||
	    rc == SQLITE_LOCKED) {
		if (++tries > 100)
			break;
		usleep(100000);
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		cli_error("%s: the backup failed: %s", src, sqlite3_errstr(rc));
		goto out;
	}
	rc = sqlite3_exec(to, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		cli_error("%s: %s", dst, sqlite3_errmsg(to));
out:
	sqlite3_close(to);
	sqlite3_close(from);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The copy: quick_check, then what it holds. */
static int
s_check_copy(const char *dst, struct summary *s)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_open_v2(dst, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		cli_error("%s: the copy does not pass quick_check: %s", dst,
		    db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	if (s_summarise(db, s) != 0) {
		cli_error("%s: not a ketenpost state database: %s", dst,
		    sqlite3_errmsg(db));
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}

/* fsync the file and its folder, then rename: OUT appears whole or not. */
static int
s_publish(const char *tmp, const char *out)
{
	char dir[PATH_MAX];
	int fd, ret = -1;

	if ((fd = open(tmp, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) != 0 ||
	    close(fd) != 0) {
		cli_error("%s: cannot make the copy durable: %s", tmp,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* never replaces an OUT that appeared meanwhile; link() + unlink()
	 * where the file system lacks RENAME_NOREPLACE (EINVAL) */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_NOREPLACE) != 0 &&
	    (errno != EINVAL || link(tmp, out) != 0 || unlink(tmp) != 0)) {
		cli_error("%s: cannot create: %s", out, strerror(errno));
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", out);
	if ((fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		ret = fsync(fd);
		close(fd);
	}
	if (ret != 0)
		cli_error("%s: cannot sync its folder: %s", out, strerror(errno));
	return ret;
}

static int
s_parse(int argc, char **argv, const char **config, const char **out,
    bool *json)
{
	static const struct option opts[] = { { "config", 1, NULL, 'c' },
	    { "json", 0, NULL, 'j' }, { "help", 0, NULL, 'h' },
	    { NULL, 0, NULL, 0 } };
	int c;

	*config = *out = NULL;
	*json = false;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': *config = optarg; break;
		case 'j': *json = true; break;
		case 'h': fputs(s_backup_help, stdout); exit(0);
		default: return cli_usage_error("backup", "unknown option");
		}
	}
	if (*config == NULL)
		return cli_usage_error("backup", "--config FILE is required (the "
		    "daemon's configuration)");
	if (optind + 1 != argc)
		return cli_usage_error("backup", "give exactly one OUT file");
	*out = argv[optind];
	return 0;
}

int
cmd_backup(int argc, char **argv)
{
	char src[KP_PATH_MAX + 16], tmp[PATH_MAX];
	const char *config, *out;
	struct summary s;
	config_t cfg;
	kp_err_t e;
	int problems = 0, rc;
	bool json;

	if ((rc = s_parse(argc, argv, &config, &out, &json)) != 0)
		return rc;
	if (config_load(config, &cfg, NULL, NULL, &problems, &e) != 0)
		return cli_error("%s (check it with ketenpostd --config %s "
		    "--check)", e.msg, config);
	snprintf(src, sizeof(src), "%s/ketenpost.db", cfg.state_dir);
	if (access(src, F_OK) != 0)
		return cli_error("%s: no state database (%s); is state_dir in %s "
		    "right?", src, strerror(errno), config);
	if (access(out, F_OK) == 0)
		return cli_error("%s: already exists; give a new file name", out);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.partial", out) >= sizeof(tmp))
		return cli_error("%s: path too long", out);
	(void)unlink(tmp);  /* left by an interrupted backup */
	umask(077);         /* the copy is as private as the original */
	if (s_copy(src, tmp) != 0 || s_check_copy(tmp, &s) != 0 ||
	    s_publish(tmp, out) != 0) {
		(void)unlink(tmp);
		return EXIT_REFUSED;
	}
	s_print(out, src, &s, json);
	return 0;
}
