//! The core this server runs: its capacity, and how it is built on the heap.

use std::io;

use chat_core::{Config, Heap, Instant, Server};

/// How many connections the server holds at once unless `--max-clients` says otherwise. A
/// connection beyond the capacity is told the server is full and closed.
pub const DEFAULT_MAX_CLIENTS: usize = 16_384;

/// The most `--max-clients` may be. The core's table reserves room for that many slots at
/// start (about 1.5 KB each, in address space only: memory is used as connections come), so
/// the bound only keeps that reservation sane; open files run out long before.
pub const MAX_CLIENTS: usize = 1 << 20;

/// The core: its table of connections on the heap, sized at start.
pub(crate) type Core = Server<Heap>;

/// Builds the core on the heap, for `config.max_clients` connections (at most
/// [`MAX_CLIENTS`]). The table is allocated once, here; its memory is used as connections
/// come, as are the core's fixed tables (rooms, bans, tag buffers: reserved on the heap and
/// written only as used). The rest of `Server` (some 160 KB) may be built on the stack before
/// moving into the box, so it is built on a thread with room for that.
pub(crate) fn new_core(config: Config, start: Instant) -> Box<Core> {
    let capacity = config.max_clients.min(MAX_CLIENTS);
    let size = size_of::<Core>();
    std::thread::Builder::new()
        .name("core-init".into())
        .stack_size(4 * size + (1 << 20))
        .spawn(move || Box::new(Core::with_capacity(config, start, capacity)))
        .and_then(|thread| {
            thread
                .join()
                .map_err(|_| io::Error::other("core-init panicked"))
        })
        .unwrap_or_else(|error| panic!("cannot build the core: {error}"))
}
