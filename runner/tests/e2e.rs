//! End-to-end tests: `chat-runner` over real loopback sockets.
//!
//! Each test starts its own server on a free port, so the tests run in parallel. Waits are
//! bounded (see `chat_tests::WAIT`); "nothing arrived" is checked with [`Client::sync`], a
//! barrier only the client itself gets an answer to, rather than with sleeps where possible.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use chat_tests::{Client, OrderedReaders, Server};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// A short quiet period, for the few checks that something does *not* happen.
const QUIET: Duration = Duration::from_millis(300);

/// Asserts that none of `lines` contains `text`.
#[track_caller]
fn assert_none_contains(lines: &[String], text: &str) {
    assert!(
        lines.iter().all(|line| !line.contains(text)),
        "no line should contain {text:?}, got {lines:#?}"
    );
}

/// Connects `alice`, then `bob`, and waits until alice has seen bob arrive and pick his name,
/// so that neither has a notice left to read.
fn alice_and_bob(server: &Server) -> (Client, Client) {
    let mut alice = server.join("alice");
    let bob = server.join("bob");
    alice.expect_line("is now known as");
    (alice, bob)
}

// ----- Arrival -----

#[test]
fn welcome_banner_gives_name_count_and_roster() {
    let server = Server::plain(RUNNER, &[]);
    let mut first = Client::connect(server.addr());
    assert_eq!(
        first.next_line(),
        "*** Welcome to the chat! You are anonymous-1; 1 person is online."
    );
    assert_eq!(
        first.next_line(),
        "*** Pick a nickname with /nick NAME; /help lists the commands."
    );
    assert_eq!(first.next_line(), "*** You are now talking in #lobby.");
    assert_eq!(first.next_line(), "*** #lobby (1): anonymous-1 (you)");

    let mut second = Client::connect(server.addr());
    assert_eq!(
        second.next_line(),
        "*** Welcome to the chat! You are anonymous-2; 2 people are online."
    );
    second.next_line();
    second.next_line();
    assert_eq!(
        second.next_line(),
        "*** #lobby (2): anonymous-1, anonymous-2 (you)"
    );
    assert_eq!(first.next_line(), "*** anonymous-2 joined #lobby (2 here)");

    // Nicknames are listed first, then anonymous people by number.
    first.nick("zed");
    second.expect_line("*** anonymous-1 is now known as zed");
    let mut third = Client::connect(server.addr());
    third.next_line();
    third.next_line();
    third.next_line();
    assert_eq!(
        third.next_line(),
        "*** #lobby (3): zed, anonymous-2, anonymous-3 (you)"
    );
    assert_eq!(first.next_line(), "*** anonymous-3 joined #lobby (3 here)");
    assert_eq!(second.next_line(), "*** anonymous-3 joined #lobby (3 here)");
}

#[test]
fn welcome_banner_in_colour() {
    let server = Server::start(RUNNER, &[]);
    let mut client = Client::connect(server.addr());
    assert_eq!(
        client.next_line(),
        "\x1b[33m***\x1b[0m Welcome to the chat! You are \x1b[90manonymous-1\x1b[0m; \
         1 person is online."
    );
    let mut other = Client::connect(server.addr());
    other.expect_line("#lobby (2)");
    let joined = client.expect_line("joined");
    assert_eq!(
        joined,
        "\x1b[33m***\x1b[0m \x1b[90manonymous-2\x1b[0m joined #lobby (2 here)"
    );
}

#[test]
fn talking_alone_is_answered() {
    let server = Server::plain(RUNNER, &[]);
    let mut alone = server.connect();
    alone.send_line("hello?");
    assert_eq!(
        alone.next_line(),
        "*** No one else is in #lobby to hear that."
    );
}

// ----- Nicknames -----

#[test]
fn nick_is_confirmed_and_others_see_join_and_rename() {
    let server = Server::plain(RUNNER, &[]);
    let mut alice = server.connect();
    let mut bob = server.connect();
    alice.expect_line("*** anonymous-2 joined #lobby (2 here)");

    alice.send_line("/nick alice");
    assert_eq!(alice.next_line(), "*** You are now known as alice.");
    assert_eq!(bob.next_line(), "*** anonymous-1 is now known as alice");

    bob.send_line("/nick bob");
    assert_eq!(bob.next_line(), "*** You are now known as bob.");
    assert_eq!(alice.next_line(), "*** anonymous-2 is now known as bob");

    // A second rename shows the old nickname; the same name again is only acknowledged.
    alice.send_line("/nick Alice2");
    assert_eq!(alice.next_line(), "*** You are now known as Alice2.");
    assert_eq!(bob.next_line(), "*** alice is now known as Alice2");
    alice.send_line("/nick Alice2");
    assert_eq!(alice.next_line(), "*** You are already Alice2.");
    assert!(bob.sync().is_empty());

    alice.send_line("hi");
    assert_eq!(bob.next_line(), "Alice2: hi");
    let log = server.expect_log("is now Alice2");
    assert!(log.contains("alice"), "{log}");
}

