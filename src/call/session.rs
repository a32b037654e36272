//! The connected part of a call: the relay runs, re-INVITEs from one leg
//! are reflected on the other (RFC 3264 §8: hold with `a=sendonly` /
//! `a=inactive` / `c=0.0.0.0`, address changes), BYE from either side ends
//! both, and a call whose RTP stops or whose session refresh fails
//! (RFC 4028 §10: 408/481 to a refresh) is cleared, so no call hangs forever.

use std::net::SocketAddr;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::record::CallRecord;
use super::CallContext;
use crate::events::model::{ConferenceChange, Party, PartyRole};
use crate::events::{EndCause, HangupParty};
use crate::media::mixer::{Mode, ParticipantId, Role};
use crate::media::ports::PortPair;
use crate::media::recorder::{RecordingHandle, RecordingMeta};
use crate::media::relay::{self, LegFormat, RelayEvent, RelayHandle, Side};
use crate::media::sdp::{self, AudioCodec, Direction, LocalMedia, Negotiated, SessionDescription};
use crate::sip::stack::{InDialogResponder, LegEventSender, PendingInvite};
use crate::sip::{InboundLeg, Leg, LegEvent, LegEvents, OutboundLeg};

/// The connected call between side A (the caller: the carrier's leg, or the
/// citizen dialled back) and side B (the agent or external party).
pub(super) struct Session<'a, A: Leg, B: Leg> {
    pub ctx: &'a CallContext,
    pub a: &'a A,
    pub b: B,
    pub events: LegEvents,
    pub a_ports: Option<PortPair>,
    pub b_ports: Option<PortPair>,
    pub a_remote: SocketAddr,
    pub b_remote: SocketAddr,
    pub a_local: LocalMedia,
    pub b_local: LocalMedia,
    /// What side A's offer/answer negotiated.
    pub a_neg: Negotiated,
    /// What side B's offer/answer negotiated (may differ: the relay
    /// transcodes).
    pub b_neg: Negotiated,
    pub a_answer_sdp: SessionDescription,
    /// Record the call (stereo WAV: A left, B right).
    pub recording: Option<RecordingHandle>,
    /// Side A's RTP stream as prompts left it (queued callers).
    pub a_continuation: Option<crate::media::player::Continuation>,
    /// The agent holds and the caller hears music.
    pub music_on_hold: bool,
    /// When the agent hangs up first, keep the caller on the line and hand
    /// its media back (an IVR flow goes on, e.g. to the survey).
    pub keep_caller: bool,
    /// Whoever runs the call puts the caller through a blind transfer
    /// (inbound calls); outbound calls and callbacks refuse one rather than
    /// leave the citizen's leg up with nobody on it.
    pub blind_transfer: bool,
    /// The SIP user of the agent's phone on side B: supervisors reach the
    /// call through it (`*31`/`*32`/`*33` + user).
    pub agent_device: Option<String>,
    /// The sender of this call's leg events (new legs, e.g. supervisors,
    /// report on it).
    pub events_tx: Option<LegEventSender>,
    /// The call's record: told about holds and how the conversation ended.
    pub record: &'a CallRecord,
    /// The agent on side B (ACD agent id, or the phone's user when rung
    /// directly; `None` for an external number).
    pub agent: Option<String>,
    /// The agent came from the ACD: their after-call work ends the record.
    pub acd: bool,
    /// Side B holds the caller.
    pub held: bool,
    /// The phone of the agent being consulted (attended transfer).
    pub consult_device: Option<String>,
    /// The ACD's id of this call (queued calls): an attended transfer
    /// releases the first agent in the ACD at once.
    pub acd_call: Option<crate::acd::CallId>,
    /// The ACD's id of the call once an attended transfer handed it to
    /// another agent directly: that agent is busy in the ACD until it ends.
    pub direct_call: Option<crate::acd::CallId>,
    /// The citizen's number (a consultation of a skill group queues with
    /// it, as the queued caller).
    pub caller: String,
}

/// An attended transfer to a skill group: the consultation waits in the
/// group's ACD queue like a caller, and the agents the ACD offers it to
/// are rung (all on one set of ports) until one answers and joins as the
/// consulted party. Answered, it is that agent's ACD call: talking until
/// it ends, then after-call work.
struct GroupConsult {
    group: String,
    call: crate::acd::CallId,
    queues: super::queue::Queues,
    /// The ACD's news about the consultation (`None` once it is gone).
    news: Option<mpsc::UnboundedReceiver<super::queue::QueueNews>>,
    offers: super::ringing::AcdOffers,
    /// The INVITE every offered phone gets (the consultation's offer).
    template: crate::sip::stack::OutboundInvite,
    offer: SessionDescription,
    /// The consultation's ports, until a phone answers.
    ports: Option<PortPair>,
    /// The agent who answered.
    answered: Option<String>,
}

impl GroupConsult {
    /// The consultation leaves the ACD: an answered one ends (the agent's
    /// after-call work), a waiting or ringing one is given up (never a
    /// missed call) and its phones stop.
    fn withdraw(mut self) {
        self.offers.stop(None);
        let call = self.call;
        self.queues.input(if self.answered.is_some() {
            crate::acd::Input::CallEnded { call }
        } else {
            crate::acd::Input::CallerHungUp { call }
        });
        info!(%call, group = %self.group, "consultation left the ACD");
    }
}

