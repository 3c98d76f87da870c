//! The commands of the plain-text protocol, as values borrowed from the line they came from.

use core::fmt;
use core::time::Duration;

use nom::bytes::complete::{take_till, take_till1, take_while, take_while1};
use nom::character::complete::char;
use nom::combinator::rest;
use nom::sequence::preceded;
use nom::{IResult, Parser};

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
    /// `/join #ROOM [KEY]`: enter a room (creating it) and talk there; KEY for a room that
    /// has one.
    Join {
        /// The room, as typed.
        room: &'a str,
        /// The key given, if any.
        key: Option<&'a str>,
    },
    /// `/invite NAME [#ROOM]`: let NAME into a room (the current one if none is named) once,
    /// past its invite-only mode, key, limit and bans.
    Invite {
        /// Who.
        nick: &'a str,
        /// The room named, if any.
        room: Option<&'a str>,
    },
    /// `/serverban MASK [DURATION] [REASON]` (`on`) or `/serverunban MASK`, for server
    /// operators: keep whoever matches MASK (a nickname, `nick!user@host`, `$a:ACCOUNT`, an
    /// address or a network such as `198.51.100.0/24`) off the server, or no longer.
    ServerBan {
        /// Who.
        mask: &'a str,
        /// Banned, or no longer.
        on: bool,
        /// For how long; `None`: until lifted.
        duration: Option<Duration>,
        /// Why, told to whom it puts out.
        reason: Option<&'a str>,
    },
    /// `/serverbans`: the server-wide bans, for server operators.
    ServerBans,
    /// `/register-room` (`on`) or `/unregister-room`: register the current room to the
    /// account one is identified as, or no longer.
    RegisterRoom {
        /// Registered, or no longer.
        on: bool,
    },
    /// `/mode [#ROOM] [CHANGES [VALUES...]]`: show a room's modes (the current room if none is
    /// named), or change them as IRC's `MODE` does: `/mode +k KEY`, `/mode +l 10 -m`.
    Mode {
        /// The room named, if any.
        room: Option<&'a str>,
        /// The changes (`+kl-m`), if any.
        changes: Option<&'a str>,
        /// Their values, in order, separated by blanks.
        values: &'a str,
    },
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
    /// `/history [N]`: the current room's last N lines. The number is not bounded here (a
    /// number too large for `u32` is [`ParseError::UnexpectedArgument`]).
    History(Option<u32>),
    /// `/register PASSWORD`: keep the current nickname as an account with this password.
    Register(&'a str),
    /// `/identify PASSWORD` (the account of the current nickname) or `/login NAME PASSWORD`:
    /// prove to be the account's owner.
    Identify {
        /// The account named, if any.
        account: Option<&'a str>,
        /// Its password, as typed.
        password: &'a str,
    },
    /// `/logout`: be identified as no account.
    Logout,
    /// `/kick NICK [REASON]`: put NICK out of the current room (its operators only).
    Kick {
        /// Who.
        nick: &'a str,
        /// Why, shown to the room.
        reason: Option<&'a str>,
    },
    /// `/ban MASK [DURATION] [REASON]` (`on`) or `/unban MASK`: keep who matches MASK (`nick`,
    /// `nick!user@host` with `*` and `?`, or `$a:ACCOUNT`) out of the current room, for
    /// DURATION (see [`parse_duration`]) or until lifted, or no longer.
    Ban {
        /// Who.
        mask: &'a str,
        /// Banned, or no longer.
        on: bool,
        /// For how long; `None`: until lifted.
        duration: Option<Duration>,
        /// Why, shown to the room.
        reason: Option<&'a str>,
    },
    /// `/mute NICK [DURATION]` (`on`) or `/unmute NICK`: refuse NICK's lines to the current
    /// room, for DURATION or until unmuted, or no longer.
    Mute {
        /// Who.
        nick: &'a str,
        /// Muted, or no longer.
        on: bool,
        /// For how long; `None`: until unmuted.
        duration: Option<Duration>,
    },
    /// `/op NICK` (`on`) or `/deop NICK`: make NICK an operator of the current room, or not.
    Op {
        /// Who.
        nick: &'a str,
        /// Made one, or not.
        on: bool,
    },
    /// `/password OLD NEW`: change the password of the account one is identified as.
    Password {
        /// The password now.
        old: &'a str,
        /// The password from now on.
        new: &'a str,
    },
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
    pub(crate) const JOIN: &str = "/join #ROOM [KEY]";
    pub(crate) const INVITE: &str = "/invite NAME [#ROOM]";
    pub(crate) const SERVERBAN: &str = "/serverban MASK [DURATION] [REASON] (MASK: a nickname, nick!user@host, $a:ACCOUNT, an address or a network; DURATION: 30s, 10m, 2h, 7d, 4w; at most 52w)";
    pub(crate) const SERVERUNBAN: &str = "/serverunban MASK";
    pub(crate) const HISTORY: &str = "/history [N]";
    pub(crate) const REGISTER: &str = "/register PASSWORD";
    pub(crate) const IDENTIFY: &str = "/identify PASSWORD";
    pub(crate) const LOGIN: &str = "/login NAME PASSWORD";
    pub(crate) const PASSWORD: &str = "/password OLD NEW";
    pub(crate) const KICK: &str = "/kick NAME [REASON]";
    pub(crate) const OP: &str = "/op NAME";
    pub(crate) const DEOP: &str = "/deop NAME";
    pub(crate) const BAN: &str =
        "/ban MASK [DURATION] [REASON] (DURATION: 30s, 10m, 2h, 7d, 4w; at most 52w)";
    pub(crate) const UNBAN: &str = "/unban MASK";
    pub(crate) const MUTE: &str =
        "/mute NAME [DURATION] (DURATION: 30s, 10m, 2h, 7d, 4w; at most 52w)";
    pub(crate) const UNMUTE: &str = "/unmute NAME";
}

