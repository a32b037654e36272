//! Per-user lockout of digest authentication (issue 14 §5), sans-IO.
//!
//! [`super::registrar::FailureThrottle`] blocks one *address* that keeps
//! failing; a password-guessing botnet spreads its guesses over many
//! addresses, each below that limit. [`UserLockout`] counts failed digest
//! authentications per *user name* (the `username` of the credentials,
//! from any address): `max_failures` within `window` lock the user out for
//! `lockout`. While locked out every request for the user is refused before
//! its credentials are checked — the right password too, so guessing
//! during a lockout teaches nothing — and the lockout always ends on its
//! own: a user is never locked out for longer than `lockout` after the
//! last failure that counted (failures during a lockout do not count or
//! extend it).
//!
//! **The answer is 503 Service Unavailable with `Retry-After`** (the
//! seconds left), not 403. RFC 3261 §21.4.4 says a 403 "SHOULD NOT be
//! repeated": phones that obey it stop registering until someone restarts
//! them, so a lockout would outlast itself and keep the real agent out —
//! exactly what an attacker wants. §21.5.4 makes 503 the answer for a
//! temporary refusal and `Retry-After` (§20.33) tells the phone when to try
//! again, so the agent's phone comes back by itself once the lockout ends.
//! The answer is the same whether the user exists or not, and unknown user
//! names are counted and locked like agents, so a lockout does not reveal
//! which user names exist.
//!
//! A success (outside a lockout) forgets the user's failures. Memory is
//! bounded like the address throttle's: when the table is full, spent
//! entries are swept (at most once a second) and new names that still do
//! not fit are not tracked (the address throttle and the flood gate still
//! apply to them). Time is injected as a [`Time`]; nothing here reads a
//! clock.

use std::collections::HashMap;
use std::time::Duration;

use crate::time::Time;

/// Default bound on user names tracked.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// A lockout that has just begun (the shell logs and audits it once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedOut {
    /// The user name locked out.
    pub user: String,
    /// Failures counted within the window.
    pub failures: u32,
    /// When it ends.
    pub until: Time,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Time,
    count: u32,
    locked_until: Option<Time>,
}

/// Failed digest authentications per user name, with time-bounded
/// lockouts (see the module doc).
#[derive(Debug, Clone)]
pub struct UserLockout {
    max_failures: u32,
    window: Duration,
    lockout: Duration,
    max_entries: usize,
    entries: HashMap<String, Entry>,
    last_sweep: Option<u64>,
}

