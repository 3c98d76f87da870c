//! Hostile input over real loopback sockets: each test does one nasty thing to `chat-runner`,
//! then checks that the attacker got the documented reply, that no raw control byte reached
//! anyone else, and that the server still serves a newcomer normally.
//!
//! Every loop is bounded in count and in time, and every thread is joined.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chat_tests::{Client, OrderedReaders, Server, wait_until};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

const TOO_LONG: &str = "*** error: line too long (over 512 bytes); it was not sent";
const NOT_UTF8: &str = "*** error: your line is not valid UTF-8; it was not sent";

/// The reply to a line whose first control character is shown as `shown`.
fn control_reply(shown: &str) -> String {
    format!("*** error: your line contains the control character {shown}; it was not sent")
}

/// The bidirectional override and isolate characters the protocol refuses.
const BIDI: [char; 9] = [
    '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}',
];

/// Asserts that nothing `client` received could act on its terminal: no ESC (there is no
/// colour with `--no-color`), no other control character but the line endings, no NUL, no
/// raw 0xFF, and no bidi override or isolate.
#[track_caller]
fn assert_clean(client: &Client) {
    let received = client.received();
    assert!(
        !received.contains(&0x1b),
        "an ESC reached a client: {:?}",
        String::from_utf8_lossy(received)
    );
    assert!(
        !received.contains(&0xff),
        "a raw 0xFF reached a client: {:?}",
        String::from_utf8_lossy(received)
    );
    let text = String::from_utf8_lossy(received);
    assert!(
        text.chars()
            .all(|c| !c.is_control() || c == '\r' || c == '\n'),
        "a control character reached a client: {text:?}"
    );
    assert!(
        !text.contains(BIDI),
        "a bidi override or isolate reached a client: {text:?}"
    );
}

/// The server still answers a newcomer's ping, still carries a line between two normal
/// clients both ways, and has logged no bug.
#[track_caller]
fn assert_still_serving(server: &Server) {
    let mut check = server.join("check");
    check.send_line("/ping ok");
    assert_eq!(check.expect_line("*** pong"), "*** pong ok");
    let mut other = server.join("check2");
    check.expect_line("is now known as check2");
    other.send_line("hello from check2");
    assert_eq!(
        check.expect_line("hello from check2"),
        "check2: hello from check2"
    );
    check.send_line("hello from check");
    assert_eq!(
        other.expect_line("hello from check"),
        "check: hello from check"
    );
    assert_clean(&check);
    assert_clean(&other);
    let log = server.log();
    assert!(!log.contains("bug:"), "the server logged a bug:\n{log}");
}

/// Connects `alice`, then `bob`, and waits until alice has seen bob pick his name.
fn alice_and_bob(server: &Server) -> (Client, Client) {
    let mut alice = server.join("alice");
    let bob = server.join("bob");
    alice.expect_line("is now known as bob");
    (alice, bob)
}

/// Sends each of `lines` from `attacker` and checks the exact reply to each; then checks that
/// `victim` got nothing at all, and that a normal line still goes through.
#[track_caller]
fn refused_one_by_one(attacker: &mut Client, victim: &mut Client, lines: &[(&[u8], String)]) {
    for (line, reply) in lines {
        attacker.send(line);
        assert_eq!(&attacker.next_line(), reply, "the reply to {line:?}");
    }
    assert!(attacker.sync().is_empty());
    let got = victim.sync();
    assert!(got.is_empty(), "the victim got {got:?}");
    attacker.send_line("a normal line");
    assert_eq!(victim.next_line(), "alice: a normal line");
    assert_clean(victim);
}

// ----- Oversized input -----

#[test]
fn a_megabyte_without_a_newline_gets_one_error_and_the_connection_goes_on() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);

    let piece = vec![b'x'; 16 * 1024];
    for _ in 0..64 {
        alice.send(&piece);
    }
    alice.send("\nafter the megabyte\n");
    assert_eq!(alice.next_line(), TOO_LONG);
    assert_eq!(bob.next_line(), "alice: after the megabyte");
    // Exactly one error, and nothing of the long line reached anyone.
    let more = alice.sync();
    assert!(more.is_empty(), "more than one reply: {more:?}");
    assert!(bob.sync().is_empty());
    assert!(!bob.received().windows(16).any(|w| w == [b'x'; 16]));
    assert_clean(&bob);
    assert_still_serving(&server);
}

