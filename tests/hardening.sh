#!/usr/bin/env bash
# The built programs are hardened, as CMakeLists.txt (KP_HARDEN) asks:
#   PIE (ELF type DYN), full RELRO (a GNU_RELRO segment and BIND_NOW),
#   stack canaries (__stack_chk_fail imported) and, in an optimised build,
#   _FORTIFY_SOURCE (checked libc calls, *_chk, imported);
# and the simulated clock is only in a build that asked for it: without
# KP_SIMULATED_CLOCK no binary holds the name KETENPOST_CLOCK_FILE (so no
# environment can move its time).  With the option on (the test suite's
# build), lib/util.c is compiled once more the release way to show that
# code then holds no trace of it either.
#
#   hardening.sh BIN_DIR FORTIFY(0|1) SIMULATED_CLOCK(ON|OFF) CC SOURCE_DIR
set -euo pipefail
bin=$1 fortify=$2 simclock=$3 cc=$4 src=$5
command -v readelf >/dev/null || { echo "no readelf: skipped"; exit 77; }
fail=0
bad() { echo "FAIL: $*"; fail=1; }

for prog in ketenpostd ketenpost; do
  f=$bin/$prog
  before=$fail
  [ -x "$f" ] || { bad "$f: not built"; continue; }
  readelf -h "$f" | grep -Eq 'Type:[[:space:]]+DYN' || bad "$prog: not PIE"
  readelf -lW "$f" | grep -q GNU_RELRO || bad "$prog: no GNU_RELRO segment"
  readelf -dW "$f" | grep -Eq '\(BIND_NOW\)|\(FLAGS(_1)?\).*NOW' ||
    bad "$prog: no BIND_NOW (partial RELRO only)"
  syms=$(readelf --dyn-syms -W "$f")
  grep -q '__stack_chk_fail' <<<"$syms" || bad "$prog: no stack protector"
  if [ "$fortify" = 1 ]; then
    n=$(grep -Ec ' __[a-z0-9_]+_chk(@|$)' <<<"$syms" || true)
    [ "$n" -gt 0 ] || bad "$prog: no _FORTIFY_SOURCE checked calls"
    [ $fail = "$before" ] &&
      echo "$prog: PIE, full RELRO, canaries, $n fortified libc calls"
  else
    [ $fail = "$before" ] &&
      echo "$prog: PIE, full RELRO, canaries (unoptimised: no _FORTIFY_SOURCE)"
  fi
  if [ "$simclock" = OFF ] && grep -aq KETENPOST_CLOCK_FILE "$f"; then
    bad "$prog: a release build holds the simulated clock"
  fi
  if [ "$simclock" = ON ] && [ "$prog" = ketenpostd ] &&
     ! grep -aq KETENPOST_CLOCK_FILE "$f"; then
    bad "$prog: KP_SIMULATED_CLOCK=ON, yet no simulated clock (is this check blind?)"
  fi
done

if [ "$simclock" = ON ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  "$cc" -std=c11 -D_GNU_SOURCE -O2 -c "$src/lib/util.c" -I"$src/lib" \
    -o "$tmp/util.o" $(pkg-config --cflags libsodium openssl 2>/dev/null)
  if grep -aq KETENPOST_CLOCK_FILE "$tmp/util.o"; then
    bad "lib/util.c compiled without KP_SIMULATED_CLOCK still reads the clock file"
  else
    echo "lib/util.c without KP_SIMULATED_CLOCK: no simulated clock"
  fi
fi
exit $fail