impl UserLockout {
    /// `max_failures` failures within `window` lock a user out for
    /// `lockout`; `max_failures` 0 turns the lockout off.
    pub fn new(max_failures: u32, window: Duration, lockout: Duration) -> Self {
        Self {
            max_failures,
            window,
            lockout,
            max_entries: DEFAULT_MAX_ENTRIES,
            entries: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Overrides the bound on tracked user names (at least 1).
    pub fn with_max_entries(mut self, max: usize) -> Self {
        self.max_entries = max.max(1);
        self
    }

    /// Whether the lockout is on.
    pub fn enabled(&self) -> bool {
        self.max_failures > 0
    }

    /// Number of tracked user names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no user name is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// User names locked out at `now`.
    pub fn locked_count(&self, now: Time) -> usize {
        self.entries
            .values()
            .filter(|e| e.locked_until.is_some_and(|u| u > now))
            .count()
    }

    /// How long `user` stays locked out from `now`, `None` if not locked.
    pub fn locked_for(&self, user: &str, now: Time) -> Option<Duration> {
        let until = self.entries.get(user)?.locked_until?;
        (until > now).then(|| until.saturating_duration_since(now))
    }

    /// Records a failed authentication for `user`; `Some` when it begins a
    /// lockout (once per lockout). Failures while locked out are ignored.
    pub fn record_failure(&mut self, user: &str, now: Time) -> Option<LockedOut> {
        if !self.enabled() {
            return None;
        }
        if !self.entries.contains_key(user) && self.entries.len() >= self.max_entries {
            if self.last_sweep != Some(now.unix_secs()) {
                self.last_sweep = Some(now.unix_secs());
                self.expire(now);
            }
            if self.entries.len() >= self.max_entries {
                return None;
            }
        }
        let e = self.entries.entry(user.to_string()).or_insert(Entry {
            window_start: now,
            count: 0,
            locked_until: None,
        });
        match e.locked_until {
            Some(until) if until > now => return None,
            Some(_) => {
                e.locked_until = None;
                e.count = 0;
            }
            None => {}
        }
        // A clock that went back starts a new window, as an old one does.
        if e.count == 0
            || now < e.window_start
            || now.saturating_duration_since(e.window_start) >= self.window
        {
            e.window_start = now;
            e.count = 0;
        }
        e.count += 1;
        if e.count < self.max_failures {
            return None;
        }
        let until = now + self.lockout;
        let failures = e.count;
        e.locked_until = Some(until);
        e.count = 0;
        Some(LockedOut {
            user: user.to_string(),
            failures,
            until,
        })
    }

    /// Records a success for `user`: forgets its failures. A lockout in
    /// force stays (the shell does not check credentials while locked).
    pub fn record_success(&mut self, user: &str) {
        if let Some(e) = self.entries.get_mut(user) {
            if e.locked_until.is_none() {
                self.entries.remove(user);
            } else {
                e.count = 0;
            }
        }
    }

    /// Forgets user names neither locked out nor within a failure window.
    pub fn expire(&mut self, now: Time) {
        let window = self.window;
        self.entries.retain(|_, e| {
            e.locked_until.is_some_and(|u| u > now)
                || (e.count > 0
                    && now >= e.window_start
                    && now.saturating_duration_since(e.window_start) < window)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: u64 = 1_700_000_000_000;

    /// `ms` milliseconds after `T0`.
    fn at(ms: u64) -> Time {
        Time::from_unix_millis(T0 + ms)
    }

    fn lockout() -> UserLockout {
        UserLockout::new(3, Duration::from_secs(60), Duration::from_secs(300))
    }

    #[test]
    fn failures_within_the_window_lock_the_user_once() {
        let mut l = lockout();
        assert_eq!(l.record_failure("1001", at(0)), None);
        assert_eq!(l.record_failure("1001", at(1_000)), None);
        assert_eq!(l.locked_for("1001", at(1_000)), None);
        let began = l.record_failure("1001", at(2_000)).expect("locked");
        assert_eq!(began.user, "1001");
        assert_eq!(began.failures, 3);
        assert_eq!(began.until, at(302_000));
        assert_eq!(l.locked_count(at(2_000)), 1);
        assert_eq!(l.locked_count(at(302_000)), 0);
        assert_eq!(
            l.locked_for("1001", at(2_000)),
            Some(Duration::from_secs(300))
        );
        // More failures during the lockout: no second report, no extension.
        for i in 0..50 {
            assert_eq!(l.record_failure("1001", at(3_000 + i)), None);
        }
        assert_eq!(
            l.locked_for("1001", at(301_999)),
            Some(Duration::from_millis(1))
        );
        assert_eq!(l.locked_for("1001", at(302_000)), None);
        // Other users are not touched.
        assert_eq!(l.locked_for("1002", at(2_000)), None);
    }

    #[test]
    fn a_lockout_ends_and_counting_starts_afresh() {
        let mut l = lockout();
        for i in 0..3 {
            l.record_failure("1001", at(i));
        }
        assert!(l.locked_for("1001", at(10)).is_some());
        // After it: two failures do not lock again, a third does.
        assert_eq!(l.record_failure("1001", at(400_000)), None);
        assert_eq!(l.locked_for("1001", at(400_000)), None);
        assert_eq!(l.record_failure("1001", at(400_001)), None);
        assert!(l.record_failure("1001", at(400_002)).is_some());
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let mut l = lockout();
        for i in 0..10 {
            assert_eq!(l.record_failure("1001", at(i * 31_000)), None);
        }
        assert_eq!(l.locked_for("1001", at(400_000)), None);
    }

    #[test]
    fn success_forgets_failures_but_not_a_lockout() {
        let mut l = lockout();
        l.record_failure("1001", at(0));
        l.record_failure("1001", at(1));
        l.record_success("1001");
        assert!(l.is_empty());
        assert_eq!(l.record_failure("1001", at(2)), None);
        for i in 3..5 {
            l.record_failure("1001", at(i));
        }
        assert!(l.locked_for("1001", at(5)).is_some());
        l.record_success("1001");
        assert!(l.locked_for("1001", at(5)).is_some(), "lockout stays");
    }

    #[test]
    fn zero_turns_it_off() {
        let mut l = UserLockout::new(0, Duration::from_secs(60), Duration::from_secs(300));
        assert!(!l.enabled());
        for i in 0..100 {
            assert_eq!(l.record_failure("1001", at(i)), None);
        }
        assert_eq!(l.locked_for("1001", at(100)), None);
        assert!(l.is_empty());
    }

    #[test]
    fn memory_is_bounded_and_spent_entries_swept() {
        let mut l = lockout().with_max_entries(2);
        l.record_failure("a", at(0));
        l.record_failure("b", at(0));
        // Full: a third name is not tracked.
        l.record_failure("c", at(1));
        assert_eq!(l.len(), 2);
        // Once the others' windows have passed, it is.
        l.record_failure("c", at(61_000));
        assert_eq!(l.len(), 1);
        l.expire(at(200_000));
        assert!(l.is_empty());
    }

    #[test]
    fn a_clock_that_goes_back_never_locks_forever() {
        let mut l = lockout();
        l.record_failure("1001", at(100_000));
        l.record_failure("1001", at(100_001));
        // Back by a minute: a new window.
        assert_eq!(l.record_failure("1001", at(40_000)), None);
        l.expire(at(40_000));
        assert_eq!(l.locked_for("1001", at(40_000)), None);
    }

    proptest! {
        /// Whatever the sequence of failures and successes (times in
        /// order), a user is locked out only after `max_failures` failures
        /// within one window, is never locked for longer than the lockout,
        /// and each lockout is reported exactly once.
        #[test]
        fn lockouts_are_bounded_and_reported_once(
            steps in proptest::collection::vec((0u64..40_000, any::<bool>()), 1..200),
        ) {
            let mut l = lockout();
            let mut now = 0;
            let mut recent: Vec<u64> = Vec::new();
            let mut locked_until: Option<u64> = None;
            for (gap, success) in steps {
                now += gap;
                let t = at(now);
                if let Some(left) = l.locked_for("u", t) {
                    prop_assert!(left <= Duration::from_secs(300));
                    prop_assert_eq!(locked_until.map(|u| u - now), Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX)));
                } else if let Some(u) = locked_until {
                    prop_assert!(u <= now);
                    locked_until = None;
                    recent.clear();
                }
                if locked_until.is_some() {
                    prop_assert_eq!(l.record_failure("u", t), None);
                    continue;
                }
                if success {
                    l.record_success("u");
                    recent.clear();
                    continue;
                }
                recent.push(now);
                let began = l.record_failure("u", t);
                if let Some(b) = &began {
                    // At least max_failures failures within the last window.
                    let within = recent.iter().filter(|r| now - **r < 60_000).count();
                    prop_assert!(within >= 3, "locked after {} recent failures", within);
                    prop_assert_eq!(b.until, at(now + 300_000));
                    locked_until = Some(now + 300_000);
                }
            }
        }
    }

    /// Seeded: a botnet of 50 addresses, each guessing once a second in
    /// turn, locks the user within the first few guesses, again right
    /// after each lockout, and the user is never locked for longer than
    /// the lockout after the botnet stops.
    #[test]
    fn botnet_is_held_to_a_few_guesses_per_lockout() {
        let mut l = UserLockout::new(20, Duration::from_secs(60), Duration::from_secs(300));
        let mut guesses_checked = 0;
        let mut lockouts = 0;
        let mut rng: u64 = 0x5eed;
        let mut now = 0u64;
        for _ in 0..3600 {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
            now += 1_000 + (rng >> 54); // 1 to ~2 s apart
            if l.locked_for("1001", at(now)).is_some() {
                continue;
            }
            guesses_checked += 1;
            if l.record_failure("1001", at(now)).is_some() {
                lockouts += 1;
            }
        }
        // ~1.5 hours: each lockout lets 20 guesses through, then 300 s.
        assert!(lockouts >= 10, "{lockouts} lockouts");
        assert!(
            guesses_checked <= 20 * (lockouts + 1),
            "{guesses_checked} guesses checked"
        );
        assert!(l.locked_for("1001", at(now + 300_000)).is_none());
    }
}
