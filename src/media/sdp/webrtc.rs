//! The SDP of a browser's leg (JSEP, RFC 8829; RFC 8839 ICE attributes;
//! RFC 8842 DTLS attributes; RFC 5761 `rtcp-mux`): our offer is the plain
//! offer every phone gets, turned into what a browser accepts —
//! `UDP/TLS/RTP/SAVPF`, `a=ice-lite` with our one host candidate and ICE
//! credentials, our certificate's `a=fingerprint`, `a=setup:actpass`,
//! `a=mid`, `a=rtcp-mux` and no SDES keys (RFC 8827 §6.5: WebRTC is keyed
//! by DTLS only). The browser's answer is read by
//! [`super::read_answer`] like any other, with [`answered_dtls`] for its
//! fingerprint and role.

use super::model::{Direction, MediaDescription, SessionDescription};
use super::NegotiationError;
use crate::media::webrtc::{Fingerprint, IceCredentials};

/// The transport of every WebRTC media section.
pub const WEBRTC_PROTO: &str = "UDP/TLS/RTP/SAVPF";

/// `plain` (an offer of ours) as a browser's offer with `ice` and our
/// certificate's `fingerprint`.
pub fn webrtc_offer(
    plain: &SessionDescription,
    ice: &IceCredentials,
    fingerprint: Fingerprint,
) -> SessionDescription {
    let mut offer = plain.clone();
    offer.other_attributes.retain(|a| !is_ours_to_write(a));
    offer.other_attributes.push("ice-lite".into());
    offer.other_attributes.push("group:BUNDLE 0".into());
    let address = plain.connection;
    let mut first_audio = true;
    for m in &mut offer.media {
        if !m.is_audio() || m.port == 0 || !first_audio {
            m.port = 0; // one audio section: nothing else is bundled
            continue;
        }
        first_audio = false;
        m.proto = WEBRTC_PROTO.into();
        m.rtcp_port = None;
        m.other_attributes
            .retain(|a| !a.starts_with("crypto:") && !is_ours_to_write(a));
        let address = m.connection.or(address);
        let attributes = [
            "mid:0".to_string(),
            format!("ice-ufrag:{}", ice.ufrag),
            format!("ice-pwd:{}", ice.pwd),
            format!("fingerprint:{fingerprint}"),
            "setup:actpass".into(),
            "rtcp-mux".into(),
        ];
        m.other_attributes.extend(attributes);
        if let Some(ip) = address {
            // RFC 8839 §5.1: foundation, component 1 (RTP), UDP, the
            // host-type priority, our media address and port.
            m.other_attributes.push(format!(
                "candidate:1 1 udp 2130706431 {ip} {} typ host",
                m.port
            ));
        }
        m.other_attributes.push("end-of-candidates".into());
        if m.direction.is_none() {
            m.direction = Some(Direction::SendRecv);
        }
    }
    offer
}

/// Attributes [`webrtc_offer`] writes itself (any copy in the plain offer
/// goes).
fn is_ours_to_write(attribute: &str) -> bool {
    const OURS: [&str; 9] = [
        "ice-lite",
        "group:",
        "mid:",
        "ice-ufrag:",
        "ice-pwd:",
        "fingerprint:",
        "setup:",
        "rtcp-mux",
        "candidate:",
    ];
    OURS.iter().any(|p| attribute.starts_with(p)) || attribute == "end-of-candidates"
}

/// The value of attribute `name` in the media section, else at session
/// level.
fn attribute<'a>(
    session: &'a SessionDescription,
    media: &'a MediaDescription,
    name: &str,
) -> Option<&'a str> {
    let find = |attributes: &'a [String]| {
        attributes.iter().find_map(|a| {
            a.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(':'))
                .map(str::trim)
        })
    };
    find(&media.other_attributes).or_else(|| find(&session.other_attributes))
}

