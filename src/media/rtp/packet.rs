//! The RTP packet (RFC 3550 §5.1): a zero-copy view of a datagram
//! ([`RtpHeader::parse`], on `rtp-rs`, with header extension §5.3.1 and
//! CSRCs), the 12-byte fixed header we write ([`write_rtp`]) and telling RTCP
//! from RTP on a muxed port ([`is_rtcp`], RFC 5761 §4).

use thiserror::Error;

/// The only RTP version (RFC 3550 §5.1).
pub const RTP_VERSION: u8 = 2;
/// Length of the fixed RTP header (RFC 3550 §5.1).
pub const RTP_HEADER_LEN: usize = 12;

/// Why an RTP datagram was rejected or could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Fewer than the 12 bytes of the fixed header (§5.1).
    #[error("RTP datagram of {len} bytes is shorter than the 12-byte fixed header")]
    TruncatedHeader {
        /// Datagram length.
        len: usize,
    },
    /// Version field other than 2 (§5.1).
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC count claims more CSRCs than the datagram holds (§5.1).
    #[error("CSRC count {count} overruns the {len}-byte datagram")]
    CsrcOverrun {
        /// CSRC count from the header.
        count: u8,
        /// Datagram length.
        len: usize,
    },
    /// The header extension (§5.3.1) runs past the end of the datagram.
    #[error("RTP header extension overruns the {len}-byte datagram")]
    ExtensionOverrun {
        /// Datagram length.
        len: usize,
    },
    /// The padding count (last octet, §5.1) is zero or larger than what
    /// follows the header.
    #[error("RTP padding count {pad} is invalid for the {available} bytes after the header")]
    PaddingOverrun {
        /// The padding count octet.
        pad: u8,
        /// Bytes after the header (payload + padding).
        available: usize,
    },
    /// Payload types are 7 bits (§5.1).
    #[error("payload type {0} does not fit in 7 bits")]
    PayloadType(u8),
    /// The output buffer is too small.
    #[error("buffer of {have} bytes cannot hold a {need}-byte packet")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

/// An RTP header extension (RFC 3550 §5.3.1): the profile-defined 16 bits
/// and the extension body (without its 4-byte header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// "defined by profile" field.
    pub profile: u16,
    /// Extension body, a multiple of 4 bytes.
    pub data: &'a [u8],
}

/// A parsed, borrowed view of one RTP datagram (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    /// Padding octets stripped from the end (0 when the P bit is clear).
    pub padding: u8,
    /// Marker bit (for audio: first packet of a talkspurt, RFC 3551 §4.1).
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Header extension, if the X bit is set.
    pub extension: Option<RtpExtension<'a>>,
    /// The payload, without header, extension or padding.
    pub payload: &'a [u8],
    csrc: &'a [u8],
}

impl<'a> RtpHeader<'a> {
    /// Parses and validates an RTP datagram (RFC 3550 §5.1, §5.3.1 and the
    /// checks of Appendix A.1 that concern one packet).
    pub fn parse(datagram: &'a [u8]) -> Result<Self, RtpError> {
        let reader = rtp_rs::RtpReader::new(datagram).map_err(|e| classify(datagram, e))?;
        let count = usize::from(reader.csrc_count());
        let csrc = datagram
            .get(RTP_HEADER_LEN..RTP_HEADER_LEN + 4 * count)
            .unwrap_or(&[]);
        Ok(RtpHeader {
            padding: reader.padding().unwrap_or(0),
            marker: reader.mark(),
            payload_type: reader.payload_type(),
            sequence: u16::from(reader.sequence_number()),
            timestamp: reader.timestamp(),
            ssrc: reader.ssrc(),
            extension: reader
                .extension()
                .map(|(profile, data)| RtpExtension { profile, data }),
            payload: reader.payload(),
            csrc,
        })
    }

    /// Number of contributing sources.
    pub fn csrc_count(&self) -> usize {
        self.csrc.len() / 4
    }

    /// The contributing sources (CSRC list).
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header fields needed to re-send this packet (CSRCs and
    /// extension dropped).
    pub fn fields(&self) -> RtpFields {
        RtpFields {
            marker: self.marker,
            payload_type: self.payload_type,
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
        }
    }
}

/// Turns an `rtp-rs` error into ours, telling which part overran.
fn classify(d: &[u8], e: rtp_rs::RtpReaderError) -> RtpError {
    use rtp_rs::RtpReaderError as E;
    let len = d.len();
    match e {
        E::BufferTooShort(len) => RtpError::TruncatedHeader { len },
        E::UnsupportedVersion(v) => RtpError::BadVersion(v),
        E::HeadersTruncated { .. } | E::PaddingLengthInvalid(_) => {
            let first = d.first().copied().unwrap_or(0);
            let count = first & 0x0f;
            let csrc_end = RTP_HEADER_LEN + 4 * usize::from(count);
            if csrc_end > len {
                return RtpError::CsrcOverrun { count, len };
            }
            let mut header_end = csrc_end;
            if first & 0x10 != 0 {
                let Some(ext) = d.get(csrc_end..csrc_end + 4) else {
                    return RtpError::ExtensionOverrun { len };
                };
                header_end = csrc_end + 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
                if header_end > len {
                    return RtpError::ExtensionOverrun { len };
                }
            }
            RtpError::PaddingOverrun {
                pad: d.last().copied().unwrap_or(0),
                available: len - header_end,
            }
        }
    }
}

/// Fixed-header fields of a packet we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpFields {
    /// Marker bit.
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// Writes a version-2 RTP packet (no padding, extension or CSRCs) with
/// `payload` into `buf`; returns its length (RFC 3550 §5.1).
pub fn write_rtp(buf: &mut [u8], fields: &RtpFields, payload: &[u8]) -> Result<usize, RtpError> {
    if fields.payload_type > 0x7f {
        return Err(RtpError::PayloadType(fields.payload_type));
    }
    let need = RTP_HEADER_LEN + payload.len();
    let have = buf.len();
    let Some(out) = buf.get_mut(..need) else {
        return Err(RtpError::BufferTooSmall { need, have });
    };
    out[0] = RTP_VERSION << 6;
    out[1] = (u8::from(fields.marker) << 7) | fields.payload_type;
    out[2..4].copy_from_slice(&fields.sequence.to_be_bytes());
    out[4..8].copy_from_slice(&fields.timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&fields.ssrc.to_be_bytes());
    out[RTP_HEADER_LEN..].copy_from_slice(payload);
    Ok(need)
}

/// True when a datagram on a muxed RTP/RTCP port is RTCP: second octet
/// (marker + PT as RTP would see it) in 192..=223 (RFC 5761 §4).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram.get(1), Some(192..=223)) && datagram.len() >= 4
}
