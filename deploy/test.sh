#!/usr/bin/env bash
# The README's test command: set up (idempotent), build, and run the default test suite.
# Benchmarks and the full-LFW accuracy runs are not part of it (see bench/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/deploy/setup.sh"
BUILD_DIR="${VERIFACE_BUILD_DIR:-$ROOT/build}"
export VERIFACE_SHARED_DIR="${VERIFACE_SHARED_DIR:-$(cd "$ROOT/.." && pwd)/shared}"
cd "$BUILD_DIR"
ctest --output-on-failure -j "${VERIFACE_TEST_JOBS:-2}" --timeout 900 "$@"
