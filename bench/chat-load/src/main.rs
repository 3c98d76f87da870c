//! `chat-load`: the fan-out load generator. It measures a chat server (ours, or any IRC server)
//! from outside, over loopback, as its users would feel it.
//!
//! - The default mode connects N clients, a batch at a time (`--batch`), registers them, puts
//!   them in one room (or spreads them over K rooms with `--rooms K`: client n in room n % K),
//!   waits for the joins to drain, then has every client send R messages a second to its room
//!   for T seconds, open-loop (on a fixed schedule, whatever the replies), and drains. Every
//!   message carries a marker `~L<sender>:<seq>:<scheduled µs>~` at its end, found in any line
//!   a client receives, so latency is measured from the *scheduled* send time, the same
//!   generator works over the plain dialect and over IRC, and each delivery is checked: a line
//!   must reach every other member of its sender's room once, and no one else (deliveries are
//!   counted per room; lines to the wrong people, and second copies, are counted apart).
//! - `--raw` measures this machine's loopback ceiling for 64-byte lines, one per `write()` and
//!   batched 16 KiB per `write()`, so results can be quoted as a fraction of it.
//! - `--idle N` holds N idle connections and reports the server's memory per connection, then
//!   checks that every one of them still gets a broadcast.
//!
//! Several servers sharing one chat (cluster mode, docs/CLUSTER.md) are measured as one: `--addr`
//! takes a comma-separated list, and client n connects to address n modulo their number;
//! `--server-pid` takes a list too, whose CPU is summed (and given per process with `--json`);
//! `--redis-pid` reports redis-server's CPU apart from the servers'.
//!
//! One thread, one smol executor: pin it to a core other than the server's (`taskset`). Its own
//! CPU share while sending is reported, and a run where it was the bottleneck (90% of its core
//! or more, or waking for its sends more than 5 ms late at p99) is flagged. Sends are timed to
//! 250 µs; latency counts from the scheduled time.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use smol::{Async, LocalExecutor, Timer};

/// Load generator for chat-runner (or any IRC server): fan-out throughput and latency, the
/// loopback ceiling (--raw), and memory per idle connection (--idle). Several nodes of one
/// cluster are measured together: list their addresses in --addr and their pids in --server-pid.
#[derive(FromArgs, Debug)]
struct Args {
    /// the server, HOST:PORT; or several, comma-separated (the nodes of one cluster), over which
    /// the clients are spread: client n connects to address n % their count (--idle takes
    /// one). Default: 127.0.0.1:9999
    #[argh(option, default = "String::from(\"127.0.0.1:9999\")")]
    addr: String,

    /// how to talk: plain (chat-runner's text dialect) or irc. Default: plain
    #[argh(option, default = "String::from(\"plain\")")]
    dialect: String,

    /// clients, over all rooms. Default: 200
    #[argh(option, default = "200")]
    clients: usize,

    /// rooms the clients are spread over: client n joins room n % K (`#bench` when K is 1,
    /// else `#bench0` ... `#bench<K-1>`), and every room talks. Deliveries are counted per
    /// room: a line must reach every other member of its room and no one else. Default: 1
    #[argh(option, default = "1")]
    rooms: usize,

    /// clients registered at once (connect, nickname, join): batches of this many, each
    /// waited for before the next. Default: 200
    #[argh(option, default = "200")]
    batch: usize,

    /// messages a second each client sends. Default: 10
    #[argh(option, default = "10.0")]
    rate: f64,

    /// seconds of sending. Default: 10
    #[argh(option, default = "10.0")]
    duration: f64,

    /// bytes of text per message before the marker. Default: 32
    #[argh(option, default = "32")]
    pad: usize,

    /// the server's process id, to report its CPU time and peak memory (from /proc); or
    /// several, comma-separated (the nodes of one cluster): the report gives their sum, and
    /// --json each one's too (--idle takes one)
    #[argh(option)]
    server_pid: Option<String>,

    /// redis-server's process id (cluster mode), to report its CPU time apart from the servers'
    #[argh(option)]
    redis_pid: Option<u32>,

    /// set TCP_QUICKACK after every read, so delayed ACKs neither hide nor add latency
    #[argh(switch)]
    quickack: bool,

    /// print one JSON object with the results (for scripts) instead of a report
    #[argh(switch)]
    json: bool,

    /// measure the loopback ceiling for this many seconds per mode, instead of a server
    #[argh(option)]
    raw: Option<f64>,

    /// hold this many idle connections, report the server's memory per connection, and check
    /// that each gets a broadcast (needs --server-pid)
    #[argh(option)]
    idle: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Plain,
    Irc,
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    raise_descriptor_limit();
    let result = if let Some(seconds) = args.raw {
        raw(Duration::from_secs_f64(seconds), args.json)
    } else {
        let dialect = match args.dialect.as_str() {
            "plain" => Dialect::Plain,
            "irc" => Dialect::Irc,
            other => {
                eprintln!("chat-load: --dialect {other:?}: expected plain or irc");
                return ExitCode::from(2);
            }
        };
        let addrs = match parse_list::<SocketAddr>(&args.addr) {
            Ok(addrs) => addrs,
            Err(error) => {
                eprintln!("chat-load: --addr {:?}: {error}", args.addr);
                return ExitCode::from(2);
            }
        };
        let server_pids = match args.server_pid.as_deref().map(parse_list::<u32>) {
            None => Vec::new(),
            Some(Ok(pids)) => pids,
            Some(Err(error)) => {
                eprintln!(
                    "chat-load: --server-pid {:?}: {error}",
                    args.server_pid.as_deref().unwrap_or_default()
                );
                return ExitCode::from(2);
            }
        };
        let executor = Rc::new(LocalExecutor::new());
        let run = async {
            match args.idle {
                Some(count) => idle(&executor, &addrs, &server_pids, count, &args).await,
                None => fan_out(&executor, &addrs, &server_pids, dialect, &args).await,
            }
        };
        smol::block_on(executor.run(run))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-load: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A comma-separated list of at least one item (spaces around the items are allowed).
fn parse_list<T: std::str::FromStr>(list: &str) -> Result<Vec<T>, String>
where
    T::Err: std::fmt::Display,
{
    list.split(',')
        .map(|item| {
            let item = item.trim();
            if item.is_empty() {
                return Err("an empty item in the list".to_owned());
            }
            item.parse::<T>()
                .map_err(|error| format!("{item:?}: {error}"))
        })
        .collect()
}

fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum.or(Some(65_536));
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

fn other(message: impl Into<String>) -> io::Error {
    io::Error::other(message.into())
}

// ----- The fan-out run -----

/// Latencies in microseconds, in buckets of about 3% (32 per power of two): enough for
/// percentiles without keeping every sample.
struct Histogram {
    counts: Vec<u64>,
    max: u64,
    total: u64,
}

impl Histogram {
    const SUB: u64 = 32;

    fn new() -> Self {
        Self {
            counts: vec![0; 64 * Self::SUB as usize],
            max: 0,
            total: 0,
        }
    }

    fn bucket(value: u64) -> usize {
        if value < Self::SUB {
            return value as usize;
        }
        let power = 63 - u64::from(value.leading_zeros());
        let shift = power - 5; // SUB = 2^5
        let sub = (value >> shift) - Self::SUB;
        ((shift + 1) * Self::SUB + sub) as usize
    }

    /// The smallest value a bucket holds.
    fn floor(bucket: usize) -> u64 {
        let bucket = bucket as u64;
        if bucket < Self::SUB {
            return bucket;
        }
        let shift = bucket / Self::SUB - 1;
        (Self::SUB + bucket % Self::SUB) << shift
    }

    fn record(&mut self, value: u64) {
        self.counts[Self::bucket(value)] += 1;
        self.max = self.max.max(value);
        self.total += 1;
    }

    /// The value at quantile `q` (0..=1), as the top of its bucket.
    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::floor(bucket + 1).saturating_sub(1).min(self.max);
            }
        }
        self.max
    }
}

