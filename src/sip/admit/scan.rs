//! A raw scan of one SIP message (RFC 3261 §7, §25.1): the start line and
//! the header lines as they arrived, before any parser normalises them.
//!
//! rsipstack's parser hides what admission must see: it rejects an unknown
//! method outright (a closed enum), skips a header line without a colon,
//! and keeps only one of two `Call-ID`s. This scanner keeps every line, in
//! order, with its compact name (`i`, `v`, `l` …) expanded, so the
//! admission rules ([`super::check`]) can count and read them. It borrows
//! from the message and allocates only the line index.

/// The most header lines a message may carry; more is hostile.
pub const MAX_HEADERS: usize = 128;

/// One header line: canonical name (compact forms expanded, §7.3.3) and
/// the raw value (folded continuation lines joined by the reader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLine<'a> {
    /// Canonical name, e.g. `Call-ID` for `i`; unknown names as sent.
    pub name: &'a str,
    /// The value, trimmed; continuation lines (§7.3.1 folding) are kept as
    /// separate [`HeaderLine::continued`] entries.
    pub value: &'a str,
    /// The whole line as sent (for copying into a response).
    pub raw: &'a str,
}

/// The start line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `METHOD SP Request-URI SP SIP-Version`.
    Request {
        /// As sent (case-sensitive, §7.1).
        method: &'a str,
        /// As sent.
        uri: &'a str,
        /// As sent, e.g. `SIP/2.0`.
        version: &'a str,
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`.
    Response {
        /// As sent.
        version: &'a str,
        /// As sent (three digits when valid).
        code: &'a str,
    },
}

/// Why a message cannot be scanned at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// Not UTF-8 / contains NUL or other control bytes in the header part.
    Bytes(String),
    /// The start line is not `A SP B SP C`.
    StartLine(String),
    /// A header line is not `name: value`.
    HeaderLine(String),
    /// More than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::Bytes(why) => write!(f, "{why}"),
            ScanError::StartLine(why) => write!(f, "bad start line: {why}"),
            ScanError::HeaderLine(why) => write!(f, "bad header line: {why}"),
            ScanError::TooManyHeaders => {
                write!(f, "more than {MAX_HEADERS} header lines")
            }
        }
    }
}

/// A scanned message: start line, header lines, body.
#[derive(Debug, Clone)]
pub struct Scanned<'a> {
    /// The start line, if it could be read.
    pub start: Result<StartLine<'a>, ScanError>,
    /// Header lines in order (possibly partial when `error` is set).
    pub headers: Vec<HeaderLine<'a>>,
    /// The first defect found in the header lines, if any: the lines
    /// before it are still in `headers` so a response can be routed.
    pub error: Option<ScanError>,
    /// The bytes after the blank line (empty if there was none).
    pub body: &'a [u8],
    /// Whether a blank line ended the headers.
    pub terminated: bool,
}

impl<'a> Scanned<'a> {
    /// Every value of header `name` (canonical, case-insensitive), in order.
    pub fn all(&self, name: &str) -> impl Iterator<Item = &HeaderLine<'a>> + '_ {
        let name = name.to_owned();
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(&name))
    }

    /// The first value of header `name`.
    pub fn first(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// How many lines carry header `name`.
    pub fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    }
}

/// RFC 3261 §7.3.3 compact forms (and RFC 3515/3891/6665 ones we may meet).
fn canonical(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'e' => "Content-Encoding",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'f' => "From",
        b's' => "Subject",
        b'k' => "Supported",
        b't' => "To",
        b'v' => "Via",
        b'o' => "Event",
        b'r' => "Refer-To",
        b'u' => "Allow-Events",
        _ => name,
    }
}

/// RFC 3261 §25.1 `token` characters.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                )
        })
}

/// Where the header part ends: the index of the blank line's first byte
/// and the index where the body starts. Accepts CRLF CRLF (the standard)
/// and LF LF (tolerated by most stacks).
pub fn header_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let crlf = find(bytes, b"\r\n\r\n").map(|i| (i, i + 4));
    let lf = find(bytes, b"\n\n").map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Scan one message (a UDP datagram, or one frame of a stream).
pub fn scan(bytes: &[u8]) -> Scanned<'_> {
    let (head, body, terminated) = match header_end(bytes) {
        Some((end, body)) => (&bytes[..end], &bytes[body..], true),
        None => (bytes, &bytes[bytes.len()..], false),
    };
    let mut out = Scanned {
        start: Err(ScanError::StartLine("empty message".into())),
        headers: Vec::new(),
        error: None,
        body,
        terminated,
    };
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => {
            // Route a response if the valid prefix allows it.
            let valid = &head[..e.valid_up_to()];
            let cut = valid
                .iter()
                .rposition(|b| *b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            let prefix = std::str::from_utf8(&head[..cut]).unwrap_or("");
            scan_text(prefix, &mut out);
            out.error = out.error.take().or(Some(ScanError::Bytes(format!(
                "byte {} of the headers is not UTF-8",
                e.valid_up_to()
            ))));
            return out;
        }
    };
    scan_text(text, &mut out);
    out
}

fn scan_text<'a>(text: &'a str, out: &mut Scanned<'a>) {
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    // RFC 3261 §7.5: leading CRLFs before the start line are ignored.
    let first = loop {
        match lines.next() {
            Some("") => continue,
            other => break other,
        }
    };
    let Some(first) = first else {
        return;
    };
    out.start = start_line(first);
    for (n, line) in lines.enumerate() {
        if line.is_empty() {
            break;
        }
        if let Some(bad) = line
            .bytes()
            .find(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f)
        {
            out.error.get_or_insert(ScanError::Bytes(format!(
                "header line {} holds control byte 0x{bad:02x}",
                n + 2
            )));
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // §7.3.1 folding: a continuation of the previous value. The
            // value we keep is its first line; folded values are rare and
            // the checks below read only single-line headers.
            if out.headers.is_empty() {
                out.error.get_or_insert(ScanError::HeaderLine(format!(
                    "line {} continues no header",
                    n + 2
                )));
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            out.error.get_or_insert(ScanError::HeaderLine(format!(
                "line {} {:?} has no colon",
                n + 2,
                truncate(line)
            )));
            continue;
        };
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            out.error.get_or_insert(ScanError::HeaderLine(format!(
                "line {} header name {:?} is not a token",
                n + 2,
                truncate(name)
            )));
            continue;
        }
        if out.headers.len() == MAX_HEADERS {
            out.error.get_or_insert(ScanError::TooManyHeaders);
            break;
        }
        out.headers.push(HeaderLine {
            name: canonical(name),
            value: value.trim_matches([' ', '\t']),
            raw: line,
        });
    }
}

fn start_line(line: &str) -> Result<StartLine<'_>, ScanError> {
    if let Some(bad) = line.bytes().find(|b| *b < 0x20 || *b == 0x7f) {
        return Err(ScanError::Bytes(format!(
            "start line holds control byte 0x{bad:02x}"
        )));
    }
    let mut parts = line.splitn(3, ' ');
    let (a, b, c) = match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return Err(ScanError::StartLine(format!("{:?}", truncate(line)))),
    };
    if a.starts_with("SIP/") {
        return Ok(StartLine::Response {
            version: a,
            code: b,
        });
    }
    if c.contains(' ') || b.is_empty() || c.is_empty() {
        return Err(ScanError::StartLine(format!(
            "{:?} is not METHOD SP URI SP VERSION",
            truncate(line)
        )));
    }
    Ok(StartLine::Request {
        method: a,
        uri: b,
        version: c,
    })
}

/// At most 60 characters of hostile text, for messages and logs.
pub fn truncate(s: &str) -> &str {
    match s.char_indices().nth(60) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_names_are_expanded_and_every_line_is_kept() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\ni: x\r\ni: y\r\nl: 0\r\n\r\n";
        let s = scan(m);
        assert_eq!(
            s.start,
            Ok(StartLine::Request {
                method: "OPTIONS",
                uri: "sip:a@b",
                version: "SIP/2.0"
            })
        );
        assert_eq!(s.count("Call-ID"), 2);
        assert_eq!(s.first("via"), Some("SIP/2.0/UDP h;branch=z9hG4bK1"));
        assert!(s.terminated && s.error.is_none());
    }

    #[test]
    fn a_line_without_colon_is_an_error_but_the_rest_is_kept() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nMax-Forwards 70\r\nCall-ID: c\r\n\r\n";
        let s = scan(m);
        assert!(matches!(s.error, Some(ScanError::HeaderLine(_))));
        assert_eq!(s.first("Call-ID"), Some("c"));
    }

    #[test]
    fn responses_and_bad_start_lines() {
        assert!(matches!(
            scan(b"SIP/2.0 200 OK\r\n\r\n").start,
            Ok(StartLine::Response { code: "200", .. })
        ));
        assert!(scan(b"INVITE\r\n\r\n").start.is_err());
        assert!(scan(b"INVITE  sip:a SIP/2.0\r\n\r\n").start.is_err());
        assert!(scan(b"").start.is_err());
    }

    #[test]
    fn non_utf8_keeps_the_valid_lines_before_it() {
        let mut m = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: c\r\nX: ".to_vec();
        m.extend_from_slice(&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n']);
        let s = scan(&m);
        assert!(matches!(s.error, Some(ScanError::Bytes(_))));
        assert_eq!(s.first("Call-ID"), Some("c"));
    }

    #[test]
    fn every_truncation_and_byte_flip_returns() {
        let m = b"INVITE sip:1@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nCall-ID: c\r\nContent-Length: 2\r\n\r\nab";
        for cut in 0..m.len() {
            let _ = scan(&m[..cut]);
        }
        for i in 0..m.len() {
            let mut v = m.to_vec();
            v[i] ^= 0x80;
            let _ = scan(&v);
        }
    }
}
