//! Fuzz target: the RFC 4733 event parser, the RFC 4733 receiver fed an
//! arbitrary packet sequence, the SIP INFO body parsers and the in-band
//! Goertzel detector fed arbitrary samples must never panic, and the
//! receiver never reports more presses than it was given packets.
#![no_main]

use std::time::Duration;

use hotline::media::dtmf::{
    parse_info_body, DtmfCombiner, DtmfDetector, DtmfPath, Rfc4733Receiver, TelephoneEvent,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = TelephoneEvent::parse(data);

    // The input as a sequence of 8-byte records: 2 bytes of time step (ms),
    // 1 byte of flags (marker; timestamp step), 1 byte of timestamp step,
    // 4 bytes of event payload.
    let mut rx = Rfc4733Receiver::new(8000);
    let mut combiner = DtmfCombiner::new();
    let mut now = Duration::ZERO;
    let mut timestamp = 0u32;
    let mut packets = 0usize;
    let mut reported = 0usize;
    for rec in data.chunks(8) {
        let step = rec.first().copied().unwrap_or(0);
        now += Duration::from_millis(u64::from(step));
        let flags = rec.get(2).copied().unwrap_or(0);
        let ts_step = u32::from(rec.get(3).copied().unwrap_or(0));
        timestamp = if flags & 2 != 0 {
            timestamp.wrapping_sub(ts_step * 160)
        } else {
            timestamp.wrapping_add(ts_step * 160)
        };
        let payload = rec.get(4..).unwrap_or(&[]);
        packets += 1;
        if let Ok(digits) = rx.on_packet(now, timestamp, flags & 1 != 0, payload) {
            for d in digits {
                reported += 1;
                let _ = combiner.push(now, DtmfPath::Rfc4733, d.key, d.onset);
            }
        }
        if let Some(d) = rx.poll(now) {
            reported += 1;
            let _ = combiner.push(now, DtmfPath::Rfc4733, d.key, d.onset);
        }
    }
    assert!(reported <= packets);

    let text = String::from_utf8_lossy(data);
    let _ = parse_info_body("application/dtmf-relay", &text);
    let _ = parse_info_body("application/dtmf", &text);

    // The bytes as 16-bit little-endian PCM, in frames of varying size.
    let samples: Vec<i16> = data
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let mut detector = DtmfDetector::new();
    let frame = 1 + usize::from(data.first().copied().unwrap_or(159));
    for (i, chunk) in samples.chunks(frame).enumerate() {
        let at = Duration::from_millis(20 * i as u64);
        for d in detector.process(at, chunk) {
            let _ = combiner.push(at, DtmfPath::InBand, d.key, d.onset);
        }
    }
});
