//! What the core asks of its runner: bytes to write to some connections, and connections to close.

use core::fmt;

use crate::account::AccountRequest;
use crate::claim::NickClaim;
use crate::event::{Event, LineKind, PersonId};
use crate::history::HistoryRequest;
use crate::relay::{Outgoing, Target};
use crate::state::members::{Cells, MAX_ROOMS_PER_PERSON, Member};
use crate::state::rooms::RoomId;
use crate::state::roster::{ConnectionId, Name, Slot};
use crate::time::Instant;

/// The most bytes the core renders in one step (one `handle_*` call), before the runner drains
/// them with [`Server::poll_output`](crate::Server::poll_output).
///
/// Every reply is bounded so that one step fits: the longest line, the longest nickname, and
/// [`MAX_LISTED_NAMES`](crate::MAX_LISTED_NAMES) names in a roster listing, [`MAX_ROOMS`](crate::MAX_ROOMS)
/// rooms in a room listing. History comes a line per step (see [`history`](crate::history)).
///
/// It is 48 KiB: the longest reply takes well under half of it, so that a labeled answer
/// (IRCv3 `labeled-response`, which copies the answer's lines with a tag added) still fits.
/// Record offsets are 16 bits, so it must stay below 64 KiB.
pub const OUTPUT_BYTES: usize = 48 * 1024;

const _: () = assert!(OUTPUT_BYTES <= u16::MAX as usize);

/// The most outputs queued in one step.
pub(crate) const MAX_OUTPUTS: usize = 64;

/// The most history requests queued in one step: a step joins one room at most (a line naming
/// several rooms is handled a room per step), and a welcome joins the lobby.
const MAX_REQUESTS: usize = 2;

/// Why the core closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The person typed `/quit`.
    Quit,
    /// The connection sent no line within [`Config::silence_timeout`](crate::Config).
    Silent,
    /// An IRC client did not answer the `PING` sent after it had been quiet for
    /// [`Config::ping_interval`](crate::Config) within the ping timeout.
    PingTimeout,
    /// It matches a server-wide ban (set now, or on the name or account it just took).
    Banned,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Quit => "quit",
            Self::Silent => "silent too long",
            Self::PingTimeout => "ping timeout",
            Self::Banned => "banned from the server",
        })
    }
}

