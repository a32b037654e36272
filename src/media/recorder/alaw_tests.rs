//! Tests of the A-law kind of sample (issue 16 item 3: `alaw` recordings
//! with no decode on the hot path): the aligner over A-law bytes (gaps,
//! pauses and silent sides are A-law silence; late and future samples
//! counted as for linear PCM; the same placement as the linear aligner,
//! byte for byte its encoding) and chunks of either kind into every
//! format (the chunk buffers the pool hands back: `buffers_tests`).

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::media::codec::G711;

const RATE: u32 = 8000;
const SILENCE: u8 = 0xD5;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn alaw(samples: &[i16]) -> Vec<u8> {
    samples
        .iter()
        .map(|&s| G711::Alaw.encode_sample(s))
        .collect()
}

/// 20 ms of A-law bytes that are all `b`.
fn pkt(b: u8) -> Vec<u8> {
    vec![b; 160]
}

#[test]
fn alaw_silence_is_what_alaw_encodes_zero_as() {
    assert_eq!(<u8 as Sample>::SILENCE, G711::Alaw.encode_sample(0));
    assert_eq!(<i16 as Sample>::SILENCE, 0);
}

#[test]
fn alaw_aligner_interleaves_and_fills_gaps_and_a_silent_side_with_alaw_silence() {
    let mut a = ChannelAligner::new_alaw(RATE);
    // Caller packets 0, 1, 3 (packet 2 lost); the agent sends nothing.
    for i in [0u64, 1, 3] {
        a.push(Channel::Caller, ms(20 * i), &pkt(0x2A));
    }
    let f = a.drain_frames(ms(80));
    assert_eq!(f.len(), 640);
    assert!(f[..320].iter().all(|&x| x == [0x2A, SILENCE]));
    assert!(
        f[320..480].iter().all(|&x| x == [SILENCE, SILENCE]),
        "the lost packet and the silent side are A-law silence"
    );
    assert!(f[480..].iter().all(|&x| x == [0x2A, SILENCE]));
    assert_eq!(a.position(), ms(80));
    // Nothing pushed: a drain is all silence.
    assert!(a
        .drain_frames(ms(100))
        .iter()
        .all(|&x| x == [SILENCE, SILENCE]));
}

#[test]
fn alaw_aligner_silences_paused_spans_with_alaw_silence() {
    let mut a = ChannelAligner::new_alaw(RATE);
    for i in 0..10u64 {
        a.push(Channel::Caller, ms(20 * i), &pkt(0x11));
        a.push(Channel::Agent, ms(20 * i), &pkt(0x22));
    }
    assert_eq!(a.pause(ms(60)), ms(60));
    a.resume(ms(120));
    let f = a.drain_frames(ms(200));
    assert_eq!(f.len(), 1600);
    assert!(f[..480].iter().all(|&x| x == [0x11, 0x22]));
    assert!(f[480..960].iter().all(|&x| x == [SILENCE, SILENCE]));
    assert!(f[960..].iter().all(|&x| x == [0x11, 0x22]));
    assert_eq!(a.stats().paused_frames, 480);
    assert_eq!(a.stats().frames_drained, 1600);
}

#[test]
fn alaw_aligner_counts_late_and_future_samples_as_the_linear_one_does() {
    let mut bytes = ChannelAligner::new_alaw(RATE).with_max_ahead(Duration::from_secs(1));
    let mut linear = ChannelAligner::new(RATE).with_max_ahead(Duration::from_secs(1));
    let samples: Vec<i16> = (0..160).map(|i| (i * 37 - 3000) as i16).collect();
    let encoded = alaw(&samples);
    // In time, then late (before the drained position), then far ahead.
    for (at, drain) in [(0, 40), (20, 40), (10, 60), (900, 60), (1500, 60)] {
        bytes.push(Channel::Agent, ms(at), &encoded);
        linear.push(Channel::Agent, ms(at), &samples);
        bytes.drain_frames(ms(drain));
        linear.drain_frames(ms(drain));
    }
    let stats = bytes.stats();
    assert_eq!(stats, linear.stats());
    // The packets at 20 and 10 ms come after 40 ms was drained; the one
    // at 1.5 s lies more than the second ahead of the 60 ms drained.
    assert_eq!((stats.late_samples, stats.future_samples), (320, 160));
}

