//! Legs that are not SIP dialogs (issue 17 §1–2: a browser agent's leg,
//! signalled over the phone bar's WebSocket), shaped like a UAC leg so
//! the call core rings, answers, re-offers and hangs them up the way it
//! does a phone's: an [`OutboundLeg`] is either a SIP dialog of ours or a
//! [`ForeignLeg`] whose owner (the `call` room) speaks its protocol and
//! reports its progress, answer and end as [`LegEvent`](super::LegEvent)s
//! on the call's channel ([`LegEventSender::deliver`](super::leg_events::LegEventSender::deliver)).

use std::sync::Arc;

use futures::future::BoxFuture;

use super::leg_events::LegKey;
use super::stack::{AnyLegRequests, Leg, SipError, SipOutbound};

/// What the call asks of a leg that is not a SIP dialog.
pub trait ForeignLeg: Send + Sync + 'static {
    /// A new offer in the established session (RFC 3264 §8 in spirit:
    /// hold, resume, a codec change); the status (200, or a failure) and
    /// the answer.
    fn reinvite(&self, sdp: Vec<u8>) -> BoxFuture<'static, Result<(u16, Vec<u8>), SipError>>;
    /// Is the peer still there? 200, or 481 once it is gone.
    fn refresh(&self) -> BoxFuture<'static, Result<u16, SipError>>;
    /// Stop ringing it, or end the established session; does not wait.
    fn hang_up(&self);
    /// The call is done with the leg (idempotent): an unended session is
    /// ended as by [`Self::hang_up`].
    fn forget(&self);
}

/// A leg we opened toward an agent or a number: a SIP dialog (our INVITE)
/// or a [`ForeignLeg`].
pub struct OutboundLeg(Kind);

enum Kind {
    Sip(SipOutbound),
    Foreign {
        key: LegKey,
        leg: Arc<dyn ForeignLeg>,
    },
}

impl OutboundLeg {
    pub(super) fn sip(leg: SipOutbound) -> Self {
        Self(Kind::Sip(leg))
    }

    /// A leg that is not a SIP dialog, known to the call by `key` (its
    /// events come on the call's channel under that key).
    pub fn foreign(key: LegKey, leg: Arc<dyn ForeignLeg>) -> Self {
        Self(Kind::Foreign { key, leg })
    }

    /// Cancel while ringing, or end it once answered.
    pub async fn hang_up(&self) {
        match &self.0 {
            Kind::Sip(s) => s.hang_up().await,
            Kind::Foreign { leg, .. } => leg.hang_up(),
        }
    }
}

impl Leg for OutboundLeg {
    fn key(&self) -> &LegKey {
        match &self.0 {
            Kind::Sip(s) => s.key(),
            Kind::Foreign { key, .. } => key,
        }
    }

    async fn reinvite(&self, sdp: Vec<u8>) -> Result<(u16, Vec<u8>), SipError> {
        self.requests().reinvite(sdp).await
    }

    async fn refresh(&self) -> Result<u16, SipError> {
        self.requests().refresh().await
    }

    async fn bye(&self) {
        match &self.0 {
            Kind::Sip(s) => s.bye().await,
            Kind::Foreign { leg, .. } => {
                leg.hang_up();
                leg.forget();
            }
        }
    }

    fn forget(&self) {
        match &self.0 {
            Kind::Sip(s) => s.forget(),
            Kind::Foreign { leg, .. } => leg.forget(),
        }
    }

    fn requests(&self) -> AnyLegRequests {
        match &self.0 {
            Kind::Sip(s) => s.requests(),
            Kind::Foreign { leg, .. } => AnyLegRequests::Foreign(leg.clone()),
        }
    }
}

impl Drop for OutboundLeg {
    fn drop(&mut self) {
        if let Kind::Foreign { leg, .. } = &self.0 {
            leg.forget();
        }
        // A SIP leg forgets its dialog in its own Drop.
    }
}
