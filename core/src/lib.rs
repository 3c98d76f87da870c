//! The sans-IO protocol core of a terminal chat server.
//!
//! Bytes, connects, disconnects and the current time go in; lines ready for a terminal, and
//! connections to close, come out. The core never touches a socket or a clock, never blocks,
//! and never allocates while it runs: every bound is a constant of this crate or the capacity a
//! [`Server`] was made with, and each has a defined behaviour when full (see the constants'
//! docs). The table of connections is inline ([`Inline`], no allocation at all) or, with the
//! `alloc` feature, allocated once when the server is made ([`Heap`], capacity chosen at start);
//! see [`storage`].
//!
//! A misbehaving peer becomes output: an overlong line, invalid UTF-8, control characters or an
//! unknown command each get an error reply and the connection goes on. [`Error`] is only for
//! misuse of the API, such as a stale [`ConnectionId`]. A panic is a bug.
//!
//! # The run loop
//!
//! ```
//! use chat_core::{Admission, Config, Inline, Instant, Output, Server};
//! use core::time::Duration;
//!
//! // No greeting delay: the welcome goes out at connect (see `Config::greeting_delay`).
//! let config = Config::default().with_colour(false).with_greeting_delay(Duration::ZERO);
//! // Eight connections, kept inline; with the `alloc` feature,
//! // `Server::with_capacity(config, Instant::ZERO, 100_000)` chooses the capacity at start.
//! let mut server: Server<Inline<8>> = Server::new(config, Instant::ZERO);
//! let now = Instant::from_millis(10);
//! let Admission::Accepted(alice) = server.handle_connect(now).unwrap() else { panic!("full") };
//! while let Some(output) = server.poll_output() { /* the welcome banner, for alice */ }
//! let Admission::Accepted(bob) = server.handle_connect(now).unwrap() else { panic!("full") };
//! while let Some(output) = server.poll_output() {}
//!
//! // Input may hold several lines: handle_input takes one at a time.
//! let mut input: &[u8] = b"/nick alice\nhello bob\n";
//! let mut heard = Vec::new();
//! while !input.is_empty() {
//!     let taken = server.handle_input(now, alice, input).unwrap().bytes();
//!     input = &input[taken..];
//!     while let Some(output) = server.poll_output() {
//!         if let Output::Send { to, bytes } = output {
//!             for conn in to {
//!                 if conn == bob { heard.push(String::from_utf8_lossy(bytes).into_owned()); }
//!             }
//!         }
//!     }
//! }
//! assert_eq!(heard, ["*** anonymous-1 is now known as alice\r\n", "alice: hello bob\r\n"]);
//! // A runner would now arm a timer for server.poll_timeout() and call handle_timeout.
//! ```
//!
//! The call order is the one contract to keep: after each `handle_*` call, drain
//! [`Server::poll_output`] to `None` before the next one. See [`Server`] for the rest.
//!
//! # Features
//!
//! - `std` (default): conversions between [`Instant`] and `std::time::Instant`. Brings `alloc`.
//!   Without either the crate is `no_std` without allocation and builds for bare targets such
//!   as `thumbv7em-none-eabihf`. The error types implement `core::error::Error` either way.
//! - `alloc`: [`Heap`] storage, for a capacity chosen at start ([`Server::with_capacity`]).
//! - `testing`: `testing::Driver`, which drives a server by the contract on a simulated
//!   clock, for tests, benches and fuzz targets. Brings `std`.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod account;
pub mod claim;
mod config;
mod dialect;
mod event;
pub mod history;
pub mod motd;
mod output;
pub mod relay;
mod server;
mod state;
pub mod storage;
mod time;
mod wire;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use wire::irc;

pub use config::{
    Config, DEFAULT_ANNOUNCE_LIMIT, DEFAULT_GREETING_DELAY, DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT, DEFAULT_SILENCE_TIMEOUT, Limits, MAX_SERVER_NAME_BYTES, ServerName,
};
pub use dialect::{
    DisconnectReason, MAX_IRC_NAMES, MAX_LISTED_NAMES, MAX_LISTED_ROOMS, MAX_LISTING_SCAN,
    MAX_MODE_CHANGES, MAX_WHO_REPLIES,
};
pub use event::{BanList, Event, LineKind, PersonId};
pub use history::{
    HistoryAnswer, HistoryLine, HistoryMark, HistoryRange, HistoryRequest, HistoryTarget,
    MAX_HISTORY_LINES, MAX_LABEL_BYTES, answer_parts,
};
pub use output::{CloseReason, Delivery, OUTPUT_BYTES, Output, Recipients};
pub use server::{Admission, Backlog, Consumed, Dialect, Error, Restored, Server};
pub use state::flood::FloodLimit;
pub use state::members::MAX_ROOMS_PER_PERSON;
pub use state::moderation::{
    MAX_INVITES, MAX_SERVER_BAN_REASON_BYTES, MAX_SERVER_BANS, MAX_TIMED_MUTES,
};
pub use state::names::{MAX_NAME_KEY_BYTES, NameKey};
pub use state::rooms::{
    LOBBY, MAX_BAN_MASK_BYTES, MAX_BANS, MAX_KEYED_ROOMS, MAX_REGISTERED_ROOMS, MAX_ROOM_KEY_BYTES,
    MAX_ROOM_NAME_BYTES, MAX_ROOM_NAME_CHARS, MAX_ROOMS, MAX_TOPIC_BYTES, MAX_TOPICS, RoomName,
    RoomNameError,
};
pub use state::roster::{
    ANONYMOUS, ConnectionId, MAX_NICK_BYTES, MAX_NICK_CHARS, MAX_NODES, Nickname, NicknameError,
    SERVICE_NAMES,
};
#[cfg(feature = "alloc")]
pub use storage::Heap;
pub use storage::{Inline, Storage};
pub use time::Instant;
pub use wire::line::{MAX_LINE_BYTES, MAX_TAG_BYTES, TAG_BUFFERS};
pub use wire::plain::{Command, MAX_MODERATION_DURATION, ParseError, parse_duration};
