#!/bin/bash
# thrprof.sh BIN TAG [EVENTS] [PORT]: a throughput run (kpbench --events
# EVENTS, default 150000) with perf (call graphs by DWARF, 499 Hz, 4 s from
# 2 s after both daemons started) on the sender and on the receiver at
# once.  Output in /tmp/thrprof_TAG: snd.txt and rcv.txt (perf script),
# kpbench.txt.  Read them with bench/perfshare.py.  BIN is a build's bin
# folder.  Needs perf (linux-perf).
set -u
BIN=$1; TAG=$2; N=${3:-150000}; PORT=${4:-46200}
OUT=/tmp/thrprof_$TAG
WORK=$(mktemp -d /tmp/kpthrprof.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT"; mkdir -p "$OUT"
. "$(dirname "$0")"/daemons.sh
kp_start "$BIN" "$WORK" "$PORT" --events "$N" || exit 1
sleep 2
for side in snd rcv; do
	[ "$side" = snd ] && P=$S || P=$R
	perf record -g --call-graph dwarf,16384 -F 499 -p "$P" \
	    -o "$OUT"/$side.data -- sleep 4 2> "$OUT"/$side.err &
done
wait %2 %3 2>/dev/null
wait "$K"
cp "$WORK"/kpbench.txt "$OUT"/
for side in snd rcv; do
	perf script -i "$OUT"/$side.data 2>/dev/null > "$OUT"/$side.txt
	rm -f "$OUT"/$side.data
done
grep kpbench-summary "$OUT"/kpbench.txt
