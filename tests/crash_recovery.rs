//! Issue 12 item 4: a call cut off by a crash is closed properly.
//!
//! `kill -9` in the middle of a connected call (SIPp carrier and SIPp agent
//! phone), then a restart on the same data directory: the restarted hotline
//! sends BYE to both legs from the dialogs it persisted (so the carrier stops
//! billing and the agent's phone goes on-hook), answers the carrier's own BYE
//! for the cut call with 200 (not 481), and the call's record links the
//! repaired recording and ends at the last evidence, not at the answer.

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{register, Hotline, Net, Sipp};

/// A DID ringing only agent 1001.
const DID: &str = r#"
[[did]]
number = "12370"
ring = "sequential"
agents = ["1001"]
"#;

/// Bounded wait for `what`, polling `probe` until it returns `Some`.
fn eventually<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The records `hotline records` prints for this hotline's data.
fn records(h: &Hotline) -> Vec<serde_json::Value> {
    let cfg = h.dir.path().join("hotline.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["records", "--config"])
        .arg(&cfg)
        .args(["--format", "json"])
        .output()
        .expect("hotline records");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect()
}

/// Event types stored for `call` in the outbox (either backend).
fn stored_kinds(h: &Hotline, call: &str) -> Vec<String> {
    common::stored_events(&h.dir.path().join("var"))
        .into_iter()
        .filter(|(_, c, _)| c == call)
        .map(|(_, _, kind)| kind)
        .collect()
}

/// Dialog rows the store still holds (`None`: no such table).
fn persisted_legs(h: &Hotline) -> Option<i64> {
    common::stored_rows(&h.dir.path().join("var"), "dialog_leg")
}

/// Restart `h` on its own data directory after a `kill -9`.
fn crash_and_restart(mut h: Hotline, text: &str) -> Hotline {
    h.kill9();
    let net = h.net;
    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().expect("tempdir"));
    drop(h);
    Hotline::start_with(net, dir, text)
}

