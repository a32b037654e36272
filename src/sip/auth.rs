//! HTTP Digest access authentication for SIP, sans-IO.
//!
//! Implements:
//! - RFC 3261 §22.1–§22.4 (Digest authentication of SIP requests: the
//!   `WWW-Authenticate` / `Proxy-Authenticate` challenge and the
//!   `Authorization` / `Proxy-Authorization` credentials),
//! - RFC 7616 §3.3 (challenge parameters, `stale=true`), §3.4 (the
//!   `Authorization` header, `response` computation with `qop=auth`),
//!   §3.4.1–§3.4.3 (A1/A2 and the response digest), §3.9.1 (test vectors),
//!   §5.4–§5.5 (nonce construction and replay protection),
//! - RFC 8760 §2.3–§2.4 (SHA-256 for SIP Digest; one challenge per
//!   algorithm, most preferred first — or only some of them:
//!   [`DigestServer::challenge_with`]; which ones is
//!   [`super::digest_policy`]'s business).
//!
//! Not supported (rejected with an explicit error): `-sess` algorithms,
//! `qop=auth-int`, `userhash=true`. RFC 2069 style credentials (no `qop`)
//! are produced by the client side when the server offers no `qop`, but are
//! never accepted by [`DigestServer`].
//!
//! Nonces are stateless and unforgeable: `hex(timestamp) || hex(counter) ||
//! hex(HMAC-SHA256(key, realm, timestamp, counter)[..16])`. Replay state (the
//! highest `nc` per nonce) is kept only for nonces that were successfully
//! used, bounded in size, and aged out by [`DigestServer::expire`]. Time is
//! injected as a [`Time`]; nonces carry its whole Unix seconds (the wire
//! form and the TTL stay in seconds); nothing here reads a clock or does
//! I/O.

use std::collections::BTreeMap;

use crate::time::Time;

use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Maximum number of nonces whose replay state is tracked at once.
pub const DEFAULT_MAX_TRACKED_NONCES: usize = 100_000;

/// Length of a nonce produced by [`DigestServer`], in hex characters.
const NONCE_LEN: usize = 64;

/// Errors from parsing or verifying Digest credentials and challenges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header does not use the `Digest` scheme.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// The parameter list is syntactically broken.
    #[error("malformed Digest parameter list: {0}")]
    Malformed(String),
    /// A required parameter is absent.
    #[error("missing Digest parameter `{0}`")]
    MissingParam(&'static str),
    /// A parameter is present but its value is unacceptable.
    #[error("invalid Digest parameter `{name}`: {reason}")]
    InvalidParam { name: String, reason: String },
    /// A parameter appears more than once.
    #[error("duplicate Digest parameter `{0}`")]
    DuplicateParam(String),
    /// The algorithm is unknown or a `-sess` variant.
    #[error("unsupported Digest algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// `qop=auth-int` (integrity protection of the body) is not supported.
    #[error("qop `auth-int` is not supported (only `auth`)")]
    AuthIntUnsupported,
    /// `userhash=true` (RFC 7616 §3.4.4) is not supported.
    #[error("userhash is not supported")]
    UserhashUnsupported,
    /// The `realm` does not match ours.
    #[error("realm mismatch")]
    RealmMismatch,
    /// The `opaque` value does not match the one we issued.
    #[error("opaque mismatch")]
    OpaqueMismatch,
    /// The nonce was not issued by us (bad format or MAC).
    #[error("invalid nonce")]
    InvalidNonce,
    /// The nonce count was already used with this nonce.
    #[error("replayed nonce count")]
    Replay,
    /// Unknown user or wrong password (deliberately indistinguishable).
    #[error("bad credentials")]
    BadCredentials,
    /// No usable challenge was offered.
    #[error("no usable Digest challenge")]
    NoUsableChallenge,
}

/// Digest hash algorithm (RFC 7616 §3.2, RFC 8760 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `MD5`
    Md5,
    /// `SHA-256`
    Sha256,
}

impl DigestAlgorithm {
    /// Parses an algorithm token, case-insensitively. `-sess` variants and
    /// anything else are rejected.
    pub fn parse(token: &str) -> Result<Self, AuthError> {
        let t = token.trim();
        if t.eq_ignore_ascii_case("MD5") {
            Ok(Self::Md5)
        } else if t.eq_ignore_ascii_case("SHA-256") {
            Ok(Self::Sha256)
        } else {
            Err(AuthError::UnsupportedAlgorithm(t.to_string()))
        }
    }

    /// The canonical token (`MD5` or `SHA-256`).
    pub fn token(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }

    /// Lowercase hex digest of `data`.
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Self::Md5 => hex::encode(Md5::digest(data)),
            Self::Sha256 => hex::encode(Sha256::digest(data)),
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Md5 => 32,
            Self::Sha256 => 64,
        }
    }
}

/// A user's secret as stored by the shell.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Clear-text password.
    Plain(String),
    /// Pre-hashed `HA1 = H(username:realm:password)` per algorithm, hex.
    Ha1 {
        md5: Option<String>,
        sha256: Option<String>,
    },
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Secret::Plain(<redacted>)"),
            Self::Ha1 { .. } => f.write_str("Secret::Ha1(<redacted>)"),
        }
    }
}

impl Secret {
    /// Whether this secret can answer a challenge in `alg` (a password
    /// answers any; stored hashes only their own algorithms).
    pub fn can_answer(&self, alg: DigestAlgorithm) -> bool {
        match self {
            Self::Plain(_) => true,
            Self::Ha1 { md5, sha256 } => match alg {
                DigestAlgorithm::Md5 => md5.is_some(),
                DigestAlgorithm::Sha256 => sha256.is_some(),
            },
        }
    }

    /// HA1 for `alg`, lowercase hex, if this secret can provide it.
    fn ha1(&self, alg: DigestAlgorithm, username: &str, realm: &str) -> Option<String> {
        match self {
            Self::Plain(password) => Some(ha1(alg, username, realm, password)),
            Self::Ha1 { md5, sha256 } => {
                let h = match alg {
                    DigestAlgorithm::Md5 => md5.as_ref(),
                    DigestAlgorithm::Sha256 => sha256.as_ref(),
                }?;
                Some(h.trim().to_ascii_lowercase())
            }
        }
    }
}