#[test]
fn alaw_aligner_is_the_linear_aligner_encoded_through_jitter_overlap_and_pause() {
    // The same pushes (reordered, duplicated, overlapping, with gaps and a
    // pause) into both kinds: the A-law frames are the linear frames
    // encoded, so the old decode → align → encode path and the new one
    // write the same file.
    let mut bytes = ChannelAligner::new_alaw(RATE);
    let mut linear = ChannelAligner::new(RATE);
    let mut out_bytes = Vec::new();
    let mut out_linear = Vec::new();
    let order = [0u64, 2, 1, 3, 3, 5, 4, 9, 7, 8, 12, 11, 13, 14, 20, 19];
    for (step, &seq) in order.iter().enumerate() {
        let samples: Vec<i16> = (0..160)
            .map(|i| ((seq as i64 * 977 + i * 131) % 30_000 - 15_000) as i16)
            .collect();
        let encoded = alaw(&samples);
        let channel = if seq % 3 == 0 {
            Channel::Agent
        } else {
            Channel::Caller
        };
        // Half a packet's offset now and then: partial overlap.
        let at = ms(20 * seq) + Duration::from_micros(if seq % 4 == 1 { 10_000 } else { 0 });
        bytes.push(channel, at, &encoded);
        linear.push(channel, at, &samples);
        if step == 6 {
            bytes.pause(ms(150));
            linear.pause(ms(150));
        }
        if step == 9 {
            bytes.resume(ms(190));
            linear.resume(ms(190));
        }
        let up_to = ms((20 * step as u64).saturating_sub(100));
        bytes.drain_into(up_to, &mut out_bytes);
        linear.drain_into(up_to, &mut out_linear);
    }
    // 200 ms were drained at the last step.
    assert_eq!(bytes.drain_into(ms(500), &mut out_bytes), 2400);
    linear.drain_into(ms(500), &mut out_linear);
    assert_eq!(out_bytes.len(), 2 * 4000);
    assert_eq!(out_bytes, alaw(&out_linear));
    assert_eq!(bytes.stats(), linear.stats());
}

#[test]
fn drain_into_appends_interleaved_frames_and_says_how_many() {
    let mut a = ChannelAligner::new_alaw(RATE);
    a.push(Channel::Caller, ms(0), &[1, 2, 3]);
    a.push(Channel::Agent, ms(0), &[7, 8]);
    let mut out = vec![0xEE];
    assert_eq!(a.drain_into(ms(0), &mut out), 0, "nothing before zero");
    assert_eq!(out, [0xEE]);
    // 0.5 ms = 4 frames.
    assert_eq!(a.drain_into(Duration::from_micros(500), &mut out), 4);
    assert_eq!(out, [0xEE, 1, 7, 2, 8, 3, SILENCE, SILENCE, SILENCE]);
    assert_eq!(a.drain_into(Duration::from_micros(500), &mut out), 0);
}

fn options(format: RecordingFormat) -> WriterOptions {
    WriterOptions {
        format,
        ..WriterOptions::default()
    }
}

fn start(dir: &Path, format: RecordingFormat) -> RecordingHandle {
    let path = recording_path_as(dir, "t", (2026, 12, 6), "c", format);
    RecordingWriter::start_with(&path, CALL_WAV_SPEC, options(format)).expect("start")
}

/// Every byte value, in an order that is not the identity, `n` bytes.
fn every_byte(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 73 + seed * 29) % 256) as u8).collect()
}

#[test]
fn alaw_chunks_are_written_into_an_alaw_wav_as_they_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = start(dir.path(), RecordingFormat::Alaw);
    assert_eq!(h.format(), RecordingFormat::Alaw);
    let mut expect = Vec::new();
    for i in 0..30 {
        let chunk = every_byte(320, i);
        expect.extend_from_slice(&chunk);
        h.try_send_chunk(Chunk::Alaw(chunk)).expect("queued");
    }
    // A linear chunk into the same file is encoded.
    let linear: Vec<i16> = (0..320).map(|i| (i * 100 - 16_000) as i16).collect();
    expect.extend(alaw(&linear));
    h.try_send(linear).expect("queued");
    let meta = h.finish().expect("finish");
    assert_eq!(meta.frames, 30 * 160 + 160);
    let bytes = fs::read(&meta.path).expect("read");
    assert_eq!(&bytes[46..], &expect[..], "the chunks' bytes, unchanged");
    assert_eq!(meta.dropped_chunks, 0);
}

#[test]
fn alaw_chunks_into_a_pcm16_wav_are_decoded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = start(dir.path(), RecordingFormat::Pcm16);
    let chunk = every_byte(512, 1);
    h.try_send_chunk(Chunk::Alaw(chunk.clone()))
        .expect("queued");
    let meta = h.finish().expect("finish");
    let mut r = hound::WavReader::open(&meta.path).expect("open");
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    let decoded: Vec<i16> = chunk.iter().map(|&b| G711::Alaw.decode_sample(b)).collect();
    assert_eq!(samples, decoded);
}

#[test]
fn an_alaw_chunk_of_a_partial_frame_is_dropped_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = start(dir.path(), RecordingFormat::Alaw);
    assert_eq!(
        h.try_send_chunk(Chunk::Alaw(vec![SILENCE; 3])),
        Err(Backpressure::PartialFrame {
            samples: 3,
            channels: 2
        })
    );
    let meta = h.finish().expect("finish");
    assert_eq!((meta.frames, meta.dropped_chunks), (0, 1));
}
