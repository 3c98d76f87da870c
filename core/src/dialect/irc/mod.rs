//! The IRC dialect: registration, the commands real clients send, and the numeric replies they
//! expect (RFC 1459 and 2812, as modern clients use them). Rooms are channels; people who speak
//! plain text or JSON show up as ordinary IRC users, and the other way round.

use core::fmt::{self, Write};
use numeric::{
    ERR_ALREADYREGISTERED, ERR_NEEDMOREPARAMS, ERR_NOORIGIN, ERR_NOTREGISTERED, ERR_UNKNOWNCOMMAND,
};

mod channels;
pub(crate) mod events;
mod help;
mod history;
mod labels;
mod messages;
pub(crate) mod mode_line;
mod monitor;
pub(crate) mod numeric;
mod queries;
mod registration;
mod sasl;

use super::text::Ago;
use super::{Admitted, Refused, Step};
use crate::dialect::text::{CharName, Visible, is_unsafe};
use crate::event::LineKind;
use crate::output::Audience;
use crate::state::connection::Registration;
use crate::state::roster::{ConnectionId, Name, Roster};
use crate::wire::irc::{Message, MessageError, Trailing};
use crate::wire::line::{LineBuffer, cut};

/// The host part of everyone's `nick!user@host`: the core does not know addresses, and would
/// not hand them out if it did.
const HOST: &str = "hidden";

/// The software and version in `002` and `004`.
const VERSION: &str = concat!("chat-", env!("CARGO_PKG_VERSION"));

/// The most names one `NAMES` reply (or the listing on joining) shows.
pub const MAX_IRC_NAMES: usize = 400;

/// The most people one `WHO` reply lists.
pub const MAX_WHO_REPLIES: usize = 100;

/// A names line is cut before it passes this many bytes, well inside the 512 of the RFC.
const NAMES_LINE_BYTES: usize = 400;

/// Whether a connection's first line makes it an IRC client: it starts with one of the
/// registration commands (in capitals, as clients send them), or `QUIT`, which a program
/// probing the port sends first.
pub(crate) fn is_registration(line: &[u8]) -> bool {
    let verb = line.split(|&byte| byte == b' ').next().unwrap_or_default();
    matches!(verb, b"NICK" | b"USER" | b"CAP" | b"PASS" | b"QUIT")
}

/// `nick!user@host` for anyone: an IRC client's user name with `~` (it is not verified), or
/// the dialect for the others.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prefix<'a> {
    name: Name<'a>,
    user: UserName<'a>,
    /// [`HOST`] for people here; the server's name for people on another.
    host: &'a str,
    /// Whether they are on another server (whose name is `host`).
    remote: bool,
}

impl<'a> Prefix<'a> {
    /// The server they are on: `here` for people here, their own for people on another.
    pub(crate) fn server_or(&self, here: &'a str) -> &'a str {
        if self.remote { self.host } else { here }
    }
}

impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}!{}@{}", self.name, self.user, self.host)
    }
}

/// The `user` of a prefix.
#[derive(Clone, Copy, Debug)]
enum UserName<'a> {
    Irc(&'a str),
    Plain,
    Json,
    /// Someone on another server.
    Remote,
}

impl fmt::Display for UserName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Remote => f.write_str("remote"),
            Self::Irc("") => f.write_str("~user"),
            Self::Irc(user) => write!(f, "~{user}"),
            Self::Plain => f.write_str("plain"),
            Self::Json => f.write_str("json"),
        }
    }
}

/// How a connection is named in a reply addressed to it: its nickname, `*` for an IRC client
/// that has none yet, `anonymous-N` for the others.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IrcName<'a> {
    Name(Name<'a>),
    Unnamed,
}

impl fmt::Display for IrcName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => name.fmt(f),
            Self::Unnamed => f.write_str("*"),
        }
    }
}

impl<S: crate::Storage> Roster<S> {
    /// `conn`'s `nick!user@host`.
    pub(crate) fn prefix(&self, conn: ConnectionId) -> Prefix<'_> {
        if let Some(tag) = self.get(conn).and_then(|slot| slot.person.remote) {
            return Prefix {
                name: self.name(conn),
                user: UserName::Remote,
                host: self.node_name(tag.node),
                remote: true,
            };
        }
        let user = match self.get(conn) {
            Some(slot) if slot.person.reads_irc() => UserName::Irc(&slot.person.user),
            Some(slot) if slot.connection.framer.dialect() == crate::wire::line::Dialect::Json => {
                UserName::Json
            }
            Some(_) => UserName::Plain,
            None => UserName::Plain,
        };
        Prefix {
            name: self.name(conn),
            user,
            host: HOST,
            remote: false,
        }
    }

    /// How replies to `conn` name it.
    pub(crate) fn irc_name(&self, conn: ConnectionId) -> IrcName<'_> {
        match self.get(conn) {
            // Before registration only: a registered client that lost its nickname goes by
            // `anonymous-N`, as its NICK change told it.
            Some(slot)
                if slot.person.reads_irc()
                    && slot.person.nick.is_none()
                    && !slot
                        .connection
                        .registration
                        .is_some_and(|registration| registration.registered) =>
            {
                IrcName::Unnamed
            }
            _ => IrcName::Name(self.name(conn)),
        }
    }
}

/// The tags a client added for other clients (`+name` or `+name=value`), as it sent them
/// (escaped), from a message's tag section; the server's own tags (`label`, anything without a
/// `+`) are not among them. Shown as `;+a=b;+c`, to follow the server's tags on a line.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ClientTags<'a>(&'a str);

impl<'a> ClientTags<'a> {
    pub(crate) const NONE: Self = Self("");

    /// The client-only tags of `message`.
    pub(crate) fn of(message: &Message<'a>) -> Self {
        Self(message.tags.unwrap_or_default())
    }

    fn each(self) -> impl Iterator<Item = &'a str> {
        self.0.split(';').filter(|tag| {
            let key = tag.split_once('=').map_or(*tag, |(key, _)| key);
            key.strip_prefix('+').is_some_and(|name| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'.'))
            })
        })
    }

    pub(crate) fn is_empty(self) -> bool {
        self.each().next().is_none()
    }

    /// The tags as a tag section holds them: `+a=b;+c`.
    fn listed(self) -> impl fmt::Display + 'a {
        struct Listed<'a>(ClientTags<'a>);
        impl fmt::Display for Listed<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for (n, tag) in self.0.each().enumerate() {
                    write!(f, "{}{tag}", if n == 0 { "" } else { ";" })?;
                }
                Ok(())
            }
        }
        Listed(self)
    }
}

impl fmt::Display for ClientTags<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.each().try_for_each(|tag| write!(f, ";{tag}"))
    }
}

/// A message's text as IRC carries it: an action is a CTCP ACTION.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IrcText<'a>(pub(crate) LineKind, pub(crate) &'a str);

impl fmt::Display for IrcText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            LineKind::Action => write!(f, "\x01ACTION {}\x01", Visible(self.1)),
            LineKind::Line | LineKind::Notice => Visible(self.1).fmt(f),
        }
    }
}

/// An optional reason as the last parameter of a PART: ` :reason`, or nothing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IrcReason<'a>(pub(crate) Option<&'a str>);

