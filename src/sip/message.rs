//! Read-only views of received SIP requests and a one-shot responder for
//! out-of-dialog transactions (RFC 3261 §8.2, §17.2).
//!
//! These wrap rsipstack's message and transaction types so the rest of
//! hotline reads requests through domain accessors (`uri_user`, `source`,
//! `contacts`) and never depends on the SIP library's types.

use std::net::SocketAddr;

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{self as rsip, ToTypedHeader};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipConnection;

/// One `Contact` of a REGISTER (RFC 3261 §10.2.1).
#[derive(Debug, Clone, PartialEq)]
pub struct ContactValue {
    /// The contact URI as sent.
    pub uri: String,
    /// `;expires=` parameter.
    pub expires: Option<u32>,
    /// `;q=` parameter.
    pub q: Option<f32>,
}

/// The contacts of a REGISTER.
#[derive(Debug, Clone, PartialEq)]
pub enum Contacts {
    /// `Contact: *` (remove all bindings; only valid with Expires: 0).
    Wildcard,
    /// Zero or more contact URIs (zero = query bindings).
    List(Vec<ContactValue>),
}

/// A received request: the message plus where it came from.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) inner: rsip::Request,
    source: SocketAddr,
    transport: &'static str,
}

impl Request {
    pub(crate) fn new(inner: rsip::Request, fallback: SocketAddr) -> Self {
        // rsipstack stamps received/rport on the top Via (RFC 3581 §4), so the
        // Via tells the real source. Fall back to the listener address.
        let (transport, source) = inner
            .via_header()
            .ok()
            .and_then(|via| SipConnection::parse_target_from_via(via).ok())
            .and_then(|(t, hp)| {
                let addr: Option<SocketAddr> = hp.try_into().ok();
                addr.map(|a| (t, a))
            })
            .map(|(t, a)| (transport_name(t), a))
            .unwrap_or(("UDP", fallback));
        Self {
            inner,
            source,
            transport,
        }
    }

    /// Method name, e.g. `INVITE`.
    pub fn method(&self) -> String {
        self.inner.method.to_string()
    }

    /// The Request-URI.
    pub fn uri(&self) -> String {
        self.inner.uri.to_string()
    }

    /// Host (and port, if any) of the Request-URI.
    pub fn uri_host(&self) -> String {
        self.inner.uri.host_with_port.to_string()
    }

    /// User part of the Request-URI (the dialled number for an INVITE).
    pub fn uri_user(&self) -> Option<String> {
        self.inner.uri.user().map(str::to_string)
    }

    /// User part of the From URI (the caller's number).
    pub fn from_user(&self) -> Option<String> {
        let from = self.inner.from_header().ok()?.typed().ok()?;
        from.uri.user().map(str::to_string)
    }

    /// Display name of the From header, if any.
    pub fn from_display_name(&self) -> Option<String> {
        let from = self.inner.from_header().ok()?.typed().ok()?;
        from.display_name
    }

    /// User part of the To URI (the AOR of a REGISTER).
    pub fn to_user(&self) -> Option<String> {
        let to = self.inner.to_header().ok()?.typed().ok()?;
        to.uri.user().map(str::to_string)
    }

    /// True when the To header carries a tag (an in-dialog request).
    pub fn has_to_tag(&self) -> bool {
        self.inner
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .is_some()
    }

    /// Call-ID value.
    pub fn call_id(&self) -> String {
        self.inner
            .call_id_header()
            .map(|c| c.value().to_string())
            .unwrap_or_default()
    }

    /// CSeq sequence number.
    pub fn cseq(&self) -> Option<u32> {
        self.inner.cseq_header().ok()?.seq().ok()
    }

