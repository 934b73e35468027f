#!/usr/bin/env python3
"""outboxsim.py WALFRAMES_SO [--events N] [--runs R] [--layouts ABCDEF]

The WAL bytes per event that the sender's outbox costs, in today's layout
and in alternatives, measured on a synthetic store instead of a whole
kpbench run: each layout gets a fresh database with the real outbox table
and its indexes (copied from daemon/store_schema.c, version 8), and N
events go through the throughput run's pattern: inserts in transactions
of about 450 rows, and settles of the same size about 1,000 rows behind.

    A  today: the envelope and the receipt in the outbox row; the settle
       sets envelope = NULL and stores the receipt (ST_OB_SETTLE_ONE)
    B  the envelope in outbox_env (seq, envelope), DELETEd at the settle;
       the receipt stays in the outbox row
    C  B, with the settle's transaction under secure_delete = FAST
    D  outbox_env kept until retention (not deleted at the settle); the
       receipt appended to outbox_receipts; the outbox row's settle sets
       state, reason, receipt_digest, receipted_ms and updated_ms
    E  D, with receipt_digest, reason and receipted_ms in outbox_receipts:
       the outbox row's settle sets state and updated_ms only
    F  E, but the envelope DELETEd at the settle as in B (secure_delete =
       ON): the envelope's life as today

After the run, every row's retention ends and the purge (store_purge's
statement; in D and E also the envelope's delete) runs in passes of the
same size: what a layout defers to it is shown apart from the run.

Every layout runs in a child process with WALFRAMES_SO (bench/walframes)
preloaded, so every frame SQLite writes into the log is noted, as in
bench/walframes.py.  Unlike there, pages do move here (envelope pages are
freed and reused), so the child names the pages with dbstat after every
commit and each frame is charged to the B-tree that owned its page when
the commit that wrote it ended; "(freelist)" is a page freed by then.
Prints, per layout and run, the WAL bytes per event of each B-tree in
insert, settle and purge transactions, and the database's bytes per
event; then a summary.  About a minute for the default 2 runs of 6
layouts of 30,000 events.

Python's sqlite3 uses the system libsqlite3, as the daemon does, with the
daemon's settings (store.c s_configure).  Leaves nothing behind.

    bench/outboxsim.py build-bench/bin/walframes.so
"""
import argparse
import collections
import glob
import json
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile

PAGE_SIZE = 8192
FRAME = PAGE_SIZE + 24          # a WAL frame: header and page
BATCH = 450                     # rows per insert or settle transaction
LAG = 1000                      # rows a settle runs behind the inserts
ENVELOPE = 1600                 # at-rest sealed envelope at a 1 KiB payload
RECEIPT = 650                   # signed receipt (647 B in kpbench)
DAY_MS = 86400 * 1000

