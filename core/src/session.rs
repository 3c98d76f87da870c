//! What a person can do once connected: the handling of one line from one connection, and of
//! arrivals and departures, as seen by everyone else.

use core::fmt::{self, Write};
use core::time::Duration;

use crate::command::{Command, ParseError};
use crate::frame::{LineBuffer, MAX_LINE_BYTES};
use crate::output::{Audience, CloseReason, OutputQueue};
use crate::render::{CharName, Painted, Style, Visible, first_unsafe_char};
use crate::roster::{ConnectionId, Name, Nickname, Roster};

/// The most names a roster listing (`/list`, the welcome banner) shows; past it the listing
/// ends with "and N more".
pub const MAX_LISTED_NAMES: usize = 100;

/// Why a connection went away, as the runner reports it to
/// [`Server::handle_disconnect`](crate::Server::handle_disconnect). The others see it in the
/// departure notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer closed the connection.
    Closed,
    /// Reading or writing the socket failed.
    Error,
    /// The peer stopped reading and its output queue filled up.
    TooSlow,
}

impl DisconnectReason {
    fn describe(self) -> &'static str {
        match self {
            Self::Closed => "connection closed",
            Self::Error => "connection error",
            Self::TooSlow => "too slow to keep up",
        }
    }
}

/// The state one step works on: the roster, the output queue and how to render. Lives inside
/// [`Server`](crate::Server); split out so the handling reads as the protocol does.
#[derive(Debug)]
pub(crate) struct Hub<'a, const N: usize> {
    pub(crate) roster: &'a mut Roster<N>,
    pub(crate) out: &'a mut OutputQueue,
    pub(crate) style: Style,
}

