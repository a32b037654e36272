//! Blind transfers and their recall (CTI issue §3 "transfer"; issue 12
//! item 5): the agent has left, the caller stays and is put through to the
//! target; when the target is not reached (busy, no answer, not
//! registered, nobody of the group signed in, trunk failure) the caller is
//! not hung up but goes back:
//!
//! 1. to the agent who transferred — their phone rings again — when the
//!    ACD has them idle or in after-call work (or does not know them: a
//!    phone rung directly);
//! 2. otherwise, or when they do not answer, to the queue of the call's
//!    group at the place the call had: its first queue entry's priority and
//!    arrival time, so callers who came later stay behind it (an IVR
//!    flow's queue keeps the flow's wait: its timeout hands the caller back
//!    to the flow);
//! 3. a call that never queued and whose agent cannot be reached is hung up.
//!
//! The caller hears music on hold while the target and the agent ring.
//! The record tells the story: `call.transfer_failed` (why, the target's
//! SIP status, where the caller went), then `agent.offered` /
//! `agent.answered` or `queue.entered` as usual.
//!
//! A transfer to a skill group that queues is the group's from then on:
//! its own wait, overflow and timeout steps apply, as for any caller.

use tracing::{info, warn};

use super::ringing::{Connected, IvrWait, Ringer};
use super::{Outcome, Ringing};
use crate::acd::AgentState;
use crate::events::model::{
    TransferFailure, TransferFailureReason, TransferKind, TransferMode, TransferReturn,
};
use crate::ivr::TransferTarget;
use crate::media::player::Player;

/// The agent who transferred the caller: where the caller goes back to.
#[derive(Debug, Clone)]
pub(super) struct Transferor {
    /// The ACD agent id (job number), or the phone's user when the ACD
    /// does not know it.
    pub agent: Option<String>,
    /// The SIP user of their phone.
    pub device: Option<String>,
}

/// How ringing a transfer's target ended.
enum Reach {
    /// Someone answered.
    Answered(Box<Connected>),
    /// The caller hung up.
    CallerGone,
    /// Not reached: the caller goes back.
    NotReached(TransferFailureReason, Option<u16>),
    /// The target took the caller and let go of them (a group's queue and
    /// its own timeout steps): nothing goes back.
    Over(Outcome),
}

/// Why a target that did not answer was not reached, from the final
/// status the caller would have got; the status is kept when the target
/// sent it (not for a ring timeout).
fn failure_of(outcome: &Outcome) -> (TransferFailureReason, Option<u16>) {
    match outcome {
        Outcome::NotAnswered(c @ (486 | 600 | 603)) => (TransferFailureReason::Busy, Some(*c)),
        Outcome::NotAnswered(408 | 480) => (TransferFailureReason::NoAnswer, None),
        Outcome::NotAnswered(c) | Outcome::Rejected(c) => (TransferFailureReason::Failed, Some(*c)),
        _ => (TransferFailureReason::Failed, None),
    }
}

/// The record's view of a target: its kind and how it is named (agents by
/// job number).
fn label(ringer: &Ringer<'_>, target: &TransferTarget) -> (TransferKind, String) {
    match target {
        TransferTarget::Agent(device) => (TransferKind::Agent, ringer.ctx.agent_id_of(device)),
        TransferTarget::Group(g) => (TransferKind::Group, g.clone()),
        TransferTarget::Number { number, .. } => (TransferKind::Number, number.clone()),
    }
}

