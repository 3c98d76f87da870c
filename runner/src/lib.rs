//! `chat-runner`'s server: the `chat-core` state machine driven over real sockets. The
//! protocol lives in the core; this crate only moves bytes and time between sockets and the
//! core, on one thread with smol. The `chat-runner` binary reads its command line into
//! [`Settings`] and calls [`serve`]; see docs/ARCHITECTURE.md for how the parts fit.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use chat_core::{Config, Instant};
//! use chat_runner::{Settings, SyncMode, listen, serve};
//!
//! let listener = listen("127.0.0.1:9999".parse()?)?;
//! let settings = Settings {
//!     core: Config::default(),
//!     lag_limit: 256,
//!     queue_limit: 1024,
//!     stall_timeout: Some(Duration::from_secs(60)),
//!     max_per_address: 128,
//!     flush_interval: chat_runner::DEFAULT_FLUSH_INTERVAL,
//!     record: None,
//!     data: Some("chat-data".into()),
//!     history_keep: 10_000,
//!     private_history: Duration::from_secs(30 * 24 * 3600),
//!     sync: SyncMode::Normal,
//!     // A server on its own; `Some(ClusterSettings { .. })` joins other nodes through Redis.
//!     cluster: None,
//!     // `Some(addr)` serves Prometheus metrics at http://addr/metrics.
//!     metrics: None,
//!     // `Some(path)` reads the message of the day from this file, and again on SIGHUP.
//!     motd: None,
//!     // Accounts whose people keep order in every room once identified (`--oper`).
//!     operators: Vec::new(),
//!     // Operators' accounts made at start with a password hash (`--oper-file`).
//!     operator_accounts: Vec::new(),
//! };
//! // Prints "chat-runner listening on 127.0.0.1:9999", serves until Ctrl-C or SIGTERM, then
//! // tells everyone and gives each connection up to 2 s to take its last lines.
//! serve(listener, settings)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod accounts;
mod cluster;
mod connection;
mod core_box;
mod event;
mod hub;
mod log;
mod metrics;
mod pacer;
mod record;
mod slow;
mod socket;
mod stats;
mod store;
mod tls;

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant as StdInstant};

use async_signal::{Signal, Signals};
use chat_core::motd::{Motd, MotdCut};
use chat_core::{Config, Instant};
use futures_lite::{StreamExt, future};
use smol::channel::Sender;
use smol::{Async, LocalExecutor, Timer};

use crate::cluster::{Cluster, Node, Relay};
use crate::event::{Event, Stream};
use crate::hub::{Clock, Hub, Policy};
use crate::log::{error, info, warn};
use crate::record::{RecordedCore, Recorder};
use crate::slow::SlowReaders;

pub use crate::accounts::{OperatorAccount, hash_password, read_operator_file};
pub use crate::core_box::{DEFAULT_MAX_CLIENTS, MAX_CLIENTS};
pub use crate::log::{LogFormat, LogLevel, log_level, set_log_format, set_log_level};
pub use crate::pacer::DEFAULT_FLUSH_INTERVAL;
pub use crate::record::{ReplayError, Replayed, print_replay, replay};
pub use crate::store::SyncMode;
#[doc(hidden)]
pub use crate::store::measure_commits;
pub use crate::tls::{Certificate, CertificateError, DEFAULT_HANDSHAKE_TIMEOUT, TlsListener};

/// Connections the kernel may hold waiting to be accepted.
const LISTEN_BACKLOG: i32 = 4096;

/// How many events may wait for the hub before readers and the accept loop wait in turn (a
/// reader whose event finds the queue full keeps it and waits for room, reading no more). The
/// queue's slots are allocated and written when the server starts, so the bound is memory an
/// empty server holds: a slot is as large as the largest [`Event`] and a stamp, 64 bytes (the
/// large and rare ones boxed), so 64 KB for 1,024; until 2026-12-03 it was 4,096 slots of 144
/// bytes, 590 KB (docs/PERFORMANCE.md, "Memory to the goals").
const EVENT_QUEUE: usize = 1024;

