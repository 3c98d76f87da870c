"""irctest controller for chat-runner's IRC dialect.

irctest (https://github.com/progval/irctest) is the public IRC server conformance suite. It
starts a fresh server for every test through a "controller" module named with
``--controller``; this is ours. It is our own code, not part of irctest: irctest is not
vendored here and must be checked out separately.

Run it with ``tests/irctest/run.sh`` (which adds the timeouts and the test selection), or by
hand, from inside an irctest checkout, so that irctest's own ``pytest.ini`` and
``conftest.py`` are the ones loaded::

    cd /path/to/irctest
    CHAT_RUNNER_BIN=/work/main/target/debug/chat-runner \\
    PYTHONPATH=/work/main/tests/irctest PYTHONDONTWRITEBYTECODE=1 \\
    timeout -k 10 900 python3 -m pytest -p no:cacheprovider \\
        --controller chat_runner_controller \\
        -m 'not services and not implementation-specific and not deprecated and not strict' \\
        -k 'not oper' -n 2 --timeout 60 -q -rfEsxX \\
        irctest/server_tests/{connection_registration,pingpong,messages,join,part,names,quit,topic,who,whois,list,isupport}.py

Needs pytest, pytest-timeout and (for ``-n``) pytest-xdist, plus irctest's requirements.txt.
Build the server first (``cargo build -p chat-runner``): irctest starts one server process per
test, so ``cargo run`` would be far too slow.

What the controller does, and why:

* Every server listens on 127.0.0.1 only. irctest's stock ``get_hostname_and_port()`` returns
  ``0.0.0.0`` (every interface); ours picks a free loopback port instead, while keeping
  irctest's cross-process port registry (``$TMPDIR/irctest_ports.json``) so that pytest-xdist
  workers never pick the same port.
* Features chat-runner does not have (TLS, websockets, a server password, services) make the
  test *skip* (``NotImplementedByController``) rather than fail.
* The server runs in a fresh temporary directory (its cwd), removed after the test.
* ``--server-name My.Little.Server``: irctest hard-codes that name in its PONG, 004, WHO and
  WHOIS checks.
* ``--no-irc-lobby``: irctest expects a newly registered client to be in no channel.
* ``--no-flood-limit``, ``--max-per-ip 0``: irctest opens many connections from 127.0.0.1 and
  sends bursts of lines; throttling them would only make tests slow or time out.
* ``--history 0``: a joiner would otherwise be replayed the channel's last lines as NOTICEs,
  which irctest does not expect.
* Tests that ask for ``faketime`` (a server clock running 30 times as fast) run the server
  under libfaketime's ``faketime -f``, when it is installed (``apt install faketime``); without
  it they skip.
* ``--oper-file``: irctest logs in as a server operator with ``OPER operuser operpassword``.
  Server operators here are accounts; the file (written into the server's temporary
  directory, readable by its owner only) holds that account's name and the Argon2id hash of
  its password, made once per pytest worker with ``chat-runner --hash-password``, so the
  server makes the account at start and ``OPER`` identifies as it.
* ``--no-color``: no ANSI codes in anything the plain-text side might send.
* Readiness is irctest's own ``wait_for_port()``: it connects, sends ``QUIT :chkport`` and waits
  for ``ERROR`` or the close. chat-runner exits on SIGTERM, which ``kill()`` sends to the
  process group (SIGKILL after 5 s).

Environment:

* ``CHAT_RUNNER_BIN``: the server binary; default ``<repo>/target/debug/chat-runner``, the repo
  being two directories above this file.
* ``IRCTEST_DEBUG_LOGS=1`` (irctest's own switch): show the server's stdout and stderr.
"""

import os
from pathlib import Path
import shutil
import socket
import subprocess
from typing import Optional, Set, Tuple, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController

# The binary, made absolute: Popen(cwd=...) would resolve a relative program path against the
# server's temporary directory.
_REPO = Path(__file__).resolve().parents[2]
BIN = Path(
    os.environ.get("CHAT_RUNNER_BIN", _REPO / "target" / "debug" / "chat-runner")
).resolve()

# irctest hard-codes this server name in several tests.
SERVER_NAME = "My.Little.Server"

