//! A key press is one press, wherever it lands (issue 12 §1): the shipped
//! 12345 flow and configuration, callers that press keys the way phones and
//! carriers do (RFC 4733 with three retransmitted end packets: SIPp
//! replaying sip-tester's pcaps, and `hotline dial`), across the IVR →
//! queue → agent hand-overs of the caller's media.
//!
//! Before the fix the retransmitted end packets of the menu's key reached
//! the queue's player as a fresh press: key 1 ("consultation") was read
//! again as the `general` group's callback key, the agent's offer was
//! withdrawn and the caller hung up on; and the end packets that reached
//! the bridge were relayed to the agent's phone.

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::shipped::{calendars, phone_like_key_pcap, repo, shipped_config};
use common::{Hotline, Net, Sipp};

/// Wait for a child with piped stdout, killing it after `within`.
fn wait_output(mut child: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// The `node=` of every `ivr step` of the 12345 flow, in order.
fn path(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("ivr step") && l.contains("flow=12345 "))
        .filter_map(|l| {
            let rest = &l[l.find(" node=")? + 6..];
            Some(
                rest.split_whitespace()
                    .next()?
                    .trim_matches('"')
                    .to_string(),
            )
        })
        .collect()
}

/// The report of an agent's phone; a phone that never got a call printed
/// nothing.
fn agent_report(out: Output, log: &str) -> serde_json::Value {
    assert!(
        !out.stdout.is_empty(),
        "agent 1001's phone never got the call:\n{log}"
    );
    common::report(&out)
}

/// Mean frequency of a tone by zero crossings.
fn frequency(s: &[i16]) -> f64 {
    let crossings = s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (s.len() as f64 / 8000.0)
}

fn samples(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("recording");
    r.samples::<i16>().map(|s| s.expect("sample")).collect()
}

/// SIPp calls 12345 on the shipped setup, presses `key` as a phone does
/// ([`phone_like_key_pcap`]) during the welcome, and talks to the agent that
/// answers (1001, our phone, which reports every key it got). Returns the
/// path through the flow.
fn press_key_with_sipp(net: Net, key: char) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = phone_like_key_pcap(key, dir.path());
    let text = shipped_config(net, dir.path());
    let h = Hotline::start_with(net, dir, &text);
    let phone = common::start_phone(&h, 0, "1001", &["--tone", "600", "--answer-after", "1"]);
    let sip = net.sip();
    let carrier = Sipp::start(
        "carrier_ivr_key.xml",
        &net.carrier(),
        &[
            "-s",
            "12345",
            "-m",
            "1",
            "-key",
            "key_pcap",
            pcap.to_str().expect("path"),
            &sip,
        ],
    );
    let carrier = carrier.wait(Duration::from_secs(60));
    let agent = agent_report(wait_output(phone, Duration::from_secs(20)), &h.tail_log());
    carrier.assert_ok(&h);
    let log = h.log();
    assert_eq!(
        agent["status"],
        200,
        "agent 1001 answered: {agent}\n{}",
        h.tail_log()
    );
    assert_eq!(agent["ended_by"], "remote", "the caller hung up: {agent}");
    assert!(
        agent["media"]["rtp_received"].as_u64().unwrap_or(0) >= 50,
        "the agent heard the caller: {agent}"
    );
    assert_eq!(
        agent["media"]["dtmf_received"], "",
        "the IVR's key reached the agent's phone: {agent}"
    );
    assert!(
        !log.contains("caller asked to be called back"),
        "the menu's key {key} was read again by the queue:\n{}",
        h.tail_log()
    );
    assert!(!log.contains("media ports were lost"), "{}", h.tail_log());
    path(&log)
}

fn through(path: &[String], nodes: &[&str]) {
    let menu = path
        .iter()
        .position(|n| n == "menu")
        .unwrap_or_else(|| panic!("no menu step: {path:?}"));
    let after: Vec<&str> = path[menu + 1..].iter().map(String::as_str).collect();
    assert!(
        after.starts_with(nodes),
        "after the menu {after:?}, expected {nodes:?}"
    );
}

#[test]
fn key_1_consultation_reaches_the_agent() {
    through(&press_key_with_sipp(Net(190), '1'), &["consult", "agent"]);
}

#[test]
fn key_2_complaint_reaches_the_agent() {
    through(&press_key_with_sipp(Net(191), '2'), &["complaint", "agent"]);
}