/// What every client's reader and sender add to.
struct Tally {
    deliveries: u64,
    latency: Histogram,
    bytes: u64,
    last_byte: Instant,
    disconnects: u64,
    sent: u64,
    /// Lines sent from each room's members, by room.
    room_sent: Vec<u64>,
    /// Lines delivered within each room, by room.
    room_delivered: Vec<u64>,
    /// Marked lines that reached someone they were not for: a member of another room, or
    /// their own sender.
    misdelivered: u64,
    /// Marked lines a member got a second time (or out of their sender's order).
    duplicates: u64,
    /// How late the generator woke for its sends, in µs (see `send`).
    send_lag: Histogram,
    /// Sends that were already due when the previous write to the same client finished: the
    /// server was not taking that client's lines as fast as they were due (its back-pressure,
    /// not the generator's lateness).
    sends_backpressured: u64,
}

impl Tally {
    fn new(rooms: usize) -> Self {
        Self {
            deliveries: 0,
            latency: Histogram::new(),
            bytes: 0,
            last_byte: Instant::now(),
            disconnects: 0,
            sent: 0,
            room_sent: vec![0; rooms],
            room_delivered: vec![0; rooms],
            misdelivered: 0,
            duplicates: 0,
            send_lag: Histogram::new(),
            sends_backpressured: 0,
        }
    }

    /// Forgets what was received during registration (joins, welcomes).
    fn reset_deliveries(&mut self) {
        self.deliveries = 0;
        self.latency = Histogram::new();
        self.misdelivered = 0;
        self.duplicates = 0;
        self.room_delivered.iter_mut().for_each(|count| *count = 0);
    }
}

/// Who is in which room: client n is in room n % rooms.
#[derive(Clone, Copy, Debug)]
struct Layout {
    clients: usize,
    rooms: usize,
}

impl Layout {
    fn room_of(self, n: usize) -> usize {
        n % self.rooms
    }

    /// Client n's place among its room's members (0, 1, ...).
    fn place_of(self, n: usize) -> usize {
        n / self.rooms
    }

    fn members(self, room: usize) -> usize {
        self.clients / self.rooms + usize::from(room < self.clients % self.rooms)
    }

    fn name(self, room: usize) -> String {
        if self.rooms == 1 {
            "#bench".to_owned()
        } else {
            format!("#bench{room}")
        }
    }

    /// Deliveries a room's lines should make: each to every member but its sender.
    fn expected(self, room_sent: &[u64]) -> Vec<u64> {
        room_sent
            .iter()
            .enumerate()
            .map(|(room, &sent)| sent * (self.members(room) as u64).saturating_sub(1))
            .collect()
    }
}

/// What one member makes of a marked line it received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Received {
    /// For this member, first time: counts.
    Delivered,
    /// For someone else (another room, or the member's own line).
    Misdelivered,
    /// Seen before, or older than one seen from the same sender.
    Duplicate,
}

/// One member's view of its room: the next sequence number due from each other member.
struct Member {
    n: usize,
    layout: Layout,
    next: Vec<u64>,
}

impl Member {
    fn new(n: usize, layout: Layout) -> Self {
        Self {
            n,
            layout,
            next: vec![0; layout.members(layout.room_of(n))],
        }
    }

    fn judge(&mut self, marker: Marker) -> Received {
        let Ok(sender) = usize::try_from(marker.sender) else {
            return Received::Misdelivered;
        };
        if sender >= self.layout.clients
            || sender == self.n
            || self.layout.room_of(sender) != self.layout.room_of(self.n)
        {
            return Received::Misdelivered;
        }
        let next = &mut self.next[self.layout.place_of(sender)];
        if marker.seq < *next {
            return Received::Duplicate;
        }
        *next = marker.seq + 1;
        Received::Delivered
    }
}

/// One client, registered, with whatever it read past its registration.
struct Registered {
    stream: Rc<Async<TcpStream>>,
    leftover: Vec<u8>,
}

/// Reads lines until one contains `wanted`, with a deadline; returns the bytes after it.
async fn read_until(
    stream: &Async<TcpStream>,
    buffer: &mut Vec<u8>,
    wanted: &[u8],
    deadline: Instant,
) -> io::Result<()> {
    loop {
        while let Some(end) = memchr::memchr(b'\n', buffer) {
            let found = memchr::memmem::find(&buffer[..end], wanted).is_some();
            buffer.drain(..=end);
            if found {
                return Ok(());
            }
        }
        let mut chunk = [0; 16 * 1024];
        let read = future::or(
            async { (&*stream).read(&mut chunk).await.map(Some) },
            async {
                Timer::at(deadline).await;
                Ok(None)
            },
        )
        .await?;
        match read {
            Some(0) => return Err(other("the server closed the connection")),
            Some(read) => buffer.extend_from_slice(&chunk[..read]),
            None => {
                return Err(other(format!(
                    "timed out waiting for {:?}",
                    String::from_utf8_lossy(wanted)
                )));
            }
        }
    }
}

