//! IRCv3 `MONITOR`: who watches which nickname, to be told when someone goes by it or stops.
//!
//! Three bounds, each a constant: [`MAX_MONITOR`] nicknames per connection (`MONITOR=` in
//! `005`), [`MAX_WATCHERS`] connections per nickname, [`MAX_WATCHES`] in all. A `MONITOR +`
//! past any of them is refused (`734`), so what one event sends stays bounded: one line to
//! each of at most [`MAX_WATCHERS`] connections.

use crate::state::names::NameKey;
use crate::state::nickname::Nickname;
use crate::state::roster::ConnectionId;
use crate::storage::sealed::{Storage, Table};

/// The most nicknames one connection may watch.
pub(crate) const MAX_MONITOR: usize = 16;
/// The most connections that may watch one nickname.
pub(crate) const MAX_WATCHERS: usize = 16;
/// The most watches kept, over every connection.
pub(crate) const MAX_WATCHES: usize = 1024;

/// One connection watching one nickname.
#[derive(Clone, Debug)]
struct Watch {
    watcher: ConnectionId,
    nick: Nickname,
}

/// Which list a refused watch would have overfilled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// The watcher's own ([`MAX_MONITOR`]).
    Watcher,
    /// The nickname's watchers ([`MAX_WATCHERS`]).
    Nickname,
    /// Everyone's ([`MAX_WATCHES`]).
    Server,
}

/// Every watch.
#[derive(Debug)]
pub(crate) struct Watches<S: Storage> {
    /// In the order set; inside the server or reserved on the heap (see [`Storage`]).
    list: S::Fixed<Watch, MAX_WATCHES>,
}

impl<S: Storage> Watches<S> {
    pub(crate) fn new() -> Self {
        Self { list: S::fixed() }
    }

    /// `watcher` watches `nick` from now on (it may already).
    pub(crate) fn add(&mut self, watcher: ConnectionId, nick: Nickname) -> Result<(), Full> {
        let (key, hash) = (nick.key(), nick.key().hash());
        let same = |watch: &&Watch| watch.nick.has_key(&key, hash);
        if self
            .list
            .iter()
            .any(|watch| watch.watcher == watcher && same(&watch))
        {
            return Ok(());
        }
        if self.of(watcher).count() >= MAX_MONITOR {
            return Err(Full::Watcher);
        }
        if self.list.iter().filter(same).count() >= MAX_WATCHERS {
            return Err(Full::Nickname);
        }
        self.list
            .push(Watch { watcher, nick })
            .map_err(|_| Full::Server)
    }

    /// `watcher` no longer watches `nick`.
    pub(crate) fn remove(&mut self, watcher: ConnectionId, nick: &str) {
        self.list
            .retain(|watch| !(watch.watcher == watcher && watch.nick.matches(nick)));
    }

    /// `watcher` watches nothing any more.
    pub(crate) fn clear(&mut self, watcher: ConnectionId) {
        self.list.retain(|watch| watch.watcher != watcher);
    }

    /// The nicknames `watcher` watches, in the order it asked.
    pub(crate) fn of(&self, watcher: ConnectionId) -> impl Iterator<Item = &Nickname> + '_ {
        self.list
            .iter()
            .filter(move |watch| watch.watcher == watcher)
            .map(|watch| &watch.nick)
    }

    /// Those who watch the nickname `name` (at most [`MAX_WATCHERS`]).
    pub(crate) fn watchers(&self, name: &str) -> heapless::Vec<ConnectionId, MAX_WATCHERS> {
        let mut found = heapless::Vec::new();
        if self.list.is_empty() {
            return found;
        }
        let Some(key) = NameKey::of(name) else {
            return found;
        };
        let hash = key.hash();
        for watch in self
            .list
            .iter()
            .filter(|watch| watch.nick.has_key(&key, hash))
        {
            // Cannot fail: `add` keeps a nickname's watchers to MAX_WATCHERS.
            let _ = found.push(watch.watcher);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn nick(name: &str) -> Nickname {
        Nickname::new(name).unwrap()
    }

    fn conn(index: u32) -> ConnectionId {
        ConnectionId::from_parts(index, 0)
    }

    #[test]
    fn watches_are_found_by_name_case_aside_and_bounded_three_ways() {
        let mut watches = Watches::<crate::Inline<1>>::new();
        watches.add(conn(1), nick("Bob")).unwrap();
        watches.add(conn(1), nick("bob")).unwrap();
        watches.add(conn(2), nick("BOB")).unwrap();
        assert_eq!(watches.watchers("bob").as_slice(), [conn(1), conn(2)]);
        assert_eq!(watches.of(conn(1)).count(), 1, "one watch per name");
        watches.remove(conn(1), "BOB");
        assert_eq!(watches.watchers("Bob").as_slice(), [conn(2)]);

        for at in 0..MAX_MONITOR {
            watches.add(conn(3), nick(&std::format!("n{at}"))).unwrap();
        }
        assert_eq!(watches.add(conn(3), nick("more")), Err(Full::Watcher));
        for at in 10..10 + MAX_WATCHERS as u32 - 1 {
            watches.add(conn(at), nick("bob")).unwrap();
        }
        assert_eq!(watches.add(conn(99), nick("bob")), Err(Full::Nickname));
        watches.clear(conn(3));
        assert_eq!(watches.of(conn(3)).count(), 0);
        let names: Vec<&str> = watches.of(conn(2)).map(Nickname::as_str).collect();
        assert_eq!(names, ["BOB"]);
    }

    #[test]
    fn the_server_wide_bound_holds_too() {
        let mut watches = Watches::<crate::Inline<1>>::new();
        let mut refused = None;
        'fill: for watcher in 0.. {
            for at in 0..MAX_MONITOR {
                if let Err(full) =
                    watches.add(conn(watcher), nick(&std::format!("n{watcher}x{at}")))
                {
                    refused = Some(full);
                    break 'fill;
                }
            }
        }
        assert_eq!(refused, Some(Full::Server));
        assert_eq!(watches.list.len(), MAX_WATCHES);
    }
}
