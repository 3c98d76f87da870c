//! Cluster mode in the hub: this node's side of the nickname claims. The hub hands the [`Node`]
//! every `Output::Claim` and every arrival, rename and departure the core reports; the node
//! makes the Redis calls as tasks on the hub's executor, and their results come back to the
//! hub as [`Done`] on a channel its loop waits on. What the core must hear of them the hub
//! gets from [`Node::handle`] as a [`ForCore`].
//!
//! # What the node keeps
//!
//! - `local`: the nickname of each person here, as the core's events and its accepted grants
//!   tell it (what the node should hold in Redis);
//! - `held`: the nicknames Redis holds for this node, as far as it knows (a claim whose answer
//!   was lost counts as held: it may have been granted, and a release of a nick not ours does
//!   nothing);
//! - the calls waiting for their turn, and those in flight.
//!
//! After each renewal of the lease the two are compared: a nickname held that nobody here has
//! or waits for (its release failed, or was not sent) is released, and a person's nickname
//! that Redis no longer holds for the node (the lease had lapsed) is claimed again. So a call
//! that failed while Redis was out of reach is made again once it answers.
//!
//! # Order
//!
//! A release and then a claim of the same nick here must reach Redis in that order, or the
//! release would take back what the claim just got. The command connection alone does not
//! promise it: the calls are sent in the order they are first polled only while the
//! connection is up; a call waiting for the connection manager to reconnect is woken in an
//! order the crate does not promise, and a script Redis does not know (after its restart) is
//! sent a second time, after whatever went meanwhile. So the node orders its calls itself:
//! calls about the same nickname (lowercased) go one at a time, in the order they were asked
//! for; calls about different nicknames go together, up to [`MAX_IN_FLIGHT`], since their
//! order does not matter (each is one atomic script). A release is also skipped when its turn
//! comes if someone here has the nickname again, or waits for it: the claim then finds the
//! node holding it, and is granted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant as StdInstant};

use chat_core::claim::{ClaimAnswer, NickClaim};
use chat_core::{ConnectionId, Error, Event as CoreEvent, Nickname, PersonId};
use futures_lite::future;
use smol::channel::{Receiver, Sender};
use smol::{LocalExecutor, Task, Timer};

use super::{Claim, Cluster, ClusterError, Renewal};
use crate::log::{error, info, warn};

/// The most calls to Redis the node has in flight at once, besides the lease's renewal. They
/// share one connection, which pipelines them; a call past this waits in the node's queue.
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// The most calls waiting for their turn: enough to claim again every person's nickname at
/// once (one each) after the lease lapsed. Past it, a person's claim is answered "could not be
/// checked" at once, a release waits (the nick stays in `held`) for the next renewal to try it
/// again, and so does a claim made again after a lapse.
pub(crate) const MAX_WAITING: usize = crate::MAX_CLIENTS;

/// At shutdown, the most time spent giving the node's nicknames back: what is not given back
/// by then lapses with the lease (the node stops renewing it), at most a lease later.
pub(crate) const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);

/// A call's result, or something else the node reports to the hub; hand it to
/// [`Node::handle`].
#[derive(Debug)]
pub(crate) struct Done(Report);

#[derive(Debug)]
enum Report {
    /// The lease task renewed the lease, or failed to.
    Renewal(Result<Renewal, ClusterError>),
    /// A claim's answer.
    Claimed {
        job: Job,
        result: Result<Claim, ClusterError>,
    },
    /// A release's answer, for this nick (lowercased).
    Released {
        nick: String,
        result: Result<bool, ClusterError>,
    },
    /// A person's claim refused without asking Redis: too many calls wait.
    Refused(NickClaim),
}

/// What the core is to be told, from [`Node::handle`].
#[derive(Debug)]
pub(crate) enum ForCore {
    /// The answer to the claim: hand it to `handle_claim`, then the result to
    /// [`Node::answered`].
    Answer(NickClaim, ClaimAnswer),
    /// Another node holds `nick` now, which `conn` here goes by: taken there while this node's
    /// lease had lapsed.
    Lost {
        conn: ConnectionId,
        nick: String,
        owner: String,
    },
}

