//! Ringing the targets of a call: agents one after another or all at once
//! (forking to every registered contact), or an external number through a
//! trunk and its backups (REQUIREMENTS §1 "instant switch-over"). Relays
//! 180/183 to the caller, cancels losing forks (RFC 3261 §9.1) and stops
//! every fork the moment the caller hangs up, so no agent keeps ringing for
//! a caller who is gone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tracing::{debug, info, warn};

use std::sync::Arc;

use tokio::sync::mpsc;

use super::flow::core::Prompts;
use super::forks::{Forks, Outcome as ForkOutcome, Output as ForkOutput, Response};
use super::hunt::{Attempted, Hunt, Hunted};
use super::queue_wait::{
    Fact as WaitFact, Input as WaitInput, Output as WaitOutput, QueueWait, Waited,
};
use super::web_phone::dial;
use super::{sleep_until, CallContext, Outcome, Ringing, Route};
use crate::acd::{CallId, Input};
use crate::events::model::{TransferKind, TransferMode};
use crate::media::caller::CallerMedia;
use crate::media::player::Player;
use crate::media::prompts::{Prompt, PromptLibrary};
use crate::media::sdp::{self, Negotiated, SessionDescription};
use crate::sip::stack::{LegEventSender, OutboundInvite};
use crate::sip::{InboundLeg, Leg, LegEvent, LegEvents, LegKey, OutboundLeg};
use crate::time::Time;

/// A queue wait an IVR flow asked for.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct IvrWait {
    /// The flow's longest wait (else the group's).
    pub max_wait: Option<Duration>,
}

/// The answered outbound leg and where its RTP goes.
pub(super) struct Connected {
    pub leg: OutboundLeg,
    /// What the answer negotiated (remote address, codec, DTMF type).
    pub neg: Negotiated,
    /// The ACD's id for the call, when it came through a queue.
    pub queued: Option<CallId>,
    /// Who answered: the ACD agent id (queue) or the SIP user (direct).
    pub agent: Option<String>,
    /// The SIP user of the phone that answered, when it is an agent's.
    pub device: Option<String>,
}

/// Ringing state of one call.
/// What the other side (an agent, a number) is offered: our SDP, as text
/// for phones and trunks and its WebRTC form for browser phones (boxed:
/// every call's task carries it for its whole life).
pub(super) struct BOffer {
    /// The offer's text.
    pub bytes: Vec<u8>,
    /// The offer, to read answers against.
    pub sdp: SessionDescription,
    /// The offer for browser phones (`call::web_phone`).
    pub web: Option<Vec<u8>>,
}

impl BOffer {
    /// The offer `sdp` on the agent-side `ports`.
    pub fn new(sdp: SessionDescription, ports: &crate::media::ports::PortPair) -> Box<Self> {
        Box::new(Self {
            bytes: sdp.to_string().into_bytes(),
            web: super::web_phone::offer_for(&sdp, ports),
            sdp,
        })
    }
}

pub(super) struct Ringer<'a> {
    pub ctx: &'a CallContext,
    pub inbound: &'a InboundLeg,
    pub events: LegEvents,
    pub events_tx: LegEventSender,
    /// What the other side is offered.
    pub b: Box<BOffer>,
    pub a_answer: Vec<u8>,
    pub caller: String,
    pub caller_name: Option<String>,
    /// The caller's media session (ports, stream, keys, recording), lent
    /// to the queue's prompt player and to each conversation's relay.
    pub media: CallerMedia,
    /// The caller leg's negotiated media.
    pub a_neg: Negotiated,
    /// The caller leg was answered already (queue with prompts).
    pub answered: bool,
    /// The call's record (events for the ticket platform).
    pub record: &'a super::record::CallRecord,
    /// Where the call first queued (a caller whose blind transfer fails
    /// goes back there).
    pub queue_place: Option<QueuePlace>,
    /// The call hung up the caller: our BYE is sent once the call's record
    /// is (a caller whose phone vanished leaves it unanswered until its
    /// transaction times out, 64*T1 = 32 s, and the record must not wait
    /// for that).
    pub bye_owed: bool,
    /// The relay of the conversation the caller is being answered for,
    /// bridged before the answer ([`super::converse::answer_bridged`]).
    pub bridged: Option<super::session::Bridged>,
}

