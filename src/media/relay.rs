//! The anchored RTP/RTCP relay between two legs of a call (RFC 3550
//! packets forwarded unchanged, RFC 4961 symmetric RTP).
//!
//! Each side has its own [`PortPair`]; a packet received on side A's RTP
//! socket is sent from side B's RTP socket to B's peer, and vice versa (same
//! for RTCP). A side's peer address starts as the one its SDP announced and
//! *latches* to the source of the first packet that arrives (callers behind
//! NAT); once latched, packets from any other source are dropped and
//! counted. A re-INVITE that moves a peer calls [`RelayHandle::set_remote`],
//! which re-arms latching for that side.
//!
//! The relay reports [`RelayEvent::Silent`] once when no RTP arrived from
//! either side for the configured time (unless a side is on hold), so the
//! call can be cleared instead of hanging forever.
//!
//! With a [`Recording`], the relay also decodes each side's G.711 audio into
//! the recorder's [`ChannelAligner`] (side A left, side B right, placed by
//! arrival time so both channels keep wall-clock time through loss and
//! hold) and hands 100 ms chunks to the recording's writer thread, never
//! waiting for the disk; [`RelayHandle::stop`] finishes the file.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::codec::{Codec, G711};
use super::player::Continuation;
use super::ports::PortPair;
use super::prompts::{Playout, Prompt};
use super::recorder::{Channel, ChannelAligner, RecordingHandle, RecordingMeta};
use super::rtp::{
    parse_rtcp, write_rtp, OutgoingFrame, OutgoingStream, ReceiveStats, RtpHeader, SourceTiming,
};

/// Packet counters of one relay, readable while it runs.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// RTP packets received on side A and forwarded to B.
    pub a_to_b: AtomicU64,
    /// RTP packets received on side B and forwarded to A.
    pub b_to_a: AtomicU64,
    /// RTCP packets forwarded (both directions).
    pub rtcp: AtomicU64,
    /// Packets dropped: foreign source after latching, or no peer yet.
    pub dropped: AtomicU64,
}

/// What the relay tells the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// No RTP from either side for the silence timeout.
    Silent,
}

/// Which side of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first leg (the carrier's).
    A,
    /// The second leg (the agent's).
    B,
}

enum Control {
    Remote(Side, SocketAddr),
    Hold(bool),
    Stop(tokio::sync::oneshot::Sender<RelayReport>),
    MusicOnHold(Option<(Prompt, G711, u8)>),
}

/// RTP quality of one leg as hotline saw it (RFC 3550 §6.4, A.1, A.8), plus
/// what the peer's own RTCP receiver reports said, for the call record.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LegQuality {
    /// RTP packets received from the leg.
    pub received: u64,
    /// Packets lost on the way in (expected − received, all SSRCs).
    pub lost: i64,
    /// Interarrival jitter at the end of the call, in ms.
    pub jitter_ms: f64,
    /// The peer's last report on what it receives from us: fraction lost
    /// (0–1) and jitter (ms), from its RTCP SR/RR.
    pub peer_fraction_lost: Option<f64>,
    /// See `peer_fraction_lost`.
    pub peer_jitter_ms: Option<f64>,
}

/// What a relay leaves behind when it stops.
#[derive(Debug, Default)]
pub struct RelayReport {
    /// The finished recording, if the call was recorded.
    pub recording: Option<RecordingMeta>,
    /// Side A (caller) quality.
    pub a: LegQuality,
    /// Side B (agent) quality.
    pub b: LegQuality,
}

/// Receive statistics of one side, across SSRC changes.
#[derive(Default)]
struct Quality {
    current: Option<ReceiveStats>,
    /// Every valid RTP packet (RFC 3550's own `received` skips probation).
    received: u64,
    lost_before: i64,
    peer: Option<(f64, f64)>,
}

