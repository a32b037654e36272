//! Admission of one received SIP message, decided on its raw bytes before
//! any parser, transaction or call logic sees it (issue 14 §3).
//!
//! The rules are RFC 3261's for a UAS, applied in the order of §8.2 (and
//! §16.3 for Max-Forwards, since a B2BUA routes the calls it takes):
//!
//! | defect | answer |
//! |---|---|
//! | header bytes not UTF-8, control bytes, a line without colon | 400 |
//! | start line not `METHOD SP URI SP VERSION` | 400 |
//! | version other than `SIP/2.0` (§7.1) | 505, status line `SIP/2.0` |
//! | From, To, Call-ID or CSeq missing (§8.1.1) | 400 |
//! | two of a single-value header (§7.3.1, §20) | 400 |
//! | empty Call-ID, bad CSeq, CSeq method ≠ request method (§8.1.1.5) | 400 |
//! | a Via not `SIP/2.0/<transport> <sent-by>` (§20.42) | 400 |
//! | Content-Length not a number or beyond the body (§18.3, §20.14) | 400 |
//! | a body without Content-Type (§20.15) | 400 |
//! | a method we do not know (§8.2.1) | 501 with `Allow` |
//! | Max-Forwards missing or not 0–255 (§8.1.1.6) | 400 |
//! | Max-Forwards 0 on a new INVITE we would route on (§16.3) | 483 |
//! | Request-URI scheme other than `sip`/`sips` (§8.2.2.1) | 416 |
//! | `Require` of an extension we lack (§8.2.2.3) | 420 with `Unsupported` |
//!
//! A message with no Via cannot be answered (nobody would match the
//! response) and is dropped; so is every defective ACK (§17.1.1.3: ACK is
//! never answered) and every defective response. Known methods we do not
//! serve (SUBSCRIBE, MESSAGE …) pass: the switch answers them 405 with
//! `Allow`, in or out of a dialog as RFC 3261 says.
//!
//! Refusals are answered statelessly ([`reply`]): the response copies the
//! request's Via lines, From, To (with a tag derived from the Call-ID and
//! branch, so a retransmission gets the same one), Call-ID and CSeq. The
//! same function decides for UDP datagrams and TCP frames, so a message
//! gets the same verdict on both.

pub mod scan;

use scan::{is_token, scan, truncate, Scanned, StartLine};

/// Methods hotline implements, for `Allow` (RFC 3261 §20.5).
pub const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, REFER, SUBSCRIBE";

/// Methods rsipstack can carry (its closed method enum). Any other method
/// is refused here with 501, since the stack could not even parse it.
const KNOWN_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// Headers a message may carry once only (RFC 3261 §7.3.1: only headers
/// defined as comma-separated lists may repeat).
const SINGLE: &[&str] = &[
    "Call-ID",
    "CSeq",
    "From",
    "To",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Expires",
];

/// A refusal: status code, why (for the `Warning` header and the log),
/// and the headers the code requires (`Allow`, `Unsupported`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Status code.
    pub code: u16,
    /// What was wrong, in words (a header name and line where it helps).
    pub why: String,
    /// Extra headers the status code calls for.
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(code: u16, why: impl Into<String>) -> Self {
        Self {
            code,
            why: why.into(),
            headers: Vec::new(),
        }
    }
}

/// What to do with one received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the SIP stack.
    Pass,
    /// Answer it with [`reply`] and forget it.
    Refuse(Refusal),
    /// Nothing can be answered: drop it (the reason is for the log).
    Drop(String),
}

/// What hotline supports, for the checks that depend on it.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `Allow` of a 501 (RFC 3261 §20.5).
    pub allow: &'static str,
    /// Option tags (§19.2) a `Require` may name; anything else gets 420.
    pub supported: &'static [&'static str],
}

/// Decide on one message (a UDP datagram, or one frame of a stream).
pub fn check(bytes: &[u8], policy: &Policy) -> Verdict {
    let msg = scan(bytes);
    match msg.start {
        Ok(StartLine::Response { version, code }) => check_response(&msg, version, code),
        Ok(StartLine::Request {
            method,
            uri,
            version,
        }) => {
            let routable = msg.count("Via") > 0;
            let refusal = match check_request(&msg, method, uri, version, policy) {
                Ok(()) => return Verdict::Pass,
                Err(r) => r,
            };
            if method == "ACK" {
                Verdict::Drop(format!("ACK not accepted: {}", refusal.why))
            } else if !routable {
                Verdict::Drop(format!("no Via to answer ({})", refusal.why))
            } else {
                Verdict::Refuse(refusal)
            }
        }
        Err(ref e) => {
            if msg.count("Via") > 0 {
                Verdict::Refuse(Refusal::new(400, e.to_string()))
            } else {
                Verdict::Drop(e.to_string())
            }
        }
    }
}

