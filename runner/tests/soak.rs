//! A bounded soak test: for about fifteen seconds a changing population of clients connects,
//! picks nicknames, chats numbered lines in #lobby, reads, sometimes stalls (some long enough to
//! be dropped), and leaves, with newcomers taking their places. Then every line that was
//! guaranteed to reach a reader is checked to have arrived, in order and without gaps.
//!
//! A few worker threads each multiplex many nonblocking sockets. Every loop is bounded in count
//! and in time, every thread is joined, and every socket is closed.
//!
//! What is demanded, and why it is guaranteed: a sender S writes each line `k` together with
//! `/ping k`, and notes when it queued them and when `*** pong k` came back. The server handles
//! a connection's lines in order, so by the time S reads the pong, line `k` has been handled.
//! A reader R notes when its welcome banner arrived (it is in #lobby from then on) and its
//! *barrier*: when it queued the last of its own pings whose pong it read. Line `k` must reach R
//! if S queued it after R's banner arrived (so R was in the room when it was handled) and S read
//! its pong before R queued its barrier ping (so it was handled before that ping, whose pong R
//! read, and so R read everything queued for it before). Lines a reader got from one sender
//! must always be increasing and consecutive, whatever else happened to either, except where a
//! `*** [K messages skipped]` notice came between two of them: a reader that fell behind has
//! room messages skipped, and the gaps charged to one notice must add up to at most its K (it
//! also counts skipped joins and departures).

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chat_tests::Server;

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// How long clients keep coming and going.
const RUN: Duration = Duration::from_secs(15);
/// After [`RUN`], how long the last clients have at most to quit and see the connection close.
/// Normally they are done within a second; the bound is generous because a loaded machine
/// (a parallel build, say) slows the server and these readers alike.
const WIND_DOWN: Duration = Duration::from_secs(20);
/// A leaving client whose connection stays open this long without a byte arriving counts as
/// not closed by the server. It is measured from the last byte, not from the quit: a client
/// still draining what was queued for it before its quit is not stuck, only slow.
const LEAVE_QUIET: Duration = Duration::from_secs(6);
/// Worker threads, each multiplexing up to [`PER_WORKER`] connections.
const WORKERS: usize = 4;
const PER_WORKER: usize = 60;
/// At most this many connections per worker over the whole run.
const MAX_CONNECTIONS_PER_WORKER: usize = 1000;
/// At most this many new connections per worker per loop turn, so joins are spread out.
const CONNECTS_PER_TURN: usize = 2;
/// Each loop turn sleeps this long once every socket has been looked at.
const TURN: Duration = Duration::from_millis(3);
/// Chat lines carry this many bytes of padding after their number.
const PAD: usize = 40;
/// `/help`s a long staller sends each turn while it does not read. Each answer is about 1 KB
/// for 6 bytes in, so its queue at the server fills in a second or two, rather than after the
/// kernel's buffers (megabytes on loopback) have filled with chat lines.
const FILLERS_PER_TURN: usize = 20;
/// The server's queue limit: a client with this many messages waiting is dropped.
const QUEUE_LIMIT: &str = "200";
/// The bound on the server's peak resident memory (`VmHWM`). Measured: about 71 MB in debug,
/// both for an idle server (its start-up allocations set the peak) and at the end of this run
/// (240 connections, ~700 over the run, ~30 000 line deliveries a second), so the load adds
/// little; 160 MB (about 2.3 times that) leaves room for allocator noise and a release or
/// platform difference while still catching a leak or an unbounded queue, which would add
/// hundreds of MB over the run.
const PEAK_RSS_LIMIT_KB: u64 = 160 * 1024;

/// A small deterministic generator (xorshift64*), so that a run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `percent` in 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// A duration between `low` and `high` milliseconds.
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low + 1))
    }
}