impl<'a> Command<'a> {
    /// Parses one line (without its line ending) of the plain-text protocol.
    ///
    /// Command names are case-insensitive; trailing whitespace is ignored. A line that is not a
    /// command is [`Command::Say`]; a line starting with `//` says the text after the first `/`.
    ///
    /// ```
    /// use chat_core::{Command, ParseError};
    /// assert_eq!(Command::parse("hello"), Ok(Command::Say("hello")));
    /// assert_eq!(Command::parse("/msg bob hi there"), Ok(Command::Msg { to: "bob", text: "hi there" }));
    /// assert_eq!(Command::parse("/dance"), Err(ParseError::UnknownCommand("dance")));
    /// ```
    pub fn parse(line: &'a str) -> Result<Self, ParseError<'a>> {
        let line = line.trim_end();
        if line.trim_start().is_empty() {
            return Err(ParseError::Empty);
        }
        if line.starts_with("//") {
            return Ok(Command::Say(&line[1..]));
        }
        match slash_command(line) {
            Ok((_, (name, args))) => command(name, args),
            // Not a command at all: an ordinary message.
            Err(_) => Ok(Command::Say(line)),
        }
    }
}

/// `/name args...`, with `args` starting at the first non-blank after the name.
fn slash_command(input: &str) -> IResult<&str, (&str, &str)> {
    (
        preceded(char('/'), take_till(char::is_whitespace)),
        preceded(take_while(char::is_whitespace), rest),
    )
        .parse(input)
}

/// One word, then blanks, then the rest of the line.
fn word_then_text(input: &str) -> IResult<&str, (&str, &str)> {
    (
        take_till1(char::is_whitespace),
        preceded(take_while1(char::is_whitespace), rest),
    )
        .parse(input)
}

/// `[#room] [reason]`: a first word starting with `#` is the room.
fn part(args: &str) -> Command<'_> {
    fn non_empty(text: &str) -> Option<&str> {
        Some(text).filter(|text| !text.is_empty())
    }
    if args.starts_with('#') {
        match word_then_text(args) {
            Ok((_, (room, reason))) => Command::Part {
                room: Some(room),
                reason: non_empty(reason),
            },
            Err(_) => Command::Part {
                room: Some(args),
                reason: None,
            },
        }
    } else {
        Command::Part {
            room: None,
            reason: non_empty(args),
        }
    }
}

/// The longest ban or mute: a year (52 weeks).
pub const MAX_MODERATION_DURATION: Duration = Duration::from_secs(52 * 7 * 24 * 3600);

