#!/usr/bin/env bash
# report-screenshot.sh: a PNG of the HTML report as a team lead sees it, so
# anyone can look at it without a daemon of their own.
#
#   scripts/report-screenshot.sh [OUT.png] [REPORT.html]
#
# Without REPORT.html it makes one: tools/simyear plays a simulated year
# of a municipality's chain (build/bin/simyear, real daemons, simulated
# clock), then the Leerplicht daemon is started once more at the year's end
# and `ketenpost report --html` asks it.  The PNG (default
# build/report.png) is made by headless Chromium at 1280 px wide, the
# whole page; LANG chooses the report's language as usual (default Dutch).
#
# The simulated year needs a build whose daemons honour the simulated
# clock (KETENPOST_CLOCK_FILE; where the tree has the KP_SIMULATED_CLOCK
# option, the build of scripts/test.sh).
#
# Chromium is installed here when missing (apt-get, needs root or sudo);
# it is not a build or CI dependency.  BUILD_DIR (default build) is where
# the binaries are.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$here/build}
out=${1:-$build/report.png}
html=${2:-}

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "report-screenshot: installing chromium" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
    --no-install-recommends chromium fonts-dejavu-core
  browser=$(command -v chromium)
fi

work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$html" ]; then
  "$build/bin/simyear" --reports 300 --seed 14 --bin "$build/bin" \
    --keep "$work/sim" >"$work/simyear.json"
  export KETENPOST_CLOCK_FILE="$work/sim/clock"
  "$build/bin/ketenpostd" --config "$work/sim/leerplicht.conf" \
    2>"$work/lp.log" &
  pid=$!
  html="$work/report.html"
  for _ in $(seq 1 100); do
    "$build/bin/ketenpost" status --config "$work/sim/leerplicht.conf" \
      >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$build/bin/ketenpost" report --html "$html" \
    --config "$work/sim/leerplicht.conf"
fi

# the page's height: tall enough for the whole report
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1280,4200 --screenshot="$out" "file://$html" \
  >/dev/null 2>&1
cp "$html" "${out%.png}.html"
echo "report-screenshot: $out (and ${out%.png}.html)"
