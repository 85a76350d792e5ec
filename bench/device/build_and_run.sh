#!/usr/bin/env bash
# On an accelerator machine (run from the repository root, with .device/ from pack.sh carried along), in
# one call: builds everything from this checkout against that machine's own LibTorch (build.sh), runs
# cuda_check on the GPU (the core against the goldens, and its own batched rate), then the server on the
# GPU end to end (run_server.sh), and leaves every report in $OUT.
#
#   OUT=$OUT bench/device/build_and_run.sh
# Environment: OUT, WORK, PYTHON, TORCH_INCLUDES, TORCH_LIBDIR (build.sh); DEVICE (default cuda:0);
# SERVER_RUN=0 skips the server, CPU_RUN=1 adds cuda_check on that machine's CPUs; SECONDS_PER_RUN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export OUT=${OUT:-/tmp/veriface-device-out}
export WORK=${WORK:-/tmp/veriface-device}
DEVICE=${DEVICE:-cuda:0}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -3
  g++ --version | head -1
  nproc
  $PYTHON -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)' 2>&1
} | tee "$OUT/machine.txt"

bench/device/build.sh || exit 1

run() {  # device, report name, extra options (the carried libraries' own dependencies: LD_LIBRARY_PATH)
  LD_LIBRARY_PATH="$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$WORK/bin/cuda_check" --model "$WORK/bundle-$1" \
    --tfjs-weights .device/weights --goldens .device/goldens --inputs "$WORK/inputs" --device "$1" \
    --out "$OUT/$2.json" "${@:3}" 2>&1 | tee "$OUT/$2.txt"
}
core_device=${DEVICE%%:*}  # cuda_check takes "cuda" or "cpu"
timeout 240 bash -c "$(declare -f run); WORK=$WORK OUT=$OUT run $core_device cuda_check --seconds 0.5"
status=$?
if [[ ${SERVER_RUN:-1} == 1 ]]; then
  DEVICE=$DEVICE timeout 420 bench/device/run_server.sh || status=1
fi
[[ ${CPU_RUN:-0} == 1 ]] && timeout 240 bash -c "$(declare -f run); WORK=$WORK OUT=$OUT run cpu cpu_check --seconds 0.3"
exit "$status"
