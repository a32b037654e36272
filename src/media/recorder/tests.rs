//! Tests of the recorder: the aligner's timing, the writer's back-pressure,
//! crash and repair, the paths.

use super::format::part_path;
use super::path::{is_unsafe_char, MAX_COMPONENT_BYTES};
use super::*;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

const RATE: u32 = 8000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A 20 ms packet (160 samples) whose samples all equal `v`.
fn pkt(v: i16) -> Vec<i16> {
    vec![v; 160]
}

fn reader_samples(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(path).expect("open wav");
    let spec = r.spec();
    let s: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    (spec, s)
}

// ---- aligner ----------------------------------------------------------

#[test]
fn aligner_interleaves_caller_left_agent_right() {
    let mut a = ChannelAligner::new(RATE);
    a.push(Channel::Caller, ms(0), &pkt(1));
    a.push(Channel::Agent, ms(0), &pkt(2));
    let f = a.drain_frames(ms(20));
    assert_eq!(f.len(), 160);
    assert!(f.iter().all(|&x| x == [1, 2]));
    assert_eq!(a.position(), ms(20));
    assert_eq!(f.into_flattened()[..4], [1, 2, 1, 2]);
}

#[test]
fn aligner_fills_loss_with_silence() {
    let mut a = ChannelAligner::new(RATE);
    // Caller packets 0, 1, 3 (packet 2 lost); agent all four.
    for i in [0u64, 1, 3] {
        a.push(Channel::Caller, ms(20 * i), &pkt(7));
    }
    for i in 0..4u64 {
        a.push(Channel::Agent, ms(20 * i), &pkt(9));
    }
    let f = a.drain_frames(ms(80));
    assert_eq!(f.len(), 640);
    assert!(f[..320].iter().all(|&x| x == [7, 9]));
    assert!(
        f[320..480].iter().all(|&x| x == [0, 9]),
        "lost packet is silence"
    );
    assert!(f[480..].iter().all(|&x| x == [7, 9]));
}

#[test]
fn aligner_reorders_jittered_packets_within_allowance() {
    let mut a = ChannelAligner::new(RATE);
    // Packets arrive 2, 0, 1 (out of order), all before the drain.
    for (i, v) in [(2u64, 3i16), (0, 1), (1, 2)] {
        a.push(Channel::Caller, ms(20 * i), &pkt(v));
    }
    let f = a.drain_frames(ms(60));
    assert_eq!(f.len(), 480);
    for (k, v) in [1i16, 2, 3].iter().enumerate() {
        assert!(f[k * 160..(k + 1) * 160].iter().all(|&x| x == [*v, 0]));
    }
}

#[test]
fn aligner_rounds_jittery_arrival_time_to_nearest_sample() {
    let mut a = ChannelAligner::new(RATE);
    // 20 ms + 40 µs of arrival jitter (< half a sample of 125 µs).
    a.push(Channel::Caller, ms(20) + Duration::from_micros(40), &[5]);
    let f = a.drain_frames(ms(21));
    assert_eq!(f[160], [5, 0]);
    assert_eq!(f[159], [0, 0]);
}

#[test]
fn aligner_hold_one_side_silent_two_seconds_still_two_seconds() {
    let mut a = ChannelAligner::new(RATE);
    let mut frames = Vec::new();
    // Caller talks for 2 s; the agent put the call on hold (sends nothing).
    for i in 0..100u64 {
        a.push(Channel::Caller, ms(20 * i), &pkt(4));
        // Drain each tick with a 100 ms allowance.
        frames.extend(a.drain_frames(ms((20 * (i + 1)).saturating_sub(100))));
    }
    frames.extend(a.drain_frames(ms(2000)));
    assert_eq!(frames.len(), 16_000, "2 s of stereo audio");
    assert!(frames.iter().all(|&x| x == [4, 0]));
    // Neither side sends anything for 2 s more: time still advances.
    let f = a.drain_frames(ms(4000));
    assert_eq!(f.len(), 16_000);
    assert!(f.iter().all(|&x| x == [0, 0]));
    assert_eq!(a.position(), ms(4000));
    assert_eq!(a.stats().frames_drained, 32_000);
}

