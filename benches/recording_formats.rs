//! The recording formats (issue 16 item 3): one second of a call's
//! stereo audio encoded in each `[recording] format`, as the writer pool
//! encodes it (20 ms chunks, an Ogg page a second), and each format's bytes
//! per minute of a conversation (printed before the benches); and an
//! `alaw` recording's whole path for one second of an A-law call (both
//! legs' packets placed in the aligner, drained every 100 ms, written),
//! the old way (each payload decoded, the frames encoded again) and the
//! wire-exact way (the payload bytes as they are). Run:
//! `bench/recording_formats/run.sh` (the formats' code alone, optimised),
//! or `cargo bench --bench recording_formats`.

use std::hint::black_box;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hotline::media::codec::{Codec, G711};
use hotline::media::recorder::{Channel, ChannelAligner, FormatEncoder, RecordingFormat};

/// A mono 8 kHz prompt from `sounds/` (Mandarin speech, an A-law WAV),
/// decoded to linear PCM.
fn speech(name: &str) -> Vec<i16> {
    alaw_speech(name)
        .iter()
        .map(|&b| G711::Alaw.decode_sample(b))
        .collect()
}

/// A mono 8 kHz prompt from `sounds/` as its A-law bytes (what a PCMA
/// leg carries).
fn alaw_speech(name: &str) -> Vec<u8> {
    let mut path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds");
    if !path.exists() {
        // Built by bench/recording_formats/run.sh outside the repository.
        path = std::path::Path::new(&std::env::var("HOTLINE_REPO").expect("HOTLINE_REPO"))
            .join("sounds");
    }
    let bytes = std::fs::read(path.join(name)).expect("a prompt WAV");
    let at = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk");
    let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("size")) as usize;
    let data = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
    assert_eq!(
        u16::from_le_bytes([bytes[20], bytes[21]]),
        6,
        "{name}: A-law"
    );
    data.to_vec()
}

/// `secs` of a conversation, interleaved stereo: the caller (left) and
/// the agent (right) take turns, each silent while the other speaks; with
/// `both`, both speak all the time (the worst case for Opus).
fn conversation(secs: usize, both: bool) -> Vec<i16> {
    let caller = speech("ivr_12345_menu.wav");
    let agent = speech("ivr_12328_closed.wav");
    let frames = secs * 8000;
    let mut out = Vec::with_capacity(frames * 2);
    if both {
        for i in 0..frames {
            out.extend_from_slice(&[caller[i % caller.len()], agent[i % agent.len()]]);
        }
        return out;
    }
    let mut turn = 0usize;
    while out.len() < frames * 2 {
        let caller_turn = turn.is_multiple_of(2);
        for &s in if caller_turn { &caller } else { &agent } {
            out.extend_from_slice(&if caller_turn { [s, 0] } else { [0, s] });
        }
        turn += 1;
    }
    out.truncate(frames * 2);
    out
}

/// Encodes `audio` as the writer pool does: 20 ms chunks, a checkpoint
/// (an Ogg page) every second.
fn encode_all(format: RecordingFormat, audio: &[i16]) -> Vec<u8> {
    let mut enc = FormatEncoder::new(format).expect("encoder");
    for (i, chunk) in audio.chunks(320).enumerate() {
        enc.write(chunk).expect("encode");
        if i % 50 == 49 {
            enc.checkpoint().expect("page");
        }
    }
    enc.finish().expect("finish")
}

/// Decodes an Ogg Opus stream (pre-skip and end-trim applied).
fn decode_opus(bytes: &[u8]) -> Vec<i16> {
    let mut reader = opus_pure::OggOpusReader::new(bytes).expect("Ogg Opus");
    let head = reader.head().clone();
    let mut decoder = opus_pure::OpusDecoder::new(8000, 2).expect("decoder");
    let mut trim = opus_pure::Trim::new(&head, 8000, 2).expect("trim");
    let mut pcm = vec![0i16; 960 * 2];
    let mut out = Vec::new();
    while let Some(packet) = reader.read_packet().expect("packet") {
        if packet.data.is_empty() {
            continue;
        }
        let n = decoder
            .decode_s16(&packet.data, 960, &mut pcm)
            .expect("decode");
        out.extend_from_slice(trim.keep(&packet, &pcm[..n * 2]));
    }
    out
}

