//! The media transport of a WebRTC leg (issue 17 §1: agents answering in
//! the browser): one UDP port carries STUN, DTLS and SRTP/SRTCP
//! together (RFC 8843 bundle of one audio section, RFC 5761 `rtcp-mux`),
//! told apart by their first byte (RFC 7983 §7: 0–3 STUN, 20–63 DTLS,
//! 128–191 RTP/RTCP).
//!
//! A leg becomes WebRTC on its [`PortPair`](super::ports::PortPair): our
//! ICE credentials are made when its offer is written
//! ([`WebRtcTransport::new`]), the browser's certificate fingerprint
//! arrives with its answer ([`WebRtcTransport::arm`]); from then on the
//! pair answers ICE checks ([`ice`]), runs the DTLS handshake ([`dtls`])
//! and keys the leg's SRTP with what it exports. Every task that lends
//! the pair (relay, player) goes through it, so none needs to know the
//! leg is a browser's. Media is taken only from addresses that passed an
//! ICE check with our password, and sent to the one the browser uses: its
//! latest nomination, or the checked address its media comes from (a
//! browser may switch its selected pair without nominating again, e.g.
//! from a loopback to an interface address).

pub mod dtls;
pub mod ice;
pub mod peer;
pub mod restart;

use std::net::SocketAddr;
use std::time::Instant;

pub use dtls::{DtlsError, Fingerprint};
pub use ice::IceCredentials;

use crate::media::sdp::SrtpKeys;

/// How many DTLS datagrams that arrived before the answer (a fast
/// browser) are kept to replay once the leg is armed.
const EARLY_DTLS: usize = 4;

/// How many checked addresses a leg remembers (a browser checks one pair
/// per local interface; the oldest is forgotten first).
const CHECKED: usize = 8;

/// The RFC 7983 class of a datagram on a WebRTC port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// STUN (first byte 0–3).
    Stun,
    /// DTLS (20–63).
    Dtls,
    /// RTP (128–191, not an RTCP packet type).
    Rtp,
    /// RTCP multiplexed on the RTP port (RFC 5761 §4: packet types
    /// 192–223 in the second byte).
    Rtcp,
    /// Anything else (TURN channels, ZRTP, junk).
    Other,
}

/// Classify one datagram (RFC 7983 §7, RFC 5761 §4).
pub fn classify(datagram: &[u8]) -> Class {
    match datagram.first() {
        Some(0..=3) => Class::Stun,
        Some(20..=63) => Class::Dtls,
        Some(128..=191) => match datagram.get(1) {
            Some(pt) if (192..=223).contains(pt) => Class::Rtcp,
            Some(_) => Class::Rtp,
            None => Class::Other,
        },
        _ => Class::Other,
    }
}

/// What a received datagram comes to.
#[derive(Debug, Default)]
pub struct Received {
    /// Datagrams to send back (STUN responses, DTLS flights).
    pub replies: Vec<(SocketAddr, Vec<u8>)>,
    /// The handshake completed: key the leg's SRTP with these.
    pub keys: Option<SrtpKeys>,
    /// Media (SRTP or SRTCP) from the checked peer: hand it on.
    pub media: Option<Class>,
}

/// The WebRTC state of one leg's port.
pub struct WebRtcTransport {
    local: SocketAddr,
    ice: IceCredentials,
    /// The credentials an ICE restart replaced, still answered until the
    /// browser checks with the new ones (its consent checks go on with
    /// the old ones until it has the restart's offer).
    previous: Option<IceCredentials>,
    dtls: Option<dtls::DtlsServer>,
    /// DTLS that came before the answer armed the leg.
    early: Vec<(SocketAddr, Vec<u8>)>,
    /// Where media goes: the browser's nominated address, or the latest
    /// checked one its media came from.
    remote: Option<SocketAddr>,
    nominated: bool,
    /// Addresses that passed an ICE check, newest last.
    checked: Vec<SocketAddr>,
    /// Why a datagram was refused, logged once per leg.
    logged: bool,
}

impl WebRtcTransport {
    /// A leg on `local` with fresh ICE credentials.
    pub fn new(local: SocketAddr) -> Self {
        Self {
            local,
            ice: IceCredentials::random(),
            previous: None,
            dtls: None,
            early: Vec::new(),
            remote: None,
            nominated: false,
            checked: Vec::new(),
            logged: false,
        }
    }

