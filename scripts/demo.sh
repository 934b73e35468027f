#!/usr/bin/env bash
# The ketenpost demo: a school-absence chain on loopback.
#
# Installs the dependencies, builds, makes a fresh chain CA and five
# organisations (an attendance department, Halt, RvdK, OM and a JBT) the way
# a real chain does (own keys, requests, one signed chain bundle), starts
# one ketenpostd per organisation, and plays the MAS feedback loop:
#   leerplicht -> Halt  referral        Halt -> leerplicht  halt_outcome
#   leerplicht -> RvdK  referral        RvdK -> leerplicht  rvdk_advice
#   leerplicht -> OM    referral (pv)   OM   -> leerplicht  om_decision
#   leerplicht -> JBT   jbt_request
#   leerplicht -> Halt  referral over the REST API, received by Halt's case
#                       system through a long poll (docs/INTEGRATION.md)
# then shows what each organisation received, the signed receipts the
# senders hold and a subject-access listing, stops every daemon, and checks
# every audit log offline (verify, and reconcile sender against receiver).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# KP_DEMO_BIN: programs already built (the test suite runs the demo so)
if [ -n "${KP_DEMO_BIN:-}" ]; then
  bin=$KP_DEMO_BIN
else
  scripts/install-deps.sh
  scripts/build.sh >/dev/null
  bin=$root/build/bin
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ketenpost-demo.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

