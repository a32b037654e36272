//! Transfers (CTI issue §4): blind (盲转) to an agent, a skill group's
//! queue or an outside number; attended (咨询转: consult, complete,
//! cancel) with the caller on hold; the tenant's one-click targets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{agent_request, ask, conflict, cti, party_target, phone_number, target, PartyRequest};
use crate::api::session::json_body;
use crate::api::{audit, ApiError, ApiResult, ApiState, Caller};
use crate::auth::Principal;
use crate::call::SessionCommand;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferRequest {
    agent_id: Option<String>,
    to_agent: Option<String>,
    to_group: Option<String>,
    to_number: Option<String>,
}

/// `POST /api/v1/agent/call/transfer`: the agent leaves, the caller is put
/// through to another agent, a skill group's queue or an outside number
/// (202: the transfer is under way; its outcome shows in the call's events).
pub async fn transfer(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    use crate::ivr::TransferTarget;
    let req: TransferRequest = json_body(&body)?;
    let cti = cti(&s)?;
    let (agent, ref info, forced) = target(cti, &p, req.agent_id.as_deref())?;
    let to = match (&req.to_agent, &req.to_group, &req.to_number) {
        (Some(a), None, None) => {
            let other = cti
                .agent(a)
                .filter(|o| o.tenant == info.tenant)
                .ok_or_else(|| ApiError::not_found(format!("no agent {a:?}")))?;
            TransferTarget::Agent(other.device.clone())
        }
        (None, Some(g), None) => {
            if cti.group_tenant(g).as_ref() != Some(&info.tenant) {
                return Err(ApiError::not_found(format!("no group {g:?}")));
            }
            TransferTarget::Group(g.clone())
        }
        (None, None, Some(n)) if phone_number(n) => {
            let trunk = cti
                .quick_transfers()
                .into_iter()
                .find(|q| q.number == *n)
                .and_then(|q| q.trunk.clone());
            TransferTarget::Number {
                number: n.clone(),
                trunk,
            }
        }
        (None, None, Some(n)) => {
            return Err(ApiError::bad_request(
                "bad_request",
                format!("{n:?} is not a phone number"),
            ))
        }
        _ => {
            return Err(ApiError::bad_request(
                "bad_request",
                "give exactly one of to_agent, to_group, to_number",
            ))
        }
    };
    let by = p.user.clone();
    ask(
        cti,
        info,
        |reply| SessionCommand::Transfer {
            target: to,
            by,
            reply,
        },
        |reason| conflict("transfer_unavailable", reason),
    )
    .await?;
    if forced {
        audit(
            &s,
            &p,
            &info.tenant,
            "call.force_transfer",
            &agent,
            json!({
                "to_agent": req.to_agent, "to_group": req.to_group, "to_number": req.to_number,
            }),
        );
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "agent_id": agent, "transferring": true })),
    ))
}

/// `GET /api/v1/agent/transfer-targets`.
pub async fn transfer_targets(
    State(s): State<ApiState>,
    Caller(p): Caller,
) -> ApiResult<Json<Value>> {
    let cti = cti(&s)?;
    let targets: Vec<crate::config::api::QuickTransfer> = cti
        .quick_transfers()
        .into_iter()
        .filter(|q| q.tenant.as_deref().is_none_or(|t| p.may_access_tenant(t)))
        .collect();
    Ok(Json(json!({ "targets": targets })))
}

/// `POST /api/v1/agent/call/consult`: attended transfer, step 1 (咨询转):
/// the caller on hold, the agent talks with another agent, a number, or
/// the agent a skill group's ACD queue picks (202 once it rings or
/// queues; a group of another tenant is 404, a full queue 409).
pub async fn consult(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: PartyRequest = json_body(&body)?;
    let cti = cti(&s)?;
    let (agent, ref info, _) = target(cti, &p, req.agent_id.as_deref())?;
    if let Some(g) = req.to_group.clone() {
        if req.to_agent.is_some() || req.to_number.is_some() {
            return Err(ApiError::bad_request(
                "bad_request",
                "give exactly one of to_agent, to_group, to_number",
            ));
        }
        if cti.group_tenant(&g).as_ref() != Some(&info.tenant) {
            return Err(ApiError::not_found(format!("no group {g:?}")));
        }
        ask(
            cti,
            info,
            |reply| SessionCommand::ConsultGroup {
                group: g.clone(),
                reply,
            },
            |reason| conflict("cannot_consult", reason),
        )
        .await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "agent_id": agent, "consulting": g, "queued": true })),
        ));
    }
    let party = party_target(cti, info, req.to_agent.as_deref(), req.to_number.as_deref())?;
    let label = party.label.clone();
    ask(
        cti,
        info,
        |reply| SessionCommand::Consult {
            target: party,
            reply,
        },
        |reason| conflict("wrong_state", reason),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "agent_id": agent, "consulting": label })),
    ))
}

async fn consult_step(
    s: &ApiState,
    p: &Principal,
    body: &[u8],
    complete: bool,
) -> ApiResult<Json<Value>> {
    let req = agent_request(body)?;
    let cti = cti(s)?;
    let (agent, ref info, _) = target(cti, p, req.agent_id.as_deref())?;
    let command = |reply| {
        if complete {
            SessionCommand::CompleteConsult { reply }
        } else {
            SessionCommand::CancelConsult { reply }
        }
    };
    ask(cti, info, command, |reason| conflict("wrong_state", reason)).await?;
    Ok(Json(
        json!({ "agent_id": agent, if complete { "transferred" } else { "cancelled" }: true }),
    ))
}

/// `POST /api/v1/agent/call/consult/complete`: the consulted party takes
/// the caller; the agent leaves (after-call work starts).
pub async fn consult_complete(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    consult_step(&s, &p, &body, true).await
}

/// `POST /api/v1/agent/call/consult/cancel`: drop the consulted party;
/// the caller is back with the agent.
pub async fn consult_cancel(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    consult_step(&s, &p, &body, false).await
}
