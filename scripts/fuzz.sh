#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS]: build the libFuzzer targets (clang, ASan +
# UBSan, -DKP_FUZZ=ON, into BUILD_DIR, default build-fuzz) and run each for
# SECONDS (default 60), one after the other, starting from the seed corpora
# made at build time and keeping what they find in BUILD_DIR/fuzz/corpus.
# A crash, leak or sanitizer report stops with a non-zero exit; the input
# that caused it is in BUILD_DIR/fuzz/crashes/<target>/ (replay it with
# BUILD_DIR/fuzz/bin/fuzz_<target> FILE).  Prints the executions per
# target.  FUZZ_TARGETS="envelope receipt" runs only those.
# KP_PROTOBUF_C_SOURCE=/path/protobuf-c.c (the source of the installed
# protobuf-c version, which Debian does not ship) compiles protobuf-c's
# parser into the targets, instrumented; without it they link the library
# and see little of it.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
case $secs in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;; esac
build_dir=${BUILD_DIR:-build-fuzz}
targets=${FUZZ_TARGETS:-envelope receipt event pbjson config policy api audit bundle pack}

command -v clang >/dev/null ||
  { echo "fuzz.sh: clang is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
BUILD_DIR=$build_dir CC=clang BUILD_TYPE=RelWithDebInfo scripts/build.sh \
  -DKP_FUZZ=ON -DKP_TESTS=OFF \
  ${KP_PROTOBUF_C_SOURCE:+-DKP_PROTOBUF_C_SOURCE=$KP_PROTOBUF_C_SOURCE} >/dev/null

fz=$build_dir/fuzz
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kpfuzz.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
total=0 failed=()
printf '%-10s %12s %8s %s\n' target executions exec/s result
for t in $targets; do
  mkdir -p "$fz/corpus/$t" "$fz/crashes/$t"
  log=$tmp/$t.log
  rc=0
  TMPDIR=$tmp "$fz/bin/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="$fz/crashes/$t/" "$fz/corpus/$t" "$fz/seeds/$t" \
    >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  result=ok
  if [ $rc -ne 0 ]; then
    result="FAILED (exit $rc)"
    failed+=("$t")
    cp "$log" "$fz/crashes/$t/last.log"
    grep -E '^==[0-9]+==|SUMMARY|runtime error' "$log" | head -5 >&2 || true
  fi
  printf '%-10s %12s %8s %s\n' "$t" "${runs:-?}" "${rate:-?}" "$result"
  total=$((total + ${runs:-0}))
done
echo "total executions: $total in ${secs}s per target"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failures in: ${failed[*]} (inputs and logs in $fz/crashes/)" >&2
  exit 1
fi
