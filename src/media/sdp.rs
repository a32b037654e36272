//! SDP parsing, printing and offer/answer negotiation for audio calls.
//!
//! This module is pure (sans-IO): it never touches sockets, files or the
//! clock. It covers exactly what a call-centre B2BUA needs from SDP:
//!
//! * **RFC 4566** (SDP: Session Description Protocol) — line-oriented
//!   `type=value` parsing and canonical printing (CRLF line endings).
//! * **RFC 3264** (An Offer/Answer Model with SDP) — answering an offer
//!   (§6), reading an answer to our own offer, rejecting unsupported
//!   streams with port 0, and hold signalling (§8.4: `a=sendonly`,
//!   `a=inactive`, plus the legacy RFC 2543 `c=0.0.0.0` form).
//! * **RFC 4733** (RTP payload for DTMF digits, telephony tones and
//!   signals) — `telephone-event/8000` on a dynamic payload type.
//! * **RFC 3551** (RTP/AVP profile) — static payload types, so that
//!   `m=audio ... 0 8` without `a=rtpmap` lines is still understood as
//!   PCMU and PCMA.
//!
//! Carriers send "non-standard" SDP, so parsing is deliberately tolerant:
//! CRLF or LF line endings, surrounding whitespace, unknown lines and
//! attributes (kept and ignored), missing `s=`/`t=`/`o=`/`v=`, case-insensitive
//! encoding names, `c=` at session or media level and `b=` lines are all
//! accepted. What we cannot work with is rejected with an [`SdpError`] that
//! names the 1-based SDP line number and the offending line: no `m=audio`,
//! an unparsable port, or no connection address for the audio stream.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Default packetisation time (ms) when neither side says otherwise.
pub const DEFAULT_PTIME: u32 = 20;
/// Payload type we use for `telephone-event/8000` in offers we build.
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// Events we offer/accept for RFC 4733 (DTMF 0-9,*,#,A-D and flash).
pub const TELEPHONE_EVENT_FMTP: &str = "0-16";
/// Origin username / session name written into SDP we generate.
const OUR_NAME: &str = "hotline";
/// Maximum number of characters of an offending line quoted in an error.
const SNIPPET_CHARS: usize = 120;

/// Errors from [`SessionDescription::parse`]. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body was empty or only whitespace.
    #[error("SDP is empty")]
    Empty,
    /// A line that is not of the form `<letter>=<value>`.
    #[error("SDP line {line}: not a `<type>=<value>` line: {content:?}")]
    MalformedLine { line: usize, content: String },
    /// `v=` with a version other than 0.
    #[error("SDP line {line}: unsupported protocol version: {content:?}")]
    UnsupportedVersion { line: usize, content: String },
    /// An `o=` line we could not parse.
    #[error("SDP line {line}: invalid origin (o=): {content:?}")]
    InvalidOrigin { line: usize, content: String },
    /// An `m=` line with too few fields.
    #[error("SDP line {line}: invalid media description (m=): {content:?}")]
    InvalidMedia { line: usize, content: String },
    /// An `m=` line whose port field is not a number in 0..=65535.
    #[error("SDP line {line}: invalid port {value:?} in media description: {content:?}")]
    InvalidPort {
        line: usize,
        value: String,
        content: String,
    },
    /// A `c=` line we could not parse (including hostnames: we do no DNS).
    #[error("SDP line {line}: invalid connection address (c=): {content:?}")]
    InvalidConnection { line: usize, content: String },
    /// A malformed `a=rtpmap` in an audio stream.
    #[error("SDP line {line}: invalid a=rtpmap attribute: {content:?}")]
    InvalidRtpMap { line: usize, content: String },
    /// A malformed `a=fmtp` in an audio stream.
    #[error("SDP line {line}: invalid a=fmtp attribute: {content:?}")]
    InvalidFmtp { line: usize, content: String },
    /// No `m=audio` line at all.
    #[error("SDP has no m=audio media description (searched {lines} lines)")]
    NoAudio { lines: usize },
    /// The active audio stream has neither a media- nor a session-level `c=`.
    #[error("SDP line {line}: audio stream has no connection address (no c= at media or session level): {content:?}")]
    NoConnection { line: usize, content: String },
}

/// Errors from offer/answer negotiation. All of them should be mapped by
/// the caller to SIP `488 Not Acceptable Here` (see [`Self::sip_status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The SDP has no active (port != 0) `m=audio` stream.
    #[error("no active m=audio stream in SDP")]
    NoAudio,
    /// The answerer rejected our audio stream (port 0).
    #[error("audio stream rejected by answerer (port 0)")]
    AudioRejected,
    /// None of the offered codecs is one we support.
    #[error("no common audio codec; offered: [{}]", offered.join(", "))]
    NoCommonCodec { offered: Vec<String> },
    /// The answer chose a codec we did not offer.
    #[error("answer uses codec {encoding} (payload type {payload_type}) which was not offered")]
    CodecNotOffered { payload_type: u8, encoding: String },
    /// The audio stream has no usable connection address.
    #[error("audio stream has no connection address")]
    NoConnection,
    /// The audio stream uses a transport we cannot terminate (e.g. SRTP).
    #[error("unsupported audio transport protocol {proto:?}")]
    UnsupportedTransport { proto: String },
}