/// A call to make, about `key` (a nickname, lowercased).
#[derive(Debug)]
struct Job {
    key: String,
    /// The node's count of rejoins when it was asked for: a grant made under an older lease
    /// may have been dropped by the rejoin.
    epoch: u64,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A person here asked for a nickname: the core's claim, and when it came.
    Claim { claim: NickClaim, asked: StdInstant },
    /// A person here goes by this nickname, which Redis does not hold for the node (its lease
    /// had lapsed): claimed again. `tally`: one of those a rejoin asked for, counted in
    /// `Node::rejoining`.
    Reclaim {
        conn: ConnectionId,
        nick: String,
        tally: bool,
    },
    /// The nickname is no one's here any more: given back.
    Release,
}

/// How the claims made again after a rejoin went, logged once all are answered.
#[derive(Debug, Default)]
struct Rejoining {
    /// How many it claims again; `None` while it is queueing them.
    asked: Option<usize>,
    granted: usize,
    /// Taken by another node meanwhile.
    lost: usize,
    /// Not needed any more (the person left or took another name).
    gone: usize,
    /// Failed or not decided: tried again after the next renewal.
    failed: usize,
}

/// Since when Redis has not answered, and how many calls failed since.
#[derive(Debug)]
struct OutOfReach {
    since: StdInstant,
    failures: u64,
}

/// This node's nickname claims: its [`Cluster`] handle, its lease task, and the calls waiting
/// or in flight (see the module's docs).
pub(crate) struct Node {
    cluster: Cluster,
    executor: Rc<LocalExecutor<'static>>,
    /// Where tasks report; unbounded, but holds at most a result per call in flight, one
    /// renewal, and a refusal per claim waiting in the core (one per connection).
    reports: Sender<Done>,
    results: Receiver<Done>,
    /// Asks the lease task to renew now (one pending ask is enough).
    renew_now: Sender<()>,
    /// Renews the lease every third of it; dropped (so stopped) when the node leaves.
    lease_task: Option<Task<()>>,
    /// The core's `Config::claim_timeout`: a claim still waiting here after it has been
    /// answered by the core already, and is not sent.
    claim_timeout: Duration,
    /// Calls waiting for their turn, at most [`MAX_WAITING`].
    waiting: VecDeque<Job>,
    /// Calls in flight, at most [`MAX_IN_FLIGHT`], by nick: one at a time per nick.
    busy: HashSet<String>,
    /// People here by nickname (lowercased): who, and the nickname as they wrote it. At most
    /// one per connection.
    local: HashMap<String, (ConnectionId, String)>,
    /// The same by person: the key of `local` each goes by.
    names: HashMap<ConnectionId, String>,
    /// The nicknames Redis holds for the node, as far as it knows: at most one per person
    /// here, those on their way back, and those whose claim's answer was lost.
    held: HashSet<String>,
    /// Claims (a person's, or made again) waiting or in flight, by nick.
    claiming: HashMap<String, usize>,
    /// Releases waiting or in flight.
    releasing: HashSet<String>,
    /// People's nicknames another node took while the lease had lapsed: not claimed again.
    lost: HashSet<String>,
    /// How many times the node rejoined after a lapse.
    epoch: u64,
    /// A grant made under an older lease came back: compare again once the core knows it.
    sweep_due: bool,
    out_of_reach: Option<OutOfReach>,
    /// Claims refused since the queue filled, while it is still full.
    refusing: Option<u64>,
    /// Since the last rejoin, until every claim it made again is answered.
    rejoining: Option<Rejoining>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("cluster", &self.cluster)
            .field("waiting", &self.waiting.len())
            .field("in_flight", &self.busy.len())
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Starts renewing `cluster`'s lease on `executor`; claims wait at most `claim_timeout`
    /// (the core's) for their answer.
    pub(crate) fn new(
        cluster: Cluster,
        executor: Rc<LocalExecutor<'static>>,
        claim_timeout: Duration,
    ) -> Self {
        let (reports, results) = smol::channel::unbounded();
        let (renew_now, renew_asked) = smol::channel::bounded(1);
        let lease_task = executor.spawn(keep_lease(cluster.clone(), renew_asked, reports.clone()));
        Self {
            cluster,
            executor,
            reports,
            results,
            renew_now,
            lease_task: Some(lease_task),
            claim_timeout,
            waiting: VecDeque::new(),
            busy: HashSet::new(),
            local: HashMap::new(),
            names: HashMap::new(),
            held: HashSet::new(),
            claiming: HashMap::new(),
            releasing: HashSet::new(),
            lost: HashSet::new(),
            epoch: 0,
            sweep_due: false,
            out_of_reach: None,
            refusing: None,
            rejoining: None,
        }
    }

