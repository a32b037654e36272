//! A real HTTP receiver on 127.0.0.1 for the webhook tests: verifies every
//! signature, records every accepted (id, call, seq), and can be told to
//! answer 500, to hang past the sender's timeout, to refuse ids with 400,
//! or to go away (port closed: connection refused) and come back.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hotline::events::signature;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Answer 200.
pub const OK: u8 = 0;
/// Answer 500.
pub const FAIL_500: u8 = 1;
/// Sleep `slow` then answer 200 (recording it), past the sender's timeout.
pub const SLOW: u8 = 2;

/// One accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    pub call: String,
    pub seq: u32,
    pub attempt: u32,
    pub replay: bool,
}

pub struct Receiver {
    pub mode: AtomicU8,
    pub slow: Duration,
    pub secret: Vec<u8>,
    pub log: Mutex<Vec<Receipt>>,
    pub requests: AtomicU64,
    pub bad_signatures: AtomicU64,
    /// Switch to FAIL_500 once this many receipts are logged (0: never).
    pub fail_after: AtomicUsize,
    /// Ids answered 400.
    pub refuse: Mutex<HashSet<String>>,
}

impl Receiver {
    pub fn new(secret: &[u8]) -> Arc<Self> {
        Arc::new(Self {
            mode: AtomicU8::new(OK),
            slow: Duration::from_millis(600),
            secret: secret.to_vec(),
            log: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
            fail_after: AtomicUsize::new(0),
            refuse: Mutex::new(HashSet::new()),
        })
    }

    pub fn receipts(&self) -> Vec<Receipt> {
        self.log.lock().expect("log").clone()
    }
}

#[allow(clippy::disallowed_methods)] // the test receiver's clock
fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn hook(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    rx.requests.fetch_add(1, Ordering::Relaxed);
    if signature::verify(
        &rx.secret,
        header(&headers, "x-hotline-timestamp"),
        &body,
        header(&headers, "x-hotline-signature"),
        unix_secs(),
        300,
    )
    .is_err()
    {
        rx.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    let id = header(&headers, "x-hotline-event-id").to_string();
    if rx.refuse.lock().expect("refuse").contains(&id) {
        return StatusCode::BAD_REQUEST;
    }
    match rx.mode.load(Ordering::SeqCst) {
        FAIL_500 => return StatusCode::INTERNAL_SERVER_ERROR,
        SLOW => tokio::time::sleep(rx.slow).await,
        _ => {}
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    // Synthetic events carry `call`, hotline's own `call_id` (agent.state:
    // none in the body; the header names the agent's ordering key).
    let call = header(&headers, "x-hotline-call-id").to_string();
    let body_call = v["call"].as_str().or(v["call_id"].as_str());
    let seq = v["seq"].as_u64().unwrap_or(u64::MAX) as u32;
    if body_call.is_some_and(|c| c != call)
        || header(&headers, "x-hotline-event-type") != v["type"].as_str().unwrap_or("")
        || v["id"].as_str() != Some(id.as_str())
    {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    let mut log = rx.log.lock().expect("log");
    log.push(Receipt {
        id,
        call,
        seq,
        attempt: header(&headers, "x-hotline-attempt").parse().unwrap_or(0),
        replay: header(&headers, "x-hotline-replay") == "1",
    });
    let n = rx.fail_after.load(Ordering::SeqCst);
    if n > 0 && log.len() >= n {
        rx.fail_after.store(0, Ordering::SeqCst);
        rx.mode.store(FAIL_500, Ordering::SeqCst);
    }
    StatusCode::OK
}

/// A running server; `stop` closes the port, `start` reopens the same one.
pub struct Server {
    pub addr: SocketAddr,
    rx: Arc<Receiver>,
    running: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Server {
    pub async fn start(rx: Arc<Receiver>) -> Self {
        let mut s = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            rx,
            running: None,
        };
        s.listen().await;
        s
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    async fn listen(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind");
        self.addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(Arc::clone(&self.rx));
        let stop = CancellationToken::new();
        let s2 = stop.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { s2.cancelled().await })
                .await;
        });
        self.running = Some((stop, task));
    }

    /// Close the port and every connection (waits for handlers in progress).
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Listen again on the same port.
    pub async fn restart(&mut self) {
        self.listen().await;
    }
}

/// Body of event `seq` of call `call`, carrying what the receiver checks.
pub fn body(id: &str, call: &str, seq: u32, kind: &str) -> String {
    serde_json::json!({ "id": id, "call": call, "seq": seq, "type": kind }).to_string()
}

pub fn event(call: usize, seq: u32) -> hotline::events::outbox::NewEvent {
    let call_id = format!("c{call}");
    let id = format!("{call_id}-e{seq}");
    let kind = if seq == 0 {
        "call.started"
    } else {
        "call.step"
    };
    hotline::events::outbox::NewEvent {
        body_json: body(&id, &call_id, seq, kind),
        id,
        call_id: Some(call_id),
        kind: kind.to_string(),
    }
}

/// Poll `cond` every 20 ms, at most `limit`; true when it held.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let steps = (limit.as_millis() / 20).max(1);
    for _ in 0..steps {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// The checks of issue 7's "done when" on what the receiver got:
/// every expected event at least once, no receipt of an unknown id, per-call
/// order of first receipts equal to append order. Returns the duplicates.
pub fn check_delivery(receipts: &[Receipt], calls: usize, per_call: u32) -> usize {
    use std::collections::HashMap;
    let mut first: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut dups = 0;
    for r in receipts {
        assert_eq!(r.id, format!("{}-e{}", r.call, r.seq), "receipt {r:?}");
        if seen.insert(&r.id) {
            first.entry(&r.call).or_default().push(r.seq);
        } else {
            dups += 1;
        }
    }
    assert_eq!(first.len(), calls, "calls received");
    for (call, seqs) in &first {
        let want: Vec<u32> = (0..per_call).collect();
        assert_eq!(seqs, &want, "first receipts of {call}");
    }
    dups
}