fn check_response(msg: &Scanned<'_>, version: &str, code: &str) -> Verdict {
    if version != "SIP/2.0" {
        return Verdict::Drop(format!("response of version {}", truncate(version)));
    }
    let valid_code = code.len() == 3
        && code.bytes().all(|b| b.is_ascii_digit())
        && (b'1'..=b'6').contains(&code.as_bytes()[0]);
    if !valid_code {
        return Verdict::Drop(format!("response status {:?}", truncate(code)));
    }
    if let Some(e) = &msg.error {
        return Verdict::Drop(format!("response: {e}"));
    }
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if msg.count(name) == 0 {
            return Verdict::Drop(format!("response without {name}"));
        }
    }
    Verdict::Pass
}

fn check_request(
    msg: &Scanned<'_>,
    method: &str,
    uri: &str,
    version: &str,
    policy: &Policy,
) -> Result<(), Refusal> {
    if let Some(e) = &msg.error {
        return Err(Refusal::new(400, e.to_string()));
    }
    if version != "SIP/2.0" {
        return Err(Refusal::new(
            505,
            format!("SIP version {:?} is not supported", truncate(version)),
        ));
    }
    if !is_token(method) {
        return Err(Refusal::new(
            400,
            format!("method {:?} is not a token", truncate(method)),
        ));
    }
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if msg.count(name) == 0 {
            return Err(Refusal::new(400, format!("{name} header is missing")));
        }
    }
    for name in SINGLE {
        let n = msg.count(name);
        if n > 1 {
            return Err(Refusal::new(
                400,
                format!("{n} {name} headers (one allowed)"),
            ));
        }
    }
    let call_id = msg.first("Call-ID").unwrap_or("");
    if call_id.is_empty() || call_id.contains([' ', '\t']) {
        return Err(Refusal::new(
            400,
            format!("Call-ID {:?} is empty or holds spaces", truncate(call_id)),
        ));
    }
    check_cseq(msg.first("CSeq").unwrap_or(""), method)?;
    for via in msg.all("Via") {
        check_via(via.value)?;
    }
    for name in ["From", "To"] {
        let value = msg.first(name).unwrap_or("");
        if !value.contains(':') {
            return Err(Refusal::new(
                400,
                format!("{name} {:?} holds no URI", truncate(value)),
            ));
        }
    }
    check_body(msg)?;
    if !KNOWN_METHODS.contains(&method) {
        let mut r = Refusal::new(
            501,
            format!("method {} is not implemented", truncate(method)),
        );
        r.headers.push(("Allow", policy.allow.to_string()));
        return Err(r);
    }
    check_max_forwards(msg, method)?;
    check_scheme(uri)?;
    if method != "ACK" && method != "CANCEL" {
        check_require(msg, policy)?;
    }
    Ok(())
}

fn check_cseq(cseq: &str, method: &str) -> Result<(), Refusal> {
    let bad = |why: &str| {
        Err(Refusal::new(
            400,
            format!("CSeq {:?} {why}", truncate(cseq)),
        ))
    };
    let mut parts = cseq.split_whitespace();
    let (Some(seq), Some(m), None) = (parts.next(), parts.next(), parts.next()) else {
        return bad("is not `number METHOD`");
    };
    match seq.parse::<u64>() {
        Ok(n) if n < (1 << 31) && seq.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => return bad("has no number below 2^31"),
    }
    if m != method {
        return bad(&format!("does not name the request method {method}"));
    }
    Ok(())
}

fn check_via(value: &str) -> Result<(), Refusal> {
    // One line may hold several comma-separated Via values.
    for one in value.split(',') {
        let one = one.trim();
        let ok = one.strip_prefix("SIP/2.0/").is_some_and(|rest| {
            let mut it = rest.splitn(2, [' ', '\t']);
            let transport = it.next().unwrap_or("");
            let sent_by = it.next().unwrap_or("").trim();
            is_token(transport) && !sent_by.is_empty()
        });
        if !ok {
            return Err(Refusal::new(
                400,
                format!("Via {:?} is not SIP/2.0/<transport> <host>", truncate(one)),
            ));
        }
    }
    Ok(())
}