#[test]
fn taken_nickname_is_refused_case_insensitively() {
    let server = Server::plain(RUNNER, &[]);
    let mut alice = server.join("alice");
    let mut other = server.connect();
    alice.expect_line("joined");

    other.send_line("/nick Alice");
    assert_eq!(
        other.next_line(),
        "*** error: the nickname Alice is taken; you are still anonymous-2"
    );
    other.send_line("/nick ALICE");
    assert_eq!(
        other.next_line(),
        "*** error: the nickname ALICE is taken; you are still anonymous-2"
    );
    other.send_line("/list");
    assert_eq!(
        other.next_line(),
        "*** #lobby (2): alice, anonymous-2 (you)"
    );
    assert_none_contains(&alice.sync(), "known as");

    // Changing only the case of one's own nickname is allowed.
    alice.send_line("/nick ALICE");
    assert_eq!(alice.next_line(), "*** You are now known as ALICE.");
    assert_eq!(other.next_line(), "*** alice is now known as ALICE");
}

#[test]
fn invalid_nicknames_are_refused() {
    let server = Server::plain(RUNNER, &[]);
    let mut client = server.connect();
    let mut watcher = server.connect();
    client.expect_line("joined");
    let cases = [
        (
            "/nick 9lives",
            "*** error: \"9lives\" is not a valid nickname: a nickname cannot start with '9'; \
             you are still anonymous-1",
        ),
        (
            "/nick bad.name",
            "*** error: \"bad.name\" is not a valid nickname: a nickname cannot contain '.'; \
             use letters, digits and _-[]\\^{}|`; you are still anonymous-1",
        ),
        (
            "/nick abcdefghijklmnopq",
            "*** error: \"abcdefghijklmnopq\" is not a valid nickname: a nickname has at most \
             16 characters (48 bytes); you are still anonymous-1",
        ),
        (
            "/nick Anonymous-7",
            "*** error: \"Anonymous-7\" is not a valid nickname: names beginning with \
             \"anonymous\" are reserved; you are still anonymous-1",
        ),
        (
            "/nick two words",
            "*** error: too many arguments; usage: /nick NAME",
        ),
        ("/nick", "*** error: missing argument; usage: /nick NAME"),
    ];
    for (line, reply) in cases {
        client.send_line(line);
        assert_eq!(client.next_line(), reply, "reply to {line:?}");
    }
    // The longest valid nickname works.
    client.nick("abcdefghijklmnop");
    let renamed = watcher.sync();
    assert_eq!(
        renamed,
        ["*** anonymous-1 is now known as abcdefghijklmnop"],
        "the watcher sees only the valid rename"
    );
}

// ----- Messages -----

#[test]
fn broadcast_reaches_everyone_else_in_order() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut carol = server.join("carol");

    for n in 0..50 {
        alice.send_line(&format!("message {n}"));
    }
    bob.expect_line("anonymous-3 is now known as carol");
    for receiver in [&mut bob, &mut carol] {
        for n in 0..50 {
            assert_eq!(receiver.next_line(), format!("alice: message {n}"));
        }
    }
    // The sender never gets its own lines back.
    assert_none_contains(&alice.sync(), "message");

    // `//` sends a line that starts with one `/`.
    bob.send_line("//not a command");
    assert_eq!(alice.expect_line("bob:"), "bob: /not a command");
    assert_eq!(carol.next_line(), "bob: /not a command");
}

#[test]
fn private_message_reaches_only_its_target() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut carol = server.join("carol");
    bob.expect_line("carol");

    alice.send_line("/msg bob hi there");
    assert_eq!(bob.next_line(), "[private] alice: hi there");
    assert_eq!(alice.expect_line("[private]"), "[private] to bob: hi there");

    // The recipient's name is matched without regard to case.
    alice.send_line("/msg BOB again");
    assert_eq!(bob.next_line(), "[private] alice: again");
    assert_eq!(alice.next_line(), "[private] to bob: again");

    assert_none_contains(&carol.sync(), "private");
    assert!(bob.sync().is_empty());

    // A message to oneself arrives once.
    carol.send_line("/msg carol note to self");
    assert_eq!(carol.next_line(), "[private] carol: note to self");
    assert!(carol.sync().is_empty());
}

