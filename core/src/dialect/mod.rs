//! What a person can do once connected: the handling of one line from one connection, and of
//! arrivals and departures, as seen by everyone else.

use core::fmt::{self, Write};
use core::time::Duration;
use irc::numeric::ERR_INPUTTOOLONG;

use crate::claim::{ClaimAnswer, NickClaim};
use crate::dialect::text::{Painted, Style, Visible};
use crate::event::{LineKind, PersonId};
use crate::history::{HistoryAnswer, HistoryRange, HistoryRequest, Purpose};
use crate::output::{
    Audience, CloseReason, EventRecord, OutputQueue, RelayRecord, RelayTo, RoomSet, Speaks, View,
};
use crate::relay::{Incoming, Kind, Origin};
use crate::state::members::MAX_ROOMS_PER_PERSON;
use crate::state::rooms::{RoomId, RoomName, Rooms};
use crate::state::roster::{ConnectionId, Name, Nickname, Queue, Roster};
use crate::time::Instant;
use crate::wire::line::{Dialect, MAX_LINE_BYTES};

/// The most names a roster listing (`/list`, the welcome banner) shows; past it the listing
/// ends with "and N more".
pub const MAX_LISTED_NAMES: usize = 100;

/// The most members of a room a roster listing looks at to choose its names: the first of the
/// room's list (those who came first, or those in the first slots once a big room's list has
/// been put in order for speed), and the one asking. A listing of a bigger room names the
/// first in sort order of those; looking at every member would make each of N joins cost N, a
/// room of N cost N² (100,000 joins into one room took 109 s of the core's time).
pub const MAX_LISTING_SCAN: usize = 10 * MAX_LISTED_NAMES;

/// The most rooms a room listing (`/rooms`, IRC's `LIST`) shows, lowest index (oldest) first;
/// past it the listing says how many more there are.
pub const MAX_LISTED_ROOMS: usize = 64;

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
pub(crate) struct Step<'a, S: crate::Storage> {
    pub(crate) roster: &'a mut Roster<S>,
    pub(crate) rooms: &'a mut Rooms<S>,
    /// Who left lately and the most users at once, for IRC's `WHOWAS` and `LUSERS`.
    pub(crate) past: &'a mut crate::state::past::Past,
    /// Who watches which nickname (IRC's `MONITOR`).
    pub(crate) watches: &'a mut crate::state::monitor::Watches<S>,
    pub(crate) out: &'a mut OutputQueue,
    /// Account requests waiting for the runner's answer (see [`account`](crate::account)).
    pub(crate) account_asks: &'a mut crate::state::asks::Waitings,
    /// Invitations into rooms, pending.
    pub(crate) invites: &'a mut crate::state::moderation::Invites,
    /// When mutes with a duration lapse.
    pub(crate) mutes: &'a mut crate::state::moderation::TimedMutes,
    /// The server-wide bans.
    pub(crate) server_bans: &'a mut crate::state::moderation::ServerBans<S>,
    /// The accounts that are server operators.
    pub(crate) operators: &'a crate::account::Operators,
    pub(crate) style: Style,
    /// The most people in one room.
    pub(crate) max_room_members: u32,
    /// How many past lines someone joining a room is shown.
    pub(crate) replay: usize,
    pub(crate) now: Instant,
    /// The server's name in IRC replies.
    pub(crate) server_name: &'a str,
    /// The operator's message of the day; `None`: the built-in one.
    pub(crate) motd: Option<&'a crate::motd::Motd>,
    /// Whether an IRC client is put in the lobby when it registers.
    pub(crate) irc_lobby: bool,
    /// Rooms with more people than this do not announce joins and departures to text users.
    pub(crate) announce_limit: u32,
    /// With nickname claims on, how long a claim may wait for its answer.
    pub(crate) claims: Option<Duration>,
    /// Room lines said here go to the runner for their place in the room's order first (see
    /// [`relay`](crate::relay)).
    pub(crate) relayed: bool,
    /// With accounts kept by the runner: how long a request may wait for its answer, and the
    /// grace period of a registered nickname (see [`account`](crate::account)).
    pub(crate) accounts: Option<(Duration, Duration)>,
    /// The changes one `MODE` command is making, gathered for one line to IRC clients.
    pub(crate) mode_line: Option<irc::mode_line::ModeLine>,
}

/// What became of a wish for a nickname that is free here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wish {
    /// No claims: take it now.
    Now,
    /// Claimed from the other servers: the answer decides.
    Claimed,
    /// A claim of this connection's is still waiting: one at a time.
    Waiting,
    /// Someone else here is claiming it already.
    ClaimedHere,
}

/// Queues a notice line (`*** TEXT`) for one connection. A macro rather than a method so that
/// the arguments may borrow other fields of the hub.
macro_rules! notice {
    ($hub:ident, $conn:expr, $($arg:tt)*) => {
        $crate::dialect::queue_line($hub.out, $hub.style.notice(), Audience::one($conn), format_args!($($arg)*))
    };
}

/// Queues an error line (`*** error: TEXT`) for one connection.
macro_rules! error {
    ($hub:ident, $conn:expr, $($arg:tt)*) => {
        $crate::dialect::queue_line($hub.out, $hub.style.error(), Audience::one($conn), format_args!($($arg)*))
    };
}

