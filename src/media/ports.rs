//! The RTP port pool: even RTP ports with RTCP on the next odd port
//! (RFC 3550 §11), taken from the configured range, bound at allocation and
//! returned to the pool when the [`PortPair`] drops, so no call leaks ports.
//!
//! A pair's sockets are private: every datagram goes through
//! [`PortPair::send_rtp`] / [`Attached::recv_rtp`] (and the RTCP pair),
//! or, in the shared media IO workers ([`crate::media::io`]), through
//! [`PortPair::recv_batch`] and [`PortPair::open`], which apply the leg's
//! SRTP once it is keyed ([`PortPair::secure`]), so no task lending the
//! sockets can send an SRTP leg plaintext or hand on a packet that failed
//! authentication.
//!
//! The sockets are plain non-blocking sockets, registered with nobody by
//! default: a connected call's relay reads them from an IO worker's poll
//! (no tokio wake-up per packet); a task that reads them itself (a
//! player, the test phone) [`attaches`](PortPair::attach) them to its
//! tokio reactor for as long as it runs. Sending never waits: a datagram
//! the kernel cannot take at once is dropped, as the network would.

use std::collections::VecDeque;
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use quinn_udp::{RecvMeta, UdpSocketState};

use super::sdp::SrtpKeys;
use super::srtp::{SecureLeg, SrtpError, Transformed};
use super::webrtc::{classify, Class, DtlsError, Fingerprint, IceCredentials, WebRtcTransport};

/// Pool errors.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Every port pair of the range is in use (or could not be bound).
    #[error("no free RTP port pair in {min}..={max} on {address}")]
    Exhausted {
        /// Bind address.
        address: IpAddr,
        /// Range start.
        min: u16,
        /// Range end.
        max: u16,
    },
}

struct PoolInner {
    address: IpAddr,
    min: u16,
    max: u16,
    free: Mutex<VecDeque<u16>>,
    in_use: AtomicUsize,
}

/// A pool of RTP/RTCP port pairs.
#[derive(Clone)]
pub struct PortPool {
    inner: Arc<PoolInner>,
}

/// A bound RTP/RTCP socket pair; returns its ports to the pool on drop.
pub struct PortPair {
    /// The RTP socket (even port).
    rtp: UdpSocket,
    /// The RTCP socket (RTP port + 1).
    rtcp: UdpSocket,
    /// Batched receive state of each (quinn-udp: recvmmsg, GRO).
    rtp_io: UdpSocketState,
    rtcp_io: UdpSocketState,
    port: u16,
    pool: Arc<PoolInner>,
    srtp: SecureLeg,
    /// A browser's leg: ICE-lite, DTLS-SRTP and RTCP on the RTP port
    /// (`media::webrtc`), from the offer that made it one.
    web: OnceLock<Arc<Mutex<WebRtcTransport>>>,
    /// Its first `ice-ufrag` (an ICE restart finds the transport by it).
    web_ufrag: OnceLock<String>,
    /// A browser answered: the leg is WebRTC (read on every packet, so a
    /// leg only offered to browsers never takes the lock).
    web_armed: AtomicBool,
}

/// Which socket of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The RTP socket.
    Rtp,
    /// The RTCP socket.
    Rtcp,
}

/// A pair attached to the current tokio reactor, for a task that reads it
/// itself (see the module docs): tokio sockets on duplicates of the pair's
/// descriptors (same sockets). Dropping it detaches them.
pub struct Attached<'a> {
    pair: &'a PortPair,
    rtp: tokio::net::UdpSocket,
    rtcp: tokio::net::UdpSocket,
}

impl Attached<'_> {
    /// The next RTP packet into `buf` (decrypted on a keyed leg; packets
    /// that fail authentication are counted and skipped). Cancel-safe.
    pub async fn recv_rtp(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        self.recv(&self.rtp, Channel::Rtp, buf).await
    }

    /// The next RTCP packet into `buf` (as [`Self::recv_rtp`]).
    pub async fn recv_rtcp(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        self.recv(&self.rtcp, Channel::Rtcp, buf).await
    }

    async fn recv(
        &self,
        socket: &tokio::net::UdpSocket,
        channel: Channel,
        buf: &mut [u8],
    ) -> std::io::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = socket.recv_from(buf).await?;
            let now = tokio::time::Instant::now().into_std();
            // A browser's muxed RTCP is not what a reader of RTP asked for.
            if let Some((m, got)) = self.pair.open(channel, buf, n, from, now) {
                if got == channel {
                    return Ok((m, from));
                }
            }
        }
    }

    /// Send an RTP packet (see [`PortPair::send_rtp`]).
    pub fn send_rtp(&self, packet: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        self.pair.send_rtp(packet, to)
    }
}