    /// Our ICE credentials (for the offer).
    pub fn credentials(&self) -> &IceCredentials {
        &self.ice
    }

    /// The browser's answer gave its certificate's fingerprint: accept
    /// its DTLS handshake (replaying what came early). The same
    /// fingerprint again changes nothing (a re-offer).
    pub fn arm(&mut self, now: Instant, peer: Fingerprint) -> Result<Received, DtlsError> {
        if self.dtls.is_some() {
            return Ok(Received::default());
        }
        self.dtls = Some(dtls::DtlsServer::new(self.local, peer)?);
        let mut out = Received::default();
        for (from, datagram) in std::mem::take(&mut self.early) {
            let r = self.receive(now, from, &datagram);
            out.replies.extend(r.replies);
            out.keys = out.keys.or(r.keys);
        }
        Ok(out)
    }

    /// Where media goes: the checked peer.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// One datagram from `from`.
    pub fn receive(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> Received {
        let mut out = Received::default();
        match classify(datagram) {
            Class::Stun => match self.check(datagram, from) {
                ice::Binding::Answer {
                    response,
                    nominated,
                } => {
                    self.checked.retain(|a| *a != from);
                    if self.checked.len() == CHECKED {
                        self.checked.remove(0);
                    }
                    self.checked.push(from);
                    // A nominated pair is where media goes until another
                    // is nominated or the media moves.
                    if nominated || !self.nominated {
                        self.remote = Some(from);
                        self.nominated |= nominated;
                    }
                    out.replies.push((from, response));
                }
                ice::Binding::Ignore(why) => self.refused(from, why),
            },
            Class::Dtls => {
                if !self.checked(from) {
                    self.refused(from, "DTLS from an address that passed no ICE check");
                    return out;
                }
                match &mut self.dtls {
                    Some(server) => {
                        let p = server.receive(now, from, datagram);
                        if let Some(why) = &p.refused {
                            if !self.logged {
                                self.logged = true;
                                tracing::warn!(%from, error = %why, "DTLS datagram refused on a WebRTC leg (further refusals are not logged)");
                            }
                        }
                        out.replies = p.transmits;
                        out.keys = p.keys;
                    }
                    None if self.early.len() < EARLY_DTLS => {
                        self.early.push((from, datagram.to_vec()));
                    }
                    None => {}
                }
            }
            class @ (Class::Rtp | Class::Rtcp) => {
                if self.checked(from) {
                    // The browser switched pairs: answer where it speaks.
                    self.remote = Some(from);
                    out.media = Some(class);
                } else {
                    self.refused(from, "media from an address that passed no ICE check");
                }
            }
            Class::Other => self.refused(from, "a datagram that is neither STUN, DTLS nor RTP"),
        }
        out
    }

    /// An ICE restart (RFC 8445 §9, offered by us: RFC 8839 §4.4.1.1.1):
    /// new credentials for the next offer. Checks with the old ones are
    /// still answered until one with the new ones arrives; the browser
    /// nominates a pair again; the DTLS association and its keys stay.
    pub fn restart_ice(&mut self) -> IceCredentials {
        let fresh = IceCredentials::random();
        self.previous = Some(std::mem::replace(&mut self.ice, fresh));
        self.nominated = false;
        self.ice.clone()
    }

    /// Judge a STUN datagram against our credentials (and those an ICE
    /// restart replaced, until the browser uses the new ones).
    fn check(&mut self, datagram: &[u8], from: SocketAddr) -> ice::Binding {
        let current = ice::answer(&self.ice, datagram, from);
        match (&current, &self.previous) {
            (ice::Binding::Answer { .. }, Some(_)) => {
                self.previous = None;
                tracing::info!(%from, "ICE restart: the browser checks with the new credentials");
                current
            }
            (ice::Binding::Ignore(_), Some(old)) => match ice::answer(old, datagram, from) {
                ice::Binding::Ignore(_) => current,
                // The old credentials' consent still holds the pair.
                older => older,
            },
            _ => current,
        }
    }

    fn checked(&self, from: SocketAddr) -> bool {
        self.checked.contains(&from)
    }

    fn refused(&mut self, from: SocketAddr, why: &str) {
        if !self.logged {
            self.logged = true;
            tracing::warn!(%from, why, "datagram refused on a WebRTC leg (further refusals are not logged)");
        }
    }
}

#[cfg(test)]
mod tests;
