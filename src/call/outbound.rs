//! Outbound calls from the phone bar (CTI issue §3 "outbound call with the
//! tenant's caller ID"; REQUIREMENTS §3 外呼): hotline rings the agent's
//! phone first (showing the number to be dialled), and once the agent
//! answers dials the citizen through the tenant's trunk chain with the
//! tenant's caller ID, then bridges the two with the same `session` as
//! every call (recording, hold, supervisors, transfer, three-way).
//!
//! The agent is marked `outbound` in the ACD for the call (no queue
//! offers meanwhile) and gets after-call work after it, as for inbound
//! calls. The call has its record (`direction: outbound`).

use crate::media::caller::CallerMedia;
use crate::media::player::Target;
use std::sync::Arc;

use tracing::{info, warn, Instrument};

use super::agent_first::NotReached;
use super::reach::{invite, reach, Citizen, Dial, Reached};
use super::{local_media, session, CallContext, Contact};
use crate::acd::Input;
use crate::media::sdp;

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
    let id = call_id.clone();
    tokio::spawn(run(ctx, order, id).instrument(span));
    call_id
}

async fn run(ctx: Arc<CallContext>, order: OutboundOrder, call_id: String) {
    let record = match &ctx.records {
        Some(r) => r.start(crate::events::CallStart {
            call_id: call_id.clone(),
            serial: r.next_serial(ctx.utc_offset_minutes),
            tenant: order.tenant.clone(),
            direction: crate::events::model::Direction::Outbound,
            caller: order.caller_id.clone(),
            called: order.number.clone(),
            caller_area: None,
            confidential: false,
        }),
        None => super::record::CallRecord::disabled(),
    };
    let queues = ctx.queues.clone();
    if let Some(q) = &queues {
        if let Err(e) = q
            .try_input(Input::StartOutbound {
                agent: order.agent.clone(),
            })
            .await
        {
            info!(error = %e, "the ACD refused the outbound call");
            record.end_by_system("agent-busy", None, false);
            record.finish();
            return;
        }
    }
    talk(&ctx, &order, &call_id, &record).await;
    if let Some(q) = &queues {
        q.input(Input::EndOutbound {
            agent: order.agent.clone(),
        });
    }
    record.finish();
}

async fn talk(
    ctx: &CallContext,
    order: &OutboundOrder,
    call_id: &str,
    record: &super::record::CallRecord,
) {
    let (Ok(a_ports), Ok(b_ports)) = (ctx.ports.allocate().await, ctx.ports.allocate().await)
    else {
        warn!("no RTP ports for an outbound call");
        record.end_by_system("no-ports", None, true);
        return;
    };
    let (events_tx, mut events) = ctx.stack.leg_channel();
    // 1. The agent's phone, showing the number to be dialled.
    let b_local = local_media(ctx, b_ports.port(), ctx.codecs.clone());
    let b_offer = sdp::build_offer(&b_local);
    let invites = order
        .contacts
        .iter()
        .map(|c| {
            invite(
                c.uri.clone(),
                Some(c.source),
                c.tcp,
                &order.number,
                &b_offer,
            )
        })
        .collect();
    // 2. Then the citizen, through the tenant's trunk chain.
    let dial = Dial {
        number: &order.number,
        caller_id: &order.caller_id,
        trunk: Some(&order.trunk),
        port: a_ports.port(),
    };
    let reached = reach(
        ctx,
        (&events_tx, &mut events),
        invites,
        &b_offer,
        None,
        dial,
        || {},
    )
    .await;
    let Reached {
        agent: (agent_leg, b_neg),
        citizen:
            Citizen {
                leg: citizen_leg,
                neg: a_neg,
                local: a_local,
                offer: a_offer,
            },
    } = match reached {
        Ok(r) => r,
        Err(NotReached::Agent(code)) => {
            info!(code, "the agent's phone did not answer");
            record.end_by_system("agent-not-answered", Some(code), false);
            return;
        }
        Err(NotReached::Withdrawn) => {
            record.end_by_system("withdrawn", None, false);
            return;
        }
        Err(NotReached::NoTrunk) => {
            warn!(trunk = %order.trunk, "no trunk to dial the citizen through");
            record.end_by_system("no-trunk", None, true);
            return;
        }
        Err(NotReached::Citizen(code)) => {
            info!(code, "the citizen was not reached");
            record.end_by_system("not-answered", Some(code), false);
            return;
        }
    };
    info!("outbound call connected");
    record.fact("answered", |b, t| b.answered(t, &order.agent));
    // 3. Talk.
    let mut media = CallerMedia::new(a_ports, Target::from_negotiated(&a_neg));
    if let Some(r) = super::open_recording(ctx, &order.tenant, call_id, record).await {
        media.record(r);
    }
    let mut session = session::Session::connect(session::SessionParts {
        ctx,
        a: &citizen_leg,
        b: agent_leg,
        events: &mut events,
        events_tx: events_tx.clone(),
        media: &mut media,
        record,
        a_side: session::SideMedia {
            local: a_local,
            neg: a_neg,
        },
        a_answer: a_offer,
        b_side: session::SideMedia {
            local: b_local,
            neg: b_neg,
        },
        b_ports: Some(b_ports),
        caller: order.number.clone(),
        agent: session::AgentSide::outbound(order.agent.clone(), order.device.clone()),
        rules: session::Rules::AGENT_FIRST,
    });
    session.run().await;
}