/// A call's place in a queue: its group, priority and arrival on the
/// ACD's clock, and the wait an IVR flow asked for.
#[derive(Debug, Clone)]
pub(super) struct QueuePlace {
    pub group: String,
    pub priority: u8,
    pub arrived: Time,
    pub ivr: Option<IvrWait>,
}

enum Attempt {
    Answered(Box<Connected>),
    CallerGone,
    /// Every fork answered with a final error (their codes).
    Failed(Vec<u16>),
    /// Ring timeout.
    NoAnswer,
    /// No provisional response in time (trunk unreachable).
    NoProvisional,
}

/// One attempt's end for the [`Hunt`]; an answer's leg is kept in
/// `answered`.
fn attempted(attempt: Attempt, answered: &mut Option<Connected>) -> Attempted {
    match attempt {
        Attempt::Answered(c) => {
            *answered = Some(*c);
            Attempted::Answered
        }
        Attempt::CallerGone => Attempted::CallerGone,
        Attempt::Failed(codes) => Attempted::Failed(codes),
        Attempt::NoAnswer => Attempted::NoAnswer,
        Attempt::NoProvisional => Attempted::NoProvisional,
    }
}

impl Ringer<'_> {
    /// An answer that came too late: the caller left (their CANCEL crossed
    /// the agent's 200). The agent's leg is hung up; the ACD, which has
    /// the agent talking on the call since the answer, is told the call
    /// ended (after-call work), so the agent is not left talking; and the
    /// record, which has the answer, waits for that after-call work as
    /// after any conversation (or not, for a phone rung directly).
    pub(super) async fn drop_answer(&self, connected: Connected) {
        connected.leg.bye().await;
        if let Some(agent) = &connected.agent {
            if connected.queued.is_some() {
                self.record.await_acw(agent);
            } else {
                self.record.no_acw(agent);
            }
        }
        if let (Some(call), Some(queues)) = (connected.queued, &self.ctx.queues) {
            queues.input(Input::CallEnded { call });
        }
    }

    /// Answer the caller's leg (someone answered for them); `false` when
    /// the caller left first.
    pub(super) fn answer_caller(&mut self) -> bool {
        match self.inbound.answer(self.a_answer.clone()) {
            Ok(()) => {
                self.answered = true;
                true
            }
            Err(e) => {
                warn!(error = %e, "caller left as the agent answered");
                false
            }
        }
    }

    /// Ring `route` until someone answers or everyone failed (answering
    /// or refusing the carrier is the call's machine's: `call::machine`).
    pub(super) async fn ring_route(&mut self, route: &Route) -> Result<Connected, Outcome> {
        match route {
            Route::Agents { ringing, agents } => self.ring_agents(*ringing, agents).await,
            Route::External { number, trunk } => self.ring_external(number, trunk).await,
            Route::Queue { group, priority } => self.ring_queue(group, *priority, None).await,
            Route::Flow(_) => {
                warn!("a flow route reached the ringer");
                Err(Outcome::Rejected(500))
            }
        }
    }

    /// Ring `agents` in turn or at once, as the pure [`Hunt`] orders
    /// (which also names the caller's final status).
    pub(super) async fn ring_agents(
        &mut self,
        ringing: Ringing,
        agents: &[String],
    ) -> Result<Connected, Outcome> {
        let rounds: Vec<Vec<&String>> = match ringing {
            Ringing::Sequential => agents.iter().map(|a| vec![a]).collect(),
            Ringing::Simultaneous => vec![agents.iter().collect()],
        };
        let mut hunt = Hunt::agents(rounds.len());
        let mut answered = None;
        while let Some(at) = hunt.poll_attempt() {
            let mut invites = Vec::new();
            let mut unregistered = 0;
            for agent in rounds.get(at).into_iter().flatten() {
                let contacts = self.ctx.directory.contacts(agent);
                if contacts.is_empty() {
                    debug!(%agent, "not registered");
                    unregistered += 1;
                }
                for c in contacts {
                    if let Some(invite) = self.invite_to_agent(agent, &c) {
                        invites.push((invite, Some(agent.to_string())));
                    }
                }
            }
            if invites.is_empty() {
                hunt.attempted(Attempted::Nobody { unregistered });
                continue;
            }
            let attempt = self
                .attempt(invites, Some(self.ctx.no_response_timeout))
                .await;
            hunt.attempted(attempted(attempt, &mut answered));
        }
        match (hunt.end(), answered) {
            (Some(Hunted::Answered(_)), Some(mut c)) => {
                if let Some(agent) = &c.agent {
                    self.record.fact("answered", |b, t| b.answered(t, agent));
                    // An ACD agent on this call is busy for the queue
                    // too, and does after-call work when it ends.
                    if let Some(q) = &self.ctx.queues {
                        c.queued = q.direct_answered(agent, &self.caller).await;
                    }
                }
                Ok(c)
            }
            (Some(Hunted::CallerGone), _) => Err(Outcome::CallerCancelled),
            (Some(Hunted::NotAnswered(code)), _) => Err(Outcome::NotAnswered(code)),
            _ => Err(Outcome::NotAnswered(480)),
        }
    }

    /// Dial `number` through the trunk `first`, then its backups, as the
    /// pure [`Hunt`] orders.
    pub(super) async fn ring_external(
        &mut self,
        number: &str,
        first: &str,
    ) -> Result<Connected, Outcome> {
        let order: Vec<(String, SocketAddr, bool, u64)> = self
            .ctx
            .trunks
            .attempt_order(first)
            .into_iter()
            .filter_map(|t| {
                t.proxy
                    .map(|p| (t.name.clone(), p, t.tcp, t.invite_timeout_secs))
            })
            .collect();
        let mut hunt = Hunt::trunks(order.len());
        let mut answered = None;
        while let Some(at) = hunt.poll_attempt() {
            let Some((name, proxy, tcp, invite_timeout)) = order.get(at) else {
                break;
            };
            let target = format!("sip:{number}@{proxy}");
            let invite = self.invite_to(target, Some(*proxy), *tcp);
            let wait = Some(Duration::from_secs((*invite_timeout).max(1)));
            let attempt = self.attempt(vec![(invite, None)], wait).await;
            let how = attempted(attempt, &mut answered);
            let silent = how == Attempted::NoProvisional;
            let failed = format!("{how:?}");
            hunt.attempted(how);
            match (hunt.end(), silent) {
                (None, true) => warn!(trunk = %name, "trunk did not respond; trying the backup"),
                (None, false) => {
                    warn!(trunk = %name, attempt = %failed, "trunk failed; trying the backup")
                }
                _ => {}
            }
        }
        match (hunt.end(), answered) {
            (Some(Hunted::Answered(_)), Some(c)) => {
                self.record.fact("transferred", |b, t| {
                    b.transferred(t, TransferKind::Number, number, TransferMode::Blind)
                });
                Ok(c)
            }
            (Some(Hunted::CallerGone), _) => Err(Outcome::CallerCancelled),
            (Some(Hunted::NotAnswered(503)), _) => {
                warn!(trunk = %first, "every trunk failed");
                Err(Outcome::NotAnswered(503))
            }
            (Some(Hunted::NotAnswered(code)), _) => Err(Outcome::NotAnswered(code)),
            _ => Err(Outcome::NotAnswered(503)),
        }
    }

    /// Queue the call and ring whichever agent the ACD offers it to; the
    /// ACD owns the ring timeout (its `CancelOffer`) and the queue order.
    /// With `ivr`, the wait is the flow's: its own longest wait, and a
    /// timeout or full queue returns [`Outcome::QueueEnded`] with the
    /// caller's media handed back to `media`, for the flow to go on.
    pub(super) async fn ring_queue(
        &mut self,
        group: &str,
        priority: u8,
        ivr: Option<IvrWait>,
    ) -> Result<Connected, Outcome> {
        self.ring_queue_at(group, priority, ivr, None).await
    }

    /// [`Self::ring_queue`] for a call that arrived at `arrived` (the
    /// ACD's clock; `None`: now): it takes the place that arrival gives it.
    pub(super) async fn ring_queue_at(
        &mut self,
        group: &str,
        priority: u8,
        ivr: Option<IvrWait>,
        arrived: Option<Time>,
    ) -> Result<Connected, Outcome> {
        let Some(queues) = self.ctx.queues.clone() else {
            warn!(%group, "queue route without an ACD");
            return Err(Outcome::NotAnswered(480));
        };
        let arrived = arrived.unwrap_or_else(|| queues.now());
        let (max_wait, on_timeout) = match &ivr {
            Some(w) => (w.max_wait, Some(crate::acd::NextStep::Hangup)),
            None => (None, None),
        };
        let (call, mut news) =
            queues.enqueue_at(group, priority, &self.caller, arrived, max_wait, on_timeout);
        if self.queue_place.is_none() {
            self.queue_place = Some(QueuePlace {
                group: group.to_string(),
                priority,
                arrived,
                ivr,
            });
        }
        info!(%call, %group, priority, "queued");
        let name = self.ctx.group_name(group);
        self.record.fact("queued", |b, t| {
            b.queued(t, group, name.as_deref(), priority)
        });
        // The queue's media: the group plays it and the prompts are loaded.
        let library = self.ctx.prompts.clone();
        let media = match (self.ctx.queue_media(group), &library) {
            (Some(m), Some(_)) => Some(m.callback_key),
            _ => None,
        };
        let prompts: Arc<dyn Prompts> = match &library {
            Some(l) => l.clone(),
            None => Arc::new(PromptLibrary::default()),
        };
        let mut wait = QueueWait::new(call, ivr.is_some(), media, self.answered, prompts);
        let (player_tx, mut player_rx) = mpsc::unbounded_channel();
        let mut player: Option<Player> = None;
        // The phones rung for the ACD's offers, and the one that answered.
        let mut forks = AcdOffers::new(call, queues.clone());
        let template = self.invite_to(String::new(), None, false);
        let mut answered: Option<Connected> = None;
        loop {
            while let Some(output) = wait.poll_output() {
                match output {
                    WaitOutput::Answer => {
                        let ok = match self.inbound.answer(self.a_answer.clone()) {
                            Ok(()) => true,
                            Err(e) => {
                                warn!(error = %e, "cannot answer the queued caller");
                                false
                            }
                        };
                        self.answered |= ok;
                        wait.handle_input(WaitInput::Answered(ok));
                    }
                    WaitOutput::Progress => self.inbound.progress(None),
                    WaitOutput::StartPlayer => player = Some(self.media.play(player_tx.clone())),
                    WaitOutput::Say {
                        prompts,
                        interruptible,
                    } => {
                        if let (Some(p), Some(library)) = (&player, &library) {
                            p.set_loop(false);
                            p.interrupt_on_key(interruptible);
                            let mut loaded = prompts.iter().filter_map(|n| library.get(n));
                            if let Some(first) = loaded.next() {
                                p.play(first);
                            }
                            for next in loaded {
                                p.queue(next);
                            }
                        }
                    }
                    WaitOutput::Music => {
                        if let (Some(p), Some(moh)) =
                            (&player, library.as_ref().and_then(|l| l.get("moh")))
                        {
                            p.play(moh);
                            p.set_loop(true);
                        }
                    }
                    WaitOutput::InfoKey(key) => {
                        if let Some(p) = &player {
                            p.info_key(key);
                        }
                    }
                    WaitOutput::Ring { agent, device } => {
                        let web = self.b.web.as_deref();
                        if forks.ring(self.ctx, &self.events_tx, &agent, &device, (&template, web))
                        {
                            self.record.fact("offered", |b, t| b.offered(t, &agent));
                        }
                    }
                    WaitOutput::StopRinging(agent) => forks.stop(agent.as_deref()),
                    WaitOutput::Acd(input) => queues.input(input),
                    WaitOutput::Record(fact) => self.record_wait(fact),
                    WaitOutput::EndPlay => {
                        if let Some(p) = player.take() {
                            self.media.end_play(p).await;
                        }
                    }
                    WaitOutput::Farewell(prompt) => {
                        if let Some(p) = player.take() {
                            let last = library.as_ref().and_then(|l| l.get(prompt));
                            farewell(p, last, self.inbound, &mut self.events).await;
                        }
                    }
                    WaitOutput::Bye => self.inbound.bye().await,
                    WaitOutput::Reject(code) => self.inbound.reject(code),
                }
            }
            match wait.waited() {
                Some(Waited::Connected(_)) => {
                    if let Some(c) = answered.take() {
                        return Ok(c);
                    }
                    return Err(Outcome::NotAnswered(480));
                }
                Some(Waited::Ended(outcome)) => return Err(outcome.clone()),
                None => {}
            }
            tokio::select! {
                n = news.recv() => wait.handle_input(match n {
                    Some(n) => WaitInput::News(n),
                    None => WaitInput::AcdGone,
                }),
                ev = self.events.recv() => {
                    let Some((key, ev)) = ev else {
                        wait.handle_input(WaitInput::CallerHungUp);
                        continue;
                    };
                    if &key == self.inbound.key() {
                        if let LegEvent::Info { content_type, body, responder } = ev {
                            // SIP INFO keys (RFC 6086 dtmf-relay / dtmf).
                            let parsed = crate::media::dtmf::parse_info_body(
                                content_type.as_deref().unwrap_or(""),
                                &String::from_utf8_lossy(&body),
                            );
                            responder.respond(200, vec![], None).await;
                            if let Ok(info) = parsed {
                                wait.handle_input(WaitInput::InfoKey(info.key));
                            }
                        } else if let LegEvent::Ended(end) = ev {
                            info!(%call, ?end, "caller hung up in the queue");
                            wait.handle_input(WaitInput::CallerHungUp);
                        }
                        continue;
                    }
                    if !forks.contains(&key) {
                        continue; // late news from a phone no longer rung
                    }
                    match ev {
                        LegEvent::Final { code, sdp } if (200..300).contains(&code) => {
                            let Some((agent, device, leg)) = forks.answered(&key) else { continue };
                            match self.read_answer(sdp.as_deref()) {
                                Ok(neg) => {
                                    answered = Some(Connected { leg, neg, queued: Some(call), agent: Some(agent.clone()), device });
                                    wait.handle_input(WaitInput::AgentAnswered { agent });
                                }
                                Err(e) => {
                                    warn!(error = %e, %agent, "unusable answer from the agent");
                                    leg.bye().await;
                                    forks.unusable();
                                }
                            }
                        }
                        LegEvent::Final { code, .. } => {
                            if let Some(agent) = forks.failed(&key, code) {
                                wait.handle_input(WaitInput::OfferEnded { agent });
                            }
                        }
                        _ => {}
                    }
                }
                Some(ev) = player_rx.recv(), if player.is_some() => wait.handle_input(WaitInput::Player(ev)),
                _ = self.ctx.shutdown.cancelled() => wait.handle_input(WaitInput::Shutdown),
            }
        }
    }

    /// A queue wait's fact for the call's record.
    fn record_wait(&self, fact: WaitFact) {
        let record = self.record;
        match fact {
            WaitFact::OfferCancelled(agent) => {
                record.fact("offer cancelled", |b, t| b.offer_cancelled(t, &agent));
            }
            WaitFact::Answered(agent) => record.fact("answered", |b, t| b.answered(t, &agent)),
            WaitFact::TimedOut => record.fact("queue timed out", |b, t| b.queue_timed_out(t)),
            WaitFact::Callback => record.fact("callback", |b, t| b.callback_requested(t)),
            WaitFact::Shutdown => record.end_by_system("shutdown", None, false),
        }
    }

    /// An INVITE to an agent's phone (auto-answer headers for agents
    /// who have them).
    fn invite_to_agent(&self, device: &str, c: &super::Contact) -> Option<OutboundInvite> {
        let template = self.invite_to(String::new(), None, false);
        invite_to_agent(self.ctx, device, c, template, self.b.web.as_deref())
    }

    fn invite_to(
        &self,
        target: String,
        destination: Option<SocketAddr>,
        tcp: bool,
    ) -> OutboundInvite {
        OutboundInvite {
            target,
            destination,
            tcp,
            from_user: self.caller.clone(),
            from_display: self.caller_name.clone(),
            sdp: self.b.bytes.clone(),
            headers: vec![],
            credential: None,
            direct: false,
            route: vec![],
        }
    }

    /// Send `invites` in parallel and wait for the first answer, the last
    /// failure, the ring timeout, the caller hanging up or shutdown (the
    /// decisions are [`Forks`]'; this keeps the legs and tells the caller
    /// and the record).
    async fn attempt(
        &mut self,
        invites: Vec<(OutboundInvite, Option<String>)>,
        provisional_within: Option<Duration>,
    ) -> Attempt {
        let clock = super::ShellClock::start();
        let mut forks = Forks::new(clock.now(), self.ctx.ring_timeout, provisional_within);
        let mut legs: HashMap<LegKey, OutboundLeg> = HashMap::new();
        let mut devices: HashMap<LegKey, String> = HashMap::new();
        for (invite, device) in invites {
            match dial(
                &self.ctx.stack,
                &self.ctx.web_phones,
                invite,
                &self.events_tx,
            ) {
                Ok(leg) => {
                    if let Some(d) = &device {
                        devices.insert(leg.key().clone(), d.clone());
                    }
                    forks.sent(leg.key().clone(), device);
                    legs.insert(leg.key().clone(), leg);
                }
                Err(e) => {
                    warn!(error = %e, "cannot send INVITE");
                    forks.not_sent();
                }
            }
        }
        forks.started();
        let mut answers: HashMap<LegKey, Option<Vec<u8>>> = HashMap::new();
        loop {
            while let Some(out) = forks.poll_output() {
                match out {
                    ForkOutput::Cancel(key) => {
                        if let Some(leg) = legs.remove(&key) {
                            tokio::spawn(async move { leg.hang_up().await });
                        }
                    }
                    ForkOutput::Ringing => self.inbound.progress(None),
                    ForkOutput::EarlyMedia => self.inbound.progress(Some(self.a_answer.clone())),
                    ForkOutput::Offered(device) => {
                        let agent = self.ctx.agent_id_of(&device);
                        self.record.fact("offered", |b, t| b.offered(t, &agent));
                    }
                    ForkOutput::OfferCancelled(device) => {
                        let agent = self.ctx.agent_id_of(&device);
                        self.record
                            .fact("offer cancelled", |b, t| b.offer_cancelled(t, &agent));
                    }
                    // Only an open-ended attempt (the ACD's) tells the ACD.
                    ForkOutput::OfferRejected(_) | ForkOutput::OfferFailed(_) => {}
                }
            }
            if let Some(outcome) = forks.outcome() {
                return match outcome.clone() {
                    ForkOutcome::Answered(key) => {
                        let Some(leg) = legs.remove(&key) else {
                            return Attempt::Failed(forks.codes().to_vec());
                        };
                        let body = answers.remove(&key).flatten();
                        match self.read_answer(body.as_deref()) {
                            Ok(neg) => {
                                let device = devices.remove(&key);
                                let agent = device.as_deref().map(|d| self.ctx.agent_id_of(d));
                                Attempt::Answered(Box::new(Connected {
                                    leg,
                                    neg,
                                    queued: None,
                                    agent,
                                    device,
                                }))
                            }
                            Err(e) => {
                                warn!(error = %e, "unusable answer from the callee");
                                leg.bye().await;
                                let mut codes = forks.codes().to_vec();
                                codes.push(488);
                                Attempt::Failed(codes)
                            }
                        }
                    }
                    ForkOutcome::Failed(codes) => Attempt::Failed(codes),
                    ForkOutcome::NoAnswer => Attempt::NoAnswer,
                    ForkOutcome::NoProvisional => Attempt::NoProvisional,
                    ForkOutcome::CallerGone => Attempt::CallerGone,
                };
            }
            let deadline = forks.poll_timeout().map(|t| clock.instant(t));
            tokio::select! {
                ev = self.events.recv() => {
                    let Some((key, ev)) = ev else {
                        forks.caller_gone();
                        continue;
                    };
                    if &key == self.inbound.key() {
                        if let LegEvent::Ended(end) = ev {
                            info!(?end, "caller hung up while ringing");
                            forks.caller_gone();
                        }
                        continue;
                    }
                    let response = match ev {
                        LegEvent::Progress { code, sdp } => Response::Provisional { code, early_media: sdp.is_some() },
                        LegEvent::Final { code, sdp } if (200..300).contains(&code) => {
                            if forks.is_ringing(&key) {
                                answers.insert(key.clone(), sdp);
                            }
                            Response::Answered
                        }
                        LegEvent::Final { code, .. } => Response::Failed(code),
                        _ => continue,
                    };
                    forks.handle_response(&key, response);
                }
                _ = sleep_until(deadline) => forks.handle_timeout(clock.now()),
                _ = self.ctx.shutdown.cancelled() => {
                    forks.caller_gone();
                    self.record.end_by_system("shutdown", Some(503), false);
                    self.inbound.reject(503);
                }
            }
        }
    }

    fn read_answer(&self, body: Option<&[u8]>) -> Result<Negotiated, String> {
        let text = String::from_utf8_lossy(body.unwrap_or_default());
        let answer = SessionDescription::parse(&text).map_err(|e| e.to_string())?;
        sdp::read_answer(&self.b.sdp, &answer).map_err(|e| e.to_string())
    }
}

