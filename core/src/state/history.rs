//! What was said in each room lately, replayed to whoever joins it.
//!
//! Kept outside the room table so that its size is a choice of the server's owner: the
//! `HISTORY` parameter of [`Server`](crate::Server) is how many lines each room keeps, and with
//! the default of 0 the store takes no space at all.

use core::fmt::Write;

use crate::state::rooms::{MAX_ROOMS, RoomId};
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

/// The store the session uses, whatever its size.
pub(crate) trait Chronicle: core::fmt::Debug {
    /// Keeps `line` for `room`, forgetting its oldest past `keep` lines.
    fn remember(&mut self, room: RoomId, line: Remembered, keep: usize);
    /// Calls `each` on `room`'s lines, oldest first.
    fn replay(&self, room: RoomId, each: &mut dyn FnMut(&Remembered));
    /// Forgets everything said in `room` (it no longer exists).
    fn forget(&mut self, room: RoomId);
}

/// Up to `H` lines for each of the [`MAX_ROOMS`] rooms, in rings.
#[derive(Debug)]
pub(crate) struct History<const H: usize> {
    rooms: [Ring<H>; MAX_ROOMS],
}

#[derive(Debug)]
struct Ring<const H: usize> {
    lines: heapless::Vec<Remembered, H>,
    /// Where the oldest line is once the ring is full.
    oldest: usize,
}

impl<const H: usize> Ring<H> {
    const EMPTY: Self = Self {
        lines: heapless::Vec::new(),
        oldest: 0,
    };
}

impl<const H: usize> History<H> {
    pub(crate) const fn new() -> Self {
        const { assert!(H <= MAX_HISTORY, "a room keeps at most MAX_HISTORY lines") };
        Self {
            rooms: [Ring::EMPTY; MAX_ROOMS],
        }
    }
}

impl<const H: usize> Chronicle for History<H> {
    fn remember(&mut self, room: RoomId, line: Remembered, keep: usize) {
        let keep = keep.min(H);
        let Some(ring) = self.rooms.get_mut(usize::from(room)) else {
            return;
        };
        if keep == 0 {
            return;
        }
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
        let Some(ring) = self.rooms.get(usize::from(room)) else {
            return;
        };
        let (newer, older) = ring.lines.split_at(ring.oldest.min(ring.lines.len()));
        older.iter().chain(newer).for_each(each);
    }

    fn forget(&mut self, room: RoomId) {
        if let Some(ring) = self.rooms.get_mut(usize::from(room)) {
            ring.lines.clear();
            ring.oldest = 0;
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
}
