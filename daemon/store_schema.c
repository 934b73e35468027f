/*
 * store_schema.c: the database's tables and their versions (see store.h).
 *
 * Why user_version and application_id: user_version (STORE_SCHEMA_VERSION)
 * lets a later version migrate and makes an older one refuse a newer file;
 * application_id marks the file as ours, so a stray SQLite file is refused
 * rather than having our tables added to it.  Every step runs in one
 * BEGIN IMMEDIATE, so two processes opening a new file cannot both create
 * it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_int.h"
#include "util.h"

#define STORE_SCHEMA_VERSION 9


/*
 * Version 1.  Blobs of fixed size are checked so a bug cannot store junk.
 * outbox_due served the counts and the due walk of older versions (it is
 * dropped at every open now: s_schema_perf); outbox_partner served a
 * link's catch-up in seq order (store_outbox_after: its entries are
 * ordered by rowid = seq within a partner and state), which must not walk
 * the backlog, and the counts by state (outbox_pending since version 6).
 * Each index costs every insert:
 * the UNIQUE index on a random (UUIDv4) event_id dirties one more page per
 * row once the table is large, roughly doubling the bytes written per
 * row; time-ordered ids (UUIDv7, now used) append instead.  The
 * envelope and the receipt (envelope, receipt_digest, reason,
 * receipted_ms, receipt) were in the outbox row until version 9, which
 * moves them to side tables (outbox_env, outbox_receipts) and drops
 * these columns: s_schema_v9.
 */
static const char s_schema_v1[] =
	"CREATE TABLE outbox ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" event_id BLOB NOT NULL UNIQUE CHECK (length(event_id) = 16),"
	" event_type INTEGER NOT NULL,"
	" to_oin TEXT NOT NULL,"
	" case_local TEXT NOT NULL,"
	" case_ref BLOB NOT NULL CHECK (length(case_ref) = 32),"
	" in_reply_to BLOB CHECK (in_reply_to IS NULL OR"
	"  length(in_reply_to) = 16),"
	" state INTEGER NOT NULL CHECK (state BETWEEN 1 AND 4),"
	" attempts INTEGER NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" expires_ms INTEGER NOT NULL,"
	" next_attempt_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" envelope_digest BLOB NOT NULL CHECK (length(envelope_digest) = 32),"
	" receipt_digest BLOB,"
	" reason INTEGER NOT NULL DEFAULT 0,"
	" receipted_ms INTEGER NOT NULL DEFAULT 0,"
	" purpose TEXT NOT NULL,"
	" legal_basis TEXT NOT NULL,"
	" fields TEXT NOT NULL,"
	" retention_until_ms INTEGER NOT NULL,"
	" event_key BLOB,"
	" route INTEGER NOT NULL DEFAULT 0,"
	" envelope BLOB,"
	" receipt BLOB);"
	"CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);"
	"CREATE INDEX outbox_partner ON outbox (to_oin, state);"
	"CREATE INDEX outbox_case ON outbox (case_local);"
	"CREATE INDEX outbox_retention ON outbox (retention_until_ms) "
	" WHERE event_key IS NOT NULL;"
	"CREATE TABLE inbox ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" event_id BLOB NOT NULL UNIQUE CHECK (length(event_id) = 16),"
	" event_type INTEGER NOT NULL,"
	" from_oin TEXT NOT NULL,"
	" case_local TEXT NOT NULL,"
	" case_ref BLOB NOT NULL CHECK (length(case_ref) = 32),"
	" in_reply_to BLOB,"
	" purpose TEXT NOT NULL,"
	" legal_basis TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" received_ms INTEGER NOT NULL,"
	" acked INTEGER NOT NULL DEFAULT 0,"
	" envelope_digest BLOB NOT NULL,"
	" receipt_digest BLOB NOT NULL,"
	" fields TEXT NOT NULL,"
	" retention_until_ms INTEGER NOT NULL,"
	" event_key BLOB,"
	" sealed_payload BLOB,"
	" envelope BLOB NOT NULL,"
	" receipt BLOB NOT NULL);"
	"CREATE INDEX inbox_unacked ON inbox (seq) WHERE acked = 0;"
	"CREATE INDEX inbox_case ON inbox (case_local);"
	"CREATE INDEX inbox_retention ON inbox (retention_until_ms) "
	" WHERE event_key IS NOT NULL;"
	"CREATE TABLE rejected ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" from_oin TEXT NOT NULL,"
	" event_id BLOB,"
	" envelope_digest BLOB NOT NULL,"
	" reason INTEGER NOT NULL,"
	" at_ms INTEGER NOT NULL);"
	"CREATE TABLE links ("
	" id INTEGER PRIMARY KEY,"
	" partner_oin TEXT NOT NULL,"
	" local TEXT NOT NULL,"
	" case_ref BLOB NOT NULL CHECK (length(case_ref) = 32),"
	" UNIQUE (partner_oin, local),"
	" UNIQUE (partner_oin, case_ref));"
	"CREATE TABLE audit ("
	" seq INTEGER PRIMARY KEY,"
	" entry BLOB NOT NULL,"
	" leaf BLOB NOT NULL CHECK (length(leaf) = 32));"
	"CREATE TABLE tree_heads ("
	" size INTEGER PRIMARY KEY,"
	" time_ms INTEGER NOT NULL,"
	" root BLOB NOT NULL CHECK (length(root) = 32),"
	" signature BLOB NOT NULL CHECK (length(signature) = 64));"
	"CREATE TABLE witness ("
	" partner_oin TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" time_ms INTEGER NOT NULL,"
	" root BLOB NOT NULL CHECK (length(root) = 32),"
	" signature BLOB NOT NULL CHECK (length(signature) = 64),"
	" received_ms INTEGER NOT NULL,"
	" PRIMARY KEY (partner_oin, size, root));"
	"CREATE TABLE audit_meta ("
	" key TEXT PRIMARY KEY,"
	" value TEXT NOT NULL);"
	"CREATE TABLE expectations ("
	" event_id BLOB PRIMARY KEY CHECK (length(event_id) = 16),"
	" case_local TEXT NOT NULL,"
	" partner_oin TEXT NOT NULL,"
	" case_ref BLOB NOT NULL CHECK (length(case_ref) = 32),"
	" sent_type INTEGER NOT NULL,"
	" answer_type INTEGER NOT NULL,"
	" route INTEGER NOT NULL,"
	" sent_ms INTEGER NOT NULL,"
	" due_ms INTEGER NOT NULL,"
	" answered_by BLOB,"
	" answered_ms INTEGER NOT NULL DEFAULT 0,"
	" overdue_reported INTEGER NOT NULL DEFAULT 0,"
	" reminders INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX expectations_open ON expectations (due_ms)"
	" WHERE answered_by IS NULL;"
	"CREATE INDEX expectations_case ON expectations (case_local);"
	"CREATE INDEX expectations_ref ON expectations (partner_oin, case_ref);";

