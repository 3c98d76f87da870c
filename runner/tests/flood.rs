//! Flood control over real sockets: a paste gets through whole and in order at the set pace,
//! and a flooder is slowed instead of crowding out everyone else.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chat_tests::{Server, WAIT};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

#[test]
fn a_paste_past_the_burst_arrives_whole_in_order_and_the_sender_is_told_once() {
    let server = Server::plain(RUNNER, &["--flood-burst", "5", "--flood-rate", "20"]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("now known as bob");
    let paste: String = (0..30).map(|n| format!("line {n:02}\n")).collect();
    alice.send(&paste);
    for n in 0..30 {
        assert_eq!(bob.next_line(), format!("alice: line {n:02}"));
    }
    let told: Vec<String> = alice.sync();
    assert_eq!(
        told,
        [
            "*** Slow down: you are sending more than 20 lines a second; the rest will follow at that pace."
        ],
    );
    server.expect_log("flood limit 5 lines then 20/s");
}

#[test]
fn a_flooder_is_slowed_and_readers_keep_up() {
    let server = Server::plain(RUNNER, &["--flood-burst", "10", "--flood-rate", "50"]);
    let mut readers: Vec<_> = ["r1", "r2", "r3"]
        .iter()
        .map(|name| server.join(name))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let (addr, stop) = (server.addr(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut socket = std::net::TcpStream::connect(addr).expect("flooder connects");
            socket
                .set_write_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let lines = "a\n".repeat(8192);
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < WAIT {
                let _ = socket.write_all(lines.as_bytes());
            }
        })
    };
    // For two seconds everyone reads what the flooder gets through, which flood control
    // keeps to the burst plus 50 a second, and answers a ping promptly.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        for reader in &mut readers {
            reader.send_line("/ping alive");
            reader.expect_line("*** pong alive");
        }
    }
    stop.store(true, Ordering::SeqCst);
    flooder.join().unwrap();
    assert!(!server.log().contains("dropped"), "{}", server.log());
}

#[test]
fn held_lines_are_delivered_before_a_half_close_is_acted_on() {
    let server = Server::plain(RUNNER, &["--flood-burst", "5", "--flood-rate", "10"]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("now known as bob");
    // The first chunk ends exactly on the line that empties the bucket; the rest comes later,
    // then alice stops sending. Every line must still reach bob, in order, before she leaves.
    let first: String = (1..=5).map(|n| format!("m{n:02}\n")).collect();
    alice.send(&first);
    thread::sleep(Duration::from_millis(400));
    let rest: String = (6..=30).map(|n| format!("m{n:02}\n")).collect();
    alice.send(&rest);
    alice.shutdown_write();
    for n in 1..=30 {
        assert_eq!(bob.next_line(), format!("alice: m{n:02}"));
    }
    assert_eq!(bob.next_line(), "*** alice left (connection closed)");
}
