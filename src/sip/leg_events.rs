//! A call's leg events: what its SIP dialogs report (RFC 3261 §12–§15 as
//! rsipstack surfaces them: provisional and final responses, ACK, re-INVITE,
//! INFO, BYE, CANCEL), delivered on the call's own channel ([`LegEvents`]).
//!
//! rsipstack reports a dialog's states on a sender handed to it when the
//! dialog is made. A tokio channel's first block is 32 slots, and a
//! `DialogState` is 304 bytes: a channel per call held ≈ 9.7 KiB for the
//! call's whole life (issue 16, "Memory per call", heaptrack). So the stack
//! hands every dialog the sender of **one** stack-wide channel, and
//! [`LegRouter`] routes each state by the leg's Call-ID ([`LegKey`]) to the
//! call that registered the leg, as a boxed event on the call's channel
//! (32 slots of 8 bytes). A leg registers when it is made
//! ([`LegRouter::register`]) and its [`Registration`] ends the route when
//! the leg is dropped; a state for a Call-ID nobody registered (a leg
//! already dropped) is dropped after the journal has seen it.
//!
//! Call-IDs are unique among live legs: ours are fresh and random; a
//! carrier's INVITE whose Call-ID a live leg already has is refused by the
//! stack (482, RFC 3261 §8.2.2.2) rather than routed to the wrong call.

use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, DialogStateSender, TerminatedReason,
};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::DialogId;
use rsipstack::sip::{self as rsip, HeadersExt};
use tokio::sync::mpsc;
use tracing::debug;

use super::message::to_headers;
use super::recovery::Journal;

/// Identifies a leg within a call: the leg's Call-ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegKey(pub String);

impl std::fmt::Display for LegKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a leg ended, as far as SIP tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEnd {
    /// The remote side sent BYE.
    RemoteBye,
    /// The remote side cancelled its INVITE.
    RemoteCancel,
    /// We ended it (BYE, CANCEL or reject).
    Local,
    /// A transaction timed out (no ACK, no response).
    Timeout,
    /// A final error status on the INVITE (busy, not found …).
    Status(u16),
}

/// Something that happened on one leg.
#[derive(Debug)]
pub enum LegEvent {
    /// 180 or 183; `sdp` when the provisional response carries a body.
    Progress {
        /// Status code (180, 183 …).
        code: u16,
        /// Early SDP.
        sdp: Option<Vec<u8>>,
    },
    /// Final response to our INVITE: 2xx (with its SDP) or an error code.
    Final {
        /// Status code.
        code: u16,
        /// Answer SDP for a 2xx.
        sdp: Option<Vec<u8>>,
    },
    /// The leg is confirmed (ACK received/sent).
    Confirmed,
    /// A re-INVITE or UPDATE from the remote side, to answer via `responder`.
    Reoffer {
        /// The offered SDP (may be empty: an offerless re-INVITE).
        sdp: Vec<u8>,
        /// Reply handle.
        responder: InDialogResponder,
    },
    /// INFO (e.g. `application/dtmf-relay`), answered 200 already unless
    /// the call answers otherwise.
    Info {
        /// Content-Type.
        content_type: Option<String>,
        /// Body.
        body: Vec<u8>,
        /// Reply handle.
        responder: InDialogResponder,
    },
    /// REFER (RFC 3515): a phone's transfer key. Answered by whoever
    /// takes it; one that is dropped unanswered is declined (603).
    Refer {
        /// The `Refer-To` header's value, if it had one.
        refer_to: Option<String>,
        /// Reply handle.
        responder: ReferResponder,
    },
    /// A SUBSCRIBE within a subscription's dialog (RFC 6665 §4.2.1.1):
    /// a refresh, or an unsubscribe with `Expires: 0`.
    Resubscribe {
        /// Its `Expires`, if it had one.
        expires: Option<u32>,
        /// Reply handle.
        responder: InDialogResponder,
    },
    /// The dialog ended.
    Ended(LegEnd),
}

/// The reply handle of a REFER: a call that does not take transfers from
/// this leg (still ringing, a supervisor's leg) drops it, and the phone
/// gets 603 Decline rather than retransmitting into silence.
#[derive(Debug)]
pub struct ReferResponder(Option<InDialogResponder>);

