//! Room lines in one order across servers: a decision the core hands to its runner.
//!
//! When several servers share one chat (the runner's cluster mode), a room's lines must be
//! shown in the same order on every server, and only something outside the core (a Redis
//! script, say) can give a line its place. With [`Config::relayed_lines`](crate::Config) on,
//! a line said here is shown to nobody at once: the core hands it to the runner as an
//! [`Outgoing`] ([`Output::Relay`](crate::Output::Relay)). The runner gives it its number in
//! the room's one order, sends it to the other servers, and hands it back, as every server
//! hands back the lines it hears, with
//! [`Server::handle_relayed`](crate::Server::handle_relayed) and an [`Incoming`]: the line is
//! then shown to this server's members of the room, in the order the runner hands lines back,
//! and comes out as an [`Event::Said`](crate::Event::Said) with the runner's number, for a
//! store to keep.
//!
//! What the speaker's own client sees follows the usual rules when the line comes back
//! ([`Origin::Here`]): an IRC client that asked for `echo-message` gets its copy then, in the
//! room's order. What a relayed line does not carry (yet): the tags an IRC client adds for
//! other clients, and a `labeled-response` label (a labeled line is acknowledged with `ACK`).
//!
//! A runner that cannot relay a line (the other servers are out of reach) may hand it back
//! itself, numbered in an order of its own: it is then shown here only.
//!
//! ```
//! use chat_core::relay::{Incoming, Origin};
//! use chat_core::{Admission, Config, Instant, Output, Server};
//! use core::time::Duration;
//!
//! let config = Config::default()
//!     .with_colour(false)
//!     .with_greeting_delay(Duration::ZERO)
//!     .with_relayed_lines(true);
//! let mut server: Server<4> = Server::new(config, Instant::ZERO);
//! let now = Instant::from_millis(1);
//! let Admission::Accepted(alice) = server.handle_connect(now).unwrap() else { panic!() };
//! while server.poll_output().is_some() {}
//! let _ = server.handle_input(now, alice, b"hello\n").unwrap();
//! let mut relayed = Vec::new();
//! while let Some(output) = server.poll_output() {
//!     assert!(!matches!(output, Output::Send { .. }), "shown to nobody yet");
//!     if let Output::Relay(line) = output {
//!         relayed.push((line.room.to_owned(), line.nick.to_owned(), line.text.to_owned()));
//!     }
//! }
//! assert_eq!(relayed, [("#lobby".to_owned(), "anonymous-1".to_owned(), "hello".to_owned())]);
//!
//! // Another server's line, number 7 of the lobby's order, for the people here.
//! let line = Incoming {
//!     room: "#lobby",
//!     nick: "bob",
//!     origin: Origin::Node("b"),
//!     kind: chat_core::LineKind::Line,
//!     text: "hi alice",
//!     seq: 7,
//!     at: now,
//! };
//! server.handle_relayed(now, &line).unwrap();
//! let mut shown = Vec::new();
//! while let Some(output) = server.poll_output() {
//!     if let Output::Send { bytes, .. } = output {
//!         shown.push(String::from_utf8_lossy(bytes).into_owned());
//!     }
//! }
//! assert_eq!(shown, ["bob: hi alice\r\n"]);
//! ```

use crate::event::LineKind;
use crate::state::roster::ConnectionId;
use crate::time::Instant;

/// A line said here, waiting for its place in its room's order: from
/// [`Output::Relay`](crate::Output::Relay). Hand it back with
/// [`Server::handle_relayed`](crate::Server::handle_relayed) and [`Origin::Here`]`(conn)`
/// once it has its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outgoing<'a> {
    /// Who said it.
    pub conn: ConnectionId,
    /// Their name when they said it: a nickname, or `anonymous-N`.
    pub nick: &'a str,
    /// The room, as it is spelt here.
    pub room: &'a str,
    /// Line, action or notice.
    pub kind: LineKind,
    /// What was said: checked as every line is (valid UTF-8, no control characters).
    pub text: &'a str,
    /// When.
    pub at: Instant,
}

/// Where a relayed line was said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    /// On this server, by this connection (from [`Outgoing::conn`]). If the connection has
    /// gone, or goes by another name now, the line is shown as from another server.
    Here(ConnectionId),
    /// On the server of this name (shown to IRC clients as the host of the speaker).
    Node(&'a str),
}

