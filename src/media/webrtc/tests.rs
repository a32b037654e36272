//! A browser's side, in memory: ICE checks signed with our password and a
//! DTLS client (rtc-dtls, as webrtc-rs's peer connection uses it) with
//! its own certificate, against [`WebRtcTransport`].

// The browser here is a shell of its own: it reads the clock.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use super::peer::BrowserPeer as Browser;
use super::*;

fn ours() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("addr")
}

fn browser_addr() -> SocketAddr {
    "127.0.0.1:50000".parse().expect("addr")
}

/// Run the handshake; our keys when it completes.
fn handshake(t: &mut WebRtcTransport, b: &mut Browser) -> Option<SrtpKeys> {
    super::peer::handshake(t, b)
}

fn check(t: &WebRtcTransport, nominate: bool) -> Vec<u8> {
    super::peer::check(t.credentials(), nominate)
}

#[test]
fn a_checked_browser_completes_dtls_and_both_sides_hold_mirrored_srtp_keys() {
    let mut t = WebRtcTransport::new(ours());
    let mut b = Browser::new(browser_addr(), ours());
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
    let mut b = Browser::new(browser_addr(), ours());
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
    let mut b = Browser::new(browser_addr(), ours());
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
    let bad = super::peer::check_as(
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

#[test]
fn an_ice_restart_answers_the_old_credentials_until_the_new_ones_are_used_and_keeps_dtls() {
    let mut t = WebRtcTransport::new(ours());
    let mut b = Browser::new(browser_addr(), ours());
    t.receive(Instant::now(), browser_addr(), &check(&t, true));
    t.arm(Instant::now(), b.fingerprint).expect("armed");
    assert!(handshake(&mut t, &mut b).is_some());
    let old = t.credentials().clone();
    let fresh = t.restart_ice();
    assert_ne!(old, fresh, "a restart brings new credentials");
    assert_eq!(t.credentials(), &fresh);
    // Before the browser has the restart's offer, its consent checks (old
    // credentials) are still answered.
    let consent = super::peer::check(&old, false);
    let r = t.receive(Instant::now(), browser_addr(), &consent);
    assert_eq!(r.replies.len(), 1, "an old-credential check is answered");
    // From another address (its new network), with the new credentials.
    let moved: SocketAddr = "127.0.0.2:50002".parse().expect("addr");
    let r = t.receive(Instant::now(), moved, &super::peer::check(&fresh, true));
    assert_eq!(r.replies.len(), 1, "a new-credential check is answered");
    assert_eq!(t.remote(), Some(moved), "media follows the new nomination");
    // The old credentials are now retired.
    let r = t.receive(Instant::now(), browser_addr(), &consent);
    assert!(r.replies.is_empty(), "old credentials no more");
    // DTLS is not redone: media from the checked new address is media.
    let rtp = [0x80u8, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    let r = t.receive(Instant::now(), moved, &rtp);
    assert_eq!(r.media, Some(Class::Rtp));
}
