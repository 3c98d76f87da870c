//! A driver for tests, benches and fuzz targets: the call-order contract kept in one place.
//!
//! [`Driver`] owns a boxed [`Server`] and the simulated clock, and drives the core as a runner
//! must: every `handle_*` call is followed by draining [`Server::poll_output`], a line that
//! names several targets is carried through [`Server::handle_more`], and input held back by
//! flood control is reported rather than retried. Each output is handed to a callback as it
//! comes, so a test can collect lines ([`Transcript`]), count recipients (a bench) or check
//! invariants (a fuzz target) without writing the loop again.
//!
//! It also keeps history as a runner would: every line said ([`Event::Said`](crate::Event::Said))
//! is kept in memory, and each [`Output::History`] is answered from it at once, after the
//! outputs of the step that asked (a runner with a store answers later; the asker sees the
//! same lines).
//!
//! Needs the `testing` feature (which brings `std`).
//!
//! ```
//! use chat_core::testing::{Driver, Transcript};
//! use chat_core::{Config, Instant};
//! use core::time::Duration;
//!
//! let config = Config::default().with_colour(false).with_greeting_delay(Duration::ZERO);
//! let mut driver: Driver<4> = Driver::new(config, Instant::ZERO);
//! let mut heard = Transcript::default();
//! let alice = driver.connect(&mut |output| heard.record(output)).unwrap();
//! let bob = driver.connect(&mut |output| heard.record(output)).unwrap();
//! heard.clear();
//! driver.input(alice, b"/nick alice\nhi\n", &mut |output| heard.record(output));
//! assert_eq!(heard.lines_to(bob), ["*** anonymous-1 is now known as alice", "alice: hi"]);
//! ```

use std::boxed::Box;
use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;

use core::time::Duration;

use crate::account::{AccountAnswer, AccountRequest};
use crate::claim::{ClaimAnswer, NickClaim};
use crate::history::answer_parts;
use crate::{
    Admission, CloseReason, Config, ConnectionId, DisconnectReason, HistoryLine, HistoryMark,
    HistoryRange, HistoryRequest, Instant, LineKind, Output, Server,
};

/// A [`Server`] on a simulated clock, driven by the contract. See the [module docs](self).
#[derive(Debug)]
pub struct Driver<const CLIENTS: usize> {
    server: Box<Server<crate::Inline<CLIENTS>>>,
    now: Instant,
    /// Every line said, by room name in lower case, oldest first.
    kept: BTreeMap<String, Vec<Kept>>,
    /// Nickname claims asked for and not yet taken with [`Self::take_claims`].
    claims: Vec<NickClaim>,
    /// Account requests made and not yet taken with [`Self::take_account_requests`].
    account_requests: Vec<AccountRequest>,
    /// Room lines handed out for their place in the order, not yet taken with
    /// [`Self::take_relayed`].
    relayed: Vec<Relayed>,
    /// Operators' orders handed out, not yet taken with [`Self::take_orders`].
    orders: Vec<GivenOrder>,
}

/// An operator's order handed out for the other servers ([`Output::Order`]), owned: from
/// [`Driver::take_orders`], for another driver's [`Driver::obey`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenOrder {
    /// The room.
    pub room: String,
    /// Whom it is about.
    pub target: String,
    /// Who gave it.
    pub by: String,
    /// What it is.
    pub action: GivenAction,
}

/// What a [`GivenOrder`] does: an owned [`Action`](crate::relay::Action).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GivenAction {
    /// A kick, with its reason.
    Kick(Option<String>),
    /// A status given (`true`) or taken, for how long.
    Status(crate::relay::Status, bool, Option<Duration>),
    /// An invitation.
    Invite,
}

impl GivenOrder {
    /// The order, borrowed, for [`Server::handle_order`].
    pub fn order(&self) -> crate::relay::Order<'_> {
        use crate::relay::Action;
        crate::relay::Order {
            room: &self.room,
            target: &self.target,
            by: &self.by,
            action: match &self.action {
                GivenAction::Kick(reason) => Action::Kick {
                    reason: reason.as_deref(),
                },
                &GivenAction::Status(status, on, duration) => Action::Status {
                    status,
                    on,
                    duration,
                },
                GivenAction::Invite => Action::Invite,
            },
        }
    }
}

