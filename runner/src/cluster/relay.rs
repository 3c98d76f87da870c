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

use chat_core::relay::{Outgoing, Target};
use futures_lite::StreamExt;
use smol::channel::{Receiver, Sender};
use smol::{LocalExecutor, Task, Timer};

use super::{
    Cluster, ClusterError, Everyone, Fetched, Gap, Heard, MAX_FETCH, News, Outbound, PersonState,
    PrivateLine, RemoteLine, Sent,
};
use crate::log::log;

/// How long a listener waits before it connects again after losing its connection, at first;
/// it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two attempts to connect a listener again: short, since lines
/// said meanwhile wait to be fetched until it is back.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The most lines said here waiting to be sent: past it, a room line is shown here only (as
/// when Redis is out of reach) and a private message is not delivered, and the log says so
/// once.
pub(crate) const MAX_PUBLISHING: usize = 4096;

/// The most lines sent in one batch (one round trip to Redis).
pub(crate) const MAX_BATCH: usize = 256;

/// The most lines of one room kept waiting while missed lines are fetched: past it, the
/// oldest waiting are dropped and counted in the `[N messages missed]` notice.
pub(crate) const MAX_HELD: usize = 1024;

/// What the relay's tasks report, for [`Relay::handle`].
#[derive(Debug)]
pub(crate) struct RelayDone(Report);

#[derive(Debug)]
enum Report {
    /// The room-lines listener is subscribed (again).
    LinesUp,
    /// It lost its connection, or could not connect; it tries again.
    LinesDown(ClusterError),
    Heard(Box<Heard>),
    Fetched {
        room: String,
        result: Result<Fetched, ClusterError>,
    },
    /// A batch of lines said here was sent, or not.
    Sent(Vec<Outbound>, Result<Vec<Sent>, ClusterError>),
    NewsUp,
    NewsDown(ClusterError),
    News(News),
    Everyone(Result<Everyone, ClusterError>),
    /// A batch of this node's people was published.
    PeopleSent(Result<(), ClusterError>),
    /// The nodes alive, by the leases.
    Nodes(Result<Vec<String>, ClusterError>),
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
    /// A notice for the members of a room here.
    RoomNotice {
        room: String,
        text: String,
    },
    /// A notice for everyone here.
    Notice(String),
    Person {
        node: String,
        id: u64,
        state: PersonState,
    },
    Gone {
        node: String,
        id: u64,
        reason: String,
    },
    /// The node's people are gone: it shut down (`stopped`), or its lease lapsed.
    Lost {
        node: String,
        stopped: bool,
    },
    Private(PrivateLine),
}

/// One room's place in its order.
#[derive(Debug, Default)]
struct RoomOrder {
    /// The last number shown here; 0 before the first.
    last: u64,
    epoch: Option<String>,
    /// Missed lines are being fetched: lines heard meanwhile wait here.
    filling: bool,
    held: VecDeque<Heard>,
    /// Lines dropped from `held` while it was full, to be announced.
    dropped: u64,
}

