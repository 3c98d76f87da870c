//! The core this server runs: its size, and how it is built on the heap.

use std::io;

use chat_core::{Config, Instant, Server};

/// How many connections the server holds at once. A connection beyond it is told the server
/// is full and closed. A power of two is not needed; it is one for no reason but tidiness.
pub const CLIENTS: usize = 16_384;

/// The core, sized for [`CLIENTS`].
pub(crate) type Core = Server<CLIENTS>;

/// Builds the core on the heap. `Server<CLIENTS>` is several megabytes and Rust may build it on
/// the stack before moving it into the box, so it is built on a thread with room for that.
pub(crate) fn new_core(config: Config, start: Instant) -> Box<Core> {
    let size = size_of::<Core>();
    std::thread::Builder::new()
        .name("core-init".into())
        .stack_size(4 * size + (1 << 20))
        .spawn(move || Box::new(Core::new(config, start)))
        .and_then(|thread| {
            thread
                .join()
                .map_err(|_| io::Error::other("core-init panicked"))
        })
        .unwrap_or_else(|error| panic!("cannot build the core: {error}"))
}
