//! A call driven by an IVR flow (IVR issue §3): the shell around the pure
//! [`Interpreter`]. It turns the interpreter's actions into SIP and media
//! (answer, prompts through the caller's [`Player`], timers, queueing in
//! the ACD, transfers to an agent or through a trunk, voicemail, hang-up)
//! and feeds back what happened (prompt finished or cut by a key, keys from
//! RFC 4733 / in-band tones / SIP INFO, timers, queue and transfer results,
//! the agent or the caller hanging up).
//!
//! The flows a call runs are the snapshot taken when it arrived
//! ([`FlowRoute`]): a hot reload changes what new calls get, never a call
//! in progress. Every step is logged with the flow's name and version (its
//! content hash), and the path and variables are logged when the flow ends.
//!
//! Media continuity: the caller's ports and outgoing RTP stream pass from
//! the IVR's player to the queue's music and announcements, to the bridge
//! with the agent, and back to the player for the survey, so the caller's
//! phone sees one stream for the whole call.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::converse::{converse, Connect, Parts};
use super::ringing::{IvrWait, Ringer};
use super::{sleep_until, CallContext, Outcome, Ringing};
use crate::ivr::{
    Action, CallFacts, Environment, Event, FlowSet, HangupReason, Interpreter, QueueOutcome,
    TimerId, TransferTarget,
};
use crate::media::player::{Player, PlayerEvent};
use crate::media::prompts::PromptLibrary;
use crate::sip::{Leg, LegEvent};
use crate::time::Time;

/// The IVR as loaded at one moment: validated flows, their prompts decoded,
/// and the tables the flows consult. Immutable; a reload makes a new one.
pub struct IvrSnapshot {
    /// The flows.
    pub flows: Arc<FlowSet>,
    /// Their prompts, decoded to 8 kHz.
    pub prompts: Arc<PromptLibrary>,
    /// Calendars, caller areas, block list.
    pub env: Arc<dyn Environment + Send + Sync>,
    /// Where voicemails go (tenant/yyyy/mm/dd/call-id.wav below it).
    pub voicemail_dir: std::path::PathBuf,
    /// Local time offset for voicemail date folders.
    pub utc_offset_minutes: i32,
    /// Seal saved voicemails with this key (issue 14 §6); None: plain WAV.
    pub voicemail_seal: Option<crate::media::at_rest::SealingKey>,
}

/// A call routed to a flow, pinned to the snapshot it arrived under.
#[derive(Clone)]
pub struct FlowRoute {
    /// The snapshot.
    pub ivr: Arc<IvrSnapshot>,
    /// The flow's name.
    pub flow: String,
}

impl std::fmt::Debug for FlowRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRoute")
            .field("flow", &self.flow)
            .finish()
    }
}

impl PartialEq for FlowRoute {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.ivr, &other.ivr) && self.flow == other.flow
    }
}

impl Eq for FlowRoute {}

/// Now, in whole seconds as the interpreter always had it.
fn moment() -> Time {
    Time::from_unix_secs(crate::util::unix_now())
}

/// The caller's prompt player and the prompts of the batch playing.
struct Voice {
    player: Option<Player>,
    events: mpsc::UnboundedSender<PlayerEvent>,
    /// Prompts of the current `Play` still to finish.
    left: usize,
}