/// A line in its place in a room's order, for [`Server::handle_relayed`](crate::Server::handle_relayed).
///
/// The core checks it, as it checks what a client sends, since it may come from another
/// server: the room must be a valid room name, the nick a valid nickname or `anonymous-N`,
/// a node's name 1 to 32 letters, digits, `-`, `_` and `.`, and the text one line of at most
/// [`MAX_LINE_BYTES`](crate::MAX_LINE_BYTES) without control characters. Otherwise
/// [`Error::InvalidRelayed`](crate::Error::InvalidRelayed) says which, and nothing is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming<'a> {
    /// The room.
    pub room: &'a str,
    /// Who said it, as they were called then.
    pub nick: &'a str,
    /// Where.
    pub origin: Origin<'a>,
    /// Line, action or notice.
    pub kind: LineKind,
    /// What was said.
    pub text: &'a str,
    /// Its number in the room's order (the [`Event::Said`](crate::Event::Said) `seq`).
    pub seq: u64,
    /// When it was said.
    pub at: Instant,
}

/// The longest node name an [`Origin::Node`] may carry, in bytes.
pub const MAX_NODE_NAME_BYTES: usize = 32;

/// Why [`Server::handle_relayed`](crate::Server::handle_relayed) refused a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// The room name is not valid.
    Room,
    /// The nick is neither a valid nickname nor `anonymous-N`.
    Nick,
    /// The node name is empty, too long, or has characters other than letters, digits, `-`,
    /// `_` and `.`.
    Node,
    /// The text is too long, or has control characters.
    Text,
}

impl core::fmt::Display for Invalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Room => "the room name is not valid",
            Self::Nick => "the nick is not a valid nickname or anonymous-N",
            Self::Node => "the node name is not valid",
            Self::Text => "the text is too long or has control characters",
        })
    }
}

impl Incoming<'_> {
    /// Checks what the core does not take on trust.
    pub(crate) fn check(&self) -> Result<(), Invalid> {
        crate::state::rooms::RoomName::new(self.room).map_err(|_| Invalid::Room)?;
        if crate::state::roster::Nickname::new(self.nick).is_err() && !is_anonymous(self.nick) {
            return Err(Invalid::Nick);
        }
        if let Origin::Node(node) = self.origin
            && !is_node_name(node)
        {
            return Err(Invalid::Node);
        }
        if self.text.len() > crate::MAX_LINE_BYTES || self.text.chars().any(char::is_control) {
            return Err(Invalid::Text);
        }
        Ok(())
    }
}

/// `anonymous-N`, N a number without leading zero.
fn is_anonymous(name: &str) -> bool {
    name.strip_prefix(crate::state::roster::ANONYMOUS)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|number| {
            !number.is_empty()
                && number.len() <= 10
                && !number.starts_with('0')
                && number.bytes().all(|byte| byte.is_ascii_digit())
        })
}

