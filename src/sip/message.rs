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

/// Convert `(name, value)` pairs into rsipstack headers.
pub(crate) fn to_headers(headers: Vec<(String, String)>) -> Vec<rsip::Header> {
    headers
        .into_iter()
        .map(|(n, v)| rsip::Header::Other(n, v))
        .collect()
}