/// `HA1 = H(username ":" realm ":" password)` (RFC 7616 §3.4.2), hex.
pub fn ha1(alg: DigestAlgorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash_hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// The `response` digest (RFC 7616 §3.4.1): with `qop = Some((nc, cnonce,
/// qop))` it is `H(HA1:nonce:nc:cnonce:qop:HA2)`, without it (RFC 2069)
/// `H(HA1:nonce:HA2)`, where `HA2 = H(method:uri)`.
pub fn digest_response(
    alg: DigestAlgorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = alg.hash_hex(format!("{method}:{uri}").as_bytes());
    let input = match qop {
        Some((nc, cnonce, qop)) => format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"),
        None => format!("{ha1}:{nonce}:{ha2}"),
    };
    alg.hash_hex(input.as_bytes())
}

/// HMAC-SHA256 (RFC 2104) over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for p in parts {
        inner.update(p);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner);
    outer.finalize().into()
}

// ---------------------------------------------------------------------------
// Parameter list parsing
// ---------------------------------------------------------------------------

/// Parsed `Digest` parameters; names are lowercased, values unquoted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestParams {
    pairs: Vec<(String, String)>,
}

impl DigestParams {
    /// Value of parameter `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All parameters in order of appearance.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    fn require(&self, name: &'static str) -> Result<&str, AuthError> {
        self.get(name).ok_or(AuthError::MissingParam(name))
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses a header value `Digest name=value, name="quoted", ...`.
///
/// The scheme is matched case-insensitively; parameter names are
/// case-insensitive; values are tokens or quoted strings with backslash
/// escapes; extra whitespace and empty list elements are tolerated.
pub fn parse_digest(value: &str) -> Result<DigestParams, AuthError> {
    let v = value.trim_start();
    let scheme_end = v.find(|c: char| c.is_whitespace()).unwrap_or(v.len());
    if !v[..scheme_end].eq_ignore_ascii_case("Digest") {
        return Err(AuthError::NotDigest);
    }
    parse_param_list(&v[scheme_end..])
}

/// Parses a bare comma-separated `name=value` list (no scheme).
pub fn parse_param_list(list: &str) -> Result<DigestParams, AuthError> {
    let mut out = DigestParams::default();
    let mut it = list.chars().peekable();
    loop {
        // Skip whitespace and empty list elements.
        while it.peek().is_some_and(|&c| c.is_whitespace() || c == ',') {
            it.next();
        }
        let Some(&first) = it.peek() else {
            break;
        };
        if !is_token_char(first) {
            return Err(AuthError::Malformed(format!(
                "unexpected character {first:?} where a parameter name was expected"
            )));
        }
        let mut name = String::new();
        while let Some(&c) = it.peek() {
            if !is_token_char(c) {
                break;
            }
            name.push(c.to_ascii_lowercase());
            it.next();
        }
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.next() != Some('=') {
            return Err(AuthError::InvalidParam {
                name,
                reason: "expected `=`".into(),
            });
        }
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let mut val = String::new();
        if it.peek() == Some(&'"') {
            it.next();
            let mut closed = false;
            while let Some(c) = it.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match it.next() {
                        Some(e) => val.push(e),
                        None => break,
                    },
                    _ => val.push(c),
                }
            }
            if !closed {
                return Err(AuthError::InvalidParam {
                    name,
                    reason: "unterminated quoted string".into(),
                });
            }
        } else {
            while let Some(&c) = it.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                if c == '"' || c == '=' {
                    return Err(AuthError::InvalidParam {
                        name,
                        reason: format!("unexpected {c:?} in token value"),
                    });
                }
                val.push(c);
                it.next();
            }
            if val.is_empty() {
                return Err(AuthError::InvalidParam {
                    name,
                    reason: "empty value".into(),
                });
            }
        }
        // After a value: only whitespace then a comma or the end.
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        match it.peek() {
            None | Some(',') => {}
            Some(&c) => {
                return Err(AuthError::InvalidParam {
                    name,
                    reason: format!("unexpected {c:?} after value"),
                })
            }
        }
        if out.get(&name).is_some() {
            return Err(AuthError::DuplicateParam(name));
        }
        out.pairs.push((name, val));
    }
    Ok(out)
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

fn parse_nc(v: &str) -> Result<u32, AuthError> {
    let bad = |reason: &str| AuthError::InvalidParam {
        name: "nc".into(),
        reason: reason.into(),
    };
    if v.len() != 8 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("must be 8 hex digits"));
    }
    match u32::from_str_radix(v, 16) {
        Ok(0) => Err(bad("must not be zero")),
        Ok(n) => Ok(n),
        Err(_) => Err(bad("must be 8 hex digits")),
    }
}

/// Splits a `qop` value (`"auth,auth-int"`) into its options.
fn qop_options(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------

/// Outcome of [`DigestServer::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Credentials are valid and fresh.
    Authorized { username: String },
    /// Credentials are valid but the nonce is no longer usable: challenge
    /// again with `stale=true` (RFC 7616 §3.3).
    Stale,
    /// Reject (challenge again without `stale`).
    Rejected(AuthError),
}

#[derive(Debug, Clone, Copy)]
struct NonceUse {
    issued_at: u64,
    highest_nc: u32,
}

/// Digest server: issues challenges and verifies credentials for one realm.
pub struct DigestServer {
    realm: String,
    key: [u8; 32],
    nonce_ttl_secs: u64,
    opaque: String,
    /// Algorithms challenged with, most preferred first (RFC 8760 §2.4).
    algorithms: Vec<DigestAlgorithm>,
    /// Counter range issued by this instance: `[first_counter, next_counter)`.
    /// Lazily seeded from the key and the first `now` seen, so nonces of a
    /// previous process using the same key are recognised as not ours.
    counters: Option<(u64, u64)>,
    /// Replay state of nonces that were used successfully, by counter.
    used: BTreeMap<u64, NonceUse>,
    /// Every counter below this was evicted from `used` (or expired): such a
    /// nonce is treated as stale, never as fresh.
    evicted_below: u64,
    max_tracked: usize,
}

impl std::fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("nonce_ttl_secs", &self.nonce_ttl_secs)
            .field("tracked", &self.used.len())
            .finish_non_exhaustive()
    }
}

impl DigestServer {
    /// A server for `realm`, with the MAC `key` and nonce lifetime.
    pub fn new(realm: &str, key: [u8; 32], nonce_ttl_secs: u64) -> Self {
        let mac = hmac_sha256(&key, &[b"hotline-opaque\0", realm.as_bytes()]);
        Self {
            realm: realm.to_string(),
            key,
            nonce_ttl_secs,
            opaque: hex::encode(&mac[..16]),
            algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            counters: None,
            used: BTreeMap::new(),
            evicted_below: 0,
            max_tracked: DEFAULT_MAX_TRACKED_NONCES,
        }
    }

