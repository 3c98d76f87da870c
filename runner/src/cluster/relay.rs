//! Cluster mode in the hub, besides nicknames (`node.rs`): room lines in one order across the
//! nodes, the other nodes' people, private messages between nodes, and nodes that are lost.
//!
//! # Room lines
//!
//! A line said here is not shown by the core at once (`Config::relayed_lines`): it comes out
//! as `Output::Relay`, and the [`Relay`] publishes it (Redis gives it the room's next number,
//! appends it to the room's stream and publishes it on the room's channel, in one step). Every
//! node, this one included, hears it on the channel and hands it to its core, so every node
//! shows a room's lines in the one order Redis gave them. The node subscribes to every room's
//! channel with one pattern at the start, so that it hears its own lines even in a room it has
//! just entered.
//!
//! Each room's last number is kept. A line whose number is past the next one means lines were
//! missed (the subscriber's connection dropped, say): the later lines wait while the missed
//! ones are fetched from the room's stream, and whatever the stream no longer has is
//! announced to the room as `[N messages missed]`, never skipped silently. A line that could
//! not be published (Redis out of reach) is shown here only, unnumbered, and not kept in the
//! store; the people here are told once that the other servers are out of reach.
//!
//! # People
//!
//! Each person here with a nickname is published whole (name, rooms, away) whenever that
//! changes, and gone when they leave; the other nodes' people come in on one channel. On
//! (re)subscribing, the node reads everyone from Redis and makes the core agree with it. A node
//! whose lease lapsed is lost: its people leave, with a reason that says so.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant as StdInstant};

use chat_core::relay::{Kind, Outgoing, Target};
use std::future::Future;

use futures_lite::{Stream, StreamExt};
use smol::channel::{Receiver, Sender};
use smol::{LocalExecutor, Task, Timer};

use super::{
    Checked, Cluster, ClusterError, Everyone, Fetched, Gap, Heard, MAX_FETCH, News, OrderNote,
    Outbound, PersonState, Position, PrivateLine, RemoteLine, Sent,
};
use crate::log::{error, info, warn};

/// How long a listener waits before it connects again after losing its connection, at first;
/// it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two attempts to connect a listener again: short, since lines
/// said meanwhile wait to be fetched until it is back.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How often a node checks the other nodes' leases: a dead node's people leave at most this
/// long after its lease lapsed, so at most a lease and this after it died. One small script
/// over the list of nodes a second.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The most lines said here waiting to be sent: past it, a room line is shown here only (as
/// when Redis is out of reach) and a private message is not delivered (its sender is told),
/// and the log says so once.
pub(crate) const MAX_PUBLISHING: usize = 4096;

/// The most lines sent in one batch (one round trip to Redis).
pub(crate) const MAX_BATCH: usize = 256;

/// The most lines of one room kept waiting while missed lines are fetched: past it, the
/// oldest waiting are dropped and counted in the `[N messages missed]` notice.
pub(crate) const MAX_HELD: usize = 1024;

/// The most lines one room's history is filled with from Redis when this node first follows
/// it: about what the room's stream keeps (it may keep a hundred or so more).
pub(crate) const MAX_BACKFILL: usize = 2 * super::STREAM_KEEP as usize;

/// The most rooms whose history is filled from Redis at once (a node starting with many rooms
/// restored, say); the others wait their turn, in order.
pub(crate) const MAX_BACKFILLS_AT_ONCE: usize = 4;

/// Why a private message was not sent, when Redis could not be reached.
const OUT_OF_REACH: &str = "the other servers cannot be reached just now";

/// What the relay's tasks report, for [`Relay::handle`].
#[derive(Debug)]
pub(crate) struct RelayDone(Report);

#[derive(Debug)]
enum Report {
    /// A listener ([`Link::Lines`] or [`Link::News`]) is subscribed (again).
    Up(Link),
    /// It lost its connection, or could not connect; it tries again.
    Down(Link, ClusterError),
    Heard(Box<Heard>),
    Fetched {
        room: String,
        result: Result<Fetched, ClusterError>,
    },
    /// A batch of lines said here was sent, or not.
    Sent(Vec<Outbound>, Result<Vec<Sent>, ClusterError>),
    News(News),
    /// A room's lines said while this node did not follow it, from its stream.
    Backfilled {
        /// The room's key.
        room: String,
        /// Its name, as the store is to keep it.
        name: String,
        /// Where the fill started: kept again if it failed.
        after: u64,
        lines: Vec<(u64, RemoteLine)>,
        result: Result<(), ClusterError>,
    },
    /// A room's topic as Redis keeps it, read when the room came to be here.
    Topic {
        room: String,
        result: Result<Option<(Position, RemoteLine)>, ClusterError>,
    },
    Everyone(Result<Everyone, ClusterError>),
    /// A batch of this node's people was published, but for these.
    PeopleSent(Vec<Change>, Result<(), ClusterError>),
    /// The nodes alive, by the leases.
    Nodes(Result<Checked, ClusterError>),
    /// Time to read everyone again (the last read failed).
    ReadEveryone,
    Malformed(ClusterError),
}

/// What the core is to be told, from [`Relay::handle`], in order.
#[derive(Debug)]
pub(crate) enum ForCore {
    /// A room line in its place: `seq` 0 for a line of this node shown here only.
    Line {
        room: String,
        seq: u64,
        line: RemoteLine,
    },
    /// Lines of a room said while this node did not follow it (before it started, or while
    /// it was stopped), for the store only: history, not news.
    Keep {
        room: String,
        lines: Vec<(u64, RemoteLine)>,
    },
    /// What person `sender` here (`ConnectionId::to_bits`) said could not be relayed, for
    /// `reason`: they are told.
    Undelivered {
        sender: u64,
        what: Unsent,
        reason: String,
    },
    /// A notice for the members of a room here.
    RoomNotice { room: String, text: String },
    /// A notice for everyone here.
    Notice(String),
    /// A change of another node's people, a lost node, or a private message for someone
    /// here.
    News(News),
}

/// What could not be relayed, for its speaker to be told (see [`ForCore::Undelivered`]).
#[derive(Debug)]
pub(crate) enum Unsent {
    /// A private message to `nick` on node `node`: not delivered.
    Private { nick: String, node: String },
    /// A new topic for `room`: not set anywhere, this node included, so that the nodes do
    /// not disagree on it.
    Topic { room: String },
}