/// How the server behaves: the core's configuration and the runner's own bounds. The binary
/// fills it from its command line, which checks the ranges given here.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The protocol's settings, handed to the core (its `max_clients`, at most [`MAX_CLIENTS`], is the
    /// capacity of the core's table).
    pub core: Config,
    /// Past this many messages waiting for a client, room messages are skipped (and counted)
    /// for it (`--lag-limit`): at least 1, at most `queue_limit`.
    pub lag_limit: usize,
    /// A private message that would bring a client's queue to this many is refused, and a
    /// client whose queue reaches it with replies is dropped (`--queue-limit`): at least 1.
    pub queue_limit: usize,
    /// A client nothing could be written to for this long is dropped (`--stall-timeout`);
    /// `None` never drops one.
    pub stall_timeout: Option<Duration>,
    /// The most connections from one IP address (`--max-per-ip`); 0 for no limit.
    pub max_per_address: u32,
    /// The most time lines wait to be written together (`--flush-interval`); zero writes every
    /// line at once.
    pub flush_interval: Duration,
    /// Write every input the core receives to this file (`--record`), for [`replay`].
    pub record: Option<PathBuf>,
    /// The store's directory (`--data`), made if missing; `None` keeps history in memory only
    /// (`--no-data`). See docs/STORAGE.md.
    pub data: Option<PathBuf>,
    /// The most lines the store keeps per room (`--history-keep`): at least 1.
    pub history_keep: u64,
    /// How long the store keeps private messages for the identified accounts that sent or
    /// received them (`--private-history-days`); zero keeps none.
    pub private_history: Duration,
    /// How the store syncs its commits to the disk (`--sync`): what a power loss may lose.
    /// No effect in memory (`data: None`).
    pub sync: SyncMode,
    /// Cluster mode (`--cluster`): share nicknames with the other nodes on one Redis. `None`
    /// runs a server on its own.
    pub cluster: Option<ClusterSettings>,
    /// Serve the server's metrics over HTTP at `/metrics` on this address (`--metrics`), in
    /// the Prometheus text format (OpenMetrics if asked for); `None` serves none. Port 0
    /// picks a free port: the log says which (`metrics on http://ADDR/metrics`). See
    /// docs/METRICS.md.
    pub metrics: Option<SocketAddr>,
    /// The message of the day (`--motd`): read from this file at start (see [`read_motd`])
    /// and again on SIGHUP (a file that cannot be read then is logged, and the old message
    /// kept); `None` keeps the core's built-in one.
    pub motd: Option<PathBuf>,
    /// The accounts whose people are server operators (`--oper`): valid nicknames, at most
    /// [`chat_core::account::MAX_OPERATORS`] (checked by `serve`, which refuses others with
    /// [`Error::Operators`]). In cluster mode the accounts are the cluster's; the list is
    /// each node's own.
    pub operators: Vec<String>,
    /// Server operators' accounts made at start with these password hashes, or given them if
    /// they exist (`--oper-file`, read by [`read_operator_file`]). Their names should be in
    /// [`operators`](Self::operators) too: only those are operators.
    pub operator_accounts: Vec<OperatorAccount>,
}

/// The most bytes of a message-of-the-day file read; the core keeps far less (see
/// [`chat_core::motd`]), so a huge file is not read whole only to be cut.
const MOTD_FILE_BYTES: u64 = 64 * 1024;

/// Reads a message-of-the-day file (UTF-8 text) into what the core keeps of it, with what was
/// left out.
pub fn read_motd(path: &Path) -> io::Result<(Motd, MotdCut)> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MOTD_FILE_BYTES)
        .read_to_end(&mut bytes)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))?;
    Ok(Motd::new(&text))
}

/// Reads the message of the day from `path` and logs what it got (`what`: "read" at start,
/// "reloaded" on SIGHUP), or why it could not.
fn load_motd(path: &Path, what: &str) -> Option<Motd> {
    match read_motd(path) {
        Ok((motd, cut)) => {
            info!("motd {what} ({} lines) from {}", motd.len(), path.display());
            if !cut.is_none() {
                info!(
                    "motd: {} line(s) past the first {} left out, {} line(s) cut to {} bytes",
                    cut.lines_dropped,
                    chat_core::motd::MAX_MOTD_LINES,
                    cut.lines_cut,
                    chat_core::motd::MAX_MOTD_LINE_BYTES
                );
            }
            Some(motd)
        }
        Err(error) => {
            warn!("motd not {what}: {}: {error}", path.display());
            None
        }
    }
}

/// What reading the configuration again on SIGHUP found (see [`Reloader`]).
#[derive(Debug)]
pub struct Reload {
    /// The settings to run with from now on. Only what can change on a running server is
    /// taken from them: the core's [`Limits`](chat_core::Limits), `lag_limit`, `queue_limit`,
    /// `stall_timeout` (for connections made from now on), `max_per_address`,
    /// `flush_interval` and `motd` (read again from this file, or the built-in message if
    /// `None`). The rest was fixed at start and is not looked at.
    pub settings: Settings,
    /// What changed and was applied, one entry per setting (`max-per-ip: 128 -> 2`): each is
    /// logged.
    pub changed: Vec<String>,
    /// What changed but takes a restart, one entry per setting, as in `changed`: each is
    /// logged as not applied.
    pub restart: Vec<String>,
    /// What changed in the file but is set by a flag given at start, which wins: each is
    /// logged as not applied.
    pub overridden: Vec<String>,
}

