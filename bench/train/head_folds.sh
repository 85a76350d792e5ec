#!/usr/bin/env bash
# Benchmark 1a: a dense head over the frozen pretrained face-resnet, trained with the triplet loss, by the
# LFW View 2 fold protocol: for each fold k, train on the people of the other nine folds of people.txt,
# choose the threshold on the other nine folds' pairs, test fold k. Also the source bundle (pass-through
# head) on the same faces, and a final head trained on every fold's people (bundle in $FINAL).
#
#   [NAME=train_head_folds_x] [FINAL=dir] bench/train/head_folds.sh [extra veriface-train options]
# NAME names the result (bench/results/NAME.json) and the work folder, so candidates can sit side by side;
# FINAL= (empty) skips the final head trained on every fold's people.
# SOURCE= names the source bundle (default models/default); a fusion bundle with --backbone source trains
# its fusion head. Needs the bundle and LFW (../shared/data/lfw). First run: detects and caches the faces of
# all 13,233 images and their backbone features (the long part); later runs take minutes.
set -euo pipefail
source "$(dirname "$0")/common.sh"
NAME=${NAME:-train_head_folds}
WORK=$WORK_ROOT/$NAME
FINAL=${FINAL-$ROOT/models/trained-head}
SOURCE=${SOURCE:-$ROOT/models/default}
start=$(date +%s)
cmd=(nice -n 10 "$TRAIN" folds --data "$LFW" --people "$LFW/people.txt" --pairs "$LFW/pairs.txt"
     --source-model "$SOURCE" --cache-dir "$CACHE" --work-dir "$WORK" --resume
     ${FINAL:+--final-out "$FINAL"} --result "$WORK/result.json" "$@")
"${cmd[@]}" >/dev/null
record_result "$NAME" "$WORK/result.json" $(($(date +%s) - start)) "${cmd[@]}"
