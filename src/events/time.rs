//! RFC 3339 timestamps for events (issue 7 §1: the envelope's `at` and the
//! CDR's call, queue-entry, ringing, agent-connect and hang-up times of
//! REQUIREMENTS.md §6).
//!
//! A [`Timestamp`] is milliseconds since the Unix epoch, given by the shell
//! (pure cores never read the clock). It is written as
//! `YYYY-MM-DDTHH:MM:SS.mmmZ`, always UTC with exactly three fraction
//! digits, so that timestamps sort as strings. Reading accepts any RFC 3339
//! date-time (lower-case `t`/`z`, 0–9 fraction digits, numeric offsets) and
//! truncates the fraction to milliseconds. The civil-date arithmetic is the
//! crate's one civil-date module, [`crate::time::civil`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::civil::{civil_from_days, days_from_civil, days_in_month};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Why a time cannot be a [`Timestamp`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Outside the years 0000–9999 that RFC 3339 can write.
    #[error("{0} ms since the epoch is outside the years 0000-9999")]
    OutOfRange(i64),
    /// Text that is not an RFC 3339 date-time.
    #[error("not an RFC 3339 date-time: {0:?}")]
    Invalid(String),
}

/// An instant, in milliseconds since 1970-01-01T00:00:00Z, within the years
/// 0000–9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 0000-01-01T00:00:00.000Z.
    pub const MIN_MS: i64 = -62_167_219_200_000;
    /// 9999-12-31T23:59:59.999Z.
    pub const MAX_MS: i64 = 253_402_300_799_999;

    /// The instant `ms` milliseconds after the epoch.
    pub fn from_unix_ms(ms: i64) -> Result<Timestamp, TimeError> {
        if (Self::MIN_MS..=Self::MAX_MS).contains(&ms) {
            Ok(Timestamp(ms))
        } else {
            Err(TimeError::OutOfRange(ms))
        }
    }

    /// Milliseconds since the epoch.
    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later (a
    /// clock that stepped back never yields a negative duration).
    pub fn ms_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }

    /// Reads an RFC 3339 date-time (see the module docs).
    pub fn parse(text: &str) -> Result<Timestamp, TimeError> {
        parse_rfc3339(text).ok_or_else(|| TimeError::Invalid(text.to_owned()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(DAY_MS);
        let in_day = self.0.rem_euclid(DAY_MS);
        let (y, m, d) = civil_from_days(days);
        let ms = in_day % 1000;
        let s = in_day / 1000;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }
}

/// `ms` since the epoch as RFC 3339 UTC text (`2024-02-29T08:00:00.000Z`).
pub fn format_rfc3339(ms: i64) -> Result<String, TimeError> {
    Timestamp::from_unix_ms(ms).map(|t| t.to_string())
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Fixed-width decimal digits at `b[at..at + n]`.
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = b.get(at..at + n)?;
    part.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// Whether `b[at]` is `c`.
fn byte_is(b: &[u8], at: usize, c: u8) -> bool {
    b.get(at) == Some(&c)
}

/// A month or day of the month read as two digits (0..=99).
fn two_digits(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let y = digits(b, 0, 4)?;
    let mo = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    let h = digits(b, 11, 2)?;
    let mi = digits(b, 14, 2)?;
    let s = digits(b, 17, 2)?;
    let separators = byte_is(b, 4, b'-')
        && byte_is(b, 7, b'-')
        && matches!(b.get(10), Some(b'T' | b't'))
        && byte_is(b, 13, b':')
        && byte_is(b, 16, b':');
    if !separators {
        return None;
    }
    // A leap second (60) has no place in Unix time: refused.
    if !(1..=12).contains(&mo)
        || d < 1
        || d > i64::from(days_in_month(y, two_digits(mo)))
        || h > 23
        || mi > 59
        || s > 59
    {
        return None;
    }
    let mut at = 19;
    let mut frac_ms = 0i64;
    if byte_is(b, at, b'.') {
        at += 1;
        let start = at;
        while let Some(&c) = b.get(at).filter(|c| c.is_ascii_digit()) {
            if at - start < 3 {
                frac_ms = frac_ms * 10 + i64::from(c - b'0');
            }
            at += 1;
        }
        let n = at - start;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..3 {
            frac_ms *= 10;
        }
    }
    let offset_min = match b.get(at) {
        Some(b'Z' | b'z') if b.len() == at + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == at + 6 && byte_is(b, at + 3, b':') => {
            let oh = digits(b, at + 1, 2)?;
            let om = digits(b, at + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 60 + om;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, two_digits(mo), two_digits(d));
    let ms = days * DAY_MS + ((h * 60 + mi - offset_min) * 60 + s) * 1000 + frac_ms;
    Timestamp::from_unix_ms(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(ms: i64) -> String {
        format_rfc3339(ms).expect("in range")
    }

    #[test]
    fn epoch_and_before() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(fmt(999), "1970-01-01T00:00:00.999Z");
        assert_eq!(fmt(DAY_MS - 1), "1970-01-01T23:59:59.999Z");
    }

    #[test]
    fn leap_years() {
        // 2024-02-29 exists; 2000 is a leap year (÷400), 1900 and 2100 are not.
        assert_eq!(fmt(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
        assert_eq!(fmt(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(fmt(1_709_251_200_000), "2024-03-01T00:00:00.000Z");
        assert_eq!(fmt(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(fmt(4_107_456_000_000), "2100-02-28T00:00:00.000Z");
        assert_eq!(fmt(4_107_456_000_000 + DAY_MS), "2100-03-01T00:00:00.000Z");
        assert_eq!(fmt(-2_203_891_200_000), "1900-03-01T00:00:00.000Z");
        assert_eq!(fmt(-2_203_891_200_000 - DAY_MS), "1900-02-28T00:00:00.000Z");
        assert_eq!(fmt(1_735_603_200_000), "2024-12-31T00:00:00.000Z");
    }

    #[test]
    fn past_2038() {
        // i32 seconds overflow at 2038-01-19T03:14:07Z; we use i64 ms.
        assert_eq!(fmt(2_147_483_647_000), "2038-01-19T03:14:07.000Z");
        assert_eq!(fmt(2_147_483_648_000), "2038-01-19T03:14:08.000Z");
        assert_eq!(fmt(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
    }

    #[test]
    fn range_limits() {
        assert_eq!(fmt(Timestamp::MIN_MS), "0000-01-01T00:00:00.000Z");
        assert_eq!(fmt(Timestamp::MAX_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            format_rfc3339(Timestamp::MAX_MS + 1),
            Err(TimeError::OutOfRange(Timestamp::MAX_MS + 1))
        );
        assert!(format_rfc3339(Timestamp::MIN_MS - 1).is_err());
        assert!(format_rfc3339(i64::MIN).is_err());
        assert!(format_rfc3339(i64::MAX).is_err());
    }

    #[test]
    fn parse_accepts_rfc3339_variants() {
        let p = |s: &str| Timestamp::parse(s).map(Timestamp::unix_ms);
        assert_eq!(p("2024-02-29T08:00:00.000Z"), Ok(1_709_193_600_000));
        assert_eq!(p("2024-02-29T16:00:00+08:00"), Ok(1_709_193_600_000));
        assert_eq!(p("2024-02-29t08:00:00.0001234z"), Ok(1_709_193_600_000));
        assert_eq!(p("2024-02-29T08:00:00.5Z"), Ok(1_709_193_600_500));
        assert_eq!(p("1969-12-31T19:00:00-05:00"), Ok(0));
    }

    #[test]
    fn parse_refuses_non_dates() {
        for bad in [
            "",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2016-12-31T23:59:60Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.0000000000Z",
            "2024-01-01T00:00:00+0800",
            "2024-01-01T00:00:00Zjunk",
            "+2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00+08:00x",
            "二〇二四-01-01T00:00:00Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn every_day_round_trips_over_the_range_edges() {
        // Day by day across 1969-1971, 1999-2001, 2037-2039 and 9998-9999.
        for (from, to) in [(1969, 1971), (1999, 2001), (2037, 2039), (9998, 9999)] {
            let mut day = days_from_civil(from, 1, 1);
            let end = days_from_civil(to, 12, 31);
            while day <= end {
                let ms = day * DAY_MS + 12 * 3_600_000 + 345;
                let text = fmt(ms);
                assert_eq!(
                    Timestamp::parse(&text).map(Timestamp::unix_ms),
                    Ok(ms),
                    "{text}"
                );
                day += 1;
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_identity(ms in Timestamp::MIN_MS..=Timestamp::MAX_MS) {
            let text = fmt(ms);
            proptest::prop_assert_eq!(text.len(), 24);
            proptest::prop_assert_eq!(Timestamp::parse(&text).map(Timestamp::unix_ms), Ok(ms));
        }

        #[test]
        fn order_of_text_is_order_of_time(a in Timestamp::MIN_MS..=Timestamp::MAX_MS, b in Timestamp::MIN_MS..=Timestamp::MAX_MS) {
            proptest::prop_assert_eq!(fmt(a).cmp(&fmt(b)), a.cmp(&b));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Timestamp::parse(&s);
        }
    }
}
