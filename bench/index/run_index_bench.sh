#!/usr/bin/env bash
# The gallery index benchmark (issue 13): embeds LFW once (cached, see lfw_embeddings.cc), then runs
# index_bench at each gallery size and writes bench/results/index.json (every number, with the command,
# the date, the commit and the machine) and bench/results/index.md (the summary table and the issue's
# targets at 10M templates, met or not).
#
# usage: bench/index/run_index_bench.sh [BUILD_DIR]
#   SIZES="1000000 10000000"   gallery sizes (templates, the planted LFW ones included)
#   PEOPLE=1500 PER_PERSON=2   LFW people with >= 2 images, images each (first by name)
#   EMBED_MAX_SECONDS=1500     stop embedding after this long, keeping what is done
#   FLAT_QUERIES_10M=300       at 10M, the fp32/int8 scans are timed on this many queries (the ground truth
#                              for every query comes from a batched exact scan, checked against FlatIndex)
#   SKIP_EMBED=1               use the cache as it is (and the embed_run.json already beside it)
#   BLAS_DIR=DIR               a folder with another libblas.so.3 for index_bench (see below)
#   INDEXES_SMALL, INDEXES_LARGE  the --indexes of sizes <= 2M and above
#   BENCH_BIN=PATH, BUILD_NOTE=TEXT  another index_bench binary, and how it was built (recorded)
#   ONLY_SUMMARY=1             rewrite index.json/index.md from the per-size files already in .cache
#   RESULTS=NAME               write bench/results/NAME.json and NAME.md instead (default: index), from
#                              per-size files of their own: a run of some indexes leaves the others' record
#
# The programs run under `nice -n 5` (the machine is shared). 50M templates are not run: the collection keeps
# its fp32 rows in memory (50M x 512 B = 25.6 GB), more than this machine's 24 GB.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$repo/build}"
cd "$repo"
sizes="${SIZES:-1000000 10000000}"
people="${PEOPLE:-1500}"
per_person="${PER_PERSON:-2}"
embed_max="${EMBED_MAX_SECONDS:-1500}"
flat_queries_10m="${FLAT_QUERIES_10M:-300}"
work="$repo/.cache/index-bench"
cache="$work/lfw_embeddings.bin"
results="${RESULTS:-index}"
runs="$work"
[[ "$results" == index ]] || runs="$work/$results"
mkdir -p "$work" "$runs" bench/results
embed_bin="$build/bench/index/lfw_embeddings"
bench_bin="${BENCH_BIN:-$build/bench/index/index_bench}"
# The product's OpenMP waits (bench/README.md), which the server and the tools set for themselves.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-30000}"

machine_json() {  # one JSON object: the machine now
  python3 - <<'PY'
import json, os, subprocess
lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
cpu = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), "?")
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
avail = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemAvailable"))
print(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "memory_GB": round(mem / 1e6 * 1.024, 1),
                  "memory_available_GB": round(avail / 1e6 * 1.024, 1),
                  "loadavg": open("/proc/loadavg").read().split()[:3]}))
PY
}

if [[ -z "${ONLY_SUMMARY:-}" ]]; then
  for b in "$embed_bin" "$bench_bin"; do
    [[ -x "$b" ]] || { echo "no $b; build it with: cmake --build $build --target $(basename "$b")" >&2; exit 1; }
  done
  if [[ -z "${SKIP_EMBED:-}" ]]; then
  embed_cmd=(nice -n 5 "$embed_bin" --lfw ../shared/data/lfw --model models/default --people "$people"
             --per-person "$per_person" --max-seconds "$embed_max" --out "$cache")
  echo "== ${embed_cmd[*]}" >&2
  before="$(machine_json)"
  "${embed_cmd[@]}" >"$work/embed_last.json"
  python3 - "$work/embed_run.json" "$work/embed_last.json" "${embed_cmd[*]}" "$before" "$(machine_json)" <<'PY'
import json, sys, datetime
out, last, cmd, before, after = sys.argv[1:6]
json.dump({"command": cmd, "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
           "result": json.load(open(last)), "machine_before": json.loads(before),
           "machine_after": json.loads(after)}, open(out, "w"), indent=2)
