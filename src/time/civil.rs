//! The one civil-date module of the crate (issue 13 §5): civil (proleptic
//! Gregorian) dates, weekdays, local time and local midnight at a fixed UTC
//! offset. Its users: the IVR's schedules and holiday calendars ("a
//! schedule can be checked from the CLI for any date" needs exact date
//! arithmetic), the events' RFC 3339 timestamps and JSONL file names, the
//! ACD's working day (`acd::day`), recording paths by local date.
//!
//! Written here rather than taken from `chrono`/`time`: the whole need is two
//! small, exact integer algorithms (Howard Hinnant's `days_from_civil` and
//! `civil_from_days`, <https://howardhinnant.github.io/date_algorithms.html>)
//! plus a weekday from the day number; no dependency, no time-zone database
//! (China has one fixed offset and no daylight saving), no clock reads.
//!
//! Day numbers count days since 1970-01-01 (day 0, a Thursday). Dates are
//! limited to the years 0001–9999 (the `YYYY-MM-DD` form); conversions from
//! unix seconds clamp to that range so every function is total.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::Time;

/// Minutes in a day.
pub const MINUTES_PER_DAY: u16 = 1440;

/// Day number of 0001-01-01.
const MIN_DAYS: i64 = -719_162;
/// Day number of 9999-12-31.
const MAX_DAYS: i64 = 2_932_896;

/// Days since 1970-01-01 of the civil date `y-m-d` (Hinnant). `m` is 1..=12,
/// `d` is 1..=31; out-of-range days roll over arithmetically.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of day number `z` (Hinnant).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    // mp, d and m are small by construction.
    (y, m as u32, d as u32)
}

/// Whether `y` is a Gregorian leap year.
pub fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days in month `m` (1..=12) of year `y`.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Day of the week, Monday first (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// All days, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// Weekday of day number `days` (1970-01-01 was a Thursday).
    pub fn from_days(days: i64) -> Weekday {
        // (days + 3) mod 7 is 0 on Mondays; the index is in 0..7.
        Weekday::ALL[(days + 3).rem_euclid(7) as usize]
    }

    /// 0 for Monday … 6 for Sunday.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The lowercase key used in schedule files: `mon` … `sun`.
    pub fn key(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }

    /// The weekday of a schedule-file key (`mon` … `sun`), if it is one.
    pub fn from_key(key: &str) -> Option<Weekday> {
        Weekday::ALL.into_iter().find(|d| d.key() == key)
    }

    /// Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Sat | Weekday::Sun)
    }
}

impl fmt::Display for Weekday {
    /// `Mon` … `Sun`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.key();
        let mut chars = k.chars();
        if let Some(first) = chars.next() {
            write!(f, "{}{}", first.to_ascii_uppercase(), chars.as_str())?;
        }
        Ok(())
    }
}

/// Why a date string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not of the form `YYYY-MM-DD`.
    #[error("{0:?} is not a date of the form YYYY-MM-DD")]
    Format(String),
    /// Well formed but no such day (`2026-02-30`, month 13, year 0000).
    #[error("{0:?} is not a calendar date")]
    NoSuchDay(String),
}

/// A civil date in the years 0001–9999. Orders chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// The earliest representable date, 0001-01-01.
    pub const MIN: Date = Date {
        year: 1,
        month: 1,
        day: 1,
    };
    /// The latest representable date, 9999-12-31.
    pub const MAX: Date = Date {
        year: 9999,
        month: 12,
        day: 31,
    };

    /// The date `year-month-day`, if it exists and the year is 1..=9999.
    pub fn new(year: i64, month: u32, day: u32) -> Option<Date> {
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day < 1 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date {
            year: u16::try_from(year).ok()?,
            month: u8::try_from(month).ok()?,
            day: u8::try_from(day).ok()?,
        })
    }

    /// Parse exactly `YYYY-MM-DD` (four-digit year, two-digit month and day).
    pub fn parse(s: &str) -> Result<Date, DateError> {
        let b = s.as_bytes();
        let shape = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape {
            return Err(DateError::Format(s.to_string()));
        }
        let num = |r: std::ops::Range<usize>| -> u32 {
            b[r].iter().fold(0, |n, c| n * 10 + u32::from(c - b'0'))
        };
        Date::new(i64::from(num(0..4)), num(5..7), num(8..10))
            .ok_or_else(|| DateError::NoSuchDay(s.to_string()))
    }

    /// The date of day number `days`, clamped to 0001-01-01..=9999-12-31.
    pub fn from_days(days: i64) -> Date {
        let (y, m, d) = civil_from_days(days.clamp(MIN_DAYS, MAX_DAYS));
        // In range by the clamp; the fallback is unreachable.
        Date::new(y, m, d).unwrap_or(Date::MIN)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        )
    }

    /// The year, 1..=9999.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1..=12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, 1..=31.
    pub fn day(self) -> u8 {
        self.day
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        Weekday::from_days(self.days())
    }

    /// The date `n` days later (earlier if negative), clamped to the range.
    pub fn add_days(self, n: i64) -> Date {
        Date::from_days(self.days().saturating_add(n))
    }
}