impl NegotiationError {
    /// SIP status code the caller should reply with (RFC 3261 §21.4.26).
    pub fn sip_status(&self) -> u16 {
        488
    }
}

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

    fn describe(&self) -> String {
        match self.channels {
            Some(ch) => format!("{}/{}/{}", self.encoding, self.clock_rate, ch),
            None => format!("{}/{}", self.encoding, self.clock_rate),
        }
    }

    /// Parse the value after `a=rtpmap:`.
    fn parse_value(value: &str) -> Option<Self> {
        let mut parts = value.split_whitespace();
        let payload_type = parts.next()?.parse().ok()?;
        let spec = parts.next()?;
        let mut fields = spec.split('/');
        let encoding = fields.next()?.to_string();
        if encoding.is_empty() {
            return None;
        }
        let clock_rate = fields.next()?.parse().ok()?;
        let channels = match fields.next() {
            Some(ch) => Some(ch.parse().ok()?),
            None => None,
        };
        Some(RtpMap {
            payload_type,
            encoding,
            clock_rate,
            channels,
        })
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
    fn new(media: &str, port: u16, proto: &str, formats: Vec<String>) -> Self {
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

    fn describe_formats(&self) -> Vec<String> {
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
    fn rejected(&self) -> Self {
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

fn snippet(s: &str) -> String {
    if s.chars().count() <= SNIPPET_CHARS {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(SNIPPET_CHARS).collect();
        out.push('…');
        out
    }
}

/// Parse the address part of a `c=` value: `IN IP4 <addr>[/ttl[/n]]`.
fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut parts = value.split_whitespace();
    let _nettype = parts.next()?;
    let _addrtype = parts.next()?;
    let addr = parts.next()?;
    let addr = addr.split('/').next()?;
    addr.parse().ok()
}

impl SessionDescription {
    /// Parse an SDP body (tolerant, see the module docs).
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        if text.trim().is_empty() {
            return Err(SdpError::Empty);
        }
        let mut sdp = SessionDescription {
            origin_username: "-".to_string(),
            session_id: 0,
            session_version: 0,
            origin_address: "0.0.0.0".to_string(),
            session_name: "-".to_string(),
            connection: None,
            direction: None,
            other_attributes: Vec::new(),
            media: Vec::new(),
        };
        // (line number, line) of each m= line, parallel to `sdp.media`.
        let mut media_lines: Vec<(usize, String)> = Vec::new();
        let mut line_count = 0;

        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            line_count = line_no;
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let mut chars = line.chars();
            let kind = chars.next().unwrap_or(' ');
            if !kind.is_ascii_alphabetic() || chars.next() != Some('=') {
                return Err(SdpError::MalformedLine {
                    line: line_no,
                    content: snippet(line),
                });
            }
            let value = line[2..].trim();
            let in_media = !sdp.media.is_empty();
            match kind {
                'v' if value != "0" => {
                    return Err(SdpError::UnsupportedVersion {
                        line: line_no,
                        content: snippet(line),
                    });
                }
                'o' if !in_media => sdp.parse_origin(value, line_no, line)?,
                's' if !in_media => {
                    sdp.session_name = if value.is_empty() {
                        "-".to_string()
                    } else {
                        value.to_string()
                    };
                }
                'c' => {
                    let addr =
                        parse_connection(value).ok_or_else(|| SdpError::InvalidConnection {
                            line: line_no,
                            content: snippet(line),
                        })?;
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = Some(addr),
                        None => sdp.connection = Some(addr),
                    }
                }
                'm' => {
                    let media = parse_media_line(value, line_no, line)?;
                    sdp.media.push(media);
                    media_lines.push((line_no, line.to_string()));
                }
                'a' => match sdp.media.last_mut() {
                    Some(m) => parse_media_attribute(m, value, line_no, line)?,
                    None => match Direction::from_attribute(value) {
                        Some(d) => sdp.direction = Some(d),
                        None => sdp.other_attributes.push(value.to_string()),
                    },
                },
                // v=0, t=, b=, i=, u=, e=, p=, z=, k=, r= and anything unknown:
                // accepted and ignored.
                _ => {}
            }
        }

        let Some(audio_index) = sdp.media.iter().position(|m| m.is_audio()) else {
            return Err(SdpError::NoAudio { lines: line_count });
        };
        // The stream we would use must have somewhere to send media to.
        let active = sdp
            .media
            .iter()
            .position(|m| m.is_audio() && m.port != 0)
            .unwrap_or(audio_index);
        if sdp.media[active].port != 0
            && sdp.media[active].connection.is_none()
            && sdp.connection.is_none()
        {
            let (line, content) = media_lines.swap_remove(active);
            return Err(SdpError::NoConnection {
                line,
                content: snippet(&content),
            });
        }
        Ok(sdp)
    }

    fn parse_origin(&mut self, value: &str, line_no: usize, line: &str) -> Result<(), SdpError> {
        let err = || SdpError::InvalidOrigin {
            line: line_no,
            content: snippet(line),
        };
        let fields: Vec<&str> = value.split_whitespace().collect();
        if fields.len() < 3 {
            return Err(err());
        }
        self.origin_username = fields[0].to_string();
        self.session_id = fields[1].parse().map_err(|_| err())?;
        self.session_version = fields[2].parse().map_err(|_| err())?;
        if let Some(addr) = fields.get(5) {
            self.origin_address = (*addr).to_string();
        }
        Ok(())
    }

    fn audio_index(&self) -> Option<usize> {
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

fn parse_media_line(value: &str, line_no: usize, line: &str) -> Result<MediaDescription, SdpError> {
    let mut parts = value.split_whitespace();
    let (Some(media), Some(port_field), Some(proto)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SdpError::InvalidMedia {
            line: line_no,
            content: snippet(line),
        });
    };
    // `<port>/<number of ports>` is allowed; we only use the base port.
    let port_text = port_field.split('/').next().unwrap_or(port_field);
    let port = port_text
        .parse::<u16>()
        .map_err(|_| SdpError::InvalidPort {
            line: line_no,
            value: snippet(port_text),
            content: snippet(line),
        })?;
    let formats = parts.map(str::to_string).collect();
    Ok(MediaDescription::new(media, port, proto, formats))
}

fn parse_media_attribute(
    m: &mut MediaDescription,
    value: &str,
    line_no: usize,
    line: &str,
) -> Result<(), SdpError> {
    if let Some(d) = Direction::from_attribute(value) {
        m.direction = Some(d);
        return Ok(());
    }
    let (name, attr_value) = match value.split_once(':') {
        Some((n, v)) => (n.trim(), v.trim()),
        None => (value, ""),
    };
    let strict = m.is_audio();
    if name.eq_ignore_ascii_case("rtpmap") {
        match RtpMap::parse_value(attr_value) {
            Some(map) => m.rtpmaps.push(map),
            None if strict => {
                return Err(SdpError::InvalidRtpMap {
                    line: line_no,
                    content: snippet(line),
                })
            }
            None => m.other_attributes.push(value.to_string()),
        }
    } else if name.eq_ignore_ascii_case("fmtp") {
        let (pt, params) = match attr_value.split_once(char::is_whitespace) {
            Some((pt, params)) => (pt, params.trim()),
            None => (attr_value, ""),
        };
        match pt.parse::<u8>() {
            Ok(pt) => m.fmtps.push((pt, params.to_string())),
            Err(_) if strict => {
                return Err(SdpError::InvalidFmtp {
                    line: line_no,
                    content: snippet(line),
                })
            }
            Err(_) => m.other_attributes.push(value.to_string()),
        }
    } else if name.eq_ignore_ascii_case("ptime") {
        match attr_value.parse::<u32>() {
            Ok(p) if p > 0 => m.ptime = Some(p),
            // e.g. "20.0" or garbage: keep and ignore.
            _ => m.other_attributes.push(value.to_string()),
        }
    } else if name.eq_ignore_ascii_case("rtcp") {
        match attr_value
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<u16>().ok())
        {
            Some(p) => m.rtcp_port = Some(p),
            None => m.other_attributes.push(value.to_string()),
        }
    } else {
        m.other_attributes.push(value.to_string());
    }
    Ok(())
}

