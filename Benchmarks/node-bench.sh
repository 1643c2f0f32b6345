#!/usr/bin/env bash
# Measures a nex-node against its own local nats-server:
#
#   node start_to_ready_ms=...   process start -> READY=1 on NOTIFY_SOCKET   (target < 300)
#   node ping_p50_us=...         $NEX.PING.<id> round trip, nats-py client, 1000 requests
#   node idle_rss_mb=...         VmRSS 3 s after READY                        (target < 30)
#
# Usage (from anywhere):
#
#   swift build -c release --product nex-node
#   Benchmarks/node-bench.sh
#
# Environment:
#   NEX_NODE          node binary (default .build/release/nex-node)
#   NATS_SERVER_BIN   nats-server binary (default /usr/sbin/nats-server, else PATH)
#   BENCH_PINGS       ping requests (default 1000)
#   BENCH_IDLE_SECS   seconds to idle before reading RSS (default 3)
#   BENCH_STRICT=1    exit non-zero when a target is missed
#
# Needs python3 (socket module) and, for the ping round trip, nats-py (pip install nats-py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

NEX_NODE="${NEX_NODE:-.build/release/nex-node}"
PINGS="${BENCH_PINGS:-1000}"
IDLE_SECS="${BENCH_IDLE_SECS:-3}"
STRICT="${BENCH_STRICT:-0}"

log() { printf '%s\n' "$*" >&2; }
die() { log "node-bench: $*"; exit 1; }

[[ -x "$NEX_NODE" ]] || die "no node binary at $NEX_NODE (swift build -c release --product nex-node, or set NEX_NODE)"
NEX_NODE="$(cd "$(dirname "$NEX_NODE")" && pwd)/$(basename "$NEX_NODE")"
command -v python3 >/dev/null || die "python3 is needed"

if [[ -n "${NATS_SERVER_BIN:-}" ]]; then
    NATS_SERVER="$NATS_SERVER_BIN"
elif [[ -x /usr/sbin/nats-server ]]; then
    NATS_SERVER=/usr/sbin/nats-server
else
    NATS_SERVER="$(command -v nats-server || true)"
fi
[[ -n "$NATS_SERVER" && -x "$NATS_SERVER" ]] || die "nats-server not found (apt-get install nats-server, or set NATS_SERVER_BIN)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/node-bench.XXXXXX")"
SERVER_PID=""
NODE_PID=""

cleanup() {
    local status=$?
    for pid in $NODE_PID $SERVER_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [[ $status -ne 0 ]]; then
        [[ -f "$WORK/node.log" ]] && { log "--- nex-node log (tail) ---"; tail -n 20 "$WORK/node.log" >&2; }
        [[ -f "$WORK/server.log" ]] && { log "--- nats-server log (tail) ---"; tail -n 10 "$WORK/server.log" >&2; }
    fi
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ nats-server
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
URL="nats://127.0.0.1:$PORT"
"$NATS_SERVER" -a 127.0.0.1 -p "$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
python3 - "$PORT" <<'EOF' || die "nats-server did not start on port $PORT"
import socket, sys, time
port = int(sys.argv[1])
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            if s.recv(4).startswith(b"INFO"):
                sys.exit(0)
    except OSError:
        time.sleep(0.02)
sys.exit(1)
EOF
log "nats-server $("$NATS_SERVER" --version 2>/dev/null | head -n1) on $URL"

# ------------------------------------------------------------ start -> READY=1
# python binds the notify socket, starts the node itself (so the clock starts at the spawn),
# and reports the node's pid and the time until READY=1.
read -r NODE_PID READY_MS < <(python3 - "$NEX_NODE" "$URL" "$WORK" <<'EOF'
import os, socket, subprocess, sys, time
node, url, work = sys.argv[1], sys.argv[2], sys.argv[3]
path = os.path.join(work, "notify.sock")
listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
listener.bind(path)
listener.settimeout(0.05)
env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "WATCHDOG_USEC", "WATCHDOG_PID")}
env["NOTIFY_SOCKET"] = path
log = open(os.path.join(work, "node.log"), "wb")
start = time.monotonic()
proc = subprocess.Popen([node, "up", "-s", url, "--state-dir", os.path.join(work, "state")],
                        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
deadline = start + 30
while True:
    if time.monotonic() > deadline:
        print(proc.pid, "timeout"); sys.exit(0)
    if proc.poll() is not None:
        print(proc.pid, "exited"); sys.exit(0)
    try:
        data = listener.recv(4096)
    except socket.timeout:
        continue
    if b"READY=1" in data.split(b"\n"):
        print(proc.pid, "%.1f" % ((time.monotonic() - start) * 1000)); sys.exit(0)
EOF
)
[[ -n "${NODE_PID:-}" ]] || die "could not start $NEX_NODE"
case "$READY_MS" in
    timeout) die "no READY=1 from nex-node within 30 s" ;;
    exited) NODE_PID=""; die "nex-node exited before READY=1" ;;
