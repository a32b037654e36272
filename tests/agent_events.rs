//! Agent state events reach the ticket platform's webhook (events issue §1,
//! §3): an agent's phone registers (auto-login: idle), then unregisters
//! (logged out); a real HTTP server on loopback receives `agent.state`
//! events, correctly signed, in order, each once per id. The receiver's
//! port is closed while the events happen; delivery catches up once it
//! listens (retries back off; tests/events_webhook_delivery.rs covers
//! failures at length).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Hotline, Net};

#[derive(Default)]
struct Received {
    events: Mutex<Vec<serde_json::Value>>,
    bad_signatures: Mutex<u32>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[allow(clippy::disallowed_methods)] // the test receiver's clock
fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn hook(State(r): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let ok = hotline::events::signature::verify(
        b"s3cret",
        header(&headers, "x-hotline-timestamp"),
        &body,
        header(&headers, "x-hotline-signature"),
        unix_secs(),
        300,
    );
    if ok.is_err() {
        *r.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    r.events.lock().unwrap().push(v);
    StatusCode::OK
}

/// Serve the hook on `listener` in a thread of its own; returns the runtime.
fn serve(listener: std::net::TcpListener, r: Arc<Received>) -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.spawn(async move {
        listener.set_nonblocking(true).unwrap();
        let l = tokio::net::TcpListener::from_std(listener).unwrap();
        let app = axum::Router::new().route("/hook", post(hook)).with_state(r);
        axum::serve(l, app).await.ok();
    });
    rt
}

#[test]
fn agent_state_changes_reach_the_webhook_signed_and_in_order() {
    let net = Net(113);
    // Reserve a port for the receiver, but do not serve yet: hotline's first
    // deliveries meet a closed port and back off.
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let h = Hotline::start(
        net,
        &format!(
            r#"
[[group]]
id = "general"

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
skills = {{ general = 5 }}
auto_login = true

[[webhook]]
name = "tickets"
url = "http://127.0.0.1:{port}/hook"
secret = "s3cret"
timeout_secs = 2
"#
        ),
    );
    // The agent's phone registers (idle), answers nothing and unregisters
    // as it exits (logged out).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["phone", "--bind", &format!("{}:5060", net.agent(0))])
        .args([
            "--registrar",
            &net.sip(),
            "--user",
            "2001",
            "--password",
            "pass2001",
        ])
        .args(["--calls", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.wait_for("the agent to log out", Duration::from_secs(10), |_| {
        h.log().contains("state=logged out")
    });
    // Now the platform comes back.
    let received = Arc::new(Received::default());
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let _rt = serve(listener, received.clone());
    // Bounded: at most 30 s (backoff after the refused attempts is ~1 s).
    for _ in 0..300 {
        if received.events.lock().unwrap().len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = received.events.lock().unwrap().clone();
    assert_eq!(*received.bad_signatures.lock().unwrap(), 0);
    let states: Vec<(&str, u64)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "agent.state", "{e}");
            assert_eq!(e["data"]["agent_id"], "A01", "{e}");
            (
                e["data"]["state"].as_str().unwrap_or(""),
                e["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(states, [("idle", 1), ("logged_out", 2)], "{events:#?}");
    let ids: std::collections::HashSet<&str> =
        events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), events.len(), "each event once");
}
