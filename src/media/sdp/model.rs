//! The SDP session model (RFC 4566 §5): a session description, its media
//! descriptions, `a=rtpmap` attributes, the direction attribute (RFC 3264
//! §5.1/§6.1/§8.4, with the legacy RFC 2543 `c=0.0.0.0` hold) and the audio
//! codecs with their RFC 3551 static payload types. Reading and writing the
//! text is [`super::parse`]'s; offer/answer is [`super::offer_answer`]'s.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Media direction attribute (RFC 4566 §6, RFC 3264 §5.1/§6.1/§8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// Direction to put in an answer to this offered direction
    /// (`sendonly` ↔ `recvonly`; `sendrecv` and `inactive` unchanged).
    pub fn reverse(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// Build from send/receive flags.
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Cap `self` by `limit`: send only if both send, receive only if both receive.
    pub fn intersect(self, limit: Direction) -> Self {
        Direction::from_flags(
            self.sends() && limit.sends(),
            self.receives() && limit.receives(),
        )
    }

    /// The attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parse a direction attribute name (case-insensitive).
    pub fn from_attribute(name: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| name.eq_ignore_ascii_case(d.as_str()))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Audio codecs the media engine can handle (RFC 3551 static payload types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// G.711 A-law, static PT 8.
    Pcma,
    /// G.711 µ-law, static PT 0.
    Pcmu,
}

impl AudioCodec {
    /// RFC 3551 static payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            AudioCodec::Pcma => 8,
            AudioCodec::Pcmu => 0,
        }
    }

    /// Encoding name as written in `a=rtpmap`.
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Pcma => "PCMA",
            AudioCodec::Pcmu => "PCMU",
        }
    }

    /// RTP clock rate (Hz).
    pub fn clock_rate(self) -> u32 {
        8000
    }

    /// The `a=rtpmap` for this codec on its static payload type.
    pub fn rtpmap(self) -> RtpMap {
        RtpMap {
            payload_type: self.payload_type(),
            encoding: self.name().to_string(),
            clock_rate: self.clock_rate(),
            channels: None,
        }
    }

    /// Recognise a codec from an rtpmap (case-insensitive name, 8000 Hz, mono).
    pub fn from_rtpmap(map: &RtpMap) -> Option<Self> {
        if map.clock_rate != 8000 || !matches!(map.channels, None | Some(1)) {
            return None;
        }
        [AudioCodec::Pcma, AudioCodec::Pcmu]
            .into_iter()
            .find(|c| map.encoding.eq_ignore_ascii_case(c.name()))
    }
}

impl fmt::Display for AudioCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RFC 3551 §6 static audio payload types: `(encoding, clock rate, channels)`.
pub fn static_payload_type(pt: u8) -> Option<(&'static str, u32, Option<u8>)> {
    Some(match pt {
        0 => ("PCMU", 8000, None),
        3 => ("GSM", 8000, None),
        4 => ("G723", 8000, None),
        5 => ("DVI4", 8000, None),
        6 => ("DVI4", 16000, None),
        7 => ("LPC", 8000, None),
        8 => ("PCMA", 8000, None),
        9 => ("G722", 8000, None),
        10 => ("L16", 44100, Some(2)),
        11 => ("L16", 44100, None),
        12 => ("QCELP", 8000, None),
        13 => ("CN", 8000, None),
        14 => ("MPA", 90000, None),
        15 => ("G728", 8000, None),
        16 => ("DVI4", 11025, None),
        17 => ("DVI4", 22050, None),
        18 => ("G729", 8000, None),
        _ => return None,
    })
}

/// An `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

impl RtpMap {
    /// Whether this maps RFC 4733 `telephone-event/8000`.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event") && self.clock_rate == 8000
    }

    /// Whether this is comfort noise (RFC 3389 `CN`).
    pub fn is_comfort_noise(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("CN")
    }

    /// `encoding/clock[/channels]`, as `a=rtpmap` writes it.
    pub(super) fn describe(&self) -> String {
        match self.channels {
            Some(ch) => format!("{}/{}/{}", self.encoding, self.clock_rate, ch),
            None => format!("{}/{}", self.encoding, self.clock_rate),
        }
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`, ...
    pub media: String,
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, ...
    pub proto: String,
    /// Format list from the `m=` line (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=` address.
    pub connection: Option<IpAddr>,
    pub rtpmaps: Vec<RtpMap>,
    pub fmtps: Vec<(u8, String)>,
    pub direction: Option<Direction>,
    pub ptime: Option<u32>,
    /// `a=rtcp:<port>` (RFC 3605).
    pub rtcp_port: Option<u16>,
    /// Any other attribute, without the leading `a=` (kept, ignored).
    pub other_attributes: Vec<String>,
}

