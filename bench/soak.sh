#!/usr/bin/env bash
#
# soak.sh: two ketenpostd daemons under an operator's bad day, then a count.
#
#   bench/soak.sh [--seconds N] [--bin DIR] [--rate N] [--keep]
#
# Leerplicht sends referrals to Halt through the real client for N seconds
# (default 60) while a chaos loop, every 1-4 s, does one of: kill -9 the
# sender or the receiver and start it again, SIGHUP either, or stop the
# receiver cleanly and start it again.  Then the chaos stops, both daemons
# run until the sender's outbox is settled (at most 120 s), and the script
# counts:
#   lost        acknowledged event ids (the client printed them) that are
#               not in Halt's inbox
#   duplicated  events stored twice: a case reference in Leerplicht's
#               outbox more than once, or an event id accepted more than
#               once in Halt's log
#   stuck       events still pending in Leerplicht's outbox at the end
#   phantom     events in Halt's inbox that Leerplicht never stored
# and verifies both audit logs with `ketenpost audit verify`.  One summary
# line on stdout; exit 0 if all counts are 0 and both logs verify.
#
# "A partner restarting with a changed certificate": ketenpost-certs has no
# re-issue (only org and revoke; a revoked OIN cannot get a new certificate
# from it), so the receiver restarts with the same certificate; that is
# what the restarts here are.  Not part of the test suite (it runs for
# minutes and its figures are measurements, not assertions).
#
set -euo pipefail

seconds=60
bin=
rate=20
keep=0
while [[ $# -gt 0 ]]; do
	case $1 in
	--seconds) seconds=$2; shift 2 ;;
	--bin) bin=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) sed -n '3,27p' "$0"; exit 0 ;;
	*) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${bin:-$here/build/bin}
for p in ketenpostd ketenpost ketenpost-certs; do
	[[ -x $bin/$p ]] || { echo "soak.sh: $bin/$p missing; build first" >&2; exit 2; }
done
command -v sqlite3 >/dev/null || { echo "soak.sh: sqlite3 shell needed" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kpsoak.XXXXXX")
LP=00000001001234567000
HALT=00000001002345678000
port=$((20000 + RANDOM % 20000))
declare -A pid conf log

cleanup() {
	local o
	for o in lp halt; do
		[[ -n ${pid[$o]:-} ]] && kill -9 "${pid[$o]}" 2>/dev/null || true
	done
	[[ -n ${sender:-} ]] && kill "$sender" 2>/dev/null || true
	[[ $keep -eq 1 ]] || rm -rf -- "$work"
}
trap cleanup EXIT

"$bin/ketenpost-certs" init --dir "$work/chain" >/dev/null
"$bin/ketenpost-certs" org --dir "$work/chain" --oin $LP --role leerplicht \
    --name "Soak Leerplicht" --endpoint "tcp://127.0.0.1:$port" >/dev/null
"$bin/ketenpost-certs" org --dir "$work/chain" --oin $HALT --role halt \
    --name "Soak Halt" --endpoint "tcp://127.0.0.1:$((port + 1))" >/dev/null
for o in lp halt; do
	oin=$LP; [[ $o == halt ]] && oin=$HALT
	conf[$o]=$work/chain/orgs/$oin/ketenpostd.conf
	log[$o]=$work/$o.log
	if grep -q '^\[delivery\]' "${conf[$o]}"; then
		sed -i 's/^\[delivery\]/[delivery]\nretry_initial = 200ms\nretry_max = 2s\nhead_interval = 1s/' "${conf[$o]}"
	else
		printf '\n[delivery]\nretry_initial = 200ms\nretry_max = 2s\nhead_interval = 1s\n' >> "${conf[$o]}"
	fi
done
state_lp=$work/chain/orgs/$LP/state
state_halt=$work/chain/orgs/$HALT/state

start() {
	"$bin/ketenpostd" --config "${conf[$1]}" >>"${log[$1]}" 2>&1 &
	pid[$1]=$!
}
kill9() { kill -9 "${pid[$1]}" 2>/dev/null || true; wait "${pid[$1]}" 2>/dev/null || true; }
stop() { kill -TERM "${pid[$1]}" 2>/dev/null || true; wait "${pid[$1]}" 2>/dev/null || true; }

start halt
start lp
sleep 1

# the sender: one client call per event, unique case references
payload=$here/docs/examples/referral.json
(
	i=0
	while :; do
		i=$((i + 1))
		if id=$("$bin/ketenpost" send referral --to $HALT --case "SOAK-$i" \
		    --json "$payload" --config "${conf[lp]}" --timeout 5 2>/dev/null); then
			echo "$id" >> "$work/acked"
		fi
		sleep "$(awk -v r="$rate" 'BEGIN { printf "%.3f", 1 / r }')"
	done
) &
sender=$!

kills=0 hups=0 restarts=0
end=$((SECONDS + seconds))
while [[ $SECONDS -lt $end ]]; do
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 1 + 3 * r / 32767 }')"
	o=lp; [[ $((RANDOM % 2)) -eq 0 ]] && o=halt
	case $((RANDOM % 3)) in
	0) kill9 $o; kills=$((kills + 1)); sleep 0.3; start $o ;;
	1) kill -HUP "${pid[$o]}" 2>/dev/null || true; hups=$((hups + 1)) ;;
	2) stop halt; restarts=$((restarts + 1)); sleep 0.5; start halt ;;
	esac
