//! Agent and supervisor operations through the API (CTI issue §1–§5),
//! against a real hotline, real phones (`hotline phone`) and a real caller
//! (`hotline dial`): the agent signs in and changes state by API, gets a
//! screen pop with the caller's history on the WebSocket when the phone
//! rings, holds and resumes; a supervisor whispers into the call by API
//! (hotline rings the supervisor's own phone) — checked on audio: the agent
//! hears the whisper, the caller never does — then force-releases it.
//! Wrong roles, another tenant's agent and wrong states are refused.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::api::{code, Api};
use common::{Hotline, Net};
use hotline::events::{CallStart, CdrBuilder, EndCause, HangupParty, IdGenerator, IdSource};
use serde_json::{json, Value};

const SETUP: &str = r#"
[[tenant]]
id = "a"
[[tenant]]
id = "b"

[[group]]
id = "general"
tenant = "a"
acw_secs = 1
queue_media = true

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
tenant = "a"
skills = { general = 5 }

[[agent]]
user = "3001"
password = "pass3001"
job_number = "S01"
tenant = "a"
supervisor = true

[[agent]]
user = "4001"
password = "pass4001"
job_number = "B01"
tenant = "b"

[[did]]
number = "12399"
tenant = "a"
queue = "general"

[[user]]
username = "agent-a"
role = "agent"
tenant = "a"
agent_id = "A01"
password = "agent-a-password"

[[user]]
username = "sup-a"
role = "supervisor"
tenant = "a"
agent_id = "S01"
password = "sup-a-password"

[[user]]
username = "sup-b"
role = "supervisor"
tenant = "b"
password = "sup-b-password"
"#;

/// The caller's earlier call, for the screen pop's history.
fn store_history(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("pre", 0));
    let t0 = 1_795_300_000_000;
    let start = CallStart {
        call_id: "earlier-call".into(),
        serial: "20261122100000-000001".into(),
        tenant: "a".into(),
        direction: hotline::events::model::Direction::Inbound,
        caller: "13800138000".into(),
        called: "12399".into(),
        caller_area: None,
        confidential: false,
    };
    let (mut b, e) = CdrBuilder::started(ids, t0, start).unwrap();
    let mut evs = vec![e];
    evs.extend(b.queued(t0 + 1_000, "general", None, 0).unwrap());
    evs.extend(b.answered(t0 + 3_000, "A01").unwrap());
    evs.extend(
        b.ended(t0 + 90_000, HangupParty::Caller, EndCause::default())
            .unwrap(),
    );
    evs.extend(b.acw_ended(t0 + 95_000, "A01").unwrap());
    common::store_events(data, evs);
}

/// The record of the test's one call, once it is stored (bounded).
fn only_record(api: &Api, token: &str) -> Value {
    for _ in 0..50 {
        let (_, v) = api.get("/api/v1/calls", token);
        if v["count"] == 1 {
            return v["calls"][0].clone();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Value::Null
}

/// A caller (440 Hz, recording what it hears to `wav`) dials 12399 and
/// hangs up after `secs`; returns once the call is connected to an agent.
fn call_in(h: &Hotline, secs: &str, wav: &Path) -> std::process::Child {
    let caller = common::citizen(h.net, secs, wav);
    h.wait_for("the call to connect", Duration::from_secs(15), |_| {
        h.log().contains("connected caller_rtp")
    });
    caller
}

/// Collect the WebSocket's messages in the background.
fn listen(api: &Api, token: &str) -> Arc<Mutex<Vec<Value>>> {
    let url = format!(
        "{}/api/v1/events?token={token}",
        api.base.replace("http://", "ws://")
    );
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    api.rt.spawn(async move {
        use futures::StreamExt;
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        while let Some(Ok(msg)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                    sink.lock().unwrap().push(v);
                }
            }
        }
    });
    got
}