PY
  fi
  # faiss trains and assigns with BLAS: Debian's default libblas3 is the reference BLAS (4 GFLOP/s here,
  # against 71 for OpenBLAS), at which one IVF4096 training takes most of an hour. BLAS_DIR names a folder
  # holding another libblas.so.3 for this run only, without touching the machine's alternatives, e.g.
  #   apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb /tmp/oblas
  #   BLAS_DIR=/tmp/oblas/usr/lib/x86_64-linux-gnu/openblas-pthread bench/index/run_index_bench.sh
  if [[ -n "${BLAS_DIR:-}" ]]; then export LD_LIBRARY_PATH="$BLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
  blas="$(readlink -f "$(ldd "$bench_bin" | awk '/libblas/ {print $3; exit}')" 2>/dev/null || echo '?')"
  echo "== BLAS: $blas" >&2
  for n in $sizes; do
    # FaissIndex fixes nprobe at Create, so every nprobe listed is a build of its own (training included,
    # ~3 min each with OpenBLAS on 2 cores): the defaults keep to the ones the targets need.
    if (( n <= 2000000 )); then
      indexes="${INDEXES_SMALL:-flat,faiss:IVF4096,SQ8@32,faiss:IVF4096,PQ32@64,faiss:HNSW32}"
      extra=(--truth flat)
    else
      # HNSW32 is left out above 2M: its graph and fp32 copy need ~7.7 GB at 10M and its build would take
      # hours on 2 cores.
      indexes="${INDEXES_LARGE:-flat,faiss:IVF4096,SQ8@32/64,faiss:IVF4096,PQ32@64}"
      extra=(--truth batched --flat-queries "$flat_queries_10m")
    fi
    cmd=(nice -n 5 "$bench_bin" --embeddings "$cache" --templates "$n" --indexes "$indexes" "${extra[@]}"
         --out "$runs/index_$n.json")
    echo "== ${cmd[*]}" >&2
    before="$(machine_json)"
    start="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    "${cmd[@]}"
    python3 - "$runs/index_$n.json" "${cmd[*]}" "$start" "$before" "$(machine_json)" "$blas" "${BUILD_NOTE:-}" <<'PY'
import json, os, sys
path, cmd, start, before, after, blas, note = sys.argv[1:8]
d = json.load(open(path))
d.update({"command": cmd, "date": start, "machine_before": json.loads(before), "machine_after": json.loads(after),
          "blas": blas, "openmp_env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}})
if note:
    d["binary_note"] = note
json.dump(d, open(path, "w"), indent=2)
PY
  done
fi

commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- core bench || echo '+uncommitted')"
python3 - "$work" "$commit" "$sizes" "$runs" "$results" <<'PY'
import json, os, sys
work, commit, sizes, runs_dir, name = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split()], sys.argv[4], sys.argv[5]
runs = []
for f in os.listdir(runs_dir):
    if f.startswith("index_") and f.endswith(".json"):
        runs.append(json.load(open(os.path.join(runs_dir, f))))
runs.sort(key=lambda r: r["templates"])
embed = json.load(open(os.path.join(work, "embed_run.json"))) if os.path.exists(os.path.join(work, "embed_run.json")) else None
result = {
    "benchmark": "gallery indexes over LFW identities planted among Gaussian distractors (bench/index, issue 13)",
    "script": "bench/index/run_index_bench.sh",
    "commit": commit,
    "note": ("Distractors: a Gaussian fitted to the LFW embeddings (mean, full covariance, Cholesky factor), "
             "L2-normalised. Gallery: distractors + the first image of each LFW person; queries: their second "
             "images. Search times are one query at a time on one thread (k=10), p50/p99 over the queries. "
             "recall@1/@10 against the exact fp32 top 10; lfw_top1 = the right person first. 'reranked' = "
             "Search(k*4 = 40) re-scored in fp32 over the rows, as Collection::Identify does. memory_bytes is "
             "the index's own (flat-fp32: the rows; the others exclude the collection's fp32 rows, which "
             "Collection keeps for re-scoring: 512 B per template more). 50M templates: not run, the fp32 rows "
             "alone would be 25.6 GB on a 24 GB machine."),
    "embedding": embed,
    "runs": runs,
}
json.dump(result, open(f"bench/results/{name}.json", "w"), indent=2)