/// Connects client `n` and puts it in `room`, alone there with the others.
async fn register(
    addr: SocketAddr,
    n: usize,
    dialect: Dialect,
    room: String,
) -> io::Result<Registered> {
    let stream = Async::<TcpStream>::connect(addr).await?;
    stream.get_ref().set_nodelay(true)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buffer = Vec::new();
    match dialect {
        Dialect::Plain => {
            // Talk in the room only: the lobby would get everyone's news too.
            let lines = format!("/nick c{n}\n/join {room}\n/part #lobby\n");
            (&stream).write_all(lines.as_bytes()).await?;
            read_until(&stream, &mut buffer, b"*** You left #lobby.", deadline).await?;
        }
        Dialect::Irc => {
            let lines = format!("NICK c{n}\r\nUSER c{n} 0 * :load\r\n");
            (&stream).write_all(lines.as_bytes()).await?;
            read_until(&stream, &mut buffer, b" 001 ", deadline).await?;
            // PART #lobby: chat-runner puts IRC clients there; elsewhere it is a harmless error.
            let lines = format!("JOIN {room}\r\nPART #lobby\r\n");
            (&stream).write_all(lines.as_bytes()).await?;
            let names_end = format!(" 366 c{n} {room} ");
            read_until(&stream, &mut buffer, names_end.as_bytes(), deadline).await?;
        }
    }
    Ok(Registered {
        stream: Rc::new(stream),
        leftover: buffer,
    })
}

/// Reads until the server closes, counting marked lines (whether each was for `member`) and
/// their latencies.
async fn receive(
    stream: Rc<Async<TcpStream>>,
    mut buffer: Vec<u8>,
    mut member: Member,
    base: Instant,
    quickack: bool,
    tally: Rc<RefCell<Tally>>,
) {
    let room = member.layout.room_of(member.n);
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let read = match (&*stream).read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if quickack {
            let _ = rustix::net::sockopt::set_tcp_quickack(stream.get_ref(), true);
        }
        let now = base.elapsed().as_micros() as u64;
        buffer.extend_from_slice(&chunk[..read]);
        let mut tally = tally.borrow_mut();
        tally.bytes += read as u64;
        tally.last_byte = Instant::now();
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &buffer[start..]) {
            let line = &buffer[start..start + end];
            start += end + 1;
            if let Some(marker) = marker_in(line) {
                match member.judge(marker) {
                    Received::Delivered => {
                        tally.deliveries += 1;
                        tally.room_delivered[room] += 1;
                        tally.latency.record(now.saturating_sub(marker.micros));
                    }
                    Received::Misdelivered => tally.misdelivered += 1,
                    Received::Duplicate => tally.duplicates += 1,
                }
            }
        }
        buffer.drain(..start);
    }
    tally.borrow_mut().disconnects += 1;
}

/// A message's marker: who sent it, its number, and when it was scheduled (µs from the
/// generator's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Marker {
    sender: u64,
    seq: u64,
    micros: u64,
}

/// A line's marker `~L<sender>:<seq>:<µs>~`, if it has one. The marker ends the message, so
/// it is read from the end, by hand: at millions of lines a second, a general substring
/// search and a string parse were a third of the generator's time.
fn marker_in(line: &[u8]) -> Option<Marker> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut rest = line.strip_suffix(b"~")?;
    let micros = take_number_back(&mut rest)?;
    rest = rest.strip_suffix(b":")?;
    let seq = take_number_back(&mut rest)?;
    rest = rest.strip_suffix(b":")?;
    let sender = take_number_back(&mut rest)?;
    rest.strip_suffix(b"~L")?;
    Some(Marker {
        sender,
        seq,
        micros,
    })
}

/// Takes the decimal number that ends `bytes` off it: at least one digit, at most 19.
fn take_number_back(bytes: &mut &[u8]) -> Option<u64> {
    let digits = bytes
        .iter()
        .rev()
        .take(20)
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let (head, number) = bytes.split_at(bytes.len() - digits);
    *bytes = head;
    Some(
        number
            .iter()
            .fold(0, |value, digit| value * 10 + u64::from(digit - b'0')),
    )
}

/// How finely sends are timed; see `send`.
const SEND_GRAIN: Duration = Duration::from_micros(250);

/// A send later than this after its time (the generator waking late, not the server pushing
/// back) counts against the generator: see [`Tally::send_lag`].
const LAG_BOUND_MS: f64 = 5.0;

/// Sends client `n`'s messages to `room` on schedule: every `period`, phase-shifted so that
/// the clients' sends are spread evenly, from `start` to `end`. Each send waits for the next
/// multiple of [`SEND_GRAIN`] at or after its scheduled time, so that the sends due together
/// wake the generator once (a timer per send cost it a tenth of its time, in re-arming the
/// reactor's timer); the latency still counts from the scheduled time, lateness included.
///
/// How late the generator woke for each send is recorded (`send_lag`): a generator short of
/// CPU wakes late for everyone. A send already due when the previous write to this client
/// finished is the server's back-pressure instead, and counted apart.
#[allow(clippy::too_many_arguments)]
async fn send(
    stream: Rc<Async<TcpStream>>,
    (n, layout): (usize, Layout),
    room: String,
    period: Duration,
    (base, start, end): (Instant, Instant, Instant),
    dialect: Dialect,
    pad: &str,
    tally: Rc<RefCell<Tally>>,
) {
    let offset = period.mul_f64(n as f64 / layout.clients as f64);
    let room_index = layout.room_of(n);
    let mut line = String::new();
    for seq in 0u64.. {
        let scheduled = start + offset + period.mul_f64(seq as f64);
        if scheduled >= end {
            break;
        }
        let since = scheduled.duration_since(base).as_nanos();
        let grain = SEND_GRAIN.as_nanos();
        let late = (grain - since % grain) % grain;
        let wake = scheduled + Duration::from_nanos(late as u64);
        if Instant::now() > wake {
            tally.borrow_mut().sends_backpressured += 1;
        } else {
            Timer::at(wake).await;
            let lag = Instant::now().saturating_duration_since(wake);
            tally.borrow_mut().send_lag.record(lag.as_micros() as u64);
        }
        let micros = scheduled.duration_since(base).as_micros();
        line.clear();
        let _ = match dialect {
            Dialect::Plain => {
                std::fmt::Write::write_fmt(&mut line, format_args!("{pad} ~L{n}:{seq}:{micros}~\n"))
            }
            Dialect::Irc => std::fmt::Write::write_fmt(
                &mut line,
                format_args!("PRIVMSG {room} :{pad} ~L{n}:{seq}:{micros}~\r\n"),
            ),
        };
        if (&*stream).write_all(line.as_bytes()).await.is_err() {
            break;
        }
        let mut tally = tally.borrow_mut();
        tally.sent += 1;
        tally.room_sent[room_index] += 1;
    }
}

