//! Sealing: plaintext in, sealed file out, one chunk in memory at a time
//! ([`seal_stream`]); [`seal_file`] does it file to file crash-safely
//! (written beside the target as `<target>.sealing`, fsynced, renamed).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::stream::StreamPrimitive;
use sha2::{Digest, Sha256};

use super::error::{io_err, SealError};
use super::format::{Header, DEFAULT_CHUNK_LOG2, TAG_LEN};
use super::key::SealingKey;

/// Suffix of a sealed file being written; one found at startup is an
/// unfinished copy (its plaintext source is still there) and is deleted.
pub const SEALING_SUFFIX: &str = ".sealing";

/// What was sealed: the plaintext's length and SHA-256 (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Plaintext bytes.
    pub plain_bytes: u64,
    /// SHA-256 of the plaintext.
    pub plain_sha256: String,
}

/// Reads up to `buf.len()` bytes, stopping early only at end of input.
pub(super) fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Seals everything `plain` yields into `out` in chunks of 2^`chunk_log2`
/// bytes. `name` is the file named in errors. Holds two chunks in memory.
pub fn seal_stream(
    key: &SealingKey,
    chunk_log2: u8,
    mut plain: impl Read,
    mut out: impl Write,
    name: &Path,
) -> Result<Sealed, SealError> {
    let header = Header::new(key, chunk_log2);
    let aad = header.to_bytes();
    let stream = header.stream(key);
    let chunk = header.chunk_len();
    out.write_all(&aad).map_err(io_err(name, "write header"))?;
    let mut hash = Sha256::new();
    let mut total = 0u64;
    let mut cur = Vec::with_capacity(chunk + TAG_LEN);
    let mut next = Vec::with_capacity(chunk + TAG_LEN);
    cur.resize(chunk, 0);
    let n = fill(&mut plain, &mut cur).map_err(io_err(name, "read plaintext"))?;
    cur.truncate(n);
    let mut position: u32 = 0;
    loop {
        next.resize(chunk, 0);
        let n = fill(&mut plain, &mut next).map_err(io_err(name, "read plaintext"))?;
        next.truncate(n);
        let last = n == 0;
        hash.update(&cur);
        total += cur.len() as u64;
        stream
            .encrypt_in_place(position, last, &aad, &mut cur)
            .map_err(|_| SealError::TooLong {
                path: name.to_path_buf(),
            })?;
        out.write_all(&cur).map_err(io_err(name, "write chunk"))?;
        if last {
            break;
        }
        position = position.checked_add(1).ok_or_else(|| SealError::TooLong {
            path: name.to_path_buf(),
        })?;
        std::mem::swap(&mut cur, &mut next);
    }
    out.flush().map_err(io_err(name, "write"))?;
    Ok(Sealed {
        plain_bytes: total,
        plain_sha256: hex::encode(hash.finalize()),
    })
}

/// `<target>.sealing`.
pub fn sealing_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(SEALING_SUFFIX);
    PathBuf::from(s)
}

/// Seals the file `plain` into `target` (64 KiB chunks): written to
/// `<target>.sealing`, fsynced, then renamed over `target` (which may be
/// `plain` itself: the plaintext is then replaced in one step). Does not
/// delete `plain` when it is another file: the caller does, once the
/// sealed file is in place. Does not fsync the directory.
pub fn seal_file(key: &SealingKey, plain: &Path, target: &Path) -> Result<Sealed, SealError> {
    let tmp = sealing_path(target);
    let source = File::open(plain).map_err(io_err(plain, "open plaintext"))?;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err(&tmp, "create"))?;
    let sealed = match seal_stream(
        key,
        DEFAULT_CHUNK_LOG2,
        io::BufReader::with_capacity(1 << 16, source),
        BufWriter::with_capacity(1 << 16, &file),
        &tmp,
    ) {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    file.sync_all().map_err(io_err(&tmp, "fsync"))?;
    drop(file);
    fs::rename(&tmp, target).map_err(io_err(target, "rename from .sealing"))?;
    Ok(sealed)
}
