//! The hub: the one task that owns the core. Everything that happens to a connection reaches
//! it as an [`Event`] on one channel; everything the core asks for is carried out here.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant as StdInstant};

use chat_core::account::{AccountAnswer, AccountAsk, AccountRequest};
use chat_core::relay::{RoomChange, ServerBanChange};
use chat_core::{
    Admission, Backlog, CloseReason, ConnectionId, Delivery, Dialect, DisconnectReason, Error,
    Event as CoreEvent, HistoryAnswer, HistoryLine, Instant, Nickname, Output, PersonId,
};
use futures_lite::future;
use smol::channel::{Receiver, Sender};
use smol::{LocalExecutor, Task, Timer};

use crate::accounts::Accounts;
use crate::cluster::{Done, ForCore, ModerationSharer, Node, Relay, RelayDone, Relayed};
use crate::connection::{FLUSH_TIMEOUT, Gate, Link, Shared, Ticks, read_loop, refuse, write_loop};
use crate::event::{Event, Stream};
use crate::log::{debug, error, info, warn};
use crate::pacer::{Batch, Flush, Pacer};
use crate::record::RecordedCore;
use crate::slow::{Admit, Kind, Lag, SlowReaders, Verdict};
use crate::socket::Socket;
use crate::stats::{Dialects, Gone, Refused, Snapshot, Stats};
use crate::store::{
    Fetch, Moderation, Reply, Store, StoredBan, StoredLine, StoredPrivate, StoredTopic,
};

mod cluster;

/// The longest the hub waits for the store to finish a commit before it lets the lines waiting
/// for it go out anyway (and tells everyone history is not being kept): a disk that stalls
/// must not stall the chat. See docs/STORAGE.md.
pub(crate) const STORE_STALL: Duration = Duration::from_secs(5);

/// How long after a flush the hub gives back the send queues that grew for a burst and are
/// empty again (`Hub::release_idle_queues`). A busy writer keeps its queue between flushes, so
/// as not to grow it again for each; without the sweep, a burst (a thousand people told of
/// each other's joins) would leave every connection holding the queue it grew for it (up to
/// 16 KB at the queue limit), however long it then stays quiet. A busy queue swept grows again
/// once per sweep: a handful of allocations a writer, every two seconds.
const RELEASE_AFTER: Duration = Duration::from_secs(2);

/// A history answer, or why there is none, waiting to be handed to the core.
type Answer = (Box<Fetch>, Result<Vec<StoredLine>, String>);

/// The reply to a connection over the per-address limit, before it is closed.
const TOO_MANY_FROM_ADDRESS: &[u8] =
    b"*** Sorry, too many connections from your address. Please try again later.\r\n";

/// What ended the hub's wait.
enum Woken {
    Event(Event),
    Store(Reply),
    /// A call to the cluster's Redis finished.
    Cluster(Done),
    /// The cluster's relay heard something, or finished a call.
    Relay(RelayDone),
    Timer,
    /// A reader began waiting for a flush while none was due.
    ReaderWaiting,
}

/// The hub's record of one live connection.
#[derive(Debug)]
struct Connection {
    id: ConnectionId,
    peer: SocketAddr,
    /// Shared with the reader and the writer: messages waiting for the writer (their number is
    /// checked against the limits), and the reader's credit.
    link: Rc<RefCell<Link>>,
    reader: Task<()>,
    writer: Task<()>,
    name: Option<String>,
    /// Input flood control held back, as the chunk and where in it to go on: fed again on
    /// `Output::Resume`. At most one chunk, since the reader gets no credit while it is held.
    held: Option<(Vec<u8>, usize)>,
    /// Whether room messages are being skipped for it, and how many.
    lag: Lag,
    /// While history asked for it is on its way: what it was sent meanwhile, kept back so that
    /// the history goes out first (see `Hub::answer`).
    parked: Option<VecDeque<Parked>>,
}

/// One thing kept back for a connection waiting for history.
#[derive(Debug)]
enum Parked {
    Bytes(Shared),
    /// Where the answer to its next history request goes.
    Answer,
}

/// The hub's state: the core, the connections it knows, and how to reach the executor.
pub(crate) struct Hub {
    core: RecordedCore,
    connections: Vec<Option<Connection>>,
    executor: Rc<LocalExecutor<'static>>,
    events: Sender<Event>,
    slow: SlowReaders,
    /// Connections whose queue reached the queue limit in the last drain; see `drop_stalled`.
    over_limit: Vec<ConnectionId>,
    /// Connections whose queue reached the lag limit in the last drain. Writers get a turn
    /// before the next step; those still at the limit after it are not reading, and begin
    /// lagging. (Deciding at once would skip for a client whose writer simply had not run.)
    crowded: Vec<ConnectionId>,
    /// Connections that began lagging in the last drain, for the core to know.
    began_lagging: Vec<ConnectionId>,
    /// Private messages not queued in the last drain, as (sender, recipient), for the core to
    /// tell their senders.
    undelivered: Vec<(ConnectionId, ConnectionId)>,
    /// Closed connections still taking their last lines, awaited at shutdown.
    flushing: Vec<Task<()>>,
    /// Connections flood control lets go on, to be fed what they had held back.
    resumed: Vec<ConnectionId>,
    /// Writers that were waiting for messages and have some now, to be woken at the next flush.
    idle_writers: Vec<Waker>,
    /// Readers waiting for the next flush, and whether the hub is gathering.
    ticks: Rc<RefCell<Ticks>>,
    /// When the writers are woken (flushes); see `Hub::end_turn`.
    pacer: Pacer,
    /// Live connections per peer address, for `max_per_address`.
    per_address: HashMap<IpAddr, u32>,
    /// The most connections from one address; 0 for no limit.
    max_per_address: u32,
    /// Whether the store keeps private messages (`--private-history-days` above 0).
    keep_private: bool,
    /// The core's clock reads wall-clock time, so the times it puts on lines (and a store
    /// keeps) are real ones.
    clock: Clock,
    /// Where lines, topics and history live.
    store: Store,
    /// The durability rule: which commit the writers may send up to (see [`Gate`]).
    gate: Rc<RefCell<Gate>>,
    /// The number of the last commit asked of the store.
    commits_asked: u64,
    /// Commits asked and not yet done, with when they were asked.
    commits_pending: VecDeque<(u64, StdInstant)>,
    /// The commit a message queued now waits for: the next one, once a line has been handed to
    /// the store since the last.
    wait_for: u64,
    /// Lines or topics handed to the store since the last commit was asked.
    uncommitted: bool,
    /// The store stopped answering (or its queue filled): lines go out without waiting for a
    /// commit until it catches up.
    store_stalled: bool,
    /// The store reported a failed write: lines go out without waiting for a commit until it
    /// reports writing works again.
    store_failing: bool,
    /// People were told history is not being kept.
    told_unkept: bool,
    /// History answers to hand to the core, oldest first.
    answers: VecDeque<Answer>,
    /// Notices for everyone, to hand to the core.
    notices: Vec<String>,
    /// How many `Output::History` there have been: each one's number, for the recording.
    requests: u64,
    /// What the store thread reports.
    replies: Receiver<Reply>,
    /// Cluster mode's nickname claims (`--cluster`); `None` for a server on its own.
    node: Option<Node>,
    /// Cluster mode's room lines, people and private messages.
    relay: Option<Relay>,
    /// Cluster mode: shares the changes of order made here with the other nodes.
    sharer: Option<ModerationSharer>,
    /// Changes of order made here in this step, for `share_moderation`.
    to_share: Vec<Moderation>,
    /// Changes of order made elsewhere (server bans, registered rooms), to hand to the core
    /// (see `Hub::drain`).
    moderation_from_elsewhere: VecDeque<Moderation>,
    /// What the relay has for the core, to hand over in order (see `Hub::drain`).
    relayed: VecDeque<Relayed>,
    /// People here whose state changed in this drain, for the other nodes.
    changed: Vec<ConnectionId>,
    /// The accounts thread (see `accounts.rs`); `None` where accounts are not kept.
    accounts: Option<Accounts>,
    /// The keys of the accounts there are: nicknames that are protected.
    registered: HashSet<String>,
    /// The keys of the names on the operators' list (`--oper`), registered or not.
    operator_keys: HashSet<String>,
    /// Account answers to hand to the core, and people going by a registered nickname to
    /// tell it of (see `Hub::drain`).
    account_answers: VecDeque<(AccountRequest, AccountAnswer)>,
    unproven: Vec<(ConnectionId, String)>,
    /// What `--metrics` serves: counted always (plain integers), read at a scrape.
    stats: Stats,
    /// When to give back the send queues that are empty again ([`RELEASE_AFTER`]): set by a
    /// flush, cleared by the sweep.
    release_at: Option<StdInstant>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("online", &self.core.online())
            .finish_non_exhaustive()
    }
}

