//! Queries: WHO, WHOIS, WHOWAS, ISON, USERHOST.

use super::numeric::{
    ERR_NONICKNAMEGIVEN, ERR_NOSUCHNICK, ERR_WASNOSUCHNICK, RPL_AWAY, RPL_ENDOFWHO, RPL_ENDOFWHOIS,
    RPL_ENDOFWHOWAS, RPL_ISON, RPL_USERHOST, RPL_WHOISACCOUNT, RPL_WHOISCHANNELS,
    RPL_WHOISOPERATOR, RPL_WHOISSERVER, RPL_WHOISUSER, RPL_WHOREPLY,
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

impl<S: crate::Storage> Step<'_, S> {
    /// One `352` line.
    pub(crate) fn who_line(&mut self, conn: ConnectionId, channel: &str, id: ConnectionId) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let roster = &*self.roster;
        let Some(slot) = roster.get(id) else {
            return;
        };
        let prefix = roster.prefix(id);
        let realname = real_name(slot);
        let here = if away_message(slot).is_some() {
            "G"
        } else {
            "H"
        };
        // `@` after the flag for an operator of the room asked about.
        let op = if self
            .rooms
            .find(channel)
            .is_some_and(|room| roster.is_op(id, room))
        {
            "@"
        } else {
            ""
        };
        let _ = write!(
            self.out,
            ":{server} {RPL_WHOREPLY} {me} {channel} {} {} {} {} {here}{op} :0 {}\r\n",
            prefix.user,
            prefix.host,
            prefix.server_or(server),
            prefix.name,
            Visible(realname)
        );
    }

    pub(crate) fn who(&mut self, conn: ConnectionId, mask: Option<&str>) {
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
            let name = self.rooms.get(room).map(|info| info.name.clone());
            let members: heapless::Vec<ConnectionId, MAX_WHO_REPLIES> = roster
                .members_of(room)
                .filter(|&id| roster.get(id).is_some_and(|slot| visible(id, slot)))
                .take(MAX_WHO_REPLIES)
                .collect();
            if let Some(name) = name {
                for id in members {
                    self.who_line(conn, name.as_str(), id);
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
                self.who_line(conn, "*", id);
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
                self.who_line(conn, "*", id);
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
                let mut rooms: heapless::Vec<RoomId, MAX_ROOMS_PER_PERSON> =
                    roster.rooms_of(id).collect();
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
                if let Some(account) = roster.get(id).and_then(|slot| slot.person.account.as_ref())
                {
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
                if let Some(away) = roster.get(id).and_then(away_message) {
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
    pub(crate) fn whowas(&mut self, conn: ConnectionId, nick: Option<&str>) {
        let Some(nick) = nick else {
            return numeric!(self, conn, ERR_NONICKNAMEGIVEN, ":No nickname given");
        };
        let nick = Visible(nick.split(',').next().unwrap_or_default());
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let _ = write!(
            self.out,
            ":{server} {ERR_WASNOSUCHNICK} {me} {nick} :There was no such nickname\r\n\
             :{server} {RPL_ENDOFWHOWAS} {me} {nick} :End of WHOWAS\r\n"
        );
        self.out.send(start, Audience::one(conn));
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
            let here = if self.roster.get(id).and_then(away_message).is_some() {
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
    pub(crate) fn lusers(&mut self, conn: ConnectionId) {
        use super::numeric::{
            RPL_GLOBALUSERS, RPL_LOCALUSERS, RPL_LUSERCHANNELS, RPL_LUSERCLIENT, RPL_LUSERME,
            RPL_LUSEROP,
        };
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let here = self.roster.len();
        let everyone = here + self.roster.remote_count();
        let servers = 1 + self.roster.node_count();
        let rooms = self.rooms.count();
        let operators = self.server_operators_online();
        let start = self.out.mark();
        let _ = write!(
            self.out,
            ":{server} {RPL_LUSERCLIENT} {me} :There are {everyone} users and 0 invisible on \
             {servers} servers\r\n\
             :{server} {RPL_LUSEROP} {me} {operators} :operator(s) online\r\n\
             :{server} {RPL_LUSERCHANNELS} {me} {rooms} :channels formed\r\n\
             :{server} {RPL_LUSERME} {me} :I have {here} clients and {} servers\r\n\
             :{server} {RPL_LOCALUSERS} {me} {here} {here} :Current local users {here}, max \
             {here}\r\n\
             :{server} {RPL_GLOBALUSERS} {me} {everyone} {everyone} :Current global users \
             {everyone}, max {everyone}\r\n",
            servers - 1
        );
        self.out.send(start, Audience::one(conn));
    }
}
