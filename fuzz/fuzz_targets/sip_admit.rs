//! Fuzz target: the SIP ingress admission (`hotline::sip::admit`), which
//! reads every received datagram and TCP frame before any parser. Checking
//! a message and building the refusal for it must never panic, and every
//! refusal must be a `SIP/2.0` status line ending in an empty body.
#![no_main]

use hotline::sip::admit::{check, reply, Policy, Verdict, ALLOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = Policy {
        allow: ALLOW,
        supported: &[],
    };
    if let Verdict::Refuse(r) = check(data, &policy) {
        let answer = reply(data, &r, "hotline-fuzz");
        assert!(answer.starts_with(b"SIP/2.0 "));
        assert!(answer.ends_with(b"Content-Length: 0\r\n\r\n"));
    }
});
