//! The forwarding core of the two main legs (RFC 3550, RFC 4961 symmetric
//! RTP; issue 13 §3 "a pure `Forwarder` core and the socket shell"): each
//! leg's peer latches to the first source that sends (and drops
//! strangers), a datagram is accounted, recorded or mixed, its payload
//! transcoded and its payload type mapped, and it is rewritten onto
//! hotline's own continuous stream toward the other leg; each leg's RTCP
//! is terminated here (its SR/RR read, ours built).
//!
//! Pure: no sockets and no clock reads. The relay task (the shell) owns
//! the sockets, reads the clock once per packet and passes `now` in; this
//! file decides what happens to a datagram ([`Hop::route`]: where to send
//! it, if anywhere) and builds the RTCP to send ([`Leg::rtcp_report`]).
//! That keeps the per-packet decisions testable without sockets and lets
//! a later shell serve many calls' sockets from a few IO workers.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::quality::Quality;
use super::recording::Recorder;
use super::{LegFormat, RelayStats};
use crate::media::codec::transcode_in_place;
use crate::media::conference::Conference;
pub(super) use crate::media::latch::Peer;
use crate::media::mixer::ParticipantId;
use crate::media::player::Continuation;
use crate::media::recorder::Channel;
use crate::media::rtp::{
    write_rr, write_rtp, write_sdes_cname, write_sr, OutgoingFrame, RtpFields, RtpHeader,
    SourceTiming,
};

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
    now: Instant,
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
    let fields = out
        .stream
        .next_packet(now.saturating_duration_since(out.epoch), &frame);
    packet[1] = (u8::from(fields.marker) << 7) | fields.payload_type;
    packet[2..4].copy_from_slice(&fields.sequence.to_be_bytes());
    packet[4..8].copy_from_slice(&fields.timestamp.to_be_bytes());
    packet[8..12].copy_from_slice(&fields.ssrc.to_be_bytes());
    true
}

/// Write one locally made 20 ms frame (`payload`) onto stream `c`, at
/// `now`.
pub(super) fn local_packet(
    c: &mut Continuation,
    pt: u8,
    payload: &[u8],
    out: &mut [u8],
    now: Instant,
) -> Option<usize> {
    let fields = c.stream.next_packet(
        now.saturating_duration_since(c.epoch),
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
}

/// What becomes of one datagram from a main leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Dropped: a stranger's, too big, or the peer is not known yet.
    Stranger,
    /// From the peer but not forwarded: not RTP, mixed, recorded only
    /// (the other side hears music), a key a player took, a payload the
    /// other leg did not negotiate, or no address to send to. `dropped`:
    /// counted as a drop.
    Kept {
        /// Counted as dropped.
        dropped: bool,
    },
    /// Rewritten in place: send it to this address from the other leg's
    /// socket.
    Send(SocketAddr),
}

impl Verdict {
    /// RTP from the latched peer: the call is alive.
    pub(super) fn alive(self) -> bool {
        !matches!(self, Verdict::Stranger)
    }
}

impl Hop<'_> {
    /// Account, record or mix one datagram received at `at` (since the
    /// relay started; `now` is the same instant), and rewrite it for the
    /// other leg when it is to be forwarded.
    pub(super) fn route(
        self,
        packet: &mut [u8],
        source: SocketAddr,
        at: Duration,
        now: Instant,
        mix: &mut Option<Conference>,
        recorder: &mut Option<Recorder>,
    ) -> Verdict {
        if packet.len() >= MAX_PACKET || !self.from.peer.admit_rtp(source, at) {
            return Verdict::Stranger;
        }
        let Some((inbound, rtp)) = Inbound::parse(packet) else {
            return Verdict::Kept { dropped: true };
        };
        self.from.quality.on_rtp(at, &rtp);
        if let Some(c) = mix.as_mut() {
            if !self.mix_muted && rtp.payload_type == self.from.format.payload_type {
                c.push_payload(self.id, rtp.payload);
            }
            return Verdict::Kept { dropped: false };
        }
        if let Some(r) = recorder.as_mut() {
            r.push(self.channel, at, &rtp);
        }
        if Some(rtp.payload_type) == self.from.format.telephone_event {
            // A key a player (IVR, queue) already took stays there: its
            // retransmitted end packets never reach the other party.
            let keys_now = now.saturating_duration_since(self.from.out.epoch);
            if !self
                .from
                .out
                .keys
                .pass_event(keys_now, rtp.timestamp, rtp.marker, rtp.payload)
            {
                return Verdict::Kept { dropped: true };
            }
        }
        if self.muted {
            return Verdict::Kept { dropped: false };
        }
        match (
            self.to.peer.rtp,
            forward(
                packet,
                &inbound,
                &self.from.format,
                &self.to.format,
                &mut self.to.out,
                now,
            ),
        ) {
            (Some(to), true) => Verdict::Send(to),
            _ => Verdict::Kept { dropped: true },
        }
    }
}

/// One main leg inside the relay task (its sockets are the shell's).
pub(super) struct Leg {
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

    /// Our RTCP report to the leg, built in `buf` at `now` (`at` since
    /// the relay started, `ntp` the wall clock as NTP): SR (or RR before we
    /// sent anything) + SDES CNAME, and where to send it.
    pub(super) fn rtcp_report(
        &mut self,
        at: Duration,
        now: Instant,
        ntp: u64,
        cname: &str,
        buf: &mut [u8],
    ) -> Option<(usize, SocketAddr)> {
        let to = self.peer.rtcp?;
        let blocks: Vec<_> = self
            .quality
            .current
            .as_mut()
            .map(|s| s.report_block(at))
            .into_iter()
            .collect();
        let ssrc = self.out.stream.ssrc();
        let first = if self.out.stream.packet_count() > 0 {
            let info = self
                .out
                .stream
                .sender_info(now.saturating_duration_since(self.out.epoch), ntp);
            write_sr(buf, ssrc, &info, &blocks)
        } else {
            write_rr(buf, ssrc, &blocks)
        };
        let n = first.ok()?;
        let m = write_sdes_cname(&mut buf[n..], ssrc, cname).ok()?;
        Some((n + m, to))
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
