//! The browser phone's protocol against the call's side of it: what the
//! page is sent, what the call's channel hears.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::media::sdp::{build_offer, AudioCodec, Direction, LocalMedia, Sdes, SessionDescription};
use crate::media::webrtc::{Fingerprint, IceCredentials};
use crate::sip::stack::{LegEnd, StackConfig};
use crate::sip::{Leg, LegEvent, LegEvents, SipStack};

async fn stack() -> SipStack {
    let (stack, _incoming) = SipStack::start(&StackConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        udp: true,
        tcp: false,
        user_agent: "hotline-test".into(),
        udp_buffer_bytes: 0,
        journal: None,
        flood: crate::sip::flood::FloodPolicy::off(),
        tcp_max_per_source: 16,
        tls: None,
    })
    .await
    .expect("SIP stack");
    stack
}

fn web_offer() -> Vec<u8> {
    let plain = build_offer(&LocalMedia {
        address: "127.0.0.1".parse().expect("ip"),
        port: 30002,
        session_id: 1,
        session_version: 1,
        codecs: vec![AudioCodec::Pcma],
        telephone_event: true,
        direction: Direction::SendRecv,
        sdes: Sdes::default(),
    });
    let ice = IceCredentials::random();
    crate::media::sdp::webrtc::webrtc_offer(&plain, &ice, Fingerprint([1; 32]))
        .to_string()
        .into_bytes()
}

fn invite(target: &str) -> OutboundInvite {
    OutboundInvite {
        target: target.to_string(),
        destination: None,
        tcp: false,
        from_user: "+8613800000000".into(),
        from_display: None,
        sdp: web_offer(),
        headers: vec![("Call-Info".into(), "<sip:127.0.0.1>;answer-after=0".into())],
        credential: None,
        direct: true,
        route: vec![],
    }
}

async fn next(line: &mut PhoneLine) -> Value {
    tokio::time::timeout(Duration::from_secs(5), line.to_page.recv())
        .await
        .expect("a message for the page")
        .expect("the line is open")
}

async fn event(events: &mut LegEvents) -> LegEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event")
        .expect("the channel is open")
        .1
}

/// A registered page and a leg ringing it.
async fn ringing(
    phones: &Arc<WebPhones>,
    stack: &SipStack,
) -> (PhoneLine, OutboundLeg, LegEvents, String) {
    let mut line = phones.register("1001", &[]).expect("registered");
    assert_eq!(next(&mut line).await["type"], "phone.registered");
    let contact = phones
        .contacts("1001")
        .into_iter()
        .find(|c| phone_of(&c.uri) == Some(line.id()))
        .expect("the page is a contact of its phone");
    assert_eq!(phone_of(&contact.uri), Some(line.id()));
    let (tx, events) = stack.leg_channel();
    let leg = dial(stack, phones, invite(&contact.uri), &tx).expect("rung");
    let offer = next(&mut line).await;
    assert_eq!(offer["type"], "phone.offer");
    assert_eq!(offer["caller"], "+8613800000000");
    assert_eq!(offer["auto_answer"], true);
    assert!(offer["sdp"].as_str().unwrap_or("").contains("a=ice-lite"));
    let key = offer["leg"].as_str().expect("leg").to_string();
    assert_eq!(&leg.key().0, &key);
    (line, leg, events, key)
}

#[tokio::test]
async fn a_page_rings_answers_takes_a_reoffer_and_hangs_up_as_a_phone_would() {
    let stack = stack().await;
    let phones = WebPhones::new(DEFAULT_GRACE);
    let (mut line, leg, mut events, key) = ringing(&phones, &stack).await;
    line.on_page_message(&json!({"type": "phone.ringing", "leg": key}))
        .expect("ringing");
    assert!(matches!(
        event(&mut events).await,
        LegEvent::Progress { code: 180, .. }
    ));
    line.on_page_message(&json!({"type": "phone.answer", "leg": key, "sdp": "v=0 answer"}))
        .expect("answer");
    match event(&mut events).await {
        LegEvent::Final { code: 200, sdp } => assert_eq!(sdp.as_deref(), Some(&b"v=0 answer"[..])),
        other => panic!("{other:?}"),
    }
    // A hold: the re-offer goes to the page as WebRTC, its answer back.
    let plain = build_offer(&LocalMedia {
        address: "127.0.0.1".parse().expect("ip"),
        port: 30002,
        session_id: 1,
        session_version: 2,
        codecs: vec![AudioCodec::Pcma],
        telephone_event: false,
        direction: Direction::SendOnly,
        sdes: Sdes::default(),
    });
    let reoffer = tokio::spawn(leg.requests().reinvite(plain.to_string().into_bytes()));
    let update = next(&mut line).await;
    assert_eq!(update["type"], "phone.update");
    let sdp = update["sdp"].as_str().expect("sdp");
    assert!(
        sdp.contains("a=sendonly") && sdp.contains("a=fingerprint:sha-256"),
        "{sdp}"
    );
    line.on_page_message(&json!({"type": "phone.updated", "leg": key, "sdp": "v=0 held"}))
        .expect("updated");
    let (code, answer) = reoffer.await.expect("joined").expect("answered");
    assert_eq!((code, &answer[..]), (200, &b"v=0 held"[..]));
    assert_eq!(leg.refresh().await.expect("refresh"), 200);
    line.on_page_message(&json!({"type": "phone.hangup", "leg": key}))
        .expect("hang up");
    assert!(matches!(
        event(&mut events).await,
        LegEvent::Ended(LegEnd::RemoteBye)
    ));
    assert_eq!(leg.refresh().await.expect("refresh"), 481);
    // The leg is gone: the page cannot act on it again.
    assert_eq!(
        line.on_page_message(&json!({"type": "phone.hangup", "leg": key})),
        Err(PageError::NoSuchLeg(key))
    );
}