/* Decide, inside the open write transaction, whether to create v1. */
static int
s_schema_check(store_t *s, bool *create, kp_err_t *err)
{
	sqlite3_int64 app, ver, tables;

	if (sq_query_int(s, "PRAGMA application_id", &app, err) != 0 ||
	    sq_query_int(s, "PRAGMA user_version", &ver, err) != 0 ||
	    sq_query_int(s, "SELECT count(*) FROM sqlite_schema", &tables,
	    err) != 0)
		return -1;
	if (ver > STORE_SCHEMA_VERSION)
		return kp_fail(err, KP_ERR_IO, "store: %s has schema version "
		    "%lld, newer than this ketenpost supports (%d); upgrade "
		    "ketenpost", s->path, (long long)ver, STORE_SCHEMA_VERSION);
	if ((app != 0 && app != STORE_APP_ID) || (app == 0 && tables > 0))
		return kp_fail(err, KP_ERR_IO, "store: %s: not a ketenpost "
		    "database or corrupt (foreign SQLite database)", s->path);
	if (app == STORE_APP_ID && ver < 1)
		return kp_fail(err, KP_ERR_IO, "store: %s: not a ketenpost "
		    "database or corrupt (no schema version)", s->path);
	*create = ver == 0;
	return 0;
}

/*
 * Version 2: the idempotency key of a send (apisrv.c), kept in the outbox
 * row for as long as the row: a retried request with the same (client,
 * key) finds the event it stored, across restarts.  The unique index is
 * what makes "stores nothing new" hold even if a caller skipped the look-up.
 */