/// Where a [`Relayed`] line goes: an owned [`Target`](crate::relay::Target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayedTo {
    /// A room.
    Room(String),
    /// Someone on another server.
    Person {
        /// Their nickname.
        nick: String,
        /// Their server.
        node: String,
    },
}

impl Relayed {
    /// The room it goes to, if it is a room line.
    pub fn room(&self) -> Option<&str> {
        match &self.to {
            RelayedTo::Room(room) => Some(room),
            RelayedTo::Person { .. } => None,
        }
    }
}

/// A line said here for the runner to carry (a room line waiting for its place in the
/// room's order, or a private message for another server): an owned
/// [`Outgoing`](crate::relay::Outgoing), from [`Driver::take_relayed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relayed {
    /// Who said it.
    pub conn: ConnectionId,
    /// Their name then.
    pub nick: String,
    /// Where it goes.
    pub to: RelayedTo,
    /// Line, action or notice; or a topic.
    pub kind: crate::relay::Kind,
    /// What was said, or the topic.
    pub text: String,
    /// When.
    pub at: Instant,
}

/// A line kept for history.
#[derive(Clone, Debug)]
struct Kept {
    seq: u64,
    at: Instant,
    kind: LineKind,
    nick: String,
    text: String,
}

impl Kept {
    fn line(&self) -> HistoryLine<'_> {
        HistoryLine {
            seq: self.seq,
            at: self.at,
            kind: self.kind,
            nick: &self.nick,
            text: &self.text,
            to: None,
        }
    }
}

/// What a call did with the bytes it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fed {
    /// Bytes the core took.
    pub taken: usize,
    /// Flood control (or an IRC `OPER` waiting for its answer) held the rest back: offer it
    /// again after [`Output::Resume`].
    pub held: bool,
}

impl<const CLIENTS: usize> Driver<CLIENTS> {
    /// A server made with `config`, its clock at `now`.
    ///
    /// The server is built on the heap; for a large `CLIENTS` build the driver on a thread with
    /// a large stack, since `Box::new` may build the server on the stack first.
    pub fn new(config: Config, now: Instant) -> Self {
        Self {
            server: Box::new(Server::new(config, now)),
            now,
            kept: BTreeMap::new(),
            claims: Vec::new(),
            account_requests: Vec::new(),
            relayed: Vec::new(),
            orders: Vec::new(),
        }
    }

    /// The nickname claims asked for since the last call ([`Output::Claim`]), oldest first:
    /// answer them with [`Self::answer_claim`], as the servers would.
    pub fn take_claims(&mut self) -> Vec<NickClaim> {
        core::mem::take(&mut self.claims)
    }

