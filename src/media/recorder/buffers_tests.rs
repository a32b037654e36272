//! Tests of the recording's buffers (issue 16 "Media at the limit": RSS
//! growth ≤ 64 KiB per call): the chunk a handle fills is its write
//! buffer (sent once full, the last partial one at the finish, lost with
//! the process on a crash), written chunks' buffers go to the worker's
//! bounded free list, the aligner's queues stay at what they are sized
//! for and come back to it after a timestamp jump, and draining in pieces
//! gives the frames draining at once does.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::format::part_path;
use super::pool::{FreeList, MAX_FREE, MAX_SPARE_SAMPLES};
use super::wav::ALAW_HEADER_LEN;
use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn start(dir: &Path, format: RecordingFormat) -> (std::path::PathBuf, RecordingHandle) {
    let path = recording_path_as(dir, "t", (2026, 12, 7), format.name(), format);
    let options = WriterOptions {
        format,
        ..WriterOptions::default()
    };
    let h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, options).expect("start");
    (path, h)
}

/// Appends `frames` stereo frames of A-law byte `b` (at most `room`).
fn frames_of(b: u8, frames: usize) -> impl FnMut(&mut Vec<u8>, usize) -> usize {
    let mut left = frames;
    move |chunk, room| {
        let n = left.min(room);
        chunk.extend(std::iter::repeat_n(b, 2 * n));
        left -= n;
        n
    }
}

fn data_on_disk(path: &Path) -> u64 {
    fs::metadata(part_path(path)).expect("part").len() - ALAW_HEADER_LEN
}

#[test]
fn a_wav_chunk_is_about_a_quarter_second_and_opus_sends_every_fill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, alaw) = start(dir.path(), RecordingFormat::Alaw);
    assert_eq!(alaw.chunk_samples(), 2 * 2048, "256 ms of 8 kHz stereo");
    let (_, pcm) = start(dir.path(), RecordingFormat::Pcm16);
    assert_eq!(pcm.chunk_samples(), 2 * 2048);
    let (_, opus) = start(dir.path(), RecordingFormat::Opus);
    assert_eq!(opus.chunk_samples(), 0);
    for h in [alaw, pcm, opus] {
        h.finish().expect("finish");
    }
}

#[test]
fn the_chunk_fills_to_its_size_before_it_is_written_and_the_finish_writes_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, mut h) = start(dir.path(), RecordingFormat::Alaw);
    // Two 100 ms drains (3,200 bytes) fit in a 4,096-byte chunk: nothing
    // is written yet.
    h.fill(frames_of(1, 800));
    h.fill(frames_of(2, 800));
    h.barrier();
    assert_eq!(data_on_disk(&path), 0);
    // The third fills it: one write of exactly the chunk, the rest kept.
    h.fill(frames_of(3, 800));
    h.barrier();
    assert_eq!(data_on_disk(&path), 4096);
    // A fill bigger than a chunk goes out in whole chunks (7,400 frames
    // so far: three).
    h.fill(frames_of(4, 5000));
    h.barrier();
    assert_eq!(data_on_disk(&path), 3 * 4096);
    let meta = h.finish().expect("finish");
    assert_eq!(meta.frames, 800 * 3 + 5000, "the last partial chunk too");
    assert_eq!(meta.dropped_chunks, 0);
    let bytes = fs::read(&path).expect("read");
    let data = &bytes[ALAW_HEADER_LEN as usize..];
    assert_eq!(data.len(), 2 * (800 * 3 + 5000));
    let runs = [(1u8, 800usize), (2, 800), (3, 800), (4, 5000)];
    let mut at = 0;
    for (b, n) in runs {
        assert!(data[at..at + 2 * n].iter().all(|&x| x == b), "run of {b}");
        at += 2 * n;
    }
}

#[test]
fn a_flush_sends_the_partial_chunk_and_an_empty_fill_sends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, mut h) = start(dir.path(), RecordingFormat::Alaw);
    h.fill(frames_of(7, 0));
    h.flush();
    h.barrier();
    assert_eq!(data_on_disk(&path), 0);
    h.fill(frames_of(7, 100));
    h.flush();
    h.barrier();
    assert_eq!(data_on_disk(&path), 200);
    let meta = h.finish().expect("finish");
    assert_eq!(meta.frames, 100);
}

#[test]
fn a_dropped_handle_writes_its_partial_chunk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, mut h) = start(dir.path(), RecordingFormat::Alaw);
    h.fill(frames_of(9, 300));
    drop(h);
    // The pool finishes an abandoned recording; wait for the rename.
    for _ in 0..500 {
        if path.exists() {
            break;
        }
        std::thread::sleep(ms(10));
    }
    let meta = describe_finished(&path).expect("finished");
    assert_eq!(meta.frames, 300);
}

