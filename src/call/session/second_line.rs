//! The agent's phone consults from its second line (issue 17 §4: "REFER
//! with Replaces (attended transfer)"; RFC 5589 §7, transfer with
//! consultation hold): the phone holds this call's leg, dials the
//! colleague, group or number on a new dialog, talks, and presses transfer
//! — a REFER on the held leg whose `Refer-To` carries a `Replaces` naming
//! that new dialog.
//!
//! hotline is both the transferee's and the target's side of that
//! exchange, so the second dialog never becomes a call of its own: the
//! switch hands the phone's INVITE to the call the phone is on
//! (`SessionCommand::PhoneConsult`), and it becomes that call's
//! consultation, as the CTI's would be ([`crate::call::fsm::Consultation`]):
//! - the target is rung (or the consultation queued in its skill group)
//!   and the caller hears music on hold, out of the mix; the phone's
//!   second line hears ringing (180) meanwhile;
//! - the consulted party answers: the second line is answered and joins
//!   the mix, the held first line is kept out of it (a phone may send its
//!   own hold music there);
//! - the target is not reached or hangs up: the second line is refused or
//!   ended, the caller is back (with music while the phone still holds);
//! - the phone hangs up its second line: the consultation is cancelled;
//! - the REFER with `Replaces` naming the line (`fsm::refer`): the
//!   consulted party takes the caller, both of the phone's lines end.

use tracing::{info, warn};

use super::parties::Parties;
use super::{refer, Session};
use crate::call::fsm::{Consultation, Fsm};
use crate::ivr::TransferTarget;
use crate::media::mixer::{ParticipantId, Role};
use crate::media::relay::{self, LegFormat, RelayHandle};
use crate::media::sdp::{self, SessionDescription};
use crate::sip::stack::PendingInvite;
use crate::sip::{InboundLeg, Leg, LegEvent, LegKey};

/// The phone's second line on this call.
pub(in crate::call) struct SecondLine {
    leg: Box<InboundLeg>,
    /// The phone's offer.
    offer: SessionDescription,
    /// Whom it consults: the party's label, or the skill group's id.
    consulted: String,
    /// In the mix once the consulted party answered: its participant and
    /// our answer.
    joined: Option<(ParticipantId, Vec<u8>)>,
}

impl SecondLine {
    /// The line's leg key.
    pub(super) fn key(&self) -> &LegKey {
        self.leg.key()
    }

    /// `r` names this line's dialog: its Call-ID, and the phone's tag as
    /// the `from-tag` (RFC 3891 §3: the phone sent the INVITE) or, as some
    /// phones write it, the `to-tag`.
    pub(super) fn named_by(&self, r: &crate::sip::refer::Replaces) -> bool {
        let phone_tag = self
            .leg
            .request
            .header("From")
            .and_then(|f| tag_of(&f).map(str::to_string));
        r.call_id == self.key().0 && phone_tag.is_some_and(|t| t == r.from_tag || t == r.to_tag)
    }

    /// End the line whatever its state.
    pub(super) async fn hang_up(self) {
        self.leg.hang_up(487).await;
    }
}

/// The `tag` parameter of a `From`/`To` value.
fn tag_of(value: &str) -> Option<&str> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("tag"))
        .map(|(_, v)| v.trim())
}

