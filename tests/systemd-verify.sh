#!/usr/bin/env bash
# systemd-analyze verify on the unit, with the built daemon and the man
# pages it documents put where systemd looks for them.  Exit 77 (skipped)
# where systemd-analyze is not installed.
set -euo pipefail
src=$1 bin=$2
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze: skipped"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/man/man1" "$tmp/man/man5" "$tmp/man/man8" "$tmp/unit"
cp "$src/docs/ketenpost.1" "$tmp/man/man1/"
cp "$src/docs/ketenpostd.conf.5" "$tmp/man/man5/"
cp "$src/docs/ketenpostd.8" "$tmp/man/man8/"
sed "s|/usr/bin/ketenpostd|$bin/ketenpostd|g" "$src/systemd/ketenpostd@.service" \
  >"$tmp/unit/ketenpostd@demo.service"
for want in Type=notify DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict \
    StateDirectory= RestrictAddressFamilies= SystemCallFilter= WatchdogSec= \
    LimitCORE=0; do
  case $want in
  DynamicUser=yes) grep -q '^User=ketenpost' "$tmp/unit/ketenpostd@demo.service" ||
    { echo "unit runs neither as DynamicUser nor as a dedicated user"; exit 1; } ;;
  *) grep -q "^$want" "$tmp/unit/ketenpostd@demo.service" ||
    { echo "unit lacks $want"; exit 1; } ;;
  esac
done
cd "$tmp/unit"
MANPATH="$tmp/man" systemd-analyze verify ./ketenpostd@demo.service
echo "systemd-analyze verify: ok"
