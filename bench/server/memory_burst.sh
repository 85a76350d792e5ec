#!/usr/bin/env bash
# Resident memory of one real server through bursts of large images (issue 15's figures): 16 Embed calls
# at once of a 5900x5900 PNG (35 Mpixel, inside limits.max_image_pixels), then 200 Verify calls at once of
# two 1920-wide group photos. Records the server's RSS before, its peak during (sampled every 0.2 s) and
# 5 s after each burst, and the calls' outcomes. Writes one JSON object to OUT.
#
# usage: bench/server/memory_burst.sh BUILD_DIR OUT [--set KEY=VALUE ...]
#   VERIFACE_SERVER_BIN: another server binary (e.g. one built before a change, for a before/after), with
#   VERIFACE_CONFIG: the configuration file that binary knows.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1" out="$2"
shift 2
photos="$repo/../shared/data/group-photos"
# shellcheck source=bench/server/server_control.sh
source "$repo/bench/server/server_control.sh"
bench_workspace "$build"

# A smooth 5900x5900 image: a gradient compresses to a few MB of PNG, under limits.max_image_bytes.
/usr/bin/python3 - "$work/large.png" <<'PY'
import sys
import cv2
import numpy as np
x = np.linspace(0, 255, 5900, dtype=np.float32)
grey = ((x[None, :] + x[:, None]) / 2).astype(np.uint8)
cv2.imwrite(sys.argv[1], cv2.merge([grey, grey[::-1], grey.T]))
PY

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
# Runs a `veriface load` burst while sampling RSS; prints one JSON object.
burst() {  # name, then veriface load arguments
  local name="$1"
  shift
  local before peak=0 samples="$work/rss-$name.txt"
  before=$(rss_kib)
  "$client_bin" --server "127.0.0.1:$port" --timeout 600 --json load "$@" >"$work/load-$name.json" &
  local load_pid=$!
  while kill -0 "$load_pid" 2>/dev/null; do
    rss_kib >>"$samples"
    sleep 0.2
  done
  wait "$load_pid" || true
  sleep 5
  peak=$(sort -n "$samples" | tail -1)
  /usr/bin/python3 - "$name" "$before" "$peak" "$(rss_kib)" "$work/load-$name.json" <<'PY'
import json, sys
name, before, peak, after, load = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5]
r = json.load(open(load))
print(json.dumps({"burst": name, "rss_mb_before": round(before / 1024), "rss_mb_peak": round(peak / 1024),
                  "rss_mb_5s_after": round(after / 1024), "calls": r.get("calls"), "ok": r.get("ok"),
                  "errors": r.get("errors", {}), "error_examples": r.get("error_examples", {})}))
PY
}

sets=()
for s in "$@"; do [[ $s == --set ]] || sets+=("$s"); done
start_server memory "${sets[@]}"
idle=$(rss_kib)
{
  echo "{\"server\": \"$(basename "$server_bin")\", \"overrides\": \"${sets[*]}\", \"rss_mb_idle\": $((idle / 1024)), \"bursts\": ["
  burst embed_16x_5900px --mix embed=1 -c 16 -n 16 "$work/large.png"
  echo ","
  burst verify_200x_group --mix verify=1 -c 200 -n 200 "$photos/sample1.jpg" "$photos/sample6.jpg"
  echo "]}"
} >"$work/result.json"
/usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), indent=1))' "$work/result.json" >"$out"
cat "$out"
