#!/usr/bin/env python3
"""The fan-out benchmark, side by side: chat-runner against ngircd and InspIRCd, on loopback.

    python3 bench/sweep.py                 # everything: about 25 minutes
    python3 bench/sweep.py --quick         # fewer rates, shorter runs: about 10 minutes
    python3 bench/sweep.py --quick --servers chat-runner,inspircd --skip-idle   # a part

For each server and each room size N, it raises the rate R (messages a second per client) until
fewer than 99.9% of the deliveries arrive or p99 latency passes 50 ms: the last rate that met
both is the knee. Every run gets a fresh server, pinned to core 0, and chat-load pinned to
core 1. It also measures the loopback ceiling (chat-load --raw), fixed loads on every server
(N = 200 × 50 messages a second each, and N = 1,000 × 2), many rooms (5,000 clients in 500 rooms
of 10, each client sending 2 messages a second to its room), light loads (500 clients in 50 rooms
and 200 in one, 2 messages a second each: p50 where no server is busy; skipped with
--skip-rooms too), p50 in one room of 200 at 5, 10, 20, 50 and 100 messages a second each (every
rate, every server; skipped with --skip-p50), and chat-runner holding 10,000 idle connections.

A run where the generator was the limit (90% of its core or more, or waking for its sends more
than 5 ms late at p99) is flagged "bound": it measures the generator (or this machine) as much as
the server. Each run also records the load average and how long the server waited for a CPU
(other work on the machine): the figures of one sweep are comparable with each other, not with
another sweep's.

It writes results.json, results.md (the tables) and latency.svg (p99 latency against offered
load, one line per server and room size) into docs/bench/ (or --out). ngircd and InspIRCd
(Debian's packages) are used if installed; ngircd is installed with apt-get if missing and this
runs as root; a server that is missing is skipped with a message. Every process it starts is
stopped by its pid, on errors and Ctrl-C too. Only the Python standard library is used.
"""

import argparse
import json
import os
import resource
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
# Otherwise cargo's target directory (CARGO_TARGET_DIR if set, as cargo itself does).
RELEASE = Path(os.environ.get(
    "CHAT_BENCH_BIN", REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "release"))
OUT = REPO / "docs" / "bench"
SERVER_CORE, LOAD_CORE = "0", "1"

# The flush intervals (ms) tried at the fixed load. 10 is the spacing 200 writers get at full load
# under the default of 30; it is run here so that every point of the curve comes from the same
# kind of run.
FLUSH_CURVE = [0, 2, 5, 10]

KNEE_RATIO = 0.999
KNEE_P99_MS = 50.0

# The fixed loads: (clients, messages a second each).
FIXED_LOADS = [(200, 50), (1000, 2)]
# Many rooms: clients, rooms, messages a second each.
MANY_ROOMS = (5000, 500, 2)
# Light loads, where latency is set by how a server writes rather than by how much it has to:
# (clients, rooms, messages a second each).
LIGHT_LOADS = [(500, 50, 2), (200, 1, 2)]
# p50 across loads: one room of 200 at each of these rates (messages a second each), every server,
# every rate, whether or not a server keeps up (issue 16: p50 at or below ngircd's at each).
P50_CLIENTS, P50_RATES = 200, [5, 10, 20, 50, 100]

# Clients registered at once by chat-load (--batch). ngircd answers a burst of registrations
# slowly (a batch of 200 had clients waiting past chat-load's 10 s for their welcome), so it gets
# them one at a time, as before --batch existed. InspIRCd welcomes a client about a second after
# its NICK and USER whatever the load (1,000 clients: 20.7 s in batches of 50, 2.7 s in
# batches of 500), so it gets large batches.
BATCH = {"chat-runner": 200, "inspircd": 500, "ngircd": 1}

# Every server process started and not yet stopped, so that an error or Ctrl-C stops them too.
LIVE = set()

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