#[test]
fn every_connection_at_the_capacity_can_hold_half_a_line_at_once() {
    // A connection's partial line is kept in a buffer the core lends it only while the line
    // waits for its end, from a pool with one for each connection of the capacity: with the
    // server full and everyone in the middle of a line, no line is lost.
    let server = Server::plain(RUNNER, &["--max-clients", "6"]);
    let mut bob = server.join("bob");
    let mut talkers: Vec<Client> = (0..5).map(|at| server.join(&format!("t{at}"))).collect();
    bob.sync();
    for (at, talker) in talkers.iter_mut().enumerate() {
        talker.send(format!("half {at}"));
    }
    bob.send("bob's half");
    thread::sleep(Duration::from_millis(300));
    // One leaves in the middle of its line (the line is dropped, its buffer given back), and
    // a newcomer in its place begins a line too.
    drop(talkers.pop());
    bob.expect_line("t4 left");
    let mut late = server.join("late");
    bob.expect_line("is now known as late");
    late.send("late half");
    thread::sleep(Duration::from_millis(300));
    for talker in &mut talkers {
        talker.send(" ends\n");
    }
    late.send(" ends\n");
    bob.send(" too\n");
    for at in 0..4 {
        let line = format!("t{at}: half {at} ends");
        assert_eq!(bob.expect_line(&line), line);
    }
    assert_eq!(bob.expect_line("late: "), "late: late half ends");
    assert_eq!(talkers[0].expect_line("bob: "), "bob: bob's half too");
    assert!(!bob.sync().iter().any(|line| line.contains("half 4")));
    assert_clean(&bob);
    drop(talkers);
    drop(late);
    assert_still_serving(&server);
}

// ----- Bytes that must never reach a terminal -----

#[test]
fn nul_bytes_inside_a_line_are_refused() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    let nul = control_reply("^@");
    refused_one_by_one(
        &mut alice,
        &mut bob,
        &[
            (b"before\0after\n", nul.clone()),
            (b"\0\n", nul.clone()),
            (b"\0\0\0 leading nuls\r\n", nul.clone()),
            (b"trailing nul\0\n", nul.clone()),
            (b"/me \0 waves\n", nul.clone()),
            (b"/msg bob hi\0there\n", nul.clone()),
            (b"/nick bo\0b\n", nul.clone()),
            (b"/topic \0\n", nul),
        ],
    );
    assert!(!bob.received().contains(&0));
    assert_still_serving(&server);
}

#[test]
fn invalid_utf8_is_refused() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    let lines: Vec<(&[u8], String)> = [
        &b"bad \xc3\x28 pair\n"[..],
        b"\x80\n",
        b"lone continuation \x80\x80 bytes\n",
        b"overlong slash \xc0\xaf\n",
        b"surrogate \xed\xa0\x80\n",
        b"past U+10FFFF \xf4\x90\x80\x80\n",
        b"cut at the end \xe2\x82\n",
        b"\xfe\xfe\n",
        b"escaped ff \xff\xff\n",
        b"/nick \xc3\x28\n",
        b"/msg bob \x80\n",
    ]
    .into_iter()
    .map(|line| (line, NOT_UTF8.to_owned()))
    .collect();
    refused_one_by_one(&mut alice, &mut bob, &lines);
    assert!(
        !String::from_utf8_lossy(bob.received()).contains('\u{fffd}'),
        "a replacement character reached bob"
    );
    assert_still_serving(&server);
}

#[test]
fn escape_sequences_are_refused_everywhere_text_can_go() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    let esc = control_reply("^[");
    refused_one_by_one(
        &mut alice,
        &mut bob,
        &[
            (b"clear \x1b[2J\x1b[H screen\n", esc.clone()),
            (b"\x1b[31mred\x1b[0m\n", esc.clone()),
            (b"osc title \x1b]0;pwned\x07\n", esc.clone()),
            (b"osc title st \x1b]2;pwned\x1b\\\n", esc.clone()),
            (
                b"link \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\\n",
                esc.clone(),
            ),
            (b"reset \x1bc\n", esc.clone()),
            (b"\x1b\n", esc.clone()),
            (b"/me \x1b[5mblinks\n", esc.clone()),
            (b"/msg bob \x1b[2J\n", esc.clone()),
            (b"/topic \x1b]0;topic\x07\n", esc.clone()),
            (b"/part #lobby \x1b[2J\n", esc.clone()),
            (b"/nick \x1b[2Jx\n", esc.clone()),
            (b"/quit \x1b]0;bye\x07\n", esc),
            (b"c1 csi \xc2\x9b2J\n", control_reply("U+009B")),
            (b"bell \x07\n", control_reply("^G")),
            (b"backspace \x08\x08\n", control_reply("^H")),
            (b"delete \x7f\n", control_reply("^?")),
        ],
    );
    // alice is still in the lobby, still named alice, and still connected.
    alice.send_line("/list");
    assert_eq!(alice.next_line(), "*** #lobby (2): alice (you), bob");
    assert_still_serving(&server);
    assert_clean(&bob);
}

