#!/usr/bin/env python3
"""The IRC half of runner/tests/irc_client.rs: a real IRC client library talking to chat-runner.

The `irc` package from PyPI (jaraco/irc) connects to the server as an IRC client, while the
Rust test drives a plain-text user (and, for one scenario, a second one) on the same server.
Each scenario is checked where its effect lands: what the IRC client receives is checked here,
what the plain-text user receives is checked by the Rust test.

    python irc_client_e2e.py HOST PORT PLAN

PLAN is a JSON object naming everyone and everything said (the Rust test owns these values, so
that both sides agree on them); see `PLAN_KEYS` below.

Output, on stdout, one JSON object per line:

    {"plan": {...}}                        the plan as understood, first
    {"event": {"type": ..., ...}}          every event the library raised (for failure reports)
    {"check": NAME, "ok": true, ...}       a scenario checked here passed (with details)
    {"check": NAME, "ok": false, "why": ...}   ... or failed; the script then stops, status 1
    {"ready": STEP, "expects": ...}        the IRC side has done its part so far and now waits
                                           for the plain-text user to do STEP
    {"done": true}                         every scenario passed; the exit status is 0

The Rust test waits for each `ready` before it has the plain-text user act, which is all the
coordination needed: the other direction is paced by what the IRC client itself waits for.

Exit status: 0 when every scenario passed, 1 when one failed (or something else went wrong),
2 for a bad command line, 3 when `irc` cannot be imported (the caller reads that one as "not
installed" rather than "broken").

Every wait is bounded: one expectation waits at most STEP_TIMEOUT seconds, and the whole
script gives up after TOTAL_TIMEOUT seconds.
"""

import json
import sys
import time

try:
    import irc.client
except ImportError as error:
    print(error, file=sys.stderr)
    sys.exit(3)

# How long one expected event may take to arrive.
STEP_TIMEOUT = 5.0
# How long the whole script may take; over loopback it needs well under a second.
TOTAL_TIMEOUT = 20.0
# How long one select() in the reactor waits before the deadlines are looked at again.
POLL = 0.05

# The keys PLAN must have, each a string.
PLAN_KEYS = {
    "nick": "the IRC client's nickname",
    "new_nick": "what the IRC client renames itself to",
    "plain": "the plain-text user's nickname",
    "plain_new": "what the plain-text user renames itself to",
    "quitter": "a second plain-text user, who joins only to /quit",
    "room": "a room the IRC client joins besides #lobby",
    "missing": "a nickname nobody has",
    "from_plain": "the plain-text user's line in #lobby",
    "to_plain": "the IRC client's PRIVMSG to #lobby",
    "private_from_plain": "the plain-text user's /msg to the IRC client",
    "private_to_plain": "the IRC client's PRIVMSG to the plain-text user",
    "action_from_plain": "the plain-text user's /me",
    "action_to_plain": "the IRC client's CTCP ACTION in #lobby",
    "part_reason": "the IRC client's reason for leaving #lobby (one word: see run())",
    "plain_quit_reason": "the quitter's /quit reason",
    "quit_reason": "the IRC client's QUIT message",
}

LOBBY = "#lobby"


def emit(**record):
    """Writes one JSON line to stdout at once, so the Rust side sees it as soon as it is true."""
    print(json.dumps(record, ensure_ascii=False), flush=True)


class Failed(Exception):
    """An expectation that did not hold; its message says which and why."""


def is_error_reply(event):
    """Whether the event is an error numeric (4xx or 5xx) such as 401 nosuchnick."""
    code = getattr(event.type, "code", "")
    return len(code) == 3 and code.isdigit() and code[0] in "45"


def nick_of(event):
    """The nickname in an event's source (`nick!user@host`; for the server, its name)."""
    source = event.source
    return source.nick if isinstance(source, irc.client.NickMask) else None


