//! The settings of a [`Server`](crate::Server), and their defaults.

use core::time::Duration;

use crate::state::flood::FloodLimit;

/// How long a new connection may stay without sending a line, unless configured otherwise.
pub const DEFAULT_SILENCE_TIMEOUT: Duration = Duration::from_secs(300);

/// Settings of a [`Server`](crate::Server): start from [`Config::default`] and change what you need.
///
/// ```
/// # use chat_core::Config;
/// let config = Config::default().with_colour(false).with_silence_timeout(None);
/// assert!(!config.colour);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Render with ANSI colours. Default: true.
    pub colour: bool,
    /// Close a connection that has not sent a complete line this long after connecting (an
    /// IRC client: that has not registered); `None` never does. Default:
    /// [`DEFAULT_SILENCE_TIMEOUT`].
    pub silence_timeout: Option<Duration>,
    /// The most people in one room; joining a full room gets an error reply. Default: no
    /// limit beyond the server's own capacity.
    pub max_room_members: u32,
    /// How many of a room's last lines are replayed to whoever joins it, marked with how long
    /// ago they were said: at most [`MAX_HISTORY_LINES`](crate::MAX_HISTORY_LINES) (more
    /// counts as that many), 0 for none. The core keeps no lines: it asks the runner for them
    /// (see [`history`](crate::history)), so anything above 0 needs a runner that answers.
    /// Default: 0.
    pub history: usize,
    /// The most connections at once, below the server's [capacity](crate::Server::capacity);
    /// past it a connection is refused as when the table is full. Default: no limit below the
    /// capacity.
    pub max_clients: usize,
    /// Flood control for every connection; `None` turns it off. Default:
    /// [`FloodLimit::DEFAULT`].
    pub flood_limit: Option<FloodLimit>,
    /// How long a new connection waits for the plain-text welcome. An IRC client registers
    /// within it (its first line is `NICK`, `USER`, `CAP` or `PASS`) and is never sent the
    /// plain-text welcome; a line of any other kind ends the wait at once. Zero greets at
    /// connect. Default: [`DEFAULT_GREETING_DELAY`].
    pub greeting_delay: Duration,
    /// The server's name in IRC replies. Default: [`ServerName::DEFAULT`].
    pub server_name: ServerName,
    /// Whether an IRC client is put in the lobby when it registers, as everyone else is on
    /// connecting. Default: true.
    pub irc_lobby: bool,
    /// A registered IRC client that sends no line for this long is sent a `PING`, and closed
    /// if it sends no line within [`Config::ping_timeout`] after that; `None` never pings.
    /// (Plain-text and JSON clients cannot answer a `PING`: the runner's TCP keepalive finds
    /// their dead connections.) Default: [`DEFAULT_PING_INTERVAL`].
    pub ping_interval: Option<Duration>,
    /// How long an IRC client has to answer a `PING`. Default: [`DEFAULT_PING_TIMEOUT`].
    pub ping_timeout: Duration,
    /// Rooms with more people than this do not announce joins and departures to plain-text
    /// and JSON users (in a room of thousands they would be most of the traffic, and grow
    /// with the square of its size); IRC clients still get every `JOIN`, `PART` and `QUIT`,
    /// which they need for their lists of names. Default: [`DEFAULT_ANNOUNCE_LIMIT`].
    pub announce_limit: u32,
    /// Whether a nickname free here must also be claimed from the other servers sharing the
    /// chat before it is taken (see [`claim`](crate::claim)). Default: false (one server).
    pub nick_claims: bool,
    /// How long a nickname claim waits for its answer before the person is told it could not
    /// be checked. Default: [`DEFAULT_CLAIM_TIMEOUT`](crate::claim::DEFAULT_CLAIM_TIMEOUT).
    pub claim_timeout: Duration,
    /// Whether a room line said here waits for the runner to give it its place in the room's
    /// order, shared with other servers, before anyone is shown it (see
    /// [`relay`](crate::relay)). Default: false (one server: lines are shown at once, in the
    /// order they arrive).
    pub relayed_lines: bool,
    /// Whether the runner keeps accounts (see [`account`](crate::account)): without, the
    /// account commands are answered that this server keeps none. Default: false.
    pub accounts: bool,
    /// How long an account request waits for its answer. Default:
    /// [`DEFAULT_ACCOUNT_TIMEOUT`](crate::account::DEFAULT_ACCOUNT_TIMEOUT).
    pub account_timeout: Duration,
    /// How long someone going by a registered nickname has to identify before they are
    /// renamed. Default: [`DEFAULT_NICK_GRACE`](crate::account::DEFAULT_NICK_GRACE).
    pub nick_grace: Duration,
}

