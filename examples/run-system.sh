#!/usr/bin/env bash
# `make run`: a dev node (nex-node up --dev starts its own loopback nats-server), the example
# service examples/echo-service deployed on it with `nexctl devrun`, its logs shown live, and a
# few requests to it; then a JavaScript and a WebAssembly function, each invoked on its
# trigger subject. The dev server has two accounts: the control plane ($url: the node's
# control connection and nexctl's control commands) and the workload plane ($wurl: the
# service's own connection, host services and function triggers), so requests to workloads
# go to $wurl. The node serves Prometheus metrics on a loopback port it picks (printed).
# Ctrl-C (or NEX_RUN_SECONDS, when set) stops the workloads, then the node: the node runs in a
# session of its own (setsid), so the terminal's SIGINT reaches only this script, which stops
# the workloads while the node still serves and then sends the node SIGTERM.
# Usage: examples/run-system.sh BIN_DIR
set -euo pipefail
bin="${1:?usage: run-system.sh BIN_DIR}"
examples="$(cd "$(dirname "$0")" && pwd)"
state="$(mktemp -d)"
export NEX_HOME="$state/nex-home"   # nexctl's issuer and xkey for this run
logs=""
node=""
tail_pid=""

stop_all() {
  trap - EXIT INT TERM
  if [ -n "${url:-}" ] && [ -n "${node_id:-}" ]; then
    echo "== stopping the workloads"
    "$bin/nexctl" workload ls -s "$url" --json --timeout 2 2>/dev/null \
      | python3 -c 'import json,sys; [print(w["id"], w["name"]) for w in json.load(sys.stdin)]' 2>/dev/null \
      | while read -r id name; do
          "$bin/nexctl" stop "$node_id" "$id" --name "$name" -s "$url" --timeout 15 || true
        done
  fi
  [ -n "$logs" ] && kill "$logs" 2>/dev/null || true
  if [ -n "$node" ]; then
    echo "== stopping the node (SIGTERM)"
    kill -TERM "$node" 2>/dev/null || true
    wait "$node" 2>/dev/null || true
  fi
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null || true
  rm -rf "$state"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

echo '{"workload_types": ["native", "wasm", "javascript"]}' > "$state/node.json"
: > "$state/node.log"
tail -n +1 -f "$state/node.log" &
tail_pid=$!
# Its own session: Ctrl-C is the script's to handle (stop the workloads first).
setsid "$bin/nex-node" up --dev --state-dir "$state/node" --config "$state/node.json" --tag node_name=dev-node \
  --metrics --metrics-port 0 2>>"$state/node.log" &
node=$!
for _ in $(seq 1 200); do
  [ -s "$state/node/dev-nats/url" ] && break
  kill -0 "$node" 2>/dev/null || { echo "nex-node exited" >&2; exit 1; }
  sleep 0.05
done
url="$(cat "$state/node/dev-nats/url")"
wurl="$(cat "$state/node/dev-nats/workload-url")"
echo "== dev node up; control NATS at $url (account CONTROL), workloads in account WORKLOAD"
for _ in $(seq 1 100); do
  "$bin/nexctl" node ls -s "$url" --timeout 0.3 2>/dev/null | grep -q dev-node && break
  sleep 0.1
done
"$bin/nexctl" node ls -s "$url"

echo "== following workload logs (nexctl logs --follow)"
"$bin/nexctl" logs --follow -s "$url" &
logs=$!
sleep 0.3

echo "== nexctl devrun $bin/echo-service NATS_URL=<workload account URL>"
out="$("$bin/nexctl" devrun "$bin/echo-service" "NATS_URL=$wurl" --name echo -s "$url" --timeout 10)"
echo "$out"
node_id="$(echo "$out" | awk '/^node:/ {print $2}')"
workload="$(echo "$out" | awk '/^workload:/ {print $2}')"
[ -n "$workload" ] || { echo "devrun printed no workload id" >&2; exit 1; }

for i in 1 2 3; do
  for _ in $(seq 1 50); do
    if reply="$("$bin/nexctl" invoke echo.echo "hello $i" -s "$wurl" --timeout 1 2>/dev/null)"; then break; fi
    sleep 0.1
  done
  echo "== nexctl invoke echo.echo 'hello $i' -> ${reply:-no reply}"
done

echo "== functions: nexctl devrun examples/functions/echo.js --type javascript --trigger fn.echo.js"
"$bin/nexctl" devrun "$examples/functions/echo.js" --type javascript --trigger fn.echo.js -s "$url" --timeout 10
echo "== nexctl invoke fn.echo.js 'hello function' -> $("$bin/nexctl" invoke fn.echo.js 'hello function' -s "$wurl" --timeout 5)"
if command -v wat2wasm >/dev/null; then
  wat2wasm "$examples/functions/echo.wat" -o "$state/echo.wasm"
  echo "== nexctl devrun echo.wasm --type wasm --trigger fn.echo.wasm"
  "$bin/nexctl" devrun "$state/echo.wasm" --type wasm --trigger fn.echo.wasm -s "$url" --timeout 10
  echo "== nexctl invoke fn.echo.wasm 'hello wasm' -> $("$bin/nexctl" invoke fn.echo.wasm 'hello wasm' -s "$wurl" --timeout 5)"
fi
"$bin/nexctl" node info "$node_id" -s "$url"
metrics="$(grep -o 'metrics served url=[^ ]*' "$state/node.log" | head -1 | cut -d= -f2)"
if [ -n "$metrics" ]; then
  echo "== metrics: curl -s $metrics   (Prometheus text; e.g. the function counters:)"
  python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' "$metrics" \
    | grep -E '^nex_(workload_count|function_trigger)' || true
fi

if [ -n "${NEX_RUN_SECONDS:-}" ]; then
  sleep "$NEX_RUN_SECONDS"
else
  echo "== running; Ctrl-C stops the workloads, then the node"
  wait "$node"
fi
