//! A recorded call as the recordings tests place and fetch it: one call
//! through the switch (caller 440 Hz, the agent's phone 600 Hz), its
//! record once it names its recording, raw downloads with ranges, and a
//! recording key made by `hotline keygen`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::api::Api;
use super::Hotline;

/// A raw GET: status, headers, body.
pub struct Got {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

/// GET `path`, with a token and a `Range` when given.
pub fn get(api: &Api, path: &str, token: Option<&str>, range: Option<&str>) -> Got {
    api.rt.block_on(async {
        let mut req = reqwest::Client::new().get(format!("{}{path}", api.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let r = req.send().await.expect("request");
        Got {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.expect("body").to_vec(),
        }
    })
}

/// A response header, empty when absent.
pub fn header<'a>(g: &'a Got, name: &str) -> &'a str {
    g.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The one call's record, once it names its recording (bounded: 30 s, for
/// a loaded machine).
pub fn recorded_call(api: &Api, token: &str) -> Value {
    for _ in 0..150 {
        let (_, v) = api.get("/api/v1/calls", token);
        if v["count"] == 1 && !v["calls"][0]["recording"].is_null() {
            return v["calls"][0].clone();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no recorded call: {}", api.get("/api/v1/calls", token).1);
}

/// One call: the agent's phone sends 600 Hz, the caller 440 Hz and hangs
/// up after `secs`.
pub fn one_call(h: &Hotline, secs: &str) {
    let mut phone = super::start_phone(h, 0, "1001", &["--tone", "600", "--answer-after", "0.2"]);
    let caller = super::dial(h.net, "12345", &["--tone", "440", "--hangup-after", secs])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dial");
    let out = caller.wait_with_output().expect("caller");
    let report = super::report(&out);
    assert_eq!(report["status"], 200, "{report}");
    phone.kill().ok();
    phone.wait().ok();
}

/// A recording key at `out` (`hotline keygen`); what it printed.
pub fn keygen(out: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["keygen", "--out"])
        .arg(out)
        .output()
        .expect("run keygen");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}
