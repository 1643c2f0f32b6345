#!/usr/bin/env bash
# Native workloads on a real node: deploy latency, 100 workloads' memory, log throughput, on a
# sandboxed node (the default), then deploy latency and memory again on one with
# `no_sandbox: true`, and what the sandbox adds at p50 (target: at most 10 ms).
# Prints `workloads[...] ...` lines (see Benchmarks/workload-bench/main.swift for the targets).
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
node_bench_setup workload-bench

find_nats_server
start_nats_server "$WORK/server.log" -js -sd "$WORK/js"
# The log rate limit far above what one workload prints: the benchmark measures the log path.
config() {
    printf '{"machine_pool_size": %s, "node_limits": {"max_workloads": 500}, "no_sandbox": %s, "log_rate_limit": {"lines_per_second": 100000000, "bytes_per_second": 10000000000}}' "${BENCH_POOL:-4}" "$1"
}
start_nex_node "$(config false)"
"$BIN/workload-bench" "$NATS_URL" "$NODE_ID" "$NODE_PID" "$WORK/artifacts" | tee "$WORK/sandboxed.txt"
stop_process "$NODE_PID"
rm -rf "$WORK/state"
start_nex_node "$(config true)"
BENCH_LABEL=unsandboxed BENCH_SKIP_LOGS=1 "$BIN/workload-bench" "$NATS_URL" "$NODE_ID" "$NODE_PID" "$WORK/artifacts" \
    | tee "$WORK/unsandboxed.txt"
p50() { sed -n 's/.*deploy_p50_ms=\([0-9.]*\).*/\1/p' "$1"; }
awk -v with="$(p50 "$WORK/sandboxed.txt")" -v without="$(p50 "$WORK/unsandboxed.txt")" \
    'BEGIN { printf "workloads sandbox_deploy_p50_added_ms=%.1f (sandboxed %.1f, unsandboxed %.1f; target <= 10)\n", with - without, with, without }'
