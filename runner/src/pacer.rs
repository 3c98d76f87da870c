//! The hub's timing policy, apart from any I/O: when the writers are woken together (a
//! *flush*), how many events the hub handles before they get a turn, and whether a busy reader
//! reads at the flushes instead of whenever its socket is readable.
//!
//! Time is only ever an argument (`now`): nothing here reads a clock, sleeps or wakes a task,
//! so every rule is tested below with a made-up clock. The hub reads the clock, wakes the
//! writers and arms its timer from [`Pacer::poll_timeout`].
//!
//! Why flushes are spaced: under fan-out load the server's work is mostly writes, and a write
//! costs the kernel about the same for one line as for forty (some 5 µs on loopback), so the
//! cost of a delivered line is about that of a write divided by the lines it carries. Spacing
//! the flushes by the writes they set off ([`WRITE_SPACING`] per writer woken) keeps the writes
//! to about one per `WRITE_SPACING` whatever the load, and lets each writer's lines gather
//! meanwhile, so each write carries more as the load grows. A flush that woke one writer (a
//! reply, a quiet room) lets the next come almost at once; the most latency the gathering adds
//! is the flush interval (`--flush-interval`, [`DEFAULT_FLUSH_INTERVAL`] unless set).
//!
//! Why the default is 30 ms, not 10 (until 2026-12-03): at 10 the cap bound whenever a flush
//! woke more than 200 writers at full load, and there it broke the rule above. A room of 1,000
//! at 2 lines a second each (2 million deliveries a second) was due 100,000 writes a second;
//! the server spent its whole core falling behind on them (a flush every 20 ms, 40 lines a
//! write, 0.50 µs per delivery in every one of 15 runs, p99 55 ms). At 30 the cap binds only
//! above 600 writers, and that room takes three quarters of the core (0.37 µs, a quarter
//! less), for a p99 as before and a p50 3 ms higher (PERFORMANCE.md, "Rooms of more than 200
//! gather longer"). A flush that wakes at most 200 writers (a server whose one busy room has
//! 200 people) is spaced as before. Lines gather up to three times longer in the large case,
//! so a queue there reaches `--lag-limit` sooner; one that does gets a flush at once (the
//! hub's `drop_stalled`), so a low limit shortens the gathering rather than drops lines.
//!
//! Gathering pays only under load. At a light load each writer gets a line now and then, so a
//! spaced flush still carries about one line per write: the spacing would add its latency and
//! save nothing (200 people in one room at 2 lines a second each: 80,000 deliveries a second,
//! each write carrying four lines at a 10 ms spacing, a p50 of 6.5 ms where writing at once
//! gives 1.3). So the spacing per writer scales with the load: the rate of deliveries, measured
//! over about [`LOAD_WINDOW`], against [`FULL_LOAD`]. Idle, a flush may follow the last at once;
//! at 1.5 million deliveries a second and above, every writer woken spaces the next flush by the
//! full [`WRITE_SPACING`]. The rate is what the clients send times the rooms' sizes, whatever
//! the spacing, so the rule has one settled point: a longer spacing does not raise the rate
//! that set it. The price: between light and full load, writes carry fewer lines, so CPU per
//! delivery is higher than a fixed spacing would make it (PERFORMANCE.md has the figures).

use std::time::{Duration, Instant};

/// The time a flush waits per writer the previous flush woke, at [`FULL_LOAD`] and above.
pub(crate) const WRITE_SPACING: Duration = Duration::from_micros(50);

/// The flush interval ([`Settings::flush_interval`](crate::Settings), `--flush-interval`)
/// unless the operator sets one: the spacing of 600 writers woken at full load. It was 10 ms
/// until 2026-12-03, which kept a server with a busy room of 1,000 at its whole core
/// (docs/PERFORMANCE.md, "Rooms of more than 200 gather longer").
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(30);