class Session:
    """One IRC connection, made with the library's own Reactor and ServerConnection, plus a
    queue of the events it raised that no expectation has taken yet."""

    def __init__(self, host, port, nick, deadline):
        self.deadline = deadline
        self.pending = []  # events not yet matched or skipped, oldest first
        self.seen = []  # every event, for the final look for unexpected errors
        self.reactor = irc.client.Reactor()
        # "all_events" handlers see every event the library raises, numerics included.
        self.reactor.add_global_handler("all_events", self._record, -100)
        server = self.reactor.server()
        # connect() sends NICK and USER straight away: that first NICK line is what makes the
        # chat server treat this connection as IRC.
        self.connection = server.connect(
            host, port, nick, username="pyirc", ircname="Python irc e2e"
        )

    def _record(self, connection, event):
        # The library raises one of these for every raw line as well; the parsed event that
        # follows it says the same thing more usefully.
        if event.type == "all_raw_messages":
            return
        emit(
            event={
                "type": str(event.type),
                "source": None if event.source is None else str(event.source),
                "target": event.target,
                "arguments": [str(argument) for argument in event.arguments],
            }
        )
        self.pending.append(event)
        self.seen.append(event)

    def expect(self, what, matches, timeout=STEP_TIMEOUT):
        """Waits for an event that satisfies `matches` and returns it. Events before it are
        skipped (they stay in `seen`), so expectations must come in the order the server
        sends; fails after `timeout` seconds, or at the script's deadline."""
        deadline = min(time.monotonic() + timeout, self.deadline)
        while True:
            for index, event in enumerate(self.pending):
                if matches(event):
                    del self.pending[: index + 1]
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"timed out after {timeout:g} s waiting for {what}")
            if not self.connection.is_connected():
                raise Failed(f"the connection closed while waiting for {what}")
            self.reactor.process_once(min(left, POLL))


class Scenario:
    """One scenario, as `with Scenario("name") as scenario:`. Its verdict is reported when the
    block ends: passed, or failed with why (a failed `require`, or an expectation that timed
    out), which then ends the script. Details for the report go in `scenario.details`."""

    def __init__(self, name):
        self.name = name
        self.details = {}

    def __enter__(self):
        return self

    def __exit__(self, kind, failure, traceback):
        if failure is None:
            emit(check=self.name, ok=True, **self.details)
        else:
            why = str(failure) if kind is Failed else f"{kind.__name__}: {failure}"
            emit(check=self.name, ok=False, why=why, **self.details)
        return False  # the failure goes on up and ends the script


def require(condition, why):
    """Fails the current scenario unless `condition` holds."""
    if not condition:
        raise Failed(why)


def of_type(kind, **fields):
    """A matcher for an event of type `kind` whose source nick, target and arguments are as
    given (`nick=`, `target=`, `arguments=`); unnamed fields may be anything."""

    def matches(event):
        if event.type != kind:
            return False
        if "nick" in fields and nick_of(event) != fields["nick"]:
            return False
        if "target" in fields and event.target != fields["target"]:
            return False
        if "arguments" in fields and list(event.arguments) != fields["arguments"]:
            return False
        return True

    return matches


def names_of(event):
    """The nicknames a 353 (`namreply`) event lists."""
    return event.arguments[2].split() if len(event.arguments) > 2 else []