done
kill "$sender" 2>/dev/null || true
wait "$sender" 2>/dev/null || true
sender=

# let delivery finish, both daemons up
for o in lp halt; do
	kill -0 "${pid[$o]}" 2>/dev/null || start $o
done
sql() { sqlite3 -cmd '.timeout 5000' "$1/ketenpost.db" "$2"; }
settle_end=$((SECONDS + 120))
while [[ $SECONDS -lt $settle_end ]]; do
	pending=$(sql "$state_lp" "SELECT count(*) FROM outbox WHERE state = 1;")
	[[ $pending -eq 0 ]] && break
	sleep 1
done
stop lp
stop halt

touch "$work/acked"
sql "$state_halt" "SELECT lower(hex(event_id)) FROM inbox;" | sort > "$work/inbox"
sql "$state_lp" "SELECT lower(hex(event_id)) FROM outbox;" | sort > "$work/outbox"
tr -d '-' < "$work/acked" | tr 'A-F' 'a-f' | sort -u > "$work/acked.hex"
acked=$(wc -l < "$work/acked.hex")
stored=$(wc -l < "$work/outbox")
lost=$(comm -23 "$work/acked.hex" "$work/inbox" | wc -l)
phantom=$(comm -13 "$work/outbox" "$work/inbox" | wc -l)
stuck=$(sql "$state_lp" "SELECT count(*) FROM outbox WHERE state = 1;")
dead=$(sql "$state_lp" "SELECT count(*) FROM outbox WHERE state IN (3, 4);")
dup_case=$(sql "$state_lp" "SELECT count(*) FROM (SELECT case_sealed FROM outbox GROUP BY to_oin, case_sealed HAVING count(*) > 1);")
dup_acc=$(grep -o 'event [0-9a-f-]* type referral from [0-9]* accepted' "${log[halt]}" |
    awk '{ print $2 }' | sort | uniq -d | wc -l)
duplicated=$((dup_case + dup_acc))
audit_lp=failed audit_halt=failed
"$bin/ketenpost" audit verify "$state_lp" >"$work/verify-lp" 2>&1 && audit_lp=ok
"$bin/ketenpost" audit verify "$state_halt" >"$work/verify-halt" 2>&1 && audit_halt=ok

echo "soak: ${seconds}s, $stored stored ($acked acknowledged), $kills kill -9, $hups SIGHUP, $restarts receiver restarts (same certificate); lost $lost, duplicated $duplicated, stuck $stuck, phantom $phantom, rejected/dead $dead; audit verify: leerplicht $audit_lp, halt $audit_halt"
[[ $keep -eq 1 ]] && echo "soak: kept $work" >&2
[[ $lost -eq 0 && $duplicated -eq 0 && $stuck -eq 0 && $phantom -eq 0 &&
   $audit_lp == ok && $audit_halt == ok ]]