/// One room's place in its order.
#[derive(Debug, Default)]
struct RoomOrder {
    /// The last number shown here; 0 before the first.
    last: u64,
    /// The highest number shown here in any epoch: a numbering Redis starts again goes on
    /// after it (see [`Outbound::Line`]).
    highest: u64,
    epoch: Option<String>,
    /// Missed lines are being fetched: lines heard meanwhile wait here.
    filling: bool,
    held: VecDeque<Heard>,
    /// Lines dropped from `held` while it was full, to be announced.
    dropped: u64,
}

impl RoomOrder {
    /// Follows the room from `last` on, lower than before if Redis started its numbering
    /// again or lost lines; the highest number shown stays known.
    fn restart_at(&mut self, last: u64) {
        self.highest = self.highest.max(self.last);
        self.last = last;
    }

    /// The last number this node knows the room had, whatever the epoch.
    fn floor(&self) -> u64 {
        self.highest.max(self.last)
    }
}

/// The relay's links to Redis: each may fail on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Link {
    /// The command connection (lines sent, people published, checks).
    Commands,
    /// The room lines' subscription.
    Lines,
    /// The people's subscription.
    News,
}

/// The most people of other nodes the core refused kept to offer again; past it, one refused
/// is offered again only when their node publishes them anew.
pub(crate) const MAX_REFUSED: usize = 1024;

/// The least time between two notices to everyone that the other servers cannot be reached:
/// a link that fails again and again is told once, and logged.
const TELL_AGAIN_AFTER: Duration = Duration::from_secs(60);

/// The most operators' orders (and changes of unregistered rooms' order) kept waiting for
/// Redis; past it, the oldest is dropped, with a log line (it was carried out here; the other
/// nodes miss it).
const MAX_ORDERS_WAITING: usize = 256;

/// A change of one of this node's people, or an operator's order given here, to publish.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Person {
        id: u64,
        state: Option<PersonState>,
        reason: String,
    },
    Order(OrderNote),
    /// A change of an unregistered room's order made here, encoded.
    Room(serde_json::Value),
}

impl Change {
    /// The person it is about, for a change of a person.
    fn person(&self) -> Option<u64> {
        match self {
            Self::Person { id, .. } => Some(*id),
            Self::Order(_) | Self::Room(_) => None,
        }
    }
}

/// This node's side of the room lines, the people and the private messages (see the module's
/// docs).
pub(crate) struct Relay {
    cluster: Cluster,
    executor: Rc<LocalExecutor<'static>>,
    reports: Sender<RelayDone>,
    results: Receiver<RelayDone>,
    /// The listeners and the lease checker: stopped when dropped.
    _tasks: Vec<Task<()>>,
    rooms: HashMap<String, RoomOrder>,
    /// Where this node's first line went in each room it has heard nothing of yet.
    placed: HashMap<String, Position>,
    /// The highest number a line of this node was given in each room, in any epoch, or may
    /// have been given (see [`may_have_been_numbered`]).
    known_top: HashMap<String, u64>,
    /// The place of the last topic line of each room handed to the core: a topic read from
    /// Redis later is handed over only if it is newer.
    topics: HashMap<String, Position>,
    /// The number of the last line the store keeps of each room, as far as this node knows
    /// (at start, and after each fill from Redis): where the room's history is filled from,
    /// and, with the last number heard, the floor for a numbering Redis starts again (see
    /// [`Outbound::Line`]).
    kept: HashMap<String, u64>,
    /// Rooms whose history is filled from Redis (or being filled, or waiting to be) since
    /// this node started.
    backfilled: HashSet<String>,
    /// Rooms waiting for their history to be filled, past [`MAX_BACKFILLS_AT_ONCE`] filling.
    backfills_waiting: VecDeque<String>,
    backfills_running: usize,
    /// Rooms whose topic or history could not be read from Redis: read again at the next
    /// check of the nodes that reaches Redis. At most one entry per room here.
    topics_unread: HashSet<String>,
    /// By key, the room's name.
    unfilled: HashMap<String, String>,
    /// The other nodes' people the core was told of, by node.
    known: HashMap<String, HashSet<u64>>,
    /// Nodes with people here missing from the list of nodes, since when.
    absent: HashMap<String, StdInstant>,
    /// The lease of each node, as the last check found it.
    leases: HashMap<String, Duration>,
    /// People the core refused, offered again at the next check, at most [`MAX_REFUSED`].
    refused: HashMap<(String, u64), PersonState>,
    /// While everyone is being read (`reads` of them in flight): the news heard meanwhile,
    /// applied after.
    reading_everyone: Option<Vec<News>>,
    reads: usize,
    /// This node's people as last published (or queued), by id.
    published: HashMap<u64, PersonState>,
    /// Changes waiting for the batch in flight.
    changes: VecDeque<Change>,
    /// Told once, when the room lines' listener is first subscribed (see
    /// [`Relay::when_following`]).
    following: Option<Sender<()>>,
    sending_people: bool,
    /// Lines said here waiting to be sent, oldest first, at most [`MAX_PUBLISHING`].
    outbound: VecDeque<Outbound>,
    /// A batch of them is on its way.
    sending_lines: bool,
    /// Which of the relay's links to Redis fail.
    down: HashSet<Link>,
    /// Since when Redis is out of reach, as the relay saw it.
    out_of_reach: Option<StdInstant>,
    /// When the people here were last told the other servers cannot be reached.
    told_at: Option<StdInstant>,
    /// Lines shown here only since the publishing queue filled.
    overflowed: Option<u64>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("rooms", &self.rooms.len())
            .field("outbound", &self.outbound.len())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Starts listening for room lines and for the other nodes' news, and checking the nodes'
    /// leases, on `executor`.
    /// `kept` is the number of the last line the store has of each room (by its name,
    /// lowercased): a room's history is filled from there when the node first follows it.
    pub(crate) fn new(
        cluster: Cluster,
        executor: Rc<LocalExecutor<'static>>,
        kept: HashMap<String, u64>,
    ) -> Self {
        let (reports, results) = smol::channel::unbounded();
        let tasks = vec![
            executor.spawn(keep_subscribed(
                reports.clone(),
                Link::Lines,
                {
                    let cluster = cluster.clone();
                    move || {
                        let cluster = cluster.clone();
                        async move {
                            let mut subscriber = cluster.subscriber().await?;
                            subscriber.subscribe_all().await?;
                            Ok(subscriber)
                        }
                    }
                },
                |heard| Report::Heard(Box::new(heard)),
            )),
            executor.spawn(keep_subscribed(
                reports.clone(),
                Link::News,
                {
                    let cluster = cluster.clone();
                    move || {
                        let cluster = cluster.clone();
                        async move { cluster.news().await }
                    }
                },
                Report::News,
            )),
            executor.spawn(check_nodes(cluster.clone(), reports.clone())),
        ];
        Self {
            cluster,
            executor,
            reports,
            results,
            _tasks: tasks,
            rooms: HashMap::new(),
            placed: HashMap::new(),
            known_top: HashMap::new(),
            topics: HashMap::new(),
            kept,
            backfilled: HashSet::new(),
            backfills_waiting: VecDeque::new(),
            backfills_running: 0,
            topics_unread: HashSet::new(),
            unfilled: HashMap::new(),
            known: HashMap::new(),
            absent: HashMap::new(),
            leases: HashMap::new(),
            refused: HashMap::new(),
            reading_everyone: None,
            reads: 0,
            published: HashMap::new(),
            changes: VecDeque::new(),
            following: None,
            sending_people: false,
            outbound: VecDeque::new(),
            sending_lines: false,
            down: HashSet::new(),
            out_of_reach: None,
            told_at: None,
            overflowed: None,
        }
    }