/// Deliveries a second (lines times their recipients) at and above which each writer woken
/// spaces the next flush by the full [`WRITE_SPACING`]; below, in proportion. A million until
/// 2026-12-03: one room of 200 at 20 lines a second each (800,000 deliveries a second) then
/// waited 8 ms between flushes for a p50 of 5.8–6.1 ms, above ngircd's 5.4, at 0.35 of its CPU
/// per delivery; at 1.5 million, 4.4 ms for 0.45 of it. The loads the CPU goals are measured
/// at (2 million a second: 200 × 50, 1,000 × 2) are spaced in full either way.
pub(crate) const FULL_LOAD: f64 = 1_500_000.0;

/// How far back the delivery rate looks: it is a mean weighted by `e^(-age / LOAD_WINDOW)`, so
/// a change of load is seen within a few tenths of a second.
pub(crate) const LOAD_WINDOW: Duration = Duration::from_millis(100);

/// Flushes at least this far apart are worth reading at (see [`ReaderPace`]): the thread is
/// then woken once per flush for the input of busy connections, not once per line.
pub(crate) const GATHERING: Duration = Duration::from_millis(1);

/// The most events the hub handles before the writers get a turn, and the most time spent on
/// them, outside a flush; see [`Batch`].
const EVENT_BATCH: usize = 256;
const EVENT_BATCH_TIME: Duration = Duration::from_millis(2);

/// The longest batch at a flush, whatever the flush interval: readers waiting for a flush must
/// not hold it back much past its time.
const FLUSH_BATCH_TIME: Duration = Duration::from_millis(8);

/// A reader that found nothing at this many flushes in a row waits for readability instead.
const IDLE_TICKS: u8 = 2;

/// When the next flush may go out, and whether one is owed.
///
/// Inputs are `register_*` (something now wants a flush) and `handle_flush` (one went out);
/// the output is `poll_timeout`, the time the hub arms its timer for. The order of a turn: the
/// hub handles events, then calls [`Pacer::register_new_writes`] if writers have something new,
/// and flushes at once if told so; otherwise it flushes when [`Pacer::poll_timeout`] passes.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// The most time between two flushes (`--flush-interval`).
    flush_interval: Duration,
    /// The writers are not woken again before this.
    next_flush: Instant,
    /// A flush is owed at `next_flush`: writers or readers wait for it.
    pending: bool,
    /// Flushes are far enough apart ([`GATHERING`]) that busy readers read at them.
    gathering: bool,
    /// The rate of deliveries, which scales the spacing.
    load: Load,
    /// The spacing the last flush set.
    spacing: Duration,
}

/// The rate of deliveries: a mean over about [`LOAD_WINDOW`], where each delivery counts
/// `1 / LOAD_WINDOW` at first and less as it ages, so a steady rate reads as itself.
#[derive(Debug)]
struct Load {
    /// Deliveries a second.
    per_second: f64,
    /// The deliveries counted so far (the hub's running count), when last read.
    counted: u64,
    /// When it was last read.
    at: Instant,
}

impl Load {
    /// The running count of deliveries is `delivered` at `now`.
    fn observe(&mut self, now: Instant, delivered: u64) {
        #[allow(clippy::cast_precision_loss)] // a count past 2^52 in one flush cannot happen
        let new = delivered.saturating_sub(self.counted) as f64;
        self.per_second = self.per_second_at(now) + new / LOAD_WINDOW.as_secs_f64();
        self.counted = delivered;
        self.at = self.at.max(now);
    }

    /// Deliveries a second at `now`: what was measured at the last reading, aged since.
    fn per_second_at(&self, now: Instant) -> f64 {
        let age = now.saturating_duration_since(self.at).as_secs_f64();
        self.per_second * (-age / LOAD_WINDOW.as_secs_f64()).exp()
    }

    /// The share of [`WRITE_SPACING`] each writer woken spaces the next flush by: 0 when
    /// idle, 1 at [`FULL_LOAD`] and above.
    fn gathering_share(&self) -> f64 {
        (self.per_second / FULL_LOAD).clamp(0.0, 1.0)
    }
}

