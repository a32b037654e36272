//! Time for the pure cores (issue 13 §5, DESIGN.md "Habits": pure cores take
//! time as input): one instant type, [`Time`], Unix time in whole
//! milliseconds, and one civil-date module, [`civil`] (proleptic Gregorian
//! dates, weekdays, local time and local midnight at a fixed UTC offset).
//!
//! A bottom room: it imports nothing of the crate, every room may import
//! it, and it never reads a clock (the shells' one wall-clock read is
//! `util::now`). Store rows keep their own units (seconds or milliseconds);
//! the shells convert at the store boundary with [`Time::from_unix_secs`] /
//! [`Time::from_unix_millis`] and [`Time::unix_secs`] /
//! [`Time::unix_millis`].

pub mod civil;

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::Duration;

/// An instant: milliseconds since 1970-01-01T00:00:00Z (Unix time, leap
/// seconds not counted). Orders chronologically.
///
/// Arithmetic never panics: `+`/`-` a [`Duration`] saturate at
/// [`Time::UNIX_EPOCH`] and [`Time::MAX`] (use [`Time::checked_add`] /
/// [`Time::checked_sub`] to see the edge), and a duration's part below a
/// millisecond is dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// 1970-01-01T00:00:00.000Z.
    pub const UNIX_EPOCH: Time = Time(0);
    /// The latest representable instant.
    pub const MAX: Time = Time(u64::MAX);

    /// The instant `ms` milliseconds after the Unix epoch.
    pub const fn from_unix_millis(ms: u64) -> Time {
        Time(ms)
    }

    /// The instant `secs` seconds after the Unix epoch (saturating).
    pub const fn from_unix_secs(secs: u64) -> Time {
        Time(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (the milliseconds truncated).
    pub const fn unix_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The time since the Unix epoch as a [`Duration`].
    pub const fn since_epoch(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, `None` past [`Time::MAX`].
    pub fn checked_add(self, d: Duration) -> Option<Time> {
        self.0.checked_add(millis(d)?).map(Time)
    }

    /// `self - d`, `None` before the Unix epoch.
    pub fn checked_sub(self, d: Duration) -> Option<Time> {
        self.0.checked_sub(millis(d)?).map(Time)
    }
}

/// Whole milliseconds of `d`, `None` if they do not fit a `u64`.
fn millis(d: Duration) -> Option<u64> {
    u64::try_from(d.as_millis()).ok()
}

impl Add<Duration> for Time {
    type Output = Time;
    /// Saturates at [`Time::MAX`].
    fn add(self, d: Duration) -> Time {
        self.checked_add(d).unwrap_or(Time::MAX)
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    /// Saturates at [`Time::UNIX_EPOCH`].
    fn sub(self, d: Duration) -> Time {
        self.checked_sub(d).unwrap_or(Time::UNIX_EPOCH)
    }
}

impl SubAssign<Duration> for Time {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

impl fmt::Display for Time {
    /// RFC 3339 in UTC with exactly three fraction digits:
    /// `2026-12-06T08:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DAY_MS: u64 = 86_400_000;
        // u64::MAX / DAY_MS fits an i64 with room to spare.
        let days = i64::try_from(self.0 / DAY_MS).unwrap_or(i64::MAX);
        let in_day = self.0 % DAY_MS;
        let (y, m, d) = civil::civil_from_days(days);
        let s = in_day / 1000;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            s / 3600,
            s / 60 % 60,
            s % 60,
            in_day % 1000
        )
    }
}

/// Serialized as its [`Duration`] since the Unix epoch (serde's
/// `{"secs", "nanos"}`), the form the ACD's JSON views and records had
/// before this type, so what readers see does not change.
impl serde::Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.since_epoch().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let since = Duration::deserialize(d)?;
        Ok(Time::UNIX_EPOCH + since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_arithmetic() {
        let t = Time::from_unix_secs(1_796_515_200);
        assert_eq!(t.unix_millis(), 1_796_515_200_000);
        assert_eq!(t.unix_secs(), 1_796_515_200);
        assert_eq!(Time::from_unix_millis(1_999).unix_secs(), 1);
        assert_eq!(
            (t + Duration::from_millis(1500)).unix_millis(),
            1_796_515_201_500
        );
        assert_eq!(
            t - Duration::from_secs(1),
            Time::from_unix_secs(1_796_515_199)
        );
        // Below a millisecond is dropped.
        assert_eq!(t + Duration::from_micros(999), t);
        assert_eq!(
            (t + Duration::from_secs(2)).saturating_duration_since(t),
            Duration::from_secs(2)
        );
        assert_eq!(
            t.saturating_duration_since(t + Duration::from_secs(2)),
            Duration::ZERO
        );
        assert_eq!(t.since_epoch(), Duration::from_secs(1_796_515_200));
        let mut u = t;
        u += Duration::from_millis(5);
        u -= Duration::from_millis(2);
        assert_eq!(u.unix_millis(), t.unix_millis() + 3);
    }

    #[test]
    fn edges_saturate_or_say_none() {
        assert_eq!(Time::UNIX_EPOCH.checked_sub(Duration::from_millis(1)), None);
        assert_eq!(Time::UNIX_EPOCH - Duration::from_secs(5), Time::UNIX_EPOCH);
        assert_eq!(Time::MAX.checked_add(Duration::from_millis(1)), None);
        assert_eq!(Time::MAX + Duration::MAX, Time::MAX);
        assert_eq!(Time::from_unix_secs(u64::MAX), Time::MAX);
        assert!(Time::UNIX_EPOCH < Time::from_unix_millis(1));
    }

    #[test]
    fn displays_rfc3339_utc() {
        assert_eq!(Time::UNIX_EPOCH.to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Time::from_unix_millis(1_709_193_600_123).to_string(),
            "2024-02-29T08:00:00.123Z"
        );
        assert_eq!(
            Time::from_unix_millis(253_402_300_799_999).to_string(),
            "9999-12-31T23:59:59.999Z"
        );
        // Far beyond the year 9999 it still writes, with a longer year.
        assert!(Time::MAX.to_string().ends_with('Z'));
    }

    #[test]
    fn serializes_as_the_duration_since_the_epoch() {
        let t = Time::from_unix_millis(1_796_515_200_250);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, serde_json::to_string(&t.since_epoch()).unwrap());
        assert_eq!(serde_json::from_str::<Time>(&json).unwrap(), t);
    }
}
