//! Queries: WHO, WHOIS, WHOWAS, ISON, USERHOST.

use super::numeric::{
    ERR_NONICKNAMEGIVEN, ERR_NOSUCHNICK, ERR_WASNOSUCHNICK, RPL_AWAY, RPL_ENDOFWHO, RPL_ENDOFWHOIS,
    RPL_ENDOFWHOWAS, RPL_ISON, RPL_USERHOST, RPL_WHOISACCOUNT, RPL_WHOISCHANNELS,
    RPL_WHOISOPERATOR, RPL_WHOISSERVER, RPL_WHOISUSER, RPL_WHOREPLY, RPL_WHOWASUSER,
};
use core::fmt::Write;

use super::Step;
use crate::dialect::text::Visible;
use crate::output::Audience;
use crate::state::roster::{ConnectionId, Slot};
use crate::wire::irc::Message;

use super::*;
use crate::state::members::MAX_ROOMS_PER_PERSON;
use crate::state::rooms::RoomId;

/// IRCv3 WHOX: `WHO mask %fields[,token]` asks for `354` lines with these fields, always in
/// this order whatever the order asked.
const WHOX_FIELDS: &str = "tcuihsnfdlaor";

/// The fields a `WHO` asked for with WHOX, and its token (at most 3 digits, as WHOX has it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Whox {
    /// A bit per letter of [`WHOX_FIELDS`].
    fields: u16,
    token: [u8; 3],
    token_len: u8,
}

impl Whox {
    /// The WHOX request in `WHO`'s second parameter, if it is one (`%` first).
    pub(crate) fn of(param: Option<&str>) -> Option<Self> {
        let spec = param?.strip_prefix('%')?;
        let (letters, token) = spec.split_once(',').unwrap_or((spec, ""));
        let mut whox = Self {
            fields: 0,
            token: [b'0'; 3],
            token_len: 1,
        };
        for letter in letters.chars() {
            if let Some(at) = WHOX_FIELDS.find(letter) {
                whox.fields |= 1 << at;
            }
        }
        if (1..=3).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_digit()) {
            whox.token[..token.len()].copy_from_slice(token.as_bytes());
            // Cannot truncate: at most 3.
            whox.token_len = token.len() as u8;
        }
        Some(whox)
    }

    fn has(self, letter: char) -> bool {
        WHOX_FIELDS
            .find(letter)
            .is_some_and(|at| self.fields & (1 << at) != 0)
    }

    fn token(&self) -> &str {
        core::str::from_utf8(&self.token[..usize::from(self.token_len)]).unwrap_or("0")
    }
}

