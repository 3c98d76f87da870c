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
}

/// How far an IRC client's registration has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Registration {
    /// Welcomed (001 sent): it may use every command and is shown in rooms.
    pub(crate) registered: bool,
    /// It began capability negotiation (`CAP LS` or `CAP REQ`) before registering, so the
    /// welcome waits for `CAP END`.
    pub(crate) negotiating: bool,
}
