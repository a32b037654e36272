//! Live audio fork (issue 18 §1), driven from outside: a real `hotline
//! serve` whose tenant forks its calls to a WebSocket receiver inside the
//! test, a caller (`hotline dial`, 440 Hz) queued to an agent's phone
//! (`hotline phone`, 600 Hz). The receiver checks the protocol: the
//! `start` message and its metadata, binary frames whose sequence numbers
//! only go up (a gap is a frame dropped, counted in `stop`), timestamps
//! 160 samples (20 ms) a frame, the caller's tone on the left channel and
//! the agent's on the right, the `stop` message's counts. A result the
//! receiver sends back reaches the agent's live WebSocket as `assist`. A
//! receiver that goes away mid-call (connection closed, then nobody
//! listening for a while) neither breaks nor delays the call: frames are
//! dropped and counted, the fork reconnects with a new `start`. A tenant
//! whose calls are forked only on request: the agent starts and stops the
//! fork of their call through the API (audited).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::api::Api;
use common::audio::windows_with;
use common::{Hotline, Net};
use futures::{SinkExt, StreamExt};
use hotline::media::fork::protocol::{decode_frame, DecodedFrame, FRAME_SAMPLES};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

fn setup(receiver: &str) -> String {
    setup_with(receiver, "")
}

fn setup_with(receiver: &str, more: &str) -> String {
    format!(
        r#"
[[tenant]]
id = "a"
audio_fork = {{ url = "ws://{receiver}/fork", queue_ms = 200, max_attempts = 8{more} }}

[[group]]
id = "general"
tenant = "a"
acw_secs = 1

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
tenant = "a"
skills = {{ general = 5 }}
auto_login = true

[[did]]
number = "12399"
tenant = "a"
queue = "general"

[[user]]
username = "agent-a"
role = "agent"
tenant = "a"
agent_id = "A01"
password = "agent-a-password"
"#
    )
}

/// What one connection to the receiver carried.
#[derive(Default, Debug)]
struct Connection {
    start: Option<Value>,
    frames: Vec<DecodedFrame>,
    stop: Option<Value>,
}

type Seen = Arc<Mutex<Vec<Connection>>>;

/// Serve one WebSocket connection: record what comes; after `reply_at`
/// frames send a result (and a malformed message); after `close_at`
/// frames close the connection.
async fn serve_one(
    stream: tokio::net::TcpStream,
    seen: Seen,
    reply_at: Option<usize>,
    close_at: Option<usize>,
) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let slot = {
        let mut s = seen.lock().unwrap();
        s.push(Connection::default());
        s.len() - 1
    };
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("JSON text message");
                let mut s = seen.lock().unwrap();
                match v["type"].as_str() {
                    Some("start") => s[slot].start = Some(v),
                    Some("stop") => s[slot].stop = Some(v),
                    other => panic!("unexpected message type {other:?}"),
                }
            }
            Message::Binary(b) => {
                let f = decode_frame(&b).expect("a well-formed frame");
                let n = {
                    let mut s = seen.lock().unwrap();
                    s[slot].frames.push(f);
                    s[slot].frames.len()
                };
                if Some(n) == reply_at {
                    let _ = ws.send(Message::Text("not json".into())).await;
                    let result =
                        r#"{"type":"transcript","text":"你好，我要反映噪音问题","final":true}"#;
                    let _ = ws.send(Message::Text(result.into())).await;
                }
                if Some(n) == close_at {
                    let _ = ws.close(None).await;
                    return;
                }
            }
            Message::Close(_) => return,
            _ => {}
        }
    }
}

/// The caller dials 12399 with a 440 Hz tone for `secs`, recording what
/// it hears to `heard`; the agent's phone answers with 600 Hz.
fn call(h: &Hotline, secs: &str, heard: &std::path::Path) -> std::process::Output {
    let caller = common::citizen(h.net, secs, heard);
    caller.wait_with_output().expect("the caller ran")
}

/// The connections, once the last has its `stop` (bounded).
fn wait_stop(seen: &Seen) {
    common::wait_until("the fork's stop message", Duration::from_secs(20), || {
        let s = seen.lock().unwrap();
        s.last().and_then(|c| c.stop.as_ref()).map(|_| ())
    });
}

/// One channel (0 left, 1 right) of frames, in order.
fn channel(frames: &[DecodedFrame], ch: usize) -> Vec<i16> {
    frames
        .iter()
        .flat_map(|f| f.samples.chunks_exact(2).map(move |p| p[ch]))
        .collect()
}

