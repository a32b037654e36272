//! Fuzz target: every datagram reaching an SRTP leg's RTP or RTCP port goes
//! through `hotline::media::srtp::SecureLeg` (and `rtc-srtp`'s header
//! parsing and authentication) before anything else reads it. Whatever
//! arrives, it must never panic, and nothing unauthenticated is opened.
#![no_main]

use hotline::media::sdp::{CryptoSuite, MasterKey, SrtpKeys};
use hotline::media::srtp::{SecureLeg, Transformed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = |fill: u8| MasterKey::from_slice(&[fill; 30]).expect("30 octets");
    let leg = SecureLeg::default();
    leg.key(&SrtpKeys {
        suite: CryptoSuite::AesCm128HmacSha1_80,
        local: key(1),
        remote: key(2),
    })
    .expect("keyed");
    // Random bytes never authenticate (an 80-bit tag).
    assert!(!matches!(leg.incoming_rtp(data), Transformed::Secure(_)));
    assert!(!matches!(leg.incoming_rtcp(data), Transformed::Secure(_)));
    // Our own sending side takes any RTP-looking input without panicking.
    let _ = leg.outgoing_rtp(data);
    let _ = leg.outgoing_rtcp(data);
});