#[test]
fn kill_9_mid_call_then_restart_sends_bye_to_both_legs_and_links_the_recording() {
    let net = Net(170);
    let dir = tempfile::tempdir().unwrap();
    let text = common::config(net, &dir.path().join("var"), DID);
    let h = Hotline::start_with(net, dir, &text);
    register(&h, "1001", &net.agent(0));
    let agent = Sipp::start(
        "agent_answer_cut_off.xml",
        &net.agent(0),
        &["-m", "1", "-timeout", "180s"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let carrier = Sipp::start(
        "carrier_call_cut_off.xml",
        &net.carrier(),
        &["-s", "12370", "-m", "1", "-timeout", "180s", &net.sip()],
    );
    eventually("the call to connect", Duration::from_secs(20), || {
        (h.data_files(".wav.part").len() == 1).then_some(())
    });
    // A few seconds of conversation (the aligner writes wall-clock time,
    // silence included), then the crash.
    std::thread::sleep(Duration::from_secs(4));

    let h = crash_and_restart(h, &text);

    // Both SIPp ends receive a BYE from the restarted hotline and answer it.
    carrier.wait(Duration::from_secs(150)).assert_ok(&h);
    agent.wait(Duration::from_secs(150)).assert_ok(&h);
    eventually(
        "the leftover legs to be cleaned up",
        Duration::from_secs(60),
        || (persisted_legs(&h) == Some(0)).then_some(()),
    );

    // The record links the repaired recording and ends at its end.
    let all = records(&h);
    assert_eq!(all.len(), 1, "{all:?}");
    let rec = &all[0];
    assert_eq!(rec["complete"], false, "{rec}");
    assert_eq!(rec["hangup_reason"], "hotline-restart", "{rec}");
    let connected = rec["connected_at"].as_str().expect("connected_at");
    let ended = rec["ended_at"].as_str().expect("ended_at");
    // RFC 3339 UTC with milliseconds: text order is time order.
    assert!(
        ended > connected,
        "ended_at {ended} after connected_at {connected}"
    );
    let recording = &rec["recording"];
    let rel = recording["path"]
        .as_str()
        .unwrap_or_else(|| panic!("the record links the recording: {rec}"));
    let wav = h.dir.path().join("var/recordings").join(rel);
    assert!(wav.is_file(), "{} exists", wav.display());
    let reader = hound::WavReader::open(&wav).expect("the linked recording decodes");
    let spec = reader.spec();
    let secs = f64::from(reader.duration()) / f64::from(spec.sample_rate);
    assert!(secs > 1.0, "the recording plays {secs:.1} s");
    assert_eq!(
        recording["duration_ms"].as_u64(),
        Some(u64::from(reader.duration()) * 1000 / u64::from(spec.sample_rate)),
        "{recording}"
    );
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(recording["bytes"].as_u64(), Some(bytes.len() as u64));
    use sha2::Digest;
    assert_eq!(
        recording["sha256"].as_str(),
        Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str())
    );
    let call = rec["call_id"].as_str().expect("call_id");
    let kinds = stored_kinds(&h, call);
    assert!(
        kinds.iter().any(|k| k == "recording.ready"),
        "recording.ready emitted: {kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("call.ended"));
}

/// A hand-made SIP carrier on the carrier's address, for the BYE that
/// crosses hotline's own.
struct RawCarrier {
    sock: UdpSocket,
    hotline: String,
    call_id: String,
    tag: String,
}

impl RawCarrier {
    fn new(net: Net) -> Self {
        let sock = UdpSocket::bind(format!("{}:5062", net.carrier())).expect("bind carrier");
        sock.set_read_timeout(Some(Duration::from_millis(500))).ok();
        Self {
            sock,
            hotline: net.sip(),
            call_id: format!("crossing-{}@{}", std::process::id(), net.carrier()),
            tag: "carrier-tag-1".into(),
        }
    }

    fn local(&self) -> String {
        self.sock.local_addr().expect("local").to_string()
    }

    fn send(&self, text: &str) {
        self.sock
            .send_to(text.as_bytes(), &self.hotline)
            .expect("send");
    }

    /// Next datagram satisfying `want`, within `within`.
    fn recv_until(&self, within: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if want(&text) {
                return Some(text);
            }
        }
        None
    }

    fn invite(&self, number: &str, media: &str) -> String {
        let sdp = format!(
            "v=0\r\no=carrier 1 1 IN IP4 {media}\r\ns=-\r\nc=IN IP4 {media}\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        );
        format!(
            "INVITE sip:{number}@{hl} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK-crossing-inv;rport\r\n\
             From: \"Carrier\" <sip:+15550100@{me}>;tag={tag}\r\n\
             To: <sip:{number}@{hl}>\r\n\
             Call-ID: {cid}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:+15550100@{me}>\r\n\
             Max-Forwards: 70\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            hl = self.hotline,
            me = self.local(),
            tag = self.tag,
            cid = self.call_id,
            len = sdp.len(),
        )
    }

    fn in_dialog(&self, method: &str, cseq: u32, to: &str, branch: &str) -> String {
        format!(
            "{method} sip:{hl} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             From: \"Carrier\" <sip:+15550100@{me}>;tag={tag}\r\n\
             To: {to}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            hl = self.hotline,
            me = self.local(),
            tag = self.tag,
            cid = self.call_id,
        )
    }
}

/// The 200 OK answering `request` (its Via, From, To, Call-ID and CSeq).
fn ok_for(request: &str) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for v in common::headers(request, name) {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

#[test]
fn a_carrier_bye_for_a_call_cut_off_by_a_crash_gets_200_after_the_restart() {
    let net = Net(171);
    let dir = tempfile::tempdir().unwrap();
    let text = common::config(net, &dir.path().join("var"), DID);
    let h = Hotline::start_with(net, dir, &text);
    register(&h, "1001", &net.agent(0));
    let agent = Sipp::start(
        "agent_answer_cut_off.xml",
        &net.agent(0),
        &["-m", "1", "-timeout", "180s"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let carrier = RawCarrier::new(net);
    carrier.send(&carrier.invite("12370", &net.carrier()));
    let ok = carrier
        .recv_until(Duration::from_secs(20), |l| {
            l.starts_with("SIP/2.0 ") && !l.starts_with("SIP/2.0 1")
        })
        .expect("a final response to the INVITE");
    assert_eq!(common::status(&ok), 200, "{ok}");
    let to = common::headers(&ok, "To")
        .first()
        .map(|s| s.to_string())
        .expect("To");
    assert!(to.contains("tag="), "hotline's To tag: {to}");
    carrier.send(&carrier.in_dialog("ACK", 1, &to, "z9hG4bK-crossing-ack"));
    eventually("the call to connect", Duration::from_secs(20), || {
        (h.data_files(".wav.part").len() == 1).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));

    let h = crash_and_restart(h, &text);

    // The restarted hotline's BYE reaches the carrier; the carrier's own BYE
    // (hung up at the same moment) crosses it and must get 200, not 481.
    let bye = carrier
        .recv_until(Duration::from_secs(60), |l| l.starts_with("BYE "))
        .unwrap_or_else(|| panic!("no BYE from the restarted hotline\n{}", h.tail_log()));
    assert!(bye.contains(&carrier.call_id), "{bye}");
    carrier.send(&carrier.in_dialog("BYE", 2, &to, "z9hG4bK-crossing-bye"));
    let answer = carrier
        .recv_until(Duration::from_secs(10), |t| {
            t.starts_with("SIP/2.0 ") && t.contains("CSeq: 2 BYE")
        })
        .expect("a response to the carrier's BYE");
    assert_eq!(
        common::status(&answer),
        200,
        "the carrier's BYE for the cut call: {answer}"
    );
    assert!(answer.contains("CSeq: 2 BYE"), "{answer}");
    carrier.send(&ok_for(&bye));
    agent.wait(Duration::from_secs(150)).assert_ok(&h);
    eventually(
        "the leftover legs to be cleaned up",
        Duration::from_secs(60),
        || (persisted_legs(&h) == Some(0)).then_some(()),
    );
}

#[test]
fn legs_that_end_normally_or_at_a_clean_stop_leave_nothing_for_the_next_start() {
    let net = Net(172);
    let mut h = Hotline::start(net, DID);
    register(&h, "1001", &net.agent(0));
    let agent = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "2"]);
    std::thread::sleep(Duration::from_millis(300));
    // A call the carrier hangs up: its legs are removed when they end.
    Sipp::start(
        "carrier_call.xml",
        &net.carrier(),
        &["-s", "12370", "-m", "1", &net.sip()],
    )
    .wait(Duration::from_secs(60))
    .assert_ok(&h);
    h.wait_for("the call to end", Duration::from_secs(20), |v| {
        v["calls"]["active"] == 0
    });
    eventually(
        "the ended legs to be removed",
        Duration::from_secs(10),
        || (persisted_legs(&h) == Some(0)).then_some(()),
    );
    // A call up at SIGTERM: hung up after the grace period, and its legs
    // are removed before hotline exits.
    let carrier = Sipp::start(
        "carrier_call_cut_off.xml",
        &net.carrier(),
        &["-s", "12370", "-m", "1", &net.sip()],
    );
    eventually("the call to connect", Duration::from_secs(20), || {
        (h.data_files(".wav.part").len() == 1).then_some(())
    });
    h.sigterm();
    let status = h.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    carrier.wait(Duration::from_secs(60)).assert_ok(&h);
    agent.wait(Duration::from_secs(60)).assert_ok(&h);
    assert_eq!(
        persisted_legs(&h),
        Some(0),
        "no leg left for the next start"
    );
}
