//! The SIP ingress gate (issue 14 §3, §5): every datagram and every stream
//! frame passes here before rsipstack's parser, transactions or the switch
//! see it. In order:
//!
//! 1. the per-source flood limiter ([`super::flood`]): a banned address's
//!    messages are dropped unread, and the ban is logged once;
//! 2. admission ([`super::admit`]): RFC 3261's refusals, answered here
//!    statelessly, never reaching a transaction;
//! 3. rsipstack's own parser, so a message it could not read is answered
//!    400 rather than silently dropped.
//!
//! UDP is gated by [`GatedUdp`], a socket rsipstack reads through
//! (its `platform::net::UdpSocket` seam); TCP by
//! [`super::tcp_ingress`], which frames the stream itself and hands each
//! admitted message to the stack. Both ask the same [`Gate::screen`], so a
//! message gets one verdict whatever carried it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rsipstack::sip as rsip;
use tracing::{debug, info, warn};

use super::admit::{self, Policy, Verdict};
use super::flood::{Admit, FloodCounts, FloodPolicy, Limiter};

/// What the gate does with one message.
#[derive(Debug)]
pub enum Screen {
    /// Admitted: the parsed message, for the stack.
    Pass(Box<rsip::SipMessage>),
    /// A keep-alive (CRLF), for the transport to handle.
    KeepAlive,
    /// Refused: send these bytes back to the source.
    Reply(Vec<u8>),
    /// Drop it.
    Drop,
}

/// Figures of the gate, for `/metrics` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateCounts {
    /// Messages refused with a response (4xx/5xx).
    pub refused: u64,
    /// Messages dropped as unanswerable (no Via, bad ACK, bad response).
    pub malformed_dropped: u64,
    /// What the flood limiter did.
    pub flood: FloodCounts,
}

/// One gate per SIP stack, shared by its transports.
pub struct Gate {
    limiter: Mutex<Limiter>,
    policy: Policy,
    server: String,
    refused: AtomicU64,
    malformed: AtomicU64,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("server", &self.server)
            .finish()
    }
}

impl Gate {
    /// A gate enforcing `flood`, answering with `Server: server`.
    pub fn new(flood: FloodPolicy, server: &str) -> Self {
        Self {
            limiter: Mutex::new(Limiter::new(flood)),
            policy: Policy {
                allow: admit::ALLOW,
                supported: &[],
            },
            server: server.to_string(),
            refused: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
        }
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `source` is banned now (a TCP accept asks before reading).
    pub fn banned(&self, source: SocketAddr) -> bool {
        self.limiter().is_banned(source.ip(), crate::util::now())
    }

    /// Decide on one message from `source` over `transport` (`UDP`/`TCP`).
    pub fn screen(&self, bytes: &[u8], source: SocketAddr, transport: &'static str) -> Screen {
        match self.limiter().admit(source.ip(), crate::util::now()) {
            Admit::Pass => {}
            Admit::Dropped => return Screen::Drop,
            Admit::Banned => {
                warn!(%source, transport, "SIP flood: source banned, its messages are dropped");
                return Screen::Drop;
            }
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Screen::KeepAlive;
        }
        // §7.5: CRLFs before the start line are ignored (the parser
        // would refuse them; the transports cut them off on Pass).
        let bytes = &bytes[leading_crlf(bytes)..];
        let refusal = match admit::check(bytes, &self.policy) {
            Verdict::Pass => match rsip::SipMessage::try_from(bytes) {
                Ok(msg) => return Screen::Pass(Box::new(msg)),
                Err(e) if bytes.starts_with(b"SIP/") => {
                    self.malformed.fetch_add(1, Ordering::Relaxed);
                    debug!(%source, transport, error = %e, "unreadable SIP response dropped");
                    return Screen::Drop;
                }
                Err(e) => admit::unparseable(&e.to_string()),
            },
            Verdict::Refuse(r) => r,
            Verdict::Drop(why) => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
                debug!(%source, transport, %why, "SIP message dropped");
                return Screen::Drop;
            }
        };
        self.refused.fetch_add(1, Ordering::Relaxed);
        info!(%source, transport, code = refusal.code, why = %refusal.why, "SIP message refused");
        Screen::Reply(admit::reply(bytes, &refusal, &self.server))
    }

    /// The `Server` header value of its replies.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// What the gate has done so far.
    pub fn counts(&self) -> GateCounts {
        GateCounts {
            refused: self.refused.load(Ordering::Relaxed),
            malformed_dropped: self.malformed.load(Ordering::Relaxed),
            flood: self.limiter().counts(),
        }
    }
}

/// How many CR/LF bytes precede the start line.
pub fn leading_crlf(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count()
}

/// The SIP UDP socket as rsipstack reads it: `recv_from` returns only
/// datagrams the gate admits (and keep-alives); refusals are answered and
/// drops skipped inside the call.
pub struct GatedUdp {
    socket: tokio::net::UdpSocket,
    gate: Arc<Gate>,
}

impl GatedUdp {
    /// Gate `socket` with `gate`.
    pub fn new(socket: tokio::net::UdpSocket, gate: Arc<Gate>) -> Self {
        Self { socket, gate }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GatedUdp {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (len, source) = self.socket.recv_from(buf).await?;
            match self.gate.screen(&buf[..len], source, "UDP") {
                Screen::Pass(_) => {
                    let skip = leading_crlf(&buf[..len]);
                    buf.copy_within(skip..len, 0);
                    return Ok((len - skip, source));
                }
                Screen::KeepAlive => return Ok((len, source)),
                Screen::Reply(bytes) => {
                    if let Err(e) = self.socket.send_to(&bytes, source).await {
                        debug!(%source, error = %e, "refusal not sent");
                    }
                }
                Screen::Drop => {}
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}
