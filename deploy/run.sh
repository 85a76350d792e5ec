#!/usr/bin/env bash
# The README's run command: set up (idempotent), build, and start veriface-server on the default model.
# Extra arguments go to the server, e.g. deploy/run.sh --listen 127.0.0.1:50051 --device auto
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The server needs only itself, the client and the importer: the tests, benchmarks and offline tools are
# deploy/test.sh's to build.
VERIFACE_BUILD_TARGETS="${VERIFACE_BUILD_TARGETS-veriface-server veriface-migrate veriface veriface-import}" "$ROOT/deploy/setup.sh"
BUILD_DIR="${VERIFACE_BUILD_DIR:-$ROOT/build}"
mkdir -p "$ROOT/var"
cd "$ROOT"
exec "$BUILD_DIR/server/veriface-server" --config "$ROOT/config/veriface.yaml" \
  --model "$ROOT/models/default" --gallery "$ROOT/var/gallery.db" "$@"
