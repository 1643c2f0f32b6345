#!/usr/bin/env bash
# Starts a nats-server on a free loopback port, runs the NATSWire demo against it, stops it.
# Usage: Examples/run-demo.sh BIN_DIR   (the folder holding natswire-demo)
set -euo pipefail
bin_dir="${1:?usage: run-demo.sh BIN_DIR}"
server="${NATS_SERVER_BIN:-/usr/sbin/nats-server}"
[ -x "$server" ] || server="$(command -v nats-server)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
work="$(mktemp -d)"
"$server" -a 127.0.0.1 -p "$port" -js -sd "$work/js" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "nats-server $("$server" --version | awk '{print $2}') on 127.0.0.1:$port"
NATS_URL="nats://127.0.0.1:$port" "$bin_dir/natswire-demo"
