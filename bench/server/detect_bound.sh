#!/usr/bin/env bash
# Detection work per image through a real server (issue 15): the time to answer Embed (no embeddings)
# for a blank 5000x5000 image, the worst in-limit case (no face, so the whole pyramid is searched), next to
# a 1920x1280 group photo; and what the bound costs small faces: the faces found in the six group photos
# enlarged 3x (22-27 Mpixel), with detection at full size against on a copy of limits.detect_max_pixels.
# Each server variant answers the same images; one call at a time, the median of REPEATS. Writes JSON to OUT.
#
# usage: bench/server/detect_bound.sh BUILD_DIR OUT [REPEATS]
#   VERIFACE_SERVER_BIN: another server binary (e.g. one built before the bound, for a before/after).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1" out="$2" repeats="${3:-3}"
photos="$repo/../shared/data/group-photos"
# shellcheck source=bench/server/server_control.sh
source "$repo/bench/server/server_control.sh"
bench_workspace "$build"

/usr/bin/python3 - "$photos" "$work" <<'PY'
import glob, os, sys
import cv2
import numpy as np
photos, work = sys.argv[1], sys.argv[2]
cv2.imwrite(os.path.join(work, "blank.png"), np.zeros((5000, 5000, 3), np.uint8))
for path in sorted(glob.glob(os.path.join(photos, "*.jpg"))):
    image = cv2.imread(path)
    big = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(os.path.join(work, "x3-" + os.path.basename(path)), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
PY

# One Embed without embeddings: "seconds faces".
embed() {
  local t0 t1 faces
  t0=$(date +%s.%N)
  faces=$("$client_bin" --server "127.0.0.1:$port" --timeout 600 --json embed --no-embeddings "$1" |
    /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("faces", [])))')
  t1=$(date +%s.%N)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}') $faces"
}
median_seconds() {  # image -> "median_seconds faces"
  local runs=() faces=0
  for _ in $(seq "$repeats"); do
    read -r s faces < <(embed "$1")
    runs+=("$s")
  done
  printf '%s\n' "${runs[@]}" | sort -g | awk -v f="$faces" '{a[NR]=$1} END {print a[int((NR+1)/2)], f}'
}

variant() {  # name, then --set overrides
  local name="$1"
  shift
  start_server "$name" "$@"
  embed "$photos/sample1.jpg" >/dev/null  # warm-up
  read -r blank_s _ < <(median_seconds "$work/blank.png")
  read -r photo_s photo_faces < <(median_seconds "$photos/sample1.jpg")
  local faces=() total=0
  for f in "$work"/x3-*.jpg; do
    read -r _ n < <(embed "$f")
    faces+=("\"$(basename "$f")\": $n")
    total=$((total + n))
  done
  stop_server
  echo "{\"variant\": \"$name\", \"overrides\": \"$*\", \"blank_5000x5000_s\": $blank_s," \
    "\"photo_1920x1280_s\": $photo_s, \"photo_faces\": $photo_faces, \"blank_over_photo\": $(awk -v a="$blank_s" -v b="$photo_s" 'BEGIN {print a / b}')," \
    "\"enlarged_x3_faces\": {$(IFS=,; echo "${faces[*]}")}, \"enlarged_x3_faces_total\": $total}"
}

{
  echo "["
  variant full_size limits.detect_max_pixels=0
  echo ","
  variant bounded_4mpx limits.detect_max_pixels=4000000
  echo "]"
} >"$work/result.json"
/usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), indent=1))' "$work/result.json" >"$out"
cat "$out"
