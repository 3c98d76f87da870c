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
//! A room's topic goes the same way ([`Kind::Topic`]): set here, it is set (and shown, and
//! recorded as an [`Event::TopicSet`](crate::Event::TopicSet)) only when it comes back in its
//! place, so that every server ends with the same topic.
//!
//! A runner that cannot relay a line (the other servers are out of reach) may hand it back
//! itself, numbered in an order of its own: it is then shown here only. A topic it cannot
//! relay it refuses instead, with
//! [`Server::handle_relay_failed`](crate::Server::handle_relay_failed), which tells its setter:
//! a topic set on one server alone would leave the servers disagreeing on it for good.
//!
//! ```
//! use chat_core::relay::{Incoming, Kind, Origin, Target};
//! use chat_core::{Admission, Config, Instant, Output, Server};
//! use core::time::Duration;
//!
//! let config = Config::default()
//!     .with_colour(false)
//!     .with_greeting_delay(Duration::ZERO)
//!     .with_relayed_lines(true);
//! let mut server: Server<chat_core::Inline<4>> = Server::new(config, Instant::ZERO);
//! let now = Instant::from_millis(1);
//! let Admission::Accepted(alice) = server.handle_connect(now).unwrap() else { panic!() };
//! while server.poll_output().is_some() {}
//! let _ = server.handle_input(now, alice, b"hello\n").unwrap();
//! let mut relayed = Vec::new();
//! while let Some(output) = server.poll_output() {
//!     assert!(!matches!(output, Output::Send { .. }), "shown to nobody yet");
//!     if let Output::Relay(line) = output {
//!         assert_eq!(line.to, Target::Room("#lobby"));
//!         relayed.push((line.nick.to_owned(), line.text.to_owned()));
//!     }
//! }
//! assert_eq!(relayed, [("anonymous-1".to_owned(), "hello".to_owned())]);
//!
//! // Another server's line, number 7 of the lobby's order, for the people here.
//! let line = Incoming {
//!     to: Target::Room("#lobby"),
//!     nick: "bob",
//!     origin: Origin::Node("b"),
//!     kind: Kind::Said(chat_core::LineKind::Line),
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

pub use crate::state::roster::MAX_NODE_NAME_BYTES;

/// Where a relayed line goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// A room, by name: its members on every server.
    Room(&'a str),
    /// One person, by nickname, on the server of this name.
    Person {
        /// Their nickname.
        nick: &'a str,
        /// Their server.
        node: &'a str,
    },
}

/// What a relayed message is: something said, or a room's new topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A line, action or notice, said in a room or to one person.
    Said(LineKind),
    /// A room's new topic, the message's text (empty clears it), at most
    /// [`MAX_TOPIC_BYTES`](crate::MAX_TOPIC_BYTES). It takes its place in the room's order
    /// as a line does, so that every server ends with the same topic whoever set one last.
    /// For a room only.
    Topic,
}

/// A line said here, for the runner to carry: from [`Output::Relay`](crate::Output::Relay).
///
/// A room line is shown to nobody yet: give it its place in the room's order and hand it back
/// with [`Server::handle_relayed`](crate::Server::handle_relayed) and
/// [`Origin::Here`]`(conn)`. A private message to someone on another server has been shown to
/// its sender already (an IRC client's `echo-message` copy): carry it to their server, whose
/// core takes it with `handle_relayed`; it needs no place in any order. A topic set here
/// ([`Kind::Topic`]) is relayed like a room line: it is set here too only when it comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outgoing<'a> {
    /// Who said it.
    pub conn: ConnectionId,
    /// Their name when they said it: a nickname, or `anonymous-N`.
    pub nick: &'a str,
    /// Where it goes; a room as it is spelt here.
    pub to: Target<'a>,
    /// Line, action or notice; or a topic.
    pub kind: Kind,
    /// What was said, or the topic: checked as every line is (valid UTF-8, no control
    /// characters).
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

/// A line for the people here, for [`Server::handle_relayed`](crate::Server::handle_relayed):
/// a room line in its place in the room's order, or a private message from someone on
/// another server.
///
/// The core checks it, as it checks what a client sends, since it may come from another
/// server: the room must be a valid room name, the nick a valid nickname or `anonymous-N`,
/// a server's name 1 to [`MAX_NODE_NAME_BYTES`] letters, digits, `-`, `_` and `.`, and the
/// text one line of at most [`MAX_LINE_BYTES`](crate::MAX_LINE_BYTES) without control
/// characters. Otherwise [`Error::Relayed`](crate::Error::Relayed) says why, and nothing is
/// shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming<'a> {
    /// The room, or the person here it is for (`node` is not checked: it is this server).
    pub to: Target<'a>,
    /// Who said it, as they were called then: shown by their entry here if they are listed
    /// (see [`Person`]), else as `nick!remote@NODE`.
    pub nick: &'a str,
    /// Where.
    pub origin: Origin<'a>,
    /// Line, action or notice; or a room's new topic.
    pub kind: Kind,
    /// What was said, or the topic.
    pub text: &'a str,
    /// A room line's (or topic's) number in the room's order (the [`Event::Said`](crate::Event::Said)
    /// `seq`); unused for a private message.
    pub seq: u64,
    /// When it was said.
    pub at: Instant,
}

/// Someone on another server, as that server sees them now, for
/// [`Server::handle_person`](crate::Server::handle_person): the people here see them come,
/// join and leave rooms and change their name as if they were here, and find them in every
/// listing. Hand over the whole of their state each time something of it changes; the core
/// works out what changed.
///
/// Only people with a nickname are listed on other servers: someone still `anonymous-N`
/// (whose number is only unique on their own server) is not, and is forgotten here if they
/// were known. Checked as [`Incoming`] is; the away message as a line's text, cut to 100
/// bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Person<'a> {
    /// Their server.
    pub node: &'a str,
    /// Their id on that server, which stays theirs for as long as they are connected there
    /// (whatever their name).
    pub id: u64,
    /// Their name.
    pub nick: &'a str,
    /// The rooms they are in (the first [`MAX_ROOMS_PER_PERSON`](crate::MAX_ROOMS_PER_PERSON)).
    pub rooms: &'a [&'a str],
    /// Their away message, if they are away.
    pub away: Option<&'a str>,
    /// The account they are identified as (as it was registered), if any: shown in `WHOIS`,
    /// told to IRC clients with `account-notify`, and used here to keep private messages
    /// under the right account.
    pub account: Option<&'a str>,
    /// Their status in the rooms where they have one that others see: operator (`@`) or
    /// voice (`+`), by room name (see [`Server::has_status`](crate::Server::has_status)). A
    /// change is shown here as a `MODE` line from their server; a mute is their server's to
    /// enforce, and is not listed.
    pub standing: &'a [(&'a str, Status)],
}

