#!/usr/bin/env bash
# Compares natswire-bench (Swift) with cnats-bench (NATS C client) against
# ONE local nats-server. Usage (from anywhere):
#
#   swift build -c release --product natswire-bench   # optional, for the Swift side
#   Benchmarks/run-bench.sh
#
# Environment:
#   NATSWIRE_BENCH    Swift bench binary (default .build/release/natswire-bench)
#   NATS_SERVER_BIN   nats-server binary (default /usr/sbin/nats-server, else PATH)
#   BENCH_PUB_N / BENCH_PUB_SIZE        default 2000000 x 16
#   BENCH_PUBSUB_N / BENCH_PUBSUB_SIZE  default 1000000 x 16
#   BENCH_REQ_N / BENCH_REQ_SIZE        default 20000 x 16
#   BENCH_MODES       modes to run (default "pub pubsub req")
#   BENCH_ROUNDS      rounds per mode, C then Swift alternately (default 1);
#                     ratios use each peer's best round
#   BENCH_TIMEOUT     seconds allowed per single run (default 600)
#   BENCH_STRICT=1    exit non-zero when a target is missed
#   CC                C compiler (default gcc)
#
# Each bench prints one line such as
#   cnats pub msgs=2000000 size=16 rate=1234567 peak_rss_mb=5.2
#   natswire req msgs=20000 size=16 rate=9000 p50_us=100.0 p90_us=.. p99_us=.. peak_rss_mb=..
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PUB_N="${BENCH_PUB_N:-2000000}"
PUB_SIZE="${BENCH_PUB_SIZE:-16}"
PUBSUB_N="${BENCH_PUBSUB_N:-1000000}"
PUBSUB_SIZE="${BENCH_PUBSUB_SIZE:-16}"
REQ_N="${BENCH_REQ_N:-20000}"
REQ_SIZE="${BENCH_REQ_SIZE:-16}"
MODES="${BENCH_MODES:-pub pubsub req}"
ROUNDS="${BENCH_ROUNDS:-1}"
RUN_TIMEOUT="${BENCH_TIMEOUT:-600}"
STRICT="${BENCH_STRICT:-0}"
CC="${CC:-gcc}"

CNATS_SRC="Benchmarks/cnats/cnats-bench.c"
CNATS_BIN="Benchmarks/cnats/cnats-bench"
NATSWIRE_BENCH="${NATSWIRE_BENCH:-.build/release/natswire-bench}"

log() { printf '%s\n' "$*" >&2; }
die() { log "run-bench: $*"; exit 1; }

# shellcheck source=Benchmarks/bench-common.sh
source "$ROOT/Benchmarks/bench-common.sh"

# ------------------------------------------------------------ build C side
build_cnats

HAVE_SWIFT=1
if [[ ! -x "$NATSWIRE_BENCH" ]]; then
    HAVE_SWIFT=0
    log "run-bench: natswire bench binary missing at '$NATSWIRE_BENCH'"
    log "           (build it with: swift build -c release --product natswire-bench,"
    log "            or point NATSWIRE_BENCH at it); running the C side only"
fi

# ------------------------------------------------------------- the server
find_nats_server

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/natswire-bench.XXXXXX")"
SERVER_LOG="$WORK_DIR/nats-server.log"
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

start_nats_server "$SERVER_LOG"
log "nats-server $("$SERVER_BIN" --version 2>/dev/null | awk '{print $NF}') at $NATS_URL (pid $SERVER_PID)"

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

declare -A RESULT=()   # RESULT[peer.mode] = best line
FAILURES=0

# better MODE OLD NEW -> 0 when NEW beats OLD (higher rate, or lower p50 for req)
better() {
    local mode="$1" old="$2" new="$3"
    [[ -z "$old" ]] && return 0
    if [[ "$mode" == req ]]; then
        awk -v a="$(field "$new" p50_us)" -v b="$(field "$old" p50_us)" 'BEGIN { exit !(a + 0 < b + 0) }'
    else
        awk -v a="$(field "$new" rate)" -v b="$(field "$old" rate)" 'BEGIN { exit !(a + 0 > b + 0) }'
    fi
}