#[test]
fn aligner_drops_and_counts_late_samples() {
    let mut a = ChannelAligner::new(RATE);
    a.push(Channel::Caller, ms(0), &pkt(1));
    assert_eq!(a.drain_frames(ms(40)).len(), 320);
    // Packet for 20..40 ms arrives after that span was written.
    a.push(Channel::Caller, ms(20), &pkt(8));
    assert_eq!(a.stats().late_samples, 160);
    // Straddling packet 30..50 ms: the first half is late, the rest kept.
    a.push(Channel::Caller, ms(30), &pkt(6));
    assert_eq!(a.stats().late_samples, 240);
    let f = a.drain_frames(ms(60));
    assert_eq!(f.len(), 160);
    assert!(f[..80].iter().all(|&x| x == [6, 0]));
    assert!(f[80..].iter().all(|&x| x == [0, 0]));
}

#[test]
fn aligner_duplicates_and_overlaps_overwrite() {
    let mut a = ChannelAligner::new(RATE);
    a.push(Channel::Agent, ms(0), &pkt(1));
    a.push(Channel::Agent, ms(0), &pkt(1)); // duplicate
    a.push(Channel::Agent, ms(10), &pkt(2)); // overlaps 10..30 ms
    let f = a.drain_frames(ms(30));
    assert_eq!(f.len(), 240);
    assert!(f[..80].iter().all(|&x| x == [0, 1]));
    assert!(f[80..].iter().all(|&x| x == [0, 2]));
    assert_eq!(a.stats().late_samples, 0);
}

#[test]
fn aligner_drain_not_past_position_is_empty() {
    let mut a = ChannelAligner::new(RATE);
    assert!(a.drain_frames(Duration::ZERO).is_empty());
    assert_eq!(a.drain_frames(ms(10)).len(), 80);
    assert!(a.drain_frames(ms(10)).is_empty());
    assert!(
        a.drain_frames(ms(5)).is_empty(),
        "time going back emits nothing"
    );
    assert_eq!(a.position(), ms(10));
}

#[test]
fn aligner_bounds_memory_against_timestamp_jumps() {
    let mut a = ChannelAligner::new(RATE).with_max_ahead(Duration::from_secs(1));
    assert_eq!(a.max_ahead(), Duration::from_secs(1));
    // An hour ahead: dropped, not a 28.8 M sample allocation.
    a.push(Channel::Caller, Duration::from_secs(3600), &pkt(3));
    assert_eq!(a.stats().future_samples, 160);
    // Straddling the horizon: the part within it is kept.
    a.push(Channel::Caller, ms(990), &pkt(3));
    assert_eq!(a.stats().future_samples, 240);
    let f = a.drain_frames(Duration::from_secs(2));
    assert!(f[7920..8000].iter().all(|&x| x == [3, 0]));
    assert!(f[8000..].iter().all(|&x| x == [0, 0]));
    // Absurd media times do not overflow.
    a.push(Channel::Agent, Duration::MAX, &pkt(1));
    assert_eq!(a.stats().future_samples, 400);
    assert_eq!(a.stats().late_samples, 0);
}

#[test]
fn aligner_pause_resume_writes_silence_keeping_time() {
    let mut a = ChannelAligner::new(RATE);
    for i in 0..50u64 {
        a.push(Channel::Caller, ms(20 * i), &pkt(1));
        a.push(Channel::Agent, ms(20 * i), &pkt(2));
    }
    let mut f = a.drain_frames(ms(200));
    assert_eq!(a.pause(ms(300)), ms(300));
    assert!(a.is_paused());
    assert_eq!(
        a.pause(ms(400)),
        ms(300),
        "second pause keeps the first start"
    );
    f.extend(a.drain_frames(ms(500)));
    a.resume(ms(700));
    assert!(!a.is_paused());
    f.extend(a.drain_frames(ms(1000)));
    assert_eq!(f.len(), 8000, "1 s of audio for 1 s of call");
    assert!(f[..2400].iter().all(|&x| x == [1, 2]));
    assert!(
        f[2400..5600].iter().all(|&x| x == [0, 0]),
        "paused span silent"
    );
    assert!(f[5600..].iter().all(|&x| x == [1, 2]));
    assert_eq!(a.stats().paused_frames, 3200);
    a.resume(ms(1000)); // resume without pause: no effect
    assert_eq!(a.drain_frames(ms(1020)).len(), 160);
}

