#!/usr/bin/env bash
# Packs, on this (Debian) machine, what build_and_run.sh needs on an accelerator machine that has a CUDA
# LibTorch but none of this project's other dependencies and no network:
#   .device/deps.tar.xz   headers and shared libraries of everything the core, the server, the client and
#                         the importer link besides LibTorch (OpenCV, Abseil, gRPC, protobuf, prometheus-cpp,
#                         yaml-cpp, spdlog, fmt, SQLite, libpq, faiss, OpenSSL, nlohmann-json, CLI11), with
#                         the libraries they load; the C++ sources protoc makes from proto/ (made here, by
#                         the protoc that matches the packed libprotobuf)
#   .device/inputs.tar.xz the reference images as raw RGB (prepare_inputs.py) for cuda_check, and JPEGs
#                         for the server: the goldens' LFW images and two photos each of LFW people
#   .device/goldens/      the goldens (shared/ beside the checkout does not travel)
#   .device/weights/      face-api.js's tfjs weights, imported into a bundle there (a bundle written by
#                         this LibTorch 1.13 need not load in another LibTorch)
# .device/ is git-ignored; the device tool carries it: carry [".device"].
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
BUILD=${BUILD:-$ROOT/build}
LOAD_PEOPLE=${LOAD_PEOPLE:-100}
OUT=$ROOT/.device
LIBDIR=/usr/lib/x86_64-linux-gnu
for b in server/veriface-server client/veriface trainer/veriface-import; do
  [[ -x $BUILD/$b ]] || { echo "pack.sh reads the libraries to pack off $BUILD/$b: build it first" >&2; exit 1; }
done
rm -rf "$OUT" && mkdir -p "$OUT"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# ---- headers -------------------------------------------------------------------------------------------
mkdir -p "$stage/include" "$stage/lib" "$stage/gen"
for d in opencv4 absl nlohmann CLI grpc grpc++ grpcpp google prometheus yaml-cpp spdlog fmt faiss; do
  cp -r "/usr/include/$d" "$stage/include/"
done
cp /usr/include/sqlite3.h /usr/include/postgresql/{libpq-fe.h,postgres_ext.h,pg_config_ext.h} "$stage/include/"
mkdir -p "$stage/include/openssl"
cp /usr/include/openssl/* /usr/include/x86_64-linux-gnu/openssl/* "$stage/include/openssl/"

# ---- libraries -----------------------------------------------------------------------------------------
# Debian's OpenCV imgcodecs links GDAL and GDCM (GIS rasters, DICOM), which would pull in about 80 more
# libraries (130 MB). The server never reaches them: ReadImageHeader admits only JPEG, PNG, BMP, PNM and
# WebP before cv::imdecode runs, and GDAL is used only with IMREAD_LOAD_GDAL. So they are replaced by
# stubs that define the 25 functions imgcodecs imports from them (imgcodecs is linked with BIND_NOW, so
# every one must resolve at load) and abort loudly if one is ever called; all but GDALAllRegister, which
# imgcodecs calls once when it sets up its decoders and which has nothing to do here.
stubbed=(libgdal.so.32 libgdcmMSFF.so.3.0 libgdcmDSED.so.3.0)
runtime='^(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux-x86-64)\.so'
resolve() { for d in "$LIBDIR" /lib/x86_64-linux-gnu "$LIBDIR/blas" "$LIBDIR/lapack"; do
  [[ -e $d/$1 ]] && { echo "$d/$1"; return; }; done; echo "cannot find $1" >&2; return 1; }
declare -A seen=()
walk() {  # library path: copies it and, recursively, what it loads
  local name; name=$(basename "$1")
  [[ -n ${seen[$name]:-} ]] && return
  seen[$name]=1
  cp -L "$1" "$stage/lib/$name"
  local needed
  for needed in $(readelf -d "$1" | awk '/NEEDED/ {gsub(/[\[\]]/, "", $5); print $5}'); do
    [[ $needed =~ $runtime || $needed =~ ^lib(torch|c10) || " ${stubbed[*]} " == *" $needed "* ]] && continue
    walk "$(resolve "$needed")"
  done
}
for b in server/veriface-server client/veriface trainer/veriface-import; do
  for needed in $(readelf -d "$BUILD/$b" | awk '/NEEDED/ {gsub(/[\[\]]/, "", $5); print $5}'); do
    [[ $needed =~ $runtime || $needed =~ ^lib(torch|c10) ]] && continue
    walk "$(resolve "$needed")"
  done
done
# Development names for the link line there: libX.so -> the packed libX.so.N.
for lib in "$stage"/lib/*.so.*; do
  dev=${lib%%.so.*}.so
  [[ -e $dev ]] || ln -s "$(basename "$lib")" "$dev"
done
cp "$LIBDIR/libfaiss.a" "$stage/lib/"  # Debian ships faiss only as a static library

for lib in "${stubbed[@]}"; do
  src="$stage/stub-${lib%%.so*}.c"
  echo '#include <stdio.h>
#include <stdlib.h>
static void refuse(const char* what) { fprintf(stderr, "stub %s called: this pack has no GDAL/GDCM\n", what); abort(); }' >"$src"
  i=0
  join <(nm -D --undefined-only "$LIBDIR/libopencv_imgcodecs.so.406" | awk '{sub(/@.*/, "", $2); print $2}' | sort -u) \
       <(nm -D --defined-only "$(resolve "$lib")" | awk '$2 == "T" {sub(/@.*/, "", $3); print $3}' | sort -u) |
    while read -r sym; do
      body="refuse(\"$sym\");"
      [[ $sym == GDALAllRegister ]] && body=""
      echo "void stub$i(void) __asm__(\"$sym\"); void stub$i(void) { $body }" >>"$src"
      i=$((i + 1))
    done
  gcc -shared -fPIC -O1 -Wl,-soname,"$lib" -o "$stage/lib/$lib" "$src"
  rm "$src"
