//! Browsers as agents' phones (issue 17 §2: "the phone bar registers its
//! audio endpoint over its authenticated WebSocket … so a signed-in agent
//! with a browser *is* a reachable phone for the ACD").
//!
//! A page signed in as an agent sends `phone.register` on the live
//! WebSocket (`api::live`); from then on the agent's phone (their SIP
//! user) has one more contact, the page ([`WebPhones::contacts`], merged
//! into the call's [`Directory`] by [`WithBrowsers`]). The call core rings
//! it like any contact: [`WebPhones::invite`] returns an
//! [`OutboundLeg`] whose progress, answer and end come on the call's
//! channel as the SIP stack's would, so offers, ring-no-answer, hold,
//! transfers, supervision and recording need nothing of their own.
//!
//! The page's protocol (JSON text messages; `leg` names the call's leg):
//!
//! | server → page | page → server |
//! |---|---|
//! | `phone.registered {phone}` | `phone.register {resume?: [leg]}` |
//! | `phone.offer {leg, sdp, caller, caller_name, auto_answer}` | `phone.ringing {leg}` |
//! | | `phone.answer {leg, sdp}` / `phone.reject {leg, code?}` |
//! | `phone.cancel {leg}` (stop ringing) | |
//! | `phone.update {leg, sdp}` (hold, resume) | `phone.updated {leg, sdp}` or `{leg, code}` |
//! | `phone.update {leg, sdp, restart: true}` (new ICE credentials) | `phone.restart {leg}` (its media path is lost) |
//! | `phone.bye {leg}` | `phone.hangup {leg}` |
//!
//! The SDP is JSEP's (RFC 8829): our offer is the plain one made WebRTC by
//! [`crate::media::sdp::webrtc`], with the ICE credentials of the call's
//! agent-side ports; the browser answers non-trickle (its candidates are
//! not needed: ICE-lite learns its address from its checks).
//!
//! A page that goes away (reload, network drop) fails its ringing legs
//! (480) at once; its answered legs wait a grace ([`DEFAULT_GRACE`]) for the
//! page to come back with `phone.register {resume: [leg]}` — the media
//! path (ICE, DTLS) does not depend on the WebSocket — and end as the
//! agent's hang-up after it. A page whose media path is lost (its network
//! dropped or changed: ICE `failed`, or `disconnected` for 3 s, or still
//! down when it comes back) asks for an ICE restart: the leg's transport
//! gets new credentials ([`crate::media::webrtc::restart`]) and the page a
//! re-offer with them, whose answer restarts ICE in the browser (RFC 8839
//! §4.4.1.1.1); the DTLS association and its keys stay.

mod leg;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{Contact, Directory};
use crate::sip::stack::LegEventSender;
use crate::sip::{OutboundInvite, OutboundLeg, SipError};

use leg::WebLeg;

/// How long an answered browser leg waits for its page to come back.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(20);

/// The signed-in browser phones and their legs.
pub struct WebPhones {
    inner: Mutex<Registry>,
    next: AtomicU64,
    grace: Duration,
    me: Weak<WebPhones>,
}

#[derive(Default)]
struct Registry {
    phones: HashMap<u64, Phone>,
    legs: HashMap<String, Arc<WebLeg>>,
}

struct Phone {
    device: String,
    to_page: mpsc::UnboundedSender<Value>,
}

/// A registered page's end of its phone: what to send the page, and its
/// id. Dropping it (the WebSocket closed) unregisters the phone.
pub struct PhoneLine {
    id: u64,
    phones: Arc<WebPhones>,
    /// Messages for the page.
    pub to_page: mpsc::UnboundedReceiver<Value>,
}

impl PhoneLine {
    /// The phone's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// A message from the page (`phone.*`); a clear error for one that
    /// is malformed or names a leg that is not this phone's.
    pub fn on_page_message(&self, message: &Value) -> Result<(), PageError> {
        self.phones.on_page_message(self.id, message)
    }
}

impl Drop for PhoneLine {
    fn drop(&mut self) {
        self.phones.disconnected(self.id);
    }
}

/// A page's message that could not be taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    /// Not one of the `phone.*` messages, or a field is missing.
    #[error("{0}")]
    Malformed(String),
    /// The leg is not (or no longer) this phone's.
    #[error("no call leg {0:?} on this phone")]
    NoSuchLeg(String),
}

impl WebPhones {
    /// An empty registry whose answered legs wait `grace` for a page that
    /// went away.
    pub fn new(grace: Duration) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            inner: Mutex::new(Registry::default()),
            next: AtomicU64::new(1),
            grace,
            me: me.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The page of agent phone `device` registers; answered legs named in
    /// `resume` that lost their page (of the same phone user) are its
    /// again.
    pub fn register(&self, device: &str, resume: &[String]) -> Option<PhoneLine> {
        let phones = self.me.upgrade()?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(json!({ "type": "phone.registered", "phone": id }));
        // Lock order: a leg's lock is never taken under the registry's
        // (a leg ending takes the registry's under its own).
        let resumed: Vec<Arc<WebLeg>> = {
            let r = self.lock();
            resume
                .iter()
                .filter_map(|key| r.legs.get(key))
                .filter(|leg| leg.device() == device)
                .cloned()
                .collect()
        };
        for leg in resumed {
            leg.resume(id, tx.clone());
        }
        self.lock().phones.insert(
            id,
            Phone {
                device: device.to_string(),
                to_page: tx,
            },
        );
        Some(PhoneLine {
            id,
            phones,
            to_page: rx,
        })
    }

