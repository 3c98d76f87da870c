//! The IRC dialect: registration, the commands real clients send, and the numeric replies they
//! expect (RFC 1459 and 2812, as modern clients use them). Rooms are channels; people who speak
//! plain text or JSON show up as ordinary IRC users, and the other way round.

use core::fmt::{self, Write};

use super::{Admitted, Ago, Hub, Private, Refused};
use crate::frame::LineBuffer;
use crate::history::Said;
use crate::irc::{Message, MessageError, Trailing};
use crate::output::{Audience, CloseReason, Speaks};
use crate::render::{CharName, Visible, is_unsafe};
use crate::room::{MAX_TOPIC_BYTES, RoomId, bit};
use crate::roster::{ConnectionId, IrcUser, MAX_AWAY_BYTES, Name, Nickname, Queue, Roster, Slot};

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
}

impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}!{}@{HOST}", self.name, self.user)
    }
}

/// The `user` of a prefix.
#[derive(Clone, Copy, Debug)]
enum UserName<'a> {
    Irc(&'a str),
    Plain,
    Json,
}

impl fmt::Display for UserName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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

impl<const N: usize> Roster<N> {
    /// `conn`'s `nick!user@host`.
    pub(crate) fn prefix(&self, conn: ConnectionId) -> Prefix<'_> {
        let user = match self.get(conn) {
            Some(slot) => match &slot.irc {
                Some(irc) => UserName::Irc(&irc.user),
                None if slot.framer.dialect() == crate::frame::Dialect::Json => UserName::Json,
                None => UserName::Plain,
            },
            None => UserName::Plain,
        };
        Prefix {
            name: self.name(conn),
            user,
        }
    }

    /// How replies to `conn` name it.
    pub(crate) fn irc_name(&self, conn: ConnectionId) -> IrcName<'_> {
        match self.get(conn) {
            Some(slot) if slot.irc.is_some() && slot.nick.is_none() => IrcName::Unnamed,
            _ => IrcName::Name(self.name(conn)),
        }
    }
}

/// A message's text as IRC carries it: an action is a CTCP ACTION.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IrcText<'a>(pub(crate) Said, pub(crate) &'a str);

impl fmt::Display for IrcText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Said::Line => Visible(self.1).fmt(f),
            Said::Action => write!(f, "\x01ACTION {}\x01", Visible(self.1)),
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
}

