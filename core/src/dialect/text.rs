//! Rendering: turning events into lines for a terminal, with colour, and with nothing a user
//! typed able to reach another user's terminal as a control sequence.

use core::fmt::{self, Write};

use crate::state::roster::Name;

const RESET: &str = "\x1b[0m";
const GREY: &str = "\x1b[90m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const MAGENTA: &str = "\x1b[35m";

/// Colours a name can get; dark blue, black and white are left out for legibility on both light
/// and dark backgrounds.
const NAME_COLOURS: [&str; 10] = [
    "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[35m", "\x1b[36m", "\x1b[91m", "\x1b[92m", "\x1b[93m",
    "\x1b[95m", "\x1b[96m",
];

/// Whether rendered lines carry ANSI colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Style {
    pub(crate) colour: bool,
}

impl Style {
    /// `text` in `colour`, or plain.
    fn paint<T: fmt::Display>(self, colour: &'static str, text: T) -> Painted<T> {
        Painted {
            colour: self.colour.then_some(colour),
            text,
        }
    }

    /// The server's own marker at the start of a notice line.
    pub(crate) fn notice(self) -> Painted<&'static str> {
        self.paint(YELLOW, "***")
    }

    /// The marker at the start of an error reply.
    pub(crate) fn error(self) -> Painted<&'static str> {
        self.paint(RED, "*** error:")
    }

    /// The marker on private messages.
    pub(crate) fn private(self) -> Painted<&'static str> {
        self.paint(MAGENTA, "[private]")
    }

    /// A name from a replayed line, as it was then, in the colour that name always has.
    pub(crate) fn former_name(self, name: &str) -> Painted<Visible<'_>> {
        let colour = if name.starts_with(crate::state::roster::ANONYMOUS) {
            GREY
        } else {
            name_colour(name)
        };
        self.paint(colour, Visible(name))
    }

    /// A person's name in the colour that is always theirs.
    pub(crate) fn name(self, name: Name<'_>) -> Painted<Name<'_>> {
        let colour = match name {
            Name::Nick(nick) => name_colour(nick.as_str()),
            Name::Anonymous(_) => GREY,
        };
        self.paint(colour, name)
    }
}

/// The colour a nickname always has.
fn name_colour(name: &str) -> &'static str {
    NAME_COLOURS[name_hash(name) as usize % NAME_COLOURS.len()]
}

/// FNV-1a over the lower-cased name, so "Alice" and "alice" (and "Ærø" and "æRø") get the
/// same colour.
fn name_hash(name: &str) -> u32 {
    let fnv = |hash: u32, byte: u8| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    if name.is_ascii() {
        return name.bytes().fold(0x811c_9dc5, |hash, byte| {
            fnv(hash, byte.to_ascii_lowercase())
        });
    }
    let mut buffer = [0; 4];
    name.chars()
        .flat_map(char::to_lowercase)
        .fold(0x811c_9dc5, |hash, c| {
            c.encode_utf8(&mut buffer).bytes().fold(hash, fnv)
        })
}

/// Something displayed in a colour, or plain when colour is off.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Painted<T> {
    colour: Option<&'static str>,
    text: T,
}

impl<T: fmt::Display> fmt::Display for Painted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.colour {
            Some(colour) => write!(f, "{colour}{}{RESET}", self.text),
            None => self.text.fmt(f),
        }
    }
}

/// Text from a user, displayed so that no character in it can act on a terminal.
///
/// Input with such characters is refused before it gets here (see [`first_unsafe_char`]); this
/// is the second line of defence, so even a path that forgets the check cannot emit a raw
/// control byte. C0 controls and DEL are shown in caret notation (`^[`), C1 controls and the
/// bidirectional overrides as U+FFFD.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Visible<'a>(pub(crate) &'a str);

impl fmt::Display for Visible<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(is_unsafe) {
            f.write_str(&rest[..at])?;
            // Cannot fail: `find` returned the position of a char.
            let bad = rest[at..]
                .chars()
                .next()
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            match u8::try_from(bad) {
                Ok(byte @ (0..=0x1f | 0x7f)) => {
                    f.write_char('^')?;
                    f.write_char(char::from(byte ^ 0x40))?;
                }
                _ => f.write_char(char::REPLACEMENT_CHARACTER)?,
            }
            rest = &rest[at + bad.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// A character that a terminal would act on instead of showing: C0 and C1 controls (tab
/// included), DEL, and the bidirectional embeddings, overrides and isolates, which reorder the
/// text around them.
pub(crate) fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The first character of `text` that [`Visible`] would have to neutralise.
pub(crate) fn first_unsafe_char(text: &str) -> Option<char> {
    text.chars().find(|&c| is_unsafe(c))
}

/// How an unsafe character is named in an error reply: `^[` for ESC, `U+202E` otherwise.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CharName(pub(crate) char);

impl fmt::Display for CharName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match u8::try_from(self.0) {
            Ok(byte @ (0..=0x1f | 0x7f)) => write!(f, "^{}", char::from(byte ^ 0x40)),
            _ => write!(f, "U+{:04X}", u32::from(self.0)),
        }
    }
}