    /// First value of a header by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.inner.header_value(name)
    }

    /// `Expires` header value.
    pub fn expires(&self) -> Option<u32> {
        self.inner
            .expires_header()
            .and_then(|e| e.value().trim().parse().ok())
    }

    /// Contacts of a REGISTER.
    pub fn contacts(&self) -> Result<Contacts, String> {
        let raw: Vec<&rsip::headers::untyped::Contact> = self.inner.contact_headers();
        if raw.iter().any(|c| c.value().trim() == "*") {
            return Ok(Contacts::Wildcard);
        }
        let typed = self
            .inner
            .typed_contact_headers()
            .map_err(|e| format!("Contact: {e}"))?;
        Ok(Contacts::List(
            typed
                .into_iter()
                .map(|c| ContactValue {
                    expires: c.expires(),
                    q: c.q(),
                    uri: c.uri.to_string(),
                })
                .collect(),
        ))
    }

    /// The `Path` of a REGISTER (RFC 3327 §4): every value of every `Path`
    /// header, first proxy first, as route entries (`<sip:…;lr>`).
    pub fn path(&self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for h in self.inner.headers.iter() {
            if h.name().eq_ignore_ascii_case("Path") {
                let routes = rsip::typed::Route::parse_header_list(h.value())
                    .map_err(|e| format!("Path: {e}"))?;
                out.extend(routes.into_iter().map(String::from));
            }
        }
        Ok(out)
    }

    /// The phone's own address as the proxy nearest to it wrote in its
    /// `Path` entry (`;received=sip:IP:PORT`, Kamailio's
    /// `add_path_received`): the last entry is the first proxy passed.
    /// Trust it only from a proxy you trust.
    pub fn path_received(&self) -> Option<SocketAddr> {
        let path = self.path().ok()?;
        received_of(path.last()?)
    }

    /// The client a proxy relayed this request from: the second `Via`
    /// (the first is the proxy's own), at its `received`/`rport` address
    /// when the proxy stamped one (RFC 3261 §18.2.1, RFC 3581 §4), else its
    /// sent-by. Trust it only from a proxy you trust.
    pub fn proxied_client(&self) -> Option<SocketAddr> {
        let vias: Vec<String> = self
            .inner
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case("Via") || h.name() == "v")
            .flat_map(|h| {
                h.value()
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        via_address(vias.get(1)?)
    }

    /// Whether the request lists `option` in `Supported` (RFC 3261 §20.37).
    pub fn supports(&self, option: &str) -> bool {
        self.inner.header_contains_token("Supported", option)
    }

    /// `Authorization` header value (raw).
    pub fn authorization(&self) -> Option<String> {
        self.inner
            .authorization_header()
            .map(|a| a.value().to_string())
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.inner.body
    }

    /// A problem that makes the request unusable, with the status the stack
    /// answers: 505 for a SIP version other than 2.0 (RFC 3261 §8.2.2.1's
    /// sibling §21.5.7), 400 (§18.3, §8.2.2) for a
    /// Content-Length that is not a number or exceeds the body received in
    /// the datagram, or a CSeq whose method is not the request's.
    pub fn defect(&self) -> Option<(u16, String)> {
        if self.inner.version != rsip::Version::V2 {
            return Some((
                505,
                format!("SIP version {} is not supported", self.inner.version),
            ));
        }
        self.header_defect().map(|d| (400, d))
    }

    fn header_defect(&self) -> Option<String> {
        if let Some(cl) = self.inner.header_value("Content-Length") {
            match cl.trim().parse::<usize>() {
                Err(_) => return Some(format!("Content-Length {cl:?} is not a number")),
                Ok(n) if n > self.inner.body.len() => {
                    return Some(format!(
                        "Content-Length {n} exceeds the {} body bytes received",
                        self.inner.body.len()
                    ))
                }
                Ok(_) => {}
            }
        }
        match self.inner.cseq_header().ok().and_then(|c| c.method().ok()) {
            Some(m) if m != self.inner.method => Some(format!(
                "CSeq method {m} does not match the request method {}",
                self.inner.method
            )),
            _ => None,
        }
    }

    /// Where the request came from (Via received/rport).
    pub fn source(&self) -> SocketAddr {
        self.source
    }

    /// `UDP` or `TCP`.
    pub fn transport(&self) -> &'static str {
        self.transport
    }
}

pub(crate) fn transport_name(t: rsip::Transport) -> &'static str {
    match t {
        rsip::Transport::Tcp => "TCP",
        rsip::Transport::Tls => "TLS",
        rsip::Transport::Ws => "WS",
        rsip::Transport::Wss => "WSS",
        _ => "UDP",
    }
}

