//! Retry policy of the outbox (issue 7 §3: "exponential backoff with jitter,
//! dead letters after N attempts").
//!
//! Pure: the random draw is passed in as `unit` in `[0, 1)` and the time as
//! `now_ms`, so every decision is reproducible in a test.
//!
//! The delay after the `n`-th failed attempt is drawn uniformly ("full
//! jitter") from `[0, min(cap, base · 2^(n-1)))`: retries of many calls that
//! failed together (the platform went down) spread out instead of arriving
//! in waves when it comes back.

/// How a sink retries a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Ceiling of the first delay, in milliseconds (default 1 s).
    pub base_ms: i64,
    /// Largest delay, in milliseconds (default 5 min).
    pub cap_ms: i64,
    /// Failed attempts after which an event becomes a dead letter (default 12).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_ms: 1_000,
            cap_ms: 300_000,
            max_attempts: 12,
        }
    }
}

/// What happens to an event after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Tried again at `at_ms` (unix milliseconds) or later.
    Retry {
        /// Earliest time of the next attempt, unix milliseconds.
        at_ms: i64,
    },
    /// Given up: kept as a dead letter, listable and replayable.
    DeadLetter,
}

impl RetryPolicy {
    /// Upper bound of the delay after the `attempts`-th failure:
    /// `min(cap, base · 2^(attempts-1))`, never negative, never overflowing.
    pub fn ceiling_ms(&self, attempts: u32) -> i64 {
        let base = self.base_ms.max(0);
        let cap = self.cap_ms.max(0);
        let shift = attempts.saturating_sub(1).min(62);
        let grown = base.checked_mul(1_i64 << shift).unwrap_or(i64::MAX);
        grown.min(cap)
    }

    /// The full-jitter delay after the `attempts`-th failure for a random
    /// draw `unit` in `[0, 1)` (values outside are clamped).
    pub fn delay_ms(&self, attempts: u32, unit: f64) -> i64 {
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        let ceiling = self.ceiling_ms(attempts);
        // f64 holds every delay up to 2^53 ms exactly enough for a backoff.
        let delay = (ceiling as f64 * unit).floor() as i64;
        delay.clamp(0, ceiling)
    }

    /// Decide after a failure: `attempts` counts failures including this
    /// one. `not_before_ms` is a receiver's `Retry-After`, honoured up to
    /// the cap.
    pub fn after_failure(
        &self,
        attempts: u32,
        now_ms: i64,
        unit: f64,
        not_before_ms: Option<i64>,
    ) -> FailOutcome {
        if attempts >= self.max_attempts {
            return FailOutcome::DeadLetter;
        }
        let mut at_ms = now_ms.saturating_add(self.delay_ms(attempts, unit));
        if let Some(nb) = not_before_ms {
            let floor = nb.min(now_ms.saturating_add(self.cap_ms.max(0)));
            at_ms = at_ms.max(floor);
        }
        FailOutcome::Retry { at_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling_ms(1), 1_000);
        assert_eq!(p.ceiling_ms(2), 2_000);
        assert_eq!(p.ceiling_ms(9), 256_000);
        assert_eq!(p.ceiling_ms(10), 300_000);
        assert_eq!(p.ceiling_ms(500), 300_000);
        assert_eq!(p.ceiling_ms(0), 1_000);
    }

    #[test]
    fn full_jitter_spans_zero_to_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_ms(3, 0.0), 0);
        assert_eq!(p.delay_ms(3, 0.5), 2_000);
        assert_eq!(p.delay_ms(3, 0.999_999), 3_999);
        assert_eq!(p.delay_ms(3, f64::NAN), 0);
        assert_eq!(p.delay_ms(3, 7.0), 4_000);
    }

    #[test]
    fn dead_letter_after_max_attempts() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.after_failure(11, 10_000, 0.5, None),
            FailOutcome::Retry {
                at_ms: 10_000 + 150_000
            }
        );
        assert_eq!(
            p.after_failure(12, 10_000, 0.5, None),
            FailOutcome::DeadLetter
        );
    }

    #[test]
    fn retry_after_is_a_floor_bounded_by_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.after_failure(1, 0, 0.0, Some(30_000)),
            FailOutcome::Retry { at_ms: 30_000 }
        );
        assert_eq!(
            p.after_failure(1, 0, 0.0, Some(10_000_000)),
            FailOutcome::Retry { at_ms: 300_000 }
        );
    }

    proptest! {
        #[test]
        fn delay_within_bounds(base in 0i64..100_000, cap in 0i64..10_000_000,
                               attempts in 0u32..200, unit in 0.0f64..1.0) {
            let p = RetryPolicy { base_ms: base, cap_ms: cap, max_attempts: 12 };
            let d = p.delay_ms(attempts, unit);
            prop_assert!(d >= 0);
            prop_assert!(d <= cap);
            prop_assert!(d <= p.ceiling_ms(attempts));
        }
    }
}