/// Reads the configuration again, on each SIGHUP (see [`serve_reloading`]): the settings to
/// run with and what changed, or why the configuration cannot be used (logged; the old one
/// stays).
pub type Reloader = Box<dyn FnMut() -> Result<Reload, String>>;

/// Cluster mode: several servers (nodes) share one chat through one Redis. So far a nickname
/// is one person's across every node: [`serve`] turns on the core's nickname claims
/// (`Config::nick_claims`) and answers them from Redis. See docs/CLUSTER.md.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The Redis every node uses (`--cluster`): `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`,
    /// or `redis+unix:///PATH`. Shown in messages without its password.
    pub url: String,
    /// This node's name (`--node`): 1 to 32 ASCII letters, digits, `-`, `_` and `.`. The node
    /// is known by it and a suffix new at each start, so a restarted node never takes its
    /// previous run's nicknames for its own.
    pub node: String,
    /// How long the node's nicknames outlive it (`--lease`): it renews its lease every third
    /// of this, and a node that stops renewing (it died, or lost Redis) loses its nicknames
    /// to the other nodes this long after its last renewal. Within
    /// [`LEASE_RANGE`](Self::LEASE_RANGE); [`DEFAULT_LEASE`](Self::DEFAULT_LEASE) unless told.
    pub lease: Duration,
}

impl fmt::Debug for ClusterSettings {
    /// Without the URL's password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("url", &cluster::url_for_display(&self.url))
            .field("node", &self.node)
            .field("lease", &self.lease)
            .finish()
    }
}

impl ClusterSettings {
    /// The lease unless told otherwise: 15 s.
    pub const DEFAULT_LEASE: Duration = cluster::DEFAULT_LEASE;

    /// The shortest and longest lease, 1 s to 300 s. Shorter, a lease would lapse on a busy
    /// Redis; longer, a dead node's nicknames would stay taken long after it died.
    pub const LEASE_RANGE: RangeInclusive<Duration> = cluster::LEASE_RANGE;

    /// Checks the settings as [`serve`] would use them, without connecting: the URL's form,
    /// the node's name and the lease's range.
    pub fn check(&self) -> Result<(), ClusterSettingsError> {
        cluster::check_url(&self.url).map_err(ClusterSettingsError::Url)?;
        cluster::check_node_name(&self.node).map_err(ClusterSettingsError::Node)?;
        if !Self::LEASE_RANGE.contains(&self.lease) {
            return Err(ClusterSettingsError::Lease(self.lease));
        }
        Ok(())
    }
}

/// What [`ClusterSettings::check`] found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterSettingsError {
    /// `url` is not a Redis URL: why.
    Url(String),
    /// `node` is not a node name: why.
    Node(String),
    /// `lease` is outside [`ClusterSettings::LEASE_RANGE`].
    Lease(Duration),
}

impl fmt::Display for ClusterSettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(why) => write!(f, "not a Redis URL: {why}"),
            Self::Node(why) => write!(f, "not a node name: {why}"),
            Self::Lease(lease) => write!(
                f,
                "the lease must be from {} to {} s, not {} s",
                ClusterSettings::LEASE_RANGE.start().as_secs(),
                ClusterSettings::LEASE_RANGE.end().as_secs(),
                lease.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for ClusterSettingsError {}

/// Where [`serve_on`] listens: a plain port, a TLS port, or both.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The plain port (`--listen`), for `nc`, telnet, IRC clients and the client without
    /// `--tls`.
    pub plain: Option<TcpListener>,
    /// The TLS port (`--tls-listen`): every dialect, the same as the plain port, inside TLS.
    pub tls: Option<TlsListener>,
}

/// Why [`serve`] could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The listener could not be made non-blocking or registered with the reactor.
    Listener(io::Error),
    /// Ctrl-C and SIGTERM could not be caught.
    Signals(io::Error),
    /// The recording (`--record`) could not be created.
    Record(PathBuf, io::Error),
    /// The store (`--data`) could not be opened: the message names the file or directory.
    Store(String),
    /// Cluster mode could not start: the message says what could not be reached, or what
    /// does not go with it.
    Cluster(String),
    /// The metrics address (`--metrics`) could not be bound.
    Metrics(SocketAddr, io::Error),
    /// The list of server operators (`--oper`) is not one.
    Operators(chat_core::account::OperatorsError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listener(error) => write!(f, "cannot listen: {error}"),
            Self::Signals(error) => write!(f, "cannot handle signals: {error}"),
            Self::Record(path, error) => {
                write!(f, "cannot record to {}: {error}", path.display())
            }
            Self::Store(message) | Self::Cluster(message) => f.write_str(message),
            Self::Metrics(addr, error) => write!(f, "cannot serve metrics on {addr}: {error}"),
            Self::Operators(error) => write!(f, "--oper: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Listener(error)
            | Self::Signals(error)
            | Self::Record(_, error)
            | Self::Metrics(_, error) => Some(error),
            Self::Operators(error) => Some(error),
            Self::Store(_) | Self::Cluster(_) => None,
        }
    }
}

