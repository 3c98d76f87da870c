//! Who is here: connection handles, and the bounded table of people behind them (the names
//! they go by are [`nickname`](crate::state::nickname)'s).

use core::fmt;

use crate::state::connection::{Connection, Registration};
use crate::state::members::{Members, Status, Tagged, TooManyRooms};
use crate::state::names::NameKey;
use crate::state::nickname::starts_with_ignore_case;
pub use crate::state::nickname::{
    ANONYMOUS, MAX_NICK_BYTES, MAX_NICK_CHARS, Nickname, NicknameError, SERVICE_NAMES,
};
use crate::state::person::{AwayMessage, MAX_AWAY_BYTES, Person, Reads, RemoteTag};
use crate::state::pool::Pool;
use crate::state::rooms::RoomId;
use crate::storage::sealed::{Storage, Table};
use crate::time::Instant;
use crate::wire::line::{Framed, LineBuffer, LinePool, TagBuffer, TagPool};

/// An opaque handle to one connection, handed out by
/// [`Server::handle_connect`](crate::Server::handle_connect).
///
/// Handles are small and `Copy`. A handle outlives its connection harmlessly: once the
/// connection is gone the core answers it with [`Error::UnknownConnection`](crate::Error),
/// even after the slot behind it has been reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId {
    index: u32,
    generation: u32,
}

impl ConnectionId {
    /// A dense index, below the server's capacity, that no other live connection shares. A
    /// runner can use it to index its own per-connection table; it is reused after a disconnect.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The handle as one number, different for every handle a server ever gives out (until
    /// a slot has been reused four billion times): for logs and recordings.
    pub fn to_bits(self) -> u64 {
        u64::from(self.generation) << 32 | u64::from(self.index)
    }
}

#[cfg(test)]
impl ConnectionId {
    pub(crate) fn for_tests(index: u32, generation: u32) -> Self {
        Self { index, generation }
    }
}

impl ConnectionId {
    /// The handle of slot `index` in its `generation`.
    pub(crate) const fn from_parts(index: u32, generation: u32) -> Self {
        Self { index, generation }
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.index)
    }
}

/// How a person is shown to others: their nickname, or `anonymous-N` until they choose one.
///
/// N is the person's slot index plus one, so it is unique among the people of this server.
/// Across several nodes it would not be: that is what `Anonymous` will carry a node tag for
/// (its rendering and [`Roster::find`]'s parsing are the two places that change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Name<'a> {
    Nick(&'a Nickname),
    Anonymous(u32),
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nick(nick) => f.write_str(nick.as_str()),
            Self::Anonymous(number) => write!(f, "{ANONYMOUS}-{number}"),
        }
    }
}

/// The deadline queues a connection can wait in. Each is an intrusive list through the slots in
/// the order connections were put in it, and since every deadline in one queue is "the time it
/// was put in + the same duration", the earliest deadline is always at the head: no scan, no
/// heap, O(1) to add or remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Queue {
    /// Connections that have not sent a line yet, until their silence timeout.
    Silent = 0,
    /// Connections held back by flood control, until they earn their next line.
    Throttled = 1,
    /// New connections not yet greeted, until the greeting delay has passed: an IRC client
    /// registers within it and is never sent the plain-text welcome.
    Greeting = 2,
    /// Registered IRC clients, until they have been quiet for the ping interval.
    Idle = 3,
    /// IRC clients sent a `PING` for being quiet, until the ping timeout.
    Pinged = 4,
    /// Connections waiting for a nickname claim's answer, until the claim timeout.
    Claiming = 5,
    /// Connections waiting for an account request's answer, until the account timeout.
    Account = 6,
    /// Connections going by a registered nickname they have not identified as, until their
    /// grace period ends.
    Grace = 7,
}

const QUEUES: usize = 8;

/// A slot's place in one [`Queue`], while its bit of [`Slot::queued`] is set.
#[derive(Clone, Copy, Debug, Default)]
struct Link {
    deadline: Instant,
    /// The slots before and after it, or [`NO_SLOT`].
    prev: u32,
    next: u32,
}

/// No slot, in a [`Link`]: never a slot's index (see
/// [`MAX_CAPACITY`](crate::storage::MAX_CAPACITY)).
const NO_SLOT: u32 = u32::MAX;

const _: () = assert!(QUEUES <= 8, "`Slot::queued` is a u8");

/// `index` as a link, [`NO_SLOT`] for none.
fn to_link(index: Option<u32>) -> u32 {
    index.unwrap_or(NO_SLOT)
}

/// A link as an index, `None` for [`NO_SLOT`].
fn from_link(link: u32) -> Option<u32> {
    (link != NO_SLOT).then_some(link)
}

/// A local person and their connection, and the slot's bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    generation: u32,
    /// Position in `Roster::live` while the slot is occupied.
    live_pos: Option<u32>,
    /// Its places in the queues, each valid while its bit of `queued` is set (16 bytes a
    /// queue; an `Option` of each took 24).
    links: [Link; QUEUES],
    /// Bit `q` set: the slot waits in queue `q`.
    queued: u8,
    /// The link: what only this process knows.
    pub(crate) connection: Connection,
    /// Who is on the other end.
    pub(crate) person: Person,
}

impl Slot {
    /// Whether it waits in `queue`.
    fn waits(&self, queue: Queue) -> bool {
        self.queued & (1 << queue as u8) != 0
    }

    /// The handle of the connection in this slot, which sits at `index`.
    pub(crate) fn id(&self, index: u32) -> ConnectionId {
        ConnectionId {
            index,
            generation: self.generation,
        }
    }
}