/// A change of one of this node's people, to publish.
#[derive(Debug, Clone)]
struct Change {
    id: u64,
    state: Option<PersonState>,
    reason: String,
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
    /// The other nodes' people the core was told of, by node.
    known: HashMap<String, HashSet<u64>>,
    /// Nodes with people here missing from the list of nodes, since when.
    absent: HashMap<String, StdInstant>,
    /// While everyone is being read: the news heard meanwhile, applied after.
    reading_everyone: Option<Vec<News>>,
    /// This node's people as last published (or queued), by id.
    published: HashMap<u64, PersonState>,
    /// Changes waiting for the batch in flight.
    changes: VecDeque<Change>,
    sending_people: bool,
    /// Lines said here waiting to be sent, oldest first, at most [`MAX_PUBLISHING`].
    outbound: VecDeque<Outbound>,
    /// A batch of them is on its way.
    sending_lines: bool,
    /// Since when Redis is out of reach, as the relay saw it; the people here were told.
    out_of_reach: Option<StdInstant>,
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
    pub(crate) fn new(cluster: Cluster, executor: Rc<LocalExecutor<'static>>) -> Self {
        let (reports, results) = smol::channel::unbounded();
        let tasks = vec![
            executor.spawn(listen_lines(cluster.clone(), reports.clone())),
            executor.spawn(listen_news(cluster.clone(), reports.clone())),
            executor.spawn(check_nodes(cluster.clone(), reports.clone())),
        ];
        Self {
            cluster,
            executor,
            reports,
            results,
            _tasks: tasks,
            rooms: HashMap::new(),
            known: HashMap::new(),
            absent: HashMap::new(),
            reading_everyone: None,
            published: HashMap::new(),
            changes: VecDeque::new(),
            sending_people: false,
            outbound: VecDeque::new(),
            sending_lines: false,
            out_of_reach: None,
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
    /// [`Cluster::send_batch`]). Returns a room line to show here only, at once, when too many
    /// wait to be sent.
    pub(crate) fn outgoing(&mut self, line: &Outgoing<'_>, person: u64) -> Option<ForCore> {
        let remote = RemoteLine {
            node: self.cluster.node_id().to_owned(),
            nick: line.nick.to_owned(),
            kind: line.kind,
            text: line.text.to_owned(),
            at: line.at,
            person: Some(person),
        };
        let outbound = match line.to {
            Target::Room(room) => Outbound::Line {
                room: room.to_owned(),
                line: remote,
            },
            Target::Person { nick, node } => Outbound::Private {
                node: node.to_owned(),
                line: PrivateLine {
                    node: remote.node,
                    from: remote.nick,
                    to: nick.to_owned(),
                    kind: remote.kind,
                    text: remote.text,
                    at: remote.at,
                },
            },
        };
        if self.outbound.len() >= MAX_PUBLISHING {
            let count = self.overflowed.get_or_insert(0);
            if *count == 0 {
                log!(
                    "cluster: {MAX_PUBLISHING} lines wait for Redis; lines are shown on this node \
                     only until fewer do"
                );
            }
            *count += 1;
            return here_only(outbound);
        }
        self.outbound.push_back(outbound);
        self.send_outbound();
        None
    }

    /// Sends the lines waiting, as one batch, unless a batch is on its way.
    fn send_outbound(&mut self) {
        if self.sending_lines || self.outbound.is_empty() {
            return;
        }
        self.sending_lines = true;
        let count = self.outbound.len().min(MAX_BATCH);
        let batch: Vec<Outbound> = self.outbound.drain(..count).collect();
        let (cluster, reports) = (self.cluster.clone(), self.reports.clone());
        self.executor
            .spawn(async move {
                let result = cluster.send_batch(&batch).await;
                let _ = reports.try_send(RelayDone(Report::Sent(batch, result)));
            })
            .detach();
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
                self.change(Change {
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
            self.change(Change {
                id,
                state: None,
                reason: reason.to_owned(),
            });
        }
    }

    fn change(&mut self, change: Change) {
        // A person's earlier change still waiting is superseded: each carries the whole.
        self.changes.retain(|waiting| waiting.id != change.id);
        self.changes.push_back(change);
        self.send_people();
    }

    /// Publishes the changes waiting, in order, as one batch, unless one is in flight.
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
                for change in &batch {
                    if let Err(error) = cluster
                        .set_person(change.id, change.state.as_ref(), &change.reason)
                        .await
                    {
                        result = Err(error);
                        break;
                    }
                }
                let _ = reports.try_send(RelayDone(Report::PeopleSent(result)));
            })
            .detach();
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
            self.change(Change {
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
            Some(Ok(())) => log!("cluster: told the other nodes that its {count} people left"),
            Some(Err(error)) => log!(
                "cluster: could not tell the other nodes that its people left ({error}); they \
                 learn it when its lease lapses"
            ),
            None => log!(
                "cluster: Redis did not answer within {:.1} s; the other nodes learn that its \
                 people left when its lease lapses",
                limit.as_secs_f64()
            ),
        }
    }

    /// Takes in a task's report: what the core is to be told of it, in order.
    pub(crate) fn handle(&mut self, done: RelayDone) -> Vec<ForCore> {
        let mut out = Vec::new();
        match done.0 {
            Report::LinesUp => {
                self.reached(&mut out);
                // Lines may have been missed while the listener was away: fetched from each
                // room's stream after the last shown.
                let rooms: Vec<String> = self
                    .rooms
                    .iter()
                    .filter(|(_, order)| order.last > 0 && !order.filling)
                    .map(|(room, _)| room.clone())
                    .collect();
                for room in rooms {
                    self.fill(&room);
                }
            }
            Report::LinesDown(error) | Report::NewsDown(error) => self.failed(&error, &mut out),
            Report::Heard(heard) => self.heard(*heard, &mut out),
            Report::Fetched { room, result } => self.fetched(&room, result, &mut out),
            Report::Sent(batch, result) => {
                self.sending_lines = false;
                match result {
                    Ok(sent) => {
                        self.reached(&mut out);
                        for (outbound, sent) in batch.iter().zip(sent) {
                            if let (Outbound::Private { line, .. }, Sent::Heard(false)) =
                                (outbound, sent)
                            {
                                log!(
                                    "cluster: a private message from {} to {} was not \
                                     delivered: no node heard it",
                                    line.from,
                                    line.to
                                );
                            }
                        }
                    }
                    Err(error) => {
                        self.failed(&error, &mut out);
                        // Shown here only: the room lines to the people here, unnumbered.
                        for outbound in batch {
                            if let Outbound::Private { line, .. } = &outbound {
                                log!(
                                    "cluster: a private message from {} to {} was not \
                                     delivered: {error}",
                                    line.from,
                                    line.to
                                );
                            }
                            out.extend(here_only(outbound));
                        }
                    }
                }
                if self.outbound.len() < MAX_PUBLISHING
                    && let Some(count) = self.overflowed.take()
                {
                    log!("cluster: lines are sent again; {count} were shown on this node only");
                }
                self.send_outbound();
            }
            Report::NewsUp => {
                self.reached(&mut out);
                self.reading_everyone = Some(Vec::new());
                let (cluster, reports) = (self.cluster.clone(), self.reports.clone());
                self.executor
                    .spawn(async move {
                        // Nodes whose lease lapsed are forgotten first: their people are not
                        // shown arriving only to be shown leaving.
                        let _ = cluster.check_nodes().await;
                        let result = cluster.everyone().await;
                        let _ = reports.try_send(RelayDone(Report::Everyone(result)));
                    })
                    .detach();
            }
            Report::News(news) => match &mut self.reading_everyone {
                Some(waiting) => waiting.push(news),
                None => self.news(news, &mut out),
            },
            Report::Everyone(result) => self.everyone(result, &mut out),
            Report::PeopleSent(result) => {
                self.sending_people = false;
                match result {
                    Ok(()) => self.reached(&mut out),
                    Err(error) => {
                        self.failed(&error, &mut out);
                        // Sent again in full once Redis answers (see `Nodes`).
                    }
                }
                self.send_people();
            }
            Report::Nodes(result) => match result {
                Ok(alive) => {
                    let came_back = self.out_of_reach.is_some();
                    self.reached(&mut out);
                    // A node whose lease lapsed is announced by the check that finds it. One
                    // merely missing from the list (Redis restarted empty, and it has not
                    // renewed since) is lost only if it stays missing longer than a lease: it
                    // may have died while Redis was away, and nobody would announce it.
                    let now = StdInstant::now();
                    self.absent.retain(|node, _| !alive.contains(node));
                    let mut lost = Vec::new();
                    for node in self.known.keys().filter(|node| !alive.contains(node)) {
                        let since = *self.absent.entry(node.clone()).or_insert(now);
                        if now.duration_since(since) > self.cluster.lease() {
                            lost.push(node.clone());
                        }
                    }
                    for node in lost {
                        self.known.remove(&node);
                        self.absent.remove(&node);
                        out.push(ForCore::Lost {
                            node,
                            stopped: false,
                        });
                    }
                    // Redis forgot this node's people (its lease lapsed, or Redis restarted
                    // empty), or may have missed changes: all of them again.
                    let here = alive.iter().any(|node| node == self.cluster.node_id());
                    if (!here || came_back) && !self.published.is_empty() {
                        self.publish_everyone_again();
                    }
                }
                Err(error) => self.failed(&error, &mut out),
            },
            Report::Malformed(error) => log!("cluster: {error}"),
        }
        out
    }

    /// A room line heard: shown in its order, or held while missed lines are fetched.
    fn heard(&mut self, heard: Heard, out: &mut Vec<ForCore>) {
        let room = heard.room.clone();
        let order = self.rooms.entry(room.clone()).or_default();
        if order.filling {
            if order.held.len() >= MAX_HELD {
                order.held.pop_front();
                order.dropped += 1;
            }
            order.held.push_back(heard);
            return;
        }
        if order.epoch.as_deref() != Some(heard.position.epoch.as_str()) {
            // A new numbering (the room's keys were lost, or this node is new to the room):
            // it starts here.
            order.epoch = Some(heard.position.epoch.clone());
            order.last = heard.position.seq - 1;
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
        out.push(ForCore::Line {
            room,
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
        let Some(order) = self.rooms.get_mut(room) else {
            return;
        };
        let mut missed = std::mem::take(&mut order.dropped);
        let held_from = order.held.front().map(|heard| heard.position.seq);
        let mut more = false;
        match result {
            Ok(fetched) => {
                if fetched.epoch.is_some() && fetched.epoch != order.epoch {
                    // The numbering started again meanwhile: the held lines are of the new one.
                    order.epoch = fetched.epoch.clone();
                    order.last = 0;
                }
                match fetched.gap {
                    Some(Gap::Trimmed(range)) => {
                        missed += range.end().saturating_sub(*range.start()) + 1;
                        order.last = order.last.max(*range.end());
                    }
                    Some(Gap::Behind) => {
                        // Redis lost lines it had numbered: start again from what it has.
                        order.last = fetched.top;
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
                        Ok(line) => out.push(ForCore::Line {
                            room: room.to_owned(),
                            seq: entry.seq,
                            line,
                        }),
                        Err(error) => {
                            log!("cluster: {error}");
                            missed += 1;
                        }
                    }
                }
                // More to fetch before the lines held: fetched on from the last.
                more = held_from.is_some_and(|first| order.last + 1 < first)
                    && fetched.top > order.last;
            }
            Err(error) => {
                log!("cluster: fetching the lines {room} missed: {error}");
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
        if missed > 0 {
            out.push(missed_notice(room, missed));
        }
        order.filling = false;
        let held: Vec<Heard> = order.held.drain(..).collect();
        for heard in held {
            self.heard(heard, out);
        }
    }

    /// A change of another node's people, or a private message for someone here.
    fn news(&mut self, news: News, out: &mut Vec<ForCore>) {
        match news {
            News::Person { node, id, state } => {
                self.known.entry(node.clone()).or_default().insert(id);
                out.push(ForCore::Person { node, id, state });
            }
            News::Gone { node, id, reason } => {
                if let Some(people) = self.known.get_mut(&node) {
                    people.remove(&id);
                }
                out.push(ForCore::Gone { node, id, reason });
            }
            News::Lost { node, stopped } => {
                if self.known.remove(&node).is_some() {
                    out.push(ForCore::Lost { node, stopped });
                }
            }
            News::Private(line) => out.push(ForCore::Private(line)),
        }
    }

    /// Everyone, as Redis has them, after (re)subscribing: the core is made to agree, then the
    /// news heard meanwhile is applied.
    fn everyone(&mut self, result: Result<Everyone, ClusterError>, out: &mut Vec<ForCore>) {
        let waiting = self.reading_everyone.take().unwrap_or_default();
        match result {
            Ok((everyone, bad)) => {
                for error in bad {
                    log!("cluster: {error}");
                }
                // Those the core knows that Redis no longer has left meanwhile. A node Redis
                // has nothing of (it restarted empty) is left alone: it publishes its people
                // again within a renewal, or is found lost.
                for (node, people) in &mut self.known {
                    let Some(now) = everyone.get(node) else {
                        continue;
                    };
                    for id in people.iter().filter(|id| !now.contains_key(id)) {
                        out.push(ForCore::Gone {
                            node: node.clone(),
                            id: *id,
                            reason: "left while this server could not hear".to_owned(),
                        });
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
            }
            Err(error) => {
                log!("cluster: reading who is on the other nodes: {error}");
                self.failed(&error, out);
            }
        }
        for news in waiting {
            self.news(news, out);
        }
    }

    /// Redis answered: if it had not, the people here are told it does again.
    fn reached(&mut self, out: &mut Vec<ForCore>) {
        if let Some(since) = self.out_of_reach.take() {
            log!(
                "cluster: Redis answers again after {:.1} s",
                since.elapsed().as_secs_f64()
            );
            out.push(ForCore::Notice(
                "The other servers can be reached again.".to_owned(),
            ));
        }
    }

    /// A call failed: the people here are told once that the other servers are out of reach.
    fn failed(&mut self, error: &ClusterError, out: &mut Vec<ForCore>) {
        if self.out_of_reach.is_none() {
            log!("cluster: Redis out of reach: {error}; lines are shown on this node only");
            self.out_of_reach = Some(StdInstant::now());
            out.push(ForCore::Notice(
                "The other servers cannot be reached just now: you are talking with the people \
                 on this server only."
                    .to_owned(),
            ));
        }
    }
}

/// What becomes of a line said here that cannot be sent: a room line is shown here only,
/// unnumbered; a private message is lost (logged by the caller).
fn here_only(outbound: Outbound) -> Option<ForCore> {
    match outbound {
        Outbound::Line { room, line } => Some(ForCore::Line { room, seq: 0, line }),
        Outbound::Private { .. } => None,
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

/// Keeps a subscriber to every room's lines, connecting again with backoff when it is lost.
async fn listen_lines(cluster: Cluster, reports: Sender<RelayDone>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let subscribed = async {
            let mut subscriber = cluster.subscriber().await?;
            subscriber.subscribe_all().await?;
            Ok::<_, ClusterError>(subscriber)
        }
        .await;
        match subscribed {
            Ok(mut subscriber) => {
                backoff = FIRST_BACKOFF;
                if reports.try_send(RelayDone(Report::LinesUp)).is_err() {
                    return;
                }
                while let Some(heard) = subscriber.next().await {
                    let report = match heard {
                        Ok(heard) => Report::Heard(Box::new(heard)),
                        Err(error) => Report::Malformed(error),
                    };
                    if reports.try_send(RelayDone(report)).is_err() {
                        return;
                    }
                }
                let lost = ClusterError::Line("the room lines' subscription was lost".to_owned());
                if reports
                    .try_send(RelayDone(Report::LinesDown(lost)))
                    .is_err()
                {
                    return;
                }
            }
            Err(error) => {
                if reports
                    .try_send(RelayDone(Report::LinesDown(error)))
                    .is_err()
                {
                    return;
                }
            }
        }
        Timer::after(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Keeps a subscriber to the other nodes' news, connecting again with backoff when it is lost.
async fn listen_news(cluster: Cluster, reports: Sender<RelayDone>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match cluster.news().await {
            Ok(mut news) => {
                backoff = FIRST_BACKOFF;
                if reports.try_send(RelayDone(Report::NewsUp)).is_err() {
                    return;
                }
                while let Some(item) = news.next().await {
                    let report = match item {
                        Ok(item) => Report::News(item),
                        Err(error) => Report::Malformed(error),
                    };
                    if reports.try_send(RelayDone(report)).is_err() {
                        return;
                    }
                }
                let lost = ClusterError::Line("the news subscription was lost".to_owned());
                if reports.try_send(RelayDone(Report::NewsDown(lost))).is_err() {
                    return;
                }
            }
            Err(error) => {
                if reports
                    .try_send(RelayDone(Report::NewsDown(error)))
                    .is_err()
                {
                    return;
                }
            }
        }
        Timer::after(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Every third of a lease, finds the nodes whose lease lapsed (and tells every node).
async fn check_nodes(cluster: Cluster, reports: Sender<RelayDone>) {
    loop {
        Timer::after(cluster.renew_interval()).await;
        let result = cluster.check_nodes().await;
        if reports.try_send(RelayDone(Report::Nodes(result))).is_err() {
            return;
        }
    }
}
