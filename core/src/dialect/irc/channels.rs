//! Channels: JOIN, PART, NAMES, TOPIC, LIST, MODE.

use super::numeric::{
    ERR_BADCHANNELKEY, ERR_BANNEDFROMCHAN, ERR_CHANNELISFULL, ERR_INVITEONLYCHAN,
    ERR_NOSUCHCHANNEL, ERR_NOSUCHNICK, ERR_NOTONCHANNEL, ERR_TOOMANYCHANNELS, ERR_UMODEUNKNOWNFLAG,
    ERR_USERSDONTMATCH, RPL_ENDOFNAMES, RPL_LIST, RPL_LISTEND, RPL_LISTSTART, RPL_NAMREPLY,
    RPL_NOTOPIC, RPL_TOPIC, RPL_TOPICWHOTIME, RPL_UMODEIS,
};
use core::fmt::Write;

use super::{Admitted, Refused, Step};
use crate::dialect::Entry;
use crate::dialect::text::{CharName, Visible};
use crate::history::{HistoryRange, Purpose};
use crate::output::Audience;
use crate::state::rooms::{MAX_TOPIC_BYTES, RoomId};
use crate::state::roster::ConnectionId;
use crate::wire::irc::Message;

use super::*;
use crate::dialect::MAX_LISTED_ROOMS;
use crate::state::members::MAX_ROOMS_PER_PERSON;