#[test]
fn aligner_late_pause_is_clamped_to_drained_position() {
    let mut a = ChannelAligner::new(RATE);
    a.push(Channel::Caller, ms(0), &vec![1; 1600]);
    assert_eq!(a.drain_frames(ms(100)).len(), 800);
    // The agent pressed "pause" at 50 ms but the signal arrived late.
    assert_eq!(a.pause(ms(50)), ms(100));
    a.resume(ms(150));
    let f = a.drain_frames(ms(200));
    assert!(f[..400].iter().all(|&x| x == [0, 0]));
    assert!(f[400..].iter().all(|&x| x == [1, 0]));
}

#[test]
fn aligner_resume_before_pause_start_is_empty_span() {
    let mut a = ChannelAligner::new(RATE);
    a.push(Channel::Caller, ms(0), &vec![1; 800]);
    a.pause(ms(50));
    a.resume(ms(10));
    let f = a.drain_frames(ms(100));
    assert!(f.iter().all(|&x| x == [1, 0]));
    assert_eq!(a.stats().paused_frames, 0);
}

// ---- writer -----------------------------------------------------------

/// 20 ms of stereo: caller ramps, agent is the negated ramp.
fn chunk(seq: u64) -> Vec<i16> {
    (0..160)
        .flat_map(|i| {
            let v = ((seq * 160 + i) % 30_000) as i16;
            [v, -v]
        })
        .collect()
}

#[test]
fn writer_end_to_end_stereo_8khz_with_sha256() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = recording_path(dir.path(), "市民热线", (2025, 3, 7), "abc@10.0.0.1");
    let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
    assert_eq!(h.path(), path);
    let mut a = ChannelAligner::new(RATE);
    // 2.5 s; the agent is on hold for the second half second.
    for i in 0..125u64 {
        let v = i as i16;
        a.push(Channel::Caller, ms(20 * i), &pkt(v));
        if i < 100 {
            a.push(Channel::Agent, ms(20 * i), &pkt(-v));
        }
        let frames = a.drain_frames(ms((20 * (i + 1)).saturating_sub(100)));
        h.try_send(frames.into_flattened()).expect("queued");
    }
    h.try_send(a.drain_frames(ms(2500)).into_flattened())
        .expect("queued");
    let meta = h.finish().expect("finish");

    assert_eq!(meta.path, path);
    assert!(path.exists());
    assert!(!part_path(&path).exists(), ".part renamed away");
    assert_eq!(meta.frames, 20_000);
    assert_eq!(meta.duration, ms(2500));
    assert_eq!(meta.dropped_chunks, 0);
    let bytes = fs::read(&path).expect("read");
    assert_eq!(meta.bytes, bytes.len() as u64);
    assert_eq!(meta.bytes, 44 + 20_000 * 4);
    assert_eq!(meta.sha256, hex::encode(Sha256::digest(&bytes)));

    let (spec, s) = reader_samples(&path);
    assert_eq!(spec, CALL_WAV_SPEC);
    assert_eq!(s.len(), 40_000);
    for (k, fr) in s.chunks(2).enumerate() {
        let i = (k / 160) as i16;
        let agent = if i < 100 { -i } else { 0 };
        assert_eq!(fr, [i, agent], "frame {k}");
    }
}

