//! The original Node.js client's wire format over a real socket: JSON objects back to back,
//! no delimiter, split and merged at arbitrary points by TCP.

use std::time::Duration;

use chat_tests::{Client, Server};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// One object as the original client wrote it.
fn object(kind: &str, message: &str) -> String {
    format!(r#"{{"type":"{kind}","message":"{message}"}}"#)
}

/// A JSON client that has named itself `node`, and `bob` on the plain dialect.
fn node_and_bob(server: &Server) -> (Client, Client) {
    let mut bob = server.join("bob");
    let mut node = Client::connect(server.addr());
    node.send(object("nickname", "node"));
    node.expect_line("*** You are now known as node.");
    bob.expect_line("*** anonymous-2 is now known as node");
    (node, bob)
}

#[test]
fn the_original_client_talks_with_a_plain_one() {
    let server = Server::plain(RUNNER, &[]);
    let (mut node, mut bob) = node_and_bob(&server);
    node.send(object("boardcast", "hello from node"));
    assert_eq!(bob.next_line(), "node: hello from node");
    bob.send_line("hello from bob");
    assert_eq!(node.next_line(), "bob: hello from bob");

    node.send(r#"{"type":"client","user":"bob","message":"psst"}"#);
    assert_eq!(bob.next_line(), "[private] node: psst");
    assert_eq!(node.next_line(), "[private] to bob: psst");

    node.send(object("listall", ""));
    assert_eq!(node.next_line(), "*** #lobby (2): bob, node (you)");
}

#[test]
fn objects_split_and_merged_at_any_point_arrive_whole_and_in_order() {
    let server = Server::plain(RUNNER, &[]);
    let (mut node, mut bob) = node_and_bob(&server);
    let stream: String = (0..200)
        .map(|n| object("boardcast", &format!("m{n} {{braces}} \\\"quoted\\\" \\\\")))
        .collect();
    // A fixed pseudo-random sequence of cut points (xorshift), so a failure reproduces.
    let mut state = 0x2545_f491_u32;
    let mut rest = stream.as_bytes();
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let take = (state as usize % 97 + 1).min(rest.len());
        node.send(&rest[..take]);
        rest = &rest[take..];
        if state.is_multiple_of(7) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for n in 0..200 {
        assert_eq!(
            bob.next_line(),
            format!("node: m{n} {{braces}} \"quoted\" \\")
        );
    }
}

#[test]
fn malformed_objects_get_an_error_and_the_connection_goes_on() {
    let server = Server::plain(RUNNER, &[]);
    let (mut node, mut bob) = node_and_bob(&server);
    for (bad, reply) in [
        (
            r#"{"type":"boardcast","message":42}"#,
            "*** error: malformed JSON object",
        ),
        (
            r#"{"type":"dance","message":"x"}"#,
            "*** error: unknown message type \"dance\"",
        ),
        (
            r#"{"type":"client","message":"x"}"#,
            "*** error: this message type needs a non-empty \"user\"",
        ),
        (
            r#"{"type":"boardcast","message":"\u001b[2J"}"#,
            "*** error: your message contains the control character ^[",
        ),
        ("not json at all", "*** error: expected a JSON object"),
    ] {
        node.send(bad);
        let line = node.next_line();
        assert!(line.starts_with(reply), "{bad}: {line}");
    }
    let mut long = object("boardcast", &"x".repeat(600));
    long.push_str(&object("boardcast", "still here"));
    node.send(long);
    assert_eq!(
        node.next_line(),
        "*** error: object too long (over 512 bytes); it was not sent"
    );
    assert_eq!(bob.next_line(), "node: still here");
    assert!(bob.sync().is_empty(), "nothing malformed reached bob");
}
