#!/usr/bin/env bash
# Packs, on this (Debian) machine, what build_and_run.sh needs on an accelerator machine that has a CUDA
# LibTorch but none of this project's other dependencies and no network:
#   .device/deps.tar.xz   headers and shared libraries of OpenCV (core, imgproc), Abseil, OpenSSL's
#                         libcrypto, nlohmann-json and CLI11, with the libraries they load
#   .device/inputs.tar.xz the reference images as raw RGB (prepare_inputs.py)
#   .device/goldens/      the goldens (shared/ beside the checkout does not travel)
#   .device/weights/      face-api.js's tfjs weights, imported into a bundle there (a bundle written by
#                         this LibTorch 1.13 need not load in another LibTorch)
# .device/ is git-ignored; the device tool carries it: carry [".device"].
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
OUT=$ROOT/.device
LIBDIR=/usr/lib/x86_64-linux-gnu
rm -rf "$OUT" && mkdir -p "$OUT"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/include" "$stage/lib"
cp -r /usr/include/opencv4 /usr/include/absl /usr/include/nlohmann /usr/include/CLI "$stage/include/"
mkdir -p "$stage/include/openssl"
cp /usr/include/openssl/* /usr/include/x86_64-linux-gnu/openssl/* "$stage/include/openssl/"
libs=("$LIBDIR"/libopencv_core.so.406 "$LIBDIR"/libopencv_imgproc.so.406 "$LIBDIR"/libcrypto.so.3
      "$LIBDIR"/libabsl_*.so.20220623)
# What those load, less the C and C++ runtimes every Linux has (the newer ones there serve these too).
mapfile -t needed < <(ldd "${libs[@]}" 2>/dev/null | awk '/=>/ {print $3}' | sort -u |
  grep -Ev '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux-x86-64)\.so')
for lib in "${libs[@]}" "${needed[@]}"; do cp -L "$lib" "$stage/lib/$(basename "$lib")"; done
tar -C "$stage" -cJf "$OUT/deps.tar.xz" include lib

/usr/bin/python3 -c 'import cv2, numpy' 2>/dev/null ||
  { echo "prepare_inputs.py needs Debian's python3-opencv: apt-get install python3-opencv" >&2; exit 1; }
/usr/bin/python3 "$ROOT/bench/device/prepare_inputs.py" --goldens "$SHARED/reference/goldens" \
  --data "$SHARED/data" --out "$stage/inputs"
tar -C "$stage" -cJf "$OUT/inputs.tar.xz" inputs
cp -r "$SHARED/reference/goldens" "$OUT/goldens" && chmod -R u+w "$OUT/goldens"
weights=$(find "$ROOT/.cache/weights" -type d -path '*/package/weights' | head -1)
[[ -n $weights ]] || { echo "no tfjs weights under .cache/weights: run deploy/setup.sh first" >&2; exit 1; }
cp -r "$weights" "$OUT/weights"
du -sh "$OUT"