impl Verb {
    fn of(verb: &str) -> Option<Self> {
        const VERBS: [(&str, Verb); 22] = [
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
            Self::Cap | Self::Nick | Self::User | Self::Pass | Self::Ping | Self::Pong | Self::Quit
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

/// Keeps ASCII letters, digits and `-_.` of a user name, at most [`MAX_USER_BYTES`](crate::roster::MAX_USER_BYTES).
fn clean_user(user: &str, into: &mut heapless::String<{ crate::roster::MAX_USER_BYTES }>) {
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

/// The away message of the person in `slot`, if they are away.
fn away_message(slot: &Slot) -> Option<&str> {
    slot.irc.as_ref()?.away.as_deref()
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Whether `name` matches the glob `mask` (`*` any run, `?` one character), ASCII case ignored.
fn glob(mask: &[u8], name: &[u8]) -> bool {
    let (mut m, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if m < mask.len() && (mask[m] == b'?' || mask[m].eq_ignore_ascii_case(&name[n])) {
            m += 1;
            n += 1;
        } else if m < mask.len() && mask[m] == b'*' {
            star = Some((m, n));
            m += 1;
        } else if let Some((star_m, star_n)) = star {
            m = star_m + 1;
            n = star_n + 1;
            star = Some((star_m, star_n + 1));
        } else {
            return false;
        }
    }
    mask[m..].iter().all(|&b| b == b'*')
}

impl<const N: usize> Hub<'_, N> {
    /// Handles one line from a connection speaking IRC.
    pub(crate) fn irc_line(&mut self, conn: ConnectionId, line: &mut LineBuffer) {
        strip_formatting(line);
        let Ok(text) = core::str::from_utf8(line) else {
            let verb = verb_of(line);
            return irc!(
                self,
                Audience::one(conn),
                ":{} FAIL {verb} INVALID_UTF8 :Your line was not valid UTF-8; it was not processed",
                self.server_name
            );
        };
        if let Some(bad) = text.chars().find(|&c| is_unsafe(c) && c != '\x01') {
            return server_notice!(
                self,
                conn,
                "*** error: your line contains the control character {}; it was not processed",
                CharName(bad)
            );
        }
        let message = match Message::parse(text) {
            Ok(message) => message,
            Err(MessageError::NoVerb) => return, // a blank line
            Err(error) => return server_notice!(self, conn, "*** error: {error}"),
        };
        let registered = self
            .roster
            .get(conn)
            .and_then(|slot| slot.irc.as_ref())
            .is_some_and(|irc| irc.registered);
        let Some(verb) = Verb::of(message.verb) else {
            if !registered {
                return numeric!(self, conn, "451", ":You have not registered");
            }
            return numeric!(
                self,
                conn,
                "421",
                "{} :Unknown command",
                Visible(message.verb)
            );
        };
        if !registered && !verb.before_registration() {
            return numeric!(self, conn, "451", ":You have not registered");
        }
        match verb {
            Verb::Cap => self.cap(conn, &message, registered),
            Verb::Nick => self.irc_nick(conn, &message, registered),
            Verb::User | Verb::Pass if registered => {
                numeric!(self, conn, "462", ":You may not reregister");
            }
            Verb::User => self.user(conn, &message),
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
                None => numeric!(self, conn, "409", ":No origin specified"),
            },
            Verb::Pong => {}
            Verb::Quit => self.irc_quit(conn, message.param(0)),
            Verb::Join => self.irc_join(conn, &message),
            Verb::Part => self.irc_part(conn, &message),
            Verb::Privmsg => self.irc_message(conn, &message, Private::Message(Said::Line)),
            Verb::Notice => self.irc_message(conn, &message, Private::Notice),
            Verb::Names => self.irc_names(conn, &message),
            Verb::Topic => self.irc_topic(conn, &message),
            Verb::Who => self.who(conn, message.param(0)),
            Verb::Whois => self.whois(conn, &message),
            Verb::List => self.irc_list(conn, message.param(0)),
            Verb::Mode => self.mode(conn, &message),
            Verb::Motd => self.motd(conn),
            Verb::Away => self.away(conn, message.param(0)),
            Verb::Whowas => self.whowas(conn, message.param(0)),
            Verb::Ison => self.ison(conn, &message),
            Verb::Userhost => self.userhost(conn, &message),
        }
    }

    fn missing(&mut self, conn: ConnectionId, verb: &str) {
        numeric!(self, conn, "461", "{verb} :Not enough parameters");
    }

    /// Handles the rest of a line naming several targets (`JOIN #a,#b`) in a later step:
    /// puts back `VERB rest params...`, with the parameters after the targets.
    fn put_back(&mut self, conn: ConnectionId, message: &Message<'_>, rest: &str) {
        let mut line: heapless::String<{ crate::MAX_LINE_BYTES }> = heapless::String::new();
        let _ = write!(line, "{} {rest}", message.verb);
        if let Some((last, middle)) = message.params[1..].split_last() {
            for param in middle {
                let _ = write!(line, " {param}");
            }
            let _ = write!(line, " {}", Trailing(last));
        }
        if let Some(slot) = self.roster.get_mut(conn) {
            slot.framer.put_back(line.as_bytes());
        }
    }

    /// The first of a comma-separated list of targets; the rest is put back for the next step.
    fn first_target<'m>(&mut self, conn: ConnectionId, message: &Message<'m>) -> Option<&'m str> {
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

    fn cap(&mut self, conn: ConnectionId, message: &Message<'_>, registered: bool) {
        let Some(sub) = message.param(0) else {
            return self.missing(conn, "CAP");
        };
        let server = self.server_name;
        let me = self.roster.irc_name(conn);
        let begin = |hub: &mut Self| {
            if let Some(irc) = hub.roster.get_mut(conn).and_then(|slot| slot.irc.as_mut())
                && !registered
            {
                irc.negotiating = true;
            }
        };
        if sub.eq_ignore_ascii_case("LS") {
            irc!(self, Audience::one(conn), ":{server} CAP {me} LS :");
            begin(self);
        } else if sub.eq_ignore_ascii_case("LIST") {
            irc!(self, Audience::one(conn), ":{server} CAP {me} LIST :");
        } else if sub.eq_ignore_ascii_case("REQ") {
            let wanted = Visible(message.param(1).unwrap_or_default());
            irc!(
                self,
                Audience::one(conn),
                ":{server} CAP {me} NAK :{wanted}"
            );
            begin(self);
        } else if sub.eq_ignore_ascii_case("END") {
            if let Some(irc) = self.roster.get_mut(conn).and_then(|slot| slot.irc.as_mut()) {
                irc.negotiating = false;
            }
            self.try_register(conn);
        } else {
            numeric!(self, conn, "410", "{} :Invalid CAP command", Visible(sub));
        }
    }

    fn irc_nick(&mut self, conn: ConnectionId, message: &Message<'_>, registered: bool) {
        let Some(wanted) = message.param(0).filter(|nick| !nick.is_empty()) else {
            return numeric!(self, conn, "431", ":No nickname given");
        };
        let Ok(nick) = Nickname::new(wanted) else {
            return numeric!(self, conn, "432", "{} :Erroneous nickname", Visible(wanted));
        };
        match self.roster.find(nick.as_str()) {
            Some(holder) if holder != conn => {
                return numeric!(self, conn, "433", "{nick} :Nickname is already in use");
            }
            _ => {}
        }
        if let Name::Nick(current) = self.roster.name(conn)
            && current.as_str() == nick.as_str()
        {
            return;
        }
        let in_rooms = self.roster.get(conn).is_some_and(|slot| slot.rooms != 0);
        if registered || in_rooms {
            // In rooms before registering: it was welcomed as plain text before its first
            // line came, and the others know it by its old name.
            self.rename(conn, nick, registered);
        } else {
            self.out.renamed(conn, nick.as_str());
            if let Some(slot) = self.roster.get_mut(conn) {
                slot.nick = Some(nick);
            }
        }
        if !registered {
            self.try_register(conn);
        }
    }

    fn user(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let (Some(user), Some(realname)) = (message.param(0), message.param(3)) else {
            return self.missing(conn, "USER");
        };
        if user.is_empty() || realname.is_empty() {
            return self.missing(conn, "USER");
        }
        if let Some(irc) = self.roster.get_mut(conn).and_then(|slot| slot.irc.as_mut()) {
            clean_user(user, &mut irc.user);
            irc.realname.clear();
            let _ = irc
                .realname
                .push_str(cut(realname, crate::roster::MAX_REALNAME_BYTES));
        }
        self.try_register(conn);
    }

    /// Welcomes `conn` once it has a nickname and a user name, and is not negotiating
    /// capabilities: the 001 to 005 numerics, the message of the day, and the lobby.
    fn try_register(&mut self, conn: ConnectionId) {
        let Some(slot) = self.roster.get_mut(conn) else {
            return;
        };
        let has_nick = slot.nick.is_some();
        let Some(irc) = slot.irc.as_mut() else {
            return;
        };
        if irc.registered || irc.negotiating || irc.user.is_empty() || !has_nick {
            return;
        }
        irc.registered = true;
        let rooms = slot.rooms;
        self.roster.dequeue(Queue::Silent, conn);
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let prefix = self.roster.prefix(conn);
        let start = self.out.mark();
        let _ = write!(
            self.out,
            ":{server} 001 {me} :Welcome to the chat, {prefix}\r\n\
             :{server} 002 {me} :Your host is {server}, running version {VERSION}\r\n\
             :{server} 003 {me} :This server was created when it started\r\n\
             :{server} 004 {me} {server} {VERSION} i n\r\n\
             :{server} 005 {me} AWAYLEN={} CASEMAPPING=ascii CHANNELLEN={} CHANTYPES=# \
             NETWORK=chat NICKLEN={} TOPICLEN={MAX_TOPIC_BYTES} UTF8ONLY :are supported by this server\r\n",
            MAX_AWAY_BYTES,
            crate::MAX_ROOM_NAME_BYTES,
            crate::MAX_NICK_CHARS,
        );
        self.out.send(start, Audience::one(conn));
        self.motd(conn);
        if rooms != 0 {
            // Greeted as plain text before its first line showed it to be IRC: show it the
            // rooms it is in already.
            for room in 0..crate::MAX_ROOMS as RoomId {
                if rooms & bit(room) != 0
                    && let Some(info) = self.rooms.get(room)
                {
                    // Clients open a channel's window on seeing their own JOIN.
                    irc!(
                        self,
                        Audience::one(conn),
                        ":{} JOIN {}",
                        self.roster.prefix(conn),
                        info.name
                    );
                    self.joined(conn, room);
                }
            }
        } else if self.irc_lobby {
            self.join_target(conn, crate::LOBBY);
        }
    }

    fn motd(&mut self, conn: ConnectionId) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let _ = write!(
            self.out,
            ":{server} 375 {me} :- {server} Message of the day -\r\n\
             :{server} 372 {me} :- People on IRC, on plain-text terminals (nc, telnet) and on\r\n\
             :{server} 372 {me} :- the original JSON client share these rooms; #lobby is where\r\n\
             :{server} 372 {me} :- everyone starts.\r\n\
             :{server} 376 {me} :End of /MOTD command.\r\n"
        );
        self.out.send(start, Audience::one(conn));
    }

    fn irc_quit(&mut self, conn: ConnectionId, reason: Option<&str>) {
        let registered = self
            .roster
            .get(conn)
            .and_then(|slot| slot.irc.as_ref())
            .is_some_and(|irc| irc.registered);
        let reason = reason.filter(|reason| !reason.is_empty());
        irc!(
            self,
            Audience::one(conn),
            "ERROR :Closing link: {} (quit{}{})",
            self.roster.irc_name(conn),
            if reason.is_some() { ": " } else { "" },
            Visible(reason.unwrap_or_default())
        );
        match reason.filter(|_| registered) {
            Some(reason) => self.depart(conn, &format_args!("quit: {}", Visible(reason))),
            None => self.depart(conn, &CloseReason::Quit),
        }
        self.out.close(conn, CloseReason::Quit);
    }

    fn irc_join(&mut self, conn: ConnectionId, message: &Message<'_>) {
        if message.param(0) == Some("0") {
            // Leave every room, one per step.
            let mask = self.roster.get(conn).map_or(0, |slot| slot.rooms);
            if mask != 0 {
                let room = mask.trailing_zeros() as RoomId;
                if mask & !bit(room) != 0 {
                    self.put_back(conn, message, "0");
                }
                self.leave(conn, room, None);
            }
            return;
        }
        match self.first_target(conn, message) {
            Some(target) => self.join_target(conn, target),
            None => self.missing(conn, "JOIN"),
        }
    }

    fn join_target(&mut self, conn: ConnectionId, target: &str) {
        match self.admit(conn, target) {
            Ok(Admitted::Entered(room)) => self.joined(conn, room),
            Ok(Admitted::AlreadyIn(_)) => {}
            Err(Refused::Invalid(_)) => {
                numeric!(self, conn, "403", "{} :No such channel", Visible(target));
            }
            Err(Refused::TooManyRooms) => numeric!(
                self,
                conn,
                "405",
                "{} :There are already {} rooms, the most there can be",
                Visible(target),
                crate::MAX_ROOMS
            ),
            Err(Refused::Full(room, members)) => numeric!(
                self,
                conn,
                "471",
                "{} :Cannot join channel: it is full ({members} people)",
                Visible(room.as_ref().map_or(target, |room| room.as_str()))
            ),
        }
    }

    /// What an IRC client is told on entering `room` (its own JOIN went out with everyone's):
    /// the topic, the names, and what was said lately.
    fn joined(&mut self, conn: ConnectionId, room: RoomId) {
        let server = self.server_name;
        if let Some(info) = self.rooms.get(room)
            && !info.topic.is_empty()
        {
            let (name, topic) = (&info.name, Visible(&info.topic));
            numeric!(self, conn, "332", "{name} :{topic}");
        }
        self.names(conn, room);
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let now = self.now;
        let start = self.out.mark();
        let out = &mut *self.out;
        let name = &info.name;
        self.history.replay(room, &mut |line| {
            let age = Ago(now.saturating_duration_since(line.at));
            let (who, text) = (&line.name, Visible(&line.text));
            let _ = match line.kind {
                Said::Line => write!(out, ":{server} NOTICE {name} :[{age}] {who}: {text}\r\n"),
                Said::Action => write!(out, ":{server} NOTICE {name} :[{age}] * {who} {text}\r\n"),
            };
        });
        self.out.send(start, Audience::one(conn));
    }

    /// `353` lines naming up to [`MAX_IRC_NAMES`] members of `room`, and `366`.
    fn names(&mut self, conn: ConnectionId, room: RoomId) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let roster = &*self.roster;
        let start = self.out.mark();
        let mut line_start = None;
        let members = roster
            .live()
            .filter(|&id| {
                roster
                    .get(id)
                    .is_some_and(|slot| slot.rooms & bit(room) != 0)
            })
            .take(MAX_IRC_NAMES);
        for id in members {
            let at = self.out.mark();
            match line_start {
                Some(begun) if at - begun < NAMES_LINE_BYTES => {
                    let _ = write!(self.out, " {}", roster.name(id));
                }
                Some(_) => {
                    let _ = write!(self.out, "\r\n");
                    line_start = Some(self.out.mark());
                    let _ = write!(
                        self.out,
                        ":{server} 353 {me} = {} :{}",
                        info.name,
                        roster.name(id)
                    );
                }
                None => {
                    line_start = Some(at);
                    let _ = write!(
                        self.out,
                        ":{server} 353 {me} = {} :{}",
                        info.name,
                        roster.name(id)
                    );
                }
            }
        }
        if line_start.is_some() {
            let _ = write!(self.out, "\r\n");
        }
        let _ = write!(
            self.out,
            ":{server} 366 {me} {} :End of /NAMES list\r\n",
            info.name
        );
        self.out.send(start, Audience::one(conn));
    }

