//! Supervisors (CTI issue §4; REQUIREMENTS §3 monitoring): supervise an
//! agent's call by ringing the supervisor's phone (listen, whisper,
//! barge), take a call over (强接), the wall-board, the calls in progress
//! and the agents' registrations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{ask, conflict, cti, target, AgentInfo};
use crate::api::session::json_body;
use crate::api::{audit, ApiError, ApiResult, ApiState, Caller};
use crate::auth::Role;
use crate::call::{SessionCommand, Supervision};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SuperviseRequest {
    agent_id: String,
    mode: String,
}

/// `POST /api/v1/supervise`: ring the supervisor's phone into an agent's
/// call (202 once it rings; the supervisor joins on answer).
pub async fn supervise(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    p.require(Role::Supervisor)?;
    let req: SuperviseRequest = json_body(&body)?;
    let mode = match req.mode.as_str() {
        "listen" => Supervision::Listen,
        "whisper" => Supervision::Whisper,
        "barge" => Supervision::Barge,
        other => {
            return Err(ApiError::bad_request(
                "bad_request",
                format!("unknown mode {other:?}: expected listen, whisper or barge"),
            ))
        }
    };
    let cti = cti(&s)?;
    let (agent, ref info, _) = target(cti, &p, Some(&req.agent_id))?;
    let own = p
        .agent_id
        .as_deref()
        .and_then(|a| cti.agent(a))
        .ok_or_else(|| conflict("no_phone", "this user has no phone (agent_id) to ring"))?;
    let contacts = cti.calls.directory.contacts(&own.device);
    if contacts.is_empty() {
        return Err(conflict(
            "no_phone",
            "the supervisor's phone is not registered",
        ));
    }
    ask(
        cti,
        info,
        |reply| SessionCommand::DialSupervisor {
            contacts,
            mode,
            supervisor: p.user.clone(),
            reply,
        },
        |reason| conflict("cannot_supervise", reason),
    )
    .await?;
    audit(
        &s,
        &p,
        &info.tenant,
        "call.supervise",
        &agent,
        json!({ "mode": req.mode }),
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "agent_id": agent, "mode": req.mode, "ringing": own.device })),
    ))
}

/// `GET /api/v1/wallboard` (supervisors): agents by state with time in
/// state, groups with waiting calls, longest wait and live service levels,
/// for the caller's tenant.
pub async fn wallboard(State(s): State<ApiState>, Caller(p): Caller) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let cti = cti(&s)?;
    let Some(q) = &cti.calls.queues else {
        return Ok(Json(json!({ "agents": [], "groups": [] })));
    };
    let stats = q.stats().await.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the ACD is not running",
        )
    })?;
    let agents: Vec<Value> = stats["stats"]["agents"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| {
            let id = a["agent"].as_str()?;
            let info = cti.agent(id)?;
            p.may_access_tenant(&info.tenant).then(|| {
                json!({
                    "agent_id": id,
                    "name": info.name,
                    "tenant": info.tenant,
                    "state": a["state"],
                    "reason": a["reason"],
                    "in_state_secs": a["in_state_for"],
                    "on_call": cti.calls.live.contains_key(&info.device),
                    "counters": a["counters"],
                })
            })
        })
        .collect();
    let groups: Vec<Value> = stats["stats"]["groups"]
        .as_array()
        .map(|g| g.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|g| {
            g["group"]
                .as_str()
                .and_then(|id| cti.group_tenant(id))
                .is_some_and(|t| p.may_access_tenant(&t))
        })
        .cloned()
        .collect();
    Ok(Json(json!({ "agents": agents, "groups": groups })))
}

/// `GET /api/v1/calls/active` (supervisors): calls in progress.
pub async fn active_calls(State(s): State<ApiState>, Caller(p): Caller) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let live = s.records_live.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no calls in this process",
        )
    })?;
    let calls: Vec<Value> = live
        .live()
        .into_iter()
        .filter(|c| p.may_access_tenant(&c.tenant))
        .map(|c| {
            let state = if c.connected_at.is_some() && c.agent_id.is_some() {
                "talking"
            } else if c.queued_at.is_some() {
                "queued"
            } else {
                "ivr"
            };
            json!({
                "call_id": c.call_id, "serial": c.serial, "tenant": c.tenant,
                "caller": c.caller, "called": c.called, "started_at": c.started_at,
                // The agent on the call now: the last one connected.
                "state": state, "group_id": c.group_id,
                "agent_id": c.agents.last().or(c.agent_id.as_ref()),
                "ivr_path": c.ivr_path,
            })
        })
        .collect();
    Ok(Json(json!({ "calls": calls })))
}

/// `GET /api/v1/admin/registrations` (admins): each agent's phone
/// registrations.
pub async fn registrations(State(s): State<ApiState>, Caller(p): Caller) -> ApiResult<Json<Value>> {
    p.require(Role::Admin)?;
    let cti = cti(&s)?;
    let agents: Vec<(String, AgentInfo)> = cti
        .agents()
        .into_iter()
        .filter(|(_, a)| p.may_access_tenant(&a.tenant))
        .collect();
    let rows: Vec<Value> = agents
        .into_iter()
        .map(|(id, a)| {
            let contacts: Vec<Value> = cti
                .calls
                .directory
                .contacts(&a.device)
                .into_iter()
                .map(|c| json!({ "uri": c.uri, "source": c.source.to_string(), "tcp": c.tcp }))
                .collect();
            json!({ "agent_id": id, "device": a.device, "tenant": a.tenant, "contacts": contacts })
        })
        .collect();
    Ok(Json(json!({ "agents": rows })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TakeOverRequest {
    agent_id: String,
}

/// `POST /api/v1/supervise/take-over` (supervisors already on the call
/// through `POST /api/v1/supervise`): the supervisor becomes the caller's
/// party and the agent leaves (强接); audited.
pub async fn take_over(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let req: TakeOverRequest = json_body(&body)?;
    let cti = cti(&s)?;
    let (agent, ref info, _) = target(cti, &p, Some(&req.agent_id))?;
    let own_id = p
        .agent_id
        .clone()
        .ok_or_else(|| conflict("no_phone", "this user has no phone (agent_id)"))?;
    let own = cti
        .agent(&own_id)
        .ok_or_else(|| conflict("no_phone", "this user's agent_id has no phone"))?;
    ask(
        cti,
        info,
        |reply| SessionCommand::TakeOver {
            supervisor: p.user.clone(),
            label: own_id.clone(),
            device: own.device.clone(),
            reply,
        },
        |reason| conflict("wrong_state", reason),
    )
    .await?;
    audit(&s, &p, &info.tenant, "call.take_over", &agent, Value::Null);
    Ok(Json(json!({ "agent_id": agent, "taken_over_by": own_id })))
}
