#!/usr/bin/env bash
# LFW accuracy of a model bundle with veriface-eval, recorded under bench/results/.
#
#   bench/lfw/run_lfw.sh view1 TTA [TTA ...]   test-time candidates on View 1: threshold from
#                                              pairsDevTrain.txt, accuracy on pairsDevTest.txt (and, as a
#                                              check, the other way round); one JSON per candidate under
#                                              bench/results/lfw_view1_tta/ and the table lfw_view1_tta.md
#   bench/lfw/run_lfw.sh view1-table           only rewrite that table from the JSON files already there
#   bench/lfw/run_lfw.sh view2                 the standard 10-fold View 2 protocol (pairs.txt) with the
#                                              bundle's own test-time setting: bench/results/lfw_view2.json
#                                              and bench/results/lfw_view2/{roc,similarity}.png
#   bench/lfw/run_lfw.sh view2 TTA             the same with another setting: lfw_view2_<TTA>.json
#
# Choose the test-time augmentation on View 1, then report it once on View 2: View 2 is never used to
# choose anything. Environment: BUILD (default build), LFW (default ../shared/data/lfw), MODEL (default
# models/default), THREADS (default 1: right for a busy 2-core machine), CACHE (default .cache/eval.sqlite,
# git-ignored; detections and per-view features are reused across runs). The View 1 table needs jq.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
LFW=${LFW:-../shared/data/lfw}
MODEL=${MODEL:-models/default}
THREADS=${THREADS:-1}
CACHE=${CACHE:-.cache/eval.sqlite}
EVAL="$BUILD/trainer/eval/veriface-eval"

lfw() {
  [[ -x "$EVAL" ]] || { echo "build veriface-eval first: ninja -C $BUILD veriface-eval" >&2; exit 1; }
  "$EVAL" lfw --lfw "$LFW" --model "$MODEL" --cache "$CACHE" --threads "$THREADS" "$@"
}

# The View 1 table from the JSON files of every candidate run so far; $1 names one of them for the model id.
view1_table() {
  local dir=bench/results/lfw_view1_tta
  command -v jq >/dev/null || { echo "jq not found: no table (the JSON files are in $dir)" >&2; exit 0; }
  table=bench/results/lfw_view1_tta.md
  {
    echo "# LFW View 1: test-time augmentation candidates"
    echo
    echo "Written by \`bench/lfw/run_lfw.sh view1 ...\` from \`$dir/*.json\` (model \`$(jq -r .model.id "$dir/$(echo "$1" | tr '+=' '__').json")\`)."
    echo "DevTest: threshold of best accuracy on pairsDevTrain.txt (2,200 pairs), accuracy on pairsDevTest.txt"
    echo "(1,000 pairs: one pair is 0.1%). Reversed: threshold on DevTest, accuracy on DevTrain. Pooled: both"
    echo "readings over their 3,200 test pairs. AUC and EER on DevTest. Chips: backbone passes per face."
    echo
    echo "The rule: the highest DevTest accuracy wins, and of those the one with the fewest chips (the server"
    echo "pays for each); the reversed reading only confirms that a lead is not one pair of luck."
    echo
    echo "| test time | chips | DevTest acc | reversed acc | pooled acc | DevTest AUC | DevTest EER |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for f in "$dir"/*.json; do
      case "$f" in *.reversed.json) continue ;; esac
      r="${f%.json}.reversed.json"
      jq -r --slurpfile rev "$r" '
        def pct: (. * 10000 | round) as $n | "\($n / 100 | floor).\($n % 100 | tostring | if length < 2 then "0" + . else . end)%";
        ((.test.accuracy * 1000 + $rev[0].test.accuracy * 2200) / 3200) as $pooled
        | [.test_time.spec, .test_time.chips_per_image, (.test.accuracy | pct), ($rev[0].test.accuracy | pct),
           ($pooled | pct), .all_pairs.auc, (.all_pairs.eer | pct)]
        | "| `" + (.[0]) + "` | " + (.[1:] | map(tostring) | join(" | ")) + " |"' "$f"
    done | sort -t'|' -k3,3n
  } >"$table"
  echo "table: $table"
}

mode=${1:?usage: $0 view1 TTA... | view1-table | view2 [TTA]}
shift
case "$mode" in
  view1)
    [[ $# -ge 1 ]] || { echo "name at least one test-time augmentation (e.g. flip)" >&2; exit 1; }
    dir=bench/results/lfw_view1_tta
    mkdir -p "$dir"
    for tta in "$@"; do
      name=$(echo "$tta" | tr '+=' '__')
      lfw --tta "$tta" --pairs "$LFW/pairsDevTest.txt" --train-pairs "$LFW/pairsDevTrain.txt" --out "$dir/$name.json"
      # The same pairs the other way round: a second View 1 reading with 2,200 test pairs, to tell a real
      # difference from one or two pairs of luck on DevTest's 1,000.
      lfw --tta "$tta" --pairs "$LFW/pairsDevTrain.txt" --train-pairs "$LFW/pairsDevTest.txt" \
        --out "$dir/${name}.reversed.json" --no-progress >/dev/null
    done
    view1_table "$1"
    ;;
  view2)
    if [[ $# -eq 0 ]]; then
      out=bench/results/lfw_view2
      lfw --out "$out.json" --plots "$out"
    else
      name=$(echo "$1" | tr '+=' '__')
      out=bench/results/lfw_view2_${name}
      lfw --tta "$1" --out "$out.json" --plots "$out"
    fi
    ;;
  view1-table)
    view1_table "${1:-flip}"
    ;;
  *)
    echo "unknown mode '$mode' (view1, view1-table or view2)" >&2
    exit 1
    ;;
esac
