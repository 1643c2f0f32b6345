#!/usr/bin/env bash
# `make run`: a dev node (nex-node up --dev starts its own loopback nats-server), the NATSWire
# demo against that server, and nexctl showing the node. Runs until Ctrl-C, or for
# NEX_RUN_SECONDS seconds when set.
# Usage: examples/run-system.sh BIN_DIR
set -euo pipefail
bin="${1:?usage: run-system.sh BIN_DIR}"
state="$(mktemp -d)"
"$bin/nex-node" up --dev --state-dir "$state" --tag node_name=dev-node &
node=$!
trap 'kill -TERM "$node" 2>/dev/null || true; wait "$node" 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 1 200); do
  [ -s "$state/dev-nats/url" ] && break
  kill -0 "$node" 2>/dev/null || { echo "nex-node exited" >&2; exit 1; }
  sleep 0.05
done
url="$(cat "$state/dev-nats/url")"
echo "== dev node up; control NATS at $url"
for _ in $(seq 1 100); do
  "$bin/nexctl" node ls -s "$url" --timeout 0.3 2>/dev/null | grep -q dev-node && break
  sleep 0.1
done
echo "== NATSWire demo"
NATS_URL="$url" "$bin/natswire-demo"
echo "== nexctl node ls -s $url"
"$bin/nexctl" node ls -s "$url"
if [ -n "${NEX_RUN_SECONDS:-}" ]; then
  sleep "$NEX_RUN_SECONDS"
else
  echo "== the node is running; try: $bin/nexctl node info -s $url <ID>   (Ctrl-C stops it)"
  wait "$node"
fi
