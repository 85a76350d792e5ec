#!/usr/bin/env bash
# Face quality and gallery calibration on LFW, recorded under bench/results/quality/ (README.md beside this
# script says what each step shows):
#   1. quality_bench sweep on View 1 (pairsDevTrain.txt): the degradation sweep that chose QualityPolicy's bounds,
#      and quality_bench pose: the spread of the pose estimate over View 1's portraits (the pose bounds);
#   2. quality_bench levels on View 2 (pairs.txt): verification errors by quality level, table and plot; it also
#      keeps the View 2 embeddings;
#   3. gallery_report_check: the gallery report of the View 2 people against View 2's own pair rates.
# Environment: BUILD (default build), LFW (default ../shared/data/lfw), MODEL (default models/default), THREADS
# (default 2), STEPS (default "sweep pose levels check"; "levels-reuse" re-rates View 2 from the kept
# measurements), SWEEP_PAIRS (default 600).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
LFW=${LFW:-../shared/data/lfw}
MODEL=${MODEL:-models/default}
THREADS=${THREADS:-2}
STEPS=${STEPS:-sweep pose levels check}
SWEEP_PAIRS=${SWEEP_PAIRS:-600}
OUT=bench/results/quality
CACHE=.cache/quality
mkdir -p "$OUT" "$CACHE"
for tool in bench/quality/quality_bench bench/calibration/gallery_report_check; do
  [[ -x "$BUILD/$tool" ]] || { echo "build it first: cmake --build $BUILD --target $(basename "$tool")" >&2; exit 1; }
done
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "$machine" >"$OUT/machine.txt"
for step in $STEPS; do
  case "$step" in
    sweep) "$BUILD/bench/quality/quality_bench" sweep --lfw "$LFW" --model "$MODEL" --threads "$THREADS" \
             --pairs "$LFW/pairsDevTrain.txt" --max-pairs "$SWEEP_PAIRS" --out "$OUT/view1_sweep" >/dev/null ;;
    pose) "$BUILD/bench/quality/quality_bench" pose --lfw "$LFW" --model "$MODEL" --threads "$THREADS" \
            --pairs "$LFW/pairsDevTrain.txt" --out "$OUT/view1_pose" >/dev/null ;;
    levels) "$BUILD/bench/quality/quality_bench" levels --lfw "$LFW" --model "$MODEL" --threads "$THREADS" \
              --pairs "$LFW/pairs.txt" --out "$OUT/view2_levels" --embeddings-out "$CACHE/view2_embeddings.bin" >/dev/null ;;
    levels-reuse) "$BUILD/bench/quality/quality_bench" levels --lfw "$LFW" --model "$MODEL" --pairs "$LFW/pairs.txt" \
                    --out "$OUT/view2_levels" --embeddings-out "$CACHE/view2_embeddings.bin" --reuse >/dev/null ;;
    check) "$BUILD/bench/calibration/gallery_report_check" --embeddings "$CACHE/view2_embeddings.bin" \
             --pairs "$LFW/pairs.txt" --model "$MODEL" --out "$OUT/gallery_report_check" >/dev/null ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
  echo "quality bench: $step done"
done