/// The bounded table of connections: at most `capacity` at once, each slot reused after a
/// disconnect. Slots are made as they are first needed, in the storage `S` chose.
#[derive(Debug)]
pub(crate) struct Roster<S: Storage> {
    /// The most slots, the roster's capacity.
    capacity: usize,
    slots: S::Table<Slot>,
    free: S::Table<u32>,
    /// Indices of occupied slots, densely packed so a broadcast touches only live connections.
    live: S::Table<u32>,
    heads: [Option<u32>; QUEUES],
    tails: [Option<u32>; QUEUES],
    /// How many live connections speak IRC, so a send no one would get is not rendered.
    irc_count: usize,
    /// How many of them read message tags.
    tagged_count: usize,
    /// Who is in which room.
    pub(crate) members: Members<S>,
    /// The buffers that IRC lines with long tag sections borrow while they arrive.
    tag_pool: TagPool<S>,
    /// The buffers partial lines are kept in while they wait for their end.
    lines: LinePool<S>,
    /// The away messages of those who are away (see [`Person::away`]).
    aways: Pool<S, AwayMessage>,
    /// The nicknames claimed from the other servers, while the answers are awaited (see
    /// [`Connection::claiming`]).
    claims: Pool<S, Nickname>,
    /// The accounts of those identified as one (see [`Person::account`]): most people are not,
    /// and pay 8 bytes for it rather than a name's 72.
    accounts: Pool<S, Nickname>,
    /// Indices of the slots of people on other servers (see [`Person::remote`]), densely
    /// packed like `live`, which holds only connections.
    remote: S::Table<u32>,
    /// The names of the other servers whose people are known here, for `RemoteTag::node`.
    nodes: heapless::Vec<NodeName, MAX_NODES>,
}

/// The most other servers whose people one server knows at once (a cluster of 17 nodes): the
/// people of one more are not listed here (their lines are still shown). A server lost
/// ([`Server::handle_node_lost`](crate::Server::handle_node_lost)) frees its place.
pub const MAX_NODES: usize = 16;

/// The longest server name a relayed line or person may carry (see [`relay`](crate::relay)),
/// in bytes: room for a name and a suffix that tells one run of a server from the next.
pub const MAX_NODE_NAME_BYTES: usize = 64;

/// A server's name, as [`relay`](crate::relay) checks it.
pub(crate) type NodeName = heapless::String<MAX_NODE_NAME_BYTES>;

