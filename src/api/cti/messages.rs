//! Agent-to-agent text messages, delivered on the WebSocket of
//! [`crate::api::live`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::cti;
use crate::api::session::json_body;
use crate::api::{ApiError, ApiResult, ApiState, Caller};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRequest {
    to_agent: String,
    text: String,
}

/// `POST /api/v1/messages`: a text message to an agent of the tenant.
pub async fn message(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: MessageRequest = json_body(&body)?;
    if req.text.trim().is_empty() || req.text.chars().count() > 2000 {
        return Err(ApiError::bad_request(
            "bad_request",
            "text must be 1 to 2000 characters",
        ));
    }
    let cti = cti(&s)?;
    let to = cti
        .agent(&req.to_agent)
        .filter(|a| p.may_access_tenant(&a.tenant))
        .ok_or_else(|| ApiError::not_found(format!("no agent {:?}", req.to_agent)))?;
    let msg = json!({
        "type": "message",
        "tenant": to.tenant,
        "to_agent": req.to_agent,
        "from_user": p.user,
        "from_agent": p.agent_id,
        "text": req.text,
        "at": crate::events::time::format_rfc3339(crate::util::unix_now_ms()).unwrap_or_default(),
    });
    let delivered = cti.messages.send(Arc::new(msg)).unwrap_or(0) > 0;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "sent": true, "listeners": delivered })),
    ))
}
