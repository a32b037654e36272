//! The RTP port pool: even RTP ports with RTCP on the next odd port
//! (RFC 3550 §11), taken from the configured range, bound at allocation and
//! returned to the pool when the [`PortPair`] drops, so no call leaks ports.
//!
//! A pair's sockets are private: every datagram goes through
//! [`PortPair::send_rtp`] / [`PortPair::recv_rtp`] (and the RTCP pair),
//! which apply the leg's SRTP once it is keyed ([`PortPair::secure`]), so
//! no task lending the sockets can send an SRTP leg plaintext or hand on
//! a packet that failed authentication.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

use super::sdp::SrtpKeys;
use super::srtp::{SecureLeg, SrtpError, Transformed};

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
    port: u16,
    pool: Arc<PoolInner>,
    srtp: SecureLeg,
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

    /// Received SRTP/SRTCP packets refused (failed authentication, replays).
    pub fn srtp_refused(&self) -> u64 {
        self.srtp.refused()
    }

    /// Send an RTP packet to `to` (as SRTP on a keyed leg).
    pub async fn send_rtp(&self, packet: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        match self.srtp.outgoing_rtp(packet) {
            Transformed::Plain => self.rtp.send_to(packet, to).await,
            Transformed::Secure(p) => self.rtp.send_to(&p, to).await,
            Transformed::Refused => Err(std::io::Error::other("SRTP could not protect a packet")),
        }
    }

    /// Send an RTCP packet to `to` (as SRTCP on a keyed leg).
    pub async fn send_rtcp(&self, packet: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        match self.srtp.outgoing_rtcp(packet) {
            Transformed::Plain => self.rtcp.send_to(packet, to).await,
            Transformed::Secure(p) => self.rtcp.send_to(&p, to).await,
            Transformed::Refused => Err(std::io::Error::other("SRTCP could not protect a packet")),
        }
    }

    /// The next RTP packet into `buf` (decrypted on a keyed leg; packets
    /// that fail authentication are counted and skipped). Cancel-safe.
    pub async fn recv_rtp(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.rtp.recv_from(buf).await?;
            if let Some(m) = open(self.srtp.incoming_rtp(&buf[..n]), buf, n) {
                return Ok((m, from));
            }
        }
    }

    /// The next RTCP packet into `buf` (as [`Self::recv_rtp`]).
    pub async fn recv_rtcp(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.rtcp.recv_from(buf).await?;
            if let Some(m) = open(self.srtp.incoming_rtcp(&buf[..n]), buf, n) {
                return Ok((m, from));
            }
        }
    }

    /// A queued RTP datagram, raw, to throw away (what piled up while
    /// nobody read the leg); `Err` when none is queued.
    pub fn discard_rtp(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.rtp.try_recv_from(buf).map(|(n, _)| n)
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
            let rtp = UdpSocket::bind(SocketAddr::new(self.inner.address, port)).await;
            let rtcp = UdpSocket::bind(SocketAddr::new(self.inner.address, port + 1)).await;
            match (rtp, rtcp) {
                (Ok(rtp), Ok(rtcp)) => {
                    self.inner.in_use.fetch_add(1, Ordering::Relaxed);
                    return Ok(PortPair {
                        rtp,
                        rtcp,
                        port,
                        pool: self.inner.clone(),
                        srtp: SecureLeg::default(),
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

    #[tokio::test]
    async fn busy_ports_are_skipped() {
        let squatter = std::net::UdpSocket::bind("127.0.0.1:41102").unwrap();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41102, 41106);
        let p = pool.allocate().await.unwrap();
        assert_eq!(p.port(), 41104);
        drop(squatter);
    }
}