#[test]
fn many_recordings_share_the_pool_each_whole_and_in_order() {
    // 40 calls recorded at once from 4 threads (as relay tasks would),
    // their chunks interleaved in the few writer threads: every file is
    // its own chunks, in order, nothing dropped.
    let dir = tempfile::tempdir().expect("tempdir");
    let handles: Vec<_> = (0..40)
        .map(|k| {
            let path = dir.path().join(format!("call-{k}.wav"));
            RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start")
        })
        .collect();
    let handles = std::sync::Arc::new(handles);
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let handles = handles.clone();
            std::thread::spawn(move || {
                for seq in 0..50u64 {
                    for (k, h) in handles.iter().enumerate().filter(|(k, _)| k % 4 == t) {
                        let mut c = chunk(seq);
                        c[0] = k as i16; // whose chunk it is
                        h.try_send(c).expect("queued");
                    }
                    if seq % 10 == 9 {
                        handles[t].barrier(); // stay within each bound
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    let handles = std::sync::Arc::try_unwrap(handles).expect("one owner");
    for (k, h) in handles.into_iter().enumerate() {
        let path = dir.path().join(format!("call-{k}.wav"));
        let meta = h.finish().expect("finish");
        assert_eq!(meta.dropped_chunks, 0, "call {k}");
        assert_eq!(meta.frames, 50 * 160, "call {k}");
        let (_, samples) = reader_samples(&path);
        for (seq, c) in samples.chunks(320).enumerate() {
            let mut want = chunk(seq as u64);
            want[0] = k as i16;
            assert_eq!(c, &want[..], "call {k}, chunk {seq}");
        }
    }
}

#[test]
fn writer_patches_header_while_still_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c1.wav");
    let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
    for i in 0..75 {
        h.try_send(chunk(i)).expect("queued"); // 1.5 s
    }
    h.barrier();
    // Read the unfinished file while the writer still holds it open.
    let part = part_path(&path);
    let r = hound::WavReader::open(&part).expect("open .part");
    assert_eq!(r.duration(), 8000, "header covers the first whole second");
    let (_, s) = reader_samples(&part);
    assert_eq!(s[..2], chunk(0)[..2]);
    let meta = h.finish().expect("finish");
    assert_eq!(meta.frames, 12_000);
}

#[test]
fn writer_backpressure_drops_instead_of_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stall.wav");
    let opts = WriterOptions {
        queue_chunks: 8,
        ..WriterOptions::default()
    };
    let h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, opts).expect("start");
    let release = h.stall();
    // The disk "hangs": 8 chunks fit in the queue, the rest are dropped at
    // once (if try_send blocked, this test would hang).
    let results: Vec<_> = (0..13).map(|i| h.try_send(chunk(i))).collect();
    assert!(results[..8].iter().all(Result::is_ok));
    assert!(results[8..].iter().all(|r| *r == Err(Backpressure::Full)));
    assert_eq!(h.dropped_chunks(), 5);
    drop(release);
    let meta = h.finish().expect("finish");
    assert_eq!(meta.dropped_chunks, 5);
    assert_eq!(meta.frames, 8 * 160);
    let (_, s) = reader_samples(&path);
    assert_eq!(s[..320], chunk(0)[..]);
}

#[test]
fn writer_rejects_partial_frames_and_bad_specs_and_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.wav");
    let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
    assert_eq!(
        h.try_send(vec![1, 2, 3]),
        Err(Backpressure::PartialFrame {
            samples: 3,
            channels: 2
        })
    );
    // The .part exists: a second recording to the same path is refused.
    assert!(matches!(
        RecordingWriter::start(&path, CALL_WAV_SPEC),
        Err(RecorderError::AlreadyExists { .. })
    ));
    let meta = h.finish().expect("finish");
    assert_eq!(meta.dropped_chunks, 1);
    assert_eq!(meta.frames, 0);
    let e = RecordingWriter::start(&path, CALL_WAV_SPEC).expect_err("exists");
    assert!(e.to_string().contains("x.wav"), "{e}");
    let float = hound::WavSpec {
        sample_format: hound::SampleFormat::Float,
        bits_per_sample: 32,
        ..CALL_WAV_SPEC
    };
    let e = RecordingWriter::start(&dir.path().join("f.wav"), float).expect_err("spec");
    assert!(matches!(e, RecorderError::UnsupportedSpec { .. }));
    assert!(e.to_string().contains("f.wav"), "{e}");
}

#[test]
fn writer_error_names_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The parent "directory" is a file: creating it fails.
    let blocker = dir.path().join("blocker");
    fs::write(&blocker, b"x").expect("write");
    let e = RecordingWriter::start(&blocker.join("y.wav"), CALL_WAV_SPEC).expect_err("fails");
    assert!(matches!(e, RecorderError::Io { .. }));
    assert!(e.to_string().contains("blocker"), "{e}");
}

