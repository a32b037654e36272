//! The queue order as configured (issue 12 item 6): an emergency caller
//! of the shipped 12345 flow (key 9, the Level I lane) is served before an
//! agent's consultation of the group (attended transfer to the group),
//! which is served before ordinary callers. Driven from outside: real
//! callers pressing keys in the repository's own `ivr-flows/12345.toml`,
//! real agent phones, the agents' API sessions.
//!
//! Tones stay clear of the music on hold (523–880 Hz): A01 1400 Hz, A03
//! 1800 Hz, the emergency caller 350 Hz, the others 440 Hz.

mod common;

use std::path::Path;
use std::process::{Child, Output};
use std::time::Duration;

use common::api::Api;
use common::{Hotline, Net};

const SETUP: &str = r#"
[[group]]
id = "general"
acw_secs = 1
ring_timeout_secs = 10

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
skills = { general = 5 }
auto_login = true

[[agent]]
user = "2003"
password = "pass2003"
job_number = "A03"
skills = { general = 5 }

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
"#;

/// A child process killed when the test ends, even by a panic.
struct Proc(Option<Child>);

impl Proc {
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

/// A caller with `tone` dialling 12345 from port `port` and pressing `key`
/// during the welcome (type-ahead for the menu).
fn dial_12345(h: &Hotline, port: u16, tone: &str, key: &str) -> Proc {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["dial", &format!("sip:12345@{}", h.net.sip())])
        .args(["--bind", &format!("{}:{port}", h.net.carrier())])
        .args(["--tone", tone, "--hangup-after", "60"])
        .args(["--dtmf", key, "--dtmf-at", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Proc(Some(child))
}

fn samples(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("wav");
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

/// 20 ms windows of `audio` where `hz` carries more than half the energy.
fn windows_with(audio: &[i16], hz: f64) -> usize {
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
            energy > 1e3 && (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (80.0 * energy) > 0.5
        })
        .count()
}

fn wait_log(h: &Hotline, what: &str, n: usize) {
    h.wait_for(what, Duration::from_secs(30), |_| {
        h.log().matches(what).count() >= n
    });
}

/// A01 talks with an ordinary caller; an emergency caller (key 9) and an
/// ordinary one (key 0) wait; A01 consults the group. The next agent to
/// sign in (A03) gets the emergency caller, not the consultation.
#[test]
fn an_emergency_caller_of_the_shipped_flow_goes_before_a_consultation() {
    let net = Net(184);
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows");
    let schedules = dir.path().join("cal/schedules");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::create_dir_all(&schedules).unwrap();
    // The shipped flows, as they are (the emergency lane as configured).
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in ["12345.toml", "survey.toml"] {
        std::fs::copy(repo.join("ivr-flows").join(f), flows.join(f)).unwrap();
    }
    // Open around the clock, so the test does not depend on the hour.
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let always: String = days
        .iter()
        .map(|d| format!("{d} = [\"00:00-24:00\"]\n"))
        .collect();
    std::fs::write(
        schedules.join("hotline-hours.toml"),
        format!("[weekly]\n{always}"),
    )
    .unwrap();
    let ivr = format!(
        "\n[ivr]\nflows_dir = \"{}\"\ncalendars_dir = \"{}\"\n",
        flows.display(),
        dir.path().join("cal").display()
    );
    let data = dir.path().join("var");
    // The default test config routes 12345 itself: the flow does here.
    let routed =
        "[[did]]\nnumber = \"12345\"\nring = \"sequential\"\nagents = [\"1001\", \"1002\"]\n";
    let text = common::config(net, &data, &format!("{SETUP}{ivr}"));
    assert!(text.contains(routed), "the default test config changed");
    let text = text.replace(routed, "");
    let h = Hotline::start_with(net, dir, &text);
    let api = Api::new(net);
    let a1 = api.login("agent-1", "agent-1-password");
    let a3 = api.login("agent-3", "agent-3-password");
    let wav = tempfile::tempdir().unwrap();
    let a3_wav = wav.path().join("a03.wav");
    let _phone1 = Proc(Some(common::start_phone(
        &h,
        0,
        "2001",
        &["--tone", "1400", "--answer-after", "0.3"],
    )));
    let phone3 = Proc(Some(common::start_phone(
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
    )));
    let _first = dial_12345(&h, 5062, "440", "0");
    wait_log(&h, "connected caller_rtp", 1);
    // Waiting while A01 talks: an ordinary caller, then an emergency.
    let _ordinary = dial_12345(&h, 5064, "440", "0");
    wait_log(&h, ": queued call=", 2);
    let _emergency = dial_12345(&h, 5066, "350", "9");
    wait_log(&h, ": queued call=", 3);
    assert!(
        h.log().contains("priority=255"),
        "key 9 queued in the emergency lane:\n{}",
        h.tail_log()
    );
    // A01 consults the group: the consultation waits too.
    let (s, v) = api.post(
        "/api/v1/agent/call/consult",
        &a1,
        r#"{"to_group":"general"}"#,
    );
    assert_eq!(s, 202, "{v}");
    wait_log(&h, "consulting a skill group", 1);
    // A03 signs in: the ACD offers the head of the queue.
    let (s, v) = api.post("/api/v1/agent/state", &a3, r#"{"state":"logged_in"}"#);
    assert_eq!(s, 200, "{v}");
    let a3_call = common::report(&phone3.output());
    assert_eq!(a3_call["status"], 200, "{a3_call}");
    let heard = samples(&a3_wav);
    let (emergency, consulting_agent, ordinary) = (
        windows_with(&heard, 350.0),
        windows_with(&heard, 1400.0),
        windows_with(&heard, 440.0),
    );
    assert!(
        emergency > 50 && consulting_agent < 5 && ordinary < 5,
        "A03 got the emergency caller (350 Hz: {emergency} windows), not A01's \
         consultation (1400 Hz: {consulting_agent}) nor the ordinary caller \
         (440 Hz: {ordinary})\n{}",
        h.tail_log()
    );
}
