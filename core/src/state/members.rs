//! Who is in which room, both ways: each room's members as a list, so a line to a room costs
//! O(its members) and not O(everyone online), and each person's rooms, so a departure or a
//! rename reaches just the rooms it touches.
//!
//! The lists are intrusive and allocation-free: every person has [`MAX_ROOMS_PER_PERSON`]
//! membership cells, and each room's list is threaded through the cells of its members
//! (smoltcp and the deadline queues use the same trick). Joining, leaving and finding whether
//! someone is in a room are O(1) or O([`MAX_ROOMS_PER_PERSON`]); nothing ever scans the table.
//!
//! A cell also keeps what a line to its room needs of the member: the generation that makes
//! their [`ConnectionId`](crate::ConnectionId), whether the room is their current one, and
//! whether they read IRC. Walking a room to send it a line then reads one cell per member and
//! nothing else (the roster's slots are a kilobyte each, and would cost more cache misses than
//! the walk itself).

use crate::state::rooms::{MAX_ROOMS, RoomId};
use crate::storage::sealed::{Storage, Table};

/// The most rooms one person can be in at once (IRC's `CHANLIMIT`). Joining one more gets an
/// error reply (`405` for an IRC client) and changes nothing.
pub const MAX_ROOMS_PER_PERSON: usize = 20;

/// A membership cell's place in the table: person index × [`MAX_ROOMS_PER_PERSON`] + cell.
type CellRef = u32;

/// No cell (the end of a list).
const NONE: CellRef = CellRef::MAX;

/// A cell that holds no membership.
const NO_ROOM: RoomId = RoomId::MAX;

/// A person's membership cells.
pub(crate) type Row = [Cell; MAX_ROOMS_PER_PERSON];

/// One membership: `room`, its neighbours in that room's list of members, and what a send
/// to the room needs of the member.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cell {
    room: RoomId,
    /// [`CURRENT`] and [`IRC`].
    flags: u8,
    prev: CellRef,
    next: CellRef,
    /// The member's slot generation, for their `ConnectionId`.
    generation: u32,
}

impl Cell {
    const EMPTY: Self = Self {
        room: NO_ROOM,
        flags: 0,
        prev: NONE,
        next: NONE,
        generation: 0,
    };
}

/// The cell's room is the member's current room.
const CURRENT: u8 = 1;
/// The member reads IRC.
const IRC: u8 = 2;
/// The member reads IRC with message tags (`server-time` or `message-tags` negotiated).
const TAGGED: u8 = 4;
/// The member reads the tags other clients add (`message-tags` negotiated).
const CLIENT_TAGS: u8 = 8;
/// The member is on another server: no send goes to them.
const REMOTE: u8 = 16;
/// The member is one of the room's operators (`@`): it may kick, and give or take op.
const OP: u8 = 32;
/// The member has a voice (`+`): it may talk in a moderated room.
const VOICE: u8 = 64;
/// The member is muted: its lines to the room are refused.
const MUTED: u8 = 128;

/// What a member may be given in a room, besides being in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// A room operator (`@`, IRC's `+o`): keeps order in the room.
    Operator,
    /// A voice (`+`, IRC's `+v`): may talk in a moderated room.
    Voice,
    /// Muted: what they say to the room is refused.
    Muted,
}

impl Status {
    const fn flag(self) -> u8 {
        match self {
            Self::Operator => OP,
            Self::Voice => VOICE,
            Self::Muted => MUTED,
        }
    }
}

/// Which message tags an IRC client reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tagged {
    /// The server's tags (`server-time` or `message-tags`).
    pub(crate) server: bool,
    /// Also the tags other clients add (`message-tags`).
    pub(crate) client: bool,
}

impl Tagged {
    const fn flags(self) -> u8 {
        if self.client {
            TAGGED | CLIENT_TAGS
        } else if self.server {
            TAGGED
        } else {
            0
        }
    }
}

/// A member as a send to a room sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    /// The member's slot index.
    pub(crate) index: u32,
    /// The slot's generation.
    pub(crate) generation: u32,
    /// The room is their current room.
    pub(crate) current: bool,
    /// They read IRC.
    pub(crate) irc: bool,
    /// They read IRC with message tags.
    pub(crate) tagged: bool,
    /// They read the tags other clients add.
    pub(crate) client_tags: bool,
    /// They are on another server.
    pub(crate) remote: bool,
    /// The next cell of the room's list.
    pub(crate) next: Option<u32>,
}

