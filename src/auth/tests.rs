//! Store-level tests: users, login, sessions, lockout, audit, persistence.

use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::store::{normalize_username, MAX_AUDIT_PAGE};
use super::*;

const T0: i64 = 1_750_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn mem() -> AuthStore {
    AuthStore::open_in_memory().unwrap()
}

fn new_user(
    username: &str,
    role: Role,
    tenant: &str,
    agent_id: Option<&str>,
    password: &str,
) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: format!("{username} ({tenant})"),
        role,
        tenant: tenant.into(),
        agent_id: agent_id.map(Into::into),
        credential: Credential::Password(password.into()),
        disabled: false,
        allow_weak: false,
    }
}

fn agent(username: &str, tenant: &str, agent_id: &str) -> NewUser {
    new_user(
        username,
        Role::Agent,
        tenant,
        Some(agent_id),
        "agent-pass-1",
    )
}

fn seeded(users: &[NewUser]) -> AuthStore {
    let s = mem();
    for u in users {
        s.upsert_user(u, T0).unwrap();
    }
    s
}

// ----- login -----------------------------------------------------------

#[test]
fn login_succeeds_and_the_token_authenticates() {
    let s = seeded(&[agent("li.lei", "a", "1001")]);
    let login = s.login("li.lei", "agent-pass-1", T0, 8 * HOUR).unwrap();
    assert_eq!(login.expires_ms, T0 + 8 * HOUR);
    let token = login.token.as_str();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let expected = Principal {
        user: "li.lei".into(),
        role: Role::Agent,
        tenant: "a".into(),
        agent_id: Some("1001".into()),
    };
    assert_eq!(login.principal, expected);
    assert_eq!(s.authenticate(token, T0 + 1).unwrap(), expected);
    // Two logins, two independent sessions.
    let again = s.login("li.lei", "agent-pass-1", T0, HOUR).unwrap();
    assert_ne!(again.token, login.token);
}

#[test]
fn unknown_user_wrong_password_disabled_user_and_bad_username_look_the_same() {
    let mut off = agent("off", "a", "1002");
    off.disabled = true;
    let s = seeded(&[agent("on", "a", "1001"), off]);
    let refusals = [
        s.login("on", "wrong-password", T0, HOUR).unwrap_err(),
        s.login("nobody", "agent-pass-1", T0, HOUR).unwrap_err(),
        s.login("off", "agent-pass-1", T0, HOUR).unwrap_err(),
        s.login("bad name!", "agent-pass-1", T0, HOUR).unwrap_err(),
        s.login("", "", T0, HOUR).unwrap_err(),
    ];
    for e in &refusals {
        assert!(matches!(e, AuthError::Unauthorized), "{e:?}");
        assert_eq!((e.status(), e.code()), (401, "unauthorized"));
        assert_eq!(e.public_message(), refusals[0].public_message());
    }
    assert!(s.login("on", "agent-pass-1", T0, HOUR).is_ok());
}

#[test]
fn login_refuses_a_nonpositive_ttl() {
    let s = seeded(&[agent("on", "a", "1001")]);
    for ttl in [0, -1] {
        let e = s.login("on", "agent-pass-1", T0, ttl).unwrap_err();
        assert_eq!(e.code(), "bad_request");
    }
}

#[test]
fn usernames_are_case_insensitive() {
    let s = seeded(&[agent("Zhang.San", "a", "1001")]);
    let login = s.login("ZHANG.SAN", "agent-pass-1", T0, HOUR).unwrap();
    assert_eq!(login.principal.user, "zhang.san");
    assert_eq!(s.list_users(None).unwrap()[0].username, "zhang.san");
    // The same user, not a look-alike second account.
    let mut other = agent("zhang.san", "a", "1001");
    other.display_name = "Zhang San".into();
    assert_eq!(s.upsert_user(&other, T0).unwrap(), Upserted::Updated);
    assert_eq!(s.list_users(None).unwrap().len(), 1);
}

// ----- sessions --------------------------------------------------------

