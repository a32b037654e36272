//! The recording file's format and what the writer and the repair share:
//! the [`RecordingFormat`] (from `kind`), the WAV spec (8 kHz 16-bit stereo), the `.part`
//! name of a file still being written, sample index ↔ media time, a
//! durable rename and the file's SHA-256 (call recording issue: "metadata
//! (path, duration, bytes, sha256) handed to the call").

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::{io_err, RecorderError};
pub(super) use super::kind::is_ogg_path;
pub use super::kind::{content_type_of, RecordingFormat};

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

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Sample index (at `rate` Hz) of a media time, rounded to the nearest
/// sample so arrival-time jitter below half a sample does not shift audio.
pub(super) fn time_to_index(t: Duration, rate: u32) -> u64 {
    let scaled = t.as_nanos() * u128::from(rate) + NANOS_PER_SEC / 2;
    u64::try_from(scaled / NANOS_PER_SEC).unwrap_or(u64::MAX)
}

/// Media time of a sample index at `rate` Hz (exact to the nanosecond, floor).
pub(super) fn index_to_time(index: u64, rate: u32) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let rate = u64::from(rate);
    let secs = index / rate;
    let rem = u128::from(index % rate);
    let nanos = rem * NANOS_PER_SEC / u128::from(rate);
    // `rem < rate`, so `nanos < 1e9`: the conversion cannot fail.
    Duration::from_secs(secs) + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

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
