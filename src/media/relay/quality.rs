//! Receive statistics of one main leg across SSRC changes (RFC 3550
//! §6.4, A.1, A.8) and what the peer's own SR/RR say about our stream,
//! for the call record's [`super::LegQuality`].

use std::time::Duration;

use super::LegQuality;
use crate::media::rtp::{ntp_from_unix, parse_rtcp, ReceiveStats, RtcpReport, RtpHeader};

/// Receive statistics of one side, across SSRC changes.
#[derive(Default)]
pub(super) struct Quality {
    pub(super) current: Option<ReceiveStats>,
    /// Every valid RTP packet (RFC 3550's own `received` skips probation).
    pub(super) received: u64,
    pub(super) lost_before: i64,
    pub(super) peer: Option<(f64, f64)>,
    pub(super) rtt: Option<Duration>,
    pub(super) rtcp_sent: u64,
    pub(super) rtcp_received: u64,
}

impl Quality {
    pub(super) fn on_rtp(&mut self, arrival: Duration, rtp: &RtpHeader<'_>) {
        self.received += 1;
        if self.current.as_ref().is_none_or(|s| s.ssrc() != rtp.ssrc) {
            if let Some(old) = self.current.take() {
                self.lost_before += i64::from(old.cumulative_lost());
            }
            self.current = Some(ReceiveStats::new(rtp.ssrc, 8000));
        }
        if let Some(s) = self.current.as_mut() {
            s.on_packet(arrival, rtp.sequence, rtp.timestamp);
        }
    }

    /// The peer's SR/RR: remember its SR for our LSR/DLSR, and what it
    /// says about our stream `ours`.
    pub(super) fn on_rtcp(&mut self, arrival: Duration, packet: &[u8], ours: u32) {
        let Ok(reports) = parse_rtcp(packet) else {
            return;
        };
        self.rtcp_received += 1;
        for report in &reports {
            if let (RtcpReport::Sender { ssrc, info, .. }, Some(s)) =
                (report, self.current.as_mut())
            {
                if *ssrc == s.ssrc() {
                    s.on_sender_report(arrival, info.ntp_timestamp);
                }
            }
            for block in report.blocks().iter().filter(|b| b.ssrc == ours) {
                self.peer = Some((
                    f64::from(block.fraction_lost) / 256.0,
                    f64::from(block.jitter) / 8.0,
                ));
                if let Some(rtt) = block.round_trip(ntp_now()) {
                    self.rtt = Some(rtt);
                }
            }
        }
    }

    pub(super) fn report(&self) -> LegQuality {
        let (lost, jitter_ms) = match &self.current {
            Some(s) => (
                i64::from(s.cumulative_lost()),
                s.jitter_duration().as_secs_f64() * 1000.0,
            ),
            None => (0, 0.0),
        };
        LegQuality {
            received: self.received,
            lost: self.lost_before + lost,
            jitter_ms,
            peer_fraction_lost: self.peer.map(|p| p.0),
            peer_jitter_ms: self.peer.map(|p| p.1),
            rtt_ms: self.rtt.map(|d| d.as_secs_f64() * 1000.0),
            rtcp_sent: self.rtcp_sent,
            rtcp_received: self.rtcp_received,
            refused: 0,
        }
    }
}

pub(super) fn ntp_now() -> u64 {
    ntp_from_unix(crate::util::unix_now_precise())
}
