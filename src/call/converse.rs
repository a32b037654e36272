//! A call's conversations (issue 13: one loop for every driver instead of
//! a copy each): the caller is bridged with whoever answered through
//! `session`; when the agent blind-transfers the caller, fresh ports and
//! an offer are made for the next party, the target is rung through
//! `recall` (back to the agent or the queue when it is not reached), and
//! they talk again, the call's one recording going on. The IVR flow
//! (`flow`) and a call routed straight to agents or a queue (`call::run`)
//! both end up here.

use std::sync::Arc;

use tracing::{info, warn};

use super::recall::Transferor;
use super::ringing::{Connected, IvrWait, Ringer};
use super::session::{AgentSide, Rules, Session, SessionEnd, SessionParts, SideMedia};
use super::{CallContext, Outcome};
use crate::ivr::{QueueOutcome, TransferTarget};
use crate::media::ports::PortPair;
use crate::media::sdp::{self, LocalMedia, SessionDescription};
use crate::sip::Leg;

/// What the call's setup hands the flow driver.
pub(super) struct Parts {
    pub a_local: LocalMedia,
    pub b_local: LocalMedia,
    pub b_ports: Option<PortPair>,
    pub a_answer: SessionDescription,
    pub call_id: String,
    pub tenant: String,
    pub called: String,
}

pub(super) enum Connect {
    /// The caller hung up (the call is over).
    CallerGone,
    /// Nobody was reached: the flow goes on.
    Failed(QueueOutcome),
    /// Someone answered and the conversation is over;
    /// `end.caller_continues` when the caller is still on the line.
    Talked { agent: String, end: Box<SessionEnd> },
}

/// Bridge the caller with whoever answered until the conversation is
/// over; a blind transfer puts the caller through to its target (and back
/// to the agent or the queue when it is not reached: `recall`), and they
/// talk again.
pub(super) async fn converse(
    ctx: &Arc<CallContext>,
    ringer: &mut Ringer<'_>,
    parts: &mut Parts,
    mut connected: Connected,
    mut who: String,
    keep_caller: bool,
    wait: Option<IvrWait>,
) -> Connect {
    loop {
        if !ringer.answered {
            if let Err(e) = ringer.inbound.answer(ringer.a_answer.clone()) {
                warn!(error = %e, "caller left as the agent answered");
                ringer.drop_answer(connected).await;
                return Connect::CallerGone;
            }
            ringer.answered = true;
        }
        // One recording for the whole call (a transfer's next conversation
        // continues it).
        if !ringer.media.is_recording() {
            if let Some(r) =
                super::open_recording(ctx, &parts.tenant, &parts.call_id, ringer.record).await
            {
                ringer.media.record(r);
            }
        }
        let queue_call = connected.queued;
        who = connected.agent.clone().unwrap_or(who);
        let from = Transferor {
            agent: connected.agent.clone(),
            device: connected.device.clone(),
        };
        let mut session = Session::connect(SessionParts {
            ctx,
            a: ringer.inbound,
            b: connected.leg,
            events: &mut ringer.events,
            events_tx: ringer.events_tx.clone(),
            media: &mut ringer.media,
            record: ringer.record,
            a_side: SideMedia {
                local: parts.a_local.clone(),
                neg: ringer.a_neg,
            },
            a_answer: parts.a_answer.clone(),
            b_side: SideMedia {
                local: parts.b_local.clone(),
                neg: connected.neg,
            },
            b_ports: parts.b_ports.take(),
            caller: ringer.caller.clone(),
            agent: AgentSide::answered(
                connected.agent.clone(),
                connected.device.clone(),
                queue_call,
            ),
            rules: Rules::inbound(keep_caller),
        });
        let mut end = session.run().await;
        if let (Some(call), Some(queues), false) = (queue_call, &ctx.queues, end.acd_released) {
            queues.input(crate::acd::Input::CallEnded { call });
        }
        // The agent transferred the caller: put them through to the target.
        let Some(target) = end.transfer.take() else {
            return Connect::Talked {
                agent: who,
                end: Box::new(end),
            };
        };
        if !end.caller_continues {
            return Connect::CallerGone;
        }
        if let Err(e) = fresh_b_side(ctx, ringer, parts).await {
            warn!(error = %e, "no RTP ports for the transfer");
            return Connect::Failed(QueueOutcome::Overflow);
        }
        let trunk = ctx.tenant_trunk(&parts.tenant);
        connected = match ringer.put_through(&target, trunk, wait, &from).await {
            Ok(c) => c,
            Err(Outcome::CallerCancelled) => {
                ringer.inbound.forget();
                return Connect::CallerGone;
            }
            // Back in the flow's queue, whose wait ended: the flow goes on.
            Err(Outcome::QueueEnded { full }) => {
                return Connect::Failed(if full {
                    QueueOutcome::Overflow
                } else {
                    QueueOutcome::Timeout
                })
            }
            Err(other) => {
                info!(?other, "nobody took the caller back");
                return Connect::Failed(QueueOutcome::Timeout);
            }
        };
        who = match &target {
            TransferTarget::Agent(a) => a.clone(),
            TransferTarget::Group(g) => format!("group {g}"),
            TransferTarget::Number { number, .. } => number.clone(),
        };
    }
}

/// New ports for the next party and an offer that names them.
pub(super) async fn fresh_b_side(
    ctx: &CallContext,
    ringer: &mut Ringer<'_>,
    parts: &mut Parts,
) -> Result<(), crate::media::ports::PortError> {
    if parts.b_ports.is_some() {
        return Ok(());
    }
    let ports = ctx.ports.allocate().await?;
    parts.b_local.port = ports.port();
    parts.b_local.session_version += 1;
    let mut offer = sdp::build_offer(&parts.b_local);
    if let Some(pt) = ringer.a_neg.telephone_event {
        super::retarget_telephone_event(&mut offer, pt);
    }
    ringer.b_offer = offer.to_string().into_bytes();
    ringer.b_offer_sdp = offer;
    parts.b_ports = Some(ports);
    Ok(())
}
