//! One `MODE` line for every change one command made to a room, as IRC servers send it:
//! `MODE #room +it-n+k key` rather than a line per change.
//!
//! While [`Step::change_modes`] makes the changes of one command, each change that IRC clients
//! would see as a `MODE` line is written here instead (see [`Step::batch_mode`]); when the
//! command is done, [`Step::flush_modes`] sends the line to the room's IRC clients. Text users
//! still get a line of their own for each change, in words.

use core::fmt::Write;

use crate::dialect::MAX_MODE_CHANGES;
use crate::dialect::Step;
use crate::dialect::text::Visible;
use crate::output::{Audience, Speaks};
use crate::state::rooms::RoomId;
use crate::state::roster::ConnectionId;

/// The longest value of one change, as shown: a ban mask ([`MAX_BAN_MASK_BYTES`]) is the
/// longest (a nickname, a key and a limit are shorter), and shown as it is, since a mask with
/// a control character is refused. A value that does not fit anyway goes out on a line of its
/// own (see [`Step::batch_mode`]).
///
/// [`MAX_BAN_MASK_BYTES`]: crate::state::rooms::MAX_BAN_MASK_BYTES
const MAX_VALUE_BYTES: usize = crate::state::rooms::MAX_BAN_MASK_BYTES;

/// The changes gathered for one `MODE` line: at most [`MAX_MODE_CHANGES`], each a sign (where
/// it differs from the last), a letter and maybe a value.
#[derive(Debug)]
pub(crate) struct ModeLine {
    /// Who made them.
    by: ConnectionId,
    /// The room, once a change was gathered.
    room: Option<RoomId>,
    /// `+it-n+k`.
    letters: heapless::String<{ 2 * MAX_MODE_CHANGES }>,
    /// ` key mask`: each value after a space.
    values: heapless::String<{ MAX_MODE_CHANGES * (1 + MAX_VALUE_BYTES) }>,
    /// The sign of the last letter, if any.
    sign: Option<bool>,
}

impl ModeLine {
    /// An empty line for the changes `by` makes.
    pub(crate) fn new(by: ConnectionId) -> Self {
        Self {
            by,
            room: None,
            letters: heapless::String::new(),
            values: heapless::String::new(),
            sign: None,
        }
    }

    /// Adds a change to `room`: `on` (`+`) or not, `letter`, `value`; false, and nothing
    /// added, if it is another's change or another room's, or it does not fit.
    fn push(
        &mut self,
        by: ConnectionId,
        room: RoomId,
        on: bool,
        letter: char,
        value: Option<&str>,
    ) -> bool {
        if by != self.by || self.room.is_some_and(|kept| kept != room) {
            return false;
        }
        let (letters, values) = (self.letters.len(), self.values.len());
        let mut fits = true;
        if self.sign != Some(on) {
            fits &= self.letters.push(if on { '+' } else { '-' }).is_ok();
        }
        fits &= self.letters.push(letter).is_ok();
        if let Some(value) = value {
            fits &= write!(self.values, " {}", Visible(value)).is_ok();
        }
        if !fits {
            self.letters.truncate(letters);
            self.values.truncate(values);
            return false;
        }
        self.sign = Some(on);
        self.room = Some(room);
        true
    }
}

impl<S: crate::Storage> Step<'_, S> {
    /// Writes a change that IRC clients see as `MODE` to the line being gathered, if one is
    /// (see [`ModeLine`]); false if there is none or the change is not for it: the caller then
    /// sends the change on a line of its own.
    pub(crate) fn batch_mode(
        &mut self,
        by: ConnectionId,
        room: RoomId,
        on: bool,
        letter: char,
        value: Option<&str>,
    ) -> bool {
        self.mode_line
            .as_mut()
            .is_some_and(|line| line.push(by, room, on, letter, value))
    }

    /// Sends the gathered line to the room's IRC clients, if it has changes, and stops
    /// gathering.
    pub(crate) fn flush_modes(&mut self) {
        let Some(line) = self.mode_line.take() else {
            return;
        };
        let Some(room) = line.room else {
            return;
        };
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let (prefix, name) = (self.roster.prefix(line.by), info.name);
        let members = Audience::room(room).speaking(Speaks::Irc);
        let (letters, values) = (&line.letters, &line.values);
        irc!(self, members, ":{prefix} MODE {name} {letters}{values}");
    }
}
