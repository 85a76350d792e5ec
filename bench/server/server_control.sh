# Sourced by the benchmark scripts that run a real veriface-server: starts one on loopback ports it
# picks itself (read back from its ready file) with a scratch SQLite gallery, and stops it.
#
#   start_server NAME [KEY=VALUE ...]   sets server_pid and port; the log is $work/server-NAME.log
#   stop_server                         SIGTERM, then waits for the drain
# Needs: $server_bin, $repo, $model, $work; BENCH_SERVER_SETS (extra overrides for every server),
# VERIFACE_CONFIG (another configuration file, e.g. the one an older binary knows).
server_pid=""

# bench_workspace BUILD_DIR: sets server_bin and client_bin (VERIFACE_SERVER_BIN, else BUILD_DIR's),
# model (VERIFACE_MODEL_DIR, else models/default), lfw (the shared LFW folder) and a scratch $work, which
# goes at exit with the server.
bench_workspace() {
  server_bin="${VERIFACE_SERVER_BIN:-$1/server/veriface-server}"
  client_bin="$1/client/veriface"
  model="${VERIFACE_MODEL_DIR:-$repo/models/default}"
  lfw="${VERIFACE_SHARED_DIR:-$repo/../shared}/data/lfw"
  work="$(mktemp -d)"
  trap 'stop_server; rm -rf "$work"' EXIT
}

start_server() {
  local name="$1"
  shift
  rm -f "$work/ready.json" "$work/gallery.db"*
  local sets=(--set server.listen=127.0.0.1:0 --set metrics.listen=127.0.0.1:0 --set "server.ready_file=$work/ready.json")
  for s in ${BENCH_SERVER_SETS:-} "$@"; do sets+=(--set "$s"); done
  "$server_bin" --config "${VERIFACE_CONFIG:-$repo/config/veriface.yaml}" --model "$model" --gallery "$work/gallery.db" "${sets[@]}" \
    >"$work/server-$name.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1200); do
    [[ -s "$work/ready.json" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server-$name.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -s "$work/ready.json" ]] || { echo "server $name not ready after 120 s" >&2; exit 1; }
  port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc_port"])' "$work/ready.json")"
}

stop_server() {
  [[ -n "$server_pid" ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true  # it may have died already
  wait "$server_pid" || true
  server_pid=""
}
