//! Our own scripted phone (`hotline phone` / `hotline dial`) through hotline:
//! each side sends a different tone and records what it hears; the
//! recordings prove the audio crossed the relay in both directions, and the
//! caller's RFC 4733 key presses reach the agent each exactly once.

mod common;

use std::time::Duration;

use common::{Hotline, Net};

/// Frequency of 8 kHz samples by zero crossings.
fn frequency_of(samples: &[i16]) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 8000.0)
}

/// Dominant frequency of a mono 8 kHz WAV, by zero crossings.
fn frequency(path: &std::path::Path) -> f64 {
    let mut reader = hound::WavReader::open(path).expect("recording exists");
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    assert!(
        samples.len() > 8000,
        "at least a second heard: {} samples",
        samples.len()
    );
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 8000.0)
}

#[test]
fn dial_and_phone_hear_each_other_through_hotline() {
    let net = Net(71);
    let h = Hotline::start(net, "");
    let dir = tempfile::tempdir().unwrap();
    let agent_heard = dir.path().join("agent.wav");
    let caller_heard = dir.path().join("caller.wav");
    let agent_wav = agent_heard.to_str().unwrap();
    let phone = common::start_phone(
        &h,
        0,
        "1001",
        &[
            "--tone",
            "600",
            "--answer-after",
            "0.5",
            "--record",
            agent_wav,
        ],
    );
    let caller_wav = caller_heard.to_str().unwrap();
    let dial_args = [
        "--tone",
        "440",
        "--hangup-after",
        "3",
        "--dtmf",
        "12#9",
        "--dtmf-at",
        "1",
        "--record",
        caller_wav,
    ];
    let out = common::dial(net, "12345", &dial_args).output().unwrap();
    assert!(
        out.status.success(),
        "dial failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        h.tail_log()
    );
    let report = common::report(&out);
    assert_eq!(report["status"], 200, "{report}");
    assert!(
        report["media"]["rtp_received"].as_u64().unwrap() >= 100,
        "{report}"
    );
    let phone_out = phone.wait_with_output().unwrap();
    let phone_report = common::report(&phone_out);
    assert_eq!(phone_report["ended_by"], "remote", "{phone_report}");
    // RFC 4733 keys pressed by the caller crossed the relay, each once.
    assert_eq!(
        phone_report["media"]["dtmf_received"], "12#9",
        "{phone_report}"
    );

    // The call was recorded: one stereo WAV, the caller's 440 Hz on the
    // left, the agent's 600 Hz on the right. (The recording is finished
    // once the call's task ends, after the phones had their BYEs.)
    h.wait_for("the call to end", Duration::from_secs(20), |v| {
        v["calls"]["active"] == 0
    });
    let wavs = h.data_files(".wav");
    assert_eq!(wavs.len(), 1, "one recording: {wavs:?}");
    let mut reader = hound::WavReader::open(&wavs[0]).unwrap();
    assert_eq!(reader.spec().channels, 2);
    assert_eq!(reader.spec().sample_rate, 8000);
    let all: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    let left: Vec<i16> = all.iter().step_by(2).copied().collect();
    let right: Vec<i16> = all.iter().skip(1).step_by(2).copied().collect();
    assert!(
        left.len() >= 8000 * 2,
        "recording long enough: {} frames",
        left.len()
    );
    // Median frequency of quarter-second windows: the caller's key presses
    // leave silent gaps (no audio is sent while a key is held).
    let zc = |s: &[i16]| {
        let mut f: Vec<f64> = s
            .chunks(2000)
            .filter(|c| c.len() == 2000)
            .map(frequency_of)
            .collect();
        f.sort_by(|a, b| a.total_cmp(b));
        f.get(f.len() / 2).copied().unwrap_or(0.0)
    };
    let (l, r) = (zc(&left), zc(&right));
    assert!(
        (l - 440.0).abs() < 25.0,
        "left channel {l:.0} Hz, expected the caller's 440 Hz"
    );
    assert!(
        (r - 600.0).abs() < 25.0,
        "right channel {r:.0} Hz, expected the agent's 600 Hz"
    );
    assert!(h.log().contains("recording ready"), "{}", h.tail_log());

    let heard_by_caller = frequency(&caller_heard);
    let heard_by_agent = frequency(&agent_heard);
    assert!(
        (heard_by_caller - 600.0).abs() < 15.0,
        "caller heard {heard_by_caller:.0} Hz, expected the agent's 600 Hz"
    );
    assert!(
        (heard_by_agent - 440.0).abs() < 15.0,
        "agent heard {heard_by_agent:.0} Hz, expected the caller's 440 Hz"
    );
}
