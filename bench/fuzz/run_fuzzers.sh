#!/usr/bin/env bash
# Fuzzes every target in build-fuzz/ (cmake --preset fuzz; cmake --build build-fuzz --target veriface_fuzzers)
# for SECONDS each, one after another, starting from the committed seeds and regressions, and records
# libFuzzer's final statistics per target in OUT (JSON lines). Crashes land in build-fuzz/fuzz/crashes/:
# move each into fuzz/regressions/<target>/ with its fix.
#
# usage: bench/fuzz/run_fuzzers.sh OUT [SECONDS]   (default 600 s per target)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="$1" seconds="${2:-600}"
bin="$repo/build-fuzz/fuzz"
: >"$out"
for target in image_fuzzer tfjs_manifest_fuzzer model_spec_fuzzer config_fuzzer page_token_fuzzer service_fuzzer; do
  found="$bin/found/$target"
  mkdir -p "$found" "$bin/crashes"
  inputs=("$repo/fuzz/corpus/$target")
  [[ -d "$repo/fuzz/regressions/$target" ]] && inputs+=("$repo/fuzz/regressions/$target")
  log="$bin/$target.log"
  status=0
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 "$bin/$target" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="$bin/crashes/$target-" \
    "$found" "${inputs[@]}" >"$log" 2>&1 || status=$?
  awk -v t="$target" -v s="$seconds" -v rc="$status" '
    /^stat::number_of_executed_units/ {runs = $2}
    /^stat::new_units_added/ {units = $2}
    /^stat::peak_rss_mb/ {rss = $2}
    /cov: [0-9]+/ {for (i = 1; i < NF; i++) if ($i == "cov:") cov = $(i + 1)}
    END {printf "{\"target\": \"%s\", \"seconds\": %s, \"exit\": %s, \"runs\": %s, \"coverage\": %s, \"new_units\": %s, \"peak_rss_mb\": %s}\n",
         t, s, rc, runs + 0, cov + 0, units + 0, rss + 0}' "$log" | tee -a "$out"
done
