#!/usr/bin/env python3
"""The SASL half of runner/tests/accounts.rs: the `irc` package from PyPI (jaraco/irc) logs in
with SASL PLAIN while it registers, as its `sasl_login` does.

    python irc_sasl_e2e.py HOST PORT NICK ACCOUNT PASSWORD

It registers as NICK, logging in as ACCOUNT with PASSWORD, and reports {"logged_in": ACCOUNT}
when the server says 900 and {"welcome": NICK} at 001; a failed login is {"login_failed": WHY}.
Then it asks WHOIS NICK, reports {"account": NAME} from 330, quits and reports {"done": true}.
Each report is one JSON line on stdout; a failure is {"failed": WHY} with status 1. Status 3
means `irc` cannot be imported. Every wait is bounded (STEP_TIMEOUT each).
"""

import json
import sys
import time

try:
    import irc.client
except ImportError as error:
    print(error, file=sys.stderr)
    sys.exit(3)

STEP_TIMEOUT = 5.0


def emit(**record):
    print(json.dumps(record, ensure_ascii=False), flush=True)


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port, nick, account, password = sys.argv[1:]
    events = []
    reactor = irc.client.Reactor()
    reactor.add_global_handler(
        "all_events", lambda connection, event: events.append(event), -100
    )
    try:
        connection = reactor.server().connect(
            host, int(port), nick, password=password, sasl_login=account,
            username="pysasl", ircname="Python irc with SASL",
        )
    except (irc.client.ServerConnectionError, OSError) as error:
        emit(failed=f"cannot connect: {error!r}")
        sys.exit(1)

    def expect(what, matches):
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            for at, event in enumerate(events):
                if event.type == "login_failed":
                    emit(login_failed=" ".join(map(str, event.arguments)))
                    sys.exit(1)
                if matches(event):
                    del events[: at + 1]
                    return event
            if time.monotonic() > deadline:
                emit(failed=f"no {what} within {STEP_TIMEOUT} s")
                sys.exit(1)
            reactor.process_once(timeout=0.05)

    logged_in = expect("900", lambda event: event.type == "loggedin")
    emit(logged_in=logged_in.arguments[1])
    expect("welcome", lambda event: event.type == "welcome")
    emit(welcome=connection.get_nickname())
    connection.whois([nick])
    whois = expect("330", lambda event: event.type == "whoisaccount")
    emit(account=whois.arguments[1])
    connection.quit("bye")
    emit(done=True)


main()
