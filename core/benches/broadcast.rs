//! The cost of one broadcast as the room grows: `N` people in #lobby, one of them says a line.
//!
//! The measured work is what the hub does for that line: `handle_input`, then draining
//! `poll_output` and iterating every `Recipients` to its end (the core resolves a room's
//! audience lazily, during that iteration). Throughput is `N` elements, so criterion's
//! `elem/s` is connections handled per second and its inverse the cost per recipient; it
//! should stay about constant as `N` grows, since a line is rendered once and fanning it out
//! is a step along the room's list of members per recipient.
//!
//! What a runner then does per recipient (cloning an `Arc` into a queue) is not the core's
//! cost and is not measured.

mod one_line;
mod support;

use std::collections::HashSet;

use chat_core::testing::Driver;
use chat_core::{ConnectionId, Delivery, Event, Output, Server};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

use one_line::{bench_line, on_a_big_stack, say};
use support::{NOW, config, connect};

/// What the speaker says: an ordinary chat line of typical length.
const LINE: &str = "has anyone seen the release notes for tomorrow's deploy?";

/// The speaker's nickname, chosen so the rendered line can be checked exactly.
const SPEAKER: &str = "speaker";

/// A server with `N` connections, all in #lobby (where a connection starts when it is
/// welcomed at connect), and the one who will speak.
///
/// `Server<chat_core::Inline<N>>` is close to 1 KB a connection (16 MB for 16384; the bench prints it) and
/// `Box::new(Server::new(..))` may build it on the stack before moving it to the heap, which
/// would overflow the main thread's stack. So, as `chat-runner` does (`new_core` in runner/src/main.rs), it is built
/// on a thread with a stack big enough for a few copies; connecting everyone happens there
/// too, which keeps the main thread's stack out of it entirely.
fn populated<const N: usize>() -> (Driver<N>, ConnectionId) {
    on_a_big_stack::<N, _>(|| {
        let mut driver = Driver::<N>::new(config(), NOW);
        let speaker = connect(&mut driver);
        for _ in 1..N {
            connect(&mut driver);
        }
        assert_eq!(driver.server().online(), N, "everyone connected");
        say(&mut driver, speaker, &format!("/nick {SPEAKER}\n"));
        (driver, speaker)
    })
}

/// Once per size, outside the timing: the line produces exactly one output, a broadcast
/// `Send` of the line rendered once, to every connection but the speaker, each once. No
/// second `[#room]`-marked copy (no member talks in another room), no IRC copy (no IRC
/// client), no echo or reply to the speaker.
fn check<const N: usize>(
    server: &mut Server<chat_core::Inline<N>>,
    speaker: ConnectionId,
    input: &[u8],
) {
    let taken = server.handle_input(NOW, speaker, input).unwrap();
    assert_eq!(taken.bytes(), input.len());
    let expected = format!("{SPEAKER}: {LINE}\r\n");
    let (mut sends, mut events) = (0, 0);
    while let Some(output) = server.poll_output() {
        let (to, bytes) = match output {
            Output::Send { to, bytes } => (to, bytes),
            Output::Event(Event::Said { text, .. }) if text == LINE => {
                events += 1;
                continue;
            }
            _ => panic!("N = {N}: unexpected {output:?}"),
        };
        sends += 1;
        assert_eq!(to.delivery(), Delivery::Broadcast, "N = {N}");
        assert_eq!(bytes, expected.as_bytes(), "N = {N}");
        let recipients: HashSet<usize> = to
            .inspect(|&conn| assert_ne!(conn, speaker, "N = {N}: echoed to the speaker"))
            .map(|conn| conn.index())
            .collect();
        assert_eq!(recipients.len(), N - 1, "N = {N}: everyone else, once each");
    }
    assert_eq!(sends, 1, "N = {N}: one Send for the room");
    assert_eq!(events, 1, "N = {N}: one event for the line");
}

/// Builds the room, checks it, and measures one line said in it.
fn broadcast<const N: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let built = std::time::Instant::now();
    let (mut driver, speaker) = populated::<N>();
    let server = driver.server_mut();
    // The footprint explains the per-recipient cost: each live slot is visited once, so once
    // the table outgrows the caches every visit is a memory access.
    eprintln!(
        "broadcast/{N}: Server<{N}> is {:.1} MB, {N} connected in {:.2?}",
        size_of::<Server<chat_core::Inline<N>>>() as f64 / 1e6,
        built.elapsed()
    );
    let input = format!("{LINE}\n");
    check(server, speaker, input.as_bytes());

    // Every connection is visited while resolving the audience (the speaker is skipped by a
    // test like the others), so N, not N - 1, is the unit of work.
    group.throughput(Throughput::Elements(N as u64));
    bench_line(group, server, speaker, input.as_bytes());
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast");
    // Each size is its own type (`CLIENTS` is a const generic), hence one call per size. The
    // largest is the runner's own capacity.
    broadcast::<10>(&mut group);
    broadcast::<100>(&mut group);
    broadcast::<1000>(&mut group);
    broadcast::<10000>(&mut group);
    broadcast::<16384>(&mut group);
    group.finish();
}

criterion_group!(broadcast_benches, benches);
criterion_main!(broadcast_benches);