    /// Browser contacts of agent phone `device`.
    pub fn contacts(&self, device: &str) -> Vec<Contact> {
        let r = self.lock();
        let mut ids: Vec<u64> = r
            .phones
            .iter()
            .filter(|(_, p)| p.device == device)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| Contact {
                uri: format!("webrtc:{device};phone={id}"),
                source: SocketAddr::from(([0, 0, 0, 0], 0)),
                tcp: false,
                route: Vec::new(),
            })
            .collect()
    }

    /// Ring browser phone `phone` with `invite` (its SDP already the
    /// WebRTC offer); the leg reports on `events`.
    pub fn invite(
        &self,
        phone: u64,
        invite: &OutboundInvite,
        events: &LegEventSender,
    ) -> Result<OutboundLeg, SipError> {
        let mut r = self.lock();
        let Some(p) = r.phones.get(&phone) else {
            return Err(SipError::Send(format!("browser phone {phone} is gone")));
        };
        let leg = WebLeg::new(
            self.me.clone(),
            phone,
            p.device.clone(),
            p.to_page.clone(),
            invite,
            events.clone(),
        )
        .map_err(SipError::Send)?;
        let key = leg.key().clone();
        r.legs.insert(key.0.clone(), leg.clone());
        drop(r);
        leg.offer(invite);
        Ok(OutboundLeg::foreign(key, leg))
    }

    fn on_page_message(&self, phone: u64, message: &Value) -> Result<(), PageError> {
        let kind = message["type"].as_str().unwrap_or_default();
        let key = message["leg"]
            .as_str()
            .ok_or_else(|| PageError::Malformed(format!("{kind}: no \"leg\"")))?;
        let leg = self.lock().legs.get(key).cloned();
        let leg = leg
            .filter(|l| l.phone() == Some(phone))
            .ok_or_else(|| PageError::NoSuchLeg(key.to_string()))?;
        leg.on_page_message(kind, message)
    }

    /// A leg is done: out of the registry.
    fn remove(&self, key: &str) {
        self.lock().legs.remove(key);
    }

    /// A page went away: its ringing legs fail, its answered legs wait
    /// for it.
    fn disconnected(&self, phone: u64) {
        let legs: Vec<Arc<WebLeg>> = {
            let mut r = self.lock();
            r.phones.remove(&phone);
            r.legs.values().cloned().collect()
        };
        for leg in legs.iter().filter(|l| l.phone() == Some(phone)) {
            leg.page_lost(self.grace);
        }
    }
}

/// The browser phone a contact URI names (`webrtc:<user>;phone=<id>`).
pub fn phone_of(target: &str) -> Option<u64> {
    let rest = target.strip_prefix("webrtc:")?;
    rest.split(';')
        .find_map(|p| p.strip_prefix("phone="))
        .and_then(|id| id.parse().ok())
}

/// `invite` to a browser phone carries the WebRTC form of the offer,
/// `web_offer` (`None`: this call cannot ring browsers, nor this invite);
/// an invite to any other phone is left as it is.
pub fn for_browser(mut invite: OutboundInvite, web_offer: Option<&[u8]>) -> Option<OutboundInvite> {
    if phone_of(&invite.target).is_some() {
        invite.sdp = web_offer?.to_vec();
    }
    Some(invite)
}

/// Ring `invite`'s target: a browser phone over its page, anything else
/// with a SIP INVITE.
pub fn dial(
    stack: &crate::sip::SipStack,
    phones: &WebPhones,
    invite: OutboundInvite,
    events: &LegEventSender,
) -> Result<OutboundLeg, SipError> {
    match phone_of(&invite.target) {
        Some(phone) => phones.invite(phone, &invite, events),
        None => stack.invite(invite, events),
    }
}

/// Our plain offer `plain` (of the agent-side `ports`) as a browser's:
/// the ports' ICE credentials and our certificate (`None`, logged, when
/// the certificate cannot be made: browsers are then not rung).
pub fn offer_for(
    plain: &crate::media::sdp::SessionDescription,
    ports: &crate::media::ports::PortPair,
) -> Option<Vec<u8>> {
    let identity = match crate::media::webrtc::dtls::identity() {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "no DTLS certificate: browser phones cannot be rung");
            return None;
        }
    };
    let ice = ports.webrtc_credentials();
    let offer = crate::media::sdp::webrtc::webrtc_offer(plain, &ice, identity.fingerprint());
    Some(offer.to_string().into_bytes())
}

/// The agents' registrations: their SIP phones' and their browsers'.
pub struct WithBrowsers {
    /// The SIP registrar's view.
    pub sip: Arc<dyn Directory>,
    /// The browser phones.
    pub web: Arc<WebPhones>,
}

impl Directory for WithBrowsers {
    fn contacts(&self, user: &str) -> Vec<Contact> {
        let mut all = self.sip.contacts(user);
        all.extend(self.web.contacts(user));
        all
    }
}

#[cfg(test)]
mod tests;