fn is_node_name(name: &str) -> bool {
    (1..=MAX_NODE_NAME_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::collections::BTreeMap;
    use std::string::{String, ToString};
    use std::vec::Vec;

    use super::*;
    use crate::testing::{Driver, Relayed, Transcript};
    use crate::{Config, Error, Output};

    fn line<'a>(room: &'a str, nick: &'a str, node: &'a str, text: &'a str) -> Incoming<'a> {
        Incoming {
            room,
            nick,
            origin: Origin::Node(node),
            kind: LineKind::Line,
            text,
            seq: 1,
            at: Instant::ZERO,
        }
    }

    #[test]
    fn what_comes_from_elsewhere_is_checked() {
        assert_eq!(line("#a", "bob", "b", "hi").check(), Ok(()));
        assert_eq!(line("#a", "anonymous-12", "b", "hi").check(), Ok(()));
        assert_eq!(line("a", "bob", "b", "hi").check(), Err(Invalid::Room));
        assert_eq!(
            line("#a", "anonymous-012", "b", "hi").check(),
            Err(Invalid::Nick)
        );
        assert_eq!(
            line("#a", "anonymous-", "b", "hi").check(),
            Err(Invalid::Nick)
        );
        assert_eq!(line("#a", "b b", "b", "hi").check(), Err(Invalid::Nick));
        assert_eq!(line("#a", "bob", "", "hi").check(), Err(Invalid::Node));
        assert_eq!(line("#a", "bob", "b c", "hi").check(), Err(Invalid::Node));
        assert_eq!(
            line("#a", "bob", "b", "\x1b[2J").check(),
            Err(Invalid::Text)
        );
        assert_eq!(
            line("#a", "bob", "b", "a\r\nQUIT").check(),
            Err(Invalid::Text)
        );
        let long = "x".repeat(crate::MAX_LINE_BYTES + 1);
        assert_eq!(line("#a", "bob", "b", &long).check(), Err(Invalid::Text));
    }

    /// Two servers joined by a bus that numbers each room's lines, as Redis does.
    struct Pair {
        nodes: [Driver<8>; 2],
        heard: [Transcript; 2],
        events: [Vec<String>; 2],
        seqs: BTreeMap<String, u64>,
    }

    const NAMES: [&str; 2] = ["a", "b"];

    impl Pair {
        fn new() -> Self {
            let config = Config::default()
                .with_colour(false)
                .with_flood_limit(None)
                .with_relayed_lines(true);
            let node = || Driver::new(config, Instant::from_millis(1_000));
            Self {
                nodes: [node(), node()],
                heard: Default::default(),
                events: Default::default(),
                seqs: BTreeMap::new(),
            }
        }

        fn record(heard: &mut Transcript, events: &mut Vec<String>, output: Output<'_>) {
            if let Output::Event(event) = &output {
                events.push(event.to_string());
            }
            heard.record(output);
        }

        fn connect(&mut self, node: usize, lines: &str) -> ConnectionId {
            let (heard, events) = (&mut self.heard[node], &mut self.events[node]);
            let each = &mut |output: Output<'_>| Self::record(heard, events, output);
            let conn = self.nodes[node].connect(each).unwrap();
            if lines.starts_with('/') {
                // Past the greeting delay: welcomed as plain text.
                self.nodes[node].advance(Duration::from_millis(500), each);
            }
            self.nodes[node].input(conn, lines.as_bytes(), each);
            conn
        }

        fn say(&mut self, node: usize, conn: ConnectionId, lines: &str) -> Vec<Relayed> {
            let (heard, events) = (&mut self.heard[node], &mut self.events[node]);
            self.nodes[node].input(conn, lines.as_bytes(), &mut |output| {
                Self::record(heard, events, output);
            });
            self.nodes[node].take_relayed()
        }

        /// Numbers `line` (said on `from`) in its room and hands it to both servers.
        fn order(&mut self, from: usize, line: &Relayed) {
            let seq = self.seqs.entry(line.room.to_ascii_lowercase()).or_default();
            *seq += 1;
            for node in 0..2 {
                let origin = if node == from {
                    Origin::Here(line.conn)
                } else {
                    Origin::Node(NAMES[from])
                };
                let incoming = Incoming {
                    room: &line.room,
                    nick: &line.nick,
                    origin,
                    kind: line.kind,
                    text: &line.text,
                    seq: *seq,
                    at: line.at,
                };
                let (heard, events) = (&mut self.heard[node], &mut self.events[node]);
                self.nodes[node]
                    .hand_back(&incoming, &mut |output| Self::record(heard, events, output))
                    .unwrap();
            }
        }

        fn clear(&mut self) {
            self.heard = Default::default();
            self.events = Default::default();
        }
    }

    #[test]
    fn two_servers_show_a_rooms_lines_in_the_order_given() {
        let mut pair = Pair::new();
        let alice = pair.connect(0, "/nick alice\n");
        let carol = pair.connect(
            0,
            "CAP LS\r\nCAP REQ :echo-message server-time\r\nNICK carol\r\nUSER c 0 * :C\r\nCAP END\r\n",
        );
        let bob = pair.connect(1, "/nick bob\n");
        let dave = pair.connect(1, "NICK dave\r\nUSER d 0 * :D\r\n");
        pair.clear();

        // Said, and shown to nobody yet: not even an echo.
        let one = pair.say(0, alice, "one\n");
        let two = pair.say(1, bob, "/me two\n");
        let three = pair.say(0, carol, "PRIVMSG #lobby :three\r\n");
        assert_eq!(pair.heard[0].recipients().count(), 0);
        assert_eq!(pair.heard[1].recipients().count(), 0);
        assert!(pair.events[0].is_empty() && pair.events[1].is_empty());
        assert_eq!(one.len(), 1);
        assert_eq!(
            (one[0].conn, one[0].nick.as_str(), one[0].room.as_str()),
            (alice, "alice", "#lobby")
        );
        assert_eq!(
            (two[0].kind, three[0].text.as_str()),
            (LineKind::Action, "three")
        );

        // The bus orders them otherwise than they were said: both servers follow it.
        pair.order(1, &two[0]);
        pair.order(0, &three[0]);
        pair.order(0, &one[0]);
        assert_eq!(pair.heard[0].lines_to(alice), ["* bob two", "carol: three"]);
        assert_eq!(pair.heard[1].lines_to(bob), ["carol: three", "alice: one"]);
        let carol_saw = pair.heard[0].lines_to(carol);
        assert_eq!(carol_saw.len(), 3, "{carol_saw:?}");
        assert!(carol_saw[0].ends_with(":bob!remote@b PRIVMSG #lobby :\x01ACTION two\x01"));
        assert!(
            carol_saw[1].ends_with(" PRIVMSG #lobby :three"),
            "her echo, in its place"
        );
        assert!(carol_saw[2].ends_with(":alice!plain@hidden PRIVMSG #lobby :one"));
        assert_eq!(
            pair.heard[1].lines_to(dave),
            [
                ":bob!plain@hidden PRIVMSG #lobby :\x01ACTION two\x01",
                ":carol!remote@a PRIVMSG #lobby :three",
                ":alice!remote@a PRIVMSG #lobby :one",
            ]
        );
        // Each server's events carry the bus's numbers, for its store.
        for events in &pair.events {
            assert_eq!(
                events,
                &[
                    "said bob #lobby action #1 \"two\" at 1500",
                    "said carol #lobby line #2 \"three\" at 1500",
                    "said alice #lobby line #3 \"one\" at 1500",
                ]
            );
        }
    }

    #[test]
    fn a_line_that_comes_back_after_its_speaker_changed_keeps_its_name() {
        let mut pair = Pair::new();
        let alice = pair.connect(0, "/nick alice\n");
        let watcher = pair.connect(0, "/nick watcher\n");
        let said = pair.say(0, alice, "hi\n");
        pair.say(0, alice, "/nick alicia\n");
        pair.clear();
        pair.order(0, &said[0]);
        // Shown as said, and to alicia too: the line is no longer hers by name.
        assert_eq!(pair.heard[0].lines_to(watcher), ["alice: hi"]);
        assert_eq!(pair.heard[0].lines_to(alice), ["alice: hi"]);
    }

    #[test]
    fn lines_of_rooms_nobody_here_is_in_are_only_news() {
        let mut pair = Pair::new();
        let alice = pair.connect(0, "/nick alice\n/join #rust\n");
        let _bob = pair.connect(1, "/nick bob\n");
        let said = pair.say(0, alice, "anyone?\n");
        pair.clear();
        pair.order(0, &said[0]);
        assert_eq!(pair.heard[1].recipients().count(), 0);
        assert_eq!(
            pair.events[1],
            ["said alice #rust line #1 \"anyone?\" at 1500"]
        );
    }

    #[test]
    fn a_bad_line_from_elsewhere_is_refused_and_shows_nothing() {
        let mut pair = Pair::new();
        pair.connect(1, "/nick bob\n");
        pair.clear();
        let bad = Incoming {
            room: "#lobby",
            nick: "mallory",
            origin: Origin::Node("c"),
            kind: LineKind::Line,
            text: "\x1b]0;pwned\x07",
            seq: 1,
            at: Instant::ZERO,
        };
        let mut sent = 0;
        let result = pair.nodes[1].hand_back(&bad, &mut |output| {
            sent += usize::from(matches!(output, Output::Send { .. } | Output::Event(_)));
        });
        assert_eq!(result, Err(Error::InvalidRelayed(Invalid::Text)));
        assert_eq!(sent, 0);
        let long = "x".repeat(crate::MAX_LINE_BYTES + 1);
        let bad = Incoming { text: &long, ..bad };
        assert!(pair.nodes[1].hand_back(&bad, &mut |_| {}).is_err());
    }
}
