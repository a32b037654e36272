//! Repair at startup (call recording issue: "a crash or `kill -9` leaves a
//! playable file: … any unfinished file is repaired at the next start"):
//! every `*.wav.part` gets header sizes that cover the whole frames on disk
//! and is renamed to `.wav`; one without audio is deleted
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
use super::format::{index_to_time, sync_parent_dir};
use super::seal::{delete, is_complete_sealed, seal_finished};
use crate::media::at_rest::{file_is_sealed, SealingKey, SEALING_SUFFIX};

/// Why an unfinished file was deleted rather than repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// The file was empty.
    Empty,
    /// The file ended inside the WAV header: it held no audio.
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
        /// The `.wav` it now is.
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

/// Repairs every unfinished recording (`*.wav.part`) under `dir`, at any
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

fn is_unfinished_sealing(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(SEALING_SUFFIX))
        .is_some_and(|n| n.len() > ".wav".len() && n.ends_with(".wav"))
}

fn is_unfinished_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() > ".wav.part".len() && n.ends_with(".wav.part"))
}

/// Header facts needed to repair a WAV file.
struct WavLayout {
    /// Offset of the first data byte.
    data_offset: u64,
    /// Bytes per frame.
    block_align: u64,
    /// Frames per second.
    sample_rate: u32,
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// Parses the RIFF header in `head` (the first bytes of the file, all of
/// it if `whole_file`): `Ok(None)` if the file ends before the data chunk
/// starts (truncated header), `Err` if it is not a WAV file this recorder
/// can repair.
fn parse_layout(head: &[u8], whole_file: bool) -> Result<Option<WavLayout>, String> {
    let truncated = || {
        if whole_file {
            Ok(None)
        } else {
            Err(format!("no data chunk in the first {} bytes", head.len()))
        }
    };
    if head.len() < 12 {
        return if b"RIFF".starts_with(&head[..head.len().min(4)]) {
            Ok(None)
        } else {
            Err("not a RIFF file".into())
        };
    }
    if &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut pos = 12usize;
    let mut fmt: Option<(u16, u32)> = None; // (block_align, sample_rate)
    loop {
        let (Some(id), Some(size)) = (head.get(pos..pos + 4), le_u32(head, pos + 4)) else {
            return truncated();
        };
        let body = pos + 8;
        if id == b"data" {
            let Some((block_align, sample_rate)) = fmt else {
                return Err("data chunk before fmt chunk".into());
            };
            if block_align == 0 || sample_rate == 0 {
                return Err("fmt chunk has zero block align or sample rate".into());
            }
            return Ok(Some(WavLayout {
                data_offset: body as u64,
                block_align: u64::from(block_align),
                sample_rate,
            }));
        }
        if id == b"fmt " {
            let (Some(rate), Some(align)) = (le_u32(head, body + 4), le_u16(head, body + 12))
            else {
                return truncated();
            };
            fmt = Some((align, rate));
        }
        // Chunks are word-aligned.
        let Some(next) = usize::try_from(size)
            .ok()
            .and_then(|s| body.checked_add(s)?.checked_add(s & 1))
        else {
            return Err("chunk size out of range".into());
        };
        pos = next;
    }
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
    match key {
        Some(key) => {
            seal_finished(part, &wav, key)?;
        }
        None => {
            fs::rename(part, &wav).map_err(io_err(&wav, "rename from .part"))?;
            sync_parent_dir(&wav);
        }
    }
    let frames = data_len / layout.block_align;
    Ok(RepairOutcome::Repaired {
        duration: index_to_time(frames, layout.sample_rate),
        wav,
        frames,
        discarded_bytes: discarded,
    })
}
