#!/usr/bin/env python3
"""Reads the JSON files bench/run_all.sh wrote into RESULTS and prints the markdown report: every
figure, the ratios the performance issue sets targets for, and whether each target is met. Also writes
RESULTS/performance.json with the same derived numbers. Missing inputs are reported as missing."""
import json
import os
import sys

results = sys.argv[1]


def load(name):
    path = os.path.join(results, name)
    return json.load(open(path)) if os.path.exists(path) else None


out = []
derived = {}


def p(line=""):
    out.append(line)


def target(name, value, ok, goal):
    derived.setdefault("targets", {})[name] = {"value": value, "goal": goal, "met": ok}
    return "met" if ok else "**not met**"


machine = load("machine.json") or {}
p("# Performance")
p()
p(f"Measured by `bench/run_all.sh` on {machine.get('date', '?')} at commit {machine.get('git_commit', '?')}: "
  f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {machine.get('memory_gib', '?')} GiB, "
  f"load average {machine.get('load_average_at_start', '?')} at the start; {machine.get('threads', '?')} LibTorch "
  f"threads. Images: {machine.get('images', '?')}. Every ratio below compares numbers from this one run.")

# ---- descriptor and MTCNN (google-benchmark, medians of 3) ---------------------------------------------
raw = load("pipeline_raw.json")
if raw:
    med = {b["run_name"]: b for b in raw["benchmarks"] if b.get("aggregate_name") == "median"}

    def get(prefix):
        return [(name, b) for name, b in med.items() if name.startswith(prefix)]

    peak = next(b for n, b in get("BM_PeakConv3x3"))["gflops"]
    rows = sorted(((int(n.split("/")[1]), b) for n, b in get("BM_Descriptor/")), key=lambda r: r[0])
    best_batch, best = min(rows, key=lambda r: r[1]["ms_per_face"])
    batch1 = rows[0][1]
    p()
    p("## Descriptor (one 150x150 chip through the ResNet; 0.553 GFLOP)")
    p()
    p(f"Peak: one 3x3 convolution (64->64 channels, 56x56, batch 16) through oneDNN: **{peak:.1f} GFLOP/s**.")
    p()
    p("| batch | ms per chip | GFLOP/s | of peak |")
    p("|---:|---:|---:|---:|")
    for n, b in rows:
        p(f"| {n} | {b['ms_per_face']:.2f} | {b['gflops']:.1f} | {b['gflops'] / peak:.0%} |")
    r1 = batch1["ms_per_face"] / best["ms_per_face"]
    rp = best["gflops"] / peak
    p()
    p(f"- Batch 1 / best per-chip time (batch {best_batch}): **{r1:.2f}x** (target <= 1.5x: "
      f"{target('batch1_over_best', r1, r1 <= 1.5, '<= 1.5')}).")
    p(f"- Best batch / peak GFLOP/s: **{rp:.0%}** (target >= 50%: {target('best_over_peak', rp, rp >= 0.5, '>= 0.5')}).")
    conv = {b["run_name"]: b for n, b in get("BM_Batch1Conv3x3")}
    if len(conv) == 2:
        slow, fast = (conv[k]["real_time"] for k in sorted(conv))
        p(f"- The batch-1 cliff: a 3x3 convolution on [1,64,17,17] takes {slow:.0f} us through LibTorch's "
          f"dispatcher (im2col `_slow_conv2d`) and {fast:.0f} us through oneDNN directly ({slow / fast:.0f}x); "
          "the descriptor calls oneDNN itself (core/nn/conv2d).")
        derived["batch1_conv_dispatcher_over_onednn"] = slow / fast
    derived["descriptor"] = {str(n): {"ms_per_chip": b["ms_per_face"], "gflops": b["gflops"]} for n, b in rows}
    derived["peak_gflops"] = peak

    p()
    p("## MTCNN (ms per image, per stage)")
    p()
    p("| image | total | P-Net (pyramid) | R-Net | O-Net | faces |")
    p("|---|---:|---:|---:|---:|---:|")
    mt = sorted(((int(n.split("/")[1]), int(n.split("/")[2]), b) for n, b in get("BM_Mtcnn/")), key=lambda r: r[0])
    for w, h, b in mt:
        p(f"| {w}x{h} | {b['real_time']:.1f} | {b['stage1_pnet_ms']:.1f} | {b['stage2_rnet_ms']:.1f} | "
          f"{b['stage3_onet_ms']:.1f} | {b['faces']:.0f} |")
        derived.setdefault("mtcnn_ms", {})[f"{w}x{h}"] = b["real_time"]

