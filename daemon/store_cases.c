/*
 * store_cases.c: what the daemon knows about its own cases — links (local
 * case reference <-> per-partner pseudonym), expectations (answers awaited,
 * interim phases, reminders), the officer's absence record, the case list
 * and subject access across outbox and inbox.  See store.h, store_int.h.
 *
 * Invariant 7: a link never changes once written; per partner,
 * local <-> case_ref is one-to-one: the pseudonym by s_link_make, the
 * only insert of a link, which makes none if one with the partner has
 * the pseudonym (schema version 8: no unique index holds the pseudonym,
 * links_pseudonym holds its first 8 bytes), the reference by links_filed
 * for the links whose pseudonym came from the partner (own = 0) and by
 * store_link_ensure, which looks for a link of the reference of either
 * kind before it makes one (schema version 7: an own link, own = 1,
 * whose pseudonym is our keyed hash of the reference, is found through
 * that pseudonym instead of an index).
 * It is deleted once no row of its case with its partner keeps metadata
 * (store_meta_reduce).
 *
 * Every case reference is sealed per partner (store_seal.c): a lookup by
 * case computes its sealed value for each partner in meta_partners (which
 * store_outbox_insert and store_inbox_insert keep complete) and finds the
 * links (a filed one by links_filed, an own one by our pseudonym of the
 * case), then outbox and expectations rows by link_id (schema version 5;
 * since version 7 the only random-keyed index a new case of ours writes
 * is the one of links by pseudonym, since version 8 on its first 8
 * bytes), inbox rows by their own index; the case
 * list opens each (partner, sealed value) group once.  Rows handed out
 * carry the clear reference.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "pseudonym.h"
#include "store_int.h"
#include "util.h"

#define EXP_COLS "event_id, kp_case_open(partner_oin, case_sealed), " \
	"partner_oin, case_ref, sent_type, answer_type, " \
	"kp_route_open(event_id, route_sealed), sent_ms, due_ms, " \
	"answered_by, answered_ms, reminders, interim_by, interim_ms, " \
	"first_due_ms"

/* Column col holds case ?1 sealed for one of the partners the store has
 * rows of: one value per partner, found by the index on its first 8 bytes
 * (store_schema.c), then compared whole. */
#define CASE_ANY(col) "substr(" col ", 1, 8) IN (SELECT " \
	"substr(kp_case_seal(oin, ?1), 1, 8) FROM meta_partners) AND " col \
	" IN (SELECT kp_case_seal(oin, ?1) FROM meta_partners)"

/* The links of case ?1, one per partner it has one with: the ids outbox
 * and expectations rows refer to it by.  A filed link by links_filed, an
 * own one by its pseudonym (links_pseudonym, on its first 8 bytes: the
 * pseudonym computed once per partner, for the index's key).
 * CROSS JOIN keeps meta_partners (a few rows) the outer loop: the
 * planner would otherwise walk every link. */
#define LINKS_OF_CASE "SELECT l.id FROM meta_partners m CROSS JOIN " \
	"links l WHERE l.partner_oin = m.oin AND l.own = 0 AND " \
	"l.local_sealed = kp_case_seal(m.oin, ?1) UNION ALL " \
	"SELECT l.id FROM meta_partners m CROSS JOIN links l WHERE " \
	"substr(l.case_ref, 1, 8) = substr(kp_case_pseudonym(m.oin, ?1), 1, " \
	"8) AND l.partner_oin = m.oin AND l.case_ref = " \
	"kp_case_pseudonym(m.oin, ?1) AND l.own = 1 AND l.local_sealed = " \
	"kp_case_seal(m.oin, ?1)"