    fn irc_part(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(target) = self.first_target(conn, message) else {
            return self.missing(conn, "PART");
        };
        let Some(room) = self.rooms.find(target) else {
            return numeric!(self, conn, "403", "{} :No such channel", Visible(target));
        };
        let mask = self.roster.get(conn).map_or(0, |slot| slot.rooms);
        if mask & bit(room) == 0 {
            return numeric!(
                self,
                conn,
                "442",
                "{} :You're not on that channel",
                Visible(target)
            );
        }
        let reason = message.param(1).filter(|reason| !reason.is_empty());
        self.leave(conn, room, reason);
    }

    fn irc_message(&mut self, conn: ConnectionId, message: &Message<'_>, kind: Private) {
        // A NOTICE is never answered with an error, so two programs cannot loop.
        let answer = matches!(kind, Private::Message(_));
        let Some(target) = self.first_target(conn, message) else {
            if answer {
                numeric!(self, conn, "411", ":No recipient given ({})", message.verb);
            }
            return;
        };
        let Some(text) = message.param(1).filter(|text| !text.is_empty()) else {
            if answer {
                numeric!(self, conn, "412", ":No text to send");
            }
            return;
        };
        let (said, text) = match text.strip_prefix('\x01') {
            Some(ctcp) => {
                let ctcp = ctcp.strip_suffix('\x01').unwrap_or(ctcp);
                match ctcp.strip_prefix("ACTION") {
                    Some(action) if action.is_empty() || action.starts_with(' ') => {
                        (Said::Action, action.trim_start_matches(' '))
                    }
                    _ => {
                        if answer {
                            let what = ctcp.split(' ').next().unwrap_or_default();
                            server_notice!(
                                self,
                                conn,
                                "*** CTCP {} is not relayed here",
                                Visible(what)
                            );
                        }
                        return;
                    }
                }
            }
            None => (Said::Line, text),
        };
        if text.contains('\x01') {
            if answer {
                server_notice!(
                    self,
                    conn,
                    "*** error: your message contains the control character {}; it was not sent",
                    CharName('\x01')
                );
            }
            return;
        }
        let kind = match kind {
            Private::Message(_) => Private::Message(said),
            Private::Notice => Private::Notice,
        };
        if target.starts_with('#') {
            let Some(room) = self.rooms.find(target) else {
                if answer {
                    numeric!(self, conn, "403", "{} :No such channel", Visible(target));
                }
                return;
            };
            let mask = self.roster.get(conn).map_or(0, |slot| slot.rooms);
            if mask & bit(room) == 0 {
                if answer {
                    numeric!(
                        self,
                        conn,
                        "404",
                        "{} :Cannot send to channel (you are not in it)",
                        Visible(target)
                    );
                }
                return;
            }
            return match kind {
                Private::Notice => self.announce_notice(conn, room, text),
                Private::Message(_) => self.speak(conn, room, said, text),
            };
        }
        match self.roster.find(target) {
            Some(to) => {
                self.deliver(conn, to, kind, text);
                if answer {
                    self.tell_if_away(conn, to);
                }
            }
            None if answer => {
                numeric!(
                    self,
                    conn,
                    "401",
                    "{} :No such nick/channel",
                    Visible(target)
                );
            }
            None => {}
        }
    }