/// Queues a notice line (`*** TEXT`) for an audience.
macro_rules! announce {
    ($hub:ident, $audience:expr, $($arg:tt)*) => {
        $crate::dialect::queue_line($hub.out, $hub.style.notice(), $audience, format_args!($($arg)*))
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
    ($hub:ident, $conn:expr, $code:expr, $($arg:tt)*) => {{
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

mod accounts;
mod irc;
mod json;
mod moderation;
mod plain;
mod remote;
pub(crate) mod text;

pub(crate) use irc::{ClientTags, IrcName, is_registration};
pub use irc::{MAX_IRC_NAMES, MAX_WHO_REPLIES};
pub use moderation::MAX_MODE_CHANGES;

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
    Invalid(crate::state::rooms::RoomNameError),
    TooManyRooms,
    /// The person is in [`MAX_ROOMS_PER_PERSON`] rooms already.
    InTooMany,
    /// The room (unless it was made for this join and is gone), and how many are in it.
    Full(Option<RoomName>, u32),
    /// The person matches one of the room's bans.
    Banned(RoomName),
    /// The room is invite-only and the person was not invited.
    InviteOnly(RoomName),
    /// The room has a key and the person did not give it.
    BadKey(RoomName),
}

/// A room setting with a value, as its operators set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RoomParam<'t> {
    /// The key to give on joining (IRC's `+k`); `None`: lifted.
    Key(Option<&'t str>),
    /// The most people let in (IRC's `+l`); `None`: lifted.
    Limit(Option<u32>),
}

/// How someone comes into a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry<'k> {
    /// They asked here, with the key they gave, if any: the room's bans, invite-only mode,
    /// key and limit apply, unless they were invited.
    Asked(Option<&'k str>),
    /// Another server says they are in it: its own checks let them in; only bans apply here.
    Relayed,
}

/// A change others can observe, with the table indices the renderers need: [`Step::publish`]
/// turns it into an [`Event`](crate::Event) for the runner and lines for each dialect. The
/// state has changed already, except where a variant says otherwise.
#[derive(Clone, Copy)]
pub(crate) enum Happened<'t> {
    /// `who` was shown to others for the first time.
    Arrived { who: ConnectionId },
    /// `who` is now in `room`.
    Joined { who: ConnectionId, room: RoomId },
    /// `who` is about to leave `room`.
    Parted {
        who: ConnectionId,
        room: RoomId,
        reason: Option<&'t str>,
    },
    /// `who` said `text` in `room` at `at`, its line `seq` there.
    Said {
        who: Speaker<'t>,
        room: RoomId,
        kind: LineKind,
        text: &'t str,
        seq: u64,
        at: Instant,
        /// Tags the sender added for other IRC clients.
        tags: ClientTags<'t>,
    },
    /// `from` sent `to` a private message.
    Private {
        from: Speaker<'t>,
        to: ConnectionId,
        kind: LineKind,
        text: &'t str,
        /// Its message id for IRCv3 clients, from the same numbering as room lines.
        msgid: u64,
        /// Tags the sender added for other IRC clients.
        tags: ClientTags<'t>,
    },
    /// `who` set the topic of `room` to `topic`.
    TopicSet {
        who: Speaker<'t>,
        room: RoomId,
        topic: &'t str,
        /// When it was set (on its setter's server).
        at: Instant,
    },
    /// `who`, in `rooms`, is about to be called `new`; it is told too if `tell_self`.
    Renamed {
        who: ConnectionId,
        /// A nickname, or `anonymous-N` for someone who lost theirs.
        new: Name<'t>,
        rooms: RoomSet,
        tell_self: bool,
    },
    /// `who`, in `rooms`, is about to go; `announced` are those of its rooms small enough
    /// that text users are told.
    Departed {
        who: ConnectionId,
        why: &'t dyn fmt::Display,
        rooms: RoomSet,
        announced: RoomSet,
    },
    /// `who` is now away with `message`, or back.
    Away {
        who: ConnectionId,
        message: Option<&'t str>,
    },
    /// `who` is about to be put out of `room` by `by`, one of its operators (here, or on
    /// another server).
    Kicked {
        who: ConnectionId,
        by: Speaker<'t>,
        room: RoomId,
        reason: Option<&'t str>,
    },
    /// `by`, an operator of `room` (here, or on another server), gave `who` `status` there
    /// (`on`), or took it away.
    StatusSet {
        who: ConnectionId,
        by: Speaker<'t>,
        room: RoomId,
        status: crate::state::members::Status,
        on: bool,
        /// For how long (a mute's); `None`: until taken away.
        duration: Option<Duration>,
    },
    /// `by`, an operator of `room`, set `mode` on it (`on`), or not.
    RoomModeSet {
        by: ConnectionId,
        room: RoomId,
        mode: crate::state::rooms::RoomMode,
        on: bool,
    },
    /// `by` registered `room` to the account `founder`, or unregistered it (`None`).
    RoomRegistered {
        by: ConnectionId,
        room: RoomId,
        founder: Option<&'t str>,
    },
    /// `who` is now identified as `account`, or no longer (`None`).
    AccountSet {
        who: ConnectionId,
        account: Option<&'t str>,
    },
    /// `by`, a server operator, banned `mask` from the server until `until`, or lifted it.
    ServerBanSet {
        by: ConnectionId,
        mask: &'t dyn fmt::Display,
        on: bool,
        at: Instant,
        until: Option<Instant>,
        reason: &'t str,
    },
    /// `by`, an operator of `room`, set its key or its limit, or lifted it.
    RoomParamSet {
        by: ConnectionId,
        room: RoomId,
        param: RoomParam<'t>,
    },
    /// `by`, an operator of `room`, banned `mask` from it (`on`), or lifted the ban; or
    /// excepted it, as `list` says.
    BanSet {
        by: ConnectionId,
        room: RoomId,
        list: crate::event::BanList,
        mask: &'t str,
        on: bool,
        /// For how long; `None`: until lifted.
        duration: Option<Duration>,
        /// Why, as its setter said.
        reason: Option<&'t str>,
    },
    /// `room` was just made.
    RoomCreated { room: RoomId },
    /// The room called `name` has gone.
    RoomRemoved { name: &'t RoomName },
}

impl Happened<'_> {
    /// The person a change is about (the sender of a private message), unless it is a line
    /// said in a room or a room's news (its topic too: with several servers, a topic comes in
    /// the room's order, and every server keeps it).
    fn person(&self) -> Option<ConnectionId> {
        match *self {
            Self::Arrived { who }
            | Self::Joined { who, .. }
            | Self::Parted { who, .. }
            | Self::Kicked { who, .. }
            | Self::Renamed { who, .. }
            | Self::Departed { who, .. }
            | Self::Away { who, .. }
            | Self::AccountSet { who, .. } => Some(who),
            Self::Private { from, .. } => from.listed(),
            Self::Said { .. }
            | Self::TopicSet { .. }
            | Self::StatusSet { .. }
            | Self::BanSet { .. }
            | Self::RoomModeSet { .. }
            | Self::RoomParamSet { .. }
            | Self::RoomRegistered { .. }
            | Self::ServerBanSet { .. }
            | Self::RoomCreated { .. }
            | Self::RoomRemoved { .. } => None,
        }
    }
}

/// Who said a line: someone in the roster (connected here, or a listed person of another
/// server), or someone known only by the line (said on another server by someone not listed
/// here, see [`relay`](crate::relay)).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Speaker<'t> {
    Listed(ConnectionId),
    Unlisted {
        /// Their name when they said it.
        nick: &'t str,
        /// Their server's name.
        node: &'t str,
    },
}

impl Speaker<'_> {
    /// The roster's handle on them, if they are listed.
    pub(crate) fn listed(self) -> Option<ConnectionId> {
        match self {
            Self::Listed(conn) => Some(conn),
            Self::Unlisted { .. } => None,
        }
    }

    /// Everyone in `room` but the speaker.
    pub(crate) fn others_in(self, room: RoomId) -> Audience {
        match self {
            Self::Listed(conn) => Audience::room_but(room, conn),
            Self::Unlisted { .. } => Audience::room(room),
        }
    }

    /// A private message from them to `to`: to `to` alone, as a private message when the
    /// sender is listed (so that a refusal can be reported to them).
    pub(crate) fn private_to(self, to: ConnectionId) -> Audience {
        match self {
            Self::Listed(from) => Audience::private(to, from),
            Self::Unlisted { .. } => Audience::one(to),
        }
    }
}