#[test]
fn writer_dropped_without_finish_still_finalises() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dropped.wav");
    let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
    h.try_send(chunk(0)).expect("queued");
    drop(h);
    for _ in 0..500 {
        if path.exists() {
            break;
        }
        std::thread::sleep(ms(10));
    }
    let (_, s) = reader_samples(&path);
    assert_eq!(s, chunk(0));
}

#[test]
fn crash_leaves_playable_file_repaired_at_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = recording_path(dir.path(), "t1", (2025, 1, 2), "crash-1");
    let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
    for i in 0..155 {
        h.try_send(chunk(i)).expect("queued"); // 3.1 s
        if i % 50 == 0 {
            h.barrier(); // keep within the queue
        }
    }
    h.barrier();
    h.crash(); // hound writer leaked: no finalise, buffered bytes lost
    let part = part_path(&path);
    assert!(!path.exists());
    // Even before repair, the header covers >= 2 s.
    let r = hound::WavReader::open(&part).expect("crashed .part is a WAV");
    assert!(
        r.duration() >= 16_000,
        "header covers {} frames",
        r.duration()
    );
    drop(r);

    let reports = repair_unfinished(dir.path());
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].path, part);
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
    assert!(*frames >= 24_000, "at least the 3 s patched: {frames}");
    assert!(*duration >= Duration::from_secs(3));
    assert_eq!(*discarded_bytes % 4, *discarded_bytes);
    let (_, s) = reader_samples(&path);
    assert_eq!(s.len() as u64, frames * 2);
    let expect: Vec<i16> = (0..155).flat_map(chunk).collect();
    assert_eq!(s[..], expect[..s.len()]);
    assert!(
        repair_unfinished(dir.path()).is_empty(),
        "nothing left to repair"
    );
    // Its metadata, read back as the restart links it to the record.
    let meta = describe_finished(&path).expect("describe");
    assert_eq!(meta.frames, *frames);
    assert_eq!(meta.duration, *duration);
    let bytes = fs::read(&path).expect("read");
    assert_eq!(meta.bytes, bytes.len() as u64);
    assert_eq!(meta.sha256, hex::encode(Sha256::digest(&bytes)));
    let missing = describe_finished(&dir.path().join("gone.wav")).expect_err("no file");
    assert!(missing.to_string().contains("gone.wav"), "{missing}");
}

const KILL_CHILD_ENV: &str = "RECORDER_KILL9_CHILD_DIR";

/// Child half of `kill_9_leaves_repairable_file`: records until killed.
/// Does nothing in a normal test run.
#[test]
fn kill_9_child() {
    let Ok(dir) = std::env::var(KILL_CHILD_ENV) else {
        return;
    };
    let path = Path::new(&dir).join("k9.wav");
    let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
    for i in 0..130 {
        h.try_send(chunk(i)).expect("queued");
    }
    h.barrier();
    println!("RECORDED");
    io::stdout().flush().ok();
    loop {
        std::thread::sleep(ms(100));
    }
}

#[cfg(unix)]
#[test]
fn kill_9_leaves_repairable_file() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    // Test name without the crate prefix, wherever this module lives.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let mut child = std::process::Command::new(exe)
        .args([&format!("{module}::kill_9_child"), "--exact", "--nocapture"])
        .env(KILL_CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let ready = io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("RECORDED"));
    child.kill().expect("SIGKILL"); // std kills with SIGKILL on Unix
    child.wait().expect("reap");
    assert!(ready, "child did not record");
    let reports = repair_unfinished(dir.path());
    assert_eq!(reports.len(), 1, "{reports:?}");
    let RepairOutcome::Repaired { wav, frames, .. } = &reports[0].outcome else {
        panic!("not repaired: {reports:?}");
    };
    assert!(*frames >= 16_000, "{frames} frames survive");
    let (_, s) = reader_samples(wav);
    assert_eq!(s[..320], chunk(0)[..]);
}

// ---- repair -----------------------------------------------------------

