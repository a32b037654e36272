//! The shell of an agent-first call's ringing (callbacks, outbound calls):
//! it feeds the pure [`AgentFirst`] machine from the legs' responses, the
//! ACD's news, the agent's hang-up and the clock, and does what it
//! decides: sends the INVITEs to the agent's phones and through each
//! trunk, cancels forks, reads the answers' SDP (the agent's codec is
//! offered to the citizen, so audio usually passes untranscoded) and hangs
//! up the agent's leg when the citizen is not reached.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::agent_first::{AgentFirst, NotReached, Output, TrunkTry};
use super::forks::Response;
use super::queue::QueueNews;
use super::{local_media, retarget_telephone_event, sleep_until, CallContext, ShellClock};
use crate::media::sdp::{self, LocalMedia, Negotiated, SessionDescription};
use crate::sip::stack::{LegEventSender, OutboundInvite};
use crate::sip::{Leg, LegEvent, LegEvents, LegKey, OutboundLeg};

/// The citizen's leg of an agent-first call.
pub(super) struct Citizen {
    pub leg: OutboundLeg,
    pub neg: Negotiated,
    /// Our media toward the citizen, and the offer made from it.
    pub local: LocalMedia,
    pub offer: SessionDescription,
}

/// Both legs, answered.
pub(super) struct Reached {
    /// The agent's leg and what its answer negotiated.
    pub agent: (OutboundLeg, Negotiated),
    pub citizen: Citizen,
}

/// Whom to dial once the agent answered.
pub(super) struct Dial<'a> {
    /// The citizen's number.
    pub number: &'a str,
    /// The caller ID the citizen sees.
    pub caller_id: &'a str,
    /// The first trunk (its backups follow); `None`: no trunk.
    pub trunk: Option<&'a str>,
    /// Our RTP port toward the citizen.
    pub port: u16,
}

/// An INVITE from `from` offering `offer`.
pub(super) fn invite(
    target: String,
    destination: Option<SocketAddr>,
    tcp: bool,
    from: &str,
    offer: &SessionDescription,
) -> OutboundInvite {
    OutboundInvite {
        target,
        destination,
        tcp,
        from_user: from.to_string(),
        from_display: None,
        sdp: offer.to_string().into_bytes(),
        headers: vec![],
        credential: None,
        direct: false,
        route: vec![],
    }
}

/// What a 2xx's body negotiated against `offer`, if usable.
fn read(offer: &SessionDescription, body: Option<Vec<u8>>) -> Option<Negotiated> {
    let body = body.unwrap_or_default();
    let answer = SessionDescription::parse(&String::from_utf8_lossy(&body)).ok()?;
    sdp::read_answer(offer, &answer).ok()
}