impl<'s, S: crate::Storage> Step<'s, S> {
    /// Whether `conn` speaks IRC.
    pub(crate) fn speaks_irc(&self, conn: ConnectionId) -> bool {
        self.roster
            .get(conn)
            .is_some_and(|slot| slot.person.reads_irc())
    }

    /// Removes `conn` and tells everyone who shares a room with it why it left.
    pub(crate) fn depart(&mut self, conn: ConnectionId, why: &dyn fmt::Display) {
        // Kept by value: the rooms are left below, before the sends are polled.
        let rooms = self.out.room_set(self.roster.rooms_of(conn));
        let (table, limit) = (&*self.rooms, self.announce_limit);
        let announced = self.out.room_set(
            self.roster
                .rooms_of(conn)
                .filter(|&room| table.get(room).is_some_and(|info| info.members <= limit)),
        );
        self.publish(&Happened::Departed {
            who: conn,
            why,
            rooms,
            announced,
        });
        for at in 0..usize::from(rooms.len) {
            let room = self.out.rooms(rooms)[at];
            self.leave_room(conn, room);
        }
        self.note_departure(conn);
        self.roster.remove(conn);
        self.account_asks.retain(|waiting| waiting.conn != conn);
        self.invites.forget(conn);
        self.mutes.forget(Some(conn), None);
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
            slot.connection.lagging = false;
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

    /// A notice from the runner to the members here of the room called `name`, if there is
    /// one (`*** [#room] TEXT` for text users, a `NOTICE #room` from the server for IRC).
    pub(crate) fn notice_room(&mut self, name: &str, text: &str) {
        let Some(room) = self.rooms.find(name) else {
            return;
        };
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return;
        };
        if self.roster.text_count() > 0 {
            announce!(
                self,
                Audience::room(room).speaking(Speaks::Text),
                "[{name}] {}",
                Visible(text)
            );
        }
        irc!(
            self,
            Audience::room(room).speaking(Speaks::Irc),
            ":{} NOTICE {name} :*** {}",
            self.server_name,
            Visible(text)
        );
    }

    /// A notice from the runner to everyone online (`text` shown as any text is: control
    /// characters made visible).
    pub(crate) fn notice_all(&mut self, text: &str) {
        if self.roster.text_count() > 0 {
            announce!(
                self,
                Audience::all().speaking(Speaks::Text),
                "{}",
                Visible(text)
            );
        }
        irc!(
            self,
            Audience::all().speaking(Speaks::Irc),
            ":{} NOTICE * :*** {}",
            self.server_name,
            Visible(text)
        );
    }

    /// Tells `conn` that its line passed the length limit.
    pub(crate) fn too_long(&mut self, conn: ConnectionId, dialect: Dialect) {
        let what = match dialect {
            Dialect::Json => "object",
            Dialect::Irc => {
                return numeric!(self, conn, ERR_INPUTTOOLONG, ":Input line was too long");
            }
            Dialect::Plain | Dialect::Undecided => "line",
        };
        error!(
            self,
            conn, "{what} too long (over {MAX_LINE_BYTES} bytes); it was not sent"
        );
    }

    /// With nickname claims on, claims `nick` for `conn` from the other servers instead of
    /// giving it at once. Call it once the nickname is known to be free here.
    pub(crate) fn wish_nick(&mut self, conn: ConnectionId, nick: &Nickname) -> Wish {
        let Some(timeout) = self.claims else {
            return Wish::Now;
        };
        if self.roster.claiming(conn).is_some() {
            return Wish::Waiting;
        }
        if self.roster.claimed_by_other(nick, conn) {
            return Wish::ClaimedHere;
        }
        self.roster.set_claiming(conn, nick);
        let deadline = self.now.saturating_add(timeout);
        self.roster.enqueue(Queue::Claiming, conn, deadline);
        self.out.claim(NickClaim::new(conn, nick.clone()));
        Wish::Claimed
    }

    /// The other servers answered `conn`'s claim of `nick` (or did not in time).
    pub(crate) fn claim_answered(
        &mut self,
        conn: ConnectionId,
        nick: Nickname,
        answer: ClaimAnswer,
    ) {
        let free_here = self
            .roster
            .find(nick.as_str())
            .is_none_or(|holder| holder == conn);
        let irc = self.speaks_irc(conn);
        match answer {
            ClaimAnswer::Granted if free_here && irc => self.irc_take_nick(conn, nick),
            ClaimAnswer::Granted if free_here => self.rename(conn, nick, true),
            ClaimAnswer::Granted | ClaimAnswer::Taken => self.nick_taken(conn, &nick),
            _ => {
                let server = self.server_name;
                if irc {
                    irc!(
                        self,
                        Audience::one(conn),
                        ":{server} FAIL NICK CANNOT_CLAIM {nick} :The nickname could not be checked with the other servers; try again"
                    );
                } else {
                    let old = self.style.name(self.roster.name(conn));
                    error!(
                        self,
                        conn,
                        "the nickname {nick} could not be checked with the other servers; try again; you are still {old}"
                    );
                }
            }
        }
    }

    /// Tells `conn` that `nick` is someone else's.
    pub(crate) fn nick_taken(&mut self, conn: ConnectionId, nick: &Nickname) {
        if self.speaks_irc(conn) {
            numeric!(
                self,
                conn,
                irc::numeric::ERR_NICKNAMEINUSE,
                "{nick} :Nickname is already in use"
            );
        } else {
            let old = self.style.name(self.roster.name(conn));
            error!(
                self,
                conn, "the nickname {nick} is taken; you are still {old}"
            );
        }
    }

