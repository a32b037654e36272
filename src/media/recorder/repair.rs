//! Repair at startup (call recording issue: "a crash or `kill -9` leaves a
//! playable file: … any unfinished file is repaired at the next start"):
//! every `*.wav.part` (PCM16 or A-law) gets header sizes that cover the
//! whole frames on disk and is renamed to `.wav`; every `*.opus.part` (Ogg
//! Opus, issue 16 item 3) is cut after its last whole page (CRC checked),
//! that page is marked end-of-stream, and it is renamed to `.opus`; one
//! without audio is deleted
//! ([`repair_unfinished`], one [`RepairReport`] per file). With a key
//! ([`repair_unfinished_with`], issue 14 §6) the repaired file is sealed
//! instead of renamed, a `.part` whose sealed `.wav` is complete is a
//! leftover plaintext and is deleted, and a `.wav.sealing` (a sealing cut
//! short) is deleted whatever the key.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{io_err, RecorderError};
use super::format::{index_to_time, is_ogg_path, sync_parent_dir};
use super::ogg::{scan, FLAG_EOS};
use super::seal::{delete, is_complete_sealed, seal_finished};
use super::wav::parse_layout;
use crate::media::at_rest::{file_is_sealed, SealingKey, SEALING_SUFFIX};

/// Why an unfinished file was deleted rather than repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// The file was empty.
    Empty,
    /// The file ended inside the WAV header (or before an Ogg Opus file's
    /// first audio page): it held no audio.
    TruncatedHeader,
    /// A plaintext left beside its complete sealed `.wav` (a crash
    /// between sealing and deleting it).
    SealedCopyExists,
    /// A `.wav.sealing`: a sealed copy cut short (its plaintext is still
    /// there and is repaired and sealed again).
    UnfinishedSealing,
}

/// What [`repair_unfinished`] did with one file.
#[derive(Debug)]
pub enum RepairOutcome {
    /// The header now covers the audio on disk and the file was renamed.
    Repaired {
        /// The finished file it now is (`.wav`, or `.opus` for Ogg Opus).
        wav: PathBuf,
        /// Whole frames of audio kept.
        frames: u64,
        /// Their length.
        duration: Duration,
        /// Trailing bytes of an unfinished frame that were cut off.
        discarded_bytes: u64,
    },
    /// The file held no audio and was deleted.
    Deleted(DeleteReason),
    /// The file could not be repaired and was left as it is.
    Failed(RecorderError),
}

/// One unfinished recording found by [`repair_unfinished`].
#[derive(Debug)]
pub struct RepairReport {
    /// The `.part` file found.
    pub path: PathBuf,
    /// What was done with it.
    pub outcome: RepairOutcome,
    /// Whether the repaired file was sealed (encrypted at rest).
    pub sealed: bool,
}

/// Repairs every unfinished recording (`*.wav.part`, `*.opus.part`) under `dir`, at any
/// depth (symbolic links are not followed). Run it at startup **before any
/// recording starts**: a `.part` being written would be taken for a crashed
/// one. Finished `.wav` files are not read. Directories that cannot be read
/// are reported as `Failed`.
pub fn repair_unfinished(dir: &Path) -> Vec<RepairReport> {
    repair_unfinished_with(dir, None)
}