/// A person is in [`MAX_ROOMS_PER_PERSON`] rooms already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooManyRooms;

/// Memberships of the people of a roster (indexed like its slots) in up to [`MAX_ROOMS`]
/// rooms.
#[derive(Debug)]
pub(crate) struct Members<S: Storage> {
    /// Grown as people with higher indices first join a room, never shrunk; at most one row per
    /// slot of the roster.
    cells: S::Table<Row>,
    /// The first and the last cell of each room's list.
    heads: [CellRef; MAX_ROOMS],
    tails: [CellRef; MAX_ROOMS],
}

impl<S: Storage> Members<S> {
    /// No one in any room, with room for `capacity` people's rows (what the roster's storage
    /// gave).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            cells: S::table(capacity),
            heads: [NONE; MAX_ROOMS],
            tails: [NONE; MAX_ROOMS],
        }
    }

    fn person_cells(&self, person: u32) -> &[Cell] {
        self.cells.get(person as usize).map_or(&[], |cells| cells)
    }

    fn cell_mut(&mut self, at: CellRef) -> &mut Cell {
        let (person, k) = split(at);
        &mut self.cells[person as usize][k]
    }

    /// Whether `person` is in `room`.
    pub(crate) fn contains(&self, person: u32, room: RoomId) -> bool {
        self.person_cells(person)
            .iter()
            .any(|cell| cell.room == room)
    }

    /// The rooms `person` is in, in no particular order.
    pub(crate) fn rooms_of(&self, person: u32) -> impl Iterator<Item = RoomId> + '_ {
        self.person_cells(person)
            .iter()
            .map(|cell| cell.room)
            .filter(|&room| room != NO_ROOM)
    }

    /// Whether `person` is in any room.
    pub(crate) fn in_any(&self, person: u32) -> bool {
        self.rooms_of(person).next().is_some()
    }

    /// Puts `person` (of slot `generation`, reading IRC or not) in `room`, which it must not
    /// be in yet, at the end of the room's list.
    pub(crate) fn join(
        &mut self,
        person: u32,
        generation: u32,
        irc: bool,
        remote: bool,
        tags: Tagged,
        room: RoomId,
    ) -> Result<(), TooManyRooms> {
        debug_assert!(!self.contains(person, room));
        while self.cells.len() <= person as usize {
            // Cannot fail: person indices are below the roster's capacity, the room of `cells`.
            if self
                .cells
                .push([Cell::EMPTY; MAX_ROOMS_PER_PERSON])
                .is_err()
            {
                return Err(TooManyRooms);
            }
        }
        let k = self.cells[person as usize]
            .iter()
            .position(|cell| cell.room == NO_ROOM)
            .ok_or(TooManyRooms)?;
        let at = person * MAX_ROOMS_PER_PERSON as u32 + k as u32;
        let tail = self.tails[usize::from(room)];
        match tail {
            NONE => self.heads[usize::from(room)] = at,
            tail => self.cell_mut(tail).next = at,
        }
        *self.cell_mut(at) = Cell {
            room,
            flags: if irc { IRC } else { 0 } | if remote { REMOTE } else { 0 } | tags.flags(),
            prev: tail,
            next: NONE,
            generation,
        };
        self.tails[usize::from(room)] = at;
        Ok(())
    }

    /// Takes `person` out of `room`; false if it was not in it.
    pub(crate) fn leave(&mut self, person: u32, room: RoomId) -> bool {
        let Some(k) = self
            .person_cells(person)
            .iter()
            .position(|cell| cell.room == room)
        else {
            return false;
        };
        let at = person * MAX_ROOMS_PER_PERSON as u32 + k as u32;
        let Cell { prev, next, .. } = core::mem::replace(self.cell_mut(at), Cell::EMPTY);
        match prev {
            NONE => self.heads[usize::from(room)] = next,
            prev => self.cell_mut(prev).next = next,
        }
        match next {
            NONE => self.tails[usize::from(room)] = prev,
            next => self.cell_mut(next).prev = prev,
        }
        true
    }

    /// The first membership cell of `room`'s list, for a walk that keeps its place by cell.
    pub(crate) fn head(&self, room: RoomId) -> Option<u32> {
        let head = *self.heads.get(usize::from(room))?;
        (head != NONE).then_some(head)
    }

    /// The member in cell `at`.
    pub(crate) fn at(&self, at: u32) -> Member {
        member_at(&self.cells, at)
    }

    /// Every person's cells, for walking a room without this table's size parameter.
    pub(crate) fn rows(&self) -> &[Row] {
        &self.cells
    }

    /// Moves `person`'s current room from `old` to `new` (rooms it is in, or `None`).
    pub(crate) fn set_current(&mut self, person: u32, old: Option<RoomId>, new: Option<RoomId>) {
        let Some(cells) = self.cells.get_mut(person as usize) else {
            return;
        };
        for cell in cells.iter_mut() {
            if Some(cell.room) == old {
                cell.flags &= !CURRENT;
            }
            if Some(cell.room) == new {
                cell.flags |= CURRENT;
            }
        }
    }

    /// Whether `person` is an operator of `room` (false if it is not in it).
    pub(crate) fn is_op(&self, person: u32, room: RoomId) -> bool {
        self.has(person, room, Status::Operator)
    }

    /// Whether `person` has `status` in `room` (false if it is not in it).
    pub(crate) fn has(&self, person: u32, room: RoomId, status: Status) -> bool {
        self.person_cells(person)
            .iter()
            .any(|cell| cell.room == room && cell.flags & status.flag() != 0)
    }

    /// Makes `person` an operator of `room`, or not; false if it is not in it.
    pub(crate) fn set_op(&mut self, person: u32, room: RoomId, on: bool) -> bool {
        self.set(person, room, Status::Operator, on)
    }

    /// Gives `person` `status` in `room`, or takes it; false if it is not in it.
    pub(crate) fn set(&mut self, person: u32, room: RoomId, status: Status, on: bool) -> bool {
        let Some(cells) = self.cells.get_mut(person as usize) else {
            return false;
        };
        let Some(cell) = cells.iter_mut().find(|cell| cell.room == room) else {
            return false;
        };
        if on {
            cell.flags |= status.flag();
        } else {
            cell.flags &= !status.flag();
        }
        true
    }

    /// Marks `person` as reading IRC in every room it is in (and it joins from now on, by
    /// [`Self::join`]'s `irc`).
    pub(crate) fn set_irc(&mut self, person: u32) {
        if let Some(cells) = self.cells.get_mut(person as usize) {
            for cell in cells.iter_mut() {
                cell.flags |= IRC;
            }
        }
    }

    /// Marks which message tags `person` reads, in every room it is in.
    pub(crate) fn set_tagged(&mut self, person: u32, tags: Tagged) {
        if let Some(cells) = self.cells.get_mut(person as usize) {
            for cell in cells.iter_mut() {
                cell.flags = (cell.flags & !(TAGGED | CLIENT_TAGS)) | tags.flags();
            }
        }
    }

    /// The people in `room`, in the order they joined.
    pub(crate) fn of(&self, room: RoomId) -> MembersOf<'_, S> {
        MembersOf {
            members: self,
            next: self.head(room),
        }
    }
}