    /// Tells `conn` that flood control is slowing it down.
    pub(crate) fn slowed(&mut self, conn: ConnectionId, limit: crate::state::flood::FloodLimit) {
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

    /// Gives `conn` a new nickname (already checked to be free), telling whoever shares a room
    /// with it, and it if `tell_self`.
    pub(crate) fn rename(&mut self, conn: ConnectionId, nick: Nickname, tell_self: bool) {
        // A grace period is for the name it goes by: a new name is checked anew, and so are
        // server-wide bans, once the step is over.
        self.no_longer_unproven(conn);
        if !self.is_remote(conn) {
            self.server_bans.suspect(conn);
        }
        let rooms = self.out.room_set(self.roster.rooms_of(conn));
        self.publish(&Happened::Renamed {
            who: conn,
            new: Name::Nick(&nick),
            rooms,
            tell_self,
        });
        if let Some(slot) = self.roster.get_mut(conn) {
            slot.person.nick = Some(nick);
        }
    }

    /// Takes `conn`'s nickname away: it is `anonymous-N` again (returned), and it and those
    /// who share a room with it are shown the rename.
    pub(crate) fn unname(&mut self, conn: ConnectionId) -> Name<'static> {
        let rooms = self.out.room_set(self.roster.rooms_of(conn));
        let anonymous = Roster::<S>::anonymous(conn);
        self.publish(&Happened::Renamed {
            who: conn,
            new: anonymous,
            rooms,
            tell_self: true,
        });
        if let Some(slot) = self.roster.get_mut(conn) {
            slot.person.nick = None;
        }
        self.no_longer_unproven(conn);
        anonymous
    }

    /// Takes `conn`'s nickname away, if it still goes by `nick` (ASCII case ignored): it is
    /// `anonymous-N` again, and told why, and so are those who share a room with it. For a
    /// nickname this server turns out not to hold (another server took it while this one
    /// could not reach the others).
    pub(crate) fn nick_lost(&mut self, conn: ConnectionId, nick: &str) {
        let goes_by = self
            .roster
            .get(conn)
            .and_then(|slot| slot.person.nick.as_ref())
            .is_some_and(|held| held.matches(nick));
        if !goes_by || self.is_remote(conn) {
            return;
        }
        if self.speaks_irc(conn)
            && !self.registered(conn)
            && self.roster.rooms_of(conn).next().is_none()
        {
            // Not shown to anyone yet (it sent NICK but not USER): it picks another, as it
            // would have had the claim been refused.
            if let Some(slot) = self.roster.get_mut(conn) {
                slot.person.nick = None;
            }
            return numeric!(
                self,
                conn,
                irc::numeric::ERR_NICKNAMEINUSE,
                "{} :Nickname is already in use",
                Visible(nick)
            );
        }
        let anonymous = self.unname(conn);
        let text = format_args!(
            "someone on another server took the nickname {nick} while this server could not \
             reach the others; you are {anonymous} now: pick another with {}",
            if self.speaks_irc(conn) {
                "NICK"
            } else {
                "/nick NAME"
            }
        );
        if self.speaks_irc(conn) {
            server_notice!(self, conn, "*** {text}");
        } else {
            notice!(self, conn, "{text}");
        }
    }

    /// Gives `target` a private message from `from`, in the target's dialect.
    pub(crate) fn deliver(
        &mut self,
        from: ConnectionId,
        target: ConnectionId,
        kind: LineKind,
        text: &str,
        tags: ClientTags<'_>,
    ) {
        let msgid = self.rooms.next_number();
        self.publish(&Happened::Private {
            from: Speaker::Listed(from),
            to: target,
            kind,
            text,
            msgid,
            tags,
        });
        // Shown here to the sender alone (an echo): the rest is for the target's server.
        if let Some(tag) = self.roster.get(target).and_then(|slot| slot.person.remote) {
            let nick = self.out.span_name(self.roster.name(from));
            let to = RelayTo::Person {
                nick: self.out.span_name(self.roster.name(target)),
                node: self.out.span_str(self.roster.node_name(tag.node)),
            };
            let text = self.out.span_str(text);
            self.out.relay(RelayRecord {
                conn: from,
                nick,
                to,
                kind: Kind::Said(kind),
                text,
                at: self.now,
            });
        }
    }

    /// The room `conn` talks in, if any.
    pub(crate) fn current(&self, conn: ConnectionId) -> Option<RoomId> {
        self.roster.get(conn).and_then(|slot| slot.person.current)
    }

    /// A line from `conn` to `room`, for every other member in their dialect (and, as an
    /// event, for the runner to keep).
    pub(crate) fn speak(
        &mut self,
        conn: ConnectionId,
        room: RoomId,
        kind: LineKind,
        text: &str,
        tags: ClientTags<'_>,
    ) {
        if !self.may_speak(conn, room) {
            return;
        }
        if self.relayed {
            self.relay_to_room(conn, room, Kind::Said(kind), text);
            return;
        }
        let Some(seq) = self.rooms.next_seq(room) else {
            return;
        };
        self.publish(&Happened::Said {
            who: Speaker::Listed(conn),
            room,
            kind,
            text,
            seq,
            at: self.now,
            tags,
        });
    }

