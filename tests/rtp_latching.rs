//! Strict media latching (issue 14 §2, RFC 4961 symmetric RTP): a stranger
//! sprays the ports of a queued call with audio of its own (another
//! address, another SSRC) from before the agent answers until the call
//! ends, across the hand-over of the caller's media from the queue's
//! prompts to the agent's bridge. The caller latched once, in the queue;
//! the hand-over is no window: nothing of the stranger reaches the agent
//! or the recording, and nothing of the call reaches the stranger. The
//! call itself goes on as usual. Tones: caller 440 Hz, agent 600 Hz,
//! stranger 3100 Hz (far from speech and music, so the queue's prompts never look like it).

mod common;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::audio::{channel, windows_with};
use common::{Hotline, Net};

const QUEUE: &str = r#"
[[group]]
id = "general"
queue_media = true
ring_timeout_secs = 10
acw_secs = 1

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

/// A-law packets of a 3100 Hz tone, SSRC 0xBAD, 20 ms each.
fn stranger_packets() -> Vec<Vec<u8>> {
    use std::f64::consts::PI;
    let alaw = |s: i16| -> u8 {
        // G.711 A-law encoder (ITU-T G.711 §A), enough for a test tone.
        let mut x = i32::from(s);
        let sign = if x >= 0 { 0x80 } else { 0 };
        if x < 0 {
            x = -x - 1;
        }
        x = x.min(32767) >> 3;
        let (exp, mant) = if x < 32 {
            (0, x >> 1)
        } else {
            let mut e = 1;
            while x >= (32 << e) && e < 7 {
                e += 1;
            }
            (e, (x >> e) & 0x0f)
        };
        ((sign | (exp << 4) | mant) as u8) ^ 0x55
    };
    (0..50u32)
        .map(|i| {
            let mut p = vec![0x80u8, 8];
            p.extend_from_slice(&(i as u16).to_be_bytes());
            p.extend_from_slice(&(i * 160).to_be_bytes());
            p.extend_from_slice(&0x0BADu32.to_be_bytes());
            for n in 0..160u32 {
                let t = f64::from(i * 160 + n) / 8000.0;
                p.push(alaw((12000.0 * (2.0 * PI * 3100.0 * t).sin()) as i16));
            }
            p
        })
        .collect()
}

#[test]
fn a_stranger_spraying_the_call_s_ports_reaches_nobody_across_the_hand_over() {
    let net = Net(215);
    let h = Hotline::start(net, QUEUE);
    let dir = tempfile::tempdir().unwrap();
    let agent_wav = dir.path().join("agent.wav");
    let caller_wav = dir.path().join("caller.wav");
    // The stranger: every even port of the RTP range's start, every 5 ms,
    // from before the call until told to stop; it counts what it receives.
    let sock = UdpSocket::bind(format!("{}:0", net.ip(66))).expect("stranger socket");
    sock.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let target_ip = net.ip(1);
    let sprayer = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || {
            let packets = stranger_packets();
            let mut buf = [0u8; 2048];
            for i in 0..6000usize {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                for port in (20000..20012).step_by(2) {
                    let _ =
                        sock.send_to(&packets[i % packets.len()], format!("{target_ip}:{port}"));
                }
                while sock.recv_from(&mut buf).is_ok() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let phone = common::start_phone(
        &h,
        0,
        "2001",
        &[
            "--tone",
            "600",
            "--answer-after",
            "3",
            "--record",
            agent_wav.to_str().unwrap(),
        ],
    );
    let caller = common::dial(
        net,
        "12399",
        &[
            "--tone",
            "440",
            "--hangup-after",
            "8",
            "--record",
            caller_wav.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let caller = common::report(&caller);
    assert_eq!(caller["status"], 200, "{caller}");
    let _ = phone.wait_with_output();
    stop.store(true, Ordering::Relaxed);
    sprayer.join().unwrap();

    // The call worked …
    let agent_heard = channel(&agent_wav, 0, 1);
    let caller_heard = channel(&caller_wav, 0, 1);
    assert!(
        windows_with(&agent_heard, 440.0, 0.3) > 50,
        "the agent heard the caller"
    );
    assert!(
        windows_with(&caller_heard, 600.0, 0.3) > 50,
        "the caller heard the agent"
    );
    // … and the stranger reached nobody, nor heard anything.
    assert_eq!(
        windows_with(&agent_heard, 3100.0, 0.3),
        0,
        "the stranger reached the agent"
    );
    assert_eq!(
        windows_with(&caller_heard, 3100.0, 0.3),
        0,
        "the stranger reached the caller"
    );
    assert_eq!(
        received.load(Ordering::Relaxed),
        0,
        "the call's audio went to the stranger"
    );
    h.wait_for(
        "the recording to be finished",
        Duration::from_secs(10),
        |_| !h.data_files(".wav").is_empty(),
    );
    let wavs = h.data_files(".wav");
    let recording = wavs
        .iter()
        .find(|p| !p.to_string_lossy().contains("voicemail"))
        .expect("the call's recording");
    for ch in 0..2 {
        let side = channel(recording, ch, 2);
        assert_eq!(
            windows_with(&side, 3100.0, 0.3),
            0,
            "the stranger is in the recording (channel {ch})"
        );
    }
    // The record counts what was refused at the call's ports.
    let addr = format!("{}:8080", net.ip(1));
    let token = h.ops_token();
    let mut record = serde_json::Value::Null;
    for _ in 0..150 {
        let (_, body) =
            common::http_send(&addr, "GET", "/api/v1/calls", Some(&token), None).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        record = v["calls"][0].clone();
        if v["count"] == 1 && !record["quality"].is_null() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let refused: u64 = record["quality"]
        .as_array()
        .map(|q| q.iter().filter_map(|l| l["refused"].as_u64()).sum())
        .unwrap_or(0);
    let (_, last) = common::http_send(&addr, "GET", "/api/v1/calls", Some(&token), None).unwrap();
    assert!(
        refused > 0,
        "the record counts the stranger's packets: {record} / {last}"
    );
}
