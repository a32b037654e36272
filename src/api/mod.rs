//! The HTTP API under `/api/v1` (CTI issue §1, §2; events issue §4): JSON in
//! and out, bearer-token authentication, every endpoint checked for role
//! and tenant (REQUIREMENTS §9), supervisor and admin actions audited.
//!
//! Rooms:
//! - [`session`]: login, logout, who am I; the [`Caller`] extractor;
//! - [`records`]: call records, a call's events, missed calls, voicemails,
//!   recordings (with HTTP range requests), KPI reports (JSON/CSV/XLSX);
//! - [`admin`]: dead letters (list, replay), the audit log, users, storage;
//! - [`openapi`]: the OpenAPI document at `/api/v1/openapi.json`;
//! - [`cti`]: agent and supervisor operations, the wall-board;
//! - [`forecast`]: the agents each skill group needs in the next half hour
//!   (the `forecast` core on the records and the ACD), shared with `/metrics`;
//! - [`live`]: the WebSocket event stream with screen pops;
//! - [`web`]: the reference pages under `/web/`;
//! - [`blocklist`]: block-list CRUD (persisted);
//! - [`roster`]: agents and skill groups CRUD (persisted), config reload;
//! - [`error`]: JSON errors with stable codes and Chinese text ([`zh`]);
//! - [`json_errors`]: the same JSON for answers made before a handler runs
//!   (413 body too large, 405 wrong method);
//! - [`listener`]: the HTTP listener around all of it: `/healthz`, the
//!   JSON 404, the body limit;
//! - [`cors`]: cross-origin calls from the allowed origins only;
//! - [`handles`]: what the API needs from the switch, as traits the
//!   composition root (`app`) implements (the API never imports `switch`).
//!
//! Tenant isolation: a caller sees only its tenant (a global admin, tenant
//! `*`, sees all); an id from another tenant answers 404, as an unknown
//! one does, so other centres' ids cannot be probed.

pub mod admin;
pub mod blocklist;
pub mod cors;
pub mod cti;
pub mod error;
pub mod flows;
pub mod forecast;
pub mod handles;
pub mod json_errors;
pub mod listener;
pub mod live;
mod live_phone;
pub mod metrics;
pub mod openapi;
pub mod peer_download;
pub mod records;
pub mod roster;
pub mod sealed_download;
pub mod session;
pub mod tls_listener;
pub mod web;
pub mod zh;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

use crate::auth::AuthStore;
use crate::events::outbox::Outbox;
use crate::records::store::RecordStore;

pub use error::{ApiError, ApiResult};
pub use session::Caller;

/// Append a supervisor's or admin's action to the audit log, filed under
/// `tenant` (the centre acted on, so its admins see a global admin's
/// actions too). A failed write is logged, never fails the request.
pub(crate) fn audit(
    s: &ApiState,
    p: &crate::auth::Principal,
    tenant: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) {
    let now = crate::util::unix_now_ms();
    if let Err(e) = s.auth.audit_in(now, p, tenant, action, target, &detail) {
        tracing::warn!(error = %e, action, target, "audit log write failed");
    }
}

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Users, sessions, audit log.
    pub auth: Arc<AuthStore>,
    /// Stored call records.
    pub records: Arc<RecordStore>,
    /// The event outbox (dead letters).
    pub outbox: Arc<Outbox>,
    /// Recordings root (None: recording off).
    pub recordings_dir: Option<PathBuf>,
    /// Voicemail root.
    pub voicemail_dir: PathBuf,
    /// The key recordings and voicemails are sealed with (issue 14 §6):
    /// downloads of sealed files are decrypted with it.
    pub sealing_key: Option<crate::media::at_rest::SealingKey>,
    /// Local time offset for reports and dates in queries.
    pub utc_offset_minutes: i32,
    /// How long a login token lives.
    pub token_ttl: Duration,
    /// Logins hashing at once (each argon2 verification takes ~19 MiB).
    pub login_slots: Arc<tokio::sync::Semaphore>,
    /// Agent and supervisor operations (None: no call handling, e.g. a
    /// records-only process).
    pub cti: Option<Arc<cti::Cti>>,
    /// Live events (the WebSocket).
    pub records_live: Option<Arc<crate::call::record::CallRecords>>,
    /// Block list and IVR administration.
    pub blocks: Option<Arc<blocklist::BlockAdmin>>,
    /// Agents, skill groups and configuration reload.
    pub roster: Option<Arc<dyn handles::RosterAdmin>>,
    /// IVR flow history: versions, diffs, rollback (issue 18 §4).
    pub flows: Option<Arc<dyn handles::FlowHistory>>,
    /// The store, when several nodes share it: a recording made on
    /// another node is fetched from it (`peer_download`).
    pub cluster: Option<crate::store::Store>,
}