/// The member in cell `at` of `rows`.
#[inline]
pub(crate) fn member_at(rows: &[Row], at: u32) -> Member {
    let (person, k) = split(at);
    let cell = rows[person as usize][k];
    Member {
        index: person,
        generation: cell.generation,
        current: cell.flags & CURRENT != 0,
        irc: cell.flags & IRC != 0,
        tagged: cell.flags & TAGGED != 0,
        client_tags: cell.flags & CLIENT_TAGS != 0,
        remote: cell.flags & REMOTE != 0,
        next: (cell.next != NONE).then_some(cell.next),
    }
}

/// The person index and cell of a cell reference.
const fn split(at: CellRef) -> (u32, usize) {
    (
        at / MAX_ROOMS_PER_PERSON as u32,
        (at % MAX_ROOMS_PER_PERSON as u32) as usize,
    )
}

/// An iterator over the person indices of one room's members.
#[derive(Clone, Debug)]
pub(crate) struct MembersOf<'a, S: Storage> {
    members: &'a Members<S>,
    next: Option<CellRef>,
}

impl<S: Storage> Iterator for MembersOf<'_, S> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let member = self.members.at(self.next?);
        self.next = member.next;
        Some(member.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Inline;
    use std::vec::Vec;

    #[test]
    fn joins_and_leaves_keep_both_directions_in_step() {
        let mut members = Members::<Inline<4>>::with_capacity(4);
        members
            .join(0, 0, false, false, Tagged::default(), 7)
            .unwrap();
        members
            .join(1, 0, false, false, Tagged::default(), 7)
            .unwrap();
        members
            .join(2, 0, false, false, Tagged::default(), 7)
            .unwrap();
        members
            .join(1, 0, false, false, Tagged::default(), 3)
            .unwrap();
        assert_eq!(
            members.of(7).collect::<Vec<_>>(),
            [0, 1, 2],
            "in joining order"
        );
        assert_eq!(members.of(3).collect::<Vec<_>>(), [1]);
        assert!(members.contains(1, 3) && !members.contains(0, 3));
        // Out of the middle, the tail and the head of a list.
        assert!(members.leave(1, 7));
        assert_eq!(members.of(7).collect::<Vec<_>>(), [0, 2]);
        members
            .join(3, 0, false, false, Tagged::default(), 7)
            .unwrap();
        assert_eq!(
            members.of(7).collect::<Vec<_>>(),
            [0, 2, 3],
            "the tail kept"
        );
        assert!(members.leave(3, 7));
        assert!(members.leave(0, 7));
        members
            .join(0, 0, false, false, Tagged::default(), 7)
            .unwrap();
        assert_eq!(members.of(7).collect::<Vec<_>>(), [2, 0]);
        assert!(members.leave(2, 7));
        assert!(members.leave(0, 7));
        assert_eq!(members.of(7).count(), 0);
        assert_eq!(members.head(7), None);
        assert!(!members.leave(0, 7), "not in it any more");
        assert_eq!(members.rooms_of(1).collect::<Vec<_>>(), [3]);
        assert!(members.in_any(1) && !members.in_any(0));
    }

    #[test]
    fn a_person_is_in_at_most_the_limit_of_rooms() {
        let mut members = Members::<Inline<2>>::with_capacity(2);
        for room in 0..MAX_ROOMS_PER_PERSON as RoomId {
            members
                .join(1, 0, false, false, Tagged::default(), room)
                .unwrap();
        }
        assert_eq!(
            members.join(1, 0, false, false, Tagged::default(), 999),
            Err(TooManyRooms)
        );
        assert!(members.leave(1, 4));
        members
            .join(1, 0, false, false, Tagged::default(), 999)
            .unwrap();
        assert_eq!(members.of(999).collect::<Vec<_>>(), [1]);
        assert_eq!(members.rooms_of(1).count(), MAX_ROOMS_PER_PERSON);
    }

    #[test]
    fn a_cell_keeps_what_a_send_needs_of_its_member() {
        let mut members = Members::<Inline<4>>::with_capacity(4);
        members
            .join(2, 7, false, false, Tagged::default(), 5)
            .unwrap();
        members
            .join(2, 7, false, false, Tagged::default(), 6)
            .unwrap();
        members
            .join(3, 1, true, false, Tagged::default(), 5)
            .unwrap();
        members.set_current(2, None, Some(5));
        let walk = |members: &Members<Inline<4>>, room| {
            let mut seen = Vec::new();
            let mut next = members.head(room);
            while let Some(at) = next {
                let member = members.at(at);
                seen.push((member.index, member.generation, member.current, member.irc));
                next = member.next;
            }
            seen
        };
        assert_eq!(
            walk(&members, 5),
            [(2, 7, true, false), (3, 1, false, true)]
        );
        members.set_current(2, Some(5), Some(6));
        members.set_irc(2);
        assert_eq!(
            walk(&members, 5),
            [(2, 7, false, true), (3, 1, false, true)]
        );
        assert_eq!(walk(&members, 6), [(2, 7, true, true)]);
    }
}
