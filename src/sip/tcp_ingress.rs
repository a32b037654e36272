//! SIP over TCP and TLS, framed by hotline (RFC 3261 §18.3, §26.2) so every
//! message passes the ingress [`Gate`] before the stack sees it (issue 14
//! §3, §4, §5). TLS is rustls ([`tokio_rustls`]); the handshake has 10 s,
//! then the connection is the same as a TCP one.
//!
//! rsipstack's own TCP listener parses inside its reader and closes the
//! connection on the first message it cannot read, without an answer, so
//! the same message would be 400 over UDP and silence over TCP. Here the
//! listener, the framing (headers to the blank line, then `Content-Length`
//! bytes; CRLF CRLF keep-alives answered CRLF, RFC 5626 §3.5.1) and the
//! gate are ours; each admitted message is handed to rsipstack through an
//! in-memory channel connection registered for the peer, so transactions,
//! dialogs and responses (and requests to the same peer) travel on the
//! same TCP connection exactly as before.
//!
//! Limits: a message over 64 KiB is refused 513 and the connection closed
//! (its framing cannot be trusted after that, nor after a 400 about
//! `Content-Length`); a connection idle for 5 minutes is closed; a banned
//! source's connections are refused at accept and closed on its next
//! message; one address may hold `max_per_source` connections at once.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::sip as rsip;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::admit::{self, scan};
use super::gate::{Gate, Screen};

/// Largest message accepted on a stream.
const MAX_MESSAGE: usize = 65_535;
/// A connection with no bytes for this long is closed.
const IDLE: Duration = Duration::from_secs(300);
/// Responses and requests queued for one connection's writer.
const OUT_QUEUE: usize = 256;

/// Connections per source address, to cap one peer's share.
#[derive(Default)]
struct PerSource(Mutex<HashMap<IpAddr, usize>>);

impl PerSource {
    fn enter(&self, ip: IpAddr, max: usize) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    fn leave(&self, ip: IpAddr) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

/// The peers connected over TLS now (remote address → open connections).
pub(crate) type TlsPeers = Arc<dashmap::DashMap<SocketAddr, usize>>;

/// Accept SIP over TCP on `listener` until `cancel`; with `tls`, each
/// connection is a TLS server handshake first, and its peer is listed in
/// `tls_peers` while it is open.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tls_peers: TlsPeers,
    gate: Arc<Gate>,
    endpoint: EndpointInnerRef,
    max_per_source: usize,
    cancel: CancellationToken,
) {
    let per_source = Arc::new(PerSource::default());
    let name = if tls.is_some() { "TLS" } else { "TCP" };
    loop {
        let (stream, remote) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, transport = name, "SIP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if gate.banned(remote) {
            debug!(%remote, transport = name, "SIP connection from a banned source closed");
            continue;
        }
        if !per_source.enter(remote.ip(), max_per_source.max(1)) {
            info!(%remote, max_per_source, transport = name, "SIP connection refused: too many from this address");
            continue;
        }
        let (gate, endpoint, per_source) = (gate.clone(), endpoint.clone(), per_source.clone());
        let token = cancel.child_token();
        let tls = tls.clone();
        let tls_peers = tls_peers.clone();
        tokio::spawn(async move {
            stream.set_nodelay(true).ok();
            let link = Link {
                remote,
                gate,
                endpoint,
                cancel: token,
            };
            match tls {
                None => link.run(stream, rsip::Transport::Tcp).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            *tls_peers.entry(remote).or_insert(0) += 1;
                            link.run(stream, rsip::Transport::Tls).await;
                            tls_peers.remove_if_mut(&remote, |_, n| {
                                *n -= 1;
                                *n == 0
                            });
                        }
                        Ok(Err(e)) => info!(%remote, error = %e, "SIP TLS handshake failed"),
                        Err(_) => info!(%remote, "SIP TLS handshake timed out"),
                    }
                }
            }
            per_source.leave(remote.ip());
        });
    }
}

/// How long a TLS handshake may take (either side's).
pub(crate) const HANDSHAKE: Duration = Duration::from_secs(10);

