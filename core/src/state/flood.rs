//! Flood control: a token bucket per connection, and the limit it is filled by.

use core::time::Duration;

use crate::time::Instant;

/// Flood control: a token bucket per connection, counted in lines (a line, a JSON object or an
/// overlong line each cost one).
///
/// A connection may send `burst` lines at once, then `per_second` lines a second. The line
/// that empties the bucket is handled; after it the connection is *held back*:
/// [`Server::handle_input`](crate::Server::handle_input) takes none of its bytes until [`Output::Resume`](crate::Output::Resume) says it may go on,
/// so what it sent waits in the runner and, past that, in the socket, where TCP slows the
/// sender. Nothing is dropped. The sender is told once per episode that it is being slowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodLimit {
    /// Lines that may come at once (at least 1).
    pub burst: u32,
    /// Lines a second after that (at least 1).
    pub per_second: u32,
}

impl FloodLimit {
    /// 20 lines at once (a normal paste), then 5 a second.
    pub const DEFAULT: Self = Self {
        burst: 20,
        per_second: 5,
    };

    /// The bucket's size, in thousandths of a line.
    pub(crate) fn capacity(self) -> u32 {
        self.burst.max(1).saturating_mul(1000)
    }

    /// How long it takes to earn one line from an empty bucket.
    pub(crate) fn one_line(self) -> Duration {
        Duration::from_millis(u64::from(1000_u32.div_ceil(self.per_second.max(1))))
    }
}

/// One connection's bucket, in thousandths of a line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FloodBucket {
    tokens: u32,
    /// When `tokens` was last topped up.
    refilled: Instant,
    /// The sender has been told it is being slowed, and the bucket has not filled up since.
    pub(crate) warned: bool,
}

impl FloodBucket {
    /// A full bucket, at `now`.
    pub(crate) fn full(limit: FloodLimit, now: Instant) -> Self {
        Self {
            tokens: limit.capacity(),
            refilled: now,
            warned: false,
        }
    }

    /// Tops the bucket up for the time since it was last topped up.
    pub(crate) fn refill(&mut self, limit: FloodLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_millis();
        let earned = u32::try_from(elapsed.saturating_mul(u128::from(limit.per_second.max(1))))
            .unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(earned).min(limit.capacity());
        self.refilled = now;
    }

    /// Lets a held connection go on at `now`, its hold having ended at `deadline`: it earns
    /// lines up to `deadline` only. A release that comes late (a busy runner calls
    /// [`Server::handle_timeout`](crate::Server::handle_timeout) late) is the server's delay,
    /// not the sender's quiet: counting it would refill the bucket in the middle of a paste,
    /// start a new episode and tell the sender to slow down a second time.
    pub(crate) fn release(&mut self, limit: FloodLimit, deadline: Instant, now: Instant) {
        self.refill(limit, deadline.min(now));
        self.refilled = now;
    }

    /// Takes one line; true if that ran the bucket dry, so the connection is to be held back
    /// for [`FloodLimit::one_line`].
    pub(crate) fn charge(&mut self, limit: FloodLimit, now: Instant) -> bool {
        self.refill(limit, now);
        if self.tokens >= limit.capacity() {
            // Quiet long enough to earn a whole burst: a new episode may be told again.
            self.warned = false;
        }
        self.tokens = self.tokens.saturating_sub(1000);
        self.tokens < 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_release_earns_nothing_for_the_lateness() {
        let limit = FloodLimit {
            burst: 3,
            per_second: 2,
        };
        let t = Instant::from_millis;
        let mut bucket = FloodBucket::full(limit, t(0));
        for _ in 0..3 {
            bucket.charge(limit, t(0));
        }
        bucket.warned = true;
        // Held until 500 ms, released at 5 s: one line earned, not a whole burst.
        bucket.release(limit, t(500), t(5_000));
        assert!(bucket.charge(limit, t(5_000)), "dry again after one line");
        assert!(bucket.warned, "the same episode");
        // Released on time, the same.
        bucket.release(limit, t(5_500), t(5_500));
        assert!(bucket.charge(limit, t(5_500)));
        assert!(bucket.warned);
    }

    #[test]
    fn a_bucket_runs_dry_after_the_burst_and_earns_lines_back_at_the_rate() {
        let limit = FloodLimit {
            burst: 3,
            per_second: 2,
        };
        let t = Instant::from_millis;
        let mut bucket = FloodBucket::full(limit, t(0));
        assert!(!bucket.charge(limit, t(0)));
        assert!(!bucket.charge(limit, t(0)));
        assert!(bucket.charge(limit, t(0)), "the third line empties it");
        assert_eq!(limit.one_line(), Duration::from_millis(500));
        // Half a second earns one line, which the next line spends: dry again.
        assert!(bucket.charge(limit, t(500)));
        // A whole burst's worth of quiet: full again, and a new episode may be told.
        bucket.warned = true;
        assert!(!bucket.charge(limit, t(3000)));
        assert!(!bucket.warned);
    }
}