/// Drive the call through `route`'s flow until it hangs up, the caller
/// does, or a transfer hands the call over for good.
pub(super) async fn drive(
    ctx: &Arc<CallContext>,
    ringer: &mut Ringer<'_>,
    route: &FlowRoute,
    mut parts: Parts,
) -> Outcome {
    let ivr = route.ivr.clone();
    let facts = CallFacts {
        caller: ringer.caller.clone(),
        called: parts.called.clone(),
        tenant: parts.tenant.clone(),
    };
    let mut interp = match Interpreter::new(ivr.flows.clone(), &route.flow, facts) {
        Ok(i) => i,
        Err(e) => {
            warn!(error = %e, "flow cannot start: 500");
            ringer.inbound.reject(500);
            ringer.inbound.forget();
            return Outcome::Rejected(500);
        }
    };
    info!(flow = %interp.current_flow(), version = %interp.version(), "flow starts");
    let env = ivr.env.clone();
    let (player_tx, mut player_rx) = mpsc::unbounded_channel();
    let mut voice = Voice {
        player: None,
        events: player_tx,
        left: 0,
    };
    let mut timer: Option<(TimerId, tokio::time::Instant)> = None;
    let mut pending: VecDeque<Action> = interp.start(moment(), env.as_ref()).into();
    let outcome = loop {
        // Carry out what the interpreter asked for; results feed back in.
        let mut over = None;
        while let Some(action) = pending.pop_front() {
            let feedback = match action {
                Action::Answer => {
                    if !answer(ringer, &mut voice) {
                        over = Some(Outcome::CallerCancelled);
                        break;
                    }
                    None
                }
                Action::Play {
                    prompts,
                    interruptible,
                } => play(ringer, &mut voice, &ivr.prompts, &prompts, interruptible),
                Action::StopPlayback => {
                    if let Some(p) = &voice.player {
                        p.stop();
                    }
                    voice.left = 0;
                    None
                }
                Action::StartTimer { id, after_ms } => {
                    timer = Some((
                        id,
                        tokio::time::Instant::now() + Duration::from_millis(after_ms),
                    ));
                    None
                }
                Action::CancelTimer(id) => {
                    if timer.is_some_and(|(t, _)| t == id) {
                        timer = None;
                    }
                    None
                }
                Action::Step {
                    flow,
                    version,
                    node,
                    kind,
                } => {
                    info!(%flow, %version, %node, kind, "ivr step");
                    ringer.record.fact("ivr step", |b, t| {
                        b.ivr_step(t, &flow, &version, &node, kind)
                    });
                    None
                }
                Action::Blocked => {
                    warn!(caller = %ringer.caller, "caller is on the block list");
                    ringer.record.note("blocked", |b| b.blocked());
                    None
                }
                Action::SurveyScore {
                    dimension,
                    score,
                    key,
                } => {
                    info!(%dimension, score, %key, "survey answer");
                    ringer
                        .record
                        .fact("survey", |b, t| b.survey_result(t, &dimension, score, key));
                    None
                }
                Action::Enqueue {
                    group,
                    priority,
                    max_wait_secs,
                } => {
                    let wait = IvrWait {
                        max_wait: max_wait_secs.map(|s| Duration::from_secs(u64::from(s))),
                    };
                    ringer
                        .record
                        .fact("agent requested", |b, t| b.agent_requested(t));
                    // The agent's screen pop shows what the IVR learnt.
                    let vars = interp.vars().clone();
                    ringer.record.note("ivr vars", |b| b.set_ivr_vars(vars));
                    let target = Dest::Queue(&group, priority, wait);
                    match connect(ctx, ringer, &mut voice, &mut parts, target, true).await {
                        Connect::CallerGone => {
                            over = Some(Outcome::CallerCancelled);
                            break;
                        }
                        Connect::CallbackRequested => {
                            over = Some(Outcome::CallbackRequested);
                            break;
                        }
                        Connect::Failed(outcome) => Some(Event::QueueResult(outcome)),
                        Connect::Talked { agent, end } => {
                            info!(
                                %agent,
                                recording = ?end.recording.as_ref().map(|m| m.path.display().to_string()),
                                "agent conversation over"
                            );
                            match end.caller_continues {
                                true => {
                                    // Tell the flow the agent answered, then left.
                                    pending.extend(interp.handle(
                                        Event::QueueResult(QueueOutcome::Answered { agent }),
                                        moment(),
                                        env.as_ref(),
                                    ));
                                    Some(Event::AgentHungUp)
                                }
                                false => {
                                    over = Some(Outcome::Answered);
                                    break;
                                }
                            }
                        }
                    }
                }
                Action::Transfer(target) => {
                    if !matches!(target, TransferTarget::Number { .. }) {
                        ringer
                            .record
                            .fact("agent requested", |b, t| b.agent_requested(t));
                    }
                    let how = match &target {
                        TransferTarget::Agent(a) => Dest::Agent(a),
                        TransferTarget::Group(g) => Dest::Queue(g, 0, IvrWait::default()),
                        TransferTarget::Number { number, trunk } => Dest::Number(
                            number,
                            trunk.clone().or_else(|| ctx.tenant_trunk(&parts.tenant)),
                        ),
                    };
                    match connect(ctx, ringer, &mut voice, &mut parts, how, false).await {
                        Connect::CallerGone => {
                            over = Some(Outcome::CallerCancelled);
                            break;
                        }
                        Connect::CallbackRequested => {
                            over = Some(Outcome::CallbackRequested);
                            break;
                        }
                        Connect::Talked { .. } => {
                            over = Some(Outcome::Answered);
                            break;
                        }
                        Connect::Failed(_) => Some(Event::TransferResult { ok: false }),
                    }
                }
                Action::RecordVoicemail {
                    beep,
                    max_secs,
                    silence_secs,
                } => {
                    let limits = (beep, max_secs, silence_secs);
                    start_voicemail(ringer, &mut voice, &ivr, &parts, limits);
                    None
                }
                Action::Hangup { reason } => {
                    hang_up(ringer, &mut voice, reason).await;
                    over = Some(Outcome::FlowEnded(reason.as_str().to_string()));
                    break;
                }
            };
            if let Some(ev) = feedback {
                pending.extend(interp.handle(ev, moment(), env.as_ref()));
            }
        }
        if let Some(o) = over {
            break o;
        }
        if interp.is_finished() {
            // Finished without hanging up (a transfer took the call).
            reclaim(ringer, &mut voice).await;
            break Outcome::Answered;
        }
        // Wait for something to happen.
        let deadline = timer.map(|(_, at)| at);
        let event = tokio::select! {
            ev = player_rx.recv() => match ev {
                Some(PlayerEvent::Key(k)) => Some(Event::Key(k)),
                Some(PlayerEvent::Finished(_)) => {
                    voice.left = voice.left.saturating_sub(1);
                    (voice.left == 0).then_some(Event::PromptFinished)
                }
                Some(PlayerEvent::Interrupted(_)) => {
                    voice.left = 0;
                    Some(Event::PromptInterrupted)
                }
                Some(PlayerEvent::Voicemail { path, secs }) => Some(match path {
                    Some(path) => {
                        note_voicemail(ringer, &ivr, &path, secs);
                        Event::VoicemailSaved { path, secs }
                    }
                    None => Event::VoicemailEmpty,
                }),
                None => None,
            },
            ev = ringer.events.recv() => match ev {
                Some((key, LegEvent::Ended(_))) if &key == ringer.inbound.key() => {
                    info!("caller hung up in the flow");
                    interp.handle(Event::CallerHungUp, moment(), env.as_ref());
                    reclaim(ringer, &mut voice).await;
                    // A caller who hangs up while recording leaves the
                    // message: the player reported it as it stopped.
                    while let Ok(ev) = player_rx.try_recv() {
                        if let PlayerEvent::Voicemail { path: Some(path), secs } = ev {
                            note_voicemail(ringer, &ivr, &path, secs);
                        }
                    }
                    ringer.inbound.forget();
                    break Outcome::CallerCancelled;
                }
                Some((key, LegEvent::Info { content_type, body, responder })) if &key == ringer.inbound.key() => {
                    responder.respond(200, vec![], None).await;
                    let parsed = crate::media::dtmf::parse_info_body(
                        content_type.as_deref().unwrap_or(""),
                        &String::from_utf8_lossy(&body),
                    );
                    if let (Ok(info), Some(p)) = (parsed, &voice.player) {
                        p.info_key(info.key);
                    }
                    None
                }
                Some(_) => None,
                None => {
                    reclaim(ringer, &mut voice).await;
                    break Outcome::CallerCancelled;
                }
            },
            _ = sleep_until(deadline) => {
                let id = timer.take().map(|(id, _)| id);
                id.map(Event::Timer)
            }
            _ = ctx.shutdown.cancelled() => {
                reclaim(ringer, &mut voice).await;
                ringer.record.end_by_system("shutdown", (!ringer.answered).then_some(503), false);
                if ringer.answered {
                    ringer.inbound.bye().await;
                } else {
                    ringer.inbound.reject(503);
                }
                ringer.inbound.forget();
                break Outcome::CallerCancelled;
            }
        };
        if let Some(ev) = event {
            pending.extend(interp.handle(ev, moment(), env.as_ref()));
        }
    };
    info!(
        flow = %interp.current_flow(),
        version = %interp.version(),
        path = ?interp.path(),
        vars = ?interp.vars(),
        survey = ?interp.survey_scores(),
        "flow over"
    );
    let vars = interp.vars().clone();
    let confidential = vars
        .get("confidential")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
    ringer.record.note("ivr vars", |b| b.set_ivr_vars(vars));
    if confidential {
        ringer
            .record
            .note("confidential", |b| b.set_confidential(true));
    }
    outcome
}

