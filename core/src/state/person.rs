//! A person: who someone is to the others, apart from how they are connected.
//!
//! A *local* person sits in the roster slot of their connection, and their
//! [`PersonId`](crate::PersonId) is that connection. A *remote* person (on another server of
//! a cluster, known through what the runner relays) sits in a slot of the same table, with
//! no connection: the rooms, names and listings then treat both alike, and every send skips
//! the remote ones.

use crate::state::nickname::Nickname;
use crate::state::rooms::RoomId;

/// The longest IRC user name kept (the `user` of `nick!user@host`), in bytes.
pub(crate) const MAX_USER_BYTES: usize = 12;
/// The longest IRC real name kept, in bytes.
pub(crate) const MAX_REALNAME_BYTES: usize = 64;
/// The longest away message kept, in bytes (`AWAYLEN` in `005`).
pub(crate) const MAX_AWAY_BYTES: usize = 100;

/// An away message, cut to [`MAX_AWAY_BYTES`].
pub(crate) type AwayMessage = heapless::String<MAX_AWAY_BYTES>;

/// Which rendering of the news a person reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Reads {
    /// Plain text, as a terminal (and the original JSON client) shows it.
    #[default]
    Text,
    /// IRC messages.
    Irc,
}

/// Identity, place and presence: the nickname, the room lines go to, the dialect read, what
/// an IRC client said of itself, away. (The rooms a person is in are kept by
/// [`Members`](crate::state::members::Members), both ways.)
#[derive(Debug, Default)]
pub(crate) struct Person {
    /// `None` while they go by `anonymous-N`.
    pub(crate) nick: Option<Nickname>,
    /// The room their plain-text lines go to.
    pub(crate) current: Option<RoomId>,
    pub(crate) reads: Reads,
    /// From IRC's `USER`, reduced to safe characters; empty until then, and for text people.
    pub(crate) user: heapless::String<MAX_USER_BYTES>,
    /// From IRC's `USER`, cut to [`MAX_REALNAME_BYTES`].
    pub(crate) realname: heapless::String<MAX_REALNAME_BYTES>,
    /// Set by `AWAY :message`: where the roster's pool of away messages keeps it (see
    /// [`Roster::away`](crate::state::roster::Roster::away)); `None` when here.
    pub(crate) away: Option<u32>,
    /// User mode `+i`: not found by `WHO` by someone who shares no room with them.
    pub(crate) invisible: bool,
    /// User mode `+w`: gets `WALLOPS`, server operators' messages to everyone who asks.
    pub(crate) wallops: bool,
    /// An IRC client that reads message tags (it negotiated `server-time` or `message-tags`).
    pub(crate) tagged: bool,
    /// It also reads tags other clients add (`message-tags`), not just the server's time.
    pub(crate) client_tags: bool,
    /// Someone on another server, known through what the runner relays (see
    /// [`relay`](crate::relay)): no connection here, never sent anything.
    pub(crate) remote: Option<RemoteTag>,
    /// Set when they identify as an account (see [`account`](crate::account)): where the
    /// roster's pool of accounts keeps its name (see
    /// [`Roster::account`](crate::state::roster::Roster::account)); `None` when not identified.
    pub(crate) account: Option<u32>,
}

/// Who a person on another server is: their server, and their id there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RemoteTag {
    /// The server's index in the roster's table of servers.
    pub(crate) node: u8,
    /// The person's id on that server.
    pub(crate) id: u64,
}

impl Person {
    /// Whether they are on another server.
    pub(crate) fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Whether they read IRC.
    pub(crate) fn reads_irc(&self) -> bool {
        self.reads == Reads::Irc
    }
}