/// The runner's own rules for connections, apart from the core's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// What is done about clients that do not read.
    pub(crate) slow: SlowReaders,
    /// The most connections from one address; 0 for no limit.
    pub(crate) max_per_address: u32,
    /// The most time lines wait to be written together.
    pub(crate) flush_interval: Duration,
    /// Whether the store keeps private messages (`--private-history-days` above 0).
    pub(crate) keep_private: bool,
}

/// The hub's clock: the core's time is Unix time in milliseconds, counted on from `started`
/// with the monotonic clock (so it never goes back, whatever the wall clock does).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub(crate) started: StdInstant,
    /// Unix time at `started`, in ms.
    pub(crate) started_unix: u64,
}

impl Clock {
    /// Starts the clock now.
    pub(crate) fn start() -> Self {
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        Self {
            started: StdInstant::now(),
            started_unix,
        }
    }

    /// The core's time now.
    pub(crate) fn now(&self) -> Instant {
        let since = StdInstant::now().saturating_duration_since(self.started);
        Instant::from_millis(
            self.started_unix
                .saturating_add(u64::try_from(since.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// The core's time at start.
    pub(crate) fn start_instant(&self) -> Instant {
        Instant::from_millis(self.started_unix)
    }

    /// The `std` instant of the core's `at`.
    pub(crate) fn std_instant_of(&self, at: Instant) -> StdInstant {
        self.started + Duration::from_millis(at.as_millis().saturating_sub(self.started_unix))
    }
}

/// What keeps things for the hub, or shares them: the store, the cluster's node, relay and
/// sharer of server bans (`--cluster`), the accounts and the keys of those there are.
pub(crate) struct Keepers {
    pub(crate) store: Store,
    pub(crate) cluster: Option<(Node, Relay, ModerationSharer)>,
    pub(crate) accounts: Option<(Accounts, HashSet<String>)>,
}

impl Hub {
    pub(crate) fn new(
        core: RecordedCore,
        executor: Rc<LocalExecutor<'static>>,
        events: Sender<Event>,
        policy: Policy,
        clock: Clock,
        keepers: Keepers,
    ) -> Self {
        let Keepers {
            store,
            cluster,
            accounts,
        } = keepers;
        let (accounts, registered) = accounts.unzip();
        let (node, relay, sharer) = match cluster {
            Some((node, relay, sharer)) => (Some(node), Some(relay), Some(sharer)),
            None => (None, None, None),
        };
        let Policy {
            slow,
            max_per_address,
            flush_interval,
            keep_private,
        } = policy;
        let replies = store.replies();
        Self {
            core,
            connections: Vec::new(),
            executor,
            events,
            slow,
            over_limit: Vec::new(),
            crowded: Vec::new(),
            began_lagging: Vec::new(),
            undelivered: Vec::new(),
            flushing: Vec::new(),
            resumed: Vec::new(),
            idle_writers: Vec::new(),
            ticks: Rc::default(),
            pacer: Pacer::new(flush_interval, clock.started),
            per_address: HashMap::new(),
            max_per_address,
            keep_private,
            clock,
            store,
            gate: Rc::default(),
            commits_asked: 0,
            commits_pending: VecDeque::new(),
            wait_for: 0,
            uncommitted: false,
            store_stalled: false,
            store_failing: false,
            told_unkept: false,
            answers: VecDeque::new(),
            notices: Vec::new(),
            requests: 0,
            replies,
            node,
            relay,
            relayed: VecDeque::new(),
            sharer,
            to_share: Vec::new(),
            moderation_from_elsewhere: VecDeque::new(),
            changed: Vec::new(),
            accounts,
            registered: registered.unwrap_or_default(),
            operator_keys: HashSet::new(),
            account_answers: VecDeque::new(),
            unproven: Vec::new(),
            stats: Stats::default(),
            release_at: None,
        }
    }

    /// Handles events until shutdown, then flushes every connection and returns. `accepting`
    /// is the accept loop, stopped (so the listener closes) as shutdown begins.
    pub(crate) async fn run(mut self, events: Receiver<Event>, accepting: Task<()>) {
        let replies = self.replies.clone();
        let cluster = self.node.as_ref().map(Node::results);
        let relay = self.relay.as_ref().map(Relay::results);
        let mut accepting = Some(accepting);
        let mut timer = Timer::never();
        // When `timer` is set for. Setting a timer registers it with the reactor anew, which
        // wakes the thread polling the reactor (one more turn through epoll); so it is set only
        // when the deadline changes.
        let mut armed: Option<StdInstant> = None;
        loop {
            let began = StdInstant::now();
            // The store's replies come before everything: lines wait for its commits. So do
            // the cluster's answers: people wait for their nicknames.
            let mut replied = false;
            while let Ok(reply) = replies.try_recv() {
                self.handle_reply(reply);
                replied = true;
            }
            while let Some(done) = cluster.as_ref().and_then(|done| done.try_recv().ok()) {
                self.cluster_done(done);
                replied = true;
            }
            while let Some(done) = relay.as_ref().and_then(|done| done.try_recv().ok()) {
                self.relay_done(done);
                replied = true;
            }
            self.check_store_stall();
            if replied {
                self.end_turn().await;
                self.turn_done(began);
            }
            // Deadlines come first: a steady stream of events must not starve the timer, which
            // `future::or` below would do, since it polls the event channel first.
            if self
                .core
                .poll_timeout()
                .is_some_and(|deadline| deadline <= self.now())
            {
                let now = self.now();
                self.step(|core| core.handle_timeout(now));
                self.drop_stalled().await;
                self.resume_held().await;
                self.end_turn().await;
                self.turn_done(began);
                continue;
            }
            if self.release_at.is_some_and(|at| at <= StdInstant::now()) {
                let began = StdInstant::now();
                self.release_at = (!self.release_idle_queues()).then(|| began + RELEASE_AFTER);
                self.turn_done(began);
            }
            // Readers waiting for a flush get one even when no writer has anything new.
            if !self.ticks.borrow().waiting.is_empty() {
                self.pacer.register_waiting_readers();
            }
            let flush_at = self.pacer.poll_timeout();
            if flush_at.is_some_and(|at| at <= StdInstant::now()) {
                let began = StdInstant::now();
                if let Some(signal) = self.read_then_flush(&events, &mut accepting).await {
                    return self.shut_down_for(signal).await;
                }
                self.turn_done(began);
                continue;
            }
            let deadline = self
                .core
                .poll_timeout()
                .map(|at| self.clock.std_instant_of(at));
            let stall = self
                .commits_pending
                .front()
                .map(|(_, at)| *at + STORE_STALL);
            let wanted = deadline
                .into_iter()
                .chain(flush_at)
                .chain(stall)
                .chain(self.release_at)
                .min();
            if wanted != armed {
                match wanted {
                    Some(at) => timer.set_at(at),
                    None => timer = Timer::never(),
                }
                armed = wanted;
            }
            // With no flush due, a reader that begins waiting for one wakes the hub (see
            // `Ticks::hub`), which then sets one: it may begin after the hub fell asleep.
            let watch_readers = flush_at.is_none();
            let ticks = self.ticks.clone();
            let readers_waiting = future::poll_fn(|context| {
                let mut ticks = ticks.borrow_mut();
                if watch_readers && !ticks.waiting.is_empty() {
                    std::task::Poll::Ready(Woken::ReaderWaiting)
                } else {
                    if watch_readers {
                        ticks.hub = Some(context.waker().clone());
                    }
                    std::task::Poll::Pending
                }
            });
            let woken = future::or(
                async {
                    match replies.recv().await {
                        Ok(reply) => Woken::Store(reply),
                        // The store thread has gone (it panicked): never again.
                        Err(_) => future::pending().await,
                    }
                },
                future::or(
                    async {
                        let claims = async {
                            match cluster.as_ref().map(Receiver::recv) {
                                // Never closed: the node holds a sender.
                                Some(done) => match done.await {
                                    Ok(done) => Woken::Cluster(done),
                                    Err(_) => future::pending().await,
                                },
                                None => future::pending().await,
                            }
                        };
                        let relayed = async {
                            match relay.as_ref().map(Receiver::recv) {
                                // Never closed: the relay holds a sender.
                                Some(done) => match done.await {
                                    Ok(done) => Woken::Relay(done),
                                    Err(_) => future::pending().await,
                                },
                                None => future::pending().await,
                            }
                        };
                        future::or(claims, relayed).await
                    },
                    future::or(
                        async {
                            match events.recv().await {
                                Ok(event) => Woken::Event(event),
                                // Cannot happen: the hub holds a sender.
                                Err(_) => Woken::ReaderWaiting,
                            }
                        },
                        future::or(readers_waiting, async {
                            (&mut timer).await;
                            Woken::Timer
                        }),
                    ),
                ),
            )
            .await;
            self.ticks.borrow_mut().hub = None;
            let began = StdInstant::now();
            let event = match woken {
                Woken::Event(event) => event,
                Woken::Store(reply) => {
                    self.handle_reply(reply);
                    self.end_turn().await;
                    self.turn_done(began);
                    continue;
                }
                Woken::Cluster(done) => {
                    self.cluster_done(done);
                    self.end_turn().await;
                    self.turn_done(began);
                    continue;
                }
                Woken::Relay(done) => {
                    self.relay_done(done);
                    self.end_turn().await;
                    self.turn_done(began);
                    continue;
                }
                Woken::Timer => {
                    // Spent: whatever is due is done above.
                    armed = None;
                    continue;
                }
                Woken::ReaderWaiting => continue,
            };
            if let Some(signal) = self
                .handle_arrived(Some(event), &events, &mut accepting, Batch::DEFAULT)
                .await
            {
                return self.shut_down_for(signal).await;
            }
            self.end_turn().await;
            self.turn_done(began);
        }
    }

    /// Gives back the room every empty send queue kept from when it was busy (see
    /// [`RELEASE_AFTER`]). Whether every queue is down to an idle one's size now; if not (some
    /// still have messages), the sweep comes again.
    fn release_idle_queues(&mut self) -> bool {
        let mut all = true;
        for connection in self.connections.iter().flatten() {
            all &= connection.link.borrow_mut().release_if_empty();
        }
        all
    }

    /// A turn of work that began at `began` is over: its time goes into the turn histogram.
    fn turn_done(&mut self, began: StdInstant) {
        self.stats.turn.observe(began.elapsed().as_secs_f64());
    }

    /// The counts and gauges for a scrape (`--metrics`).
    fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::new(&self.stats);
        let core = self.core.core();
        let mut dialects = Dialects::default();
        let mut queue_slots = 0;
        for connection in self.connections.iter().flatten() {
            match core.dialect(connection.id) {
                Some(Dialect::Plain) => dialects.plain += 1,
                Some(Dialect::Irc) => dialects.irc += 1,
                Some(Dialect::Json) => dialects.json += 1,
                _ => dialects.undecided += 1,
            }
            queue_slots += connection.link.borrow().slots() as u64;
        }
        snapshot.connections = dialects;
        snapshot.queue_slots = queue_slots;
        snapshot.people_here = core.online() as u64;
        snapshot.people_elsewhere = core.people_elsewhere() as u64;
        snapshot.rooms = core.rooms() as u64;
        snapshot.commits_pending = self.commits_pending.len() as u64;
        snapshot.cluster = self.relay.is_some();
        snapshot.flush_spacing = self.pacer.spacing().as_secs_f64();
        snapshot.load = self.pacer.load(StdInstant::now());
        snapshot
    }

    /// The flush that is due: the readers waiting for it read first, and what they read is
    /// handled, so that the flush carries their lines too; then the writers are woken and get a
    /// turn. Returns the signal's name if an event handled was a shutdown.
    async fn read_then_flush(
        &mut self,
        events: &Receiver<Event>,
        accepting: &mut Option<Task<()>>,
    ) -> Option<&'static str> {
        let readers = self.ticks.borrow_mut().tick();
        if readers > 0 {
            future::yield_now().await;
            let batch = self.pacer.batch_at_flush(readers);
            if let Some(signal) = self.handle_arrived(None, events, accepting, batch).await {
                return Some(signal);
            }
        }
        self.flush();
        future::yield_now().await;
        None
    }

    /// Handles `first` and what else has arrived, up to `batch`; returns the signal's name if
    /// one was a shutdown.
    ///
    /// Whatever has arrived is handled before the writers run: each writer then sends all its
    /// client got from these events in one write, instead of one write per line, which is what
    /// a busy server spends its time on otherwise. Under light load there is nothing more
    /// waiting and each event goes out at once.
    async fn handle_arrived(
        &mut self,
        first: Option<Event>,
        events: &Receiver<Event>,
        accepting: &mut Option<Task<()>>,
        batch: Batch,
    ) -> Option<&'static str> {
        let mut event = first.or_else(|| events.try_recv().ok());
        let (mut handled, began) = (0, StdInstant::now());
        while let Some(next) = event.take() {
            if let Some(signal) = self.handle(next, accepting).await {
                return Some(signal);
            }
            handled += 1;
            // Bounded in count and in time, so the accept loop and the readers get their turn
            // too.
            if batch.has_room(handled, began.elapsed()) {
                event = events.try_recv().ok();
            }
        }
        None
    }

    /// Ends a turn of handling: wakes the writers that have something new to send, unless the
    /// pacer says to wait (the last flush was too recent, or readers wait for the flush); then
    /// they are woken when it is time, and meanwhile more lines gather for them.
    async fn end_turn(&mut self) {
        // Lines handed to the store need a commit even if no writer has anything new (a
        // busy writer waits for that commit too).
        if self.idle_writers.is_empty() && !self.uncommitted {
            return;
        }
        // Readers waiting for this flush read first: the top of `run` sees to that.
        let readers_waiting = !self.ticks.borrow().waiting.is_empty();
        match self
            .pacer
            .register_new_writes(StdInstant::now(), readers_waiting)
        {
            Flush::Now => {
                self.flush();
                // Let them write before handling more.
                future::yield_now().await;
            }
            Flush::Later => {}
        }
    }

    /// Wakes every writer that has been given something since it last waited, and tells the
    /// pacer, which sets when the next flush may come (see [`crate::pacer`] for why flushes are
    /// spaced by the writes they set off).
    fn flush(&mut self) {
        // What goes out now is on file first, so a recording is whole up to what was sent.
        self.core.flush_recording();
        self.commit();
        let woken = self.idle_writers.len();
        self.stats.flush_writers.observe(woken as f64);
        self.stats.flush_events.observe(self.events.len() as f64);
        if self.gate.borrow().committed < self.wait_for {
            // What they were given waits for the commit just asked: they are woken when it is
            // done.
            let mut gate = self.gate.borrow_mut();
            gate.waiting.append(&mut self.idle_writers);
        } else {
            for writer in self.idle_writers.drain(..) {
                writer.wake();
            }
        }
        let now = StdInstant::now();
        self.pacer.handle_flush(now, woken, self.stats.deliveries);
        self.release_at.get_or_insert(now + RELEASE_AFTER);
        self.ticks.borrow_mut().gathering = self.pacer.is_gathering();
    }

    /// Handles one event; returns the signal's name if it was a shutdown.
    async fn handle(
        &mut self,
        event: Event,
        accepting: &mut Option<Task<()>>,
    ) -> Option<&'static str> {
        match event {
            Event::Accepted(stream, peer) => self.accept(stream, peer),
            Event::Input(id, bytes) => self.input(id, bytes, 0).await,
            Event::Disconnected(id, reason, error) => self.disconnected(id, reason, error),
            Event::CaughtUp(id) => self.caught_up(id),
            Event::Stalled(id) => self.stalled(id),
            Event::Account(request, answer) => {
                // Made here, or made elsewhere and not heard of yet.
                if answer == AccountAnswer::Done
                    && matches!(
                        request.ask(),
                        AccountAsk::Register(_) | AccountAsk::Identify(_)
                    )
                {
                    self.registered
                        .insert(crate::name_key(request.account().as_str()));
                }
                self.account_answers.push_back((*request, answer));
                self.drain();
            }
            Event::AccountsRegistered(keys) => self.accounts_registered(keys),
            Event::Moderation(news) => {
                if let Some(bans) = &mut self.sharer {
                    self.moderation_from_elsewhere.extend(bans.heard(*news));
                }
                self.drain();
            }
            Event::Motd(motd) => {
                let now = self.clock.now();
                self.core.set_motd(now, motd.map(|motd| *motd));
                return None;
            }
            Event::Reconfigure(settings) => {
                self.reconfigure(&settings);
                return None;
            }
            Event::Scrape(answer) => {
                let _ = answer.try_send(self.snapshot());
                return None;
            }
            Event::Shutdown(signal) => {
                drop(accepting.take());
                return Some(signal);
            }
        }
        self.drop_stalled().await;
        self.resume_held().await;
        None
    }