#[test]
fn private_message_to_unknown_name_is_an_error() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);

    alice.send_line("/msg nobody hello");
    assert_eq!(
        alice.next_line(),
        "*** error: no one called nobody is online"
    );
    alice.send_line("/msg bob");
    assert_eq!(
        alice.next_line(),
        "*** error: missing argument; usage: /msg NAME TEXT"
    );
    assert_none_contains(&bob.sync(), "hello");
}

#[test]
fn list_who_and_names_show_the_roster() {
    let server = Server::plain(RUNNER, &[]);
    let mut bob = server.join("bob");
    let mut alice = server.join("alice");
    let _anonymous = server.connect();
    bob.expect_line("anonymous-3 joined");
    alice.expect_line("anonymous-3 joined");

    for command in ["/list", "/who", "/names", "/LIST"] {
        alice.send_line(command);
        assert_eq!(
            alice.next_line(),
            "*** #lobby (3): alice (you), bob, anonymous-3",
            "reply to {command}"
        );
    }
    bob.send_line("/who");
    assert_eq!(
        bob.next_line(),
        "*** #lobby (3): alice, bob (you), anonymous-3"
    );
}

#[test]
fn ping_is_answered_after_everything_sent_before_it() {
    let server = Server::plain(RUNNER, &[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("is now known as bob");
    alice.send("one\ntwo\n/ping token 42\n/ping\n");
    assert_eq!(alice.next_line(), "*** pong token 42");
    assert_eq!(alice.next_line(), "*** pong");
    assert_eq!(bob.next_line(), "alice: one");
    assert_eq!(bob.next_line(), "alice: two");
    assert!(bob.sync().is_empty(), "a ping is not broadcast");
}

#[test]
fn help_lists_the_commands() {
    let server = Server::plain(RUNNER, &[]);
    let mut client = server.connect();
    client.send_line("/help");
    let help: Vec<String> = (0..23).map(|_| client.next_line()).collect();
    assert_eq!(help[0], "*** Commands:");
    for (line, command) in help[1..21].iter().zip([
        "/nick NAME",
        "/msg NAME TEXT",
        "/me TEXT",
        "/join #ROOM",
        "/part [#ROOM] [REASON]",
        "/rooms",
        "/topic [TEXT]",
        "/list",
        "/history [N]",
        "/help",
        "/quit [REASON]",
        "/ping [TOKEN]",
        "/register PASSWORD",
        "/identify PASSWORD",
        "/logout, /password OLD NEW",
        "/kick NAME [REASON], /mute NAME [DURATION], /unmute NAME",
        "/mode [#ROOM] [+-iklmnt VALUES]",
        "/invite NAME [#ROOM]",
        "/register-room, /unregister-room",
        "/serverban MASK [DURATION] [REASON]",
    ]) {
        assert!(line.starts_with(&format!("***   {command}")), "{help:#?}");
    }
    assert!(help[22].contains("512 bytes"), "{help:#?}");
    assert!(client.sync().is_empty());

    client.send_line("/dance");
    assert_eq!(
        client.next_line(),
        "*** error: unknown command /dance; type /help for the list"
    );
}

#[test]
fn me_is_an_action_line() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.send_line("/me waves at everyone");
    assert_eq!(bob.next_line(), "* alice waves at everyone");
    assert_none_contains(&alice.sync(), "waves");
    alice.send_line("/me");
    assert_eq!(
        alice.next_line(),
        "*** error: missing argument; usage: /me TEXT"
    );
}

// ----- Leaving -----

#[test]
fn quit_with_reason_closes_and_tells_the_others() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut carol = server.connect();
    bob.expect_line("anonymous-3 joined");

    alice.send_line("/quit bye for now");
    assert_eq!(alice.expect_line("Goodbye"), "*** Goodbye!");
    alice.expect_closed();
    assert_eq!(bob.next_line(), "*** alice left (quit: bye for now)");
    assert_eq!(
        carol.expect_line("left"),
        "*** alice left (quit: bye for now)"
    );

    carol.send_line("/quit");
    assert_eq!(carol.next_line(), "*** Goodbye!");
    carol.expect_closed();
    assert_eq!(bob.next_line(), "*** anonymous-3 left (quit)");
    bob.send_line("/list");
    assert_eq!(bob.next_line(), "*** #lobby (1): bob (you)");
    server.expect_log("alice (127.0.0.1:");
    server.expect_log("closed: quit");
}