impl<const N: usize> Hub<'_, N> {
    /// Greets a new connection and tells everyone else.
    pub(crate) fn arrive(&mut self, conn: ConnectionId) {
        let (style, online) = (self.style, self.roster.len());
        let me = style.name(self.roster.name(conn));
        let start = self.out.mark();
        let people = if online == 1 {
            "person is"
        } else {
            "people are"
        };
        let _ = write!(
            self.out,
            "{} Welcome to the chat! You are {me}; {online} {people} online.\r\n\
             {} Pick a nickname with /nick NAME; /help lists the commands.\r\n",
            style.notice(),
            style.notice(),
        );
        self.list(conn);
        self.out.send(start, Audience::One(conn));

        let me = style.name(self.roster.name(conn));
        let start = self.out.mark();
        let _ = write!(
            self.out,
            "{} {me} joined ({online} online)\r\n",
            style.notice()
        );
        self.out.send(start, Audience::AllExcept(conn));
    }

    /// Removes `conn` and tells everyone else why it left.
    pub(crate) fn depart(&mut self, conn: ConnectionId, why: &dyn fmt::Display) {
        let style = self.style;
        let start = self.out.mark();
        let _ = write!(
            self.out,
            "{} {} left ({why})\r\n",
            style.notice(),
            style.name(self.roster.name(conn))
        );
        self.out.send(start, Audience::AllExcept(conn));
        self.roster.remove(conn);
    }

    pub(crate) fn disconnected(&mut self, conn: ConnectionId, reason: DisconnectReason) {
        self.depart(conn, &reason.describe());
    }

    /// Closes a connection that never sent a line.
    pub(crate) fn silent(&mut self, conn: ConnectionId, timeout: Duration) {
        self.reply_notice(
            conn,
            format_args!(
                "Closing: no line received within {} s of connecting.",
                timeout.as_secs()
            ),
        );
        self.depart(conn, &CloseReason::Silent);
        self.out.close(conn, CloseReason::Silent);
    }

    /// Tells everyone the server is going away.
    pub(crate) fn shut_down(&mut self) {
        let start = self.out.mark();
        let _ = write!(
            self.out,
            "{} The server is shutting down. Goodbye!\r\n",
            self.style.notice()
        );
        self.out.send(start, Audience::All);
    }

    /// Tells `conn` that its line passed the length limit.
    pub(crate) fn too_long(&mut self, conn: ConnectionId) {
        self.reply_error(
            conn,
            format_args!("line too long (over {MAX_LINE_BYTES} bytes); it was not sent"),
        );
    }

    /// Handles one complete line from `conn`.
    pub(crate) fn line(&mut self, conn: ConnectionId, line: &mut LineBuffer) {
        // A tab is the one control character worth keeping: pasted text is full of them.
        for byte in line.iter_mut().filter(|byte| **byte == b'\t') {
            *byte = b' ';
        }
        let Ok(text) = core::str::from_utf8(line) else {
            return self.reply_error(
                conn,
                format_args!("your line is not valid UTF-8; it was not sent"),
            );
        };
        if let Some(bad) = first_unsafe_char(text) {
            return self.reply_error(
                conn,
                format_args!(
                    "your line contains the control character {}; it was not sent",
                    CharName(bad)
                ),
            );
        }
        match Command::parse(text) {
            Ok(command) => self.command(conn, command),
            Err(ParseError::Empty) => {}
            Err(error) => self.reply_error(conn, format_args!("{error}")),
        }
    }

    fn command(&mut self, conn: ConnectionId, command: Command<'_>) {
        let style = self.style;
        match command {
            Command::Say(text) => {
                if self.roster.len() == 1 {
                    self.reply_notice(conn, format_args!("No one else is online to hear that."));
                }
                let start = self.out.mark();
                let me = style.name(self.roster.name(conn));
                let _ = write!(self.out, "{me}: {}\r\n", Visible(text));
                self.out.send(start, Audience::AllExcept(conn));
            }
            Command::Me(text) => {
                let start = self.out.mark();
                let me = style.name(self.roster.name(conn));
                let _ = write!(self.out, "* {me} {}\r\n", Visible(text));
                self.out.send(start, Audience::AllExcept(conn));
            }
            Command::Nick(name) => self.nick(conn, name),
            Command::Msg { to, text } => self.private(conn, to, text),
            Command::List => {
                let start = self.out.mark();
                self.list(conn);
                self.out.send(start, Audience::One(conn));
            }
            Command::Help => self.help(conn),
            Command::Ping(Some(token)) => {
                self.reply_notice(conn, format_args!("pong {}", Visible(token)));
            }
            Command::Ping(None) => self.reply_notice(conn, format_args!("pong")),
            Command::Quit(reason) => {
                self.reply_notice(conn, format_args!("Goodbye!"));
                match reason {
                    Some(reason) => self.depart(conn, &format_args!("quit: {}", Visible(reason))),
                    None => self.depart(conn, &CloseReason::Quit),
                }
                self.out.close(conn, CloseReason::Quit);
            }
        }
    }

    fn nick(&mut self, conn: ConnectionId, wanted: &str) {
        let style = self.style;
        let nick = match Nickname::new(wanted) {
            Ok(nick) => nick,
            Err(error) => {
                let old = style.name(self.roster.name(conn));
                return reply(
                    self.out,
                    style.error(),
                    conn,
                    format_args!(
                        "\"{}\" is not a valid nickname: {error}; you are still {old}",
                        Visible(wanted)
                    ),
                );
            }
        };
        match self.roster.find(nick.as_str()) {
            Some(holder) if holder != conn => {
                let old = style.name(self.roster.name(conn));
                return reply(
                    self.out,
                    style.error(),
                    conn,
                    format_args!("the nickname {nick} is taken; you are still {old}"),
                );
            }
            _ => {}
        }
        if let Name::Nick(current) = self.roster.name(conn)
            && current.as_str() == nick.as_str()
        {
            return self.reply_notice(conn, format_args!("You are already {nick}."));
        }
        let start = self.out.mark();
        let _ = write!(
            self.out,
            "{} {} is now known as {}\r\n",
            style.notice(),
            style.name(self.roster.name(conn)),
            style.name(Name::Nick(&nick)),
        );
        self.out.send(start, Audience::AllExcept(conn));
        self.reply_notice(
            conn,
            format_args!("You are now known as {}.", style.name(Name::Nick(&nick))),
        );
        self.out.renamed(conn, nick.as_str());
        if let Some(slot) = self.roster.get_mut(conn) {
            slot.nick = Some(nick);
        }
    }

    fn private(&mut self, conn: ConnectionId, to: &str, text: &str) {
        let style = self.style;
        let Some(target) = self.roster.find(to) else {
            return self.reply_error(
                conn,
                format_args!(
                    "no one called {} is online; /list shows who is",
                    Visible(to)
                ),
            );
        };
        let start = self.out.mark();
        let _ = write!(
            self.out,
            "{} {}: {}\r\n",
            style.private(),
            style.name(self.roster.name(conn)),
            Visible(text)
        );
        self.out.send(start, Audience::One(target));
        if target != conn {
            let start = self.out.mark();
            let _ = write!(
                self.out,
                "{} to {}: {}\r\n",
                style.private(),
                style.name(self.roster.name(target)),
                Visible(text)
            );
            self.out.send(start, Audience::One(conn));
        }
    }

    /// Writes the roster line for `me`: the count, then up to [`MAX_LISTED_NAMES`] names sorted
    /// with nicknames first.
    fn list(&mut self, me: ConnectionId) {
        let style = self.style;
        let roster = &*self.roster;
        let mut shown: heapless::Vec<ConnectionId, MAX_LISTED_NAMES> = heapless::Vec::new();
        for id in roster.live().take(MAX_LISTED_NAMES) {
            // Cannot fail: at most MAX_LISTED_NAMES are taken.
            let _ = shown.push(id);
        }
        shown.sort_unstable_by_key(|id| sort_key(roster.name(*id)));
        let _ = write!(self.out, "{} Online ({}):", style.notice(), roster.len());
        for (position, &id) in shown.iter().enumerate() {
            let separator = if position == 0 { " " } else { ", " };
            let you = if id == me { " (you)" } else { "" };
            let _ = write!(self.out, "{separator}{}{you}", style.name(roster.name(id)));
        }
        let hidden = roster.len() - shown.len();
        if hidden > 0 {
            let _ = write!(self.out, ", and {hidden} more");
        }
        let _ = self.out.write_str("\r\n");
    }

    fn help(&mut self, conn: ConnectionId) {
        let notice = self.style.notice();
        let start = self.out.mark();
        for line in HELP {
            let _ = write!(self.out, "{notice} {line}\r\n");
        }
        self.out.send(start, Audience::One(conn));
    }

    fn reply_notice(&mut self, conn: ConnectionId, text: fmt::Arguments<'_>) {
        reply(self.out, self.style.notice(), conn, text);
    }

    fn reply_error(&mut self, conn: ConnectionId, text: fmt::Arguments<'_>) {
        reply(self.out, self.style.error(), conn, text);
    }
}