static const char s_schema_v2[] =
	"ALTER TABLE outbox ADD COLUMN idem_client TEXT;"
	"ALTER TABLE outbox ADD COLUMN idem_key TEXT;"
	"ALTER TABLE outbox ADD COLUMN idem_hash BLOB"
	" CHECK (idem_hash IS NULL OR length(idem_hash) = 32);"
	"CREATE UNIQUE INDEX outbox_idem ON outbox (idem_client, idem_key)"
	" WHERE idem_key IS NOT NULL;";

/*
 * Version 3: answers in phases (an interim answer keeps its expectation
 * open with a new due time; the first one is kept for as-of views) and
 * the officer's own record of the absence after the route: local, never
 * sent; the latest record per case.
 */
static const char s_schema_v3[] =
	"ALTER TABLE expectations ADD COLUMN interim_by BLOB;"
	"ALTER TABLE expectations ADD COLUMN interim_ms INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE expectations ADD COLUMN first_due_ms INTEGER NOT NULL"
	" DEFAULT 0;"
	"CREATE TABLE absence_after ("
	" case_local TEXT PRIMARY KEY,"
	" absence INTEGER NOT NULL CHECK (absence BETWEEN 1 AND 3),"
	" at_ms INTEGER NOT NULL);";

/*
 * Version 4: metadata minimised at rest (store.h, store_seal.c).  Case
 * references are sealed per partner in place (case_local becomes
 * case_sealed, links.local becomes local_sealed), routes sealed into
 * route_sealed (the clear column is dropped), the officer's absence record
 * keyed by kp_absence_key; meta_partners lists the partners a lookup by
 * case computes a sealed value for; reduced_ms marks a row whose metadata
 * retention ended (store_meta_reduce), and the partial indexes hold only
 * the rows still to reduce (payload destroyed, not reduced), so inserts
 * never write them.  The old indexes on the clear columns are dropped
 * first (their pages are freed, and zeroed: secure_delete); the new ones
 * hold the first 8 bytes of a sealed value (of its synthetic IV, a keyed
 * PRF: store_seal.c), enough to find the rows, an eighth of the bytes
 * per entry.  Expectations are reduced by a walk, once per purge pass:
 * an index on sent_ms would cost every send.
 * The functions need the key, so this step runs with it, in the one
 * transaction of the migration.
 */
static const char s_schema_v4[] =
	"CREATE TABLE meta_partners (oin TEXT PRIMARY KEY) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO meta_partners SELECT to_oin FROM outbox "
	" UNION SELECT from_oin FROM inbox UNION SELECT partner_oin FROM links"
	" UNION SELECT partner_oin FROM expectations;"
	"DROP INDEX outbox_case; DROP INDEX inbox_case;"
	"DROP INDEX expectations_case;"
	"ALTER TABLE outbox RENAME COLUMN case_local TO case_sealed;"
	"ALTER TABLE outbox ADD COLUMN route_sealed BLOB;"
	"ALTER TABLE outbox ADD COLUMN reduced_ms INTEGER NOT NULL DEFAULT 0;"
	"UPDATE outbox SET case_sealed = kp_case_seal(to_oin, case_sealed),"
	" route_sealed = kp_route_seal(event_id, route);"
	"ALTER TABLE outbox DROP COLUMN route;"
	"CREATE INDEX outbox_case ON outbox (substr(case_sealed, 1, 8));"
	"CREATE INDEX outbox_meta ON outbox (created_ms)"
	" WHERE event_key IS NULL AND reduced_ms = 0;"
	"ALTER TABLE inbox RENAME COLUMN case_local TO case_sealed;"
	"ALTER TABLE inbox ADD COLUMN reduced_ms INTEGER NOT NULL DEFAULT 0;"
	"UPDATE inbox SET case_sealed = kp_case_seal(from_oin, case_sealed)"
	" WHERE case_sealed <> '';"
	"CREATE INDEX inbox_case ON inbox (substr(case_sealed, 1, 8));"
	"CREATE INDEX inbox_meta ON inbox (received_ms)"
	" WHERE event_key IS NULL AND reduced_ms = 0;"
	"ALTER TABLE links RENAME COLUMN local TO local_sealed;"
	"UPDATE links SET local_sealed = kp_case_seal(partner_oin,"
	" local_sealed);"
	"ALTER TABLE expectations RENAME COLUMN case_local TO case_sealed;"
	"ALTER TABLE expectations ADD COLUMN route_sealed BLOB;"
	"UPDATE expectations SET case_sealed = kp_case_seal(partner_oin,"
	" case_sealed), route_sealed = kp_route_seal(event_id, route);"
	"ALTER TABLE expectations DROP COLUMN route;"
	"CREATE INDEX expectations_case ON expectations"
	" (substr(case_sealed, 1, 8));"
	"ALTER TABLE absence_after RENAME COLUMN case_local TO case_key;"
	"UPDATE absence_after SET case_key = kp_absence_key(case_key);"
	"CREATE INDEX absence_after_at ON absence_after (at_ms);";