/// Answer the caller (once) and start the player on its ports.
fn answer(ringer: &mut Ringer<'_>, voice: &mut Voice) -> bool {
    if !ringer.answered {
        if let Err(e) = ringer.inbound.answer(ringer.a_answer.clone()) {
            warn!(error = %e, "caller left before the flow answered");
            return false;
        }
        ringer.answered = true;
    }
    ensure_player(ringer, voice)
}

fn ensure_player(ringer: &mut Ringer<'_>, voice: &mut Voice) -> bool {
    if voice.player.is_some() {
        return true;
    }
    voice.player = Some(ringer.media.play(voice.events.clone()));
    true
}

/// Stop the player and give the caller's media back to its session.
/// The call's record names a saved voicemail (its path below the
/// voicemail root, as the API serves it).
fn note_voicemail(ringer: &mut Ringer<'_>, ivr: &IvrSnapshot, path: &str, secs: u32) {
    let p = std::path::Path::new(path);
    let shown = p
        .strip_prefix(&ivr.voicemail_dir)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned();
    let ms = u64::from(secs) * 1000;
    ringer
        .record
        .fact("voicemail", |b, t| b.voicemail_saved(t, &shown, ms));
}

async fn reclaim(ringer: &mut Ringer<'_>, voice: &mut Voice) {
    voice.left = 0;
    if let Some(p) = voice.player.take() {
        ringer.media.end_play(p).await;
    }
}

