//! IVR flows end to end: a caller's key picks the menu option and queues
//! for an agent, the survey scores the call after the agent hangs up; a
//! broken edit is refused while the previous flow keeps answering and a
//! good edit goes live without a restart; blocked callers are refused;
//! after hours the caller leaves a voicemail; and the admin CLI (`flow
//! check`, `flow graph`, `schedule`) on the shipped files.

mod common;

use common::flows::{setup, AFTER_HOURS};

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Hotline, Net};

/// Group, agent and the [ivr] section pointing at `dir`'s flows.
fn extra(dir: &Path) -> String {
    format!(
        r#"
[[group]]
id = "general"
ring_timeout_secs = 10
max_wait_secs = 20
acw_secs = 1

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
skills = {{ general = 5 }}
auto_login = true

[ivr]
flows_dir = "{flows}"
calendars_dir = "{cal}"
reload_check_secs = 1
"#,
        flows = dir.join("flows").display(),
        cal = dir.join("cal").display(),
    )
}

fn start(net: Net, dir: tempfile::TempDir, more: &str) -> Hotline {
    let data = dir.path().join("var");
    let text = common::config(net, &data, &format!("{}{more}", extra(dir.path())));
    Hotline::start_with(net, dir, &text)
}

const SURVEY: &str = r#"
name = "survey"
entry = "ask"
[nodes.ask]
kind = "survey"
timeout_secs = 8
[[nodes.ask.question]]
dimension = "attitude"
prompt = "ivr_no_input"
keys = { "1" = 5, "2" = 3, "3" = 1 }
[[nodes.ask.question]]
dimension = "efficiency"
prompt = "ivr_no_input"
keys = { "1" = 5, "2" = 3, "3" = 1 }
"#;

const MENU: &str = r#"
name = "test-line"
dids = ["12399"]
entry = "welcome"
[nodes.welcome]
kind = "play"
prompts = ["ivr_12345_welcome"]
interruptible = true
next = "menu"
[nodes.menu]
kind = "menu"
prompts = ["ivr_12345_menu"]
timeout_secs = 4
retries = 2
fallback = "bye"
[nodes.menu.options]
"1" = "q"
[nodes.q]
kind = "queue"
group = "general"
after_agent = "survey"
on_timeout = "bye"
[nodes.survey]
kind = "subflow"
flow = "survey"
next = "bye"
[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;

#[test]
fn menu_choice_queues_for_the_agent_and_the_survey_scores_the_call() {
    let net = Net(101);
    let dir = setup(&[("line.toml", MENU), ("survey.toml", SURVEY)]);
    let jsonl = dir.path().join("events");
    let h = start(
        net,
        dir,
        &format!("\n[events]\njsonl_dir = \"{}\"\n", jsonl.display()),
    );
    let flows = h.healthz()["ivr"]["flows"].clone();
    assert_eq!(flows.as_array().map(Vec::len), Some(2), "{flows}");
    let phone = common::start_phone(
        &h,
        0,
        "2001",
        &[
            "--tone",
            "600",
            "--answer-after",
            "1",
            "--hangup-after",
            "3",
        ],
    );
    // "1" during the welcome (interruptible: type-ahead for the menu), then
    // the two survey answers once the agent has hung up.
    let out = common::dial(
        net,
        "12399",
        &[
            "--tone",
            "440",
            "--hangup-after",
            "40",
            "--dtmf",
            "1",
            "--dtmf-at",
            "1",
            "--dtmf",
            "1",
            "--dtmf-at",
            "9",
            "--dtmf",
            "3",
            "--dtmf-at",
            "13",
        ],
    )
    .output()
    .unwrap();
    let report = common::report(&out);
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["ended_by"], "remote", "the flow hung up: {report}");
    let phone_report = common::report(&phone.wait_with_output().unwrap());
    assert_eq!(phone_report["status"], 200, "{phone_report}");
    assert_eq!(phone_report["ended_by"], "local", "{phone_report}");
    // The caller heard the agent's tone between the menu and the survey.
    assert!(
        report["media"]["rtp_received"].as_u64().unwrap_or(0) > 300,
        "{report}"
    );
    let log = h.log();
    assert!(
        log.contains("dimension=attitude score=5"),
        "{}",
        h.tail_log()
    );
    assert!(
        log.contains("dimension=efficiency score=1"),
        "{}",
        h.tail_log()
    );
    assert!(
        log.contains("node=q kind=\"queue\"") || log.contains("node=q kind=queue"),
        "{}",
        h.tail_log()
    );
    assert!(log.contains("flow over"), "{}", h.tail_log());
    h.wait_for("the call to end", Duration::from_secs(10), |v| {
        v["calls"]["active"] == 0 && v["media"]["rtp_port_pairs_in_use"] == 0
    });
    check_call_events(&jsonl);
}

