//! SDES (RFC 4568) in offer/answer: which `a=crypto` lines are used, what
//! the answer carries, and every way SRTP negotiation refuses.

use std::net::{IpAddr, Ipv4Addr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::*;

fn key(fill: u8) -> MasterKey {
    MasterKey::from_slice(&[fill; 46]).expect("46 octets")
}

fn local(sdes: Sdes) -> LocalMedia {
    LocalMedia {
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        port: 30000,
        session_id: 42,
        session_version: 1,
        codecs: vec![AudioCodec::Pcma, AudioCodec::Pcmu],
        telephone_event: true,
        direction: Direction::SendRecv,
        sdes,
    }
}

/// `inline:` text for `n` octets of `fill`.
fn inline(fill: u8, n: usize) -> String {
    STANDARD.encode(vec![fill; n])
}

fn offer(proto: &str, crypto: &[String]) -> SessionDescription {
    let mut text = format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
         m=audio 4000 {proto} 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    );
    for line in crypto {
        text.push_str(&format!("a={line}\r\n"));
    }
    SessionDescription::parse(&text).expect("offer parses")
}

fn crypto_of(sdp: &SessionDescription) -> Vec<String> {
    sdp.audio()
        .expect("audio")
        .other_attributes
        .iter()
        .filter(|a| a.starts_with("crypto:"))
        .cloned()
        .collect()
}

#[test]
fn an_savp_offer_is_answered_with_its_tag_and_suite_and_our_key() {
    let o = offer(
        "RTP/SAVP",
        &[
            format!(
                "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}|2^31",
                inline(7, 30)
            ),
            format!("crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}", inline(8, 30)),
        ],
    );
    let (answer, neg) = negotiate_answer(&o, &local(Sdes::accepting(key(1)))).expect("answer");
    assert_eq!(answer.audio().expect("audio").proto, "RTP/SAVP");
    assert_eq!(
        crypto_of(&answer),
        vec![format!(
            "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}",
            inline(1, 30)
        )]
    );
    let keys = neg.srtp.expect("SRTP keys");
    assert_eq!(keys.suite, CryptoSuite::AesCm128HmacSha1_80);
    assert_eq!(keys.remote, MasterKey::from_slice(&[7; 30]).expect("key"));
    assert_eq!(keys.local, MasterKey::from_slice(&[1; 30]).expect("key"));
    // Secrets never reach a log.
    assert!(!format!("{keys:?}").contains("7, 7"), "{keys:?}");
    assert!(format!("{keys:?}").contains("redacted"));
}

#[test]
fn unusable_lines_are_skipped_for_the_first_usable_one() {
    let o = offer(
        "RTP/SAVP",
        &[
            format!("crypto:1 AEAD_AES_128_GCM inline:{}", inline(1, 28)),
            format!(
                "crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{}|2^20|1:4",
                inline(2, 30)
            ),
            format!(
                "crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{} UNENCRYPTED_SRTP",
                inline(3, 30)
            ),
            format!("crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{}", inline(4, 29)),
            format!("crypto:5 AES_256_CM_HMAC_SHA1_32 inline:{}", inline(5, 46)),
        ],
    );
    let (answer, neg) = negotiate_answer(&o, &local(Sdes::accepting(key(9)))).expect("answer");
    assert_eq!(
        crypto_of(&answer),
        vec![format!(
            "crypto:5 AES_256_CM_HMAC_SHA1_32 inline:{}",
            inline(9, 46)
        )]
    );
    assert_eq!(
        neg.srtp.expect("keys").suite,
        CryptoSuite::AesCm256HmacSha1_32
    );
}

#[test]
fn savp_without_a_usable_line_or_without_our_key_is_488() {
    let gcm = offer(
        "RTP/SAVP",
        &[format!(
            "crypto:1 AEAD_AES_128_GCM inline:{}",
            inline(1, 28)
        )],
    );
    let err = negotiate_answer(&gcm, &local(Sdes::accepting(key(1)))).unwrap_err();
    assert!(
        matches!(err, NegotiationError::NoUsableCrypto { .. }),
        "{err}"
    );
    assert_eq!(err.sip_status(), 488);
    let good = offer(
        "RTP/SAVP",
        &[format!(
            "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}",
            inline(1, 30)
        )],
    );
    let err = negotiate_answer(&good, &local(Sdes::OFF)).unwrap_err();
    assert!(
        matches!(err, NegotiationError::NoUsableCrypto { .. }),
        "{err}"
    );
}

#[test]
fn best_effort_crypto_on_avp_is_taken_when_we_can_and_ignored_when_we_cannot() {
    let o = offer(
        "RTP/AVP",
        &[format!(
            "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}",
            inline(1, 30)
        )],
    );
    let (answer, neg) = negotiate_answer(&o, &local(Sdes::accepting(key(2)))).expect("answer");
    assert_eq!(answer.audio().expect("audio").proto, "RTP/AVP");
    assert_eq!(crypto_of(&answer).len(), 1);
    assert!(neg.srtp.is_some());
    let (answer, neg) = negotiate_answer(&o, &local(Sdes::OFF)).expect("plain answer");
    assert!(crypto_of(&answer).is_empty());
    assert!(neg.srtp.is_none());
}

