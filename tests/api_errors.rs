//! Field defects of the HTTP API (issue 12 item 8), driven over HTTP against
//! a real hotline:
//! - `/api/v1` errors are JSON everywhere: a 5 MB body gets a JSON 413, a
//!   wrong method a JSON 405, as unknown paths and refusals already do;
//! - every error carries a Chinese `message_zh` next to the stable `code`
//!   and the English `message` (the phone bar shows the Chinese);
//! - block-list numbers are validated: digits, an optional leading `+`, a
//!   trailing `*` for a prefix (spaces, dashes, dots and brackets between
//!   digits are tolerated), through the API and in `hotline.toml`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::api::{code, Api};
use common::{Hotline, Net};
use serde_json::Value;

const SETUP: &str = r#"
[[group]]
id = "general"

[[agent]]
user = "1531"
password = "pass1531"
job_number = "A1531"
skills = { general = 5 }

[[user]]
username = "sup"
role = "supervisor"
tenant = "default"
password = "sup-password-1"

[[user]]
username = "agent"
role = "agent"
tenant = "default"
agent_id = "A1531"
password = "agent-password-1"
"#;

/// `POST path` with a body of `len` bytes over a plain TCP connection (the
/// server may answer before the body is all sent); status and JSON body.
fn post_big(addr: &str, path: &str, token: &str, len: usize) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("write head");
    let mut writer = s.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            if writer.write_all(&chunk[..n]).is_err() {
                return; // the server stopped reading: expected
            }
            left -= n;
        }
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(usize::MAX);
            if body.len() >= length {
                break;
            }
        }
    }
    s.shutdown(std::net::Shutdown::Both).ok();
    sender.join().ok();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("an HTTP answer: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body ({e}): {text}"));
    (status, json)
}

/// Whether `s` has Chinese characters (CJK Unified Ideographs).
fn has_chinese(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// Assert `v` is a JSON error with `code`, an English `message` and a
/// Chinese `message_zh`.
fn assert_error(v: &Value, want: &str) {
    assert_eq!(code(v), want, "{v}");
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(
        e["message_zh"].as_str().is_some_and(has_chinese),
        "a Chinese message: {v}"
    );
}

#[test]
fn api_errors_are_json_everywhere_with_a_chinese_message() {
    let net = Net(153);
    let h = Hotline::start(net, SETUP);
    let api = Api::new(net);
    let sup = api.login("sup", "sup-password-1");
    let agent = api.login("agent", "agent-password-1");
    let addr = format!("{}:8080", net.ip(1));

    // A 5 MB body: 413 as JSON, on an authenticated endpoint and on login.
    let (s, v) = post_big(&addr, "/api/v1/admin/blacklist", &sup, 5 << 20);
    assert_eq!(s, 413, "{v}");
    assert_error(&v, "too_large");
    let (s, v) = post_big(&addr, "/api/v1/login", "", 5 << 20);
    assert_eq!(s, 413, "{v}");
    assert_error(&v, "too_large");

    // A wrong method: 405 as JSON.
    let (s, v) = api.send("DELETE", "/api/v1/login", "", "");
    assert_eq!(s, 405, "{v}");
    assert_error(&v, "method_not_allowed");

    // Errors an agent's phone bar shows: a state change the ACD refuses,
    // no call to hang up, a missing token, bad JSON, an unknown path.
    let (s, v) = api.post("/api/v1/agent/state", &agent, r#"{"state":"logged_in"}"#);
    assert_eq!(s, 200, "{v}");
    let (s, v) = api.post("/api/v1/agent/state", &agent, r#"{"state":"ready"}"#);
    assert_eq!(s, 409, "{v}");
    assert_error(&v, "wrong_state");
    let (s, v) = api.post("/api/v1/agent/call/hangup", &agent, "{}");
    assert_eq!(s, 409, "{v}");
    assert_error(&v, "no_call");
    let (s, v) = api.get("/api/v1/me", "");
    assert_eq!(s, 401, "{v}");
    assert_error(&v, "unauthorized");
    let (s, v) = api.post("/api/v1/agent/state", &agent, "{");
    assert_eq!(s, 400, "{v}");
    assert_error(&v, "bad_json");
    let (s, v) = api.get("/api/v1/nothing-here", &agent);
    assert_eq!(s, 404, "{v}");
    assert_error(&v, "not_found");
    // The ACD's own endpoints too: never without credentials (toll fraud),
    // and a bad number is named.
    for path in ["/api/v1/acd/callbacks", "/api/v1/acd/stats"] {
        let (s, v) = if path.ends_with("stats") {
            api.get(path, "")
        } else {
            api.post(path, "", r#"{"group":"general","number":"13800138000"}"#)
        };
        assert_eq!(s, 401, "{path}: {v}");
        assert_error(&v, "unauthorized");
    }
    let (s, v) = api.post(
        "/api/v1/acd/callbacks",
        &agent,
        r#"{"group":"general","number":"x"}"#,
    );
    assert_eq!(s, 400, "{v}");
    assert_error(&v, "bad_number");
    drop(h);
}

#[test]
fn block_list_numbers_are_validated() {
    let net = Net(155);
    let h = Hotline::start(net, SETUP);
    let api = Api::new(net);
    let sup = api.login("sup", "sup-password-1");
    let add = |number: &str| {
        api.post(
            "/api/v1/admin/blacklist",
            &sup,
            &serde_json::json!({ "number": number, "reason": "test" }).to_string(),
        )
    };
    for bad in [
        "abc",
        "139abc0000",
        "++8613900000000",
        "1*39",
        "+",
        "*",
        "13 9x",
        "+*",
        "#139",
    ] {
        let (s, v) = add(bad);
        assert_eq!(s, 400, "{bad:?} refused: {v}");
        assert_error(&v, "bad_number");
    }
    for (good, stored) in [
        ("+86 139 0571 0000", "13905710000"),
        ("95*", "95*"),
        ("010-1234-5678", "01012345678"),
        ("+1 (555) 010.0100", "0015550100100"),
    ] {
        let (s, v) = add(good);
        assert_eq!(s, 201, "{good:?} accepted: {v}");
        assert_eq!(v["entry"]["number"], stored, "{v}");
    }
    let (s, v) = api.get("/api/v1/admin/blacklist", &sup);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["entries"].as_array().map(Vec::len), Some(4), "{v}");

    // The same rule for the entries hotline.toml seeds.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hotline.toml");
    let text = common::config(
        Net(156),
        &dir.path().join("var"),
        "[[blacklist]]\nnumber = \"139-0000-0000\"\n[[blacklist]]\nnumber = \"call me\"\n",
    );
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("check")
        .arg(&file)
        .output()
        .expect("hotline check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {err}");
    assert!(
        err.contains("blacklist[1]") && err.contains("call me") && !err.contains("blacklist[0]"),
        "names the entry: {err}"
    );
    drop(h);
}
