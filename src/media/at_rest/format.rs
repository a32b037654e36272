//! The sealed-file format (version 1): a 64-byte header, then the
//! plaintext in fixed-size chunks, each sealed with AES-256-GCM under the
//! STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
//! Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", 2015,
//! as `aead::stream::StreamBE32`): nonce = 7-byte prefix ‖ chunk counter
//! (32-bit big-endian) ‖ last-chunk flag (one byte).
//!
//! ```text
//! offset size
//!  0      8   magic "HLSEALED"
//!  8      1   version (1)
//!  9      1   log2 of the plaintext chunk size (16: 64 KiB; 10..=20 read)
//! 10      2   reserved, zero
//! 12      8   fingerprint of the master key (see key.rs)
//! 20     32   random salt: file key = HMAC-SHA256(master, "hotline at-rest v1 file key" ‖ salt)
//! 52      7   random STREAM nonce prefix
//! 59      5   reserved, zero
//! 64      …   chunks: ciphertext ‖ 16-byte tag; all full but the last,
//!             which may be short (an empty plaintext is one empty chunk)
//! ```
//!
//! The whole header is the associated data of every chunk, so changing any
//! header byte fails every chunk. Each file has its own key (random salt):
//! AES-GCM nonces can never repeat across files, however many files one
//! master key seals. The chunk counter binds each chunk to its place
//! (reordering fails), and the last-chunk flag to the end (cutting the
//! file at a chunk boundary leaves a last chunk not sealed as last;
//! appending makes the old last chunk a middle one: both fail). The length
//! of the plaintext follows from the file's length, and reading the last
//! chunk proves it; any chunk can be read alone, which is what makes
//! range requests cheap.

use aes_gcm::aead::stream::{NewStream, StreamBE32};
use aes_gcm::aead::KeyInit;
use aes_gcm::Aes256Gcm;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::key::{SealingKey, FINGERPRINT_BYTES};

/// First bytes of every sealed file.
pub const MAGIC: &[u8; 8] = b"HLSEALED";
/// The format version written.
pub const VERSION: u8 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 64;
/// Bytes of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// log2 of the chunk size written (64 KiB).
pub const DEFAULT_CHUNK_LOG2: u8 = 16;
/// Chunk sizes read: 1 KiB to 1 MiB.
pub const CHUNK_LOG2_RANGE: std::ops::RangeInclusive<u8> = 10..=20;

const SALT_LEN: usize = 32;
const PREFIX_LEN: usize = 7;

/// A parsed header.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Plaintext bytes per chunk (a power of two).
    pub chunk_log2: u8,
    /// Fingerprint of the master key the file was sealed under.
    pub key_fingerprint: [u8; FINGERPRINT_BYTES],
    salt: [u8; SALT_LEN],
    prefix: [u8; PREFIX_LEN],
}

impl Header {
    /// A fresh header for `key`: random salt and nonce prefix.
    pub fn new(key: &SealingKey, chunk_log2: u8) -> Self {
        let mut salt = [0u8; SALT_LEN];
        let mut prefix = [0u8; PREFIX_LEN];
        rand::fill(&mut salt[..]);
        rand::fill(&mut prefix[..]);
        Header {
            chunk_log2,
            key_fingerprint: key.fingerprint(),
            salt,
            prefix,
        }
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_len(&self) -> usize {
        1usize << self.chunk_log2
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8] = VERSION;
        b[9] = self.chunk_log2;
        b[12..20].copy_from_slice(&self.key_fingerprint);
        b[20..52].copy_from_slice(&self.salt);
        b[52..59].copy_from_slice(&self.prefix);
        b
    }

    /// Parses a header: `Err(None)` if `b` does not start with [`MAGIC`]
    /// (not a sealed file), `Err(Some(reason))` if it does but cannot be
    /// read.
    pub fn parse(b: &[u8]) -> Result<Self, Option<String>> {
        if !is_sealed(b) {
            return Err(None);
        }
        if b.len() < HEADER_LEN {
            return Err(Some(format!(
                "{} bytes, the header alone is {HEADER_LEN}",
                b.len()
            )));
        }
        if b[8] != VERSION {
            return Err(Some(format!(
                "version {}, this hotline reads version {VERSION}",
                b[8]
            )));
        }
        if !CHUNK_LOG2_RANGE.contains(&b[9]) {
            return Err(Some(format!("chunk size 2^{} out of range", b[9])));
        }
        if b[10..12] != [0, 0] || b[59..64] != [0; 5] {
            return Err(Some("reserved bytes are not zero".into()));
        }
        let mut h = Header {
            chunk_log2: b[9],
            key_fingerprint: [0; FINGERPRINT_BYTES],
            salt: [0; SALT_LEN],
            prefix: [0; PREFIX_LEN],
        };
        h.key_fingerprint.copy_from_slice(&b[12..20]);
        h.salt.copy_from_slice(&b[20..52]);
        h.prefix.copy_from_slice(&b[52..59]);
        Ok(h)
    }

