//! SDES: SRTP keys in SDP (RFC 4568), the part of offer/answer that
//! decides whether a leg's audio is SRTP (RFC 3711) and with which keys.
//!
//! * `a=crypto:<tag> <suite> inline:<base64(key‖salt)>[|lifetime][|MKI:len]
//!   [session-params]` (RFC 4568 §9.1), one line per offered suite.
//! * Suites: `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32`
//!   (RFC 4568 §6.2, the mandatory ones), `AES_256_CM_HMAC_SHA1_80` and
//!   `AES_256_CM_HMAC_SHA1_32` (RFC 6188). Lines with an MKI, several
//!   keys, or session parameters (`UNENCRYPTED_SRTP`, `KDR=…`, …) are
//!   skipped as unsupported, never half-honoured (§5.1.1: the answerer
//!   picks one line it fully supports).
//! * The answer carries the offer's tag and suite with *our* key
//!   (§7.1.3); a leg's key stays the same in every re-offer (§7.1.4
//!   allows it), so SRTP state (rollover counters) survives holds.
//!
//! Pure but for [`MasterKey::random`] (the thread-local CSPRNG, seeded
//! from the OS), the one place a key is made; our key
//! travels in [`super::LocalMedia`]. Secrets never reach a log: the
//! `Debug` forms print the suite only.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The longest master key plus salt of a supported suite (AES-256: 32 + 14).
pub const MAX_KEY_SALT: usize = 46;

/// An SRTP crypto suite we terminate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoSuite {
    /// AES-128 counter mode, 80-bit HMAC-SHA1 tag (RFC 4568 §6.2.1).
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, 32-bit HMAC-SHA1 tag (RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
    /// AES-256 counter mode, 80-bit tag (RFC 6188 §7.1).
    AesCm256HmacSha1_80,
    /// AES-256 counter mode, 32-bit tag (RFC 6188 §7.1).
    AesCm256HmacSha1_32,
}

impl CryptoSuite {
    /// Its name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Self::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Self::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
        }
    }

    /// The suite named `name` (case-sensitive, as RFC 4568 registers them).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::AesCm128HmacSha1_80,
            Self::AesCm128HmacSha1_32,
            Self::AesCm256HmacSha1_80,
            Self::AesCm256HmacSha1_32,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Master key length in octets.
    pub fn key_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 => 16,
            Self::AesCm256HmacSha1_80 | Self::AesCm256HmacSha1_32 => 32,
        }
    }

    /// Master salt length in octets (112 bits for every suite here).
    pub fn salt_len(self) -> usize {
        14
    }
}

/// A master key and salt (`key ‖ salt`, as `inline:` carries them).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey {
    bytes: [u8; MAX_KEY_SALT],
    len: u8,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({} octets, redacted)", self.len)
    }
}

impl MasterKey {
    /// 46 random octets from the thread-local CSPRNG: enough for any suite (a
    /// shorter suite uses the first `key_len + salt_len`).
    pub fn random() -> Self {
        let mut bytes = [0u8; MAX_KEY_SALT];
        rand::fill(&mut bytes[..]);
        Self {
            bytes,
            len: MAX_KEY_SALT as u8,
        }
    }

    /// A key from explicit octets (at most [`MAX_KEY_SALT`]).
    pub fn from_slice(octets: &[u8]) -> Option<Self> {
        if octets.len() > MAX_KEY_SALT {
            return None;
        }
        let mut bytes = [0u8; MAX_KEY_SALT];
        bytes[..octets.len()].copy_from_slice(octets);
        Some(Self {
            bytes,
            len: octets.len() as u8,
        })
    }

    /// This key cut to `suite`'s length, if it is long enough.
    pub fn for_suite(&self, suite: CryptoSuite) -> Option<Self> {
        let need = suite.key_len() + suite.salt_len();
        Self::from_slice(
            self.bytes
                .get(..need)
                .filter(|_| need <= self.len as usize)?,
        )
    }

    /// The master key part for `suite`.
    pub fn key(&self, suite: CryptoSuite) -> &[u8] {
        &self.bytes[..suite.key_len()]
    }

    /// The master salt part for `suite`.
    pub fn salt(&self, suite: CryptoSuite) -> &[u8] {
        &self.bytes[suite.key_len()..suite.key_len() + suite.salt_len()]
    }

    fn octets(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// The keys a leg's offer/answer settled on: one suite, our key for what
/// we send, the peer's for what we receive.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite both use.
    pub suite: CryptoSuite,
    /// Our key (we encrypt with it).
    pub local: MasterKey,
    /// The peer's key (we decrypt with it).
    pub remote: MasterKey,
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SrtpKeys({}, keys redacted)", self.suite.name())
    }
}

