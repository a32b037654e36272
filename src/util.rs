//! Small shell-side helpers: the wall clock (read only here and in other
//! shells, never in pure cores; [`now`] gives it as the pure cores'
//! [`Time`]) and process figures for health checks.

use crate::time::{civil, Time};

/// Now, as the pure cores' time type: the shells' one wall-clock read for
/// them (pure cores never read the clock; `clippy.toml`).
pub fn now() -> Time {
    Time::from_unix_millis(u64::try_from(unix_now_precise().as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch, the time unit of the registrar and auth cores.
#[allow(clippy::disallowed_methods)] // the shell's one wall-clock read
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Time since the Unix epoch with sub-second precision (RTCP's NTP
/// timestamps, RFC 3550 §4).
#[allow(clippy::disallowed_methods)] // a shell's wall-clock read
pub fn unix_now_precise() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch (event timestamps, outbox timers).
pub fn unix_now_ms() -> i64 {
    i64::try_from(unix_now_precise().as_millis()).unwrap_or(i64::MAX)
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The calendar date `(year, month, day)` of a Unix time shifted by
/// `offset_minutes` (e.g. +480 for China Standard Time), by the crate's one
/// civil-date module ([`crate::time::civil::local_date`]).
pub fn local_date(unix_secs: u64, offset_minutes: i32) -> (i32, u8, u8) {
    let date = civil::local_date(Time::from_unix_secs(unix_secs), offset_minutes);
    (i32::from(date.year()), date.month(), date.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(local_date(0, 0), (1970, 1, 1));
        // 2026-11-23T01:09:59Z
        assert_eq!(local_date(1_795_396_199, 0), (2026, 11, 23));
        // 2026-11-22T20:00:00Z is already the 23rd in Beijing.
        assert_eq!(local_date(1_795_377_600, 480), (2026, 11, 23));
        assert_eq!(local_date(1_795_377_600, 0), (2026, 11, 22));
        // Leap day.
        assert_eq!(local_date(951_782_400, 0), (2000, 2, 29));
    }
}

/// A value read often and replaced whole now and then (the roster, the
/// configuration in force): readers clone an `Arc` and keep a consistent
/// snapshot however long they hold it.
#[derive(Debug, Default)]
pub struct Live<T>(std::sync::RwLock<std::sync::Arc<T>>);

impl<T> Live<T> {
    /// Start with `value`.
    pub fn new(value: T) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(value)))
    }

    /// The current value (one `Arc` clone).
    pub fn load(&self) -> std::sync::Arc<T> {
        match self.0.read() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Put `value` in force.
    pub fn replace(&self, value: T) {
        let next = std::sync::Arc::new(value);
        match self.0.write() {
            Ok(mut v) => *v = next,
            Err(p) => *p.into_inner() = next,
        }
    }
}
