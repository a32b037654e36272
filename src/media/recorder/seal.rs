//! Finished recordings sealed at rest (issue 14 §6): with a key, the
//! writer's finished `<name>.wav.part` (header final, fsynced) is sealed
//! into `<name>.wav` and the plaintext deleted ([`seal_finished`]); a
//! sealed file is read back through
//! [`SealedFile`](crate::media::at_rest::SealedFile)
//! ([`describe_sealed`]). An Ogg Opus recording (`<name>.opus`) is sealed
//! the same way: the sealing does not look inside. See
//! [`crate::media::at_rest`] for the format.
//!
//! Crash safety: the sealed copy is written as `<name>.wav.sealing` and
//! renamed to `<name>.wav` only when complete and fsynced, then the `.part`
//! is deleted. A crash before the rename leaves the `.part` (repaired and
//! sealed at the next start; the `.sealing` is deleted), a crash after it
//! leaves a complete sealed `.wav` beside its `.part` (the `.part` is
//! deleted at the next start).

use std::fs;
use std::io::BufReader;
use std::path::Path;

use super::error::{io_err, RecorderError};
use super::format::{index_to_time, sync_parent_dir};
use super::writer::{read_length, RecordingMeta};
use crate::media::at_rest::{seal_file, SealedFile, SealingKey};

/// Seals the finished plaintext `part` into `path` and deletes `part`;
/// returns the plaintext WAV's size and SHA-256 (what a download
/// delivers). Refuses to overwrite `path`.
pub(super) fn seal_finished(
    part: &Path,
    path: &Path,
    key: &SealingKey,
) -> Result<(u64, String), RecorderError> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(RecorderError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }
    let sealed = seal_file(key, part, path).map_err(|source| RecorderError::Seal {
        path: path.to_path_buf(),
        source,
    })?;
    sync_parent_dir(path);
    // The sealed file is in place: the recording is safe whatever happens
    // to the plaintext now. One left behind is deleted at the next start.
    match fs::remove_file(part) {
        Ok(()) => sync_parent_dir(part),
        Err(e) => tracing::warn!(
            path = %part.display(),
            error = %e,
            "cannot delete a recording's plaintext after encrypting it; it is deleted at the next start"
        ),
    }
    Ok((sealed.plain_bytes, sealed.plain_sha256))
}

/// The metadata of a sealed finished recording: length from the WAV
/// header (or the Ogg pages) inside, size and SHA-256 of the plaintext WAV (every chunk
/// authenticated on the way).
pub(super) fn describe_sealed(
    path: &Path,
    key: &SealingKey,
) -> Result<RecordingMeta, RecorderError> {
    let seal_err = |source| RecorderError::Seal {
        path: path.to_path_buf(),
        source,
    };
    let mut sealed = SealedFile::open(path, key).map_err(seal_err)?;
    let (frames, rate) = read_length(path, &mut BufReader::new(&mut sealed))?;
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    let len = sealed.plain_len();
    sealed
        .for_range(0, len, |piece| {
            hash.update(piece);
            Ok(())
        })
        .map_err(seal_err)?;
    Ok(RecordingMeta {
        path: path.to_path_buf(),
        duration: index_to_time(frames, rate),
        frames,
        bytes: len,
        sha256: hex::encode(hash.finalize()),
        dropped_chunks: 0,
    })
}

/// Whether `wav` is a complete sealed copy (its last chunk authenticates
/// under `key`): then a `.part` beside it is a leftover plaintext.
pub(super) fn is_complete_sealed(wav: &Path, key: &SealingKey) -> bool {
    SealedFile::open(wav, key).is_ok()
}

/// Deletes a file (a leftover), naming it in the error.
pub(super) fn delete(path: &Path, op: &'static str) -> Result<(), RecorderError> {
    fs::remove_file(path).map_err(io_err(path, op))
}
