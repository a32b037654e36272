//! The SDP text form (RFC 4566): tolerant parsing of a carrier's body into
//! a [`SessionDescription`] (see the room's module docs for what is
//! accepted) and canonical printing with CRLF line endings. Errors name the
//! 1-based line and quote the offending one ([`SdpError`]).

use std::fmt;
use std::net::IpAddr;

use super::model::{Direction, MediaDescription, RtpMap, SessionDescription};

/// Maximum number of characters of an offending line quoted in an error.
pub(super) const SNIPPET_CHARS: usize = 120;

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
}

impl RtpMap {
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
