//! Arbitrary bytes as one line for `Command::parse` and the IRC `Message::parse`, and as the
//! byte stream of one connection in each dialect: plain lines, JSON objects and IRC.

#![no_main]

use chat_core::irc::Message;
use chat_core::testing::Driver;
use chat_core::{Command, Config, Instant, Output};
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
    let mut driver: Driver<2> = Driver::new(config, now);
    let mut conn = connect(&mut driver);
    let mut rest = data;
    while !rest.is_empty() {
        let mut closed = false;
        let fed = driver.input(conn, rest, &mut |output| match output {
            Output::Send { bytes, .. } => check_plain(bytes),
            Output::Close { .. } => closed = true,
            Output::Resume { .. } => panic!("Resume with flood control off"),
            _ => {}
        });
        assert!(!fed.held, "flood control is off: nothing is held back");
        assert!(fed.taken <= rest.len(), "took {} of {}", fed.taken, rest.len());
        rest = &rest[fed.taken..];
        if closed {
            // `/quit`: carry on with the rest of the stream as a new connection.
            conn = connect(&mut driver);
        } else {
            assert!(rest.is_empty(), "a live connection's bytes were all taken");
        }
    }
}

fn connect(driver: &mut Driver<2>) -> chat_core::ConnectionId {
    driver
        .connect(&mut |output| {
            if let Output::Send { bytes, .. } = output {
                check_plain(bytes);
            }
        })
        .expect("a server with a free slot accepts a connection")
}