/// Play `last` (a last prompt) to the caller, then hang up (bounded: 20 s,
/// or the caller hanging up first).
async fn farewell(
    player: Player,
    last: Option<Prompt>,
    inbound: &InboundLeg,
    events: &mut LegEvents,
) {
    if let Some(p) = last {
        player.set_loop(false);
        player.interrupt_on_key(false);
        let wait = p.duration() + Duration::from_millis(300);
        player.play(p);
        let _ = tokio::time::timeout(wait.min(Duration::from_secs(20)), async {
            while let Some((key, ev)) = events.recv().await {
                if &key == inbound.key() && matches!(ev, LegEvent::Ended(_)) {
                    return;
                }
            }
        })
        .await;
    }
    drop(player);
    inbound.bye().await;
}

/// The phones rung for one ACD call's offers (a queued caller, or an
/// agent's consultation of a skill group): every registration of the
/// offered agent's phone is forked to, and the answer, rejection or
/// failure goes back to the ACD, which owns the ring timeout (its
/// `CancelOffer`) and picks the next agent. The decisions are an
/// open-ended [`Forks`]'; this keeps the legs and tells the ACD.
pub(super) struct AcdOffers {
    call: CallId,
    queues: super::queue::Queues,
    forks: Forks<LegKey>,
    /// Leg key → (the SIP user of its agent's phone, the leg).
    legs: HashMap<LegKey, (String, OutboundLeg)>,
}

