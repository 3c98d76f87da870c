//! Who is in which room, both ways: each room's members as a list, so a line to a room costs
//! O(its members) and not O(everyone online), and each person's rooms, so a departure or a
//! rename reaches just the rooms it touches.
//!
//! The lists are intrusive and allocation-free: every person has [`HOME_CELLS`] membership
//! cells of their own, and one in more rooms than that takes a second row of the rest of their
//! [`MAX_ROOMS_PER_PERSON`] from a pool with room for one per person (so it never runs dry;
//! the row is given back when they are in none of its rooms any more, and reused). Each
//! room's list is threaded through the cells of its members (smoltcp and the deadline queues
//! use the same trick). Joining, leaving and finding whether someone is in a room are O(1) or
//! O([`MAX_ROOMS_PER_PERSON`]); nothing ever scans the table. Until 2026-12-03 every person
//! had all 20 cells (320 bytes), though most people are in one room; now 36 bytes (two cells
//! and the second row's index), and 292 more while in more than two rooms.
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

/// The membership cells in a person's own row: most people are in one or two rooms, and pay
/// for no more.
pub(crate) const HOME_CELLS: usize = 2;

/// The cells of a person's second row, which they take from a pool when they join a room past
/// [`HOME_CELLS`] and give back when they are in no room of it any more. The pool has room for
/// one second row per person of the capacity, so it never runs dry.
const MORE_CELLS: usize = MAX_ROOMS_PER_PERSON - HOME_CELLS;

/// A membership cell's place: person index × [`HOME_CELLS`] + cell for a cell of a person's own
/// row; [`MORE`] set, and second row × [`MORE_CELLS`] + cell, for one of a second row.
type CellRef = u32;

/// Set in a [`CellRef`] to a second row's cell.
const MORE: CellRef = 1 << 31;

/// No cell (the end of a list), and no second row.
const NONE: CellRef = CellRef::MAX;

/// The most people the cells can be numbered for: every [`CellRef`] of a person's own row is
/// below [`MORE`], and every one of a second row (there are as many as people at most) below
/// [`NONE`]. [`MAX_CAPACITY`](crate::storage::MAX_CAPACITY) is this (checked below).
pub(crate) const MAX_PEOPLE: usize = (NONE - MORE) as usize / MORE_CELLS;

const _: () = assert!(MAX_PEOPLE * HOME_CELLS <= MORE as usize);
const _: () = assert!(crate::storage::MAX_CAPACITY == MAX_PEOPLE);

/// A cell that holds no membership.
const NO_ROOM: RoomId = RoomId::MAX;

/// A person's own membership cells.
pub(crate) type Row = [Cell; HOME_CELLS];

/// A second row of membership cells, and whose it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct More {
    owner: u32,
    cells: [Cell; MORE_CELLS],
}

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
    /// Each person's own [`HOME_CELLS`] cells. Grown as people with higher indices first join
    /// a room, never shrunk; at most one row per slot of the roster.
    rows: S::Table<Row>,
    /// Each person's second row in `more`, or [`NONE`]; as long as `rows`.
    more_of: S::Table<u32>,
    /// The second rows of those in more than [`HOME_CELLS`] rooms: made as first needed, then
    /// reused; at most one per slot of the roster, so one is always there to take.
    more: S::Table<More>,
    /// The second rows of `more` no one holds now.
    free_more: S::Table<u32>,
    /// The first and the last cell of each room's list.
    heads: [CellRef; MAX_ROOMS],
    tails: [CellRef; MAX_ROOMS],
    /// Per room, how many joined at a cell before the list's last since the lists were last
    /// put in order ([`Self::put_in_order`]): each is a step back in memory for a walk, where
    /// the prefetcher loses the thread (saturating).
    steps_back: [u32; MAX_ROOMS],
    /// The steps back that walks to rooms have taken since then: each a likely cache miss.
    walked_back: u64,
    /// The fewest cells with which the lists are ever put in order: [`CELLS_IN_CACHE`] but in
    /// tests, which put small tables in order.
    sorted_from: usize,
}

/// While the tables hold at most this many membership cells (a megabyte, at 16 bytes a cell),
/// the lists keep their joining order whatever the walks take: the walks jump around a span
/// that stays in the caches. The scale bench walked 10,000 people (20,000 cells) after churn
/// at the cost of a walk in joining order, and 100,000 at thirteen times it. The count is of
/// cells held, not of memberships: two for every slot that has been in a room, and 18 for
/// every second row made (the most people in three rooms or more at once). So a server that
/// has had fewer than some 32,000 people in one or two rooms each, or some 3,300 in more,
/// lists its rooms' people in the order they came.
const CELLS_IN_CACHE: usize = 1 << 16;

