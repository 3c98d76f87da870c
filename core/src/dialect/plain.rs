//! The plain-text dialect: what a line typed in `nc` or `telnet` asks for, and the answers.

use core::fmt::Write;

use crate::dialect::text::{CharName, Visible, first_unsafe_char};
use crate::history::{HistoryAnswer, HistoryRange, HistoryRequest, MAX_HISTORY_LINES, Purpose};
use crate::output::{Audience, CloseReason};
use crate::state::rooms::{MAX_TOPIC_BYTES, RoomId};
use crate::state::roster::{ConnectionId, Name, Nickname};
use crate::wire::line::LineBuffer;
use crate::wire::plain::{Command, ParseError};

use super::accounts::Asked;
use super::text::{Ago, For, ReasonText};
use super::*;
use crate::event::{BanList, LineKind};
use crate::state::members::MAX_ROOMS_PER_PERSON;
use crate::state::members::Status;

impl<S: crate::Storage> Step<'_, S> {
    /// Greets a new connection that speaks plain text or JSON, and puts it in the lobby.
    pub(crate) fn greet(&mut self, conn: ConnectionId) {
        let Some(slot) = self.roster.get_mut(conn) else {
            return;
        };
        slot.connection.greeted = true;
        self.publish(&Happened::Arrived { who: conn });
        let (style, online) = (self.style, self.roster.len());
        let me = style.name(self.roster.name(conn));
        let people = if online == 1 {
            "person is"
        } else {
            "people are"
        };
        notice!(
            self,
            conn,
            "Welcome to the chat! You are {me}; {online} {people} online."
        );
        notice!(
            self,
            conn,
            "Pick a nickname with /nick NAME; /help lists the commands."
        );
        if let Some(first) = self.motd.and_then(|motd| motd.lines().next()) {
            notice!(self, conn, "{}", Visible(first));
        }
        self.join(conn, crate::state::rooms::LOBBY, None);
    }

    /// Handles one complete line from `conn`.
    pub(crate) fn line(&mut self, conn: ConnectionId, line: &mut LineBuffer) {
        // A tab is the one control character worth keeping: pasted text is full of them.
        for byte in line.iter_mut().filter(|byte| **byte == b'\t') {
            *byte = b' ';
        }
        let Ok(text) = core::str::from_utf8(line) else {
            return error!(self, conn, "your line is not valid UTF-8; it was not sent");
        };
        if let Some(bad) = first_unsafe_char(text) {
            return error!(
                self,
                conn,
                "your line contains the control character {}; it was not sent",
                CharName(bad),
            );
        }
        match Command::parse(text) {
            Ok(command) => self.command(conn, command),
            Err(ParseError::Empty) => {}
            Err(error) => error!(self, conn, "{error}"),
        }
    }

    pub(crate) fn command(&mut self, conn: ConnectionId, command: Command<'_>) {
        match command {
            Command::Say(text) => self.say(conn, LineKind::Line, text),
            Command::Me(text) => self.say(conn, LineKind::Action, text),
            Command::Join { room, key } => self.join(conn, room, key),
            Command::Invite { nick, room } => self.invite(conn, nick, room),
            Command::RegisterRoom { on } => self.register_room(conn, None, on),
            Command::ServerBan {
                mask,
                on,
                duration,
                reason,
            } => self.set_server_ban(conn, mask, on, duration, reason),
            Command::ServerBans => self.list_server_bans(conn),
            Command::Mode {
                room,
                changes,
                values,
            } => self.change_modes(conn, room, changes, &mut values.split_whitespace()),
            Command::Part { room, reason } => self.part(conn, room, reason),
            Command::Rooms => self.list_rooms(conn),
            Command::Topic(topic) => self.topic(conn, topic),
            Command::Nick(name) => self.nick(conn, name),
            Command::Msg { to, text } => self.private(conn, to, text),
            Command::List => match self.current(conn) {
                Some(room) => self.list(conn, room),
                None => self.not_in_a_room(conn),
            },
            Command::Help => self.help(conn),
            Command::History(lines) => {
                self.history_command(conn, lines.map(|lines| lines as usize));
            }
            Command::Ping(Some(token)) => {
                notice!(self, conn, "pong {}", Visible(token),);
            }
            Command::Ping(None) => notice!(self, conn, "pong"),
            Command::Register(password) => self.account_command(conn, Asked::Register(password)),
            Command::Identify { account, password } => {
                self.account_command(conn, Asked::Identify { account, password });
            }
            Command::Logout => self.account_command(conn, Asked::Logout),
            Command::Kick { nick, reason } => self.kick(conn, None, nick, reason),
            Command::Op { nick, on } => {
                self.set_status(conn, None, nick, Status::Operator, on, None);
            }
            Command::Mute { nick, on, duration } => {
                self.set_status(conn, None, nick, Status::Muted, on, duration);
            }
            Command::Ban {
                mask,
                on,
                duration,
                reason,
            } => self.set_ban(conn, None, BanList::Bans, mask, on, duration, reason),
            Command::Password { old, new } => {
                self.account_command(conn, Asked::Password { old, new });
            }
            Command::Quit(reason) => {
                notice!(self, conn, "Goodbye!");
                match reason {
                    Some(reason) => self.depart(conn, &format_args!("quit: {}", Visible(reason))),
                    None => self.depart(conn, &CloseReason::Quit),
                }
                self.out.close(conn, CloseReason::Quit);
            }
        }
    }

    pub(crate) fn nick(&mut self, conn: ConnectionId, wanted: &str) {
        let style = self.style;
        let nick = match Nickname::new(wanted) {
            Ok(nick) => nick,
            Err(error) => {
                let old = style.name(self.roster.name(conn));
                return error!(
                    self,
                    conn,
                    "\"{}\" is not a valid nickname: {error}; you are still {old}",
                    Visible(wanted),
                );
            }
        };
        match self.roster.find(nick.as_str()) {
            Some(holder) if holder != conn => return self.nick_taken(conn, &nick),
            _ => {}
        }
        if let Name::Nick(current) = self.roster.name(conn)
            && current.as_str() == nick.as_str()
        {
            return notice!(self, conn, "You are already {nick}.");
        }
        match self.wish_nick(conn, &nick) {
            Wish::Now => self.rename(conn, nick, true),
            Wish::Claimed => {}
            Wish::ClaimedHere => self.nick_taken(conn, &nick),
            Wish::Waiting => error!(
                self,
                conn,
                "your last nickname is still being checked with the other servers; try again in a moment"
            ),
        }
    }

    /// `/msg NAME TEXT` (and the JSON dialect's `client`). `/msg NickServ ...` is the
    /// server's own account service, as on IRC: what it carries (passwords) is never relayed.
    pub(crate) fn private(&mut self, conn: ConnectionId, to: &str, text: &str) {
        if to.eq_ignore_ascii_case("NickServ") {
            return self.nickserv(conn, text);
        }
        let Some(target) = self.roster.find(to) else {
            return error!(self, conn, "no one called {} is online", Visible(to),);
        };
        self.deliver(conn, target, LineKind::Line, text, ClientTags::NONE);
        self.tell_if_away(conn, target);
        if target != conn && !self.speaks_irc(conn) {
            let style = self.style;
            let start = self.out.mark();
            let _ = write!(
                self.out,
                "{} to {}: {}\r\n",
                style.private(),
                style.name(self.roster.name(target)),
                Visible(text)
            );
            self.out.send(start, Audience::one(conn));
        }
    }

    /// Tells `me` who is in `room`: the count, then up to [`MAX_LISTED_NAMES`] names sorted
    /// with nicknames first, chosen among the first [`MAX_LISTING_SCAN`] members and `me`.
    ///
    /// [`MAX_LISTING_SCAN`]: crate::MAX_LISTING_SCAN
    pub(crate) fn list(&mut self, me: ConnectionId, room: RoomId) {
        let style = self.style;
        let roster = &*self.roster;
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        // The first of the room's list, and the caller (found again among them: kept once).
        let looked_at = roster
            .members_of(room)
            .take(MAX_LISTING_SCAN)
            .filter(|&id| id != me);
        let members = core::iter::once(me)
            .filter(|&me| roster.in_room(me, room))
            .chain(looked_at);
        // The first names in sort order, and always the caller: a max-heap of the best ones
        // seen so far, whose worst is replaced when a better one comes (O(n log 100)).
        let mut best: heapless::BinaryHeap<_, heapless::binary_heap::Max, MAX_LISTED_NAMES> =
            heapless::BinaryHeap::new();
        for id in members {
            let ranked = ((id != me, sort_key(roster.name(id))), id);
            if best.len() < MAX_LISTED_NAMES {
                // Cannot fail: the heap is not full.
                let _ = best.push(ranked);
            } else if best.peek().is_some_and(|worst| ranked < *worst) {
                best.pop();
                let _ = best.push(ranked);
            }
        }
        let mut shown: heapless::Vec<ConnectionId, MAX_LISTED_NAMES> =
            best.iter().map(|&(_, id)| id).collect();
        shown.sort_unstable_by_key(|id| sort_key(roster.name(*id)));
        let start = self.out.mark();
        let _ = write!(
            self.out,
            "{} {} ({}):",
            style.notice(),
            info.name,
            info.members
        );
        for (position, &id) in shown.iter().enumerate() {
            let separator = if position == 0 { " " } else { ", " };
            let you = if id == me { " (you)" } else { "" };
            let lagging = if roster.get(id).is_some_and(|slot| slot.connection.lagging) {
                " (lagging)"
            } else {
                ""
            };
            let _ = write!(
                self.out,
                "{separator}{}{you}{lagging}",
                style.name(roster.name(id))
            );
        }
        let hidden = info.members as usize - shown.len();
        if hidden > 0 {
            let _ = write!(self.out, ", and {hidden} more");
        }
        let _ = self.out.write_str("\r\n");
        self.out.send(start, Audience::one(me));
    }

    pub(crate) fn not_in_a_room(&mut self, conn: ConnectionId) {
        error!(
            self,
            conn,
            "you are in no room; /join {} to talk",
            crate::state::rooms::LOBBY
        );
    }

    /// A line to the current room: plain to those talking there, with the room's name to
    /// members whose current room is another one.
    pub(crate) fn say(&mut self, conn: ConnectionId, kind: LineKind, text: &str) {
        let Some(room) = self.current(conn) else {
            return self.not_in_a_room(conn);
        };
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        // With lines relayed, people on other servers may hear it.
        if info.members == 1 && !self.relayed {
            notice!(self, conn, "No one else is in {} to hear that.", info.name);
        }
        self.speak(conn, room, kind, text, ClientTags::NONE);
    }

    /// Enters `name` (creating it) and makes it the current room.
    pub(crate) fn join(&mut self, conn: ConnectionId, name: &str, key: Option<&str>) {
        let room = match self.admit(conn, name, Entry::Asked(key)) {
            Ok(Admitted::Entered(room)) => room,
            Ok(Admitted::AlreadyIn(room)) => {
                self.set_current(conn, Some(room));
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                return notice!(self, conn, "Now talking in {}.", info.name);
            }
            Err(Refused::Invalid(error)) => {
                return error!(
                    self,
                    conn,
                    "\"{}\" is not a valid room name: {error}",
                    Visible(name),
                );
            }
            Err(Refused::TooManyRooms) => {
                return error!(
                    self,
                    conn,
                    "there are already {} rooms, the most there can be; /rooms lists them",
                    crate::state::rooms::MAX_ROOMS
                );
            }
            Err(Refused::InTooMany) => {
                return error!(
                    self,
                    conn,
                    "you are in {MAX_ROOMS_PER_PERSON} rooms, the most one can be in; /part one first"
                );
            }
            Err(Refused::Full(Some(room), members)) => {
                return error!(self, conn, "{room} is full ({members} people)");
            }
            Err(Refused::Full(None, _)) => return error!(self, conn, "that room is full"),
            Err(Refused::Banned(room)) => {
                return error!(self, conn, "you are banned from {room}");
            }
            Err(Refused::InviteOnly(room)) => {
                return error!(
                    self,
                    conn, "{room} lets in only whom its operators invite (/invite)"
                );
            }
            Err(Refused::BadKey(room)) => {
                return error!(self, conn, "{room} has a key: /join {room} KEY");
            }
        };
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        notice!(self, conn, "You are now talking in {}.", info.name);
        if !info.topic.is_empty() {
            notice!(
                self,
                conn,
                "Topic of {}: {}",
                info.name,
                Visible(info.topic),
            );
        }
        self.list(conn, room);
        self.replay(conn, room);
    }

    /// Asks for what was said in `room` last, to show a newcomer.
    pub(crate) fn replay(&mut self, conn: ConnectionId, room: RoomId) {
        let lines = self.replay;
        self.ask_history(conn, room, HistoryRange::Latest, lines, Purpose::Replay);
    }

    /// `/history [N]`: the current room's last N lines (default [`DEFAULT_HISTORY_COMMAND`]).
    pub(crate) fn history_command(&mut self, conn: ConnectionId, lines: Option<usize>) {
        let Some(room) = self.current(conn) else {
            return error!(self, conn, "you are not in a room; /join one first");
        };
        let lines = lines.unwrap_or(DEFAULT_HISTORY_COMMAND);
        if lines == 0 || lines > MAX_HISTORY_LINES {
            return error!(self, conn, "/history takes 1 to {MAX_HISTORY_LINES} lines");
        }
        self.ask_history(conn, room, HistoryRange::Latest, lines, Purpose::Command);
    }

    /// One part of a history answer, for a plain-text or JSON reader: each line with how long
    /// ago it was said, under a heading.
    pub(crate) fn text_history(&mut self, request: &HistoryRequest, answer: HistoryAnswer<'_>) {
        // Only IRC's CHATHISTORY asks for private messages.
        let (conn, Some(room)) = (request.conn(), request.room()) else {
            return;
        };
        match (answer, request.purpose()) {
            (HistoryAnswer::Begin { lines: 0 }, Purpose::Replay) => {}
            (HistoryAnswer::Begin { lines: 0 }, Purpose::Command | Purpose::ChatHistory) => {
                notice!(self, conn, "Nothing has been said in {room} yet.");
            }
            (HistoryAnswer::Begin { .. }, Purpose::Replay) => {
                notice!(self, conn, "Earlier in {room}:");
            }
            (HistoryAnswer::Begin { lines: 1 }, Purpose::Command | Purpose::ChatHistory) => {
                notice!(self, conn, "The last line of {room}:");
            }
            (HistoryAnswer::Begin { lines }, Purpose::Command | Purpose::ChatHistory) => {
                notice!(self, conn, "The last {lines} lines of {room}:");
            }
            (HistoryAnswer::Line(line), _) => {
                let (style, now) = (self.style, self.now);
                // The join replay says how long ago, within a day; `/history`, and anything
                // older, the date and time.
                let age = now.saturating_duration_since(line.at);
                let when = WhenSaid(
                    (request.purpose() == Purpose::Replay && age.as_secs() < 86_400)
                        .then_some(Ago(age)),
                    line.at,
                );
                let name = style.former_name(line.nick);
                let text = Visible(line.text);
                let start = self.out.mark();
                let _ = match line.kind {
                    LineKind::Line | LineKind::Notice => {
                        write!(self.out, "[{when}] {name}: {text}\r\n")
                    }
                    LineKind::Action => write!(self.out, "[{when}] * {name} {text}\r\n"),
                };
                self.out.send(start, Audience::one(conn));
            }
            (HistoryAnswer::End, Purpose::Command | Purpose::ChatHistory) => {
                notice!(self, conn, "End of history of {room}.");
            }
            (HistoryAnswer::End, Purpose::Replay) => {}
            (HistoryAnswer::Unavailable, _) => {
                error!(self, conn, "the history of {room} cannot be read just now");
            }
        }
    }

    /// Leaves `room` (the current one if `None`), telling its members.
    pub(crate) fn part(&mut self, conn: ConnectionId, room: Option<&str>, reason: Option<&str>) {
        let room = match room {
            Some(name) => self
                .rooms
                .find(name)
                .filter(|&room| self.roster.in_room(conn, room)),
            None => self.current(conn),
        };
        let Some(room) = room else {
            return error!(self, conn, "you are not in that room");
        };
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return;
        };
        self.leave(conn, room, reason);
        notice!(self, conn, "You left {name}.");
        match self.current(conn).and_then(|room| self.rooms.get(room)) {
            Some(now) => notice!(self, conn, "Now talking in {}.", now.name),
            None => notice!(
                self,
                conn,
                "You are in no room now; /join {} to talk again.",
                crate::state::rooms::LOBBY
            ),
        }
    }

    /// Every room, with its member count and the start of its topic.
    pub(crate) fn list_rooms(&mut self, conn: ConnectionId) {
        /// Topics are cut to this many characters, and at most this many bytes, here, so a
        /// listing of [`MAX_LISTED_ROOMS`] rooms fits in one step's output.
        const TOPIC_PREVIEW_CHARS: usize = 60;
        const TOPIC_PREVIEW_BYTES: usize = 120;
        let notice = self.style.notice();
        let start = self.out.mark();
        let _ = write!(self.out, "{notice} Rooms ({}):\r\n", self.rooms.count());
        // A secret room (IRC's `+s`) is listed only to those in it.
        let roster = &*self.roster;
        let shown = self
            .rooms
            .iter()
            .filter(|(room, info)| !info.secret || roster.in_room(conn, *room));
        for (room, info) in shown.take(MAX_LISTED_ROOMS) {
            let here = if self.roster.in_room(conn, room) {
                ", you are in it"
            } else {
                ""
            };
            let _ = write!(
                self.out,
                "{notice}   {} ({}{here})",
                info.name, info.members
            );
            if !info.topic.is_empty() {
                let mut end = info
                    .topic
                    .char_indices()
                    .nth(TOPIC_PREVIEW_CHARS)
                    .map_or(info.topic.len(), |(at, _)| at)
                    .min(TOPIC_PREVIEW_BYTES);
                while !info.topic.is_char_boundary(end) {
                    end -= 1;
                }
                let more = if end < info.topic.len() { "..." } else { "" };
                let _ = write!(self.out, " {}{more}", Visible(&info.topic[..end]));
            }
            let _ = self.out.write_str("\r\n");
        }
        let hidden = self.rooms.count().saturating_sub(MAX_LISTED_ROOMS);
        if hidden > 0 {
            let _ = write!(
                self.out,
                "{notice}   and {hidden} more; /join #ROOM to enter one by name\r\n"
            );
        }
        self.out.send(start, Audience::one(conn));
    }

    /// Shows the current room's topic, or sets it and tells the room.
    pub(crate) fn topic(&mut self, conn: ConnectionId, topic: Option<&str>) {
        let Some(room) = self.current(conn) else {
            return self.not_in_a_room(conn);
        };
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let Some(topic) = topic else {
            if info.topic.is_empty() {
                notice!(self, conn, "{} has no topic.", info.name);
            } else {
                let (name, topic) = (&info.name, Visible(info.topic));
                notice!(self, conn, "Topic of {name}: {topic}");
            }
            return;
        };
        if topic.len() > MAX_TOPIC_BYTES {
            return error!(
                self,
                conn, "a topic has at most {MAX_TOPIC_BYTES} bytes; it was not changed"
            );
        }
        // `/topic -` clears it: a room with a topic stays while empty, so there must be a way.
        let topic = if topic == "-" { "" } else { topic };
        self.set_topic(conn, room, topic);
    }

    pub(crate) fn help(&mut self, conn: ConnectionId) {
        let notice = self.style.notice();
        let start = self.out.mark();
        for line in HELP {
            let _ = write!(self.out, "{notice} {line}\r\n");
        }
        self.out.send(start, Audience::one(conn));
    }
}