/*
 * Version 5: rows find their case through its link, not by their own
 * index on a random key.  Per new case the sender inserted into five
 * indexes keyed by a random value (outbox_case, expectations_case and
 * expectations_ref beside the two unique indexes of links); every commit
 * of a batch dirtied a random page of each per new case, which as the
 * store grows is most of the bytes written (PERFORMANCE.md, "Case
 * indexes").  Now outbox and expectations rows carry link_id, the
 * links.id of their case with their partner: an integer that grows with
 * each new case, so outbox_link and expectations_link append.  A lookup
 * by case goes through links (its two unique indexes, by sealed local
 * reference and by pseudonym, stay: nothing else can find a case), then
 * by link_id.  The sealed case_sealed and the pseudonym stay in the rows
 * (they are read back, and metadata retention clears them); link_id adds
 * nothing a copy of the file did not show already (rows of one case and
 * partner had equal sealed values), and one case's links with two
 * partners are unrelated integers.  A row whose case had no link (none is
 * made without one since version 1; kept for safety) gets its link here.
 * metadata retention clears link_id with the case (store_retention.c).
 */
static const char s_schema_v5[] =
	"ALTER TABLE outbox ADD COLUMN link_id INTEGER;"
	"ALTER TABLE expectations ADD COLUMN link_id INTEGER;"
	"INSERT OR IGNORE INTO links (partner_oin, local_sealed, case_ref)"
	" SELECT to_oin, case_sealed, case_ref FROM outbox"
	" WHERE case_sealed <> '' UNION ALL"
	" SELECT partner_oin, case_sealed, case_ref FROM expectations"
	" WHERE case_sealed <> '';"
	"UPDATE outbox SET link_id = (SELECT id FROM links WHERE"
	" links.partner_oin = outbox.to_oin AND"
	" links.local_sealed = outbox.case_sealed) WHERE case_sealed <> '';"
	"UPDATE expectations SET link_id = (SELECT id FROM links WHERE"
	" links.partner_oin = expectations.partner_oin AND"
	" links.local_sealed = expectations.case_sealed);"
	"DROP INDEX outbox_case; DROP INDEX expectations_case;"
	"DROP INDEX expectations_ref;"
	"CREATE INDEX outbox_link ON outbox (link_id)"
	" WHERE link_id IS NOT NULL;"
	"CREATE INDEX expectations_link ON expectations (link_id);";

/*
 * Version 6: a receipt no longer moves its row within an index.
 * outbox_partner (to_oin, state) held every row, so each settle deleted
 * the row's (partner, pending) entry and inserted a (partner, delivered)
 * one: a B-tree descent and an insert per receipt that only the counts
 * at open read.  outbox_pending holds the pending rows only (the same
 * key, so a link's catch-up reads it in seq order within a partner, as
 * before, and it covers the count of pending rows); a settle deletes its
 * entry and inserts none.  outbox_rejected_dead holds the rows rejected
 * or dead, rare, so a delivery writes neither index; the delivered rows
 * are counted as all rows less the others (store_counts.c), and all rows
 * by the smallest full index (event_id's), which reads as many pages as
 * outbox_partner did.  A version step, not a performance index: a
 * daemon of version 5 names outbox_partner in its statements, so it
 * must refuse this file (a newer version) rather than fail to prepare.
 */
static const char s_schema_v6[] =
	"DROP INDEX IF EXISTS outbox_partner;"
	"CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (to_oin, state)"
	" WHERE state = 1;"
	"CREATE INDEX IF NOT EXISTS outbox_rejected_dead ON outbox (state)"
	" WHERE state IN (3, 4);";