/// The lists are put back in order once the steps back walked reach the number of cells
/// divided by this. The pass reads and writes every cell once, going forward, a fraction of
/// a cache miss each; a step back costs a whole miss (some hundred nanoseconds at a million
/// people), so the walks have paid more than the pass by then.
const CELLS_PER_STEP_BACK: usize = 4;

/// Every membership cell, for reading a room's list without [`Members`]' size parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cells<'a> {
    rows: &'a [Row],
    more: &'a [More],
}

impl<'a> Cells<'a> {
    /// Cell `at`, and whose it is.
    #[inline]
    fn get(self, at: CellRef) -> (u32, &'a Cell) {
        if at & MORE == 0 {
            let (person, k) = (at / HOME_CELLS as u32, at as usize % HOME_CELLS);
            (person, &self.rows[person as usize][k])
        } else {
            let at = at & !MORE;
            let more = &self.more[(at / MORE_CELLS as u32) as usize];
            (more.owner, &more.cells[at as usize % MORE_CELLS])
        }
    }

    /// The member in cell `at`.
    #[inline]
    pub(crate) fn member(self, at: CellRef) -> Member {
        let (person, cell) = self.get(at);
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
}

impl<S: Storage> Members<S> {
    /// No one in any room, with room for `capacity` people (what the roster's storage gave).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            rows: S::table(capacity),
            more_of: S::table(capacity),
            more: S::table(capacity),
            free_more: S::table(capacity),
            heads: [NONE; MAX_ROOMS],
            tails: [NONE; MAX_ROOMS],
            steps_back: [0; MAX_ROOMS],
            walked_back: 0,
            sorted_from: CELLS_IN_CACHE,
        }
    }

    /// `person`'s second row, if it has one.
    fn more_of(&self, person: u32) -> Option<u32> {
        self.more_of
            .get(person as usize)
            .copied()
            .filter(|&more| more != NONE)
    }

    /// `person`'s cells and their places, its own row first.
    fn person_cells(&self, person: u32) -> impl Iterator<Item = (CellRef, &Cell)> + '_ {
        let home = self.rows.get(person as usize).map_or(&[][..], |row| row);
        let more = self
            .more_of(person)
            .and_then(|more| Some((more, self.more.get(more as usize)?)))
            .map_or((0, &[][..]), |(more, row)| (more, &row.cells[..]));
        let home = (0..)
            .zip(home)
            .map(move |(k, cell)| (person * HOME_CELLS as u32 + k, cell));
        let first = MORE | (more.0 * MORE_CELLS as u32);
        home.chain((0..).zip(more.1).map(move |(k, cell)| (first + k, cell)))
    }

    /// The place of `person`'s cell for `room` (`NO_ROOM`: a free one).
    fn find(&self, person: u32, room: RoomId) -> Option<CellRef> {
        self.person_cells(person)
            .find(|(_, cell)| cell.room == room)
            .map(|(at, _)| at)
    }

    fn cell_mut(&mut self, at: CellRef) -> &mut Cell {
        if at & MORE == 0 {
            let (person, k) = (at / HOME_CELLS as u32, at as usize % HOME_CELLS);
            &mut self.rows[person as usize][k]
        } else {
            let at = at & !MORE;
            &mut self.more[(at / MORE_CELLS as u32) as usize].cells[at as usize % MORE_CELLS]
        }
    }

    /// Changes every cell of `person`'s.
    fn for_each_cell(&mut self, person: u32, mut change: impl FnMut(&mut Cell)) {
        if let Some(row) = self.rows.get_mut(person as usize) {
            row.iter_mut().for_each(&mut change);
        }
        if let Some(more) = self.more_of(person) {
            self.more[more as usize].cells.iter_mut().for_each(change);
        }
    }

    /// Whether `person` is in `room`.
    pub(crate) fn contains(&self, person: u32, room: RoomId) -> bool {
        self.find(person, room).is_some()
    }

    /// The rooms `person` is in, in no particular order.
    pub(crate) fn rooms_of(&self, person: u32) -> impl Iterator<Item = RoomId> + '_ {
        self.person_cells(person)
            .map(|(_, cell)| cell.room)
            .filter(|&room| room != NO_ROOM)
    }

    /// Whether `person` is in any room.
    pub(crate) fn in_any(&self, person: u32) -> bool {
        self.rooms_of(person).next().is_some()
    }

    /// A free cell of `person`'s, taking a second row for it if its own is full.
    fn free_cell(&mut self, person: u32) -> Result<CellRef, TooManyRooms> {
        while self.rows.len() <= person as usize {
            // Cannot fail: person indices are below the roster's capacity, the room of both.
            if self.rows.push([Cell::EMPTY; HOME_CELLS]).is_err()
                || self.more_of.push(NONE).is_err()
            {
                return Err(TooManyRooms);
            }
        }
        if let Some(at) = self.find(person, NO_ROOM) {
            return Ok(at);
        }
        if self.more_of(person).is_some() {
            return Err(TooManyRooms);
        }
        let more = match self.free_more.pop() {
            Some(more) => more,
            None => {
                let more = u32::try_from(self.more.len()).map_err(|_| TooManyRooms)?;
                // Cannot fail: a person holds one second row at most, and there is room for
                // one per person.
                let row = More {
                    owner: person,
                    cells: [Cell::EMPTY; MORE_CELLS],
                };
                self.more.push(row).map_err(|_| TooManyRooms)?;
                more
            }
        };
        self.more[more as usize].owner = person;
        self.more_of[person as usize] = more;
        Ok(MORE | (more * MORE_CELLS as u32))
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
        let at = self.free_cell(person)?;
        let tail = self.tails[usize::from(room)];
        match tail {
            NONE => self.heads[usize::from(room)] = at,
            tail => self.cell_mut(tail).next = at,
        }
        if tail != NONE && at < tail {
            // It counts joins, not members: in a room nobody sends to it could pass
            // `u32::MAX`, and long before that the room's next walk puts the lists in order.
            let steps_back = &mut self.steps_back[usize::from(room)];
            *steps_back = steps_back.saturating_add(1);
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

    /// Takes `person` out of `room`; false if it was not in it. A second row left empty is
    /// given back.
    pub(crate) fn leave(&mut self, person: u32, room: RoomId) -> bool {
        let Some(at) = self.find(person, room) else {
            return false;
        };
        let Cell { prev, next, .. } = core::mem::replace(self.cell_mut(at), Cell::EMPTY);
        match prev {
            NONE => self.heads[usize::from(room)] = next,
            prev => self.cell_mut(prev).next = next,
        }
        match next {
            NONE => self.tails[usize::from(room)] = prev,
            next => self.cell_mut(next).prev = prev,
        }
        if self.heads[usize::from(room)] == NONE {
            self.steps_back[usize::from(room)] = 0;
        }
        if at & MORE != 0 {
            let more = (at & !MORE) / MORE_CELLS as u32;
            if self.more[more as usize]
                .cells
                .iter()
                .all(|cell| cell.room == NO_ROOM)
            {
                self.more_of[person as usize] = NONE;
                // Cannot fail: no more are free than there are.
                let _ = self.free_more.push(more);
            }
        }
        true
    }

    /// A line is about to be sent to `room`: its walk takes the room's steps back, and once
    /// those walked reach a quarter of the cells, every list is put in order (never while the
    /// cells fit in the caches, [`CELLS_IN_CACHE`]).
    ///
    /// A list is in joining order, and people take the slots others left, last freed first:
    /// after a day of people coming and going, a big room's list visits its members' cells in
    /// no order at all, and a walk waits on memory at every member (some hundred
    /// nanoseconds a member at a million, against ten in order; docs/PERFORMANCE.md,
    /// "A room's list put back in order after churn"). Putting the lists in the order of
    /// their cells, which is the order of the people's slots, makes the walk one pass forward
    /// through memory again. Deciding by the steps walked, not by the joins, leaves alone the
    /// lists nobody sends to and pays for the pass only where walks have paid more.
    #[inline]
    pub(crate) fn walking(&mut self, room: RoomId) {
        if let Some(&steps_back) = self.steps_back.get(usize::from(room))
            && steps_back != 0
        {
            self.walking_back(steps_back);
        }
    }

    /// [`Self::walking`] for a list out of order: kept out of line, so that the send of a
    /// line to a room in order (the common case) carries one test and no more code.
    #[cold]
    #[inline(never)]
    fn walking_back(&mut self, steps_back: u32) {
        let cells = self.rows.len() * HOME_CELLS + self.more.len() * MORE_CELLS;
        if cells <= self.sorted_from {
            return;
        }
        self.walked_back += u64::from(steps_back);
        if self.walked_back >= (cells / CELLS_PER_STEP_BACK) as u64 {
            self.put_in_order();
        }
    }

    /// Threads every room's list anew through its members' cells in the order the cells lie
    /// in memory: the own rows by person, then the second rows. One pass over every cell
    /// held (at most 20 a person of the capacity, second rows no one holds included), and
    /// nothing but the order changes. A list whose room had no step back is in that order
    /// already and stays as it was; in the others joining order is lost: their members are
    /// listed in the order of their cells from then on, and those who join later after them.
    fn put_in_order(&mut self) {
        self.heads.fill(NONE);
        self.tails.fill(NONE);
        self.steps_back.fill(0);
        self.walked_back = 0;
        for person in 0..self.rows.len() {
            for k in 0..HOME_CELLS {
                let at = (person * HOME_CELLS + k) as CellRef;
                self.append(at);
            }
        }
        for more in 0..self.more.len() {
            for k in 0..MORE_CELLS {
                let at = MORE | (more * MORE_CELLS + k) as CellRef;
                self.append(at);
            }
        }
    }

    /// Puts cell `at` at the end of its room's list (none if it holds no membership), for
    /// [`Self::put_in_order`].
    fn append(&mut self, at: CellRef) {
        let room = self.cell_mut(at).room;
        if room == NO_ROOM {
            return;
        }
        let tail = self.tails[usize::from(room)];
        match tail {
            NONE => self.heads[usize::from(room)] = at,
            tail => self.cell_mut(tail).next = at,
        }
        let cell = self.cell_mut(at);
        cell.prev = tail;
        cell.next = NONE;
        self.tails[usize::from(room)] = at;
    }

    /// The first membership cell of `room`'s list, for a walk that keeps its place by cell.
    pub(crate) fn head(&self, room: RoomId) -> Option<u32> {
        let head = *self.heads.get(usize::from(room))?;
        (head != NONE).then_some(head)
    }

    /// The member in cell `at`.
    pub(crate) fn at(&self, at: u32) -> Member {
        self.cells().member(at)
    }

    /// Every cell, for walking a room without this table's size parameter.
    pub(crate) fn cells(&self) -> Cells<'_> {
        Cells {
            rows: &self.rows,
            more: &self.more,
        }
    }

    /// How many second rows have been made (the most people in more than [`HOME_CELLS`] rooms
    /// at once), and how many are held now.
    #[cfg(test)]
    fn second_rows(&self) -> (usize, usize) {
        (self.more.len(), self.more.len() - self.free_more.len())
    }

    /// Moves `person`'s current room from `old` to `new` (rooms it is in, or `None`).
    pub(crate) fn set_current(&mut self, person: u32, old: Option<RoomId>, new: Option<RoomId>) {
        self.for_each_cell(person, |cell| {
            if Some(cell.room) == old {
                cell.flags &= !CURRENT;
            }
            if Some(cell.room) == new {
                cell.flags |= CURRENT;
            }
        });
    }

    /// Whether `person` is an operator of `room` (false if it is not in it).
    pub(crate) fn is_op(&self, person: u32, room: RoomId) -> bool {
        self.has(person, room, Status::Operator)
    }

    /// Whether `person` has `status` in `room` (false if it is not in it).
    pub(crate) fn has(&self, person: u32, room: RoomId, status: Status) -> bool {
        self.person_cells(person)
            .any(|(_, cell)| cell.room == room && cell.flags & status.flag() != 0)
    }

    /// Makes `person` an operator of `room`, or not; false if it is not in it.
    pub(crate) fn set_op(&mut self, person: u32, room: RoomId, on: bool) -> bool {
        self.set(person, room, Status::Operator, on)
    }

    /// Gives `person` `status` in `room`, or takes it; false if it is not in it.
    pub(crate) fn set(&mut self, person: u32, room: RoomId, status: Status, on: bool) -> bool {
        let Some(at) = self.find(person, room).filter(|_| room != NO_ROOM) else {
            return false;
        };
        let cell = self.cell_mut(at);
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
        self.for_each_cell(person, |cell| cell.flags |= IRC);
    }

    /// Marks which message tags `person` reads, in every room it is in.
    pub(crate) fn set_tagged(&mut self, person: u32, tags: Tagged) {
        self.for_each_cell(person, |cell| {
            cell.flags = (cell.flags & !(TAGGED | CLIENT_TAGS)) | tags.flags();
        });
    }

    /// The people in `room`, in the order they joined; those who joined before the lists were
    /// last put in order ([`Self::walking`]) come first, in the order of their cells (the
    /// order of their slots, for those in two rooms or fewer).
    pub(crate) fn of(&self, room: RoomId) -> MembersOf<'_, S> {
        MembersOf {
            members: self,
            next: self.head(room),
        }
    }
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

    /// Each room's list walked forward and backward: the people in it, and whether the two
    /// directions agree.
    fn both_ways<S: Storage>(members: &Members<S>, room: RoomId) -> Vec<u32> {
        let forward: Vec<u32> = members.of(room).collect();
        let mut backward = Vec::new();
        let mut at = members.tails[usize::from(room)];
        while at != NONE {
            let (person, cell) = members.cells().get(at);
            assert_eq!(cell.room, room, "a cell of another room in {room}'s list");
            backward.push(person);
            at = cell.prev;
        }
        backward.reverse();
        assert_eq!(forward, backward, "room {room}: the two directions differ");
        forward
    }

    #[test]
    fn lists_joined_out_of_order_are_put_in_order_once_walks_have_paid_for_it() {
        let mut members = Members::<Inline<8>>::with_capacity(8);
        members.sorted_from = 0;
        let join = |members: &mut Members<Inline<8>>, person, room| {
            members
                .join(person, 0, false, false, Tagged::default(), room)
                .unwrap();
        };
        // Person 0 is in three rooms: its third cell is in a second row.
        for room in [1, 2] {
            join(&mut members, 0, room);
        }
        for person in [5, 3, 0, 7, 1] {
            join(&mut members, person, 7);
        }
        for person in [2, 6] {
            join(&mut members, person, 4);
        }
        assert_eq!(both_ways(&members, 7), [5, 3, 0, 7, 1], "in joining order");
        // Back from 5 to 3, from 0 to 7 (0's cell is a second row's, after every own row),
        // and from 7 to 1.
        assert_eq!(members.steps_back[7], 3);
        assert_eq!(members.steps_back[4], 0);
        // 16 own cells and 18 of the second row: the lists are put in order once 34 / 4 = 8
        // steps back have been walked.
        for _ in 0..100 {
            members.walking(4);
        }
        assert_eq!(
            members.walked_back, 0,
            "a room in order costs no steps back"
        );
        for _ in 0..2 {
            members.walking(7);
        }
        assert_eq!(
            both_ways(&members, 7),
            [5, 3, 0, 7, 1],
            "6 steps walked: not yet"
        );
        members.walking(7);
        assert_eq!(
            both_ways(&members, 7),
            [1, 3, 5, 7, 0],
            "in the order of the cells"
        );
        assert_eq!((members.steps_back[7], members.walked_back), (0, 0));
        assert_eq!(both_ways(&members, 4), [2, 6]);
        assert_eq!(both_ways(&members, 1), [0]);
        // Joining, leaving and walking go on as before on the lists put in order.
        assert!(members.leave(3, 7) && members.leave(0, 7));
        join(&mut members, 4, 7);
        assert_eq!(both_ways(&members, 7), [1, 5, 7, 4], "4 joins at the end");
        assert_eq!(members.steps_back[7], 1, "4's cell lies before 7's");
        assert!(members.leave(1, 7) && members.leave(5, 7));
        assert!(members.leave(7, 7) && members.leave(4, 7));
        assert_eq!(
            (members.head(7), members.steps_back[7]),
            (None, 0),
            "emptied"
        );
    }

    #[test]
    fn lists_keep_joining_order_while_the_cells_fit_in_the_caches() {
        let joined_backwards = |people: u32| {
            let mut members = Members::<crate::Heap>::with_capacity(people as usize);
            for person in (0..people).rev() {
                members
                    .join(person, 0, false, false, Tagged::default(), 1)
                    .unwrap();
            }
            members
        };
        // 100 people, 200 cells: every join a step back, and walks never put them in order.
        let mut members = joined_backwards(100);
        for _ in 0..1000 {
            members.walking(1);
        }
        assert!(members.of(1).eq((0..100).rev()), "joining order kept");
        // One past the caches' worth of cells: the first walk pays for the pass.
        let people = (CELLS_IN_CACHE / HOME_CELLS + 1) as u32;
        let mut members = joined_backwards(people);
        assert!(members.of(1).eq((0..people).rev()));
        members.walking(1);
        assert!(members.of(1).eq(0..people), "put in the order of the cells");
    }

    proptest::proptest! {
        /// Whatever people join and leave, and whenever the lists are put in order, every room
        /// lists exactly its members, once each, the same both ways.
        #[test]
        fn the_lists_hold_the_members_whatever_the_order(
            changes in proptest::collection::vec((0u32..6, 0 as RoomId..4, 0u8..3), 0..200),
        ) {
            let mut members = Members::<Inline<6>>::with_capacity(6);
            members.sorted_from = 0;
            let mut model = [[false; 4]; 6];
            for (person, room, what) in changes {
                match what {
                    0 if !model[person as usize][usize::from(room)] => {
                        members.join(person, 1, false, false, Tagged::default(), room).unwrap();
                        model[person as usize][usize::from(room)] = true;
                    }
                    0 | 1 => {
                        let was = model[person as usize][usize::from(room)];
                        proptest::prop_assert_eq!(members.leave(person, room), was);
                        model[person as usize][usize::from(room)] = false;
                    }
                    _ => members.walking(room),
                }
                for room in 0..4 {
                    let mut listed = both_ways(&members, room);
                    listed.sort_unstable();
                    let expected: Vec<u32> =
                        (0..6).filter(|&p| model[p as usize][usize::from(room)]).collect();
                    proptest::prop_assert_eq!(listed, expected);
                }
            }
        }
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
    fn a_second_row_is_taken_past_the_home_cells_and_given_back_when_emptied() {
        let mut members = Members::<crate::Heap>::with_capacity(3);
        let join = |members: &mut Members<crate::Heap>, person, room| {
            members.join(person, 9, false, false, Tagged::default(), room)
        };
        for room in 0..HOME_CELLS as RoomId {
            join(&mut members, 0, room).unwrap();
        }
        assert_eq!(members.second_rows(), (0, 0), "the own row is enough");
        join(&mut members, 0, 100).unwrap();
        join(&mut members, 0, 101).unwrap();
        assert_eq!(members.second_rows(), (1, 1));
        // A walk crosses from own rows to second rows and back.
        join(&mut members, 1, 100).unwrap();
        join(&mut members, 2, 100).unwrap();
        assert_eq!(members.of(100).collect::<Vec<_>>(), [0, 1, 2]);
        members.set_current(0, None, Some(101));
        members.set_irc(0);
        assert!(members.set(0, 101, Status::Voice, true));
        assert!(members.has(0, 101, Status::Voice) && !members.has(0, 100, Status::Voice));
        let member = members.at(members.head(101).unwrap());
        assert_eq!((member.index, member.current, member.irc), (0, true, true));
        // Leaving a room of the own row keeps the second one, whose rooms are still held.
        assert!(members.leave(0, 0));
        assert_eq!(members.second_rows(), (1, 1));
        assert!(members.leave(0, 100) && members.leave(0, 101));
        assert_eq!(members.second_rows(), (1, 0), "given back when empty");
        assert_eq!(members.of(100).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(members.head(101), None);
        // Reused by the next one who needs one, and its cells are clean.
        for room in 200..200 + MAX_ROOMS_PER_PERSON as RoomId - 1 {
            join(&mut members, 2, room).unwrap();
        }
        assert_eq!(join(&mut members, 2, 999), Err(TooManyRooms), "in 100 too");
        assert_eq!(members.second_rows(), (1, 1));
        assert!(!members.has(2, 201, Status::Voice));
        assert_eq!(members.rooms_of(2).count(), MAX_ROOMS_PER_PERSON);
        assert_eq!(members.of(218).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn everyone_of_the_capacity_can_be_in_the_most_rooms_at_once() {
        const N: usize = 3;
        let mut members = Members::<Inline<N>>::with_capacity(N);
        for person in 0..N as u32 {
            for room in 0..MAX_ROOMS_PER_PERSON as RoomId {
                members
                    .join(person, 0, false, false, Tagged::default(), room)
                    .unwrap();
            }
        }
        assert_eq!(members.second_rows(), (N, N));
        for room in 0..MAX_ROOMS_PER_PERSON as RoomId {
            assert_eq!(members.of(room).collect::<Vec<_>>(), [0, 1, 2]);
        }
        for person in 0..N as u32 {
            for room in 0..MAX_ROOMS_PER_PERSON as RoomId {
                assert!(members.leave(person, room));
            }
            assert!(!members.in_any(person));
        }
        assert_eq!(members.second_rows(), (N, 0));
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
