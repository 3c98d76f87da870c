//! The cost of one line in a 50-member room as the number of people online grows.
//!
//! A room's members are a list of their own, so a line to a room walks that list and nothing
//! else: the cost per line should stay flat from 1,000 to 10,000 people online, where a scan of
//! everyone online would grow tenfold. Throughput is the 49 recipients, so criterion's
//! `elem/s` is recipients per second.

mod one_line;
mod support;

use chat_core::testing::Driver;
use chat_core::{ConnectionId, Delivery, Event, Output, Server};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

use one_line::{bench_line, on_a_big_stack, say};
use support::{NOW, config, connect};

/// People in the room that talks, the speaker included.
const ROOM: usize = 50;

const LINE: &str = "has anyone seen the release notes for tomorrow's deploy?";

/// `N` people online, all in #lobby; the first `ROOM` of them also in #fifty, talking there.
/// Built on a thread with a big stack, as in the broadcast bench.
fn populated<const N: usize>() -> (Driver<N>, ConnectionId) {
    on_a_big_stack::<N, _>(|| {
        let mut driver = Driver::<N>::new(config(), NOW);
        let people: Vec<ConnectionId> = (0..N).map(|_| connect(&mut driver)).collect();
        for &member in &people[..ROOM] {
            say(&mut driver, member, "/join #fifty\n");
        }
        assert_eq!(driver.server().online(), N);
        (driver, people[0])
    })
}

/// Outside the timing: the line goes out once, to the other 49 members and no one else.
fn check<const N: usize>(
    server: &mut Server<chat_core::Inline<N>>,
    speaker: ConnectionId,
    input: &[u8],
) {
    let taken = server.handle_input(NOW, speaker, input).unwrap();
    assert_eq!(taken.bytes(), input.len());
    let (mut sends, mut events) = (0, 0);
    while let Some(output) = server.poll_output() {
        let to = match output {
            Output::Send { to, .. } => to,
            Output::Event(Event::Said { seq, .. }) if seq > 0 => {
                events += 1;
                continue;
            }
            _ => panic!("N = {N}: unexpected {output:?}"),
        };
        sends += 1;
        assert_eq!(to.delivery(), Delivery::Broadcast);
        let recipients: Vec<ConnectionId> = to.collect();
        assert_eq!(
            recipients.len(),
            ROOM - 1,
            "N = {N}: the room but the speaker"
        );
        assert!(
            recipients
                .iter()
                .all(|conn| conn.index() < ROOM && *conn != speaker)
        );
    }
    assert_eq!((sends, events), (1, 1), "N = {N}: one Send, one event");
}

fn line_in_a_room<const N: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let (mut driver, speaker) = populated::<N>();
    let server = driver.server_mut();
    let input = format!("{LINE}\n");
    check(server, speaker, input.as_bytes());
    group.throughput(Throughput::Elements(ROOM as u64 - 1));
    bench_line(group, server, speaker, input.as_bytes());
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("room_of_50");
    line_in_a_room::<1000>(&mut group);
    line_in_a_room::<3000>(&mut group);
    line_in_a_room::<10000>(&mut group);
    group.finish();
}

criterion_group!(fanout_benches, benches);
criterion_main!(fanout_benches);
