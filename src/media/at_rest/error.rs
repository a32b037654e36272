//! Errors of encryption at rest: [`KeyError`] (the key file) and
//! [`SealError`] (a sealed file); each names the file at fault.

use std::io;
use std::path::{Path, PathBuf};

/// The key file cannot be used. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read (or, for `keygen`, written).
    #[error("recording key file {}: {op}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file does not hold exactly 64 hex digits (32 bytes).
    #[error(
        "recording key file {}: a key is 64 hex digits (32 bytes, AES-256), this file holds {found}; make one with `hotline keygen --out FILE`",
        path.display()
    )]
    WrongSize {
        /// The key file.
        path: PathBuf,
        /// What was found instead (e.g. "40 characters", "binary data").
        found: String,
    },
}

/// A sealed file cannot be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// A file-system operation failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file operated on.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file does not start with the sealed-file header.
    #[error("{}: not an encrypted hotline file (no HLSEALED header)", path.display())]
    NotSealed {
        /// The file.
        path: PathBuf,
    },
    /// The header is of a version or layout this hotline does not read.
    #[error("{}: unsupported encrypted-file header: {reason}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file was sealed under another key.
    #[error(
        "{}: encrypted under key {file_key}, but the configured key is {our_key} ([recording] encryption_key_file)",
        path.display()
    )]
    WrongKey {
        /// The file.
        path: PathBuf,
        /// Fingerprint of the key named in the file's header.
        file_key: String,
        /// Fingerprint of the configured key.
        our_key: String,
    },
    /// The file's length is not that of a sealed file: it was cut short
    /// (or grown) inside a chunk.
    #[error("{}: truncated: {detail}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// How.
        detail: String,
    },
    /// A chunk did not authenticate: the file was altered, chunks were
    /// reordered, or it was cut short at a chunk boundary (then the chunk
    /// now last was not sealed as the last one).
    #[error("{}: chunk {chunk} of {chunks} failed authentication: {why}", path.display())]
    Tampered {
        /// The file.
        path: PathBuf,
        /// The chunk (from 0).
        chunk: u64,
        /// Chunks the file's length implies.
        chunks: u64,
        /// The most likely cause.
        why: &'static str,
    },
    /// The plaintext is longer than the format allows (2^32 chunks).
    #[error("{}: too long to encrypt (more than 2^32 chunks)", path.display())]
    TooLong {
        /// The file.
        path: PathBuf,
    },
}

impl SealError {
    /// As an `io::Error` (for `Read`/`Seek` implementations), keeping the
    /// message.
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            SealError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

pub(super) fn io_err<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(io::Error) -> SealError + 'a {
    move |source| SealError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}
