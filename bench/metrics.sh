#!/usr/bin/env bash
# The cost of --metrics: the same load against the same release build with metrics off and on
# (scraped every second meanwhile), alternated, in one run. Server on core 0, chat-load on core 1.
#
#   cargo build --release -p chat-runner -p chat-load
#   bench/metrics.sh target/release [ROUNDS] [CLIENTS] [RATE] [SECONDS] [DIALECT]
#
# Prints one line per run: off/on, server CPU s per million deliveries, delivered ratio, p50,
# p99, then the medians. With BASE=DIR, the "off" runs use DIR/chat-runner instead: a build
# from before metrics existed, so that the counting itself is measured too.
set -euo pipefail
bin=${1:?usage: bench/metrics.sh RELEASE_DIR [ROUNDS] [CLIENTS] [RATE] [SECONDS] [DIALECT]}
rounds=${2:-2}
clients=${3:-200}
rate=${4:-10}
seconds=${5:-20}
dialect=${6:-plain}
work=$(mktemp -d /tmp/chat-metrics-bench.XXXXXX)
server=""
scraper=""
cleanup() {
    [ -n "$scraper" ] && kill "$scraper" 2>/dev/null || true
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

run() {
    local mode=$1 extra=() runner="$bin/chat-runner"
    [ "$mode" = on ] && extra=(--metrics 127.0.0.1:0)
    [ "$mode" = off ] && [ -n "${BASE:-}" ] && runner="$BASE/chat-runner"
    taskset -c 0 "$runner" --listen 127.0.0.1:0 --no-color --no-flood-limit \
        --max-per-ip 0 --history 0 --no-data "${extra[@]}" >"$work/out" 2>"$work/err" &
    server=$!
    for _ in $(seq 1 100); do
        grep -q 'listening on' "$work/out" 2>/dev/null && break
        sleep 0.05
    done
    local addr
    addr=$(sed -n 's/^chat-runner listening on //p' "$work/out")
    if [ "$mode" = on ]; then
        local metrics
        metrics=$(grep -o 'metrics on http://[^ ]*' "$work/err" | sed 's/^metrics on //')
        # A scrape a second, bounded by the run's length: far more often than Prometheus's
        # usual 15 s.
        (for _ in $(seq 1 $((seconds + 30))); do
            curl -s -m 2 -o /dev/null "$metrics" || true
            sleep 1
        done) &
        scraper=$!
    fi
    local result
    result=$(timeout $((seconds + 120)) taskset -c 1 "$bin/chat-load" --addr "$addr" \
        --server-pid "$server" --clients "$clients" --rate "$rate" --duration "$seconds" \
        --dialect "$dialect" --json | grep '^{' | tail -1)
    if [ -n "$scraper" ]; then
        kill "$scraper" 2>/dev/null || true
        wait "$scraper" 2>/dev/null || true
        scraper=""
    fi
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=""
    python3 -c '
import json, sys
r = json.loads(sys.argv[2])
keys = ["server_cpu_s_per_million", "delivered_ratio", "p50_ms", "p99_ms", "generator_bound"]
print(sys.argv[1].ljust(3), " ".join("%s=%s" % (key, r[key]) for key in keys))
' "$mode" "$result" | tee -a "$work/results"
}

for _ in $(seq 1 "$rounds"); do
    run off
    run on
done
python3 - "$work/results" <<'EOF'
import re, statistics, sys
runs = {"off": [], "on": []}
for line in open(sys.argv[1]):
    mode = line.split()[0]
    runs[mode].append(float(re.search(r"server_cpu_s_per_million=([0-9.]+)", line).group(1)))
off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
print(f"median CPU s per million deliveries: off {off:.4f} {runs['off']}, on {on:.4f} {runs['on']}; on/off {on / off:.3f}")
EOF