    /// Answers `claim` ([`Server::handle_claim`]), handing the outputs to `each`.
    pub fn answer_claim(
        &mut self,
        claim: &NickClaim,
        answer: ClaimAnswer,
        each: &mut dyn FnMut(Output<'_>),
    ) -> Result<(), crate::Error> {
        let result = self.server.handle_claim(self.now, claim, answer);
        self.drain(each);
        result
    }

    /// The account requests made since the last call ([`Output::Account`]), oldest first:
    /// answer them with [`Self::answer_account`], as a runner would.
    pub fn take_account_requests(&mut self) -> Vec<AccountRequest> {
        core::mem::take(&mut self.account_requests)
    }

    /// Answers `request` ([`Server::handle_account`]), handing the outputs to `each`.
    pub fn answer_account(
        &mut self,
        request: &AccountRequest,
        answer: AccountAnswer,
        each: &mut dyn FnMut(Output<'_>),
    ) -> Result<(), crate::Error> {
        let result = self.server.handle_account(self.now, request, answer);
        self.drain(each);
        result
    }

    /// Tells the server `conn` goes by `nick`, a registered nickname
    /// ([`Server::handle_nick_registered`]), handing the outputs to `each`.
    pub fn nick_registered(
        &mut self,
        conn: ConnectionId,
        nick: &str,
        each: &mut dyn FnMut(Output<'_>),
    ) -> Result<(), crate::Error> {
        let result = self.server.handle_nick_registered(self.now, conn, nick);
        self.drain(each);
        result
    }

    /// The room lines handed out since the last call ([`Output::Relay`]), oldest first: give
    /// them their places and hand them back with [`Self::hand_back`], as a runner would.
    pub fn take_relayed(&mut self) -> Vec<Relayed> {
        core::mem::take(&mut self.relayed)
    }

    /// The operators' orders handed out since the last call ([`Output::Order`]), oldest first.
    pub fn take_orders(&mut self) -> Vec<GivenOrder> {
        core::mem::take(&mut self.orders)
    }

    /// Hands an order given on the server called `node` to this one
    /// ([`Server::handle_order`]), handing the outputs to `each`.
    pub fn obey(
        &mut self,
        node: &str,
        order: &crate::relay::Order<'_>,
        each: &mut dyn FnMut(Output<'_>),
    ) -> Result<(), crate::Error> {
        let result = self.server.handle_order(self.now, node, order);
        self.drain(each);
        result
    }

    /// Hands a line in its place back to the server ([`Server::handle_relayed`]), handing the
    /// outputs to `each`.
    pub fn hand_back(
        &mut self,
        line: &crate::relay::Incoming<'_>,
        each: &mut dyn FnMut(Output<'_>),
    ) -> Result<(), crate::Error> {
        let result = self.server.handle_relayed(self.now, line);
        self.drain(each);
        result
    }

    /// The server, for its getters.
    pub fn server(&self) -> &Server<crate::Inline<CLIENTS>> {
        &self.server
    }

    /// The server, for calls the driver does not wrap. Drain it before using the driver again.
    pub fn server_mut(&mut self) -> &mut Server<crate::Inline<CLIENTS>> {
        &mut self.server
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Hands every pending output to `each`, in order, keeping the lines said; then answers
    /// the history asked for, handing the answer's outputs to `each` too.
    pub fn drain(&mut self, each: &mut dyn FnMut(Output<'_>)) {
        let mut asked = Vec::new();
        while let Some(output) = self.server.poll_output() {
            match &output {
                Output::Event(event) => {
                    if let Some((room, line)) = HistoryLine::of_said(event) {
                        self.kept.entry(room_key(room)).or_default().push(Kept {
                            seq: line.seq,
                            at: line.at,
                            kind: line.kind,
                            nick: String::from(line.nick),
                            text: String::from(line.text),
                        });
                    }
                }
                Output::History(request) => asked.push((*request).clone()),
                Output::Claim(claim) => self.claims.push((*claim).clone()),
                Output::Account(request) => self.account_requests.push((*request).clone()),
                Output::Relay(line) => self.relayed.push(Relayed {
                    conn: line.conn,
                    nick: String::from(line.nick),
                    to: match line.to {
                        crate::relay::Target::Room(room) => RelayedTo::Room(String::from(room)),
                        crate::relay::Target::Person { nick, node } => RelayedTo::Person {
                            nick: String::from(nick),
                            node: String::from(node),
                        },
                    },
                    kind: line.kind,
                    text: String::from(line.text),
                    at: line.at,
                }),
                Output::Order(order) => self.orders.push(GivenOrder {
                    room: String::from(order.room),
                    target: String::from(order.target),
                    by: String::from(order.by),
                    action: match order.action {
                        crate::relay::Action::Kick { reason } => {
                            GivenAction::Kick(reason.map(String::from))
                        }
                        crate::relay::Action::Status {
                            status,
                            on,
                            duration,
                        } => GivenAction::Status(status, on, duration),
                        crate::relay::Action::Invite => GivenAction::Invite,
                    },
                }),
                _ => {}
            }
            each(output);
        }
        for request in asked {
            self.answer(&request, each);
        }
    }

    /// Answers `request` from the lines kept.
    fn answer(&mut self, request: &HistoryRequest, each: &mut dyn FnMut(Output<'_>)) {
        let lines = self
            .kept
            .get(&room_key(request.room().map_or("", |room| room.as_str())))
            .map_or(&[][..], Vec::as_slice);
        let chosen = select(lines, request.range(), request.limit()).to_vec();
        for part in answer_parts(chosen.iter().map(Kept::line)) {
            if self.server.handle_history(self.now, request, part).is_err() {
                // The asker left in the same step.
                return;
            }
            while let Some(output) = self.server.poll_output() {
                each(output);
            }
        }
    }

    /// Connects one more client; `None` when the server refuses it (full).
    pub fn connect(&mut self, each: &mut dyn FnMut(Output<'_>)) -> Option<ConnectionId> {
        let admission = self.server.handle_connect(self.now).expect("contract kept");
        self.drain(each);
        match admission {
            Admission::Accepted(conn) => Some(conn),
            _ => None,
        }
    }

    /// Feeds `bytes` from `conn` a line at a time, every part of a line that names several
    /// targets included, until all are taken or flood control holds the rest back.
    pub fn input(
        &mut self,
        conn: ConnectionId,
        bytes: &[u8],
        each: &mut dyn FnMut(Output<'_>),
    ) -> Fed {
        let mut taken = 0;
        while taken < bytes.len() {
            let Ok(mut consumed) = self.server.handle_input(self.now, conn, &bytes[taken..]) else {
                // Gone (it quit, or was never live): the rest is not anyone's.
                break;
            };
            taken += consumed.bytes();
            let held = consumed.bytes() == 0 && !consumed.more();
            self.drain(each);
            while consumed.more() {
                consumed = self
                    .server
                    .handle_more(self.now, conn)
                    .expect("a line in parts belongs to a live connection");
                self.drain(each);
            }
            if held {
                return Fed { taken, held: true };
            }
        }
        Fed { taken, held: false }
    }

    /// Reports `conn` gone; false if the core did not know it (it closed it already).
    pub fn disconnect(
        &mut self,
        conn: ConnectionId,
        reason: DisconnectReason,
        each: &mut dyn FnMut(Output<'_>),
    ) -> bool {
        let known = self
            .server
            .handle_disconnect(self.now, conn, reason)
            .is_ok();
        self.drain(each);
        known
    }

    /// Moves the clock on by `by`, handling every deadline that passes on the way, each at
    /// its own time.
    pub fn advance(&mut self, by: Duration, each: &mut dyn FnMut(Output<'_>)) {
        let until = self.now.saturating_add(by);
        while let Some(due) = self.server.poll_timeout().filter(|&due| due <= until) {
            self.now = self.now.max(due);
            self.server.handle_timeout(self.now).expect("contract kept");
            self.drain(each);
        }
        self.now = until;
    }
}

/// The lines of `lines` (oldest first) that `range` names, at most `limit`, oldest first.
fn select(lines: &[Kept], range: HistoryRange, limit: usize) -> &[Kept] {
    // Where the first line at or after `mark` is.
    let from = |mark: HistoryMark| match mark {
        HistoryMark::Seq(seq) => lines.partition_point(|line| line.seq < seq),
        HistoryMark::At(at) => lines.partition_point(|line| line.at < at),
    };
    // Where the first line after `mark` is.
    let past = |mark: HistoryMark| match mark {
        HistoryMark::Seq(seq) => lines.partition_point(|line| line.seq <= seq),
        HistoryMark::At(at) => lines.partition_point(|line| line.at <= at),
    };
    let last = |end: usize| &lines[end.saturating_sub(limit)..end];
    let first = |start: usize| &lines[start..(start + limit).min(lines.len())];
    match range {
        HistoryRange::Before(mark) => last(from(mark)),
        HistoryRange::After(mark) => first(past(mark)),
        HistoryRange::Around(mark) => {
            let start = from(mark).saturating_sub(limit / 2);
            first(start)
        }
        HistoryRange::Between(a, b) => {
            let (start, end) = (past(a).min(past(b)), from(a).max(from(b)));
            let end = end.max(start);
            if from(a) > from(b) {
                // Asked backwards: the lines nearest the first mark, the later one.
                &lines[start.max(end.saturating_sub(limit))..end]
            } else {
                &lines[start..end.min(start + limit)]
            }
        }
        HistoryRange::Latest => last(lines.len()),
        HistoryRange::LatestAfter(mark) => {
            let start = past(mark);
            &lines[start.max(lines.len().saturating_sub(limit))..]
        }
    }
}

/// Outputs collected as owned text: the lines each connection was sent, and what closed and
/// resumed. Events are not kept here; match [`Output::Event`] in your own callback.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    lines: BTreeMap<ConnectionId, Vec<String>>,
    /// Connections closed, in order, and why.
    pub closed: Vec<(ConnectionId, CloseReason)>,
    /// Connections flood control let go on, in order.
    pub resumed: Vec<ConnectionId>,
}

impl Transcript {
    /// Records one output.
    pub fn record(&mut self, output: Output<'_>) {
        match output {
            Output::Send { to, bytes } => {
                let text = String::from_utf8_lossy(bytes);
                for conn in to {
                    let lines = self.lines.entry(conn).or_default();
                    lines.extend(text.split_terminator("\r\n").map(String::from));
                }
            }
            Output::Close { conn, reason } => self.closed.push((conn, reason)),
            Output::Resume { conn } => self.resumed.push(conn),
            _ => {}
        }
    }

    /// The lines sent to `conn`, without their `\r\n`, oldest first.
    pub fn lines_to(&self, conn: ConnectionId) -> &[String] {
        self.lines.get(&conn).map_or(&[], Vec::as_slice)
    }

    /// Takes the lines sent to `conn`, leaving none.
    pub fn take(&mut self, conn: ConnectionId) -> Vec<String> {
        self.lines.remove(&conn).unwrap_or_default()
    }

    /// Who was sent anything.
    pub fn recipients(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.lines.keys().copied()
    }

    /// Forgets everything recorded.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

/// How a runner keys a room's history: by the room name's [`NameKey`](crate::NameKey), so that
/// every spelling of one room finds its lines.
fn room_key(room: &str) -> String {
    crate::NameKey::of(room).map_or_else(|| String::from(room), |key| key.as_str().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FloodLimit;

    #[test]
    fn input_held_back_is_reported_and_goes_on_after_the_clock_moves() {
        let limit = FloodLimit {
            burst: 2,
            per_second: 10,
        };
        let config = Config::default()
            .with_colour(false)
            .with_greeting_delay(Duration::ZERO)
            .with_flood_limit(Some(limit));
        let mut driver: Driver<2> = Driver::new(config, Instant::ZERO);
        let mut heard = Transcript::default();
        let alice = driver.connect(&mut |o| heard.record(o)).unwrap();
        let bob = driver.connect(&mut |o| heard.record(o)).unwrap();
        heard.clear();
        let input = b"1\n2\n3\n";
        let fed = driver.input(alice, input, &mut |o| heard.record(o));
        assert_eq!(
            fed,
            Fed {
                taken: 4,
                held: true
            },
            "two lines, then held"
        );
        assert_eq!(heard.lines_to(bob), ["anonymous-1: 1", "anonymous-1: 2"]);
        driver.advance(Duration::from_millis(100), &mut |o| heard.record(o));
        assert_eq!(heard.resumed, [alice], "resumed once a line is earned");
        let fed = driver.input(alice, &input[4..], &mut |o| heard.record(o));
        assert_eq!(
            fed,
            Fed {
                taken: 2,
                held: false
            }
        );
        assert_eq!(
            heard.take(bob).last().map(String::as_str),
            Some("anonymous-1: 3")
        );
        // A connection that is gone takes nothing, and says so by taking nothing.
        assert!(driver.disconnect(bob, DisconnectReason::Closed, &mut |_| {}));
        assert!(!driver.disconnect(bob, DisconnectReason::Closed, &mut |_| {}));
        assert_eq!(driver.input(bob, b"x\n", &mut |_| {}).taken, 0);
    }
}
