//! Our sender state for one leg ([`OutgoingStream`], RFC 3550 §5.1 and §8):
//! one SSRC whose sequence numbers and timestamps stay continuous while the
//! media source switches (prompt → bridged audio → music on hold), with the
//! marker bit on every switch and the timestamp following elapsed time
//! across gaps.

use std::time::Duration;

use super::packet::RtpFields;
use super::rtcp::SenderInfo;

/// How a frame handed to [`OutgoingStream::next_packet`] is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceTiming {
    /// Generated here (prompt, music on hold, tone): the stream numbers the
    /// packets itself, `samples` apart, plus the elapsed time over gaps.
    Local,
    /// Relayed from another leg (or any source with its own RTP clock, such
    /// as an RFC 4733 event generator): its sequence/timestamp spacing is
    /// kept (losses, silence suppression, events sharing one timestamp),
    /// shifted so that it continues our stream.
    Relayed {
        /// The source packet's sequence number.
        sequence: u16,
        /// The source packet's timestamp.
        timestamp: u32,
    },
}

/// One frame to send on an [`OutgoingStream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingFrame {
    /// Caller-chosen id of the media source (e.g. one per prompt player,
    /// one per bridged leg *and* its SSRC). A change of id is a source
    /// switch: the marker bit is set and numbering is re-anchored.
    pub source: u64,
    /// How the frame is timed.
    pub timing: SourceTiming,
    /// Sample periods this packet covers from its timestamp (160 for 20 ms
    /// at 8 kHz; for an RFC 4733 event packet, its duration field).
    pub samples: u32,
    /// The source's own marker bit (talkspurt or event start).
    pub marker: bool,
    /// Payload type to send.
    pub payload_type: u8,
    /// Payload length in octets (for the SR octet count).
    pub payload_len: usize,
}

#[derive(Debug, Clone, Copy)]
struct LastSent {
    timestamp: u32,
    samples: u32,
    at: Duration,
}

#[derive(Debug, Clone, Copy)]
struct RelayMap {
    seq_offset: u16,
    ts_offset: u32,
    last_in_seq: u16,
    last_in_ts: u32,
}

/// Sequence jump (forward) beyond which a relayed source is re-anchored
/// (RFC 3550 A.1 `MAX_DROPOUT`).
pub(super) const MAX_DROPOUT: u16 = 3000;
/// Backward jump tolerated as reordering (RFC 3550 A.1 `MAX_MISORDER`).
pub(super) const MAX_MISORDER: u16 = 100;
/// Timestamp jump (seconds) beyond which a relayed source is re-anchored.
const MAX_TS_JUMP_SECS: u32 = 10;

/// Our sender state for one leg (RFC 3550 §5.1, §8): one SSRC, and sequence
/// numbers and timestamps that stay continuous across source switches.
///
/// Timestamp rule: the next packet's timestamp is the previous one plus the
/// previous packet's `samples`; if the previous packet's end
/// (`sent_at + samples / clock_rate`) lies two or more frames before `now`,
/// the gap is added too, rounded down to whole frames (so timer jitter of
/// the shell below two frames never moves the timeline, and a pause for
/// hold or a silent prompt gap is seen as elapsed time).
#[derive(Debug, Clone)]
pub struct OutgoingStream {
    ssrc: u32,
    clock_rate: u32,
    first_timestamp: u32,
    next_seq: u16,
    last: Option<LastSent>,
    source: Option<u64>,
    relay: Option<RelayMap>,
    packets: u32,
    octets: u32,
}

