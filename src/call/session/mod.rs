//! The shell of a connected call (DESIGN.md "call::task"): it feeds the
//! pure [`Fsm`] (`call::fsm`: re-INVITEs, hold, refresh, who hangs up,
//! supervision, the API's commands) from the call's SIP legs, its media
//! relay and the API, and executes what the machine decides: in-dialog
//! responses, our re-INVITEs and refreshes (spawned, their outcomes coming
//! back as inputs, so a pending re-INVITE never blocks a BYE, RTP silence
//! or a command), BYEs, relay changes, supervisors' legs and record
//! facts. It is built by `connect`; supervisors' legs are `supervisors`,
//! the other extra parties (three-way, consultations) `parties`; the
//! commands other tasks send are `command`, carried out by `control`.

mod command;
mod connect;
mod control;
mod parties;
mod refer;
mod second_line;
mod supervisors;

pub use command::{CommandSender, PartyTarget, SessionCommand, Supervision};
pub(super) use connect::{AgentSide, Rules, SessionParts, SideMedia};

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::fsm::{self, End, Fact, Fsm, Input, Media, Output, Side, TxId};
use super::record::CallRecord;
use super::{sleep_until, CallContext};
use crate::events::{EndCause, HangupParty};
use crate::media::caller::CallerMedia;
use crate::media::ports::PortPair;
use crate::media::recorder::RecordingMeta;
use crate::media::relay::{self, LegFormat, RelayEvent, RelayHandle};
use crate::media::sdp::{LocalMedia, Negotiated, SessionDescription};
use crate::sip::stack::{InDialogResponder, LegEventSender};
use crate::sip::{Leg, LegEvent, LegEvents};

use parties::Parties;

/// The connected call between side A (the caller: the carrier's leg, or the
/// citizen dialled back) and side B (the agent or external party). Built
/// by [`Session::connect`].
pub(super) struct Session<'a, A: Leg, B: Leg> {
    ctx: &'a CallContext,
    a: &'a A,
    b: B,
    events: &'a mut LegEvents,
    /// The caller's media session (ports, stream, keys, the call's
    /// recording): lent to this conversation's relay, handed back when the
    /// caller goes on.
    media: &'a mut CallerMedia,
    b_ports: Option<PortPair>,
    /// The relay, when the caller was bridged before being answered.
    bridged: Option<Bridged>,
    a_remote: SocketAddr,
    b_remote: SocketAddr,
    a_local: LocalMedia,
    b_local: LocalMedia,
    /// What side A's offer/answer negotiated.
    a_neg: Negotiated,
    /// What side B's offer/answer negotiated (may differ: the relay
    /// transcodes).
    b_neg: Negotiated,
    a_answer_sdp: SessionDescription,
    /// When the agent hangs up first, keep the caller on the line and hand
    /// its media back (an IVR flow goes on, e.g. to the survey).
    keep_caller: bool,
    /// Whoever runs the call puts the caller through a blind transfer
    /// (inbound calls); outbound calls and callbacks refuse one rather than
    /// leave the citizen's leg up with nobody on it.
    blind_transfer: bool,
    /// The SIP user of the agent's phone on side B: supervisors reach the
    /// call through it (`*31`/`*32`/`*33` + user).
    agent_device: Option<String>,
    /// The sender of this call's leg events (new legs, e.g. supervisors,
    /// report on it).
    events_tx: Option<LegEventSender>,
    /// The call's record: told about holds and how the conversation ended.
    record: &'a CallRecord,
    /// The agent on side B (ACD agent id, or the phone's user when rung
    /// directly; `None` for an external number).
    agent: Option<String>,
    /// The agent came from the ACD: their after-call work ends the record.
    acd: bool,
    /// The phone of the agent being consulted (attended transfer).
    consult_device: Option<String>,
    /// The ACD's id of this call (queued calls): an attended transfer
    /// releases the first agent in the ACD at once.
    acd_call: Option<crate::acd::CallId>,
    /// The ACD's id of the call once an attended transfer handed it to
    /// another agent directly: that agent is busy in the ACD until it ends.
    direct_call: Option<crate::acd::CallId>,
    /// The citizen's number (a consultation of a skill group queues with
    /// it, as the queued caller).
    caller: String,
}

