//! Rooms: named groups of people. Everyone starts in [`LOBBY`]; a room is created by the first
//! person to join it and removed when the last one leaves, unless it has a topic (the lobby
//! always stays). A room with a topic stays like a registered IRC channel: its topic is what a
//! store keeps across a restart, and it would be odd for it to outlive a restart but not the
//! room emptying.

use core::cell::{Cell, RefCell};
use core::fmt;

use crate::state::names::{self, Letters};
use crate::state::nickname::Nickname;
use crate::storage::sealed::{Storage, Table};
use crate::time::Instant;
use crate::wire::line::cut;

/// Which of a room's lists of masks a ban is on (and an [`Event::Banned`](crate::Event::Banned) or
/// [`Event::Unbanned`](crate::Event::Unbanned) is about):
/// IRC's list modes `+b`, `+e` and `+I`. The three share one table (see
/// [`MAX_BANS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BanList {
    /// Bans (`+b`): who matches may not come in.
    Bans,
    /// Ban exceptions (`+e`): who matches comes in despite a ban.
    Exceptions,
    /// Invite exceptions (`+I`): who matches comes into an invite-only room uninvited.
    InviteExceptions,
}

impl BanList {
    /// All of them, in the order of their letters in IRC's `CHANMODES`.
    pub const ALL: [Self; 3] = [Self::Bans, Self::Exceptions, Self::InviteExceptions];

    /// IRC's mode letter: `b`, `e` or `I`.
    pub const fn letter(self) -> char {
        match self {
            Self::Bans => 'b',
            Self::Exceptions => 'e',
            Self::InviteExceptions => 'I',
        }
    }

    /// The list whose IRC mode letter is `letter`.
    pub const fn of_letter(letter: char) -> Option<Self> {
        match letter {
            'b' => Some(Self::Bans),
            'e' => Some(Self::Exceptions),
            'I' => Some(Self::InviteExceptions),
            _ => None,
        }
    }
}

/// What one entry of the list is called: `ban`, `ban exception`, `invite exception`.
impl fmt::Display for BanList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bans => "ban",
            Self::Exceptions => "ban exception",
            Self::InviteExceptions => "invite exception",
        })
    }
}

/// The most rooms at once, the lobby included. Joining a new room when all exist gets an error
/// reply (`405` for an IRC client); a room goes when its last member leaves (if it has no
/// topic), which makes room.
pub const MAX_ROOMS: usize = 4096;

/// The longest room name, in characters, `#` included.
pub const MAX_ROOM_NAME_CHARS: usize = 32;

/// The longest room name, in bytes (UTF-8), `#` included: 21 characters of CJK, 31 of
/// Cyrillic or ASCII.
pub const MAX_ROOM_NAME_BYTES: usize = 64;

/// The longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 200;

/// The most rooms with a topic at once. Setting the topic of one more room gets an error
/// reply; clearing a topic makes room. (Topics are kept apart from the room table so that
/// [`MAX_ROOMS`] rooms cost kilobytes, not a topic's worth each.)
pub const MAX_TOPICS: usize = 256;

/// The most bans kept, over every room, ban exceptions (`+e`) and invite exceptions (`+I`)
/// counted with them: a table of its own, as topics are, so that rooms without bans cost
/// nothing for them. One more ban or exception is refused with an error reply (nothing is
/// evicted); lifting one, or one lapsing, makes room.
pub const MAX_BANS: usize = 512;

/// The longest ban mask, in bytes (`nick!user@host`, globs allowed).
pub const MAX_BAN_MASK_BYTES: usize = 64;

/// The most registered rooms (`/register-room`, IRC `MODE #room +r`). Registering one more is
/// refused with an error reply; unregistering one makes room.
pub const MAX_REGISTERED_ROOMS: usize = 512;

/// The most rooms with a key (`+k`, `/mode +k`) at once: a table of its own, as topics are.
/// Setting the key of one more room is refused with an error reply; lifting a key makes room.
pub const MAX_KEYED_ROOMS: usize = 256;

/// The longest room key, in bytes (IRC's `KEYLEN`): printable ASCII, no spaces or commas.
pub const MAX_ROOM_KEY_BYTES: usize = 23;

/// The longest name kept as a topic's setter, in bytes: a nickname or `anonymous-N`.
pub(crate) const MAX_SETTER_BYTES: usize = crate::state::nickname::MAX_NICK_BYTES;

