//! Persistence and schema (reopen, a newer schema, hand-edited rows), SQL injection, username validation, sharing across threads, the in-memory store.

use super::*;

crate::store::pg::test_db::both_backends!(
    embedded: super::super::EmbeddedDb,
    postgres: super::super::PostgresDb,
    tests: [
        everything_survives_a_reopen,
        a_newer_schema_is_refused,
        a_hand_edited_row_is_an_internal_error_naming_the_row,
        sql_injection_in_names_is_rejected_or_harmless,
        the_store_is_shareable_across_threads,
    ]
);

// ----- persistence and schema ------------------------------------------

fn everything_survives_a_reopen(db: &dyn Backing) {
    let token = {
        let s = db.open();
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
    let s = db.open();
    assert!(s.database().contains(&db.name()), "{}", s.database());
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
    let s = db.open();
    assert!(s.authenticate(token.as_str(), T0 + 2).is_err());
}

fn a_newer_schema_is_refused(db: &dyn Backing) {
    drop(db.open());
    db.set_schema_version(99);
    let e = db.try_open().unwrap_err();
    assert!(
        matches!(e, AuthError::SchemaTooNew { found: 99, .. }),
        "{e}"
    );
    assert!(e.to_string().contains(&db.name()), "{e}");
    assert_eq!(e.code(), "internal");
}

fn a_hand_edited_row_is_an_internal_error_naming_the_row(db: &dyn Backing) {
    let s = db.open();
    s.upsert_user(&agent("a1", "a", "1001"), T0).unwrap();
    let token = s.login("a1", "agent-pass-1", T0, HOUR).unwrap().token;
    let user = db.table("user");
    db.exec(&format!("UPDATE {user} SET role = 'root'"))
        .unwrap();
    let e = s.authenticate(token.as_str(), T0).unwrap_err();
    assert_eq!((e.status(), e.code()), (500, "internal"));
    let text = e.to_string();
    assert!(
        text.contains(&db.name()) && text.contains("a1") && text.contains("user"),
        "{text}"
    );
    // An agent smuggled into "*" is refused too, not treated as global.
    db.exec(&format!("UPDATE {user} SET role = 'agent', tenant = '*'"))
        .unwrap();
    assert_eq!(
        s.authenticate(token.as_str(), T0).unwrap_err().code(),
        "internal"
    );
    assert_eq!(s.list_users(None).unwrap_err().code(), "internal");
}

// ----- injection -------------------------------------------------------

fn sql_injection_in_names_is_rejected_or_harmless(db: &dyn Backing) {
    let s = seeded(
        db,
        &[
            agent("a1", "a", "1001"),
            new_user("admin", Role::Admin, "a", None, "admin-pass-1"),
        ],
    );
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
    // A NUL (which PostgreSQL text cannot hold) does not lose the row.
    s.audit(T0, &who, "note", "x\0y", &json!({"q": "\0"}))
        .unwrap();
    let row = &s.audit_log(Some("a"), 1, None).unwrap()[0];
    assert_eq!(row.target, "x\u{fffd}y");
    assert_eq!(row.detail, json!({"q": "\0"}));
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

fn the_store_is_shareable_across_threads(db: &dyn Backing) {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<AuthStore>();
    let s = std::sync::Arc::new(seeded(db, &[agent("a1", "a", "1001")]));
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

#[test]
fn an_in_memory_store_works() {
    let s = AuthStore::open_in_memory().unwrap();
    assert_eq!(s.path(), Some(std::path::Path::new(":memory:")));
    s.upsert_user(&agent("a1", "a", "1001"), T0).unwrap();
    let login = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    assert_eq!(s.authenticate(login.token.as_str(), T0).unwrap().user, "a1");
}
