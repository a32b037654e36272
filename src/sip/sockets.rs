//! The sockets the SIP stack listens on: the UDP socket with large kernel
//! buffers, the TCP/TLS listening sockets, and the idle channel entry that
//! names a stream transport's address in rsipstack's listener table (so the
//! Via and Contact of requests sent over TCP or TLS name the right port).

use std::net::SocketAddr;

use rsipstack::sip as rsip;
use rsipstack::transport::SipAddr;
use tracing::info;

use super::stack::SipError;

/// The SIP UDP socket with large kernel buffers: a burst of requests (a
/// carrier's retransmissions after a network glitch, a load spike) must
/// queue, not be dropped — drops become retransmissions and lost calls.
pub(super) fn udp_socket(
    addr: SocketAddr,
    buffer: usize,
) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if buffer > 0 {
        socket.set_recv_buffer_size(buffer)?;
        socket.set_send_buffer_size(buffer)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let granted = socket.recv_buffer_size().unwrap_or(0);
    if buffer > 0 && granted < buffer {
        info!(
            asked = buffer,
            granted, "SIP UDP receive buffer capped by the kernel (net.core.rmem_max)"
        );
    }
    tokio::net::UdpSocket::from_std(socket.into())
}

/// The SIP TCP listening socket (address reuse, as servers do).
pub(super) fn tcp_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// A listener entry naming our address for a stream transport (TCP in a
/// stack without UDP, TLS): an in-memory channel nothing is ever sent on.
pub(super) async fn idle_listener(
    addr: SocketAddr,
    transport: rsip::Transport,
) -> Result<rsipstack::transport::SipConnection, SipError> {
    let (_feed, incoming) = tokio::sync::mpsc::unbounded_channel();
    let (outgoing, _drain) = tokio::sync::mpsc::unbounded_channel();
    // Nothing is fed to it or read from it: rsipstack serves no channel
    // listener, and only its address is used.
    rsipstack::transport::channel::ChannelConnection::create_connection(
        incoming,
        outgoing,
        SipAddr::new(transport, addr.into()),
        None,
    )
    .await
    .map(Into::into)
    .map_err(|e| SipError::Bind {
        transport: super::message::transport_name(transport),
        addr,
        reason: e.to_string(),
    })
}
