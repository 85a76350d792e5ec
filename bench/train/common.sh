# Shared by the bench/train scripts (sourced, not run): paths, and wrapping a veriface-train result with
# the exact command and the machine it ran on.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LFW=${LFW:-$(cd "$ROOT/.." && pwd)/shared/data/lfw}
TRAIN=${TRAIN:-$BUILD/trainer/train/veriface-train}
CACHE=${CACHE:-$ROOT/.cache/veriface}
WORK_ROOT=${WORK_ROOT:-$ROOT/.cache/bench-train}
RESULTS=${RESULTS:-$ROOT/bench/results}

if [[ ! -x "$TRAIN" ]]; then
  echo "no veriface-train at $TRAIN (build it: ninja -C $BUILD veriface-train, or set BUILD=...)" >&2
  exit 1
fi
mkdir -p "$RESULTS" "$WORK_ROOT"

# record_result NAME RESULT_JSON WALL_SECONDS COMMAND...: writes $RESULTS/NAME.json.
record_result() {
  local name=$1 result=$2 seconds=$3
  shift 3
  # The command as a person would type it (single quotes where needed), escaped for JSON.
  local cmd="" arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,+@-]+$ ]]; then cmd+="$arg "; else cmd+="'$arg' "; fi
  done
  cmd=${cmd//\\/\\\\}
  cmd=${cmd//\"/\\\"}
  cat >"$RESULTS/$name.json" <<JSON
{
  "benchmark": "$name",
  "command": "${cmd% }",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "git_commit": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)",
  "machine": {
    "cpu": "$(lscpu | sed -n 's/^Model name: *//p' | head -1)",
    "cores": $(nproc),
    "memory_gib": $(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo),
    "note": "shared with other jobs while it ran; wall times are indicative only"
  },
  "wall_seconds": $seconds,
  "result": $(cat "$result")
}
JSON
  echo "wrote $RESULTS/$name.json"
}
