#!/usr/bin/env bash
# Compares jetstream-bench (NATSWire, Swift) with the same operations in nats-py and, for the
# key-value modes, in the NATS C client (Benchmarks/cnats/cnats-bench) against ONE local
# nats-server with JetStream, in the same run. Usage (from anywhere):
#
#   swift build -c release --product jetstream-bench
#   Benchmarks/jetstream-bench.sh
#
# Modes: objput / objget (one object of BENCH_OBJ_SIZE bytes, streamed from / to a file; MB/s and
# peak RSS) and kvput / kvget (BENCH_KV_N sequential operations on BENCH_KV_SIZE-byte values; ops/s).
# kvput / kvget also run cnats-bench (libnats; built here like Benchmarks/run-bench.sh does) after
# the nats-py and NATSWire runs, and print natswire/cnats ratios (target >= 0.8).
#
# Environment:
#   JETSTREAM_BENCH   Swift bench binary (default .build/release/jetstream-bench)
#   NATS_SERVER_BIN   nats-server binary (default /usr/sbin/nats-server, else PATH)
#   PYTHON            python3 with nats-py (default python3)
#   CC                C compiler for cnats-bench (default gcc)
#   BENCH_OBJ_SIZE    default 67108864 (64 MiB)
#   BENCH_KV_N        default 10000
#   BENCH_KV_SIZE     default 16
#   BENCH_MODES       default "objput objget kvput kvget"
#   BENCH_ROUNDS      rounds per mode, nats-py, NATSWire, then cnats for kv modes (default 1);
#                     ratios use each side's best
#   BENCH_TIMEOUT     seconds allowed per single run (default 600)
#   BENCH_STRICT=1    exit non-zero when a target is missed
#
# Each run prints one line, e.g.
#   natswire objput size=67108864 mbps=450.2 peak_rss_mb=33.1
#   natspy kvget ops=10000 size=16 rate=2100 peak_rss_mb=30.5
#   cnats kvget msgs=10000 size=16 rate=7500 peak_rss_mb=6.1
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OBJ_SIZE="${BENCH_OBJ_SIZE:-67108864}"
KV_N="${BENCH_KV_N:-10000}"
KV_SIZE="${BENCH_KV_SIZE:-16}"
MODES="${BENCH_MODES:-objput objget kvput kvget}"
ROUNDS="${BENCH_ROUNDS:-1}"
RUN_TIMEOUT="${BENCH_TIMEOUT:-600}"
STRICT="${BENCH_STRICT:-0}"
PYTHON="${PYTHON:-python3}"
JETSTREAM_BENCH="${JETSTREAM_BENCH:-.build/release/jetstream-bench}"
CC="${CC:-gcc}"
CNATS_SRC="Benchmarks/cnats/cnats-bench.c"
CNATS_BIN="Benchmarks/cnats/cnats-bench"

log() { printf '%s\n' "$*" >&2; }
die() { log "jetstream-bench: $*"; exit 1; }

"$PYTHON" -c 'import nats' 2>/dev/null || die "$PYTHON cannot import nats (pip install nats-py)"

# shellcheck source=Benchmarks/bench-common.sh
source "$ROOT/Benchmarks/bench-common.sh"

# ------------------------------------------------------------ build C side
build_cnats
HAVE_SWIFT=1
if [[ ! -x "$JETSTREAM_BENCH" ]]; then
    HAVE_SWIFT=0
    log "jetstream-bench: Swift bench binary missing at '$JETSTREAM_BENCH'"
    log "                 (build it with: swift build -c release --product jetstream-bench,"
    log "                  or point JETSTREAM_BENCH at it); running the nats-py side only"
fi


find_nats_server

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/jetstream-bench.XXXXXX")"
SERVER_PID=""
BENCH_PID=""

