#!/usr/bin/env bash
# LFW accuracy of a model bundle with veriface-eval, recorded under bench/results/.
#
#   bench/lfw/run_lfw.sh view1 TTA [TTA ...]   test-time candidates on View 1: threshold from
#                                              pairsDevTrain.txt, accuracy on pairsDevTest.txt
#   bench/lfw/run_lfw.sh view2 TTA             the standard 10-fold View 2 protocol (pairs.txt)
#
# Choose the test-time augmentation on View 1, then report it once on View 2: View 2 is never used to
# choose anything. Environment: BUILD (default build), LFW (default ../shared/data/lfw), MODEL (default
# models/default), THREADS (default 1: right for a busy 2-core machine), CACHE (default .cache/eval.sqlite,
# git-ignored; detections and per-view features are reused across runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
LFW=${LFW:-../shared/data/lfw}
MODEL=${MODEL:-models/default}
THREADS=${THREADS:-1}
CACHE=${CACHE:-.cache/eval.sqlite}
EVAL="$BUILD/trainer/eval/veriface-eval"
[[ -x "$EVAL" ]] || { echo "build veriface-eval first: ninja -C $BUILD veriface-eval" >&2; exit 1; }

mode=${1:?usage: $0 view1|view2 TTA...}
shift
[[ $# -ge 1 ]] || { echo "name at least one test-time augmentation (e.g. flip)" >&2; exit 1; }
for tta in "$@"; do
  name=$(echo "$tta" | tr '+=' '__')
  case "$mode" in
    view1)
      out=bench/results/lfw_view1_${name}
      "$EVAL" lfw --lfw "$LFW" --model "$MODEL" --cache "$CACHE" --threads "$THREADS" --tta "$tta" \
        --pairs "$LFW/pairsDevTest.txt" --train-pairs "$LFW/pairsDevTrain.txt" --out "$out.json"
      ;;
    view2)
      out=bench/results/lfw_view2_${name}
      "$EVAL" lfw --lfw "$LFW" --model "$MODEL" --cache "$CACHE" --threads "$THREADS" --tta "$tta" \
        --out "$out.json" --plots "$out"
      ;;
    *)
      echo "unknown mode '$mode' (view1 or view2)" >&2
      exit 1
      ;;
  esac
done