/// The room everyone is put in on connecting.
pub const LOBBY: &str = "#lobby";

/// A valid room name: `#` then letters and digits of any script, `_` or `-`, at most
/// [`MAX_ROOM_NAME_CHARS`] characters and [`MAX_ROOM_NAME_BYTES`] bytes in all, kept in NFC,
/// not mixing scripts no one writes together. Compared as names are: case and look-alike
/// characters aside (see [`NameKey`](crate::NameKey)), so `#Ærø` and `#ærø` are one room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomName {
    name: heapless::String<MAX_ROOM_NAME_BYTES>,
    /// The hash of its key: where the room table indexes it, and what a lookup compares
    /// before the keys themselves.
    key_hash: u32,
}

/// Why a string is not a valid [`RoomName`]; renders as a message fit to show the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomNameError {
    /// The name does not start with `#`.
    NoHash,
    /// Nothing after the `#`.
    Empty,
    /// More than [`MAX_ROOM_NAME_CHARS`] characters or [`MAX_ROOM_NAME_BYTES`] bytes.
    TooLong,
    /// A character outside the allowed set.
    InvalidChar(char),
    /// The name mixes scripts, as look-alikes do.
    MixedScripts,
}

impl fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHash => f.write_str("a room name starts with #"),
            Self::Empty => f.write_str("a room name needs something after the #"),
            Self::TooLong => write!(
                f,
                "a room name has at most {MAX_ROOM_NAME_CHARS} characters ({MAX_ROOM_NAME_BYTES} \
                 bytes)"
            ),
            Self::InvalidChar(c) if c.is_control() => {
                f.write_str("a room name cannot contain control characters")
            }
            Self::InvalidChar(c) if !c.is_ascii() => write!(
                f,
                "a room name cannot contain U+{:04X}; use letters, digits, _ and -",
                u32::from(*c)
            ),
            Self::InvalidChar(c) => write!(
                f,
                "a room name cannot contain {c:?}; use letters, digits, _ and -"
            ),
            Self::MixedScripts => f.write_str(
                "a room name cannot mix scripts like that (letters of one alphabet that look \
                 like another's); use one script",
            ),
        }
    }
}

impl core::error::Error for RoomNameError {}

impl RoomName {
    /// Validates `name` as a room name.
    ///
    /// ```
    /// use chat_core::{RoomName, RoomNameError};
    /// assert_eq!(RoomName::new("#rust-lang").unwrap().as_str(), "#rust-lang");
    /// assert_eq!(RoomName::new("#Ærøskøbing").unwrap().as_str(), "#Ærøskøbing");
    /// assert_eq!(RoomName::new("rust"), Err(RoomNameError::NoHash));
    /// ```
    pub fn new(name: &str) -> Result<Self, RoomNameError> {
        let rest = name.strip_prefix('#').ok_or(RoomNameError::NoHash)?;
        if rest.is_empty() {
            return Err(RoomNameError::Empty);
        }
        // Counted once composed, as it is kept.
        let room = names::nfc::<MAX_ROOM_NAME_BYTES>(name).ok_or(RoomNameError::TooLong)?;
        if room.chars().count() > MAX_ROOM_NAME_CHARS {
            return Err(RoomNameError::TooLong);
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        match names::check_letters(&room[1..], allowed) {
            Ok(()) => {}
            Err(Letters::Disallowed(bad)) => return Err(RoomNameError::InvalidChar(bad)),
            Err(Letters::MixedScripts) => return Err(RoomNameError::MixedScripts),
        }
        let key_hash = names::NameKey::of(&room)
            .ok_or(RoomNameError::TooLong)?
            .hash();
        Ok(Self {
            name: room,
            key_hash,
        })
    }

    /// The name as first created, `#` included.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// True if `other` names the same room: case and look-alikes aside (see
    /// [`NameKey`](crate::NameKey)).
    pub fn matches(&self, other: &str) -> bool {
        names::same(&self.name, other)
    }

    /// The key this room name is compared by (see [`NameKey`](crate::NameKey)).
    pub fn key(&self) -> names::NameKey {
        // `new` checked that it has one.
        names::NameKey::of(&self.name).unwrap_or_default()
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A room's index in the table, below [`MAX_ROOMS`]. Indices are reused once a room goes, so
/// nothing that outlives a step (an event, a store) names a room by its index.
pub(crate) type RoomId = u16;

/// One room.
#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) name: RoomName,
    /// Where its topic is in [`Rooms`]'s topics, if it has one.
    topic: Option<u16>,
    /// How many people are in it.
    pub(crate) members: u32,
    /// How many of them have it as their current room (the plain dialect's "where I talk").
    pub(crate) current_here: u32,
    /// Its [`RoomMode`]s, a bit each.
    modes: u8,
    /// The most people let in (IRC's `+l`); `None`: only the server's own bound.
    pub(crate) limit: Option<core::num::NonZeroU32>,
    /// When this server made it (IRC's `329`): a room given back by a store at start was made
    /// then, since a store keeps no creation time.
    pub(crate) created: Instant,
}

/// A mode a room's operators set on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RoomMode {
    /// Only whom its operators invite may join (IRC's `+i`).
    InviteOnly,
    /// Only its operators and voiced members may talk (IRC's `+m`).
    Moderated,
    /// Only its operators may set its topic (IRC's `+t`).
    TopicLocked,
    /// Hidden from those not in it: left out of their `LIST`, `NAMES` and `WHOIS` (IRC's `+s`).
    Secret,
    /// Only its members may talk in it (IRC's `+n`, "no external messages"); on in every new
    /// room. Without it, anyone not banned from it may send it lines without joining.
    NoExternal,
}

impl RoomMode {
    /// Every mode, in the order IRC's `324` lists them.
    pub(crate) const ALL: [Self; 5] = [
        Self::InviteOnly,
        Self::Moderated,
        Self::NoExternal,
        Self::Secret,
        Self::TopicLocked,
    ];

