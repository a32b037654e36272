//! The recording file's format and what the writer and the repair share:
//! the [`RecordingFormat`] (`[recording] format`: PCM16 or A-law WAV, Ogg
//! Opus; issue 16 item 3), the WAV spec (8 kHz 16-bit stereo), the `.part`
//! name of a file still being written, sample index ↔ media time, a
//! durable rename and the file's SHA-256 (call recording issue: "metadata
//! (path, duration, bytes, sha256) handed to the call").

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::{io_err, RecorderError};

/// The recording format: 8 kHz, 16-bit signed PCM, stereo (caller left,
/// agent/other party right).
pub const CALL_WAV_SPEC: hound::WavSpec = hound::WavSpec {
    channels: 2,
    sample_rate: 8000,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// How a call's recording is stored (`[recording] format`, issue 16 item
/// 3). Every format is 8 kHz stereo, caller left, other party right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingFormat {
    /// WAV, 16-bit linear PCM (format tag 1): 32 kB/s.
    #[default]
    Pcm16,
    /// WAV, G.711 A-law (format tag 6, 8 bits a sample): 16 kB/s, half of
    /// `pcm16`, the wire's own quantisation.
    Alaw,
    /// Ogg Opus (RFC 7845), SILK narrowband at
    /// [`OPUS_BITRATE_BPS`](super::OPUS_BITRATE_BPS): the archive format.
    Opus,
}

impl RecordingFormat {
    /// Every format, the default first.
    pub const ALL: [RecordingFormat; 3] = [
        RecordingFormat::Pcm16,
        RecordingFormat::Alaw,
        RecordingFormat::Opus,
    ];

    /// The name in `[recording] format`.
    pub fn name(self) -> &'static str {
        match self {
            RecordingFormat::Pcm16 => "pcm16",
            RecordingFormat::Alaw => "alaw",
            RecordingFormat::Opus => "opus",
        }
    }

    /// The finished file's extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            RecordingFormat::Pcm16 | RecordingFormat::Alaw => "wav",
            RecordingFormat::Opus => "opus",
        }
    }

    /// The media type a download is served with (RFC 7845 §9 for Ogg Opus).
    pub fn content_type(self) -> &'static str {
        match self {
            RecordingFormat::Pcm16 | RecordingFormat::Alaw => "audio/wav",
            RecordingFormat::Opus => "audio/ogg",
        }
    }
}

/// The media type of a finished recording by its extension (`.opus`:
/// `audio/ogg`, anything else `audio/wav`).
pub fn content_type_of(path: &Path) -> &'static str {
    if is_ogg_path(path) {
        RecordingFormat::Opus.content_type()
    } else {
        RecordingFormat::Pcm16.content_type()
    }
}

/// Whether a recording's path (finished, `.part` or `.sealing`) is an Ogg
/// Opus file rather than a WAV.
pub(super) fn is_ogg_path(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(PART_SUFFIX).unwrap_or(name);
    name.ends_with(".opus")
}

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
