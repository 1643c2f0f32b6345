#!/usr/bin/env bash
# A fleet on a three-server nats-server cluster: 100 deploys spread by auction over 3 nodes,
# fleet-wide workload ls with 300 workloads, node SIGKILL -> its reschedulable service running
# elsewhere. Prints `fleet ...` lines (see Benchmarks/fleet-bench/main.swift).
#
#   swift build -c release --product nex-node --product nex-agent --product fleet-bench
#   BIN=.build/release Benchmarks/fleet-bench.sh
#
# Environment: BIN (release bin dir), BENCH_DEPLOYS (100), BENCH_WORKLOADS (300).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${BIN:-.build/release}"
for exe in nex-node nex-agent fleet-bench; do
    [[ -x "$BIN/$exe" ]] || { echo "fleet-bench: no $BIN/$exe (swift build -c release)" >&2; exit 1; }
done
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fleet-bench.XXXXXX")"
trap 'status=$?; [[ $status -ne 0 ]] && tail -n 20 "$WORK"/node*/node.log >&2; rm -rf "$WORK"; exit $status' EXIT
"$BIN/fleet-bench" "$(cd "$BIN" && pwd)" "$WORK"