/* Statements of this file, prepared once by store_open (store.c). */
const char *const store_cases_sql[ST_COUNT] = {
	/* a filed link (own = 0) by links_filed */
	[ST_LINK_BY_LOCAL] = "SELECT case_ref, id FROM links WHERE "
	    "partner_oin = ?1 AND local_sealed = kp_case_seal(?1, ?2) AND "
	    "own = 0",
	/* the link with pseudonym ?2, and whether it is case ?3's; by
	 * links_pseudonym (its first 8 bytes), as every look-up by pseudonym */
	[ST_LINK_BY_PSEUDONYM] = "SELECT id, local_sealed = kp_case_seal(?1, "
	    "?3) FROM links WHERE substr(case_ref, 1, 8) = substr(?2, 1, 8) "
	    "AND partner_oin = ?1 AND case_ref = ?2",
	[ST_LINK_BY_REF] = "SELECT kp_case_open(partner_oin, local_sealed) "
	    "FROM links WHERE substr(case_ref, 1, 8) = substr(?2, 1, 8) AND "
	    "partner_oin = ?1 AND case_ref = ?2",
	/* nothing if a filed link has this reference (links_filed); that
	 * no link with partner ?1 has pseudonym ?3 is s_link_make's look-up
	 * just before (no unique index says so since schema version 8).  A
	 * NOT EXISTS here, as in version 8, made SQLite copy the row into a
	 * temporary table first (the statement reads the table it
	 * writes): 3.9 against 2.3 us per new link (docs/PERFORMANCE.md,
	 * thirteenth session) */
	[ST_LINK_INSERT] = "INSERT INTO links (partner_oin, local_sealed, "
	    "case_ref, own) VALUES (?1, kp_case_seal(?1, ?2), ?3, ?4) "
	    "ON CONFLICT DO NOTHING",
	[ST_SUBJECT] = "SELECT event_id, 1, to_oin, event_type, purpose, "
	    "legal_basis, fields, created_ms, state, coalesce((SELECT reason "
	    "FROM outbox_receipts r WHERE r.seq = outbox.seq), 0), "
	    "retention_until_ms, event_key IS NULL, in_reply_to, updated_ms "
	    "FROM outbox WHERE link_id IN (" LINKS_OF_CASE ") UNION ALL "
	    "SELECT event_id, 0, from_oin, event_type, purpose, legal_basis, "
	    "fields, received_ms, 0, 0, retention_until_ms, event_key IS NULL, "
	    "in_reply_to, received_ms "
	    "FROM inbox WHERE " CASE_ANY("case_sealed") " ORDER BY 8",
	[ST_EXP_PUT] = "INSERT OR IGNORE INTO expectations (event_id, "
	    "case_sealed, partner_oin, case_ref, sent_type, answer_type, "
	    "route_sealed, sent_ms, due_ms, link_id) VALUES (?1, "
	    CASE_SEALED_OF("?10", "?4", "?2") ", ?3, ?4, ?5, ?6, "
	    "kp_route_seal(?1, ?7), ?8, "
	    "?9, " LINK_OF("?10", "?4", "?2") ")",
	[ST_EXP_BY_REPLY] = "SELECT " EXP_COLS " FROM expectations WHERE "
	    "event_id = ?1 AND partner_oin = ?2 AND answer_type = ?3 AND "
	    "answered_by IS NULL",
	/* by the link of the pseudonym (links_pseudonym), then
	 * expectations_link_sent in sent_ms order: no sort */
	[ST_EXP_BY_REF] = "SELECT " EXP_COLS " FROM expectations WHERE "
	    "link_id = (SELECT id FROM links WHERE substr(case_ref, 1, 8) = "
	    "substr(?2, 1, 8) AND partner_oin = ?1 AND case_ref = ?2) AND "
	    "partner_oin = ?1 AND case_ref = ?2 AND answer_type = ?3 AND "
	    "answered_by IS NULL ORDER BY sent_ms LIMIT 1",
	[ST_EXP_CLOSE] = "UPDATE expectations SET answered_by = ?2, "
	    "answered_ms = ?3 WHERE event_id = ?1 AND answered_by IS NULL",
	[ST_EXP_OVERDUE] = "UPDATE expectations SET overdue_reported = 1 "
	    "WHERE answered_by IS NULL AND overdue_reported = 0 AND "
	    "due_ms <= ?1 RETURNING " EXP_COLS,
	[ST_EXP_BY_CASE] = "SELECT " EXP_COLS " FROM expectations WHERE "
	    "link_id IN (" LINKS_OF_CASE ") ORDER BY sent_ms",
	[ST_EXP_ALL] = "SELECT " EXP_COLS " FROM expectations ORDER BY sent_ms",
	/* the open ones due by ?1, by the partial index expectations_open in
	 * due order: no sort (ST_EXP_ALL sorts every row of the history in
	 * memory), and neither the case nor the route opened (EXP_COLS'
	 * positions, read as '' and 0) */
	[ST_EXP_OPEN_DUE] = "SELECT event_id, '', partner_oin, case_ref, "
	    "sent_type, answer_type, 0, sent_ms, due_ms, answered_by, "
	    "answered_ms, reminders, interim_by, interim_ms, first_due_ms "
	    "FROM expectations INDEXED BY expectations_open WHERE "
	    "answered_by IS NULL AND due_ms <= ?1 ORDER BY due_ms",
	[ST_EXP_REMINDED] = "UPDATE expectations SET reminders = reminders + 1 "
	    "WHERE event_id = ?1",
	/* per link (one partner and case), each reference opened once, in
	 * no set order (the caller groups per case): outbox rows by
	 * outbox_link in its order, inbox rows by inbox_case per link (every
	 * row with a case has its link: store_link_by_ref on receipt,
	 * store_link_put before store_link_file).  No temporary b-tree, and
	 * neither table scanned whole (an inbox row holds its payload). */
	[ST_CASES] = "SELECT kp_case_open(l.partner_oin, l.local_sealed), "
	    "count(*), max(o.created_ms) FROM outbox o INDEXED BY outbox_link "
	    "JOIN links l ON l.id = o.link_id WHERE o.link_id IS NOT NULL AND "
	    "o.created_ms <= ?1 GROUP BY o.link_id UNION ALL "
	    "SELECT kp_case_open(l.partner_oin, l.local_sealed), count(*), "
	    "max(i.received_ms) FROM links l CROSS JOIN inbox i WHERE "
	    "substr(i.case_sealed, 1, 8) = substr(l.local_sealed, 1, 8) AND "
	    "i.case_sealed = l.local_sealed AND i.from_oin = l.partner_oin "
	    "AND i.received_ms <= ?1 GROUP BY l.id",
	/* an interim answer: the phase is recorded, the expectation stays
	 * open with a new due time (the first one kept for as-of views) */
	[ST_EXP_INTERIM] = "UPDATE expectations SET interim_by = ?2, "
	    "interim_ms = ?3, first_due_ms = CASE WHEN interim_by IS NULL "
	    "THEN due_ms ELSE first_due_ms END, due_ms = ?4, "
	    "overdue_reported = 0 WHERE event_id = ?1 AND answered_by IS NULL",
	[ST_LINK_FILE] = "UPDATE inbox SET case_sealed = kp_case_seal(?1, ?3) "
	    "WHERE from_oin = ?1 AND case_ref = ?2 AND case_sealed = ''",
	[ST_ABS_PUT] = "INSERT OR REPLACE INTO absence_after (case_key, "
	    "absence, at_ms) VALUES (kp_absence_key(?1), ?2, ?3)",
	[ST_ABS_GET] = "SELECT absence, at_ms FROM absence_after WHERE "
	    "case_key = kp_absence_key(?1)",
	[ST_PARTNER_SEEN] = "INSERT OR IGNORE INTO meta_partners (oin) "
	    "VALUES (?1)",
	/* the expectations sent in [?1, ?2), in table order: no sort (the
	 * sorted ST_EXP_ALL held every row of the history in memory), and
	 * neither case nor route opened for a row outside the period */
	[ST_EXP_PERIOD] = "SELECT " EXP_COLS " FROM expectations WHERE "
	    "sent_ms >= ?1 AND sent_ms < ?2",
	/* what can be on the to-do list as of ?1, due by ?2: the open ones
	 * due by ?2 (expectations_open); those answered after ?1, open then
	 * (expectations_answered); open ones whose interim answer came after
	 * ?1, so due then at their first due time (expectations_interim).
	 * The three are disjoint; the caller checks each row as of ?1. */
	[ST_EXP_TODO] = "SELECT " EXP_COLS " FROM expectations INDEXED BY "
	    "expectations_open WHERE answered_by IS NULL AND due_ms <= ?2 AND "
	    "sent_ms <= ?1 UNION ALL SELECT " EXP_COLS " FROM expectations "
	    "INDEXED BY expectations_answered WHERE answered_by IS NOT NULL "
	    "AND answered_ms > ?1 AND sent_ms <= ?1 UNION ALL SELECT " EXP_COLS
	    " FROM expectations INDEXED BY expectations_interim WHERE "
	    "interim_by IS NOT NULL AND answered_by IS NULL AND interim_ms > ?1 "
	    "AND due_ms > ?2 AND sent_ms <= ?1",
	/* the reminders sent about expectation ?1 by ?3: they went to its
	 * partner on its case (cases_check_reply), so they are outbox rows
	 * of its link (outbox_link), not the whole case's timeline */
	[ST_REMINDERS] = "SELECT created_ms, fields FROM outbox WHERE "
	    "link_id = (SELECT link_id FROM expectations WHERE event_id = ?1) "
	    "AND in_reply_to = ?1 AND event_type = ?2 AND created_ms <= ?3",
};