/// Whether a call that applies a change bit by bit has finished: each call does one part, so
/// that its output fits one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "with More, drain the output and call again with the same arguments"]
pub enum Applied {
    /// All done.
    Done,
    /// Drain [`Server::poll_output`](crate::Server::poll_output), then call again with the
    /// same arguments for the next part.
    More,
}

/// A server-wide ban set or lifted on another server, for
/// [`Server::handle_server_ban`](crate::Server::handle_server_ban): what that server's
/// [`Event::ServerBanned`](crate::Event::ServerBanned) or
/// [`Event::ServerUnbanned`](crate::Event::ServerUnbanned) said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerBanChange<'a> {
    /// A ban was set.
    Set {
        /// Who: `nick!user@host` with `*` and `?`, `$a:ACCOUNT`, an address or a network.
        mask: &'a str,
        /// Who set it.
        by: &'a str,
        /// When.
        at: Instant,
        /// When it lapses; `None`: when lifted.
        until: Option<Instant>,
        /// Why (cut to [`MAX_SERVER_BAN_REASON_BYTES`](crate::MAX_SERVER_BAN_REASON_BYTES)).
        reason: &'a str,
    },
    /// The ban on `mask` was lifted.
    Lifted {
        /// The ban's mask.
        mask: &'a str,
    },
}

/// A change to a room's order made on another server (a registered room's, or, while it has
/// people in it, an unregistered one's), for
/// [`Server::handle_room_change`](crate::Server::handle_room_change): what that server's
/// [`Event::RoomRegistered`](crate::Event::RoomRegistered),
/// [`Event::RoomModes`](crate::Event::RoomModes), [`Event::Banned`](crate::Event::Banned) or
/// [`Event::Unbanned`](crate::Event::Unbanned) said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomChange<'a> {
    /// The room was registered to `founder`'s account, or no longer (`None`).
    Registered {
        /// The room.
        room: &'a str,
        /// The founder's account.
        founder: Option<&'a str>,
    },
    /// The room's modes, all of them as they are now.
    Modes {
        /// The room.
        room: &'a str,
        /// The letters of the modes set without a value.
        modes: &'a str,
        /// Its key, if it has one.
        key: Option<&'a str>,
        /// The most people let in, if set.
        limit: Option<u32>,
    },
    /// A ban (or exception, as `list` says) set.
    Banned {
        /// The room.
        room: &'a str,
        /// Which list.
        list: crate::BanList,
        /// Who: `nick!user@host` with `*` and `?`, or `$a:ACCOUNT`.
        mask: &'a str,
        /// Who set it.
        by: &'a str,
        /// When.
        at: Instant,
        /// When it lapses; `None`: when lifted.
        until: Option<Instant>,
    },
    /// A ban (or exception, as `list` says) lifted.
    Unbanned {
        /// The room.
        room: &'a str,
        /// Which list.
        list: crate::BanList,
        /// The ban's mask.
        mask: &'a str,
    },
}

/// An operator's order about someone in a room, when several servers share one chat: a kick,
/// a status given or taken (operator, voice, mute), or an invitation. The core hands it out as
/// [`Output::Order`](crate::Output::Order) once it has carried it out here, whoever it is
/// about (someone here, or someone of another server it lists); the runner carries it to
/// every other server, whose core takes it with
/// [`Server::handle_order`](crate::Server::handle_order): the person's own server carries it
/// out for real (they leave the room, or may no longer talk), and every server shows it to its
/// members of the room, so that all of them see the same kick or `MODE` line rather than a
/// bare departure.
///
/// The server that gave it checked that its giver may give it; the others take that on trust,
/// as they take the room lines a server sends. An order about someone no longer in the room
/// (or gone), or an invitation of someone in it already, does nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order<'a> {
    /// The room, as spelt where the order was given.
    pub room: &'a str,
    /// The nickname of the person it is about.
    pub target: &'a str,
    /// Who gave it: a nickname, or `anonymous-N` of the giver's server.
    pub by: &'a str,
    /// What it is.
    pub action: Action<'a>,
}

/// What an [`Order`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action<'a> {
    /// Put them out of the room.
    Kick {
        /// Why, as the operator said (checked as a line's text is).
        reason: Option<&'a str>,
    },
    /// Give them `status` in the room (`on`), or take it.
    Status {
        /// Operator, voice or mute.
        status: Status,
        /// Given, or taken.
        on: bool,
        /// A mute's length (`None`: until taken back), at most
        /// [`MAX_MODERATION_DURATION`](crate::MAX_MODERATION_DURATION).
        duration: Option<core::time::Duration>,
    },
    /// Let them into the room though it is invite-only (`/invite`, IRC's `INVITE`): for the
    /// person's own server, which keeps the invitation; they are not in the room yet.
    Invite,
}

pub use crate::state::members::Status;

impl Order<'_> {
    /// Checks what the core does not take on trust, as
    /// [`Server::handle_order`](crate::Server::handle_order) does for an order from the server
    /// called `node`: the room's name, the names, a reason without control, bidi or invisible
    /// characters within a line's bound, and a mute's duration within bounds. For a runner to
    /// drop what the core would refuse before it keeps or passes it on.
    pub fn check_from(&self, node: &str) -> Result<(), Refused> {
        let reason = match self.action {
            Action::Kick { reason } => reason.unwrap_or_default(),
            Action::Invite => "",
            Action::Status { duration, .. } => {
                if duration.is_some_and(|duration| {
                    duration.is_zero() || duration > crate::MAX_MODERATION_DURATION
                }) {
                    return Err(Refused::Duration);
                }
                ""
            }
        };
        check_common(self.by, Some(node), reason)?;
        crate::state::roster::Nickname::new(self.target).map_err(|_| Refused::Nick)?;
        check_room(self.room)
    }
}

