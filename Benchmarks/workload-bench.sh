#!/usr/bin/env bash
# Native workloads on a real node: deploy latency, 100 workloads' memory, log throughput.
# Prints `workloads ...` lines (see Benchmarks/workload-bench/main.swift for the targets).
#
#   swift build -c release --product nex-node --product nex-agent --product workload-bench
#   Benchmarks/workload-bench.sh
#
# Environment: BIN (release bin dir), NATS_SERVER_BIN, BENCH_DEPLOYS (50), BENCH_WORKLOADS (100),
# BENCH_LOG_LINES (200000), BENCH_POOL (machine_pool_size, default 4).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '%s\n' "$*" >&2; }
die() { log "workload-bench: $*"; exit 1; }
source Benchmarks/bench-common.sh

BIN="${BIN:-.build/release}"
for exe in nex-node nex-agent workload-bench; do [[ -x "$BIN/$exe" ]] || die "no $BIN/$exe (swift build -c release)"; done
WORK="$(mktemp -d "${TMPDIR:-/tmp}/workload-bench.XXXXXX")"
SERVER_PID="" NODE_PID=""
cleanup() {
    local status=$?
    [[ -n "$NODE_PID" ]] && stop_process "$NODE_PID"
    [[ -n "$SERVER_PID" ]] && stop_process "$SERVER_PID"
    [[ $status -ne 0 && -f "$WORK/node.log" ]] && { log "--- nex-node log (tail) ---"; tail -n 30 "$WORK/node.log" >&2; }
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT

find_nats_server
start_nats_server "$WORK/server.log" -js -sd "$WORK/js"
printf '{"machine_pool_size": %s, "node_limits": {"max_workloads": 500}}\n' "${BENCH_POOL:-4}" > "$WORK/node.json"
"$BIN/nex-node" up -s "$NATS_URL" --state-dir "$WORK/state" --config "$WORK/node.json" >"$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 100); do [[ -s "$WORK/state/node.nk" ]] && break; sleep 0.05; done
NODE_ID="$(python3 -c 'import nkeys,sys; print(nkeys.from_seed(open(sys.argv[1],"rb").read().strip()).public_key.decode())' "$WORK/state/node.nk")"
grep -q "agent bus ready" "$WORK/node.log" || sleep 1
sleep 1  # the warm pool fills
mkdir -p "$WORK/artifacts"
"$BIN/workload-bench" "$NATS_URL" "$NODE_ID" "$NODE_PID" "$WORK/artifacts"