fn samples(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("wav");
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

/// Windows (20 ms) of `audio` where `hz` carries more than `min` of the
/// energy (Goertzel).
fn windows_with(audio: &[i16], hz: f64, min: f64) -> usize {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    audio
        .chunks_exact(160)
        .filter(|w| {
            let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
            for &x in *w {
                let x = f64::from(x);
                energy += x * x;
                let s0 = x + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            energy > 1e3 && (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (80.0 * energy) > min
        })
        .count()
}

#[test]
fn agent_state_screen_pop_hold_and_a_supervisor_whisper_and_release_by_api() {
    let net = Net(118);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("var");
    store_history(&data);
    let text = common::config(net, &data, SETUP);
    let h = Hotline::start_with(net, dir, &text);
    let api = Api::new(net);
    let agent = api.login("agent-a", "agent-a-password");
    let sup = api.login("sup-a", "sup-a-password");
    let sup_b = api.login("sup-b", "sup-b-password");
    let wav = tempfile::tempdir().unwrap();
    let (agent_wav, caller_wav, sup_wav) = (
        wav.path().join("agent.wav"),
        wav.path().join("caller.wav"),
        wav.path().join("sup.wav"),
    );

    // --- sign in and state changes -------------------------------------
    let (s, v) = api.post("/api/v1/agent/state", &agent, r#"{"state":"logged_in"}"#);
    assert_eq!(s, 200, "{v}");
    let (s, v) = api.post("/api/v1/agent/state", &agent, r#"{"state":"ready"}"#);
    assert_eq!((s, code(&v)), (409, "wrong_state"), "already idle: {v}");
    let (s, _) = api.post(
        "/api/v1/agent/state",
        &agent,
        r#"{"state":"not_ready","reason":"break"}"#,
    );
    assert_eq!(s, 200);
    let (s, v) = api.post("/api/v1/agent/state", &agent, r#"{"state":"ready"}"#);
    assert_eq!(s, 200, "{v}");
    // Refused: another agent, an unknown state, bad JSON, another tenant.
    let (s, v) = api.post(
        "/api/v1/agent/state",
        &agent,
        r#"{"state":"ready","agent_id":"B01"}"#,
    );
    assert_eq!((s, code(&v)), (403, "forbidden"));
    let (s, v) = api.post("/api/v1/agent/state", &agent, r#"{"state":"asleep"}"#);
    assert_eq!((s, code(&v)), (400, "bad_request"));
    let (s, v) = api.post("/api/v1/agent/state", &agent, "{oops");
    assert_eq!((s, code(&v)), (400, "bad_json"));
    let (s, v) = api.post(
        "/api/v1/agent/state",
        &sup_b,
        r#"{"state":"not_ready","agent_id":"A01"}"#,
    );
    assert_eq!((s, code(&v)), (404, "not_found"), "tenant b cannot see A01");
    let (s, v) = api.post("/api/v1/agent/call/hangup", &agent, "");
    assert_eq!((s, code(&v)), (409, "no_call"));
    let (s, v) = api.post("/api/v1/agent/call/hold", &agent, "");
    assert_eq!((s, code(&v)), (409, "no_call"));
    let (s, _) = api.get("/api/v1/wallboard", &agent);
    assert_eq!(s, 403);
    let (s, v) = api.post(
        "/api/v1/supervise",
        &agent,
        r#"{"agent_id":"A01","mode":"listen"}"#,
    );
    assert_eq!((s, code(&v)), (403, "forbidden"));
    let (s, v) = api.post(
        "/api/v1/supervise",
        &sup,
        r#"{"agent_id":"A01","mode":"shout"}"#,
    );
    assert_eq!((s, code(&v)), (400, "bad_request"));
    let (s, v) = api.post(
        "/api/v1/supervise",
        &sup,
        r#"{"agent_id":"A01","mode":"listen"}"#,
    );
    assert_eq!(
        (s, code(&v)),
        (409, "no_phone"),
        "the supervisor's phone is not registered yet: {v}"
    );

    // --- a call: screen pop, hold, whisper, release ----------------------
    let events = listen(&api, &agent);
    let agent_phone = common::start_phone(
        &h,
        0,
        "2001",
        &[
            "--tone",
            "600",
            "--answer-after",
            "0.5",
            "--record",
            agent_wav.to_str().unwrap(),
        ],
    );
    let sup_phone = common::start_phone(
        &h,
        1,
        "3001",
        &[
            "--tone",
            "1000",
            "--answer-after",
            "0.2",
            "--hangup-after",
            "4",
            "--record",
            sup_wav.to_str().unwrap(),
        ],
    );
    let caller = call_in(&h, "25", &caller_wav);
    let (s, v) = api.post("/api/v1/agent/call/hold", &agent, "");
    assert_eq!(s, 200, "{v}");
    let (s, v) = api.post("/api/v1/agent/call/hold", &agent, "");
    assert_eq!((s, code(&v)), (409, "wrong_state"));
    std::thread::sleep(Duration::from_millis(500));
    let (s, v) = api.post("/api/v1/agent/call/resume", &agent, "{}");
    assert_eq!(s, 200, "{v}");
    let (s, v) = api.get("/api/v1/wallboard", &sup);
    assert_eq!(s, 200);
    let a01 = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == "A01")
        .cloned()
        .unwrap_or_default();
    assert_eq!(a01["on_call"], true, "{v}");
    assert!(
        v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["tenant"] == "a"),
        "{v}"
    );
    assert_eq!(v["groups"][0]["group"], "general", "{v}");
    let (s, v) = api.get("/api/v1/wallboard", &sup_b);
    assert_eq!(s, 200);
    assert!(
        v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["agent_id"] != "A01"),
        "{v}"
    );

    let (s, v) = api.post(
        "/api/v1/supervise",
        &sup,
        r#"{"agent_id":"A01","mode":"whisper"}"#,
    );
    assert_eq!(s, 202, "{v}");
    h.wait_for("the supervisor to join", Duration::from_secs(10), |_| {
        h.log().contains("supervisor joined the call (API)")
    });
    // The supervisor whispers ~4 s, then hangs up; then release the call.
    std::thread::sleep(Duration::from_secs(5));
    let (s, v) = api.post("/api/v1/agent/call/hangup", &sup_b, r#"{"agent_id":"A01"}"#);
    assert_eq!(
        (s, code(&v)),
        (404, "not_found"),
        "tenant b cannot release it"
    );
    let (s, v) = api.post("/api/v1/agent/call/hangup", &sup, r#"{"agent_id":"A01"}"#);
    assert_eq!(s, 200, "{v}");
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(
        caller["ended_by"], "remote",
        "hotline released the call: {caller}"
    );
    let _ = agent_phone.wait_with_output();
    let _ = sup_phone.wait_with_output();

    // --- what each party heard --------------------------------------------
    let heard_by_agent = samples(&agent_wav);
    let heard_by_caller = samples(&caller_wav);
    let whisper = windows_with(&heard_by_agent, 1000.0, 0.2);
    assert!(
        whisper > 100,
        "the agent heard the whisper in {whisper} windows"
    );
    assert_eq!(
        windows_with(&heard_by_caller, 1000.0, 0.05),
        0,
        "the caller heard the whisper"
    );
    assert!(
        windows_with(&heard_by_caller, 600.0, 0.5) > 100,
        "the caller heard the agent"
    );
    assert!(
        windows_with(&samples(&sup_wav), 440.0, 0.2) > 50,
        "the supervisor heard the caller"
    );

    // --- the WebSocket: state, screen pop with history, the call's story ---
    let mut msgs = Vec::new();
    for _ in 0..50 {
        msgs = events.lock().unwrap().clone();
        if msgs.iter().any(|m| m["type"] == "call.ended") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let kinds: Vec<&str> = msgs.iter().filter_map(|m| m["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"hello"), "{kinds:?}");
    for k in [
        "agent.offered",
        "screen_pop",
        "agent.answered",
        "call.held",
        "call.resumed",
        "call.ended",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    let pop = msgs.iter().find(|m| m["type"] == "screen_pop").unwrap();
    assert_eq!(pop["agent_id"], "A01", "{pop}");
    assert_eq!(pop["called"], "12399", "{pop}");
    assert!(
        pop["caller"].as_str().unwrap_or("").ends_with("8000"),
        "{pop}"
    );
    assert_eq!(pop["history"][0]["call_id"], "earlier-call", "{pop}");
    assert_eq!(pop["history"][0]["agent_id"], "A01", "{pop}");
    assert!(
        msgs.iter()
            .all(|m| m["tenant"].is_null() || m["tenant"] == "a"),
        "only tenant a"
    );

    // --- the audit log names the supervisor's actions -----------------------
    let (_, audit) = api.get("/api/v1/admin/audit", &sup);
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"call.supervise") && actions.contains(&"call.force_release"),
        "{audit}"
    );
    let (s, v) = api.post("/api/v1/agent/call/hangup", &sup, r#"{"agent_id":"A01"}"#);
    assert_eq!((s, code(&v)), (409, "no_call"), "{v}");
}

const TRANSFER: &str = r#"
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

[[quick_transfer]]
label = "12328 交通运输"
number = "12328"

[[user]]
username = "agent-1"
role = "agent"
agent_id = "A01"
password = "agent-1-password"

[[user]]
username = "agent-2"
role = "agent"
agent_id = "A02"
password = "agent-2-password"

[[user]]
username = "sup"
role = "supervisor"
password = "sup-password"
"#;

#[test]
fn blind_transfer_to_another_agent_text_messages_and_active_calls() {
    let net = Net(119);
    let h = Hotline::start(net, TRANSFER);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let a2 = api.login("agent-2", "agent-2-password");
    let sup = api.login("sup", "sup-password");
    let inbox = listen(&api, &a2);
    let wav = tempfile::tempdir().unwrap();
    let caller_wav = wav.path().join("caller.wav");
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
    let (_, v) = api.get("/api/v1/agent/transfer-targets", &a1);
    assert_eq!(v["targets"][0]["number"], "12328", "{v}");
    let caller = call_in(&h, "20", &caller_wav);
    let (s, v) = api.get("/api/v1/calls/active", &sup);
    assert_eq!(s, 200);
    assert_eq!(v["calls"][0]["state"], "talking", "{v}");
    assert_eq!(v["calls"][0]["agent_id"], "A01", "{v}");
    assert_eq!(api.get("/api/v1/calls/active", &a1).0, 403);
    // A note to the colleague, then the transfer; bad requests first.
    let (s, _) = api.post(
        "/api/v1/messages",
        &a1,
        r#"{"to_agent":"A02","text":"市民反映噪音，转给你"}"#,
    );
    assert_eq!(s, 202);
    let (s, v) = api.post("/api/v1/messages", &a1, r#"{"to_agent":"A02","text":" "}"#);
    assert_eq!((s, code(&v)), (400, "bad_request"));
    let (s, v) = api.post(
        "/api/v1/agent/call/transfer",
        &a1,
        r#"{"to_agent":"A02","to_number":"110"}"#,
    );
    assert_eq!((s, code(&v)), (400, "bad_request"));
    let (s, v) = api.post(
        "/api/v1/agent/call/transfer",
        &a1,
        r#"{"to_number":"call me"}"#,
    );
    assert_eq!((s, code(&v)), (400, "bad_request"));
    let (s, v) = api.post("/api/v1/agent/call/transfer", &a1, r#"{"to_agent":"Z99"}"#);
    assert_eq!((s, code(&v)), (404, "not_found"));
    let (s, v) = api.post("/api/v1/agent/call/transfer", &a2, r#"{"to_agent":"A01"}"#);
    assert_eq!((s, code(&v)), (409, "no_call"), "A02 is not on a call: {v}");
    std::thread::sleep(Duration::from_secs(2));
    let (s, v) = api.post("/api/v1/agent/call/transfer", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(s, 202, "{v}");
    // A02 answers, talks 3 s and hangs up: the caller hears both agents.
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["ended_by"], "remote", "{caller}");
    let _ = phone1.wait_with_output();
    let _ = phone2.wait_with_output();
    let heard = samples(&caller_wav);
    assert!(windows_with(&heard, 600.0, 0.5) > 50, "the first agent");
    assert!(
        windows_with(&heard, 900.0, 0.5) > 50,
        "the second agent, after the transfer"
    );
    // The record: one call, two agents, a transfer to A02's phone.
    let record = only_record(&api, &sup);
    assert_eq!(record["agents"], json!(["A01", "A02"]), "{record}");
    assert_eq!(record["transfers"][0]["from_agent"], "A01", "{record}");
    assert_eq!(record["transfers"][0]["mode"], "blind", "{record}");
    assert_eq!(record["outcome"], "answered", "{record}");
    // The message reached A02's WebSocket.
    let msgs = inbox.lock().unwrap().clone();
    let note = msgs
        .iter()
        .find(|m| m["type"] == "message")
        .cloned()
        .unwrap_or_default();
    assert_eq!(note["text"], "市民反映噪音，转给你", "{msgs:?}");
    assert_eq!(note["from_agent"], "A01");
}

/// An agent the caller is put through to directly (a blind transfer to
/// them by name) is busy for the queue as well: the ACD shows them
/// talking, offers the next queued caller to someone else, and gives them
/// after-call work when the call ends. Tones: A01 600 Hz, A02 900 Hz.
#[test]
fn an_agent_a_call_is_transferred_to_is_busy_for_the_queue() {
    let net = Net(133);
    let setup = TRANSFER.replace(
        "job_number = \"A02\"\n",
        "job_number = \"A02\"\nskills = { general = 5 }\n",
    );
    let h = Hotline::start(net, &setup);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let a2 = api.login("agent-2", "agent-2-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let phone1 = common::start_phone(
        &h,
        0,
        "2001",
        &["--tone", "600", "--answer-after", "0.3", "--calls", "2"],
    );
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
            "6",
        ],
    );
    // The first caller reaches A01 (the only agent signed in); then A02
    // signs in and A01 transfers the caller to A02 by name.
    let caller = call_in(&h, "30", &wav.path().join("first.wav"));
    let (s, v) = api.post("/api/v1/agent/state", &a2, r#"{"state":"logged_in"}"#);
    assert_eq!(s, 200, "{v}");
    assert!(api.wait_board(&sup, "A02", "idle"), "A02 signed in");
    let (s, v) = api.post("/api/v1/agent/call/transfer", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(s, 202, "{v}");
    assert!(
        api.wait_board(&sup, "A02", "talking"),
        "A02 on the transferred call, as the ACD sees it: {}",
        api.board_state(&sup, "A02")
    );
    // A second caller queues: A02 is busy, so A01 (after 1 s of ACW) gets it.
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["dial", &format!("sip:12399@{}", net.sip())])
        .args(["--bind", &format!("{}:5064", net.carrier())])
        .args(["--tone", "440", "--hangup-after", "2"])
        .output()
        .unwrap();
    assert_eq!(common::report(&second)["status"], 200, "{}", h.tail_log());
    assert_eq!(
        api.board_state(&sup, "A02"),
        "talking",
        "never offered the second caller"
    );
    // A02 hangs up: after-call work, then idle again; never "not ready".
    let first = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(first["ended_by"], "remote", "{first}");
    assert!(api.wait_board(&sup, "A02", "idle"), "{}", h.tail_log());
    let _ = phone1.wait_with_output();
    let _ = phone2.wait_with_output();
    let log = h.log();
    assert!(
        log.contains("agent=A02 state=after-call work"),
        "A02 went through after-call work:\n{}",
        h.tail_log()
    );
    assert!(
        !log.contains("agent=A02 state=not ready"),
        "{}",
        h.tail_log()
    );
}

#[test]
fn a_three_way_call_with_another_agent_then_dropping_them() {
    let net = Net(121);
    let h = Hotline::start(net, TRANSFER);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let (caller_wav, third_wav) = (wav.path().join("caller.wav"), wav.path().join("third.wav"));
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
            "20",
            "--record",
            third_wav.to_str().unwrap(),
        ],
    );
    let caller = call_in(&h, "9", &caller_wav);
    let (s, v) = api.post(
        "/api/v1/agent/call/conference/add",
        &a1,
        r#"{"to_agent":"A02","to_number":"110"}"#,
    );
    assert_eq!((s, code(&v)), (400, "bad_request"));
    let (s, v) = api.post(
        "/api/v1/agent/call/conference/drop",
        &a1,
        r#"{"party":"A02"}"#,
    );
    assert_eq!(
        (s, code(&v)),
        (404, "not_found"),
        "not on the call yet: {v}"
    );
    let (s, v) = api.post(
        "/api/v1/agent/call/conference/add",
        &a1,
        r#"{"to_agent":"A02"}"#,
    );
    assert_eq!(s, 202, "{v}");
    h.wait_for("the third party to join", Duration::from_secs(10), |_| {
        h.log().contains("third party joined the call")
    });
    std::thread::sleep(Duration::from_secs(3));
    let (s, v) = api.post(
        "/api/v1/agent/call/conference/drop",
        &a1,
        r#"{"party":"A02"}"#,
    );
    assert_eq!(s, 200, "{v}");
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["status"], 200, "{caller}");
    let _ = phone1.wait_with_output();
    let third = common::report(&phone2.wait_with_output().unwrap());
    assert_eq!(third["ended_by"], "remote", "dropped by hotline: {third}");
    // Everyone heard everyone while the three were on the call.
    let heard = samples(&caller_wav);
    assert!(
        windows_with(&heard, 900.0, 0.2) > 50,
        "the caller heard the third party"
    );
    assert!(
        windows_with(&heard, 600.0, 0.2) > 200,
        "the caller heard the agent"
    );
    let heard3 = samples(&third_wav);
    assert!(
        windows_with(&heard3, 440.0, 0.2) > 50,
        "the third party heard the caller"
    );
    assert!(
        windows_with(&heard3, 600.0, 0.2) > 50,
        "the third party heard the agent"
    );
    // The record says three were on the call.
    let record = only_record(&api, &sup);
    assert_eq!(record["conference_max"], 3, "{record}");
    let (_, story) = api.get(
        &format!("/api/v1/calls/{}", record["call_id"].as_str().unwrap_or("")),
        &sup,
    );
    let changes: Vec<&str> = story["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["type"] == "conference.changed")
                .filter_map(|e| e["data"]["change"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(changes, ["joined", "left"], "{story}");
}

#[test]
fn an_outbound_call_rings_the_agent_then_the_citizen_with_the_tenant_caller_id() {
    let net = Net(122);
    let extra = r#"
[[tenant]]
id = "default"
outbound_caller_id = "12345"
outbound_trunk = "carrier"

[[group]]
id = "general"

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
skills = { general = 5 }
auto_login = true

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
    let h = Hotline::start(net, extra);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let (s, v) = api.post(
        "/api/v1/agent/call/dial",
        &a1,
        r#"{"number":"13800138000"}"#,
    );
    assert_eq!((s, code(&v)), (409, "not_registered"), "{v}");
    let (s, v) = api.post("/api/v1/agent/call/dial", &a1, r#"{"number":"rm -rf /"}"#);
    assert_eq!((s, code(&v)), (400, "bad_request"));
    // The agent answers after 0.3 s and hangs up after 3 s; the citizen
    // (SIPp behind the carrier trunk) answers and waits for the BYE.
    let phone = common::start_phone(
        &h,
        0,
        "2001",
        &[
            "--tone",
            "600",
            "--answer-after",
            "0.3",
            "--hangup-after",
            "3",
        ],
    );
    let citizen = common::Sipp::start("agent_answer.xml", &net.carrier(), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(500));
    let (s, v) = api.post(
        "/api/v1/agent/call/dial",
        &a1,
        r#"{"number":"13800138000"}"#,
    );
    assert_eq!(s, 202, "{v}");
    let call_id = v["call_id"].as_str().unwrap_or("").to_string();
    // A blind transfer of an outbound call is refused (the call has no one
    // to put the citizen through): it used to be accepted and leave the
    // citizen's leg up with nobody on it. The call goes on.
    let mut refused = Value::Null;
    for _ in 0..60 {
        let (s, v) = api.post(
            "/api/v1/agent/call/transfer",
            &a1,
            r#"{"to_number":"12328"}"#,
        );
        if code(&v) != "no_call" {
            refused = json!({"status": s, "body": v});
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(refused["status"], 409, "{refused}");
    assert_eq!(
        refused["body"]["error"]["code"], "transfer_unavailable",
        "{refused}"
    );
    assert!(
        refused["body"]["error"]["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("盲转")),
        "{refused}"
    );
    citizen.wait(Duration::from_secs(30)).assert_ok(&h);
    let agent = common::report(&phone.wait_with_output().unwrap());
    assert_eq!(agent["status"], 200, "{agent}");
    let mut record = Value::Null;
    for _ in 0..50 {
        let (_, v) = api.get(&format!("/api/v1/calls/{call_id}"), &sup);
        if !v["record"].is_null() {
            record = v["record"].clone();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(record["direction"], "outbound", "{record}");
    assert_eq!(
        record["caller"], "12345",
        "the tenant's caller ID: {record}"
    );
    assert_eq!(record["called"], "13800138000", "{record}");
    assert_eq!(record["agent_id"], "A01", "{record}");
    assert_eq!(record["outcome"], "answered", "{record}");
    assert!(
        h.log().contains("outbound call connected"),
        "{}",
        h.tail_log()
    );
}

/// Index of the first and last 20 ms window of `audio` where `hz` carries
/// more than `min` of the energy.
fn span_of(audio: &[i16], hz: f64, min: f64) -> Option<(usize, usize)> {
    let hits: Vec<usize> = audio
        .chunks_exact(160)
        .enumerate()
        .filter(|(_, w)| windows_with(w, hz, min) == 1)
        .map(|(i, _)| i)
        .collect();
    Some((*hits.first()?, *hits.last()?))
}

/// Tones stay clear of the music on hold's notes (523–880 Hz): A01 sends
/// 1000 Hz, A02 1300 Hz, the caller 440 Hz.
#[test]
fn attended_transfer_consults_privately_then_hands_the_caller_over() {
    let net = Net(125);
    let config = TRANSFER.replace("acw_secs = 1", "acw_secs = 1\nqueue_media = true");
    let h = Hotline::start(net, &config);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let (caller_wav, second_wav) = (wav.path().join("caller.wav"), wav.path().join("second.wav"));
    let phone1 = common::start_phone(&h, 0, "2001", &["--tone", "1000", "--answer-after", "0.3"]);
    let phone2 = common::start_phone(
        &h,
        1,
        "2002",
        &[
            "--tone",
            "1300",
            "--answer-after",
            "0.3",
            "--hangup-after",
            "7",
            "--record",
            second_wav.to_str().unwrap(),
        ],
    );
    let caller = call_in(&h, "25", &caller_wav);
    let (s, v) = api.post("/api/v1/agent/call/consult/complete", &a1, "");
    assert_eq!(
        (s, code(&v)),
        (409, "wrong_state"),
        "nothing to complete: {v}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let (s, v) = api.post("/api/v1/agent/call/consult", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(s, 202, "{v}");
    let (s, v) = api.post("/api/v1/agent/call/consult", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(
        (s, code(&v)),
        (409, "wrong_state"),
        "one consultation at a time: {v}"
    );
    h.wait_for(
        "the consulted agent to answer",
        Duration::from_secs(10),
        |_| h.log().contains("third party joined the call"),
    );
    std::thread::sleep(Duration::from_secs(3));
    let (s, v) = api.post("/api/v1/agent/call/consult/complete", &a1, "");
    assert_eq!(s, 200, "{v}");
    // A02 talks with the caller, then hangs up: the call ends.
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["ended_by"], "remote", "{caller}");
    let first = common::report(&phone1.wait_with_output().unwrap());
    assert_eq!(
        first["ended_by"], "remote",
        "hotline released the first agent: {first}"
    );
    let _ = phone2.wait_with_output();
    // The consultation was private: A02 heard A01 (600 Hz) first, and the
    // caller (440 Hz) only after A01 had left; the caller heard A02 after.
    let heard2 = samples(&second_wav);
    let (_, last_a01) = span_of(&heard2, 1000.0, 0.2).expect("A02 heard A01");
    let (first_caller, _) = span_of(&heard2, 440.0, 0.2).expect("A02 heard the caller");
    assert!(
        first_caller + 5 >= last_a01,
        "A02 heard the caller (window {first_caller}) while consulting with A01 (until {last_a01})"
    );
    let heard = samples(&caller_wav);
    assert!(
        windows_with(&heard, 1300.0, 0.5) > 100,
        "the caller heard A02 after the transfer"
    );
    let (_, caller_last_a01) = span_of(&heard, 1000.0, 0.5).expect("the caller heard A01 first");
    let (caller_first_a02, _) = span_of(&heard, 1300.0, 0.5).expect("then A02");
    assert!(
        caller_first_a02 > caller_last_a01 + 100,
        "the caller was on hold ~3 s between them: A01 until {caller_last_a01}, A02 from {caller_first_a02}; 600 Hz {:?}, 900 Hz {:?}, windows {}",
        span_of(&heard, 1000.0, 0.5),
        span_of(&heard, 1300.0, 0.5),
        heard.len() / 160
    );
    let record = only_record(&api, &sup);
    assert_eq!(record["agents"], json!(["A01", "A02"]), "{record}");
    assert_eq!(record["transfers"][0]["mode"], "attended", "{record}");
    assert_eq!(record["transfers"][0]["target"], "A02", "{record}");
    assert!(
        record["hold_ms"].as_u64().unwrap_or(0) >= 2000,
        "the consultation was hold time: {record}"
    );
}

#[test]
fn a_supervisor_takes_the_call_over() {
    let net = Net(126);
    let h = Hotline::start(net, SETUP);
    let api = Api::new(net);
    let agent = api.login("agent-a", "agent-a-password");
    let sup = api.login("sup-a", "sup-a-password");
    let sup_b = api.login("sup-b", "sup-b-password");
    let wav = tempfile::tempdir().unwrap();
    let caller_wav = wav.path().join("caller.wav");
    let (s, _) = api.post("/api/v1/agent/state", &agent, r#"{"state":"logged_in"}"#);
    assert_eq!(s, 200);
    let agent_phone =
        common::start_phone(&h, 0, "2001", &["--tone", "1000", "--answer-after", "0.3"]);
    let sup_phone = common::start_phone(
        &h,
        1,
        "3001",
        &[
            "--tone",
            "1300",
            "--answer-after",
            "0.2",
            "--hangup-after",
            "5",
        ],
    );
    let caller = call_in(&h, "25", &caller_wav);
    let (s, v) = api.post("/api/v1/supervise/take-over", &sup, r#"{"agent_id":"A01"}"#);
    assert_eq!(
        (s, code(&v)),
        (409, "wrong_state"),
        "not on the call yet: {v}"
    );
    let (s, v) = api.post(
        "/api/v1/supervise",
        &sup,
        r#"{"agent_id":"A01","mode":"listen"}"#,
    );
    assert_eq!(s, 202, "{v}");
    h.wait_for("the supervisor to join", Duration::from_secs(10), |_| {
        h.log().contains("supervisor joined the call (API)")
    });
    let (s, _) = api.post(
        "/api/v1/supervise/take-over",
        &agent,
        r#"{"agent_id":"A01"}"#,
    );
    assert_eq!(s, 403, "agents cannot");
    let (s, _) = api.post(
        "/api/v1/supervise/take-over",
        &sup_b,
        r#"{"agent_id":"A01"}"#,
    );
    assert_eq!(s, 404, "another tenant cannot");
    std::thread::sleep(Duration::from_secs(1));
    let (s, v) = api.post("/api/v1/supervise/take-over", &sup, r#"{"agent_id":"A01"}"#);
    assert_eq!(s, 200, "{v}");
    // The agent is released; the supervisor talks with the caller, then
    // hangs up, which ends the call.
    let first = common::report(&agent_phone.wait_with_output().unwrap());
    assert_eq!(first["ended_by"], "remote", "{first}");
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["ended_by"], "remote", "{caller}");
    let _ = sup_phone.wait_with_output();
    let heard = samples(&caller_wav);
    assert!(
        windows_with(&heard, 1300.0, 0.5) > 50,
        "the caller heard the supervisor after the take-over"
    );
    let (_, audit) = api.get("/api/v1/admin/audit", &sup);
    assert!(audit.to_string().contains("call.take_over"), "{audit}");
}

/// Two tenants: A01 takes the calls of `general`; `second` has A02 only;
/// `other` belongs to tenant b.
const CONSULT_GROUP: &str = r#"
[[tenant]]
id = "a"
[[tenant]]
id = "b"

[[group]]
id = "general"
tenant = "a"
acw_secs = 1
queue_media = true

[[group]]
id = "second"
tenant = "a"
acw_secs = 4
ring_timeout_secs = 20

[[group]]
id = "other"
tenant = "b"

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
tenant = "a"
skills = { general = 5 }
auto_login = true

[[agent]]
user = "2002"
password = "pass2002"
job_number = "A02"
tenant = "a"
skills = { second = 5 }
auto_login = true

[[agent]]
user = "4001"
password = "pass4001"
job_number = "B01"
tenant = "b"
skills = { other = 5 }

[[did]]
number = "12399"
tenant = "a"
queue = "general"

[[user]]
username = "agent-1"
role = "agent"
tenant = "a"
agent_id = "A01"
password = "agent-1-password"

[[user]]
username = "sup"
role = "supervisor"
tenant = "a"
password = "sup-password"
"#;

/// Attended transfer to a skill group: the consultation queues in
/// `second`, the ACD offers it to A02 (its only idle agent), A02's phone
/// rings and answers; A02 hears A01 but not the caller until A01 completes;
/// then A02 is the caller's agent in the ACD too (talking, then after-call
/// work, which the record waits for). Tones: the caller 440 Hz, A01
/// 1000 Hz, A02 1300 Hz (clear of the music on hold's 523–880 Hz).
#[test]
fn attended_transfer_to_a_skill_group_rings_the_agent_its_acd_picks() {
    let net = Net(140);
    let h = Hotline::start(net, CONSULT_GROUP);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let events = listen(&api, &sup);
    let wav = tempfile::tempdir().unwrap();
    let (caller_wav, second_wav) = (wav.path().join("caller.wav"), wav.path().join("second.wav"));
    let phone1 = common::start_phone(&h, 0, "2001", &["--tone", "1000", "--answer-after", "0.3"]);
    let phone2 = common::start_phone(
        &h,
        1,
        "2002",
        &[
            "--tone",
            "1300",
            "--answer-after",
            "1",
            "--hangup-after",
            "8",
            "--record",
            second_wav.to_str().unwrap(),
            // Stays registered (signed in) after the call.
            "--calls",
            "2",
        ],
    );
    assert!(api.wait_board(&sup, "A02", "idle"), "A02 signed in");
    let caller = call_in(&h, "25", &caller_wav);
    std::thread::sleep(Duration::from_secs(1));
    for (group, why) in [
        ("other", "another tenant's group"),
        ("nope", "no such group"),
    ] {
        let body = json!({ "to_group": group }).to_string();
        let (s, v) = api.post("/api/v1/agent/call/consult", &a1, &body);
        assert_eq!((s, code(&v)), (404, "not_found"), "{why}: {v}");
    }
    let (s, v) = api.post(
        "/api/v1/agent/call/consult",
        &a1,
        r#"{"to_group":"second","to_agent":"A02"}"#,
    );
    assert_eq!(s, 400, "one target: {v}");
    let (s, v) = api.post(
        "/api/v1/agent/call/consult",
        &a1,
        r#"{"to_group":"second"}"#,
    );
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["consulting"], "second", "{v}");
    let (s, v) = api.post("/api/v1/agent/call/consult/complete", &a1, "");
    assert_eq!((s, code(&v)), (409, "wrong_state"), "not answered yet: {v}");
    h.wait_for(
        "the group's agent to answer",
        Duration::from_secs(10),
        |_| {
            h.log()
                .contains("the group's agent answered the consultation")
        },
    );
    assert_eq!(api.board_state(&sup, "A02"), "talking", "the ACD's view");
    std::thread::sleep(Duration::from_secs(3));
    let (s, v) = api.post("/api/v1/agent/call/consult/complete", &a1, "");
    assert_eq!(s, 200, "{v}");
    let first = common::report(&phone1.wait_with_output().unwrap());
    assert_eq!(first["ended_by"], "remote", "A01 was released: {first}");
    assert_eq!(api.board_state(&sup, "A02"), "talking", "A02 has the call");
    let (_, board) = api.get("/api/v1/wallboard", &sup);
    let on_call = board["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["agent_id"] == "A02"))
        .map(|a| a["on_call"].clone());
    assert_eq!(on_call, Some(json!(true)), "{board}");
    // A02 hangs up 8 s after answering: the call ends, A02 does ACW.
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["ended_by"], "remote", "{caller}");
    assert!(
        api.wait_board(&sup, "A02", "after_call_work"),
        "A02 in after-call work: {}",
        api.board_state(&sup, "A02")
    );
    let mut phone2 = phone2;
    phone2.kill().ok();
    let _ = phone2.wait();
    // The consultation was private; the caller heard A02 afterwards.
    let heard2 = samples(&second_wav);
    let (_, last_a01) = span_of(&heard2, 1000.0, 0.2).expect("A02 heard A01");
    let (first_caller, _) = span_of(&heard2, 440.0, 0.2).expect("A02 heard the caller");
    assert!(
        first_caller + 5 >= last_a01,
        "A02 heard the caller (window {first_caller}) while consulting with A01 (until {last_a01})"
    );
    let heard = samples(&caller_wav);
    assert!(
        windows_with(&heard, 1300.0, 0.5) > 100,
        "the caller heard A02 after the transfer"
    );
    let record = only_record(&api, &sup);
    assert_eq!(record["agents"], json!(["A01", "A02"]), "{record}");
    let transfer = &record["transfers"][0];
    assert_eq!(transfer["mode"], "attended", "{record}");
    assert_eq!(transfer["target_kind"], "group", "{record}");
    assert_eq!(transfer["target"], "second", "{record}");
    assert!(
        record["acw_ms"].as_u64().unwrap_or(0) >= 4000,
        "the record waited for A02's after-call work (4 s): {record}"
    );
    let kinds: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|m| m["type"].as_str().map(String::from))
        .collect();
    let offered_a02 = events
        .lock()
        .unwrap()
        .iter()
        .any(|m| m["type"] == "agent.offered" && m["data"]["agent_id"] == "A02");
    assert!(offered_a02, "A02's offer on the WebSocket: {kinds:?}");
    // No missed call for the citizen: the consultation is no caller.
    let stats = h
        .acd_stats()
        .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    assert_eq!(stats["missed_calls"], json!([]), "{stats}");
}

/// Cancelling while the group's agent still rings: the ringing stops, the
/// ACD makes A02 idle again, and the caller is back with A01.
#[test]
fn a_consultation_of_a_group_cancelled_while_ringing() {
    let net = Net(141);
    let h = Hotline::start(net, CONSULT_GROUP);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let caller_wav = wav.path().join("caller.wav");
    let phone1 = common::start_phone(&h, 0, "2001", &["--tone", "1000", "--answer-after", "0.3"]);
    let mut phone2 =
        common::start_phone(&h, 1, "2002", &["--tone", "1300", "--answer-after", "60"]);
    assert!(api.wait_board(&sup, "A02", "idle"), "A02 signed in");
    let caller = call_in(&h, "12", &caller_wav);
    std::thread::sleep(Duration::from_secs(1));
    let (s, v) = api.post(
        "/api/v1/agent/call/consult",
        &a1,
        r#"{"to_group":"second"}"#,
    );
    assert_eq!(s, 202, "{v}");
    h.wait_for("A02's phone to ring", Duration::from_secs(10), |_| {
        h.log().contains("consultation offered")
    });
    assert!(api.wait_board(&sup, "A02", "ringing"), "A02 rings");
    std::thread::sleep(Duration::from_secs(2));
    let (s, v) = api.post("/api/v1/agent/call/consult/cancel", &a1, "");
    assert_eq!(s, 200, "{v}");
    assert!(
        api.wait_board(&sup, "A02", "idle"),
        "A02 idle again: {}",
        api.board_state(&sup, "A02")
    );
    assert_eq!(api.board_state(&sup, "A01"), "talking");
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["ended_by"], "local", "{caller}");
    let _ = phone1.wait_with_output();
    phone2.kill().ok();
    let _ = phone2.wait();
    // The caller heard A01, then music on hold, then A01 again.
    let heard = samples(&caller_wav);
    let (first, last) = span_of(&heard, 1000.0, 0.5).expect("the caller heard A01");
    assert!(
        last > first + 200,
        "A01 again after the cancel: windows {first}..{last} of {}",
        heard.len() / 160
    );
    assert_eq!(windows_with(&heard, 1300.0, 0.5), 0, "never A02");
    let record = only_record(&api, &sup);
    assert_eq!(record["agents"], json!(["A01"]), "{record}");
    assert_eq!(record["transfers"], json!([]), "{record}");
}

/// `second`'s waiting calls on the wall-board.
fn waiting_in_second(api: &Api, sup: &str) -> Value {
    let (_, v) = api.get("/api/v1/wallboard", sup);
    v["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["group"] == "second"))
        .map(|g| g["calls_waiting"].clone())
        .unwrap_or(Value::Null)
}

/// Nobody of the group is free: the consultation waits in its queue (202
/// at once); the caller hanging up takes it out of the ACD, with no
/// missed call left behind.
#[test]
fn a_waiting_consultation_leaves_the_acd_when_the_caller_hangs_up() {
    let net = Net(142);
    let h = Hotline::start(net, CONSULT_GROUP);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let caller_wav = wav.path().join("caller.wav");
    // A02's phone is not registered: A02 is signed out.
    let phone1 = common::start_phone(&h, 0, "2001", &["--tone", "1000", "--answer-after", "0.3"]);
    let caller = call_in(&h, "6", &caller_wav);
    std::thread::sleep(Duration::from_secs(1));
    let (s, v) = api.post(
        "/api/v1/agent/call/consult",
        &a1,
        r#"{"to_group":"second"}"#,
    );
    assert_eq!(s, 202, "{v}");
    assert_eq!(waiting_in_second(&api, &sup), 1, "the consultation waits");
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["ended_by"], "local", "{caller}");
    let _ = phone1.wait_with_output();
    let mut left = Value::Null;
    for _ in 0..50 {
        left = waiting_in_second(&api, &sup);
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(left, 0, "no orphan consultation in the ACD");
    let stats = h
        .acd_stats()
        .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    assert_eq!(stats["missed_calls"], json!([]), "{stats}");
}

/// Cancelled after the group's agent answered: they leave with after-call
/// work (the consultation was their ACD call), the caller is back with
/// A01.
#[test]
fn a_consultation_of_a_group_cancelled_after_the_answer() {
    let net = Net(143);
    let h = Hotline::start(net, CONSULT_GROUP);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let caller_wav = wav.path().join("caller.wav");
    let phone1 = common::start_phone(&h, 0, "2001", &["--tone", "1000", "--answer-after", "0.3"]);
    // Stays registered (signed in) after the call.
    let mut phone2 = common::start_phone(
        &h,
        1,
        "2002",
        &["--tone", "1300", "--answer-after", "0.5", "--calls", "2"],
    );
    assert!(api.wait_board(&sup, "A02", "idle"), "A02 signed in");
    let caller = call_in(&h, "10", &caller_wav);
    std::thread::sleep(Duration::from_secs(1));
    let (s, v) = api.post(
        "/api/v1/agent/call/consult",
        &a1,
        r#"{"to_group":"second"}"#,
    );
    assert_eq!(s, 202, "{v}");
    h.wait_for(
        "the group's agent to answer",
        Duration::from_secs(10),
        |_| {
            h.log()
                .contains("the group's agent answered the consultation")
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    let (s, v) = api.post("/api/v1/agent/call/consult/cancel", &a1, "");
    assert_eq!(s, 200, "{v}");
    assert!(
        api.wait_board(&sup, "A02", "after_call_work"),
        "A02 released into after-call work: {}",
        api.board_state(&sup, "A02")
    );
    phone2.kill().ok();
    let _ = phone2.wait();
    assert_eq!(api.board_state(&sup, "A01"), "talking");
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["ended_by"], "local", "{caller}");
    let _ = phone1.wait_with_output();
    let heard = samples(&caller_wav);
    assert_eq!(
        windows_with(&heard, 1300.0, 0.5),
        0,
        "the caller never heard A02"
    );
    let (_, last) = span_of(&heard, 1000.0, 0.5).expect("the caller heard A01");
    assert!(
        last + 150 > heard.len() / 160,
        "A01 again until the end: last A01 window {last} of {}",
        heard.len() / 160
    );
}

/// Issue 13 (attended transfers as states of the call): the consulted
/// agent hangs up before the transfer is completed, so the caller is back
/// with the first agent at once instead of staying on hold until the
/// agent cancels.
#[test]
fn a_consulted_party_hanging_up_brings_the_caller_back() {
    let net = Net(201);
    let config = TRANSFER.replace("acw_secs = 1", "acw_secs = 1\nqueue_media = true");
    let h = Hotline::start(net, &config);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let sup = api.login("sup", "sup-password");
    let wav = tempfile::tempdir().unwrap();
    let caller_wav = wav.path().join("caller.wav");
    let phone1 = common::start_phone(&h, 0, "2001", &["--tone", "1000", "--answer-after", "0.3"]);
    let phone2 = common::start_phone(
        &h,
        1,
        "2002",
        &[
            "--tone",
            "1300",
            "--answer-after",
            "0.3",
            "--hangup-after",
            "2",
        ],
    );
    let caller = call_in(&h, "14", &caller_wav);
    std::thread::sleep(Duration::from_secs(1));
    let (s, v) = api.post("/api/v1/agent/call/consult", &a1, r#"{"to_agent":"A02"}"#);
    assert_eq!(s, 202, "{v}");
    h.wait_for(
        "the consulted agent to hang up",
        Duration::from_secs(15),
        |_| h.log().contains("extra party left the call"),
    );
    let (s, v) = api.post("/api/v1/agent/call/consult/complete", &a1, "");
    assert_eq!(s, 409, "nothing left to complete: {v}");
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["ended_by"], "local", "{caller}");
    let _ = phone1.wait_with_output();
    let _ = phone2.wait_with_output();
    // The caller heard A01, music while A01 consulted A02 (never A02), and
    // A01 again for the rest of the call (~9 s, 450 windows of 20 ms).
    let heard = samples(&caller_wav);
    assert_eq!(windows_with(&heard, 1300.0, 0.5), 0, "never A02");
    let back = windows_with(&heard, 1000.0, 0.5);
    assert!(
        back > 300,
        "the caller heard A01 again after A02 left: {back} windows of {}",
        heard.len() / 160
    );
    let record = only_record(&api, &sup);
    assert_eq!(record["agents"], json!(["A01"]), "{record}");
    assert_eq!(record["transfers"], json!([]), "{record}");
    let hold = record["hold_ms"].as_u64().unwrap_or(0);
    assert!(
        hold < 8000,
        "the hold ended when A02 left, not with the call: {record}"
    );
}
