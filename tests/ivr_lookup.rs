//! IVR lookups (issue 18 §2) from outside: a real `hotline serve` runs a
//! flow that collects a ticket number, asks a local web service about it
//! (`http` node) and reads the answer back (`say` nodes); SIPp callers
//! press the number by SIP INFO. The service, in-process on 127.73.0.9,
//! answers (ticket 1), is slow past the node's timeout (2), fails with 500
//! (3) and does not know the ticket (4). Each call's branch is read from
//! its `flow over` line; the answered call's audio is checked piece by
//! piece against the prompts the figures are read from (RTP seen with a
//! raw socket, root, like SIPp itself).

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Hotline, Net, Sipp};

const FLOW: &str = r#"
name = "lookup"
dids = ["12366"]
entry = "ticket"

[nodes.ticket]
kind = "collect"
prompts = ["ivr_ticket_number"]
var = "ticket"
max_digits = 1
timeout_secs = 10
next = "ask"

[nodes.ask]
kind = "http"
url = "http://SERVER/tickets/{var:ticket}?caller={caller}"
headers = { Authorization = "Bearer lookup-test" }
timeout_secs = 1
retries = 1
hold_prompt = "ivr_lookup_wait"
set = { progress = "data.status", due = "data.due", fee = "data.fee" }
next = "progress"
on_status = { "404" = "unknown" }
on_timeout = "busy"
on_error = "unavailable"

[nodes.progress]
kind = "say"
value = "{var:ticket}"
as = "digits"
before = ["ivr_ticket_is"]
after = ["ivr_ticket_in_progress"]
next = "due"

[nodes.due]
kind = "say"
value = "{var:due}"
as = "date"
before = ["ivr_ticket_due"]
next = "fee"

[nodes.fee]
kind = "say"
value = "{var:fee}"
as = "amount"
next = "bye"

[nodes.unknown]
kind = "play"
prompts = ["ivr_ticket_unknown"]
next = "bye"

[nodes.busy]
kind = "play"
prompts = ["ivr_lookup_unavailable"]
next = "bye"

[nodes.unavailable]
kind = "play"
prompts = ["ivr_lookup_unavailable"]
next = "bye"