/// Answers one out-of-dialog server transaction (REGISTER, OPTIONS, a
/// rejected INVITE …). Consumed by the reply.
pub struct Responder {
    pub(crate) tx: Transaction,
}

impl Responder {
    /// Send a final (or provisional) response with extra headers and body.
    pub async fn reply(
        mut self,
        code: u16,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
    ) -> Result<(), super::SipError> {
        let headers = to_headers(headers);
        self.tx
            .reply_with(rsip::StatusCode::from(code), headers, body)
            .await
            .map_err(|e| super::SipError::Send(e.to_string()))
    }
}

/// A `Warning` header (RFC 3261 §20.43) explaining a refusal.
pub fn warning(text: &str) -> (String, String) {
    let clean: String = text
        .chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .take(200)
        .collect();
    ("Warning".into(), format!("399 hotline \"{clean}\""))
}

/// Convert `(name, value)` pairs into rsipstack headers.
pub(crate) fn to_headers(headers: Vec<(String, String)>) -> Vec<rsip::Header> {
    headers
        .into_iter()
        .map(|(n, v)| rsip::Header::Other(n, v))
        .collect()
}

/// The address one `Via` value names: `received` and `rport` when set,
/// else its sent-by (port 5060 when it has none).
fn via_address(via: &str) -> Option<SocketAddr> {
    let mut parts = via.split(';');
    let sent_by = parts.next()?.split_whitespace().nth(1)?;
    let (mut host, mut port) = match sent_by.parse::<SocketAddr>() {
        Ok(a) => (a.ip(), a.port()),
        Err(_) => (sent_by.trim_matches(['[', ']']).parse().ok()?, 5060),
    };
    for p in parts {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "received" => host = value.trim().trim_matches(['[', ']']).parse().ok()?,
            "rport" => {
                if let Ok(n) = value.trim().parse() {
                    port = n;
                }
            }
            _ => {}
        }
    }
    Some(SocketAddr::new(host, port))
}

/// The `received` parameter of a route entry, `sip:IP:PORT` (or a bare
/// `IP:PORT`), as an address.
fn received_of(entry: &str) -> Option<SocketAddr> {
    let at = entry.find(";received=")? + ";received=".len();
    let value = entry[at..]
        .split([';', '>', ',', '%'])
        .next()?
        .trim_matches('"');
    let hostport = value
        .strip_prefix("sips:")
        .or_else(|| value.strip_prefix("sip:"))
        .unwrap_or(value);
    hostport.parse().ok()
}

/// A stored route (a binding's `Path`, RFC 3327) as the `Route` entries
/// of a request we originate; a value that does not parse is the URI at
/// fault.
pub(super) fn route_set(
    route: &[String],
) -> Result<Vec<rsip::typed::Route>, super::stack::SipError> {
    let mut out = Vec::with_capacity(route.len());
    for r in route {
        let parsed = rsip::typed::Route::parse_header_list(r)
            .map_err(|_| super::stack::SipError::BadUri(r.clone()))?;
        out.extend(parsed);
    }
    Ok(out)
}

/// Parse one SIP datagram or stream frame the way the stack does
/// (rsipstack's parser) and read it through [`Request`]'s accessors;
/// for fuzzing and for tests of malformed input. Returns the method of a
/// request, or the status code of a response, or the parser's error text.
pub fn parse_for_inspection(bytes: &[u8]) -> Result<String, String> {
    match rsip::SipMessage::try_from(bytes).map_err(|e| e.to_string())? {
        rsip::SipMessage::Request(req) => {
            let request = Request::new(req, SocketAddr::from(([127, 0, 0, 1], 5060)));
            let _ = request.uri();
            let _ = request.uri_user();
            let _ = request.from_user();
            let _ = request.from_display_name();
            let _ = request.to_user();
            let _ = request.has_to_tag();
            let _ = request.call_id();
            let _ = request.cseq();
            let _ = request.expires();
            let _ = request.contacts();
            let _ = request.path();
            let _ = request.supports("path");
            let _ = request.path_received();
            let _ = request.proxied_client();
            let _ = request.authorization();
            let _ = request.body();
            let _ = request.source();
            let _ = request.transport();
            Ok(request.method())
        }
        rsip::SipMessage::Response(resp) => Ok(resp.status_code.code().to_string()),
    }
}