/// [`repair_unfinished`], sealing what it repairs with `key` (see the
/// module docs).
pub fn repair_unfinished_with(dir: &Path, key: Option<&SealingKey>) -> Vec<RepairReport> {
    let mut reports = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                reports.push(RepairReport {
                    outcome: RepairOutcome::Failed(io_err(&d, "read directory")(e)),
                    path: d,
                    sealed: false,
                });
                continue;
            }
        };
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let p = entry.path();
            if kind.is_dir() {
                stack.push(p);
            } else if kind.is_file() && is_unfinished_name(&p) {
                files.push(p);
            } else if kind.is_file() && is_unfinished_sealing(&p) {
                let outcome = match delete(&p, "delete unfinished sealed copy") {
                    Ok(()) => RepairOutcome::Deleted(DeleteReason::UnfinishedSealing),
                    Err(e) => RepairOutcome::Failed(e),
                };
                tracing::info!(path = %p.display(), "deleted a sealed copy cut short");
                reports.push(RepairReport {
                    path: p,
                    outcome,
                    sealed: false,
                });
            }
        }
        files.sort();
        for p in files {
            let outcome = repair_one(&p, key);
            let sealed = key.is_some() && matches!(outcome, RepairOutcome::Repaired { .. });
            match &outcome {
                RepairOutcome::Repaired { wav, frames, .. } => {
                    tracing::info!(path = %wav.display(), frames, "repaired unfinished recording")
                }
                RepairOutcome::Deleted(reason) => {
                    tracing::info!(path = %p.display(), ?reason, "deleted unfinished recording without audio")
                }
                RepairOutcome::Failed(e) => {
                    tracing::warn!(error = %e, "could not repair unfinished recording")
                }
            }
            reports.push(RepairReport {
                path: p,
                outcome,
                sealed,
            });
        }
    }
    reports
}

/// The extensions of finished recordings (every format's).
const EXTENSIONS: [&str; 2] = [".wav", ".opus"];

fn is_recording_name(name: &str) -> bool {
    EXTENSIONS
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext))
}

fn is_unfinished_sealing(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(SEALING_SUFFIX))
        .is_some_and(is_recording_name)
}

fn is_unfinished_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".part"))
        .is_some_and(is_recording_name)
}

fn repair_one(part: &Path, key: Option<&SealingKey>) -> RepairOutcome {
    match try_repair(part, key) {
        Ok(outcome) => outcome,
        Err(e) => RepairOutcome::Failed(e),
    }
}

fn try_repair(part: &Path, key: Option<&SealingKey>) -> Result<RepairOutcome, RecorderError> {
    let wav = part.with_extension(""); // strips ".part"
    if let Some(key) = key {
        if file_is_sealed(&wav).unwrap_or(false) && is_complete_sealed(&wav, key) {
            delete(part, "delete plaintext already sealed")?;
            sync_parent_dir(part);
            return Ok(RepairOutcome::Deleted(DeleteReason::SealedCopyExists));
        }
    }
    let len = fs::metadata(part).map_err(io_err(part, "stat"))?.len();
    if len == 0 {
        fs::remove_file(part).map_err(io_err(part, "delete empty file"))?;
        return Ok(RepairOutcome::Deleted(DeleteReason::Empty));
    }
    if is_ogg_path(part) {
        return repair_ogg(part, &wav, len, key);
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(part)
        .map_err(io_err(part, "open"))?;
    const HEAD_MAX: u64 = 4096;
    let mut head = Vec::with_capacity(4096);
    (&mut file)
        .take(HEAD_MAX)
        .read_to_end(&mut head)
        .map_err(io_err(part, "read header"))?;
    let layout = match parse_layout(&head, len <= HEAD_MAX) {
        Ok(Some(l)) => l,
        Ok(None) => {
            drop(file);
            fs::remove_file(part).map_err(io_err(part, "delete truncated file"))?;
            return Ok(RepairOutcome::Deleted(DeleteReason::TruncatedHeader));
        }
        Err(reason) => {
            return Err(RecorderError::Unrepairable {
                path: part.to_path_buf(),
                reason,
            })
        }
    };
    if len < layout.data_offset {
        drop(file);
        fs::remove_file(part).map_err(io_err(part, "delete truncated file"))?;
        return Ok(RepairOutcome::Deleted(DeleteReason::TruncatedHeader));
    }
    let available = len - layout.data_offset;
    // RIFF sizes are u32: the data may not exceed u32::MAX minus the header.
    let cap = u64::from(u32::MAX) - (layout.data_offset - 8);
    let data_len = {
        let d = available.min(cap);
        d - d % layout.block_align
    };
    let discarded = len - layout.data_offset - data_len;
    if fs::symlink_metadata(&wav).is_ok() {
        return Err(RecorderError::AlreadyExists { path: wav });
    }
    let riff_size = u32::try_from(layout.data_offset - 8 + data_len).unwrap_or(u32::MAX);
    let data_size = u32::try_from(data_len).unwrap_or(u32::MAX);
    let write = |file: &mut File, at: u64, value: u32| -> io::Result<()> {
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&value.to_le_bytes())
    };
    write(&mut file, 4, riff_size).map_err(io_err(part, "patch RIFF size"))?;
    write(&mut file, layout.data_offset - 4, data_size).map_err(io_err(part, "patch data size"))?;
    if discarded > 0 {
        file.set_len(layout.data_offset + data_len)
            .map_err(io_err(part, "truncate partial frame"))?;
    }
    file.sync_all().map_err(io_err(part, "fsync"))?;
    drop(file);
    put_in_place(part, &wav, key)?;
    let frames = data_len / layout.block_align;
    Ok(RepairOutcome::Repaired {
        duration: index_to_time(frames, layout.sample_rate),
        wav,
        frames,
        discarded_bytes: discarded,
    })
}