/// What one connection did and saw, for the checks at the end. Times are since the test began.
#[derive(Debug, Default)]
struct Record {
    nick: String,
    addr: Option<SocketAddr>,
    /// When its welcome banner (the lobby's list) arrived.
    ready: Option<Duration>,
    /// For each line number: when it was queued, and when its pong was read.
    sent: Vec<(Duration, Option<Duration>)>,
    /// When the last ping whose pong was read had been queued.
    barrier: Option<Duration>,
    /// Line numbers received, by sender, in the order they arrived.
    received: HashMap<String, Vec<u64>>,
    /// For each of those, its place among all the lines this client read.
    received_at: HashMap<String, Vec<usize>>,
    /// The `[K messages skipped]` notices, with their places among all the lines read.
    skips: Vec<(usize, u64)>,
    /// Lines read so far.
    lines_read: usize,
    /// It stopped reading at some point.
    stalled: bool,
    /// The server closed it while it was not leaving.
    dropped: bool,
    /// Names seen in `*** NAME left (too slow to keep up)`.
    too_slow: Vec<String>,
    /// It quit (or half-closed) but the server did not close the connection in time.
    stuck_leaving: bool,
    /// Lines that fit no expected format.
    odd_lines: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    Quit,
    HalfClose,
    Abrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the welcome banner.
    Welcome,
    /// Waiting for the nickname's confirmation.
    Naming,
    Active,
    /// Not reading (nor sending) until then.
    Stalled(Instant),
    /// Quit or half-closed; reading until the server closes, or until [`LEAVE_QUIET`] has
    /// passed since the last byte arrived.
    Leaving(Instant),
    Done,
}

struct Slot {
    stream: TcpStream,
    record: Record,
    state: State,
    input: Vec<u8>,
    output: Vec<u8>,
    next_send: Instant,
    /// When to stop reading, and for how long.
    stall: Option<(Instant, Duration)>,
    /// While stalled, it keeps asking for `/help`, so that its queue at the server fills in
    /// seconds rather than after the kernel's buffers (megabytes on loopback) fill.
    flood_while_stalled: bool,
    leave_at: Instant,
    leave: Leave,
}