#[test]
fn a_crash_loses_only_the_chunk_being_filled_and_repair_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, mut h) = start(dir.path(), RecordingFormat::Alaw);
    // 3.1 s in 100 ms drains: 12 whole chunks written (the header patched
    // at each second), 224 frames still being filled.
    for _ in 0..31 {
        h.fill(frames_of(5, 800));
    }
    h.barrier();
    h.crash();
    let reports = repair_unfinished(dir.path());
    assert_eq!(reports.len(), 1, "{reports:?}");
    let RepairOutcome::Repaired { frames, .. } = &reports[0].outcome else {
        panic!("not repaired: {reports:?}");
    };
    assert_eq!(*frames, 12 * 2048, "every chunk written");
    assert!(path.exists());
}

#[test]
fn pcm16_chunks_are_written_as_hound_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, mut h) = start(dir.path(), RecordingFormat::Pcm16);
    let mut next = 0i16;
    for _ in 0..7 {
        let mut left = 800;
        h.fill(|chunk: &mut Vec<i16>, room| {
            let n = room.min(left);
            for _ in 0..n {
                chunk.extend([next, -next]);
                next = next.wrapping_add(1);
            }
            left -= n;
            n
        });
    }
    let meta = h.finish().expect("finish");
    assert_eq!(meta.frames, 5600);
    let mut r = hound::WavReader::open(&path).expect("a WAV");
    assert_eq!(r.spec(), CALL_WAV_SPEC);
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    let want: Vec<i16> = (0..5600i16).flat_map(|v| [v, -v]).collect();
    assert_eq!(samples, want);
}

#[test]
fn the_free_list_bounds_its_buffers_and_hands_out_the_right_kind() {
    let free = FreeList::default();
    for _ in 0..MAX_FREE + 5 {
        free.give_back(Chunk::Alaw(Vec::with_capacity(4096)));
    }
    assert_eq!(free.len(), MAX_FREE, "no more than MAX_FREE kept");
    // Too big to keep (a test's or a voicemail's long chunk), or nothing.
    free.give_back(Chunk::Linear(Vec::with_capacity(MAX_SPARE_SAMPLES + 1)));
    assert_eq!(free.len(), MAX_FREE);
    assert!(free.take::<i16>().is_none(), "no linear buffer kept");
    let taken: Vec<u8> = free.take().expect("an A-law buffer");
    assert!(taken.is_empty() && taken.capacity() >= 4096);
    free.give_back(Chunk::Linear(vec![1, 2, 3]));
    let linear: Vec<i16> = free.take().expect("a linear buffer");
    assert!(linear.is_empty(), "emptied");
    let empty = FreeList::default();
    empty.give_back(Chunk::Alaw(Vec::new()));
    assert_eq!(empty.len(), 0, "a buffer with no room is not worth keeping");
}

#[test]
fn written_chunks_buffers_come_back_for_the_next_chunk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, mut h) = start(dir.path(), RecordingFormat::Alaw);
    h.fill(frames_of(1, 2048));
    h.barrier();
    // The written chunk's buffer is on the worker's free list (other
    // tests' recordings share the pool, so one of theirs may come first).
    let again: Vec<u8> = h.spare_buffer();
    assert!(again.is_empty());
    assert!(again.capacity() >= 1, "a written chunk's buffer");
    h.finish().expect("finish");
}

/// 20 ms packets of both sides as a relay places them: arrival every
/// 20 ms, a drain every 100 ms of what is 200 ms old; at `jump` the
/// caller's packets land 2 s ahead for a second, and a few come late.
fn relay_like<S: Sample>(
    aligner: &mut ChannelAligner<S>,
    packet: impl Fn(u64) -> Vec<S>,
    drain: &mut dyn FnMut(&mut ChannelAligner<S>, Duration),
    mut watch: impl FnMut(&ChannelAligner<S>),
) {
    let jump = 5_000;
    for t in (0..12_000u64).step_by(20) {
        let at = if (jump..jump + 1000).contains(&t) {
            t + 2000
        } else {
            t
        };
        aligner.push(Channel::Caller, ms(at), &packet(t));
        // Every seventh agent packet comes 260 ms late (partly dropped).
        let agent_at = if t % 140 == 0 {
            t.saturating_sub(260)
        } else {
            t
        };
        aligner.push(Channel::Agent, ms(agent_at), &packet(t + 1));
        if t % 100 == 80 {
            drain(aligner, ms((t + 20).saturating_sub(200)));
            watch(aligner);
        }
    }
    drain(aligner, ms(12_000));
}

