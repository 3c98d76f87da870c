//! Nicknames held across servers: a decision the core cannot make alone.
//!
//! When several servers share one chat (the runner's cluster mode), a nickname must be unique
//! across all of them, and only something outside the core (a Redis script, say) can tell
//! whether a nickname is free everywhere. With [`Config::nick_claims`](crate::Config) on,
//! a person who asks for a nickname that is free here does not get it at once: the core
//! hands the runner a [`NickClaim`] ([`Output::Claim`](crate::Output::Claim)), the way
//! quinn-proto hands out an `Incoming`, and waits, the person keeping their old name (an IRC
//! client that is registering waits for its welcome). The runner answers with
//! [`Server::handle_claim`](crate::Server::handle_claim): [`ClaimAnswer::Granted`],
//! [`ClaimAnswer::Taken`] or [`ClaimAnswer::Unavailable`]. A claim not answered within
//! [`Config::claim_timeout`](crate::Config) counts as `Unavailable`, and a later answer to it
//! gets [`Error::StaleClaim`](crate::Error::StaleClaim): a runner that was told `Granted`
//! then gives the nickname back, since nobody here took it.
//!
//! The core gives nicknames back through events: the old name of an
//! [`Event::Renamed`](crate::Event::Renamed) and the name of an
//! [`Event::Departed`](crate::Event::Departed) are free again.
//!
//! ```
//! use chat_core::claim::ClaimAnswer;
//! use chat_core::{Admission, Config, Instant, Output, Server};
//! use core::time::Duration;
//!
//! let config = Config::default()
//!     .with_colour(false)
//!     .with_greeting_delay(Duration::ZERO)
//!     .with_nick_claims(true);
//! let mut server: Server<chat_core::Inline<4>> = Server::new(config, Instant::ZERO);
//! let now = Instant::from_millis(1);
//! let Admission::Accepted(alice) = server.handle_connect(now).unwrap() else { panic!() };
//! while server.poll_output().is_some() {}
//! let _ = server.handle_input(now, alice, b"/nick alice\n").unwrap();
//! let mut claim = None;
//! while let Some(output) = server.poll_output() {
//!     if let Output::Claim(asked) = output {
//!         claim = Some(asked.clone());
//!     }
//! }
//! let claim = claim.expect("asked the runner");
//! assert_eq!(claim.nick().as_str(), "alice");
//! // The other servers agree: alice it is.
//! server.handle_claim(now, &claim, ClaimAnswer::Granted).unwrap();
//! let mut told = Vec::new();
//! while let Some(output) = server.poll_output() {
//!     if let Output::Send { mut to, bytes } = output
//!         && to.any(|conn| conn == alice)
//!     {
//!         told.push(String::from_utf8_lossy(bytes).into_owned());
//!     }
//! }
//! assert_eq!(told, ["*** You are now known as alice.\r\n"]);
//! ```

use core::time::Duration;

use crate::state::roster::{ConnectionId, Nickname};

/// How long a claim may wait for its answer unless [`Config::claim_timeout`](crate::Config)
/// says otherwise: past it, the person is told the nickname could not be checked.
pub const DEFAULT_CLAIM_TIMEOUT: Duration = Duration::from_secs(5);

/// A person here wants a nickname that is free here: is it free everywhere? From
/// [`Output::Claim`](crate::Output::Claim); hand it back to
/// [`Server::handle_claim`](crate::Server::handle_claim) with the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NickClaim {
    conn: ConnectionId,
    nick: Nickname,
}

impl NickClaim {
    pub(crate) fn new(conn: ConnectionId, nick: Nickname) -> Self {
        Self { conn, nick }
    }

    /// Who wants it.
    pub fn conn(&self) -> ConnectionId {
        self.conn
    }

    /// The nickname wanted. Nicknames compare ignoring ASCII case: claim it that way.
    pub fn nick(&self) -> &Nickname {
        &self.nick
    }
}