#[test]
fn closing_the_socket_tells_the_others() {
    let server = Server::plain(RUNNER, &[]);
    let mut alice = server.join("alice");
    let bob = server.join("bob");
    let bob_addr = bob.local_addr();
    alice.expect_line("bob");

    drop(bob);
    assert_eq!(alice.next_line(), "*** bob left (connection closed)");
    let log = server.expect_log(&format!("bob ({bob_addr}) disconnected"));
    assert!(log.contains("closed by peer"), "{log}");

    // A client that only shuts its sending side is treated the same way.
    let carol = server.join("carol");
    alice.expect_line("carol");
    carol.shutdown_write();
    assert_eq!(alice.next_line(), "*** carol left (connection closed)");
}

#[test]
fn log_records_connects_renames_and_disconnects() {
    let server = Server::plain(RUNNER, &[]);
    server.expect_log("listening on 127.0.0.1:");
    let mut alice = server.connect();
    let alice_addr = alice.local_addr();
    let line = server.expect_log(&format!("connected from {alice_addr}"));
    assert!(line.contains("(1 online)"), "{line}");

    alice.nick("alice");
    server.expect_log(&format!("({alice_addr}) is now alice"));

    let bob = server.connect();
    let bob_addr = bob.local_addr();
    server.expect_log(&format!("connected from {bob_addr} (2 online)"));
    drop(bob);
    server.expect_log(&format!("({bob_addr}) disconnected: closed by peer"));

    alice.send_line("/quit");
    alice.expect_closed();
    server.expect_log(&format!("alice ({alice_addr}) closed: quit"));
}

// ----- Input handling -----

#[test]
fn overlong_line_is_refused_and_the_connection_keeps_working() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);

    let mut input = vec![b'x'; 5000];
    input.extend_from_slice(b"\nstill here\n");
    alice.send(&input);
    assert_eq!(
        alice.next_line(),
        "*** error: line too long (over 512 bytes); it was not sent"
    );
    assert_eq!(bob.next_line(), "alice: still here");
    // One error only, and none of the long line reached anyone.
    assert!(alice.sync().is_empty());
    assert!(bob.sync().is_empty());
    assert!(!bob.received().windows(20).any(|w| w == [b'x'; 20]));

    // Exactly 512 bytes is fine, with either line ending.
    let longest = "y".repeat(512);
    alice.send(format!("{longest}\r\n"));
    assert_eq!(bob.next_line(), format!("alice: {longest}"));
    alice.send(format!("{longest}\n"));
    assert_eq!(bob.next_line(), format!("alice: {longest}"));
    alice.send(format!("{longest}z\n"));
    assert_eq!(
        alice.next_line(),
        "*** error: line too long (over 512 bytes); it was not sent"
    );
}

#[test]
fn invalid_utf8_is_refused() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    for bad in [&b"bad \xc3\x28 byte\n"[..], b"\x80\n", b"cut \xe2\x82\n"] {
        alice.send(bad);
        assert_eq!(
            alice.next_line(),
            "*** error: your line is not valid UTF-8; it was not sent",
            "reply to {bad:?}"
        );
    }
    alice.send("caf\u{e9} \u{4e2d}\u{6587}\n");
    assert_eq!(bob.next_line(), "alice: caf\u{e9} \u{4e2d}\u{6587}");
    assert!(bob.sync().is_empty());
}

/// Lines that try to reach other terminals with control sequences, in every place a user's
/// text can go: messages, actions, private messages, quit reasons and nicknames.
const HOSTILE: [&[u8]; 9] = [
    b"clear \x1b[2J screen\n",
    b"title \x1b]0;pwned\x07\n",
    b"/me \x1b[31mred\n",
    b"/msg bob \x1b[2J\n",
    b"/nick \x1b[2Jx\n",
    b"c1 \xc2\x9b2J csi\n",
    b"bell \x07\n",
    b"evil\xe2\x80\xaetxt.exe\n",
    b"/quit \x1b]0;x\x07\n",
];

