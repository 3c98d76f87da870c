//! The core with many connections: what one broadcast costs per recipient, and what one more
//! connection (welcomed into #lobby, where everyone is) costs, as the count grows.
//!
//! Sizes: 1,000, 10,000 and 100,000 connections; `CHAT_SCALE_SIZES=1000,1000000` picks others
//! (`cargo bench -p chat-core --bench scale`). Under `--test` (CI's `cargo bench -p chat-core --
//! --test`) only 1,000, so the check runs in well under a second.
//!
//! The server is a `Server<Heap>` sized for the count (`Server::with_capacity`, as chat-runner
//! builds it from `--max-clients`), driven here as `chat_core::testing::Driver` drives its
//! inline servers: every call followed by draining `poll_output`, every `Recipients` iterated to
//! its end. (`Driver` holds a `Server<Inline<N>>`, the whole table inside the value: 1.5 GB at a
//! million connections.) History is off (`with_history(0)`), so no output asks for an answer;
//! the drain checks that none does.
//!
//! - `scale/broadcast/N`: one line said in #lobby by one of its N members: throughput N, so
//!   criterion's `elem/s` is recipients a second and its inverse the cost per recipient.
//! - `scale/connect/N`: one more connection (welcomed: put in #lobby, told who is there) and
//!   its departure, with N connected. The welcome names up to 100 of the room's members in
//!   sort order, chosen among the first `MAX_LISTING_SCAN` (`Step::list` in
//!   `dialect/plain.rs`): before that bound, it walked every member, and connecting N people
//!   into one room cost O(N²). The build time printed for each size shows it.
//! - `scale/broadcast_churned/N`: the broadcast again, after everyone but the speaker left in
//!   a shuffled order and as many came back (taking the freed slots, so the lobby's list in
//!   joining order runs through the tables in no order). The first lines after it walk the
//!   list as it is, until the core puts it in order (`Members::walking`; only past 32,768
//!   people here, below which the list keeps its order); their times are printed, one of
//!   them with that pass at 100,000 and more.

use std::hint::black_box;
use std::time::Instant as Clock;

