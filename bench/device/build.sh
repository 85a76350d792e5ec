#!/usr/bin/env bash
# On an accelerator machine (run from the repository root, with .device/ from pack.sh carried along):
# builds cuda_check, veriface-server, the veriface client (the load generator) and veriface-import from
# this checkout's sources against that machine's own LibTorch (Python's torch, with CUDA) and the
# libraries pack.sh packed, without CMake (that machine may have none). Leaves them in $WORK/bin and the
# compiler's log in $OUT/build.log.
#
# Overrides, for trying the build elsewhere (e.g. here, against Debian's LibTorch): PYTHON,
# TORCH_INCLUDES, TORCH_LIBDIR, OUT, WORK.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/veriface-device-out}
WORK=${WORK:-/tmp/veriface-device}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK/obj" "$WORK/bin"
tar -xJf .device/deps.tar.xz -C "$WORK" && tar -xJf .device/inputs.tar.xz -C "$WORK" || exit 1

if [[ -z ${TORCH_LIBDIR:-} ]]; then
  torch_dir=$($PYTHON -c 'import os, torch; print(os.path.dirname(torch.__file__))') || exit 1
  TORCH_INCLUDES="$torch_dir/include $torch_dir/include/torch/csrc/api/include"
  TORCH_LIBDIR=$torch_dir/lib
fi
# The packed libraries (gRPC, protobuf, Abseil...) were built with the C++11 ABI: a LibTorch without it
# cannot share std::string with them.
abi=$($PYTHON -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null || echo 1)
[[ $abi == 1 ]] || { echo "this LibTorch uses the pre-C++11 ABI; the packed libraries need the C++11 one" >&2; exit 1; }
torch_libs=(-ltorch -ltorch_cpu -lc10)
[[ -e $TORCH_LIBDIR/libtorch_cuda.so ]] && torch_libs=(-ltorch -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10)

# The definitions CMake gives these sources (spdlog and fmt as Debian builds them; the version string).
flags=(-std=c++17 -O2 -fPIC -fopenmp -DNDEBUG -D_GLIBCXX_USE_CXX11_ABI=1 -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL
       -DSPDLOG_SHARED_LIB -DFMT_SHARED '-DVERIFACE_VERSION="0.1.0-device"' -I"$ROOT" -I"$WORK/gen" -w)
for d in $TORCH_INCLUDES; do flags+=(-isystem "$d"); done
flags+=(-isystem "$WORK/include" -isystem "$WORK/include/opencv4")
mains=(server/server_main.cc client/client_main.cc trainer/import_main.cc bench/device/cuda_check.cc)
library=()
for f in core/*/*.cc server/*.cc client/*.cc trainer/bundle/*.cc trainer/plot/*.cc \
         "$WORK"/gen/veriface/v1/*.cc "$WORK"/gen/grpc_health/v1/*.cc; do
  [[ " ${mains[*]} " == *" $f "* ]] || library+=("$f")
done

obj_of() { echo "$WORK/obj/$(echo "${1#"$WORK"/}" | tr / _).o"; }
compile() {  # source, then flags; the log keeps the first errors
  local obj; obj=$(obj_of "$1")
  g++ "${@:2}" -c "$1" -o "$obj" >"$obj.log" 2>&1 || { echo "FAILED $1"; head -40 "$obj.log"; return 1; }
}
export WORK
export -f compile obj_of
start=$(date +%s)
printf '%s\n' "${library[@]}" "${mains[@]}" | xargs -P "$(nproc)" -I{} bash -c 'compile "$@"' _ {} "${flags[@]}" |
  tee "$OUT/build.log"
grep -q FAILED "$OUT/build.log" && exit 1
rm -f "$WORK/libveriface.a"
objects=()
for f in "${library[@]}"; do objects+=("$(obj_of "$f")"); done
ar rcs "$WORK/libveriface.a" "${objects[@]}"

absl=()
for lib in "$WORK"/lib/libabsl_*.so.*; do absl+=("-l:$(basename "$lib")"); done
libs=(-L"$WORK/lib" -lgrpc++_reflection -lgrpc++ -lgrpc -lgpr -lprotobuf -lprometheus-cpp-pull -lprometheus-cpp-core
      -lyaml-cpp -lspdlog -lfmt -lsqlite3 -lpq -l:libfaiss.a -lblas -llapack -lopencv_freetype -lopencv_imgcodecs
      -lopencv_imgproc -lopencv_core "${absl[@]}" -lssl -lcrypto -lgomp -pthread)
link() {  # executable, main source
  # The pack's libraries come first, so that a LibTorch folder holding its own copies of some does not
  # shadow them.
  rm -f "$WORK/bin/$1"
  g++ "$(obj_of "$2")" "$WORK/libveriface.a" -o "$WORK/bin/$1" -L"$WORK/lib" -L"$TORCH_LIBDIR" \
    -Wl,--no-as-needed "${torch_libs[@]}" -Wl,--as-needed "${libs[@]}" \
    -Wl,--disable-new-dtags -Wl,-rpath,"$WORK/lib:$TORCH_LIBDIR" 2>&1 |
    tee -a "$OUT/build.log" | head -40
  [[ -x $WORK/bin/$1 ]] || { echo "FAILED to link $1"; return 1; }
}
link veriface-server server/server_main.cc && link veriface client/client_main.cc &&
  link veriface-import trainer/import_main.cc && link cuda_check bench/device/cuda_check.cc || exit 1
echo "built in $(($(date +%s) - start)) s" | tee -a "$OUT/build.log"
