//! Supervisors on live calls, checked on audio (media engine issue §6,
//! REQUIREMENTS §3 monitoring): a supervisor dials `*32<agent>` from their
//! phone and whispers — the agent hears them, the caller and the recording
//! never do; another dials `*31<agent>` to listen (hearing both sides) and
//! presses 3 to barge in, after which the caller hears them too. Someone
//! who is not a supervisor is refused.
//!
//! Each party sends its own tone (caller 440 Hz, agent 600 Hz, supervisor
//! 1000 Hz) and records what it hears; a Goertzel filter per 20 ms window
//! tells which voices reached whom.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Hotline, Net};

const PARTIES: &str = r#"
[[agent]]
user = "2001"
password = "pass2001"

[[agent]]
user = "3001"
password = "pass3001"
supervisor = true

[[agent]]
user = "3002"
password = "pass3002"

[[did]]
number = "12399"
agents = ["2001"]
"#;

fn samples(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("wav");
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

fn stereo(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let all = samples(path);
    let left = all.iter().step_by(2).copied().collect();
    let right = all.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// Share of a 20 ms window's energy at `hz` (Goertzel): ~1 for a pure tone
/// at `hz`, ~0.5 when it is one of two equal tones, ~0 when absent.
fn share(window: &[i16], hz: f64) -> f64 {
    let n = window.len() as f64;
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0;
    for &x in window {
        let x = f64::from(x);
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy < 1e3 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (n / 2.0 * energy)
}

/// Windows (20 ms) of `audio` where `hz` carries more than `min` of the energy.
fn windows_with(audio: &[i16], hz: f64, min: f64) -> usize {
    audio
        .chunks_exact(160)
        .filter(|w| share(w, hz) > min)
        .count()
}

fn start_caller(h: &Hotline, heard: &Path, secs: &str) -> Child {
    common::dial(
        h.net,
        "12399",
        &[
            "--tone",
            "440",
            "--hangup-after",
            secs,
            "--record",
            heard.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

/// A supervisor (or pretender) `user` dials `code` + 2001 from agent
/// address 5.
fn supervisor(h: &Hotline, user: &str, code: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["dial", &format!("sip:{code}2001@{}", h.net.sip())])
        .args(["--bind", &format!("{}:5062", h.net.agent(5))])
        .args([
            "--from",
            user,
            "--user",
            user,
            "--password",
            &format!("pass{user}"),
        ])
        .args(["--tone", "1000"])
        .args(args)
        .output()
        .unwrap();
    common::report(&out)
}

fn wait_connected(h: &Hotline) {
    h.wait_for("the call to connect", Duration::from_secs(10), |_| {
        h.log().contains("connected caller_rtp")
    });
}

#[test]
fn a_whisper_reaches_the_agent_only_never_the_caller_or_the_recording() {
    let net = Net(111);
    let h = Hotline::start(net, PARTIES);
    let dir = tempfile::tempdir().unwrap();
    let (agent_wav, caller_wav, sup_wav) = (
        dir.path().join("agent.wav"),
        dir.path().join("caller.wav"),
        dir.path().join("sup.wav"),
    );
    let agent = common::start_phone(
        &h,
        0,
        "2001",
        &["--tone", "600", "--record", agent_wav.to_str().unwrap()],
    );
    let caller = start_caller(&h, &caller_wav, "9");
    wait_connected(&h);
    // Not a supervisor: refused.
    let pretender = supervisor(&h, "3002", "*32", &["--hangup-after", "2"]);
    assert_eq!(pretender["status"], 403, "{pretender}");
    let report = supervisor(
        &h,
        "3001",
        "*32",
        &["--hangup-after", "4", "--record", sup_wav.to_str().unwrap()],
    );
    assert_eq!(report["status"], 200, "{report}");
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["status"], 200, "{caller}");
    let agent = common::report(&agent.wait_with_output().unwrap());
    assert_eq!(agent["status"], 200, "{agent}");
    h.wait_for("the recording", Duration::from_secs(10), |_| {
        h.log().contains("recording ready")
    });

    let heard_by_agent = samples(&agent_wav);
    let heard_by_caller = samples(&caller_wav);
    let heard_by_sup = samples(&sup_wav);
    // The whisper (1000 Hz) reached the agent for most of its 4 s …
    let agent_whisper = windows_with(&heard_by_agent, 1000.0, 0.2);
    assert!(
        agent_whisper > 100,
        "agent heard the whisper in {agent_whisper} windows"
    );
    // … with the caller still audible under it.
    assert!(windows_with(&heard_by_agent, 440.0, 0.2) > 200);
    // The caller never heard it, but kept hearing the agent.
    let caller_whisper = windows_with(&heard_by_caller, 1000.0, 0.05);
    assert_eq!(caller_whisper, 0, "the caller heard the whisper");
    assert!(windows_with(&heard_by_caller, 600.0, 0.5) > 200);
    // The supervisor heard both sides.
    assert!(windows_with(&heard_by_sup, 440.0, 0.2) > 50);
    assert!(windows_with(&heard_by_sup, 600.0, 0.2) > 50);
    // The recording: caller left, what the caller heard right; no whisper.
    let files = h.data_files(".wav");
    assert_eq!(files.len(), 1, "{files:?}");
    let (left, right) = stereo(&files[0]);
    assert!(windows_with(&left, 440.0, 0.5) > 200);
    assert!(windows_with(&right, 600.0, 0.5) > 200);
    assert_eq!(
        windows_with(&left, 1000.0, 0.05),
        0,
        "whisper on the caller's channel"
    );
    assert_eq!(
        windows_with(&right, 1000.0, 0.05),
        0,
        "whisper in the recording"
    );
    assert!(h.log().contains("supervisor joined the call"));
    h.wait_for("everything released", Duration::from_secs(10), |v| {
        v["calls"]["active"] == 0 && v["media"]["rtp_port_pairs_in_use"] == 0
    });
}

#[test]
fn a_listening_supervisor_barges_in_with_key_3() {
    let net = Net(112);
    let h = Hotline::start(net, PARTIES);
    let dir = tempfile::tempdir().unwrap();
    let (caller_wav, sup_wav) = (dir.path().join("caller.wav"), dir.path().join("sup.wav"));
    let agent = common::start_phone(&h, 0, "2001", &["--tone", "600"]);
    let caller = start_caller(&h, &caller_wav, "10");
    wait_connected(&h);
    // Listen first; press 3 after 2 s: barge.
    let report = supervisor(
        &h,
        "3001",
        "*31",
        &[
            "--hangup-after",
            "5",
            "--dtmf",
            "3",
            "--dtmf-at",
            "2",
            "--record",
            sup_wav.to_str().unwrap(),
        ],
    );
    assert_eq!(report["status"], 200, "{report}");
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["status"], 200, "{caller}");
    let _ = agent.wait_with_output();
    let heard_by_caller = samples(&caller_wav);
    let heard_by_sup = samples(&sup_wav);
    // Listening, the supervisor heard both sides.
    assert!(windows_with(&heard_by_sup, 440.0, 0.2) > 50);
    assert!(windows_with(&heard_by_sup, 600.0, 0.2) > 50);
    // After the key, the caller heard the supervisor (about 3 s of it),
    // and not before (listen): well under the 5 s the supervisor was on.
    let barged = windows_with(&heard_by_caller, 1000.0, 0.2);
    assert!(barged > 50, "caller heard the barge in {barged} windows");
    assert!(
        barged < 200,
        "caller heard the supervisor while listening: {barged}"
    );
    assert!(
        h.log()
            .lines()
            .any(|l| l.contains("supervisor mode") && l.contains("mode=Barge")),
        "{}",
        h.tail_log()
    );
}

/// Supervisors reach only their own centre's calls from their phones, and
/// every attempt is in the audit log (issue 14 §1): a supervisor of
/// another centre dialling `*31<agent>` gets 404 (as for an unknown agent)
/// and is audited as refused; the agent's own supervisor joins, audited.
#[test]
fn a_supervisor_of_another_centre_is_refused_and_every_attempt_is_audited() {
    const CENTRES: &str = r#"
[[tenant]]
id = "a"
[[tenant]]
id = "b"

[[agent]]
user = "2001"
password = "pass2001"
tenant = "a"

[[agent]]
user = "3001"
password = "pass3001"
tenant = "a"
supervisor = true

[[agent]]
user = "4001"
password = "pass4001"
tenant = "b"
supervisor = true

[[did]]
number = "12399"
agents = ["2001"]
"#;
    let net = Net(213);
    let h = Hotline::start(net, CENTRES);
    let dir = tempfile::tempdir().unwrap();
    let agent = common::start_phone(&h, 0, "2001", &["--tone", "600"]);
    let caller = start_caller(&h, &dir.path().join("caller.wav"), "6");
    wait_connected(&h);
    let stranger = supervisor(&h, "4001", "*31", &["--hangup-after", "1"]);
    assert_eq!(stranger["status"], 404, "{stranger}");
    let own = supervisor(&h, "3001", "*31", &["--hangup-after", "1"]);
    assert_eq!(own["status"], 200, "{own}");
    let _ = caller.wait_with_output();
    drop(agent);
    let addr = format!("{}:8080", net.ip(1));
    let token = h.ops_token();
    let mut audit = serde_json::Value::Null;
    for _ in 0..50 {
        let (_, body) =
            common::http_send(&addr, "GET", "/api/v1/admin/audit", Some(&token), None).unwrap();
        audit = serde_json::from_str(&body).unwrap();
        if audit.to_string().contains("\"call.supervise\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = audit["audit"].as_array().cloned().unwrap_or_default();
    let find = |action: &str, actor: &str| {
        lines
            .iter()
            .find(|l| l["action"] == action && l["actor"] == actor)
            .cloned()
            .unwrap_or_default()
    };
    let refused = find("call.supervise_refused", "4001");
    assert_eq!(refused["tenant"], "b", "{audit}");
    let joined = find("call.supervise", "3001");
    assert_eq!(joined["tenant"], "a", "{audit}");
    assert_eq!(joined["detail"]["mode"], "listen", "{audit}");
}