    fn irc_names(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(target) = self.first_target(conn, message) else {
            return numeric!(self, conn, "366", "* :End of /NAMES list");
        };
        match self.rooms.find(target) {
            Some(room) => self.names(conn, room),
            None => numeric!(self, conn, "366", "{} :End of /NAMES list", Visible(target)),
        }
    }

    fn irc_topic(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(target) = message.param(0) else {
            return self.missing(conn, "TOPIC");
        };
        let Some(room) = self.rooms.find(target) else {
            return numeric!(self, conn, "403", "{} :No such channel", Visible(target));
        };
        let member = self
            .roster
            .get(conn)
            .is_some_and(|slot| slot.rooms & bit(room) != 0);
        let Some(topic) = message.param(1) else {
            let Some(info) = self.rooms.get(room) else {
                return;
            };
            let name = &info.name;
            if info.topic.is_empty() {
                return numeric!(self, conn, "331", "{name} :No topic is set");
            }
            let topic = Visible(&info.topic);
            return numeric!(self, conn, "332", "{name} :{topic}");
        };
        if !member {
            return numeric!(
                self,
                conn,
                "442",
                "{} :You're not on that channel",
                Visible(target)
            );
        }
        // Longer topics are cut, as TOPICLEN in 005 warns.
        self.set_topic(conn, room, cut(topic, MAX_TOPIC_BYTES));
    }