impl PortPair {
    /// RTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Bound address.
    pub fn address(&self) -> IpAddr {
        self.pool.address
    }

    /// Key the leg with SRTP once its offer/answer settled on it (the same
    /// keys again change nothing; `None` changes nothing either: a leg
    /// once SRTP stays SRTP, see [`SecureLeg::key`]).
    pub fn secure(&self, keys: Option<&SrtpKeys>) -> Result<(), SrtpError> {
        match keys {
            Some(k) => self.srtp.key(k),
            None => Ok(()),
        }
    }

    /// Make the leg a browser's (WebRTC): our ICE credentials for its
    /// offer (the same ones each time it is asked).
    pub fn webrtc_credentials(&self) -> IceCredentials {
        lock(self.webrtc()).credentials().clone()
    }

    fn webrtc(&self) -> &Mutex<WebRtcTransport> {
        self.web.get_or_init(|| {
            let local = SocketAddr::new(self.pool.address, self.port);
            let t = Arc::new(Mutex::new(WebRtcTransport::new(local)));
            let ufrag = lock(&t).credentials().ufrag.clone();
            crate::media::webrtc::restart::register(&ufrag, &t);
            let _ = self.web_ufrag.set(ufrag);
            t
        })
    }

    /// The browser answered with its certificate's `peer` fingerprint:
    /// from now on the leg is SRTP keyed by DTLS (nothing plaintext is
    /// sent or taken meanwhile). Again with the same leg: nothing.
    pub fn arm_webrtc(&self, now: std::time::Instant, peer: Fingerprint) -> Result<(), DtlsError> {
        self.srtp.expect_keys();
        let received = lock(self.webrtc()).arm(now, peer)?;
        self.web_armed.store(true, Ordering::Release);
        self.carry_out(received.replies, received.keys.as_ref());
        Ok(())
    }

    /// Whether the leg is a browser's whose answer came.
    pub fn is_webrtc(&self) -> bool {
        self.web_armed.load(Ordering::Acquire)
    }

    fn carry_out(&self, replies: Vec<(SocketAddr, Vec<u8>)>, keys: Option<&SrtpKeys>) {
        for (to, datagram) in replies {
            let _ = self.rtp.send_to(&datagram, to);
        }
        if let Some(k) = keys {
            if let Err(e) = self.srtp.key(k) {
                tracing::error!(error = %e, "cannot key a WebRTC leg's SRTP: its media is refused");
            }
        }
    }

    /// Where a browser's leg sends (the address that passed its ICE
    /// check), `to` for other legs; `None`: not yet known.
    fn destination(&self, to: SocketAddr) -> Option<SocketAddr> {
        match (self.is_webrtc(), self.web.get()) {
            (true, Some(w)) => lock(w).remote(),
            _ => Some(to),
        }
    }

    /// Received SRTP/SRTCP packets refused (failed authentication, replays).
    pub fn srtp_refused(&self) -> u64 {
        self.srtp.refused()
    }

    /// Send an RTP packet to `to` (as SRTP on a keyed leg), without
    /// waiting: a full socket buffer drops it (`WouldBlock`).
    pub fn send_rtp(&self, packet: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        let Some(to) = self.destination(to) else {
            return Err(std::io::Error::other(
                "no checked address on the WebRTC leg yet",
            ));
        };
        match self.srtp.outgoing_rtp(packet) {
            Transformed::Plain => self.rtp.send_to(packet, to),
            Transformed::Secure(p) => self.rtp.send_to(&p, to),
            Transformed::Refused => Err(std::io::Error::other("SRTP could not protect a packet")),
        }
    }

    /// Send an RTCP packet to `to` (as SRTCP on a keyed leg), as
    /// [`Self::send_rtp`].
    pub fn send_rtcp(&self, packet: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        let Some(to) = self.destination(to) else {
            return Err(std::io::Error::other(
                "no checked address on the WebRTC leg yet",
            ));
        };
        // A browser's leg muxes RTCP on the RTP port (RFC 5761).
        let socket = match self.is_webrtc() {
            true => &self.rtp,
            false => &self.rtcp,
        };
        match self.srtp.outgoing_rtcp(packet) {
            Transformed::Plain => socket.send_to(packet, to),
            Transformed::Secure(p) => socket.send_to(&p, to),
            Transformed::Refused => Err(std::io::Error::other("SRTCP could not protect a packet")),
        }
    }