impl<S: crate::Storage> Step<'_, S> {
    /// One `354` line (WHOX) with the fields `whox` asks for, in WHOX's order; the real
    /// name, last, is a trailing parameter. The address is never shown: `255.255.255.255`; the
    /// hop count, idle time and op level are not kept: `0`, `0`, `n/a`.
    fn whox_line(&mut self, conn: ConnectionId, channel: &str, id: ConnectionId, whox: Whox) {
        use super::numeric::RPL_WHOSPCRPL;
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let roster = &*self.roster;
        let Some(slot) = roster.get(id) else {
            return;
        };
        let prefix = roster.prefix(id);
        let here = if roster.away(id).is_some() { "G" } else { "H" };
        let star = if self.is_server_operator(id) { "*" } else { "" };
        let every = self
            .caps(conn)
            .has(crate::state::connection::Caps::MULTI_PREFIX);
        let op = self
            .rooms
            .find(channel)
            .map_or("", |room| channels::status_prefix(roster, id, room, every));
        let _ = write!(self.out, ":{server} {RPL_WHOSPCRPL} {me}");
        for letter in WHOX_FIELDS.chars().filter(|&letter| whox.has(letter)) {
            let _ = match letter {
                't' => write!(self.out, " {}", whox.token()),
                'c' => write!(self.out, " {channel}"),
                'u' => write!(self.out, " {}", prefix.user),
                'i' => write!(self.out, " 255.255.255.255"),
                'h' => write!(self.out, " {}", prefix.host),
                's' => write!(self.out, " {}", prefix.server_or(server)),
                'n' => write!(self.out, " {}", prefix.name),
                'f' => write!(self.out, " {here}{star}{op}"),
                'd' | 'l' => write!(self.out, " 0"),
                'a' => match roster.account(id) {
                    Some(account) => write!(self.out, " {account}"),
                    None => write!(self.out, " 0"),
                },
                'o' => write!(self.out, " n/a"),
                _ => write!(self.out, " :{}", Visible(real_name(slot))),
            };
        }
        let _ = write!(self.out, "\r\n");
    }

    /// One `352` line, or `354` for a WHOX request.
    fn who_reply(
        &mut self,
        conn: ConnectionId,
        channel: &str,
        id: ConnectionId,
        whox: Option<Whox>,
    ) {
        match whox {
            Some(whox) => self.whox_line(conn, channel, id, whox),
            None => self.who_line(conn, channel, id),
        }
    }

    /// One `352` line.
    pub(crate) fn who_line(&mut self, conn: ConnectionId, channel: &str, id: ConnectionId) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let roster = &*self.roster;
        let Some(slot) = roster.get(id) else {
            return;
        };
        let prefix = roster.prefix(id);
        let realname = real_name(slot);
        let here = if roster.away(id).is_some() { "G" } else { "H" };
        // `*` after it for a server operator.
        let star = if self.is_server_operator(id) { "*" } else { "" };
        // `@` or `+` after the flag for an operator or voiced member of the room asked about
        // (both with `multi-prefix`).
        let every = self
            .caps(conn)
            .has(crate::state::connection::Caps::MULTI_PREFIX);
        let op = self
            .rooms
            .find(channel)
            .map_or("", |room| channels::status_prefix(roster, id, room, every));
        let _ = write!(
            self.out,
            ":{server} {RPL_WHOREPLY} {me} {channel} {} {} {} {} {here}{star}{op} :0 {}\r\n",
            prefix.user,
            prefix.host,
            prefix.server_or(server),
            prefix.name,
            Visible(realname)
        );
    }

    pub(crate) fn who(&mut self, conn: ConnectionId, mask: Option<&str>, whox: Option<Whox>) {
        let mask = mask.unwrap_or("*");
        let start = self.out.mark();
        // An invisible person is found by a mask or a room only by someone who shares a room
        // with them; by their exact nickname, by anyone.
        let exact = !mask.contains(['*', '?']) && !mask.starts_with('#');
        let roster = &*self.roster;
        let shares_a_room =
            |id: ConnectionId| roster.rooms_of(conn).any(|room| roster.in_room(id, room));
        let visible = |id: ConnectionId, slot: &Slot| {
            exact || id == conn || !slot.person.invisible || shares_a_room(id)
        };
        if let Some(room) = self.rooms.find(mask) {
            // Who is in a secret room is told only to those in it.
            let name = self
                .rooms
                .get(room)
                .filter(|info| !info.secret || roster.in_room(conn, room))
                .map(|info| info.name.clone());
            let members: heapless::Vec<ConnectionId, MAX_WHO_REPLIES> = roster
                .members_of(room)
                .filter(|&id| roster.get(id).is_some_and(|slot| visible(id, slot)))
                .take(MAX_WHO_REPLIES)
                .collect();
            if let Some(name) = name {
                for id in members {
                    self.who_reply(conn, name.as_str(), id, whox);
                }
            }
        } else if !mask.starts_with('#') && !mask.contains(['*', '?']) {
            // One name: found as names are found (case in any script, look-alikes).
            let found = self.roster.find(mask).filter(|&id| {
                self.roster.get(id).is_some_and(|slot| {
                    slot.connection
                        .registration
                        .is_none_or(|registration| registration.registered)
                        && visible(id, slot)
                })
            });
            if let Some(id) = found {
                self.who_reply(conn, "*", id, whox);
            }
        } else if !mask.starts_with('#') {
            let members: heapless::Vec<ConnectionId, MAX_WHO_REPLIES> = self
                .roster
                .people()
                .filter(|&id| {
                    let name = self.roster.name(id);
                    let mut buffer: heapless::String<{ crate::state::roster::MAX_NICK_BYTES }> =
                        heapless::String::new();
                    let _ = write!(buffer, "{name}");
                    self.roster.get(id).is_some_and(|slot| {
                        slot.connection
                            .registration
                            .is_none_or(|registration| registration.registered)
                            && visible(id, slot)
                    }) && glob(mask.as_bytes(), buffer.as_bytes())
                })
                .take(MAX_WHO_REPLIES)
                .collect();
            for id in members {
                self.who_reply(conn, "*", id, whox);
            }
        }
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let _ = write!(
            self.out,
            ":{server} {RPL_ENDOFWHO} {me} {} :End of WHO list\r\n",
            Visible(mask)
        );
        self.out.send(start, Audience::one(conn));
    }

    pub(crate) fn whois(&mut self, conn: ConnectionId, message: &Message<'_>) {
        // `WHOIS nick` or `WHOIS server nick`.
        let Some(&target) = message.params.last() else {
            return numeric!(self, conn, ERR_NONICKNAMEGIVEN, ":No nickname given");
        };
        let target = target.split(',').next().unwrap_or_default();
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        match self.roster.find(target) {
            Some(id) => {
                let server_operator = self.is_server_operator(id);
                let roster = &*self.roster;
                let prefix = roster.prefix(id);
                let realname = roster.get(id).map_or("", real_name);
                // A secret room shows only to those in it too.
                let mut rooms: heapless::Vec<RoomId, MAX_ROOMS_PER_PERSON> = roster
                    .rooms_of(id)
                    .filter(|&room| {
                        roster.in_room(conn, room)
                            || !self.rooms.get(room).is_some_and(|info| info.secret)
                    })
                    .collect();
                rooms.sort_unstable();
                let name = prefix.name;
                let _ = write!(
                    self.out,
                    ":{server} {RPL_WHOISUSER} {me} {name} {} {} * :{}\r\n",
                    prefix.user,
                    prefix.host,
                    Visible(realname)
                );
                if !rooms.is_empty() {
                    let _ = write!(self.out, ":{server} {RPL_WHOISCHANNELS} {me} {name} :");
                    for &room in &rooms {
                        let Some(info) = self.rooms.get(room) else {
                            continue;
                        };
                        let op = if roster.is_op(id, room) { "@" } else { "" };
                        let _ = write!(self.out, "{op}{} ", info.name);
                    }
                    let _ = write!(self.out, "\r\n");
                }
                let _ = write!(
                    self.out,
                    ":{server} {RPL_WHOISSERVER} {me} {name} {} :{VERSION}\r\n",
                    prefix.server_or(server)
                );
                if let Some(account) = roster.account(id) {
                    let _ = write!(
                        self.out,
                        ":{server} {RPL_WHOISACCOUNT} {me} {name} {account} :is logged in as\r\n"
                    );
                }
                if server_operator {
                    let _ = write!(
                        self.out,
                        ":{server} {RPL_WHOISOPERATOR} {me} {name} :is a server operator\r\n"
                    );
                }
                if let Some(away) = roster.away(id) {
                    let _ = write!(
                        self.out,
                        ":{server} {RPL_AWAY} {me} {name} :{}\r\n",
                        Visible(away)
                    );
                }
                let _ = write!(
                    self.out,
                    ":{server} {RPL_ENDOFWHOIS} {me} {name} :End of /WHOIS list\r\n"
                );
            }
            None => {
                let target = Visible(target);
                let _ = write!(
                    self.out,
                    ":{server} {ERR_NOSUCHNICK} {me} {target} :No such nick/channel\r\n\
                     :{server} {RPL_ENDOFWHOIS} {me} {target} :End of /WHOIS list\r\n"
                );
            }
        }
        self.out.send(start, Audience::one(conn));
    }

    /// Nothing is kept about people who have left: `406`, `369`.
    /// `WHOWAS nick [count]`: `314` and `312` for each of the last people to leave who went by
    /// `nick`, newest first, at most `count` of them when it is positive; `406` if none; then
    /// `369`. Only the last [`MAX_WHOWAS`](crate::state::past::MAX_WHOWAS) departures are
    /// remembered.
    pub(crate) fn whowas(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(nick) = message.param(0) else {
            return numeric!(self, conn, ERR_NONICKNAMEGIVEN, ":No nickname given");
        };
        let nick = nick.split(',').next().unwrap_or_default();
        let count = message
            .param(1)
            .and_then(|count| count.parse::<i64>().ok())
            .filter(|&count| count > 0)
            .map_or(usize::MAX, |count| {
                usize::try_from(count).unwrap_or(usize::MAX)
            });
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let mut found = false;
        for gone in self.past.went_by(nick).take(count) {
            found = true;
            let _ = write!(
                self.out,
                ":{server} {RPL_WHOWASUSER} {me} {} {} {HOST} * :{}\r\n\
                 :{server} {RPL_WHOISSERVER} {me} {} {server} :{VERSION}\r\n",
                gone.nick,
                gone.user,
                Visible(&gone.realname),
                gone.nick,
            );
        }
        let nick = Visible(nick);
        if !found {
            let _ = write!(
                self.out,
                ":{server} {ERR_WASNOSUCHNICK} {me} {nick} :There was no such nickname\r\n"
            );
        }
        let _ = write!(
            self.out,
            ":{server} {RPL_ENDOFWHOWAS} {me} {nick} :End of WHOWAS\r\n"
        );
        self.out.send(start, Audience::one(conn));
    }

    /// Notes that `conn` is about to leave: its watchers are told (`MONITOR`); if it is here,
    /// one user fewer for `LUSERS` if it was one, its own watches dropped, and remembered for
    /// `WHOWAS` if it had a nickname.
    pub(crate) fn note_departure(&mut self, conn: ConnectionId) {
        if self
            .roster
            .get(conn)
            .is_some_and(|slot| slot.person.nick.is_some())
        {
            let mut name: heapless::String<{ crate::state::nickname::MAX_NICK_BYTES }> =
                heapless::String::new();
            let _ = write!(name, "{}", self.roster.name(conn));
            self.monitor_offline(&name);
        }
        let Some(slot) = self.roster.get(conn) else {
            return;
        };
        if slot.person.is_remote() {
            return;
        }
        if is_user(slot) {
            self.past.departed();
        }
        self.watches.clear(conn);
        if slot.person.nick.is_none() {
            return;
        }
        let prefix = self.roster.prefix(conn);
        let mut gone = crate::state::past::Gone {
            nick: heapless::String::new(),
            user: heapless::String::new(),
            realname: heapless::String::new(),
        };
        // Cannot fail: each is at most its field's size.
        let _ = write!(gone.nick, "{}", prefix.name);
        let _ = write!(gone.user, "{}", prefix.user);
        let _ = gone.realname.push_str(real_name(slot));
        self.past.record(gone);
    }

    /// `303` with those of the nicknames asked about who are online.
    pub(crate) fn ison(&mut self, conn: ConnectionId, message: &Message<'_>) {
        if message.params.is_empty() {
            return self.missing(conn, "ISON");
        }
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let _ = write!(self.out, ":{server} {RPL_ISON} {me} :");
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
    pub(crate) fn userhost(&mut self, conn: ConnectionId, message: &Message<'_>) {
        if message.params.is_empty() {
            return self.missing(conn, "USERHOST");
        }
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let _ = write!(self.out, ":{server} {RPL_USERHOST} {me} :");
        let mut first = true;
        for nick in message.params.iter().take(5) {
            let Some(id) = self.roster.find(nick) else {
                continue;
            };
            let prefix = self.roster.prefix(id);
            let here = if self.roster.away(id).is_some() {
                '-'
            } else {
                '+'
            };
            let space = if core::mem::take(&mut first) { "" } else { " " };
            let _ = write!(
                self.out,
                "{space}{}={here}{}@{}",
                prefix.name, prefix.user, prefix.host
            );
        }
        let _ = self.out.write_str("\r\n");
        self.out.send(start, Audience::one(conn));
    }
}

