//! Races across hand-overs, with real clients (issue 13 §4: "its races";
//! the call must survive them whoever wins): a CANCEL crossing the agent's
//! 200, an ACD offer answered after the caller left, the caller hanging up
//! while a blind transfer's target rings, and the agent hanging up while
//! the caller's re-INVITE (hold) is pending. SIPp plays the carrier and the
//! agents' phones where a message must come at a chosen moment;
//! `hotline dial`/`hotline phone` play the parties that talk.
//!
//! No test asserts which side of a race won or how long anything took
//! (a shared, noisy machine): only the clean end, within generous bounds:
//! every leg ended with a final response or a BYE (the SIPp scenarios
//! require it), no call, dialog or RTP port left (`/healthz`), the agent
//! back in the ACD, the call's record telling what happened.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::api::Api;
use common::{register, Hotline, Net, Sipp};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

/// A01 (phone 2001) in group `general`, signed in by its phone; A02 (phone
/// 2002) outside it (a blind transfer's target); 12399 queues for
/// `general`, whose offers ring for 20 s (longer than any race here).
const ACD: &str = r#"
[[group]]
id = "general"
acw_secs = 1
ring_timeout_secs = 20

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

/// A child process killed when the test ends, even by a panic (a phone
/// left running would hold its address for the next run).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Wait until no call, dialog or RTP port is left.
fn assert_idle(h: &Hotline) {
    h.wait_for("the switch to be idle", Duration::from_secs(30), |v| {
        v["calls"]["active"] == 0
            && v["sip"]["dialogs"] == 0
            && v["sip"]["legs_routed"] == 0
            && v["media"]["rtp_port_pairs_in_use"] == 0
    });
}