    /// Hands the runner what `conn` said in `room` (or set as its topic), to put in the room's
    /// order before anyone is shown it (see [`relay`](crate::relay)).
    fn relay_to_room(&mut self, conn: ConnectionId, room: RoomId, kind: Kind, text: &str) {
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return;
        };
        let nick = self.out.span_name(self.roster.name(conn));
        let to = RelayTo::Room(self.out.span_str(name.as_str()));
        let text = self.out.span_str(text);
        let at = self.now;
        self.out.relay(RelayRecord {
            conn,
            nick,
            to,
            kind,
            text,
            at,
        });
    }

    /// A room line (or topic) in its place in the room's order, handed back by the runner
    /// (see [`relay`](crate::relay)), for the members here; checked already.
    pub(crate) fn relayed(&mut self, line: &Incoming<'_>, room_name: &str) {
        let Kind::Said(kind) = line.kind else {
            self.relayed_topic(line, room_name);
            return;
        };
        let Some(room) = self.rooms.find(room_name) else {
            // Nobody here is in the room: nothing to show, but the line is still news for a
            // store.
            let event = EventRecord::Said {
                nick: self.out.span_str(line.nick),
                room: self.out.span_str(room_name),
                kind,
                text: self.out.span_str(line.text),
                seq: line.seq,
                at: line.at,
            };
            self.out.event(event);
            return;
        };
        let who = self.speaker_of(line);
        self.publish(&Happened::Said {
            who,
            room,
            kind,
            text: line.text,
            seq: line.seq,
            at: line.at,
            tags: ClientTags::NONE,
        });
    }

    /// A room's new topic in its place in the room's order. The room is made here if need
    /// be (a room with a topic stays while empty), so that whoever joins it here later finds
    /// the topic; one set here that finds the table of topics full is refused to its setter.
    /// The same topic, by the same setter at the same time, again changes nothing.
    fn relayed_topic(&mut self, line: &Incoming<'_>, room_name: &str) {
        let room = match self.rooms.find(room_name) {
            Some(room) => room,
            None if line.text.is_empty() => return,
            None => {
                let Ok(name) = RoomName::new(room_name) else {
                    return;
                };
                let Ok(room) = self.rooms.create(name, self.now) else {
                    return;
                };
                self.publish(&Happened::RoomCreated { room });
                room
            }
        };
        let who = self.speaker_of(line);
        let mut by = heapless::String::<{ crate::state::rooms::MAX_SETTER_BYTES }>::new();
        let _ = match who {
            Speaker::Listed(conn) => write!(by, "{}", self.roster.name(conn)),
            Speaker::Unlisted { nick, .. } => write!(by, "{nick}"),
        };
        // The topic the room has already (a runner handing a topic over again, say, read back
        // where it was kept): nothing changes, and nobody is told.
        // A cleared topic keeps no setter: clearing one that is clear is news to no one.
        if self.rooms.get(room).is_some_and(|info| {
            info.topic == line.text
                && (line.text.is_empty() || info.topic_set == Some((by.as_str(), line.at)))
        }) {
            return;
        }
        if self.rooms.set_topic(room, line.text, &by, line.at).is_err() {
            if let Speaker::Listed(conn) = who {
                self.topics_full(conn);
            }
            self.remove_if_empty(room);
            return;
        }
        self.publish(&Happened::TopicSet {
            who,
            room,
            topic: line.text,
            at: line.at,
        });
        self.remove_if_empty(room);
    }

    /// Who said `line`, as the people here are shown them: their connection here if it still
    /// goes by the name it was said under, else that name and server.
    fn speaker_of<'l>(&self, line: &Incoming<'l>) -> Speaker<'l>
    where
        's: 'l,
    {
        match line.origin {
            Origin::Here(conn) if self.goes_by(conn, line.nick) => Speaker::Listed(conn),
            // Gone, or renamed since: shown by the name it was said under.
            Origin::Here(_) => Speaker::Unlisted {
                nick: line.nick,
                node: self.server_name,
            },
            Origin::Node(node) => Speaker::Unlisted {
                nick: line.nick,
                node,
            },
        }
    }

    /// Whether `conn` is live and called `name` (exactly).
    fn goes_by(&self, conn: ConnectionId, name: &str) -> bool {
        if self.roster.get(conn).is_none() {
            return false;
        }
        match self.roster.name(conn) {
            Name::Nick(nick) => nick.as_str() == name,
            Name::Anonymous(number) => {
                crate::state::roster::exact_anonymous_number(name) == Some(number)
            }
        }
    }

    /// Asks the runner for `room`'s past lines, for `conn`.
    pub(crate) fn ask_history(
        &mut self,
        conn: ConnectionId,
        room: RoomId,
        range: HistoryRange,
        limit: usize,
        purpose: Purpose,
    ) {
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        if limit == 0 {
            return;
        }
        let request = HistoryRequest::new(conn, info.name.clone(), range, limit, purpose);
        self.out.request(request);
    }

    /// Shows `request`'s asker one part of the answer, in their dialect.
    pub(crate) fn history(&mut self, request: &HistoryRequest, answer: HistoryAnswer<'_>) {
        if self.speaks_irc(request.conn()) {
            self.irc_history(request, answer);
        } else {
            self.text_history(request, answer);
        }
    }

    /// Lets `conn` into the room called `name`, creating it, and tells its members: the
    /// checks and the news common to every dialect. The caller tells `conn` the rest.
    pub(crate) fn admit(
        &mut self,
        conn: ConnectionId,
        name: &str,
        entry: Entry<'_>,
    ) -> Result<Admitted, Refused> {
        let name = RoomName::new(name).map_err(Refused::Invalid)?;
        let (room, created) = match self.rooms.find(name.as_str()) {
            Some(room) if self.roster.in_room(conn, room) => return Ok(Admitted::AlreadyIn(room)),
            Some(room) => {
                self.may_enter(conn, room, entry)?;
                (room, false)
            }
            None if self.roster.rooms_of(conn).count() >= MAX_ROOMS_PER_PERSON => {
                return Err(Refused::InTooMany);
            }
            None => {
                let room = self
                    .rooms
                    .create(name, self.now)
                    .map_err(|_| Refused::TooManyRooms)?;
                (room, true)
            }
        };
        let Some(info) = self.rooms.get(room) else {
            return Err(Refused::TooManyRooms);
        };
        if info.members >= self.max_room_members {
            let (name, members) = (info.name.clone(), info.members);
            self.remove_if_empty(room);
            // A room made just now for this join (possible with a limit of 0) is gone again,
            // unseen: it was never announced.
            let name = self.rooms.get(room).map(|_| name);
            return Err(Refused::Full(name, members));
        }
        if self.roster.get(conn).is_none() {
            return Err(Refused::TooManyRooms);
        }
        if self.roster.join_room(conn, room).is_err() {
            return Err(Refused::InTooMany);
        }
        // An invitation is used up by coming in.
        self.invites.take(conn, room);
        if let Some(info) = self.rooms.get_mut(room) {
            info.members += 1;
        }
        self.set_current(conn, Some(room));
        if created || self.is_founder(conn, room) {
            // Whoever makes a room keeps order in it, as on IRC, and so does the founder of a
            // registered one. (The lobby is made by the server: nobody is its operator.)
            self.roster.set_op(conn, room, true);
        }
        if created {
            self.publish(&Happened::RoomCreated { room });
        }
        self.publish(&Happened::Joined { who: conn, room });
        Ok(Admitted::Entered(room))
    }

    /// Takes `conn` out of `room`, telling the members (and `conn`, if it speaks IRC).
    pub(crate) fn leave(&mut self, conn: ConnectionId, room: RoomId, reason: Option<&str>) {
        if self.rooms.get(room).is_none() {
            return;
        }
        self.publish(&Happened::Parted {
            who: conn,
            room,
            reason,
        });
        self.leave_room(conn, room);
    }

    /// Takes `conn` out of `room`, moving its current room to another of its rooms if needed,
    /// and removes the room if it is now empty.
    pub(crate) fn leave_room(&mut self, conn: ConnectionId, room: RoomId) {
        let Some(slot) = self.roster.get(conn) else {
            return;
        };
        let was_current = slot.person.current == Some(room);
        if !self.roster.leave_room(conn, room) {
            return;
        }
        if let Some(info) = self.rooms.get_mut(room) {
            info.members -= 1;
        }
        if was_current {
            let next = self.roster.rooms_of(conn).min();
            self.set_current(conn, next);
        }
        self.remove_if_empty(room);
    }

    /// Removes `room` if no one is in it and it has no topic (the lobby stays).
    pub(crate) fn remove_if_empty(&mut self, room: RoomId) {
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let name = info.name.clone();
        if self.rooms.remove_if_empty(room) {
            self.invites.forget_room(room);
            self.mutes.forget(None, Some(room));
            self.publish(&Happened::RoomRemoved { name: &name });
        }
    }

    /// Moves `conn`'s current room, keeping each room's count of people talking in it.
    pub(crate) fn set_current(&mut self, conn: ConnectionId, room: Option<RoomId>) {
        if self.roster.get(conn).is_none() {
            return;
        }
        let old = self.roster.set_current(conn, room);
        if let Some(info) = old.and_then(|old| self.rooms.get_mut(old)) {
            info.current_here -= 1;
        }
        if let Some(info) = room.and_then(|room| self.rooms.get_mut(room)) {
            info.current_here += 1;
        }
    }

    /// Sets `room`'s topic (at most [`MAX_TOPIC_BYTES`](crate::MAX_TOPIC_BYTES), checked by
    /// the caller) and tells its members; with several servers, hands it to the runner to put
    /// in the room's order first (see [`relayed`](Self::relayed)).
    pub(crate) fn set_topic(&mut self, conn: ConnectionId, room: RoomId, topic: &str) {
        if self
            .rooms
            .get_mut(room)
            .is_some_and(|info| info.has(crate::state::rooms::RoomMode::TopicLocked))
            && !self.keeps_order(conn, room)
        {
            return self.topic_refused(conn, room);
        }
        if self.relayed {
            self.relay_to_room(conn, room, Kind::Topic, topic);
            return;
        }
        let mut by = heapless::String::<{ crate::state::rooms::MAX_SETTER_BYTES }>::new();
        let _ = write!(by, "{}", self.roster.name(conn));
        if self.rooms.set_topic(room, topic, &by, self.now).is_err() {
            self.topics_full(conn);
            return;
        }
        self.publish(&Happened::TopicSet {
            who: Speaker::Listed(conn),
            room,
            topic,
            at: self.now,
        });
    }

    /// Tells `conn` its topic was not set: every topic there may be is taken.
    fn topics_full(&mut self, conn: ConnectionId) {
        let text = format_args!(
            "{} rooms have a topic already, the most there can be; clear one first",
            crate::state::rooms::MAX_TOPICS
        );
        if self.speaks_irc(conn) {
            server_notice!(self, conn, "*** error: {text}");
        } else {
            error!(self, conn, "{text}");
        }
    }

    /// Whether `conn` has been shown to others (welcomed as plain text or JSON, or registered
    /// as an IRC client), so that its departure is news.
    pub(crate) fn arrived(&self, conn: ConnectionId) -> bool {
        self.roster.get(conn).is_some_and(|slot| {
            slot.connection.greeted
                || slot
                    .connection
                    .registration
                    .is_some_and(|registration| registration.registered)
        })
    }

    /// Says what happened, once: as an [`Event`](crate::Event) for the runner, and as lines for
    /// each dialect present.
    pub(crate) fn publish(&mut self, happened: &Happened<'_>) {
        if let Happened::Arrived { who } = *happened
            && self
                .roster
                .get(who)
                .is_some_and(|slot| !slot.person.is_remote())
        {
            self.past.arrived();
        }
        self.monitor_news(happened);
        self.record(happened);
        if self.roster.text_count() > 0 {
            self.render_text(happened);
        }
        if self.roster.irc_count() > 0 {
            self.render_irc(happened);
        }
    }

    /// Queues the event of `happened`, its names written to the arena. What people on other
    /// servers do is news on their servers, not here; a line they say is kept here too, and so
    /// is a private message they write to someone here (the recipient's copy is kept here).
    fn record(&mut self, happened: &Happened<'_>) {
        let remote = |who: ConnectionId| {
            self.roster
                .get(who)
                .is_some_and(|slot| slot.person.is_remote())
        };
        let to_someone_here = matches!(*happened, Happened::Private { to, .. } if !remote(to));
        if happened.person().is_some_and(remote) && !to_someone_here {
            return;
        }
        let (now, person) = (self.now, |who| PersonId::Local(who));
        let event = match *happened {
            Happened::Arrived { who } => EventRecord::Arrived {
                person: person(who),
                nick: self.out.span_name(self.roster.name(who)),
            },
            Happened::Joined { who, room } => {
                let Some(name) = self.rooms.get(room).map(|info| info.name.as_str()) else {
                    return;
                };
                EventRecord::Joined {
                    person: person(who),
                    nick: self.out.span_name(self.roster.name(who)),
                    room: self.out.span_str(name),
                }
            }
            // For a store or another server, a kick is a departure from the room.
            Happened::Parted { who, room, reason }
            | Happened::Kicked {
                who, room, reason, ..
            } => {
                let Some(name) = self.rooms.get(room).map(|info| info.name.as_str()) else {
                    return;
                };
                EventRecord::Parted {
                    person: person(who),
                    nick: self.out.span_name(self.roster.name(who)),
                    room: self.out.span_str(name),
                    reason: reason.map(|reason| self.out.span_str(reason)),
                }
            }
            Happened::Said {
                who,
                room,
                kind,
                text,
                seq,
                at,
                ..
            } => {
                let Some(name) = self.rooms.get(room).map(|info| info.name.as_str()) else {
                    return;
                };
                let nick = match who {
                    Speaker::Listed(conn) => self.out.span_name(self.roster.name(conn)),
                    Speaker::Unlisted { nick, .. } => self.out.span_str(nick),
                };
                EventRecord::Said {
                    nick,
                    room: self.out.span_str(name),
                    kind,
                    text: self.out.span_str(text),
                    seq,
                    at,
                }
            }
            Happened::Private {
                from,
                to,
                kind,
                text,
                msgid,
                ..
            } => EventRecord::Private {
                // An unlisted sender is on another server: no event here.
                from: match from {
                    Speaker::Listed(from) => self.out.span_name(self.roster.name(from)),
                    Speaker::Unlisted { .. } => return,
                },
                to: self.out.span_name(self.roster.name(to)),
                kind,
                text: self.out.span_str(text),
                msgid,
                at: now,
            },
            Happened::TopicSet {
                who,
                room,
                topic,
                at,
            } => {
                let Some(name) = self.rooms.get(room).map(|info| info.name.as_str()) else {
                    return;
                };
                EventRecord::TopicSet {
                    nick: match who {
                        Speaker::Listed(who) => self.out.span_name(self.roster.name(who)),
                        Speaker::Unlisted { nick, .. } => self.out.span_str(nick),
                    },
                    room: self.out.span_str(name),
                    topic: self.out.span_str(topic),
                    at,
                }
            }
            Happened::Renamed { who, new, .. } => EventRecord::Renamed {
                person: person(who),
                from: self.out.span_name(self.roster.name(who)),
                to: self.out.span_name(new),
            },
            Happened::Departed { who, why, .. } => {
                if !self.arrived(who) {
                    return;
                }
                EventRecord::Departed {
                    person: person(who),
                    nick: self.out.span_name(self.roster.name(who)),
                    reason: self.out.span(why),
                }
            }
            Happened::Away { who, message } => EventRecord::Away {
                person: person(who),
                nick: self.out.span_name(self.roster.name(who)),
                message: message.map(|message| self.out.span_str(message)),
            },
            Happened::AccountSet { who, account } => EventRecord::Identified {
                person: person(who),
                nick: self.out.span_name(self.roster.name(who)),
                account: account.map(|account| self.out.span_str(account)),
            },
            // Operators, voices and mutes are kept while the room lives, not by a store.
            Happened::StatusSet { .. } => return,
            Happened::BanSet {
                room,
                list,
                mask,
                on,
                ..
            } => {
                let Some(name) = self.rooms.get(room).map(|info| info.name.as_str()) else {
                    return;
                };
                let ban = self
                    .rooms
                    .bans_of(room, list, self.now)
                    .find(|ban| ban.mask.eq_ignore_ascii_case(mask));
                match (on, ban) {
                    (true, Some(ban)) => EventRecord::Banned {
                        room: self.out.span_str(name),
                        list,
                        mask: self.out.span_str(&ban.mask),
                        by: self.out.span_str(&ban.by),
                        at: ban.at,
                        until: ban.until,
                    },
                    (true, None) => return,
                    (false, _) => EventRecord::Unbanned {
                        room: self.out.span_str(name),
                        list,
                        mask: self.out.span_str(mask),
                    },
                }
            }
            Happened::RoomModeSet { room, .. } | Happened::RoomParamSet { room, .. } => {
                let (Some(view), Some(info)) = (self.rooms.get(room), self.rooms.room(room)) else {
                    return;
                };
                let mut modes =
                    heapless::String::<{ crate::state::rooms::RoomMode::ALL.len() }>::new();
                for mode in crate::state::rooms::RoomMode::ALL {
                    if info.has(mode) {
                        let _ = modes.push(mode.letter());
                    }
                }
                let limit = info.limit.map(core::num::NonZeroU32::get);
                EventRecord::RoomModes {
                    room: self.out.span_str(view.name.as_str()),
                    modes: self.out.span_str(&modes),
                    key: self.rooms.key_of(room).map(|key| self.out.span_str(key)),
                    limit,
                }
            }
            Happened::ServerBanSet {
                by,
                mask,
                on,
                at,
                until,
                reason,
            } => match on {
                true => EventRecord::ServerBanned {
                    mask: self.out.span(mask),
                    by: self.out.span_name(self.roster.name(by)),
                    at,
                    until,
                    reason: self.out.span_str(reason),
                },
                false => EventRecord::ServerUnbanned {
                    mask: self.out.span(mask),
                },
            },
            Happened::RoomRegistered { room, founder, .. } => {
                let Some(name) = self.rooms.get(room).map(|info| info.name.as_str()) else {
                    return;
                };
                EventRecord::RoomRegistered {
                    room: self.out.span_str(name),
                    founder: founder.map(|founder| self.out.span_str(founder)),
                }
            }
            Happened::RoomCreated { room } => {
                let Some(name) = self.rooms.get(room).map(|info| info.name.as_str()) else {
                    return;
                };
                EventRecord::RoomCreated {
                    room: self.out.span_str(name),
                }
            }
            Happened::RoomRemoved { name } => EventRecord::RoomRemoved {
                room: self.out.span_str(name.as_str()),
            },
        };
        self.out.event(event);
    }
}