impl AcdOffers {
    pub(super) fn new(call: CallId, queues: super::queue::Queues) -> Self {
        Self {
            call,
            queues,
            forks: Forks::open_ended(),
            legs: HashMap::new(),
        }
    }

    /// The ACD offers the call to `agent`: ring every registration of
    /// `device` with `template` (its target and destination replaced, the
    /// auto-answer headers added for agents who have them). `false` (and
    /// the ACD told the offer failed) when no phone could be rung.
    pub(super) fn ring(
        &mut self,
        ctx: &CallContext,
        events_tx: &LegEventSender,
        agent: &str,
        device: &str,
        (template, web_offer): (&OutboundInvite, Option<&[u8]>),
    ) -> bool {
        let mut keys = Vec::new();
        for c in ctx.directory.contacts(device) {
            let Some(invite) = invite_to_agent(ctx, device, &c, template.clone(), web_offer) else {
                continue;
            };
            match dial(&ctx.stack, &ctx.web_phones, invite, events_tx) {
                Ok(leg) => {
                    keys.push(leg.key().clone());
                    self.legs
                        .insert(leg.key().clone(), (device.to_string(), leg));
                }
                Err(e) => warn!(error = %e, %agent, "cannot ring the agent"),
            }
        }
        if keys.is_empty() {
            debug!(call = %self.call, %agent, "agent's phone is not registered");
        }
        self.forks.offer(agent, keys);
        self.execute().offered
    }

