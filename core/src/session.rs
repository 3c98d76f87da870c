//! What a person can do once connected: the handling of one line from one connection, and of
//! arrivals and departures, as seen by everyone else.

use core::fmt::{self, Write};
use core::time::Duration;

use crate::command::{Command, ParseError};
use crate::frame::{Dialect, LineBuffer, MAX_LINE_BYTES};
use crate::history::{Chronicle, Remembered, Said};
use crate::json::Object;
use crate::output::{Audience, CloseReason, OutputQueue, Speaks, View};
use crate::render::{CharName, Painted, Style, Visible, first_unsafe_char};
use crate::room::{MAX_TOPIC_BYTES, RoomId, RoomName, Rooms, bit};
use crate::roster::{ConnectionId, Name, Nickname, Roster};
use crate::time::Instant;

/// The most names a roster listing (`/list`, the welcome banner) shows; past it the listing
/// ends with "and N more".
pub const MAX_LISTED_NAMES: usize = 100;

/// Why a connection went away, as the runner reports it to
/// [`Server::handle_disconnect`](crate::Server::handle_disconnect). The others see it in the
/// departure notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer closed the connection.
    Closed,
    /// Reading or writing the socket failed.
    Error,
    /// The peer stopped reading and its output queue filled up.
    TooSlow,
}

impl DisconnectReason {
    fn describe(self) -> &'static str {
        match self {
            Self::Closed => "connection closed",
            Self::Error => "connection error",
            Self::TooSlow => "too slow to keep up",
        }
    }
}

/// The state one step works on: the roster, the output queue and how to render. Lives inside
/// [`Server`](crate::Server); split out so the handling reads as the protocol does.
#[derive(Debug)]
pub(crate) struct Hub<'a, const N: usize> {
    pub(crate) roster: &'a mut Roster<N>,
    pub(crate) rooms: &'a mut Rooms,
    pub(crate) out: &'a mut OutputQueue,
    pub(crate) style: Style,
    /// The most people in one room.
    pub(crate) max_room_members: u32,
    /// What was said lately in each room, and how many lines of it to keep.
    pub(crate) history: &'a mut dyn Chronicle,
    pub(crate) keep_history: usize,
    pub(crate) now: Instant,
    /// The server's name in IRC replies.
    pub(crate) server_name: &'static str,
    /// Whether an IRC client is put in the lobby when it registers.
    pub(crate) irc_lobby: bool,
    /// Rooms with more people than this do not announce joins and departures to text users.
    pub(crate) announce_limit: u32,
}

/// Queues a notice line (`*** TEXT`) for one connection. A macro rather than a method so that
/// the arguments may borrow other fields of the hub.
macro_rules! notice {
    ($hub:ident, $conn:expr, $($arg:tt)*) => {
        $crate::session::queue_line($hub.out, $hub.style.notice(), Audience::one($conn), format_args!($($arg)*))
    };
}

/// Queues an error line (`*** error: TEXT`) for one connection.
macro_rules! error {
    ($hub:ident, $conn:expr, $($arg:tt)*) => {
        $crate::session::queue_line($hub.out, $hub.style.error(), Audience::one($conn), format_args!($($arg)*))
    };
}

/// Queues a notice line (`*** TEXT`) for an audience.
macro_rules! announce {
    ($hub:ident, $audience:expr, $($arg:tt)*) => {
        $crate::session::queue_line($hub.out, $hub.style.notice(), $audience, format_args!($($arg)*))
    };
}

/// Queues one IRC line (the `\r\n` is added) for an audience of IRC clients, if any is online.
macro_rules! irc {
    ($hub:ident, $audience:expr, $($arg:tt)*) => {
        if $hub.roster.irc_count() > 0 {
            let start = $hub.out.mark();
            let _ = write!($hub.out, $($arg)*);
            let _ = $hub.out.write_str("\r\n");
            $hub.out.send(start, $audience);
        }
    };
}

/// Queues a numeric reply from the server to one IRC client: `:server NNN nick REST`.
macro_rules! numeric {
    ($hub:ident, $conn:expr, $code:literal, $($arg:tt)*) => {{
        let conn = $conn;
        irc!(
            $hub,
            Audience::one(conn),
            ":{} {} {} {}",
            $hub.server_name,
            $code,
            $hub.roster.irc_name(conn),
            format_args!($($arg)*)
        )
    }};
}

/// Queues a NOTICE from the server to one IRC client.
macro_rules! server_notice {
    ($hub:ident, $conn:expr, $($arg:tt)*) => {{
        let conn = $conn;
        irc!(
            $hub,
            Audience::one(conn),
            ":{} NOTICE {} :{}",
            $hub.server_name,
            $hub.roster.irc_name(conn),
            format_args!($($arg)*)
        )
    }};
}

mod irc;

pub(crate) use irc::{IrcName, IrcReason, IrcText, is_registration};
pub use irc::{MAX_IRC_NAMES, MAX_WHO_REPLIES};

/// How a join went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Now a member; the members were told.
    Entered(RoomId),
    /// Was a member already; nothing changed.
    AlreadyIn(RoomId),
}

/// Why a join was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Invalid(crate::RoomNameError),
    TooManyRooms,
    /// The room (unless it was made for this join and is gone), and how many are in it.
    Full(Option<RoomName>, u32),
}

/// What kind of private message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Private {
    Message(Said),
    /// An IRC NOTICE: shown like a message, never answered automatically.
    Notice,
}

