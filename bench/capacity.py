#!/usr/bin/env python3
"""Memory against capacity and use, and many real connections, on this machine's loopback.

    python3 bench/capacity.py --idle 2000 --max-clients 16384 100000
    python3 bench/capacity.py --bin A=/tmp/before --bin B=target/release --rounds 3 --idle 2000
    python3 bench/capacity.py --idle 19000 --max-clients 20000       # many real connections
    python3 bench/capacity.py --fanout --bin A=... --bin B=... --rounds 3   # CPU per delivery

For each binary directory (`--bin LABEL=DIR`, holding release builds of chat-runner and chat-load;
default: this checkout's target/release), each `--max-clients` and each round, it starts a fresh
chat-runner pinned to core 0 and runs chat-load pinned to core 1:
- by default `chat-load --idle N`: the server's RSS empty, then holding N idle connections, and
  whether every one of them got a broadcast;
- with `--fanout`, the fixed fan-out load instead (200 clients, 50 messages a second each, 10 s):
  the server's CPU seconds per million deliveries.
Binaries alternate within each round (A, B, A, B, ...), so a before/after comparison is made in
one run on this shared machine. Everything is bounded: every chat-load run has a timeout
(`--timeout`, 600 s by default), and every server started is stopped (SIGTERM, then SIGKILL) by
its pid. Only the Python standard library is used. Connections past the open-file limit (20,000
here) cannot be held: keep `--idle` below it, with room for the generator's own descriptors.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER_CORE, LOAD_CORE = "0", "1"


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kb(pid, field="VmRSS"):
    """A field of /proc/PID/status, in kB: VmRSS, or RssAnon (the part not backed by files:
    the heap, stacks, the core's table; the rest is the binary's and libraries' pages)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


class Runner:
    """One fresh chat-runner, pinned to the server core, stopped by its pid on exit."""

    def __init__(self, bin_dir, workdir, max_clients):
        self.port = free_port()
        command = [
            str(Path(bin_dir) / "chat-runner"), "--listen", f"127.0.0.1:{self.port}",
            "--no-color", "--no-flood-limit", "--max-per-ip", "0", "--history", "0",
            "--data", str(Path(workdir) / "chat-data"), "--max-clients", str(max_clients),
        ]
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
        )
        deadline = time.time() + 10
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"chat-runner exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError("chat-runner is not listening")
                time.sleep(0.05)
        # The probe's connection gone, the server settled.
        time.sleep(1.0)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()


def load(bin_dir, runner, args, timeout):
    command = [
        "taskset", "-c", LOAD_CORE, str(Path(bin_dir) / "chat-load"),
        "--addr", f"127.0.0.1:{runner.port}", "--server-pid", str(runner.process.pid),
        "--json", *map(str, args),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"chat-load failed ({done.returncode}): {done.stderr.strip()}")
    result = json.loads(lines[-1])
    result["exit"] = done.returncode
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", action="append", default=[],
                        help="LABEL=DIR with release chat-runner and chat-load (repeatable)")
    parser.add_argument("--max-clients", type=int, nargs="+", default=[16384])
    parser.add_argument("--idle", type=int, default=2000, help="idle connections to hold")
    parser.add_argument("--fanout", action="store_true",
                        help="the fixed fan-out load instead of idle connections")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per chat-load run")
    parser.add_argument("--json", action="store_true", help="print every result as JSON")
    options = parser.parse_args()
    bins = [tuple(spec.split("=", 1)) for spec in options.bin] or [
        ("this", str(REPO / "target" / "release"))]
    results = []
    for round_ in range(options.rounds):
        for max_clients in options.max_clients:
            for label, bin_dir in bins:
                with tempfile.TemporaryDirectory() as workdir, \
                        Runner(bin_dir, workdir, max_clients) as runner:
                    settled = rss_kb(runner.process.pid)
                    anon = rss_kb(runner.process.pid, "RssAnon")
                    if options.fanout:
                        result = load(bin_dir, runner, ["--clients", 200, "--rate", 50,
                                                        "--duration", 10], options.timeout)
                        log(f"round {round_} {label:8} max-clients {max_clients:7}: "
                            f"{result['server_cpu_s_per_million']} CPU s per million, "
                            f"delivered {result['delivered_ratio'] * 100:.3f}%, "
                            f"p99 {result['p99_ms']:.2f} ms")
                    else:
                        result = load(bin_dir, runner, ["--idle", options.idle],
                                      options.timeout)
                        log(f"round {round_} {label:8} max-clients {max_clients:7}: "
                            f"RSS {result['rss_empty_kb']} kB empty, "
                            f"{result['rss_held_kb']} kB with {result['idle']} idle "
                            f"({result['kb_per_connection']:.3f} kB each), "
                            f"{result['received']} got the broadcast; "
                            f"empty {anon} kB of it anonymous")
                result.update(label=label, max_clients=max_clients, round=round_,
                              rss_settled_kb=settled, rss_anon_settled_kb=anon)
                results.append(result)
    if options.json:
        for result in results:
            print(json.dumps(result))
    failed = [r for r in results if r["exit"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