/// Signal-to-noise ratio of `decoded` against `original`, in dB: a
/// waveform measure (a perceptual codec scores lower on it than it
/// sounds), for comparing settings.
fn snr_db(original: &[i16], decoded: &[i16]) -> f64 {
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (&a, &b) in original.iter().zip(decoded) {
        signal += f64::from(a) * f64::from(a);
        noise += (f64::from(a) - f64::from(b)).powi(2);
    }
    10.0 * (signal / noise.max(1.0)).log10()
}

fn recording_formats(c: &mut Criterion) {
    let turns = conversation(60, false);
    let both = conversation(60, true);
    for format in RecordingFormat::ALL {
        println!(
            "recording format {:>5}: {:>9} bytes per minute (turns), {:>9} (both speaking)",
            format.name(),
            encode_all(format, &turns).len(),
            encode_all(format, &both).len()
        );
    }
    let alaw: Vec<i16> = both
        .iter()
        .map(|&s| G711::Alaw.decode_sample(G711::Alaw.encode_sample(s)))
        .collect();
    let opus = decode_opus(&encode_all(RecordingFormat::Opus, &both));
    println!(
        "waveform SNR against the input (both speaking): alaw {:.1} dB, opus {:.1} dB ({} frames decoded of {})",
        snr_db(&both, &alaw),
        snr_db(&both, &opus),
        opus.len() / 2,
        both.len() / 2
    );
    let mut g = c.benchmark_group("recording_1s_stereo");
    g.throughput(Throughput::Elements(1));
    for (label, audio) in [("turns", &turns), ("both", &both)] {
        // The 10th second: both encoders well past their start.
        let second = &audio[9 * 16_000..10 * 16_000];
        for format in RecordingFormat::ALL {
            if label == "both" && format != RecordingFormat::Opus {
                continue; // the WAV formats do not depend on the audio
            }
            g.bench_function(format!("{}_{label}", format.name()), |b| {
                b.iter_batched_ref(
                    || {
                        // Warmed up on the 9 s before, as in a call.
                        let mut enc = FormatEncoder::new(format).expect("encoder");
                        if format == RecordingFormat::Opus {
                            for chunk in audio[..9 * 16_000].chunks(320) {
                                enc.write(chunk).expect("encode");
                            }
                        }
                        enc
                    },
                    |enc| {
                        for chunk in second.chunks(320) {
                            enc.write(black_box(chunk)).expect("encode");
                        }
                        enc.checkpoint().expect("page");
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

/// How the relay drains a recording: every 100 ms, 200 ms behind.
const DRAIN_EVERY: usize = 5;
const RECORD_DELAY: Duration = Duration::from_millis(200);

/// One second of an A-law call into an `alaw` recording the old way: each
/// packet decoded into the linear aligner, each drain into a new buffer,
/// the frames encoded to A-law by the writer (the old steps, on today's
/// aligner).
fn alaw_path_decoded(
    aligner: &mut ChannelAligner<i16>,
    enc: &mut FormatEncoder,
    packets: &[(Vec<u8>, Vec<u8>)],
) {
    let mut pcm = Vec::with_capacity(160);
    for (seq, (caller, agent)) in packets.iter().enumerate() {
        let at = Duration::from_millis(20 * seq as u64);
        for (channel, payload) in [(Channel::Caller, caller), (Channel::Agent, agent)] {
            pcm.clear();
            G711::Alaw.decode(black_box(payload), &mut pcm);
            aligner.push(channel, at, &pcm);
        }
        if seq % DRAIN_EVERY == DRAIN_EVERY - 1 {
            let up_to = (at + Duration::from_millis(20)).saturating_sub(RECORD_DELAY);
            // A new buffer each drain, as before the pool handed them back.
            let mut frames = Vec::new();
            aligner.drain_into(up_to, &mut frames);
            enc.write(&frames).expect("encode");
        }
    }
}

/// One second of `packets` pushed into the A-law aligner, `drain` called
/// with the aligner and how far to drain at each drain interval.
fn alaw_second(
    aligner: &mut ChannelAligner<u8>,
    packets: &[(Vec<u8>, Vec<u8>)],
    mut drain: impl FnMut(&mut ChannelAligner<u8>, Duration),
) {
    for (seq, (caller, agent)) in packets.iter().enumerate() {
        let at = Duration::from_millis(20 * seq as u64);
        aligner.push(Channel::Caller, at, black_box(caller));
        aligner.push(Channel::Agent, at, black_box(agent));
        if seq % DRAIN_EVERY == DRAIN_EVERY - 1 {
            drain(
                aligner,
                (at + Duration::from_millis(20)).saturating_sub(RECORD_DELAY),
            );
        }
    }
}

/// The same second the wire-exact way: the payload bytes into the A-law
/// aligner, drained into a reused buffer, copied into the file.
fn alaw_path_wire(
    aligner: &mut ChannelAligner<u8>,
    enc: &mut FormatEncoder,
    chunk: &mut Vec<u8>,
    packets: &[(Vec<u8>, Vec<u8>)],
) {
    alaw_second(aligner, packets, |aligner, up_to| {
        chunk.clear();
        aligner.drain_into(up_to, chunk);
        enc.write_alaw(chunk).expect("write");
    });
}

/// The same second as the relay writes it since issue 16 "Media at the
/// limit": the aligner's queues sized for 400 ms, each drain into the
/// recording's 4 KiB chunk (no more than its room), the chunk written once
/// full.
fn alaw_path_chunked(
    aligner: &mut ChannelAligner<u8>,
    enc: &mut FormatEncoder,
    chunk: &mut Vec<u8>,
    packets: &[(Vec<u8>, Vec<u8>)],
) {
    alaw_second(aligner, packets, |aligner, up_to| loop {
        let room = (CHUNK - chunk.len()) / 2;
        let n = aligner.drain_at_most(up_to, room, chunk);
        if chunk.len() == CHUNK {
            enc.write_alaw(chunk).expect("write");
            chunk.clear();
        }
        if n < room {
            break;
        }
    });
}

/// The recording's chunk: 256 ms of A-law stereo.
const CHUNK: usize = 4096;

fn alaw_path(c: &mut Criterion) {
    // One second of both sides talking: 50 packets a side.
    let caller = alaw_speech("ivr_12345_menu.wav");
    let agent = alaw_speech("ivr_12328_closed.wav");
    let packets: Vec<(Vec<u8>, Vec<u8>)> = (0..50)
        .map(|i| {
            let take = |s: &[u8]| (0..160).map(|j| s[(i * 160 + j) % s.len()]).collect();
            (take(&caller), take(&agent))
        })
        .collect();
    // Both ways write the same bytes.
    let (mut a, mut b) = (ChannelAligner::new(8000), ChannelAligner::new_alaw(8000));
    let mut old = FormatEncoder::new(RecordingFormat::Alaw).expect("encoder");
    let mut new = FormatEncoder::new(RecordingFormat::Alaw).expect("encoder");
    alaw_path_decoded(&mut a, &mut old, &packets);
    alaw_path_wire(&mut b, &mut new, &mut Vec::new(), &packets);
    let (old, new) = (old.finish().expect("bytes"), new.finish().expect("bytes"));
    assert_eq!(old, new, "the wire-exact path writes what the old one did");

    let mut g = c.benchmark_group("recording_alaw_path_1s");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decoded_then_encoded", |bench| {
        bench.iter_batched_ref(
            || {
                let enc = FormatEncoder::new(RecordingFormat::Alaw).expect("encoder");
                (ChannelAligner::new(8000), enc)
            },
            |(aligner, enc)| alaw_path_decoded(aligner, enc, &packets),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("wire_exact", |bench| {
        bench.iter_batched_ref(
            || {
                let enc = FormatEncoder::new(RecordingFormat::Alaw).expect("encoder");
                (
                    ChannelAligner::new_alaw(8000),
                    enc,
                    Vec::with_capacity(1600),
                )
            },
            |(aligner, enc, chunk)| alaw_path_wire(aligner, enc, chunk, &packets),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("wire_exact_sized_chunked", |bench| {
        bench.iter_batched_ref(
            || {
                let enc = FormatEncoder::new(RecordingFormat::Alaw).expect("encoder");
                (
                    ChannelAligner::new_alaw(8000).with_hold(Duration::from_millis(400)),
                    enc,
                    Vec::with_capacity(CHUNK),
                )
            },
            |(aligner, enc, chunk)| alaw_path_chunked(aligner, enc, chunk, &packets),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, recording_formats, alaw_path);
criterion_main!(benches);