/// Sequence numbers only go up; each frame's timestamp is 160 samples a
/// sequence number; each frame is 20 ms of stereo. The gaps, counted.
fn check_order(frames: &[DecodedFrame]) -> u64 {
    let mut gaps = 0u64;
    for w in frames.windows(2) {
        assert!(
            w[1].sequence > w[0].sequence,
            "sequence {} after {}",
            w[1].sequence,
            w[0].sequence
        );
        gaps += u64::from(w[1].sequence - w[0].sequence - 1);
    }
    for f in frames {
        assert_eq!(
            f.samples.len(),
            2 * FRAME_SAMPLES,
            "a frame is 20 ms of stereo"
        );
        assert_eq!(f.timestamp, f.sequence * FRAME_SAMPLES as u32);
    }
    gaps
}

fn metric(h: &Hotline, name: &str) -> u64 {
    let text = common::http_get(&format!("{}:8080", h.net.ip(1)), "/metrics").unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("hotline_{name} "))
                .or_else(|| l.strip_prefix(&format!("hotline_{name}_total ")))
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no {name} in /metrics: {text}"))
}

/// A receiver on `net`'s address 50, port 9000, serving every connection
/// (a result sent after `reply_at` frames): its address and what it saw.
fn receive(api: &Api, net: Net, reply_at: Option<usize>) -> (String, Seen) {
    let receiver = format!("{}:9000", net.ip(50));
    let seen: Seen = Arc::default();
    let listener = api
        .rt
        .block_on(tokio::net::TcpListener::bind(&receiver))
        .expect("the receiver listens");
    let s = seen.clone();
    api.rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_one(stream, s.clone(), reply_at, None));
        }
    });
    (receiver, seen)
}

#[test]
fn a_call_is_forked_in_stereo_in_order_and_a_result_reaches_the_agent() {
    let net = Net(77);
    let api = Api::new(net);
    let (receiver, seen) = receive(&api, net, Some(25));
    let dir = tempfile::tempdir().unwrap();
    let text = common::config(net, &dir.path().join("var"), &setup(&receiver));
    let h = Hotline::start_with(net, dir, &text);
    let token = api.login("agent-a", "agent-a-password");
    let live = listen(&api, &token);
    let mut phone = common::start_phone(&h, 0, "2001", &["--tone", "600", "--answer-after", "0.2"]);
    let heard = h.dir.path().join("heard.wav");
    let out = call(&h, "4", &heard);
    assert!(out.status.success(), "the caller's call went through");
    wait_stop(&seen);

    let s = seen.lock().unwrap();
    assert_eq!(s.len(), 1, "one connection: {s:?}");
    let c = &s[0];
    let start = c.start.as_ref().expect("a start message");
    assert_eq!(start["version"], 1);
    assert_eq!(start["call"]["tenant"], "a");
    assert_eq!(start["call"]["called"], "12399");
    assert_eq!(start["call"]["agent"], "A01");
    assert!(start["call"]["call_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(start["format"]["encoding"], "pcm16le");
    assert_eq!(start["format"]["sample_rate"], 8000);
    assert_eq!(start["format"]["channels"], 2);
    assert_eq!(start["format"]["frame_ms"], 20);
    assert_eq!(start["sequence"], 0);
    let gaps = check_order(&c.frames);
    let stop = c.stop.as_ref().expect("a stop message");
    assert_eq!(stop["reason"], "call_ended");
    assert_eq!(stop["fork_id"], start["fork_id"]);
    assert_eq!(stop["frames_sent"].as_u64(), Some(c.frames.len() as u64));
    assert!(
        stop["frames_dropped"].as_u64().unwrap_or(0) >= gaps,
        "{stop} {gaps}"
    );
    // ~4 s of conversation: the caller's tone left, the agent's right.
    let (left, right) = (channel(&c.frames, 0), channel(&c.frames, 1));
    let (l440, l600) = (
        windows_with(&left, 440.0, 0.5),
        windows_with(&left, 600.0, 0.5),
    );
    let (r600, r440) = (
        windows_with(&right, 600.0, 0.5),
        windows_with(&right, 440.0, 0.5),
    );
    assert!(
        l440 >= 100,
        "caller's 440 Hz on the left in {l440} windows of {}",
        c.frames.len()
    );
    assert!(
        r600 >= 100,
        "agent's 600 Hz on the right in {r600} windows of {}",
        c.frames.len()
    );
    assert!(
        l600 < 5 && r440 < 5,
        "no cross-talk: left 600 Hz {l600}, right 440 Hz {r440}"
    );
    let call_id = start["call"]["call_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    drop(s);

    // The result reached the agent's screen; the malformed one did not.
    let assist = common::wait_until("the assist message", Duration::from_secs(10), || {
        live.lock()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "assist")
            .cloned()
    });
    assert_eq!(assist["call_id"], call_id.as_str());
    assert_eq!(assist["to_agent"], "A01");
    assert_eq!(assist["result"]["type"], "transcript");
    assert_eq!(assist["result"]["text"], "你好，我要反映噪音问题");
    assert_eq!(
        live.lock()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "assist")
            .count(),
        1
    );
    assert!(
        h.log().contains("not a result: ignored"),
        "{}",
        h.tail_log()
    );
    assert!(metric(&h, "audio_fork_frames_sent") >= c_len(&seen));
    assert_eq!(metric(&h, "audio_fork_results"), 1);
    common::wait_until("the fork to end", Duration::from_secs(10), || {
        (metric(&h, "audio_forks_active") == 0).then_some(())
    });
    phone.kill().ok();
    phone.wait().ok();
}

fn c_len(seen: &Seen) -> u64 {
    seen.lock()
        .unwrap()
        .iter()
        .map(|c| c.frames.len() as u64)
        .sum()
}

/// Collect the agent's live WebSocket messages in the background.
fn listen(api: &Api, token: &str) -> Arc<Mutex<Vec<Value>>> {
    let url = format!(
        "{}/api/v1/events?token={token}",
        api.base.replace("http://", "ws://")
    );
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = connected.clone();
    api.rt.spawn(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        up.store(true, std::sync::atomic::Ordering::SeqCst);
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg {
                if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                    sink.lock().unwrap().push(v);
                }
            }
        }
    });
    common::wait_until("the live WebSocket", Duration::from_secs(10), || {
        got.lock()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "hello")
            .then_some(())
    });
    drop(connected);
    got
}