done
# Proof that nothing is missing: every packed library resolves against the pack and the C runtime alone.
if LD_LIBRARY_PATH="$stage/lib" ldd "$stage"/lib/*.so.* 2>/dev/null | grep 'not found' | grep -Ev 'lib(torch|c10)'; then
  echo "pack.sh: the libraries above are missing from the pack" >&2; exit 1
fi

# ---- generated sources ---------------------------------------------------------------------------------
protoc --proto_path="$ROOT/proto" --cpp_out="$stage/gen" --grpc_out="$stage/gen" \
  --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
  "$ROOT/proto/veriface/v1/veriface.proto" "$ROOT/proto/grpc_health/v1/health.proto"
ln -s . "$stage/gen/proto"  # the sources include "proto/veriface/v1/...", protoc's output "veriface/v1/..."
tar -C "$stage" -cJf "$OUT/deps.tar.xz" include lib gen

# ---- inputs --------------------------------------------------------------------------------------------
/usr/bin/python3 -c 'import cv2, numpy' 2>/dev/null ||
  { echo "prepare_inputs.py needs Debian's python3-opencv: apt-get install python3-opencv" >&2; exit 1; }
/usr/bin/python3 "$ROOT/bench/device/prepare_inputs.py" --goldens "$SHARED/reference/goldens" \
  --data "$SHARED/data" --out "$stage/inputs"
# For the server: the goldens' LFW images (their own paths) and the load's photos, two each of the first
# LOAD_PEOPLE people (in name order) who have two.
lfw=$SHARED/data/lfw
mkdir -p "$stage/inputs/lfw"
/usr/bin/python3 -c 'import json, sys
for r in json.load(open(sys.argv[1]))["images"]:
    if "path" in r: print(r["path"])' "$SHARED/reference/goldens/lfw_pipeline.json" >"$stage/golden_paths.txt"
{
  cat "$stage/golden_paths.txt"
  find "$lfw" -mindepth 2 -maxdepth 2 -name '*_0002.jpg' -printf '%P\n' | sort | awk -v n="$LOAD_PEOPLE" 'NR <= n' |
    sed 's/_0002\.jpg$//' | while read -r stem; do echo "${stem}_0001.jpg"; echo "${stem}_0002.jpg"; done
} | sort -u | while read -r rel; do
  mkdir -p "$stage/inputs/lfw/$(dirname "$rel")" && cp "$lfw/$rel" "$stage/inputs/lfw/$rel"
done
tar -C "$stage" -cJf "$OUT/inputs.tar.xz" inputs
cp -r "$SHARED/reference/goldens" "$OUT/goldens" && chmod -R u+w "$OUT/goldens"
weights=$(find "$ROOT/.cache/weights" -type d -path '*/package/weights' | sort | awk 'NR == 1')
[[ -n $weights ]] || { echo "no tfjs weights under .cache/weights: run deploy/setup.sh first" >&2; exit 1; }
cp -r "$weights" "$OUT/weights"
du -sh "$OUT"/*
du -sh "$OUT"