/* The filed link (own = 0) of (partner_oin, local), by links_filed.
 * OUT: case_ref, *id (if not NULL), *found. */
static int
s_link_filed(store_t *s, const char *partner_oin, const char *local,
    uint8_t case_ref[32], uint64_t *id, bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_LINK_BY_LOCAL];
	int ret = -1;

	*found = false;
	if (sq_bind_text(st, 1, partner_oin, KP_OIN_LEN + 1) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC) != SQLITE_OK) {
		sq_fail(s, err, "link by local");
		goto out;
	}
	if (sq_step_one(s, st, "link by local", found, err) != 0)
		goto out;
	if (*found) {
		sq_col_blob(st, 0, case_ref, 32);
		if (id != NULL)
			*id = sq_col_u64(st, 1);
	}
	ret = 0;
out:
	sq_done(st);
	return ret;
}

/* The link with pseudonym `ref` with partner_oin, if any.  OUT: *id,
 * *found, *same (it is the link of `local`). */
static int
s_link_by_pseudonym(store_t *s, const char *partner_oin,
    const uint8_t ref[32], const char *local, uint64_t *id, bool *found,
    bool *same, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_LINK_BY_PSEUDONYM];
	int ret = -1;

	*found = *same = false;
	if (sq_bind_text(st, 1, partner_oin, KP_OIN_LEN + 1) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, ref, 32, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, local, -1, SQLITE_STATIC) != SQLITE_OK) {
		sq_fail(s, err, "link by pseudonym");
		goto out;
	}
	if (sq_step_one(s, st, "link by pseudonym", found, err) != 0)
		goto out;
	if (*found) {
		*id = sq_col_u64(st, 0);
		*same = sqlite3_column_int(st, 1) != 0;
	}
	ret = 0;
