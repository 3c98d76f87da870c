//! What happened, said once and in no dialect: the changes that others can observe.
//!
//! Every step that changes what others see (someone joins, speaks, renames, leaves) produces
//! an [`Event`]. The core renders each event for the dialects present (plain text, JSON, IRC)
//! and hands the event itself to the runner as [`Output::Event`](crate::Output::Event), so a
//! runner can log it, store it or publish it to other nodes without parsing a terminal line.
//!
//! Events carry names, not table indices (indices are reused): the room's name, the person's
//! nickname (or `anonymous-N`), the text, and for lines the room's sequence number and the
//! time. They borrow from the step's output, so producing one allocates nothing.

use core::fmt;

use crate::state::roster::ConnectionId;
use crate::time::Instant;

/// Who a person is, as events name them apart from their nickname (which can change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PersonId {
    /// Someone connected to this server, known by their connection.
    Local(ConnectionId),
}

/// What kind of line was said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LineKind {
    /// An ordinary line: `alice: TEXT`.
    Line,
    /// An action, from `/me` or CTCP ACTION: `* alice TEXT`.
    Action,
    /// An IRC NOTICE: shown like a line, never answered automatically.
    Notice,
}

impl fmt::Display for LineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Line => "line",
            Self::Action => "action",
            Self::Notice => "notice",
        })
    }
}

pub use crate::state::rooms::BanList;

/// One observable change, from [`Server::poll_output`](crate::Server::poll_output) as
/// [`Output::Event`](crate::Output::Event), ahead of the lines that tell people of it.
///
/// Text has passed the core's checks (valid UTF-8, no control characters); names are valid
/// nicknames or `anonymous-N`, and valid room names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Someone became visible to others: a plain-text or JSON connection was welcomed, or an
    /// IRC client registered.
    Arrived {
        /// Who.
        person: PersonId,
        /// The name they go by.
        nick: &'a str,
    },
    /// Someone entered a room.
    Joined {
        /// Who.
        person: PersonId,
        /// The name they go by.
        nick: &'a str,
        /// The room.
        room: &'a str,
    },
    /// Someone left a room, and is still online.
    Parted {
        /// Who.
        person: PersonId,
        /// The name they go by.
        nick: &'a str,
        /// The room.
        room: &'a str,
        /// Why, if they said.
        reason: Option<&'a str>,
    },
    /// A line was said in a room.
    Said {
        /// Who said it, as they were called then.
        nick: &'a str,
        /// The room.
        room: &'a str,
        /// Line, action or notice.
        kind: LineKind,
        /// What was said.
        text: &'a str,
        /// The room's sequence number for this line: 1 for the first line said in the room,
        /// one more for each line after it, for the life of the room.
        seq: u64,
        /// When.
        at: Instant,
    },
    /// A private message from one person to another.
    Private {
        /// The sender, as they were called then.
        from: &'a str,
        /// The recipient, as they were called then.
        to: &'a str,
        /// Line, action or notice.
        kind: LineKind,
        /// What was said.
        text: &'a str,
        /// Its message id for IRCv3 clients, from the same numbering as room lines' `seq`: a
        /// store keeping private messages keeps it, so that history names it as it was sent.
        msgid: u64,
        /// When.
        at: Instant,
    },
    /// A room's topic was set (an empty topic clears it).
    TopicSet {
        /// Who set it.
        nick: &'a str,
        /// The room.
        room: &'a str,
        /// The new topic.
        topic: &'a str,
        /// When.
        at: Instant,
    },
    /// Someone took another name.
    Renamed {
        /// Who.
        person: PersonId,
        /// The name they went by.
        from: &'a str,
        /// The name they go by now.
        to: &'a str,
    },
    /// Someone went offline, leaving every room they were in.
    Departed {
        /// Who.
        person: PersonId,
        /// The name they went by.
        nick: &'a str,
        /// Why, as the others are told (`connection closed`, `quit: bye`, ...).
        reason: &'a str,
    },
    /// Someone marked themselves away (with a message) or back (`None`).
    Away {
        /// Who.
        person: PersonId,
        /// The name they go by.
        nick: &'a str,
        /// The away message; `None` when back.
        message: Option<&'a str>,
    },
    /// Someone identified as an account, or logged out of it (`account` `None`): people of
    /// other servers learn of it with the rest of the person (see [`relay::Person`]).
    ///
    /// [`relay::Person`]: crate::relay::Person
    Identified {
        /// Who.
        person: PersonId,
        /// The name they go by.
        nick: &'a str,
        /// The account, as registered; `None` when they logged out.
        account: Option<&'a str>,
    },
    /// A room came to be, for the first person to join it.
    RoomCreated {
        /// The room.
        room: &'a str,
    },
    /// A room went, when its last member left.
    RoomRemoved {
        /// The room.
        room: &'a str,
    },
    /// A room was registered to an account, its founder's, or unregistered (`None`). A
    /// registered room stays while empty; a store keeps it, its modes and bans.
    RoomRegistered {
        /// The room.
        room: &'a str,
        /// The account it is registered to.
        founder: Option<&'a str>,
    },
    /// A room's modes changed: all of them as they are now, for a store to keep.
    RoomModes {
        /// The room.
        room: &'a str,
        /// The letters of the modes set without a value (`i`, `m`, `n`, `s`, `t`), in that
        /// order. `n` is on in every new room: a store that kept modes before there was an `n`
        /// kept rooms that had it (chat-runner's store adds it when it migrates).
        modes: &'a str,
        /// Its key (`+k`), if it has one.
        key: Option<&'a str>,
        /// The most people let in (`+l`), if set.
        limit: Option<u32>,
    },
    /// Someone matching `mask` may not come into a room, from `at` until `until` (or until
    /// lifted); a ban set again with another duration comes again. Or, as `list` says, an
    /// exception to the bans or to invite-only mode for them.
    Banned {
        /// The room.
        room: &'a str,
        /// Which list: bans, ban exceptions or invite exceptions.
        list: BanList,
        /// Who: `nick!user@host` with `*` and `?`, or `$a:ACCOUNT`.
        mask: &'a str,
        /// Who set it.
        by: &'a str,
        /// When it was set.
        at: Instant,
        /// When it lapses; `None`: when lifted.
        until: Option<Instant>,
    },
    /// A ban (or exception, as `list` says) was lifted.
    Unbanned {
        /// The room.
        room: &'a str,
        /// Which list.
        list: BanList,
        /// The ban's mask.
        mask: &'a str,
    },
    /// Whoever matches `mask` may not use the server, from `at` until `until` (or until
    /// lifted); those online who match were put out.
    ServerBanned {
        /// Who: `nick!user@host` with `*` and `?`, `$a:ACCOUNT`, or an address or network
        /// (`192.0.2.7`, `198.51.100.0/24`, `2001:db8::/32`).
        mask: &'a str,
        /// Who set it.
        by: &'a str,
        /// When.
        at: Instant,
        /// When it lapses; `None`: when lifted.
        until: Option<Instant>,
        /// Why, as its setter said (perhaps empty).
        reason: &'a str,
    },
    /// A server-wide ban was lifted.
    ServerUnbanned {
        /// The ban's mask.
        mask: &'a str,
    },
}