impl ReferResponder {
    /// The handle, to answer the REFER (always there until taken).
    pub fn take(mut self) -> Option<InDialogResponder> {
        self.0.take()
    }
}

impl Drop for ReferResponder {
    fn drop(&mut self) {
        let Some(r) = self.0.take() else { return };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { r.respond(603, vec![], None).await });
        }
    }
}

/// Reply handle for an in-dialog request surfaced as a [`LegEvent`].
#[derive(Debug)]
pub struct InDialogResponder {
    handle: rsipstack::dialog::dialog::TransactionHandle,
}

impl InDialogResponder {
    /// Respond with status, headers and optional body (SDP).
    pub async fn respond(&self, code: u16, headers: Vec<(String, String)>, body: Option<Vec<u8>>) {
        let mut headers = to_headers(headers);
        if body.is_some() {
            headers.push(rsip::Header::ContentType("application/sdp".into()));
        }
        if let Err(e) = self
            .handle
            .respond(rsip::StatusCode::from(code), Some(headers), body)
            .await
        {
            debug!(error = %e, "in-dialog response dropped");
        }
    }
}

/// A call's channel: events travel boxed, so its first block is 32 slots
/// of 8 bytes.
type Route = mpsc::UnboundedSender<Box<(LegKey, LegEvent)>>;

/// The sending half of a call's event channel (cloned into each leg).
#[derive(Clone)]
pub struct LegEventSender {
    /// The stack-wide dialog-state sender every dialog is given.
    pub(super) states: DialogStateSender,
    /// This call's channel, for the router and our own events (INVITE
    /// outcomes).
    pub(super) route: Route,
}

impl LegEventSender {
    /// Put an event of a leg that is not a SIP dialog (a
    /// [`ForeignLeg`](super::ForeignLeg)'s) on the call's channel; `false`
    /// once the call is gone.
    pub fn deliver(&self, key: LegKey, event: LegEvent) -> bool {
        self.route.send(Box::new((key, event))).is_ok()
    }
}

/// The receiving half: one per call.
pub struct LegEvents {
    events: mpsc::UnboundedReceiver<Box<(LegKey, LegEvent)>>,
}

impl LegEvents {
    /// Next event of any leg of this call; `None` once every sender is gone
    /// (the call's [`LegEventSender`]s and its legs' registrations).
    pub async fn recv(&mut self) -> Option<(LegKey, LegEvent)> {
        self.events.recv().await.map(|ev| *ev)
    }
}

/// A new event channel for one call, whose legs' dialogs report on
/// `states`.
pub(super) fn channel(states: DialogStateSender) -> (LegEventSender, LegEvents) {
    let (route, events) = mpsc::unbounded_channel();
    (LegEventSender { states, route }, LegEvents { events })
}

/// Routes the stack-wide dialog states to the calls' channels by Call-ID.
pub(super) struct LegRouter {
    routes: DashMap<String, Route>,
    journal: Option<Arc<Journal>>,
}

/// A leg's route; the route ends when this is dropped (with the leg).
pub(super) struct Registration {
    router: Arc<LegRouter>,
    key: String,
    route: Route,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Registration").field(&self.key).finish()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.router
            .routes
            .remove_if(&self.key, |_, route| route.same_channel(&self.route));
    }
}

/// A carrier's Call-ID that a live leg already has.
#[derive(Debug, thiserror::Error)]
#[error("Call-ID {0:?} is already a live leg's")]
pub struct CallIdInUse(pub String);

impl LegRouter {
    /// The router and the sender every dialog is given; its task runs
    /// until every sender is gone (the stack and its dialogs).
    pub(super) fn start(
        dialogs: &DialogLayer,
        journal: Option<Arc<Journal>>,
    ) -> (Arc<Self>, DialogStateSender) {
        let (states, receiver) = dialogs.new_dialog_state_channel();
        let router = Arc::new(Self {
            routes: DashMap::new(),
            journal,
        });
        tokio::spawn(router.clone().run(receiver));
        (router, states)
    }

    async fn run(self: Arc<Self>, mut states: DialogStateReceiver) {
        while let Some(state) = states.recv().await {
            self.deliver(state);
        }
    }

