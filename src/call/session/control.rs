//! How the shell of a connected call carries out a [`SessionCommand`]:
//! hang-up, hold, blind transfer and the survey go to the call's [`Fsm`];
//! supervisors to its `supervisors`, three-way calls and attended
//! transfers to its `parties` (the `Fsm` deciding what supervision and
//! an attended transfer may do when).

use tracing::info;

use super::command::{Registration, SessionCommand};
use super::parties::Parties;
use super::Session;
use crate::call::fsm::{Command, Fsm, Now};
use crate::media::mixer::Mode;
use crate::media::relay::RelayHandle;
use crate::sip::Leg;

impl<A: Leg, B: Leg> Session<'_, A, B> {
    /// Attended transfer abandoned (the API, or the phone hanging up its
    /// second line): the consulted party is dropped and the caller is back.
    pub(super) async fn cancel_consult(
        &mut self,
        fsm: &mut Fsm,
        relay: &RelayHandle,
        p: &mut Parties,
    ) -> Result<(), String> {
        let label = fsm.cancel_consult()?;
        if let Some(g) = p.group.take() {
            g.withdraw();
        }
        if let Some(i) = p
            .members
            .iter()
            .position(|s| s.party.as_ref() == Some(&label))
        {
            let s = p.members.remove(i);
            relay.leave(s.id);
            s.leg.bye().await;
            s.leg.forget();
        }
        for d in p.dialing.iter().filter(|d| d.user == label) {
            d.leg.hang_up().await;
        }
        p.dialing.retain(|d| d.user != label);
        info!(party = %label, "consultation cancelled: the caller is back");
        Ok(())
    }

    /// Carry out `cmd`, answering its reply.
    pub(super) async fn command(
        &mut self,
        cmd: SessionCommand,
        fsm: &mut Fsm,
        now: Now,
        relay: &RelayHandle,
        p: &mut Parties,
        registration: Option<&mut Registration>,
    ) {
        match cmd {
            SessionCommand::Supervise {
                invite,
                mode,
                supervisor,
            } => {
                let sups = &mut p.supervisors;
                self.supervise(fsm, now, sups, *invite, mode, supervisor)
                    .await;
            }
            SessionCommand::Transfer { target, by, reply } => {
                let r = fsm.handle_command(Command::Transfer(target.clone()));
                match &r {
                    Ok(()) => info!(%by, ?target, "blind transfer"),
                    Err(_) => {
                        info!(%by, ?target, "blind transfer refused: an outbound call or a callback")
                    }
                }
                reply.send(r).ok();
            }
            SessionCommand::Hangup { by } => {
                info!(%by, "call released through the API");
                fsm.handle_command(Command::Hangup).ok();
            }
            SessionCommand::ToSurvey { reply } => {
                let r = fsm.handle_command(Command::ToSurvey);
                if r.is_ok() {
                    info!("agent sends the caller to the survey");
                }
                reply.send(r).ok();
            }
            SessionCommand::Hold { on, reply } => {
                let r = fsm.handle_command(Command::Hold(on));
                if r.is_ok() {
                    info!(hold = on, "hold through the API");
                }
                reply.send(r).ok();
            }
            SessionCommand::Consult { target, reply } => {
                let r = self.consult(fsm, target).await;
                reply.send(r.map(|d| p.dialing.push(d))).ok();
            }
            SessionCommand::ConsultGroup { group, reply } => {
                let r = self.consult_group(fsm, group).await;
                reply.send(r.map(|c| p.group = Some(c))).ok();
            }
            SessionCommand::CancelConsult { reply } => {
                let r = self.cancel_consult(fsm, relay, p).await;
                reply.send(r).ok();
            }
            SessionCommand::PhoneConsult { invite, dialled } => {
                self.phone_consult((fsm, relay, p), *invite, dialled).await;
            }
            SessionCommand::TakeOver {
                supervisor,
                label,
                device,
                reply,
            } => {
                let r = match fsm.take_over_check(&supervisor) {
                    Err(e) => Err(e),
                    Ok(sup) => match p.supervisors.participant(sup) {
                        None => Err(format!("{supervisor} is not on the call")),
                        Some(id) => match relay.set_mode(id, Mode::Barge).await {
                            Err(e) => Err(e.to_string()),
                            Ok(()) => match fsm.supervisor_takes_over(sup, &label) {
                                Err(e) => Err(e),
                                Ok(()) => {
                                    // Their leg is now the caller's party's.
                                    if let Some(m) = p.supervisors.take_member(sup, label.clone()) {
                                        p.members.push(m);
                                    }
                                    self.consult_device = Some(device);
                                    self.transferred(label, None, registration).await;
                                    Ok(())
                                }
                            },
                        },
                    },
                };
                if r.is_ok() {
                    p.acd_released = self.acd_call.take().is_some();
                    info!("the supervisor took the call over");
                }
                reply.send(r).ok();
            }
            SessionCommand::CompleteConsult { reply } => {
                let r = match fsm.complete_consult() {
                    Ok((label, to_group)) => {
                        self.transferred(label, to_group, registration).await;
                        p.acd_released = self.acd_call.take().is_some();
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                reply.send(r).ok();
            }
            SessionCommand::AddParty { target, reply } => {
                let via = (target.destination, target.tcp, target.route.clone());
                let r = self
                    .dial(&target.uri, via, None, target.label.clone())
                    .await;
                reply.send(r.map(|d| p.dialing.push(d))).ok();
            }
            SessionCommand::DropParty { label, reply } => {
                match p
                    .members
                    .iter()
                    .position(|s| s.party.as_deref() == Some(label.as_str()))
                {
                    Some(i) => {
                        let s = p.members.remove(i);
                        relay.leave(s.id);
                        s.leg.bye().await;
                        s.leg.forget();
                        self.conference_changed(
                            crate::events::model::ConferenceChange::Left,
                            &label,
                            &p.members,
                        );
                        reply.send(Ok(())).ok();
                    }
                    None => {
                        reply.send(Err(format!("{label} is not on the call"))).ok();
                    }
                }
            }
            SessionCommand::DialSupervisor {
                contacts,
                mode,
                supervisor,
                reply,
            } => {
                let sups = &mut p.supervisors;
                let r = self
                    .dial_supervisor(fsm, now, sups, contacts, mode, supervisor)
                    .await;
                reply.send(r).ok();
            }
        }
    }
}
