//! Account requests waiting for the runner's answer (see [`account`](crate::account)): what
//! the roster keeps of each, the passwords being the runner's by then.

use crate::state::nickname::Nickname;
use crate::state::roster::ConnectionId;

/// The most account requests waiting for the runner at once; past it, whoever asks is told to
/// try again in a moment.
pub const MAX_WAITING_ACCOUNT_ASKS: usize = 64;

/// What kind of request waits (the passwords are the runner's by then, not kept here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AskKind {
    Register,
    Identify,
    ChangePassword,
}

/// Account requests handed to the runner, waiting for its answer: a side table, since few
/// wait at once and a roster slot need not carry room for one.
pub(crate) type Waitings = heapless::Vec<Waiting, MAX_WAITING_ACCOUNT_ASKS>;

/// How a request was asked, which says how its answer is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// A command of the plain dialect, or `NickServ`: answered in words.
    Command,
    /// IRC's SASL: answered with numerics, and registration waits for it.
    Sasl,
    /// IRC's `OPER NAME PASSWORD`: identifying as a server operator's account, answered with
    /// `381` or `464`.
    Oper,
}

/// A request handed to the runner, waiting for its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Waiting {
    pub(crate) conn: ConnectionId,
    pub(crate) account: Nickname,
    pub(crate) kind: AskKind,
    pub(crate) via: Via,
}
