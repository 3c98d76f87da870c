#!/usr/bin/env bash
# Cluster mode under load: chat-load's clients spread over 1, 2 and 3 chat-runner nodes sharing
# one Redis, and, as a baseline in the same run, one chat-runner without --cluster.
#
#     bench/cluster.sh          # about 2 minutes of measuring, once the machine is quiet
#     CHAT_BENCH_CLIENTS=400 CHAT_BENCH_RATE=5 bench/cluster.sh
#
# What it does:
# - builds the release binaries (cargo build --release -p chat-runner -p chat-load), unless
#   CHAT_BENCH_NO_BUILD=1; CHAT_BENCH_BIN names another directory holding both binaries;
# - waits until the machine is quiet: while `.ci/run`, cargo or rustc are running it sleeps 20 s,
#   for at most CHAT_BENCH_QUIET_WAIT seconds (default 1200; 0 skips the wait);
# - starts its own redis-server (Debian's) on a free loopback port, --save '' --appendonly no;
# - for each dialect (plain, irc) runs, each with fresh processes: one chat-runner without
#   --cluster (nodes = 0 in the output), then N = 1, 2 and 3 nodes with --cluster (Redis flushed
#   before each of these runs), the clients spread over the N nodes (client n on node n % N);
#   every server runs --no-data --no-color --no-flood-limit --max-per-ip 0;
# - chat-load measures deliveries a second, latency from the scheduled send, the nodes' CPU
#   (summed) and redis-server's CPU, both per million deliveries, over the sending and the drain.
#   Redis's CPU is measured in the baseline runs too, where nothing uses it (its idle cost);
# - writes one CSV row per run to docs/bench/cluster-YYYY-MM-DD.csv (cluster-YYYY-MM-DD-2.csv
#   and so on if that exists; CHAT_BENCH_OUT names another directory) and prints it; chat-load's
#   whole JSON, with each node's CPU, goes beside it as .jsonl.
#
# Pinning: this is written for a 2-core machine. redis-server and every chat-runner node run on
# core 0 (taskset -c 0) and chat-load on core 1 (taskset -c 1): the nodes share one core with
# Redis, so the figures show what cluster mode costs per delivery, not how it scales.
#
# The load, overridable: CHAT_BENCH_CLIENTS (200), CHAT_BENCH_RATE (messages a second each, 10),
# CHAT_BENCH_DURATION (seconds of sending, 10), CHAT_BENCH_DIALECTS ("plain irc"),
# CHAT_BENCH_NODES ("1 2 3").
#
# Every process it starts is stopped by its pid (SIGTERM, then SIGKILL after 5 s), at the end of
# its run or, at the latest, on exit (trap). The servers' stdout and stderr, Redis's log and
# chat-load's stderr stay in /tmp/chat-cluster-bench.XXXXXX (printed at the end) to be looked at.

set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CHAT_BENCH_BIN:-$REPO/target/release}
OUT_DIR=${CHAT_BENCH_OUT:-$REPO/docs/bench}
CLIENTS=${CHAT_BENCH_CLIENTS:-200}
RATE=${CHAT_BENCH_RATE:-10}
DURATION=${CHAT_BENCH_DURATION:-10}
DIALECTS=${CHAT_BENCH_DIALECTS:-plain irc}
NODE_COUNTS=${CHAT_BENCH_NODES:-1 2 3}
QUIET_WAIT=${CHAT_BENCH_QUIET_WAIT:-1200}
SERVER_CORE=0
LOAD_CORE=1

log() { printf '%s\n' "$*" >&2; }
die() {
    log "cluster.sh: $*"
    exit 1
}

for tool in taskset redis-server redis-cli jq ss; do
    command -v "$tool" >/dev/null ||
        die "needs $tool (Debian packages: util-linux, redis-server, jq, iproute2)"
done

# ----- Processes: every pid started is here until it has been stopped and reaped -----

STARTED=()

forget() {
    local pid=$1 kept=() other
    for other in "${STARTED[@]}"; do
        [[ $other == "$pid" ]] || kept+=("$other")
    done
    STARTED=("${kept[@]}")
}

