//! Password hashing: argon2id, stored as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), issue text "passwords
//! stored hashed (argon2)".
//!
//! - New hashes use the OWASP minimum for argon2id: 19 MiB, 2 passes, one
//!   lane ([`M_COST_KIB`], [`T_COST`], [`P_COST`]), a 16-byte salt from the
//!   operating system's RNG, a 32-byte output.
//! - Verification reads the parameters from the stored string, so hashes
//!   made with other parameters (e.g. by the `argon2` command-line tool for
//!   a config file) still verify; [`needs_rehash`] tells the store to
//!   upgrade them at the next successful login.
//! - The final comparison is constant-time (the `argon2`/`phc` crates
//!   compare outputs with `subtle`-style constant-time equality).
//! - [`dummy_verify`] spends the same work as a real verification, for
//!   logins of unknown users: response time does not reveal which
//!   usernames exist.
//! - Only argon2id, version 19, with bounded costs ([`MAX_M_COST_KIB`],
//!   [`MAX_T_COST`], [`MAX_P_COST`]) is accepted ([`validate_phc`]), so a
//!   hand-edited hash cannot make every login burn a gigabyte.
//!
//! Each verification allocates `m` KiB (19 MiB by default) and takes tens
//! of milliseconds: call it from a blocking thread, not an async task, and
//! bound concurrent logins in the HTTP layer.

use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use rand::rngs::OsRng;
use rand::TryRngCore;

use super::AuthError;

/// Memory cost of new hashes, KiB (19 MiB, OWASP's argon2id minimum).
pub const M_COST_KIB: u32 = 19_456;
/// Passes of new hashes.
pub const T_COST: u32 = 2;
/// Lanes of new hashes.
pub const P_COST: u32 = 1;
/// Salt length of new hashes, bytes.
pub const SALT_LEN: usize = 16;

/// Largest memory cost accepted in a stored hash, KiB (256 MiB).
pub const MAX_M_COST_KIB: u32 = 256 * 1024;
/// Largest pass count accepted in a stored hash.
pub const MAX_T_COST: u32 = 16;
/// Largest lane count accepted in a stored hash.
pub const MAX_P_COST: u32 = 16;

/// Shortest password accepted for a new user, in characters (unless the
/// user is seeded with `allow_weak`).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted, in bytes (a bound on hashing work per login).
pub const MAX_PASSWORD_LEN: usize = 1024;

const ARGON2ID: &str = "argon2id";
const VERSION_19: u32 = 0x13;

fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| AuthError::Crypto(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash `password` with a fresh random salt; returns the PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; SALT_LEN];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| AuthError::Crypto(format!("system RNG: {e}")))?;
    let hash = hasher()?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| AuthError::Crypto(format!("argon2: {e}")))?;
    Ok(hash.to_string())
}

/// Check `password` against a stored PHC string. `false` for a wrong
/// password and also for a malformed or out-of-bounds hash (which then
/// costs a [`dummy_verify`], so it is not faster than a real check).
pub fn verify_password(password: &str, phc: &str) -> bool {
    match parse_checked(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => {
            dummy_verify(password);
            false
        }
    }
}

/// Spend the work of one verification at the default parameters, for a
/// login whose username is unknown. The result is meaningless and dropped.
pub fn dummy_verify(password: &str) {
    if let Some(dummy) = dummy_hash() {
        let outcome = Argon2::default().verify_password(password.as_bytes(), dummy);
        std::hint::black_box(outcome.is_ok());
    }
}

/// Compute the dummy hash now, so the first unknown-user login is not
/// slower than the others (the store calls this when it opens).
pub fn warm_up() {
    let _ = dummy_hash();
}

fn dummy_hash() -> Option<&'static PasswordHash> {
    static DUMMY: OnceLock<Option<PasswordHash>> = OnceLock::new();
    // A fixed salt: the dummy never needs the RNG, so it cannot fail.
    DUMMY
        .get_or_init(|| {
            hasher()
                .ok()?
                .hash_password_with_salt(b"hotline: no such user", b"hotline-dummy-salt")
                .ok()
        })
        .as_ref()
}

/// Whether a stored hash should be replaced by one with the current
/// algorithm and parameters (checked after a successful login).
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = parse_checked(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    params.m_cost() != M_COST_KIB
        || params.t_cost() != T_COST
        || params.p_cost() != P_COST
        || parsed.salt.map(|s| s.len()) != Some(SALT_LEN)
        || parsed.hash.map(|h| h.len()) != Some(Params::DEFAULT_OUTPUT_LEN)
}

/// Accept a ready PHC string (seeded from configuration): argon2id, v=19,
/// salt and hash present, costs within the `MAX_*` bounds.
pub fn validate_phc(phc: &str) -> Result<(), AuthError> {
    parse_checked(phc).map(|_| ())
}