/// Binds a listener on `addr` with a listen backlog of 4096 (the kernel caps it at
/// `net.core.somaxconn`): std's 128 overflows in a burst of connections, which then wait for
/// SYN retries (a second or more).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    rustix::net::listen(&listener, LISTEN_BACKLOG)?;
    Ok(listener)
}

/// Serves on `listener` until Ctrl-C or SIGTERM, then tells everyone the server is shutting
/// down, gives every connection up to 2 s to take its last lines, and returns.
///
/// Before serving it catches SIGINT and SIGTERM, raises the process's soft limit on open files
/// to the hard limit (so that it can hold as many of its `max_clients` connections as the
/// system allows), joins the cluster if [`Settings::cluster`] says so (waiting at most 5 s for
/// Redis), builds the core, and prints `chat-runner listening on ADDR` on stdout (tests and
/// scripts read the port from it). The operator log goes to stderr. Everything runs on the
/// calling thread.
pub fn serve(listener: TcpListener, settings: Settings) -> Result<(), Error> {
    serve_on(
        Listeners {
            plain: Some(listener),
            tls: None,
        },
        settings,
    )
}

/// Serves as [`serve`] does, on a plain listener, a TLS one, or both (at least one). A TLS
/// connection is handled like a plain one once its handshake is done. Before the plain
/// `chat-runner listening on ADDR` line it prints `chat-runner listening for TLS on ADDR` on
/// stdout; with no plain listener that line is the only one. SIGHUP reloads the TLS
/// certificate and key from their files.
pub fn serve_on(listeners: Listeners, settings: Settings) -> Result<(), Error> {
    serve_reloading(listeners, settings, None)
}