/// The real name `WHO` and `WHOIS` show for the person in `slot`.
/// Whether the connection in `slot` is a user: greeted as text, or registered on IRC.
fn is_user(slot: &Slot) -> bool {
    slot.connection.greeted
        || slot
            .connection
            .registration
            .is_some_and(|registration| registration.registered)
}

/// `253` with how many connections are not yet users, or nothing when none.
struct Unknown<'a>(&'a str, &'a dyn fmt::Display, usize);

impl fmt::Display for Unknown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::numeric::RPL_LUSERUNKNOWN;
        let Self(server, me, unknown) = *self;
        if unknown == 0 {
            return Ok(());
        }
        write!(
            f,
            ":{server} {RPL_LUSERUNKNOWN} {me} {unknown} :unknown connection(s)\r\n"
        )
    }
}

fn real_name(slot: &Slot) -> &str {
    if slot.person.is_remote() {
        "on another server"
    } else if slot.person.reads_irc() {
        &slot.person.realname
    } else {
        "plain-text user"
    }
}

impl<S: crate::Storage> Step<'_, S> {
    /// `LUSERS` (and part of the welcome on other servers): how many people, on how many
    /// servers, and how many rooms.
    /// `LUSERS`: people and rooms, counted over the roster (at most its size). Connections
    /// not yet users (registering on IRC) are counted apart (`253`, when there are some). The
    /// maximum of `265` is the most users there have been here at once; that of `266` is not
    /// kept for the whole network, and is the larger of that and the current count.
    pub(crate) fn lusers(&mut self, conn: ConnectionId) {
        use super::numeric::{
            RPL_GLOBALUSERS, RPL_LOCALUSERS, RPL_LUSERCHANNELS, RPL_LUSERCLIENT, RPL_LUSERME,
            RPL_LUSEROP,
        };
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let (mut here, mut invisible, mut visible, mut unknown) = (0, 0, 0, 0);
        for id in self.roster.people() {
            let Some(slot) = self.roster.get(id) else {
                continue;
            };
            if !slot.person.is_remote() && !is_user(slot) {
                unknown += 1;
                continue;
            }
            if !slot.person.is_remote() {
                here += 1;
            }
            if slot.person.invisible {
                invisible += 1;
            } else {
                visible += 1;
            }
        }
        let everyone = visible + invisible;
        // The most at once here; everywhere, no fewer than that nor than now.
        let peak = self.past.peak().max(here);
        let global_peak = peak.max(everyone);
        let servers = 1 + self.roster.node_count();
        let rooms = self.rooms.count();
        let operators = self.server_operators_online();
        let start = self.out.mark();
        let _ = write!(
            self.out,
            ":{server} {RPL_LUSERCLIENT} {me} :There are {visible} users and {invisible} \
             invisible on {servers} servers\r\n\
             :{server} {RPL_LUSEROP} {me} {operators} :operator(s) online\r\n{}\
             :{server} {RPL_LUSERCHANNELS} {me} {rooms} :channels formed\r\n\
             :{server} {RPL_LUSERME} {me} :I have {here} clients and {} servers\r\n\
             :{server} {RPL_LOCALUSERS} {me} {here} {peak} :Current local users {here}, max \
             {peak}\r\n\
             :{server} {RPL_GLOBALUSERS} {me} {everyone} {global_peak} :Current global users \
             {everyone}, max {global_peak}\r\n",
            Unknown(server, &me, unknown),
            servers - 1
        );
        self.out.send(start, Audience::one(conn));
    }
}
