//! What the connections' tasks, the accept loop and the signal task tell the hub: one
//! [`Event`] type on one channel, so the hub handles everything in the order it happened.

use std::io;
use std::net::{SocketAddr, TcpStream};

use chat_core::account::{AccountAnswer, AccountRequest};
use chat_core::{ConnectionId, DisconnectReason};
use smol::Async;
use smol::channel::Sender;

use crate::stats::Snapshot;

use crate::socket::TlsSocket;

/// A new connection's socket: plain, or TLS with its handshake done.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(Async<TcpStream>),
    /// Boxed: a rustls connection is large, and a plain connection should not carry its size
    /// through the event queue.
    Tls(Box<TlsSocket>),
}

/// Something that happened, for the hub to handle in order.
#[derive(Debug)]
pub(crate) enum Event {
    /// The accept loop took a new connection (a TLS one once its handshake is done).
    Accepted(Stream, SocketAddr),
    /// A connection sent bytes.
    Input(ConnectionId, Vec<u8>),
    /// A connection's reader saw the end of the stream or an error.
    Disconnected(ConnectionId, DisconnectReason, Option<io::Error>),
    /// A connection's writer emptied its queue while room messages were being skipped for it.
    CaughtUp(ConnectionId),
    /// A connection's writer could not write anything for the stall timeout.
    Stalled(ConnectionId),
    /// Ctrl-C or SIGTERM.
    Shutdown(&'static str),
    /// The accounts thread answered a request (see `accounts.rs`).
    Account(Box<AccountRequest>, AccountAnswer),
    /// Cluster mode: these accounts exist (by key), made on any node: all of them when the
    /// news starts, then each new one (see `cluster/accounts.rs`).
    AccountsRegistered(Vec<String>),
    /// Cluster mode: server bans set or lifted on any node: every one there is when the news
    /// starts, then each change, or one of this node's that could not be shared (see
    /// `cluster/bans.rs`). Boxed: it is 136 bytes, and every slot of the hub's queue is as
    /// large as the largest event (an event of 56 bytes in a slot of 64 with it boxed).
    Moderation(Box<crate::cluster::ModerationNews>),
    /// SIGHUP read the message of the day (`--motd`) again; `None`: the built-in one (the
    /// reloaded configuration has no `motd`). Boxed: it is some 6 KB.
    Motd(Option<Box<chat_core::motd::Motd>>),
    /// SIGHUP reloaded the configuration (`--config`): the hub applies what can change live
    /// (see `Hub::reconfigure`). Boxed: settings are large and rare.
    Reconfigure(Box<crate::Settings>),
    /// `--metrics`: a scrape wants the hub's counts, sent back on this channel.
    Scrape(Sender<Snapshot>),
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_stay_small() {
        // Every slot of the hub's queue is as large as the largest event, and all of them are
        // written at start (see `EVENT_QUEUE`): box what is large and rare.
        assert!(
            size_of::<super::Event>() <= 56,
            "{}",
            size_of::<super::Event>()
        );
    }
}
