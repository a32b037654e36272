//! The ACD's live figures and callbacks (ACD issue §6, §7; issue 14 §1:
//! no endpoint answers without credentials, every one tenant-scoped):
//!
//! * `GET /api/v1/acd/stats` (supervisors, admins): per group and agent
//!   figures and the missed-call list, only the caller's own centre's
//!   groups, agents and missed callers (a global admin sees all, with the
//!   switch-wide service levels);
//! * `POST /api/v1/acd/callbacks` `{"group", "number", "priority"?}`
//!   (supervisors of the group's centre, and the group's own agents):
//!   queues a callback as if the caller arrived now; when its turn comes an
//!   agent is rung first, then the citizen is dialled through the centre's
//!   own trunk. The number must be a phone number; the request is audited.
//!
//! Both were open on the HTTP port before (anyone who reached it could
//! make the switch dial any number: toll fraud).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{cti, phone_number, Cti};
use crate::api::session::json_body;
use crate::api::{audit, ApiError, ApiResult, ApiState, Caller};
use crate::auth::{Principal, Role};

/// The ACD of this process, or 404 when no skill group is configured.
fn queues(cti: &Cti) -> ApiResult<&crate::call::queue::Queues> {
    cti.calls.queues.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_groups",
            "no skill groups are configured",
        )
    })
}

/// Keep the entries of `v[key]` whose tenant (found by `tenant_of` from
/// the entry) `p` may see.
fn keep_visible(
    v: &mut Value,
    key: &str,
    p: &Principal,
    tenant_of: impl Fn(&Value) -> Option<String>,
) {
    if let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) {
        items.retain(|item| tenant_of(item).is_some_and(|t| p.may_access_tenant(&t)));
    }
}

/// `GET /api/v1/acd/stats`.
pub async fn stats(State(s): State<ApiState>, Caller(p): Caller) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let cti = cti(&s)?;
    let mut value = queues(cti)?.stats().await.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "acd_unavailable",
            "the ACD is not running",
        )
    })?;
    if !p.is_global_admin() {
        let group_tenant = |item: &Value| item["group"].as_str().and_then(|g| cti.group_tenant(g));
        if let Some(stats) = value.get_mut("stats") {
            keep_visible(stats, "groups", &p, group_tenant);
            keep_visible(stats, "agents", &p, |item| {
                item["agent"]
                    .as_str()
                    .and_then(|a| cti.agent(a))
                    .map(|a| a.tenant)
            });
            // The service levels add up every centre's calls.
            if let Some(o) = stats.as_object_mut() {
                o.remove("sl20");
                o.remove("sl30");
            }
        }
        keep_visible(&mut value, "missed_calls", &p, group_tenant);
    }
    Ok(Json(value))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackRequest {
    group: String,
    number: String,
    #[serde(default)]
    priority: u8,
}

/// `POST /api/v1/acd/callbacks`.
pub async fn schedule_callback(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    p.require(Role::Agent)?;
    let cti = cti(&s)?;
    let queues = queues(cti)?;
    let req: CallbackRequest = json_body(&body)?;
    if !phone_number(&req.number) {
        return Err(ApiError::bad_request(
            "bad_number",
            format!("{:?} is not a phone number", req.number),
        ));
    }
    let tenant = cti.group_of_principal(&p, &req.group)?;
    if p.role < Role::Supervisor {
        // An agent schedules callbacks only in a group they answer for.
        let member = p.agent_id.as_deref().is_some_and(|a| {
            cti.roster
                .load()
                .agent(a)
                .is_some_and(|cfg| cfg.skills.contains_key(&req.group))
        });
        if !member {
            return Err(crate::auth::AuthError::Forbidden(format!(
                "not an agent of group {:?}",
                req.group
            ))
            .into());
        }
    }
    let call = queues.schedule_callback(&req.group, &req.number, req.priority);
    audit(
        &s,
        &p,
        &tenant,
        "callback.schedule",
        &req.group,
        json!({ "number": req.number, "priority": req.priority, "callback": call.0 }),
    );
    Ok((StatusCode::ACCEPTED, Json(json!({ "callback": call.0 }))))
}
