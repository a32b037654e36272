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
