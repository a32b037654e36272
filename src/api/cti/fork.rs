//! Starting and stopping the live audio fork of an agent's current call
//! (issue 18 §1 "per API call"): `POST /api/v1/agent/call/fork/start` and
//! `…/stop`, `{"agent_id"?}`. The receiver is the tenant's
//! (`[[tenant]] audio_fork`): the API never names where a call's audio
//! goes. Every start and stop is audited (`call.fork_start`,
//! `call.fork_stop`): a call's audio leaves hotline.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{agent_request, conflict, cti, target};
use crate::api::{audit, ApiResult, ApiState, Caller};
use crate::auth::Principal;

/// `POST /api/v1/agent/call/fork/start`.
pub async fn fork_start(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    switch(&s, &p, &body, true)
}

/// `POST /api/v1/agent/call/fork/stop`.
pub async fn fork_stop(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    switch(&s, &p, &body, false)
}

fn switch(s: &ApiState, p: &Principal, body: &[u8], on: bool) -> ApiResult<Json<Value>> {
    let req = agent_request(body)?;
    let cti = cti(s)?;
    let (agent, ref info, _) = target(cti, p, req.agent_id.as_deref())?;
    if !cti.calls.live.contains_key(&info.device) {
        return Err(conflict("no_call", "the agent is not on a call"));
    }
    let was = cti
        .calls
        .recordings
        .as_ref()
        .and_then(|r| r.live_forks.switch(&info.device, on))
        .ok_or_else(|| {
            conflict(
                "no_audio_fork",
                format!(
                    "the call of agent {agent} has no audio fork (tenant {:?} has no audio_fork)",
                    info.tenant
                ),
            )
        })?;
    audit(
        s,
        p,
        &info.tenant,
        if on {
            "call.fork_start"
        } else {
            "call.fork_stop"
        },
        &agent,
        json!({ "was_streaming": was }),
    );
    Ok(Json(
        json!({ "agent_id": agent, "streaming": on, "was_streaming": was }),
    ))
}
