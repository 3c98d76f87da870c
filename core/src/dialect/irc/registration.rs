//! Registration: CAP, NICK, USER, the welcome burst, QUIT.

use super::numeric::{
    ERR_ERRONEUSNICKNAME, ERR_INVALIDCAPCMD, ERR_NONICKNAMEGIVEN, RPL_CREATED, RPL_ENDOFMOTD,
    RPL_ISUPPORT, RPL_MOTD, RPL_MOTDSTART, RPL_MYINFO, RPL_WELCOME, RPL_YOURHOST,
};
use core::fmt::Write;

use crate::dialect::Wish;

use super::Step;
use crate::dialect::MAX_MODE_CHANGES;
use crate::dialect::text::Visible;
use crate::history::MAX_HISTORY_LINES;
use crate::output::{Audience, CloseReason};
use crate::state::connection::Caps;
use crate::state::members::MAX_ROOMS_PER_PERSON;
use crate::state::person::MAX_AWAY_BYTES;
use crate::state::rooms::{MAX_ROOM_KEY_BYTES, MAX_TOPIC_BYTES, RoomId};
use crate::state::roster::{ConnectionId, Name, Nickname, Queue};
use crate::wire::irc::Message;

use super::*;
use crate::dialect::Happened;

impl<S: crate::Storage> Step<'_, S> {
    pub(crate) fn cap(&mut self, conn: ConnectionId, message: &Message<'_>, registered: bool) {
        let Some(sub) = message.param(0) else {
            return self.missing(conn, "CAP");
        };
        let server = self.server_name;
        let me = self.roster.irc_name(conn);
        let begin = |hub: &mut Self| {
            if let Some(registration) = hub.registration_mut(conn)
                && !registered
            {
                registration.negotiating = true;
            }
        };
        if sub.eq_ignore_ascii_case("LS") {
            let start = self.out.mark();
            let _ = write!(self.out, ":{server} CAP {me} LS :");
            // CAP LS 302 and later read values: SASL's names its mechanisms.
            let values = message
                .param(1)
                .and_then(|version| version.parse::<u32>().ok())
                .is_some_and(|version| version >= 302);
            let mut first = true;
            for (name, cap) in Caps::OFFERED {
                if Caps::ACCOUNTS.has(cap) && self.accounts.is_none() {
                    continue;
                }
                let value = if cap == Caps::SASL && values {
                    "=PLAIN"
                } else {
                    ""
                };
                let _ = write!(self.out, "{}{name}{value}", if first { "" } else { " " });
                first = false;
            }
            let _ = self.out.write_str("\r\n");
            self.out.send(start, Audience::one(conn));
            begin(self);
        } else if sub.eq_ignore_ascii_case("LIST") {
            let caps = self.caps(conn);
            let start = self.out.mark();
            let _ = write!(self.out, ":{server} CAP {me} LIST :");
            let mut first = true;
            for (name, cap) in Caps::OFFERED {
                if caps.has(cap) {
                    let _ = write!(self.out, "{}{name}", if first { "" } else { " " });
                    first = false;
                }
            }
            let _ = self.out.write_str("\r\n");
            self.out.send(start, Audience::one(conn));
        } else if sub.eq_ignore_ascii_case("REQ") {
            let wanted = message.param(1).unwrap_or_default();
            // All or nothing: one unknown name refuses the whole request.
            let mut caps = self.caps(conn);
            let mut known = !wanted.trim().is_empty();
            for name in wanted.split(' ').filter(|name| !name.is_empty()) {
                let (name, on) = match name.strip_prefix('-') {
                    Some(name) => (name, false),
                    None => (name, true),
                };
                match Caps::named(name) {
                    Some(cap) if Caps::ACCOUNTS.has(cap) && self.accounts.is_none() => {
                        known = false;
                    }
                    Some(cap) => caps = caps.with(cap, on),
                    None => known = false,
                }
            }
            let answer = if known { "ACK" } else { "NAK" };
            irc!(
                self,
                Audience::one(conn),
                ":{server} CAP {me} {answer} :{}",
                Visible(wanted)
            );
            if known {
                if let Some(registration) = self.registration_mut(conn) {
                    registration.caps = caps;
                }
                let tags = crate::state::members::Tagged {
                    server: caps.tagged(),
                    client: caps.has(Caps::MESSAGE_TAGS),
                };
                self.roster.set_tagged(conn, tags);
            }
            begin(self);
        } else if sub.eq_ignore_ascii_case("END") {
            if let Some(registration) = self.registration_mut(conn) {
                registration.negotiating = false;
            }
            self.try_register(conn);
        } else {
            numeric!(
                self,
                conn,
                ERR_INVALIDCAPCMD,
                "{} :Invalid CAP command",
                Visible(sub)
            );
        }
    }

    pub(crate) fn irc_nick(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(wanted) = message.param(0).filter(|nick| !nick.is_empty()) else {
            return numeric!(self, conn, ERR_NONICKNAMEGIVEN, ":No nickname given");
        };
        let Ok(nick) = Nickname::new(wanted) else {
            return numeric!(
                self,
                conn,
                ERR_ERRONEUSNICKNAME,
                "{} :Erroneous nickname",
                Visible(wanted)
            );
        };
        match self.roster.find(nick.as_str()) {
            Some(holder) if holder != conn => return self.nick_taken(conn, &nick),
            _ => {}
        }
        if let Name::Nick(current) = self.roster.name(conn)
            && current.as_str() == nick.as_str()
        {
            return;
        }
        match self.wish_nick(conn, &nick) {
            Wish::Now => self.irc_take_nick(conn, nick),
            Wish::Claimed => {}
            Wish::ClaimedHere => self.nick_taken(conn, &nick),
            Wish::Waiting => server_notice!(
                self,
                conn,
                "*** Your last nickname is still being checked with the other servers; try again in a moment"
            ),
        }
    }

    /// Gives `conn` the nickname `nick`, free everywhere, and registers it if that was all it
    /// waited for.
    pub(crate) fn irc_take_nick(&mut self, conn: ConnectionId, nick: Nickname) {
        let registered = self.registered(conn);
        let in_rooms = self.roster.rooms_of(conn).next().is_some();
        if registered || in_rooms {
            // In rooms before registering: it was welcomed as plain text before its first
            // line came, and the others know it by its old name.
            self.rename(conn, nick, registered);
        } else {
            // Not shown to anyone yet: news to no one, until it arrives.
            if let Some(slot) = self.roster.get_mut(conn) {
                slot.person.nick = Some(nick);
            }
        }
        if !registered {
            self.try_register(conn);
        }
    }

    pub(crate) fn user(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let (Some(user), Some(realname)) = (message.param(0), message.param(3)) else {
            return self.missing(conn, "USER");
        };
        if user.is_empty() || realname.is_empty() {
            return self.missing(conn, "USER");
        }
        if let Some(slot) = self.roster.get_mut(conn)
            && slot.person.reads_irc()
        {
            let person = &mut slot.person;
            clean_user(user, &mut person.user);
            person.realname.clear();
            let _ = person
                .realname
                .push_str(cut(realname, crate::state::person::MAX_REALNAME_BYTES));
        }
        self.try_register(conn);
    }

    /// Welcomes `conn` once it has a nickname and a user name, and is not negotiating
    /// capabilities: the 001 to 005 numerics, the message of the day, and the lobby.
    pub(crate) fn try_register(&mut self, conn: ConnectionId) {
        let Some(slot) = self.roster.get_mut(conn) else {
            return;
        };
        let ready = slot.person.nick.is_some() && !slot.person.user.is_empty();
        let Some(registration) = slot.connection.registration.as_mut() else {
            return;
        };
        // A SASL answer still to come: the welcome says who it is logged in as.
        if registration.registered
            || registration.negotiating
            || registration.sasl == crate::state::connection::Sasl::Checking
            || !ready
        {
            return;
        }
        registration.registered = true;
        // One greeted as plain text before its first line arrived then.
        if !slot.connection.greeted {
            self.publish(&Happened::Arrived { who: conn });
        }
        // Its user name is known now: a server-wide ban may name it.
        self.server_bans.suspect(conn);
        self.roster.dequeue(Queue::Silent, conn);
        let mut rooms: heapless::Vec<RoomId, MAX_ROOMS_PER_PERSON> =
            self.roster.rooms_of(conn).collect();
        rooms.sort_unstable();
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let prefix = self.roster.prefix(conn);
        let start = self.out.mark();
        let _ = write!(
            self.out,
            ":{server} {RPL_WELCOME} {me} :Welcome to the chat, {prefix}\r\n\
             :{server} {RPL_YOURHOST} {me} :Your host is {server}, running version {VERSION}\r\n\
             :{server} {RPL_CREATED} {me} :This server was created when it started\r\n\
             :{server} {RPL_MYINFO} {me} {server} {VERSION} iow beiIklmnorstv beIklov\r\n\
             :{server} {RPL_ISUPPORT} {me} AWAYLEN={} CASEMAPPING=rfc8265 CHANLIMIT=#:{MAX_ROOMS_PER_PERSON} CHANNELLEN={} CHANTYPES=# \
             CHANMODES=beI,k,l,imnrst CHATHISTORY={MAX_HISTORY_LINES} ELIST=CMNTU EXCEPTS EXTBAN=$,a INVEX :are supported by this server\r\n\
             :{server} {RPL_ISUPPORT} {me} KEYLEN={MAX_ROOM_KEY_BYTES} MODES={MAX_MODE_CHANGES} MSGREFTYPES=msgid,timestamp MONITOR={} \
             PREFIX=(ov)@+ STATUSMSG=@ NETWORK=chat NICKLEN={} TARGMAX=JOIN:,KICK:,NAMES:,NOTICE:,PART:,PRIVMSG:,TAGMSG: \
             TOPICLEN={MAX_TOPIC_BYTES} UTF8ONLY WHOX :are supported by this server\r\n",
            MAX_AWAY_BYTES,
            crate::state::rooms::MAX_ROOM_NAME_BYTES,
            crate::state::monitor::MAX_MONITOR,
            crate::state::roster::MAX_NICK_CHARS,
        );
        self.out.send(start, Audience::one(conn));
        self.motd(conn);
        if !rooms.is_empty() {
            // Greeted as plain text before its first line showed it to be IRC: show it the
            // rooms it is in already.
            for &room in &rooms {
                if let Some(info) = self.rooms.get(room) {
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
            self.join_target(conn, crate::state::rooms::LOBBY, None);
        }
    }

    pub(crate) fn motd(&mut self, conn: ConnectionId) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        if let Some(motd) = self.motd {
            let _ = write!(
                self.out,
                ":{server} {RPL_MOTDSTART} {me} :- {server} Message of the day -\r\n"
            );
            for line in motd.lines() {
                let _ = write!(
                    self.out,
                    ":{server} {RPL_MOTD} {me} :- {}\r\n",
                    Visible(line)
                );
            }
            let _ = write!(
                self.out,
                ":{server} {RPL_ENDOFMOTD} {me} :End of /MOTD command.\r\n"
            );
            self.out.send(start, Audience::one(conn));
            return;
        }
        let _ = write!(
            self.out,
            ":{server} {RPL_MOTDSTART} {me} :- {server} Message of the day -\r\n\
             :{server} {RPL_MOTD} {me} :- People on IRC, on plain-text terminals (nc, telnet) and on\r\n\
             :{server} {RPL_MOTD} {me} :- the original JSON client share these rooms; #lobby is where\r\n\
             :{server} {RPL_MOTD} {me} :- everyone starts.\r\n\
             :{server} {RPL_ENDOFMOTD} {me} :End of /MOTD command.\r\n"
        );
        self.out.send(start, Audience::one(conn));
    }

    pub(crate) fn irc_quit(&mut self, conn: ConnectionId, reason: Option<&str>) {
        let registered = self.registered(conn);
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
}
