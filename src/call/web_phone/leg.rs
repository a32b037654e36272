//! One browser leg: the call's requests become messages to the page, the
//! page's messages become the leg's events (see the table in the parent
//! module).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::{PageError, WebPhones};
use crate::media::sdp::webrtc::webrtc_offer;
use crate::media::sdp::SessionDescription;
use crate::media::webrtc::{Fingerprint, IceCredentials};
use crate::sip::stack::LegEventSender;
use crate::sip::{ForeignLeg, LegEvent, LegKey, OutboundInvite, SipError};

/// How long a re-offer waits for the page's answer.
const UPDATE_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Ringing,
    Answered,
    Ended,
}

struct State {
    /// The page the leg is on (`None`: it went away, waiting for it).
    phone: Option<u64>,
    to_page: mpsc::UnboundedSender<Value>,
    stage: Stage,
    /// The re-offer waiting for the page's answer.
    update: Option<oneshot::Sender<Result<Vec<u8>, u16>>>,
    /// Bumped each time the page goes away (a grace timer ends the leg
    /// only if it is still the latest).
    lost: u64,
    /// Our ICE credentials in the offers: the first offer's, until an ICE
    /// restart the page asked for replaced them.
    ice: IceCredentials,
    /// The last offer the page got (an ICE restart re-offers it).
    last_offer: SessionDescription,
    /// ICE restarts so far: added to the call's `o=` versions, so every
    /// offer the page gets has a higher one than the last.
    restarts: u64,
}

