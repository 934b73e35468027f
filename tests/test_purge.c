/*
 * test_purge.c: a purge destroys for good, or says it has not.
 *
 * With a reader holding a read transaction open on a daemon's database
 * (as `ketenpost audit` on a live state folder does), old pages with the
 * wrapped per-event key stay in the WAL: the purge must answer
 * "destruction pending", the status must show it, and once the reader is
 * gone the daemon's retry must checkpoint.  Then the raw files (database,
 * -wal, -shm, -journal) are searched byte for byte for the destroyed
 * wrapped key, the stored ciphertext and the plaintext payload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sqlite3.h>

#include "common.h"
#include "daemons.h"
#include "events.h"
#include "pbjson.h"
#include "util.h"

TestSuite(purge, .init = test_init, .timeout = 180);

struct blob {
	uint8_t *p;
	size_t n;
};

static void
s_blob_col(sqlite3_stmt *st, int col, struct blob *b)
{
	const void *v = sqlite3_column_blob(st, col);

	b->n = (size_t)sqlite3_column_bytes(st, col);
	cr_assert(v != NULL && b->n >= 16, "column %d is empty", col);
	b->p = malloc(b->n);
	cr_assert_not_null(b->p);
	memcpy(b->p, v, b->n);
}

/* The packed payload of the referral example: the plaintext at rest. */
static void
s_plaintext(struct blob *b)
{
	ProtobufCMessage *m = NULL;
	json_t *j = json_loads(td_example("referral"), 0, NULL);
	kp_err_t e;

	cr_assert_not_null(j);
	cr_assert_eq(pbjson_from_json(events_descriptor(events_type_from_name(
	    "referral")), j, &m, &e), 0, "%s", e.msg);
	b->n = protobuf_c_message_get_packed_size(m);
	b->p = malloc(b->n);
	cr_assert_not_null(b->p);
	cr_assert_eq(protobuf_c_message_pack(m, b->p), b->n);
	pbjson_free(m);
	json_decref(j);
}

/* Does any of the database's raw files hold these bytes?  Searched in a
 * child process: closing a descriptor of a file drops every POSIX lock
 * this process holds on it, the reader's read lock included. */
static bool s_files_hold_here(const char *db, const struct blob *b,
    char *which, size_t len);

static bool
s_files_hold(const char *db, const struct blob *b, char *which, size_t len)
{
	int fds[2], status = 0;
	ssize_t n;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		close(fds[0]);
		if (s_files_hold_here(db, b, which, len)) {
			(void)!write(fds[1], which, strlen(which));
			_exit(1);
		}
		_exit(0);
	}
	cr_assert(pid > 0);
	close(fds[1]);
	n = read(fds[0], which, len - 1);
	which[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "the search crashed");
	return WEXITSTATUS(status) == 1;
}

static bool
s_files_hold_here(const char *db, const struct blob *b, char *which,
    size_t len)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char path[4200];
	uint8_t *buf;
	size_t i, n, off;

	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
		if (kp_read_file(path, 1u << 30, &buf, &n) != 0)
			continue;          /* no such file: holds nothing */
		for (off = 0; n >= b->n && off <= n - b->n; off++) {
			if (memcmp(buf + off, b->p, b->n) == 0) {
				snprintf(which, len, "%s at offset %zu", path,
				    off);
				free(buf);
				return true;
			}
		}
		free(buf);
	}
	return false;
}

static uint32_t
s_pending(const td_org_t *o)
{
	Kp__StatusResponse st;

	td_status(o, &st);
	cr_assert(st.has_destruction_pending, "status without the count");
	return st.destruction_pending;
}