/// A duration as moderators type it: a whole number and a unit, `s`, `m`, `h`, `d` or `w`
/// (`30s`, `10m`, `2h`, `7d`, `4w`), above zero and at most [`MAX_MODERATION_DURATION`].
///
/// ```
/// use core::time::Duration;
/// use chat_core::parse_duration;
/// assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
/// assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
/// assert_eq!(parse_duration("0s"), None);
/// assert_eq!(parse_duration("53w"), None);
/// assert_eq!(parse_duration("soon"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let seconds: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 24 * 3600,
        'w' => 7 * 24 * 3600,
        _ => return None,
    };
    let number = &text[..text.len() - 1];
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let duration = Duration::from_secs(number.parse::<u64>().ok()?.checked_mul(seconds)?);
    (!duration.is_zero() && duration <= MAX_MODERATION_DURATION).then_some(duration)
}

/// Whether `word` is written as a duration (a number and a unit), valid or not.
fn looks_like_duration(word: &str) -> bool {
    word.strip_suffix(['s', 'm', 'h', 'd', 'w'])
        .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

/// An optional duration first, then the rest of the text. A first word written as a
/// duration but out of range is refused with `usage`.
fn duration_then_text<'a>(
    text: &'a str,
    usage: &'static str,
) -> Result<(Option<Duration>, &'a str), ParseError<'a>> {
    let (first, rest) = match word_then_text(text) {
        Ok((_, (first, rest))) => (first, rest),
        Err(_) => (text, ""),
    };
    if !looks_like_duration(first) {
        return Ok((None, text));
    }
    match parse_duration(first) {
        Some(duration) => Ok((Some(duration), rest)),
        None => Err(ParseError::UnexpectedArgument(usage)),
    }
}

/// Exactly one word.
fn one_word<'a>(args: &'a str, usage: &'static str) -> Result<&'a str, ParseError<'a>> {
    match args {
        "" => Err(ParseError::MissingArgument(usage)),
        _ if args.contains(char::is_whitespace) => Err(ParseError::UnexpectedArgument(usage)),
        _ => Ok(args),
    }
}

/// Exactly two words.
fn two_words<'a>(args: &'a str, usage: &'static str) -> Result<(&'a str, &'a str), ParseError<'a>> {
    match word_then_text(args) {
        Ok((_, (first, second))) if !second.contains(char::is_whitespace) => Ok((first, second)),
        Ok(_) => Err(ParseError::UnexpectedArgument(usage)),
        Err(_) => Err(ParseError::MissingArgument(usage)),
    }
}

