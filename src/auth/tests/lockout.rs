//! The login lockout: failures per username in a window, unlock, reset on success, unknown names, the policy.

use super::*;

crate::store::pg::test_db::both_backends!(
    embedded: super::super::EmbeddedDb,
    postgres: super::super::PostgresDb,
    tests: [
        five_failures_lock_for_five_minutes_then_unlock,
        failures_spread_beyond_the_window_do_not_lock,
        a_successful_login_resets_the_failure_count,
        unknown_usernames_lock_too_so_lockout_reveals_nothing,
        lockout_policy_is_configurable,
    ]
);

// ----- lockout ---------------------------------------------------------

fn five_failures_lock_for_five_minutes_then_unlock(db: &dyn Backing) {
    let s = seeded(db, &[agent("a1", "a", "1001")]);
    for i in 0..4 {
        let e = s.login("a1", "nope-nope", T0 + i * 1000, HOUR).unwrap_err();
        assert!(matches!(e, AuthError::Unauthorized), "failure {i}: {e:?}");
    }
    let fifth = s.login("a1", "nope-nope", T0 + 4000, HOUR).unwrap_err();
    assert!(matches!(
        fifth,
        AuthError::Locked {
            retry_after_ms: 300_000
        }
    ));
    assert_eq!((fifth.status(), fifth.code()), (429, "locked"));
    assert_eq!(fifth.retry_after_secs(), Some(300));
    // The right password does not help while locked.
    let locked = s
        .login("a1", "agent-pass-1", T0 + 4000 + MIN, HOUR)
        .unwrap_err();
    assert!(matches!(
        locked,
        AuthError::Locked {
            retry_after_ms: 240_000
        }
    ));
    let last = s.login("a1", "agent-pass-1", T0 + 4000 + 5 * MIN - 1, HOUR);
    assert!(matches!(last, Err(AuthError::Locked { retry_after_ms: 1 })));
    // At the end of the lock it works, and the counter is reset.
    s.login("a1", "agent-pass-1", T0 + 4000 + 5 * MIN, HOUR)
        .unwrap();
    for i in 0..4 {
        let e = s
            .login("a1", "nope-nope", T0 + 6 * MIN + i, HOUR)
            .unwrap_err();
        assert!(matches!(e, AuthError::Unauthorized));
    }
}

fn failures_spread_beyond_the_window_do_not_lock(db: &dyn Backing) {
    let s = seeded(db, &[agent("a1", "a", "1001")]);
    // Four failures, then the window (from the first) ends: count restarts.
    for i in 0..4 {
        assert!(matches!(
            s.login("a1", "nope-nope", T0 + i * MIN, HOUR),
            Err(AuthError::Unauthorized)
        ));
    }
    for i in 0..4 {
        assert!(matches!(
            s.login("a1", "nope-nope", T0 + 5 * MIN + i * MIN, HOUR),
            Err(AuthError::Unauthorized)
        ));
    }
    s.login("a1", "agent-pass-1", T0 + 9 * MIN, HOUR).unwrap();
}

fn a_successful_login_resets_the_failure_count(db: &dyn Backing) {
    let s = seeded(db, &[agent("a1", "a", "1001")]);
    for _ in 0..4 {
        assert!(s.login("a1", "nope-nope", T0, HOUR).is_err());
    }
    s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    for _ in 0..4 {
        assert!(matches!(
            s.login("a1", "nope-nope", T0, HOUR),
            Err(AuthError::Unauthorized)
        ));
    }
}

fn unknown_usernames_lock_too_so_lockout_reveals_nothing(db: &dyn Backing) {
    let s = seeded(db, &[agent("a1", "a", "1001")]);
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..6 {
        known.push(s.login("a1", "nope-nope", T0 + i, HOUR).unwrap_err().code());
        unknown.push(
            s.login("ghost", "nope-nope", T0 + i, HOUR)
                .unwrap_err()
                .code(),
        );
    }
    assert_eq!(known, unknown);
    assert_eq!(known[3], "unauthorized");
    assert_eq!(known[4], "locked");
    // Purge keeps live counters, drops finished ones.
    assert_eq!(s.purge_expired(T0 + MIN).unwrap().login_attempts, 0);
    assert_eq!(s.purge_expired(T0 + 6 * MIN).unwrap().login_attempts, 2);
}

fn lockout_policy_is_configurable(db: &dyn Backing) {
    let s = db.open().with_lockout(LockoutPolicy {
        max_failures: 2,
        window_ms: MIN,
        lock_ms: 10_000,
    });
    s.upsert_user(&agent("a1", "a", "1001"), T0).unwrap();
    assert!(matches!(
        s.login("a1", "x", T0, HOUR),
        Err(AuthError::Unauthorized)
    ));
    assert!(matches!(
        s.login("a1", "x", T0, HOUR),
        Err(AuthError::Locked {
            retry_after_ms: 10_000
        })
    ));
    s.login("a1", "agent-pass-1", T0 + 10_000, HOUR).unwrap();
}