fn check_body(msg: &Scanned<'_>) -> Result<(), Refusal> {
    let mut body_len = msg.body.len();
    if let Some(cl) = msg.first("Content-Length") {
        let n = cl
            .parse::<usize>()
            .ok()
            .filter(|_| cl.bytes().all(|b| b.is_ascii_digit()));
        match n {
            None => {
                return Err(Refusal::new(
                    400,
                    format!("Content-Length {:?} is not a number", truncate(cl)),
                ))
            }
            Some(n) if n > msg.body.len() => {
                return Err(Refusal::new(
                    400,
                    format!(
                        "Content-Length {n} exceeds the {} body bytes received",
                        msg.body.len()
                    ),
                ))
            }
            Some(n) => body_len = n,
        }
    }
    if body_len > 0 && msg.count("Content-Type") == 0 {
        return Err(Refusal::new(
            400,
            format!("a body of {body_len} bytes has no Content-Type"),
        ));
    }
    Ok(())
}

fn check_max_forwards(msg: &Scanned<'_>, method: &str) -> Result<(), Refusal> {
    let Some(mf) = msg.first("Max-Forwards") else {
        return Err(Refusal::new(400, "Max-Forwards header is missing"));
    };
    let hops = match mf.parse::<u8>() {
        Ok(h) if mf.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => {
            return Err(Refusal::new(
                400,
                format!("Max-Forwards {:?} is not 0-255", truncate(mf)),
            ))
        }
    };
    let new_call = method == "INVITE" && !has_tag(msg.first("To").unwrap_or(""));
    if hops == 0 && new_call {
        return Err(Refusal::new(483, "Max-Forwards is 0"));
    }
    Ok(())
}

fn check_scheme(uri: &str) -> Result<(), Refusal> {
    let Some((scheme, _)) = uri.split_once(':') else {
        return Err(Refusal::new(
            400,
            format!("Request-URI {:?} has no scheme", truncate(uri)),
        ));
    };
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        Ok(())
    } else {
        Err(Refusal::new(
            416,
            format!("URI scheme {:?} is not supported", truncate(scheme)),
        ))
    }
}

fn check_require(msg: &Scanned<'_>, policy: &Policy) -> Result<(), Refusal> {
    let unsupported: Vec<&str> = msg
        .all("Require")
        .flat_map(|h| h.value.split(','))
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .filter(|tag| !policy.supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect();
    if unsupported.is_empty() {
        return Ok(());
    }
    let list = unsupported
        .iter()
        .map(|t| truncate(t))
        .collect::<Vec<_>>()
        .join(", ");
    let mut r = Refusal::new(420, format!("extension {list} is not supported"));
    r.headers.push(("Unsupported", list));
    Err(r)
}

/// Whether a From/To value carries a `tag` parameter (outside its `<>`).
fn has_tag(value: &str) -> bool {
    let params = match value.rfind('>') {
        Some(i) => &value[i..],
        None => value,
    };
    params.to_ascii_lowercase().contains(";tag=")
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        413 => "Request Entity Too Large",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        483 => "Too Many Hops",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => "Refused",
    }
}

/// The stateless response to a refused request (RFC 3261 §8.2.6): status
/// line `SIP/2.0`, the request's Via lines in order, the first From, To
/// (tagged), Call-ID and CSeq, the refusal's own headers, a `Warning`
/// with the reason, `Server` and `Content-Length: 0`.
pub fn reply(bytes: &[u8], refusal: &Refusal, server: &str) -> Vec<u8> {
    let msg = scan(bytes);
    let mut out = format!(
        "SIP/2.0 {} {}\r\n",
        refusal.code,
        reason_phrase(refusal.code)
    );
    for via in msg.all("Via") {
        out.push_str(via.raw);
        out.push_str("\r\n");
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        let Some(line) = msg.all(name).next() else {
            continue;
        };
        out.push_str(line.raw);
        if name == "To" && !has_tag(line.value) {
            out.push_str(";tag=");
            out.push_str(&stateless_tag(&msg));
        }
        out.push_str("\r\n");
    }
    for (name, value) in &refusal.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let (name, value) = super::message::warning(&refusal.why);
    out.push_str(&format!("{name}: {value}\r\nServer: {server}\r\n"));
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// A To tag that is the same for every retransmission of one request:
/// FNV-1a of its Call-ID and top Via.
fn stateless_tag(msg: &Scanned<'_>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let key = [msg.first("Call-ID"), msg.first("Via")];
    for b in key.iter().flatten().flat_map(|s| s.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("hl{h:016x}")
}

/// The refusal for a message that passed [`check`] but that the SIP
/// stack's parser still cannot read (it is stricter in places, e.g. URI
/// syntax): 400 with the parser's words.
pub fn unparseable(parser_error: &str) -> Refusal {
    Refusal::new(
        400,
        format!("message not understood: {}", truncate(parser_error)),
    )
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.why)
    }
}

#[cfg(test)]
mod tests;