/// How long the agent's leg waits for its phone to answer the NOTIFY of
/// its transfer key before the transfer goes on (and the BYE follows).
const REFER_NOTIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How a connected call ended, for whoever runs the call on.
#[derive(Debug, Default)]
pub(super) struct SessionEnd {
    /// The finished recording.
    pub recording: Option<RecordingMeta>,
    /// The agent hung up and the caller is still on the line, its media
    /// handed back (only with `keep_caller`, or after a transfer; the
    /// recording stays open across a transfer).
    pub caller_continues: bool,
    /// The agent transferred the caller here (with `caller_continues`).
    pub transfer: Option<crate::ivr::TransferTarget>,
    /// The ACD was already told the (first) agent's conversation ended (an
    /// attended transfer): the owner must not tell it again.
    pub acd_released: bool,
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
        refused: q.refused,
    }
}

/// The next command, or never when the call takes none.
async fn next_command(commands: &mut Option<command::CommandReceiver>) -> Option<SessionCommand> {
    match commands {
        Some(rx) => rx.recv().await.map(|c| *c),
        None => std::future::pending().await,
    }
}

/// The next outcome of a request we sent, or never while none is out.
async fn next_outcome(requests: &mut JoinSet<Input>) -> Option<Input> {
    if requests.is_empty() {
        return std::future::pending().await;
    }
    match requests.join_next().await {
        Some(Ok(input)) => Some(input),
        _ => None,
    }
}

/// What the shell holds for the machine: the transactions it named, the
/// requests it sent, the BYEs it asked for.
#[derive(Default)]
struct Io {
    responders: HashMap<TxId, InDialogResponder>,
    next_tx: u64,
    requests: JoinSet<Input>,
    byes: Vec<Side>,
}

impl Io {
    /// Keep a transaction the machine will answer.
    fn name(&mut self, responder: InDialogResponder) -> TxId {
        self.next_tx += 1;
        let tx = TxId(self.next_tx);
        self.responders.insert(tx, responder);
        tx
    }
}

/// A conversation's relay and its events.
pub(in crate::call) struct Bridged {
    relay: RelayHandle,
    events: mpsc::UnboundedReceiver<RelayEvent>,
}

/// Bridge the caller's media to side B's ports `b` (the party's answer
/// `b_neg`), the caller's side being `a_local`. A caller answered for this
/// conversation is bridged **before** the answer goes out: the caller's
/// media session drops what it hears while idle, and a phone speaks as soon
/// as it has the 200 (the IO worker carries out a command before it reads
/// the datagrams that came after it).
pub(in crate::call) fn bridge(
    ctx: &CallContext,
    media: &mut CallerMedia,
    b: PortPair,
    b_neg: &Negotiated,
    a_local: &LocalMedia,
) -> Bridged {
    let (relay_tx, events) = mpsc::unbounded_channel();
    let relay = media.bridge(
        b,
        Some(b_neg.remote),
        relay::RelayOptions {
            silence: ctx.rtp_timeout,
            b_format: LegFormat::from_negotiated(b_neg),
            cname: format!("hotline@{}", a_local.address),
            ..Default::default()
        },
        relay_tx,
    );
    Bridged { relay, events }
}

impl Bridged {
    /// The caller never got the answer: the relay stops, and the
    /// recording opened for the conversation is finished and kept, the
    /// record told (a few milliseconds of the party, but nothing recorded
    /// is thrown away).
    pub(in crate::call) async fn abandon(self, ctx: &CallContext, record: &CallRecord) {
        let report = self.relay.stop().await;
        if let Some(meta) = &report.recording {
            super::recording_ready(ctx, record, meta);
        }
    }
}