impl<const N: usize> Hub<'_, N> {
    /// Greets a new connection that speaks plain text or JSON, and puts it in the lobby.
    pub(crate) fn greet(&mut self, conn: ConnectionId) {
        if let Some(slot) = self.roster.get_mut(conn) {
            slot.greeted = true;
        }
        let (style, online) = (self.style, self.roster.len());
        let me = style.name(self.roster.name(conn));
        let people = if online == 1 {
            "person is"
        } else {
            "people are"
        };
        notice!(
            self,
            conn,
            "Welcome to the chat! You are {me}; {online} {people} online."
        );
        notice!(
            self,
            conn,
            "Pick a nickname with /nick NAME; /help lists the commands."
        );
        self.join(conn, crate::LOBBY);
    }

    /// The rooms of `mask` small enough that comings and goings are announced in them (to
    /// text users: IRC clients need every JOIN, PART and QUIT to keep their lists of names).
    fn announced(&self, mask: u64) -> u64 {
        self.rooms
            .iter()
            .filter(|(room, info)| mask & bit(*room) != 0 && info.members <= self.announce_limit)
            .fold(0, |announced, (room, _)| announced | bit(room))
    }

    /// Whether `conn` speaks IRC.
    pub(crate) fn speaks_irc(&self, conn: ConnectionId) -> bool {
        self.roster.get(conn).is_some_and(|slot| slot.irc.is_some())
    }

    /// Removes `conn` and tells everyone who shares a room with it why it left.
    pub(crate) fn depart(&mut self, conn: ConnectionId, why: &dyn fmt::Display) {
        let mask = self.roster.get(conn).map_or(0, |slot| slot.rooms);
        let me = self.style.name(self.roster.name(conn));
        let others = Audience::rooms(mask, conn);
        let announced = self.announced(mask);
        if announced != 0 && self.roster.text_count() > 0 {
            announce!(
                self,
                Audience::rooms(announced, conn).speaking(Speaks::Text),
                "{me} left ({why})"
            );
        }
        if mask != 0 {
            irc!(
                self,
                others.speaking(Speaks::Irc),
                ":{} QUIT :{why}",
                self.roster.prefix(conn)
            );
        }
        for room in 0..crate::MAX_ROOMS as RoomId {
            if mask & bit(room) != 0 {
                self.leave_room(conn, room);
            }
        }
        self.roster.remove(conn);
    }

    pub(crate) fn disconnected(&mut self, conn: ConnectionId, reason: DisconnectReason) {
        self.depart(conn, &reason.describe());
    }

    /// Closes a connection that never sent a line.
    pub(crate) fn silent(&mut self, conn: ConnectionId, timeout: Duration) {
        if self.speaks_irc(conn) {
            irc!(
                self,
                Audience::one(conn),
                "ERROR :Closing link: not registered within {} s of connecting",
                timeout.as_secs(),
            );
        } else {
            notice!(
                self,
                conn,
                "Closing: no line received within {} s of connecting.",
                timeout.as_secs(),
            );
        }
        self.depart(conn, &CloseReason::Silent);
        self.out.close(conn, CloseReason::Silent);
    }

    /// Sends a quiet IRC client a `PING` it must answer.
    pub(crate) fn ping(&mut self, conn: ConnectionId) {
        irc!(self, Audience::one(conn), "PING :{}", self.server_name);
    }

    /// Closes an IRC client that did not answer its `PING` in time.
    pub(crate) fn ping_timeout(&mut self, conn: ConnectionId, timeout: Duration) {
        irc!(
            self,
            Audience::one(conn),
            "ERROR :Closing link: no answer to PING within {} s",
            timeout.as_secs()
        );
        self.depart(conn, &CloseReason::PingTimeout);
        self.out.close(conn, CloseReason::PingTimeout);
    }

    /// `conn` has caught up after the runner skipped `skipped` room messages for it.
    pub(crate) fn caught_up(&mut self, conn: ConnectionId, skipped: u64) {
        if let Some(slot) = self.roster.get_mut(conn) {
            slot.lagging = false;
        }
        if skipped == 0 {
            return;
        }
        let s = if skipped == 1 { "" } else { "s" };
        if self.speaks_irc(conn) {
            server_notice!(self, conn, "[{skipped} message{s} skipped]");
        } else {
            notice!(self, conn, "[{skipped} message{s} skipped]");
        }
    }

    /// A private message from `from` could not be queued for `to`, which is not reading.
    pub(crate) fn undelivered(&mut self, from: ConnectionId, to: ConnectionId) {
        let text = format_args!(
            "your private message to {} was not delivered: they are not reading, and too far behind",
            match self.roster.get(to) {
                Some(_) => IrcName::Name(self.roster.name(to)),
                None => IrcName::Unnamed,
            }
        );
        if self.speaks_irc(from) {
            server_notice!(self, from, "*** error: {text}");
        } else {
            error!(self, from, "{text}");
        }
    }

    /// Tells everyone the server is going away.
    pub(crate) fn shut_down(&mut self) {
        if self.roster.text_count() > 0 {
            announce!(
                self,
                Audience::all().speaking(Speaks::Text),
                "The server is shutting down. Goodbye!"
            );
        }
        irc!(
            self,
            Audience::all().speaking(Speaks::Irc),
            "ERROR :Closing link: the server is shutting down"
        );
    }

    /// Tells `conn` that its line passed the length limit.
    pub(crate) fn too_long(&mut self, conn: ConnectionId, dialect: Dialect) {
        let what = match dialect {
            Dialect::Json => "object",
            Dialect::Irc => {
                return numeric!(self, conn, "417", ":Input line was too long");
            }
            Dialect::Plain | Dialect::Undecided => "line",
        };
        error!(
            self,
            conn, "{what} too long (over {MAX_LINE_BYTES} bytes); it was not sent"
        );
    }

    /// Tells `conn` that flood control is slowing it down.
    pub(crate) fn slowed(&mut self, conn: ConnectionId, limit: crate::FloodLimit) {
        let text = format_args!(
            "Slow down: you are sending more than {} lines a second; the rest will follow at that pace.",
            limit.per_second
        );
        if self.speaks_irc(conn) {
            server_notice!(self, conn, "*** {text}");
        } else {
            notice!(self, conn, "{text}");
        }
    }

    /// Tells a JSON connection that it sent something that is not an object.
    pub(crate) fn stray(&mut self, conn: ConnectionId) {
        error!(
            self,
            conn,
            "expected a JSON object such as {{\"type\":\"boardcast\",\"message\":\"hi\"}}; skipped the text outside one"
        );
    }

    /// Handles one complete object from a connection speaking the original client's JSON.
    pub(crate) fn json(&mut self, conn: ConnectionId, object: &[u8]) {
        let Ok(text) = core::str::from_utf8(object) else {
            return error!(
                self,
                conn, "your object is not valid UTF-8; it was not sent"
            );
        };
        let object = match Object::parse(text) {
            Ok(object) => object,
            Err(error) => return error!(self, conn, "{error}"),
        };
        // Escapes such as \n or \u001b decode to control characters: refused as in a line.
        if let Some(bad) = first_unsafe_char(&object.message).or(first_unsafe_char(&object.user)) {
            return error!(
                self,
                conn,
                "your message contains the control character {}; it was not sent",
                CharName(bad),
            );
        }
        match object.command() {
            Ok(Command::Say(text)) if text.trim().is_empty() => {}
            Ok(command) => self.command(conn, command),
            Err(error) => error!(self, conn, "{error}"),
        }
    }

    /// Handles one complete line from `conn`.
    pub(crate) fn line(&mut self, conn: ConnectionId, line: &mut LineBuffer) {
        // A tab is the one control character worth keeping: pasted text is full of them.
        for byte in line.iter_mut().filter(|byte| **byte == b'\t') {
            *byte = b' ';
        }
        let Ok(text) = core::str::from_utf8(line) else {
            return error!(self, conn, "your line is not valid UTF-8; it was not sent");
        };
        if let Some(bad) = first_unsafe_char(text) {
            return error!(
                self,
                conn,
                "your line contains the control character {}; it was not sent",
                CharName(bad),
            );
        }
        match Command::parse(text) {
            Ok(command) => self.command(conn, command),
            Err(ParseError::Empty) => {}
            Err(error) => error!(self, conn, "{error}"),
        }
    }

    fn command(&mut self, conn: ConnectionId, command: Command<'_>) {
        match command {
            Command::Say(text) => self.say(conn, Said::Line, text),
            Command::Me(text) => self.say(conn, Said::Action, text),
            Command::Join(room) => self.join(conn, room),
            Command::Part { room, reason } => self.part(conn, room, reason),
            Command::Rooms => self.list_rooms(conn),
            Command::Topic(topic) => self.topic(conn, topic),
            Command::Nick(name) => self.nick(conn, name),
            Command::Msg { to, text } => self.private(conn, to, text),
            Command::List => match self.current(conn) {
                Some(room) => self.list(conn, room),
                None => self.not_in_a_room(conn),
            },
            Command::Help => self.help(conn),
            Command::Ping(Some(token)) => {
                notice!(self, conn, "pong {}", Visible(token),);
            }
            Command::Ping(None) => notice!(self, conn, "pong"),
            Command::Quit(reason) => {
                notice!(self, conn, "Goodbye!");
                match reason {
                    Some(reason) => self.depart(conn, &format_args!("quit: {}", Visible(reason))),
                    None => self.depart(conn, &CloseReason::Quit),
                }
                self.out.close(conn, CloseReason::Quit);
            }
        }
    }

    fn nick(&mut self, conn: ConnectionId, wanted: &str) {
        let style = self.style;
        let nick = match Nickname::new(wanted) {
            Ok(nick) => nick,
            Err(error) => {
                let old = style.name(self.roster.name(conn));
                return error!(
                    self,
                    conn,
                    "\"{}\" is not a valid nickname: {error}; you are still {old}",
                    Visible(wanted),
                );
            }
        };
        match self.roster.find(nick.as_str()) {
            Some(holder) if holder != conn => {
                let old = style.name(self.roster.name(conn));
                return error!(
                    self,
                    conn, "the nickname {nick} is taken; you are still {old}"
                );
            }
            _ => {}
        }
        if let Name::Nick(current) = self.roster.name(conn)
            && current.as_str() == nick.as_str()
        {
            return notice!(self, conn, "You are already {nick}.");
        }
        self.rename(conn, nick, true);
    }

    /// Gives `conn` a new nickname (already checked to be free), telling whoever shares a room
    /// with it, and it if `tell_self`.
    pub(crate) fn rename(&mut self, conn: ConnectionId, nick: Nickname, tell_self: bool) {
        let style = self.style;
        let mask = self.roster.get(conn).map_or(0, |slot| slot.rooms);
        let others = Audience::rooms(mask, conn);
        if mask != 0 {
            let (old, new) = (
                style.name(self.roster.name(conn)),
                style.name(Name::Nick(&nick)),
            );
            announce!(
                self,
                others.speaking(Speaks::Text),
                "{old} is now known as {new}"
            );
            irc!(
                self,
                others.speaking(Speaks::Irc),
                ":{} NICK :{nick}",
                self.roster.prefix(conn)
            );
        }
        if !tell_self {
            // Registering: the welcome tells it its name.
        } else if self.speaks_irc(conn) {
            irc!(
                self,
                Audience::one(conn),
                ":{} NICK :{nick}",
                self.roster.prefix(conn)
            );
        } else {
            notice!(
                self,
                conn,
                "You are now known as {}.",
                style.name(Name::Nick(&nick)),
            );
        }
        self.out.renamed(conn, nick.as_str());
        if let Some(slot) = self.roster.get_mut(conn) {
            slot.nick = Some(nick);
        }
    }

    fn private(&mut self, conn: ConnectionId, to: &str, text: &str) {
        let Some(target) = self.roster.find(to) else {
            return error!(self, conn, "no one called {} is online", Visible(to),);
        };
        self.deliver(conn, target, Private::Message(Said::Line), text);
        self.tell_if_away(conn, target);
        if target != conn && !self.speaks_irc(conn) {
            let style = self.style;
            let start = self.out.mark();
            let _ = write!(
                self.out,
                "{} to {}: {}\r\n",
                style.private(),
                style.name(self.roster.name(target)),
                Visible(text)
            );
            self.out.send(start, Audience::one(conn));
        }
    }

    /// Gives `target` a private message from `from`, in the target's dialect.
    pub(crate) fn deliver(
        &mut self,
        from: ConnectionId,
        target: ConnectionId,
        kind: Private,
        text: &str,
    ) {
        if self.speaks_irc(target) {
            let (verb, said) = match kind {
                Private::Message(said) => ("PRIVMSG", said),
                Private::Notice => ("NOTICE", Said::Line),
            };
            return irc!(
                self,
                Audience::private(target, from),
                ":{} {verb} {} :{}",
                self.roster.prefix(from),
                self.roster.name(target),
                IrcText(said, text)
            );
        }
        let style = self.style;
        let (marker, me) = (style.private(), style.name(self.roster.name(from)));
        let start = self.out.mark();
        let _ = match kind {
            Private::Message(Said::Action) => {
                write!(self.out, "{marker} * {me} {}\r\n", Visible(text))
            }
            Private::Message(Said::Line) | Private::Notice => {
                write!(self.out, "{marker} {me}: {}\r\n", Visible(text))
            }
        };
        self.out.send(start, Audience::private(target, from));
    }

    /// Tells `me` who is in `room`: the count, then up to [`MAX_LISTED_NAMES`] names sorted
    /// with nicknames first.
    fn list(&mut self, me: ConnectionId, room: RoomId) {
        let style = self.style;
        let roster = &*self.roster;
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let members = roster.live().filter(|&id| {
            roster
                .get(id)
                .is_some_and(|slot| slot.rooms & bit(room) != 0)
        });
        // The first names in sort order, and always the caller: a max-heap of the best ones
        // seen so far, whose worst is replaced when a better one comes (O(n log 100)).
        let mut best: heapless::BinaryHeap<_, heapless::binary_heap::Max, MAX_LISTED_NAMES> =
            heapless::BinaryHeap::new();
        for id in members {
            let ranked = ((id != me, sort_key(roster.name(id))), id);
            if best.len() < MAX_LISTED_NAMES {
                // Cannot fail: the heap is not full.
                let _ = best.push(ranked);
            } else if best.peek().is_some_and(|worst| ranked < *worst) {
                best.pop();
                let _ = best.push(ranked);
            }
        }
        let mut shown: heapless::Vec<ConnectionId, MAX_LISTED_NAMES> =
            best.iter().map(|&(_, id)| id).collect();
        shown.sort_unstable_by_key(|id| sort_key(roster.name(*id)));
        let start = self.out.mark();
        let _ = write!(
            self.out,
            "{} {} ({}):",
            style.notice(),
            info.name,
            info.members
        );
        for (position, &id) in shown.iter().enumerate() {
            let separator = if position == 0 { " " } else { ", " };
            let you = if id == me { " (you)" } else { "" };
            let lagging = if roster.get(id).is_some_and(|slot| slot.lagging) {
                " (lagging)"
            } else {
                ""
            };
            let _ = write!(
                self.out,
                "{separator}{}{you}{lagging}",
                style.name(roster.name(id))
            );
        }
        let hidden = info.members as usize - shown.len();
        if hidden > 0 {
            let _ = write!(self.out, ", and {hidden} more");
        }
        let _ = self.out.write_str("\r\n");
        self.out.send(start, Audience::one(me));
    }

    /// The room `conn` talks in, if any.
    fn current(&self, conn: ConnectionId) -> Option<RoomId> {
        self.roster.get(conn).and_then(|slot| slot.current)
    }

    fn not_in_a_room(&mut self, conn: ConnectionId) {
        error!(
            self,
            conn,
            "you are in no room; /join {} to talk",
            crate::LOBBY
        );
    }

    /// A line to the current room: plain to those talking there, with the room's name to
    /// members whose current room is another one.
    fn say(&mut self, conn: ConnectionId, kind: Said, text: &str) {
        let Some(room) = self.current(conn) else {
            return self.not_in_a_room(conn);
        };
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        if info.members == 1 {
            notice!(self, conn, "No one else is in {} to hear that.", info.name);
        }
        self.speak(conn, room, kind, text);
    }

    /// A line from `conn` to `room`, for every other member in their dialect, and remembered.
    pub(crate) fn speak(&mut self, conn: ConnectionId, room: RoomId, kind: Said, text: &str) {
        let style = self.style;
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let everyone = Audience::rooms(bit(room), conn);
        if self.roster.text_count() > 0 {
            let me = style.name(self.roster.name(conn));
            let text_here = everyone.speaking(Speaks::Text);
            let start = self.out.mark();
            let _ = match kind {
                Said::Line => write!(self.out, "{me}: {}\r\n", Visible(text)),
                Said::Action => write!(self.out, "* {me} {}\r\n", Visible(text)),
            };
            self.out.send(start, text_here.viewing(View::Current(room)));
            if info.members > info.current_here {
                let start = self.out.mark();
                let _ = match kind {
                    Said::Line => write!(self.out, "[{}] {me}: {}\r\n", info.name, Visible(text)),
                    Said::Action => {
                        write!(self.out, "[{}] * {me} {}\r\n", info.name, Visible(text))
                    }
                };
                self.out
                    .send(start, text_here.viewing(View::NotCurrent(room)));
            }
        }
        irc!(
            self,
            everyone.speaking(Speaks::Irc),
            ":{} PRIVMSG {} :{}",
            self.roster.prefix(conn),
            info.name,
            IrcText(kind, text)
        );
        if self.keep_history > 0 {
            let line = Remembered::new(self.now, kind, self.roster.name(conn), text);
            self.history.remember(room, line, self.keep_history);
        }
    }

    /// Enters `name` (creating it) and makes it the current room.
    fn join(&mut self, conn: ConnectionId, name: &str) {
        let room = match self.admit(conn, name) {
            Ok(Admitted::Entered(room)) => room,
            Ok(Admitted::AlreadyIn(room)) => {
                self.set_current(conn, Some(room));
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                return notice!(self, conn, "Now talking in {}.", info.name);
            }
            Err(Refused::Invalid(error)) => {
                return error!(
                    self,
                    conn,
                    "\"{}\" is not a valid room name: {error}",
                    Visible(name),
                );
            }
            Err(Refused::TooManyRooms) => {
                return error!(
                    self,
                    conn,
                    "there are already {} rooms, the most there can be; /rooms lists them",
                    crate::MAX_ROOMS
                );
            }
            Err(Refused::Full(Some(room), members)) => {
                return error!(self, conn, "{room} is full ({members} people)");
            }
            Err(Refused::Full(None, _)) => return error!(self, conn, "that room is full"),
        };
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        notice!(self, conn, "You are now talking in {}.", info.name);
        if !info.topic.is_empty() {
            notice!(
                self,
                conn,
                "Topic of {}: {}",
                info.name,
                Visible(&info.topic),
            );
        }
        self.list(conn, room);
        self.replay(conn, room);
    }

    /// Lets `conn` into the room called `name`, creating it, and tells its members: the
    /// checks and the news common to every dialect. The caller tells `conn` the rest.
    pub(crate) fn admit(&mut self, conn: ConnectionId, name: &str) -> Result<Admitted, Refused> {
        let name = RoomName::new(name).map_err(Refused::Invalid)?;
        let mask = self.roster.get(conn).map_or(0, |slot| slot.rooms);
        let room = match self.rooms.find(name.as_str()) {
            Some(room) => room,
            None => self.rooms.create(name).map_err(|_| Refused::TooManyRooms)?,
        };
        if mask & bit(room) != 0 {
            return Ok(Admitted::AlreadyIn(room));
        }
        let Some(info) = self.rooms.get(room) else {
            return Err(Refused::TooManyRooms);
        };
        if info.members >= self.max_room_members {
            let (name, members) = (info.name.clone(), info.members);
            self.remove_if_empty(room);
            // A room made just now for this join (possible with a limit of 0) is gone again.
            let name = self.rooms.get(room).map(|_| name);
            return Err(Refused::Full(name, members));
        }
        if let Some(slot) = self.roster.get_mut(conn) {
            slot.rooms |= bit(room);
        }
        if let Some(info) = self.rooms.get_mut(room) {
            info.members += 1;
        }
        self.set_current(conn, Some(room));
        let Some(info) = self.rooms.get(room) else {
            return Ok(Admitted::Entered(room));
        };
        let others = Audience::rooms(bit(room), conn);
        let me = self.style.name(self.roster.name(conn));
        let (name, members) = (&info.name, info.members);
        if self.roster.text_count() > 0 && members <= self.announce_limit {
            announce!(
                self,
                others.speaking(Speaks::Text),
                "{me} joined {name} ({members} here)"
            );
        }
        let prefix = self.roster.prefix(conn);
        irc!(self, others.speaking(Speaks::Irc), ":{prefix} JOIN {name}");
        if self.speaks_irc(conn) {
            irc!(self, Audience::one(conn), ":{prefix} JOIN {name}");
        }
        Ok(Admitted::Entered(room))
    }

    /// Shows a newcomer to `room` what was said there last, marked with how long ago.
    fn replay(&mut self, conn: ConnectionId, room: RoomId) {
        let (style, now) = (self.style, self.now);
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let start = self.out.mark();
        let mut first = true;
        let out = &mut *self.out;
        self.history.replay(room, &mut |line| {
            if core::mem::take(&mut first) {
                let _ = write!(out, "{} Earlier in {}:\r\n", style.notice(), info.name);
            }
            let age = Ago(now.saturating_duration_since(line.at));
            let name = style.former_name(&line.name);
            let text = Visible(&line.text);
            let _ = match line.kind {
                Said::Line => write!(out, "[{age}] {name}: {text}\r\n"),
                Said::Action => write!(out, "[{age}] * {name} {text}\r\n"),
            };
        });
        self.out.send(start, Audience::one(conn));
    }

    /// Leaves `room` (the current one if `None`), telling its members.
    fn part(&mut self, conn: ConnectionId, room: Option<&str>, reason: Option<&str>) {
        let mask = self.roster.get(conn).map_or(0, |slot| slot.rooms);
        let room = match room {
            Some(name) => self.rooms.find(name).filter(|&room| mask & bit(room) != 0),
            None => self.current(conn),
        };
        let Some(room) = room else {
            return error!(self, conn, "you are not in that room");
        };
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return;
        };
        self.leave(conn, room, reason);
        notice!(self, conn, "You left {name}.");
        match self.current(conn).and_then(|room| self.rooms.get(room)) {
            Some(now) => notice!(self, conn, "Now talking in {}.", now.name),
            None => notice!(
                self,
                conn,
                "You are in no room now; /join {} to talk again.",
                crate::LOBBY
            ),
        }
    }

    /// Takes `conn` out of `room`, telling the members (and `conn`, if it speaks IRC).
    pub(crate) fn leave(&mut self, conn: ConnectionId, room: RoomId, reason: Option<&str>) {
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let me = self.style.name(self.roster.name(conn));
        let everyone = Audience::rooms(bit(room), conn);
        if self.roster.text_count() > 0 && info.members <= self.announce_limit {
            let text = everyone.speaking(Speaks::Text);
            match reason {
                Some(reason) => {
                    announce!(self, text, "{me} left {} ({})", info.name, Visible(reason));
                }
                None => announce!(self, text, "{me} left {}", info.name),
            }
        }
        let prefix = self.roster.prefix(conn);
        let reason = IrcReason(reason);
        irc!(
            self,
            everyone.speaking(Speaks::Irc),
            ":{prefix} PART {}{reason}",
            info.name
        );
        // To `conn` by itself: recipients are found when the output is polled, and by then it
        // is no longer a member.
        if self.speaks_irc(conn) {
            irc!(
                self,
                Audience::one(conn),
                ":{prefix} PART {}{reason}",
                info.name
            );
        }
        self.leave_room(conn, room);
    }

    /// Takes `conn` out of `room`, moving its current room to another of its rooms if needed,
    /// and removes the room if it is now empty.
    fn leave_room(&mut self, conn: ConnectionId, room: RoomId) {
        let Some(slot) = self.roster.get_mut(conn) else {
            return;
        };
        slot.rooms &= !bit(room);
        let rest = slot.rooms;
        let was_current = slot.current == Some(room);
        if let Some(info) = self.rooms.get_mut(room) {
            info.members -= 1;
        }
        if was_current {
            let next = (rest != 0).then(|| rest.trailing_zeros() as RoomId);
            self.set_current(conn, next);
        }
        self.remove_if_empty(room);
    }

    /// Removes `room` if no one is in it (the lobby stays), and what was said in it.
    fn remove_if_empty(&mut self, room: RoomId) {
        if self.rooms.remove_if_empty(room) {
            self.history.forget(room);
        }
    }

    /// Moves `conn`'s current room, keeping each room's count of people talking in it.
    fn set_current(&mut self, conn: ConnectionId, room: Option<RoomId>) {
        let Some(slot) = self.roster.get_mut(conn) else {
            return;
        };
        let old = core::mem::replace(&mut slot.current, room);
        if let Some(info) = old.and_then(|old| self.rooms.get_mut(old)) {
            info.current_here -= 1;
        }
        if let Some(info) = room.and_then(|room| self.rooms.get_mut(room)) {
            info.current_here += 1;
        }
    }

    /// Every room, with its member count and the start of its topic.
    fn list_rooms(&mut self, conn: ConnectionId) {
        /// Topics are cut to this many characters, and at most this many bytes, here, so the
        /// listing of every room fits in one step's output.
        const TOPIC_PREVIEW_CHARS: usize = 60;
        const TOPIC_PREVIEW_BYTES: usize = 120;
        let notice = self.style.notice();
        let start = self.out.mark();
        let _ = write!(self.out, "{notice} Rooms ({}):\r\n", self.rooms.count());
        let mine = self.roster.get(conn).map_or(0, |slot| slot.rooms);
        for (room, info) in self.rooms.iter() {
            let here = if mine & bit(room) != 0 {
                ", you are in it"
            } else {
                ""
            };
            let _ = write!(
                self.out,
                "{notice}   {} ({}{here})",
                info.name, info.members
            );
            if !info.topic.is_empty() {
                let mut end = info
                    .topic
                    .char_indices()
                    .nth(TOPIC_PREVIEW_CHARS)
                    .map_or(info.topic.len(), |(at, _)| at)
                    .min(TOPIC_PREVIEW_BYTES);
                while !info.topic.is_char_boundary(end) {
                    end -= 1;
                }
                let more = if end < info.topic.len() { "..." } else { "" };
                let _ = write!(self.out, " {}{more}", Visible(&info.topic[..end]));
            }
            let _ = self.out.write_str("\r\n");
        }
        self.out.send(start, Audience::one(conn));
    }

    /// Shows the current room's topic, or sets it and tells the room.
    fn topic(&mut self, conn: ConnectionId, topic: Option<&str>) {
        let Some(room) = self.current(conn) else {
            return self.not_in_a_room(conn);
        };
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let Some(topic) = topic else {
            if info.topic.is_empty() {
                notice!(self, conn, "{} has no topic.", info.name);
            } else {
                let (name, topic) = (&info.name, Visible(&info.topic));
                notice!(self, conn, "Topic of {name}: {topic}");
            }
            return;
        };
        if topic.len() > MAX_TOPIC_BYTES {
            return error!(
                self,
                conn, "a topic has at most {MAX_TOPIC_BYTES} bytes; it was not changed"
            );
        }
        self.set_topic(conn, room, topic);
    }

    /// Sets `room`'s topic (at most [`MAX_TOPIC_BYTES`], checked by the caller) and tells its
    /// members.
    pub(crate) fn set_topic(&mut self, conn: ConnectionId, room: RoomId, topic: &str) {
        let Some(info) = self.rooms.get_mut(room) else {
            return;
        };
        info.topic.clear();
        // Cannot fail: the caller checked the length.
        let _ = info.topic.push_str(topic);
        let me = self.style.name(self.roster.name(conn));
        let members = Audience::members(bit(room));
        if self.roster.text_count() > 0 {
            announce!(
                self,
                members.speaking(Speaks::Text),
                "{me} set the topic of {}: {}",
                info.name,
                Visible(topic)
            );
        }
        irc!(
            self,
            members.speaking(Speaks::Irc),
            ":{} TOPIC {} :{}",
            self.roster.prefix(conn),
            info.name,
            Visible(topic)
        );
    }

    fn help(&mut self, conn: ConnectionId) {
        let notice = self.style.notice();
        let start = self.out.mark();
        for line in HELP {
            let _ = write!(self.out, "{notice} {line}\r\n");
        }
        self.out.send(start, Audience::one(conn));
    }
}