/// What to do with writers that have something new to send, at the end of a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Flush {
    /// Wake them now.
    Now,
    /// Wake them at [`Pacer::poll_timeout`]; meanwhile more lines gather for them.
    Later,
}

impl Pacer {
    /// A pacer with no flush owed, whose first flush may go out at once.
    pub(crate) fn new(flush_interval: Duration, now: Instant) -> Self {
        Self {
            flush_interval,
            next_flush: now,
            pending: false,
            gathering: false,
            load: Load {
                per_second: 0.0,
                counted: 0,
                at: now,
            },
            spacing: Duration::ZERO,
        }
    }

    /// Changes the most time between two flushes (a reload of `--flush-interval`), from the
    /// next flush on.
    pub(crate) fn set_flush_interval(&mut self, flush_interval: Duration) {
        self.flush_interval = flush_interval;
    }

    // ----- Getters -----

    /// Whether flushes are far enough apart that a reader whose client has been talking reads
    /// at the next flush rather than when its socket becomes readable.
    pub(crate) fn is_gathering(&self) -> bool {
        self.gathering
    }

    /// The time the last flush set before the next may go out (for the metrics).
    pub(crate) fn spacing(&self) -> Duration {
        self.spacing
    }

    /// The deliveries a second the spacing is scaled by, as of `now` (for the metrics).
    pub(crate) fn load(&self, now: Instant) -> f64 {
        self.load.per_second_at(now)
    }

    /// How many events to handle at a flush once `readers` waiting for it have read: all they
    /// brought (each sends at most one chunk), for up to the flush interval but at least
    /// [`EVENT_BATCH_TIME`] and at most [`FLUSH_BATCH_TIME`].
    pub(crate) fn batch_at_flush(&self, readers: usize) -> Batch {
        Batch {
            events: readers.max(EVENT_BATCH),
            time: self
                .flush_interval
                .clamp(EVENT_BATCH_TIME, FLUSH_BATCH_TIME),
        }
    }

    // ----- Inputs -----

    /// Readers are waiting for the next flush: one is owed even if no writer has anything new.
    pub(crate) fn register_waiting_readers(&mut self) {
        self.pending = true;
    }

    /// Writers have something new to send at the end of a turn. They are woken now, unless the
    /// last flush was too recent, or readers wait for the flush (they read first, so that the
    /// flush carries their lines too): then a flush is owed at [`Pacer::poll_timeout`].
    pub(crate) fn register_new_writes(&mut self, now: Instant, readers_waiting: bool) -> Flush {
        if !readers_waiting && now >= self.next_flush {
            Flush::Now
        } else {
            self.pending = true;
            Flush::Later
        }
    }

    /// A flush went out at `now` and woke `woken` writers, and the hub has made `delivered`
    /// deliveries so far (a running count). The next flush may come [`WRITE_SPACING`] later for
    /// each writer woken, scaled by the load (see the module's notes), at most the flush
    /// interval later. The spacing counts from the flush, after its readers' lines were
    /// handled: counted from when the readers were woken instead, flushes at 200 × 50 came
    /// 10 ms apart rather than 12, a fifth more of them, for 1 ms less p50 and 12-17% more
    /// CPU (PERFORMANCE.md). A flush that woke no writer (it was only for readers) says
    /// nothing of the load, so it leaves the gathering as it was.
    pub(crate) fn handle_flush(&mut self, now: Instant, woken: usize, delivered: u64) {
        self.load.observe(now, delivered);
        let full = WRITE_SPACING.saturating_mul(u32::try_from(woken).unwrap_or(u32::MAX));
        let spacing = full
            .mul_f64(self.load.gathering_share())
            .min(self.flush_interval);
        self.next_flush = now + spacing;
        self.spacing = spacing;
        if woken > 0 {
            self.gathering = spacing >= GATHERING;
        }
        self.pending = false;
    }

    // ----- Output -----

    /// When the flush owed is due, if one is owed: the hub's timer is armed for it.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending.then_some(self.next_flush)
    }
}