def run(host, port, plan):
    session = Session(host, port, plan["nick"], time.monotonic() + TOTAL_TIMEOUT)
    conn = session.connection
    nick, plain, room = plan["nick"], plan["plain"], plan["room"]

    # Registration: 001 RPL_WELCOME arrives (the library calls it "welcome"), addressed to
    # the nickname asked for, and the library agrees that that is our nickname.
    with Scenario("register") as scenario:
        welcome = session.expect("001 welcome", of_type("welcome"))
        scenario.details["welcome"] = list(welcome.arguments)
        require(welcome.target == nick, f"001 is addressed to {welcome.target!r}, not {nick!r}")
        require(conn.get_nickname() == nick, f"the library says {conn.get_nickname()!r}")

    # The server puts IRC clients in #lobby on registration: our own JOIN of #lobby, then its
    # names (353, "namreply"), which list the plain-text user who is already there.
    with Scenario("autojoin_lobby") as scenario:
        session.expect(f"our JOIN of {LOBBY}", of_type("join", nick=nick, target=LOBBY))
        names = session.expect(
            f"353 names of {LOBBY}",
            lambda event: event.type == "namreply" and event.arguments[1:2] == [LOBBY],
        )
        listed = scenario.details["names"] = names_of(names)
        require(nick in listed and plain in listed, f"{LOBBY} should list {nick} and {plain}")

    # Joining another room: our JOIN comes back, and we are alone there.
    with Scenario("join_room") as scenario:
        conn.join(room)
        session.expect(f"our JOIN of {room}", of_type("join", nick=nick, target=room))
        names = session.expect(
            f"353 names of {room}",
            lambda event: event.type == "namreply" and event.arguments[1:2] == [room],
        )
        listed = scenario.details["names"] = names_of(names)
        # Whoever makes a room is its operator: we are listed as @nick.
        require(listed == [f"@{nick}"], f"{room} should hold only us, as its operator")

    # A plain-text user's line in #lobby arrives as a PRIVMSG to #lobby ("pubmsg") from that
    # user. Then ours goes the other way: the Rust test checks that the plain-text user sees
    # `nick: text`.
    with Scenario("channel_from_plain"):
        emit(ready="channel_from_plain", expects=f"a line in {LOBBY} from {plain}")
        session.expect(
            f"a PRIVMSG to {LOBBY} from {plain}",
            of_type("pubmsg", nick=plain, target=LOBBY, arguments=[plan["from_plain"]]),
        )
    conn.privmsg(LOBBY, plan["to_plain"])

    # A private /msg from the plain-text user arrives as a PRIVMSG to our nickname. Ours to it
    # should reach it as `[private] nick: text`.
    with Scenario("private_from_plain"):
        emit(ready="private_from_plain", expects=f"a /msg from {plain}")
        session.expect(
            f"a private PRIVMSG from {plain}",
            of_type("privmsg", nick=plain, target=nick, arguments=[plan["private_from_plain"]]),
        )
    conn.privmsg(plain, plan["private_to_plain"])

    # /me arrives as a CTCP ACTION, which the library raises as an "action" event. Ours, sent
    # with the library's action(), should reach the plain-text user as `* nick text`.
    with Scenario("action_from_plain"):
        emit(ready="action_from_plain", expects=f"a /me from {plain}")
        session.expect(
            f"a CTCP ACTION in {LOBBY} from {plain}",
            of_type("action", nick=plain, target=LOBBY, arguments=[plan["action_from_plain"]]),
        )
    conn.action(LOBBY, plan["action_to_plain"])

    # History: with batch and message tags turned on (CAP REQ after registering), CHATHISTORY
    # gives back the room's lines as the server's store kept them, in a batch, each with its
    # time and message id.
    with Scenario("chathistory") as scenario:
        conn.send_raw("CAP REQ :batch server-time message-tags draft/chathistory")
        session.expect("CAP ACK", lambda event: event.type == "cap" and "ACK" in event.arguments)
        conn.send_raw(f"CHATHISTORY LATEST {LOBBY} * 10")
        start = session.expect(
            "the batch's start",
            lambda event: event.type == "batch" and event.target.startswith("+"),
        )
        scenario.details["batch"] = [start.target, *start.arguments]
        require(start.arguments[:2] == ["chathistory", LOBBY], "a chathistory batch of #lobby")
        line = session.expect(
            f"{plain}'s line, from history",
            of_type("pubmsg", nick=plain, target=LOBBY, arguments=[plan["from_plain"]]),
        )
        tags = {tag["key"]: tag["value"] for tag in line.tags}
        scenario.details["tags"] = tags
        require(tags.get("batch") == start.target[1:], "the line is in the batch")
        require(tags.get("msgid", "") != "" and tags.get("time", "").endswith("Z"), "time and msgid")
        session.expect(
            "the batch's end",
            lambda event: event.type == "batch" and event.target == "-" + start.target[1:],
        )

    # Our nick change comes back as a NICK from the old name, and the library follows it; the
    # plain-text user should see `*** old is now known as new`.
    with Scenario("nick_change"):
        conn.nick(plan["new_nick"])
        session.expect("our NICK change", of_type("nick", nick=nick, target=plan["new_nick"]))
        require(
            conn.get_nickname() == plan["new_nick"],
            f"the library says our nickname is {conn.get_nickname()!r}",
        )
    nick = plan["new_nick"]

    # The plain-text user's /nick arrives as a NICK.
    with Scenario("nick_from_plain"):
        emit(ready="nick_from_plain", expects=f"{plain} renamed to {plan['plain_new']}")
        session.expect(
            f"{plain}'s NICK change", of_type("nick", nick=plain, target=plan["plain_new"])
        )
    plain = plan["plain_new"]

    # A PRIVMSG to a nickname nobody has gets 401 ERR_NOSUCHNICK ("nosuchnick"), addressed to
    # us and naming the missing nickname.
    with Scenario("no_such_nick") as scenario:
        conn.privmsg(plan["missing"], "is anyone there?")
        error = session.expect("401 nosuchnick", of_type("nosuchnick"))
        scenario.details["arguments"] = list(error.arguments)
        require(error.target == nick, f"401 is addressed to {error.target!r}, not {nick!r}")
        require(error.arguments[:1] == [plan["missing"]], f"401 should name {plan['missing']}")

    # Leaving #lobby: our PART comes back with its reason; the plain-text user should see
    # `*** nick left #lobby (reason)`. (The library's part() does not put a `:` before the
    # reason, so a reason of more than one word would be cut to its first by any server; the
    # plan's is one word.)
    with Scenario("part"):
        conn.part(LOBBY, plan["part_reason"])
        session.expect(
            f"our PART of {LOBBY}",
            of_type("part", nick=nick, target=LOBBY, arguments=[plan["part_reason"]]),
        )

    # Back into #lobby, to see the plain-text user's /part (of its current room, #lobby)...
    with Scenario("part_from_plain"):
        conn.join(LOBBY)
        session.expect(f"our JOIN of {LOBBY}", of_type("join", nick=nick, target=LOBBY))
        emit(ready="part_from_plain", expects=f"{plain} leaving {LOBBY}")
        session.expect(f"{plain}'s PART of {LOBBY}", of_type("part", nick=plain, target=LOBBY))

    # ... and its /join of #lobby, so that it is there to see us quit.
    with Scenario("join_from_plain"):
        emit(ready="join_from_plain", expects=f"{plain} joining {LOBBY}")
        session.expect(f"{plain}'s JOIN of {LOBBY}", of_type("join", nick=plain, target=LOBBY))

    # Another plain-text user connects (joining #lobby under its anonymous name, then renaming
    # itself) and types /quit with a reason: we get a QUIT from it that carries the reason.
    with Scenario("quit_from_plain") as scenario:
        emit(ready="quit_from_plain", expects=f"{plan['quitter']} quitting")
        quit_event = session.expect(
            f"{plan['quitter']}'s QUIT", of_type("quit", nick=plan["quitter"])
        )
        message = quit_event.arguments[0] if quit_event.arguments else ""
        scenario.details["message"] = message
        require(plan["plain_quit_reason"] in message, "the QUIT message lacks the reason")

    # Before leaving: no error reply came but the one asked for (the 401), and no notice
    # reported an error.
    with Scenario("no_unexpected_errors") as scenario:
        unexpected = scenario.details["errors"] = [
            f"{event.type} {list(event.arguments)}"
            for event in session.seen
            if (is_error_reply(event) and event.type != "nosuchnick")
            or (
                event.type in ("privnotice", "pubnotice")
                and any("error" in str(argument) for argument in event.arguments)
            )
        ]
        require(not unexpected, "the server reported errors")

    # Our QUIT with a message: the server answers ERROR and closes the connection, which the
    # library reports as "disconnect". The plain-text user should see
    # `*** nick left (quit: reason)`.
    with Scenario("quit"):
        conn.quit(plan["quit_reason"])
        session.expect("the server's ERROR after QUIT", of_type("error"))
        session.expect("the connection to close", of_type("disconnect"))
        require(not conn.is_connected(), "the library still thinks it is connected")


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    plan = json.loads(sys.argv[3])
    missing = [key for key in PLAN_KEYS if not isinstance(plan.get(key), str)]
    if missing:
        print(f"the plan lacks {missing}", file=sys.stderr)
        return 2
    emit(plan=plan)
    try:
        run(host, port, plan)
    except Failed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    emit(done=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
