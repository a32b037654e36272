//! Login, tokens and sessions: expiry, purge, logout, malformed tokens, tokens stored only as hashes.

use super::*;

crate::store::pg::test_db::both_backends!(
    embedded: super::super::EmbeddedDb,
    postgres: super::super::PostgresDb,
    tests: [
        login_succeeds_and_the_token_authenticates,
        unknown_user_wrong_password_disabled_user_and_bad_username_look_the_same,
        login_refuses_a_nonpositive_ttl,
        usernames_are_case_insensitive,
        token_expires_at_exactly_expires_ms,
        purge_removes_expired_sessions_only,
        logout_invalidates_only_that_token,
        malformed_tokens_are_unauthorized,
        tokens_are_stored_only_as_sha256,
    ]
);

// ----- login -----------------------------------------------------------

fn login_succeeds_and_the_token_authenticates(db: &dyn Backing) {
    let s = seeded(db, &[agent("li.lei", "a", "1001")]);
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

fn unknown_user_wrong_password_disabled_user_and_bad_username_look_the_same(db: &dyn Backing) {
    let mut off = agent("off", "a", "1002");
    off.disabled = true;
    let s = seeded(db, &[agent("on", "a", "1001"), off]);
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

fn login_refuses_a_nonpositive_ttl(db: &dyn Backing) {
    let s = seeded(db, &[agent("on", "a", "1001")]);
    for ttl in [0, -1] {
        let e = s.login("on", "agent-pass-1", T0, ttl).unwrap_err();
        assert_eq!(e.code(), "bad_request");
    }
}

fn usernames_are_case_insensitive(db: &dyn Backing) {
    let s = seeded(db, &[agent("Zhang.San", "a", "1001")]);
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

fn token_expires_at_exactly_expires_ms(db: &dyn Backing) {
    let s = seeded(db, &[agent("a1", "a", "1001")]);
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

fn purge_removes_expired_sessions_only(db: &dyn Backing) {
    let s = seeded(db, &[agent("a1", "a", "1001")]);
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

fn logout_invalidates_only_that_token(db: &dyn Backing) {
    let s = seeded(db, &[agent("a1", "a", "1001")]);
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

fn malformed_tokens_are_unauthorized(db: &dyn Backing) {
    let s = seeded(db, &[agent("a1", "a", "1001")]);
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

fn tokens_are_stored_only_as_sha256(db: &dyn Backing) {
    let s = db.open();
    s.upsert_user(&agent("a1", "a", "1001"), T0).unwrap();
    let login = s.login("a1", "agent-pass-1", T0, HOUR).unwrap();
    let token = login.token.as_str().to_owned();
    let (session, user) = (db.table("session"), db.table("user"));

    let hashes = db.strings(&format!("SELECT token_hash FROM {session}"));
    assert_eq!(hashes, [hex::encode(Sha256::digest(token.as_bytes()))]);
    // The token appears nowhere in the database, in any table or column.
    let dump = db
        .strings(&format!(
            "SELECT token_hash || username || CAST(created_ms AS TEXT)
                    || CAST(expires_ms AS TEXT) FROM {session}
             UNION ALL SELECT username || password_hash FROM {user}"
        ))
        .concat();
    assert!(!dump.is_empty());
    assert!(!dump.contains(&token));
    assert!(!dump.contains("agent-pass-1"), "password stored in clear");
    for bytes in db.files() {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
    // And the Debug form does not print it either.
    assert!(!format!("{login:?}").contains(&token));
}
