//! The state machine the runner drives: [`Server`], its configuration and its errors.

use core::fmt;

use crate::account::{AccountAnswer, AccountRequest};
use crate::claim::{ClaimAnswer, NickClaim};
use crate::config::Config;
use crate::dialect::text::Style;
use crate::dialect::{DisconnectReason, Step};
use crate::history::{HistoryAnswer, HistoryRequest};
use crate::motd::Motd;
use crate::output::{Audience, Cursor, Directory, Output, OutputQueue, Recipients, Record, Scope};
use crate::relay::{self, Applied, Incoming, Person, Target};
use crate::state::asks::Waitings;
use crate::state::flood::FloodBucket;
use crate::state::rooms::Rooms;
use crate::state::rooms::{RoomId, RoomMode, RoomName};
use crate::state::roster::Nickname;
use crate::state::roster::{ConnectionId, Queue, Roster};
#[cfg(feature = "alloc")]
use crate::storage::Heap;
use crate::storage::{Inline, Storage};
use crate::time::Instant;
use crate::wire::line::Framed;

/// Room a timeout step needs per connection it closes: a reply, a departure notice in each
/// dialect and a close, and its events: the departure, and each room it leaves empty.
const TIMEOUT_RECORDS: usize = 5 + crate::MAX_ROOMS_PER_PERSON;
const TIMEOUT_BYTES: usize = 1024 + crate::MAX_ROOMS_PER_PERSON * crate::MAX_ROOM_NAME_BYTES;

/// Room a greeting needs: the welcome, the news to the lobby in each dialect, the listing and
/// the lobby's history. Only one greeting is sent per step.
/// The most connections one timeout checks against the server-wide bans while a sweep goes
/// on (see `ServerBans`): a sweep of many connections takes several timeouts, not one long one.
const SWEEP_CHECKS: usize = 1024;

const GREETING_RECORDS: usize = crate::output::MAX_OUTPUTS;

/// A misuse of the API. A misbehaving peer never causes one: its faults become replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The handle is not (or no longer) a live connection: it was closed by the core, reported
    /// disconnected already, or never existed.
    UnknownConnection(ConnectionId),
    /// A `handle_*` call came before [`Server::poll_output`] was drained to `None`.
    OutputPending,
    /// The server was shut down with [`Server::handle_shutdown`].
    ShutDown,
    /// [`Server::handle_restore`] came after the first connection.
    RestoreTooLate,
    /// [`Server::handle_restore`] was given a room name that is not valid.
    RestoredRoomInvalid,
    /// [`Server::handle_restore`] was given more topics than [`MAX_TOPICS`](crate::MAX_TOPICS)
    /// or rooms than [`MAX_ROOMS`](crate::MAX_ROOMS).
    RestoreFull,
    /// [`Server::handle_claim`] answered a claim that no longer waits: its time ran out, or
    /// it is not the connection's claim. A runner that got the nickname gives it back.
    StaleClaim,
    /// [`Server::handle_account`] answered a request that no longer waits: its time ran out,
    /// its connection left, or it is not that connection's request.
    StaleAccount,
    /// [`Server::handle_relayed`] or [`Server::handle_person`] was given what does not pass
    /// the core's checks, or cannot be applied here: it came from elsewhere, and nothing of it
    /// was shown.
    Relayed(relay::Refused),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownConnection(id) => write!(f, "connection {id} is not live"),
            Self::OutputPending => f.write_str("poll_output must be drained before the next input"),
            Self::ShutDown => f.write_str("the server has been shut down"),
            Self::RestoreTooLate => f.write_str("restore comes before the first connection"),
            Self::RestoredRoomInvalid => f.write_str("a restored room name is not valid"),
            Self::RestoreFull => {
                f.write_str("more rooms or topics restored than there is room for")
            }
            Self::StaleClaim => f.write_str("the nickname claim answered no longer waits"),
            Self::StaleAccount => f.write_str("the account request answered no longer waits"),
            Self::Relayed(why) => write!(f, "refused what was relayed: {why}"),
        }
    }
}

impl core::error::Error for Error {}

/// The answer to [`Server::handle_connect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a refused connection must be sent its reply and closed"]
#[non_exhaustive]
pub enum Admission {
    /// The connection is in; its welcome is waiting in [`Server::poll_output`].
    Accepted(ConnectionId),
    /// The server is full: write these bytes to the connection, then close it.
    Refused(&'static [u8]),
    /// A server-wide ban names the address it comes from (see
    /// [`handle_connect_from`](Server::handle_connect_from)): write these bytes to it, then
    /// close it.
    Banned(&'static [u8]),
}

/// How far behind a client is, for [`Server::handle_backlog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backlog {
    /// Its queue passed the runner's soft bound: room messages are being skipped for it.
    Lagging,
    /// It has taken everything queued for it; `skipped` room messages were skipped since it
    /// began lagging.
    CaughtUp {
        /// How many.
        skipped: u64,
    },
}

/// How many bytes of its input [`Server::handle_input`] took, and whether the line it took
/// goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "bytes past the consumed count were not processed: feed them again after draining poll_output"]
pub struct Consumed {
    bytes: usize,
    more: bool,
    line: bool,
}

impl Consumed {
    const fn bytes_taken(bytes: usize) -> Self {
        Self {
            bytes,
            more: false,
            line: false,
        }
    }

    /// The number of bytes taken from the front of the input.
    pub fn bytes(self) -> usize {
        self.bytes
    }

    /// The line taken named several targets and only some are handled: after draining
    /// [`Server::poll_output`], call [`Server::handle_more`] for the next.
    pub fn more(self) -> bool {
        self.more
    }

    /// Whether the bytes taken ended a line (or a JSON object, or a line too long to handle):
    /// one line received, for a runner's counts. False for a partial line kept for later, for
    /// input held back, and for the further parts of a line handled in parts.
    pub fn line(self) -> bool {
        self.line
    }
}

/// Which protocol a connection speaks, once its first byte (for IRC, its first line) has
/// settled it: see [`Server::dialect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// Lines of text (`nc`, `telnet`, the built-in client).
    Plain,
    /// IRC: the first line was a registration command.
    Irc,
    /// The original client's JSON objects: the first byte was `{`.
    Json,
}

const FULL_PLAIN: &[u8] = b"*** Sorry, the server is full. Please try again later.\r\n";
const FULL_COLOUR: &[u8] =
    b"\x1b[33m***\x1b[0m Sorry, the server is full. Please try again later.\r\n";
const BANNED_PLAIN: &[u8] = b"*** You are banned from this server.\r\n";
const BANNED_COLOUR: &[u8] = b"\x1b[33m***\x1b[0m You are banned from this server.\r\n";

/// The chat server's whole state: its connections (at most its capacity), their sessions and
/// the roster, and the rooms. Lines said are not kept here: see [`history`](crate::history).
///
/// # Call order
///
/// Inputs are the `handle_*` methods; outputs are [`poll_output`](Self::poll_output) and
/// [`poll_timeout`](Self::poll_timeout). After every `handle_*` call the runner drains
/// `poll_output` until it returns `None`, carrying each output out in order, then arms a timer
/// for `poll_timeout` and calls [`handle_timeout`](Self::handle_timeout) when it fires. A
/// `handle_*` call made while outputs are pending returns [`Error::OutputPending`] and changes
/// nothing, so an output cannot be skipped by accident.
///
/// [`handle_input`](Self::handle_input) handles at most one line per call and says how many
/// bytes it took; feed the rest in further calls.
///
/// # Capacity and storage
///
/// `S` says where the table of connections is kept (see [`storage`](crate::storage)):
/// - `Server<Inline<N>>` ([`Server::new`]) holds up to `N` connections inside its own value and
///   never allocates: for firmware, a `static` or a `Box`.
/// - `Server<Heap>` ([`Server::with_capacity`], feature `alloc`) holds up to a capacity chosen
///   at start, in one allocation made then, and never allocates again.
///
/// Either way a connection past the capacity (or [`Config::max_clients`]) is refused with
/// [`Admission::Refused`], and the table's memory is written as connections first need it: up
/// to the most held at once, not up to the capacity.
///
/// # Bounds
///
/// Every bound is the capacity or a constant of this crate:
/// [`MAX_LINE_BYTES`](crate::MAX_LINE_BYTES) per connection for the partial line (in a pool
/// of line buffers with one for each connection, lent only while a partial line waits) and
/// [`MAX_ROOMS_PER_PERSON`](crate::MAX_ROOMS_PER_PERSON) membership cells, the table of
/// [`MAX_ROOMS`](crate::MAX_ROOMS) rooms and [`MAX_TOPICS`](crate::MAX_TOPICS) topics,
/// [`OUTPUT_BYTES`](crate::OUTPUT_BYTES) for one step's output, and [`TAG_BUFFERS`](crate::TAG_BUFFERS)
/// shared buffers for long IRC tag sections. The fixed part is some 1.2 MB (for
/// `Server<Heap>`, all but some 160 KB of it reserved on the heap and used as rooms, bans and the
/// like come), and each connection held costs about 0.8 KB more, and 0.5 KB more while a
/// partial line of its waits (docs/ARCHITECTURE.md has the measured sizes), so keep a
/// `Server` in a `Box` or a `static`.
#[derive(Debug)]
pub struct Server<S: Storage> {
    config: Config,
    roster: Roster<S>,
    rooms: Rooms<S>,
    /// Who left lately and the most users at once, for IRC's `WHOWAS` and `LUSERS`.
    past: crate::state::past::Past,
    /// Who watches which nickname (IRC's `MONITOR`).
    watches: crate::state::monitor::Watches<S>,
    out: OutputQueue,
    /// Account requests waiting for the runner's answer.
    account_asks: Waitings,
    /// Invitations into rooms, pending.
    invites: crate::state::moderation::Invites,
    /// When mutes with a duration lapse.
    mutes: crate::state::moderation::TimedMutes,
    /// The server-wide bans.
    server_bans: crate::state::moderation::ServerBans<S>,
    /// The accounts that are server operators.
    operators: crate::account::Operators,
    now: Instant,
    shut_down: bool,
    /// Whether a connection has come: restoring is over.
    connected: bool,
    /// The operator's message of the day (see [`Server::set_motd`]); `None`: the built-in one.
    motd: Option<Motd>,
}

