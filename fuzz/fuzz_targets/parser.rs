//! Arbitrary bytes as one line for `Command::parse`, and as the byte stream of one connection,
//! both as they are and as the JSON dialect.

#![no_main]

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
    }

    // The bytes as a connection's whole stream: as they are (lines, unless they start with
    // `{`), and after a `{`, so the JSON framer and parser see every input too.
    stream(data);
    stream(&[b"{", data].concat());
});

fn stream(data: &[u8]) {
    let now = Instant::ZERO;
    let config = Config::default().with_greeting_delay(core::time::Duration::ZERO).with_colour(false).with_flood_limit(None);
    let mut server: Server<2> = Server::new(config, now);
    let mut conn = connect(&mut server);
    let mut rest = data;
    while !rest.is_empty() {
        let taken = server.handle_input(now, conn, rest).expect("live").bytes();
        assert!(
            (1..=rest.len()).contains(&taken),
            "took {taken} of {}",
            rest.len()
        );
        rest = &rest[taken..];
        let mut closed = false;
        while let Some(output) = server.poll_output() {
            match output {
                Output::Send { bytes, .. } => check_plain(bytes),
                Output::Close { .. } => closed = true,
                _ => {}
            }
        }
        if closed {
            // `/quit`: carry on with the rest of the stream as a new connection.
            conn = connect(&mut server);
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