/// One connection (accepted, or opened by `tls_client`), before its
/// stream type is known.
pub(crate) struct Link {
    pub(crate) remote: SocketAddr,
    pub(crate) gate: Arc<Gate>,
    pub(crate) endpoint: EndpointInnerRef,
    pub(crate) cancel: CancellationToken,
}

impl Link {
    /// Serve the connection until it closes: what the peer sends is framed
    /// and gated, what the stack sends to `remote` over `transport` goes
    /// out on it.
    pub(crate) async fn run<S>(self, stream: S, transport: rsip::Transport)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let Link {
            remote,
            gate,
            endpoint,
            cancel,
        } = self;
        let (read, write) = tokio::io::split(stream);
        let (to_stack, from_peer) = mpsc::unbounded_channel();
        let (to_writer, from_stack) = mpsc::channel(OUT_QUEUE);
        let (raw_tx, raw_rx) = mpsc::channel::<Vec<u8>>(16);
        let peer = SipAddr::new(transport, remote.into());
        let channel = match ChannelConnection::create_connection_bounded(
            from_peer,
            to_writer,
            peer.clone(),
            Some(cancel.clone()),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                warn!(%remote, error = %e, "SIP connection not set up");
                return;
            }
        };
        let connection = SipConnection::Channel(channel);
        endpoint.transport_layer.add_connection(connection.clone());
        debug!(%remote, %transport, "SIP connection open");
        let writer = tokio::spawn(write_loop(write, from_stack, raw_rx, cancel.clone()));
        let reader = Reader {
            remote,
            transport,
            peer,
            gate,
            to_stack,
            replies: raw_tx,
            connection,
        };
        reader.run(read, &cancel).await;
        // Stop the writer (shutting the write half down sends FIN or TLS
        // close_notify); the channel's serve loop ends with `to_stack`, and
        // rsipstack retires the connection so no later request is queued
        // for it.
        cancel.cancel();
        writer.await.ok();
        debug!(%remote, %transport, "SIP connection closed");
    }
}

async fn write_loop<S: AsyncWrite>(
    mut write: WriteHalf<S>,
    mut from_stack: mpsc::Receiver<TransportEvent>,
    mut replies: mpsc::Receiver<Vec<u8>>,
    cancel: CancellationToken,
) {
    loop {
        let bytes = tokio::select! {
            biased;
            Some(bytes) = replies.recv() => bytes,
            Some(event) = from_stack.recv() => match event {
                TransportEvent::Incoming(msg, _, _) => msg.to_string().into_bytes(),
                _ => continue,
            },
            _ = cancel.cancelled() => break,
            else => break,
        };
        if let Err(e) = write.write_all(&bytes).await {
            debug!(error = %e, "SIP stream write failed");
            break;
        }
    }
    // Flush what the reader queued last (a refusal before a close).
    while let Ok(bytes) = replies.try_recv() {
        if write.write_all(&bytes).await.is_err() {
            break;
        }
    }
    write.shutdown().await.ok();
}

struct Reader {
    remote: SocketAddr,
    transport: rsip::Transport,
    peer: SipAddr,
    gate: Arc<Gate>,
    to_stack: mpsc::UnboundedSender<TransportEvent>,
    replies: mpsc::Sender<Vec<u8>>,
    connection: SipConnection,
}

/// What framing found at the front of the buffer.
enum Frame {
    /// Need more bytes.
    More,
    /// A keep-alive ping of this many bytes (answer CRLF).
    Ping(usize),
    /// A keep-alive pong or stray CRLF of this many bytes.
    Skip(usize),
    /// One message of this many bytes.
    Message(usize),
    /// The stream cannot be framed any more: refuse with this and close.
    Broken(admit::Refusal),
}