/// Ring the agent (`agent_invites`, offering `agent_offer`), then dial the
/// citizen per `dial`; `news` carries the ACD's withdrawal of a callback's
/// reservation (heard until the agent answers); `agent_answered` runs when
/// the agent's answer is usable, before the citizen is dialled.
pub(super) async fn reach(
    ctx: &CallContext,
    (events_tx, events): (&LegEventSender, &mut LegEvents),
    agent_invites: Vec<OutboundInvite>,
    agent_offer: &SessionDescription,
    mut news: Option<&mut mpsc::UnboundedReceiver<QueueNews>>,
    dial: Dial<'_>,
    mut agent_answered: impl FnMut(),
) -> Result<Reached, NotReached> {
    let clock = ShellClock::start();
    let trunks = match dial.trunk {
        Some(first) => ctx
            .trunks
            .attempt_order(first)
            .into_iter()
            .filter(|t| t.proxy.is_some())
            .map(|t| TrunkTry {
                name: t.name.clone(),
                provisional_within: Duration::from_secs(t.invite_timeout_secs.max(1)),
            })
            .collect(),
        None => Vec::new(),
    };
    let mut m = AgentFirst::new(clock.now(), ctx.ring_timeout, trunks);
    let mut legs: HashMap<LegKey, OutboundLeg> = HashMap::new();
    let mut answers: HashMap<LegKey, Option<Vec<u8>>> = HashMap::new();
    for inv in agent_invites {
        match super::web_phone::dial(&ctx.stack, &ctx.web_phones, inv, events_tx) {
            Ok(leg) => {
                m.agent_sent(leg.key().clone());
                legs.insert(leg.key().clone(), leg);
            }
            Err(e) => warn!(error = %e, "cannot ring the agent's phone"),
        }
    }
    m.agent_started(clock.now());
    let mut agent: Option<(OutboundLeg, Negotiated)> = None;
    let mut citizen_offer: Option<(LocalMedia, SessionDescription)> = None;
    let mut trunk: Option<String> = None;
    loop {
        while let Some(out) = m.poll_output() {
            match out {
                Output::Cancel(k) => {
                    if let Some(leg) = legs.remove(&k) {
                        tokio::spawn(async move { leg.hang_up().await });
                    }
                }
                Output::AgentAnswered(k) => {
                    let leg = legs.remove(&k);
                    match (leg, read(agent_offer, answers.remove(&k).flatten())) {
                        (Some(leg), Some(neg)) => {
                            agent_answered();
                            citizen_offer = Some(citizen_media(ctx, &neg, dial.port, dial.trunk));
                            agent = Some((leg, neg));
                            m.agent_ready(clock.now());
                        }
                        (leg, _) => {
                            warn!("unusable answer from the agent's phone");
                            if let Some(leg) = leg {
                                leg.bye().await;
                            }
                            m.agent_unusable();
                        }
                    }
                }
                Output::DialTrunk(name) => {
                    if let Some(previous) = trunk.replace(name.clone()) {
                        warn!(%previous, backup = %name, "trunk failed; trying the backup");
                    }
                    let (Some(t), Some((_, offer))) = (ctx.trunks.get(&name), &citizen_offer)
                    else {
                        m.citizen_not_sent(clock.now());
                        continue;
                    };
                    let Some(proxy) = t.proxy else {
                        m.citizen_not_sent(clock.now());
                        continue;
                    };
                    let target = format!("sip:{}@{proxy}", dial.number);
                    let inv = invite(target, Some(proxy), t.tcp, dial.caller_id, offer);
                    match super::web_phone::dial(&ctx.stack, &ctx.web_phones, inv, events_tx) {
                        Ok(leg) => {
                            m.citizen_sent(leg.key().clone());
                            legs.insert(leg.key().clone(), leg);
                        }
                        Err(e) => {
                            warn!(error = %e, trunk = %name, "cannot dial through the trunk; trying the backup");
                            m.citizen_not_sent(clock.now());
                        }
                    }
                }
                Output::CitizenAnswered(k) => {
                    let leg = legs.remove(&k);
                    let neg = citizen_offer
                        .as_ref()
                        .and_then(|(_, offer)| read(offer, answers.remove(&k).flatten()));
                    match (leg, neg, agent.take(), citizen_offer.take()) {
                        (Some(leg), Some(neg), Some(agent), Some((local, offer))) => {
                            return Ok(Reached {
                                agent,
                                citizen: Citizen {
                                    leg,
                                    neg,
                                    local,
                                    offer,
                                },
                            });
                        }
                        (leg, _, a, _) => {
                            warn!(number = %dial.number, "unusable answer from the citizen's side");
                            if let Some(leg) = leg {
                                leg.bye().await;
                            }
                            agent = a;
                            m.citizen_unusable();
                        }
                    }
                }
                Output::ByeAgent => {
                    if let Some((leg, _)) = agent.take() {
                        leg.bye().await;
                    }
                }
            }
        }
        if let Some(n) = m.not_reached() {
            if let NotReached::Citizen(code) = n {
                info!(code, number = %dial.number, "citizen not reached");
            }
            return Err(n.clone());
        }
        let deadline = m.poll_timeout().map(|t| clock.instant(t));
        let listening = agent.is_none();
        tokio::select! {
            n = async {
                match news.as_mut() {
                    Some(rx) if listening => rx.recv().await,
                    _ => std::future::pending().await,
                }
            } => {
                if matches!(n, Some(QueueNews::Cancel { .. }) | None) {
                    m.withdraw(clock.now());
                }
            }
            ev = events.recv() => {
                let Some((key, ev)) = ev else {
                    m.withdraw(clock.now());
                    continue;
                };
                if agent.as_ref().is_some_and(|(leg, _)| leg.key() == &key) {
                    if let LegEvent::Ended(_) = ev {
                        agent = None;
                        m.agent_left(clock.now());
                    }
                    continue;
                }
                let response = match ev {
                    LegEvent::Progress { code, sdp } => Response::Provisional { code, early_media: sdp.is_some() },
                    LegEvent::Final { code, sdp } if (200..300).contains(&code) => {
                        if m.is_ringing(&key) {
                            answers.insert(key.clone(), sdp);
                        }
                        Response::Answered
                    }
                    LegEvent::Final { code, .. } => Response::Failed(code),
                    _ => continue,
                };
                m.handle_response(clock.now(), &key, response);
            }
            _ = sleep_until(deadline) => m.handle_timeout(clock.now()),
            _ = ctx.shutdown.cancelled() => m.withdraw(clock.now()),
        }
    }
}

/// Our media toward the citizen: the agent's codec (and DTMF payload type)
/// on `port`, and the offer made from it.
fn citizen_media(
    ctx: &CallContext,
    agent: &Negotiated,
    port: u16,
    trunk: Option<&str>,
) -> (LocalMedia, SessionDescription) {
    let local = LocalMedia {
        sdes: ctx.srtp.toward_trunk(trunk),
        ..local_media(ctx, port, vec![agent.codec])
    };
    let mut offer = sdp::build_offer(&LocalMedia {
        telephone_event: agent.telephone_event.is_some(),
        ..local.clone()
    });
    if let Some(pt) = agent.telephone_event {
        retarget_telephone_event(&mut offer, pt);
    }
    (local, offer)
}
