//! Outbound calls from the phone bar (CTI issue §3 "outbound call with the
//! tenant's caller ID"; REQUIREMENTS §3 外呼): hotline rings the agent's
//! phone first (showing the number to be dialled), and once the agent
//! answers dials the citizen through the tenant's trunk chain with the
//! tenant's caller ID, then bridges the two with the same `session` as
//! every call (recording, hold, supervisors, transfer, three-way).
//!
//! The agent is marked `outbound` in the ACD for the call (no queue
//! offers meanwhile) and gets after-call work after it, as for inbound
//! calls. The call has its record (`direction: outbound`). It runs as a
//! [`Kind::Outbound`] machine in `task::agent_first`.

use std::sync::Arc;

use tracing::Instrument;

use super::machine::Kind;
use super::task::agent_first::{self, AgentFirstCall};
use super::{CallContext, Contact};

/// An outbound call to make.
#[derive(Debug, Clone)]
pub struct OutboundOrder {
    /// Agent id (job number).
    pub agent: String,
    /// The agent's phone registrations.
    pub contacts: Vec<Contact>,
    /// The agent phone's SIP user (supervisors reach the call through it).
    pub device: String,
    /// The citizen's number.
    pub number: String,
    /// Tenant.
    pub tenant: String,
    /// Caller ID shown to the citizen.
    pub caller_id: String,
    /// First trunk (its backups follow).
    pub trunk: String,
}

/// Start the call in its own task; returns its call id.
pub fn spawn(ctx: Arc<CallContext>, order: OutboundOrder) -> String {
    let call_id = format!(
        "outbound-{}-{}",
        crate::util::unix_now_ms(),
        rand::random::<u32>()
    );
    let span = tracing::info_span!("outbound", call = %call_id, agent = %order.agent, number = %order.number);
    let call = AgentFirstCall {
        kind: Kind::Outbound,
        start: crate::events::CallStart {
            call_id: call_id.clone(),
            serial: String::new(),
            tenant: order.tenant.clone(),
            direction: crate::events::model::Direction::Outbound,
            caller: order.caller_id.clone(),
            called: order.number.clone(),
            caller_area: None,
            confidential: false,
        },
        call_id: call_id.clone(),
        agent: order.agent,
        device: order.device,
        contacts: order.contacts,
        number: order.number,
        caller_id: order.caller_id,
        trunk: Some(order.trunk),
        recording_tenant: Some(order.tenant),
        acd_call: None,
        news: None,
        agent_display: None,
    };
    tokio::spawn(agent_first::run(ctx, call).instrument(span));
    call_id
}