/// Sends every hostile line from `attacker`, checking each is refused, and then a harmless
/// line that `victim` must get.
fn send_hostile_lines(attacker: &mut Client, victim: &mut Client) {
    for line in HOSTILE {
        attacker.send(line);
        let reply = attacker.next_line();
        assert!(
            reply.contains("error:") && reply.contains("control character"),
            "reply to {line:?}: {reply:?}"
        );
    }
    // A tab is turned into a space rather than refused.
    attacker.send("tab\there\n");
    victim.expect_line("tab here");
    victim.sync();
}

#[test]
fn control_sequences_never_reach_others_in_plain_mode() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    send_hostile_lines(&mut alice, &mut bob);
    let received = bob.received();
    assert!(
        !received.contains(&0x1b),
        "an ESC reached bob: {:?}",
        String::from_utf8_lossy(received)
    );
    let text = String::from_utf8_lossy(received);
    assert!(
        text.chars()
            .all(|c| !c.is_control() || c == '\r' || c == '\n'),
        "a control character reached bob: {text:?}"
    );
    assert!(!text.contains('\u{202e}'), "{text:?}");
}

#[test]
fn control_sequences_never_reach_others_in_colour_mode() {
    let server = Server::start(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    send_hostile_lines(&mut alice, &mut bob);
    let received = bob.received();
    let text = String::from_utf8_lossy(received);
    assert!(
        !text.contains("\x1b[2J") && !text.contains("\x1b]"),
        "{text:?}"
    );
    // Every ESC that arrives starts one of the server's own colour codes: ESC [ digits m.
    for (at, _) in received
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == 0x1b)
    {
        let rest = &received[at + 1..];
        let digits = rest
            .iter()
            .skip(1)
            .take_while(|b| b.is_ascii_digit())
            .count();
        assert!(
            rest.first() == Some(&b'[') && digits > 0 && rest.get(1 + digits) == Some(&b'm'),
            "an ESC that is not a colour code at byte {at}: {text:?}"
        );
    }
    assert!(
        text.chars()
            .all(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\x1b')),
        "a control character reached bob: {text:?}"
    );
}

#[test]
fn input_one_byte_at_a_time_and_many_lines_in_one_write() {
    let server = Server::plain(RUNNER, &[]);
    let mut alice = server.connect();
    let mut bob = server.join("bob");
    alice.expect_line("bob");

    for &byte in b"/nick slowpoke\r\nhello, one byte at a time\n" {
        alice.send([byte]);
    }
    assert_eq!(alice.next_line(), "*** You are now known as slowpoke.");
    assert_eq!(bob.next_line(), "*** anonymous-1 is now known as slowpoke");
    assert_eq!(bob.next_line(), "slowpoke: hello, one byte at a time");

    alice.send("one\ntwo\r\n/me three\n\n   \nfour\r\n/msg bob five\n");
    for expected in [
        "slowpoke: one",
        "slowpoke: two",
        "* slowpoke three",
        "slowpoke: four",
        "[private] slowpoke: five",
    ] {
        assert_eq!(bob.next_line(), expected);
    }
    // Empty and blank lines are ignored without a reply.
    assert_eq!(alice.sync(), ["[private] to bob: five"]);
}

#[test]
fn crlf_and_lf_line_endings_both_work() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.send("with crlf\r\n");
    assert_eq!(bob.next_line(), "alice: with crlf");
    alice.send("with lf\n");
    assert_eq!(bob.next_line(), "alice: with lf");
    // A line ending split across writes.
    alice.send("split crlf\r");
    alice.send("\n");
    assert_eq!(bob.next_line(), "alice: split crlf");
    // What arrives always ends in \r\n.
    assert!(bob.received().ends_with(b"alice: split crlf\r\n"));
}

#[test]
fn telnet_negotiation_is_skipped() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);

    // IAC WILL ECHO, IAC DO SUPPRESS-GO-AHEAD, then a line.
    alice.send(b"\xff\xfb\x01\xff\xfd\x03hello\r\n");
    assert_eq!(bob.next_line(), "alice: hello");
    // Mid-line, a subnegotiation (terminal type), and split across writes.
    alice.send(b"mid\xff\xfd\x03dle \xff\xfa\x18\x00xterm\xff");
    alice.send(b"\xf0line\r\n");
    assert_eq!(bob.next_line(), "alice: middle line");
    assert!(bob.sync().is_empty());
    assert!(alice.sync().is_empty());
}

// ----- Flow control -----

