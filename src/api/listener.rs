//! The HTTP listener: `GET /livez` and `GET /readyz` (liveness and
//! readiness, docs/ha.md §6), `GET /metrics` (Prometheus, [`super::metrics`]), `GET /healthz` (version, uptime, the live counters a
//! test or an operator uses to see that nothing leaks — calls, dialogs,
//! transactions, RTP ports, tasks, memory — and `warnings`, such as a
//! holiday calendar that has run out), and the `/api/v1` routes of
//! [`crate::api`] (the ACD's statistics and callbacks among them, behind
//! authentication like every other). Every error under `/api/`
//! is JSON ([`crate::api::json_errors`]), bodies are limited to
//! [`crate::api::json_errors::MAX_BODY_BYTES`]. What it reads of the
//! switch comes as a [`SwitchView`] the composition root (`app`) builds.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::handles::{CallCapsStatus, IvrStatus, Readiness, RegistrationCount};
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
    /// The live IVR flows.
    pub ivr: Arc<dyn IvrStatus>,
    /// Calls per trunk and centre against their caps.
    pub caps: Arc<dyn CallCapsStatus>,
    /// Whether this node should get new work.
    pub readiness: Arc<dyn Readiness>,
    /// The ACD, when groups are configured (`/metrics`).
    pub queues: Option<crate::call::queue::Queues>,
    /// The events outbox (`/metrics`: backlog and dead letters).
    pub outbox: Arc<crate::events::outbox::Outbox>,
    /// The other nodes sharing the store (`/metrics`).
    pub cluster: Arc<crate::store::cluster::ClusterStatus>,
    /// The agent forecast's inputs (`/metrics`: `hotline_forecast_*`).
    pub forecast: Option<super::forecast::Sources>,
}

/// Serve until `stop` is cancelled: HTTPS with `tls`, else plain HTTP.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: SwitchView,
    api: Router,
    cors: super::cors::AllowedOrigins,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(super::metrics::metrics))
        .with_state(state)
        .merge(api)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::api::json_errors::MAX_BODY_BYTES,
        ))
        .layer(axum::middleware::from_fn(
            crate::api::json_errors::json_errors,
        ))
        .layer(axum::middleware::from_fn(move |req, next| {
            super::cors::cors(cors.clone(), req, next)
        }));
    let shutdown = stop.clone();
    let result = match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
        }
        Some(config) => match super::tls_listener::TlsListener::new(listener, config, stop) {
            Ok(listener) => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await
            }
            Err(e) => Err(e),
        },
    };
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

/// Liveness: the process and its HTTP runtime answer (a supervisor
/// restarts a node that stops answering this).
async fn livez(State(s): State<SwitchView>) -> Json<Value> {
    Json(json!({
        "status": "alive",
        "uptime_secs": s.started.elapsed().as_secs(),
    }))
}

/// Readiness (docs/ha.md §6): 200 when this node should get new work —
/// not draining, its store answering — else 503 with the failing checks,
/// so a load balancer in front of the HTTP side moves browsers elsewhere.
async fn readyz(State(s): State<SwitchView>) -> (axum::http::StatusCode, Json<Value>) {
    let readiness = s.readiness.clone();
    let checks = tokio::task::spawn_blocking(move || readiness.checks())
        .await
        .unwrap_or_else(|e| vec![("checks", Err(format!("readiness checks failed: {e}")))]);
    let ready = checks.iter().all(|(_, r)| r.is_ok());
    let shown: serde_json::Map<String, Value> = checks
        .into_iter()
        .map(|(name, r)| {
            let v = match r {
                Ok(()) => Value::from("ok"),
                Err(why) => Value::from(why),
            };
            (name.to_string(), v)
        })
        .collect();
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "checks": shown,
        })),
    )
}

async fn healthz(State(s): State<SwitchView>) -> Json<Value> {
    let c = &s.counters;
    let metrics = tokio::runtime::Handle::current().metrics();
    let gate = s.stack.gate_counts();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": s.started.elapsed().as_secs(),
        "calls": {
            "active": c.active.load(Ordering::Relaxed),
            "started": c.started.load(Ordering::Relaxed),
            "answered": c.answered.load(Ordering::Relaxed),
            "unanswered": c.unanswered.load(Ordering::Relaxed),
            // IVR `http` nodes' requests and their failures (issue 18 §2).
            "ivr_lookups": c.ivr_lookups.load(Ordering::Relaxed),
            "ivr_lookup_failures": c.ivr_lookup_failures.load(Ordering::Relaxed),
        },
        "rtp": {
            "caller_to_agent": c.rtp_caller_to_agent.load(Ordering::Relaxed),
            "agent_to_caller": c.rtp_agent_to_caller.load(Ordering::Relaxed),
        },
        "sip": {
            "dialogs": s.stack.dialog_count(),
            "legs_routed": s.stack.routed_leg_count(),
            "transactions": s.stack.transaction_count(),
            // The ingress gate (issue 14 §3, §5).
            "refused": gate.refused,
            "malformed_dropped": gate.malformed_dropped,
            "flood_bans": gate.flood.bans,
            "flood_dropped": gate.flood.dropped,
            "banned_now": gate.flood.banned_now,
            // User names locked out after failed digest attempts from any
            // address (issue 14 §5).
            "locked_out_users": s.registrations.locked_out_users(),
        },
        "media": {
            "rtp_port_pairs_in_use": s.ports.in_use(),
            // Calls' media sessions on the media IO workers (one per call
            // from its first answer to its end), and the busiest worker's
            // last second (issue 16: overload refuses
            // new calls before calls in progress lose packets).
            "sessions": crate::media::session::running(),
            "io": crate::media::session::pressure().map(|p| json!({
                "cpu_permille": p.cpu_permille,
                "mean_tick_late_us": p.mean_late_us,
                "late_tick_permille": p.late_permille,
            })),
        },
        "registrations": s.registrations.count(),
        // Per trunk and centre: calls in progress, the caps, what was
        // admitted and refused at them (issue 14 §5).
        "caps": s.caps.figures(),
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