    /// Where the relay's reports arrive, for the hub to wait on.
    pub(crate) fn results(&self) -> Receiver<RelayDone> {
        self.results.clone()
    }

    /// This node's id, as the other nodes name it.
    pub(crate) fn node_id(&self) -> &str {
        self.cluster.node_id()
    }

    /// A line said here (`Output::Relay`), with the id of its speaker: a room line is
    /// published, a private message sent to its node, in the order said (see
    /// [`Cluster::send_batch`]). Returns the room lines to show here only, at once, when too
    /// many wait to be sent.
    pub(crate) fn outgoing(&mut self, line: &Outgoing<'_>, person: u64) -> Vec<ForCore> {
        let remote = RemoteLine {
            node: self.cluster.node_id().to_owned(),
            nick: line.nick.to_owned(),
            kind: line.kind,
            text: line.text.to_owned(),
            at: line.at,
            person: Some(person),
            room: match line.to {
                Target::Room(room) => Some(room.to_owned()),
                Target::Person { .. } => None,
            },
        };
        let outbound = match line.to {
            Target::Room(room) => Outbound::Line {
                room: room.to_owned(),
                line: remote,
                floor: self.floor(&crate::name_key(room)),
            },
            Target::Person { nick, node } => Outbound::Private {
                node: node.to_owned(),
                line: PrivateLine {
                    node: remote.node,
                    from: remote.nick,
                    to: nick.to_owned(),
                    kind: match remote.kind {
                        Kind::Said(kind) => kind,
                        // The core hands out topics for rooms only.
                        _ => {
                            error!("bug: a topic for a person from the core, dropped");
                            return Vec::new();
                        }
                    },
                    text: remote.text,
                    at: remote.at,
                },
                sender: person,
            },
        };
        self.outbound.push_back(outbound);
        if self.outbound.len() > MAX_PUBLISHING {
            // Every line waiting is shown here only, in order: a speaker's earlier lines do
            // not come after their later ones.
            let count = self.overflowed.get_or_insert(0);
            if *count == 0 {
                warn!(
                    "cluster: {MAX_PUBLISHING} lines wait for Redis; lines are shown on this node \
                     only until fewer do"
                );
            }
            *count += self.outbound.len() as u64;
            let why = "too many messages wait for the other servers just now";
            return self
                .outbound
                .drain(..)
                .map(|outbound| here_only(outbound, why))
                .collect();
        }
        self.send_outbound();
        Vec::new()
    }

    /// The last number this node knows room `key` had (or may have had), whatever the epoch:
    /// a numbering Redis starts again goes on after it (see [`Outbound::Line`]).
    fn floor(&self, key: &str) -> u64 {
        let heard = self.rooms.get(key).map_or(0, RoomOrder::floor);
        let kept = self.kept.get(key).copied().unwrap_or(0);
        let placed = self.known_top.get(key).copied().unwrap_or(0);
        heard.max(kept).max(placed)
    }

    /// Sends the lines waiting, as one batch, unless a batch is on its way.
    fn send_outbound(&mut self) {
        if self.sending_lines || self.outbound.is_empty() {
            return;
        }
        self.sending_lines = true;
        let count = self.outbound.len().min(MAX_BATCH);
        let mut batch: Vec<Outbound> = self.outbound.drain(..count).collect();
        // What was learnt since a line was said counts too: the batch before it may have
        // failed after its lines were numbered (see `may_have_been_numbered`).
        for outbound in &mut batch {
            if let Outbound::Line { room, floor, .. } = outbound {
                *floor = (*floor).max(self.floor(&crate::name_key(room)));
            }
        }
        let (cluster, reports) = (self.cluster.clone(), self.reports.clone());
        self.executor
            .spawn(async move {
                let result = cluster.send_batch(&batch).await;
                let _ = reports.try_send(RelayDone(Report::Sent(batch, result)));
            })
            .detach();
    }

    /// The room called `room` came to be here (someone joined it first, or it was restored
    /// with a topic): its topic is read from Redis, where the last topic line set in it is
    /// kept, so that a node that came later shows the topic set before it came, and its
    /// history is filled (see [`backfill`](Self::backfill)).
    pub(crate) fn room_created(&mut self, room: &str) {
        self.backfill(room);
        self.read_topic(room);
    }

    /// Reads `room`'s topic from Redis (see [`topic_read`](Self::topic_read)).
    fn read_topic(&mut self, room: &str) {
        let (cluster, reports, room) = (
            self.cluster.clone(),
            self.reports.clone(),
            crate::name_key(room),
        );
        self.executor
            .spawn(async move {
                let result = cluster.topic(&room).await;
                let _ = reports.try_send(RelayDone(Report::Topic { room, result }));
            })
            .detach();
    }

    /// Fills `room`'s history in the store with the lines its stream has after the last the
    /// store kept (at most [`MAX_BACKFILL`]), once per room while the node runs: the lines
    /// said before this node started, or while it was stopped. They go to the store only;
    /// those said since it follows the room come in order as usual (a line both fetched here
    /// and heard is kept once, under its number). At most [`MAX_BACKFILLS_AT_ONCE`] rooms are
    /// filled at once; the others wait their turn.
    /// `name` is the room's name (or its key, for want of one): the store keeps the lines
    /// under it.
    fn backfill(&mut self, name: &str) {
        let room = crate::name_key(name);
        if !self.backfilled.insert(room) {
            return;
        }
        if self.backfills_running >= MAX_BACKFILLS_AT_ONCE {
            self.backfills_waiting.push_back(name.to_owned());
            return;
        }
        self.start_backfill(name.to_owned());
    }