/// Every line of the JSONL sink's files, once per event id.
fn jsonl_events(dir: &Path) -> Vec<serde_json::Value> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap_or_default().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if seen.insert(v["id"].as_str().unwrap_or("").to_string()) {
                out.push(v["event"].clone());
            }
        }
    }
    out
}

/// The call's events tell its story in order, and its record carries the
/// REQUIREMENTS §6 fields.
fn check_call_events(dir: &Path) {
    let mut events = Vec::new();
    for _ in 0..100 {
        events = jsonl_events(dir);
        if events.iter().any(|e| e["type"] == "call.ended") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let call: Vec<&serde_json::Value> = events.iter().filter(|e| !e["call_id"].is_null()).collect();
    let kinds: Vec<&str> = call.iter().filter_map(|e| e["type"].as_str()).collect();
    let seqs: Vec<u64> = call.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (1..=call.len() as u64).collect::<Vec<_>>(),
        "{kinds:?}"
    );
    let pos = |k: &str| kinds.iter().position(|x| *x == k);
    let order = [
        "call.started",
        "ivr.step",
        "queue.entered",
        "agent.offered",
        "agent.answered",
        "recording.ready",
        "survey.result",
        "call.ended",
    ];
    let positions: Vec<Option<usize>> = order.iter().map(|k| pos(k)).collect();
    assert!(positions.iter().all(Option::is_some), "{kinds:?}");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"call.ended"), "{kinds:?}");
    let cdr = &call[call.len() - 1]["data"];
    assert_eq!(cdr["called"], "12399", "{cdr}");
    assert_eq!(cdr["flow"]["name"], "test-line", "{cdr}");
    assert_eq!(cdr["group_id"], "general", "{cdr}");
    assert_eq!(cdr["agent_id"], "A01", "{cdr}");
    assert_eq!(cdr["outcome"], "answered", "{cdr}");
    assert_eq!(cdr["hangup_by"], "system", "the flow hung up: {cdr}");
    assert_eq!(cdr["complete"], true, "{cdr}");
    assert_eq!(cdr["survey"]["attitude"], 5, "{cdr}");
    assert_eq!(cdr["survey"]["efficiency"], 1, "{cdr}");
    let path: Vec<&str> = cdr["ivr_path"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(path[..3], ["welcome", "menu", "q"], "{cdr}");
    assert!(path.contains(&"survey/ask"), "{cdr}");
    assert!(cdr["talk_ms"].as_u64().unwrap_or(0) >= 1000, "{cdr}");
    assert!(cdr["wait_ms"].as_u64().is_some(), "{cdr}");
    assert_eq!(
        cdr["recording"]["sha256"].as_str().map(str::len),
        Some(64),
        "{cdr}"
    );
    let legs: Vec<&str> = cdr["quality"]
        .as_array()
        .map(|a| a.iter().filter_map(|q| q["leg"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(legs, ["caller", "agent"], "{cdr}");
    assert!(
        cdr["quality"][0]["received"].as_u64().unwrap_or(0) > 100,
        "{cdr}"
    );
}

const SIMPLE_V1: &str = r#"
name = "test-line"
dids = ["12399"]
entry = "bye"
[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;

const BROKEN: &str = r#"
name = "test-line"
dids = ["12399"]
entry = "hello"
[nodes.hello]
kind = "play"
prompts = ["ivr_goodbye"]
next = "nowhere"
"#;

const SIMPLE_V2: &str = r#"
name = "test-line"
dids = ["12399"]
entry = "bye"
# edited: a different goodbye
[nodes.bye]
kind = "hangup"
prompt = "ivr_no_input"
"#;

fn version(h: &Hotline) -> String {
    h.healthz()["ivr"]["flows"][0]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_broken_edit_is_refused_and_a_good_one_goes_live_without_a_restart() {
    let net = Net(102);
    let dir = setup(&[("line.toml", SIMPLE_V1)]);
    let file = dir.path().join("flows/line.toml");
    let h = start(net, dir, "");
    let v1 = version(&h);
    assert_eq!(v1.len(), 12, "{}", h.healthz());

    std::fs::write(&file, BROKEN).unwrap();
    let health = h.wait_for(
        "the broken edit to be refused",
        Duration::from_secs(10),
        |v| !v["ivr"]["problems"].as_array().unwrap().is_empty(),
    );
    let problems = health["ivr"]["problems"].to_string();
    assert!(problems.contains("line.toml:8"), "{problems}");
    assert!(
        problems.contains("unknown node \\\"nowhere\\\""),
        "{problems}"
    );
    assert_eq!(version(&h), v1, "the previous flow stays live");
    // ... and still answers calls.
    let report = common::report(
        &common::dial(net, "12399", &["--hangup-after", "20"])
            .output()
            .unwrap(),
    );
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["ended_by"], "remote", "{report}");

    std::fs::write(&file, SIMPLE_V2).unwrap();
    h.wait_for("the good edit to go live", Duration::from_secs(10), |v| {
        v["ivr"]["problems"].as_array().unwrap().is_empty()
            && v["ivr"]["flows"][0]["version"] != v1.as_str()
    });
    assert!(h.log().contains("IVR edit refused"), "logged loudly");
    let report = common::report(
        &common::dial(net, "12399", &["--hangup-after", "20"])
            .output()
            .unwrap(),
    );
    assert_eq!(report["status"], 200, "{report}");
    assert!(h.log().contains("prompt=ivr_no_input") || h.log().contains("node=bye"));
}

const SCREEN: &str = r#"
name = "test-line"
dids = ["12399"]
entry = "screen"
[nodes.screen]
kind = "blacklist"
next = "bye"
[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;

#[test]
fn a_blocked_caller_is_refused_and_others_pass() {
    let net = Net(103);
    let h = start(
        net,
        setup(&[("line.toml", SCREEN)]),
        "\n[[blacklist]]\nnumber = \"139*\"\nreason = \"test\"\n",
    );
    let blocked = common::dial(net, "12399", &["--from", "13912345678"])
        .output()
        .unwrap();
    let report = common::report(&blocked);
    assert_eq!(report["status"], 603, "{report}");
    assert!(h.log().contains("caller is on the block list"));
    let ok = common::dial(
        net,
        "12399",
        &["--from", "13712345678", "--hangup-after", "20"],
    )
    .output()
    .unwrap();
    let report = common::report(&ok);
    assert_eq!(report["status"], 200, "{report}");
}

#[test]
fn after_hours_the_caller_leaves_a_voicemail() {
    let net = Net(104);
    let h = start(net, setup(&[("line.toml", AFTER_HOURS)]), "");
    // A short prompt (~2 s) and the beep, then ~4 s of "speech" (a tone),
    // then the caller hangs up: the message is kept.
    let report = common::report(
        &common::dial(net, "12399", &["--tone", "440", "--hangup-after", "7"])
            .output()
            .unwrap(),
    );
    assert_eq!(report["status"], 200, "{report}");
    h.wait_for("the voicemail to be saved", Duration::from_secs(10), |_| {
        h.log().contains("voicemail saved")
    });
    let files = h.data_files(".wav");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].to_string_lossy().contains("voicemail"),
        "{files:?}"
    );
    let r = hound::WavReader::open(&files[0]).unwrap();
    let secs = r.duration() as f64 / 8000.0;
    assert!(secs >= 2.0, "voicemail of {secs:.1} s");
    // The caller hung up while recording: the call's record still names
    // the message (it used to say `"voicemail": null`).
    let cfg = h.dir.path().join("hotline.toml");
    let record = (0..100)
        .find_map(|_| {
            let out = hotline(&[
                "records",
                "--config",
                cfg.to_str().unwrap(),
                "--format",
                "json",
            ]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let found = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .next();
            if found.is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            found
        })
        .expect("the call's record");
    let vm = &record["voicemail"];
    assert!(!vm.is_null(), "the record names the voicemail: {record}");
    assert_eq!(record["outcome"], "voicemail", "not abandoned: {record}");
    assert!(
        files[0]
            .to_string_lossy()
            .ends_with(vm["path"].as_str().unwrap_or("?")),
        "{vm} vs {files:?}"
    );
}

fn hotline(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn admin_cli_checks_draws_and_explains() {
    // The shipped flows validate against the shipped configuration.
    let out = hotline(&["flow", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("12345.toml: ok"), "{text}");
    // A broken file: every error, with file and line, exit 2.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        BROKEN.replace(
            "prompts = [\"ivr_goodbye\"]",
            "prompts = [\"no_such_sound\"]",
        ),
    )
    .unwrap();
    let out = hotline(&["flow", "check", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.toml:8"), "{err}");
    assert!(err.contains("no_such_sound"), "{err}");
    assert!(err.contains("nowhere"), "{err}");
    // The picture.
    let out = hotline(&["flow", "graph", "ivr-flows/12345.toml"]);
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("\"menu\" -> \"consult\""), "{dot}");
    let out = hotline(&["flow", "graph", "--mermaid", "ivr-flows/12345.toml"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("flowchart TD"));
    // 2026-02-14 is a Saturday worked instead of a Spring Festival day.
    let out = hotline(&["schedule", "working-hours", "2026-02-14T09:00"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("open") && text.contains("春节调休"), "{text}");
    let out = hotline(&["schedule", "working-hours", "2026-10-05"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("closed") && text.contains("国庆"), "{text}");
    let out = hotline(&["schedule", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

const INVALID: &str = r#"
name = "test-line"
dids = ["12399"]
entry = "menu"
[nodes.menu]
kind = "menu"
prompts = ["ivr_no_input"]
timeout_secs = 6
retries = 3
invalid_prompt = "ivr_invalid"
fallback = "goodbye"
[nodes.menu.options]
"1" = "goodbye"
[nodes.goodbye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;

#[test]
fn three_invalid_keys_end_with_goodbye() {
    let net = Net(105);
    let h = start(net, setup(&[("line.toml", INVALID)]), "");
    let report = common::report(
        &common::dial(
            net,
            "12399",
            &[
                "--hangup-after",
                "40",
                "--dtmf",
                "7",
                "--dtmf-at",
                "2.5",
                "--dtmf",
                "8",
                "--dtmf-at",
                "7",
                "--dtmf",
                "9",
                "--dtmf-at",
                "11.5",
            ],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["ended_by"], "remote", "{report}");
    let log = h.log();
    let over = log
        .lines()
        .find(|l| l.contains("flow over"))
        .unwrap_or_default();
    assert!(over.contains(r#"path=["menu", "goodbye"]"#), "{over}");
    assert!(log.contains("flow hangs up"), "{}", h.tail_log());
}

const LONG_V1: &str = r#"
name = "test-line"
dids = ["12399"]
entry = "welcome"
[nodes.welcome]
kind = "play"
prompts = ["ivr_12345_welcome"]
next = "bye"
[nodes.bye]
kind = "hangup"
"#;

#[test]
fn an_edit_during_a_call_leaves_that_call_on_its_version() {
    let net = Net(106);
    let dir = setup(&[("line.toml", LONG_V1)]);
    let file = dir.path().join("flows/line.toml");
    let h = start(net, dir, "");
    let v1 = version(&h);
    // Call 1 listens to the long welcome while the flow is edited.
    let first = common::dial(net, "12399", &["--hangup-after", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    h.wait_for("call 1 to start", Duration::from_secs(10), |v| {
        v["calls"]["active"] == 1
    });
    std::fs::write(&file, SIMPLE_V2).unwrap();
    h.wait_for("the edit to go live", Duration::from_secs(10), |v| {
        v["ivr"]["flows"][0]["version"] != v1.as_str()
    });
    let v2 = version(&h);
    // From the carrier's address on another port (call 1 holds 5062).
    let second = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["dial", &format!("sip:12399@{}", net.sip())])
        .args(["--bind", &format!("{}:5064", net.carrier())])
        .args(["--hangup-after", "30"])
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(common::report(&second)["status"], 200);
    let first = first.wait_with_output().unwrap();
    assert_eq!(common::report(&first)["ended_by"], "remote");
    h.wait_for("both flows to end", Duration::from_secs(10), |_| {
        h.log().matches("flow over").count() == 2
    });
    let log = h.log();
    let overs: Vec<&str> = log.lines().filter(|l| l.contains("flow over")).collect();
    assert!(
        overs
            .iter()
            .any(|l| l.contains(&format!("version={v1}"))
                && l.contains(r#"path=["welcome", "bye"]"#)),
        "call 1 finished on the version it started on: {overs:?}"
    );
    assert!(
        overs
            .iter()
            .any(|l| l.contains(&format!("version={v2}")) && l.contains(r#"path=["bye"]"#)),
        "call 2 took the new version: {overs:?}"
    );
}

#[test]
fn a_broken_flow_stops_the_start_with_every_error() {
    let net = Net(109);
    let dir = setup(&[
        ("line.toml", BROKEN),
        ("garbage.toml", "\u{0}\u{1}not toml at all [[["),
    ]);
    let data = dir.path().join("var");
    let cfg = dir.path().join("hotline.toml");
    std::fs::write(&cfg, common::config(net, &data, &extra(dir.path()))).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("line.toml:8"), "{err}");
    assert!(err.contains("nowhere"), "{err}");
    assert!(err.contains("garbage.toml"), "{err}");
}

#[test]
fn a_broken_prompt_file_is_refused_like_a_broken_flow() {
    let net = Net(110);
    let dir = setup(&[("line.toml", SIMPLE_V1)]);
    let sounds = dir.path().join("sounds");
    std::fs::create_dir_all(&sounds).unwrap();
    let good = std::fs::read("sounds/ivr_goodbye.wav").unwrap();
    let prompt = sounds.join("ivr_goodbye.wav");
    std::fs::write(&prompt, &good).unwrap();
    std::fs::copy("sounds/moh.wav", sounds.join("moh.wav")).unwrap();
    let data = dir.path().join("var");
    let text = common::config(net, &data, &extra(dir.path())).replace(
        "[media]\n",
        &format!("[media]\nsounds_dir = \"{}\"\n", sounds.display()),
    );
    let h = Hotline::start_with(net, dir, &text);
    // A re-recorded prompt that is not audio: refused, the old one plays on.
    std::fs::write(&prompt, b"RIFF\x00\x00\x00\x00WAVEjunk").unwrap();
    let health = h.wait_for(
        "the broken prompt to be refused",
        Duration::from_secs(10),
        |v| !v["ivr"]["problems"].as_array().unwrap().is_empty(),
    );
    assert!(
        health["ivr"]["problems"]
            .to_string()
            .contains("ivr_goodbye"),
        "{health}"
    );
    let report = common::report(
        &common::dial(net, "12399", &["--hangup-after", "20"])
            .output()
            .unwrap(),
    );
    assert_eq!(report["status"], 200, "{report}");
    assert!(
        report["media"]["received_secs"].as_f64().unwrap() > 2.0,
        "the old prompt played: {report}"
    );
    // Fixed: live again.
    std::fs::write(&prompt, &good).unwrap();
    h.wait_for(
        "the fixed prompt to go live",
        Duration::from_secs(10),
        |v| {
            v["ivr"]["problems"].as_array().unwrap().is_empty()
                && v["ivr"]["reloads"].as_u64() >= Some(1)
        },
    );
}

/// POST a JSON body with a bearer token (or none): (status, body).
fn api(
    net: Net,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let addr = format!("{}:8080", net.ip(1));
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn the_block_list_is_edited_by_api_takes_effect_at_once_and_survives_a_restart() {
    let net = Net(123);
    let users = r#"
[[user]]
username = "sup"
role = "supervisor"
password = "sup-password"

[[user]]
username = "agent"
role = "agent"
agent_id = "A01"
password = "agent-password"

[[user]]
username = "root"
role = "admin"
tenant = "*"
password = "root-password"
"#;
    let mut h = start(net, setup(&[("line.toml", SCREEN)]), users);
    let login = |u: &str, p: &str| {
        let (s, v) = api(
            net,
            "POST",
            "/api/v1/login",
            None,
            &format!(r#"{{"username":"{u}","password":"{p}"}}"#),
        );
        assert_eq!(s, 200, "{v}");
        v["token"].as_str().unwrap().to_string()
    };
    let sup = login("sup", "sup-password");
    let agent = login("agent", "agent-password");
    let root = login("root", "root-password");
    let dial_from = |n: &str| {
        common::report(
            &common::dial(net, "12399", &["--from", n, "--hangup-after", "3"])
                .output()
                .unwrap(),
        )
    };
    assert_eq!(dial_from("13912345678")["status"], 200, "not blocked yet");
    // Refused: an agent, a pattern blocking everyone, bad JSON, bad time.
    let (s, _) = api(
        net,
        "POST",
        "/api/v1/admin/blacklist",
        Some(&agent),
        r#"{"number":"139*"}"#,
    );
    assert_eq!(s, 403);
    let (s, v) = api(
        net,
        "POST",
        "/api/v1/admin/blacklist",
        Some(&sup),
        r#"{"number":"*"}"#,
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("bad_number")),
        "{v}"
    );
    let (s, _) = api(net, "POST", "/api/v1/admin/blacklist", Some(&sup), "{");
    assert_eq!(s, 400);
    let (s, _) = api(
        net,
        "POST",
        "/api/v1/admin/blacklist",
        Some(&sup),
        r#"{"number":"139*","expires_at":"soon"}"#,
    );
    assert_eq!(s, 400);
    let (s, _) = api(
        net,
        "POST",
        "/api/v1/admin/blacklist",
        Some(&sup),
        r#"{"number":"139*","tenant":"other"}"#,
    );
    assert_eq!(s, 403, "another tenant");
    let (s, _) = api(
        net,
        "POST",
        "/api/v1/admin/blacklist",
        Some(&root),
        r#"{"number":"139*"}"#,
    );
    assert_eq!(s, 400, "a global admin names the tenant");
    // Added: the next call from 139… is refused.
    let (s, v) = api(
        net,
        "POST",
        "/api/v1/admin/blacklist",
        Some(&sup),
        r#"{"number":"139*","reason":"abusive calls"}"#,
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(dial_from("13912345678")["status"], 603);
    let (s, v) = api(net, "GET", "/api/v1/admin/blacklist", Some(&sup), "");
    assert_eq!(s, 200);
    assert_eq!(v["entries"][0]["number"], "139*", "{v}");
    assert_eq!(v["entries"][0]["added_by"], "sup", "{v}");
    // Reload: admins only; valid files reload.
    let (s, _) = api(net, "POST", "/api/v1/admin/reload", Some(&sup), "");
    assert_eq!(s, 403);
    let (s, v) = api(net, "POST", "/api/v1/admin/reload", Some(&root), "");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["flows"][0]["name"], "test-line", "{v}");
    // After a restart the entry is still there.
    h.kill9();
    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().unwrap());
    drop(h);
    let text = std::fs::read_to_string(dir.path().join("hotline.toml")).unwrap();
    let h = Hotline::start_with(net, dir, &text);
    assert_eq!(
        dial_from("13912345678")["status"],
        603,
        "kept across the restart"
    );
    let sup = login("sup", "sup-password");
    let (s, _) = api(
        net,
        "DELETE",
        "/api/v1/admin/blacklist/139*",
        Some(&sup),
        "",
    );
    assert_eq!(s, 204);
    let (s, _) = api(
        net,
        "DELETE",
        "/api/v1/admin/blacklist/139*",
        Some(&sup),
        "",
    );
    assert_eq!(s, 404);
    assert_eq!(dial_from("13912345678")["status"], 200, "removed");
    let (_, audit) = api(net, "GET", "/api/v1/admin/audit", Some(&sup), "");
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"blacklist.add") && actions.contains(&"blacklist.remove"),
        "{audit}"
    );
    drop(h);
}

#[test]
fn the_agent_sends_the_caller_to_the_survey_by_api() {
    let net = Net(124);
    let user = r#"
[[user]]
username = "agent"
role = "agent"
agent_id = "A01"
password = "agent-password"
"#;
    let h = start(
        net,
        setup(&[("line.toml", MENU), ("survey.toml", SURVEY)]),
        user,
    );
    let (s, v) = api(
        net,
        "POST",
        "/api/v1/login",
        None,
        r#"{"username":"agent","password":"agent-password"}"#,
    );
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    // The agent's phone would talk for 30 s; the agent ends it by API.
    let phone = common::start_phone(
        &h,
        0,
        "2001",
        &[
            "--tone",
            "600",
            "--answer-after",
            "1",
            "--hangup-after",
            "30",
        ],
    );
    let caller = common::dial(
        net,
        "12399",
        &[
            "--tone",
            "440",
            "--hangup-after",
            "40",
            "--dtmf",
            "1",
            "--dtmf-at",
            "1",
            "--dtmf",
            "1",
            "--dtmf-at",
            "9",
            "--dtmf",
            "3",
            "--dtmf-at",
            "13",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    h.wait_for("the agent to answer", Duration::from_secs(15), |_| {
        h.log().contains("connected caller_rtp")
    });
    std::thread::sleep(Duration::from_secs(1));
    let (s, v) = api(net, "POST", "/api/v1/agent/call/survey", Some(&token), "");
    assert_eq!(s, 200, "{v}");
    let report = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(
        report["ended_by"], "remote",
        "the flow hung up after the survey: {report}"
    );
    let phone = common::report(&phone.wait_with_output().unwrap());
    assert_eq!(
        phone["ended_by"], "remote",
        "hotline released the agent: {phone}"
    );
    let log = h.log();
    assert!(
        log.contains("agent sends the caller to the survey"),
        "{}",
        h.tail_log()
    );
    assert!(
        log.contains("dimension=attitude score=5"),
        "{}",
        h.tail_log()
    );
    assert!(
        log.contains("dimension=efficiency score=1"),
        "{}",
        h.tail_log()
    );
    let (s, v) = api(net, "POST", "/api/v1/agent/call/survey", Some(&token), "");
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("no_call")),
        "{v}"
    );
}

/// Number 12399 says its (6.6 s) welcome and hangs up.
const GOODBYE: &str = r#"
name = "goodbye-line"
dids = ["12399"]
entry = "bye"
[nodes.bye]
kind = "hangup"
prompt = "ivr_12345_welcome"
"#;

/// The caller's phone vanishes (killed) while the flow's goodbye plays:
/// the flow's BYE goes unanswered until its transaction times out (64*T1,
/// RFC 3261 §17.1.2.2). The call's record ends with the call, not with
/// that timeout: the ticket platform gets `call.ended` while the BYE still
/// waits, and the call is gone once it has timed out.
#[test]
fn a_caller_gone_during_the_goodbye_does_not_hold_up_the_calls_record() {
    let net = Net(246);
    let dir = setup(&[("line.toml", GOODBYE)]);
    let jsonl = dir.path().join("events");
    let h = start(
        net,
        dir,
        &format!("\n[events]\njsonl_dir = \"{}\"\n", jsonl.display()),
    );
    let mut caller = common::dial(net, "12399", &["--tone", "440", "--hangup-after", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until("the goodbye to play", Duration::from_secs(20), || {
        h.log().contains("node=bye").then_some(())
    });
    caller.kill().ok();
    caller.wait().ok();
    // The goodbye ends and the BYE goes out to nobody; the record does not
    // wait for its answer (it would come 32 s later).
    common::wait_until("call.ended", Duration::from_secs(20), || {
        jsonl_events(&jsonl)
            .iter()
            .any(|e| e["type"] == "call.ended")
            .then_some(())
    });
    let health = h.healthz();
    assert_eq!(
        health["calls"]["active"], 1,
        "the BYE is still unanswered: {health}"
    );
    h.wait_for("the call to end", Duration::from_secs(60), |v| {
        v["calls"]["active"] == 0
    });
}
