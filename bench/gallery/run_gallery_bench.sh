#!/usr/bin/env bash
# Runs the gallery benchmark and writes bench/results/gallery.json: Identify ms per query for 10k, 100k
# and 1M templates, the streaming-read bandwidth measured in the same run on a buffer of the matrix's
# size, and their ratio (Identify time / time to read the matrix once), plus the command and machine.
#
# usage: bench/gallery/run_gallery_bench.sh [BUILD_DIR] [extra benchmark flags...]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$repo/build}"
shift || true
bin="$build/bench/gallery/gallery_bench"
[[ -x "$bin" ]] || { echo "no $bin; build it with: ninja -C $build gallery_bench" >&2; exit 1; }
out="$repo/bench/results/gallery.json"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
cmd=("$bin" --benchmark_repetitions=3 --benchmark_format=json --benchmark_out="$raw" --benchmark_out_format=json "$@")
"${cmd[@]}" >/dev/null
mkdir -p "$(dirname "$out")"
python3 - "$raw" "$out" "${cmd[*]}" <<'PY'
import json, subprocess, sys
raw, out, command = sys.argv[1], sys.argv[2], sys.argv[3]
data = json.load(open(raw))
# Medians over the repetitions: the machine is shared and noisy.
med = {b["run_name"]: b for b in data["benchmarks"] if b.get("aggregate_name") == "median"}
def ms(b, kind):
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
    return b[kind] * scale
sizes = []
for name, b in med.items():
    if name.startswith("BM_Identify/"):
        n = int(name.split("/")[1])
        row = {"templates": n, "dim": 128, "matrix_MB": n * 128 * 4 / 1e6}
        for kind in ("real_time", "cpu_time"):
            ident = ms(b, kind)
            bound1 = ms(med[f"BM_StreamRead/{n}/1/real_time"], kind)
            bound2 = ms(med[f"BM_StreamRead/{n}/2/real_time"], kind) if kind == "real_time" else None
            row[kind] = {
                "identify_ms_per_query": round(ident, 4),
                "stream_read_ms_1_thread": round(bound1, 4),
                "bandwidth_GBps_1_thread": round(n * 128 * 4 / (bound1 * 1e-3) / 1e9, 2),
                "ratio_identify_to_bound_1_thread": round(ident / bound1, 3),
            }
            if bound2 is not None:
                row[kind]["stream_read_ms_2_threads"] = round(bound2, 4)
                row[kind]["bandwidth_GBps_2_threads"] = round(n * 128 * 4 / (bound2 * 1e-3) / 1e9, 2)
                row[kind]["ratio_identify_to_bound_2_threads"] = round(ident / bound2, 3)
        sizes.append(row)
sizes.sort(key=lambda r: r["templates"])
lscpu = subprocess.run("lscpu | head -20", shell=True, capture_output=True, text=True).stdout
result = {
    "benchmark": "gallery Identify vs memory bandwidth (bench/gallery/gallery_bench.cc)",
    "command": command,
    "note": ("Identify = one pass over the N x 128 float32 matrix (AVX2 dot products) + best template per "
             "identity + exact top-10 at min_similarity 0.3; 2 templates per identity. The bound is a "
             "streaming read of a buffer of the matrix's size, measured in the same run. Medians of 3 "
             "repetitions; real_time is wall-clock (affected by other load on the machine), cpu_time is "
             "this process's CPU time."),
    "context": data.get("context", {}),
    "machine_lscpu_head_20": lscpu.splitlines(),
    "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
    "results": sizes,
}
json.dump(result, open(out, "w"), indent=2)
print(json.dumps(sizes, indent=2))
PY
echo "wrote $out"