/// `agent`'s state in the ACD (`/api/v1/acd/stats`).
fn acd_state(h: &Hotline, agent: &str) -> Value {
    let body = h.acd_stats().expect("ACD stats");
    let stats: Value = serde_json::from_str(&body).expect("JSON");
    stats["stats"]["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["agent"] == agent))
        .map(|a| a["state"].clone())
        .unwrap_or(Value::Null)
}

/// Wait (bounded) until the ACD has `agent` back: idle, after its
/// after-call work (1 s here) if it had any; never left `talking` or
/// `ringing`.
fn assert_agent_back(h: &Hotline, agent: &str) {
    h.wait_for(
        &format!("{agent} to be idle again"),
        Duration::from_secs(20),
        |_| acd_state(h, agent) == "idle",
    );
}

/// The carrier that cancels `cancel_after_ms` after the call rings
/// (`carrier_cancel_crossing.xml`, whose wait is a `<recv>` timeout SIPp
/// substitutes no `-key` in: a copy with this value is written to the
/// hotline's directory).
fn carrier_cancelling_after(h: &Hotline, number: &str, cancel_after_ms: u64) -> Sipp {
    let name = "carrier_cancel_crossing.xml";
    let template = std::fs::read_to_string(common::scenario(name)).expect("scenario");
    let wait = r#"timeout="1000" ontimeout="cancel""#;
    assert_eq!(template.matches(wait).count(), 1, "the wait to rewrite");
    let copy: PathBuf = h
        .dir
        .path()
        .join(format!("carrier_cancel_after_{cancel_after_ms}.xml"));
    let text = template.replace(
        wait,
        &format!(r#"timeout="{cancel_after_ms}" ontimeout="cancel""#),
    );
    std::fs::write(&copy, text).expect("write scenario");
    let sip = h.net.sip();
    // An absolute path: `scenario()` joins it as it is.
    Sipp::start(
        copy.to_str().expect("path"),
        &h.net.carrier(),
        &["-s", number, "-m", "1", &sip],
    )
}

/// The test's `n` call records once all are stored and complete (none
/// left waiting for an after-call work that never comes; bounded wait);
/// else panics with the last answer.
fn complete_records(api: &Api, token: &str, n: usize) -> Vec<Value> {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (_, v) = api.get("/api/v1/calls", token);
        if let Some(calls) = v["calls"].as_array() {
            if calls.len() == n && calls.iter().all(|c| c["complete"] == true) {
                return calls.clone();
            }
        }
        last = v;
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{n} complete call records expected: {last:#}");
}

/// The test's one call record once it is stored and complete.
fn only_record(api: &Api, token: &str) -> Value {
    complete_records(api, token, 1).remove(0)
}

/// Race 1: the carrier's CANCEL and the agent's 200 cross, at several offsets
/// around the answer (the phone answers 1 s after it starts ringing; the
/// carrier gives up 1 s ± offset after its 180). Whichever wins, the end
/// is clean: the carrier got 487, or the 200 and then ended the call; the
/// agent's phone got the CANCEL, or an ACK and a BYE; nothing is left,
/// the ACD has the agent back and every call's record is complete. (When
/// the agent's 200 reached hotline just after the caller's CANCEL, the ACD
/// kept the agent talking and the record waited for them: fixed in
/// `call::ringing`, `Ringer::drop_answer`.)
#[test]
fn a_cancel_crossing_the_agents_answer_ends_cleanly_whichever_wins() {
    let net = Net(203);
    let h = Hotline::start(net, ACD);
    let api = Api::new(net);
    let sup = api.login("sup", "sup-password");
    register(&h, "2001", &net.agent(0));
    assert_agent_back(&h, "A01");
    let offsets = [-100i64, -50, -20, -10, -5, 0, 5, 10, 15, 20, 50, 100];
    let mut outcomes = Vec::new();
    for offset in offsets {
        let answered_before = h.counter("/calls/answered");
        let agent = Sipp::start("agent_answer_or_cancel.xml", &net.agent(0), &["-m", "1"]);
        std::thread::sleep(Duration::from_millis(300));
        let cancel_after = u64::try_from(1000 + offset).expect("positive");
        let carrier = carrier_cancelling_after(&h, "12399", cancel_after);
        carrier.wait(T).assert_ok(&h);
        agent.wait(T).assert_ok(&h);
        assert_idle(&h);
        assert_agent_back(&h, "A01");
        let won = if h.counter("/calls/answered") > answered_before {
            "answer"
        } else {
            "cancel"
        };
        outcomes.push((offset, won));
    }
    // Which side won is the machine's business; said for whoever reads
    // the output.
    eprintln!("offset (ms) → winner: {outcomes:?}");
    assert_eq!(h.counter("/calls/active"), 0);
    // Every call has its record, complete: answered (then the caller hung
    // up) or abandoned while it rang.
    for record in complete_records(&api, &sup, offsets.len()) {
        assert!(
            record["outcome"] == "answered" || record["outcome"] == "abandoned_ringing",
            "{record}"
        );
    }
}

/// Race 2: a queued caller gives up while the agent's phone rings, and the phone
/// answers anyway: its 200 crosses hotline's CANCEL. hotline ACKs that 200
/// and hangs the leg up, the agent is back, the record says the caller
/// abandoned while it rang, and nothing leaks.
#[test]
fn an_acd_offer_answered_after_the_caller_left_is_hung_up_and_counted_abandoned() {
    let net = Net(204);
    let h = Hotline::start(net, ACD);
    let api = Api::new(net);
    let sup = api.login("sup", "sup-password");
    register(&h, "2001", &net.agent(0));
    assert_agent_back(&h, "A01");
    // The phone rings until the CANCEL and then answers (200 for the
    // INVITE before the 200 for the CANCEL); it requires the ACK and BYE.
    let agent = Sipp::start("agent_answer_after_cancel.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let carrier = carrier_cancelling_after(&h, "12399", 1500);
    carrier.wait(T).assert_ok(&h);
    agent.wait(T).assert_ok(&h);
    assert_idle(&h);
    assert_agent_back(&h, "A01");
    assert_eq!(
        h.counter("/calls/answered"),
        0,
        "the caller was never connected"
    );
    let record = only_record(&api, &sup);
    assert_eq!(record["outcome"], "abandoned_ringing", "{record}");
    assert_eq!(record["complete"], true, "{record}");
}

/// Race 3: the caller talks with A01, who blind-transfers them to A02; A02's
/// phone rings (and never answers) and the caller hangs up meanwhile:
/// A02's phone gets a CANCEL, A01 is back in the ACD, the call's record is
/// complete with its one recording, and no call is left.
#[test]
fn a_caller_hanging_up_while_a_blind_transfer_rings_cancels_the_target() {
    let net = Net(205);
    // The transfer rings for 20 s (the default test config's 8 s could
    // end it before the caller hangs up).
    let dir = tempfile::tempdir().expect("tempdir");
    let text = common::config(net, &dir.path().join("var"), ACD)
        .replace("ring_timeout_secs = 8\n", "ring_timeout_secs = 20\n");
    let h = Hotline::start_with(net, dir, &text);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    // A01's phone stays registered after the call (it would take a
    // second one): a phone that leaves would sign A01 out of the ACD.
    let mut phone1 = Proc(common::start_phone(
        &h,
        0,
        "2001",
        &["--tone", "600", "--answer-after", "0.3", "--calls", "2"],
    ));
    register(&h, "2002", &net.agent(1));
    let target = Sipp::start("agent_noanswer.xml", &net.agent(1), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    // The caller hangs up 10 s after the answer: the transfer (at once)
    // is ringing by then, and rings for 20 s.
    let caller = common::dial(net, "12399", &["--tone", "440", "--hangup-after", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hotline dial");
    h.wait_for("the call to connect", Duration::from_secs(20), |_| {
        h.log().contains("connected caller_rtp")
    });
    let (s, v) = api.post("/api/v1/agent/call/transfer", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(s, 202, "{v}");
    let caller = common::report(&caller.wait_with_output().expect("caller"));
    assert_eq!(caller["ended_by"], "local", "{caller}");
    // A02's phone stopped ringing: its scenario requires the CANCEL.
    target.wait(T).assert_ok(&h);
    assert_idle(&h);
    assert_agent_back(&h, "A01");
    let mut out = String::new();
    phone1.0.kill().ok();
    if let Some(mut stdout) = phone1.0.stdout.take() {
        stdout.read_to_string(&mut out).ok();
    }
    let first: Value = out
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    assert_eq!(first["ended_by"], "remote", "A01 was let go: {first}");

    let record = only_record(&api, &sup);
    assert_eq!(record["complete"], true, "{record}");
    assert_eq!(record["outcome"], "answered", "{record}");
    assert_eq!(record["agents"], json!(["A01"]), "{record}");
    assert_eq!(record["transfers"][0]["from_agent"], "A01", "{record}");
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
}

/// Race 4: the mirror of `calls.rs`' BYE-during-a-pending-re-INVITE: the carrier
/// holds, hotline reflects the hold to the agent, whose phone says only
/// 100 Trying and hangs up instead. The agent's BYE is answered, the
/// carrier's pending re-INVITE is answered 487 (the call ended first,
/// RFC 3261 §15.1.2) and the carrier gets a BYE, in either order; nothing
/// is left.
#[test]
fn an_agent_hanging_up_while_the_callers_reinvite_is_pending_releases_both_legs() {
    let net = Net(206);
    let h = Hotline::start(net, "");
    register(&h, "1001", &net.agent(0));
    let agent = Sipp::start("agent_reinvite_then_bye.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let sip = net.sip();
    Sipp::start(
        "carrier_hold_wait_bye.xml",
        &net.carrier(),
        &["-s", "12345", "-m", "1", &sip],
    )
    .wait(T)
    .assert_ok(&h);
    agent.wait(T).assert_ok(&h);
    assert_idle(&h);
    assert_eq!(h.counter("/calls/answered"), 1);
}
