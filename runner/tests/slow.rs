//! Clients that stop reading, over real sockets: room messages are skipped for them and
//! accounted for, private messages to them are refused to their senders rather than lost, and
//! nobody else waits.

use std::time::Duration;

use chat_tests::{Client, Server, wait_until};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// Lines of about 400 bytes, numbered, so that a gap can be measured.
fn message(n: usize) -> String {
    format!("line {n:06} {}", "s".repeat(388))
}

/// The number in a line made by [`message`], after `prefix`.
fn number(line: &str, prefix: &str) -> Option<usize> {
    line.strip_prefix(prefix)?
        .strip_prefix("line ")?
        .get(..6)?
        .parse()
        .ok()
}

/// `K` in `*** [K messages skipped]` (or `[1 message skipped]`).
fn skipped(line: &str) -> Option<usize> {
    let inner = line.strip_prefix("*** [")?.strip_suffix(" skipped]")?;
    inner.split(' ').next()?.parse().ok()
}

/// The most lines a test sends before the kernel's buffers for a client that does not read
/// are full: far more than they hold (a few megabytes).
const AT_MOST: usize = 60_000;

#[test]
fn a_reader_that_falls_behind_is_told_how_many_room_messages_it_missed() {
    let server = Server::plain(RUNNER, &["--lag-limit", "20", "--queue-limit", "100"]);
    let mut sender = server.join("sender");
    let mut staller = server.join("staller");
    staller.limit_receive_buffer(64 * 1024);
    sender.expect_line("is now known as staller");

    // The staller stops reading; the room talks until the server has begun skipping for it,
    // then some more.
    let mut sent = 0;
    while !server.log().contains("is lagging") {
        assert!(sent < AT_MOST, "never lagging after {sent} lines");
        for _ in 0..200 {
            sender.send_line(&message(sent));
            sent += 1;
        }
        sender.sync();
    }
    for _ in 0..50 {
        sender.send_line(&message(sent));
        sent += 1;
    }
    sender.send_line("/list");
    sender.expect_line("staller (lagging)");

    // It reads again: every line in order, each gap announced with its exact size.
    let (mut expected, mut notices) = (0, 0);
    loop {
        let line = staller.next_line();
        if let Some(gap) = skipped(&line) {
            expected += gap;
            notices += 1;
            break;
        }
        assert_eq!(number(&line, "sender: "), Some(expected), "{line}");
        expected += 1;
    }
    assert_eq!(
        expected, sent,
        "every line was received or counted as skipped"
    );
    assert_eq!(notices, 1);
    // Caught up: it gets room messages again, and is no longer shown as lagging.
    sender.send_line("after");
    assert_eq!(staller.next_line(), "sender: after");
    sender.send_line("/list");
    let listing = sender.expect_line("#lobby (2)");
    assert!(!listing.contains("lagging"), "{listing}");
    assert!(server.log().contains("caught up;"), "{}", server.log());
    assert!(!server.log().contains("dropped"), "{}", server.log());
}

#[test]
fn private_messages_to_a_client_too_far_behind_are_refused_to_their_sender() {
    let server = Server::plain(RUNNER, &["--lag-limit", "10", "--queue-limit", "40"]);
    let mut sender = server.join("sender");
    let mut staller = server.join("staller");
    staller.limit_receive_buffer(64 * 1024);
    sender.expect_line("is now known as staller");

    const REFUSED: &str = "*** error: your private message to staller was not delivered: they are not reading, and too far behind";
    let (mut sent, mut refused) = (0, 0);
    while refused == 0 {
        assert!(sent < AT_MOST, "nothing refused after {sent} messages");
        for _ in 0..200 {
            sender.send_line(&format!("/msg staller {}", message(sent)));
            sent += 1;
        }
        refused += sender
            .sync()
            .iter()
            .filter(|line| line.as_str() == REFUSED)
            .count();
    }
    // The staller reads: the private messages it was sent, in order, with no gap, up to the
    // first one refused; every later one was refused too, each to its sender.
    sender.send_line("/ping done");
    wait_until("the sender's last ping to be answered", || {
        sender
            .sync()
            .iter()
            .inspect(|line| refused += usize::from(line.as_str() == REFUSED))
            .any(|line| line == "*** pong done")
    });
    let mut got = 0;
    while got + refused < sent {
        let line = staller.next_line();
        assert_eq!(number(&line, "[private] sender: "), Some(got), "{line}");
        got += 1;
    }
    assert!(got > 0 && refused > 0);
    assert_eq!(
        got + refused,
        sent,
        "each message delivered or refused to its sender"
    );
    staller.expect_silence(Duration::from_millis(300));
    assert!(!server.log().contains("dropped"), "{}", server.log());
    // Nothing else waits: the sender is answered as usual.
    assert!(sender.sync().is_empty());
}

#[test]
fn a_client_nothing_can_be_written_to_is_dropped_after_the_stall_timeout() {
    let server = Server::plain(RUNNER, &["--stall-timeout", "1"]);
    let mut sender = server.join("sender");
    let sleeper = Client::connect(server.addr());
    sleeper.limit_receive_buffer(64 * 1024);
    sender.expect_line("anonymous-2 joined");
    let (mut sent, mut told) = (0, false);
    // Bounded by time, not by lines: once the sleeper is lagging, its queue no longer grows,
    // and what ends it is the stall timeout, however many lines a fast machine sends first.
    let started = std::time::Instant::now();
    while !told {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not dropped after {sent} lines"
        );
        for _ in 0..200 {
            sender.send_line(&message(sent));
            sent += 1;
        }
        told = sender
            .sync()
            .iter()
            .any(|line| line == "*** anonymous-2 left (too slow to keep up)");
    }
    let line = server.expect_log("dropped: could not write to it for 1 s");
    assert!(line.contains(&sleeper.local_addr().to_string()), "{line}");
}