impl<S: crate::Storage> Step<'_, S> {
    pub(crate) fn irc_join(&mut self, conn: ConnectionId, message: &Message<'_>) {
        if message.param(0) == Some("0") {
            // Leave every room, one per step.
            if let Some(room) = self.roster.rooms_of(conn).min() {
                if self.roster.rooms_of(conn).count() > 1 {
                    self.put_back(conn, message, "0");
                }
                self.leave(conn, room, None);
            }
            return;
        }
        let Some(targets) = message.param(0) else {
            return self.missing(conn, "JOIN");
        };
        // `JOIN #a,#b key-a,key-b`: one room per step, each with its key.
        let (target, rest) = targets.split_once(',').unwrap_or((targets, ""));
        let keys = message.param(1).filter(|keys| !keys.is_empty());
        let (key, other_keys) = match keys.map(|keys| keys.split_once(',')) {
            Some(Some((key, others))) => (Some(key), Some(others)),
            Some(None) => (keys, None),
            None => (None, None),
        };
        if !rest.is_empty() {
            match other_keys {
                Some(others) => self.put_back_with(conn, message, rest, &[others]),
                None => self.put_back_with(conn, message, rest, &[]),
            }
        }
        self.join_target(conn, target, key.filter(|key| !key.is_empty()));
    }

    pub(crate) fn join_target(&mut self, conn: ConnectionId, target: &str, key: Option<&str>) {
        match self.admit(conn, target, Entry::Asked(key)) {
            Ok(Admitted::Entered(room)) => self.joined(conn, room),
            Ok(Admitted::AlreadyIn(_)) => {}
            Err(Refused::Invalid(_)) => {
                numeric!(
                    self,
                    conn,
                    ERR_NOSUCHCHANNEL,
                    "{} :No such channel",
                    Visible(target)
                );
            }
            Err(Refused::TooManyRooms) => numeric!(
                self,
                conn,
                ERR_TOOMANYCHANNELS,
                "{} :There are already {} rooms, the most there can be",
                Visible(target),
                crate::state::rooms::MAX_ROOMS
            ),
            Err(Refused::InTooMany) => numeric!(
                self,
                conn,
                ERR_TOOMANYCHANNELS,
                "{} :You have joined too many channels (at most {MAX_ROOMS_PER_PERSON})",
                Visible(target)
            ),
            Err(Refused::Banned(room)) => numeric!(
                self,
                conn,
                ERR_BANNEDFROMCHAN,
                "{room} :Cannot join channel (+b)"
            ),
            Err(Refused::InviteOnly(room)) => numeric!(
                self,
                conn,
                ERR_INVITEONLYCHAN,
                "{room} :Cannot join channel (+i)"
            ),
            Err(Refused::BadKey(room)) => numeric!(
                self,
                conn,
                ERR_BADCHANNELKEY,
                "{room} :Cannot join channel (+k)"
            ),
            Err(Refused::Full(room, members)) => numeric!(
                self,
                conn,
                ERR_CHANNELISFULL,
                "{} :Cannot join channel: it is full ({members} people)",
                Visible(room.as_ref().map_or(target, |room| room.as_str()))
            ),
        }
    }

    /// What an IRC client is told on entering `room` (its own JOIN went out with everyone's):
    /// the topic, the names, and what was said lately (asked of the runner).
    pub(crate) fn joined(&mut self, conn: ConnectionId, room: RoomId) {
        self.topic_of(conn, room, false);
        self.names(conn, room);
        let lines = self.replay;
        self.ask_history(conn, room, HistoryRange::Latest, lines, Purpose::Replay);
    }

    /// `332` and `333` for `room`'s topic; if it has none, `331` when `or_none`, else nothing.
    fn topic_of(&mut self, conn: ConnectionId, room: RoomId, or_none: bool) {
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let name = info.name;
        match info.topic_set {
            Some((by, at)) if !info.topic.is_empty() => {
                let topic = Visible(info.topic);
                numeric!(self, conn, RPL_TOPIC, "{name} :{topic}");
                let (by, seconds) = (Visible(by), at.as_millis() / 1000);
                numeric!(self, conn, RPL_TOPICWHOTIME, "{name} {by} {seconds}");
            }
            _ if or_none => numeric!(self, conn, RPL_NOTOPIC, "{name} :No topic is set"),
            _ => {}
        }
    }

    /// `353` lines naming up to [`MAX_IRC_NAMES`] members of `room`, and `366`.
    pub(crate) fn names(&mut self, conn: ConnectionId, room: RoomId) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let roster = &*self.roster;
        let start = self.out.mark();
        let mut line_start = None;
        let members = roster.members_of(room).take(MAX_IRC_NAMES);
        for id in members {
            let at = self.out.mark();
            let op = if roster.is_op(id, room) {
                "@"
            } else if roster.has(id, room, crate::state::members::Status::Voice) {
                "+"
            } else {
                ""
            };
            match line_start {
                Some(begun) if at - begun < NAMES_LINE_BYTES => {
                    let _ = write!(self.out, " {op}{}", roster.name(id));
                }
                Some(_) => {
                    let _ = write!(self.out, "\r\n");
                    line_start = Some(self.out.mark());
                    let _ = write!(
                        self.out,
                        ":{server} {RPL_NAMREPLY} {me} = {} :{op}{}",
                        info.name,
                        roster.name(id)
                    );
                }
                None => {
                    line_start = Some(at);
                    let _ = write!(
                        self.out,
                        ":{server} {RPL_NAMREPLY} {me} = {} :{op}{}",
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
            ":{server} {RPL_ENDOFNAMES} {me} {} :End of /NAMES list\r\n",
            info.name
        );
        self.out.send(start, Audience::one(conn));
    }

    pub(crate) fn irc_part(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(target) = self.first_target(conn, message) else {
            return self.missing(conn, "PART");
        };
        let Some(room) = self.rooms.find(target) else {
            return numeric!(
                self,
                conn,
                ERR_NOSUCHCHANNEL,
                "{} :No such channel",
                Visible(target)
            );
        };
        if !self.roster.in_room(conn, room) {
            return numeric!(
                self,
                conn,
                ERR_NOTONCHANNEL,
                "{} :You're not on that channel",
                Visible(target)
            );
        }
        let reason = message.param(1).filter(|reason| !reason.is_empty());
        self.leave(conn, room, reason);
    }

    pub(crate) fn irc_names(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(target) = self.first_target(conn, message) else {
            return numeric!(self, conn, RPL_ENDOFNAMES, "* :End of /NAMES list");
        };
        match self.rooms.find(target) {
            Some(room) => self.names(conn, room),
            None => numeric!(
                self,
                conn,
                RPL_ENDOFNAMES,
                "{} :End of /NAMES list",
                Visible(target)
            ),
        }
    }

    pub(crate) fn irc_topic(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(target) = message.param(0) else {
            return self.missing(conn, "TOPIC");
        };
        let Some(room) = self.rooms.find(target) else {
            return numeric!(
                self,
                conn,
                ERR_NOSUCHCHANNEL,
                "{} :No such channel",
                Visible(target)
            );
        };
        let member = self.roster.in_room(conn, room);
        let Some(topic) = message.param(1) else {
            return self.topic_of(conn, room, true);
        };
        if !member {
            return numeric!(
                self,
                conn,
                ERR_NOTONCHANNEL,
                "{} :You're not on that channel",
                Visible(target)
            );
        }
        // CTCP's `\x01`, let through for PRIVMSG, has no place in a topic.
        if topic.contains('\x01') {
            return server_notice!(
                self,
                conn,
                "*** error: your topic contains the control character {}; it was not set",
                CharName('\x01')
            );
        }
        // Longer topics are cut, as TOPICLEN in 005 warns.
        self.set_topic(conn, room, cut(topic, MAX_TOPIC_BYTES));
    }

    pub(crate) fn irc_list(&mut self, conn: ConnectionId, only: Option<&str>) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let _ = write!(
            self.out,
            ":{server} {RPL_LISTSTART} {me} Channel :Users  Name\r\n"
        );
        let wanted = |info: &crate::state::rooms::RoomView<'_>| {
            info.members > 0
                && only.is_none_or(|only| only.split(',').any(|name| info.name.matches(name)))
        };
        let mut hidden = 0_usize;
        for (at, (_, info)) in self
            .rooms
            .iter()
            .filter(|(_, info)| wanted(info))
            .enumerate()
        {
            if at >= MAX_LISTED_ROOMS {
                hidden += 1;
                continue;
            }
            let _ = write!(
                self.out,
                ":{server} {RPL_LIST} {me} {} {} :{}\r\n",
                info.name,
                info.members,
                Visible(info.topic)
            );
        }
        if hidden > 0 {
            let _ = write!(
                self.out,
                ":{server} NOTICE {me} :{hidden} more rooms not listed; LIST #name shows one\r\n"
            );
        }
        let _ = write!(self.out, ":{server} {RPL_LISTEND} {me} :End of /LIST\r\n");
        self.out.send(start, Audience::one(conn));
    }

    /// A room's modes (see [`change_modes`](Self::change_modes)), or one's own.
    pub(crate) fn mode(&mut self, conn: ConnectionId, message: &Message<'_>) {
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
                return numeric!(
                    self,
                    conn,
                    ERR_NOSUCHCHANNEL,
                    "{} :No such channel",
                    Visible(target)
                );
            };
            let mut params = message.params.iter().skip(2).copied();
            return self.change_modes(conn, Some(name.as_str()), change, &mut params);
        }
        let Some(id) = self.roster.find(target) else {
            return numeric!(
                self,
                conn,
                ERR_NOSUCHNICK,
                "{} :No such nick/channel",
                Visible(target)
            );
        };
        if id != conn {
            return numeric!(
                self,
                conn,
                ERR_USERSDONTMATCH,
                ":Can't change mode for other users"
            );
        }
        let Some(change) = change else {
            let invisible = self
                .roster
                .get(conn)
                .is_some_and(|slot| slot.person.invisible);
            let modes = if invisible { "+i" } else { "+" };
            return numeric!(self, conn, RPL_UMODEIS, "{modes}");
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
                ERR_UMODEUNKNOWNFLAG,
                ":Unknown MODE flag; only +i is kept here"
            );
        }
        let Some(invisible) = set else {
            return;
        };
        let Some(slot) = self.roster.get_mut(conn) else {
            return;
        };
        if core::mem::replace(&mut slot.person.invisible, invisible) != invisible {
            let sign = if invisible { '+' } else { '-' };
            let me = self.roster.irc_name(conn);
            irc!(self, Audience::one(conn), ":{me} MODE {me} :{sign}i");
        }
    }
}
