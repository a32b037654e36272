//! Webhook signatures (issue 7 §3: "HMAC-SHA256 signature header with
//! timestamp").
//!
//! The signed message is `"<timestamp>.<body>"`: the decimal unix seconds of
//! the `X-Hotline-Timestamp` header, a dot, and the exact body bytes. The
//! `X-Hotline-Signature` header is `sha256=<lower-case hex HMAC-SHA256>`.
//! Binding the timestamp into the MAC lets a receiver refuse replays of an
//! old, captured request. Pure: the receiver's clock is passed in.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of the signature header's value.
pub const SCHEME: &str = "sha256=";

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp header is not decimal unix seconds.
    #[error("timestamp {0:?} is not unix seconds")]
    BadTimestamp(String),
    /// The timestamp is too far from the receiver's clock.
    #[error("timestamp {timestamp} is {skew_secs} s from now (tolerance {tolerance_secs} s)")]
    Stale {
        /// The request's timestamp.
        timestamp: i64,
        /// Distance from the receiver's clock.
        skew_secs: i64,
        /// Allowed distance.
        tolerance_secs: i64,
    },
    /// The header is not `sha256=<hex>`.
    #[error("signature header is not sha256=<hex>")]
    Malformed,
    /// The MAC does not match (wrong secret, or body/timestamp altered).
    #[error("signature mismatch")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    let mut m = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `X-Hotline-Signature` value for `body` sent at `timestamp` (unix s).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("{SCHEME}{}", hex::encode(tag))
}

/// Check a received request, as a receiver does: parse the timestamp
/// header, refuse it when further than `tolerance_secs` from `now_secs`,
/// and compare the MAC in constant time.
pub fn verify(
    secret: &[u8],
    timestamp_header: &str,
    body: &[u8],
    signature_header: &str,
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let timestamp: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp(timestamp_header.to_string()))?;
    let skew_secs = now_secs.saturating_sub(timestamp).saturating_abs();
    if skew_secs > tolerance_secs {
        return Err(SignatureError::Stale {
            timestamp,
            skew_secs,
            tolerance_secs,
        });
    }
    let hex_tag = signature_header
        .trim()
        .strip_prefix(SCHEME)
        .ok_or(SignatureError::Malformed)?;
    let tag = hex::decode(hex_tag).map_err(|_| SignatureError::Malformed)?;
    mac(secret, timestamp, body)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // The primitive against RFC 4231 test case 2.
        let mut m = HmacSha256::new_from_slice(b"Jefe").expect("any key length");
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sign_covers_timestamp_dot_body() {
        let mut m = HmacSha256::new_from_slice(b"s3cret").expect("any key length");
        m.update(b"1700000000.{\"a\":1}");
        let expected = format!("sha256={}", hex::encode(m.finalize().into_bytes()));
        assert_eq!(sign(b"s3cret", 1_700_000_000, br#"{"a":1}"#), expected);
    }

    /// The worked example of docs/events/README.md ("Webhook requests and
    /// their signature") is what `sign` computes.
    #[test]
    fn the_documented_example_holds() {
        let doc = include_str!("../../docs/events/README.md");
        let body = br#"{"id":"01JDX3S7Q0000000000000000","type":"call.started"}"#;
        let sig = sign(b"change me", 1_764_000_000, body);
        assert_eq!(
            sig,
            "sha256=e3c6329d7f6996034b2da445f7767c844533e78639d4d34794ab2af8135dc1b1"
        );
        assert!(doc.contains(&format!("X-Hotline-Signature: {sig}")));
        assert!(doc.contains(&format!("body: {}", String::from_utf8_lossy(body))));
        assert!(doc.contains("X-Hotline-Timestamp: 1764000000"));
    }

    #[test]
    fn verify_accepts_and_refuses() {
        let body = br#"{"id":"e1"}"#;
        let sig = sign(b"k", 1_000, body);
        assert_eq!(verify(b"k", "1000", body, &sig, 1_100, 300), Ok(()));
        assert_eq!(
            verify(b"other", "1000", body, &sig, 1_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"k", "1000", br#"{"id":"e2"}"#, &sig, 1_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"k", "1001", body, &sig, 1_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify(b"k", "1000", body, &sig, 2_000, 300),
            Err(SignatureError::Stale { .. })
        ));
        assert_eq!(
            verify(b"k", "x", body, &sig, 1_000, 300),
            Err(SignatureError::BadTimestamp("x".into()))
        );
        assert_eq!(
            verify(b"k", "1000", body, "md5=00", 1_000, 300),
            Err(SignatureError::Malformed)
        );
    }
}
