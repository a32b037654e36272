//! The arrival rate of the next half hour (issue 19 §1): simple
//! exponential smoothing of the arrivals of the last intervals, scaled by
//! the same weekday and time of past weeks (the prior).
//!
//! - `level`: the recent intervals' rates smoothed oldest to newest,
//!   `L ← α·x + (1 − α)·L`, starting at the oldest interval;
//! - with past weeks: their mean rate over the same recent intervals,
//!   smoothed alike (`P_recent`), and their mean rate over the coming
//!   half hour (`P_next`). Today runs at `L / P_recent` of those weeks (the
//!   ratio, kept within [`RATIO_BOUNDS`]), so the forecast is
//!   `P_next · L / P_recent`: the weeks give the day's shape (the morning
//!   rise the level alone would lag behind), today gives its height;
//! - past weeks with no calls in the recent intervals give no ratio: the
//!   forecast is then the mean of `P_next` and `L`;
//! - without past weeks the forecast is `L`.
//!
//! Pure: arrival times and the present as [`Time`], no clock.

use std::time::Duration;

use crate::time::Time;

/// The ratio today / past weeks is kept within these bounds (a quiet
/// interval in the past weeks would otherwise multiply today's level).
pub const RATIO_BOUNDS: (f64, f64) = (0.25, 4.0);

/// Arrivals counted in `bins` consecutive intervals of `bin` ending at
/// `end` (oldest first): interval `k` holds `[end − (bins − k)·bin,
/// end − (bins − k − 1)·bin)`. Times outside are ignored.
pub fn bin_counts(times: &[Time], end: Time, bin: Duration, bins: usize) -> Vec<u64> {
    let mut counts = vec![0u64; bins];
    let bin_ms = bin.as_millis().max(1) as u64;
    let span = bin_ms.saturating_mul(bins as u64);
    for t in times {
        if *t >= end {
            continue;
        }
        let back = end.unix_millis() - t.unix_millis();
        if back > span {
            continue;
        }
        // `back` in (0, span]: interval from the end, 0 the newest.
        let from_end = ((back - 1) / bin_ms) as usize;
        if from_end < bins {
            counts[bins - 1 - from_end] += 1;
        }
    }
    counts
}

/// Exponential smoothing of a series (oldest first); `None` when empty.
pub fn smooth(series: &[f64], alpha: f64) -> Option<f64> {
    let (first, rest) = series.split_first()?;
    Some(
        rest.iter()
            .fold(*first, |level, x| alpha * x + (1.0 - alpha) * level),
    )
}

/// The arrival forecast and how it came about (rates per second).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrivals {
    /// Today's smoothed rate over the recent intervals (`L`).
    pub level: f64,
    /// Past weeks' mean rate over the coming half hour (`P_next`).
    pub prior_next: Option<f64>,
    /// Today against the past weeks (`L / P_recent`, bounded).
    pub ratio: Option<f64>,
    /// The rate expected over the coming half hour.
    pub forecast: f64,
}

