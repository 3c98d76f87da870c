//! Room history over real sockets: a newcomer sees what was said last, marked with its age.

use chat_tests::Server;

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

#[test]
fn a_newcomer_sees_the_last_lines_of_the_room() {
    let server = Server::plain(RUNNER, &["--history", "2"]);
    let mut alice = server.join("alice");
    for line in ["one", "two", "three"] {
        alice.send_line(line);
    }
    alice.send_line("/me waves");
    alice.sync();
    // The welcome ends with the lobby's list; the history follows it.
    let mut bob = server.connect();
    assert_eq!(
        bob.sync(),
        [
            "*** Earlier in #lobby:",
            "[0 s ago] alice: three",
            "[0 s ago] * alice waves"
        ]
    );
}

#[test]
fn history_is_off_with_zero_and_outlives_its_room() {
    let server = Server::plain(RUNNER, &["--history", "0"]);
    let mut alice = server.join("alice");
    alice.send_line("not kept");
    alice.sync();
    let mut bob = server.connect();
    assert!(bob.sync().is_empty(), "no history after the list");

    let server = Server::plain(RUNNER, &["--history", "5"]);
    let mut alice = server.join("alice");
    alice.send_line("/join #tmp");
    alice.expect_line("#tmp (1)");
    alice.send_line("said in tmp");
    alice.expect_line("No one else is in #tmp");
    alice.send_line("/part #tmp");
    alice.expect_line("You left #tmp.");
    // #tmp went with its last member, but its lines are kept by name: a new #tmp shows them.
    alice.send_line("/join #tmp");
    alice.expect_line("#tmp (1)");
    alice.expect_line("Earlier in #tmp:");
    alice.expect_line("alice: said in tmp");
    assert!(alice.sync().is_empty());
}