    /// Challenge with these algorithms, in this order (most preferred
    /// first); credentials using any other algorithm are rejected. Many
    /// deployed phones (and SIPp) answer only the first challenge and know
    /// only MD5, so sites list MD5 first until their phones do SHA-256.
    /// An empty list keeps the default (SHA-256, then MD5).
    pub fn with_algorithms(mut self, algorithms: Vec<DigestAlgorithm>) -> Self {
        if !algorithms.is_empty() {
            self.algorithms = algorithms;
        }
        self
    }

    /// Overrides the bound on tracked nonces (at least 1).
    pub fn with_max_tracked(mut self, max: usize) -> Self {
        self.max_tracked = max.max(1);
        self
    }

    /// The realm this server authenticates for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Number of nonces whose replay state is currently tracked.
    pub fn tracked_nonces(&self) -> usize {
        self.used.len()
    }

    fn counters(&mut self, now: u64) -> (u64, u64) {
        let key = self.key;
        *self.counters.get_or_insert_with(|| {
            let seed = hmac_sha256(&key, &[b"hotline-counter\0", &now.to_be_bytes()]);
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[..8]);
            // Leave 2^62 of headroom so the counter never wraps.
            let start = u64::from_be_bytes(b) >> 2;
            (start, start)
        })
    }

    fn nonce_mac(&self, ts: u64, ctr: u64) -> [u8; 32] {
        hmac_sha256(
            &self.key,
            &[
                b"hotline-nonce\0",
                &ts.to_be_bytes(),
                &ctr.to_be_bytes(),
                self.realm.as_bytes(),
            ],
        )
    }

    fn new_nonce(&mut self, now: u64) -> String {
        let (first, next) = self.counters(now);
        self.counters = Some((first, next + 1));
        let mac = self.nonce_mac(now, next);
        format!(
            "{}{}{}",
            hex::encode(now.to_be_bytes()),
            hex::encode(next.to_be_bytes()),
            hex::encode(&mac[..16])
        )
    }

    /// Decodes and authenticates a nonce: `(timestamp, counter)`.
    fn check_nonce(&self, nonce: &str) -> Option<(u64, u64)> {
        if nonce.len() != NONCE_LEN {
            return None;
        }
        let raw = hex::decode(nonce).ok()?;
        let mut ts = [0u8; 8];
        let mut ctr = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        ctr.copy_from_slice(&raw[8..16]);
        let (ts, ctr) = (u64::from_be_bytes(ts), u64::from_be_bytes(ctr));
        let mac = self.nonce_mac(ts, ctr);
        if bool::from(mac[..16].ct_eq(&raw[16..32])) {
            Some((ts, ctr))
        } else {
            None
        }
    }

    /// Values for `WWW-Authenticate` (or `Proxy-Authenticate`): one per
    /// configured algorithm, in the configured order (RFC 8760 §2.4), each
    /// with realm, `qop="auth"`, nonce, opaque, algorithm, and `stale=true`
    /// when `stale`.
    pub fn challenge(&mut self, now: Time, stale: bool) -> Vec<String> {
        let algorithms = self.algorithms.clone();
        self.challenge_with(now, stale, &algorithms)
    }

    /// Like [`DigestServer::challenge`], but one value per algorithm of
    /// `algorithms`, in that order, all with the same nonce (the shell's
    /// [`super::digest_policy::DigestPolicy`] picks them per agent).
    pub fn challenge_with(
        &mut self,
        now: Time,
        stale: bool,
        algorithms: &[DigestAlgorithm],
    ) -> Vec<String> {
        let nonce = self.new_nonce(now.unix_secs());
        algorithms
            .iter()
            .map(|alg| {
                let mut v = format!(
                    "Digest realm={}, qop=\"auth\", nonce=\"{}\", opaque=\"{}\", algorithm={}",
                    quote(&self.realm),
                    nonce,
                    self.opaque,
                    alg.token()
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// Verifies an `Authorization` (or `Proxy-Authorization`) header value
    /// for a request with `method`. The digest is computed over the `uri`
    /// parameter of the credentials; comparing that with the actual
    /// Request-URI is left to the caller.
    pub fn verify(
        &mut self,
        now: Time,
        method: &str,
        authorization: &str,
        secret_of: impl Fn(&str) -> Option<Secret>,
    ) -> Verdict {
        match self.verify_inner(now.unix_secs(), method, authorization, secret_of) {
            Ok(v) => v,
            Err(e) => Verdict::Rejected(e),
        }
    }

    fn verify_inner(
        &mut self,
        now: u64,
        method: &str,
        authorization: &str,
        secret_of: impl Fn(&str) -> Option<Secret>,
    ) -> Result<Verdict, AuthError> {
        let (first_ctr, next_ctr) = self.counters(now);
        let p = parse_digest(authorization)?;

        let username = p.require("username")?;
        let realm = p.require("realm")?;
        let nonce = p.require("nonce")?;
        let uri = p.require("uri")?;
        let response = p.require("response")?;
        let alg = match p.get("algorithm") {
            Some(a) => DigestAlgorithm::parse(a)?,
            None => DigestAlgorithm::Md5,
        };
        if !self.algorithms.contains(&alg) {
            return Err(AuthError::UnsupportedAlgorithm(alg.token().to_string()));
        }
        let qop = p.require("qop")?;
        if qop.eq_ignore_ascii_case("auth-int") {
            return Err(AuthError::AuthIntUnsupported);
        }
        if !qop.eq_ignore_ascii_case("auth") {
            return Err(AuthError::InvalidParam {
                name: "qop".into(),
                reason: format!("unsupported value `{qop}`"),
            });
        }
        let cnonce = p.require("cnonce")?;
        let nc_str = p.require("nc")?;
        let nc = parse_nc(nc_str)?;
        if p.get("userhash")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(AuthError::UserhashUnsupported);
        }
        if realm != self.realm {
            return Err(AuthError::RealmMismatch);
        }
        if let Some(o) = p.get("opaque") {
            if !bool::from(o.as_bytes().ct_eq(self.opaque.as_bytes())) {
                return Err(AuthError::OpaqueMismatch);
            }
        }
        let (issued_at, ctr) = self.check_nonce(nonce).ok_or(AuthError::InvalidNonce)?;

        // Credentials. Unknown users are hashed against a dummy HA1 so that
        // both failure modes cost the same and look the same.
        let secret_ha1 = secret_of(username).and_then(|s| s.ha1(alg, username, &self.realm));
        let (ha1, known) = match secret_ha1 {
            Some(h) => (h, true),
            None => (
                ha1(alg, username, &self.realm, "\0hotline-unknown-user\0"),
                false,
            ),
        };
        let expected = digest_response(alg, &ha1, nonce, Some((nc_str, cnonce, qop)), method, uri);
        let given = response.to_ascii_lowercase();
        let matches =
            given.len() == alg.hex_len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()));
        if !(matches && known) {
            return Err(AuthError::BadCredentials);
        }

        // Freshness: expired, or not issued by this instance (e.g. before a
        // restart) → stale, so the client retries without re-prompting.
        let expired = now.saturating_sub(issued_at) > self.nonce_ttl_secs;
        if expired || ctr < first_ctr || ctr >= next_ctr {
            return Ok(Verdict::Stale);
        }

        // Replay protection (RFC 7616 §5.5): strictly increasing nc.
        match self.used.get_mut(&ctr) {
            Some(u) => {
                if nc <= u.highest_nc {
                    return Err(AuthError::Replay);
                }
                u.highest_nc = nc;
            }
            None => {
                if ctr < self.evicted_below {
                    return Ok(Verdict::Stale);
                }
                while self.used.len() >= self.max_tracked {
                    match self.used.pop_first() {
                        Some((old, _)) => self.evicted_below = self.evicted_below.max(old + 1),
                        None => break,
                    }
                }
                self.used.insert(
                    ctr,
                    NonceUse {
                        issued_at,
                        highest_nc: nc,
                    },
                );
            }
        }
        Ok(Verdict::Authorized {
            username: username.to_string(),
        })
    }

    /// Drops replay state of nonces older than the TTL (they verify as
    /// stale from now on anyway).
    pub fn expire(&mut self, now: Time) {
        let now = now.unix_secs();
        while let Some((&ctr, u)) = self.used.first_key_value() {
            if now.saturating_sub(u.issued_at) <= self.nonce_ttl_secs {
                break;
            }
            self.used.remove(&ctr);
            self.evicted_below = self.evicted_below.max(ctr + 1);
        }
        // Entries issued out of clock order (clock stepped back) may remain
        // behind a fresh head; sweep them too without lowering safety: an
        // expired nonce is stale regardless of tracking.
        self.used
            .retain(|_, u| now.saturating_sub(u.issued_at) <= self.nonce_ttl_secs);
    }
}