#[tokio::test]
async fn the_call_cancelling_or_ending_tells_the_page() {
    let stack = stack().await;
    let phones = WebPhones::new(DEFAULT_GRACE);
    let (mut line, leg, _events, key) = ringing(&phones, &stack).await;
    leg.hang_up().await;
    let cancel = next(&mut line).await;
    assert_eq!(
        (cancel["type"].as_str(), cancel["leg"].as_str()),
        (Some("phone.cancel"), Some(key.as_str()))
    );
    let (_line2, leg, mut events, key) = ringing(&phones, &stack).await;
    drop(_line2);
    // Its page gone while ringing: the offer failed as unreachable.
    assert!(matches!(
        event(&mut events).await,
        LegEvent::Final { code: 480, .. }
    ));
    drop(leg);
    assert!(!key.is_empty());
}

#[tokio::test]
async fn a_rejected_offer_is_busy_or_declined() {
    let stack = stack().await;
    let phones = WebPhones::new(DEFAULT_GRACE);
    let (line, _leg, mut events, key) = ringing(&phones, &stack).await;
    line.on_page_message(&json!({"type": "phone.reject", "leg": key, "code": 486}))
        .expect("reject");
    assert!(matches!(
        event(&mut events).await,
        LegEvent::Final { code: 486, .. }
    ));
}

/// The page answers `key`; the call hears the 200.
async fn answer(line: &PhoneLine, key: &str, events: &mut LegEvents) {
    line.on_page_message(&json!({"type": "phone.answer", "leg": key, "sdp": "v=0"}))
        .expect("answer");
    assert!(matches!(
        event(events).await,
        LegEvent::Final { code: 200, .. }
    ));
}

#[tokio::test]
async fn an_answered_call_waits_for_its_page_to_come_back_then_ends() {
    let stack = stack().await;
    let phones = WebPhones::new(Duration::from_millis(300));
    let (line, leg, mut events, key) = ringing(&phones, &stack).await;
    answer(&line, &key, &mut events).await;
    drop(line);
    // Back within the grace, naming its leg: the call is its again.
    let mut back = phones
        .register("1001", std::slice::from_ref(&key))
        .expect("registered");
    assert_eq!(next(&mut back).await["type"], "phone.registered");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        leg.refresh().await.expect("refresh"),
        200,
        "resumed, not ended"
    );
    leg.hang_up().await;
    assert_eq!(next(&mut back).await["type"], "phone.bye");
    // Gone for good this time: the call ends after the grace.
    let (line, _leg, mut events, key) = ringing(&phones, &stack).await;
    answer(&line, &key, &mut events).await;
    drop(line);
    assert!(matches!(
        event(&mut events).await,
        LegEvent::Ended(LegEnd::Timeout)
    ));
}

#[tokio::test]
async fn a_page_acts_only_on_its_own_legs_and_malformed_messages_are_refused() {
    let stack = stack().await;
    let phones = WebPhones::new(DEFAULT_GRACE);
    let (_line, _leg, _events, key) = ringing(&phones, &stack).await;
    let other = phones.register("1002", &[]).expect("registered");
    assert_eq!(
        other.on_page_message(&json!({"type": "phone.answer", "leg": key, "sdp": "v=0"})),
        Err(PageError::NoSuchLeg(key.clone()))
    );
    // Another phone user's page cannot resume it either.
    let _thief = phones
        .register("1002", std::slice::from_ref(&key))
        .expect("registered");
    assert!(matches!(
        _line.on_page_message(&json!({"type": "phone.answer", "leg": key})),
        Err(PageError::Malformed(_))
    ));
    assert!(matches!(
        _line.on_page_message(&json!({"type": "phone.dance", "leg": key})),
        Err(PageError::Malformed(_))
    ));
    assert!(matches!(
        _line.on_page_message(&json!({"type": "phone.updated", "leg": key, "sdp": "v=0"})),
        Err(PageError::Malformed(_))
    ));
    assert!(matches!(
        _line.on_page_message(&json!({"type": "phone.answer"})),
        Err(PageError::Malformed(_))
    ));
    assert_eq!(phone_of("sip:1001@127.0.0.1"), None);
    assert_eq!(phone_of("webrtc:1001;phone=x"), None);
}

