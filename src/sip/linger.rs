//! What a finished call leaves behind in rsipstack, and for how long
//! (issue 16 item 4; RFC 3261 §17, RFC 6026 §7.2).
//!
//! Measured with heaptrack at a steady 50 calls per second (1 s calls,
//! `bench/load/cps.sh`), ≈ 30 KB stayed on the heap for 32 s after each
//! call, nearly all of it held by one thing: our **client INVITE
//! transaction** to the agent, which rsipstack keeps in the Accepted state
//! until Timer M (64×T1 = 32 s) on a task that also holds a clone of the
//! whole dialog. That pinned the transaction's event channel (one 32-slot
//! block, ≈ 8.8 KB), the dialog's state channel of the ended call (≈ 7.8 KB:
//! the dialog keeps a sender), the task itself (≈ 3.8 KB) and the dialog's
//! copies of the INVITE and responses. (Since then the dialogs report on
//! one stack-wide state channel, `super::leg_events`, and a dialog no
//! longer holds its INVITE transaction's channel, `vendor/rsipstack`'s
//! patch; the task and the dialog's copies are what ending the
//! transaction early still saves.) Everything else a finished call
//! leaves is small: rsipstack's finished-transaction entries (the last
//! response of a server transaction for Timer J/L, the ACK of a client
//! INVITE) are a parsed message of ≈ 0.5–1 KB plus their key and timer.
//!
//! So the one change is here: when an answered outbound leg ends (BYE sent
//! or received, or the leg dropped), its INVITE transaction is ended at
//! once instead of at Timer M. An INVITE sent straight to an agent's
//! registered phone (`OutboundInvite::direct`: no proxy between, so no
//! forked 2xx can follow) ends at its answer: its transaction's event
//! channel (≈ 11 KiB) and task (≈ 5 KiB) were most of what a connected
//! call held in rsipstack for its first 32 s, and what glibc could not
//! give back after (BENCHMARKS.md "A leaner call"). Ending it goes through rsipstack's own path
//! (a `Terminate` event to the transaction), which moves the ACK it sent
//! into the endpoint's finished-transaction table for 64×T1: a 2xx the
//! agent retransmits after that still gets the same ACK (RFC 3261
//! §13.2.2.4), from that entry. Timer M still runs in full while the call
//! is up, where it matters (a 2xx retransmitted while the dialog lives, a
//! forked 2xx answered with ACK and BYE). What is given up: a *forked* 2xx
//! arriving after the call ended is ACKed from the finished entry but not
//! sent a BYE; hotline's outbound INVITEs go to one registered contact or
//! one trunk proxy, where no fork arrives seconds after the call is over.
//!
//! Weighed and not done, by the same measurement: answering retransmitted
//! requests of finished server transactions from a compact byte cache in
//! the gate. rsipstack's own entries cost ≈ 1.1 KB each (under the 2 KB the
//! issue allows; ≈ 3.3 KB per ended call for its three); bytes would
//! roughly halve that, at the price of a second source of truth for §17.2
//! retransmissions beside rsipstack's (BENCHMARKS.md, "Signalling memory").

use std::sync::{Arc, Mutex, PoisonError};

use rsipstack::sip as rsip;
use rsipstack::transaction::endpoint::{EndpointInner, EndpointInnerRef};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::TransactionEvent;
use tracing::debug;

/// Where one outbound leg's INVITE transaction stands, as far as ending it
/// early goes.
#[derive(Debug, Default)]
enum Slot {
    /// No final response yet (or not a 2xx): nothing to end early; a CANCEL
    /// or a non-2xx still needs the transaction.
    #[default]
    Open,
    /// Answered with a 2xx: the transaction waits in Accepted (Timer M).
    Accepted(TransactionKey),
    /// The leg ended; a 2xx arriving after that ends its transaction at once.
    LegEnded,
    /// A direct INVITE's transaction, ended at its answer.
    Ended,
}

/// The client INVITE transaction of one outbound leg, ended when the leg
/// ends rather than at Timer M. Shared by the leg and the task awaiting the
/// INVITE's outcome (cheap to clone).
#[derive(Clone)]
pub(super) struct AcceptedInvite {
    endpoint: EndpointInnerRef,
    slot: Arc<Mutex<Slot>>,
    /// Sent straight to a registered phone: no fork can follow the 2xx, so
    /// the transaction ends at the answer.
    direct: bool,
}

impl std::fmt::Debug for AcceptedInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AcceptedInvite")
            .field(&*self.slot())
            .finish()
    }
}