    /// Whether `key` is one of the phones rung.
    pub(super) fn contains(&self, key: &LegKey) -> bool {
        self.legs.contains_key(key)
    }

    /// A phone answered: its agent, their phone's SIP user and the leg;
    /// every other phone stops. The owner tells the ACD (`OfferAnswered`),
    /// or [`Self::unusable`] for an unusable answer.
    pub(super) fn answered(
        &mut self,
        key: &LegKey,
    ) -> Option<(String, Option<String>, OutboundLeg)> {
        let agent = self.forks.party(key)?.to_string();
        let (device, leg) = self.legs.remove(key)?;
        self.forks.handle_response(key, Response::Answered);
        self.execute();
        Some((agent, Some(device), leg))
    }

    /// The answer [`Self::answered`] returned is unusable (the owner hung
    /// it up): the ACD hears the offer failed and offers the next agent.
    pub(super) fn unusable(&mut self) {
        self.forks.answer_unusable();
        self.execute();
    }

    /// A phone answered `code` (≥ 300): when it was the agent's last, the
    /// ACD hears the offer was rejected (486/600/603) or failed, and the
    /// agent is returned.
    pub(super) fn failed(&mut self, key: &LegKey, code: u16) -> Option<String> {
        self.legs.remove(key)?;
        self.forks.handle_response(key, Response::Failed(code));
        self.execute().ended
    }