/// The `a=ice-ufrag` and `o=` version of an offer the page got.
fn ufrag_and_version(sdp: &str) -> (String, u64) {
    let parsed = SessionDescription::parse(sdp).expect("an offer");
    let ufrag = sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("ice-ufrag")
        .to_string();
    (ufrag, parsed.session_version)
}

#[tokio::test]
async fn a_page_that_lost_its_media_path_gets_an_ice_restart_with_new_credentials() {
    let stack = stack().await;
    let phones = WebPhones::new(DEFAULT_GRACE);
    let (mut line, leg, mut events, key) = ringing(&phones, &stack).await;
    answer(&line, &key, &mut events).await;
    // Without the leg's transport (its ports gone), nothing to restart.
    assert!(matches!(
        line.on_page_message(&json!({"type": "phone.restart", "leg": key})),
        Err(PageError::Malformed(_))
    ));
    // The offer's transport, as its ports would have made it.
    let first = web_offer();
    let (first_ufrag, first_version) = ufrag_and_version(&String::from_utf8_lossy(&first));
    drop(leg);
    let transport = std::sync::Arc::new(std::sync::Mutex::new(
        crate::media::webrtc::WebRtcTransport::new("127.0.0.1:30002".parse().expect("addr")),
    ));
    let ours = transport.lock().expect("lock").credentials().clone();
    crate::media::webrtc::restart::register(&ours.ufrag, &transport);
    let mut inv = invite(&phones.contacts("1001")[0].uri);
    inv.sdp = String::from_utf8_lossy(&first)
        .replace(&first_ufrag, &ours.ufrag)
        .into_bytes();
    let (tx, mut events) = stack.leg_channel();
    let leg = dial(&stack, &phones, inv, &tx).expect("rung");
    let mut offer = next(&mut line).await;
    if offer["type"] == "phone.bye" {
        offer = next(&mut line).await; // the first leg's end
    }
    assert_eq!(offer["type"], "phone.offer");
    let key = offer["leg"].as_str().expect("leg").to_string();
    answer(&line, &key, &mut events).await;

    line.on_page_message(&json!({"type": "phone.restart", "leg": key}))
        .expect("restart");
    let update = next(&mut line).await;
    assert_eq!(
        (&update["type"], &update["restart"]),
        (&json!("phone.update"), &json!(true))
    );
    let sdp = update["sdp"].as_str().expect("sdp");
    let (ufrag, version) = ufrag_and_version(sdp);
    assert_ne!(ufrag, ours.ufrag, "new credentials");
    assert_eq!(
        transport.lock().expect("lock").credentials().ufrag,
        ufrag,
        "the transport answers the new ones"
    );
    assert!(version > first_version, "a higher o= version");
    // One offer at a time: a second restart, or the call's own re-offer
    // meanwhile, waits.
    assert!(line
        .on_page_message(&json!({"type": "phone.restart", "leg": key}))
        .is_err());
    // The call's offers carry its own rising versions.
    let plain = build_offer(&LocalMedia {
        address: "127.0.0.1".parse().expect("ip"),
        port: 30002,
        session_id: 1,
        session_version: 2,
        codecs: vec![AudioCodec::Pcma],
        telephone_event: false,
        direction: Direction::SendOnly,
        sdes: Sdes::default(),
    })
    .to_string();
    let (code, _) = leg
        .requests()
        .reinvite(plain.clone().into_bytes())
        .await
        .expect("answered");
    assert_eq!(code, 491);
    line.on_page_message(&json!({"type": "phone.updated", "leg": key, "sdp": "v=0 restarted"}))
        .expect("updated");
    // The call's next re-offer carries the new credentials, its version
    // above the restart's.
    let reoffer = tokio::spawn(leg.requests().reinvite(plain.into_bytes()));
    let update = next(&mut line).await;
    let (ufrag2, version2) = ufrag_and_version(update["sdp"].as_str().expect("sdp"));
    assert_eq!(ufrag2, ufrag);
    assert!(version2 > version, "{version2} after {version}");
    assert!(update["restart"].is_null());
    line.on_page_message(&json!({"type": "phone.updated", "leg": key, "sdp": "v=0 again"}))
        .expect("updated");
    assert_eq!(reoffer.await.expect("joined").expect("answered").0, 200);
    crate::media::webrtc::restart::forget(&ours.ufrag);
}