/// What a runner's store hands back at start, to [`Server::handle_restore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Restored<'a> {
    /// A room's topic, who set it and when. The room is made if need be; a room with a topic
    /// stays while empty.
    Topic {
        /// The room.
        room: &'a str,
        /// The topic (cut to [`MAX_TOPIC_BYTES`](crate::MAX_TOPIC_BYTES)).
        topic: &'a str,
        /// Who set it.
        by: &'a str,
        /// When.
        at: Instant,
    },
    /// The sequence number of the last line kept: lines said from now on are numbered after
    /// it, so none is numbered like a kept one.
    LastSeq(u64),
    /// A registered room and the account it is registered to (see
    /// [`Event::RoomRegistered`](crate::Event::RoomRegistered)). The room is made if need be,
    /// and stays while empty.
    Founder {
        /// The room.
        room: &'a str,
        /// The account.
        account: &'a str,
    },
    /// A ban on a room, or an exception (see [`Event::Banned`](crate::Event::Banned)). The
    /// room is made if need be, and stays while empty. A ban that has lapsed is not restored.
    Ban {
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
    /// A server-wide ban (see [`Event::ServerBanned`](crate::Event::ServerBanned)). A ban that
    /// has lapsed is not restored.
    ServerBan {
        /// Who: `nick!user@host`, `$a:ACCOUNT`, an address or a network.
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
    /// A room's modes (see [`Event::RoomModes`](crate::Event::RoomModes)): restored only for a
    /// room that the restores before it made stay (registered, or with a topic or a ban), so
    /// give them last.
    RoomModes {
        /// The room.
        room: &'a str,
        /// The letters of the modes set without a value (`i`, `m`, `n`, `s`, `t`).
        modes: &'a str,
        /// Its key, if it has one.
        key: Option<&'a str>,
        /// The most people let in, if set.
        limit: Option<u32>,
    },
}

/// The longest notice of a room change from another server (a room's name, a mask and a
/// setter's name fit several times).
const TOLD_BYTES: usize = 400;

/// A server ban as kept, from what a store or another server said; `None` if `mask` is not
/// one. The setter's name and the reason are cut to their bounds.
fn server_ban(
    mask: &str,
    by: &str,
    at: Instant,
    until: Option<Instant>,
    reason: &str,
) -> Option<crate::state::moderation::ServerBan> {
    use crate::state::moderation::{BanTarget, MAX_SERVER_BAN_REASON_BYTES, ServerBan};
    let cut = crate::wire::line::cut;
    Some(ServerBan {
        target: BanTarget::parse(mask)?,
        by: heapless::String::try_from(cut(by, crate::state::nickname::MAX_NICK_BYTES))
            .unwrap_or_default(),
        at,
        until,
        reason: heapless::String::try_from(cut(reason, MAX_SERVER_BAN_REASON_BYTES))
            .unwrap_or_default(),
    })
}

impl<const N: usize> Server<Inline<N>> {
    /// A server for up to `N` connections kept inline, with no one connected, starting at
    /// `now`.
    pub fn new(config: Config, now: Instant) -> Self {
        Self::build(config, now, N)
    }
}

#[cfg(feature = "alloc")]
impl Server<Heap> {
    /// A server for up to `capacity` connections (people of other servers included, see
    /// [`relay`]), with no one connected, starting at `now`. Its table is allocated now, once;
    /// memory is used as connections come (see [`Heap`]). A capacity above
    /// [`MAX_CAPACITY`](crate::storage::MAX_CAPACITY) counts as that.
    ///
    /// # Panics
    ///
    /// When room for the table cannot be reserved (about 1.5 KB of address space a
    /// connection), as any allocation that fails.
    pub fn with_capacity(config: Config, now: Instant, capacity: usize) -> Self {
        Self::build(config, now, capacity)
    }
}

impl<S: Storage> Server<S> {
    fn build(config: Config, now: Instant, capacity: usize) -> Self {
        Self {
            config,
            roster: Roster::with_capacity(capacity),
            rooms: Rooms::new(now),
            past: crate::state::past::Past::new(),
            watches: crate::state::monitor::Watches::new(),
            out: OutputQueue::default(),
            account_asks: Waitings::new(),
            invites: crate::state::moderation::Invites::new(),
            mutes: crate::state::moderation::TimedMutes::new(),
            server_bans: crate::state::moderation::ServerBans::new(),
            operators: crate::account::Operators::NONE,
            now,
            shut_down: false,
            connected: false,
            motd: None,
        }
    }

    /// Sets the message of the day (see [`motd`](crate::motd)); `None` goes back to the
    /// built-in one. IRC clients are sent it on registering and on `MOTD`, plain-text users
    /// its first line after the welcome; nobody is sent it now. Callable at any time (a
    /// runner reloading it on SIGHUP, say): no output, no step.
    pub fn set_motd(&mut self, motd: Option<Motd>) {
        self.motd = motd;
    }

    /// Sets the accounts whose people are server operators (see
    /// [`Operators`](crate::account::Operators)), replacing the earlier list: someone identified
    /// as an account dropped from it is no longer one from their next line on. Callable at any
    /// time (a runner reloading its configuration, say): no output, no step.
    pub fn set_operators(&mut self, operators: crate::account::Operators) {
        self.operators = operators;
    }

    /// Changes the server's limits (see [`Limits`](crate::Limits)), for a runner reloading
    /// its configuration. Callable at any time, as [`set_motd`](Self::set_motd) is: no output,
    /// no step, nobody is told. A limit applies from the next step on, to what that step
    /// checks; what already happened stays:
    ///
    /// - `max_clients`, `max_room_members`: checked at the next connect or join; nobody is
    ///   turned out of a server or a room that is now over its limit.
    /// - `history`, `announce_limit`, `nick_grace`: used the next time they are needed.
    /// - `flood_limit`: every connection is charged by the new limit from its next line (a
    ///   bucket above the new burst is cut to it). Turned on, every connection starts with a
    ///   full bucket; turned off, a connection held back is let go at its deadline, as before.
    /// - `silence_timeout`, `greeting_delay`: for connections that come from now on; those
    ///   already waiting keep their deadlines (a silence timeout turned off lets them stay).
    /// - `ping_interval`, `ping_timeout`: an IRC client is next pinged by the new interval
    ///   once it has sent a line; one already pinged keeps its deadline to answer.
    pub fn set_limits(&mut self, limits: crate::config::Limits) {
        let flood_on = self.config.flood_limit.is_none() && limits.flood_limit.is_some();
        self.config = self.config.with_limits(limits);
        if let (true, Some(limit)) = (flood_on, limits.flood_limit) {
            let now = self.now;
            self.roster.for_each_live(|slot| {
                slot.connection.flood = FloodBucket::full(limit, now);
            });
        }
    }

    /// Puts back what a store kept from an earlier run (see [`Restored`]), before the first
    /// connection; no output, nobody is told.
    pub fn handle_restore(&mut self, restored: Restored<'_>) -> Result<(), Error> {
        if self.connected {
            return Err(Error::RestoreTooLate);
        }
        match restored {
            Restored::Topic {
                room,
                topic,
                by,
                at,
            } => {
                let name = RoomName::new(room).map_err(|_| Error::RestoredRoomInvalid)?;
                let id = match self.rooms.find(room) {
                    Some(id) => id,
                    None => self
                        .rooms
                        .create(name, self.now)
                        .map_err(|_| Error::RestoreFull)?,
                };
                let topic = crate::wire::line::cut(topic, crate::MAX_TOPIC_BYTES);
                self.rooms
                    .set_topic(id, topic, by, at)
                    .map_err(|_| Error::RestoreFull)?;
                // A restored topic that was empty leaves an empty room with none.
                self.rooms.remove_if_empty(id);
            }
            Restored::LastSeq(last) => self.rooms.continue_seq_after(last),
            Restored::Founder { room, account } => {
                let account = Nickname::new(account).map_err(|_| Error::RestoredRoomInvalid)?;
                let id = self.restored_room(room)?;
                self.rooms
                    .set_founder(id, Some(&account))
                    .map_err(|_| Error::RestoreFull)?;
            }
            Restored::Ban {
                room,
                list,
                mask,
                by,
                at,
                until,
            } => {
                if mask.is_empty() || mask.len() > crate::state::rooms::MAX_BAN_MASK_BYTES {
                    return Err(Error::RestoredRoomInvalid);
                }
                // A ban that lapsed while the server was down is not restored.
                if until.is_some_and(|until| until <= self.now) {
                    return Ok(());
                }
                let id = self.restored_room(room)?;
                self.rooms
                    .ban(id, list, mask, by, at, until, self.now)
                    .map_err(|_| Error::RestoreFull)?;
                self.rooms.remove_if_empty(id);
            }
            Restored::ServerBan {
                mask,
                by,
                at,
                until,
                reason,
            } => {
                if until.is_some_and(|until| until <= self.now) {
                    return Ok(());
                }
                let ban =
                    server_ban(mask, by, at, until, reason).ok_or(Error::RestoredRoomInvalid)?;
                self.server_bans
                    .set(ban, self.now)
                    .map_err(|_| Error::RestoreFull)?;
            }
            Restored::RoomModes {
                room,
                modes,
                key,
                limit,
            } => {
                let Some(id) = self.rooms.find(room) else {
                    return Ok(());
                };
                let key = match key.map(crate::state::rooms::room_key) {
                    Some(None) => return Err(Error::RestoredRoomInvalid),
                    Some(Some(key)) => Some(key),
                    None => None,
                };
                let mut flags = heapless::Vec::<RoomMode, { RoomMode::ALL.len() }>::new();
                for letter in modes.chars() {
                    let mode = RoomMode::of_letter(letter).ok_or(Error::RestoredRoomInvalid)?;
                    let _ = flags.push(mode);
                }
                self.rooms
                    .set_key(id, key.as_ref())
                    .map_err(|_| Error::RestoreFull)?;
                if let Some(info) = self.rooms.get_mut(id) {
                    for mode in RoomMode::ALL {
                        info.set(mode, flags.contains(&mode));
                    }
                    info.limit = limit.and_then(core::num::NonZeroU32::new);
                }
            }
        }
        Ok(())
    }

    /// The room called `room` for a restore, made if need be.
    fn restored_room(&mut self, room: &str) -> Result<RoomId, Error> {
        let name = RoomName::new(room).map_err(|_| Error::RestoredRoomInvalid)?;
        match self.rooms.find(room) {
            Some(id) => Ok(id),
            None => self
                .rooms
                .create(name, self.now)
                .map_err(|_| Error::RestoreFull),
        }
    }

    // ----- Getters -----

    /// The most connections (and people of other servers) the server holds at once: `N` for
    /// `Inline<N>`, the capacity it was made with for `Heap`. [`Config::max_clients`] may
    /// limit connections below it.
    pub fn capacity(&self) -> usize {
        self.roster.capacity()
    }

    /// The account the room called `room` is registered to, if it is (see
    /// [`Event::RoomRegistered`](crate::Event::RoomRegistered)).
    pub fn founder(&self, room: &str) -> Option<&Nickname> {
        self.rooms.founder_of(self.rooms.find(room)?)
    }

    /// The account `conn` is identified as, as it was registered (for someone of another
    /// server, as their server said), if any.
    pub fn account(&self, conn: ConnectionId) -> Option<&Nickname> {
        self.roster.account(conn)
    }

    /// The account the person called `nick` (here or on another server) is identified as, if
    /// any: what a runner keeps a private message under (see
    /// [`HistoryTarget::Private`](crate::HistoryTarget::Private)), asked right after its
    /// [`Event::Private`](crate::Event::Private).
    pub fn account_of(&self, nick: &str) -> Option<&Nickname> {
        let id = self.roster.find(nick)?;
        self.roster.account(id)
    }

    /// The number of live connections.
    pub fn online(&self) -> usize {
        self.roster.len()
    }

    /// The configuration the server was made with, with the limits set since
    /// ([`set_limits`](Self::set_limits)).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The nickname `conn` chose; `None` while it goes by `anonymous-N`, or if `conn` is not
    /// live.
    pub fn nickname(&self, conn: ConnectionId) -> Option<&Nickname> {
        self.roster.get(conn)?.person.nick.as_ref()
    }

    /// The rooms `conn` is in, by name, in no particular order (none if `conn` is not live).
    pub fn rooms_of(&self, conn: ConnectionId) -> impl Iterator<Item = &RoomName> + '_ {
        self.roster
            .rooms_of(conn)
            .filter_map(|room| Some(self.rooms.get(room)?.name))
    }

    /// Whether `conn` has `status` (operator, voice, muted) in the room called `room`.
    pub fn has_status(&self, conn: ConnectionId, room: &str, status: relay::Status) -> bool {
        self.rooms
            .find(room)
            .is_some_and(|room| self.roster.has(conn, room, status))
    }

    /// The connection here that goes by the nickname `nick`, if any.
    pub fn find_nickname(&self, nick: &str) -> Option<ConnectionId> {
        Nickname::new(nick).ok()?;
        self.roster.find(nick).filter(|&conn| self.is_local(conn))
    }

    /// The connections here in the room called `room` (ASCII case ignored); none if there is
    /// no such room. (People on other servers are not connections.) The order is the order
    /// they joined, except on a server whose member tables outgrow the caches: there, once
    /// sends have walked lists joined out of the tables' order often enough, every such list
    /// is put in that order, to keep sends fast. Take it as no order.
    pub fn members(&self, room: &str) -> impl Iterator<Item = ConnectionId> + '_ {
        self.rooms
            .find(room)
            .into_iter()
            .flat_map(|room| self.roster.members_of(room))
            .filter(|&conn| self.is_local(conn))
    }

    /// `conn`'s away message, if it is away.
    pub fn away(&self, conn: ConnectionId) -> Option<&str> {
        self.roster.away(conn)
    }

    /// The dialect `conn` speaks; `None` before its first byte (an IRC client is [`Dialect::Plain`]
    /// until its first line shows it registering), or if `conn` is not live.
    pub fn dialect(&self, conn: ConnectionId) -> Option<Dialect> {
        use crate::wire::line::Dialect as Framing;
        match self.roster.get(conn)?.connection.framer.dialect() {
            Framing::Undecided => None,
            Framing::Plain => Some(Dialect::Plain),
            Framing::Irc => Some(Dialect::Irc),
            Framing::Json => Some(Dialect::Json),
        }
    }

    /// How many rooms there are now, the lobby and rooms kept for their topic included (and,
    /// in a cluster, rooms known here only through people on other servers).
    pub fn rooms(&self) -> usize {
        self.rooms.count()
    }

    /// How many people on other servers are known here (see [`relay::Person`]).
    pub fn people_elsewhere(&self) -> usize {
        self.roster.remote_count()
    }

    // ----- Inputs -----

    /// A new connection arrived. Its welcome (and the notice to everyone else) is queued, or,
    /// when its [capacity](Self::capacity) (or [`Config::max_clients`]) is reached, the answer is
    /// [`Admission::Refused`].
    pub fn handle_connect(&mut self, now: Instant) -> Result<Admission, Error> {
        self.connect(now, None)
    }

    /// A new connection from `peer`: as [`handle_connect`](Self::handle_connect), and a
    /// connection from an address a server-wide ban names is refused (with a line saying so).
    /// A runner that knows its peers' addresses calls this one.
    pub fn handle_connect_from(
        &mut self,
        now: Instant,
        peer: core::net::IpAddr,
    ) -> Result<Admission, Error> {
        self.connect(now, Some(peer))
    }

    fn connect(
        &mut self,
        now: Instant,
        peer: Option<core::net::IpAddr>,
    ) -> Result<Admission, Error> {
        self.begin_step(now)?;
        self.connected = true;
        let deadline = self
            .config
            .silence_timeout
            .map(|timeout| self.now.saturating_add(timeout));
        let full = Admission::Refused(if self.config.colour {
            FULL_COLOUR
        } else {
            FULL_PLAIN
        });
        if self.roster.len() >= self.config.max_clients {
            return Ok(full);
        }
        if let Some(peer) = peer
            && self
                .server_bans
                .holding(self.now)
                .any(|ban| ban.target.matches("", None, Some(peer)))
        {
            return Ok(Admission::Banned(if self.config.colour {
                BANNED_COLOUR
            } else {
                BANNED_PLAIN
            }));
        }
        let Some(conn) = self.roster.insert(deadline) else {
            return Ok(full);
        };
        if let Some(slot) = self.roster.get_mut(conn) {
            slot.connection.peer = peer;
        }
        if let (Some(limit), Some(slot)) = (self.config.flood_limit, self.roster.get_mut(conn)) {
            slot.connection.flood = FloodBucket::full(limit, self.now);
        }
        if self.config.greeting_delay.is_zero() {
            self.hub().greet(conn);
        } else {
            let deadline = self.now.saturating_add(self.config.greeting_delay);
            self.roster.enqueue(Queue::Greeting, conn, deadline);
        }
        Ok(Admission::Accepted(conn))
    }

    /// Bytes arrived from `conn`. Takes bytes up to and including the first complete line (or
    /// the point where a line grew too long), handles it, and returns how many bytes it took.
    /// With no complete line in `bytes`, takes them all and keeps the partial line.
    ///
    /// It takes nothing, returning `Consumed` of 0, while flood control holds the connection
    /// back (see [`FloodLimit`](crate::FloodLimit)), or while its IRC `OPER` waits for the
    /// answer to its account request (so that the answer comes before anything said after
    /// it, as IRC clients expect): keep the bytes and offer them again after
    /// [`Output::Resume`].
    ///
    /// A line naming several targets (IRC's `JOIN #a,#b`) is handled one target per step, so
    /// that each step's output stays bounded: the call that takes the line handles its first
    /// target and says [`Consumed::more`]; then call [`handle_more`](Self::handle_more) until
    /// it no longer does, before offering more bytes.
    pub fn handle_input(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        bytes: &[u8],
    ) -> Result<Consumed, Error> {
        self.begin_step(now)?;
        if self
            .roster
            .get(conn)
            .is_some_and(|slot| slot.connection.framer.is_ready())
        {
            // A runner that missed `more`: the rest of the line comes before any new byte.
            return Ok(self.continue_line(conn));
        }
        if self.roster.waits(Queue::Throttled, conn) {
            // Held back. The first time in an episode that input is actually waiting, say so.
            if let (Some(limit), Some(slot)) = (self.config.flood_limit, self.roster.get_mut(conn))
                && !bytes.is_empty()
                && !core::mem::replace(&mut slot.connection.flood.warned, true)
            {
                self.hub().slowed(conn, limit);
            }
            return Ok(Consumed::bytes_taken(0));
        }
        if self
            .account_asks
            .iter()
            .any(|waiting| waiting.conn == conn && waiting.via == crate::state::asks::Via::Oper)
        {
            // `OPER` is answered first; its answer resumes the connection.
            return Ok(Consumed::bytes_taken(0));
        }
        let (used, framed) = self
            .roster
            .feed(conn, bytes)
            .ok_or(Error::UnknownConnection(conn))?;
        if framed == Framed::Pending {
            return Ok(Consumed::bytes_taken(used));
        }
        let slot = self
            .roster
            .get_mut(conn)
            .ok_or(Error::UnknownConnection(conn))?;
        if !core::mem::replace(&mut slot.connection.spoke, true) {
            self.settle_dialect(conn, framed == Framed::Line);
        }
        let Some(slot) = self.roster.get_mut(conn) else {
            return Ok(Consumed::bytes_taken(used));
        };
        let irc = slot.person.reads_irc();
        let dialect = slot.connection.framer.dialect();
        match framed {
            Framed::Pending => {}
            Framed::TooLong => self.hub().too_long(conn, dialect),
            Framed::Line => {
                let mut line = self.roster.take_line(conn);
                if irc {
                    let tags = self.roster.take_tags(conn);
                    self.hub().irc_line(conn, tags.as_deref(), &mut line);
                } else {
                    self.hub().line(conn, &mut line);
                }
            }
            Framed::Object => {
                let object = self.roster.take_line(conn);
                self.hub().json(conn, &object);
            }
            Framed::Stray => {
                self.hub().stray(conn);
                return Ok(Consumed::bytes_taken(used));
            }
        }
        let registered = self
            .roster
            .get(conn)
            .and_then(|slot| slot.connection.registration)
            .map(|registration| registration.registered);
        if registered != Some(false) {
            self.roster.dequeue(Queue::Silent, conn);
        }
        if let (Some(true), Some(interval)) = (registered, self.config.ping_interval) {
            // Any line is an answer, and restarts the quiet period.
            self.roster.dequeue(Queue::Pinged, conn);
            self.roster.dequeue(Queue::Idle, conn);
            let deadline = self.now.saturating_add(interval);
            self.roster.enqueue(Queue::Idle, conn, deadline);
        }
        self.charge_line(conn);
        self.check_suspects();
        Ok(Consumed {
            bytes: used,
            more: self.has_more(conn),
            line: true,
        })
    }

    /// Goes on with a line that named several targets: handles the next one. Call it after
    /// [`handle_input`](Self::handle_input) or `handle_more` said [`Consumed::more`], until it
    /// no longer does; otherwise it does nothing. Flood control counts the line once, when it
    /// was taken, so the parts are never held back.
    pub fn handle_more(&mut self, now: Instant, conn: ConnectionId) -> Result<Consumed, Error> {
        self.begin_step(now)?;
        if self.roster.get(conn).is_none() {
            return Err(Error::UnknownConnection(conn));
        }
        Ok(self.continue_line(conn))
    }

    /// Whether a line of `conn`'s waits to be handled in parts.
    fn has_more(&self, conn: ConnectionId) -> bool {
        self.roster
            .get(conn)
            .is_some_and(|slot| slot.connection.framer.is_ready())
    }

    /// Handles the next part of a line put back to be handled in parts, if there is one.
    fn continue_line(&mut self, conn: ConnectionId) -> Consumed {
        let Some(slot) = self.roster.get_mut(conn) else {
            return Consumed::bytes_taken(0);
        };
        if !slot.connection.framer.is_ready() {
            return Consumed::bytes_taken(0);
        }
        // Only the IRC dialect puts lines back.
        let mut line = self.roster.take_line(conn);
        self.hub().irc_line(conn, None, &mut line);
        self.check_suspects();
        Consumed {
            bytes: 0,
            more: self.has_more(conn),
            line: false,
        }
    }

    /// A connection's first line (or object) settles its dialect: IRC if it is a registration
    /// command, otherwise the text dialect, greeted now if it has not been.
    fn settle_dialect(&mut self, conn: ConnectionId, line: bool) {
        let Some(slot) = self.roster.get(conn) else {
            return;
        };
        let registration = line
            && slot.connection.framer.dialect() != crate::wire::line::Dialect::Json
            && crate::dialect::is_registration(self.roster.peek_line(conn));
        let greeted = slot.connection.greeted;
        self.roster.dequeue(Queue::Greeting, conn);
        if registration {
            self.roster.speak_irc(conn);
        } else if !greeted {
            self.hub().greet(conn);
        }
    }

    /// `conn` went away (closed by its peer, a socket error, or dropped by the runner). The
    /// others are told; a partial line it left is discarded.
    pub fn handle_disconnect(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        reason: DisconnectReason,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        if self.roster.get(conn).is_none() {
            return Err(Error::UnknownConnection(conn));
        }
        self.hub().disconnected(conn, reason);
        Ok(())
    }

    /// Time has passed: lets held-back connections go on ([`Output::Resume`]) and closes
    /// connections whose silence deadline has come. Handles as many as one step has room for;
    /// [`poll_timeout`](Self::poll_timeout) then says to call again at once if more are due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.begin_step(now)?;
        while let Some((deadline, conn)) = self.roster.first(Queue::Greeting) {
            if deadline > self.now || self.out.room().0 < GREETING_RECORDS {
                break;
            }
            self.roster.dequeue(Queue::Greeting, conn);
            self.hub().greet(conn);
        }
        while let Some((deadline, conn)) = self.roster.first(Queue::Throttled) {
            if deadline > self.now || self.out.room().0 < TIMEOUT_RECORDS {
                break;
            }
            self.roster.dequeue(Queue::Throttled, conn);
            if let (Some(limit), Some(slot)) = (self.config.flood_limit, self.roster.get_mut(conn))
            {
                slot.connection.flood.release(limit, deadline, self.now);
            }
            self.out.resume(conn);
        }
        let timeout = self.config.ping_timeout;
        if self.config.ping_interval.is_some() {
            while let Some((deadline, conn)) = self.roster.first(Queue::Idle) {
                if deadline > self.now || self.out.room().0 < TIMEOUT_RECORDS {
                    break;
                }
                self.roster.dequeue(Queue::Idle, conn);
                let answer_by = self.now.saturating_add(timeout);
                self.roster.enqueue(Queue::Pinged, conn, answer_by);
                self.hub().ping(conn);
            }
        }
        // Also with pings turned off since (`set_limits`): a client pinged has its deadline,
        // and `poll_timeout` counts it.
        while let Some((deadline, conn)) = self.roster.first(Queue::Pinged) {
            let (records, bytes) = self.out.room();
            if deadline > self.now || records < TIMEOUT_RECORDS || bytes < TIMEOUT_BYTES {
                break;
            }
            self.hub().ping_timeout(conn, timeout);
        }
        while let Some((deadline, conn)) = self.roster.first(Queue::Claiming) {
            if deadline > self.now || self.out.room().0 < TIMEOUT_RECORDS {
                break;
            }
            self.roster.dequeue(Queue::Claiming, conn);
            let claimed = self.roster.take_claiming(conn);
            if let Some(nick) = claimed {
                // No answer in time is an answer.
                self.hub()
                    .claim_answered(conn, nick, ClaimAnswer::Unavailable);
            }
        }
        while let Some((deadline, conn)) = self.roster.first(Queue::Account) {
            if deadline > self.now || self.out.room().0 < TIMEOUT_RECORDS {
                break;
            }
            self.roster.dequeue(Queue::Account, conn);
            let at = self.account_asks.iter().position(|w| w.conn == conn);
            if let Some(waiting) = at.map(|at| self.account_asks.swap_remove(at)) {
                // No answer in time is an answer.
                self.hub()
                    .account_answered(waiting, AccountAnswer::Unavailable);
            }
        }
        while let Some((deadline, conn)) = self.roster.first(Queue::Grace) {
            let (records, bytes) = self.out.room();
            if deadline > self.now || records < TIMEOUT_RECORDS || bytes < TIMEOUT_BYTES {
                break;
            }
            self.roster.dequeue(Queue::Grace, conn);
            self.hub().grace_over(conn);
        }
        // Everyone online, checked against a server-wide ban just set, from the last in the
        // list down (one who leaves gives their place to the last, checked already), at most
        // SWEEP_CHECKS a call; the next timeout is at once while the sweep goes on.
        let mut checks = 0;
        while let Some(at) = self.server_bans.sweep_at() {
            let (records, bytes) = self.out.room();
            if records < TIMEOUT_RECORDS || bytes < TIMEOUT_BYTES || checks == SWEEP_CHECKS {
                break;
            }
            checks += 1;
            let (live, slots) = self.roster.parts();
            let Some(conn) = at
                .checked_sub(1)
                .and_then(|at| live.get(at.min(live.len().saturating_sub(1))))
                .and_then(|&index| Some(slots.get(index as usize)?.id(index)))
            else {
                self.server_bans.sweep_on(true);
                break;
            };
            self.hub().put_out_if_banned(conn);
            self.server_bans.sweep_on(false);
        }
        self.check_suspects();
        let Some(timeout) = self.config.silence_timeout else {
            return Ok(());
        };
        while let Some((deadline, conn)) = self.roster.first(Queue::Silent) {
            let (records, bytes) = self.out.room();
            if deadline > self.now || records < TIMEOUT_RECORDS || bytes < TIMEOUT_BYTES {
                break;
            }
            self.hub().silent(conn, timeout);
        }
        Ok(())
    }

    /// How far behind a client is, as the runner sees from the bytes waiting for it. While
    /// it is [`Backlog::Lagging`] it shows as lagging in `/list`; when it has caught up it is
    /// told how many room messages ([`Delivery::Broadcast`](crate::Delivery)) were skipped.
    pub fn handle_backlog(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        backlog: Backlog,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        let slot = self
            .roster
            .get_mut(conn)
            .ok_or(Error::UnknownConnection(conn))?;
        match backlog {
            Backlog::Lagging => slot.connection.lagging = true,
            Backlog::CaughtUp { skipped } => self.hub().caught_up(conn, skipped),
        }
        Ok(())
    }

    /// A private message from `from` ([`Delivery::Private`](crate::Delivery)) could not be
    /// queued for `to`, which is too far behind: `from` is told. `to` may be gone already.
    pub fn handle_undelivered(
        &mut self,
        now: Instant,
        from: ConnectionId,
        to: ConnectionId,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        if self.roster.get(from).is_none() {
            return Err(Error::UnknownConnection(from));
        }
        self.hub().undelivered(from, to);
        Ok(())
    }

    /// Something `from` said (an [`Output::Relay`]) could not be relayed, for `reason` (one
    /// line, shown as it is given, control characters escaped): `from` is told. `to` and
    /// `kind` are the relayed line's: a private message to someone on another server was not
    /// delivered, or a room's new topic ([`relay::Kind::Topic`])
    /// was not set; a topic is never set on one server alone, or the servers would disagree
    /// on it from then on. [`Error::UnknownConnection`] if `from` has gone.
    pub fn handle_relay_failed(
        &mut self,
        now: Instant,
        from: ConnectionId,
        to: Target<'_>,
        kind: relay::Kind,
        reason: &str,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        if self.roster.get(from).is_none() {
            return Err(Error::UnknownConnection(from));
        }
        let cut_name = |name| crate::wire::line::cut(name, crate::MAX_LINE_BYTES / 4);
        let to = match to {
            Target::Room(room) => Target::Room(cut_name(room)),
            Target::Person { nick, node } => Target::Person {
                nick: cut_name(nick),
                node: cut_name(node),
            },
        };
        let reason = crate::wire::line::cut(reason, crate::MAX_LINE_BYTES / 2);
        self.hub().relay_failed(from, to, kind, reason);
        Ok(())
    }

    /// One part of the answer to `request`, from [`Output::History`]: see
    /// [`history`](crate::history) for the order. The asker is shown it in their dialect;
    /// [`Error::UnknownConnection`] if they have gone meanwhile (nothing to do then).
    pub fn handle_history(
        &mut self,
        now: Instant,
        request: &HistoryRequest,
        answer: HistoryAnswer<'_>,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        if self.roster.get(request.conn()).is_none() {
            return Err(Error::UnknownConnection(request.conn()));
        }
        self.hub().history(request, answer);
        Ok(())
    }

    /// The answer to `claim`, from [`Output::Claim`] (see [`claim`](crate::claim)): the person
    /// takes the nickname, or is told why not. [`Error::UnknownConnection`] if they have gone,
    /// [`Error::StaleClaim`] if the claim no longer waits; either way a nickname granted for it
    /// is not taken here, and the runner gives it back.
    pub fn handle_claim(
        &mut self,
        now: Instant,
        claim: &NickClaim,
        answer: ClaimAnswer,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        let conn = claim.conn();
        if self.roster.get(conn).is_none() {
            return Err(Error::UnknownConnection(conn));
        }
        if self.roster.claiming(conn) != Some(claim.nick()) {
            return Err(Error::StaleClaim);
        }
        self.roster.take_claiming(conn);
        self.roster.dequeue(Queue::Claiming, conn);
        self.hub()
            .claim_answered(conn, claim.nick().clone(), answer);
        self.check_suspects();
        Ok(())
    }

    /// The answer to `request`, from [`Output::Account`] (see [`account`](crate::account)):
    /// the asker is told how it went, and identified as the account if it was made or the
    /// password was right. [`Error::StaleAccount`] if the request no longer waits (its time
    /// ran out, or its connection left); a runner that made an account for it keeps it.
    pub fn handle_account(
        &mut self,
        now: Instant,
        request: &AccountRequest,
        answer: AccountAnswer,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        let conn = request.conn();
        let at = self.account_asks.iter().position(|waiting| {
            waiting.conn == conn
                && waiting.kind == request.ask().kind()
                && waiting.account == *request.account()
        });
        let Some(mut waiting) = at.map(|at| self.account_asks.swap_remove(at)) else {
            return Err(Error::StaleAccount);
        };
        waiting.account = request.registered_spelling().clone();
        self.roster.dequeue(Queue::Account, conn);
        self.hub().account_answered(waiting, answer);
        self.check_suspects();
        Ok(())
    }

    /// `conn` goes by `nick`, which is an account's name (the runner knows the accounts: it
    /// tells the core after an [`Event::Renamed`](crate::Event::Renamed) or
    /// [`Event::Arrived`](crate::Event::Arrived) to a registered name). Unless `conn` is
    /// identified as it, it is told to identify within
    /// [`Config::nick_grace`](crate::Config), or is renamed `anonymous-N` when that has
    /// passed. Nothing happens if it goes by another name by now, or accounts are off.
    /// [`Error::UnknownConnection`] if it has gone.
    pub fn handle_nick_registered(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        nick: &str,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        if self.roster.get(conn).is_none() {
            return Err(Error::UnknownConnection(conn));
        }
        self.hub().nick_registered(conn, nick);
        Ok(())
    }

    /// The nickname `nick`, granted to `conn` by an earlier claim (see
    /// [`claim`](crate::claim)), is no longer its: the runner's claims found it someone else's
    /// (another server took it while this one could not reach the others). If `conn` still
    /// goes by it (ASCII case ignored), it is `anonymous-N` again and is told why; those who
    /// share a room with it see the rename, and an [`Event::Renamed`](crate::Event::Renamed)
    /// follows. Nothing happens if it goes by another name by now.
    /// [`Error::UnknownConnection`] if it has gone.
    pub fn handle_nick_lost(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        nick: &str,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        if self.roster.get(conn).is_none() {
            return Err(Error::UnknownConnection(conn));
        }
        self.hub().nick_lost(conn, nick);
        Ok(())
    }

    /// A line from elsewhere (see [`relay`]): a room line in its place in the
    /// room's order (said on another server, or here and handed out as [`Output::Relay`]), or
    /// a private message from someone on another server. A room line is shown to the members
    /// here and comes out as an [`Event::Said`](crate::Event::Said) numbered `line.seq`; a
    /// room nobody here is in gets only that event. Hand a room's lines over in their order.
    /// [`Error::Relayed`] if the line does not pass the core's checks, or a private message's
    /// sender or recipient is not known here.
    pub fn handle_relayed(&mut self, now: Instant, line: &Incoming<'_>) -> Result<(), Error> {
        self.begin_step(now)?;
        line.check().map_err(Error::Relayed)?;
        match line.to {
            Target::Room(room) => self.hub().relayed(line, room),
            Target::Person { nick, .. } => self
                .hub()
                .relayed_private(line, nick)
                .map_err(Error::Relayed)?,
        }
        Ok(())
    }

    /// What someone on another server is now (see [`relay::Person`]):
    /// the people here are shown what changed as if it happened here, one change per call
    /// (`Applied::More`: drain the output and call again with the same person). Those changes
    /// are no [`Output::Event`]: they are news on the person's own server.
    /// [`Error::Relayed`] if `person` does not pass the core's checks, their name is taken
    /// here, or there is no room for them.
    pub fn handle_person(&mut self, now: Instant, person: &Person<'_>) -> Result<Applied, Error> {
        self.begin_step(now)?;
        person.check().map_err(Error::Relayed)?;
        self.hub().remote_person(person).map_err(Error::Relayed)
    }

    /// An operator's order from the server called `node` (see [`relay::Order`]): carried out
    /// if its person is in the room here, for real if they are connected here (they leave
    /// the room, or get or lose the status), and shown to the room's members here. An order
    /// about someone not in the room does nothing. [`Error::Relayed`] if the order does not
    /// pass the core's checks.
    pub fn handle_order(
        &mut self,
        now: Instant,
        node: &str,
        order: &relay::Order<'_>,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        order.check_from(node).map_err(Error::Relayed)?;
        self.hub().obey(node, order);
        Ok(())
    }

    /// Someone on the server called `node` (id `id` there, as in
    /// [`relay::Person`]) went offline, for `reason` (shown as the
    /// reason for their quit). Nothing happens if they were not known here.
    pub fn handle_person_gone(
        &mut self,
        now: Instant,
        node: &str,
        id: u64,
        reason: &str,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        self.hub().remote_gone(node, id, reason);
        Ok(())
    }

    /// The server called `node` is gone (it stopped, or it is out of reach for good): its
    /// people leave, with `reason`, one per call (`Applied::More`: drain the output and call
    /// again).
    pub fn handle_node_lost(
        &mut self,
        now: Instant,
        node: &str,
        reason: &str,
    ) -> Result<Applied, Error> {
        self.begin_step(now)?;
        Ok(self.hub().node_lost(node, reason))
    }

    /// A server-wide ban set or lifted on another server of a cluster, as the runner heard it
    /// (see [`relay`]). Applied as one set here would be: everyone online it names is put out,
    /// a few at each timeout, and whoever comes later is refused; but no
    /// [`Event::ServerBanned`](crate::Event::ServerBanned) or
    /// [`Event::ServerUnbanned`](crate::Event::ServerUnbanned) comes out: the server where it
    /// was made told of it. A ban that has lapsed is ignored. `Ok(true)` if it changed the
    /// bans here (`false`: the same ban was there already, or none to lift);
    /// [`Error::Relayed`] if its mask is not one, or the bans are full.
    pub fn handle_server_ban(
        &mut self,
        now: Instant,
        change: relay::ServerBanChange<'_>,
    ) -> Result<bool, Error> {
        use crate::state::moderation::BanTarget;
        self.begin_step(now)?;
        match change {
            relay::ServerBanChange::Set {
                mask,
                by,
                at,
                until,
                reason,
            } => {
                let ban = server_ban(mask, by, at, until, reason)
                    .ok_or(Error::Relayed(relay::Refused::BanMask))?;
                if until.is_some_and(|until| until <= self.now) {
                    return Ok(false);
                }
                let changed = self
                    .server_bans
                    .set(ban, self.now)
                    .map_err(|_| Error::Relayed(relay::Refused::BansFull))?;
                if changed {
                    self.server_bans.start_sweep(self.roster.len());
                }
                Ok(changed)
            }
            relay::ServerBanChange::Lifted { mask } => {
                let target =
                    BanTarget::parse(mask).ok_or(Error::Relayed(relay::Refused::BanMask))?;
                Ok(self.server_bans.lift(&target).is_some())
            }
        }
    }

    /// A change to a room's order made on another server of a cluster (see [`relay`]),
    /// applied here as there: the room is registered (made if need be; it stays while empty),
    /// or no longer; its modes, key and limit set; a ban set or lifted. The members here are
    /// told with a notice. Modes and bans are applied to a room that is here (registered, or
    /// with someone of any server in it; an unregistered room that is not here has no order
    /// to keep). No event comes out: the server where it was made told of it. `Ok(true)` if it changed
    /// anything here; [`Error::Relayed`] if it is not valid or does not fit.
    pub fn handle_room_change(
        &mut self,
        now: Instant,
        change: relay::RoomChange<'_>,
    ) -> Result<bool, Error> {
        use core::fmt::Write as _;
        self.begin_step(now)?;
        let refused = Error::Relayed(relay::Refused::RoomChange);
        let (room, told) = match change {
            relay::RoomChange::Registered { room, founder } => {
                let founder = match founder {
                    Some(name) => Some(Nickname::new(name).map_err(|_| refused)?),
                    None => None,
                };
                let id = match (self.rooms.find(room), &founder) {
                    (Some(id), _) => id,
                    (None, Some(_)) => {
                        let id = self.restored_room(room).map_err(|_| refused)?;
                        // News for a runner: a room that came to be here (its topic, say, is
                        // to be fetched).
                        self.hub()
                            .publish(&crate::dialect::Happened::RoomCreated { room: id });
                        id
                    }
                    (None, None) => return Ok(false),
                };
                if self.rooms.founder_of(id) == founder.as_ref() {
                    return Ok(false);
                }
                self.rooms
                    .set_founder(id, founder.as_ref())
                    .map_err(|_| refused)?;
                self.rooms.remove_if_empty(id);
                let mut told = heapless::String::<TOLD_BYTES>::new();
                let _ = match &founder {
                    Some(founder) => write!(told, "Registered to {founder} (on another server)."),
                    None => write!(told, "No longer registered (on another server)."),
                };
                (room, told)
            }
            relay::RoomChange::Modes {
                room,
                modes,
                key,
                limit,
            } => {
                let Some(id) = self.rooms.find(room) else {
                    return Ok(false);
                };
                let key = match key.map(crate::state::rooms::room_key) {
                    Some(None) => return Err(refused),
                    Some(Some(key)) => Some(key),
                    None => None,
                };
                let mut flags = heapless::Vec::<RoomMode, { RoomMode::ALL.len() }>::new();
                for letter in modes.chars() {
                    let _ = flags.push(RoomMode::of_letter(letter).ok_or(refused)?);
                }
                let limit = limit.and_then(core::num::NonZeroU32::new);
                let same = self.rooms.key_of(id) == key.as_deref()
                    && self.rooms.get_mut(id).is_some_and(|info| {
                        info.limit == limit
                            && RoomMode::ALL
                                .into_iter()
                                .all(|mode| info.has(mode) == flags.contains(&mode))
                    });
                if same {
                    return Ok(false);
                }
                self.rooms.set_key(id, key.as_ref()).map_err(|_| refused)?;
                if let Some(info) = self.rooms.get_mut(id) {
                    for mode in RoomMode::ALL {
                        info.set(mode, flags.contains(&mode));
                    }
                    info.limit = limit;
                }
                let mut told = heapless::String::<TOLD_BYTES>::new();
                let _ = match modes {
                    "" => write!(told, "Modes now: none"),
                    modes => write!(told, "Modes now: +{modes}"),
                };
                if key.is_some() {
                    let _ = told.push_str(" with a key");
                }
                if let Some(limit) = limit {
                    let _ = write!(told, ", at most {limit} people");
                }
                let _ = told.push_str(" (set on another server).");
                (room, told)
            }
            relay::RoomChange::Banned {
                room,
                list,
                mask,
                by,
                at,
                until,
            } => {
                let Some(id) = self.rooms.find(room) else {
                    return Ok(false);
                };
                if mask.is_empty()
                    || mask.len() > crate::state::rooms::MAX_BAN_MASK_BYTES
                    || mask.contains(|c: char| c.is_control() || c == ' ')
                {
                    return Err(refused);
                }
                if until.is_some_and(|until| until <= self.now) {
                    return Ok(false);
                }
                if !self
                    .rooms
                    .ban(id, list, mask, by, at, until, self.now)
                    .map_err(|_| refused)?
                {
                    return Ok(false);
                }
                let mut told = heapless::String::<TOLD_BYTES>::new();
                let by = crate::wire::line::cut(by, crate::state::nickname::MAX_NICK_BYTES);
                let _ = match list {
                    crate::BanList::Bans => {
                        write!(told, "{by} banned {mask} (on another server).")
                    }
                    list => write!(told, "{by} set a {list} on {mask} (on another server)."),
                };
                (room, told)
            }
            relay::RoomChange::Unbanned { room, list, mask } => {
                let Some(id) = self.rooms.find(room) else {
                    return Ok(false);
                };
                if !self.rooms.unban(id, list, mask) {
                    return Ok(false);
                }
                let mut told = heapless::String::<TOLD_BYTES>::new();
                let _ = write!(told, "The {list} on {mask} was lifted (on another server).");
                (room, told)
            }
        };
        self.hub().notice_room(room, &told);
        Ok(true)
    }

    /// A notice from the runner to everyone online, in each one's dialect (`*** TEXT` for
    /// plain text and JSON, a server `NOTICE` for IRC): news about the server itself, such as
    /// its store failing. `text` is one line; control characters in it are shown as escapes.
    pub fn handle_notice(&mut self, now: Instant, text: &str) -> Result<(), Error> {
        self.begin_step(now)?;
        let text = crate::wire::line::cut(text, crate::MAX_LINE_BYTES);
        self.hub().notice_all(text);
        Ok(())
    }

    /// A notice from the runner to the members here of the room called `room` (ASCII case
    /// ignored; nobody if there is no such room), in each one's dialect: news about the room
    /// that only the runner knows, such as lines it could not get from the other servers.
    /// `text` is one line, shown as [`handle_notice`](Self::handle_notice) shows it.
    pub fn handle_room_notice(
        &mut self,
        now: Instant,
        room: &str,
        text: &str,
    ) -> Result<(), Error> {
        self.begin_step(now)?;
        let text = crate::wire::line::cut(text, crate::MAX_LINE_BYTES);
        self.hub().notice_room(room, text);
        Ok(())
    }

    /// The server is stopping: everyone is told. The runner then writes out what is queued and
    /// closes every connection itself; every later `handle_*` call returns [`Error::ShutDown`].
    pub fn handle_shutdown(&mut self, now: Instant) -> Result<(), Error> {
        self.begin_step(now)?;
        self.hub().shut_down();
        self.shut_down = true;
        Ok(())
    }

    // ----- Outputs -----

    /// The next thing for the runner to do, or `None` when this step's outputs are all taken.
    pub fn poll_output(&mut self) -> Option<Output<'_>> {
        let record = self.out.pop()?;
        if let Record::Send {
            to:
                Audience {
                    scope: Scope::Room(room),
                    ..
                },
            ..
        } = record
        {
            self.roster.members.walking(room);
        }
        let bytes = self.out.bytes_of(record);
        Some(match record {
            Record::Send { .. } => Output::Send {
                // Cannot fail: the record just popped is this send.
                to: Recipients::new(self.out.last_audience()?, self, self.roster.members.cells()),
                bytes,
            },
            Record::Close { conn, reason } => Output::Close { conn, reason },
            Record::Resume { conn } => Output::Resume { conn },
            Record::Event(event) => Output::Event(self.out.resolve(event)),
            Record::History(at) => Output::History(self.out.request_at(at)?),
            Record::Claim => Output::Claim(self.out.claim_made()?),
            Record::Account => Output::Account(self.out.account_asked()?),
            Record::Relay(line) => Output::Relay(self.out.resolve_relay(line)),
            Record::Order(order) => Output::Order(self.out.resolve_order(order)),
        })
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.shut_down {
            return None;
        }
        let silent = self
            .config
            .silence_timeout
            .and(self.roster.first(Queue::Silent));
        let throttled = self.roster.first(Queue::Throttled);
        let greeting = self.roster.first(Queue::Greeting);
        let claiming = self.roster.first(Queue::Claiming);
        let accounts = self.roster.first(Queue::Account);
        let grace = self.roster.first(Queue::Grace);
        let pings = self
            .config
            .ping_interval
            .and(self.roster.first(Queue::Idle))
            .into_iter()
            .chain(self.roster.first(Queue::Pinged));
        let sweep = self.server_bans.sweep_at().map(|_| self.now);
        [silent, throttled, greeting, claiming, accounts, grace]
            .into_iter()
            .flatten()
            .chain(pings)
            .map(|(deadline, _)| deadline)
            .chain(sweep)
            .min()
    }

    // ----- Internals -----

    /// Takes one line from `conn`'s bucket; when it runs dry, holds the connection back until
    /// it has earned a line.
    fn charge_line(&mut self, conn: ConnectionId) {
        let Some(limit) = self.config.flood_limit else {
            return;
        };
        let Some(slot) = self.roster.get_mut(conn) else {
            return; // the line was /quit
        };
        if !slot.connection.flood.charge(limit, self.now) {
            return;
        }
        // A whole line's time from the moment the bucket ran dry: the same for everyone, so the
        // queue stays in deadline order.
        let deadline = self.now.saturating_add(limit.one_line());
        self.roster.enqueue(Queue::Throttled, conn, deadline);
    }

    fn begin_step(&mut self, now: Instant) -> Result<(), Error> {
        if self.shut_down {
            return Err(Error::ShutDown);
        }
        if !self.out.is_drained() {
            return Err(Error::OutputPending);
        }
        self.out.reset();
        self.now = self.now.max(now);
        Ok(())
    }

    /// Puts out whoever took a name or an account in this step that a server-wide ban names.
    fn check_suspects(&mut self) {
        if !self.server_bans.is_empty() {
            let suspects = self.server_bans.take_suspects();
            let mut hub = self.hub();
            for conn in suspects {
                hub.put_out_if_banned(conn);
            }
        }
    }

    fn hub(&mut self) -> Step<'_, S> {
        Step {
            roster: &mut self.roster,
            rooms: &mut self.rooms,
            past: &mut self.past,
            watches: &mut self.watches,
            out: &mut self.out,
            account_asks: &mut self.account_asks,
            invites: &mut self.invites,
            mutes: &mut self.mutes,
            server_bans: &mut self.server_bans,
            operators: &self.operators,
            style: Style {
                colour: self.config.colour,
            },
            max_room_members: self.config.max_room_members,
            replay: self.config.history,
            now: self.now,
            server_name: self.config.server_name.as_str(),
            motd: self.motd.as_ref(),
            irc_lobby: self.config.irc_lobby,
            announce_limit: self.config.announce_limit,
            claims: self.config.nick_claims.then_some(self.config.claim_timeout),
            relayed: self.config.relayed_lines,
            accounts: self
                .config
                .accounts
                .then_some((self.config.account_timeout, self.config.nick_grace)),
            mode_line: None,
        }
    }
}