/// Nicknames first, ASCII case aside (other letters in the order of their code points),
/// then anonymous people by number.
fn sort_key(name: Name<'_>) -> (bool, [u8; crate::state::roster::MAX_NICK_BYTES], u32) {
    match name {
        Name::Nick(nick) => {
            let mut key = [0; crate::state::roster::MAX_NICK_BYTES];
            for (k, b) in key.iter_mut().zip(nick.as_str().bytes()) {
                *k = b.to_ascii_lowercase();
            }
            (false, key, 0)
        }
        Name::Anonymous(number) => (true, [0; crate::state::roster::MAX_NICK_BYTES], number),
    }
}

/// A speaker's name as text users see it, in the colour that is always theirs.
pub(crate) enum SpeakerName<'a> {
    Listed(Painted<Name<'a>>),
    Unlisted(Painted<Visible<'a>>),
    /// `anonymous-N` of another server, with that server's name: every server numbers its
    /// own, so the name alone could be someone else's here.
    AnonymousElsewhere(Painted<Visible<'a>>, Visible<'a>),
}

impl fmt::Display for SpeakerName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listed(name) => name.fmt(f),
            Self::Unlisted(name) => name.fmt(f),
            Self::AnonymousElsewhere(name, node) => write!(f, "{name}@{node}"),
        }
    }
}