esac

# ------------------------------------------------------------ ping round trip
PING_P50=""
if python3 -c 'import nats' 2>/dev/null; then
    PING_LINE="$(python3 - "$URL" "$PINGS" <<'EOF'
import asyncio, json, sys, time
import nats

async def main():
    url, count = sys.argv[1], int(sys.argv[2])
    nc = await nats.connect(url)
    # Learn the node id from a ping of all nodes.
    reply = await nc.request("$NEX.PING", b"", timeout=2)
    node = json.loads(reply.data)["data"]["node_id"]
    subject = "$NEX.PING." + node
    for _ in range(50):
        await nc.request(subject, b"", timeout=2)
    samples = []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        await nc.request(subject, b"", timeout=2)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(node, "%.1f %.1f %.1f" % (pick(0.50), pick(0.90), pick(0.99)))
    await nc.close()

asyncio.run(main())
EOF
)" || die "ping benchmark failed"
    read -r NODE_ID PING_P50 PING_P90 PING_P99 <<<"$PING_LINE"
    log "node $NODE_ID pid $NODE_PID"
else
    log "node-bench: nats-py not installed (pip install nats-py): skipping the ping round trip"
fi

# ------------------------------------------------------------ idle RSS
sleep "$IDLE_SECS"
kill -0 "$NODE_PID" 2>/dev/null || die "nex-node died while idle"
STATUS="$(cat "/proc/$NODE_PID/status")"
mb() { awk -v key="$1:" '$1 == key {printf "%.1f", $2 / 1024}' <<<"$STATUS"; }
RSS_MB="$(mb VmRSS)"
RSS_ANON_MB="$(mb RssAnon)"
RSS_FILE_MB="$(mb RssFile)"
THREADS="$(awk '$1 == "Threads:" {print $2}' <<<"$STATUS")"

# ------------------------------------------------------------ report
MISSED=0
READY_OK="$(awk -v v="$READY_MS" 'BEGIN {print (v < 300) ? "ok" : "MISSED"}')"
RSS_OK="$(awk -v v="$RSS_MB" 'BEGIN {print (v < 30) ? "ok" : "MISSED"}')"
[[ "$READY_OK" == ok && "$RSS_OK" == ok ]] || MISSED=1

echo "node start_to_ready_ms=$READY_MS (target < 300: $READY_OK)"
if [[ -n "$PING_P50" ]]; then
    echo "node ping_p50_us=$PING_P50 p90_us=$PING_P90 p99_us=$PING_P99 (n=$PINGS, nats-py client)"
fi
echo "node idle_rss_mb=$RSS_MB (target < 30: $RSS_OK) anon_mb=$RSS_ANON_MB file_mb=$RSS_FILE_MB threads=$THREADS"

if [[ "$STRICT" == 1 && $MISSED -ne 0 ]]; then
    exit 1
fi
