//! Names in any script: what makes two nicknames (or two room names) the same name.
//!
//! People pick names in their own script (小明, Ærøskøbing, Дмитрий), and a name must not be
//! taken twice by a trick of the eye: `Alice` is `alice`, and `аlice` with a Cyrillic `а` is
//! too. Every comparison of names goes through one [`NameKey`]: the name in lower case
//! (Unicode's lowercase mapping), then its UTS #39 *skeleton* (Unicode's confusables table,
//! through the `unicode-security` crate): characters that look alike map to one prototype, and
//! the result is in NFD, so composed and decomposed spellings meet too. Two names are the same
//! name when their keys are equal.
//!
//! The key is stricter than case: `a1ice` and `alice` (the digit one looks like a small L), or
//! `rn` and `m`, are one name. That is the point: whoever sees the two cannot tell them apart.
//!
//! Lowercase mapping, not case folding: they differ for a handful of characters (`ß` folds to
//! `ss`, final `ς` to `σ`); the skeleton joins some of those, and what remains can only make
//! two names differ that a reader might take for one. A crate that folds without allocating
//! and hands the folded characters out (rather than only comparing two strings) would close
//! that; none of the well-kept ones does.

use core::fmt;

use unicode_security::skeleton;

/// The most bytes a [`NameKey`] may have. Names are bounded (a nickname, a room name), so
/// their keys are too; a name whose key would be longer is refused as a name.
pub const MAX_NAME_KEY_BYTES: usize = 256;

/// The most combining marks in a row on one letter of a name.
const MAX_MARKS: usize = 4;

/// The most rounds of lowering and skeleton a key takes to settle (see [`NameKey::of`]); a
/// name whose key has not settled by then has none, and is refused as a name.
const MAX_ROUNDS: usize = 4;

/// What two names must share to be the same name: the name in lower case (Unicode's
/// lowercase mapping), as its UTS #39 skeleton (Unicode's confusables table: characters that
/// look alike map to one prototype, in NFD, so composed and decomposed spellings meet too).
/// `Alice` is `alice`, and `аlice` with a Cyrillic `а` is too; so are `a1ice` (a digit one)
/// and `rn`/`m`: whoever sees the two cannot tell them apart. A key is its own key, so a
/// runner that knows a name only by its key can use it as the name. Also what a runner keys
/// names by where it keeps them (claims of nicknames, rooms in a shared store).
///
/// ```
/// use chat_core::NameKey;
/// let key = |name| NameKey::of(name).unwrap();
/// assert_eq!(key("Alice"), key("aLICE"));
/// assert_eq!(key("alice"), key("\u{430}lice")); // a Cyrillic а
/// assert_eq!(key("Ærø"), key("æRø"));
/// assert_ne!(key("alice"), key("alicia"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameKey(heapless::String<MAX_NAME_KEY_BYTES>);

impl NameKey {
    /// The key of `name`; `None` if it would be longer than [`MAX_NAME_KEY_BYTES`] (never
    /// for a valid nickname or room name).
    pub fn of(name: &str) -> Option<Self> {
        let (lower, mut key) = Self::round(name)?;
        // Most names are their own skeleton once lowered: then the key is settled, since
        // another round would start from the same lowered name.
        if key.0 == lower {
            return Some(key);
        }
        // A key is a name too (a runner may only know a room by its key): its key must be
        // itself. A prototype in upper case (`0` looks like `O`) lowered may have a prototype
        // of its own, so rounds go on until nothing changes; two do for every name tried.
        for _ in 0..MAX_ROUNDS {
            let (_, next) = Self::round(&key.0)?;
            if next == key {
                return Some(key);
            }
            key = next;
        }
        None
    }

