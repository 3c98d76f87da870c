//! What keeping order remembers of people: server-wide bans; invitations into rooms
//! (`/invite`, IRC `INVITE`), who may come in once past a room's invite-only mode, key, limit
//! and bans; and mutes that lapse. Side tables, since few are pending at once and a roster slot need not
//! carry room for one.

use core::net::IpAddr;

use crate::state::nickname::Nickname;
use crate::state::rooms::RoomId;
use crate::state::roster::ConnectionId;
use crate::storage::sealed::{Storage, Table};
use crate::time::Instant;

/// How a ban names an account rather than a nickname mask: `$a:ACCOUNT`.
pub(crate) const ACCOUNT_BAN: &str = "$a:";

/// The most server-wide bans (`/serverban`, IRC `KLINE`/`DLINE`). One more is refused with an
/// error reply; lifting one, or one lapsing, makes room.
pub const MAX_SERVER_BANS: usize = 256;

/// The longest reason kept with a server-wide ban, in bytes; a longer one is cut.
pub const MAX_SERVER_BAN_REASON_BYTES: usize = 100;

/// The most connections one step marks to be checked against the server-wide bans.
const MAX_SUSPECTS: usize = 16;

/// Whom a server-wide ban keeps out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BanTarget {
    /// Whoever matches `nick!user@host` (`*` and `?`; hosts are hidden, so nicknames and IRC
    /// user names).
    Mask(heapless::String<{ crate::state::rooms::MAX_BAN_MASK_BYTES }>),
    /// Whoever is identified as this account.
    Account(Nickname),
    /// Whoever connects from an address in this network: an address and how many of its
    /// leading bits count (all for one address).
    Network(IpAddr, u8),
}

impl BanTarget {
    /// The target `mask` names: `$a:ACCOUNT`, an IP address or network (`192.0.2.7`,
    /// `198.51.100.0/24`, `2001:db8::/32`), `nick!user@host`, or a nickname (`nick!*@*`).
    pub(crate) fn parse(mask: &str) -> Option<Self> {
        if let Some(account) = mask.strip_prefix(ACCOUNT_BAN) {
            return Nickname::new(account).ok().map(Self::Account);
        }
        let (address, bits) = match mask.split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (mask, None),
        };
        if let Ok(address) = address.parse::<IpAddr>() {
            // `::ffff:192.0.2.7` is the IPv4 address a dual-stack listener sees it as.
            let address = address.to_canonical();
            let most = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => most,
                Some(bits) => bits.parse::<u8>().ok().filter(|&bits| bits <= most)?,
            };
            return Some(Self::Network(network(address, bits), bits));
        }
        if mask.is_empty() || mask.contains(|c: char| c.is_control() || c == ' ') {
            return None;
        }
        let mut full = heapless::String::new();
        if mask.contains('!') {
            full.push_str(mask).ok()?;
        } else if mask.contains('@') {
            // `user@host`, as `KLINE` has it: any nickname.
            core::fmt::Write::write_fmt(&mut full, format_args!("*!{mask}")).ok()?;
        } else {
            Nickname::new(mask).ok()?;
            core::fmt::Write::write_fmt(&mut full, format_args!("{mask}!*@*")).ok()?;
        }
        Some(Self::Mask(full))
    }

    /// Whether it names whom `other` names: masks compared ignoring case (as the store keeps
    /// them), accounts as names are.
    pub(crate) fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Mask(a), Self::Mask(b)) => crate::state::names::same_ignoring_case(a, b),
            (Self::Account(a), Self::Account(b)) => a.matches(b.as_str()),
            (a, b) => a == b,
        }
    }

    /// Whether someone shown as `prefix`, identified as `account`, connected from `peer`,
    /// matches it.
    pub(crate) fn matches(
        &self,
        prefix: &str,
        account: Option<&Nickname>,
        peer: Option<IpAddr>,
    ) -> bool {
        match self {
            // Look-alikes of the nickname it names too (see `names::mask_matches`).
            Self::Mask(mask) => {
                let nick = prefix.split_once('!').map_or(prefix, |(nick, _)| nick);
                let nick_key = crate::state::names::NameKey::of(nick);
                crate::state::names::mask_matches(mask, prefix, nick_key.as_ref())
            }
            Self::Account(banned) => {
                account.is_some_and(|account| banned.matches(account.as_str()))
            }
            &Self::Network(network_address, bits) => peer.is_some_and(|peer| {
                let peer = peer.to_canonical();
                peer.is_ipv4() == network_address.is_ipv4()
                    && network(peer, bits) == network_address
            }),
        }
    }
}