/// Waits until no byte has arrived for `quiet`, or `most` has passed.
async fn settle(tally: &Rc<RefCell<Tally>>, quiet: Duration, most: Duration) {
    let give_up = Instant::now() + most;
    loop {
        let since = tally.borrow().last_byte.elapsed();
        if since >= quiet || Instant::now() >= give_up {
            return;
        }
        Timer::after(quiet - since).await;
    }
}

/// After the last send: waits until every expected delivery has arrived, or `most` has passed,
/// then until no byte has arrived for `quiet` (to catch extra copies), within the same bound.
/// Waiting for quiet alone ended runs early on a busy machine: a server kept off the CPU for a
/// second with most of its lines still queued looked finished.
async fn drain(tally: &Rc<RefCell<Tally>>, layout: Layout, quiet: Duration, most: Duration) {
    let give_up = Instant::now() + most;
    loop {
        let arrived = {
            let tally = tally.borrow();
            tally.deliveries >= layout.expected(&tally.room_sent).iter().sum::<u64>()
        };
        if arrived || Instant::now() >= give_up {
            break;
        }
        Timer::after(Duration::from_millis(20)).await;
    }
    settle(
        tally,
        quiet,
        give_up.saturating_duration_since(Instant::now()),
    )
    .await;
}

/// CPU seconds (user + system) of a process, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: the fields that follow start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / rustix::param::clock_ticks_per_second() as f64)
}

/// Seconds a process's threads have spent runnable but waiting for a CPU (the second field
/// of `/proc/PID/task/TID/schedstat`, summed over its threads): how much other work on the
/// machine held it back.
fn run_queue_seconds(pid: &str) -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        let Ok(stat) = std::fs::read_to_string(path) else {
            continue; // a thread that ended meanwhile
        };
        total += stat.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some(total as f64 / 1e9)
}

/// CPU seconds of each process, by pid (`None` for one that /proc does not show).
fn cpu_of(pids: &[u32]) -> Vec<Option<f64>> {
    pids.iter()
        .map(|pid| cpu_seconds(&pid.to_string()))
        .collect()
}

/// The CPU each process used between two readings of [`cpu_of`].
fn cpu_used(before: &[Option<f64>], after: &[Option<f64>]) -> Vec<Option<f64>> {
    before
        .iter()
        .zip(after)
        .map(|(before, after)| before.zip(*after).map(|(a, b)| b - a))
        .collect()
}

/// The sum of every process's CPU, if there is at least one and each was read.
fn total(used: &[Option<f64>]) -> Option<f64> {
    if used.is_empty() {
        return None;
    }
    used.iter().copied().sum()
}

