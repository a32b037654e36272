//! Where a leg's RTP really comes from, and who else is kept out
//! (RFC 4961 symmetric RTP; issue 14 §2 strict latching): a leg's peer
//! starts as its SDP announced and *latches* to the source of the first
//! RTP packet that arrives (a phone behind NAT sends from another address
//! than its SDP names); once latched, packets from any other source are
//! refused and counted, whatever their SSRC. Two exceptions, both
//! signalled or proven: a re-INVITE or UPDATE that moves the peer re-arms
//! latching there ([`Peer::new`] again), and the exact address the SDP
//! negotiated may take the latch over once from an earlier source (a
//! stranger who sprayed the port before the real phone's first packet
//! loses it the moment the phone speaks).
//!
//! A browser's leg ([`Peer::following`]) is the exception to latching: its
//! sources are authenticated below the relay (only addresses that passed
//! an ICE check signed with the leg's password get through,
//! `media::webrtc`), and a browser may move its media from one checked
//! pair to another without any signalling, so the peer follows its media.
//!
//! The latch outlives every hand-over of the caller's media (player →
//! relay → player): it travels in `player::Continuation`, so the moment a
//! task changes hands is no window for a stranger. Pure: no sockets.

use std::net::SocketAddr;
use std::time::Duration;

/// A leg's peer as far as its RTP tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Where we send its RTP (the SDP's address until latched).
    pub rtp: Option<SocketAddr>,
    /// Where we send its RTCP.
    pub rtcp: Option<SocketAddr>,
    latched: bool,
    /// The address its SDP negotiated.
    negotiated: Option<SocketAddr>,
    /// The negotiated address took the latch over from an earlier source.
    taken_over: bool,
    /// Packets refused from other sources.
    refused: u64,
    /// Before latching: a source other than the negotiated one, when its
    /// run of packets began and how many came.
    candidate: Option<(SocketAddr, Duration, u32)>,
    /// Follow the media wherever it comes from (sources checked by ICE).
    follow: bool,
}

/// How long packets must come in a row from one source (not the
/// negotiated address) before the leg latches to it: a NAT'd phone loses
/// its first 100 ms; a stranger flooding the port before the real peer
/// speaks never gets that far.
pub const PROBATION: Duration = Duration::from_millis(100);

/// And how many packets at least (a phone sends one per 20 ms).
pub const PROBATION_PACKETS: u32 = 5;

/// The RTCP address of an RTP address (RFC 3550 §11: the next port).
pub fn rtcp_of(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
}

impl Peer {
    /// A peer whose SDP named `negotiated`, not latched yet.
    pub fn new(negotiated: Option<SocketAddr>) -> Self {
        Self {
            rtp: negotiated,
            rtcp: negotiated.map(rtcp_of),
            latched: false,
            negotiated,
            taken_over: false,
            refused: 0,
            candidate: None,
            follow: false,
        }
    }

    /// A browser's leg: every packet that reaches the relay came from an
    /// address that passed an ICE check, so the peer is wherever its
    /// latest packet came from.
    pub fn following(negotiated: Option<SocketAddr>) -> Self {
        Self {
            follow: true,
            ..Self::new(negotiated)
        }
    }

    /// A peer whose SDP named `negotiated`, latched already to `source`
    /// (an earlier owner of the leg's media learnt it).
    pub fn resume(negotiated: Option<SocketAddr>, source: Option<SocketAddr>) -> Self {
        let mut p = Self::new(negotiated);
        if let Some(s) = source {
            p.latch(s);
            p.taken_over = Some(s) == negotiated;
        }
        p
    }

    fn latch(&mut self, from: SocketAddr) {
        self.latched = true;
        if self.rtp != Some(from) {
            self.rtp = Some(from);
            self.rtcp = Some(rtcp_of(from));
        }
    }

    /// Accept an RTP packet from `from`, arriving at `at` (any monotonic
    /// time base)? See the module docs for when it latches and who may
    /// take the latch over.
    pub fn admit_rtp(&mut self, from: SocketAddr, at: Duration) -> bool {
        if self.follow {
            self.latch(from);
            return true;
        }
        if !self.latched {
            if Some(from) == self.negotiated {
                self.latch(from);
                self.taken_over = true;
                return true;
            }
            let (since, count) = match self.candidate {
                Some((c, since, n)) if c == from => (since, n + 1),
                _ => (at, 1),
            };
            self.candidate = Some((from, since, count));
            if count < PROBATION_PACKETS || at.saturating_sub(since) < PROBATION {
                return false;
            }
            self.latch(from);
            return true;
        }
        if self.rtp == Some(from) {
            return true;
        }
        if !self.taken_over && Some(from) == self.negotiated {
            self.taken_over = true;
            self.latch(from);
            return true;
        }
        self.refused += 1;
        false
    }

    /// Accept an RTCP packet from `from`: from the latched peer's host
    /// (its RTCP port may differ behind NAT), or anyone before latching.
    pub fn admit_rtcp(&mut self, from: SocketAddr) -> bool {
        if self.follow {
            self.rtcp = Some(from);
            return true;
        }
        match self.rtcp {
            Some(expected) if self.latched => {
                let ok = expected.ip() == from.ip();
                if !ok {
                    self.refused += 1;
                }
                ok
            }
            _ => {
                self.rtcp = Some(from);
                true
            }
        }
    }

