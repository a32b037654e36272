//! The recording file's format and what the writer and the repair share:
//! the [`RecordingFormat`] (from `kind`), the WAV spec (8 kHz 16-bit
//! stereo), the `.part` name of a file still being written, sample index ↔
//! media time (from `media_time`), a durable rename and the file's SHA-256
//! (call recording issue: "metadata (path, duration, bytes, sha256) handed
//! to the call").

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{io_err, RecorderError};
pub(super) use super::kind::is_ogg_path;
pub use super::kind::{content_type_of, RecordingFormat};
pub(super) use super::media_time::{index_to_time, time_to_index};

/// The recording format: 8 kHz, 16-bit signed PCM, stereo (caller left,
/// agent/other party right).
pub const CALL_WAV_SPEC: hound::WavSpec = hound::WavSpec {
    channels: 2,
    sample_rate: 8000,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// Suffix of a recording still being written (or left by a crash).
pub const PART_SUFFIX: &str = ".part";

/// `path` + [`PART_SUFFIX`].
pub(super) fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}

/// Makes a rename durable (best effort: not every platform can fsync a
/// directory).
pub(super) fn sync_parent_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            if let Err(e) = d.sync_all() {
                tracing::debug!(dir = %dir.display(), error = %e, "directory fsync failed");
            }
        }
    }
}

/// Size and lowercase-hex SHA-256 of a file.
pub(super) fn hash_file(path: &Path) -> Result<(u64, String), RecorderError> {
    let mut f = File::open(path).map_err(io_err(path, "open for hashing"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path, "read for hashing")(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}