/// `who`'s name for text users, on the server called `here`.
pub(crate) fn speaker_name<'s, S: crate::Storage>(
    style: Style,
    roster: &'s Roster<S>,
    here: &str,
    who: Speaker<'s>,
) -> SpeakerName<'s> {
    match who {
        Speaker::Listed(conn) => SpeakerName::Listed(style.name(roster.name(conn))),
        Speaker::Unlisted { nick, node }
            if node != here && nick.starts_with(crate::state::roster::ANONYMOUS) =>
        {
            SpeakerName::AnonymousElsewhere(style.former_name(nick), Visible(node))
        }
        Speaker::Unlisted { nick, .. } => SpeakerName::Unlisted(style.former_name(nick)),
    }
}

/// When a line was said, as a replay shows it: how long ago, or the date and time.
struct WhenSaid(Option<Ago>, Instant);

impl fmt::Display for WhenSaid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(ago) => ago.fmt(f),
            None => crate::time::WallTime(self.1).fmt(f),
        }
    }
}

/// How many lines `/history` shows when not told.
const DEFAULT_HISTORY_COMMAND: usize = 20;

const HELP: [&str; 23] = [
    "Commands:",
    "  /nick NAME        choose or change your nickname (1-16 letters and digits of any script, _-[]\\^{}|`)",
    "  /msg NAME TEXT    send TEXT to NAME alone",
    "  /me TEXT          an action: * you TEXT",
    "  /join #ROOM [KEY] enter a room (made if new) and talk there; KEY if it has one",
    "  /part [#ROOM] [REASON]  leave a room (the current one if none is named)",
    "  /rooms            every room, with its size and topic",
    "  /topic [TEXT]     show or set the current room's topic (- clears it)",
    "  /list             who is in your room (also /who, /names)",
    "  /history [N]      the last N lines said in your room (20 if not given, at most 500)",
    "  /help             this list",
    "  /quit [REASON]    leave",
    "  /ping [TOKEN]     the server answers: pong TOKEN",
    "  /register PASSWORD  keep your nickname as an account (8 or more characters, no spaces)",
    "  /identify PASSWORD  prove the nickname is yours (/login NAME PASSWORD for another name)",
    "  /logout, /password OLD NEW  stop being identified; change your password",
    "  /kick NAME [REASON], /mute NAME [DURATION], /unmute NAME, /ban MASK [DURATION] [REASON], /unban MASK, /op NAME, /deop NAME  for a room's operators (whoever made it); DURATION is 30s, 10m, 2h, 7d or 4w; MASK a nickname, nick!user@host or $a:ACCOUNT",
    "  /mode [#ROOM] [+-iklmnt VALUES]  show or set a room's modes: +i invited only, +k KEY, +l MOST, +m operators and voiced talk, +n members only talk (on in a new room; -n lets IRC users outside send lines), +t operators set the topic",
    "  /invite NAME [#ROOM]  let NAME in once, past +i, +k, +l and bans",
    "  /register-room, /unregister-room  register your room to your account: it keeps its modes and bans, and you get operator when you join",
    "  /serverban MASK [DURATION] [REASON], /serverunban MASK, /serverbans  for server operators: MASK may also be an address or a network (198.51.100.0/24)",
    "Any other line goes to your room. To send a line starting with /, start it with //.",
    "Lines are at most 512 bytes of UTF-8 without control characters.",
];