/// Serves as [`serve_on`] does; on SIGHUP, before the TLS certificate and the message of the
/// day are read again, `reload` (if given) reads the configuration again, and what it says
/// changed is logged (one line each) and applied, what takes a restart is logged as not
/// applied, and a configuration it refuses is logged and the old one kept.
pub fn serve_reloading(
    listeners: Listeners,
    settings: Settings,
    reload: Option<Reloader>,
) -> Result<(), Error> {
    let listener = listeners
        .plain
        .map(Async::new)
        .transpose()
        .map_err(Error::Listener)?;
    let tls = match listeners.tls {
        Some(tls) => {
            let bound = tls.listener.local_addr().map_err(Error::Listener)?;
            let listener = Async::new(tls.listener).map_err(Error::Listener)?;
            Some((
                listener,
                bound,
                tls::Current::new(tls.certificate),
                tls.handshake_timeout,
            ))
        }
        None => None,
    };
    if listener.is_none() && tls.is_none() {
        return Err(Error::Listener(io::Error::other(
            "neither a plain nor a TLS listener",
        )));
    }
    let signals = Signals::new([Signal::Int, Signal::Term, Signal::Hup]).map_err(Error::Signals)?;
    let bound = listener
        .as_ref()
        .map(|listener| listener.get_ref().local_addr())
        .transpose()
        .map_err(Error::Listener)?;
    let tls_bound = tls.as_ref().map(|tls| tls.1);
    let listening = match (bound, tls_bound) {
        (Some(plain), Some(tls)) => format!("listening on {plain} and for TLS on {tls}"),
        (Some(plain), None) => format!("listening on {plain}"),
        (None, Some(tls)) => format!("listening for TLS on {tls}"),
        (None, None) => unreachable!("checked above"),
    };
    let metrics = match settings.metrics {
        Some(addr) => {
            let listener = metrics::bind(addr).map_err(|error| Error::Metrics(addr, error))?;
            let bound = listener
                .get_ref()
                .local_addr()
                .map_err(|error| Error::Metrics(addr, error))?;
            Some((listener, bound))
        }
        None => None,
    };
    let descriptors = raise_descriptor_limit(settings.core.max_clients);
    // Before the store: a node that cannot join leaves nothing behind.
    let cluster = match &settings.cluster {
        Some(cluster) => {
            if settings.record.is_some() {
                return Err(Error::Cluster(
                    "cannot record in cluster mode: a recording does not hold the cluster's \
                     answers to nickname claims"
                        .to_owned(),
                ));
            }
            Some(join_cluster(cluster)?)
        }
        None => None,
    };
    // In cluster mode a nickname free here is claimed from the other nodes before it is given,
    // and a room line waits for its place in the room's order across the nodes; without a
    // cluster nobody would answer either.
    // Accounts are kept in the data directory, in memory, or in cluster mode in the cluster's
    // Redis, where every node finds them.
    let config = settings
        .core
        .with_nick_claims(cluster.is_some())
        .with_relayed_lines(cluster.is_some())
        .with_accounts(true);
    // The core's clock reads Unix time in milliseconds: the times on lines are real ones.
    let clock = Clock::start();
    let start = clock.start_instant();
    let place = match &settings.data {
        Some(dir) => store::Place::Directory(dir.clone()),
        None => store::Place::Memory,
    };
    let holder = format!(
        "pid {}, {listening}, started at Unix time {}",
        std::process::id(),
        start.as_millis() / 1000
    );
    let (store, restored) = store::Store::open(
        &place,
        settings.history_keep,
        settings.private_history,
        &holder,
        settings.sync,
    )
    .map_err(|error| Error::Store(error.to_string()))?;
    let recorder = match &settings.record {
        Some(path) => Some(
            Recorder::create(path, &config, start)
                .map_err(|error| Error::Record(path.clone(), error))?,
        ),
        None => None,
    };
    let mut core = RecordedCore::new(core_box::new_core(config, start), recorder);
    if let Some(path) = &settings.motd {
        // Checked by the binary before anything was bound; should it fail now, the log says
        // so and the built-in message stays.
        core.set_motd(start, load_motd(path, "read"));
    }
    chat_core::account::Operators::new(settings.operators.iter().map(String::as_str))
        .map_err(Error::Operators)?;
    restore(&mut core, start, &restored);
    forget_startup_peak();
    match &settings.data {
        Some(dir) => info!(
            "history in {} ({}): {} room(s) kept, {} line(s), the last numbered {}; \
             {} topic(s); up to {} lines per room",
            dir.join(store::DATABASE_FILE).display(),
            // As the database reads it back, not only as asked.
            match store.sync_mode().unwrap_or(Ok(settings.sync)) {
                Ok(mode) => format!("--sync {mode}"),
                Err(value) => format!("synchronous={value}"),
            },
            restored.rooms,
            restored.lines,
            restored.last_seq,
            restored.topics.len(),
            settings.history_keep
        ),
        None => info!(
            "history in memory only (--no-data): gone when the server stops; up to {} lines \
             per room",
            settings.history_keep
        ),
    }

    if let Some((_, bound)) = &metrics {
        // Tests read the port from this line.
        info!("metrics on http://{bound}/metrics");
    }
    // Tests and scripts read this line to learn the port.
    // A closed stdout is no reason to stop serving, hence no println!.
    let mut stdout = io::stdout();
    if let Some(tls) = tls_bound {
        let _ = writeln!(stdout, "chat-runner listening for TLS on {tls}");
    }
    if let Some(bound) = bound {
        let _ = writeln!(stdout, "chat-runner listening on {bound}");
    }
    let _ = stdout.flush();
    if let Some((_, _, current, timeout)) = &tls {
        info!(
            "TLS certificate from {} and {}; handshake timeout {} s; SIGHUP reloads them",
            current.cert_path().display(),
            current.key_path().display(),
            timeout.as_secs_f64()
        );
    }
    info!(
        "{listening}; up to {} connections ({descriptors}), {} per address, \
         queue limit {} messages, silence timeout {}, flood limit {}",
        config.max_clients,
        match settings.max_per_address {
            0 => "any number".to_owned(),
            most => format!("{most}"),
        },
        settings.queue_limit,
        match config.silence_timeout {
            Some(timeout) => format!("{} s", timeout.as_secs()),
            None => "off".to_owned(),
        },
        match config.flood_limit {
            Some(limit) => format!("{} lines then {}/s", limit.burst, limit.per_second),
            None => "off".to_owned(),
        }
    );

    let executor = Rc::new(LocalExecutor::new());
    let (events, incoming) = smol::channel::bounded(EVENT_QUEUE);
    let mut following = None;
    let cluster = cluster.map(|cluster| {
        let mut relay = Relay::new(
            cluster.clone(),
            executor.clone(),
            restored.last_in_room.clone(),
        );
        following = Some(relay.when_following());
        // The lobby is always here (no room is made for it), and the topics this node kept
        // may have changed while it was away.
        relay.room_created(chat_core::LOBBY);
        for topic in &restored.topics {
            relay.room_created(&topic.room);
        }
        (
            Node::new(cluster.clone(), executor.clone(), config.claim_timeout),
            relay,
            cluster::ModerationSharer::start(cluster, &executor, events.clone()),
        )
    });
    if let Some(settings) = &settings.cluster {
        // Accounts made and server bans set on other nodes, heard on a thread of its own.
        cluster::listen_for_news(&settings.url, events.clone()).map_err(Error::Cluster)?;
    }
    let accounts = if config.accounts {
        let shared = settings
            .cluster
            .as_ref()
            .map(|cluster| (cluster.url.as_str(), cluster.node.as_str()));
        let (accounts, registered) =
            accounts::Accounts::start(&place, shared, &settings.operator_accounts, events.clone())
                .map_err(match shared {
                    Some(_) => Error::Cluster,
                    None => Error::Store,
                })?;
        info!(
            "accounts: {} registered{}; a registered nickname must be proven within {} s",
            registered.len(),
            if shared.is_some() {
                " in the cluster"
            } else {
                ""
            },
            config.nick_grace.as_secs()
        );
        Some((accounts, registered))
    } else {
        None
    };
    let mut hub = Hub::new(
        core,
        executor.clone(),
        events.clone(),
        Policy {
            slow: SlowReaders {
                lag_limit: settings.lag_limit,
                queue_limit: settings.queue_limit,
                stall_timeout: settings.stall_timeout,
            },
            max_per_address: settings.max_per_address,
            flush_interval: settings.flush_interval,
            keep_private: !settings.private_history.is_zero(),
        },
        clock,
        hub::Keepers {
            store,
            cluster,
            accounts,
        },
    );
    hub.set_operators(&settings.operators);
    let current = tls.as_ref().map(|tls| tls.2.clone());
    let plain_loop = {
        let events = events.clone();
        async move {
            match listener {
                Some(listener) => accept_loop(listener, events).await,
                None => future::pending().await,
            }
        }
    };
    let tls_loop = {
        let (events, executor) = (events.clone(), executor.clone());
        async move {
            match tls {
                Some((listener, _, current, timeout)) => {
                    tls::accept_loop(listener, current, timeout, executor, events).await;
                }
                None => future::pending().await,
            }
        }
    };
    // One task for both loops: shutdown stops them (and closes both listeners) together. In
    // cluster mode they start once the node hears every room's lines (clients that connect
    // meanwhile wait in the listen queue), or after FOLLOWING_WAIT with a warning.
    let accepting = executor.spawn(async move {
        if let Some(following) = following {
            let heard = future::or(async { following.recv().await.is_ok() }, async {
                Timer::after(FOLLOWING_WAIT).await;
                false
            })
            .await;
            if !heard {
                warn!(
                    "cluster: not yet subscribed to the rooms' lines after {} s; accepting \
                     connections anyway (a line said in a room just joined may show only in \
                     its history)",
                    FOLLOWING_WAIT.as_secs()
                );
            }
        }
        future::or(plain_loop, tls_loop).await;
    });
    if let Some((listener, _)) = metrics {
        executor
            .spawn(metrics::serve(listener, events.clone(), executor.clone()))
            .detach();
    }
    executor
        .spawn(signal_loop(
            signals,
            current,
            settings.motd.clone(),
            reload,
            events,
        ))
        .detach();
    // The hub runs as a task of its own rather than as the future `block_on` polls: that
    // future's waker unparks the thread, and after an unpark `block_on` polls the reactor once
    // more (several system calls) before it sleeps. A reader handing the hub a chunk would do
    // that for every chunk; as a task, the hub is only queued on the executor.
    let hub = executor.spawn(hub.run(incoming, accepting));
    smol::block_on(executor.run(hub));
    Ok(())
}