    /// Stop ringing one agent (or all), without waiting.
    pub(super) fn stop(&mut self, agent: Option<&str>) {
        self.forks.stop(agent);
        self.execute();
    }

    /// Carry out what the machine decided: CANCEL (a 200 that crossed it
    /// gets a BYE from the dialog), tell the ACD; what the owner records
    /// (an agent offered, an offer that ended unanswered) is returned.
    fn execute(&mut self) -> Executed {
        let mut done = Executed::default();
        let call = self.call;
        while let Some(out) = self.forks.poll_output() {
            match out {
                ForkOutput::Cancel(key) => {
                    if let Some((_, leg)) = self.legs.remove(&key) {
                        tokio::spawn(async move { leg.hang_up().await });
                    }
                }
                ForkOutput::Offered(_) => done.offered = true,
                ForkOutput::OfferCancelled(agent) => done.ended = Some(agent),
                ForkOutput::OfferRejected(agent) => {
                    self.queues.input(Input::OfferRejected { call, agent })
                }
                ForkOutput::OfferFailed(agent) => {
                    self.queues.input(Input::OfferFailed { call, agent })
                }
                ForkOutput::Ringing | ForkOutput::EarlyMedia => {}
            }
        }
        done
    }
}

/// What [`AcdOffers::execute`] leaves to the owner's record.
#[derive(Default)]
struct Executed {
    /// An agent was offered the call (a phone of theirs rings).
    offered: bool,
    /// The offer to this agent ended unanswered (their last phone failed).
    ended: Option<String>,
}

