//! What was said in each room lately, replayed to whoever joins it.
//!
//! Kept outside the room table so that its size is a choice of the server's owner: the
//! `HISTORY` parameter of [`Server`](crate::Server) is how many lines each room keeps, and with
//! the default of 0 the store takes no space at all. Lines are kept for at most
//! [`HISTORY_ROOMS`] rooms at once, the ones that spoke last: a room that speaks when every
//! ring is taken takes the ring of the room that has been quiet longest, whose lines are
//! forgotten. (A ring for each of the [`MAX_ROOMS`] would cost megabytes per line kept.)

use core::fmt::Write;

use crate::state::rooms::{MAX_ROOMS, RoomId};

/// The most rooms whose lines are kept at once (see the module docs for who gives way).
pub const HISTORY_ROOMS: usize = 64;

/// A room without a ring.
const NO_RING: u8 = u8::MAX;
use crate::state::roster::Name;
use crate::time::Instant;
use crate::wire::line::MAX_LINE_BYTES;

/// The most lines a room can keep (the largest `HISTORY` a [`Server`](crate::Server) may be
/// built with), so that a newcomer's replay always fits in one step's output.
pub const MAX_HISTORY: usize = 20;

/// What kind of line goes to a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Said {
    /// `alice: TEXT`
    Line,
    /// `* alice TEXT`, from `/me`.
    Action,
}

/// A line kept for replay: who said it (as they were called then), what, and when.
#[derive(Debug)]
pub(crate) struct Remembered {
    pub(crate) at: Instant,
    pub(crate) kind: Said,
    /// Long enough for a nickname or `anonymous-N`.
    pub(crate) name: heapless::String<24>,
    pub(crate) text: heapless::String<MAX_LINE_BYTES>,
}

impl Remembered {
    pub(crate) fn new(at: Instant, kind: Said, name: Name<'_>, text: &str) -> Self {
        let mut shown = heapless::String::new();
        let _ = write!(shown, "{name}");
        let mut kept = heapless::String::new();
        // Cannot fail: a line is at most MAX_LINE_BYTES.
        let _ = kept.push_str(text);
        Self {
            at,
            kind,
            name: shown,
            text: kept,
        }
    }
}

/// The store the dialects use, whatever its size.
pub(crate) trait Chronicle: core::fmt::Debug {
    /// Keeps `line` for `room`, forgetting its oldest past `keep` lines.
    fn remember(&mut self, room: RoomId, line: Remembered, keep: usize);
    /// Calls `each` on `room`'s lines, oldest first.
    fn replay(&self, room: RoomId, each: &mut dyn FnMut(&Remembered));
    /// Forgets everything said in `room` (it no longer exists).
    fn forget(&mut self, room: RoomId);
}

/// Up to `H` lines for each of [`HISTORY_ROOMS`] rooms, in rings lent to the rooms that spoke
/// last.
#[derive(Debug)]
pub(crate) struct History<const H: usize> {
    rings: [Ring<H>; HISTORY_ROOMS],
    /// The ring each room has, if any.
    ring_of: [u8; MAX_ROOMS],
    /// The step counter, for which ring was used longest ago.
    clock: u64,
}

#[derive(Debug)]
struct Ring<const H: usize> {
    /// The room the ring is lent to; meaningless while `lines` is empty.
    room: RoomId,
    /// When a line was last kept in it, by `History::clock`.
    used: u64,
    lines: heapless::Vec<Remembered, H>,
    /// Where the oldest line is once the ring is full.
    oldest: usize,
}

impl<const H: usize> Ring<H> {
    const EMPTY: Self = Self {
        room: 0,
        used: 0,
        lines: heapless::Vec::new(),
        oldest: 0,
    };

    fn clear(&mut self) {
        self.lines.clear();
        self.oldest = 0;
    }
}

impl<const H: usize> History<H> {
    pub(crate) const fn new() -> Self {
        const { assert!(H <= MAX_HISTORY, "a room keeps at most MAX_HISTORY lines") };
        Self {
            rings: [Ring::EMPTY; HISTORY_ROOMS],
            ring_of: [NO_RING; MAX_ROOMS],
            clock: 0,
        }
    }

