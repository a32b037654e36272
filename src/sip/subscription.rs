//! The notifier's side of a subscription dialog (RFC 6665 §4.2): a phone's
//! SUBSCRIBE accepted with 200 and a dialog of its own, NOTIFYs sent in
//! that dialog, its refreshes and its unsubscribe surfaced as
//! [`LegEvent::Resubscribe`] on the subscription's channel (routed by
//! Call-ID like a call's legs). What is subscribed to, and when to
//! notify, is the switch's (`switch::blf`).

use std::sync::Arc;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::subscription::ServerSubscriptionDialog;
use rsipstack::sip as rsip;
use tracing::debug;

use super::leg_events::Registration;
use super::message::to_headers;
use super::stack::{LegEvents, LegKey, SipError, SipStack};
use super::{Request, Responder};

/// An accepted subscription: its dialog, and its events (refreshes, the
/// end of the dialog). Dropping it forgets the dialog.
pub struct Subscription {
    /// Refreshes and unsubscribes ([`super::LegEvent::Resubscribe`]).
    pub events: LegEvents,
    _route: Registration,
    dialog: ServerSubscriptionDialog,
    dialogs: Arc<DialogLayer>,
}

impl SipStack {
    /// Accept the SUBSCRIBE `req` (whose transaction `responder` holds) with 200 and `headers`
    /// (`Expires`, `Event`): its dialog is created and confirmed, ready
    /// for NOTIFYs.
    pub fn accept_subscription(
        &self,
        req: &Request,
        responder: Responder,
        headers: Vec<(String, String)>,
    ) -> Result<Subscription, SipError> {
        let mut tx = responder.tx;
        let (sender, events) = self.leg_channel();
        let key = LegKey(req.call_id());
        let route = self
            .inner
            .router
            .register(&key, &sender)
            .map_err(|e| SipError::Dialog(format!("SUBSCRIBE: {e}")))?;
        let dialog = self
            .inner
            .dialogs
            .get_or_create_server_subscription(
                &tx,
                sender.states.clone(),
                None,
                Some(self.contact()),
            )
            .map_err(|e| SipError::Dialog(e.to_string()))?;
        dialog
            .accept(Some(to_headers(headers)), None)
            .map_err(|e| SipError::Dialog(e.to_string()))?;
        // The transaction sends the 200 (queued by `accept`) and answers
        // the SUBSCRIBE's retransmissions with it until it ends.
        tokio::spawn(async move { while tx.receive().await.is_some() {} });
        Ok(Subscription {
            events,
            _route: route,
            dialog,
            dialogs: self.inner.dialogs.clone(),
        })
    }
}

impl Subscription {
    /// Send a NOTIFY with `Subscription-State: state` (`active;expires=…`
    /// or `terminated;reason=…`), the `Event` and the body of
    /// `content_type`; the status the phone answered it with.
    pub async fn notify(
        &self,
        event: &str,
        state: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<u16, SipError> {
        let headers = vec![
            rsip::Header::Event(event.into()),
            rsip::Header::SubscriptionState(state.into()),
            rsip::Header::ContentType(content_type.into()),
        ];
        match self.dialog.notify(Some(headers), Some(body)).await {
            Ok(Some(resp)) => Ok(resp.status_code.code()),
            Ok(None) => Err(SipError::Dialog("subscription not confirmed".into())),
            Err(e) => Err(SipError::Dialog(e.to_string())),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let id = self.dialog.id();
        debug!(%id, "subscription dialog forgotten");
        self.dialogs.remove_dialog(&id);
    }
}