/// One thing for the runner to do, from [`Server::poll_output`](crate::Server::poll_output).
///
/// Carry them out in the order they come: a connection's last lines are queued before the
/// [`Output::Close`] that ends it.
#[derive(Debug)]
#[non_exhaustive]
#[must_use = "an output not carried out is a message lost"]
pub enum Output<'a> {
    /// Write `bytes` to every connection in `to`. The bytes are rendered once, whatever the
    /// number of recipients: one or more whole lines, each ending in `\r\n`, ready for a terminal.
    Send {
        /// Who gets the bytes.
        to: Recipients<'a>,
        /// Complete lines ending in `\r\n`.
        bytes: &'a [u8],
    },
    /// Write what was queued for `conn`, then close it. The core has already forgotten `conn`:
    /// do not report its disconnect back.
    Close {
        /// The connection to close.
        conn: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
    /// Flood control lets `conn` go on, or its IRC `OPER` was answered: call
    /// [`Server::handle_input`](crate::Server::handle_input) again with the bytes it did not
    /// take, if there are any.
    Resume {
        /// The connection that may send again.
        conn: ConnectionId,
    },
    /// Something others can observe happened: for the runner to log, store or publish. It
    /// comes before the lines that tell people of it. Nothing to send.
    Event(Event<'a>),
    /// Someone wants a room's past lines: answer with
    /// [`Server::handle_history`](crate::Server::handle_history), and write the answer to them
    /// before anything sent to them after this output (see [`history`](crate::history)).
    History(&'a HistoryRequest),
    /// Someone wants a nickname that is free here; with
    /// [`Config::nick_claims`](crate::Config) on, the other servers must agree: answer with
    /// [`Server::handle_claim`](crate::Server::handle_claim) (see [`claim`](crate::claim)).
    Claim(&'a NickClaim),
    /// Someone asks about an account; with [`Config::accounts`](crate::Config) on, the runner
    /// checks or keeps it and answers with
    /// [`Server::handle_account`](crate::Server::handle_account) (see
    /// [`account`](crate::account)).
    Account(&'a AccountRequest),
    /// A room line said here, shown to nobody yet; with [`Config::relayed_lines`](crate::Config)
    /// on, the runner gives it its place in the room's order and hands it back with
    /// [`Server::handle_relayed`](crate::Server::handle_relayed) (see [`relay`](crate::relay)).
    Relay(Outgoing<'a>),
    /// An operator here kicked someone, or gave or took a status, in a room; with
    /// [`Config::relayed_lines`](crate::Config) on, the runner carries it to every other
    /// server, which takes it with [`Server::handle_order`](crate::Server::handle_order) (see
    /// [`relay::Order`](crate::relay::Order)). It has been carried out here already.
    Order(crate::relay::Order<'a>),
}

/// Who a [`Output::Send`] is for: an iterator over connection handles, and what kind of send
/// it is ([`Recipients::delivery`]).
///
/// A send to a room walks that room's members, so its cost grows with the room, not with the
/// number of people online.
#[derive(Clone)]
pub struct Recipients<'a> {
    directory: &'a dyn Directory,
    /// Every membership cell: a room's walk reads these and nothing else.
    cells: Cells<'a>,
    audience: &'a Audience,
    cursor: Cursor,
}

impl fmt::Debug for Recipients<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipients")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// What kind of send an [`Output::Send`] is: what a runner may do with it for a client that is
/// not reading (see [`Server::handle_backlog`](crate::Server::handle_backlog)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// What was said in a room, and the news of a room (joins, parts, names, topics) or of the
    /// server: may be skipped for a client that has fallen behind, as long as the client is
    /// told how many were skipped.
    Broadcast,
    /// A reply or notice to one connection about its own doings: always queued.
    Reply,
    /// A private message from `from`: queued, or, when the recipient is too far behind to
    /// take it, not sent and reported with
    /// [`Server::handle_undelivered`](crate::Server::handle_undelivered), so the sender is told.
    Private {
        /// Who sent it.
        from: ConnectionId,
    },
}

/// Where a walk over the recipients of one send has got to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// Not started.
    Start,
    /// At a position of the list of live connections.
    Live(u32),
    /// In the `set`-th room of the audience's rooms, at a membership cell (`None`: the room's
    /// first).
    Room { set: u8, cell: Option<u32> },
    /// Done.
    End,
}

/// What can list the recipients of an audience: the server's tables, behind a trait object so
/// that [`Recipients`] need not carry the server's size parameters.
pub(crate) trait Directory {
    /// The next recipient of an audience of several rooms or of everyone, from `cursor` on,
    /// moving the cursor past it. (A one-room audience is walked by [`Recipients`] itself.)
    fn next_recipient(&self, audience: &Audience, cursor: &mut Cursor) -> Option<ConnectionId>;
    /// The first membership cell of `room`'s list.
    fn first_cell(&self, room: RoomId) -> Option<u32>;
    /// An upper bound on the recipients left.
    fn most_recipients(&self, audience: &Audience) -> usize;
    /// Whether `id` is a connection here (not someone on another server).
    fn is_local(&self, id: ConnectionId) -> bool;
}

impl<'a> Recipients<'a> {
    pub(crate) fn new(
        audience: &'a Audience,
        directory: &'a dyn Directory,
        cells: Cells<'a>,
    ) -> Self {
        Self {
            directory,
            cells,
            audience,
            cursor: Cursor::Start,
        }
    }

    /// The next member of `room` who passes the audience's filters: the walk every line to a
    /// room takes, kept here so that it is one loop with no indirect call per member.
    #[inline]
    fn next_in_room(&mut self, room: RoomId) -> Option<ConnectionId> {
        let mut at = match self.cursor {
            Cursor::Start => self.directory.first_cell(room),
            Cursor::Room { cell, .. } => cell,
            Cursor::Live(_) | Cursor::End => None,
        };
        debug_assert!(
            !matches!(
                self.audience.speaks,
                Speaks::IrcWith(_) | Speaks::IrcOperators | Speaks::IrcWallops
            ),
            "a one-room audience cannot check capabilities or statuses"
        );
        while let Some(cell) = at {
            let member = self.cells.member(cell);
            at = member.next;
            let id = ConnectionId::from_parts(member.index, member.generation);
            if self.audience.admits_member(id, &member, room) {
                self.cursor = match at {
                    Some(cell) => Cursor::Room {
                        set: 0,
                        cell: Some(cell),
                    },
                    None => Cursor::End,
                };
                return Some(id);
            }
        }
        self.cursor = Cursor::End;
        None
    }

    /// What kind of send this is.
    pub fn delivery(&self) -> Delivery {
        match self.audience.scope {
            Scope::One {
                from: Some(from), ..
            } => Delivery::Private { from },
            Scope::One { from: None, .. } => Delivery::Reply,
            Scope::Room(_) | Scope::Rooms(_) | Scope::All => Delivery::Broadcast,
        }
    }
}

impl Iterator for Recipients<'_> {
    type Item = ConnectionId;

    #[inline]
    fn next(&mut self) -> Option<ConnectionId> {
        match self.audience.scope {
            Scope::One { to, .. } => {
                let first = core::mem::replace(&mut self.cursor, Cursor::End) == Cursor::Start;
                // Someone on another server is sent nothing from here.
                (first && self.directory.is_local(to)).then_some(to)
            }
            Scope::Room(room) => self.next_in_room(room),
            Scope::Rooms(_) | Scope::All => self
                .directory
                .next_recipient(self.audience, &mut self.cursor),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match (self.audience.scope, self.cursor) {
            (_, Cursor::End) => (0, Some(0)),
            (Scope::One { .. }, _) => (1, Some(1)),
            _ => (0, Some(self.directory.most_recipients(self.audience))),
        }
    }
}

/// Who a queued send is for, resolved against the roster when it is polled. Membership cannot
/// change between the step that queued it and the poll that drains it, because the API refuses
/// a new step until the queue is drained; the rooms of someone who left in the step are kept
/// by value in a [`RoomSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Audience {
    pub(crate) scope: Scope,
    pub(crate) except: Option<ConnectionId>,
    pub(crate) view: View,
    pub(crate) speaks: Speaks,
}

/// Which dialect's rendering a send is: each event is rendered once for the text dialects
/// (plain and JSON read the same lines) and once for IRC, and each copy goes to its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Speaks {
    Any,
    Text,
    Irc,
    /// IRC clients that read message tags.
    IrcTagged,
    /// IRC clients that do not.
    IrcPlain,
    /// IRC clients that read the server's tags but not other clients' (`server-time` alone).
    IrcServerTags,
    /// IRC clients that read other clients' tags too (`message-tags`).
    IrcClientTags,
    /// IRC clients that turned on all of these capabilities (`away-notify`, `setname`). Only
    /// for an audience of several rooms ([`Audience::rooms_but`]) or of everyone: those walks
    /// read each recipient's slot, where the capabilities are; a one-room walk reads only the
    /// membership cells.
    IrcWith(crate::state::connection::Caps),
    /// IRC clients that are operators of the room walked (`PRIVMSG @#room`). Only for an
    /// audience of rooms ([`Audience::rooms_but`]), as [`Self::IrcWith`].
    IrcOperators,
    /// IRC clients with user mode `+w` (`WALLOPS`). Only for an audience of rooms or of
    /// everyone, as [`Self::IrcWith`].
    IrcWallops,
}

/// Up to [`MAX_ROOMS_PER_PERSON`] rooms, kept in ascending order in the step's output queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RoomSet {
    pub(crate) start: u16,
    pub(crate) len: u8,
}