/// A `/proc/PID/status` field in kB, such as `VmHWM` or `VmRSS`.
fn memory_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn fan_out(
    executor: &LocalExecutor<'_>,
    addrs: &[SocketAddr],
    server_pids: &[u32],
    dialect: Dialect,
    args: &Args,
) -> io::Result<()> {
    if args.clients < 2 || args.rate <= 0.0 || args.duration <= 0.0 {
        return Err(other(
            "--clients must be at least 2, --rate and --duration above 0",
        ));
    }
    if args.rooms == 0 || args.rooms > args.clients / 2 {
        return Err(other(
            "--rooms must be at least 1, with at least 2 clients in each room",
        ));
    }
    let layout = Layout {
        clients: args.clients,
        rooms: args.rooms,
    };
    let base = Instant::now();
    let tally = Rc::new(RefCell::new(Tally::new(args.rooms)));
    // Connect and register a batch at a time, then let the joins drain.
    let setup = Instant::now();
    let mut streams = Vec::with_capacity(args.clients);
    let all: Vec<usize> = (0..args.clients).collect();
    for batch in all.chunks(args.batch.max(1)) {
        let registering: Vec<_> = batch
            .iter()
            .map(|&n| {
                let room = layout.name(layout.room_of(n));
                (
                    n,
                    executor.spawn(register(addrs[n % addrs.len()], n, dialect, room)),
                )
            })
            .collect();
        for (n, registering) in registering {
            let client = registering
                .await
                .map_err(|error| other(format!("client {n}: {error}")))?;
            streams.push(client.stream.clone());
            executor
                .spawn(receive(
                    client.stream,
                    client.leftover,
                    Member::new(n, layout),
                    base,
                    args.quickack,
                    tally.clone(),
                ))
                .detach();
        }
    }
    settle(&tally, Duration::from_millis(500), Duration::from_secs(30)).await;
    let setup_s = setup.elapsed().as_secs_f64();
    tally.borrow_mut().reset_deliveries();

    let redis_pids: Vec<u32> = args.redis_pid.into_iter().collect();
    let (servers_before, redis_before, own_before) = (
        cpu_of(server_pids),
        cpu_of(&redis_pids),
        cpu_seconds("self"),
    );
    let waited = |pids: &[u32]| -> Option<f64> {
        pids.iter()
            .map(|pid| run_queue_seconds(&pid.to_string()))
            .sum()
    };
    let (server_waited_before, own_waited_before) =
        (waited(server_pids), run_queue_seconds("self"));
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs_f64(args.duration);
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let pad: &'static str = Box::leak("x".repeat(args.pad).into_boxed_str());
    let senders: Vec<_> = streams
        .iter()
        .enumerate()
        .map(|(n, stream)| {
            executor.spawn(send(
                stream.clone(),
                (n, layout),
                layout.name(layout.room_of(n)),
                period,
                (base, start, end),
                dialect,
                pad,
                tally.clone(),
            ))
        })
        .collect();
    for sender in senders {
        sender.await;
    }
    // The generator's own share is taken over the sending alone: the quiet drain after it
    // would hide a generator that could not keep up while sending.
    let (sent_at, own_sending, own_waited) = (
        Instant::now(),
        cpu_seconds("self"),
        run_queue_seconds("self"),
    );
    drain(
        &tally,
        layout,
        Duration::from_secs(1),
        Duration::from_secs(15),
    )
    .await;
    let finished = Instant::now();
    let (servers_after, redis_after) = (cpu_of(server_pids), cpu_of(&redis_pids));
    let server_waited = server_waited_before
        .zip(waited(server_pids))
        .map(|(a, b)| b - a);

    let tally = tally.borrow();
    let wall = finished.duration_since(start).as_secs_f64();
    let room_expected = layout.expected(&tally.room_sent);
    let expected: u64 = room_expected.iter().sum();
    let rooms_incomplete = room_expected
        .iter()
        .zip(&tally.room_delivered)
        .filter(|(expected, delivered)| expected != delivered)
        .count();
    let room_ratio_min = room_expected
        .iter()
        .zip(&tally.room_delivered)
        .map(|(&expected, &delivered)| {
            if expected == 0 {
                1.0
            } else {
                delivered as f64 / expected as f64
            }
        })
        .fold(1.0, f64::min);
    let servers_cpu = cpu_used(&servers_before, &servers_after);
    let server_cpu = total(&servers_cpu);
    let redis_cpu = total(&cpu_used(&redis_before, &redis_after));
    let per_million = |cpu: Option<f64>| {
        cpu.filter(|_| tally.deliveries > 0)
            .map(|cpu| cpu * 1e6 / tally.deliveries as f64)
    };
    let peaks: Vec<Option<u64>> = server_pids
        .iter()
        .map(|&pid| memory_kb(pid, "VmHWM"))
        .collect();
    let sending = sent_at
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-3);
    let own_share = own_before.zip(own_sending).map(|(a, b)| (b - a) / sending);
    let own_wait_share = own_waited_before
        .zip(own_waited)
        .map(|(a, b)| (b - a) / sending);
    let send_lag_p99_ms = tally.send_lag.quantile(0.99) as f64 / 1000.0;
    let generator_behind = send_lag_p99_ms > LAG_BOUND_MS;
    let report = Report {
        addrs: addrs.to_vec(),
        dialect: args.dialect.clone(),
        clients: args.clients,
        rate: args.rate,
        offered: args.clients as f64 * args.rate,
        sent: tally.sent,
        expected,
        delivered: tally.deliveries,
        delivered_per_second: tally.deliveries as f64 / args.duration,
        ratio: if expected == 0 {
            0.0
        } else {
            tally.deliveries as f64 / expected as f64
        },
        p50_ms: tally.latency.quantile(0.5) as f64 / 1000.0,
        p99_ms: tally.latency.quantile(0.99) as f64 / 1000.0,
        p999_ms: tally.latency.quantile(0.999) as f64 / 1000.0,
        max_ms: tally.latency.max as f64 / 1000.0,
        disconnects: tally.disconnects,
        server_cpu,
        server_cpu_per_million: per_million(server_cpu),
        server_cpu_share: server_cpu.map(|cpu| cpu / wall),
        server_peak_rss_kb: if peaks.is_empty() {
            None
        } else {
            peaks.iter().copied().sum()
        },
        servers: server_pids
            .iter()
            .zip(&servers_cpu)
            .zip(&peaks)
            .map(|((&pid, &cpu), &peak_rss_kb)| ServerReport {
                pid,
                cpu,
                cpu_per_million: per_million(cpu),
                peak_rss_kb,
            })
            .collect(),
        redis_cpu,
        redis_cpu_per_million: per_million(redis_cpu),
        redis_cpu_share: redis_cpu.map(|cpu| cpu / wall),
        generator_cpu_share: own_share,
        generator_bound: own_share.is_some_and(|share| share >= 0.9) || generator_behind,
        rooms: args.rooms,
        room_expected,
        room_delivered: tally.room_delivered.clone(),
        rooms_incomplete,
        room_ratio_min,
        misdelivered: tally.misdelivered,
        duplicates: tally.duplicates,
        send_lag_p99_ms,
        send_lag_max_ms: tally.send_lag.max as f64 / 1000.0,
        sends_backpressured: tally.sends_backpressured,
        generator_behind,
        setup_s,
        server_wait_share: server_waited.map(|waited| waited / wall),
        generator_wait_share: own_wait_share,
    };
    report.print(args.json);
    Ok(())
}

/// One server process's part of a run.
struct ServerReport {
    pid: u32,
    cpu: Option<f64>,
    cpu_per_million: Option<f64>,
    peak_rss_kb: Option<u64>,
}

/// The results of one run.
struct Report {
    addrs: Vec<SocketAddr>,
    dialect: String,
    clients: usize,
    rate: f64,
    offered: f64,
    sent: u64,
    expected: u64,
    delivered: u64,
    delivered_per_second: f64,
    ratio: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    disconnects: u64,
    /// The servers' CPU seconds from the start of sending to the end of the drain, summed.
    server_cpu: Option<f64>,
    server_cpu_per_million: Option<f64>,
    server_cpu_share: Option<f64>,
    /// The sum of the servers' peaks.
    server_peak_rss_kb: Option<u64>,
    servers: Vec<ServerReport>,
    redis_cpu: Option<f64>,
    redis_cpu_per_million: Option<f64>,
    redis_cpu_share: Option<f64>,
    generator_cpu_share: Option<f64>,
    /// Its CPU share was 90% or more, or it woke late for its sends (`generator_behind`).
    generator_bound: bool,
    rooms: usize,
    room_expected: Vec<u64>,
    room_delivered: Vec<u64>,
    /// Rooms whose deliveries were not exactly those expected.
    rooms_incomplete: usize,
    /// The smallest share of a room's expected deliveries that arrived.
    room_ratio_min: f64,
    misdelivered: u64,
    duplicates: u64,
    send_lag_p99_ms: f64,
    send_lag_max_ms: f64,
    sends_backpressured: u64,
    /// p99 of the generator's lateness past [`LAG_BOUND_MS`].
    generator_behind: bool,
    /// Seconds to connect, register and join everyone, and drain the joins.
    setup_s: f64,
    /// The share of the run the servers' threads spent runnable but waiting for a CPU (other
    /// work on the machine): near 0 on a quiet machine.
    server_wait_share: Option<f64>,
    /// The same for the generator, while sending.
    generator_wait_share: Option<f64>,
}

