//! The centre's working day (issue 12 item 7; REQUIREMENTS §7 wall-board,
//! §8 daily figures): the answered/abandoned/service-level counters and
//! the calls counted by fewest-calls routing are "today" in the centre's
//! time zone, reset at local midnight, not "since the process started".
//!
//! Pure arithmetic on a [`Time`](crate::time::Time) and a fixed offset
//! from UTC in minutes (China Standard Time is
//! +480, with no daylight saving). The shell reads the clock, asks when
//! today began and when tomorrow begins, and feeds the engine
//! [`Input::NewDay`](super::Input::NewDay) at that boundary.

/// Offsets allowed from UTC, in minutes (UTC−12:00 … UTC+14:00).
pub const UTC_OFFSETS: std::ops::RangeInclusive<i32> = -720..=840;

/// When the local day containing a time began, and the next local midnight
/// (the arithmetic is the crate's one civil-date module's).
pub use crate::time::civil::{day_start, next_day_start};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Time;
    use std::time::Duration;

    fn s(n: u64) -> Time {
        Time::from_unix_secs(n)
    }

    // 2026-12-06T00:00:00Z
    const UTC_MIDNIGHT: u64 = 1_796_515_200;

    #[test]
    fn china_standard_time_days_begin_at_16_00_utc() {
        let cst = 480;
        // 2026-12-06 08:00 CST is 00:00 UTC: the CST day began at
        // 2026-12-05T16:00Z.
        let begun = UTC_MIDNIGHT - 8 * 3600;
        assert_eq!(day_start(s(UTC_MIDNIGHT), cst), s(begun));
        assert_eq!(next_day_start(s(UTC_MIDNIGHT), cst), s(begun + 86_400));
        // Exactly local midnight belongs to the new day …
        assert_eq!(day_start(s(begun), cst), s(begun));
        assert_eq!(next_day_start(s(begun), cst), s(begun + 86_400));
        // … and the millisecond before it to the old one.
        let just_before = s(begun) - Duration::from_millis(1);
        assert_eq!(day_start(just_before, cst), s(begun - 86_400));
        assert_eq!(next_day_start(just_before, cst), s(begun));
    }

    #[test]
    fn offsets_west_of_utc_and_utc_itself() {
        // UTC−5: the day of 2026-12-06T03:00Z began at 2026-12-05T05:00Z.
        let t = s(UTC_MIDNIGHT + 3 * 3600);
        assert_eq!(day_start(t, -300), s(UTC_MIDNIGHT - 86_400 + 5 * 3600));
        assert_eq!(day_start(t, 0), s(UTC_MIDNIGHT));
        assert_eq!(next_day_start(t, 0), s(UTC_MIDNIGHT + 86_400));
        // Sub-second parts do not matter.
        assert_eq!(
            day_start(t + Duration::from_millis(999), 0),
            s(UTC_MIDNIGHT)
        );
    }

    #[test]
    fn the_extremes_never_panic() {
        for off in [*UTC_OFFSETS.start(), 0, *UTC_OFFSETS.end()] {
            // Before the first local midnight after the epoch: clamped.
            assert_eq!(day_start(Time::UNIX_EPOCH, off), Time::UNIX_EPOCH);
            assert!(next_day_start(Time::UNIX_EPOCH, off) <= s(86_400));
            let far = Time::from_unix_millis(u64::MAX / 4);
            let begun = day_start(far, off);
            assert!(begun <= far && far < next_day_start(far, off));
        }
    }
}
