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
//! | `POST /api/v1/agent/call/fork/start`, `…/stop` | `{"agent_id"?}`: the call's live audio fork to the tenant's receiver (issue 18 §1), audited |
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
//! | `GET /api/v1/acd/stats` | the ACD's figures per group and agent and its missed calls, of the caller's centre (supervisors) |
//! | `POST /api/v1/acd/callbacks` | `{"group", "number", "priority"?}`: schedule a callback (supervisors; the group's agents) |
//! | `POST /api/v1/campaigns`, `GET /api/v1/campaigns/{id}`, `POST …/{id}/items`, `POST …/{id}/cancel` | follow-up campaigns (回访, supervisors) |
//!
//! Files: this one has what the endpoints share (the [`Cti`] handles, the
//! agent an operation is for, asking a live call); [`agent_state`] (sign
//! in/out, ready, after-call work), [`call_control`] (hang up, hold,
//! three-way calls, outbound, survey), [`fork`] (the call's live audio
//! fork started and stopped), [`transfer`] (blind and attended
//! transfers, one-click targets), [`supervision`] (supervise, take over,
//! wall-board, active calls, registrations), [`messages`] (agent-to-agent
//! text), [`acd`] (the ACD's figures and callbacks), [`campaigns`]
//! (follow-up campaigns).

mod acd;
mod agent_state;
mod call_control;
mod campaigns;
mod fork;
mod messages;
mod supervision;
mod transfer;

pub use acd::{schedule_callback, stats as acd_stats};
pub use agent_state::{complete_acw, set_state};
pub use call_control::{add_party, dial, drop_party, hangup, hold, resume, to_survey};
pub use campaigns::{
    add_items as campaign_add_items, cancel as campaign_cancel, create as campaign_create,
    get as campaign_get,
};
pub use fork::{fork_start, fork_stop};
pub use messages::message;
pub use supervision::{active_calls, registrations, supervise, take_over, wallboard};
pub use transfer::{consult, consult_cancel, consult_complete, transfer, transfer_targets};

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::Value;

use super::session::json_body;
use super::{ApiError, ApiResult, ApiState};
use crate::auth::{Principal, Role};
use crate::call::{CallContext, SessionCommand};

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

    /// The tenant of skill group `group` when `p` may act in it; another
    /// centre's group answers 404 `unknown_group` as an unknown one does.
    pub fn group_of_principal(&self, p: &Principal, group: &str) -> ApiResult<String> {
        let unknown = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_group",
                format!("no group {group:?}"),
            )
        };
        let tenant = self.group_tenant(group).ok_or_else(unknown)?;
        if !p.may_access_tenant(&tenant) {
            return Err(unknown());
        }
        Ok(tenant)
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
struct AgentRequest {
    agent_id: Option<String>,
}

fn agent_request(body: &[u8]) -> ApiResult<AgentRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(AgentRequest { agent_id: None });
    }
    json_body(body)
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
fn live_call(cti: &Cti, info: &AgentInfo) -> ApiResult<crate::call::CommandSender> {
    cti.calls
        .live
        .get(&info.device)
        .map(|e| e.value().1.clone())
        .ok_or_else(|| conflict("no_call", "the agent is not on a call"))
}

use crate::ivr::flow::dialable as phone_number;

/// Where to ring another agent (by id) or an outside number (through the
/// tenant's trunk) for a three-way call or a consultation.
fn party_target(
    cti: &Cti,
    info: &AgentInfo,
    to_agent: Option<&str>,
    to_number: Option<&str>,
) -> ApiResult<crate::call::PartyTarget> {
    let unreachable = |e: crate::call::Unreachable| match e {
        crate::call::Unreachable::NotRegistered(_) => conflict("not_registered", e.to_string()),
        _ => conflict("no_trunk", e.to_string()),
    };
    match (to_agent, to_number) {
        (Some(a), None) => {
            let other = cti
                .agent(a)
                .filter(|o| o.tenant == info.tenant)
                .ok_or_else(|| ApiError::not_found(format!("no agent {a:?}")))?;
            cti.calls.agent_party(a, &other.device).map_err(unreachable)
        }
        (None, Some(n)) if phone_number(n) => {
            let quick = cti
                .quick_transfers()
                .into_iter()
                .find(|q| q.number == n)
                .and_then(|q| q.trunk.clone());
            cti.calls
                .number_party(n, quick, &info.tenant)
                .map_err(unreachable)
        }
        _ => Err(ApiError::bad_request(
            "bad_request",
            "give exactly one of to_agent, to_number (a phone number)",
        )),
    }
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
