//! RTCP sender and receiver reports (RFC 3550 §6.4): parsing a compound
//! datagram for its SR/RR (the other parts skipped by length, §6.1, A.2),
//! writing SR, RR and SDES CNAME (§6.5.1), NTP timestamps (§4) and the
//! round-trip time from LSR/DLSR (§6.4.1).

use std::time::Duration;

use thiserror::Error;

use super::packet::RTP_VERSION;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// RTCP packet type: sender report (RFC 3550 §6.4.1).
pub const RTCP_SR: u8 = 200;
/// RTCP packet type: receiver report (RFC 3550 §6.4.2).
pub const RTCP_RR: u8 = 201;
/// RTCP packet type: source description (RFC 3550 §6.5).
pub const RTCP_SDES: u8 = 202;
/// RTCP packet type: goodbye (RFC 3550 §6.6).
pub const RTCP_BYE: u8 = 203;

/// Why an RTCP datagram was rejected or could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtcpError {
    /// Fewer than 4 bytes where an RTCP header should start.
    #[error("RTCP packet truncated at offset {offset}")]
    Truncated {
        /// Offset in the compound datagram.
        offset: usize,
    },
    /// Version other than 2 (§6.4.1).
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// A packet's length field runs past the datagram (§6.4.1, A.2).
    #[error("RTCP length {words} words at offset {offset} overruns the {len}-byte datagram")]
    LengthOverrun {
        /// Length field + 1 (words).
        words: usize,
        /// Offset of the packet.
        offset: usize,
        /// Datagram length.
        len: usize,
    },
    /// SR/RR report count claims more blocks than the packet holds.
    #[error("RTCP report count {count} overruns a {len}-byte packet")]
    ReportOverrun {
        /// Report count.
        count: u8,
        /// Packet length.
        len: usize,
    },
    /// Padding count zero or larger than the packet body.
    #[error("RTCP padding count {0} is invalid")]
    BadPadding(u8),
    /// More than 31 report blocks (5-bit count).
    #[error("{0} report blocks do not fit the 5-bit count")]
    TooManyBlocks(usize),
    /// CNAME over 255 octets (§6.5).
    #[error("CNAME of {0} octets is over 255")]
    CnameTooLong(usize),
    /// The output buffer is too small.
    #[error("buffer of {have} bytes cannot hold a {need}-byte RTCP packet")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

