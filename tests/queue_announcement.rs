//! The position announcement speaks the caller's place as a number, above
//! 9 too, and the wait the ACD estimates in minutes (issue 12 item 6):
//! ten SIPp callers wait in a queue with queue media, an eleventh caller
//! (`hotline dial`, recording what it hears) is told "您前面还有十位来电者，
//! 预计等待三十三分钟" — checked on the log line naming the prompts and on
//! the audio: the prompts' samples arrive in the caller's recording. The
//! announcement (about 7 s) outlasts the 2 s between announcements: it is
//! heard to its end, the ticks meanwhile are skipped.

mod common;

use std::path::Path;
use std::time::Duration;

use common::api::Api;
use common::{Hotline, Net, Sipp};
use hotline::media::prompts::PromptLibrary;

const SETUP: &str = r#"
[[group]]
id = "general"
queue_media = true
announce_every_secs = 2
ring_timeout_secs = 10

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
skills = { general = 5 }

[[did]]
number = "12399"
queue = "general"

[[user]]
username = "agent-1"
role = "agent"
agent_id = "A01"
password = "agent-1-password"
"#;

fn samples(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("wav");
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

/// Whether `needle` occurs in `hay` (sample for sample: G.711 A-law
/// prompts go out and come back A-law, so their samples survive exactly).
fn contains(hay: &[i16], needle: &[i16]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// 100 ms from the middle of `name` as the switch decodes it.
fn piece_of(library: &PromptLibrary, name: &str) -> Vec<i16> {
    let p = library.get(name).expect("prompt");
    let s = p.samples();
    let mid = s.len() / 2;
    s[mid.saturating_sub(400)..(mid + 400).min(s.len())].to_vec()
}

#[test]
fn the_eleventh_caller_hears_ten_ahead_and_the_estimated_minutes() {
    let net = Net(185);
    let h = Hotline::start(net, SETUP);
    let api = Api::new(net);
    let agent = api.login("agent-1", "agent-1-password");
    // A01 is signed in but not ready: the group is staffed (the ACD
    // estimates a wait: 180 s per caller with no history, one agent) and
    // nobody is offered a call.
    for state in [
        r#"{"state":"logged_in"}"#,
        r#"{"state":"not_ready","reason":"break"}"#,
    ] {
        let (s, v) = api.post("/api/v1/agent/state", &agent, state);
        assert_eq!(s, 200, "{v}");
    }
    let sip = net.sip();
    let _waiting = Sipp::start(
        "carrier_wait_in_queue.xml",
        &net.carrier(),
        &["-s", "12399", "-m", "10", "-l", "10", "-r", "10", &sip],
    );
    h.wait_for("ten callers waiting", Duration::from_secs(30), |_| {
        let stats = h
            .acd_stats()
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
            .unwrap_or_default();
        stats["stats"]["groups"][0]["calls_waiting"] == 10
    });
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("eleventh.wav");
    let out = common::dial(
        net,
        "12399",
        &["--hangup-after", "12", "--record", heard.to_str().unwrap()],
    )
    .output()
    .unwrap();
    let report = common::report(&out);
    assert_eq!(report["status"], 200, "{report}");

    let want = r#"prompts=["queue_ahead", "num_10", "queue_ahead_unit", "queue_wait", "num_3", "num_10", "num_3", "queue_minutes"]"#;
    let log = h.log();
    let line = log
        .lines()
        .find(|l| l.contains("position announcement") && l.contains("position=11"))
        .unwrap_or_else(|| panic!("no announcement for position 11:\n{}", h.tail_log()));
    assert!(line.contains("estimated_wait_secs=1980"), "{line}");
    assert!(line.contains(want), "{line}");

    let sounds = Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds");
    let names = [
        "queue_ahead",
        "num_10",
        "queue_ahead_unit",
        "num_3",
        "queue_minutes",
    ];
    let library = PromptLibrary::load(&sounds, &names).expect("prompts");
    let audio = samples(&heard);
    for name in names {
        assert!(
            contains(&audio, &piece_of(&library, name)),
            "the caller heard {name}"
        );
    }
    // Ten is 十, not read digit by digit (一零).
    let zero = PromptLibrary::load(&sounds, &["num_0"]).expect("prompts");
    assert!(!contains(&audio, &piece_of(&zero, "num_0")), "no 零");
}
