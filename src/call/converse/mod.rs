//! A call's conversations (issue 13: one loop for every driver instead of
//! a copy each): the shell around the pure [`Conversations`]. It bridges
//! the caller with whoever answered through `session`, makes fresh ports
//! and an offer for a blind transfer's next party, rings the target, the
//! transferring agent or the queue, plays music on hold, asks the ACD and
//! files the record's fact, as the machine decides, and feeds back what
//! happened. The call's one recording goes on across conversations. The
//! IVR flow (`flow`) and a call routed straight to agents or a queue
//! (`call::run`) both end up here.

pub mod core;

use std::sync::Arc;

use tracing::{info, warn};

use super::flow::core::Dest;
use super::ringing::{Connected, IvrWait, Ringer};
use super::session::{AgentSide, Rules, Session, SessionEnd, SessionParts, SideMedia};
use super::{CallContext, Directory, Outcome, Ringing};
use crate::events::model::TransferMode;
use crate::ivr::QueueOutcome;
use crate::media::player::Player;
use crate::media::ports::PortPair;
use crate::media::sdp::{self, LocalMedia, SessionDescription};
use crate::sip::Leg;
use core::{Answer, Conversations, End, Input, Output, Party, Question, Rang, Ring, Roster};

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
    /// The caller, in a flow's queue, chose to be called back.
    CallbackRequested,
    /// Nobody was reached: the flow goes on.
    Failed(QueueOutcome),
    /// Someone answered and the conversation is over;
    /// `end.caller_continues` when the caller is still on the line.
    Talked { agent: String, end: Box<SessionEnd> },
}

/// The switch's registrations and roster, as the machine reads them.
struct Registrations {
    directory: Arc<dyn Directory>,
    roster: Arc<crate::roster::LiveRoster>,
}

impl Roster for Registrations {
    fn registered(&self, device: &str) -> bool {
        let registered = !self.directory.contacts(device).is_empty();
        if !registered {
            info!(%device, "phone not registered");
        }
        registered
    }

    fn agent_id_of(&self, device: &str) -> String {
        self.roster
            .load()
            .agent_id_of(device)
            .unwrap_or(device)
            .to_string()
    }
}

/// The party who answered, as the machine sees them.
fn party_of(c: &Connected) -> Party {
    Party {
        agent: c.agent.clone(),
        device: c.device.clone(),
    }
}

/// Bridge the caller with whoever answered until the conversation is
/// over; a blind transfer puts the caller through to its target (and back
/// to the agent or the queue when it is not reached), and they talk again.
/// `wait` is the flow's queue wait for a transfer to a group.
pub(super) async fn converse(
    ctx: &Arc<CallContext>,
    ringer: &mut Ringer<'_>,
    parts: &mut Parts,
    connected: Connected,
    who: String,
    keep_caller: bool,
    wait: Option<IvrWait>,
) -> Connect {
    let core = Conversations::start(
        registrations(ctx),
        ctx.tenant_trunk(&parts.tenant),
        party_of(&connected),
        who,
        ringer.answered,
    );
    drive(
        core,
        Shell::new(ctx, ringer, parts, keep_caller, wait, Some(connected)),
    )
    .await
}

/// An IVR flow connects the caller to `dest` (the caller kept for the
/// flow after the talk when `keep_caller`), then as [`converse`].
pub(super) async fn dial(
    ctx: &Arc<CallContext>,
    ringer: &mut Ringer<'_>,
    parts: &mut Parts,
    dest: Dest,
    keep_caller: bool,
) -> Connect {
    let core = Conversations::dial(
        registrations(ctx),
        ctx.tenant_trunk(&parts.tenant),
        dest,
        ringer.answered,
    );
    let wait = Some(IvrWait::default());
    drive(
        core,
        Shell::new(ctx, ringer, parts, keep_caller, wait, None),
    )
    .await
}

/// The switch's registrations and roster, for the machine.
fn registrations(ctx: &CallContext) -> Arc<Registrations> {
    Arc::new(Registrations {
        directory: ctx.directory.clone(),
        roster: ctx.roster.clone(),
    })
}

/// Carry out the machine's outputs until it ends.
async fn drive(mut core: Conversations, mut shell: Shell<'_, '_>) -> Connect {
    while let Some(output) = core.poll_output() {
        if let Some(input) = shell.execute(output).await {
            core.handle_input(input);
        }
    }
    match core.end().cloned() {
        Some(End::CallerGone) => Connect::CallerGone,
        Some(End::CallbackRequested) => Connect::CallbackRequested,
        Some(End::Failed(why)) => {
            info!(?why, "nobody took the caller");
            Connect::Failed(why)
        }
        Some(End::Talked { who, .. }) => match shell.last.take() {
            Some(end) => Connect::Talked {
                agent: who,
                end: Box::new(end),
            },
            None => Connect::CallerGone,
        },
        // Every output that waits for news gets it at once: a machine
        // with nothing to do and no end is a broken shell.
        None => {
            warn!("conversations stalled");
            shell.end_music().await;
            Connect::Failed(QueueOutcome::Timeout)
        }
    }
}

