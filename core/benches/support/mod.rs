//! What both benchmarks share: the configuration, connecting, and draining outputs the way a
//! runner does.

use std::hint::black_box;
use std::time::Duration;

use chat_core::testing::Driver;
use chat_core::{Config, ConnectionId, Instant, Output, Server, Storage};

/// The core alone: no flood control (it would hold a fast sender back after 20 lines), no
/// greeting delay (a connection is welcomed and put in #lobby at connect, not after a timer),
/// no colour (plain bytes, as with `--no-color`).
pub(crate) fn config() -> Config {
    Config::default()
        .with_flood_limit(None)
        .with_greeting_delay(Duration::ZERO)
        .with_colour(false)
}

/// The clock is never advanced: with flood control off and no `handle_timeout` calls, nothing
/// the benchmarks do depends on time.
pub(crate) const NOW: Instant = Instant::ZERO;

/// Connects one more client and throws its welcome (and the others' news of it) away.
pub(crate) fn connect<const N: usize>(driver: &mut Driver<N>) -> ConnectionId {
    let online = driver.server().online();
    driver
        .connect(&mut |_| {})
        .unwrap_or_else(|| panic!("server full at {online} connections"))
}

/// Drains one step's outputs as a runner does: every byte slice is touched and every
/// `Recipients` iterated to its end (resolving a room audience against the roster happens
/// during that iteration, so skipping it would leave the fan-out unmeasured). Returns the
/// number of recipients, which callers fold into their result so nothing is optimised away.
/// Fails on an output that asks the runner for an answer (history, a nickname claim, an
/// account): nothing measured here may be waiting for one.
pub(crate) fn drain<S: Storage>(server: &mut Server<S>) -> usize {
    let mut recipients = 0;
    while let Some(output) = server.poll_output() {
        match output {
            Output::Send { to, bytes } => {
                black_box(bytes);
                // Summing the indices makes each id be computed, as a runner needs it to find
                // the recipient's queue, without a black_box per recipient.
                let mut indices = 0_usize;
                for conn in to {
                    indices = indices.wrapping_add(conn.index());
                    recipients += 1;
                }
                black_box(indices);
            }
            Output::History(_) | Output::Claim(_) | Output::Account(_) => {
                panic!("an output that asks for an answer: {output:?}")
            }
            _ => {}
        }
    }
    recipients
}
