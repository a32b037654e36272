//! Recordings survive a crash: `kill -9` in the middle of a recorded call,
//! then a restart repairs the unfinished WAV so it plays up to the last
//! seconds before the crash.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Hotline, Net};

#[test]
fn kill_9_mid_call_then_restart_leaves_a_playable_recording() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net(95);
    let text = common::config(net, &dir.path().join("var"), "");
    let mut h = Hotline::start_with(net, dir, &text);
    let mut phone = common::start_phone(&h, 0, "1001", &["--tone", "600", "--answer-after", "0.2"]);
    let mut caller = common::dial(net, "12345", &["--tone", "440", "--hangup-after", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    h.wait_for("the call to be up", Duration::from_secs(10), |v| {
        v["calls"]["active"] == 1
    });
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(
        h.data_files(".wav.part").len(),
        1,
        "a recording in progress"
    );
    h.kill9();
    caller.kill().ok();
    phone.kill().ok();
    caller.wait().ok();
    phone.wait().ok();

    // Restart on the same data: the unfinished file is repaired.
    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().unwrap());
    drop(h);
    let h = Hotline::start_with(net, dir, &text);
    assert!(
        h.data_files(".wav.part").is_empty(),
        "no unfinished file left"
    );
    let wavs = h.data_files(".wav");
    assert_eq!(wavs.len(), 1, "{wavs:?}");
    let reader = hound::WavReader::open(&wavs[0]).expect("the repaired recording opens");
    let secs = reader.duration() as f64 / 8000.0;
    assert!(
        secs >= 2.5,
        "the repaired recording plays {secs:.1} s of the ~4.5 s call"
    );
    assert!(
        h.log().contains("unfinished recording found at start"),
        "{}",
        h.tail_log()
    );
}

/// The agent's phone vanishes mid-call (killed): when the caller hangs up,
/// hotline's BYE to the agent goes unanswered until its transaction times
/// out (64*T1, RFC 3261 §17.1.2.2). The recording ends with the call, not
/// with that timeout: it is finished and the record told first, and it
/// holds the conversation, not half a minute of silence after it.
#[test]
fn a_vanished_agent_phone_neither_delays_nor_pads_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net(245);
    let text = common::config(net, &dir.path().join("var"), "");
    let h = Hotline::start_with(net, dir, &text);
    let mut phone = common::start_phone(&h, 0, "1001", &["--tone", "600", "--answer-after", "0.2"]);
    let caller = common::dial(net, "12345", &["--tone", "440", "--hangup-after", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until("the agent to answer", Duration::from_secs(20), || {
        h.log().contains("connected caller_rtp").then_some(())
    });
    phone.kill().ok();
    phone.wait().ok();
    let out = caller.wait_with_output().expect("caller");
    assert!(out.status.success(), "the caller's call went through");
    common::wait_until("the recording to be ready", Duration::from_secs(60), || {
        h.log().contains("recording ready").then_some(())
    });
    // Ready while the call still waits for the vanished phone's answer to
    // its BYE.
    let health = h.healthz();
    assert_eq!(health["calls"]["active"], 1, "{health}");
    let wavs = h.data_files(".wav");
    assert_eq!(wavs.len(), 1, "{wavs:?}");
    let reader = hound::WavReader::open(&wavs[0]).expect("the recording opens");
    let secs = f64::from(reader.duration()) / 8000.0;
    assert!(
        secs < 15.0,
        "the recording of a ~3 s conversation plays {secs:.1} s (padded up to the BYE's timeout)"
    );
    // The BYE times out and the call ends (bounded: 64*T1 and slack).
    h.wait_for("the call to end", Duration::from_secs(60), |v| {
        v["calls"]["active"] == 0
    });
}