/// What the servers decided about a [`NickClaim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimAnswer {
    /// The nickname is now held for this server: the person takes it.
    Granted,
    /// Someone on another server holds it: the person is told it is taken.
    Taken,
    /// It could not be decided (the servers cannot be reached): the person is told to try
    /// again later, and keeps their name.
    Unavailable,
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::string::String;
    use std::vec::Vec;

    use super::*;
    use crate::testing::{Driver, Transcript};
    use crate::{Config, DisconnectReason, Error, Instant, ServerName};

    /// One server of several, its claims answered by the test.
    struct Node {
        driver: Driver<8>,
        heard: Transcript,
    }

    impl Node {
        fn new() -> Self {
            Self::greeting_after(Duration::ZERO)
        }

        /// A server that welcomes a silent connection as plain text after `delay`.
        fn greeting_after(delay: Duration) -> Self {
            let config = Config::default()
                .with_colour(false)
                .with_flood_limit(None)
                .with_greeting_delay(delay)
                .with_silence_timeout(None)
                .with_server_name(ServerName::new("irc.test").unwrap())
                .with_nick_claims(true)
                .with_claim_timeout(Duration::from_secs(2));
            Self {
                driver: Driver::new(config, Instant::from_millis(1_000)),
                heard: Transcript::default(),
            }
        }

        fn connect(&mut self) -> ConnectionId {
            let heard = &mut self.heard;
            let conn = self
                .driver
                .connect(&mut |output| heard.record(output))
                .unwrap();
            self.heard.take(conn);
            conn
        }

        fn send(&mut self, conn: ConnectionId, text: &str) {
            let heard = &mut self.heard;
            self.driver
                .input(conn, text.as_bytes(), &mut |output| heard.record(output));
        }

        fn take(&mut self, conn: ConnectionId) -> Vec<String> {
            self.heard.take(conn)
        }

        /// The one claim asked for since the last call.
        fn claim(&mut self) -> NickClaim {
            let mut claims = self.driver.take_claims();
            assert_eq!(claims.len(), 1, "{claims:?}");
            claims.remove(0)
        }

        fn answer(&mut self, claim: &NickClaim, answer: ClaimAnswer) -> Result<(), Error> {
            let heard = &mut self.heard;
            self.driver
                .answer_claim(claim, answer, &mut |output| heard.record(output))
        }
    }

    #[test]
    fn a_nickname_free_here_waits_for_the_other_servers() {
        let mut node = Node::new();
        let (ann, bob, cid) = (node.connect(), node.connect(), node.connect());
        for conn in [ann, bob, cid] {
            node.take(conn);
        }
        node.send(ann, "/nick alice\n");
        assert!(node.take(ann).is_empty(), "nothing until the answer");
        let claim = node.claim();
        assert_eq!((claim.conn(), claim.nick().as_str()), (ann, "alice"));
        // Taken here by a claim still waiting: no second claim of it.
        node.send(bob, "/nick ALICE\n");
        assert_eq!(
            node.take(bob),
            ["*** error: the nickname ALICE is taken; you are still anonymous-2"]
        );
        assert!(node.driver.take_claims().is_empty());
        node.answer(&claim, ClaimAnswer::Granted).unwrap();
        assert_eq!(node.take(ann), ["*** You are now known as alice."]);
        assert_eq!(node.take(bob), ["*** anonymous-1 is now known as alice"]);

        // One claim at a time; another server holds the name.
        node.send(bob, "/nick carol\n");
        let claim = node.claim();
        node.send(bob, "/nick dave\n");
        assert_eq!(
            node.take(bob),
            [
                "*** error: your last nickname is still being checked with the other servers; try again in a moment"
            ]
        );
        node.answer(&claim, ClaimAnswer::Taken).unwrap();
        assert_eq!(
            node.take(bob),
            ["*** error: the nickname carol is taken; you are still anonymous-2"]
        );

        // No answer in time is an answer; a late one is refused, the name not taken.
        node.send(bob, "/nick erin\n");
        let claim = node.claim();
        let heard = &mut node.heard;
        node.driver
            .advance(Duration::from_millis(2_001), &mut |output| {
                heard.record(output);
            });
        assert_eq!(
            node.take(bob),
            [
                "*** error: the nickname erin could not be checked with the other servers; try again; you are still anonymous-2"
            ]
        );
        assert_eq!(
            node.answer(&claim, ClaimAnswer::Granted),
            Err(Error::StaleClaim)
        );
        assert!(node.take(bob).is_empty());

        // Gone before the answer.
        node.send(cid, "/nick zed\n");
        let claim = node.claim();
        let heard = &mut node.heard;
        node.driver
            .disconnect(cid, DisconnectReason::Closed, &mut |output| {
                heard.record(output);
            });
        assert_eq!(
            node.answer(&claim, ClaimAnswer::Granted),
            Err(Error::UnknownConnection(cid))
        );
    }

    #[test]
    fn an_irc_client_is_welcomed_once_its_nickname_is_granted() {
        let mut node = Node::new();
        let nia = node.connect();
        node.send(nia, "NICK nia\r\nUSER nia 0 * :Nia\r\n");
        assert!(node.take(nia).is_empty(), "no welcome before the answer");
        let claim = node.claim();
        node.answer(&claim, ClaimAnswer::Granted).unwrap();
        let welcome = node.take(nia);
        assert_eq!(
            welcome[0],
            ":irc.test 001 nia :Welcome to the chat, nia!~nia@hidden"
        );

        let other = node.connect();
        node.send(other, "NICK nia2\r\nUSER o 0 * :O\r\n");
        let claim = node.claim();
        node.answer(&claim, ClaimAnswer::Taken).unwrap();
        assert_eq!(
            node.take(other),
            [":irc.test 433 * nia2 :Nickname is already in use"]
        );
        node.send(other, "NICK nia3\r\n");
        let claim = node.claim();
        node.answer(&claim, ClaimAnswer::Unavailable).unwrap();
        assert_eq!(
            node.take(other),
            [
                ":irc.test FAIL NICK CANNOT_CLAIM nia3 :The nickname could not be checked with the other servers; try again"
            ]
        );
    }

    #[test]
    fn a_nickname_lost_to_another_server_leaves_its_holder_anonymous_and_told() {
        let mut node = Node::new();
        let (ann, bob) = (node.connect(), node.connect());
        node.send(ann, "/nick alice\n");
        let claim = node.claim();
        node.answer(&claim, ClaimAnswer::Granted).unwrap();
        let nia = node.connect();
        node.send(nia, "NICK nia\r\nUSER nia 0 * :Nia\r\n");
        let claim = node.claim();
        node.answer(&claim, ClaimAnswer::Granted).unwrap();
        for conn in [ann, bob, nia] {
            node.take(conn);
        }

        let mut events = Vec::new();
        let lost = |node: &mut Node, conn, nick, events: &mut Vec<String>| {
            let now = node.driver.now();
            let result = node.driver.server_mut().handle_nick_lost(now, conn, nick);
            let heard = &mut node.heard;
            node.driver.drain(&mut |output| {
                if let crate::Output::Event(event) = &output {
                    events.push(std::string::ToString::to_string(event));
                }
                heard.record(output);
            });
            result
        };
        // Case aside, it is the name alice goes by: she is anonymous again, and told why.
        lost(&mut node, ann, "ALICE", &mut events).unwrap();
        assert_eq!(
            node.take(ann),
            [
                "*** You are now known as anonymous-1.",
                "*** someone on another server took the nickname ALICE while this server could \
                 not reach the others; you are anonymous-1 now: pick another with /nick NAME"
            ]
        );
        assert_eq!(node.take(bob), ["*** alice is now known as anonymous-1"]);
        assert_eq!(node.take(nia), [":alice!plain@hidden NICK :anonymous-1"]);
        assert_eq!(events, ["renamed alice anonymous-1"]);
        events.clear();
        // The name is free here again.
        node.send(bob, "/nick alice\n");
        assert_eq!(node.claim().nick().as_str(), "alice");

        // An IRC client sees its NICK change, then why.
        lost(&mut node, nia, "nia", &mut events).unwrap();
        assert_eq!(
            node.take(nia),
            [
                ":nia!~nia@hidden NICK :anonymous-3",
                ":irc.test NOTICE anonymous-3 :*** someone on another server took the \
                 nickname nia while this server could not reach the others; you are anonymous-3 now: pick \
                 another with NICK"
            ]
        );

        assert_eq!(node.take(ann), ["*** nia is now known as anonymous-3"]);
        assert_eq!(events, ["renamed nia anonymous-3"]);
        events.clear();
        // Its replies name it by the name it goes by now, not `*`.
        node.send(nia, "PING x\r\n");
        node.send(nia, "WHOIS nobody\r\n");
        let replies = node.take(nia);
        assert!(
            replies
                .iter()
                .any(|line| line.starts_with(":irc.test 401 anonymous-3 nobody ")),
            "{replies:?}"
        );

        // A name it no longer goes by, or a connection gone: nothing, or an error.
        lost(&mut node, ann, "alice", &mut events).unwrap();
        assert!(node.take(ann).is_empty() && events.is_empty());
        node.driver
            .disconnect(ann, DisconnectReason::Closed, &mut |_| {});
        assert_eq!(
            lost(&mut node, ann, "alice", &mut events),
            Err(Error::UnknownConnection(ann))
        );

        // A client that sent NICK but not yet USER was shown to no one: it is told the name
        // is in use, as if its claim had been refused, and registers under another.
        let mut node = Node::greeting_after(Duration::from_secs(5));
        let watcher = node.connect();
        node.send(watcher, "NICK wat\r\nUSER w 0 * :W\r\n");
        let claim = node.claim();
        node.answer(&claim, ClaimAnswer::Granted).unwrap();
        node.take(watcher);
        let late = node.connect();
        node.send(late, "NICK lou\r\n");
        let claim = node.claim();
        node.answer(&claim, ClaimAnswer::Granted).unwrap();
        lost(&mut node, late, "lou", &mut events).unwrap();
        assert_eq!(
            node.take(late),
            [":irc.test 433 * lou :Nickname is already in use"]
        );
        assert!(events.is_empty() && node.take(watcher).is_empty());
        node.send(late, "NICK lou2\r\nUSER l 0 * :L\r\n");
        let claim = node.claim();
        node.answer(&claim, ClaimAnswer::Granted).unwrap();
        assert!(node.take(late)[0].starts_with(":irc.test 001 lou2 "));
    }
}