/// What carries out the machine's outputs.
struct Shell<'s, 'r> {
    ctx: &'s Arc<CallContext>,
    ringer: &'s mut Ringer<'r>,
    parts: &'s mut Parts,
    keep_caller: bool,
    wait: Option<IvrWait>,
    /// The leg of whoever answered, until they talk.
    party: Option<Connected>,
    /// Music on hold, while it plays.
    music: Option<Player>,
    /// How the last conversation ended.
    last: Option<SessionEnd>,
}

impl<'s, 'r> Shell<'s, 'r> {
    fn new(
        ctx: &'s Arc<CallContext>,
        ringer: &'s mut Ringer<'r>,
        parts: &'s mut Parts,
        keep_caller: bool,
        wait: Option<IvrWait>,
        party: Option<Connected>,
    ) -> Self {
        Shell {
            ctx,
            ringer,
            parts,
            keep_caller,
            wait,
            party,
            music: None,
            last: None,
        }
    }

    /// Carry out `output`; the news it waits for, if any.
    async fn execute(&mut self, output: Output) -> Option<Input> {
        match output {
            Output::AnswerCaller => Some(Input::Answered(match self.party.as_ref() {
                Some(party) => {
                    Box::pin(answer_bridged(self.ctx, self.ringer, self.parts, party)).await
                }
                None => self.ringer.answer_caller(),
            })),
            Output::DropAnswer => {
                if let Some(c) = self.party.take() {
                    self.ringer.drop_answer(c).await;
                }
                None
            }
            Output::Talk => Some(self.talk().await),
            Output::FreshPorts => {
                let ok = match fresh_b_side(self.ctx, self.ringer, self.parts).await {
                    Ok(()) => true,
                    Err(e) => {
                        warn!(error = %e, "no RTP ports for the transfer");
                        false
                    }
                };
                Some(Input::Ports(ok))
            }
            Output::MusicOn => {
                self.music = self.hold_music();
                None
            }
            Output::MusicOff => {
                self.end_music().await;
                None
            }
            Output::Ask(question) => Some(Input::Answer(self.ask(question).await)),
            Output::Ring(ring) => Some(Input::Rang(self.ring(ring).await)),
            Output::TransferFailed(f) => {
                info!(
                    target = %f.name,
                    reason = ?f.reason,
                    sip_code = ?f.sip_code,
                    back_to = ?f.back_to,
                    back_to_id = f.back_to_id.as_deref().unwrap_or(""),
                    "transfer target not reached: the caller goes back"
                );
                let failure = crate::events::model::TransferFailure {
                    reason: f.reason,
                    sip_code: f.sip_code,
                    back_to: f.back_to,
                    back_to_id: f.back_to_id,
                };
                self.ringer.record.fact("transfer failed", |b, t| {
                    b.transfer_failed(
                        t,
                        f.transferor.as_deref(),
                        f.kind,
                        &f.name,
                        TransferMode::Blind,
                        failure,
                    )
                });
                None
            }
            Output::ForgetCaller => {
                self.ringer.inbound.forget();
                None
            }
        }
    }