cleanup() {
    local rc=$?
    if [[ -n "$BENCH_PID" ]]; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true
        wait "$BENCH_PID" 2>/dev/null || true
    fi
    stop_process "$SERVER_PID"
    rm -rf "$WORK_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ the nats-py side
cat >"$WORK_DIR/natspy_bench.py" <<'PY'
# natspy_bench.py MODE N SIZE: the nats-py side of jetstream-bench.sh (same operations, same output).
import asyncio, os, sys, tempfile, time
import nats

BUCKET = "natspy_bench"

def peak_rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return "%.1f" % (int(line.split()[1]) / 1024)
    return "0"

def write_source(path, size):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            piece = os.urandom(min(left, 1 << 20))
            f.write(piece)
            left -= len(piece)

async def objects(js, put, size):
    obs = await js.create_object_store(BUCKET)
    name = "object-%d" % size
    work = tempfile.mkdtemp(prefix="natspy-bench-")
    try:
        needs_put = put
        if not put:
            try:
                needs_put = (await obs.get_info(name)).size != size
            except Exception:
                needs_put = True
        if needs_put:
            source = os.path.join(work, "source.bin")
            write_source(source, size)
            # Time the storing of a new object, not the purge of the one it would replace.
            try:
                await obs.delete(name)
            except Exception:
                pass
            with open(source, "rb") as f:
                start = time.perf_counter()
                info = await obs.put(name, f)
                elapsed = time.perf_counter() - start
            os.remove(source)
            if put:
                assert info.size == size
                print("natspy objput size=%d mbps=%.1f peak_rss_mb=%s" % (size, size / 1e6 / elapsed, peak_rss_mb()))
                return
        target = os.path.join(work, "target.bin")
        with open(target, "wb") as f:
            start = time.perf_counter()
            await obs.get(name, writeinto=f)
            elapsed = time.perf_counter() - start
        assert os.path.getsize(target) == size
        print("natspy objget size=%d mbps=%.1f peak_rss_mb=%s" % (size, size / 1e6 / elapsed, peak_rss_mb()))
    finally:
        for entry in os.listdir(work):
            os.remove(os.path.join(work, entry))
        os.rmdir(work)

async def key_value(js, put, n, size):
    kv = await js.create_key_value(bucket=BUCKET)
    value = bytes(i % 256 for i in range(size))
    keys = 1000
    if put:
        start = time.perf_counter()
        for i in range(n):
            await kv.put("key%d" % (i % keys), value)
        elapsed = time.perf_counter() - start
        print("natspy kvput ops=%d size=%d rate=%d peak_rss_mb=%s" % (n, size, n / elapsed, peak_rss_mb()))
        return
    for i in range(keys):
        try:
            await kv.get("key%d" % i)
        except Exception:
            await kv.put("key%d" % i, value)
    start = time.perf_counter()
    for i in range(n):
        entry = await kv.get("key%d" % (i % keys))
        assert len(entry.value) == size
    elapsed = time.perf_counter() - start
    print("natspy kvget ops=%d size=%d rate=%d peak_rss_mb=%s" % (n, size, n / elapsed, peak_rss_mb()))

async def main():
    mode, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    nc = await nats.connect(os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    js = nc.jetstream(timeout=30)
    try:
        if mode in ("objput", "objget"):
            await objects(js, mode == "objput", size)
        elif mode in ("kvput", "kvget"):
            await key_value(js, mode == "kvput", n, size)
        else:
            raise SystemExit("unknown mode " + mode)
    finally:
        await nc.close()

asyncio.run(main())
PY

# ------------------------------------------------------------- the server
start_nats_server "$WORK_DIR/nats-server.log" -js -sd "$WORK_DIR/store"
log "nats-server $("$SERVER_BIN" --version 2>/dev/null | awk '{print $NF}') with JetStream at $NATS_URL (pid $SERVER_PID)"

# ------------------------------------------------------------- the runs
TIMEOUT_CMD=()
if command -v timeout >/dev/null 2>&1; then
    TIMEOUT_CMD=(timeout --signal=TERM --kill-after=10 "$RUN_TIMEOUT")
fi

# field LINE KEY -> value of KEY=value in LINE (empty when absent)
field() {
    local word
    for word in $1; do
        if [[ "$word" == "$2="* ]]; then
            printf '%s' "${word#*=}"
            return
        fi
    done
}

metric() { case "$1" in obj*) echo mbps ;; *) echo rate ;; esac; }

declare -A RESULT=()   # RESULT[peer.mode] = best line
FAILURES=0
NATSWIRE_OBJ_RSS=""

run_one() {
    local peer="$1" mode="$2" n="$3" size="$4"
    shift 4
    local out rc=0 line key
    "${TIMEOUT_CMD[@]}" "$@" "$mode" "$n" "$size" >"$WORK_DIR/stdout" 2>"$WORK_DIR/stderr" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    out="$(cat "$WORK_DIR/stdout")"
    line="$(printf '%s\n' "$out" | grep -E "^$peer $mode " | tail -n 1 || true)"
    if [[ $rc -ne 0 || -z "$line" ]]; then
        FAILURES=$((FAILURES + 1))
        echo "$peer $mode FAILED (exit $rc)"
        sed 's/^/    /' "$WORK_DIR/stderr" | tail -n 10
        [[ -n "$out" ]] && printf '%s\n' "$out" | sed 's/^/    /' | tail -n 5
        return 0
    fi
    echo "$line"
    key="$(metric "$mode")"
    local old="${RESULT[$peer.$mode]:-}"
    if [[ -z "$old" ]] || awk -v a="$(field "$line" "$key")" -v b="$(field "$old" "$key")" 'BEGIN { exit !(a + 0 > b + 0) }'; then
        RESULT[$peer.$mode]="$line"
    fi
    if [[ "$peer" == natswire && "$mode" == obj* ]]; then
        local rss
        rss="$(field "$line" peak_rss_mb)"
        if [[ -n "$rss" ]] && awk -v a="$rss" -v b="${NATSWIRE_OBJ_RSS:-0}" 'BEGIN { exit !(a + 0 > b + 0) }'; then
            NATSWIRE_OBJ_RSS="$rss"
        fi
    fi
}

