//! The supervisors' legs of a connected call (REQUIREMENTS §3
//! monitoring): the shell half of `call::fsm::supervise`. It answers a
//! supervisor's INVITE (`*31`/`*32`/`*33`) on fresh ports or rings their
//! phone for the API, reads their answer, and reports what happened as
//! [`Input::Supervisor`]; it executes the machine's
//! [`SupervisorAction`]s on the legs and the mix (join in a mode, switch
//! mode, leave, BYE, cancel). What may happen when is the machine's.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::command::Supervision;
use super::parties::{Member, SupLeg};
use super::{Io, Session};
use crate::call::fsm::{Fsm, Input, Now, SupId, SupervisorAction, SupervisorEvent};
use crate::media::mixer::{ParticipantId, Role};
use crate::media::ports::PortPair;
use crate::media::relay::{self, LegFormat, RelayHandle};
use crate::media::sdp::{self, Negotiated, SessionDescription};
use crate::sip::stack::PendingInvite;
use crate::sip::{Leg, LegEvent, LegKey};

/// A supervisor's leg as the shell keeps it.
pub(super) struct SupervisorLeg {
    leg: SupLeg,
    user: String,
    /// Our offer, while their phone rings (their answer is read against it).
    offer: Option<SessionDescription>,
    /// Their ports, until they join the mix.
    ports: Option<PortPair>,
    /// What they negotiated, until they join the mix.
    neg: Option<Negotiated>,
    /// Our SDP as they have it.
    answer: Vec<u8>,
    /// Their participant in the mix, once joined.
    id: Option<ParticipantId>,
}

/// The supervisors' legs of a call, by the machine's names for them.
#[derive(Default)]
pub(super) struct Supervisors {
    legs: BTreeMap<SupId, SupervisorLeg>,
    next: u64,
}

impl Supervisors {
    fn add(&mut self, leg: SupervisorLeg) -> SupId {
        self.next += 1;
        let sup = SupId(self.next);
        self.legs.insert(sup, leg);
        sup
    }

    /// The supervisor whose leg is `key`.
    pub(super) fn by_key(&self, key: &LegKey) -> Option<SupId> {
        self.legs
            .iter()
            .find(|(_, s)| s.leg.key() == key)
            .map(|(sup, _)| *sup)
    }

    /// The supervisor who is participant `id` of the mix.
    pub(super) fn by_participant(&self, id: ParticipantId) -> Option<SupId> {
        self.legs
            .iter()
            .find(|(_, s)| s.id == Some(id))
            .map(|(sup, _)| *sup)
    }

    /// Supervisor `sup`'s participant in the mix.
    pub(super) fn participant(&self, sup: SupId) -> Option<ParticipantId> {
        self.legs.get(&sup).and_then(|s| s.id)
    }

    /// Supervisor `sup` took the call over as `label`: their leg is now
    /// the caller's party's.
    pub(super) fn take_member(&mut self, sup: SupId, label: String) -> Option<Member> {
        let s = self.legs.remove(&sup)?;
        Some(Member {
            leg: s.leg,
            id: s.id?,
            user: s.user,
            answer: s.answer,
            party: Some(label),
        })
    }

    /// Legs left when the call is over (the machine said BYE to each; none
    /// should be left).
    pub(super) fn drain(&mut self) -> impl Iterator<Item = SupervisorLeg> + '_ {
        std::mem::take(&mut self.legs).into_values()
    }
}

impl SupervisorLeg {
    /// Hang up what is left of this leg (CANCEL while ringing, else BYE).
    pub(super) async fn hang_up(self) {
        info!(supervisor = %self.user, "call over: supervisor's phone hung up");
        match &self.leg {
            SupLeg::Out(l) => l.hang_up().await,
            SupLeg::In(l) => {
                l.bye().await;
                l.forget();
            }
        }
    }
}