impl Ringer<'_> {
    /// Put the answered caller through to `target` of a blind transfer by
    /// `from` (outside numbers through the tenant's trunk unless the
    /// target names one), and back as the module docs say when it is not
    /// reached. A group target queues with `group_wait` (an IVR flow's:
    /// its timeout comes back as [`Outcome::QueueEnded`] for the flow).
    /// `Ok`: someone answered (the target, or the caller is back with an
    /// agent). `Err(CallerCancelled)`: the caller hung up. Any other
    /// `Err`: nobody took the caller, whose media is back in `a_ports`
    /// unless a queue's farewell hung up; the owner goes on or hangs up.
    pub(super) async fn put_through(
        &mut self,
        target: &TransferTarget,
        tenant_trunk: Option<String>,
        group_wait: Option<IvrWait>,
        from: &Transferor,
    ) -> Result<Connected, Outcome> {
        let mut music = self.hold_music();
        let reached = self
            .reach(target, tenant_trunk, group_wait, &mut music)
            .await;
        let (reason, sip_code) = match reached {
            Reach::Answered(c) => {
                self.end_music(music).await;
                return Ok(*c);
            }
            Reach::CallerGone => {
                self.end_music(music).await;
                return Err(Outcome::CallerCancelled);
            }
            Reach::Over(outcome) => {
                self.end_music(music).await;
                return Err(outcome);
            }
            Reach::NotReached(reason, code) => (reason, code),
        };
        let agent_back = self.can_take_back(from).await;
        let (back_to, back_to_id) = match (&agent_back, &self.queue_place) {
            (Some((agent, _)), _) => (TransferReturn::Agent, Some(agent.clone())),
            (None, Some(place)) => (TransferReturn::Queue, Some(place.group.clone())),
            (None, None) => (TransferReturn::None, None),
        };
        let (kind, name) = label(self, target);
        info!(
            target = %name,
            ?reason,
            ?sip_code,
            ?back_to,
            back_to_id = back_to_id.as_deref().unwrap_or(""),
            "transfer target not reached: the caller goes back"
        );
        let failure = TransferFailure {
            reason,
            sip_code,
            back_to,
            back_to_id,
        };
        let transferor = from.agent.as_ref().map(|a| self.ctx.agent_id_of(a));
        self.record.fact("transfer failed", |b, t| {
            b.transfer_failed(
                t,
                transferor.as_deref(),
                kind,
                &name,
                TransferMode::Blind,
                failure,
            )
        });
        // 1. The agent's phone rings again, the music going on.
        if let Some((agent, device)) = agent_back {
            match self.ring_agents(Ringing::Sequential, &[device]).await {
                Ok(c) => {
                    self.end_music(music).await;
                    return Ok(c);
                }
                Err(Outcome::CallerCancelled) => {
                    self.end_music(music).await;
                    return Err(Outcome::CallerCancelled);
                }
                Err(other) => info!(%agent, ?other, "the agent did not take the caller back"),
            }
        }
        self.end_music(music).await;
        // 2. The queue, at the call's old place.
        if let Some(place) = self.queue_place.clone() {
            info!(group = %place.group, priority = place.priority, "back to the queue at its place");
            return self
                .ring_queue_at(&place.group, place.priority, place.ivr, Some(place.arrived))
                .await;
        }
        // 3. Nowhere.
        Err(Outcome::NotAnswered(sip_code.unwrap_or(480)))
    }

    /// Ring the target (the caller hearing `music`, which a queue takes
    /// over with its own media).
    async fn reach(
        &mut self,
        target: &TransferTarget,
        tenant_trunk: Option<String>,
        group_wait: Option<IvrWait>,
        music: &mut Option<Player>,
    ) -> Reach {
        let attempt = match target {
            TransferTarget::Agent(device) => {
                if self.ctx.directory.contacts(device).is_empty() {
                    info!(%device, "transfer target's phone is not registered");
                    return Reach::NotReached(TransferFailureReason::Unreachable, None);
                }
                self.ring_agents(Ringing::Sequential, std::slice::from_ref(device))
                    .await
            }
            TransferTarget::Group(group) => {
                if let Some(queues) = &self.ctx.queues {
                    if queues.staffed(group).await == Some(false) {
                        info!(%group, "nobody of the transfer's group is signed in");
                        return Reach::NotReached(TransferFailureReason::Unreachable, None);
                    }
                }
                self.end_music(music.take()).await;
                return match self.ring_queue(group, 0, group_wait).await {
                    Ok(c) => Reach::Answered(Box::new(c)),
                    Err(Outcome::CallerCancelled) => Reach::CallerGone,
                    Err(other) => Reach::Over(other),
                };
            }
            TransferTarget::Number { number, trunk } => {
                let Some(trunk) = trunk.clone().or(tenant_trunk) else {
                    warn!(%number, "no trunk to transfer through");
                    return Reach::NotReached(TransferFailureReason::Unreachable, None);
                };
                self.ring_external(number, &trunk).await
            }
        };
        match attempt {
            Ok(c) => Reach::Answered(Box::new(c)),
            Err(Outcome::CallerCancelled) => Reach::CallerGone,
            Err(other) => {
                let (reason, code) = failure_of(&other);
                Reach::NotReached(reason, code)
            }
        }
    }

    /// The agent `from` and their phone, if the caller can go back to
    /// them: their phone is registered, and the ACD has them idle or in
    /// after-call work (any state will do for a phone the ACD does not
    /// know).
    async fn can_take_back(&self, from: &Transferor) -> Option<(String, String)> {
        let device = from.device.clone()?;
        if self.ctx.directory.contacts(&device).is_empty() {
            info!(%device, "the transferring agent's phone is not registered");
            return None;
        }
        let agent = from
            .agent
            .clone()
            .unwrap_or_else(|| self.ctx.agent_id_of(&device));
        if let Some(queues) = &self.ctx.queues {
            match queues.agent_state(&agent).await {
                Some(AgentState::Idle | AgentState::AfterCallWork) | None => {}
                Some(state) => {
                    info!(%agent, %state, "the transferring agent cannot take the caller back");
                    return None;
                }
            }
        }
        Some((agent, device))
    }

    /// Music on hold to the answered caller while nobody talks with them,
    /// if the switch has it loaded; the caller's media is lent to the player.
    fn hold_music(&mut self) -> Option<Player> {
        let moh = self.ctx.prompts.as_ref()?.get("moh")?;
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let player = self.media.play(events);
        player.play(moh);
        player.set_loop(true);
        Some(player)
    }

    /// Stop the music and take the caller's media back.
    async fn end_music(&mut self, music: Option<Player>) {
        if let Some(p) = music {
            self.media.end_play(p).await;
        }
    }
}
