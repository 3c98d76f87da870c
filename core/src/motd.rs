//! The message of the day: a few lines of the operator's, shown to IRC clients as `372`
//! replies between `375` and `376`, and its first line to plain-text users after the welcome.
//!
//! The core keeps it in a fixed space: at most [`MAX_MOTD_LINES`] lines of at most
//! [`MAX_MOTD_LINE_BYTES`] bytes each. [`Motd::new`] keeps what fits and says in a [`MotdCut`]
//! what it left out, for the runner to log. Control characters are kept as given and shown as
//! escapes when sent (`^[` for ESC), so no raw control byte reaches a client.

use crate::wire::line::cut;

/// The most lines a message of the day keeps; later ones are left out.
pub const MAX_MOTD_LINES: usize = 32;

/// The most bytes of one line of a message of the day; the rest of a longer line is cut (at a
/// character boundary).
pub const MAX_MOTD_LINE_BYTES: usize = 200;

/// A message of the day, within the bounds above. An empty one has no lines.
///
/// ```
/// use chat_core::motd::Motd;
/// let (motd, cut) = Motd::new("Welcome!\r\nBe kind.\n");
/// assert_eq!(motd.lines().collect::<Vec<_>>(), ["Welcome!", "Be kind."]);
/// assert!(cut.is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Motd {
    lines: heapless::Vec<heapless::String<MAX_MOTD_LINE_BYTES>, MAX_MOTD_LINES>,
}

/// What [`Motd::new`] left out of a text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MotdCut {
    /// Lines past [`MAX_MOTD_LINES`], left out.
    pub lines_dropped: usize,
    /// Lines longer than [`MAX_MOTD_LINE_BYTES`], cut to it.
    pub lines_cut: usize,
}

impl MotdCut {
    /// Whether nothing was left out.
    pub const fn is_none(&self) -> bool {
        self.lines_dropped == 0 && self.lines_cut == 0
    }
}

impl Motd {
    /// The message of the day in `text`: its lines (ended by `\n` or `\r\n`), trailing blank
    /// lines left out, each cut to [`MAX_MOTD_LINE_BYTES`], the first [`MAX_MOTD_LINES`] kept;
    /// with what was left out.
    pub fn new(text: &str) -> (Self, MotdCut) {
        let text = text.trim_end_matches(['\r', '\n', ' ', '\t']);
        if text.is_empty() {
            return (Self::default(), MotdCut::default());
        }
        Self::from_lines(
            text.split('\n')
                .map(|line| line.strip_suffix('\r').unwrap_or(line)),
        )
    }

    /// The message of the day made of `lines` as they are (none is split, trimmed or left
    /// out for being blank), each cut to [`MAX_MOTD_LINE_BYTES`], the first
    /// [`MAX_MOTD_LINES`] kept; with what was left out. `Motd::from_lines(motd.lines())` is
    /// `motd` again (a recording keeps a message so).
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> (Self, MotdCut) {
        let mut motd = Self::default();
        let mut report = MotdCut::default();
        for line in lines {
            let kept = cut(line, MAX_MOTD_LINE_BYTES);
            if kept.len() < line.len() {
                report.lines_cut += 1;
            }
            // Cannot fail: `kept` fits.
            let kept = heapless::String::try_from(kept).unwrap_or_default();
            if motd.lines.push(kept).is_err() {
                report.lines_dropped += 1;
            }
        }
        (motd, report)
    }

    /// Its lines, in order, as given (the core escapes control characters when it sends them).
    pub fn lines(&self) -> impl Iterator<Item = &str> + '_ {
        self.lines.iter().map(heapless::String::as_str)
    }

    /// How many lines it has.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether it has no lines.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::string::String;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn lines_are_kept_in_order_without_their_endings() {
        let (motd, cut) = Motd::new("one\r\n\ntwo \n\n\n");
        assert_eq!(motd.lines().collect::<Vec<_>>(), ["one", "", "two"]);
        assert!(cut.is_none());
        assert!(Motd::new("\n\n").0.is_empty());
    }

    #[test]
    fn from_lines_gives_back_the_same_message() {
        let (motd, _) = Motd::new("one\r\r\n\n two \t\n\u{1b}[31mred\nlast");
        assert_eq!(
            motd.lines().collect::<Vec<_>>(),
            ["one\r", "", " two \t", "\u{1b}[31mred", "last"]
        );
        assert_eq!(Motd::from_lines(motd.lines()), (motd, MotdCut::default()));
        let (tail, _) = Motd::from_lines(["a ", "\r"]);
        assert_eq!(tail.lines().collect::<Vec<_>>(), ["a ", "\r"]);
    }

    #[test]
    fn too_many_lines_and_long_lines_are_cut_and_counted() {
        let mut text = String::new();
        for _ in 0..MAX_MOTD_LINES + 3 {
            text.push_str("line\n");
        }
        let (motd, cut) = Motd::new(&text);
        assert_eq!(motd.len(), MAX_MOTD_LINES);
        assert_eq!(cut.lines_dropped, 3);
        // A long line of two-byte letters is cut at a character boundary.
        let (motd, cut) = Motd::new(&"é".repeat(MAX_MOTD_LINE_BYTES));
        assert_eq!(cut.lines_cut, 1);
        assert_eq!(motd.lines().next().unwrap().len(), MAX_MOTD_LINE_BYTES);
    }
}
