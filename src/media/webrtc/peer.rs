//! The browser's side of a WebRTC leg, without a browser: ICE checks
//! signed with hotline's `ice-pwd` and a DTLS client with its own
//! certificate (rtc-dtls, as webrtc-rs's peer connection drives it), for
//! the unit tests of [`super`] and the cost figures of `benches/webrtc.rs`.
//! Never used on a call: hotline is only ever the ICE-lite DTLS server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_stun::attributes::{RawAttribute, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST};
use rtc_stun::textattrs::TextAttribute;

use super::{classify, Class, Fingerprint, IceCredentials, WebRtcTransport};
use crate::media::sdp::{CryptoSuite, MasterKey, SrtpKeys};

/// A browser's DTLS client toward hotline.
pub struct BrowserPeer {
    endpoint: Endpoint,
    local: SocketAddr,
    hotline: SocketAddr,
    /// Its certificate's fingerprint (what its SDP answer carries).
    pub fingerprint: Fingerprint,
}

impl BrowserPeer {
    /// A client at `local` that starts a handshake with `hotline`.
    ///
    /// # Panics
    /// Without a crypto provider (a build without ring).
    pub fn new(local: SocketAddr, hotline: SocketAddr) -> Self {
        let provider = rtc_dtls::crypto_provider::default_provider().expect("a crypto provider");
        let cert = Certificate::generate_self_signed(vec!["browser".into()], provider.crypto())
            .expect("a certificate");
        let fingerprint = Fingerprint::of(cert.certificate[0].as_ref());
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider)
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            // Browsers check hotline's certificate against its SDP's
            // fingerprint, not a CA; nothing to verify here.
            .with_insecure_skip_verify(true)
            .build(true, Some(hotline))
            .expect("a client configuration");
        let mut endpoint = Endpoint::new(local, rtc_shared::TransportProtocol::UDP, None);
        endpoint
            .connect(now(), hotline, Arc::new(config), None)
            .expect("the handshake starts");
        Self {
            endpoint,
            local,
            hotline,
            fingerprint,
        }
    }

    /// What the client sends next.
    pub fn flight(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = self.endpoint.poll_transmit() {
            out.push(t.message.to_vec());
        }
        out
    }

    /// Take hotline's replies; true once the handshake completed here.
    pub fn take(&mut self, replies: Vec<(SocketAddr, Vec<u8>)>) -> bool {
        let mut done = false;
        for (_, d) in replies {
            if classify(&d) != Class::Dtls {
                continue;
            }
            // A refused handshake ends in hotline's alert, an error here.
            let Ok(events) = self
                .endpoint
                .read(now(), self.hotline, None, BytesMut::from(&d[..]))
            else {
                continue;
            };
            done |= events
                .iter()
                .any(|e| matches!(e, EndpointEvent::HandshakeComplete));
        }
        done
    }

    /// The client's SRTP keys (RFC 5764 §4.2, the client's view).
    ///
    /// # Panics
    /// Before the handshake completed.
    pub fn keys(&self) -> SrtpKeys {
        let state = self
            .endpoint
            .get_connection_state(self.hotline)
            .expect("an association");
        let m = state
            .export_keying_material("EXTRACTOR-dtls_srtp", &[], 60)
            .expect("keys");
        let m = m.as_ref();
        let key = |k: &[u8], s: &[u8]| MasterKey::from_slice(&[k, s].concat()).expect("key");
        SrtpKeys {
            suite: CryptoSuite::AesCm128HmacSha1_80,
            local: key(&m[..16], &m[32..46]),
            remote: key(&m[16..32], &m[46..]),
        }
    }
}

#[allow(clippy::disallowed_methods)] // the browser's side is a shell of its own
fn now() -> Instant {
    Instant::now()
}

/// Run the handshake of `browser` against `leg`; hotline's keys when it
/// completes.
pub fn handshake(leg: &mut WebRtcTransport, browser: &mut BrowserPeer) -> Option<SrtpKeys> {
    handshake_timed(leg, browser).0
}

/// [`handshake`], and the time hotline's side spent in it (the browser's
/// own work not counted).
pub fn handshake_timed(
    leg: &mut WebRtcTransport,
    browser: &mut BrowserPeer,
) -> (Option<SrtpKeys>, std::time::Duration) {
    let from = browser.local;
    let mut keys = None;
    let mut spent = std::time::Duration::ZERO;
    for _ in 0..10 {
        let flight = browser.flight();
        if flight.is_empty() {
            break;
        }
        for d in flight {
            let t = now();
            let r = leg.receive(t, from, &d);
            spent += t.elapsed();
            keys = keys.or(r.keys);
            browser.take(r.replies);
        }
    }
    (keys, spent)
}

/// A browser's ICE check of a leg with hotline's credentials `ours`.
pub fn check(ours: &IceCredentials, nominate: bool) -> Vec<u8> {
    check_as(&format!("{}:brws", ours.ufrag), &ours.pwd, nominate)
}

/// A Binding request with `USERNAME` `user`, signed with `pwd`.
pub fn check_as(user: &str, pwd: &str, nominate: bool) -> Vec<u8> {
    let provider = rtc_stun::crypto::default_provider().expect("a crypto provider");
    let mut setters: Vec<Box<dyn Setter + '_>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(TextAttribute::new(ATTR_USERNAME, user.to_string())),
        Box::new(RawAttribute {
            typ: ATTR_PRIORITY,
            length: 4,
            value: 1_845_501_695u32.to_be_bytes().to_vec(),
        }),
    ];
    if nominate {
        setters.push(Box::new(RawAttribute {
            typ: ATTR_USE_CANDIDATE,
            length: 0,
            value: vec![],
        }));
    }
    setters.push(Box::new(
        MessageIntegrity::new_short_term_integrity_with_provider(
            pwd.to_string(),
            provider.crypto(),
        ),
    ));
    setters.push(Box::new(FINGERPRINT));
    let mut m = Message::new();
    m.build(&setters).expect("a Binding request");
    m.raw
}