def ms(x):
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"
def us(x):  # mean ms per call, shown in microseconds
    return f"{1000 * x:.1f}" if x < 10 else f"{1000 * x:.0f}"
def pct(x):
    return f"{100 * x:.1f}%"
lines = ["# Gallery indexes (issue 13)", "",
         f"`{'RESULTS=' + name + ' ' if name != 'index' else ''}bench/index/run_index_bench.sh`, commit {commit}; "
         f"every number in `bench/results/{name}.json`.", ""]
if embed:
    r = embed["result"]
    lines += [f"LFW embeddings: {r['cache_records']} images of {r['cache_people']} people "
              f"(`{embed['command']}`; {r['embedded']} embedded in this run at {r['images_per_s']:.2f} images/s, "
              f"{r['without_face']} without a face).", ""]
targets = []
for run in runs:
    n = run["templates"]
    m = run.get("machine_before", {})
    lines += [f"## {n:,} templates", "",
              f"{run['date']}, {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_GB', '?')} GB, "
              f"load average {' '.join(m.get('loadavg', []))} before / "
              f"{' '.join(run.get('machine_after', {}).get('loadavg', []))} after; "
              f"{run['gallery']['queries']} queries, {run['gallery']['planted_lfw_templates']} planted LFW templates; "
              f"ground truth: {run['ground_truth']['method']}; run {run.get('seconds_total', 0) / 60:.1f} min, "
              f"peak RSS {run.get('peak_rss_GB', 0):.1f} GB; BLAS {run.get('blas', '?')}.", "",
              f"`{run['command']}`", ""]
    real = run.get("distractor_realism", {})
    if real:
        lines += [f"Distractor realism (best cosine of a query among {real['others']} others, median): other LFW "
                  f"people {real['median_best_cosine_other_lfw_people']:.3f}, Gaussian distractors "
                  f"{real['median_best_cosine_gaussian_distractors']:.3f}, uniform on the sphere "
                  f"{real['median_best_cosine_uniform_sphere']:.3f}; genuine pair median "
                  f"{real['median_cosine_genuine_pair']:.3f}; LFW top-1 with no distractors "
                  f"{pct(real['lfw_top1_accuracy_without_distractors'])}.", ""]
    lines += ["| index | nprobe | build s | B/template | index GB | p50 ms | p99 ms | recall@1 | recall@10 | LFW top-1 "
              "| Identify p50 ms (reranked) | recall@1 reranked | recall@10 reranked | LFW top-1 reranked | add µs | remove µs |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for ix in run.get("indexes", []):
        churn = ix.get("churn", {})
        add = us(churn["add"]["mean_ms"]) if churn.get("add", {}).get("n") else "-"
        rem = us(churn["remove"]["mean_ms"]) if churn.get("remove", {}).get("n") else "-"
        if churn.get("remove_status", "OK") != "OK":
            rem += " (" + churn["remove_status"][:40] + ")"
        s, q = ix["search_k10"], ix["quality"]
        sr, qr = ix.get("identify_search_k40_fp32_rerank", s), ix.get("quality_reranked", q)
        knob = ix.get("nprobe", "-") if ix.get("nprobe", "-") != "-" else (
            f"ef {ix['ef_search']}" if ix.get("ef_search", "-") != "-" else "-")
        lines.append(f"| {ix['index']} | {knob} | {ix['build_seconds']:.1f} | {ix['memory_bytes_per_template']:.0f} | "
                     f"{ix['memory_bytes'] / 1e9:.2f} | {ms(s['p50_ms'])} | {ms(s['p99_ms'])} | {pct(q['recall_at_1'])} | "
                     f"{pct(q['recall_at_10'])} | {pct(q['lfw_top1_accuracy'])} | {ms(sr['p50_ms'])} | "
                     f"{pct(qr['recall_at_1'])} | {pct(qr['recall_at_10'])} | {pct(qr['lfw_top1_accuracy'])} | {add} | {rem} |")
        if n >= 10_000_000:
            targets.append((ix["index"], knob, sr["p50_ms"], qr["recall_at_1"], ix["memory_bytes"]))
    iv = run.get("int8_vs_fp32")
    if iv:
        lines += ["", f"flat-int8 against flat-fp32, interleaved on {iv['queries_interleaved']} queries: p50 "
                  f"{ms(iv['p50_ms_int8'])} against {ms(iv['p50_ms_fp32'])} ms ({iv['speedup_p50']:.2f}x), mean "
                  f"{iv['speedup_mean']:.2f}x; same top-1 as fp32 on {iv['same_top1_count']} of "
                  f"{iv['queries_interleaved']}."]
    lines.append("")

lines += ["## Targets at 10M templates", ""]
big = [r for r in runs if r["templates"] >= 10_000_000]
if not big:
    lines.append("No 10M run recorded.")
else:
    run = big[0]
    lines += ["| target | measured | met |", "|---|---|---|"]
    ok = [t for t in targets if t[2] <= 20 and t[3] >= 0.99 and t[4] <= 2e9]
    for index_name, nprobe, p50, r1, mem in targets:
        lines.append(f"| Identify p50 <= 20 ms, recall@1 >= 99%, index <= 2 GB: {index_name} nprobe {nprobe} | "
                     f"{ms(p50)} ms, {pct(r1)}, {mem / 1e9:.2f} GB | "
                     f"{'yes' if (p50 <= 20 and r1 >= 0.99 and mem <= 2e9) else 'no'} |")
    iv = run.get("int8_vs_fp32")
    if iv:
        met = iv["speedup_p50"] >= 1.8 and iv["same_top1_count"] == iv["queries_interleaved"]
        lines.append(f"| flat-int8 >= 1.8x flat-fp32, same top-1 | {iv['speedup_p50']:.2f}x (p50), same top-1 on "
                     f"{iv['same_top1_count']}/{iv['queries_interleaved']} | {'yes' if met else 'no'} |")
    lines += ["", "Identify = Search(40) + fp32 re-scoring, as Collection::Identify does; the index memory excludes the "
              "collection's fp32 rows (5.1 GB at 10M), which Collection keeps. "
              f"Some configuration meets the first target: {'yes' if ok else 'no'}."]
kinds = {ix["index"].split(":")[0].split("-")[0] for r in runs for ix in r.get("indexes", [])}
notes = []
if "faiss" in kinds:
    notes += ["- faiss here is Debian's libfaiss 1.7.3, built for baseline x86-64 (its scalar-quantizer code uses SSE, "
              "not AVX2), and its BLAS calls go to `BLAS_DIR`'s OpenBLAS: with Debian's default reference BLAS one "
              "IVF4096 training alone would take most of an hour.",
              "- FaissIndex takes nprobe at Create, so each nprobe is a build of its own; only the ones listed were run.",
              "- IVF memory_bytes counts the spare capacity of faiss's inverted lists: IVF4096,SQ8 at 10M holds 136 B "
              "of codes and ids per template (1.36 GB) but reports 2.19 GB, and the process grew by 2.2 GB.",
              "- Remove on IVF scans every list (O(size) per call): tens of ms per delete at 10M.",
              "- HNSW32 was run at 100k only: its build took 208 s there (about 2 ms per vector on these cores), so 1M "
              "would take over half an hour and 10M most of a day; one enrolment into it costs O(size) in faiss 1.7.3."]
if any(k.startswith("ivf") for k in kinds):
    notes += ["- ivfN-int8 (IvfInt8Index) is built once per size and searched at each nprobe listed (its build time is "
              "repeated on each row); its k-means and list assignment run on the project's own AVX2 kernel, without "
              "BLAS. Remove is O(1): the list's last entry takes the removed one's place."]
if notes:
    lines += ["", "Notes:", ""] + notes
lines += ["", "50M templates: not run; the fp32 rows the collection keeps would be 25.6 GB, more than the 24 GB "
          "of this machine."]
if "faiss" in kinds:
    lines[-1] += " HNSW32 at 10M: not run (graph + fp32 copy ~7.7 GB, a build of hours on 2 cores)."
open(f"bench/results/{name}.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "wrote bench/results/$results.json and bench/results/$results.md" >&2
