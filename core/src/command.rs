//! The commands of the plain-text protocol, as values borrowed from the line they came from.

use core::fmt;

/// One parsed line of the plain-text protocol. See [`Command::parse`].
///
/// Every `&str` borrows from the line, so parsing allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<'a> {
    /// A line not starting with `/` (or starting with `//`, which sends one `/`): a message to
    /// everyone.
    Say(&'a str),
    /// `/nick NAME`: set or change the nickname. The name is not validated here; see
    /// [`Nickname::new`](crate::Nickname::new).
    Nick(&'a str),
    /// `/msg NAME TEXT`: TEXT to NAME alone.
    Msg {
        /// The recipient's nickname, as typed.
        to: &'a str,
        /// The message.
        text: &'a str,
    },
    /// `/list`, `/who` or `/names`: who is online.
    List,
    /// `/me TEXT`: an action line, shown as `* NAME TEXT`.
    Me(&'a str),
    /// `/help`: the list of commands.
    Help,
    /// `/quit [REASON]`: leave, telling the others why if a reason is given.
    Quit(Option<&'a str>),
    /// `/join #ROOM`: enter a room (creating it) and talk there.
    Join(&'a str),
    /// `/part [#ROOM] [REASON]`: leave a room, the current one if none is named.
    Part {
        /// The room named, if any.
        room: Option<&'a str>,
        /// Why, shown to the room.
        reason: Option<&'a str>,
    },
    /// `/rooms`: every room with its member count and topic.
    Rooms,
    /// `/topic [TEXT]`: show, or set, the current room's topic.
    Topic(Option<&'a str>),
    /// `/ping [TOKEN]`: answered with `*** pong TOKEN`, after every reply to earlier lines. A
    /// client uses it to know the server has handled everything it sent.
    Ping(Option<&'a str>),
}

/// Why a line is not a valid command. Each variant renders as a message fit to show the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError<'a> {
    /// The line is empty or only whitespace.
    Empty,
    /// `/word` where `word` is not a command.
    UnknownCommand(&'a str),
    /// A command given too few arguments; holds its usage line.
    MissingArgument(&'static str),
    /// A command given more arguments than it takes; holds its usage line.
    UnexpectedArgument(&'static str),
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty line"),
            Self::UnknownCommand(name) => {
                write!(f, "unknown command /{name}; type /help for the list")
            }
            Self::MissingArgument(usage) => write!(f, "missing argument; usage: {usage}"),
            Self::UnexpectedArgument(usage) => write!(f, "too many arguments; usage: {usage}"),
        }
    }
}

impl core::error::Error for ParseError<'_> {}

/// Usage lines, shared by parse errors and `/help`.
pub(crate) mod usage {
    pub(crate) const NICK: &str = "/nick NAME";
    pub(crate) const MSG: &str = "/msg NAME TEXT";
    pub(crate) const ME: &str = "/me TEXT";
    pub(crate) const JOIN: &str = "/join #ROOM";
}