/// The people a send can reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One connection; `from` is the sender of a private message.
    One {
        to: ConnectionId,
        from: Option<ConnectionId>,
    },
    /// Everyone in one room.
    Room(RoomId),
    /// Everyone in at least one of these rooms, once each.
    Rooms(RoomSet),
    All,
}

/// Which of them, by the room they are talking in: a line from a room is shown plainly to
/// those whose current room it is, and with the room's name to the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    Any,
    Current(RoomId),
    NotCurrent(RoomId),
}

impl Audience {
    pub(crate) const fn one(id: ConnectionId) -> Self {
        Self {
            scope: Scope::One { to: id, from: None },
            except: None,
            view: View::Any,
            speaks: Speaks::Any,
        }
    }

    pub(crate) const fn all() -> Self {
        Self {
            scope: Scope::All,
            except: None,
            view: View::Any,
            speaks: Speaks::Any,
        }
    }

    /// Everyone in `room`.
    pub(crate) const fn room(room: RoomId) -> Self {
        Self {
            scope: Scope::Room(room),
            except: None,
            view: View::Any,
            speaks: Speaks::Any,
        }
    }

    /// Everyone in `room` but `except`.
    pub(crate) const fn room_but(room: RoomId, except: ConnectionId) -> Self {
        Self {
            except: Some(except),
            ..Self::room(room)
        }
    }

    /// Everyone in the rooms of `set` but `except`, once each.
    pub(crate) const fn rooms_but(set: RoomSet, except: ConnectionId) -> Self {
        Self {
            scope: Scope::Rooms(set),
            except: Some(except),
            view: View::Any,
            speaks: Speaks::Any,
        }
    }