    /// Attach the sockets to the current tokio reactor for a task that
    /// reads them itself, until the [`Attached`] drops.
    ///
    /// # Errors
    /// Not inside a tokio runtime, or out of file descriptors.
    pub fn attach(&self) -> std::io::Result<Attached<'_>> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(std::io::Error::other(
                "RTP ports attached outside a tokio runtime",
            ));
        }
        let rtp = tokio::net::UdpSocket::from_std(self.rtp.try_clone()?)?;
        let rtcp = tokio::net::UdpSocket::from_std(self.rtcp.try_clone()?)?;
        Ok(Attached {
            pair: self,
            rtp,
            rtcp,
        })
    }

    /// One socket of the pair (to register it with an IO worker's poll).
    pub(crate) fn socket(&self, channel: Channel) -> &UdpSocket {
        match channel {
            Channel::Rtp => &self.rtp,
            Channel::Rtcp => &self.rtcp,
        }
    }

    /// Read what waits on one socket, up to `bufs.len()` datagrams in one
    /// system call (recvmmsg); with GRO a buffer may hold several
    /// datagrams of `meta.stride` bytes each. The datagrams are raw:
    /// [`Self::open`] each before use. `WouldBlock` when none waits.
    pub(crate) fn recv_batch(
        &self,
        channel: Channel,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> std::io::Result<usize> {
        let (socket, state) = match channel {
            Channel::Rtp => (&self.rtp, &self.rtp_io),
            Channel::Rtcp => (&self.rtcp, &self.rtcp_io),
        };
        state.recv(socket.into(), bufs, meta)
    }

    /// A raw datagram of `n` bytes received on `channel`, opened in
    /// place: its length after the leg's SRTP (decrypted and
    /// authenticated on a keyed leg), `None` when refused (counted).
    /// On a browser's leg the RTP port also carries its ICE checks and
    /// DTLS (answered here, never handed on) and its RTCP: the channel
    /// returned is what the packet is.
    pub(crate) fn open(
        &self,
        channel: Channel,
        buf: &mut [u8],
        n: usize,
        from: SocketAddr,
        now: std::time::Instant,
    ) -> Option<(usize, Channel)> {
        let channel = match self.web.get() {
            Some(w)
                if self.is_webrtc() || matches!(classify(&buf[..n]), Class::Stun | Class::Dtls) =>
            {
                let received = lock(w).receive(now, from, &buf[..n]);
                let media = received.media;
                self.carry_out(received.replies, received.keys.as_ref());
                match media? {
                    Class::Rtcp => Channel::Rtcp,
                    _ => Channel::Rtp,
                }
            }
            // Offered to browsers too but answered by another phone (or
            // not answered yet): its media is the plain leg's.
            _ => channel,
        };
        let t = match channel {
            Channel::Rtp => self.srtp.incoming_rtp(&buf[..n]),
            Channel::Rtcp => self.srtp.incoming_rtcp(&buf[..n]),
        };
        open(t, buf, n).map(|m| (m, channel))
    }

    /// A queued RTP datagram, raw, to throw away (what piled up while
    /// nobody read the leg); `Err` when none is queued.
    pub fn discard_rtp(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.rtp.recv_from(buf).map(|(n, _)| n)
    }
}

fn lock(w: &Mutex<WebRtcTransport>) -> std::sync::MutexGuard<'_, WebRtcTransport> {
    match w.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Where a received packet ends up in `buf`: its length after the leg's
/// transform, `None` when refused.
fn open(t: Transformed, buf: &mut [u8], n: usize) -> Option<usize> {
    match t {
        Transformed::Plain => Some(n),
        Transformed::Secure(p) => {
            let m = p.len().min(buf.len());
            buf[..m].copy_from_slice(&p[..m]);
            Some(m)
        }
        Transformed::Refused => None,
    }
}