/// A hound-written file of `frames` frames whose header sizes were
/// never patched (as if killed before the first flush).
fn unpatched_part(path: &Path, frames: u32) -> Vec<u8> {
    let mut cursor = io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, CALL_WAV_SPEC).expect("writer");
        for i in 0..frames * 2 {
            w.write_sample(i as i16).expect("sample");
        }
        w.finalize().expect("finalize");
    }
    let mut bytes = cursor.into_inner();
    bytes[4..8].fill(0);
    bytes[40..44].fill(0);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, &bytes).expect("write");
    bytes
}

#[test]
fn repair_truncated_mid_sample() {
    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("a/b/mid.wav.part");
    let mut bytes = unpatched_part(&part, 1000);
    bytes.extend_from_slice(&[1, 2, 3]); // 1.5 samples of the next frame
    fs::write(&part, &bytes).expect("write");
    let reports = repair_unfinished(dir.path());
    let RepairOutcome::Repaired {
        wav,
        frames,
        discarded_bytes,
        duration,
    } = &reports[0].outcome
    else {
        panic!("{reports:?}");
    };
    assert_eq!((*frames, *discarded_bytes), (1000, 3));
    assert_eq!(*duration, ms(125));
    assert_eq!(wav, &dir.path().join("a/b/mid.wav"));
    assert!(!part.exists());
    let (_, s) = reader_samples(wav);
    assert_eq!(s.len(), 2000);
    assert_eq!(s[1999], 1999);
    assert_eq!(fs::metadata(wav).expect("stat").len(), 44 + 4000);
}

#[test]
fn repair_header_only_gives_valid_empty_wav() {
    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("h.wav.part");
    let bytes = unpatched_part(&part, 0);
    assert_eq!(bytes.len(), 44);
    let reports = repair_unfinished(dir.path());
    assert!(matches!(
        reports[0].outcome,
        RepairOutcome::Repaired { frames: 0, .. }
    ));
    let (spec, s) = reader_samples(&dir.path().join("h.wav"));
    assert_eq!(spec, CALL_WAV_SPEC);
    assert!(s.is_empty());
}

#[test]
fn repair_deletes_empty_and_header_truncated_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.wav.part");
    fs::write(&empty, b"").expect("write");
    let short = dir.path().join("short.wav.part");
    let head = unpatched_part(&short, 0);
    fs::write(&short, &head[..20]).expect("write");
    let noriff = dir.path().join("tiny.wav.part");
    fs::write(&noriff, b"RI").expect("write");
    let mut reports = repair_unfinished(dir.path());
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    let outcomes: Vec<_> = reports
        .iter()
        .map(|r| match r.outcome {
            RepairOutcome::Deleted(why) => Some(why),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            Some(DeleteReason::Empty),
            Some(DeleteReason::TruncatedHeader),
            Some(DeleteReason::TruncatedHeader)
        ]
    );
    assert!(!empty.exists() && !short.exists() && !noriff.exists());
}

#[test]
fn repair_leaves_foreign_and_conflicting_files_and_ignores_finished() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.wav.part");
    fs::write(&junk, vec![7u8; 1000]).expect("write");
    // A RIFF file whose chunks before "data" run past 4 KiB: left alone,
    // never deleted as "truncated".
    let odd = dir.path().join("odd.wav.part");
    let mut bytes = b"RIFF\0\0\0\0WAVEJUNK".to_vec();
    bytes.extend_from_slice(&10_000u32.to_le_bytes());
    bytes.resize(20_000, 0);
    fs::write(&odd, &bytes).expect("write");
    // A .part whose .wav already exists is not overwritten.
    let part = dir.path().join("dup.wav.part");
    unpatched_part(&part, 10);
    fs::write(dir.path().join("dup.wav"), b"finished").expect("write");
    // Not unfinished recordings: untouched.
    fs::write(dir.path().join("other.part"), b"x").expect("write");
    fs::write(dir.path().join(".wav.part"), b"").expect("write");
    let mut reports = repair_unfinished(dir.path());
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(reports.len(), 3, "{reports:?}");
    for r in &reports {
        let RepairOutcome::Failed(e) = &r.outcome else {
            panic!("{reports:?}");
        };
        let file = r.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let name = file.split('.').next().unwrap_or("");
        assert!(e.to_string().contains(name), "{e}");
    }
    assert!(junk.exists() && part.exists() && odd.exists());
    assert_eq!(
        fs::read(dir.path().join("dup.wav")).expect("read"),
        b"finished"
    );
    assert!(dir.path().join("other.part").exists());
}

