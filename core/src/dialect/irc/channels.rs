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
use crate::time::Instant;
use crate::wire::irc::Message;

use super::*;
use crate::dialect::MAX_LISTED_ROOMS;
use crate::state::members::MAX_ROOMS_PER_PERSON;

/// A member's status in `room` as `NAMES` and `WHO` show it: `@` for an operator, `+` for a
/// voiced member; both (`@+`, highest first) only when `every` (IRCv3 `multi-prefix`), else
/// the highest.
pub(crate) fn status_prefix<S: crate::Storage>(
    roster: &Roster<S>,
    id: ConnectionId,
    room: RoomId,
    every: bool,
) -> &'static str {
    let voiced = roster.has(id, room, crate::state::members::Status::Voice);
    match (roster.is_op(id, room), voiced) {
        (true, true) if every => "@+",
        (true, _) => "@",
        (false, true) => "+",
        (false, false) => "",
    }
}

/// A member as `NAMES` shows them: `nick`, or `nick!user@host` with `userhost-in-names`.
struct NamesEntry<'a, S: crate::Storage>(&'a Roster<S>, ConnectionId, bool);

impl<S: crate::Storage> fmt::Display for NamesEntry<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(roster, id, full) = *self;
        if full {
            roster.prefix(id).fmt(f)
        } else {
            roster.name(id).fmt(f)
        }
    }
}

/// Whether `LIST`'s parameter `only` (comma-separated terms, `ELIST=CMNTU` in `005`) wants a
/// room at `now`: it matches one of the names or masks (`*`, `?`) given, if any; none of the
/// `!mask`s; has more people than each `>N` and fewer than each `<N`; was made more than
/// `C>N` and less than `C<N` minutes ago; and has a topic set more than `T>N` and less than
/// `T<N` minutes ago (a room without a topic meets no `T` term). A number that is not one
/// leaves its term out.
fn list_wants(only: &str, info: &crate::state::rooms::RoomView<'_>, now: Instant) -> bool {
    let name = info.name.as_str().as_bytes();
    let (mut named, mut found) = (false, false);
    // Whether `then` (none: never) meets `term`, `<N` or `>N` minutes ago; true for a term
    // whose number is none.
    let ago = |then: Option<Instant>, term: &str| {
        let minutes = |n: &str| n.parse::<u64>().ok().map(|n| n.saturating_mul(60_000));
        let (less, limit) = match (term.strip_prefix('<'), term.strip_prefix('>')) {
            (Some(n), _) => (true, minutes(n)),
            (_, Some(n)) => (false, minutes(n)),
            _ => (true, None),
        };
        let Some(limit) = limit else {
            return true;
        };
        then.is_some_and(|then| {
            let age = now.as_millis().saturating_sub(then.as_millis());
            if less { age < limit } else { age > limit }
        })
    };
    for term in only.split(',').filter(|term| !term.is_empty()) {
        if let Some(term) = term.strip_prefix('C') {
            if !ago(Some(info.created), term) {
                return false;
            }
        } else if let Some(term) = term.strip_prefix('T') {
            if !ago(info.topic_set.map(|(_, at)| at), term) {
                return false;
            }
        } else if let Some(count) = term.strip_prefix('>') {
            if count
                .parse::<u32>()
                .is_ok_and(|count| info.members <= count)
            {
                return false;
            }
        } else if let Some(count) = term.strip_prefix('<') {
            if count
                .parse::<u32>()
                .is_ok_and(|count| info.members >= count)
            {
                return false;
            }
        } else if let Some(mask) = term.strip_prefix('!') {
            if glob(mask.as_bytes(), name) {
                return false;
            }
        } else {
            named = true;
            found |= if term.contains(['*', '?']) {
                glob(term.as_bytes(), name)
            } else {
                info.name.matches(term)
            };
        }
    }
    !named || found
}

