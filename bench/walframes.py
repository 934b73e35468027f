#!/usr/bin/env python3
"""walframes.py BIN [kpbench options]: the bytes each B-tree costs per event.

Runs BIN/kpbench (default: --events 30000) with BIN/walframes.so preloaded
into both daemons, keeps the run's folder, then names every page each daemon
wrote into its write-ahead log during the whole run by its B-tree (`dbstat`
on the store after the clean stop; pages do not move in a ketenpost store,
no VACUUM) and prints, per daemon, the frames and bytes per event of each
B-tree, most first, and how many times the commonest pages were written.
bench/walpages.py looks at one generation of a log copied mid-run instead.
What the WAL costs again (the checkpoint's copy into the database file) is
not counted here: kpbench's snd_write_b_per_ev has the total.

    bench/walframes.py build-bench/bin --events 30000 --port-base 47100

Needs Python's sqlite3 with dbstat (Debian's has it); leaves nothing behind.
"""
import collections
import glob
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile


def run(bindir, args):
    work = tempfile.mkdtemp(prefix="walframes.")
    env = dict(os.environ, WALFRAMES_DIR=work,
               LD_PRELOAD=os.path.join(os.path.abspath(bindir),
                                       "walframes.so"))
    if "--events" not in args and "--backlog" not in args:
        args = ["--events", "30000"] + args
    out = subprocess.run([os.path.join(bindir, "kpbench"), "--bin", bindir,
                          "--dir", work, "--keep"] + args, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, check=False).stdout
    return work, out


def events_of(summary):
    fields = dict(f.split("=", 1) for f in summary.split()[1:] if "=" in f)
    return int(fields.get("events") or fields.get("queued") or 0)


def names_of(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    return dict(con.execute("SELECT pageno, name FROM dbstat"))


def report(frames_file, n):
    with open(frames_file) as f:
        wal = f.readline()[2:].strip()
        pages = [int(line.split()[0]) for line in f]
    db = wal[:-len("-wal")]
    names = names_of(db)
    per_tree = collections.Counter(names.get(p, "(freed since)")
                                   for p in pages)
    psz = sqlite3.connect("file:%s?mode=ro" % db, uri=True).execute(
        "PRAGMA page_size").fetchone()[0]
    frame = psz + 24
    print("%s: %d frames, %.0f bytes per event" % (
        os.path.relpath(db, os.path.dirname(os.path.dirname(
            os.path.dirname(db)))), len(pages), len(pages) * frame / n))
    for name, k in per_tree.most_common(14):
        print("  %-34s %7d frames %7.0f B/event" % (name, k, k * frame / n))
    times = collections.Counter(collections.Counter(pages).values())
    print("  pages written k times (k: pages): " + ", ".join(
        "%d: %d" % kv for kv in sorted(times.items())[:8]))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    bindir, args = sys.argv[1], sys.argv[2:]
    work, out = run(bindir, args)
    try:
        summary = [l for l in out.splitlines()
                   if l.startswith("kpbench-summary")]
        if not summary:
            sys.exit("walframes: kpbench gave no summary:\n" + out)
        print(summary[0])
        n = events_of(summary[0])
        for frames_file in sorted(glob.glob(os.path.join(work, "frames.*"))):
            report(frames_file, n)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
