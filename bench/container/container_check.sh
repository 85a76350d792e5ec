#!/usr/bin/env bash
# The container image, built and run for real with podman (deploy/image): the base images made with
# debootstrap, the CPU image built from the project's Dockerfile, then the running container checked from
# outside with the project's own client on real LFW images, through its published ports:
#   - it runs as its non-root user (uid 10001, also as seen from the host), and its HEALTHCHECK passes;
#   - Enroll, Verify and Identify answer correctly; Prometheus metrics count those calls;
#   - the gallery survives `podman stop` / `podman start`, and a new container on the same volume;
#   - SIGTERM under load: the server drains, exits 0 within its grace period, and no call fails but with
#     UNAVAILABLE (refused once it stopped accepting);
#   - deploy/compose/docker-compose.yml brought up with podman-compose and with docker-compose on podman's API
#     socket (Prometheus from a local stand-in image, Grafana left out: neither image can be pulled here), and
#     Prometheus scraping the server.
# Writes bench/results/container.json and container.md. It rebuilds everything (a few tens of minutes on two
# cores), so it is a benchmark, not a test.
#
# Usage: bench/container/container_check.sh [--reuse] [--source head|worktree] [--client PATH] [--lfw DIR]
#                                           [--no-compose] [--keep] [--out-dir DIR]
#   --reuse      keep the base images and podman's layer cache, and skip the build if the image exists
#   --source     head (default): the committed tree, with the working tree's Dockerfile (build-image.sh --git);
#                worktree: the working tree as it is
#   --client     the veriface client to check with (default build/client/veriface, copied before use)
#   --lfw        default ../shared/data/lfw
#   --keep       leave the container and its volume when done
# Needs root; installs podman, runc, debootstrap and podman-compose with apt-get when missing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/image/lib.sh
source "$HERE/../../deploy/image/lib.sh"
ROOT="$VF_ROOT"

orig_args=("$@")
reuse=0 source_tree=head client="$ROOT/build/client/veriface" lfw="$(cd "$ROOT/.." && pwd)/shared/data/lfw"
compose=1 keep=0 out_dir="$ROOT/bench/results"
image="localhost/veriface:latest" name="veriface-check" volume="veriface-check-gallery"
while [ $# -gt 0 ]; do
  case "$1" in
    --reuse) reuse=1; shift ;;
    --source) source_tree="$2"; shift 2 ;;
    --client) client="$2"; shift 2 ;;
    --lfw) lfw="$2"; shift 2 ;;
    --no-compose) compose=0; shift ;;
    --keep) keep=1; shift ;;
    --out-dir) out_dir="$2"; shift 2 ;;
    *) vf_die "unknown argument '$1'" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || vf_die "run as root (rootful podman)"
vf_need_podman
vf_need debootstrap:debootstrap curl:curl python3:python3
[ -x "$client" ] || vf_die "no client at '$client': build the target veriface first"
[ -f "$lfw/pairsDevTrain.txt" ] || vf_die "no LFW at '$lfw'"

scratch="${VERIFACE_IMAGE_SCRATCH:-/tmp/veriface-image}/check"
rm -rf "$scratch" && mkdir -p "$scratch"
results="$scratch/checks.jsonl"
: > "$results"
started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# check NAME PASS(0/1) SECONDS DETAIL: one line of the record.
check() {
  python3 -c 'import json, sys; print(json.dumps({"check": sys.argv[1], "passed": sys.argv[2] == "1",
    "seconds": float(sys.argv[3]) if sys.argv[3] else None, "detail": sys.argv[4]}))' "$1" "$2" "$3" "$4" >> "$results"
  if [ "$2" = 1 ]; then vf_say "PASS $1: $4"; else vf_say "FAIL $1: $4"; fi
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
jq_py() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# The client is copied: build/ may be rebuilt by others while this runs.
cp "$client" "$scratch/veriface" && client="$scratch/veriface"
client_sha="$(sha256sum "$client" | cut -d' ' -f1)"