    /// The caller and the party who answered talk until the conversation
    /// is over (the call's one recording opened at the first).
    async fn talk(&mut self) -> Input {
        let Some(connected) = self.party.take() else {
            return Input::Talked {
                transfer: None,
                caller_continues: false,
            };
        };
        let (ctx, ringer, parts) = (self.ctx, &mut *self.ringer, &mut *self.parts);
        if ringer.bridged.is_none() {
            // (A relay bridged before the answer has the recording.)
            ensure_recording(
                ctx,
                ringer,
                parts,
                (connected.agent.as_deref(), connected.device.as_deref()),
            )
            .await;
        }
        let queue_call = connected.queued;
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
            bridged: ringer.bridged.take(),
            caller: ringer.caller.clone(),
            agent: AgentSide::answered(connected.agent, connected.device, queue_call),
            rules: Rules::inbound(self.keep_caller),
        });
        let mut end = session.run().await;
        if let (Some(call), Some(queues), false) = (queue_call, &ctx.queues, end.acd_released) {
            queues.input(crate::acd::Input::CallEnded { call });
        }
        let input = Input::Talked {
            transfer: end.transfer.take(),
            caller_continues: end.caller_continues,
        };
        self.last = Some(end);
        input
    }

    /// The ACD's answer to `question`.
    async fn ask(&self, question: Question) -> Answer {
        let queues = self.ctx.queues.as_ref();
        match question {
            Question::Staffed(group) => {
                let staffed = match queues {
                    Some(q) => q.staffed(&group).await,
                    None => {
                        warn!(%group, "a queue without an ACD");
                        Some(false)
                    }
                };
                if staffed == Some(false) {
                    info!(%group, "nobody of the group is signed in");
                }
                Answer::Staffed(staffed)
            }
            Question::AgentState(agent) => {
                let state = match queues {
                    Some(q) => q.agent_state(&agent).await,
                    None => None,
                };
                if let Some(state) = state {
                    info!(%agent, %state, "the transferring agent's state, for taking the caller back");
                }
                Answer::AgentState(state)
            }
            Question::QueuePlace => {
                Answer::QueuePlace(self.ringer.queue_place.as_ref().map(|p| p.group.clone()))
            }
        }
    }

    /// Ring `ring`; the party who answered is kept for the talk.
    async fn ring(&mut self, ring: Ring) -> Rang {
        let ringer = &mut *self.ringer;
        let attempt = match ring {
            Ring::Agent(device) => {
                ringer
                    .ring_agents(Ringing::Sequential, std::slice::from_ref(&device))
                    .await
            }
            Ring::Queue {
                group,
                priority,
                max_wait,
            } => {
                let wait = IvrWait { max_wait };
                ringer.ring_queue(&group, priority, Some(wait)).await
            }
            Ring::Group(group) => ringer.ring_queue(&group, 0, self.wait).await,
            Ring::Number { number, trunk } => ringer.ring_external(&number, &trunk).await,
            Ring::Back(device) => {
                let back = ringer
                    .ring_agents(Ringing::Sequential, std::slice::from_ref(&device))
                    .await;
                if let Err(other) = &back {
                    info!(%device, ?other, "the agent did not take the caller back");
                }
                back
            }
            Ring::QueueAtPlace => match ringer.queue_place.clone() {
                Some(place) => {
                    info!(group = %place.group, priority = place.priority, "back to the queue at its place");
                    ringer
                        .ring_queue_at(&place.group, place.priority, place.ivr, Some(place.arrived))
                        .await
                }
                None => Err(Outcome::NotAnswered(480)),
            },
        };
        match attempt {
            Ok(c) => {
                let party = party_of(&c);
                self.party = Some(c);
                Rang::Answered(party)
            }
            Err(Outcome::CallerCancelled) => Rang::CallerGone,
            Err(other) => {
                info!(?other, "not reached");
                Rang::Failed(other)
            }
        }
    }

    /// Music on hold to the answered caller while nobody talks with them,
    /// if the switch has it loaded; the caller's media is lent to the player.
    fn hold_music(&mut self) -> Option<Player> {
        let moh = self.ctx.prompts.as_ref()?.get("moh")?;
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let player = self.ringer.media.play(events);
        player.play(moh);
        player.set_loop(true);
        Some(player)
    }

    /// Stop the music and take the caller's media back.
    async fn end_music(&mut self) {
        if let Some(p) = self.music.take() {
            self.ringer.media.end_play(p).await;
        }
    }
}

/// The call's one recording, opened at its first conversation.
async fn ensure_recording(
    ctx: &CallContext,
    ringer: &mut Ringer<'_>,
    parts: &Parts,
    (agent, device): (Option<&str>, Option<&str>),
) {
    if !ringer.media.is_recording() {
        if let Some(r) =
            super::open_recording(ctx, &parts.tenant, &parts.call_id, ringer.record).await
        {
            ringer.media.record(r);
            let call = crate::media::fork::CallMeta {
                call_id: parts.call_id.clone(),
                tenant: parts.tenant.clone(),
                caller: ringer.caller.clone(),
                called: parts.called.clone(),
                agent: agent.map(str::to_string),
            };
            super::start_fork(ctx, &mut ringer.media, call, device);
        }
    }
}

/// Answer the caller for the conversation with `party`, the caller's
/// media bridged to the party's (and the recording opened) first, so the
/// caller's first words after the 200 reach the party
/// ([`super::session::bridge`]); `false` when the caller left first (the relay
/// is stopped).
pub(super) async fn answer_bridged(
    ctx: &CallContext,
    ringer: &mut Ringer<'_>,
    parts: &mut Parts,
    party: &Connected,
) -> bool {
    ensure_recording(
        ctx,
        ringer,
        parts,
        (party.agent.as_deref(), party.device.as_deref()),
    )
    .await;
    if let Some(b) = parts.b_ports.take() {
        let bridged = super::session::bridge(ctx, &mut ringer.media, b, &party.neg, &parts.a_local);
        ringer.bridged = Some(bridged);
    }
    let answered = ringer.answer_caller();
    if !answered {
        if let Some(bridged) = ringer.bridged.take() {
            bridged.abandon(ctx, ringer.record).await;
        }
    }
    answered
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
    // Browser phones are offered the new ports too (their ICE credentials).
    ringer.b = super::ringing::BOffer::new(offer, &ports);
    parts.b_ports = Some(ports);
    Ok(())
}
