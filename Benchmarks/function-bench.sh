#!/usr/bin/env bash
# Functions on a real node: invocation round trip (wasm, JavaScript) beside a plain NATSWire
# echo responder, calls/s, cold start. Prints `functions ...` lines, in two passes: the node
# relaying every invocation (mode=relayed), then agents serving their triggers on connections
# of their own (mode=direct: an operator-mode server and `direct_triggers`); then the runtimes
# alone, in process (function-runtime-bench: echo latency and calls/s for JavaScript and wasm).
#
#   swift build -c release   (nex-node, nex-agent, function-bench, function-runtime-bench)
#   Benchmarks/function-bench.sh
#
# Environment: BIN (release bin dir), NATS_SERVER_BIN, BENCH_CALLS (2000), BENCH_MODES
# ("relayed direct").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '%s\n' "$*" >&2; }
die() { log "function-bench: $*"; exit 1; }
source Benchmarks/bench-common.sh

BIN="${BIN:-.build/release}"
node_bench_setup function-bench
command -v wat2wasm >/dev/null || die "wat2wasm is needed (apt-get install wabt)"
find_nats_server
mkdir -p "$WORK/artifacts"
wat2wasm examples/functions/echo.wat -o "$WORK/artifacts/echo.wasm"
cp examples/functions/echo.js "$WORK/artifacts/echo.js"
NODE_CONFIG='"workload_types": ["native", "wasm", "javascript"], "machine_pool_size": 2'

for mode in ${BENCH_MODES:-relayed direct}; do
    start_function_mode "$mode" "$NODE_CONFIG" "$BIN/function-bench"
    BENCH_MODE="$mode" BENCH_SERVER_PID="$SERVER_PID" BENCH_NODE_PID="$NODE_PID" \
        "$BIN/function-bench" "$NATS_URL" "$NODE_ID" "$WORK/artifacts/echo.js" "$WORK/artifacts/echo.wasm"
    stop_function_mode
done
# The runtimes alone, in process: what the node and the agent add is the difference.
"$BIN/function-runtime-bench" "$WORK/artifacts/echo.js" "$WORK/artifacts/echo.wasm"
