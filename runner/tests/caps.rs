//! Connection caps over real sockets: the whole server, and one address.

use chat_tests::{Client, Server};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

#[test]
fn past_max_clients_a_connection_is_told_the_server_is_full() {
    let server = Server::plain(RUNNER, &["--max-clients", "2"]);
    let mut alice = server.join("alice");
    let _bob = server.join("bob");
    let mut third = Client::connect(server.addr());
    assert_eq!(
        third.next_line(),
        "*** Sorry, the server is full. Please try again later."
    );
    third.expect_closed();
    server.expect_log("server full (2 online)");
    // Room again once someone leaves.
    alice.send_line("/quit");
    alice.expect_closed();
    let mut fourth = server.connect();
    fourth.send_line("/ping in");
    fourth.expect_line("*** pong in");
}

#[test]
fn a_capacity_far_past_the_open_file_limit_starts_and_serves() {
    // The core's table is reserved for 100,000 but only used as connections come.
    let server = Server::plain(RUNNER, &["--max-clients", "100000"]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.send_line("hello bob");
    bob.expect_line("alice: hello bob");
}

#[test]
fn past_max_per_ip_a_connection_is_refused_with_a_reason() {
    let server = Server::plain(RUNNER, &["--max-per-ip", "2"]);
    let first = server.connect();
    let _second = server.connect();
    let mut third = Client::connect(server.addr());
    assert_eq!(
        third.next_line(),
        "*** Sorry, too many connections from your address. Please try again later."
    );
    third.expect_closed();
    server.expect_log("2 connections from 127.0.0.1 already");
    // The count goes down when one of them leaves.
    drop(first);
    server.expect_log("disconnected");
    let mut fourth = server.connect();
    fourth.send_line("/ping in");
    fourth.expect_line("*** pong in");
}
