//! The server's counts for `--metrics` (see `metrics.rs`, which serves them): plain integers
//! and fixed-bucket histograms in the hub, the bytes the writers wrote, and the [`Snapshot`] a
//! scrape gets. Kept apart from the serving so that the hub, the writers and the event queue
//! need nothing of HTTP or of the encoding.

use std::cell::Cell;

thread_local! {
    /// Bytes the writers have written to clients. Every task runs on the hub's one thread.
    static BYTES_WRITTEN: Cell<u64> = const { Cell::new(0) };
}

/// A writer wrote `bytes` bytes to its client.
pub(crate) fn wrote(bytes: usize) {
    BYTES_WRITTEN.with(|written| written.set(written.get().wrapping_add(bytes as u64)));
}

pub(crate) fn bytes_written() -> u64 {
    BYTES_WRITTEN.with(Cell::get)
}

/// A histogram over fixed buckets, in plain integers: observed by the hub, copied at a scrape.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    /// Upper bounds, ascending, the last `f64::INFINITY`.
    pub(crate) bounds: &'static [f64],
    /// How many observations fell in each bucket (not cumulative).
    pub(crate) counts: Vec<u64>,
    pub(crate) sum: f64,
    pub(crate) count: u64,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        debug_assert_eq!(bounds.last(), Some(&f64::INFINITY));
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub(crate) fn observe(&mut self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len() - 1);
        self.counts[bucket] += 1;
        self.sum += value;
        self.count += 1;
    }
}

/// Seconds, for the hub's turns: 50 µs to 1 s.
const TURN_SECONDS: &[f64] = &[
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
    f64::INFINITY,
];

/// Seconds, for store commits: 100 µs to 5 s (the store is called stalled at 5 s).
const COMMIT_SECONDS: &[f64] = &[
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
    5.0,
    f64::INFINITY,
];

/// Seconds, for a line's way through Redis (times on lines are in milliseconds).
const LAG_SECONDS: &[f64] = &[
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
    5.0,
    f64::INFINITY,
];

/// Counts, for queue depths and writers per flush.
pub(crate) const DEPTHS: &[f64] = &[
    0.0,
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    f64::INFINITY,
];

/// Why a connection was refused.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refused {
    /// `--max-clients` (or the server's capacity) reached.
    Full,
    /// `--max-per-ip` reached for its address.
    PerAddress,
    /// A server-wide ban names its address.
    Banned,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Gone {
    /// The peer closed it.
    Closed,
    /// Reading from it failed.
    Error,
    /// Dropped as too slow: its queue stayed full, or nothing could be written for the stall
    /// timeout.
    TooSlow,
    /// `/quit` (or IRC's `QUIT`).
    Quit,
    /// No line within the silence timeout.
    Silent,
    /// An IRC client did not answer a `PING`.
    PingTimeout,
    /// Put out by a server-wide ban.
    Banned,
}

impl Gone {
    pub(crate) const ALL: [Self; 7] = [
        Self::Closed,
        Self::Error,
        Self::TooSlow,
        Self::Quit,
        Self::Silent,
        Self::PingTimeout,
        Self::Banned,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Error => "error",
            Self::TooSlow => "too_slow",
            Self::Quit => "quit",
            Self::Silent => "silent",
            Self::PingTimeout => "ping_timeout",
            Self::Banned => "banned",
        }
    }
}

/// The hub's counts, as plain integers: the hub alone writes them.
#[derive(Clone, Debug)]
pub(crate) struct Stats {
    pub(crate) accepted: u64,
    pub(crate) refused: [u64; 3],
    pub(crate) lines_received: u64,
    pub(crate) lines_sent: u64,
    pub(crate) deliveries: u64,
    pub(crate) skipped: u64,
    pub(crate) private_refused: u64,
    pub(crate) dropped_too_slow: u64,
    pub(crate) flood_holds: u64,
    pub(crate) disconnects: [u64; Gone::ALL.len()],
    pub(crate) turn: Histogram,
    pub(crate) flush_events: Histogram,
    pub(crate) flush_writers: Histogram,
    pub(crate) commits: u64,
    pub(crate) commit_time: Histogram,
    pub(crate) cluster_published: u64,
    pub(crate) cluster_received: u64,
    pub(crate) cluster_lag: Histogram,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            accepted: 0,
            refused: [0; 3],
            lines_received: 0,
            lines_sent: 0,
            deliveries: 0,
            skipped: 0,
            private_refused: 0,
            dropped_too_slow: 0,
            flood_holds: 0,
            disconnects: [0; Gone::ALL.len()],
            turn: Histogram::new(TURN_SECONDS),
            flush_events: Histogram::new(DEPTHS),
            flush_writers: Histogram::new(DEPTHS),
            commits: 0,
            commit_time: Histogram::new(COMMIT_SECONDS),
            cluster_published: 0,
            cluster_received: 0,
            cluster_lag: Histogram::new(LAG_SECONDS),
        }
    }
}

impl Stats {
    pub(crate) fn refused(&mut self, why: Refused) {
        self.refused[why as usize] += 1;
    }

    pub(crate) fn gone(&mut self, why: Gone) {
        self.disconnects[why as usize] += 1;
    }
}

/// Live connections by dialect, as the core knows them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Dialects {
    /// No byte yet.
    pub(crate) undecided: u64,
    pub(crate) plain: u64,
    pub(crate) irc: u64,
    pub(crate) json: u64,
}

/// What the hub hands a scrape: its counts and the gauges read now.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub(crate) stats: Stats,
    pub(crate) connections: Dialects,
    pub(crate) people_here: u64,
    pub(crate) people_elsewhere: u64,
    pub(crate) rooms: u64,
    /// Store commits asked and not yet done.
    pub(crate) commits_pending: u64,
    /// Cluster mode: the cluster's metrics are shown only then.
    pub(crate) cluster: bool,
    /// The time the last flush set before the next, in seconds.
    pub(crate) flush_spacing: f64,
    /// Deliveries a second, as the pacer measures them to scale that spacing.
    pub(crate) load: f64,
    /// Message slots the connections' send queues hold, used or not.
    pub(crate) queue_slots: u64,
}

impl Snapshot {
    pub(crate) fn new(stats: &Stats) -> Self {
        Self {
            stats: stats.clone(),
            connections: Dialects::default(),
            people_here: 0,
            people_elsewhere: 0,
            rooms: 0,
            commits_pending: 0,
            cluster: false,
            flush_spacing: 0.0,
            load: 0.0,
            queue_slots: 0,
        }
    }
}
