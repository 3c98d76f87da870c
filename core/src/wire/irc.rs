//! The IRC wire format (RFC 1459 and 2812, with IRCv3 message tags): one line split into a
//! [`Message`], and a message written back as a line.
//!
//! The server uses it for its IRC dialect; it is public so that test harnesses and other
//! programs can speak the same format. It borrows from the line and never allocates.

use core::fmt;

use nom::branch::alt;
use nom::bytes::complete::{take_till, take_till1, take_while1};
use nom::character::complete::char;
use nom::combinator::{opt, rest, verify};
use nom::sequence::{preceded, terminated};
use nom::{IResult, Parser};

/// The most parameters a message carries (RFC 2812: 14 middle ones and a trailing one).
pub const MAX_PARAMS: usize = 15;

/// One IRC message: `[@tags] [:source] VERB [params...] [:trailing]`.
///
/// ```
/// use chat_core::irc::Message;
/// let message = Message::parse(":alice!a@host PRIVMSG #lobby :hello there").unwrap();
/// assert_eq!(message.source, Some("alice!a@host"));
/// assert_eq!(message.verb, "PRIVMSG");
/// assert_eq!(message.params.as_slice(), ["#lobby", "hello there"]);
/// assert_eq!(message.to_string(), ":alice!a@host PRIVMSG #lobby :hello there");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The tags as they were sent, still escaped, without the leading `@`; see [`Message::tags`].
    pub tags: Option<&'a str>,
    /// Who sent it, without the leading `:`; see [`Source`].
    pub source: Option<&'a str>,
    /// The command or numeric, as sent (compare it ignoring ASCII case).
    pub verb: &'a str,
    /// The parameters, the trailing one included, without its `:`.
    pub params: heapless::Vec<&'a str, MAX_PARAMS>,
}

/// Why a line is not an IRC message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The line has no command.
    NoVerb,
    /// The line has more than [`MAX_PARAMS`] parameters.
    TooManyParams,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVerb => f.write_str("the line has no command"),
            Self::TooManyParams => write!(f, "a message has at most {MAX_PARAMS} parameters"),
        }
    }
}

impl core::error::Error for MessageError {}

/// One or more spaces: RFC 1459 lets several separate the parts (a tab does not).
fn spaces(input: &str) -> IResult<&str, &str> {
    take_while1(|c| c == ' ').parse(input)
}

fn word(input: &str) -> IResult<&str, &str> {
    take_till1(|c| c == ' ').parse(input)
}

/// The tags, the source and the verb.
fn head(input: &str) -> IResult<&str, (Option<&str>, Option<&str>, &str)> {
    (
        opt(terminated(preceded(char('@'), word), spaces)),
        opt(terminated(
            preceded(char(':'), take_till(|c| c == ' ')),
            spaces,
        )),
        verify(word, |verb: &str| !verb.starts_with([':', '@'])),
    )
        .parse(input)
}

/// Spaces, then a trailing parameter (`:` and the rest) or a middle one (a word).
fn param(input: &str) -> IResult<&str, &str> {
    preceded(spaces, alt((preceded(char(':'), rest), word))).parse(input)
}

impl<'a> Message<'a> {
    /// Splits one line, without its line ending.
    pub fn parse(line: &'a str) -> Result<Self, MessageError> {
        let (mut input, (tags, source, verb)) =
            head(line.trim_start_matches(' ')).map_err(|_| MessageError::NoVerb)?;
        let mut params = heapless::Vec::new();
        while let Ok((after, param)) = param(input) {
            params
                .push(param)
                .map_err(|_| MessageError::TooManyParams)?;
            input = after;
        }
        Ok(Self {
            tags,
            source,
            verb,
            params,
        })
    }

    /// The tags, in order, as keys and unescaped values (empty for a tag without one). A key
    /// that comes twice comes twice here; the last one wins.
    pub fn tags(&self) -> impl Iterator<Item = (&'a str, TagValue<'a>)> + 'a {
        self.tags
            .unwrap_or_default()
            .split(';')
            .filter(|tag| !tag.is_empty())
            .map(|tag| match tag.split_once('=') {
                Some((key, value)) => (key, TagValue(value)),
                None => (tag, TagValue("")),
            })
    }

    /// The parameter at `index`, if there is one.
    pub fn param(&self, index: usize) -> Option<&'a str> {
        self.params.get(index).copied()
    }
}

