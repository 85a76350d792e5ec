#!/usr/bin/env bash
# Goodput under overload (issue 15): Verify calls that succeed per second when the server is offered 4x
# and 10x what it can serve, against its peak, for one real server.
#   1. peak: closed loop at concurrency 16 (where the recorded server benchmark peaked);
#   2. closed loop at 4x and 10x that concurrency (64, 160): a sender whose call is refused waits out the
#      refusal's retry-after-ms, as a well-behaved client does; then c=64 once more with every refused call
#      sent again at once (--ignore-retry-after), the worst a client can do;
#   3. open loop (Poisson arrivals) at 4x and 10x the peak rate, at most 1024 calls in flight: arrivals
#      come when they come, whatever the server answers.
# Every call has a deadline of DEADLINE seconds (default 5). Writes one JSON object per run to OUT
# (JSON lines), then a summary line with each run's goodput as a fraction of the peak; the tail of the
# server's log goes to OUT's name with .server.log.
#
# usage: bench/server/overload.sh BUILD_DIR OUT [SECONDS_PER_RUN [DEADLINE]]   (default 60 s, 5 s)
#   extra server overrides in BENCH_SERVER_SETS; VERIFACE_SERVER_BIN/VERIFACE_CONFIG for an older binary.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1" out="$2"
seconds="${3:-60}" deadline="${4:-5}"
# shellcheck source=bench/server/server_control.sh
source "$repo/bench/server/server_control.sh"
bench_workspace "$build"
: >"$out"

server_log="${out%.jsonl}.server.log"
: >"$server_log"
start_server overload
cpu_seconds() {  # the CPU time a process has used, in clock ticks (utime + stime)
  awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
load() {  # run name, then veriface load arguments
  local name="$1"
  shift
  # A server that died in the previous run is recorded (with its log's tail) and started again, so that
  # one crash does not turn every later run into connection errors.
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "{\"run\": \"$name\", \"server_died_before_it\": true}" >>"$out"
    { echo "== server log before $name"; tail -50 "$work/server-overload.log"; } >>"$server_log"
    server_pid=""
    start_server overload
  fi
  # The CPU each side used: client and server share this machine's cores, so a client that sends
  # thousands of calls a second takes from the server's capacity too.
  local server_cpu_before
  server_cpu_before=$(cpu_seconds "$server_pid")
  /usr/bin/time -o "$work/$name.time" -f "%U %S" \
    "$client_bin" --server "127.0.0.1:$port" --timeout 60 --json load "$lfw" --max-images 200 --mix verify \
    --deadline "$deadline" -d "$seconds" "$@" >"$work/$name.json" || true
  local server_cpu=$(($(cpu_seconds "$server_pid") - server_cpu_before))
  /usr/bin/python3 - "$name" "$work/$name.json" "$work/$name.time" "$server_cpu" >>"$out" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[2]))
keep = ("concurrency", "offered_rate_per_s", "deadline_s", "elapsed_s", "calls", "ok", "skipped",
        "retry_waits", "throughput_per_s", "errors", "error_examples")
client_cpu = sum(float(x) for x in open(sys.argv[3]).read().split()[-2:])
print(json.dumps({"run": sys.argv[1], **{k: r.get(k) for k in keep}, "p50_ms": r["latency"]["p50_ms"],
                  "p99_ms": r["latency"]["p99_ms"], "server_cpu_s": int(sys.argv[4]) / os.sysconf("SC_CLK_TCK"),
                  "client_cpu_s": round(client_cpu, 2)}))
PY
  tail -1 "$out" >&2
}
# One unmeasured run first, so that the peak is not measured on a cold server.
"$client_bin" --server "127.0.0.1:$port" --timeout 60 load "$lfw" --max-images 200 --mix verify -c 16 -n 64 >/dev/null || true
load peak_closed_c16 -c 16
peak=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["throughput_per_s"])' "$out")
load closed_c64 -c 64
load closed_c160 -c 160
load closed_c64_ignoring_hints -c 64 --ignore-retry-after
load open_4x -c 1024 --rate "$(awk -v p="$peak" 'BEGIN {print 4 * p}')"
load open_10x -c 1024 --rate "$(awk -v p="$peak" 'BEGIN {print 10 * p}')"
stop_server
{ echo "== server log at the end"; tail -50 "$work/server-overload.log"; } >>"$server_log"
/usr/bin/python3 - "$out" <<'PY' | tee -a "$out"
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if "throughput_per_s" in l]
peak = runs[0]["throughput_per_s"]
print(json.dumps({"summary": {r["run"]: round(r["throughput_per_s"] / peak, 3) for r in runs[1:]},
                  "peak_per_s": peak}))
PY
