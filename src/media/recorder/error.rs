//! The recorder's errors ([`RecorderError`]); each names the file it
//! concerns.

use std::io;
use std::path::{Path, PathBuf};

/// Errors of the recorder; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// The WAV spec is not one this recorder writes (16-bit integer PCM).
    #[error("recording {}: unsupported WAV format: {reason}", path.display())]
    UnsupportedSpec {
        /// The recording's path.
        path: PathBuf,
        /// What is wrong with the spec.
        reason: &'static str,
    },
    /// The recording (or its unfinished `.part`) already exists; recordings
    /// are never overwritten.
    #[error("recording {}: already exists, refusing to overwrite", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file-system operation failed.
    #[error("recording {}: {op}: {source}", path.display())]
    Io {
        /// The file operated on.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// hound failed to write the WAV file.
    #[error("recording {}: WAV {op}: {source}", path.display())]
    Wav {
        /// The file being written.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: hound::Error,
    },
    /// The Opus encoder refused (issue 16 item 3).
    #[error("recording {}: Ogg Opus {op}: {reason}", path.display())]
    Opus {
        /// The file being written.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The encoder's reason.
        reason: String,
    },
    /// A finished file that is not a recording this recorder reads.
    #[error("recording {}: {reason}", path.display())]
    NotARecording {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The writer thread panicked (a bug); the `.part` file is left for
    /// [`repair_unfinished`](super::repair_unfinished).
    #[error("recording {}: writer thread panicked", path.display())]
    WriterPanicked {
        /// The recording's path.
        path: PathBuf,
    },
    /// Encrypting a finished recording, or reading an encrypted one back,
    /// failed (issue 14 §6).
    #[error("recording {}: encryption at rest: {source}", path.display())]
    Seal {
        /// The recording.
        path: PathBuf,
        /// The cause (names the file and what is wrong with it).
        #[source]
        source: crate::media::at_rest::SealError,
    },
    /// An unfinished file whose header this recorder cannot understand; it
    /// is left untouched.
    #[error("recording {}: cannot repair: {reason}", path.display())]
    Unrepairable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

pub(super) fn io_err<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(io::Error) -> RecorderError + 'a {
    move |source| RecorderError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}