    /// The modes of a new room: [`NoExternal`](Self::NoExternal) alone.
    pub(crate) const NEW_ROOM: u8 = Self::NoExternal.bit();

    /// Its letter in IRC's `MODE`.
    pub(crate) const fn letter(self) -> char {
        match self {
            Self::InviteOnly => 'i',
            Self::Moderated => 'm',
            Self::TopicLocked => 't',
            Self::Secret => 's',
            Self::NoExternal => 'n',
        }
    }

    /// The mode of IRC letter `letter`, if it is one.
    pub(crate) fn of_letter(letter: char) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.letter() == letter)
    }

    const fn bit(self) -> u8 {
        match self {
            Self::Moderated => 1,
            Self::TopicLocked => 2,
            Self::InviteOnly => 4,
            Self::Secret => 8,
            Self::NoExternal => 16,
        }
    }
}

impl Room {
    /// Whether `mode` is set on it.
    pub(crate) fn has(&self, mode: RoomMode) -> bool {
        self.modes & mode.bit() != 0
    }

    /// Sets `mode` on it, or not; false if that changed nothing.
    pub(crate) fn set(&mut self, mode: RoomMode, on: bool) -> bool {
        if self.has(mode) == on {
            return false;
        }
        self.modes ^= mode.bit();
        true
    }
}

/// A room's topic, who set it and when (IRC's `333`).
#[derive(Debug)]
struct Topic {
    text: heapless::String<MAX_TOPIC_BYTES>,
    by: heapless::String<MAX_SETTER_BYTES>,
    at: Instant,
}

/// Slots of the name index: a power of two, twice [`MAX_ROOMS`], so probes stay short.
const INDEX_SLOTS: usize = 2 * MAX_ROOMS;
const NO_SLOT: RoomId = RoomId::MAX;
const WORDS: usize = MAX_ROOMS.div_ceil(64);