impl<A: Leg, B: Leg> Session<'_, A, B> {
    /// The agent's phone dialled `dialled` from its second line: consult
    /// them, the line ringing until they answer; refused with the reason
    /// in a `Warning` when the consultation cannot start.
    pub(super) async fn phone_consult(
        &mut self,
        (fsm, relay, p): (&mut Fsm, &RelayHandle, &mut Parties),
        invite: PendingInvite,
        dialled: String,
    ) {
        let refuse = |invite: PendingInvite, code: u16, why: String| {
            info!(%dialled, code, %why, "the phone's consultation refused");
            invite.reject(code, vec![crate::sip::message::warning(&why)])
        };
        let Some(events_tx) = self.events_tx.clone() else {
            return refuse(invite, 480, "this call takes no extra parties".into()).await;
        };
        if p.line.is_some() {
            let why = "the phone already consults on another line";
            return refuse(invite, 486, why.into()).await;
        }
        if let Some(why) = fsm.consult_refusal() {
            return refuse(invite, 486, why).await;
        }
        let text = String::from_utf8_lossy(invite.request.body()).into_owned();
        let offer = match SessionDescription::parse(&text) {
            Ok(o) => o,
            Err(e) => return refuse(invite, 488, format!("unusable SDP: {e}")).await,
        };
        let target = {
            let roster = self.ctx.roster.load();
            refer::named(&roster, self.agent.as_deref(), &dialled).map(|t| {
                let tenant = self
                    .agent
                    .as_deref()
                    .and_then(|a| roster.agent(a).or_else(|| roster.agent_by_user(a)))
                    .map(|a| a.tenant.clone())
                    .unwrap_or_default();
                let label = match &t {
                    TransferTarget::Agent(user) => roster.agent_id_of(user).map(str::to_string),
                    _ => None,
                };
                (t, tenant, label)
            })
        };
        let (target, tenant, label) = match target {
            Ok(t) => t,
            Err(r) => return refuse(invite, r.code, r.reason).await,
        };
        let begun = match target {
            TransferTarget::Group(group) => self.consult_group(fsm, group.clone()).await.map(|g| {
                p.group = Some(g);
                group
            }),
            TransferTarget::Agent(user) => {
                let label = label.unwrap_or_else(|| user.clone());
                match self.ctx.agent_party(&label, &user) {
                    Ok(party) => self.consult(fsm, party).await.map(|d| {
                        p.dialing.push(d);
                        label
                    }),
                    Err(e) => Err(e.to_string()),
                }
            }
            TransferTarget::Number { number, trunk } => {
                match self.ctx.number_party(&number, trunk, &tenant) {
                    Ok(party) => self.consult(fsm, party).await.map(|d| {
                        p.dialing.push(d);
                        number
                    }),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        let consulted = match begun {
            Ok(c) => c,
            Err(why) => return refuse(invite, 480, why).await,
        };
        match invite.into_leg(&self.ctx.stack, &events_tx) {
            Ok(leg) => {
                leg.progress(None);
                info!(%consulted, "the phone consults from its second line: the caller is on hold");
                p.line = Some(SecondLine {
                    leg: Box::new(leg),
                    offer,
                    consulted,
                    joined: None,
                });
            }
            Err(e) => {
                warn!(error = %e, "the phone's second line could not be taken");
                self.cancel_consult(fsm, relay, p).await.ok();
            }
        }
    }

    /// The second line follows the consultation: answered and in the mix
    /// once the consulted party talks; ended once the consultation is over
    /// (failed, cancelled or completed).
    pub(super) async fn settle_line(
        &mut self,
        fsm: &mut Fsm,
        relay: &RelayHandle,
        p: &mut Parties,
    ) {
        let Some(line) = p.line.as_ref() else {
            return;
        };
        match fsm.consultation() {
            Consultation::Ringing { .. } => {}
            Consultation::Talking { party, group } => {
                let ours = *party == line.consulted || group.as_ref() == Some(&line.consulted);
                if ours && line.joined.is_none() && !self.answer_line(relay, p).await {
                    // The line could not be answered: nobody talks.
                    self.cancel_consult(fsm, relay, p).await.ok();
                    self.end_line(relay, p, 500).await;
                }
            }
            Consultation::Idle | Consultation::Completed { .. } => {
                self.end_line(relay, p, 480).await;
            }
        }
    }

    /// Answer the second line and put it in the mix; `false` when it
    /// could not be.
    async fn answer_line(&mut self, relay: &RelayHandle, p: &mut Parties) -> bool {
        let Some(line) = p.line.as_mut() else {
            return false;
        };
        let Ok(ports) = self.ctx.ports.allocate().await else {
            warn!("no RTP ports for the phone's second line");
            return false;
        };
        let local = crate::call::local_media(self.ctx, ports.port(), self.ctx.codecs.clone());
        let (answer, neg) = match sdp::negotiate_answer(&line.offer, &local) {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "the phone's second line offers nothing we speak");
                return false;
            }
        };
        let id = ParticipantId(2 + p.members.len() as u64 + rand::random::<u32>() as u64 * 16);
        let joined = relay
            .join(relay::Participant {
                id,
                role: Role::External,
                pair: ports,
                remote: neg.remote,
                format: LegFormat::from_negotiated(&neg),
            })
            .await;
        if let Err(e) = joined {
            warn!(error = %e, "the phone's second line could not join the mix");
            return false;
        }
        let answer = answer.to_string().into_bytes();
        if line.leg.answer(answer.clone()).is_err() {
            relay.leave(id);
            return false;
        }
        // The held first line stays out of what the consulted party hears.
        relay.mute_agent(true);
        line.joined = Some((id, answer));
        info!(consulted = %line.consulted, "the consulted party answered: the phone's second line talks");
        true
    }

    /// End the second line (`code` if still unanswered) and bring the
    /// first line back into the mix.
    async fn end_line(&mut self, relay: &RelayHandle, p: &mut Parties, code: u16) {
        let Some(line) = p.line.take() else {
            return;
        };
        if let Some((id, _)) = line.joined {
            relay.leave(id);
            relay.mute_agent(false);
        }
        line.leg.hang_up(code).await;
    }

    /// Something happened on the second line.
    pub(super) async fn line_event(
        &mut self,
        fsm: &mut Fsm,
        relay: &RelayHandle,
        p: &mut Parties,
        ev: LegEvent,
    ) {
        let Some(line) = p.line.as_ref() else {
            return;
        };
        match ev {
            LegEvent::Ended(_) => {
                let line = p.line.take();
                if let Some((id, _)) = line.as_ref().and_then(|l| l.joined.as_ref()) {
                    relay.leave(*id);
                    relay.mute_agent(false);
                }
                if let Some(l) = line {
                    l.leg.forget();
                }
                // Hanging up the line after pressing transfer is no cancel.
                if !fsm.consult_referred() && self.cancel_consult(fsm, relay, p).await.is_ok() {
                    info!("the phone hung up its second line: consultation cancelled");
                }
            }
            LegEvent::Info { responder, .. } => {
                responder.respond(200, vec![], None).await;
            }
            // Hold or a new address on the line: keep our answer.
            LegEvent::Reoffer { responder, .. } => {
                let answer = line.joined.as_ref().map(|(_, a)| a.clone());
                match answer {
                    Some(a) => responder.respond(200, vec![], Some(a)).await,
                    None => responder.respond(491, vec![], None).await,
                }
            }
            // A REFER on the second line (some phones send it there):
            // refused, the phone then sends it on the held line.
            LegEvent::Refer { responder, .. } => {
                if let Some(r) = responder.take() {
                    let why = "send the transfer on the held line";
                    r.respond(403, vec![crate::sip::message::warning(why)], None)
                        .await;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tag_of;

    #[test]
    fn the_tag_is_read_from_a_name_addr_or_an_addr_spec() {
        assert_eq!(tag_of("\"A\" <sip:1001@h;x=1>;tag=abc"), Some("abc"));
        assert_eq!(tag_of("<sip:1001@h>;foo=1; TAG = x9"), Some("x9"));
        assert_eq!(tag_of("sip:1001@h;tag=t1"), Some("t1"));
        assert_eq!(tag_of("<sip:1001@h;tag=inside>"), None);
    }
}