# The outbox table as a new store has it after every version step (the
# ALTERs of versions 2, 4 and 5 append their columns; version 4 drops
# route).  Kept as (name, declaration) so a layout can leave columns out
# while the rest keep their real declarations and order: the order is the
# record's, and so where in the row the settle's changes fall.
OUTBOX_COLUMNS = [
    ("seq", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    ("event_id", "BLOB NOT NULL UNIQUE CHECK (length(event_id) = 16)"),
    ("event_type", "INTEGER NOT NULL"),
    ("to_oin", "TEXT NOT NULL"),
    ("case_sealed", "TEXT NOT NULL"),
    ("case_ref", "BLOB NOT NULL CHECK (length(case_ref) = 32)"),
    ("in_reply_to", "BLOB CHECK (in_reply_to IS NULL OR "
     "length(in_reply_to) = 16)"),
    ("state", "INTEGER NOT NULL CHECK (state BETWEEN 1 AND 4)"),
    ("attempts", "INTEGER NOT NULL"),
    ("created_ms", "INTEGER NOT NULL"),
    ("expires_ms", "INTEGER NOT NULL"),
    ("next_attempt_ms", "INTEGER NOT NULL"),
    ("updated_ms", "INTEGER NOT NULL"),
    ("envelope_digest", "BLOB NOT NULL CHECK (length(envelope_digest) = 32)"),
    ("receipt_digest", "BLOB"),
    ("reason", "INTEGER NOT NULL DEFAULT 0"),
    ("receipted_ms", "INTEGER NOT NULL DEFAULT 0"),
    ("purpose", "TEXT NOT NULL"),
    ("legal_basis", "TEXT NOT NULL"),
    ("fields", "TEXT NOT NULL"),
    ("retention_until_ms", "INTEGER NOT NULL"),
    ("event_key", "BLOB"),
    ("envelope", "BLOB"),
    ("receipt", "BLOB"),
    ("idem_client", "TEXT"),
    ("idem_key", "TEXT"),
    ("idem_hash", "BLOB CHECK (idem_hash IS NULL OR length(idem_hash) = 32)"),
    ("route_sealed", "BLOB"),
    ("reduced_ms", "INTEGER NOT NULL DEFAULT 0"),
    ("link_id", "INTEGER"),
]

# Every index on outbox a version-8 store has (the versions' steps and
# s_schema_perf); the partial ones an insert or a settle skips are kept
# too, so the simulation cannot miss one that is written.
OUTBOX_INDEXES = [
    "CREATE INDEX outbox_retention ON outbox (retention_until_ms) "
    "WHERE event_key IS NOT NULL",
    "CREATE UNIQUE INDEX outbox_idem ON outbox (idem_client, idem_key) "
    "WHERE idem_key IS NOT NULL",
    "CREATE INDEX outbox_meta ON outbox (created_ms) "
    "WHERE event_key IS NULL AND reduced_ms = 0",
    "CREATE INDEX outbox_link ON outbox (link_id) WHERE link_id IS NOT NULL",
    "CREATE INDEX outbox_pending ON outbox (to_oin, state) WHERE state = 1",
    "CREATE INDEX outbox_rejected_dead ON outbox (state) "
    "WHERE state IN (3, 4)",
    "CREATE INDEX outbox_expiry ON outbox (expires_ms) WHERE state = 1",
]

# ST_OB_SETTLE_ONE's row match, the same in every layout (kp_settle_note
# only hands the row's audit fields over and returns :now).
SETTLE_WHERE = ("WHERE seq = :seq AND event_id = :event_id AND "
                "to_oin = :to_oin AND envelope_digest = :envelope_digest "
                "AND state = 1")

ENV_TABLE = "CREATE TABLE outbox_env (seq INTEGER PRIMARY KEY, envelope BLOB)"
ENV_INSERT = ("INSERT INTO outbox_env (seq, envelope) "
              "VALUES (last_insert_rowid(), :envelope)")
ENV_DELETE = "DELETE FROM outbox_env WHERE seq = :seq"

# ST_OB_PURGE's rows: the settled ones whose retention ended.
PURGED = ("WHERE retention_until_ms <= :cutoff AND event_key IS NOT NULL "
          "AND state <> 1")
PURGE_KEY = ("UPDATE outbox SET event_key = NULL " + PURGED,)
# where the envelope outlives the settle, the purge deletes it
PURGE_ENV = ("DELETE FROM outbox_env WHERE seq IN (SELECT seq FROM outbox "
             + PURGED + ")",) + PURGE_KEY

# settle: the statements per receipt; settle_secure: secure_delete in the
# settle's transaction; purge: the retention pass (store_purge), run on
# every row after the throughput run, so that what a layout defers to it
# is counted too.
LAYOUTS = {
    "A": dict(
        drop=(), tables=(), env_insert=None, settle_secure="ON",
        settle=("UPDATE outbox SET state = 2, reason = :reason, "
                "receipt_digest = :receipt_digest, receipt = :receipt, "
                "receipted_ms = :now, envelope = NULL, updated_ms = :now "
                + SETTLE_WHERE,),
        purge=("UPDATE outbox SET envelope = NULL, event_key = NULL "
               + PURGED,)),
    "B": dict(
        drop=("envelope",), tables=(ENV_TABLE,), env_insert=ENV_INSERT,
        settle_secure="ON",
        settle=(ENV_DELETE,
                "UPDATE outbox SET state = 2, reason = :reason, "
                "receipt_digest = :receipt_digest, receipt = :receipt, "
                "receipted_ms = :now, updated_ms = :now " + SETTLE_WHERE),
        purge=PURGE_KEY),
    "D": dict(
        drop=("envelope", "receipt"),
        tables=(ENV_TABLE, "CREATE TABLE outbox_receipts "
                "(seq INTEGER PRIMARY KEY, receipt BLOB)"),
        env_insert=ENV_INSERT, settle_secure="ON",
        settle=("INSERT INTO outbox_receipts (seq, receipt) "
                "VALUES (:seq, :receipt)",
                "UPDATE outbox SET state = 2, reason = :reason, "
                "receipt_digest = :receipt_digest, receipted_ms = :now, "
                "updated_ms = :now " + SETTLE_WHERE),
        purge=PURGE_ENV),
    "E": dict(
        drop=("envelope", "receipt", "receipt_digest", "reason",
              "receipted_ms"),
        tables=(ENV_TABLE, "CREATE TABLE outbox_receipts "
                "(seq INTEGER PRIMARY KEY, receipt_digest BLOB, "
                "reason INTEGER NOT NULL, receipted_ms INTEGER NOT NULL, "
                "receipt BLOB)"),
        env_insert=ENV_INSERT, settle_secure="ON",
        settle=("INSERT INTO outbox_receipts (seq, receipt_digest, reason, "
                "receipted_ms, receipt) VALUES (:seq, :receipt_digest, "
                ":reason, :now, :receipt)",
                "UPDATE outbox SET state = 2, updated_ms = :now "
                + SETTLE_WHERE),
        purge=PURGE_ENV),
}
# C differs from B only in the settle's secure_delete.  FAST zeroes a
# deleted cell in a page the transaction writes anyway, but not a page
# it frees: such a page keeps its old bytes in the file until reused, and
# in WAL mode, if the transaction had dirtied it before freeing it (a
# delete or a rebalance), it still goes into the log, cells and all (only
# the rollback journal's pager_write_pagelist skips PGHDR_DONT_WRITE).
LAYOUTS["C"] = dict(LAYOUTS["B"], settle_secure="FAST")
# F: E's outbox and receipts, but the envelope goes at the receipt, as
# today (secure_delete = ON): what E gains that does not come from
# keeping the envelope longer.
LAYOUTS["F"] = dict(LAYOUTS["E"], purge=PURGE_KEY,
                    settle=(ENV_DELETE,) + LAYOUTS["E"]["settle"])


def schema_sql(layout):
    cols = [c for c in OUTBOX_COLUMNS if c[0] not in layout["drop"]]
    table = "CREATE TABLE outbox (%s)" % ", ".join("%s %s" % c for c in cols)
    return [table] + OUTBOX_INDEXES + list(layout["tables"])


def insert_sql(layout):
    names = [c[0] for c in OUTBOX_COLUMNS[1:] if c[0] not in layout["drop"]]
    return "INSERT INTO outbox (%s) VALUES (%s)" % (
        ", ".join(names), ", ".join(":" + n for n in names))


class Events:
    """The rows of a kpbench throughput run: a referral to Halt, each on a
    new case (so a new link_id), time-ordered UUIDv7 ids, 16 events per
    millisecond.  Column sizes as the daemon stores them (store_seal.c:
    a 64-byte sealed case reference, a 44-byte sealed route; a 72-byte
    wrapped event key; the referral rule's purpose, basis and fields in
    policy/mas.ini), about 480 bytes besides the envelope."""

    FIELDS = ("route,referral_kind,absence_kind,duty_kind,feedback_due_days,"
              "absence_hours,age_years,parallel_routes")

    def __init__(self, rng):
        self.rng = rng
        self.t0 = 1_790_000_000_000

    def ms(self, seq):
        return self.t0 + seq // 16

    def row(self, seq):
        rb = self.rng.randbytes
        now = self.ms(seq)
        return dict(
            event_id=struct.pack(">Q", now)[2:] + rb(10), event_type=1,
            to_oin="00000001002345678000", case_sealed=rb(64),
            case_ref=rb(32), in_reply_to=None, state=1, attempts=0,
            created_ms=now, expires_ms=now + 7 * DAY_MS,
            next_attempt_ms=now, updated_ms=now, envelope_digest=rb(32),
            receipt_digest=None, reason=0, receipted_ms=0,
            purpose="mas.route_referral",
            legal_basis="EXAMPLE-lpw1969-art22", fields=self.FIELDS,
            retention_until_ms=now + 730 * DAY_MS, event_key=rb(72),
            envelope=rb(ENVELOPE), receipt=None, idem_client=None,
            idem_key=None, idem_hash=None, route_sealed=rb(44),
            reduced_ms=0, link_id=seq, seq=seq)


def owners(ro):
    """Page number -> B-tree name, of the last committed state; a page of
    the file that no B-tree holds is on the freelist (no auto_vacuum, so
    the file never shrinks)."""
    ro.execute("BEGIN")         # one snapshot for both reads
    pages = ro.execute("PRAGMA page_count").fetchone()[0]
    named = dict(ro.execute("SELECT pageno, name FROM dbstat"))
    ro.execute("COMMIT")
    return {p: named.get(p, "(freelist)") for p in range(1, pages + 1)}


def child(layout_name, seed, work, n):
    """One layout's run, in the process the preload watches.  Writes, per
    commit in order, its kind and the pages whose owner changed."""
    layout = LAYOUTS[layout_name]
    rng = random.Random(seed)
    db = os.path.join(work, "outbox.db")
    con = sqlite3.connect(db, isolation_level=None)
    # store.c s_configure; 32 MiB of log before a checkpoint, as the
    # daemon's checkpoint thread (STORE_WAL_SOFT)
    con.executescript(
        "PRAGMA page_size = %d; PRAGMA journal_mode = WAL;"
        "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;"
        "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8192;"
        "PRAGMA wal_autocheckpoint = %d;" % (PAGE_SIZE,
                                             32 * 1024 * 1024 // PAGE_SIZE))
    # a connection of its own, so naming the pages leaves the writer's
    # cache as the daemon's would be
    ro = sqlite3.connect("file:%s?mode=ro" % db, uri=True,
                         isolation_level=None)
    commits, known = [], {}

    def commit(kind):
        con.execute("COMMIT")
        now = owners(ro)
        diff = {p: name for p, name in now.items() if known.get(p) != name}
        known.clear()
        known.update(now)
        commits.append([kind, diff])

    con.execute("BEGIN IMMEDIATE")
    for sql in schema_sql(layout):
        con.execute(sql)
    commit("schema")

    events = Events(rng)
    ins, ins_env = insert_sql(layout), layout["env_insert"]
    pending = collections.deque()
    inserted = 0
    while inserted < n or pending:
        if inserted < n:
            # batches vary as a loop pass's do; the seed fixes them
            k = min(n - inserted, rng.randint(BATCH - 50, BATCH + 50))
            con.execute("BEGIN IMMEDIATE")
            for seq in range(inserted + 1, inserted + k + 1):
                row = events.row(seq)
                con.execute(ins, row)
                if ins_env:
                    con.execute(ins_env, row)
                pending.append(row)
            inserted += k
            commit("insert")
        # receipts come back about LAG rows behind, in seq order; at the
        # end the rest come in batches of the same size
        due = len(pending) - LAG if inserted < n else min(len(pending),
                                                           BATCH)
        if due <= 0:
            continue
        con.execute("PRAGMA secure_delete = " + layout["settle_secure"])
        con.execute("BEGIN IMMEDIATE")
        for _ in range(due):
            row = pending.popleft()
            args = dict(row, receipt=rng.randbytes(RECEIPT),
                        receipt_digest=rng.randbytes(32),
                        now=events.ms(inserted) + 500)
            for sql in layout["settle"]:
                con.execute(sql, args)
        commit("settle")
        con.execute("PRAGMA secure_delete = ON")

    pages = con.execute("PRAGMA page_count").fetchone()[0]
    free = con.execute("PRAGMA freelist_count").fetchone()[0]
    tree_pages = collections.Counter(known.values())

    # two years on, the retention pass in passes of the same size
    for hi in range(BATCH, n + BATCH, BATCH):
        con.execute("BEGIN IMMEDIATE")
        for sql in layout["purge"]:
            con.execute(sql, dict(cutoff=events.ms(min(hi, n)) +
                                  730 * DAY_MS))
        commit("purge")
    live = pages_purged = con.execute("PRAGMA page_count").fetchone()[0]
    live -= con.execute("PRAGMA freelist_count").fetchone()[0]
    ro.close()
    con.close()
    with open(os.path.join(work, "commits.json"), "w") as f:
        json.dump(dict(commits=commits, pages=pages, free=free,
                       tree_pages=tree_pages, pages_purged=pages_purged,
                       live=live, n=n), f)


def frames_by_commit(path):
    """The pages of each commit's frames, in commit order."""
    out, cur = [], []
    with open(path) as f:
        f.readline()
        for line in f:
            page, last = line.split()
            cur.append(int(page))
            if last == "1":
                out.append(cur)
                cur = []
    if cur:
        sys.exit("outboxsim: frames after the last commit in " + path)
    return out


def measure(so, layout_name, seed, n):
    """Runs one layout in a child with the preload; returns its bytes."""
    work = tempfile.mkdtemp(prefix="outboxsim.")
    try:
        env = dict(os.environ, WALFRAMES_DIR=work,
                   LD_PRELOAD=os.path.abspath(so))
        subprocess.run([sys.executable, os.path.abspath(__file__),
                        "--child", layout_name, str(seed), work, str(n)],
                       env=env, check=True)
        with open(os.path.join(work, "commits.json")) as f:
            run = json.load(f)
        frames = glob.glob(os.path.join(work, "frames.*"))
        if len(frames) != 1:
            sys.exit("outboxsim: %d frames files in %s" % (len(frames), work))
        written = frames_by_commit(frames[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(written) != len(run["commits"]):
        sys.exit("outboxsim: %d commits in the log, %d made" % (
            len(written), len(run["commits"])))
    owner, per = {}, collections.Counter()
    for (kind, diff), pages in zip(run["commits"], written):
        owner.update({int(p): name for p, name in diff.items()})
        for p in pages:
            name = owner[p]
            if p == 1:          # the header and sqlite_schema's root
                name = "(page 1: header)"
            per[(name, kind)] += 1
    return per, run


def report(layout_name, seed, per, run):
    """Prints one run's bytes per B-tree; returns its summary row."""
    n = run["n"]

    def b(name, kinds):
        """B/event of B-tree name (None: all) in transactions of kinds."""
        return sum(v for (nm, k), v in per.items() if k in kinds and
                   (name is None or nm == name)) * FRAME / n

    ran = ("insert", "settle")
    print("layout %s, seed %d: WAL %.0f B/event in the run (insert %.0f, "
          "settle %.0f), %.0f in the purge; database %.0f B/event after the "
          "run (%d pages, %d free), %.0f after the purge (%.0f in use)" % (
              layout_name, seed, b(None, ran), b(None, ("insert",)),
              b(None, ("settle",)), b(None, ("purge",)),
              run["pages"] * PAGE_SIZE / n, run["pages"], run["free"],
              run["pages_purged"] * PAGE_SIZE / n,
              run["live"] * PAGE_SIZE / n))
    # pages: the B-tree's after the run
    print("  %-28s %8s %8s %8s %8s %8s" % (
        "B-tree, B/event", "insert", "settle", "run", "purge",
        "pages"))
    names = sorted({nm for nm, k in per if k != "schema"},
                   key=lambda nm: (-b(nm, ran), -b(nm, ("purge",))))
    for name in names:
        print("  %-28s %8.0f %8.0f %8.0f %8.0f %8s" % (
            name, b(name, ("insert",)), b(name, ("settle",)), b(name, ran),
            b(name, ("purge",)), run["tree_pages"].get(name, "")))
    groups = collections.Counter()
    for (name, kind), k in per.items():
        if kind in ran:
            groups[group_of(name)] += k * FRAME / n
    return ((layout_name, seed) + tuple(groups[g] for g in GROUPS) +
            (b(None, ran), b(None, ("purge",)), run["pages"] * PAGE_SIZE / n,
             run["live"] * PAGE_SIZE / n))


# The summary's groups: the outbox table, its side tables, its indexes
# (sqlite_sequence is its AUTOINCREMENT's), the pages freed by the end of
# the commit that wrote them (zeroed under secure_delete = ON) and page
# 1, whose header changes with the file's size and freelist.
GROUPS = ("outbox", "side", "indexes", "freed", "page 1")


def group_of(tree):
    if tree == "outbox":
        return "outbox"
    if tree in ("outbox_env", "outbox_receipts"):
        return "side"
    if tree == "(freelist)":
        return "freed"
    if tree == "(page 1: header)":
        return "page 1"
    return "indexes"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(usage=__doc__.split("\n")[0])
    ap.add_argument("so", help="walframes.so (build-bench/bin)")
    ap.add_argument("--events", type=int, default=30000)
    ap.add_argument("--runs", type=int, default=2,
                    help="runs per layout, seeds 1..RUNS")
    ap.add_argument("--layouts", default="ABCDEF")
    a = ap.parse_args()
    if not os.path.exists(a.so):
        sys.exit("outboxsim: no preload at " + a.so)
    if set(a.layouts) - set(LAYOUTS):
        sys.exit("outboxsim: layouts are " + "".join(sorted(LAYOUTS)))
    rows = []
    for name in a.layouts:
        for seed in range(1, a.runs + 1):
            rows.append(report(name, seed, *measure(a.so, name, seed,
                                                    a.events)))
        print()
    print("B/event: WAL of the run (insert + settle) by group, its total, "
          "the purge's WAL; the database after the run, and its pages in "
          "use after the purge")
    print("%-6s %4s" % ("layout", "seed") + "".join(
        " %8s" % g for g in GROUPS + ("WAL run", "purge", "db run",
                                       "db used")))
    for row in rows:
        print("%-6s %4d" % row[:2] + "".join(" %8.0f" % v for v in row[2:]))


if __name__ == "__main__":
    main()
