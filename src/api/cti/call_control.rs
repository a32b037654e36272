//! Acting on an agent's live call (CTI issue §3, §4): hang up (a
//! supervisor: force-release), hold and resume, three-way calls (add and
//! drop a party), outbound calls (外呼) with the tenant's caller ID, and
//! handing the caller on to the flow's survey.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{
    agent_request, ask, conflict, cti, live_call, party_target, phone_number, target, PartyRequest,
};
use crate::acd::Input;
use crate::api::session::json_body;
use crate::api::{audit, ApiError, ApiResult, ApiState, Caller};
use crate::auth::Principal;
use crate::call::SessionCommand;

/// `POST /api/v1/agent/call/hangup`.
pub async fn hangup(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let req = agent_request(&body)?;
    let cti = cti(&s)?;
    let (agent, ref info, forced) = target(cti, &p, req.agent_id.as_deref())?;
    live_call(cti, info)?
        .send(SessionCommand::Hangup { by: p.user.clone() })
        .map_err(|_| conflict("no_call", "the call just ended"))?;
    if forced {
        audit(
            &s,
            &p,
            &info.tenant,
            "call.force_release",
            &agent,
            Value::Null,
        );
    }
    Ok(Json(json!({ "agent_id": agent, "released": true })))
}

async fn hold_or_resume(
    s: &ApiState,
    p: &Principal,
    body: &[u8],
    on: bool,
) -> ApiResult<Json<Value>> {
    let req = agent_request(body)?;
    let cti = cti(s)?;
    let (agent, ref info, forced) = target(cti, p, req.agent_id.as_deref())?;
    ask(
        cti,
        info,
        |reply| SessionCommand::Hold { on, reply },
        |reason| conflict("wrong_state", reason),
    )
    .await?;
    if let Some(q) = &cti.calls.queues {
        let input = if on {
            Input::Hold {
                agent: agent.clone(),
            }
        } else {
            Input::Resume {
                agent: agent.clone(),
            }
        };
        // A directly dialled agent is not in the ACD's call: nothing to mark.
        let _ = q.try_input(input).await;
    }
    if forced {
        audit(
            s,
            p,
            &info.tenant,
            if on {
                "call.force_hold"
            } else {
                "call.force_resume"
            },
            &agent,
            Value::Null,
        );
    }
    Ok(Json(json!({ "agent_id": agent, "on_hold": on })))
}

/// `POST /api/v1/agent/call/hold`.
pub async fn hold(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    hold_or_resume(&s, &p, &body, true).await
}

/// `POST /api/v1/agent/call/resume`.
pub async fn resume(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    hold_or_resume(&s, &p, &body, false).await
}

/// `POST /api/v1/agent/call/conference/add`: a three-way call (三方通话)
/// with another agent or an outside number (202 once it rings; it joins
/// on answer, `conference.changed` on the call's events).
pub async fn add_party(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: PartyRequest = json_body(&body)?;
    if req.to_group.is_some() {
        return Err(ApiError::bad_request(
            "bad_request",
            "a three-way call takes to_agent or to_number (consult a group instead)",
        ));
    }
    let cti = cti(&s)?;
    let (agent, ref info, forced) = target(cti, &p, req.agent_id.as_deref())?;
    let party = party_target(cti, info, req.to_agent.as_deref(), req.to_number.as_deref())?;
    let label = party.label.clone();
    ask(
        cti,
        info,
        |reply| SessionCommand::AddParty {
            target: party,
            reply,
        },
        |reason| conflict("cannot_add", reason),
    )
    .await?;
    if forced {
        audit(
            &s,
            &p,
            &info.tenant,
            "call.force_conference",
            &agent,
            json!({ "party": label }),
        );
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "agent_id": agent, "ringing": label })),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DropPartyRequest {
    agent_id: Option<String>,
    party: String,
}

/// `POST /api/v1/agent/call/conference/drop`: drop a third party.
pub async fn drop_party(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let req: DropPartyRequest = json_body(&body)?;
    let cti = cti(&s)?;
    let (agent, ref info, _) = target(cti, &p, req.agent_id.as_deref())?;
    ask(
        cti,
        info,
        |reply| SessionCommand::DropParty {
            label: req.party.clone(),
            reply,
        },
        ApiError::not_found,
    )
    .await?;
    Ok(Json(json!({ "agent_id": agent, "dropped": req.party })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DialRequest {
    agent_id: Option<String>,
    number: String,
}

/// `POST /api/v1/agent/call/dial`: an outbound call (外呼): the agent's
/// phone rings first, then the number is dialled with the tenant's caller
/// ID (202 with the call id; the call's events follow on the WebSocket).
pub async fn dial(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: DialRequest = json_body(&body)?;
    if !phone_number(&req.number) {
        return Err(ApiError::bad_request(
            "bad_request",
            format!("{:?} is not a phone number", req.number),
        ));
    }
    let cti = cti(&s)?;
    let (agent, ref info, forced) = target(cti, &p, req.agent_id.as_deref())?;
    if cti.calls.live.contains_key(&info.device) {
        return Err(conflict("busy", "the agent is on a call"));
    }
    let tenant = cti.tenant(&info.tenant);
    let trunk = tenant
        .as_ref()
        .and_then(|t| t.outbound_trunk.clone())
        .ok_or_else(|| conflict("no_trunk", "this tenant has no outbound trunk"))?;
    let contacts = cti.calls.directory.contacts(&info.device);
    if contacts.is_empty() {
        return Err(conflict(
            "not_registered",
            "the agent's phone is not registered",
        ));
    }
    let order = crate::call::outbound::OutboundOrder {
        agent: agent.clone(),
        contacts,
        device: info.device.clone(),
        number: req.number.clone(),
        tenant: info.tenant.clone(),
        caller_id: tenant
            .map(|t| t.outbound_caller_id.clone())
            .unwrap_or_default(),
        trunk,
    };
    let call_id = crate::call::outbound::spawn(cti.calls.clone(), order);
    if forced {
        audit(
            &s,
            &p,
            &info.tenant,
            "call.force_dial",
            &agent,
            json!({ "number": req.number }),
        );
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "agent_id": agent, "call_id": call_id })),
    ))
}

/// `POST /api/v1/agent/call/survey`: the agent leaves and the caller goes
/// on to the flow's survey (满意度评价); 409 `no_survey` for calls that
/// did not come through an IVR flow.
pub async fn to_survey(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let req = agent_request(&body)?;
    let cti = cti(&s)?;
    let (agent, ref info, _) = target(cti, &p, req.agent_id.as_deref())?;
    ask(
        cti,
        info,
        |reply| SessionCommand::ToSurvey { reply },
        |reason| conflict("no_survey", reason),
    )
    .await?;
    Ok(Json(json!({ "agent_id": agent, "to_survey": true })))
}