/// Our SDES stance on one leg, part of [`super::LocalMedia`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sdes {
    /// Our master key for the leg; `None`: we do not do SRTP on it (an
    /// `RTP/SAVP` offer gets 488, `a=crypto` on `RTP/AVP` is ignored).
    /// With a key, an offer carrying `a=crypto` is answered with SRTP.
    pub key: Option<MasterKey>,
    /// Our offers carry `a=crypto`: on `RTP/AVP` (best effort, as
    /// baresip's `srtp` mode and FreeSWITCH's optional SRTP do: plain
    /// peers stay plain) unless `required`.
    pub offer: bool,
    /// SRTP or nothing: our offers say `RTP/SAVP`, and a plain offer or
    /// answer is refused.
    pub required: bool,
}

impl Sdes {
    /// No SRTP.
    pub const OFF: Sdes = Sdes {
        key: None,
        offer: false,
        required: false,
    };

    /// SRTP when the peer offers it; our offers are plain.
    pub fn accepting(key: MasterKey) -> Self {
        Self {
            key: Some(key),
            ..Self::OFF
        }
    }

    /// SRTP when the peer offers or accepts it (best-effort offers).
    pub fn optional(key: MasterKey) -> Self {
        Self {
            key: Some(key),
            offer: true,
            required: false,
        }
    }

    /// SRTP only, with `key`.
    pub fn required(key: MasterKey) -> Self {
        Self {
            key: Some(key),
            offer: true,
            required: true,
        }
    }
}

/// One parsed `a=crypto` line we could use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoLine {
    /// Its tag (1-9 digits, RFC 4568 §9.1).
    pub tag: u32,
    /// Its suite.
    pub suite: CryptoSuite,
    /// The sender's key and salt.
    pub key: MasterKey,
}

impl CryptoLine {
    /// The attribute value (after `a=`) for this line.
    pub fn attribute(&self) -> String {
        format!(
            "crypto:{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.key.octets())
        )
    }
}

/// Parse one attribute (without `a=`): `Some` only for an `a=crypto`
/// line we fully support (see the module docs for what is skipped).
pub fn parse_crypto(attribute: &str) -> Option<CryptoLine> {
    let rest = attribute.strip_prefix("crypto:")?;
    let mut fields = rest.split_ascii_whitespace();
    let tag_text = fields.next()?;
    if tag_text.is_empty() || tag_text.len() > 9 || !tag_text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let tag: u32 = tag_text.parse().ok()?;
    let suite = CryptoSuite::from_name(fields.next()?)?;
    let key_params = fields.next()?;
    if fields.next().is_some() {
        return None; // session parameters: not supported, skip the line
    }
    if key_params.contains(';') {
        return None; // several keys (each with an MKI)
    }
    let inline = key_params.strip_prefix("inline:")?;
    let mut parts = inline.split('|');
    let encoded = parts.next()?;
    for part in parts {
        if part.contains(':') {
            return None; // an MKI: not supported
        }
        // A lifetime (`2^31` or a number): we rekey never, and stop far
        // before any lifetime a phone would state.
    }
    let octets = STANDARD.decode(encoded).ok()?;
    if octets.len() != suite.key_len() + suite.salt_len() {
        return None;
    }
    Some(CryptoLine {
        tag,
        suite,
        key: MasterKey::from_slice(&octets)?,
    })
}

/// Every usable `a=crypto` line of an m-line, in its order (the
/// offerer's preference).
pub fn crypto_lines(attributes: &[String]) -> Vec<CryptoLine> {
    attributes.iter().filter_map(|a| parse_crypto(a)).collect()
}

/// Whether an m-line's attributes hold any `a=crypto` line at all (usable
/// or not).
pub fn mentions_crypto(attributes: &[String]) -> bool {
    attributes.iter().any(|a| a.starts_with("crypto:"))
}

/// Whether `proto` is a secure RTP profile (`RTP/SAVP`, `RTP/SAVPF`).
pub fn is_secure_proto(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/SAVP") || proto.eq_ignore_ascii_case("RTP/SAVPF")
}

/// The suite we offer (the mandatory one of RFC 4568 §6.2).
pub const OFFERED_SUITE: CryptoSuite = CryptoSuite::AesCm128HmacSha1_80;
/// The tag of our one offered line.
pub const OFFERED_TAG: u32 = 1;
