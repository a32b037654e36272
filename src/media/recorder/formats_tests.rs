//! Tests of the recording formats (issue 16 item 3): the A-law WAV and the
//! Ogg Opus writers (header, bytes, read back by an independent reader),
//! their repair after a crash or a cut, sealing, and `kill -9` per format.

use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::format::part_path;
use super::*;
use crate::media::at_rest::SealingKey;
use crate::media::codec::G711;

fn options(format: RecordingFormat) -> WriterOptions {
    WriterOptions {
        format,
        ..WriterOptions::default()
    }
}

/// 20 ms (160 frames) of a test tone: caller 1 kHz, agent 500 Hz.
fn tone(seq: u64) -> Vec<i16> {
    (0..160u64)
        .flat_map(|i| {
            let t = (seq * 160 + i) as f64 / 8000.0;
            let l = (t * 1000.0 * std::f64::consts::TAU).sin() * 8000.0;
            let r = (t * 500.0 * std::f64::consts::TAU).sin() * 8000.0;
            [l as i16, r as i16]
        })
        .collect()
}

fn path_for(dir: &Path, format: RecordingFormat, call: &str) -> PathBuf {
    recording_path_as(dir, "t", (2026, 12, 6), call, format)
}

/// Records `chunks` 20 ms chunks of [`tone`] and finishes.
fn record(dir: &Path, format: RecordingFormat, chunks: u64) -> RecordingMeta {
    let path = path_for(dir, format, "c1");
    let h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, options(format)).expect("start");
    for i in 0..chunks {
        h.try_send(tone(i)).expect("queued");
        if i % 50 == 0 {
            h.barrier();
        }
    }
    h.finish().expect("finish")
}

/// Decodes an A-law WAV with symphonia (an independent reader).
fn symphonia_samples(path: &Path) -> (u16, u32, Vec<i16>) {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::DecoderOptions;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;
    let file = fs::File::open(path).expect("open");
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("wav");
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .expect("symphonia reads the WAV");
    let mut format = probed.format;
    let track = format.default_track().expect("track").clone();
    let params = track.codec_params.clone();
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .expect("symphonia decodes A-law");
    let mut out = Vec::new();
    while let Ok(packet) = format.next_packet() {
        let decoded = decoder.decode(&packet).expect("decode");
        let mut buf = SampleBuffer::<i16>::new(decoded.capacity() as u64, *decoded.spec());
        buf.copy_interleaved_ref(decoded);
        out.extend_from_slice(buf.samples());
    }
    let channels = params.channels.map_or(0, |c| c.count() as u16);
    (channels, params.sample_rate.unwrap_or(0), out)
}

/// Decodes an Ogg Opus file with opus-pure's reader and decoder, trimmed
/// as RFC 7845 says: interleaved 8 kHz stereo, and whether it ended
/// with an end-of-stream page.
fn opus_samples(path: &Path) -> (Vec<i16>, bool) {
    let file = fs::File::open(path).expect("open");
    let mut reader = opus_pure::OggOpusReader::new(io::BufReader::new(file)).expect("Ogg Opus");
    let head = reader.head().clone();
    assert_eq!(head.channel_count, 2);
    let mut decoder = opus_pure::OpusDecoder::new(8000, 2).expect("decoder");
    let mut trim = opus_pure::Trim::new(&head, 8000, 2).expect("trim");
    let mut out = Vec::new();
    let mut pcm = vec![0i16; 5760 * 2];
    let mut ended = false;
    while let Some(packet) = reader.read_packet().expect("packet") {
        ended |= packet.end_of_stream;
        if packet.data.is_empty() {
            continue;
        }
        let n = decoder
            .decode_s16(&packet.data, 960, &mut pcm)
            .expect("decodes");
        out.extend_from_slice(trim.keep(&packet, &pcm[..n * 2]));
    }
    (out, ended)
}

/// Energy of `samples` (one channel) at `hz` relative to their total
/// (Goertzel): near 1 for a pure tone at `hz`.
fn tone_share(samples: &[f64], hz: f64) -> f64 {
    let w = std::f64::consts::TAU * hz / 8000.0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = x + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    let total: f64 = samples.iter().map(|x| x * x).sum();
    2.0 * power / (samples.len() as f64 * total)
}

fn channel(interleaved: &[i16], c: usize) -> Vec<f64> {
    interleaved.chunks(2).map(|f| f64::from(f[c])).collect()
}

// ---- A-law ------------------------------------------------------------

