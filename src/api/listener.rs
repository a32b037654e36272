//! The HTTP listener: `GET /healthz` (version, uptime, the live counters a
//! test or an operator uses to see that nothing leaks — calls, dialogs,
//! transactions, RTP ports, tasks, memory — and `warnings`, such as a
//! holiday calendar that has run out), the ACD's statistics and callbacks,
//! and the `/api/v1` routes of [`crate::api`]. Every error under `/api/`
//! is JSON ([`crate::api::json_errors`]), bodies are limited to
//! [`crate::api::json_errors::MAX_BODY_BYTES`]. What it reads of the
//! switch comes as a [`SwitchView`] the composition root (`app`) builds.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::handles::{IvrStatus, RegistrationCount};
use crate::call::queue::Queues;
use crate::call::CallCounters;
use crate::media::ports::PortPool;
use crate::sip::SipStack;

/// Live handles of the switch the listener reads.
#[derive(Clone)]
pub struct SwitchView {
    /// Call counters.
    pub counters: Arc<CallCounters>,
    /// SIP stack (dialog/transaction counts).
    pub stack: SipStack,
    /// RTP port pool.
    pub ports: PortPool,
    /// Registrations.
    pub registrations: Arc<dyn RegistrationCount>,
    /// Start time (monotonic).
    pub started: tokio::time::Instant,
    /// The ACD, when groups are configured.
    pub queues: Option<Queues>,
    /// The agents and skill groups in force.
    pub roster: Arc<crate::roster::LiveRoster>,
    /// The live IVR flows.
    pub ivr: Arc<dyn IvrStatus>,
}

/// Serve until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SwitchView,
    api: Router,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/acd/stats", get(acd_stats))
        .route("/api/v1/acd/callbacks", post(schedule_callback))
        .with_state(state)
        .merge(api)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::api::json_errors::MAX_BODY_BYTES,
        ))
        .layer(axum::middleware::from_fn(
            crate::api::json_errors::json_errors,
        ));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "HTTP server stopped");
    }
}

/// Unknown paths: a JSON 404 like every other API error.
async fn not_found() -> (axum::http::StatusCode, Json<Value>) {
    api_error(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint".into(),
    )
}

async fn healthz(State(s): State<SwitchView>) -> Json<Value> {
    let c = &s.counters;
    let metrics = tokio::runtime::Handle::current().metrics();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": s.started.elapsed().as_secs(),
        "calls": {
            "active": c.active.load(Ordering::Relaxed),
            "started": c.started.load(Ordering::Relaxed),
            "answered": c.answered.load(Ordering::Relaxed),
            "unanswered": c.unanswered.load(Ordering::Relaxed),
        },
        "rtp": {
            "caller_to_agent": c.rtp_caller_to_agent.load(Ordering::Relaxed),
            "agent_to_caller": c.rtp_agent_to_caller.load(Ordering::Relaxed),
        },
        "sip": {
            "dialogs": s.stack.dialog_count(),
            "transactions": s.stack.transaction_count(),
        },
        "media": { "rtp_port_pairs_in_use": s.ports.in_use() },
        "registrations": s.registrations.count(),
        "ivr": {
            "flows": s.ivr.flows().into_iter().map(|(name, version, dids)| json!({
                "name": name, "version": version, "dids": dids,
            })).collect::<Vec<_>>(),
            "reloads": s.ivr.reloads(),
            // An edit that was refused (the previous flows stay live).
            "problems": s.ivr.problems(),
        },
        // Loud, not a silent fallback: holiday calendars that have run out
        // (issue 12 item 8; rule in ivr::coverage).
        "warnings": s.ivr.calendar_warnings(i64::try_from(crate::util::unix_now()).unwrap_or(i64::MAX)),
        "tasks": metrics.num_alive_tasks(),
        "rss_bytes": crate::util::rss_bytes(),
    }))
}

/// Live ACD statistics per group and agent (wall-board figures), and the
/// missed-call list.
async fn acd_stats(State(s): State<SwitchView>) -> (axum::http::StatusCode, Json<Value>) {
    match &s.queues {
        Some(q) => match q.stats().await {
            Some(v) => (axum::http::StatusCode::OK, Json(v)),
            None => api_error(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "acd_unavailable",
                "the ACD is not running".into(),
            ),
        },
        None => api_error(
            axum::http::StatusCode::NOT_FOUND,
            "no_groups",
            "no skill groups are configured".into(),
        ),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackRequest {
    group: String,
    number: String,
    #[serde(default)]
    priority: u8,
}

fn api_error(
    status: axum::http::StatusCode,
    code: &str,
    message: String,
) -> (axum::http::StatusCode, Json<Value>) {
    (
        status,
        Json(json!({"error": crate::api::error::error_object(code, &message, status)})),
    )
}

/// Schedule a callback (a supervisor calling back a missed caller): it
/// queues in the group as if it arrived now; when its turn comes an agent
/// is rung first, then the citizen is dialled. Body:
/// `{"group": "general", "number": "13800138000", "priority": 0}`.
/// (Authentication and roles arrive with the CTI API; the HTTP listener is
/// on loopback by default.)
async fn schedule_callback(
    State(s): State<SwitchView>,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, Json<Value>) {
    use axum::http::StatusCode;
    let Some(queues) = &s.queues else {
        return api_error(
            StatusCode::NOT_FOUND,
            "no_groups",
            "no skill groups are configured".into(),
        );
    };
    let req: CallbackRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "bad_json", e.to_string()),
    };
    let digits_ok = !req.number.is_empty()
        && req.number.len() <= 32
        && req.number.chars().all(|c| c.is_ascii_digit() || c == '+');
    if !digits_ok {
        return api_error(
            StatusCode::BAD_REQUEST,
            "bad_number",
            format!("{:?} is not a phone number", req.number),
        );
    }
    if s.roster.load().group(&req.group).is_none() {
        return api_error(
            StatusCode::NOT_FOUND,
            "unknown_group",
            format!("no group {:?}", req.group),
        );
    }
    let call = queues.schedule_callback(&req.group, &req.number, req.priority);
    (StatusCode::ACCEPTED, Json(json!({"callback": call.0})))
}