# Stops the given pids (children of this shell): SIGTERM, then SIGKILL after 5 s; reaps them.
stop() {
    local pid waited
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        for ((waited = 0; waited < 50; waited++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "  pid $pid did not stop within 5 s of SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        forget "$pid"
    done
}

cleanup() {
    if ((${#STARTED[@]} > 0)); then
        stop "${STARTED[@]}"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    local port
    while true; do
        port=$((20000 + RANDOM % 30000))
        if [[ -z $(ss -Htln "sport = :$port") ]]; then
            echo "$port"
            return
        fi
    done
}

# ----- Build, and wait for a quiet machine -----

if [[ ${CHAT_BENCH_NO_BUILD:-0} != 1 && -z ${CHAT_BENCH_BIN:-} ]]; then
    log "building the release binaries"
    (cd "$REPO" && cargo build --release -p chat-runner -p chat-load) >&2
fi
[[ -x $BIN/chat-runner && -x $BIN/chat-load ]] || die "no chat-runner and chat-load in $BIN"

busy() {
    pgrep -f '.ci/run' >/dev/null || pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null
}
if ((QUIET_WAIT > 0)); then
    waited=0
    while busy && ((waited < QUIET_WAIT)); do
        ((waited == 0)) && log "waiting for other builds and tests to end (at most $QUIET_WAIT s)"
        sleep 20
        waited=$((waited + 20))
    done
    if busy; then
        log "still busy after $waited s: measuring anyway (the figures will be noisy)"
    elif ((waited > 0)); then
        log "quiet after $waited s"
    fi
fi

LOGS=$(mktemp -d /tmp/chat-cluster-bench.XXXXXX)
log "logs in $LOGS"

# ----- Redis -----

RPORT=$(free_port)
taskset -c "$SERVER_CORE" redis-server --port "$RPORT" --bind 127.0.0.1 --save '' \
    --appendonly no >"$LOGS/redis.log" 2>&1 &
REDIS_PID=$!
STARTED+=("$REDIS_PID")
for ((tries = 0; ; tries++)); do
    [[ $(redis-cli -p "$RPORT" ping 2>/dev/null) == PONG ]] && break
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited: $(tail -5 "$LOGS/redis.log")"
    ((tries < 100)) || die "redis-server does not answer on port $RPORT"
    sleep 0.1
done
REDIS_URL="redis://127.0.0.1:$RPORT/"
log "redis-server $(redis-server --version | awk '{print $3}') pid $REDIS_PID on port $RPORT"

# ----- One run -----

NODE_PIDS=()
NODE_ADDRS=()

# Starts a chat-runner (a node named $2 of the cluster, or a lone server if $2 is empty) and
# waits for its "chat-runner listening on" line; appends its pid and address to NODE_PIDS and
# NODE_ADDRS.
start_server() {
    local run=$1 name=$2 pid addr waited
    local args=(--listen 127.0.0.1:0 --no-data --no-color --no-flood-limit --max-per-ip 0)
    local out=$LOGS/$run-${name:-lone}
    if [[ -n $name ]]; then
        args+=(--cluster "$REDIS_URL" --node "$name")
    fi
    taskset -c "$SERVER_CORE" "$BIN/chat-runner" "${args[@]}" >"$out.out" 2>"$out.err" &
    pid=$!
    STARTED+=("$pid")
    for ((waited = 0; ; waited++)); do
        addr=$(sed -n 's/^chat-runner listening on //p' "$out.out" | head -n 1)
        [[ -n $addr ]] && break
        kill -0 "$pid" 2>/dev/null || die "chat-runner ${name:-lone} exited: $(tail -5 "$out.err")"
        ((waited < 100)) || die "chat-runner ${name:-lone} did not start listening within 10 s"
        sleep 0.1
    done
    NODE_PIDS+=("$pid")
    NODE_ADDRS+=("$addr")
}

DATE=$(date +%F)
mkdir -p "$OUT_DIR"
CSV=$OUT_DIR/cluster-$DATE.csv
for ((copy = 2; ; copy++)); do
    [[ -e $CSV ]] || break
    CSV=$OUT_DIR/cluster-$DATE-$copy.csv
done
JSONL=${CSV%.csv}.jsonl
COLUMNS_CSV=nodes,dialect,clients,rate,delivered,expected,deliveries_per_s,p50_ms,p99_ms
COLUMNS_CSV+=,server_cpu_s_per_million,redis_cpu_s_per_million
echo "$COLUMNS_CSV" >"$CSV"
: >"$JSONL"

# The lines every server logs in a run (a client's connection reset at chat-load's exit too).
ROUTINE='connected from .* online\)$|\) is now c[0-9]+$|disconnected: closed by peer$'
ROUTINE+='|disconnected: Connection reset by peer|history in memory only|listening on '
ROUTINE+='|cluster: node .* on the Redis at|cluster: left \(no nickname to give back\)'
ROUTINE+='|SIGTERM: shutting down|Z shut down$'

# One run: $1 nodes (0 = one server without --cluster), $2 the dialect.
measure() {
    local nodes=$1 dialect=$2 run=n$1-$2 n load json addrs pids
    NODE_PIDS=()
    NODE_ADDRS=()
    if ((nodes == 0)); then
        start_server "$run" ""
    else
        redis-cli -p "$RPORT" flushall >/dev/null
        for ((n = 1; n <= nodes; n++)); do
            start_server "$run" "n$n"
        done
    fi
    addrs=$(IFS=,; echo "${NODE_ADDRS[*]}")
    pids=$(IFS=,; echo "${NODE_PIDS[*]}")
    log "run $run: $CLIENTS clients x $RATE msgs/s for $DURATION s over $addrs (pids $pids)"
    taskset -c "$LOAD_CORE" "$BIN/chat-load" --addr "$addrs" --server-pid "$pids" \
        --redis-pid "$REDIS_PID" --dialect "$dialect" --clients "$CLIENTS" --rate "$RATE" \
        --duration "$DURATION" --json >"$LOGS/$run-load.json" 2>"$LOGS/$run-load.err" &
    load=$!
    STARTED+=("$load")
    if ! wait "$load"; then
        forget "$load"
        die "chat-load failed in run $run: $(cat "$LOGS/$run-load.err")"
    fi
    forget "$load"
    # A moment for the departures to settle (nicknames given back), so that a node which still
    # holds some at its stop stands out in its log.
    sleep 1
    stop "${NODE_PIDS[@]}"
    json=$(tail -n 1 "$LOGS/$run-load.json")
    jq -c --argjson nodes "$nodes" '{nodes: $nodes} + .' <<<"$json" >>"$JSONL"
    jq -r --argjson nodes "$nodes" '[$nodes, .dialect, .clients, .rate, .delivered, .expected,
        .delivered_per_second, .p50_ms, .p99_ms, .server_cpu_s_per_million,
        .redis_cpu_s_per_million] | map(. // "" | tostring) | join(",")' <<<"$json" >>"$CSV"
    jq -r '"  delivered \(.delivered) of \(.expected), p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, " +
        "servers \(.server_cpu_s_per_million) s/M, redis \(.redis_cpu_s_per_million) s/M" +
        (if .disconnects > 0 then ", \(.disconnects) disconnects" else "" end) +
        (if .generator_bound then ", GENERATOR-BOUND" else "" end)' <<<"$json" >&2
    # What a server logs for every run is routine; anything else is shown, to be looked at.
    local err unusual
    for err in "$LOGS/$run"-*.err; do
        [[ $err == *-load.err ]] && continue
        unusual=$(grep -cvE "$ROUTINE" "$err" || true)
        if ((unusual > 0)); then
            log "  $(basename "$err"): $unusual unusual line(s), the first:"
            grep -m 5 -vE "$ROUTINE" "$err" >&2 || true
        fi
    done
}

for dialect in $DIALECTS; do
    measure 0 "$dialect"
    for nodes in $NODE_COUNTS; do
        measure "$nodes" "$dialect"
    done
done

log ""
log "written: $CSV (and ${JSONL##*/}); logs in $LOGS"
cat "$CSV"
