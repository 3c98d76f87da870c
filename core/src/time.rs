//! Time as the core sees it: a number the caller hands in, never a clock it reads.

use core::fmt;
use core::time::Duration;

/// A point in time, in milliseconds since an epoch the caller chooses (usually the moment it
/// started the server).
///
/// The core never reads a clock: every `handle_*` call takes the current `Instant`, and
/// [`Server::poll_timeout`](crate::Server::poll_timeout) answers with one. Time passed in must not
/// go backwards; if it does, the core keeps using the latest time it has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    millis: u64,
}

impl Instant {
    /// The epoch itself.
    pub const ZERO: Self = Self { millis: 0 };

    /// The instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self { millis }
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// `self + duration`, saturating at the far future instead of overflowing.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let add = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self {
            millis: self.millis.saturating_add(add),
        }
    }

    /// How long after `earlier` this instant is; zero if it is not after it.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.millis.saturating_sub(earlier.millis))
    }
}

/// Conversions to and from `std::time::Instant`, for runners that have a clock. The core itself
/// never reads one.
#[cfg(feature = "std")]
impl Instant {
    /// The core instant of `now`, counting from `epoch` (the runner's start).
    pub fn from_std(epoch: std::time::Instant, now: std::time::Instant) -> Self {
        let millis = now.saturating_duration_since(epoch).as_millis();
        Self::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// The `std` instant this one stands for, counting from `epoch`.
    pub fn to_std(self, epoch: std::time::Instant) -> std::time::Instant {
        epoch + Duration::from_millis(self.millis)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.millis / 1000, self.millis % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(1_500);
        assert_eq!(t.saturating_add(Duration::from_secs(2)).as_millis(), 3_500);
        assert_eq!(
            Instant::from_millis(u64::MAX - 1)
                .saturating_add(Duration::from_secs(1))
                .as_millis(),
            u64::MAX
        );
        assert_eq!(
            t.saturating_duration_since(Instant::from_millis(500)),
            Duration::from_secs(1)
        );
        assert_eq!(
            t.saturating_duration_since(Instant::from_millis(9_000)),
            Duration::ZERO
        );
        assert_eq!(format!("{t}"), "1.500s");
    }
}