use chat_core::{
    Admission, Config, ConnectionId, Delivery, DisconnectReason, Heap, Output, Server,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

// `support::connect` drives a `Driver`'s inline server; this bench's servers are `Heap`.
#[allow(dead_code)]
mod support;
use support::{NOW, drain};

/// What the speaker says: the broadcast bench's line.
const LINE: &str = "has anyone seen the release notes for tomorrow's deploy?";

/// Sizes when `CHAT_SCALE_SIZES` does not say.
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// The benchmarks' configuration (`support::config`) with no history, and room for
/// `capacity` connections.
fn config(capacity: usize) -> Config {
    support::config().with_history(0).with_max_clients(capacity)
}

fn connect(server: &mut Server<Heap>) -> ConnectionId {
    match server.handle_connect(NOW).expect("contract kept") {
        Admission::Accepted(conn) => {
            drain(server);
            conn
        }
        refused => panic!("refused at {}: {refused:?}", server.online()),
    }
}

fn disconnect(server: &mut Server<Heap>, conn: ConnectionId) {
    server
        .handle_disconnect(NOW, conn, DisconnectReason::Closed)
        .expect("a live connection");
    drain(server);
}

fn say(server: &mut Server<Heap>, conn: ConnectionId, line: &str) -> usize {
    let taken = server.handle_input(NOW, conn, line.as_bytes()).unwrap();
    assert_eq!(taken.bytes(), line.len(), "{line:?} taken whole");
    drain(server)
}

/// `n` connections, all in #lobby, the first of them the speaker; room for one more. Built on
/// a thread with room on its stack for the server's fixed part (about 1.2 MB, which
/// `Box::new` may build on the stack first). Prints how long it took, and the cost of the
/// last tenth of the connections, one by one.
fn populated(n: usize) -> (Box<Server<Heap>>, ConnectionId, Vec<ConnectionId>) {
    std::thread::Builder::new()
        .name(format!("build-{n}"))
        .stack_size(4 * size_of::<Server<Heap>>() + (1 << 20))
        .spawn(move || {
            let started = Clock::now();
            let mut server = Box::new(Server::with_capacity(config(n + 1), NOW, n + 1));
            let speaker = connect(&mut server);
            let last_tenth = n - n / 10;
            let mut tenth_started = started;
            let mut listeners = Vec::with_capacity(n - 1);
            for made in 1..n {
                if made == last_tenth {
                    tenth_started = Clock::now();
                }
                listeners.push(connect(&mut server));
            }
            let tenth = tenth_started.elapsed();
            assert_eq!(server.online(), n, "everyone connected");
            say(&mut server, speaker, "/nick speaker\n");
            eprintln!(
                "scale/{n}: {n} connected into #lobby in {:.2?}; the last tenth {:.1} µs each",
                started.elapsed(),
                tenth.as_secs_f64() * 1e6 / (n / 10).max(1) as f64
            );
            (server, speaker, listeners)
        })
        .expect("spawn the builder thread")
        .join()
        .expect("build the server")
}

/// Everyone but the speaker leaves, in a shuffled order, and as many come back: the server
/// hands freed slots out last-freed first, so the lobby's members, in joining order, now sit
/// in its tables in no order at all, as after a day of people coming and going. Prints how
/// long it took. (No thread of its own: unlike [`populated`], nothing here builds the server.)
fn churn(server: &mut Server<Heap>, mut listeners: Vec<ConnectionId>) {
    let n = listeners.len();
    let started = Clock::now();
    // xorshift64: a fixed shuffle, the same every run, with no dependency for it.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for i in (1..listeners.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        listeners.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let online = server.online();
    for conn in listeners {
        disconnect(server, conn);
    }
    for _ in 0..n {
        connect(server);
    }
    assert_eq!(server.online(), online, "everyone came back");
    eprintln!(
        "scale/{}: {n} left in a shuffled order and came back in {:.2?}",
        n + 1,
        started.elapsed()
    );
}

/// Outside the timing: the line goes out once, rendered once, to everyone but the speaker.
fn check(server: &mut Server<Heap>, speaker: ConnectionId, n: usize) {
    let input = format!("{LINE}\n");
    let taken = server.handle_input(NOW, speaker, input.as_bytes()).unwrap();
    assert_eq!(taken.bytes(), input.len());
    let expected = format!("speaker: {LINE}\r\n");
    let mut sends = 0;
    while let Some(output) = server.poll_output() {
        if let Output::Send { to, bytes } = output {
            sends += 1;
            assert_eq!(to.delivery(), Delivery::Broadcast, "N = {n}");
            assert_eq!(bytes, expected.as_bytes(), "N = {n}");
            let mut seen = vec![false; n + 1];
            let mut count = 0;
            for conn in to {
                assert_ne!(conn, speaker, "N = {n}: echoed to the speaker");
                assert!(!seen[conn.index()], "N = {n}: {conn:?} twice");
                seen[conn.index()] = true;
                count += 1;
            }
            assert_eq!(count, n - 1, "N = {n}: everyone else");
        }
    }
    assert_eq!(sends, 1, "N = {n}: one Send for the room");
}

fn sizes() -> Vec<usize> {
    if let Ok(list) = std::env::var("CHAT_SCALE_SIZES") {
        return list
            .split(',')
            .map(|size| size.trim().parse().expect("CHAT_SCALE_SIZES: numbers"))
            .collect();
    }
    if std::env::args().any(|arg| arg == "--test") {
        return vec![SIZES[0]];
    }
    SIZES.to_vec()
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("scale");
    for n in sizes() {
        assert!(n >= 2, "at least a speaker and a listener");
        let (mut server, speaker, listeners) = populated(n);
        check(&mut server, speaker, n);
        let line = format!("{LINE}\n");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("broadcast", n), |b| {
            b.iter(|| say(&mut server, speaker, black_box(&line)));
        });
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("connect", n), |b| {
            b.iter(|| {
                let conn = connect(&mut server);
                disconnect(&mut server, conn);
            });
        });
        assert_eq!(server.online(), n, "everyone who came for the bench left");
        churn(&mut server, listeners);
        // The lines walk the list out of order until the steps back walked pay for putting
        // it in order (`Members::walking`); past 32,768 people one of these pays for the
        // pass.
        let first: Vec<_> = (0..4)
            .map(|_| {
                let started = Clock::now();
                say(&mut server, speaker, &line);
                format!("{:.2?}", started.elapsed())
            })
            .collect();
        eprintln!("scale/{n}: the first lines after took {}", first.join(", "));
        check(&mut server, speaker, n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("broadcast_churned", n), |b| {
            b.iter(|| say(&mut server, speaker, black_box(&line)));
        });
    }
    group.finish();
}

criterion_group!(scale_benches, benches);
criterion_main!(scale_benches);
