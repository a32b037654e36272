//! A carrier's INVITE from setup to record (B2BUA, RFC 3261 §6, RFC
//! 7092): the shell of a [`Kind::Flow`] or [`Kind::Direct`] [`Machine`].
//!
//! 1. `prepare`: read the carrier's offer, reserve the caller's and the
//!    other side's ports, answer the offer (RFC 3264) and offer the other
//!    side the caller's codec first (and its telephone-event payload type,
//!    so packets usually pass without transcoding), make the dialog;
//! 2. the flow (`flow::drive`), or the direct route rung (`ringing`) and
//!    the caller answered when someone answers;
//! 3. the conversations (`converse`);
//! 4. the recording finished, the record ended and sent.

use std::sync::Arc;

use tracing::{info, warn};

use super::end_record;
use crate::call::converse::{self, Connect, Parts};
use crate::call::machine::{Conversed, Input, Kind, Machine, Output, SetupFailure};
use crate::call::ringing::{BOffer, Connected, Ringer};
use crate::call::{
    end_recording, flow, local_media, record::CallRecord, retarget_telephone_event, CallContext,
    Outcome, Route,
};
use crate::media::caller::CallerMedia;
use crate::media::player::Target;
use crate::media::sdp::{self, LocalMedia, Negotiated, SessionDescription};
use crate::sip::message::warning;
use crate::sip::stack::{LegEventSender, PendingInvite};
use crate::sip::{InboundLeg, Leg, LegEvents};

/// What setting the call up made.
struct Setup {
    inbound: InboundLeg,
    events: LegEvents,
    events_tx: LegEventSender,
    /// What the other side is offered.
    b: Box<BOffer>,
    a_neg: Negotiated,
    caller: String,
    caller_name: Option<String>,
    media: CallerMedia,
    parts: Parts,
}

/// Why the call could not be set up, and what is needed to say so.
struct Refused {
    failure: SetupFailure,
    /// The INVITE, to refuse (gone once it became a dialog).
    invite: Option<Box<PendingInvite>>,
    /// A `Warning:` header naming the fault.
    warning: Option<(String, String)>,
}

/// Drive one inbound call routed to `route` to its end, with its record.
pub(in crate::call) async fn run(
    ctx: Arc<CallContext>,
    invite: Box<PendingInvite>,
    route: Route,
    tenant: String,
    record: CallRecord,
) -> Outcome {
    let kind = match route {
        Route::Flow(_) => Kind::Flow,
        _ => Kind::Direct,
    };
    let mut m = Machine::new(kind);
    let mut invite = Some(invite);
    let mut refused_warning = None;
    let mut finish = false;
    let mut setup = None;
    // 1. Set up (and refuse the INVITE when it cannot be).
    while let Some(output) = m.poll_output() {
        match output {
            Output::Prepare => {
                let Some(inv) = invite.take() else { break };
                match Box::pin(prepare(&ctx, inv, &route, &tenant)).await {
                    Ok(s) => {
                        setup = Some(s);
                        m.handle_input(Input::Prepared(Ok(())));
                        break;
                    }
                    Err(r) => {
                        invite = r.invite;
                        refused_warning = r.warning;
                        m.handle_input(Input::Prepared(Err(r.failure)));
                    }
                }
            }
            Output::Reject(code) => {
                if let Some(inv) = invite.take() {
                    inv.reject(code, refused_warning.take().into_iter().collect())
                        .await;
                }
            }
            Output::EndRecord(end) => end_record(&record, end),
            Output::Finish => finish = true,
            _ => {}
        }
    }
    if let Some(s) = setup {
        // Taken apart at once: only the leg stays here across the call's
        // awaits, the rest moves into the ringer and the shell (a whole
        // `Setup` kept for its leg was 2 KiB more in every call's task).
        let Setup {
            inbound,
            events,
            events_tx,
            b,
            a_neg,
            caller,
            caller_name,
            media,
            parts,
        } = s;
        let mut ringer = Ringer {
            ctx: &ctx,
            inbound: &inbound,
            events,
            events_tx,
            b,
            a_answer: parts.a_answer.to_string().into_bytes(),
            caller,
            caller_name,
            media,
            a_neg,
            answered: false,
            record: &record,
            queue_place: None,
            bye_owed: false,
            bridged: None,
        };
        let mut shell = Shell {
            ctx: &ctx,
            ringer: &mut ringer,
            parts: Some(parts),
            route: &route,
            connected: None,
            finish: false,
        };
        // 2.–4.
        while let Some(output) = m.poll_output() {
            if let Some(input) = shell.execute(output).await {
                m.handle_input(input);
            }
        }
        finish |= shell.finish;
        // The record is sent before the caller's BYE is waited for.
        let bye_owed = ringer.bye_owed;
        drop(ringer);
        if std::mem::take(&mut finish) {
            record.finish();
        }
        if bye_owed {
            Box::pin(inbound.bye()).await;
        }
        return m.outcome().cloned().unwrap_or(Outcome::Rejected(500));
    }
    if finish {
        record.finish();
    }
    m.outcome().cloned().unwrap_or(Outcome::Rejected(500))
}