impl<S: Storage> Directory for Server<S> {
    fn next_recipient(&self, audience: &Audience, cursor: &mut Cursor) -> Option<ConnectionId> {
        let rooms: &[RoomId] = match audience.scope {
            // Walked by `Recipients` itself.
            Scope::One { .. } | Scope::Room(_) => return None,
            Scope::All => {
                let (live, slots) = self.roster.parts();
                let mut pos = match *cursor {
                    Cursor::Start => 0,
                    Cursor::Live(pos) => pos,
                    Cursor::Room { .. } | Cursor::End => return None,
                };
                while let Some(&index) = live.get(pos as usize) {
                    pos += 1;
                    let slot = &slots[index as usize];
                    let id = slot.id(index);
                    if audience.admits(id, slot) {
                        *cursor = Cursor::Live(pos);
                        return Some(id);
                    }
                }
                *cursor = Cursor::End;
                return None;
            }
            Scope::Rooms(set) => self.out.rooms(set),
        };
        let members = &self.roster.members;
        let (mut set, mut cell) = match *cursor {
            Cursor::Start => (0, None),
            Cursor::Room { set, cell } => (set, cell),
            Cursor::Live(_) | Cursor::End => return None,
        };
        loop {
            let Some(&room) = rooms.get(usize::from(set)) else {
                *cursor = Cursor::End;
                return None;
            };
            let Some(at) = cell.or_else(|| members.head(room)) else {
                (set, cell) = (set + 1, None);
                continue;
            };
            let member = members.at(at);
            cell = member.next;
            let (this_set, this_room) = (set, room);
            if member.next.is_none() {
                set += 1;
            }
            let (index, id) = (
                member.index,
                ConnectionId::from_parts(member.index, member.generation),
            );
            if !audience.admits_member(id, &member, this_room) {
                continue;
            }
            // Capabilities are in the slot, read only for an audience that asks for some.
            let wanted = match audience.speaks {
                crate::output::Speaks::IrcWith(_) | crate::output::Speaks::IrcWallops => self
                    .roster
                    .get(id)
                    .is_some_and(|slot| audience.has_caps(slot)),
                crate::output::Speaks::IrcOperators => self.roster.is_op(id, this_room),
                _ => true,
            };
            if !wanted {
                continue;
            }
            // Someone in several of the rooms gets the send once: from the lowest of them.
            let met_before = this_set > 0
                && members
                    .rooms_of(index)
                    .any(|other| other < this_room && rooms.binary_search(&other).is_ok());
            if met_before {
                continue;
            }
            *cursor = Cursor::Room { set, cell };
            return Some(id);
        }
    }

