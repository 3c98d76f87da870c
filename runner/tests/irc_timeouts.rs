//! Timeouts of the IRC dialect over real sockets: registration, and the PING a quiet client must
//! answer.

use std::time::Duration;

use chat_tests::{Client, Server};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

fn register(server: &Server, nick: &str) -> Client {
    let mut client = Client::connect(server.addr());
    client.send(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"));
    client.expect_line(&format!(" 001 {nick} :Welcome"));
    client.expect_line(" 366 ");
    client
}

#[test]
fn a_quiet_irc_client_is_pinged_and_dropped_if_it_does_not_answer() {
    let server = Server::plain(
        RUNNER,
        &[
            "--greeting-delay",
            "400",
            "--ping-interval",
            "1",
            "--ping-timeout",
            "1",
        ],
    );
    let mut answers = register(&server, "answers");
    let mut silent = register(&server, "silent");
    let mut plain = server.join("plain");
    // Both are pinged after a quiet second; one answers each time, the other never does, and
    // is dropped a second later, which the first hears of.
    let (mut pings, mut heard_quit) = (0, false);
    while pings < 3 || !heard_quit {
        match answers.next_line().as_str() {
            "PING :chat.local" => {
                answers.send("PONG :chat.local\r\n");
                pings += 1;
            }
            ":silent!~silent@hidden QUIT :ping timeout" => heard_quit = true,
            // The others arriving.
            line if line.contains(" JOIN #lobby") || line.contains(" NICK :plain") => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    silent.expect_line("PING :chat.local");
    silent.expect_line("ERROR :Closing link: no answer to PING within 1 s");
    silent.expect_closed();
    plain.expect_line("*** silent left (ping timeout)");
    server.expect_log("closed: ping timeout");
    assert_eq!(server.log().matches("closed: ping timeout").count(), 1);
    // A plain-text client is never pinged (it could not answer).
    plain.expect_silence(Duration::from_millis(1500));
}

#[test]
fn an_irc_client_that_never_registers_is_closed_at_the_silence_timeout() {
    let server = Server::plain(
        RUNNER,
        &["--greeting-delay", "400", "--silence-timeout", "1"],
    );
    let mut client = Client::connect(server.addr());
    // Lines keep coming, but not a registration: that is not enough.
    client.send("NICK halfway\r\n");
    client.send("PING :still here\r\n");
    client.expect_line("PONG chat.local :still here");
    client.expect_line("ERROR :Closing link: not registered within 1 s of connecting");
    client.expect_closed();
    // Nobody else was told anything: it was never in a room.
    let mut other = server.join("other");
    assert!(other.sync().is_empty());
}