/// Play a batch of prompts; `Some(PromptFinished)` at once when none of
/// them can be played (validation makes that rare: a file deleted since).
fn play(
    ringer: &mut Ringer<'_>,
    voice: &mut Voice,
    library: &PromptLibrary,
    names: &[String],
    interruptible: bool,
) -> Option<Event> {
    if !answer(ringer, voice) {
        return None;
    }
    let prompts: Vec<_> = names
        .iter()
        .filter_map(|n| {
            let p = library.get(n);
            if p.is_none() {
                warn!(prompt = %n, "prompt not loaded: skipped");
            }
            p
        })
        .collect();
    let player = voice.player.as_ref()?;
    player.interrupt_on_key(interruptible);
    let mut it = prompts.into_iter();
    let Some(first) = it.next() else {
        return Some(Event::PromptFinished);
    };
    player.play(first);
    voice.left = 1;
    for p in it {
        player.queue(p);
        voice.left += 1;
    }
    None
}

async fn hang_up(ringer: &mut Ringer<'_>, voice: &mut Voice, reason: HangupReason) {
    info!(reason = reason.as_str(), "flow hangs up");
    reclaim(ringer, voice).await;
    if ringer.answered {
        ringer.inbound.bye().await;
    } else {
        // Not answered yet (a blocked caller, a closed line without
        // prompts): refuse instead of answering just to hang up.
        let code = if reason == HangupReason::Blocked {
            603
        } else {
            480
        };
        ringer.inbound.reject(code);
    }
    ringer.inbound.forget();
}

