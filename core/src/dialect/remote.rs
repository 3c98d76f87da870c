//! People and private messages from other servers (see [`relay`](crate::relay)): applied to
//! the tables here, and shown to the people here as if those people were here.

use core::fmt::Write;

use super::{Admitted, ClientTags, Entry, Happened, Speaker, Step, Visible};
use crate::output::Audience;
use crate::relay::{Applied, Incoming, Kind, Origin, Person, Refused, Target};
use crate::state::members::{MAX_ROOMS_PER_PERSON, Status};
use crate::state::person::RemoteTag;
use crate::state::rooms::RoomId;
use crate::state::roster::{ConnectionId, Nickname};

/// The most bytes of a departure's reason from another server that are shown.
const MAX_REASON_BYTES: usize = 200;

impl<S: crate::Storage> Step<'_, S> {
    /// Whether `conn` is someone on another server.
    pub(super) fn is_remote(&self, conn: ConnectionId) -> bool {
        self.roster
            .get(conn)
            .is_some_and(|slot| slot.person.is_remote())
    }

    /// A private message from someone on another server for `to`, here; checked already.
    /// The sender is shown by their entry here if they are listed, else by the line.
    pub(crate) fn relayed_private(&mut self, line: &Incoming<'_>, to: &str) -> Result<(), Refused> {
        let Origin::Node(node) = line.origin else {
            return Err(Refused::UnknownPerson);
        };
        let Kind::Said(kind) = line.kind else {
            return Err(Refused::TopicNotForRoom);
        };
        let target = self
            .roster
            .find(to)
            .filter(|&target| !self.is_remote(target))
            .ok_or(Refused::UnknownPerson)?;
        let listed = self.roster.find_node(node).and_then(|index| {
            self.roster.find(line.nick).filter(|&from| {
                self.roster
                    .get(from)
                    .and_then(|slot| slot.person.remote)
                    .is_some_and(|tag| tag.node == index)
            })
        });
        let from = match listed {
            Some(from) => Speaker::Listed(from),
            None => Speaker::Unlisted {
                nick: line.nick,
                node,
            },
        };
        let msgid = self.rooms.next_number();
        self.publish(&Happened::Private {
            from,
            to: target,
            kind,
            text: line.text,
            msgid,
            tags: ClientTags::NONE,
        });
        Ok(())
    }

    /// Tells `from` what it said for `to` was not relayed, and why: a private message not
    /// delivered, or a topic not set.
    pub(crate) fn relay_failed(
        &mut self,
        from: ConnectionId,
        to: Target<'_>,
        kind: Kind,
        reason: &str,
    ) {
        let (what, name, outcome) = match (kind, to) {
            (Kind::Topic, Target::Room(room)) => ("topic for", room, "set"),
            (_, Target::Room(room)) => ("message to", room, "delivered"),
            (_, Target::Person { nick, .. }) => ("private message to", nick, "delivered"),
        };
        let text = format_args!(
            "your {what} {} was not {outcome}: {}",
            Visible(name),
            Visible(reason)
        );
        if self.speaks_irc(from) {
            server_notice!(self, from, "*** error: {text}");
        } else {
            error!(self, from, "{text}");
        }
    }

    /// Brings what is known here of `person` (checked already) one change closer to what
    /// their server says: they come, take their new name, leave a room or join one, a change
    /// per call, each told to the people here who share a room with them.
    pub(crate) fn remote_person(&mut self, person: &Person<'_>) -> Result<Applied, Refused> {
        let known = self.roster.find_node(person.node).and_then(|node| {
            self.roster.find_remote(RemoteTag {
                node,
                id: person.id,
            })
        });
        let Ok(nick) = Nickname::new(person.nick) else {
            // anonymous-N: not listed on other servers.
            if let Some(conn) = known {
                self.depart_remote(conn, &"no longer has a nickname");
            }
            return Ok(Applied::Done);
        };
        let taken_by_other = |step: &Self, conn: Option<ConnectionId>| {
            step.roster
                .find(nick.as_str())
                .is_some_and(|holder| Some(holder) != conn)
        };
        let Some(conn) = known else {
            if taken_by_other(self, None) {
                return Err(Refused::NickInUse);
            }
            if self.roster.remote_count() >= self.roster.capacity() / 2 {
                return Err(Refused::Full);
            }
            let node = self
                .roster
                .node_index(person.node)
                .ok_or(Refused::TooManyNodes)?;
            let tag = RemoteTag {
                node,
                id: person.id,
            };
            let Some(conn) = self.roster.insert_remote(tag, nick) else {
                if self.roster.remote_of_node(node).next().is_none() {
                    self.roster.forget_node(node);
                }
                return Err(Refused::Full);
            };
            self.set_remote_away(conn, person.away);
            let account = person.account.and_then(|name| Nickname::new(name).ok());
            self.roster.set_account(conn, account);
            return Ok(Applied::More);
        };
        self.set_remote_away(conn, person.away);
        if self.set_remote_account(conn, person.account) {
            return Ok(Applied::More);
        }
        if !self.goes_by(conn, person.nick) {
            if taken_by_other(self, Some(conn)) {
                return Err(Refused::NickInUse);
            }
            self.rename(conn, nick, false);
            return Ok(Applied::More);
        }
        let rooms = &person.rooms[..person.rooms.len().min(MAX_ROOMS_PER_PERSON)];
        let listed = |step: &Self, room: RoomId| {
            step.rooms
                .get(room)
                .is_some_and(|info| rooms.iter().any(|name| info.name.matches(name)))
        };
        let unlisted = self.roster.rooms_of(conn).find(|&room| !listed(self, room));
        if let Some(room) = unlisted {
            self.leave(conn, room, None);
            return Ok(Applied::More);
        }
        for name in rooms {
            let here = self
                .rooms
                .find(name)
                .is_some_and(|room| self.roster.in_room(conn, room));
            // A room full here, or one too many: they are not listed in it here.
            if !here
                && matches!(
                    self.admit(conn, name, Entry::Relayed),
                    Ok(Admitted::Entered(_))
                )
            {
                return Ok(Applied::More);
            }
        }
        // Their standing in each room, as their server has it: a change is shown as made by
        // their server (an order heard before made it here already, and shows nothing now).
        let standing = &person.standing[..person.standing.len().min(2 * MAX_ROOMS_PER_PERSON)];
        for room in self
            .roster
            .rooms_of(conn)
            .collect::<heapless::Vec<RoomId, MAX_ROOMS_PER_PERSON>>()
        {
            let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
                continue;
            };
            for status in [Status::Operator, Status::Voice] {
                let listed = standing
                    .iter()
                    .any(|&(listed, given)| given == status && name.matches(listed));
                if self.roster.has(conn, room, status) != listed {
                    self.roster.set_status(conn, room, status, listed);
                    let by = Speaker::Unlisted {
                        nick: person.node,
                        node: person.node,
                    };
                    self.publish(&Happened::StatusSet {
                        who: conn,
                        by,
                        room,
                        status,
                        on: listed,
                        duration: None,
                    });
                    return Ok(Applied::More);
                }
            }
        }
        Ok(Applied::Done)
    }

    /// Sets the away message of `conn`, on another server, without telling anyone (their
    /// server told its people; here it shows in `WHOIS` and to those who write to them).
    fn set_remote_away(&mut self, conn: ConnectionId, away: Option<&str>) {
        self.roster.set_away(conn, away);
    }

    /// Sets the account of `conn`, on another server, telling those here who follow accounts
    /// (IRC's `account-notify`) if it changed; `true` if it did.
    fn set_remote_account(&mut self, conn: ConnectionId, account: Option<&str>) -> bool {
        let account = account.and_then(|name| Nickname::new(name).ok());
        if self.roster.get(conn).is_none()
            || self.roster.account(conn).map(Nickname::as_str)
                == account.as_ref().map(Nickname::as_str)
        {
            return false;
        }
        self.roster.set_account(conn, account);
        let account = self.roster.account(conn).cloned();
        self.publish(&Happened::AccountSet {
            who: conn,
            account: account.as_ref().map(Nickname::as_str),
        });
        true
    }

    /// Someone on the server called `node` went offline: the people here who shared a room
    /// with them are told `reason`.
    pub(crate) fn remote_gone(&mut self, node: &str, id: u64, reason: &str) {
        let Some(node) = self.roster.find_node(node) else {
            return;
        };
        if let Some(conn) = self.roster.find_remote(RemoteTag { node, id }) {
            let reason = Visible(crate::wire::line::cut(reason, MAX_REASON_BYTES));
            self.depart_remote(conn, &reason);
        }
    }

    /// Takes `conn`, someone on another server, away, telling those who shared a room with
    /// them `why`; their server's place in the table is freed with its last person.
    fn depart_remote(&mut self, conn: ConnectionId, why: &dyn core::fmt::Display) {
        let node = self
            .roster
            .get(conn)
            .and_then(|slot| slot.person.remote)
            .map(|tag| tag.node);
        self.depart(conn, why);
        if let Some(node) = node
            && self.roster.remote_of_node(node).next().is_none()
        {
            self.roster.forget_node(node);
        }
    }

    /// The server called `node` is gone: one of its people leaves, with `reason`.
    pub(crate) fn node_lost(&mut self, node: &str, reason: &str) -> Applied {
        let Some(node) = self.roster.find_node(node) else {
            return Applied::Done;
        };
        let next = self.roster.remote_of_node(node).next();
        if let Some(conn) = next {
            let reason = Visible(crate::wire::line::cut(reason, MAX_REASON_BYTES));
            self.depart(conn, &reason);
        }
        if self.roster.remote_of_node(node).next().is_some() {
            return Applied::More;
        }
        self.roster.forget_node(node);
        Applied::Done
    }
}
