//! `hotline passwd` (issue 14 §6 "no clear password needs to live in
//! config"): from a password read on stdin (never the command line, which
//! other users of the machine see in the process list and which shells
//! keep in their history), the configuration lines that replace it:
//! `password_hash` (argon2id PHC) for a `[[user]]`, and `ha1_md5` /
//! `ha1_sha256` (RFC 7616 §3.4.2 `H(user:realm:password)`) for an
//! `[[agent]]`'s SIP digest under the switch's realm.

use crate::auth::password::{check_password_policy, hash_password};
use crate::auth::AuthError;
use crate::sip::auth::{ha1, DigestAlgorithm};

/// The TOML lines for `user` with `password` under SIP `realm`; the
/// password rules of a new password apply (at least 8 characters, not the
/// user name).
///
/// # Errors
/// The password breaks the rules, or hashing failed.
pub fn credential_lines(user: &str, realm: &str, password: &str) -> Result<String, AuthError> {
    check_password_policy(user, password, false)?;
    let phc = hash_password(password)?;
    let md5 = ha1(DigestAlgorithm::Md5, user, realm, password);
    let sha = ha1(DigestAlgorithm::Sha256, user, realm, password);
    Ok(format!(
        "# [[user]] username = \"{user}\": the API login\n\
         password_hash = \"{phc}\"\n\
         # [[agent]] user = \"{user}\": the phone's SIP digest under realm \"{realm}\"\n\
         ha1_md5 = \"{md5}\"\n\
         ha1_sha256 = \"{sha}\"\n"
    ))
}

/// The password from the first line of `input` (its line end removed).
pub fn read_password(mut input: impl std::io::BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_verify_the_password_and_nothing_else() {
        let text = credential_lines("1001", "hotline.local", "Gov-12345-hotline").expect("lines");
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                .and_then(|v| v.strip_suffix('"'))
                .expect(k)
                .to_string()
        };
        let phc = field("password_hash");
        assert!(crate::auth::password::verify_password(
            "Gov-12345-hotline",
            &phc
        ));
        assert!(!crate::auth::password::verify_password(
            "gov-12345-hotline",
            &phc
        ));
        assert_eq!(
            field("ha1_md5"),
            ha1(
                DigestAlgorithm::Md5,
                "1001",
                "hotline.local",
                "Gov-12345-hotline"
            )
        );
        assert_eq!(field("ha1_sha256").len(), 64);
        assert!(
            !text.contains("Gov-12345-hotline"),
            "the password itself is never printed"
        );
    }

    #[test]
    fn weak_passwords_are_refused_with_the_reason() {
        let e = credential_lines("1001", "r", "1001").expect_err("weak");
        assert!(
            e.to_string().contains("shorter") || e.to_string().contains("username"),
            "{e}"
        );
        assert!(credential_lines("1001", "r", "").is_err());
    }

    #[test]
    fn the_password_is_the_first_line_without_its_end() {
        let p = read_password(&b"s3cret pass\r\nignored\n"[..]).expect("read");
        assert_eq!(p, "s3cret pass");
    }
}
