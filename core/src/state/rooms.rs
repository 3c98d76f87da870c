//! Rooms: named groups of people. Everyone starts in [`LOBBY`]; a room is created by the first
//! person to join it and removed when the last one leaves (the lobby stays).

use core::fmt;

/// The most rooms at once, the lobby included. Membership is a bit per room in each
/// connection, so this is the width of that mask. Joining a new room when all exist gets an
/// error reply.
pub const MAX_ROOMS: usize = 64;

/// The longest room name, in bytes, `#` included.
pub const MAX_ROOM_NAME_BYTES: usize = 32;

/// The longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 200;

/// The room everyone is put in on connecting.
pub const LOBBY: &str = "#lobby";

/// A valid room name: `#` then 1 to 31 ASCII letters, digits, `_` or `-`. Compared ignoring
/// ASCII case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomName(heapless::String<MAX_ROOM_NAME_BYTES>);

/// Why a string is not a valid [`RoomName`]; renders as a message fit to show the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomNameError {
    /// The name does not start with `#`.
    NoHash,
    /// Nothing after the `#`.
    Empty,
    /// More than [`MAX_ROOM_NAME_BYTES`] bytes.
    TooLong,
    /// A character outside the allowed set.
    InvalidChar(char),
}

impl fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHash => f.write_str("a room name starts with #"),
            Self::Empty => f.write_str("a room name needs something after the #"),
            Self::TooLong => write!(f, "a room name has at most {MAX_ROOM_NAME_BYTES} bytes"),
            Self::InvalidChar(c) if c.is_control() => {
                f.write_str("a room name cannot contain control characters")
            }
            Self::InvalidChar(c) => write!(
                f,
                "a room name cannot contain {c:?}; use letters, digits, _ and -"
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
    /// assert_eq!(RoomName::new("rust"), Err(RoomNameError::NoHash));
    /// ```
    pub fn new(name: &str) -> Result<Self, RoomNameError> {
        let rest = name.strip_prefix('#').ok_or(RoomNameError::NoHash)?;
        if rest.is_empty() {
            return Err(RoomNameError::Empty);
        }
        if let Some(bad) = rest
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(RoomNameError::InvalidChar(bad));
        }
        let mut room = heapless::String::new();
        room.push_str(name).map_err(|_| RoomNameError::TooLong)?;
        Ok(Self(room))
    }

    /// The name as first created, `#` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if `other` names the same room (ASCII case ignored).
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room's index in the table, below [`MAX_ROOMS`]; bit `1 << index` in a membership mask.
pub(crate) type RoomId = u8;

/// The mask bit of a room.
pub(crate) const fn bit(room: RoomId) -> u64 {
    1 << room
}

/// One room.
#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) name: RoomName,
    pub(crate) topic: heapless::String<MAX_TOPIC_BYTES>,
    /// How many people are in it.
    pub(crate) members: u32,
    /// How many of them have it as their current room (the plain dialect's "where I talk").
    pub(crate) current_here: u32,
}

/// The table of rooms, with the lobby always at index 0.
#[derive(Debug)]
pub(crate) struct Rooms {
    rooms: heapless::Vec<Option<Room>, MAX_ROOMS>,
}

/// There is no free room slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RoomsFull;

impl Rooms {
    pub(crate) fn new() -> Self {
        let mut rooms = heapless::Vec::new();
        // Cannot fail: the table is empty and MAX_ROOMS > 0; LOBBY is a valid name.
        let lobby = RoomName::new(LOBBY).ok().map(|name| Room {
            name,
            topic: heapless::String::new(),
            members: 0,
            current_here: 0,
        });
        let _ = rooms.push(lobby);
        Self { rooms }
    }

    pub(crate) fn find(&self, name: &str) -> Option<RoomId> {
        self.iter()
            .find(|(_, room)| room.name.matches(name))
            .map(|(id, _)| id)
    }

    /// Creates an empty room called `name`, which must not exist yet.
    pub(crate) fn create(&mut self, name: RoomName) -> Result<RoomId, RoomsFull> {
        let room = Room {
            name,
            topic: heapless::String::new(),
            members: 0,
            current_here: 0,
        };
        if let Some(free) = self.rooms.iter().position(Option::is_none) {
            self.rooms[free] = Some(room);
            return Ok(free as RoomId);
        }
        let id = self.rooms.len() as RoomId;
        self.rooms.push(Some(room)).map_err(|_| RoomsFull)?;
        Ok(id)
    }

    pub(crate) fn get(&self, id: RoomId) -> Option<&Room> {
        self.rooms.get(usize::from(id))?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: RoomId) -> Option<&mut Room> {
        self.rooms.get_mut(usize::from(id))?.as_mut()
    }

    /// Removes `id` if no one is in it, unless it is the lobby; true if it was removed.
    pub(crate) fn remove_if_empty(&mut self, id: RoomId) -> bool {
        if id != 0
            && let Some(slot) = self.rooms.get_mut(usize::from(id))
            && slot.as_ref().is_some_and(|room| room.members == 0)
        {
            *slot = None;
            return true;
        }
        false
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (RoomId, &Room)> {
        self.rooms
            .iter()
            .enumerate()
            .filter_map(|(id, room)| Some((id as RoomId, room.as_ref()?)))
    }

    pub(crate) fn count(&self) -> usize {
        self.iter().count()
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
            ("#中文",         Err(RoomNameError::InvalidChar('中'))),
            ("#x\u{1b}",      Err(RoomNameError::InvalidChar('\u{1b}'))),
            ("#0123456789012345678901234567890", Ok(())),
            ("#01234567890123456789012345678901", Err(RoomNameError::TooLong)),
        ];
        for (name, expected) in cases {
            assert_eq!(RoomName::new(name).map(|_| ()), *expected, "{name:?}");
        }
    }

    #[test]
    fn rooms_are_created_found_and_removed_but_the_lobby_stays() {
        let mut rooms = Rooms::new();
        assert_eq!(rooms.find("#LOBBY"), Some(0));
        let rust = rooms.create(RoomName::new("#rust").unwrap()).unwrap();
        assert_eq!(rooms.find("#Rust"), Some(rust));
        rooms.remove_if_empty(rust);
        assert_eq!(rooms.find("#rust"), None);
        rooms.remove_if_empty(0);
        assert_eq!(rooms.find("#lobby"), Some(0));
        for n in 1..MAX_ROOMS {
            let name = std::format!("#r{n}");
            rooms.create(RoomName::new(&name).unwrap()).unwrap();
        }
        assert_eq!(rooms.count(), MAX_ROOMS);
        assert_eq!(
            rooms.create(RoomName::new("#one-more").unwrap()),
            Err(RoomsFull)
        );
    }
}
