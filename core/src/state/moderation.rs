//! What keeping order remembers of people for a while: invitations into rooms (`/invite`,
//! IRC `INVITE`), who may come in once past a room's invite-only mode, key, limit and bans;
//! and mutes that lapse. Side tables, since few are pending at once and a roster slot need not
//! carry room for one.

use crate::state::rooms::RoomId;
use crate::state::roster::ConnectionId;
use crate::time::Instant;

/// The most mutes with a duration at once, over every room. One more is refused with an error
/// reply (a mute without a duration is always possible).
pub const MAX_TIMED_MUTES: usize = 256;

/// Mutes with a duration: who, in which room, until when. The mute itself is the member's
/// status in the room; this says when it lapses.
#[derive(Debug, Default)]
pub(crate) struct TimedMutes {
    until: heapless::Vec<(ConnectionId, RoomId, Instant), MAX_TIMED_MUTES>,
}

/// Every timed mute slot is taken: see [`MAX_TIMED_MUTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimedMutesFull;

impl TimedMutes {
    pub(crate) const fn new() -> Self {
        Self {
            until: heapless::Vec::new(),
        }
    }

    /// `who`'s mute in `room` lapses at `until`, or never (`None`): replaces what was set.
    pub(crate) fn set(
        &mut self,
        who: ConnectionId,
        room: RoomId,
        until: Option<Instant>,
    ) -> Result<(), TimedMutesFull> {
        self.until
            .retain(|&(muted, muted_in, _)| (muted, muted_in) != (who, room));
        match until {
            Some(until) => self
                .until
                .push((who, room, until))
                .map_err(|_| TimedMutesFull),
            None => Ok(()),
        }
    }

    /// Whether `who`'s mute in `room` has lapsed at `now`; forgets it if so.
    pub(crate) fn lapsed(&mut self, who: ConnectionId, room: RoomId, now: Instant) -> bool {
        let at = self
            .until
            .iter()
            .position(|&(muted, muted_in, until)| (muted, muted_in) == (who, room) && now >= until);
        at.map(|at| self.until.swap_remove(at)).is_some()
    }

    /// Forgets `who`'s mutes (it has gone), or those in `room` (it has gone).
    pub(crate) fn forget(&mut self, who: Option<ConnectionId>, room: Option<RoomId>) {
        self.until
            .retain(|&(muted, muted_in, _)| Some(muted) != who && Some(muted_in) != room);
    }
}

/// The most invitations pending at once, over every room. One more pushes out the oldest,
/// which then no longer lets its invitee in (they can be invited again).
pub const MAX_INVITES: usize = 256;

/// Invitations pending, oldest first. An invitation is for one connection (a handle that a
/// reused slot does not match), and is used up by joining the room once.
#[derive(Debug, Default)]
pub(crate) struct Invites {
    pending: heapless::Deque<(ConnectionId, RoomId), MAX_INVITES>,
}

impl Invites {
    pub(crate) const fn new() -> Self {
        Self {
            pending: heapless::Deque::new(),
        }
    }

    /// Invites `who` into `room`, pushing out the oldest invitation if all are taken.
    pub(crate) fn invite(&mut self, who: ConnectionId, room: RoomId) {
        if self.is_invited(who, room) {
            return;
        }
        if self.pending.is_full() {
            self.pending.pop_front();
        }
        // Cannot fail: there is room now.
        let _ = self.pending.push_back((who, room));
    }

    /// Whether `who` is invited into `room`.
    pub(crate) fn is_invited(&self, who: ConnectionId, room: RoomId) -> bool {
        self.pending.iter().any(|&pending| pending == (who, room))
    }

    /// Uses up `who`'s invitation into `room`; false if there was none.
    pub(crate) fn take(&mut self, who: ConnectionId, room: RoomId) -> bool {
        let before = self.pending.len();
        self.retain(|pending| pending != (who, room));
        before != self.pending.len()
    }

    /// The rooms `who` is invited into, oldest invitation first.
    pub(crate) fn rooms_of(&self, who: ConnectionId) -> impl Iterator<Item = RoomId> + '_ {
        self.pending
            .iter()
            .filter(move |(invited, _)| *invited == who)
            .map(|&(_, room)| room)
    }

    /// Forgets every invitation into `room` (it has gone; its index may be reused).
    pub(crate) fn forget_room(&mut self, room: RoomId) {
        self.retain(|(_, invited_to)| invited_to != room);
    }

    /// Forgets every invitation of `who` (it has gone).
    pub(crate) fn forget(&mut self, who: ConnectionId) {
        self.retain(|(invited, _)| invited != who);
    }

    fn retain(&mut self, mut keep: impl FnMut((ConnectionId, RoomId)) -> bool) {
        for _ in 0..self.pending.len() {
            if let Some(pending) = self.pending.pop_front()
                && keep(pending)
            {
                let _ = self.pending.push_back(pending);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(index: u32) -> ConnectionId {
        ConnectionId::for_tests(index, 1)
    }

    #[test]
    fn an_invitation_is_used_once_and_the_oldest_goes_when_full() {
        let mut invites = Invites::new();
        invites.invite(conn(1), 3);
        invites.invite(conn(1), 3);
        assert_eq!(invites.rooms_of(conn(1)).count(), 1);
        assert!(invites.is_invited(conn(1), 3));
        assert!(!invites.is_invited(conn(1), 4));
        assert!(invites.take(conn(1), 3));
        assert!(!invites.take(conn(1), 3));
        for n in 0..=MAX_INVITES as u32 {
            invites.invite(conn(n), 1);
        }
        assert!(!invites.is_invited(conn(0), 1), "the oldest was pushed out");
        assert!(invites.is_invited(conn(1), 1));
        assert!(invites.is_invited(conn(MAX_INVITES as u32), 1));
        invites.forget(conn(1));
        invites.forget_room(2);
        assert!(!invites.is_invited(conn(1), 1));
        assert!(invites.is_invited(conn(2), 1));
        invites.forget_room(1);
        assert_eq!(invites.pending.len(), 0);
    }
}