impl core::fmt::Display for BanTarget {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Mask(mask) => f.write_str(mask),
            Self::Account(account) => write!(f, "{}{account}", ACCOUNT_BAN),
            Self::Network(address, bits) if *bits == if address.is_ipv4() { 32 } else { 128 } => {
                write!(f, "{address}")
            }
            Self::Network(address, bits) => write!(f, "{address}/{bits}"),
        }
    }
}

/// `address` with all but its first `bits` bits cleared.
fn network(address: IpAddr, bits: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

/// A server-wide ban: whom, who set it and when, until when, and why.
#[derive(Clone, Debug)]
pub(crate) struct ServerBan {
    pub(crate) target: BanTarget,
    pub(crate) by: heapless::String<{ crate::state::rooms::MAX_SETTER_BYTES }>,
    pub(crate) at: Instant,
    pub(crate) until: Option<Instant>,
    pub(crate) reason: heapless::String<MAX_SERVER_BAN_REASON_BYTES>,
}

/// Every server-wide ban slot is taken: see [`MAX_SERVER_BANS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServerBansFull;

/// The server-wide bans, and the connections whose name or account changed in this step, to
/// be checked against them once it is over.
#[derive(Debug)]
pub(crate) struct ServerBans<S: Storage> {
    /// In the order set; inside the server or reserved on the heap (see [`Storage`]).
    bans: S::Fixed<ServerBan, MAX_SERVER_BANS>,
    suspects: heapless::Vec<ConnectionId, MAX_SUSPECTS>,
    /// After a ban is set, everyone online is checked, a few at each timeout, from the last
    /// in the roster's list down: one past the position to check next.
    sweep: Option<usize>,
}

impl<S: Storage> ServerBans<S> {
    pub(crate) fn new() -> Self {
        Self {
            bans: S::fixed(),
            suspects: heapless::Vec::new(),
            sweep: None,
        }
    }

    /// Where the sweep of everyone online has come to, if one is under way.
    pub(crate) fn sweep_at(&self) -> Option<usize> {
        self.sweep
    }

    /// Starts a sweep of the `online` connections, from the last in the roster's list down
    /// (again, if one was under way).
    pub(crate) fn start_sweep(&mut self, online: usize) {
        self.sweep = (online > 0).then_some(online);
    }

    /// The connection before the sweep's place was checked: on to the one before it; or the
    /// sweep is over (`done`, or the first was checked).
    pub(crate) fn sweep_on(&mut self, done: bool) {
        self.sweep = match done {
            true => None,
            false => self
                .sweep
                .and_then(|at| at.checked_sub(1))
                .filter(|&at| at > 0),
        };
    }

    /// The bans that hold at `now`, oldest first.
    pub(crate) fn holding(&self, now: Instant) -> impl Iterator<Item = &ServerBan> + '_ {
        self.bans
            .iter()
            .filter(move |ban| ban.until.is_none_or(|until| now < until))
    }

    /// Whether there are any bans at all (lapsed ones included): when not, nothing need be
    /// checked.
    pub(crate) fn is_empty(&self) -> bool {
        self.bans.is_empty()
    }

    /// Sets `ban`, replacing one on the same target; false if it changed nothing. Lapsed
    /// bans are dropped first.
    pub(crate) fn set(&mut self, ban: ServerBan, now: Instant) -> Result<bool, ServerBansFull> {
        self.bans
            .retain(|ban| ban.until.is_none_or(|until| now < until));
        if let Some(kept) = self
            .bans
            .iter_mut()
            .find(|kept| kept.target.same(&ban.target))
        {
            let changed = kept.until != ban.until || kept.reason != ban.reason;
            // The mask stays as it was first set: a store or another server keeps it so.
            let target = core::mem::replace(&mut kept.target, ban.target.clone());
            *kept = ServerBan { target, ..ban };
            return Ok(changed);
        }
        self.bans.push(ban).map_err(|_| ServerBansFull)?;
        Ok(true)
    }

    /// Lifts the ban on `target`: the ban as it was kept (its mask as it was set, whatever the
    /// case of `target`), or `None` if there was none.
    pub(crate) fn lift(&mut self, target: &BanTarget) -> Option<ServerBan> {
        let at = self.bans.iter().position(|ban| ban.target.same(target))?;
        Some(self.bans.remove(at))
    }

    /// `conn`'s name or account changed: check it once the step is over. (A step changes one
    /// person's, or a few; past [`MAX_SUSPECTS`], the rest are checked when they next change.)
    pub(crate) fn suspect(&mut self, conn: ConnectionId) {
        if !self.bans.is_empty() && !self.suspects.contains(&conn) {
            let _ = self.suspects.push(conn);
        }
    }

    /// The connections to check, taken.
    pub(crate) fn take_suspects(&mut self) -> heapless::Vec<ConnectionId, MAX_SUSPECTS> {
        core::mem::take(&mut self.suspects)
    }
}

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