    /// Tell the journal, then the call whose leg the state is about.
    fn deliver(&self, state: DialogState) {
        if let Some(journal) = &self.journal {
            journal.on_state(&state);
        }
        let Some((key, event)) = translate(state) else {
            return;
        };
        match self.routes.get(&key.0) {
            Some(route) => {
                route.send(Box::new((key, event))).ok();
            }
            None => debug!(leg = %key, ?event, "dialog state for no live leg: dropped"),
        }
    }

    /// Route the states of the leg `key` to `events`' call. A stale route
    /// (its call gone) is replaced; a live one is an error.
    pub(super) fn register(
        self: &Arc<Self>,
        key: &LegKey,
        events: &LegEventSender,
    ) -> Result<Registration, CallIdInUse> {
        match self.routes.entry(key.0.clone()) {
            Entry::Occupied(live) if !live.get().is_closed() => {
                return Err(CallIdInUse(key.0.clone()));
            }
            Entry::Occupied(mut stale) => {
                stale.insert(events.route.clone());
            }
            Entry::Vacant(free) => {
                free.insert(events.route.clone());
            }
        }
        Ok(Registration {
            router: self.clone(),
            key: key.0.clone(),
            route: events.route.clone(),
        })
    }

    /// Legs routed (for leak checks and tests).
    pub(super) fn len(&self) -> usize {
        self.routes.len()
    }
}

fn key_of(id: &DialogId) -> LegKey {
    LegKey(id.call_id.clone())
}