/// How many events the hub handles in a row at most, and for how long, before the writers get
/// a turn: whatever has arrived is handled first, so each writer then sends all its client got
/// from those events in one write; the bounds give the accept loop and the readers their turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Batch {
    events: usize,
    time: Duration,
}

impl Batch {
    /// Outside a flush: [`EVENT_BATCH`] events or [`EVENT_BATCH_TIME`].
    pub(crate) const DEFAULT: Self = Self {
        events: EVENT_BATCH,
        time: EVENT_BATCH_TIME,
    };

    /// Whether one more event may be handled after `handled` of them took `elapsed`.
    pub(crate) fn has_room(self, handled: usize, elapsed: Duration) -> bool {
        handled < self.events && elapsed < self.time
    }
}

/// One reader's part in reading at flushes. While the hub is gathering, a reader whose client
/// has been talking does not wait for its socket to become readable, which would wake the
/// thread for every line that arrives; it waits for the next flush instead, and reads whatever
/// came meanwhile. A reader that finds nothing [`IDLE_TICKS`] times in a row waits for
/// readability again, so quiet connections cost nothing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReaderPace {
    /// Reads in a row that found nothing.
    idle_ticks: u8,
}

impl ReaderPace {
    /// A new reader counts as quiet: it waits for readability.
    pub(crate) fn new() -> Self {
        Self {
            idle_ticks: IDLE_TICKS,
        }
    }

    /// Whether the reader, with nothing left to read, waits for the hub's next flush (rather
    /// than for readability) while the hub is `gathering` or not.
    pub(crate) fn waits_for_flush(self, gathering: bool) -> bool {
        self.idle_ticks < IDLE_TICKS && gathering
    }

    /// A read found nothing.
    pub(crate) fn read_nothing(&mut self) {
        self.idle_ticks = self.idle_ticks.saturating_add(1);
    }

