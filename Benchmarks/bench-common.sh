# Shared by the benchmark scripts (sourced; expects `log` and `die` defined):
# building the C peer, finding and starting one loopback nats-server, stopping processes.

# Builds $CNATS_SRC into $CNATS_BIN with $CC against libnats.
build_cnats() {
    local flags
    if pkg-config --exists libnats 2>/dev/null; then
        # shellcheck disable=SC2207
        flags=($(pkg-config --cflags --libs libnats))
    else
        flags=(-lnats)
    fi
    log "building $CNATS_BIN"
    "$CC" -O2 -o "$CNATS_BIN" "$CNATS_SRC" "${flags[@]}" -lpthread \
        || die "cannot build $CNATS_BIN (is libnats-dev installed?)"
}

# Sets SERVER_BIN: $NATS_SERVER_BIN, else Debian's /usr/sbin/nats-server, else PATH.
find_nats_server() {
    if [[ -n "${NATS_SERVER_BIN:-}" ]]; then
        SERVER_BIN="$NATS_SERVER_BIN"
    elif [[ -x /usr/sbin/nats-server ]]; then
        SERVER_BIN=/usr/sbin/nats-server
    elif command -v nats-server >/dev/null 2>&1; then
        SERVER_BIN="$(command -v nats-server)"
    else
        die "nats-server not found (set NATS_SERVER_BIN)"
    fi
    [[ -x "$SERVER_BIN" ]] || die "nats-server binary '$SERVER_BIN' is not executable"
}

free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_nats_server LOG [ARGS...]: starts $SERVER_BIN on a free loopback port with ARGS, waits
# until it greets with INFO, sets PORT and SERVER_PID, exports NATS_URL.
start_nats_server() {
    local server_log="$1"
    shift
    PORT="$(free_port)"
    "$SERVER_BIN" -a 127.0.0.1 -p "$PORT" "$@" >"$server_log" 2>&1 &
    SERVER_PID=$!
    local ready=0
    for _ in $(seq 1 100); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 20 "$server_log" >&2 || true
            die "nats-server exited during startup"
        fi
        if (line=""; exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1; read -r -t 1 line <&3 || true; [[ "$line" == INFO* ]]) 2>/dev/null; then
            ready=1
            break
        fi
        sleep 0.1
    done
    if [[ "$ready" != 1 ]]; then
        tail -n 20 "$server_log" >&2 || true
        die "nats-server did not accept connections on 127.0.0.1:$PORT within 10 s"
    fi
    export NATS_URL="nats://127.0.0.1:$PORT"
}

# stop_process PID: SIGTERM, up to 5 s to exit, then SIGKILL.
stop_process() {
    local pid="$1"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Node benchmarks (workload-bench.sh, function-bench.sh; expect BIN, WORK, NATS_URL):
# node_bench_setup NAME: checks $BIN holds nex-node, nex-agent and NAME, makes $WORK, and on exit
# stops the node and the server (showing the node's log tail on failure) and removes $WORK.
node_bench_setup() {
    local exe
    for exe in nex-node nex-agent "$1"; do [[ -x "$BIN/$exe" ]] || die "no $BIN/$exe (swift build -c release)"; done
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
    SERVER_PID="" NODE_PID=""
    trap node_bench_cleanup EXIT
}

node_bench_cleanup() {
    local status=$?
    [[ -n "$NODE_PID" ]] && stop_process "$NODE_PID"
    [[ -n "$SERVER_PID" ]] && stop_process "$SERVER_PID"
    [[ $status -ne 0 && -f "$WORK/node.log" ]] && { log "--- nex-node log (tail) ---"; tail -n 30 "$WORK/node.log" >&2; }
    rm -rf "$WORK"
    exit $status
}

# start_nex_node CONFIG_JSON: starts $BIN/nex-node against $NATS_URL (with NODE_ARGS, an
# optional array of more arguments, e.g. --creds FILE) with that config and
# $WORK/artifacts as its one file root (file:// artifacts must lie there), sets NODE_PID and
# NODE_ID (read from the identity it writes), and gives its warm pool a second.
start_nex_node() {
    printf '%s\n' "$1" > "$WORK/node.json"
    mkdir -p "$WORK/artifacts"
    "$BIN/nex-node" up -s "$NATS_URL" ${NODE_ARGS[@]+"${NODE_ARGS[@]}"} --state-dir "$WORK/state" --config "$WORK/node.json" \
        --allow-file-root "$WORK/artifacts" >"$WORK/node.log" 2>&1 &
    NODE_PID=$!
    for _ in $(seq 100); do [[ -s "$WORK/state/node.nk" ]] && break; sleep 0.05; done
    NODE_ID="$(python3 -c 'import nkeys,sys; print(nkeys.from_seed(open(sys.argv[1],"rb").read().strip()).public_key.decode())' "$WORK/state/node.nk")"
    sleep 1  # the warm pool fills
}

# Function benchmarks run in two modes (expect BIN, WORK): `relayed` (a plain server with
# JetStream; the node relays every invocation) and `direct` (an operator-mode server and
# `direct_triggers`; agents serve their triggers; BENCH_CREDS is exported for the bench's
# clients). start_function_mode MODE NODE_CONFIG_MEMBERS SETUP_BINARY starts the server and the
# node (SETUP_BINARY --operator-setup DIR writes the operator-mode files); stop_function_mode
# stops both and forgets the node's state.
start_function_mode() {
    local mode="$1" members="$2" setup="$3"
    case "$mode" in
        relayed)
            start_nats_server "$WORK/server-$mode.log" -js -sd "$WORK/js-$mode"
            start_nex_node "{$members}"
            unset BENCH_CREDS ;;
        direct)
            mkdir -p "$WORK/operator"
            "$setup" --operator-setup "$WORK/operator"
            start_nats_server "$WORK/server-$mode.log" -c "$WORK/operator/server.conf"
            export BENCH_CREDS="$WORK/operator/user.creds"
            NODE_ARGS=(--creds "$BENCH_CREDS")
            start_nex_node "{$members, \"direct_triggers\": {\"signing_key_file\": \"$WORK/operator/signing.nk\", \"account\": \"$(cat "$WORK/operator/account.pub")\"}}"
            NODE_ARGS=() ;;
        *) die "unknown mode '$mode' (relayed, direct)" ;;
    esac
}

stop_function_mode() {
    stop_process "$NODE_PID"
    stop_process "$SERVER_PID"
    NODE_PID="" SERVER_PID=""
    rm -rf "$WORK/state"
}