impl<A: Leg, B: Leg> Session<'_, A, B> {
    /// Run until the call ends.
    pub async fn run(&mut self) -> SessionEnd {
        let bridged = match (self.bridged.take(), self.b_ports.take()) {
            (Some(bridged), _) => bridged,
            (None, Some(b)) => bridge(self.ctx, self.media, b, &self.b_neg, &self.a_local),
            (None, None) => return SessionEnd::default(),
        };
        let Bridged {
            relay,
            events: mut relay_rx,
        } = bridged;
        info!(caller_rtp = %self.a_remote, agent_rtp = %self.b_remote, "connected");
        let clock = super::ShellClock::start();
        let mut fsm = Fsm::new(self.setup(), clock.now());
        let mut io = Io::default();
        // Supervisors reach this call through the agent's phone user. (A
        // channel only for calls with an agent: each costs a block.)
        let mut commands = None;
        let mut registration: Option<command::Registration> =
            self.agent_device.clone().map(|device| {
                let (cmd_tx, cmd_rx) = command::CommandSender::channel();
                commands = Some(cmd_rx);
                let id: u64 = rand::random();
                self.ctx.live.insert(device.clone(), (id, cmd_tx.clone()));
                (device, id, cmd_tx)
            });
        let mut p = Parties::default();
        loop {
            let deadline = fsm.poll_timeout().map(|t| clock.instant(t));
            let now = || clock.now();
            tokio::select! {
                ev = self.events.recv() => {
                    let Some((key, ev)) = ev else {
                        fsm.handle_input(now(), Input::Shutdown);
                        self.apply(&mut fsm, &clock, &relay, &mut io, &mut p).await;
                        break;
                    };
                    if let Some(sup) = p.supervisors.by_key(&key) {
                        self.supervisor_leg_event(&mut fsm, now(), &mut p.supervisors, &mut io, sup, ev);
                    } else if let Some(i) = p.members.iter().position(|s| s.leg.key() == &key) {
                        if let Some(left) = Box::pin(self.member_event(&relay, &mut p.members, i, ev)).await {
                            let completed = matches!(fsm.consultation(), fsm::Consultation::Completed { .. });
                            if !completed && p.group.as_ref().and_then(|g| g.answered.as_ref()) == Some(&left) {
                                // The group's agent hung up during the
                                // consultation: their ACD call ends.
                                if let Some(g) = p.group.take() {
                                    g.withdraw();
                                }
                            }
                            // The party who took the call ends it; the one
                            // consulted brings the caller back.
                            fsm.party_left(&left);
                        }
                    } else if p.line.as_ref().is_some_and(|l| l.key() == &key) {
                        Box::pin(self.line_event(&mut fsm, &relay, &mut p, ev)).await;
                    } else if let Some(g) = p.group.as_mut().filter(|g| g.offers.contains(&key)) {
                        if let Some((s, device)) = Box::pin(self.group_leg_event(&relay, g, &key, ev, p.members.len())).await {
                            if let Some(agent) = &s.party {
                                fsm.group_agent_answered(agent);
                            }
                            self.consult_device = device;
                            p.members.push(s);
                        }
                    } else if let Some(i) = p.dialing.iter().position(|d| d.leg.key() == &key) {
                        if let Some(s) = Box::pin(self.dialing_event(&relay, &mut fsm, &mut p.dialing, i, ev, p.members.len())).await {
                            let joined = s.party.clone();
                            p.members.push(s);
                            if let Some(label) = joined.filter(|l| !fsm.consulted_party_answered(l)) {
                                self.conference_changed(crate::events::model::ConferenceChange::Joined, &label, &p.members);
                            }
                        }
                    } else {
                        let side = if &key == self.a.key() {
                            Some(Side::A)
                        } else if &key == self.b.key() {
                            Some(Side::B)
                        } else {
                            None
                        };
                        if let Some(side) = side {
                            let input = match ev {
                                LegEvent::Ended(_) => Some(Input::Ended { side }),
                                LegEvent::Reoffer { sdp, responder } => Some(Input::Reoffer {
                                    side,
                                    tx: io.name(responder),
                                    sdp,
                                }),
                                LegEvent::Info { responder, .. } => Some(Input::Info {
                                    side,
                                    tx: io.name(responder),
                                }),
                                LegEvent::Refer { refer_to, responder } => responder.take().map(|r| {
                                    let tx = io.name(r);
                                    let wanted = refer::target(&self.ctx.roster.load(), self.agent.as_deref(), refer_to.as_deref());
                                    match wanted {
                                        Ok(refer::Referral::Blind(t)) => {
                                            info!(?side, ?t, "transfer key (REFER)");
                                            Input::Refer { side, tx, target: Ok(t) }
                                        }
                                        Ok(refer::Referral::Replaces(r)) if p.line.as_ref().is_some_and(|l| l.named_by(&r)) => {
                                            info!(?side, "transfer key after a consultation from the phone (REFER with Replaces)");
                                            Input::ReferConsulted { side, tx }
                                        }
                                        Ok(refer::Referral::Replaces(r)) => {
                                            let reason = format!("Replaces names no consultation of this call (Call-ID {:?})", r.call_id);
                                            info!(?side, refer_to, code = 481, %reason, "transfer key (REFER) refused");
                                            Input::Refer { side, tx, target: Err(fsm::ReferRefusal { code: 481, reason }) }
                                        }
                                        Err(e) => {
                                            info!(?side, refer_to, code = e.code, reason = %e.reason, "transfer key (REFER) refused");
                                            Input::Refer { side, tx, target: Err(e) }
                                        }
                                    }
                                }),
                                _ => None,
                            };
                            if let Some(input) = input {
                                fsm.handle_input(now(), input);
                            }
                        }
                    }
                }
                Some(input) = next_outcome(&mut io.requests) => fsm.handle_input(now(), input),
                ev = relay_rx.recv() => {
                    match ev {
                        Some(RelayEvent::Silent) => fsm.handle_input(now(), Input::Silent),
                        Some(RelayEvent::Key { participant, key }) => {
                            if let Some(sup) = p.supervisors.by_participant(participant) {
                                let event = fsm::SupervisorEvent::Key(key);
                                fsm.handle_input(now(), Input::Supervisor { sup, event });
                            }
                        }
                        None => {}
                    }
                }
                news = parties::group_news(&mut p.group) => {
                    if let Some(g) = p.group.as_mut() {
                        if !self.group_news(g, news) {
                            // The ACD let the consultation go: the caller
                            // is back.
                            let group = g.group.clone();
                            p.group = None;
                            fsm.consult_failed(&group);
                        }
                    }
                }
                _ = sleep_until(deadline) => fsm.handle_timeout(now()),
                Some(cmd) = next_command(&mut commands) => {
                    // Boxed: a command's future (consultations, dial-outs)
                    // is most of this loop's size and rare (issue 16,
                    // "Memory per call").
                    Box::pin(self.command(cmd, &mut fsm, now(), &relay, &mut p, registration.as_mut())).await;
                }
                _ = self.ctx.shutdown.cancelled() => fsm.handle_input(now(), Input::Shutdown),
            }
            self.apply(&mut fsm, &clock, &relay, &mut io, &mut p).await;
            if let Some((label, group)) = p.completed.take() {
                // A phone's transfer key completed its consultation.
                Box::pin(self.transferred(label, group, registration.as_mut())).await;
                p.acd_released = self.acd_call.take().is_some();
            }
            if p.line.is_some() {
                Box::pin(self.settle_line(&mut fsm, &relay, &mut p)).await;
                self.apply(&mut fsm, &clock, &relay, &mut io, &mut p).await;
            }
            if fsm.end().is_some() {
                break;
            }
        }
        let end = fsm.end().cloned().unwrap_or(End::Shutdown);
        let keep = fsm.keeps_caller();
        // Our requests still out are given up with the call.
        io.requests.abort_all();
        if let Some((device, id, _)) = &registration {
            self.ctx.live.remove_if(device, |_, (i, _)| i == id);
        }
        // Boxed: the hang-ups and the relay's report are larger than the
        // loop above and run once, at the end (issue 16, "Memory per
        // call").
        Box::pin(self.finish(end, keep, relay, io, p)).await
    }

    /// The call is over: count its RTP, stop the media while the phones
    /// are hung up, tell the record and the ACD.
    async fn finish(
        &mut self,
        end: End,
        keep: bool,
        relay: RelayHandle,
        io: Io,
        mut p: Parties,
    ) -> SessionEnd {
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
        if matches!(end, End::Silence) {
            warn!("no RTP for the timeout: clearing the call");
        }
        // The media stops and the record is told with the call, while the
        // phones are hung up: a phone that vanished leaves its BYE
        // unanswered for 64*T1 (RFC 3261 §17.1.2.2), and the recording
        // would hold that much silence and the record wait for it.
        let a = io.byes.contains(&Side::A).then_some(self.a);
        let b = io.byes.contains(&Side::B).then_some(&self.b);
        let hang_ups = p.take_phones().hang_up(a, b);
        tokio::pin!(hang_ups);
        let mut hung_up = false;
        // A blind transfer records the next conversation into the same file.
        let transferred = matches!(end, End::Transfer(_));
        let mut report = {
            let media = &mut self.media;
            let stop = async move {
                if keep {
                    media.unbridge(relay, transferred).await
                } else {
                    relay.stop().await
                }
            };
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    report = &mut stop => break report,
                    () = &mut hang_ups, if !hung_up => hung_up = true,
                }
            }
        };
        info!(caller = ?report.a, agent = ?report.b, "rtp quality");
        let meta = report.recording.take();
        if let Some(m) = &meta {
            super::recording_ready(self.ctx, self.record, m);
        }
        self.tell_record(&end, keep, &report);
        // The consultation (or, completed, the call the group's agent took
        // over) leaves the ACD after the record waits for their after-call
        // work.
        if let Some(g) = p.group.take() {
            g.withdraw();
        }
        if let (Some(call), Some(q)) = (self.direct_call.take(), &self.ctx.queues) {
            q.input(crate::acd::Input::CallEnded { call });
        }
        if !hung_up {
            hang_ups.await;
        }
        if !keep {
            self.a.forget();
        }
        self.b.forget();
        SessionEnd {
            recording: meta,
            caller_continues: keep,
            transfer: match end {
                End::Transfer(t) => Some(t),
                _ => None,
            },
            acd_released: p.acd_released,
        }
    }

    /// How the machine starts: this session's media and options.
    fn setup(&self) -> fsm::Setup {
        let refresh = self.ctx.session_refresh;
        fsm::Setup {
            a_local: crate::call::secure::settled(&self.a_local, &self.a_neg),
            b_local: crate::call::secure::settled(&self.b_local, &self.b_neg),
            a_format: fsm::LegFormat {
                codec: self.a_neg.codec,
                telephone_event: self.a_neg.telephone_event,
            },
            b_format: fsm::LegFormat {
                codec: self.b_neg.codec,
                telephone_event: self.b_neg.telephone_event,
            },
            a_remote: self.a_remote,
            b_remote: self.b_remote,
            a_answer: self.a_answer_sdp.clone(),
            music_loaded: self.music().is_some(),
            music_on_hold: false,
            keep_caller: self.keep_caller,
            blind_transfer: self.blind_transfer,
            refresh_every: (!refresh.is_zero()).then_some(refresh),
        }
    }

    /// The music on hold prompt, when loaded.
    fn music(&self) -> Option<crate::media::prompts::Prompt> {
        self.ctx.prompts.as_ref().and_then(|p| p.get("moh"))
    }

    /// Do what the machine decided.
    async fn apply(
        &mut self,
        fsm: &mut Fsm,
        clock: &super::ShellClock,
        relay: &RelayHandle,
        io: &mut Io,
        p: &mut Parties,
    ) {
        while let Some(out) = fsm.poll_output() {
            match out {
                Output::Respond {
                    tx,
                    code,
                    headers,
                    sdp,
                } => {
                    // Boxed: rsipstack's reply is a large future, and an
                    // in-dialog request is rare beside the call's life.
                    if code < 200 {
                        if let Some(r) = io.responders.get(&tx) {
                            Box::pin(r.respond(code, headers, sdp)).await;
                        }
                    } else if let Some(r) = io.responders.remove(&tx) {
                        Box::pin(r.respond(code, headers, sdp)).await;
                    }
                }
                Output::Reinvite { side, req, sdp } => {
                    let leg = self.requests(side);
                    io.requests.spawn(async move {
                        let result = leg.reinvite(sdp).await.map_err(|e| e.to_string());
                        Input::ReinviteDone { req, result }
                    });
                }
                Output::Refresh { side, req } => {
                    let leg = self.requests(side);
                    io.requests.spawn(async move {
                        let result = leg.refresh().await.map_err(|e| e.to_string());
                        if let Ok(408 | 481) | Err(_) = &result {
                            warn!(?side, ?result, "session refresh failed: clearing the call");
                        }
                        Input::RefreshDone { side, req, result }
                    });
                }
                Output::NotifyRefer {
                    side,
                    req,
                    code,
                    reason,
                    done,
                } => {
                    let leg = self.requests(side);
                    io.requests.spawn(async move {
                        let told = tokio::time::timeout(REFER_NOTIFY_WAIT, leg.notify_refer(code, reason, done)).await;
                        if !matches!(told, Ok(Ok(200..=299))) {
                            info!(?told, "the transferor's phone did not take its NOTIFY: transferring anyway");
                        }
                        Input::ReferNotified { req }
                    });
                }
                Output::Bye { side } => {
                    if !io.byes.contains(&side) {
                        io.byes.push(side);
                    }
                }
                Output::Media(m) => match m {
                    Media::SetRemote { side, addr } => {
                        if side == Side::A {
                            // Prompts after this conversation go there too.
                            self.media.set_remote(addr);
                        }
                        relay.set_remote(side, addr)
                    }
                    // The caller's ports are its media session's (shared with
                    // the relay); the agent's are the relay's own.
                    Media::SetKeys {
                        side: Side::A,
                        keys,
                    } => self.media.set_keys(keys),
                    Media::SetKeys {
                        side: Side::B,
                        keys,
                    } => relay.set_agent_keys(keys),
                    Media::SetHold(on) => relay.set_hold(on),
                    Media::MusicOnHold(on) => {
                        relay.music_on_hold(if on { self.music() } else { None })
                    }
                    Media::MuteCaller(on) => relay.mute_caller(on),
                },
                Output::Fact(Fact::Held) => self.record.fact("held", |b, t| b.held(t)),
                Output::Fact(Fact::Resumed) => self.record.fact("resumed", |b, t| b.resumed(t)),
                Output::Completed { party, group } => p.completed = Some((party, group)),
                Output::Supervisor { sup, action } => {
                    let sups = &mut p.supervisors;
                    // Boxed: rare, and larger than the rest of `apply`.
                    Box::pin(self.supervisor_action(fsm, clock.now(), relay, sups, sup, action))
                        .await
                }
            }
        }
    }

    /// The request handle of `side`'s leg.
    fn requests(&self, side: Side) -> crate::sip::AnyLegRequests {
        match side {
            Side::A => self.a.requests(),
            Side::B => self.b.requests(),
        }
    }

    /// The record learns the RTP quality of both legs, who
    /// ended the conversation and whose after-call work to wait for.
    fn tell_record(&self, end: &End, keep: bool, report: &relay::RelayReport) {
        let record = self.record;
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
}