# Loopback only: the servers under test are never reachable from outside this machine.
LOOPBACK = "127.0.0.1"

# The server operator irctest logs in as (its BaseServerTestCase's operuser/operpassword).
OPER_NAME = "operuser"
OPER_PASSWORD = "operpassword"
_oper_hash: Optional[str] = None


def oper_hash() -> str:
    """The Argon2id hash of OPER_PASSWORD, made once per process by the server binary."""
    global _oper_hash
    if _oper_hash is None:
        made = subprocess.run(
            [BIN, "--hash-password"],
            input=OPER_PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        _oper_hash = made.stdout.strip()
    return _oper_hash


class ChatRunnerController(BaseServerController, DirectoryBasedController):
    software_name = "chat-runner"  # what irctest's xfailIfSoftware([...]) lists would match
    supported_sasl_mechanisms: Set[str] = set()  # no SASL: SASL tests skip
    supports_sts = False
    # No IRCv3 capability is implemented: the server NAKs every CAP REQ, and a NAK of a
    # capability not listed here makes the test skip instead of fail.
    capabilities = frozenset()
    # No optional behaviour is promised; listing one would turn its skip into a failure.
    optional_behaviors = frozenset()
    # 005 tokens isupport.py::testValues would check; none are promised, so it skips.
    isupport: dict = {}

    def get_hostname_and_port(self) -> Tuple[str, int]:
        """A free port on 127.0.0.1, recorded in irctest's shared port registry (released by
        ``kill()``) so that no other xdist worker takes it meanwhile."""
        with self._used_ports() as used:
            while True:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind((LOOPBACK, 0))
                    hostname_and_port = (LOOPBACK, probe.getsockname()[1])
                if hostname_and_port not in used:
                    break
            used.add(hostname_and_port)
            self._own_ports.add(hostname_and_port)
        return hostname_and_port

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        """Starts chat-runner without waiting for it (irctest's ``wait_for_port()`` does)."""
        unsupported = [
            (ssl, "TLS"),
            (run_services, "services"),
            (websocket_port is not None, "websockets"),
            (password is not None, "server password (PASS)"),
        ]
        for wanted, feature in unsupported:
            if wanted:
                # kill() first: when setUp raises, pytest does not call tearDown, so the
                # port(s) reserved in irctest_ports.json would never be released.
                self.kill()
                raise NotImplementedByController(f"{feature}: not in chat-runner")
        # A test that wants the server's clock to run fast (LIST's creation and topic times)
        # gets it from libfaketime's `faketime`, when installed; without it, it skips.
        faketime_bin = shutil.which("faketime") if faketime is not None else None
        if faketime is not None and faketime_bin is None:
            self.kill()
            raise NotImplementedByController("faketime: libfaketime is not installed")
        assert self.proc is None
        assert hostname == LOOPBACK, f"refusing to listen on {hostname}, not loopback"
        if not os.access(BIN, os.X_OK):
            self.kill()
            raise FileNotFoundError(
                f"{BIN} is not an executable; run `cargo build -p chat-runner` "
                "or set CHAT_RUNNER_BIN"
            )
        self.hostname, self.port = hostname, port
        self.create_config()  # a temporary directory, the server's cwd; kill() removes it
        opers = Path(self.directory) / "opers"
        with open(os.open(opers, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(f"{OPER_NAME} {oper_hash()}\n")
        # execute() starts it in its own session (kill() signals the whole group) and shows
        # its output only with IRCTEST_DEBUG_LOGS=1.
        wrapper = [faketime_bin, "-f", faketime] if faketime_bin and faketime else []
        self.faketime_enabled = bool(wrapper)
        self.proc = self.execute(
            [
                *wrapper,
                BIN,
                "--listen", f"{hostname}:{port}",
                "--server-name", SERVER_NAME,
                "--no-irc-lobby",
                "--no-color",
                "--no-flood-limit",
                "--max-per-ip", "0",
                "--history", "0",
                "--oper-file", str(opers),
            ],
            cwd=self.directory,
        )


def get_irctest_controller_class() -> Type[ChatRunnerController]:
    return ChatRunnerController
