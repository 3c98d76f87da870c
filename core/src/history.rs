//! What was said before: kept by the runner, not the core.
//!
//! The core keeps no lines. Every line said in a room leaves as an
//! [`Event::Said`], for the runner to keep (in a database, in memory, or
//! nowhere); when someone joins a room or asks for its history, the core asks the runner with
//! [`Output::History`](crate::Output::History), and the runner answers with
//! [`Server::handle_history`](crate::Server::handle_history): [`HistoryAnswer::Begin`], each
//! line oldest first, then [`HistoryAnswer::End`]. The core renders the answer for the asker's
//! dialect; it remembers nothing about the request meanwhile, since the request carries all it
//! needs back.
//!
//! Lines the asker receives live while the answer is on its way would overtake the history;
//! a runner keeps the asker's later output back until the answer is written (the request's
//! place in the output order is where the answer goes).

use crate::event::{Event, LineKind};
use crate::state::nickname::Nickname;
use crate::state::rooms::RoomName;
use crate::state::roster::ConnectionId;
use crate::time::Instant;

/// The most lines one request asks for: the largest join replay
/// ([`Config::with_history`](crate::Config::with_history)) and the largest `/history N`.
pub const MAX_HISTORY_LINES: usize = 500;

/// Which of a room's lines a request wants, by sequence number ([`Event::Said`]'s `seq`) or by
/// time. At most [`HistoryRequest::limit`] of them, oldest first in the answer.
///
/// [`Event::Said`]: crate::Event::Said
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryRange {
    /// The room's last lines.
    Latest,
    /// The room's last lines after the mark (not including it).
    LatestAfter(HistoryMark),
    /// The last lines before the mark (not including it).
    Before(HistoryMark),
    /// The first lines after the mark (not including it).
    After(HistoryMark),
    /// Lines on both sides of the mark: about half before, half after (the mark's own line
    /// included, if it has one).
    Around(HistoryMark),
    /// Lines strictly between two marks, in whichever order they were given: past the limit,
    /// those nearest the first mark (the first lines after it if it is the earlier one, the
    /// last lines before it if it is the later one), oldest first either way.
    Between(HistoryMark, HistoryMark),
}

/// A point in a room's history: a line's sequence number, or a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryMark {
    /// The line with this sequence number.
    Seq(u64),
    /// This time, in the core's milliseconds.
    At(Instant),
}

/// What the core does with the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Shown to someone who just joined the room.
    Replay,
    /// Asked for with `/history N`.
    Command,
    /// Asked for with IRCv3 `CHATHISTORY`.
    ChatHistory,
}

/// A request for a room's past lines, from [`Output::History`](crate::Output::History).
///
/// Made only by the core; the runner reads what it asks for and hands it back, unchanged, with
/// each part of the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRequest {
    conn: ConnectionId,
    target: Target,
    range: HistoryRange,
    limit: u16,
    purpose: Purpose,
    /// The IRCv3 label of the command that asked, which the answer carries.
    label: Option<Label>,
}

/// Whose lines a request wants.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Room(RoomName),
    /// The private messages between the account `account` (the asker's) and `peer`.
    Private {
        account: Nickname,
        peer: Nickname,
        peer_account: Option<bool>,
    },
}

/// Whose lines a [`HistoryRequest`] wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryTarget<'a> {
    /// A room's: compare its name ignoring case (see [`RoomName::matches`]).
    Room(&'a RoomName),
    /// The private messages kept for the account `account` (the one the asker is identified
    /// as) with `peer`: the account of the other person, or their nickname if they were not
    /// identified. Compare both as names are compared ([`NameKey`](crate::NameKey)).
    /// Only an identified asker asks for these: a store keeps private messages under the
    /// accounts of those who sent and received them, never under a nickname alone.
    Private {
        /// The asker's account.
        account: &'a Nickname,
        /// The other person.
        peer: &'a Nickname,
        /// Whether `peer` is an account: `Some(true)` for someone here identified as it,
        /// `Some(false)` for someone here going by that nickname without being identified,
        /// `None` when no one here goes by it (a runner that knows the accounts decides). A
        /// store keeps messages with an account apart from those with a mere nickname, so that
        /// whoever took a name without its account does not pass for its owner.
        peer_account: Option<bool>,
    },
}

/// An IRCv3 `label` tag's value, as the client sent it (still escaped).
pub(crate) type Label = heapless::String<MAX_LABEL_BYTES>;

/// The longest IRCv3 label the server answers with; a command with a longer one is answered
/// as if it had none.
pub const MAX_LABEL_BYTES: usize = 64;