#[test]
fn token_expires_at_exactly_expires_ms() {
    let s = seeded(&[agent("a1", "a", "1001")]);
    let login = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    let token = login.token.as_str();
    assert!(s.authenticate(token, T0).is_ok());
    assert!(s.authenticate(token, login.expires_ms - 1).is_ok());
    let e = s.authenticate(token, login.expires_ms).unwrap_err();
    assert!(matches!(e, AuthError::Expired));
    assert_eq!((e.status(), e.code()), (401, "token_expired"));
    assert!(matches!(
        s.authenticate(token, login.expires_ms + HOUR),
        Err(AuthError::Expired)
    ));
    // Absolute expiry: using the token does not extend it.
    let other = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    for t in (T0..T0 + HOUR).step_by(10 * MIN as usize) {
        s.authenticate(other.token.as_str(), t).unwrap();
    }
    assert!(matches!(
        s.authenticate(other.token.as_str(), T0 + HOUR),
        Err(AuthError::Expired)
    ));
}

#[test]
fn purge_removes_expired_sessions_only() {
    let s = seeded(&[agent("a1", "a", "1001")]);
    let short = s.login("a1", "agent-pass-1", T0, MIN).unwrap();
    let long = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    let purged = s.purge_expired(T0 + MIN).unwrap();
    assert_eq!(purged.sessions, 1);
    assert!(matches!(
        s.authenticate(short.token.as_str(), T0 + MIN),
        Err(AuthError::Unauthorized)
    ));
    assert!(s.authenticate(long.token.as_str(), T0 + MIN).is_ok());
    assert_eq!(s.purge_expired(T0 + MIN).unwrap(), Purged::default());
}

#[test]
fn logout_invalidates_only_that_token() {
    let s = seeded(&[agent("a1", "a", "1001")]);
    let one = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    let two = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    assert!(s.logout(one.token.as_str()).unwrap());
    assert!(matches!(
        s.authenticate(one.token.as_str(), T0 + 1),
        Err(AuthError::Unauthorized)
    ));
    assert!(s.authenticate(two.token.as_str(), T0 + 1).is_ok());
    assert!(!s.logout(one.token.as_str()).unwrap(), "second logout");
    assert!(!s.logout("garbage").unwrap());
    assert_eq!(s.revoke_sessions("a1").unwrap(), 1);
    assert!(s.authenticate(two.token.as_str(), T0 + 1).is_err());
}

#[test]
fn malformed_tokens_are_unauthorized() {
    let s = seeded(&[agent("a1", "a", "1001")]);
    let login = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    let upper = login.token.as_str().to_ascii_uppercase();
    let short = &login.token.as_str()[1..];
    let long = format!("{}0", login.token.as_str());
    let quote = format!("{}'", &login.token.as_str()[1..]);
    for bad in [
        "",
        "x",
        upper.as_str(),
        short,
        long.as_str(),
        quote.as_str(),
    ] {
        assert!(
            matches!(s.authenticate(bad, T0), Err(AuthError::Unauthorized)),
            "{bad:?}"
        );
    }
    // A well-formed but unknown token.
    let unknown = "0".repeat(64);
    assert!(matches!(
        s.authenticate(&unknown, T0),
        Err(AuthError::Unauthorized)
    ));
}

