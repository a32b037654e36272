//! DTLS-SRTP on a WebRTC leg (RFC 5763, RFC 5764): the browser is the
//! DTLS client (`a=setup:active` in its answer to our `actpass`), hotline
//! the server. The browser's certificate must hash to the
//! `a=fingerprint` of its SDP (RFC 8122 §5; only `sha-256`, which every
//! browser sends); the handshake negotiates `SRTP_AES128_CM_HMAC_SHA1_80`
//! and the SRTP master keys and salts come out of it (RFC 5764 §4.2,
//! exporter label `EXTRACTOR-dtls_srtp`), to key the leg's SRTP like SDES
//! keys ([`crate::media::srtp`]).
//!
//! hotline's certificate is one self-signed ECDSA P-256 certificate per
//! process ([`identity`]): its fingerprint goes in every WebRTC offer.
//!
//! The handshake is webrtc-rs's sans-IO `rtc-dtls` endpoint. Timers are
//! not run: as the server we only ever answer, and the client's own
//! retransmissions (RFC 6347 §4.2.4) bring ours again when one is lost.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use sha2::{Digest, Sha256};

use crate::media::sdp::{CryptoSuite, MasterKey, SrtpKeys};

/// A `sha-256` certificate fingerprint (RFC 8122 §5).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Parse an `a=fingerprint` value: `sha-256 AB:CD:…` (the hash name
    /// case-insensitive). Other hashes are not accepted.
    pub fn parse(value: &str) -> Option<Self> {
        let (hash, hex) = value.trim().split_once(' ')?;
        if !hash.eq_ignore_ascii_case("sha-256") {
            return None;
        }
        let mut out = [0u8; 32];
        let mut parts = hex.trim().split(':');
        for byte in &mut out {
            let part = parts.next()?;
            if part.len() != 2 {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        parts.next().is_none().then_some(Self(out))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sha-256 ")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why DTLS could not be set up on a leg.
#[derive(Debug, thiserror::Error)]
pub enum DtlsError {
    /// The process certificate could not be made (no crypto provider).
    #[error("DTLS certificate: {0}")]
    Identity(String),
    /// The handshake configuration was refused by the library.
    #[error("DTLS configuration: {0}")]
    Config(String),
}

/// hotline's DTLS certificate and its fingerprint.
pub struct Identity {
    certificate: Certificate,
    fingerprint: Fingerprint,
}

impl Identity {
    /// The fingerprint offered in `a=fingerprint`.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

/// The process's DTLS identity, made on first use.
pub fn identity() -> Result<&'static Identity, DtlsError> {
    static IDENTITY: OnceLock<Result<Identity, String>> = OnceLock::new();
    IDENTITY
        .get_or_init(|| {
            let provider = rtc_dtls::crypto_provider::default_provider()
                .map_err(|e| format!("no crypto provider: {e}"))?;
            let certificate =
                Certificate::generate_self_signed(vec!["hotline".to_string()], provider.crypto())
                    .map_err(|e| e.to_string())?;
            let der = certificate
                .certificate
                .first()
                .ok_or_else(|| "an empty certificate chain".to_string())?;
            let fingerprint = Fingerprint::of(der.as_ref());
            Ok(Identity {
                certificate,
                fingerprint,
            })
        })
        .as_ref()
        .map_err(|e| DtlsError::Identity(e.clone()))
}

/// What one datagram did to the association.
#[derive(Debug, Default)]
pub struct Progress {
    /// Datagrams to send back (handshake flights, alerts).
    pub transmits: Vec<(SocketAddr, Vec<u8>)>,
    /// The handshake completed just now: the leg's SRTP keys.
    pub keys: Option<SrtpKeys>,
    /// The peer closed the association, or it failed for good.
    pub closed: bool,
    /// Why the datagram was refused, if it was.
    pub refused: Option<String>,
}

/// The DTLS server association of one WebRTC leg.
pub struct DtlsServer {
    endpoint: Endpoint,
}

impl DtlsServer {
    /// A server on `local` that accepts only a client whose certificate
    /// hashes to `peer`.
    pub fn new(local: SocketAddr, peer: Fingerprint) -> Result<Self, DtlsError> {
        let id = identity()?;
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| DtlsError::Config(e.to_string()))?;
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider)
            .with_certificates(vec![id.certificate.clone()])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_verify_peer_certificate(Some(Arc::new(move |certs: &[Vec<u8>], _| {
                match certs.first() {
                    Some(der) if Fingerprint::of(der) == peer => Ok(()),
                    _ => Err(rtc_shared::error::Error::Other(
                        "the peer's certificate does not match its SDP a=fingerprint".into(),
                    )),
                }
            })))
            .build(false, None)
            .map_err(|e| DtlsError::Config(e.to_string()))?;
        Ok(Self {
            endpoint: Endpoint::new(
                local,
                rtc_shared::TransportProtocol::UDP,
                Some(Arc::new(config)),
            ),
        })
    }

    /// Feed one DTLS datagram (RFC 7983: first byte 20–63) from `from`.
    pub fn receive(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> Progress {
        let mut progress = Progress::default();
        let events = catch(|| {
            self.endpoint
                .read(now, from, None, BytesMut::from(datagram))
                .map_err(|e| e.to_string())
        });
        match events {
            Ok(events) => {
                for event in events {
                    match event {
                        EndpointEvent::HandshakeComplete => match self.export_keys(from) {
                            Ok(keys) => progress.keys = Some(keys),
                            Err(e) => {
                                progress.refused = Some(e);
                                progress.closed = true;
                            }
                        },
                        EndpointEvent::PeerClosed => progress.closed = true,
                        _ => {} // no data channels on an audio leg
                    }
                }
            }
            Err(e) => progress.refused = Some(e),
        }
        while let Some(t) = self.endpoint.poll_transmit() {
            progress
                .transmits
                .push((t.transport.peer_addr, t.message.to_vec()));
        }
        progress
    }

    /// RFC 5764 §4.2: client key | server key | client salt | server
    /// salt; we are the server, so ours are the second of each.
    fn export_keys(&self, peer: SocketAddr) -> Result<SrtpKeys, String> {
        let state = self
            .endpoint
            .get_connection_state(peer)
            .ok_or("the association vanished")?;
        if state.srtp_protection_profile() != SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 {
            return Err("the peer negotiated no SRTP profile we key".into());
        }
        let suite = CryptoSuite::AesCm128HmacSha1_80;
        let (k, s) = (suite.key_len(), suite.salt_len());
        let material = state
            .export_keying_material("EXTRACTOR-dtls_srtp", &[], 2 * (k + s))
            .map_err(|e| e.to_string())?;
        let m = material.as_ref();
        if m.len() != 2 * (k + s) {
            return Err("short SRTP keying material".into());
        }
        let key = |key: &[u8], salt: &[u8]| {
            MasterKey::from_slice(&[key, salt].concat()).ok_or("SRTP key too long")
        };
        let client = key(&m[..k], &m[2 * k..2 * k + s])?;
        let server = key(&m[k..2 * k], &m[2 * k + s..])?;
        Ok(SrtpKeys {
            suite,
            local: server,
            remote: client,
        })
    }
}

/// Run a library call; a panic inside it (a datagram it did not expect)
/// is an error for this datagram, not the end of the worker.
fn catch<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err("the DTLS library panicked on a datagram".into()),
    }
}