fn addr_type(addr: &IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

impl fmt::Display for SessionDescription {
    /// Canonical RFC 4566 output with CRLF line endings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin_type = match self.origin_address.parse::<IpAddr>() {
            Ok(a) => addr_type(&a),
            Err(_) => "IP4",
        };
        let name = if self.session_name.is_empty() {
            "-"
        } else {
            &self.session_name
        };
        write!(f, "v=0\r\n")?;
        write!(
            f,
            "o={} {} {} IN {} {}\r\n",
            self.origin_username,
            self.session_id,
            self.session_version,
            origin_type,
            self.origin_address
        )?;
        write!(f, "s={name}\r\n")?;
        if let Some(c) = &self.connection {
            write!(f, "c=IN {} {}\r\n", addr_type(c), c)?;
        }
        write!(f, "t=0 0\r\n")?;
        for a in &self.other_attributes {
            write!(f, "a={a}\r\n")?;
        }
        if let Some(d) = self.direction {
            write!(f, "a={d}\r\n")?;
        }
        for m in &self.media {
            write!(f, "m={} {} {}", m.media, m.port, m.proto)?;
            for fmt_ in &m.formats {
                write!(f, " {fmt_}")?;
            }
            write!(f, "\r\n")?;
            if let Some(c) = &m.connection {
                write!(f, "c=IN {} {}\r\n", addr_type(c), c)?;
            }
            for r in &m.rtpmaps {
                write!(f, "a=rtpmap:{} {}\r\n", r.payload_type, r.describe())?;
            }
            for (pt, params) in &m.fmtps {
                if params.is_empty() {
                    write!(f, "a=fmtp:{pt}\r\n")?;
                } else {
                    write!(f, "a=fmtp:{pt} {params}\r\n")?;
                }
            }
            if let Some(p) = m.ptime {
                write!(f, "a=ptime:{p}\r\n")?;
            }
            if let Some(p) = m.rtcp_port {
                write!(f, "a=rtcp:{p}\r\n")?;
            }
            for a in &m.other_attributes {
                write!(f, "a={a}\r\n")?;
            }
            if let Some(d) = m.direction {
                write!(f, "a={d}\r\n")?;
            }
        }
        Ok(())
    }
}

/// Negotiated result for one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: AudioCodec,
    /// Payload type to use for the codec on this leg.
    pub payload_type: u8,
    /// RFC 4733 telephone-event payload type, if both sides support it.
    pub telephone_event: Option<u8>,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// Our direction on this leg (what we may send/receive).
    pub direction: Direction,
    pub ptime: u32,
}

/// Our side's media parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    pub address: IpAddr,
    pub port: u16,
    pub session_id: u64,
    pub session_version: u64,
    /// Our preference order.
    pub codecs: Vec<AudioCodec>,
    /// Whether we support RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// The most we want to do (e.g. `SendOnly` when we put the peer on hold).
    pub direction: Direction,
}

fn local_session(local: &LocalMedia, media: Vec<MediaDescription>) -> SessionDescription {
    SessionDescription {
        origin_username: OUR_NAME.to_string(),
        session_id: local.session_id,
        session_version: local.session_version,
        origin_address: local.address.to_string(),
        session_name: OUR_NAME.to_string(),
        connection: Some(local.address),
        direction: None,
        other_attributes: Vec::new(),
        media,
    }
}

fn supported_proto(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
}

/// RFC 3264 §6: answer an offer.
///
/// Picks the first codec in the OFFER's order that we support (offerer's
/// preference) on the offer's payload type, keeps the offerer's
/// telephone-event PT (any PT mapped to `telephone-event/8000`) if we
/// support it, answers with the reverse of the offered direction capped by
/// our own direction, and answers m-lines we don't use (video, extra audio
/// streams, ...) with port 0 in the same order.
pub fn negotiate_answer(
    offer: &SessionDescription,
    local: &LocalMedia,
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let index = offer.audio_index().ok_or(NegotiationError::NoAudio)?;
    let offered = &offer.media[index];
    if !supported_proto(&offered.proto) {
        return Err(NegotiationError::UnsupportedTransport {
            proto: offered.proto.clone(),
        });
    }
    let (codec, payload_type) = offered
        .codecs()
        .into_iter()
        .find(|(c, _)| local.codecs.contains(c))
        .ok_or_else(|| NegotiationError::NoCommonCodec {
            offered: offered.describe_formats(),
        })?;
    let remote = offer
        .audio_endpoint()
        .ok_or(NegotiationError::NoConnection)?;
    let telephone_event = if local.telephone_event {
        offered.telephone_event()
    } else {
        None
    };
    let direction = offer.audio_direction().reverse().intersect(local.direction);
    let ptime = offered.ptime.unwrap_or(DEFAULT_PTIME);

    let mut audio = MediaDescription::new(
        "audio",
        local.port,
        &offered.proto,
        vec![payload_type.to_string()],
    );
    audio.rtpmaps.push(RtpMap {
        payload_type,
        ..codec.rtpmap()
    });
    if let Some(pt) = telephone_event {
        audio.formats.push(pt.to_string());
        audio.rtpmaps.push(RtpMap {
            payload_type: pt,
            encoding: "telephone-event".to_string(),
            clock_rate: 8000,
            channels: None,
        });
        let params = offered
            .fmtp_for(pt)
            .filter(|p| !p.is_empty())
            .unwrap_or(TELEPHONE_EVENT_FMTP);
        audio.fmtps.push((pt, params.to_string()));
    }
    audio.ptime = Some(ptime);
    audio.direction = Some(direction);

    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == index {
                audio.clone()
            } else {
                m.rejected()
            }
        })
        .collect();
    let answer = local_session(local, media);
    Ok((
        answer,
        Negotiated {
            codec,
            payload_type,
            telephone_event,
            remote,
            direction,
            ptime,
        },
    ))
}