/// Negotiate the carrier's offer and reserve the ports; the dialog.
async fn prepare(
    ctx: &CallContext,
    invite: Box<PendingInvite>,
    route: &Route,
    tenant: &str,
) -> Result<Setup, Refused> {
    let refuse = |failure, invite, fault: Option<String>| Refused {
        failure,
        invite: Some(invite),
        warning: fault.map(|f| warning(&f)),
    };
    let offer_text = String::from_utf8_lossy(invite.request.body()).into_owned();
    let offer = match SessionDescription::parse(&offer_text) {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, "unusable SDP offer: 488");
            return Err(refuse(SetupFailure::BadOffer, invite, Some(e.to_string())));
        }
    };
    let a_ports = match ctx.ports.allocate().await {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "no RTP ports: 503");
            return Err(refuse(SetupFailure::NoPorts, invite, None));
        }
    };
    let a_local = LocalMedia {
        sdes: ctx
            .srtp
            .for_source(&ctx.trunks, invite.request.source().ip()),
        ..local_media(ctx, a_ports.port(), ctx.codecs.clone())
    };
    let (a_answer, a_neg) = match sdp::negotiate_answer(&offer, &a_local) {
        Ok(x) => x,
        Err(e) => {
            warn!(error = %e, "SDP negotiation failed");
            let failure = SetupFailure::Negotiation(e.sip_status());
            return Err(refuse(failure, invite, Some(e.to_string())));
        }
    };
    let b_ports = match ctx.ports.allocate().await {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "no RTP ports: 503");
            return Err(refuse(SetupFailure::NoPorts, invite, None));
        }
    };
    // The other side is offered the carrier's codec first (and its DTMF
    // payload type), and the others too, so a phone without it still
    // connects (the relay transcodes).
    let mut b_codecs = vec![a_neg.codec];
    b_codecs.extend(ctx.codecs.iter().filter(|c| **c != a_neg.codec));
    let b_local = LocalMedia {
        telephone_event: a_neg.telephone_event.is_some(),
        sdes: match route {
            Route::External { trunk, .. } => ctx.srtp.toward_trunk(Some(trunk)),
            _ => ctx.srtp.toward_phones(),
        },
        ..local_media(ctx, b_ports.port(), b_codecs)
    };
    let mut b_offer = sdp::build_offer(&b_local);
    if let Some(pt) = a_neg.telephone_event {
        retarget_telephone_event(&mut b_offer, pt);
    }
    let b = BOffer::new(b_offer, &b_ports);
    let call_id = invite.request.call_id();
    let (events_tx, events) = ctx.stack.leg_channel();
    let caller = invite
        .request
        .from_user()
        .unwrap_or_else(|| "anonymous".into());
    let caller_name = invite.request.from_display_name();
    let called = invite.request.uri_user().unwrap_or_default();
    let inbound = match invite.into_leg(&ctx.stack, &events_tx) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "cannot create the inbound dialog");
            return Err(Refused {
                failure: SetupFailure::NoDialog,
                invite: None,
                warning: None,
            });
        }
    };
    Ok(Setup {
        inbound,
        events,
        events_tx,
        b,
        caller,
        caller_name,
        media: CallerMedia::new(a_ports, Target::from_negotiated(&a_neg)),
        a_neg,
        parts: Parts {
            a_local,
            b_local,
            b_ports: Some(b_ports),
            a_answer,
            call_id,
            tenant: tenant.to_string(),
            called,
        },
    })
}