    /// One `352` line.
    fn who_line(&mut self, conn: ConnectionId, channel: &str, id: ConnectionId) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let roster = &*self.roster;
        let Some(slot) = roster.get(id) else {
            return;
        };
        let prefix = roster.prefix(id);
        let realname = match &slot.irc {
            Some(irc) => irc.realname.as_str(),
            None => "plain-text user",
        };
        let here = if away_message(slot).is_some() {
            "G"
        } else {
            "H"
        };
        let _ = write!(
            self.out,
            ":{server} 352 {me} {channel} {} {HOST} {server} {} {here} :0 {}\r\n",
            prefix.user,
            prefix.name,
            Visible(realname)
        );
    }

    fn who(&mut self, conn: ConnectionId, mask: Option<&str>) {
        let mask = mask.unwrap_or("*");
        let start = self.out.mark();
        let mine = self.roster.get(conn).map_or(0, |slot| slot.rooms);
        // An invisible person is found by a mask or a room only by someone who shares a room
        // with them; by their exact nickname, by anyone.
        let exact = !mask.contains(['*', '?']) && !mask.starts_with('#');
        let visible = |id: ConnectionId, slot: &Slot| {
            exact
                || id == conn
                || slot.rooms & mine != 0
                || !slot.irc.as_ref().is_some_and(|irc| irc.invisible)
        };
        if let Some(room) = self.rooms.find(mask) {
            let name = self.rooms.get(room).map(|info| info.name.clone());
            let members: heapless::Vec<ConnectionId, MAX_WHO_REPLIES> = self
                .roster
                .live()
                .filter(|&id| {
                    self.roster
                        .get(id)
                        .is_some_and(|slot| slot.rooms & bit(room) != 0 && visible(id, slot))
                })
                .take(MAX_WHO_REPLIES)
                .collect();
            if let Some(name) = name {
                for id in members {
                    self.who_line(conn, name.as_str(), id);
                }
            }
        } else if !mask.starts_with('#') {
            let members: heapless::Vec<ConnectionId, MAX_WHO_REPLIES> = self
                .roster
                .live()
                .filter(|&id| {
                    let name = self.roster.name(id);
                    let mut buffer: heapless::String<32> = heapless::String::new();
                    let _ = write!(buffer, "{name}");
                    self.roster.get(id).is_some_and(|slot| {
                        slot.irc.as_ref().is_none_or(|irc| irc.registered) && visible(id, slot)
                    }) && glob(mask.as_bytes(), buffer.as_bytes())
                })
                .take(MAX_WHO_REPLIES)
                .collect();
            for id in members {
                self.who_line(conn, "*", id);
            }
        }
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let _ = write!(
            self.out,
            ":{server} 315 {me} {} :End of WHO list\r\n",
            Visible(mask)
        );
        self.out.send(start, Audience::one(conn));
    }

    fn whois(&mut self, conn: ConnectionId, message: &Message<'_>) {
        // `WHOIS nick` or `WHOIS server nick`.
        let Some(&target) = message.params.last() else {
            return numeric!(self, conn, "431", ":No nickname given");
        };
        let target = target.split(',').next().unwrap_or_default();
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        match self.roster.find(target) {
            Some(id) => {
                let roster = &*self.roster;
                let prefix = roster.prefix(id);
                let (realname, rooms) = match roster.get(id) {
                    Some(slot) => (
                        slot.irc
                            .as_ref()
                            .map_or("plain-text user", |irc| irc.realname.as_str()),
                        slot.rooms,
                    ),
                    None => ("", 0),
                };
                let name = prefix.name;
                let _ = write!(
                    self.out,
                    ":{server} 311 {me} {name} {} {HOST} * :{}\r\n",
                    prefix.user,
                    Visible(realname)
                );
                if rooms != 0 {
                    let _ = write!(self.out, ":{server} 319 {me} {name} :");
                    for (room, info) in self.rooms.iter() {
                        if rooms & bit(room) != 0 {
                            let _ = write!(self.out, "{} ", info.name);
                        }
                    }
                    let _ = write!(self.out, "\r\n");
                }
                let _ = write!(
                    self.out,
                    ":{server} 312 {me} {name} {server} :{VERSION}\r\n"
                );
                if let Some(away) = roster.get(id).and_then(away_message) {
                    let _ = write!(self.out, ":{server} 301 {me} {name} :{}\r\n", Visible(away));
                }
                let _ = write!(
                    self.out,
                    ":{server} 318 {me} {name} :End of /WHOIS list\r\n"
                );
            }
            None => {
                let target = Visible(target);
                let _ = write!(
                    self.out,
                    ":{server} 401 {me} {target} :No such nick/channel\r\n\
                     :{server} 318 {me} {target} :End of /WHOIS list\r\n"
                );
            }
        }
        self.out.send(start, Audience::one(conn));
    }

    fn irc_list(&mut self, conn: ConnectionId, only: Option<&str>) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let _ = write!(self.out, ":{server} 321 {me} Channel :Users  Name\r\n");
        for (_, info) in self.rooms.iter() {
            let wanted =
                only.is_none_or(|only| only.split(',').any(|name| info.name.matches(name)));
            if info.members == 0 || !wanted {
                continue;
            }
            let _ = write!(
                self.out,
                ":{server} 322 {me} {} {} :{}\r\n",
                info.name,
                info.members,
                Visible(&info.topic)
            );
        }
        let _ = write!(self.out, ":{server} 323 {me} :End of /LIST\r\n");
        self.out.send(start, Audience::one(conn));
    }

    /// No modes are kept: a query gets an empty set, a change an error that says so.
    fn mode(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(target) = message.param(0) else {
            return self.missing(conn, "MODE");
        };
        let change = message.param(1);
        if target.starts_with('#') {
            let Some(name) = self
                .rooms
                .find(target)
                .and_then(|room| self.rooms.get(room))
                .map(|info| info.name.clone())
            else {
                return numeric!(self, conn, "403", "{} :No such channel", Visible(target));
            };
            return match change {
                None => numeric!(self, conn, "324", "{name} +"),
                Some(mode) if mode.trim_start_matches('+') == "b" => {
                    numeric!(self, conn, "368", "{name} :End of channel ban list");
                }
                Some(mode) => numeric!(
                    self,
                    conn,
                    "472",
                    "{} :is not a channel mode here (no channel modes are kept)",
                    mode.trim_start_matches(['+', '-'])
                        .chars()
                        .next()
                        .unwrap_or('?')
                ),
            };
        }
        let Some(id) = self.roster.find(target) else {
            return numeric!(
                self,
                conn,
                "401",
                "{} :No such nick/channel",
                Visible(target)
            );
        };
        if id != conn {
            return numeric!(self, conn, "502", ":Can't change mode for other users");
        }
        let Some(change) = change else {
            let modes = if self.irc_user(conn).is_some_and(|irc| irc.invisible) {
                "+i"
            } else {
                "+"
            };
            return numeric!(self, conn, "221", "{modes}");
        };
        // Only `i` is kept; other letters get one 501.
        let (mut set, mut adding, mut unknown) = (None, true, false);
        for letter in change.chars() {
            match letter {
                '+' => adding = true,
                '-' => adding = false,
                'i' => set = Some(adding),
                _ => unknown = true,
            }
        }
        if unknown {
            numeric!(
                self,
                conn,
                "501",
                ":Unknown MODE flag; only +i is kept here"
            );
        }
        let Some(invisible) = set else {
            return;
        };
        let Some(irc) = self.roster.get_mut(conn).and_then(|slot| slot.irc.as_mut()) else {
            return;
        };
        if core::mem::replace(&mut irc.invisible, invisible) != invisible {
            let sign = if invisible { '+' } else { '-' };
            let me = self.roster.irc_name(conn);
            irc!(self, Audience::one(conn), ":{me} MODE {me} :{sign}i");
        }
    }

    /// Nothing is kept about people who have left: `406`, `369`.
    fn whowas(&mut self, conn: ConnectionId, nick: Option<&str>) {
        let Some(nick) = nick else {
            return numeric!(self, conn, "431", ":No nickname given");
        };
        let nick = Visible(nick.split(',').next().unwrap_or_default());
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let _ = write!(
            self.out,
            ":{server} 406 {me} {nick} :There was no such nickname\r\n\
             :{server} 369 {me} {nick} :End of WHOWAS\r\n"
        );
        self.out.send(start, Audience::one(conn));
    }

    /// `303` with those of the nicknames asked about who are online.
    fn ison(&mut self, conn: ConnectionId, message: &Message<'_>) {
        if message.params.is_empty() {
            return self.missing(conn, "ISON");
        }
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let _ = write!(self.out, ":{server} 303 {me} :");
        let mut first = true;
        // Nicknames come as parameters, or space-separated in the last one.
        for nick in message.params.iter().flat_map(|param| param.split(' ')) {
            if let Some(id) = self.roster.find(nick) {
                let space = if core::mem::take(&mut first) { "" } else { " " };
                let _ = write!(self.out, "{space}{}", self.roster.name(id));
            }
        }
        let _ = self.out.write_str("\r\n");
        self.out.send(start, Audience::one(conn));
    }

    /// `302` with `nick=+user@host` (`-` when away) for up to five nicknames.
    fn userhost(&mut self, conn: ConnectionId, message: &Message<'_>) {
        if message.params.is_empty() {
            return self.missing(conn, "USERHOST");
        }
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let _ = write!(self.out, ":{server} 302 {me} :");
        let mut first = true;
        for nick in message.params.iter().take(5) {
            let Some(id) = self.roster.find(nick) else {
                continue;
            };
            let prefix = self.roster.prefix(id);
            let here = if self.roster.get(id).and_then(away_message).is_some() {
                '-'
            } else {
                '+'
            };
            let space = if core::mem::take(&mut first) { "" } else { " " };
            let _ = write!(
                self.out,
                "{space}{}={here}{}@{HOST}",
                prefix.name, prefix.user
            );
        }
        let _ = self.out.write_str("\r\n");
        self.out.send(start, Audience::one(conn));
    }

    fn irc_user(&self, conn: ConnectionId) -> Option<&IrcUser> {
        self.roster.get(conn).and_then(|slot| slot.irc.as_ref())
    }

    /// `AWAY :message` marks `conn` away; `AWAY` alone, back.
    fn away(&mut self, conn: ConnectionId, message: Option<&str>) {
        let Some(irc) = self.roster.get_mut(conn).and_then(|slot| slot.irc.as_mut()) else {
            return;
        };
        match message.filter(|message| !message.is_empty()) {
            Some(message) => {
                let mut away = heapless::String::new();
                let _ = away.push_str(cut(message, MAX_AWAY_BYTES));
                irc.away = Some(away);
                numeric!(self, conn, "306", ":You have been marked as being away");
            }
            None => {
                irc.away = None;
                numeric!(self, conn, "305", ":You are no longer marked as being away");
            }
        }
    }

    /// Tells `from`, who just sent `to` a private message, that `to` is away, if so.
    pub(crate) fn tell_if_away(&mut self, from: ConnectionId, to: ConnectionId) {
        let Some(away) = self.roster.get(to).and_then(away_message) else {
            return;
        };
        let (name, away) = (self.roster.name(to), Visible(away));
        if self.speaks_irc(from) {
            numeric!(self, from, "301", "{name} :{away}");
        } else {
            notice!(self, from, "{name} is away: {away}");
        }
    }

    /// A NOTICE to a room: shown like a line, but never remembered and never answered.
    fn announce_notice(&mut self, conn: ConnectionId, room: RoomId, text: &str) {
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let everyone = Audience::rooms(bit(room), conn);
        if self.roster.text_count() > 0 {
            let me = self.style.name(self.roster.name(conn));
            let start = self.out.mark();
            let _ = write!(self.out, "[{}] -{me}- {}\r\n", info.name, Visible(text));
            self.out.send(start, everyone.speaking(Speaks::Text));
        }
        irc!(
            self,
            everyone.speaking(Speaks::Irc),
            ":{} NOTICE {} :{}",
            self.roster.prefix(conn),
            info.name,
            Visible(text)
        );
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

    use crate::{Admission, Config, ConnectionId, Instant, Output, Server, ServerName};

    /// A server with the default greeting delay, and every line each connection got.
    struct Chat {
        server: Server<8, 4>,
        now: Instant,
        heard: Vec<(ConnectionId, String)>,
        resumed: Vec<ConnectionId>,
        closed: Vec<ConnectionId>,
    }

    impl Chat {
        fn new() -> Self {
            let config = Config::default()
                .with_colour(false)
                .with_flood_limit(None)
                .with_silence_timeout(Some(Duration::from_secs(10)))
                .with_server_name(ServerName::new("irc.test").unwrap());
            Self {
                server: Server::new(config, Instant::ZERO),
                now: Instant::ZERO,
                heard: Vec::new(),
                resumed: Vec::new(),
                closed: Vec::new(),
            }
        }

        fn drain(&mut self) {
            while let Some(output) = self.server.poll_output() {
                match output {
                    Output::Send { to, bytes } => {
                        let text = core::str::from_utf8(bytes).unwrap();
                        for conn in to {
                            for line in text.split_terminator("\r\n") {
                                self.heard.push((conn, line.into()));
                            }
                        }
                    }
                    Output::Resume { conn } => self.resumed.push(conn),
                    Output::Close { conn, .. } => self.closed.push(conn),
                    _ => {}
                }
            }
        }

        fn connect(&mut self) -> ConnectionId {
            let Ok(Admission::Accepted(conn)) = self.server.handle_connect(self.now) else {
                panic!("connect");
            };
            self.drain();
            conn
        }

        /// Feeds `lines` as one read, the way a runner does: one line per call, and again
        /// after a Resume, with an empty slice once the bytes are used up.
        fn send(&mut self, conn: ConnectionId, lines: &str) {
            let mut rest = lines.as_bytes();
            loop {
                self.resumed.clear();
                let taken = self.server.handle_input(self.now, conn, rest).unwrap();
                rest = &rest[taken.bytes()..];
                self.drain();
                if rest.is_empty() && !self.resumed.contains(&conn) {
                    break;
                }
            }
        }

        fn wait(&mut self, millis: u64) {
            self.now = Instant::from_millis(self.now.as_millis() + millis);
            self.server.handle_timeout(self.now).unwrap();
            self.drain();
        }

        /// Everything `conn` got since the last call.
        fn take(&mut self, conn: ConnectionId) -> Vec<String> {
            let (mine, rest) = core::mem::take(&mut self.heard)
                .into_iter()
                .partition(|(to, _)| *to == conn);
            self.heard = rest;
            mine.into_iter().map(|(_, line)| line).collect()
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

    #[test]
    fn an_irc_client_registers_after_cap_end_and_never_gets_the_plain_welcome() {
        let mut chat = Chat::new();
        let conn = chat.connect();
        assert!(chat.take(conn).is_empty(), "nothing before the first line");
        chat.send(conn, "CAP LS 302\r\nNICK alice\r\nUSER al 0 * :Alice\r\n");
        assert_eq!(chat.take(conn), [":irc.test CAP * LS :"]);
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
                "001", "002", "003", "004", "005", "375", "372", "372", "372", "376", "JOIN",
                "353", "366"
            ]
        );
        assert_eq!(welcome[11], ":alice!~al@hidden JOIN #lobby");
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
        let taken = chat
            .server
            .handle_input(chat.now, irc, b"JOIN #a,#b,#c\r\nPING x\r\n")
            .unwrap();
        assert_eq!(taken.bytes(), 15, "the JOIN line, and no more");
        chat.drain();
        assert_eq!(chat.resumed, [irc], "told to call again");
        assert_eq!(chat.take(irc)[0], ":ann!~ann@hidden JOIN #a");
        // The next call handles #b, whatever bytes come with it.
        chat.resumed.clear();
        let taken = chat
            .server
            .handle_input(chat.now, irc, b"PING x\r\n")
            .unwrap();
        assert_eq!(taken.bytes(), 0);
        chat.drain();
        assert_eq!(chat.resumed, [irc]);
        assert_eq!(chat.take(irc)[0], ":ann!~ann@hidden JOIN #b");
        chat.send(irc, "PING x\r\n");
        let rest = chat.take(irc);
        assert_eq!(rest[0], ":ann!~ann@hidden JOIN #c");
        assert_eq!(rest.last().unwrap(), ":irc.test PONG irc.test x");
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
        let taken = chat.server.handle_input(chat.now, irc, line).unwrap();
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
        assert_eq!(chat.closed, [conn]);
        // Registered in time: kept.
        let kept = chat.irc("quick");
        chat.wait(20_000);
        assert!(!chat.closed.contains(&kept));
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
                ":irc.test 324 ann #lobby +",
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
                ":irc.test 501 ann :Unknown MODE flag; only +i is kept here",
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
        assert_eq!(chat.closed, [bob]);
        assert_eq!(chat.take(ann), [":bob!~bob@hidden QUIT :ping timeout"]);
        // Ann answered: pinged again only after another quiet interval.
        chat.wait(59_000);
        assert!(chat.take(ann).is_empty());
        chat.wait(1_000);
        assert_eq!(chat.take(ann), ["PING :irc.test"]);
    }
}