    /// A private message from `from` to `to`.
    pub(crate) const fn private(to: ConnectionId, from: ConnectionId) -> Self {
        Self {
            scope: Scope::One {
                to,
                from: Some(from),
            },
            ..Self::one(to)
        }
    }

    pub(crate) const fn viewing(self, view: View) -> Self {
        Self { view, ..self }
    }

    /// Only those of them who speak `speaks`.
    pub(crate) const fn speaking(self, speaks: Speaks) -> Self {
        Self { speaks, ..self }
    }

    /// Whether `id`, met as `member` on a walk over `room`, passes the filters beyond the scope:
    /// the same answer as [`Self::admits`], from the membership cell alone.
    #[inline]
    pub(crate) fn admits_member(&self, id: ConnectionId, member: &Member, room: RoomId) -> bool {
        // A view is only ever asked of the room walked, so whether it is current is enough.
        !member.remote
            && self.passes(
                id,
                member.current.then_some(room),
                member.irc,
                member.tagged,
                member.client_tags,
            )
    }

    /// Whether `slot` turned on the capabilities of a [`Speaks::IrcWith`] audience (always
    /// true for another).
    pub(crate) fn has_caps(&self, slot: &Slot) -> bool {
        match self.speaks {
            Speaks::IrcWith(caps) => slot
                .connection
                .registration
                .is_some_and(|registration| registration.caps.has(caps)),
            // No room to be an operator of: an audience of everyone has none.
            Speaks::IrcOperators => false,
            Speaks::IrcWallops => slot.person.wallops,
            _ => true,
        }
    }

    /// Whether `id`, in `slot`, passes the filters beyond the scope.
    pub(crate) fn admits(&self, id: ConnectionId, slot: &Slot) -> bool {
        self.has_caps(slot)
            && !slot.person.is_remote()
            && self.passes(
                id,
                slot.person.current,
                slot.person.reads_irc(),
                slot.person.tagged,
                slot.person.client_tags,
            )
    }

    /// Whether `id`, talking in `current` and reading IRC or not, passes the filters beyond
    /// the scope.
    #[inline]
    fn passes(
        &self,
        id: ConnectionId,
        current: Option<RoomId>,
        irc: bool,
        tagged: bool,
        client_tags: bool,
    ) -> bool {
        let view = match self.view {
            View::Any => true,
            View::Current(room) => current == Some(room),
            View::NotCurrent(room) => current != Some(room),
        };
        let speaks = match self.speaks {
            Speaks::Any => true,
            Speaks::Text => !irc,
            Speaks::Irc => irc,
            Speaks::IrcTagged => irc && tagged,
            Speaks::IrcPlain => irc && !tagged,
            Speaks::IrcServerTags => irc && tagged && !client_tags,
            Speaks::IrcClientTags => irc && client_tags,
            // The capabilities themselves are checked by [`Self::has_caps`].
            Speaks::IrcWith(_) | Speaks::IrcOperators | Speaks::IrcWallops => irc,
        };
        view && speaks && self.except != Some(id)
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Record {
    Send {
        to: Audience,
        start: u16,
        end: u16,
    },
    Close {
        conn: ConnectionId,
        reason: CloseReason,
    },
    Event(EventRecord),
    Resume {
        conn: ConnectionId,
    },
    /// The request at this index of the step's requests.
    History(u8),
    /// The step's nickname claim.
    Claim,
    /// The step's account request.
    Account,
    /// A room line for the runner to put in order.
    Relay(RelayRecord),
    /// An operator's order for the other servers.
    Order(OrderRecord),
}

/// A [`crate::relay::Order`] as queued: its text as spans of the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OrderRecord {
    pub(crate) room: Span,
    pub(crate) target: Span,
    pub(crate) by: Span,
    pub(crate) action: OrderAction,
}

/// A [`crate::relay::Action`] as queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrderAction {
    Kick {
        reason: Option<Span>,
    },
    Status {
        status: crate::state::members::Status,
        on: bool,
        duration: Option<core::time::Duration>,
    },
    Invite,
}

/// A [`Target`] as queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RelayTo {
    Room(Span),
    Person { nick: Span, node: Span },
}

/// An [`Outgoing`] line as queued: its text as spans of the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RelayRecord {
    pub(crate) conn: ConnectionId,
    pub(crate) nick: Span,
    pub(crate) to: RelayTo,
    pub(crate) kind: crate::relay::Kind,
    pub(crate) text: Span,
    pub(crate) at: Instant,
}

/// Text an event refers to, in the step's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    start: u16,
    end: u16,
}