/// How long ago something was said, roughly: `12 s ago`, `5 min ago`, `3 h ago`.
pub(crate) struct Ago(pub(crate) core::time::Duration);

impl fmt::Display for Ago {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_secs() {
            secs @ 0..60 => write!(f, "{secs} s ago"),
            secs @ 60..3600 => write!(f, "{} min ago", secs / 60),
            secs => write!(f, "{} h ago", secs / 3600),
        }
    }
}

/// A ban's or a mute's duration, as moderators type it: the largest unit it is a whole number
/// of (`90m` is `90m`, `120m` is `2h`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span(pub(crate) core::time::Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs();
        for (unit, size) in [
            ('w', 7 * 24 * 3600),
            ('d', 24 * 3600),
            ('h', 3600),
            ('m', 60),
        ] {
            if seconds >= size && seconds.is_multiple_of(size) {
                return write!(f, "{}{unit}", seconds / size);
            }
        }
        write!(f, "{seconds}s")
    }
}

/// ` for 10m` after a ban or a mute with a duration; nothing after one without.
#[derive(Clone, Copy, Debug)]
pub(crate) struct For(pub(crate) Option<core::time::Duration>);

impl fmt::Display for For {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(duration) => write!(f, " for {}", Span(duration)),
            None => Ok(()),
        }
    }
}

/// `, 2h left` for a ban with an end; nothing for one without.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Left(pub(crate) Option<core::time::Duration>);

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            // Shown in whole minutes, at least one.
            Some(left) => write!(
                f,
                ", {} left",
                Span(core::time::Duration::from_secs(
                    left.as_secs().div_ceil(60).max(1) * 60
                ))
            ),
            None => Ok(()),
        }
    }
}

/// A reason as shown after a kick: ` (REASON)`, or nothing.
pub(crate) struct ReasonText<'a>(pub(crate) Option<&'a str>);

impl fmt::Display for ReasonText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(reason) if !reason.is_empty() => write!(f, " ({})", Visible(reason)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::roster::Nickname;
    use std::format;

    #[test]
    fn visible_neutralises_every_control() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("plain text",             "plain text"),
            ("中文 ok",                "中文 ok"),
            ("\u{1b}[2Jgone",          "^[[2Jgone"),
            ("bell\u{7}",              "bell^G"),
            ("nul\0",                  "nul^@"),
            ("del\u{7f}",              "del^?"),
            ("tab\there",              "tab^Ihere"),
            ("csi\u{9b}2J",            "csi\u{fffd}2J"),
            ("evil\u{202e}txt.exe",    "evil\u{fffd}txt.exe"),
            ("iso\u{2066}late",        "iso\u{fffd}late"),
        ];
        for (input, expected) in cases {
            let shown = format!("{}", Visible(input));
            assert_eq!(shown, *expected, "input {input:?}");
            assert!(!shown.chars().any(is_unsafe));
        }
    }

    #[test]
    fn char_names() {
        assert_eq!(format!("{}", CharName('\u{1b}')), "^[");
        assert_eq!(format!("{}", CharName('\u{202e}')), "U+202E");
        assert_eq!(format!("{}", CharName('\u{85}')), "U+0085");
    }

    #[test]
    fn names_keep_their_colour_whatever_the_case() {
        let style = Style { colour: true };
        let a = Nickname::new("Alice").unwrap();
        let b = Nickname::new("aLICE").unwrap();
        let shown_a = format!("{}", style.name(Name::Nick(&a)));
        let shown_b = format!("{}", style.name(Name::Nick(&b)));
        assert_eq!(shown_a[..5], shown_b[..5]);
        assert!(shown_a.starts_with("\x1b[") && shown_a.ends_with("Alice\x1b[0m"));
        let plain = Style { colour: false };
        assert_eq!(format!("{}", plain.name(Name::Anonymous(3))), "anonymous-3");
    }
}