// ---------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------

/// Answers a `WWW-Authenticate` / `Proxy-Authenticate` challenge value and
/// returns a full `Digest ...` credentials value. Uses `qop=auth` when
/// offered, else RFC 2069 style; supports MD5 and SHA-256; echoes `opaque`.
pub fn respond(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, AuthError> {
    let p = parse_digest(challenge)?;
    let realm = p.require("realm")?;
    let nonce = p.require("nonce")?;
    let alg = match p.get("algorithm") {
        Some(a) => DigestAlgorithm::parse(a)?,
        None => DigestAlgorithm::Md5,
    };
    if p.get("userhash")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err(AuthError::UserhashUnsupported);
    }
    let use_qop = match p.get("qop") {
        None => false,
        Some(q) => {
            if qop_options(q).any(|o| o.eq_ignore_ascii_case("auth")) {
                true
            } else if qop_options(q).any(|o| o.eq_ignore_ascii_case("auth-int")) {
                return Err(AuthError::AuthIntUnsupported);
            } else {
                return Err(AuthError::InvalidParam {
                    name: "qop".into(),
                    reason: format!("no supported option in `{q}`"),
                });
            }
        }
    };
    let h1 = ha1(alg, username, realm, password);
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}",
        quote(username),
        quote(realm),
        quote(nonce),
        quote(uri)
    );
    if use_qop {
        if nc == 0 {
            return Err(AuthError::InvalidParam {
                name: "nc".into(),
                reason: "must not be zero".into(),
            });
        }
        let nc_str = format!("{nc:08x}");
        let resp = digest_response(
            alg,
            &h1,
            nonce,
            Some((&nc_str, cnonce, "auth")),
            method,
            uri,
        );
        out.push_str(&format!(
            ", response=\"{resp}\", algorithm={}, cnonce={}, qop=auth, nc={nc_str}",
            alg.token(),
            quote(cnonce)
        ));
    } else {
        let resp = digest_response(alg, &h1, nonce, None, method, uri);
        out.push_str(&format!(", response=\"{resp}\", algorithm={}", alg.token()));
    }
    if let Some(o) = p.get("opaque") {
        out.push_str(&format!(", opaque={}", quote(o)));
    }
    Ok(out)
}