/// The status a failed rsipstack request stands for (its dialog error's
/// code, 503 for a transport failure, 408 otherwise).
pub(super) fn error_status(e: &rsipstack::Error) -> u16 {
    match e {
        rsipstack::Error::DialogError(_, _, code) => code.code(),
        rsipstack::Error::TransportLayerError(_, _) => 503,
        _ => 408,
    }
}

/// A fresh random Call-ID for a leg we originate.
pub(super) fn new_call_id() -> String {
    use rand::Rng;
    let n: u128 = rand::rng().random();
    format!("hl-{n:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_via_names_its_received_and_rport_address_else_its_sent_by() {
        let at = |v: &str| via_address(v);
        assert_eq!(
            at("SIP/2.0/UDP 127.22.0.21:5060;branch=z9hG4bK-1"),
            Some("127.22.0.21:5060".parse().expect("addr"))
        );
        assert_eq!(
            at("SIP/2.0/UDP 10.0.0.7:5060;rport=40123;received=198.51.100.9;branch=z"),
            Some("198.51.100.9:40123".parse().expect("addr"))
        );
        assert_eq!(
            at("SIP/2.0/TCP 192.0.2.4;branch=z"),
            Some("192.0.2.4:5060".parse().expect("addr"))
        );
        assert_eq!(at("SIP/2.0/UDP phone.example;branch=z"), None);
        assert_eq!(at("garbage"), None);
    }

    #[test]
    fn the_phones_address_is_read_from_the_received_parameter_of_its_path() {
        let at = |e: &str| received_of(e);
        assert_eq!(
            at("<sip:127.22.0.5;lr;received=sip:127.22.0.21:5060>"),
            Some("127.22.0.21:5060".parse().expect("addr"))
        );
        assert_eq!(
            at("<sip:edge;lr;received=sip:10.1.2.3:5070%3Btransport%3Dtcp>"),
            Some("10.1.2.3:5070".parse().expect("addr"))
        );
        assert_eq!(
            at("<sip:edge;received=\"sip:[2001:db8::7]:5060\";lr>"),
            Some("[2001:db8::7]:5060".parse().expect("addr"))
        );
        assert_eq!(at("<sip:edge;lr>"), None);
        assert_eq!(at("<sip:edge;lr;received=nonsense>"), None);
    }

    const INVITE: &str = "INVITE sip:1001@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:1001@example.com>\r\n\
        From: \"Alice\" <sip:2002@example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.example.com\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:2002@192.0.2.10:5060>\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn parse_for_inspection_accepts_requests_and_responses() {
        assert_eq!(
            parse_for_inspection(INVITE.as_bytes()),
            Ok("INVITE".to_string())
        );
        let ok = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n\
            To: <sip:1001@example.com>;tag=a6c85cf\r\n\
            From: <sip:2002@example.com>;tag=1928301774\r\n\
            Call-ID: a84b4c76e66710@pc33.example.com\r\n\
            CSeq: 314159 INVITE\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(parse_for_inspection(ok.as_bytes()), Ok("200".to_string()));
    }

    #[test]
    fn parse_for_inspection_rejects_malformed_input_without_panicking() {
        assert!(parse_for_inspection(b"").is_err());
        assert!(parse_for_inspection(b"\x00\xff garbage \r\n\r\n").is_err());
        // rsipstack's parser skips a header line without a colon (it does
        // not reject the message); the rest must still be readable.
        let no_colon = INVITE.replace("Max-Forwards: 70", "Max-Forwards 70");
        assert_eq!(
            parse_for_inspection(no_colon.as_bytes()),
            Ok("INVITE".to_string())
        );
        // No blank line ending the headers: rejected.
        assert!(parse_for_inspection(INVITE.trim_end().as_bytes()).is_err());
        // Every truncation of a valid message must return, not panic.
        for cut in 0..INVITE.len() {
            let _ = parse_for_inspection(&INVITE.as_bytes()[..cut]);
        }
    }
}