/// An INVITE to an agent's phone; for agents with `auto_answer` it asks
/// the phone to answer by itself (CTI issue §3: "auto-answer signalling
/// to the phone where supported"): `Call-Info: …;answer-after=0`
/// (Polycom, Yealink, baresip …) and `Alert-Info: …;info=alert-autoanswer`
/// (Grandstream, Linphone, Yealink …). Phones that know neither ring.
///
/// A browser phone's invite carries `web_offer` ([`super::web_phone::for_browser`]).
fn invite_to_agent(
    ctx: &CallContext,
    device: &str,
    c: &super::Contact,
    mut invite: OutboundInvite,
    web_offer: Option<&[u8]>,
) -> Option<OutboundInvite> {
    invite.target = c.uri.clone();
    invite.destination = Some(c.source);
    invite.tcp = c.tcp;
    invite.route = c.route.clone();
    // Straight to the phone's registered address, or through the edge it
    // registered through, which relays to that one contact: nothing
    // between can fork.
    invite.direct = true;
    if ctx.auto_answers(device) {
        let host = ctx.media_address;
        invite
            .headers
            .push(("Call-Info".into(), format!("<sip:{host}>;answer-after=0")));
        invite.headers.push((
            "Alert-Info".into(),
            format!("<http://{host}/>;info=alert-autoanswer"),
        ));
    }
    super::web_phone::for_browser(invite, web_offer)
}