/// Queues one line, `marker` then `text`, for `audience`.
pub(crate) fn queue_line(
    out: &mut OutputQueue,
    marker: Painted<&str>,
    audience: Audience,
    text: fmt::Arguments<'_>,
) {
    let start = out.mark();
    let _ = write!(out, "{marker} {text}\r\n");
    out.send(start, audience);
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::format;

    use crate::{
        Admission, Config, ConnectionId, Instant, MAX_LISTED_ROOMS, MAX_ROOM_NAME_BYTES,
        MAX_ROOMS_PER_PERSON, MAX_TOPIC_BYTES, OUTPUT_BYTES, Output, Server,
    };

    /// Feeds `line` to `conn` and returns the bytes it got back.
    fn say<S: crate::Storage>(server: &mut Server<S>, conn: ConnectionId, line: &str) -> usize {
        said(server, conn, line).0
    }

    /// How many bytes `line` brought back, and the last step's text.
    fn said<S: crate::Storage>(
        server: &mut Server<S>,
        conn: ConnectionId,
        line: &str,
    ) -> (usize, std::string::String) {
        let mut rest = line.as_bytes();
        let (mut got, mut text) = (0, std::string::String::new());
        while !rest.is_empty() {
            let taken = server
                .handle_input(Instant::ZERO, conn, rest)
                .unwrap()
                .bytes();
            rest = &rest[taken..];
            text.clear();
            while let Some(output) = server.poll_output() {
                if let Output::Send { bytes, .. } = output {
                    got += bytes.len();
                    text.push_str(&std::string::String::from_utf8_lossy(bytes));
                }
            }
        }
        (got, text)
    }

    #[test]
    fn the_longest_room_listing_fits_in_one_step() {
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_flood_limit(None);
        let mut server: Server<crate::Inline<8>> = Server::new(config, Instant::ZERO);
        let connect = |server: &mut Server<crate::Inline<8>>| {
            let Ok(Admission::Accepted(conn)) = server.handle_connect(Instant::ZERO) else {
                panic!("connect");
            };
            while server.poll_output().is_some() {}
            conn
        };
        // More rooms than are listed, each with the longest name and a topic of 4-byte
        // characters, in colour; each person fills their rooms, then the next one goes on.
        let topic = "😀".repeat(MAX_TOPIC_BYTES / 4);
        let mut conn = connect(&mut server);
        for n in 1..MAX_LISTED_ROOMS + 5 {
            if n % (MAX_ROOMS_PER_PERSON - 1) == 0 {
                conn = connect(&mut server);
            }
            // 63 bytes: as long as a name can be in bytes, near enough.
            let name = format!("#{n:02}{}", "中".repeat((MAX_ROOM_NAME_BYTES - 3) / 3));
            say(
                &mut server,
                conn,
                &format!("/join {name}\n/topic {topic}\n"),
            );
        }
        let (listing, text) = said(&mut server, conn, "/rooms\n");
        assert!(
            listing > MAX_LISTED_ROOMS * 100 && listing <= OUTPUT_BYTES,
            "{listing} bytes"
        );
        assert!(text.contains("and 5 more"), "{text}");
        // The next step would panic (debug) had the listing overflowed.
        assert!(say(&mut server, conn, "/ping\n") > 0);
    }

    #[test]
    fn a_long_listing_shows_the_first_names_in_order_and_the_caller() {
        use crate::MAX_LISTED_NAMES;
        let mut server: Server<crate::Inline<128>> = Server::new(
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
        let listing = listing(&mut server, conns[119]);
        let names = listed_names(&listing);
        assert_eq!(names.len(), MAX_LISTED_NAMES + 1, "{listing}");
        assert_eq!(names[0], "n082");
        assert_eq!(names[MAX_LISTED_NAMES - 2], "n180");
        assert_eq!(names[MAX_LISTED_NAMES - 1], "zz (you)");
        assert_eq!(names[MAX_LISTED_NAMES], "and 20 more");
    }

    #[test]
    fn a_huge_rooms_listing_looks_at_its_first_members_and_the_caller_only() {
        use crate::{MAX_LISTED_NAMES, MAX_LISTING_SCAN};
        let people = MAX_LISTING_SCAN + 50;
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_colour(false)
            .with_flood_limit(None);
        let mut server = Server::with_capacity(config, Instant::ZERO, people);
        let mut conns = std::vec::Vec::new();
        for _ in 0..people {
            let Ok(Admission::Accepted(conn)) = server.handle_connect(Instant::ZERO) else {
                panic!("connect");
            };
            while server.poll_output().is_some() {}
            conns.push(conn);
        }
        // Names that sort in the reverse of connect order, so the first in sort order are
        // those who came last, past the part a listing looks at; the caller among them.
        for (n, &conn) in conns.iter().enumerate() {
            say(&mut server, conn, &format!("/nick n{:05}\n", 99_999 - n));
        }
        let caller = conns[people - 1];
        let listing = listing(&mut server, caller);
        let names = listed_names(&listing);
        assert!(
            listing.starts_with(&format!("*** #lobby ({people}):")),
            "{listing}"
        );
        assert_eq!(names.len(), MAX_LISTED_NAMES + 1);
        // The caller first (their name sorts first of all), then the first in sort order of
        // the members looked at: the MAX_LISTING_SCAN who came first.
        let first_looked_at = 99_999 - (MAX_LISTING_SCAN - 1);
        assert_eq!(names[0], format!("n{:05} (you)", 99_999 - (people - 1)));
        assert_eq!(names[1], format!("n{first_looked_at:05}"));
        assert_eq!(
            names[MAX_LISTED_NAMES],
            format!("and {} more", people - MAX_LISTED_NAMES)
        );
    }

    /// What `/list` from `conn` answers.
    fn listing<S: crate::Storage>(
        server: &mut Server<S>,
        conn: ConnectionId,
    ) -> std::string::String {
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

    /// The names of a `/list` answer, `and N more` last.
    fn listed_names(listing: &str) -> std::vec::Vec<&str> {
        listing
            .trim_end()
            .split(": ")
            .nth(1)
            .unwrap()
            .split(", ")
            .collect()
    }

    #[test]
    fn the_longest_join_fits_in_one_step_and_asks_for_history() {
        use crate::{HistoryAnswer, HistoryLine, MAX_HISTORY_LINES, MAX_NICK_CHARS};
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_flood_limit(None)
            .with_history(MAX_HISTORY_LINES);
        let mut server: std::boxed::Box<Server<crate::Inline<128>>> =
            std::boxed::Box::new(Server::new(config, Instant::ZERO));
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
        // A newcomer gets the banner, the topic and a full listing, and the runner is asked
        // for the lobby's history.
        let Ok(Admission::Accepted(late)) = server.handle_connect(Instant::ZERO) else {
            panic!("connect");
        };
        let (mut welcome, mut request) = (0, None);
        while let Some(output) = server.poll_output() {
            match output {
                Output::Send { bytes, .. } => welcome += bytes.len(),
                Output::History(asked) => request = Some(asked.clone()),
                _ => {}
            }
        }
        assert!(welcome <= OUTPUT_BYTES, "{welcome}");
        let request = request.expect("the lobby's history is asked for");
        assert_eq!(request.conn(), late);
        assert_eq!(request.limit(), MAX_HISTORY_LINES);
        // Each line of the answer is a step of its own, the longest line included.
        let long = "é".repeat(crate::MAX_LINE_BYTES / 2);
        let nick = format!("n{:0width$}", 0, width = MAX_NICK_CHARS - 1);
        let mut shown = 0;
        let answers = [HistoryAnswer::Begin { lines: 1 }]
            .into_iter()
            .chain((0..3).map(|seq| {
                HistoryAnswer::Line(HistoryLine {
                    seq,
                    at: Instant::ZERO,
                    kind: crate::LineKind::Action,
                    nick: &nick,
                    text: &long,
                    to: None,
                })
            }))
            .chain([HistoryAnswer::End]);
        for answer in answers {
            server
                .handle_history(Instant::ZERO, &request, answer)
                .unwrap();
            while let Some(output) = server.poll_output() {
                if let Output::Send { bytes, .. } = output {
                    shown += bytes.len();
                }
            }
        }
        assert!(shown > 3 * crate::MAX_LINE_BYTES, "{shown}");
        assert!(say(&mut server, late, "/ping\n") > 0, "the next step works");
    }

    #[test]
    fn ages_read_naturally() {
        use super::text::Ago;
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