impl HistoryRequest {
    pub(crate) fn new(
        conn: ConnectionId,
        room: RoomName,
        range: HistoryRange,
        limit: usize,
        purpose: Purpose,
    ) -> Self {
        Self {
            conn,
            target: Target::Room(room),
            range,
            limit: limit.min(MAX_HISTORY_LINES) as u16,
            purpose,
            label: None,
        }
    }

    /// A request for the private messages between `account` (the asker's) and `peer`.
    pub(crate) fn private(
        conn: ConnectionId,
        (account, peer, peer_account): (Nickname, Nickname, Option<bool>),
        range: HistoryRange,
        limit: usize,
    ) -> Self {
        Self {
            conn,
            target: Target::Private {
                account,
                peer,
                peer_account,
            },
            range,
            limit: limit.min(MAX_HISTORY_LINES) as u16,
            purpose: Purpose::ChatHistory,
            label: None,
        }
    }

    /// Whose lines are wanted.
    pub fn target(&self) -> HistoryTarget<'_> {
        match &self.target {
            Target::Room(room) => HistoryTarget::Room(room),
            Target::Private {
                account,
                peer,
                peer_account,
            } => HistoryTarget::Private {
                account,
                peer,
                peer_account: *peer_account,
            },
        }
    }

    /// Who asked, and gets the answer.
    pub fn conn(&self) -> ConnectionId {
        self.conn
    }

    /// The room whose lines are wanted, if a room's are (see [`target`](Self::target)).
    pub fn room(&self) -> Option<&RoomName> {
        match &self.target {
            Target::Room(room) => Some(room),
            Target::Private { .. } => None,
        }
    }

    /// Which lines.
    pub fn range(&self) -> HistoryRange {
        self.range
    }

    /// The most lines to answer with, at most [`MAX_HISTORY_LINES`].
    pub fn limit(&self) -> usize {
        usize::from(self.limit)
    }

    pub(crate) fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// Whether it asks for a join's replay, which nobody asked for by name.
    pub(crate) fn is_replay(&self) -> bool {
        self.purpose == Purpose::Replay
    }

    /// The label the answer carries, if the command that asked had one.
    pub(crate) fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    pub(crate) fn set_label(&mut self, label: &str) {
        self.label = Label::try_from(label).ok();
    }
}

/// One line of a room's history, as the runner kept it from an [`Event::Said`], or a private
/// message kept from an [`Event::Private`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLine<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// When it was said.
    pub at: Instant,
    /// Line, action or notice.
    pub kind: LineKind,
    /// Who said it, as they were called then.
    pub nick: &'a str,
    /// What was said. The core shows control characters in it as visible escapes, as it does
    /// any text, so a damaged store cannot reach a terminal raw.
    pub text: &'a str,
    /// For a private message, whom it was sent to, as they were called then; `None` for a
    /// room's line.
    pub to: Option<&'a str>,
}

impl<'a> HistoryLine<'a> {
    /// For a line said in a room ([`Event::Said`]): the room, and the line as a store keeps it
    /// and hands back in a [`HistoryAnswer`]. `None` for any other event.
    pub fn of_said(event: &Event<'a>) -> Option<(&'a str, Self)> {
        match *event {
            Event::Said {
                nick,
                room,
                kind,
                text,
                seq,
                at,
            } => Some((
                room,
                Self {
                    seq,
                    at,
                    kind,
                    nick,
                    text,
                    to: None,
                },
            )),
            _ => None,
        }
    }
}

/// The whole answer for `lines` (oldest first), part by part in the order
/// [`Server::handle_history`](crate::Server::handle_history) takes them: `Begin`, each line,
/// `End`.
pub fn answer_parts<'a, I>(lines: I) -> impl Iterator<Item = HistoryAnswer<'a>>
where
    I: IntoIterator<Item = HistoryLine<'a>>,
    I::IntoIter: ExactSizeIterator,
{
    let lines = lines.into_iter();
    [HistoryAnswer::Begin { lines: lines.len() }]
        .into_iter()
        .chain(lines.map(HistoryAnswer::Line))
        .chain([HistoryAnswer::End])
}

/// One part of the answer to a [`HistoryRequest`], given to
/// [`Server::handle_history`](crate::Server::handle_history) in this order: `Begin`, each
/// `Line` oldest first (at most the request's limit), `End`. `Unavailable` instead of all of
/// them when the lines cannot be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryAnswer<'a> {
    /// The answer begins; this many lines follow.
    Begin {
        /// How many lines follow.
        lines: usize,
    },
    /// One line.
    Line(HistoryLine<'a>),
    /// The answer is complete.
    End,
    /// The history cannot be read (the store failed); the asker is told.
    Unavailable,
}