/// The forecast from today's recent interval rates (oldest first), the
/// past weeks' rates over the same intervals (one series per week, same
/// length) and their rates over the coming half hour (one per week).
pub fn forecast(
    recent: &[f64],
    past_recent: &[Vec<f64>],
    past_next: &[f64],
    alpha: f64,
) -> Arrivals {
    let level = smooth(recent, alpha).unwrap_or(0.0).max(0.0);
    if past_next.is_empty() {
        return Arrivals {
            level,
            prior_next: None,
            ratio: None,
            forecast: level,
        };
    }
    let weeks = past_next.len() as f64;
    let prior_next = past_next.iter().sum::<f64>() / weeks;
    let mean_recent: Vec<f64> = (0..recent.len())
        .map(|k| {
            past_recent
                .iter()
                .map(|w| w.get(k).copied().unwrap_or(0.0))
                .sum::<f64>()
                / (past_recent.len().max(1) as f64)
        })
        .collect();
    let prior_recent = smooth(&mean_recent, alpha).unwrap_or(0.0);
    if prior_recent <= 0.0 {
        return Arrivals {
            level,
            prior_next: Some(prior_next),
            ratio: None,
            forecast: (prior_next + level) / 2.0,
        };
    }
    let ratio = (level / prior_recent).clamp(RATIO_BOUNDS.0, RATIO_BOUNDS.1);
    Arrivals {
        level,
        prior_next: Some(prior_next),
        ratio: Some(ratio),
        forecast: prior_next * ratio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
    }

    #[test]
    fn intervals_hold_their_start_and_not_their_end() {
        let end = Time::from_unix_secs(10_000);
        let bin = Duration::from_secs(100);
        let at = |s: u64| Time::from_unix_secs(s);
        // [9700, 9800), [9800, 9900), [9900, 10000)
        let times = [
            at(9_699),  // before: ignored
            at(9_700),  // first
            at(9_799),  // first
            at(9_800),  // second
            at(9_999),  // third
            at(10_000), // the present: not yet in the past
            at(10_050), // future: ignored
        ];
        assert_eq!(bin_counts(&times, end, bin, 3), vec![2, 1, 1]);
        assert_eq!(bin_counts(&times, end, bin, 0), Vec::<u64>::new());
    }

    #[test]
    fn smoothing_a_scripted_series() {
        // L: 10 → 0.5·20 + 0.5·10 = 15 → 0.5·20 + 7.5 = 17.5 → 0.5·0 + 8.75.
        close(smooth(&[10.0, 20.0, 20.0, 0.0], 0.5).expect("level"), 8.75);
        // α = 1 keeps the last interval, α = 0 the first.
        close(smooth(&[3.0, 9.0, 4.0], 1.0).expect("level"), 4.0);
        close(smooth(&[3.0, 9.0, 4.0], 0.0).expect("level"), 3.0);
        // A constant series is its own level.
        close(smooth(&[7.0; 12], 0.3).expect("level"), 7.0);
        assert_eq!(smooth(&[], 0.5), None);
    }

    #[test]
    fn a_step_is_followed_geometrically() {
        // From 0 to 1: after k intervals at 1 the level is 1 − (1 − α)^k.
        let mut series = vec![0.0; 4];
        series.extend([1.0; 5]);
        close(smooth(&series, 0.4).expect("level"), 1.0 - 0.6f64.powi(5));
    }

    #[test]
    fn without_past_weeks_the_forecast_is_the_level() {
        let a = forecast(&[2.0, 4.0], &[], &[], 0.5);
        close(a.level, 3.0);
        close(a.forecast, 3.0);
        assert_eq!((a.prior_next, a.ratio), (None, None));
    }

    #[test]
    fn past_weeks_give_the_shape_and_today_the_height() {
        // The morning rise: past weeks went 1, 2, 3 per interval and had 6
        // in the coming half hour; today runs 10 % above them.
        let past = vec![vec![1.0, 2.0, 3.0], vec![1.0, 2.0, 3.0]];
        let today = [1.1, 2.2, 3.3];
        let a = forecast(&today, &past, &[6.0, 6.0], 0.5);
        close(a.ratio.expect("ratio"), 1.1);
        close(a.prior_next.expect("prior"), 6.0);
        close(a.forecast, 6.6);
        // The level alone lags far behind the rise.
        assert!(a.level < 3.3);
        // Weeks averaged per interval.
        let a = forecast(&[2.0], &[vec![1.0], vec![3.0]], &[4.0, 8.0], 0.5);
        close(a.ratio.expect("ratio"), 1.0);
        close(a.forecast, 6.0);
    }

    #[test]
    fn the_ratio_is_bounded_and_a_silent_past_falls_back_to_the_mean() {
        let a = forecast(&[100.0], &[vec![1.0]], &[2.0], 0.5);
        close(a.ratio.expect("ratio"), RATIO_BOUNDS.1);
        close(a.forecast, 8.0);
        let a = forecast(&[4.0], &[vec![0.0]], &[2.0], 0.5);
        assert_eq!(a.ratio, None);
        close(a.forecast, 3.0);
        // A silent today against busy weeks: bounded below.
        let a = forecast(&[0.0], &[vec![5.0]], &[10.0], 0.5);
        close(a.forecast, 10.0 * RATIO_BOUNDS.0);
    }
}
