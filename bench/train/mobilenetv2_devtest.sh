#!/usr/bin/env bash
# Benchmark 2: MobileNetV2 from scratch (no pretraining) on the LFW DevTrain people for a bounded time on
# this CPU, validated every epoch on pairsDevTest.txt (people disjoint from DevTrain). The study this
# project grew from reached 57.8% with an ImageNet-pretrained MobileNetV2.
#
#   MINUTES=60 bench/train/mobilenetv2_devtest.sh [extra veriface-train options]
set -euo pipefail
source "$(dirname "$0")/common.sh"
WORK=$WORK_ROOT/mobilenetv2-devtest
MINUTES=${MINUTES:-60}
rm -rf "$WORK"
start=$(date +%s)
cmd=(nice -n 10 "$TRAIN" train --data "$LFW" --train-people "$LFW/peopleDevTrain.txt"
     --val-pairs "$LFW/pairsDevTest.txt" --source-model "$ROOT/models/default" --cache-dir "$CACHE"
     --work-dir "$WORK" --backbone mobilenetv2 --time-budget "$MINUTES" --result "$WORK/result.json" "$@")
"${cmd[@]}"
cp "$WORK/log.csv" "$RESULTS/train_mobilenetv2_devtest_log.csv"
cp "$WORK/training.png" "$RESULTS/train_mobilenetv2_devtest_training.png"
cp "$WORK/validation.png" "$RESULTS/train_mobilenetv2_devtest_validation.png"
record_result train_mobilenetv2_devtest "$WORK/result.json" $(($(date +%s) - start)) "${cmd[@]}"