/// SR sender info (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp (32.32 fixed point seconds since 1900).
    pub ntp_timestamp: u64,
    /// RTP timestamp for the same instant.
    pub rtp_timestamp: u32,
    /// Sender's packet count.
    pub packet_count: u32,
    /// Sender's payload octet count.
    pub octet_count: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed; duplicates can make it
    /// negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | max).
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// LSR: middle 32 bits of the last SR's NTP timestamp (0 = none yet).
    pub last_sr: u32,
    /// DLSR: delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    /// Round-trip time per §6.4.1: `A - LSR - DLSR`, where `A` is the middle
    /// 32 bits of the NTP time at which this report arrived. `None` without
    /// an LSR, or when clocks make the result negative.
    pub fn round_trip(&self, arrival_ntp: u64) -> Option<Duration> {
        if self.last_sr == 0 {
            return None;
        }
        let since = ntp_middle(arrival_ntp).wrapping_sub(self.last_sr);
        if since > u32::MAX / 2 || since < self.delay_since_last_sr {
            return None;
        }
        Some(units_65536_to_duration(since - self.delay_since_last_sr))
    }

    fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        let lost = (self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
        b[4..8].copy_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        b[8..12].copy_from_slice(&self.highest_seq.to_be_bytes());
        b[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        b[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        b[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Option<ReportBlock> {
        let w = |i: usize| -> Option<u32> {
            let s = b.get(i..i + 4)?;
            Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        };
        let lost_word = w(4)?;
        Some(ReportBlock {
            ssrc: w(0)?,
            fraction_lost: (lost_word >> 24) as u8,
            cumulative_lost: ((lost_word << 8) as i32) >> 8,
            highest_seq: w(8)?,
            jitter: w(12)?,
            last_sr: w(16)?,
            delay_since_last_sr: w(20)?,
        })
    }
}

/// An SR or RR found in an RTCP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpReport {
    /// Sender report (§6.4.1).
    Sender {
        /// Sender's SSRC.
        ssrc: u32,
        /// Sender info.
        info: SenderInfo,
        /// Reception report blocks.
        blocks: Vec<ReportBlock>,
    },
    /// Receiver report (§6.4.2).
    Receiver {
        /// Reporter's SSRC.
        ssrc: u32,
        /// Reception report blocks.
        blocks: Vec<ReportBlock>,
    },
}

impl RtcpReport {
    /// The reporter's SSRC.
    pub fn ssrc(&self) -> u32 {
        match self {
            RtcpReport::Sender { ssrc, .. } | RtcpReport::Receiver { ssrc, .. } => *ssrc,
        }
    }

    /// The report blocks.
    pub fn blocks(&self) -> &[ReportBlock] {
        match self {
            RtcpReport::Sender { blocks, .. } | RtcpReport::Receiver { blocks, .. } => blocks,
        }
    }
}

/// Middle 32 bits of a 64-bit NTP timestamp (LSR, §6.4.1).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// NTP timestamp (§4) for a wallclock given as time since the Unix epoch.
pub fn ntp_from_unix(since_unix_epoch: Duration) -> u64 {
    let secs = since_unix_epoch
        .as_secs()
        .wrapping_add(NTP_UNIX_OFFSET_SECS);
    let frac = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

fn units_65536_to_duration(units: u32) -> Duration {
    Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65_536)
}

pub(super) fn duration_to_units_65536(d: Duration) -> u32 {
    let u = d.as_nanos() * 65_536 / 1_000_000_000;
    u32::try_from(u).unwrap_or(u32::MAX)
}

/// Walks a (compound) RTCP datagram and returns every SR and RR in it;
/// SDES, BYE, APP, feedback, XR and unknown types are skipped by their
/// length field (§6.1, A.2). Validated: version 2 on every part, each
/// length inside the datagram, report counts inside their packet, padding
/// inside the packet. The A.2 "first part is SR/RR" rule is not enforced,
/// so reduced-size RTCP (RFC 5506) is accepted.
pub fn parse_rtcp(datagram: &[u8]) -> Result<Vec<RtcpReport>, RtcpError> {
    let mut reports = Vec::new();
    let mut offset = 0;
    if datagram.is_empty() {
        return Err(RtcpError::Truncated { offset });
    }
    while offset < datagram.len() {
        let Some(h) = datagram.get(offset..offset + 4) else {
            return Err(RtcpError::Truncated { offset });
        };
        if h[0] >> 6 != RTP_VERSION {
            return Err(RtcpError::BadVersion(h[0] >> 6));
        }
        let words = usize::from(u16::from_be_bytes([h[2], h[3]])) + 1;
        let Some(packet) = datagram.get(offset..offset + 4 * words) else {
            return Err(RtcpError::LengthOverrun {
                words,
                offset,
                len: datagram.len(),
            });
        };
        let mut body = &packet[4..];
        if h[0] & 0x20 != 0 {
            let pad = body.last().copied().unwrap_or(0);
            if pad == 0 || usize::from(pad) > body.len() {
                return Err(RtcpError::BadPadding(pad));
            }
            body = &body[..body.len() - usize::from(pad)];
        }
        let count = h[0] & 0x1f;
        let pt = h[1];
        let fixed = match pt {
            RTCP_SR => 24,
            RTCP_RR => 4,
            _ => 0,
        };
        if fixed > 0 {
            let need = fixed + 24 * usize::from(count);
            if body.len() < need {
                return Err(RtcpError::ReportOverrun {
                    count,
                    len: packet.len(),
                });
            }
            let word =
                |i: usize| u32::from_be_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
            let ssrc = word(0);
            let blocks: Vec<ReportBlock> = body[fixed..need]
                .chunks_exact(24)
                .filter_map(ReportBlock::from_bytes)
                .collect();
            reports.push(if pt == RTCP_SR {
                RtcpReport::Sender {
                    ssrc,
                    info: SenderInfo {
                        ntp_timestamp: (u64::from(word(4)) << 32) | u64::from(word(8)),
                        rtp_timestamp: word(12),
                        packet_count: word(16),
                        octet_count: word(20),
                    },
                    blocks,
                }
            } else {
                RtcpReport::Receiver { ssrc, blocks }
            });
        }
        offset += 4 * words;
    }
    Ok(reports)
}

fn rtcp_header(out: &mut [u8], count: usize, pt: u8, len: usize) {
    out[0] = (RTP_VERSION << 6) | (count as u8 & 0x1f);
    out[1] = pt;
    out[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
}

fn take(buf: &mut [u8], need: usize) -> Result<&mut [u8], RtcpError> {
    let have = buf.len();
    buf.get_mut(..need)
        .ok_or(RtcpError::BufferTooSmall { need, have })
}

/// Writes a sender report (§6.4.1) into `buf`; returns its length.
pub fn write_sr(
    buf: &mut [u8],
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize, RtcpError> {
    if blocks.len() > 31 {
        return Err(RtcpError::TooManyBlocks(blocks.len()));
    }
    let len = 28 + 24 * blocks.len();
    let out = take(buf, len)?;
    rtcp_header(out, blocks.len(), RTCP_SR, len);
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out[8..16].copy_from_slice(&info.ntp_timestamp.to_be_bytes());
    out[16..20].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
    out[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
    out[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
    for (i, b) in blocks.iter().enumerate() {
        out[28 + 24 * i..52 + 24 * i].copy_from_slice(&b.to_bytes());
    }
    Ok(len)
}

/// Writes a receiver report (§6.4.2) into `buf`; returns its length.
pub fn write_rr(buf: &mut [u8], ssrc: u32, blocks: &[ReportBlock]) -> Result<usize, RtcpError> {
    if blocks.len() > 31 {
        return Err(RtcpError::TooManyBlocks(blocks.len()));
    }
    let len = 8 + 24 * blocks.len();
    let out = take(buf, len)?;
    rtcp_header(out, blocks.len(), RTCP_RR, len);
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    for (i, b) in blocks.iter().enumerate() {
        out[8 + 24 * i..32 + 24 * i].copy_from_slice(&b.to_bytes());
    }
    Ok(len)
}

/// Writes an SDES packet with one chunk carrying a CNAME item (§6.5.1),
/// to follow an SR/RR in a compound packet (§6.1); returns its length.
pub fn write_sdes_cname(buf: &mut [u8], ssrc: u32, cname: &str) -> Result<usize, RtcpError> {
    let name = cname.as_bytes();
    if name.len() > 255 {
        return Err(RtcpError::CnameTooLong(name.len()));
    }
    // header 4 + SSRC 4 + type 1 + len 1 + name + at least one null, to 4.
    let len = (10 + name.len() + 1).div_ceil(4) * 4;
    let out = take(buf, len)?;
    rtcp_header(out, 1, RTCP_SDES, len);
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out[8] = 1; // CNAME
    out[9] = name.len() as u8;
    out[10..10 + name.len()].copy_from_slice(name);
    out[10 + name.len()..].fill(0);
    Ok(len)
}
