#!/bin/bash
# flushcount.sh BIN [PORT]: kpbench paced at 1,000 events/s (12,000 events);
# after 4 s, the fdatasync and pwrite64 calls (SQLite's WAL and checkpoints
# use fdatasync) of each daemon counted for 4 s
# (perf stat on the syscall tracepoints): about 4,000 events' worth.
# BIN is a build's bin folder.  Needs perf (linux-perf).
set -u
BIN=$1; PORT=${2:-32700}
WORK=$(mktemp -d /tmp/kpflush.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
. "$(dirname "$0")"/daemons.sh
kp_start "$BIN" "$WORK" "$PORT" --events 12000 --rate 1000 || exit 1
sleep 4
count() {   # count SIDE PID
	perf stat -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_pwrite64 \
	    -p "$2" -- sleep 4 2>&1 | awk -v s="$1" '/sys_enter/ {print s, $1, $2}'
}
count sender "$S" &
count receiver "$R" &
wait %2 %3 2>/dev/null
wait "$K"