/// Queues one line, `marker` then `text`, for `audience`.
fn queue_line(
    out: &mut OutputQueue,
    marker: Painted<&str>,
    audience: Audience,
    text: fmt::Arguments<'_>,
) {
    let start = out.mark();
    let _ = write!(out, "{marker} {text}\r\n");
    out.send(start, audience);
}

/// How long ago something was said, roughly: `12 s ago`, `5 min ago`, `3 h ago`.
struct Ago(Duration);

impl fmt::Display for Ago {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_secs() {
            secs @ 0..60 => write!(f, "{secs} s ago"),
            secs @ 60..3600 => write!(f, "{} min ago", secs / 60),
            secs => write!(f, "{} h ago", secs / 3600),
        }
    }
}

/// Nicknames first, case-insensitively, then anonymous people by number.
fn sort_key(name: Name<'_>) -> (bool, [u8; crate::MAX_NICK_CHARS], u32) {
    match name {
        Name::Nick(nick) => {
            let mut key = [0; crate::MAX_NICK_CHARS];
            for (k, b) in key.iter_mut().zip(nick.as_str().bytes()) {
                *k = b.to_ascii_lowercase();
            }
            (false, key, 0)
        }
        Name::Anonymous(number) => (true, [0; crate::MAX_NICK_CHARS], number),
    }
}