fn parse_checked(phc: &str) -> Result<PasswordHash, AuthError> {
    // The message never echoes the string: it is a secret too.
    let bad = |why: &str| {
        AuthError::BadRequest(format!(
            "password_hash: {why} (expected $argon2id$v=19$m=…,t=…,p=…$salt$hash)"
        ))
    };
    let parsed = PasswordHash::new(phc).map_err(|_| bad("not a PHC string"))?;
    if parsed.algorithm.as_str() != ARGON2ID {
        return Err(bad("algorithm is not argon2id"));
    }
    if parsed.version != Some(VERSION_19) {
        return Err(bad("version is not 19"));
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(bad("salt or hash missing"));
    }
    let params = Params::try_from(&parsed).map_err(|_| bad("invalid parameters"))?;
    if params.m_cost() > MAX_M_COST_KIB
        || params.t_cost() > MAX_T_COST
        || params.p_cost() > MAX_P_COST
    {
        return Err(bad(&format!(
            "costs above m={MAX_M_COST_KIB},t={MAX_T_COST},p={MAX_P_COST}"
        )));
    }
    Ok(parsed)
}

/// The password rules for a new or changed password. Always: not empty, at
/// most [`MAX_PASSWORD_LEN`] bytes. Unless `allow_weak` (seeded demo
/// users): at least [`MIN_PASSWORD_LEN`] characters and not the username.
pub fn check_password_policy(
    username: &str,
    password: &str,
    allow_weak: bool,
) -> Result<(), AuthError> {
    if password.is_empty() {
        return Err(AuthError::BadRequest("password is empty".into()));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AuthError::BadRequest(format!(
            "password is longer than {MAX_PASSWORD_LEN} bytes"
        )));
    }
    if allow_weak {
        return Ok(());
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AuthError::BadRequest(format!(
            "password is shorter than {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(AuthError::BadRequest(
            "password must not be the username".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verify_roundtrip_and_wrong_password() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("", &phc));
        assert!(!needs_rehash(&phc));
        validate_phc(&phc).unwrap();
    }

    #[test]
    fn salts_are_random() {
        let a = hash_password("same password").unwrap();
        let b = hash_password("same password").unwrap();
        assert_ne!(a, b);
        assert!(verify_password("same password", &a));
        assert!(verify_password("same password", &b));
    }

    #[test]
    fn other_parameters_verify_and_ask_for_a_rehash() {
        // As made by another tool with cheaper settings.
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password_with_salt(b"demo1234", b"0123456789abcdef")
        .unwrap()
        .to_string();
        assert!(cheap.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        validate_phc(&cheap).unwrap();
        assert!(verify_password("demo1234", &cheap));
        assert!(!verify_password("demo12345", &cheap));
        assert!(needs_rehash(&cheap));
    }

    #[test]
    fn known_vector_from_the_reference_implementation() {
        // `echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1 -l 32 -e`
        // (phc-winner-argon2's documented example output, v=19).
        let phc = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        assert!(verify_password("password", phc));
        assert!(!verify_password("Password", phc));
    }

    #[test]
    fn foreign_or_costly_hashes_are_refused() {
        let refused = [
            "",
            "plain text",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA",
            "$argon2id$v=16$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
            "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ",
            "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
            "$argon2id$v=19$m=65536,t=100,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        ];
        for phc in refused {
            let err = validate_phc(phc).unwrap_err();
            assert_eq!(err.code(), "bad_request", "{phc}");
            assert!(!err.to_string().contains("c29tZXNhbHQ"), "echoes the hash");
            assert!(!verify_password("password", phc), "{phc}");
            assert!(needs_rehash(phc));
        }
    }

    #[test]
    fn dummy_verify_runs() {
        warm_up();
        assert!(dummy_hash().is_some());
        dummy_verify("anything");
        dummy_verify("");
    }

    #[test]
    fn password_policy() {
        let weak = |p: &str, allow| check_password_policy("bob", p, allow);
        assert_eq!(weak("", true).unwrap_err().code(), "bad_request");
        assert_eq!(weak("", false).unwrap_err().code(), "bad_request");
        assert!(weak("1234567", false).is_err());
        assert!(weak("1234567", true).is_ok());
        assert!(weak("12345678", false).is_ok());
        // Characters, not bytes: eight CJK characters are long enough.
        assert!(weak("一二三四五六七八", false).is_ok());
        assert!(weak("一二三四五六七", false).is_err());
        assert!(check_password_policy("zhang.san", "ZHANG.SAN", false).is_err());
        assert!(check_password_policy("zhang.san", "zhang.san", true).is_ok());
        let long = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert!(weak(&long, true).is_err());
        assert!(weak(&long[1..], false).is_ok());
    }
}
