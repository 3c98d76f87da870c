//! Events as IRC clients see them: JOIN, PART, PRIVMSG, NOTICE, TOPIC, NICK and QUIT from the
//! person's `nick!user@host`.

use core::fmt::{self, Write};

use super::{ClientTags, IrcReason, IrcText};
use crate::dialect::text::For;
use crate::dialect::text::Visible;
use crate::dialect::{Happened, RoomParam, Speaker, Step};
use crate::event::LineKind;
use crate::output::{Audience, Speaks};
use crate::state::connection::Caps;
use crate::time::{Instant, Timestamp};

/// The verb a kind of line goes out as.
pub(crate) fn verb(kind: LineKind) -> &'static str {
    match kind {
        LineKind::Notice => "NOTICE",
        LineKind::Line | LineKind::Action => "PRIVMSG",
    }
}

/// The `nick!user@host` of whoever said a line: someone listed, or someone on another server
/// known only by the line, shown as `nick!remote@NODE`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SpeakerPrefix<'a> {
    Listed(super::Prefix<'a>),
    Unlisted { nick: &'a str, node: &'a str },
}

impl fmt::Display for SpeakerPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listed(prefix) => prefix.fmt(f),
            Self::Unlisted { nick, node } => write!(f, "{nick}!remote@{node}"),
        }
    }
}

/// The nickname of whoever did something: someone listed, or someone on another server known
/// only by name.
#[derive(Clone, Copy, Debug)]
enum SpeakerNick<'a> {
    Listed(crate::state::roster::Name<'a>),
    Unlisted(&'a str),
}

impl fmt::Display for SpeakerNick<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listed(name) => name.fmt(f),
            Self::Unlisted(nick) => Visible(nick).fmt(f),
        }
    }
}

/// `who`'s nickname.
fn speaker_nick<'s, S: crate::Storage>(
    roster: &'s crate::state::roster::Roster<S>,
    who: Speaker<'s>,
) -> SpeakerNick<'s> {
    match who {
        Speaker::Listed(conn) => SpeakerNick::Listed(roster.name(conn)),
        Speaker::Unlisted { nick, .. } => SpeakerNick::Unlisted(nick),
    }
}

/// `who`'s `nick!user@host`.
pub(crate) fn speaker_prefix<'s, S: crate::Storage>(
    roster: &'s crate::state::roster::Roster<S>,
    who: Speaker<'s>,
) -> SpeakerPrefix<'s> {
    match who {
        Speaker::Listed(conn) => SpeakerPrefix::Listed(roster.prefix(conn)),
        Speaker::Unlisted { nick, node } => SpeakerPrefix::Unlisted { nick, node },
    }
}

/// Queues a line from `who` (a listed connection) for `audience` (not yet narrowed to a
/// dialect): to the IRC clients that read the server's tags, with `@time=...;account=NAME` if
/// `who` is identified (`account-tag`), to the others without; one line for all when `who` is
/// not identified, or no client reads tags.
macro_rules! irc_by {
    ($hub:ident, $who:expr, $audience:expr, $($arg:tt)*) => {{
        let account = match $hub.roster.tagged_count() {
            0 => None,
            _ => sender_account($hub.roster, Speaker::Listed($who)),
        };
        match account {
            Some(account) => {
                let tags = Tags {
                    at: $hub.now,
                    msgid: None,
                    account: Some(account),
                };
                irc!($hub, $audience.speaking(Speaks::IrcPlain), $($arg)*);
                let start = $hub.out.mark();
                let _ = write!($hub.out, "@{tags} ");
                let _ = write!($hub.out, $($arg)*);
                let _ = $hub.out.write_str("\r\n");
                $hub.out.send(start, $audience.speaking(Speaks::IrcTagged));
            }
            None => irc!($hub, $audience.speaking(Speaks::Irc), $($arg)*),
        }
    }};
}

/// The account `who` is identified as, if any: IRCv3's `account` tag (`account-tag`).
pub(crate) fn sender_account<'s, S: crate::Storage>(
    roster: &'s crate::state::roster::Roster<S>,
    who: Speaker<'_>,
) -> Option<&'s str> {
    match who {
        Speaker::Listed(conn) => roster
            .account(conn)
            .map(crate::state::nickname::Nickname::as_str),
        Speaker::Unlisted { .. } => None,
    }
}

/// A line's IRCv3 tags, without the `@` and the space: `time=...;msgid=...;account=...`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tags<'a> {
    pub(crate) at: Instant,
    /// The line's sequence number, for room lines.
    pub(crate) msgid: Option<u64>,
    /// The account its sender is identified as (`account-tag`).
    pub(crate) account: Option<&'a str>,
}