/// How long a cluster node waits to hear every room's lines before it accepts connections.
const FOLLOWING_WAIT: Duration = Duration::from_secs(5);

/// Connects to the cluster's Redis as a new node, waiting at most 5 s, and logs which node
/// this is.
fn join_cluster(settings: &ClusterSettings) -> Result<Cluster, Error> {
    let cluster = smol::block_on(Cluster::connect(
        &settings.url,
        &settings.node,
        settings.lease,
    ))
    .map_err(|error| {
        Error::Cluster(format!(
            "cannot join the cluster at {}: {error}",
            cluster::url_for_display(&settings.url)
        ))
    })?;
    info!(
        "cluster: node {} on the Redis at {}, lease {} s (renewed every {:.1} s); nicknames \
         are claimed across the nodes",
        cluster.node_id(),
        cluster.address(),
        cluster.lease().as_secs_f64(),
        cluster.renew_interval().as_secs_f64()
    );
    Ok(cluster)
}

/// Puts back what the store kept (founders, bans, server bans, topics, modes, the line
/// numbering), before anyone connects.
fn restore(core: &mut RecordedCore, now: Instant, restored: &store::Restored) {
    // Founders and bans first: they make their rooms stay, so that the modes given last find
    // them.
    for (room, account) in &restored.founders {
        let founder = chat_core::Restored::Founder { room, account };
        if let Err(error) = core.handle_restore(now, founder) {
            error!("store: the founder of {room} was not restored: {error}");
        }
    }
    let mut lapsed = 0;
    for (room, list, ban) in &restored.bans {
        if ban.until.is_some_and(|until| until <= now) {
            lapsed += 1;
            continue;
        }
        let restored = chat_core::Restored::Ban {
            room,
            list: *list,
            mask: &ban.mask,
            by: &ban.by,
            at: ban.at,
            until: ban.until,
        };
        if let Err(error) = core.handle_restore(now, restored) {
            error!("store: a ban on {room} was not restored: {error}");
        }
    }
    let mut server_lapsed = 0;
    for (ban, reason) in &restored.server_bans {
        if ban.until.is_some_and(|until| until <= now) {
            server_lapsed += 1;
            continue;
        }
        let restored = chat_core::Restored::ServerBan {
            mask: &ban.mask,
            by: &ban.by,
            at: ban.at,
            until: ban.until,
            reason,
        };
        if let Err(error) = core.handle_restore(now, restored) {
            error!(
                "store: the server ban on {} was not restored: {error}",
                ban.mask
            );
        }
    }
    if !restored.server_bans.is_empty() {
        info!(
            "store: {} server bans ({server_lapsed} lapsed, not restored)",
            restored.server_bans.len()
        );
    }
    if !restored.founders.is_empty() || !restored.bans.is_empty() {
        info!(
            "store: {} registered rooms, {} bans ({lapsed} lapsed, not restored)",
            restored.founders.len(),
            restored.bans.len()
        );
    }
    for topic in &restored.topics {
        let restored = chat_core::Restored::Topic {
            room: &topic.room,
            topic: &topic.topic,
            by: &topic.by,
            at: topic.at,
        };
        if let Err(error) = core.handle_restore(now, restored) {
            error!(
                "store: the topic of {} was not restored: {error}",
                topic.room
            );
        }
    }
    for modes in &restored.modes {
        let restored = chat_core::Restored::RoomModes {
            room: &modes.room,
            modes: &modes.modes,
            key: modes.key.as_deref(),
            limit: modes.limit,
        };
        if let Err(error) = core.handle_restore(now, restored) {
            error!(
                "store: the modes of {} were not restored: {error}",
                modes.room
            );
        }
    }
    if let Err(error) = core.handle_restore(now, chat_core::Restored::LastSeq(restored.last_seq)) {
        error!("bug: restoring the line numbering: {error}");
    }
}