#[test]
fn alaw_is_a_format_6_wav_of_half_the_bytes_read_back_by_symphonia() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = record(dir.path(), RecordingFormat::Alaw, 125); // 2.5 s
    assert_eq!(meta.path.extension().and_then(|e| e.to_str()), Some("wav"));
    assert_eq!(meta.frames, 20_000);
    assert_eq!(meta.duration, Duration::from_millis(2500));
    let bytes = fs::read(&meta.path).expect("read");
    assert_eq!(
        meta.bytes,
        46 + 20_000 * 2,
        "half of PCM16's 4 bytes a frame"
    );
    assert_eq!(meta.sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(
        u32::from_le_bytes(bytes[4..8].try_into().unwrap()),
        38 + 40_000
    );
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), 18);
    assert_eq!(
        u16::from_le_bytes([bytes[20], bytes[21]]),
        6,
        "WAVE_FORMAT_ALAW"
    );
    assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 2);
    assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 8000);
    assert_eq!(
        u32::from_le_bytes(bytes[28..32].try_into().unwrap()),
        16_000
    );
    assert_eq!(u16::from_le_bytes([bytes[32], bytes[33]]), 2);
    assert_eq!(u16::from_le_bytes([bytes[34], bytes[35]]), 8);
    assert_eq!(&bytes[38..42], b"data");
    assert_eq!(
        u32::from_le_bytes(bytes[42..46].try_into().unwrap()),
        40_000
    );
    let expect: Vec<u8> = (0..125)
        .flat_map(tone)
        .map(|s| G711::Alaw.encode_sample(s))
        .collect();
    assert_eq!(&bytes[46..], &expect[..], "the G.711 table's bytes");

    let (channels, rate, samples) = symphonia_samples(&meta.path);
    assert_eq!((channels, rate), (2, 8000));
    let decoded: Vec<i16> = expect
        .iter()
        .map(|&b| G711::Alaw.decode_sample(b))
        .collect();
    assert_eq!(samples, decoded);
    assert_eq!(
        describe_finished(&meta.path).expect("describe").frames,
        20_000
    );

    // SoX reads it as 2-channel 8 kHz A-law (when SoX is installed).
    if let Ok(out) = std::process::Command::new("soxi").arg(&meta.path).output() {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "soxi: {text}");
        assert!(text.contains("A-law"), "{text}");
        assert!(text.contains("Channels       : 2"), "{text}");
        assert!(text.contains("00:00:02.50"), "{text}");
    }
}

#[test]
fn alaw_crash_is_repaired_to_the_whole_frames_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = path_for(dir.path(), RecordingFormat::Alaw, "crash");
    let h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, options(RecordingFormat::Alaw))
        .expect("start");
    for i in 0..155 {
        h.try_send(tone(i)).expect("queued"); // 3.1 s
        if i % 50 == 0 {
            h.barrier();
        }
    }
    h.barrier();
    h.crash();
    let part = part_path(&path);
    // Cut a byte off mid-frame, as a crash can.
    let len = fs::metadata(&part).expect("part").len();
    let f = fs::OpenOptions::new()
        .write(true)
        .open(&part)
        .expect("open");
    f.set_len(len - 1).expect("cut");
    drop(f);
    let reports = repair_unfinished(dir.path());
    assert_eq!(reports.len(), 1, "{reports:?}");
    let RepairOutcome::Repaired {
        wav,
        frames,
        discarded_bytes,
        ..
    } = &reports[0].outcome
    else {
        panic!("not repaired: {reports:?}");
    };
    assert_eq!(wav, &path);
    // The 3 s patched, less the frame the cut broke.
    assert!(*frames >= 23_999, "the 3 s patched survive: {frames}");
    assert_eq!(*discarded_bytes, 1);
    let (_, _, samples) = symphonia_samples(&path);
    assert_eq!(samples.len() as u64, frames * 2);
    let meta = describe_finished(&path).expect("describe");
    assert_eq!(meta.frames, *frames);
}

// ---- Ogg Opus -----------------------------------------------------------