impl<A: Leg, B: Leg> Session<'_, A, B> {
    /// A supervisor's INVITE: answered on fresh ports, then the machine
    /// joins them to the mix.
    pub(super) async fn supervise(
        &mut self,
        fsm: &mut Fsm,
        now: Now,
        sups: &mut Supervisors,
        invite: PendingInvite,
        how: Supervision,
        user: String,
    ) {
        let Some(events_tx) = self.events_tx.clone() else {
            invite.reject(480, vec![]).await;
            return;
        };
        let text = String::from_utf8_lossy(invite.request.body()).into_owned();
        let offer = match SessionDescription::parse(&text) {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, supervisor = %user, "unusable SDP from the supervisor: 488");
                invite.reject(488, vec![]).await;
                return;
            }
        };
        let Ok(ports) = self.ctx.ports.allocate().await else {
            invite.reject(503, vec![]).await;
            return;
        };
        let local = crate::call::local_media(self.ctx, ports.port(), self.ctx.codecs.clone());
        let (answer, neg) = match sdp::negotiate_answer(&offer, &local) {
            Ok(x) => x,
            Err(e) => {
                invite.reject(e.sip_status(), vec![]).await;
                return;
            }
        };
        let leg = match invite.into_leg(&self.ctx.stack, &events_tx) {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "supervisor dialog");
                return;
            }
        };
        let answer = answer.to_string().into_bytes();
        if leg.answer(answer.clone()).is_err() {
            return;
        }
        let sup = sups.add(SupervisorLeg {
            leg: SupLeg::In(Box::new(leg)),
            user: user.clone(),
            offer: None,
            ports: Some(ports),
            neg: Some(neg),
            answer: answer.clone(),
            id: None,
        });
        let event = SupervisorEvent::DialledIn {
            user,
            mode: how,
            answer,
        };
        fsm.handle_input(now, Input::Supervisor { sup, event });
    }

    /// Ring a supervisor's phone on fresh ports (the API); they join when
    /// it answers.
    pub(super) async fn dial_supervisor(
        &mut self,
        fsm: &mut Fsm,
        now: Now,
        sups: &mut Supervisors,
        contacts: Vec<crate::call::Contact>,
        mode: Supervision,
        user: String,
    ) -> Result<(), String> {
        let contact = contacts
            .into_iter()
            .next()
            .ok_or("the supervisor's phone is not registered")?;
        let via = (contact.source, contact.tcp, contact.route.clone());
        let d = self.dial(&contact.uri, via, Some(mode), user).await?;
        let answer = d.offer.to_string().into_bytes();
        let sup = sups.add(SupervisorLeg {
            leg: SupLeg::Out(d.leg),
            user: d.user.clone(),
            offer: Some(d.offer),
            ports: Some(d.ports),
            neg: None,
            answer,
            id: None,
        });
        let event = SupervisorEvent::Rung { user: d.user, mode };
        fsm.handle_input(now, Input::Supervisor { sup, event });
        Ok(())
    }

    /// Something happened on supervisor `sup`'s leg: told to the machine.
    pub(super) fn supervisor_leg_event(
        &self,
        fsm: &mut Fsm,
        now: Now,
        sups: &mut Supervisors,
        io: &mut Io,
        sup: SupId,
        ev: LegEvent,
    ) {
        let Some(s) = sups.legs.get_mut(&sup) else {
            return;
        };
        let event = match ev {
            LegEvent::Final { code, sdp: body } if (200..300).contains(&code) => {
                let Some(offer) = &s.offer else {
                    return;
                };
                let text =
                    String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
                let neg = SessionDescription::parse(&text)
                    .map_err(|e| e.to_string())
                    .and_then(|a| sdp::read_answer(offer, &a).map_err(|e| e.to_string()));
                match neg {
                    Ok(n) => {
                        s.neg = Some(n);
                        SupervisorEvent::Answered {
                            answer: s.answer.clone(),
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, supervisor = %s.user, "unusable answer from the supervisor");
                        SupervisorEvent::Unusable
                    }
                }
            }
            LegEvent::Final { code, .. } => {
                info!(code, party = %s.user, "the party rung did not answer");
                sups.legs.remove(&sup);
                SupervisorEvent::NotReached
            }
            LegEvent::Ended(_) => {
                if s.id.is_none() {
                    // Never in the mix: nothing to leave.
                    if let Some(s) = sups.legs.remove(&sup) {
                        s.leg.forget();
                    }
                }
                SupervisorEvent::Ended
            }
            LegEvent::Info {
                content_type,
                body,
                responder,
            } => {
                let parsed = crate::media::dtmf::parse_info_body(
                    content_type.as_deref().unwrap_or(""),
                    &String::from_utf8_lossy(&body),
                );
                SupervisorEvent::Info {
                    tx: io.name(responder),
                    key: parsed.ok().map(|info| info.key.to_char()),
                }
            }
            LegEvent::Reoffer { responder, .. } => SupervisorEvent::Reoffer {
                tx: io.name(responder),
            },
            _ => return,
        };
        fsm.handle_input(now, Input::Supervisor { sup, event });
    }

    /// Do what the machine decided for supervisor `sup`.
    pub(super) async fn supervisor_action(
        &self,
        fsm: &mut Fsm,
        now: Now,
        relay: &RelayHandle,
        sups: &mut Supervisors,
        sup: SupId,
        action: SupervisorAction,
    ) {
        match action {
            SupervisorAction::Join(how) => {
                let Some(s) = sups.legs.get_mut(&sup) else {
                    return;
                };
                let joined = match (s.ports.take(), s.neg.take()) {
                    (Some(pair), Some(neg)) => {
                        // Ids 0 and 1 are the caller and the agent.
                        let id = ParticipantId(2 + sup.0 + rand::random::<u32>() as u64 * 16);
                        let joined = relay
                            .join(relay::Participant {
                                id,
                                role: Role::Supervisor,
                                pair,
                                remote: neg.remote,
                                format: LegFormat::from_negotiated(&neg),
                            })
                            .await;
                        if joined.is_ok() {
                            s.id = Some(id);
                        }
                        match joined {
                            Ok(()) => relay.set_mode(id, how.mode()).await,
                            Err(e) => Err(e),
                        }
                        .map_err(|e| e.to_string())
                    }
                    _ => Err("no media to join with".into()),
                };
                match joined {
                    Ok(()) if matches!(s.leg, SupLeg::Out(_)) => {
                        info!(supervisor = %s.user, mode = ?how, "supervisor joined the call (API)")
                    }
                    Ok(()) => {
                        info!(supervisor = %s.user, mode = ?how, "supervisor joined the call")
                    }
                    Err(e) => {
                        warn!(error = %e, supervisor = %s.user, "supervisor could not join");
                        let event = SupervisorEvent::JoinFailed;
                        fsm.handle_input(now, Input::Supervisor { sup, event });
                    }
                }
            }
            SupervisorAction::SetMode(how) => {
                let Some(s) = sups.legs.get(&sup) else {
                    return;
                };
                let Some(id) = s.id else {
                    return;
                };
                match relay.set_mode(id, how.mode()).await {
                    Ok(()) => info!(supervisor = %s.user, mode = ?how, "supervisor mode"),
                    Err(e) => warn!(error = %e, "supervisor mode change refused"),
                }
            }
            SupervisorAction::Leave => {
                if let Some(s) = sups.legs.remove(&sup) {
                    if let Some(id) = s.id {
                        relay.leave(id);
                    }
                    s.leg.forget();
                    info!(party = %s.user, "extra party left the call");
                }
            }
            SupervisorAction::Bye => {
                if let Some(s) = sups.legs.remove(&sup) {
                    if let Some(id) = s.id {
                        relay.leave(id);
                    }
                    info!(supervisor = %s.user, "supervisor leaves");
                    s.leg.bye().await;
                    s.leg.forget();
                }
            }
            SupervisorAction::Cancel => {
                if let Some(s) = sups.legs.remove(&sup) {
                    s.hang_up().await;
                }
            }
        }
    }
}