run_one() {
    local peer="$1" bin="$2" mode="$3" n="$4" size="$5"
    local out rc=0 line
    # Run in the background and `wait`, so INT/TERM reach our traps at once.
    "${TIMEOUT_CMD[@]}" "$bin" "$mode" "$n" "$size" >"$WORK_DIR/stdout" 2>"$WORK_DIR/stderr" &
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
    if better "$mode" "${RESULT[$peer.$mode]:-}" "$line"; then
        RESULT[$peer.$mode]="$line"
    fi
    if [[ "$peer" == natswire ]]; then
        local rss
        rss="$(field "$line" peak_rss_mb)"
        if [[ -n "$rss" ]] && awk -v a="$rss" -v b="${NATSWIRE_PEAK_RSS:-0}" 'BEGIN { exit !(a + 0 > b + 0) }'; then
            NATSWIRE_PEAK_RSS="$rss"
        fi
    fi
}

NATSWIRE_PEAK_RSS=""
for mode in $MODES; do
    case "$mode" in
        pub) n="$PUB_N"; size="$PUB_SIZE" ;;
        pubsub) n="$PUBSUB_N"; size="$PUBSUB_SIZE" ;;
        req) n="$REQ_N"; size="$REQ_SIZE" ;;
        *) die "unknown mode '$mode' in BENCH_MODES" ;;
    esac
    for ((round = 1; round <= ROUNDS; round++)); do
        run_one cnats "$CNATS_BIN" "$mode" "$n" "$size"
        if [[ "$HAVE_SWIFT" == 1 ]]; then
            run_one natswire "$NATSWIRE_BENCH" "$mode" "$n" "$size"
        fi
    done
done

# ------------------------------------------------------------ the table
echo
echo "== natswire vs cnats (nats-server at $NATS_URL, best of $ROUNDS round(s)) =="

# verdict VALUE OP TARGET -> "ok" / "MISSED"
verdict() {
    if awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
            if (op == ">=") exit !(v >= t);
            if (op == "<=") exit !(v <= t);
            if (op == "<")  exit !(v < t);
            exit 1 }'; then
        echo "ok"
    else
        echo "MISSED"
    fi
}

ratio_line() {
    local label="$1" mode="$2" key="$3" op="$4" target="$5"
    local c="${RESULT[cnats.$mode]:-}" s="${RESULT[natswire.$mode]:-}"
    if [[ " $MODES " != *" $mode "* ]]; then
        return
    fi
    if [[ -z "$c" ]]; then
        echo "$label = n/a (cnats $mode did not produce a result) (target $op $target)"
        return
    fi
    if [[ -z "$s" ]]; then
        echo "$label = n/a (natswire $mode result missing) (target $op $target)"
        return
    fi
    local cv sv ratio
    cv="$(field "$c" "$key")"
    sv="$(field "$s" "$key")"
    if [[ -z "$cv" || -z "$sv" ]] || ! awk -v c="$cv" 'BEGIN { exit !(c + 0 > 0) }'; then
        echo "$label = n/a (missing $key) (target $op $target)"
        return
    fi
    ratio="$(awk -v s="$sv" -v c="$cv" 'BEGIN { printf "%.2f", s / c }')"
    local v
    v="$(verdict "$ratio" "$op" "$target")"
    echo "$label = $ratio (target $op $target) $v   [natswire $key=$sv, cnats $key=$cv]"
}

TABLE="$(
    ratio_line "pub rate natswire/cnats" pub rate ">=" 0.5
    ratio_line "pubsub rate natswire/cnats" pubsub rate ">=" 0.7
    ratio_line "req p50 natswire/cnats" req p50_us "<=" 1.2
    if [[ -n "$NATSWIRE_PEAK_RSS" ]]; then
        echo "natswire peak RSS = $NATSWIRE_PEAK_RSS MB (target < 64 MB) $(verdict "$NATSWIRE_PEAK_RSS" "<" 64)"
    else
        echo "natswire peak RSS = n/a (no natswire result) (target < 64 MB)"
    fi
)"
echo "$TABLE"
if [[ "$HAVE_SWIFT" != 1 ]]; then
    echo "note: natswire bench binary '$NATSWIRE_BENCH' is missing; only the C side was measured"
fi
MISSED="$(grep -c ' MISSED' <<<"$TABLE" || true)"

if [[ "$FAILURES" -gt 0 ]]; then
    log "run-bench: $FAILURES run(s) failed"
    exit 1
fi
if [[ "$STRICT" == 1 && "$MISSED" -gt 0 ]]; then
    log "run-bench: $MISSED target(s) missed"
    exit 1
fi
exit 0
