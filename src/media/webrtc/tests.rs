//! A browser's side, in memory: ICE checks signed with our password and a
//! DTLS client (rtc-dtls, as webrtc-rs's peer connection uses it) with
//! its own certificate, against [`WebRtcTransport`].

// The browser here is a shell of its own: it reads the clock.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc_dtls::config::{ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;

use super::*;
use crate::media::sdp::{CryptoSuite, MasterKey};

fn ours() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("addr")
}

fn browser_addr() -> SocketAddr {
    "127.0.0.1:50000".parse().expect("addr")
}

struct Browser {
    endpoint: Endpoint,
    fingerprint: Fingerprint,
}

impl Browser {
    fn new() -> Self {
        let provider = rtc_dtls::crypto_provider::default_provider().expect("provider");
        let cert = Certificate::generate_self_signed(vec!["browser".into()], provider.crypto())
            .expect("certificate");
        let fingerprint = Fingerprint::of(cert.certificate[0].as_ref());
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider)
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true)
            .build(true, Some(ours()))
            .expect("client config");
        let mut endpoint = Endpoint::new(browser_addr(), rtc_shared::TransportProtocol::UDP, None);
        endpoint
            .connect(Instant::now(), ours(), Arc::new(config), None)
            .expect("connect");
        Self {
            endpoint,
            fingerprint,
        }
    }

    fn flight(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = self.endpoint.poll_transmit() {
            out.push(t.message.to_vec());
        }
        out
    }

    /// Feed our replies; true once the browser's handshake completed.
    fn take(&mut self, replies: Vec<(SocketAddr, Vec<u8>)>) -> bool {
        let mut done = false;
        for (to, d) in replies {
            assert_eq!(to, browser_addr(), "replies go to the checked browser");
            if classify(&d) != Class::Dtls {
                continue;
            }
            // A refused handshake ends in our alert, an error here.
            let Ok(events) =
                self.endpoint
                    .read(Instant::now(), ours(), None, BytesMut::from(&d[..]))
            else {
                continue;
            };
            done |= events
                .iter()
                .any(|e| matches!(e, EndpointEvent::HandshakeComplete));
        }
        done
    }

    /// The browser's view of the SRTP keys (it is the client).
    fn keys(&self) -> SrtpKeys {
        let state = self
            .endpoint
            .get_connection_state(ours())
            .expect("association");
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

/// Run the handshake; our keys when it completes.
fn handshake(t: &mut WebRtcTransport, b: &mut Browser) -> Option<SrtpKeys> {
    let mut keys = None;
    for _ in 0..10 {
        let flight = b.flight();
        if flight.is_empty() {
            break;
        }
        for d in flight {
            let r = t.receive(Instant::now(), browser_addr(), &d);
            keys = keys.or(r.keys);
            b.take(r.replies);
        }
    }
    keys
}

fn check(t: &WebRtcTransport, nominate: bool) -> Vec<u8> {
    let c = t.credentials();
    super::ice::tests_support::check(&format!("{}:brws", c.ufrag), &c.pwd, nominate)
}

#[test]
fn a_checked_browser_completes_dtls_and_both_sides_hold_mirrored_srtp_keys() {
    let mut t = WebRtcTransport::new(ours());
    let mut b = Browser::new();
    let r = t.receive(Instant::now(), browser_addr(), &check(&t, true));
    assert_eq!(r.replies.len(), 1, "the check is answered");
    assert_eq!(t.remote(), Some(browser_addr()));
    t.arm(Instant::now(), b.fingerprint).expect("armed");
    let ours = handshake(&mut t, &mut b).expect("the handshake completes");
    let theirs = b.keys();
    assert_eq!(
        ours.local, theirs.remote,
        "our sending key is their receiving key"
    );
    assert_eq!(ours.remote, theirs.local);
}

#[test]
fn dtls_that_arrives_before_the_answer_is_replayed_once_armed() {
    let mut t = WebRtcTransport::new(ours());
    let mut b = Browser::new();
    t.receive(Instant::now(), browser_addr(), &check(&t, true));
    for d in b.flight() {
        let r = t.receive(Instant::now(), browser_addr(), &d);
        assert!(r.replies.is_empty(), "nothing answered before the answer");
    }
    let r = t.arm(Instant::now(), b.fingerprint).expect("armed");
    assert!(!r.replies.is_empty(), "the early ClientHello is answered");
    b.take(r.replies);
    assert!(handshake(&mut t, &mut b).is_some());
}

#[test]
fn a_browser_whose_certificate_is_not_the_answered_fingerprint_gets_no_keys() {
    let mut t = WebRtcTransport::new(ours());
    let mut b = Browser::new();
    t.receive(Instant::now(), browser_addr(), &check(&t, true));
    t.arm(Instant::now(), Fingerprint([7; 32])).expect("armed");
    assert!(handshake(&mut t, &mut b).is_none());
}

#[test]
fn media_and_dtls_from_an_unchecked_address_are_refused() {
    let mut t = WebRtcTransport::new(ours());
    let stranger: SocketAddr = "127.0.0.9:50000".parse().expect("addr");
    let rtp = [0x80, 0x08, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4, 0xd5];
    assert!(t.receive(Instant::now(), stranger, &rtp).media.is_none());
    t.receive(Instant::now(), browser_addr(), &check(&t, true));
    assert!(t.receive(Instant::now(), stranger, &rtp).media.is_none());
    assert_eq!(
        t.receive(Instant::now(), browser_addr(), &rtp).media,
        Some(Class::Rtp)
    );
    let mut rtcp = rtp;
    rtcp[1] = 200; // a sender report, muxed
    assert_eq!(
        t.receive(Instant::now(), browser_addr(), &rtcp).media,
        Some(Class::Rtcp)
    );
    // A stranger's check without our password moves nothing.
    let bad = super::ice::tests_support::check(
        &format!("{}:evil", t.credentials().ufrag),
        "not-the-password-at-all!",
        true,
    );
    t.receive(Instant::now(), stranger, &bad);
    assert_eq!(t.remote(), Some(browser_addr()));
}

#[test]
fn media_goes_to_the_nominated_pair_or_where_the_browsers_media_comes_from() {
    let mut t = WebRtcTransport::new(ours());
    let other: SocketAddr = "127.0.0.1:50002".parse().expect("addr");
    t.receive(Instant::now(), browser_addr(), &check(&t, true));
    t.receive(Instant::now(), other, &check(&t, false));
    assert_eq!(
        t.remote(),
        Some(browser_addr()),
        "an unnominated check does not move it"
    );
    t.receive(
        Instant::now() + Duration::from_secs(1),
        other,
        &check(&t, true),
    );
    assert_eq!(
        t.remote(),
        Some(other),
        "a new nomination (ICE restart) moves it"
    );
    // The browser's media from the first checked pair: answered there.
    let rtp = [0x80, 0x08, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4, 0xd5];
    assert_eq!(
        t.receive(Instant::now(), browser_addr(), &rtp).media,
        Some(Class::Rtp)
    );
    assert_eq!(t.remote(), Some(browser_addr()));
    // A stranger's media moves nothing.
    let stranger: SocketAddr = "127.0.0.9:50000".parse().expect("addr");
    assert_eq!(t.receive(Instant::now(), stranger, &rtp).media, None);
    assert_eq!(t.remote(), Some(browser_addr()));
}

#[test]
fn the_fingerprint_reads_and_writes_the_sdp_form() {
    let f = Fingerprint([0xab; 32]);
    let text = f.to_string();
    assert!(text.starts_with("sha-256 AB:AB:"));
    assert_eq!(Fingerprint::parse(&text), Some(f));
    assert_eq!(Fingerprint::parse(&text.to_lowercase()), Some(f));
    assert_eq!(Fingerprint::parse("sha-1 AB:CD"), None);
    assert_eq!(Fingerprint::parse("sha-256 AB:CD"), None);
    assert_eq!(Fingerprint::parse(&format!("{text}:00")), None);
    assert!(dtls::identity().is_ok());
}

#[test]
fn datagrams_are_classified_as_rfc_7983_says() {
    assert_eq!(classify(&[0, 1]), Class::Stun);
    assert_eq!(classify(&[22, 254]), Class::Dtls);
    assert_eq!(classify(&[0x80, 0x08]), Class::Rtp);
    assert_eq!(classify(&[0x80, 0x88]), Class::Rtp); // marker bit, PCMA
    assert_eq!(classify(&[0x81, 200]), Class::Rtcp);
    assert_eq!(classify(&[0x80]), Class::Other);
    assert_eq!(classify(&[]), Class::Other);
    assert_eq!(classify(&[64, 0]), Class::Other);
}
