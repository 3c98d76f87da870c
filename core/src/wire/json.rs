//! The original Node.js client's dialect: JSON objects written back to back with no delimiter,
//! such as `{"type":"boardcast","message":"hi"}` (sic). A connection whose first byte is `{`
//! speaks it for its whole life. Objects are framed by balanced braces (strings and escapes
//! respected), parsed with nom, and mapped onto the same commands as the plain dialect.

use core::fmt;

use nom::branch::alt;
use nom::bytes::complete::{escaped, tag};
use nom::character::complete::{char, multispace0, none_of, one_of};
use nom::combinator::{all_consuming, map, opt, recognize};
use nom::sequence::{delimited, preceded, separated_pair};
use nom::{IResult, Parser};

use crate::wire::line::MAX_LINE_BYTES;
use crate::wire::plain::Command;

/// A decoded JSON string value; no longer than the object it came from.
pub(crate) type Value = heapless::String<MAX_LINE_BYTES>;

/// Why an object is refused; renders as a message fit to show the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not a flat JSON object of string values.
    Malformed,
    /// A `type` this server does not know.
    UnknownType(heapless::String<32>),
    /// The field this type needs is missing or empty.
    Missing(&'static str),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str(
                "malformed JSON object; expected {\"type\":\"...\",\"message\":\"...\"}",
            ),
            Self::UnknownType(kind) => write!(
                f,
                "unknown message type {kind:?}; use nickname, boardcast, client or listall"
            ),
            Self::Missing(field) => write!(f, "this message type needs a non-empty \"{field}\""),
        }
    }
}

/// The fields of one object that the dialect uses.
#[derive(Debug, Default)]
pub(crate) struct Object {
    pub(crate) kind: Value,
    pub(crate) message: Value,
    pub(crate) user: Value,
}

impl Object {
    /// Parses one framed object. Keys other than `type`, `message` and `user` are ignored;
    /// every value must be a string.
    pub(crate) fn parse(text: &str) -> Result<Self, JsonError> {
        let (_, pairs) = all_consuming(object)
            .parse(text)
            .map_err(|_| JsonError::Malformed)?;
        let mut parsed = Self::default();
        for (key, value) in pairs {
            let field = match decode(key).ok_or(JsonError::Malformed)?.as_str() {
                "type" => &mut parsed.kind,
                "message" => &mut parsed.message,
                "user" => &mut parsed.user,
                _ => continue,
            };
            *field = decode(value).ok_or(JsonError::Malformed)?;
        }
        Ok(parsed)
    }

    /// The plain-dialect command this object stands for.
    pub(crate) fn command(&self) -> Result<Command<'_>, JsonError> {
        let needs = |field: &'static str, value: &Value| {
            if value.trim().is_empty() {
                Err(JsonError::Missing(field))
            } else {
                Ok(())
            }
        };
        match self.kind.as_str() {
            "nickname" => {
                needs("message", &self.message).map(|()| Command::Nick(self.message.trim()))
            }
            // The original spells it "boardcast"; the correct spelling works too.
            "boardcast" | "broadcast" => Ok(Command::Say(&self.message)),
            "client" => {
                needs("user", &self.user)?;
                needs("message", &self.message)?;
                Ok(Command::Msg {
                    to: self.user.trim(),
                    text: &self.message,
                })
            }
            "listall" => Ok(Command::List),
            other => {
                let mut kind = heapless::String::new();
                for c in other.chars() {
                    if kind.push(c).is_err() {
                        break;
                    }
                }
                Err(JsonError::UnknownType(kind))
            }
        }
    }
}

/// At most this many pairs are kept from one object; later ones are parsed and ignored.
const MAX_PAIRS: usize = 16;

/// `{ "key" : "value" , ... }`, giving the raw (still escaped) keys and values.
fn object(input: &str) -> IResult<&str, heapless::Vec<(&str, &str), MAX_PAIRS>> {
    let mut pairs = heapless::Vec::new();
    let (mut input, _) = (char('{'), multispace0).parse(input)?;
    if let Ok((rest, _)) = char::<&str, nom::error::Error<&str>>('}').parse(input) {
        return Ok((rest, pairs));
    }
    loop {
        let (rest, pair) = separated_pair(
            delimited(multispace0, string, multispace0),
            char(':'),
            delimited(multispace0, string, multispace0),
        )
        .parse(input)?;
        // Past MAX_PAIRS the pair is dropped; the object still parses.
        let _ = pairs.push(pair);
        let (rest, separator) = one_of(",}").parse(rest)?;
        input = rest;
        if separator == '}' {
            return Ok((input, pairs));
        }
    }
}

