#!/usr/bin/env python3
"""The IRC half of the TLS test in runner/tests/tls.rs: the `irc` package from PyPI (jaraco/irc)
connects to chat-runner's TLS port through Python's ssl module, trusting only the test's CA.

    python irc_tls_e2e.py HOST PORT CA_FILE NICK PLAIN_NICK TO_PLAIN FROM_PLAIN

It registers as NICK (checking the certificate for `localhost` against CA_FILE), waits to be in
#lobby, says TO_PLAIN there, reports {"ready": "said"} and waits for PLAIN_NICK to say
FROM_PLAIN in #lobby; then quits and reports {"done": true, "tls": VERSION}. Each step is
reported on stdout as one JSON line; a failure is reported as {"failed": WHY} with status 1.
Status 3 means `irc` cannot be imported. Every wait is bounded (STEP_TIMEOUT each).
"""

import functools
import json
import ssl
import sys
import time

try:
    import irc.client
    import irc.connection
except ImportError as error:
    print(error, file=sys.stderr)
    sys.exit(3)

STEP_TIMEOUT = 5.0
LOBBY = "#lobby"


def emit(**record):
    print(json.dumps(record, ensure_ascii=False), flush=True)


def main():
    if len(sys.argv) != 8:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port, ca_file, nick, plain, to_plain, from_plain = sys.argv[1:]
    context = ssl.create_default_context(cafile=ca_file)
    factory = irc.connection.Factory(
        wrapper=functools.partial(context.wrap_socket, server_hostname="localhost")
    )
    events = []
    reactor = irc.client.Reactor()
    reactor.add_global_handler(
        "all_events", lambda connection, event: events.append(event), -100
    )
    try:
        connection = reactor.server().connect(
            host, int(port), nick, username="pytls", ircname="Python irc over TLS",
            connect_factory=factory,
        )
    except (irc.client.ServerConnectionError, ssl.SSLError, OSError) as error:
        emit(failed=f"cannot connect over TLS: {error!r}")
        sys.exit(1)

    def expect(what, matches):
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            for index, event in enumerate(events):
                if matches(event):
                    del events[: index + 1]
                    return event
            if time.monotonic() > deadline:
                seen = [(str(e.type), e.target, list(map(str, e.arguments))) for e in events]
                emit(failed=f"timed out waiting for {what}; events: {seen}")
                sys.exit(1)
            if not connection.is_connected():
                emit(failed=f"disconnected while waiting for {what}")
                sys.exit(1)
            reactor.process_once(0.05)

    expect("the welcome (001)", lambda e: e.type == "welcome")
    emit(step="registered", cipher=connection.socket.cipher()[0])
    expect(
        "joining #lobby",
        lambda e: e.type == "join" and e.target == LOBBY and e.source.nick == nick,
    )
    connection.privmsg(LOBBY, to_plain)
    emit(ready="said")
    expect(
        f"{plain}'s line in #lobby",
        lambda e: e.type == "pubmsg"
        and e.target == LOBBY
        and e.source.nick == plain
        and list(e.arguments) == [from_plain],
    )
    version = connection.socket.version()
    connection.quit("bye over TLS")
    reactor.process_once(0.2)
    emit(done=True, tls=version)


if __name__ == "__main__":
    main()