    /// Where the node's results arrive, for the hub to wait on.
    pub(crate) fn results(&self) -> Receiver<Done> {
        self.results.clone()
    }

    /// A person here asked for a nickname free here (`Output::Claim`): asks Redis, or answers
    /// "could not be checked" at once if [`MAX_WAITING`] calls wait already.
    pub(crate) fn claim(&mut self, claim: NickClaim) {
        let key = crate::name_key(claim.nick().as_str());
        // Counted until `answered`, refused or not.
        *self.claiming.entry(key.clone()).or_default() += 1;
        if self.waiting.len() >= MAX_WAITING {
            match &mut self.refusing {
                Some(refused) => *refused += 1,
                None => {
                    warn!(
                        "cluster: {MAX_WAITING} calls wait for Redis; nickname claims are \
                         answered \"could not be checked\" until fewer do"
                    );
                    self.refusing = Some(1);
                }
            }
            // Through the channel: the core is in the middle of a step now.
            let _ = self.reports.try_send(Done(Report::Refused(claim)));
            return;
        }
        let asked = StdInstant::now();
        self.queue(key, Kind::Claim { claim, asked });
    }

    /// Follows who goes by which nickname here, and gives back the nicknames no longer used:
    /// the old one of a rename (not a mere change of case), and a departed person's. Names
    /// that are not nicknames (`anonymous-N`) are not claimed, so never given back.
    pub(crate) fn event(&mut self, event: &CoreEvent<'_>) {
        match *event {
            CoreEvent::Arrived {
                person: PersonId::Local(conn),
                nick: name,
            }
            | CoreEvent::Renamed {
                person: PersonId::Local(conn),
                to: name,
                ..
            } => self.goes_by(conn, name),
            CoreEvent::Departed {
                person: PersonId::Local(conn),
                ..
            } => self.gone(conn),
            _ => {}
        }
    }

    /// The hub forgot `conn` (closed, disconnected, dropped): its nickname goes back. Besides
    /// `Departed`, since an IRC client that leaves before it has registered never arrived, so
    /// never departs, though it may have been granted a nickname.
    pub(crate) fn gone(&mut self, conn: ConnectionId) {
        if let Some(old) = self.names.remove(&conn) {
            self.drop_name(conn, old);
        }
    }

    /// Takes in a call's result: what the core is to be told of it, if anything.
    pub(crate) fn handle(&mut self, done: Done) -> Option<ForCore> {
        let for_core = match done.0 {
            Report::Renewal(result) => {
                self.renewed(result);
                None
            }
            Report::Refused(claim) => Some(ForCore::Answer(claim, ClaimAnswer::Unavailable)),
            Report::Claimed { job, result } => {
                self.busy.remove(&job.key);
                self.claimed(job, result)
            }
            Report::Released { nick, result } => {
                self.busy.remove(&nick);
                self.releasing.remove(&nick);
                match result {
                    Ok(_) => {
                        self.reached();
                        self.held.remove(&nick);
                    }
                    // Still held, as far as the node knows: released again after the next
                    // renewal.
                    Err(error) => self.failed(&error),
                }
                None
            }
        };
        if !matches!(for_core, Some(ForCore::Answer(..))) && std::mem::take(&mut self.sweep_due) {
            self.sweep(false);
        }
        self.pump();
        for_core
    }

    /// The core took `answer` to `claim` with `verdict`: a nickname granted to someone who no
    /// longer waits for it (their claim timed out, or they left) is given back.
    pub(crate) fn answered(
        &mut self,
        claim: &NickClaim,
        answer: ClaimAnswer,
        verdict: Result<(), Error>,
    ) {
        let key = crate::name_key(claim.nick().as_str());
        if answer == ClaimAnswer::Granted && verdict.is_ok() {
            // The person has it now, whether or not an event said so: an IRC client that has
            // not registered yet takes it unseen.
            self.goes_by(claim.conn(), claim.nick().as_str());
        }
        self.unclaim(&key);
        match verdict {
            Ok(()) | Err(Error::StaleClaim | Error::UnknownConnection(_)) => {}
            Err(error) => error!(
                "bug: answering the claim of {} ({answer:?}): {error}",
                claim.nick()
            ),
        }
        // Nobody here goes by it after all: a grant, or a claim whose answer was lost.
        if !self.wanted(&key) {
            self.release(key);
        }
        if std::mem::take(&mut self.sweep_due) {
            self.sweep(false);
        }
        self.pump();
    }

