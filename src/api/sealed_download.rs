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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::at_rest::{seal_file, HEADER_LEN, TAG_LEN};
    use axum::http::StatusCode;

    fn key(b: u8) -> SealingKey {
        SealingKey::from_bytes([b; 32])
    }

    /// A sealed file of `n` bytes of counting plaintext (64 KiB chunks).
    fn sealed(dir: &Path, n: usize) -> (PathBuf, Vec<u8>) {
        let path = dir.join("r.wav");
        let plain: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &plain).expect("write");
        seal_file(&key(1), &path, &path).expect("seal");
        (path, plain)
    }

    fn collect(body: Body) -> Result<Vec<u8>, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            axum::body::to_bytes(body, usize::MAX)
                .await
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string())
        })
    }

    fn open_sealed(path: &Path, k: Option<&SealingKey>) -> Box<SealedFile<File>> {
        match open(path, k) {
            Ok(Opened::Sealed(s)) => s,
            Ok(Opened::Plain(..)) => panic!("taken for plain"),
            Err(e) => panic!("{}: {}", e.status, e.message),
        }
    }

    #[test]
    fn a_range_streams_the_plaintext_across_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, plain) = sealed(dir.path(), 300_000);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let _guard = rt.enter();
        let s = open_sealed(&path, Some(&key(1)));
        assert_eq!(s.plain_len(), 300_000);
        let got = collect(body(s, 65_000, 140_000, path.clone())).expect("body");
        assert_eq!(got, plain[65_000..205_000]);
        let s = open_sealed(&path, Some(&key(1)));
        assert_eq!(collect(body(s, 0, 300_000, path)).expect("body"), plain);
    }

    #[test]
    fn a_plain_file_is_served_as_it_is_and_a_missing_one_is_404() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.wav");
        std::fs::write(&path, b"RIFF plain").expect("write");
        assert!(matches!(
            open(&path, Some(&key(1))),
            Ok(Opened::Plain(_, 10))
        ));
        let e = open(&dir.path().join("none.wav"), None)
            .err()
            .expect("missing");
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_sealed_file_without_or_with_another_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = sealed(dir.path(), 1000);
        for k in [None, Some(key(2))] {
            let e = open(&path, k.as_ref()).err().expect("refused");
            assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(
                e.message, "internal error",
                "the cause is logged, not shown"
            );
        }
    }

    #[test]
    fn a_chunk_altered_on_disk_cuts_the_body_off_before_its_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, plain) = sealed(dir.path(), 300_000);
        let mut bytes = std::fs::read(&path).expect("read");
        let second = HEADER_LEN + 65_536 + TAG_LEN + 100;
        bytes[second] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let _guard = rt.enter();
        // The last chunk is intact: the file opens and chunk 0 is served…
        let s = open_sealed(&path, Some(&key(1)));
        let first = collect(body(s, 0, 1000, path.clone())).expect("chunk 0 alone");
        assert_eq!(first, plain[..1000]);
        // …but a body through chunk 1 ends in an error, never its bytes.
        let s = open_sealed(&path, Some(&key(1)));
        let err = collect(body(s, 0, 300_000, path)).expect_err("cut off");
        assert!(err.contains("chunk 1"), "{err}");
    }
}