#[test]
fn a_receiver_that_goes_away_neither_breaks_nor_delays_the_call() {
    let net = Net(79);
    let receiver = format!("{}:9000", net.ip(50));
    let api = Api::new(net);
    let seen: Seen = Arc::default();
    let listener = api
        .rt
        .block_on(tokio::net::TcpListener::bind(&receiver))
        .expect("the receiver listens");
    let s = seen.clone();
    let addr = receiver.clone();
    api.rt.spawn(async move {
        // The first connection is closed after 10 frames and nobody
        // listens for a second and a half; then the receiver is back.
        if let Ok((stream, _)) = listener.accept().await {
            drop(listener);
            serve_one(stream, s.clone(), None, Some(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let Ok(listener) = tokio::net::TcpListener::bind(&addr).await else {
            panic!("the receiver listens again");
        };
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_one(stream, s.clone(), None, None));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let text = common::config(net, &dir.path().join("var"), &setup(&receiver));
    let h = Hotline::start_with(net, dir, &text);
    let mut phone = common::start_phone(&h, 0, "2001", &["--tone", "600", "--answer-after", "0.2"]);
    let heard = h.dir.path().join("heard.wav");
    let out = call(&h, "5", &heard);
    assert!(out.status.success(), "the caller's call went through");
    // The call itself was untouched: the caller heard the agent throughout.
    let audio = common::audio::channel(&heard, 0, 1);
    let agent_heard = windows_with(&audio, 600.0, 0.5);
    assert!(
        agent_heard >= 150,
        "the caller heard the agent in {agent_heard} windows"
    );
    wait_stop(&seen);

    let s = seen.lock().unwrap();
    assert_eq!(s.len(), 2, "a connection, then a reconnection: {s:?}");
    let first = s[0].start.as_ref().expect("first start");
    let second = s[1].start.as_ref().expect("a new start on reconnection");
    assert_eq!(first["fork_id"], second["fork_id"]);
    assert_eq!(first["sequence"], 0);
    assert!(second["sequence"].as_u64().unwrap_or(0) >= 10, "{second}");
    assert!(
        s[0].stop.is_none(),
        "no stop on a connection the receiver closed"
    );
    let all: Vec<DecodedFrame> = s.iter().flat_map(|c| c.frames.clone()).collect();
    let gaps = check_order(&all);
    assert!(gaps >= 25, "over a second away: {gaps} frames missing");
    let stop = s[1].stop.as_ref().expect("stop");
    let (sent, dropped) = (
        stop["frames_sent"].as_u64().unwrap_or(0),
        stop["frames_dropped"].as_u64().unwrap_or(0),
    );
    assert!(sent >= all.len() as u64, "{stop}: {} received", all.len());
    assert!(dropped >= 25, "{stop}");
    let last = all.last().map(|f| u64::from(f.sequence) + 1).unwrap_or(0);
    assert!(sent + dropped >= last, "{stop}: last sequence {last}");
    // The agent's tone is still on the right after the reconnection.
    let right = channel(&s[1].frames, 1);
    assert!(windows_with(&right, 600.0, 0.5) >= 50);
    drop(s);
    assert!(metric(&h, "audio_fork_reconnects") >= 1);
    assert!(metric(&h, "audio_fork_frames_dropped") >= 25);
    phone.kill().ok();
    phone.wait().ok();
}

#[test]
fn an_agent_starts_and_stops_the_fork_of_their_call_through_the_api() {
    let net = Net(80);
    let api = Api::new(net);
    let (receiver, seen) = receive(&api, net, None);
    let dir = tempfile::tempdir().unwrap();
    let text = common::config(
        net,
        &dir.path().join("var"),
        &setup_with(&receiver, ", auto = false"),
    );
    let h = Hotline::start_with(net, dir, &text);
    let token = api.login("agent-a", "agent-a-password");
    let (status, v) = api.post("/api/v1/agent/call/fork/start", &token, "");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("no_call")),
        "{v}"
    );
    assert!(v["error"]["message_zh"].as_str().is_some(), "{v}");
    let mut phone = common::start_phone(&h, 0, "2001", &["--tone", "600", "--answer-after", "0.2"]);
    let heard = h.dir.path().join("heard.wav");
    let caller = common::citizen(net, "6", &heard);
    common::wait_until("the call to connect", Duration::from_secs(15), || {
        h.log().contains("connected caller_rtp").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        seen.lock().unwrap().is_empty(),
        "not forked before it is asked for"
    );
    let (status, v) = api.post("/api/v1/agent/call/fork/start", &token, "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["streaming"].as_bool(), v["was_streaming"].as_bool()),
        (Some(true), Some(false))
    );
    common::wait_until("a second of audio", Duration::from_secs(10), || {
        let s = seen.lock().unwrap();
        s.first().filter(|c| c.frames.len() >= 50).map(|_| ())
    });
    let (status, v) = api.post("/api/v1/agent/call/fork/stop", &token, "");
    assert_eq!(
        (status, v["streaming"].as_bool()),
        (200, Some(false)),
        "{v}"
    );
    common::wait_until("the stop message", Duration::from_secs(10), || {
        let s = seen.lock().unwrap();
        s.first().and_then(|c| c.stop.clone())
    });
    let out = caller.wait_with_output().expect("the caller ran");
    assert!(out.status.success(), "the caller's call went through");
    let s = seen.lock().unwrap();
    assert_eq!(s.len(), 1, "{s:?}");
    let c = &s[0];
    let start = c.start.as_ref().expect("start");
    assert_eq!(start["call"]["agent"], "A01");
    let stop = c.stop.as_ref().expect("stop");
    assert_eq!(stop["reason"], "stopped");
    assert_eq!(stop["frames_sent"].as_u64(), Some(c.frames.len() as u64));
    check_order(&c.frames);
    assert!(windows_with(&channel(&c.frames, 0), 440.0, 0.5) >= 25);
    assert!(windows_with(&channel(&c.frames, 1), 600.0, 0.5) >= 25);
    drop(s);
    // The caller heard the agent throughout.
    let audio = common::audio::channel(&heard, 0, 1);
    assert!(windows_with(&audio, 600.0, 0.5) >= 150);
    // Both audited.
    let (status, audit) = api.get("/api/v1/admin/audit", &h.ops_token());
    assert_eq!(status, 200, "{audit}");
    let text = audit.to_string();
    assert!(
        text.contains("call.fork_start") && text.contains("call.fork_stop"),
        "{text}"
    );
    // After the call: nothing to fork, said in Chinese too.
    common::wait_until("the call to end", Duration::from_secs(10), || {
        let (status, v) = api.post("/api/v1/agent/call/fork/stop", &token, "");
        (status == 409 && v["error"]["code"] == "no_call").then_some(v)
    });
    phone.kill().ok();
    phone.wait().ok();
}
