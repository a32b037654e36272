//! Forwarding between the two main legs (RFC 3550, RFC 4961 symmetric
//! RTP): each leg's peer latches to the first source that sends (and
//! drops strangers), a datagram is accounted, recorded or mixed, its
//! payload transcoded and its payload type mapped, and it goes out on
//! hotline's own continuous stream toward the other leg; each leg's RTCP
//! is terminated here (its SR/RR read, ours sent).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::quality::{ntp_now, Quality};
use super::recording::Recorder;
use super::{LegFormat, RelayStats};
use crate::media::codec::transcode_in_place;
use crate::media::conference::Conference;
use crate::media::mixer::ParticipantId;
use crate::media::player::Continuation;
use crate::media::ports::PortPair;
use crate::media::recorder::Channel;
use crate::media::rtp::{
    write_rr, write_rtp, write_sdes_cname, write_sr, OutgoingFrame, RtpFields, RtpHeader,
    SourceTiming,
};

pub(super) struct Peer {
    pub(super) rtp: Option<SocketAddr>,
    pub(super) rtcp: Option<SocketAddr>,
    pub(super) latched: bool,
}

impl Peer {
    pub(super) fn new(rtp: Option<SocketAddr>) -> Self {
        Self {
            rtp,
            rtcp: rtp.map(rtcp_of),
            latched: false,
        }
    }

    /// Accept `from` as this peer's RTP source? Latches on first packet.
    pub(super) fn admit_rtp(&mut self, from: SocketAddr) -> bool {
        if self.latched {
            return self.rtp == Some(from);
        }
        self.latched = true;
        if self.rtp != Some(from) {
            self.rtp = Some(from);
            self.rtcp = Some(rtcp_of(from));
        }
        true
    }

    pub(super) fn admit_rtcp(&mut self, from: SocketAddr) -> bool {
        match self.rtcp {
            Some(expected) if self.latched => expected.ip() == from.ip(),
            _ => {
                self.rtcp = Some(from);
                true
            }
        }
    }
}

pub(super) fn rtcp_of(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
}

/// The facts of one received RTP packet, copied out of the buffer so it
/// can be rewritten in place: parsed once per packet.
pub(super) struct Inbound {
    pub(super) fields: RtpFields,
    /// Payload position in the datagram.
    pub(super) payload: std::ops::Range<usize>,
    /// Timestamp units the packet covers (G.711: its bytes; RFC 4733: the
    /// event duration).
    pub(super) samples: u32,
}

impl Inbound {
    pub(super) fn parse(packet: &[u8]) -> Option<(Self, RtpHeader<'_>)> {
        let rtp = RtpHeader::parse(packet).ok()?;
        let start = rtp.payload.as_ptr() as usize - packet.as_ptr() as usize;
        let samples = match rtp.payload_type {
            0 | 8 => rtp.payload.len() as u32,
            _ if rtp.payload.len() >= 4 => {
                u32::from(u16::from_be_bytes([rtp.payload[2], rtp.payload[3]]))
            }
            _ => 160,
        };
        let inbound = Inbound {
            fields: rtp.fields(),
            payload: start..start + rtp.payload.len(),
            samples,
        };
        Some((inbound, rtp))
    }
}

/// Make a packet received from a leg in format `from` fit a leg in format
/// `to` and continue `out`'s stream (RFC 3550 §5.1: same SSRC, continuous
/// sequence and timestamp, marker on the source switch): map the payload
/// type, transcode G.711 in place, rewrite the fixed header. `false` when
/// it carries something `to` did not negotiate.
pub(super) fn forward(
    packet: &mut [u8],
    p: &Inbound,
    from: &LegFormat,
    to: &LegFormat,
    out: &mut Continuation,
) -> bool {
    let pt = p.fields.payload_type;
    let mapped = if pt == from.payload_type {
        if from.law != to.law {
            transcode_in_place(from.law, to.law, &mut packet[p.payload.clone()]);
        }
        Some(to.payload_type)
    } else if Some(pt) == from.telephone_event {
        to.telephone_event
    } else if pt == 13 {
        Some(13) // comfort noise (RFC 3389), static on every leg
    } else {
        None
    };
    let Some(mapped) = mapped else {
        return false;
    };
    let frame = OutgoingFrame {
        source: u64::from(p.fields.ssrc),
        timing: SourceTiming::Relayed {
            sequence: p.fields.sequence,
            timestamp: p.fields.timestamp,
        },
        samples: p.samples,
        marker: p.fields.marker,
        payload_type: mapped,
        payload_len: p.payload.len(),
    };
    let fields = out.stream.next_packet(out.epoch.elapsed(), &frame);
    packet[1] = (u8::from(fields.marker) << 7) | fields.payload_type;
    packet[2..4].copy_from_slice(&fields.sequence.to_be_bytes());
    packet[4..8].copy_from_slice(&fields.timestamp.to_be_bytes());
    packet[8..12].copy_from_slice(&fields.ssrc.to_be_bytes());
    true
}