/// The table of rooms, with the lobby always at index 0, and an index by name (ASCII case
/// ignored) so that finding a room does not scan the table.
#[derive(Debug)]
pub(crate) struct Rooms<S: Storage> {
    /// Grown as rooms are made (a new room takes the lowest free index), never shrunk.
    rooms: S::Fixed<Option<Room>, MAX_ROOMS>,
    /// A bit per index in use, so a new room takes the lowest free index at once.
    used: [u64; WORDS],
    /// Open addressing with linear probing over the hash of the name's key.
    index: [RoomId; INDEX_SLOTS],
    /// The last few spellings looked up that found a room, and the room: an IRC client names
    /// its room in every line, spelt the same each time, and comparing the spelling is
    /// quicker than working out its key. Forgotten whenever a room comes or goes.
    recent: RefCell<[(heapless::String<MAX_ROOM_NAME_BYTES>, RoomId); RECENT]>,
    /// Where the next spelling goes in `recent`.
    next_recent: Cell<usize>,
    count: usize,
    topics: S::Fixed<Topic, MAX_TOPICS>,
    /// Topic slots free for reuse.
    free_topics: S::Fixed<u16, MAX_TOPICS>,
    /// Every room's bans (`MODE +b`, `/ban`), in the order set.
    bans: S::Fixed<Ban, MAX_BANS>,
    /// The keys of the rooms that have one.
    keys: S::Fixed<(RoomId, RoomKey), MAX_KEYED_ROOMS>,
    /// The registered rooms, each with the account it is registered to (its founder's).
    founders: S::Fixed<(RoomId, Nickname), MAX_REGISTERED_ROOMS>,
    /// The sequence number of the last line said in any room. One counter for the server, not
    /// one per room, so that a room that goes and comes back (or a restart, which restores it)
    /// never numbers two lines alike: a store keys lines by it.
    last_seq: u64,
}

/// A room as the dialects see it: its name, topic and counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RoomView<'a> {
    pub(crate) name: &'a RoomName,
    /// Empty when it has none.
    pub(crate) topic: &'a str,
    /// Who set the topic and when, if it has one.
    pub(crate) topic_set: Option<(&'a str, Instant)>,
    pub(crate) members: u32,
    pub(crate) current_here: u32,
    /// It is secret ([`RoomMode::Secret`]).
    pub(crate) secret: bool,
    /// When this server made it.
    pub(crate) created: Instant,
}

/// A ban on `room`: who matches `mask` (`nick!user@host`, with `*` and `?`) may not join it;
/// or, as `list` says, an exception to its bans or to its invite-only mode.
#[derive(Clone, Debug)]
pub(crate) struct Ban {
    pub(crate) room: RoomId,
    pub(crate) list: BanList,
    pub(crate) mask: heapless::String<MAX_BAN_MASK_BYTES>,
    /// Who set it, and when (IRC's `367`).
    pub(crate) by: heapless::String<MAX_SETTER_BYTES>,
    pub(crate) at: Instant,
    /// When it lapses; `None`: when lifted.
    pub(crate) until: Option<Instant>,
}