/// The part of a [`Config`] a running server can change: its limits, in size and in time.
/// Take them from a configuration with [`Config::limits`], and give them to a running server
/// with [`Server::set_limits`](crate::Server::set_limits) (or to a configuration with
/// [`Config::with_limits`]). Each field means what the [`Config`] field of the same name
/// does; what a change does to connections already there is said at `set_limits`.
///
/// The rest of a configuration (the server's name, colour, the lobby for IRC clients, what
/// the runner answers: claims, relayed lines, accounts) is fixed for the life of a server, so
/// it is not here: a runner cannot change it by mistake.
///
/// ```
/// # use chat_core::Config;
/// let config = Config::default().with_history(5);
/// let mut limits = config.limits();
/// limits.max_room_members = 50;
/// let changed = config.with_limits(limits);
/// assert_eq!((changed.history, changed.max_room_members), (5, 50));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// See [`Config::max_clients`].
    pub max_clients: usize,
    /// See [`Config::max_room_members`].
    pub max_room_members: u32,
    /// See [`Config::history`].
    pub history: usize,
    /// See [`Config::flood_limit`].
    pub flood_limit: Option<FloodLimit>,
    /// See [`Config::silence_timeout`].
    pub silence_timeout: Option<Duration>,
    /// See [`Config::greeting_delay`].
    pub greeting_delay: Duration,
    /// See [`Config::ping_interval`].
    pub ping_interval: Option<Duration>,
    /// See [`Config::ping_timeout`].
    pub ping_timeout: Duration,
    /// See [`Config::announce_limit`].
    pub announce_limit: u32,
    /// See [`Config::nick_grace`].
    pub nick_grace: Duration,
}

/// The largest room whose joins and departures are announced to text users, unless configured
/// otherwise.
pub const DEFAULT_ANNOUNCE_LIMIT: u32 = 200;

/// How long a registered IRC client may be quiet before it is sent a `PING`, unless configured
/// otherwise.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);

/// How long an IRC client has to answer a `PING`, unless configured otherwise.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a new connection waits for its welcome, unless configured otherwise: long enough
/// for an IRC client's first line to arrive, short enough that a person does not notice.
pub const DEFAULT_GREETING_DELAY: Duration = Duration::from_millis(400);

/// A server name for IRC replies: 1 to 63 bytes of ASCII letters, digits, `.` and `-`, with a
/// letter or digit first.
///
/// ```
/// use chat_core::ServerName;
/// assert_eq!(ServerName::new("irc.example.org").unwrap().as_str(), "irc.example.org");
/// assert!(ServerName::new("has space").is_none());
/// ```
///
/// It owns its bytes (a runner can build one from a command line or a config file), and is
/// `Copy`, like the [`Config`] that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerName {
    bytes: [u8; MAX_SERVER_NAME_BYTES],
    len: u8,
}

/// The longest server name, in bytes.
pub const MAX_SERVER_NAME_BYTES: usize = 63;

impl ServerName {
    /// `chat.local`.
    pub const DEFAULT: Self = Self::from_checked("chat.local");

    /// Checks `name`; `None` if it is not a valid server name.
    pub fn new(name: &str) -> Option<Self> {
        let valid = (1..=MAX_SERVER_NAME_BYTES).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        valid.then(|| Self::from_checked(name))
    }