impl fmt::Display for IrcReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(reason) => write!(f, " :{}", Visible(reason)),
            None => Ok(()),
        }
    }
}

/// The commands understood, by verb (matched ignoring ASCII case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Cap,
    Nick,
    User,
    Pass,
    Ping,
    Pong,
    Quit,
    Join,
    Part,
    Privmsg,
    Notice,
    Names,
    Topic,
    Who,
    Whois,
    List,
    Mode,
    Motd,
    Away,
    Whowas,
    Ison,
    Userhost,
    Chathistory,
    Tagmsg,
    Authenticate,
    Kick,
    Lusers,
    Time,
    Invite,
    Oper,
    Kline,
    Unkline,
    Stats,
    Help,
    Info,
    Setname,
    Monitor,
    Wallops,
}

impl Verb {
    fn of(verb: &str) -> Option<Self> {
        const VERBS: [(&str, Verb); 41] = [
            ("CAP", Verb::Cap),
            ("NICK", Verb::Nick),
            ("USER", Verb::User),
            ("PASS", Verb::Pass),
            ("PING", Verb::Ping),
            ("PONG", Verb::Pong),
            ("QUIT", Verb::Quit),
            ("JOIN", Verb::Join),
            ("PART", Verb::Part),
            ("PRIVMSG", Verb::Privmsg),
            ("NOTICE", Verb::Notice),
            ("NAMES", Verb::Names),
            ("TOPIC", Verb::Topic),
            ("WHO", Verb::Who),
            ("WHOIS", Verb::Whois),
            ("LIST", Verb::List),
            ("MODE", Verb::Mode),
            ("MOTD", Verb::Motd),
            ("AWAY", Verb::Away),
            ("WHOWAS", Verb::Whowas),
            ("ISON", Verb::Ison),
            ("USERHOST", Verb::Userhost),
            ("CHATHISTORY", Verb::Chathistory),
            ("TAGMSG", Verb::Tagmsg),
            ("AUTHENTICATE", Verb::Authenticate),
            ("KICK", Verb::Kick),
            ("LUSERS", Verb::Lusers),
            ("TIME", Verb::Time),
            ("INVITE", Verb::Invite),
            ("OPER", Verb::Oper),
            ("KLINE", Verb::Kline),
            ("DLINE", Verb::Kline),
            ("UNKLINE", Verb::Unkline),
            ("UNDLINE", Verb::Unkline),
            ("STATS", Verb::Stats),
            ("HELP", Verb::Help),
            ("HELPOP", Verb::Help),
            ("INFO", Verb::Info),
            ("SETNAME", Verb::Setname),
            ("MONITOR", Verb::Monitor),
            ("WALLOPS", Verb::Wallops),
        ];
        VERBS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(verb))
            .map(|&(_, found)| found)
    }

    /// Whether it may come before registration.
    fn before_registration(self) -> bool {
        matches!(
            self,
            Self::Cap
                | Self::Nick
                | Self::User
                | Self::Pass
                | Self::Ping
                | Self::Pong
                | Self::Quit
                | Self::Authenticate
        )
    }
}

/// Removes mIRC formatting codes (bold, colours, italics, ...) in place: they would show as
/// control characters to everyone not on IRC. CTCP's `\x01` stays.
fn strip_formatting(line: &mut LineBuffer) {
    const BOLD: u8 = 0x02;
    const COLOUR: u8 = 0x03;
    const HEX_COLOUR: u8 = 0x04;
    const SIMPLE: [u8; 6] = [BOLD, 0x0f, 0x11, 0x16, 0x1d, 0x1e];
    const UNDERLINE: u8 = 0x1f;
    let (mut read, mut write) = (0, 0);
    while read < line.len() {
        let byte = line[read];
        read += 1;
        match byte {
            COLOUR => read += colour_digits(&line[read..], |b| b.is_ascii_digit(), 2),
            HEX_COLOUR => read += colour_digits(&line[read..], |b| b.is_ascii_hexdigit(), 6),
            _ if SIMPLE.contains(&byte) || byte == UNDERLINE => {}
            _ => {
                line[write] = byte;
                write += 1;
            }
        }
    }
    line.truncate(write);
}

/// How many bytes of `FG[,BG]` follow a colour code, each colour up to `width` digits.
fn colour_digits(rest: &[u8], digit: fn(&u8) -> bool, width: usize) -> usize {
    let run = |from: usize| {
        rest[from.min(rest.len())..]
            .iter()
            .take(width)
            .take_while(|b| digit(b))
            .count()
    };
    let foreground = run(0);
    if foreground == 0 {
        return 0;
    }
    if rest.get(foreground) == Some(&b',') {
        let background = run(foreground + 1);
        if background > 0 {
            return foreground + 1 + background;
        }
    }
    foreground
}

/// The command word of a line that could not be decoded, for the `FAIL` reply, if it is one.
fn verb_of(line: &[u8]) -> &str {
    line.split(|&byte| byte == b' ')
        .find(|word| !word.is_empty() && !word.starts_with(b"@") && !word.starts_with(b":"))
        .and_then(|word| core::str::from_utf8(word).ok())
        .filter(|word| word.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("*")
}

/// Keeps ASCII letters, digits and `-_.` of a user name, at most [`MAX_USER_BYTES`](crate::state::person::MAX_USER_BYTES).
fn clean_user(user: &str, into: &mut heapless::String<{ crate::state::person::MAX_USER_BYTES }>) {
    into.clear();
    for c in user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        if into.push(c).is_err() {
            break;
        }
    }
    if into.is_empty() {
        let _ = into.push_str("user");
    }
}

pub(crate) use crate::state::names::glob;
pub(crate) use events::speaker_prefix;