// A burst of input must not make a reader look slow; a client that never reads has room
// messages skipped, then is dropped once nothing can be written to it, without delaying
// anyone else.

#[test]
fn burst_of_short_lines_reaches_a_reader() {
    // With the default queue limit (1024 messages), 2000 short lines in one write (4000 bytes,
    // one read for the server) must all reach a client that reads as fast as it can.
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.send("a\n".repeat(2000));
    for _ in 0..2000 {
        assert_eq!(bob.next_line(), "alice: a");
    }
    assert!(alice.sync().is_empty());
    assert!(!server.log().contains("dropped"), "{}", server.log());
}

#[test]
fn a_client_that_never_reads_is_dropped_without_holding_up_the_others() {
    /// Lines of about 400 bytes, numbered so that order and completeness can be checked.
    fn message(n: usize) -> String {
        format!("flood {n:05} {}", "p".repeat(388))
    }
    /// Lines sent between checks that the readers have everything.
    const BATCH: usize = 250;
    const AT_LEAST: usize = 2000;
    /// 20 MB: far more than the kernel buffers for a connection that does not read.
    const AT_MOST: usize = 50_000;

    let server = Server::plain(RUNNER, &["--stall-timeout", "2"]);
    let mut sender = server.join("sender");
    let mut readers: Vec<Client> = ["r1", "r2"].iter().map(|name| server.join(name)).collect();
    // Connects and then never reads a byte.
    let sleeper = Client::connect(server.addr());
    sleeper.limit_receive_buffer(64 * 1024);
    for reader in &mut readers {
        reader.expect_line("anonymous-4 joined");
    }
    sender.sync();

    // Each reader checks every line in order until "end"; talk in batches, each of which every
    // reader must get in full before the next, until the sleeper has been dropped, however
    // much the kernel buffers for it.
    let checked = OrderedReaders::spawn(
        readers,
        message,
        "*** anonymous-4 left (too slow to keep up)",
    );
    checked.broadcast_until_dropped(
        &server,
        &mut sender,
        message,
        0,
        (BATCH, AT_LEAST, AT_MOST),
        None,
    );
    for (saw_drop, reader) in checked.finish(&mut sender) {
        assert!(saw_drop, "a reader was not told of the drop");
        assert!(
            !String::from_utf8_lossy(reader.received()).contains("Closing"),
            "a reader was closed"
        );
    }
    let line = server.expect_log("dropped: could not write to it for 2 s");
    assert!(line.contains(&sleeper.local_addr().to_string()), "{line}");
    let lagging = server.expect_log("is lagging");
    assert!(
        lagging.contains(&sleeper.local_addr().to_string()),
        "{lagging}"
    );
    assert_eq!(
        server.log().matches("dropped:").count(),
        1,
        "only the sleeper is dropped"
    );

    // The sleeper's connection is closed: once it reads, it gets what was buffered, then EOF.
    let mut sleeper = sleeper;
    sleeper.expect_closed();
    assert_none_contains(&sender.sync(), "flood");
}

// ----- Timeouts and shutdown -----

#[test]
fn silent_connection_is_closed_but_a_talker_stays() {
    let server = Server::plain(RUNNER, &["--silence-timeout", "1"]);
    let mut talker = server.connect();
    talker.send_line("/nick talker");
    talker.expect_line("You are now known as talker.");
    let mut silent = Client::connect(server.addr());
    talker.expect_line("anonymous-2 joined");

    // The silent one joined after the talker, so by the time it is closed the talker's
    // deadline has passed too.
    assert_eq!(
        silent.expect_line("Closing"),
        "*** Closing: no line received within 1 s of connecting."
    );
    silent.expect_closed();
    assert_eq!(talker.next_line(), "*** anonymous-2 left (silent too long)");
    server.expect_log("closed: silent too long");

    talker.send_line("/list");
    assert_eq!(talker.next_line(), "*** #lobby (1): talker (you)");
    talker.expect_silence(QUIET);
}

#[test]
fn silence_timeout_zero_never_closes() {
    let server = Server::plain(RUNNER, &["--silence-timeout", "0"]);
    let mut silent = server.connect();
    silent.expect_silence(Duration::from_millis(1500));
    server.expect_log("silence timeout off");
}

