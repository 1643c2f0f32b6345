#!/usr/bin/env bash
# A soak of one node: SOAK_CYCLES deploy/stop cycles and SOAK_CALLS wasm invocations, with the
# memory, descriptors, threads and processes of the node (and of the function's agent) before and
# after. Prints `soak ...` lines; each pass's last says `soak flat` or `soak NOT FLAT` (and the
# script then fails). Two passes: the node relaying invocations (mode=relayed), then the agent
# serving them on its own connection (mode=direct: an operator-mode server, `direct_triggers`).
#
#   swift build -c release --product nex-node --product nex-agent --product soak-bench
#   Benchmarks/soak-bench.sh
#
# Environment: BIN (release bin dir), NATS_SERVER_BIN, SOAK_CYCLES (1000), SOAK_CALLS (1000000),
# SOAK_CONCURRENCY (32), SOAK_MODES ("relayed direct").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '%s\n' "$*" >&2; }
die() { log "soak-bench: $*"; exit 1; }
source Benchmarks/bench-common.sh

BIN="${BIN:-.build/release}"
node_bench_setup soak-bench
command -v wat2wasm >/dev/null || die "wat2wasm is needed (apt-get install wabt)"

find_nats_server
mkdir -p "$WORK/artifacts"
wat2wasm examples/functions/echo.wat -o "$WORK/artifacts/echo.wasm"
NODE_CONFIG='"workload_types": ["native", "wasm"], "machine_pool_size": 2'

for mode in ${SOAK_MODES:-relayed direct}; do
    start_function_mode "$mode" "$NODE_CONFIG" "$BIN/soak-bench"
    BENCH_MODE="$mode" "$BIN/soak-bench" "$NATS_URL" "$NODE_ID" "$NODE_PID" "$WORK/artifacts" "$WORK/artifacts/echo.wasm" \
        | tee "$WORK/soak-$mode.out"
    grep -q '^soak flat$' "$WORK/soak-$mode.out" || die "the node did not stay flat ($mode)"
    stop_function_mode
done
