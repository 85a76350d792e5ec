#!/usr/bin/env bash
# End to end through the real server: `veriface load` for Verify and Identify at several concurrencies,
# once with the configured dynamic batching and once with max_batch=1 for both stages, against the same
# server binary, model and images. Writes one JSON object (an array of runs) to OUT.
#
# usage: bench/server/run_server_load.sh BUILD_DIR IMAGE_LIST OUT [SECONDS_PER_RUN] [CONCURRENCIES]
#   IMAGE_LIST: image paths, one per line (the same list pipeline_throughput gets)
#   Environment: VERIFACE_MODEL_DIR (default models/default), BENCH_SERVER_SETS (extra --set overrides for
#   every variant, e.g. "inference.torch_threads=1"), BENCH_VARIANTS (default "batching max_batch_1").
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1" list="$2" out="$3"
seconds="${4:-20}"
concurrencies="${5:-1 4 16 64}"
model="${VERIFACE_MODEL_DIR:-$repo/models/default}"
server_bin="$build/server/veriface-server"
client_bin="$build/client/veriface"
for b in "$server_bin" "$client_bin"; do [[ -x "$b" ]] || { echo "missing $b" >&2; exit 1; }; done

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mapfile -t images <"$list"
runs="$work/runs.jsonl"
: >"$runs"

start_server() {  # variant name, then --set overrides
  local name="$1"
  shift
  rm -f "$work/ready.json" "$work/gallery.db"*
  local sets=(--set server.listen=127.0.0.1:0 --set metrics.listen=127.0.0.1:0 --set "server.ready_file=$work/ready.json")
  for s in ${BENCH_SERVER_SETS:-} "$@"; do sets+=(--set "$s"); done
  "$server_bin" --config "$repo/config/veriface.yaml" --model "$model" --gallery "$work/gallery.db" "${sets[@]}" \
    >"$work/server-$name.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 600); do
    [[ -s "$work/ready.json" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server-$name.log" >&2; exit 1; }
    sleep 0.1
  done
  port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc_port"])' "$work/ready.json")"
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
}

run_variant() {  # name, then --set overrides
  local name="$1"
  shift
  start_server "$name" "$@"
  # Identify needs a gallery: one template for each person of the list, enrolled in bulk.
  local people=()
  for f in "${images[@]}"; do people+=("$(dirname "$f")"); done
  "$client_bin" --server "127.0.0.1:$port" enroll --max-per-identity 1 "${people[@]}" >/dev/null
  for rpc in verify identify; do
    for c in $concurrencies; do
      echo "[bench] $name $rpc c=$c" >&2
      "$client_bin" --server "127.0.0.1:$port" --timeout 60 --json load --mix "$rpc=1" -c "$c" -d "$seconds" \
        --warmup "$((c * 2))" "${images[@]}" >"$work/run.json" || true
      python3 - "$work/run.json" "$name" "$rpc" "$*" >>"$runs" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r.update(variant=sys.argv[2], rpc=sys.argv[3], overrides=sys.argv[4])
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
    *) echo "unknown variant $variant" >&2; exit 2 ;;
  esac
done
python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])], indent=1))' "$runs" >"$out"