    /// Applies what a reloaded configuration changes live: the core's limits, the slow-reader
    /// policy, the per-address limit and the flush interval. The rest of `settings` (ports,
    /// the store, the cluster, the recording) was fixed at start and is not looked at; the
    /// message of the day comes as its own event. What changes here is what the signal task
    /// reported as changed (`args.rs` lists those keys): a setting made live later (a list of
    /// operators, say) is applied here too.
    fn reconfigure(&mut self, settings: &crate::Settings) {
        let now = self.clock.now();
        self.core.set_limits(now, settings.core.limits());
        // Someone identified as an account dropped from the list is no longer an operator
        // from their next line on.
        let _ = now;
        self.set_operators(&settings.operators);
        self.slow = SlowReaders {
            lag_limit: settings.lag_limit,
            queue_limit: settings.queue_limit,
            // Read by writers spawned from now on: new connections.
            stall_timeout: settings.stall_timeout,
        };
        self.max_per_address = settings.max_per_address;
        self.pacer.set_flush_interval(settings.flush_interval);
    }

    async fn shut_down_for(self, signal: &'static str) {
        info!(
            "{signal}: shutting down, telling {} connection(s)",
            self.core.online()
        );
        self.shut_down().await;
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Cluster mode: accounts made (on any node) that this node may not know yet. Their
    /// names are protected from now on: whoever goes by one here is asked to prove it.
    fn accounts_registered(&mut self, keys: Vec<String>) {
        let mut new = HashSet::new();
        for key in keys {
            if !self.registered.contains(&key) {
                if self.operator_keys.contains(&key) {
                    // Reserved, so this should not happen; it is no operator here until the
                    // list is read again (a reload or a restart).
                    warn!(
                        "accounts: {key}, on this node's operators' list without an account, was \
                         registered on another node; check who holds it before reloading"
                    );
                }
                self.registered.insert(key.clone());
                new.insert(key);
            }
        }
        if new.is_empty() {
            return;
        }
        debug!("accounts: {} made on other nodes", new.len());
        for connection in self.connections.iter().flatten() {
            if let Some(name) = &connection.name
                && new.contains(&crate::name_key(name))
            {
                self.unproven.push((connection.id, name.clone()));
            }
        }
        self.drain();
    }

    /// Hands the core a server ban set or lifted in the cluster (on another node, or on this one
    /// before it restarted), and keeps it in the store as this node's own would be (so that it
    /// holds after a restart here too).
    fn apply_moderation(&mut self, now: Instant, change: Moderation) -> Result<(), Error> {
        let core = self.core.unrecorded("changes of order from other nodes");
        let applied = match &change {
            Moderation::ServerBan { ban, reason } => core.handle_server_ban(
                now,
                ServerBanChange::Set {
                    mask: &ban.mask,
                    by: &ban.by,
                    at: ban.at,
                    until: ban.until,
                    reason,
                },
            ),
            Moderation::ServerUnban { mask } => {
                core.handle_server_ban(now, ServerBanChange::Lifted { mask })
            }
            Moderation::Founder { room, founder } => core.handle_room_change(
                now,
                RoomChange::Registered {
                    room,
                    founder: founder.as_deref(),
                },
            ),
            Moderation::Modes {
                room,
                modes,
                key,
                limit,
            } => core.handle_room_change(
                now,
                RoomChange::Modes {
                    room,
                    modes,
                    key: key.as_deref(),
                    limit: *limit,
                },
            ),
            Moderation::Ban { room, list, ban } => core.handle_room_change(
                now,
                RoomChange::Banned {
                    room,
                    list: *list,
                    mask: &ban.mask,
                    by: &ban.by,
                    at: ban.at,
                    until: ban.until,
                },
            ),
            Moderation::Unban { room, list, mask } => core.handle_room_change(
                now,
                RoomChange::Unbanned {
                    room,
                    list: *list,
                    mask,
                },
            ),
            Moderation::Removed { .. } => return Ok(()),
        };
        match applied {
            Ok(true) => {
                match &change {
                    Moderation::ServerBan { ban, .. } => info!(
                        "cluster: {} banned {} from the server (heard from the cluster)",
                        ban.by, ban.mask
                    ),
                    Moderation::ServerUnban { mask } => {
                        info!(
                            "cluster: the server ban on {mask} was lifted (heard from the cluster)"
                        );
                    }
                    other => info!(
                        "cluster: {} (heard from the cluster)",
                        crate::cluster::describe_change(other)
                    ),
                }
                self.store.moderation(change);
                self.kept();
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(Error::Relayed(why)) => {
                warn!(
                    "cluster: a change of order from another node was refused: {why}: {change:?}"
                );
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Makes the accounts called `names` server operators: those that exist. A name with no
    /// account is left out, and said so: registering it now would make whoever did it an
    /// operator, so registering any name on the list is refused (see `refuses_register`).
    pub(crate) fn set_operators(&mut self, names: &[String]) {
        self.operator_keys = names.iter().map(|name| crate::name_key(name)).collect();
        let (existing, missing): (Vec<String>, Vec<String>) = names
            .iter()
            .cloned()
            .partition(|name| self.registered.contains(&crate::name_key(name)));
        for name in &missing {
            warn!(
                "--oper {name}: there is no account {name}, so it is no operator; an operator's \
                 account is registered before it is named (registering a listed name is refused)"
            );
        }
        // In a cluster, refused on every node, not only those that list it.
        if self.node.is_some()
            && let Some(accounts) = &self.accounts
        {
            accounts.reserve(missing.iter().map(|name| crate::name_key(name)).collect());
        }
        if !existing.is_empty() {
            info!("{} accounts are server operators", existing.len());
        }
        let now = self.clock.now();
        self.core.set_operators(now, &existing);
    }

    /// Keeps a private message for each identified account that sent or received it, with
    /// the other person as its peer (their account, or their nickname): the message then waits
    /// for its commit, as a room line does. Nobody identified: nothing is kept.
    fn keep_private_line(&mut self, line: StoredLine) {
        let Some(to) = line.to.as_deref() else {
            return;
        };
        let account = |nick: &str| self.core.account_of(nick).map(|a| a.as_str().to_owned());
        let (sender, recipient) = (account(&line.nick), account(to));
        let key = |account: &Option<String>, nick: &str| match account {
            Some(account) => crate::store::peer_key(account, true),
            None => crate::store::peer_key(nick, false),
        };
        let (sender_key, recipient_key) = (key(&sender, &line.nick), key(&recipient, to));
        let owners = [
            sender.map(|_| (sender_key.clone(), recipient_key.clone())),
            recipient.map(|_| (recipient_key, sender_key)),
        ];
        for (owner, peer) in owners.into_iter().flatten() {
            self.store.private(StoredPrivate {
                owner,
                peer,
                line: line.clone(),
            });
            self.kept();
        }
    }

    /// Asks the store to commit what it was handed since the last commit.
    fn commit(&mut self) {
        if !std::mem::take(&mut self.uncommitted) {
            return;
        }
        self.commits_asked += 1;
        if self.store.commit(self.commits_asked) {
            self.commits_pending
                .push_back((self.commits_asked, StdInstant::now()));
        } else {
            self.store_stalled("its queue is full");
        }
    }

    /// A line or a topic was handed to the store: what is queued for anyone from now on waits
    /// for the commit that takes it.
    fn kept(&mut self) {
        self.uncommitted = true;
        if self.store.is_durable() && !self.store_stalled && !self.store_failing {
            self.wait_for = self.commits_asked + 1;
        }
    }

    /// The store cannot keep up: what waits for its commits goes out now, and lines stop
    /// waiting for them until it has caught up. Everyone is told once.
    fn store_stalled(&mut self, why: &str) {
        if !std::mem::replace(&mut self.store_stalled, true) {
            error!("store: {why}; lines go out without waiting to be kept");
        }
        self.stop_waiting();
        self.tell_unkept(why);
    }

    /// What waits for a commit goes out now, and lines queued from now on do not wait.
    fn stop_waiting(&mut self) {
        // Numbers from here on are past every number waited for so far.
        self.commits_asked = self.commits_asked.max(self.wait_for);
        self.gate.borrow_mut().open_to(self.commits_asked);
        self.wait_for = 0;
    }

    fn tell_unkept(&mut self, why: &str) {
        if !std::mem::replace(&mut self.told_unkept, true) {
            self.notices.push(format!(
                "History is not being kept just now ({why}); chat goes on."
            ));
        }
    }

    /// A commit that has taken longer than [`STORE_STALL`] means the disk is stuck.
    fn check_store_stall(&mut self) {
        if self
            .commits_pending
            .front()
            .is_some_and(|(_, asked)| asked.elapsed() >= STORE_STALL)
        {
            self.commits_pending.clear();
            let seconds = STORE_STALL.as_secs();
            self.store_stalled(&format!("the disk has not finished a write in {seconds} s"));
            self.drain();
        }
    }

    /// Handles what the store thread reports.
    fn handle_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Committed(number) => {
                self.gate.borrow_mut().open_to(number);
                while let Some(&(pending, asked)) = self.commits_pending.front()
                    && pending <= number
                {
                    self.commits_pending.pop_front();
                    self.stats.commits += 1;
                    self.stats
                        .commit_time
                        .observe(asked.elapsed().as_secs_f64());
                }
                if self.store_stalled && number >= self.commits_asked {
                    self.store_stalled = false;
                    info!("store: caught up");
                    if !self.store_failing {
                        self.tell_kept();
                    }
                }
            }
            Reply::Fetched(fetch, lines) => self.answers.push_back((fetch, lines)),
            Reply::Failed(error) => {
                error!("store: writing failed: {error}; lines are not being kept");
                self.store_failing = true;
                self.stop_waiting();
                self.tell_unkept(&format!("the store cannot write: {error}"));
            }
            Reply::Recovered => {
                info!("store: writing works again");
                self.store_failing = false;
                if !self.store_stalled {
                    self.tell_kept();
                }
            }
        }
        self.drain();
    }

    fn tell_kept(&mut self) {
        if std::mem::take(&mut self.told_unkept) {
            self.notices.push("History is being kept again.".to_owned());
        }
    }

    /// Takes in what the cluster's Redis answered: the core is given the answer to a claim,
    /// and the node told what the core made of it.
    fn cluster_done(&mut self, done: Done) {
        let Some(node) = &mut self.node else {
            return;
        };
        match node.handle(done) {
            Some(ForCore::Answer(claim, answer)) => {
                let now = self.now();
                let verdict = self.core.handle_claim(now, &claim, answer);
                // Before the step's events: one of them may be the person leaving at once (a
                // server ban on the name puts them out), after which the name must not be
                // taken for theirs again.
                if let Some(node) = &mut self.node {
                    node.answered(&claim, answer, verdict);
                }
                self.drain();
            }
            Some(ForCore::Lost { conn, nick, owner }) => self.nick_lost(conn, &nick, &owner),
            None => {}
        }
    }

    /// Another node took `nick`, which `conn` here goes by, while this node's lease had lapsed:
    /// `conn` loses it (it is `anonymous-N` again, and told why), so that one person goes by it.
    fn nick_lost(&mut self, conn: ConnectionId, nick: &str, owner: &str) {
        let who = self
            .connection(conn)
            .map_or_else(|| conn.to_string(), describe);
        warn!(
            "cluster: node {owner} took the nickname {nick} while this node's lease had lapsed; \
             {who} goes by it no longer"
        );
        let now = self.now();
        match self
            .core
            .unrecorded("lost nicknames")
            .handle_nick_lost(now, conn, nick)
        {
            Ok(()) | Err(Error::UnknownConnection(_)) => {}
            Err(error) => error!("bug: {error}"),
        }
        self.carry_out();
    }

    /// Hands a history answer to the core: what the asker was sent before asking goes out
    /// first, then the answer, then what was kept back for it meanwhile.
    fn answer(&mut self, fetch: Fetch, lines: Result<Vec<StoredLine>, String>) {
        let (number, request, _) = fetch;
        let conn = request.conn();
        self.unpark(conn, true);
        let rest = lookup_mut(&mut self.connections, conn).and_then(|c| c.parked.take());
        let now = self.now();
        let give = |hub: &mut Self, part: HistoryAnswer<'_>| -> bool {
            match hub.core.handle_history(now, (number, &request), part) {
                Ok(()) => {
                    hub.carry_out();
                    true
                }
                Err(Error::UnknownConnection(_)) => false,
                Err(error) => {
                    error!("bug: history: {error}");
                    false
                }
            }
        };
        match &lines {
            Ok(lines) => {
                for part in chat_core::answer_parts(lines.iter().map(StoredLine::line)) {
                    // The asker may leave before the answer ends.
                    if !give(self, part) {
                        break;
                    }
                }
            }
            Err(error) => {
                error!("store: reading history ({:?}): {error}", request.target());
                give(self, HistoryAnswer::Unavailable);
            }
        }
        if let Some(connection) = lookup_mut(&mut self.connections, conn) {
            connection.parked = rest.filter(|rest| !rest.is_empty());
            self.unpark(conn, false);
        }
    }

    /// Queues what was kept back for `conn`, up to the place of the next answer (taking that
    /// place too if `take_place`).
    fn unpark(&mut self, conn: ConnectionId, take_place: bool) {
        let Some(connection) = lookup_mut(&mut self.connections, conn) else {
            return;
        };
        let Some(parked) = &mut connection.parked else {
            return;
        };
        let committed = self.gate.borrow().committed;
        let mut queue = connection.link.borrow_mut();
        while let Some(next) = parked.pop_front() {
            match next {
                Parked::Bytes(bytes) => {
                    if let Some(writer) = queue.push(bytes, self.wait_for, committed) {
                        self.idle_writers.push(writer);
                    }
                }
                Parked::Answer if take_place => break,
                Parked::Answer => {
                    parked.push_front(Parked::Answer);
                    break;
                }
            }
        }
        drop(queue);
        if parked.is_empty() && !take_place {
            connection.parked = None;
        }
    }

    fn accept(&mut self, stream: Stream, peer: SocketAddr) {
        let from_address = self.per_address.get(&peer.ip()).copied().unwrap_or(0);
        if self.max_per_address > 0 && from_address >= self.max_per_address {
            warn!(
                "refused {peer}: {from_address} connections from {} already",
                peer.ip()
            );
            self.stats.refused(Refused::PerAddress);
            return self.refuse(stream, TOO_MANY_FROM_ADDRESS);
        }
        let tls = matches!(stream, Stream::Tls(_));
        let now = self.now();
        // An IPv4 peer on a dual-stack listener comes as `::ffff:a.b.c.d`: bans name it as IPv4.
        let admission = match self.core.handle_connect_from(now, peer.ip().to_canonical()) {
            Ok(admission) => admission,
            Err(error) => return error!("bug: connect from {peer}: {error}"),
        };
        let id = match admission {
            Admission::Accepted(id) => id,
            Admission::Banned(reply) => {
                self.stats.refused(Refused::Banned);
                warn!("refused {peer}: a server ban names its address");
                return self.refuse(stream, reply);
            }
            Admission::Refused(reply) => {
                self.stats.refused(Refused::Full);
                warn!(
                    "refused {peer}: server full ({} online)",
                    self.core.online()
                );
                return self.refuse(stream, reply);
            }
            _ => return error!("bug: connect from {peer}: an admission this runner does not know"),
        };
        self.stats.accepted += 1;
        let link = Rc::new(RefCell::new(Link::new()));
        let (reader, writer) = match stream {
            Stream::Plain(stream) => self.spawn_tasks(id, Rc::new(stream), &link),
            Stream::Tls(stream) => self.spawn_tasks(id, Rc::new(*stream), &link),
        };
        if self.connections.len() <= id.index() {
            self.connections.resize_with(id.index() + 1, || None);
        }
        self.connections[id.index()] = Some(Connection {
            id,
            peer,
            link,
            reader,
            writer,
            name: None,
            held: None,
            lag: Lag::default(),
            parked: None,
        });
        *self.per_address.entry(peer.ip()).or_default() += 1;
        debug!(
            "{id} connected from {peer}{} ({} online)",
            if tls { " over TLS" } else { "" },
            self.core.online()
        );
        self.drain();
    }

    /// Spawns a new connection's reader and writer.
    fn spawn_tasks<S: Socket + 'static>(
        &self,
        id: ConnectionId,
        stream: Rc<S>,
        link: &Rc<RefCell<Link>>,
    ) -> (Task<()>, Task<()>) {
        let reader = self.executor.spawn(read_loop(
            id,
            stream.clone(),
            link.clone(),
            self.ticks.clone(),
            self.events.clone(),
        ));
        let writer = self.executor.spawn(write_loop(
            id,
            stream,
            link.clone(),
            self.gate.clone(),
            self.events.clone(),
            self.slow.stall_timeout,
        ));
        (reader, writer)
    }

    /// Writes `reply` to a connection that is not let in, and closes it.
    fn refuse(&self, stream: Stream, reply: &'static [u8]) {
        match stream {
            Stream::Plain(stream) => self.executor.spawn(refuse(stream, reply)).detach(),
            Stream::Tls(stream) => self.executor.spawn(refuse(*stream, reply)).detach(),
        }
    }

    /// Feeds `chunk` from `at` on, one line at a time.
    async fn input(&mut self, id: ConnectionId, chunk: Vec<u8>, mut at: usize) {
        while at < chunk.len() && self.connection(id).is_some() {
            let now = self.now();
            let more = match self.core.handle_input(now, id, &chunk[at..]) {
                Ok(consumed) if consumed.bytes() == 0 && !consumed.more() => {
                    // Flood control: keep the rest until the core says to resume, and give the
                    // reader no credit meanwhile, so TCP slows the sender.
                    if let Some(connection) = lookup_mut(&mut self.connections, id) {
                        connection.held = Some((chunk, at));
                    }
                    self.stats.flood_holds += 1;
                    return self.drain();
                }
                Ok(consumed) => {
                    at += consumed.bytes();
                    self.stats.lines_received += u64::from(consumed.line());
                    consumed.more()
                }
                Err(error) => return error!("bug: input from {id}: {error}"),
            };
            self.drain();
            self.drop_stalled().await;
            if more {
                self.continue_line(id).await;
            }
        }
        // Handled: the reader may take the next chunk.
        if let Some(connection) = self.connection(id) {
            connection.link.borrow_mut().give_credit();
        }
    }

    fn disconnected(
        &mut self,
        id: ConnectionId,
        reason: DisconnectReason,
        error: Option<io::Error>,
    ) {
        // The hub may have closed this connection already, and the reader's report crossed it.
        let Some(connection) = self.forget(id) else {
            return;
        };
        match error {
            Some(error) => debug!("{} disconnected: {error}", describe(&connection)),
            None => debug!("{} disconnected: closed by peer", describe(&connection)),
        }
        self.stats.gone(match reason {
            DisconnectReason::Closed => Gone::Closed,
            DisconnectReason::TooSlow => Gone::TooSlow,
            _ => Gone::Error,
        });
        // The peer may only have shut its sending side, so what is queued still goes out.
        self.close_flushing(connection);
        let now = self.now();
        self.step(|core| core.handle_disconnect(now, id, reason));
    }

    /// Runs one core step and carries out its outputs.
    fn step(&mut self, step: impl FnOnce(&mut RecordedCore) -> Result<(), Error>) {
        if let Err(error) = step(&mut self.core) {
            error!("bug: {error}");
        }
        self.drain();
    }

    /// Carries out every output of the last step, then tells the core what came of them (who
    /// began lagging, which private messages could not be queued), carrying out what that
    /// brings in turn.
    fn drain(&mut self) {
        self.carry_out();
        loop {
            let now = self.now();
            let result = if let Some(id) = self.began_lagging.pop() {
                self.core.handle_backlog(now, id, Backlog::Lagging)
            } else if let Some((from, to)) = self.undelivered.pop() {
                match self.core.handle_undelivered(now, from, to) {
                    // The sender left in the same step: no one to tell.
                    Err(Error::UnknownConnection(gone)) if gone == from => Ok(()),
                    other => other,
                }
            } else if let Some((fetch, lines)) = self.answers.pop_front() {
                self.answer(*fetch, lines);
                continue;
            } else if !self.notices.is_empty() {
                let notice = self.notices.remove(0);
                self.core.handle_notice(now, &notice)
            } else if let Some(relayed) = self.relayed.pop_front() {
                self.hand_relayed(relayed);
                continue;
            } else if let Some((request, answer)) = self.account_answers.pop_front() {
                match self
                    .core
                    .unrecorded("account answers")
                    .handle_account(now, &request, answer)
                {
                    // Too late (the person left, or the time ran out): an account made for
                    // it stays made.
                    Err(Error::StaleAccount) => Ok(()),
                    other => other,
                }
            } else if let Some(change) = self.moderation_from_elsewhere.pop_front() {
                self.apply_moderation(now, change)
            } else if let Some((conn, nick)) = self.unproven.pop() {
                match self
                    .core
                    .unrecorded("account answers")
                    .handle_nick_registered(now, conn, &nick)
                {
                    Err(Error::UnknownConnection(_)) => Ok(()),
                    other => other,
                }
            } else {
                break;
            };
            if let Err(error) = result {
                error!("bug: {error}");
            }
            self.carry_out();
        }
        self.publish_changed();
    }

    /// Carries out every output of the last step. What is queued for whom is the slow-reader
    /// policy's to say (see [`crate::slow`]): room messages are skipped for a lagging client,
    /// and a private message is refused to one too far behind, whose sender the core then
    /// tells. A client whose queue is full is dropped afterwards (it cannot be dropped
    /// mid-drain: the core takes no input until the drain ends).
    fn carry_out(&mut self) {
        // The people ordered about: those here are published anew once the drain is done.
        let mut ordered: Vec<String> = Vec::new();
        while let Some(output) = self.core.poll_output() {
            // Who goes by which nickname, for the cluster's claims; who is who, for the other
            // nodes.
            if let Output::Event(event) = &output {
                if let Some(node) = &mut self.node {
                    node.event(event);
                }
                if let Some(relay) = &mut self.relay {
                    Self::person_event(&mut self.changed, relay, event);
                }
            }
            match output {
                Output::Send { to, bytes } => {
                    let (kind, sender) = match to.delivery() {
                        Delivery::Broadcast => (Kind::Room, None),
                        Delivery::Private { from } => (Kind::Private, Some(from)),
                        _ => (Kind::Reply, None),
                    };
                    let shared: Shared = Shared::from(bytes);
                    let (wait_for, committed) = (self.wait_for, self.gate.borrow().committed);
                    self.stats.lines_sent += 1;
                    for id in to {
                        let Some(connection) = lookup_mut(&mut self.connections, id) else {
                            continue;
                        };
                        if let Some(parked) = &mut connection.parked {
                            // Waiting for history: kept back, within the queue limit (room
                            // messages past it are skipped, as for a client behind).
                            if kind != Kind::Room || parked.len() < self.slow.queue_limit {
                                parked.push_back(Parked::Bytes(shared.clone()));
                                self.stats.deliveries += 1;
                            } else {
                                self.stats.skipped += 1;
                            }
                            continue;
                        }
                        let mut queue = connection.link.borrow_mut();
                        match self.slow.admit(&mut connection.lag, kind, queue.len()) {
                            Admit::Queue => {}
                            Admit::Skip => {
                                self.stats.skipped += 1;
                                continue;
                            }
                            Admit::Refuse => {
                                // Only a private message is refused, and it has a sender.
                                self.undelivered.extend(sender.map(|from| (from, id)));
                                self.stats.private_refused += 1;
                                continue;
                            }
                        }
                        self.stats.deliveries += 1;
                        if let Some(writer) = queue.push(shared.clone(), wait_for, committed) {
                            self.idle_writers.push(writer);
                        }
                        let waiting = queue.len();
                        if self.slow.reaches_lag_limit(waiting) {
                            self.crowded.push(id);
                        }
                        if self.slow.reaches_queue_limit(waiting) {
                            self.over_limit.push(id);
                        }
                    }
                }
                Output::Close { conn, reason } => {
                    self.stats.gone(match reason {
                        CloseReason::Quit => Gone::Quit,
                        CloseReason::Silent => Gone::Silent,
                        CloseReason::PingTimeout => Gone::PingTimeout,
                        CloseReason::Banned => Gone::Banned,
                        // A reason added to the core later, until it has a label of its own.
                        _ => Gone::Error,
                    });
                    if let Some(connection) = self.forget(conn) {
                        // A quit is an ordinary departure; a timeout is the server's doing.
                        if reason == CloseReason::Quit {
                            debug!("{} closed: {reason}", describe(&connection));
                        } else {
                            info!("{} closed: {reason}", describe(&connection));
                        }
                        self.close_flushing(connection);
                    }
                }
                Output::Resume { conn } => self.resumed.push(conn),
                Output::Relay(line) => {
                    self.stats.cluster_published += 1;
                    if let Some(relay) = &mut self.relay {
                        let person = line.conn.to_bits();
                        self.relayed.extend(relay.outgoing(&line, person));
                    }
                }
                Output::Order(order) => {
                    if let Some(relay) = &mut self.relay {
                        relay.order(&order);
                        ordered.push(order.target.to_owned());
                    }
                }
                // A line shown here only (the other nodes out of reach) has no number to keep
                // it under.
                Output::Event(CoreEvent::Said { seq: 0, .. }) => {}
                Output::Event(event @ CoreEvent::Said { .. }) => {
                    if let Some((room, line)) = HistoryLine::of_said(&event) {
                        self.store.line(room, StoredLine::from(line));
                        self.kept();
                    }
                }
                Output::Event(CoreEvent::Private {
                    from,
                    to,
                    kind,
                    text,
                    msgid,
                    at,
                }) if self.keep_private => {
                    let line = StoredLine {
                        seq: msgid,
                        at,
                        kind,
                        nick: from.to_owned(),
                        text: text.to_owned(),
                        to: Some(to.to_owned()),
                    };
                    self.keep_private_line(line);
                }
                Output::Event(CoreEvent::TopicSet {
                    nick,
                    room,
                    topic,
                    at,
                }) => {
                    let topic = StoredTopic {
                        room: room.to_owned(),
                        topic: topic.to_owned(),
                        by: nick.to_owned(),
                        at,
                    };
                    self.store.topic(topic);
                    self.kept();
                }
                Output::Event(
                    event @ (CoreEvent::RoomRegistered { .. }
                    | CoreEvent::RoomModes { .. }
                    | CoreEvent::Banned { .. }
                    | CoreEvent::Unbanned { .. }
                    | CoreEvent::ServerBanned { .. }
                    | CoreEvent::ServerUnbanned { .. }
                    | CoreEvent::RoomRemoved { .. }),
                ) => {
                    if let Some(change) = moderation(&event) {
                        if self.sharer.is_some() {
                            self.to_share.push(change.clone());
                        }
                        self.store.moderation(change);
                        self.kept();
                    }
                }
                Output::History(request) => {
                    self.requests += 1;
                    let request = request.clone();
                    let Some(connection) = lookup_mut(&mut self.connections, request.conn()) else {
                        continue;
                    };
                    connection
                        .parked
                        .get_or_insert_default()
                        .push_back(Parked::Answer);
                    let peer = private_peer_key(&request, &self.registered);
                    if let Err(fetch) = self.store.fetch((self.requests, request, peer)) {
                        self.answers
                            .push_back((fetch, Err("the store's queue is full".to_owned())));
                        self.store_stalled("its queue is full");
                    }
                }
                // Events are for a store or a bus to come; the log names people by nickname.
                // (An anonymous-N name is not a nickname: it stays out of the log's names.)
                Output::Event(
                    CoreEvent::Renamed {
                        person: PersonId::Local(conn),
                        to: name,
                        ..
                    }
                    | CoreEvent::Arrived {
                        person: PersonId::Local(conn),
                        nick: name,
                    },
                ) if Nickname::new(name).is_ok() => {
                    if let Some(connection) = lookup_mut(&mut self.connections, conn) {
                        debug!("{} is now {name}", describe(connection));
                        connection.name = Some(name.to_owned());
                    }
                    // A registered nickname: the core asks its new holder to prove it.
                    if self.registered.contains(&crate::name_key(name)) {
                        self.unproven.push((conn, name.to_owned()));
                    }
                }
                Output::Account(request) if refuses_register(&self.operator_keys, request) => {
                    warn!(
                        "refused to register {}: it is on the operators' list",
                        request.account()
                    );
                    self.account_answers
                        .push_back((request.clone(), AccountAnswer::Taken));
                }
                Output::Account(request) => {
                    let address = lookup_mut(&mut self.connections, request.conn())
                        .map(|connection| connection.peer.ip());
                    let asked = match (&self.accounts, address) {
                        (Some(accounts), Some(address)) => accounts.ask(request.clone(), address),
                        _ => false,
                    };
                    if !asked {
                        self.account_answers
                            .push_back((request.clone(), AccountAnswer::Unavailable));
                    }
                }
                Output::Claim(claim) => match &mut self.node {
                    Some(node) => node.claim(claim.clone()),
                    // Claims come only with `Config::nick_claims`, which only cluster mode
                    // turns on. Should one come anyway, the person is told the name could not
                    // be checked when the claim's time runs out.
                    None => error!(
                        "bug: a nickname claim ({}) with no cluster to ask",
                        claim.nick()
                    ),
                },
                _ => {}
            }
        }
        for nick in ordered {
            self.ordered_about(&nick);
        }
        self.share_moderation();
    }

    /// Cluster mode: shares the changes of order made here in this step with the other nodes:
    /// server bans, registrations, and the modes and bans of registered rooms are kept in
    /// Redis (`cluster/moderation.rs`); an unregistered room's are told on the people channel
    /// and kept by none (they last while the room has people).
    fn share_moderation(&mut self) {
        let Some(sharer) = &mut self.sharer else {
            return;
        };
        let core = self.core.core();
        for change in self.to_share.drain(..) {
            let unregistered = change
                .order_room()
                .is_some_and(|room| core.founder(room).is_none());
            if unregistered {
                if let Some(relay) = &mut self.relay {
                    relay.room_change(&change);
                }
            } else if !matches!(change, Moderation::Removed { .. }) {
                sharer.share(change);
            }
        }
    }

    /// A lagging client's writer has emptied its queue: it is told what it missed, and gets
    /// room messages again.
    fn caught_up(&mut self, id: ConnectionId) {
        let Some(connection) = lookup_mut(&mut self.connections, id) else {
            return;
        };
        let Some(skipped) = connection.lag.catch_up() else {
            return;
        };
        info!(
            "{} caught up; {skipped} room messages were skipped",
            describe(connection)
        );
        let now = self.now();
        self.step(|core| core.handle_backlog(now, id, Backlog::CaughtUp { skipped }));
    }

    /// A client's writer could write nothing for the stall timeout: it is disconnected.
    fn stalled(&mut self, id: ConnectionId) {
        let seconds = self.slow.stall_timeout.unwrap_or_default().as_secs();
        self.drop_too_slow(id, &format!("could not write to it for {seconds} s"));
    }

    /// Drops a client that is not reading, logging `why`, and tells the core, which tells
    /// the others it was too slow to keep up.
    fn drop_too_slow(&mut self, id: ConnectionId, why: &str) {
        let Some(connection) = self.forget(id) else {
            return;
        };
        warn!(
            "{} dropped: {why}, {} messages queued",
            describe(&connection),
            connection.link.borrow().len()
        );
        self.stats.dropped_too_slow += 1;
        self.stats.gone(Gone::TooSlow);
        drop(connection);
        let now = self.now();
        self.step(|core| core.handle_disconnect(now, id, DisconnectReason::TooSlow));
    }

    /// Feeds connections that flood control let go on what they had held back.
    async fn resume_held(&mut self) {
        for id in std::mem::take(&mut self.resumed) {
            let Some(connection) = lookup_mut(&mut self.connections, id) else {
                continue;
            };
            // Nothing held means the chunk ended with the line that emptied the bucket: the
            // reader already has its credit and must not get a second one.
            if let Some((chunk, at)) = connection.held.take() {
                self.input(id, chunk, at).await;
            }
        }
    }

    /// Lets the core go on with a line it handles in parts (an IRC command naming several
    /// targets), one part per step; it takes no new bytes for that.
    async fn continue_line(&mut self, id: ConnectionId) {
        // The connection may go meanwhile: closed by the core, or dropped as too slow.
        while self.connection(id).is_some() {
            let now = self.now();
            let more = match self.core.handle_more(now, id) {
                Ok(consumed) => consumed.more(),
                Err(error) => return error!("bug: input from {id}: {error}"),
            };
            self.drain();
            self.drop_stalled().await;
            if !more {
                return;
            }
        }
    }

    /// Drops the clients that are not reading. A queue that reached the limit may only mean the
    /// hub has not let the writers run yet (one read can hold a thousand short lines), so each
    /// writer first gets a turn; a client whose queue is still at the limit after that is not
    /// taking its bytes, and is dropped so it cannot make the others wait.
    async fn drop_stalled(&mut self) {
        if !self.crowded.is_empty() {
            self.flush();
            future::yield_now().await;
            self.begin_lagging();
        }
        // A few turns at most: a writer woken but not run yet runs within one or two.
        for _ in 0..8 {
            if self.over_limit.is_empty() {
                return;
            }
            self.flush();
            future::yield_now().await;
            let mut candidates = std::mem::take(&mut self.over_limit);
            candidates.sort_unstable();
            candidates.dedup();
            for id in candidates {
                let Some(connection) = self.connection(id) else {
                    continue;
                };
                let verdict = {
                    let queue = connection.link.borrow();
                    self.slow.judge_full(queue.len(), queue.is_stuck())
                };
                match verdict {
                    Verdict::Reading => {}
                    Verdict::NotRunYet => self.over_limit.push(id),
                    Verdict::NotReading => self.drop_too_slow(id, "not reading"),
                }
            }
        }
    }

    /// Those of the crowded connections whose queue is still at the lag limit, now that their
    /// writers have had a turn, are not reading: room messages are skipped for them from now
    /// until their writer has emptied the queue, and the core is told.
    fn begin_lagging(&mut self) {
        let mut crowded = std::mem::take(&mut self.crowded);
        crowded.sort_unstable();
        crowded.dedup();
        for id in crowded {
            let Some(connection) = lookup_mut(&mut self.connections, id) else {
                continue;
            };
            let (waiting, stuck) = {
                let queue = connection.link.borrow();
                (queue.len(), queue.is_stuck())
            };
            match self.slow.judge_crowded(&connection.lag, waiting, stuck) {
                Verdict::Reading => continue,
                Verdict::NotRunYet => {
                    self.crowded.push(id);
                    continue;
                }
                Verdict::NotReading => {}
            }
            connection.lag.begin();
            connection.link.borrow_mut().report_when_empty();
            info!(
                "{} is lagging: {waiting} messages queued; skipping room messages until it catches up",
                describe(connection)
            );
            self.began_lagging.push(id);
        }
        if !self.began_lagging.is_empty() {
            self.drain();
        }
    }

    fn connection(&self, id: ConnectionId) -> Option<&Connection> {
        lookup(&self.connections, id)
    }

    /// Takes a connection out of the table (and out of its address's count, and the cluster's
    /// names).
    fn forget(&mut self, id: ConnectionId) -> Option<Connection> {
        let entry = self.connections.get_mut(id.index())?;
        let connection = entry.take_if(|connection| connection.id == id)?;
        if let Some(node) = &mut self.node {
            node.gone(id);
        }
        if let Some(count) = self.per_address.get_mut(&connection.peer.ip()) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&connection.peer.ip());
            }
        }
        Some(connection)
    }

    /// Closes a connection after giving it [`FLUSH_TIMEOUT`] to take what is queued for it.
    fn close_flushing(&mut self, connection: Connection) {
        // Pruned only now and then, so that many closes at once stay linear.
        if self.flushing.len() >= 64 && self.flushing.len().is_power_of_two() {
            self.flushing.retain(|flush| !flush.is_finished());
        }
        self.flushing
            .push(close_flushing(&self.executor, connection));
    }

    /// Tells everyone, then gives every connection up to [`FLUSH_TIMEOUT`] to take its output.
    async fn shut_down(mut self) {
        let now = self.now();
        if let Err(error) = self.core.handle_shutdown(now) {
            error!("bug: shutdown: {error}");
        }
        self.drain();
        // Closing a queue wakes only a writer still holding its waker; the rest are here.
        self.flush();
        // Meanwhile the writers run: the nicknames go back now rather than with the lease.
        if let Some(node) = self.node.take() {
            node.leave().await;
        }
        if let Some(relay) = self.relay.take() {
            relay.leave(crate::cluster::LEAVE_TIMEOUT).await;
        }
        // The last lines wait for their commit: let it come, as long as the store answers.
        let last = self.commits_asked;
        while self.gate.borrow().committed < last && !self.store_stalled && !self.store_failing {
            let reply = future::or(async { self.replies.recv().await.ok() }, async {
                Timer::after(STORE_STALL).await;
                None
            })
            .await;
            match reply {
                Some(Reply::Committed(number)) => self.gate.borrow_mut().open_to(number),
                Some(_) => {}
                None => {
                    error!("store: the last commit did not finish; the last lines may not be kept");
                    self.gate.borrow_mut().open_to(last);
                }
            }
        }
        let closing: Vec<Task<()>> = self
            .connections
            .drain(..)
            .flatten()
            .map(|connection| close_flushing(&self.executor, connection))
            .collect();
        for flush in self.flushing.drain(..).chain(closing) {
            flush.await;
        }
        info!("shut down");
    }
}