    /// The file's STREAM: its own AES-256-GCM key and nonce prefix.
    pub fn stream(&self, key: &SealingKey) -> StreamBE32<Aes256Gcm> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.bytes())
            .expect("HMAC takes a key of any length");
        mac.update(b"hotline at-rest v1 file key");
        mac.update(&self.salt);
        let mut file_key = zeroize::Zeroizing::new([0u8; 32]);
        file_key.copy_from_slice(&mac.finalize().into_bytes());
        let aead = Aes256Gcm::new((&*file_key).into());
        StreamBE32::from_aead(aead, (&self.prefix).into())
    }
}

/// Whether `head` (a file's first bytes) starts like a sealed file.
pub fn is_sealed(head: &[u8]) -> bool {
    head.len() >= MAGIC.len() && &head[..MAGIC.len()] == MAGIC
}

/// Where the chunks of a sealed file of a given length are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Plaintext bytes per chunk.
    pub chunk_len: u64,
    /// Chunks in the file (at least 1).
    pub chunks: u64,
    /// Plaintext bytes in all.
    pub plain_len: u64,
}

impl Layout {
    /// The layout of a sealed file of `file_len` bytes with chunks of
    /// `chunk_len`; `Err` says why that length cannot be a sealed file.
    pub fn of(file_len: u64, chunk_len: u64) -> Result<Self, String> {
        let stride = chunk_len + TAG_LEN as u64;
        let body = file_len.saturating_sub(HEADER_LEN as u64);
        if body < TAG_LEN as u64 {
            return Err(format!(
                "{file_len} bytes: no whole chunk after the {HEADER_LEN}-byte header"
            ));
        }
        let (full, rest) = (body / stride, body % stride);
        let (chunks, last) = match rest {
            0 => (full, chunk_len),
            r if r < TAG_LEN as u64 => {
                return Err(format!(
                    "{file_len} bytes: the last chunk is {r} bytes, shorter than its tag"
                ))
            }
            r => (full + 1, r - TAG_LEN as u64),
        };
        if chunks > u64::from(u32::MAX) + 1 {
            return Err(format!("{file_len} bytes: more than 2^32 chunks"));
        }
        Ok(Layout {
            chunk_len,
            chunks,
            plain_len: (chunks - 1) * chunk_len + last,
        })
    }

    /// File offset and sealed length of chunk `i`.
    pub fn chunk_at(&self, i: u64) -> (u64, usize) {
        let stride = self.chunk_len + TAG_LEN as u64;
        let start = HEADER_LEN as u64 + i * stride;
        let plain = if i + 1 == self.chunks {
            self.plain_len - i * self.chunk_len
        } else {
            self.chunk_len
        };
        (start, plain as usize + TAG_LEN)
    }
}

/// Length of the sealed form of `plain_len` bytes in chunks of `chunk_len`.
pub fn sealed_len(plain_len: u64, chunk_len: u64) -> u64 {
    let chunks = plain_len.div_ceil(chunk_len).max(1);
    HEADER_LEN as u64 + plain_len + chunks * TAG_LEN as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_inverts_sealed_len_at_every_boundary() {
        let c = 1024u64;
        for plain in [
            0,
            1,
            1023,
            1024,
            1025,
            2047,
            2048,
            2049,
            10 * 1024,
            10 * 1024 + 7,
        ] {
            let l = Layout::of(sealed_len(plain, c), c).expect("valid length");
            assert_eq!(l.plain_len, plain, "plain {plain}");
            assert_eq!(l.chunks, plain.div_ceil(c).max(1), "plain {plain}");
            let (start, len) = l.chunk_at(l.chunks - 1);
            assert_eq!(start + len as u64, sealed_len(plain, c), "plain {plain}");
        }
        assert!(Layout::of(HEADER_LEN as u64 + 15, c).is_err());
        assert!(Layout::of(10, c).is_err());
        assert!(Layout::of(HEADER_LEN as u64 + c + 16 + 5, c)
            .expect_err("a chunk shorter than its tag")
            .contains("shorter than its tag"));
    }

    #[test]
    fn headers_round_trip_and_odd_ones_are_refused() {
        let key = SealingKey::from_bytes([7; 32]);
        let h = Header::new(&key, DEFAULT_CHUNK_LOG2);
        let b = h.to_bytes();
        assert!(Header::parse(&b) == Ok(h.clone()));
        assert!(Header::parse(b"RIFF....WAVE") == Err(None));
        let mut v2 = b;
        v2[8] = 2;
        assert!(matches!(Header::parse(&v2), Err(Some(r)) if r.contains("version 2")));
        let mut huge = b;
        huge[9] = 40;
        assert!(matches!(Header::parse(&huge), Err(Some(r)) if r.contains("out of range")));
        let mut reserved = b;
        reserved[60] = 1;
        assert!(matches!(Header::parse(&reserved), Err(Some(r)) if r.contains("reserved")));
        assert!(matches!(Header::parse(&b[..20]), Err(Some(r)) if r.contains("20 bytes")));
        assert_ne!(
            Header::new(&key, 16).to_bytes(),
            b,
            "salt and prefix are random"
        );
    }
}
