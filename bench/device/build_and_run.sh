#!/usr/bin/env bash
# On an accelerator machine (run from the repository root, with .device/ from pack.sh carried along):
# builds cuda_check from the core's sources against that machine's own LibTorch (Python's torch, with
# CUDA), runs it on the GPU and then on that machine's CPUs, and leaves the reports in $OUT.
#
#   bench/device/build_and_run.sh            # OUT defaults to /tmp/cuda_check_out
# Overrides for trying the build elsewhere: PYTHON, TORCH_INCLUDES, TORCH_LIBDIR, DEVICE, CPU_RUN=0.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/cuda_check_out}
WORK=${WORK:-/tmp/veriface-cuda}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK/obj"
tar -xJf .device/deps.tar.xz -C "$WORK" && tar -xJf .device/inputs.tar.xz -C "$WORK" || exit 1

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -3
  g++ --version | head -1
  nproc
  $PYTHON -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)' 2>&1
} | tee "$OUT/machine.txt"

if [[ -z ${TORCH_LIBDIR:-} ]]; then
  torch_dir=$($PYTHON -c 'import os, torch; print(os.path.dirname(torch.__file__))') || exit 1
  TORCH_INCLUDES="$torch_dir/include $torch_dir/include/torch/csrc/api/include"
  TORCH_LIBDIR=$torch_dir/lib
fi
abi=$($PYTHON -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null || echo 1)
torch_libs=(-ltorch -ltorch_cpu -lc10)
[[ -e $TORCH_LIBDIR/libtorch_cuda.so ]] && torch_libs=(-ltorch -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10)

flags=(-std=c++17 -O2 -fPIC -DNDEBUG -D_GLIBCXX_USE_CXX11_ABI="$abi" -I"$ROOT" -w)
for d in $TORCH_INCLUDES; do flags+=(-isystem "$d"); done
flags+=(-isystem "$WORK/include" -isystem "$WORK/include/opencv4")
sources=(core/common/*.cc core/tfjs/*.cc core/nn/*.cc core/detect/*.cc core/align/*.cc core/embed/*.cc core/batch/*.cc
         core/serving/batched_engine.cc trainer/bundle/*.cc
         core/model/*.cc bench/device/cuda_check.cc)
export WORK
compile() {  # source -> object; the log keeps the first errors
  local obj="$WORK/obj/$(echo "$1" | tr / _).o"
  g++ "${@:2}" -c "$1" -o "$obj" >"$obj.log" 2>&1 || { echo "FAILED $1"; head -40 "$obj.log"; return 1; }
}
export -f compile
start=$(date +%s)
printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -I{} bash -c 'compile "$@"' _ {} "${flags[@]}" |
  tee "$OUT/build.log"
grep -q FAILED "$OUT/build.log" && exit 1
absl=()
for lib in "$WORK"/lib/libabsl_*.so.*; do absl+=("-l:$(basename "$lib")"); done
g++ "$WORK"/obj/*.o -o "$WORK/cuda_check" -L"$TORCH_LIBDIR" -Wl,--no-as-needed "${torch_libs[@]}" -Wl,--as-needed \
  -L"$WORK/lib" -l:libopencv_imgproc.so.406 -l:libopencv_core.so.406 "${absl[@]}" -l:libcrypto.so.3 -pthread \
  -Wl,--disable-new-dtags -Wl,-rpath,"$TORCH_LIBDIR:$WORK/lib" 2>&1 | tee -a "$OUT/build.log" | head -40
[[ -x $WORK/cuda_check ]] || exit 1
echo "built in $(($(date +%s) - start)) s"

run() {  # device, report name, extra options (the carried libraries' own dependencies: LD_LIBRARY_PATH)
  LD_LIBRARY_PATH="$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$WORK/cuda_check" --model "$WORK/bundle-$1" --tfjs-weights .device/weights --goldens .device/goldens \
    --inputs "$WORK/inputs" --device "$1" --out "$OUT/$2.json" "${@:3}" 2>&1 | tee "$OUT/$2.txt"
}
run "${DEVICE:-cuda}" cuda_check
status=${PIPESTATUS[0]}
[[ ${CPU_RUN:-1} == 1 ]] && timeout 240 bash -c "$(declare -f run); WORK=$WORK OUT=$OUT run cpu cpu_check --seconds 0.3"
exit "$status"
