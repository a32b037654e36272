//! Callbacks that keep the caller's place (issue "ACD" §7, REQUIREMENTS §3
//! "every abandoned call is called back"): when a callback's turn comes the
//! ACD reserves an agent and emits `OfferCallback`; this task rings the
//! agent first, and once the agent answers dials the citizen through the
//! tenant's trunk (and its backups) with the tenant's outbound caller ID,
//! then bridges the two like any call. The ACD is told the outcome
//! (`CallbackResult`) so an unanswered callback is retried per its policy.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};

use super::agent_first::NotReached;
use super::queue::QueueNews;
use super::reach::{invite, reach, Citizen, Dial, Reached};
use super::{local_media, session, CallContext};
use crate::acd::{CallId, Input};
use crate::media::caller::CallerMedia;
use crate::media::player::Target;
use crate::media::sdp;

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

/// Run a callback in its own task.
pub fn spawn(ctx: Arc<CallContext>, order: CallbackOrder, dialout: Option<Dialout>) {
    let span = tracing::info_span!("callback", call = %order.call, agent = %order.agent, attempt = order.attempt);
    tokio::spawn(run(ctx, order, dialout).instrument(span));
}

async fn run(ctx: Arc<CallContext>, mut order: CallbackOrder, dialout: Option<Dialout>) {
    let Some(queues) = ctx.queues.clone() else {
        return;
    };
    let call = order.call;
    let agent = order.agent.clone();
    let (Ok(a_ports), Ok(b_ports)) = (ctx.ports.allocate().await, ctx.ports.allocate().await)
    else {
        warn!("no RTP ports for a callback");
        queues.input(Input::OfferFailed { call, agent });
        return;
    };
    let (events_tx, mut events) = ctx.stack.leg_channel();

    // 1. The agent first, 2. then the citizen through the tenant's trunk
    // chain.
    let b_local = local_media(&ctx, b_ports.port(), ctx.codecs.clone());
    let b_offer = sdp::build_offer(&b_local);
    let invites = ctx
        .directory
        .contacts(&order.device)
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
    let mut record = None;
    let number = order.number.clone();
    // The ACD's news is heard while the agent rings; the order stays whole
    // for the record.
    let mut news = std::mem::replace(&mut order.news, mpsc::unbounded_channel().1);
    let dial = Dial {
        number: &number,
        caller_id: dialout.as_ref().map_or("", |d| d.caller_id.as_str()),
        trunk: dialout.as_ref().map(|d| d.trunk.as_str()),
        port: a_ports.port(),
    };
    let reached = reach(
        &ctx,
        (&events_tx, &mut events),
        invites,
        &b_offer,
        Some(&mut news),
        dial,
        || {
            queues.input(Input::OfferAnswered {
                call,
                agent: agent.clone(),
            });
            record = Some(start_record(&ctx, &order, dialout.as_ref()));
        },
    )
    .await;
    let reached = match (reached, record) {
        (Ok(r), Some(record)) => (r, record),
        (Err(NotReached::Agent(code)), _) => {
            info!(code, "agent did not take the callback");
            queues.input(if matches!(code, 486 | 600 | 603) {
                Input::OfferRejected { call, agent }
            } else {
                Input::OfferFailed { call, agent }
            });
            return;
        }
        (Err(NotReached::Withdrawn), None) => return,
        (outcome, record) => {
            // The agent answered; the citizen was not reached.
            if let Some(record) = record {
                match outcome {
                    Err(NotReached::NoTrunk) => {
                        warn!("no trunk to call the citizen back through");
                        record.end_by_system("no-trunk", None, true);
                    }
                    _ => record.end_by_system("not-answered", Some(480), false),
                }
                record.finish();
            }
            queues.input(Input::CallbackResult {
                call,
                answered: false,
            });
            return;
        }
    };
    let (
        Reached {
            agent: (agent_leg, b_neg),
            citizen:
                Citizen {
                    leg: citizen_leg,
                    neg: a_neg,
                    local: a_local,
                    offer: a_offer,
                },
        },
        record,
    ) = reached;
    info!(number = %order.number, "callback connected");
    record.fact("answered", |b, t| b.answered(t, &agent));
    queues.input(Input::CallbackResult {
        call,
        answered: true,
    });

    // 3. Talk.
    let mut media = CallerMedia::new(a_ports, Target::from_negotiated(&a_neg));
    if let Some(d) = &dialout {
        if let Some(r) =
            super::open_recording(&ctx, &d.tenant, &callback_call_id(&order), &record).await
        {
            media.record(r);
        }
    }
    let mut session = session::Session::connect(session::SessionParts {
        ctx: &ctx,
        a: &citizen_leg,
        b: agent_leg,
        events: &mut events,
        events_tx: events_tx.clone(),
        media: &mut media,
        record: &record,
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
        agent: session::AgentSide::callback(agent.clone(), order.device.clone()),
        rules: session::Rules::AGENT_FIRST,
    });
    session.run().await;
    queues.input(Input::CallEnded { call });
    record.finish();
}

/// A callback attempt's call id: the ACD's callback and the attempt.
fn callback_call_id(order: &CallbackOrder) -> String {
    format!("callback-{}-{}", order.call.0, order.attempt)
}

/// The record of a callback attempt, from the moment its agent took it.
fn start_record(
    ctx: &CallContext,
    order: &CallbackOrder,
    dialout: Option<&Dialout>,
) -> super::record::CallRecord {
    let Some(records) = &ctx.records else {
        return super::record::CallRecord::disabled();
    };
    records.start(crate::events::CallStart {
        call_id: callback_call_id(order),
        serial: records.next_serial(ctx.utc_offset_minutes),
        tenant: dialout.map_or_else(|| "default".to_string(), |d| d.tenant.clone()),
        direction: crate::events::model::Direction::Callback,
        caller: order.number.clone(),
        called: dialout.map(|d| d.caller_id.clone()).unwrap_or_default(),
        caller_area: None,
        confidential: false,
    })
}
