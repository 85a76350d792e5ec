#!/usr/bin/env bash
# Builds the unit, batcher, gallery, serving and gRPC server suites under a sanitizer preset (CMakePresets.json: asan
# is ASan + UBSan, tsan is ThreadSanitizer) and runs them, as issue 15 asks. Too long for the test
# command on 2 cores (each preset is a build of its own), so it is run by hand and recorded: the ctest
# summary, the sanitizer reports found in the output (there must be none) and the time each step took
# go to OUT.
#
# usage: bench/sanitize/run_suites.sh asan|tsan OUT
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
preset="$1" out="$2"
case "$preset" in asan | tsan) ;; *) echo "preset must be asan or tsan, not '$preset'" >&2; exit 2 ;; esac
cd "$repo"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

t0=$(date +%s)
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -- -j"$(nproc)" >"$log" 2>&1 || { tail -40 "$log" >&2; exit 1; }
t1=$(date +%s)
status=0
ctest --preset "$preset" -j"$(nproc)" >"$log" 2>&1 || status=$?
t2=$(date +%s)

# A sanitizer report goes to stderr, which ctest keeps for failed tests (outputOnFailure): any report
# fails its test (halt_on_error, -fno-sanitize-recover), and the grep below says which kind it was.
reports=$(grep -cE "^(==[0-9]+==ERROR: |WARNING: ThreadSanitizer|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer))|runtime error:" "$log" || true)
{
  echo "# bench/sanitize/run_suites.sh $preset ($(git rev-parse --short HEAD)$(git diff --quiet || echo ', with uncommitted changes'))"
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr); $(date -u +%FT%TZ)"
  echo "# build: $((t1 - t0)) s; tests: $((t2 - t1)) s; ctest exit $status; sanitizer reports: $reports"
  grep -E "tests passed|tests failed|^\s+[0-9]+ - |Total Test time" "$log" || true
  if [[ $status -ne 0 || $reports -ne 0 ]]; then
    echo "# the failing output:"
    grep -E -A30 "^(==[0-9]+==ERROR|WARNING: ThreadSanitizer)|runtime error:|\[  FAILED  \]" "$log" | head -300
  fi
} | tee "$out"
exit "$status"
