//! Operator logs on stderr: one line per event, with a UTC timestamp and a level; in text (the
//! default) or, for log shippers, one JSON object a line ([`LogFormat::Json`]). Lines below
//! the level set ([`set_log_level`]) are not written (nor formatted).
//!
//! Which level a line gets:
//! - [`LogLevel::Error`]: something the server needs and does not have: the store cannot
//!   write or read, Redis is out of reach, a recording stopped, accepting failed, a bug.
//! - [`LogLevel::Warn`]: the server turned someone away or cut them off by its rules: a
//!   connection refused (per-address limit, server full), a slow client dropped, a failed TLS
//!   handshake, a configuration reload that was refused.
//! - [`LogLevel::Info`] (the default): what an operator wants to read at any time: start and
//!   shutdown, what was read and reloaded, configuration changes, accounts registered,
//!   clients lagging and catching up, connections closed by the server's timeouts.
//! - [`LogLevel::Debug`]: one line per ordinary connection event, thousands a second on a
//!   busy server: connected, nickname changes, quits, disconnects.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes one log line at `level` to stderr, if the level set lets it through:
/// `2026-11-25 20:10:11Z WARN <message>`, or in JSON
/// `{"time":"2026-11-25T20:10:11Z","level":"warn","msg":"<message>"}` (see
/// [`set_log_format`]).
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::LogLevel::$level) {
            $crate::log::write($crate::log::LogLevel::$level, format_args!($($arg)*))
        }
    };
}
pub(crate) use log;

/// An error: see the [module](self) for which lines are errors.
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::log!(Error, $($arg)*) };
}
/// A warning: see the [module](self). (Named `warn` where it is used: a macro cannot be
/// declared by the name of the built-in attribute.)
macro_rules! warning {
    ($($arg:tt)*) => { $crate::log::log!(Warn, $($arg)*) };
}
/// News for the operator: see the [module](self).
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log!(Info, $($arg)*) };
}
/// One line per ordinary connection event: see the [module](self).
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log!(Debug, $($arg)*) };
}
pub(crate) use {debug, error, info, warning as warn};

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-11-25 20:10:11Z INFO MESSAGE`: for people and `journalctl`.
    Text,
    /// `{"time":"2026-11-25T20:10:11Z","level":"info","msg":"MESSAGE"}`, one object a line:
    /// for log shippers. The time is RFC 3339, in UTC.
    Json,
}

/// How much is logged (`--log-level`): a line is written if its level is this one or more
/// severe. Ordered from the most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Only what the server needs and does not have (the store, Redis, a bug).
    Error = 0,
    /// And whoever was refused or cut off.
    Warn = 1,
    /// And what an operator reads at any time (the default).
    Info = 2,
    /// And every connection's comings and goings.
    Debug = 3,
}

impl LogLevel {
    /// Every level, from the most severe.
    pub const ALL: [Self; 4] = [Self::Error, Self::Warn, Self::Info, Self::Debug];

    /// The level's name: `error`, `warn`, `info` or `debug`, as `--log-level` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }

    /// The level named `name` (see [`name`](Self::name)).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.name() == name)
    }

    /// The name in capitals, for text lines.
    fn tag(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Warn => "WARN",
            Self::Info => "INFO",
            Self::Debug => "DEBUG",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether log lines are JSON.
static JSON: AtomicBool = AtomicBool::new(false);

/// The most verbose level written, as its number.
static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);

/// Sets how every later log line of this process is written. The default is
/// [`LogFormat::Text`]. May change at any time (a reload on SIGHUP does).
pub fn set_log_format(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
}

/// Sets the most verbose level written from now on. The default is [`LogLevel::Info`]. May
/// change at any time (a reload on SIGHUP does).
pub fn set_log_level(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// The level set with [`set_log_level`].
pub fn log_level() -> LogLevel {
    let level = LEVEL.load(Ordering::Relaxed);
    LogLevel::ALL
        .into_iter()
        .find(|known| *known as u8 == level)
        .unwrap_or(LogLevel::Info)
}

/// Whether a line at `level` is written.
pub(crate) fn enabled(level: LogLevel) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one log line to stderr, in the format set.
pub(crate) fn write(level: LogLevel, message: fmt::Arguments<'_>) {
    if JSON.load(Ordering::Relaxed) {
        eprintln!(
            "{}",
            json_line(&timestamp('T'), level, &message.to_string())
        );
    } else {
        eprintln!("{} {} {message}", timestamp(' '), level.tag());
    }
}

/// One log line as a JSON object: the time, the level, the message.
fn json_line(time: &str, level: LogLevel, message: &str) -> String {
    // Cannot fail: strings serialize.
    let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
    format!(
        "{{\"time\":{},\"level\":\"{}\",\"msg\":{}}}",
        quote(time),
        level.name(),
        quote(message)
    )
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
    use super::{LogLevel, civil_from_days, json_line};

    #[test]
    fn a_json_line_is_one_escaped_object() {
        assert_eq!(
            json_line("2026-11-25T20:10:11Z", LogLevel::Warn, "say \"hi\"\n\u{1b}"),
            r#"{"time":"2026-11-25T20:10:11Z","level":"warn","msg":"say \"hi\"\n\u001b"}"#
        );
    }

    #[test]
    fn levels_by_name_and_order() {
        for level in LogLevel::ALL {
            assert_eq!(LogLevel::from_name(level.name()), Some(level));
        }
        assert_eq!(LogLevel::from_name("warning"), None);
        assert!(LogLevel::Error < LogLevel::Warn && LogLevel::Info < LogLevel::Debug);
    }

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
    }
}
