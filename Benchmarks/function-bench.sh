#!/usr/bin/env bash
# Functions on a real node: invocation round trip (wasm, JavaScript) beside a plain NATSWire
# echo responder, calls/s, cold start. Prints `functions ...` lines.
#
#   swift build -c release   (nex-node, nex-agent, function-bench)
#   Benchmarks/function-bench.sh
#
# Environment: BIN (release bin dir), NATS_SERVER_BIN, BENCH_CALLS (2000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '%s\n' "$*" >&2; }
die() { log "function-bench: $*"; exit 1; }
source Benchmarks/bench-common.sh

BIN="${BIN:-.build/release}"
for exe in nex-node nex-agent function-bench; do [[ -x "$BIN/$exe" ]] || die "no $BIN/$exe (swift build -c release)"; done
command -v wat2wasm >/dev/null || die "wat2wasm is needed (apt-get install wabt)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/function-bench.XXXXXX")"
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
echo '{"workload_types": ["native", "wasm", "javascript"], "machine_pool_size": 2}' > "$WORK/node.json"
"$BIN/nex-node" up -s "$NATS_URL" --state-dir "$WORK/state" --config "$WORK/node.json" >"$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 100); do [[ -s "$WORK/state/node.nk" ]] && break; sleep 0.05; done
NODE_ID="$(python3 -c 'import nkeys,sys; print(nkeys.from_seed(open(sys.argv[1],"rb").read().strip()).public_key.decode())' "$WORK/state/node.nk")"
sleep 1  # the warm pool fills
wat2wasm examples/functions/echo.wat -o "$WORK/echo.wasm"
"$BIN/function-bench" "$NATS_URL" "$NODE_ID" "$ROOT/examples/functions/echo.js" "$WORK/echo.wasm"