/// An [`Event`] as queued: its text as spans of the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventRecord {
    Arrived {
        person: PersonId,
        nick: Span,
    },
    Joined {
        person: PersonId,
        nick: Span,
        room: Span,
    },
    Parted {
        person: PersonId,
        nick: Span,
        room: Span,
        reason: Option<Span>,
    },
    Said {
        nick: Span,
        room: Span,
        kind: LineKind,
        text: Span,
        seq: u64,
        at: Instant,
    },
    Private {
        from: Span,
        to: Span,
        kind: LineKind,
        text: Span,
        msgid: u64,
        at: Instant,
    },
    TopicSet {
        nick: Span,
        room: Span,
        topic: Span,
        at: Instant,
    },
    Renamed {
        person: PersonId,
        from: Span,
        to: Span,
    },
    Departed {
        person: PersonId,
        nick: Span,
        reason: Span,
    },
    Away {
        person: PersonId,
        nick: Span,
        message: Option<Span>,
    },
    Identified {
        person: PersonId,
        nick: Span,
        account: Option<Span>,
    },
    RoomCreated {
        room: Span,
    },
    RoomRemoved {
        room: Span,
    },
    ServerBanned {
        mask: Span,
        by: Span,
        at: Instant,
        until: Option<Instant>,
        reason: Span,
    },
    ServerUnbanned {
        mask: Span,
    },
    RoomRegistered {
        room: Span,
        founder: Option<Span>,
    },
    RoomModes {
        room: Span,
        modes: Span,
        key: Option<Span>,
        limit: Option<u32>,
    },
    Banned {
        room: Span,
        list: crate::event::BanList,
        mask: Span,
        by: Span,
        at: Instant,
        until: Option<Instant>,
    },
    Unbanned {
        room: Span,
        list: crate::event::BanList,
        mask: Span,
    },
}

/// The outputs of one step: rendered bytes in one bounded arena and records pointing into it.
#[derive(Debug, Default)]
pub(crate) struct OutputQueue {
    pub(crate) bytes: heapless::Vec<u8, OUTPUT_BYTES>,
    records: heapless::Vec<Record, MAX_OUTPUTS>,
    requests: heapless::Vec<HistoryRequest, MAX_REQUESTS>,
    /// A step handles one line, and a line asks for one nickname at most.
    claim: Option<NickClaim>,
    /// And one account request at most.
    account: Option<AccountRequest>,
    /// The rooms of [`RoomSet`]s: room for each output to have its own.
    room_sets: heapless::Vec<RoomId, { MAX_OUTPUTS * MAX_ROOMS_PER_PERSON }>,
    next: usize,
    /// Set when a write did not fit; the bounds above are meant to make that impossible.
    overflowed: bool,
}

impl OutputQueue {
    pub(crate) fn is_drained(&self) -> bool {
        self.next == self.records.len()
    }

    /// Forgets everything drained, ready for the next step.
    pub(crate) fn reset(&mut self) {
        debug_assert!(self.is_drained());
        debug_assert!(!self.overflowed, "a step rendered more than OUTPUT_BYTES");
        self.bytes.clear();
        self.records.clear();
        self.requests.clear();
        self.claim = None;
        self.account = None;
        self.room_sets.clear();
        self.next = 0;
        self.overflowed = false;
    }

    /// Room left for records and bytes.
    pub(crate) fn room(&self) -> (usize, usize) {
        (
            MAX_OUTPUTS - self.records.len(),
            OUTPUT_BYTES - self.bytes.len(),
        )
    }

    /// Keeps `rooms` (at most [`MAX_ROOMS_PER_PERSON`]) for the step, in ascending order.
    pub(crate) fn room_set(&mut self, rooms: impl Iterator<Item = RoomId>) -> RoomSet {
        let start = self.room_sets.len();
        for room in rooms.take(MAX_ROOMS_PER_PERSON) {
            if self.room_sets.push(room).is_err() {
                self.overflowed = true;
                debug_assert!(false, "a step kept more room sets than it has outputs");
                break;
            }
        }
        self.room_sets[start..].sort_unstable();
        RoomSet {
            start: start as u16,
            len: (self.room_sets.len() - start) as u8,
        }
    }

    /// The rooms of `set`, in ascending order.
    pub(crate) fn rooms(&self, set: RoomSet) -> &[RoomId] {
        let start = usize::from(set.start);
        self.room_sets
            .get(start..start + usize::from(set.len))
            .unwrap_or(&[])
    }

    /// Where the next rendered bytes start; pass it to [`Self::send`] when they are written.
    pub(crate) fn mark(&self) -> usize {
        self.bytes.len()
    }

