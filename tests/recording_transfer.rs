//! A call is recorded whole, across its hand-overs (REQUIREMENTS §4 "全程录音":
//! every call recorded from answer to hang-up): a caller talks to one
//! agent, is blind-transferred to a second agent, and the call's one WAV
//! holds both agents on the right channel and the caller throughout on the
//! left; the record names that one recording. Real parts: `hotline dial` as
//! the caller, two `hotline phone`s, the CTI API for the transfer. Tones:
//! caller 440 Hz, A01 600 Hz, A02 900 Hz.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::api::Api;
use common::audio::{channel, windows_with};
use common::{Hotline, Net};
use serde_json::Value;

const SETUP: &str = r#"
[[group]]
id = "general"
acw_secs = 1

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
skills = { general = 5 }
auto_login = true

[[agent]]
user = "2002"
password = "pass2002"
job_number = "A02"

[[did]]
number = "12399"
queue = "general"

[[user]]
username = "agent-1"
role = "agent"
agent_id = "A01"
password = "agent-1-password"

[[user]]
username = "sup"
role = "supervisor"
password = "sup-password"
"#;

/// The test's one call record, once stored (bounded wait).
fn only_record(api: &Api, token: &str) -> Value {
    for _ in 0..75 {
        let (_, v) = api.get("/api/v1/calls", token);
        if v["count"] == 1 && !v["calls"][0]["recording"].is_null() {
            return v["calls"][0].clone();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, v) = api.get("/api/v1/calls", token);
    v
}

#[test]
fn a_blind_transfer_keeps_one_recording_of_the_whole_call() {
    let net = Net(202);
    let h = Hotline::start(net, SETUP);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let phone1 = common::start_phone(&h, 0, "2001", &["--tone", "600", "--answer-after", "0.3"]);
    let phone2 = common::start_phone(
        &h,
        1,
        "2002",
        &[
            "--tone",
            "900",
            "--answer-after",
            "0.3",
            "--hangup-after",
            "3",
        ],
    );
    let caller = common::dial(net, "12399", &["--tone", "440", "--hangup-after", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    h.wait_for("the call to connect", Duration::from_secs(15), |_| {
        h.log().contains("connected caller_rtp")
    });
    std::thread::sleep(Duration::from_secs(3));
    let (s, v) = api.post("/api/v1/agent/call/transfer", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(s, 202, "{v}");
    // A02 answers, talks 3 s and hangs up.
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["ended_by"], "remote", "{caller}");
    let _ = phone1.wait_with_output();
    let _ = phone2.wait_with_output();

    let record = only_record(&api, &sup);
    assert_eq!(
        record["agents"],
        serde_json::json!(["A01", "A02"]),
        "{record}"
    );
    assert!(
        !record["recording"].is_null(),
        "the record names its recording: {record}"
    );
    let wavs = h.data_files(".wav");
    assert_eq!(wavs.len(), 1, "one recording for the one call: {wavs:?}");
    assert!(
        h.data_files(".wav.part").is_empty(),
        "the recording is finished"
    );
    let other_side = channel(&wavs[0], 1, 2);
    assert!(
        windows_with(&other_side, 600.0, 0.5) > 50,
        "the first agent is recorded"
    );
    assert!(
        windows_with(&other_side, 900.0, 0.5) > 50,
        "the second agent, after the transfer, is recorded too"
    );
    let caller_side = channel(&wavs[0], 0, 2);
    let secs = caller_side.len() as f64 / 8000.0;
    assert!(secs >= 5.0, "the recording spans both parts, {secs:.1} s");
    let before = windows_with(&caller_side[..caller_side.len() / 2], 440.0, 0.5);
    let after = windows_with(&caller_side[caller_side.len() / 2..], 440.0, 0.5);
    assert!(
        before > 50 && after > 50,
        "the caller is recorded in both halves ({before}, {after} windows)"
    );
    assert!(
        !h.log().contains("cannot record this call"),
        "{}",
        h.tail_log()
    );
}