impl Report {
    fn print(&self, json: bool) {
        let optional = |value: Option<f64>| value.map_or("null".to_owned(), |v| format!("{v:.4}"));
        let optional_kb = |kb: Option<u64>| kb.map_or("null".to_owned(), |kb| kb.to_string());
        if json {
            let addrs: Vec<String> = self
                .addrs
                .iter()
                .map(|addr| format!("\"{addr}\""))
                .collect();
            let servers: Vec<String> = self
                .servers
                .iter()
                .map(|server| {
                    format!(
                        "{{\"pid\":{},\"cpu_s\":{},\"cpu_s_per_million\":{},\"peak_rss_kb\":{}}}",
                        server.pid,
                        optional(server.cpu),
                        optional(server.cpu_per_million),
                        optional_kb(server.peak_rss_kb),
                    )
                })
                .collect();
            println!(
                "{{\"dialect\":\"{}\",\"clients\":{},\"rate\":{},\"offered_per_second\":{:.1},\
                 \"sent\":{},\"expected\":{},\"delivered\":{},\"delivered_per_second\":{:.1},\
                 \"delivered_ratio\":{:.6},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\
                 \"max_ms\":{:.3},\"disconnects\":{},\"server_cpu_s_per_million\":{},\
                 \"server_cpu_share\":{},\"server_peak_rss_kb\":{},\"generator_cpu_share\":{},\
                 \"generator_bound\":{},\"addrs\":[{}],\"server_cpu_s\":{},\"servers\":[{}],\
                 \"redis_cpu_s\":{},\"redis_cpu_s_per_million\":{},\"redis_cpu_share\":{},\
                 \"rooms\":{},\"rooms_incomplete\":{},\"room_ratio_min\":{:.6},\
                 \"misdelivered\":{},\"duplicates\":{},\"send_lag_p99_ms\":{:.3},\
                 \"send_lag_max_ms\":{:.3},\"sends_backpressured\":{},\"generator_behind\":{},\
                 \"setup_s\":{:.3},\"server_wait_share\":{},\"generator_wait_share\":{},\
                 \"room_expected\":[{}],\"room_delivered\":[{}]}}",
                self.dialect,
                self.clients,
                self.rate,
                self.offered,
                self.sent,
                self.expected,
                self.delivered,
                self.delivered_per_second,
                self.ratio,
                self.p50_ms,
                self.p99_ms,
                self.p999_ms,
                self.max_ms,
                self.disconnects,
                optional(self.server_cpu_per_million),
                optional(self.server_cpu_share),
                optional_kb(self.server_peak_rss_kb),
                optional(self.generator_cpu_share),
                self.generator_bound,
                addrs.join(","),
                optional(self.server_cpu),
                servers.join(","),
                optional(self.redis_cpu),
                optional(self.redis_cpu_per_million),
                optional(self.redis_cpu_share),
                self.rooms,
                self.rooms_incomplete,
                self.room_ratio_min,
                self.misdelivered,
                self.duplicates,
                self.send_lag_p99_ms,
                self.send_lag_max_ms,
                self.sends_backpressured,
                self.generator_behind,
                self.setup_s,
                optional(self.server_wait_share),
                optional(self.generator_wait_share),
                join_numbers(&self.room_expected),
                join_numbers(&self.room_delivered),
            );
            return;
        }
        println!(
            "{} clients ({}) in {} room(s), {} msgs/s each: offered {:.0} msgs/s; set up in {:.2} s",
            self.clients, self.dialect, self.rooms, self.rate, self.offered, self.setup_s
        );
        if self.addrs.len() > 1 {
            let addrs: Vec<String> = self.addrs.iter().map(ToString::to_string).collect();
            println!(
                "  spread over {} servers: {}",
                self.addrs.len(),
                addrs.join(", ")
            );
        }
        println!(
            "  delivered {} of {} ({:.3}%), {:.0} deliveries/s; {} disconnects",
            self.delivered,
            self.expected,
            self.ratio * 100.0,
            self.delivered_per_second,
            self.disconnects
        );
        println!(
            "  per room: {} of {} rooms short or over, the lowest got {:.3}%; {} misdelivered, \
             {} duplicates",
            self.rooms_incomplete,
            self.rooms,
            self.room_ratio_min * 100.0,
            self.misdelivered,
            self.duplicates
        );
        println!(
            "  latency from the scheduled send: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        );
        if let (Some(per_million), Some(share)) =
            (self.server_cpu_per_million, self.server_cpu_share)
        {
            let (who, peak) = if self.servers.len() > 1 {
                (
                    format!("{} servers together", self.servers.len()),
                    "peak RSS (summed)",
                )
            } else {
                ("server".to_owned(), "peak RSS")
            };
            println!(
                "  {who}: {per_million:.3} CPU s per million deliveries, {:.0}% of a core, {peak} {} kB",
                share * 100.0,
                self.server_peak_rss_kb.unwrap_or(0)
            );
            if self.servers.len() > 1 {
                for server in &self.servers {
                    println!(
                        "    pid {}: {} CPU s per million deliveries, peak RSS {} kB",
                        server.pid,
                        server
                            .cpu_per_million
                            .map_or("?".to_owned(), |cpu| format!("{cpu:.3}")),
                        server.peak_rss_kb.unwrap_or(0)
                    );
                }
            }
        }
        if let (Some(per_million), Some(share)) = (self.redis_cpu_per_million, self.redis_cpu_share)
        {
            println!(
                "  redis-server: {per_million:.3} CPU s per million deliveries, {:.0}% of a core",
                share * 100.0
            );
        }
        if let (Some(server), Some(generator)) = (self.server_wait_share, self.generator_wait_share)
        {
            println!(
                "  waiting for a CPU (other work on this machine): server {:.0}% of the run, \
                 generator {:.0}% of its sending",
                server * 100.0,
                generator * 100.0
            );
        }
        if let Some(share) = self.generator_cpu_share {
            println!(
                "  generator: {:.0}% of a core, woke for its sends p99 {:.2} ms late (max {:.2}), \
                 {} sends held back by the server{}",
                share * 100.0,
                self.send_lag_p99_ms,
                self.send_lag_max_ms,
                self.sends_backpressured,
                if self.generator_bound {
                    " -- the generator was the bottleneck: this run measures it, not the server"
                } else {
                    ""
                }
            );
        }
    }
}

/// Numbers, comma-separated (for a JSON array).
fn join_numbers(numbers: &[u64]) -> String {
    numbers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

// ----- Idle connections -----

/// What an idle connection is told when the server has put it in the lobby (chat-runner's
/// plain dialect): from then on it hears what is said there.
const WELCOMED: &[u8] = b"You are now talking in #lobby.";

/// How long the idle connections get to be welcomed, all of them, before the run gives up.
const WELCOME_LIMIT: Duration = Duration::from_secs(300);

/// How far an idle connection has got.
#[derive(Clone, Copy, Debug, Default)]
struct IdleState {
    welcomed: bool,
    got_broadcast: bool,
}

/// Holds `count` idle connections; reports the server's memory before and after, and whether
/// every one of them gets a broadcast.
///
/// A connection the kernel has accepted may still wait in the listen backlog, and the server
/// greets a connection (puts it in the lobby) only some time after taking it: a broadcast said
/// before then does not reach it. So the memory is read, and the broadcast said, only once
/// every connection has been welcomed to the lobby (or [`WELCOME_LIMIT`] has passed, which
/// fails the run, saying how many were); the speaker waits for its own welcome too.
async fn idle(
    executor: &LocalExecutor<'_>,
    addrs: &[SocketAddr],
    server_pids: &[u32],
    count: usize,
    args: &Args,
) -> io::Result<()> {
    let (&[addr], &[pid]) = (addrs, server_pids) else {
        return Err(other("--idle needs one --addr and one --server-pid"));
    };
    let rss = |field| memory_kb(pid, field).unwrap_or(0);
    let empty = rss("VmRSS");
    // Connect them all, a batch at a time; each just reads, noting its welcome and whether the
    // broadcast came.
    let states: Rc<RefCell<Vec<IdleState>>> =
        Rc::new(RefCell::new(vec![IdleState::default(); count]));
    let mut readers = Vec::with_capacity(count);
    let started = Instant::now();
    for batch in (0..count).collect::<Vec<_>>().chunks(500) {
        let connects: Vec<_> = batch
            .iter()
            .map(|&n| (n, executor.spawn(Async::<TcpStream>::connect(addr))))
            .collect();
        for (n, connect) in connects {
            let stream = connect.await?;
            let states = states.clone();
            readers.push(executor.spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0; 4096];
                while let Ok(read) = (&stream).read(&mut chunk).await {
                    if read == 0 {
                        break;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    let mut states = states.borrow_mut();
                    if memchr::memmem::find(&buffer, WELCOMED).is_some() {
                        states[n].welcomed = true;
                    }
                    if memchr::memmem::find(&buffer, b"~IDLE~").is_some() {
                        states[n].got_broadcast = true;
                    }
                    // Keep only a tail long enough to catch a marker split across reads.
                    if buffer.len() > 64 {
                        buffer.drain(..buffer.len() - 64);
                    }
                }
            }));
        }
    }
    let connected_s = started.elapsed().as_secs_f64();
    // Wait for every welcome, then for the server to be quiet.
    let give_up = Instant::now() + WELCOME_LIMIT;
    let welcomed = loop {
        let welcomed = states
            .borrow()
            .iter()
            .filter(|state| state.welcomed)
            .count();
        if welcomed == count || Instant::now() >= give_up {
            break welcomed;
        }
        Timer::after(Duration::from_millis(100)).await;
    };
    let welcomed_s = started.elapsed().as_secs_f64();
    if welcomed < count {
        return Err(other(format!(
            "only {welcomed} of {count} idle connections were welcomed within {} s (connected \
             in {connected_s:.1} s): the server had not taken or greeted the rest",
            WELCOME_LIMIT.as_secs()
        )));
    }
    Timer::after(Duration::from_secs(1)).await;
    let held = rss("VmRSS");
    let peak = rss("VmHWM");
    let per_connection = (held.saturating_sub(empty)) as f64 / count as f64;
    // One more client says a marked line in the lobby, once it is there itself.
    let speaker = Async::<TcpStream>::connect(addr).await?;
    let mut buffer = Vec::new();
    read_until(
        &speaker,
        &mut buffer,
        WELCOMED,
        Instant::now() + Duration::from_secs(60),
    )
    .await?;
    (&speaker)
        .write_all(b"/nick idlespeaker\nhello everyone ~IDLE~\n")
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let received = states
            .borrow()
            .iter()
            .filter(|state| state.got_broadcast)
            .count();
        if received == count || Instant::now() >= deadline {
            println!(
                "{count} idle connections (connected in {connected_s:.1} s, all welcomed after \
                 {welcomed_s:.1} s): server RSS {empty} kB empty, {held} kB holding them (peak \
                 {peak} kB): {per_connection:.2} kB per connection; {received} of {count} got \
                 the broadcast"
            );
            if args.json {
                println!(
                    "{{\"idle\":{count},\"rss_empty_kb\":{empty},\"rss_held_kb\":{held},\
                     \"peak_kb\":{peak},\"kb_per_connection\":{per_connection:.3},\
                     \"received\":{received},\"connected_s\":{connected_s:.3},\
                     \"welcomed_s\":{welcomed_s:.3}}}"
                );
            }
            drop(readers);
            return if received == count {
                Ok(())
            } else {
                Err(other(format!(
                    "only {received} of {count} idle connections got the broadcast"
                )))
            };
        }
        Timer::after(Duration::from_millis(100)).await;
    }
}

