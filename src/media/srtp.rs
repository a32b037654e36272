//! SRTP and SRTCP on one leg (RFC 3711), keyed by SDES (RFC 4568, see
//! [`crate::media::sdp::SrtpKeys`]): [`LegCrypto`] protects what we send
//! with our key and authenticates and decrypts what we receive with the
//! peer's, one cryptographic context per direction as RFC 3711 §3.2
//! requires, with the rollover counters and the replay window (§3.3.2)
//! kept for the leg's whole life.
//!
//! The transforms are webrtc-rs's sans-IO `rtc-srtp` contexts on ring,
//! the SRTP code the Rust WebRTC stacks share; SDES keys go in as the
//! master key and salt. [`SecureLeg`] is what a leg's
//! [`PortPair`](super::ports::PortPair) holds: installed once the leg's
//! offer/answer settles on SRTP, kept across every task that lends the
//! leg's sockets (player, relay), so prompts, the bridge and music on
//! hold continue one SRTP stream.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::BytesMut;
use rtc_shared::marshal::{MarshalSize, Unmarshal};
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use super::sdp::{CryptoSuite, SrtpKeys};

/// The shortest SRTP packet: an RTP header and a 32-bit tag. Anything
/// shorter (phones send tiny datagrams to keep NAT bindings open) is
/// dropped without counting as a refusal.
const MIN_SRTP: usize = 12 + 4;
/// The shortest SRTCP packet: an RTCP header with the sender's SSRC, the
/// E flag and index (RFC 3711 §3.4), and an 80-bit tag.
const MIN_SRTCP: usize = 8 + 4 + 10;

/// Replay window for received SRTP/SRTCP (RFC 3711 §3.3.2 asks at least 64).
const REPLAY_WINDOW: usize = 128;

/// Why SRTP could not be set up or a packet was refused.
#[derive(Debug, thiserror::Error)]
pub enum SrtpError {
    /// The crypto provider is missing (a build without ring).
    #[error("no SRTP crypto provider: {0}")]
    Provider(String),
    /// A context could not be built from the keys.
    #[error("SRTP {direction} context for {suite}: {reason}")]
    Context {
        /// `inbound` or `outbound`.
        direction: &'static str,
        /// The suite.
        suite: &'static str,
        /// What the library said.
        reason: String,
    },
    /// A packet failed authentication, was a replay, or was malformed.
    #[error("SRTP: {0}")]
    Packet(String),
}

fn profile(suite: CryptoSuite) -> ProtectionProfile {
    match suite {
        CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        CryptoSuite::AesCm256HmacSha1_80 => ProtectionProfile::Aes256CmHmacSha1_80,
        CryptoSuite::AesCm256HmacSha1_32 => ProtectionProfile::Aes256CmHmacSha1_32,
    }
}

/// Run one `rtc-srtp` transform (its own buffer, no copy); a panic inside
/// the library (a malformed packet it did not expect) refuses the packet
/// instead of ending the task that serves the leg.
fn guarded(
    f: impl FnOnce() -> Result<BytesMut, rtc_shared::error::Error>,
) -> Result<BytesMut, SrtpError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(SrtpError::Packet(e.to_string())),
        Err(_) => Err(SrtpError::Packet(
            "the SRTP library panicked on a malformed packet".into(),
        )),
    }
}

/// One leg's two SRTP contexts.
pub struct LegCrypto {
    keys: SrtpKeys,
    outbound: Context,
    inbound: Context,
}

impl std::fmt::Debug for LegCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegCrypto")
            .field("keys", &self.keys)
            .finish()
    }
}