    /// Queues the bytes written since `start` for `to`.
    pub(crate) fn send(&mut self, start: usize, to: Audience) {
        let end = self.bytes.len();
        if end > start {
            self.push(Record::Send {
                to,
                start: start as u16,
                end: end as u16,
            });
        }
    }

    pub(crate) fn close(&mut self, conn: ConnectionId, reason: CloseReason) {
        self.push(Record::Close { conn, reason });
    }

    pub(crate) fn resume(&mut self, conn: ConnectionId) {
        self.push(Record::Resume { conn });
    }

    /// Writes `text` to the arena, for an event to refer to.
    pub(crate) fn span(&mut self, text: impl fmt::Display) -> Span {
        let start = self.mark();
        let _ = fmt::Write::write_fmt(self, format_args!("{text}"));
        Span {
            start: start as u16,
            end: self.bytes.len() as u16,
        }
    }

    /// Writes `text` to the arena, for an event to refer to: [`Self::span`] without the
    /// formatting machinery, for the text of every line.
    pub(crate) fn span_str(&mut self, text: &str) -> Span {
        let start = self.mark();
        self.write_bytes(text.as_bytes());
        Span {
            start: start as u16,
            end: self.bytes.len() as u16,
        }
    }

    /// Writes a person's name to the arena, for an event to refer to.
    pub(crate) fn span_name(&mut self, name: Name<'_>) -> Span {
        match name {
            Name::Nick(nick) => self.span_str(nick.as_str()),
            Name::Anonymous(_) => self.span(name),
        }
    }

    /// Queues a request for history.
    /// Queues a nickname claim: one per step.
    pub(crate) fn claim(&mut self, claim: NickClaim) {
        debug_assert!(self.claim.is_none(), "a step claimed two nicknames");
        self.claim = Some(claim);
        self.push(Record::Claim);
    }

    /// The step's nickname claim.
    pub(crate) fn claim_made(&self) -> Option<&NickClaim> {
        self.claim.as_ref()
    }

    /// Queues an account request: one per step.
    pub(crate) fn account(&mut self, request: AccountRequest) {
        debug_assert!(self.account.is_none(), "a step made two account requests");
        self.account = Some(request);
        self.push(Record::Account);
    }

    /// The step's account request.
    pub(crate) fn account_asked(&self) -> Option<&AccountRequest> {
        self.account.as_ref()
    }

    pub(crate) fn request(&mut self, request: HistoryRequest) {
        let at = self.requests.len() as u8;
        if self.requests.push(request).is_err() {
            self.overflowed = true;
            debug_assert!(false, "a step queued more than MAX_REQUESTS requests");
            return;
        }
        self.push(Record::History(at));
    }

    /// The request queued at `at`.
    pub(crate) fn request_at(&self, at: u8) -> Option<&HistoryRequest> {
        self.requests.get(usize::from(at))
    }

    /// Queues an event whose text was written with [`Self::span`].
    pub(crate) fn event(&mut self, event: EventRecord) {
        self.push(Record::Event(event));
    }

    /// Queues a room line for the runner to put in order.
    pub(crate) fn relay(&mut self, line: RelayRecord) {
        self.push(Record::Relay(line));
    }

    /// Queues an operator's order for the other servers.
    pub(crate) fn order(&mut self, order: OrderRecord) {
        self.push(Record::Order(order));
    }