    fn first_cell(&self, room: RoomId) -> Option<u32> {
        self.roster.members.head(room)
    }

    fn is_local(&self, id: ConnectionId) -> bool {
        self.roster
            .get(id)
            .is_none_or(|slot| !slot.person.is_remote())
    }

    fn most_recipients(&self, audience: &Audience) -> usize {
        let members = |room: RoomId| self.rooms.get(room).map_or(0, |room| room.members as usize);
        match audience.scope {
            Scope::One { .. } => 1,
            Scope::All => self.roster.len(),
            Scope::Room(room) => members(room),
            Scope::Rooms(set) => self.out.rooms(set).iter().map(|&room| members(room)).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::string::String;
    use std::vec::Vec;

    use super::*;
    use crate::FloodLimit;
    use core::time::Duration;

    fn drain<S: Storage>(server: &mut Server<S>, to: ConnectionId) -> (Vec<String>, usize) {
        let (mut heard, mut resumed) = (Vec::new(), 0);
        while let Some(output) = server.poll_output() {
            match output {
                Output::Send { to: who, bytes } if who.clone().any(|id| id == to) => {
                    heard.push(String::from_utf8_lossy(bytes).into_owned());
                }
                Output::Resume { .. } => resumed += 1,
                _ => {}
            }
        }
        (heard, resumed)
    }

    fn accept<S: Storage>(server: &mut Server<S>) -> ConnectionId {
        let Ok(Admission::Accepted(conn)) = server.handle_connect(Instant::ZERO) else {
            panic!("connect");
        };
        while server.poll_output().is_some() {}
        conn
    }

    /// Both storages hold up to their capacity, refuse the next, and reuse a slot freed.
    fn fill_refuse_reuse<S: Storage>(mut server: Server<S>) {
        let capacity = server.capacity();
        let ids: Vec<_> = (0..capacity).map(|_| accept(&mut server)).collect();
        assert_eq!(
            server.handle_connect(Instant::ZERO),
            Ok(Admission::Refused(FULL_PLAIN))
        );
        server
            .handle_disconnect(Instant::ZERO, ids[1], DisconnectReason::Closed)
            .unwrap();
        while server.poll_output().is_some() {}
        let again = accept(&mut server);
        assert_eq!(again.index(), ids[1].index(), "the freed slot");
        assert_eq!(server.online(), capacity);
    }

    #[test]
    fn a_server_holds_its_capacity_and_refuses_the_next() {
        let config = || {
            Config::default()
                .with_colour(false)
                .with_greeting_delay(Duration::ZERO)
        };
        let inline: Server<Inline<3>> = Server::new(config(), Instant::ZERO);
        assert_eq!(inline.capacity(), 3);
        fill_refuse_reuse(inline);
        let heap = Server::<Heap>::with_capacity(config(), Instant::ZERO, 5);
        assert_eq!(heap.capacity(), 5);
        fill_refuse_reuse(heap);
    }

    #[test]
    fn flood_control_holds_back_past_the_burst_and_resumes_at_the_rate() {
        let limit = FloodLimit {
            burst: 3,
            per_second: 2,
        };
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_colour(false)
            .with_silence_timeout(None)
            .with_flood_limit(Some(limit));
        let mut server: Server<Inline<4>> = Server::new(config, Instant::ZERO);
        let (alice, bob) = (accept(&mut server), accept(&mut server));
        let t0 = Instant::ZERO;
        let mut input: &[u8] = b"1\n2\n3\n4\n5\n";
        let mut bob_heard = Vec::new();
        // The burst: three lines go through; the third empties the bucket.
        for _ in 0..3 {
            let taken = server.handle_input(t0, alice, input).unwrap().bytes();
            input = &input[taken..];
            bob_heard.extend(drain(&mut server, bob).0);
        }
        assert_eq!(bob_heard.len(), 3);
        // Held back: nothing more is taken, and alice is told, once.
        assert_eq!(server.handle_input(t0, alice, input).unwrap().bytes(), 0);
        let (told, _) = drain(&mut server, alice);
        assert_eq!(told.len(), 1);
        assert!(told[0].starts_with("*** Slow down"), "{told:?}");
        assert_eq!(server.poll_timeout(), Some(Instant::from_millis(500)));
        // Half a second later she may send one more line, and is held back again.
        server.handle_timeout(Instant::from_millis(500)).unwrap();
        assert_eq!(drain(&mut server, alice).1, 1, "one Resume");
        let taken = server
            .handle_input(Instant::from_millis(500), alice, input)
            .unwrap()
            .bytes();
        assert_eq!(taken, 2);
        input = &input[taken..];
        let (heard, _) = drain(&mut server, bob);
        assert_eq!(heard, ["anonymous-1: 4\r\n"]);
        assert_eq!(
            server
                .handle_input(Instant::from_millis(500), alice, input)
                .unwrap()
                .bytes(),
            0
        );
        assert!(
            drain(&mut server, alice).0.is_empty(),
            "told once per episode"
        );
        assert_eq!(server.poll_timeout(), Some(Instant::from_millis(1000)));
    }

    #[test]
    fn set_limits_applies_from_the_next_step() {
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_colour(false)
            .with_silence_timeout(None)
            .with_flood_limit(None);
        let mut server: Server<Inline<4>> = Server::new(config, Instant::ZERO);
        let (alice, bob) = (accept(&mut server), accept(&mut server));
        // At most two connections now: nobody is turned out, a third is refused.
        let mut limits = server.config().limits();
        limits.max_clients = 2;
        limits.flood_limit = Some(FloodLimit {
            burst: 2,
            per_second: 1,
        });
        server.set_limits(limits);
        assert_eq!(server.online(), 2);
        assert!(matches!(
            server.handle_connect(Instant::ZERO),
            Ok(Admission::Refused(_))
        ));
        // Flood control turned on: alice starts with a full bucket of two lines, then is held.
        let mut input: &[u8] = b"1\n2\n3\n";
        for _ in 0..2 {
            let taken = server.handle_input(Instant::ZERO, alice, input).unwrap();
            input = &input[taken.bytes()..];
            drain(&mut server, bob);
        }
        assert_eq!(
            server
                .handle_input(Instant::ZERO, alice, input)
                .unwrap()
                .bytes(),
            0
        );
        assert_eq!(server.poll_timeout(), Some(Instant::from_millis(1000)));
        // The rest of the configuration stays.
        assert!(!server.config().colour);
        assert_eq!(server.config().limits(), limits);
    }

    #[test]
    fn a_client_pinged_before_pings_were_turned_off_still_times_out() {
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_silence_timeout(None)
            .with_ping(Some(Duration::from_secs(10)), Duration::from_secs(5));
        let mut server: Server<Inline<4>> = Server::new(config, Instant::ZERO);
        let irc = accept(&mut server);
        let mut input: &[u8] = b"NICK ann\r\nUSER ann 0 * :ann\r\n";
        while !input.is_empty() {
            let taken = server.handle_input(Instant::ZERO, irc, input).unwrap();
            input = &input[taken.bytes()..];
            while server.poll_output().is_some() {}
        }
        let ping_at = server.poll_timeout().expect("a ping is due");
        server.handle_timeout(ping_at).unwrap();
        while server.poll_output().is_some() {}
        let mut limits = server.config().limits();
        limits.ping_interval = None;
        server.set_limits(limits);
        // The answer's deadline still stands, and passing it closes the client: no timeout
        // that is due forever and never handled.
        let answer_by = server.poll_timeout().expect("the answer's deadline");
        assert_eq!(answer_by, ping_at.saturating_add(Duration::from_secs(5)));
        server.handle_timeout(answer_by).unwrap();
        let mut closed = false;
        while let Some(output) = server.poll_output() {
            closed |= matches!(output, Output::Close { conn, .. } if conn == irc);
        }
        assert!(closed);
        assert_eq!(server.poll_timeout(), None);
    }

    #[test]
    fn the_slow_down_notice_comes_once_per_episode() {
        let limit = FloodLimit {
            burst: 2,
            per_second: 10,
        };
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_colour(false)
            .with_silence_timeout(None)
            .with_flood_limit(Some(limit));
        let mut server: Server<Inline<4>> = Server::new(config, Instant::ZERO);
        let alice = accept(&mut server);
        // Sends `input` as fast as flood control lets it, waiting out each hold; the number of
        // slow-down notices it got.
        let mut now = 0;
        let send = |server: &mut Server<Inline<4>>, input: &[u8], now: &mut u64| {
            let (mut rest, mut notices) = (input, 0);
            while !rest.is_empty() {
                let at = Instant::from_millis(*now);
                let taken = server.handle_input(at, alice, rest).unwrap().bytes();
                rest = &rest[taken..];
                let (heard, _) = drain(server, alice);
                notices += heard
                    .iter()
                    .filter(|line| line.contains("Slow down"))
                    .count();
                if taken == 0 {
                    *now = server.poll_timeout().unwrap().as_millis();
                    server.handle_timeout(Instant::from_millis(*now)).unwrap();
                    drain(server, alice);
                }
            }
            notices
        };
        assert_eq!(
            send(&mut server, &b"x\n".repeat(12), &mut now),
            1,
            "one episode, one notice"
        );
        // The hold of the last line ends on time, as a runner that follows `poll_timeout`
        // sees to; after a whole burst's worth of quiet, a new episode is told again.
        if let Some(release) = server.poll_timeout() {
            now = release.as_millis();
            server.handle_timeout(release).unwrap();
            drain(&mut server, alice);
        }
        now += 1000;
        let notices = send(&mut server, &b"y\n".repeat(3), &mut now);
        assert_eq!(notices, 1);
    }

    #[test]
    fn within_the_limit_nobody_is_told_anything() {
        let limit = FloodLimit {
            burst: 3,
            per_second: 1,
        };
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_colour(false)
            .with_silence_timeout(None)
            .with_flood_limit(Some(limit));
        let mut server: Server<Inline<4>> = Server::new(config, Instant::ZERO);
        let alice = accept(&mut server);
        // Exactly a burst at once, then one line a second: nothing waits, nothing is said.
        let mut input: &[u8] = b"a\nb\nc\n";
        while !input.is_empty() {
            let taken = server
                .handle_input(Instant::ZERO, alice, input)
                .unwrap()
                .bytes();
            assert!(taken > 0);
            input = &input[taken..];
            assert!(
                drain(&mut server, alice)
                    .0
                    .iter()
                    .all(|l| !l.contains("Slow"))
            );
        }
        for second in 1..10 {
            let now = Instant::from_millis(second * 1000);
            server.handle_timeout(now).unwrap();
            drain(&mut server, alice);
            let taken = server.handle_input(now, alice, b"x\n").unwrap().bytes();
            assert_eq!(taken, 2, "second {second}");
            assert!(
                drain(&mut server, alice)
                    .0
                    .iter()
                    .all(|l| !l.contains("Slow"))
            );
        }
    }

    #[test]
    fn sends_say_what_may_be_skipped_and_backlogs_are_told() {
        use crate::Delivery;
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_colour(false)
            .with_flood_limit(None);
        let mut server: Server<Inline<4>> = Server::new(config, Instant::ZERO);
        let (a, b) = (accept(&mut server), accept(&mut server));
        let mut kinds = Vec::new();
        for line in ["/msg anonymous-1 psst\n", "hello\n", "/ping\n"] {
            let _ = server
                .handle_input(Instant::ZERO, b, line.as_bytes())
                .unwrap();
            while let Some(output) = server.poll_output() {
                if let Output::Send { to, .. } = output {
                    kinds.push(to.delivery());
                }
            }
        }
        assert_eq!(
            kinds,
            [
                Delivery::Private { from: b },
                Delivery::Reply, // the echo to the sender
                Delivery::Broadcast,
                Delivery::Reply,
            ]
        );
        server
            .handle_backlog(Instant::ZERO, a, Backlog::Lagging)
            .unwrap();
        assert!(server.poll_output().is_none());
        let _ = server.handle_input(Instant::ZERO, b, b"/list\n").unwrap();
        assert_eq!(
            drain(&mut server, b).0,
            ["*** #lobby (2): anonymous-1 (lagging), anonymous-2 (you)\r\n"]
        );
        server
            .handle_backlog(Instant::ZERO, a, Backlog::CaughtUp { skipped: 3 })
            .unwrap();
        assert_eq!(drain(&mut server, a).0, ["*** [3 messages skipped]\r\n"]);
        server.handle_undelivered(Instant::ZERO, b, a).unwrap();
        assert_eq!(
            drain(&mut server, b).0,
            [
                "*** error: your private message to anonymous-1 was not delivered: they are not reading, and too far behind\r\n"
            ]
        );
        let gone = ConnectionId::for_tests(3, 7);
        assert_eq!(
            server.handle_undelivered(Instant::ZERO, gone, a),
            Err(Error::UnknownConnection(gone))
        );
    }

    #[test]
    fn big_rooms_do_not_announce_comings_and_goings_to_text_users() {
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_colour(false)
            .with_flood_limit(None)
            .with_announce_limit(2);
        let mut server: Server<Inline<4>> = Server::new(config, Instant::ZERO);
        let first = accept(&mut server);
        let second = accept(&mut server);
        let Ok(Admission::Accepted(third)) = server.handle_connect(Instant::ZERO) else {
            panic!("connect");
        };
        assert!(
            drain(&mut server, first).0.is_empty(),
            "a third member is not announced"
        );
        server
            .handle_disconnect(Instant::ZERO, third, DisconnectReason::Closed)
            .unwrap();
        assert!(drain(&mut server, first).0.is_empty(), "nor its departure");
        server
            .handle_disconnect(Instant::ZERO, second, DisconnectReason::Closed)
            .unwrap();
        assert_eq!(
            drain(&mut server, first).0,
            ["*** anonymous-2 left (connection closed)\r\n"],
            "two members: announced"
        );
    }

    #[test]
    fn queries_answer_who_is_where() {
        let config = Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_colour(false)
            .with_flood_limit(None);
        let mut server: Server<Inline<4>> = Server::new(config, Instant::ZERO);
        let (alice, bob) = (accept(&mut server), accept(&mut server));
        assert_eq!(server.nickname(alice), None, "anonymous so far");
        for line in ["/nick alice\n", "/join #Rust\n"] {
            let _ = server
                .handle_input(Instant::ZERO, alice, line.as_bytes())
                .unwrap();
            while server.poll_output().is_some() {}
        }
        assert_eq!(server.nickname(alice).map(Nickname::as_str), Some("alice"));
        let mut rooms: Vec<&str> = server.rooms_of(alice).map(RoomName::as_str).collect();
        rooms.sort_unstable();
        assert_eq!(rooms, ["#Rust", "#lobby"]);
        assert_eq!(server.members("#rust").collect::<Vec<_>>(), [alice]);
        assert_eq!(server.members("#LOBBY").collect::<Vec<_>>(), [alice, bob]);
        assert_eq!(server.members("#nowhere").count(), 0);
        let gone = ConnectionId::for_tests(3, 9);
        assert_eq!(
            (server.nickname(gone), server.rooms_of(gone).count()),
            (None, 0)
        );
    }
}
