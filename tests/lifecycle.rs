//! The switch's life: configuration errors name file, line and key and exit
//! non-zero; SIGTERM drains (new calls 503, calls in progress get the grace
//! period, then are hung up) and exits 0; a call whose RTP stops is cleared.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{register, status, Hotline, Net, RawSip, Sipp};

#[test]
fn bad_config_names_file_line_and_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[sip]\nlisten = \"127.0.0.1:5060\"\n\n[[agent]]\nuser = \"1001\"\npassword = \"x\"\n\n[[did]]\nnumber = \"12345\"\nagents = [\"1001\", \"4242\"]\n",
    )
    .unwrap();
    for sub in [&["check"][..], &["serve", "--config"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(sub)
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sub:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{}:10: did[0].agents[1]: no agent \"4242\"",
                path.display()
            )),
            "{sub:?}: {stderr}"
        );
    }
    // A TOML syntax error reports the line too.
    std::fs::write(&path, "[sip]\nlisten = \n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");

    // The shipped configuration is valid.
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hotline.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("check")
        .arg(&shipped)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigterm_refuses_new_calls_then_hangs_up_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net(61);
    let text = common::config(net, &dir.path().join("var"), "")
        .replace("shutdown_grace_secs = 5", "shutdown_grace_secs = 2");
    let mut h = Hotline::start_with(net, dir, &text);
    register(&h, "1001", &net.agent(0));
    let agent = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let sip = net.sip();
    // This carrier waits for hotline's BYE.
    let carrier = Sipp::start(
        "carrier_call_wait_bye.xml",
        &net.carrier(),
        &["-s", "12345", "-m", "1", &sip],
    );
    h.wait_for("the call to be up", Duration::from_secs(15), |v| {
        v["calls"]["active"] == 1
    });
    h.sigterm();
    std::thread::sleep(Duration::from_millis(300));

    // A new call while draining: 503.
    let raw = RawSip::new(&net.carrier(), &sip);
    let me = raw.local();
    let hl = net.ip(1);
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
    let invite = format!(
        "INVITE sip:12345@{hl} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-drain\r\nMax-Forwards: 70\r\nFrom: <sip:late@{me}>;tag=l\r\nTo: <sip:12345@{hl}>\r\nCall-ID: drain@x\r\nCSeq: 1 INVITE\r\nContact: <sip:late@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    raw.send(invite.as_bytes());
    let resp = raw.recv_final().expect("an answer while draining");
    assert_eq!(status(&resp), 503, "{resp}");

    // After the grace period both legs get BYE and the switch exits 0.
    carrier.wait(Duration::from_secs(30)).assert_ok(&h);
    agent.wait(Duration::from_secs(30)).assert_ok(&h);
    let exit = h.wait_exit(Duration::from_secs(15));
    assert!(exit.success(), "exit status {exit}");
    let log = h.log();
    assert!(log.contains("grace period over"), "{}", h.tail_log());
    assert!(log.contains("hotline stopped"), "{}", h.tail_log());
}

#[test]
fn a_call_whose_rtp_stops_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net(62);
    let text = common::config(net, &dir.path().join("var"), "")
        .replace("rtp_timeout_secs = 20", "rtp_timeout_secs = 2");
    let h = Hotline::start_with(net, dir, &text);
    register(&h, "1001", &net.agent(0));
    // Both phones send 3 s of audio, then fall silent and wait for BYE.
    let agent = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let sip = net.sip();
    Sipp::start(
        "carrier_call_wait_bye.xml",
        &net.carrier(),
        &["-s", "12345", "-m", "1", &sip],
    )
    .wait(Duration::from_secs(30))
    .assert_ok(&h);
    agent.wait(Duration::from_secs(30)).assert_ok(&h);
    assert!(
        h.log().contains("no RTP for the timeout"),
        "{}",
        h.tail_log()
    );
    h.wait_for("the switch to be idle", Duration::from_secs(10), |v| {
        v["calls"]["active"] == 0 && v["media"]["rtp_port_pairs_in_use"] == 0
    });
}
