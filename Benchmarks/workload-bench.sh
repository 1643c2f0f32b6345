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
node_bench_setup workload-bench

find_nats_server
start_nats_server "$WORK/server.log" -js -sd "$WORK/js"
# The log rate limit far above what one workload prints: the benchmark measures the log path.
start_nex_node "$(printf '{"machine_pool_size": %s, "node_limits": {"max_workloads": 500}, "log_rate_limit": {"lines_per_second": 100000000, "bytes_per_second": 10000000000}}' "${BENCH_POOL:-4}")"
"$BIN/workload-bench" "$NATS_URL" "$NODE_ID" "$NODE_PID" "$WORK/artifacts"