impl Quality {
    fn on_rtp(&mut self, arrival: Duration, rtp: &RtpHeader<'_>) {
        self.received += 1;
        if self.current.as_ref().is_none_or(|s| s.ssrc() != rtp.ssrc) {
            if let Some(old) = self.current.take() {
                self.lost_before += i64::from(old.cumulative_lost());
            }
            self.current = Some(ReceiveStats::new(rtp.ssrc, 8000));
        }
        if let Some(s) = self.current.as_mut() {
            s.on_packet(arrival, rtp.sequence, rtp.timestamp);
        }
    }

    fn on_rtcp(&mut self, packet: &[u8]) {
        let Ok(reports) = parse_rtcp(packet) else {
            return;
        };
        if let Some(block) = reports.iter().flat_map(|r| r.blocks()).next_back() {
            self.peer = Some((
                f64::from(block.fraction_lost) / 256.0,
                f64::from(block.jitter) / 8.0,
            ));
        }
    }

    fn report(&self) -> LegQuality {
        let (lost, jitter_ms) = match &self.current {
            Some(s) => (
                i64::from(s.cumulative_lost()),
                s.jitter_duration().as_secs_f64() * 1000.0,
            ),
            None => (0, 0.0),
        };
        LegQuality {
            received: self.received,
            lost: self.lost_before + lost,
            jitter_ms,
            peer_fraction_lost: self.peer.map(|p| p.0),
            peer_jitter_ms: self.peer.map(|p| p.1),
        }
    }
}

/// Record the bridged audio.
pub struct Recording {
    /// The open recording.
    pub handle: RecordingHandle,
    /// Payload type of the negotiated G.711 codec (both sides).
    pub payload_type: u8,
}

/// How far behind arrival time the recording is drained, so jittered
/// packets still land in place.
const RECORD_DELAY: Duration = Duration::from_millis(200);

/// Controls a running relay; dropping it stops the relay.
pub struct RelayHandle {
    control: mpsc::UnboundedSender<Control>,
    /// Live counters.
    pub stats: Arc<RelayStats>,
    task: tokio::task::JoinHandle<()>,
}

impl RelayHandle {
    /// The peer of `side` moved (re-INVITE): send there and re-latch.
    pub fn set_remote(&self, side: Side, addr: SocketAddr) {
        self.control.send(Control::Remote(side, addr)).ok();
    }

    /// Suspend (or resume) the silence timeout while a leg is on hold.
    pub fn set_hold(&self, on_hold: bool) {
        self.control.send(Control::Hold(on_hold)).ok();
    }

    /// Play `prompt` (looped) to side A instead of B's audio while B holds
    /// (`law` and payload type as negotiated with A); `None` resumes B.
    pub fn music_on_hold(&self, moh: Option<(Prompt, G711, u8)>) {
        self.control.send(Control::MusicOnHold(moh)).ok();
    }

    /// Stop relaying, finish the recording (if any) and report quality.
    pub async fn stop(self) -> RelayReport {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Stop(tx)).is_err() {
            return RelayReport::default();
        }
        rx.await.unwrap_or_default()
    }
}

/// The recording side of a running relay.
struct Recorder {
    handle: RecordingHandle,
    law: G711,
    payload_type: u8,
    aligner: ChannelAligner,
    pcm: Vec<i16>,
    /// Per channel: `(ssrc, rtp timestamp, call time)` the placement of
    /// packets is anchored to.
    anchors: [Option<(u32, u32, Duration)>; 2],
}

/// A packet whose RTP-timestamp position strays this far from its arrival
/// re-anchors the channel (a new talkspurt after hold, a clock jump).
const REANCHOR: Duration = Duration::from_millis(150);