/// A browser's leg of a call.
pub(super) struct WebLeg {
    key: LegKey,
    device: String,
    phones: Weak<WebPhones>,
    events: LegEventSender,
    /// Our first offer's `ice-ufrag` (the transport is found by it for an
    /// ICE restart) and our certificate (every offer carries the same: no
    /// new DTLS handshake).
    first_ufrag: String,
    fingerprint: Fingerprint,
    state: Mutex<State>,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

impl WebLeg {
    pub(super) fn new(
        phones: Weak<WebPhones>,
        phone: u64,
        device: String,
        to_page: mpsc::UnboundedSender<Value>,
        invite: &OutboundInvite,
        events: LegEventSender,
    ) -> Result<Arc<Self>, String> {
        let text = String::from_utf8_lossy(&invite.sdp);
        let offer = SessionDescription::parse(&text).map_err(|e| format!("our offer: {e}"))?;
        let (ice, fingerprint) = credentials(&offer)
            .ok_or("our offer to a browser has no ICE credentials or fingerprint")?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Self {
            key: LegKey(format!("webrtc-{n}-{phone}@hotline")),
            device,
            phones,
            events,
            first_ufrag: ice.ufrag.clone(),
            fingerprint,
            state: Mutex::new(State {
                phone: Some(phone),
                to_page,
                stage: Stage::Ringing,
                update: None,
                lost: 0,
                ice,
                last_offer: offer,
                restarts: 0,
            }),
        }))
    }

    pub(super) fn key(&self) -> &LegKey {
        &self.key
    }

    pub(super) fn device(&self) -> &str {
        &self.device
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(super) fn phone(&self) -> Option<u64> {
        let s = self.lock();
        (s.stage != Stage::Ended).then_some(s.phone).flatten()
    }

    fn send(&self, s: &State, message: Value) {
        if s.phone.is_some() {
            let _ = s.to_page.send(message);
        }
    }

    /// Ring the page.
    pub(super) fn offer(&self, invite: &OutboundInvite) {
        let auto_answer = invite.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("Call-Info") && value.contains("answer-after=0")
        });
        let s = self.lock();
        self.send(
            &s,
            json!({
                "type": "phone.offer",
                "leg": self.key.0,
                "sdp": String::from_utf8_lossy(&invite.sdp),
                "caller": invite.from_user,
                "caller_name": invite.from_display,
                "auto_answer": auto_answer,
            }),
        );
    }

    fn event(&self, event: LegEvent) {
        self.events.deliver(self.key.clone(), event);
    }

    /// End the leg here (the page or its absence ended it).
    fn ended(&self, s: &mut State) {
        s.stage = Stage::Ended;
        s.update = None;
        if let Some(phones) = self.phones.upgrade() {
            phones.remove(&self.key.0);
        }
    }

    pub(super) fn on_page_message(&self, kind: &str, m: &Value) -> Result<(), PageError> {
        let mut s = self.lock();
        let sdp = || {
            m["sdp"]
                .as_str()
                .filter(|t| !t.trim().is_empty())
                .map(|t| t.as_bytes().to_vec())
                .ok_or_else(|| PageError::Malformed(format!("{kind}: no \"sdp\"")))
        };
        match (kind, s.stage) {
            ("phone.ringing", Stage::Ringing) => self.event(LegEvent::Progress {
                code: 180,
                sdp: None,
            }),
            ("phone.answer", Stage::Ringing) => {
                let answer = sdp()?;
                s.stage = Stage::Answered;
                self.event(LegEvent::Final {
                    code: 200,
                    sdp: Some(answer),
                });
            }
            ("phone.reject" | "phone.hangup", Stage::Ringing) => {
                // Busy here (486) and decline (603) as a phone's keys;
                // anything else is a decline.
                let code = match m["code"].as_u64() {
                    Some(486) => 486,
                    _ => 603,
                };
                self.ended(&mut s);
                self.event(LegEvent::Final { code, sdp: None });
            }
            ("phone.hangup", Stage::Answered) => {
                self.ended(&mut s);
                self.event(LegEvent::Ended(crate::sip::stack::LegEnd::RemoteBye));
            }
            ("phone.restart", Stage::Answered) => self.restart_ice(&mut s)?,
            ("phone.updated", Stage::Answered) => {
                let Some(waiting) = s.update.take() else {
                    return Err(PageError::Malformed(
                        "phone.updated: no offer is waiting".into(),
                    ));
                };
                let outcome = match m["code"].as_u64() {
                    Some(code) => Err(u16::try_from(code).unwrap_or(488)),
                    None => Ok(sdp()?),
                };
                let _ = waiting.send(outcome);
            }
            (
                "phone.ringing" | "phone.answer" | "phone.reject" | "phone.hangup"
                | "phone.updated" | "phone.restart",
                _,
            ) => {
                return Err(PageError::Malformed(format!(
                    "{kind}: the call is not in a state for it"
                )))
            }
            _ => {
                return Err(PageError::Malformed(format!(
                    "unknown message type {kind:?}"
                )))
            }
        }
        Ok(())
    }

    /// The page lost its media path (its network changed or dropped): new
    /// ICE credentials on the leg's transport, re-offered to the page
    /// (`phone.update` with `restart`), whose answer restarts ICE on the
    /// browser's side (RFC 8839 §4.4.1.1.1). DTLS and its keys stay.
    fn restart_ice(&self, s: &mut State) -> Result<(), PageError> {
        if s.update.is_some() {
            return Err(PageError::Malformed(
                "phone.restart: a re-offer is waiting for the page's answer".into(),
            ));
        }
        let Some(fresh) = crate::media::webrtc::restart::restart(&self.first_ufrag) else {
            return Err(PageError::Malformed(
                "phone.restart: the leg's media is gone".into(),
            ));
        };
        let mut offer = webrtc_offer(&s.last_offer, &fresh, self.fingerprint);
        offer.session_version += 1;
        s.restarts += 1;
        s.ice = fresh;
        s.last_offer = offer.clone();
        let (tx, rx) = oneshot::channel();
        s.update = Some(tx);
        self.send(
            s,
            json!({ "type": "phone.update", "leg": self.key.0, "sdp": offer.to_string(), "restart": true }),
        );
        tracing::info!(leg = %self.key, "ICE restart asked by the page: re-offered with new credentials");
        let key = self.key.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(UPDATE_WAIT, rx).await {
                Ok(Ok(Ok(_))) => tracing::info!(leg = %key, "ICE restart answered by the page"),
                outcome => {
                    tracing::warn!(leg = %key, ?outcome, "ICE restart not answered by the page")
                }
            }
        });
        Ok(())
    }

    /// The page went away: ringing fails, an answered call waits `grace`.
    pub(super) fn page_lost(self: &Arc<Self>, grace: Duration) {
        let mut s = self.lock();
        s.phone = None;
        s.update = None;
        match s.stage {
            Stage::Ringing => {
                self.ended(&mut s);
                self.event(LegEvent::Final {
                    code: 480,
                    sdp: None,
                });
            }
            Stage::Answered => {
                s.lost += 1;
                let lost = s.lost;
                let leg = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    let mut s = leg.lock();
                    if s.stage == Stage::Answered && s.phone.is_none() && s.lost == lost {
                        tracing::info!(leg = %leg.key, "the browser did not come back: its call ends");
                        leg.ended(&mut s);
                        leg.event(LegEvent::Ended(crate::sip::stack::LegEnd::Timeout));
                    }
                });
            }
            Stage::Ended => {}
        }
    }

    /// The page came back (a new registration naming this leg).
    pub(super) fn resume(&self, phone: u64, to_page: mpsc::UnboundedSender<Value>) {
        let mut s = self.lock();
        if s.stage == Stage::Answered && s.phone.is_none() {
            s.phone = Some(phone);
            s.to_page = to_page;
            tracing::info!(leg = %self.key, phone, "the browser came back to its call");
        }
    }

    /// Stop ringing, or end the call, as the call decided.
    fn close(&self) {
        let mut s = self.lock();
        let message = match s.stage {
            Stage::Ringing => "phone.cancel",
            Stage::Answered => "phone.bye",
            Stage::Ended => return,
        };
        self.send(&s, json!({ "type": message, "leg": self.key.0 }));
        self.ended(&mut s);
    }
}