/// The `/api/v1` routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/login", post(session::login))
        .route("/api/v1/logout", post(session::logout))
        .route("/api/v1/me", get(session::me))
        .route("/api/v1/calls", get(records::calls))
        .route("/api/v1/calls/{id}", get(records::call))
        .route("/api/v1/reports", get(records::report))
        .route("/api/v1/recordings/{*id}", get(records::recording))
        .route("/api/v1/voicemails/{*path}", get(records::voicemail))
        .route("/api/v1/admin/dead-letters", get(admin::dead_letters))
        .route("/api/v1/admin/dead-letters/replay", post(admin::replay))
        .route("/api/v1/admin/audit", get(admin::audit_log))
        .route("/api/v1/admin/users", get(admin::users))
        .route("/api/v1/admin/storage", get(admin::storage))
        .route("/api/v1/agent/state", post(cti::set_state))
        .route("/api/v1/agent/acw/complete", post(cti::complete_acw))
        .route("/api/v1/agent/call/hangup", post(cti::hangup))
        .route("/api/v1/agent/call/hold", post(cti::hold))
        .route("/api/v1/agent/call/resume", post(cti::resume))
        .route("/api/v1/agent/call/fork/start", post(cti::fork_start))
        .route("/api/v1/agent/call/fork/stop", post(cti::fork_stop))
        .route("/api/v1/supervise", post(cti::supervise))
        .route("/api/v1/supervise/take-over", post(cti::take_over))
        .route("/api/v1/wallboard", get(cti::wallboard))
        .route("/api/v1/forecast", get(forecast::forecast_endpoint))
        .route("/api/v1/acd/stats", get(cti::acd_stats))
        .route("/api/v1/acd/callbacks", post(cti::schedule_callback))
        .route("/api/v1/campaigns", post(cti::campaign_create))
        .route("/api/v1/campaigns/{id}", get(cti::campaign_get))
        .route(
            "/api/v1/campaigns/{id}/items",
            post(cti::campaign_add_items),
        )
        .route("/api/v1/campaigns/{id}/cancel", post(cti::campaign_cancel))
        .route("/api/v1/agent/call/transfer", post(cti::transfer))
        .route("/api/v1/agent/call/dial", post(cti::dial))
        .route("/api/v1/agent/call/survey", post(cti::to_survey))
        .route("/api/v1/agent/call/consult", post(cti::consult))
        .route(
            "/api/v1/agent/call/consult/complete",
            post(cti::consult_complete),
        )
        .route(
            "/api/v1/agent/call/consult/cancel",
            post(cti::consult_cancel),
        )
        .route("/api/v1/agent/call/conference/add", post(cti::add_party))
        .route("/api/v1/agent/call/conference/drop", post(cti::drop_party))
        .route("/api/v1/agent/transfer-targets", get(cti::transfer_targets))
        .route("/api/v1/messages", post(cti::message))
        .route("/api/v1/calls/active", get(cti::active_calls))
        .route("/api/v1/admin/registrations", get(cti::registrations))
        .route("/api/v1/events", get(live::events))
        .route(
            "/api/v1/admin/blacklist",
            get(blocklist::list).post(blocklist::add),
        )
        .route(
            "/api/v1/admin/blacklist/{number}",
            axum::routing::delete(blocklist::remove),
        )
        .route("/api/v1/admin/reload", post(roster::reload))
        .route("/api/v1/admin/flows/{name}/history", get(flows::versions))
        .route("/api/v1/admin/flows/{name}/diff", get(flows::diff))
        .route("/api/v1/admin/flows/{name}/rollback", post(flows::rollback))
        .route("/api/v1/admin/agents", get(roster::agents))
        .route(
            "/api/v1/admin/agents/{id}",
            get(roster::agent)
                .put(roster::put_agent)
                .delete(roster::delete_agent),
        )
        .route("/api/v1/admin/groups", get(roster::groups))
        .route(
            "/api/v1/admin/groups/{id}",
            get(roster::group)
                .put(roster::put_group)
                .delete(roster::delete_group),
        )
        .with_state(state)
}
