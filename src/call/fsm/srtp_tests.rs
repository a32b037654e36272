//! SRTP legs in the connected call (RFC 4568 §7.1.4): a phone that rekeys
//! in a re-INVITE is decrypted with its new key from then on, our key
//! stays the same in every answer and re-offer, and a plain re-offer on a
//! leg settled on SRTP is refused.

use super::kit::*;
use super::*;
use crate::media::sdp::{self, CryptoSuite, Direction, MasterKey, Sdes, SessionDescription};

fn key(fill: u8) -> MasterKey {
    MasterKey::from_slice(&[fill; 30]).expect("30 octets")
}

/// An SRTP call: both sides settled on SRTP with our keys 1 (A) and 2 (B).
fn srtp_call() -> Call {
    Call::with(|s| {
        s.a_local.sdes = Sdes::required(key(1));
        s.b_local.sdes = Sdes::required(key(2));
    })
}

/// A phone's offer from `addr` carrying its key `fill` (best effort on
/// RTP/AVP, as baresip's `srtp` mode sends it).
fn keyed_offer(addr: &str, fill: u8, version: u64) -> String {
    let mut text = phone_sdp(addr, Direction::SendRecv, version);
    text.push_str(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
        base64_of(fill)
    ));
    text
}

fn base64_of(fill: u8) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([fill; 30])
}

/// The agent phone's answer to our re-offer, with its key `fill`.
fn keyed_answer(offer: &[u8], fill: u8) -> Vec<u8> {
    let offer = SessionDescription::parse(&String::from_utf8_lossy(offer)).expect("our offer");
    let mut local = media_at(
        AGENT_RTP.parse().expect("address"),
        99,
        2,
        vec![crate::media::sdp::AudioCodec::Pcma],
        Direction::SendRecv,
    );
    local.sdes = Sdes::accepting(key(fill));
    let (answer, _) = sdp::negotiate_answer(&offer, &local).expect("answerable");
    answer.to_string().into_bytes()
}

fn keys_set(out: &[Output]) -> Vec<(Side, MasterKey, MasterKey)> {
    media(out)
        .into_iter()
        .filter_map(|m| match m {
            Media::SetKeys { side, keys } => Some((side, keys.local, keys.remote)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_caller_that_rekeys_in_its_reinvite_is_decrypted_with_the_new_key() {
    let mut call = srtp_call();
    let (tx, out) = call.reoffer(Side::A, &keyed_offer(CARRIER_RTP, 7, 2));
    let (req, forward) = reinvite_on(&out, Side::B);
    assert!(
        String::from_utf8_lossy(&forward).contains("RTP/SAVP"),
        "our re-offer to the agent keeps SRTP"
    );
    let out = call.input(Input::ReinviteDone {
        req,
        result: Ok((200, keyed_answer(&forward, 8))),
    });
    let (code, body) = response_to(&out, tx);
    assert_eq!(code, 200);
    let answer = String::from_utf8(body.expect("an answer")).expect("utf-8");
    assert!(
        answer.contains(&format!("inline:{}", base64_of(1))),
        "we answer with our same key: {answer}"
    );
    assert_eq!(
        keys_set(&out),
        vec![(Side::B, key(2), key(8)), (Side::A, key(1), key(7))],
        "both legs use the keys their latest offer/answer settled"
    );
}

#[test]
fn the_agent_holding_with_a_new_key_is_decrypted_with_it() {
    let mut call = srtp_call();
    let mut hold = phone_sdp(AGENT_RTP, Direction::SendOnly, 2);
    hold.push_str(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n",
        base64_of(9)
    ));
    let (tx, out) = call.reoffer(Side::B, &hold);
    assert_eq!(response_to(&out, tx).0, 200);
    let set: Vec<_> = media(&out)
        .into_iter()
        .filter_map(|m| match m {
            Media::SetKeys { side, keys } => Some((side, keys.suite, keys.remote)),
            _ => None,
        })
        .collect();
    assert_eq!(
        set,
        vec![(Side::B, CryptoSuite::AesCm128HmacSha1_32, key(9))]
    );
}

#[test]
fn a_plain_reoffer_on_an_srtp_leg_is_refused() {
    let mut call = srtp_call();
    let plain = phone_sdp(CARRIER_RTP, Direction::SendRecv, 2);
    let (tx, out) = call.reoffer(Side::A, &plain);
    let (req, forward) = reinvite_on(&out, Side::B);
    let out = call.input(Input::ReinviteDone {
        req,
        result: Ok((200, keyed_answer(&forward, 2))),
    });
    assert_eq!(
        response_to(&out, tx).0,
        488,
        "never a plain answer over SRTP"
    );
    assert!(keys_set(&out).iter().all(|(side, ..)| *side == Side::B));
}