impl Slot {
    fn connect(addr: SocketAddr, nick: String, rng: &mut Rng) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|error| format!("connecting {nick}: {error}"))?;
        stream
            .set_nonblocking(true)
            .map_err(|error| format!("set_nonblocking: {error}"))?;
        let _ = stream.set_nodelay(true);
        let now = Instant::now();
        // About one in four stalls: half of those briefly, half long enough to be dropped.
        let stall = rng.chance(25).then(|| {
            let at = now + rng.millis(500, 3000);
            let long = rng.chance(50);
            let length = if long {
                rng.millis(6000, 9000)
            } else {
                rng.millis(200, 1200)
            };
            (at, length, long)
        });
        let mut leave_at = now + rng.millis(1500, 9000);
        if let Some((at, length, _)) = stall {
            leave_at = leave_at.max(at + length + rng.millis(300, 1500));
        }
        let leave = match rng.next() % 4 {
            0 | 1 => Leave::Quit,
            2 => Leave::HalfClose,
            _ => Leave::Abrupt,
        };
        Ok(Self {
            record: Record {
                nick,
                addr: stream.local_addr().ok(),
                ..Record::default()
            },
            stream,
            state: State::Welcome,
            input: Vec::new(),
            output: Vec::new(),
            next_send: now,
            stall: stall.map(|(at, length, _)| (at, length)),
            flood_while_stalled: stall.is_some_and(|(_, _, long)| long),
            leave_at,
            leave,
        })
    }

    /// One turn: read what is there, act on it, and write what is queued.
    fn turn(&mut self, base: Instant, rng: &mut Rng, ending: bool) {
        let now = Instant::now();
        if let State::Stalled(until) = self.state {
            if now < until && !ending {
                if self.flood_while_stalled && self.output.len() < 4 * 1024 {
                    self.output
                        .extend_from_slice("/help\n".repeat(FILLERS_PER_TURN).as_bytes());
                }
                self.write();
                return;
            }
            self.state = State::Active;
        }
        if !matches!(self.state, State::Leaving(_) | State::Done)
            && (ending || now >= self.leave_at)
        {
            self.begin_leaving(now);
        }
        if self.state == State::Done {
            return;
        }
        self.read(base);
        if let State::Leaving(deadline) = self.state
            && now >= deadline
        {
            self.record.stuck_leaving = true;
            self.state = State::Done;
        }
        if self.state == State::Active {
            if let Some((at, length)) = self.stall
                && now >= at
            {
                self.stall = None;
                self.record.stalled = true;
                self.state = State::Stalled(now + length);
                return;
            }
            if now >= self.next_send {
                let seq = self.record.sent.len();
                self.record.sent.push((base.elapsed(), None));
                let pad = "x".repeat(PAD);
                self.output
                    .extend_from_slice(format!("{seq} {pad}\n/ping {seq}\n").as_bytes());
                self.next_send = now + rng.millis(600, 1400);
            }
        }
        self.write();
    }

    fn begin_leaving(&mut self, now: Instant) {
        match self.leave {
            Leave::Abrupt if !matches!(self.state, State::Welcome | State::Naming) => {
                self.state = State::Done;
            }
            Leave::HalfClose => {
                self.write();
                let _ = self.stream.shutdown(Shutdown::Write);
                self.state = State::Leaving(now + LEAVE_QUIET);
            }
            _ => {
                self.output.extend_from_slice(b"/quit soak\n");
                self.state = State::Leaving(now + LEAVE_QUIET);
            }
        }
    }

    fn write(&mut self) {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return self.closed(),
                Ok(written) => {
                    self.output.drain(..written);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.closed(),
            }
        }
    }

    fn read(&mut self, base: Instant) {
        let mut buffer = [0; 64 * 1024];
        for _ in 0..16 {
            match self.stream.read(&mut buffer) {
                Ok(0) => {
                    self.lines(base);
                    return self.closed();
                }
                Ok(read) => {
                    self.input.extend_from_slice(&buffer[..read]);
                    if let State::Leaving(_) = self.state {
                        self.state = State::Leaving(Instant::now() + LEAVE_QUIET);
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.lines(base);
                    return self.closed();
                }
            }
        }
        self.lines(base);
    }

    /// The server closed the connection (or it failed).
    fn closed(&mut self) {
        if !matches!(self.state, State::Leaving(_) | State::Done) {
            self.record.dropped = true;
        }
        self.state = State::Done;
    }

    fn lines(&mut self, base: Instant) {
        let mut start = 0;
        while let Some(end) = self.input[start..].iter().position(|&byte| byte == b'\n') {
            let mut line = &self.input[start..start + end];
            start += end + 1;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            self.line(base, line);
        }
        self.input.drain(..start);
    }

    fn line(&mut self, base: Instant, line: String) {
        let record = &mut self.record;
        record.lines_read += 1;
        let at = record.lines_read;
        if let Some(count) = line
            .strip_prefix("*** [")
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(count, rest)| rest.ends_with(" skipped]").then_some(count))
        {
            match count.parse() {
                Ok(count) => record.skips.push((at, count)),
                Err(_) => record.odd_lines.push(line),
            }
        } else if let Some(token) = line.strip_prefix("*** pong ") {
            let Some(entry) = token
                .parse::<usize>()
                .ok()
                .and_then(|seq| record.sent.get_mut(seq))
            else {
                return record.odd_lines.push(line);
            };
            entry.1 = Some(base.elapsed());
            record.barrier = Some(entry.0);
        } else if let Some(name) = line
            .strip_prefix("*** ")
            .and_then(|rest| rest.strip_suffix(" left (too slow to keep up)"))
        {
            record.too_slow.push(name.to_owned());
        } else if line.starts_with("***") {
            match self.state {
                State::Welcome if line.starts_with("*** #lobby (") => {
                    record.ready = Some(base.elapsed());
                    self.output
                        .extend_from_slice(format!("/nick {}\n", record.nick).as_bytes());
                    self.state = State::Naming;
                }
                State::Naming if line == format!("*** You are now known as {}.", record.nick) => {
                    self.state = State::Active;
                }
                _ => {}
            }
        } else if let Some((name, text)) = line.split_once(": ")
            && let Some(seq) = text
                .split_once(' ')
                .and_then(|(seq, _)| seq.parse::<u64>().ok())
        {
            record
                .received
                .entry(name.to_owned())
                .or_default()
                .push(seq);
            record
                .received_at
                .entry(name.to_owned())
                .or_default()
                .push(at);
        } else {
            record.odd_lines.push(line);
        }
    }
}