#[test]
fn opus_is_an_ogg_opus_file_a_decoder_plays_back_with_each_side_on_its_channel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = record(dir.path(), RecordingFormat::Opus, 250); // 5 s
    assert_eq!(meta.path.extension().and_then(|e| e.to_str()), Some("opus"));
    assert!(!part_path(&meta.path).exists());
    assert_eq!(meta.frames, 40_000);
    assert_eq!(meta.duration, Duration::from_secs(5));
    let bytes = fs::read(&meta.path).expect("read");
    assert_eq!(meta.bytes, bytes.len() as u64);
    assert_eq!(meta.sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(&bytes[..4], b"OggS");
    // 24 kbit/s for 5 s is 15 kB: allow the rate control its margin, and
    // it is far below PCM16's 160 kB.
    assert!(
        (8_000..25_000).contains(&bytes.len()),
        "{} bytes for 5 s",
        bytes.len()
    );

    let (samples, ended) = opus_samples(&meta.path);
    assert!(ended, "the last page is end-of-stream");
    assert_eq!(samples.len(), 80_000, "trimmed to exactly the audio");
    // Past the first 100 ms (the codec settling), each side's tone is on
    // its own channel.
    let left = channel(&samples[1600..], 0);
    let right = channel(&samples[1600..], 1);
    assert!(
        tone_share(&left, 1000.0) > 0.8,
        "{}",
        tone_share(&left, 1000.0)
    );
    assert!(
        tone_share(&right, 500.0) > 0.8,
        "{}",
        tone_share(&right, 500.0)
    );
    assert!(tone_share(&left, 500.0) < 0.1);

    // libopus's own tools accept it (when opus-tools is installed).
    if let Ok(out) = std::process::Command::new("opusinfo")
        .arg(&meta.path)
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "opusinfo: {text}");
        assert!(!text.contains("WARNING"), "{text}");
        assert!(text.contains("Channels: 2"), "{text}");
        assert!(text.contains("Playback length: 0m:05"), "{text}");
    }

    let described = describe_finished(&meta.path).expect("describe");
    assert_eq!(described.frames, 40_000);
    assert_eq!(described.sha256, meta.sha256);
    assert_eq!(content_type_of(&meta.path), "audio/ogg");
}

#[test]
fn opus_of_a_partial_packet_and_of_nothing_still_end_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = path_for(dir.path(), RecordingFormat::Opus, "short");
    let h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, options(RecordingFormat::Opus))
        .expect("start");
    h.try_send(tone(0)[..100].to_vec()).expect("50 frames");
    let meta = h.finish().expect("finish");
    assert_eq!(meta.frames, 50);
    let (samples, ended) = opus_samples(&path);
    assert!(ended);
    assert_eq!(samples.len(), 100);

    let empty = path_for(dir.path(), RecordingFormat::Opus, "empty");
    let h = RecordingWriter::start_with(&empty, CALL_WAV_SPEC, options(RecordingFormat::Opus))
        .expect("start");
    let meta = h.finish().expect("finish");
    assert_eq!(meta.frames, 0);
    assert!(opus_samples(&empty).0.is_empty());
    let summary = super::ogg::scan(&mut fs::File::open(&empty).expect("open")).expect("scan");
    assert!(summary.ended, "{summary:?}");
    assert_eq!(summary.pages, 3);
}

/// A crashed Opus recording of 3.1 s, its `.part` path.
fn crashed_opus(dir: &Path) -> (PathBuf, PathBuf) {
    let path = path_for(dir, RecordingFormat::Opus, "crash");
    let h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, options(RecordingFormat::Opus))
        .expect("start");
    for i in 0..155 {
        h.try_send(tone(i)).expect("queued");
        if i % 50 == 0 {
            h.barrier();
        }
    }
    h.barrier();
    h.crash();
    let part = part_path(&path);
    assert!(part.exists());
    (path, part)
}

#[test]
fn opus_crash_keeps_every_whole_page_and_ends_the_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, part) = crashed_opus(dir.path());
    // A crash mid-page: half a page of garbage after the last whole one.
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&part)
        .expect("open");
    f.write_all(b"OggS\0\0partial page").expect("append");
    drop(f);
    let reports = repair_unfinished(dir.path());
    assert_eq!(reports.len(), 1, "{reports:?}");
    let RepairOutcome::Repaired {
        wav,
        frames,
        duration,
        discarded_bytes,
    } = &reports[0].outcome
    else {
        panic!("not repaired: {reports:?}");
    };
    assert_eq!(wav, &path);
    // The 3 s of whole pages, less the encoder's look-ahead (6.5 ms).
    assert!(
        *frames >= 23_900,
        "the 3 s of whole pages survive: {frames}"
    );
    assert!(*duration >= Duration::from_millis(2980));
    assert!(*discarded_bytes >= 18, "{discarded_bytes}");
    let (samples, ended) = opus_samples(&path);
    assert!(ended, "the repaired stream ends with an EOS page");
    assert_eq!(samples.len() as u64, frames * 2);
    let meta = describe_finished(&path).expect("describe");
    assert_eq!(meta.frames, *frames);
    assert!(repair_unfinished(dir.path()).is_empty());
}

#[test]
fn opus_cut_inside_a_page_and_before_any_audio() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, part) = crashed_opus(dir.path());
    let len = fs::metadata(&part).expect("part").len();
    let f = fs::OpenOptions::new()
        .write(true)
        .open(&part)
        .expect("open");
    f.set_len(len - 10).expect("cut inside the last page");
    drop(f);
    let reports = repair_unfinished(dir.path());
    let RepairOutcome::Repaired { frames, .. } = &reports[0].outcome else {
        panic!("not repaired: {reports:?}");
    };
    assert!(*frames >= 15_900, "all pages but the cut one: {frames}");
    assert!(opus_samples(&path).1);

    // Only the two header pages (killed before the first second): no
    // audio, deleted.
    let early = path_for(dir.path(), RecordingFormat::Opus, "early");
    let h = RecordingWriter::start_with(&early, CALL_WAV_SPEC, options(RecordingFormat::Opus))
        .expect("start");
    h.try_send(tone(0)).expect("queued");
    h.barrier();
    h.crash();
    let reports = repair_unfinished(dir.path());
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        matches!(
            reports[0].outcome,
            RepairOutcome::Deleted(DeleteReason::TruncatedHeader)
        ),
        "{reports:?}"
    );
    assert!(!part_path(&early).exists() && !early.exists());
}

