//! A restart loses nothing the centre relies on (issue 12 items 3 and 7):
//! hotline is killed (`kill -9`) or stopped cleanly and started again on
//! the same data directory, and from outside — SIPp phones and carrier,
//! the HTTP API, a webhook receiver — the ACD carries on where it was:
//! - agents whose phones are still registered are signed in again in the
//!   state they had (idle, not ready with its reason); one whose phone is
//!   not registered is signed out; a queued call goes to the idle one;
//! - a pending callback and the missed-call list survive, and the
//!   callback still happens (marking the missed call called back);
//! - previous-service routing finds a repeat caller's agent;
//! - `agent.state` events keep counting `seq` (no restart at 1);
//! - the wall-board's figures of the day continue.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::{register, Hotline, Net, Sipp};
use serde_json::Value;

const GROUP: &str = r#"
[[group]]
id = "general"
ring_timeout_secs = 5
acw_secs = 1
max_wait_secs = 300

[[did]]
number = "12399"
queue = "general"
"#;

fn agent(user: &str, job: &str, auto_login: bool) -> String {
    format!(
        "\n[[agent]]\nuser = \"{user}\"\npassword = \"pass{user}\"\njob_number = \"{job}\"\n\
         skills = {{ general = 5 }}\nauto_login = {auto_login}\n"
    )
}

/// A hotline on `net` with `extra` configuration, in a directory a restart
/// reuses; the configuration text to restart with.
fn start(net: Net, extra: &str) -> (Hotline, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = common::config(net, &dir.path().join("var"), extra);
    (Hotline::start_with(net, dir, &text), text)
}

/// Stop hotline (`kill -9`, or SIGTERM and wait) and start it again on the
/// same data directory.
fn restart(mut h: Hotline, text: &str, kill: bool) -> Hotline {
    if kill {
        h.kill9();
    } else {
        h.sigterm();
        assert!(h.wait_exit(Duration::from_secs(20)).success());
    }
    let net = h.net;
    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().expect("tempdir"));
    drop(h);
    Hotline::start_with(net, dir, text)
}

/// An agent dials a feature code from `ip` (any address: the code is
/// authenticated by digest, not by where it comes from).
fn feature_code(h: &Hotline, user: &str, ip: &str, code: &str) {
    let pass = format!("pass{user}");
    let sip = h.net.sip();
    Sipp::start(
        "agent_feature_code.xml",
        ip,
        &[
            "-s", code, "-key", "agent", user, "-au", user, "-ap", &pass, "-m", "1", &sip,
        ],
    )
    .wait(Duration::from_secs(20))
    .assert_ok(h);
}

fn acd_stats(h: &Hotline) -> Value {
    let body = h.acd_stats().expect("ACD stats");
    serde_json::from_str(&body).expect("JSON")
}

