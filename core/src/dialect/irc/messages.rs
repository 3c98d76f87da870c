//! Messages: PRIVMSG and NOTICE to rooms and people, AWAY.

use super::numeric::{
    ERR_CANNOTSENDTOCHAN, ERR_NOPRIVILEGES, ERR_NORECIPIENT, ERR_NOSUCHCHANNEL, ERR_NOSUCHNICK,
    ERR_NOTEXTTOSEND, RPL_AWAY, RPL_NOWAWAY, RPL_UNAWAY,
};
use core::fmt::Write;

use super::Step;
use super::events::{Tags, sender_account};
use crate::dialect::text::{CharName, Visible};
use crate::event::LineKind;
use crate::output::{Audience, Speaks};
use crate::state::connection::Caps;
use crate::state::person::MAX_AWAY_BYTES;
use crate::state::rooms::{RoomId, RoomMode};
use crate::state::roster::ConnectionId;
use crate::wire::irc::Message;

use super::*;
use crate::dialect::{Happened, Speaker};

impl<S: crate::Storage> Step<'_, S> {
    pub(crate) fn irc_message(
        &mut self,
        conn: ConnectionId,
        message: &Message<'_>,
        kind: LineKind,
    ) {
        // A NOTICE is never answered with an error, so two programs cannot loop.
        let answer = kind != LineKind::Notice;
        let Some(target) = self.first_target(conn, message) else {
            if answer {
                numeric!(
                    self,
                    conn,
                    ERR_NORECIPIENT,
                    ":No recipient given ({})",
                    message.verb
                );
            }
            return;
        };
        let Some(text) = message.param(1).filter(|text| !text.is_empty()) else {
            if answer {
                numeric!(self, conn, ERR_NOTEXTTOSEND, ":No text to send");
            }
            return;
        };
        // Accounts for clients that know no SASL. Never relayed or shown to anyone.
        if target.eq_ignore_ascii_case("NickServ") && kind == LineKind::Line {
            return self.nickserv(conn, text);
        }
        let (said, text) = match text.strip_prefix('\x01') {
            Some(ctcp) => {
                let ctcp = ctcp.strip_suffix('\x01').unwrap_or(ctcp);
                match ctcp.strip_prefix("ACTION") {
                    Some(action) if action.is_empty() || action.starts_with(' ') => {
                        (LineKind::Action, action.trim_start_matches(' '))
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
            None => (LineKind::Line, text),
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
        let kind = match (kind, said) {
            (LineKind::Notice, _) => LineKind::Notice,
            (_, said) => said,
        };
        // `@#room`: to the room's operators only (STATUSMSG in 005).
        if let Some(room_name) = target
            .strip_prefix('@')
            .filter(|name| name.starts_with('#'))
        {
            if let Some(room) = self.room_to_send_to(conn, room_name, answer) {
                self.say_to_operators(conn, room, kind, text);
            }
            return;
        }
        if target.starts_with('#') {
            if let Some(room) = self.room_to_send_to(conn, target, answer) {
                self.speak(conn, room, kind, text, ClientTags::of(message));
            }
            return;
        }
        match self.roster.find(target) {
            Some(to) => {
                self.deliver(conn, to, kind, text, ClientTags::of(message));
                if answer {
                    self.tell_if_away(conn, to);
                }
            }
            None if answer => {
                numeric!(
                    self,
                    conn,
                    ERR_NOSUCHNICK,
                    "{} :No such nick/channel",
                    Visible(target)
                );
            }
            None => {}
        }
    }

    /// `WALLOPS :text`, from a server operator: `:nick!user@host WALLOPS :text` to every IRC
    /// client with user mode `+w`, and to the sender (as its echo) if it has not; `481` for
    /// anyone else. Plain-text and JSON users have no user modes and get none.
    pub(crate) fn wallops(&mut self, conn: ConnectionId, text: Option<&str>) {
        if !self.is_server_operator(conn) {
            return numeric!(
                self,
                conn,
                ERR_NOPRIVILEGES,
                ":Permission Denied - only server operators send WALLOPS (OPER)"
            );
        }
        let Some(text) = text.filter(|text| !text.is_empty()) else {
            return self.missing(conn, "WALLOPS");
        };
        let prefix = self.roster.prefix(conn);
        let text = Visible(text);
        let everyone = Audience::all().speaking(Speaks::IrcWallops);
        irc!(self, everyone, ":{prefix} WALLOPS :{text}");
        if !self
            .roster
            .get(conn)
            .is_some_and(|slot| slot.person.wallops)
        {
            irc!(self, Audience::one(conn), ":{prefix} WALLOPS :{text}");
        }
    }

    /// `PRIVMSG @#room`: a line from `conn`, a member of `room`, to the room's operators on IRC
    /// only, as `:nick!user@host PRIVMSG @#room :text` (echoed to `conn` with `echo-message`).
    /// It is not kept in the room's history, carries no tags, and does not reach operators in
    /// the text dialects, which have no way to show it apart.
    fn say_to_operators(&mut self, conn: ConnectionId, room: RoomId, kind: LineKind, text: &str) {
        if !self.may_speak(conn, room) {
            return;
        }
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return;
        };
        let (prefix, verb) = (self.roster.prefix(conn), events::verb(kind));
        let body = IrcText(kind, text);
        let set = self.out.room_set(core::iter::once(room));
        let operators = Audience::rooms_but(set, conn).speaking(Speaks::IrcOperators);
        irc!(self, operators, ":{prefix} {verb} @{name} :{body}");
        if self.caps(conn).has(Caps::ECHO_MESSAGE) {
            irc!(
                self,
                Audience::one(conn),
                ":{prefix} {verb} @{name} :{body}"
            );
        }
    }

    /// The room `target` names, if it exists and `conn` is in it; otherwise `conn` is told
    /// why not, if `answer` (a NOTICE never gets an error reply).
    fn room_to_send_to(
        &mut self,
        conn: ConnectionId,
        target: &str,
        answer: bool,
    ) -> Option<RoomId> {
        let Some(room) = self.rooms.find(target) else {
            if answer {
                numeric!(
                    self,
                    conn,
                    ERR_NOSUCHCHANNEL,
                    "{} :No such channel",
                    Visible(target)
                );
            }
            return None;
        };
        if !self.roster.in_room(conn, room) {
            // From outside: only a room without `+n`, and not to whom it bans.
            let why = if self
                .rooms
                .room(room)
                .is_none_or(|info| info.has(RoomMode::NoExternal))
            {
                "you are not in it, and it is +n"
            } else if self.banned(conn, room) {
                "you are banned"
            } else {
                return Some(room);
            };
            if answer {
                numeric!(
                    self,
                    conn,
                    ERR_CANNOTSENDTOCHAN,
                    "{} :Cannot send to channel ({why})",
                    Visible(target)
                );
            }
            return None;
        }
        Some(room)
    }

    /// `TAGMSG target`: tags alone (a reaction, a typing notice) for the IRC clients that read
    /// other clients' tags, in a room or to one person; no one else sees anything, and it is
    /// neither a line of the room's history nor an event.
    pub(crate) fn tagmsg(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(target) = self.first_target(conn, message) else {
            return numeric!(self, conn, ERR_NORECIPIENT, ":No recipient given (TAGMSG)");
        };
        let client = ClientTags::of(message);
        let tags = Tags {
            at: self.now,
            msgid: Some(self.rooms.next_number()),
            account: None,
        };
        let room = match target.starts_with('#') {
            true => match self.room_to_send_to(conn, target, true) {
                Some(room) => Some(room),
                None => return,
            },
            false => None,
        };
        let tags = Tags {
            account: sender_account(self.roster, Speaker::Listed(conn)),
            ..tags
        };
        let (prefix, echo) = (
            self.roster.prefix(conn),
            self.caps(conn)
                .has(Caps::ECHO_MESSAGE.with(Caps::MESSAGE_TAGS, true)),
        );
        if let Some(room) = room {
            let Some(info) = self.rooms.get(room) else {
                return;
            };
            let (name, others) = (
                &info.name,
                Audience::room_but(room, conn).speaking(Speaks::IrcClientTags),
            );
            irc!(self, others, "@{tags}{client} :{prefix} TAGMSG {name}");
            if echo {
                irc!(
                    self,
                    Audience::one(conn),
                    "@{tags}{client} :{prefix} TAGMSG {name}"
                );
            }
            return;
        }
        let Some(to) = self.roster.find(target) else {
            return numeric!(
                self,
                conn,
                ERR_NOSUCHNICK,
                "{} :No such nick/channel",
                Visible(target)
            );
        };
        let name = self.roster.name(to);
        if self.caps(to).has(Caps::MESSAGE_TAGS) {
            irc!(
                self,
                Audience::private(to, conn),
                "@{tags}{client} :{prefix} TAGMSG {name}"
            );
        }
        if echo {
            irc!(
                self,
                Audience::one(conn),
                "@{tags}{client} :{prefix} TAGMSG {name}"
            );
        }
    }

    /// `AWAY :message` marks `conn` away; `AWAY` alone, back.
    pub(crate) fn away(&mut self, conn: ConnectionId, message: Option<&str>) {
        if !self
            .roster
            .get(conn)
            .is_some_and(|slot| slot.person.reads_irc())
        {
            return;
        }
        let message = message
            .filter(|message| !message.is_empty())
            .map(|message| cut(message, MAX_AWAY_BYTES));
        match message {
            Some(message) => {
                self.roster.set_away(conn, Some(message));
                numeric!(
                    self,
                    conn,
                    RPL_NOWAWAY,
                    ":You have been marked as being away"
                );
            }
            None => {
                self.roster.set_away(conn, None);
                numeric!(
                    self,
                    conn,
                    RPL_UNAWAY,
                    ":You are no longer marked as being away"
                );
            }
        }
        self.publish(&Happened::Away { who: conn, message });
    }

    /// Tells `from`, who just sent `to` a private message, that `to` is away, if so.
    pub(crate) fn tell_if_away(&mut self, from: ConnectionId, to: ConnectionId) {
        let Some(away) = self.roster.away(to) else {
            return;
        };
        let (name, away) = (self.roster.name(to), Visible(away));
        if self.speaks_irc(from) {
            numeric!(self, from, RPL_AWAY, "{name} :{away}");
        } else {
            notice!(self, from, "{name} is away: {away}");
        }
    }
}

impl<S: crate::Storage> Step<'_, S> {
    /// IRCv3 `SETNAME :real name`: changes the real name `USER` gave, at most
    /// [`MAX_REALNAME_BYTES`](crate::state::person::MAX_REALNAME_BYTES) (`FAIL SETNAME
    /// INVALID_REALNAME` for a longer or an empty one). The change is told, as
    /// `:nick!user@host SETNAME :name`, to the sender and to those who share a room with it,
    /// each only if it turned on `setname`.
    pub(crate) fn setname(&mut self, conn: ConnectionId, name: Option<&str>) {
        let Some(name) = name else {
            return self.missing(conn, "SETNAME");
        };
        let Some(person) = self
            .roster
            .get_mut(conn)
            .map(|slot| &mut slot.person)
            .filter(|person| person.reads_irc())
        else {
            return;
        };
        let mut realname = heapless::String::new();
        if name.is_empty() || name.contains('\0') || realname.push_str(name).is_err() {
            let server = self.server_name;
            return irc!(
                self,
                Audience::one(conn),
                ":{server} FAIL SETNAME INVALID_REALNAME :Real names are 1 to {} bytes",
                crate::state::person::MAX_REALNAME_BYTES
            );
        }
        person.realname = realname;
        let prefix = self.roster.prefix(conn);
        let rooms = self.out.room_set(self.roster.rooms_of(conn));
        if rooms.len != 0 {
            let others = Audience::rooms_but(rooms, conn).speaking(Speaks::IrcWith(Caps::SETNAME));
            irc!(self, others, ":{prefix} SETNAME :{}", Visible(name));
        }
        for watcher in self.monitoring(conn, Caps::SETNAME) {
            irc!(
                self,
                Audience::one(watcher),
                ":{prefix} SETNAME :{}",
                Visible(name)
            );
        }
        if self.caps(conn).has(Caps::SETNAME) {
            irc!(
                self,
                Audience::one(conn),
                ":{prefix} SETNAME :{}",
                Visible(name)
            );
        }
    }
}