    /// Stops renewing the lease and gives back every nickname the node holds, waiting at most
    /// [`LEAVE_TIMEOUT`]: the server is stopping. Calls still in flight are abandoned.
    pub(crate) async fn leave(mut self) {
        drop(self.lease_task.take());
        let total = self.held.len();
        if total == 0 {
            return info!("cluster: left (no nickname to give back)");
        }
        // All at once: the connection pipelines them.
        let releases: Vec<Task<Result<bool, ClusterError>>> = self
            .held
            .drain()
            .map(|nick| {
                let cluster = self.cluster.clone();
                self.executor
                    .spawn(async move { cluster.release_nick(&nick).await })
            })
            .collect();
        let mut released = 0_usize;
        let mut failure = None;
        let in_time = future::or(
            async {
                for release in releases {
                    match release.await {
                        Ok(_) => released += 1,
                        Err(error) => failure = Some(error),
                    }
                }
                true
            },
            async {
                Timer::after(LEAVE_TIMEOUT).await;
                false
            },
        )
        .await;
        if released == total {
            info!("cluster: left, giving back the {total} nickname(s) it held");
        } else {
            warn!(
                "cluster: left, giving back {released} of the {total} nickname(s) it held ({}); \
                 the rest are free once its lease lapses, within {} s",
                match (in_time, failure) {
                    (_, Some(error)) => error.to_string(),
                    (false, None) => format!(
                        "Redis did not answer within {:.1} s",
                        LEAVE_TIMEOUT.as_secs_f64()
                    ),
                    (true, None) => "no reason given".to_owned(),
                },
                self.cluster.lease().as_secs_f64()
            );
        }
    }

    /// `conn` goes by `name`: if it is a nickname, the node should hold it; the one it went
    /// by before, unless that is the same but for case, goes back.
    fn goes_by(&mut self, conn: ConnectionId, name: &str) {
        let key = Nickname::new(name).is_ok().then(|| crate::name_key(name));
        let old = match &key {
            Some(key) => self.names.insert(conn, key.clone()),
            None => self.names.remove(&conn),
        };
        if let Some(old) = old
            && key.as_ref() != Some(&old)
        {
            self.drop_name(conn, old);
        }
        if let Some(key) = key {
            self.local.insert(key, (conn, name.to_owned()));
        }
    }

    /// `conn` no longer goes by `key`: given back.
    fn drop_name(&mut self, conn: ConnectionId, key: String) {
        if self
            .local
            .get(&key)
            .is_some_and(|(holder, _)| *holder == conn)
        {
            self.local.remove(&key);
            self.lost.remove(&key);
        }
        self.release(key);
    }

    /// Whether someone here goes by `key`, or waits for a claim of it.
    fn wanted(&self, key: &str) -> bool {
        self.local.contains_key(key) || self.claiming.contains_key(key)
    }

