//! Users: reseeding, changes that end sessions, deletion, validation, ready argon2 hashes, secrets kept out of debug output.

use super::*;

crate::store::pg::test_db::both_backends!(
    embedded: super::super::EmbeddedDb,
    postgres: super::super::PostgresDb,
    tests: [
        reseeding_the_same_password_changes_nothing_and_keeps_sessions,
        password_tenant_or_disable_changes_end_sessions_role_changes_apply_at_once,
        delete_user_ends_sessions,
        new_users_are_validated,
        ready_phc_hashes_are_accepted_and_upgraded_at_login,
    ]
);

// ----- users -----------------------------------------------------------

fn reseeding_the_same_password_changes_nothing_and_keeps_sessions(db: &dyn Backing) {
    let s = db.open();
    let u = agent("a1", "a", "1001");
    assert_eq!(s.upsert_user(&u, T0).unwrap(), Upserted::Created);
    let login = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    assert_eq!(s.upsert_user(&u, T0 + 1).unwrap(), Upserted::Unchanged);
    assert!(s.authenticate(login.token.as_str(), T0 + 2).is_ok());
    assert_eq!(s.user("a1").unwrap().unwrap().created_ms, T0);
}

fn password_tenant_or_disable_changes_end_sessions_role_changes_apply_at_once(db: &dyn Backing) {
    let s = seeded(db, &[agent("a1", "a", "1001")]);
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

fn delete_user_ends_sessions(db: &dyn Backing) {
    let s = seeded(db, &[agent("a1", "a", "1001")]);
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

fn new_users_are_validated(db: &dyn Backing) {
    let s = db.open();
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

fn ready_phc_hashes_are_accepted_and_upgraded_at_login(db: &dyn Backing) {
    let s = db.open();
    // Made by the reference `argon2` tool with other parameters.
    let phc =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let mut u = new_user("sup", Role::Supervisor, "a", None, "");
    u.credential = Credential::PasswordHash(phc.into());
    assert_eq!(s.upsert_user(&u, T0).unwrap(), Upserted::Created);
    assert_eq!(s.upsert_user(&u, T0).unwrap(), Upserted::Unchanged);
    assert!(s.login("sup", "Password", T0, HOUR).is_err());
    s.login("sup", "password", T0, HOUR).unwrap();

    let stored = db.strings(&format!("SELECT password_hash FROM {}", db.table("user")));
    let stored = &stored[0];
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(password::verify_password("password", stored));

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
