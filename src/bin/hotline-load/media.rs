//! One call leg's media: its UDP socket, its send stream registered with
//! the ticker and its receive task; stopping it merges what it received
//! into the direction's totals.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hotline::media::sdp::Negotiated;
use hotline::media::srtp::LegCrypto;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::receive::receive;
use super::send::{Cmd, SendStream};
use super::shared::{Clock, RecvStats, SendTimes, Shared, Side};

/// A leg's media: socket, receive task, send stream registration.
pub(crate) struct LegMedia {
    pub(crate) id: u64,
    pub(crate) stop: oneshot::Sender<()>,
    pub(crate) task: tokio::task::JoinHandle<RecvStats>,
    pub(crate) receiver_side: Side,
}

pub(crate) struct Media {
    pub(crate) shared: Arc<Shared>,
    pub(crate) clock: Clock,
    pub(crate) cmds: mpsc::UnboundedSender<Cmd>,
    pub(crate) late_ns: i64,
    pub(crate) rcvbuf: usize,
    /// Every leg SRTP only (SDES keys in the SDP).
    pub(crate) srtp: bool,
}

impl Media {
    pub(crate) fn bind(&self, ip: Ipv4Addr) -> std::io::Result<Arc<UdpSocket>> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        if self.rcvbuf > 0 {
            s.set_recv_buffer_size(self.rcvbuf)?;
        }
        s.set_nonblocking(true)?;
        s.bind(&SocketAddr::new(IpAddr::V4(ip), 0).into())?;
        Ok(Arc::new(UdpSocket::from_std(s.into())?))
    }

    /// Start sending to what `neg` settled on from `socket` (as `side`;
    /// encrypted when it settled on SRTP) and receiving on it (headers
    /// only: sequence and timing, which SRTP leaves in clear).
    pub(crate) fn start(&self, socket: Arc<UdpSocket>, neg: &Negotiated, side: Side) -> LegMedia {
        let (remote, pt) = (neg.remote, neg.payload_type);
        let crypto = neg
            .srtp
            .as_ref()
            .and_then(|k| LegCrypto::new(k).ok())
            .map(Box::new);
        let ssrc = self.shared.next_ssrc.fetch_add(1, Ordering::Relaxed) as u32;
        let times = Arc::new(SendTimes::new());
        self.shared.send_times.insert(ssrc, times.clone());
        let id = u64::from(ssrc);
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(receive(
            socket.clone(),
            stop_rx,
            self.shared.clone(),
            self.clock,
            self.late_ns,
        ));
        self.cmds
            .send(Cmd::Add(Box::new(SendStream {
                id,
                socket,
                remote,
                side,
                ssrc,
                seq: rand::random(),
                ts: rand::random(),
                pt,
                frame: 0,
                sent: 0,
                errors: 0,
                times,
                crypto,
            })))
            .ok();
        LegMedia {
            id,
            stop,
            task,
            receiver_side: match side {
                Side::Caller => Side::Agent,
                Side::Agent => Side::Caller,
            },
        }
    }

    /// Stop sending now; stop receiving after `tail` (packets in flight).
    pub(crate) async fn stop(&self, leg: LegMedia, tail: Duration) {
        self.cmds.send(Cmd::Remove(leg.id)).ok();
        tokio::time::sleep(tail).await;
        leg.stop.send(()).ok();
        if let Ok(st) = leg.task.await {
            // What this leg received was sent by the other side.
            let sent_by = match leg.receiver_side {
                Side::Caller => Side::Agent,
                Side::Agent => Side::Caller,
            };
            self.shared.dir(sent_by).recv.lock().unwrap().merge(&st);
        }
    }
}
