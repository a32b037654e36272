//! Two nodes on one database (issue 15): tokens, users, lockouts and the audit log shared; failures on two nodes at once all count.

use super::*;

crate::store::pg::test_db::both_backends!(
    embedded: super::super::EmbeddedDb,
    postgres: super::super::PostgresDb,
    tests: [
        a_token_issued_by_one_node_is_accepted_by_another,
        two_nodes_share_users_lockouts_and_the_audit_log,
        failures_on_two_nodes_at_once_all_count,
    ]
);

// ----- two nodes on one database ----------------------------------------

/// A token issued through one handle authenticates through another (two
/// nodes behind one load balancer), and a logout on either ends it on both.
fn a_token_issued_by_one_node_is_accepted_by_another(db: &dyn Backing) {
    let (one, two) = (db.open(), db.open());
    one.upsert_user(&agent("a1", "a", "1001"), T0).unwrap();
    let login = one.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    let p = two.authenticate(login.token.as_str(), T0 + 1).unwrap();
    assert_eq!(p, login.principal);
    // last_seen is refreshed by whichever node sees the request.
    two.authenticate(login.token.as_str(), T0 + 2 * MIN)
        .unwrap();
    one.authenticate(login.token.as_str(), T0 + MIN).unwrap();
    assert!(matches!(
        one.authenticate(login.token.as_str(), T0 + HOUR),
        Err(AuthError::Expired)
    ));
    assert!(two.logout(login.token.as_str()).unwrap());
    assert!(matches!(
        one.authenticate(login.token.as_str(), T0 + 3),
        Err(AuthError::Unauthorized)
    ));
    // A password change on one node ends the sessions issued by the other.
    let login = two.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    let mut u = agent("a1", "a", "1001");
    u.credential = Credential::Password("new-pass-2".into());
    assert_eq!(one.upsert_user(&u, T0).unwrap(), Upserted::Updated);
    assert!(two.authenticate(login.token.as_str(), T0).is_err());
    two.login("a1", "new-pass-2", T0, HOUR).unwrap();
}

/// Users, the lockout and the audit log are one for every node.
fn two_nodes_share_users_lockouts_and_the_audit_log(db: &dyn Backing) {
    let (one, two) = (db.open(), db.open());
    one.upsert_user(&agent("a1", "a", "1001"), T0).unwrap();
    assert_eq!(two.user("a1").unwrap().unwrap().created_ms, T0);
    // The same agent id cannot be given to a second user through the other.
    let e = two.upsert_user(&agent("b1", "a", "1001"), T0).unwrap_err();
    assert_eq!(e.code(), "conflict");
    // Failures on both nodes count together.
    for i in 0..4 {
        let node = if i % 2 == 0 { &one } else { &two };
        assert!(matches!(
            node.login("a1", "nope-nope", T0 + i, HOUR),
            Err(AuthError::Unauthorized)
        ));
    }
    assert!(matches!(
        one.login("a1", "nope-nope", T0 + 5, HOUR),
        Err(AuthError::Locked { .. })
    ));
    assert!(matches!(
        two.login("a1", "agent-pass-1", T0 + 6, HOUR),
        Err(AuthError::Locked { .. })
    ));
    // One audit log, in append order.
    let who = principal("sup.a", Role::Supervisor, "a");
    let first = one.audit(T0, &who, "call.barge", "c1", &json!({})).unwrap();
    let second = two
        .audit(T0, &who, "call.listen", "c2", &json!({}))
        .unwrap();
    assert!(first < second);
    let log = one.audit_log(Some("a"), 10, None).unwrap();
    let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["call.listen", "call.barge"]);
    // Deleting the user on one node ends its sessions everywhere.
    let login = one.login("a1", "agent-pass-1", T0 + 6 * MIN, HOUR).unwrap();
    two.delete_user("a1").unwrap();
    assert!(one
        .authenticate(login.token.as_str(), T0 + 6 * MIN)
        .is_err());
}

/// Failed logins racing on two nodes are each counted (no lost update).
fn failures_on_two_nodes_at_once_all_count(db: &dyn Backing) {
    const EACH: i64 = 10;
    let policy = LockoutPolicy {
        max_failures: 1000,
        window_ms: HOUR,
        lock_ms: HOUR,
    };
    let nodes: Vec<std::sync::Arc<AuthStore>> = (0..2)
        .map(|_| std::sync::Arc::new(db.open().with_lockout(policy)))
        .collect();
    let threads: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = std::sync::Arc::clone(node);
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let e = node.login("ghost", "nope-nope", T0 + i, HOUR).unwrap_err();
                    assert!(matches!(e, AuthError::Unauthorized), "{e:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let failures = db.strings(&format!(
        "SELECT CAST(failures AS TEXT) FROM {} WHERE username = 'ghost'",
        db.table("login_attempt")
    ));
    assert_eq!(failures, [(2 * EACH).to_string()]);
}

/// A column of an unexpected type (a hand-altered table) is an internal
/// error, and the connection's thread lives on for the next request.
#[test]
fn postgres_a_retyped_column_is_an_error_not_a_dead_connection() {
    let Some(url) = test_pg::database("retyped_column") else {
        return;
    };
    let db = PostgresDb(url);
    let s = seeded(&db, &[agent("a1", "a", "1001")]);
    db.exec("ALTER TABLE auth_user ALTER COLUMN created_ms TYPE TEXT")
        .unwrap();
    let e = s.list_users(None).unwrap_err();
    assert_eq!(e.code(), "internal");
    assert!(e.to_string().contains(&db.name()), "{e}");
    db.exec("ALTER TABLE auth_user ALTER COLUMN created_ms TYPE BIGINT USING created_ms::BIGINT")
        .unwrap();
    assert_eq!(s.list_users(None).unwrap().len(), 1);
}
