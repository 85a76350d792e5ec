#!/usr/bin/env bash
# Benchmark 1b: LFW View 1. A dense head over the frozen face-resnet trained on the DevTrain people,
# validated on pairsDevTest.txt (whose people never train), against the source bundle (backbone alone,
# pass-through head) on the same pairs and faces.
#
#   [NAME=train_head_devtest_x] [SOURCE=bundle] bench/train/head_devtest.sh [extra veriface-train options]
# SOURCE= names the source bundle (default models/default); a fusion bundle with --backbone source trains
# its fusion head.
set -euo pipefail
source "$(dirname "$0")/common.sh"
NAME=${NAME:-train_head_devtest}
WORK=$WORK_ROOT/$NAME
SOURCE=${SOURCE:-$ROOT/models/default}
rm -rf "$WORK"
start=$(date +%s)
cmd=(nice -n 10 "$TRAIN" train --data "$LFW" --train-people "$LFW/peopleDevTrain.txt"
     --val-pairs "$LFW/pairsDevTest.txt" --source-model "$SOURCE" --cache-dir "$CACHE"
     --work-dir "$WORK" --result "$WORK/result.json" "$@")
"${cmd[@]}"
record_result "$NAME" "$WORK/result.json" $(($(date +%s) - start)) "${cmd[@]}"