/// Build an offer from our side (B2BUA's outbound leg): our codecs in
/// order on their static PTs, then `telephone-event/8000` as PT 101 with
/// `fmtp 0-16` if enabled, `a=ptime:20` and our direction.
pub fn build_offer(local: &LocalMedia) -> SessionDescription {
    let mut audio = MediaDescription::new("audio", local.port, "RTP/AVP", Vec::new());
    for codec in &local.codecs {
        if audio
            .rtpmaps
            .iter()
            .any(|m| m.payload_type == codec.payload_type())
        {
            continue;
        }
        audio.formats.push(codec.payload_type().to_string());
        audio.rtpmaps.push(codec.rtpmap());
    }
    if local.telephone_event {
        audio.formats.push(TELEPHONE_EVENT_PT.to_string());
        audio.rtpmaps.push(RtpMap {
            payload_type: TELEPHONE_EVENT_PT,
            encoding: "telephone-event".to_string(),
            clock_rate: 8000,
            channels: None,
        });
        audio
            .fmtps
            .push((TELEPHONE_EVENT_PT, TELEPHONE_EVENT_FMTP.to_string()));
    }
    audio.ptime = Some(DEFAULT_PTIME);
    audio.direction = Some(local.direction);
    local_session(local, vec![audio])
}

/// Read an answer to an offer we built. The answer's first codec must be
/// one we offered; returns the negotiated view from our side (the payload
/// types are the answerer's, which we use when sending).
pub fn read_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    let offered = offer.audio().ok_or(NegotiationError::NoAudio)?;
    let Some(answered) = answer.audio() else {
        return Err(if answer.media.iter().any(|m| m.is_audio()) {
            NegotiationError::AudioRejected
        } else {
            NegotiationError::NoAudio
        });
    };
    let offered_codecs: Vec<AudioCodec> = offered.codecs().into_iter().map(|(c, _)| c).collect();

    let mut chosen = None;
    for pt in answered.payload_types() {
        let map = answered.rtpmap_for(pt);
        if map
            .as_ref()
            .is_some_and(|m| m.is_telephone_event() || m.is_comfort_noise())
        {
            continue;
        }
        match map.as_ref().and_then(AudioCodec::from_rtpmap) {
            Some(codec) if offered_codecs.contains(&codec) => {
                chosen = Some((codec, pt));
                break;
            }
            _ => {
                return Err(NegotiationError::CodecNotOffered {
                    payload_type: pt,
                    encoding: map.map_or_else(|| "unknown".to_string(), |m| m.describe()),
                })
            }
        }
    }
    let (codec, payload_type) = chosen.ok_or_else(|| NegotiationError::NoCommonCodec {
        offered: answered.describe_formats(),
    })?;
    let telephone_event = offered
        .telephone_event()
        .and_then(|_| answered.telephone_event());
    let remote = answer
        .audio_endpoint()
        .ok_or(NegotiationError::NoConnection)?;
    let direction = answer
        .audio_direction()
        .reverse()
        .intersect(offer.audio_direction());
    let ptime = answered.ptime.or(offered.ptime).unwrap_or(DEFAULT_PTIME);
    Ok(Negotiated {
        codec,
        payload_type,
        telephone_event,
        remote,
        direction,
        ptime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn local() -> LocalMedia {
        LocalMedia {
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 30000,
            session_id: 42,
            session_version: 1,
            codecs: vec![AudioCodec::Pcma, AudioCodec::Pcmu],
            telephone_event: true,
            direction: Direction::SendRecv,
        }
    }

    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const SIPP_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.1.1\r\n\
s=-\r\n\
c=IN IP4 127.0.1.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    const CARRIER_OFFER: &str = "v=0\n\
o=HuaweiSoftX3000 1073741824 1073741824 IN IP4 172.16.8.20  \n\
s=Sip Call\n\
c=IN IP4 172.16.8.21\n\
b=AS:64\n\
t=0 0\n\
m=audio 40000 RTP/AVP 8 0 18 101\n\
a=rtpmap:8 pcma/8000\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:18 G729/8000\n\
a=fmtp:18 annexb=no\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-15\n\
a=ptime:20\n\
a=X-huawei-whatever:1\n";

    #[test]
    fn direction_reverse_and_intersect() {
        use Direction::*;
        let table = [
            (SendRecv, SendRecv),
            (SendOnly, RecvOnly),
            (RecvOnly, SendOnly),
            (Inactive, Inactive),
        ];
        for (d, r) in table {
            assert_eq!(d.reverse(), r);
            assert_eq!(Direction::from_attribute(d.as_str()), Some(d));
        }
        assert_eq!(SendRecv.intersect(SendOnly), SendOnly);
        assert_eq!(RecvOnly.intersect(SendOnly), Inactive);
        assert_eq!(SendRecv.intersect(Inactive), Inactive);
        assert_eq!(Direction::from_attribute("SENDONLY"), Some(SendOnly));
        assert_eq!(Direction::from_attribute("foo"), None);
    }

    #[test]
    fn codec_basics() {
        assert_eq!(AudioCodec::Pcma.payload_type(), 8);
        assert_eq!(AudioCodec::Pcmu.payload_type(), 0);
        assert_eq!(AudioCodec::Pcma.name(), "PCMA");
        assert_eq!(AudioCodec::Pcmu.to_string(), "PCMU");
        let lower = RtpMap {
            payload_type: 8,
            encoding: "pcma".into(),
            clock_rate: 8000,
            channels: Some(1),
        };
        assert_eq!(AudioCodec::from_rtpmap(&lower), Some(AudioCodec::Pcma));
        let wideband = RtpMap {
            clock_rate: 16000,
            ..lower
        };
        assert_eq!(AudioCodec::from_rtpmap(&wideband), None);
        assert_eq!(static_payload_type(18), Some(("G729", 8000, None)));
        assert_eq!(static_payload_type(96), None);
    }

    #[test]
    fn round_trip_canonical() {
        let canonical = "v=0\r\n\
o=hotline 42 1 IN IP4 10.0.0.1\r\n\
s=hotline\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=rtcp:30001\r\n\
a=x-custom:yes\r\n\
a=sendrecv\r\n\
m=video 0 RTP/AVP 96\r\n\
c=IN IP6 ::1\r\n";
        let sdp = SessionDescription::parse(canonical).unwrap();
        assert_eq!(sdp.to_string(), canonical);
        assert_eq!(sdp.media[0].rtcp_port, Some(30001));
        assert_eq!(sdp.media[0].other_attributes, vec!["x-custom:yes"]);
        assert_eq!(sdp.media[1].connection, Some("::1".parse().unwrap()));
    }

    #[test]
    fn round_trip_messy_inputs_are_stable() {
        for text in [SIPP_OFFER, CARRIER_OFFER] {
            let first = SessionDescription::parse(text).unwrap();
            let printed = first.to_string();
            assert!(printed.ends_with("\r\n"));
            assert!(!printed.replace("\r\n", "").contains('\n'));
            let second = SessionDescription::parse(&printed).unwrap();
            assert_eq!(first, second);
            assert_eq!(second.to_string(), printed);
        }
        let offer = build_offer(&local());
        assert_eq!(
            SessionDescription::parse(&offer.to_string()).unwrap(),
            offer
        );
    }

    #[test]
    fn sipp_offer_pcmu_only() {
        let offer = SessionDescription::parse(SIPP_OFFER).unwrap();
        assert_eq!(offer.origin_username, "user1");
        assert_eq!(offer.session_id, 53655765);
        assert_eq!(offer.session_version, 2353687637);
        assert_eq!(offer.origin_address, "127.0.1.1");
        assert_eq!(offer.audio_endpoint(), Some(sock("127.0.1.1:6000")));
        assert_eq!(offer.audio_direction(), Direction::SendRecv);
        assert!(!offer.is_hold());

        let (answer, neg) = negotiate_answer(&offer, &local()).unwrap();
        assert_eq!(neg.codec, AudioCodec::Pcmu);
        assert_eq!(neg.payload_type, 0);
        assert_eq!(neg.telephone_event, None);
        assert_eq!(neg.remote, sock("127.0.1.1:6000"));
        assert_eq!(neg.direction, Direction::SendRecv);
        assert_eq!(neg.ptime, 20);
        let text = answer.to_string();
        assert!(text.contains("m=audio 30000 RTP/AVP 0\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 10.0.0.1\r\n"));
        assert!(text.contains("a=sendrecv\r\n"));
        assert!(!text.contains("telephone-event"));
    }

    #[test]
    fn carrier_offer_prefers_offer_order_and_keeps_dtmf() {
        let offer = SessionDescription::parse(CARRIER_OFFER).unwrap();
        assert_eq!(offer.session_name, "Sip Call");
        assert_eq!(offer.origin_address, "172.16.8.20");
        let audio = offer.audio().unwrap();
        assert_eq!(audio.formats, vec!["8", "0", "18", "101"]);
        assert_eq!(audio.ptime, Some(20));
        assert_eq!(
            audio.fmtps,
            vec![(18, "annexb=no".to_string()), (101, "0-15".to_string())]
        );
        assert_eq!(audio.telephone_event(), Some(101));
        assert_eq!(audio.other_attributes, vec!["X-huawei-whatever:1"]);

        // We prefer PCMU but the offerer's order wins (RFC 3264 §6.1).
        let mut me = local();
        me.codecs = vec![AudioCodec::Pcmu, AudioCodec::Pcma];
        let (answer, neg) = negotiate_answer(&offer, &me).unwrap();
        assert_eq!(neg.codec, AudioCodec::Pcma);
        assert_eq!(neg.payload_type, 8);
        assert_eq!(neg.telephone_event, Some(101));
        assert_eq!(neg.remote, sock("172.16.8.21:40000"));
        assert_eq!(neg.ptime, 20);
        let a = answer.audio().unwrap();
        assert_eq!(a.formats, vec!["8", "101"]);
        assert_eq!(a.fmtp_for(101), Some("0-15"));
        assert_eq!(a.ptime, Some(20));
        assert_eq!(answer.session_id, 42);
        assert_eq!(answer.session_version, 1);

        // Only PCMU locally: skip PCMA.
        me.codecs = vec![AudioCodec::Pcmu];
        let (_, neg) = negotiate_answer(&offer, &me).unwrap();
        assert_eq!(neg.codec, AudioCodec::Pcmu);
        assert_eq!(neg.payload_type, 0);

        // No DTMF support locally: no telephone-event in answer.
        me.telephone_event = false;
        let (answer, neg) = negotiate_answer(&offer, &me).unwrap();
        assert_eq!(neg.telephone_event, None);
        assert_eq!(answer.audio().unwrap().formats, vec!["0"]);
    }

    #[test]
    fn g729_only_is_no_common_codec() {
        let text = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n\
m=audio 5004 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let offer = SessionDescription::parse(text).unwrap();
        let err = negotiate_answer(&offer, &local()).unwrap_err();
        assert_eq!(
            err,
            NegotiationError::NoCommonCodec {
                offered: vec!["18:G729/8000".into(), "101:telephone-event/8000".into()]
            }
        );
        assert_eq!(err.sip_status(), 488);
        assert!(err.to_string().contains("G729"));
    }

    #[test]
    fn static_payload_types_without_rtpmap() {
        let text = "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5004 RTP/AVP 18 0 8\n";
        let offer = SessionDescription::parse(text).unwrap();
        assert!(offer.audio().unwrap().rtpmaps.is_empty());
        let (answer, neg) = negotiate_answer(&offer, &local()).unwrap();
        assert_eq!((neg.codec, neg.payload_type), (AudioCodec::Pcmu, 0));
        // We still write an explicit rtpmap in the answer.
        assert!(answer.to_string().contains("a=rtpmap:0 PCMU/8000\r\n"));
    }

    #[test]
    fn connection_levels() {
        // Session-level only.
        let session_only =
            "v=0\r\no=- 1 1 IN IP4 h.example\r\nc=IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 8\r\n";
        // Media-level overrides session-level.
        let both = "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 8\r\nc=IN IP4 192.0.2.9\r\n";
        // Media-level only, multicast TTL suffix, trailing spaces, no s=/t=.
        let media_only = "v=0\r\nm=audio 5000/2 RTP/AVP 8  \r\nc=IN IP4 192.0.2.7/127  \r\n";
        let v6 = "v=0\r\nc=IN IP6 2001:db8::1\r\nm=audio 5000 RTP/AVP 8\r\n";
        let table = [
            (session_only, "192.0.2.1:5000"),
            (both, "192.0.2.9:5000"),
            (media_only, "192.0.2.7:5000"),
            (v6, "[2001:db8::1]:5000"),
        ];
        for (text, expected) in table {
            let sdp = SessionDescription::parse(text).unwrap();
            assert_eq!(sdp.audio_endpoint(), Some(sock(expected)), "{text}");
            let (_, neg) = negotiate_answer(&sdp, &local()).unwrap();
            assert_eq!(neg.remote, sock(expected));
        }
        let sdp = SessionDescription::parse(session_only).unwrap();
        assert_eq!(sdp.origin_address, "h.example");
        assert_eq!(sdp.session_name, "-");
        assert!(sdp.to_string().contains("o=- 1 1 IN IP4 h.example\r\n"));
    }

    #[test]
    fn hold_variants() {
        use Direction::*;
        let base = |session: &str, media: &str, conn: &str| {
            format!(
                "v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 {conn}\r\nt=0 0\r\n{session}m=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n{media}"
            )
        };
        // (session attrs, media attrs, c= address, offered dir, hold?, answer dir)
        let table = [
            ("", "", "1.2.3.4", SendRecv, false, SendRecv),
            ("", "a=sendrecv\r\n", "1.2.3.4", SendRecv, false, SendRecv),
            ("", "a=sendonly\r\n", "1.2.3.4", SendOnly, true, RecvOnly),
            ("", "a=inactive\r\n", "1.2.3.4", Inactive, true, Inactive),
            ("", "a=recvonly\r\n", "1.2.3.4", RecvOnly, false, SendOnly),
            ("a=sendonly\r\n", "", "1.2.3.4", SendOnly, true, RecvOnly),
            (
                "a=sendonly\r\n",
                "a=sendrecv\r\n",
                "1.2.3.4",
                SendRecv,
                false,
                SendRecv,
            ),
            ("", "", "0.0.0.0", SendOnly, true, RecvOnly),
            ("", "a=recvonly\r\n", "0.0.0.0", Inactive, true, Inactive),
            ("", "a=inactive\r\n", "0.0.0.0", Inactive, true, Inactive),
        ];
        for (session, media, conn, dir, hold, answer_dir) in table {
            let text = base(session, media, conn);
            let offer = SessionDescription::parse(&text).unwrap();
            assert_eq!(offer.audio_direction(), dir, "{text}");
            assert_eq!(offer.is_hold(), hold, "{text}");
            let (answer, neg) = negotiate_answer(&offer, &local()).unwrap();
            assert_eq!(neg.direction, answer_dir, "{text}");
            assert_eq!(answer.audio().unwrap().direction, Some(answer_dir));
            assert!(answer.to_string().contains(&format!("a={answer_dir}\r\n")));
        }
        let offer = SessionDescription::parse(&base("", "", "0.0.0.0")).unwrap();
        assert_eq!(offer.audio_endpoint(), Some(sock("0.0.0.0:7000")));
    }

    #[test]
    fn answer_direction_capped_by_local() {
        let offer = SessionDescription::parse(SIPP_OFFER).unwrap();
        let mut me = local();
        me.direction = Direction::SendOnly; // we put the peer on hold
        let (_, neg) = negotiate_answer(&offer, &me).unwrap();
        assert_eq!(neg.direction, Direction::SendOnly);
        me.direction = Direction::Inactive;
        let (_, neg) = negotiate_answer(&offer, &me).unwrap();
        assert_eq!(neg.direction, Direction::Inactive);
    }

    #[test]
    fn video_and_extra_streams_rejected_with_port_zero() {
        let text = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n\
m=video 9000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
m=audio 0 RTP/AVP 0\r\n\
m=audio 8000 RTP/AVP 0 8\r\n\
m=application 9 UDP/BFCP *\r\n";
        let offer = SessionDescription::parse(text).unwrap();
        assert_eq!(offer.audio().unwrap().port, 8000);
        let (answer, neg) = negotiate_answer(&offer, &local()).unwrap();
        assert_eq!(neg.remote, sock("1.2.3.4:8000"));
        assert_eq!(answer.media.len(), 4);
        let summary: Vec<(&str, u16, Vec<&str>)> = answer
            .media
            .iter()
            .map(|m| {
                (
                    m.media.as_str(),
                    m.port,
                    m.formats.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("video", 0, vec!["96"]),
                ("audio", 0, vec!["0"]),
                ("audio", 30000, vec!["0"]),
                ("application", 0, vec!["*"]),
            ]
        );
        let printed = answer.to_string();
        assert!(printed.contains("m=video 0 RTP/AVP 96\r\n"));
        assert!(printed.contains("m=application 0 UDP/BFCP *\r\n"));
        SessionDescription::parse(&printed).unwrap();
    }

    #[test]
    fn telephone_event_on_pt_96_kept() {
        let text = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 8000 RTP/AVP 0 96\r\n\
a=rtpmap:96 TELEPHONE-EVENT/8000\r\n";
        let offer = SessionDescription::parse(text).unwrap();
        let (answer, neg) = negotiate_answer(&offer, &local()).unwrap();
        assert_eq!(neg.telephone_event, Some(96));
        let a = answer.audio().unwrap();
        assert_eq!(a.formats, vec!["0", "96"]);
        assert_eq!(a.fmtp_for(96), Some(TELEPHONE_EVENT_FMTP));
        assert!(answer
            .to_string()
            .contains("a=rtpmap:96 telephone-event/8000\r\n"));
        // telephone-event at 16000 Hz is not the 8 kHz one we can use.
        let text16 = text.replace("/8000", "/16000");
        let offer = SessionDescription::parse(&text16).unwrap();
        let (_, neg) = negotiate_answer(&offer, &local()).unwrap();
        assert_eq!(neg.telephone_event, None);
    }

    #[test]
    fn unsupported_transport_rejected() {
        let text = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 8000 RTP/SAVP 0\r\n";
        let offer = SessionDescription::parse(text).unwrap();
        assert_eq!(
            negotiate_answer(&offer, &local()).unwrap_err(),
            NegotiationError::UnsupportedTransport {
                proto: "RTP/SAVP".into()
            }
        );
    }

    #[test]
    fn offer_only_disabled_audio_is_no_audio() {
        let text = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n";
        let offer = SessionDescription::parse(text).unwrap();
        assert!(offer.audio().is_none());
        assert_eq!(offer.audio_endpoint(), None);
        assert!(!offer.is_hold());
        assert_eq!(
            negotiate_answer(&offer, &local()).unwrap_err(),
            NegotiationError::NoAudio
        );
    }

    #[test]
    fn build_offer_layout() {
        let offer = build_offer(&local());
        let expected = "v=0\r\n\
o=hotline 42 1 IN IP4 10.0.0.1\r\n\
s=hotline\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";
        assert_eq!(offer.to_string(), expected);

        let mut me = local();
        me.telephone_event = false;
        me.codecs = vec![AudioCodec::Pcmu, AudioCodec::Pcmu];
        me.direction = Direction::SendOnly;
        let offer = build_offer(&me);
        let a = offer.audio().unwrap();
        assert_eq!(a.formats, vec!["0"]);
        assert_eq!(a.direction, Some(Direction::SendOnly));
        assert!(offer.is_hold());
    }

    fn answer_text(formats: &str, extra: &str) -> String {
        format!(
            "v=0\r\no=peer 9 9 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\nm=audio 12000 RTP/AVP {formats}\r\n{extra}"
        )
    }

    #[test]
    fn read_answer_table() {
        let offer = build_offer(&local());
        let te = "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";
        type Expect = Result<(AudioCodec, u8, Option<u8>), NegotiationError>;
        let table: Vec<(String, Expect)> = vec![
            (
                answer_text("8 101", te),
                Ok((AudioCodec::Pcma, 8, Some(101))),
            ),
            (answer_text("0", ""), Ok((AudioCodec::Pcmu, 0, None))),
            (
                answer_text("13 0 101", te),
                Ok((AudioCodec::Pcmu, 0, Some(101))),
            ),
            (
                answer_text("97 101", &format!("a=rtpmap:97 pcma/8000\r\n{te}")),
                Ok((AudioCodec::Pcma, 97, Some(101))),
            ),
            (
                answer_text("18", ""),
                Err(NegotiationError::CodecNotOffered {
                    payload_type: 18,
                    encoding: "G729/8000".into(),
                }),
            ),
            (
                answer_text("99", ""),
                Err(NegotiationError::CodecNotOffered {
                    payload_type: 99,
                    encoding: "unknown".into(),
                }),
            ),
            (
                answer_text("101", te),
                Err(NegotiationError::NoCommonCodec {
                    offered: vec!["101:telephone-event/8000".into()],
                }),
            ),
            (
                answer_text("8", "").replace("12000", "0"),
                Err(NegotiationError::AudioRejected),
            ),
        ];
        for (text, expected) in table {
            let answer = SessionDescription::parse(&text).unwrap();
            let got =
                read_answer(&offer, &answer).map(|n| (n.codec, n.payload_type, n.telephone_event));
            assert_eq!(got, expected, "{text}");
        }
    }

    #[test]
    fn read_answer_details() {
        let offer = build_offer(&local());
        let answer = SessionDescription::parse(&answer_text(
            "0 101",
            "a=rtpmap:101 telephone-event/8000\r\na=ptime:30\r\na=recvonly\r\n",
        ))
        .unwrap();
        let neg = read_answer(&offer, &answer).unwrap();
        assert_eq!(neg.codec, AudioCodec::Pcmu);
        assert_eq!(neg.remote, sock("203.0.113.5:12000"));
        assert_eq!(neg.direction, Direction::SendOnly);
        assert_eq!(neg.ptime, 30);

        // Answer with a codec we didn't offer: we offered PCMU only.
        let mut me = local();
        me.codecs = vec![AudioCodec::Pcmu];
        let offer = build_offer(&me);
        let answer = SessionDescription::parse(&answer_text("8", "")).unwrap();
        let err = read_answer(&offer, &answer).unwrap_err();
        assert_eq!(
            err,
            NegotiationError::CodecNotOffered {
                payload_type: 8,
                encoding: "PCMA/8000".into()
            }
        );
        assert!(err.to_string().contains("PCMA"));

        // We offered without telephone-event: ignore it in the answer.
        me.telephone_event = false;
        let offer = build_offer(&me);
        let answer = SessionDescription::parse(&answer_text(
            "0 101",
            "a=rtpmap:101 telephone-event/8000\r\n",
        ))
        .unwrap();
        assert_eq!(read_answer(&offer, &answer).unwrap().telephone_event, None);

        // Our negotiate_answer output is readable by read_answer.
        let our_offer = build_offer(&local());
        let (their_answer, their_view) = negotiate_answer(&our_offer, &local()).unwrap();
        let ours = read_answer(&our_offer, &their_answer).unwrap();
        assert_eq!(ours.codec, their_view.codec);
        assert_eq!(ours.telephone_event, Some(101));
        assert_eq!(ours.remote, sock("10.0.0.1:30000"));
    }

    #[test]
    fn parse_errors_name_line_and_content() {
        let table: Vec<(&str, SdpError)> = vec![
            ("", SdpError::Empty),
            ("  \r\n\r\n", SdpError::Empty),
            (
                "hello world",
                SdpError::MalformedLine {
                    line: 1,
                    content: "hello world".into(),
                },
            ),
            (
                "v=0\r\n\r\n<html>\r\n",
                SdpError::MalformedLine {
                    line: 3,
                    content: "<html>".into(),
                },
            ),
            (
                "v=1\r\n",
                SdpError::UnsupportedVersion {
                    line: 1,
                    content: "v=1".into(),
                },
            ),
            (
                "v=0\no=- abc 1 IN IP4 1.2.3.4\n",
                SdpError::InvalidOrigin {
                    line: 2,
                    content: "o=- abc 1 IN IP4 1.2.3.4".into(),
                },
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
                SdpError::InvalidPort {
                    line: 3,
                    value: "70000".into(),
                    content: "m=audio 70000 RTP/AVP 0".into(),
                },
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
                SdpError::InvalidPort {
                    line: 3,
                    value: "x".into(),
                    content: "m=audio x RTP/AVP 0".into(),
                },
            ),
            (
                "v=0\r\nm=audio 5000\r\n",
                SdpError::InvalidMedia {
                    line: 2,
                    content: "m=audio 5000".into(),
                },
            ),
            (
                "v=0\r\nc=IN IP4 pbx.example.com\r\nm=audio 5000 RTP/AVP 0\r\n",
                SdpError::InvalidConnection {
                    line: 2,
                    content: "c=IN IP4 pbx.example.com".into(),
                },
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
                SdpError::InvalidRtpMap {
                    line: 4,
                    content: "a=rtpmap:0 PCMU".into(),
                },
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\na=fmtp:x 0-15\r\n",
                SdpError::InvalidFmtp {
                    line: 4,
                    content: "a=fmtp:x 0-15".into(),
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n",
                SdpError::NoAudio { lines: 6 },
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5000 RTP/AVP 96\r\n",
                SdpError::NoAudio { lines: 4 },
            ),
            (
                "v=0\r\ns=-\r\nm=video 6000 RTP/AVP 96\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n",
                SdpError::NoConnection {
                    line: 5,
                    content: "m=audio 5000 RTP/AVP 0".into(),
                },
            ),
        ];
        for (text, expected) in table {
            let err = SessionDescription::parse(text).unwrap_err();
            assert_eq!(err, expected, "{text:?}");
            let msg = err.to_string();
            if !matches!(err, SdpError::Empty | SdpError::NoAudio { .. }) {
                assert!(msg.starts_with("SDP line "), "{msg}");
            }
        }
        let msg = SessionDescription::parse("v=0\r\nm=audio 70000 RTP/AVP 0\r\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "SDP line 2: invalid port \"70000\" in media description: \"m=audio 70000 RTP/AVP 0\""
        );
    }

    #[test]
    fn tolerant_inputs_accepted() {
        let text = "v=0\n\
o=- 1 1 IN IP4 1.2.3.4\n\
i=some info\n\
u=http://example.com\n\
b=CT:128\n\
z=0 0\n\
x=unknown line type\n\
a=tool:carrier-sbc\n\
m=video 0 RTP/AVP 96\n\
a=rtpmap:video-garbage\n\
a=fmtp:webrtc-datachannel max=1\n\
m=audio 5000 RTP/AVP 8 0\t\n\
b=AS:80\n\
c=IN IP4 1.2.3.4\n\
a=ptime:20.0\n\
a=rtcp:5001 IN IP4 1.2.3.4\n\
a=maxptime:150\n\
a=rtpmap:8 Pcma/8000/1\n";
        let sdp = SessionDescription::parse(text).unwrap();
        assert_eq!(sdp.session_name, "-");
        assert_eq!(sdp.other_attributes, vec!["tool:carrier-sbc"]);
        assert_eq!(
            sdp.media[0].other_attributes,
            vec!["rtpmap:video-garbage", "fmtp:webrtc-datachannel max=1"]
        );
        let audio = sdp.audio().unwrap();
        assert_eq!(audio.ptime, None);
        assert_eq!(audio.rtcp_port, Some(5001));
        assert_eq!(audio.other_attributes, vec!["ptime:20.0", "maxptime:150"]);
        assert_eq!(audio.rtpmaps[0].channels, Some(1));
        let (_, neg) = negotiate_answer(&sdp, &local()).unwrap();
        assert_eq!(neg.codec, AudioCodec::Pcma);
        assert_eq!(neg.ptime, 20);
        // Printing and re-parsing keeps everything.
        assert_eq!(SessionDescription::parse(&sdp.to_string()).unwrap(), sdp);
    }

    #[test]
    fn long_offending_lines_are_truncated_in_errors() {
        let long = format!("v=0\r\nc=IN IP4 {}\r\n", "9".repeat(10_000));
        let err = SessionDescription::parse(&long).unwrap_err();
        let SdpError::InvalidConnection { line, content } = err else {
            panic!("unexpected {err:?}")
        };
        assert_eq!(line, 2);
        assert!(content.chars().count() <= SNIPPET_CHARS + 1);
    }

    /// Simple xorshift64 so the test needs no external crate.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn exercise(text: &str) {
        if let Ok(sdp) = SessionDescription::parse(text) {
            let _ = sdp.audio_endpoint();
            let _ = sdp.is_hold();
            let printed = sdp.to_string();
            let reparsed = SessionDescription::parse(&printed)
                .unwrap_or_else(|e| panic!("printed SDP failed to parse: {e}\n{printed}"));
            assert_eq!(reparsed, sdp, "{printed}");
            if let Ok((answer, _)) = negotiate_answer(&sdp, &local()) {
                let answer_text = answer.to_string();
                let answer = SessionDescription::parse(&answer_text)
                    .unwrap_or_else(|e| panic!("answer failed to parse: {e}\n{answer_text}"));
                let _ = read_answer(&sdp, &answer);
            }
            let _ = read_answer(&build_offer(&local()), &sdp);
        }
    }

    #[test]
    fn fuzz_like_mutations_never_panic() {
        let seeds = [SIPP_OFFER, CARRIER_OFFER];
        let alphabet: &[u8] = b"=: /\r\n0123456789amcovstAPRTV.-\xff\x00";
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for seed in seeds {
            let bytes = seed.as_bytes();
            // Every truncation.
            for cut in 0..=bytes.len() {
                exercise(&String::from_utf8_lossy(&bytes[..cut]));
            }
            // Random mutations.
            for _ in 0..5_000 {
                let mut data = bytes.to_vec();
                for _ in 0..=rng.below(6) {
                    let pos = rng.below(data.len() + 1);
                    match rng.below(4) {
                        0 if pos < data.len() => {
                            data[pos] = alphabet[rng.below(alphabet.len())];
                        }
                        1 if pos < data.len() => {
                            data.remove(pos);
                        }
                        2 => data.insert(pos, alphabet[rng.below(alphabet.len())]),
                        _ => data.truncate(pos),
                    }
                }
                exercise(&String::from_utf8_lossy(&data));
            }
        }
    }
}
