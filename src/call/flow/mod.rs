//! A call driven by an IVR flow (IVR issue §3): the shell around the pure
//! [`Interpreter`]. It turns the interpreter's actions into SIP and media
//! (answer, prompts through the caller's [`Player`], timers, queueing in
//! the ACD, transfers to an agent or through a trunk, voicemail, hang-up)
//! and feeds back what happened (prompt finished or cut by a key, keys from
//! RFC 4733 / in-band tones / SIP INFO, timers, queue and transfer results,
//! the agent or the caller hanging up). An `http` node's request (IVR
//! lookups, issue 18 §2) runs in a task of its own (`lookup`), its answer
//! fed back like any other news; the call's lookups end with it.
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

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{info, warn, Instrument};

use super::converse::{dial, Connect, Parts};
use super::ringing::Ringer;
use super::{sleep_until, CallContext, Outcome, ShellClock};
use crate::ivr::{CallFacts, Environment, FlowSet, HttpOutcome, Interpreter};
use crate::media::player::{Player, PlayerEvent};
use crate::media::prompts::PromptLibrary;
use crate::sip::{Leg, LegEvent};
use core::{Connected, Dest, Fact, FlowCore, Input, Output};

pub mod core;
mod lookup;

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

/// The caller's prompt player and where its news arrives.
struct Voice {
    player: Option<Player>,
    events: mpsc::UnboundedSender<PlayerEvent>,
    news: mpsc::UnboundedReceiver<PlayerEvent>,
}

/// Drive the call through `route`'s flow until it hangs up, the caller
/// does, or a transfer hands the call over for good: the shell around the
/// pure [`FlowCore`], carrying out its outputs and feeding back what
/// happened.
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
    let interp = match Interpreter::new(ivr.flows.clone(), &route.flow, facts) {
        Ok(i) => i,
        Err(e) => {
            warn!(error = %e, "flow cannot start: 500");
            ringer.inbound.reject(500);
            ringer.inbound.forget();
            return Outcome::Rejected(500);
        }
    };
    info!(flow = %interp.current_flow(), version = %interp.version(), "flow starts");
    let (events, news) = mpsc::unbounded_channel();
    let mut voice = Voice {
        player: None,
        events,
        news,
    };
    let clock = ShellClock::start();
    // The call's lookups in flight; dropped (aborted) when the call ends.
    let mut lookups: JoinSet<(u64, HttpOutcome)> = JoinSet::new();
    let mut core = FlowCore::start(
        interp,
        ivr.env.clone(),
        ivr.prompts.clone(),
        ringer.answered,
        clock.now(),
    );
    let outcome = loop {
        while let Some(output) = core.poll_output() {
            let mut shell = Shell {
                ctx,
                ringer: &mut *ringer,
                voice: &mut voice,
                ivr: &ivr,
                parts: &mut parts,
                clock: &clock,
                lookups: &mut lookups,
            };
            shell.execute(output, &mut core).await;
        }
        if let Some(outcome) = core.outcome() {
            break outcome.clone();
        }
        let deadline = core.poll_timeout().map(|t| clock.instant(t));
        tokio::select! {
            Some(news) = voice.news.recv() => core.handle_input(clock.now(), Input::Player(news)),
            ev = ringer.events.recv() => match ev {
                Some((key, LegEvent::Ended(_))) if &key == ringer.inbound.key() => {
                    info!("caller hung up in the flow");
                    core.handle_input(clock.now(), Input::CallerHungUp);
                }
                Some((key, LegEvent::Info { content_type, body, responder })) if &key == ringer.inbound.key() => {
                    responder.respond(200, vec![], None).await;
                    let parsed = crate::media::dtmf::parse_info_body(
                        content_type.as_deref().unwrap_or(""),
                        &String::from_utf8_lossy(&body),
                    );
                    if let Ok(info) = parsed {
                        core.handle_input(clock.now(), Input::InfoKey(info.key));
                    }
                }
                Some(_) => {}
                None => core.handle_input(clock.now(), Input::CallerHungUp),
            },
            Some(done) = lookups.join_next(), if !lookups.is_empty() => {
                if let Ok((id, outcome)) = done {
                    core.handle_input(clock.now(), Input::Lookup { id, outcome });
                }
            }
            () = sleep_until(deadline) => core.handle_timeout(clock.now()),
            () = ctx.shutdown.cancelled() => core.handle_input(clock.now(), Input::Shutdown),
        }
    };
    let interp = core.interpreter();
    if let Outcome::FlowEnded(reason) = &outcome {
        info!(%reason, "flow hangs up");
    }
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

/// What carries out the core's outputs.
struct Shell<'s, 'r> {
    ctx: &'s Arc<CallContext>,
    ringer: &'s mut Ringer<'r>,
    voice: &'s mut Voice,
    ivr: &'s IvrSnapshot,
    parts: &'s mut Parts,
    clock: &'s ShellClock,
    lookups: &'s mut JoinSet<(u64, HttpOutcome)>,
}