/*
 * Version 7: a new case of our own writes one random-keyed index entry,
 * not two.  The links of version 1 had two unique indexes, on (partner,
 * sealed local reference) and on (partner, pseudonym), both keyed by a
 * PRF output: every new case (nearly every referral) inserted into a
 * random page of each, the largest per-event cost of the sender once the
 * store outgrew its cache (PERFORMANCE.md, "Issue 16, eleventh session").
 * But the pseudonym of a case we send on first is a keyed hash of its
 * reference (pseudonym.h), which the store can compute (store_open's
 * pseudonym key, kp_case_pseudonym): such a link (own = 1) is found by
 * its reference through the pseudonym index, and needs no entry in an
 * index by reference.  Only a link whose pseudonym came from the partner
 * (own = 0: an answer to a received event, a `link`ed received case)
 * is found by its reference through links_filed, a partial unique index
 * that holds those alone.  Per partner the reference stays one-to-one
 * with the pseudonym: two own links of one reference would share the
 * pseudonym (the unique index refuses the second); an own and a filed
 * link of one reference are refused by store_link_ensure, which looks
 * for either before it inserts, in the same transaction.
 * SQLite drops no UNIQUE constraint in place, so the table is copied.
 * The links an older daemon made are kept as filed (own = 0): they stay
 * in links_filed, found by their reference as before, whatever their
 * pseudonym's origin.  Their ids are kept (outbox and expectations rows
 * refer to them).
 */
static const char s_schema_v7[] =
	"CREATE TABLE links_v7 ("
	" id INTEGER PRIMARY KEY,"
	" partner_oin TEXT NOT NULL,"
	" local_sealed BLOB NOT NULL,"
	" case_ref BLOB NOT NULL CHECK (length(case_ref) = 32),"
	" own INTEGER NOT NULL DEFAULT 0 CHECK (own IN (0, 1)),"
	" UNIQUE (partner_oin, case_ref));"
	"INSERT INTO links_v7 (id, partner_oin, local_sealed, case_ref, own)"
	" SELECT id, partner_oin, local_sealed, case_ref, 0 FROM links;"
	"DROP TABLE links;"
	"ALTER TABLE links_v7 RENAME TO links;"
	"CREATE UNIQUE INDEX links_filed ON links (partner_oin, local_sealed)"
	" WHERE own = 0;";

/*
 * Version 8: the index of links by pseudonym holds its first 8 bytes, not
 * (partner_oin, case_ref).  Its key is a keyed hash (random), so every
 * new case inserted into a random page of the unique index of version 7
 * (entries of about 58 bytes), and as the store grew nearly every commit
 * of the sender wrote most of that index's pages into the WAL: 2.1 KB
 * per event at 30,000 events, 5.7 KB at 150,000, its largest single cost
 * (bench/walframes.py).  An entry of links_pseudonym is the 8-byte prefix
 * and the rowid, about a quarter of the size, so a quarter of the pages;
 * every look-up by pseudonym names the same expression (SQLite uses an
 * index on an expression only then) and compares the whole value after
 * (store_cases.c, store_int.h LINK_OF).  Per partner the pseudonym stays
 * unique: s_link_make (store_cases.c) inserts only when no link of
 * (partner_oin, case_ref) exists, looked up through this index in the
 * same transaction, and nothing else inserts a link.  SQLite drops no
 * UNIQUE constraint in place, so the table is copied as in version 7,
 * ids and own kept.
 */
static const char s_schema_v8[] =
	"CREATE TABLE links_v8 ("
	" id INTEGER PRIMARY KEY,"
	" partner_oin TEXT NOT NULL,"
	" local_sealed BLOB NOT NULL,"
	" case_ref BLOB NOT NULL CHECK (length(case_ref) = 32),"
	" own INTEGER NOT NULL DEFAULT 0 CHECK (own IN (0, 1)));"
	"INSERT INTO links_v8 (id, partner_oin, local_sealed, case_ref, own)"
	" SELECT id, partner_oin, local_sealed, case_ref, own FROM links;"
	"DROP TABLE links;"
	"ALTER TABLE links_v8 RENAME TO links;"
	"CREATE INDEX links_pseudonym ON links (substr(case_ref, 1, 8));"
	"CREATE UNIQUE INDEX links_filed ON links (partner_oin, local_sealed)"
	" WHERE own = 0;";

