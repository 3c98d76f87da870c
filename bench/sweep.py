#!/usr/bin/env python3
"""The fan-out benchmark, side by side: chat-runner against ngircd, on this machine's loopback.

    python3 bench/sweep.py                 # everything: about 16 minutes
    python3 bench/sweep.py --quick         # fewer rates, shorter runs: about 6 minutes

For each server and each room size N, it raises the rate R (messages a second per client) until
fewer than 99.9% of the deliveries arrive or p99 latency passes 50 ms: the last rate that met
both is the knee. Every run gets a fresh server, pinned to core 0, and chat-load pinned to
core 1. It also measures the loopback ceiling (chat-load --raw), a fixed load on both servers
(N = 200, 50 messages a second each), and chat-runner holding 10,000 idle connections.

It writes docs/bench/results.json, docs/bench/results.md (the tables) and docs/bench/latency.svg
(p99 latency against offered load, one line per server and room size). ngircd (Debian's
package) is installed with apt-get if missing and this runs as root; without it, the ngircd
half is skipped with a message. Only the Python standard library is used.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# CHAT_BENCH_BIN: a directory with release builds of chat-runner and chat-load to use instead
# of this checkout's (with --no-build), e.g. to measure another commit.
RELEASE = Path(os.environ.get("CHAT_BENCH_BIN", REPO / "target" / "release"))
OUT = REPO / "docs" / "bench"
SERVER_CORE, LOAD_CORE = "0", "1"

# The flush intervals (ms) tried at the fixed load (10 is the default, run again here so that the
# curve's points all come from the same kind of run).
FLUSH_CURVE = [0, 2, 5, 10]

KNEE_RATIO = 0.999
KNEE_P99_MS = 50.0

NGIRCD_CONF = """[Global]
    Name = bench.local
    Info = fan-out benchmark
    Listen = 127.0.0.1
    Ports = {port}
    PidFile = {dir}/ngircd.pid
    MotdPhrase = "bench"
[Limits]
    # No per-address cap, no flood penalty, no join limit: the same terms as chat-runner's.
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 16
    MaxPenaltyTime = 0
    PingTimeout = 600
    PongTimeout = 600
[Options]
    PAM = no
    DNS = no
    Ident = no
