//! The recording formats (issue 16 item 3): one second of a call's
//! stereo audio encoded in each `[recording] format`, as the writer pool
//! encodes it (20 ms chunks, an Ogg page a second), and each format's bytes
//! per minute of a conversation (printed before the benches). Run:
//! `bench/recording_formats/run.sh` (the formats' code alone, optimised),
//! or `cargo bench --bench recording_formats`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hotline::media::codec::G711;
use hotline::media::recorder::{FormatEncoder, RecordingFormat};

/// A mono 8 kHz prompt from `sounds/` (Mandarin speech, an A-law WAV),
/// decoded to linear PCM.
fn speech(name: &str) -> Vec<i16> {
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
    data.iter().map(|&b| G711::Alaw.decode_sample(b)).collect()
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

criterion_group!(benches, recording_formats);
criterion_main!(benches);