#[test]
fn a_plain_offer_is_refused_only_when_we_require_srtp() {
    let o = offer("RTP/AVP", &[]);
    let (_, neg) = negotiate_answer(&o, &local(Sdes::optional(key(1)))).expect("plain");
    assert!(neg.srtp.is_none());
    let err = negotiate_answer(&o, &local(Sdes::required(key(1)))).unwrap_err();
    assert_eq!(
        err,
        NegotiationError::SrtpRequired {
            proto: "RTP/AVP".into()
        }
    );
}

#[test]
fn our_offers_follow_the_stance() {
    assert!(crypto_of(&build_offer(&local(Sdes::OFF))).is_empty());
    assert!(crypto_of(&build_offer(&local(Sdes::accepting(key(1))))).is_empty());
    let optional = build_offer(&local(Sdes::optional(key(1))));
    assert_eq!(optional.audio().expect("audio").proto, "RTP/AVP");
    assert_eq!(
        crypto_of(&optional),
        vec![format!(
            "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}",
            inline(1, 30)
        )]
    );
    let required = build_offer(&local(Sdes::required(key(1))));
    assert_eq!(required.audio().expect("audio").proto, "RTP/SAVP");
    assert_eq!(crypto_of(&required).len(), 1);
    // The printed line parses back to the same key.
    let line = parse_crypto(&crypto_of(&required)[0]).expect("parses");
    assert_eq!(line.key, MasterKey::from_slice(&[1; 30]).expect("key"));
}

fn answer_to(our_offer: &SessionDescription, proto: &str, crypto: &[String]) -> SessionDescription {
    let mut a = offer(proto, crypto);
    a.media[0].port = our_offer.media[0].port;
    a
}

#[test]
fn the_answer_to_our_offer_gives_both_keys_or_is_refused() {
    let ours = build_offer(&local(Sdes::required(key(1))));
    let good = answer_to(
        &ours,
        "RTP/SAVP",
        &[format!(
            "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}",
            inline(6, 30)
        )],
    );
    let keys = read_answer(&ours, &good)
        .expect("answer")
        .srtp
        .expect("keys");
    assert_eq!(keys.local, MasterKey::from_slice(&[1; 30]).expect("key"));
    assert_eq!(keys.remote, MasterKey::from_slice(&[6; 30]).expect("key"));
    // A tag we did not offer, a plain answer to SAVP, a suite swapped.
    let wrong_tag = answer_to(
        &ours,
        "RTP/SAVP",
        &[format!(
            "crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{}",
            inline(6, 30)
        )],
    );
    assert_eq!(
        read_answer(&ours, &wrong_tag).unwrap_err(),
        NegotiationError::CryptoNotOffered { tag: 7 }
    );
    let plain = answer_to(&ours, "RTP/AVP", &[]);
    assert!(matches!(
        read_answer(&ours, &plain).unwrap_err(),
        NegotiationError::NoUsableCrypto { .. }
    ));
    let swapped = answer_to(
        &ours,
        "RTP/SAVP",
        &[format!(
            "crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{}",
            inline(6, 30)
        )],
    );
    assert!(read_answer(&ours, &swapped).is_err());
    // Best effort: a plain answer stays plain.
    let optional = build_offer(&local(Sdes::optional(key(1))));
    let plain = answer_to(&optional, "RTP/AVP", &[]);
    assert!(read_answer(&optional, &plain)
        .expect("plain")
        .srtp
        .is_none());
    // We offered plain: a secure answer is refused.
    let ours = build_offer(&local(Sdes::OFF));
    let secure = answer_to(
        &ours,
        "RTP/SAVP",
        &[format!(
            "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}",
            inline(6, 30)
        )],
    );
    assert!(read_answer(&ours, &secure).is_err());
}

#[test]
fn hostile_crypto_lines_never_parse_to_a_key() {
    for line in [
        "crypto:",
        "crypto:1",
        "crypto:1 AES_CM_128_HMAC_SHA1_80",
        "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:",
        "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!!",
        "crypto:x AES_CM_128_HMAC_SHA1_80 inline:AAAA",
        "crypto:1234567890 AES_CM_128_HMAC_SHA1_80 inline:AAAA",
        "crypto:1 aes_cm_128_hmac_sha1_80 inline:AAAA",
        "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA;inline:BBBB",
    ] {
        assert_eq!(parse_crypto(line), None, "{line}");
    }
    let long = format!(
        "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}",
        inline(1, 4000)
    );
    assert_eq!(parse_crypto(&long), None);
}