INSPIRCD_CONF = """<config format="xml">
<server name="bench.local" description="fan-out benchmark" network="bench">
<admin name="bench" nick="bench" email="bench@bench.local">
<bind address="127.0.0.1" port="{port}" type="clients">
# No flood control (commandrate and threshold far above any load here, no fake lag), no
# per-address cap, send queues large enough for a 1,000-person room's bursts, no DNS or
# ident lookups: the same terms as chat-runner's.
<connect name="main" allow="*" maxchans="100" timeout="60" pingfreq="600"
         hardsendq="64M" softsendq="1M" recvq="1M" threshold="1000000000"
         commandrate="1000000000" fakelag="no" localmax="1000000" globalmax="1000000"
         maxconnwarn="no" resolvehostnames="no" useident="no" limit="1000000">
<channels users="100" opers="100">
<pid file="{dir}/inspircd.pid">
<options prefixquit="Quit: " syntaxhints="no" announcets="no" hostintopic="no">
<security hideserver="" userstats="Pu" flatlinks="no" hidesplits="no" hideulines="no"
          hidebans="no" maxtargets="20">
<performance netbuffersize="65536" somaxconn="4096" softlimit="100000" clonesonconnect="no"
             quietbursts="yes">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{dir}/inspircd.log">
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
        elif kind == "inspircd":
            conf = Path(workdir) / "inspircd.conf"
            conf.write_text(INSPIRCD_CONF.format(port=self.port, dir=workdir))
            command = [shutil.which("inspircd"), "--nofork", f"--config={conf}"]
            if os.geteuid() == 0:
                command.append("--runasroot")
        else:
            conf = Path(workdir) / "ngircd.conf"
            conf.write_text(NGIRCD_CONF.format(port=self.port, dir=workdir))
            command = [shutil.which("ngircd"), "--nodaemon", "--config", str(conf)]
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
        )
        LIVE.add(self.process)
        try:
            wait_for_port(self.port, self.process)
            # The probe's connection must be gone before the run counts anyone.
            time.sleep(0.2)
        except BaseException:
            stop(self.process)
            raise

    def __enter__(self):
        return self

    def __exit__(self, *_):
        stop(self.process)


def stop(process):
    """Stops a server by its pid: SIGTERM, then SIGKILL after 5 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    LIVE.discard(process)


def loadavg():
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def load(server, *args, timeout=300):
    """Runs chat-load against `server` (killed if it takes longer than `timeout`: subprocess.run
    kills it on the timeout and on any exception); its JSON, with the load average before."""
    batch = [] if "--idle" in args else ["--batch", BATCH.get(server.kind, 200)]
    command = [
        "taskset", "-c", LOAD_CORE, str(RELEASE / "chat-load"),
        "--addr", f"127.0.0.1:{server.port}", "--server-pid", str(server.process.pid),
        "--json", *map(str, [*batch, *args]),
    ]
    before = loadavg()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"chat-load failed ({done.returncode}): {done.stderr.strip()}")
    result = json.loads(lines[-1])
    result["loadavg"] = before
    result["server"] = server.kind
    return result


def try_load(server, *args, timeout=300):
    """As `load`, but a failed run is recorded as failed (with why) instead of ending the
    sweep: a server that falls over under a load is a result."""
    try:
        return load(server, *args, timeout=timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        log(f"!!! {server.kind}: {' '.join(map(str, args))}: {error}")
        return {"failed": str(error), "server": server.kind, "loadavg": loadavg()}


def describe(run):
    if "failed" in run:
        return f"FAILED: {run['failed'][:200]}"
    bound = " BOUND" if run["generator_bound"] else ""
    return (f"{run['delivered_per_second']:12.0f} deliveries/s, "
            f"{run['delivered_ratio'] * 100:7.3f}%, p50 {run['p50_ms']:8.2f} ms, "
            f"p99 {run['p99_ms']:8.2f} ms, server {run['server_cpu_s_per_million']} CPU s/M, "
            f"waited {run.get('server_wait_share')}, generator {run['generator_cpu_share']} "
            f"lag p99 {run.get('send_lag_p99_ms')} ms{bound}, misdelivered "
            f"{run.get('misdelivered')}, load {run['loadavg']}")


def have_inspircd():
    if shutil.which("inspircd"):
        return True
    log("!!! inspircd is not installed (Debian: apt-get install inspircd): it is skipped")
    return False


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
            result = try_load(server, "--dialect", dialect, "--clients", clients, "--rate",
                              rate, "--duration", duration)
        if "failed" in result:
            result.update(clients=clients, rate=rate, ok=False)
        else:
            result["ok"] = passes(result)
        runs.append(result)
        log(f"{kind:12} {dialect:5} N={clients:5} R={rate:6}: {describe(result)}")
        if not result["ok"]:
            break
    return runs


def passes(run):
    """Within the knee's bounds: ≥ 99.9% delivered, p99 ≤ 50 ms, and no line misdelivered."""
    return ("failed" not in run and run["delivered_ratio"] >= KNEE_RATIO
            and run["p99_ms"] <= KNEE_P99_MS and run.get("misdelivered", 0) == 0
            and run.get("duplicates", 0) == 0)


def knee(runs):
    passing = [run for run in runs if run.get("ok")]
    return max(passing, key=lambda run: run["offered_per_second"]) if passing else None


def svg(series, path):
    """p99 latency (log scale) against offered deliveries a second, one line per series."""
    width, height, left, bottom, top, right = 760, 440, 70, 50, 20, 200
    series = {name: [run for run in runs if "failed" not in run]
              for name, runs in series.items()}
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
    parser.add_argument("--quick", action="store_true",
                        help="fewer rates, 3 s runs, no flush-interval curve (about 10 minutes)")
    parser.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    parser.add_argument("--skip-idle", action="store_true", help="skip the 10,000 idle connections")
    parser.add_argument("--skip-rooms", action="store_true",
                        help="skip the many rooms and the light loads")
    parser.add_argument("--skip-p50", action="store_true",
                        help="skip p50 across rates in one room of 200")
    parser.add_argument("--fixed-only", action="store_true",
                        help="only the fixed loads (and the flush intervals), no knee sweeps")
    parser.add_argument("--servers", default="chat-runner,ngircd,inspircd",
                        help="which servers, comma-separated (default: all three)")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="where to write results.{json,md} and latency.svg (default: docs/bench)")
    options = parser.parse_args()
    if not shutil.which("taskset"):
        sys.exit("sweep.py needs taskset (util-linux) to pin the server and the generator")
    if (os.cpu_count() or 1) < 2:
        log("!!! fewer than 2 cores: the server and the generator will share one")
    # Servers inherit the soft limit on open files (ngircd and InspIRCd do not raise it
    # themselves): raise it to the hard limit here.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # SIGTERM ends the sweep as Ctrl-C does, so the servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("sweep.py: terminated"))
    try:
        run_all(options, open_files)
    finally:
        for process in list(LIVE):
            stop(process)


