//! The relay's recording side as a relay drives it (packets placed by RTP
//! timestamp, drains every 100 ms, the mix), into real files: an `alaw`
//! recording of an A-law call is the wire's bytes (issue 16 item 3), and
//! of any call is byte for byte the `pcm16` recording of it encoded (what
//! the decode → align → encode path wrote).

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::media::codec::{transcode_in_place, G711};
use crate::media::recorder::{recording_path_as, RecordingWriter, WriterOptions, CALL_WAV_SPEC};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn leg(law: G711) -> LegFormat {
    LegFormat {
        law,
        payload_type: match law {
            G711::Alaw => 8,
            G711::Ulaw => 0,
        },
        telephone_event: Some(101),
        srtp: None,
        dtls: None,
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80u8, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// 20 ms of payload: every byte value over a few packets, in no order
/// that is a codec's.
fn payload(side: usize, seq: usize) -> Vec<u8> {
    (0..160)
        .map(|i| ((i * 73 + seq * 29 + side * 101) % 256) as u8)
        .collect()
}

fn start(dir: &Path, format: RecordingFormat) -> CallRecording {
    let path = recording_path_as(dir, "t", (2026, 12, 6), format.name(), format);
    let options = WriterOptions {
        format,
        ..WriterOptions::default()
    };
    CallRecording::new(RecordingWriter::start_with(&path, CALL_WAV_SPEC, options).expect("start"))
}

/// One packet of `side` (0 the caller) at `arrival` since the relay
/// started.
fn push(r: &mut Recorder, side: usize, law: G711, seq: u16, arrival: Duration, bytes: &[u8]) {
    let channel = [Channel::Caller, Channel::Agent][side];
    let datagram = rtp(
        leg(law).payload_type,
        seq,
        1000 + u32::from(seq) * 160,
        [0x1111, 0x2222][side],
        bytes,
    );
    let header = RtpHeader::parse(&datagram).expect("rtp");
    r.push(channel, arrival, &header);
}

/// Ends the relay at `end` and the recording (no drain to the real clock):
/// the file's data bytes (after the header of `header_len`).
fn finish(r: Recorder, end: Duration, header_len: usize) -> Vec<u8> {
    let recording = r.give_back(end);
    let meta = recording.handle.finish().expect("finish");
    assert_eq!(meta.dropped_chunks, 0);
    let bytes = std::fs::read(&meta.path).expect("read");
    bytes[header_len..].to_vec()
}

#[test]
fn an_alaw_call_recorded_as_alaw_is_its_packets_payloads_interleaved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recording = start(dir.path(), RecordingFormat::Alaw);
    let started = recording.epoch;
    let mut r = Recorder::lend(recording, started, [leg(G711::Alaw); 2]);
    let mut expect = Vec::new();
    for seq in 0..100usize {
        let (caller, agent) = (payload(0, seq), payload(1, seq));
        let arrival = ms(20 * seq as u64);
        push(&mut r, 0, G711::Alaw, seq as u16, arrival, &caller);
        push(&mut r, 1, G711::Alaw, seq as u16, arrival, &agent);
        if seq % 5 == 4 {
            r.drain(arrival.saturating_sub(RECORD_DELAY));
        }
        for (c, a) in caller.iter().zip(&agent) {
            expect.extend_from_slice(&[*c, *a]);
        }
    }
    let data = finish(r, ms(2000), 46);
    assert_eq!(data.len(), 2 * 16_000, "2 s of stereo A-law");
    assert!(data == expect, "the WAV's data is the payloads interleaved");
}

/// A call with jitter (packets late and reordered), a lost packet, a
/// mixed stretch (supervision) and the legs' packets again after it,
/// recorded in `format`: the file's data.
fn eventful_call(dir: &Path, format: RecordingFormat, laws: [G711; 2]) -> Vec<u8> {
    let recording = start(dir, format);
    let started = recording.epoch;
    let mut r = Recorder::lend(recording, started, [leg(laws[0]), leg(laws[1])]);
    let mut seqs: Vec<usize> = (0..50).collect();
    seqs.swap(10, 11);
    seqs.swap(30, 32);
    seqs.retain(|&s| s != 20);
    for (step, &seq) in seqs.iter().enumerate() {
        let jitter = Duration::from_micros([0, 3000, 7000, 1000][step % 4]);
        let arrival = ms(20 * step as u64) + jitter;
        for (side, &law) in laws.iter().enumerate() {
            push(&mut r, side, law, seq as u16, arrival, &payload(side, seq));
        }
        if step % 5 == 4 {
            r.drain(arrival.saturating_sub(RECORD_DELAY));
        }
    }
    // One second of mix ticks, then the legs again (re-anchored).
    for tick in 0..50u64 {
        let at = ms(1000 + 20 * tick);
        let left: Frame = std::array::from_fn(|i| (i as i16 * 97 - 7000) ^ tick as i16);
        let right: Frame = std::array::from_fn(|i| 5000 - i as i16 * 61);
        r.push_mixed(at, (left, right));
        if tick % 5 == 4 {
            r.drain(at.saturating_sub(RECORD_DELAY));
        }
    }
    for seq in 50..75usize {
        let arrival = ms(2000 + 20 * (seq as u64 - 50));
        for (side, &law) in laws.iter().enumerate() {
            push(&mut r, side, law, seq as u16, arrival, &payload(side, seq));
        }
    }
    let header = match format {
        RecordingFormat::Alaw => 46,
        _ => 44,
    };
    finish(r, ms(2600), header)
}

#[test]
fn an_alaw_recording_is_the_pcm16_recording_of_the_same_call_encoded() {
    for laws in [
        [G711::Alaw, G711::Alaw],
        [G711::Ulaw, G711::Alaw],
        [G711::Alaw, G711::Ulaw],
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let alaw = eventful_call(dir.path(), RecordingFormat::Alaw, laws);
        let pcm16 = eventful_call(dir.path(), RecordingFormat::Pcm16, laws);
        let encoded: Vec<u8> = pcm16
            .chunks_exact(2)
            .map(|s| G711::Alaw.encode_sample(i16::from_le_bytes([s[0], s[1]])))
            .collect();
        assert_eq!(alaw.len(), 2 * 8000 * 26 / 10, "{laws:?}");
        assert!(alaw == encoded, "{laws:?}: byte for byte");
    }
}

#[test]
fn the_mu_to_a_table_is_decode_then_encode_and_a_law_round_trips() {
    for b in 0..=255u8 {
        let mut t = [b];
        transcode_in_place(G711::Ulaw, G711::Alaw, &mut t);
        assert_eq!(
            t[0],
            G711::Alaw.encode_sample(G711::Ulaw.decode_sample(b)),
            "μ {b:#04x}"
        );
        // So an A-law leg's bytes were already what decode → encode wrote.
        assert_eq!(G711::Alaw.encode_sample(G711::Alaw.decode_sample(b)), b);
    }
}