/// The next news about a consultation of a group, or never.
async fn group_news(group: &mut Option<GroupConsult>) -> Option<super::queue::QueueNews> {
    match group.as_mut().and_then(|g| g.news.as_mut()) {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// An attended transfer in progress or done.
#[derive(Debug, Default)]
struct Consult {
    /// The party being consulted (its label), the caller on hold.
    with: Option<String>,
    /// The consulted party took the call; the first agent has left.
    completed_to: Option<String>,
}

/// The relay's view of a leg, as the call record carries it.
fn cdr_quality(leg: &str, q: &relay::LegQuality) -> crate::events::LegQuality {
    crate::events::LegQuality {
        leg: leg.to_string(),
        received: q.received,
        lost: q.lost,
        loss_fraction: 0.0, // computed by `sanitise`
        jitter_ms: q.jitter_ms,
        peer_fraction_lost: q.peer_fraction_lost,
        peer_jitter_ms: q.peer_jitter_ms,
        rtt_ms: q.rtt_ms,
        rtcp_sent: q.rtcp_sent,
        rtcp_received: q.rtcp_received,
    }
}

/// How a supervisor joins an agent's call (REQUIREMENTS §3 monitoring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervision {
    /// Hear both sides, heard by nobody (监听).
    Listen,
    /// Heard by the agent only (耳语).
    Whisper,
    /// Heard by everyone (强插).
    Barge,
}

impl Supervision {
    /// The mixer mode (whispers go to side B, the agent).
    fn mode(self) -> Mode {
        match self {
            Supervision::Listen => Mode::Listen,
            Supervision::Whisper => Mode::Whisper {
                to: relay::OTHER_SIDE,
            },
            Supervision::Barge => Mode::Barge,
        }
    }

    /// The key a supervisor presses to switch: 1 listen, 2 whisper, 3 barge.
    fn from_key(key: char) -> Option<Self> {
        match key {
            '1' => Some(Supervision::Listen),
            '2' => Some(Supervision::Whisper),
            '3' => Some(Supervision::Barge),
            _ => None,
        }
    }
}

/// What other tasks ask of a connected call.
pub enum SessionCommand {
    /// Hang up both legs now (a supervisor's force-release, or the agent's
    /// hang-up button).
    Hangup {
        /// Who asked (for the log).
        by: String,
    },
    /// Blind transfer (盲转): the agent leaves, the caller stays and is
    /// put through to `target` by whoever runs the call.
    Transfer {
        /// Where to.
        target: crate::ivr::TransferTarget,
        /// Who asked (for the log).
        by: String,
        /// Refused where the call cannot put the caller through (an
        /// outbound call or a callback: their drivers have no transfer).
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// The agent leaves and the caller goes on in the IVR flow (its
    /// `after_agent` survey); refused for calls without a flow after the
    /// agent.
    ToSurvey {
        /// Whether the call has one.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// The agent puts the caller on hold (music on hold) or takes them
    /// back; the reply says whether it happened.
    Hold {
        /// Hold (true) or resume (false).
        on: bool,
        /// The outcome.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Add a third party (three-way call, 三方通话): ring it; when it
    /// answers everyone hears everyone.
    AddParty {
        /// Whom.
        target: PartyTarget,
        /// Sent once it is rung (or why not).
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Attended transfer, step 1 (咨询): the caller is put on hold (music,
    /// and kept out of the mix) and `target` is rung to talk with the
    /// agent.
    Consult {
        /// Whom.
        target: PartyTarget,
        /// Sent once it is rung (or why not).
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Attended transfer to a skill group, step 1: the caller is put on
    /// hold and a consultation enters the group's ACD queue; the agent
    /// the ACD picks is rung to talk with the agent.
    ConsultGroup {
        /// The group's id.
        group: String,
        /// Sent once the consultation is queued (or why not: the ACD's
        /// reason).
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Attended transfer, step 2: the consulted party takes the caller and
    /// the agent leaves.
    CompleteConsult {
        /// Whether it happened.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// A supervisor on the call (joined by the API) takes it over: they
    /// become the caller's party and the agent leaves (强接).
    TakeOver {
        /// The supervisor's user name (as they joined).
        supervisor: String,
        /// Their agent id (names them in the record).
        label: String,
        /// Their phone's SIP user (supervisors then reach the call there).
        device: String,
        /// Whether it happened.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Attended transfer abandoned: the consulted party is dropped and the
    /// caller is back with the agent.
    CancelConsult {
        /// Whether it happened.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Drop a third party from the call.
    DropParty {
        /// Its label (number or agent id).
        label: String,
        /// Whether it was on the call.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Ring a supervisor's phone; when it answers it joins the call as
    /// `mode` (the API's listen / whisper / barge).
    DialSupervisor {
        /// The supervisor's phone's registrations.
        contacts: Vec<super::Contact>,
        /// How they join.
        mode: Supervision,
        /// Their user name (for the log).
        supervisor: String,
        /// Sent once the phone is rung (or why not).
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// A supervisor dialled in (their INVITE, not yet answered).
    Supervise {
        /// The supervisor's INVITE (boxed: the channel's slots stay small).
        invite: Box<PendingInvite>,
        /// How they join.
        mode: Supervision,
        /// Their SIP user (for the log).
        supervisor: String,
    },
}

/// A supervisor's leg: they dialled in (`*31`…), or hotline rang them (API).
enum SupLeg {
    In(Box<InboundLeg>),
    Out(OutboundLeg),
}

impl SupLeg {
    fn key(&self) -> &crate::sip::LegKey {
        match self {
            SupLeg::In(l) => l.key(),
            SupLeg::Out(l) => l.key(),
        }
    }

    async fn bye(&self) {
        match self {
            SupLeg::In(l) => l.bye().await,
            SupLeg::Out(l) => l.bye().await,
        }
    }

    fn forget(&self) {
        match self {
            SupLeg::In(l) => l.forget(),
            SupLeg::Out(l) => l.forget(),
        }
    }
}

/// A supervisor's phone (or a third party) hotline is ringing.
struct Dialing {
    leg: OutboundLeg,
    ports: PortPair,
    offer: SessionDescription,
    /// `None`: a third party joining as an ordinary member.
    mode: Option<Supervision>,
    user: String,
}

/// Where a third party of a three-way call (or of a consultation) is rung.
#[derive(Debug, Clone)]
pub struct PartyTarget {
    /// The SIP user of its phone, when it is an agent.
    pub device: Option<String>,
    /// Its number or agent id (names it in the record and to drop it).
    pub label: String,
    /// The Request-URI.
    pub uri: String,
    /// Where to send the INVITE.
    pub destination: std::net::SocketAddr,
    /// Over TCP.
    pub tcp: bool,
}

/// A supervisor on the call.
struct Supervisor {
    leg: SupLeg,
    id: ParticipantId,
    user: String,
    answer: Vec<u8>,
    /// A conferenced party (three-way call), not a supervisor: its number
    /// or agent id.
    party: Option<String>,
}

/// How a connected call ended, for whoever runs the call on.
#[derive(Debug, Default)]
pub(super) struct SessionEnd {
    /// The finished recording.
    pub recording: Option<RecordingMeta>,
    /// The agent hung up and the caller is still on the line with these
    /// ports (only with `keep_caller`, or after a transfer).
    pub caller_media: Option<relay::LegMedia>,
    /// The agent transferred the caller here (with `caller_media`).
    pub transfer: Option<crate::ivr::TransferTarget>,
    /// The ACD was already told the (first) agent's conversation ended (an
    /// attended transfer): the owner must not tell it again.
    pub acd_released: bool,
}

/// Why the connected call ended.
#[derive(Debug)]
enum End {
    CallerHungUp,
    AgentHungUp,
    Silence,
    RefreshFailed,
    Shutdown,
    /// A supervisor or the agent's API released the call.
    Released,
    /// The agent transferred the caller (blind).
    Transfer(crate::ivr::TransferTarget),
}

/// The next command, or never when the call takes none.
async fn next_command(
    commands: &mut Option<mpsc::UnboundedReceiver<SessionCommand>>,
) -> Option<SessionCommand> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A supervisor pressed a key: 1 listen, 2 whisper, 3 barge.
async fn switch_mode(relay: &RelayHandle, s: &Supervisor, key: char) {
    let Some(how) = Supervision::from_key(key) else {
        return;
    };
    match relay.set_mode(s.id, how.mode()).await {
        Ok(()) => info!(supervisor = %s.user, mode = ?how, "supervisor mode"),
        Err(e) => warn!(error = %e, "supervisor mode change refused"),
    }
}

impl<A: Leg, B: Leg> Session<'_, A, B> {
    /// Run until the call ends.
    pub async fn run(&mut self) -> SessionEnd {
        let (relay_tx, mut relay_rx) = mpsc::unbounded_channel();
        let (Some(a), Some(b)) = (self.a_ports.take(), self.b_ports.take()) else {
            return SessionEnd::default();
        };
        let relay = relay::start(
            a,
            Some(self.a_remote),
            b,
            Some(self.b_remote),
            relay::RelayOptions {
                silence: self.ctx.rtp_timeout,
                recording: self.recording.take(),
                a_continuation: self.a_continuation.take(),
                a_format: LegFormat::from_negotiated(&self.a_neg),
                b_format: LegFormat::from_negotiated(&self.b_neg),
                b_role: None,
                cname: format!("hotline@{}", self.a_local.address),
                rtcp_interval: std::time::Duration::ZERO,
            },
            relay_tx,
        );
        info!(caller_rtp = %self.a_remote, agent_rtp = %self.b_remote, "connected");
        let refresh_every = if self.ctx.session_refresh.is_zero() {
            std::time::Duration::from_secs(365 * 24 * 3600)
        } else {
            self.ctx.session_refresh
        };
        let mut refresh =
            tokio::time::interval_at(tokio::time::Instant::now() + refresh_every, refresh_every);
        // Supervisors reach this call through the agent's phone user. (A
        // channel only for calls with an agent: each costs a block.)
        let mut commands = None;
        let registration = self.agent_device.clone().map(|device| {
            let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
            commands = Some(cmd_rx);
            let id: u64 = rand::random();
            self.ctx.live.insert(device.clone(), (id, cmd_tx.clone()));
            (device, id, cmd_tx)
        });
        let mut registration = registration;
        let mut consult = Consult::default();
        let mut acd_released = false;
        let mut sups: Vec<Supervisor> = Vec::new();
        let mut dialing: Vec<Dialing> = Vec::new();
        let mut group: Option<GroupConsult> = None;
        let end = loop {
            tokio::select! {
                ev = self.events.recv() => {
                    let Some((key, ev)) = ev else { break End::Shutdown };
                    if let Some(i) = sups.iter().position(|s| s.leg.key() == &key) {
                        self.supervisor_event(&relay, &mut sups, i, ev).await;
                        if let Some(main) = &consult.completed_to {
                            if !sups.iter().any(|s| s.party.as_ref() == Some(main)) {
                                break End::AgentHungUp;
                            }
                        } else if let Some(a) = group.as_ref().and_then(|g| g.answered.clone()) {
                            // The group's agent hung up during the
                            // consultation: their ACD call ends.
                            if !sups.iter().any(|s| s.party.as_ref() == Some(&a)) {
                                if let Some(g) = group.take() {
                                    g.withdraw();
                                }
                            }
                        }
                        continue;
                    }
                    if let Some(g) = group.as_mut().filter(|g| g.offers.contains(&key)) {
                        if let Some((s, device)) = self.group_leg_event(&relay, g, &key, ev, sups.len()).await {
                            consult.with = s.party.clone();
                            self.consult_device = device;
                            sups.push(s);
                        }
                        continue;
                    }
                    if let Some(i) = dialing.iter().position(|d| d.leg.key() == &key) {
                        if let Some(s) = self.dialing_event(&relay, &mut dialing, i, ev, sups.len()).await {
                            let joined = s.party.clone();
                            sups.push(s);
                            if let Some(label) = joined.filter(|l| consult.with.as_ref() != Some(l)) {
                                self.conference_changed(ConferenceChange::Joined, &label, &sups);
                            }
                        }
                        continue;
                    }
                    let side = if &key == self.a.key() {
                        Side::A
                    } else if &key == self.b.key() {
                        // The first agent left after an attended transfer.
                        if consult.completed_to.is_some() {
                            continue;
                        }
                        Side::B
                    } else {
                        continue;
                    };
                    match ev {
                        LegEvent::Ended(_) => break if side == Side::A { End::CallerHungUp } else { End::AgentHungUp },
                        LegEvent::Reoffer { sdp, responder } => self.reoffer(&relay, side, &sdp, responder).await,
                        LegEvent::Info { responder, .. } => responder.respond(200, vec![], None).await,
                        _ => {}
                    }
                }
                ev = relay_rx.recv() => {
                    match ev {
                        Some(RelayEvent::Silent) => break End::Silence,
                        Some(RelayEvent::Key { participant, key }) => {
                            if let Some(s) = sups.iter().find(|s| s.id == participant) {
                                switch_mode(&relay, s, key).await;
                            }
                        }
                        None => {}
                    }
                }
                news = group_news(&mut group) => {
                    if let Some(g) = group.as_mut() {
                        if !self.group_news(g, news) {
                            // The ACD let the consultation go: the caller
                            // is back.
                            group = None;
                            consult.with = None;
                            self.end_consult_hold(&relay);
                        }
                    }
                }
                _ = refresh.tick(), if consult.completed_to.is_none() => {
                    if let Some(which) = self.refresh_failed().await {
                        info!(leg = which, "refresh failed");
                        break End::RefreshFailed;
                    }
                }
                Some(cmd) = next_command(&mut commands) => match cmd {
                    SessionCommand::Supervise { invite, mode, supervisor } => {
                        if let Some(s) = self.supervise(&relay, *invite, mode, supervisor, sups.len()).await {
                            sups.push(s);
                        }
                    }
                    SessionCommand::Transfer { target, by, reply } => {
                        if !self.blind_transfer {
                            info!(%by, ?target, "blind transfer refused: an outbound call or a callback");
                            reply.send(Err("an outbound call or a callback cannot be blind-transferred; consult the target and complete the transfer instead".into())).ok();
                            continue;
                        }
                        reply.send(Ok(())).ok();
                        info!(%by, ?target, "blind transfer");
                        break End::Transfer(target);
                    }
                    SessionCommand::Hangup { by } => {
                        info!(%by, "call released through the API");
                        break End::Released;
                    }
                    SessionCommand::ToSurvey { reply } => {
                        if self.keep_caller {
                            reply.send(Ok(())).ok();
                            info!("agent sends the caller to the survey");
                            self.b.bye().await;
                            break End::AgentHungUp;
                        }
                        reply.send(Err("this call has no survey after the agent (its flow sets none)".into())).ok();
                    }
                    SessionCommand::Hold { on, reply } => {
                        reply.send(self.api_hold(&relay, on)).ok();
                    }
                    SessionCommand::Consult { target, reply } => {
                        let r = self.consult(&relay, &mut consult, target).await;
                        match r {
                            Ok(d) => {
                                dialing.push(d);
                                reply.send(Ok(())).ok();
                            }
                            Err(e) => {
                                reply.send(Err(e)).ok();
                            }
                        }
                    }
                    SessionCommand::ConsultGroup { group: g, reply } => {
                        match self.consult_group(&relay, &mut consult, g).await {
                            Ok(c) => {
                                group = Some(c);
                                reply.send(Ok(())).ok();
                            }
                            Err(e) => {
                                reply.send(Err(e)).ok();
                            }
                        }
                    }
                    SessionCommand::CancelConsult { reply } => {
                        let r = match consult.with.take() {
                            None => Err("no consultation in progress".to_string()),
                            Some(label) => {
                                if let Some(g) = group.take() {
                                    g.withdraw();
                                }
                                if let Some(i) = sups.iter().position(|s| s.party.as_ref() == Some(&label)) {
                                    let s = sups.remove(i);
                                    relay.leave(s.id);
                                    s.leg.bye().await;
                                    s.leg.forget();
                                }
                                for d in dialing.iter().filter(|d| d.user == label) {
                                    d.leg.hang_up().await;
                                }
                                dialing.retain(|d| d.user != label);
                                self.end_consult_hold(&relay);
                                info!(party = %label, "consultation cancelled: the caller is back");
                                Ok(())
                            }
                        };
                        reply.send(r).ok();
                    }
                    SessionCommand::TakeOver { supervisor, label, device, reply } => {
                        let r = match sups.iter_mut().find(|s| s.user == supervisor && s.party.is_none()) {
                            None => Err(format!("{supervisor} is not on the call")),
                            Some(_) if consult.with.is_some() || consult.completed_to.is_some() => {
                                Err("a transfer is in progress".to_string())
                            }
                            Some(s) => match relay.set_mode(s.id, Mode::Barge).await {
                                Ok(()) => {
                                    s.party = Some(label.clone());
                                    consult.with = Some(label);
                                    self.consult_device = Some(device);
                                    self.complete_consult(&relay, &mut consult, &sups, registration.as_mut(), None)
                                        .await
                                }
                                Err(e) => Err(e.to_string()),
                            },
                        };
                        if r.is_ok() {
                            acd_released = self.acd_call.take().is_some();
                            info!("the supervisor took the call over");
                        }
                        reply.send(r).ok();
                    }
                    SessionCommand::CompleteConsult { reply } => {
                        let to_group = group.as_ref().map(|g| g.group.clone());
                        let r = self
                            .complete_consult(&relay, &mut consult, &sups, registration.as_mut(), to_group)
                            .await;
                        if r.is_ok() {
                            acd_released = self.acd_call.take().is_some();
                        }
                        reply.send(r).ok();
                    }
                    SessionCommand::AddParty { target, reply } => {
                        let via = (target.destination, target.tcp);
                        match self.dial(&target.uri, via, None, target.label.clone()).await {
                            Ok(d) => {
                                dialing.push(d);
                                reply.send(Ok(())).ok();
                            }
                            Err(e) => {
                                reply.send(Err(e)).ok();
                            }
                        }
                    }
                    SessionCommand::DropParty { label, reply } => {
                        match sups.iter().position(|s| s.party.as_deref() == Some(label.as_str())) {
                            Some(i) => {
                                let s = sups.remove(i);
                                relay.leave(s.id);
                                s.leg.bye().await;
                                s.leg.forget();
                                self.conference_changed(ConferenceChange::Left, &label, &sups);
                                reply.send(Ok(())).ok();
                            }
                            None => {
                                reply.send(Err(format!("{label} is not on the call"))).ok();
                            }
                        }
                    }
                    SessionCommand::DialSupervisor { contacts, mode, supervisor, reply } => {
                        match self.dial_supervisor(contacts, mode, supervisor).await {
                            Ok(d) => {
                                dialing.push(d);
                                reply.send(Ok(())).ok();
                            }
                            Err(e) => {
                                reply.send(Err(e)).ok();
                            }
                        }
                    }
                },
                _ = self.ctx.shutdown.cancelled() => break End::Shutdown,
            }
        };
        if let Some((device, id, _)) = &registration {
            self.ctx.live.remove_if(device, |_, (i, _)| i == id);
        }
        for d in dialing.drain(..) {
            d.leg.hang_up().await;
        }
        for s in sups.drain(..) {
            info!(supervisor = %s.user, "call over: supervisor leaves");
            s.leg.bye().await;
            s.leg.forget();
        }
        let stats = &relay.stats;
        use std::sync::atomic::Ordering::Relaxed;
        let counters = &self.ctx.counters;
        counters
            .rtp_caller_to_agent
            .fetch_add(stats.a_to_b.load(Relaxed), Relaxed);
        counters
            .rtp_agent_to_caller
            .fetch_add(stats.b_to_a.load(Relaxed), Relaxed);
        info!(
            ?end,
            rtp_caller_to_agent = stats.a_to_b.load(Relaxed),
            rtp_agent_to_caller = stats.b_to_a.load(Relaxed),
            rtp_dropped = stats.dropped.load(Relaxed),
            "call over"
        );
        let keep = (self.keep_caller && matches!(end, End::AgentHungUp))
            || matches!(end, End::Transfer(_));
        match end {
            End::CallerHungUp => self.b.bye().await,
            End::AgentHungUp if keep => {}
            End::Transfer(_) => self.b.bye().await,
            End::AgentHungUp => self.a.bye().await,
            End::Silence | End::RefreshFailed | End::Shutdown | End::Released => {
                if matches!(end, End::Silence) {
                    warn!("no RTP for the timeout: clearing the call");
                }
                tokio::join!(self.a.bye(), self.b.bye());
            }
        }
        if !keep {
            self.a.forget();
        }
        self.b.forget();
        let mut report = if keep {
            relay.stop_keeping_caller().await
        } else {
            relay.stop().await
        };
        info!(caller = ?report.a, agent = ?report.b, "rtp quality");
        let meta = report.recording.take();
        if let Some(m) = &meta {
            info!(
                path = %m.path.display(),
                secs = m.duration.as_secs_f64(),
                bytes = m.bytes,
                sha256 = %m.sha256,
                dropped_chunks = m.dropped_chunks,
                "recording ready"
            );
        }
        self.tell_record(&end, keep, &report, meta.as_ref());
        // The consultation (or, completed, the call the group's agent took
        // over) leaves the ACD after the record waits for their after-call
        // work.
        if let Some(g) = group.take() {
            g.withdraw();
        }
        if let (Some(call), Some(q)) = (self.direct_call.take(), &self.ctx.queues) {
            q.input(crate::acd::Input::CallEnded { call });
        }
        SessionEnd {
            recording: meta,
            caller_media: report.caller_media.take(),
            transfer: match end {
                End::Transfer(t) => Some(t),
                _ => None,
            },
            acd_released,
        }
    }

    /// The record learns the recording, the RTP quality of both legs, who
    /// ended the conversation and whose after-call work to wait for.
    fn tell_record(
        &self,
        end: &End,
        keep: bool,
        report: &relay::RelayReport,
        meta: Option<&RecordingMeta>,
    ) {
        let record = self.record;
        if let (Some(m), Some(settings)) = (meta, &self.ctx.recordings) {
            let info = super::recording_info(settings, m);
            record.fact("recording ready", |b, t| b.recording_ready(t, info));
        }
        for (leg, q) in [("caller", &report.a), ("agent", &report.b)] {
            let q = cdr_quality(leg, q);
            record.note("rtp quality", |b| b.leg_quality(q));
        }
        match end {
            End::CallerHungUp => record.ended(HangupParty::Caller, EndCause::default()),
            End::AgentHungUp if keep => record.fact("agent hung up", |b, t| b.agent_hung_up(t)),
            End::AgentHungUp => record.ended(HangupParty::Agent, EndCause::default()),
            End::Silence => record.end_by_system("rtp-timeout", None, false),
            End::RefreshFailed => record.end_by_system("session-refresh-failed", None, false),
            End::Shutdown => record.end_by_system("shutdown", None, false),
            End::Released => record.end_by_system("released", None, false),
            End::Transfer(t) => {
                use crate::events::model::{TransferKind, TransferMode};
                let (kind, target) = match t {
                    // Agents by job number, as everywhere in the record.
                    crate::ivr::TransferTarget::Agent(a) => {
                        (TransferKind::Agent, self.ctx.agent_id_of(a))
                    }
                    crate::ivr::TransferTarget::Group(g) => (TransferKind::Group, g.clone()),
                    // Recorded when the number answers (the ringer does, as
                    // for the IVR's transfers); the agent is released now.
                    crate::ivr::TransferTarget::Number { .. } => {
                        record.fact("agent hung up", |b, t| b.agent_hung_up(t));
                        return self.tell_acw(record);
                    }
                };
                record.fact("transferred", |b, t| {
                    b.transferred(t, kind, &target, TransferMode::Blind)
                });
            }
        }
        self.tell_acw(record);
    }

    /// The record waits for the released agent's after-call work (ACD
    /// agents) or not (phones rung directly).
    fn tell_acw(&self, record: &CallRecord) {
        if let Some(agent) = &self.agent {
            if self.acd {
                record.await_acw(agent);
            } else {
                record.no_acw(agent);
            }
        }
    }

    /// A supervisor's INVITE: answer it on fresh ports and join the mix.
    async fn supervise(
        &mut self,
        relay: &RelayHandle,
        invite: PendingInvite,
        how: Supervision,
        user: String,
        index: usize,
    ) -> Option<Supervisor> {
        let Some(events_tx) = self.events_tx.clone() else {
            invite.reject(480, vec![]).await;
            return None;
        };
        let text = String::from_utf8_lossy(invite.request.body()).into_owned();
        let offer = match SessionDescription::parse(&text) {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, supervisor = %user, "unusable SDP from the supervisor: 488");
                invite.reject(488, vec![]).await;
                return None;
            }
        };
        let Ok(ports) = self.ctx.ports.allocate().await else {
            invite.reject(503, vec![]).await;
            return None;
        };
        let local = super::local_media(self.ctx, ports.port(), self.ctx.codecs.clone());
        let (answer, neg) = match sdp::negotiate_answer(&offer, &local) {
            Ok(x) => x,
            Err(e) => {
                invite.reject(e.sip_status(), vec![]).await;
                return None;
            }
        };
        let leg = match invite.into_leg(&self.ctx.stack, &events_tx) {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "supervisor dialog");
                return None;
            }
        };
        let answer = answer.to_string().into_bytes();
        if leg.answer(answer.clone()).is_err() {
            return None;
        }
        // Ids 0 and 1 are the caller and the agent.
        let id = ParticipantId(2 + index as u64 + rand::random::<u32>() as u64 * 16);
        let joined = relay
            .join(relay::Participant {
                id,
                role: Role::Supervisor,
                pair: ports,
                remote: neg.remote,
                format: LegFormat::from_negotiated(&neg),
            })
            .await;
        let mode = match joined {
            Ok(()) => relay.set_mode(id, how.mode()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = mode {
            warn!(error = %e, supervisor = %user, "supervisor could not join");
            leg.bye().await;
            leg.forget();
            return None;
        }
        info!(supervisor = %user, mode = ?how, "supervisor joined the call");
        Some(Supervisor {
            leg: SupLeg::In(Box::new(leg)),
            id,
            user,
            answer,
            party: None,
        })
    }

    /// Attended transfer, step 1: the caller on hold and out of the mix,
    /// `target` rung.
    async fn consult(
        &mut self,
        relay: &RelayHandle,
        consult: &mut Consult,
        target: PartyTarget,
    ) -> Result<Dialing, String> {
        if consult.with.is_some() || consult.completed_to.is_some() {
            return Err("a consultation is already in progress".into());
        }
        let moh = self
            .ctx
            .prompts
            .as_ref()
            .and_then(|p| p.get("moh"))
            .ok_or("no music on hold is loaded")?;
        let via = (target.destination, target.tcp);
        let d = self
            .dial(&target.uri, via, None, target.label.clone())
            .await?;
        self.consult_hold(relay, moh);
        consult.with = Some(target.label.clone());
        self.consult_device = target.device.clone();
        info!(party = %target.label, "consulting: the caller is on hold");
        Ok(d)
    }

    /// The caller on hold for a consultation: music, and out of the mix.
    fn consult_hold(&mut self, relay: &RelayHandle, moh: crate::media::prompts::Prompt) {
        relay.music_on_hold(Some(moh));
        relay.mute_caller(true);
        if !self.held {
            self.record.fact("held", |b, t| b.held(t));
            self.held = true;
        }
        self.music_on_hold = true;
    }

    /// Attended transfer to a skill group, step 1: the consultation enters
    /// the group's ACD queue (refused: the ACD's reason) and the caller
    /// goes on hold; the ACD's offers then ring the group's agents.
    async fn consult_group(
        &mut self,
        relay: &RelayHandle,
        consult: &mut Consult,
        group: String,
    ) -> Result<GroupConsult, String> {
        if consult.with.is_some() || consult.completed_to.is_some() {
            return Err("a consultation is already in progress".into());
        }
        let moh = self
            .ctx
            .prompts
            .as_ref()
            .and_then(|p| p.get("moh"))
            .ok_or("no music on hold is loaded")?;
        if self.events_tx.is_none() {
            return Err("this call takes no extra parties".into());
        }
        let queues = self
            .ctx
            .queues
            .clone()
            .ok_or("no skill groups are configured")?;
        let ports = self
            .ctx
            .ports
            .allocate()
            .await
            .map_err(|e| format!("no RTP ports: {e}"))?;
        let local = super::local_media(self.ctx, ports.port(), self.ctx.codecs.clone());
        let offer = sdp::build_offer(&local);
        let priority = crate::acd::CONSULT_PRIORITY;
        let (call, news) = queues.consult(&group, priority, &self.caller).await?;
        self.consult_hold(relay, moh);
        consult.with = Some(group.clone());
        self.consult_device = None;
        info!(%call, %group, "consulting a skill group: the caller is on hold");
        let template = crate::sip::stack::OutboundInvite {
            target: String::new(),
            destination: None,
            tcp: false,
            from_user: self.caller.clone(),
            from_display: None,
            sdp: offer.to_string().into_bytes(),
            headers: vec![],
            credential: None,
        };
        Ok(GroupConsult {
            offers: super::ringing::AcdOffers::new(call, queues.clone()),
            group,
            call,
            queues,
            news: Some(news),
            template,
            offer,
            ports: Some(ports),
            answered: None,
        })
    }

    /// The ACD's news about a consultation of a group: ring the offered
    /// agent, stop ringing one. `false` when the consultation is over (the
    /// ACD let it go).
    fn group_news(&self, g: &mut GroupConsult, news: Option<super::queue::QueueNews>) -> bool {
        use super::queue::QueueNews;
        match news {
            Some(QueueNews::Offer { agent, device }) => {
                let Some(events_tx) = &self.events_tx else {
                    return true;
                };
                if g.offers
                    .ring(self.ctx, events_tx, &agent, &device, &g.template)
                {
                    info!(call = %g.call, %agent, "consultation offered");
                    self.record.fact("offered", |b, t| b.offered(t, &agent));
                }
                true
            }
            Some(QueueNews::Cancel { agent }) => {
                self.record
                    .fact("offer cancelled", |b, t| b.offer_cancelled(t, &agent));
                g.offers.stop(Some(&agent));
                true
            }
            Some(QueueNews::Announce { .. }) => true,
            Some(QueueNews::Timeout { reason, .. }) => {
                warn!(call = %g.call, ?reason, "the ACD gave up the consultation");
                g.offers.stop(None);
                false
            }
            None => {
                g.news = None;
                if g.answered.is_some() {
                    return true; // the agent is here: nothing more to hear
                }
                warn!(call = %g.call, "the ACD is gone: consultation over");
                g.offers.stop(None);
                false
            }
        }
    }

    /// News from a phone rung for a consultation of a group: the first
    /// answer joins the mix as the consulted party (with its phone's SIP
    /// user); refusals go back to the ACD, which offers the next agent.
    async fn group_leg_event(
        &mut self,
        relay: &RelayHandle,
        g: &mut GroupConsult,
        key: &crate::sip::LegKey,
        ev: LegEvent,
        index: usize,
    ) -> Option<(Supervisor, Option<String>)> {
        let (call, queues) = (g.call, g.queues.clone());
        match ev {
            LegEvent::Final { code, sdp: body } if (200..300).contains(&code) => {
                let (agent, device, leg) = g.offers.answered(key)?;
                let text =
                    String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
                let neg = SessionDescription::parse(&text)
                    .map_err(|e| e.to_string())
                    .and_then(|a| sdp::read_answer(&g.offer, &a).map_err(|e| e.to_string()));
                let (neg, ports) = match (neg, g.ports.take()) {
                    (Ok(n), Some(p)) => (n, p),
                    (neg, ports) => {
                        warn!(error = ?neg.err(), %agent, "unusable answer to the consultation");
                        g.ports = ports;
                        leg.bye().await;
                        queues.input(crate::acd::Input::OfferFailed { call, agent });
                        return None;
                    }
                };
                queues.input(crate::acd::Input::OfferAnswered {
                    call,
                    agent: agent.clone(),
                });
                let id = ParticipantId(2 + index as u64 + rand::random::<u32>() as u64 * 16);
                let joined = relay
                    .join(relay::Participant {
                        id,
                        role: Role::External,
                        pair: ports,
                        remote: neg.remote,
                        format: LegFormat::from_negotiated(&neg),
                    })
                    .await;
                g.answered = Some(agent.clone());
                if let Err(e) = joined {
                    // The ACD call ends with the consultation (withdrawn
                    // by a cancel or the end of the call).
                    warn!(error = %e, %agent, "the consulted agent could not join");
                    leg.bye().await;
                    return None;
                }
                info!(%call, %agent, "the group's agent answered the consultation");
                let s = Supervisor {
                    leg: SupLeg::Out(leg),
                    id,
                    user: agent.clone(),
                    answer: g.offer.to_string().into_bytes(),
                    party: Some(agent),
                };
                Some((s, device))
            }
            LegEvent::Final { code, .. } => {
                let agent = g.offers.failed(key, code)?;
                info!(%call, %agent, code, "the offered agent did not take the consultation");
                self.record
                    .fact("offer cancelled", |b, t| b.offer_cancelled(t, &agent));
                None
            }
            _ => None,
        }
    }

    /// The caller back from a consultation's hold.
    fn end_consult_hold(&mut self, relay: &RelayHandle) {
        relay.mute_caller(false);
        relay.music_on_hold(None);
        self.music_on_hold = false;
        if self.held {
            self.record.fact("resumed", |b, t| b.resumed(t));
            self.held = false;
        }
    }

    /// Attended transfer, step 2: the consulted party (in the mix) takes
    /// the caller; the agent's leg ends and its after-call work starts.
    async fn complete_consult(
        &mut self,
        relay: &RelayHandle,
        consult: &mut Consult,
        sups: &[Supervisor],
        registration: Option<&mut (String, u64, mpsc::UnboundedSender<SessionCommand>)>,
        to_group: Option<String>,
    ) -> Result<(), String> {
        let label = consult.with.clone().ok_or("no consultation in progress")?;
        if !sups.iter().any(|s| s.party.as_ref() == Some(&label)) {
            return Err(match &to_group {
                Some(g) if *g == label => format!("no agent of group {g} has answered yet"),
                _ => format!("{label} has not answered yet"),
            });
        }
        consult.with = None;
        self.end_consult_hold(relay);
        let agent_target = self.consult_device.is_some();
        use crate::events::model::TransferKind;
        let (kind, target) = match &to_group {
            Some(g) => (TransferKind::Group, g.clone()),
            None if agent_target => (TransferKind::Agent, label.clone()),
            None => (TransferKind::Number, label.clone()),
        };
        let mode = crate::events::model::TransferMode::Attended;
        self.record
            .fact("transferred", |b, t| b.transferred(t, kind, &target, mode));
        self.tell_acw(self.record);
        if let (Some(call), Some(q)) = (self.acd_call, &self.ctx.queues) {
            q.input(crate::acd::Input::CallEnded { call });
        }
        self.b.bye().await;
        info!(party = %label, "attended transfer completed: the first agent left");
        if agent_target {
            self.record.fact("answered", |b, t| b.answered(t, &label));
            self.agent = Some(label.clone());
            // The group's agent took the consultation through the ACD; an
            // agent consulted by name is now busy for the queue too. Either
            // way their after-call work ends the record, as for a queued
            // call.
            if to_group.is_none() {
                if let Some(q) = &self.ctx.queues {
                    self.direct_call = q.direct_answered(&label, &self.caller).await;
                }
            }
            self.acd = to_group.is_some() || self.direct_call.is_some();
        } else {
            self.agent = None;
        }
        // Supervisors now reach the call through the new agent's phone.
        if let (Some(reg), Some(device)) = (registration, self.consult_device.take()) {
            self.ctx.live.remove_if(&reg.0, |_, (i, _)| *i == reg.1);
            self.ctx.live.insert(device.clone(), (reg.1, reg.2.clone()));
            reg.0 = device;
        }
        consult.completed_to = Some(label);
        Ok(())
    }

    /// A third party joined or left: `conference.changed` with everyone on
    /// the call now (supervisors are not members).
    fn conference_changed(&self, change: ConferenceChange, label: &str, sups: &[Supervisor]) {
        let party = |role, id: &str| Party {
            role,
            id: id.to_string(),
        };
        let mut members = vec![party(PartyRole::Caller, "caller")];
        if let Some(a) = &self.agent {
            members.push(party(PartyRole::Agent, a));
        }
        members.extend(
            sups.iter()
                .filter_map(|s| s.party.as_deref())
                .map(|p| party(PartyRole::External, p)),
        );
        let who = party(PartyRole::External, label);
        self.record.fact("conference changed", |b, t| {
            b.conference_changed(t, change, who, members)
        });
    }

    /// Hold or resume from the API: music on hold to the caller.
    fn api_hold(&mut self, relay: &RelayHandle, on: bool) -> Result<(), String> {
        if on == self.held {
            return Err(if on {
                "the caller is already on hold".into()
            } else {
                "the caller is not on hold".into()
            });
        }
        if on {
            let moh = self
                .ctx
                .prompts
                .as_ref()
                .and_then(|p| p.get("moh"))
                .ok_or("no music on hold is loaded")?;
            relay.music_on_hold(Some(moh));
            self.record.fact("held", |b, t| b.held(t));
        } else {
            relay.music_on_hold(None);
            self.record.fact("resumed", |b, t| b.resumed(t));
        }
        self.held = on;
        self.music_on_hold = on;
        info!(hold = on, "hold through the API");
        Ok(())
    }

    /// Ring a supervisor's phone on fresh ports.
    async fn dial_supervisor(
        &mut self,
        contacts: Vec<super::Contact>,
        mode: Supervision,
        user: String,
    ) -> Result<Dialing, String> {
        let contact = contacts
            .into_iter()
            .next()
            .ok_or("the supervisor's phone is not registered")?;
        let via = (contact.source, contact.tcp);
        self.dial(&contact.uri, via, Some(mode), user).await
    }

    /// Ring `uri` at `via` on fresh ports: a supervisor (`mode`) or a third
    /// party (`None`).
    async fn dial(
        &mut self,
        uri: &str,
        (destination, tcp): (std::net::SocketAddr, bool),
        mode: Option<Supervision>,
        user: String,
    ) -> Result<Dialing, String> {
        let events_tx = self
            .events_tx
            .clone()
            .ok_or("this call takes no extra parties")?;
        let ports = self
            .ctx
            .ports
            .allocate()
            .await
            .map_err(|e| format!("no RTP ports: {e}"))?;
        let local = super::local_media(self.ctx, ports.port(), self.ctx.codecs.clone());
        let offer = sdp::build_offer(&local);
        let invite = crate::sip::stack::OutboundInvite {
            target: uri.to_string(),
            destination: Some(destination),
            tcp,
            from_user: "hotline".into(),
            from_display: mode.map(|m| format!("{m:?}")),
            sdp: offer.to_string().into_bytes(),
            headers: vec![],
            credential: None,
        };
        let leg = self
            .ctx
            .stack
            .invite(invite, &events_tx)
            .map_err(|e| format!("cannot ring {user}: {e}"))?;
        info!(party = %user, ?mode, "ringing an extra party");
        Ok(Dialing {
            leg,
            ports,
            offer,
            mode,
            user,
        })
    }

    /// News from a supervisor's phone being rung: joined on answer.
    async fn dialing_event(
        &mut self,
        relay: &RelayHandle,
        dialing: &mut Vec<Dialing>,
        i: usize,
        ev: LegEvent,
        index: usize,
    ) -> Option<Supervisor> {
        match ev {
            LegEvent::Final { code, sdp: body } if (200..300).contains(&code) => {
                let d = dialing.remove(i);
                let text =
                    String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
                let neg = SessionDescription::parse(&text)
                    .map_err(|e| e.to_string())
                    .and_then(|a| sdp::read_answer(&d.offer, &a).map_err(|e| e.to_string()));
                let neg = match neg {
                    Ok(n) => n,
                    Err(e) => {
                        warn!(error = %e, supervisor = %d.user, "unusable answer from the supervisor");
                        d.leg.bye().await;
                        return None;
                    }
                };
                let id = ParticipantId(2 + index as u64 + rand::random::<u32>() as u64 * 16);
                let role = if d.mode.is_some() {
                    Role::Supervisor
                } else {
                    Role::External
                };
                let joined = relay
                    .join(relay::Participant {
                        id,
                        role,
                        pair: d.ports,
                        remote: neg.remote,
                        format: LegFormat::from_negotiated(&neg),
                    })
                    .await;
                let mode = match (joined, d.mode) {
                    (Ok(()), Some(m)) => relay.set_mode(id, m.mode()).await,
                    (other, _) => other,
                };
                if let Err(e) = mode {
                    warn!(error = %e, party = %d.user, "extra party could not join");
                    d.leg.bye().await;
                    return None;
                }
                let party = d.mode.is_none().then(|| d.user.clone());
                match d.mode {
                    Some(m) => {
                        info!(supervisor = %d.user, mode = ?m, "supervisor joined the call (API)")
                    }
                    None => info!(party = %d.user, "third party joined the call"),
                }
                Some(Supervisor {
                    leg: SupLeg::Out(d.leg),
                    id,
                    user: d.user,
                    answer: d.offer.to_string().into_bytes(),
                    party,
                })
            }
            LegEvent::Final { code, .. } => {
                let d = dialing.remove(i);
                info!(code, supervisor = %d.user, "the supervisor did not answer");
                None
            }
            LegEvent::Ended(_) => {
                dialing.remove(i);
                None
            }
            _ => None,
        }
    }

    /// Something happened on a supervisor's leg.
    async fn supervisor_event(
        &mut self,
        relay: &RelayHandle,
        sups: &mut Vec<Supervisor>,
        i: usize,
        ev: LegEvent,
    ) {
        match ev {
            LegEvent::Ended(_) => {
                let s = sups.remove(i);
                relay.leave(s.id);
                s.leg.forget();
                info!(party = %s.user, "extra party left the call");
                if let Some(label) = &s.party {
                    self.conference_changed(ConferenceChange::Left, label, sups);
                }
            }
            LegEvent::Info {
                content_type,
                body,
                responder,
            } => {
                responder.respond(200, vec![], None).await;
                let parsed = crate::media::dtmf::parse_info_body(
                    content_type.as_deref().unwrap_or(""),
                    &String::from_utf8_lossy(&body),
                );
                if let Ok(info) = parsed {
                    switch_mode(relay, &sups[i], info.key.to_char()).await;
                }
            }
            // Hold or a new address from the supervisor's phone: keep our
            // answer (the mix goes on).
            LegEvent::Reoffer { responder, .. } => {
                let answer = sups[i].answer.clone();
                responder.respond(200, vec![], Some(answer)).await;
            }
            _ => {}
        }
    }

    /// Session refresh of both legs; `Some(leg)` when a peer is gone.
    async fn refresh_failed(&self) -> Option<&'static str> {
        let (a, b) = tokio::join!(self.a.refresh(), self.b.refresh());
        for (name, r) in [("caller", a), ("agent", b)] {
            match r {
                Ok(408) | Ok(481) => {
                    warn!(leg = name, "session refresh failed: clearing the call");
                    return Some(name);
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(leg = name, error = %e, "session refresh failed: clearing the call");
                    return Some(name);
                }
            }
        }
        None
    }

    /// A re-INVITE from `side`: move its RTP target, forward the change to
    /// the other leg, and answer with what the other leg accepted.
    async fn reoffer(
        &mut self,
        relay: &RelayHandle,
        side: Side,
        body: &[u8],
        responder: InDialogResponder,
    ) {
        let mine = self.locals(side);
        if body.is_empty() {
            // Offerless re-INVITE (RFC 3261 §14.2): offer our current SDP.
            mine.session_version += 1;
            let offer = self.current_offer(side);
            responder
                .respond(200, vec![], Some(offer.into_bytes()))
                .await;
            return;
        }
        let text = String::from_utf8_lossy(body);
        let offer = match SessionDescription::parse(&text) {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, "bad SDP in re-INVITE: 488");
                responder.respond(488, vec![], None).await;
                return;
            }
        };
        let offered_dir = offer.audio_direction();
        if side == Side::B && offer.is_hold() != self.held {
            self.held = offer.is_hold();
            if self.held {
                self.record.fact("held", |b, t| b.held(t));
            } else {
                self.record.fact("resumed", |b, t| b.resumed(t));
            }
        }
        // The agent holds: hotline answers the hold itself and plays music
        // to the caller (who never sees a re-INVITE); resuming stops it.
        if side == Side::B {
            if let Some(moh) = self.ctx.prompts.as_ref().and_then(|p| p.get("moh")) {
                if offer.is_hold() || self.music_on_hold {
                    return self.agent_hold(relay, &offer, responder, moh).await;
                }
            }
        }
        if let Some(addr) = offer.audio_endpoint().filter(|a| !a.ip().is_unspecified()) {
            let current = match side {
                Side::A => &mut self.a_remote,
                Side::B => &mut self.b_remote,
            };
            if *current != addr {
                *current = addr;
                relay.set_remote(side, addr);
            }
        }
        let on_hold = offer.is_hold();
        relay.set_hold(on_hold);
        info!(
            ?side,
            direction = offered_dir.as_str(),
            on_hold,
            "re-INVITE"
        );

        // Reflect on the other leg with the same direction.
        let other = match side {
            Side::A => Side::B,
            Side::B => Side::A,
        };
        let theirs = self.locals(other);
        theirs.session_version += 1;
        theirs.direction = if offer
            .audio_endpoint()
            .is_some_and(|a| a.ip().is_unspecified())
        {
            // RFC 2543 hold: the holder neither sends nor wants media.
            Direction::SendOnly.intersect(offered_dir)
        } else {
            offered_dir
        };
        let (codec, te) = self.format_of(other);
        let forward = {
            let theirs = self.locals(other);
            let mut o = sdp::build_offer(&LocalMedia {
                codecs: vec![codec],
                telephone_event: te.is_some(),
                ..theirs.clone()
            });
            if let Some(pt) = te {
                super::retarget_telephone_event(&mut o, pt);
            }
            o
        };
        let result = match other {
            Side::A => self.a.reinvite(forward.to_string().into_bytes()).await,
            Side::B => self.b.reinvite(forward.to_string().into_bytes()).await,
        };
        let agreed = match result {
            Ok((code, answer)) if (200..300).contains(&code) => {
                match SessionDescription::parse(&String::from_utf8_lossy(&answer)) {
                    Ok(ans) => {
                        if let Some(addr) =
                            ans.audio_endpoint().filter(|a| !a.ip().is_unspecified())
                        {
                            let current = match other {
                                Side::A => &mut self.a_remote,
                                Side::B => &mut self.b_remote,
                            };
                            if *current != addr {
                                *current = addr;
                                relay.set_remote(other, addr);
                            }
                        }
                        ans.audio_direction()
                    }
                    Err(_) => offered_dir.reverse(),
                }
            }
            Ok((code, _)) => {
                warn!(
                    code,
                    "the other leg refused the re-INVITE; answering locally"
                );
                offered_dir.reverse()
            }
            Err(e) => {
                warn!(error = %e, "re-INVITE to the other leg failed; answering locally");
                offered_dir.reverse()
            }
        };
        let mine = self.locals(side);
        mine.session_version += 1;
        mine.direction = agreed;
        let local = mine.clone();
        match sdp::negotiate_answer(&offer, &local) {
            Ok((answer, _)) => {
                if side == Side::A {
                    self.a_answer_sdp = answer.clone();
                }
                responder
                    .respond(200, vec![], Some(answer.to_string().into_bytes()))
                    .await;
            }
            Err(e) => {
                warn!(error = %e, "re-INVITE offer not acceptable: 488");
                responder.respond(488, vec![], None).await;
            }
        }
    }

    /// The agent put the caller on hold (or resumed): music on hold to the
    /// caller while held; the agent gets our answer directly.
    async fn agent_hold(
        &mut self,
        relay: &RelayHandle,
        offer: &SessionDescription,
        responder: InDialogResponder,
        moh: crate::media::prompts::Prompt,
    ) {
        if let Some(addr) = offer.audio_endpoint().filter(|a| !a.ip().is_unspecified()) {
            if self.b_remote != addr {
                self.b_remote = addr;
                relay.set_remote(Side::B, addr);
            }
        }
        let hold = offer.is_hold();
        if hold {
            relay.music_on_hold(Some(moh));
            info!("agent holds: music on hold to the caller");
        } else {
            relay.music_on_hold(None);
            info!("agent resumes");
        }
        self.music_on_hold = hold;
        self.b_local.session_version += 1;
        self.b_local.direction = Direction::SendRecv;
        match sdp::negotiate_answer(offer, &self.b_local) {
            Ok((answer, _)) => {
                responder
                    .respond(200, vec![], Some(answer.to_string().into_bytes()))
                    .await
            }
            Err(e) => {
                warn!(error = %e, "hold offer not acceptable: 488");
                responder.respond(488, vec![], None).await;
            }
        }
    }

    fn locals(&mut self, side: Side) -> &mut LocalMedia {
        match side {
            Side::A => &mut self.a_local,
            Side::B => &mut self.b_local,
        }
    }

    /// The codec and telephone-event payload type `side` negotiated.
    fn format_of(&self, side: Side) -> (AudioCodec, Option<u8>) {
        let n = match side {
            Side::A => &self.a_neg,
            Side::B => &self.b_neg,
        };
        (n.codec, n.telephone_event)
    }

    fn current_offer(&mut self, side: Side) -> String {
        let (codec, te) = self.format_of(side);
        let mine = self.locals(side);
        let mut o = sdp::build_offer(&LocalMedia {
            codecs: vec![codec],
            telephone_event: te.is_some(),
            ..mine.clone()
        });
        if let Some(pt) = te {
            super::retarget_telephone_event(&mut o, pt);
        }
        o.to_string()
    }
}
