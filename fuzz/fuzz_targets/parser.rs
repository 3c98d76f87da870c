//! Arbitrary bytes as one line for `Command::parse` and the IRC `Message::parse`, and as the
//! byte stream of one connection in each dialect: plain lines, JSON objects and IRC.

#![no_main]

use chat_core::irc::Message;
use chat_core::{Admission, Command, Config, Instant, Output, Server};
use libfuzzer_sys::fuzz_target;

#[path = "plain.rs"]
mod plain;
use plain::check_plain;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = core::str::from_utf8(data) {
        // Every part of a command borrows from the line.
        match Command::parse(line) {
            Ok(Command::Say(text) | Command::Nick(text) | Command::Me(text)) => {
                assert!(line.contains(text));
            }
            Ok(Command::Msg { to, text }) => assert!(line.contains(to) && line.contains(text)),
            _ => {}
        }
        // What the IRC parser reads, its writer writes back the same.
        if let Ok(message) = Message::parse(line) {
            let written = message.to_string();
            assert_eq!(
                Message::parse(&written).as_ref(),
                Ok(&message),
                "{written:?}"
            );
        }
    }

    // The bytes as a connection's whole stream: as they are (lines, unless they start with
    // `{`), after a `{`, so the JSON framer and parser see every input too, and after an IRC
    // registration, so the IRC dialect does.
    stream(data);
    stream(&[b"{", data].concat());
    stream(&[b"NICK fuzz\r\nUSER fuzz 0 * :Fuzz\r\n", data].concat());
});

fn stream(data: &[u8]) {
    let now = Instant::ZERO;
    let config = Config::default()
        .with_greeting_delay(core::time::Duration::ZERO)
        .with_colour(false)
        .with_flood_limit(None);
    let mut server: Server<2> = Server::new(config, now);
    let mut conn = connect(&mut server);
    let mut rest = data;
    // Set by `Consumed::more`: the core has the rest of a line naming several targets to
    // handle, through `handle_more`.
    let mut more = false;
    let mut calls = 0;
    while !rest.is_empty() || more {
        calls += 1;
        assert!(
            calls <= 2 * data.len() + 64,
            "the core keeps asking to be called"
        );
        let consumed = if more {
            server.handle_more(now, conn).expect("live")
        } else {
            server.handle_input(now, conn, rest).expect("live")
        };
        let taken = consumed.bytes();
        assert!(taken <= rest.len(), "took {taken} of {}", rest.len());
        // Flood control is off: only a part of a line left over takes no new bytes.
        assert!(taken > 0 || more || rest.is_empty(), "took nothing");
        assert!(!more || taken == 0, "a part of a line took bytes");
        more = consumed.more();
        rest = &rest[taken..];
        let mut closed = false;
        while let Some(output) = server.poll_output() {
            match output {
                Output::Send { bytes, .. } => check_plain(bytes),
                Output::Close { .. } => closed = true,
                Output::Resume { .. } => panic!("Resume with flood control off"),
                _ => {}
            }
        }
        if closed {
            // `/quit`: carry on with the rest of the stream as a new connection.
            conn = connect(&mut server);
            more = false;
        }
    }
}

fn connect(server: &mut Server<2>) -> chat_core::ConnectionId {
    let Ok(Admission::Accepted(conn)) = server.handle_connect(Instant::ZERO) else {
        panic!("a server with a free slot refused a connection");
    };
    while let Some(output) = server.poll_output() {
        if let Output::Send { bytes, .. } = output {
            check_plain(bytes);
        }
    }
    conn
}
