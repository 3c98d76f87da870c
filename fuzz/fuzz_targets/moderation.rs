//! Keeping order: sessions of the commands of room and server operators (kick, bans with
//! durations and accounts, mutes, modes with keys and limits, invitations, registered rooms,
//! server-wide bans by mask, account or network), with accounts answered and connections from
//! addresses, and operators' orders from another server, against a `Server<Inline<6>>`: the API
//! contract holds, and no output carries a control byte.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use chat_core::account::{AccountAnswer, Operators};
use chat_core::relay::{Action, Order, Status};
use chat_core::storage::Inline;
use chat_core::{
    Admission, Config, ConnectionId, DisconnectReason, Error, Instant, Output, Server,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[path = "plain.rs"]
mod plain;
use plain::check_plain;

/// The commands, in both dialects; each gets up to three fuzzed words after it.
const COMMANDS: &[&str] = &[
    "/kick",
    "/ban",
    "/unban",
    "/mute",
    "/unmute",
    "/op",
    "/deop",
    "/mode",
    "/invite",
    "/join",
    "/part",
    "/topic",
    "/register-room",
    "/unregister-room",
    "/serverban",
    "/serverunban",
    "/serverbans",
    "/identify",
    "/register",
    "/nick",
    "MODE #r",
    "JOIN",
    "INVITE",
    "KICK #r",
    "KLINE",
    "DLINE",
    "UNKLINE",
    "STATS",
    "OPER",
    "NICK",
    "PRIVMSG #r :",
];

/// Words the commands are given, besides fuzzed ones: masks, durations, modes, names.
const WORDS: &[&str] = &[
    "#r",
    "#lobby",
    "alice",
    "root",
    "$a:root",
    "$a:alice",
    "*!*@*",
    "a*!?@*",
    "10.0.0.0/8",
    "10.1.2.3",
    "::1",
    "2001:db8::/32",
    "30s",
    "1h",
    "52w",
    "0s",
    "+ikl",
    "-k",
    "+b",
    "+r",
    "-r",
    "+mtv",
    "+o",
    "key",
    "5",
    "0",
];

#[derive(Arbitrary, Debug)]
enum Word {
    Known(u8),
    Fuzzed(String),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// From 10.0.0.N (or, with `None`, from no known address).
    Connect(Option<u8>),
    Disconnect(u8),
    /// Registers as an IRC client.
    Register(u8),
    Command(u8, u8, Vec<Word>),
    /// Answers the oldest account request so: done, wrong password, or unavailable.
    Answer(u8),
    /// Advances the clock by this many seconds, then handles the timeout.
    Timeout(u16),
    /// An operator's order from another server (`Server::handle_order`).
    Order {
        room: Word,
        target: Word,
        by: Word,
        /// Kick, operator, voice, mute, invite.
        what: u8,
        on: bool,
        reason: Option<String>,
        seconds: Option<u32>,
    },
}

fuzz_target!(|ops: Vec<Op>| {
    let config = Config::default()
        .with_greeting_delay(Duration::ZERO)
        .with_colour(false)
        .with_flood_limit(None)
        .with_accounts(true);
    let mut server: Server<Inline<6>> = Server::new(config, Instant::ZERO);
    server.set_operators(Operators::new(["root"]).expect("a valid name"));
    let mut now = 0_u64;
    let mut ever: Vec<ConnectionId> = Vec::new();
    let mut live: Vec<ConnectionId> = Vec::new();
    let mut asked = Vec::new();
    for op in ops.into_iter().take(200) {
        let at = Instant::from_millis(now);
        let pick = |k: u8| ever.get(usize::from(k) % ever.len().max(1)).copied();
        let result = match op {
            Op::Connect(from) => {
                let admission = match from {
                    Some(last) => server
                        .handle_connect_from(at, IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))),
                    None => server.handle_connect(at),
                };
                admission.map(|admission| {
                    if let Admission::Accepted(conn) = admission {
                        assert!(!live.contains(&conn) && live.len() < 6);
                        ever.push(conn);
                        live.push(conn);
                    }
                })
            }
            Op::Disconnect(k) => match pick(k) {
                Some(conn) => server
                    .handle_disconnect(at, conn, DisconnectReason::Closed)
                    .map(|()| live.retain(|&c| c != conn)),
                None => continue,
            },
            Op::Register(k) => match pick(k) {
                Some(conn) => {
                    let line = format!("NICK i{k}\r\nUSER u 0 * :real name\r\n");
                    input(&mut server, at, conn, line.as_bytes(), &mut live, &mut asked)
                }
                None => continue,
            },
            Op::Command(k, command, words) => match pick(k) {
                Some(conn) => {
                    let mut line = COMMANDS[usize::from(command) % COMMANDS.len()].to_owned();
                    for word in words.iter().take(3) {
                        line.push(' ');
                        match word {
                            Word::Known(w) => line.push_str(WORDS[usize::from(*w) % WORDS.len()]),
                            Word::Fuzzed(text) => line.push_str(text),
                        }
                    }
                    line.push_str("\r\n");
                    input(&mut server, at, conn, line.as_bytes(), &mut live, &mut asked)
                }
                None => continue,
            },
            Op::Answer(how) => {
                if asked.is_empty() {
                    continue;
                }
                let request = asked.remove(0);
                let answer = match how % 3 {
                    0 => AccountAnswer::Done,
                    1 => AccountAnswer::WrongPassword,
                    _ => AccountAnswer::Unavailable,
                };
                match server.handle_account(at, &request, answer) {
                    // Its asker left, or it timed out: stale, and said so.
                    Err(Error::StaleAccount) => Ok(()),
                    other => other,
                }
            }
            Op::Timeout(seconds) => {
                now += u64::from(seconds) * 1000;
                server.handle_timeout(Instant::from_millis(now))
            }
            Op::Order {
                room,
                target,
                by,
                what,
                on,
                reason,
                seconds,
            } => {
                let word = |word: &Word| match word {
                    Word::Known(w) => WORDS[usize::from(*w) % WORDS.len()].to_owned(),
                    Word::Fuzzed(text) => text.clone(),
                };
                let (room, target, by) = (word(&room), word(&target), word(&by));
                let duration = seconds.map(|seconds| Duration::from_secs(u64::from(seconds)));
                let status = |status| Action::Status {
                    status,
                    on,
                    duration,
                };
                let action = match what % 5 {
                    0 => Action::Kick {
                        reason: reason.as_deref(),
                    },
                    1 => status(Status::Operator),
                    2 => status(Status::Voice),
                    3 => status(Status::Muted),
                    _ => Action::Invite,
                };
                let order = Order {
                    room: &room,
                    target: &target,
                    by: &by,
                    action,
                };
                match server.handle_order(at, "other-node", &order) {
                    // What another server sends is checked, and may be refused.
                    Err(Error::Relayed(_)) => Ok(()),
                    other => other,
                }
            }
        };
        match result {
            Ok(()) => {}
            Err(Error::UnknownConnection(conn)) => assert!(!live.contains(&conn)),
            Err(error) => panic!("{error:?}"),
        }
        drain(&mut server, &mut live, &mut asked);
        assert_eq!(server.online(), live.len());
    }
});

