//! Operator logs on stderr: one line per event, with a UTC timestamp; in text (the default)
//! or, for log shippers, one JSON object a line ([`LogFormat::Json`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes one log line to stderr: `2026-11-25 20:10:11Z <message>`, or in JSON
/// `{"time":"2026-11-25T20:10:11Z","msg":"<message>"}` (see [`set_log_format`]).
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::write(format_args!($($arg)*))
    };
}
pub(crate) use log;

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-11-25 20:10:11Z MESSAGE`: for people and `journalctl`.
    Text,
    /// `{"time":"2026-11-25T20:10:11Z","msg":"MESSAGE"}`, one object a line: for log
    /// shippers. The time is RFC 3339, in UTC.
    Json,
}

/// Whether log lines are JSON: set once at start, before anything is logged.
static JSON: AtomicBool = AtomicBool::new(false);

/// Sets how every later log line of this process is written. The default is
/// [`LogFormat::Text`].
pub fn set_log_format(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
}

/// Writes one log line to stderr, in the format set.
pub(crate) fn write(message: fmt::Arguments<'_>) {
    if JSON.load(Ordering::Relaxed) {
        eprintln!("{}", json_line(&timestamp('T'), &message.to_string()));
    } else {
        eprintln!("{} {message}", timestamp(' '));
    }
}

/// One log line as a JSON object, the time first.
fn json_line(time: &str, message: &str) -> String {
    // Cannot fail: strings serialize.
    let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
    format!("{{\"time\":{},\"msg\":{}}}", quote(time), quote(message))
}

/// The current UTC time as `YYYY-MM-DD hh:mm:ssZ`, with `separator` between the date and the
/// time (`T` for RFC 3339).
pub(crate) fn timestamp(separator: char) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}{separator}{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::{civil_from_days, json_line};

    #[test]
    fn a_json_line_is_one_escaped_object() {
        assert_eq!(
            json_line("2026-11-25T20:10:11Z", "say \"hi\"\n\u{1b}"),
            r#"{"time":"2026-11-25T20:10:11Z","msg":"say \"hi\"\n\u001b"}"#
        );
    }

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
    }
}
