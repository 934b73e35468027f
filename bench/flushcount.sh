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
"$BIN"/kpbench --bin "$BIN" --events 12000 --rate 1000 --port-base "$PORT" \
    --dir "$WORK" > "$WORK"/kpbench.txt 2>&1 &
K=$!
S='' R=''
for _ in $(seq 1 100); do
	S=$(pgrep -f "^[^ ]*/ketenpostd --config $WORK/.*/lp.conf" | head -1)
	R=$(pgrep -f "^[^ ]*/ketenpostd --config $WORK/.*/halt.conf" | head -1)
	[ -n "$S" ] && [ -n "$R" ] && break
	sleep 0.2
done
if [ -z "$S" ] || [ -z "$R" ]; then
	echo "flushcount: daemons not found" >&2
	kill "$K" 2>/dev/null
	exit 1
fi
sleep 4
count() {   # count SIDE PID
	perf stat -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_pwrite64 \
	    -p "$2" -- sleep 4 2>&1 | awk -v s="$1" '/sys_enter/ {print s, $1, $2}'
}
count sender "$S" &
count receiver "$R" &
wait %2 %3 2>/dev/null
wait "$K"