impl LegCrypto {
    /// Contexts for `keys`: ours to send, the peer's to receive.
    pub fn new(keys: &SrtpKeys) -> Result<Self, SrtpError> {
        let provider =
            rtc_srtp::crypto::default_provider().map_err(|e| SrtpError::Provider(e.to_string()))?;
        let suite = keys.suite;
        let build = |direction: &'static str, key: &super::sdp::MasterKey, replay: bool| {
            let (srtp, srtcp) = if replay {
                (
                    Some(srtp_replay_protection(REPLAY_WINDOW)),
                    Some(srtcp_replay_protection(REPLAY_WINDOW)),
                )
            } else {
                (None, None)
            };
            Context::new(
                key.key(suite),
                key.salt(suite),
                profile(suite),
                srtp,
                srtcp,
                provider.crypto(),
            )
            .map_err(|e| SrtpError::Context {
                direction,
                suite: suite.name(),
                reason: e.to_string(),
            })
        };
        Ok(Self {
            keys: *keys,
            outbound: build("outbound", &keys.local, false)?,
            inbound: build("inbound", &keys.remote, true)?,
        })
    }

    /// The peer's new key, ours unchanged: a fresh inbound context only.
    fn rekey_inbound(&mut self, keys: &SrtpKeys) -> Result<(), SrtpError> {
        let fresh = Self::new(keys)?;
        self.inbound = fresh.inbound;
        self.keys = *keys;
        Ok(())
    }

    /// The keys these contexts use.
    pub fn keys(&self) -> &SrtpKeys {
        &self.keys
    }

    /// An RTP packet as SRTP (encrypted payload, authentication tag).
    ///
    /// A packet whose header, as `rtc-srtp` re-reads it (CSRCs, header
    /// extensions and their padding), is longer than the packet is
    /// refused first: `rtc-srtp` 0.21.1's `encrypt_rtp` slices past the
    /// end of such a packet and panics (found by
    /// `fuzz/fuzz_targets/srtp_unprotect.rs`), and a relayed packet's
    /// header comes from the other leg's peer.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        let mut reader = packet;
        let header = rtc_rtp::header::Header::unmarshal(&mut reader)
            .map_err(|e| SrtpError::Packet(format!("RTP header: {e}")))?;
        if header.marshal_size() > packet.len() {
            return Err(SrtpError::Packet(
                "RTP header (with its extensions) longer than the packet".into(),
            ));
        }
        guarded(|| self.outbound.encrypt_rtp_with_header(packet, &header))
    }

    /// An SRTP packet authenticated and decrypted (refused when its tag
    /// is wrong or it is a replay).
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        guarded(|| self.inbound.decrypt_rtp(packet))
    }

    /// An RTCP compound packet as SRTCP.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        guarded(|| self.outbound.encrypt_rtcp(packet))
    }

    /// An SRTCP packet authenticated and decrypted.
    ///
    /// Only encrypted SRTCP (the E flag set) is taken: we never agree to
    /// `UNENCRYPTED_SRTCP` (RFC 4568 §6.3.2), and `rtc-srtp` 0.21.1 hands
    /// an E=0 packet back *without checking its authentication tag*
    /// (found by `fuzz/fuzz_targets/srtp_unprotect.rs`), which would let
    /// anyone inject RTCP at an SRTP leg.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        let tag = profile(self.keys.suite).rtcp_auth_tag_len();
        let e_flag = packet
            .len()
            .checked_sub(tag + 4)
            .and_then(|at| packet.get(at))
            .is_some_and(|b| b & 0x80 != 0);
        if !e_flag {
            return Err(SrtpError::Packet(
                "SRTCP without the E flag (unencrypted SRTCP is never agreed)".into(),
            ));
        }
        guarded(|| self.inbound.decrypt_rtcp(packet))
    }
}

/// What a leg's sockets hold: its SRTP contexts once keyed, and the count
/// of received packets refused (failed authentication or replays).
#[derive(Debug, Default)]
pub struct SecureLeg {
    keyed: AtomicBool,
    crypto: Mutex<Option<LegCrypto>>,
    refused: AtomicU64,
    /// Whether a refused RTP / RTCP packet was logged (once each per leg).
    logged: [AtomicBool; 2],
}

/// A received packet's kind, for the log.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Rtp = 0,
    Rtcp = 1,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rtp => "RTP",
            Kind::Rtcp => "RTCP",
        }
    }
}

/// What to do with a packet on a leg.
#[derive(Debug)]
pub enum Transformed {
    /// The leg is plain RTP: use the packet as it is.
    Plain,
    /// The transformed packet.
    Secure(BytesMut),
    /// Refused (failed authentication, replay, or could not be protected).
    Refused,
}

impl SecureLeg {
    /// Key the leg with `keys`. The same keys again keep the contexts
    /// (their rollover counters and replay windows); new keys replace
    /// them (a re-INVITE that rekeys). Never unkeyed: a leg negotiated as
    /// SRTP stays SRTP for its life, so no task can send it plaintext.
    pub fn key(&self, keys: &SrtpKeys) -> Result<(), SrtpError> {
        let mut slot = self.lock();
        if slot.as_ref().is_some_and(|c| c.keys() == keys) {
            return Ok(());
        }
        if let Some(crypto) = slot
            .as_mut()
            .filter(|c| c.keys.suite == keys.suite && c.keys.local == keys.local)
        {
            // Only the peer rekeyed: our sending context (its rollover
            // counter) goes on; theirs starts afresh with the new key.
            return crypto.rekey_inbound(keys);
        }
        // Keyed even when the contexts cannot be built: the leg then
        // refuses every packet rather than fall back to plaintext.
        self.keyed.store(true, Ordering::Release);
        *slot = None;
        *slot = Some(LegCrypto::new(keys)?);
        Ok(())
    }