#[test]
fn repair_of_missing_dir_reports_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reports = repair_unfinished(&dir.path().join("nope"));
    assert_eq!(reports.len(), 1);
    assert!(matches!(reports[0].outcome, RepairOutcome::Failed(_)));
}

// ---- paths ------------------------------------------------------------

#[test]
fn path_layout_and_chinese_tenant() {
    let p = recording_path(
        Path::new("/rec"),
        "北京市12345",
        (2025, 3, 7),
        "a84b4c76e66710@pc33.atlanta.com",
    );
    assert_eq!(
        p,
        Path::new("/rec/北京市12345/2025/03/07/a84b4c76e66710@pc33.atlanta.com.wav")
    );
}

#[test]
fn path_components_are_sanitised() {
    let root = Path::new("/rec");
    for (tenant, call) in [
        ("..", "../../etc/passwd"),
        ("a/b", "x\\y"),
        ("", ""),
        (".hidden", "c\u{0}d\n"),
        ("t\u{202E}vaw.exe", "id:1*?<>|\""),
    ] {
        let p = recording_path(root, tenant, (2025, 12, 31), call);
        let rel = p.strip_prefix(root).expect("under root");
        let parts: Vec<_> = rel.components().collect();
        assert_eq!(parts.len(), 5, "{p:?}");
        for c in &parts {
            let std::path::Component::Normal(s) = c else {
                panic!("non-normal component in {p:?}");
            };
            let s = s.to_str().expect("utf8");
            assert!(!s.starts_with('.'), "{p:?}");
            assert!(!s.chars().any(is_unsafe_char), "{p:?}");
        }
        assert!(p.to_string_lossy().ends_with(".wav"));
    }
    // Distinct ids that sanitise alike still get distinct files.
    let a = recording_path(root, "t", (2025, 1, 1), "a/b");
    let b = recording_path(root, "t", (2025, 1, 1), "a_b");
    let c = recording_path(root, "t", (2025, 1, 1), "a\\b");
    assert_ne!(a, b);
    assert_ne!(a, c);
    // Long names are cut on a character boundary.
    let long = "话".repeat(200);
    let p = recording_path(root, &long, (2025, 1, 1), "x");
    let tenant = p
        .strip_prefix(root)
        .expect("root")
        .iter()
        .next()
        .expect("tenant");
    assert!(tenant.len() <= MAX_COMPONENT_BYTES + 9);
}

// ---- timing -----------------------------------------------------------

/// Not asserted: prints the packet-path cost (aligner push + drain +
/// try_send) and the writer thread's cost per 20 ms stereo frame.
#[test]
#[allow(clippy::disallowed_methods)] // a benchmark reads the clock
fn timing_per_20ms_frame() {
    use std::time::Instant;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("timing.wav");
    let ticks = 3000u64; // 60 s of call
    let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
    let mut a = ChannelAligner::new(RATE);
    let caller = pkt(100);
    let agent = pkt(-100);
    let t0 = Instant::now();
    let mut packet_path = Duration::ZERO;
    for i in 0..ticks {
        let t = Instant::now();
        a.push(Channel::Caller, ms(20 * i), &caller);
        a.push(Channel::Agent, ms(20 * i), &agent);
        let f = a.drain_frames(ms((20 * (i + 1)).saturating_sub(100)));
        let _ = h.try_send(f.into_flattened());
        packet_path += t.elapsed();
        if i % 128 == 0 {
            h.barrier(); // stay within the queue: measure, don't drop
        }
    }
    let _ = h.try_send(a.drain_frames(ms(20 * ticks)).into_flattened());
    let meta = h.finish().expect("finish");
    let total = t0.elapsed();
    println!(
        "recorder timing: packet path (2 pushes + drain + try_send) {:?}/frame; \
             end to end incl. writer thread, finalise and sha256 {:?}/frame; \
             {} frames, {} dropped",
        packet_path / ticks as u32,
        total / ticks as u32,
        meta.frames,
        meta.dropped_chunks
    );
}