fn agent_stats(stats: &Value, id: &str) -> Value {
    stats["stats"]["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["agent"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Poll the ACD's figures until `pred` holds (bounded: `within`).
fn wait_stats(h: &Hotline, what: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let tries = within.as_millis() / 100;
    let mut last = Value::Null;
    for _ in 0..tries.max(1) {
        last = acd_stats(h);
        if pred(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out waiting for {what}; last stats: {last:#}\n{}",
        h.tail_log()
    );
}

fn state_of(stats: &Value, id: &str) -> (String, Value) {
    let a = agent_stats(stats, id);
    (
        a["state"].as_str().unwrap_or("").to_string(),
        a["reason"].clone(),
    )
}

#[test]
fn signed_in_agents_keep_their_state_across_a_kill9_and_take_the_next_call() {
    let net = Net(160);
    let extra = format!(
        "{GROUP}{}{}{}",
        agent("2001", "A01", true),
        agent("2002", "A02", true),
        agent("2003", "A03", false)
    );
    let (h, text) = start(net, &extra);
    // A01 and A02 sign in by registering their phones; A02 then goes not
    // ready for training (*142: the second reason). A03 signs in with *11
    // from a phone that never registers.
    register(&h, "2001", &net.agent(0));
    register(&h, "2002", &net.agent(1));
    feature_code(&h, "2002", &net.ip(40), "*142");
    feature_code(&h, "2003", &net.ip(41), "*11");
    wait_stats(&h, "the agents' states", Duration::from_secs(10), |s| {
        state_of(s, "A01").0 == "idle"
            && state_of(s, "A02") == ("not_ready".into(), "training".into())
            && state_of(s, "A03").0 == "idle"
    });

    let h = restart(h, &text, true);
    let stats = acd_stats(&h);
    assert_eq!(state_of(&stats, "A01").0, "idle", "{stats:#}");
    assert_eq!(
        state_of(&stats, "A02"),
        ("not_ready".into(), "training".into()),
        "{stats:#}"
    );
    // A03's phone has no registration: nothing can reach them, so the
    // restart signs them out.
    assert_eq!(state_of(&stats, "A03").0, "logged_out", "{stats:#}");

    // A queued call goes to the idle agent, reached at the registration
    // that survived the crash.
    let answering = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let sip = net.sip();
    Sipp::start(
        "carrier_queue_call.xml",
        &net.carrier(),
        &["-s", "12399", "-m", "1", &sip],
    )
    .wait(Duration::from_secs(60))
    .assert_ok(&h);
    answering.wait(Duration::from_secs(20)).assert_ok(&h);
    let stats = acd_stats(&h);
    assert!(
        agent_stats(&stats, "A01")["counters"]["answered"].as_u64() >= Some(1),
        "{stats:#}"
    );
    assert_eq!(
        agent_stats(&stats, "A02")["counters"]["offered"],
        0,
        "{stats:#}"
    );
}

const CALLBACKS: &str = r#"
[[tenant]]
id = "default"
outbound_caller_id = "12345"
outbound_trunk = "carrier"
"#;

#[test]
fn a_pending_callback_and_the_missed_calls_survive_a_kill9_and_the_callback_happens() {
    let net = Net(161);
    let extra = format!("{CALLBACKS}{GROUP}{}", agent("2001", "A01", true));
    let (h, text) = start(net, &extra);
    // The only agent is signed in but on a break: the caller who rings in
    // gives up while waiting (a missed call), and a supervisor schedules a
    // callback to them that waits for a free agent.
    register(&h, "2001", &net.agent(0));
    feature_code(&h, "2001", &net.ip(40), "*14");
    let sip = net.sip();
    Sipp::start(
        "carrier_cancel.xml",
        &net.carrier(),
        &["-s", "12399", "-m", "1", &sip],
    )
    .wait(Duration::from_secs(30))
    .assert_ok(&h);
    let (code, body) = h
        .post_as_ops(
            "/api/v1/acd/callbacks",
            r#"{"group":"general","number":"+15550100"}"#,
        )
        .expect("POST callback");
    assert_eq!(code, 202, "{body}");
    let before = wait_stats(&h, "the missed call", Duration::from_secs(10), |s| {
        s["missed_calls"].as_array().map(Vec::len) == Some(1)
            && s["stats"]["groups"][0]["callbacks_pending"] == 1
    });
    let missed = before["missed_calls"][0].clone();
    assert_eq!(missed["caller"], "+15550100", "{before:#}");

    let h = restart(h, &text, true);
    let after = acd_stats(&h);
    let group = &after["stats"]["groups"][0];
    assert_eq!(group["callbacks_pending"], 1, "{after:#}");
    assert_eq!(
        group["calls_waiting"], 0,
        "a callback is no caller on the line: {after:#}"
    );
    let list = after["missed_calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(list.len(), 1, "{after:#}");
    for key in ["call", "caller", "group", "arrived", "at", "place"] {
        assert_eq!(list[0][key], missed[key], "{key}: {after:#}");
    }
    assert_eq!(list[0]["called_back_at"], Value::Null, "{after:#}");

    // The agent comes back from the break: the callback rings them first,
    // then the citizen (the carrier answers), and the missed call counts
    // as called back.
    let agent_phone = Sipp::start("agent_answer_then_bye.xml", &net.agent(0), &["-m", "1"]);
    let citizen = Sipp::start("agent_answer.xml", &net.carrier(), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    feature_code(&h, "2001", &net.ip(40), "*13");
    agent_phone.wait(Duration::from_secs(60)).assert_ok(&h);
    citizen.wait(Duration::from_secs(60)).assert_ok(&h);
    let done = wait_stats(&h, "the callback to count", Duration::from_secs(10), |s| {
        s["stats"]["groups"][0]["counters"]["callbacks_answered"] == 1
    });
    assert_eq!(
        done["stats"]["groups"][0]["callbacks_pending"], 0,
        "{done:#}"
    );
    assert!(
        done["missed_calls"][0]["called_back_at"].as_f64().is_some(),
        "{done:#}"
    );
}

#[test]
fn a_repeat_caller_reaches_their_previous_agent_after_a_restart() {
    let net = Net(162);
    let extra = format!(
        "{GROUP}{}{}\n[acd.previous_service]\nwithin_days = 1\nwait_secs = 10\n",
        agent("2001", "A01", true),
        agent("2002", "A02", true)
    );
    let (h, text) = start(net, &extra);
    register(&h, "2001", &net.agent(0));
    register(&h, "2002", &net.agent(1));
    // A01 has been idle the longest: the first call is theirs.
    let a01 = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let sip = net.sip();
    let call = |h: &Hotline| {
        Sipp::start(
            "carrier_queue_call.xml",
            &net.carrier(),
            &["-s", "12399", "-m", "1", &sip],
        )
        .wait(Duration::from_secs(60))
        .assert_ok(h)
    };
    call(&h);
    a01.wait(Duration::from_secs(20)).assert_ok(&h);
    wait_stats(
        &h,
        "A01 to answer and finish",
        Duration::from_secs(15),
        |s| agent_stats(s, "A01")["counters"]["answered"] == 1 && state_of(s, "A01").0 == "idle",
    );

    let h = restart(h, &text, false);
    // Both agents sign in afresh, A02 first: A02 is now the longest idle,
    // so only previous-service routing sends the caller to A01.
    for (user, ip) in [("2001", 40), ("2002", 41)] {
        feature_code(&h, user, &net.ip(ip), "*12");
    }
    wait_stats(&h, "both agents signed out", Duration::from_secs(10), |s| {
        state_of(s, "A01").0 == "logged_out" && state_of(s, "A02").0 == "logged_out"
    });
    feature_code(&h, "2002", &net.ip(41), "*11");
    feature_code(&h, "2001", &net.ip(40), "*11");
    wait_stats(&h, "both agents idle", Duration::from_secs(10), |s| {
        state_of(s, "A01").0 == "idle" && state_of(s, "A02").0 == "idle"
    });
    let a01 = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "1"]);
    let a02 = Sipp::start("agent_answer.xml", &net.agent(1), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    call(&h);
    let stats = acd_stats(&h);
    assert_eq!(
        agent_stats(&stats, "A02")["counters"]["offered"],
        0,
        "the repeat caller went to A01 first: {stats:#}"
    );
    a01.wait(Duration::from_secs(20)).assert_ok(&h);
    drop(a02);
}

#[derive(Default)]
struct Received {
    events: Mutex<Vec<Value>>,
}

async fn hook(State(r): State<Arc<Received>>, body: Bytes) -> StatusCode {
    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
        r.events.lock().expect("lock").push(v);
    }
    StatusCode::OK
}

/// (state, seq, previous) of every `agent.state` event received for `id`,
/// in seq order, each id once.
fn agent_events(r: &Received, id: &str) -> Vec<(String, u64, Value)> {
    let events = r.events.lock().expect("lock").clone();
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<(String, u64, Value)> = events
        .iter()
        .filter(|e| e["type"] == "agent.state" && e["data"]["agent_id"] == id)
        .filter(|e| seen.insert(e["id"].as_str().unwrap_or("").to_string()))
        .map(|e| {
            (
                e["data"]["state"].as_str().unwrap_or("").to_string(),
                e["seq"].as_u64().unwrap_or(0),
                e["data"]["previous"].clone(),
            )
        })
        .collect();
    out.sort_by_key(|e| e.1);
    out
}

fn wait_events(r: &Received, id: &str, n: usize) -> Vec<(String, u64, Value)> {
    for _ in 0..300 {
        let got = agent_events(r, id);
        if got.len() >= n {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    agent_events(r, id)
}

#[test]
fn agent_state_seq_continues_after_a_kill9() {
    let net = Net(163);
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(Received::default());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    {
        let r = received.clone();
        rt.spawn(async move {
            listener.set_nonblocking(true).expect("nonblocking");
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = axum::Router::new().route("/hook", post(hook)).with_state(r);
            axum::serve(l, app).await.ok();
        });
    }
    let extra = format!(
        "{GROUP}{}\n[[webhook]]\nname = \"tickets\"\nurl = \"http://127.0.0.1:{port}/hook\"\n\
         secret = \"s3cret\"\ntimeout_secs = 2\n",
        agent("2001", "A01", true)
    );
    let (h, text) = start(net, &extra);
    register(&h, "2001", &net.agent(0));
    feature_code(&h, "2001", &net.ip(40), "*14");
    let before = wait_events(&received, "A01", 2);
    assert_eq!(
        before
            .iter()
            .map(|(s, n, _)| (s.as_str(), *n))
            .collect::<Vec<_>>(),
        [("idle", 1), ("not_ready", 2)],
        "{before:?}"
    );

    let h = restart(h, &text, true);
    // Ready, sign out, sign in: three more changes, numbered on from 2.
    for code in ["*13", "*12", "*11"] {
        feature_code(&h, "2001", &net.ip(40), code);
    }
    let all = wait_events(&received, "A01", 5);
    let after: Vec<(&str, u64, &Value)> = all
        .iter()
        .skip(2)
        .map(|(s, n, p)| (s.as_str(), *n, p))
        .collect();
    assert_eq!(
        after,
        [
            ("idle", 3, &Value::from("not_ready")),
            ("logged_out", 4, &Value::from("idle")),
            ("idle", 5, &Value::from("logged_out")),
        ],
        "every event since the start: {all:?}\n{}",
        h.tail_log()
    );
    drop(rt);
}

/// Today's date in China Standard Time (the figures' default day).
#[allow(clippy::disallowed_methods)] // the test's own clock
fn cst_day() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs + 8 * 3600) / 86_400
}

#[test]
fn the_figures_of_the_day_continue_after_a_kill9() {
    let net = Net(164);
    let extra = format!(
        "{GROUP}{}\n[[user]]\nusername = \"sup\"\nrole = \"supervisor\"\npassword = \"sup-password\"\n",
        agent("2001", "A01", true)
    );
    let day = cst_day();
    let (h, text) = start(net, &extra);
    register(&h, "2001", &net.agent(0));
    // One call answered, then (the agent on a break) one caller who gives up.
    let answering = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let sip = net.sip();
    Sipp::start(
        "carrier_queue_call.xml",
        &net.carrier(),
        &["-s", "12399", "-m", "1", &sip],
    )
    .wait(Duration::from_secs(60))
    .assert_ok(&h);
    answering.wait(Duration::from_secs(20)).assert_ok(&h);
    wait_stats(&h, "the agent back to idle", Duration::from_secs(10), |s| {
        state_of(s, "A01").0 == "idle"
    });
    feature_code(&h, "2001", &net.ip(40), "*14");
    Sipp::start(
        "carrier_cancel.xml",
        &net.carrier(),
        &["-s", "12399", "-m", "1", &sip],
    )
    .wait(Duration::from_secs(30))
    .assert_ok(&h);
    let before = wait_stats(&h, "the figures", Duration::from_secs(10), |s| {
        s["stats"]["groups"][0]["counters"]["abandoned"] == 1
    });
    let counters = before["stats"]["groups"][0]["counters"].clone();
    assert_eq!(counters["answered"], 1, "{before:#}");
    assert_eq!(counters["sl20"]["asked"], 2, "{before:#}");

    let h = restart(h, &text, true);
    if cst_day() != day {
        // Local midnight passed during the test: the figures rightly start
        // from zero, and there is nothing of "today" to compare.
        eprintln!("local midnight passed during the test; figures not compared");
        return;
    }
    let after = acd_stats(&h);
    let group = &after["stats"]["groups"][0];
    for key in ["entered", "answered", "abandoned", "offers", "sl20", "sl30"] {
        assert_eq!(group["counters"][key], counters[key], "{key}: {after:#}");
    }
    assert_eq!(
        group["answer_rate_20"],
        before["stats"]["groups"][0]["answer_rate_20"]
    );
    // Fewest-calls routing counts the agent's calls of the day.
    assert_eq!(
        agent_stats(&after, "A01")["counters"]["answered"],
        1,
        "{after:#}"
    );
    // The wall-board shows the same figures.
    let api = common::api::Api::new(net);
    let sup = api.login("sup", "sup-password");
    let (status, board) = api.get("/api/v1/wallboard", &sup);
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["groups"][0]["counters"]["answered"], 1, "{board:#}");
    assert_eq!(board["groups"][0]["counters"]["abandoned"], 1, "{board:#}");
}
