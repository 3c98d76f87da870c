//! What comparing names costs: a room name's key (every IRC `PRIVMSG #room` looks its room up
//! by it), next to the ASCII lowercasing it replaced.

use chat_core::NameKey;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("name_key");
    for name in ["#lobby", "#Rust_2-go", "#Ærøskøbing", "#中文聊天室"] {
        group.bench_function(format!("key {name}"), |b| {
            b.iter(|| NameKey::of(black_box(name)));
        });
    }
    group.bench_function("ascii lowercase #Rust_2-go (before)", |b| {
        b.iter(|| black_box("#Rust_2-go").eq_ignore_ascii_case(black_box("#rust_2-go")));
    });
    group.finish();
}

criterion_group!(name_benches, benches);
criterion_main!(name_benches);