cleanup() {
  local rc=$?
  [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null
  [ -n "${service_pid:-}" ] && kill "$service_pid" 2>/dev/null
  if [ "$keep" -eq 0 ]; then
    podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
    podman volume rm -f "$volume" >/dev/null 2>&1 || true
  fi
  exit $rc
}
trap cleanup EXIT

# ---- build ----------------------------------------------------------------------------------------------------
if [ "$reuse" -eq 0 ]; then
  start=$(now)
  "$VF_IMAGE_DIR/make-base-images.sh" --force 2> "$scratch/bases.log" || { cat "$scratch/bases.log" >&2; exit 1; }
  check "base images made" 1 "$(since "$start")" "$(grep -o 'localhost/veriface-base[^[]*' "$scratch/bases.log" | tr '\n' ';')"
fi
build_args=(--jobs "$(nproc)" --report "$scratch/build.json" --log "$scratch/build.log")
[ "$reuse" -eq 0 ] && build_args+=(--no-cache)
if [ "$source_tree" = head ]; then
  build_args+=(--git HEAD)
  for f in Dockerfile .dockerignore deploy/docker; do
    [ -n "$(git -C "$ROOT" status --porcelain -- "$f")" ] && build_args+=(--overlay "$f")
  done
fi
if [ "$reuse" -eq 1 ] && vf_image_exists "$image"; then
  vf_say "--reuse: using the existing $image"
  echo '{}' > "$scratch/build.json"
else
  start=$(now)
  if "$VF_IMAGE_DIR/build-image.sh" "${build_args[@]}" 2> "$scratch/build-image.err"; then
    check "image built" 1 "$(since "$start")" "$(grep -o 'localhost/veriface:latest ([^)]*): .*' "$scratch/build-image.err" | head -1)"
  else
    check "image built" 0 "$(since "$start")" "$(tail -5 "$scratch/build-image.err" | tr '\n' ' ')"
    exit 1
  fi
fi

# ---- what is in it --------------------------------------------------------------------------------------------
podman image inspect "$image" > "$scratch/image.json"
podman history --format '{{.Size}}\t{{.CreatedBy}}' "$image" > "$scratch/history.txt"
podman run --rm --entrypoint /bin/sh "$image" 2>> "$scratch/podman.log" -c '
  du -sb /opt/veriface/bin /opt/veriface/libexec /opt/veriface/lib /opt/veriface/models /opt/veriface/etc /opt/veriface/share
  echo "libraries $(ls /opt/veriface/lib | wc -l)"
  echo "packages $(dpkg-query -W | wc -l)"
  du -sbx / 2>/dev/null | sed "s/\t.*//; s/^/rootfs /"
  cd /opt/veriface/lib && ls -S | head -12 | while read -r f; do echo "big $(stat -c %s "$f") $f"; done
  # Libraries the tree carries although the base image already has the same soname.
  for f in /opt/veriface/lib/*; do b=$(basename "$f"); for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu; do
    [ -e "$d/$b" ] && { echo "duplicate $(stat -c %s "$f") $b"; break; }; done; done; exit 0' > "$scratch/contents.txt"
podman run --rm --entrypoint /bin/cat "$image" /opt/veriface/share/runtime-libraries.txt > "$scratch/runtime-libraries.txt" 2>> "$scratch/podman.log"
# Why each library is there (the DT_NEEDED graph, read on the host from the mounted image).
mounted="$(podman image mount "$image")"
python3 "$HERE/library_closure.py" "$mounted/opt/veriface" > "$scratch/closure.json" || echo '{}' > "$scratch/closure.json"
podman image unmount "$image" > /dev/null
user="$(jq_py 'd[0]["Config"].get("User", "")' < "$scratch/image.json")"
check "image runs as a numeric non-root user" "$([ "${user%%:*}" = 10001 ] && echo 1 || echo 0)" "" "Config.User=$user"

# ---- run ------------------------------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
grpc_port="$(free_port)" metrics_port="$(free_port)"
server="127.0.0.1:$grpc_port"
vf() { "$client" --server "$server" --timeout 20 "$@"; }
podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
podman volume rm -f "$volume" >/dev/null 2>&1 || true

run_container() {
  podman run -d --name "$name" -p "127.0.0.1:$grpc_port:50051" -p "127.0.0.1:$metrics_port:9464" \
    -v "$volume:/var/lib/veriface" "$image" > /dev/null 2>> "$scratch/podman.log"
}
# Polls the image's own HEALTHCHECK (`podman healthcheck run`: without systemd podman has no timer for it).
wait_healthy() {
  local t0=$1 limit=$2
  while :; do
    if podman healthcheck run "$name" > /dev/null 2>&1; then since "$t0"; return 0; fi
    [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || { echo "exited"; return 1; }
    [ "$(python3 -c "import sys; print(int(float(sys.argv[1]) > $limit))" "$(since "$t0")")" = 0 ] ||
      { echo "timeout"; return 1; }
    sleep 1
  done
}
health_status() {
  podman inspect "$name" | jq_py '(d[0]["State"].get("Health") or d[0]["State"].get("Healthcheck") or {}).get("Status", "?")'
}

start=$(now)
run_container
if t="$(wait_healthy "$start" 300)"; then
  check "HEALTHCHECK passes" 1 "$t" "podman healthcheck run: healthy ${t} s after podman run; State.Health.Status=$(health_status)"
else
  check "HEALTHCHECK passes" 0 "" "$t; $(podman logs "$name" 2>&1 | tail -5 | tr '\n' ' ')"
  exit 1
fi

pid="$(podman inspect --format '{{.State.Pid}}' "$name")"
host_uid="$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")"
inner_uid="$(podman exec "$name" id -u)"
exe="$(readlink "/proc/$pid/exe")"
check "runs as its non-root user" "$([ "$host_uid" = 10001 ] && [ "$inner_uid" = 10001 ] && echo 1 || echo 0)" "" \
  "id -u in the container: $inner_uid; the server process (pid $pid on the host, $exe) has uid $host_uid on the host"

vf --json info > "$scratch/info.json" || true

# Real LFW images through the published port: three people enrolled from five photos each, then queried
# with photos that were not enrolled.
people=(Colin_Powell Tony_Blair George_W_Bush)
enroll_ok=1 enroll_detail=""
start=$(now)
for p in "${people[@]}"; do
  files=("$lfw/$p/${p}_000"{1..5}.jpg)
  if vf --json enroll --no-progress --id "$p" "${files[@]}" > "$scratch/enroll-$p.json"; then
    n="$(jq_py 'len(d["enrolled"])' < "$scratch/enroll-$p.json")"
  else
    n=0
  fi
  [ "$n" = 5 ] || enroll_ok=0
  enroll_detail+="$p: $n/5 enrolled; "
done
check "Enroll" "$enroll_ok" "$(since "$start")" "$enroll_detail"

verify() {  # verify A B EXPECTED(true/false) -> "similarity match"
  vf --json verify "$1" "$2" | jq_py '"%.3f %s %.3f %s" % (d["similarity"], str(d["match"]).lower(), d["threshold"], d["threshold_source"])'
}
verify_ok=1 verify_detail=""
start=$(now)
while read -r a b expected; do
  r="$(verify "$lfw/$a" "$lfw/$b" || echo "error error")"
  read -r sim match thr src <<< "$r"
  [ "$match" = "$expected" ] || verify_ok=0
  verify_detail+="$(basename "$a") vs $(basename "$b"): similarity $sim, match $match (expected $expected); "
done <<'EOF'
Colin_Powell/Colin_Powell_0006.jpg Colin_Powell/Colin_Powell_0007.jpg true
Tony_Blair/Tony_Blair_0006.jpg Tony_Blair/Tony_Blair_0007.jpg true
Colin_Powell/Colin_Powell_0006.jpg Tony_Blair/Tony_Blair_0006.jpg false
George_W_Bush/George_W_Bush_0006.jpg Tony_Blair/Tony_Blair_0008.jpg false
EOF
r="$(vf --json verify id:Colin_Powell "$lfw/Colin_Powell/Colin_Powell_0008.jpg" | jq_py '"%.3f %s" % (d["similarity"], str(d["match"]).lower())' || echo "error error")"
read -r sim match <<< "$r"
[ "$match" = true ] || verify_ok=0
verify_detail+="id:Colin_Powell vs Colin_Powell_0008.jpg: similarity $sim, match $match (expected true); threshold $thr ($src)"
check "Verify" "$verify_ok" "$(since "$start")" "$verify_detail"

identify() {  # identify IMAGE -> "top_identity similarity match"
  vf --json identify "$1" | jq_py '(lambda m: "%s %.3f %s" % (m[0]["identity_id"], m[0]["similarity"], str(m[0]["match"]).lower()) if m else "none 0 false")(d.get("matches", []))'
}
identify_ok=1 identify_detail=""
start=$(now)
for p in "${people[@]}"; do
  r="$(identify "$lfw/$p/${p}_0010.jpg" || echo "error 0 false")"
  read -r top sim match <<< "$r"
  { [ "$top" = "$p" ] && [ "$match" = true ]; } || identify_ok=0
  identify_detail+="${p}_0010.jpg -> $top ($sim, match $match); "
done
r="$(vf --json identify --all "$lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg" | jq_py '[m["match"] for m in d.get("matches", [])].count(True)' || echo error)"
[ "$r" = 0 ] || identify_ok=0
identify_detail+="Aaron_Eckhart_0001.jpg (not enrolled): $r matches above the threshold"
check "Identify" "$identify_ok" "$(since "$start")" "$identify_detail"

curl -fsS "http://127.0.0.1:$metrics_port/metrics" > "$scratch/metrics.txt" || : > "$scratch/metrics.txt"
metrics_detail="$(python3 - "$scratch/metrics.txt" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
counts = {}
for m in re.finditer(r'^veriface_rpc_requests_total\{([^}]*)\} (\S+)$', text, re.M):
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
    if labels.get("code") == "OK":
        counts[labels.get("method", "?")] = counts.get(labels.get("method", "?"), 0) + float(m.group(2))
def get(name):
    m = re.search(r'^' + name + r'(?:\{[^}]*\})? (\S+)$', text, re.M)
    return m.group(1) if m else "absent"
want = [k for k in counts if any(w in k for w in ("Verify", "Enroll", "Identify"))]
ok = all(any(w in k and counts[k] > 0 for k in counts) for w in ("Verify", "Enroll", "Identify"))
print(int(ok), "; ".join(f"{k} OK={counts[k]:g}" for k in sorted(want)) +
      f"; veriface_gallery_identities={get('veriface_gallery_identities')}; veriface_gallery_store_up={get('veriface_gallery_store_up')};"
      f" {len(text.splitlines())} lines")
EOF
)"
check "metrics scraped" "${metrics_detail%% *}" "" "curl http://127.0.0.1:$metrics_port/metrics: ${metrics_detail#* }"

# ---- the gallery on its volume ----------------------------------------------------------------------------------
gallery_count() { vf --json list --all | jq_py 'len(d.get("identities", []))' 2>/dev/null || echo error; }
identities_before="$(gallery_count)"
start=$(now)
podman stop -t 30 "$name" > /dev/null 2>> "$scratch/podman.log"
stop_s="$(since "$start")"
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$name")"
start=$(now)
podman start "$name" > /dev/null 2>> "$scratch/podman.log"
t="$(wait_healthy "$start" 300 || true)"
after_restart="$(gallery_count)"
top="$(identify "$lfw/Tony_Blair/Tony_Blair_0010.jpg" | cut -d' ' -f1 || echo error)"
check "gallery survives podman stop / start" \
  "$([ "$identities_before" = 3 ] && [ "$after_restart" = 3 ] && [ "$top" = Tony_Blair ] && echo 1 || echo 0)" "$t" \
  "identities before: $identities_before; podman stop took $stop_s s, exit code $exit_code; healthy again ${t} s after podman start; identities after: $after_restart; Tony_Blair_0010.jpg -> $top"

podman logs "$name" > "$scratch/server-1.log" 2>&1
podman rm -f -t 30 "$name" > /dev/null 2>> "$scratch/podman.log"
start=$(now)
run_container
t="$(wait_healthy "$start" 300 || true)"
in_new="$(gallery_count)"
check "gallery survives a new container on the same volume" "$([ "$in_new" = 3 ] && echo 1 || echo 0)" "$t" \
  "podman rm, then podman run -v $volume:/var/lib/veriface: healthy after ${t} s, $in_new identities"

# ---- SIGTERM under load -----------------------------------------------------------------------------------------
# Verify and Identify from the load generator, and one enrolment stream of 16 photos sent just before
# SIGTERM: the server must finish that stream (it was in progress), refuse only what comes after, exit 0 well
# within its grace period (server.shutdown_grace_seconds, 10 s), and the enrolment must be on the volume.
images=()
for p in "${people[@]}"; do images+=("$lfw/$p/${p}_0011.jpg" "$lfw/$p/${p}_0012.jpg"); done
"$client" --server "$server" --timeout 30 --json load --mix verify=2,identify=1 -c 2 -n 150 "${images[@]}" \
  > "$scratch/load.json" 2> "$scratch/load.err" &
load_pid=$!
sleep 3
drain_files=("$lfw/Gerhard_Schroeder/Gerhard_Schroeder_00"{01..16}.jpg)
( "$client" --server "$server" --timeout 30 --retries 0 --json enroll --no-progress --id Gerhard_Schroeder \
    "${drain_files[@]}" > "$scratch/drain-enroll.json" 2> "$scratch/drain-enroll.err"
  now > "$scratch/drain-enroll.end" ) &
enroll_pid=$!
sleep 1
start=$(now)
podman stop -t 30 "$name" > /dev/null 2>> "$scratch/podman.log"
stop_s="$(since "$start")"
wait "$load_pid" "$enroll_pid" || true
load_pid=""
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$name")"
podman logs "$name" > "$scratch/server-2.log" 2>&1
drain_log="$(grep -E 'SIGTERM: draining|stopped' "$scratch/server-2.log" | sed 's/^\[[^]]*\] //' | tr '\n' ';' | cut -c1-200)"
summary="$(python3 - "$scratch/load.json" "$scratch/drain-enroll.json" "$start" "$scratch/drain-enroll.end" <<'EOF'
import json, sys
ok = True
try:
    d = json.load(open(sys.argv[1]))
    errors = d.get("errors", {}) or {}
    bad = {k: v for k, v in errors.items() if "UNAVAILABLE" not in k}
    ok &= d.get("ok", 0) > 0 and not bad
    load = f"load: {d.get('ok')} of {d.get('calls')} calls OK, errors {json.dumps(errors)}"
except Exception as e:
    ok, load = False, f"no load report ({e})"
try:
    e = json.load(open(sys.argv[2]))
    after = float(open(sys.argv[4]).read()) - float(sys.argv[3])
    n = len(e.get("enrolled", []))
    ok &= n == 16
    enroll = (f"the enrolment stream sent 1 s before SIGTERM: {n} of 16 enrolled, {len(e.get('failed', []))} failed, "
              f"{len(e.get('unanswered', []))} unanswered; it ended {after:.1f} s after SIGTERM"
              + (" (in flight, drained)" if after > 0 else " (before SIGTERM: not a drain)"))
except Exception as ex:
    ok, enroll = False, f"no enrolment report ({ex})"
print(int(ok), enroll + "; " + load)
EOF
)"
podman start "$name" > /dev/null 2>> "$scratch/podman.log"
wait_healthy "$(now)" 300 > /dev/null || true
after_drain="$(gallery_count)"
grace_ok="$(python3 -c "import sys; print(int(float(sys.argv[1]) < 12))" "$stop_s")"
check "SIGTERM drains and exits 0" \
  "$([ "$exit_code" = 0 ] && [ "$grace_ok" = 1 ] && [ "${summary%% *}" = 1 ] && [ -n "$drain_log" ] && [ "$after_drain" = 4 ] && echo 1 || echo 0)" "$stop_s" \
  "podman stop under load took $stop_s s, exit code $exit_code; server log: $drain_log; ${summary#* }; identities on the volume after a restart: $after_drain"
podman stop -t 30 "$name" > /dev/null 2>> "$scratch/podman.log"

# ---- compose ----------------------------------------------------------------------------------------------------
compose_file="$ROOT/deploy/compose/docker-compose.yml"
compose_checks() {  # compose_checks TOOL: the services answer and Prometheus scrapes the server
  local tool="$1" t0 up=0 target="" health=""
  t0=$(now)
  for _ in $(seq 300); do
    "$client" --server 127.0.0.1:50051 --timeout 5 health > /dev/null 2>&1 && { health=ok; break; }
    sleep 1
  done
  for _ in $(seq 60); do
    target="$(curl -fsS http://127.0.0.1:9090/api/v1/targets 2>/dev/null | jq_py '";".join("%s=%s" % (t["labels"]["job"], t["health"]) for t in d["data"]["activeTargets"])' 2>/dev/null || true)"
    [[ "$target" == *veriface=up* ]] && { up=1; break; }
    sleep 2
  done
  local identities
  identities="$("$client" --server 127.0.0.1:50051 --json list | jq_py 'len(d.get("identities", []))' 2>/dev/null || echo error)"
  check "compose up with $tool" "$([ "$health" = ok ] && [ "$up" = 1 ] && echo 1 || echo 0)" "$(since "$t0")" \
    "veriface health: ${health:-not SERVING}; Prometheus targets: ${target:-none}; identities: $identities; services: $2"
}
ports_free() { ! ss -ltn | grep -qE ':(50051|9464|9090|3000)\s'; }
if [ "$compose" -eq 1 ]; then
  if ! ports_free; then
    check "compose" 0 "" "skipped: one of the ports 50051, 9464, 9090, 3000 is in use on this host"
  else
    start=$(now)
    podman build -q -t localhost/veriface-check/prometheus:2.42.0 --build-arg "BASE=$VF_RUNTIME_BASE_DEFAULT" \
      -f "$HERE/prometheus.Containerfile" "$HERE" > /dev/null 2> "$scratch/prometheus-image.log"
    check "Prometheus stand-in image" 1 "$(since "$start")" \
      "localhost/veriface-check/prometheus:2.42.0 from Debian's prometheus package ($(podman image inspect --format '{{.Size}}' localhost/veriface-check/prometheus:2.42.0 | numfmt --to=si)B)"
    files=(-f "$compose_file" -f "$HERE/compose.local.yml")

    vf_need podman-compose:podman-compose
    project=veriface-check-pc
    podman-compose -p "$project" "${files[@]}" up -d veriface prometheus > "$scratch/podman-compose-up.log" 2>&1 || true
    compose_checks "podman-compose $(dpkg-query -W -f '${Version}' podman-compose 2>/dev/null)" \
      "$(podman ps --filter "label=io.podman.compose.project=$project" --format '{{.Names}}={{.Status}}' | tr '\n' ' ')"
    podman-compose -p "$project" "${files[@]}" down -v > "$scratch/podman-compose-down.log" 2>&1 || true
    # podman-compose 1.0.3's `down` leaves the project's network.
    podman volume rm -f "${project}_gallery" "${project}_prometheus-data" "${project}_grafana-data" > /dev/null 2>&1 || true
    podman network rm "${project}_default" > /dev/null 2>&1 || true

    # docker-compose (Debian's 1.29) against podman's Docker-compatible API socket.
    sock="$scratch/podman.sock"
    podman system service --time=0 "unix://$sock" > "$scratch/podman-service.log" 2>&1 &
    service_pid=$!
    for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.2; done
    project=veriface-check-dc
    DOCKER_HOST="unix://$sock" docker-compose -p "$project" "${files[@]}" up -d --no-build veriface prometheus \
      > "$scratch/docker-compose-up.log" 2>&1 || true
    compose_checks "docker-compose $(docker-compose version --short 2>/dev/null) on podman's API socket" \
      "$(podman ps --filter "label=com.docker.compose.project=$project" --format '{{.Names}}={{.Status}}' | tr '\n' ' ')"
    DOCKER_HOST="unix://$sock" docker-compose -p "$project" "${files[@]}" down -v > "$scratch/docker-compose-down.log" 2>&1 || true
    kill "$service_pid" 2>/dev/null; wait "$service_pid" 2>/dev/null || true
    service_pid=""
  fi
fi

# ---- the record -------------------------------------------------------------------------------------------------
mkdir -p "$out_dir"
python3 "$HERE/write_results.py" --scratch "$scratch" --out-dir "$out_dir" --image "$image" \
  --command "bench/container/container_check.sh${orig_args[*]:+ ${orig_args[*]}}" --started "$started_at" --client "$client_sha" \
  --source "$source_tree" --root "$ROOT"