    /// The ring `room` has, or one taken for it: an empty one, or the one used longest ago.
    fn ring_for(&mut self, room: RoomId) -> Option<&mut Ring<H>> {
        let mut at = *self.ring_of.get(usize::from(room))?;
        if at == NO_RING {
            let (free, _) = self
                .rings
                .iter()
                .enumerate()
                .min_by_key(|(_, ring)| (!ring.lines.is_empty(), ring.used))?;
            let ring = &mut self.rings[free];
            if !ring.lines.is_empty() {
                self.ring_of[usize::from(ring.room)] = NO_RING;
                ring.clear();
            }
            ring.room = room;
            at = free as u8;
            self.ring_of[usize::from(room)] = at;
        }
        self.rings.get_mut(usize::from(at))
    }
}

impl<const H: usize> Chronicle for History<H> {
    fn remember(&mut self, room: RoomId, line: Remembered, keep: usize) {
        let keep = keep.min(H);
        if keep == 0 {
            return;
        }
        self.clock += 1;
        let clock = self.clock;
        let Some(ring) = self.ring_for(room) else {
            return;
        };
        ring.used = clock;
        if ring.lines.len() < keep {
            // Cannot fail: below `keep`, which is at most H.
            let _ = ring.lines.push(line);
        } else {
            let at = ring.oldest % ring.lines.len();
            ring.lines[at] = line;
            ring.oldest = (at + 1) % ring.lines.len();
        }
    }

    fn replay(&self, room: RoomId, each: &mut dyn FnMut(&Remembered)) {
        let Some(ring) = self
            .ring_of
            .get(usize::from(room))
            .and_then(|&at| self.rings.get(usize::from(at)))
        else {
            return;
        };
        let (newer, older) = ring.lines.split_at(ring.oldest.min(ring.lines.len()));
        older.iter().chain(newer).for_each(each);
    }

    fn forget(&mut self, room: RoomId) {
        let Some(at) = self.ring_of.get_mut(usize::from(room)) else {
            return;
        };
        let ring = core::mem::replace(at, NO_RING);
        if let Some(ring) = self.rings.get_mut(usize::from(ring)) {
            ring.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::roster::Nickname;
    use std::vec::Vec;

    fn texts<const H: usize>(history: &History<H>, room: RoomId) -> Vec<std::string::String> {
        let mut out = Vec::new();
        history.replay(room, &mut |line| out.push(line.text.as_str().into()));
        out
    }

    #[test]
    fn rings_keep_the_last_lines_in_order() {
        let nick = Nickname::new("alice").unwrap();
        let mut history: History<3> = History::new();
        for n in 0..5 {
            let line = Remembered::new(
                Instant::ZERO,
                Said::Line,
                Name::Nick(&nick),
                &std::format!("m{n}"),
            );
            history.remember(1, line, 3);
        }
        assert_eq!(texts(&history, 1), ["m2", "m3", "m4"]);
        assert!(texts(&history, 0).is_empty());
        history.forget(1);
        assert!(texts(&history, 1).is_empty());
        // A smaller `keep` than the capacity is honoured.
        for n in 0..4 {
            let line = Remembered::new(
                Instant::ZERO,
                Said::Line,
                Name::Anonymous(3),
                &std::format!("k{n}"),
            );
            history.remember(2, line, 2);
        }
        assert_eq!(texts(&history, 2), ["k2", "k3"]);
        // No capacity, nothing kept.
        let mut none: History<0> = History::new();
        none.remember(
            0,
            Remembered::new(Instant::ZERO, Said::Line, Name::Anonymous(1), "x"),
            20,
        );
        assert!(texts(&none, 0).is_empty());
    }

    #[test]
    fn the_rooms_quiet_longest_give_their_rings_up() {
        let mut history: History<2> = History::new();
        let say = |history: &mut History<2>, room: RoomId, text: &str| {
            let line = Remembered::new(Instant::ZERO, Said::Line, Name::Anonymous(1), text);
            history.remember(room, line, 2);
        };
        // Every ring taken, room 0 first; then room 0 speaks again, so room 1 is the quietest.
        for room in 0..HISTORY_ROOMS as RoomId {
            say(&mut history, room, "first");
        }
        say(&mut history, 0, "again");
        say(&mut history, 4000, "new");
        assert_eq!(texts(&history, 4000), ["new"]);
        assert!(texts(&history, 1).is_empty(), "room 1 gave its ring up");
        assert_eq!(texts(&history, 0), ["first", "again"]);
        assert_eq!(texts(&history, 2), ["first"]);
        // A room that is forgotten frees its ring for the next one.
        history.forget(2);
        say(&mut history, 4001, "newer");
        assert_eq!(texts(&history, 3), ["first"], "the free ring went first");
    }
}
