#!/bin/bash
# drainprof.sh BIN TAG [EVENTS] [PORT]: a backlog of EVENTS (300000) queued by
# kpbench with the receiver down, then perf (call graphs, 499 Hz, 5 s) on
# both daemons during the drain, and each thread's CPU ticks before and
# after.  Output in /tmp/drainprof_TAG: snd.txt and rcv.txt (perf script),
# threads0/threads1 (pid tid name utime+stime), kpbench.txt.  BIN is a
# build's bin folder (kpbench and ketenpostd).  Needs perf (linux-perf).
set -u
BIN=$1; TAG=$2; N=${3:-300000}; PORT=${4:-33400}
OUT=/tmp/drainprof_$TAG WORK=/tmp/kpdp_$TAG
rm -rf "$OUT" "$WORK"; mkdir -p "$OUT" "$WORK"
ticks() {
	# a drain shorter than the window has ended: nothing to read
	for p in "$@"; do for t in /proc/"$p"/task/*; do
		[ -r "$t"/stat ] || continue
		echo "$p $(basename "$t") $(cat "$t"/comm) $(awk '{print $14+$15}' "$t"/stat)"
	done; done
}
"$BIN"/kpbench --bin "$BIN" --backlog "$N" --port-base "$PORT" --dir "$WORK" \
    > "$OUT"/kpbench.txt 2>&1 &
K=$!
R=
for _ in $(seq 1 1500); do   # the receiver starts once the backlog is queued
	R=$(pgrep -f "^[^ ]*/ketenpostd --config $WORK/.*/halt.conf" | head -1)
	[ -n "$R" ] && break
	sleep 0.2
done
S=$(pgrep -f "^[^ ]*/ketenpostd --config $WORK/.*/lp.conf" | head -1)
if [ -z "$S" ] || [ -z "$R" ]; then
	echo "drainprof: daemons not found" >&2
	kill "$K" 2>/dev/null
	exit 1
fi
sleep 4
ticks "$S" "$R" > "$OUT"/threads0
perf record -g --call-graph dwarf,16384 -F 499 -p "$S" -o "$OUT"/snd.data \
    -- sleep 5 2> "$OUT"/perf.err &
perf record -g --call-graph dwarf,16384 -F 499 -p "$R" -o "$OUT"/rcv.data \
    -- sleep 5 2>> "$OUT"/perf.err
wait %2 2>/dev/null
ticks "$S" "$R" > "$OUT"/threads1
wait "$K"
perf script -i "$OUT"/snd.data > "$OUT"/snd.txt 2>/dev/null
perf script -i "$OUT"/rcv.data > "$OUT"/rcv.txt 2>/dev/null
grep kpbench-summary "$OUT"/kpbench.txt