#[test]
fn tokens_are_stored_only_as_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let s = AuthStore::open(&path).unwrap();
    s.upsert_user(&agent("a1", "a", "1001"), T0).unwrap();
    let login = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    let token = login.token.as_str().to_owned();

    let raw = Connection::open(&path).unwrap();
    let rows: Vec<(String, String)> = raw
        .prepare("SELECT token_hash, username FROM session")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, hex::encode(Sha256::digest(token.as_bytes())));
    assert_ne!(rows[0].0, token);
    // The token appears nowhere in the database, in any table or column.
    let dump: String = raw
        .prepare(
            "SELECT group_concat(token_hash || username || created_ms || expires_ms) FROM session
             UNION ALL SELECT group_concat(username || password_hash) FROM user",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .map(|r| r.unwrap().unwrap_or_default())
        .collect();
    assert!(!dump.contains(&token));
    assert!(!dump.contains("agent-pass-1"), "password stored in clear");
    drop(raw);
    let file = std::fs::read(&path).unwrap();
    let wal = std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
    for bytes in [&file, &wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
    // And the Debug form does not print it either.
    assert!(!format!("{login:?}").contains(&token));
}

// ----- lockout ---------------------------------------------------------

#[test]
fn five_failures_lock_for_five_minutes_then_unlock() {
    let s = seeded(&[agent("a1", "a", "1001")]);
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

#[test]
fn failures_spread_beyond_the_window_do_not_lock() {
    let s = seeded(&[agent("a1", "a", "1001")]);
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

#[test]
fn a_successful_login_resets_the_failure_count() {
    let s = seeded(&[agent("a1", "a", "1001")]);
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

#[test]
fn unknown_usernames_lock_too_so_lockout_reveals_nothing() {
    let s = seeded(&[agent("a1", "a", "1001")]);
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

#[test]
fn lockout_policy_is_configurable() {
    let s = mem().with_lockout(LockoutPolicy {
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

// ----- users -----------------------------------------------------------

#[test]
fn reseeding_the_same_password_changes_nothing_and_keeps_sessions() {
    let s = mem();
    let u = agent("a1", "a", "1001");
    assert_eq!(s.upsert_user(&u, T0).unwrap(), Upserted::Created);
    let login = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    assert_eq!(s.upsert_user(&u, T0 + 1).unwrap(), Upserted::Unchanged);
    assert!(s.authenticate(login.token.as_str(), T0 + 2).is_ok());
    assert_eq!(s.user("a1").unwrap().unwrap().created_ms, T0);
}

#[test]
fn password_tenant_or_disable_changes_end_sessions_role_changes_apply_at_once() {
    let s = seeded(&[agent("a1", "a", "1001")]);
    let tok = |s: &AuthStore| s.login("a1", "agent-pass-1", T0, HOUR).unwrap().token;

    // Role change: same session, new role at the next request.
    let t = tok(&s);
    let mut sup = new_user("a1", Role::Supervisor, "a", Some("1001"), "agent-pass-1");
    assert_eq!(s.upsert_user(&sup, T0).unwrap(), Upserted::Updated);
    assert_eq!(
        s.authenticate(t.as_str(), T0).unwrap().role,
        Role::Supervisor
    );

    // Password change: sessions end, old password no longer works.
    sup.credential = Credential::Password("new-pass-2".into());
    assert_eq!(s.upsert_user(&sup, T0).unwrap(), Upserted::Updated);
    assert!(matches!(
        s.authenticate(t.as_str(), T0),
        Err(AuthError::Unauthorized)
    ));
    assert!(s.login("a1", "agent-pass-1", T0, HOUR).is_err());
    let t = s.login("a1", "new-pass-2", T0, HOUR).unwrap().token;

    // Tenant move: sessions end.
    sup.tenant = "b".into();
    s.upsert_user(&sup, T0).unwrap();
    assert!(s.authenticate(t.as_str(), T0).is_err());
    let t = s.login("a1", "new-pass-2", T0, HOUR).unwrap().token;
    assert_eq!(s.authenticate(t.as_str(), T0).unwrap().tenant, "b");

    // Disabled: sessions end, login refused.
    sup.disabled = true;
    s.upsert_user(&sup, T0).unwrap();
    assert!(s.authenticate(t.as_str(), T0).is_err());
    assert!(matches!(
        s.login("a1", "new-pass-2", T0, HOUR),
        Err(AuthError::Unauthorized)
    ));
}

#[test]
fn delete_user_ends_sessions() {
    let s = seeded(&[agent("a1", "a", "1001")]);
    let login = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    s.delete_user("A1").unwrap();
    assert!(matches!(
        s.authenticate(login.token.as_str(), T0),
        Err(AuthError::Unauthorized)
    ));
    assert!(s.user("a1").unwrap().is_none());
    let e = s.delete_user("a1").unwrap_err();
    assert_eq!((e.status(), e.code()), (404, "not_found"));
}

#[test]
fn new_users_are_validated() {
    let s = mem();
    let bad = |u: NewUser| s.upsert_user(&u, T0).unwrap_err().code();

    let mut weak = agent("a1", "a", "1001");
    weak.credential = Credential::Password("short".into());
    assert_eq!(bad(weak.clone()), "bad_request");
    weak.allow_weak = true;
    assert_eq!(s.upsert_user(&weak, T0).unwrap(), Upserted::Created);
    s.login("a1", "short", T0, HOUR).unwrap();

    let mut empty = agent("a2", "a", "1002");
    empty.credential = Credential::Password(String::new());
    empty.allow_weak = true;
    assert_eq!(bad(empty), "bad_request");

    assert_eq!(
        bad(new_user("a3", Role::Agent, "a", None, "agent-pass-1")),
        "bad_request",
        "agent without agent id"
    );
    for role in [Role::Agent, Role::Supervisor] {
        assert_eq!(
            bad(new_user("x", role, ALL_TENANTS, Some("9"), "agent-pass-1")),
            "bad_request",
            "{role} in *"
        );
    }
    assert_eq!(bad(agent("a4", "bad tenant", "1004")), "bad_request");
    assert_eq!(bad(agent("a4", "a", "10 04")), "bad_request");
    let mut ctl = agent("a4", "a", "1004");
    ctl.display_name = "bell\u{7}".into();
    assert_eq!(bad(ctl), "bad_request");
    let mut long = agent("a4", "a", "1004");
    long.display_name = "名".repeat(129);
    assert_eq!(bad(long), "bad_request");

    // One user per agent of a tenant; the same agent id in another tenant
    // is another agent.
    let e = s.upsert_user(&agent("dup", "a", "1001"), T0).unwrap_err();
    assert_eq!((e.status(), e.code()), (409, "conflict"));
    s.upsert_user(&agent("dup", "b", "1001"), T0).unwrap();

    // A global admin is fine.
    s.upsert_user(
        &new_user("root", Role::Admin, ALL_TENANTS, None, "admin-pass-1"),
        T0,
    )
    .unwrap();
    assert_eq!(s.list_users(None).unwrap().len(), 3);
}

#[test]
fn ready_phc_hashes_are_accepted_and_upgraded_at_login() {
    let s = mem();
    // Made by the reference `argon2` tool with other parameters.
    let phc =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let mut u = new_user("sup", Role::Supervisor, "a", None, "");
    u.credential = Credential::PasswordHash(phc.into());
    assert_eq!(s.upsert_user(&u, T0).unwrap(), Upserted::Created);
    assert_eq!(s.upsert_user(&u, T0).unwrap(), Upserted::Unchanged);
    assert!(s.login("sup", "Password", T0, HOUR).is_err());
    s.login("sup", "password", T0, HOUR).unwrap();

    let stored: String = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let f = AuthStore::open(&path).unwrap();
        f.upsert_user(&u, T0).unwrap();
        f.login("sup", "password", T0, HOUR).unwrap();
        drop(f);
        Connection::open(&path)
            .unwrap()
            .query_row("SELECT password_hash FROM user", [], |r| r.get(0))
            .unwrap()
    };
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(password::verify_password("password", &stored));

    u.credential = Credential::PasswordHash("$2b$12$notargon".into());
    assert_eq!(s.upsert_user(&u, T0).unwrap_err().code(), "bad_request");
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let u = agent("a1", "a", "1001");
    let text = format!("{u:?}");
    assert!(!text.contains("agent-pass-1"), "{text}");
    let h = Credential::PasswordHash("$argon2id$v=19$secret".into());
    assert!(!format!("{h:?}").contains("secret"));
}

// ----- tenant isolation end to end --------------------------------------

/// Every role of centre A and of centre B, logged in for real, against the
/// agents of both centres and the user listings.
#[test]
fn cross_tenant_isolation_for_every_role_combination() {
    let mut users = Vec::new();
    for t in ["a", "b"] {
        users.push(agent(&format!("agent1.{t}"), t, "1001"));
        users.push(agent(&format!("agent2.{t}"), t, "1002"));
        users.push(new_user(
            &format!("sup.{t}"),
            Role::Supervisor,
            t,
            None,
            "agent-pass-1",
        ));
        users.push(new_user(
            &format!("admin.{t}"),
            Role::Admin,
            t,
            None,
            "agent-pass-1",
        ));
    }
    let s = seeded(&users);
    let principals: Vec<Principal> = users
        .iter()
        .map(|u| {
            let login = s.login(&u.username, "agent-pass-1", T0, HOUR).unwrap();
            s.authenticate(login.token.as_str(), T0).unwrap()
        })
        .collect();
    let agents: Vec<&Principal> = principals
        .iter()
        .filter(|p| p.role == Role::Agent)
        .collect();
    assert_eq!(agents.len(), 4);

    for actor in &principals {
        for target in &agents {
            let id = target.agent_id.as_deref().unwrap();
            let same_tenant = actor.tenant == target.tenant;
            let expected = same_tenant && (actor.role >= Role::Supervisor || actor == *target);
            assert_eq!(
                actor.may_act_on_agent(id, &target.tenant),
                expected,
                "{} -> agent {id} of {}",
                actor.user,
                target.tenant
            );
        }
        for t in ["a", "b"] {
            assert_eq!(actor.may_access_tenant(t), actor.tenant == t);
        }
        // Listings through the principal's filter never show the other centre.
        let listed = s.list_users(actor.tenant_filter()).unwrap();
        assert_eq!(listed.len(), 4);
        assert!(listed.iter().all(|u| u.tenant == actor.tenant));
    }
}

// ----- audit -----------------------------------------------------------

fn principal(user: &str, role: Role, tenant: &str) -> Principal {
    Principal {
        user: user.into(),
        role,
        tenant: tenant.into(),
        agent_id: None,
    }
}

#[test]
fn audit_appends_and_lists_by_tenant_newest_first_with_paging() {
    let s = mem();
    let sup_a = principal("sup.a", Role::Supervisor, "a");
    let adm_b = principal("admin.b", Role::Admin, "b");
    let root = principal("root", Role::Admin, ALL_TENANTS);

    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            s.audit(
                T0 + i,
                &sup_a,
                "call.barge",
                &format!("call-{i}"),
                &json!({"agent": "1001", "i": i}),
            )
            .unwrap(),
        );
    }
    s.audit(T0 + 10, &adm_b, "user.create", "agent1.b", &json!({}))
        .unwrap();
    s.audit(T0 + 11, &root, "tenant.create", "c", &json!(null))
        .unwrap();
    s.audit_in(
        T0 + 12,
        &root,
        "a",
        "user.disable",
        "agent2.a",
        &json!({"why": "left"}),
    )
    .unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let a = s.audit_log(sup_a.tenant_filter(), 100, None).unwrap();
    assert_eq!(a.len(), 6);
    assert!(a.iter().all(|r| r.tenant == "a"));
    assert_eq!(a[0].actor, "root");
    assert_eq!(a[0].action, "user.disable");
    assert_eq!(a[1].target, "call-4");
    assert_eq!(a[1].at_ms, T0 + 4);
    assert_eq!(a[1].detail, json!({"agent": "1001", "i": 4}));
    assert!(a.windows(2).all(|w| w[0].id > w[1].id));

    let b = s.audit_log(adm_b.tenant_filter(), 100, None).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].actor, "admin.b");
    let all = s.audit_log(root.tenant_filter(), 100, None).unwrap();
    assert_eq!(all.len(), 8);
    assert_eq!(all[1].tenant, ALL_TENANTS);

    // Paging.
    let page1 = s.audit_log(Some("a"), 2, None).unwrap();
    let page2 = s.audit_log(Some("a"), 2, Some(page1[1].id)).unwrap();
    let page3 = s.audit_log(Some("a"), 2, Some(page2[1].id)).unwrap();
    let page4 = s.audit_log(Some("a"), 2, Some(page3[1].id)).unwrap();
    let paged: Vec<i64> = [page1, page2, page3, page4]
        .concat()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(paged, a.iter().map(|r| r.id).collect::<Vec<_>>());
    assert!(s.audit_log(Some("a"), 0, None).unwrap().is_empty());
    assert_eq!(MAX_AUDIT_PAGE, 1000);

    // A tenant admin cannot file rows under another tenant.
    let e = s
        .audit_in(T0, &adm_b, "a", "user.create", "x", &json!({}))
        .unwrap_err();
    assert_eq!(e.code(), "forbidden");
    assert_eq!(
        s.audit(T0, &adm_b, "", "x", &json!({})).unwrap_err().code(),
        "bad_request"
    );
}

#[test]
fn audit_rows_cannot_be_changed_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let s = AuthStore::open(&path).unwrap();
    let who = principal("sup.a", Role::Supervisor, "a");
    s.audit(T0, &who, "call.barge", "c1", &json!({})).unwrap();
    let raw = Connection::open(&path).unwrap();
    assert!(raw
        .execute("UPDATE audit SET actor = 'someone'", [])
        .is_err());
    assert!(raw.execute("DELETE FROM audit", []).is_err());
    assert_eq!(s.audit_log(None, 10, None).unwrap()[0].actor, "sup.a");
}

// ----- persistence and schema ------------------------------------------

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let token = {
        let s = AuthStore::open(&path).unwrap();
        s.upsert_user(&agent("a1", "a", "1001"), T0).unwrap();
        s.audit(
            T0,
            &principal("root", Role::Admin, "*"),
            "user.create",
            "a1",
            &json!({"k": 1}),
        )
        .unwrap();
        for _ in 0..5 {
            let _ = s.login("ghost", "nope-nope", T0, HOUR);
        }
        s.login("a1", "agent-pass-1", T0, HOUR).unwrap().token
    };
    let s = AuthStore::open(&path).unwrap();
    assert_eq!(s.path(), path.as_path());
    assert_eq!(s.authenticate(token.as_str(), T0 + 1).unwrap().user, "a1");
    assert_eq!(s.list_users(Some("a")).unwrap().len(), 1);
    assert_eq!(
        s.audit_log(None, 10, None).unwrap()[0].detail,
        json!({"k": 1})
    );
    assert!(matches!(
        s.login("ghost", "x", T0 + 1, HOUR),
        Err(AuthError::Locked { .. })
    ));
    assert!(s.logout(token.as_str()).unwrap());
    drop(s);
    let s = AuthStore::open(&path).unwrap();
    assert!(s.authenticate(token.as_str(), T0 + 2).is_err());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    drop(AuthStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let e = AuthStore::open(&path).unwrap_err();
    assert!(matches!(e, AuthError::SchemaTooNew { found: 99, .. }));
    assert!(e.to_string().contains("auth.db"), "{e}");
}

#[test]
fn a_hand_edited_row_is_an_internal_error_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let s = AuthStore::open(&path).unwrap();
    s.upsert_user(&agent("a1", "a", "1001"), T0).unwrap();
    let token = s.login("a1", "agent-pass-1", T0, HOUR).unwrap().token;
    let raw = Connection::open(&path).unwrap();
    raw.execute("UPDATE user SET role = 'root'", []).unwrap();
    let e = s.authenticate(token.as_str(), T0).unwrap_err();
    assert_eq!((e.status(), e.code()), (500, "internal"));
    let text = e.to_string();
    assert!(
        text.contains("auth.db") && text.contains("a1") && text.contains("user"),
        "{text}"
    );
    // An agent smuggled into "*" is refused too, not treated as global.
    raw.execute("UPDATE user SET role = 'agent', tenant = '*'", [])
        .unwrap();
    assert_eq!(
        s.authenticate(token.as_str(), T0).unwrap_err().code(),
        "internal"
    );
    assert_eq!(s.list_users(None).unwrap_err().code(), "internal");
}

// ----- injection -------------------------------------------------------

#[test]
fn sql_injection_in_names_is_rejected_or_harmless() {
    let s = seeded(&[
        agent("a1", "a", "1001"),
        new_user("admin", Role::Admin, "a", None, "admin-pass-1"),
    ]);
    let attacks = [
        "admin' --",
        "admin'/*",
        "' OR '1'='1",
        "x'; DROP TABLE user; --",
        "admin\" OR \"\"=\"",
        "admin\0",
        "admin%",
    ];
    for attack in attacks {
        assert!(
            matches!(
                s.login(attack, "admin-pass-1", T0, HOUR),
                Err(AuthError::Unauthorized)
            ),
            "{attack:?}"
        );
        let mut u = agent(attack, "a", "1009");
        let created = s.upsert_user(&u, T0);
        assert_eq!(created.unwrap_err().code(), "bad_request", "{attack:?}");
        assert_eq!(s.delete_user(attack).unwrap_err().code(), "bad_request");
        assert_eq!(s.revoke_sessions(attack).unwrap_err().code(), "bad_request");
        u.username = "z9".into();
        u.tenant = attack.into();
        assert_eq!(s.upsert_user(&u, T0).unwrap_err().code(), "bad_request");
        assert!(s.list_users(Some(attack)).unwrap().is_empty());
        assert!(s.audit_log(Some(attack), 10, None).unwrap().is_empty());
    }
    // `_` is a valid character, not a LIKE wildcard: `adm_n` is not `admin`.
    assert!(matches!(
        s.login("adm_n", "admin-pass-1", T0, HOUR),
        Err(AuthError::Unauthorized)
    ));
    assert!(s.user("adm_n").unwrap().is_none());
    // Stored verbatim where free text is allowed, and nothing was dropped.
    let who = principal("admin", Role::Admin, "a");
    s.audit(
        T0,
        &who,
        "note",
        "x'; DROP TABLE user; --",
        &json!({"q": "' OR 1=1"}),
    )
    .unwrap();
    assert_eq!(
        s.audit_log(Some("a"), 1, None).unwrap()[0].target,
        "x'; DROP TABLE user; --"
    );
    assert_eq!(s.list_users(None).unwrap().len(), 2);
    s.login("admin", "admin-pass-1", T0, HOUR).unwrap();
}

// ----- username validation ---------------------------------------------

proptest! {
    #[test]
    fn valid_usernames_are_accepted_in_lower_case(name in "[A-Za-z0-9._@-]{1,64}") {
        let stored = normalize_username(&name).unwrap();
        prop_assert_eq!(stored, name.to_ascii_lowercase());
    }

    #[test]
    fn names_with_any_other_character_are_refused(
        head in "[A-Za-z0-9._@-]{0,30}",
        bad in "[^A-Za-z0-9._@-]",
        tail in "[A-Za-z0-9._@-]{0,30}",
    ) {
        let name = format!("{head}{bad}{tail}");
        prop_assert!(normalize_username(&name).is_err());
    }

    #[test]
    fn overlong_usernames_are_refused(name in "[a-z]{65,100}") {
        prop_assert!(normalize_username(&name).is_err());
    }
}

#[test]
fn username_edges() {
    assert!(normalize_username("").is_err());
    assert!(normalize_username(&"a".repeat(64)).is_ok());
    assert!(normalize_username(&"a".repeat(65)).is_err());
    // Non-ASCII letters and look-alikes are not in the charset.
    for bad in [
        "zhāng",
        "张三",
        "admin\u{200b}",
        "аdmin",
        " admin",
        "admin ",
    ] {
        assert!(normalize_username(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_store_is_shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<AuthStore>();
    let s = std::sync::Arc::new(seeded(&[agent("a1", "a", "1001")]));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let s = std::sync::Arc::clone(&s);
            std::thread::spawn(move || s.login("a1", "agent-pass-1", T0, HOUR).map(|l| l.token))
        })
        .collect();
    for h in handles {
        let token = h.join().unwrap().unwrap();
        assert!(s.authenticate(token.as_str(), T0).is_ok());
    }
}
