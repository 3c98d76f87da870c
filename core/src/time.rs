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

/// An instant read as Unix time, shown as IRCv3's `server-time` wants it:
/// `2026-12-01T09:33:00.123Z`. Only meaningful when the runner's epoch is the Unix epoch, as
/// `chat-runner`'s is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timestamp(pub(crate) Instant);

impl Timestamp {
    /// Reads `YYYY-MM-DDThh:mm:ss[.sss]Z` (UTC) as Unix milliseconds; `None` if it is not one.
    pub(crate) fn parse(text: &str) -> Option<Instant> {
        let text = text.strip_suffix('Z')?;
        let (date, time) = text.split_once('T')?;
        let mut date = date.splitn(3, '-');
        let number = |part: Option<&str>| -> Option<i64> {
            let part = part?;
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        };
        let (year, month, day) = (
            number(date.next())?,
            number(date.next())?,
            number(date.next())?,
        );
        let (clock, fraction) = match time.split_once('.') {
            Some((clock, fraction)) => (clock, Some(fraction)),
            None => (time, None),
        };
        let mut clock = clock.splitn(3, ':');
        let (hours, minutes, seconds) = (
            number(clock.next())?,
            number(clock.next())?,
            number(clock.next())?,
        );
        let ms = match fraction {
            Some(fraction) => {
                let digits: heapless::String<3> = fraction.chars().take(3).collect();
                let scale = [100, 10, 1][digits.len().max(1) - 1];
                number(Some(&digits))? * scale
            }
            None => 0,
        };
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hours > 23
            || minutes > 59
            || seconds > 60
        {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let millis = ((days * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1000 + ms;
        u64::try_from(millis).ok().map(Instant::from_millis)
    }
}

/// The UTC date and time of Unix milliseconds: (year, month, day, hours, minutes, seconds, ms).
fn civil(millis: u64) -> (i64, i64, i64, u64, u64, u64, u64) {
    let (days, in_day) = (millis / 86_400_000, millis % 86_400_000);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    )
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day, hours, minutes, seconds, ms) = civil(self.0.millis);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{ms:03}Z"
        )
    }
}

/// An instant read as Unix time, for people: `2026-12-01 09:33 UTC`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WallTime(pub(crate) Instant);

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day, hours, minutes, _, _) = civil(self.0.millis);
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {hours:02}:{minutes:02} UTC"
        )
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

    #[test]
    fn timestamps_are_utc_dates() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_795_253_580_123, "2026-11-21T09:33:00.123Z"),
            (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
        ];
        for (millis, text) in cases {
            assert_eq!(format!("{}", Timestamp(Instant::from_millis(millis))), text);
            assert_eq!(
                Timestamp::parse(text),
                Some(Instant::from_millis(millis)),
                "{text}"
            );
        }
        assert_eq!(
            Timestamp::parse("2026-11-21T09:33:00Z"),
            Some(Instant::from_millis(1_795_253_580_000))
        );
        assert_eq!(
            format!("{}", WallTime(Instant::from_millis(1_795_253_580_123))),
            "2026-11-21 09:33 UTC"
        );
        for bad in [
            "",
            "2026-11-21",
            "2026-13-01T00:00:00Z",
            "2026-11-21T09:33:00",
            "x-1-1T1:1:1Z",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }
}