impl MediaDescription {
    pub(super) fn new(media: &str, port: u16, proto: &str, formats: Vec<String>) -> Self {
        MediaDescription {
            media: media.to_string(),
            port,
            proto: proto.to_string(),
            formats,
            connection: None,
            rtpmaps: Vec::new(),
            fmtps: Vec::new(),
            direction: None,
            ptime: None,
            rtcp_port: None,
            other_attributes: Vec::new(),
        }
    }

    /// Whether this is an `m=audio` line.
    pub fn is_audio(&self) -> bool {
        self.media.eq_ignore_ascii_case("audio")
    }

    /// Numeric payload types from the format list, in order (others skipped).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok())
    }

    /// The rtpmap for `pt`: the explicit `a=rtpmap`, else the RFC 3551
    /// static assignment.
    pub fn rtpmap_for(&self, pt: u8) -> Option<RtpMap> {
        if let Some(map) = self.rtpmaps.iter().find(|m| m.payload_type == pt) {
            return Some(map.clone());
        }
        static_payload_type(pt).map(|(name, clock_rate, channels)| RtpMap {
            payload_type: pt,
            encoding: name.to_string(),
            clock_rate,
            channels,
        })
    }

    /// The `a=fmtp` parameters for `pt`, if any.
    pub fn fmtp_for(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, s)| s.as_str())
    }

    /// Supported codecs in this stream's (offerer's preference) order,
    /// with the payload type used for each.
    pub fn codecs(&self) -> Vec<(AudioCodec, u8)> {
        self.payload_types()
            .filter_map(|pt| {
                self.rtpmap_for(pt)
                    .and_then(|m| AudioCodec::from_rtpmap(&m))
                    .map(|c| (c, pt))
            })
            .collect()
    }

    /// The first payload type mapped to `telephone-event/8000`.
    pub fn telephone_event(&self) -> Option<u8> {
        self.payload_types().find(|&pt| {
            self.rtpmaps
                .iter()
                .any(|m| m.payload_type == pt && m.is_telephone_event())
        })
    }

    pub(super) fn describe_formats(&self) -> Vec<String> {
        self.formats
            .iter()
            .map(
                |f| match f.parse::<u8>().ok().and_then(|pt| self.rtpmap_for(pt)) {
                    Some(map) => format!("{}:{}", f, map.describe()),
                    None => f.clone(),
                },
            )
            .collect()
    }

    /// A copy of this m-line rejected per RFC 3264 §6 (port 0, same formats).
    pub(super) fn rejected(&self) -> Self {
        let mut formats = self.formats.clone();
        if formats.is_empty() {
            formats.push("0".to_string());
        }
        MediaDescription::new(&self.media, 0, &self.proto, formats)
    }
}

/// A parsed or generated session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin_username: String,
    pub session_id: u64,
    pub session_version: u64,
    /// The `o=` unicast address (may be a hostname; not used for media).
    pub origin_address: String,
    pub session_name: String,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    /// Session-level attributes other than direction, without `a=`.
    pub other_attributes: Vec<String>,
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Index of the first `m=audio` with a non-zero port.
    pub(super) fn audio_index(&self) -> Option<usize> {
        self.media.iter().position(|m| m.is_audio() && m.port != 0)
    }

    /// The first `m=audio` with a non-zero port.
    pub fn audio(&self) -> Option<&MediaDescription> {
        self.audio_index().map(|i| &self.media[i])
    }

    fn audio_address(&self) -> Option<IpAddr> {
        let audio = self.audio()?;
        audio.connection.or(self.connection)
    }

    /// Where to send audio: media-level `c=` else session-level `c=`, with
    /// the audio port. May be `0.0.0.0:port` for RFC 2543-style hold.
    pub fn audio_endpoint(&self) -> Option<SocketAddr> {
        let audio = self.audio()?;
        let addr = audio.connection.or(self.connection)?;
        Some(SocketAddr::new(addr, audio.port))
    }

    /// Direction of the audio stream as declared by the author of this SDP:
    /// media-level attribute, else session-level, else `sendrecv`. A `c=`
    /// of `0.0.0.0` (RFC 2543 hold) removes the author's receive side, so
    /// `sendrecv` becomes `sendonly` and `recvonly` becomes `inactive`.
    /// Without an active audio stream this is `inactive`.
    pub fn audio_direction(&self) -> Direction {
        let Some(audio) = self.audio() else {
            return Direction::Inactive;
        };
        let declared = audio
            .direction
            .or(self.direction)
            .unwrap_or(Direction::SendRecv);
        match self.audio_address() {
            Some(addr) if addr.is_unspecified() => declared.intersect(Direction::SendOnly),
            _ => declared,
        }
    }

    /// Whether the author of this SDP puts us on hold (RFC 3264 §8.4):
    /// `sendonly`, `inactive` or `c=0.0.0.0`.
    pub fn is_hold(&self) -> bool {
        self.audio().is_some() && !self.audio_direction().receives()
    }
}
