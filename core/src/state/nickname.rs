//! Nicknames: what a person may be called, checked once, compared without ASCII case.

use core::fmt;

/// The longest nickname, in characters (all of them ASCII, so also in bytes).
pub const MAX_NICK_CHARS: usize = 16;

/// What a connection is called until it chooses a nickname: `anonymous-N`, where N is a small
/// number unique among the people online. Nicknames beginning with this word are reserved.
pub const ANONYMOUS: &str = "anonymous";

/// A valid nickname: 1 to [`MAX_NICK_CHARS`] characters from ASCII letters, digits and
/// `` _-[]\^{}|` ``, not starting with a digit or `-`, and not beginning with [`ANONYMOUS`].
///
/// The set is the one IRC allows, so the same names work for every kind of client.
/// Comparisons between nicknames ignore ASCII case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nickname(heapless::String<MAX_NICK_CHARS>);

/// Why a string is not a valid [`Nickname`]; renders as a message fit to show the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NicknameError {
    /// The name is empty.
    Empty,
    /// The name has more than [`MAX_NICK_CHARS`] characters.
    TooLong,
    /// The name contains a character outside the allowed set.
    InvalidChar(char),
    /// The name starts with a digit or `-`.
    BadFirstChar(char),
    /// The name begins with [`ANONYMOUS`].
    Reserved,
}

impl fmt::Display for NicknameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("a nickname cannot be empty"),
            Self::TooLong => write!(f, "a nickname has at most {MAX_NICK_CHARS} characters"),
            Self::InvalidChar(c) if c.is_control() => {
                f.write_str("a nickname cannot contain control characters")
            }
            Self::InvalidChar(c) => write!(
                f,
                "a nickname cannot contain {c:?}; use letters, digits and _-[]\\^{{}}|`"
            ),
            Self::BadFirstChar(c) => write!(f, "a nickname cannot start with {c:?}"),
            Self::Reserved => write!(f, "names beginning with \"{ANONYMOUS}\" are reserved"),
        }
    }
}

impl core::error::Error for NicknameError {}

impl Nickname {
    /// Validates `name` as a nickname.
    ///
    /// ```
    /// use chat_core::{Nickname, NicknameError};
    /// assert_eq!(Nickname::new("Alice_2").unwrap().as_str(), "Alice_2");
    /// assert_eq!(Nickname::new("2alice"), Err(NicknameError::BadFirstChar('2')));
    /// assert_eq!(Nickname::new("Anonymous"), Err(NicknameError::Reserved));
    /// ```
    pub fn new(name: &str) -> Result<Self, NicknameError> {
        let first = name.chars().next().ok_or(NicknameError::Empty)?;
        if let Some(bad) = name.chars().find(|&c| !is_nick_char(c)) {
            return Err(NicknameError::InvalidChar(bad));
        }
        if first.is_ascii_digit() || first == '-' {
            return Err(NicknameError::BadFirstChar(first));
        }
        if starts_with_ignore_case(name, ANONYMOUS) {
            return Err(NicknameError::Reserved);
        }
        let mut nick = heapless::String::new();
        nick.push_str(name).map_err(|_| NicknameError::TooLong)?;
        Ok(Self(nick))
    }

    /// The nickname as it was chosen, with its case.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if `other` names the same person (ASCII case ignored).
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Display for Nickname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_nick_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-[]\\^{}|`".contains(c)
}

pub(crate) fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}