impl fmt::Display for Date {
    /// `YYYY-MM-DD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Date, DateError> {
        Date::parse(s)
    }
}

/// A moment as seen on a wall clock at some UTC offset, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// The local date.
    pub date: Date,
    /// Minutes since local midnight, 0..1440.
    pub minute: u16,
    /// The local day of the week (`date.weekday()`, kept for convenience).
    pub weekday: Weekday,
}

impl fmt::Display for LocalTime {
    /// `2026-02-14 Sat 09:05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.date, self.weekday, HhMm(self.minute))
    }
}

/// Formats minutes since midnight as `HH:MM` (1440 → `24:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HhMm(pub u16);

impl fmt::Display for HhMm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// Local date, minute of day and weekday of `unix_secs` at
/// `utc_offset_minutes` east of UTC (480 for China Standard Time). Seconds are
/// truncated towards the past; moments outside the years 0001–9999 clamp to
/// the first or last minute of that range.
pub fn local(unix_secs: i64, utc_offset_minutes: i32) -> LocalTime {
    let min_minute = MIN_DAYS * i64::from(MINUTES_PER_DAY);
    let max_minute = (MAX_DAYS + 1) * i64::from(MINUTES_PER_DAY) - 1;
    let minutes = unix_secs
        .div_euclid(60)
        .saturating_add(i64::from(utc_offset_minutes))
        .clamp(min_minute, max_minute);
    let days = minutes.div_euclid(i64::from(MINUTES_PER_DAY));
    let date = Date::from_days(days);
    LocalTime {
        date,
        // rem_euclid(1440) is in 0..1440.
        minute: minutes.rem_euclid(i64::from(MINUTES_PER_DAY)) as u16,
        weekday: date.weekday(),
    }
}

/// Unix seconds of local `minute` (0..=1440; 1440 is the next midnight) on
/// `date` at `utc_offset_minutes` east of UTC.
pub fn to_unix(date: Date, minute: u16, utc_offset_minutes: i32) -> i64 {
    (date.days() * i64::from(MINUTES_PER_DAY) + i64::from(minute) - i64::from(utc_offset_minutes))
        * 60
}

/// The local date of `t` at `utc_offset_minutes` east of UTC (clamped to
/// the years 0001–9999 like [`local`]).
pub fn local_date(t: Time, utc_offset_minutes: i32) -> Date {
    local(unix_secs_i64(t), utc_offset_minutes).date
}

/// Seconds in a day.
const DAY_SECS: i64 = 86_400;

/// `t` in whole Unix seconds as an `i64` (saturating).
fn unix_secs_i64(t: Time) -> i64 {
    i64::try_from(t.unix_secs()).unwrap_or(i64::MAX)
}

/// When the local day containing `t` began (local midnight at
/// `utc_offset_minutes` east of UTC), in whole seconds. Times before the
/// epoch's first local midnight give the epoch.
pub fn day_start(t: Time, utc_offset_minutes: i32) -> Time {
    let offset = i64::from(utc_offset_minutes) * 60;
    let secs = i64::try_from(t.unix_secs()).unwrap_or(i64::MAX - DAY_SECS);
    let local = secs.saturating_add(offset);
    let midnight_local = local.div_euclid(DAY_SECS) * DAY_SECS;
    let midnight = midnight_local.saturating_sub(offset);
    Time::from_unix_secs(u64::try_from(midnight).unwrap_or(0))
}