impl fmt::Display for Tags<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "time={}", Timestamp(self.at))?;
        if let Some(seq) = self.msgid {
            write!(f, ";msgid={seq}")?;
        }
        if let Some(account) = self.account {
            // An account is a nickname: of the characters a tag value escapes, only `\` may
            // be in one; the others are escaped all the same.
            f.write_str(";account=")?;
            for c in account.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    ';' => f.write_str("\\:")?,
                    ' ' => f.write_str("\\s")?,
                    '\r' => f.write_str("\\r")?,
                    '\n' => f.write_str("\\n")?,
                    c => f.write_char(c)?,
                }
            }
        }
        Ok(())
    }
}

/// Tags as they start a line (`@tags `), or nothing for a client that reads none.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shown<'a>(pub(crate) Option<Tags<'a>>, pub(crate) ClientTags<'a>);

impl Shown<'_> {
    /// The tags `caps` reads of a line's: none, the server's, or the sender's too.
    pub(crate) fn to<'a>(caps: Caps, tags: Tags<'a>, client: ClientTags<'a>) -> Shown<'a> {
        let client = if caps.has(Caps::MESSAGE_TAGS) {
            client
        } else {
            ClientTags::NONE
        };
        Shown(caps.tagged().then_some(tags), client)
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(tags) => write!(f, "@{tags}{} ", self.1),
            None => Ok(()),
        }
    }
}

