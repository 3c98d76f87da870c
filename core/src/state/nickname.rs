//! Nicknames: what a person may be called, checked once, compared as names are (see
//! [`crate::state::names`]).

use core::fmt;

use crate::state::names::{self, Letters, NameKey};

/// The longest nickname, in characters.
pub const MAX_NICK_CHARS: usize = 16;

/// The longest nickname, in bytes (UTF-8): 16 characters of most scripts (three bytes each
/// for CJK).
pub const MAX_NICK_BYTES: usize = 48;

/// What a connection is called until it chooses a nickname: `anonymous-N`, where N is a small
/// number unique among the people online. Nicknames beginning with this word (or one that
/// looks like it) are reserved.
pub const ANONYMOUS: &str = "anonymous";

/// Names IRC networks give their services, which no one may take: clients and their scripts
/// send passwords to `NickServ` (this server answers `NickServ` itself, in every dialect) and
/// to `ChanServ`, so a person by one of these names would collect them. Compared as names are,
/// look-alikes included.
pub const SERVICE_NAMES: [&str; 6] = [
    "NickServ", "ChanServ", "OperServ", "MemoServ", "HostServ", "BotServ",
];

/// A valid nickname: 1 to [`MAX_NICK_CHARS`] characters (at most [`MAX_NICK_BYTES`] bytes),
/// kept in NFC: letters and digits of any script, and IRC's `` _-[]\^{}|` ``; not starting
/// with a digit or `-`; not mixing scripts no one writes together (`аlice` with a Cyrillic
/// `а`); not beginning with [`ANONYMOUS`]; and not one of [`SERVICE_NAMES`].
///
/// Two nicknames are the same name if they differ only in case or by look-alike characters
/// (see [`NameKey`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nickname {
    name: heapless::String<MAX_NICK_BYTES>,
    /// The hash of its [`NameKey`], so that finding a name among many compares numbers first.
    key_hash: u32,
}

/// Why a string is not a valid [`Nickname`]; renders as a message fit to show the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NicknameError {
    /// The name is empty.
    Empty,
    /// The name has more than [`MAX_NICK_CHARS`] characters or [`MAX_NICK_BYTES`] bytes.
    TooLong,
    /// The name contains a character outside the allowed set (a symbol, a space, a control,
    /// invisible or bidi character).
    InvalidChar(char),
    /// The name starts with a digit or `-`.
    BadFirstChar(char),
    /// The name begins with [`ANONYMOUS`].
    Reserved,
    /// The name is one of [`SERVICE_NAMES`] (or looks like one).
    Service,
    /// The name mixes scripts, as look-alikes do (`аlice` with a Cyrillic `а`).
    MixedScripts,
}

impl fmt::Display for NicknameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("a nickname cannot be empty"),
            Self::TooLong => write!(
                f,
                "a nickname has at most {MAX_NICK_CHARS} characters ({MAX_NICK_BYTES} bytes)"
            ),
            Self::InvalidChar(c) if c.is_control() => {
                f.write_str("a nickname cannot contain control characters")
            }
            Self::InvalidChar(c) if !c.is_ascii() => write!(
                f,
                "a nickname cannot contain U+{:04X}; use letters, digits and _-[]\\^{{}}|`",
                u32::from(*c)
            ),
            Self::InvalidChar(c) => write!(
                f,
                "a nickname cannot contain {c:?}; use letters, digits and _-[]\\^{{}}|`"
            ),
            Self::BadFirstChar(c) => write!(f, "a nickname cannot start with {c:?}"),
            Self::Reserved => write!(f, "names beginning with \"{ANONYMOUS}\" are reserved"),
            Self::Service => {
                f.write_str("the names of IRC services (NickServ, ChanServ...) are reserved")
            }
            Self::MixedScripts => f.write_str(
                "a nickname cannot mix scripts like that (letters of one alphabet that look like \
                 another's); use one script",
            ),
        }
    }
}

impl core::error::Error for NicknameError {}

impl Nickname {
    /// Validates `name` as a nickname, kept in NFC.
    ///
    /// ```
    /// use chat_core::{Nickname, NicknameError};
    /// assert_eq!(Nickname::new("Alice_2").unwrap().as_str(), "Alice_2");
    /// assert_eq!(Nickname::new("小明").unwrap().as_str(), "小明");
    /// assert_eq!(Nickname::new("2alice"), Err(NicknameError::BadFirstChar('2')));
    /// assert_eq!(Nickname::new("Anonymous"), Err(NicknameError::Reserved));
    /// assert_eq!(Nickname::new("nickserv"), Err(NicknameError::Service));
    /// assert_eq!(Nickname::new("\u{430}lice"), Err(NicknameError::MixedScripts));
    /// ```
    pub fn new(name: &str) -> Result<Self, NicknameError> {
        let first = name.chars().next().ok_or(NicknameError::Empty)?;
        // Counted once composed, as it is kept; a name far past the bound is not composed.
        let nick = names::nfc::<MAX_NICK_BYTES>(name).ok_or(NicknameError::TooLong)?;
        if nick.chars().count() > MAX_NICK_CHARS {
            return Err(NicknameError::TooLong);
        }
        match names::check_letters(&nick, is_nick_char) {
            Ok(()) => {}
            Err(Letters::Disallowed(bad)) => return Err(NicknameError::InvalidChar(bad)),
            Err(Letters::MixedScripts) => return Err(NicknameError::MixedScripts),
        }
        if first.is_numeric() || first == '-' {
            return Err(NicknameError::BadFirstChar(first));
        }
        let key = NameKey::of(&nick).ok_or(NicknameError::TooLong)?;
        // A look-alike of the reserved word starts, as its key does, with an `a`.
        if starts_with_ignore_case(&nick, ANONYMOUS)
            || (key.as_str().starts_with('a')
                && NameKey::of(ANONYMOUS).is_some_and(|reserved| key.starts_with(&reserved)))
        {
            return Err(NicknameError::Reserved);
        }
        if SERVICE_NAMES
            .iter()
            .any(|service| NameKey::of(service).is_some_and(|reserved| reserved == key))
        {
            return Err(NicknameError::Service);
        }
        let key_hash = key.hash();
        Ok(Self {
            name: nick,
            key_hash,
        })
    }

    /// The nickname as it was chosen, with its case (in NFC).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// True if `other` is the same name (see [`NameKey`]): case and look-alikes aside.
    pub fn matches(&self, other: &str) -> bool {
        names::same(&self.name, other)
    }

    /// True if this nickname's key is `key` (whose hash is `hash`): quicker than
    /// [`matches`](Self::matches) for one name looked for among many.
    pub(crate) fn has_key(&self, key: &NameKey, hash: u32) -> bool {
        self.key_hash == hash && self.key() == *key
    }

    /// The key this nickname is compared by (see [`NameKey`]).
    pub fn key(&self) -> NameKey {
        // `new` checked that it has one; no panic here all the same.
        NameKey::of(&self.name).unwrap_or_default()
    }
}

impl fmt::Display for Nickname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

fn is_nick_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-[]\\^{}|`".contains(c)
}

pub(crate) fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}