impl<S: Storage> Roster<S> {
    /// An empty roster for up to `capacity` slots (for [`Inline`](crate::Inline), its `N`
    /// whatever is asked). Only the storage's room is reserved: no slot is made yet.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        // Slot and membership cell indices are u32: MAX_CAPACITY keeps both below `u32::MAX`,
        // which is no index in the intrusive lists.
        let capacity = S::capacity(capacity).min(crate::storage::MAX_CAPACITY);
        Self {
            capacity,
            slots: S::table(capacity),
            free: S::table(capacity),
            live: S::table(capacity),
            heads: [None; QUEUES],
            tails: [None; QUEUES],
            irc_count: 0,
            tagged_count: 0,
            members: Members::with_capacity(capacity),
            tag_pool: TagPool::new(),
            lines: LinePool::with_capacity(capacity),
            aways: Pool::with_capacity(capacity),
            claims: Pool::with_capacity(capacity),
            accounts: Pool::with_capacity(capacity),
            remote: S::table(capacity),
            nodes: heapless::Vec::new(),
        }
    }

    /// The most connections (and people of other servers) it can hold at once.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The index of the server called `name` in the table of servers, added if new; `None`
    /// when [`MAX_NODES`] are known already.
    pub(crate) fn node_index(&mut self, name: &str) -> Option<u8> {
        if let Some(at) = self.find_node(name) {
            return Some(at);
        }
        let node = NodeName::try_from(name).ok()?;
        // A place a lost server left, or a new one.
        if let Some(at) = self.nodes.iter().position(|node| node.is_empty()) {
            self.nodes[at] = node;
            return Some(at as u8);
        }
        self.nodes.push(node).ok()?;
        Some((self.nodes.len() - 1) as u8)
    }

    /// Forgets the server at `index`, none of whose people are known any more: its place in
    /// the table is free for another.
    pub(crate) fn forget_node(&mut self, index: u8) {
        debug_assert!(self.remote_of_node(index).next().is_none());
        if let Some(node) = self.nodes.get_mut(usize::from(index)) {
            node.clear();
        }
    }

    /// The name of the server at `index` of the table.
    pub(crate) fn node_name(&self, index: u8) -> &str {
        self.nodes
            .get(usize::from(index))
            .map_or("", |node| node.as_str())
    }

    /// How many other servers are known (a lost one's place is empty until reused).
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.iter().filter(|node| !node.is_empty()).count()
    }

    /// The index of the server called `name`, if its people are known.
    pub(crate) fn find_node(&self, name: &str) -> Option<u8> {
        self.nodes
            .iter()
            .position(|node| !node.is_empty() && node.as_str() == name)
            .map(|at| at as u8)
    }

    /// Takes a free slot for a person on another server, called `nick`; `None` when every
    /// slot is in use. They are in no queue and in no count of connections.
    pub(crate) fn insert_remote(&mut self, tag: RemoteTag, nick: Nickname) -> Option<ConnectionId> {
        let index = self.take_slot()?;
        let pos = self.remote.len() as u32;
        // Cannot fail: `remote` holds one entry per remote slot, and a slot was free.
        let _ = self.remote.push(index);
        let slot = &mut self.slots[index as usize];
        slot.live_pos = Some(pos);
        slot.person.remote = Some(tag);
        slot.person.nick = Some(nick);
        Some(slot.id(index))
    }

    /// The person on another server with `tag`, if known here. A scan: what other servers
    /// relay of their people (joins, parts, renames) is rare next to lines.
    pub(crate) fn find_remote(&self, tag: RemoteTag) -> Option<ConnectionId> {
        self.remote.iter().find_map(|&index| {
            let slot = &self.slots[index as usize];
            (slot.person.remote == Some(tag)).then(|| slot.id(index))
        })
    }

    /// The people known here of the server at `node`.
    pub(crate) fn remote_of_node(&self, node: u8) -> impl Iterator<Item = ConnectionId> + '_ {
        self.remote.iter().filter_map(move |&index| {
            let slot = &self.slots[index as usize];
            slot.person
                .remote
                .is_some_and(|tag| tag.node == node)
                .then(|| slot.id(index))
        })
    }

    /// How many people of other servers are known here.
    pub(crate) fn remote_count(&self) -> usize {
        self.remote.len()
    }

    /// Feeds `bytes` to `id`'s framer ([`LineFramer::feed`](crate::wire::line::LineFramer::feed)).
    pub(crate) fn feed(&mut self, id: ConnectionId, bytes: &[u8]) -> Option<(usize, Framed)> {
        let index = id.index as usize;
        self.get(id)?;
        Some(
            self.slots[index]
                .connection
                .framer
                .feed(bytes, &mut self.lines, &mut self.tag_pool),
        )
    }

    /// Takes the line `id`'s framer just reported (or had put back), giving its buffer back
    /// to the pool ([`LineFramer::take_line`](crate::wire::line::LineFramer::take_line)).
    pub(crate) fn take_line(&mut self, id: ConnectionId) -> LineBuffer {
        let index = id.index as usize;
        if self.get(id).is_none() {
            return LineBuffer::new();
        }
        self.slots[index]
            .connection
            .framer
            .take_line(&mut self.lines)
    }

    /// Puts `line` back for `id` to be handed out again before any new byte
    /// ([`LineFramer::put_back`](crate::wire::line::LineFramer::put_back)).
    pub(crate) fn put_back(&mut self, id: ConnectionId, line: &[u8]) {
        let index = id.index as usize;
        if self.get(id).is_some() {
            self.slots[index]
                .connection
                .framer
                .put_back(line, &mut self.lines);
        }
    }

    /// The nickname claimed for `id` from the other servers, while the answer is awaited.
    pub(crate) fn claiming(&self, id: ConnectionId) -> Option<&Nickname> {
        let at = self.get(id)?.connection.claiming?;
        Some(self.claims.get(at))
    }

    /// Notes that `nick` is claimed for `id` (replacing any claim before).
    pub(crate) fn set_claiming(&mut self, id: ConnectionId, nick: &Nickname) {
        let index = id.index as usize;
        if self.get(id).is_none() {
            return;
        }
        let connection = &mut self.slots[index].connection;
        match connection.claiming {
            Some(at) => *self.claims.get_mut(at) = nick.clone(),
            // `None` only past the capacity, which the roster never goes.
            None => connection.claiming = self.claims.put(nick.clone()),
        }
    }

    /// Takes the nickname claimed for `id`, if any: no claim is awaited any more.
    pub(crate) fn take_claiming(&mut self, id: ConnectionId) -> Option<Nickname> {
        let index = id.index as usize;
        self.get(id)?;
        let at = self.slots[index].connection.claiming.take()?;
        let nick = self.claims.get(at).clone();
        self.claims.free(at);
        Some(nick)
    }

    /// The account `id` is identified as, if any.
    pub(crate) fn account(&self, id: ConnectionId) -> Option<&Nickname> {
        let at = self.get(id)?.person.account?;
        Some(self.accounts.get(at))
    }

    /// The account of the person in `slot`, if any (for a walk over the slots).
    pub(crate) fn account_in(&self, slot: &Slot) -> Option<&Nickname> {
        Some(self.accounts.get(slot.person.account?))
    }

    /// Sets the account `id` is identified as (`None`: none); the one it was, if any.
    pub(crate) fn set_account(
        &mut self,
        id: ConnectionId,
        account: Option<Nickname>,
    ) -> Option<Nickname> {
        self.get(id)?;
        let person = &mut self.slots[id.index as usize].person;
        match (person.account, account) {
            (Some(at), Some(account)) => {
                Some(core::mem::replace(self.accounts.get_mut(at), account))
            }
            (None, Some(account)) => {
                // `None` only past the capacity, which the roster never goes: then the
                // account is not kept, and they show as not identified.
                person.account = self.accounts.put(account);
                None
            }
            (Some(at), None) => {
                person.account = None;
                let was = self.accounts.get(at).clone();
                self.accounts.free(at);
                Some(was)
            }
            (None, None) => None,
        }
    }

    /// `id`'s away message, if they are away.
    pub(crate) fn away(&self, id: ConnectionId) -> Option<&str> {
        let at = self.get(id)?.person.away?;
        Some(self.aways.get(at))
    }

    /// Marks `id` away with `message` (cut to [`MAX_AWAY_BYTES`]), or back with `None`.
    pub(crate) fn set_away(&mut self, id: ConnectionId, message: Option<&str>) {
        let index = id.index as usize;
        if self.get(id).is_none() {
            return;
        }
        let person = &mut self.slots[index].person;
        match (person.away, message) {
            (Some(at), Some(message)) => {
                let kept = self.aways.get_mut(at);
                kept.clear();
                let _ = kept.push_str(crate::wire::line::cut(message, MAX_AWAY_BYTES));
            }
            (None, Some(message)) => {
                let mut kept = AwayMessage::new();
                let _ = kept.push_str(crate::wire::line::cut(message, MAX_AWAY_BYTES));
                // `None` only past the capacity, which the roster never goes: then the
                // message is not kept, and they show as here.
                person.away = self.aways.put(kept);
            }
            (Some(at), None) => {
                self.aways.free(at);
                person.away = None;
            }
            (None, None) => {}
        }
    }

    /// The complete line `id`'s framer just reported, before it is taken; empty if none.
    pub(crate) fn peek_line(&self, id: ConnectionId) -> &[u8] {
        self.get(id)
            .map_or(&[], |slot| slot.connection.framer.peek_line(&self.lines))
    }

    /// The tag section `id`'s framer kept apart from the line it just reported, if it did.
    pub(crate) fn take_tags(&mut self, id: ConnectionId) -> Option<TagBuffer> {
        let index = id.index as usize;
        self.get(id)?;
        self.slots[index]
            .connection
            .framer
            .take_tags(&mut self.tag_pool)
    }

    /// Whether a connection other than `except` is waiting for a claim of `nick` (ASCII case
    /// ignored). A scan: claims are rare, and only made in cluster mode.
    pub(crate) fn claimed_by_other(&self, nick: &Nickname, except: ConnectionId) -> bool {
        self.live.iter().any(|&index| {
            let slot = &self.slots[index as usize];
            slot.id(index) != except
                && slot
                    .connection
                    .claiming
                    .is_some_and(|at| self.claims.get(at).matches(nick.as_str()))
        })
    }

    /// How many line buffers are lent now, and how many were ever made.
    #[cfg(test)]
    pub(crate) fn line_buffers(&self) -> (usize, usize) {
        (self.lines.lent(), self.lines.made())
    }

    /// How many tag buffers are lent now.
    #[cfg(test)]
    pub(crate) fn tag_buffers_lent(&self) -> usize {
        self.tag_pool.lent()
    }

    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// How many live connections speak IRC.
    pub(crate) fn irc_count(&self) -> usize {
        self.irc_count
    }

    /// How many live IRC connections read message tags.
    pub(crate) fn tagged_count(&self) -> usize {
        self.tagged_count
    }

    /// Which message tags IRC client `id` gets: the server's (`server-time` or
    /// `message-tags`), and other clients' (`message-tags`).
    pub(crate) fn set_tagged(&mut self, id: ConnectionId, tags: Tagged) {
        let Some(slot) = self.get_mut(id) else {
            return;
        };
        let was = core::mem::replace(&mut slot.person.tagged, tags.server);
        slot.person.client_tags = tags.client;
        match (was, tags.server) {
            (false, true) => self.tagged_count += 1,
            (true, false) => self.tagged_count -= 1,
            _ => {}
        }
        self.members.set_tagged(id.index, tags);
    }

    /// How many live connections speak plain text or JSON.
    pub(crate) fn text_count(&self) -> usize {
        self.live.len() - self.irc_count
    }

    /// Marks live `id` as an IRC client for the rest of its life.
    pub(crate) fn speak_irc(&mut self, id: ConnectionId) {
        if let Some(slot) = self.get_mut(id)
            && slot.connection.registration.is_none()
        {
            slot.connection.registration = Some(Registration::default());
            slot.person.reads = Reads::Irc;
            slot.connection.framer.speak_irc();
            self.members.set_irc(id.index);
            self.irc_count += 1;
        }
    }

    /// Takes a free slot for a new connection; `None` when every slot is in use.
    ///
    /// With a `silence_deadline`, the connection is closed by the timeout step ([`Queue::Silent`])
    /// unless it sends a line before then. Deadlines must not decrease from call to call.
    pub(crate) fn insert(&mut self, silence_deadline: Option<Instant>) -> Option<ConnectionId> {
        let index = self.take_slot()?;
        let live_pos = self.live.len() as u32;
        // Cannot fail: `live` holds one entry per occupied slot, and a slot was free.
        let _ = self.live.push(index);
        let slot = &mut self.slots[index as usize];
        slot.live_pos = Some(live_pos);
        let id = ConnectionId {
            index,
            generation: slot.generation,
        };
        if let Some(deadline) = silence_deadline {
            self.link(Queue::Silent, index, deadline);
        }
        Some(id)
    }

    /// The index of a free slot, taken: one freed before, or a new one; `None` when every
    /// slot of the capacity is in use.
    fn take_slot(&mut self) -> Option<u32> {
        if let Some(index) = self.free.pop() {
            return Some(index);
        }
        if self.slots.len() >= self.capacity {
            return None;
        }
        let index = u32::try_from(self.slots.len()).ok()?;
        self.slots.push(Slot::default()).ok()?;
        Some(index)
    }

    /// Frees the connection's slot. Returns false if `id` was not live.
    pub(crate) fn remove(&mut self, id: ConnectionId) -> bool {
        let Some(pos) = self.get(id).and_then(|slot| slot.live_pos) else {
            return false;
        };
        debug_assert!(!self.members.in_any(id.index), "left every room first");
        self.unlink(Queue::Silent, id.index);
        self.unlink(Queue::Throttled, id.index);
        self.unlink(Queue::Greeting, id.index);
        self.unlink(Queue::Idle, id.index);
        self.unlink(Queue::Pinged, id.index);
        self.unlink(Queue::Claiming, id.index);
        self.unlink(Queue::Account, id.index);
        self.unlink(Queue::Grace, id.index);
        if self.slots[id.index as usize].person.reads_irc() {
            self.irc_count -= 1;
        }
        if self.slots[id.index as usize].person.tagged {
            self.tagged_count -= 1;
        }
        let list = if self.slots[id.index as usize].person.is_remote() {
            &mut self.remote
        } else {
            &mut self.live
        };
        list.swap_remove(pos as usize);
        if let Some(&moved) = list.get(pos as usize) {
            self.slots[moved as usize].live_pos = Some(pos);
        }
        let slot = &mut self.slots[id.index as usize];
        if let Some(at) = slot.person.away {
            self.aways.free(at);
        }
        if let Some(at) = slot.connection.claiming {
            self.claims.free(at);
        }
        if let Some(at) = slot.person.account.take() {
            self.accounts.free(at);
        }
        slot.connection
            .framer
            .release(&mut self.lines, &mut self.tag_pool);
        *slot = Slot {
            generation: slot.generation.wrapping_add(1),
            ..Slot::default()
        };
        // Cannot fail: `free` has room for every slot and this one was not in it.
        let _ = self.free.push(id.index);
        true
    }

    pub(crate) fn get(&self, id: ConnectionId) -> Option<&Slot> {
        self.slots
            .get(id.index as usize)
            .filter(|slot| slot.generation == id.generation && slot.live_pos.is_some())
    }

    pub(crate) fn get_mut(&mut self, id: ConnectionId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|slot| slot.generation == id.generation && slot.live_pos.is_some())
    }

    /// Puts live `id` in `room`, which it is not in yet.
    pub(crate) fn join_room(&mut self, id: ConnectionId, room: RoomId) -> Result<(), TooManyRooms> {
        let person = &self.get(id).ok_or(TooManyRooms)?.person;
        let (irc, remote, tagged) = (
            person.reads_irc(),
            person.is_remote(),
            Tagged {
                server: person.tagged,
                client: person.client_tags,
            },
        );
        self.members
            .join(id.index, id.generation, irc, remote, tagged, room)
    }

    /// Takes `id` out of `room`; false if it was not in it.
    pub(crate) fn leave_room(&mut self, id: ConnectionId, room: RoomId) -> bool {
        self.get(id).is_some() && self.members.leave(id.index, room)
    }

    /// Makes `room` (one it is in, or none) the room `id`'s lines go to; the one it was.
    pub(crate) fn set_current(&mut self, id: ConnectionId, room: Option<RoomId>) -> Option<RoomId> {
        let slot = self.get_mut(id)?;
        let old = core::mem::replace(&mut slot.person.current, room);
        self.members.set_current(id.index, old, room);
        old
    }

    /// Whether `id` is in `room`.
    pub(crate) fn in_room(&self, id: ConnectionId, room: RoomId) -> bool {
        self.get(id).is_some() && self.members.contains(id.index, room)
    }

    /// Whether `id` is an operator of `room`.
    pub(crate) fn is_op(&self, id: ConnectionId, room: RoomId) -> bool {
        self.get(id).is_some() && self.members.is_op(id.index, room)
    }

    /// Makes `id` an operator of `room`, or not; false if it is not in it.
    pub(crate) fn set_op(&mut self, id: ConnectionId, room: RoomId, on: bool) -> bool {
        self.get(id).is_some() && self.members.set_op(id.index, room, on)
    }

    /// Whether `id` has `status` in `room`.
    pub(crate) fn has(&self, id: ConnectionId, room: RoomId, status: Status) -> bool {
        self.get(id).is_some() && self.members.has(id.index, room, status)
    }

    /// Gives `id` `status` in `room`, or takes it; false if it is not in it.
    pub(crate) fn set_status(
        &mut self,
        id: ConnectionId,
        room: RoomId,
        status: Status,
        on: bool,
    ) -> bool {
        self.get(id).is_some() && self.members.set(id.index, room, status, on)
    }

    /// The rooms `id` is in, in no particular order.
    pub(crate) fn rooms_of(&self, id: ConnectionId) -> impl Iterator<Item = RoomId> + '_ {
        let index = if self.get(id).is_some() {
            id.index
        } else {
            u32::MAX
        };
        self.members.rooms_of(index)
    }

    /// The live connections in `room`.
    pub(crate) fn members_of(&self, room: RoomId) -> impl Iterator<Item = ConnectionId> + '_ {
        self.members
            .of(room)
            .map(|index| self.slots[index as usize].id(index))
    }

    /// The live indices and the slot table, for iterating recipients after the roster is
    /// borrowed by an output.
    pub(crate) fn parts(&self) -> (&[u32], &[Slot]) {
        (&self.live, &self.slots)
    }

    /// The name `id` is shown under. `id` must be live.
    pub(crate) fn name(&self, id: ConnectionId) -> Name<'_> {
        match self.get(id).and_then(|slot| slot.person.nick.as_ref()) {
            Some(nick) => Name::Nick(nick),
            None => Self::anonymous(id),
        }
    }

    /// The name `id` goes by without a nickname: `anonymous-N`, N its slot's number.
    pub(crate) fn anonymous(id: ConnectionId) -> Name<'static> {
        Name::Anonymous(id.index + 1)
    }

    /// Calls `change` with every live connection's slot (not the people of other servers).
    pub(crate) fn for_each_live(&mut self, mut change: impl FnMut(&mut Slot)) {
        for &index in self.live.iter() {
            if let Some(slot) = self.slots.get_mut(index as usize) {
                change(slot);
            }
        }
    }

    /// Everyone: the live connections, then the people of other servers.
    pub(crate) fn people(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.live
            .iter()
            .chain(self.remote.iter())
            .map(|&index| self.slots[index as usize].id(index))
    }

    /// The live connection called `name` (nickname or `anonymous-N`, ASCII case ignored).
    pub(crate) fn find(&self, name: &str) -> Option<ConnectionId> {
        if let Some(number) = anonymous_number(name) {
            let index = number.checked_sub(1)?;
            let slot = self.slots.get(index as usize)?;
            return (slot.live_pos.is_some() && slot.person.nick.is_none()).then(|| slot.id(index));
        }
        let key = NameKey::of(name)?;
        let hash = key.hash();
        self.live
            .iter()
            .chain(self.remote.iter())
            .find_map(|&index| {
                let slot = &self.slots[index as usize];
                slot.person
                    .nick
                    .as_ref()
                    .is_some_and(|nick| nick.has_key(&key, hash))
                    .then(|| slot.id(index))
            })
    }

    /// The connection at the head of `queue`, with its deadline.
    pub(crate) fn first(&self, queue: Queue) -> Option<(Instant, ConnectionId)> {
        let index = self.heads[queue as usize]?;
        let slot = &self.slots[index as usize];
        slot.waits(queue)
            .then(|| (slot.links[queue as usize].deadline, slot.id(index)))
    }

    /// Whether `id` waits in `queue`.
    pub(crate) fn waits(&self, queue: Queue, id: ConnectionId) -> bool {
        self.get(id).is_some_and(|slot| slot.waits(queue))
    }

    /// Puts live `id` at the tail of `queue`, due at `deadline`, which must not be earlier
    /// than the deadlines already in it.
    pub(crate) fn enqueue(&mut self, queue: Queue, id: ConnectionId, deadline: Instant) {
        if self.get(id).is_some() && !self.waits(queue, id) {
            self.link(queue, id.index, deadline);
        }
    }

    /// Takes `id` out of `queue`, if it is in it.
    pub(crate) fn dequeue(&mut self, queue: Queue, id: ConnectionId) {
        if self.get(id).is_some() {
            self.unlink(queue, id.index);
        }
    }

    fn link(&mut self, queue: Queue, index: u32, deadline: Instant) {
        let q = queue as usize;
        let link = Link {
            deadline,
            prev: to_link(self.tails[q]),
            next: NO_SLOT,
        };
        match self.tails[q] {
            Some(tail) => self.slots[tail as usize].links[q].next = index,
            None => self.heads[q] = Some(index),
        }
        self.tails[q] = Some(index);
        let slot = &mut self.slots[index as usize];
        slot.links[q] = link;
        slot.queued |= 1 << q;
    }

    fn unlink(&mut self, queue: Queue, index: u32) {
        let q = queue as usize;
        let slot = &mut self.slots[index as usize];
        if !slot.waits(queue) {
            return;
        }
        slot.queued &= !(1 << q);
        let link = slot.links[q];
        match from_link(link.prev) {
            Some(prev) => self.slots[prev as usize].links[q].next = link.next,
            None => self.heads[q] = from_link(link.next),
        }
        match from_link(link.next) {
            Some(next) => self.slots[next as usize].links[q].prev = link.prev,
            None => self.tails[q] = from_link(link.prev),
        }
    }
}