    fn start_backfill(&mut self, name: String) {
        self.backfills_running += 1;
        let room = crate::name_key(&name);
        let after = self.kept.get(&room).copied().unwrap_or(0);
        let (cluster, reports) = (self.cluster.clone(), self.reports.clone());
        self.executor
            .spawn(async move {
                let (mut last, mut lines) = (after, Vec::new());
                let result = loop {
                    let fetched = match cluster.fetch(&room, last, MAX_FETCH).await {
                        Ok(fetched) => fetched,
                        Err(error) => break Err(error),
                    };
                    let count = fetched.entries.len();
                    for entry in fetched.entries {
                        last = last.max(entry.seq);
                        match entry.line {
                            Ok(line) => lines.push((entry.seq, line)),
                            Err(error) => error!("cluster: {error}"),
                        }
                    }
                    if count < MAX_FETCH || last >= fetched.top || lines.len() >= MAX_BACKFILL {
                        break Ok(());
                    }
                };
                let report = Report::Backfilled {
                    room,
                    name,
                    after,
                    lines,
                    result,
                };
                let _ = reports.try_send(RelayDone(report));
            })
            .detach();
    }

    /// A room's topic read from Redis: handed to the core unless a topic line as new or newer
    /// was (the core shows nothing for a topic it has already).
    fn topic_read(
        &mut self,
        room: String,
        result: Result<Option<(Position, RemoteLine)>, ClusterError>,
        out: &mut Vec<ForCore>,
    ) {
        let (position, line) = match result {
            Ok(Some(read)) => read,
            Ok(None) => return,
            Err(error) => {
                error!(
                    "cluster: the topic of {room} could not be read: {error}; read again once \
                     Redis answers"
                );
                self.topics_unread.insert(room);
                return;
            }
        };
        if line.kind != Kind::Topic {
            warn!("cluster: the topic kept for {room} is not a topic line; ignored");
            return;
        }
        let seq = position.seq;
        if Self::newer_topic(&mut self.topics, &room, position) {
            out.push(ForCore::Line {
                room: shown_name(room, &line),
                seq,
                line,
            });
        }
    }

    /// Whether a topic line at `position` in `room` is newer than the last handed to the core
    /// (then it is the last from now on). A topic read from Redis may be handed over before
    /// an older topic line still on its way on the channel: that one is then not handed over,
    /// or it would undo the newer.
    fn newer_topic(topics: &mut HashMap<String, Position>, room: &str, position: Position) -> bool {
        let newer = topics
            .get(room)
            .is_none_or(|known| known.epoch != position.epoch || known.seq < position.seq);
        if newer {
            topics.insert(room.to_owned(), position);
        }
        newer
    }

    /// Person `id` here is now `state` (`None`: they have no nickname, so are not listed on
    /// other nodes): published if it changed.
    pub(crate) fn person(&mut self, id: u64, state: Option<PersonState>) {
        match state {
            Some(state) => {
                if self.published.get(&id) == Some(&state) {
                    return;
                }
                self.published.insert(id, state.clone());
                self.change(Change::Person {
                    id,
                    state: Some(state),
                    reason: String::new(),
                });
            }
            None => self.gone(id, "no longer has a nickname"),
        }
    }

    /// Person `id` here went offline, or lost their nickname, for `reason`.
    pub(crate) fn gone(&mut self, id: u64, reason: &str) {
        if self.published.remove(&id).is_some() {
            self.change(Change::Person {
                id,
                state: None,
                reason: reason.to_owned(),
            });
        }
    }

    /// An operator's order given here (carried out here already): published on the people
    /// channel after the changes made before it, so that the other nodes show the kick before
    /// the person's departure from the room.
    pub(crate) fn order(&mut self, order: &chat_core::relay::Order<'_>) {
        let Some(note) = OrderNote::of(self.cluster.node_id(), order) else {
            return;
        };
        self.queue_order(Change::Order(note));
    }

    /// Queues an order or a room's change, after the changes made before it.
    fn queue_order(&mut self, order: Change) {
        let waiting = self
            .changes
            .iter()
            .filter(|change| change.person().is_none())
            .count();
        if waiting >= MAX_ORDERS_WAITING
            && let Some(oldest) = self
                .changes
                .iter()
                .position(|change| change.person().is_none())
        {
            warn!(
                "cluster: {MAX_ORDERS_WAITING} operators' orders and room changes wait for Redis; \
                 the oldest is dropped (the other nodes will not show it)"
            );
            self.changes.remove(oldest);
        }
        self.changes.push_back(order);
        self.send_people();
    }

    /// A change to an unregistered room's order made here (carried out here already):
    /// published as orders are, and bounded with them.
    pub(crate) fn room_change(&mut self, change: &crate::store::Moderation) {
        if let Some(encoded) = super::encode_room_change(change, self.cluster.node_id()) {
            self.queue_order(Change::Room(encoded));
        }
    }

    fn change(&mut self, change: Change) {
        // A person's earlier change still waiting is superseded where it stands (each carries
        // the whole), so that changes keep the order they were made in: one person's new name
        // is published before another takes the old one.
        match self
            .changes
            .iter_mut()
            .find(|waiting| waiting.person().is_some() && waiting.person() == change.person())
        {
            Some(waiting) => *waiting = change,
            None => self.changes.push_back(change),
        }
        self.send_people();
    }

    /// Publishes the changes waiting, in order, one at a time in one task, unless a batch of
    /// them is in flight. What fails is put back and sent at the next check of the nodes.
    fn send_people(&mut self) {
        if self.sending_people || self.changes.is_empty() {
            return;
        }
        self.sending_people = true;
        let batch: Vec<Change> = self.changes.drain(..).collect();
        let (cluster, reports) = (self.cluster.clone(), self.reports.clone());
        self.executor
            .spawn(async move {
                let mut result = Ok(());
                let mut sent = 0;
                for change in &batch {
                    let published = match change {
                        Change::Person { id, state, reason } => {
                            cluster.set_person(*id, state.as_ref(), reason).await
                        }
                        Change::Order(order) => cluster.publish_order(order).await,
                        Change::Room(change) => cluster.publish_room_change(change).await,
                    };
                    if let Err(error) = published {
                        result = Err(error);
                        break;
                    }
                    sent += 1;
                }
                let unsent = batch.into_iter().skip(sent).collect();
                let _ = reports.try_send(RelayDone(Report::PeopleSent(unsent, result)));
            })
            .detach();
    }