/// Write one locally made 20 ms frame (`payload`) onto stream `c`.
pub(super) fn local_packet(
    c: &mut Continuation,
    pt: u8,
    payload: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let fields = c.stream.next_packet(
        c.epoch.elapsed(),
        &OutgoingFrame {
            source: 0,
            timing: SourceTiming::Local,
            samples: payload.len() as u32,
            marker: false,
            payload_type: pt,
            payload_len: payload.len(),
        },
    );
    write_rtp(out, &fields, payload).ok()
}

/// Largest datagram the relay forwards; bigger ones are truncated by the
/// kernel into this buffer and dropped (no RTP packet of ours is larger).
pub(super) const MAX_PACKET: usize = 1500;

/// What one RTP datagram from a main leg meets inside the relay task.
pub(super) struct Hop<'a> {
    /// The leg it came from, and the other one.
    pub(super) from: &'a mut Leg,
    pub(super) to: &'a mut Leg,
    /// Its recording channel and mix id.
    pub(super) channel: Channel,
    pub(super) id: ParticipantId,
    /// Not forwarded (the other leg hears music on hold).
    pub(super) muted: bool,
    /// Kept out of the mix (the caller on hold during a consultation).
    pub(super) mix_muted: bool,
    /// Counts what it forwards.
    pub(super) sent: &'a AtomicU64,
}

impl Hop<'_> {
    /// Account, record or mix, and forward one datagram; `true` when it was
    /// RTP from the latched peer (the call is alive).
    pub(super) async fn relay(
        self,
        packet: &mut [u8],
        source: SocketAddr,
        at: Duration,
        mix: &mut Option<Conference>,
        recorder: &mut Option<Recorder>,
        s: &RelayStats,
    ) -> bool {
        if packet.len() >= MAX_PACKET || !self.from.peer.admit_rtp(source) {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let Some((inbound, rtp)) = Inbound::parse(packet) else {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        self.from.quality.on_rtp(at, &rtp);
        if let Some(c) = mix.as_mut() {
            if !self.mix_muted && rtp.payload_type == self.from.format.payload_type {
                c.push_payload(self.id, rtp.payload);
            }
            return true;
        }
        if let Some(r) = recorder.as_mut() {
            r.push(self.channel, at, &rtp);
        }
        if Some(rtp.payload_type) == self.from.format.telephone_event {
            // A key a player (IVR, queue) already took stays there: its
            // retransmitted end packets never reach the other party.
            let now = self.from.out.epoch.elapsed();
            if !self
                .from
                .out
                .keys
                .pass_event(now, rtp.timestamp, rtp.marker, rtp.payload)
            {
                s.dropped.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        if self.muted {
            return true;
        }
        let (Some(to), true) = (
            self.to.peer.rtp,
            forward(
                packet,
                &inbound,
                &self.from.format,
                &self.to.format,
                &mut self.to.out,
            ),
        ) else {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        if self.to.pair.rtp.send_to(packet, to).await.is_ok() {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        true
    }
}

/// One main leg inside the relay task.
pub(super) struct Leg {
    pub(super) pair: std::sync::Arc<PortPair>,
    pub(super) peer: Peer,
    pub(super) quality: Quality,
    pub(super) format: LegFormat,
    /// Our outgoing stream toward this leg.
    pub(super) out: Continuation,
}

impl Leg {
    /// The peer's RTCP: parsed for the call record, never forwarded.
    pub(super) fn receive_rtcp(
        &mut self,
        packet: &[u8],
        source: SocketAddr,
        at: Duration,
        s: &RelayStats,
    ) {
        if packet.len() >= MAX_PACKET || !self.peer.admit_rtcp(source) {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        s.rtcp.fetch_add(1, Ordering::Relaxed);
        let ours = self.out.stream.ssrc();
        self.quality.on_rtcp(at, packet, ours);
    }

    /// Send our RTCP report to the leg: SR (or RR before we sent
    /// anything) + SDES CNAME.
    pub(super) async fn send_rtcp(&mut self, now: Duration, cname: &str, buf: &mut [u8]) -> bool {
        let Some(to) = self.peer.rtcp else {
            return false;
        };
        let blocks: Vec<_> = self
            .quality
            .current
            .as_mut()
            .map(|s| s.report_block(now))
            .into_iter()
            .collect();
        let ssrc = self.out.stream.ssrc();
        let first = if self.out.stream.packet_count() > 0 {
            let info = self
                .out
                .stream
                .sender_info(self.out.epoch.elapsed(), ntp_now());
            write_sr(buf, ssrc, &info, &blocks)
        } else {
            write_rr(buf, ssrc, &blocks)
        };
        let Ok(n) = first else { return false };
        let Ok(m) = write_sdes_cname(&mut buf[n..], ssrc, cname) else {
            return false;
        };
        let sent = self.pair.rtcp.send_to(&buf[..n + m], to).await.is_ok();
        if sent {
            self.quality.rtcp_sent += 1;
        }
        sent
    }
}