LP=00000001001234567000; HALT=00000001002345678000; RVDK=00000001003456789000
OM=00000001004567890000; JBT=00000001005678901000
port=$(( 10000 + RANDOM % 20000 ))  # below the ephemeral port range

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "A chain CA, and five organisations that each make their own keys"
# As in a real chain (docs/TRUST.md): the CA's folder and each
# organisation's folder share nothing but the signed chain bundle. Each
# organisation makes its keys and a request in its own folder; the CA checks
# and signs the requests and publishes one bundle; every daemon reads it.
"$bin/ketenpost-certs" init --dir "$work/ca" --name "MAS-keten Voorbeeldregio" >/dev/null
mkdir -p "$work/shared"
declare -A NAME
mkorg() {  # oin role name port
  local d=$work/orgs/$1
  NAME[$1]=$3
  mkdir -p "$d" && chmod 0700 "$d"
  cp "$work/ca/ca.crt" "$d/ca.crt"  # handed over once; check its fingerprint
  "$bin/ketenpost-certs" request --dir "$d/keys" --ca "$d/ca.crt" --oin "$1" \
    --role "$2" --name "$3" --endpoint "tcp://127.0.0.1:$4" >/dev/null
  # the request travels to the CA; the certificate comes back in the bundle
  "$bin/ketenpost-certs" sign --dir "$work/ca" --request "$d/keys/request.csr" >/dev/null
  cat >"$d/ketenpostd.conf" <<CONF
[ketenpostd]
bundle = $work/shared/bundle
ca = $d/ca.crt
org = $1
org_dir = $d/keys
state_dir = $d/state
listen = tcp://127.0.0.1:$4
CONF
  printf '  %-22s %-11s %s\n' "$1" "$2" "$3"
}
mkorg $LP leerplicht "Gemeente Voorbeeldstad Leerplicht" $port
mkorg $HALT halt "Halt Voorbeeldregio" $((port + 1))
mkorg $RVDK rvdk "Raad voor de Kinderbescherming" $((port + 2))
mkorg $OM om "Openbaar Ministerie" $((port + 3))
mkorg $JBT jbt "Jeugdbeschermingstafel Voorbeeldstad" $((port + 4))
"$bin/ketenpost-certs" bundle --dir "$work/ca" --out "$work/shared/bundle"
echo "  secret keys in the CA's folder besides its own: $(find "$work/ca" -name '*.key' ! -path "$work/ca/ca/*" | wc -l)"

conf() { echo "$work/orgs/$1/ketenpostd.conf"; }

say "One ketenpostd per organisation"
for o in $LP $HALT $RVDK $OM $JBT; do
  "$bin/ketenpostd" --config "$(conf $o)" --check
  "$bin/ketenpostd" --config "$(conf $o)" 2>"$work/$o.log" &
  pids+=($!)
done
for o in $LP $HALT $RVDK $OM $JBT; do
  for _ in $(seq 100); do
    "$bin/ketenpost" status --config "$(conf $o)" --timeout 1 >/dev/null 2>&1 && break
    sleep 0.1
  done
done

kp() { local o=$1; shift; "$bin/ketenpost" "$1" --config "$(conf $o)" "${@:2}"; }
ex=$root/docs/examples

# Wait until the sender holds a signed receipt for event $2.
settled() {
  local state
  for _ in $(seq 100); do
    state=$(kp "$1" outbox | awk -v id="$2" '$1 == id { print $5 }')
    [ -n "$state" ] && [ "$state" != pending ] && return 0
    sleep 0.1
  done
  echo "demo: event $2 was not receipted in time" >&2
  return 1
}
last_inbox_id() { kp "$1" inbox | awk 'NR > 1 { id = $1 } END { print id }'; }

say "Leerplicht refers case LP-2026-0042 to Halt"
id=$(kp $LP send referral --to $HALT --case LP-2026-0042 --json "$ex/referral.json"); echo "  event $id"
settled $LP "$id"
say "Halt answers with its outcome (afloopbericht)"
rid=$(last_inbox_id $HALT)
id=$(kp $HALT send halt_outcome --to $LP --case HALT-2026-118 --reply-to "$rid" --json "$ex/halt_outcome.json"); echo "  event $id"
settled $HALT "$id"

say "Leerplicht consults RvdK on case LP-2026-0051; RvdK advises"
cat >"$work/rvdk-referral.json" <<'JSON'
{ "route": "dwang_civiel", "referral_kind": "rvdk_consult", "absence_kind": "langdurig_relatief",
  "absence_hours": 140, "age_years": 14, "duty_kind": "leerplicht",
  "help_offered": "refused", "feedback_due_days": 42 }
JSON
id=$(kp $LP send referral --to $RVDK --case LP-2026-0051 --json "$work/rvdk-referral.json"); echo "  event $id"
settled $LP "$id"
rid=$(last_inbox_id $RVDK)
id=$(kp $RVDK send rvdk_advice --to $LP --case RVDK-88412 --reply-to "$rid" --json "$ex/rvdk_advice.json"); echo "  event $id"
settled $RVDK "$id"

say "Leerplicht sends a pv on case LP-2026-0063 to OM; OM decides"
cat >"$work/om-referral.json" <<'JSON'
{ "route": "dwang_strafrechtelijk", "referral_kind": "pv", "pv_subject": "beide",
  "absence_kind": "wettelijk", "absence_hours": 96, "age_years": 16, "duty_kind": "leerplicht",
  "culpable": true, "help_offered": "refused", "feedback_due_days": 90 }
JSON
id=$(kp $LP send referral --to $OM --case LP-2026-0063 --json "$work/om-referral.json"); echo "  event $id"
settled $LP "$id"
rid=$(last_inbox_id $OM)
id=$(kp $OM send om_decision --to $LP --case PARKET-2026-5531 --reply-to "$rid" --json "$ex/om_decision.json"); echo "  event $id"
settled $OM "$id"

say "Leerplicht asks the JBT to discuss case LP-2026-0051"
id=$(kp $LP send jbt_request --to $JBT --case LP-2026-0051 --json "$ex/jbt_request.json"); echo "  event $id"
settled $LP "$id"

say "Case systems on the REST API: Halt's waits for new events, leerplicht's refers case LP-2026-0077"
# curl on the daemon's Unix socket (docs/INTEGRATION.md); JSON read with python3
rest() { local o=$1; shift; curl -sS --unix-socket "$work/orgs/$o/state/rest.sock" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
seen=$(rest $HALT 'http://localhost/api/v1/inbox?all=true' | json 'max([i["seq"] for i in d.get("items",[])] or [0])')
rest $HALT "http://localhost/api/v1/inbox?after_seq=$seen&wait=30" >"$work/halt-push.json" &
poll=$!
sleep 0.5
echo "  POST /api/v1/events with Idempotency-Key lp-cms-77"
rest $LP -X POST -H 'Content-Type: application/json' -H 'Idempotency-Key: lp-cms-77' \
  --data-binary "{\"event_type\":\"referral\",\"to_oin\":\"$HALT\",\"case_ref\":\"LP-2026-0077\",\"payload\":$(cat "$ex/referral.json")}" \
  http://localhost/api/v1/events | json '"  201 Created: event " + d["event_id"]'
wait $poll
echo "  Halt's long poll answered with:"
json '"\n".join("    %s %s from %s" % (i["event_id"], i["event_type"], i["from_oin"]) for i in d["items"])' <"$work/halt-push.json"
rid=$(json 'd["items"][0]["event_id"]' <"$work/halt-push.json")
rest $HALT -X PUT -H 'Content-Type: application/json' --data-binary '{"case_ref":"HALT-2026-131"}' \
  "http://localhost/api/v1/inbox/$rid/link" | json '"  filed under Halt case " + d["case_ref"]'
rest $HALT -X POST "http://localhost/api/v1/inbox/$rid/ack" | json '"  acknowledged: %d" % d["acknowledged"]'

for o in $HALT $RVDK $OM $JBT $LP; do
  say "What ${NAME[$o]} ($o) received"
  kp $o inbox
done
for o in $LP $HALT $RVDK $OM; do
  say "Outbox of ${NAME[$o]}: each event and its signed receipt"
  kp $o outbox
done
say "The officer's feedback: every case and what each route came to"
kp $LP cases
kp $LP case LP-2026-0063
say "What is expected, as of three months from now (planning with --at)"
kp $LP cases --overdue --at "$(date -u -d '+100 days' +%Y-%m-%dT%H:%M:%SZ)"

say "What leerplicht can tell the parents of case LP-2026-0042 (GDPR art. 15)"
kp $LP subject LP-2026-0042

say "Stopping the five daemons (each signs a last head of its audit log)"
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()

state() { echo "$work/orgs/$1/state"; }
say "The auditor's checks, offline: every log intact, and the two sides agree"
for o in $LP $HALT $RVDK $OM $JBT; do
  printf '  %-38s ' "${NAME[$o]}:"
  "$bin/ketenpost" audit verify "$(state $o)"
done
for o in $HALT $RVDK $OM $JBT; do
  printf '  reconcile leerplicht / %-22s ' "${NAME[$o]}:"
  "$bin/ketenpost" audit reconcile "$(state $LP)" "$(state $o)" | tail -n 1
done
say "Done"