#[test]
fn sized_queues_stay_at_their_hold_and_come_back_after_a_jump() {
    let hold = ms(400);
    let mut sized = ChannelAligner::new_alaw(8000).with_hold(hold);
    let mut plain = ChannelAligner::new_alaw(8000);
    let packet = |t: u64| vec![(t / 20 % 200) as u8 + 1; 160];
    let mut out_sized = Vec::new();
    let mut out_plain = Vec::new();
    let mut capacities = Vec::new();
    relay_like(
        &mut sized,
        packet,
        &mut |a, up_to| {
            // Drained in pieces of at most 4 KiB, as a chunk's room allows.
            while a.drain_at_most(up_to, 2048, &mut out_sized) == 2048 {}
        },
        |a| capacities.push(a.queue_capacity(Channel::Caller)),
    );
    relay_like(
        &mut plain,
        packet,
        &mut |a, up_to| {
            a.drain_into(up_to, &mut out_plain);
        },
        |_| {},
    );
    assert_eq!(out_sized, out_plain, "the same frames, sized or not");
    assert_eq!(sized.stats(), plain.stats());
    assert!(sized.stats().late_samples > 0, "late packets were dropped");
    let steady = 3200;
    assert_eq!(capacities[10], steady, "sized for 400 ms, not doubled");
    let most = capacities.iter().copied().max().unwrap_or(0);
    assert!(most > steady, "the jump grew the queue: {most}");
    assert_eq!(capacities.last().copied(), Some(steady), "and it came back");
    assert!(plain.queue_capacity(Channel::Caller) >= 4096);
}

#[test]
fn draining_in_pieces_gives_the_frames_draining_at_once_does() {
    let mut a = ChannelAligner::new(8000);
    let mut b = ChannelAligner::new(8000);
    for x in [&mut a, &mut b] {
        for i in 0..50u64 {
            x.push(Channel::Caller, ms(i * 20), &[i as i16; 160]);
            x.push(Channel::Agent, ms(i * 20 + 7), &[-(i as i16); 160]);
        }
        x.pause(ms(300));
        x.resume(ms(420));
    }
    let mut whole = Vec::new();
    a.drain_into(ms(1000), &mut whole);
    let mut pieces = Vec::new();
    let mut n = 0;
    while b.drain_at_most(ms(1000), 333, &mut pieces) > 0 {
        n += 1;
    }
    assert_eq!(n, 25, "8000 frames in pieces of 333");
    assert_eq!(pieces, whole);
    assert_eq!(a.stats(), b.stats());
    assert_eq!(b.drain_at_most(ms(1000), 10, &mut pieces), 0);
}

#[test]
fn a_stalled_disk_bounds_the_filled_chunks_by_the_audio_they_carry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = recording_path_as(
        dir.path(),
        "t",
        (2026, 12, 7),
        "stall",
        RecordingFormat::Alaw,
    );
    let options = WriterOptions {
        format: RecordingFormat::Alaw,
        queue_chunks: 8,
        ..WriterOptions::default()
    };
    let mut h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, options).expect("start");
    let release = h.stall();
    // 256 ms chunks count as two 100 ms ones: 4 fit, the rest are dropped
    // at once (if a send blocked, this test would hang).
    for _ in 0..6 {
        h.fill(frames_of(1, 2048));
    }
    assert_eq!(h.dropped_chunks(), 2);
    drop(release);
    let meta = h.finish().expect("finish");
    assert_eq!(meta.frames, 4 * 2048);
    assert_eq!(meta.dropped_chunks, 2);
}

#[test]
fn a_fill_of_the_other_kind_sends_the_chunk_being_filled_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, mut h) = start(dir.path(), RecordingFormat::Alaw);
    h.fill(frames_of(0x55, 100));
    // Linear samples into the A-law recording: the A-law chunk goes first,
    // whole, then the linear one (encoded by the writer) at the finish.
    h.fill(|chunk: &mut Vec<i16>, room| {
        let n = room.min(50);
        chunk.extend(std::iter::repeat_n(0i16, 2 * n));
        n
    });
    let meta = h.finish().expect("finish");
    assert_eq!(meta.frames, 150);
    let bytes = fs::read(&path).expect("read");
    let data = &bytes[ALAW_HEADER_LEN as usize..];
    assert!(data[..200].iter().all(|&b| b == 0x55));
    assert!(
        data[200..].iter().all(|&b| b == 0xD5),
        "linear 0 is A-law 0xD5"
    );
}