// ----- The loopback ceiling -----

/// Lines a second over one loopback connection, written one per `write()` and 16 KiB at a time.
fn raw(each: Duration, json: bool) -> io::Result<()> {
    let line = [b'x'; 63].iter().chain(b"\n").copied().collect::<Vec<u8>>();
    let batch: Vec<u8> = line.iter().copied().cycle().take(16 * 1024).collect();
    let single = raw_rate(&line, each)?;
    let batched = raw_rate(&batch, each)?;
    if json {
        println!(
            "{{\"raw_lines_per_second_single\":{single:.0},\"raw_lines_per_second_batched\":{batched:.0}}}"
        );
    } else {
        println!(
            "loopback, 64-byte lines: {single:.0} lines/s one per write(), {batched:.0} lines/s in 16 KiB writes"
        );
    }
    Ok(())
}

/// Writes `chunk` over and over for `each` on one thread, counts newlines on another.
fn raw_rate(chunk: &[u8], each: Duration) -> io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut writer = TcpStream::connect(listener.local_addr()?)?;
    let (mut reader, _) = listener.accept()?;
    writer.set_nodelay(true)?;
    let counting = std::thread::spawn(move || {
        let mut buffer = vec![0; 64 * 1024];
        let mut lines = 0u64;
        while let Ok(read) = reader.read(&mut buffer) {
            if read == 0 {
                break;
            }
            lines += memchr::memchr_iter(b'\n', &buffer[..read]).count() as u64;
        }
        lines
    });
    let started = Instant::now();
    while started.elapsed() < each {
        for _ in 0..64 {
            writer.write_all(chunk)?;
        }
    }
    writer.shutdown(std::net::Shutdown::Write)?;
    let lines = counting
        .join()
        .map_err(|_| other("the counting thread panicked"))?;
    Ok(lines as f64 / started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::{
        Histogram, Layout, Marker, Member, Received, cpu_used, marker_in, parse_list, total,
    };

    fn scheduled_at(line: &[u8]) -> Option<u64> {
        marker_in(line).map(|marker| marker.micros)
    }

    #[test]
    fn lists_are_comma_separated() {
        assert_eq!(parse_list::<u32>("12"), Ok(vec![12]));
        assert_eq!(parse_list::<u32>("12,13, 14"), Ok(vec![12, 13, 14]));
        assert!(parse_list::<u32>("12,,14").is_err());
        assert!(parse_list::<u32>("").is_err());
        assert!(parse_list::<u32>("12,x").is_err());
        let addrs = parse_list::<SocketAddr>("127.0.0.1:1,[::1]:2").unwrap();
        assert_eq!(addrs.len(), 2);
        assert_eq!(addrs[1].port(), 2);
    }

    #[test]
    fn cpu_is_summed_only_when_every_process_was_read() {
        let used = cpu_used(&[Some(1.0), Some(2.0)], &[Some(1.5), Some(3.0)]);
        assert_eq!(used, vec![Some(0.5), Some(1.0)]);
        assert_eq!(total(&used), Some(1.5));
        assert_eq!(
            total(&cpu_used(&[Some(1.0), None], &[Some(2.0), Some(3.0)])),
            None
        );
        assert_eq!(total(&[]), None);
    }

    #[test]
    fn markers_are_found_at_the_end_of_any_line() {
        assert_eq!(scheduled_at(b"c1: xxxx ~L1:7:123456~\r"), Some(123_456));
        assert_eq!(
            scheduled_at(b":c1!~c1@hidden PRIVMSG #bench :xx ~L1:7:99~"),
            Some(99)
        );
        assert_eq!(scheduled_at(b"*** c1 joined #bench"), None);
        // Near misses: no marker start, a field missing or empty, a number too long.
        assert_eq!(scheduled_at(b"x 1:7:99~"), None);
        assert_eq!(scheduled_at(b"x ~L7:99~"), None);
        assert_eq!(scheduled_at(b"x ~L1::99~"), None);
        assert_eq!(scheduled_at(b"x ~L1:7:~"), None);
        assert_eq!(scheduled_at(b"x ~L1:7:99"), None);
        assert_eq!(scheduled_at(b"x ~L1:7:99999999999999999999~"), None);
        assert_eq!(scheduled_at(b"~L0:0:0~"), Some(0));
    }

    #[test]
    fn markers_name_their_sender_and_number() {
        assert_eq!(
            marker_in(b"PRIVMSG #bench3 :xx ~L13:4:99~\r"),
            Some(Marker {
                sender: 13,
                seq: 4,
                micros: 99
            })
        );
    }

    #[test]
    fn rooms_take_clients_in_turn() {
        let layout = Layout {
            clients: 10,
            rooms: 4,
        };
        // Rooms 0 and 1 get 3 (0, 4, 8 and 1, 5, 9), rooms 2 and 3 get 2.
        let members: Vec<usize> = (0..4).map(|room| layout.members(room)).collect();
        assert_eq!(members, [3, 3, 2, 2]);
        assert_eq!(layout.room_of(9), 1);
        assert_eq!(layout.place_of(9), 2);
        assert_eq!(layout.name(2), "#bench2");
        assert_eq!(
            Layout {
                clients: 5,
                rooms: 1
            }
            .name(0),
            "#bench"
        );
        // Each line to everyone else in its room.
        assert_eq!(layout.expected(&[10, 1, 4, 0]), [20, 2, 4, 0]);
    }

    #[test]
    fn a_member_counts_only_its_rooms_lines_once() {
        let layout = Layout {
            clients: 10,
            rooms: 4,
        };
        let mut member = Member::new(5, layout); // room 1, with 1 and 9
        let from = |sender, seq| Marker {
            sender,
            seq,
            micros: 0,
        };
        assert_eq!(member.judge(from(1, 0)), Received::Delivered);
        assert_eq!(member.judge(from(9, 0)), Received::Delivered);
        assert_eq!(member.judge(from(1, 2)), Received::Delivered); // 1 is lost: a gap
        assert_eq!(member.judge(from(1, 2)), Received::Duplicate);
        assert_eq!(member.judge(from(1, 1)), Received::Duplicate);
        assert_eq!(member.judge(from(2, 0)), Received::Misdelivered); // room 2
        assert_eq!(member.judge(from(5, 0)), Received::Misdelivered); // its own
        assert_eq!(member.judge(from(10, 0)), Received::Misdelivered); // no such client
    }

    #[test]
    fn histogram_quantiles_are_within_a_bucket() {
        let mut histogram = Histogram::new();
        for value in 1..=10_000u64 {
            histogram.record(value);
        }
        for (q, exact) in [(0.5, 5_000.0), (0.99, 9_900.0), (0.999, 9_990.0)] {
            let got = histogram.quantile(q) as f64;
            assert!((got - exact).abs() / exact < 0.04, "q{q}: {got} vs {exact}");
        }
        assert_eq!(histogram.quantile(1.0), 10_000);
    }
}
