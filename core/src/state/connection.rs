//! A connection: what only this process can know of someone's link to it.
//!
//! The framer and its partial line, flood control, whether the welcome went out and the
//! dialect is settled, how far an IRC registration has come, and whether the runner is
//! skipping messages for it. Who is on the other end is the [`Person`](super::person::Person)
//! in the same roster slot.

use crate::state::flood::FloodBucket;
use crate::wire::line::LineFramer;

/// One connection's transport state.
#[derive(Debug, Default)]
pub(crate) struct Connection {
    pub(crate) framer: LineFramer,
    /// Flood control's bucket.
    pub(crate) flood: FloodBucket,
    /// Sent the plain-text welcome and put in the lobby.
    pub(crate) greeted: bool,
    /// Has sent a complete line (or object), so its dialect is settled.
    pub(crate) spoke: bool,
    /// Set for the whole life of a connection that began to register as an IRC client.
    pub(crate) registration: Option<Registration>,
    /// The runner is skipping room messages for it: it is not reading fast enough.
    pub(crate) lagging: bool,
    /// The nickname claimed for it from the other servers, while the answer is awaited.
    /// (Where the roster's pool of claims keeps it: see
    /// [`Roster::claiming`](crate::state::roster::Roster::claiming).)
    pub(crate) claiming: Option<u32>,
    /// It goes by a registered nickname without being identified as it: its grace period
    /// runs (see [`account`](crate::account)).
    pub(crate) unproven: bool,
    /// The address it connects from, if the runner said (for server-wide bans).
    pub(crate) peer: Option<core::net::IpAddr>,
}

/// How far an IRC client's registration has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Registration {
    /// Welcomed (001 sent): it may use every command and is shown in rooms.
    pub(crate) registered: bool,
    /// It began capability negotiation (`CAP LS` or `CAP REQ`) before registering, so the
    /// welcome waits for `CAP END`.
    pub(crate) negotiating: bool,
    /// The IRCv3 capabilities it turned on.
    pub(crate) caps: Caps,
    /// A labeled answer (IRCv3 `labeled-response`) is open: the line it answers names several
    /// targets and is being handled a target per step.
    pub(crate) labeled: bool,
    /// How far a SASL exchange (`AUTHENTICATE`) has come.
    pub(crate) sasl: Sasl,
}

/// How far an IRC client's SASL exchange has come (see `dialect/irc/sasl.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Sasl {
    /// None begun, or the last ended.
    #[default]
    Idle,
    /// `AUTHENTICATE PLAIN` was answered `AUTHENTICATE +`: the payload comes next.
    Plain,
    /// The credentials are with the runner; registration waits for the answer.
    Checking,
}

/// A set of IRCv3 capabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Caps(u16);

impl Caps {
    pub(crate) const NONE: Self = Self(0);
    pub(crate) const SERVER_TIME: Self = Self(1);
    pub(crate) const MESSAGE_TAGS: Self = Self(2);
    pub(crate) const ECHO_MESSAGE: Self = Self(4);
    pub(crate) const BATCH: Self = Self(8);
    pub(crate) const CHATHISTORY: Self = Self(16);
    pub(crate) const LABELED_RESPONSE: Self = Self(32);
    /// Offered only where the runner keeps accounts.
    pub(crate) const SASL: Self = Self(64);
    /// `NAMES` and `WHO` show every status of a member (`@+nick`), not only the highest.
    pub(crate) const MULTI_PREFIX: Self = Self(128);
    /// `AWAY` lines from people it shares a room with, when they go away or come back.
    pub(crate) const AWAY_NOTIFY: Self = Self(256);
    /// `SETNAME`, and `SETNAME` lines when people it shares a room with change their real name.
    pub(crate) const SETNAME: Self = Self(512);
    /// `NAMES` shows each member as `nick!user@host`.
    pub(crate) const USERHOST_IN_NAMES: Self = Self(1024);
    /// `away-notify` and `setname` lines also for the nicknames it watches (`MONITOR`), where
    /// it shares no room with them.
    pub(crate) const EXTENDED_MONITOR: Self = Self(2048);
    /// `ACCOUNT` lines when people it shares a room with identify or log out; offered only
    /// where the runner keeps accounts.
    pub(crate) const ACCOUNT_NOTIFY: Self = Self(4096);
    /// The `account` tag, the sender's account, on the messages of identified people; offered
    /// only where the runner keeps accounts. It is one of the server's tags: a client that reads
    /// any of them reads it (see [`Self::tagged`]).
    pub(crate) const ACCOUNT_TAG: Self = Self(8192);

    /// The capabilities offered only where the runner keeps accounts.
    pub(crate) const ACCOUNTS: Self =
        Self(Self::SASL.0 | Self::ACCOUNT_NOTIFY.0 | Self::ACCOUNT_TAG.0);

    /// Every capability offered, by name, in the order `CAP LS` lists them.
    pub(crate) const OFFERED: [(&'static str, Self); 14] = [
        ("account-notify", Self::ACCOUNT_NOTIFY),
        ("account-tag", Self::ACCOUNT_TAG),
        ("away-notify", Self::AWAY_NOTIFY),
        ("batch", Self::BATCH),
        ("draft/chathistory", Self::CHATHISTORY),
        ("echo-message", Self::ECHO_MESSAGE),
        ("extended-monitor", Self::EXTENDED_MONITOR),
        ("labeled-response", Self::LABELED_RESPONSE),
        ("message-tags", Self::MESSAGE_TAGS),
        ("multi-prefix", Self::MULTI_PREFIX),
        ("sasl", Self::SASL),
        ("server-time", Self::SERVER_TIME),
        ("setname", Self::SETNAME),
        ("userhost-in-names", Self::USERHOST_IN_NAMES),
    ];

    /// The capability called `name` (ASCII case ignored).
    pub(crate) fn named(name: &str) -> Option<Self> {
        Self::OFFERED
            .iter()
            .find(|(offered, _)| offered.eq_ignore_ascii_case(name))
            .map(|&(_, cap)| cap)
    }

    pub(crate) const fn has(self, cap: Self) -> bool {
        self.0 & cap.0 == cap.0 && cap.0 != 0
    }

    pub(crate) const fn with(self, cap: Self, on: bool) -> Self {
        if on {
            Self(self.0 | cap.0)
        } else {
            Self(self.0 & !cap.0)
        }
    }

    /// Whether lines to this client carry the server's message tags (`time`, `msgid`,
    /// `account`): it asked for one of them. One set for all three, so that a room's members
    /// need one bit for it (a client that asked only `server-time` sees `account` too, and one
    /// that asked only `account-tag` sees `time`; a client that parses tags at all skips those
    /// it does not know).
    pub(crate) const fn tagged(self) -> bool {
        self.has(Self::SERVER_TIME) || self.has(Self::MESSAGE_TAGS) || self.has(Self::ACCOUNT_TAG)
    }

    /// Whether answers to this client's labeled commands carry the label. Like InspIRCd, only
    /// with `batch` too: an answer of several lines is a batch.
    pub(crate) const fn labels(self) -> bool {
        self.has(Self::LABELED_RESPONSE) && self.has(Self::BATCH)
    }
}