/// Picks the challenge to answer among several `WWW-Authenticate` values:
/// SHA-256 over MD5; non-Digest, malformed and unsupported ones are skipped.
pub fn pick_challenge(values: &[String]) -> Option<&str> {
    let mut md5 = None;
    for v in values {
        let Ok(p) = parse_digest(v) else { continue };
        if p.get("realm").is_none() || p.get("nonce").is_none() {
            continue;
        }
        match DigestAlgorithm::parse(p.get("algorithm").unwrap_or("MD5")) {
            Ok(DigestAlgorithm::Sha256) => return Some(v.as_str()),
            Ok(DigestAlgorithm::Md5) if md5.is_none() => md5 = Some(v.as_str()),
            _ => {}
        }
    }
    md5
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];
    const REALM: &str = "hotline.test";
    const TTL: u64 = 300;
    const T0: Time = Time::from_unix_secs(1_700_000_000);

    fn secs(n: u64) -> std::time::Duration {
        std::time::Duration::from_secs(n)
    }

    fn secrets(user: &str) -> Option<Secret> {
        match user {
            "1001" => Some(Secret::Plain("s3cret".into())),
            "1002" => Some(Secret::Ha1 {
                md5: Some(ha1(DigestAlgorithm::Md5, "1002", REALM, "pw2").to_uppercase()),
                sha256: Some(ha1(DigestAlgorithm::Sha256, "1002", REALM, "pw2")),
            }),
            "1003" => Some(Secret::Ha1 {
                md5: Some(ha1(DigestAlgorithm::Md5, "1003", REALM, "pw3")),
                sha256: None,
            }),
            _ => None,
        }
    }

    fn server() -> DigestServer {
        DigestServer::new(REALM, KEY, TTL)
    }

    fn challenge_for(s: &mut DigestServer, now: Time, alg: DigestAlgorithm) -> String {
        s.challenge(now, false)
            .into_iter()
            .find(|c| c.contains(&format!("algorithm={}", alg.token())))
            .unwrap()
    }

    fn answer(ch: &str, user: &str, pw: &str, nc: u32) -> String {
        respond(ch, "REGISTER", "sip:hotline.test", user, pw, "c0ffee", nc).unwrap()
    }

    #[test]
    fn hmac_rfc4231_case2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_long_key_rfc4231_case6() {
        let key = [0xaau8; 131];
        let mac = hmac_sha256(
            &key,
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    // RFC 7616 §3.9.1.
    const RFC_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    const RFC_REALM: &str = "http-auth@example.org";

    #[test]
    fn rfc7616_vectors() {
        let table = [
            (DigestAlgorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                DigestAlgorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ];
        for (alg, want) in table {
            let h1 = ha1(alg, "Mufasa", RFC_REALM, "Circle of Life");
            let got = digest_response(
                alg,
                &h1,
                RFC_NONCE,
                Some(("00000001", RFC_CNONCE, "auth")),
                "GET",
                "/dir/index.html",
            );
            assert_eq!(got, want, "{alg:?}");

            let ch = format!(
                "Digest realm=\"{RFC_REALM}\", qop=\"auth, auth-int\", algorithm={}, \
                 nonce=\"{RFC_NONCE}\", opaque=\"{RFC_OPAQUE}\"",
                alg.token()
            );
            let auth = respond(
                &ch,
                "GET",
                "/dir/index.html",
                "Mufasa",
                "Circle of Life",
                RFC_CNONCE,
                1,
            )
            .unwrap();
            let p = parse_digest(&auth).unwrap();
            assert_eq!(p.get("response"), Some(want));
            assert_eq!(p.get("opaque"), Some(RFC_OPAQUE));
            assert_eq!(p.get("nc"), Some("00000001"));
            assert_eq!(p.get("qop"), Some("auth"));
            assert_eq!(p.get("cnonce"), Some(RFC_CNONCE));
            assert_eq!(p.get("username"), Some("Mufasa"));
        }
    }

    #[test]
    fn rfc2069_style_without_qop() {
        let ch = "Digest realm=\"r\", nonce=\"n\"";
        let auth = respond(ch, "REGISTER", "sip:r", "u", "p", "c", 1).unwrap();
        let p = parse_digest(&auth).unwrap();
        assert!(p.get("qop").is_none() && p.get("nc").is_none() && p.get("cnonce").is_none());
        let h1 = ha1(DigestAlgorithm::Md5, "u", "r", "p");
        let want = digest_response(DigestAlgorithm::Md5, &h1, "n", None, "REGISTER", "sip:r");
        assert_eq!(p.get("response"), Some(want.as_str()));
        assert_eq!(p.get("algorithm"), Some("MD5"));
        // Our server never accepts credentials without qop.
        let mut s = server();
        assert_eq!(
            s.verify(T0, "REGISTER", &auth, secrets),
            Verdict::Rejected(AuthError::MissingParam("qop"))
        );
    }

    #[test]
    fn challenge_shape() {
        let mut s = server();
        let v = s.challenge(T0, false);
        assert_eq!(v.len(), 2);
        assert!(v[0].contains("algorithm=SHA-256"));
        assert!(v[1].contains("algorithm=MD5"));
        for c in &v {
            let p = parse_digest(c).unwrap();
            assert_eq!(p.get("realm"), Some(REALM));
            assert_eq!(p.get("qop"), Some("auth"));
            assert!(p.get("opaque").is_some());
            assert_eq!(p.get("nonce").map(str::len), Some(NONCE_LEN));
            assert!(p.get("stale").is_none());
        }
        let v = s.challenge(T0, true);
        assert!(v
            .iter()
            .all(|c| parse_digest(c).unwrap().get("stale") == Some("true")));
        // Nonces differ between challenges.
        let n1 = parse_digest(&s.challenge(T0, false)[0])
            .unwrap()
            .get("nonce")
            .map(String::from);
        let n2 = parse_digest(&s.challenge(T0, false)[0])
            .unwrap()
            .get("nonce")
            .map(String::from);
        assert_ne!(n1, n2);
    }

    #[test]
    fn round_trip_table() {
        let table = [
            (DigestAlgorithm::Sha256, "1001", "s3cret"),
            (DigestAlgorithm::Md5, "1001", "s3cret"),
            (DigestAlgorithm::Sha256, "1002", "pw2"),
            (DigestAlgorithm::Md5, "1002", "pw2"),
            (DigestAlgorithm::Md5, "1003", "pw3"),
        ];
        for (alg, user, pw) in table {
            let mut s = server();
            let ch = challenge_for(&mut s, T0, alg);
            let auth = answer(&ch, user, pw, 1);
            assert_eq!(
                s.verify(T0 + secs(1), "REGISTER", &auth, secrets),
                Verdict::Authorized {
                    username: user.into()
                },
                "{alg:?} {user}"
            );
        }
    }

    #[test]
    fn failures_table() {
        let cases: [(&str, DigestAlgorithm, &str, &str); 5] = [
            ("wrong password", DigestAlgorithm::Sha256, "1001", "nope"),
            ("wrong password md5", DigestAlgorithm::Md5, "1001", "nope"),
            ("unknown user", DigestAlgorithm::Sha256, "9999", "s3cret"),
            ("ha1 wrong password", DigestAlgorithm::Md5, "1002", "nope"),
            ("ha1 missing sha256", DigestAlgorithm::Sha256, "1003", "pw3"),
        ];
        for (name, alg, user, pw) in cases {
            let mut s = server();
            let ch = challenge_for(&mut s, T0, alg);
            let auth = answer(&ch, user, pw, 1);
            assert_eq!(
                s.verify(T0, "REGISTER", &auth, secrets),
                Verdict::Rejected(AuthError::BadCredentials),
                "{name}"
            );
            assert_eq!(s.tracked_nonces(), 0, "{name}: failures leave no state");
        }
    }

    #[test]
    fn method_is_bound() {
        let mut s = server();
        let ch = challenge_for(&mut s, T0, DigestAlgorithm::Sha256);
        let auth = answer(&ch, "1001", "s3cret", 1);
        assert_eq!(
            s.verify(T0, "INVITE", &auth, secrets),
            Verdict::Rejected(AuthError::BadCredentials)
        );
    }

    #[test]
    fn stale_nonce() {
        let mut s = server();
        let ch = challenge_for(&mut s, T0, DigestAlgorithm::Sha256);
        let auth = answer(&ch, "1001", "s3cret", 1);
        assert_eq!(
            s.verify(T0 + secs(TTL + 1), "REGISTER", &auth, secrets),
            Verdict::Stale
        );
        // Stale only for correct credentials.
        let bad = answer(&ch, "1001", "wrong", 1);
        assert_eq!(
            s.verify(T0 + secs(TTL + 1), "REGISTER", &bad, secrets),
            Verdict::Rejected(AuthError::BadCredentials)
        );
        // Exactly at the TTL still fine.
        let mut s = server();
        let ch = challenge_for(&mut s, T0, DigestAlgorithm::Md5);
        let auth = answer(&ch, "1001", "s3cret", 1);
        assert!(matches!(
            s.verify(T0 + secs(TTL), "REGISTER", &auth, secrets),
            Verdict::Authorized { .. }
        ));
    }

    #[test]
    fn nonce_from_previous_instance_is_stale() {
        let mut old = server();
        let ch = challenge_for(&mut old, T0, DigestAlgorithm::Sha256);
        let auth = answer(&ch, "1001", "s3cret", 1);
        // Restarted process with the same key, started later.
        let mut new = server();
        new.challenge(T0 + secs(5), false);
        assert_eq!(
            new.verify(T0 + secs(6), "REGISTER", &auth, secrets),
            Verdict::Stale
        );
        // Another key: the MAC fails.
        let mut other = DigestServer::new(REALM, [8u8; 32], TTL);
        assert_eq!(
            other.verify(T0 + secs(6), "REGISTER", &auth, secrets),
            Verdict::Rejected(AuthError::OpaqueMismatch)
        );
        let without_opaque = auth.split(", opaque=").next().unwrap().to_string();
        assert_eq!(
            other.verify(T0 + secs(6), "REGISTER", &without_opaque, secrets),
            Verdict::Rejected(AuthError::InvalidNonce)
        );
    }

    #[test]
    fn forged_nonce() {
        let mut s = server();
        let ch = challenge_for(&mut s, T0, DigestAlgorithm::Sha256);
        let nonce = parse_digest(&ch).unwrap().get("nonce").unwrap().to_string();
        // Tamper with the timestamp to extend the lifetime.
        let mut forged = nonce.clone().into_bytes();
        forged[15] = if forged[15] == b'f' { b'e' } else { b'f' };
        let forged = String::from_utf8(forged).unwrap();
        for n in [forged.as_str(), "abc", "", &"z".repeat(64), &"0".repeat(64)] {
            let ch2 = ch.replace(&nonce, n);
            let auth = answer(&ch2, "1001", "s3cret", 1);
            assert_eq!(
                s.verify(T0, "REGISTER", &auth, secrets),
                Verdict::Rejected(AuthError::InvalidNonce),
                "nonce {n:?}"
            );
        }
    }

    #[test]
    fn replay_and_nc() {
        let mut s = server();
        let ch = challenge_for(&mut s, T0, DigestAlgorithm::Sha256);
        let a1 = answer(&ch, "1001", "s3cret", 1);
        assert!(matches!(
            s.verify(T0, "REGISTER", &a1, secrets),
            Verdict::Authorized { .. }
        ));
        assert_eq!(
            s.verify(T0, "REGISTER", &a1, secrets),
            Verdict::Rejected(AuthError::Replay)
        );
        let a3 = answer(&ch, "1001", "s3cret", 3);
        assert!(matches!(
            s.verify(T0, "REGISTER", &a3, secrets),
            Verdict::Authorized { .. }
        ));
        let a2 = answer(&ch, "1001", "s3cret", 2);
        assert_eq!(
            s.verify(T0, "REGISTER", &a2, secrets),
            Verdict::Rejected(AuthError::Replay)
        );
        let a4 = answer(&ch, "1001", "s3cret", 4);
        assert!(matches!(
            s.verify(T0 + secs(10), "REGISTER", &a4, secrets),
            Verdict::Authorized { .. }
        ));
        assert_eq!(s.tracked_nonces(), 1);
    }

    #[test]
    fn bad_attempt_does_not_burn_nc() {
        let mut s = server();
        let ch = challenge_for(&mut s, T0, DigestAlgorithm::Md5);
        let bad = answer(&ch, "1001", "wrong", 5);
        assert!(matches!(
            s.verify(T0, "REGISTER", &bad, secrets),
            Verdict::Rejected(_)
        ));
        let good = answer(&ch, "1001", "s3cret", 1);
        assert!(matches!(
            s.verify(T0, "REGISTER", &good, secrets),
            Verdict::Authorized { .. }
        ));
    }

    #[test]
    fn expire_and_bound() {
        let mut s = server().with_max_tracked(2);
        let mut auths = Vec::new();
        for i in 0..3 {
            let ch = challenge_for(&mut s, T0 + secs(i), DigestAlgorithm::Sha256);
            auths.push((ch.clone(), answer(&ch, "1001", "s3cret", 1)));
        }
        for (_, a) in &auths {
            assert!(matches!(
                s.verify(T0 + secs(3), "REGISTER", a, secrets),
                Verdict::Authorized { .. }
            ));
        }
        assert_eq!(s.tracked_nonces(), 2);
        // The evicted (oldest) nonce can no longer be used: stale, not fresh.
        let again = answer(&auths[0].0, "1001", "s3cret", 2);
        assert_eq!(
            s.verify(T0 + secs(3), "REGISTER", &again, secrets),
            Verdict::Stale
        );
        // Replays of the evicted nonce are not accepted either.
        assert_eq!(
            s.verify(T0 + secs(3), "REGISTER", &auths[0].1, secrets),
            Verdict::Stale
        );

        s.expire(T0 + secs(1 + TTL + 1));
        assert_eq!(s.tracked_nonces(), 1);
        s.expire(T0 + secs(2 + TTL + 1));
        assert_eq!(s.tracked_nonces(), 0);
    }

    #[test]
    fn request_checks_table() {
        let mut s = server();
        let ch = challenge_for(&mut s, T0, DigestAlgorithm::Sha256);
        let good = answer(&ch, "1001", "s3cret", 1);
        let drop_param = |name: &str| -> String {
            let p = parse_digest(&good).unwrap();
            let rest: Vec<String> = p
                .iter()
                .filter(|(n, _)| *n != name)
                .map(|(n, v)| format!("{n}={}", quote(v)))
                .collect();
            format!("Digest {}", rest.join(", "))
        };
        let set_param = |name: &str, val: &str| -> String {
            let p = parse_digest(&good).unwrap();
            let rest: Vec<String> = p
                .iter()
                .map(|(n, v)| format!("{n}={}", quote(if n == name { val } else { v })))
                .collect();
            format!("Digest {}", rest.join(", "))
        };
        let cases: Vec<(&str, String, AuthError)> = vec![
            ("no uri", drop_param("uri"), AuthError::MissingParam("uri")),
            (
                "no username",
                drop_param("username"),
                AuthError::MissingParam("username"),
            ),
            (
                "no realm",
                drop_param("realm"),
                AuthError::MissingParam("realm"),
            ),
            (
                "no nonce",
                drop_param("nonce"),
                AuthError::MissingParam("nonce"),
            ),
            (
                "no response",
                drop_param("response"),
                AuthError::MissingParam("response"),
            ),
            ("no qop", drop_param("qop"), AuthError::MissingParam("qop")),
            (
                "no cnonce",
                drop_param("cnonce"),
                AuthError::MissingParam("cnonce"),
            ),
            ("no nc", drop_param("nc"), AuthError::MissingParam("nc")),
            (
                "realm",
                set_param("realm", "evil.test"),
                AuthError::RealmMismatch,
            ),
            (
                "auth-int",
                set_param("qop", "auth-int"),
                AuthError::AuthIntUnsupported,
            ),
            (
                "qop other",
                set_param("qop", "foo"),
                AuthError::InvalidParam {
                    name: "qop".into(),
                    reason: "unsupported value `foo`".into(),
                },
            ),
            (
                "md5-sess",
                set_param("algorithm", "MD5-sess"),
                AuthError::UnsupportedAlgorithm("MD5-sess".into()),
            ),
            (
                "sha-sess",
                set_param("algorithm", "SHA-256-sess"),
                AuthError::UnsupportedAlgorithm("SHA-256-sess".into()),
            ),
            (
                "opaque",
                set_param("opaque", "x"),
                AuthError::OpaqueMismatch,
            ),
            (
                "nc short",
                set_param("nc", "1"),
                AuthError::InvalidParam {
                    name: "nc".into(),
                    reason: "must be 8 hex digits".into(),
                },
            ),
            (
                "nc zero",
                set_param("nc", "00000000"),
                AuthError::InvalidParam {
                    name: "nc".into(),
                    reason: "must not be zero".into(),
                },
            ),
            (
                "response garbage",
                set_param("response", "zz"),
                AuthError::BadCredentials,
            ),
            (
                "userhash",
                format!("{good}, userhash=true"),
                AuthError::UserhashUnsupported,
            ),
            ("basic", "Basic dXNlcjpwdw==".into(), AuthError::NotDigest),
            (
                "dup",
                format!("{good}, realm=\"x\""),
                AuthError::DuplicateParam("realm".into()),
            ),
        ];
        for (name, hdr, want) in cases {
            assert_eq!(
                s.verify(T0, "REGISTER", &hdr, secrets),
                Verdict::Rejected(want),
                "{name}: {hdr}"
            );
        }
        // Opaque is optional; algorithm defaults to MD5 (so SHA-256 creds
        // without it are wrong); uppercase response hex is accepted.
        let upper = set_param(
            "response",
            &parse_digest(&good)
                .unwrap()
                .get("response")
                .unwrap()
                .to_uppercase(),
        );
        let no_opaque = drop_param("opaque");
        assert!(matches!(
            s.verify(T0, "REGISTER", &no_opaque, secrets),
            Verdict::Authorized { .. }
        ));
        assert_eq!(
            s.verify(T0, "REGISTER", &drop_param("algorithm"), secrets),
            Verdict::Rejected(AuthError::BadCredentials)
        );
        let upper2 = upper.replace("nc=\"00000001\"", "nc=\"00000002\"");
        // nc is part of the hash: changing it invalidates the response.
        assert_eq!(
            s.verify(T0, "REGISTER", &upper2, secrets),
            Verdict::Rejected(AuthError::BadCredentials)
        );
        let ch = challenge_for(&mut s, T0, DigestAlgorithm::Sha256);
        let fresh = answer(&ch, "1001", "s3cret", 1);
        let p = parse_digest(&fresh).unwrap();
        let resp = p.get("response").unwrap();
        let fresh_upper = fresh.replace(resp, &resp.to_uppercase());
        assert!(matches!(
            s.verify(T0, "REGISTER", &fresh_upper, secrets),
            Verdict::Authorized { .. }
        ));
    }

    #[test]
    fn parser_accepts() {
        let table: [(&str, &[(&str, &str)]); 5] = [
            (
                "Digest username=\"1001\", realm=\"x\", nc=00000001, qop=auth",
                &[
                    ("username", "1001"),
                    ("realm", "x"),
                    ("nc", "00000001"),
                    ("qop", "auth"),
                ],
            ),
            (
                "  digest   USERNAME = \"a\\\"b\\\\c\" ,, Realm=x,  ",
                &[("username", "a\"b\\c"), ("realm", "x")],
            ),
            (
                "DIGEST a=\"with, comma = and spaces\"",
                &[("a", "with, comma = and spaces")],
            ),
            ("Digest", &[]),
            (
                "Digest\turi=\"sip:1001@h;transport=tcp\",algorithm=SHA-256",
                &[
                    ("uri", "sip:1001@h;transport=tcp"),
                    ("algorithm", "SHA-256"),
                ],
            ),
        ];
        for (input, want) in table {
            let p = parse_digest(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let got: Vec<(&str, &str)> = p.iter().collect();
            assert_eq!(got, want.to_vec(), "{input}");
        }
    }

    #[test]
    fn parser_rejects_naming_param() {
        let table: [(&str, AuthError); 8] = [
            ("Basic abc", AuthError::NotDigest),
            ("Digestusername=\"a\"", AuthError::NotDigest),
            ("", AuthError::NotDigest),
            (
                "Digest username=\"abc",
                AuthError::InvalidParam {
                    name: "username".into(),
                    reason: "unterminated quoted string".into(),
                },
            ),
            (
                "Digest nc=",
                AuthError::InvalidParam {
                    name: "nc".into(),
                    reason: "empty value".into(),
                },
            ),
            (
                "Digest realm",
                AuthError::InvalidParam {
                    name: "realm".into(),
                    reason: "expected `=`".into(),
                },
            ),
            (
                "Digest realm=\"a\" b=c",
                AuthError::InvalidParam {
                    name: "realm".into(),
                    reason: "unexpected 'b' after value".into(),
                },
            ),
            ("Digest a=1, A=2", AuthError::DuplicateParam("a".into())),
        ];
        for (input, want) in table {
            assert_eq!(parse_digest(input), Err(want), "{input}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut s = server();
        let mut inputs: Vec<String> = vec![
            "Digest \"".into(),
            "Digest =".into(),
            "Digest a=\"\\".into(),
            "Digest ,,,,".into(),
            "Digest a=b=c".into(),
            "Digest é=ü".into(),
            "Digest username=\"ü\", realm=\"ß\"".into(),
            "\0\0\0".into(),
            "Digest nonce=\"ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé\""
                .into(),
        ];
        // Deterministic pseudo-random byte soup.
        let mut x: u32 = 12345;
        for _ in 0..500 {
            let mut st = String::from("Digest ");
            for _ in 0..40 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let soup = b"ab=\",\\ \t=\"nc0019fz";
                let c = soup[(x >> 16) as usize % soup.len()];
                st.push(c as char);
            }
            inputs.push(st);
        }
        for i in &inputs {
            let _ = parse_digest(i);
            let v = s.verify(T0, "REGISTER", i, secrets);
            assert!(matches!(v, Verdict::Rejected(_)), "{i:?}");
            let _ = respond(i, "REGISTER", "sip:x", "u", "p", "c", 1);
        }
    }

    #[test]
    fn client_errors() {
        let table: [(&str, AuthError); 5] = [
            ("Digest nonce=\"n\"", AuthError::MissingParam("realm")),
            ("Digest realm=\"r\"", AuthError::MissingParam("nonce")),
            (
                "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
                AuthError::AuthIntUnsupported,
            ),
            (
                "Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess",
                AuthError::UnsupportedAlgorithm("MD5-sess".into()),
            ),
            ("Bearer x", AuthError::NotDigest),
        ];
        for (ch, want) in table {
            assert_eq!(
                respond(ch, "REGISTER", "sip:r", "u", "p", "c", 1),
                Err(want),
                "{ch}"
            );
        }
    }

    #[test]
    fn algorithm_parse() {
        let table = [
            ("MD5", Ok(DigestAlgorithm::Md5)),
            ("md5", Ok(DigestAlgorithm::Md5)),
            ("sha-256", Ok(DigestAlgorithm::Sha256)),
            ("SHA-256", Ok(DigestAlgorithm::Sha256)),
            (
                "MD5-sess",
                Err(AuthError::UnsupportedAlgorithm("MD5-sess".into())),
            ),
            (
                "SHA-512-256",
                Err(AuthError::UnsupportedAlgorithm("SHA-512-256".into())),
            ),
        ];
        for (t, want) in table {
            assert_eq!(DigestAlgorithm::parse(t), want, "{t}");
        }
    }

    #[test]
    fn pick_challenge_prefers_sha256() {
        let md5 = "Digest realm=\"r\", nonce=\"1\", algorithm=MD5".to_string();
        let md5_default = "Digest realm=\"r\", nonce=\"2\"".to_string();
        let sha = "Digest realm=\"r\", nonce=\"3\", algorithm=SHA-256".to_string();
        let sess = "Digest realm=\"r\", nonce=\"4\", algorithm=MD5-sess".to_string();
        let basic = "Basic realm=\"r\"".to_string();
        let table: Vec<(Vec<String>, Option<&str>)> = vec![
            (vec![md5.clone(), sha.clone()], Some(sha.as_str())),
            (vec![sha.clone(), md5.clone()], Some(sha.as_str())),
            (
                vec![basic.clone(), md5_default.clone()],
                Some(md5_default.as_str()),
            ),
            (vec![sess.clone(), md5.clone()], Some(md5.as_str())),
            (vec![basic.clone(), sess.clone()], None),
            (vec![], None),
        ];
        for (vals, want) in table {
            assert_eq!(pick_challenge(&vals), want, "{vals:?}");
        }
        let mut s = server();
        let vals = s.challenge(T0, false);
        assert!(pick_challenge(&vals).unwrap().contains("SHA-256"));
    }

    #[test]
    fn special_chars_round_trip() {
        let realm = "we\"ird\\realm";
        let mut s = DigestServer::new(realm, KEY, TTL);
        let ch = s.challenge(T0, false).remove(0);
        let auth = respond(&ch, "REGISTER", "sip:x", "us\"er", "pw", "c\\n", 1).unwrap();
        let v = s.verify(T0, "REGISTER", &auth, |u| {
            (u == "us\"er").then(|| Secret::Plain("pw".into()))
        });
        assert_eq!(
            v,
            Verdict::Authorized {
                username: "us\"er".into()
            }
        );
    }

    #[test]
    fn secret_debug_redacts() {
        let s = format!("{:?}", Secret::Plain("hunter2".into()));
        assert!(!s.contains("hunter2"));
    }

    #[test]
    fn algorithm_order_is_configurable_and_enforced() {
        let mut server =
            DigestServer::new("r", [7; 32], 300).with_algorithms(vec![DigestAlgorithm::Md5]);
        let challenges = server.challenge(Time::from_unix_secs(1000), false);
        assert_eq!(challenges.len(), 1);
        assert!(
            challenges[0].ends_with("algorithm=MD5"),
            "{}",
            challenges[0]
        );
        let sha = challenges[0].replace("algorithm=MD5", "algorithm=SHA-256");
        let auth = respond(&sha, "REGISTER", "sip:r", "u", "p", "c", 1).unwrap();
        let verdict = server.verify(Time::from_unix_secs(1000), "REGISTER", &auth, |_| {
            Some(Secret::Plain("p".into()))
        });
        assert!(
            matches!(
                verdict,
                Verdict::Rejected(AuthError::UnsupportedAlgorithm(_))
            ),
            "{verdict:?}"
        );
    }
}
