//! A blind transfer whose target is not reached returns the caller (issue
//! 12 item 5): to the agent who transferred (their phone rings again and
//! the caller talks with them), or, when that agent cannot be reached
//! either, to the queue of the call's group at the place the call had;
//! never a hang-up. Driven from outside: a real caller (`hotline dial`),
//! real agent phones (`hotline phone`), SIPp phones and a SIPp trunk that
//! refuse or never answer, and the agents' API sessions.
//!
//! Tones stay clear of the music on hold's notes (523–880 Hz): A01 sends
//! 1400 Hz, A03 1800 Hz, the caller 440 Hz (a second caller 350 Hz).

mod common;

use std::path::Path;
use std::process::{Child, Output};
use std::time::Duration;

use common::api::Api;
use common::{Hotline, Net, Sipp};
use serde_json::{json, Value};

/// A01 in group `general` (signed in by its phone); A02 outside it; A03 in
/// it but signing in by API; 12399 queues for `general`.
const SETUP: &str = r#"
[[group]]
id = "general"
acw_secs = 1
ring_timeout_secs = 5

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

[[agent]]
user = "2003"
password = "pass2003"
job_number = "A03"
skills = { general = 5 }

[[quick_transfer]]
label = "12328 交通运输"
number = "12328"
trunk = "carrier"

[[user]]
username = "agent-1"
role = "agent"
agent_id = "A01"
password = "agent-1-password"

[[user]]
username = "agent-3"
role = "agent"
agent_id = "A03"
password = "agent-3-password"

[[user]]
username = "sup"
role = "supervisor"
password = "sup-password"
"#;

/// The setup with 12399 queueing for `general` directly.
fn queue_setup() -> String {
    format!("{SETUP}\n[[did]]\nnumber = \"12399\"\nqueue = \"general\"\n")
}