    /// The order `record` holds, its text borrowed from the arena.
    pub(crate) fn resolve_order(&self, order: OrderRecord) -> crate::relay::Order<'_> {
        use crate::relay::Action;
        crate::relay::Order {
            room: self.text(order.room),
            target: self.text(order.target),
            by: self.text(order.by),
            action: match order.action {
                OrderAction::Kick { reason } => Action::Kick {
                    reason: reason.map(|reason| self.text(reason)),
                },
                OrderAction::Status {
                    status,
                    on,
                    duration,
                } => Action::Status {
                    status,
                    on,
                    duration,
                },
                OrderAction::Invite => Action::Invite,
            },
        }
    }

    /// The text of `span`.
    fn text(&self, span: Span) -> &str {
        // Cannot fail unless the arena overflowed (a bug the debug build reports): every
        // span was written from a `str`.
        core::str::from_utf8(
            self.bytes
                .get(usize::from(span.start)..usize::from(span.end))
                .unwrap_or_default(),
        )
        .unwrap_or_default()
    }

    /// The line `record` holds, its text borrowed from the arena.
    pub(crate) fn resolve_relay(&self, line: RelayRecord) -> Outgoing<'_> {
        Outgoing {
            conn: line.conn,
            nick: self.text(line.nick),
            to: match line.to {
                RelayTo::Room(room) => Target::Room(self.text(room)),
                RelayTo::Person { nick, node } => Target::Person {
                    nick: self.text(nick),
                    node: self.text(node),
                },
            },
            kind: line.kind,
            text: self.text(line.text),
            at: line.at,
        }
    }

    /// The event `record` holds, its text borrowed from the arena.
    pub(crate) fn resolve(&self, event: EventRecord) -> Event<'_> {
        let text = |span: Span| self.text(span);
        match event {
            EventRecord::Arrived { person, nick } => Event::Arrived {
                person,
                nick: text(nick),
            },
            EventRecord::Joined { person, nick, room } => Event::Joined {
                person,
                nick: text(nick),
                room: text(room),
            },
            EventRecord::Parted {
                person,
                nick,
                room,
                reason,
            } => Event::Parted {
                person,
                nick: text(nick),
                room: text(room),
                reason: reason.map(text),
            },
            EventRecord::Said {
                nick,
                room,
                kind,
                text: said,
                seq,
                at,
            } => Event::Said {
                nick: text(nick),
                room: text(room),
                kind,
                text: text(said),
                seq,
                at,
            },
            EventRecord::Private {
                from,
                to,
                kind,
                text: said,
                msgid,
                at,
            } => Event::Private {
                from: text(from),
                to: text(to),
                kind,
                text: text(said),
                msgid,
                at,
            },
            EventRecord::TopicSet {
                nick,
                room,
                topic,
                at,
            } => Event::TopicSet {
                nick: text(nick),
                room: text(room),
                topic: text(topic),
                at,
            },
            EventRecord::Renamed { person, from, to } => Event::Renamed {
                person,
                from: text(from),
                to: text(to),
            },
            EventRecord::Departed {
                person,
                nick,
                reason,
            } => Event::Departed {
                person,
                nick: text(nick),
                reason: text(reason),
            },
            EventRecord::Away {
                person,
                nick,
                message,
            } => Event::Away {
                person,
                nick: text(nick),
                message: message.map(text),
            },
            EventRecord::Identified {
                person,
                nick,
                account,
            } => Event::Identified {
                person,
                nick: text(nick),
                account: account.map(text),
            },
            EventRecord::RoomCreated { room } => Event::RoomCreated { room: text(room) },
            EventRecord::RoomRemoved { room } => Event::RoomRemoved { room: text(room) },
            EventRecord::ServerBanned {
                mask,
                by,
                at,
                until,
                reason,
            } => Event::ServerBanned {
                mask: text(mask),
                by: text(by),
                at,
                until,
                reason: text(reason),
            },
            EventRecord::ServerUnbanned { mask } => Event::ServerUnbanned { mask: text(mask) },
            EventRecord::RoomRegistered { room, founder } => Event::RoomRegistered {
                room: text(room),
                founder: founder.map(text),
            },
            EventRecord::RoomModes {
                room,
                modes,
                key,
                limit,
            } => Event::RoomModes {
                room: text(room),
                modes: text(modes),
                key: key.map(text),
                limit,
            },
            EventRecord::Banned {
                room,
                list,
                mask,
                by,
                at,
                until,
            } => Event::Banned {
                room: text(room),
                list,
                mask: text(mask),
                by: text(by),
                at,
                until,
            },
            EventRecord::Unbanned { room, list, mask } => Event::Unbanned {
                room: text(room),
                list,
                mask: text(mask),
            },
        }
    }

    /// Where the next record goes: pass it to [`Self::answers_to`].
    pub(crate) fn records_mark(&self) -> usize {
        self.records.len()
    }

    /// The sends queued since record `first` that answer `conn`: to it alone, and not a
    /// private message someone sent it (what it was sent is not an answer, even from itself).
    pub(crate) fn answers_to(
        &self,
        conn: ConnectionId,
        first: usize,
    ) -> heapless::Vec<u8, MAX_OUTPUTS> {
        let mut found = heapless::Vec::new();
        for (index, record) in self.records.iter().enumerate().skip(first) {
            if let Record::Send {
                to:
                    Audience {
                        scope: Scope::One { to, from: None },
                        ..
                    },
                ..
            } = record
                && *to == conn
            {
                // Cannot fail: there are at most MAX_OUTPUTS records.
                let _ = found.push(index as u8);
            }
        }
        found
    }

    /// The request for history queued since record `first` by `conn`, other than a join's
    /// replay, if there is one.
    pub(crate) fn asked_by(
        &mut self,
        conn: ConnectionId,
        first: usize,
    ) -> Option<&mut HistoryRequest> {
        let at = self
            .records
            .iter()
            .skip(first)
            .find_map(|record| match record {
                Record::History(at) => Some(usize::from(*at)),
                _ => None,
            })?;
        self.requests
            .get_mut(at)
            .filter(|request| request.conn() == conn && !request.is_replay())
    }

    /// The bytes of send record `index`.
    pub(crate) fn sent_bytes(&self, index: u8) -> &[u8] {
        match self.records.get(usize::from(index)) {
            Some(&record) => self.bytes_of(record),
            None => &[],
        }
    }

    /// Where in the arena the bytes of send record `index` are.
    pub(crate) fn sent_range(&self, index: u8) -> Option<(usize, usize)> {
        match self.records.get(usize::from(index))? {
            Record::Send { start, end, .. } => Some((usize::from(*start), usize::from(*end))),
            _ => None,
        }
    }

    /// Points send record `index` at the bytes written since `start` instead of its own.
    pub(crate) fn resend(&mut self, index: u8, start: usize) {
        let end = self.bytes.len() as u16;
        if let Some(Record::Send {
            start: old_start,
            end: old_end,
            ..
        }) = self.records.get_mut(usize::from(index))
        {
            *old_start = start as u16;
            *old_end = end;
        }
    }

    /// Appends a copy of the arena's bytes `from..to`, as [`Self::write_bytes`] does.
    pub(crate) fn copy_within(&mut self, from: usize, to: usize) {
        let at = self.bytes.len();
        let len = to.saturating_sub(from);
        if self.bytes.resize(at + len, 0).is_err() {
            self.overflowed = true;
            return;
        }
        self.bytes.copy_within(from..to, at);
    }

    fn push(&mut self, record: Record) {
        if self.records.push(record).is_err() {
            self.overflowed = true;
            debug_assert!(false, "a step queued more than MAX_OUTPUTS outputs");
        }
    }

    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        if self.bytes.extend_from_slice(bytes).is_err() {
            self.overflowed = true;
        }
    }

    /// The next record, past which the queue moves; its bytes are [`Self::bytes_of`].
    pub(crate) fn pop(&mut self) -> Option<Record> {
        let record = *self.records.get(self.next)?;
        self.next += 1;
        Some(record)
    }

    /// The audience of the send popped last.
    pub(crate) fn last_audience(&self) -> Option<&Audience> {
        match self.records.get(self.next.checked_sub(1)?)? {
            Record::Send { to, .. } => Some(to),
            _ => None,
        }
    }

    /// The bytes `record` carries.
    pub(crate) fn bytes_of(&self, record: Record) -> &[u8] {
        let (start, end) = match record {
            Record::Send { start, end, .. } => (start, end),
            Record::Close { .. }
            | Record::Resume { .. }
            | Record::Event(_)
            | Record::History(_)
            | Record::Claim
            | Record::Account
            | Record::Relay(_)
            | Record::Order(_) => (0, 0),
        };
        &self.bytes[start as usize..end as usize]
    }
}

