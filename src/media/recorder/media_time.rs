//! Sample index ↔ media time at a recording's rate: where the aligner
//! places a packet and how long a file is (call recording issue: "aligned in
//! time"). Depends on nothing else, so `bench/recording_formats/run.sh`
//! compiles the aligner with it alone.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Sample index (at `rate` Hz) of a media time, rounded to the nearest
/// sample so arrival-time jitter below half a sample does not shift audio.
pub(super) fn time_to_index(t: Duration, rate: u32) -> u64 {
    let scaled = t.as_nanos() * u128::from(rate) + NANOS_PER_SEC / 2;
    u64::try_from(scaled / NANOS_PER_SEC).unwrap_or(u64::MAX)
}

/// Media time of a sample index at `rate` Hz (exact to the nanosecond, floor).
pub(super) fn index_to_time(index: u64, rate: u32) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let rate = u64::from(rate);
    let secs = index / rate;
    let rem = u128::from(index % rate);
    let nanos = rem * NANOS_PER_SEC / u128::from(rate);
    // `rem < rate`, so `nanos < 1e9`: the conversion cannot fail.
    Duration::from_secs(secs) + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}
