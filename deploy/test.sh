#!/usr/bin/env bash
# The README's test command: set up (idempotent), build, and run the default test suite.
# Benchmarks and the full-LFW accuracy runs are not part of it (see bench/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/deploy/setup.sh"
BUILD_DIR="${VERIFACE_BUILD_DIR:-$ROOT/build}"
export VERIFACE_SHARED_DIR="${VERIFACE_SHARED_DIR:-$(cd "$ROOT/.." && pwd)/shared}"
# The fuzz targets as libFuzzer binaries (clang, ASan + UBSan: the `fuzz` preset, in build-fuzz/), each
# fuzzed for VERIFACE_FUZZ_SECONDS by the second ctest below; the ordinary build replays their corpora.
# VERIFACE_SKIP_FUZZ=1 leaves them out.
FUZZ_DIR="$ROOT/build-fuzz"
if [ "${VERIFACE_SKIP_FUZZ:-0}" != 1 ]; then
  echo "[test] fuzz build: $FUZZ_DIR"
  if [ ! -f "$FUZZ_DIR/build.ninja" ]; then
    (cd "$ROOT" && cmake --preset fuzz -DVERIFACE_FUZZ_SECONDS="${VERIFACE_FUZZ_SECONDS:-20}" >/dev/null)
  fi
  cmake --build "$FUZZ_DIR" --target veriface_fuzzers -j "${VERIFACE_JOBS:-$(nproc)}"
fi
cd "$BUILD_DIR"
ctest --output-on-failure -j "${VERIFACE_TEST_JOBS:-2}" --timeout 900 "$@"
if [ "${VERIFACE_SKIP_FUZZ:-0}" != 1 ]; then
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$FUZZ_DIR" -L fuzz --output-on-failure -j "${VERIFACE_TEST_JOBS:-2}" "$@"
fi
