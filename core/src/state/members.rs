//! Who is in which room, both ways: each room's members as a list, so a line to a room costs
//! O(its members) and not O(everyone online), and each person's rooms, so a departure or a
//! rename reaches just the rooms it touches.
//!
//! The lists are intrusive and allocation-free: every person has [`MAX_ROOMS_PER_PERSON`]
//! membership cells, and each room's list is threaded through the cells of its members
//! (smoltcp and the deadline queues use the same trick). Joining, leaving and finding whether
//! someone is in a room are O(1) or O([`MAX_ROOMS_PER_PERSON`]); nothing ever scans the table.

use crate::state::rooms::{MAX_ROOMS, RoomId};

/// The most rooms one person can be in at once (IRC's `CHANLIMIT`). Joining one more gets an
/// error reply (`405` for an IRC client) and changes nothing.
pub const MAX_ROOMS_PER_PERSON: usize = 20;

/// A membership cell's place in the table: person index × [`MAX_ROOMS_PER_PERSON`] + cell.
type CellRef = u32;

/// No cell (the end of a list).
const NONE: CellRef = CellRef::MAX;

/// A cell that holds no membership.
const NO_ROOM: RoomId = RoomId::MAX;

/// One membership: `room`, and its neighbours in that room's list of members.
#[derive(Clone, Copy, Debug)]
struct Cell {
    room: RoomId,
    prev: CellRef,
    next: CellRef,
}

impl Cell {
    const EMPTY: Self = Self {
        room: NO_ROOM,
        prev: NONE,
        next: NONE,
    };
}

/// A person is in [`MAX_ROOMS_PER_PERSON`] rooms already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooManyRooms;

/// Memberships of up to `N` people (indexed like the roster's slots) in up to [`MAX_ROOMS`]
/// rooms.
#[derive(Debug)]
pub(crate) struct Members<const N: usize> {
    /// Grown as people with higher indices first join a room, never shrunk.
    cells: heapless::Vec<[Cell; MAX_ROOMS_PER_PERSON], N>,
    /// The first and the last cell of each room's list.
    heads: [CellRef; MAX_ROOMS],
    tails: [CellRef; MAX_ROOMS],
}

impl<const N: usize> Members<N> {
    pub(crate) const fn new() -> Self {
        Self {
            cells: heapless::Vec::new(),
            heads: [NONE; MAX_ROOMS],
            tails: [NONE; MAX_ROOMS],
        }
    }

    fn person_cells(&self, person: u32) -> &[Cell] {
        self.cells.get(person as usize).map_or(&[], |cells| cells)
    }

    fn cell(&self, at: CellRef) -> Cell {
        let (person, k) = split(at);
        self.cells[person as usize][k]
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

    /// Puts `person` in `room` (which it must not be in yet), at the end of its list.
    pub(crate) fn join(&mut self, person: u32, room: RoomId) -> Result<(), TooManyRooms> {
        debug_assert!(!self.contains(person, room));
        while self.cells.len() <= person as usize {
            // Cannot fail below N: person indices come from a roster of N slots.
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
            prev: tail,
            next: NONE,
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

    /// The person of membership cell `at`, and the next cell of its room's list.
    pub(crate) fn at(&self, at: u32) -> (u32, Option<u32>) {
        let next = self.cell(at).next;
        (split(at).0, (next != NONE).then_some(next))
    }

    /// The people in `room`, in the order they joined.
    pub(crate) fn of(&self, room: RoomId) -> MembersOf<'_, N> {
        MembersOf {
            members: self,
            next: self.head(room),
        }
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
pub(crate) struct MembersOf<'a, const N: usize> {
    members: &'a Members<N>,
    next: Option<CellRef>,
}

impl<const N: usize> Iterator for MembersOf<'_, N> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let (person, next) = self.members.at(self.next?);
        self.next = next;
        Some(person)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn joins_and_leaves_keep_both_directions_in_step() {
        let mut members = Members::<4>::new();
        members.join(0, 7).unwrap();
        members.join(1, 7).unwrap();
        members.join(2, 7).unwrap();
        members.join(1, 3).unwrap();
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
        members.join(3, 7).unwrap();
        assert_eq!(
            members.of(7).collect::<Vec<_>>(),
            [0, 2, 3],
            "the tail kept"
        );
        assert!(members.leave(3, 7));
        assert!(members.leave(0, 7));
        members.join(0, 7).unwrap();
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
        let mut members = Members::<2>::new();
        for room in 0..MAX_ROOMS_PER_PERSON as RoomId {
            members.join(1, room).unwrap();
        }
        assert_eq!(members.join(1, 999), Err(TooManyRooms));
        assert!(members.leave(1, 4));
        members.join(1, 999).unwrap();
        assert_eq!(members.of(999).collect::<Vec<_>>(), [1]);
        assert_eq!(members.rooms_of(1).count(), MAX_ROOMS_PER_PERSON);
    }
}
