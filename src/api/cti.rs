//! Agent and supervisor operations (CTI issue §3, §4; REQUIREMENTS §3: sign
//! in/out, ready/not ready, after-call work, hang up, hold/resume,
//! monitoring, force an agent's state, force-release a call).
//!
//! An agent acts on themselves; a supervisor or admin may name an
//! `agent_id` of their tenant (audited as a forced action). A wrong state
//! ("ready" while talking, "hold" with no call) answers 409 `wrong_state`
//! or `no_call` with the reason; another tenant's agent answers 404.
//!
//! | endpoint | body |
//! |---|---|
//! | `POST /api/v1/agent/state` | `{"state": "logged_in"\|"logged_out"\|"ready"\|"not_ready", "reason"?, "agent_id"?}` |
//! | `POST /api/v1/agent/acw/complete` | `{"agent_id"?}` |
//! | `POST /api/v1/agent/call/hangup` | `{"agent_id"?}` (a supervisor: force-release) |
//! | `POST /api/v1/agent/call/hold`, `…/resume` | `{"agent_id"?}` |
//! | `POST /api/v1/supervise` | `{"agent_id", "mode": "listen"\|"whisper"\|"barge"}`: hotline rings the supervisor's own phone, which joins the agent's call |
//! | `POST /api/v1/supervise/take-over` | `{"agent_id"}`: the supervisor (on the call by API) takes it over, the agent leaves (强接) |
//! | `GET /api/v1/wallboard` | agents by state with time in state, queues with waiting calls, longest wait, live SLA |
//! | `POST /api/v1/agent/call/transfer` | `{"agent_id"?, "to_agent" \| "to_group" \| "to_number"}`: blind transfer (盲转) |
//! | `GET /api/v1/agent/transfer-targets` | the one-click numbers (110, 12328 …) of the tenant |
//! | `POST /api/v1/agent/call/conference/add` | `{"agent_id"?, "to_agent" \| "to_number"}`: three-way call (三方通话) |
//! | `POST /api/v1/agent/call/conference/drop` | `{"agent_id"?, "party"}` |
//! | `POST /api/v1/agent/call/consult` | `{"agent_id"?, "to_agent" \| "to_group" \| "to_number"}`: attended transfer (咨询转), the caller on hold; a group's agent is chosen by its ACD queue |
//! | `POST /api/v1/agent/call/consult/complete`, `…/cancel` | `{"agent_id"?}` |
//! | `POST /api/v1/agent/call/survey` | `{"agent_id"?}`: the agent leaves, the caller goes on to the flow's survey |
//! | `POST /api/v1/agent/call/dial` | `{"agent_id"?, "number"}`: outbound call (外呼) with the tenant's caller ID |
//! | `POST /api/v1/messages` | `{"to_agent", "text"}`: a text message to another agent of the tenant (on their WebSocket) |
//! | `GET /api/v1/calls/active` | calls in progress (supervisors) |
//! | `GET /api/v1/admin/registrations` | agents' phones and where they registered from (admins) |

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::session::json_body;
use super::{audit, ApiError, ApiResult, ApiState, Caller};
use crate::acd::Input;
use crate::auth::{Principal, Role};
use crate::call::{CallContext, SessionCommand, Supervision};

/// An agent as the API knows it.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    /// Tenant.
    pub tenant: String,
    /// The SIP user of the agent's phone.
    pub device: String,
    /// Display name.
    pub name: String,
}

/// What the CTI endpoints need from the switch.
pub struct Cti {
    /// The calls (live connected calls by the agent's phone).
    pub calls: Arc<CallContext>,
    /// The agents and skill groups in force (they change at run time).
    pub roster: Arc<crate::roster::LiveRoster>,
    /// The configuration in force (tenants, one-click transfer targets).
    pub config: Arc<crate::util::Live<crate::config::Config>>,
    /// Agent-to-agent text messages, to the WebSocket.
    pub messages: tokio::sync::broadcast::Sender<Arc<Value>>,
}

impl Cti {
    /// The agent with ACD id (job number) `id`.
    pub fn agent(&self, id: &str) -> Option<AgentInfo> {
        self.roster.load().agent(id).map(AgentInfo::of)
    }

    /// Every agent by ACD id, sorted.
    pub fn agents(&self) -> Vec<(String, AgentInfo)> {
        let mut all: Vec<(String, AgentInfo)> = self
            .roster
            .load()
            .agents()
            .iter()
            .map(|a| (crate::roster::agent_id(a).to_string(), AgentInfo::of(a)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The tenant of skill group `id`.
    pub fn group_tenant(&self, id: &str) -> Option<String> {
        self.roster.load().group(id).map(|g| g.tenant.clone())
    }

    /// The one-click transfer targets.
    pub fn quick_transfers(&self) -> Vec<crate::config::api::QuickTransfer> {
        self.config.load().quick_transfers.clone()
    }

    /// The tenant `id`.
    pub fn tenant(&self, id: &str) -> Option<crate::config::TenantConfig> {
        self.config
            .load()
            .tenants
            .iter()
            .find(|t| t.id == id)
            .cloned()
    }
}

impl AgentInfo {
    fn of(a: &crate::config::AgentConfig) -> Self {
        AgentInfo {
            tenant: a.tenant.clone(),
            device: a.user.clone(),
            name: a.name.clone().unwrap_or_else(|| a.user.clone()),
        }
    }
}

fn cti(s: &ApiState) -> ApiResult<&Cti> {
    s.cti.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no call handling in this process",
        )
    })
}

fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// The agent an operation is for, and whether it is forced on someone
/// else.
fn target(cti: &Cti, p: &Principal, asked: Option<&str>) -> ApiResult<(String, AgentInfo, bool)> {
    let own = p.agent_id.as_deref();
    let id = match (p.role, asked, own) {
        (Role::Agent, None, Some(own)) => own,
        (Role::Agent, Some(a), Some(own)) if a == own => own,
        (Role::Agent, _, _) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "agents act on themselves only",
            ))
        }
        (_, Some(a), _) => a,
        (_, None, Some(own)) => own,
        (_, None, None) => return Err(ApiError::bad_request("bad_request", "give \"agent_id\"")),
    };
    let info = cti
        .agent(id)
        .filter(|a| p.may_access_tenant(&a.tenant))
        .ok_or_else(|| ApiError::not_found(format!("no agent {id:?}")))?;
    Ok((id.to_string(), info, Some(id) != own))
}

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

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentRequest {
    agent_id: Option<String>,
}

fn agent_request(body: &[u8]) -> ApiResult<AgentRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(AgentRequest { agent_id: None });
    }
    json_body(body)
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

/// Tell the call `info`'s agent is on to do something and wait for its
/// answer; a refusal becomes `refused(reason)`, a call that just ended
/// `409 no_call`.
async fn ask(
    cti: &Cti,
    info: &AgentInfo,
    command: impl FnOnce(tokio::sync::oneshot::Sender<Result<(), String>>) -> SessionCommand,
    refused: impl FnOnce(String) -> ApiError,
) -> ApiResult<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    live_call(cti, info)?
        .send(command(tx))
        .map_err(|_| conflict("no_call", "the call just ended"))?;
    rx.await
        .map_err(|_| conflict("no_call", "the call just ended"))?
        .map_err(refused)
}

/// The command channel of the call `agent` is on.
fn live_call(
    cti: &Cti,
    info: &AgentInfo,
) -> ApiResult<tokio::sync::mpsc::UnboundedSender<SessionCommand>> {
    cti.calls
        .live
        .get(&info.device)
        .map(|e| e.value().1.clone())
        .ok_or_else(|| conflict("no_call", "the agent is not on a call"))
}

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

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferRequest {
    agent_id: Option<String>,
    to_agent: Option<String>,
    to_group: Option<String>,
    to_number: Option<String>,
}

fn phone_number(n: &str) -> bool {
    !n.is_empty() && n.len() <= 32 && n.chars().all(|c| c.is_ascii_digit() || c == '+')
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
/// Whom to ring for a three-way call or a consultation (a skill group:
/// consultations only).
struct PartyRequest {
    agent_id: Option<String>,
    to_agent: Option<String>,
    to_group: Option<String>,
    to_number: Option<String>,
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

/// Where to ring another agent (by id) or an outside number (through the
/// tenant's trunk) for a three-way call or a consultation.
fn party_target(
    cti: &Cti,
    info: &AgentInfo,
    to_agent: Option<&str>,
    to_number: Option<&str>,
) -> ApiResult<crate::call::PartyTarget> {
    let party = match (to_agent, to_number) {
        (Some(a), None) => {
            let a = a.to_string();
            let other = cti
                .agent(&a)
                .filter(|o| o.tenant == info.tenant)
                .ok_or_else(|| ApiError::not_found(format!("no agent {a:?}")))?;
            let c = cti
                .calls
                .directory
                .contacts(&other.device)
                .into_iter()
                .next()
                .ok_or_else(|| {
                    conflict("not_registered", format!("{a}'s phone is not registered"))
                })?;
            crate::call::PartyTarget {
                device: Some(other.device.clone()),
                label: a.clone(),
                uri: c.uri,
                destination: c.source,
                tcp: c.tcp,
            }
        }
        (None, Some(n)) if phone_number(n) => {
            let n = n.to_string();
            let trunk = cti
                .quick_transfers()
                .into_iter()
                .find(|q| q.number == n)
                .and_then(|q| q.trunk.clone())
                .or_else(|| cti.calls.tenant_trunk(&info.tenant))
                .ok_or_else(|| conflict("no_trunk", "this tenant has no outbound trunk"))?;
            let (proxy, tcp) = cti
                .calls
                .trunks
                .attempt_order(&trunk)
                .into_iter()
                .find_map(|t| Some((t.proxy?, t.tcp)))
                .ok_or_else(|| conflict("no_trunk", format!("trunk {trunk:?} has no proxy")))?;
            crate::call::PartyTarget {
                device: None,
                label: n.clone(),
                uri: format!("sip:{n}@{proxy}"),
                destination: proxy,
                tcp,
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "bad_request",
                "give exactly one of to_agent, to_number (a phone number)",
            ))
        }
    };
    Ok(party)
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