#[test]
fn formats_are_sealed_and_described_from_inside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SealingKey::from_bytes([0x33; 32]);
    for format in [RecordingFormat::Alaw, RecordingFormat::Opus] {
        let path = path_for(dir.path(), format, format.name());
        let h = RecordingWriter::start_with(
            &path,
            CALL_WAV_SPEC,
            WriterOptions {
                seal: Some(key.clone()),
                ..options(format)
            },
        )
        .expect("start");
        for i in 0..60 {
            h.try_send(tone(i)).expect("queued");
        }
        let meta = h.finish().expect("finish");
        assert!(crate::media::at_rest::file_is_sealed(&path).expect("read"));
        let described = describe_finished_with(&path, Some(&key)).expect("describe");
        assert_eq!(described.frames, 9_600, "{format:?}");
        assert_eq!(described.sha256, meta.sha256);
        assert_eq!(described.bytes, meta.bytes);
    }
}

// ---- kill -9, per format -------------------------------------------------

const KILL_CHILD_ENV: &str = "RECORDER_FORMAT_KILL9_CHILD";

/// Child half of `kill_9_leaves_a_repairable_file_in_every_format`:
/// `dir|format`; records 2.6 s and waits to be killed. Does nothing in a
/// normal test run.
#[test]
fn kill_9_format_child() {
    let Ok(arg) = std::env::var(KILL_CHILD_ENV) else {
        return;
    };
    let (dir, name) = arg.split_once('|').expect("dir|format");
    let format = RecordingFormat::ALL
        .into_iter()
        .find(|f| f.name() == name)
        .expect("format");
    let path = path_for(Path::new(dir), format, "k9");
    let h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, options(format)).expect("start");
    for i in 0..130 {
        h.try_send(tone(i)).expect("queued");
    }
    h.barrier();
    println!("RECORDED");
    io::stdout().flush().ok();
    loop {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(unix)]
#[test]
fn kill_9_leaves_a_repairable_file_in_every_format() {
    for format in RecordingFormat::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = std::env::current_exe().expect("test binary");
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let mut child = std::process::Command::new(exe)
            .args([
                &format!("{module}::kill_9_format_child"),
                "--exact",
                "--nocapture",
            ])
            .env(
                KILL_CHILD_ENV,
                format!("{}|{}", dir.path().display(), format.name()),
            )
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let ready = io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("RECORDED"));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        assert!(ready, "{format:?}: child did not record");
        let reports = repair_unfinished(dir.path());
        assert_eq!(reports.len(), 1, "{format:?}: {reports:?}");
        let RepairOutcome::Repaired { wav, frames, .. } = &reports[0].outcome else {
            panic!("{format:?} not repaired: {reports:?}");
        };
        // 2 s patched (less the Opus look-ahead).
        assert!(*frames >= 15_900, "{format:?}: {frames} frames survive");
        assert_eq!(wav, &path_for(dir.path(), format, "k9"));
        let meta = describe_finished(wav).expect("describe");
        assert_eq!(meta.frames, *frames, "{format:?}");
        match format {
            RecordingFormat::Pcm16 => {
                let r = hound::WavReader::open(wav).expect("wav");
                assert_eq!(u64::from(r.duration()), *frames);
            }
            RecordingFormat::Alaw => {
                assert_eq!(symphonia_samples(wav).2.len() as u64, frames * 2);
            }
            RecordingFormat::Opus => {
                let (samples, ended) = opus_samples(wav);
                assert!(ended);
                assert_eq!(samples.len() as u64, frames * 2);
            }
        }
    }
}

#[test]
fn formats_name_their_files_and_media_types() {
    let root = Path::new("/r");
    let p = recording_path_as(root, "t", (2026, 1, 2), "c", RecordingFormat::Opus);
    assert_eq!(p, Path::new("/r/t/2026/01/02/c.opus"));
    let p = recording_path_as(root, "t", (2026, 1, 2), "c", RecordingFormat::Alaw);
    assert_eq!(p, recording_path(root, "t", (2026, 1, 2), "c"));
    assert_eq!(content_type_of(&p), "audio/wav");
    assert_eq!(RecordingFormat::default(), RecordingFormat::Pcm16);
}