def run_all(options, open_files):
    if not options.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "chat-runner", "-p", "chat-load"],
                       cwd=REPO, check=True)
    duration = 3 if options.quick else 5
    fixed_duration = 5 if options.quick else 10
    rates = {
        200: [10, 25, 50, 75, 100, 150, 200, 300] if not options.quick else [10, 50, 100, 200],
        1000: [1, 2, 4, 6, 8, 12, 16, 24] if not options.quick else [2, 8, 16],
    }
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    results = {"when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "machine": f"{os.cpu_count()} cores, {os.uname().release}",
               "commit": commit, "command": " ".join(["python3", "bench/sweep.py", *sys.argv[1:]]),
               "loadavg_start": loadavg(), "duration_s": duration, "open_files": open_files}
    log(f"sweep at {commit}, load average {results['loadavg_start']}")

    raw = subprocess.run(["taskset", "-c", LOAD_CORE, str(RELEASE / "chat-load"), "--raw", "2",
                          "--json"], capture_output=True, text=True, check=True, timeout=60)
    results["raw"] = json.loads(raw.stdout.strip().splitlines()[-1])
    log(f"loopback ceiling: {results['raw']}")

    wanted = {name.strip() for name in options.servers.split(",")}
    servers = []
    if "chat-runner" in wanted:
        servers += [("chat-runner", "plain"), ("chat-runner", "irc")]
    if "ngircd" in wanted and ensure_ngircd():
        servers.append(("ngircd", "irc"))
    if "inspircd" in wanted and have_inspircd():
        servers.append(("inspircd", "irc"))
    results["servers"] = [f"{kind} ({dialect})" for kind, dialect in servers]
    results["sweeps"] = {}
    for kind, dialect in servers:
        for clients, rate_list in rates.items() if not options.fixed_only else []:
            name = f"{kind} ({dialect}), N={clients}"
            results["sweeps"][name] = sweep(kind, dialect, clients, rate_list, duration)

    # The fixed loads of the targets.
    results["fixed"] = {}
    for clients, rate in FIXED_LOADS:
        for kind, dialect in servers:
            with tempfile.TemporaryDirectory() as workdir, Server(kind, workdir) as server:
                run = try_load(server, "--dialect", dialect, "--clients", clients, "--rate", rate,
                               "--duration", fixed_duration)
            run.update(clients=clients, rate=rate)
            results["fixed"][f"{kind} ({dialect}), {clients} × {rate}"] = run
            log(f"fixed load {clients} × {rate}, {kind} ({dialect}): {describe(run)}")

    # Many rooms: 5,000 clients in 500 rooms of 10, each room talking.
    results["rooms"] = {}
    clients, rooms, rate = MANY_ROOMS
    if options.skip_rooms:
        pass
    elif open_files < clients + 200:
        log(f"!!! many rooms skipped: {clients} clients need {clients + 200} open files, "
            f"and the limit is {open_files}")
        results["rooms_skipped"] = f"open-file limit {open_files}"
    else:
        for kind, dialect in servers:
            with tempfile.TemporaryDirectory() as workdir, Server(kind, workdir) as server:
                run = try_load(server, "--dialect", dialect, "--clients", clients, "--rooms", rooms,
                               "--rate", rate, "--duration", fixed_duration, timeout=600)
            run.update(clients=clients, rate=rate, rooms=rooms)
            results["rooms"][f"{kind} ({dialect})"] = run
            log(f"many rooms {clients} in {rooms} × {rate}, {kind} ({dialect}): {describe(run)}")

    # Light loads: p50 where no server is busy.
    results["light"] = {}
    for clients, rooms, rate in LIGHT_LOADS if not options.skip_rooms else []:
        for kind, dialect in servers:
            with tempfile.TemporaryDirectory() as workdir, Server(kind, workdir) as server:
                run = try_load(server, "--dialect", dialect, "--clients", clients, "--rooms", rooms,
                               "--rate", rate, "--duration", fixed_duration)
            run.update(clients=clients, rate=rate, rooms=rooms)
            results["light"][f"{kind} ({dialect}), {clients} in {rooms} × {rate}"] = run
            log(f"light load {clients} in {rooms} × {rate}, {kind} ({dialect}): {describe(run)}")

    # p50 across rates in one room of 200: every rate for every server.
    results["p50"] = {}
    for rate in P50_RATES if not options.skip_p50 else []:
        for kind, dialect in servers:
            with tempfile.TemporaryDirectory() as workdir, Server(kind, workdir) as server:
                run = try_load(server, "--dialect", dialect, "--clients", P50_CLIENTS,
                               "--rate", rate, "--duration", fixed_duration)
            run.update(clients=P50_CLIENTS, rate=rate)
            results["p50"][f"{kind} ({dialect}), {P50_CLIENTS} × {rate}"] = run
            log(f"p50 at {P50_CLIENTS} × {rate}, {kind} ({dialect}): {describe(run)}")

    # The fixed load with other flush intervals (--flush-interval): CPU against latency.
    results["flush_curve"] = []
    if not options.quick and "chat-runner" in wanted:
        for interval in FLUSH_CURVE:
            with tempfile.TemporaryDirectory() as workdir, \
                    Server("chat-runner", workdir, ["--flush-interval", str(interval)]) as server:
                run = try_load(server, "--dialect", "plain", "--clients", 200, "--rate", 50,
                               "--duration", fixed_duration)
            run["flush_interval_ms"] = interval
            results["flush_curve"].append(run)
            log(f"fixed load, chat-runner (plain), --flush-interval {interval}: {describe(run)}")

    if not options.skip_idle and "chat-runner" in wanted:
        with tempfile.TemporaryDirectory() as workdir, Server("chat-runner", workdir) as server:
            results["idle"] = try_load(server, "--idle", 10000, timeout=600)
        log(f"idle: {results['idle']}")

    results["loadavg_end"] = loadavg()
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_tables(results, out / "results.md")
    svg(results["sweeps"], out / "latency.svg")
    log(f"wrote {out / 'results.json'}, {out / 'results.md'} and {out / 'latency.svg'}; "
        f"load average {results['loadavg_end']}")


