//! Queued callers hear the welcome, music on hold and position
//! announcements (Mandarin prompts from sounds/) until an agent answers —
//! the agent's voice follows at once — and can press 1 to be called back
//! instead of waiting.

mod common;

use std::time::Duration;

use common::{Hotline, Net};

const QUEUE: &str = r#"
[[group]]
id = "general"
queue_media = true
callback_key = "1"
announce_every_secs = 2
ring_timeout_secs = 10

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
skills = { general = 5 }
auto_login = true

[[did]]
number = "12399"
queue = "general"
"#;

fn samples(path: &std::path::Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("recording");
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

fn frequency(s: &[i16]) -> f64 {
    let crossings = s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (s.len() as f64 / 8000.0)
}

/// Call the queue (12399) with our phone; its report.
fn dial(net: Net, args: &[&str]) -> serde_json::Value {
    common::report(&common::dial(net, "12399", args).output().unwrap())
}

#[test]
fn queued_caller_hears_prompts_then_the_agent() {
    let net = Net(91);
    let h = Hotline::start(net, QUEUE);
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("caller.wav");
    let phone = common::start_phone(&h, 0, "2001", &["--tone", "600", "--answer-after", "4"]);
    let report = dial(
        net,
        &[
            "--tone",
            "440",
            "--hangup-after",
            "8",
            "--record",
            heard.to_str().unwrap(),
        ],
    );
    assert_eq!(report["status"], 200, "{report}");
    // Prompts, then the agent, on one continuous RTP stream: one SSRC and
    // no sequence jump at the switch (RFC 3550 §5.1), so no phone drops audio.
    assert_eq!(report["media"]["ssrcs_seen"], 1, "{report}");
    assert!(
        report["media"]["sequence_breaks"].as_u64().unwrap() <= 2,
        "{report}"
    );
    let phone_out = phone.wait_with_output().unwrap();
    let phone_report = common::report(&phone_out);
    assert_eq!(phone_report["status"], 200, "{phone_report}");

    let s = samples(&heard);
    assert!(s.len() >= 8000 * 6, "heard {} samples", s.len());
    // While the agent's phone rang (about 4 s) the caller heard the welcome
    // prompt: speech, loud enough, not silence.
    let early = &s[4000..8000 * 3];
    assert!(rms(early) > 300.0, "prompt level {:.0}", rms(early));
    // Then the agent: a clean 600 Hz tone.
    let late = &s[s.len() - 8000 * 2..];
    let f = frequency(late);
    assert!(
        (f - 600.0).abs() < 20.0,
        "after answer the caller hears {f:.0} Hz, expected the agent's 600 Hz"
    );
}

#[test]
fn pressing_1_in_the_queue_requests_a_callback_and_keeps_the_place() {
    let net = Net(92);
    let h = Hotline::start(net, QUEUE);
    // No agent: the caller waits, presses 1 after 2 s, hears the
    // confirmation and is hung up on.
    let report = dial(
        net,
        &["--dtmf", "1", "--dtmf-at", "2", "--hangup-after", "30"],
    );
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(
        report["ended_by"], "remote",
        "hotline hung up after the confirmation: {report}"
    );
    assert!(report["talk_ms"].as_u64().unwrap() < 20_000, "{report}");
    let body = h.acd_stats().unwrap();
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    let group = &stats["stats"]["groups"][0];
    assert_eq!(group["counters"]["callback_requested"], 1, "{stats:#}");
    assert_eq!(
        group["callbacks_pending"], 1,
        "the callback keeps its place: {stats:#}"
    );
    assert!(
        h.log().contains("caller asked to be called back"),
        "{}",
        h.tail_log()
    );
}

#[test]
fn a_caller_on_hold_hears_music_then_the_agent_again() {
    use common::Sipp;
    let net = Net(93);
    let h = Hotline::start(net, "");
    common::register(&h, "1001", &net.agent(0));
    // The agent answers (silent), holds after 1 s for 2.5 s, resumes, and
    // hangs up 1.5 s later.
    let agent = Sipp::start("agent_hold_moh.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("caller.wav");
    let out = common::dial(
        net,
        "12345",
        &["--hangup-after", "15", "--record", heard.to_str().unwrap()],
    )
    .output()
    .unwrap();
    let report = common::report(&out);
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["ended_by"], "remote", "the agent hung up: {report}");
    agent.wait(Duration::from_secs(30)).assert_ok(&h);
    // The agent sends no audio: what the caller received is the music,
    // for as long as the hold lasted (2.5 s), at a clear level.
    let s = samples(&heard);
    let secs = s.len() as f64 / 8000.0;
    assert!(
        (2.2..=3.0).contains(&secs),
        "music for {secs:.2} s; the hold lasted 2.5 s"
    );
    assert!(rms(&s) > 500.0, "music on hold level {:.0}", rms(&s));
    assert!(
        h.log().contains("agent holds: music on hold"),
        "{}",
        h.tail_log()
    );
}

#[test]
fn a_key_sent_in_band_and_as_rfc_4733_at_once_counts_once() {
    for (n, mode) in [(94u8, "inband"), (96, "both")] {
        let net = Net(n);
        let h = Hotline::start(net, QUEUE);
        let report = dial(
            net,
            &[
                "--dtmf",
                "1",
                "--dtmf-at",
                "1.5",
                "--dtmf-mode",
                mode,
                "--hangup-after",
                "30",
            ],
        );
        assert_eq!(report["ended_by"], "remote", "{mode}: {report}");
        let log = h.log();
        assert_eq!(
            log.matches("caller pressed a key").count(),
            1,
            "{mode}: one key press reported:\n{}",
            h.tail_log()
        );
        assert!(
            log.contains("caller asked to be called back"),
            "{mode}: {}",
            h.tail_log()
        );
    }
}

#[test]
fn a_key_sent_as_sip_info_requests_the_callback() {
    let net = Net(97);
    let h = Hotline::start(net, QUEUE);
    let sip = net.sip();
    common::Sipp::start(
        "carrier_info_key.xml",
        &net.carrier(),
        &["-s", "12399", "-key", "key", "1", "-m", "1", &sip],
    )
    .wait(Duration::from_secs(40))
    .assert_ok(&h);
    let log = h.log();
    assert_eq!(
        log.matches("caller pressed a key").count(),
        1,
        "{}",
        h.tail_log()
    );
    assert!(
        log.contains("caller asked to be called back"),
        "{}",
        h.tail_log()
    );
}