/// Runs one worker's population until [`RUN`] has passed and its last clients have left.
fn worker(
    addr: SocketAddr,
    index: usize,
    base: Instant,
    next_nick: &AtomicUsize,
    stop: &AtomicBool,
) -> Result<Vec<Record>, String> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((index as u64 + 1) << 32));
    let mut slots: Vec<Slot> = Vec::new();
    let mut done = Vec::new();
    let mut connections = 0;
    let hard_end = base + RUN + WIND_DOWN;
    loop {
        let now = Instant::now();
        let ending = now >= base + RUN || stop.load(Ordering::SeqCst);
        if ending && slots.is_empty() {
            return Ok(done);
        }
        if now >= hard_end {
            // Whatever is left is recorded as stuck; dropping it closes the sockets.
            for mut slot in slots {
                slot.record.stuck_leaving = true;
                done.push(slot.record);
            }
            return Ok(done);
        }
        if !ending {
            for _ in 0..CONNECTS_PER_TURN {
                if slots.len() >= PER_WORKER || connections >= MAX_CONNECTIONS_PER_WORKER {
                    break;
                }
                let nick = format!("c{}", next_nick.fetch_add(1, Ordering::SeqCst));
                slots.push(Slot::connect(addr, nick, &mut rng)?);
                connections += 1;
            }
        }
        for slot in &mut slots {
            slot.turn(base, &mut rng, ending);
        }
        let mut kept = Vec::with_capacity(slots.len());
        for slot in slots {
            if slot.state == State::Done {
                done.push(slot.record);
            } else {
                kept.push(slot);
            }
        }
        slots = kept;
        thread::sleep(TURN);
    }
}

/// The server's peak resident set size in kB, from `/proc/<pid>/status`.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("reading /proc/{pid}/status: {error}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status:\n{status}"))
}