fn frame(buf: &[u8]) -> Frame {
    if buf.starts_with(b"\r\n\r\n") {
        return Frame::Ping(4);
    }
    if buf.starts_with(b"\r\n") {
        return if buf.len() >= 4 || buf == b"\r\n\r" {
            Frame::Skip(2)
        } else {
            Frame::More
        };
    }
    let Some((_, body_at)) = scan::header_end(buf) else {
        if buf.len() > MAX_MESSAGE {
            return Frame::Broken(refusal(513, "headers exceed 64 KiB"));
        }
        return Frame::More;
    };
    let head = scan::scan(&buf[..body_at]);
    let length = match head.first("Content-Length") {
        None => 0,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Frame::Broken(refusal(
                    400,
                    &format!(
                        "Content-Length {:?} is not a number: the stream cannot be framed",
                        scan::truncate(v)
                    ),
                ))
            }
        },
    };
    let total = body_at.saturating_add(length);
    if total > MAX_MESSAGE {
        return Frame::Broken(refusal(513, &format!("a message of {total} bytes")));
    }
    if buf.len() < total {
        return Frame::More;
    }
    Frame::Message(total)
}

fn refusal(code: u16, why: &str) -> admit::Refusal {
    admit::Refusal {
        code,
        why: why.to_string(),
        headers: Vec::new(),
    }
}

impl Reader {
    async fn run<S: AsyncRead>(&self, mut read: ReadHalf<S>, cancel: &CancellationToken) {
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; 4096];
        loop {
            let n = tokio::select! {
                _ = cancel.cancelled() => return,
                r = tokio::time::timeout(IDLE, read.read(&mut chunk)) => match r {
                    Err(_) => {
                        info!(remote = %self.remote, transport = %self.transport, "SIP connection idle for 5 minutes: closed");
                        return;
                    }
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Ok(Ok(n)) => n,
                },
            };
            buf.extend_from_slice(&chunk[..n]);
            loop {
                match frame(&buf) {
                    Frame::More => break,
                    Frame::Ping(n) => {
                        buf.drain(..n);
                        self.replies.send(b"\r\n".to_vec()).await.ok();
                    }
                    Frame::Skip(n) => {
                        buf.drain(..n);
                    }
                    Frame::Message(n) => {
                        let keep = self.message(&buf[..n]).await;
                        buf.drain(..n);
                        if !keep {
                            return;
                        }
                    }
                    Frame::Broken(r) => {
                        info!(remote = %self.remote, transport = %self.transport, code = r.code, why = %r.why, "SIP stream refused and closed");
                        if scan::scan(&buf).count("Via") > 0 {
                            self.replies
                                .send(admit::reply(&buf, &r, self.gate.server()))
                                .await
                                .ok();
                        }
                        return;
                    }
                }
            }
        }
    }

    /// Screen one framed message; `false` closes the connection.
    async fn message(&self, bytes: &[u8]) -> bool {
        let name = if self.transport == rsip::Transport::Tls {
            "TLS"
        } else {
            "TCP"
        };
        match self.gate.screen(bytes, self.remote, name) {
            Screen::Pass(msg) => {
                let msg =
                    match SipConnection::update_msg_received(*msg, self.remote, self.transport) {
                        Ok(m) => m,
                        Err(e) => {
                            debug!(remote = %self.remote, error = %e, "Via not updatable: dropped");
                            return true;
                        }
                    };
                self.to_stack
                    .send(TransportEvent::Incoming(
                        msg,
                        self.connection.clone(),
                        self.peer.clone(),
                    ))
                    .is_ok()
            }
            Screen::Reply(bytes) => self.replies.send(bytes).await.is_ok(),
            Screen::KeepAlive => true,
            Screen::Drop => !self.gate.banned(self.remote),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_splits_messages_and_keepalives() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabcOPTIONS";
        assert!(matches!(frame(m), Frame::Message(n) if n == m.len() - 7));
        assert!(matches!(frame(b"\r\n\r\nX"), Frame::Ping(4)));
        assert!(matches!(frame(b"\r\nOPT"), Frame::Skip(2)));
        assert!(matches!(frame(b"\r\n"), Frame::More));
        assert!(matches!(
            frame(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nab"),
            Frame::More
        ));
        assert!(matches!(
            frame(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n"),
            Frame::Broken(r) if r.code == 400
        ));
        assert!(matches!(
            frame(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999\r\n\r\n"),
            Frame::Broken(r) if r.code == 513
        ));
        let huge = vec![b'a'; MAX_MESSAGE + 1];
        assert!(matches!(frame(&huge), Frame::Broken(r) if r.code == 513));
    }
}