#[test]
fn bidi_overrides_and_isolates_are_refused() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut lines: Vec<(Vec<u8>, String)> = BIDI
        .iter()
        .map(|&c| {
            (
                format!("evil{c}gpj.exe\n").into_bytes(),
                control_reply(&format!("U+{:04X}", u32::from(c))),
            )
        })
        .collect();
    lines.push(("/msg bob \u{202e}olleh\n".into(), control_reply("U+202E")));
    lines.push(("/me \u{2067}waves\n".into(), control_reply("U+2067")));
    lines.push(("/topic \u{2066}x\u{2069}\n".into(), control_reply("U+2066")));
    let lines: Vec<(&[u8], String)> = lines
        .iter()
        .map(|(line, reply)| (&line[..], reply.clone()))
        .collect();
    refused_one_by_one(&mut alice, &mut bob, &lines);
    assert_still_serving(&server);
}

#[test]
fn telnet_noise_is_skipped_and_a_stray_iac_does_not_eat_the_newline() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);

    // IAC WILL ECHO, IAC DO SUPPRESS-GO-AHEAD before a line.
    alice.send(b"\xff\xfb\x01\xff\xfd\x03hello\r\n");
    assert_eq!(bob.next_line(), "alice: hello");
    // A subnegotiation (terminal type) in the middle of a line.
    alice.send(b"mid\xff\xfa\x18\x00xterm\xff\xf0dle\n");
    assert_eq!(bob.next_line(), "alice: middle");
    // A command split across writes.
    alice.send(b"sp\xff");
    alice.send(b"\xfd");
    alice.send(b"\x01lit\n");
    assert_eq!(bob.next_line(), "alice: split");
    // Commands without an option: NOP, are-you-there, interrupt.
    alice.send(b"a\xff\xf1b\xff\xf6c\xff\xf4d\n");
    assert_eq!(bob.next_line(), "alice: abcd");
    // A stray IAC (a Latin-1 ÿ, not a telnet command) is data, and never UTF-8: the line is
    // refused, and the newline after it still ends the line. So does IAC WILL's.
    alice.send(b"stray\xff\n");
    assert_eq!(alice.next_line(), NOT_UTF8);
    alice.send(b"y umlaut \xff here\n");
    assert_eq!(alice.next_line(), NOT_UTF8);
    alice.send(b"will\xff\xfb\n");
    assert_eq!(bob.next_line(), "alice: will");
    alice.send(b"next\n");
    assert_eq!(bob.next_line(), "alice: next");
    // IAC IAC is a literal 0xFF, which is never UTF-8.
    alice.send(b"escaped \xff\xff byte\n");
    assert_eq!(alice.next_line(), NOT_UTF8);
    // An escape sequence hidden inside telnet noise is still seen and refused.
    alice.send(b"\xff\xfd\x01\x1b[2J\xff\xfb\x01\n");
    assert_eq!(alice.next_line(), control_reply("^["));
    // An unterminated subnegotiation cannot swallow the session.
    let mut unterminated = b"\xff\xfa".to_vec();
    unterminated.extend_from_slice(&[b'A'; 300]);
    unterminated.extend_from_slice(b"\nafter the subnegotiation\n");
    alice.send(&unterminated);
    let mut before = Vec::new();
    loop {
        let line = bob.next_line();
        if line == "alice: after the subnegotiation" {
            break;
        }
        before.push(line);
    }
    assert!(
        before.iter().all(|line| line
            .strip_prefix("alice: ")
            .is_some_and(|rest| rest.bytes().all(|b| b == b'A'))),
        "lines before the end of the subnegotiation: {before:?}"
    );
    assert!(alice.sync().is_empty());
    assert!(bob.sync().is_empty());
    assert_clean(&bob);
    assert_still_serving(&server);
}

// ----- Floods and pastes with flood control on -----