out:
	sq_done(st);
	return ret;
}

/* Our own pseudonym of `local` for partner_oin; OUT: *has (false for a
 * reference no pseudonym is made of: it can have no own link). */
static int
s_own_pseudonym(store_t *s, const char *partner_oin, const char *local,
    uint8_t own[32], bool *has, kp_err_t *err)
{
	*has = pseudonym_ref_valid(local) && kp_oin_valid(partner_oin);
	if (!*has)
		return 0;
	return sq_case_pseudonym(s, partner_oin, local, own, err);
}

/* The link of (partner_oin, local) of either kind: the filed one, else the
 * own one found by our pseudonym of `local`.  OUT: case_ref, *id (if not
 * NULL), *found. */
static int
s_link_by_local(store_t *s, const char *partner_oin, const char *local,
    uint8_t case_ref[32], uint64_t *id, bool *found, kp_err_t *err)
{
	uint8_t own[32];
	uint64_t own_id = 0;
	bool has = false, same = false;

	if (s_link_filed(s, partner_oin, local, case_ref, id, found, err) != 0)
		return -1;
	if (*found)
		return 0;
	if (s_own_pseudonym(s, partner_oin, local, own, &has, err) != 0)
		return -1;
	if (has && s_link_by_pseudonym(s, partner_oin, own, local, &own_id,
	    found, &same, err) != 0)
		return -1;
	*found = *found && same;
	if (*found) {
		memcpy(case_ref, own, 32);
		if (id != NULL)
			*id = own_id;
	}
	return 0;
}

int
store_link_by_local(store_t *s, const char *partner_oin, const char *local,
    uint8_t case_ref[32], bool *found, kp_err_t *err)
{
	return s_link_by_local(s, partner_oin, local, case_ref, NULL, found,
	    err);
}

int
store_link_by_ref(store_t *s, const char *partner_oin,
    const uint8_t case_ref[32], char local[65], bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_LINK_BY_REF];
	int ret = -1;

	*found = false;
	if (sq_bind_text(st, 1, partner_oin, KP_OIN_LEN + 1) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, case_ref, 32, SQLITE_STATIC) !=
	    SQLITE_OK) {
		sq_fail(s, err, "link by ref");
		goto out;
	}
	if (sq_step_one(s, st, "link by ref", found, err) != 0)
		goto out;
	if (*found)
		sq_col_text(st, 0, local, 65);
	ret = 0;
out:
	sq_done(st);
	return ret;
}

/*
 * Make link (partner_oin, local, case_ref, own), the only insert of a
 * link: none if a link with this partner has the pseudonym (looked up
 * here, in the caller's transaction, which holds the store's write lock)
 * or a filed one has this reference (links_filed).  OUT: *made; *id, the
 * new link's or the one holding the pseudonym; *same, that one is
 * local's.
 */