/// Why [`Server::handle_relayed`](crate::Server::handle_relayed) or
/// [`Server::handle_person`](crate::Server::handle_person) refused what it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// A room name is not valid.
    Room,
    /// The nick is neither a valid nickname nor `anonymous-N`.
    Nick,
    /// The server's name is empty, too long, or has characters other than letters, digits,
    /// `-`, `_` and `.`.
    Node,
    /// The text is too long, or has control characters.
    Text,
    /// The people of [`MAX_NODES`](crate::MAX_NODES) other servers are known here already.
    TooManyNodes,
    /// Someone else here goes by that name.
    NickInUse,
    /// The table of people has no room: people of other servers take at most half of it
    /// (the other half is for connections here), or every slot is taken.
    Full,
    /// A private message for someone not here, or one that claims to come from this server.
    UnknownPerson,
    /// A topic for a person rather than a room.
    TopicNotForRoom,
    /// A server ban whose mask is not a nickname mask, an account, an address or a network.
    BanMask,
    /// A person's account is not a valid account name (a nickname).
    Account,
    /// A room change that cannot be applied: a mode letter, key or ban mask that is not
    /// one, or a table here (registered rooms, bans) that is full.
    RoomChange,
    /// [`MAX_SERVER_BANS`](crate::MAX_SERVER_BANS) server bans are kept here already.
    BansFull,
    /// An order's duration is zero or longer than
    /// [`MAX_MODERATION_DURATION`](crate::MAX_MODERATION_DURATION).
    Duration,
}

impl core::fmt::Display for Refused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Room => "a room name is not valid",
            Self::Nick => "the nick is not a valid nickname or anonymous-N",
            Self::Node => "the server name is not valid",
            Self::Text => "the text is too long or has control characters",
            Self::TooManyNodes => "the people of too many other servers are known already",
            Self::NickInUse => "someone else here goes by that name",
            Self::Full => "the table of people has no room for more people of other servers",
            Self::UnknownPerson => "the person it is for is not here, or it names this server",
            Self::TopicNotForRoom => "a topic is for a room, not a person",
            Self::BanMask => "a server ban's mask is not a nickname mask, account or address",
            Self::Account => "the account is not a valid account name",
            Self::RoomChange => "a room change that is not valid or does not fit here",
            Self::BansFull => "the most server bans there can be are kept here already",
            Self::Duration => "a duration of zero or longer than the longest there can be",
        })
    }
}

/// Checks a server's name, a nick and a text from elsewhere.
fn check_common(nick: &str, node: Option<&str>, text: &str) -> Result<(), Refused> {
    if !is_speaker_name(nick) {
        return Err(Refused::Nick);
    }
    if node.is_some_and(|node| !is_node_name(node)) {
        return Err(Refused::Node);
    }
    // What a client here may not send (control, bidi and invisible characters) may not come
    // from elsewhere either.
    if text.len() > crate::MAX_LINE_BYTES || crate::dialect::text::first_unsafe_char(text).is_some()
    {
        return Err(Refused::Text);
    }
    Ok(())
}

fn check_room(name: &str) -> Result<(), Refused> {
    crate::state::rooms::RoomName::new(name)
        .map(drop)
        .map_err(|_| Refused::Room)
}

impl Person<'_> {
    /// Checks what the core does not take on trust.
    pub(crate) fn check(&self) -> Result<(), Refused> {
        check_common(self.nick, Some(self.node), self.away.unwrap_or_default())?;
        if let Some(account) = self.account
            && crate::state::roster::Nickname::new(account).is_err()
        {
            return Err(Refused::Account);
        }
        self.rooms.iter().try_for_each(|room| check_room(room))?;
        self.standing
            .iter()
            .try_for_each(|(room, _)| check_room(room))
    }
}

impl Incoming<'_> {
    /// Checks what the core does not take on trust, as
    /// [`Server::handle_relayed`](crate::Server::handle_relayed) does: names, a text without
    /// control, bidi or invisible characters within its bound, a topic for a room only. For a
    /// runner that keeps a line without handing it to the core (history filled from
    /// elsewhere), so that it keeps nothing the core would refuse.
    pub fn check(&self) -> Result<(), Refused> {
        let node = match self.origin {
            Origin::Here(_) => None,
            Origin::Node(node) => Some(node),
        };
        check_common(self.nick, node, self.text)?;
        if self.kind == Kind::Topic {
            let Target::Room(_) = self.to else {
                return Err(Refused::TopicNotForRoom);
            };
            if self.text.len() > crate::MAX_TOPIC_BYTES {
                return Err(Refused::Text);
            }
        }
        match self.to {
            Target::Room(room) => check_room(room),
            Target::Person { nick, .. } => crate::state::roster::Nickname::new(nick)
                .map(drop)
                .map_err(|_| Refused::Nick),
        }
    }
}