/// The repaired `part` becomes `target`: renamed, or sealed with `key`.
fn put_in_place(part: &Path, target: &Path, key: Option<&SealingKey>) -> Result<(), RecorderError> {
    match key {
        Some(key) => {
            seal_finished(part, target, key)?;
        }
        None => {
            fs::rename(part, target).map_err(io_err(target, "rename from .part"))?;
            sync_parent_dir(target);
        }
    }
    Ok(())
}

/// An Ogg Opus `.part`: kept up to its last whole page with a good CRC
/// (each page holds whole packets, so every kept page decodes), that page
/// marked end-of-stream (its granule already counts the audio up to it);
/// deleted if no audio page survived.
fn repair_ogg(
    part: &Path,
    target: &Path,
    len: u64,
    key: Option<&SealingKey>,
) -> Result<RepairOutcome, RecorderError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(part)
        .map_err(io_err(part, "open"))?;
    let summary = scan(&mut io::BufReader::new(&mut file)).map_err(io_err(part, "read pages"))?;
    // The OpusHead and OpusTags pages come first: audio starts at page 3.
    let (Some((_, _, rate)), Some((last_at, last_len))) = (summary.head, summary.last_page) else {
        return delete_unplayable(part, file);
    };
    if summary.pages < 3 {
        return delete_unplayable(part, file);
    }
    if fs::symlink_metadata(target).is_ok() {
        return Err(RecorderError::AlreadyExists {
            path: target.to_path_buf(),
        });
    }
    if !summary.ended {
        file.seek(SeekFrom::Start(last_at))
            .map_err(io_err(part, "seek to the last page"))?;
        let mut page = vec![0u8; usize::try_from(last_len).unwrap_or(0)];
        file.read_exact(&mut page)
            .map_err(io_err(part, "read the last page"))?;
        let read =
            super::ogg::read_page(&mut &page[..]).map_err(io_err(part, "read the last page"))?;
        let Some(read) = read else {
            return Err(RecorderError::Unrepairable {
                path: part.to_path_buf(),
                reason: "the last page changed while repairing".into(),
            });
        };
        let header = read.header_with_flags(FLAG_EOS);
        file.seek(SeekFrom::Start(last_at))
            .and_then(|_| file.write_all(&header))
            .map_err(io_err(part, "mark the last page end-of-stream"))?;
    }
    if summary.whole_bytes < len {
        file.set_len(summary.whole_bytes)
            .map_err(io_err(part, "truncate after the last whole page"))?;
    }
    file.sync_all().map_err(io_err(part, "fsync"))?;
    drop(file);
    put_in_place(part, target, key)?;
    let frames = summary.frames_at(rate);
    Ok(RepairOutcome::Repaired {
        duration: index_to_time(frames, rate),
        wav: target.to_path_buf(),
        frames,
        discarded_bytes: len - summary.whole_bytes,
    })
}

fn delete_unplayable(part: &Path, file: File) -> Result<RepairOutcome, RecorderError> {
    drop(file);
    fs::remove_file(part).map_err(io_err(part, "delete truncated file"))?;
    Ok(RepairOutcome::Deleted(DeleteReason::TruncatedHeader))
}
