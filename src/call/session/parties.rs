//! The extra parties of a connected call (REQUIREMENTS §3 three-way
//! calls; §4 transfers): third parties of a three-way call, and attended
//! transfers (咨询转) to an agent, a number or a skill group — the
//! consultation queued in the ACD and its offers rung — completed by the
//! consulted party taking the agent's place (or by a supervisor's
//! take-over: their leg then becomes a member here). The caller's hold
//! during a consultation and the agent's replacement are told to the
//! call's [`Fsm`]. Supervisors' legs are `supervisors`.

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::command::{PartyTarget, Supervision};
use super::supervisors::Supervisors;
use super::Session;
use crate::call::fsm::Fsm;
use crate::events::model::{ConferenceChange, Party, PartyRole};
use crate::media::mixer::{ParticipantId, Role};
use crate::media::ports::PortPair;
use crate::media::relay::{self, LegFormat, RelayHandle};
use crate::media::sdp::{self, SessionDescription};
use crate::sip::{InboundLeg, Leg, LegEvent, OutboundLeg};

/// The extra parties of a call and the state of its transfers.
#[derive(Default)]
pub(super) struct Parties {
    /// Third parties and consulted parties on the call.
    pub members: Vec<Member>,
    /// The supervisors' legs.
    pub supervisors: Supervisors,
    /// Parties being rung.
    pub dialing: Vec<Dialing>,
    /// A consultation of a skill group.
    pub group: Option<GroupConsult>,
    /// The ACD was told the first agent's conversation ended (an attended
    /// transfer or a take-over).
    pub acd_released: bool,
    /// The agent's phone's second line, consulting from the phone.
    pub line: Option<super::second_line::SecondLine>,
    /// A phone's REFER completed the consultation (`Output::Completed`):
    /// the party who took the caller and the group it came through.
    pub completed: Option<(String, Option<String>)>,
}

impl Parties {
    /// The phones still on the call, to hang up when it ends (the
    /// consultation and the ACD bookkeeping stay).
    pub(super) fn take_phones(&mut self) -> Phones {
        Phones {
            dialing: std::mem::take(&mut self.dialing),
            supervisors: std::mem::take(&mut self.supervisors),
            members: std::mem::take(&mut self.members),
            line: self.line.take(),
        }
    }
}

/// The extra parties' phones of an ended call.
pub(super) struct Phones {
    dialing: Vec<Dialing>,
    supervisors: Supervisors,
    members: Vec<Member>,
    line: Option<super::second_line::SecondLine>,
}

impl Phones {
    /// Hang them all up, and the call's own legs `a` and `b` where given
    /// (those the call's machine said BYE to), all at once: one phone that
    /// vanished (its BYE unanswered for 64*T1) holds up no other.
    pub(super) async fn hang_up<A: Leg, B: Leg>(mut self, a: Option<&A>, b: Option<&B>) {
        let dialing = futures::future::join_all(
            self.dialing
                .drain(..)
                .map(|d| async move { d.leg.hang_up().await }),
        );
        // The machine said BYE to every supervisor; none is left.
        let supervisors = futures::future::join_all(self.supervisors.drain().map(|s| s.hang_up()));
        let members = futures::future::join_all(self.members.drain(..).map(|s| async move {
            info!(supervisor = %s.user, "call over: supervisor leaves");
            s.leg.bye().await;
            s.leg.forget();
        }));
        let line = async {
            if let Some(l) = self.line.take() {
                l.hang_up().await;
            }
        };
        let own = async {
            if let Some(a) = a {
                a.bye().await;
            }
        };
        let other = async {
            if let Some(b) = b {
                b.bye().await;
            }
        };
        tokio::join!(dialing, supervisors, members, line, own, other);
    }
}

/// An attended transfer to a skill group: the consultation waits in the
/// group's ACD queue like a caller, and the agents the ACD offers it to
/// are rung (all on one set of ports) until one answers and joins as the
/// consulted party. Answered, it is that agent's ACD call: talking until
/// it ends, then after-call work.
pub(super) struct GroupConsult {
    pub(super) group: String,
    pub(super) call: crate::acd::CallId,
    pub(super) queues: crate::call::queue::Queues,
    /// The ACD's news about the consultation (`None` once it is gone).
    pub(super) news: Option<mpsc::UnboundedReceiver<crate::call::queue::QueueNews>>,
    pub(super) offers: crate::call::ringing::AcdOffers,
    /// The INVITE every offered phone gets (the consultation's offer).
    pub(super) template: crate::sip::stack::OutboundInvite,
    /// Its offer to browser phones.
    pub(super) web_offer: Option<Vec<u8>>,
    pub(super) offer: SessionDescription,
    /// The consultation's ports, until a phone answers.
    pub(super) ports: Option<PortPair>,
    /// The agent who answered.
    pub(super) answered: Option<String>,
}