/// What carries out the machine's outputs once the call is set up.
struct Shell<'s, 'r> {
    ctx: &'s Arc<CallContext>,
    ringer: &'s mut Ringer<'r>,
    /// The call's parts, until the flow takes them.
    parts: Option<Parts>,
    route: &'s Route,
    /// Whoever answered, until the conversations take them.
    connected: Option<Connected>,
    /// The record is complete ([`Output::Finish`]); it is sent once the
    /// call's parts let go of it.
    finish: bool,
}

impl Shell<'_, '_> {
    /// Carry out `output`; the news it waits for, if any.
    async fn execute(&mut self, output: Output) -> Option<Input> {
        let ctx = self.ctx;
        match output {
            Output::RunFlow => {
                let (Route::Flow(f), Some(parts)) = (self.route, self.parts.take()) else {
                    return Some(Input::FlowOver(Outcome::Rejected(500)));
                };
                // Boxed, as the conversation below: a call's task holds
                // only the phase it is in (issue 16, "Memory per call").
                let outcome = Box::pin(flow::drive(ctx, self.ringer, f, parts)).await;
                Some(Input::FlowOver(outcome))
            }
            Output::Ring => {
                let result = match Box::pin(self.ringer.ring_route(self.route)).await {
                    Ok(c) => {
                        self.connected = Some(c);
                        Ok(())
                    }
                    Err(outcome) => Err(outcome),
                };
                Some(Input::Rang {
                    result,
                    answered: self.ringer.answered,
                })
            }
            Output::AnswerCaller => {
                let answered = match (self.parts.as_mut(), self.connected.as_ref()) {
                    (Some(parts), Some(connected)) => {
                        // Boxed: once a call, and larger than the rest of
                        // this shell's steps.
                        Box::pin(converse::answer_bridged(ctx, self.ringer, parts, connected)).await
                    }
                    _ => self.ringer.answer_caller(),
                };
                Some(Input::Answered(answered))
            }
            Output::DropAnswer => {
                if let Some(c) = self.connected.take() {
                    Box::pin(self.ringer.drop_answer(c)).await;
                }
                None
            }
            Output::Converse => {
                let (Some(connected), Some(parts)) = (self.connected.take(), self.parts.as_mut())
                else {
                    return Some(Input::Conversed(Conversed::CallerGone));
                };
                let who = connected.agent.clone().unwrap_or_default();
                let talked = Box::pin(converse::converse(
                    ctx,
                    self.ringer,
                    parts,
                    connected,
                    who,
                    false,
                    None,
                ))
                .await;
                Some(Input::Conversed(match talked {
                    // A callback is asked for only in a flow's queue.
                    Connect::CallerGone | Connect::CallbackRequested => Conversed::CallerGone,
                    Connect::Failed(why) => {
                        info!(?why, "nobody took the caller back: hanging up");
                        Conversed::Failed(why)
                    }
                    Connect::Talked { .. } => Conversed::Talked,
                }))
            }
            Output::Reject(code) => {
                info!(code, "nobody answered");
                self.ringer.inbound.reject(code);
                None
            }
            Output::Forget => {
                self.ringer.inbound.forget();
                None
            }
            Output::Bye => {
                self.ringer.bye_owed = true;
                None
            }
            Output::EndRecording => {
                Box::pin(end_recording(
                    ctx,
                    self.ringer.record,
                    &mut self.ringer.media,
                ))
                .await;
                None
            }
            Output::EndRecord(end) => {
                end_record(self.ringer.record, end);
                None
            }
            Output::Finish => {
                self.finish = true;
                None
            }
            // Not an inbound call's.
            Output::Prepare
            | Output::Acd(_)
            | Output::StartRecord
            | Output::Reach
            | Output::Connected
            | Output::Talk => None,
        }
    }
}