static int
s_link_make(store_t *s, const char *partner_oin, const char *local,
    const uint8_t case_ref[32], bool own, bool *made, uint64_t *id,
    bool *same, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_LINK_INSERT];
	bool found = false;
	int ret = -1;

	*made = false;
	if (strlen(local) > 64)
		return kp_fail(err, KP_ERR_INVALID_ARG, "store: case reference "
		    "longer than 64 bytes");
	if (s_link_by_pseudonym(s, partner_oin, case_ref, local, id, &found,
	    same, err) != 0)
		return -1;
	if (found)
		return 0;
	if (sq_bind_text(st, 1, partner_oin, KP_OIN_LEN + 1) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, case_ref, 32, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_bind_int(st, 4, own ? 1 : 0) != SQLITE_OK) {
		sq_fail(s, err, "link put");
		goto out;
	}
	if (sq_step_done(s, st, "link put", err) != 0)
		goto out;
	*made = sqlite3_changes(s->db) == 1;
	if (*made)
		*id = (uint64_t)sqlite3_last_insert_rowid(s->db);
	ret = 0;
out:
	sq_done(st);
	return ret;
}

static int
s_linked_differently(kp_err_t *err, const char *partner_oin,
    const char *local)
{
	return kp_fail(err, KP_ERR_INVALID_ARG, "store: case '%s' or its "
	    "pseudonym is already linked differently for partner %s", local,
	    partner_oin);
}

/*
 * A new case of our own (the candidate is our pseudonym of it: most
 * sends) costs a look-up in links_filed (small but for the links an
 * upgraded file made before version 7), one by the pseudonym and the
 * insert; a later send of the case finds its link by the pseudonym.  A
 * candidate from the partner (an answer to a received event) is inserted
 * only if the reference has no own link either.
 */
int
store_link_ensure(store_t *s, const char *partner_oin, const char *local,
    const uint8_t candidate[32], uint8_t case_ref[32], uint64_t *link_id,
    kp_err_t *err)
{
	uint8_t ours[32];
	uint64_t id = 0;
	bool valid = false, own, found = false, same = false, made = false;

	if (s_link_filed(s, partner_oin, local, case_ref, link_id, &found,
	    err) != 0)
		return -1;
	if (found)
		return 0;
	if (s_own_pseudonym(s, partner_oin, local, ours, &valid, err) != 0)
		return -1;
	own = valid && memcmp(candidate, ours, 32) == 0;
	/* the partner's pseudonym: an own link of the case wins over it */
	if (valid && !own && s_link_by_pseudonym(s, partner_oin, ours, local,
	    &id, &found, &same, err) != 0)
		return -1;
	if (found && same) {
		memcpy(case_ref, ours, 32);
		*link_id = id;
		return 0;
	}
	if (s_link_make(s, partner_oin, local, candidate, own, &made, &id,
	    &same, err) != 0)
		return -1;
	/* the pseudonym taken by another case, or the reference filed */
	if (!made && !same)
		return s_linked_differently(err, partner_oin, local);
	memmove(case_ref, candidate, 32);
	*link_id = id;
	return 0;
}

int
store_link_put(store_t *s, const char *partner_oin, const char *local,
    const uint8_t case_ref[32], kp_err_t *err)
{
	uint8_t have[32];
	uint64_t id = 0;

	if (store_link_ensure(s, partner_oin, local, case_ref, have, &id,
	    err) != 0)
		return -1;
	if (memcmp(have, case_ref, 32) != 0)
		return s_linked_differently(err, partner_oin, local);
	return 0;
}

static void
s_read_subject(sqlite3_stmt *st, subject_row_t *r)
{
	memset(r, 0, sizeof(*r));
	sq_col_blob(st, 0, r->event_id, 16);
	r->sent = sqlite3_column_int(st, 1) != 0;
	sq_col_text(st, 2, r->partner_oin, sizeof(r->partner_oin));
	r->event_type = sqlite3_column_int(st, 3);
	sq_col_text(st, 4, r->purpose, sizeof(r->purpose));
	sq_col_text(st, 5, r->legal_basis, sizeof(r->legal_basis));
	sq_col_text(st, 6, r->fields, sizeof(r->fields));
	r->at_ms = sq_col_u64(st, 7);
	r->state = sqlite3_column_int(st, 8);
	r->reason = sqlite3_column_int(st, 9);
	r->retention_until_ms = sq_col_u64(st, 10);
	r->destroyed = sqlite3_column_int(st, 11) != 0;
	r->has_reply_to = sq_col_blob(st, 12, r->in_reply_to, 16);
	r->settled_ms = sq_col_u64(st, 13);
}

int
store_subject(store_t *s, const char *local, store_subject_cb cb, void *arg,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_SUBJECT];
	subject_row_t row;
	int rc, ret = -1;

	if (sq_bind_text(st, 1, local, strlen(local) + 1) != SQLITE_OK) {
		sq_fail(s, err, "subject");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s_read_subject(st, &row);
		if (cb(arg, &row) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sq_fail(s, err, "subject");
		goto out;
	}
	ret = 0;
out:
	sq_done(st);
	return ret;
}