impl OutgoingStream {
    /// A new stream. `first_sequence`/`first_timestamp` should be random
    /// (§5.1); `clock_rate` is the RTP clock (8000 for G.711).
    pub fn new(ssrc: u32, first_sequence: u16, first_timestamp: u32, clock_rate: u32) -> Self {
        OutgoingStream {
            ssrc,
            clock_rate: clock_rate.max(1),
            first_timestamp,
            next_seq: first_sequence,
            last: None,
            source: None,
            relay: None,
            packets: 0,
            octets: 0,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Packets sent so far (SR packet count, §6.4.1).
    pub fn packet_count(&self) -> u32 {
        self.packets
    }

    /// Payload octets sent so far (SR octet count, §6.4.1).
    pub fn octet_count(&self) -> u32 {
        self.octets
    }

    fn samples_in(&self, d: Duration) -> u64 {
        (d.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u64
    }

    fn duration_of(&self, samples: u32) -> Duration {
        Duration::from_nanos(u64::from(samples) * 1_000_000_000 / u64::from(self.clock_rate))
    }

    /// The timestamp the next packet would carry if it continued the
    /// timeline (previous end plus whole frames of gap).
    fn natural_timestamp(&self, now: Duration, frame_samples: u32) -> u32 {
        let Some(last) = self.last else {
            return self.first_timestamp;
        };
        let end = last.timestamp.wrapping_add(last.samples);
        let expected_at = last.at + self.duration_of(last.samples);
        let frame = u64::from(if frame_samples > 0 {
            frame_samples
        } else {
            self.clock_rate / 50
        })
        .max(1);
        let gap = now
            .checked_sub(expected_at)
            .map_or(0, |g| self.samples_in(g));
        if gap >= 2 * frame {
            end.wrapping_add(((gap / frame) * frame) as u32)
        } else {
            end
        }
    }

    /// Numbers the next packet: returns the header fields to send with
    /// [`write_rtp`](super::write_rtp).
    pub fn next_packet(&mut self, now: Duration, frame: &OutgoingFrame) -> RtpFields {
        let switched = self.source != Some(frame.source);
        let natural = self.natural_timestamp(now, frame.samples);
        let (sequence, timestamp, resync) = match frame.timing {
            SourceTiming::Local => {
                self.relay = None;
                (self.next_seq, natural, false)
            }
            SourceTiming::Relayed {
                sequence,
                timestamp,
            } => {
                let plausible = !switched
                    && self.relay.is_some_and(|m| {
                        let ds = sequence.wrapping_sub(m.last_in_seq);
                        let dt = timestamp.wrapping_sub(m.last_in_ts);
                        let max_ts = self.clock_rate.saturating_mul(MAX_TS_JUMP_SECS);
                        !(MAX_DROPOUT..=u16::MAX - MAX_MISORDER).contains(&ds)
                            && !(max_ts..=u32::MAX - max_ts).contains(&dt)
                    });
                let map = match self.relay {
                    Some(m) if plausible => m,
                    _ => RelayMap {
                        seq_offset: self.next_seq.wrapping_sub(sequence),
                        ts_offset: natural.wrapping_sub(timestamp),
                        last_in_seq: sequence,
                        last_in_ts: timestamp,
                    },
                };
                let mut map = map;
                if (sequence.wrapping_sub(map.last_in_seq) as i16) >= 0 {
                    map.last_in_seq = sequence;
                }
                if (timestamp.wrapping_sub(map.last_in_ts) as i32) >= 0 {
                    map.last_in_ts = timestamp;
                }
                self.relay = Some(map);
                (
                    sequence.wrapping_add(map.seq_offset),
                    timestamp.wrapping_add(map.ts_offset),
                    !plausible && !switched,
                )
            }
        };
        // Keep the highest sequence number and the newest timestamp.
        if (sequence.wrapping_sub(self.next_seq) as i16) >= 0 {
            self.next_seq = sequence.wrapping_add(1);
        }
        match self.last {
            Some(l) if (timestamp.wrapping_sub(l.timestamp) as i32) < 0 => {}
            Some(l) if l.timestamp == timestamp => {
                self.last = Some(LastSent {
                    timestamp,
                    samples: l.samples.max(frame.samples),
                    at: now,
                });
            }
            _ => {
                self.last = Some(LastSent {
                    timestamp,
                    samples: frame.samples,
                    at: now,
                });
            }
        }
        self.source = Some(frame.source);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(frame.payload_len as u32);
        RtpFields {
            marker: frame.marker || switched || resync,
            payload_type: frame.payload_type,
            sequence,
            timestamp,
            ssrc: self.ssrc,
        }
    }

    /// Sender info for an SR sent at `now` whose wallclock is `ntp`
    /// (§6.4.1: the RTP timestamp corresponds to the same instant as the
    /// NTP timestamp, extrapolated from the last packet sent).
    pub fn sender_info(&self, now: Duration, ntp: u64) -> SenderInfo {
        let rtp_timestamp = match self.last {
            Some(l) => {
                let since = now.checked_sub(l.at).map_or(0, |d| self.samples_in(d));
                l.timestamp.wrapping_add(since as u32)
            }
            None => self.first_timestamp,
        };
        SenderInfo {
            ntp_timestamp: ntp,
            rtp_timestamp,
            packet_count: self.packets,
            octet_count: self.octets,
        }
    }
}