/// Sends `text` from `from` (called `name`) and waits until `to` gets it, allowing only the
/// flooder's lines in between; returns how many of those there were.
#[track_caller]
fn talk(from: &mut Client, to: &mut Client, name: &str, text: &str) -> usize {
    from.send_line(text);
    let wanted = format!("{name}: {text}");
    let mut flood_lines = 0;
    loop {
        let line = to.next_line();
        if line == wanted {
            return flood_lines;
        }
        assert_eq!(line, "anonymous-3: flood", "waiting for {wanted:?}");
        flood_lines += 1;
    }
}

#[test]
fn a_flood_with_flood_control_on_does_not_stop_others_chatting() {
    let server = Server::plain(RUNNER, &["--flood-burst", "5", "--flood-rate", "50"]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let (addr, stop) = (server.addr(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut socket = TcpStream::connect(addr).expect("the flooder connects");
            socket
                .set_write_timeout(Some(Duration::from_millis(200)))
                .expect("set_write_timeout");
            let lines = "flood\n".repeat(4096);
            let started = Instant::now();
            let mut writes = 0;
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
                let _ = socket.write_all(lines.as_bytes());
                writes += 1;
                if writes >= 10_000 {
                    break;
                }
            }
            socket
        })
    };
    alice.expect_line("anonymous-3 joined #lobby (3 here)");
    bob.expect_line("anonymous-3 joined #lobby (3 here)");

    // For two seconds alice and bob talk back and forth at a human pace; each line arrives,
    // with only the flooder's (rate-limited) lines in between.
    let started = Instant::now();
    let mut flood_lines = 0;
    let mut exchanges = 0;
    while started.elapsed() < Duration::from_secs(2) && exchanges < 1000 {
        let text = format!("chat {exchanges}");
        flood_lines += talk(&mut alice, &mut bob, "alice", &text);
        flood_lines += talk(&mut bob, &mut alice, "bob", &text);
        exchanges += 1;
        // People chat at a human pace, well under the flood limit.
        thread::sleep(Duration::from_millis(50));
    }
    let elapsed = started.elapsed();
    assert!(!flooder.is_finished(), "the flood stopped early");
    // Nobody was dropped while the flood went on, the flooder included.
    let log = server.log();
    assert!(!log.contains("dropped"), "{log}");
    assert!(!log.contains("disconnected"), "{log}");
    stop.store(true, Ordering::SeqCst);
    let socket = flooder.join().expect("the flooder thread");
    println!("{exchanges} exchanges and {flood_lines} flood lines in {elapsed:?}");
    assert!(exchanges > 0);
    // Flood control holds the flooder to its burst plus 50 a second (counted by two readers).
    let allowed = 2 * (5 + 50 * (elapsed.as_secs() as usize + 2));
    assert!(
        flood_lines <= allowed,
        "{flood_lines} flood lines in {elapsed:?}, more than {allowed}"
    );
    for client in [&alice, &bob] {
        let text = String::from_utf8_lossy(client.received());
        assert!(!text.contains(" left"), "{text}");
        assert_clean(client);
    }
    assert_still_serving(&server);
    drop(socket);
}

#[test]
fn a_paste_of_200_lines_with_flood_control_on_arrives_whole_and_in_order() {
    let server = Server::plain(RUNNER, &["--flood-burst", "5", "--flood-rate", "50"]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    let paste: String = (0..200).map(|n| format!("pasted line {n:03}\n")).collect();
    alice.send(&paste);
    for n in 0..200 {
        assert_eq!(bob.next_line(), format!("alice: pasted line {n:03}"));
    }
    assert_eq!(
        alice.sync(),
        [
            "*** Slow down: you are sending more than 50 lines a second; the rest will follow at that pace."
        ]
    );
    assert!(bob.sync().is_empty());
    assert!(!server.log().contains("dropped"));
    assert_clean(&bob);
    assert_still_serving(&server);
}

// ----- Connections that end oddly -----

#[test]
fn a_half_closed_socket_still_delivers_its_last_lines_then_leaves() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.send("last words\n");
    alice.shutdown_write();
    assert_eq!(bob.next_line(), "alice: last words");
    assert_eq!(bob.next_line(), "*** alice left (connection closed)");
    alice.expect_closed();

    // A rename, a line and an action in one write, then the half-close.
    let mut carol = server.connect();
    bob.expect_line("joined #lobby");
    carol.send("/nick carol\nhi from carol\n/me waves\n");
    carol.shutdown_write();
    assert_eq!(bob.next_line(), "*** anonymous-1 is now known as carol");
    assert_eq!(bob.next_line(), "carol: hi from carol");
    assert_eq!(bob.next_line(), "* carol waves");
    assert_eq!(bob.next_line(), "*** carol left (connection closed)");
    carol.expect_closed();
    assert!(bob.sync().is_empty());
    assert_clean(&bob);
    assert_still_serving(&server);
}

