//! Downloads of recordings and voicemails sealed at rest (issue 14 §6:
//! "streaming decrypt for `/recordings` downloads and range requests"):
//! the plaintext WAV is served with the same status, headers and `Range`
//! semantics as a plain file (offsets are plaintext offsets), decrypted
//! one 64 KiB chunk at a time on a blocking thread and handed to the
//! response through a small bounded channel, so neither the whole file
//! nor the whole range is ever in memory, and a range decrypts only the
//! chunks it covers. Every chunk is authenticated before any of its bytes
//! are sent; a chunk that fails (a file altered on disk) ends the body
//! early, which the client sees as a cut-off transfer, and is logged.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};

use super::ApiError;
use crate::media::at_rest::{is_sealed, SealError, SealedFile, SealingKey};

/// A file opened for download: plain, or sealed and its last chunk
/// authenticated.
pub enum Opened {
    /// A plain file and its length.
    Plain(File, u64),
    /// A sealed file (its plaintext length is `plain_len()`).
    Sealed(Box<SealedFile<File>>),
}

/// Opens `path` for download (blocking: call it on a blocking thread).
/// Missing: 404. Sealed without a key, under another key, or damaged: 500
/// (the cause logged, never shown).
pub fn open(path: &Path, key: Option<&SealingKey>) -> Result<Opened, ApiError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found("no such file"))
        }
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", path.display()))),
    };
    let len = file
        .metadata()
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?
        .len();
    let mut head = [0u8; 8];
    let n = read_up_to(&mut file, &mut head)
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    if !is_sealed(&head[..n]) {
        use std::io::Seek;
        file.rewind()
            .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
        return Ok(Opened::Plain(file, len));
    }
    let Some(key) = key else {
        return Err(ApiError::internal(format!(
            "{}: the file is encrypted and no [recording] encryption_key_file is configured",
            path.display()
        )));
    };
    SealedFile::new(file, len, path, key)
        .map(|f| Opened::Sealed(Box::new(f)))
        .map_err(ApiError::internal)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The body of `count` plaintext bytes from `start` of a sealed file:
/// decrypted on a blocking thread, at most a few chunks ahead of the
/// client.
pub fn body(mut sealed: Box<SealedFile<File>>, start: u64, count: u64, path: PathBuf) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        let sent = sealed.for_range(start, count, |piece| {
            tx.blocking_send(Ok(Bytes::copy_from_slice(piece)))
                .map_err(|_| SealError::Io {
                    path: path.clone(),
                    op: "send (the client went away)",
                    source: std::io::ErrorKind::BrokenPipe.into(),
                })
        });
        match sent {
            Ok(()) => {}
            Err(SealError::Io { op, .. }) if op.starts_with("send") => {}
            Err(e) => {
                tracing::error!(error = %e, "download of an encrypted file cut off");
                let _ = tx.blocking_send(Err(e.into_io()));
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(stream)
}