/// Feeds `bytes` from `conn` whole, a line and its parts at a time, draining after each.
fn input(
    server: &mut Server<Inline<6>>,
    at: Instant,
    conn: ConnectionId,
    mut bytes: &[u8],
    live: &mut Vec<ConnectionId>,
    asked: &mut Vec<chat_core::account::AccountRequest>,
) -> Result<(), Error> {
    while !bytes.is_empty() && live.contains(&conn) {
        let taken = server.handle_input(at, conn, bytes)?;
        drain(server, live, asked);
        let mut more = taken.more();
        while more && live.contains(&conn) {
            more = server.handle_more(at, conn)?.more();
            drain(server, live, asked);
        }
        if taken.bytes() == 0 {
            break;
        }
        bytes = &bytes[taken.bytes()..];
    }
    Ok(())
}

/// Carries out one step's outputs, checking each against the connections known to be live.
fn drain(
    server: &mut Server<Inline<6>>,
    live: &mut Vec<ConnectionId>,
    asked: &mut Vec<chat_core::account::AccountRequest>,
) {
    while let Some(output) = server.poll_output() {
        match output {
            Output::Send { to, bytes } => {
                check_plain(bytes);
                for conn in to {
                    assert!(live.contains(&conn), "sent to {conn:?}, not live");
                }
            }
            Output::Close { conn, .. } => live.retain(|&c| c != conn),
            Output::Account(request) => asked.push(request.clone()),
            _ => {}
        }
    }
}