#[test]
fn a_thousand_connects_and_disconnects_in_a_burst_leave_no_trace() {
    const THREADS: usize = 4;
    const EACH: usize = 250;
    let server = Server::plain(RUNNER, &["--max-per-ip", "0"]);
    let addr = server.addr();
    let deadline = Instant::now() + Duration::from_secs(15);
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            thread::spawn(move || {
                let mut connected = 0;
                for n in 0..EACH {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let Ok(mut socket) = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                    else {
                        continue;
                    };
                    connected += 1;
                    let _ = socket.set_write_timeout(Some(Duration::from_millis(200)));
                    // Dropping a socket with its banner unread resets it; some close cleanly.
                    match (thread + n) % 5 {
                        0 => {}
                        1 => {
                            let _ = socket.write_all(b"hello and goodbye\n");
                        }
                        2 => {
                            let _ = socket.write_all(b"/nick half-a-li");
                            let _ = socket.shutdown(Shutdown::Both);
                        }
                        3 => {
                            let _ = socket.write_all(b"\xff\xfa\x18\x00xte");
                        }
                        _ => {
                            let _ = socket.shutdown(Shutdown::Write);
                        }
                    }
                }
                connected
            })
        })
        .collect();
    let connected: usize = threads
        .into_iter()
        .map(|thread| thread.join().expect("a connecting thread"))
        .sum();
    assert_eq!(
        connected,
        THREADS * EACH,
        "connections made before the deadline"
    );

    // Every one of them is gone: a watcher eventually finds itself alone.
    let mut watcher = server.join("watcher");
    wait_until("the burst's connections to be gone", || {
        watcher.send_line("/list");
        watcher.expect_line_where(|line| line.starts_with("*** #lobby ("), "the list")
            == "*** #lobby (1): watcher (you)"
    });
    let log = server.log();
    assert!(!log.contains("bug:"), "{log}");
    assert!(!log.contains("refused"), "{log}");
    assert!(
        log.matches(" connected from ").count() > THREADS * EACH,
        "fewer connections logged than made"
    );
    assert_clean(&watcher);
    assert_still_serving(&server);
}

#[test]
fn a_client_that_stops_reading_mid_broadcast_is_dropped_and_the_others_get_everything() {
    /// Lines of about 400 bytes, numbered so that order and completeness can be checked.
    fn message(n: usize) -> String {
        format!("bulk {n:05} {}", "p".repeat(388))
    }
    const FIRST: usize = 5;
    const BATCH: usize = 250;
    const AT_LEAST: usize = 1000;
    const AT_MOST: usize = 50_000;

    let server = Server::plain(RUNNER, &["--stall-timeout", "2"]);
    let mut sender = server.join("sender");
    let mut readers: Vec<Client> = ["r1", "r2"].iter().map(|name| server.join(name)).collect();
    let mut staller = server.join("staller");
    staller.limit_receive_buffer(64 * 1024);
    for reader in &mut readers {
        reader.expect_line("is now known as staller");
    }
    sender.expect_line("is now known as staller");

    let checked = OrderedReaders::spawn(readers, message, "*** staller left (too slow to keep up)");

    // The staller reads the start of the broadcast, then stops reading.
    for n in 0..FIRST {
        sender.send_line(&message(n));
    }
    for n in 0..FIRST {
        assert_eq!(staller.next_line(), format!("sender: {}", message(n)));
    }

    checked.broadcast_until_dropped(
        &server,
        &mut sender,
        message,
        FIRST,
        (BATCH, AT_LEAST, AT_MOST),
        Some(Duration::from_secs(20)),
    );
    for (saw_drop, reader) in checked.finish(&mut sender) {
        assert!(saw_drop, "a reader was not told of the drop");
        assert_clean(&reader);
    }
    let line = server.expect_log("dropped: could not write to it for 2 s");
    assert!(line.contains(&staller.local_addr().to_string()), "{line}");
    assert_eq!(
        server.log().matches("dropped").count(),
        1,
        "only the staller is dropped"
    );
    // The staller's connection is closed: it gets what was buffered, then the end.
    staller.expect_closed();
    let told = sender.sync();
    assert!(
        told.iter().all(|line| !line.starts_with("*** error")),
        "{told:?}"
    );
    assert_still_serving(&server);
}