Test(purge, a_reader_delays_destruction_then_nothing_is_left)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	struct blob key, sealed, plain;
	sqlite3 *reader;
	sqlite3_stmt *st;
	char db[4200], out[8192], where[4400];
	uint8_t id[16];
	int i;

	td_chain_make(&c, NULL);
	cr_assert_eq(test_sh("sed -i 's/^retention *=.*/retention = 2s/' "
	    "%s/policy.ini", c.dir), 0);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-PURGE-1", td_example("referral"),
	    NULL, id);
	cr_assert(td_wait_settled(lp, 10000));
	s_plaintext(&plain);

	/* A reader, as `ketenpost audit` on the live folder: it reads the
	 * row (so it knows the bytes to look for) and keeps its read
	 * transaction, pinning the pages as they are now. */
	snprintf(db, sizeof(db), "%s/orgs/%s/state/ketenpost.db", c.dir,
	    OIN_HALT);
	cr_assert_eq(sqlite3_open_v2(db, &reader, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(reader, "SELECT event_key, "
	    "sealed_payload FROM inbox WHERE event_id = ?1", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	s_blob_col(st, 0, &key);
	s_blob_col(st, 1, &sealed);
	sqlite3_finalize(st);
	cr_assert(s_files_hold(db, &key, where, sizeof(where)),
	    "the wrapped key is not found before the purge: the search is "
	    "blind");
	cr_assert(!s_files_hold(db, &plain, where, sizeof(where)),
	    "plaintext at rest: %s", where);

	sleep(3);                     /* the 2 s retention ends */
	cr_assert_neq(test_sh_output(out, sizeof(out), "%s/ketenpost purge "
	    "--config %s", test_bin(), halt->conf), 0,
	    "a purge with a reader holding old pages claimed success: %s", out);
	cr_assert(strstr(out, "purged 1, destruction pending 1") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "not yet destroyed") != NULL, "%s", out);
	cr_assert_eq(s_pending(halt), 1);
	cr_assert(td_log_has(halt, "not yet destroyed", 2000));
	cr_assert(s_files_hold(db, &key, where, sizeof(where)),
	    "pending, so the old pages are expected still: %s", db);

	/* The reader goes; the daemon's retry (every second) destroys. */
	cr_assert_eq(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_close(reader), SQLITE_OK);
	for (i = 0; i < 100 && s_pending(halt) != 0; i++)
		usleep(100 * 1000);
	cr_assert_eq(s_pending(halt), 0, "still pending 10 s after the reader "
	    "left");
	cr_assert(td_log_has(halt, "destroyed (the WAL is checkpointed", 2000));

	cr_assert(!s_files_hold(db, &key, where, sizeof(where)),
	    "the destroyed wrapped key is still in %s", where);
	cr_assert(!s_files_hold(db, &sealed, where, sizeof(where)),
	    "the destroyed ciphertext is still in %s", where);
	cr_assert(!s_files_hold(db, &plain, where, sizeof(where)),
	    "the plaintext is in %s", where);

	/* Nothing left to destroy: a plain "purged 0", exit 0. */
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost purge "
	    "--config %s", test_bin(), halt->conf), 0, "%s", out);
	cr_assert(strstr(out, "purged 0") != NULL, "%s", out);
	free(key.p);
	free(sealed.p);
	free(plain.p);
	td_chain_stop_all(&c);
}

Test(purge, without_a_reader_a_purge_is_destroyed_at_once)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char db[4200], out[8192];
	uint8_t id[16];

	td_chain_make(&c, NULL);
	cr_assert_eq(test_sh("sed -i 's/^retention *=.*/retention = 2s/' "
	    "%s/policy.ini", c.dir), 0);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(lp);
	td_start(halt);
	td_send(lp, OIN_HALT, "referral", "LP-PURGE-2", td_example("referral"),
	    NULL, id);
	cr_assert(td_wait_settled(lp, 10000));
	sleep(3);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpost purge "
	    "--config %s", test_bin(), lp->conf), 0, "%s", out);
	cr_assert(strstr(out, "purged 1\n") != NULL, "%s", out);
	cr_assert_eq(s_pending(lp), 0);
	snprintf(db, sizeof(db), "%s/orgs/%s/state/ketenpost.db-wal", c.dir,
	    OIN_LEERPLICHT);
	cr_assert(access(db, F_OK) != 0 || test_sh("test ! -s %s", db) == 0,
	    "the WAL is not empty after a purge");
	td_chain_stop_all(&c);
}