impl AcceptedInvite {
    /// For an INVITE about to be sent through `endpoint`; `direct` when
    /// it goes straight to a registered phone.
    pub(super) fn new(endpoint: EndpointInnerRef, direct: bool) -> Self {
        Self {
            endpoint,
            slot: Arc::default(),
            direct,
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The INVITE got its final response `code`; `invite` gives the
    /// request that got it (the dialog's initial request: after a digest
    /// challenge, the re-sent INVITE). A 2xx leaves the transaction in
    /// Accepted: remember it, or end it now if the leg is already over (a
    /// 2xx crossing our CANCEL, which rsipstack BYEs).
    pub(super) fn on_final(&self, code: u16, invite: impl FnOnce() -> rsip::Request) {
        if !(200..300).contains(&code) {
            return;
        }
        let key = match TransactionKey::from_request(&invite(), TransactionRole::Client) {
            Ok(key) => key,
            Err(e) => {
                debug!(error = %e, "no key for the answered INVITE: it waits out Timer M");
                return;
            }
        };
        let mut slot = self.slot();
        match *slot {
            Slot::LegEnded => {
                drop(slot);
                end(&self.endpoint, key);
            }
            // Nothing can fork a direct INVITE: a retransmitted 2xx is
            // re-ACKed from the finished table, as after the leg's end.
            Slot::Open | Slot::Accepted(_) if self.direct => {
                *slot = Slot::Ended;
                drop(slot);
                end(&self.endpoint, key);
            }
            Slot::Open | Slot::Accepted(_) => *slot = Slot::Accepted(key),
            Slot::Ended => {}
        }
    }

    /// The leg ended: end its INVITE transaction if it is waiting in
    /// Accepted. Idempotent.
    pub(super) fn leg_ended(&self) {
        let mut slot = self.slot();
        if matches!(*slot, Slot::Ended) {
            return;
        }
        let previous = std::mem::replace(&mut *slot, Slot::LegEnded);
        drop(slot);
        if let Slot::Accepted(key) = previous {
            end(&self.endpoint, key);
        }
    }
}

/// Ask the transaction `key` to terminate (rsipstack's own path: its task
/// returns, the transaction is dropped and its last ACK goes to the
/// finished table for 64×T1).
fn end(endpoint: &EndpointInner, key: TransactionKey) {
    match endpoint.transactions.get(&key) {
        Some(sender) => {
            if sender.send(TransactionEvent::Terminate(key)).is_err() {
                debug!("accepted INVITE transaction already gone");
            }
        }
        None => debug!(%key, "accepted INVITE transaction already gone"),
    }
}

#[cfg(test)]
mod tests {
    use rsipstack::transaction::transaction::Transaction;
    use rsipstack::EndpointBuilder;

    use super::*;

    fn invite() -> rsip::Request {
        let text = "INVITE sip:1001@127.0.0.21:5060 SIP/2.0\r\n\
                    Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-linger-1\r\n\
                    From: <sip:12345@127.0.0.1>;tag=hl-1\r\n\
                    To: <sip:1001@127.0.0.21>\r\n\
                    Call-ID: hl-linger-1\r\n\
                    CSeq: 1 INVITE\r\n\
                    Content-Length: 0\r\n\r\n";
        match rsip::SipMessage::try_from(text) {
            Ok(rsip::SipMessage::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    /// An endpoint with our INVITE's client transaction attached, as the
    /// dialog layer leaves it while Timer M runs.
    fn accepted_transaction() -> (rsipstack::transaction::Endpoint, Transaction) {
        let endpoint = EndpointBuilder::new().build();
        let request = invite();
        let key = TransactionKey::from_request(&request, TransactionRole::Client).expect("key");
        let tx = Transaction::new_client(key, request, endpoint.inner.clone(), None);
        (endpoint, tx)
    }

    fn terminated(tx: &mut Transaction) -> bool {
        matches!(
            tx.tu_receiver.try_recv(),
            Ok(TransactionEvent::Terminate(_))
        )
    }

    #[test]
    fn a_direct_invite_to_a_phone_ends_at_its_answer_once() {
        let (endpoint, mut tx) = accepted_transaction();
        let accepted = AcceptedInvite::new(endpoint.inner.clone(), true);
        accepted.on_final(180, invite);
        assert!(!terminated(&mut tx), "not on a provisional");
        accepted.on_final(200, invite);
        assert!(terminated(&mut tx), "at the answer");
        accepted.leg_ended();
        accepted.on_final(200, invite);
        assert!(!terminated(&mut tx), "once");
    }

    #[test]
    fn an_answered_invite_ends_with_its_leg() {
        let (endpoint, mut tx) = accepted_transaction();
        let accepted = AcceptedInvite::new(endpoint.inner.clone(), false);
        accepted.on_final(200, invite);
        assert!(!terminated(&mut tx), "not before the leg ends");
        accepted.leg_ended();
        assert!(terminated(&mut tx));
        accepted.leg_ended();
        assert!(!terminated(&mut tx), "once");
    }

    #[test]
    fn a_2xx_after_the_leg_ended_ends_the_transaction_at_once() {
        let (endpoint, mut tx) = accepted_transaction();
        let accepted = AcceptedInvite::new(endpoint.inner.clone(), false);
        accepted.leg_ended();
        assert!(!terminated(&mut tx));
        accepted.on_final(200, invite);
        assert!(terminated(&mut tx));
    }

    #[test]
    fn an_invite_without_a_2xx_is_left_to_rsipstack() {
        // A CANCELled or refused INVITE still needs its transaction (487,
        // the ACK of a non-2xx, Timer D).
        let (endpoint, mut tx) = accepted_transaction();
        let accepted = AcceptedInvite::new(endpoint.inner.clone(), false);
        accepted.on_final(486, || panic!("no key needed for a non-2xx"));
        accepted.leg_ended();
        assert!(!terminated(&mut tx));
        let never = AcceptedInvite::new(endpoint.inner.clone(), false);
        never.leg_ended();
        assert!(!terminated(&mut tx), "a leg with no final at all");
    }
}
