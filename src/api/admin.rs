//! Admin endpoints (events issue §3 "dead letters … with an admin API to
//! list and replay them", §5 storage usage per tenant; CTI issue §2 the
//! audit log).
//!
//! - `GET /api/v1/admin/dead-letters?sink=webhook:tickets&limit=100`
//!   (admin): events a sink gave up on, with the last error;
//! - `POST /api/v1/admin/dead-letters/replay {"sink", "id"}` or
//!   `{"sink", "all": true}` (admin, audited): back to delivery;
//! - `GET /api/v1/admin/audit?limit&before` (supervisor: own tenant;
//!   admin);
//! - `GET /api/v1/admin/users` (admin): users of the tenant(s);
//! - `GET /api/v1/admin/storage` (admin): recordings and voicemail bytes
//!   per tenant.
//!
//! Dead letters belong to the whole switch (a sink serves every tenant),
//! so only a global admin (tenant `*`) may see or replay them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiQuery;
use super::session::json_body;
use super::{ApiError, ApiResult, ApiState, Caller};
use crate::auth::{Principal, Role};

fn global_admin(p: &Principal) -> ApiResult<()> {
    p.require(Role::Admin)?;
    if !p.is_global_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "dead letters span every tenant: global admins only",
        ));
    }
    Ok(())
}

/// Query of the dead-letter list.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterParams {
    sink: String,
    limit: Option<usize>,
}

/// `GET /api/v1/admin/dead-letters`.
pub async fn dead_letters(
    State(s): State<ApiState>,
    Caller(p): Caller,
    ApiQuery(q): ApiQuery<DeadLetterParams>,
) -> ApiResult<Json<Value>> {
    global_admin(&p)?;
    let ob = s.outbox.clone();
    let limit = q.limit.unwrap_or(100).min(10_000);
    let sink = q.sink.clone();
    let list = tokio::task::spawn_blocking(move || {
        let known = ob
            .stats(crate::util::unix_now_ms())?
            .iter()
            .any(|s| s.sink == sink);
        if !known {
            return Err(crate::events::outbox::OutboxError::UnknownSink {
                db: ob.database().to_string(),
                sink,
            });
        }
        ob.dead_letters(&sink, limit)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        crate::events::outbox::OutboxError::UnknownSink { .. } => {
            ApiError::not_found(format!("no sink {:?}", q.sink))
        }
        other => ApiError::internal(other),
    })?;
    let items: Vec<Value> = list
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "call_id": d.call_id,
                "type": d.kind,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "dead_at": crate::events::time::format_rfc3339(d.dead_at_ms).ok(),
                "event": serde_json::from_str::<Value>(&d.body_json).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(json!({ "sink": q.sink, "dead_letters": items })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    sink: String,
    id: Option<String>,
    #[serde(default)]
    all: bool,
}

/// `POST /api/v1/admin/dead-letters/replay`.
pub async fn replay(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    global_admin(&p)?;
    let req: ReplayRequest = json_body(&body)?;
    let ob = s.outbox.clone();
    let (sink, id, all) = (req.sink.clone(), req.id.clone(), req.all);
    let replayed = tokio::task::spawn_blocking(move || match (id, all) {
        (Some(id), false) => ob.replay(&sink, &id).map(usize::from),
        (None, true) => ob.replay_all(&sink),
        _ => Ok(usize::MAX),
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        crate::events::outbox::OutboxError::UnknownSink { .. } => {
            ApiError::not_found(format!("no sink {:?}", req.sink))
        }
        other => ApiError::internal(other),
    })?;
    if replayed == usize::MAX {
        return Err(ApiError::bad_request(
            "bad_request",
            "give either \"id\" or \"all\": true",
        ));
    }
    if replayed == 0 && req.id.is_some() {
        return Err(ApiError::not_found("no such dead letter"));
    }
    let target = format!("{}:{}", req.sink, req.id.as_deref().unwrap_or("*"));
    let detail = json!({ "replayed": replayed });
    super::audit(&s, &p, &p.tenant, "dead_letters.replay", &target, detail);
    Ok(Json(json!({ "replayed": replayed })))
}

/// Query of the audit log.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    limit: Option<usize>,
    before: Option<i64>,
}

/// `GET /api/v1/admin/audit`: newest first; `before` pages back by id.
pub async fn audit_log(
    State(s): State<ApiState>,
    Caller(p): Caller,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let rows = s
        .auth
        .audit_log(p.tenant_filter(), q.limit.unwrap_or(100), q.before)?;
    Ok(Json(json!({ "audit": rows })))
}

/// `GET /api/v1/admin/users`.
pub async fn users(State(s): State<ApiState>, Caller(p): Caller) -> ApiResult<Json<Value>> {
    p.require(Role::Admin)?;
    let users = s.auth.list_users(p.tenant_filter())?;
    Ok(Json(json!({ "users": users })))
}

/// `GET /api/v1/admin/storage`: bytes of recordings and voicemails per
/// tenant (the first directory level below each root).
pub async fn storage(State(s): State<ApiState>, Caller(p): Caller) -> ApiResult<Json<Value>> {
    p.require(Role::Admin)?;
    let roots = (s.recordings_dir.clone(), s.voicemail_dir.clone());
    let usage = tokio::task::spawn_blocking(move || {
        let rec = roots
            .0
            .as_deref()
            .map(crate::records::retention::usage_by_tenant)
            .unwrap_or_default();
        let vm = crate::records::retention::usage_by_tenant(&roots.1);
        (rec, vm)
    })
    .await
    .map_err(ApiError::internal)?;
    let mut tenants = serde_json::Map::new();
    let names: std::collections::BTreeSet<&String> = usage.0.keys().chain(usage.1.keys()).collect();
    for t in names {
        if !p.may_access_tenant(t) {
            continue;
        }
        let r = usage.0.get(t).copied().unwrap_or_default();
        let v = usage.1.get(t).copied().unwrap_or_default();
        tenants.insert(
            t.clone(),
            json!({
                "recordings": { "files": r.files, "bytes": r.bytes },
                "voicemails": { "files": v.files, "bytes": v.bytes },
            }),
        );
    }
    Ok(Json(json!({ "tenants": tenants })))
}