/// The next local midnight strictly after `t`.
pub fn next_day_start(t: Time, utc_offset_minutes: i32) -> Time {
    day_start(t, utc_offset_minutes) + Duration::from_secs(DAY_SECS.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn epoch_and_known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(Weekday::from_days(0), Weekday::Thu);
        assert_eq!(d("2000-03-01").days(), 11_017);
        assert_eq!(d("2026-02-14").weekday(), Weekday::Sat);
        assert_eq!(d("2026-10-05").weekday(), Weekday::Mon);
        assert_eq!(d("1969-12-31").days(), -1);
        assert_eq!(Date::from_days(-1), d("1969-12-31"));
        assert_eq!(Date::MIN.days(), MIN_DAYS);
        assert_eq!(Date::MAX.days(), MAX_DAYS);
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "2026-2-14",
            "2026/02/14",
            "20260214",
            "2026-02-14 ",
            "+026-02-14",
            "２０２６-02-14",
        ] {
            assert!(
                matches!(Date::parse(bad), Err(DateError::Format(_))),
                "{bad}"
            );
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "0000-01-01",
            "2026-04-31",
        ] {
            assert!(
                matches!(Date::parse(bad), Err(DateError::NoSuchDay(_))),
                "{bad}"
            );
        }
        assert!(Date::parse("2024-02-29").is_ok());
        assert!(Date::parse("2000-02-29").is_ok());
        assert!(Date::parse("1900-02-29").is_err());
        assert_eq!(
            "2026-02-14".parse::<Date>().unwrap().to_string(),
            "2026-02-14"
        );
    }

    #[test]
    fn timezone_edges() {
        // 2026-02-13 16:00 UTC is 2026-02-14 00:00 in China.
        let t = to_unix(d("2026-02-13"), 16 * 60, 0);
        let l = local(t, 480);
        assert_eq!(
            (l.date, l.minute, l.weekday),
            (d("2026-02-14"), 0, Weekday::Sat)
        );
        let l = local(t - 1, 480);
        assert_eq!(
            (l.date, l.minute, l.weekday),
            (d("2026-02-13"), 1439, Weekday::Fri)
        );
        assert_eq!(to_unix(d("2026-02-14"), 0, 480), t);
        assert_eq!(to_unix(d("2026-02-13"), 1440, 480), t);
        // Negative offsets and times before the epoch.
        let l = local(-1, -300);
        assert_eq!((l.date, l.minute), (d("1969-12-31"), 19 * 60 - 1));
        assert_eq!(l.to_string(), "1969-12-31 Wed 18:59");
    }

    #[test]
    fn local_is_total() {
        assert_eq!(local(i64::MIN, 480).date, Date::MIN);
        let l = local(i64::MAX, -720);
        assert_eq!((l.date, l.minute), (Date::MAX, 1439));
        assert_eq!(Date::MAX.add_days(1), Date::MAX);
        assert_eq!(Date::MIN.add_days(i64::MIN), Date::MIN);
    }

    #[test]
    fn weekday_keys() {
        for w in Weekday::ALL {
            assert_eq!(Weekday::from_key(w.key()), Some(w));
        }
        assert_eq!(Weekday::from_key("Mon"), None);
        assert_eq!(Weekday::Sun.to_string(), "Sun");
        assert_eq!(HhMm(1440).to_string(), "24:00");
        assert_eq!(HhMm(510).to_string(), "08:30");
    }

    proptest! {
        #[test]
        fn civil_round_trips(days in MIN_DAYS..=MAX_DAYS) {
            let date = Date::from_days(days);
            prop_assert_eq!(date.days(), days);
            prop_assert_eq!(Date::parse(&date.to_string()), Ok(date));
            prop_assert_eq!(date.add_days(1).days(), (days + 1).min(MAX_DAYS));
            prop_assert_eq!(Weekday::from_days(days + 7), date.weekday());
        }

        #[test]
        fn local_round_trips(secs in -2_208_988_800i64..4_102_444_800, off in -720i32..=840) {
            let l = local(secs, off);
            let back = to_unix(l.date, l.minute, off);
            prop_assert!(back <= secs && secs - back < 60);
            prop_assert!(l.minute < MINUTES_PER_DAY);
            prop_assert_eq!(l.weekday, l.date.weekday());
        }

        #[test]
        fn parse_never_panics(s in ".{0,12}") {
            let _ = Date::parse(&s);
        }
    }
}
