//! An agent's state through the API (CTI issue §3; REQUIREMENTS §3): sign
//! in/out, ready/not ready with a reason, the end of after-call work; a
//! supervisor may force them (audited).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{agent_request, conflict, cti, target, Cti};
use crate::acd::Input;
use crate::api::session::json_body;
use crate::api::{audit, ApiError, ApiResult, ApiState, Caller};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRequest {
    state: String,
    reason: Option<String>,
    agent_id: Option<String>,
}

/// `POST /api/v1/agent/state`.
pub async fn set_state(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let req: StateRequest = json_body(&body)?;
    let cti = cti(&s)?;
    let (agent, ref info, forced) = target(cti, &p, req.agent_id.as_deref())?;
    let tenant = info.tenant.clone();
    let input = match req.state.as_str() {
        "logged_in" => Input::Login {
            agent: agent.clone(),
        },
        "logged_out" => Input::Logout {
            agent: agent.clone(),
        },
        "ready" => Input::Ready {
            agent: agent.clone(),
        },
        "not_ready" => Input::NotReady {
            agent: agent.clone(),
            reason: req.reason.clone().unwrap_or_default(),
        },
        other => {
            return Err(ApiError::bad_request(
                "bad_request",
                format!(
                    "unknown state {other:?}: expected logged_in, logged_out, ready or not_ready"
                ),
            ))
        }
    };
    acd(cti, input).await?;
    if forced {
        audit(
            &s,
            &p,
            &tenant,
            "agent.force_state",
            &agent,
            json!({ "state": req.state, "reason": req.reason }),
        );
    }
    Ok(Json(json!({ "agent_id": agent, "state": req.state })))
}

async fn acd(cti: &Cti, input: Input) -> ApiResult<()> {
    let queues = cti
        .calls
        .queues
        .as_ref()
        .ok_or_else(|| conflict("no_acd", "no skill groups are configured"))?;
    queues
        .try_input(input)
        .await
        .map_err(|reason| conflict("wrong_state", reason))
}

/// `POST /api/v1/agent/acw/complete`.
pub async fn complete_acw(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let req = agent_request(&body)?;
    let cti = cti(&s)?;
    let (agent, ref info, forced) = target(cti, &p, req.agent_id.as_deref())?;
    let tenant = info.tenant.clone();
    acd(
        cti,
        Input::CompleteAcw {
            agent: agent.clone(),
        },
    )
    .await?;
    if forced {
        audit(
            &s,
            &p,
            &tenant,
            "agent.force_acw_complete",
            &agent,
            Value::Null,
        );
    }
    Ok(Json(json!({ "agent_id": agent, "state": "idle" })))
}