impl<S: crate::Storage> Step<'_, S> {
    /// The lines that tell IRC clients of `happened`.
    pub(crate) fn render_irc(&mut self, happened: &Happened<'_>) {
        match *happened {
            Happened::AccountSet { who, account } => {
                // To those who share a room with `who` and asked (`account-notify`), and to
                // its watchers who share none (`extended-monitor`).
                let rooms = self.out.room_set(self.roster.rooms_of(who));
                let prefix = self.roster.prefix(who);
                let account = account.unwrap_or("*");
                if rooms.len != 0 {
                    let others = Audience::rooms_but(rooms, who)
                        .speaking(Speaks::IrcWith(Caps::ACCOUNT_NOTIFY));
                    irc!(self, others, ":{prefix} ACCOUNT {account}");
                }
                for watcher in self.monitoring(who, Caps::ACCOUNT_NOTIFY) {
                    irc!(self, Audience::one(watcher), ":{prefix} ACCOUNT {account}");
                }
            }
            Happened::Away { who, message } => {
                // To those who share a room with `who` and asked (`away-notify`).
                let rooms = self.out.room_set(self.roster.rooms_of(who));
                if rooms.len != 0 {
                    let others = Audience::rooms_but(rooms, who)
                        .speaking(Speaks::IrcWith(Caps::AWAY_NOTIFY));
                    let prefix = self.roster.prefix(who);
                    match message {
                        Some(message) => {
                            irc!(self, others, ":{prefix} AWAY :{}", Visible(message));
                        }
                        None => irc!(self, others, ":{prefix} AWAY"),
                    }
                }
                // And to its watchers who share no room with it (`extended-monitor`).
                let prefix = self.roster.prefix(who);
                for watcher in self.monitoring(who, Caps::AWAY_NOTIFY) {
                    let to = Audience::one(watcher);
                    match message {
                        Some(message) => irc!(self, to, ":{prefix} AWAY :{}", Visible(message)),
                        None => irc!(self, to, ":{prefix} AWAY"),
                    }
                }
            }
            // The setter of a server ban is told by itself; whom it puts out, as they go.
            Happened::Arrived { .. }
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
                let (prefix, name) = (speaker_prefix(self.roster, by), info.name);
                let target = self.roster.name(who);
                // Without a reason, the kicker's name, as IRC servers do.
                let kicker = speaker_nick(self.roster, by);
                // The others in the room, and `who` by itself: recipients are found when the
                // output is polled, and by then it is no longer a member.
                let others = Audience::room_but(room, who).speaking(Speaks::Irc);
                let told = |step: &Self| step.speaks_irc(who);
                for audience in [Some(others), told(self).then(|| Audience::one(who))]
                    .into_iter()
                    .flatten()
                {
                    match reason {
                        Some(reason) if !reason.is_empty() => irc!(
                            self,
                            audience,
                            ":{prefix} KICK {name} {target} :{}",
                            Visible(reason)
                        ),
                        _ => irc!(self, audience, ":{prefix} KICK {name} {target} :{kicker}"),
                    }
                }
            }
            Happened::RoomModeSet { by, room, mode, on } => {
                if self.batch_mode(by, room, on, mode.letter(), None) {
                    return;
                }
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (prefix, name) = (self.roster.prefix(by), info.name);
                let (sign, letter) = (if on { '+' } else { '-' }, mode.letter());
                let members = Audience::room(room).speaking(Speaks::Irc);
                irc!(self, members, ":{prefix} MODE {name} {sign}{letter}");
            }
            Happened::RoomRegistered { by, room, founder } => {
                if self.batch_mode(by, room, founder.is_some(), 'r', None) {
                    return;
                }
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (prefix, name) = (self.roster.prefix(by), info.name);
                let sign = if founder.is_some() { '+' } else { '-' };
                let members = Audience::room(room).speaking(Speaks::Irc);
                irc!(self, members, ":{prefix} MODE {name} {sign}r");
            }
            Happened::RoomParamSet { by, room, param } => {
                let mut limit = heapless::String::<10>::new();
                let batched = match param {
                    RoomParam::Key(key) => {
                        self.batch_mode(by, room, key.is_some(), 'k', Some(key.unwrap_or("*")))
                    }
                    RoomParam::Limit(Some(most)) => {
                        let _ = write!(limit, "{most}");
                        self.batch_mode(by, room, true, 'l', Some(&limit))
                    }
                    RoomParam::Limit(None) => self.batch_mode(by, room, false, 'l', None),
                };
                if batched {
                    return;
                }
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (prefix, name) = (self.roster.prefix(by), info.name);
                let members = Audience::room(room).speaking(Speaks::Irc);
                match param {
                    RoomParam::Key(Some(key)) => {
                        irc!(self, members, ":{prefix} MODE {name} +k {key}");
                    }
                    RoomParam::Key(None) => irc!(self, members, ":{prefix} MODE {name} -k *"),
                    RoomParam::Limit(Some(limit)) => {
                        irc!(self, members, ":{prefix} MODE {name} +l {limit}");
                    }
                    RoomParam::Limit(None) => irc!(self, members, ":{prefix} MODE {name} -l"),
                }
            }
            Happened::BanSet {
                by,
                room,
                list,
                mask,
                on,
                ..
            } => {
                if self.batch_mode(by, room, on, list.letter(), Some(mask)) {
                    return;
                }
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (prefix, name) = (self.roster.prefix(by), info.name);
                let sign = if on { '+' } else { '-' };
                let members = Audience::room(room).speaking(Speaks::Irc);
                irc!(
                    self,
                    members,
                    ":{prefix} MODE {name} {sign}{} {}",
                    list.letter(),
                    Visible(mask)
                );
            }
            Happened::StatusSet {
                who,
                by,
                room,
                status,
                on,
                duration,
            } => {
                let letter = match status {
                    crate::state::members::Status::Operator => Some('o'),
                    crate::state::members::Status::Voice => Some('v'),
                    crate::state::members::Status::Muted => None,
                };
                if let Some(letter) = letter {
                    let mut nick =
                        heapless::String::<{ crate::state::roster::MAX_NICK_BYTES + 16 }>::new();
                    let _ = write!(nick, "{}", self.roster.name(who));
                    // Only a MODE command here gathers its changes into one line.
                    if let Speaker::Listed(giver) = by
                        && self.batch_mode(giver, room, on, letter, Some(&nick))
                    {
                        return;
                    }
                }
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (prefix, name) = (speaker_prefix(self.roster, by), info.name);
                let (sign, target) = (if on { '+' } else { '-' }, self.roster.name(who));
                let members = Audience::room(room).speaking(Speaks::Irc);
                let (server, giver) = (self.server_name, speaker_nick(self.roster, by));
                match status {
                    crate::state::members::Status::Operator => {
                        irc!(self, members, ":{prefix} MODE {name} {sign}o {target}");
                    }
                    crate::state::members::Status::Voice => {
                        irc!(self, members, ":{prefix} MODE {name} {sign}v {target}");
                    }
                    // No IRC mode says it: a notice to the room does.
                    crate::state::members::Status::Muted => irc!(
                        self,
                        members,
                        ":{server} NOTICE {name} :*** {giver} {} {target}{}",
                        if on { "muted" } else { "unmuted" },
                        For(duration)
                    ),
                }
            }
            Happened::Joined { who, room } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (prefix, name) = (self.roster.prefix(who), info.name);
                irc_by!(
                    self,
                    who,
                    Audience::room_but(room, who),
                    ":{prefix} JOIN {name}"
                );
                if self.speaks_irc(who) {
                    irc!(self, Audience::one(who), ":{prefix} JOIN {name}");
                }
                // Someone away who joins is shown away to those who asked (`away-notify`).
                if let Some(away) = self.roster.away(who) {
                    let room = self.out.room_set(core::iter::once(room));
                    let others =
                        Audience::rooms_but(room, who).speaking(Speaks::IrcWith(Caps::AWAY_NOTIFY));
                    irc!(self, others, ":{prefix} AWAY :{}", Visible(away));
                }
            }
            Happened::Parted { who, room, reason } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (prefix, name, reason) =
                    (self.roster.prefix(who), info.name, IrcReason(reason));
                irc_by!(
                    self,
                    who,
                    Audience::room_but(room, who),
                    ":{prefix} PART {name}{reason}"
                );
                // To `who` by itself: recipients are found when the output is polled, and by
                // then it is no longer a member.
                if self.speaks_irc(who) {
                    irc!(self, Audience::one(who), ":{prefix} PART {name}{reason}");
                }
            }
            Happened::Said {
                who,
                room,
                kind,
                text,
                seq,
                at,
                tags: client,
            } => {
                // Only the speaker's own client may want its line echoed.
                let caps = who.listed().map(|conn| self.caps(conn)).unwrap_or_default();
                let echo = caps.has(Caps::ECHO_MESSAGE);
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let name = info.name;
                let prefix = speaker_prefix(self.roster, who);
                let verb = verb(kind);
                let body = IrcText(kind, text);
                let tags = Tags {
                    at,
                    msgid: Some(seq),
                    account: None,
                };
                let others = who.others_in(room);
                if self.roster.tagged_count() == 0 {
                    irc!(
                        self,
                        others.speaking(Speaks::Irc),
                        ":{prefix} {verb} {name} :{body}"
                    );
                } else {
                    irc!(
                        self,
                        others.speaking(Speaks::IrcPlain),
                        ":{prefix} {verb} {name} :{body}"
                    );
                    let tags = Tags {
                        account: sender_account(self.roster, who),
                        ..tags
                    };
                    // Client tags only to those who read them: then the server's tags alone
                    // go to the rest of the tagged.
                    let (server_tagged, client_tagged) = match client.is_empty() {
                        true => (Speaks::IrcTagged, None),
                        false => (Speaks::IrcServerTags, Some(Speaks::IrcClientTags)),
                    };
                    irc!(
                        self,
                        others.speaking(server_tagged),
                        "@{tags} :{prefix} {verb} {name} :{body}"
                    );
                    if let Some(client_tagged) = client_tagged {
                        irc!(
                            self,
                            others.speaking(client_tagged),
                            "@{tags}{client} :{prefix} {verb} {name} :{body}"
                        );
                    }
                }
                if let Some(conn) = who.listed().filter(|_| echo) {
                    let tags = Tags {
                        account: sender_account(self.roster, who),
                        ..tags
                    };
                    let tags = Shown::to(caps, tags, client);
                    irc!(
                        self,
                        Audience::one(conn),
                        "{tags}:{prefix} {verb} {name} :{body}"
                    );
                }
            }
            Happened::Private {
                from,
                to,
                kind,
                text,
                msgid,
                tags: client,
            } => {
                let (verb, body) = (verb(kind), IrcText(kind, text));
                let tags = Tags {
                    at: self.now,
                    msgid: Some(msgid),
                    account: sender_account(self.roster, from),
                };
                let prefix = speaker_prefix(self.roster, from);
                if self.speaks_irc(to) {
                    let shown = Shown::to(self.caps(to), tags, client);
                    irc!(
                        self,
                        from.private_to(to),
                        "{shown}:{prefix} {verb} {} :{body}",
                        self.roster.name(to),
                    );
                }
                if let Some(from) = from.listed()
                    && self.caps(from).has(Caps::ECHO_MESSAGE)
                {
                    let shown = Shown::to(self.caps(from), tags, client);
                    irc!(
                        self,
                        Audience::one(from),
                        "{shown}:{prefix} {verb} {} :{body}",
                        self.roster.name(to),
                    );
                }
            }
            Happened::TopicSet {
                who, room, topic, ..
            } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (prefix, name, topic) =
                    (speaker_prefix(self.roster, who), info.name, Visible(topic));
                irc!(
                    self,
                    who.others_in(room).speaking(Speaks::Irc),
                    ":{prefix} TOPIC {name} :{topic}"
                );
                // To `who` by itself, as the answer to its command.
                if let Some(who) = who.listed()
                    && self.speaks_irc(who)
                    && self.roster.in_room(who, room)
                {
                    irc!(self, Audience::one(who), ":{prefix} TOPIC {name} :{topic}");
                }
            }
            Happened::Renamed {
                who,
                new,
                rooms,
                tell_self,
            } => {
                let prefix = self.roster.prefix(who);
                if rooms.len != 0 {
                    irc_by!(
                        self,
                        who,
                        Audience::rooms_but(rooms, who),
                        ":{prefix} NICK :{new}"
                    );
                }
                // Registering, it is not told: the welcome tells it its name.
                if tell_self && self.speaks_irc(who) {
                    irc!(self, Audience::one(who), ":{prefix} NICK :{new}");
                }
            }
            Happened::Departed {
                who, why, rooms, ..
            } => {
                if rooms.len != 0 {
                    let prefix = self.roster.prefix(who);
                    irc_by!(
                        self,
                        who,
                        Audience::rooms_but(rooms, who),
                        ":{prefix} QUIT :{why}"
                    );
                }
            }
        }
    }
}
