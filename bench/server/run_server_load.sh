#!/usr/bin/env bash
# End to end through the real server: `veriface load` for Verify and Identify at several concurrencies,
# once with the configured dynamic batching and once with max_batch=1 for both stages, against the same
# server binary, model and images. Writes one JSON object (an array of runs) to OUT.
#
# usage: bench/server/run_server_load.sh BUILD_DIR IMAGE_LIST OUT [SECONDS_PER_RUN] [CONCURRENCIES]
#   IMAGE_LIST: image paths, one per line (the same list pipeline_throughput gets)
#   Environment: VERIFACE_MODEL_DIR (default models/default), BENCH_SERVER_SETS (extra --set overrides for
#   every variant, e.g. "inference.torch_threads=1"), BENCH_VARIANTS (default "batching max_batch_1"; also
#   "wide": larger batches, four detection workers and 256 calls in progress, for a GPU), BENCH_RPCS (default "verify identify";
#   also embed and enroll), BENCH_PROBE (a command run after each run whose output, one line, is kept as
#   the run's "probe": e.g. the GPU memory in use), VERIFACE_SERVER_BIN and VERIFACE_CLIENT_BIN (binaries
#   built elsewhere than BUILD_DIR).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1" list="$2" out="$3"
seconds="${4:-20}"
concurrencies="${5:-1 4 16 64}"
model="${VERIFACE_MODEL_DIR:-$repo/models/default}"
server_bin="${VERIFACE_SERVER_BIN:-$build/server/veriface-server}"
client_bin="${VERIFACE_CLIENT_BIN:-$build/client/veriface}"
for b in "$server_bin" "$client_bin"; do [[ -x "$b" ]] || { echo "missing $b" >&2; exit 1; }; done

work="$(mktemp -d)"
# shellcheck source=bench/server/server_control.sh
source "$repo/bench/server/server_control.sh"
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mapfile -t images <"$list"
runs="$work/runs.jsonl"
: >"$runs"

run_variant() {  # name, then --set overrides
  local name="$1"
  shift
  start_server "$name" "$@"
  # Identify needs a gallery: one template for each person of the list, enrolled in bulk.
  local people=()
  for f in "${images[@]}"; do people+=("$(dirname "$f")"); done
  # Any quality: the gallery is there to be searched, and a refused photo would stop the run.
  "$client_bin" --server "127.0.0.1:$port" enroll --max-per-identity 1 --min-quality low "${people[@]}" >/dev/null
  for rpc in ${BENCH_RPCS:-verify identify}; do
    for c in $concurrencies; do
      echo "[bench] $name $rpc c=$c" >&2
      "$client_bin" --server "127.0.0.1:$port" --timeout 60 --json load --mix "$rpc=1" -c "$c" -d "$seconds" \
        --warmup "$((c * 2))" "${images[@]}" >"$work/run.json" || true
      probe=""
      [[ -n ${BENCH_PROBE:-} ]] && probe="$(bash -c "$BENCH_PROBE" 2>&1 | tr '\n' ' ')"
      python3 - "$work/run.json" "$name" "$rpc" "$*" "$probe" >>"$runs" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r.update(variant=sys.argv[2], rpc=sys.argv[3], overrides=sys.argv[4])
if sys.argv[5]:
    r["probe"] = sys.argv[5].strip()
print(json.dumps(r))
PY
    done
  done
  stop_server
}

for variant in ${BENCH_VARIANTS:-batching max_batch_1}; do
  case "$variant" in
    batching) run_variant batching ;;
    max_batch_1) run_variant max_batch_1 inference.detect.max_batch=1 inference.embed.max_batch=1 ;;
    # A GPU's batches need more calls in progress than the CPU default of 16 lets in.
    wide) run_variant wide inference.detect.max_batch=16 inference.detect.workers=4 inference.embed.max_batch=128 \
      inference.embed.max_queue_delay_us=4000 limits.max_concurrent_calls=256 ;;
    *) echo "unknown variant $variant" >&2; exit 2 ;;
  esac
done
python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])], indent=1))' "$runs" >"$out"
