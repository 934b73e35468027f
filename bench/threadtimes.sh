#!/bin/bash
# threadtimes.sh BIN [EVENTS] [PORT]: where each thread's wall time goes in a
# throughput run (kpbench --events EVENTS, default 100000): for 4 s from
# 2 s after both daemons started, the share each thread of the sender,
# the receiver and kpbench spent running, waiting for a core (runnable,
# on the run queue) and off a core (sleeping: poll, a lock, I/O), from
# /proc/PID/task/TID/schedstat.  Threads that did nothing are left out.
# A thread that waits for a core is held back by the others, whatever
# its own work: the sender's loop is the one to watch.
set -u
BIN=$1; N=${2:-100000}; PORT=${3:-46500}
WORK=$(mktemp -d /tmp/kpthreads.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
. "$(dirname "$0")"/daemons.sh
kp_start "$BIN" "$WORK" "$PORT" --events "$N" || exit 1
snap() {
	for p in $S $R $K; do
		for t in /proc/"$p"/task/*; do
			read -r run wait _ < "$t"/schedstat 2>/dev/null || continue
			echo "$p/${t##*/} $(tr ' ' '_' < "$t"/comm) $run $wait"
		done
	done
}
sleep 2
snap | sort > "$WORK"/a
sleep 4
snap | sort > "$WORK"/b
wait "$K"
grep kpbench-summary "$WORK"/kpbench.txt | tr ' ' '\n' | grep -E '^(eps|events)='
join "$WORK"/a "$WORK"/b | awk -v S="$S" -v K="$K" '
	{ run = ($6 - $3) / 4e7; rq = ($7 - $4) / 4e7
	  if (run + rq < 0.5) next
	  who = ($1 ~ "^" S "/") ? "sender" : ($1 ~ "^" K "/") ? "kpbench" : "receiver"
	  printf "%-8s %-14s run %5.1f%%  waiting for a core %5.1f%%  off %5.1f%%\n",
	      who, $2, run, rq, 100 - run - rq }'