    /// `name`, already checked (or a constant known to be valid).
    const fn from_checked(name: &str) -> Self {
        let mut bytes = [0; MAX_SERVER_NAME_BYTES];
        let mut at = 0;
        while at < name.len() && at < MAX_SERVER_NAME_BYTES {
            bytes[at] = name.as_bytes()[at];
            at += 1;
        }
        Self {
            bytes,
            len: at as u8,
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Cannot fail: the bytes were checked to be ASCII.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl Config {
    /// The limits of this configuration: what a running server can change (see [`Limits`]).
    pub const fn limits(&self) -> Limits {
        Limits {
            max_clients: self.max_clients,
            max_room_members: self.max_room_members,
            history: self.history,
            flood_limit: self.flood_limit,
            silence_timeout: self.silence_timeout,
            greeting_delay: self.greeting_delay,
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            announce_limit: self.announce_limit,
            nick_grace: self.nick_grace,
        }
    }

    /// The same configuration with other limits; the rest stays.
    pub const fn with_limits(mut self, limits: Limits) -> Self {
        self.max_clients = limits.max_clients;
        self.max_room_members = limits.max_room_members;
        self.history = limits.history;
        self.flood_limit = limits.flood_limit;
        self.silence_timeout = limits.silence_timeout;
        self.greeting_delay = limits.greeting_delay;
        self.ping_interval = limits.ping_interval;
        self.ping_timeout = limits.ping_timeout;
        self.announce_limit = limits.announce_limit;
        self.nick_grace = limits.nick_grace;
        self
    }

    /// The same configuration with colour on or off.
    pub const fn with_colour(mut self, colour: bool) -> Self {
        self.colour = colour;
        self
    }

    /// The same configuration with another number of lines replayed to newcomers.
    pub const fn with_history(mut self, lines: usize) -> Self {
        self.history = lines;
        self
    }

    /// The same configuration with another connection limit.
    pub const fn with_max_clients(mut self, clients: usize) -> Self {
        self.max_clients = clients;
        self
    }

    /// The same configuration with other flood control (`None`: off).
    pub const fn with_flood_limit(mut self, limit: Option<FloodLimit>) -> Self {
        self.flood_limit = limit;
        self
    }

    /// The same configuration with another room size limit.
    pub const fn with_max_room_members(mut self, members: u32) -> Self {
        self.max_room_members = members;
        self
    }

    /// The same configuration with another greeting delay.
    pub const fn with_greeting_delay(mut self, delay: Duration) -> Self {
        self.greeting_delay = delay;
        self
    }

    /// The same configuration with another server name.
    pub const fn with_server_name(mut self, name: ServerName) -> Self {
        self.server_name = name;
        self
    }

    /// The same configuration with IRC clients put in the lobby on registering, or not.
    pub const fn with_irc_lobby(mut self, lobby: bool) -> Self {
        self.irc_lobby = lobby;
        self
    }

    /// The same configuration with another ping interval (`None`: never ping) and timeout.
    pub const fn with_ping(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.ping_interval = interval;
        self.ping_timeout = timeout;
        self
    }

    /// The same configuration with another limit on announced rooms.
    pub const fn with_announce_limit(mut self, members: u32) -> Self {
        self.announce_limit = members;
        self
    }

    /// The same configuration with nickname claims on or off (see [`claim`](crate::claim)).
    pub const fn with_nick_claims(mut self, on: bool) -> Self {
        self.nick_claims = on;
        self
    }

    /// The same configuration with room lines relayed through the runner or not (see
    /// [`relay`](crate::relay)).
    pub const fn with_relayed_lines(mut self, on: bool) -> Self {
        self.relayed_lines = on;
        self
    }

    /// The same configuration with another time a nickname claim may wait for its answer.
    pub const fn with_claim_timeout(mut self, timeout: Duration) -> Self {
        self.claim_timeout = timeout;
        self
    }

    /// The same configuration with accounts kept by the runner, or not (see
    /// [`account`](crate::account)).
    pub const fn with_accounts(mut self, on: bool) -> Self {
        self.accounts = on;
        self
    }

    /// The same configuration with another time an account request may wait for its answer.
    pub const fn with_account_timeout(mut self, timeout: Duration) -> Self {
        self.account_timeout = timeout;
        self
    }

    /// The same configuration with another grace period for registered nicknames.
    pub const fn with_nick_grace(mut self, grace: Duration) -> Self {
        self.nick_grace = grace;
        self
    }

    /// The same configuration with another silence timeout (`None`: never).
    pub const fn with_silence_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.silence_timeout = timeout;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            colour: true,
            silence_timeout: Some(DEFAULT_SILENCE_TIMEOUT),
            max_room_members: u32::MAX,
            max_clients: usize::MAX,
            history: 0,
            flood_limit: Some(FloodLimit::DEFAULT),
            greeting_delay: DEFAULT_GREETING_DELAY,
            server_name: ServerName::DEFAULT,
            irc_lobby: true,
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            announce_limit: DEFAULT_ANNOUNCE_LIMIT,
            nick_claims: false,
            claim_timeout: crate::claim::DEFAULT_CLAIM_TIMEOUT,
            relayed_lines: false,
            accounts: false,
            account_timeout: crate::account::DEFAULT_ACCOUNT_TIMEOUT,
            nick_grace: crate::account::DEFAULT_NICK_GRACE,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::string::String;

    use super::*;

    #[test]
    fn a_server_name_owns_its_bytes() {
        let typed = String::from("irc.example.org");
        let name = ServerName::new(&typed).unwrap();
        drop(typed);
        assert_eq!(name.as_str(), "irc.example.org");
        assert_eq!(ServerName::DEFAULT.as_str(), "chat.local");
        assert!(ServerName::new(&"a".repeat(MAX_SERVER_NAME_BYTES)).is_some());
        assert!(ServerName::new(&"a".repeat(MAX_SERVER_NAME_BYTES + 1)).is_none());
        assert!(ServerName::new("-dash").is_none());
    }
}
