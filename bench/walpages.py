#!/usr/bin/env python3
"""walpages.py WAL DB: which B-trees each commit in a SQLite WAL wrote.

A commit writes every page it changed, whole, into the write-ahead log, so
at low load the bytes per event follow the number of B-trees (tables and
indexes) an event touches, not the size of its rows.  This reads the
frames of the WAL's current generation (those with the header's salts),
groups them by commit, names each page's B-tree from DB (`dbstat`), and
prints the pages per commit of each B-tree and the commonest sets of
B-trees one commit touched.

Copy the WAL while the daemon runs (a clean stop checkpoints and removes
it), e.g. during `kpbench --events 6000 --rate 1000 --keep`:
    cp DIR/.../state/ketenpost.db-wal /tmp/x.wal
then, after the run, `walpages.py /tmp/x.wal DIR/.../state/ketenpost.db`.
Pages do not move in a ketenpost store (no VACUUM), so the names hold.
Needs Python's sqlite3 with the dbstat table (Debian's has it).
"""
import collections
import sqlite3
import struct
import sys


def btree_names(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    names = {}
    for pgno, name, ptype in con.execute(
            "SELECT pageno, name, pagetype FROM dbstat"):
        names[pgno] = name if ptype == "leaf" else "%s/%s" % (name, ptype)
    return names


def commits(wal):
    data = open(wal, "rb").read()
    if len(data) < 32:
        sys.exit("walpages: %s: no WAL header" % wal)
    _, _, psz, _, salt1, salt2 = struct.unpack(">IIIIII", data[:24])
    off, cur, out = 32, [], []
    while off + 24 + psz <= len(data):
        pgno, size_after, s1, s2 = struct.unpack(">IIII", data[off:off + 16])
        if (s1, s2) != (salt1, salt2):
            break               # frames of an earlier generation
        cur.append(pgno)
        if size_after != 0:     # a commit's last frame
            out.append(cur)
            cur = []
        off += 24 + psz
    return psz, out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    names = btree_names(sys.argv[2])
    psz, cms = commits(sys.argv[1])
    if not cms:
        sys.exit("walpages: no whole commit in %s" % sys.argv[1])
    print("page size %d, %d commits, %d frames" %
          (psz, len(cms), sum(map(len, cms))))
    per = collections.Counter()
    for cm in cms:
        for pgno in cm:
            per[names.get(pgno, "(new page %d)" % pgno)] += 1
    for name, n in per.most_common():
        print("%6.2f pages per commit  %s" % (n / len(cms), name))
    sets = collections.Counter(
        " ".join(sorted({names.get(p, "?") for p in cm})) for cm in cms)
    print("commonest sets of B-trees in one commit:")
    for s, n in sets.most_common(8):
        print("%5d  %s" % (n, s))


if __name__ == "__main__":
    main()
