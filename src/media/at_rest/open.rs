//! Opening: [`SealedFile`] reads a sealed file back by plaintext offset,
//! one chunk at a time, authenticating every chunk it reads (and the last
//! one on open, which proves the length). It implements `Read` and `Seek`
//! over the plaintext, so a WAV reader can read a sealed recording as it
//! is.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use aes_gcm::aead::stream::{StreamBE32, StreamPrimitive};
use aes_gcm::Aes256Gcm;

use super::error::{io_err, SealError};
use super::format::{Header, Layout, HEADER_LEN};
use super::key::SealingKey;
use super::seal::fill;

/// A sealed file opened for reading; see the module docs.
pub struct SealedFile<R> {
    src: R,
    path: PathBuf,
    aad: [u8; HEADER_LEN],
    stream: StreamBE32<Aes256Gcm>,
    layout: Layout,
    /// The chunk last decrypted: its index and plaintext.
    cached: Option<(u64, Vec<u8>)>,
    /// Read position in the plaintext.
    pos: u64,
}

impl<R> std::fmt::Debug for SealedFile<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFile")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .finish()
    }
}

impl SealedFile<File> {
    /// Opens the sealed file at `path` with `key`.
    pub fn open(path: &Path, key: &SealingKey) -> Result<Self, SealError> {
        let file = File::open(path).map_err(io_err(path, "open"))?;
        let len = file.metadata().map_err(io_err(path, "stat"))?.len();
        Self::new(file, len, path, key)
    }
}

impl<R: Read + Seek> SealedFile<R> {
    /// Opens a sealed file of `len` bytes read through `src`; `path` is
    /// named in errors. Checks the header and the key, and authenticates
    /// the last chunk (so [`Self::plain_len`] is the true length).
    pub fn new(mut src: R, len: u64, path: &Path, key: &SealingKey) -> Result<Self, SealError> {
        let mut aad = [0u8; HEADER_LEN];
        src.seek(SeekFrom::Start(0)).map_err(io_err(path, "seek"))?;
        let n = fill(&mut src, &mut aad).map_err(io_err(path, "read header"))?;
        let header = Header::parse(&aad[..n]).map_err(|reason| match reason {
            None => SealError::NotSealed {
                path: path.to_path_buf(),
            },
            Some(reason) => SealError::BadHeader {
                path: path.to_path_buf(),
                reason,
            },
        })?;
        if header.key_fingerprint != key.fingerprint() {
            return Err(SealError::WrongKey {
                path: path.to_path_buf(),
                file_key: hex::encode(header.key_fingerprint),
                our_key: key.fingerprint_hex(),
            });
        }
        let layout =
            Layout::of(len, header.chunk_len() as u64).map_err(|detail| SealError::Truncated {
                path: path.to_path_buf(),
                detail,
            })?;
        let mut file = SealedFile {
            src,
            path: path.to_path_buf(),
            aad,
            stream: header.stream(key),
            layout,
            cached: None,
            pos: 0,
        };
        file.chunk(layout.chunks - 1)?;
        Ok(file)
    }

    /// Plaintext bytes.
    pub fn plain_len(&self) -> u64 {
        self.layout.plain_len
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_len(&self) -> u64 {
        self.layout.chunk_len
    }

    /// Chunks in the file.
    pub fn chunks(&self) -> u64 {
        self.layout.chunks
    }

    /// The plaintext of chunk `i` (authenticated), read and decrypted
    /// unless it is the one read last.
    pub fn chunk(&mut self, i: u64) -> Result<&[u8], SealError> {
        if self.cached.as_ref().is_none_or(|(at, _)| *at != i) {
            let plain = self.decrypt(i)?;
            self.cached = Some((i, plain));
        }
        Ok(self
            .cached
            .as_ref()
            .map(|(_, p)| p.as_slice())
            .unwrap_or(&[]))
    }

    fn decrypt(&mut self, i: u64) -> Result<Vec<u8>, SealError> {
        let chunks = self.layout.chunks;
        let path = self.path.clone();
        let tampered = |why| SealError::Tampered {
            path: path.clone(),
            chunk: i,
            chunks,
            why,
        };
        if i >= chunks {
            return Err(tampered("no such chunk"));
        }
        let position = u32::try_from(i).map_err(|_| tampered("chunk index past 2^32"))?;
        let last = i + 1 == chunks;
        let mut buf = self.read_sealed(i)?;
        if self
            .stream
            .decrypt_in_place(position, last, &self.aad, &mut buf)
            .is_ok()
        {
            return Ok(buf);
        }
        // Tell a cut-off file from an altered one: the chunk now last
        // opens as a middle chunk only if the chunks after it are gone.
        // (Read again: a failed decryption leaves no promise about `buf`.)
        let mut again = self.read_sealed(i)?;
        let why = if last
            && self
                .stream
                .decrypt_in_place(position, false, &self.aad, &mut again)
                .is_ok()
        {
            "the file was cut short at a chunk boundary (this chunk was not sealed as the last)"
        } else {
            "the file was altered or its chunks reordered, or it was sealed with another key"
        };
        Err(tampered(why))
    }

    /// The sealed bytes of chunk `i` (ciphertext and tag).
    fn read_sealed(&mut self, i: u64) -> Result<Vec<u8>, SealError> {
        let (at, len) = self.layout.chunk_at(i);
        let mut buf = vec![0u8; len];
        self.src
            .seek(SeekFrom::Start(at))
            .map_err(io_err(&self.path, "seek"))?;
        self.src
            .read_exact(&mut buf)
            .map_err(io_err(&self.path, "read chunk"))?;
        Ok(buf)
    }

    /// Calls `each` with the plaintext of `[start, start + count)` piece by
    /// piece (at most one chunk each), decrypting only the chunks it
    /// covers. Stops at the first error.
    pub fn for_range(
        &mut self,
        start: u64,
        count: u64,
        mut each: impl FnMut(&[u8]) -> Result<(), SealError>,
    ) -> Result<(), SealError> {
        let end = start.saturating_add(count).min(self.layout.plain_len);
        let mut at = start;
        while at < end {
            let i = at / self.layout.chunk_len;
            let base = i * self.layout.chunk_len;
            let data = self.chunk(i)?;
            let from = (at - base) as usize;
            let to = ((end - base) as usize).min(data.len());
            let piece = data.get(from..to).unwrap_or(&[]);
            if piece.is_empty() {
                break;
            }
            let n = piece.len() as u64;
            each(piece)?;
            at += n;
        }
        Ok(())
    }

    /// Reads and authenticates every chunk (a whole-file check).
    pub fn verify(&mut self) -> Result<(), SealError> {
        for i in 0..self.layout.chunks {
            self.chunk(i)?;
        }
        Ok(())
    }
}

impl<R: Read + Seek> Read for SealedFile<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.layout.plain_len || out.is_empty() {
            return Ok(0);
        }
        let i = self.pos / self.layout.chunk_len;
        let from = (self.pos - i * self.layout.chunk_len) as usize;
        let data = self.chunk(i).map_err(SealError::into_io)?;
        let avail = data.get(from..).unwrap_or(&[]);
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SealedFile<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.layout.plain_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let Some(target) = target else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the plaintext",
            ));
        };
        self.pos = target;
        Ok(target)
    }
}
