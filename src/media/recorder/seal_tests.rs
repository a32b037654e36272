//! Recordings sealed at rest (issue 14 §6): the writer seals the finished
//! file, repair seals what it repairs and clears what a crash left around a
//! sealing, and the metadata describe the WAV inside.

use std::fs;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::format::part_path;
use super::*;
use crate::media::at_rest::{file_is_sealed, sealing_path, SealedFile, SealingKey};

fn key() -> SealingKey {
    SealingKey::from_bytes([0x5a; 32])
}

fn sealed_options() -> WriterOptions {
    WriterOptions {
        seal: Some(key()),
        ..WriterOptions::default()
    }
}

/// 20 ms of stereo audio: caller `v`, agent `-v`.
fn frames(v: i16) -> Vec<i16> {
    (0..160).flat_map(|_| [v, -v]).collect()
}

fn plaintext(path: &Path) -> Vec<u8> {
    let mut f = SealedFile::open(path, &key()).expect("opens with the key");
    let mut out = Vec::new();
    f.read_to_end(&mut out).expect("every chunk authenticates");
    out
}

#[test]
fn a_finished_recording_is_sealed_and_its_plaintext_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = recording_path(dir.path(), "t", (2026, 12, 6), "sealed-1");
    let h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, sealed_options()).expect("start");
    for i in 0..250 {
        h.try_send(frames(i)).expect("queued"); // 5 s, several 64 KiB chunks
        if i % 50 == 0 {
            h.barrier();
        }
    }
    let meta = h.finish().expect("finish");
    assert_eq!(meta.path, path);
    assert!(!part_path(&path).exists(), "no plaintext .part left");
    assert!(!sealing_path(&path).exists());
    let on_disk = fs::read(&path).expect("read");
    assert!(file_is_sealed(&path).expect("read"));
    // The metadata are the WAV's (what a download delivers).
    let wav = plaintext(&path);
    assert_eq!(&wav[..4], b"RIFF");
    // None of the WAV is on disk in the clear: neither its header nor any
    // 32-byte run of its audio (a 4-byte "RIFF" can turn up in ciphertext
    // by chance, once in ~10^4 files this size; 32 bytes cannot).
    assert!(!on_disk.starts_with(b"RIFF"));
    for at in [0, 44, 1_000, 70_000, wav.len() - 32] {
        let run = &wav[at..at + 32];
        assert!(
            !on_disk.windows(32).any(|w| w == run),
            "plaintext bytes {at}..{} found on disk",
            at + 32
        );
    }
    assert_eq!(meta.bytes, wav.len() as u64);
    assert_eq!(meta.sha256, hex::encode(Sha256::digest(&wav)));
    assert_eq!(meta.frames, 250 * 160);
    let reader = hound::WavReader::new(std::io::Cursor::new(&wav)).expect("a WAV inside");
    let samples: Vec<i16> = reader.into_samples().map(|s| s.expect("sample")).collect();
    let expect: Vec<i16> = (0..250).flat_map(frames).collect();
    assert_eq!(samples, expect);
    // Read back as the restart links a recording: the same facts.
    assert_eq!(
        describe_finished_with(&path, Some(&key())).expect("describe"),
        meta
    );
    let no_key = describe_finished(&path).expect_err("sealed, no key");
    assert!(
        no_key
            .to_string()
            .contains("no [recording] encryption_key_file"),
        "{no_key}"
    );
    let other = SealingKey::from_bytes([1; 32]);
    let wrong = describe_finished_with(&path, Some(&other)).expect_err("wrong key");
    assert!(wrong.to_string().contains("encrypted under key"), "{wrong}");
}

#[test]
fn a_crashed_recording_is_repaired_then_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = recording_path(dir.path(), "t", (2026, 12, 6), "crash-sealed");
    let h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, sealed_options()).expect("start");
    for i in 0..150 {
        h.try_send(frames(i)).expect("queued");
        if i % 50 == 0 {
            h.barrier();
        }
    }
    h.barrier();
    h.crash();
    let part = part_path(&path);
    assert!(
        part.exists(),
        "the crash leaves plaintext until the next start"
    );
    let reports = repair_unfinished_with(dir.path(), Some(&key()));
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].sealed);
    let RepairOutcome::Repaired { frames: kept, .. } = reports[0].outcome else {
        panic!("{reports:?}");
    };
    assert!(kept >= 16_000, "at least the 2 s patched: {kept}");
    assert!(!part.exists());
    assert!(file_is_sealed(&path).expect("read"));
    let wav = plaintext(&path);
    let reader = hound::WavReader::new(std::io::Cursor::new(&wav)).expect("a WAV inside");
    assert_eq!(u64::from(reader.duration()), kept);
    let meta = describe_finished_with(&path, Some(&key())).expect("describe");
    assert_eq!(meta.frames, kept);
    assert_eq!(meta.sha256, hex::encode(Sha256::digest(&wav)));
}

#[test]
fn leftovers_of_a_sealing_cut_short_are_cleared_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Finished and sealed, but the plaintext .part was not deleted yet.
    let done = recording_path(dir.path(), "t", (2026, 12, 6), "done");
    let h = RecordingWriter::start_with(&done, CALL_WAV_SPEC, sealed_options()).expect("start");
    h.try_send(frames(3)).expect("queued");
    h.finish().expect("finish");
    let sealed_before = fs::read(&done).expect("read");
    fs::write(part_path(&done), b"RIFF plaintext left behind").expect("write");
    // A sealing cut short: .part (plaintext, finished) and a partial .sealing.
    let cut = recording_path(dir.path(), "t", (2026, 12, 6), "cut");
    let h = RecordingWriter::start(&cut, CALL_WAV_SPEC).expect("plain start");
    h.try_send(frames(4)).expect("queued");
    h.finish().expect("finish");
    fs::rename(&cut, part_path(&cut)).expect("back to .part");
    fs::write(sealing_path(&cut), b"HLSEALED half").expect("write");

    let mut reports = repair_unfinished_with(dir.path(), Some(&key()));
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    let outcomes: Vec<String> = reports
        .iter()
        .map(|r| {
            format!(
                "{} {:?}",
                r.path.file_name().unwrap_or_default().to_string_lossy(),
                r.outcome
            )
        })
        .collect();
    assert_eq!(reports.len(), 3, "{outcomes:?}");
    assert!(
        matches!(
            reports[0].outcome,
            RepairOutcome::Repaired { frames: 160, .. }
        ),
        "{outcomes:?}"
    );
    assert!(
        matches!(
            reports[1].outcome,
            RepairOutcome::Deleted(DeleteReason::UnfinishedSealing)
        ),
        "{outcomes:?}"
    );
    assert!(
        matches!(
            reports[2].outcome,
            RepairOutcome::Deleted(DeleteReason::SealedCopyExists)
        ),
        "{outcomes:?}"
    );
    assert!(!part_path(&done).exists() && !part_path(&cut).exists());
    assert!(!sealing_path(&cut).exists());
    assert_eq!(
        fs::read(&done).expect("read"),
        sealed_before,
        "the sealed copy untouched"
    );
    assert!(file_is_sealed(&cut).expect("read"));
    assert_eq!(&plaintext(&cut)[..4], b"RIFF");
    // Without a key nothing sealed is touched: the .part stays beside it.
    fs::write(part_path(&done), plaintext(&done)).expect("write");
    let reports = repair_unfinished(dir.path());
    assert!(
        matches!(
            reports[0].outcome,
            RepairOutcome::Failed(RecorderError::AlreadyExists { .. })
        ),
        "{reports:?}"
    );
}