impl Recorder {
    /// Place a packet by its RTP timestamp (so arrival jitter neither
    /// squeezes nor stretches the audio), anchored to arrival time.
    fn push(&mut self, channel: Channel, arrival: Duration, rtp: &RtpHeader<'_>) {
        if rtp.payload_type != self.payload_type {
            return; // telephone-event, comfort noise …
        }
        let slot = match channel {
            Channel::Caller => 0,
            Channel::Agent => 1,
        };
        let at = match self.anchors[slot] {
            Some((ssrc, ts0, t0)) if ssrc == rtp.ssrc => {
                let delta = rtp.timestamp.wrapping_sub(ts0);
                // Timestamps before the anchor (reordering) count backwards.
                let placed = if delta < u32::MAX / 2 {
                    t0 + Duration::from_micros(u64::from(delta) * 125)
                } else {
                    let back = u64::from(ts0.wrapping_sub(rtp.timestamp)) * 125;
                    t0.saturating_sub(Duration::from_micros(back))
                };
                if placed.abs_diff(arrival) > REANCHOR {
                    self.anchors[slot] = Some((rtp.ssrc, rtp.timestamp, arrival));
                    arrival
                } else {
                    placed
                }
            }
            _ => {
                self.anchors[slot] = Some((rtp.ssrc, rtp.timestamp, arrival));
                arrival
            }
        };
        self.pcm.clear();
        self.law.decode(rtp.payload, &mut self.pcm);
        self.aligner.push(channel, at, &self.pcm);
    }

    fn drain(&mut self, up_to: Duration) {
        let frames = self.aligner.drain_frames(up_to);
        if !frames.is_empty() {
            // A full queue drops the chunk (counted), never the call audio.
            let _ = self.handle.try_send(frames.into_flattened());
        }
    }

    async fn finish(mut self, at: Duration) -> Option<RecordingMeta> {
        self.drain(at);
        let path = self.handle.path().to_path_buf();
        match tokio::task::spawn_blocking(move || self.handle.finish()).await {
            Ok(Ok(meta)) => Some(meta),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "recording could not be finished");
                None
            }
            Err(_) => {
                tracing::warn!(path = %path.display(), "recording writer task failed");
                None
            }
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Peer {
    rtp: Option<SocketAddr>,
    rtcp: Option<SocketAddr>,
    latched: bool,
}

impl Peer {
    fn new(rtp: Option<SocketAddr>) -> Self {
        Self {
            rtp,
            rtcp: rtp.map(rtcp_of),
            latched: false,
        }
    }

    /// Accept `from` as this peer's RTP source? Latches on first packet.
    fn admit_rtp(&mut self, from: SocketAddr) -> bool {
        if self.latched {
            return self.rtp == Some(from);
        }
        self.latched = true;
        if self.rtp != Some(from) {
            self.rtp = Some(from);
            self.rtcp = Some(rtcp_of(from));
        }
        true
    }