    /// Puts back changes that were not sent, before those made since (which supersede them).
    fn unsent(&mut self, unsent: Vec<Change>) {
        for change in unsent.into_iter().rev() {
            let superseded = change.person().is_some()
                && self
                    .changes
                    .iter()
                    .any(|waiting| waiting.person() == change.person());
            if !superseded {
                self.changes.push_front(change);
            }
        }
    }

    /// Publishes every person here again: Redis lost them (this node's lease lapsed, and
    /// another node forgot them).
    fn publish_everyone_again(&mut self) {
        let everyone: Vec<(u64, PersonState)> = self
            .published
            .iter()
            .map(|(id, state)| (*id, state.clone()))
            .collect();
        for (id, state) in everyone {
            self.change(Change::Person {
                id,
                state: Some(state),
                reason: String::new(),
            });
        }
    }

    /// The server is stopping: the other nodes are told this node's people are gone, waiting
    /// at most `limit`.
    pub(crate) async fn leave(self, limit: Duration) {
        if self.published.is_empty() {
            return;
        }
        let count = self.published.len();
        let left =
            futures_lite::future::or(async { Some(self.cluster.leave_people().await) }, async {
                Timer::after(limit).await;
                None
            })
            .await;
        match left {
            Some(Ok(())) => info!("cluster: told the other nodes that its {count} people left"),
            Some(Err(error)) => error!(
                "cluster: could not tell the other nodes that its people left ({error}); they \
                 learn it when its lease lapses"
            ),
            None => warn!(
                "cluster: Redis did not answer within {:.1} s; the other nodes learn that its \
                 people left when its lease lapses",
                limit.as_secs_f64()
            ),
        }
    }

    /// Tells, once, when the room lines' listener is first subscribed: from then on this node
    /// hears every line said in any room. Whoever joins a room before then could miss the
    /// room's first lines (a line heard first in a room starts its order here), so the runner
    /// accepts connections only once this is told (or a while has passed).
    pub(crate) fn when_following(&mut self) -> Receiver<()> {
        let (told, hear) = smol::channel::bounded(1);
        self.following = Some(told);
        hear
    }

