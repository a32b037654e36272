//! `hotline passwd` (issue 14 §6): the lines it prints replace clear
//! passwords in the configuration — a supervisor logs in with the
//! `password_hash` of a `[[user]]`, an agent's phone registers against the
//! `ha1_md5` / `ha1_sha256` of an `[[agent]]` — and a weak password is
//! refused with the reason. The password goes in on stdin only.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::api::Api;
use common::{Hotline, Net};

/// `hotline passwd --user <user> --realm hotline.test` with `password` on
/// stdin: (exit success, stdout, stderr).
fn passwd(user: &str, password: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["passwd", "--user", user, "--realm", "hotline.test"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hotline passwd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `key = "…"` lines of `hotline passwd`'s output.
fn line(text: &str, key: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .to_string()
}

#[test]
fn printed_hashes_replace_clear_passwords_for_logins_and_phones() {
    let (ok, weak, why) = passwd("2001", "2001");
    assert!(!ok && weak.is_empty(), "a weak password is refused");
    assert!(why.contains("shorter"), "{why}");

    let (ok, agent, err) = passwd("2001", "pass2001");
    assert!(ok, "{err}");
    assert!(!agent.contains("pass2001"), "the password is never printed");
    let (ok, user, err) = passwd("desk-sup", "Desk-Sup-2026");
    assert!(ok, "{err}");
    let extra = format!(
        "[[agent]]\nuser = \"2001\"\n{}\n{}\n\n[[user]]\nusername = \"desk-sup\"\nrole = \"supervisor\"\n{}\n",
        line(&agent, "ha1_md5"),
        line(&agent, "ha1_sha256"),
        line(&user, "password_hash"),
    );
    let net = Net(216);
    let h = Hotline::start(net, &extra);
    // The phone registers with the password the HA1s were made from.
    let mut phone = common::start_phone(&h, 0, "2001", &[]);
    phone.kill().ok();
    phone.wait().ok();
    let api = Api::new(net);
    let token = api.login("desk-sup", "Desk-Sup-2026");
    assert!(!token.is_empty());
    let (status, _) = api.send(
        "POST",
        "/api/v1/login",
        "",
        r#"{"username":"desk-sup","password":"wrong-password"}"#,
    );
    assert_eq!(status, 401);
    assert!(
        h.log().contains("registered agent=2001 contacts=1"),
        "{}",
        h.tail_log()
    );
}
