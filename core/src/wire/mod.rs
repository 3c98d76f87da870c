//! The wire: bytes to values and back, and nothing else. Line framing and telnet, the plain
//! command parser, the IRC message, the JSON object. Knows no connection, person or room.

pub mod irc;
pub(crate) mod json;
pub(crate) mod line;
pub(crate) mod plain;