#[test]
fn key_3_enterprise_reaches_the_agent() {
    through(
        &press_key_with_sipp(Net(192), '3'),
        &["enterprise", "agent"],
    );
}

#[test]
fn key_9_emergency_reaches_the_agent() {
    through(
        &press_key_with_sipp(Net(193), '9'),
        &["emergency", "emergency_queue"],
    );
}

#[test]
fn key_0_reaches_the_agent() {
    through(&press_key_with_sipp(Net(194), '0'), &["agent"]);
}

/// The caller goes through the menu with 2, waits (agent 1001's phone rings
/// but never answers) and then presses 1 on purpose: that press is the
/// queue's callback key, and the caller is told and hung up on.
#[test]
fn a_1_pressed_later_in_the_queue_still_requests_the_callback() {
    let net = Net(195);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = shipped_config(net, dir.path());
    let h = Hotline::start_with(net, dir, &text);
    let phone = Reaped(common::start_phone(
        &h,
        0,
        "1001",
        &["--answer-after", "120"],
    ));
    let out = common::dial(
        net,
        "12345",
        &[
            "--dtmf",
            "2",
            "--dtmf-at",
            "2",
            "--dtmf",
            "1",
            "--dtmf-at",
            "9",
            "--hangup-after",
            "40",
        ],
    )
    .output()
    .expect("dial");
    let report = common::report(&out);
    let log = h.log();
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(
        report["ended_by"],
        "remote",
        "hotline hung up after confirming the callback: {report}\n{}",
        h.tail_log()
    );
    assert_eq!(
        log.matches("caller asked to be called back").count(),
        1,
        "{}",
        h.tail_log()
    );
    through(&path(&log), &["complaint", "agent"]);
    assert!(!log.contains("media ports were lost"), "{}", h.tail_log());
    let stats: serde_json::Value =
        serde_json::from_str(&h.acd_stats().expect("stats")).expect("json");
    let general = stats["stats"]["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["group"] == "general"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(general["counters"]["callback_requested"], 1, "{stats:#}");
    drop(phone);
}

/// A child process killed when the test ends, even by a panic.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// The README's "Trying it by hand", run as written: `hotline serve` on the
/// embedded configuration from a checkout (only the schedules are open
/// around the clock, see [`calendars`]), agent 1001's phone, and a citizen
/// who presses 1 during the welcome. The caller reaches agent 1001.
#[test]
fn the_readme_by_hand_commands_put_the_caller_through_to_agent_1001() {
    let bin = env!("CARGO_BIN_EXE_hotline");
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    for entry in ["sounds", "ivr-flows"] {
        std::os::unix::fs::symlink(repo().join(entry), w.join(entry)).expect("link");
    }
    calendars(&w.join("config"));
    std::os::unix::fs::symlink(repo().join("config/areas.csv"), w.join("config/areas.csv"))
        .expect("link");
    let log = std::fs::File::create(w.join("serve.log")).expect("log");
    // cargo run --release -- serve --log debug
    let mut serve = Command::new(bin)
        .args(["serve", "--log", "debug"])
        .current_dir(w)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("serve");
    let serve_log = || std::fs::read_to_string(w.join("serve.log")).unwrap_or_default();
    let healthz = || {
        common::http_get("127.0.0.1:8080", "/healthz")
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while healthz().is_none() {
        assert!(
            Instant::now() < deadline,
            "serve did not come up:\n{}",
            serve_log()
        );
        if let Ok(Some(s)) = serve.try_wait() {
            panic!("serve exited ({s}):\n{}", serve_log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The answer must be this serve's (not another one left running).
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(s)) = serve.try_wait() {
        panic!("serve exited ({s}):\n{}", serve_log());
    }
    let serve = Reaped(serve);
    // cargo run --release -- phone --bind 127.0.0.21:5060 --user 1001 --password pass1001 --tone 600 --record agent.wav
    let phone = Command::new(bin)
        .args(["phone", "--bind", "127.0.0.21:5060", "--user", "1001"])
        .args([
            "--password",
            "pass1001",
            "--tone",
            "600",
            "--record",
            "agent.wav",
        ])
        .current_dir(w)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("phone");
    let deadline = Instant::now() + Duration::from_secs(10);
    while healthz().is_none_or(|v| v["registrations"].as_u64().unwrap_or(0) == 0) {
        assert!(
            Instant::now() < deadline,
            "the phone did not register:\n{}",
            serve_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // cargo run --release -- dial sip:12345@127.0.0.1:5060 --tone 440 --dtmf 1 --dtmf-at 2 --hangup-after 30
    let dial = Command::new(bin)
        .args([
            "dial",
            "sip:12345@127.0.0.1:5060",
            "--tone",
            "440",
            "--dtmf",
            "1",
        ])
        .args(["--dtmf-at", "2", "--hangup-after", "30"])
        .current_dir(w)
        .output()
        .expect("dial");
    let caller = common::report(&dial);
    let log = serve_log();
    let tail: String = log
        .lines()
        .rev()
        .take(60)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    let agent = agent_report(wait_output(phone, Duration::from_secs(15)), &tail);
    assert_eq!(caller["status"], 200, "{caller}\n{tail}");
    assert_eq!(
        caller["ended_by"], "local",
        "the caller talked until it hung up: {caller}\n{tail}"
    );
    assert_eq!(agent["status"], 200, "agent 1001 answered: {agent}\n{tail}");
    assert_eq!(agent["media"]["dtmf_received"], "", "{agent}");
    assert!(!log.contains("caller asked to be called back"), "{tail}");
    through(&path(&log), &["consult", "agent"]);
    // Each heard the other: the agent's recording is the caller's 440 Hz.
    let heard = samples(&w.join("agent.wav"));
    assert!(heard.len() > 8000 * 10, "{} samples", heard.len());
    let f = frequency(&heard[heard.len() / 2..]);
    assert!((f - 440.0).abs() < 30.0, "the agent heard {f:.0} Hz");
    assert!(
        caller["media"]["received_rms"].as_f64().unwrap_or(0.0) > 500.0,
        "{caller}"
    );
    // The call's record, as the supervisor sees it: agent 1001 (A1001).
    let api = common::api::Api::new(Net(0));
    let token = api.login("supervisor", "supervisor-demo");
    let deadline = Instant::now() + Duration::from_secs(40);
    let record = loop {
        let (status, v) = api.get("/api/v1/calls?limit=1", &token);
        assert_eq!(status, 200, "{v}");
        if let Some(r) = v["calls"].as_array().and_then(|c| c.first()).cloned() {
            break r;
        }
        assert!(Instant::now() < deadline, "no call record:\n{tail}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(record["agent_id"], "A1001", "{record:#}");
    assert_eq!(record["ivr_vars"]["line"], "consultation", "{record:#}");
    assert!(record["callback_requested_at"].is_null(), "{record:#}");
    // cargo run --release -- records --format table
    let table = Command::new(bin)
        .args(["records", "--format", "table"])
        .current_dir(w)
        .output()
        .expect("records");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("A1001"), "{table}");
    drop(serve);
}

/// One press sent both ways at once (RFC 4733 and the tone in the audio,
/// as some gateways do) during the welcome: the menu takes it once, the
/// queue never sees it, the agent answers.
#[test]
fn a_key_sent_as_tone_and_event_at_once_is_one_press_across_the_hand_over() {
    let net = Net(196);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = shipped_config(net, dir.path());
    let h = Hotline::start_with(net, dir, &text);
    let phone = common::start_phone(&h, 0, "1001", &["--tone", "600", "--answer-after", "1"]);
    let out = common::dial(
        net,
        "12345",
        &[
            "--tone",
            "440",
            "--dtmf",
            "1",
            "--dtmf-at",
            "2",
            "--dtmf-mode",
            "both",
            "--hangup-after",
            "8",
        ],
    )
    .output()
    .expect("dial");
    let caller = common::report(&out);
    let agent = agent_report(wait_output(phone, Duration::from_secs(20)), &h.tail_log());
    let log = h.log();
    assert_eq!(caller["status"], 200, "{caller}");
    assert_eq!(caller["ended_by"], "local", "{caller}\n{}", h.tail_log());
    assert_eq!(agent["status"], 200, "{agent}");
    assert_eq!(agent["media"]["dtmf_received"], "", "{agent}");
    assert!(
        !log.contains("caller asked to be called back"),
        "{}",
        h.tail_log()
    );
    through(&path(&log), &["consult", "agent"]);
}