/// `N` if `name` is `anonymous-N` spelt exactly as this crate writes it (lowercase): how a
/// name from elsewhere, which must be that spelling, is read.
pub(crate) fn exact_anonymous_number(name: &str) -> Option<u32> {
    name.starts_with(ANONYMOUS)
        .then(|| anonymous_number(name))
        .flatten()
}

/// `N` if `name` is `anonymous-N` (ASCII case ignored).
fn anonymous_number(name: &str) -> Option<u32> {
    if !starts_with_ignore_case(name, ANONYMOUS) {
        return None;
    }
    let digits = name[ANONYMOUS.len()..].strip_prefix('-')?;
    // Only the canonical spelling: no sign, no leading zero.
    if digits.starts_with(['+', '0']) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Inline;

    #[test]
    fn a_departure_gives_back_the_tag_buffer_of_its_partial_line() {
        let mut roster: Roster<Inline<4>> = Roster::with_capacity(4);
        let id = roster.insert(None).unwrap();
        roster.speak_irc(id);
        let partial = [b"@+a=".as_slice(), &[b'x'; 1000]].concat();
        assert_eq!(roster.feed(id, &partial), Some((1004, Framed::Pending)));
        assert_eq!(roster.tag_buffers_lent(), 1);
        assert!(roster.remove(id));
        assert_eq!(roster.tag_buffers_lent(), 0);
        assert_eq!(roster.feed(id, b"x"), None, "gone");
    }

    #[test]
    fn line_buffers_are_lent_only_to_partial_lines_and_never_run_out() {
        let mut roster: Roster<Inline<4>> = Roster::with_capacity(4);
        let ids: std::vec::Vec<_> = (0..4).map(|_| roster.insert(None).unwrap()).collect();
        assert_eq!(roster.line_buffers(), (0, 0), "idle connections hold none");
        // A whole line borrows a buffer and gives it back when taken.
        assert_eq!(roster.feed(ids[0], b"hi\n"), Some((3, Framed::Line)));
        assert_eq!(roster.peek_line(ids[0]), b"hi");
        assert_eq!(roster.take_line(ids[0]).as_slice(), b"hi");
        assert_eq!(roster.line_buffers(), (0, 1));
        // Every connection of the capacity in the middle of a line at once.
        for (at, &id) in ids.iter().enumerate() {
            let half = std::format!("line {at}");
            assert_eq!(roster.feed(id, half.as_bytes()), Some((6, Framed::Pending)));
        }
        assert_eq!(roster.line_buffers(), (4, 4));
        for (at, &id) in ids.iter().enumerate().skip(1) {
            assert_eq!(roster.feed(id, b" ends\n"), Some((6, Framed::Line)));
            let line = roster.take_line(id);
            assert_eq!(line.as_slice(), std::format!("line {at} ends").as_bytes());
        }
        // A departure gives back the buffer of its partial line; a newcomer's slot and
        // buffer are fresh.
        assert!(roster.remove(ids[0]));
        assert_eq!(roster.line_buffers(), (0, 4));
        let newcomer = roster.insert(None).unwrap();
        assert_eq!(roster.feed(newcomer, b"new\n"), Some((4, Framed::Line)));
        assert_eq!(roster.take_line(newcomer).as_slice(), b"new");
    }

    #[test]
    fn accounts_are_kept_apart_only_for_those_identified() {
        let mut roster: Roster<Inline<3>> = Roster::with_capacity(3);
        let ids: std::vec::Vec<_> = (0..3).map(|_| roster.insert(None).unwrap()).collect();
        let name = |name: &str| Nickname::new(name).unwrap();
        assert_eq!(
            (roster.account(ids[0]), roster.accounts.counts()),
            (None, (0, 0))
        );
        for (at, &id) in ids.iter().enumerate() {
            assert_eq!(
                roster.set_account(id, Some(name(&std::format!("acct{at}")))),
                None
            );
        }
        assert_eq!(roster.accounts.counts(), (3, 3), "one each, the capacity");
        assert_eq!(
            roster.set_account(ids[0], Some(name("other"))),
            Some(name("acct0"))
        );
        assert_eq!(roster.account(ids[0]), Some(&name("other")));
        assert_eq!(
            roster.set_account(ids[1], None),
            Some(name("acct1")),
            "logged out"
        );
        assert_eq!(roster.account(ids[1]), None);
        assert_eq!(roster.set_account(ids[1], None), None);
        assert!(roster.remove(ids[2]));
        assert_eq!(roster.accounts.counts(), (1, 3), "logged out, and gone");
        let newcomer = roster.insert(None).unwrap();
        assert_eq!(
            roster.account(newcomer),
            None,
            "the one gone's account is not theirs"
        );
        roster.set_account(newcomer, Some(name("new")));
        roster.set_account(ids[1], Some(name("again")));
        assert_eq!(roster.accounts.counts(), (3, 3));
        assert_eq!(roster.account(newcomer), Some(&name("new")));
        assert_eq!(roster.account(ids[1]), Some(&name("again")));
        assert_eq!(roster.account(ids[2]), None, "a stale handle has none");
    }

    #[test]
    fn away_messages_are_kept_apart_only_for_those_away() {
        let mut roster: Roster<Inline<4>> = Roster::with_capacity(4);
        let ids: std::vec::Vec<_> = (0..4).map(|_| roster.insert(None).unwrap()).collect();
        assert_eq!(roster.aways.counts(), (0, 0));
        for (at, &id) in ids.iter().enumerate() {
            roster.set_away(id, Some(&std::format!("lunch {at}")));
        }
        assert_eq!(roster.aways.counts(), (4, 4), "one each, the capacity");
        roster.set_away(ids[0], Some(&"x".repeat(MAX_AWAY_BYTES + 20)));
        assert_eq!(
            roster.away(ids[0]),
            Some("x".repeat(MAX_AWAY_BYTES).as_str())
        );
        assert_eq!(roster.away(ids[3]), Some("lunch 3"));
        roster.set_away(ids[1], None);
        assert_eq!(roster.away(ids[1]), None);
        assert!(roster.remove(ids[2]));
        assert_eq!(roster.aways.counts(), (2, 4), "back, and gone");
        let newcomer = roster.insert(None).unwrap();
        assert_eq!(roster.away(newcomer), None);
        roster.set_away(newcomer, Some("tea"));
        roster.set_away(ids[1], Some("nap"));
        assert_eq!(roster.away(newcomer), Some("tea"));
        assert_eq!(roster.away(ids[1]), Some("nap"));
        assert_eq!(roster.away(ids[0]).map(str::len), Some(MAX_AWAY_BYTES));
        assert_eq!(roster.aways.counts(), (4, 4));
    }

    #[test]
    fn claims_are_kept_apart_only_while_awaited() {
        let mut roster: Roster<Inline<2>> = Roster::with_capacity(2);
        let (a, b) = (roster.insert(None).unwrap(), roster.insert(None).unwrap());
        let (ann, bob) = (Nickname::new("ann").unwrap(), Nickname::new("bob").unwrap());
        assert_eq!(roster.claiming(a), None);
        roster.set_claiming(a, &ann);
        roster.set_claiming(b, &ann);
        roster.set_claiming(b, &bob);
        assert_eq!(roster.claims.counts(), (2, 2));
        assert_eq!(roster.claiming(b), Some(&bob));
        assert!(roster.claimed_by_other(&Nickname::new("ANN").unwrap(), b));
        assert!(!roster.claimed_by_other(&ann, a));
        assert_eq!(roster.take_claiming(a), Some(ann));
        assert_eq!(roster.take_claiming(a), None);
        assert!(roster.remove(b));
        assert_eq!(roster.claims.counts(), (0, 2));
    }

    #[test]
    fn nickname_rules() {
        #[rustfmt::skip]
        let cases: &[(&str, Result<(), NicknameError>)] = &[
            ("alice",              Ok(())),
            ("A",                  Ok(())),
            ("_under",             Ok(())),
            ("[x]^{y}|`z\\",       Ok(())),
            ("bob-2",              Ok(())),
            ("sixteen_chars_ok",   Ok(())),
            ("seventeen_chars_x",  Err(NicknameError::TooLong)),
            ("",                   Err(NicknameError::Empty)),
            ("2bob",               Err(NicknameError::BadFirstChar('2'))),
            ("-bob",               Err(NicknameError::BadFirstChar('-'))),
            ("bo b",               Err(NicknameError::InvalidChar(' '))),
            ("bob!",               Err(NicknameError::InvalidChar('!'))),
            ("bob\u{1b}[2J",       Err(NicknameError::InvalidChar('\u{1b}'))),
            ("名前",               Ok(())),
            ("小明",               Ok(())),
            ("Дмитрий",            Ok(())),
            ("Ærøskøbing",         Ok(())),
            ("山田abc",            Ok(())),
            ("名名名名名名名名名名名名名名名名", Ok(())),
            ("名名名名名名名名名名名名名名名名名", Err(NicknameError::TooLong)),
            ("\u{430}lice",        Err(NicknameError::MixedScripts)),
            ("ａｌｉｃｅ",         Err(NicknameError::InvalidChar('ａ'))),
            ("bob\u{200b}",        Err(NicknameError::InvalidChar('\u{200b}'))),
            ("bob\u{2067}",        Err(NicknameError::InvalidChar('\u{2067}'))),
            ("٣سلام",              Err(NicknameError::BadFirstChar('٣'))),
            ("#room",              Err(NicknameError::InvalidChar('#'))),
            ("anonymous",          Err(NicknameError::Reserved)),
            ("ANONYMOUS-3",        Err(NicknameError::Reserved)),
            ("anonymously",        Err(NicknameError::Reserved)),
            ("anon",               Ok(())),
            ("NickServ",           Err(NicknameError::Service)),
            ("chanserv",           Err(NicknameError::Service)),
            ("NICKSERV",           Err(NicknameError::Service)),
            ("NickServ_",          Ok(())),
            ("NickServer",         Ok(())),
        ];
        for (name, expected) in cases {
            assert_eq!(Nickname::new(name).map(|_| ()), *expected, "name {name:?}");
        }
        assert!(Nickname::new("Alice").unwrap().matches("aLICE"));
        assert!(Nickname::new("Alice").unwrap().matches("\u{430}lice"));
        assert!(Nickname::new("Дмитрий").unwrap().matches("ДМИТРИЙ"));
        // Kept in NFC.
        assert_eq!(Nickname::new("Jose\u{301}").unwrap().as_str(), "Jos\u{e9}");
    }

    #[test]
    fn anonymous_numbers() {
        assert_eq!(anonymous_number("anonymous-3"), Some(3));
        assert_eq!(anonymous_number("Anonymous-12"), Some(12));
        assert_eq!(anonymous_number("anonymous-+3"), None);
        assert_eq!(anonymous_number("anonymous-03"), None);
        assert_eq!(anonymous_number("anonymous-10"), Some(10));
        assert_eq!(anonymous_number("anonymous3"), None);
        assert_eq!(anonymous_number("anonymous-"), None);
        assert_eq!(anonymous_number("bob"), None);
        assert_eq!(exact_anonymous_number("anonymous-12"), Some(12));
        assert_eq!(exact_anonymous_number("Anonymous-12"), None);
        assert_eq!(exact_anonymous_number("anonymous-+3"), None);
    }

    #[test]
    fn slots_are_reused_and_stale_handles_rejected() {
        let mut roster = Roster::<Inline<2>>::with_capacity(2);
        let a = roster.insert(None).unwrap();
        let b = roster.insert(None).unwrap();
        assert_eq!(roster.insert(None), None, "full");
        assert!(roster.remove(a));
        assert!(!roster.remove(a), "already gone");
        let c = roster.insert(None).unwrap();
        assert_eq!(c.index(), a.index());
        assert_ne!(c, a);
        assert!(roster.get(a).is_none());
        assert!(roster.get(c).is_some());
        let mut live: std::vec::Vec<_> = roster.people().collect();
        live.sort();
        let mut expected = std::vec![b, c];
        expected.sort();
        assert_eq!(live, expected);
    }

    #[test]
    fn find_by_nickname_or_anonymous_number() {
        let mut roster = Roster::<Inline<4>>::with_capacity(4);
        let a = roster.insert(None).unwrap();
        let b = roster.insert(None).unwrap();
        assert_eq!(roster.find("anonymous-1"), Some(a));
        assert_eq!(roster.find("ANONYMOUS-2"), Some(b));
        assert_eq!(roster.find("anonymous-3"), None, "free slot");
        assert_eq!(roster.find("anonymous-0"), None);
        roster.get_mut(b).unwrap().person.nick = Some(Nickname::new("Bob").unwrap());
        assert_eq!(roster.find("anonymous-2"), None, "named now");
        assert_eq!(roster.find("bob"), Some(b));
        roster.remove(a);
        assert_eq!(roster.find("anonymous-1"), None, "gone");
    }

    #[test]
    fn silent_list_keeps_connect_order_through_removals() {
        let mut roster = Roster::<Inline<4>>::with_capacity(4);
        let ids: std::vec::Vec<_> = (0..4)
            .map(|t| roster.insert(Some(Instant::from_millis(t))).unwrap())
            .collect();
        roster.dequeue(Queue::Silent, ids[1]);
        assert_eq!(
            roster.first(Queue::Silent),
            Some((Instant::from_millis(0), ids[0]))
        );
        roster.remove(ids[0]);
        assert_eq!(
            roster.first(Queue::Silent),
            Some((Instant::from_millis(2), ids[2]))
        );
        roster.dequeue(Queue::Silent, ids[3]);
        roster.remove(ids[2]);
        assert_eq!(roster.first(Queue::Silent), None);
        let late = roster.insert(Some(Instant::from_millis(9))).unwrap();
        assert_eq!(
            roster.first(Queue::Silent),
            Some((Instant::from_millis(9), late))
        );
    }
}
