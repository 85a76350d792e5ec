#!/usr/bin/env bash
# Soak: one real server under mixed load (verify, identify, enrol, delete, list) for a set time, with its
# resident memory sampled every 2 s and the load reported in windows of WINDOW seconds; then
# veriface-soak-report writes summary.json and two charts (memory, throughput and errors over time).
# Deletes take this run's own enrolments, so the gallery churns instead of only growing.
#
# usage: bench/server/soak.sh BUILD_DIR OUT_DIR [MINUTES [WINDOW_SECONDS]]   (default 30 minutes, 10 s)
#   BENCH_SOAK_MIX (default verify=3,identify=3,enroll=1,delete=1,list=1), BENCH_SOAK_CONCURRENCY (4),
#   BENCH_SOAK_IMAGES (LFW images sent, default 400); extra server overrides in BENCH_SERVER_SETS.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1" out="$2"
minutes="${3:-30}" window="${4:-10}"
# shellcheck source=bench/server/server_control.sh
source "$repo/bench/server/server_control.sh"
bench_workspace "$build"
report_bin="$build/bench/server/veriface-soak-report"
[[ -x "$report_bin" ]] || { echo "build $report_bin first" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/window-*.json "$out/windows.csv" "$out/rss.csv"

start_server soak
started=$(date +%s.%N)
since() { awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }

# Memory, every 2 s, for as long as the server runs.
echo "t_s,rss_kib" >"$out/rss.csv"
(
  while kill -0 "$server_pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status" 2>/dev/null) || break
    echo "$(since),$rss" >>"$out/rss.csv"
    sleep 2
  done
) &
sampler=$!

echo "index,start_s,end_s" >"$out/windows.csv"
end=$(awk -v s="$started" -v m="$minutes" 'BEGIN {printf "%.0f", s + m * 60}')
i=0
while (($(date +%s) < end)); do
  t0=$(since)
  # A window's exit status says whether every call succeeded; errors are counted in the report instead.
  "$client_bin" --server "127.0.0.1:$port" --timeout 60 --json load "$lfw" --max-images "${BENCH_SOAK_IMAGES:-400}" \
    --mix "${BENCH_SOAK_MIX:-verify=3,identify=3,enroll=1,delete=1,list=1}" -c "${BENCH_SOAK_CONCURRENCY:-4}" \
    -d "$window" --deadline 30 >"$out/window-$(printf %04d "$i").json" || true
  echo "$i,$t0,$(since)" >>"$out/windows.csv"
  i=$((i + 1))
done
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
# The log without its audit lines (one per write: thousands), which are only counted.
grep -v '] audit ' "$work/server-soak.log" >"$out/server.log" || true
grep -o '"method":"[A-Za-z]*"' "$work/server-soak.log" | sort | uniq -c >"$out/audited_writes.txt" || true
stop_server
"$report_bin" "$out" "soak: $minutes min, windows of $window s, $(nproc) cores, $(git -C "$repo" rev-parse --short HEAD)"