"""


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, process, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class Server:
    """One fresh server process, pinned to the server core, stopped on exit."""

    def __init__(self, kind, workdir, extra=()):
        self.kind, self.port = kind, free_port()
        if kind == "chat-runner":
            command = [
                str(RELEASE / "chat-runner"), "--listen", f"127.0.0.1:{self.port}",
                "--no-color", "--no-flood-limit", "--max-per-ip", "0", "--history", "0",
                "--data", str(Path(workdir) / "chat-data"),
                *extra,
            ]
        else:
            conf = Path(workdir) / "ngircd.conf"
            conf.write_text(NGIRCD_CONF.format(port=self.port, dir=workdir))
            command = [shutil.which("ngircd"), "--nodaemon", "--config", str(conf)]
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
        )
        wait_for_port(self.port, self.process)
        # The probe's connection must be gone before the run counts anyone.
        time.sleep(0.2)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def load(server, *args, timeout=300):
    command = [
        "taskset", "-c", LOAD_CORE, str(RELEASE / "chat-load"),
        "--addr", f"127.0.0.1:{server.port}", "--server-pid", str(server.process.pid),
        "--json", *map(str, args),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"chat-load failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(lines[-1])


def ensure_ngircd():
    if shutil.which("ngircd"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing ngircd from Debian's packages")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "ngircd"], env=env, check=False)
        # The package enables a system-wide daemon; the benchmark starts its own.
        subprocess.run(["systemctl", "disable", "--now", "ngircd"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if shutil.which("ngircd"):
        return True
    log("!!! ngircd is not installed and could not be: the ngircd half of the benchmark is skipped")
    return False


def sweep(kind, dialect, clients, rates, duration):
    """Raises the rate until the knee; returns every run."""
    runs = []
    for rate in rates:
        with tempfile.TemporaryDirectory() as workdir, Server(kind, workdir) as server:
            result = load(server, "--dialect", dialect, "--clients", clients, "--rate", rate,
                          "--duration", duration)
        result["server"] = kind
        result["ok"] = (result["delivered_ratio"] >= KNEE_RATIO
                        and result["p99_ms"] <= KNEE_P99_MS)
        runs.append(result)
        log(f"{kind:12} {dialect:5} N={clients:5} R={rate:6}: "
            f"{result['delivered_per_second']:12.0f} deliveries/s, "
            f"{result['delivered_ratio'] * 100:7.3f}%, p99 {result['p99_ms']:8.2f} ms, "
            f"server {result['server_cpu_s_per_million']} CPU s/M, "
            f"generator {result['generator_cpu_share']}{' BOUND' if result['generator_bound'] else ''}")
        if not result["ok"]:
            break
    return runs


def knee(runs):
    passing = [run for run in runs if run["ok"]]
    return max(passing, key=lambda run: run["offered_per_second"]) if passing else None


def svg(series, path):
    """p99 latency (log scale) against offered deliveries a second, one line per series."""
    width, height, left, bottom, top, right = 760, 440, 70, 50, 20, 200
    points = [(run["offered_per_second"] * (run["clients"] - 1), max(run["p99_ms"], 0.1))
              for runs in series.values() for run in runs]
    if not points:
        return
    import math
    xmax = max(x for x, _ in points) * 1.05
    ymin, ymax = 0.1, max(1000.0, max(y for _, y in points))
    def sx(x):
        return left + (width - left - right) * x / xmax
    def sy(y):
        span = math.log10(ymax) - math.log10(ymin)
        return top + (height - top - bottom) * (1 - (math.log10(y) - math.log10(ymin)) / span)
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for y in [0.1, 1, 10, 50, 100, 1000]:
        if y <= ymax:
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" '
                         f'stroke="{"#d62728" if y == 50 else "#ddd"}"/>')
            parts.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for i in range(6):
        x = xmax * i / 5
        parts.append(f'<text x="{sx(x):.1f}" y="{height - bottom + 18}" text-anchor="middle">'
                     f'{x / 1e6:.1f}M</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">'
                 f'offered deliveries per second (N × R × (N − 1))</text>')
    parts.append(f'<text x="14" y="{(top + height - bottom) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(top + height - bottom) / 2})">p99 latency, ms (log)</text>')
    for i, (name, runs) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        coords = " ".join(f"{sx(run['offered_per_second'] * (run['clients'] - 1)):.1f},"
                          f"{sy(max(run['p99_ms'], 0.1)):.1f}" for run in runs)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{width - right + 10}" y="{top + 16 + 18 * i}" fill="{colour}">{name}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rates, 3 s runs")
    parser.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    parser.add_argument("--skip-idle", action="store_true", help="skip the 10,000 idle connections")
    parser.add_argument("--fixed-only", action="store_true",
                        help="only the fixed load (and the flush intervals), no knee sweeps")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="where to write results.{json,md} and latency.svg (default: docs/bench)")
    options = parser.parse_args()
    if not shutil.which("taskset"):
        sys.exit("sweep.py needs taskset (util-linux) to pin the server and the generator")
    if (os.cpu_count() or 1) < 2:
        log("!!! fewer than 2 cores: the server and the generator will share one")
    if not options.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "chat-runner", "-p", "chat-load"],
                       cwd=REPO, check=True)
    duration = 3 if options.quick else 5
    rates = {
        200: [10, 25, 50, 75, 100, 150, 200, 300] if not options.quick else [10, 50, 100, 200],
        1000: [1, 2, 4, 6, 8, 12, 16, 24] if not options.quick else [2, 8, 16],
    }
    results = {"when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "machine": f"{os.cpu_count()} cores, {os.uname().release}",
               "duration_s": duration}

    raw = subprocess.run(["taskset", "-c", LOAD_CORE, str(RELEASE / "chat-load"), "--raw", "2",
                          "--json"], capture_output=True, text=True, check=True)
    results["raw"] = json.loads(raw.stdout.strip().splitlines()[-1])
    log(f"loopback ceiling: {results['raw']}")

    servers = [("chat-runner", "plain"), ("chat-runner", "irc")]
    have_ngircd = ensure_ngircd()
    if have_ngircd:
        servers.append(("ngircd", "irc"))
    results["sweeps"] = {}
    for kind, dialect in servers:
        for clients, rate_list in rates.items() if not options.fixed_only else []:
            name = f"{kind} ({dialect}), N={clients}"
            results["sweeps"][name] = sweep(kind, dialect, clients, rate_list, duration)

    # The fixed load of the targets: N = 200, 50 messages a second each.
    results["fixed"] = {}
    for kind, dialect in servers:
        with tempfile.TemporaryDirectory() as workdir, Server(kind, workdir) as server:
            run = load(server, "--dialect", dialect, "--clients", 200, "--rate", 50,
                       "--duration", 10 if not options.quick else 5)
        results["fixed"][f"{kind} ({dialect})"] = run
        log(f"fixed load, {kind} ({dialect}): {run}")

    # The same load with other flush intervals (--flush-interval): CPU against latency.
    results["flush_curve"] = []
    for interval in FLUSH_CURVE:
        with tempfile.TemporaryDirectory() as workdir, \
                Server("chat-runner", workdir, ["--flush-interval", str(interval)]) as server:
            run = load(server, "--dialect", "plain", "--clients", 200, "--rate", 50,
                       "--duration", 10 if not options.quick else 5)
        run["flush_interval_ms"] = interval
        results["flush_curve"].append(run)
        log(f"fixed load, chat-runner (plain), --flush-interval {interval}: "
            f"{run['server_cpu_s_per_million']} CPU s/M, p99 {run['p99_ms']:.2f} ms")

    if not options.skip_idle:
        with tempfile.TemporaryDirectory() as workdir, Server("chat-runner", workdir) as server:
            results["idle"] = load(server, "--idle", 10000, timeout=600)
        log(f"idle: {results['idle']}")

    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_tables(results, out / "results.md")
    svg(results["sweeps"], out / "latency.svg")
    log(f"wrote {out / 'results.json'}, {out / 'results.md'} and {out / 'latency.svg'}")


def write_tables(results, path):
    raw = results["raw"]
    lines = [
        f"# Fan-out benchmark results ({results['when']}, {results['machine']})",
        "",
        "Written by `python3 bench/sweep.py`; see [../PERFORMANCE.md](../PERFORMANCE.md) for "
        "what they mean.",
        "",
        f"Loopback ceiling for 64-byte lines: {raw['raw_lines_per_second_single']:,.0f} lines/s "
        f"one per `write()`, {raw['raw_lines_per_second_batched']:,.0f} lines/s in 16 KiB writes.",
        "",
        "## Knees (the highest rate with ≥ 99.9% delivered and p99 ≤ 50 ms)",
        "",
        "| server | N | knee R (msgs/s each) | deliveries/s | of the batched ceiling | p99 ms | CPU s per M deliveries | generator-bound |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results["sweeps"].items():
        best = knee(runs)
        if best is None:
            lines.append(f"| {name} | | none passed | | | | | |")
            continue
        share = best["delivered_per_second"] / raw["raw_lines_per_second_batched"]
        # A knee found where the generator ran out of CPU measures the generator: at least.
        after = [run for run in runs if run["rate"] > best["rate"]]
        limited = " (≥: the next rate was generator-bound)" if after and after[0]["generator_bound"] else ""
        lines.append(
            f"| {name.rsplit(', N=', 1)[0]} | {best['clients']} | {best['rate']:g}{limited} | "
            f"{best['delivered_per_second']:,.0f} | {share:.1%} | {best['p99_ms']:.2f} | "
            f"{best['server_cpu_s_per_million']} | {best['generator_bound']} |")
    lines += ["", "## Every run", "",
              "| server | N | R | offered msgs/s | delivered/s | delivered | p50 ms | p99 ms | p99.9 ms | max ms | disconnects | server CPU s/M | server peak RSS kB | generator CPU |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, runs in results["sweeps"].items():
        for run in runs:
            lines.append(
                f"| {name.rsplit(', N=', 1)[0]} | {run['clients']} | {run['rate']:g} | "
                f"{run['offered_per_second']:,.0f} | {run['delivered_per_second']:,.0f} | "
                f"{run['delivered_ratio']:.4%} | {run['p50_ms']:.2f} | {run['p99_ms']:.2f} | "
                f"{run['p999_ms']:.2f} | {run['max_ms']:.2f} | {run['disconnects']} | "
                f"{run['server_cpu_s_per_million']} | {run['server_peak_rss_kb']} | "
                f"{run['generator_cpu_share']}{' (bound)' if run['generator_bound'] else ''} |")
    lines += ["", "## Fixed load: N = 200, 50 messages a second each", "",
              "| server | delivered | p50 ms | p99 ms | server CPU s per M deliveries | generator CPU |",
              "|---|---|---|---|---|---|"]
    for name, run in results["fixed"].items():
        lines.append(f"| {name} | {run['delivered_ratio']:.4%} | {run['p50_ms']:.2f} | "
                     f"{run['p99_ms']:.2f} | {run['server_cpu_s_per_million']} | "
                     f"{run['generator_cpu_share']} |")
    ngircd = results["fixed"].get("ngircd (irc)")
    if ngircd and ngircd["server_cpu_s_per_million"] and ngircd["p99_ms"]:
        lines += ["", "Against ngircd at the same load (ratios, chat-runner ÷ ngircd):", ""]
        for name, run in results["fixed"].items():
            if name.startswith("chat-runner") and run["server_cpu_s_per_million"]:
                lines.append(
                    f"- {name}: CPU per delivery {run['server_cpu_s_per_million'] / ngircd['server_cpu_s_per_million']:.2f}, "
                    f"p99 {run['p99_ms'] / ngircd['p99_ms']:.2f}")
    if results.get("flush_curve"):
        lines += ["", "## The same load at other flush intervals (chat-runner, plain)", "",
                  "| --flush-interval ms | delivered | p50 ms | p99 ms | p99.9 ms | server CPU s per M deliveries |",
                  "|---|---|---|---|---|---|"]
        for run in results["flush_curve"]:
            lines.append(f"| {run['flush_interval_ms']:g} | {run['delivered_ratio']:.4%} | "
                         f"{run['p50_ms']:.2f} | {run['p99_ms']:.2f} | {run['p999_ms']:.2f} | "
                         f"{run['server_cpu_s_per_million']} |")
    if "idle" in results:
        idle = results["idle"]
        lines += ["", "## 10,000 idle connections (chat-runner)", "",
                  f"RSS {idle['rss_empty_kb']} kB empty, {idle['rss_held_kb']} kB holding "
                  f"{idle['idle']} connections (peak {idle['peak_kb']} kB): "
                  f"{idle['kb_per_connection']:.2f} kB per connection; "
                  f"{idle['received']} of {idle['idle']} got the broadcast."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
