//! The HTTP API. For now `GET /healthz`: version, uptime and the live
//! counters a test or an operator uses to see that nothing leaks (calls,
//! dialogs, transactions, RTP ports, tasks, memory). The CTI API grows here.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::switch::SwitchState;

/// Serve until `stop` is cancelled.
pub async fn serve(listener: tokio::net::TcpListener, state: SwitchState, stop: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/acd/stats", get(acd_stats))
        .with_state(state);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "HTTP server stopped");
    }
}

async fn healthz(State(s): State<SwitchState>) -> Json<Value> {
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
        "tasks": metrics.num_alive_tasks(),
        "rss_bytes": crate::util::rss_bytes(),
    }))
}

/// Live ACD statistics per group and agent (wall-board figures), and the
/// missed-call list.
async fn acd_stats(State(s): State<SwitchState>) -> (axum::http::StatusCode, Json<Value>) {
    match &s.queues {
        Some(q) => match q.stats().await {
            Some(v) => (axum::http::StatusCode::OK, Json(v)),
            None => (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({"error": {"code": "acd_unavailable", "message": "the ACD is not running"}}),
                ),
            ),
        },
        None => (
            axum::http::StatusCode::NOT_FOUND,
            Json(
                json!({"error": {"code": "no_groups", "message": "no skill groups are configured"}}),
            ),
        ),
    }
}
