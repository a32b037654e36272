//! The key of encryption at rest: 32 bytes (AES-256) kept in a file as 64
//! hex digits (`[recording] encryption_key_file`; `hotline keygen --out
//! FILE` makes one with mode 0600). Text rather than raw bytes so that an
//! operator can see the file is whole (`wc -c`), copy it into a secrets
//! store and back without mangling, and a truncated copy is refused by
//! length rather than used. Surrounding whitespace (a trailing newline) is
//! allowed; nothing else.
//!
//! The key is never logged: its `Debug` shows only the fingerprint, the
//! first 8 bytes of SHA-256("hotline at-rest key id v1" ‖ key) in hex,
//! which each sealed file's header also carries so that a file sealed
//! under another key is named as such instead of failing as "tampered".

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::KeyError;

/// Bytes of a key (AES-256).
pub const KEY_BYTES: usize = 32;
/// Bytes of a key's fingerprint.
pub const FINGERPRINT_BYTES: usize = 8;

struct Inner {
    key: Zeroizing<[u8; KEY_BYTES]>,
    fingerprint: [u8; FINGERPRINT_BYTES],
}

/// The key recordings and voicemails are sealed with. Cheap to clone (one
/// copy of the bytes, wiped when the last clone is dropped).
#[derive(Clone)]
pub struct SealingKey(Arc<Inner>);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKey({})", self.fingerprint_hex())
    }
}

impl PartialEq for SealingKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.key[..].ct_eq(&other.0.key[..]))
    }
}

impl Eq for SealingKey {}

impl SealingKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        let key = Zeroizing::new(bytes);
        let mut h = Sha256::new();
        h.update(b"hotline at-rest key id v1");
        h.update(&key[..]);
        let digest = h.finalize();
        let mut fingerprint = [0u8; FINGERPRINT_BYTES];
        fingerprint.copy_from_slice(&digest[..FINGERPRINT_BYTES]);
        SealingKey(Arc::new(Inner { key, fingerprint }))
    }

    /// A new random key (from the operating system's generator).
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        rand::fill(&mut bytes[..]);
        Self::from_bytes(*bytes)
    }

    /// Reads a key file: 64 hex digits, optionally surrounded by
    /// whitespace. Anything else is refused with an error naming the file
    /// and what it holds (never the key).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let raw = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            op: "read",
            source,
        })?);
        let wrong = |found: String| KeyError::WrongSize {
            path: path.to_path_buf(),
            found,
        };
        let Ok(text) = std::str::from_utf8(&raw) else {
            return Err(wrong(format!("{} bytes of binary data", raw.len())));
        };
        let text = text.trim();
        if text.len() != KEY_BYTES * 2 {
            return Err(wrong(format!("{} characters", text.chars().count())));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        hex::decode_to_slice(text, &mut bytes[..])
            .map_err(|_| wrong("64 characters that are not all hex digits".into()))?;
        warn_if_readable_by_others(path);
        Ok(Self::from_bytes(*bytes))
    }

    /// [`Self::load`] of an optional path (`None`: encryption off).
    pub fn load_optional(path: Option<&Path>) -> Result<Option<Self>, KeyError> {
        path.map(Self::load).transpose()
    }

    /// Writes a new random key to `path` as 64 hex digits and a newline,
    /// with mode 0600; refuses to overwrite an existing file. Returns the
    /// key.
    pub fn generate_file(path: &Path) -> Result<Self, KeyError> {
        let key = Self::generate();
        let io = |op| {
            move |source| KeyError::Io {
                path: path.to_path_buf(),
                op,
                source,
            }
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(io("create (it must not exist)"))?;
        let mut text = Zeroizing::new(hex::encode(&key.0.key[..]));
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io("write"))?;
        file.sync_all().map_err(io("fsync"))?;
        Ok(key)
    }

    /// The key's fingerprint (safe to log and to store in file headers).
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_BYTES] {
        self.0.fingerprint
    }

    /// The fingerprint in hex.
    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.0.fingerprint)
    }

    pub(super) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0.key
    }
}

/// A key file others may read is worth one warning (not a refusal: some
/// sites mount secrets group-readable for a service group).
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the recording key file is readable by other users; chmod 600 it"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_file_loads_back_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        let made = SealingKey::generate_file(&path).expect("keygen");
        let loaded = SealingKey::load(&path).expect("load");
        assert_eq!(made, loaded);
        assert_eq!(made.fingerprint(), loaded.fingerprint());
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = SealingKey::generate_file(&path).expect_err("no overwrite");
        assert!(again.to_string().contains("must not exist"), "{again}");
        assert_ne!(SealingKey::generate(), made, "keys are random");
    }

    #[test]
    fn wrong_key_files_are_refused_naming_the_file_never_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases: [(&str, &[u8], &str); 5] = [
            ("short", b"00112233\n", "8 characters"),
            ("long", &[b'a'; 66], "66 characters"),
            ("nothex", &[b'z'; 64], "not all hex"),
            ("binary", &[0xff; 32], "32 bytes of binary data"),
            ("empty", b"", "0 characters"),
        ];
        for (name, body, expect) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, body).expect("write");
            let err = SealingKey::load(&path).expect_err(name).to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains(expect), "{name}: {err}");
            assert!(err.contains("64 hex digits"), "{err}");
        }
        let missing = SealingKey::load(&dir.path().join("none")).expect_err("missing");
        assert!(missing.to_string().contains("none: read"), "{missing}");
        let path = dir.path().join("ok");
        std::fs::write(&path, format!("  {}\r\n", "0f".repeat(32))).expect("write");
        let key = SealingKey::load(&path).expect("whitespace around is fine");
        let shown = format!("{key:?}");
        assert!(!shown.contains("0f0f"), "no key bytes in Debug: {shown}");
        assert_eq!(shown, format!("SealingKey({})", key.fingerprint_hex()));
    }
}