/// A JSON string, giving its contents between the quotes, escapes undecoded.
fn string(input: &str) -> IResult<&str, &str> {
    delimited(
        char('"'),
        map(
            opt(escaped(
                none_of("\"\\"),
                '\\',
                alt((
                    recognize(one_of("\"\\/bfnrt")),
                    recognize(preceded(tag("u"), hex4)),
                )),
            )),
            Option::unwrap_or_default,
        ),
        char('"'),
    )
    .parse(input)
}

fn hex4(input: &str) -> IResult<&str, &str> {
    recognize((hex, hex, hex, hex)).parse(input)
}

fn hex(input: &str) -> IResult<&str, char> {
    one_of("0123456789abcdefABCDEF").parse(input)
}

/// Decodes the escapes of a JSON string's contents; `None` for a lone surrogate.
fn decode(raw: &str) -> Option<Value> {
    let mut out = Value::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        let decoded = if c == '\\' {
            match chars.next()? {
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                // A tab becomes a space, as in a plain line.
                't' => ' ',
                'u' => {
                    let high = hex_value(&mut chars)?;
                    if (0xd800..0xdc00).contains(&high) {
                        // A surrogate pair: \uD83D\uDE00.
                        if chars.next()? != '\\' || chars.next()? != 'u' {
                            return None;
                        }
                        let low = hex_value(&mut chars)?;
                        if !(0xdc00..0xe000).contains(&low) {
                            return None;
                        }
                        char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00))?
                    } else {
                        char::from_u32(high)?
                    }
                }
                other => other,
            }
        } else if c == '\t' {
            ' '
        } else {
            c
        };
        // Cannot fail: decoding never makes a string longer than the object it came from.
        out.push(decoded).ok()?;
    }
    Some(out)
}

fn hex_value(chars: &mut core::str::Chars<'_>) -> Option<u32> {
    (0..4).try_fold(0, |value, _| Some(value * 16 + chars.next()?.to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_map_onto_commands() {
        #[rustfmt::skip]
        let cases: &[(&str, Result<Command<'_>, JsonError>)] = &[
            (r#"{"type":"nickname","message":"bob"}"#,             Ok(Command::Nick("bob"))),
            (r#"{ "message" : " bob " , "type" : "nickname" }"#,   Ok(Command::Nick("bob"))),
            (r#"{"type":"boardcast","message":"hi all"}"#,         Ok(Command::Say("hi all"))),
            (r#"{"type":"broadcast","message":"hi"}"#,             Ok(Command::Say("hi"))),
            (r#"{"type":"client","user":"bob","message":"psst"}"#, Ok(Command::Msg { to: "bob", text: "psst" })),
            (r#"{"type":"listall","message":""}"#,                 Ok(Command::List)),
            (r#"{"type":"listall","extra":"ignored"}"#,            Ok(Command::List)),
            (r#"{"type":"nickname","message":""}"#,                Err(JsonError::Missing("message"))),
            (r#"{"type":"client","message":"psst"}"#,              Err(JsonError::Missing("user"))),
            (r#"{"type":"dance"}"#,                                Err(JsonError::UnknownType(heapless::String::try_from("dance").unwrap()))),
            (r#"{}"#,                                              Err(JsonError::UnknownType(heapless::String::new()))),
        ];
        for (text, expected) in cases {
            let object = Object::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(&object.command(), expected, "{text}");
        }
    }

    #[test]
    fn escapes_are_decoded_in_keys_and_values() {
        let object = Object::parse(
            r#"{"typ\u0065":"boardcast","message":"a\"b\\c\/d\u00e9\ud83d\ude00\n\t	x"}"#,
        )
        .unwrap();
        assert_eq!(object.kind.as_str(), "boardcast");
        // Tabs, escaped or raw, become spaces, as in a plain line.
        assert_eq!(object.message.as_str(), "a\"b\\c/dé😀\n  x");
    }

    #[test]
    fn malformed_objects_are_refused() {
        for text in [
            r#"{"type":"boardcast","message":1}"#,
            r#"{"type":"boardcast" "message":"x"}"#,
            r#"{"type":"boardcast","message":"x",}"#,
            r#"{"type":"boardcast","message":"\x"}"#,
            r#"{"type":"boardcast","message":"\ud83d"}"#,
            r#"{"type":"boardcast","message":["x"]}"#,
            r#"{"type":"boardcast","message":"x"}}"#,
            r#"["type"]"#,
        ] {
            assert_eq!(
                Object::parse(text).err(),
                Some(JsonError::Malformed),
                "{text}"
            );
        }
    }
}