    /// One round: `name` lowered, and the skeleton of that.
    fn round(name: &str) -> Option<(heapless::String<MAX_NAME_KEY_BYTES>, Self)> {
        let mut lower = heapless::String::<MAX_NAME_KEY_BYTES>::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            lower.push(c).ok()?;
        }
        let mut key = heapless::String::new();
        for c in skeleton(&lower) {
            key.push(c).ok()?;
        }
        Some((lower, Self(key)))
    }

    /// The key as text (in NFD; not for showing).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A hash of the key (FNV-1a), for the tables that index names.
    pub(crate) fn hash(&self) -> u32 {
        fnv(self.0.as_bytes())
    }

    /// Whether the name keyed `self` begins with the name keyed `prefix`.
    pub(crate) fn starts_with(&self, prefix: &Self) -> bool {
        self.0.starts_with(prefix.as_str())
    }
}

impl fmt::Display for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `a` and `b` are the same name (see [`NameKey`]). Names too long to key are the
/// same only if spelt the same.
pub(crate) fn same(a: &str, b: &str) -> bool {
    match (NameKey::of(a), NameKey::of(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// Why the letters and digits of a name are not allowed: a character outside UTS #39's
/// identifier profile, or a mix of scripts no one writes in (`HighlyRestrictive` allows one
/// script, or Latin with Han and kana, Han and Bopomofo, or Han and Hangul).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Letters {
    Disallowed(char),
    MixedScripts,
}

/// Checks the characters of `name` other than the ASCII punctuation `allowed_ascii` accepts:
/// each must be allowed in identifiers (no invisible, bidi or control characters, no symbols),
/// and together they must not mix scripts.
pub(crate) fn check_letters(name: &str, allowed_ascii: fn(char) -> bool) -> Result<(), Letters> {
    use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};
    let allowed = |c: char| {
        if c.is_ascii() {
            allowed_ascii(c)
        } else {
            c.identifier_allowed()
        }
    };
    if let Some(bad) = name.chars().find(|&c| !allowed(c)) {
        return Err(Letters::Disallowed(bad));
    }
    // A combining mark belongs on a letter: not first (it would sit on whatever is shown
    // before the name), not on punctuation, and not stacked past MAX_MARKS (UTS #39 5.4).
    let mut before: Option<char> = None;
    let mut marks = 0;
    for c in name.chars() {
        if unicode_normalization::char::is_combining_mark(c) {
            marks += 1;
            if before.is_none_or(|b| b.is_ascii_punctuation()) || marks > MAX_MARKS {
                return Err(Letters::Disallowed(c));
            }
        } else {
            marks = 0;
            before = Some(c);
        }
    }
    if name.is_ascii() {
        return Ok(());
    }
    // Only letters and digits count towards the scripts: ASCII punctuation is in no script,
    // and some of it (`[`, `|`) is not in the identifier profile either.
    let mut letters = heapless::String::<MAX_NAME_KEY_BYTES>::new();
    for c in name.chars().filter(|c| !c.is_ascii_punctuation()) {
        letters.push(c).map_err(|_| Letters::MixedScripts)?;
    }
    if letters
        .as_str()
        .check_restriction_level(RestrictionLevel::HighlyRestrictive)
    {
        Ok(())
    } else {
        Err(Letters::MixedScripts)
    }
}

/// `name` in NFC, the form names are kept and shown in; `None` if it does not fit in `N`
/// bytes.
pub(crate) fn nfc<const N: usize>(name: &str) -> Option<heapless::String<N>> {
    use unicode_normalization::UnicodeNormalization;
    let mut out = heapless::String::new();
    for c in name.chars().nfc() {
        out.push(c).ok()?;
    }
    Some(out)
}

/// Whether `name` matches the glob `mask` (`*` any run, `?` one character), case ignored in
/// any script (each character's lowercase, as names are compared), so that `ÉMILE` matches a
/// ban on `émile`. Bytes that are not UTF-8 match nothing.
pub(crate) fn glob(mask: &[u8], name: &[u8]) -> bool {
    let (Ok(mask), Ok(name)) = (core::str::from_utf8(mask), core::str::from_utf8(name)) else {
        return false;
    };
    // Byte positions; one character is stepped over at a time.
    let next = |text: &str, at: usize| text[at..].chars().next();
    let (mut m, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = next(name, n) {
        match next(mask, m) {
            Some(p) if p == '?' || same_char(p, c) => {
                m += p.len_utf8();
                n += c.len_utf8();
            }
            Some('*') => {
                star = Some((m, n));
                m += 1;
            }
            _ => {
                let Some((star_m, star_n)) = star else {
                    return false;
                };
                // The star takes one character more.
                let skipped = next(name, star_n).map_or(1, char::len_utf8);
                m = star_m + 1;
                n = star_n + skipped;
                star = Some((star_m, n));
            }
        }
    }
    mask[m..].bytes().all(|b| b == b'*')
}

/// Whether someone shown as `prefix` (`nick!user@host`) matches the ban mask `mask`: by
/// [`glob`], or, given `nick_key` (the key of the nickname in `prefix`), by a nickname that
/// looks like the mask's: the mask's nickname part (globs kept) as a key globs `nick_key`, and
/// the rest of the mask globs the rest of `prefix`. So a ban on `alice!*@*` also keeps out
/// `аlice` (a Cyrillic `а`) and `a1ice`, which the server would refuse beside `alice` but
/// which anyone may take while she is away. Callers give `nick_key` for bans only: an
/// exception that let look-alikes in would open the door it is meant to hold ajar.
pub(crate) fn mask_matches(mask: &str, prefix: &str, nick_key: Option<&NameKey>) -> bool {
    if glob(mask.as_bytes(), prefix.as_bytes()) {
        return true;
    }
    let Some(nick_key) = nick_key else {
        return false;
    };
    let (Some((mask_nick, mask_rest)), Some((_, rest))) =
        (mask.split_once('!'), prefix.split_once('!'))
    else {
        return false;
    };
    glob(mask_rest.as_bytes(), rest.as_bytes())
        && NameKey::of(mask_nick).is_some_and(|mask_key| {
            glob(mask_key.as_str().as_bytes(), nick_key.as_str().as_bytes())
        })
}

/// Whether two characters are one but for case.
fn same_char(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

/// Whether two texts are one but for case, character by character (see [`glob`]).
pub(crate) fn same_ignoring_case(a: &str, b: &str) -> bool {
    a.chars().count() == b.chars().count() && a.chars().zip(b.chars()).all(|(a, b)| same_char(a, b))
}

#[cfg(test)]
mod glob_tests {
    use super::glob;

    #[test]
    fn globs_match_any_case_in_any_script() {
        for (mask, name, matches) in [
            ("émile!*@*", "ÉMILE!~e@hidden", true),
            ("*!~evil@*", "evil!~evil@hidden", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("?léa", "Éléa", true),
            ("*ß*", "STRASSE", false),
            ("小*", "小明", true),
            ("**", "", true),
            ("?", "", false),
        ] {
            assert_eq!(
                glob(mask.as_bytes(), name.as_bytes()),
                matches,
                "{mask} {name}"
            );
        }
        assert!(!glob(b"a", b"\xff"));
    }
    #[test]
    fn a_ban_mask_catches_look_alikes_of_its_nickname_when_asked() {
        use super::{NameKey, mask_matches};
        for (mask, prefix, matches) in [
            // The digit one, a Cyrillic а, a Cyrillic і: each looks like alice.
            ("alice!*@*", "a1ice!~a@hidden", true),
            ("alice!*@*", "\u{430}lice!~a@hidden", true),
            ("alice!*@*", "al\u{456}ce!~a@hidden", true),
            ("ALICE!*@*", "a1ice!~a@hidden", true),
            ("alice*!*@*", "a1ice2!~a@hidden", true),
            // Another name, or the same name from a user the mask does not name.
            ("alice!*@*", "alicia!~a@hidden", false),
            ("alice!~al@*", "a1ice!~a@hidden", false),
            ("alice!~a@*", "a1ice!~a@hidden", true),
            ("*!~evil@*", "evil!~evil@hidden", true),
        ] {
            let nick = prefix.split_once('!').unwrap().0;
            let nick_key = NameKey::of(nick).unwrap();
            assert_eq!(
                mask_matches(mask, prefix, Some(&nick_key)),
                matches,
                "{mask} {prefix}"
            );
            // Without the key, only what the glob matches.
            assert_eq!(
                mask_matches(mask, prefix, None),
                glob(mask.as_bytes(), prefix.as_bytes()),
                "{mask} {prefix}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::format;

    use super::*;

    fn key(name: &str) -> NameKey {
        NameKey::of(name).unwrap()
    }

    #[test]
    fn case_composition_and_look_alikes_are_one_name() {
        // Case, in any script.
        assert_eq!(key("ALICE"), key("alice"));
        assert_eq!(key("ДМИТРИЙ"), key("дмитрий"));
        assert_eq!(key("ÆRØSKØBING"), key("ærøskøbing"));
        // Composed and decomposed spellings.
        assert_eq!(key("\u{e9}t\u{e9}"), key("e\u{301}te\u{301}"));
        // Look-alikes across scripts, and within one.
        assert_eq!(key("alice"), key("\u{430}lice"));
        assert_eq!(key("paypal"), key("\u{440}\u{430}y\u{440}\u{430}l"));
        assert_eq!(key("alice"), key("a1ice"));
        // Different names stay different.
        assert_ne!(key("小明"), key("小红"));
        assert_ne!(key("bob"), key("bobby"));
        assert!(same("Alice", "\u{430}LICE"));
        assert_eq!(key("Alice").hash(), key("alice").hash());
    }

    #[test]
    fn a_key_is_its_own_key() {
        let mut names = std::vec::Vec::new();
        for range in [
            0x20..0x2000_u32,
            0x3040..0x3100,
            0x4e00..0x4f00,
            0xff00..0xfff0,
        ] {
            for c in range.filter_map(char::from_u32) {
                names.push(format!("#a{c}b{c}"));
            }
        }
        names.extend(["#r00m", "#Room1", "#ΣΟΦΙΑ", "#ß", "#İstanbul", "#Ǆ"].map(Into::into));
        for name in names {
            if let Some(key) = NameKey::of(&name) {
                assert_eq!(
                    NameKey::of(key.as_str()),
                    Some(key.clone()),
                    "{name:?} -> {key:?}"
                );
            }
        }
    }

    #[test]
    fn letters_of_one_script_are_allowed_and_tricks_are_not() {
        let irc = |c: char| c.is_ascii_alphanumeric() || "_-[]\\^{}|`".contains(c);
        for good in [
            "alice",
            "小明",
            "Ærøskøbing",
            "Дмитрий",
            "山田太郎abc",
            "[away]",
            "ゆき_2",
        ] {
            assert_eq!(check_letters(good, irc), Ok(()), "{good}");
        }
        // Cyrillic а among Latin letters.
        assert_eq!(
            check_letters("\u{430}lice", irc),
            Err(Letters::MixedScripts)
        );
        // Combining marks: first, on punctuation, or stacked high.
        assert_eq!(
            check_letters("\u{301}bob", irc),
            Err(Letters::Disallowed('\u{301}'))
        );
        assert_eq!(
            check_letters("bob_\u{301}", irc),
            Err(Letters::Disallowed('\u{301}'))
        );
        assert_eq!(
            check_letters("zalgo\u{301}\u{302}\u{303}\u{304}\u{306}", irc),
            Err(Letters::Disallowed('\u{306}'))
        );
        assert_eq!(check_letters("Jose\u{301}", irc), Ok(()));
        // Invisible, bidi and symbol characters.
        for bad in [
            '\u{200b}', '\u{202e}', '\u{2066}', '\u{feff}', '☃', '\u{7f}', ' ',
        ] {
            let name = format!("ab{bad}c");
            assert_eq!(
                check_letters(&name, irc),
                Err(Letters::Disallowed(bad)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_are_kept_in_nfc() {
        assert_eq!(
            nfc::<16>("e\u{301}te\u{301}").unwrap().as_str(),
            "\u{e9}t\u{e9}"
        );
        assert_eq!(nfc::<2>("abc"), None);
    }
}