/// Whether `name` may name who said a line that comes from elsewhere: a valid nickname, or
/// `anonymous-N` spelt as this crate writes it. A runner can check with it what it sends, so
/// that the other servers' cores never refuse it.
pub fn is_speaker_name(name: &str) -> bool {
    crate::state::roster::Nickname::new(name).is_ok()
        || crate::state::roster::exact_anonymous_number(name).is_some()
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
    use std::format;
    use std::string::{String, ToString};
    use std::vec::Vec;

    use super::*;
    use crate::testing::{Driver, Relayed, Transcript};
    use crate::{Config, Error, Output};

    fn line<'a>(room: &'a str, nick: &'a str, node: &'a str, text: &'a str) -> Incoming<'a> {
        Incoming {
            to: Target::Room(room),
            nick,
            origin: Origin::Node(node),
            kind: Kind::Said(LineKind::Line),
            text,
            seq: 1,
            at: Instant::ZERO,
        }
    }

    #[test]
    fn what_comes_from_elsewhere_is_checked() {
        assert_eq!(line("#a", "bob", "b", "hi").check(), Ok(()));
        assert_eq!(line("#a", "anonymous-12", "b", "hi").check(), Ok(()));
        assert_eq!(line("a", "bob", "b", "hi").check(), Err(Refused::Room));
        assert_eq!(
            line("#a", "anonymous-012", "b", "hi").check(),
            Err(Refused::Nick)
        );
        assert_eq!(
            line("#a", "anonymous-", "b", "hi").check(),
            Err(Refused::Nick)
        );
        assert_eq!(line("#a", "b b", "b", "hi").check(), Err(Refused::Nick));
        assert_eq!(line("#a", "bob", "", "hi").check(), Err(Refused::Node));
        assert_eq!(line("#a", "bob", "b c", "hi").check(), Err(Refused::Node));
        assert_eq!(
            line("#a", "bob", "b", "\x1b[2J").check(),
            Err(Refused::Text)
        );
        assert_eq!(
            line("#a", "bob", "b", "a\r\nQUIT").check(),
            Err(Refused::Text)
        );
        let long = "x".repeat(crate::MAX_LINE_BYTES + 1);
        assert_eq!(line("#a", "bob", "b", &long).check(), Err(Refused::Text));
    }

    /// Two servers joined by a bus that numbers each room's lines, as Redis does.
    struct Pair {
        nodes: [Driver<16>; 2],
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
            let room = line.room().unwrap();
            let seq = self.seqs.entry(room.to_ascii_lowercase()).or_default();
            *seq += 1;
            for node in 0..2 {
                let origin = if node == from {
                    Origin::Here(line.conn)
                } else {
                    Origin::Node(NAMES[from])
                };
                let incoming = Incoming {
                    to: Target::Room(room),
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
            (one[0].conn, one[0].nick.as_str(), one[0].room()),
            (alice, "alice", Some("#lobby"))
        );
        assert_eq!(
            (two[0].kind, three[0].text.as_str()),
            (Kind::Said(LineKind::Action), "three")
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
            to: Target::Room("#lobby"),
            nick: "mallory",
            origin: Origin::Node("c"),
            kind: Kind::Said(LineKind::Line),
            text: "\x1b]0;pwned\x07",
            seq: 1,
            at: Instant::ZERO,
        };
        let mut sent = 0;
        let result = pair.nodes[1].hand_back(&bad, &mut |output| {
            sent += usize::from(matches!(output, Output::Send { .. } | Output::Event(_)));
        });
        assert_eq!(result, Err(Error::Relayed(Refused::Text)));
        assert_eq!(sent, 0);
        let long = "x".repeat(crate::MAX_LINE_BYTES + 1);
        let bad = Incoming { text: &long, ..bad };
        assert!(pair.nodes[1].hand_back(&bad, &mut |_| {}).is_err());
    }

    #[test]
    fn an_account_on_one_server_is_known_on_the_other() {
        use crate::account::AccountAnswer;
        let mut pair = Pair::new();
        let config = Config::default()
            .with_colour(false)
            .with_flood_limit(None)
            .with_relayed_lines(true)
            .with_accounts(true);
        pair.nodes = [(); 2].map(|()| Driver::new(config, Instant::from_millis(1_000)));
        let alice = pair.connect(0, "/nick alice\n/identify correct-horse\n");
        let mut request = pair.nodes[0].take_account_requests().remove(0);
        assert!(request.spell_as_registered("Alice"));
        let (heard, events) = (&mut pair.heard[0], &mut pair.events[0]);
        pair.nodes[0]
            .answer_account(&request, AccountAnswer::Done, &mut |output| {
                Pair::record(heard, events, output);
            })
            .unwrap();
        assert!(
            pair.events[0].contains(&"identified alice as Alice".to_string()),
            "{:?}",
            pair.events[0]
        );
        let ivy = pair.connect(1, "NICK ivy\r\nUSER i 0 * :I\r\n");
        pair.mirror(0, alice);
        assert_eq!(
            pair.nodes[1]
                .server()
                .account_of("alice")
                .map(|a| a.as_str()),
            Some("Alice")
        );
        pair.heard[1].clear();
        pair.say(1, ivy, "WHOIS alice\r\n");
        assert!(
            pair.heard[1]
                .lines_to(ivy)
                .iter()
                .any(|line| line.contains(" 330 ivy alice Alice ")),
            "{:?}",
            pair.heard[1].lines_to(ivy)
        );
        // Logged out there: no account here either.
        pair.say(0, alice, "/logout\n");
        pair.mirror(0, alice);
        assert_eq!(pair.nodes[1].server().account_of("alice"), None);
        // A person whose account is not a name is refused.
        let rooms = ["#lobby"];
        let bad = Person {
            node: "c",
            id: 9,
            nick: "mallory",
            rooms: &rooms,
            away: None,
            account: Some("not a name"),
            standing: &[],
        };
        let now = pair.nodes[1].now();
        assert_eq!(
            pair.nodes[1].server_mut().handle_person(now, &bad),
            Err(Error::Relayed(Refused::Account))
        );
    }

    impl Pair {
        /// Tells the other server what `conn`, on `from`, is now: as a runner would after
        /// each of its events.
        fn mirror(&mut self, from: usize, conn: ConnectionId) {
            let server = self.nodes[from].server();
            let nick = server.nickname(conn).map_or_else(
                || format!("anonymous-{}", conn.index() + 1),
                |nick| nick.as_str().to_string(),
            );
            let rooms: Vec<String> = server
                .rooms_of(conn)
                .map(|room| room.as_str().to_string())
                .collect();
            let away = server.away(conn).map(str::to_string);
            let account = server.account(conn).map(|name| name.as_str().to_string());
            let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
            let standing: Vec<(&str, Status)> = rooms
                .iter()
                .flat_map(|&room| {
                    [Status::Operator, Status::Voice]
                        .into_iter()
                        .filter(move |&status| server.has_status(conn, room, status))
                        .map(move |status| (room, status))
                })
                .collect();
            let person = Person {
                node: NAMES[from],
                id: conn.to_bits(),
                nick: &nick,
                rooms: &rooms,
                away: away.as_deref(),
                account: account.as_deref(),
                standing: &standing,
            };
            let other = 1 - from;
            for _ in 0..100 {
                let now = self.nodes[other].now();
                let applied = self.nodes[other]
                    .server_mut()
                    .handle_person(now, &person)
                    .unwrap();
                let (heard, events) = (&mut self.heard[other], &mut self.events[other]);
                self.nodes[other].drain(&mut |output| Self::record(heard, events, output));
                if applied == Applied::Done {
                    return;
                }
            }
            panic!("a person's changes never ended");
        }

        fn gone(&mut self, from: usize, conn: ConnectionId, reason: &str) {
            let other = 1 - from;
            let now = self.nodes[other].now();
            self.nodes[other]
                .server_mut()
                .handle_person_gone(now, NAMES[from], conn.to_bits(), reason)
                .unwrap();
            let (heard, events) = (&mut self.heard[other], &mut self.events[other]);
            self.nodes[other].drain(&mut |output| Self::record(heard, events, output));
        }

        /// Hands a private message said on `from` to the other server.
        fn carry(&mut self, from: usize, line: &Relayed) -> Result<(), Error> {
            let crate::testing::RelayedTo::Person { nick, node } = &line.to else {
                panic!("not a private message: {line:?}");
            };
            let other = 1 - from;
            assert_eq!(node, NAMES[other]);
            let incoming = Incoming {
                to: Target::Person { nick, node },
                nick: &line.nick,
                origin: Origin::Node(NAMES[from]),
                kind: line.kind,
                text: &line.text,
                seq: 0,
                at: line.at,
            };
            let (heard, events) = (&mut self.heard[other], &mut self.events[other]);
            self.nodes[other]
                .hand_back(&incoming, &mut |output| Self::record(heard, events, output))
        }
    }

    impl Pair {
        /// Hands the orders given on `from` to the other server, as a runner would.
        fn pass_orders(&mut self, from: usize) -> Vec<crate::testing::GivenOrder> {
            let orders = self.nodes[from].take_orders();
            let other = 1 - from;
            for order in &orders {
                let (heard, events) = (&mut self.heard[other], &mut self.events[other]);
                self.nodes[other]
                    .obey(NAMES[from], &order.order(), &mut |output| {
                        Self::record(heard, events, output);
                    })
                    .unwrap();
            }
            orders
        }
    }

    #[test]
    fn an_operators_kick_mute_op_or_invite_of_someone_elsewhere_is_carried_out_on_their_server() {
        let mut pair = Pair::new();
        let alice = pair.connect(0, "/nick alice\n/join #den\n");
        let carol = pair.connect(0, "/nick carol\n/join #den\n");
        let bob = pair.connect(1, "/nick bob\n/join #den\n");
        let dave = pair.connect(1, "NICK dave\r\nUSER d 0 * :D\r\nJOIN #den\r\n");
        for (node, conn) in [(0, alice), (0, carol), (1, bob), (1, dave)] {
            pair.mirror(node, conn);
        }
        // Alice's standing came with her: an operator of #den on bob's server too.
        let names = pair.say(1, dave, "NAMES #den\r\n");
        assert!(names.is_empty());
        let names = pair.heard[1].take(dave);
        assert!(
            names
                .iter()
                .any(|line| line.contains(" 353 ") && line.contains("@alice")),
            "{names:?}"
        );
        pair.clear();

        // Alice (the room's first, an operator on her server) puts bob out: shown at once on
        // her server, and carried out on his.
        pair.say(0, alice, "/kick bob too loud\n");
        assert_eq!(
            pair.heard[0].take(carol),
            ["*** bob was put out of #den by alice (too loud)"]
        );
        let orders = pair.pass_orders(0);
        assert_eq!(orders.len(), 1, "{orders:?}");
        assert_eq!(
            (orders[0].target.as_str(), orders[0].by.as_str()),
            ("bob", "alice")
        );
        assert_eq!(
            pair.heard[1].take(bob),
            ["*** You were put out of #den by alice (too loud)"]
        );
        assert_eq!(
            pair.heard[1].take(dave),
            [":alice!remote@a KICK #den bob :too loud"]
        );
        let bob_rooms: Vec<String> = pair.nodes[1]
            .server()
            .rooms_of(bob)
            .map(|room| room.as_str().to_string())
            .collect();
        assert!(
            !bob_rooms.iter().any(|room| room == "#den"),
            "{bob_rooms:?}"
        );
        // His server says where he is now: he was out of the room on hers already, so no
        // departure is shown twice.
        pair.mirror(1, bob);
        assert_eq!(pair.heard[0].take(carol), Vec::<String>::new());

        // A mute for five minutes: dave may not talk in the room on his own server.
        pair.say(0, alice, "/mute dave 5m\n");
        pair.pass_orders(0);
        assert_eq!(
            pair.heard[1].take(dave),
            [":chat.local NOTICE #den :*** alice muted dave for 5m"]
        );
        let said = pair.say(1, dave, "PRIVMSG #den :hello?\r\n");
        assert!(said.is_empty(), "a muted line is not relayed: {said:?}");
        assert_eq!(
            pair.heard[1].take(dave),
            [":chat.local 404 dave #den :Cannot send to channel (you are muted)"]
        );

        // Made an operator: he now keeps order on his server, which he could not before.
        pair.say(1, dave, "MODE #den +m\r\n");
        let refused = pair.heard[1].take(dave);
        assert!(refused[0].contains(" 482 dave #den "), "{refused:?}");
        pair.say(0, alice, "/op dave\n");
        pair.pass_orders(0);
        assert_eq!(
            pair.heard[1].take(dave),
            [":alice!remote@a MODE #den +o dave"]
        );
        pair.say(1, dave, "MODE #den +m\r\n");
        assert_eq!(pair.heard[1].take(dave), [":dave!~d@hidden MODE #den +m"]);

        // Dave makes the room invite-only on his server; bob, out since his kick, is let in
        // there by alice's invitation from hers.
        pair.say(1, dave, "MODE #den +i\r\n");
        pair.say(1, bob, "/join #den\n");
        let refused = pair.heard[1].take(bob);
        assert!(
            refused.iter().any(|line| line.contains("invite")),
            "{refused:?}"
        );
        pair.say(0, alice, "/invite bob\n");
        assert_eq!(
            pair.heard[0].take(alice).last().map(String::as_str),
            Some("*** You invited bob into #den.")
        );
        let orders = pair.pass_orders(0);
        assert_eq!(orders[0].action, crate::testing::GivenAction::Invite);
        assert_eq!(
            pair.heard[1].take(bob),
            ["*** alice invites you into #den: /join #den"]
        );
        pair.say(1, bob, "/join #den\n");
        let joined = pair.heard[1].take(bob);
        assert!(
            joined
                .iter()
                .any(|line| line.contains("You are now talking in #den")),
            "{joined:?}"
        );

        // What does not hold is refused: a room or name that is not one, a mute too long.
        let order = Order {
            room: "den",
            target: "dave",
            by: "alice",
            action: Action::Kick { reason: None },
        };
        let now = pair.nodes[1].now();
        let server = pair.nodes[1].server_mut();
        assert_eq!(
            server.handle_order(now, "a", &order),
            Err(Error::Relayed(Refused::Room))
        );
        let order = Order {
            room: "#den",
            action: Action::Status {
                status: Status::Muted,
                on: true,
                duration: Some(crate::MAX_MODERATION_DURATION * 2),
            },
            ..order
        };
        assert_eq!(
            server.handle_order(now, "a", &order),
            Err(Error::Relayed(Refused::Duration))
        );
        // About someone not in the room: nothing happens.
        let order = Order {
            target: "carol",
            action: Action::Kick { reason: None },
            ..order
        };
        assert_eq!(server.handle_order(now, "a", &order), Ok(()));
    }

    #[test]
    fn people_on_the_other_server_are_listed_and_seen_to_come_and_go() {
        let mut pair = Pair::new();
        let alice = pair.connect(0, "/nick alice\n");
        let bob = pair.connect(1, "/nick bob\n");
        let dave = pair.connect(1, "NICK dave\r\nUSER d 0 * :D\r\n");
        pair.clear();

        pair.mirror(0, alice);
        assert_eq!(
            pair.heard[1].lines_to(bob),
            ["*** alice joined #lobby (3 here)"]
        );
        assert_eq!(
            pair.heard[1].lines_to(dave),
            [":alice!remote@a JOIN #lobby"]
        );
        assert!(
            pair.events[1].is_empty(),
            "news on its own server: {:?}",
            pair.events[1]
        );
        assert_eq!(
            pair.nodes[1].server().online(),
            2,
            "a person, not a connection"
        );
        assert_eq!(pair.nodes[1].server().people_elsewhere(), 1);
        assert_eq!(pair.nodes[1].server().members("#lobby").count(), 2);
        pair.clear();

        // Listed, and their name taken.
        pair.say(1, bob, "/list\n/nick Alice\n");
        let listed = pair.heard[1].take(bob);
        assert!(
            listed.iter().any(|line| line.contains("alice")),
            "{listed:?}"
        );
        assert!(listed.last().unwrap().contains("taken"), "{listed:?}");
        pair.say(1, dave, "NAMES #lobby\r\nWHOIS alice\r\n");
        let names = pair.heard[1].take(dave);
        assert_eq!(names[0], ":chat.local 353 dave = #lobby :bob dave alice");
        assert!(
            names
                .iter()
                .any(|line| line.contains(" 311 dave alice remote a ")),
            "{names:?}"
        );

        // A rename and a join, a change at a time; the rooms they left, too.
        pair.say(0, alice, "/nick alicia\n/join #rust\n/away lunch\n");
        pair.mirror(0, alice);
        assert_eq!(
            pair.heard[1].take(bob),
            ["*** alice is now known as alicia"]
        );
        assert_eq!(pair.heard[1].take(dave), [":alice!remote@a NICK :alicia"]);
        pair.say(1, bob, "/join #rust\n");
        let joined = pair.heard[1].take(bob);
        assert!(
            joined.iter().any(|line| line.contains("alicia")),
            "{joined:?}"
        );
        pair.say(0, alice, "/part #lobby\n");
        pair.mirror(0, alice);
        assert_eq!(pair.heard[1].take(dave), [":alicia!remote@a PART #lobby"]);

        // Private messages, both ways.
        pair.mirror(1, bob);
        pair.clear();
        let sent = pair.say(1, bob, "/msg alicia psst\n");
        assert_eq!(sent.len(), 1);
        assert!(
            pair.heard[1]
                .lines_to(bob)
                .iter()
                .all(|line| !line.contains("error"))
        );
        pair.carry(1, &sent[0]).unwrap();
        assert_eq!(pair.heard[0].lines_to(alice), ["[private] bob: psst"]);
        let sent = pair.say(0, alice, "/msg bob hi\n");
        pair.carry(0, &sent[0]).unwrap();
        assert_eq!(
            pair.heard[1].lines_to(bob),
            ["[private] to alicia: psst", "[private] alicia: hi"]
        );

        // Gone: told with the reason, and the name free.
        pair.clear();
        pair.gone(0, alice, "quit: bye");
        // Only bob shares a room (#rust) with her now.
        assert!(pair.heard[1].lines_to(dave).is_empty());
        let told = pair.heard[1].take(bob);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].contains("alicia") && told[0].contains("quit: bye"),
            "{told:?}"
        );
        assert_eq!(pair.nodes[1].server().people_elsewhere(), 0);
        pair.say(1, bob, "/nick alicia\n");
        assert!(
            pair.heard[1]
                .lines_to(bob)
                .last()
                .unwrap()
                .contains("now known as alicia")
        );
        // Nothing was ever sent to anyone but the connections there.
        for conn in pair.heard[1].recipients() {
            assert!(conn == bob || conn == dave, "{conn:?}");
        }
    }

    #[test]
    fn a_lost_server_takes_its_people_a_step_at_a_time() {
        let mut pair = Pair::new();
        let mut theirs = Vec::new();
        for n in 0..5 {
            theirs.push(pair.connect(0, &format!("/nick p{n}\n")));
        }
        let dave = pair.connect(1, "NICK dave\r\nUSER d 0 * :D\r\n");
        for &conn in &theirs {
            pair.mirror(0, conn);
        }
        pair.clear();
        let mut steps = 0;
        loop {
            steps += 1;
            let now = pair.nodes[1].now();
            let applied = pair.nodes[1]
                .server_mut()
                .handle_node_lost(now, "a", "node a was lost")
                .unwrap();
            let (heard, events) = (&mut pair.heard[1], &mut pair.events[1]);
            pair.nodes[1].drain(&mut |output| Pair::record(heard, events, output));
            if applied == Applied::Done {
                break;
            }
        }
        assert_eq!(steps, 5);
        assert_eq!(pair.heard[1].lines_to(dave).len(), 5);
        assert!(pair.heard[1].lines_to(dave)[0].ends_with(" QUIT :node a was lost"));
        assert_eq!(pair.nodes[1].server().people_elsewhere(), 0);
    }

    #[test]
    fn a_person_from_elsewhere_is_checked_and_cannot_take_a_name_in_use() {
        // Room for a person of every server the table can hold, and bob.
        let config = Config::default()
            .with_colour(false)
            .with_greeting_delay(Duration::ZERO)
            .with_relayed_lines(true);
        let mut driver: Driver<40> = Driver::new(config, Instant::ZERO);
        let bob = driver.connect(&mut |_| {}).unwrap();
        driver.input(bob, b"/nick bob\n", &mut |_| {});
        let person = |nick, rooms| Person {
            node: "a",
            id: 1,
            nick,
            rooms,
            away: None,
            account: None,
            standing: &[],
        };
        let now = driver.now();
        let server = driver.server_mut();
        assert_eq!(
            server.handle_person(now, &person("BOB", &[])),
            Err(Error::Relayed(Refused::NickInUse))
        );
        assert_eq!(
            server.handle_person(now, &person("eve", &["#ok", "bad"])),
            Err(Error::Relayed(Refused::Room))
        );
        assert_eq!(
            server.handle_person(now, &person("eve\x07", &[])),
            Err(Error::Relayed(Refused::Nick))
        );
        // Servers lost free their places in the table of servers.
        for n in 0..2 * crate::MAX_NODES {
            let node = format!("n{n}");
            let person = Person {
                node: &node,
                ..person("eve", &[])
            };
            while server.handle_person(now, &person).unwrap() == Applied::More {
                while server.poll_output().is_some() {}
            }
            while server.handle_node_lost(now, &node, "lost").unwrap() == Applied::More {
                while server.poll_output().is_some() {}
            }
            while server.poll_output().is_some() {}
        }
        for n in 0..crate::MAX_NODES {
            let node = format!("m{n}");
            let nick = format!("m{n}");
            let person = Person {
                node: &node,
                nick: &nick,
                ..person("eve", &[])
            };
            let _ = server.handle_person(now, &person).unwrap();
            while server.poll_output().is_some() {}
        }
        let one_more = Person {
            node: "one-more",
            ..person("zed", &[])
        };
        assert_eq!(
            server.handle_person(now, &one_more),
            Err(Error::Relayed(Refused::TooManyNodes))
        );
        // An anonymous person is not listed.
        let anonymous = Person {
            node: "m0",
            id: 9,
            ..person("anonymous-4", &["#lobby"])
        };
        assert_eq!(server.handle_person(now, &anonymous), Ok(Applied::Done));
        assert_eq!(server.people_elsewhere(), crate::MAX_NODES);
        while server.poll_output().is_some() {}
    }

    #[test]
    fn a_room_notice_reaches_the_room_alone() {
        let mut pair = Pair::new();
        let alice = pair.connect(0, "/nick alice\n/join #rust\n");
        let bob = pair.connect(0, "/nick bob\n");
        let carol = pair.connect(0, "NICK carol\r\nUSER c 0 * :C\r\nJOIN #rust\r\n");
        pair.clear();
        let now = pair.nodes[0].now();
        pair.nodes[0]
            .server_mut()
            .handle_room_notice(now, "#RUST", "[3 messages missed]\x1b")
            .unwrap();
        let (heard, events) = (&mut pair.heard[0], &mut pair.events[0]);
        pair.nodes[0].drain(&mut |output| Pair::record(heard, events, output));
        assert_eq!(
            pair.heard[0].lines_to(alice),
            ["*** [#rust] [3 messages missed]^["]
        );
        assert_eq!(
            pair.heard[0].lines_to(carol),
            [":chat.local NOTICE #rust :*** [3 messages missed]^["]
        );
        assert!(pair.heard[0].lines_to(bob).is_empty());
    }

    #[test]
    fn people_of_other_servers_take_at_most_half_the_table() {
        let config = Config::default()
            .with_colour(false)
            .with_greeting_delay(Duration::ZERO)
            .with_relayed_lines(true);
        let mut driver: Driver<8> = Driver::new(config, Instant::ZERO);
        let now = driver.now();
        for n in 0..5_u64 {
            let nick = format!("p{n}");
            let person = Person {
                node: "a",
                id: n,
                nick: &nick,
                rooms: &[],
                away: None,
                account: None,
                standing: &[],
            };
            let result = driver.server_mut().handle_person(now, &person);
            while driver.server_mut().poll_output().is_some() {}
            if n < 4 {
                assert_eq!(result, Ok(Applied::More), "{n}");
            } else {
                assert_eq!(result, Err(Error::Relayed(Refused::Full)));
            }
        }
        // The other half is for connections here.
        for _ in 0..4 {
            assert!(driver.connect(&mut |_| {}).is_some());
        }
        assert!(driver.connect(&mut |_| {}).is_none(), "full");
    }

    #[test]
    fn a_private_message_from_someone_not_listed_here_still_arrives() {
        let mut pair = Pair::new();
        let bob = pair.connect(1, "/nick bob\n");
        let dave = pair.connect(1, "NICK dave\r\nUSER d 0 * :D\r\n");
        let alice = pair.connect(0, "/nick alice\n");
        pair.mirror(0, alice);
        pair.clear();
        for (to, text) in [("bob", "hi bob"), ("dave", "hi dave")] {
            let line = Incoming {
                to: Target::Person {
                    nick: to,
                    node: "b",
                },
                nick: "anonymous-7",
                origin: Origin::Node("a"),
                kind: Kind::Said(LineKind::Line),
                text,
                seq: 0,
                at: Instant::ZERO,
            };
            let (heard, events) = (&mut pair.heard[1], &mut pair.events[1]);
            pair.nodes[1]
                .hand_back(&line, &mut |output| Pair::record(heard, events, output))
                .unwrap();
        }
        // Each server numbers its own anonymous-N: text users are shown which server's.
        assert_eq!(
            pair.heard[1].lines_to(bob),
            ["[private] anonymous-7@a: hi bob"]
        );
        assert_eq!(
            pair.heard[1].lines_to(dave),
            [":anonymous-7!remote@a PRIVMSG dave :hi dave"]
        );
        assert!(pair.events[1].is_empty(), "news on its own server");
        // In a room too; one of this server's own anonymous-N, gone since, is not marked.
        let said = |nick: &'static str, origin| Incoming {
            nick,
            origin,
            seq: 0,
            ..line("#lobby", nick, "a", "hello all")
        };
        let (heard, events) = (&mut pair.heard[1], &mut pair.events[1]);
        for line in [
            said("anonymous-7", Origin::Node("a")),
            said("anonymous-9", Origin::Here(bob)),
        ] {
            pair.nodes[1]
                .hand_back(&line, &mut |output| Pair::record(heard, events, output))
                .unwrap();
        }
        assert_eq!(
            pair.heard[1].lines_to(bob)[1..],
            ["anonymous-7@a: hello all", "anonymous-9: hello all"]
        );
        // WHO by name finds people of other servers too.
        pair.clear();
        pair.say(1, dave, "WHO alice\r\n");
        let who = pair.heard[1].take(dave);
        assert!(
            who[0].contains(" 352 dave * remote a a alice H "),
            "{who:?}"
        );
    }

    #[test]
    fn a_topic_takes_its_place_in_the_rooms_order_on_every_server() {
        let mut pair = Pair::new();
        let alice = pair.connect(0, "/nick alice\n");
        let dave = pair.connect(1, "NICK dave\r\nUSER d 0 * :D\r\nJOIN #lobby\r\n");
        let bob = pair.connect(1, "/nick bob\n");
        pair.clear();

        // Both set a topic at once: neither is set anywhere until the bus orders them.
        let first = pair.say(0, alice, "/topic from alice\n");
        let second = pair.say(1, dave, "TOPIC #lobby :from dave\r\n");
        assert_eq!(first.len(), 1);
        assert_eq!(
            (first[0].kind, first[0].text.as_str(), first[0].room()),
            (Kind::Topic, "from alice", Some("#lobby"))
        );
        assert_eq!(second[0].kind, Kind::Topic);
        assert_eq!(pair.heard[0].recipients().count(), 0);
        assert_eq!(pair.heard[1].recipients().count(), 0);
        assert!(pair.events[0].is_empty() && pair.events[1].is_empty());

        // The bus puts dave's first: alice's is the topic on both servers.
        pair.order(1, &second[0]);
        pair.order(0, &first[0]);
        for node in 0..2 {
            let topics: Vec<&String> = pair.events[node]
                .iter()
                .filter(|event| event.starts_with("topic "))
                .collect();
            assert_eq!(
                topics,
                [
                    "topic dave #lobby \"from dave\" at 1500",
                    "topic alice #lobby \"from alice\" at 1500"
                ],
                "server {node}: every server keeps both, in the one order"
            );
        }
        assert_eq!(
            pair.heard[0].lines_to(alice),
            [
                "*** dave set the topic of #lobby: from dave",
                "*** alice set the topic of #lobby: from alice"
            ]
        );
        assert_eq!(
            pair.heard[1].lines_to(dave),
            [
                ":dave!~d@hidden TOPIC #lobby :from dave",
                ":alice!remote@a TOPIC #lobby :from alice"
            ]
        );
        assert_eq!(pair.heard[1].lines_to(bob).len(), 2);
        pair.clear();
        let _ = pair.say(1, dave, "TOPIC #lobby\r\n");
        let asked = pair.heard[1].take(dave);
        assert!(
            asked[0].ends_with(" 332 dave #lobby :from alice"),
            "{asked:?}"
        );
        assert!(asked[1].contains(" 333 dave #lobby alice "), "{asked:?}");

        // A topic for a room nobody on server 1 is in: the room is made there with it, and
        // whoever joins it there later is shown it.
        let _ = pair.say(0, alice, "/join #quiet\n");
        let quiet = pair.say(0, alice, "/topic hush\n");
        pair.order(0, &quiet[0]);
        pair.clear();
        let _ = pair.say(1, dave, "JOIN #quiet\r\n");
        let joined = pair.heard[1].take(dave);
        assert!(
            joined
                .iter()
                .any(|line| line.ends_with(" 332 dave #quiet :hush")),
            "{joined:?}"
        );

        // A cleared topic handed over twice (read back from where it was kept, say) is
        // announced once.
        pair.clear();
        let cleared = pair.say(0, alice, "/topic -\n");
        assert_eq!(
            (cleared[0].kind, cleared[0].text.as_str()),
            (Kind::Topic, "")
        );
        pair.order(0, &cleared[0]);
        pair.order(0, &cleared[0]);
        assert_eq!(
            pair.heard[0].take(alice),
            ["*** alice cleared the topic of #quiet"]
        );
        assert_eq!(pair.heard[1].take(dave).len(), 1);
        assert_eq!(
            pair.events[1]
                .iter()
                .filter(|event| event.starts_with("topic "))
                .count(),
            1
        );

        // CTCP's \x01, which IRC lets through in PRIVMSG, is refused in a topic, and said so.
        let ctcp = pair.say(1, dave, "TOPIC #lobby :\x01VERSION\x01\r\n");
        assert!(ctcp.is_empty());
        assert_eq!(
            pair.heard[1].take(dave),
            [
                ":chat.local NOTICE dave :*** error: your topic contains the control character ^A; \
              it was not set"
            ]
        );

        // A topic from elsewhere is checked as a line is, and is for a room only.
        let long = "x".repeat(crate::MAX_TOPIC_BYTES + 1);
        let mut bad = line("#lobby", "bob", "b", &long);
        bad.kind = Kind::Topic;
        assert_eq!(bad.check(), Err(Refused::Text));
        let mut private = line("#lobby", "bob", "b", "hi");
        private.kind = Kind::Topic;
        private.to = Target::Person {
            nick: "alice",
            node: "a",
        };
        assert_eq!(private.check(), Err(Refused::TopicNotForRoom));
    }

    #[test]
    fn the_sender_is_told_when_a_private_message_reached_no_server() {
        let mut pair = Pair::new();
        let alice = pair.connect(0, "/nick alice\n");
        let carol = pair.connect(0, "NICK carol\r\nUSER c 0 * :C\r\n");
        pair.clear();
        let fail = |pair: &mut Pair, conn, to: &str, reason: &str| {
            let now = pair.nodes[0].now();
            let to = Target::Person {
                nick: to,
                node: "b",
            };
            let kind = Kind::Said(LineKind::Line);
            let result = pair.nodes[0]
                .server_mut()
                .handle_relay_failed(now, conn, to, kind, reason);
            let heard = &mut pair.heard[0];
            pair.nodes[0].drain(&mut |output| heard.record(output));
            result
        };
        fail(&mut pair, alice, "bob", "their server could not be reached").unwrap();
        assert_eq!(
            pair.heard[0].take(alice),
            [
                "*** error: your private message to bob was not delivered: their server could not be reached"
            ]
        );
        fail(&mut pair, carol, "bob", "no server\x1b[2J heard it").unwrap();
        assert_eq!(
            pair.heard[0].take(carol),
            [
                ":chat.local NOTICE carol :*** error: your private message to bob was not delivered: no server^[[2J heard it"
            ]
        );
        // A topic that could not be put in the room's order is not set, and its setter is
        // told so.
        let now = pair.nodes[0].now();
        pair.nodes[0]
            .server_mut()
            .handle_relay_failed(
                now,
                alice,
                Target::Room("#lobby"),
                Kind::Topic,
                "the other servers cannot be reached just now",
            )
            .unwrap();
        let heard = &mut pair.heard[0];
        pair.nodes[0].drain(&mut |output| heard.record(output));
        assert_eq!(
            pair.heard[0].take(alice),
            [
                "*** error: your topic for #lobby was not set: the other servers cannot be reached just now"
            ]
        );
        pair.nodes[0].disconnect(alice, crate::DisconnectReason::Closed, &mut |_| {});
        assert_eq!(
            fail(&mut pair, alice, "bob", "gone"),
            Err(Error::UnknownConnection(alice))
        );
    }
}