    /// The leg will be SRTP with keys not known yet (DTLS-SRTP before its
    /// handshake completes): until [`Self::key`], every packet either
    /// way is refused, never sent or taken as plaintext.
    pub fn expect_keys(&self) {
        self.keyed.store(true, Ordering::Release);
    }

    /// Whether the leg is SRTP.
    pub fn is_keyed(&self) -> bool {
        self.keyed.load(Ordering::Acquire)
    }

    /// Received packets refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<LegCrypto>> {
        match self.crypto.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn apply(
        &self,
        packet: &[u8],
        incoming: Option<Kind>,
        f: impl FnOnce(&mut LegCrypto, &[u8]) -> Result<BytesMut, SrtpError>,
    ) -> Transformed {
        if !self.is_keyed() {
            return Transformed::Plain;
        }
        let mut slot = self.lock();
        let Some(crypto) = slot.as_mut() else {
            return Transformed::Refused; // keyed, but the keys were unusable
        };
        match f(crypto, packet) {
            Ok(p) => Transformed::Secure(p),
            Err(e) => {
                match incoming {
                    Some(kind) => {
                        self.refused.fetch_add(1, Ordering::Relaxed);
                        if !self.logged[kind as usize].swap(true, Ordering::Relaxed) {
                            tracing::warn!(kind = %kind.name(), error = %e, "SRTP packet refused (further refusals of this kind on this leg are counted, not logged)");
                        }
                    }
                    None => tracing::debug!(error = %e, "SRTP could not protect a packet"),
                }
                Transformed::Refused
            }
        }
    }

    /// An RTP packet we send.
    pub fn outgoing_rtp(&self, packet: &[u8]) -> Transformed {
        self.apply(packet, None, LegCrypto::protect_rtp)
    }

    /// An RTP packet we received.
    pub fn incoming_rtp(&self, packet: &[u8]) -> Transformed {
        if self.is_keyed() && packet.len() < MIN_SRTP {
            return Transformed::Refused; // a NAT keep-alive, not media
        }
        self.apply(packet, Some(Kind::Rtp), LegCrypto::unprotect_rtp)
    }

    /// An RTCP packet we send.
    pub fn outgoing_rtcp(&self, packet: &[u8]) -> Transformed {
        self.apply(packet, None, LegCrypto::protect_rtcp)
    }

