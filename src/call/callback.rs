//! Callbacks that keep the caller's place (issue "ACD" §7, REQUIREMENTS §3
//! "every abandoned call is called back"): when a callback's turn comes the
//! ACD reserves an agent and emits `OfferCallback`; this task rings the
//! agent first, and once the agent answers dials the citizen through the
//! tenant's trunk (and its backups) with the tenant's outbound caller ID,
//! then bridges the two like any call. The ACD is told the outcome
//! (`CallbackResult`) so an unanswered callback is retried per its policy.
//! A follow-up campaign's callback shows its ticket on the agent's phone
//! (the INVITE's display name, `campaign`) before the citizen is dialled.
//! It runs as a [`Kind::Callback`] machine in `task::agent_first`.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::machine::Kind;
use super::queue::QueueNews;
use super::task::agent_first::{self, AgentFirstCall};
use super::CallContext;
use crate::acd::CallId;

/// A callback the ACD has reserved an agent for.
pub struct CallbackOrder {
    /// The ACD's id of the callback.
    pub call: CallId,
    /// Agent id.
    pub agent: String,
    /// The agent's SIP user.
    pub device: String,
    /// The citizen's number.
    pub number: String,
    /// 1-based attempt.
    pub attempt: u32,
    /// Further news (a cancelled reservation).
    pub news: mpsc::UnboundedReceiver<QueueNews>,
}

/// How to reach citizens for one tenant.
#[derive(Debug, Clone)]
pub struct Dialout {
    /// The tenant (for the recording's folder).
    pub tenant: String,
    /// Caller ID shown to the citizen.
    pub caller_id: String,
    /// First trunk (its backups follow).
    pub trunk: String,
}

/// Run a callback in its own task (`task::agent_first`, the shell of a
/// [`Kind::Callback`] machine).
pub fn spawn(ctx: Arc<CallContext>, order: CallbackOrder, dialout: Option<Dialout>) {
    let span = tracing::info_span!("callback", call = %order.call, agent = %order.agent, attempt = order.attempt);
    if ctx.queues.is_none() {
        return;
    }
    let call_id = callback_call_id(&order);
    let call = AgentFirstCall {
        kind: Kind::Callback,
        start: crate::events::CallStart {
            call_id: call_id.clone(),
            serial: String::new(),
            tenant: dialout
                .as_ref()
                .map_or_else(|| "default".to_string(), |d| d.tenant.clone()),
            direction: crate::events::model::Direction::Callback,
            caller: order.number.clone(),
            called: dialout
                .as_ref()
                .map(|d| d.caller_id.clone())
                .unwrap_or_default(),
            caller_area: None,
            confidential: false,
        },
        call_id,
        contacts: ctx.directory.contacts(&order.device),
        agent: order.agent,
        device: order.device,
        number: order.number,
        caller_id: dialout
            .as_ref()
            .map(|d| d.caller_id.clone())
            .unwrap_or_default(),
        trunk: dialout.as_ref().map(|d| d.trunk.clone()),
        recording_tenant: dialout.map(|d| d.tenant),
        agent_display: ctx.campaigns.get().and_then(|c| c.preview(order.call)),
        acd_call: Some(order.call),
        news: Some(order.news),
    };
    tokio::spawn(agent_first::run(ctx, call).instrument(span));
}

/// A callback attempt's call id: the ACD's callback and the attempt.
fn callback_call_id(order: &CallbackOrder) -> String {
    format!("callback-{}-{}", order.call.0, order.attempt)
}