/// Queues one line for `conn` alone: `marker`, then `text`.
fn reply(
    out: &mut OutputQueue,
    marker: Painted<&str>,
    conn: ConnectionId,
    text: fmt::Arguments<'_>,
) {
    let start = out.mark();
    let _ = write!(out, "{marker} {text}\r\n");
    out.send(start, Audience::One(conn));
}

/// Nicknames first, case-insensitively, then anonymous people by number.
fn sort_key(name: Name<'_>) -> (bool, [u8; crate::MAX_NICK_CHARS], u32) {
    match name {
        Name::Nick(nick) => {
            let mut key = [0; crate::MAX_NICK_CHARS];
            for (k, b) in key.iter_mut().zip(nick.as_str().bytes()) {
                *k = b.to_ascii_lowercase();
            }
            (false, key, 0)
        }
        Name::Anonymous(number) => (true, [0; crate::MAX_NICK_CHARS], number),
    }
}

const HELP: [&str; 10] = [
    "Commands:",
    "  /nick NAME        choose or change your nickname (1-16 letters, digits, _-[]\\^{}|`)",
    "  /msg NAME TEXT    send TEXT to NAME alone",
    "  /me TEXT          an action: * you TEXT",
    "  /list             who is online (also /who, /names)",
    "  /help             this list",
    "  /quit [REASON]    leave",
    "  /ping [TOKEN]     the server answers: pong TOKEN",
    "Any other line goes to everyone. To send a line starting with /, start it with //.",
    "Lines are at most 512 bytes of UTF-8 without control characters.",
];