impl<S: crate::Storage> Step<'_, S> {
    /// The lines that tell plain-text and JSON users of `happened` (the original client reads
    /// the same lines as a terminal).
    pub(crate) fn render_text(&mut self, happened: &Happened<'_>) {
        let style = self.style;
        let text_users = |audience: Audience| audience.speaking(Speaks::Text);
        match *happened {
            // The setter of a server ban is told by itself; whom it puts out, as they go.
            Happened::Arrived { .. }
            | Happened::Away { .. }
            | Happened::AccountSet { .. }
            | Happened::ServerBanSet { .. }
            | Happened::RoomCreated { .. }
            | Happened::RoomRemoved { .. } => {}
            Happened::Kicked {
                who,
                by,
                room,
                reason,
            } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (me, kicker) = (
                    style.name(self.roster.name(who)),
                    speaker_name(style, self.roster, self.server_name, by),
                );
                let why = ReasonText(reason);
                let name = info.name;
                announce!(
                    self,
                    text_users(Audience::room_but(room, who)),
                    "{me} was put out of {name} by {kicker}{why}"
                );
                if !self.speaks_irc(who) {
                    announce!(
                        self,
                        Audience::one(who),
                        "You were put out of {name} by {kicker}{why}"
                    );
                }
            }
            Happened::RoomModeSet { by, room, mode, on } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (giver, name) = (style.name(self.roster.name(by)), info.name);
                let audience = text_users(Audience::room(room));
                use crate::state::rooms::RoomMode;
                match (mode, on) {
                    (RoomMode::TopicLocked, true) => announce!(
                        self,
                        audience,
                        "{giver} let only operators set the topic of {name}"
                    ),
                    (RoomMode::TopicLocked, false) => {
                        announce!(self, audience, "{giver} let anyone in {name} set its topic");
                    }
                    (RoomMode::Moderated, true) => announce!(
                        self,
                        audience,
                        "{giver} let only operators and voiced people talk in {name}"
                    ),
                    (RoomMode::Moderated, false) => {
                        announce!(self, audience, "{giver} let everyone talk in {name}");
                    }
                    (RoomMode::InviteOnly, true) => announce!(
                        self,
                        audience,
                        "{giver} let only invited people into {name} (/invite NAME)"
                    ),
                    (RoomMode::InviteOnly, false) => {
                        announce!(self, audience, "{giver} let anyone into {name}");
                    }
                    (RoomMode::Secret, true) => announce!(
                        self,
                        audience,
                        "{giver} made {name} secret: it is listed only to those in it"
                    ),
                    (RoomMode::Secret, false) => {
                        announce!(self, audience, "{giver} let {name} be listed to everyone");
                    }
                    (RoomMode::NoExternal, true) => announce!(
                        self,
                        audience,
                        "{giver} let only people in {name} talk in it"
                    ),
                    (RoomMode::NoExternal, false) => announce!(
                        self,
                        audience,
                        "{giver} let people outside {name} send it lines (IRC's -n)"
                    ),
                }
            }
            Happened::RoomRegistered { by, room, founder } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (giver, name) = (style.name(self.roster.name(by)), info.name);
                let audience = text_users(Audience::room(room));
                match founder {
                    Some(founder) => announce!(
                        self,
                        audience,
                        "{giver} registered {name} to the account {founder}: it keeps its \
                         modes and bans when empty and across restarts"
                    ),
                    None => announce!(self, audience, "{giver} unregistered {name}"),
                }
            }
            Happened::RoomParamSet { by, room, param } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (giver, name) = (style.name(self.roster.name(by)), info.name);
                let audience = text_users(Audience::room(room));
                match param {
                    RoomParam::Key(Some(key)) => announce!(
                        self,
                        audience,
                        "{giver} locked {name} with a key: /join {name} {key}"
                    ),
                    RoomParam::Key(None) => {
                        announce!(self, audience, "{giver} took the key off {name}");
                    }
                    RoomParam::Limit(Some(limit)) => announce!(
                        self,
                        audience,
                        "{giver} let at most {limit} people into {name}"
                    ),
                    RoomParam::Limit(None) => {
                        announce!(self, audience, "{giver} lifted the limit on {name}");
                    }
                }
            }
            Happened::BanSet {
                by,
                room,
                list,
                mask,
                on,
                duration,
                reason,
            } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (giver, name, mask) =
                    (style.name(self.roster.name(by)), info.name, Visible(mask));
                let audience = text_users(Audience::room(room));
                let (until, why) = (For(duration), ReasonText(reason));
                match (list, on) {
                    (BanList::Bans, true) => announce!(
                        self,
                        audience,
                        "{giver} banned {mask} from {name}{until}{why}"
                    ),
                    (BanList::Exceptions, true) => announce!(
                        self,
                        audience,
                        "{giver} let {mask} into {name} despite its bans{until}{why}"
                    ),
                    (BanList::InviteExceptions, true) => announce!(
                        self,
                        audience,
                        "{giver} let {mask} into {name} uninvited{until}{why}"
                    ),
                    (list, false) => {
                        announce!(
                            self,
                            audience,
                            "{giver} lifted the {list} on {mask} in {name}"
                        );
                    }
                }
            }
            Happened::StatusSet {
                who,
                by,
                room,
                status,
                on,
                duration,
            } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (me, giver) = (
                    style.name(self.roster.name(who)),
                    speaker_name(style, self.roster, self.server_name, by),
                );
                let name = info.name;
                let audience = text_users(Audience::room(room));
                use crate::state::members::Status;
                match (status, on) {
                    (Status::Operator, true) => {
                        announce!(self, audience, "{giver} made {me} an operator of {name}");
                    }
                    (Status::Operator, false) => {
                        announce!(self, audience, "{giver} took operator from {me} in {name}");
                    }
                    (Status::Voice, true) => {
                        announce!(self, audience, "{giver} gave {me} a voice in {name}");
                    }
                    (Status::Voice, false) => {
                        announce!(self, audience, "{giver} took {me}'s voice in {name}");
                    }
                    (Status::Muted, true) => {
                        let until = For(duration);
                        announce!(self, audience, "{giver} muted {me} in {name}{until}");
                    }
                    (Status::Muted, false) => {
                        announce!(self, audience, "{giver} unmuted {me} in {name}");
                    }
                }
            }
            Happened::Joined { who, room } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                if info.members <= self.announce_limit {
                    let me = style.name(self.roster.name(who));
                    let (name, members) = (info.name, info.members);
                    announce!(
                        self,
                        text_users(Audience::room_but(room, who)),
                        "{me} joined {name} ({members} here)"
                    );
                }
            }
            Happened::Parted { who, room, reason } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                if info.members <= self.announce_limit {
                    let me = style.name(self.roster.name(who));
                    let audience = text_users(Audience::room_but(room, who));
                    match reason {
                        Some(reason) => {
                            let reason = Visible(reason);
                            announce!(self, audience, "{me} left {} ({reason})", info.name);
                        }
                        None => announce!(self, audience, "{me} left {}", info.name),
                    }
                }
            }
            Happened::Said {
                who,
                room,
                kind: LineKind::Notice,
                text,
                ..
            } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let me = speaker_name(style, self.roster, self.server_name, who);
                let start = self.out.mark();
                let _ = write!(self.out, "[{}] -{me}- {}\r\n", info.name, Visible(text));
                self.out.send(start, text_users(who.others_in(room)));
            }
            Happened::Said {
                who,
                room,
                kind,
                text,
                ..
            } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let me = speaker_name(style, self.roster, self.server_name, who);
                let everyone = text_users(who.others_in(room));
                let (text, action) = (Visible(text), kind == LineKind::Action);
                let start = self.out.mark();
                let _ = if action {
                    write!(self.out, "* {me} {text}\r\n")
                } else {
                    write!(self.out, "{me}: {text}\r\n")
                };
                self.out.send(start, everyone.viewing(View::Current(room)));
                // Those in the room who talk in another see where it was said.
                if info.members > info.current_here {
                    let start = self.out.mark();
                    let _ = if action {
                        write!(self.out, "[{}] * {me} {text}\r\n", info.name)
                    } else {
                        write!(self.out, "[{}] {me}: {text}\r\n", info.name)
                    };
                    self.out
                        .send(start, everyone.viewing(View::NotCurrent(room)));
                }
            }
            Happened::Private {
                from,
                to,
                kind,
                text,
                ..
            } => {
                if self.speaks_irc(to) {
                    return;
                }
                let (marker, me) = (
                    style.private(),
                    speaker_name(style, self.roster, self.server_name, from),
                );
                let start = self.out.mark();
                let _ = match kind {
                    LineKind::Action => {
                        write!(self.out, "{marker} * {me} {}\r\n", Visible(text))
                    }
                    LineKind::Line | LineKind::Notice => {
                        write!(self.out, "{marker} {me}: {}\r\n", Visible(text))
                    }
                };
                self.out.send(start, from.private_to(to));
            }
            Happened::TopicSet {
                who, room, topic, ..
            } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let me = speaker_name(style, self.roster, self.server_name, who);
                if topic.is_empty() {
                    announce!(
                        self,
                        text_users(Audience::room(room)),
                        "{me} cleared the topic of {}",
                        info.name
                    );
                } else {
                    announce!(
                        self,
                        text_users(Audience::room(room)),
                        "{me} set the topic of {}: {}",
                        info.name,
                        Visible(topic)
                    );
                }
            }
            Happened::Renamed {
                who,
                new,
                rooms,
                tell_self,
            } => {
                let (old, new) = (style.name(self.roster.name(who)), style.name(new));
                if rooms.len != 0 {
                    let others = text_users(Audience::rooms_but(rooms, who));
                    announce!(self, others, "{old} is now known as {new}");
                }
                if tell_self && !self.speaks_irc(who) {
                    notice!(self, who, "You are now known as {new}.");
                }
            }
            Happened::Departed {
                who,
                why,
                announced,
                ..
            } => {
                if announced.len != 0 {
                    let me = style.name(self.roster.name(who));
                    let others = text_users(Audience::rooms_but(announced, who));
                    announce!(self, others, "{me} left ({why})");
                }
            }
        }
    }
}