static void
s_read_expect(sqlite3_stmt *st, expect_row_t *r)
{
	memset(r, 0, sizeof(*r));
	sq_col_blob(st, 0, r->event_id, 16);
	sq_col_text(st, 1, r->case_local, sizeof(r->case_local));
	sq_col_text(st, 2, r->partner_oin, sizeof(r->partner_oin));
	sq_col_blob(st, 3, r->case_ref, 32);
	r->sent_type = sqlite3_column_int(st, 4);
	r->answer_type = sqlite3_column_int(st, 5);
	r->route = sqlite3_column_int(st, 6);
	r->sent_ms = sq_col_u64(st, 7);
	r->due_ms = sq_col_u64(st, 8);
	r->answered = sq_col_blob(st, 9, r->answered_by, 16);
	r->answered_ms = sq_col_u64(st, 10);
	r->reminders = (uint32_t)sqlite3_column_int(st, 11);
	r->interim = sq_col_blob(st, 12, r->interim_by, 16);
	r->interim_ms = sq_col_u64(st, 13);
	r->first_due_ms = r->interim ? sq_col_u64(st, 14) : r->due_ms;
}

int
store_expect_put(store_t *s, const expect_row_t *r, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_EXP_PUT];
	uint64_t link = r->link_id;
	int rc = 0, ret = 0;

	if (sq_link_of(s, r->partner_oin, r->case_local, r->case_ref, &link,
	    err) != 0)
		return -1;

	rc |= sqlite3_bind_blob(st, 1, r->event_id, 16, SQLITE_STATIC);
	rc |= sq_bind_text(st, 2, r->case_local, sizeof(r->case_local));
	rc |= sq_bind_text(st, 3, r->partner_oin, sizeof(r->partner_oin));
	rc |= sqlite3_bind_blob(st, 4, r->case_ref, 32, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 5, r->sent_type);
	rc |= sqlite3_bind_int(st, 6, r->answer_type);
	rc |= sqlite3_bind_int(st, 7, r->route);
	rc |= sq_bind_u64(st, 8, r->sent_ms);
	rc |= sq_bind_u64(st, 9, r->due_ms);
	rc |= sq_bind_u64(st, 10, link);
	if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
		ret = sq_fail(s, err, "expectation");
	sq_done(st);
	return ret;
}

/* One row of a bound expectations SELECT; *found. */
static int
s_expect_one(store_t *s, sqlite3_stmt *st, expect_row_t *row, bool *found,
    kp_err_t *err)
{
	int ret = sq_step_one(s, st, "expectation", found, err);

	if (ret == 0 && *found)
		s_read_expect(st, row);
	sq_done(st);
	return ret;
}

/* The open expectation an answer is about: by in_reply_to, else the oldest
 * open one on the same pseudonym.  *found. */
static int
s_expect_find(store_t *s, const char *partner, int answer_type,
    const uint8_t *in_reply_to, const uint8_t case_ref[32], expect_row_t *row,
    bool *found, kp_err_t *err)
{
	sqlite3_stmt *st;

	*found = false;
	if (in_reply_to != NULL) {
		st = s->st[ST_EXP_BY_REPLY];
		if (sqlite3_bind_blob(st, 1, in_reply_to, 16, SQLITE_STATIC) ||
		    sq_bind_text(st, 2, partner, 21) ||
		    sqlite3_bind_int(st, 3, answer_type) ||
		    s_expect_one(s, st, row, found, err) != 0)
			return sq_fail(s, err, "expectation by reply");
	}
	if (!*found) {
		st = s->st[ST_EXP_BY_REF];
		if (sq_bind_text(st, 1, partner, 21) ||
		    sqlite3_bind_blob(st, 2, case_ref, 32, SQLITE_STATIC) ||
		    sqlite3_bind_int(st, 3, answer_type) ||
		    s_expect_one(s, st, row, found, err) != 0)
			return sq_fail(s, err, "expectation by case");
	}
	return 0;
}