/*
 * Version 9: the outbox's envelope and receipt in side tables (layout F
 * of bench/outboxsim.py).  With them in the row every outbox page was
 * written twice: at the insert (rows of ~2.2 KB at a 1 KiB payload,
 * three a page) and again at the receipt, whose settle set envelope =
 * NULL and stored the 650-byte receipt in the same row.  Now the
 * envelope, sealed at rest, is a row of outbox_env inserted with the
 * outbox row and DELETEd at its settle (any: delivered, rejected, a late
 * receipt for a dead row) or, a dead row's, by the purge at its
 * retention's end (store_retention.c): its life is as before, and its
 * pages are zeroed when freed (secure_delete = ON).  The receipt is a row
 * of outbox_receipts, appended at the settle; the settle's UPDATE of the
 * outbox row sets state and updated_ms only, so the row keeps its size
 * (a row that grows splits its page: layout B).  Simulated at 30,000
 * events of 1 KiB: ~1,040 bytes of WAL less per event in the run,
 * ~2,200 less at the purge, half the database.  Readers join by seq
 * (each side table looked up by its key); a row without a receipt reads
 * NULL digest, reason 0, time 0, as its columns did.  The five columns
 * are dropped (in no index, CHECK or view, so SQLite 3.35+ can): each
 * DROP COLUMN rewrites every outbox row in place, so the space an older
 * file's rows leave stays in their pages (new rows append; a VACUUM packs
 * it, OPERATIONS.md).  The copies run first, every envelope
 * a row still has (pending and dead rows) and every receipt (rows with
 * a receipt digest), so the step keeps all it found.
 */
static const char s_schema_v9[] =
	"CREATE TABLE outbox_env ("
	" seq INTEGER PRIMARY KEY,"
	" envelope BLOB NOT NULL);"
	"CREATE TABLE outbox_receipts ("
	" seq INTEGER PRIMARY KEY,"
	" reason INTEGER NOT NULL,"
	" receipt_digest BLOB NOT NULL CHECK (length(receipt_digest) = 32),"
	" receipt BLOB,"
	" receipted_ms INTEGER NOT NULL);"
	"INSERT INTO outbox_env (seq, envelope) SELECT seq, envelope"
	" FROM outbox WHERE envelope IS NOT NULL;"
	"INSERT INTO outbox_receipts (seq, reason, receipt_digest, receipt,"
	" receipted_ms) SELECT seq, reason, receipt_digest, receipt,"
	" receipted_ms FROM outbox WHERE receipt_digest IS NOT NULL;"
	"ALTER TABLE outbox DROP COLUMN envelope;"
	"ALTER TABLE outbox DROP COLUMN receipt;"
	"ALTER TABLE outbox DROP COLUMN receipt_digest;"
	"ALTER TABLE outbox DROP COLUMN reason;"
	"ALTER TABLE outbox DROP COLUMN receipted_ms;";

/*
 * Indexes for performance only, at every open of any version (no version
 * step: an older daemon reading the file just has one more index).
 * outbox_expiry holds only pending rows, ordered by expiry, so the
 * once-a-second expiry check (store_outbox_expire) reads the few rows
 * that expired instead of every pending row; it stays as small as the
 * pending set, so its pages stay hot.
 * audit_nodes holds the audit log's Merkle tree nodes of height 8 and up
 * (daemon/audittree.c), so the daemon keeps only the tree's right edge in
 * memory.  It is derived from the audit entries and checked, and filled
 * where missing, at every start (ledger.c): an older daemon that ignores
 * it leaves nothing wrong behind, so it needs no version step either.
 * outbox_due (version 1) is dropped: nothing walks (state,
 * next_attempt_ms) since a link catches up through outbox_partner
 * (outbox_pending since version 6), and the counts by state are kept
 * (store_counts.c), counted once at open; each outbox_due entry
 * was one more B-tree insert
 * per event and a delete and an insert per receipt.  A daemon of
 * version 5 opening a version 5 file still counted (through
 * outbox_partner and a sort), so no version step was needed for that.
 * On a large file the first open after the upgrade
 * frees the index's pages in its migration transaction (zeroed:
 * secure_delete), once.
 * expectations_link (version 5) becomes expectations_link_sent (link_id,
 * sent_ms): an answer looks up the oldest open expectation of its case
 * (store_cases.c ST_EXP_BY_REF, ORDER BY sent_ms LIMIT 1) for every event
 * received, and without sent_ms in the index each look-up built and tore
 * down a temporary B-tree to sort, 6.5% of the receiver; now it reads in
 * index order.  Any look-up by link_id alone, an older daemon's included,
 * uses the new index by its first column, so no version step.
 * expectations_answered and expectations_interim let the officer's
 * to-do list as of a past moment find the expectations still open then
 * (answered, or given an interim answer, after it) without walking the
 * history (store_cases.c ST_EXP_TODO; expectations_open has the ones
 * open now).  Both are keyed by the time of an answer that has just come
 * in, so an entry appends; a referral sent writes neither (both are
 * partial: no answer yet).
 */
