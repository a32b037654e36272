//! Fuzz target: parsing a SIP datagram with rsipstack's parser (the one the
//! stack uses on every UDP/TCP message) and reading it through hotline's
//! `Request` accessors must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hotline::sip::message::parse_for_inspection(data);
});