impl Drop for PortPair {
    fn drop(&mut self) {
        if let Some(ufrag) = self.web_ufrag.get() {
            crate::media::webrtc::restart::forget(ufrag);
        }
        if let Ok(mut free) = self.pool.free.lock() {
            free.push_back(self.port);
        }
        self.pool.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PortPool {
    /// Pool over the even ports of `min..=max` (the RTCP port must fit too).
    pub fn new(address: IpAddr, min: u16, max: u16) -> Self {
        let first = min + (min % 2);
        let free: VecDeque<u16> = (first..max).step_by(2).collect();
        Self {
            inner: Arc::new(PoolInner {
                address,
                min,
                max,
                free: Mutex::new(free),
                in_use: AtomicUsize::new(0),
            }),
        }
    }

    /// Pairs currently allocated.
    pub fn in_use(&self) -> usize {
        self.inner.in_use.load(Ordering::Relaxed)
    }

    /// Pairs in the range.
    pub fn capacity(&self) -> usize {
        let first = self.inner.min + (self.inner.min % 2);
        usize::from(self.inner.max.saturating_sub(first)).div_ceil(2)
    }

    /// Take and bind a pair. Ports another process holds are skipped (and
    /// go to the back of the queue).
    pub async fn allocate(&self) -> Result<PortPair, PortError> {
        let attempts = self.capacity();
        for _ in 0..attempts {
            let port = {
                let mut free = match self.inner.free.lock() {
                    Ok(f) => f,
                    Err(poisoned) => poisoned.into_inner(),
                };
                free.pop_front()
            };
            let Some(port) = port else { break };
            let rtp = bind(SocketAddr::new(self.inner.address, port));
            let rtcp = bind(SocketAddr::new(self.inner.address, port + 1));
            match (rtp, rtcp) {
                (Ok((rtp, rtp_io)), Ok((rtcp, rtcp_io))) => {
                    self.inner.in_use.fetch_add(1, Ordering::Relaxed);
                    return Ok(PortPair {
                        rtp,
                        rtcp,
                        rtp_io,
                        rtcp_io,
                        port,
                        pool: self.inner.clone(),
                        srtp: SecureLeg::default(),
                        web: OnceLock::new(),
                        web_ufrag: OnceLock::new(),
                        web_armed: AtomicBool::new(false),
                    });
                }
                _ => {
                    if let Ok(mut free) = self.inner.free.lock() {
                        free.push_back(port);
                    }
                }
            }
        }
        Err(PortError::Exhausted {
            address: self.inner.address,
            min: self.inner.min,
            max: self.inner.max,
        })
    }
}

/// A non-blocking UDP socket on `addr`, set up for batched reads.
fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, UdpSocketState)> {
    let socket = UdpSocket::bind(addr)?;
    let state = UdpSocketState::new((&socket).into())?;
    socket.set_nonblocking(true)?;
    Ok((socket, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pairs_are_even_and_returned_on_drop() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41001, 41008);
        assert_eq!(pool.capacity(), 3); // 41002, 41004, 41006 (41008 has no RTCP port)
        let a = pool.allocate().await.unwrap();
        let b = pool.allocate().await.unwrap();
        let c = pool.allocate().await.unwrap();
        assert!(a.port() % 2 == 0 && b.port() % 2 == 0 && c.port() % 2 == 0);
        assert_eq!(pool.in_use(), 3);
        assert!(matches!(
            pool.allocate().await,
            Err(PortError::Exhausted { .. })
        ));
        drop(b);
        assert_eq!(pool.in_use(), 2);
        let d = pool.allocate().await.unwrap();
        assert_eq!(pool.in_use(), 3);
        drop((a, c, d));
        assert_eq!(pool.in_use(), 0);
    }

    /// Every call's agent-side ports are offered to browser phones too; a
    /// SIP phone that answers instead sends plain RTP and RTCP from its
    /// own address, which must pass as on any leg.
    #[tokio::test]
    async fn a_pair_offered_to_browsers_but_answered_by_a_sip_phone_stays_plain() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41202, 41206);
        let pair = pool.allocate().await.unwrap();
        let _ice = pair.webrtc_credentials();
        assert!(!pair.is_webrtc());
        let phone: SocketAddr = "127.0.0.1:41300".parse().unwrap();
        let now = tokio::time::Instant::now().into_std();
        let mut rtp = vec![0x80, 0x08, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        rtp.extend([0xd5; 160]);
        let n = rtp.len();
        assert_eq!(
            pair.open(Channel::Rtp, &mut rtp, n, phone, now),
            Some((n, Channel::Rtp))
        );
        let mut rtcp = vec![0x80, 200, 0, 6, 1, 2, 3, 4];
        rtcp.extend([0; 20]);
        let n = rtcp.len();
        assert_eq!(
            pair.open(Channel::Rtcp, &mut rtcp, n, phone, now),
            Some((n, Channel::Rtcp))
        );
        // Once a browser answered (armed), a stranger's RTP is refused.
        pair.arm_webrtc(now, crate::media::webrtc::Fingerprint([1; 32]))
            .unwrap();
        assert!(pair.is_webrtc());
        let n = rtp.len();
        assert_eq!(pair.open(Channel::Rtp, &mut rtp, n, phone, now), None);
    }

    #[tokio::test]
    async fn busy_ports_are_skipped() {
        let squatter = std::net::UdpSocket::bind("127.0.0.1:41102").unwrap();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41102, 41106);
        let p = pool.allocate().await.unwrap();
        assert_eq!(p.port(), 41104);
        drop(squatter);
    }
}