/// One line for a log, with the text quoted: `said alice #rust line #4 "hi" at 1500` (times
/// in the core's milliseconds).
impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Arrived { nick, .. } => write!(f, "arrived {nick}"),
            Self::Joined { nick, room, .. } => write!(f, "joined {nick} {room}"),
            Self::Parted {
                nick, room, reason, ..
            } => match reason {
                Some(reason) => write!(f, "parted {nick} {room} {reason:?}"),
                None => write!(f, "parted {nick} {room}"),
            },
            Self::Said {
                nick,
                room,
                kind,
                text,
                seq,
                at,
            } => write!(
                f,
                "said {nick} {room} {kind} #{seq} {text:?} at {}",
                at.as_millis()
            ),
            Self::Private {
                from,
                to,
                kind,
                text,
                at,
                ..
            } => write!(
                f,
                "private {from} {to} {kind} {text:?} at {}",
                at.as_millis()
            ),
            Self::TopicSet {
                nick,
                room,
                topic,
                at,
            } => write!(f, "topic {nick} {room} {topic:?} at {}", at.as_millis()),
            Self::Renamed { from, to, .. } => write!(f, "renamed {from} {to}"),
            Self::Departed { nick, reason, .. } => write!(f, "departed {nick} {reason:?}"),
            Self::Away { nick, message, .. } => write!(f, "away {nick} {message:?}"),
            Self::Identified { nick, account, .. } => match account {
                Some(account) => write!(f, "identified {nick} as {account}"),
                None => write!(f, "logged out {nick}"),
            },
            Self::RoomCreated { room } => write!(f, "created {room}"),
            Self::RoomRemoved { room } => write!(f, "removed {room}"),
            Self::RoomRegistered { room, founder } => match founder {
                Some(founder) => write!(f, "registered {room} to {founder}"),
                None => write!(f, "unregistered {room}"),
            },
            Self::RoomModes {
                room,
                modes,
                key,
                limit,
            } => {
                write!(f, "modes {room} +{modes}")?;
                if let Some(key) = key {
                    write!(f, " key {key:?}")?;
                }
                match limit {
                    Some(limit) => write!(f, " limit {limit}"),
                    None => Ok(()),
                }
            }
            Self::Banned {
                room,
                list,
                mask,
                by,
                at,
                until,
            } => {
                match list {
                    BanList::Bans => write!(f, "banned {mask} from {room}")?,
                    list => write!(f, "{list} {mask} on {room}")?,
                }
                write!(f, " by {by} at {}", at.as_millis())?;
                match until {
                    Some(until) => write!(f, " until {}", until.as_millis()),
                    None => Ok(()),
                }
            }
            Self::Unbanned {
                room,
                list: BanList::Bans,
                mask,
            } => write!(f, "unbanned {mask} from {room}"),
            Self::Unbanned { room, list, mask } => write!(f, "lifted {list} {mask} on {room}"),
            Self::ServerBanned {
                mask,
                by,
                at,
                until,
                reason,
            } => {
                write!(f, "server-banned {mask} by {by} at {}", at.as_millis())?;
                if let Some(until) = until {
                    write!(f, " until {}", until.as_millis())?;
                }
                write!(f, " {reason:?}")
            }
            Self::ServerUnbanned { mask } => write!(f, "server-unbanned {mask}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::string::{String, ToString};
    use std::vec::Vec;

    use super::*;
    use crate::testing::Driver;
    use crate::{Config, Output};

    #[test]
    fn events_stay_small() {
        // Outputs carry events by value on every poll.
        assert!(size_of::<Event<'static>>() <= 80);
    }

    struct Chat {
        driver: Driver<4>,
    }

    impl Chat {
        fn new() -> Self {
            let config = Config::default()
                .with_colour(false)
                .with_flood_limit(None)
                .with_greeting_delay(Duration::ZERO);
            Self::with(config)
        }

        fn with(config: Config) -> Self {
            let mut driver = Driver::new(config, Instant::ZERO);
            driver.advance(Duration::from_millis(7), &mut |_| {});
            Self { driver }
        }

        fn connect(&mut self) -> (ConnectionId, Vec<String>) {
            let mut events = Vec::new();
            let conn = self
                .driver
                .connect(&mut |output| collect(&mut events, output));
            (conn.expect("connect"), events)
        }

        fn send(&mut self, conn: ConnectionId, lines: &str) -> Vec<String> {
            let mut events = Vec::new();
            let fed = self.driver.input(conn, lines.as_bytes(), &mut |output| {
                collect(&mut events, output);
            });
            assert!(!fed.held);
            events
        }
    }

    fn collect(events: &mut Vec<String>, output: Output<'_>) {
        if let Output::Event(event) = output {
            events.push(event.to_string());
        }
    }

    #[test]
    fn each_change_others_can_see_is_one_event() {
        let mut chat = Chat::new();
        let (alice, events) = chat.connect();
        assert_eq!(events, ["arrived anonymous-1", "joined anonymous-1 #lobby"]);
        let (bob, _) = chat.connect();
        assert_eq!(
            chat.send(alice, "/nick alice\n/join #Rust\nhello\n/me waves\n"),
            [
                "renamed anonymous-1 alice",
                "created #Rust",
                "joined alice #Rust",
                "said alice #Rust line #1 \"hello\" at 7",
                "said alice #Rust action #2 \"waves\" at 7",
            ]
        );
        // A reply to one person is no event: /list, /help, an error.
        assert!(chat.send(alice, "/list\n/help\n/join bad\n").is_empty());
        chat.driver.advance(Duration::from_millis(2), &mut |_| {});
        assert_eq!(
            chat.send(
                alice,
                "/topic things\n/msg anonymous-2 psst\n/part #rust bye\n"
            ),
            [
                "topic alice #Rust \"things\" at 9",
                "private alice anonymous-2 line \"psst\" at 9",
                "parted alice #Rust \"bye\"",
            ]
        );
        // A room with a topic stays when empty; without one, it goes. Line numbers go on
        // from the last line said anywhere, so a room that comes back numbers no line twice.
        assert_eq!(
            chat.send(bob, "/join #rust\nagain\n/topic\n"),
            [
                "joined anonymous-2 #Rust",
                "said anonymous-2 #Rust line #4 \"again\" at 9",
            ]
        );
        assert_eq!(
            chat.send(bob, "/topic -\n/part\n"),
            [
                "topic anonymous-2 #Rust \"\" at 9",
                "parted anonymous-2 #Rust",
                "removed #Rust",
            ]
        );
        assert_eq!(
            chat.send(bob, "/join #rust\n"),
            ["created #rust", "joined anonymous-2 #rust"]
        );
        assert_eq!(
            chat.send(bob, "/quit\n"),
            ["departed anonymous-2 \"quit\"", "removed #rust"]
        );
    }

    #[test]
    fn irc_clients_arrive_when_they_register_and_say_notices() {
        // With a greeting delay, as a runner has, an IRC client is never welcomed as text.
        let mut chat = Chat::with(Config::default().with_colour(false).with_flood_limit(None));
        let (ann, events) = chat.connect();
        assert!(events.is_empty(), "no welcome yet: it may be IRC");
        assert_eq!(
            chat.send(ann, "NICK ann\r\nUSER a 0 * :Ann\r\n"),
            ["arrived ann", "joined ann #lobby"]
        );
        assert_eq!(
            chat.send(ann, "NOTICE #lobby :hi all\r\nAWAY :lunch\r\nAWAY\r\n"),
            [
                "said ann #lobby notice #1 \"hi all\" at 7",
                "away ann Some(\"lunch\")",
                "away ann None",
            ]
        );
        assert_eq!(
            chat.send(ann, "QUIT :done\r\n"),
            ["departed ann \"quit: done\""]
        );
        // One that never registered was never seen: its going is no news.
        let (shy, _) = chat.connect();
        assert!(chat.send(shy, "NICK shy\r\nQUIT\r\n").is_empty());
    }
}
