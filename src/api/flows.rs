//! IVR flow history through the admin API (issue 18 §4 "Flow changes you
//! can review": "the same through the admin API, audited, tenant-scoped").
//!
//! | endpoint | role | what |
//! |---|---|---|
//! | `GET /api/v1/admin/flows/{name}/history` | admin | every stored version: hash, tenant, who and when first accepted and last live, which is live |
//! | `GET /api/v1/admin/flows/{name}/diff?from=&to=` | admin | a unified diff of two versions (defaults: the version live before the live one, and the live one) |
//! | `POST /api/v1/admin/flows/{name}/rollback` | admin | `{"version"}`: the stored version written back to the flow's file (validated first, refused if invalid), taken live by the next reload check; audited |
//!
//! A flow belongs to its tenant (`tenant` in the flow file): a tenant's
//! admin sees and rolls back only its own flows (another tenant's flow is
//! answered 404, as if unknown); a global admin all of them.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiQuery;
use super::handles::{FlowHistory, FlowHistoryFailure};
use super::session::json_body;
use super::{audit, ApiError, ApiResult, ApiState, Caller};
use crate::auth::{Principal, Role};
use crate::store::FlowVersion;

fn history(s: &ApiState) -> ApiResult<Arc<dyn FlowHistory>> {
    s.flows.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no IVR in this process",
        )
    })
}

fn refused(f: FlowHistoryFailure) -> ApiError {
    match f {
        FlowHistoryFailure::UnknownFlow(m) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_flow", m)
        }
        FlowHistoryFailure::UnknownVersion(m) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_version", m)
        }
        FlowHistoryFailure::Ambiguous(m) => ApiError::bad_request("ambiguous_version", m),
        FlowHistoryFailure::NothingToCompare(m) => {
            ApiError::new(StatusCode::CONFLICT, "nothing_to_compare", m)
        }
        FlowHistoryFailure::AlreadyLive(m) => {
            ApiError::new(StatusCode::CONFLICT, "already_live", m)
        }
        FlowHistoryFailure::Invalid(problems) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_flows",
            format!("refused, nothing changed:\n{}", problems.join("\n")),
        ),
        FlowHistoryFailure::Failed(m) => ApiError::internal(m),
    }
}

/// Run a blocking history call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FlowHistoryFailure> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)
}

/// The flow's versions, if the caller may see the flow: its tenant is the
/// live version's.
async fn visible(
    h: Arc<dyn FlowHistory>,
    p: &Principal,
    name: &str,
) -> ApiResult<Vec<FlowVersion>> {
    let n = name.to_string();
    let versions = blocking(move || h.versions(&n)).await?;
    let tenant = versions
        .iter()
        .max_by_key(|v| v.live_seq)
        .map(|v| v.tenant.clone())
        .unwrap_or_default();
    match p.tenant_filter() {
        Some(own) if own != tenant => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_flow",
            format!("no flow \"{name}\" in the flow history"),
        )),
        _ => Ok(versions),
    }
}

fn when(ms: i64) -> Value {
    crate::events::time::format_rfc3339(ms).map_or(Value::Null, Value::String)
}

/// `GET /api/v1/admin/flows/{name}/history`.
pub async fn versions(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    p.require(Role::Admin)?;
    let all = visible(history(&s)?, &p, &name).await?;
    let live = all
        .iter()
        .max_by_key(|v| v.live_seq)
        .map(|v| v.version.clone());
    let list: Vec<Value> = all
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "tenant": v.tenant,
                "saved_at": when(v.saved_at),
                "saved_by": v.saved_by,
                "live_at": when(v.live_at),
                "live_by": v.live_by,
                "live": live.as_deref() == Some(v.version.as_str()),
            })
        })
        .collect();
    Ok(Json(
        json!({ "flow": name, "live": live, "versions": list }),
    ))
}

/// Query of the diff endpoint.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/admin/flows/{name}/diff`.
pub async fn diff(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(name): UrlPath<String>,
    ApiQuery(q): ApiQuery<DiffParams>,
) -> ApiResult<Json<Value>> {
    p.require(Role::Admin)?;
    let h = history(&s)?;
    visible(h.clone(), &p, &name).await?;
    let n = name.clone();
    let (from, to, text) = blocking(move || h.diff(&n, q.from.as_deref(), q.to.as_deref())).await?;
    Ok(Json(
        json!({ "flow": name, "from": from, "to": to, "diff": text }),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    version: String,
}

/// `POST /api/v1/admin/flows/{name}/rollback`.
pub async fn rollback(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(name): UrlPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    p.require(Role::Admin)?;
    let req: RollbackRequest = json_body(&body)?;
    let h = history(&s)?;
    let all = visible(h.clone(), &p, &name).await?;
    let before = all
        .iter()
        .max_by_key(|v| v.live_seq)
        .map(|v| v.version.clone());
    let tenant = all
        .iter()
        .max_by_key(|v| v.live_seq)
        .map(|v| v.tenant.clone())
        .unwrap_or_default();
    let (n, wanted, by) = (name.clone(), req.version.clone(), p.user.clone());
    let (v, file) = blocking(move || h.rollback(&n, &wanted, &by)).await?;
    audit(
        &s,
        &p,
        &tenant,
        "flow.rollback",
        &name,
        json!({ "version": v.version, "from": before, "file": file }),
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "flow": name,
            "version": v.version,
            "from": before,
            "file": file,
            "note": "written to the flow's file; the IVR takes it live at its next reload check",
        })),
    ))
}