def fmt(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def bound(run):
    return "**bound**" if run.get("generator_bound") else "no"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else ""


def write_tables(results, path):
    raw = results["raw"]
    lines = [
        f"# Fan-out benchmark results ({results['when']}, {results['machine']})",
        "",
        "Written by `python3 bench/sweep.py`; see "
        f"[PERFORMANCE.md]({os.path.relpath(REPO / 'docs' / 'PERFORMANCE.md', path.parent)}) "
        "for what they mean.",
        "",
        f"Commit {results.get('commit', '?')}, `{results.get('command', '')}`; load average "
        f"{results.get('loadavg_start', '?')} at the start, {results.get('loadavg_end', '?')} at "
        "the end. \"bound\": the generator was the limit (90% of its core or more, or its sends "
        "more than 5 ms late at p99). \"waited\": the share of the run the server spent "
        "runnable but waiting for a CPU (other work on this machine).",
        "",
        f"Loopback ceiling for 64-byte lines: {raw['raw_lines_per_second_single']:,.0f} lines/s "
        f"one per `write()`, {raw['raw_lines_per_second_batched']:,.0f} lines/s in 16 KiB writes.",
        "",
        "## Knees (the highest rate with ≥ 99.9% delivered, p99 ≤ 50 ms, nothing misdelivered)",
        "",
        "| server | N | knee R (msgs/s each) | deliveries/s | of the batched ceiling | p50 ms | p99 ms | CPU s per M deliveries | generator |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results["sweeps"].items():
        server, clients = name.rsplit(", N=", 1)
        best = knee(runs)
        if best is None:
            first = runs[0] if runs else {}
            why = (f"failed: {first['failed'][:80]}" if "failed" in first else
                   f"R = {first.get('rate', '?')}: {first.get('delivered_ratio', 0):.3%}, "
                   f"p99 {first.get('p99_ms', 0):.1f} ms")
            lines.append(f"| {server} | {clients} | none passed ({why}) | | | | | | {bound(first)} |")
            continue
        share = best["delivered_per_second"] / raw["raw_lines_per_second_batched"]
        # A knee found where the generator ran out measures the generator: at least.
        after = [run for run in runs if run["rate"] > best["rate"]]
        limited = ""
        if after and after[0].get("generator_bound"):
            limited = " (≥: the next rate was generator-bound)"
        elif not after:
            limited = " (≥: the highest rate tried)"
        lines.append(
            f"| {server} | {best['clients']} | {best['rate']:g}{limited} | "
            f"{best['delivered_per_second']:,.0f} | {share:.1%} | {best['p50_ms']:.2f} | "
            f"{best['p99_ms']:.2f} | {best['server_cpu_s_per_million']} | {bound(best)} |")
    lines += ["", "## Every run", "",
              "| server | N | R | delivered/s | delivered | p50 ms | p99 ms | p99.9 ms | max ms | disconnects | server CPU s/M | server waited | peak RSS kB | generator CPU | send lag p99 ms | generator | load |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, runs in results["sweeps"].items():
        server = name.rsplit(", N=", 1)[0]
        for run in runs:
            lines.append(run_row(server, run))
    lines += ["", "## Fixed loads", "",
              "| server, N × R | delivered | p50 ms | p99 ms | server CPU s per M deliveries | server waited | generator CPU | generator | load |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, run in results["fixed"].items():
        lines.append(fixed_row(name, run))
    for clients, rate in FIXED_LOADS:
        lines += ratios(results["fixed"], f", {clients} × {rate}",
                        f"{clients} clients × {rate} msgs/s")
    if results.get("rooms"):
        clients, rooms, rate = MANY_ROOMS
        lines += ["", f"## Many rooms: {clients} clients in {rooms} rooms, {rate} msgs/s each", "",
                  "| server | delivered | rooms short | misdelivered | duplicates | p50 ms | p99 ms | server CPU s per M deliveries | server waited | peak RSS kB | set-up s | generator | load |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, run in results["rooms"].items():
            if "failed" in run:
                lines.append(f"| {name} | failed: {run['failed'][:120]} | | | | | | | | | | | {run['loadavg']} |")
                continue
            lines.append(
                f"| {name} | {run['delivered_ratio']:.4%} | {run['rooms_incomplete']} | "
                f"{run['misdelivered']} | {run['duplicates']} | {run['p50_ms']:.2f} | "
                f"{run['p99_ms']:.2f} | {run['server_cpu_s_per_million']} | "
                f"{fmt(run.get('server_wait_share'))} | {run['server_peak_rss_kb']} | "
                f"{run['setup_s']:.1f} | {bound(run)} | {run['loadavg']} |")
        lines += ratios(results["rooms"], "", "many rooms")
    elif results.get("rooms_skipped"):
        lines += ["", f"Many rooms skipped: {results['rooms_skipped']}."]
    if results.get("light"):
        lines += ["", "## Light loads (clients in rooms × msgs/s each)", "",
                  "| server, load | delivered | p50 ms | p99 ms | server CPU s per M deliveries | server waited | generator CPU | generator | load |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, run in results["light"].items():
            lines.append(fixed_row(name, run))
        for clients, rooms, rate in LIGHT_LOADS:
            lines += ratios(results["light"], f", {clients} in {rooms} × {rate}",
                            f"{clients} in {rooms} rooms × {rate} msgs/s")
    if results.get("p50"):
        lines += ["", f"## p50 across rates, one room of {P50_CLIENTS} (msgs/s each)", "",
                  "| server, N × R | delivered | p50 ms | p99 ms | server CPU s per M deliveries | server waited | generator CPU | generator | load |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, run in results["p50"].items():
            lines.append(fixed_row(name, run))
        for rate in P50_RATES:
            lines += ratios(results["p50"], f", {P50_CLIENTS} × {rate}",
                            f"{P50_CLIENTS} × {rate}")
    if results.get("flush_curve"):
        lines += ["", "## The 200 × 50 load at other flush intervals (chat-runner, plain)", "",
                  "| --flush-interval ms | delivered | p50 ms | p99 ms | p99.9 ms | server CPU s per M deliveries | generator |",
                  "|---|---|---|---|---|---|---|"]
        for run in results["flush_curve"]:
            if "failed" in run:
                lines.append(f"| {run['flush_interval_ms']:g} | failed | | | | | |")
                continue
            lines.append(f"| {run['flush_interval_ms']:g} | {run['delivered_ratio']:.4%} | "
                         f"{run['p50_ms']:.2f} | {run['p99_ms']:.2f} | {run['p999_ms']:.2f} | "
                         f"{run['server_cpu_s_per_million']} | {bound(run)} |")
    if "idle" in results:
        idle = results["idle"]
        lines += ["", "## 10,000 idle connections (chat-runner)", ""]
        if "failed" in idle:
            lines.append(f"Failed: {idle['failed']}")
        else:
            lines.append(
                f"RSS {idle['rss_empty_kb']} kB empty, {idle['rss_held_kb']} kB holding "
                f"{idle['idle']} connections (peak {idle['peak_kb']} kB): "
                f"{idle['kb_per_connection']:.2f} kB per connection; "
                f"{idle['received']} of {idle['idle']} got the broadcast (connected in "
                f"{idle.get('connected_s', 0):.1f} s, all welcomed after "
                f"{idle.get('welcomed_s', 0):.1f} s; load {idle['loadavg']}).")
    path.write_text("\n".join(lines) + "\n")


def run_row(server, run):
    if "failed" in run:
        return (f"| {server} | {run.get('clients', '')} | {run.get('rate', '')} | failed: "
                f"{run['failed'][:100]} | | | | | | | | | | | | | {run['loadavg']} |")
    return (f"| {server} | {run['clients']} | {run['rate']:g} | "
            f"{run['delivered_per_second']:,.0f} | {run['delivered_ratio']:.4%} | "
            f"{run['p50_ms']:.2f} | {run['p99_ms']:.2f} | {run['p999_ms']:.2f} | "
            f"{run['max_ms']:.2f} | {run['disconnects']} | {run['server_cpu_s_per_million']} | "
            f"{fmt(run.get('server_wait_share'))} | {run['server_peak_rss_kb']} | "
            f"{run['generator_cpu_share']} | {fmt(run.get('send_lag_p99_ms'))} | {bound(run)} | "
            f"{run['loadavg']} |")


def fixed_row(name, run):
    if "failed" in run:
        return f"| {name} | failed: {run['failed'][:120]} | | | | | | | {run['loadavg']} |"
    return (f"| {name} | {run['delivered_ratio']:.4%} | {run['p50_ms']:.2f} | "
            f"{run['p99_ms']:.2f} | {run['server_cpu_s_per_million']} | "
            f"{fmt(run.get('server_wait_share'))} | {run['generator_cpu_share']} | {bound(run)} | "
            f"{run['loadavg']} |")


def ratios(runs, suffix, what):
    """chat-runner's CPU per delivery, p50 and p99 as ratios to each other server's."""
    def get(kind, dialect):
        run = runs.get(f"{kind} ({dialect}){suffix}")
        return None if run is None or "failed" in run else run
    others = [(kind, get(kind, "irc")) for kind in ("ngircd", "inspircd")]
    ours = [(dialect, get("chat-runner", dialect)) for dialect in ("plain", "irc")]
    lines = []
    for other, theirs in others:
        if theirs is None:
            continue
        for dialect, mine in ours:
            if mine is None:
                continue
            lines.append(
                f"- chat-runner ({dialect}) ÷ {other}, {what}: CPU per delivery "
                f"{ratio(mine['server_cpu_s_per_million'], theirs['server_cpu_s_per_million'])}, "
                f"p50 {ratio(mine['p50_ms'], theirs['p50_ms'])}, "
                f"p99 {ratio(mine['p99_ms'], theirs['p99_ms'])}")
    return ["", *lines] if lines else []


if __name__ == "__main__":
    main()