#[test]
fn sigterm_says_goodbye_to_everyone_and_exits_zero() {
    let mut server = Server::plain(RUNNER, &[]);
    let mut alice = server.join("alice");
    let mut anonymous = server.connect();
    alice.expect_line("joined");
    // A partial line must not stop the shutdown.
    anonymous.sync();
    anonymous.send("half a li");

    server.signal("TERM");
    for client in [&mut alice, &mut anonymous] {
        assert_eq!(
            client.expect_line("shutting down"),
            "*** The server is shutting down. Goodbye!"
        );
        client.expect_closed();
    }
    let status = server.expect_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let log = server.log();
    assert!(
        log.contains("SIGTERM: shutting down, telling 2 connection(s)"),
        "{log}"
    );
    assert!(log.contains("shut down"), "{log}");
}

#[test]
fn sigint_with_colour_exits_zero() {
    let mut server = Server::start(RUNNER, &[]);
    let mut client = server.connect();
    server.signal("INT");
    assert_eq!(
        client.expect_line("shutting down"),
        "\x1b[33m***\x1b[0m The server is shutting down. Goodbye!"
    );
    client.expect_closed();
    assert_eq!(server.expect_exit().code(), Some(0));
    server.expect_log("SIGINT: shutting down");
}

#[test]
fn sigterm_with_no_one_connected_exits_zero() {
    let mut server = Server::plain(RUNNER, &[]);
    server.signal("TERM");
    assert_eq!(server.expect_exit().code(), Some(0));
}

// ----- Fairness under a flood -----

/// Floods `addr` with blank lines (which cost the server work but produce no output) until
/// `stop` is set or `limit` passes.
fn flood(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    limit: Duration,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut flooder = std::net::TcpStream::connect(addr).expect("flooder connects");
        flooder
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let blanks = vec![b'\n'; 64 * 1024];
        let started = std::time::Instant::now();
        while !stop.load(Ordering::SeqCst) && started.elapsed() < limit {
            let _ = flooder.write_all(&blanks);
        }
    })
}

#[test]
fn a_flooding_client_does_not_hold_up_the_others() {
    let server = Server::plain(RUNNER, &[]);
    let mut bob = server.join("bob");
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(server.addr(), Arc::clone(&stop), Duration::from_secs(10));
    thread::sleep(Duration::from_millis(300));
    // Each connection has one chunk in flight at a time, so bob's line is handled after at
    // most one chunk of everyone else's, not after a queue full of the flooder's.
    bob.send_line("/ping during the flood");
    bob.expect_line("*** pong during the flood");
    assert!(!flooder.is_finished(), "the flood was still going");
    stop.store(true, Ordering::SeqCst);
    flooder.join().unwrap();
}

#[test]
fn the_silence_timeout_fires_during_a_flood() {
    let server = Server::plain(RUNNER, &["--silence-timeout", "1"]);
    let mut silent = Client::connect(server.addr());
    let stop = Arc::new(AtomicBool::new(false));
    // Several flooders, so that the hub always has an event waiting.
    let flooders: Vec<_> = (0..4)
        .map(|_| flood(server.addr(), Arc::clone(&stop), Duration::from_secs(10)))
        .collect();
    silent.expect_line("*** Closing: no line received within 1 s of connecting.");
    assert!(
        flooders.iter().all(|flooder| !flooder.is_finished()),
        "the close came while the flood was still going"
    );
    stop.store(true, Ordering::SeqCst);
    for flooder in flooders {
        flooder.join().unwrap();
    }
}

