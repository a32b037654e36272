//! Fuzz target: SDP parsing and offer/answer negotiation (SDES `a=crypto`
//! lines included) must never panic, and printing a parsed SDP must give
//! SDP that parses back to the same value.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use hotline::media::sdp::{
    build_offer, negotiate_answer, read_answer, AudioCodec, Direction, LocalMedia, MasterKey,
    Sdes, SessionDescription,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(offer) = SessionDescription::parse(&text) {
        let _ = offer.audio_endpoint();
        let _ = offer.is_hold();
        let _ = offer.audio_direction();
        // Printing must produce SDP we can parse back to the same value.
        let printed = offer.to_string();
        let reparsed = SessionDescription::parse(&printed).expect("printed SDP must parse");
        assert_eq!(reparsed, offer);

        let local = LocalMedia {
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 30000,
            session_id: 1,
            session_version: 1,
            codecs: vec![AudioCodec::Pcma, AudioCodec::Pcmu],
            telephone_event: true,
            direction: Direction::SendRecv,
            // SDES on: the input's a=crypto lines are read and answered.
            sdes: Sdes::optional(MasterKey::from_slice(&[7; 46]).expect("46 octets")),
        };
        if let Ok((answer, _negotiated)) = negotiate_answer(&offer, &local) {
            let answer_text = answer.to_string();
            let answer = SessionDescription::parse(&answer_text).expect("answer must parse");
            let _ = read_answer(&offer, &answer);
        }
        // The parsed SDP as an answer to an offer we built (outbound leg).
        let _ = read_answer(&build_offer(&local), &offer);
    }
});