int
store_expect_interim(store_t *s, const char *partner, int answer_type,
    const uint8_t *in_reply_to, const uint8_t case_ref[32],
    const uint8_t interim_by[16], uint64_t at, uint64_t new_due_ms,
    expect_row_t *row, bool *found, kp_err_t *err)
{
	sqlite3_stmt *st;
	int ret = 0;

	if (s_expect_find(s, partner, answer_type, in_reply_to, case_ref, row,
	    found, err) != 0)
		return -1;
	if (!*found)
		return 0;
	st = s->st[ST_EXP_INTERIM];
	if (sqlite3_bind_blob(st, 1, row->event_id, 16, SQLITE_STATIC) ||
	    sqlite3_bind_blob(st, 2, interim_by, 16, SQLITE_STATIC) ||
	    sq_bind_u64(st, 3, at) || sq_bind_u64(st, 4, new_due_ms) ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = sq_fail(s, err, "interim answer");
	sq_done(st);
	return ret;
}

int
store_expect_answer(store_t *s, const char *partner, int answer_type,
    const uint8_t *in_reply_to, const uint8_t case_ref[32],
    const uint8_t answered_by[16], uint64_t at, expect_row_t *row,
    bool *found, kp_err_t *err)
{
	sqlite3_stmt *st;
	int ret = 0;

	if (s_expect_find(s, partner, answer_type, in_reply_to, case_ref, row,
	    found, err) != 0)
		return -1;
	if (!*found)
		return 0;
	st = s->st[ST_EXP_CLOSE];
	if (sqlite3_bind_blob(st, 1, row->event_id, 16, SQLITE_STATIC) ||
	    sqlite3_bind_blob(st, 2, answered_by, 16, SQLITE_STATIC) ||
	    sq_bind_u64(st, 3, at) || sqlite3_step(st) != SQLITE_DONE)
		ret = sq_fail(s, err, "close expectation");
	sq_done(st);
	return ret;
}

static int
s_walk_expect(store_t *s, sqlite3_stmt *st, store_expect_cb cb, void *arg,
    kp_err_t *err)
{
	expect_row_t row;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s_read_expect(st, &row);
		if (cb(arg, &row) != 0)
			break;
	}
	sq_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(s, err, "expectations");
	return 0;
}

int
store_expect_newly_overdue(store_t *s, uint64_t now, store_expect_cb cb,
    void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_EXP_OVERDUE];

	if (sq_bind_u64(st, 1, now) != SQLITE_OK) {
		sq_done(st);
		return sq_fail(s, err, "overdue");
	}
	return s_walk_expect(s, st, cb, arg, err);
}

int
store_expect_list(store_t *s, const char *case_local, store_expect_cb cb,
    void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[case_local ? ST_EXP_BY_CASE : ST_EXP_ALL];

	if (case_local != NULL && sq_bind_text(st, 1, case_local,
	    strlen(case_local) + 1) != SQLITE_OK) {
		sq_done(st);
		return sq_fail(s, err, "expectations");
	}
	return s_walk_expect(s, st, cb, arg, err);
}

int
store_expect_open_due(store_t *s, uint64_t now, store_expect_cb cb, void *arg,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_EXP_OPEN_DUE];

	if (sq_bind_u64(st, 1, now) != SQLITE_OK) {
		sq_done(st);
		return sq_fail(s, err, "open expectations due");
	}
	return s_walk_expect(s, st, cb, arg, err);
}

int
store_expect_period(store_t *s, uint64_t from, uint64_t to, store_expect_cb cb,
    void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_EXP_PERIOD];

	if (sq_bind_u64(st, 1, from) != SQLITE_OK ||
	    sq_bind_u64(st, 2, to) != SQLITE_OK) {
		sq_done(st);
		return sq_fail(s, err, "expectations of a period");
	}
	return s_walk_expect(s, st, cb, arg, err);
}

int
store_expect_todo(store_t *s, uint64_t at, uint64_t horizon,
    store_expect_cb cb, void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_EXP_TODO];

	if (sq_bind_u64(st, 1, at) != SQLITE_OK ||
	    sq_bind_u64(st, 2, horizon) != SQLITE_OK) {
		sq_done(st);
		return sq_fail(s, err, "to-do expectations");
	}
	return s_walk_expect(s, st, cb, arg, err);
}

int
store_reminders(store_t *s, const uint8_t event_id[16], int type,
    uint64_t at, int (*cb)(void *arg, uint64_t at_ms, const char *fields), void *arg,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_REMINDERS];
	char fields[STORE_FIELDS_MAX];
	int rc;

	if (sqlite3_bind_blob(st, 1, event_id, 16, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_bind_int(st, 2, type) !=
	    SQLITE_OK ||
	    sq_bind_u64(st, 3, at) != SQLITE_OK) {
		sq_done(st);
		return sq_fail(s, err, "reminders");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sq_col_text(st, 1, fields, sizeof(fields));
		if (cb(arg, sq_col_u64(st, 0), fields) != 0)
			break;
	}
	sq_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(s, err, "reminders");
	return 0;
}

int
store_expect_reminded(store_t *s, const uint8_t event_id[16], kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_EXP_REMINDED];
	int ret = 0;

	if (sqlite3_bind_blob(st, 1, event_id, 16, SQLITE_STATIC) ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = sq_fail(s, err, "reminder");
	sq_done(st);
	return ret;
}