#[test]
fn a_changing_crowd_gets_every_line_in_order_and_only_stallers_are_dropped() {
    let started = Instant::now();
    let server = Server::plain(RUNNER, &["--max-per-ip", "0", "--queue-limit", QUEUE_LIMIT]);
    let addr = server.addr();
    let base = Instant::now();
    let next_nick = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|index| {
            let (next_nick, stop) = (Arc::clone(&next_nick), Arc::clone(&stop));
            thread::spawn(move || {
                let result = worker(addr, index, base, &next_nick, &stop);
                if result.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                result
            })
        })
        .collect();
    let mut records = Vec::new();
    let mut failures = Vec::new();
    for worker in workers {
        match worker.join() {
            Ok(Ok(done)) => records.extend(done),
            Ok(Err(error)) => failures.push(error),
            Err(_) => failures.push("a worker panicked".to_owned()),
        }
    }
    assert!(failures.is_empty(), "workers failed: {failures:?}");
    let peak_kb = peak_rss_kb(server.pid());
    let log = server.log();

    let by_nick: HashMap<&str, &Record> = records
        .iter()
        .map(|record| (record.nick.as_str(), record))
        .collect();
    let stalled: HashSet<&str> = records
        .iter()
        .filter(|record| record.stalled)
        .map(|record| record.nick.as_str())
        .collect();
    let mut problems: Vec<String> = Vec::new();
    let mut lines_checked = 0usize;
    let mut lines_received = 0usize;
    let (mut skip_notices, mut skip_checked) = (0usize, 0u64);
    for receiver in &records {
        let nick = &receiver.nick;
        if !receiver.odd_lines.is_empty() {
            problems.push(format!("{nick} got odd lines: {:?}", receiver.odd_lines));
        }
        if receiver.stuck_leaving {
            problems.push(format!("{nick} left but the server did not close it"));
        }
        if receiver.dropped && !receiver.stalled {
            problems.push(format!("{nick} was dropped but never stalled"));
        }
        for name in &receiver.too_slow {
            if !stalled.contains(name.as_str()) {
                problems.push(format!(
                    "{nick} saw {name} dropped as too slow, but it never stalled"
                ));
            }
        }
        // Whatever arrived from one sender is increasing, and consecutive but where a skip
        // notice came between; the gaps charged to each notice add up to at most its count.
        let mut charged = vec![0u64; receiver.skips.len()];
        for (sender, seqs) in &receiver.received {
            lines_received += seqs.len();
            let Some(from) = by_nick.get(sender.as_str()) else {
                problems.push(format!("{nick} got lines from unknown {sender:?}"));
                continue;
            };
            if seqs
                .last()
                .is_some_and(|&last| last >= from.sent.len() as u64)
            {
                problems.push(format!("{nick} got {sender}'s lines never sent: {seqs:?}"));
            }
            let at = &receiver.received_at[sender];
            for (pair, places) in seqs.windows(2).zip(at.windows(2)) {
                if pair[1] <= pair[0] {
                    problems.push(format!(
                        "{nick} got {sender}'s lines out of order: {seqs:?}"
                    ));
                } else if pair[1] > pair[0] + 1 {
                    let notice = receiver
                        .skips
                        .iter()
                        .rposition(|&(place, _)| places[0] < place && place < places[1]);
                    match notice {
                        Some(notice) => {
                            charged[notice] += pair[1] - pair[0] - 1;
                            skip_checked += pair[1] - pair[0] - 1;
                        }
                        None => problems.push(format!(
                            "{nick} got {sender}'s lines with an unannounced gap: {} then {}",
                            pair[0], pair[1]
                        )),
                    }
                }
            }
        }
        for (&(_, count), charged) in receiver.skips.iter().zip(&charged) {
            skip_notices += 1;
            if *charged > count {
                problems.push(format!(
                    "{nick} was told {count} messages were skipped, but {charged} lines are missing"
                ));
            }
        }
        // A reader that never stalled gets every line that was guaranteed to reach it.
        let (false, false, Some(ready), Some(barrier)) = (
            receiver.stalled,
            receiver.dropped,
            receiver.ready,
            receiver.barrier,
        ) else {
            continue;
        };
        for sender in &records {
            if sender.nick == *nick {
                continue;
            }
            let due: Vec<u64> = (0u64..)
                .zip(&sender.sent)
                .filter(|(_, (queued, acked))| {
                    *queued > ready && acked.is_some_and(|acked| acked < barrier)
                })
                .map(|(seq, _)| seq)
                .collect();
            if due.is_empty() {
                continue;
            }
            lines_checked += due.len();
            let got = receiver
                .received
                .get(&sender.nick)
                .map_or(&[][..], Vec::as_slice);
            // `got` is consecutive (checked above), so it holds exactly its first to its last.
            let covered = |seq: u64| {
                got.first().is_some_and(|&first| first <= seq)
                    && got.last().is_some_and(|&last| seq <= last)
            };
            let missing: Vec<u64> = due.iter().copied().filter(|&seq| !covered(seq)).collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "{nick} missed {}'s lines {missing:?} (got {got:?})",
                    sender.nick
                ));
            }
        }
    }
    let drop_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("dropped: not reading"))
        .collect();
    for line in &drop_lines {
        let by_stalled = records
            .iter()
            .filter(|record| record.stalled)
            .any(|record| {
                line.contains(&format!(" {} (", record.nick))
                    || record
                        .addr
                        .is_some_and(|addr| line.contains(&format!("({addr})")))
            });
        if !by_stalled {
            problems.push(format!(
                "the server dropped a client that never stalled: {line}"
            ));
        }
    }
    if log.contains("bug:") {
        problems.push("the server logged a bug".to_owned());
    }

    let sent: usize = records.iter().map(|record| record.sent.len()).sum();
    let dropped = records.iter().filter(|record| record.dropped).count();
    eprintln!(
        "soak: {} connections, {} stalled, {sent} lines sent, {lines_received} received, \
         {lines_checked} checked as due, {skip_notices} skip notices covering {skip_checked} \
         missing lines, {} drops logged ({dropped} seen by clients), \
         peak RSS {peak_kb} kB (limit {PEAK_RSS_LIMIT_KB} kB), {:.1} s",
        records.len(),
        stalled.len(),
        drop_lines.len(),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        problems.is_empty(),
        "{} problems, the first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        lines_checked >= 10_000,
        "too little was checked: {lines_checked} lines"
    );
    assert!(
        peak_kb < PEAK_RSS_LIMIT_KB,
        "the server's peak RSS was {peak_kb} kB, over {PEAK_RSS_LIMIT_KB} kB"
    );
}