const HELP: [&str; 14] = [
    "Commands:",
    "  /nick NAME        choose or change your nickname (1-16 letters, digits, _-[]\\^{}|`)",
    "  /msg NAME TEXT    send TEXT to NAME alone",
    "  /me TEXT          an action: * you TEXT",
    "  /join #ROOM       enter a room (made if new) and talk there",
    "  /part [#ROOM] [REASON]  leave a room (the current one if none is named)",
    "  /rooms            every room, with its size and topic",
    "  /topic [TEXT]     show or set the current room's topic",
    "  /list             who is in your room (also /who, /names)",
    "  /help             this list",
    "  /quit [REASON]    leave",
    "  /ping [TOKEN]     the server answers: pong TOKEN",
    "Any other line goes to your room. To send a line starting with /, start it with //.",
    "Lines are at most 512 bytes of UTF-8 without control characters.",
];

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::format;

    use crate::{
        Admission, Config, ConnectionId, Instant, MAX_ROOM_NAME_BYTES, MAX_ROOMS, MAX_TOPIC_BYTES,
        OUTPUT_BYTES, Output, Server,
    };

    /// Feeds `line` to `conn` and returns the bytes it got back.
    fn say<const N: usize, const H: usize>(
        server: &mut Server<N, H>,
        conn: ConnectionId,
        line: &str,
    ) -> usize {
        let mut rest = line.as_bytes();
        let mut got = 0;
        while !rest.is_empty() {
            let taken = server
                .handle_input(Instant::ZERO, conn, rest)
                .unwrap()
                .bytes();
            rest = &rest[taken..];
            while let Some(output) = server.poll_output() {
                if let Output::Send { bytes, .. } = output {
                    got += bytes.len();
                }
            }
        }
        got
    }

    #[test]
    fn the_longest_room_listing_fits_in_one_step() {
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_flood_limit(None);
        let mut server: Server<2> = Server::new(config, Instant::ZERO);
        let Ok(Admission::Accepted(conn)) = server.handle_connect(Instant::ZERO) else {
            panic!("connect");
        };
        while server.poll_output().is_some() {}
        // Every room with the longest name, and a topic of 4-byte characters, in colour.
        let topic = "😀".repeat(MAX_TOPIC_BYTES / 4);
        for n in 1..MAX_ROOMS {
            let name = format!("#{n:02}{}", "r".repeat(MAX_ROOM_NAME_BYTES - 3));
            say(
                &mut server,
                conn,
                &format!("/join {name}\n/topic {topic}\n"),
            );
        }
        let listing = say(&mut server, conn, "/rooms\n");
        assert!(
            listing > 64 * 100 && listing <= OUTPUT_BYTES,
            "{listing} bytes"
        );
        // The next step would panic (debug) had the listing overflowed.
        assert!(say(&mut server, conn, "/ping\n") > 0);
    }

    #[test]
    fn a_long_listing_shows_the_first_names_in_order_and_the_caller() {
        use crate::MAX_LISTED_NAMES;
        let mut server: Server<128> = Server::new(
            Config::default()
                .with_greeting_delay(Duration::ZERO)
                .with_colour(false)
                .with_flood_limit(None),
            Instant::ZERO,
        );
        let mut conns = std::vec::Vec::new();
        for _ in 0..120 {
            let Ok(Admission::Accepted(conn)) = server.handle_connect(Instant::ZERO) else {
                panic!("connect");
            };
            while server.poll_output().is_some() {}
            conns.push(conn);
        }
        // Names that sort in the reverse of connect order; the last one to connect is "zz".
        for (n, &conn) in conns.iter().enumerate() {
            let name = if n == 119 {
                std::string::String::from("zz")
            } else {
                format!("n{:03}", 200 - n)
            };
            say(&mut server, conn, &format!("/nick {name}\n"));
        }
        let listing = listing128(&mut server, conns[119]);
        let names: std::vec::Vec<&str> = listing
            .trim_end()
            .split(": ")
            .nth(1)
            .unwrap()
            .split(", ")
            .collect();
        assert_eq!(names.len(), MAX_LISTED_NAMES + 1, "{listing}");
        assert_eq!(names[0], "n082");
        assert_eq!(names[MAX_LISTED_NAMES - 2], "n180");
        assert_eq!(names[MAX_LISTED_NAMES - 1], "zz (you)");
        assert_eq!(names[MAX_LISTED_NAMES], "and 20 more");
    }

    fn listing128(server: &mut Server<128>, conn: ConnectionId) -> std::string::String {
        let taken = server
            .handle_input(Instant::ZERO, conn, b"/list\n")
            .unwrap();
        assert_eq!(taken.bytes(), 6);
        let mut text = std::string::String::new();
        while let Some(output) = server.poll_output() {
            if let Output::Send { bytes, .. } = output {
                text.push_str(core::str::from_utf8(bytes).unwrap());
            }
        }
        text
    }

    #[test]
    fn the_longest_join_with_history_fits_in_one_step() {
        // A server that keeps history is big (every room's lines live inline): give it a stack.
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(longest_join_with_history)
            .unwrap()
            .join()
            .unwrap();
    }

    fn longest_join_with_history() {
        use crate::{MAX_HISTORY, MAX_LINE_BYTES, MAX_NICK_CHARS};
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_flood_limit(None);
        let mut server: Server<128, MAX_HISTORY> = Server::new(config, Instant::ZERO);
        let mut conns = std::vec::Vec::new();
        for n in 0..120 {
            let Ok(Admission::Accepted(conn)) = server.handle_connect(Instant::ZERO) else {
                panic!("connect");
            };
            while server.poll_output().is_some() {}
            let nick = format!("n{n:0width$}", width = MAX_NICK_CHARS - 1);
            say(&mut server, conn, &format!("/nick {nick}\n"));
            conns.push(conn);
        }
        let topic = "😀".repeat(MAX_TOPIC_BYTES / 4);
        say(&mut server, conns[0], &format!("/topic {topic}\n"));
        for _ in 0..MAX_HISTORY {
            let long = "é".repeat(MAX_LINE_BYTES / 2);
            say(&mut server, conns[0], &format!("{long}\n"));
        }
        // A newcomer gets the banner, the topic, a full listing and the whole history.
        let Ok(Admission::Accepted(late)) = server.handle_connect(Instant::ZERO) else {
            panic!("connect");
        };
        let mut welcome = 0;
        while let Some(output) = server.poll_output() {
            if let Output::Send { bytes, .. } = output {
                welcome += bytes.len();
            }
        }
        assert!(
            welcome > MAX_HISTORY * MAX_LINE_BYTES && welcome <= OUTPUT_BYTES,
            "{welcome}"
        );
        assert!(say(&mut server, late, "/ping\n") > 0, "the next step works");
    }

    #[test]
    fn ages_read_naturally() {
        use super::Ago;
        use core::time::Duration;
        #[rustfmt::skip]
        let cases = [
            (0, "0 s ago"), (59, "59 s ago"), (60, "1 min ago"), (3599, "59 min ago"),
            (3600, "1 h ago"), (90_000, "25 h ago"),
        ];
        for (secs, shown) in cases {
            assert_eq!(format!("{}", Ago(Duration::from_secs(secs))), shown);
        }
    }
}