static const char s_schema_perf[] =
	"CREATE INDEX IF NOT EXISTS outbox_expiry ON outbox (expires_ms)"
	" WHERE state = 1;"
	"DROP INDEX IF EXISTS outbox_due;"
	"CREATE TABLE IF NOT EXISTS audit_nodes ("
	" height INTEGER NOT NULL,"
	" idx INTEGER NOT NULL,"
	" hash BLOB NOT NULL,"
	" PRIMARY KEY (height, idx)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS expectations_link_sent ON expectations"
	" (link_id, sent_ms);"
	"DROP INDEX IF EXISTS expectations_link;"
	"CREATE INDEX IF NOT EXISTS expectations_answered ON expectations"
	" (answered_ms) WHERE answered_by IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS expectations_interim ON expectations"
	" (interim_ms) WHERE interim_by IS NOT NULL AND answered_by IS NULL;";

const char *
sq_schema_step(int version)
{
	static const char *const steps[] = { NULL, s_schema_v1, s_schema_v2,
	    s_schema_v3, s_schema_v4, s_schema_v5, s_schema_v6, s_schema_v7,
	    s_schema_v8, s_schema_v9 };

	return version >= 1 && version <= STORE_SCHEMA_VERSION ?
	    steps[version] : NULL;
}

/* What each step does, for the error of a failed migration. */
static const char *const s_step_names[] = { NULL, "the first tables",
    "idempotency keys", "answers in phases", "sealing case references at "
    "rest", "rows find their case by its link", "an index of the pending "
    "events", "own cases found by their pseudonym", "links found by "
    "8 bytes of their pseudonym", "the outbox's envelope and receipt "
    "in side tables" };
_Static_assert(sizeof(s_step_names) / sizeof(s_step_names[0]) ==
    STORE_SCHEMA_VERSION + 1, "a name for every schema step");

/* Create or check the schema in one BEGIN IMMEDIATE, so two processes
 * opening a new file cannot both create it. */
int
sq_migrate(store_t *s, kp_err_t *err)
{
	char sql[128], what[128];
	bool create = false;
	sqlite3_int64 ver = 0;
	int step;

	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return sq_open_fail(s, err, "begin");
	if (s_schema_check(s, &create, err) != 0 ||
	    sq_query_int(s, "PRAGMA user_version", &ver, err) != 0)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d;"
	    "PRAGMA user_version = %d;", STORE_APP_ID, STORE_SCHEMA_VERSION);
	if (create && (sqlite3_exec(s->db, s_schema_v1, NULL, NULL, NULL) !=
	    SQLITE_OK || sqlite3_exec(s->db, sql, NULL, NULL, NULL) !=
	    SQLITE_OK)) {
		sq_open_fail(s, err, "create schema");
		goto fail;
	}
	/* each step from the version found, in order */
	for (step = 2; step <= STORE_SCHEMA_VERSION; step++) {
		if (!create && ver >= step)
			continue;
		if (sqlite3_exec(s->db, sq_schema_step(step), NULL, NULL,
		    NULL) != SQLITE_OK || sqlite3_exec(s->db, sql, NULL, NULL,
		    NULL) != SQLITE_OK) {
			snprintf(what, sizeof(what), "migrate schema to "
			    "version %d (%s)", step, s_step_names[step]);
			sq_open_fail(s, err, what);
			goto fail;
		}
	}
	if (sqlite3_exec(s->db, s_schema_perf, NULL, NULL, NULL) != SQLITE_OK) {
		sq_open_fail(s, err, "create performance indexes");
		goto fail;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sq_open_fail(s, err, "commit schema");
		goto fail;
	}
	/* the clear values of an older file may still be in WAL frames:
	 * copy them out and truncate the log (best effort: a reader holding
	 * old pages delays it to the first purge's checkpoint) */
	if (!create && ver <= 3)
		(void)sqlite3_wal_checkpoint_v2(s->db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