[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;

/// What the service saw: (ticket, caller query, authorization header).
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// The ticket service on `addr`: 1 answers, 2 is slow, 3 fails, others
/// are unknown.
fn service(addr: &str, seen: Seen) -> tokio::runtime::Runtime {
    use axum::extract::{Path as UrlPath, Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    async fn ticket(
        State(seen): State<Seen>,
        UrlPath(no): UrlPath<String>,
        Query(q): Query<BTreeMap<String, String>>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let caller = q.get("caller").cloned().unwrap_or_default();
        seen.lock().unwrap().push((no.clone(), caller, auth));
        match no.as_str() {
            "1" => (
                StatusCode::OK,
                [("content-type", "application/json")],
                r#"{"data":{"status":"processing","due":"2026-12-08","fee":"12.50"}}"#,
            )
                .into_response(),
            "2" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                (StatusCode::OK, "{}").into_response()
            }
            "3" => (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
            _ => (StatusCode::NOT_FOUND, r#"{"error":"no such ticket"}"#).into_response(),
        }
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .expect("bind the ticket service");
    let app = axum::Router::new()
        .route("/tickets/{no}", axum::routing::get(ticket))
        .with_state(seen);
    rt.spawn(async move { axum::serve(listener, app).await });
    rt
}

/// RTP payloads hotline sends the carrier, seen with a raw socket.
struct Capture {
    payloads: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Capture {
    fn start(from: Ipv4Addr, to: Ipv4Addr) -> Self {
        use socket2::{Domain, Protocol, Socket, Type};
        // SOCK_RAW (3) with IPPROTO_UDP: every UDP datagram the host gets.
        let sock = Socket::new(Domain::IPV4, Type::from(3), Some(Protocol::UDP))
            .expect("raw socket (the test runs as root, like SIPp)");
        sock.set_recv_buffer_size(4 << 20).ok();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let payloads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (payloads, stop) = (payloads.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = (&sock).read(&mut buf) else {
                        continue;
                    };
                    if let Some(p) = pcma_payload(&buf[..n], from, to) {
                        payloads.lock().unwrap().push(p);
                    }
                }
            })
        };
        Self {
            payloads,
            stop,
            thread: Some(thread),
        }
    }

    /// Stop; the payloads in arrival order, as one stream.
    fn finish(mut self) -> Vec<u8> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
        std::mem::take(&mut *self.payloads.lock().unwrap()).concat()
    }
}

/// The PCMA (PT 8) payload of an IPv4/UDP/RTP packet from `from` to `to`
/// off the SIP port.
fn pcma_payload(d: &[u8], from: Ipv4Addr, to: Ipv4Addr) -> Option<Vec<u8>> {
    if d.len() < 20 || d[0] >> 4 != 4 || d[9] != 17 {
        return None;
    }
    let ihl = usize::from(d[0] & 0x0f) * 4;
    let src = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
    let dst = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
    let udp = d.get(ihl..)?;
    let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let rtp = udp.get(8..)?;
    if src != from || dst != to || sport == 5060 || dport == 5060 || rtp.len() < 12 {
        return None;
    }
    if rtp[0] >> 6 != 2 || rtp[1] & 0x7f != 8 {
        return None;
    }
    let cc = usize::from(rtp[0] & 0x0f);
    Some(rtp.get(12 + 4 * cc..)?.to_vec())
}

/// The A-law samples of a shipped prompt (`sounds/NAME.wav`).
fn prompt(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("sounds/{name}.wav"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if &bytes[at..at + 4] == b"data" {
            return bytes[at + 8..(at + 8 + len).min(bytes.len())].to_vec();
        }
        at += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}

/// Where each prompt's audio starts in `stream`, in order: the first
/// 60 ms of sound of each (leading silence skipped) found sample for
/// sample after the previous one. `None` names the first one missing.
fn in_order(stream: &[u8], names: &[&str]) -> Result<Vec<usize>, String> {
    let is_silence = |b: &u8| *b == 0xd5 || *b == 0x55;
    let mut from = 0;
    let mut out = Vec::new();
    for name in names {
        let audio = prompt(name);
        let sound: Vec<u8> = audio
            .iter()
            .copied()
            .skip_while(is_silence)
            .take(480)
            .collect();
        let at = stream
            .get(from..)
            .and_then(|rest| {
                rest.windows(sound.len())
                    .position(|w| w == sound.as_slice())
            })
            .ok_or_else(|| format!("{name} not heard after byte {from} (of {})", stream.len()))?;
        out.push(from + at);
        from += at + sound.len();
    }
    Ok(out)
}

/// One caller pressing `key` for the ticket number; the carrier's audio.
fn call(h: &Hotline, net: Net, key: &str) -> Vec<u8> {
    let capture = Capture::start(net.ip(1).parse().unwrap(), net.carrier().parse().unwrap());
    let sip = net.sip();
    Sipp::start(
        "carrier_ivr_lookup.xml",
        &net.carrier(),
        &["-s", "12366", "-m", "1", "-key", "key", key, &sip],
    )
    .wait(Duration::from_secs(60))
    .assert_ok(h);
    capture.finish()
}

/// The `flow over` lines so far, in order.
fn overs(h: &Hotline) -> Vec<String> {
    h.log()
        .lines()
        .filter(|l| l.contains("flow over"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_ticket_is_looked_up_and_read_back_and_slow_failing_and_unknown_answers_branch() {
    let net = Net(73);
    let server = format!("{}:9000", net.ip(9));
    let seen: Seen = Arc::default();
    let _service = service(&server, seen.clone());

    let dir = common::flows::setup(&[("lookup.toml", &FLOW.replace("SERVER", &server))]);
    let extra = format!(
        "[ivr]\nflows_dir = \"{}\"\ncalendars_dir = \"{}\"\n",
        dir.path().join("flows").display(),
        dir.path().join("cal").display(),
    );
    let data = dir.path().join("var");
    let text = common::config(net, &data, &extra);
    let h = Hotline::start_with(net, dir, &text);
    assert_eq!(
        h.healthz()["ivr"]["problems"].as_array().map(Vec::len),
        Some(0),
        "{}",
        h.healthz()["ivr"]
    );

    // Ticket 1: answered; its status is read back with the figures.
    let heard = call(&h, net, "1");
    let over = overs(&h);
    assert_eq!(over.len(), 1, "{}", h.tail_log());
    assert!(
        over[0].contains(r#"path=["ticket", "ask", "progress", "due", "fee", "bye"]"#),
        "{}",
        over[0]
    );
    for var in [
        r#""http_status": "200""#,
        r#""progress": "processing""#,
        r#""due": "2026-12-08""#,
        r#""fee": "12.50""#,
        r#""ticket": "1""#,
    ] {
        assert!(over[0].contains(var), "{var} in {}", over[0]);
    }
    // 您的工单 一 正在办理中。预计办结日期为 二零二六年十二月八日 十二元五角 …再见.
    let pieces = [
        "ivr_ticket_is",
        "num_1",
        "ivr_ticket_in_progress",
        "ivr_ticket_due",
        "num_2",
        "num_0",
        "num_2",
        "num_6",
        "num_year",
        "num_10",
        "num_2",
        "num_month",
        "num_8",
        "num_day",
        "num_10",
        "num_2",
        "num_yuan",
        "num_5",
        "num_jiao",
        "ivr_goodbye",
    ];
    if let Err(missing) = in_order(&heard, &pieces) {
        panic!(
            "the read-back was not heard in order: {missing}\n{}",
            h.tail_log()
        );
    }
    // The check tells pieces apart: 十二 is not 两 (never said here).
    assert!(in_order(&heard, &["ivr_ticket_due", "num_liang"]).is_err());

    // Ticket 2: slower than the node's 1 s, twice: the timeout branch.
    call(&h, net, "2");
    // Ticket 3: 500, twice: the error branch.
    call(&h, net, "3");
    // Ticket 4: 404 has its own branch (not a failure).
    call(&h, net, "4");
    let over = overs(&h);
    assert_eq!(over.len(), 4, "{}", h.tail_log());
    let branch = |line: &str, path: &str, status: &str| {
        assert!(line.contains(path), "{path} in {line}");
        assert!(
            line.contains(&format!(r#""http_status": "{status}""#)),
            "{status} in {line}"
        );
        assert!(!line.contains("\"progress\""), "no fields mapped: {line}");
    };
    branch(
        &over[1],
        r#"path=["ticket", "ask", "busy", "bye"]"#,
        "timeout",
    );
    branch(
        &over[2],
        r#"path=["ticket", "ask", "unavailable", "bye"]"#,
        "500",
    );
    branch(
        &over[3],
        r#"path=["ticket", "ask", "unknown", "bye"]"#,
        "404",
    );

    // What the service saw: the caller escaped into the query, the
    // header, and one retry for the slow and the failing lookups.
    let seen = seen.lock().unwrap().clone();
    let tickets: Vec<&str> = seen.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(tickets, ["1", "2", "2", "3", "3", "4"], "{seen:?}");
    for (_, caller, auth) in &seen {
        assert_eq!(caller, "+15550100");
        assert_eq!(auth, "Bearer lookup-test");
    }
    // One line and one count per failure.
    let health = h.healthz();
    assert_eq!(health["calls"]["ivr_lookups"], 4, "{health}");
    assert_eq!(health["calls"]["ivr_lookup_failures"], 2, "{health}");
    let (code, metrics) = common::http_send(
        &format!("{}:8080", net.ip(1)),
        "GET",
        "/metrics",
        None,
        None,
    )
    .expect("GET /metrics");
    assert_eq!(code, 200, "{metrics}");
    for series in [
        "hotline_ivr_lookups_total 4",
        "hotline_ivr_lookup_failures_total 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == series),
            "{series} in\n{metrics}"
        );
    }
    let log = h.log();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("IVR lookup failed"))
        .collect();
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(failures[0].contains("no answer within 1s") && failures[0].contains("attempts=2"));
    assert!(failures[1].contains("status 500") && failures[1].contains("attempts=2"));
    assert!(
        failures.iter().all(|l| !l.contains("caller=")),
        "the query stays out of the log: {failures:#?}"
    );
}