fn command<'a>(name: &'a str, args: &'a str) -> Result<Command<'a>, ParseError<'a>> {
    let is = |candidate: &str| name.eq_ignore_ascii_case(candidate);
    if is("nick") {
        match args {
            "" => Err(ParseError::MissingArgument(usage::NICK)),
            _ if args.contains(char::is_whitespace) => {
                Err(ParseError::UnexpectedArgument(usage::NICK))
            }
            _ => Ok(Command::Nick(args)),
        }
    } else if is("msg") {
        match word_then_text(args) {
            Ok((_, (to, text))) if !text.trim().is_empty() => Ok(Command::Msg { to, text }),
            _ => Err(ParseError::MissingArgument(usage::MSG)),
        }
    } else if is("me") {
        match args {
            "" => Err(ParseError::MissingArgument(usage::ME)),
            _ => Ok(Command::Me(args)),
        }
    } else if is("list") || is("who") || is("names") {
        Ok(Command::List)
    } else if is("help") {
        Ok(Command::Help)
    } else if is("quit") {
        Ok(Command::Quit(
            Some(args).filter(|reason| !reason.is_empty()),
        ))
    } else if is("join") {
        match (args, two_words(args, usage::JOIN)) {
            ("", _) => Err(ParseError::MissingArgument(usage::JOIN)),
            // `/join #a #b` is two rooms, not a room and its key: one at a time.
            (_, Ok((_, key))) if key.starts_with('#') => {
                Err(ParseError::UnexpectedArgument(usage::JOIN))
            }
            (_, Ok((room, key))) => Ok(Command::Join {
                room,
                key: Some(key),
            }),
            (_, Err(ParseError::MissingArgument(_))) => Ok(Command::Join {
                room: args,
                key: None,
            }),
            (_, Err(error)) => Err(error),
        }
    } else if is("invite") {
        match (args, two_words(args, usage::INVITE)) {
            ("", _) => Err(ParseError::MissingArgument(usage::INVITE)),
            (_, Ok((nick, room))) => Ok(Command::Invite {
                nick,
                room: Some(room),
            }),
            (_, Err(ParseError::MissingArgument(_))) => Ok(Command::Invite {
                nick: args,
                room: None,
            }),
            (_, Err(error)) => Err(error),
        }
    } else if is("serverban") {
        let (mask, rest) = match word_then_text(args) {
            Ok((_, (mask, rest))) => (mask, rest),
            Err(_) if args.is_empty() => {
                return Err(ParseError::MissingArgument(usage::SERVERBAN));
            }
            Err(_) => (args, ""),
        };
        let (duration, reason) = duration_then_text(rest, usage::SERVERBAN)?;
        Ok(Command::ServerBan {
            mask,
            on: true,
            duration,
            reason: Some(reason).filter(|reason| !reason.is_empty()),
        })
    } else if is("serverunban") {
        one_word(args, usage::SERVERUNBAN).map(|mask| Command::ServerBan {
            mask,
            on: false,
            duration: None,
            reason: None,
        })
    } else if is("serverbans") {
        Ok(Command::ServerBans)
    } else if is("register-room") || is("unregister-room") {
        match args {
            "" => Ok(Command::RegisterRoom {
                on: is("register-room"),
            }),
            _ => Err(ParseError::UnexpectedArgument(if is("register-room") {
                "/register-room"
            } else {
                "/unregister-room"
            })),
        }
    } else if is("mode") {
        let (room, args) = match word_then_text(args) {
            _ if !args.starts_with('#') => (None, args),
            Ok((_, (room, rest))) => (Some(room), rest),
            Err(_) => (Some(args), ""),
        };
        let (changes, values) = match word_then_text(args) {
            Ok((_, (changes, values))) => (Some(changes), values),
            Err(_) => (Some(args).filter(|changes| !changes.is_empty()), ""),
        };
        Ok(Command::Mode {
            room,
            changes,
            values,
        })
    } else if is("part") || is("leave") {
        Ok(part(args))
    } else if is("rooms") {
        Ok(Command::Rooms)
    } else if is("topic") {
        Ok(Command::Topic(Some(args).filter(|topic| !topic.is_empty())))
    } else if is("history") {
        match args {
            "" => Ok(Command::History(None)),
            _ => args
                .parse()
                .map(|lines| Command::History(Some(lines)))
                .map_err(|_| ParseError::UnexpectedArgument(usage::HISTORY)),
        }
    } else if is("ping") {
        Ok(Command::Ping(Some(args).filter(|token| !token.is_empty())))
    } else if is("register") {
        one_word(args, usage::REGISTER).map(Command::Register)
    } else if is("identify") {
        one_word(args, usage::IDENTIFY).map(|password| Command::Identify {
            account: None,
            password,
        })
    } else if is("login") {
        two_words(args, usage::LOGIN).map(|(account, password)| Command::Identify {
            account: Some(account),
            password,
        })
    } else if is("logout") {
        match args {
            "" => Ok(Command::Logout),
            _ => Err(ParseError::UnexpectedArgument("/logout")),
        }
    } else if is("kick") {
        match word_then_text(args) {
            Ok((_, (nick, reason))) => Ok(Command::Kick {
                nick,
                reason: Some(reason.trim()).filter(|reason| !reason.is_empty()),
            }),
            Err(_) if !args.is_empty() => Ok(Command::Kick {
                nick: args,
                reason: None,
            }),
            Err(_) => Err(ParseError::MissingArgument(usage::KICK)),
        }
    } else if is("ban") {
        let (mask, rest) = match word_then_text(args) {
            Ok((_, (mask, rest))) => (mask, rest),
            Err(_) if args.is_empty() => return Err(ParseError::MissingArgument(usage::BAN)),
            Err(_) => (args, ""),
        };
        let (duration, reason) = duration_then_text(rest, usage::BAN)?;
        Ok(Command::Ban {
            mask,
            on: true,
            duration,
            reason: Some(reason).filter(|reason| !reason.is_empty()),
        })
    } else if is("unban") {
        one_word(args, usage::UNBAN).map(|mask| Command::Ban {
            mask,
            on: false,
            duration: None,
            reason: None,
        })
    } else if is("mute") {
        match word_then_text(args) {
            Ok((_, (nick, rest))) => match duration_then_text(rest, usage::MUTE)? {
                (Some(duration), "") => Ok(Command::Mute {
                    nick,
                    on: true,
                    duration: Some(duration),
                }),
                _ => Err(ParseError::UnexpectedArgument(usage::MUTE)),
            },
            Err(_) => one_word(args, usage::MUTE).map(|nick| Command::Mute {
                nick,
                on: true,
                duration: None,
            }),
        }
    } else if is("unmute") {
        one_word(args, usage::UNMUTE).map(|nick| Command::Mute {
            nick,
            on: false,
            duration: None,
        })
    } else if is("op") {
        one_word(args, usage::OP).map(|nick| Command::Op { nick, on: true })
    } else if is("deop") {
        one_word(args, usage::DEOP).map(|nick| Command::Op { nick, on: false })
    } else if is("password") {
        two_words(args, usage::PASSWORD).map(|(old, new)| Command::Password { old, new })
    } else {
        Err(ParseError::UnknownCommand(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Command::*;
    use ParseError::*;

    #[test]
    fn table() {
        #[rustfmt::skip]
        let cases: &[(&str, Result<Command<'_>, ParseError<'_>>)] = &[
            ("hello",                   Ok(Say("hello"))),
            ("  indented  ",            Ok(Say("  indented"))),
            ("hello /nick x",           Ok(Say("hello /nick x"))),
            ("//nick is a command",     Ok(Say("/nick is a command"))),
            ("//",                      Ok(Say("/"))),
            ("/nick alice",             Ok(Nick("alice"))),
            ("/NICK   Alice  ",         Ok(Nick("Alice"))),
            ("/nick\talice",            Ok(Nick("alice"))),
            ("/nick\u{3000}alice",      Ok(Nick("alice"))),
            ("/msg bob\u{3000}hi",      Ok(Msg { to: "bob", text: "hi" })),
            ("/nick",                   Err(MissingArgument("/nick NAME"))),
            ("/nick   ",                Err(MissingArgument("/nick NAME"))),
            ("/nick a b",               Err(UnexpectedArgument("/nick NAME"))),
            ("/msg bob hi",             Ok(Msg { to: "bob", text: "hi" })),
            ("/msg bob   hi  there ",   Ok(Msg { to: "bob", text: "hi  there" })),
            ("/Msg bob x",              Ok(Msg { to: "bob", text: "x" })),
            ("/msg bob",                Err(MissingArgument("/msg NAME TEXT"))),
            ("/msg bob   ",             Err(MissingArgument("/msg NAME TEXT"))),
            ("/msg",                    Err(MissingArgument("/msg NAME TEXT"))),
            ("/me waves",               Ok(Me("waves"))),
            ("/me",                     Err(MissingArgument("/me TEXT"))),
            ("/list",                   Ok(List)),
            ("/who",                    Ok(List)),
            ("/NAMES extra",            Ok(List)),
            ("/help",                   Ok(Help)),
            ("/help nick",              Ok(Help)),
            ("/quit",                   Ok(Quit(None))),
            ("/quit   ",                Ok(Quit(None))),
            ("/quit gone fishing",      Ok(Quit(Some("gone fishing")))),
            ("/join #rust",             Ok(Join { room: "#rust", key: None })),
            ("/JOIN   #Rust  ",         Ok(Join { room: "#Rust", key: None })),
            ("/join #rust beer",        Ok(Join { room: "#rust", key: Some("beer") })),
            ("/join",                   Err(MissingArgument("/join #ROOM [KEY]"))),
            ("/join #a #b",             Err(UnexpectedArgument("/join #ROOM [KEY]"))),
            ("/join #a b c",            Err(UnexpectedArgument("/join #ROOM [KEY]"))),
            ("/join rust",              Ok(Join { room: "rust", key: None })),
            ("/ban bob",                Ok(Ban { mask: "bob", on: true, duration: None, reason: None })),
            ("/ban bob 2h",             Ok(Ban { mask: "bob", on: true, duration: Some(Duration::from_secs(7200)), reason: None })),
            ("/ban bob 2h spam  links", Ok(Ban { mask: "bob", on: true, duration: Some(Duration::from_secs(7200)), reason: Some("spam  links") })),
            ("/ban bob too loud",       Ok(Ban { mask: "bob", on: true, duration: None, reason: Some("too loud") })),
            ("/ban bob 0m",             Err(UnexpectedArgument(usage::BAN))),
            ("/ban",                    Err(MissingArgument(usage::BAN))),
            ("/ban bob ϕ",              Ok(Ban { mask: "bob", on: true, duration: None, reason: Some("ϕ") })),
            ("/ban bob 1ϕ",             Ok(Ban { mask: "bob", on: true, duration: None, reason: Some("1ϕ") })),
            ("/ban bob ө~ҩ",            Ok(Ban { mask: "bob", on: true, duration: None, reason: Some("ө~ҩ") })),
            ("/mute bob 5m",            Ok(Mute { nick: "bob", on: true, duration: Some(Duration::from_secs(300)) })),
            ("/mute bob",               Ok(Mute { nick: "bob", on: true, duration: None })),
            ("/mute bob loud",          Err(UnexpectedArgument(usage::MUTE))),
            ("/unmute bob",             Ok(Mute { nick: "bob", on: false, duration: None })),
            ("/serverban 192.0.2.0/24 1d botnet", Ok(ServerBan { mask: "192.0.2.0/24", on: true, duration: Some(Duration::from_secs(86_400)), reason: Some("botnet") })),
            ("/serverunban bob",        Ok(ServerBan { mask: "bob", on: false, duration: None, reason: None })),
            ("/serverbans",             Ok(ServerBans)),
            ("/invite bob",             Ok(Invite { nick: "bob", room: None })),
            ("/invite bob #rust",       Ok(Invite { nick: "bob", room: Some("#rust") })),
            ("/invite",                 Err(MissingArgument("/invite NAME [#ROOM]"))),
            ("/mode",                   Ok(Mode { room: None, changes: None, values: "" })),
            ("/mode #rust",             Ok(Mode { room: Some("#rust"), changes: None, values: "" })),
            ("/mode +k beer",           Ok(Mode { room: None, changes: Some("+k"), values: "beer" })),
            ("/mode #r +kl beer 5",     Ok(Mode { room: Some("#r"), changes: Some("+kl"), values: "beer 5" })),
            ("/part",                   Ok(Part { room: None, reason: None })),
            ("/part #rust",             Ok(Part { room: Some("#rust"), reason: None })),
            ("/part #rust  bye now",    Ok(Part { room: Some("#rust"), reason: Some("bye now") })),
            ("/part bye now",           Ok(Part { room: None, reason: Some("bye now") })),
            ("/leave #x",               Ok(Part { room: Some("#x"), reason: None })),
            ("/rooms",                  Ok(Rooms)),
            ("/history",                Ok(History(None))),
            ("/HISTORY 50 ",            Ok(History(Some(50)))),
            ("/history many",           Err(UnexpectedArgument("/history [N]"))),
            ("/history 99999999999",    Err(UnexpectedArgument("/history [N]"))),
            ("/topic",                  Ok(Topic(None))),
            ("/topic all about  rust",  Ok(Topic(Some("all about  rust")))),
            ("/ping",                   Ok(Ping(None))),
            ("/PING abc 123",           Ok(Ping(Some("abc 123")))),
            ("/dance",                  Err(UnknownCommand("dance"))),
            ("/",                       Err(UnknownCommand(""))),
            ("/ nick",                  Err(UnknownCommand(""))),
            ("/nickname bob",           Err(UnknownCommand("nickname"))),
            ("/名前 x",                 Err(UnknownCommand("名前"))),
            ("",                        Err(Empty)),
            ("   \t ",                  Err(Empty)),
        ];
        for (line, expected) in cases {
            assert_eq!(&Command::parse(line), expected, "line {line:?}");
        }
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            std::format!("{}", UnknownCommand("dance")),
            "unknown command /dance; type /help for the list"
        );
        assert_eq!(
            std::format!("{}", MissingArgument("/msg NAME TEXT")),
            "missing argument; usage: /msg NAME TEXT"
        );
    }
}