    /// An RTCP packet we received.
    pub fn incoming_rtcp(&self, packet: &[u8]) -> Transformed {
        if self.is_keyed() && packet.len() < MIN_SRTCP {
            return Transformed::Refused; // a NAT keep-alive, not a report
        }
        self.apply(packet, Some(Kind::Rtcp), LegCrypto::unprotect_rtcp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::sdp::MasterKey;

    fn keys(local: u8, remote: u8) -> SrtpKeys {
        SrtpKeys {
            suite: CryptoSuite::AesCm128HmacSha1_80,
            local: MasterKey::from_slice(&[local; 30]).expect("key"),
            remote: MasterKey::from_slice(&[remote; 30]).expect("key"),
        }
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x80,
            8,
            (seq >> 8) as u8,
            seq as u8,
            0,
            0,
            0,
            160,
            1,
            2,
            3,
            4,
        ];
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn what_one_side_protects_the_other_opens_and_a_stranger_cannot_forge() {
        let alice = SecureLeg::default();
        let bob = SecureLeg::default();
        alice.key(&keys(1, 2)).expect("keyed");
        bob.key(&keys(2, 1)).expect("keyed");
        let payload = [0x55u8; 160];
        let Transformed::Secure(wire) = alice.outgoing_rtp(&rtp(1, &payload)) else {
            panic!("protected");
        };
        assert_eq!(wire.len(), 12 + 160 + 10, "header, payload, 80-bit tag");
        assert!(
            !wire.windows(8).any(|w| w == [0x55; 8]),
            "payload encrypted"
        );
        let Transformed::Secure(plain) = bob.incoming_rtp(&wire) else {
            panic!("opened");
        };
        assert_eq!(plain, rtp(1, &payload));
        // The same packet again is a replay.
        assert!(matches!(bob.incoming_rtp(&wire), Transformed::Refused));
        // One bit flipped: refused.
        let Transformed::Secure(mut wire) = alice.outgoing_rtp(&rtp(2, &payload)) else {
            panic!("protected");
        };
        wire[20] ^= 1;
        assert!(matches!(bob.incoming_rtp(&wire), Transformed::Refused));
        // Plain RTP at an SRTP leg: refused; a NAT keep-alive: dropped.
        assert!(matches!(
            bob.incoming_rtp(&rtp(3, &payload)),
            Transformed::Refused
        ));
        assert!(matches!(bob.incoming_rtcp(&[0; 4]), Transformed::Refused));
        assert_eq!(
            bob.refused(),
            3,
            "replay, forgery, plain; not the keep-alive"
        );
        // RTCP both ways.
        let sr = [
            0x80, 200, 0, 6, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let Transformed::Secure(wire) = alice.outgoing_rtcp(&sr) else {
            panic!("protected");
        };
        let Transformed::Secure(opened) = bob.incoming_rtcp(&wire) else {
            panic!("opened");
        };
        assert_eq!(&opened[..], &sr[..]);
        // The same report with the E flag cleared and a made-up tag: an
        // "unencrypted SRTCP" packet nobody authenticated. Refused.
        let mut forged = sr.to_vec();
        forged.extend_from_slice(&[0, 0, 0, 9]); // E=0, index 9
        forged.extend_from_slice(&[0xAB; 10]); // not a tag
        assert!(matches!(bob.incoming_rtcp(&forged), Transformed::Refused));
    }

    #[test]
    fn a_plain_leg_passes_packets_untouched_and_a_keyed_one_never_unkeys() {
        let leg = SecureLeg::default();
        assert!(matches!(
            leg.outgoing_rtp(&rtp(1, &[1; 10])),
            Transformed::Plain
        ));
        leg.key(&keys(1, 2)).expect("keyed");
        assert!(leg.is_keyed());
        assert!(matches!(
            leg.outgoing_rtp(&rtp(2, &[1; 10])),
            Transformed::Secure(_)
        ));
        // The same keys again keep the contexts (the replay window holds).
        let bob = SecureLeg::default();
        bob.key(&keys(2, 1)).expect("keyed");
        let Transformed::Secure(wire) = bob.outgoing_rtp(&rtp(9, &[1; 10])) else {
            panic!("protected");
        };
        assert!(matches!(leg.incoming_rtp(&wire), Transformed::Secure(_)));
        leg.key(&keys(1, 2)).expect("same keys");
        assert!(
            matches!(leg.incoming_rtp(&wire), Transformed::Refused),
            "still a replay"
        );
    }

    #[test]
    fn what_the_fuzzer_found_is_refused_without_a_panic() {
        let leg = SecureLeg::default();
        leg.key(&keys(1, 2)).expect("keyed");
        // A header whose extensions, as rtc-srtp re-reads them, end past
        // the packet: rtc-srtp 0.21.1 would panic encrypting it.
        let hostile = hex::decode("933d3d3d033d3d3d313d7980808080118080800100000000100000101010101010101010101010101010101010101010101010100e0000000000000010101010010010001600001001103316000000a10000000000f6800000000000001010101010d7").expect("hex");
        assert!(matches!(leg.outgoing_rtp(&hostile), Transformed::Refused));
        assert!(matches!(leg.incoming_rtp(&hostile), Transformed::Refused));
        assert!(matches!(leg.incoming_rtcp(&hostile), Transformed::Refused));
    }

    #[test]
    fn a_peer_that_rekeys_is_opened_with_its_new_key_and_our_stream_goes_on() {
        let us = SecureLeg::default();
        let peer = SecureLeg::default();
        us.key(&keys(1, 2)).expect("keyed");
        peer.key(&keys(2, 1)).expect("keyed");
        let Transformed::Secure(first) = us.outgoing_rtp(&rtp(10, &[7; 20])) else {
            panic!("protected");
        };
        assert!(matches!(peer.incoming_rtp(&first), Transformed::Secure(_)));
        // The peer's re-INVITE brings key 3; ours stays 1.
        us.key(&keys(1, 3)).expect("rekeyed");
        let rekeyed = SecureLeg::default();
        rekeyed.key(&keys(3, 1)).expect("keyed");
        let Transformed::Secure(wire) = rekeyed.outgoing_rtp(&rtp(1, &[9; 20])) else {
            panic!("protected");
        };
        assert!(matches!(us.incoming_rtp(&wire), Transformed::Secure(_)));
        // The old key no longer opens anything.
        let Transformed::Secure(old) = peer.outgoing_rtp(&rtp(2, &[9; 20])) else {
            panic!("protected");
        };
        assert!(matches!(us.incoming_rtp(&old), Transformed::Refused));
        // Our sending context went on: the peer still opens what we send.
        let Transformed::Secure(next) = us.outgoing_rtp(&rtp(11, &[7; 20])) else {
            panic!("protected");
        };
        assert!(matches!(peer.incoming_rtp(&next), Transformed::Secure(_)));
    }
}