enum Dest<'a> {
    Queue(&'a str, u8, IvrWait),
    Agent(&'a str),
    Number(&'a str, Option<String>),
}

/// Ring `target` with the caller's media parked, then bridge whoever
/// answers.
async fn connect(
    ctx: &Arc<CallContext>,
    ringer: &mut Ringer<'_>,
    voice: &mut Voice,
    parts: &mut Parts,
    target: Dest<'_>,
    keep_caller: bool,
) -> Connect {
    reclaim(ringer, voice).await;
    if let Err(e) = super::converse::fresh_b_side(ctx, ringer, parts).await {
        warn!(error = %e, "no RTP ports to connect the caller");
        return Connect::Failed(QueueOutcome::Overflow);
    }
    let (attempt, who) = match target {
        Dest::Queue(group, priority, wait) => {
            let Some(queues) = &ctx.queues else {
                return Connect::Failed(QueueOutcome::Closed);
            };
            // Nobody of the group signed in: the flow's on_closed.
            if queues.staffed(group).await == Some(false) {
                info!(%group, "nobody of the group is signed in");
                return Connect::Failed(QueueOutcome::Closed);
            }
            (
                ringer.ring_queue(group, priority, Some(wait)).await,
                format!("group {group}"),
            )
        }
        Dest::Agent(agent) => (
            ringer
                .ring_agents(Ringing::Sequential, &[agent.to_string()])
                .await,
            agent.to_string(),
        ),
        Dest::Number(number, Some(trunk)) => (
            ringer.ring_external(number, &trunk).await,
            number.to_string(),
        ),
        Dest::Number(number, None) => {
            warn!(%number, "no trunk to transfer through");
            return Connect::Failed(QueueOutcome::Closed);
        }
    };
    let connected = match attempt {
        Ok(c) => c,
        Err(Outcome::CallerCancelled) => {
            ringer.inbound.forget();
            return Connect::CallerGone;
        }
        Err(Outcome::CallbackRequested) => {
            ringer.inbound.forget();
            return Connect::CallbackRequested;
        }
        Err(Outcome::QueueEnded { full }) => {
            return Connect::Failed(if full {
                QueueOutcome::Overflow
            } else {
                QueueOutcome::Timeout
            })
        }
        Err(other) => {
            info!(?other, %who, "not reached");
            return Connect::Failed(QueueOutcome::Timeout);
        }
    };
    // Boxed: the conversation is most of a flow's future and only one
    // stage of it (issue 16, "Memory per call").
    Box::pin(converse(
        ctx,
        ringer,
        parts,
        connected,
        who,
        keep_caller,
        Some(IvrWait::default()),
    ))
    .await
}

/// Record a voicemail: `(beep, max_secs, silence_secs)` from the flow.
fn start_voicemail(
    ringer: &mut Ringer<'_>,
    voice: &mut Voice,
    ivr: &IvrSnapshot,
    parts: &Parts,
    (beep, max_secs, silence_secs): (bool, u32, u32),
) {
    if !answer(ringer, voice) {
        return;
    }
    let date = crate::util::local_date(crate::util::unix_now(), ivr.utc_offset_minutes);
    let path = crate::media::recorder::recording_path(
        &ivr.voicemail_dir,
        &parts.tenant,
        date,
        &parts.call_id,
    );
    if let Some(p) = &voice.player {
        p.record_voicemail(
            path,
            crate::media::voicemail::VoicemailOptions::new(
                Duration::from_secs(u64::from(max_secs)),
                Duration::from_secs(u64::from(silence_secs)),
            )
            .sealed_with(ivr.voicemail_seal.clone()),
            beep,
        );
    }
}
