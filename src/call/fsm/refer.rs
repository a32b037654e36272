//! A phone's transfer key (issue 17 §4; RFC 3515): the agent's phone sends
//! REFER on its leg and hotline carries out a blind transfer (盲转) as the
//! API's would, answering the phone the way RFC 3515 asks.
//!
//! - The REFER is accepted with 202 only from side B (the agent, while
//!   nobody has taken their place), for a call whose driver can put the caller through (an outbound call or a
//!   callback cannot: 403), one at a time (491 while one is under way), and
//!   when its target names somebody (the shell looked it up: 404, 400, 501
//!   otherwise, §2.4.2).
//! - Then the implicit subscription's NOTIFYs (§2.4.4–2.4.5), one after
//!   the other's answer: `100 Trying` (active), then `200 OK`, which ends
//!   it: hotline took the caller, whatever happens at the target is
//!   hotline's to handle (a failed transfer goes where the flow's
//!   transfers go). The BYE to the agent follows the last NOTIFY's answer
//!   (or the shell's bound on waiting for each), so the phone learns the
//!   outcome before its dialog ends; a phone that hangs up first (many do
//!   once they have the 202) ends it the same way, the caller still put
//!   through.
//! - A REFER whose `Replaces` names the phone's own consultation (its
//!   second line, RFC 5589 §7: the agent consulted from the phone and
//!   presses transfer) completes that consultation instead: accepted only
//!   once the consulted party answered (403 while it rings, 481 without
//!   one), told by the same NOTIFYs, then the consulted party takes the
//!   caller ([`Output::Completed`]). A consulted party gone before the last
//!   NOTIFY is told `503` and the caller stays with the agent.

use super::{Consultation, End, Fsm, Output, ReqId, Side, TxId};
use crate::ivr::TransferTarget;

/// Why a REFER's target names nobody hotline can put the caller through
/// to: the final status and a Warning text (RFC 3261 §20.43).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferRefusal {
    /// 400, 403, 404, 501 …
    pub code: u16,
    /// Why, for the phone's display and the log.
    pub reason: String,
}

/// A REFER accepted and being told.
#[derive(Debug)]
pub(super) struct Referred {
    /// The NOTIFY out.
    req: ReqId,
    /// It is the last one (`200 OK`).
    last: bool,
    /// Where the caller goes.
    to: ReferredTo,
}

/// Where a REFER accepted sends the caller.
#[derive(Debug)]
enum ReferredTo {
    /// A blind transfer to this target.
    Target(TransferTarget),
    /// The consulted party takes the caller (attended transfer).
    Consulted,
}

impl Fsm {
    /// A REFER from `side`.
    pub(super) fn refer(
        &mut self,
        side: Side,
        tx: TxId,
        target: Result<TransferTarget, ReferRefusal>,
    ) {
        let refused = |code: u16, reason: &str| ReferRefusal {
            code,
            reason: reason.to_string(),
        };
        let accepted = match target {
            _ if side == Side::A => Err(refused(403, "only the agent's side can transfer")),
            _ if self.agent_replaced() => Err(refused(403, "the agent has left this call")),
            _ if self.referred.is_some() => Err(refused(491, "a transfer is under way")),
            _ if !self.blind_transfer => Err(refused(
                403,
                "an outbound call or a callback cannot be blind-transferred",
            )),
            Err(r) => Err(r),
            Ok(t) => Ok(t),
        };
        match accepted {
            Err(r) => self.push(Output::Respond {
                tx,
                code: r.code,
                headers: vec![crate::sip::message::warning(&r.reason)],
                sdp: None,
            }),
            Ok(target) => self.accept_refer(tx, ReferredTo::Target(target)),
        }
    }

    /// A REFER from `side` whose `Replaces` names the agent's consultation.
    pub(super) fn refer_consulted(&mut self, side: Side, tx: TxId) {
        let refused = match &self.consultation {
            _ if side == Side::A => Some((403, "only the agent's side can transfer")),
            _ if self.referred.is_some() => Some((491, "a transfer is under way")),
            Consultation::Talking { .. } => None,
            Consultation::Ringing { .. } => Some((403, "the consulted party has not answered")),
            _ => Some((
                481,
                "no consultation of this call is on the line Replaces names",
            )),
        };
        match refused {
            Some((code, reason)) => self.push(Output::Respond {
                tx,
                code,
                headers: vec![crate::sip::message::warning(reason)],
                sdp: None,
            }),
            None => self.accept_refer(tx, ReferredTo::Consulted),
        }
    }

    /// A REFER from the agent being carried out by a consultation's
    /// completion, whose NOTIFYs are not all told yet: the phone's second
    /// line ending now is no cancel.
    pub fn consult_referred(&self) -> bool {
        matches!(
            self.referred,
            Some(Referred {
                to: ReferredTo::Consulted,
                ..
            })
        )
    }

    /// 202, and the first NOTIFY.
    fn accept_refer(&mut self, tx: TxId, to: ReferredTo) {
        self.respond(tx, 202, None);
        let req = self.notify_refer(100, "Trying", false);
        self.referred = Some(Referred {
            req,
            last: false,
            to,
        });
    }

    /// The phone answered NOTIFY `req` (or the shell gave up waiting): the
    /// next one, or the transfer.
    pub(super) fn refer_notified(&mut self, req: ReqId) {
        let Some(r) = self.referred.as_mut().filter(|r| r.req == req) else {
            return;
        };
        if r.last {
            return self.refer_done(false);
        }
        let gone = matches!(r.to, ReferredTo::Consulted)
            && !matches!(self.consultation, Consultation::Talking { .. });
        if gone {
            // The consulted party left meanwhile: the transfer failed and
            // the caller stays with the agent (RFC 3515 §2.4.5).
            self.referred = None;
            self.notify_refer(503, "Service Unavailable", true);
            return;
        }
        let next = self.notify_refer(200, "OK", true);
        if let Some(r) = self.referred.as_mut() {
            r.req = next;
            r.last = true;
        }
    }

    /// Push a NOTIFY of the REFER's outcome so far; its id.
    fn notify_refer(&mut self, code: u16, reason: &'static str, done: bool) -> ReqId {
        let req = self.req();
        self.push(Output::NotifyRefer {
            side: Side::B,
            req,
            code,
            reason,
            done,
        });
        req
    }

    /// The transferor was told (or its leg is gone: `b_gone`): the caller
    /// goes to the target and the agent leaves.
    pub(super) fn refer_done(&mut self, b_gone: bool) {
        let Some(Referred { to, .. }) = self.referred.take() else {
            return;
        };
        match to {
            ReferredTo::Target(target) => {
                self.finish_with_gone(End::Transfer(target), b_gone.then_some(Side::B))
            }
            ReferredTo::Consulted => match self.complete_consult() {
                Ok((party, group)) => self.push(Output::Completed { party, group }),
                // The consulted party left as the agent's phone did: the
                // agent's hang-up ends the call as it would have.
                Err(_) if b_gone => self.finish_with_gone(End::AgentHungUp, Some(Side::B)),
                Err(_) => {}
            },
        }
    }
}
