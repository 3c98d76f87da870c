//! Keeping order in a room: its operators (whoever made it, and whom they make one), who may
//! put people out of it (`/kick`, IRC `KICK`) and make others operators or not (`/op`,
//! `/deop`, IRC `MODE #room +o/-o`). Per server: with several servers, a room's operators on
//! one are not known on the others yet, and people of other servers cannot be put out.

use core::fmt::Write;
use core::time::Duration;

use super::irc::numeric::{
    ERR_CANNOTSENDTOCHAN, ERR_CHANOPRIVSNEEDED, ERR_INVALIDMODEPARAM, ERR_NEEDMOREPARAMS,
    ERR_NOSUCHCHANNEL, ERR_NOSUCHNICK, ERR_NOTONCHANNEL, ERR_UNKNOWNMODE, ERR_USERNOTINCHANNEL,
    ERR_USERONCHANNEL, RPL_CHANNELMODEIS, RPL_CREATIONTIME, RPL_ENDOFINVITELIST, RPL_INVITELIST,
    RPL_INVITING,
};
use super::text::{For, Left, ReasonText};
use super::{Audience, Entry, Happened, Refused, RoomParam, Speaker, Step, Visible};
use crate::event::BanList;
use crate::state::members::Status;
use crate::state::rooms::{MAX_ROOM_KEY_BYTES, RoomId, RoomMode, room_key};
use crate::state::roster::ConnectionId;

pub(crate) use crate::state::moderation::ACCOUNT_BAN;

/// The most mode changes one `MODE` line (or `/mode`) makes; the rest of the line is
/// refused with a reply that says so. IRC's `MODES` in `005`.
pub const MAX_MODE_CHANGES: usize = 4;

/// The longest value of a mode change shown back in IRC's `696`, in bytes: a ban mask's bound.
const MAX_SHOWN_VALUE_BYTES: usize = crate::state::rooms::MAX_BAN_MASK_BYTES;