/// Writes the message as one line, without a line ending. The last parameter is written as a
/// trailing one (`:text`) when it must be: when it is empty, holds a space or starts with `:`.
impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(tags) = self.tags {
            write!(f, "@{tags} ")?;
        }
        if let Some(source) = self.source {
            write!(f, ":{source} ")?;
        }
        f.write_str(self.verb)?;
        if let Some((last, middle)) = self.params.split_last() {
            for param in middle {
                write!(f, " {param}")?;
            }
            write!(f, " {}", Trailing(last))?;
        }
        Ok(())
    }
}

/// A parameter written last: with a `:` before it when it is empty, holds a space or starts
/// with `:`, so it reads back the same.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trailing<'a>(pub(crate) &'a str);

impl fmt::Display for Trailing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() || self.0.contains(' ') || self.0.starts_with(':') {
            f.write_str(":")?;
        }
        f.write_str(self.0)
    }
}

/// A tag's value as sent (escaped); displays unescaped (`\:` is `;`, `\s` a space, `\\` a
/// backslash, `\r` and `\n` themselves; any other escaped character stands for itself, and a
/// lone backslash at the end is dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagValue<'a>(pub &'a str);

impl fmt::Display for TagValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                fmt::Write::write_char(f, c)?;
                continue;
            }
            match chars.next() {
                Some(':') => f.write_str(";")?,
                Some('s') => f.write_str(" ")?,
                Some('r') => f.write_str("\r")?,
                Some('n') => f.write_str("\n")?,
                Some(other) => fmt::Write::write_char(f, other)?,
                None => {}
            }
        }
        Ok(())
    }
}

/// A tag value to send: displays `text` escaped, the inverse of [`TagValue`].
///
/// ```
/// use chat_core::irc::{EscapedTagValue, TagValue};
/// let escaped = EscapedTagValue("a; b\\c").to_string();
/// assert_eq!(escaped, "a\\:\\sb\\\\c");
/// assert_eq!(TagValue(&escaped).to_string(), "a; b\\c");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct EscapedTagValue<'a>(pub &'a str);

impl fmt::Display for EscapedTagValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                ';' => f.write_str("\\:")?,
                ' ' => f.write_str("\\s")?,
                '\\' => f.write_str("\\\\")?,
                '\r' => f.write_str("\\r")?,
                '\n' => f.write_str("\\n")?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

/// A message's source split into `nick!user@host`; a part that is missing is empty.
///
/// ```
/// use chat_core::irc::Source;
/// let source = Source::parse("alice!~a@example.org");
/// assert_eq!((source.nick, source.user, source.host), ("alice", "~a", "example.org"));
/// assert_eq!(Source::parse("irc.example.org").nick, "irc.example.org");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source<'a> {
    /// The nickname (or a server's name).
    pub nick: &'a str,
    /// The user name, after `!`.
    pub user: &'a str,
    /// The host, after `@`.
    pub host: &'a str,
}

impl<'a> Source<'a> {
    /// Splits a source; never fails, since every part is optional.
    pub fn parse(source: &'a str) -> Self {
        let (rest, host) = source.split_once('@').unwrap_or((source, ""));
        let (nick, user) = rest.split_once('!').unwrap_or((rest, ""));
        Self { nick, user, host }
    }
}

#[cfg(test)]
mod tests {
    use std::string::ToString;

    use super::*;

    #[test]
    fn splits_the_parts() {
        let message = Message::parse("@a=b\\sc;k :src!u@h  VERB  one :two three").unwrap();
        assert_eq!(message.source, Some("src!u@h"));
        assert_eq!(message.verb, "VERB");
        assert_eq!(message.params.as_slice(), ["one", "two three"]);
        let tags: std::vec::Vec<_> = message
            .tags()
            .map(|(key, value)| (key, value.to_string()))
            .collect();
        assert_eq!(tags, [("a", "b c".to_string()), ("k", "".to_string())]);
    }

    #[test]
    fn refuses_what_is_not_a_message() {
        assert_eq!(Message::parse(""), Err(MessageError::NoVerb));
        assert_eq!(Message::parse(":source"), Err(MessageError::NoVerb));
        assert_eq!(Message::parse("@tags"), Err(MessageError::NoVerb));
        let many = "V 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16";
        assert_eq!(Message::parse(many), Err(MessageError::TooManyParams));
    }

    #[test]
    fn writes_what_it_reads() {
        for line in [
            "PING",
            ":s 001 me :Welcome here",
            "PRIVMSG #a ::-)",
            "TOPIC #a :",
        ] {
            assert_eq!(Message::parse(line).unwrap().to_string(), line);
        }
    }
}
