#!/usr/bin/env bash
# A soak of one node: SOAK_CYCLES deploy/stop cycles and SOAK_CALLS wasm invocations, with the
# node's memory, descriptors, threads and processes before and after. Prints `soak ...` lines;
# the last says `soak flat` or `soak NOT FLAT` (and the script then fails).
#
#   swift build -c release --product nex-node --product nex-agent --product soak-bench
#   Benchmarks/soak-bench.sh
#
# Environment: BIN (release bin dir), NATS_SERVER_BIN, SOAK_CYCLES (1000), SOAK_CALLS (1000000),
# SOAK_CONCURRENCY (32).
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
start_nats_server "$WORK/server.log" -js -sd "$WORK/js"
start_nex_node '{"workload_types": ["native", "wasm"], "machine_pool_size": 2}'
wat2wasm examples/functions/echo.wat -o "$WORK/artifacts/echo.wasm"
"$BIN/soak-bench" "$NATS_URL" "$NODE_ID" "$NODE_PID" "$WORK/artifacts" "$WORK/artifacts/echo.wasm" | tee "$WORK/soak.out"
grep -q '^soak flat$' "$WORK/soak.out" || die "the node did not stay flat"
