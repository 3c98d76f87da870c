//! What the server remembers of the past for IRC's queries: who left lately (`WHOWAS`: the
//! last [`MAX_WHOWAS`] people to leave, newest first), and the most users there have been at
//! once (`LUSERS`).

use crate::state::nickname::MAX_NICK_BYTES;
use crate::state::person::{MAX_REALNAME_BYTES, MAX_USER_BYTES};

/// How many departures are remembered. When full, the oldest is forgotten to make room.
pub(crate) const MAX_WHOWAS: usize = 32;

/// One person who left: the `nick`, `user` and real name `WHOWAS` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gone {
    pub(crate) nick: heapless::String<MAX_NICK_BYTES>,
    /// As shown in a prefix: `~name` for an IRC client, the dialect for the others.
    pub(crate) user: heapless::String<{ MAX_USER_BYTES + 1 }>,
    pub(crate) realname: heapless::String<MAX_REALNAME_BYTES>,
}

/// The last [`MAX_WHOWAS`] departures, and the user counts.
#[derive(Debug, Default)]
pub(crate) struct Past {
    /// Oldest at the front.
    gone: heapless::Deque<Gone, MAX_WHOWAS>,
    /// Connections here that are users: greeted as text, or registered on IRC.
    users: usize,
    /// The most there have been.
    peak: usize,
}

impl Past {
    pub(crate) const fn new() -> Self {
        Self {
            gone: heapless::Deque::new(),
            users: 0,
            peak: 0,
        }
    }

    /// A connection here became a user (it was greeted, or it registered).
    pub(crate) fn arrived(&mut self) {
        self.users += 1;
        self.peak = self.peak.max(self.users);
    }

    /// A user here left.
    pub(crate) fn departed(&mut self) {
        self.users = self.users.saturating_sub(1);
    }

    /// The most users there have been here at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    /// Remembers `gone`, forgetting the oldest if full.
    pub(crate) fn record(&mut self, gone: Gone) {
        if self.gone.is_full() {
            self.gone.pop_front();
        }
        // Cannot fail: there is room, made above if need be.
        let _ = self.gone.push_back(gone);
    }

    /// Those who went by `nick` (ASCII case ignored), newest first.
    pub(crate) fn went_by<'a>(&'a self, nick: &'a str) -> impl Iterator<Item = &'a Gone> + 'a {
        self.gone
            .iter()
            .rev()
            .filter(move |gone| gone.nick.eq_ignore_ascii_case(nick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn gone(nick: &str, user: &str) -> Gone {
        Gone {
            nick: nick.try_into().unwrap(),
            user: user.try_into().unwrap(),
            realname: "Real".try_into().unwrap(),
        }
    }

    #[test]
    fn the_peak_stays_when_users_leave() {
        let mut past = Past::new();
        past.arrived();
        past.arrived();
        past.departed();
        assert_eq!(past.peak(), 2);
        past.arrived();
        past.arrived();
        assert_eq!(past.peak(), 3);
        past.departed();
        past.departed();
        past.departed();
        past.departed();
        assert_eq!(past.peak(), 3);
        past.arrived();
        assert_eq!(past.peak(), 3);
    }

    #[test]
    fn the_newest_come_first_and_the_oldest_are_forgotten_when_full() {
        let mut log = Past::new();
        log.record(gone("Ann", "~a1"));
        log.record(gone("bob", "~b"));
        log.record(gone("ann", "~a2"));
        let users: Vec<&str> = log.went_by("ANN").map(|g| g.user.as_str()).collect();
        assert_eq!(users, ["~a2", "~a1"]);
        assert_eq!(log.went_by("carol").count(), 0);
        for at in 0..MAX_WHOWAS {
            log.record(gone("carol", &std::format!("~c{at}")));
        }
        // Ann and bob were the oldest: forgotten.
        assert_eq!(log.went_by("ann").count(), 0);
        assert_eq!(log.went_by("bob").count(), 0);
        let carols: Vec<&str> = log.went_by("carol").map(|g| g.user.as_str()).collect();
        assert_eq!(carols.len(), MAX_WHOWAS);
        assert_eq!(carols[0], std::format!("~c{}", MAX_WHOWAS - 1));
        assert_eq!(carols[MAX_WHOWAS - 1], "~c0");
    }
}