/// A browser's answer: its certificate's fingerprint, when the answer is
/// DTLS-SRTP (its transport names TLS, or it carries a fingerprint);
/// `None` for any other answer. The browser must take the DTLS client
/// role (`a=setup:active`, the default when absent, RFC 8842 §5.3): we
/// offered `actpass` and serve only.
pub fn answered_dtls(
    answer: &SessionDescription,
    answered: &MediaDescription,
) -> Result<Option<Fingerprint>, NegotiationError> {
    let fingerprint = attribute(answer, answered, "fingerprint");
    let tls = answered.proto.to_ascii_uppercase().contains("TLS");
    if fingerprint.is_none() && !tls {
        return Ok(None);
    }
    let fingerprint = fingerprint
        .and_then(Fingerprint::parse)
        .ok_or(NegotiationError::NoFingerprint)?;
    match attribute(answer, answered, "setup") {
        None => {}
        Some(role) if role.eq_ignore_ascii_case("active") => {}
        Some(role) => {
            return Err(NegotiationError::DtlsRole {
                setup: role.to_string(),
            })
        }
    }
    Ok(Some(fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::sdp::{build_offer, read_answer, AudioCodec, LocalMedia, Sdes};

    fn plain() -> SessionDescription {
        build_offer(&LocalMedia {
            address: "127.0.0.1".parse().expect("ip"),
            port: 30002,
            session_id: 1,
            session_version: 1,
            codecs: vec![AudioCodec::Pcma, AudioCodec::Pcmu],
            telephone_event: true,
            direction: Direction::SendRecv,
            sdes: Sdes::default(),
        })
    }

    fn ice() -> IceCredentials {
        IceCredentials {
            ufrag: "abcd1234".into(),
            pwd: "0123456789abcdefghijklmn".into(),
        }
    }

    /// What Chromium answers to our offer (trimmed of nothing we read).
    const CHROME_ANSWER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic: WMS stream\r\nm=audio 9 UDP/TLS/RTP/SAVPF 8 0 101\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Ab12\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\na=fingerprint:sha-256 0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F:0F\r\na=setup:active\r\na=mid:0\r\na=sendrecv\r\na=msid:stream track\r\na=rtcp-mux\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ssrc:1001 cname:x\r\n";

    #[test]
    fn the_offer_is_what_a_browser_takes() {
        let offer = webrtc_offer(&plain(), &ice(), Fingerprint([0xab; 32])).to_string();
        for line in [
            "m=audio 30002 UDP/TLS/RTP/SAVPF 8 0 101",
            "a=ice-lite",
            "a=group:BUNDLE 0",
            "a=mid:0",
            "a=ice-ufrag:abcd1234",
            "a=ice-pwd:0123456789abcdefghijklmn",
            "a=fingerprint:sha-256 AB:AB:",
            "a=setup:actpass",
            "a=rtcp-mux",
            "a=candidate:1 1 udp 2130706431 127.0.0.1 30002 typ host",
            "a=end-of-candidates",
            "a=sendrecv",
        ] {
            assert!(offer.contains(line), "{line} missing in\n{offer}");
        }
        assert!(!offer.contains("a=crypto"), "{offer}");
        // Idempotent: a second pass writes each attribute once.
        let again = webrtc_offer(
            &SessionDescription::parse(&offer).expect("parses"),
            &ice(),
            Fingerprint([0xab; 32]),
        )
        .to_string();
        assert_eq!(again.matches("a=ice-lite").count(), 1, "{again}");
        assert_eq!(again.matches("a=candidate").count(), 1, "{again}");
    }

    #[test]
    fn a_browsers_answer_negotiates_its_fingerprint_and_is_not_a_hold() {
        let answer = SessionDescription::parse(CHROME_ANSWER).expect("parses");
        let n = read_answer(&plain(), &answer).expect("negotiated");
        assert_eq!(n.dtls, Some(Fingerprint([0x0f; 32])));
        assert_eq!(n.codec, AudioCodec::Pcma);
        assert_eq!(n.telephone_event, Some(101));
        assert_eq!(n.srtp, None, "keys come from DTLS");
        assert_eq!(
            n.direction,
            Direction::SendRecv,
            "c=0.0.0.0 is no hold here"
        );
    }

    #[test]
    fn a_browser_that_wants_to_be_the_dtls_server_or_hides_its_fingerprint_is_refused() {
        let passive = CHROME_ANSWER.replace("a=setup:active", "a=setup:passive");
        let answer = SessionDescription::parse(&passive).expect("parses");
        assert!(matches!(
            read_answer(&plain(), &answer),
            Err(NegotiationError::DtlsRole { .. })
        ));
        let bare: String = CHROME_ANSWER
            .lines()
            .filter(|l| !l.starts_with("a=fingerprint"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let answer = SessionDescription::parse(&bare).expect("parses");
        assert!(matches!(
            read_answer(&plain(), &answer),
            Err(NegotiationError::NoFingerprint)
        ));
    }
}