impl Ban {
    /// Whether it still holds at `now`.
    pub(crate) fn holds(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// Every ban slot is taken: see [`MAX_BANS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BansFull;

/// A room's key, checked: see [`RoomKey::new`].
pub(crate) type RoomKey = heapless::String<MAX_ROOM_KEY_BYTES>;

/// Every registered room slot is taken: see [`MAX_REGISTERED_ROOMS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RegisteredFull;

/// Every key slot is taken: see [`MAX_KEYED_ROOMS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeysFull;

/// `key` as a room key, if it is one: 1 to [`MAX_ROOM_KEY_BYTES`] bytes of printable ASCII
/// without spaces or commas (a comma separates keys in IRC's `JOIN`), not starting with `:`
/// (which would make it the last parameter of an IRC line, not one value of a `MODE` line).
pub(crate) fn room_key(key: &str) -> Option<RoomKey> {
    let valid = !key.is_empty()
        && !key.starts_with(':')
        && key
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b',');
    valid.then(|| RoomKey::try_from(key).ok()).flatten()
}

/// Every topic slot is taken: see [`MAX_TOPICS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TopicsFull;

/// There is no free room slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RoomsFull;

/// How many spellings [`Rooms`] remembers.
const RECENT: usize = 4;

/// Where the name index looks for a name whose key hashes to `key_hash` first: every spelling
/// of one room name looks in one place.
fn home(key_hash: u32) -> usize {
    key_hash as usize % INDEX_SLOTS
}

impl<S: Storage> Rooms<S> {
    /// The table, with the lobby made at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        let mut rooms = Self {
            rooms: S::fixed(),
            used: [0; WORDS],
            index: [NO_SLOT; INDEX_SLOTS],
            recent: RefCell::new(Default::default()),
            bans: S::fixed(),
            keys: S::fixed(),
            founders: S::fixed(),
            next_recent: Cell::new(0),
            count: 0,
            topics: S::fixed(),
            free_topics: S::fixed(),
            last_seq: 0,
        };
        // Cannot fail: the table is empty and LOBBY is a valid name.
        if let Ok(lobby) = RoomName::new(LOBBY) {
            let _ = rooms.create(lobby, now);
        }
        rooms
    }

    /// The room called `name`, spelt any way (see [`RoomName::matches`]).
    pub(crate) fn find(&self, name: &str) -> Option<RoomId> {
        if let Some(&(_, id)) = self
            .recent
            .borrow()
            .iter()
            .find(|(spelt, _)| !spelt.is_empty() && spelt.as_str() == name)
        {
            return Some(id);
        }
        let key = names::NameKey::of(name)?;
        let key_hash = key.hash();
        let mut at = home(key_hash);
        loop {
            let id = self.index[at];
            if id == NO_SLOT {
                return None;
            }
            if self
                .get(id)
                .is_some_and(|room| room.name.key_hash == key_hash && room.name.key() == key)
            {
                self.remember(name, id);
                return Some(id);
            }
            at = (at + 1) % INDEX_SLOTS;
        }
    }

    /// Notes that `name` spells room `id` (see `recent`).
    fn remember(&self, name: &str, id: RoomId) {
        let Ok(spelt) = heapless::String::try_from(name) else {
            return;
        };
        let at = self.next_recent.get();
        self.recent.borrow_mut()[at] = (spelt, id);
        self.next_recent.set((at + 1) % RECENT);
    }

    /// Forgets every spelling: a room came or went.
    fn forget_spellings(&mut self) {
        *self.recent.get_mut() = Default::default();
    }

    /// Creates an empty room called `name`, which must not exist yet, at the lowest free index,
    /// made at `now`.
    pub(crate) fn create(&mut self, name: RoomName, now: Instant) -> Result<RoomId, RoomsFull> {
        let word = self
            .used
            .iter()
            .position(|&word| word != u64::MAX)
            .ok_or(RoomsFull)?;
        let id = word * 64 + self.used[word].trailing_ones() as usize;
        if id >= MAX_ROOMS {
            return Err(RoomsFull);
        }
        self.forget_spellings();
        let mut at = home(name.key_hash);
        while self.index[at] != NO_SLOT {
            at = (at + 1) % INDEX_SLOTS;
        }
        self.index[at] = id as RoomId;
        let room = Room {
            name,
            topic: None,
            members: 0,
            current_here: 0,
            modes: RoomMode::NEW_ROOM,
            limit: None,
            created: now,
        };
        while self.rooms.len() <= id {
            // Cannot fail: id < MAX_ROOMS.
            let _ = self.rooms.push(None);
        }
        self.rooms[id] = Some(room);
        self.used[word] |= 1 << (id % 64);
        self.count += 1;
        Ok(id as RoomId)
    }

    pub(crate) fn get(&self, id: RoomId) -> Option<RoomView<'_>> {
        self.rooms
            .get(usize::from(id))?
            .as_ref()
            .map(|room| self.view(room))
    }

    fn view<'a>(&'a self, room: &'a Room) -> RoomView<'a> {
        let topic = room.topic.and_then(|at| self.topics.get(usize::from(at)));
        RoomView {
            name: &room.name,
            topic: topic.map_or("", |topic| topic.text.as_str()),
            topic_set: topic.map(|topic| (topic.by.as_str(), topic.at)),
            members: room.members,
            current_here: room.current_here,
            secret: room.has(RoomMode::Secret),
            created: room.created,
        }
    }

    /// Sets `id`'s topic (at most [`MAX_TOPIC_BYTES`], checked by the caller; empty clears it),
    /// as set by `by` (cut to [`MAX_SETTER_BYTES`]) at `at`.
    pub(crate) fn set_topic(
        &mut self,
        id: RoomId,
        text: &str,
        by: &str,
        at: Instant,
    ) -> Result<(), TopicsFull> {
        let Some(room) = self.rooms.get_mut(usize::from(id)).and_then(Option::as_mut) else {
            return Ok(());
        };
        let slot = match (room.topic, text.is_empty()) {
            (None, true) => return Ok(()),
            (Some(slot), true) => {
                room.topic = None;
                // Cannot fail: each slot is freed once, and there are MAX_TOPICS of them.
                let _ = self.free_topics.push(slot);
                return Ok(());
            }
            (Some(slot), false) => slot,
            (None, false) => match self.free_topics.pop() {
                Some(slot) => slot,
                None => {
                    let slot = self.topics.len() as u16;
                    self.topics
                        .push(Topic {
                            text: heapless::String::new(),
                            by: heapless::String::new(),
                            at,
                        })
                        .map_err(|_| TopicsFull)?;
                    slot
                }
            },
        };
        room.topic = Some(slot);
        let topic = &mut self.topics[usize::from(slot)];
        topic.text.clear();
        // Cannot fail: the caller checked the length.
        let _ = topic.text.push_str(text);
        topic.by.clear();
        let _ = topic.by.push_str(cut(by, MAX_SETTER_BYTES));
        topic.at = at;
        Ok(())
    }

    /// The sequence number of the next line said in `id`, if it exists: one more than the last
    /// line said in any room.
    pub(crate) fn next_seq(&mut self, id: RoomId) -> Option<u64> {
        self.get(id)?;
        self.last_seq += 1;
        Some(self.last_seq)
    }

    /// The next number of the server-wide numbering, for a message that is not a room line
    /// (a private message's IRCv3 `msgid`): no room line is ever numbered the same.
    pub(crate) fn next_number(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// Numbers lines on from `last` at least (a store's last line, at a restart).
    pub(crate) fn continue_seq_after(&mut self, last: u64) {
        self.last_seq = self.last_seq.max(last);
    }

    /// Room `id` itself: its modes and limit.
    pub(crate) fn room(&self, id: RoomId) -> Option<&Room> {
        self.rooms.get(usize::from(id))?.as_ref()
    }

    /// The counts of `id`, to change.
    pub(crate) fn get_mut(&mut self, id: RoomId) -> Option<&mut Room> {
        self.rooms.get_mut(usize::from(id))?.as_mut()
    }

    /// The entries of `room`'s `list` that hold at `now`, oldest first.
    pub(crate) fn bans_of(
        &self,
        room: RoomId,
        list: BanList,
        now: Instant,
    ) -> impl Iterator<Item = &Ban> + '_ {
        self.bans
            .iter()
            .filter(move |ban| ban.room == room && ban.list == list && ban.holds(now))
    }

    /// Puts `mask` on `room`'s `list` (bans it, or excepts it), as `by` asked at `at`, until
    /// `until` (`None`: until lifted); false if that changed nothing (listed already, until
    /// the same time; a new duration replaces the old). Entries that lapsed by `now` are
    /// dropped first.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ban(
        &mut self,
        room: RoomId,
        list: BanList,
        mask: &str,
        by: &str,
        at: Instant,
        until: Option<Instant>,
        now: Instant,
    ) -> Result<bool, BansFull> {
        self.bans.retain(|ban| ban.holds(now));
        if let Some(ban) = self
            .bans
            .iter_mut()
            .find(|ban| ban.room == room && ban.list == list && ban.mask.eq_ignore_ascii_case(mask))
        {
            let changed = ban.until != until;
            ban.until = until;
            return Ok(changed);
        }
        let ban = Ban {
            room,
            list,
            mask: heapless::String::try_from(cut(mask, MAX_BAN_MASK_BYTES))
                .map_err(|_| BansFull)?,
            by: heapless::String::try_from(cut(by, MAX_SETTER_BYTES)).map_err(|_| BansFull)?,
            at,
            until,
        };
        self.bans.push(ban).map_err(|_| BansFull)?;
        Ok(true)
    }

    /// Takes `mask` off `room`'s `list`; false if it was not on it.
    pub(crate) fn unban(&mut self, room: RoomId, list: BanList, mask: &str) -> bool {
        let before = self.bans.len();
        self.bans.retain(|ban| {
            !(ban.room == room && ban.list == list && ban.mask.eq_ignore_ascii_case(mask))
        });
        before != self.bans.len()
    }

    /// The account `room` is registered to, if it is.
    pub(crate) fn founder_of(&self, room: RoomId) -> Option<&Nickname> {
        self.founders
            .iter()
            .find(|(id, _)| *id == room)
            .map(|(_, founder)| founder)
    }

    /// Registers `room` to `founder`'s account, or unregisters it (`None`).
    pub(crate) fn set_founder(
        &mut self,
        room: RoomId,
        founder: Option<&Nickname>,
    ) -> Result<(), RegisteredFull> {
        if founder.is_some() && self.founder_of(room).is_none() && self.founders.is_full() {
            return Err(RegisteredFull);
        }
        self.founders.retain(|(id, _)| *id != room);
        if let Some(founder) = founder {
            // Cannot fail: there is room, checked above.
            let _ = self.founders.push((room, founder.clone()));
        }
        Ok(())
    }

    /// The key of `room`, if it has one.
    pub(crate) fn key_of(&self, room: RoomId) -> Option<&str> {
        self.keys
            .iter()
            .find(|(id, _)| *id == room)
            .map(|(_, key)| key.as_str())
    }

    /// Sets `room`'s key, or lifts it (`None`); false if that changed nothing.
    pub(crate) fn set_key(
        &mut self,
        room: RoomId,
        key: Option<&RoomKey>,
    ) -> Result<bool, KeysFull> {
        let at = self.keys.iter().position(|(id, _)| *id == room);
        match (at, key) {
            (Some(at), Some(key)) if self.keys[at].1 == *key => Ok(false),
            (Some(at), Some(key)) => {
                self.keys[at].1 = key.clone();
                Ok(true)
            }
            (Some(at), None) => {
                self.keys.swap_remove(at);
                Ok(true)
            }
            (None, Some(key)) => {
                self.keys.push((room, key.clone())).map_err(|_| KeysFull)?;
                Ok(true)
            }
            (None, None) => Ok(false),
        }
    }

    /// Removes `id` if no one is in it and it has no topic, unless it is the lobby; true if it
    /// was removed.
    pub(crate) fn remove_if_empty(&mut self, id: RoomId) -> bool {
        let Some(room) = self.rooms.get(usize::from(id)).and_then(Option::as_ref) else {
            return false;
        };
        // A room that is registered, or has a topic or a ban, stays while empty.
        if id == 0
            || room.members != 0
            || room.topic.is_some()
            || self.bans.iter().any(|ban| ban.room == id)
            || self
                .founders
                .iter()
                .any(|(founder_of, _)| *founder_of == id)
        {
            return false;
        }
        let mut at = home(room.name.key_hash);
        while self.index[at] != id {
            at = (at + 1) % INDEX_SLOTS;
        }
        self.unindex(at);
        self.forget_spellings();
        self.keys.retain(|(room, _)| *room != id);
        self.rooms[usize::from(id)] = None;
        self.used[usize::from(id) / 64] &= !(1 << (id % 64));
        self.count -= 1;
        true
    }

    /// Empties slot `hole` of the index, moving later entries of its probe run back so that
    /// every entry stays reachable from its hash (deletion without tombstones).
    fn unindex(&mut self, mut hole: usize) {
        self.index[hole] = NO_SLOT;
        let mut at = hole;
        loop {
            at = (at + 1) % INDEX_SLOTS;
            let id = self.index[at];
            let Some(room) = self.get(id) else {
                return;
            };
            let home = home(room.name.key_hash);
            // The entry may move to the hole if its home is not between the hole and it.
            let stays = if hole <= at {
                hole < home && home <= at
            } else {
                hole < home || home <= at
            };
            if !stays {
                self.index[hole] = id;
                self.index[at] = NO_SLOT;
                hole = at;
            }
        }
    }

    /// Every room, by index.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (RoomId, RoomView<'_>)> {
        self.rooms
            .iter()
            .enumerate()
            .filter_map(|(id, room)| Some((id as RoomId, self.view(room.as_ref()?))))
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        #[rustfmt::skip]
        let cases: &[(&str, Result<(), RoomNameError>)] = &[
            ("#lobby",        Ok(())),
            ("#Rust_2-go",    Ok(())),
            ("#a",            Ok(())),
            ("#",             Err(RoomNameError::Empty)),
            ("lobby",         Err(RoomNameError::NoHash)),
            ("#two words",    Err(RoomNameError::InvalidChar(' '))),
            ("#a#b",          Err(RoomNameError::InvalidChar('#'))),
            ("#中文",         Ok(())),
            ("#Ærøskøbing",   Ok(())),
            ("#Дмитрий_2",    Ok(())),
            ("#\u{430}lice",  Err(RoomNameError::MixedScripts)),
            ("#x\u{1b}",      Err(RoomNameError::InvalidChar('\u{1b}'))),
            ("#x\u{200b}y",   Err(RoomNameError::InvalidChar('\u{200b}'))),
            ("#x\u{202e}y",   Err(RoomNameError::InvalidChar('\u{202e}'))),
            ("#snow☃",        Err(RoomNameError::InvalidChar('☃'))),
            ("#0123456789012345678901234567890", Ok(())),
            ("#01234567890123456789012345678901", Err(RoomNameError::TooLong)),
            // 21 characters of three bytes fit in the 64 bytes; 22 do not.
            ("#中中中中中中中中中中中中中中中中中中中中中", Ok(())),
            ("#中中中中中中中中中中中中中中中中中中中中中中", Err(RoomNameError::TooLong)),
        ];
        for (name, expected) in cases {
            assert_eq!(RoomName::new(name).map(|_| ()), *expected, "{name:?}");
        }
        // Kept in NFC; one room whatever the case or the look-alike.
        let room = RoomName::new("#E\u{301}te\u{301}").unwrap();
        assert_eq!(room.as_str(), "#\u{c9}t\u{e9}");
        assert!(room.matches("#\u{e9}T\u{c9}"));
        let mut rooms = Rooms::<crate::Inline<1>>::new(Instant::ZERO);
        let ærø = rooms
            .create(RoomName::new("#Ærø").unwrap(), Instant::ZERO)
            .unwrap();
        assert_eq!(rooms.find("#æRØ"), Some(ærø));
        assert_eq!(rooms.find("#LOBBY"), Some(0));
        assert_eq!(rooms.find("#l0bby"), Some(0), "a zero looks like an O");
        assert_eq!(rooms.find("#lobbies"), None);
        assert_eq!(
            rooms.find("#1obby"),
            Some(0),
            "a digit one looks like a small L"
        );
    }

    #[test]
    fn rooms_are_created_found_and_removed_but_the_lobby_stays() {
        let mut rooms = Rooms::<crate::Inline<1>>::new(Instant::ZERO);
        assert_eq!(rooms.find("#LOBBY"), Some(0));
        let rust = rooms
            .create(RoomName::new("#rust").unwrap(), Instant::ZERO)
            .unwrap();
        assert_eq!(rooms.find("#Rust"), Some(rust));
        rooms.remove_if_empty(rust);
        assert_eq!(rooms.find("#rust"), None);
        rooms.remove_if_empty(0);
        assert_eq!(rooms.find("#lobby"), Some(0));
        for n in 1..MAX_ROOMS {
            let name = std::format!("#r{n}");
            rooms
                .create(RoomName::new(&name).unwrap(), Instant::ZERO)
                .unwrap();
        }
        assert_eq!(rooms.count(), MAX_ROOMS);
        assert_eq!(
            rooms.create(RoomName::new("#one-more").unwrap(), Instant::ZERO),
            Err(RoomsFull)
        );
    }

    #[test]
    fn the_name_index_finds_every_room_through_removals() {
        let mut rooms = Rooms::<crate::Inline<1>>::new(Instant::ZERO);
        let name = |n: usize| std::format!("#Room{n}");
        for n in 1..MAX_ROOMS {
            rooms
                .create(RoomName::new(&name(n)).unwrap(), Instant::ZERO)
                .unwrap();
        }
        // Remove every third room, then check that every room is found, or not, by its name in
        // any case.
        for n in (1..MAX_ROOMS).step_by(3) {
            let id = rooms.find(&name(n)).unwrap();
            assert!(rooms.remove_if_empty(id));
        }
        for n in 1..MAX_ROOMS {
            let found = rooms.find(&name(n).to_uppercase());
            assert_eq!(found.is_some(), (n - 1) % 3 != 0, "{}", name(n));
            if let Some(id) = found {
                assert!(rooms.get(id).unwrap().name.matches(&name(n)));
            }
        }
        // Freed indices are taken again, lowest first.
        let first_freed = rooms
            .create(RoomName::new("#new").unwrap(), Instant::ZERO)
            .unwrap();
        assert_eq!(first_freed, 1);
        let removed = (1..MAX_ROOMS).step_by(3).count();
        assert_eq!(rooms.count(), MAX_ROOMS - removed + 1);
    }
}