# ---- Python reference vs C++ ----------------------------------------------------------------------------
py, cpp, cppb = load("python_images.json"), load("cpp_images.json"), load("cpp_images_bundle.json")
if py and cpp:
    p()
    p("## Whole pipeline against the Python reference (one image at a time, same images, same threads)")
    p()
    p("| implementation | images/s | median ms | decode | detect | align | embed |")
    p("|---|---:|---:|---:|---:|---:|---:|")
    for label, r in (("Python reference (eager), 1 chip", py), ("C++, 1 chip", cpp), ("C++, the bundle's views", cppb)):
        if not r:
            continue
        s = r["per_image"]
        p(f"| {label} | {r['images_per_s']:.1f} | {r['median_ms']:.1f} | {s['decode_ms']:.1f} | {s['detect_ms']:.1f} | "
          f"{s['align_ms']:.1f} | {s['embed_ms']:.1f} |")
    ratio = cpp["images_per_s"] / py["images_per_s"]
    p()
    p(f"- C++ / Python images per second, same work: **{ratio:.1f}x** (target >= 2x: "
      f"{target('cpp_over_python', ratio, ratio >= 2, '>= 2')}).")

# ---- server end to end ----------------------------------------------------------------------------------
inproc, load_runs = load("inprocess_verify.json"), load("server_load.json")
if load_runs:
    p()
    p("## Through the server (`veriface load`, one client process on loopback)")
    p()
    p("| variant | RPC | concurrency | calls/s | p50 ms | p99 ms | p99/p50 | errors |")
    p("|---|---|---:|---:|---:|---:|---:|---|")
    by = {}
    for r in load_runs:
        lat = r["latency"]
        ratio = lat["p99_ms"] / lat["p50_ms"] if lat["p50_ms"] else float("nan")
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "-"
        p(f"| {r['variant']} | {r['rpc']} | {r['concurrency']} | {r['throughput_per_s']:.1f} | {lat['p50_ms']:.0f} | "
          f"{lat['p99_ms']:.0f} | {ratio:.2f} | {errors} |")
        by[(r["variant"], r["rpc"], r["concurrency"])] = r
    p()
    p("Calls/s counts served calls only; latencies cover every call. Where the errors column shows "
      "RESOURCE_EXHAUSTED, the offered load was past the detection queue (`inference.detect.max_queue_size`, 64 "
      "images; a Verify brings two): those calls were refused at once, as designed, and `veriface load` sent the "
      "next one immediately, so the percentiles there are mostly refusals.")
    derived["server"] = [{k: r[k] for k in ("variant", "rpc", "concurrency", "throughput_per_s", "latency", "errors")}
                         for r in load_runs]
    v16 = by.get(("batching", "verify", 16))
    v16_1 = by.get(("max_batch_1", "verify", 16))
    p()
    plo = load("pipeline_load.json")
    if plo:
        mean = sum(r["throughput_per_s"] for r in plo) / len(plo)
        p("The same pipeline in-process (`pipeline_load`: core/serving FaceService::Verify with the same configuration, 16 caller "
          "threads doing Verify's work, no gRPC), run before and after the server runs: "
          + ", ".join(f"{r['throughput_per_s']:.1f}" for r in plo) + f" verifies/s (mean {mean:.1f}).")
        p()
        derived["pipeline_load_c16_mean"] = mean
    if inproc:
        p(f"The plain sequential pipeline (`pipeline_throughput --mode verify`: one thread of control, batches of "
          f"{inproc['batch']} verifies embedded together): {inproc['verifies_per_s']:.1f} verifies/s.")
        p()
    if v16 and plo:
        r = v16["throughput_per_s"] / mean
        p(f"- Server Verify at concurrency 16 / the same pipeline in-process: **{r:.0%}** (target >= 85%: "
          f"{target('server_c16_over_inprocess', r, r >= 0.85, '>= 0.85')}).")
    if v16 and v16_1:
        r = v16["throughput_per_s"] / v16_1["throughput_per_s"]
        p(f"- Dynamic batching / max_batch=1, Verify at concurrency 16: **{r:.2f}x** (target >= 1.5x: "
          f"{target('batching_over_max_batch_1', r, r >= 1.5, '>= 1.5')}).")
    if v16:
        lat = v16["latency"]
        r = lat["p99_ms"] / lat["p50_ms"]
        p(f"- p99 / p50, Verify at concurrency 16: **{r:.2f}** (target <= 3: {target('p99_over_p50_c16', r, r <= 3, '<= 3')}).")

# ---- gallery ---------------------------------------------------------------------------------------------
gallery = load("gallery.json")
if gallery:
    p()
    p("## Gallery Identify against the memory-bandwidth bound (from bench/results/gallery.json)")
    p()
    p("| templates | Identify ms | streaming read of the matrix, ms | ratio |")
    p("|---:|---:|---:|---:|")
    for row in gallery["results"]:
        rt = row["real_time"]
        p(f"| {row['templates']:,} | {rt['identify_ms_per_query']:.2f} | {rt['stream_read_ms_1_thread']:.2f} | "
          f"{rt['ratio_identify_to_bound_1_thread']:.2f} |")
    big = max(gallery["results"], key=lambda row: row["templates"])
    r = big["real_time"]["ratio_identify_to_bound_1_thread"]
    p()
    p(f"- 1M templates: **{r:.2f}x** the bound (target <= 2x: {target('identify_1m_over_bound', r, r <= 2, '<= 2')}).")

json.dump(derived, open(os.path.join(results, "performance.json"), "w"), indent=1)
print("\n".join(out))