impl Shell<'_, '_> {
    async fn execute(&mut self, output: Output, core: &mut FlowCore) {
        let ringer = &mut *self.ringer;
        match output {
            Output::Answer => {
                let ok = match ringer.inbound.answer(ringer.a_answer.clone()) {
                    Ok(()) => true,
                    Err(e) => {
                        warn!(error = %e, "caller left before the flow answered");
                        false
                    }
                };
                ringer.answered |= ok;
                core.handle_input(self.clock.now(), Input::Answered(ok));
            }
            Output::StartPlayer => {
                self.voice.player = Some(ringer.media.play(self.voice.events.clone()));
            }
            Output::Play {
                prompts,
                interruptible,
            } => {
                if let Some(player) = &self.voice.player {
                    player.interrupt_on_key(interruptible);
                    let mut loaded = prompts.iter().filter_map(|n| self.ivr.prompts.get(n));
                    if let Some(first) = loaded.next() {
                        player.play(first);
                    }
                    for p in loaded {
                        player.queue(p);
                    }
                }
            }
            Output::StopPlayback => {
                if let Some(p) = &self.voice.player {
                    p.stop();
                }
            }
            Output::InfoKey(key) => {
                if let Some(p) = &self.voice.player {
                    p.info_key(key);
                }
            }
            Output::RecordVoicemail {
                beep,
                max_secs,
                silence_secs,
            } => self.start_voicemail(beep, max_secs, silence_secs),
            Output::EndPlay => {
                if let Some(p) = self.voice.player.take() {
                    ringer.media.end_play(p).await;
                }
                // What it said before it stopped (a voicemail it finished,
                // a key just pressed): the core keeps what still counts.
                while let Ok(news) = self.voice.news.try_recv() {
                    core.handle_input(self.clock.now(), Input::Player(news));
                }
            }
            Output::Connect { dest, keep_caller } => {
                let result = connect(self.ctx, ringer, self.parts, dest, keep_caller).await;
                core.handle_input(self.clock.now(), Input::Connected(result));
            }
            Output::Bye => ringer.bye_owed = true,
            Output::Reject(code) => ringer.inbound.reject(code),
            Output::Forget => ringer.inbound.forget(),
            Output::Record(fact) => self.record(fact),
            Output::Lookup(request) => {
                let send = lookup::send(request, self.ctx.counters.clone());
                self.lookups
                    .spawn(send.instrument(tracing::Span::current()));
            }
        }
    }

    fn record(&mut self, fact: Fact) {
        let record = self.ringer.record;
        match fact {
            Fact::Step {
                flow,
                version,
                node,
                kind,
            } => {
                info!(%flow, %version, %node, kind, "ivr step");
                record.fact("ivr step", |b, t| {
                    b.ivr_step(t, &flow, &version, &node, kind)
                });
            }
            Fact::Blocked => {
                warn!(caller = %self.ringer.caller, "caller is on the block list");
                record.note("blocked", |b| b.blocked());
            }
            Fact::Survey {
                dimension,
                score,
                key,
            } => {
                info!(%dimension, score, %key, "survey answer");
                record.fact("survey", |b, t| b.survey_result(t, &dimension, score, key));
            }
            Fact::AgentRequested => record.fact("agent requested", |b, t| b.agent_requested(t)),
            Fact::IvrVars(vars) => record.note("ivr vars", |b| b.set_ivr_vars(vars)),
            Fact::Voicemail { path, secs } => {
                // Named by its path below the voicemail root, as the API
                // serves it.
                let p = std::path::Path::new(&path);
                let shown = p
                    .strip_prefix(&self.ivr.voicemail_dir)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned();
                let ms = u64::from(secs) * 1000;
                record.fact("voicemail", |b, t| b.voicemail_saved(t, &shown, ms));
            }
            Fact::Shutdown { refused } => record.end_by_system("shutdown", refused, false),
        }
    }

    /// Record a voicemail into the call's file below the voicemail root.
    fn start_voicemail(&mut self, beep: bool, max_secs: u32, silence_secs: u32) {
        let ivr = self.ivr;
        let date = crate::util::local_date(crate::util::unix_now(), ivr.utc_offset_minutes);
        let path = crate::media::recorder::recording_path(
            &ivr.voicemail_dir,
            &self.parts.tenant,
            date,
            &self.parts.call_id,
        );
        if let Some(p) = &self.voice.player {
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
}

/// Ring `dest` (the caller's media given back to its session), then
/// bridge whoever answers until the conversation is over (`converse`).
async fn connect(
    ctx: &Arc<CallContext>,
    ringer: &mut Ringer<'_>,
    parts: &mut Parts,
    dest: Dest,
    keep_caller: bool,
) -> Connected {
    // Boxed: the conversation is most of a flow's future and only one
    // stage of it (issue 16, "Memory per call").
    match Box::pin(dial(ctx, ringer, parts, dest, keep_caller)).await {
        Connect::CallerGone => Connected::CallerGone,
        Connect::CallbackRequested => Connected::CallbackRequested,
        Connect::Failed(q) => Connected::Failed(q),
        Connect::Talked { agent, end } => {
            info!(
                %agent,
                recording = ?end.recording.as_ref().map(|m| m.path.display().to_string()),
                "agent conversation over"
            );
            Connected::Talked {
                agent,
                caller_continues: end.caller_continues,
            }
        }
    }
}