    /// A read brought input.
    pub(crate) fn read_input(&mut self) {
        self.idle_ticks = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(10);

    fn us(micros: u64) -> Duration {
        Duration::from_micros(micros)
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// A running count of deliveries that reads as 10 million a second for the few
    /// milliseconds a test lasts: flushes are spaced in full.
    const BUSY: u64 = 1_000_000;

    /// A pacer under full load, whose first flush may go out at once.
    fn busy(interval: Duration, start: Instant) -> Pacer {
        let mut pacer = Pacer::new(interval, start);
        pacer.handle_flush(start, 0, BUSY);
        pacer
    }

    #[test]
    fn a_quiet_server_flushes_at_once() {
        let start = Instant::now();
        let mut pacer = Pacer::new(INTERVAL, start);
        assert_eq!(pacer.poll_timeout(), None, "nothing owed yet");
        assert_eq!(pacer.register_new_writes(start, false), Flush::Now);
        // A line to 300 people, on a server with nothing else to do: 3,000 deliveries a second
        // for now, so the next may go 300 × 50 µs × 0.2% = 30 µs later (15 ms in full).
        pacer.handle_flush(start, 300, 300);
        assert_eq!(
            pacer.register_new_writes(start + us(29), false),
            Flush::Later
        );
        assert_eq!(pacer.poll_timeout(), Some(start + us(30)));
        assert_eq!(pacer.register_new_writes(start + us(30), false), Flush::Now);
        assert!(!pacer.is_gathering());
    }

    #[test]
    fn a_busy_server_waits_50_us_per_writer_woken() {
        let start = Instant::now();
        let mut pacer = busy(INTERVAL, start);
        assert_eq!(pacer.register_new_writes(start, false), Flush::Now);
        pacer.handle_flush(start, 1, BUSY);
        assert_eq!(
            pacer.register_new_writes(start + us(49), false),
            Flush::Later
        );
        assert_eq!(pacer.poll_timeout(), Some(start + us(50)));
    }

    /// Flushes every millisecond for a second, each delivering a millisecond's worth at
    /// `per_second`, to 200 writers; the spacing the last one set.
    fn settled_spacing(per_second: u64) -> Duration {
        let start = Instant::now();
        let mut pacer = Pacer::new(ms(50), start);
        let mut delivered = 0;
        for tick in 1..=1_000 {
            delivered += per_second / 1_000;
            pacer.handle_flush(start + ms(tick), 200, delivered);
        }
        match pacer.register_new_writes(start + ms(1_000), false) {
            Flush::Now => Duration::ZERO,
            Flush::Later => pacer.poll_timeout().expect("a flush is owed") - (start + ms(1_000)),
        }
    }

    #[test]
    fn the_spacing_scales_with_the_deliveries_a_second() {
        // 200 writers woken: 10 ms in full.
        for (per_second, micros) in [
            (0, 0),
            (75_000, 500),
            (300_000, 2_000),
            (750_000, 5_000),
            (1_500_000, 10_000),
            (5_000_000, 10_000),
        ] {
            let spacing = settled_spacing(per_second).as_secs_f64() * 1e6;
            assert!(
                (spacing - f64::from(micros)).abs() <= f64::from(micros) * 0.05 + 1.0,
                "{per_second} a second: {spacing} µs, not {micros}"
            );
        }
    }

    #[test]
    fn a_load_that_stops_is_forgotten_within_a_second() {
        let start = Instant::now();
        let mut pacer = busy(INTERVAL, start);
        pacer.handle_flush(start, 200, BUSY);
        assert_eq!(pacer.poll_timeout(), None);
        let _ = pacer.register_new_writes(start, false);
        assert_eq!(pacer.poll_timeout(), Some(start + INTERVAL));
        // A second later, nothing more delivered: a line to 200 people spaces nothing.
        let later = start + ms(1_000);
        assert_eq!(pacer.register_new_writes(later, false), Flush::Now);
        pacer.handle_flush(later, 200, BUSY + 200);
        assert_eq!(pacer.register_new_writes(later, false), Flush::Later);
        let spacing = pacer.poll_timeout().expect("a flush is owed") - later;
        assert!(spacing < us(100), "{spacing:?}: 10 ms in full");
    }

    #[test]
    fn the_next_flush_waits_50_us_per_writer_woken() {
        let start = Instant::now();
        let mut pacer = busy(INTERVAL, start);
        pacer.handle_flush(start, 40, BUSY);
        let due = start + us(40 * 50);
        assert_eq!(pacer.register_new_writes(due - us(1), false), Flush::Later);
        assert_eq!(pacer.poll_timeout(), Some(due));
        // The owed flush stays owed at the same time, and goes out when it is due.
        assert_eq!(pacer.register_new_writes(due, false), Flush::Now);
        pacer.handle_flush(due, 3, BUSY);
        assert_eq!(pacer.poll_timeout(), None, "the flush paid what was owed");
        assert_eq!(
            pacer.register_new_writes(due + us(149), false),
            Flush::Later
        );
        assert_eq!(pacer.poll_timeout(), Some(due + us(150)));
    }

    #[test]
    fn by_default_200_writers_woken_space_10_ms_and_600_or_more_30() {
        let start = Instant::now();
        for (woken, spacing) in [(200, ms(10)), (400, ms(20)), (600, ms(30)), (1_000, ms(30))] {
            let mut pacer = busy(DEFAULT_FLUSH_INTERVAL, start);
            pacer.handle_flush(start, woken, BUSY);
            let _ = pacer.register_new_writes(start, false);
            assert_eq!(pacer.poll_timeout(), Some(start + spacing), "{woken} woken");
        }
    }

    #[test]
    fn the_spacing_is_at_most_the_flush_interval() {
        let start = Instant::now();
        for (interval, woken, spacing) in [
            (INTERVAL, 1_000, INTERVAL),
            (INTERVAL, usize::MAX, INTERVAL),
            (ms(1), 30, ms(1)),
            (Duration::ZERO, 1_000, Duration::ZERO),
        ] {
            let mut pacer = busy(interval, start);
            pacer.handle_flush(start, woken, BUSY);
            let _ = pacer.register_new_writes(start, false);
            assert_eq!(
                pacer.poll_timeout(),
                (spacing > Duration::ZERO).then_some(start + spacing),
                "{interval:?}, {woken} woken"
            );
        }
    }

    #[test]
    fn flushes_1_ms_apart_or_more_are_gathering() {
        let start = Instant::now();
        for (interval, woken, gathering) in [
            (INTERVAL, 19, false), // 950 µs
            (INTERVAL, 20, true),  // 1 ms
            (INTERVAL, 1_000, true),
            (us(999), 1_000, false), // capped below 1 ms
            (Duration::ZERO, 1_000, false),
        ] {
            let mut pacer = busy(interval, start);
            pacer.handle_flush(start, woken, BUSY);
            assert_eq!(
                pacer.is_gathering(),
                gathering,
                "{interval:?}, {woken} woken"
            );
        }
    }

    #[test]
    fn a_flush_that_woke_no_writer_leaves_the_gathering_as_it_was() {
        let start = Instant::now();
        let mut pacer = busy(INTERVAL, start);
        pacer.handle_flush(start, 100, BUSY);
        assert!(pacer.is_gathering());
        pacer.handle_flush(start + ms(5), 0, BUSY);
        assert!(pacer.is_gathering());
        // It spaces nothing either: writes may go out at once.
        assert_eq!(pacer.register_new_writes(start + ms(5), false), Flush::Now);
        pacer.handle_flush(start + ms(5), 1, BUSY);
        assert!(!pacer.is_gathering(), "one writer woken: 50 µs apart");
    }

    #[test]
    fn waiting_readers_are_owed_a_flush_and_read_before_it() {
        let start = Instant::now();
        let mut pacer = busy(INTERVAL, start);
        pacer.handle_flush(start, 100, BUSY);
        pacer.register_waiting_readers();
        assert_eq!(pacer.poll_timeout(), Some(start + us(5_000)));
        // Even when due, the writers wait: the readers read first, and their lines go out with
        // this flush.
        let later = start + ms(20);
        assert_eq!(pacer.register_new_writes(later, true), Flush::Later);
        assert_eq!(pacer.poll_timeout(), Some(start + us(5_000)));
    }

    #[test]
    fn a_batch_at_a_flush_takes_what_every_reader_brought_within_2_to_8_ms() {
        let start = Instant::now();
        for (interval, readers, events, time) in [
            (INTERVAL, 1, EVENT_BATCH, ms(8)),
            (INTERVAL, 1_000, 1_000, ms(8)),
            (ms(5), 10, EVENT_BATCH, ms(5)),
            (ms(1), 10, EVENT_BATCH, ms(2)),
            (Duration::ZERO, 10, EVENT_BATCH, ms(2)),
        ] {
            let batch = Pacer::new(interval, start).batch_at_flush(readers);
            assert_eq!(batch, Batch { events, time }, "{interval:?}, {readers}");
        }
    }

    #[test]
    fn a_batch_ends_at_its_count_or_its_time() {
        let batch = Batch::DEFAULT;
        assert!(batch.has_room(0, Duration::ZERO));
        assert!(batch.has_room(255, ms(2) - us(1)));
        assert!(!batch.has_room(256, Duration::ZERO));
        assert!(!batch.has_room(1, ms(2)));
    }

    #[test]
    fn a_reader_waits_for_flushes_while_its_client_talks_and_the_hub_gathers() {
        let mut pace = ReaderPace::new();
        assert!(
            !pace.waits_for_flush(true),
            "a new reader waits for readability"
        );
        pace.read_input();
        assert!(pace.waits_for_flush(true));
        assert!(!pace.waits_for_flush(false), "not gathering: readability");
        pace.read_nothing();
        assert!(
            pace.waits_for_flush(true),
            "one empty flush is not quiet yet"
        );
        pace.read_nothing();
        assert!(!pace.waits_for_flush(true), "two in a row: quiet");
        for _ in 0..1_000 {
            pace.read_nothing();
        }
        assert!(!pace.waits_for_flush(true));
        pace.read_input();
        assert!(pace.waits_for_flush(true), "talking again");
    }
}