/// Map rsipstack's dialog state to our event; `None` for states the call
/// does not act on.
fn translate(state: DialogState) -> Option<(LegKey, LegEvent)> {
    match state {
        DialogState::Early(id, resp) => {
            let sdp = (!resp.body.is_empty()).then(|| resp.body.clone());
            Some((
                key_of(&id),
                LegEvent::Progress {
                    code: resp.status_code.code(),
                    sdp,
                },
            ))
        }
        DialogState::Confirmed(id, _) => Some((key_of(&id), LegEvent::Confirmed)),
        DialogState::Updated(id, req, handle) if req.method == rsip::Method::Subscribe => Some((
            key_of(&id),
            LegEvent::Resubscribe {
                expires: req
                    .header_value("Expires")
                    .and_then(|v| v.trim().parse().ok()),
                responder: InDialogResponder { handle },
            },
        )),
        DialogState::Updated(id, req, handle) => Some((
            key_of(&id),
            LegEvent::Reoffer {
                sdp: req.body.clone(),
                responder: InDialogResponder { handle },
            },
        )),
        DialogState::Info(id, req, handle) => Some((
            key_of(&id),
            LegEvent::Info {
                content_type: req.header_value("Content-Type"),
                body: req.body.clone(),
                responder: InDialogResponder { handle },
            },
        )),
        DialogState::Options(_, _, handle) => {
            tokio::spawn(async move {
                handle.reply(rsip::StatusCode::OK).await.ok();
            });
            None
        }
        DialogState::Terminated(id, reason) => {
            let end = match reason {
                TerminatedReason::UacBye | TerminatedReason::UasBye => LegEnd::RemoteBye,
                TerminatedReason::UacCancel => LegEnd::RemoteCancel,
                TerminatedReason::Timeout => LegEnd::Timeout,
                TerminatedReason::UacBusy | TerminatedReason::UasBusy => LegEnd::Status(486),
                TerminatedReason::UasDecline => LegEnd::Status(603),
                TerminatedReason::ProxyAuthRequired => LegEnd::Status(407),
                TerminatedReason::ProxyError(c)
                | TerminatedReason::UacOther(c)
                | TerminatedReason::UasOther(c) => LegEnd::Status(c.code()),
            };
            Some((key_of(&id), LegEvent::Ended(end)))
        }
        DialogState::Refer(id, req, handle) => Some((
            key_of(&id),
            LegEvent::Refer {
                refer_to: req.header_value("Refer-To"),
                responder: ReferResponder(Some(InDialogResponder { handle })),
            },
        )),
        DialogState::Notify(_, _, handle)
        | DialogState::Message(_, _, handle)
        | DialogState::Publish(_, _, handle) => {
            tokio::spawn(async move {
                handle.reply(rsip::StatusCode::NotImplemented).await.ok();
            });
            None
        }
        DialogState::Calling(_) | DialogState::Trying(_) | DialogState::WaitAck(_, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A REFER nobody takes (a ringing phone's, a supervisor's leg) is
    /// declined, not left for the phone to retransmit into silence; one
    /// taken is the taker's to answer.
    #[tokio::test]
    async fn a_refer_dropped_unanswered_is_declined_and_a_taken_one_is_not() {
        use rsipstack::dialog::dialog::{TransactionCommand, TransactionHandle};
        let (handle, mut rx) = TransactionHandle::new();
        drop(ReferResponder(Some(InDialogResponder { handle })));
        let Some(TransactionCommand::Respond { status, .. }) = rx.recv().await else {
            panic!("no answer to the dropped REFER");
        };
        assert_eq!(status.code(), 603);
        let (handle, mut rx) = TransactionHandle::new();
        let taken = ReferResponder(Some(InDialogResponder { handle })).take();
        assert!(taken.is_some());
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "nothing sent on the taker's behalf");
    }

    fn router() -> Arc<LegRouter> {
        Arc::new(LegRouter {
            routes: DashMap::new(),
            journal: None,
        })
    }

    /// A call's channel on the router (its dialog-state sender is unused:
    /// the tests deliver states themselves).
    fn call() -> (LegEventSender, LegEvents) {
        channel(mpsc::unbounded_channel().0)
    }

    fn confirmed(call_id: &str) -> DialogState {
        let id = DialogId {
            call_id: call_id.into(),
            local_tag: "ours".into(),
            remote_tag: "theirs".into(),
        };
        DialogState::Confirmed(id, rsip::Response::default())
    }

    fn leg(call_id: &str) -> LegKey {
        LegKey(call_id.into())
    }

    #[tokio::test]
    async fn each_legs_states_reach_the_call_that_registered_it_and_no_other() {
        let router = router();
        let (a_tx, mut a) = call();
        let (b_tx, mut b) = call();
        let _a1 = router.register(&leg("a-1"), &a_tx).expect("a-1");
        let _a2 = router.register(&leg("a-2"), &a_tx).expect("a-2");
        let _b1 = router.register(&leg("b-1"), &b_tx).expect("b-1");
        for id in ["a-2", "b-1", "nobody's", "a-1"] {
            router.deliver(confirmed(id));
        }
        let got = |ev: Option<(LegKey, LegEvent)>| ev.map(|(k, e)| (k.0, format!("{e:?}")));
        assert_eq!(
            got(a.recv().await),
            Some(("a-2".into(), "Confirmed".into()))
        );
        assert_eq!(
            got(a.recv().await),
            Some(("a-1".into(), "Confirmed".into()))
        );
        assert_eq!(
            got(b.recv().await),
            Some(("b-1".into(), "Confirmed".into()))
        );
        assert!(a.events.try_recv().is_err(), "a heard nothing else");
        assert!(b.events.try_recv().is_err(), "b heard nothing else");
    }

    #[tokio::test]
    async fn a_dropped_leg_is_no_longer_routed_and_the_call_hears_the_end_of_its_senders() {
        let router = router();
        let (tx, mut events) = call();
        let route = router.register(&leg("x"), &tx).expect("x");
        assert_eq!(router.len(), 1);
        drop(route);
        assert_eq!(router.len(), 0, "the route ends with the leg");
        router.deliver(confirmed("x"));
        drop(tx);
        assert!(
            events.recv().await.is_none(),
            "no state routed, no sender left"
        );
    }

    #[tokio::test]
    async fn a_live_legs_call_id_is_refused_and_a_stale_one_is_taken_over() {
        let router = router();
        let (first_tx, first) = call();
        let old = router.register(&leg("dup"), &first_tx).expect("first");
        let (second_tx, mut second) = call();
        let e = router
            .register(&leg("dup"), &second_tx)
            .expect_err("a live leg has it");
        assert_eq!(e.to_string(), "Call-ID \"dup\" is already a live leg's");
        // The first call ends without its leg being dropped yet (its
        // receiver gone): the route is stale and a new leg takes it over.
        drop(first);
        let new = router
            .register(&leg("dup"), &second_tx)
            .expect("stale route replaced");
        drop(old);
        assert_eq!(
            router.len(),
            1,
            "dropping the stale registration leaves the new route"
        );
        router.deliver(confirmed("dup"));
        assert!(matches!(
            second.recv().await,
            Some((_, LegEvent::Confirmed))
        ));
        drop(new);
        assert_eq!(router.len(), 0);
    }
}