/// One change asked of a room's modes: IRC's `MODE #room +k key`, the plain `/mode +k key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModeChange<'a> {
    /// `+i`, `+m`, `+t` and their `-`.
    Flag(RoomMode, bool),
    /// `+k KEY`, or `-k` (with or without the key).
    Key(Option<&'a str>),
    /// `+l N` (the number as given, checked when made), or `-l`.
    Limit(Option<&'a str>),
    /// `+o`/`+v NICK` and their `-`.
    Member(Status, &'a str, bool),
    /// `+b MASK` or `-b MASK`; `+e`/`-e` (ban exceptions) and `+I`/`-I` (invite exceptions)
    /// alike.
    Ban(BanList, &'a str, bool),
    /// `+b`, `+e` or `+I` alone: that list.
    ShowList(BanList),
    /// `+r` or `-r`: register the room to one's account, or unregister it.
    Registered(bool),
    /// A letter that is no room mode here.
    Unknown(char),
    /// A letter that needs a parameter and had none.
    Missing(char),
}

/// Reads the changes of `modes` (`+kl-m`) with their `params` in order, at most
/// [`MAX_MODE_CHANGES`]; true in the second place if the line asked more.
pub(crate) fn mode_changes<'a>(
    modes: &'a str,
    params: &mut dyn Iterator<Item = &'a str>,
) -> (heapless::Vec<ModeChange<'a>, MAX_MODE_CHANGES>, bool) {
    let mut changes = heapless::Vec::new();
    let mut on = true;
    for letter in modes.chars() {
        let change = match letter {
            '+' => {
                on = true;
                continue;
            }
            '-' => {
                on = false;
                continue;
            }
            'k' if on => params
                .next()
                .map_or(ModeChange::Missing('k'), |key| ModeChange::Key(Some(key))),
            'k' => {
                // Clients send the key with `-k` (`CHANMODES` lists `k` as always taking one);
                // any is taken.
                let _ = params.next();
                ModeChange::Key(None)
            }
            'l' if on => params.next().map_or(ModeChange::Missing('l'), |limit| {
                ModeChange::Limit(Some(limit))
            }),
            'l' => ModeChange::Limit(None),
            'o' | 'v' => {
                let status = if letter == 'o' {
                    Status::Operator
                } else {
                    Status::Voice
                };
                params.next().map_or(ModeChange::Missing(letter), |nick| {
                    ModeChange::Member(status, nick, on)
                })
            }
            'b' | 'e' | 'I' => {
                let list = BanList::of_letter(letter).unwrap_or(BanList::Bans);
                match params.next() {
                    Some(mask) => ModeChange::Ban(list, mask, on),
                    None if on => ModeChange::ShowList(list),
                    None => ModeChange::Missing(letter),
                }
            }
            'r' => ModeChange::Registered(on),
            letter => RoomMode::of_letter(letter).map_or(ModeChange::Unknown(letter), |mode| {
                ModeChange::Flag(mode, on)
            }),
        };
        if changes.push(change).is_err() {
            return (changes, true);
        }
    }
    (changes, false)
}

/// Why an operator's action was not done.
#[derive(Clone, Copy, Debug)]
enum Refusal<'a> {
    NoSuchRoom(&'a str),
    NotInRoom,
    NotOperator,
    NoSuchPerson(&'a str),
    NotInIt(&'a str),
    Elsewhere(&'a str),
}

impl<S: crate::Storage> Step<'_, S> {
    fn refuse_moderation(&mut self, conn: ConnectionId, room: Option<RoomId>, why: Refusal<'_>) {
        let name = room
            .and_then(|room| self.rooms.get(room))
            .map(|info| info.name.clone());
        let shown = name.as_ref().map_or("", |name| name.as_str());
        if self.speaks_irc(conn) {
            match why {
                Refusal::NoSuchRoom(room) => numeric!(
                    self,
                    conn,
                    ERR_NOSUCHCHANNEL,
                    "{} :No such channel",
                    Visible(room)
                ),
                Refusal::NotInRoom => numeric!(
                    self,
                    conn,
                    ERR_NOTONCHANNEL,
                    "{shown} :You're not on that channel"
                ),
                Refusal::NotOperator => numeric!(
                    self,
                    conn,
                    ERR_CHANOPRIVSNEEDED,
                    "{shown} :You're not channel operator"
                ),
                Refusal::NoSuchPerson(nick) => numeric!(
                    self,
                    conn,
                    ERR_NOSUCHNICK,
                    "{} :No such nick/channel",
                    Visible(nick)
                ),
                Refusal::NotInIt(nick) => numeric!(
                    self,
                    conn,
                    ERR_USERNOTINCHANNEL,
                    "{} {shown} :They aren't on that channel",
                    Visible(nick)
                ),
                Refusal::Elsewhere(nick) => server_notice!(
                    self,
                    conn,
                    "*** error: {} is on another server; operators act on people of this one only \
                     (so far)",
                    Visible(nick)
                ),
            }
        } else {
            match why {
                Refusal::NoSuchRoom(room) => {
                    error!(self, conn, "there is no room {}", Visible(room));
                }
                Refusal::NotInRoom => error!(self, conn, "you are not in {shown}"),
                Refusal::NotOperator => error!(
                    self,
                    conn, "you are not an operator of {shown} (whoever makes a room is its first)"
                ),
                Refusal::NoSuchPerson(nick) => {
                    error!(self, conn, "no one here is called {}", Visible(nick));
                }
                Refusal::NotInIt(nick) => {
                    error!(self, conn, "{} is not in {shown}", Visible(nick));
                }
                Refusal::Elsewhere(nick) => error!(
                    self,
                    conn,
                    "{} is on another server; operators act on people of this one only (so far)",
                    Visible(nick)
                ),
            }
        }
    }

    /// Whether `conn` is a server operator: identified as an account named one.
    pub(crate) fn is_server_operator(&self, conn: ConnectionId) -> bool {
        !self.operators.is_empty()
            && self
                .roster
                .account(conn)
                .is_some_and(|account| self.operators.contains(account.as_str()))
    }

    /// Whether `conn` may keep order in `room`: one of its operators, or a server operator.
    pub(crate) fn keeps_order(&self, conn: ConnectionId, room: RoomId) -> bool {
        self.roster.is_op(conn, room) || self.is_server_operator(conn)
    }

    /// How many people here are server operators.
    pub(crate) fn server_operators_online(&self) -> usize {
        if self.operators.is_empty() {
            return 0;
        }
        let (live, slots) = self.roster.parts();
        live.iter()
            .filter_map(|&index| self.roster.account_in(slots.get(index as usize)?))
            .filter(|account| self.operators.contains(account.as_str()))
            .count()
    }

    /// The room called `name`, or `conn`'s current room when `None`.
    fn named_or_current(&self, conn: ConnectionId, name: Option<&str>) -> Option<RoomId> {
        match name {
            Some(name) => self.rooms.find(name),
            None => self.current(conn),
        }
    }

    /// How `conn` is shown, `nick!user@host`, as bans match it; `None` if it does not fit
    /// (never for someone of this server: their host is hidden).
    fn prefix_text(
        &self,
        conn: ConnectionId,
    ) -> Option<heapless::String<{ 2 * crate::state::roster::MAX_NICK_BYTES }>> {
        let mut prefix = heapless::String::new();
        write!(prefix, "{}", self.roster.prefix(conn)).ok()?;
        Some(prefix)
    }

    /// The check every operator's action makes: `room` (by name, or the current room when
    /// `None`) exists, `conn` is in it and is one of its operators; it is told why not.
    fn operated_room(&mut self, conn: ConnectionId, room: Option<&str>) -> Option<RoomId> {
        let found = self.named_or_current(conn, room);
        let Some(room) = found else {
            match room {
                Some(name) => self.refuse_moderation(conn, None, Refusal::NoSuchRoom(name)),
                None => self.refuse_moderation(conn, None, Refusal::NotInRoom),
            }
            return None;
        };
        // A server operator need not be in the room.
        if self.is_server_operator(conn) {
            return Some(room);
        }
        if !self.roster.in_room(conn, room) {
            self.refuse_moderation(conn, Some(room), Refusal::NotInRoom);
            return None;
        }
        if !self.roster.is_op(conn, room) {
            self.refuse_moderation(conn, Some(room), Refusal::NotOperator);
            return None;
        }
        Some(room)
    }

    /// [`operated_room`](Self::operated_room)'s checks, and that `target` is a person here
    /// in the room.
    fn operator_target<'t>(
        &mut self,
        conn: ConnectionId,
        room: Option<&'t str>,
        target: &'t str,
    ) -> Option<(RoomId, ConnectionId)> {
        let room = self.operated_room(conn, room)?;
        let Some(who) = self.roster.find(target) else {
            self.refuse_moderation(conn, Some(room), Refusal::NoSuchPerson(target));
            return None;
        };
        if !self.roster.in_room(who, room) {
            self.refuse_moderation(conn, Some(room), Refusal::NotInIt(target));
            return None;
        }
        Some((room, who))
    }

    /// Hands the other servers what `conn` just ordered about `who` in `room` (see
    /// [`relay::Order`](crate::relay::Order)), when servers share the chat. Someone still
    /// `anonymous-N` is known on their own server alone: no other server needs to hear of it.
    fn give_order(
        &mut self,
        conn: ConnectionId,
        room: RoomId,
        who: ConnectionId,
        action: crate::relay::Action<'_>,
    ) {
        use crate::output::{OrderAction, OrderRecord};
        use crate::relay::Action;
        use crate::state::roster::Name;
        if !self.relayed {
            return;
        }
        let (Some(info), Name::Nick(target)) = (self.rooms.get(room), self.roster.name(who)) else {
            return;
        };
        let name = info.name.clone();
        let room = self.out.span_str(name.as_str());
        let target = self.out.span_str(target.as_str());
        let by = self.out.span_name(self.roster.name(conn));
        let action = match action {
            Action::Kick { reason } => OrderAction::Kick {
                reason: reason.map(|reason| self.out.span_str(reason)),
            },
            Action::Status {
                status,
                on,
                duration,
            } => OrderAction::Status {
                status,
                on,
                duration,
            },
            Action::Invite => OrderAction::Invite,
        };
        self.out.order(OrderRecord {
            room,
            target,
            by,
            action,
        });
    }

    /// Puts `who` out of `room`, telling the room that `by` did.
    fn put_out(&mut self, who: ConnectionId, by: Speaker<'_>, room: RoomId, reason: Option<&str>) {
        self.publish(&Happened::Kicked {
            who,
            by,
            room,
            reason,
        });
        self.leave_room(who, room);
    }

    /// Gives `who` `status` in `room` (`on`, for `duration` if a mute), or takes it, telling
    /// the room that `by` did. A timed mute of someone here is kept (and lapses) here; of
    /// someone elsewhere, on their server. `Err` if the timed mutes are full. `Ok(false)`
    /// if nothing changed.
    fn give_status(
        &mut self,
        who: ConnectionId,
        by: Speaker<'_>,
        room: RoomId,
        status: Status,
        on: bool,
        duration: Option<Duration>,
    ) -> Result<bool, crate::state::moderation::TimedMutesFull> {
        if status == Status::Muted && !self.is_remote(who) {
            // Muting again sets a new duration (or none).
            let until = duration
                .filter(|_| on)
                .map(|duration| self.now.saturating_add(duration));
            self.mutes.set(who, room, until)?;
        }
        if self.roster.has(who, room, status) == on && duration.is_none() {
            return Ok(false);
        }
        self.roster.set_status(who, room, status, on);
        self.publish(&Happened::StatusSet {
            who,
            by,
            room,
            status,
            on,
            duration: duration.filter(|_| on),
        });
        Ok(true)
    }

    /// An operator of another server's order (see [`relay::Order`](crate::relay::Order)),
    /// from the server called `node`: carried out if its person is in the room here (for
    /// real if they are connected here), and shown to the room's members here.
    pub(crate) fn obey(&mut self, node: &str, order: &crate::relay::Order<'_>) {
        use crate::relay::Action;
        let (Some(room), Some(who)) = (self.rooms.find(order.room), self.roster.find(order.target))
        else {
            return;
        };
        let in_room = self.roster.in_room(who, room);
        if in_room == matches!(order.action, Action::Invite) {
            return;
        }
        // Only someone of another server can have given it: `anonymous-N` here is someone
        // else than the giver of that name there.
        let by = match self.roster.find(order.by) {
            Some(giver) if self.is_remote(giver) => Speaker::Listed(giver),
            _ => Speaker::Unlisted {
                nick: order.by,
                node,
            },
        };
        match order.action {
            Action::Kick { reason } => self.put_out(who, by, room, reason),
            // Kept where they are; the other servers have nothing to show.
            Action::Invite if !self.is_remote(who) => self.let_in(who, by, room),
            Action::Invite => {}
            Action::Status {
                status,
                on,
                duration,
            } => {
                // Full timed mutes: muted until taken back here, rather than not at all.
                if self
                    .give_status(who, by, room, status, on, duration)
                    .is_err()
                {
                    let _ = self.give_status(who, by, room, status, on, None);
                }
            }
        }
    }

    /// Invites `who`, here, into `room`, telling them `by` did.
    fn let_in(&mut self, who: ConnectionId, by: Speaker<'_>, room: RoomId) {
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return;
        };
        self.invites.invite(who, room);
        let shown = self.roster.name(who);
        if self.speaks_irc(who) {
            let prefix = super::irc::speaker_prefix(self.roster, by);
            // The server's tags (the inviter's account among them, `account-tag`) to a
            // client that reads them.
            let tags = super::irc::events::Tags {
                at: self.now,
                msgid: None,
                account: super::irc::events::sender_account(self.roster, by),
            };
            let tags =
                super::irc::events::Shown::to(self.caps(who), tags, super::irc::ClientTags::NONE);
            irc!(
                self,
                Audience::one(who),
                "{tags}:{prefix} INVITE {shown} {name}"
            );
        } else {
            let by = super::plain::speaker_name(self.style, self.roster, self.server_name, by);
            notice!(self, who, "{by} invites you into {name}: /join {name}");
        }
    }

    /// `conn` puts `target` out of `room` (the current room when `None`), telling the room.
    pub(crate) fn kick(
        &mut self,
        conn: ConnectionId,
        room: Option<&str>,
        target: &str,
        reason: Option<&str>,
    ) {
        let Some((room, who)) = self.operator_target(conn, room, target) else {
            return;
        };
        // Handed out before the room can go with its last member.
        self.give_order(conn, room, who, crate::relay::Action::Kick { reason });
        self.put_out(who, Speaker::Listed(conn), room, reason);
    }

    /// Whether `conn` matches one of `room`'s bans that hold now, and none of its ban
    /// exceptions (`+e`).
    pub(crate) fn banned(&self, conn: ConnectionId, room: RoomId) -> bool {
        self.listed(conn, room, BanList::Bans) && !self.listed(conn, room, BanList::Exceptions)
    }

    /// Whether `conn` matches one of the entries of `room`'s `list` that hold now: by
    /// `nick!user@host`, or by the account it is identified as (`$a:ACCOUNT`).
    pub(crate) fn listed(&self, conn: ConnectionId, room: RoomId, list: BanList) -> bool {
        let mut entries = self.rooms.bans_of(room, list, self.now).peekable();
        // Most rooms have no entry on most lists: nothing to work out then.
        if entries.peek().is_none() {
            return false;
        }
        let Some(prefix) = self.prefix_text(conn) else {
            return false;
        };
        let account = self.roster.account(conn);
        // Bans catch look-alikes of the nickname they name too; exceptions do not.
        let nick_key = (list == BanList::Bans)
            .then(|| {
                let nick = prefix
                    .split_once('!')
                    .map_or(prefix.as_str(), |(nick, _)| nick);
                crate::state::names::NameKey::of(nick)
            })
            .flatten();
        entries.any(|ban| match ban.mask.strip_prefix(ACCOUNT_BAN) {
            Some(banned) => account.is_some_and(|account| account.matches(banned)),
            None => crate::state::names::mask_matches(&ban.mask, &prefix, nick_key.as_ref()),
        })
    }

    /// `conn` bans `mask` (a nickname, `nick!user@host` with `*` and `?`, or `$a:ACCOUNT`)
    /// from `room` (the current room when `None`) for `duration` (`None`: until lifted),
    /// because of `reason`; or lifts the ban (`on` false). A ban keeps its matches from
    /// joining; it does not put out who is in. With another `list`, the same for a ban
    /// exception or an invite exception.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_ban(
        &mut self,
        conn: ConnectionId,
        room: Option<&str>,
        list: BanList,
        mask: &str,
        on: bool,
        duration: Option<Duration>,
        reason: Option<&str>,
    ) {
        let Some(room) = self.operated_room(conn, room) else {
            return;
        };
        // A bare nickname bans it from anywhere.
        let mut full = heapless::String::<{ crate::state::rooms::MAX_BAN_MASK_BYTES }>::new();
        let written = if mask.contains('!') || mask.starts_with(ACCOUNT_BAN) {
            write!(full, "{mask}")
        } else if mask.contains('@') {
            // `user@host`: any nickname.
            write!(full, "*!{mask}")
        } else {
            write!(full, "{mask}!*@*")
        };
        let bad_account = mask
            .strip_prefix(ACCOUNT_BAN)
            .is_some_and(|account| crate::state::nickname::Nickname::new(account).is_err());
        // A space or a leading `:` could not be shown as one value of a `MODE` line.
        if written.is_err()
            || mask.is_empty()
            || bad_account
            || mask.starts_with(':')
            || mask.contains(|c: char| c.is_control() || c.is_whitespace())
        {
            let why = format_args!(
                "a ban mask is a nickname, nick!user@host or {ACCOUNT_BAN}ACCOUNT, at most {} \
                 bytes",
                crate::state::rooms::MAX_BAN_MASK_BYTES
            );
            return self.invalid_mode_param(conn, room, 'b', Some(mask), why);
        }
        let changed = if on {
            let mut by = heapless::String::<{ crate::state::rooms::MAX_SETTER_BYTES }>::new();
            let _ = write!(by, "{}", self.roster.name(conn));
            let until = duration.map(|duration| self.now.saturating_add(duration));
            let kept = self
                .rooms
                .ban(room, list, &full, &by, self.now, until, self.now);
            match kept {
                Ok(added) => added,
                Err(_) => {
                    let text = format_args!(
                        "{} bans and exceptions are kept already, the most there can be; lift \
                         one first",
                        crate::state::rooms::MAX_BANS
                    );
                    return self.moderation_error(conn, text);
                }
            }
        } else {
            self.rooms.unban(room, list, &full)
        };
        if changed {
            self.publish(&Happened::BanSet {
                by: conn,
                room,
                list,
                mask: &full,
                on,
                duration,
                reason,
            });
            // Its last ban lifted by a server operator from outside, an empty room goes now.
            if !on {
                self.remove_if_empty(room);
            }
        }
    }

    /// `conn` (an operator of the room called `room_name`, the current room when `None`) sets
    /// `mode` on it (`on`), or not.
    pub(crate) fn set_room_mode(
        &mut self,
        conn: ConnectionId,
        room_name: Option<&str>,
        mode: RoomMode,
        on: bool,
    ) {
        let Some(room) = self.operated_room(conn, room_name) else {
            return;
        };
        if self
            .rooms
            .get_mut(room)
            .is_some_and(|info| info.set(mode, on))
        {
            self.publish(&Happened::RoomModeSet {
                by: conn,
                room,
                mode,
                on,
            });
        }
    }

    /// Whether `conn` may come into `room` (which exists) as `entry` says: not banned, and,
    /// when asking here, invited or past its invite-only mode, key and limit.
    pub(crate) fn may_enter(
        &mut self,
        conn: ConnectionId,
        room: RoomId,
        entry: Entry<'_>,
    ) -> Result<(), Refused> {
        let (Some(view), Some(info)) = (self.rooms.get(room), self.rooms.room(room)) else {
            return Err(Refused::TooManyRooms);
        };
        let name = view.name.clone();
        let Entry::Asked(key) = entry else {
            return match self.banned(conn, room) {
                true => Err(Refused::Banned(name)),
                false => Ok(()),
            };
        };
        // An operator's invitation lets one past everything, once; the room's founder and a
        // server operator always.
        if self.invites.is_invited(conn, room)
            || self.is_server_operator(conn)
            || self.is_founder(conn, room)
        {
            return Ok(());
        }
        let full = info.limit.is_some_and(|limit| view.members >= limit.get());
        let invite_only =
            info.has(RoomMode::InviteOnly) && !self.listed(conn, room, BanList::InviteExceptions);
        let keyed = self
            .rooms
            .key_of(room)
            .is_some_and(|kept| key != Some(kept));
        if self.banned(conn, room) {
            Err(Refused::Banned(name))
        } else if invite_only {
            Err(Refused::InviteOnly(name))
        } else if keyed {
            Err(Refused::BadKey(name))
        } else if full {
            Err(Refused::Full(Some(name), view.members))
        } else {
            Ok(())
        }
    }

    /// `conn` changes the modes of the room called `room_name` (the current room when
    /// `None`), as `modes` with `params` say; with no `modes`, it is told them.
    pub(crate) fn change_modes<'a>(
        &mut self,
        conn: ConnectionId,
        room_name: Option<&str>,
        modes: Option<&'a str>,
        params: &mut dyn Iterator<Item = &'a str>,
    ) {
        let Some(modes) = modes else {
            return self.show_modes(conn, room_name);
        };
        let (changes, cut) = mode_changes(modes, params);
        // IRC clients see the changes made on one line, sent once they are all made.
        self.mode_line = Some(super::irc::mode_line::ModeLine::new(conn));
        for change in changes {
            match change {
                ModeChange::Flag(mode, on) => self.set_room_mode(conn, room_name, mode, on),
                ModeChange::Key(key) => self.set_room_param(conn, room_name, 'k', key),
                ModeChange::Limit(limit) => self.set_room_param(conn, room_name, 'l', limit),
                ModeChange::Member(status, nick, on) => {
                    self.set_status(conn, room_name, nick, status, on, None);
                }
                ModeChange::Ban(list, mask, on) => {
                    self.set_ban(conn, room_name, list, mask, on, None, None);
                }
                ModeChange::Registered(on) => self.register_room(conn, room_name, on),
                ModeChange::ShowList(list) => match self.named_or_current(conn, room_name) {
                    Some(room) => self.ban_list(conn, room, list),
                    None => self.refuse_moderation(
                        conn,
                        None,
                        Refusal::NoSuchRoom(room_name.unwrap_or("")),
                    ),
                },
                ModeChange::Unknown(letter) => {
                    if self.speaks_irc(conn) {
                        numeric!(
                            self,
                            conn,
                            ERR_UNKNOWNMODE,
                            "{} :is not a channel mode here (b, e, i, I, k, l, m, n, o, r, s, t and v are)",
                            Visible(letter.encode_utf8(&mut [0; 4]))
                        );
                    } else {
                        error!(
                            self,
                            conn,
                            "{} is not a room mode here (b, e, i, I, k, l, m, n, o, r, s, t and v are)",
                            Visible(letter.encode_utf8(&mut [0; 4]))
                        );
                    }
                }
                ModeChange::Missing(letter) => {
                    if self.speaks_irc(conn) {
                        numeric!(
                            self,
                            conn,
                            ERR_NEEDMOREPARAMS,
                            "MODE :Not enough parameters (+{letter} needs one)"
                        );
                    } else {
                        error!(self, conn, "+{letter} needs a value: /mode +{letter} VALUE");
                    }
                }
            }
        }
        self.flush_modes();
        if cut {
            let text = format_args!(
                "one line makes at most {MAX_MODE_CHANGES} mode changes; the rest were not made"
            );
            self.moderation_error(conn, text);
        }
    }

    /// IRC's `324` (or a plain line) for the modes of the room called `room_name` (the
    /// current room when `None`); the key is shown to its members only.
    fn show_modes(&mut self, conn: ConnectionId, room_name: Option<&str>) {
        let found = self.named_or_current(conn, room_name);
        let (Some(room), Some(view)) = (found, found.and_then(|room| self.rooms.get(room))) else {
            return self.refuse_moderation(
                conn,
                None,
                Refusal::NoSuchRoom(room_name.unwrap_or("")),
            );
        };
        let name = view.name.clone();
        let Some(info) = self.rooms.room(room) else {
            return;
        };
        let created = info.created;
        let mut letters = heapless::String::<{ 4 + RoomMode::ALL.len() }>::new();
        let _ = letters.push('+');
        let key = self.rooms.key_of(room);
        let member = self.roster.in_room(conn, room);
        for mode in RoomMode::ALL.into_iter().filter(|&mode| info.has(mode)) {
            let _ = letters.push(mode.letter());
        }
        let limit = info.limit;
        if self.rooms.founder_of(room).is_some() {
            let _ = letters.push('r');
        }
        if key.is_some() {
            let _ = letters.push('k');
        }
        if limit.is_some() {
            let _ = letters.push('l');
        }
        let mut values = heapless::String::<{ MAX_ROOM_KEY_BYTES + 12 }>::new();
        if let Some(key) = key {
            let _ = write!(values, " {}", if member { key } else { "*" });
        }
        if let Some(limit) = limit {
            let _ = write!(values, " {limit}");
        }
        if self.speaks_irc(conn) {
            numeric!(self, conn, RPL_CHANNELMODEIS, "{name} {letters}{values}");
            let seconds = created.as_millis() / 1000;
            numeric!(self, conn, RPL_CREATIONTIME, "{name} {seconds}");
        } else if letters.len() == 1 {
            notice!(self, conn, "{name} has no modes set");
        } else {
            notice!(self, conn, "Modes of {name}: {letters}{values}");
        }
    }

    /// `conn` sets the key (`letter` `k`) or limit (`l`) of the room called `room_name` to
    /// `value`, or lifts it (`None`). A value that is not one is refused (IRC's `696`).
    fn set_room_param(
        &mut self,
        conn: ConnectionId,
        room_name: Option<&str>,
        letter: char,
        value: Option<&str>,
    ) {
        let Some(room) = self.operated_room(conn, room_name) else {
            return;
        };
        let param = if letter == 'k' {
            let key = match value.map(room_key) {
                None => None,
                Some(Some(key)) => Some(key),
                Some(None) => {
                    let why = format_args!(
                        "a key is 1 to {MAX_ROOM_KEY_BYTES} characters of ASCII, without spaces \
                         or commas"
                    );
                    // The key tried is not shown: it may be meant to be one.
                    return self.invalid_mode_param(conn, room, letter, None, why);
                }
            };
            match self.rooms.set_key(room, key.as_ref()) {
                Ok(true) => {}
                Ok(false) => return,
                Err(_) => {
                    let text = format_args!(
                        "{} rooms have a key already, the most there can be",
                        crate::state::rooms::MAX_KEYED_ROOMS
                    );
                    return self.moderation_error(conn, text);
                }
            }
            return self.publish(&Happened::RoomParamSet {
                by: conn,
                room,
                param: RoomParam::Key(key.as_deref()),
            });
        } else {
            let limit = match value.map(str::parse::<core::num::NonZeroU32>) {
                None => None,
                Some(Ok(limit)) => Some(limit),
                Some(Err(_)) => {
                    let why = format_args!("a limit is a whole number of people, at least 1");
                    return self.invalid_mode_param(conn, room, letter, value, why);
                }
            };
            let Some(info) = self.rooms.get_mut(room) else {
                return;
            };
            if info.limit == limit {
                return;
            }
            info.limit = limit;
            RoomParam::Limit(limit.map(core::num::NonZeroU32::get))
        };
        self.publish(&Happened::RoomParamSet {
            by: conn,
            room,
            param,
        });
    }

    /// Tells `conn` the value it gave mode `letter` of `room` is not one (IRC's `696`,
    /// `#room LETTER VALUE :why`). The value is shown as `*` when `shown` is `None`, or when it
    /// could not be one parameter of the line (empty, with a space, starting with `:`); cut to
    /// [`MAX_SHOWN_VALUE_BYTES`].
    fn invalid_mode_param(
        &mut self,
        conn: ConnectionId,
        room: RoomId,
        letter: char,
        shown: Option<&str>,
        why: core::fmt::Arguments<'_>,
    ) {
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return;
        };
        if self.speaks_irc(conn) {
            let value = shown
                .filter(|value| {
                    !value.is_empty()
                        && !value.starts_with(':')
                        && !value.contains(char::is_whitespace)
                })
                .map_or("*", |value| {
                    crate::wire::line::cut(value, MAX_SHOWN_VALUE_BYTES)
                });
            let value = Visible(value);
            numeric!(
                self,
                conn,
                ERR_INVALIDMODEPARAM,
                "{name} {letter} {value} :{why}"
            );
        } else {
            error!(self, conn, "{why}");
        }
    }

    /// `conn` registers the room called `room_name` (the current room when `None`) to the
    /// account it is identified as (`on`), or unregisters it. Registering takes one of the
    /// room's operators who is identified; unregistering, its founder or a server operator.
    pub(crate) fn register_room(&mut self, conn: ConnectionId, room_name: Option<&str>, on: bool) {
        let Some(room) = self.operated_room(conn, room_name) else {
            return;
        };
        let account = self.roster.account(conn).cloned();
        let founder = self.rooms.founder_of(room).cloned();
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return;
        };
        let founder_here = self.is_founder(conn, room);
        if on {
            let Some(account) = account else {
                let text = format_args!(
                    "identify first (/identify PASSWORD): a room is registered to your account"
                );
                return self.moderation_error(conn, text);
            };
            if let Some(founder) = founder {
                if founder_here {
                    return;
                }
                let text = format_args!("{name} is registered to {founder} already");
                return self.moderation_error(conn, text);
            }
            if self.rooms.set_founder(room, Some(&account)).is_err() {
                let text = format_args!(
                    "{} rooms are registered already, the most there can be",
                    crate::state::rooms::MAX_REGISTERED_ROOMS
                );
                return self.moderation_error(conn, text);
            }
            self.publish(&Happened::RoomRegistered {
                by: conn,
                room,
                founder: Some(account.as_str()),
            });
        } else {
            if founder.is_none() {
                return;
            }
            if !founder_here && !self.is_server_operator(conn) {
                let text =
                    format_args!("only {name}'s founder or a server operator can unregister it");
                return self.moderation_error(conn, text);
            }
            let _ = self.rooms.set_founder(room, None);
            self.publish(&Happened::RoomRegistered {
                by: conn,
                room,
                founder: None,
            });
            // Unregistered by a server operator from outside, an empty room goes now.
            self.remove_if_empty(room);
        }
    }

    /// Whether `conn` is identified as the account `room` is registered to.
    pub(crate) fn is_founder(&self, conn: ConnectionId, room: RoomId) -> bool {
        let Some(founder) = self.rooms.founder_of(room) else {
            return false;
        };
        self.roster
            .account(conn)
            .is_some_and(|account| founder.matches(account.as_str()))
    }

    /// Puts `conn` out of the server if a server-wide ban names it, telling it why; true if
    /// it was.
    pub(crate) fn put_out_if_banned(&mut self, conn: ConnectionId) -> bool {
        // A server operator is never put out: they can always lift a ban that names them.
        if self.roster.get(conn).is_none() || self.is_remote(conn) || self.is_server_operator(conn)
        {
            return false;
        }
        let (Some(prefix), Some(slot)) = (self.prefix_text(conn), self.roster.get(conn)) else {
            return false;
        };
        let (account, peer) = (self.roster.account(conn), slot.connection.peer);
        let Some(ban) = self
            .server_bans
            .holding(self.now)
            .find(|ban| ban.target.matches(&prefix, account, peer))
        else {
            return false;
        };
        let reason = ban.reason.clone();
        let why = ReasonText(Some(reason.as_str()).filter(|reason| !reason.is_empty()));
        if self.speaks_irc(conn) {
            irc!(
                self,
                Audience::one(conn),
                "ERROR :Closing link: you are banned from this server{why}"
            );
        } else {
            notice!(self, conn, "You are banned from this server{why}.");
        }
        self.depart(conn, &crate::output::CloseReason::Banned);
        self.out.close(conn, crate::output::CloseReason::Banned);
        true
    }

    /// `conn`, a server operator, bans `mask` from the server (a nickname, `nick!user@host`,
    /// `$a:ACCOUNT`, an address or a network) for `duration` (`None`: until lifted), because
    /// of `reason`; or lifts the ban (`on` false). Those online who match are put out, a few
    /// at each timeout.
    pub(crate) fn set_server_ban(
        &mut self,
        conn: ConnectionId,
        mask: &str,
        on: bool,
        duration: Option<Duration>,
        reason: Option<&str>,
    ) {
        use crate::state::moderation::{BanTarget, MAX_SERVER_BAN_REASON_BYTES, ServerBan};
        if !self.is_server_operator(conn) {
            if self.speaks_irc(conn) {
                numeric!(
                    self,
                    conn,
                    super::irc::numeric::ERR_NOPRIVILEGES,
                    ":Permission Denied- only server operators ban from the server"
                );
            } else {
                error!(
                    self,
                    conn, "only server operators ban from the server (--oper)"
                );
            }
            return;
        }
        let Some(target) = BanTarget::parse(mask) else {
            let text = format_args!(
                "a server ban names a nickname, nick!user@host, {ACCOUNT_BAN}ACCOUNT, an address \
                 or a network (198.51.100.0/24), at most {} bytes",
                crate::state::rooms::MAX_BAN_MASK_BYTES
            );
            return self.moderation_error(conn, text);
        };
        let mut shown = heapless::String::<{ crate::state::rooms::MAX_BAN_MASK_BYTES + 8 }>::new();
        let _ = write!(shown, "{target}");
        let until = duration.map(|duration| self.now.saturating_add(duration));
        let reason = crate::wire::line::cut(reason.unwrap_or(""), MAX_SERVER_BAN_REASON_BYTES);
        let changed = if on {
            let mut by = heapless::String::new();
            let _ = write!(by, "{}", self.roster.name(conn));
            let ban = ServerBan {
                target,
                by,
                at: self.now,
                until,
                reason: heapless::String::try_from(reason).unwrap_or_default(),
            };
            match self.server_bans.set(ban, self.now) {
                Ok(changed) => changed,
                Err(_) => {
                    let text = format_args!(
                        "{} server bans are kept already, the most there can be; lift one first",
                        crate::state::moderation::MAX_SERVER_BANS
                    );
                    return self.moderation_error(conn, text);
                }
            }
        } else {
            match self.server_bans.lift(&target) {
                Some(lifted) => {
                    // Told, kept and shared as it was set, so that a store or another server
                    // that keeps it by its mask finds it whatever the case typed now.
                    shown.clear();
                    let _ = write!(shown, "{}", lifted.target);
                    true
                }
                None => false,
            }
        };
        let (until_text, why) = (
            For(duration),
            ReasonText(Some(reason).filter(|r| !r.is_empty())),
        );
        let told = match (on, changed) {
            (true, true) => format_args!("You banned {shown} from the server{until_text}{why}."),
            (true, false) => format_args!("{shown} is banned from the server already."),
            (false, true) => format_args!("You lifted the server ban on {shown}."),
            (false, false) => format_args!("{shown} is not banned from the server."),
        };
        if self.speaks_irc(conn) {
            server_notice!(self, conn, "*** {told}");
        } else {
            notice!(self, conn, "{told}");
        }
        if !changed {
            return;
        }
        self.publish(&Happened::ServerBanSet {
            by: conn,
            mask: &shown.as_str(),
            on,
            at: self.now,
            until,
            reason,
        });
        if on {
            self.server_bans.start_sweep(self.roster.len());
        }
    }

    /// The server-wide bans, for a server operator: plain lines, or IRC's `STATS K` (`216`
    /// each, then `219`).
    pub(crate) fn list_server_bans(&mut self, conn: ConnectionId) {
        use super::irc::numeric::{ERR_NOPRIVILEGES, RPL_ENDOFSTATS, RPL_STATSKLINE};
        let irc = self.speaks_irc(conn);
        if !self.is_server_operator(conn) {
            if irc {
                numeric!(
                    self,
                    conn,
                    ERR_NOPRIVILEGES,
                    ":Permission Denied- You're not an IRC operator"
                );
            } else {
                error!(self, conn, "only server operators see the server bans");
            }
            return;
        }
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let now = self.now;
        let start = self.out.mark();
        if !irc {
            let count = self.server_bans.holding(now).count();
            let _ = write!(
                self.out,
                "{} Server bans ({count}):\r\n",
                self.style.notice()
            );
        }
        for ban in self.server_bans.holding(now) {
            let left = ban.until.map(|until| {
                Duration::from_millis(until.as_millis().saturating_sub(now.as_millis()))
            });
            let why = ReasonText(Some(ban.reason.as_str()).filter(|reason| !reason.is_empty()));
            let ago = super::text::Ago(Duration::from_millis(
                now.as_millis().saturating_sub(ban.at.as_millis()),
            ));
            if irc {
                let _ = write!(
                    self.out,
                    ":{server} {RPL_STATSKLINE} {me} K {} * * :set by {} {ago}{}{why}\r\n",
                    ban.target,
                    ban.by,
                    Left(left)
                );
            } else {
                let _ = write!(
                    self.out,
                    "{}   {} (by {} {ago}{}){why}\r\n",
                    self.style.notice(),
                    ban.target,
                    ban.by,
                    Left(left)
                );
            }
        }
        if irc {
            let _ = write!(
                self.out,
                ":{server} {RPL_ENDOFSTATS} {me} K :End of /STATS report\r\n"
            );
        }
        self.out.send(start, Audience::one(conn));
    }

    /// `conn` invites `target` into the room called `room_name` (the current room when
    /// `None`): `conn` must be in it, and one of its operators if it is invite-only.
    pub(crate) fn invite(&mut self, conn: ConnectionId, target: &str, room_name: Option<&str>) {
        let found = self.named_or_current(conn, room_name);
        let Some(room) = found else {
            let name = room_name.unwrap_or("");
            return self.refuse_moderation(conn, None, Refusal::NoSuchRoom(name));
        };
        let Some(who) = self.roster.find(target) else {
            return self.refuse_moderation(conn, Some(room), Refusal::NoSuchPerson(target));
        };
        let server_operator = self.is_server_operator(conn);
        if !self.roster.in_room(conn, room) && !server_operator {
            return self.refuse_moderation(conn, Some(room), Refusal::NotInRoom);
        }
        let invite_only = self
            .rooms
            .room(room)
            .is_some_and(|info| info.has(RoomMode::InviteOnly));
        if invite_only && !self.keeps_order(conn, room) {
            return self.refuse_moderation(conn, Some(room), Refusal::NotOperator);
        }
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return;
        };
        let shown = self.roster.name(who);
        if self.roster.in_room(who, room) {
            if self.speaks_irc(conn) {
                numeric!(
                    self,
                    conn,
                    ERR_USERONCHANNEL,
                    "{shown} {name} :is already on channel"
                );
            } else {
                error!(self, conn, "{shown} is in {name} already");
            }
            return;
        }
        let remote = self.is_remote(who);
        if remote && !self.relayed {
            return self.refuse_moderation(conn, Some(room), Refusal::Elsewhere(target));
        }
        let shown = self.roster.name(who);
        if self.speaks_irc(conn) {
            numeric!(self, conn, RPL_INVITING, "{shown} {name}");
        } else {
            notice!(self, conn, "You invited {shown} into {name}.");
        }
        if remote {
            // Kept on their server, which lets them in.
            self.give_order(conn, room, who, crate::relay::Action::Invite);
        } else {
            self.let_in(who, Speaker::Listed(conn), room);
        }
    }

    /// IRC's `INVITE` alone: the rooms `conn` is invited into (`336`, then `337`).
    pub(crate) fn invite_list(&mut self, conn: ConnectionId) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        for room in self.invites.rooms_of(conn) {
            if let Some(info) = self.rooms.get(room) {
                let _ = write!(
                    self.out,
                    ":{server} {RPL_INVITELIST} {me} {}\r\n",
                    info.name
                );
            }
        }
        let _ = write!(
            self.out,
            ":{server} {RPL_ENDOFINVITELIST} {me} :End of /INVITE list\r\n"
        );
        self.out.send(start, Audience::one(conn));
    }

    /// Tells `conn` a locked topic is its operators' to set.
    pub(crate) fn topic_refused(&mut self, conn: ConnectionId, room: RoomId) {
        self.refuse_moderation(conn, Some(room), Refusal::NotOperator);
    }

    /// Tells `conn` what went wrong, as an error line or an IRC server notice.
    fn moderation_error(&mut self, conn: ConnectionId, text: core::fmt::Arguments<'_>) {
        if self.speaks_irc(conn) {
            server_notice!(self, conn, "*** error: {text}");
        } else {
            error!(self, conn, "{text}");
        }
    }

    /// `room`'s `list`: on IRC, `367` for each ban then `368` (`348`/`349` for ban
    /// exceptions, `346`/`347` for invite exceptions), each with its setter and time; as
    /// plain lines otherwise.
    fn ban_list(&mut self, conn: ConnectionId, room: RoomId, list: BanList) {
        use super::irc::numeric::{
            RPL_BANLIST, RPL_ENDOFBANLIST, RPL_ENDOFEXCEPTLIST, RPL_ENDOFINVEXLIST, RPL_EXCEPTLIST,
            RPL_INVEXLIST,
        };
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let Some(name) = self.rooms.get(room).map(|info| info.name) else {
            return;
        };
        let irc = self.speaks_irc(conn);
        let (one, end, what) = match list {
            BanList::Bans => (RPL_BANLIST, RPL_ENDOFBANLIST, "channel ban list"),
            BanList::Exceptions => (
                RPL_EXCEPTLIST,
                RPL_ENDOFEXCEPTLIST,
                "channel exception list",
            ),
            BanList::InviteExceptions => (
                RPL_INVEXLIST,
                RPL_ENDOFINVEXLIST,
                "channel invite exception list",
            ),
        };
        if !irc {
            let mut count = 0usize;
            for ban in self.rooms.bans_of(room, list, self.now) {
                count += 1;
                let (mask, by) = (Visible(&ban.mask), &ban.by);
                notice!(self, conn, "{list} on {name}: {mask} (set by {by})");
            }
            if count == 0 {
                notice!(self, conn, "{name} has no {list}s");
            }
            return;
        }
        let start = self.out.mark();
        for ban in self.rooms.bans_of(room, list, self.now) {
            let (mask, by, at) = (Visible(&ban.mask), &ban.by, ban.at.as_millis() / 1000);
            let _ = write!(self.out, ":{server} {one} {me} {name} {mask} {by} {at}\r\n");
        }
        let _ = write!(self.out, ":{server} {end} {me} {name} :End of {what}\r\n");
        self.out.send(start, Audience::one(conn));
    }

    /// `conn` gives `target` `status` in `room` (the current room when `None`), or takes it.
    pub(crate) fn set_status(
        &mut self,
        conn: ConnectionId,
        room: Option<&str>,
        target: &str,
        status: Status,
        on: bool,
        duration: Option<Duration>,
    ) {
        let Some((room, who)) = self.operator_target(conn, room, target) else {
            return;
        };
        match self.give_status(who, Speaker::Listed(conn), room, status, on, duration) {
            Ok(true) => {
                let duration = duration.filter(|_| on);
                let action = crate::relay::Action::Status {
                    status,
                    on,
                    duration,
                };
                self.give_order(conn, room, who, action);
            }
            Ok(false) => {}
            Err(_) => {
                let text = format_args!(
                    "{} mutes with a duration are kept already, the most there can be; mute \
                     without one, or wait",
                    crate::state::moderation::MAX_TIMED_MUTES
                );
                self.moderation_error(conn, text);
            }
        }
    }

    /// Whether `conn` may talk in `room`: not muted there, and an operator or voiced if the
    /// room is moderated. Tells it why not.
    pub(crate) fn may_speak(&mut self, conn: ConnectionId, room: RoomId) -> bool {
        let mut muted = self.roster.has(conn, room, Status::Muted);
        if muted && self.mutes.lapsed(conn, room, self.now) {
            // A mute that lapsed ends quietly: the room was told for how long.
            self.roster.set_status(conn, room, Status::Muted, false);
            muted = false;
        }
        let moderated = self
            .rooms
            .get_mut(room)
            .is_some_and(|info| info.has(RoomMode::Moderated))
            && !self.keeps_order(conn, room)
            && !self.roster.has(conn, room, Status::Voice);
        if !muted && !moderated {
            return true;
        }
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return false;
        };
        if self.speaks_irc(conn) {
            let why = if muted { "you are muted" } else { "+m" };
            numeric!(
                self,
                conn,
                ERR_CANNOTSENDTOCHAN,
                "{name} :Cannot send to channel ({why})"
            );
        } else if muted {
            error!(self, conn, "you are muted in {name}; it was not sent");
        } else {
            error!(
                self,
                conn, "only operators and voiced people talk in {name}; it was not sent"
            );
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::string::String;
    use std::vec::Vec;

    use crate::testing::{Driver, Transcript};
    use crate::{Config, ConnectionId, Instant, ServerName};

    struct Room {
        driver: Driver<16>,
        heard: Transcript,
    }

    impl Room {
        fn new() -> Self {
            let config = Config::default()
                .with_colour(false)
                .with_flood_limit(None)
                .with_greeting_delay(Duration::ZERO)
                .with_server_name(ServerName::new("irc.test").unwrap());
            Self {
                driver: Driver::new(config, Instant::from_millis(1_000)),
                heard: Transcript::default(),
            }
        }

        fn with_accounts() -> Self {
            let config = Config::default()
                .with_colour(false)
                .with_flood_limit(None)
                .with_greeting_delay(Duration::ZERO)
                .with_accounts(true)
                .with_server_name(ServerName::new("irc.test").unwrap());
            Self {
                driver: Driver::new(config, Instant::from_millis(1_000)),
                heard: Transcript::default(),
            }
        }

        /// The one account request made since the last call.
        fn account_request(&mut self) -> crate::account::AccountRequest {
            let mut requests = self.driver.take_account_requests();
            assert_eq!(requests.len(), 1, "{requests:?}");
            requests.remove(0)
        }

        /// The runner says yes to `request`.
        fn answer(&mut self, request: &crate::account::AccountRequest) {
            let heard = &mut self.heard;
            self.driver
                .answer_account(
                    request,
                    crate::account::AccountAnswer::Done,
                    &mut |output| heard.record(output),
                )
                .unwrap();
        }

        fn connect(&mut self, lines: &str) -> ConnectionId {
            let heard = &mut self.heard;
            let conn = self
                .driver
                .connect(&mut |output| heard.record(output))
                .unwrap();
            self.send(conn, lines);
            conn
        }

        fn send(&mut self, conn: ConnectionId, text: &str) -> Vec<String> {
            let heard = &mut self.heard;
            self.driver
                .input(conn, text.as_bytes(), &mut |output| heard.record(output));
            self.heard.take(conn)
        }
    }

    #[test]
    fn a_ban_keeps_its_matches_out_until_it_is_lifted() {
        let mut room = Room::new();
        let alice = room.connect("/nick alice\n/join #rust\n");
        let bob = room.connect("/nick bob\n/join #rust\n");
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        room.heard.take(alice);
        room.heard.take(bob);
        assert_eq!(
            room.send(bob, "/ban dave\n"),
            ["*** error: you are not an operator of #rust (whoever makes a room is its first)"]
        );
        assert_eq!(
            room.send(alice, "/ban BOB\n"),
            ["*** alice banned BOB!*@* from #rust"]
        );
        assert_eq!(
            room.heard.take(dave),
            [":alice!plain@hidden MODE #rust +b BOB!*@*"]
        );
        // It does not put bob out; once out, he cannot come back, under any case of his name.
        room.send(bob, "/part #rust\n");
        assert_eq!(
            room.send(bob, "/join #RUST\n"),
            ["*** error: you are banned from #rust"]
        );
        // Back on a new connection, by the same name: still out.
        room.send(bob, "/quit\n");
        let again = room.connect("/nick bob\n");
        room.heard.take(again);
        assert_eq!(
            room.send(again, "/join #rust\n"),
            ["*** error: you are banned from #rust"]
        );
        // IRC: the list, a masked ban, 474.
        let ivy = room.connect("NICK ivy\r\nUSER ivy 0 * :I\r\n");
        room.heard.take(ivy);
        room.heard.take(dave);
        assert_eq!(
            room.send(dave, "MODE #rust +b\r\n"),
            [
                ":irc.test 367 dave #rust BOB!*@* alice 1",
                ":irc.test 368 dave #rust :End of channel ban list"
            ]
        );
        room.send(alice, "/op dave\n");
        room.send(dave, "MODE #rust +b *!~ivy@*\r\n");
        assert_eq!(
            room.send(ivy, "JOIN #rust\r\n"),
            [":irc.test 474 ivy #rust :Cannot join channel (+b)"]
        );
        // Lifted: bob is let in again.
        room.heard.take(alice);
        room.heard.take(again);
        assert_eq!(
            room.send(alice, "/unban bob\n"),
            ["*** alice lifted the ban on bob!*@* in #rust"]
        );
        room.heard.take(again);
        assert_eq!(
            room.send(again, "/join #rust\n")[0],
            "*** You are now talking in #rust."
        );
    }

    #[test]
    fn exceptions_let_their_matches_past_bans_and_invite_only() {
        let mut room = Room::new();
        let op = room.connect("NICK op\r\nUSER o 0 * :O\r\nJOIN #rust\r\n");
        let bar = room.connect("NICK bar\r\nUSER b 0 * :B\r\n");
        let baz = room.connect("NICK baz\r\nUSER z 0 * :Z\r\n");
        let text = room.connect("/nick text\n");
        for conn in [op, bar, baz, text] {
            room.heard.take(conn);
        }
        // Only an operator sets them.
        room.send(text, "/join #rust\n");
        assert_eq!(
            room.send(text, "/mode +e bar\n"),
            ["*** error: you are not an operator of #rust (whoever makes a room is its first)"]
        );
        room.send(text, "/part #rust\n");
        room.heard.take(op);
        room.send(op, "MODE #rust +b ba*!*@*\r\n");
        assert_eq!(
            room.send(bar, "JOIN #rust\r\n"),
            [":irc.test 474 bar #rust :Cannot join channel (+b)"]
        );
        assert_eq!(
            room.send(op, "MODE #rust +e *ar!*@*\r\n"),
            [":op!~o@hidden MODE #rust +e *ar!*@*"]
        );
        // bar is excepted from the ban; baz, banned too, is not.
        assert_eq!(
            room.send(bar, "JOIN #rust\r\n")[0],
            ":bar!~b@hidden JOIN #rust"
        );
        assert_eq!(
            room.send(baz, "JOIN #rust\r\n"),
            [":irc.test 474 baz #rust :Cannot join channel (+b)"]
        );
        room.heard.take(op);
        assert_eq!(
            room.send(op, "MODE #rust +e\r\n"),
            [
                ":irc.test 348 op #rust *ar!*@* op 1",
                ":irc.test 349 op #rust :End of channel exception list"
            ]
        );
        // Lists apart: the ban list has only the ban, and lifting the exception is not
        // lifting the ban.
        assert_eq!(room.send(op, "MODE #rust +b\r\n").len(), 2);
        room.send(op, "MODE #rust -e *AR!*@*\r\n");
        room.send(bar, "PART #rust\r\n");
        assert_eq!(
            room.send(bar, "JOIN #rust\r\n"),
            [":irc.test 474 bar #rust :Cannot join channel (+b)"]
        );
        // Invite exceptions: past +i without an invitation, not past a ban.
        room.send(op, "MODE #rust -b ba*!*@*\r\n");
        room.send(op, "MODE #rust +i\r\n");
        assert_eq!(
            room.send(bar, "JOIN #rust\r\n"),
            [":irc.test 473 bar #rust :Cannot join channel (+i)"]
        );
        room.heard.take(op);
        assert_eq!(
            room.send(op, "MODE #rust +I bar\r\n"),
            [":op!~o@hidden MODE #rust +I bar!*@*"]
        );
        assert_eq!(
            room.send(bar, "JOIN #rust\r\n")[0],
            ":bar!~b@hidden JOIN #rust"
        );
        assert_eq!(
            room.send(baz, "JOIN #rust\r\n"),
            [":irc.test 473 baz #rust :Cannot join channel (+i)"]
        );
        room.send(op, "MODE #rust +b baz\r\n");
        room.send(op, "MODE #rust +I baz\r\n");
        assert_eq!(
            room.send(baz, "JOIN #rust\r\n"),
            [":irc.test 474 baz #rust :Cannot join channel (+b)"]
        );
        room.heard.take(op);
        assert_eq!(
            room.send(op, "MODE #rust +I\r\n"),
            [
                ":irc.test 346 op #rust bar!*@* op 1",
                ":irc.test 346 op #rust baz!*@* op 1",
                ":irc.test 347 op #rust :End of channel invite exception list"
            ]
        );
        // The plain dialect: the same through /mode, told in words.
        assert_eq!(
            room.send(text, "/mode #rust +I\n"),
            [
                "*** invite exception on #rust: bar!*@* (set by op)",
                "*** invite exception on #rust: baz!*@* (set by op)"
            ]
        );
        assert_eq!(
            room.send(text, "/mode #rust +e\n"),
            ["*** #rust has no ban exceptions"]
        );
        room.send(op, "MODE #rust -I bar!*@*\r\n");
        room.send(bar, "PART #rust\r\n");
        assert_eq!(
            room.send(bar, "JOIN #rust\r\n"),
            [":irc.test 473 bar #rust :Cannot join channel (+i)"]
        );
    }

    #[test]
    fn bans_and_exceptions_share_one_bounded_table() {
        let mut room = Room::new();
        let op = room.connect("NICK op\r\nUSER o 0 * :O\r\nJOIN #rust\r\n");
        room.heard.take(op);
        for n in 0..crate::state::rooms::MAX_BANS {
            let letter = ['b', 'e', 'I'][n % 3];
            room.send(op, &std::format!("MODE #rust +{letter} n{n}\r\n"));
        }
        room.heard.take(op);
        assert_eq!(
            room.send(op, "MODE #rust +e extra\r\n"),
            [
                ":irc.test NOTICE op :*** error: 512 bans and exceptions are kept already, the \
              most there can be; lift one first"
            ]
        );
        // Lifting one makes room, on any list.
        room.send(op, "MODE #rust -b n0\r\n");
        assert_eq!(
            room.send(op, "MODE #rust +e extra\r\n"),
            [":op!~o@hidden MODE #rust +e extra!*@*"]
        );
    }

    #[test]
    fn muted_people_and_the_voiceless_of_a_moderated_room_are_not_heard() {
        let mut room = Room::new();
        let alice = room.connect("/nick alice\n/join #rust\n");
        let bob = room.connect("/nick bob\n/join #rust\n");
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        for conn in [alice, bob, dave] {
            room.heard.take(conn);
        }
        assert_eq!(
            room.send(alice, "/mute bob\n"),
            ["*** alice muted bob in #rust"]
        );
        assert_eq!(
            room.send(bob, "hello?\n"),
            [
                "*** alice muted bob in #rust",
                "*** error: you are muted in #rust; it was not sent"
            ]
        );
        assert_eq!(
            room.heard.take(dave),
            [":irc.test NOTICE #rust :*** alice muted bob"]
        );
        room.send(alice, "/unmute bob\n");
        room.heard.take(bob);
        room.send(bob, "thanks\n");
        assert_eq!(room.heard.take(alice), ["bob: thanks"]);
        // +m: only operators and voiced people talk.
        room.send(alice, "/op dave\n");
        room.send(dave, "MODE #rust +m\r\nMODE #rust +v bob\r\n");
        room.heard.take(dave);
        let names = room.send(dave, "NAMES #rust\r\n");
        assert!(names[0].ends_with(":@alice +bob @dave"), "{names:?}");
        let carl = room.connect("/nick carl\n/join #rust\n");
        room.heard.take(carl);
        assert_eq!(
            room.send(carl, "me too\n"),
            ["*** error: only operators and voiced people talk in #rust; it was not sent"]
        );
        room.heard.take(bob);
        room.send(bob, "voiced\n");
        assert_eq!(room.heard.take(carl), ["bob: voiced"]);
        let ivy = room.connect("NICK ivy\r\nUSER i 0 * :I\r\nJOIN #rust\r\n");
        room.heard.take(ivy);
        assert_eq!(
            room.send(ivy, "PRIVMSG #rust :hi\r\n"),
            [":irc.test 404 ivy #rust :Cannot send to channel (+m)"]
        );
    }

    #[test]
    fn only_members_talk_in_a_room_until_it_is_minus_n() {
        let mut room = Room::new();
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        let alice = room.connect("/nick alice\n/join #rust\n");
        let ivy = room.connect("NICK ivy\r\nUSER i 0 * :I\r\n");
        room.heard.take(dave);
        room.heard.take(alice);
        room.heard.take(ivy);
        // A new room is +n: an outsider is refused, and no one in it hears a thing.
        assert_eq!(
            room.send(dave, "MODE #rust\r\n")[0],
            ":irc.test 324 dave #rust +n"
        );
        assert_eq!(
            room.send(ivy, "PRIVMSG #rust :hi from outside\r\n"),
            [":irc.test 404 ivy #rust :Cannot send to channel (you are not in it, and it is +n)"]
        );
        assert!(room.send(ivy, "NOTICE #rust :quiet\r\n").is_empty());
        assert!(room.heard.take(dave).is_empty());
        assert!(room.heard.take(alice).is_empty());
        // Only an operator lifts it; the room is told, each dialect its way.
        assert_eq!(
            room.send(alice, "/mode -n\n"),
            ["*** error: you are not an operator of #rust (whoever makes a room is its first)"]
        );
        assert_eq!(
            room.send(dave, "MODE #rust -n\r\n"),
            [":dave!~d@hidden MODE #rust -n"]
        );
        assert_eq!(
            room.heard.take(alice),
            ["*** dave let people outside #rust send it lines (IRC's -n)"]
        );
        assert_eq!(
            room.send(dave, "MODE #rust\r\n")[0],
            ":irc.test 324 dave #rust +"
        );
        // Now an outsider is heard, by IRC clients and text users alike.
        assert!(room.send(ivy, "PRIVMSG #rust :hi again\r\n").is_empty());
        assert_eq!(
            room.heard.take(dave),
            [":ivy!~i@hidden PRIVMSG #rust :hi again"]
        );
        assert_eq!(room.heard.take(alice), ["ivy: hi again"]);
        // Whom the room bans cannot talk to it from outside.
        room.send(dave, "MODE #rust +b ivy\r\n");
        room.heard.take(alice);
        assert_eq!(
            room.send(ivy, "PRIVMSG #rust :still me\r\n"),
            [":irc.test 404 ivy #rust :Cannot send to channel (you are banned)"]
        );
        assert!(room.heard.take(dave).is_empty());
        // Nor, once it is moderated, can an outsider without a voice.
        room.send(dave, "MODE #rust -b+m ivy\r\n");
        room.heard.take(alice);
        assert_eq!(
            room.send(ivy, "PRIVMSG #rust :and now?\r\n"),
            [":irc.test 404 ivy #rust :Cannot send to channel (+m)"]
        );
        // +n again: refused again; plain users are told.
        room.send(dave, "MODE #rust -m+n\r\n");
        assert_eq!(
            room.heard.take(alice),
            [
                "*** dave let everyone talk in #rust",
                "*** dave let only people in #rust talk in it"
            ]
        );
        assert_eq!(
            room.send(ivy, "PRIVMSG #rust :once more\r\n"),
            [":irc.test 404 ivy #rust :Cannot send to channel (you are not in it, and it is +n)"]
        );
        assert_eq!(
            room.send(dave, "MODE #rust\r\n")[0],
            ":irc.test 324 dave #rust +n"
        );
        assert!(room.heard.take(alice).is_empty());
    }

    #[test]
    fn a_key_a_limit_and_invitations_keep_the_door() {
        let mut room = Room::new();
        let alice = room.connect("/nick alice\n/join #rust\n");
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        room.heard.take(alice);
        // A key: given with the join, or no way in.
        assert_eq!(
            room.send(alice, "/mode +k beer\n"),
            ["*** alice locked #rust with a key: /join #rust beer"]
        );
        assert_eq!(
            room.heard.take(dave),
            [":alice!plain@hidden MODE #rust +k beer"]
        );
        let bob = room.connect("/nick bob\n");
        room.heard.take(bob);
        assert_eq!(
            room.send(bob, "/join #rust\n/join #rust bees\n"),
            [
                "*** error: #rust has a key: /join #rust KEY",
                "*** error: #rust has a key: /join #rust KEY"
            ]
        );
        assert_eq!(
            room.send(bob, "/join #rust beer\n")[0],
            "*** You are now talking in #rust."
        );
        let ivy = room.connect("NICK ivy\r\nUSER i 0 * :I\r\n");
        room.heard.take(ivy);
        assert_eq!(
            room.send(ivy, "JOIN #lobby,#rust ,bees\r\n"),
            [":irc.test 475 ivy #rust :Cannot join channel (+k)"]
        );
        assert_eq!(
            room.send(ivy, "JOIN #x,#rust a,beer\r\n")
                .iter()
                .filter(|line| line.starts_with(":ivy!~i@hidden JOIN"))
                .count(),
            2
        );
        // A bad key is refused with 696; -k takes it off; what a member and a stranger see.
        room.heard.take(dave);
        assert_eq!(
            room.send(dave, "MODE #rust +k :two words\r\n"),
            [":irc.test 482 dave #rust :You're not channel operator"]
        );
        room.send(alice, "/op dave\n");
        room.heard.take(dave);
        assert_eq!(
            room.send(dave, "MODE #rust +k :two words\r\n"),
            [
                ":irc.test 696 dave #rust k * :a key is 1 to 23 characters of ASCII, without \
                 spaces or commas"
            ]
        );
        assert_eq!(
            room.send(dave, "MODE #rust +l 3\r\nMODE #rust\r\n"),
            [
                ":dave!~d@hidden MODE #rust +l 3",
                ":irc.test 324 dave #rust +nkl beer 3",
                ":irc.test 329 dave #rust 1"
            ]
        );
        let carl = room.connect("NICK carl\r\nUSER c 0 * :C\r\n");
        room.heard.take(carl);
        assert_eq!(
            room.send(carl, "MODE #rust\r\nJOIN #rust beer\r\n"),
            [
                ":irc.test 324 carl #rust +nkl * 3",
                ":irc.test 329 carl #rust 1",
                ":irc.test 471 carl #rust :Cannot join channel: it is full (4 people)"
            ]
        );
        room.heard.take(dave);
        for limit in ["0", "-1", "abc"] {
            let said = room.send(dave, &std::format!("MODE #rust +l {limit}\r\n"));
            assert!(
                said[0].starts_with(&std::format!(":irc.test 696 dave #rust l {limit} :")),
                "{said:?}"
            );
        }
        // Invite-only: only operators invite; an invitation lets one past everything, once.
        assert_eq!(
            room.send(dave, "MODE #rust -k beer\r\n"),
            [":dave!~d@hidden MODE #rust -k *"]
        );
        room.send(dave, "MODE #rust +i\r\n");
        room.heard.take(bob);
        assert_eq!(
            room.send(bob, "/invite carl\n"),
            ["*** error: you are not an operator of #rust (whoever makes a room is its first)"]
        );
        assert_eq!(
            room.send(carl, "JOIN #rust\r\n"),
            [":irc.test 473 carl #rust :Cannot join channel (+i)"]
        );
        assert_eq!(
            room.send(dave, "INVITE carl #rust\r\nINVITE bob #rust\r\n"),
            [
                ":irc.test 341 dave carl #rust",
                ":irc.test 443 dave bob #rust :is already on channel"
            ]
        );
        assert_eq!(
            room.send(carl, "INVITE\r\n"),
            [
                ":dave!~d@hidden INVITE carl #rust",
                ":irc.test 336 carl #rust",
                ":irc.test 337 carl :End of /INVITE list"
            ]
        );
        // Past +i and +l (4 are in, at most 3), once.
        assert!(room.send(carl, "JOIN #rust\r\n")[0].starts_with(":carl!~c@hidden JOIN #rust"));
        room.send(carl, "PART #rust\r\n");
        assert_eq!(
            room.send(carl, "JOIN #rust\r\n"),
            [":irc.test 473 carl #rust :Cannot join channel (+i)"]
        );
        // A plain-text user invited is told how to come in.
        room.send(bob, "/part #rust\n");
        room.heard.take(bob);
        room.heard.take(alice);
        assert_eq!(
            room.send(alice, "/invite bob\n/mode\n"),
            [
                "*** You invited bob into #rust.",
                "*** Modes of #rust: +inl 3"
            ]
        );
        assert_eq!(
            room.heard.take(bob),
            ["*** alice invites you into #rust: /join #rust"]
        );
    }

    #[test]
    fn bans_and_mutes_with_a_duration_lapse() {
        let mut room = Room::new();
        let alice = room.connect("/nick alice\n/join #rust\n");
        let bob = room.connect("/nick bob\n/join #rust\n");
        room.heard.take(alice);
        assert_eq!(
            room.send(alice, "/ban carl 10m spamming links\n/mute bob 90s\n"),
            [
                "*** alice banned carl!*@* from #rust for 10m (spamming links)",
                "*** alice muted bob in #rust for 90s"
            ]
        );
        assert_eq!(
            room.send(alice, "/ban carl 53w\n"),
            [
                "*** error: too many arguments; usage: /ban MASK [DURATION] [REASON] (DURATION: \
                 30s, 10m, 2h, 7d, 4w; at most 52w)"
            ]
        );
        room.heard.take(bob);
        assert_eq!(
            room.send(bob, "quiet?\n"),
            ["*** error: you are muted in #rust; it was not sent"]
        );
        let carl = room.connect("/nick carl\n");
        room.heard.take(carl);
        assert_eq!(
            room.send(carl, "/join #rust\n"),
            ["*** error: you are banned from #rust"]
        );
        // 90 s on, bob's mute has lapsed; 10 minutes on, carl's ban.
        room.driver.advance(Duration::from_secs(90), &mut |_| {});
        room.heard.take(alice);
        room.send(bob, "back\n");
        assert_eq!(room.heard.take(alice), ["bob: back"]);
        room.driver.advance(Duration::from_secs(510), &mut |_| {});
        room.heard.take(carl);
        assert_eq!(
            room.send(carl, "/join #rust\n")[0],
            "*** You are now talking in #rust."
        );
        // Lapsed bans are not listed.
        let ivy = room.connect("NICK ivy\r\nUSER i 0 * :I\r\n");
        room.heard.take(ivy);
        assert_eq!(
            room.send(ivy, "MODE #rust +b\r\n"),
            [":irc.test 368 ivy #rust :End of channel ban list"]
        );
    }

    #[test]
    fn an_account_ban_follows_the_account_not_the_nickname() {
        let mut room = Room::with_accounts();
        let alice = room.connect("/nick alice\n/join #rust\n");
        room.heard.take(alice);
        assert_eq!(
            room.send(alice, "/ban $a:Mallory\n/ban $a:not*valid\n"),
            [
                "*** alice banned $a:Mallory from #rust",
                "*** error: a ban mask is a nickname, nick!user@host or $a:ACCOUNT, at most 64 \
                 bytes"
            ]
        );
        // Under another nickname, and identified as the account: out.
        let eve = room.connect("/nick eve\n/login mallory some-password\n");
        let request = room.account_request();
        room.answer(&request);
        room.heard.take(eve);
        assert_eq!(
            room.send(eve, "/join #rust\n"),
            ["*** error: you are banned from #rust"]
        );
        // Not identified, under the account's very name: in (the nickname is not banned).
        let other = room.connect("/nick mallory2\n");
        room.heard.take(other);
        assert_eq!(
            room.send(other, "/join #rust\n")[0],
            "*** You are now talking in #rust."
        );
    }

    #[test]
    fn a_registered_room_keeps_its_founder_modes_and_bans_across_a_restore() {
        let mut room = Room::with_accounts();
        let alice = room.connect("/nick alice\n/join #den\n");
        room.heard.take(alice);
        assert_eq!(
            room.send(alice, "/register-room\n"),
            [
                "*** error: identify first (/identify PASSWORD): a room is registered to your account"
            ]
        );
        room.send(alice, "/identify a-good-password\n");
        let request = room.account_request();
        room.answer(&request);
        room.heard.take(alice);
        // Everything a store needs comes out as events.
        let mut events = Vec::new();
        for line in [
            "/register-room\n",
            "/mode +ik sesame\n",
            "/mode +l 5\n",
            "/ban bob 1h\n",
            "/ban carl\n",
            "/unban carl\n",
        ] {
            let heard = &mut room.heard;
            room.driver.input(alice, line.as_bytes(), &mut |output| {
                if let crate::Output::Event(event) = &output {
                    events.push(std::string::ToString::to_string(event));
                }
                heard.record(output);
            });
        }
        assert_eq!(
            events,
            [
                "registered #den to alice",
                "modes #den +in",
                "modes #den +in key \"sesame\"",
                "modes #den +in key \"sesame\" limit 5",
                "banned bob!*@* from #den by alice at 1000 until 3601000",
                "banned carl!*@* from #den by alice at 1000",
                "unbanned carl!*@* from #den",
            ]
        );
        assert_eq!(
            room.heard.take(alice)[0],
            "*** alice registered #den to the account alice: it keeps its modes and bans when \
             empty and across restarts"
        );
        // A registered room stays when empty; only its founder or a server operator
        // unregisters it.
        let ivy = room.connect("NICK ivy\r\nUSER i 0 * :I\r\n");
        room.heard.take(ivy);
        room.send(alice, "/op ivy\n");
        room.send(alice, "/part #den\n");
        let listed = room.send(ivy, "MODE #den\r\n");
        assert_eq!(
            listed,
            [
                ":irc.test 324 ivy #den +inrkl * 5",
                ":irc.test 329 ivy #den 1"
            ]
        );

        // What a store kept, given to a fresh server: the room comes back as it was.
        let mut again = Room::with_accounts();
        let server = again.driver.server_mut();
        let restored = [
            crate::Restored::Founder {
                room: "#den",
                account: "alice",
            },
            crate::Restored::Ban {
                list: crate::BanList::Bans,
                room: "#den",
                mask: "bob!*@*",
                by: "alice",
                at: Instant::from_millis(1_000),
                until: Some(Instant::from_millis(3_601_000)),
            },
            crate::Restored::RoomModes {
                room: "#den",
                modes: "i",
                key: Some("sesame"),
                limit: Some(5),
            },
        ];
        for restored in restored {
            server.handle_restore(restored).unwrap();
        }
        let bob = again.connect("/nick bob\n");
        again.heard.take(bob);
        assert_eq!(
            again.send(bob, "/join #den sesame\n"),
            ["*** error: you are banned from #den"]
        );
        let carl = again.connect("/nick carl\n");
        again.heard.take(carl);
        assert_eq!(
            again.send(carl, "/join #den sesame\n"),
            ["*** error: #den lets in only whom its operators invite (/invite)"]
        );
        // Its founder, identified, comes in past +i and the key, and is its operator.
        let founder = again.connect("/nick alice\n/identify a-good-password\n");
        let request = again.account_request();
        again.answer(&request);
        again.heard.take(founder);
        assert_eq!(
            again.send(founder, "/join #den\n")[0],
            "*** You are now talking in #den."
        );
        let ivy = again.connect("NICK ivy\r\nUSER i 0 * :I\r\n");
        again.heard.take(ivy);
        again.send(founder, "/invite ivy\n");
        again.heard.take(ivy);
        let names = again.send(ivy, "JOIN #den\r\n");
        assert!(
            names.contains(&":irc.test 353 ivy = #den :@alice ivy".into()),
            "{names:?}"
        );
    }

    #[test]
    fn a_mode_line_makes_at_most_four_changes_and_names_what_it_cannot() {
        let mut room = Room::new();
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        room.heard.take(dave);
        assert_eq!(
            room.send(dave, "MODE #rust +mtxl\r\n"),
            [
                ":irc.test 472 dave x :is not a channel mode here (b, e, i, I, k, l, m, n, o, r, s, t and v are)",
                ":irc.test 461 dave MODE :Not enough parameters (+l needs one)",
                ":dave!~d@hidden MODE #rust +mt"
            ]
        );
        assert_eq!(
            room.send(dave, "MODE #rust -m-t+i-i+m\r\n"),
            [
                ":dave!~d@hidden MODE #rust -mt+i-i",
                ":irc.test NOTICE dave :*** error: one line makes at most 4 mode changes; the \
                 rest were not made"
            ]
        );
    }

    #[test]
    fn one_mode_command_is_one_line_to_irc_clients_and_a_line_a_change_to_text_users() {
        let mut room = Room::new();
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        let ivy = room.connect("NICK ivy\r\nUSER i 0 * :I\r\nJOIN #rust\r\n");
        let alice = room.connect("/nick alice\n/join #rust\n");
        room.heard.take(dave);
        room.heard.take(ivy);
        room.heard.take(alice);
        // Values in the order of their letters; a sign only where it changes.
        let line = ":dave!~d@hidden MODE #rust +kl-n+o beer 5 ivy";
        assert_eq!(room.send(dave, "MODE #rust +kl-n+o beer 5 ivy\r\n"), [line]);
        assert_eq!(room.heard.take(ivy), [line]);
        assert_eq!(
            room.heard.take(alice),
            [
                "*** dave locked #rust with a key: /join #rust beer",
                "*** dave let at most 5 people into #rust",
                "*** dave let people outside #rust send it lines (IRC's -n)",
                "*** dave made ivy an operator of #rust"
            ]
        );
        // What changes nothing is left out; refusals come first, the line after.
        assert_eq!(
            room.send(dave, "MODE #rust -n+mq+b bob\r\n"),
            [
                ":irc.test 472 dave q :is not a channel mode here (b, e, i, I, k, l, m, n, o, r, \
                 s, t and v are)",
                ":dave!~d@hidden MODE #rust +mb bob!*@*"
            ]
        );
        assert_eq!(
            room.send(dave, "MODE #rust -k-l+t-b beer bob\r\n"),
            [":dave!~d@hidden MODE #rust -kl+t-b * bob!*@*"]
        );
        // Nothing changed: no line at all.
        assert!(room.send(dave, "MODE #rust +t-n\r\n").is_empty());
        assert!(room.heard.take(ivy).len() == 2);
        // Exceptions join the line under their own letters.
        room.send(dave, "MODE #rust +b bob\r\n");
        assert_eq!(
            room.send(dave, "MODE #rust +eI-b amy amy bob\r\n"),
            [":dave!~d@hidden MODE #rust +eI-b amy!*@* amy!*@* bob!*@*"]
        );
        room.heard.take(ivy);
        // A text user's /mode is one line to IRC clients too.
        room.send(dave, "MODE #rust +o alice\r\n");
        room.heard.take(ivy);
        room.send(alice, "/mode +i-t\n");
        assert_eq!(
            room.heard.take(ivy),
            [":alice!plain@hidden MODE #rust +i-t"]
        );
    }

    #[test]
    fn kick_puts_out_each_person_it_names_one_line_each() {
        let mut room = Room::new();
        let foo = room.connect("NICK foo\r\nUSER f 0 * :F\r\nJOIN #chan,#den\r\n");
        let mut joined = Vec::new();
        for nick in ["bar", "baz", "qux"] {
            let lines = std::format!("NICK {nick}\r\nUSER u 0 * :U\r\nJOIN #chan,#den\r\n");
            joined.push(room.connect(&lines));
        }
        let (bar, baz, qux) = (joined[0], joined[1], joined[2]);
        let alice = room.connect("/nick alice\n/join #chan\n");
        for conn in [foo, bar, baz, qux, alice] {
            room.heard.take(conn);
        }
        // Several people out of one room, a KICK line each, the reason on each.
        assert_eq!(
            room.send(foo, "KICK #chan bar,,nobody,baz :bye\r\n"),
            [
                ":foo!~f@hidden KICK #chan bar :bye",
                ":irc.test 401 foo nobody :No such nick/channel",
                ":foo!~f@hidden KICK #chan baz :bye"
            ]
        );
        assert_eq!(
            room.heard.take(qux),
            [
                ":foo!~f@hidden KICK #chan bar :bye",
                ":foo!~f@hidden KICK #chan baz :bye"
            ]
        );
        assert_eq!(
            room.heard.take(alice),
            [
                "*** bar was put out of #chan by foo (bye)",
                "*** baz was put out of #chan by foo (bye)"
            ]
        );
        // Rooms and people in pairs; one person out of several rooms; no reason: the kicker.
        assert_eq!(
            room.send(foo, "KICK #chan,#den qux,bar\r\n"),
            [
                ":foo!~f@hidden KICK #chan qux :foo",
                ":foo!~f@hidden KICK #den bar :foo"
            ]
        );
        assert_eq!(
            room.send(foo, "KICK #den,#nowhere baz\r\n"),
            [
                ":foo!~f@hidden KICK #den baz :foo",
                ":irc.test 403 foo #nowhere :No such channel"
            ]
        );
        // Only an operator, each time.
        room.heard.take(qux);
        assert_eq!(
            room.send(qux, "KICK #den foo,foo\r\n"),
            [
                ":irc.test 482 qux #den :You're not channel operator",
                ":irc.test 482 qux #den :You're not channel operator"
            ]
        );
    }

    #[test]
    fn a_bad_value_for_b_k_or_l_is_refused_with_696() {
        let mut room = Room::new();
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        let alice = room.connect("/nick alice\n/join #rust\n");
        room.heard.take(dave);
        room.heard.take(alice);
        let why_b = "a ban mask is a nickname, nick!user@host or $a:ACCOUNT, at most 64 bytes";
        let long = "x".repeat(70);
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("+b $a:not*valid",     "b $a:not*valid"),
            ("+b :two words",       "b *"),
            ("+b ::colon",          "b *"),
            ("-b $a:",              "b $a:"),
            ("+l 0",                "l 0"),
            ("+l :-1",              "l -1"),
            ("+l lots",             "l lots"),
            ("+k ::colon",          "k *"),
            ("+k :a\u{e9}",         "k *"),
        ];
        for (change, shown) in cases {
            let said = room.send(dave, &std::format!("MODE #rust {change}\r\n"));
            assert_eq!(said.len(), 1, "{change}: {said:?}");
            let prefix = std::format!(":irc.test 696 dave #rust {shown} :");
            assert!(said[0].starts_with(&prefix), "{change}: {said:?}");
            if shown.starts_with('b') {
                assert!(said[0].ends_with(why_b), "{said:?}");
            }
        }
        // Too long to be a mask: shown cut to a mask's bound.
        let said = room.send(dave, &std::format!("MODE #rust +b {long}\r\n"));
        assert_eq!(
            said,
            [std::format!(
                ":irc.test 696 dave #rust b {} :{why_b}",
                &long[..64]
            )]
        );
        // Nothing was set, and no one else heard a thing; a text user is told in words.
        assert_eq!(
            room.send(dave, "MODE #rust\r\n")[0],
            ":irc.test 324 dave #rust +n"
        );
        assert!(room.heard.take(alice).is_empty());
        room.send(dave, "MODE #rust +o alice\r\n");
        room.heard.take(alice);
        assert_eq!(
            room.send(alice, "/ban :x\n"),
            [std::format!("*** error: {why_b}")]
        );
    }

    #[test]
    fn list_finds_rooms_by_when_they_were_made_and_their_topic_set() {
        let mut room = Room::new();
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\n");
        let later = |room: &mut Room, minutes: u64| {
            let heard = &mut room.heard;
            room.driver
                .advance(Duration::from_secs(60 * minutes), &mut |output| {
                    heard.record(output);
                });
        };
        room.send(dave, "PART #lobby\r\nJOIN #one\r\nTOPIC #one :first\r\n");
        later(&mut room, 2);
        room.send(dave, "JOIN #two\r\nTOPIC #two :second\r\nJOIN #three\r\n");
        later(&mut room, 1);
        room.send(dave, "PONG :x\r\n");
        let mut listed = |terms: &str| {
            let lines = room.send(dave, &std::format!("LIST {terms}\r\n"));
            lines
                .iter()
                .filter_map(|line| line.split(' ').nth(3).filter(|_| line.contains(" 322 ")))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(listed("C>2"), ["#one"]);
        assert_eq!(listed("C<2"), ["#two", "#three"]);
        assert!(listed("C<0").is_empty());
        assert_eq!(listed("C>0"), ["#one", "#two", "#three"]);
        assert_eq!(listed("C<10"), ["#one", "#two", "#three"]);
        // A room without a topic meets no T term.
        assert_eq!(listed("T>2"), ["#one"]);
        assert_eq!(listed("T<2"), ["#two"]);
        assert_eq!(listed("T>0"), ["#one", "#two"]);
        // With the other terms; a number that is none leaves its term out.
        assert_eq!(listed("C<10,#t*"), ["#two", "#three"]);
        assert_eq!(listed("Cx,T<many"), ["#one", "#two", "#three"]);
    }

    #[test]
    fn a_room_keeps_the_time_it_was_made() {
        let mut room = Room::new();
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\n");
        room.heard.take(dave);
        let later = |room: &mut Room, seconds: u64| {
            let heard = &mut room.heard;
            room.driver
                .advance(Duration::from_secs(seconds), &mut |output| {
                    heard.record(output);
                });
        };
        later(&mut room, 100);
        room.send(dave, "JOIN #rust\r\n");
        later(&mut room, 50);
        // Made at 101 s (the clock started at 1 s); asked at 151 s.
        assert_eq!(
            room.send(dave, "MODE #rust\r\n"),
            [
                ":irc.test 324 dave #rust +n",
                ":irc.test 329 dave #rust 101"
            ]
        );
        // Gone when empty, made again later.
        room.send(dave, "PART #rust\r\n");
        later(&mut room, 9);
        room.send(dave, "JOIN #rust\r\n");
        assert_eq!(
            room.send(dave, "MODE #rust\r\n")[1],
            ":irc.test 329 dave #rust 160"
        );
        // A text user's /mode shows the modes alone.
        let alice = room.connect("/nick alice\n/join #rust\n");
        room.heard.take(alice);
        assert_eq!(room.send(alice, "/mode\n"), ["*** Modes of #rust: +n"]);
    }

    #[test]
    fn lusers_and_time_are_answered() {
        let mut room = Room::new();
        let _alice = room.connect("/nick alice\n/join #rust\n");
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\n");
        room.heard.take(dave);
        assert_eq!(
            room.send(dave, "LUSERS\r\n"),
            [
                ":irc.test 251 dave :There are 2 users and 0 invisible on 1 servers",
                ":irc.test 252 dave 0 :operator(s) online",
                ":irc.test 254 dave 2 :channels formed",
                ":irc.test 255 dave :I have 2 clients and 0 servers",
                ":irc.test 265 dave 2 2 :Current local users 2, max 2",
                ":irc.test 266 dave 2 2 :Current global users 2, max 2"
            ]
        );
        assert_eq!(
            room.send(dave, "TIME\r\n"),
            [":irc.test 391 dave irc.test 1 0 :1970-01-01 00:00 UTC"]
        );
    }

    #[test]
    fn whoever_makes_a_room_keeps_order_in_it() {
        let mut room = Room::new();
        let alice = room.connect("/nick alice\n/join #rust\n");
        let bob = room.connect("/nick bob\n/join #rust\n");
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        let names = room.send(dave, "NAMES #rust\r\n");
        assert!(
            names[0].ends_with(" 353 dave = #rust :@alice bob dave"),
            "{names:?}"
        );
        for conn in [alice, bob] {
            room.heard.take(conn);
        }
        // Nobody is the lobby's operator, and a member who is not one can do nothing.
        assert_eq!(
            room.send(bob, "/kick alice\n"),
            ["*** error: you are not an operator of #rust (whoever makes a room is its first)"]
        );
        assert_eq!(
            room.send(dave, "KICK #lobby bob\r\n"),
            [":irc.test 482 dave #lobby :You're not channel operator"]
        );
        assert_eq!(
            room.send(alice, "/kick carol\n"),
            ["*** error: no one here is called carol"]
        );

        // alice makes dave an operator; dave puts bob out, with a reason.
        assert_eq!(
            room.send(alice, "/op dave\n"),
            ["*** alice made dave an operator of #rust"]
        );
        assert_eq!(
            room.heard.take(dave),
            [":alice!plain@hidden MODE #rust +o dave"]
        );
        assert_eq!(
            room.heard.take(bob),
            ["*** alice made dave an operator of #rust"]
        );
        assert_eq!(
            room.send(dave, "KICK #rust bob :too loud\r\n"),
            [":dave!~d@hidden KICK #rust bob :too loud"]
        );
        assert_eq!(
            room.heard.take(bob),
            ["*** You were put out of #rust by dave (too loud)"]
        );
        assert_eq!(
            room.heard.take(alice),
            ["*** bob was put out of #rust by dave (too loud)"]
        );
        // bob is out: his lines go to his other room, the lobby.
        assert!(!room.send(bob, "/list\n")[0].contains("#rust"));
        assert_eq!(
            room.send(dave, "KICK #rust bob\r\n"),
            [":irc.test 441 dave bob #rust :They aren't on that channel"]
        );
        // MODE -o takes it back; a KICK then is refused.
        room.send(dave, "MODE #rust -o alice\r\n");
        assert_eq!(
            room.send(alice, "/kick dave\n"),
            [
                "*** dave took operator from alice in #rust",
                "*** error: you are not an operator of #rust (whoever makes a room is its first)"
            ]
        );
        // +t: the topic is the operators' to set.
        assert_eq!(
            room.send(dave, "MODE #rust +t\r\nMODE #rust\r\n"),
            [
                ":dave!~d@hidden MODE #rust +t",
                ":irc.test 324 dave #rust +nt",
                ":irc.test 329 dave #rust 1"
            ]
        );
        assert_eq!(
            room.send(alice, "/topic mine\n"),
            [
                "*** dave let only operators set the topic of #rust",
                "*** error: you are not an operator of #rust (whoever makes a room is its first)"
            ]
        );
        assert_eq!(
            room.send(dave, "TOPIC #rust :ours\r\n"),
            [":dave!~d@hidden TOPIC #rust :ours"]
        );
        room.send(dave, "MODE #rust -t\r\n");
        room.heard.take(alice);
        assert_eq!(
            room.send(alice, "/topic mine\n"),
            ["*** alice set the topic of #rust: mine"]
        );
    }
}