/// How a `NAMES` answer ends.
#[derive(Clone, Copy)]
enum NamesEnd<'a> {
    /// With the room's own `366`.
    Room,
    /// With one `366` naming the whole list the client gave (`#a,#b`).
    List(&'a str),
    /// Not yet: more rooms of the list follow in later steps.
    Later,
}

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

    /// `353` lines naming up to [`MAX_IRC_NAMES`] members of `room`, then its `366`.
    pub(crate) fn names(&mut self, conn: ConnectionId, room: RoomId) {
        self.names_ending(conn, room, NamesEnd::Room);
    }

    /// `353`s for `room`, then the `366` that `end` says.
    fn names_ending(&mut self, conn: ConnectionId, room: RoomId, end: NamesEnd<'_>) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let Some(info) = self.rooms.get(room) else {
            return;
        };
        let roster = &*self.roster;
        let start = self.out.mark();
        let mut line_start = None;
        let members = roster.members_of(room).take(MAX_IRC_NAMES);
        let caps = self.caps(conn);
        let every = caps.has(crate::state::connection::Caps::MULTI_PREFIX);
        let full = caps.has(crate::state::connection::Caps::USERHOST_IN_NAMES);
        // RFC 2812's channel type: `@` secret, `=` public.
        let kind = if info.secret { '@' } else { '=' };
        for id in members {
            let at = self.out.mark();
            let op = status_prefix(roster, id, room, every);
            let shown = NamesEntry(roster, id, full);
            match line_start {
                Some(begun) if at - begun < NAMES_LINE_BYTES => {
                    let _ = write!(self.out, " {op}{}", shown);
                }
                Some(_) => {
                    let _ = write!(self.out, "\r\n");
                    line_start = Some(self.out.mark());
                    let _ = write!(
                        self.out,
                        ":{server} {RPL_NAMREPLY} {me} {kind} {} :{op}{}",
                        info.name, shown
                    );
                }
                None => {
                    line_start = Some(at);
                    let _ = write!(
                        self.out,
                        ":{server} {RPL_NAMREPLY} {me} {kind} {} :{op}{}",
                        info.name, shown
                    );
                }
            }
        }
        if line_start.is_some() {
            let _ = write!(self.out, "\r\n");
        }
        match end {
            NamesEnd::Room => {
                let _ = write!(
                    self.out,
                    ":{server} {RPL_ENDOFNAMES} {me} {} :End of /NAMES list\r\n",
                    info.name
                );
            }
            NamesEnd::List(list) => {
                let _ = write!(
                    self.out,
                    ":{server} {RPL_ENDOFNAMES} {me} {} :End of /NAMES list\r\n",
                    Visible(list)
                );
            }
            NamesEnd::Later => {}
        }
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

    /// `NAMES #a,#b`: the `353`s of one room per step, and a single `366` naming the whole list
    /// after the last (as RFC 2812 and irctest expect). The steps after the first are put back
    /// as `NAMES #b #a,#b`: the second parameter (RFC 2812's target server, not used here) then
    /// carries the list to name at the end, and is taken as such only when it ends with
    /// `,<first parameter>`.
    pub(crate) fn irc_names(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(targets) = message.param(0) else {
            return numeric!(self, conn, RPL_ENDOFNAMES, "* :End of /NAMES list");
        };
        let whole = message
            .param(1)
            .filter(|list| {
                list.len() > targets.len()
                    && list.ends_with(targets)
                    && list.as_bytes()[list.len() - targets.len() - 1] == b','
            })
            .unwrap_or(targets);
        let (target, end) = match targets.split_once(',') {
            Some((first, rest)) if !rest.is_empty() => {
                let mut again = message.clone();
                again.params.truncate(1);
                // Cannot fail: one parameter is left, of at least two.
                let _ = again.params.push(whole);
                self.put_back(conn, &again, rest);
                (first, NamesEnd::Later)
            }
            Some((first, _)) => (first, NamesEnd::List(whole)),
            None if whole.len() > targets.len() => (targets, NamesEnd::List(whole)),
            None => (targets, NamesEnd::Room),
        };
        match self.rooms.find(target) {
            Some(room) if self.names_shown(conn, room) => self.names_ending(conn, room, end),
            _ => match end {
                NamesEnd::Later => {}
                NamesEnd::List(list) => numeric!(
                    self,
                    conn,
                    RPL_ENDOFNAMES,
                    "{} :End of /NAMES list",
                    Visible(list)
                ),
                NamesEnd::Room => numeric!(
                    self,
                    conn,
                    RPL_ENDOFNAMES,
                    "{} :End of /NAMES list",
                    Visible(target)
                ),
            },
        }
    }

    /// Whether `conn` may see who is in `room`: always, unless it is secret (`+s`) and `conn`
    /// is not in it.
    pub(crate) fn names_shown(&self, conn: ConnectionId, room: RoomId) -> bool {
        self.roster.in_room(conn, room) || !self.rooms.get(room).is_some_and(|info| info.secret)
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
        let now = self.now;
        let wanted = |info: &crate::state::rooms::RoomView<'_>| {
            info.members > 0 && only.is_none_or(|only| list_wants(only, info, now))
        };
        let mut hidden = 0_usize;
        let roster = &*self.roster;
        for (at, (_, info)) in self
            .rooms
            .iter()
            // A secret room is listed only to those in it.
            .filter(|(room, info)| wanted(info) && (!info.secret || roster.in_room(conn, *room)))
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
            let (invisible, wallops) = self.roster.get(conn).map_or((false, false), |slot| {
                (slot.person.invisible, slot.person.wallops)
            });
            let operator = self.is_server_operator(conn);
            let mut modes = heapless::String::<4>::new();
            let _ = modes.push('+');
            for (on, letter) in [(invisible, 'i'), (operator, 'o'), (wallops, 'w')] {
                if on {
                    let _ = modes.push(letter);
                }
            }
            return numeric!(self, conn, RPL_UMODEIS, "{modes}");
        };
        // `i` and `w` are kept; `o` is whether one is identified as an operator's account
        // (`OPER`), not set by `MODE`, so it is left as it is; other letters get one 501.
        let (mut invisible, mut wallops) = (None, None);
        let (mut adding, mut unknown) = (true, false);
        for letter in change.chars() {
            match letter {
                '+' => adding = true,
                '-' => adding = false,
                'i' => invisible = Some(adding),
                'w' => wallops = Some(adding),
                'o' => {}
                _ => unknown = true,
            }
        }
        if unknown {
            numeric!(
                self,
                conn,
                ERR_UMODEUNKNOWNFLAG,
                ":Unknown MODE flag; only +i and +w are kept here"
            );
        }
        let Some(slot) = self.roster.get_mut(conn) else {
            return;
        };
        // What changed, as `+i-w`.
        let mut changed = heapless::String::<4>::new();
        for (wanted, kept, letter) in [
            (invisible, &mut slot.person.invisible, 'i'),
            (wallops, &mut slot.person.wallops, 'w'),
        ] {
            if let Some(on) = wanted
                && core::mem::replace(kept, on) != on
            {
                let _ = changed.push(if on { '+' } else { '-' });
                let _ = changed.push(letter);
            }
        }
        if !changed.is_empty() {
            let me = self.roster.irc_name(conn);
            irc!(self, Audience::one(conn), ":{me} MODE {me} :{changed}");
        }
    }
}