int
store_cases(store_t *s, uint64_t at, int (*cb)(void *, const char *,
    uint32_t, uint64_t), void *arg, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_CASES];
	char local[65];
	int rc;

	if (sq_bind_u64(st, 1, at) != SQLITE_OK) {
		sq_done(st);
		return sq_fail(s, err, "cases");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sq_col_text(st, 0, local, sizeof(local));
		if (cb(arg, local, (uint32_t)sqlite3_column_int(st, 1),
		    sq_col_u64(st, 2)) != 0)
			break;
	}
	sq_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(s, err, "cases");
	return 0;
}

int
store_link_file(store_t *s, const char *partner_oin,
    const uint8_t case_ref[32], const char *local, uint32_t *n,
    kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_LINK_FILE];
	int ret = 0;

	*n = 0;
	if (sq_bind_text(st, 1, partner_oin, 21) ||
	    sqlite3_bind_blob(st, 2, case_ref, 32, SQLITE_STATIC) ||
	    sq_bind_text(st, 3, local, strlen(local) + 1) ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = sq_fail(s, err, "link file");
	else
		*n = (uint32_t)sqlite3_changes(s->db);
	sq_done(st);
	return ret;
}

int
store_absence_put(store_t *s, const char *case_local, int absence,
    uint64_t at, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_ABS_PUT];
	int ret = 0;

	if (sq_bind_text(st, 1, case_local, strlen(case_local) + 1) ||
	    sqlite3_bind_int(st, 2, absence) || sq_bind_u64(st, 3, at) ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = sq_fail(s, err, "absence outcome");
	sq_done(st);
	return ret;
}

int
store_absence_get(store_t *s, const char *case_local, int *absence,
    uint64_t *at, bool *found, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_ABS_GET];
	int ret;

	*found = false;
	if (sq_bind_text(st, 1, case_local, strlen(case_local) + 1) !=
	    SQLITE_OK) {
		sq_done(st);
		return sq_fail(s, err, "absence outcome");
	}
	ret = sq_step_one(s, st, "absence outcome", found, err);
	if (ret == 0 && *found) {
		*absence = sqlite3_column_int(st, 0);
		*at = sq_col_u64(st, 1);
	}
	sq_done(st);
	return ret;
}

static bool
s_partner_in(char (*list)[KP_OIN_LEN + 1], unsigned n, const char *oin)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], oin) == 0)
			return true;
	return false;
}

/* Add oin to list (of *n) if there is room; a partner left out only costs
 * its statement again. */
static void
s_partner_add(char (*list)[KP_OIN_LEN + 1], unsigned *n, const char *oin)
{
	if (*n >= STORE_PARTNERS_MEMO || s_partner_in(list, *n, oin))
		return;
	snprintf(list[*n], KP_OIN_LEN + 1, "%s", oin);
	(*n)++;
}

int
sq_partner_seen(store_t *s, const char *oin, kp_err_t *err)
{
	sqlite3_stmt *st = s->st[ST_PARTNER_SEEN];
	bool alone = sqlite3_get_autocommit(s->db) != 0;
	int ret = 0;

	/* meta_partners only grows (nothing deletes from it): a partner
	 * committed there stays */
	if (s_partner_in(s->partners_known, s->n_partners_known, oin) ||
	    (!alone && s_partner_in(s->partners_txn, s->n_partners_txn, oin)))
		return 0;
	if (sq_bind_text(st, 1, oin, KP_OIN_LEN + 1) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		ret = sq_fail(s, err, "partner seen");
	sq_done(st);
	if (ret == 0)   /* a statement of its own committed already */
		s_partner_add(alone ? s->partners_known : s->partners_txn,
		    alone ? &s->n_partners_known : &s->n_partners_txn, oin);
	return ret;
}

void
sq_partners_commit(store_t *s)
{
	unsigned i;

	for (i = 0; i < s->n_partners_txn; i++)
		s_partner_add(s->partners_known, &s->n_partners_known,
		    s->partners_txn[i]);
	s->n_partners_txn = 0;
}

void
sq_partners_forget(store_t *s)
{
	s->n_partners_txn = 0;
}

int
sq_link_of(store_t *s, const char *partner_oin, const char *local,
    const uint8_t case_ref[32], uint64_t *link_id, kp_err_t *err)
{
	uint8_t have[32];

	if (*link_id != 0 || local[0] == '\0')
		return 0;
	return store_link_ensure(s, partner_oin, local, case_ref, have,
	    link_id, err);
}