/// Building the core passes its fixed part (some 160 KB) through the init thread's stack,
/// perhaps more than once; that stack is gone by now, but the kernel's record of
/// the peak resident memory (VmHWM in /proc/PID/status) still counts it. The record is reset, so
/// that the peak an operator or a benchmark reads is that of serving. Best effort (Linux).
fn forget_startup_peak() {
    // "5" resets the peak resident set size; see proc(5), /proc/pid/clear_refs.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Raises the soft limit on open files to the hard limit, so the server can hold as many of
/// its `clients` connections as the system allows; describes the limit for the log.
fn raise_descriptor_limit(clients: usize) -> String {
    use rustix::process::{Resource, getrlimit, setrlimit};
    // `None` is "unlimited". An unlimited hard limit still has a ceiling in the kernel, so ask
    // for what the server can use rather than for infinity.
    let wanted = (clients.min(MAX_CLIENTS) + 1024) as u64;
    let mut limit = getrlimit(Resource::Nofile);
    let target = limit.maximum.unwrap_or(wanted);
    if limit.current.is_some_and(|soft| soft < target) {
        limit.current = Some(target);
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    match limit.current {
        Some(open) => format!("{open} open files allowed"),
        None => "open files unlimited".to_owned(),
    }
}

/// TCP keepalive: a connection idle this long is probed by the kernel...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// ...every this long...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// ...and reported broken (a read error, so a departure) after this many unanswered probes.
const KEEPALIVE_PROBES: u32 = 4;

/// The key a name (a nickname or a room's) is kept and looked up under: its
/// [`chat_core::NameKey`], so that every spelling of one name (case, look-alikes) finds the
/// same entry, in the store, in Redis and in the runner's maps; the name itself for one too
/// long to key, which no valid name is.
pub(crate) fn name_key(name: &str) -> String {
    chat_core::NameKey::of(name).map_or_else(|| name.to_owned(), |key| key.as_str().to_owned())
}

/// Turns TCP keepalive on for `stream`, so that a peer that vanished without closing (a
/// machine switched off, a cable pulled) is noticed within about two minutes of quiet, even
/// in the plain dialect, which has no ping. Best effort: a failure only loses the probing.
pub(crate) fn keep_alive(stream: &std::net::TcpStream) {
    use rustix::net::sockopt;
    let _ = sockopt::set_socket_keepalive(stream, true)
        .and_then(|()| sockopt::set_tcp_keepidle(stream, KEEPALIVE_IDLE))
        .and_then(|()| sockopt::set_tcp_keepintvl(stream, KEEPALIVE_INTERVAL))
        .and_then(|()| sockopt::set_tcp_keepcnt(stream, KEEPALIVE_PROBES));
}

/// Reads the configuration again with `reload` and logs what it found: each setting changed
/// (applied), each that takes a restart (not applied), or why the file cannot be used (the
/// old configuration stays). The settings to apply, if the file could be used.
fn reload_config(reload: &mut Reloader) -> Option<Box<Settings>> {
    match reload() {
        Ok(reload) => {
            for change in &reload.changed {
                info!("SIGHUP: {change}");
            }
            for change in &reload.restart {
                warn!("SIGHUP: {change} takes a restart; the running value stays");
            }
            for change in &reload.overridden {
                info!("SIGHUP: {change}");
            }
            if reload.changed.is_empty()
                && reload.restart.is_empty()
                && reload.overridden.is_empty()
            {
                info!("SIGHUP: configuration read again; no setting changed");
            }
            Some(Box::new(reload.settings))
        }
        Err(why) => {
            warn!("SIGHUP: configuration not reloaded, the old one stays: {why}");
            None
        }
    }
}

/// Accepts connections and hands them to the hub. An accept error (out of file descriptors,
/// say) is retried after a pause instead of ending the server, and logged at most once a
/// second with how many there were.
async fn accept_loop(listener: Async<TcpListener>, hub: Sender<Event>) {
    let mut failures = 0_u64;
    let mut last_logged: Option<StdInstant> = None;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Chat lines are small and wanted now, not after Nagle's delay.
                let _ = stream.get_ref().set_nodelay(true);
                keep_alive(stream.get_ref());
                if hub
                    .send(Event::Accepted(Stream::Plain(stream), peer))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(error) => {
                failures += 1;
                if last_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    error!("accept failed ({failures} so far): {error}; retrying every 100 ms");
                    last_logged = Some(StdInstant::now());
                }
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Turns the first Ctrl-C or SIGTERM into a shutdown event; on every SIGHUP reloads the
/// configuration (with `reload`), the TLS certificate and the message of the day.
async fn signal_loop(
    mut signals: Signals,
    tls: Option<Rc<tls::Current>>,
    mut motd: Option<PathBuf>,
    mut reload: Option<Reloader>,
    hub: Sender<Event>,
) {
    while let Some(signal) = signals.next().await {
        let name = match signal {
            Ok(Signal::Hup) => {
                let motd_before = motd.clone();
                match &mut reload {
                    Some(reload) => {
                        if let Some(settings) = reload_config(reload) {
                            motd.clone_from(&settings.motd);
                            let _ = hub.send(Event::Reconfigure(settings)).await;
                        }
                    }
                    None => info!(
                        "SIGHUP: reloading the TLS certificate and the motd (no --config: \
                         other settings change only on a restart)"
                    ),
                }
                match &tls {
                    Some(current) => current.reload(),
                    None => info!("SIGHUP: no TLS certificate to reload (no --tls-listen)"),
                }
                match &motd {
                    Some(path) => {
                        let path = path.clone();
                        let read = smol::unblock(move || load_motd(&path, "reloaded")).await;
                        if let Some(motd) = read {
                            let _ = hub.send(Event::Motd(Some(Box::new(motd)))).await;
                        }
                    }
                    None if motd_before.is_some() => {
                        info!("motd: none configured now; the built-in message is shown");
                        let _ = hub.send(Event::Motd(None)).await;
                    }
                    None => info!("SIGHUP: no motd to reload (no --motd)"),
                }
                continue;
            }
            Ok(Signal::Int) => "SIGINT",
            Ok(_) => "SIGTERM",
            // Reading a signal failed: once is news, again and again would spin. Give the
            // stream a moment before the next read.
            Err(error) => {
                error!("reading signals failed: {error}; trying again in a second");
                Timer::after(Duration::from_secs(1)).await;
                continue;
            }
        };
        let _ = hub.send(Event::Shutdown(name)).await;
        return;
    }
}