for mode in $MODES; do
    case "$mode" in
        objput | objget) n=1; size="$OBJ_SIZE" ;;
        kvput | kvget) n="$KV_N"; size="$KV_SIZE" ;;
        *) die "unknown mode '$mode' in BENCH_MODES" ;;
    esac
    for ((round = 1; round <= ROUNDS; round++)); do
        run_one natspy "$mode" "$n" "$size" "$PYTHON" "$WORK_DIR/natspy_bench.py"
        if [[ "$HAVE_SWIFT" == 1 ]]; then
            run_one natswire "$mode" "$n" "$size" "$JETSTREAM_BENCH"
        fi
        if [[ "$mode" == kv* ]]; then
            run_one cnats "$mode" "$n" "$size" "$CNATS_BIN"
        fi
    done
done

# ------------------------------------------------------------ the table
echo
echo "== natswire vs nats-py / cnats, JetStream (nats-server at $NATS_URL, best of $ROUNDS round(s)) =="

verdict() {
    if [[ "$2" == "-" ]]; then echo "(no target)"; return; fi
    if awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
            if (op == ">=") exit !(v >= t);
            if (op == "<")  exit !(v < t);
            exit 1 }'; then
        echo "ok"
    else
        echo "MISSED"
    fi
}

ratio_line() {
    local label="$1" mode="$2" op="$3" target="$4" other="${5:-natspy}"
    local key p s
    local other_name="nats-py"
    [[ "$other" == cnats ]] && other_name="cnats"
    [[ " $MODES " == *" $mode "* ]] || return 0
    key="$(metric "$mode")"
    p="${RESULT[$other.$mode]:-}"
    s="${RESULT[natswire.$mode]:-}"
    local goal="(target $op $target)"
    [[ "$op" == "-" ]] && goal="(no target)"
    if [[ -z "$p" || -z "$s" ]]; then
        echo "$label = n/a (a side produced no result) $goal"
        return 0
    fi
    local pv sv ratio
    pv="$(field "$p" "$key")"
    sv="$(field "$s" "$key")"
    ratio="$(awk -v s="$sv" -v p="$pv" 'BEGIN { if (p + 0 > 0) printf "%.2f", s / p; else print "n/a" }')"
    local v=""
    [[ "$op" != "-" ]] && v=" $(verdict "$ratio" "$op" "$target")"
    echo "$label = $ratio $goal$v   [natswire $key=$sv, $other_name $key=$pv]"
}

TABLE="$(
    ratio_line "objput MB/s natswire/nats-py" objput ">=" 3
    ratio_line "objget MB/s natswire/nats-py" objget ">=" 3
    ratio_line "kvput ops/s natswire/nats-py" kvput "-" ""
    ratio_line "kvget ops/s natswire/nats-py" kvget "-" ""
    ratio_line "kvput ops natswire/cnats" kvput ">=" 0.8 cnats
    ratio_line "kvget ops natswire/cnats" kvget ">=" 0.8 cnats
    if [[ -n "$NATSWIRE_OBJ_RSS" ]]; then
        echo "natswire peak RSS (object modes) = $NATSWIRE_OBJ_RSS MB (target < 64 MB) $(verdict "$NATSWIRE_OBJ_RSS" "<" 64)"
    fi
)"
echo "$TABLE"
[[ "$HAVE_SWIFT" == 1 ]] || echo "note: Swift bench binary '$JETSTREAM_BENCH' is missing; only nats-py was measured"
MISSED="$(grep -c ' MISSED' <<<"$TABLE" || true)"

if [[ "$FAILURES" -gt 0 ]]; then
    log "jetstream-bench: $FAILURES run(s) failed"
    exit 1
fi
if [[ "$STRICT" == 1 && "$MISSED" -gt 0 ]]; then
    log "jetstream-bench: $MISSED target(s) missed"
    exit 1
fi
exit 0
