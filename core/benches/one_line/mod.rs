//! What the two fan-out benchmarks share: building a big server, and measuring one line.

use std::hint::black_box;

use chat_core::testing::Driver;
use chat_core::{ConnectionId, Server};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId};

use crate::support::{NOW, drain};

/// Builds a server with `build` on a thread whose stack holds a few copies of `Server<chat_core::Inline<N>>`:
/// `Box::new(Server::new(..))` may build it on the stack before moving it to the heap, which
/// would overflow the main thread's stack (as `chat-runner`'s `new_core` knows too).
pub(crate) fn on_a_big_stack<const N: usize, T: Send + 'static>(
    build: impl FnOnce() -> T + Send + 'static,
) -> T {
    std::thread::Builder::new()
        .name(format!("build-{N}"))
        .stack_size(4 * size_of::<Server<chat_core::Inline<N>>>() + (1 << 20))
        .spawn(build)
        .expect("spawn the builder thread")
        .join()
        .expect("build the server")
}

/// Measures `speaker` saying `input` (one whole line) and the drain of what it sets off.
pub(crate) fn bench_line<const N: usize>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    server: &mut Server<chat_core::Inline<N>>,
    speaker: ConnectionId,
    input: &[u8],
) {
    group.bench_function(BenchmarkId::from_parameter(N), |b| {
        b.iter(|| {
            let taken = server.handle_input(NOW, speaker, black_box(input)).unwrap();
            // Cheap, and guards the claim that each iteration is exactly one whole line.
            assert_eq!(taken.bytes(), input.len());
            drain(server)
        });
    });
}

/// Sends `line` from `conn` and throws what it sets off away: setting a scene.
pub(crate) fn say<const N: usize>(driver: &mut Driver<N>, conn: ConnectionId, line: &str) {
    let fed = driver.input(conn, line.as_bytes(), &mut |_| {});
    assert_eq!(fed.taken, line.len(), "{line:?} taken whole");
}