impl<S: crate::Storage> Step<'_, S> {
    /// Handles one line from a connection speaking IRC; `tags` is its tag section (`@tags `)
    /// when the framer kept it apart from the rest of the line (it was too long to share the
    /// line's buffer).
    pub(crate) fn irc_line(
        &mut self,
        conn: ConnectionId,
        tags: Option<&[u8]>,
        line: &mut LineBuffer,
    ) {
        strip_formatting(line);
        let (Ok(text), Ok(tags)) = (
            core::str::from_utf8(line),
            core::str::from_utf8(tags.unwrap_or_default()),
        ) else {
            let verb = verb_of(line);
            return irc!(
                self,
                Audience::one(conn),
                ":{} FAIL {verb} INVALID_UTF8 :Your line was not valid UTF-8; it was not processed",
                self.server_name
            );
        };
        if let Some(bad) = (tags.chars().chain(text.chars())).find(|&c| is_unsafe(c) && c != '\x01')
        {
            return server_notice!(
                self,
                conn,
                "*** error: your line contains the control character {}; it was not processed",
                CharName(bad)
            );
        }
        let mut message = match Message::parse(text) {
            Ok(message) => message,
            Err(MessageError::NoVerb) => return, // a blank line
            Err(error) => return server_notice!(self, conn, "*** error: {error}"),
        };
        if let Some(tags) = tags.strip_prefix('@') {
            message.tags = Some(tags.trim_end_matches(' '));
        }
        let label = self.label_of(conn, &message);
        let continuing = self
            .registration_mut(conn)
            .is_some_and(|registration| registration.labeled);
        let first = self.out.records_mark();
        self.irc_command(conn, &message);
        if label.is_some() || continuing {
            let closing = !self
                .roster
                .get(conn)
                .is_some_and(|slot| slot.connection.framer.is_ready());
            self.label_answer(conn, first, label, !continuing, closing);
        }
    }

    /// Handles one IRC command.
    fn irc_command(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let registered = self.registered(conn);
        let Some(verb) = Verb::of(message.verb) else {
            if !registered {
                return numeric!(self, conn, ERR_NOTREGISTERED, ":You have not registered");
            }
            return numeric!(
                self,
                conn,
                ERR_UNKNOWNCOMMAND,
                "{} :Unknown command",
                Visible(message.verb)
            );
        };
        if !registered && !verb.before_registration() {
            return numeric!(self, conn, ERR_NOTREGISTERED, ":You have not registered");
        }
        match verb {
            Verb::Cap => self.cap(conn, message, registered),
            Verb::Authenticate => self.authenticate(conn, message),
            Verb::Kick => match (message.param(0), message.param(1)) {
                (Some(rooms), Some(nicks)) => self.irc_kick(conn, message, rooms, nicks),
                _ => self.missing(conn, "KICK"),
            },
            Verb::Nick => self.irc_nick(conn, message),
            Verb::User | Verb::Pass if registered => {
                numeric!(self, conn, ERR_ALREADYREGISTERED, ":You may not reregister");
            }
            Verb::User => self.user(conn, message),
            Verb::Pass => {
                if message.params.is_empty() {
                    self.missing(conn, "PASS");
                }
                // No server password: anything goes.
            }
            Verb::Ping => match message.param(0) {
                Some(token) => irc!(
                    self,
                    Audience::one(conn),
                    ":{0} PONG {0} {1}",
                    self.server_name,
                    Trailing(token)
                ),
                None => numeric!(self, conn, ERR_NOORIGIN, ":No origin specified"),
            },
            Verb::Pong => {}
            Verb::Quit => self.irc_quit(conn, message.param(0)),
            Verb::Join => self.irc_join(conn, message),
            Verb::Part => self.irc_part(conn, message),
            Verb::Privmsg => self.irc_message(conn, message, LineKind::Line),
            Verb::Notice => self.irc_message(conn, message, LineKind::Notice),
            Verb::Names => self.irc_names(conn, message),
            Verb::Topic => self.irc_topic(conn, message),
            Verb::Who => self.who(conn, message.param(0), queries::Whox::of(message.param(1))),
            Verb::Whois => self.whois(conn, message),
            Verb::List => self.irc_list(conn, message.param(0)),
            Verb::Mode => self.mode(conn, message),
            // `KLINE [DURATION] MASK [:REASON]` (a duration as `1h`, or minutes).
            Verb::Kline => {
                let first = message.param(0);
                let duration = first.and_then(|first| {
                    crate::wire::plain::parse_duration(first).or_else(|| {
                        let minutes = first.parse::<u64>().ok().filter(|&minutes| minutes > 0)?;
                        crate::wire::plain::parse_duration(&{
                            let mut text = heapless::String::<24>::new();
                            let _ = write!(text, "{minutes}m");
                            text
                        })
                    })
                });
                let skip = usize::from(duration.is_some());
                match message.param(skip) {
                    Some(mask) => {
                        let reason = message.param(skip + 1);
                        self.set_server_ban(conn, mask, true, duration, reason);
                    }
                    None => self.missing(conn, message.verb),
                }
            }
            Verb::Unkline => match message.param(0) {
                Some(mask) => self.set_server_ban(conn, mask, false, None, None),
                None => self.missing(conn, message.verb),
            },
            Verb::Stats => match message.param(0) {
                Some("K" | "k") => self.list_server_bans(conn),
                _ => numeric!(
                    self,
                    conn,
                    numeric::RPL_ENDOFSTATS,
                    "{} :End of /STATS report",
                    Visible(message.param(0).unwrap_or("*"))
                ),
            },
            // Operators are accounts (`--oper NAME`): `OPER` identifies as one.
            Verb::Oper => match (message.param(0), message.param(1)) {
                (Some(name), Some(password)) => self.oper(conn, name, password),
                _ => self.missing(conn, "OPER"),
            },
            Verb::Invite => match (message.param(0), message.param(1)) {
                (None, _) => self.invite_list(conn),
                (Some(nick), Some(room)) => self.invite(conn, nick, Some(room)),
                (Some(_), None) => self.missing(conn, "INVITE"),
            },
            Verb::Motd => self.motd(conn),
            Verb::Lusers => self.lusers(conn),
            Verb::Time => {
                let (server, me) = (self.server_name, self.roster.irc_name(conn));
                let (seconds, when) =
                    (self.now.as_millis() / 1000, crate::time::WallTime(self.now));
                irc!(
                    self,
                    Audience::one(conn),
                    ":{server} {} {me} {server} {seconds} 0 :{when}",
                    numeric::RPL_TIME
                );
            }
            Verb::Away => self.away(conn, message.param(0)),
            Verb::Whowas => self.whowas(conn, message),
            Verb::Ison => self.ison(conn, message),
            Verb::Userhost => self.userhost(conn, message),
            Verb::Chathistory => self.chathistory(conn, message),
            Verb::Tagmsg => self.tagmsg(conn, message),
            Verb::Help => self.irc_help(conn, message.param(0)),
            Verb::Info => self.info(conn),
            Verb::Setname => self.setname(conn, message.param(0)),
            Verb::Monitor => self.monitor(conn, message),
            Verb::Wallops => self.wallops(conn, message.param(0)),
        }
    }

    /// `KICK #room a,b,c [:reason]` puts out each of them; `KICK #a,#b x,y` puts x out of #a
    /// and y out of #b, and `KICK #a,#b x` x out of both (`TARGMAX` lists `KICK`). One is
    /// handled a step, as every command naming several targets is: the first here, the rest
    /// put back (see [`put_back`](Self::put_back)), each told to the room as a `KICK` of its own.
    fn irc_kick(&mut self, conn: ConnectionId, message: &Message<'_>, rooms: &str, nicks: &str) {
        let (room, more_rooms) = rooms.split_once(',').unwrap_or((rooms, ""));
        let (nick, more_nicks) = nicks.split_once(',').unwrap_or((nicks, ""));
        // What is left: one room for the rest of the people, or the rest of the rooms each
        // with the next person (or with the same one, if only one was named).
        let rest: Option<(&str, &str)> = match (more_rooms, more_nicks) {
            ("", "") => None,
            ("", more_nicks) => Some((room, more_nicks)),
            (more_rooms, "") if !nicks.contains(',') => Some((more_rooms, nick)),
            (more_rooms, more_nicks) => Some((more_rooms, more_nicks)),
        };
        // Only lists of names go back: never anything with a space in it.
        if let Some((rooms, nicks)) = rest.filter(|(rooms, nicks)| {
            let list = |names: &str| !names.is_empty() && !names.contains(char::is_whitespace);
            list(rooms) && list(nicks)
        }) {
            let mut rest = heapless::String::<{ crate::wire::line::MAX_LINE_BYTES }>::new();
            if write!(rest, "{rooms} {nicks}").is_ok() {
                let reason = message.params.get(2..).unwrap_or_default();
                self.put_back_with(conn, message, &rest, reason);
            }
        }
        if !room.is_empty() && !nick.is_empty() {
            self.kick(conn, Some(room), nick, message.param(2));
        }
    }

    pub(crate) fn missing(&mut self, conn: ConnectionId, verb: &str) {
        numeric!(
            self,
            conn,
            ERR_NEEDMOREPARAMS,
            "{verb} :Not enough parameters"
        );
    }

    /// Handles the rest of a line naming several targets (`JOIN #a,#b`) in a later step:
    /// puts back `VERB rest params...`, with the parameters after the targets, and the tags
    /// the sender added for others if they fit the line's buffer beside the rest (a label is
    /// not needed again: the connection remembers that its answer is open).
    pub(crate) fn put_back(&mut self, conn: ConnectionId, message: &Message<'_>, rest: &str) {
        self.put_back_with(conn, message, rest, &message.params[1..]);
    }

    /// Like [`put_back`](Self::put_back), with `params` after `rest` instead of the message's
    /// own (the rest of `JOIN`'s keys, say).
    pub(crate) fn put_back_with(
        &mut self,
        conn: ConnectionId,
        message: &Message<'_>,
        rest: &str,
        params: &[&str],
    ) {
        type Line = heapless::String<{ crate::wire::line::MAX_LINE_BYTES }>;
        let mut body = Line::new();
        let _ = write!(body, "{} {rest}", message.verb);
        if let Some((last, middle)) = params.split_last() {
            for param in middle {
                let _ = write!(body, " {param}");
            }
            let _ = write!(body, " {}", Trailing(last));
        }
        let mut line = Line::new();
        let client = ClientTags::of(message);
        let tagged = !client.is_empty()
            && write!(line, "@{} {body}", client.listed()).is_ok()
            && line.len() < Line::new().capacity();
        if !tagged {
            line = body;
        }
        self.roster.put_back(conn, line.as_bytes());
    }

    /// The first of a comma-separated list of targets; the rest is put back for the next step.
    pub(crate) fn first_target<'m>(
        &mut self,
        conn: ConnectionId,
        message: &Message<'m>,
    ) -> Option<&'m str> {
        let targets = message.param(0)?;
        match targets.split_once(',') {
            Some((first, rest)) => {
                if !rest.is_empty() {
                    self.put_back(conn, message, rest);
                }
                Some(first)
            }
            None => Some(targets),
        }
    }

    /// Whether `conn` is a registered IRC client.
    pub(crate) fn registered(&self, conn: ConnectionId) -> bool {
        self.roster
            .get(conn)
            .and_then(|slot| slot.connection.registration)
            .is_some_and(|registration| registration.registered)
    }

    /// How far `conn`'s IRC registration has come, to change.
    pub(crate) fn registration_mut(&mut self, conn: ConnectionId) -> Option<&mut Registration> {
        self.roster.get_mut(conn)?.connection.registration.as_mut()
    }

    /// The IRCv3 capabilities `conn` turned on (none for a text client).
    pub(crate) fn caps(&self, conn: ConnectionId) -> crate::state::connection::Caps {
        self.roster
            .get(conn)
            .and_then(|slot| slot.connection.registration)
            .map_or(crate::state::connection::Caps::NONE, |registration| {
                registration.caps
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_codes_are_removed() {
        let mut line = LineBuffer::new();
        line.extend_from_slice(b"\x02bold\x02 \x0304,12red\x03 \x1ditalic\x0f \x01ACTION\x01")
            .unwrap();
        strip_formatting(&mut line);
        assert_eq!(line.as_slice(), b"bold red italic \x01ACTION\x01");
    }

    #[test]
    fn an_account_tag_is_escaped_as_tag_values_are() {
        let tags = events::Tags {
            at: crate::time::Instant::from_millis(0),
            msgid: Some(7),
            account: Some("a\\b;c d"),
        };
        assert_eq!(
            std::format!("{tags}"),
            "time=1970-01-01T00:00:00.000Z;msgid=7;account=a\\\\b\\:c\\sd"
        );
        let none = events::Tags {
            account: None,
            ..tags
        };
        assert!(!std::format!("{none}").contains("account"));
    }

    #[test]
    fn globs_match_like_irc_masks() {
        assert!(glob(b"*", b"alice"));
        assert!(glob(b"a*e", b"Alice"));
        assert!(glob(b"?lice", b"alice"));
        assert!(!glob(b"bob", b"alice"));
        assert!(!glob(b"a?", b"abc"));
    }

    #[test]
    fn first_lines_that_make_an_irc_client() {
        for line in [
            "NICK alice",
            "USER a 0 * :A",
            "CAP LS 302",
            "PASS x",
            "QUIT :bye",
        ] {
            assert!(is_registration(line.as_bytes()), "{line}");
        }
        for line in ["nick alice", "/nick alice", "hello", "NICKEL", ""] {
            assert!(!is_registration(line.as_bytes()), "{line}");
        }
    }
}

/// The dialect through the public API: what an IRC client and a plain one see of each other.
#[cfg(test)]
mod dialogue {
    use core::time::Duration;
    use std::string::String;
    use std::vec::Vec;

    use crate::testing::{Driver, Transcript};
    use crate::{Config, ConnectionId, Instant, ServerName};

    /// A server with the default greeting delay, and every line each connection got.
    struct Chat {
        driver: Driver<8>,
        heard: Transcript,
    }

    impl Chat {
        fn new() -> Self {
            let config = Config::default()
                .with_colour(false)
                .with_flood_limit(None)
                .with_history(4)
                .with_silence_timeout(Some(Duration::from_secs(10)))
                .with_server_name(ServerName::new("irc.test").unwrap());
            Self {
                driver: Driver::new(config, Instant::ZERO),
                heard: Transcript::default(),
            }
        }

        fn drain(&mut self) {
            let heard = &mut self.heard;
            self.driver.drain(&mut |output| heard.record(output));
        }

        fn connect(&mut self) -> ConnectionId {
            let heard = &mut self.heard;
            self.driver
                .connect(&mut |output| heard.record(output))
                .expect("connect")
        }

        /// Feeds `lines` as one read, the way a runner does.
        fn send(&mut self, conn: ConnectionId, lines: &str) {
            let heard = &mut self.heard;
            let fed = self
                .driver
                .input(conn, lines.as_bytes(), &mut |output| heard.record(output));
            assert!(!fed.held, "flood control is off");
        }

        fn wait(&mut self, millis: u64) {
            let heard = &mut self.heard;
            self.driver
                .advance(Duration::from_millis(millis), &mut |output| {
                    heard.record(output);
                });
        }

        /// Everything `conn` got since the last call.
        fn take(&mut self, conn: ConnectionId) -> Vec<String> {
            self.heard.take(conn)
        }

        /// The server, for the calls the driver does not make; drain after.
        fn server(&mut self) -> &mut crate::Server<crate::Inline<8>> {
            self.driver.server_mut()
        }

        /// The connections the core closed, in order.
        fn closed(&self) -> Vec<ConnectionId> {
            self.heard.closed.iter().map(|&(conn, _)| conn).collect()
        }

        /// A registered IRC client called `nick`, its welcome read.
        fn irc(&mut self, nick: &str) -> ConnectionId {
            let conn = self.connect();
            self.send(
                conn,
                &std::format!("NICK {nick}\r\nUSER {nick} 0 * :Real {nick}\r\n"),
            );
            let welcome = self.take(conn);
            assert!(welcome[0].starts_with(":irc.test 001 "), "{welcome:?}");
            conn
        }

        /// A plain-text client called `nick`, greeted.
        fn plain(&mut self, nick: &str) -> ConnectionId {
            let conn = self.connect();
            self.send(conn, &std::format!("/nick {nick}\n"));
            self.take(conn);
            conn
        }
    }

    /// An IRC client that negotiated `caps` (all or nothing) and registered as `nick`.
    fn with_caps(chat: &mut Chat, nick: &str, caps: &str) -> ConnectionId {
        let conn = chat.connect();
        chat.send(
            conn,
            &std::format!(
                "CAP LS 302\r\nCAP REQ :{caps}\r\nNICK {nick}\r\nUSER {nick} 0 * :N\r\nCAP END\r\n"
            ),
        );
        let welcome = chat.take(conn);
        assert_eq!(
            welcome[1],
            std::format!(":irc.test CAP * ACK :{caps}"),
            "{welcome:?}"
        );
        conn
    }

    #[test]
    fn labels_client_tags_and_tagmsg() {
        let mut chat = Chat::new();
        let lea = with_caps(
            &mut chat,
            "lea",
            "batch draft/chathistory echo-message labeled-response message-tags",
        );
        let tom = with_caps(&mut chat, "tom", "message-tags");
        let sam = with_caps(&mut chat, "sam", "server-time");
        let pete = chat.irc("pete");
        chat.wait(1_000);
        for conn in [lea, tom, sam, pete] {
            chat.take(conn);
        }
        // An answer of one line carries the label; of none, an ACK does.
        chat.send(lea, "@label=a1 PING x\r\n@label=a2 PONG x\r\n");
        assert_eq!(
            chat.take(lea),
            [
                "@label=a1 :irc.test PONG irc.test x",
                "@label=a2 :irc.test ACK"
            ]
        );
        // The label is for the sender alone; client tags go to those who read them.
        chat.send(
            lea,
            "@label=a3;+draft/react=hi;secret=1 PRIVMSG #lobby :hello\r\n",
        );
        let echo = chat.take(lea);
        assert_eq!(echo.len(), 1, "{echo:?}");
        assert!(echo[0].starts_with("@label=a3;time="), "{echo:?}");
        assert!(
            echo[0].ends_with(";+draft/react=hi :lea!~lea@hidden PRIVMSG #lobby :hello"),
            "{echo:?}"
        );
        let to_tom = chat.take(tom);
        assert!(
            to_tom[0].ends_with(";msgid=1;+draft/react=hi :lea!~lea@hidden PRIVMSG #lobby :hello"),
            "{to_tom:?}"
        );
        assert!(!to_tom[0].contains("label") && !to_tom[0].contains("secret"));
        let to_sam = chat.take(sam);
        assert!(
            to_sam[0].ends_with(";msgid=1 :lea!~lea@hidden PRIVMSG #lobby :hello"),
            "{to_sam:?}"
        );
        assert_eq!(chat.take(pete), [":lea!~lea@hidden PRIVMSG #lobby :hello"]);

        // A line to several targets is answered in one batch across its steps.
        chat.send(lea, "@label=a4 PRIVMSG tom,pete :hi\r\n");
        let answer = chat.take(lea);
        assert_eq!(answer.len(), 4, "{answer:?}");
        assert_eq!(
            answer[0],
            "@label=a4 :irc.test BATCH +labeled labeled-response"
        );
        assert!(answer[1].starts_with("@batch=labeled;time="), "{answer:?}");
        assert!(answer[1].ends_with(" PRIVMSG tom :hi"), "{answer:?}");
        assert!(answer[2].ends_with(" PRIVMSG pete :hi"), "{answer:?}");
        assert_eq!(answer[3], ":irc.test BATCH -labeled");
        chat.take(tom);
        chat.take(pete);

        // TAGMSG reaches only those who read client tags.
        chat.send(lea, "@+typing=active;other=x TAGMSG #lobby\r\n");
        let to_tom = chat.take(tom);
        assert_eq!(to_tom.len(), 1, "{to_tom:?}");
        assert!(
            to_tom[0].ends_with(";+typing=active :lea!~lea@hidden TAGMSG #lobby"),
            "{to_tom:?}"
        );
        assert_eq!(chat.take(lea).len(), 1, "echoed");
        assert!(chat.take(sam).is_empty() && chat.take(pete).is_empty());
        chat.send(lea, "TAGMSG nobody\r\n");
        assert_eq!(
            chat.take(lea),
            [":irc.test 401 lea nobody :No such nick/channel"]
        );

        // A labeled CHATHISTORY: the store's batch nested in the labeled one.
        chat.send(lea, "@label=h1 CHATHISTORY LATEST #lobby * 1\r\n");
        let answer = chat.take(lea);
        assert_eq!(answer.len(), 5, "{answer:?}");
        assert_eq!(
            answer[0],
            "@label=h1 :irc.test BATCH +labeled labeled-response"
        );
        assert_eq!(
            answer[1],
            "@batch=labeled :irc.test BATCH +history chathistory #lobby"
        );
        assert!(answer[2].starts_with("@batch=history;time="), "{answer:?}");
        assert_eq!(answer[3], "@batch=labeled :irc.test BATCH -history");
        assert_eq!(answer[4], ":irc.test BATCH -labeled");

        // Tags may take 4,096 bytes beside a line's 512, and are relayed whole.
        let long = "x".repeat(4000);
        chat.send(lea, &std::format!("@+big={long} PRIVMSG #lobby :long\r\n"));
        let to_tom = chat.take(tom);
        assert!(
            to_tom[0].contains(&std::format!(";+big={long} :lea")),
            "{}",
            to_tom[0].len()
        );
        chat.take(lea);
        let over = "x".repeat(4100);
        chat.send(lea, &std::format!("@+big={over} PRIVMSG #lobby :no\r\n"));
        assert_eq!(
            chat.take(lea),
            [":irc.test 417 lea :Input line was too long"]
        );
        assert!(chat.take(tom).is_empty());
    }

    #[test]
    fn tags_echo_batches_and_chathistory() {
        let mut chat = Chat::new();
        let tagged = with_caps(
            &mut chat,
            "tia",
            "server-time message-tags echo-message batch draft/chathistory",
        );
        let plain = chat.irc("pete");
        let text = chat.plain("tess");
        chat.wait(1_000);
        chat.take(tagged);
        chat.take(plain);
        chat.take(text);
        // One line, three renderings: tagged for tia (an echo, since she asked), bare for pete.
        chat.send(tagged, "PRIVMSG #lobby :hello\r\n");
        let heard = chat.take(tagged);
        assert_eq!(heard.len(), 1, "{heard:?}");
        let (tags, rest) = heard[0].split_once(' ').unwrap();
        assert!(tags.starts_with("@time=1970-01-01T00:00:01."), "{tags}");
        assert!(tags.ends_with(";msgid=1"), "{tags}");
        assert_eq!(rest, ":tia!~tia@hidden PRIVMSG #lobby :hello");
        assert_eq!(chat.take(plain), [":tia!~tia@hidden PRIVMSG #lobby :hello"]);
        assert_eq!(chat.take(text), ["tia: hello"]);
        chat.send(plain, "PRIVMSG #lobby :second\r\n");
        assert!(chat.take(plain).is_empty(), "no echo without echo-message");
        assert!(
            chat.take(tagged)[0].ends_with(";msgid=2 :pete!~pete@hidden PRIVMSG #lobby :second")
        );

        // CHATHISTORY answers in a batch, with each line's time and id.
        chat.send(tagged, "CHATHISTORY LATEST #lobby * 10\r\n");
        let batch = chat.take(tagged);
        assert_eq!(batch.len(), 4, "{batch:?}");
        assert_eq!(batch[0], ":irc.test BATCH +history chathistory #lobby");
        assert!(batch[1].starts_with("@batch=history;time="), "{batch:?}");
        assert!(
            batch[1].ends_with(";msgid=1 :tia PRIVMSG #lobby :hello"),
            "{batch:?}"
        );
        assert!(
            batch[2].ends_with(";msgid=2 :pete PRIVMSG #lobby :second"),
            "{batch:?}"
        );
        assert_eq!(batch[3], ":irc.test BATCH -history");
        chat.send(tagged, "CHATHISTORY BEFORE #lobby msgid=2 10\r\n");
        let batch = chat.take(tagged);
        assert_eq!(batch.len(), 3, "{batch:?}");
        assert!(
            batch[1].ends_with(":tia PRIVMSG #lobby :hello"),
            "{batch:?}"
        );
        chat.send(
            tagged,
            "CHATHISTORY AFTER #lobby timestamp=1970-01-01T00:00:00.000Z 1\r\n",
        );
        let batch = chat.take(tagged);
        assert_eq!(batch.len(), 3, "{batch:?}");
        assert!(
            batch[1].ends_with(":tia PRIVMSG #lobby :hello"),
            "{batch:?}"
        );
        // BETWEEN past its limit: the lines nearest the first mark, whichever comes first.
        for (marks, said) in [("msgid=0 msgid=3", "hello"), ("msgid=3 msgid=0", "second")] {
            chat.send(
                tagged,
                &std::format!("CHATHISTORY BETWEEN #lobby {marks} 1\r\n"),
            );
            let batch = chat.take(tagged);
            assert_eq!(batch.len(), 3, "{batch:?}");
            assert!(batch[1].ends_with(said), "{marks}: {batch:?}");
        }
        chat.send(
            tagged,
            "CHATHISTORY LATEST #nowhere * 10\r\nCHATHISTORY LATEST #lobby bad 5\r\n",
        );
        assert_eq!(
            chat.take(tagged),
            [
                ":irc.test FAIL CHATHISTORY INVALID_TARGET LATEST #nowhere :Messages could not be retrieved",
                ":irc.test FAIL CHATHISTORY INVALID_PARAMS LATEST #lobby :A mark is msgid=ID or timestamp=TIME",
            ]
        );
        // Joining replays in a batch too; a client without batches gets notices.
        chat.send(
            tagged,
            "JOIN #lobby2\r\nPRIVMSG #lobby2 :kept\r\nPART #lobby2\r\nJOIN #lobby2\r\n",
        );
        let heard = chat.take(tagged);
        let at = heard
            .iter()
            .rposition(|line| line.contains("BATCH +history chathistory #lobby2"))
            .expect("a batch");
        assert!(
            heard[at + 1].ends_with(":tia PRIVMSG #lobby2 :kept"),
            "{heard:?}"
        );
        chat.send(plain, "JOIN #lobby2\r\n");
        let heard = chat.take(plain);
        assert!(
            heard.last().unwrap().contains("NOTICE #lobby2 :[")
                && heard.last().unwrap().ends_with("tia: kept"),
            "{heard:?}"
        );
    }

    #[test]
    fn an_irc_client_registers_after_cap_end_and_never_gets_the_plain_welcome() {
        let mut chat = Chat::new();
        let conn = chat.connect();
        assert!(chat.take(conn).is_empty(), "nothing before the first line");
        chat.send(conn, "CAP LS 302\r\nNICK alice\r\nUSER al 0 * :Alice\r\n");
        assert_eq!(
            chat.take(conn),
            [
                ":irc.test CAP * LS :away-notify batch draft/chathistory echo-message extended-monitor labeled-response message-tags multi-prefix server-time setname userhost-in-names"
            ]
        );
        chat.send(conn, "CAP REQ :sasl\r\nCAP END\r\n");
        let welcome = chat.take(conn);
        assert_eq!(welcome[0], ":irc.test CAP alice NAK :sasl");
        let codes: Vec<&str> = welcome[1..]
            .iter()
            .map(|line| line.split(' ').nth(1).unwrap())
            .collect();
        assert_eq!(
            codes,
            [
                "001", "002", "003", "004", "005", "005", "375", "372", "372", "372", "376",
                "JOIN", "353", "366"
            ]
        );
        assert_eq!(welcome[12], ":alice!~al@hidden JOIN #lobby");
        chat.wait(1000);
        assert!(
            chat.take(conn).is_empty(),
            "no plain welcome after the delay"
        );
    }

    #[test]
    fn a_plain_client_is_welcomed_after_the_delay_or_at_its_first_line() {
        let mut chat = Chat::new();
        let waits = chat.connect();
        chat.wait(100);
        assert!(chat.take(waits).is_empty());
        chat.wait(400);
        assert!(chat.take(waits)[0].starts_with("*** Welcome to the chat!"));
        let talks = chat.connect();
        chat.send(talks, "/nick bob\n");
        let heard = chat.take(talks);
        assert!(heard[0].starts_with("*** Welcome"), "{heard:?}");
        assert_eq!(heard.last().unwrap(), "*** You are now known as bob.");
        // Lower case is a plain line, not IRC.
        let lower = chat.connect();
        chat.send(lower, "nick carol\n");
        assert!(chat.take(lower)[0].starts_with("*** Welcome"));
    }

    #[test]
    fn only_registration_comes_before_registering() {
        let mut chat = Chat::new();
        let conn = chat.connect();
        chat.send(conn, "NICK early\r\nJOIN #a\r\nFROB\r\nPING :tok en\r\n");
        assert_eq!(
            chat.take(conn),
            [
                ":irc.test 451 early :You have not registered",
                ":irc.test 451 early :You have not registered",
                ":irc.test PONG irc.test :tok en",
            ]
        );
        chat.send(conn, "USER e 0 * :E\r\nFROB x\r\nPING\r\n");
        let lines = chat.take(conn);
        assert!(lines.contains(&":irc.test 421 early FROB :Unknown command".into()));
        assert_eq!(
            lines.last().unwrap(),
            ":irc.test 409 early :No origin specified"
        );
    }

    #[test]
    fn nicknames_are_checked_as_irc_clients_expect() {
        let mut chat = Chat::new();
        let _alice = chat.irc("alice");
        let conn = chat.connect();
        chat.send(
            conn,
            "NICK\r\nNICK 9lives\r\nNICK ALICE\r\nNICK anonymous-3\r\n",
        );
        assert_eq!(
            chat.take(conn),
            [
                ":irc.test 431 * :No nickname given",
                ":irc.test 432 * 9lives :Erroneous nickname",
                ":irc.test 433 * ALICE :Nickname is already in use",
                ":irc.test 432 * anonymous-3 :Erroneous nickname",
            ]
        );
        chat.send(conn, "USER u 0 * :\r\n");
        assert_eq!(
            chat.take(conn),
            [":irc.test 461 * USER :Not enough parameters"]
        );
    }

    #[test]
    fn messages_cross_dialects_both_ways() {
        let mut chat = Chat::new();
        let irc = chat.irc("ann");
        let plain = chat.plain("bob");
        assert_eq!(
            chat.take(irc),
            [
                ":anonymous-2!plain@hidden JOIN #lobby",
                ":anonymous-2!plain@hidden NICK :bob"
            ]
        );
        chat.send(plain, "hello ann\n/me waves\n/msg ann psst\n");
        assert_eq!(
            chat.take(irc),
            [
                ":bob!plain@hidden PRIVMSG #lobby :hello ann",
                ":bob!plain@hidden PRIVMSG #lobby :\x01ACTION waves\x01",
                ":bob!plain@hidden PRIVMSG ann :psst",
            ]
        );
        chat.take(plain);
        chat.send(
            irc,
            "PRIVMSG #lobby :\x02hi\x02 bob\r\nPRIVMSG #lobby :\x01ACTION nods\x01\r\nPRIVMSG bob :secret\r\nNOTICE bob :fyi\r\n",
        );
        assert_eq!(
            chat.take(plain),
            [
                "ann: hi bob",
                "* ann nods",
                "[private] ann: secret",
                "[private] ann: fyi"
            ]
        );
        assert!(chat.take(irc).is_empty(), "IRC does not echo");
        chat.send(
            irc,
            "NICK anna\r\nTOPIC #lobby :all welcome\r\nPART #lobby :later\r\n",
        );
        assert_eq!(
            chat.take(plain),
            [
                "*** ann is now known as anna",
                "*** anna set the topic of #lobby: all welcome",
                "*** anna left #lobby (later)",
            ]
        );
        assert_eq!(
            chat.take(irc),
            [
                ":ann!~ann@hidden NICK :anna",
                ":anna!~ann@hidden TOPIC #lobby :all welcome",
                ":anna!~ann@hidden PART #lobby :later",
            ]
        );
    }

    #[test]
    fn a_line_naming_several_rooms_is_handled_one_room_per_step() {
        let mut chat = Chat::new();
        let irc = chat.irc("ann");
        let now = chat.driver.now();
        let taken = chat
            .server()
            .handle_input(now, irc, b"JOIN #a,#b,#c\r\nPING x\r\n")
            .unwrap();
        assert_eq!(taken.bytes(), 15, "the JOIN line, and no more");
        assert!(taken.more(), "told to call again");
        chat.drain();
        assert!(
            chat.heard.resumed.is_empty(),
            "Resume is flood control's alone"
        );
        assert_eq!(chat.take(irc)[0], ":ann!~ann@hidden JOIN #a");
        let taken = chat.server().handle_more(now, irc).unwrap();
        assert_eq!((taken.bytes(), taken.more()), (0, true));
        chat.drain();
        assert_eq!(chat.take(irc)[0], ":ann!~ann@hidden JOIN #b");
        // A runner that offers bytes instead gets the rest of the line first, all the same.
        let taken = chat.server().handle_input(now, irc, b"PING x\r\n").unwrap();
        assert_eq!((taken.bytes(), taken.more()), (0, false));
        chat.drain();
        assert_eq!(chat.take(irc)[0], ":ann!~ann@hidden JOIN #c");
        let taken = chat.server().handle_more(now, irc).unwrap();
        assert_eq!((taken.bytes(), taken.more()), (0, false), "nothing more");
        chat.send(irc, "PING x\r\n");
        assert_eq!(chat.take(irc), [":irc.test PONG irc.test x"]);
        chat.send(irc, "JOIN 0\r\n");
        let parts: Vec<String> = chat.take(irc);
        assert_eq!(parts.len(), 4, "{parts:?}");
        assert!(parts.iter().all(|line| line.contains(" PART #")));
    }

    #[test]
    fn errors_a_client_expects() {
        let mut chat = Chat::new();
        let irc = chat.irc("ann");
        chat.send(
            irc,
            "PRIVMSG nobody :hi\r\nPRIVMSG #nowhere :hi\r\nPRIVMSG #lobby :\r\nPRIVMSG\r\n\
             NOTICE nobody :quiet\r\nJOIN bad\r\nPART #nowhere\r\nTOPIC\r\n",
        );
        assert_eq!(
            chat.take(irc),
            [
                ":irc.test 401 ann nobody :No such nick/channel",
                ":irc.test 403 ann #nowhere :No such channel",
                ":irc.test 412 ann :No text to send",
                ":irc.test 411 ann :No recipient given (PRIVMSG)",
                ":irc.test 403 ann bad :No such channel",
                ":irc.test 403 ann #nowhere :No such channel",
                ":irc.test 461 ann TOPIC :Not enough parameters",
            ]
        );
        let line = b"PRIVMSG #lobby :caf\xe9\r\n";
        let now = chat.driver.now();
        let taken = chat.server().handle_input(now, irc, line).unwrap();
        assert_eq!(taken.bytes(), line.len());
        chat.drain();
        assert_eq!(
            chat.take(irc),
            [
                ":irc.test FAIL PRIVMSG INVALID_UTF8 :Your line was not valid UTF-8; it was not processed"
            ]
        );
        chat.send(irc, "PRIVMSG #lobby :bell\x07\r\n");
        assert!(chat.take(irc)[0].contains("control character ^G"));
    }

    #[test]
    fn an_unregistered_client_is_closed_at_the_silence_timeout() {
        let mut chat = Chat::new();
        let conn = chat.connect();
        chat.send(conn, "NICK slow\r\n");
        chat.send(conn, "PING a\r\n");
        chat.take(conn);
        chat.wait(10_000);
        assert_eq!(
            chat.take(conn),
            ["ERROR :Closing link: not registered within 10 s of connecting"]
        );
        assert_eq!(chat.closed(), [conn]);
        // Registered in time: kept.
        let kept = chat.irc("quick");
        chat.wait(20_000);
        assert!(!chat.closed().contains(&kept));
    }

    #[test]
    fn queries_answer_with_their_numerics() {
        let mut chat = Chat::new();
        let irc = chat.irc("ann");
        let _plain = chat.plain("bob");
        chat.take(irc);
        chat.send(
            irc,
            "WHOIS bob\r\nWHO #lobby\r\nLIST\r\nNAMES #lobby\r\nMODE #lobby\r\nMODE ann\r\n",
        );
        assert_eq!(
            chat.take(irc),
            [
                ":irc.test 311 ann bob plain hidden * :plain-text user",
                ":irc.test 319 ann bob :#lobby ",
                ":irc.test 312 ann bob irc.test :chat-0.1.0",
                ":irc.test 318 ann bob :End of /WHOIS list",
                ":irc.test 352 ann #lobby ~ann hidden irc.test ann H :0 Real ann",
                ":irc.test 352 ann #lobby plain hidden irc.test bob H :0 plain-text user",
                ":irc.test 315 ann #lobby :End of WHO list",
                ":irc.test 321 ann Channel :Users  Name",
                ":irc.test 322 ann #lobby 2 :",
                ":irc.test 323 ann :End of /LIST",
                ":irc.test 353 ann = #lobby :ann bob",
                ":irc.test 366 ann #lobby :End of /NAMES list",
                ":irc.test 324 ann #lobby +n",
                ":irc.test 329 ann #lobby 0",
                ":irc.test 221 ann +",
            ]
        );
    }

    #[test]
    fn away_is_shown_in_who_whois_and_to_senders() {
        let mut chat = Chat::new();
        let ann = chat.irc("ann");
        let bob = chat.irc("bob");
        let carol = chat.plain("carol");
        chat.take(ann);
        chat.send(ann, "AWAY :at lunch\r\n");
        assert_eq!(
            chat.take(ann),
            [":irc.test 306 ann :You have been marked as being away"]
        );
        chat.take(bob);
        chat.send(
            bob,
            "PRIVMSG ann :hi\r\nWHO ann\r\nWHOIS ann\r\nUSERHOST ann carol\r\n",
        );
        let heard = chat.take(bob);
        assert_eq!(heard[0], ":irc.test 301 bob ann :at lunch");
        assert_eq!(
            heard[1],
            ":irc.test 352 bob * ~ann hidden irc.test ann G :0 Real ann"
        );
        assert!(heard.contains(&":irc.test 301 bob ann :at lunch".into()));
        assert_eq!(
            heard.last().unwrap(),
            ":irc.test 302 bob :ann=-~ann@hidden carol=+plain@hidden"
        );
        chat.take(carol);
        chat.send(carol, "/msg ann are you there?\n");
        assert_eq!(
            chat.take(carol),
            [
                "*** ann is away: at lunch",
                "[private] to ann: are you there?"
            ]
        );
        chat.send(ann, "AWAY\r\n");
        assert_eq!(
            chat.take(ann),
            [
                ":bob!~bob@hidden PRIVMSG ann :hi",
                ":carol!plain@hidden PRIVMSG ann :are you there?",
                ":irc.test 305 ann :You are no longer marked as being away"
            ]
        );
    }

    #[test]
    fn invisible_people_are_found_only_by_those_who_share_a_room() {
        let mut chat = Chat::new();
        let ann = chat.irc("ann");
        let bob = chat.irc("bob");
        chat.take(ann);
        chat.send(
            ann,
            "MODE ann +i\r\nMODE ann\r\nMODE ann +x\r\nPART #lobby\r\n",
        );
        assert_eq!(
            chat.take(ann),
            [
                ":ann MODE ann :+i",
                ":irc.test 221 ann +i",
                ":irc.test 501 ann :Unknown MODE flag; only +i and +w are kept here",
                ":ann!~ann@hidden PART #lobby",
            ]
        );
        chat.take(bob);
        chat.send(bob, "WHO a*\r\nISON ann nobody\r\n");
        assert_eq!(
            chat.take(bob),
            [
                ":irc.test 315 bob a* :End of WHO list",
                ":irc.test 303 bob :ann",
            ]
        );
        chat.send(ann, "JOIN #lobby\r\n");
        chat.send(bob, "WHO a*\r\n");
        assert_eq!(
            chat.take(bob)[1],
            ":irc.test 352 bob * ~ann hidden irc.test ann H :0 Real ann"
        );
    }

    #[test]
    fn a_notice_to_a_room_stays_a_notice_and_whowas_has_nothing() {
        let mut chat = Chat::new();
        let ann = chat.irc("ann");
        let bob = chat.irc("bob");
        let carol = chat.plain("carol");
        chat.take(ann);
        chat.take(bob);
        chat.send(bob, "NOTICE #lobby :heads up\r\nWHOWAS gone\r\n");
        assert_eq!(chat.take(ann), [":bob!~bob@hidden NOTICE #lobby :heads up"]);
        assert_eq!(chat.take(carol), ["[#lobby] -bob- heads up"]);
        assert_eq!(
            chat.take(bob),
            [
                ":irc.test 406 bob gone :There was no such nickname",
                ":irc.test 369 bob gone :End of WHOWAS",
            ]
        );
    }

    #[test]
    fn a_client_welcomed_as_plain_text_before_registering_is_renamed_for_all() {
        let mut chat = Chat::new();
        let ann = chat.irc("ann");
        // Its first line comes after the greeting delay: it is in the lobby as anonymous-2.
        let slow = chat.connect();
        chat.wait(500);
        assert!(chat.take(slow)[0].starts_with("*** Welcome"));
        assert_eq!(chat.take(ann), [":anonymous-2!plain@hidden JOIN #lobby"]);
        chat.send(slow, "NICK slowpoke\r\nUSER s 0 * :Slow\r\n");
        assert_eq!(chat.take(ann), [":anonymous-2!~user@hidden NICK :slowpoke"]);
        let welcome = chat.take(slow);
        assert!(
            welcome[0].starts_with(":irc.test 001 slowpoke "),
            "{welcome:?}"
        );
        assert!(
            welcome.contains(&":slowpoke!~s@hidden JOIN #lobby".into()),
            "{welcome:?}"
        );
        chat.send(slow, "QUIT :bye\r\n");
        assert_eq!(chat.take(ann), [":slowpoke!~s@hidden QUIT :quit: bye"]);
    }

    #[test]
    fn a_quiet_client_is_pinged_and_closed_if_it_does_not_answer() {
        let mut chat = Chat::new();
        let ann = chat.irc("ann");
        let bob = chat.irc("bob");
        chat.take(ann);
        // Quiet for the ping interval (120 s): pinged; any line answers.
        chat.wait(119_000);
        assert!(chat.take(ann).is_empty());
        chat.wait(1_000);
        assert_eq!(chat.take(ann), ["PING :irc.test"]);
        assert_eq!(chat.take(bob), ["PING :irc.test"]);
        chat.send(ann, "PONG :irc.test\r\n");
        chat.wait(60_000);
        // Bob never answered: closed after the ping timeout, and the others told.
        assert_eq!(
            chat.take(bob),
            ["ERROR :Closing link: no answer to PING within 60 s"]
        );
        assert_eq!(chat.closed(), [bob]);
        assert_eq!(chat.take(ann), [":bob!~bob@hidden QUIT :ping timeout"]);
        // Ann answered: pinged again only after another quiet interval.
        chat.wait(59_000);
        assert!(chat.take(ann).is_empty());
        chat.wait(1_000);
        assert_eq!(chat.take(ann), ["PING :irc.test"]);
    }

    /// The commands and capabilities of the wider irctest run.
    mod wide;
}