    /// Takes in a task's report: what the core is to be told of it, in order.
    pub(crate) fn handle(&mut self, done: RelayDone) -> Vec<ForCore> {
        let mut out = Vec::new();
        match done.0 {
            Report::Up(Link::Lines) => {
                self.reached(Link::Lines, &mut out);
                if let Some(following) = self.following.take() {
                    let _ = following.try_send(());
                }
                // Rooms this node has only said lines in: followed from its first line, which
                // it may not have heard.
                for (room, position) in std::mem::take(&mut self.placed) {
                    self.rooms.entry(room).or_insert_with(|| RoomOrder {
                        last: position.seq - 1,
                        epoch: Some(position.epoch),
                        ..RoomOrder::default()
                    });
                }
                // Lines may have been missed while the listener was away: fetched from each
                // room's stream after the last shown.
                let rooms: Vec<String> = self
                    .rooms
                    .iter()
                    .filter(|(_, order)| order.epoch.is_some() && !order.filling)
                    .map(|(room, _)| room.clone())
                    .collect();
                for room in rooms {
                    self.fill(&room);
                }
            }
            // Only subscriptions report coming up.
            Report::Up(Link::Commands) => self.reached(Link::Commands, &mut out),
            Report::Down(link, error) => self.failed(link, &error, &mut out),
            Report::Heard(heard) => self.heard(*heard, &mut out),
            Report::Fetched { room, result } => self.fetched(&room, result, &mut out),
            Report::Sent(batch, result) => {
                self.sending_lines = false;
                match result {
                    Ok(sent) => {
                        self.reached(Link::Commands, &mut out);
                        for (outbound, sent) in batch.iter().zip(sent) {
                            match (outbound, sent) {
                                (Outbound::Private { line, sender, node }, Sent::Heard(false)) => {
                                    warn!(
                                        "cluster: a private message from {} to {:?} was not \
                                         delivered: no node heard it",
                                        line.from, line.to
                                    );
                                    out.push(ForCore::Undelivered {
                                        sender: *sender,
                                        what: Unsent::Private {
                                            nick: line.to.clone(),
                                            node: node.clone(),
                                        },
                                        reason: "their server did not hear it (it may have just \
                                                 stopped)"
                                            .to_owned(),
                                    });
                                }
                                // This node's own line in a room it has heard nothing of:
                                // kept, so that it is fetched if the listener was away (see
                                // `Up(Link::Lines)`). Not a start for the room's order: lines before
                                // it may still be on their way.
                                (Outbound::Line { room, .. }, Sent::Placed(position)) => {
                                    let room = crate::name_key(room);
                                    // The highest number this node knows of the room, for
                                    // the floor of a numbering Redis starts again: its own
                                    // line may never be heard (the listener lost).
                                    let known = self.known_top.entry(room.clone()).or_default();
                                    *known = (*known).max(position.seq);
                                    if !self.rooms.contains_key(&room) {
                                        self.placed.entry(room).or_insert(position);
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    Err(error) => {
                        self.failed(Link::Commands, &error, &mut out);
                        may_have_been_numbered(&mut self.known_top, &batch);
                        // Shown here only: the room lines to the people here, unnumbered.
                        for outbound in batch {
                            if let Outbound::Private { line, .. } = &outbound {
                                warn!(
                                    "cluster: a private message from {} to {} was not \
                                     delivered: {error}",
                                    line.from, line.to
                                );
                            }
                            out.push(here_only(outbound, OUT_OF_REACH));
                        }
                    }
                }
                if self.outbound.len() < MAX_PUBLISHING
                    && let Some(count) = self.overflowed.take()
                {
                    info!("cluster: lines are sent again; {count} were shown on this node only");
                }
                self.send_outbound();
            }
            Report::Up(Link::News) => {
                self.reached(Link::News, &mut out);
                self.reading_everyone.get_or_insert_default();
                self.read_everyone();
            }
            // Private messages need no snapshot: they go through at once.
            Report::News(news @ News::Private(_)) => self.news(news, &mut out),
            Report::News(news) => match &mut self.reading_everyone {
                Some(waiting) => waiting.push(news),
                None => self.news(news, &mut out),
            },
            Report::Everyone(result) => self.everyone(result, &mut out),
            Report::Topic { room, result } => self.topic_read(room, result, &mut out),
            Report::Backfilled {
                room,
                name,
                after,
                lines,
                result,
            } => {
                self.backfills_running -= 1;
                // What was fetched is kept: a next try starts after it.
                let last = lines.last().map_or(after, |(seq, _)| *seq);
                let kept = self.kept.entry(room.clone()).or_default();
                *kept = (*kept).max(last);
                if let Err(error) = result {
                    error!(
                        "cluster: the history of {room} could not be filled from Redis: {error}; \
                         tried again once Redis answers"
                    );
                    self.backfilled.remove(&room);
                    self.unfilled.insert(room.clone(), name.clone());
                }
                if !lines.is_empty() {
                    out.push(ForCore::Keep { room: name, lines });
                }
                if let Some(next) = self.backfills_waiting.pop_front() {
                    self.start_backfill(next);
                }
            }
            Report::PeopleSent(unsent, result) => {
                self.sending_people = false;
                self.unsent(unsent);
                match result {
                    Ok(()) => {
                        self.reached(Link::Commands, &mut out);
                        self.send_people();
                    }
                    // Sent again at the next check of the nodes.
                    Err(error) => self.failed(Link::Commands, &error, &mut out),
                }
            }
            Report::Nodes(result) => match result {
                Ok(checked) => self.checked(checked, &mut out),
                Err(error) => self.failed(Link::Commands, &error, &mut out),
            },
            Report::ReadEveryone => {
                // The failed read's place: it counted as in flight meanwhile.
                self.reads -= 1;
                self.read_everyone();
            }
            Report::Malformed(error) => error!("cluster: {error}"),
        }
        out
    }

    /// What a check of the nodes found: nodes missing for longer than their lease are lost,
    /// this node's people are published again if Redis lost them, and what failed before is
    /// tried again.
    fn checked(&mut self, checked: Checked, out: &mut Vec<ForCore>) {
        self.reached(Link::Commands, out);
        // A node whose lease lapsed is announced by the check that finds it. One merely
        // missing from the list (Redis restarted empty, and it has not renewed since) is lost
        // only if it stays missing longer than its lease and a check: it may have died while
        // Redis was away, and nobody would announce it.
        let now = StdInstant::now();
        for (node, lease) in &checked.alive {
            self.leases.insert(node.clone(), *lease);
        }
        self.absent
            .retain(|node, _| !checked.alive.contains_key(node));
        let mut lost = Vec::new();
        for node in self
            .known
            .keys()
            .filter(|node| !checked.alive.contains_key(*node))
        {
            let since = *self.absent.entry(node.clone()).or_insert(now);
            let lease = self
                .leases
                .get(node)
                .copied()
                .unwrap_or(super::DEFAULT_LEASE);
            if now.duration_since(since) > lease + self.cluster.renew_interval().max(CHECK_INTERVAL)
            {
                lost.push(node.clone());
            }
        }
        for node in lost {
            self.absent.remove(&node);
            self.leases.remove(&node);
            self.news(
                News::Lost {
                    node,
                    stopped: false,
                },
                out,
            );
        }
        // Redis lost this node's people (its lease lapsed and another node forgot them, or
        // Redis restarted empty): all of them again.
        if !checked.own_people && !self.published.is_empty() {
            info!(
                "cluster: Redis no longer has this node's {} people; publishing them again",
                self.published.len()
            );
            self.publish_everyone_again();
        }
        self.send_people();
        // What could not be read from Redis before is read again, now that it answers.
        for room in std::mem::take(&mut self.topics_unread) {
            self.read_topic(&room);
        }
        for (_, name) in std::mem::take(&mut self.unfilled) {
            self.backfill(&name);
        }
        // People the core refused (their name was someone else's here, say) are offered again.
        let refused: Vec<((String, u64), PersonState)> = self.refused.drain().collect();
        for ((node, id), state) in refused {
            if self
                .known
                .get(&node)
                .is_some_and(|people| people.contains(&id))
            {
                out.push(ForCore::News(News::Person { node, id, state }));
            }
        }
    }

    /// The core refused `state` of person `id` of `node`: offered again at the next check.
    pub(crate) fn refused(&mut self, node: &str, id: u64, state: PersonState) {
        if self.refused.len() < MAX_REFUSED {
            self.refused.insert((node.to_owned(), id), state);
        }
    }

    /// A room line heard: shown in its order, or held while missed lines are fetched.
    fn heard(&mut self, heard: Heard, out: &mut Vec<ForCore>) {
        let room = heard.room.clone();
        if self
            .rooms
            .get(&room)
            .is_none_or(|order| order.epoch.is_none())
        {
            // New to this node: what was said in it before is history.
            self.backfill(&shown_name(room.clone(), &heard.line));
        }
        let order = self.rooms.entry(room.clone()).or_default();
        if order.filling {
            if order.held.len() >= MAX_HELD {
                order.held.pop_front();
                order.dropped += 1;
            }
            order.held.push_back(heard);
            return;
        }
        match order.epoch.as_deref() {
            Some(epoch) if epoch == heard.position.epoch => {}
            // A new numbering of a room this node follows (Redis lost the room's keys): its
            // lines from the first, fetched, with those heard waiting.
            Some(_) => {
                order.epoch = Some(heard.position.epoch.clone());
                order.restart_at(0);
                order.held.push_back(heard);
                return self.fill(&room);
            }
            // A room new to this node: its lines start here.
            None => {
                self.placed.remove(&room);
                order.epoch = Some(heard.position.epoch.clone());
                order.last = heard.position.seq - 1;
            }
        }
        let seq = heard.position.seq;
        if seq <= order.last {
            // Heard already (a fetch overlapped the channel).
            return;
        }
        if seq > order.last + 1 {
            order.held.push_back(heard);
            return self.fill(&room);
        }
        order.last = seq;
        if heard.line.kind == Kind::Topic
            && !Self::newer_topic(&mut self.topics, &room, heard.position)
        {
            return;
        }
        out.push(ForCore::Line {
            room: shown_name(room, &heard.line),
            seq,
            line: heard.line,
        });
    }

    /// Fetches `room`'s lines after the last shown, holding the lines heard meanwhile.
    fn fill(&mut self, room: &str) {
        let Some(order) = self.rooms.get_mut(room) else {
            return;
        };
        order.filling = true;
        let after = order.last;
        let (cluster, reports, room) =
            (self.cluster.clone(), self.reports.clone(), room.to_owned());
        self.executor
            .spawn(async move {
                let result = cluster.fetch(&room, after, MAX_FETCH).await;
                let _ = reports.try_send(RelayDone(Report::Fetched { room, result }));
            })
            .detach();
    }

    /// Missed lines fetched: shown in order, what the stream no longer has announced, then the
    /// lines held meanwhile.
    fn fetched(
        &mut self,
        room: &str,
        result: Result<Fetched, ClusterError>,
        out: &mut Vec<ForCore>,
    ) {
        // Lines this node will never show may have held a topic newer than the one it has:
        // read again from where Redis keeps a room's last topic.
        let known_epoch = self.rooms.get(room).and_then(|order| order.epoch.as_ref());
        let lines_lost = match &result {
            Ok(fetched) => {
                fetched.gap.is_some()
                    || (fetched.epoch.is_some() && fetched.epoch.as_ref() != known_epoch)
            }
            Err(_) => true,
        };
        if lines_lost {
            self.read_topic(room);
        }
        let Some(order) = self.rooms.get_mut(room) else {
            return;
        };
        let mut missed = std::mem::take(&mut order.dropped);
        let held_from = order.held.front().map(|heard| heard.position.seq);
        let mut more = false;
        match result {
            Ok(fetched) if fetched.epoch.is_some() && fetched.epoch != order.epoch => {
                // The numbering started again meanwhile: fetched again from its first line.
                order.epoch = fetched.epoch;
                order.restart_at(0);
                more = true;
            }
            Ok(fetched) => {
                match fetched.gap {
                    Some(Gap::Trimmed(range)) => {
                        missed += range.end().saturating_sub(*range.start()) + 1;
                        order.last = order.last.max(*range.end());
                    }
                    Some(Gap::Behind) => {
                        // Redis lost lines it had numbered: start again from what it has.
                        order.restart_at(fetched.top);
                    }
                    None => {}
                }
                for entry in fetched.entries {
                    if entry.seq <= order.last {
                        continue;
                    }
                    missed += entry.seq - order.last - 1;
                    order.last = entry.seq;
                    match entry.line {
                        Ok(line) => {
                            if line.kind == Kind::Topic {
                                let position = Position {
                                    seq: entry.seq,
                                    epoch: order.epoch.clone().unwrap_or_default(),
                                };
                                if !Self::newer_topic(&mut self.topics, room, position) {
                                    continue;
                                }
                            }
                            out.push(ForCore::Line {
                                room: shown_name(room.to_owned(), &line),
                                seq: entry.seq,
                                line,
                            });
                        }
                        Err(error) => {
                            error!("cluster: {error}");
                            missed += 1;
                        }
                    }
                }
                // More to fetch before the lines held: fetched on from the last.
                more = held_from.is_some_and(|first| order.last + 1 < first)
                    && fetched.top > order.last;
            }
            Err(error) => {
                error!("cluster: fetching the lines {room} missed: {error}");
                if let Some(first) = held_from {
                    missed += first.saturating_sub(order.last + 1);
                    order.last = first - 1;
                }
            }
        }
        if more {
            if missed > 0 {
                out.push(missed_notice(room, missed));
            }
            return self.fill(room);
        }
        if let Some(first) = held_from
            && first > order.last + 1
        {
            missed += first - order.last - 1;
            order.last = first - 1;
        }
        // Lines held from a numbering Redis has since dropped cannot be placed: missed.
        let epoch = order.epoch.clone();
        let before = order.held.len();
        order
            .held
            .retain(|heard| Some(&heard.position.epoch) == epoch.as_ref());
        missed += (before - order.held.len()) as u64;
        if missed > 0 {
            out.push(missed_notice(room, missed));
        }
        order.filling = false;
        let held: Vec<Heard> = order.held.drain(..).collect();
        for heard in held {
            self.heard(heard, out);
        }
    }

    /// A change of another node's people, a private message for someone here, or an order.
    fn news(&mut self, news: News, out: &mut Vec<ForCore>) {
        match &news {
            News::Person { node, id, .. } => {
                self.known.entry(node.clone()).or_default().insert(*id);
            }
            News::Gone { node, id, .. } => {
                if let Some(people) = self.known.get_mut(node) {
                    people.remove(id);
                }
            }
            News::Lost { node, .. } => {
                if self.known.remove(node).is_none() {
                    return;
                }
            }
            News::Private(_) | News::Order(_) | News::RoomChange { .. } => {}
        }
        out.push(ForCore::News(news));
    }

    /// Reads everyone from Redis (the news heard meanwhile waits for the answer).
    fn read_everyone(&mut self) {
        self.reads += 1;
        let (cluster, reports) = (self.cluster.clone(), self.reports.clone());
        self.executor
            .spawn(async move {
                // Nodes whose lease lapsed are forgotten first: their people are not shown
                // arriving only to be shown leaving.
                let _ = cluster.check_nodes().await;
                let result = cluster.everyone().await;
                let _ = reports.try_send(RelayDone(Report::Everyone(result)));
            })
            .detach();
    }

    /// Everyone, as Redis has them, after (re)subscribing: the core is made to agree, then the
    /// news heard meanwhile is applied. A read that failed is tried again after a second,
    /// the news still waiting.
    fn everyone(&mut self, result: Result<Everyone, ClusterError>, out: &mut Vec<ForCore>) {
        self.reads -= 1;
        let (everyone, bad) = match result {
            Ok(read) => read,
            Err(error) => {
                error!("cluster: reading who is on the other nodes: {error}; trying again");
                self.failed(Link::Commands, &error, out);
                let reports = self.reports.clone();
                self.executor
                    .spawn(async move {
                        Timer::after(MAX_BACKOFF).await;
                        let _ = reports.try_send(RelayDone(Report::ReadEveryone));
                    })
                    .detach();
                // Counted as in flight until the read again is made.
                self.reads += 1;
                return;
            }
        };
        for error in bad {
            error!("cluster: {error}");
        }
        // Those the core knows that Redis no longer has left meanwhile. A node Redis has
        // nothing of (it restarted empty) is left alone: it publishes its people again within
        // a check, or is found lost.
        for (node, people) in &mut self.known {
            let Some(now) = everyone.get(node) else {
                continue;
            };
            for id in people.iter().filter(|id| !now.contains_key(id)) {
                out.push(ForCore::News(News::Gone {
                    node: node.clone(),
                    id: *id,
                    reason: "left while this server could not hear".to_owned(),
                }));
            }
            people.retain(|id| now.contains_key(id));
        }
        self.known.retain(|_, people| !people.is_empty());
        for (node, people) in everyone {
            for (id, state) in people {
                self.news(
                    News::Person {
                        node: node.clone(),
                        id,
                        state,
                    },
                    out,
                );
            }
        }
        // The news heard meanwhile, once no other read is on its way.
        if self.reads == 0 {
            for news in self.reading_everyone.take().unwrap_or_default() {
                self.news(news, out);
            }
        }
    }

    /// A link to Redis works: once all do again, the people here are told (if they were told
    /// otherwise).
    fn reached(&mut self, link: Link, out: &mut Vec<ForCore>) {
        self.down.remove(&link);
        if !self.down.is_empty() {
            return;
        }
        if let Some(since) = self.out_of_reach.take() {
            info!(
                "cluster: Redis answers again after {:.1} s",
                since.elapsed().as_secs_f64()
            );
            if self.told_at.is_some() {
                out.push(ForCore::Notice(
                    "The other servers can be reached again.".to_owned(),
                ));
            }
        }
    }

    /// A link to Redis failed: logged, and the people here told once (not again within
    /// [`TELL_AGAIN_AFTER`]) that the other servers are out of reach. An error that is no
    /// failure to reach Redis (a line it would not take) is only logged.
    fn failed(&mut self, link: Link, error: &ClusterError, out: &mut Vec<ForCore>) {
        if !error.is_unreachable() {
            return error!("cluster: {error}");
        }
        self.down.insert(link);
        if self.out_of_reach.is_some() {
            return;
        }
        error!("cluster: Redis out of reach: {error}; lines are shown on this node only");
        self.out_of_reach = Some(StdInstant::now());
        if self
            .told_at
            .is_some_and(|told| told.elapsed() < TELL_AGAIN_AFTER)
        {
            return;
        }
        self.told_at = Some(StdInstant::now());
        out.push(ForCore::Notice(
            "The other servers cannot be reached just now: you are talking with the people \
             on this server only."
                .to_owned(),
        ));
    }
}

/// Counts the room lines of `batch`, whose sending failed, in `known_top` as numbered after
/// the floor each was sent with: the failure may have come after Redis numbered them (and
/// published them to the other nodes, whose stores keep them under those numbers), with the
/// answer lost, and this node's listener may never hear them either (Redis stopped). A
/// numbering Redis starts again must go on after them, or its first lines would take their
/// numbers, and replace them in the other nodes' stores. A line that never got out costs
/// only a number never given.
fn may_have_been_numbered(known_top: &mut HashMap<String, u64>, batch: &[Outbound]) {
    // How many lines of each room the batch has had so far: the lines before one in the
    // batch may have taken the numbers right after its floor.
    let mut counted: HashMap<String, u64> = HashMap::new();
    for outbound in batch {
        if let Outbound::Line { room, floor, .. } = outbound {
            let room = crate::name_key(room);
            let count = counted.entry(room.clone()).or_default();
            *count += 1;
            let known = known_top.entry(room).or_default();
            *known = (*known).max(floor.saturating_add(*count));
        }
    }
}

/// What becomes of a line said here that cannot be sent: a room line is shown here only,
/// unnumbered; a private message is lost, and its sender told `why`.
fn here_only(outbound: Outbound, why: &str) -> ForCore {
    match outbound {
        // A topic set here only would leave the nodes disagreeing on it for good: refused.
        Outbound::Line { room, line, .. } if line.kind == Kind::Topic => match line.person {
            Some(sender) => ForCore::Undelivered {
                sender,
                what: Unsent::Topic { room },
                reason: why.to_owned(),
            },
            // Every line said here has its speaker; one without is told to no one.
            None => ForCore::Undelivered {
                sender: u64::MAX,
                what: Unsent::Topic { room },
                reason: why.to_owned(),
            },
        },
        Outbound::Line { room, line, .. } => ForCore::Line { room, seq: 0, line },
        Outbound::Private { line, sender, node } => ForCore::Undelivered {
            sender,
            what: Unsent::Private {
                nick: line.to,
                node,
            },
            reason: why.to_owned(),
        },
    }
}

/// The name the core is to know room `key` by for `line`: the name its speaker's node spelt,
/// if it is one of the room's spellings, else the key (which is a name of the room too).
fn shown_name(key: String, line: &RemoteLine) -> String {
    match &line.room {
        Some(name) if crate::name_key(name) == key => name.clone(),
        _ => key,
    }
}

fn missed_notice(room: &str, missed: u64) -> ForCore {
    ForCore::RoomNotice {
        room: room.to_owned(),
        text: format!(
            "[{missed} message{} missed]",
            if missed == 1 { "" } else { "s" }
        ),
    }
}

/// Keeps one of the relay's subscriptions (`link`: the room lines, or the other nodes' news)
/// open: `open` subscribes, each item is reported as `item` makes it (a message not understood
/// as `Malformed`), and a lost or failed subscription is reported and opened again with a
/// backoff from [`FIRST_BACKOFF`] doubling to [`MAX_BACKOFF`]. Ends once the relay is gone.
async fn keep_subscribed<S, T, Open, Opening>(
    reports: Sender<RelayDone>,
    link: Link,
    open: Open,
    item: fn(T) -> Report,
) where
    Open: Fn() -> Opening,
    Opening: Future<Output = Result<S, ClusterError>>,
    S: Stream<Item = Result<T, ClusterError>> + Unpin,
{
    let what = match link {
        Link::Lines => "the room lines",
        Link::News => "the news of the other nodes",
        Link::Commands => "the commands",
    };
    let report = |report| reports.try_send(RelayDone(report)).is_ok();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let down = match open().await {
            Ok(mut subscription) => {
                backoff = FIRST_BACKOFF;
                if !report(Report::Up(link)) {
                    return;
                }
                while let Some(next) = subscription.next().await {
                    let next = match next {
                        Ok(next) => item(next),
                        Err(error) => Report::Malformed(error),
                    };
                    if !report(next) {
                        return;
                    }
                }
                ClusterError::Lost { what }
            }
            Err(error) => error,
        };
        if !report(Report::Down(link, down)) {
            return;
        }
        Timer::after(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Every [`CHECK_INTERVAL`] (or third of a lease, if shorter), finds the nodes whose lease
/// lapsed (and tells every node).
async fn check_nodes(cluster: Cluster, reports: Sender<RelayDone>) {
    loop {
        Timer::after(cluster.renew_interval().min(CHECK_INTERVAL)).await;
        let result = cluster.check_nodes().await;
        if reports.try_send(RelayDone(Report::Nodes(result))).is_err() {
            return;
        }
    }
}