impl fmt::Write for OutputQueue {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_stay_small() {
        // Outputs are returned by value on every poll; keep them a few words (the room
        // filter a send carries is most of it, and the two tables of membership cells a walk
        // reads, a person's own and the second rows: 96 since 2026-12-03, 88 before).
        assert!(size_of::<Output<'static>>() <= 96);
    }

    #[test]
    fn queue_hands_back_what_was_queued_in_order() {
        let mut queue = OutputQueue::default();
        let id = ConnectionId::for_tests(3, 0);
        let start = queue.mark();
        queue.write_bytes(b"hello\r\n");
        queue.send(start, Audience::one(id));
        let empty = queue.mark();
        queue.send(empty, Audience::all()); // nothing written: nothing queued
        queue.close(id, CloseReason::Quit);
        assert!(!queue.is_drained());
        let send = queue.pop().unwrap();
        assert!(matches!(
            send,
            Record::Send {
                to: Audience {
                    scope: Scope::One { .. },
                    ..
                },
                ..
            }
        ));
        assert_eq!(queue.bytes_of(send), b"hello\r\n");
        assert!(matches!(
            queue.pop(),
            Some(Record::Close {
                reason: CloseReason::Quit,
                ..
            })
        ));
        assert!(queue.pop().is_none());
        assert!(queue.is_drained());
        queue.reset();
        assert_eq!(queue.room(), (MAX_OUTPUTS, OUTPUT_BYTES));
    }
}
