#!/usr/bin/env bash
# Runs replication_bench (the gallery's stores: SQLite, PostgreSQL with one and three replicas; the lag
# between replicas; Identify over each store) and writes bench/results/replication.json with the command,
# the machine and the commit. PostgreSQL is started by the benchmark itself on loopback (Debian's
# postgresql-15, run as the postgres user when this runs as root), with fsync on.
#
# usage: bench/replicas/run_replication_bench.sh [BUILD_DIR] [replication_bench flags...]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$repo/build}"
shift || true
bin="$build/bench/replicas/replication_bench"
[[ -x "$bin" ]] || { echo "no $bin; build it with: cmake --build $build --target replication_bench" >&2; exit 1; }
out="$repo/bench/results/replication.json"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
cmd=("$bin" "$@")
load="$(cut -d' ' -f1 /proc/loadavg)"
"${cmd[@]}" >"$raw"
python3 - "$raw" "$out" "${cmd[*]#$repo/}" "$load" "$(git -C "$repo" rev-parse --short HEAD)" <<'PY'
import datetime, json, os, platform, sys
raw, out, command, load, commit = sys.argv[1:6]
result = json.load(open(raw))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
record = {
    "command": command,
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "git_commit": commit,
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1),
                "kernel": platform.release(), "load_average_at_start": float(load)},
    "notes": "Synthetic 128-D embeddings through Gallery (the model's cost is left out, so the store's shows). "
             "PostgreSQL 15 on loopback with fsync on, one connection per replica; SQLite with synchronous=FULL. "
             "Lag: client_visible is writer's acknowledgement to readable on a follower (polled every 0.2 ms); "
             "follower_metric is what veriface_gallery_replication_lag_seconds records.",
    "result": result,
}
json.dump(record, open(out, "w"), indent=1)
e = result["enrolment"]
print(f"enrolments/s: sqlite {e['sqlite_1_replica']['enrolments_per_second']:.0f}, "
      f"postgres x1 {e['postgres_1_replica']['enrolments_per_second']:.0f}, "
      f"postgres x3 {e['postgres_3_replicas']['enrolments_per_second']:.0f}")
lag = result["propagation_lag"]["client_visible"]
print(f"lag p50 {lag['p50_ms']:.2f} ms, p99 {lag['p99_ms']:.2f} ms; "
      f"identify p50 postgres/sqlite {result['identify']['p50_ratio_postgres_over_sqlite']:.3f}")
print(f"wrote {out}")
PY