/// Stops a connection's reader and closes its queue; the writer goes on until the queue is
/// empty or [`FLUSH_TIMEOUT`] passes. The socket closes when both tasks are gone.
fn close_flushing(executor: &LocalExecutor<'_>, connection: Connection) -> Task<()> {
    let Connection {
        link,
        reader,
        writer,
        ..
    } = connection;
    link.borrow_mut().close();
    drop(reader);
    executor.spawn(async move {
        future::or(writer, async {
            Timer::after(FLUSH_TIMEOUT).await;
        })
        .await;
    })
}

fn lookup(connections: &[Option<Connection>], id: ConnectionId) -> Option<&Connection> {
    connections
        .get(id.index())?
        .as_ref()
        .filter(|connection| connection.id == id)
}

fn lookup_mut(connections: &mut [Option<Connection>], id: ConnectionId) -> Option<&mut Connection> {
    connections
        .get_mut(id.index())?
        .as_mut()
        .filter(|connection| connection.id == id)
}

/// `#3 alice (127.0.0.1:50312)`, for the log.
fn describe(connection: &Connection) -> String {
    match &connection.name {
        Some(name) => format!("{} {name} ({})", connection.id, connection.peer),
        None => format!("{} ({})", connection.id, connection.peer),
    }
}

/// What a store keeps of `event`, if it changes what keeps order (in a room or on the server).
fn moderation(event: &CoreEvent<'_>) -> Option<Moderation> {
    Some(match *event {
        CoreEvent::RoomRegistered { room, founder } => Moderation::Founder {
            room: room.to_owned(),
            founder: founder.map(str::to_owned),
        },
        CoreEvent::RoomModes {
            room,
            modes,
            key,
            limit,
        } => Moderation::Modes {
            room: room.to_owned(),
            modes: modes.to_owned(),
            key: key.map(str::to_owned),
            limit,
        },
        CoreEvent::Banned {
            room,
            list,
            mask,
            by,
            at,
            until,
        } => Moderation::Ban {
            room: room.to_owned(),
            list,
            ban: StoredBan {
                mask: mask.to_owned(),
                by: by.to_owned(),
                at,
                until,
            },
        },
        CoreEvent::ServerBanned {
            mask,
            by,
            at,
            until,
            reason,
        } => Moderation::ServerBan {
            ban: StoredBan {
                mask: mask.to_owned(),
                by: by.to_owned(),
                at,
                until,
            },
            reason: reason.to_owned(),
        },
        CoreEvent::RoomRemoved { room } => Moderation::Removed {
            room: room.to_owned(),
        },
        CoreEvent::ServerUnbanned { mask } => Moderation::ServerUnban {
            mask: mask.to_owned(),
        },
        CoreEvent::Unbanned { room, list, mask } => Moderation::Unban {
            room: room.to_owned(),
            list,
            mask: mask.to_owned(),
        },
        _ => return None,
    })
}

/// Whether `request` registers a name on the operators' list (`operators`, by key): refused,
/// so that nobody becomes an operator by registering a listed name first.
fn refuses_register(operators: &HashSet<String>, request: &AccountRequest) -> bool {
    matches!(request.ask(), AccountAsk::Register(_))
        && operators.contains(&crate::name_key(request.account().as_str()))
}

/// For a request of private messages, the key the other person's are kept under: their
/// account's if the core says they are here and identified, a nickname's if here and not,
/// and for someone not here, an account's if `registered` has the name.
fn private_peer_key(
    request: &chat_core::HistoryRequest,
    registered: &HashSet<String>,
) -> Option<String> {
    let chat_core::HistoryTarget::Private {
        peer, peer_account, ..
    } = request.target()
    else {
        return None;
    };
    let account =
        peer_account.unwrap_or_else(|| registered.contains(&crate::name_key(peer.as_str())));
    Some(crate::store::peer_key(peer.as_str(), account))
}
