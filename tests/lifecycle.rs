//! The switch's life: configuration errors name file, line and key and exit
//! non-zero; an unreachable shared store stops the start; SIGTERM drains
//! (new calls 503, `/readyz` 503 while `/livez` stays 200, calls in
//! progress get the grace period, then are hung up) and exits 0; a call
//! whose RTP stops is cleared.

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
fn an_unreachable_shared_store_stops_the_start_naming_it_without_the_password() {
    let net = Net(58);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hotline.toml");
    // Port 1 on loopback: nothing listens there.
    let text = common::config(
        net,
        &dir.path().join("var"),
        "[store]\nurl = \"postgres://hotline:s3cret@127.0.0.1:1/hotline\"\n",
    );
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("PostgreSQL 127.0.0.1:1/hotline as hotline"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
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
    // Liveness and readiness (docs/ha.md §6): ready before the drain...
    let http = format!("{}:8080", net.ip(1));
    let probe = |path: &str| {
        let (code, body) = common::http_send(&http, "GET", path, None, None).expect(path);
        (
            code,
            serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        )
    };
    let (code, ready) = probe("/readyz");
    assert_eq!(code, 200, "{ready}");
    assert_eq!(ready["checks"]["store"], "ok", "{ready}");
    assert_eq!(ready["checks"]["draining"], "ok", "{ready}");
    assert_eq!(probe("/livez").0, 200);
    h.sigterm();
    common::wait_until("the drain to start", Duration::from_secs(10), || {
        h.log()
            .contains("shutting down: no new calls")
            .then_some(())
    });
    // ... not ready while draining, still alive.
    let (code, ready) = probe("/readyz");
    assert_eq!(code, 503, "{ready}");
    assert_eq!(ready["status"], "not_ready", "{ready}");
    assert!(
        ready["checks"]["draining"]
            .as_str()
            .is_some_and(|why| why.starts_with("draining")),
        "{ready}"
    );
    assert_eq!(probe("/livez").0, 200);

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

/// `--log-format json` (issue 15 §4): every line a log collector reads is
/// one JSON object, with the level, the message and the event's fields; a
/// format hotline does not know is refused before anything starts.
#[test]
fn json_logs_are_one_object_per_line_with_fields() {
    let net = Net(28);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = common::config(net, &dir.path().join("var"), "");
    let h = Hotline::start_with_args(net, dir, &text, &["--log-format", "json"]);
    common::register(&h, "1001", &net.agent(0));
    let log = h.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let up = lines
        .iter()
        .find(|v| v["fields"]["message"] == "hotline is up")
        .unwrap_or_else(|| panic!("no 'hotline is up' object:\n{log}"));
    assert_eq!(up["level"], "INFO", "{up}");
    assert!(up["timestamp"].is_string(), "{up}");
    assert_eq!(up["fields"]["agents"], 4, "fields are JSON values: {up}");
    let registered = lines
        .iter()
        .find(|v| v["fields"]["message"] == "registered")
        .unwrap_or_else(|| panic!("no 'registered' object:\n{log}"));
    assert_eq!(registered["fields"]["agent"], "1001", "{registered}");

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["--log-format", "xml", "check", "config/hotline.toml"])
        .output()
        .expect("run hotline");
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("possible values: text, json"), "{err}");
}
