//! Whole sessions: connects, disconnects, input in chunks, timeouts and shutdown against a
//! `Server<chat_core::Inline<4>>`, checking the API contract and that no output carries a control byte.

#![no_main]

use std::time::Duration;

use chat_core::{
    Admission, Config, ConnectionId, DisconnectReason, Error, FloodLimit, Instant, Output, Server,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[path = "plain.rs"]
mod plain;
use plain::check_plain;

#[derive(Arbitrary, Debug)]
enum Op {
    Connect,
    /// Picks from every handle ever given out, live or not.
    Disconnect(u8),
    Input(u8, Vec<u8>),
    /// Registers as an IRC client (a first line of anything else makes it a plain one).
    Register(u8),
    /// Advances the clock by this many tens of milliseconds, then handles the timeout.
    Timeout(u16),
    Shutdown,
}

fuzz_target!(|ops: Vec<Op>| {
    // A greeting delay, so that both ways of settling the dialect are taken: by the first line
    // and by the timer.
    let config = Config::default()
        .with_greeting_delay(Duration::from_millis(100))
        .with_colour(false)
        .with_flood_limit(Some(FloodLimit {
            burst: 3,
            per_second: 2,
        }))
        .with_silence_timeout(Some(Duration::from_secs(5)));
    let mut server: Server<chat_core::Inline<4>> = Server::new(config, Instant::ZERO);
    let (mut now, mut shut_down) = (0_u64, false);
    let mut ever: Vec<ConnectionId> = Vec::new();
    let mut live: Vec<ConnectionId> = Vec::new();
    let mut more: Option<ConnectionId> = None;
    for op in ops {
        let at = Instant::from_millis(now);
        let pick = |k: u8| ever.get(usize::from(k) % ever.len().max(1)).copied();
        let result = match op {
            Op::Connect => server.handle_connect(at).map(|admission| {
                if let Admission::Accepted(conn) = admission {
                    assert!(!live.contains(&conn) && live.len() < 4);
                    ever.push(conn);
                    live.push(conn);
                } else {
                    assert_eq!(live.len(), 4);
                }
            }),
            Op::Disconnect(k) => match pick(k) {
                Some(conn) => server
                    .handle_disconnect(at, conn, DisconnectReason::Closed)
                    .map(|()| {
                        assert!(live.contains(&conn), "{conn:?} is not live");
                        live.retain(|&c| c != conn);
                    }),
                None => continue,
            },
            Op::Input(k, bytes) => match pick(k) {
                Some(conn) => server.handle_input(at, conn, &bytes).map(|taken| {
                    more = taken.more().then_some(conn);
                    let taken = taken.bytes();
                    assert!(live.contains(&conn), "{conn:?} is not live");
                    // Nothing taken from non-empty input: flood control holds it back.
                    assert!(taken <= bytes.len());
                }),
                None => continue,
            },
            Op::Register(k) => match pick(k) {
                Some(conn) => {
                    let line = format!("NICK f{k}\r\nUSER u 0 * :real name\r\n");
                    server.handle_input(at, conn, line.as_bytes()).map(|taken| {
                        assert!(live.contains(&conn), "{conn:?} is not live");
                        assert!(taken.bytes() <= line.len());
                    })
                }
                None => continue,
            },
            Op::Timeout(step) => {
                now += u64::from(step) * 10;
                server.handle_timeout(Instant::from_millis(now))
            }
            Op::Shutdown => server.handle_shutdown(at).map(|()| shut_down = true),
        };
        match result {
            Ok(()) => {}
            Err(Error::ShutDown) => assert!(shut_down),
            Err(Error::UnknownConnection(conn)) => assert!(!live.contains(&conn)),
            Err(error) => panic!("{error:?}"),
        }
        // Drain: that is the one contract. Then the rest of a line handled in parts.
        drain(&mut server, &mut live);
        while let Some(conn) = more.take().filter(|conn| live.contains(conn)) {
            let consumed = server.handle_more(at, conn).expect("live");
            assert_eq!(consumed.bytes(), 0, "a part of a line took bytes");
            more = consumed.more().then_some(conn);
            drain(&mut server, &mut live);
        }
        if !shut_down {
            assert_eq!(server.online(), live.len());
        }
    }
});

/// Carries out one step's outputs, checking each against the connections known to be live.
fn drain(server: &mut Server<chat_core::Inline<4>>, live: &mut Vec<ConnectionId>) {
    while let Some(output) = server.poll_output() {
        match output {
            Output::Send { to, bytes } => {
                check_plain(bytes);
                for conn in to {
                    assert!(live.contains(&conn), "sent to {conn:?}, not live");
                }
            }
            Output::Close { conn, .. } => live.retain(|&c| c != conn),
            Output::Resume { conn } => assert!(live.contains(&conn), "resumed {conn:?}"),
            _ => {}
        }
    }
}
