//! One IRC line to a room of 20, as IRC clients send it: `PRIVMSG #room :text`, the room
//! named (and looked up by name) in every line. What finding a room by its name costs shows
//! here, next to the fan-out it comes with.

mod support;

use chat_core::testing::Driver;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use support::{NOW, config, connect, drain};

fn benches(c: &mut Criterion) {
    let mut driver: Driver<64> = Driver::new(config(), NOW);
    let mut people = Vec::new();
    for n in 0..20 {
        let conn = connect(&mut driver);
        driver.input(
            conn,
            format!("NICK irc{n}\r\nUSER u 0 * :U\r\nJOIN #Rust_2-go\r\n").as_bytes(),
            &mut |_| {},
        );
        people.push(conn);
    }
    let speaker = people[0];
    let server = driver.server_mut();
    let line = b"PRIVMSG #Rust_2-go :has anyone seen the release notes for tomorrow?\r\n";
    // Outside the timing: the line is taken whole and reaches the other 19.
    let taken = server.handle_input(NOW, speaker, line).unwrap();
    assert_eq!(taken.bytes(), line.len());
    assert_eq!(drain(server), 19);
    let mut group = c.benchmark_group("irc");
    group.throughput(Throughput::Elements(19));
    group.bench_function("privmsg_room_of_20", |b| {
        b.iter(|| {
            let taken = server.handle_input(NOW, speaker, black_box(line)).unwrap();
            taken.bytes() + drain(server)
        });
    });
    group.finish();
}

criterion_group!(irc_benches, benches);
criterion_main!(irc_benches);