    fn unclaim(&mut self, key: &str) {
        if let Some(count) = self.claiming.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                self.claiming.remove(key);
            }
        }
    }

    /// Gives `key` back, if the node holds it and is not giving it back already. With the
    /// queue full it stays held, and the next renewal's comparison tries again.
    fn release(&mut self, key: String) {
        if !self.held.contains(&key)
            || self.releasing.contains(&key)
            || self.waiting.len() >= MAX_WAITING
        {
            return;
        }
        self.releasing.insert(key.clone());
        self.queue(key, Kind::Release);
    }

    fn queue(&mut self, key: String, kind: Kind) {
        self.waiting.push_back(Job {
            key,
            epoch: self.epoch,
            kind,
        });
        self.pump();
    }

    /// Starts the calls whose turn it is: the oldest first, one at a time per nick, at most
    /// [`MAX_IN_FLIGHT`].
    fn pump(&mut self) {
        // Nicks with an older call still waiting, which must go first.
        let mut behind: HashSet<String> = HashSet::new();
        let mut at = 0;
        while self.busy.len() < MAX_IN_FLIGHT && at < self.waiting.len() {
            let key = &self.waiting[at].key;
            if self.busy.contains(key) || behind.contains(key) {
                behind.insert(key.clone());
                at += 1;
                continue;
            }
            if let Some(job) = self.waiting.remove(at) {
                self.start(job);
            }
        }
        if self.waiting.len() < MAX_WAITING
            && let Some(refused) = self.refusing.take()
        {
            info!("cluster: nickname claims are sent to Redis again; {refused} were refused");
        }
    }

    /// Sends `job`'s call, unless it is no longer needed.
    fn start(&mut self, job: Job) {
        let key = job.key.clone();
        let needed = match &job.kind {
            // The core has answered it "could not be checked" itself by now.
            Kind::Claim { asked, .. } => asked.elapsed() < self.claim_timeout,
            // Not if held again meanwhile, or if they left or took another name.
            Kind::Reclaim { conn, .. } => {
                !self.held.contains(&key)
                    && self
                        .local
                        .get(&key)
                        .is_some_and(|(holder, _)| holder == conn)
            }
            Kind::Release => !self.wanted(&key) && self.held.contains(&key),
        };
        if !needed {
            match job.kind {
                Kind::Release => {
                    self.releasing.remove(&key);
                }
                Kind::Claim { .. } => self.unclaim(&key),
                Kind::Reclaim { tally, .. } => {
                    self.unclaim(&key);
                    self.tally(tally, |rejoining| &mut rejoining.gone);
                }
            }
            return;
        }
        let cluster = self.cluster.clone();
        let reports = self.reports.clone();
        let report = async move {
            match &job.kind {
                Kind::Claim { claim, .. } => {
                    let result = cluster.claim_nick(claim.nick().as_str(), None).await;
                    Report::Claimed { job, result }
                }
                Kind::Reclaim { nick, .. } => {
                    let result = cluster.claim_nick(nick, None).await;
                    Report::Claimed { job, result }
                }
                Kind::Release => {
                    let result = cluster.release_nick(&job.key).await;
                    Report::Released {
                        nick: job.key,
                        result,
                    }
                }
            }
        };
        self.executor
            .spawn(async move {
                // Unbounded: never waits, and fails only once the node is gone.
                let _ = reports.try_send(Done(report.await));
            })
            .detach();
        self.busy.insert(key);
    }

    /// A claim's answer: for a person's claim, the core's answer; for one made again, whether
    /// the person lost their nickname to another node.
    fn claimed(&mut self, job: Job, result: Result<Claim, ClusterError>) -> Option<ForCore> {
        let Job { key, epoch, kind } = job;
        let answer = match &result {
            Ok(Claim::Granted) => ClaimAnswer::Granted,
            // Held by this node already: the core asks only for nicks free here, so the node's
            // own holding is a leftover (a change of case, a release not yet made).
            Ok(Claim::Taken { owner }) if owner == self.cluster.node_id() => ClaimAnswer::Granted,
            Ok(Claim::Taken { .. }) => ClaimAnswer::Taken,
            Ok(Claim::LeaseLost) | Err(_) => ClaimAnswer::Unavailable,
        };
        let granted = answer == ClaimAnswer::Granted;
        match &result {
            Ok(Claim::LeaseLost) => {
                self.reached();
                // The next renewal rejoins, and claims everyone's nicks again.
                let _ = self.renew_now.try_send(());
            }
            Ok(_) => self.reached(),
            Err(error) => self.failed(error),
        }
        if granted {
            if epoch == self.epoch {
                self.held.insert(key.clone());
            } else {
                // Granted under the lease before the last rejoin, which may have dropped it:
                // not counted as held, so that it is claimed again.
                self.sweep_due = true;
            }
        }
        match kind {
            Kind::Claim { claim, .. } => {
                if result.is_err() {
                    // It may have been granted, the answer lost: given back unless the person
                    // gets it after all (see `answered`).
                    self.held.insert(key);
                }
                Some(ForCore::Answer(claim, answer))
            }
            Kind::Reclaim { conn, nick, tally } => {
                self.unclaim(&key);
                if granted && !self.wanted(&key) {
                    self.tally(tally, |rejoining| &mut rejoining.gone);
                    self.release(key);
                    return None;
                }
                match result {
                    _ if granted => {
                        self.tally(tally, |rejoining| &mut rejoining.granted);
                        None
                    }
                    Ok(Claim::Taken { owner })
                        if self
                            .local
                            .get(&key)
                            .is_some_and(|(holder, _)| *holder == conn) =>
                    {
                        self.tally(tally, |rejoining| &mut rejoining.lost);
                        self.lost.insert(key);
                        Some(ForCore::Lost { conn, nick, owner })
                    }
                    // Not decided: the next renewal's comparison tries again.
                    _ => {
                        self.tally(tally, |rejoining| &mut rejoining.failed);
                        None
                    }
                }
            }
            Kind::Release => None,
        }
    }

    /// The lease task's report.
    fn renewed(&mut self, result: Result<Renewal, ClusterError>) {
        match result {
            Ok(Renewal::Renewed) => self.reached(),
            Ok(Renewal::Rejoined) => {
                self.reached();
                info!(
                    "cluster: this node's lease had lapsed, and Redis dropped the nicknames it \
                     held; claiming again the {} nickname(s) of the people here",
                    self.local.len()
                );
                self.epoch += 1;
                self.held.clear();
                self.lost.clear();
                self.rejoining = Some(Rejoining::default());
                let asked = self.sweep(true);
                if let Some(rejoining) = &mut self.rejoining {
                    rejoining.asked = Some(asked);
                }
                return self.tally(false, |rejoining| &mut rejoining.granted);
            }
            Err(error) => return self.failed(&error),
        }
        self.sweep(false);
    }

    /// Counts an answer to a claim made again after the last rejoin (if `tally`), and logs
    /// how they went once none is left.
    fn tally(&mut self, tally: bool, count: impl FnOnce(&mut Rejoining) -> &mut usize) {
        let Some(rejoining) = &mut self.rejoining else {
            return;
        };
        if tally {
            *count(rejoining) += 1;
        }
        let answered = rejoining.granted + rejoining.lost + rejoining.gone + rejoining.failed;
        if rejoining.asked.is_some_and(|asked| answered >= asked) {
            info!(
                "cluster: nicknames claimed again: {} granted, {} taken by other nodes, {} no \
                 longer used, {} not decided (tried again after the next renewal)",
                rejoining.granted, rejoining.lost, rejoining.gone, rejoining.failed
            );
            self.rejoining = None;
        }
    }

    /// Compares what the node holds with what the people here go by (see the module's
    /// docs), and queues the calls that make them agree, as many as the queue takes. Returns
    /// how many nicknames it claims again; `tally` counts them for the rejoin's log.
    fn sweep(&mut self, tally: bool) -> usize {
        let leftovers: Vec<String> = self
            .held
            .iter()
            .filter(|key| !self.wanted(key) && !self.releasing.contains(*key))
            .cloned()
            .collect();
        for key in leftovers {
            self.release(key);
        }
        let missing: Vec<(String, ConnectionId, String)> = self
            .local
            .iter()
            .filter(|(key, _)| {
                !self.held.contains(*key)
                    && !self.claiming.contains_key(*key)
                    && !self.lost.contains(*key)
            })
            .map(|(key, (conn, nick))| (key.clone(), *conn, nick.clone()))
            .collect();
        let mut queued = 0;
        for (key, conn, nick) in missing {
            if self.waiting.len() >= MAX_WAITING {
                break;
            }
            *self.claiming.entry(key.clone()).or_default() += 1;
            self.queue(key, Kind::Reclaim { conn, nick, tally });
            queued += 1;
        }
        queued
    }

    /// A call failed: the first failure in a row is logged.
    fn failed(&mut self, error: &ClusterError) {
        match &mut self.out_of_reach {
            Some(out) => out.failures += 1,
            None => {
                error!("cluster: Redis out of reach: {error}; retrying");
                self.out_of_reach = Some(OutOfReach {
                    since: StdInstant::now(),
                    failures: 1,
                });
            }
        }
    }

    /// A call succeeded: if the last failed, that is logged.
    fn reached(&mut self) {
        if let Some(out) = self.out_of_reach.take() {
            info!(
                "cluster: Redis answers again, after {:.1} s out of reach and {} failed call(s)",
                out.since.elapsed().as_secs_f64(),
                out.failures
            );
        }
    }
}

/// Renews `cluster`'s lease every third of it (counted from the start of the last renewal),
/// or at once when asked, and reports each result.
async fn keep_lease(cluster: Cluster, renew_asked: Receiver<()>, reports: Sender<Done>) {
    let interval = cluster.renew_interval();
    let mut next = StdInstant::now() + interval;
    loop {
        // False once the node is gone (the sender dropped).
        let go_on = future::or(
            async {
                Timer::at(next).await;
                true
            },
            async { renew_asked.recv().await.is_ok() },
        )
        .await;
        if !go_on {
            return;
        }
        next = StdInstant::now() + interval;
        let result = cluster.renew_lease().await;
        if reports.try_send(Done(Report::Renewal(result))).is_err() {
            return;
        }
    }
}