    fn admit_rtcp(&mut self, from: SocketAddr) -> bool {
        match self.rtcp {
            Some(expected) if self.latched => expected.ip() == from.ip(),
            _ => {
                self.rtcp = Some(from);
                true
            }
        }
    }
}

fn rtcp_of(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
}

/// Rewrite a packet's fixed header so it continues `c`'s stream (RFC 3550
/// §5.1: same SSRC, continuous sequence and timestamp, marker on the
/// source switch); the payload is untouched.
fn continue_stream(c: &mut Continuation, packet: &mut [u8]) {
    let Ok(rtp) = RtpHeader::parse(packet) else {
        return;
    };
    let samples = match rtp.payload_type {
        0 | 8 => rtp.payload.len() as u32,
        // RFC 4733 events (and other dynamic types): the event duration.
        _ if rtp.payload.len() >= 4 => {
            u32::from(u16::from_be_bytes([rtp.payload[2], rtp.payload[3]]))
        }
        _ => 160,
    };
    let frame = OutgoingFrame {
        source: u64::from(rtp.ssrc),
        timing: SourceTiming::Relayed {
            sequence: rtp.sequence,
            timestamp: rtp.timestamp,
        },
        samples,
        marker: rtp.marker,
        payload_type: rtp.payload_type,
        payload_len: rtp.payload.len(),
    };
    let fields = c.stream.next_packet(c.epoch.elapsed(), &frame);
    packet[1] = (u8::from(fields.marker) << 7) | fields.payload_type;
    packet[2..4].copy_from_slice(&fields.sequence.to_be_bytes());
    packet[4..8].copy_from_slice(&fields.timestamp.to_be_bytes());
    packet[8..12].copy_from_slice(&fields.ssrc.to_be_bytes());
}

/// Largest datagram the relay forwards; bigger ones are truncated by the
/// kernel into this buffer and dropped (no RTP packet of ours is larger).
const MAX_PACKET: usize = 1500;

/// What a relay does besides forwarding.
#[derive(Default)]
pub struct RelayOptions {
    /// Report silence after this long without RTP (zero: never).
    pub silence: Duration,
    /// Record the bridged audio.
    pub recording: Option<Recording>,
    /// Continue side A's outgoing stream (it heard prompts before).
    pub a_continuation: Option<Continuation>,
}

/// Start relaying between `a` (peer `a_remote`) and `b` (peer `b_remote`).
pub fn start(
    a: PortPair,
    a_remote: Option<SocketAddr>,
    b: PortPair,
    b_remote: Option<SocketAddr>,
    options: RelayOptions,
    events: mpsc::UnboundedSender<RelayEvent>,
) -> RelayHandle {
    let RelayOptions {
        silence,
        recording,
        a_continuation,
    } = options;
    let stats = Arc::new(RelayStats::default());
    let (control, mut control_rx) = mpsc::unbounded_channel();
    let s = stats.clone();
    let task = tokio::spawn(async move {
        let mut pa = Peer::new(a_remote);
        let mut pb = Peer::new(b_remote);
        let mut buf_a = [0u8; MAX_PACKET];
        let mut buf_b = [0u8; MAX_PACKET];
        let mut buf_c = [0u8; MAX_PACKET];
        let mut buf_d = [0u8; MAX_PACKET];
        let mut last_rtp = Instant::now();
        let mut on_hold = false;
        let mut reported = false;
        let check_every = if silence.is_zero() {
            Duration::from_secs(3600)
        } else {
            (silence / 4).max(Duration::from_millis(100))
        };
        let mut ticker = tokio::time::interval(check_every);
        let started = Instant::now();
        let mut recorder = recording.map(|r| Recorder {
            handle: r.handle,
            law: G711::from_payload_type(r.payload_type).unwrap_or(G711::Alaw),
            payload_type: r.payload_type,
            aligner: ChannelAligner::new(8000),
            pcm: Vec::with_capacity(160),
            anchors: [None, None],
        });
        let mut drain_tick = tokio::time::interval(Duration::from_millis(100));
        let (mut qa, mut qb) = (Quality::default(), Quality::default());
        // Side A heard prompts before the bridge: keep its stream continuous.
        let mut a_cont = a_continuation;
        let mut moh: Option<(Playout, G711, u8)> = None;
        let mut moh_tick = tokio::time::interval(Duration::from_millis(20));
        moh_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut moh_payload = Vec::with_capacity(160);
        let mut moh_packet = [0u8; 12 + 160];
        loop {
            tokio::select! {
                r = a.rtp.recv_from(&mut buf_a) => {
                    let Ok((n, from)) = r else { continue };
                    if n >= MAX_PACKET || !pa.admit_rtp(from) {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    last_rtp = Instant::now();
                    let at = started.elapsed();
                    // Parsed once for statistics and the recording.
                    if let Ok(rtp) = RtpHeader::parse(&buf_a[..n]) {
                        qa.on_rtp(at, &rtp);
                        if let Some(r) = recorder.as_mut() {
                            r.push(Channel::Caller, at, &rtp);
                        }
                    }
                    if let Some(to) = pb.rtp {
                        if b.rtp.send_to(&buf_a[..n], to).await.is_ok() {
                            s.a_to_b.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                r = b.rtp.recv_from(&mut buf_b) => {
                    let Ok((n, from)) = r else { continue };
                    if n >= MAX_PACKET || !pb.admit_rtp(from) {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    last_rtp = Instant::now();
                    let at = started.elapsed();
                    // Parsed once for statistics and the recording.
                    if let Ok(rtp) = RtpHeader::parse(&buf_b[..n]) {
                        qb.on_rtp(at, &rtp);
                        if let Some(r) = recorder.as_mut() {
                            r.push(Channel::Agent, at, &rtp);
                        }
                    }
                    if moh.is_some() {
                        continue; // B is on hold: A hears the music
                    }
                    if let Some(c) = a_cont.as_mut() {
                        continue_stream(c, &mut buf_b[..n]);
                    }
                    if let Some(to) = pa.rtp {
                        if a.rtp.send_to(&buf_b[..n], to).await.is_ok() {
                            s.b_to_a.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                r = a.rtcp.recv_from(&mut buf_c) => {
                    let Ok((n, from)) = r else { continue };
                    if n >= MAX_PACKET || !pa.admit_rtcp(from) {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    qa.on_rtcp(&buf_c[..n]);
                    if let Some(to) = pb.rtcp {
                        if b.rtcp.send_to(&buf_c[..n], to).await.is_ok() {
                            s.rtcp.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                r = b.rtcp.recv_from(&mut buf_d) => {
                    let Ok((n, from)) = r else { continue };
                    if n >= MAX_PACKET || !pb.admit_rtcp(from) {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    qb.on_rtcp(&buf_d[..n]);
                    if let Some(to) = pa.rtcp {
                        if a.rtcp.send_to(&buf_d[..n], to).await.is_ok() {
                            s.rtcp.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                c = control_rx.recv() => match c {
                    Some(Control::Remote(Side::A, addr)) => pa = Peer::new(Some(addr)),
                    Some(Control::Remote(Side::B, addr)) => pb = Peer::new(Some(addr)),
                    Some(Control::Hold(h)) => {
                        on_hold = h;
                        last_rtp = Instant::now();
                    }
                    Some(Control::MusicOnHold(Some((prompt, law, pt)))) => {
                        let mut p = Playout::new();
                        p.play(prompt);
                        p.set_loop(true);
                        moh = Some((p, law, pt));
                        on_hold = true;
                        // The ticker idled while nothing played: no burst of
                        // missed ticks, start pacing now.
                        moh_tick.reset();
                        a_cont.get_or_insert_with(|| Continuation {
                            stream: OutgoingStream::new(rand::random(), rand::random(), rand::random(), 8000),
                            epoch: Instant::now(),
                        });
                    }
                    Some(Control::MusicOnHold(None)) => {
                        moh = None;
                        on_hold = false;
                        last_rtp = Instant::now();
                    }
                    Some(Control::Stop(reply)) => {
                        let recording = match recorder.take() {
                            Some(r) => r.finish(started.elapsed()).await,
                            None => None,
                        };
                        reply.send(RelayReport { recording, a: qa.report(), b: qb.report() }).ok();
                        break;
                    }
                    None => break,
                },
                _ = moh_tick.tick(), if moh.is_some() => {
                    let (Some((playout, law, pt)), Some(c), Some(to)) = (moh.as_mut(), a_cont.as_mut(), pa.rtp) else { continue };
                    let frame = playout.next_frame().unwrap_or([0; 160]);
                    moh_payload.clear();
                    law.encode(&frame, &mut moh_payload);
                    let fields = c.stream.next_packet(c.epoch.elapsed(), &OutgoingFrame {
                        source: 0,
                        timing: SourceTiming::Local,
                        samples: 160,
                        marker: false,
                        payload_type: *pt,
                        payload_len: moh_payload.len(),
                    });
                    if let Ok(n) = write_rtp(&mut moh_packet, &fields, &moh_payload) {
                        if a.rtp.send_to(&moh_packet[..n], to).await.is_ok() {
                            s.b_to_a.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                _ = drain_tick.tick(), if recorder.is_some() => {
                    let up_to = started.elapsed().saturating_sub(RECORD_DELAY);
                    if let Some(r) = recorder.as_mut() {
                        r.drain(up_to);
                    }
                }
                _ = ticker.tick() => {
                    if !silence.is_zero() && !on_hold && !reported && last_rtp.elapsed() >= silence {
                        reported = true;
                        events.send(RelayEvent::Silent).ok();
                    }
                }
            }
        }
    });
    RelayHandle {
        control,
        stats,
        task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ports::PortPool;
    use tokio::net::UdpSocket;

    async fn setup(
        pool: &PortPool,
        silence: Duration,
    ) -> (
        RelayHandle,
        UdpSocket,
        UdpSocket,
        SocketAddr,
        SocketAddr,
        mpsc::UnboundedReceiver<RelayEvent>,
    ) {
        let a = pool.allocate().await.unwrap();
        let b = pool.allocate().await.unwrap();
        let (a_addr, b_addr) = (
            SocketAddr::new(a.address(), a.port()),
            SocketAddr::new(b.address(), b.port()),
        );
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let relay = start(
            a,
            Some(caller.local_addr().unwrap()),
            b,
            Some(agent.local_addr().unwrap()),
            RelayOptions {
                silence,
                ..Default::default()
            },
            tx,
        );
        (relay, caller, agent, a_addr, b_addr, rx)
    }

    #[tokio::test]
    async fn forwards_both_ways_and_drops_strangers_after_latching() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42000, 42100);
        let (relay, caller, agent, a_addr, b_addr, _rx) = setup(&pool, Duration::ZERO).await;
        let mut buf = [0u8; 64];
        for i in 0..5u8 {
            caller.send_to(&[0x80, 8, 0, i], a_addr).await.unwrap();
            let (n, from) = agent.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[0x80, 8, 0, i]);
            assert_eq!(from, b_addr);
            agent.send_to(&[0x80, 8, 1, i], b_addr).await.unwrap();
            let (n, from) = caller.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[0x80, 8, 1, i]);
            assert_eq!(from, a_addr);
        }
        let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        stranger.send_to(&[0x80, 8, 9, 9], a_addr).await.unwrap();
        // The stranger's packet must not reach the agent: the next packet the
        // agent sees is the caller's.
        caller.send_to(&[0x80, 8, 0, 42], a_addr).await.unwrap();
        let (n, _) = agent.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &[0x80, 8, 0, 42]);
        assert_eq!(relay.stats.a_to_b.load(Ordering::Relaxed), 6);
        assert_eq!(relay.stats.b_to_a.load(Ordering::Relaxed), 5);
        assert_eq!(relay.stats.dropped.load(Ordering::Relaxed), 1);
        drop(relay);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            pool.in_use(),
            0,
            "ports return to the pool when the relay stops"
        );
    }

    #[tokio::test]
    async fn reports_silence_once() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42200, 42300);
        let (_relay, _caller, _agent, _a, _b, mut rx) =
            setup(&pool, Duration::from_millis(200)).await;
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert_eq!(ev, Some(RelayEvent::Silent));
        let again = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
        assert!(again.is_err(), "silence is reported once");
    }

    #[tokio::test]
    async fn reports_per_leg_loss_and_received_counts() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42400, 42500);
        let (relay, caller, agent, a_addr, _b_addr, _rx) = setup(&pool, Duration::ZERO).await;
        let mut buf = [0u8; 256];
        for seq in (1u16..=10).filter(|s| *s != 5) {
            let mut p = vec![0x80u8, 8];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            p.extend_from_slice(&[0xd5; 160]);
            caller.send_to(&p, a_addr).await.unwrap();
            agent.recv_from(&mut buf).await.unwrap();
        }
        let report = relay.stop().await;
        assert_eq!(report.a.received, 9, "{report:?}");
        assert_eq!(report.a.lost, 1, "{report:?}");
        assert_eq!(report.b.received, 0);
        assert!(report.recording.is_none());
    }
}
