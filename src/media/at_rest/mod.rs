//! Recordings and voicemails encrypted at rest (issue 14 §6: "recordings
//! and voicemails optionally encrypted (AES-GCM with a key file; streaming
//! decrypt for `/recordings` downloads and range requests)"; REQUIREMENTS
//! §9 "data protected … at rest").
//!
//! With `[recording] encryption_key_file` set, the recorder still writes
//! its WAV as `<name>.wav.part` (so crash repair works as before); when the
//! file is finished (or repaired at the next start) it is sealed into
//! `<name>.wav` — same name, so records, ids, retention and storage figures
//! do not change — and the plaintext deleted. A sealed file starts with
//! `HLSEALED` instead of `RIFF`; readers ([`is_sealed`]) tell the two apart,
//! so an archive that was plaintext before the key was set stays readable.
//!
//! * [`SealingKey`] (`key`): the key file (64 hex digits), fingerprint,
//!   `hotline keygen`.
//! * `format`: the header and chunk layout (STREAM over AES-256-GCM, 64 KiB
//!   chunks, a per-file key from a random salt).
//! * [`seal_stream`] / [`seal_file`] (`seal`): plaintext to sealed, one
//!   chunk in memory.
//! * [`SealedFile`] (`open`): random access by plaintext offset, each chunk
//!   authenticated as it is read; `Read + Seek`.
//!
//! # Crates
//!
//! RustCrypto's `aes-gcm` (pure Rust, constant-time, AES-NI and CLMUL
//! used when the CPU has them, audited by NCC Group) with `aead`'s
//! `stream::StreamBE32`, which implements the STREAM nonce scheme and lets
//! each chunk be sealed or opened at an explicit position — what seeking
//! needs (its stateful `Encryptor`/`Decryptor` only go forward, so they
//! are not used). The per-file key is HMAC-SHA256 with the `hmac`/`sha2`
//! crates already used for webhooks; `zeroize` wipes key bytes.

mod error;
mod format;
mod key;
mod open;
mod seal;

#[cfg(test)]
mod tests;

pub use error::{KeyError, SealError};
pub use format::{is_sealed, sealed_len, DEFAULT_CHUNK_LOG2, HEADER_LEN, MAGIC, TAG_LEN};
pub use key::SealingKey;
pub use open::SealedFile;
pub use seal::{seal_file, seal_stream, sealing_path, Sealed, SEALING_SUFFIX};

/// Whether the file at `path` is sealed (starts with [`MAGIC`]).
pub fn file_is_sealed(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(is_sealed(&head[..n]))
}