impl GroupConsult {
    /// The consultation leaves the ACD: an answered one ends (the agent's
    /// after-call work), a waiting or ringing one is given up (never a
    /// missed call) and its phones stop.
    pub(super) fn withdraw(mut self) {
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
pub(super) async fn group_news(
    group: &mut Option<GroupConsult>,
) -> Option<crate::call::queue::QueueNews> {
    match group.as_mut().and_then(|g| g.news.as_mut()) {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// An extra party's leg: a supervisor who dialled in (`*31`…), or a
/// phone hotline rang.
pub(super) enum SupLeg {
    In(Box<InboundLeg>),
    Out(OutboundLeg),
}

impl SupLeg {
    pub(super) fn key(&self) -> &crate::sip::LegKey {
        match self {
            SupLeg::In(l) => l.key(),
            SupLeg::Out(l) => l.key(),
        }
    }

    pub(super) async fn bye(&self) {
        match self {
            SupLeg::In(l) => l.bye().await,
            SupLeg::Out(l) => l.bye().await,
        }
    }

    pub(super) fn forget(&self) {
        match self {
            SupLeg::In(l) => l.forget(),
            SupLeg::Out(l) => l.forget(),
        }
    }
}

/// A phone hotline is ringing (a third party, a consulted party, a
/// supervisor).
pub(super) struct Dialing {
    pub(super) leg: OutboundLeg,
    pub(super) ports: PortPair,
    pub(super) offer: SessionDescription,
    pub(super) user: String,
}

/// An extra party on the call.
pub(super) struct Member {
    pub(super) leg: SupLeg,
    pub(super) id: ParticipantId,
    pub(super) user: String,
    pub(super) answer: Vec<u8>,
    /// Its number or agent id (a conferenced or consulted party, or the
    /// supervisor who took the call over).
    pub(super) party: Option<String>,
}

impl<A: Leg, B: Leg> Session<'_, A, B> {
    /// Attended transfer, step 1: the caller on hold and out of the mix,
    /// `target` rung.
    pub(super) async fn consult(
        &mut self,
        fsm: &mut Fsm,
        target: PartyTarget,
    ) -> Result<Dialing, String> {
        if let Some(why) = fsm.consult_refusal() {
            return Err(why);
        }
        let via = (target.destination, target.tcp, target.route.clone());
        let d = self
            .dial(&target.uri, via, None, target.label.clone())
            .await?;
        fsm.begin_consult(&target.label, false)?;
        self.consult_device = target.device.clone();
        info!(party = %target.label, "consulting: the caller is on hold");
        Ok(d)
    }

    /// Attended transfer to a skill group, step 1: the consultation enters
    /// the group's ACD queue (refused: the ACD's reason) and the caller
    /// goes on hold; the ACD's offers then ring the group's agents.
    pub(super) async fn consult_group(
        &mut self,
        fsm: &mut Fsm,
        group: String,
    ) -> Result<GroupConsult, String> {
        if let Some(why) = fsm.consult_refusal() {
            return Err(why);
        }
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
        let local = crate::call::local_media(self.ctx, ports.port(), self.ctx.codecs.clone());
        let offer = sdp::build_offer(&local);
        let priority = crate::acd::CONSULT_PRIORITY;
        let (call, news) = queues.consult(&group, priority, &self.caller).await?;
        if let Err(why) = fsm.begin_consult(&group, true) {
            queues.input(crate::acd::Input::CallerHungUp { call });
            return Err(why);
        }
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
            direct: false,
            route: vec![],
        };
        Ok(GroupConsult {
            offers: crate::call::ringing::AcdOffers::new(call, queues.clone()),
            group,
            call,
            queues,
            news: Some(news),
            web_offer: crate::call::web_phone::offer_for(&offer, &ports),
            template,
            offer,
            ports: Some(ports),
            answered: None,
        })
    }

    /// The ACD's news about a consultation of a group: ring the offered
    /// agent, stop ringing one. `false` when the consultation is over (the
    /// ACD let it go).
    pub(super) fn group_news(
        &self,
        g: &mut GroupConsult,
        news: Option<crate::call::queue::QueueNews>,
    ) -> bool {
        use crate::call::queue::QueueNews;
        match news {
            Some(QueueNews::Offer { agent, device }) => {
                let Some(events_tx) = &self.events_tx else {
                    return true;
                };
                if g.offers.ring(
                    self.ctx,
                    events_tx,
                    &agent,
                    &device,
                    (&g.template, g.web_offer.as_deref()),
                ) {
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
    pub(super) async fn group_leg_event(
        &mut self,
        relay: &RelayHandle,
        g: &mut GroupConsult,
        key: &crate::sip::LegKey,
        ev: LegEvent,
        index: usize,
    ) -> Option<(Member, Option<String>)> {
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
                        g.offers.unusable();
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
                let s = Member {
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

    /// Attended transfer, step 2, as the call's machine decided it
    /// (`Fsm::complete_consult` or `take_over`): the consulted party
    /// `label` (through skill group `to_group`) took the caller; the
    /// record learns the transfer, the first agent's leg ends and its
    /// after-call work starts, and supervisors now reach the call through
    /// the new agent's phone.
    pub(super) async fn transferred(
        &mut self,
        label: String,
        to_group: Option<String>,
        registration: Option<&mut super::command::Registration>,
    ) {
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
    }

    /// A third party joined or left: `conference.changed` with everyone on
    /// the call now (supervisors are not members).
    pub(super) fn conference_changed(
        &self,
        change: ConferenceChange,
        label: &str,
        sups: &[Member],
    ) {
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

    /// Ring `uri` at `via` on fresh ports: a supervisor (`mode`) or a third
    /// party (`None`).
    pub(super) async fn dial(
        &mut self,
        uri: &str,
        (destination, tcp, route): (std::net::SocketAddr, bool, Vec<String>),
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
        let local = crate::call::local_media(self.ctx, ports.port(), self.ctx.codecs.clone());
        let offer = sdp::build_offer(&local);
        // A browser phone gets the WebRTC form of the offer.
        let body = match crate::call::web_phone::phone_of(uri) {
            Some(_) => crate::call::web_phone::offer_for(&offer, &ports)
                .ok_or("no DTLS certificate to ring a browser")?,
            None => offer.to_string().into_bytes(),
        };
        let invite = crate::sip::stack::OutboundInvite {
            target: uri.to_string(),
            destination: Some(destination),
            tcp,
            from_user: "hotline".into(),
            from_display: mode.map(|m| format!("{m:?}")),
            sdp: body,
            headers: vec![],
            credential: None,
            direct: false,
            route,
        };
        let leg =
            crate::call::web_phone::dial(&self.ctx.stack, &self.ctx.web_phones, invite, &events_tx)
                .map_err(|e| format!("cannot ring {user}: {e}"))?;
        info!(party = %user, ?mode, "ringing an extra party");
        Ok(Dialing {
            leg,
            ports,
            offer,
            user,
        })
    }

    /// News from a party's phone being rung: joined on answer.
    pub(super) async fn dialing_event(
        &mut self,
        relay: &RelayHandle,
        fsm: &mut Fsm,
        dialing: &mut Vec<Dialing>,
        i: usize,
        ev: LegEvent,
        index: usize,
    ) -> Option<Member> {
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
                        warn!(error = %e, party = %d.user, "unusable answer from the party");
                        d.leg.bye().await;
                        fsm.consult_failed(&d.user);
                        return None;
                    }
                };
                let id = ParticipantId(2 + index as u64 + rand::random::<u32>() as u64 * 16);
                let joined = relay
                    .join(relay::Participant {
                        id,
                        role: Role::External,
                        pair: d.ports,
                        remote: neg.remote,
                        format: LegFormat::from_negotiated(&neg),
                    })
                    .await;
                if let Err(e) = joined {
                    warn!(error = %e, party = %d.user, "extra party could not join");
                    d.leg.bye().await;
                    fsm.consult_failed(&d.user);
                    return None;
                }
                info!(party = %d.user, "third party joined the call");
                Some(Member {
                    leg: SupLeg::Out(d.leg),
                    id,
                    party: Some(d.user.clone()),
                    user: d.user,
                    answer: d.offer.to_string().into_bytes(),
                })
            }
            LegEvent::Final { code, .. } => {
                let d = dialing.remove(i);
                info!(code, party = %d.user, "the party rung did not answer");
                if fsm.consult_failed(&d.user) {
                    info!(party = %d.user, "consultation failed: the caller is back");
                }
                None
            }
            LegEvent::Ended(_) => {
                let d = dialing.remove(i);
                fsm.consult_failed(&d.user);
                None
            }
            _ => None,
        }
    }

    /// Something happened on an extra party's leg; the label of a party
    /// who left.
    pub(super) async fn member_event(
        &mut self,
        relay: &RelayHandle,
        sups: &mut Vec<Member>,
        i: usize,
        ev: LegEvent,
    ) -> Option<String> {
        match ev {
            LegEvent::Ended(_) => {
                let s = sups.remove(i);
                relay.leave(s.id);
                s.leg.forget();
                info!(party = %s.user, "extra party left the call");
                if let Some(label) = &s.party {
                    self.conference_changed(ConferenceChange::Left, label, sups);
                }
                return s.party;
            }
            // Keys are no mode switch: a party is not a supervisor.
            LegEvent::Info { responder, .. } => {
                responder.respond(200, vec![], None).await;
            }
            // Hold or a new address from the party's phone: keep our
            // answer (the mix goes on).
            LegEvent::Reoffer { responder, .. } => {
                let answer = sups[i].answer.clone();
                responder.respond(200, vec![], Some(answer)).await;
            }
            _ => {}
        }
        None
    }
}
