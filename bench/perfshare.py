#!/usr/bin/env python3
"""perfshare.py FILE [THREAD] [N] [--under FUNC]: where a thread's time goes.

Reads `perf script` output with call graphs (bench/thrprof.sh,
bench/drainprof.sh) and prints, for the samples of threads named THREAD
(default ketenpostd, the daemon's loop; kp-worker, kp-checkpoint and
ZMQbg/IO/0 are the others), the N functions (default 40) with the largest
inclusive share: the samples with the function anywhere on their stack.
With --under FUNC only the samples with FUNC on their stack count, so the
shares are of FUNC's time.  A thread's sample count is its CPU time at
the sampling rate (499 Hz: 2,000 samples in 4 s is one core).
"""
import collections
import signal
import sys


def samples(path, thread):
    """Each sample of `thread`: its stack's function names, leaf first."""
    stack, keep = [], False
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if keep:
                    yield stack
                stack, keep = [], False
            elif not line[0].isspace():
                keep = line.split()[0] == thread
            elif keep:
                parts = line.split()
                if len(parts) >= 2:
                    stack.append(parts[1].split("+")[0])
    if keep:
        yield stack


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # | head is fine
    args = sys.argv[1:]
    under = None
    if "--under" in args:
        i = args.index("--under")
        under = args[i + 1]
        del args[i:i + 2]
    if not args:
        sys.exit(__doc__)
    path = args[0]
    thread = args[1] if len(args) > 1 else "ketenpostd"
    top = int(args[2]) if len(args) > 2 else 40
    incl, n = collections.Counter(), 0
    for stack in samples(path, thread):
        if under is not None and under not in stack:
            continue
        n += 1
        incl.update(set(stack))
    print("%s: %d samples of %s%s" % (path, n, thread,
          " under " + under if under else ""))
    for fn, k in incl.most_common(top):
        print("  %5.1f%%  %s" % (100.0 * k / max(n, 1), fn))


if __name__ == "__main__":
    main()