fn samples(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("wav");
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

/// Whether `hz` carries more than half of the energy of this 20 ms window
/// (Goertzel).
fn tone_in(w: &[i16], hz: f64) -> bool {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &x in w {
        let x = f64::from(x);
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    energy > 1e3 && (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (80.0 * energy) > 0.5
}

/// 20 ms windows of `audio` carrying `hz`.
fn windows_with(audio: &[i16], hz: f64) -> usize {
    audio.chunks_exact(160).filter(|w| tone_in(w, hz)).count()
}

/// Stretches of at least 0.4 s (20 windows) of `hz`, separated by other
/// sound: how many times the listener heard that party.
fn stretches_of(audio: &[i16], hz: f64) -> usize {
    let mut runs = 0;
    let mut run = 0;
    for w in audio.chunks_exact(160) {
        if tone_in(w, hz) {
            run += 1;
            if run == 20 {
                runs += 1;
            }
        } else {
            run = 0;
        }
    }
    runs
}

/// A child process killed when the test ends, even by a panic (a phone
/// left running would hold its address for the next run).
struct Proc(Option<Child>);

impl Proc {
    /// Wait for it to exit; its output.
    fn output(mut self) -> Output {
        self.0.take().expect("running").wait_with_output().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

/// `hotline phone` as agent `user` on agent address `i` (see
/// `common::start_phone`).
fn phone(h: &Hotline, i: u8, user: &str, args: &[&str]) -> Proc {
    Proc(Some(common::start_phone(h, i, user, args)))
}

/// A caller with `tone` dialling 12399 from port `port`, hanging up after
/// `secs`, recording what it hears to `wav`.
fn dial(h: &Hotline, port: u16, tone: &str, secs: &str, wav: &Path) -> Proc {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["dial", &format!("sip:12399@{}", h.net.sip())])
        .args(["--bind", &format!("{}:{port}", h.net.carrier())])
        .args(["--tone", tone, "--hangup-after", secs])
        .args(["--record", wav.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Proc(Some(child))
}

/// Wait (bounded) until the log contains `what` `n` times.
fn wait_log(h: &Hotline, what: &str, n: usize, within: Duration) {
    h.wait_for(what, within, |_| h.log().matches(what).count() >= n);
}

/// Every JSON report a phone printed (one line per call).
fn reports(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The stored record and events of the test's one call from 12399
/// (bounded wait until it is complete).
fn record_of_first_call(api: &Api, token: &str) -> (Value, Vec<Value>) {
    for _ in 0..100 {
        let (_, v) = api.get("/api/v1/calls", token);
        let first = v["calls"]
            .as_array()
            .and_then(|c| {
                c.iter()
                    .min_by_key(|c| c["started_at"].as_str().map(String::from))
            })
            .cloned();
        if let Some(call) = first {
            let id = call["call_id"].as_str().unwrap_or_default().to_string();
            let (_, full) = api.get(&format!("/api/v1/calls/{id}"), token);
            let events = full["events"].as_array().cloned().unwrap_or_default();
            return (call, events);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    (Value::Null, Vec::new())
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let agent = e["data"]["agent_id"].as_str().unwrap_or("");
            format!("{} {agent}", e["type"].as_str().unwrap_or("?"))
                .trim()
                .to_string()
        })
        .collect()
}

/// A01 blind-transfers the caller to A02, whose phone answers 486 Busy
/// Here: A01's phone rings again, A01 answers and talks with the caller
/// (who hears music meanwhile and is never hung up on); the record tells
/// the story.
#[test]
fn a_transfer_to_a_busy_agent_returns_the_caller_to_the_agent() {
    let net = Net(180);
    let h = Hotline::start(net, &queue_setup());
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let (caller_wav, agent_wav) = (wav.path().join("caller.wav"), wav.path().join("a01.wav"));
    // A01's phone answers twice and records (the second call overwrites).
    let phone1 = phone(
        &h,
        0,
        "2001",
        &[
            "--tone",
            "1400",
            "--answer-after",
            "0.3",
            "--calls",
            "2",
            "--record",
            agent_wav.to_str().unwrap(),
        ],
    );
    common::register(&h, "2002", &net.agent(1));
    let busy = Sipp::start("agent_busy.xml", &net.agent(1), &["-m", "1"]);
    let caller = dial(&h, 5062, "440", "14", &caller_wav);
    wait_log(&h, "connected caller_rtp", 1, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(1500));
    let (s, v) = api.post("/api/v1/agent/call/transfer", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(s, 202, "{v}");
    busy.wait(Duration::from_secs(30)).assert_ok(&h);

    let caller = common::report(&caller.output());
    assert_eq!(caller["status"], 200, "{caller}");
    assert_eq!(
        caller["ended_by"],
        "local",
        "the caller hung up in the end, hotline never did: {caller}\n{}",
        h.tail_log()
    );
    let calls = reports(&phone1.output());
    assert_eq!(calls.len(), 2, "A01's phone rang again: {calls:?}");
    assert!(calls.iter().all(|c| c["status"] == 200), "{calls:?}");
    // On A01's second call, A01 heard the caller; the caller heard A01,
    // then something else (music), then A01 again.
    let heard_by_agent = samples(&agent_wav);
    assert!(
        windows_with(&heard_by_agent, 440.0) > 50,
        "A01 talked with the caller again"
    );
    let heard = samples(&caller_wav);
    assert!(
        stretches_of(&heard, 1400.0) >= 2,
        "the caller heard A01 before and after the failed transfer"
    );

    let (record, events) = record_of_first_call(&api, &sup);
    assert_eq!(record["outcome"], "answered", "{record}");
    assert_eq!(record["agents"], json!(["A01"]), "{record}");
    let t = &record["transfers"][0];
    assert_eq!(t["from_agent"], "A01", "{record}");
    assert_eq!(t["target"], "A02", "{record}");
    assert_eq!(t["mode"], "blind", "{record}");
    assert_eq!(t["failure"]["reason"], "busy", "{record}");
    assert_eq!(t["failure"]["sip_code"], 486, "{record}");
    assert_eq!(t["failure"]["back_to"], "agent", "{record}");
    assert_eq!(t["failure"]["back_to_id"], "A01", "{record}");
    let k = kinds(&events);
    let failed = k.iter().position(|e| e == "call.transfer_failed");
    let again = k.iter().rposition(|e| e == "agent.answered A01");
    assert!(
        matches!((failed, again), (Some(f), Some(a)) if f < a),
        "transfer failed, then A01 answered again: {k:?}"
    );
}

/// A transfer to an agent whose phone is not registered fails at once, and
/// one to an outside number the trunk refuses (486) fails too: each time
/// the caller is back with A01.
#[test]
fn transfers_to_an_unregistered_agent_and_a_refused_number_return_the_caller() {
    let net = Net(181);
    let h = Hotline::start(net, &queue_setup());
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let caller_wav = wav.path().join("caller.wav");
    let phone1 = phone(
        &h,
        0,
        "2001",
        &["--tone", "1400", "--answer-after", "0.3", "--calls", "3"],
    );
    // The carrier's trunk refuses the outside call.
    let trunk = Sipp::start("agent_busy.xml", &net.carrier(), &["-m", "1"]);
    let caller = dial(&h, 5062, "440", "20", &caller_wav);
    wait_log(&h, "connected caller_rtp", 1, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(1000));
    let (s, v) = api.post("/api/v1/agent/call/transfer", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(s, 202, "{v}");
    wait_log(&h, "connected caller_rtp", 2, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1000));
    let (s, v) = api.post(
        "/api/v1/agent/call/transfer",
        &a1,
        r#"{"to_number":"12328"}"#,
    );
    assert_eq!(s, 202, "{v}");
    trunk.wait(Duration::from_secs(30)).assert_ok(&h);
    wait_log(&h, "connected caller_rtp", 3, Duration::from_secs(20));

    let caller = common::report(&caller.output());
    assert_eq!(caller["ended_by"], "local", "{caller}\n{}", h.tail_log());
    let calls = reports(&phone1.output());
    assert_eq!(calls.len(), 3, "A01 took the caller back twice: {calls:?}");
    let heard = samples(&caller_wav);
    assert!(stretches_of(&heard, 1400.0) >= 3, "A01 three times");

    let (record, events) = record_of_first_call(&api, &sup);
    assert_eq!(record["outcome"], "answered", "{record}");
    let t = record["transfers"].as_array().cloned().unwrap_or_default();
    assert_eq!(t.len(), 2, "{record}");
    assert_eq!(t[0]["target"], "A02", "{record}");
    assert_eq!(t[0]["failure"]["reason"], "unreachable", "{record}");
    assert_eq!(t[0]["failure"]["back_to"], "agent", "{record}");
    assert_eq!(t[1]["target_kind"], "number", "{record}");
    assert_eq!(t[1]["target"], "12328", "{record}");
    assert_eq!(t[1]["from_agent"], "A01", "{record}");
    assert_eq!(t[1]["failure"]["reason"], "busy", "{record}");
    assert_eq!(t[1]["failure"]["sip_code"], 486, "{record}");
    let k = kinds(&events);
    assert_eq!(
        k.iter().filter(|e| *e == "call.transfer_failed").count(),
        2,
        "{k:?}"
    );
}

/// A01 transfers the caller (X) to A02, who never answers, and signs out
/// meanwhile: X goes back to the queue at the place X had, before a caller
/// (Y) who has waited since after X arrived, and the next agent (A03)
/// gets X first.
#[test]
fn when_the_agent_cannot_be_reached_either_the_caller_is_back_at_its_place_in_the_queue() {
    let net = Net(182);
    // After-call work long enough that A01 is still in it (not offered Y)
    // when signing out.
    let setup = queue_setup().replace("acw_secs = 1\n", "acw_secs = 30\n");
    let h = Hotline::start(net, &setup);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let a3 = api.login("agent-3", "agent-3-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let (x_wav, y_wav, a3_wav) = (
        wav.path().join("x.wav"),
        wav.path().join("y.wav"),
        wav.path().join("a03.wav"),
    );
    // A01's phone stays registered after its call (a phone that exits
    // unregisters, and auto-login would sign A01 out before the test sees
    // the after-call work).
    let phone1 = phone(
        &h,
        0,
        "2001",
        &["--tone", "1400", "--answer-after", "0.3", "--calls", "2"],
    );
    // A03's phone is registered but A03 is not signed in yet.
    let phone3 = phone(
        &h,
        2,
        "2003",
        &[
            "--tone",
            "1800",
            "--answer-after",
            "0.3",
            "--hangup-after",
            "3",
            "--record",
            a3_wav.to_str().unwrap(),
        ],
    );
    common::register(&h, "2002", &net.agent(1));
    let never = Sipp::start("agent_noanswer.xml", &net.agent(1), &["-m", "1"]);
    let x = dial(&h, 5062, "440", "40", &x_wav);
    wait_log(&h, "connected caller_rtp", 1, Duration::from_secs(15));
    // Y arrives after X and waits: A01 is busy, A03 not signed in.
    let y = dial(&h, 5064, "350", "40", &y_wav);
    wait_log(&h, ": queued call=", 2, Duration::from_secs(15));
    let (s, v) = api.post("/api/v1/agent/call/transfer", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(s, 202, "{v}");
    // A01 signs out during after-call work, while A02's phone rings.
    assert!(api.wait_board(&sup, "A01", "after_call_work"), "A01 in ACW");
    let (s, v) = api.post("/api/v1/agent/state", &a1, r#"{"state":"logged_out"}"#);
    assert_eq!(s, 200, "{v}");
    never.wait(Duration::from_secs(30)).assert_ok(&h);
    wait_log(&h, ": queued call=", 3, Duration::from_secs(20));
    // Now A03 signs in: the ACD offers the head of the queue, X.
    let (s, v) = api.post("/api/v1/agent/state", &a3, r#"{"state":"logged_in"}"#);
    assert_eq!(s, 200, "{v}");
    let a3_call = common::report(&phone3.output());
    assert_eq!(a3_call["status"], 200, "{a3_call}");
    let heard_by_a3 = samples(&a3_wav);
    assert!(
        windows_with(&heard_by_a3, 440.0) > 50 && windows_with(&heard_by_a3, 350.0) < 5,
        "A03 got X (440 Hz), who had waited longer, not Y (350 Hz)"
    );
    drop(phone1);
    let x = common::report(&x.output());
    assert_eq!(x["ended_by"], "remote", "A03 hung up on X: {x}");
    let heard_by_x = samples(&x_wav);
    assert!(windows_with(&heard_by_x, 1800.0) > 50, "X heard A03");
    drop(y);
    // A03 ends the after-call work: X's record is complete.
    assert!(api.wait_board(&sup, "A03", "after_call_work"), "A03 in ACW");
    let (s, v) = api.post("/api/v1/agent/state", &a3, r#"{"state":"ready"}"#);
    assert_eq!(s, 200, "{v}");

    let (record, events) = record_of_first_call(&api, &sup);
    assert_eq!(record["agents"], json!(["A01", "A03"]), "{record}");
    let t = &record["transfers"][0];
    assert_eq!(t["target"], "A02", "{record}");
    assert_eq!(t["failure"]["reason"], "no_answer", "{record}");
    assert_eq!(t["failure"]["back_to"], "queue", "{record}");
    assert_eq!(t["failure"]["back_to_id"], "general", "{record}");
    let k = kinds(&events);
    let failed = k.iter().position(|e| e == "call.transfer_failed");
    let requeued = k.iter().rposition(|e| e == "queue.entered");
    assert!(
        matches!((failed, requeued), (Some(f), Some(q)) if f < q),
        "transfer failed, then the queue again: {k:?}"
    );
}

/// The same for a call an IVR flow queued (the flow path): the transfer to
/// a busy A02 fails and A01 has the caller again.
#[test]
fn in_a_flow_a_failed_transfer_returns_the_caller_to_the_agent() {
    let net = Net(183);
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows");
    let cal = dir.path().join("cal/schedules");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::create_dir_all(&cal).unwrap();
    std::fs::write(
        flows.join("line.toml"),
        r#"
name = "line"
dids = ["12399"]
entry = "q"
[nodes.q]
kind = "queue"
group = "general"
on_timeout = "bye"
[nodes.bye]
kind = "hangup"
"#,
    )
    .unwrap();
    let ivr = format!(
        "\n[ivr]\nflows_dir = \"{}\"\ncalendars_dir = \"{}\"\n",
        flows.display(),
        dir.path().join("cal").display()
    );
    let data = dir.path().join("var");
    let text = common::config(net, &data, &format!("{SETUP}{ivr}"));
    let h = Hotline::start_with(net, dir, &text);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let caller_wav = wav.path().join("caller.wav");
    let phone1 = phone(
        &h,
        0,
        "2001",
        &["--tone", "1400", "--answer-after", "0.3", "--calls", "2"],
    );
    common::register(&h, "2002", &net.agent(1));
    let busy = Sipp::start("agent_busy.xml", &net.agent(1), &["-m", "1"]);
    let caller = dial(&h, 5062, "440", "12", &caller_wav);
    wait_log(&h, "connected caller_rtp", 1, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(1500));
    let (s, v) = api.post("/api/v1/agent/call/transfer", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(s, 202, "{v}");
    busy.wait(Duration::from_secs(30)).assert_ok(&h);
    let caller = common::report(&caller.output());
    assert_eq!(caller["ended_by"], "local", "{caller}\n{}", h.tail_log());
    let calls = reports(&phone1.output());
    assert_eq!(calls.len(), 2, "A01's phone rang again: {calls:?}");
    let heard = samples(&caller_wav);
    assert!(stretches_of(&heard, 1400.0) >= 2, "A01 twice");
    let (record, _) = record_of_first_call(&api, &sup);
    assert_eq!(record["flow"]["name"], "line", "{record}");
    let t = &record["transfers"][0];
    assert_eq!(t["failure"]["reason"], "busy", "{record}");
    assert_eq!(t["failure"]["back_to"], "agent", "{record}");
    assert_eq!(t["failure"]["back_to_id"], "A01", "{record}");
}