/// Our ICE credentials and fingerprint, as written in our offer.
fn credentials(offer: &SessionDescription) -> Option<(IceCredentials, Fingerprint)> {
    let audio = offer.media.iter().find(|m| m.is_audio() && m.port != 0)?;
    let find = |name: &str| {
        audio
            .other_attributes
            .iter()
            .find_map(|a| a.strip_prefix(name).map(str::to_string))
    };
    let ice = IceCredentials {
        ufrag: find("ice-ufrag:")?,
        pwd: find("ice-pwd:")?,
    };
    Some((ice, Fingerprint::parse(&find("fingerprint:")?)?))
}

impl ForeignLeg for WebLeg {
    fn reinvite(&self, sdp: Vec<u8>) -> BoxFuture<'static, Result<(u16, Vec<u8>), SipError>> {
        let text = String::from_utf8_lossy(&sdp);
        let plain = match SessionDescription::parse(&text) {
            Ok(plain) => plain,
            Err(e) => {
                let e = SipError::Dialog(format!("re-offer to a browser: {e}"));
                return Box::pin(async move { Err(e) });
            }
        };
        let (tx, rx) = oneshot::channel();
        {
            let mut s = self.lock();
            if s.stage != Stage::Answered {
                return Box::pin(async { Ok((481, Vec::new())) });
            }
            if s.phone.is_none() {
                // Away: the page cannot answer now; the call keeps what it had.
                return Box::pin(async { Ok((503, Vec::new())) });
            }
            if s.update.is_some() {
                // The page has an offer of ours to answer (an ICE restart):
                // one at a time (RFC 3261 §14.2).
                return Box::pin(async { Ok((491, Vec::new())) });
            }
            let mut offer = webrtc_offer(&plain, &s.ice, self.fingerprint);
            offer.session_version += s.restarts;
            s.last_offer = offer.clone();
            s.update = Some(tx);
            self.send(
                &s,
                json!({ "type": "phone.update", "leg": self.key.0, "sdp": offer.to_string() }),
            );
        }
        Box::pin(async move {
            match tokio::time::timeout(UPDATE_WAIT, rx).await {
                Ok(Ok(Ok(answer))) => Ok((200, answer)),
                Ok(Ok(Err(code))) => Ok((code, Vec::new())),
                Ok(Err(_)) => Ok((481, Vec::new())), // the leg ended meanwhile
                Err(_) => Ok((408, Vec::new())),
            }
        })
    }

    fn refresh(&self) -> BoxFuture<'static, Result<u16, SipError>> {
        let code = match self.lock().stage {
            Stage::Answered => 200,
            _ => 481,
        };
        Box::pin(async move { Ok(code) })
    }

    fn hang_up(&self) {
        self.close();
    }

    fn forget(&self) {
        self.close();
    }
}