/// `--flush-interval` bounds how long lines may gather before they are written. At both ends
/// of its range (0: every line at once; 50 ms: the most gathering), a burst reaches every
/// reader whole and in order, and a client's quick back-and-forth gets every reply; outside
/// the range the server refuses to start and says why.
#[test]
fn flush_interval_extremes_lose_nothing_and_bad_values_are_refused() {
    for interval in ["0", "50"] {
        let server = Server::plain(RUNNER, &["--flush-interval", interval]);
        let mut sender = server.join("sender");
        let mut readers: Vec<Client> = ["r1", "r2", "r3"]
            .iter()
            .map(|name| server.join(name))
            .collect();
        for reader in &mut readers {
            reader.sync();
        }
        sender.sync();
        for n in 0..300 {
            sender.send_line(&format!("burst {n:03}"));
        }
        for reader in &mut readers {
            for n in 0..300 {
                let line = reader.expect_line("burst ");
                assert!(
                    line.ends_with(&format!("burst {n:03}")),
                    "--flush-interval {interval}: expected burst {n:03}, got {line:?}"
                );
            }
        }
        // Request and reply, one after the other: each reply comes (the barrier would fail
        // after its wait otherwise), and in order.
        for n in 0..20 {
            sender.send_line(&format!("/nick sender{n}"));
            sender.expect_line(&format!("You are now known as sender{n}."));
        }
    }

    for bad in ["51", "-1", "soon"] {
        let output = std::process::Command::new(RUNNER)
            .args(["--listen", "127.0.0.1:0", "--flush-interval", bad])
            .output()
            .expect("running chat-runner");
        assert!(
            !output.status.success(),
            "--flush-interval {bad} was accepted"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--flush-interval"), "{bad}: {stderr}");
    }
}

/// Thirty people talking at once: every flush goes to dozens of writers, so the server gathers
/// lines between flushes and reads busy connections at each flush instead of whenever a line
/// arrives. Every line still reaches everyone else, each sender's lines in order; and a talker
/// that went quiet long enough to be waited for by readability again is still heard.
#[test]
fn many_talking_at_once_lose_nothing_and_keep_each_senders_order() {
    const TALKERS: usize = 30;
    const ROUNDS: usize = 40;
    let server = Server::plain(RUNNER, &[]);
    let mut talkers: Vec<Client> = (0..TALKERS)
        .map(|n| server.join(&format!("t{n:02}")))
        .collect();
    for talker in &mut talkers {
        talker.sync();
    }
    let mut expected_next = vec![vec![0usize; TALKERS]; TALKERS];
    let mut check = |talkers: &mut Vec<Client>, rounds: usize, quiet: Option<usize>| {
        for reader in 0..TALKERS {
            let from_others = (0..TALKERS)
                .filter(|&sender| sender != reader && Some(sender) != quiet)
                .count();
            for _ in 0..from_others * rounds {
                let line = talkers[reader].expect_line(" says ");
                // "<tNN> tNN says K"
                let (sender, count) = line
                    .rsplit_once(" says ")
                    .map(|(head, k)| (head, k.trim()))
                    .unwrap_or_else(|| panic!("{line:?}"));
                let sender: usize = sender[sender.len() - 2..].parse().unwrap();
                let count: usize = count.parse().unwrap();
                assert_ne!(sender, reader, "t{reader:02} got its own line back");
                assert_eq!(
                    count, expected_next[reader][sender],
                    "t{reader:02} got t{sender:02}'s lines out of order or with a gap"
                );
                expected_next[reader][sender] += 1;
            }
        }
    };
    for round in 0..ROUNDS {
        for (n, talker) in talkers.iter_mut().enumerate() {
            talker.send_line(&format!("t{n:02} says {round}"));
        }
    }
    check(&mut talkers, ROUNDS, None);

    // t00 is quiet while the others talk on, then speaks again.
    for round in ROUNDS..2 * ROUNDS {
        for (n, talker) in talkers.iter_mut().enumerate().skip(1) {
            talker.send_line(&format!("t{n:02} says {round}"));
        }
    }
    check(&mut talkers, ROUNDS, Some(0));
    for round in 0..3 {
        talkers[0].send_line(&format!("t00 says {}", ROUNDS + round));
    }
    for reader in talkers.iter_mut().skip(1) {
        for round in 0..3 {
            reader.expect_line(&format!("t00 says {}", ROUNDS + round));
        }
    }
}

/// A line that gets no answer at all (an empty one), from a talker in a busy room, must not
/// leave that talker's next line unread: the server reads busy talkers at its flushes, and a
/// flush must come for them even when nothing else is happening.
#[test]
fn a_silent_line_in_a_busy_room_does_not_hold_up_the_next() {
    const PEOPLE: usize = 30;
    let server = Server::plain(RUNNER, &[]);
    let mut people: Vec<Client> = (0..PEOPLE)
        .map(|n| server.join(&format!("p{n:02}")))
        .collect();
    for person in &mut people {
        person.sync();
    }
    for round in 0..3 {
        // A line to everyone makes the server gather (a flush to 29 writers)...
        people[0].send_line(&format!("busy {round}"));
        for person in people.iter_mut().skip(1) {
            person.expect_line(&format!("busy {round}"));
        }
        // ...then an empty line, which gets no answer, and, once the server has had time to
        // handle it and fall quiet, a real one.
        people[0].send_line("");
        thread::sleep(Duration::from_millis(100));
        people[0].send_line(&format!("after {round}"));
        people[1].expect_line(&format!("after {round}"));
    }
}