    /// The source it latched to, if any (for the next owner of the media).
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched.then_some(self.rtp).flatten()
    }

    /// Packets refused from other sources so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_nat_d_phone_latches_after_its_probation_and_strangers_are_refused_and_counted() {
        let mut p = Peer::new(Some(a("10.0.0.5:4000")));
        // Nothing relayed from it or sent to it before its probation.
        for i in 0..5 {
            assert!(!p.admit_rtp(a("203.0.113.7:31000"), ms(20 * i)));
            assert_eq!(p.rtp, Some(a("10.0.0.5:4000")));
        }
        assert!(p.admit_rtp(a("203.0.113.7:31000"), ms(100)));
        assert_eq!(p.rtp, Some(a("203.0.113.7:31000")));
        assert_eq!(p.rtcp, Some(a("203.0.113.7:31001")));
        assert!(
            !p.admit_rtp(a("203.0.113.7:31002"), ms(120)),
            "same host, other port"
        );
        assert!(!p.admit_rtp(a("198.51.100.9:4000"), ms(140)));
        assert_eq!(p.refused(), 2);
        assert_eq!(p.latched(), Some(a("203.0.113.7:31000")));
    }

    #[test]
    fn stray_packets_and_floods_never_latch_before_the_real_phone_speaks() {
        let mut p = Peer::new(Some(a("192.0.2.10:4000")));
        for i in 0..10 {
            assert!(!p.admit_rtp(a("198.51.100.9:5000"), ms(20 * i)));
            assert!(!p.admit_rtp(a("198.51.100.8:5000"), ms(20 * i + 10)));
        }
        // A flood from one source, faster than any phone: not for 100 ms.
        for i in 0..19 {
            assert!(!p.admit_rtp(a("198.51.100.7:5000"), ms(300 + 5 * i)));
        }
        assert_eq!(p.latched(), None);
        assert!(
            p.admit_rtp(a("192.0.2.10:4000"), ms(400)),
            "the negotiated address at once"
        );
        assert!(!p.admit_rtp(a("198.51.100.7:5000"), ms(405)));
    }

    #[test]
    fn the_negotiated_address_takes_the_latch_from_an_early_stranger_once() {
        let mut p = Peer::new(Some(a("192.0.2.10:4000")));
        for i in 0..5 {
            p.admit_rtp(a("198.51.100.9:5000"), ms(20 * i));
        }
        assert!(
            p.admit_rtp(a("198.51.100.9:5000"), ms(100)),
            "a stranger was first, for long enough"
        );
        assert!(
            p.admit_rtp(a("192.0.2.10:4000"), ms(110)),
            "the real phone speaks"
        );
        assert_eq!(p.rtp, Some(a("192.0.2.10:4000")));
        assert!(
            !p.admit_rtp(a("198.51.100.9:5000"), ms(120)),
            "the stranger is out"
        );
        assert_eq!(p.refused(), 1);
    }

    #[test]
    fn a_latch_carried_over_a_hand_over_keeps_strangers_out_from_the_start() {
        let mut p = Peer::resume(Some(a("10.0.0.5:4000")), Some(a("203.0.113.7:31000")));
        assert!(
            !p.admit_rtp(a("198.51.100.9:4000"), ms(0)),
            "no fresh latch on hand-over"
        );
        assert!(p.admit_rtp(a("203.0.113.7:31000"), ms(1)));
        // Only a signalled move re-arms it.
        let mut p = Peer::new(Some(a("203.0.113.7:32000")));
        assert!(p.admit_rtp(a("203.0.113.7:32000"), ms(2)));
    }

    #[test]
    fn rtcp_from_the_latched_host_only() {
        let mut p = Peer::new(Some(a("192.0.2.10:4000")));
        assert!(
            p.admit_rtcp(a("192.0.2.10:4001")),
            "before latching: anyone"
        );
        assert!(p.admit_rtp(a("192.0.2.10:4000"), ms(0)));
        assert!(p.admit_rtcp(a("192.0.2.10:40999")), "same host, NAT'd port");
        assert!(!p.admit_rtcp(a("198.51.100.9:4001")));
    }

    #[test]
    fn a_browsers_leg_follows_its_media_from_pair_to_pair() {
        let mut p = Peer::following(Some(a("127.0.0.1:50000")));
        assert!(p.admit_rtp(a("127.0.0.1:50000"), ms(0)));
        // The browser switched its selected pair: no probation, no refusal.
        assert!(p.admit_rtp(a("192.0.2.2:49280"), ms(20)));
        assert_eq!(p.rtp, Some(a("192.0.2.2:49280")));
        assert!(p.admit_rtcp(a("192.0.2.2:49280")));
        assert_eq!(
            p.rtcp,
            Some(a("192.0.2.2:49280")),
            "RTCP is muxed: same port"
        );
        assert_eq!(p.refused(), 0);
    }
}
