//! The anchored media of a connected call (RFC 3550, RFC 4961 symmetric
//! RTP; media engine issue §1, §2, §5, §6, §7).
//!
//! Each leg has its own [`PortPair`] and its own negotiated [`LegFormat`].
//! Two modes:
//!
//! * **Forwarding** (two parties, the common case, cheapest): a packet
//!   received from leg A is sent from leg B's socket to B's peer and vice
//!   versa. Its payload is transcoded in place when the legs negotiated
//!   different G.711 laws (PCMA ↔ PCMU through a 256-entry table), its
//!   payload type mapped to the other leg's numbers (audio and RFC 4733
//!   telephone-event), and its header rewritten onto hotline's own outgoing
//!   stream for that leg: one SSRC per leg for the whole call, continuous
//!   sequence numbers and timestamps, marker bit where the source changes
//!   (prompts → agent → music on hold → agent), so phones never drop audio
//!   on a switch.
//! * **Mixing** (a supervisor or a third party joined): every leg's audio is
//!   decoded into the [`Conference`], mixed every 20 ms with the mixer's
//!   hearing rules (listen, whisper, barge, three-way) and encoded per leg
//!   onto the same continuous streams. When the last extra party leaves
//!   the call returns to forwarding.
//!
//! A leg's peer address starts as its SDP announced and *latches* to the
//! source of the first packet that arrives (callers behind NAT); once
//! latched, packets from any other source are dropped and counted. A
//! re-INVITE that moves a peer calls [`RelayHandle::set_remote`], which
//! re-arms latching for that leg.
//!
//! RTCP is terminated per leg, as an end system would (hotline rewrites
//! the streams, so the peers' reports would not describe what the other
//! side receives): every ~5 s (randomised 0.5–1.5×, RFC 3550 §6.2) each
//! leg gets an SR for the stream we send it (RR when we sent nothing) with
//! a report block on what we receive from it, plus SDES CNAME. Its own
//! SR/RR are parsed for the call record: fraction lost and jitter of what
//! it receives from us, and the round-trip time (§6.4.1 LSR/DLSR).
//!
//! The relay reports [`RelayEvent::Silent`] once when no RTP arrived from
//! either main leg for the configured time (unless a leg is on hold), and
//! RFC 4733 keys pressed by extra parties (a supervisor switching modes).
//!
//! With a recording, the relay decodes the audio into the recorder's
//! [`ChannelAligner`] (caller left; the other side right — in mixing mode
//! what the caller heard, never a whisper) placed by media time so both
//! channels keep wall-clock time through loss and hold, and hands 100 ms
//! chunks to the recording's writer thread, never waiting for the disk;
//! [`RelayHandle::stop`] finishes the file.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::codec::{transcode_in_place, Codec, G711};
use super::conference::{Conference, Output};
use super::dtmf::Rfc4733Receiver;
use super::keys::Holder;
use super::mixer::{Frame, MixerError, Mode, ParticipantId, Role};
use super::player::Continuation;
use super::ports::PortPair;
use super::prompts::{Playout, Prompt};
use super::recorder::{Channel, ChannelAligner, RecordingHandle, RecordingMeta};
use super::rtp::{
    ntp_from_unix, parse_rtcp, write_rr, write_rtp, write_sdes_cname, write_sr, OutgoingFrame,
    ReceiveStats, RtcpReport, RtpFields, RtpHeader, SourceTiming,
};
use super::sdp::{AudioCodec, Negotiated};

/// Packet counters of one relay, readable while it runs.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// RTP packets received on side A and sent to B (forwarded or mixed).
    pub a_to_b: AtomicU64,
    /// RTP packets sent to A (B's audio, mixed audio, music on hold).
    pub b_to_a: AtomicU64,
    /// RTCP packets received from and sent to the legs.
    pub rtcp: AtomicU64,
    /// Packets dropped: foreign source after latching, no peer yet, not
    /// RTP, or a payload type the other leg did not negotiate.
    pub dropped: AtomicU64,
}

/// What the relay tells the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// No RTP from either side for the silence timeout.
    Silent,
    /// An extra party pressed a key (RFC 4733).
    Key {
        /// Who pressed it.
        participant: ParticipantId,
        /// The key.
        key: char,
    },
}

/// Which main leg of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first leg (the carrier's).
    A,
    /// The second leg (the agent's).
    B,
}

/// The participant id of side A in the mix (the caller).
pub const CALLER: ParticipantId = ParticipantId(0);
/// The participant id of side B in the mix (agent or external party).
pub const OTHER_SIDE: ParticipantId = ParticipantId(1);

/// How one leg carries audio: what its SDP negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegFormat {
    /// G.711 law.
    pub law: G711,
    /// Its payload type on this leg.
    pub payload_type: u8,
    /// RFC 4733 telephone-event payload type on this leg.
    pub telephone_event: Option<u8>,
}

impl Default for LegFormat {
    fn default() -> Self {
        Self {
            law: G711::Alaw,
            payload_type: 8,
            telephone_event: None,
        }
    }
}

impl LegFormat {
    /// The format a leg's offer/answer settled on.
    pub fn from_negotiated(n: &Negotiated) -> Self {
        Self {
            law: match n.codec {
                AudioCodec::Pcma => G711::Alaw,
                AudioCodec::Pcmu => G711::Ulaw,
            },
            payload_type: n.payload_type,
            telephone_event: n.telephone_event,
        }
    }
}

/// An extra party joining the call's mix (supervisor, third party).
pub struct Participant {
    /// Its id in the mix (not [`CALLER`] or [`OTHER_SIDE`]).
    pub id: ParticipantId,
    /// What it is to the call.
    pub role: Role,
    /// Its RTP ports.
    pub pair: PortPair,
    /// Its RTP address (from its SDP).
    pub remote: SocketAddr,
    /// Its negotiated format.
    pub format: LegFormat,
}

enum Control {
    Remote(Side, SocketAddr),
    Hold(bool),
    Stop(tokio::sync::oneshot::Sender<RelayReport>, bool),
    MusicOnHold(Option<Prompt>),
    Join(
        Participant,
        tokio::sync::oneshot::Sender<Result<(), MixerError>>,
    ),
    Leave(ParticipantId),
    MuteCaller(bool),
    Mode(
        ParticipantId,
        Mode,
        tokio::sync::oneshot::Sender<Result<(), MixerError>>,
    ),
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
    /// Round-trip time to the peer from its last report on our SR (ms).
    pub rtt_ms: Option<f64>,
    /// RTCP reports hotline sent to the leg.
    pub rtcp_sent: u64,
    /// RTCP reports received from the leg.
    pub rtcp_received: u64,
}

/// A leg's ports and outgoing stream, handed back when the relay stops so
/// the call can go on with that leg (an IVR survey after the agent hung up).
pub struct LegMedia {
    /// The leg's RTP/RTCP ports.
    pub pair: PortPair,
    /// Our RTP stream toward the leg, to be continued.
    pub stream: Continuation,
}

impl std::fmt::Debug for LegMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegMedia")
            .field("port", &self.pair.port())
            .finish()
    }
}

/// What a relay leaves behind when it stops.
#[derive(Debug, Default)]
pub struct RelayReport {
    /// Side A's media, when asked to keep it ([`RelayHandle::stop_keeping_caller`]).
    pub caller_media: Option<LegMedia>,
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
    rtt: Option<Duration>,
    rtcp_sent: u64,
    rtcp_received: u64,
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

    /// The peer's SR/RR: remember its SR for our LSR/DLSR, and what it
    /// says about our stream `ours`.
    fn on_rtcp(&mut self, arrival: Duration, packet: &[u8], ours: u32) {
        let Ok(reports) = parse_rtcp(packet) else {
            return;
        };
        self.rtcp_received += 1;
        for report in &reports {
            if let (RtcpReport::Sender { ssrc, info, .. }, Some(s)) =
                (report, self.current.as_mut())
            {
                if *ssrc == s.ssrc() {
                    s.on_sender_report(arrival, info.ntp_timestamp);
                }
            }
            for block in report.blocks().iter().filter(|b| b.ssrc == ours) {
                self.peer = Some((
                    f64::from(block.fraction_lost) / 256.0,
                    f64::from(block.jitter) / 8.0,
                ));
                if let Some(rtt) = block.round_trip(ntp_now()) {
                    self.rtt = Some(rtt);
                }
            }
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
            rtt_ms: self.rtt.map(|d| d.as_secs_f64() * 1000.0),
            rtcp_sent: self.rtcp_sent,
            rtcp_received: self.rtcp_received,
        }
    }
}

fn ntp_now() -> u64 {
    ntp_from_unix(crate::util::unix_now_precise())
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

    /// Play `prompt` (looped) to side A instead of B's audio while B holds;
    /// `None` resumes B.
    pub fn music_on_hold(&self, moh: Option<Prompt>) {
        self.control.send(Control::MusicOnHold(moh)).ok();
    }

    /// Keep side A's (the caller's) audio out of the mix while `muted`: the
    /// agent consults a third party and the caller, on hold, must not be
    /// heard by them (attended transfer). Only the mix is affected.
    pub fn mute_caller(&self, muted: bool) {
        self.control.send(Control::MuteCaller(muted)).ok();
    }

    /// Add an extra party to the call's mix (the call switches to mixing).
    ///
    /// # Errors
    /// The id is taken, or the relay has stopped.
    pub async fn join(&self, participant: Participant) -> Result<(), MixerError> {
        let id = participant.id;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Join(participant, tx)).is_err() {
            return Err(MixerError::NotJoined(id));
        }
        rx.await.unwrap_or(Err(MixerError::NotJoined(id)))
    }

    /// Remove an extra party (its ports are released).
    pub fn leave(&self, id: ParticipantId) {
        self.control.send(Control::Leave(id)).ok();
    }

    /// Change a supervisor's mode.
    ///
    /// # Errors
    /// See [`super::mixer::Mixer::set_mode`].
    pub async fn set_mode(&self, id: ParticipantId, mode: Mode) -> Result<(), MixerError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Mode(id, mode, tx)).is_err() {
            return Err(MixerError::NotJoined(id));
        }
        rx.await.unwrap_or(Err(MixerError::NotJoined(id)))
    }

    /// Stop relaying, finish the recording (if any) and report quality.
    pub async fn stop(self) -> RelayReport {
        self.stop_with(false).await
    }

    /// [`Self::stop`], handing side A's ports and stream back in the report.
    pub async fn stop_keeping_caller(self) -> RelayReport {
        self.stop_with(true).await
    }

    async fn stop_with(self, keep_caller: bool) -> RelayReport {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Stop(tx, keep_caller)).is_err() {
            return RelayReport::default();
        }
        rx.await.unwrap_or_default()
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The recording side of a running relay.
struct Recorder {
    handle: RecordingHandle,
    /// The caller's and the other side's formats.
    formats: [LegFormat; 2],
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
        let slot = match channel {
            Channel::Caller => 0,
            Channel::Agent => 1,
        };
        let format = self.formats[slot];
        if rtp.payload_type != format.payload_type {
            return; // telephone-event, comfort noise …
        }
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
        format.law.decode(rtp.payload, &mut self.pcm);
        self.aligner.push(channel, at, &self.pcm);
    }

    /// A mixed tick: the caller's voice and what the caller heard.
    fn push_mixed(&mut self, at: Duration, (left, right): (Frame, Frame)) {
        self.aligner.push(Channel::Caller, at, &left);
        self.aligner.push(Channel::Agent, at, &right);
        // Packets after the mix re-anchor to arrival time.
        self.anchors = [None, None];
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

/// The facts of one received RTP packet, copied out of the buffer so it
/// can be rewritten in place: parsed once per packet.
struct Inbound {
    fields: RtpFields,
    /// Payload position in the datagram.
    payload: std::ops::Range<usize>,
    /// Timestamp units the packet covers (G.711: its bytes; RFC 4733: the
    /// event duration).
    samples: u32,
}

impl Inbound {
    fn parse(packet: &[u8]) -> Option<(Self, RtpHeader<'_>)> {
        let rtp = RtpHeader::parse(packet).ok()?;
        let start = rtp.payload.as_ptr() as usize - packet.as_ptr() as usize;
        let samples = match rtp.payload_type {
            0 | 8 => rtp.payload.len() as u32,
            _ if rtp.payload.len() >= 4 => {
                u32::from(u16::from_be_bytes([rtp.payload[2], rtp.payload[3]]))
            }
            _ => 160,
        };
        let inbound = Inbound {
            fields: rtp.fields(),
            payload: start..start + rtp.payload.len(),
            samples,
        };
        Some((inbound, rtp))
    }
}

/// Make a packet received from a leg in format `from` fit a leg in format
/// `to` and continue `out`'s stream (RFC 3550 §5.1: same SSRC, continuous
/// sequence and timestamp, marker on the source switch): map the payload
/// type, transcode G.711 in place, rewrite the fixed header. `false` when
/// it carries something `to` did not negotiate.
fn forward(
    packet: &mut [u8],
    p: &Inbound,
    from: &LegFormat,
    to: &LegFormat,
    out: &mut Continuation,
) -> bool {
    let pt = p.fields.payload_type;
    let mapped = if pt == from.payload_type {
        if from.law != to.law {
            transcode_in_place(from.law, to.law, &mut packet[p.payload.clone()]);
        }
        Some(to.payload_type)
    } else if Some(pt) == from.telephone_event {
        to.telephone_event
    } else if pt == 13 {
        Some(13) // comfort noise (RFC 3389), static on every leg
    } else {
        None
    };
    let Some(mapped) = mapped else {
        return false;
    };
    let frame = OutgoingFrame {
        source: u64::from(p.fields.ssrc),
        timing: SourceTiming::Relayed {
            sequence: p.fields.sequence,
            timestamp: p.fields.timestamp,
        },
        samples: p.samples,
        marker: p.fields.marker,
        payload_type: mapped,
        payload_len: p.payload.len(),
    };
    let fields = out.stream.next_packet(out.epoch.elapsed(), &frame);
    packet[1] = (u8::from(fields.marker) << 7) | fields.payload_type;
    packet[2..4].copy_from_slice(&fields.sequence.to_be_bytes());
    packet[4..8].copy_from_slice(&fields.timestamp.to_be_bytes());
    packet[8..12].copy_from_slice(&fields.ssrc.to_be_bytes());
    true
}

/// Write one locally made 20 ms frame (`payload`) onto stream `c`.
fn local_packet(c: &mut Continuation, pt: u8, payload: &[u8], out: &mut [u8]) -> Option<usize> {
    let fields = c.stream.next_packet(
        c.epoch.elapsed(),
        &OutgoingFrame {
            source: 0,
            timing: SourceTiming::Local,
            samples: payload.len() as u32,
            marker: false,
            payload_type: pt,
            payload_len: payload.len(),
        },
    );
    write_rtp(out, &fields, payload).ok()
}

/// Largest datagram the relay forwards; bigger ones are truncated by the
/// kernel into this buffer and dropped (no RTP packet of ours is larger).
const MAX_PACKET: usize = 1500;

/// Mean RTCP report interval (RFC 3550 §6.2 minimum for a two-party
/// session).
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// What a relay does besides forwarding.
#[derive(Default)]
pub struct RelayOptions {
    /// Report silence after this long without RTP (zero: never).
    pub silence: Duration,
    /// Record the call (stereo WAV: A left, B right).
    pub recording: Option<RecordingHandle>,
    /// Continue side A's outgoing stream (it heard prompts before).
    pub a_continuation: Option<Continuation>,
    /// Side A's negotiated format.
    pub a_format: LegFormat,
    /// Side B's negotiated format.
    pub b_format: LegFormat,
    /// What side B is in the mix (agent by default; an external number).
    pub b_role: Option<Role>,
    /// CNAME in our RTCP (RFC 3550 §6.5.1).
    pub cname: String,
    /// Mean RTCP report interval (zero: [`RTCP_INTERVAL`]).
    pub rtcp_interval: Duration,
}

/// What one RTP datagram from a main leg meets inside the relay task.
struct Hop<'a> {
    /// The leg it came from, and the other one.
    from: &'a mut Leg,
    to: &'a mut Leg,
    /// Its recording channel and mix id.
    channel: Channel,
    id: ParticipantId,
    /// Not forwarded (the other leg hears music on hold).
    muted: bool,
    /// Kept out of the mix (the caller on hold during a consultation).
    mix_muted: bool,
    /// Counts what it forwards.
    sent: &'a AtomicU64,
}

impl Hop<'_> {
    /// Account, record or mix, and forward one datagram; `true` when it was
    /// RTP from the latched peer (the call is alive).
    async fn relay(
        self,
        packet: &mut [u8],
        source: SocketAddr,
        at: Duration,
        mix: &mut Option<Conference>,
        recorder: &mut Option<Recorder>,
        s: &RelayStats,
    ) -> bool {
        if packet.len() >= MAX_PACKET || !self.from.peer.admit_rtp(source) {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let Some((inbound, rtp)) = Inbound::parse(packet) else {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        self.from.quality.on_rtp(at, &rtp);
        if let Some(c) = mix.as_mut() {
            if !self.mix_muted && rtp.payload_type == self.from.format.payload_type {
                c.push_payload(self.id, rtp.payload);
            }
            return true;
        }
        if let Some(r) = recorder.as_mut() {
            r.push(self.channel, at, &rtp);
        }
        if Some(rtp.payload_type) == self.from.format.telephone_event {
            // A key a player (IVR, queue) already took stays there: its
            // retransmitted end packets never reach the other party.
            let now = self.from.out.epoch.elapsed();
            if !self
                .from
                .out
                .keys
                .pass_event(now, rtp.timestamp, rtp.marker, rtp.payload)
            {
                s.dropped.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        if self.muted {
            return true;
        }
        let (Some(to), true) = (
            self.to.peer.rtp,
            forward(
                packet,
                &inbound,
                &self.from.format,
                &self.to.format,
                &mut self.to.out,
            ),
        ) else {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        if self.to.pair.rtp.send_to(packet, to).await.is_ok() {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        true
    }
}

/// One main leg inside the relay task.
struct Leg {
    pair: PortPair,
    peer: Peer,
    quality: Quality,
    format: LegFormat,
    /// Our outgoing stream toward this leg.
    out: Continuation,
}

impl Leg {
    /// The peer's RTCP: parsed for the call record, never forwarded.
    fn receive_rtcp(&mut self, packet: &[u8], source: SocketAddr, at: Duration, s: &RelayStats) {
        if packet.len() >= MAX_PACKET || !self.peer.admit_rtcp(source) {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        s.rtcp.fetch_add(1, Ordering::Relaxed);
        let ours = self.out.stream.ssrc();
        self.quality.on_rtcp(at, packet, ours);
    }

    /// Send our RTCP report to the leg: SR (or RR before we sent
    /// anything) + SDES CNAME.
    async fn send_rtcp(&mut self, now: Duration, cname: &str, buf: &mut [u8]) -> bool {
        let Some(to) = self.peer.rtcp else {
            return false;
        };
        let blocks: Vec<_> = self
            .quality
            .current
            .as_mut()
            .map(|s| s.report_block(now))
            .into_iter()
            .collect();
        let ssrc = self.out.stream.ssrc();
        let first = if self.out.stream.packet_count() > 0 {
            let info = self
                .out
                .stream
                .sender_info(self.out.epoch.elapsed(), ntp_now());
            write_sr(buf, ssrc, &info, &blocks)
        } else {
            write_rr(buf, ssrc, &blocks)
        };
        let Ok(n) = first else { return false };
        let Ok(m) = write_sdes_cname(&mut buf[n..], ssrc, cname) else {
            return false;
        };
        let sent = self.pair.rtcp.send_to(&buf[..n + m], to).await.is_ok();
        if sent {
            self.quality.rtcp_sent += 1;
        }
        sent
    }
}

/// An extra party inside the relay task.
struct Extra {
    id: ParticipantId,
    pair: Arc<PortPair>,
    peer: Peer,
    format: LegFormat,
    out: Continuation,
    keys: Rfc4733Receiver,
    receiver: tokio::task::JoinHandle<()>,
}

impl Drop for Extra {
    fn drop(&mut self) {
        self.receiver.abort();
    }
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
    let stats = Arc::new(RelayStats::default());
    let (control, control_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(
        a,
        a_remote,
        b,
        b_remote,
        options,
        events,
        control_rx,
        stats.clone(),
    ));
    RelayHandle {
        control,
        stats,
        task,
    }
}

/// Next RTCP report time: the mean interval randomised over 0.5–1.5×.
fn next_rtcp(mean: Duration) -> Instant {
    let factor = 0.5 + rand::random::<f64>();
    Instant::now() + mean.mul_f64(factor)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    a: PortPair,
    a_remote: Option<SocketAddr>,
    b: PortPair,
    b_remote: Option<SocketAddr>,
    options: RelayOptions,
    events: mpsc::UnboundedSender<RelayEvent>,
    mut control_rx: mpsc::UnboundedReceiver<Control>,
    s: Arc<RelayStats>,
) {
    let RelayOptions {
        silence,
        recording,
        a_continuation,
        a_format,
        b_format,
        b_role,
        cname,
        rtcp_interval,
    } = options;
    let rtcp_interval = if rtcp_interval.is_zero() {
        RTCP_INTERVAL
    } else {
        rtcp_interval
    };
    let b_role = b_role.unwrap_or(Role::Agent);
    let mut la = Leg {
        pair: a,
        peer: Peer::new(a_remote),
        quality: Quality::default(),
        format: a_format,
        // Side A heard prompts before the bridge: keep its stream continuous
        // and its keys (a press a player took is not the agent's).
        out: a_continuation.unwrap_or_else(Continuation::fresh),
    };
    la.out.keys.hand_over(Holder::Relay);
    let mut lb = Leg {
        pair: b,
        peer: Peer::new(b_remote),
        quality: Quality::default(),
        format: b_format,
        out: Continuation::fresh(),
    };
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
    let mut recorder = recording.map(|handle| Recorder {
        handle,
        formats: [a_format, b_format],
        aligner: ChannelAligner::new(8000),
        pcm: Vec::with_capacity(160),
        anchors: [None, None],
    });
    let mut drain_tick = tokio::time::interval(Duration::from_millis(100));
    let mut moh: Option<Playout> = None;
    let mut caller_muted = false;
    // One 20 ms pacer for music on hold and the mix.
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut payload = Vec::with_capacity(160);
    let mut packet = [0u8; 12 + 160];
    let mut rtcp_at = next_rtcp(rtcp_interval);
    // Mixing state: present while extra parties are on the call.
    let mut conference: Option<Conference> = None;
    let mut extras: Vec<Extra> = Vec::new();
    let mut outputs: Vec<Output> = Vec::new();
    // Extra parties' packets (made at the first join: most calls never mix).
    let mut extra_chan: Option<ExtraChannel> = None;
    // Packets the caller sent while its ports changed hands (the IVR's or
    // the queue's player → this relay) are stale: a key already handled,
    // words said to nobody. Relaying them a second late would replay a
    // DTMF event to the agent, so they are dropped.
    while let Ok((_, _)) = la.pair.rtp.try_recv_from(&mut buf_a) {
        s.dropped.fetch_add(1, Ordering::Relaxed);
    }
    loop {
        tokio::select! {
            r = la.pair.rtp.recv_from(&mut buf_a) => {
                let Ok((n, from)) = r else { continue };
                let hop = Hop { from: &mut la, to: &mut lb, channel: Channel::Caller, id: CALLER, muted: false, mix_muted: caller_muted, sent: &s.a_to_b };
                if hop.relay(&mut buf_a[..n], from, started.elapsed(), &mut conference, &mut recorder, &s).await {
                    last_rtp = Instant::now();
                }
            }
            r = lb.pair.rtp.recv_from(&mut buf_b) => {
                let Ok((n, from)) = r else { continue };
                // While B holds, A hears music instead.
                let hop = Hop { from: &mut lb, to: &mut la, channel: Channel::Agent, id: OTHER_SIDE, muted: moh.is_some(), mix_muted: false, sent: &s.b_to_a };
                if hop.relay(&mut buf_b[..n], from, started.elapsed(), &mut conference, &mut recorder, &s).await {
                    last_rtp = Instant::now();
                }
            }
            r = la.pair.rtcp.recv_from(&mut buf_c) => {
                let Ok((n, from)) = r else { continue };
                la.receive_rtcp(&buf_c[..n], from, started.elapsed(), &s);
            }
            r = lb.pair.rtcp.recv_from(&mut buf_d) => {
                let Ok((n, from)) = r else { continue };
                lb.receive_rtcp(&buf_d[..n], from, started.elapsed(), &s);
            }
            Some((id, mut data, from)) = next_extra(&mut extra_chan) => {
                let Some(x) = extras.iter_mut().find(|x| x.id == id) else { continue };
                if !x.peer.admit_rtp(from) {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Ok(rtp) = RtpHeader::parse(&data) else {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if rtp.payload_type == x.format.payload_type {
                    if let Some(c) = conference.as_mut() {
                        c.push_payload(id, rtp.payload);
                    }
                } else if Some(rtp.payload_type) == x.format.telephone_event {
                    let digits = x.keys.on_packet(started.elapsed(), rtp.timestamp, rtp.marker, rtp.payload);
                    for d in digits.into_iter().flatten() {
                        events.send(RelayEvent::Key { participant: id, key: d.key.to_char() }).ok();
                    }
                }
                data.clear();
            }
            c = control_rx.recv() => match c {
                Some(Control::Remote(Side::A, addr)) => la.peer = Peer::new(Some(addr)),
                Some(Control::Remote(Side::B, addr)) => lb.peer = Peer::new(Some(addr)),
                Some(Control::Hold(h)) => {
                    on_hold = h;
                    last_rtp = Instant::now();
                }
                Some(Control::MusicOnHold(Some(prompt))) => {
                    let mut p = Playout::new();
                    p.play(prompt);
                    p.set_loop(true);
                    moh = Some(p);
                    on_hold = true;
                    // The pacer idled while nothing played: no burst of
                    // missed ticks, start pacing now.
                    pace.reset();
                }
                Some(Control::MusicOnHold(None)) => {
                    moh = None;
                    on_hold = false;
                    last_rtp = Instant::now();
                }
                Some(Control::Join(p, reply)) => {
                    let tx = extra_chan.get_or_insert_with(|| mpsc::channel(256)).0.clone();
                    let result = join(&mut conference, &mut extras, p, (la.format.law, lb.format.law), b_role, &tx);
                    if result.is_ok() {
                        pace.reset();
                    }
                    reply.send(result).ok();
                }
                Some(Control::MuteCaller(m)) => caller_muted = m,
                Some(Control::Leave(id)) => {
                    extras.retain(|x| x.id != id);
                    if let Some(c) = conference.as_mut() {
                        let _ = c.leave(id);
                    }
                    if extras.is_empty() {
                        conference = None;
                        tracing::debug!("back to forwarding");
                    }
                }
                Some(Control::Mode(id, mode, reply)) => {
                    let result = match conference.as_mut() {
                        Some(c) => c.set_mode(id, mode),
                        None => Err(MixerError::NotJoined(id)),
                    };
                    reply.send(result).ok();
                }
                Some(Control::Stop(reply, keep_caller)) => {
                    let recording = match recorder.take() {
                        Some(r) => r.finish(started.elapsed()).await,
                        None => None,
                    };
                    let (a, b) = (la.quality.report(), lb.quality.report());
                    let caller_media = keep_caller.then_some(LegMedia { pair: la.pair, stream: la.out });
                    reply.send(RelayReport { caller_media, recording, a, b }).ok();
                    break;
                }
                None => break,
            },
            _ = pace.tick(), if moh.is_some() || conference.is_some() => {
                let music = moh.as_mut().map(|p| p.next_frame().unwrap_or([0; 160]));
                let Some(c) = conference.as_mut() else {
                    // Forwarding with B on hold: music to A.
                    let (Some(frame), Some(to)) = (music, la.peer.rtp) else { continue };
                    payload.clear();
                    la.format.law.encode(&frame, &mut payload);
                    if let Some(n) = local_packet(&mut la.out, la.format.payload_type, &payload, &mut packet) {
                        if la.pair.rtp.send_to(&packet[..n], to).await.is_ok() {
                            s.b_to_a.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    continue;
                };
                let rec = c.tick(&mut outputs);
                if let Some(r) = recorder.as_mut() {
                    r.push_mixed(started.elapsed(), rec);
                }
                for o in &outputs {
                    let (leg_out, pt, pair, to, counter) = if o.id == CALLER {
                        if let Some(frame) = music {
                            payload.clear();
                            la.format.law.encode(&frame, &mut payload);
                        }
                        (&mut la.out, la.format.payload_type, &la.pair, la.peer.rtp, Some(&s.b_to_a))
                    } else if o.id == OTHER_SIDE {
                        (&mut lb.out, lb.format.payload_type, &lb.pair, lb.peer.rtp, Some(&s.a_to_b))
                    } else if let Some(x) = extras.iter_mut().find(|x| x.id == o.id) {
                        (&mut x.out, x.format.payload_type, &*x.pair, x.peer.rtp, None)
                    } else {
                        continue;
                    };
                    let body = if o.id == CALLER && music.is_some() { &payload[..] } else { &o.payload[..] };
                    let (Some(to), Some(n)) = (to, local_packet(leg_out, pt, body, &mut packet)) else { continue };
                    if pair.rtp.send_to(&packet[..n], to).await.is_ok() {
                        if let Some(counter) = counter {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(rtcp_at) => {
                rtcp_at = next_rtcp(rtcp_interval);
                let now = started.elapsed();
                for leg in [&mut la, &mut lb] {
                    if leg.send_rtcp(now, &cname, &mut buf_c).await {
                        s.rtcp.fetch_add(1, Ordering::Relaxed);
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
}

/// Packets of extra parties: (who, datagram, from).
type ExtraPacket = (ParticipantId, Vec<u8>, SocketAddr);
type ExtraChannel = (mpsc::Sender<ExtraPacket>, mpsc::Receiver<ExtraPacket>);

/// The next extra party's packet, or never while nobody joined.
async fn next_extra(chan: &mut Option<ExtraChannel>) -> Option<ExtraPacket> {
    match chan {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Add an extra party: start mixing if this is the first, start its
/// receiver.
fn join(
    conference: &mut Option<Conference>,
    extras: &mut Vec<Extra>,
    p: Participant,
    (a_law, b_law): (G711, G711),
    b_role: Role,
    extra_tx: &mpsc::Sender<ExtraPacket>,
) -> Result<(), MixerError> {
    if p.id == CALLER || p.id == OTHER_SIDE || extras.iter().any(|x| x.id == p.id) {
        return Err(MixerError::AlreadyJoined(p.id));
    }
    let c = conference.get_or_insert_with(|| {
        let mut c = Conference::new();
        // Fresh conference: the two main legs cannot collide.
        let _ = c.join(CALLER, Role::Caller, a_law);
        let _ = c.join(OTHER_SIDE, b_role, b_law);
        tracing::debug!("mixing");
        c
    });
    c.join(p.id, p.role, p.format.law)?;
    let pair = Arc::new(p.pair);
    let rx_pair = pair.clone();
    let tx = extra_tx.clone();
    let id = p.id;
    let receiver = tokio::spawn(async move {
        let mut buf = [0u8; MAX_PACKET];
        loop {
            let Ok((n, from)) = rx_pair.rtp.recv_from(&mut buf).await else {
                continue;
            };
            if n >= MAX_PACKET {
                continue;
            }
            // A full queue drops the packet: the mix never waits.
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                tx.try_send((id, buf[..n].to_vec(), from))
            {
                break;
            }
        }
    });
    extras.push(Extra {
        id: p.id,
        pair,
        peer: Peer::new(Some(p.remote)),
        format: p.format,
        out: Continuation::fresh(),
        keys: Rfc4733Receiver::new(8000),
        receiver,
    });
    Ok(())
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

    fn rtp(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80u8, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[tokio::test]
    async fn forwards_both_ways_on_continuous_streams_and_drops_strangers() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42000, 42100);
        let (relay, caller, agent, a_addr, b_addr, _rx) = setup(&pool, Duration::ZERO).await;
        let mut buf = [0u8; 256];
        let mut ssrcs = (
            std::collections::HashSet::new(),
            std::collections::HashSet::new(),
        );
        let mut last_seq: (Option<u16>, Option<u16>) = (None, None);
        for i in 0..5u16 {
            // The caller's source changes half-way (a new SSRC).
            let ssrc = if i < 3 { 0x1111 } else { 0x2222 };
            caller
                .send_to(&rtp(8, 100 + i, ssrc, &[i as u8; 160]), a_addr)
                .await
                .unwrap();
            let (n, from) = agent.recv_from(&mut buf).await.unwrap();
            let h = RtpHeader::parse(&buf[..n]).unwrap();
            assert_eq!(h.payload, &[i as u8; 160][..], "payload untouched");
            assert_eq!(from, b_addr);
            ssrcs.0.insert(h.ssrc);
            if let Some(prev) = last_seq.0 {
                assert_eq!(h.sequence, prev.wrapping_add(1), "continuous sequence");
            }
            last_seq.0 = Some(h.sequence);
            agent
                .send_to(&rtp(8, 7 + i, 0x3333, &[0xd5; 160]), b_addr)
                .await
                .unwrap();
            let (n, from) = caller.recv_from(&mut buf).await.unwrap();
            let h = RtpHeader::parse(&buf[..n]).unwrap();
            assert_eq!(from, a_addr);
            ssrcs.1.insert(h.ssrc);
            last_seq.1 = Some(h.sequence);
        }
        assert_eq!(
            ssrcs.0.len(),
            1,
            "one SSRC toward the agent across the switch"
        );
        assert_eq!(ssrcs.1.len(), 1);
        let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        stranger
            .send_to(&rtp(8, 1, 9, &[9; 160]), a_addr)
            .await
            .unwrap();
        // Not RTP at all: dropped too.
        caller.send_to(&[0x80, 8, 0, 42], a_addr).await.unwrap();
        // Neither reaches the agent: the next packet it sees is the caller's.
        caller
            .send_to(&rtp(8, 200, 0x2222, &[42; 160]), a_addr)
            .await
            .unwrap();
        let (n, _) = agent.recv_from(&mut buf).await.unwrap();
        assert_eq!(RtpHeader::parse(&buf[..n]).unwrap().payload, &[42; 160][..]);
        assert_eq!(relay.stats.a_to_b.load(Ordering::Relaxed), 6);
        assert_eq!(relay.stats.b_to_a.load(Ordering::Relaxed), 5);
        assert_eq!(relay.stats.dropped.load(Ordering::Relaxed), 2);
        drop(relay);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            pool.in_use(),
            0,
            "ports return to the pool when the relay stops"
        );
    }

    #[tokio::test]
    async fn transcodes_between_laws_and_maps_payload_types() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42600, 42700);
        let (a, b) = (
            pool.allocate().await.unwrap(),
            pool.allocate().await.unwrap(),
        );
        let (a_addr, b_addr) = (
            SocketAddr::new(a.address(), a.port()),
            SocketAddr::new(b.address(), b.port()),
        );
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let _relay = start(
            a,
            Some(caller.local_addr().unwrap()),
            b,
            Some(agent.local_addr().unwrap()),
            RelayOptions {
                a_format: LegFormat {
                    law: G711::Alaw,
                    payload_type: 8,
                    telephone_event: Some(101),
                },
                b_format: LegFormat {
                    law: G711::Ulaw,
                    payload_type: 0,
                    telephone_event: Some(96),
                },
                ..Default::default()
            },
            tx,
        );
        let pcm: Vec<i16> = (0..160).map(|i| ((i as i16) - 80) * 200).collect();
        let mut alaw = Vec::new();
        G711::Alaw.encode(&pcm, &mut alaw);
        caller.send_to(&rtp(8, 1, 5, &alaw), a_addr).await.unwrap();
        let mut buf = [0u8; 256];
        let (n, _) = agent.recv_from(&mut buf).await.unwrap();
        let h = RtpHeader::parse(&buf[..n]).unwrap();
        assert_eq!(h.payload_type, 0, "PCMU toward the agent");
        let mut back = Vec::new();
        G711::Ulaw.decode(h.payload, &mut back);
        for (x, y) in pcm.iter().zip(&back) {
            assert!((x - y).abs() <= x.abs() / 8 + 16, "{x} vs {y}");
        }
        // RFC 4733: 101 on A is 96 on B.
        caller
            .send_to(&rtp(101, 2, 5, &[5, 0x0a, 0, 160]), a_addr)
            .await
            .unwrap();
        let (n, _) = agent.recv_from(&mut buf).await.unwrap();
        let h = RtpHeader::parse(&buf[..n]).unwrap();
        assert_eq!((h.payload_type, h.payload), (96, &[5, 0x0a, 0, 160][..]));
        // A payload type the other leg never negotiated is dropped.
        caller
            .send_to(&rtp(18, 3, 5, &[0; 20]), a_addr)
            .await
            .unwrap();
        agent
            .send_to(&rtp(0, 1, 6, &[0xff; 160]), b_addr)
            .await
            .unwrap();
        let (n, _) = caller.recv_from(&mut buf).await.unwrap();
        let h = RtpHeader::parse(&buf[..n]).unwrap();
        assert_eq!(
            h.payload_type, 8,
            "the agent's PCMU reaches the caller as PCMA"
        );
    }

    /// Issue 12 §1: the end packets of a key a player (the IVR's menu)
    /// took arrive after the caller's media moved to the relay: they never
    /// reach the agent, while a press made during the conversation does.
    #[tokio::test]
    async fn a_key_a_player_took_never_reaches_the_agent() {
        use crate::media::dtmf::{rfc4733_packets, DtmfKey};
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 43200, 43300);
        let (a, b) = (
            pool.allocate().await.unwrap(),
            pool.allocate().await.unwrap(),
        );
        let a_addr = SocketAddr::new(a.address(), a.port());
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let format = LegFormat {
            law: G711::Alaw,
            payload_type: 8,
            telephone_event: Some(101),
        };
        // The menu's player read key 1 up to its first end packet.
        let one = rfc4733_packets(
            DtmfKey::from_char('1').unwrap(),
            23200,
            Duration::from_millis(100),
            10,
            8000,
        );
        let mut continuation = Continuation::fresh();
        let mut taken = Vec::new();
        let first_end = one.iter().position(|p| p.event.end).unwrap();
        for p in &one[..=first_end] {
            let now = continuation.epoch.elapsed();
            taken.extend(continuation.keys.read_event(
                now,
                p.timestamp,
                p.marker,
                &p.event.to_bytes(),
            ));
        }
        assert_eq!(taken.len(), 1);
        let (tx, _rx) = mpsc::unbounded_channel();
        let _relay = start(
            a,
            Some(caller.local_addr().unwrap()),
            b,
            Some(agent.local_addr().unwrap()),
            RelayOptions {
                a_continuation: Some(continuation),
                a_format: format,
                b_format: format,
                ..Default::default()
            },
            tx,
        );
        let event = |seq: u16, ts: u32, body: [u8; 4]| {
            let mut p = vec![0x80u8, 101];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&0x5555u32.to_be_bytes());
            p.extend_from_slice(&body);
            p
        };
        // The relay runs (its start drains what waited on the port) …
        let mut buf = [0u8; 256];
        caller
            .send_to(&rtp(8, 40, 0x5555, &[6; 160]), a_addr)
            .await
            .unwrap();
        let (n, _) = agent.recv_from(&mut buf).await.unwrap();
        assert_eq!(RtpHeader::parse(&buf[..n]).unwrap().payload_type, 8);
        // … when the retransmitted end packets come, then the caller's voice.
        for (i, p) in one[first_end + 1..].iter().enumerate() {
            caller
                .send_to(&event(50 + i as u16, 23200, p.event.to_bytes()), a_addr)
                .await
                .unwrap();
        }
        caller
            .send_to(&rtp(8, 60, 0x5555, &[7; 160]), a_addr)
            .await
            .unwrap();
        let (n, _) = agent.recv_from(&mut buf).await.unwrap();
        let h = RtpHeader::parse(&buf[..n]).unwrap();
        assert_eq!(
            (h.payload_type, h.payload),
            (8, &[7; 160][..]),
            "the next packet the agent gets is the caller's voice"
        );
        // A key pressed while talking to the agent is the agent's.
        let five = rfc4733_packets(
            DtmfKey::from_char('5').unwrap(),
            90000,
            Duration::from_millis(60),
            10,
            8000,
        );
        for (i, p) in five.iter().enumerate() {
            caller
                .send_to(&event(70 + i as u16, 90000, p.event.to_bytes()), a_addr)
                .await
                .unwrap();
            let (n, _) = agent.recv_from(&mut buf).await.unwrap();
            let h = RtpHeader::parse(&buf[..n]).unwrap();
            assert_eq!((h.payload_type, h.payload), (101, &p.event.to_bytes()[..]));
        }
    }

    /// A UDP socket on an even-or-any port whose port + 1 is bound too
    /// (RTP + RTCP of a test peer).
    async fn socket_pair() -> (UdpSocket, UdpSocket) {
        for _ in 0..100 {
            let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = rtp.local_addr().unwrap().port();
            if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port.wrapping_add(1))).await {
                return (rtp, rtcp);
            }
        }
        panic!("no adjacent ports free");
    }

    fn dc(law: G711, level: i16) -> Vec<u8> {
        let mut out = Vec::new();
        law.encode(&[level; 160], &mut out);
        out
    }

    /// The levels of the packets waiting on `sock` (draining it).
    fn levels(sock: &UdpSocket, into: &mut Vec<i32>) {
        let mut buf = [0u8; 256];
        while let Ok((n, _)) = sock.try_recv_from(&mut buf) {
            if let Ok(h) = RtpHeader::parse(&buf[..n]) {
                let mut pcm = Vec::new();
                G711::Alaw.decode(h.payload, &mut pcm);
                into.extend(pcm.last().map(|s| i32::from(*s)));
            }
        }
    }

    /// Within G.711 quantisation of `want`.
    fn near(got: i32, want: i32) -> bool {
        (got - want).abs() <= want / 10 + 16
    }

    /// Heard `want` at least once (a late packet can make one tick miss a
    /// speaker, so not every packet carries every voice).
    fn heard(levels: &[i32], want: i32) -> bool {
        levels.iter().any(|l| near(*l, want))
    }

    /// Never heard more than `most` (a voice that must not be there).
    fn never_above(levels: &[i32], most: i32) -> bool {
        levels.iter().all(|l| *l <= most + most / 10 + 16)
    }

    #[tokio::test]
    async fn mixes_supervisor_listen_whisper_barge_then_forwards_again() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42800, 42900);
        let (relay, caller, agent, a_addr, b_addr, _rx) = setup(&pool, Duration::ZERO).await;
        let sup = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let pair = pool.allocate().await.unwrap();
        let sup_to = SocketAddr::new(pair.address(), pair.port());
        let sup_id = ParticipantId(2);
        relay
            .join(Participant {
                id: sup_id,
                role: Role::Supervisor,
                pair,
                remote: sup.local_addr().unwrap(),
                format: LegFormat::default(),
            })
            .await
            .unwrap();
        // Each party talks at its own level; collect what each hears.
        let talk = |rounds: u16| {
            let (caller, agent, sup) = (&caller, &agent, &sup);
            async move {
                let mut heard = (Vec::new(), Vec::new(), Vec::new());
                for i in 0..rounds {
                    caller
                        .send_to(&rtp(8, i, 1, &dc(G711::Alaw, 1000)), a_addr)
                        .await
                        .unwrap();
                    agent
                        .send_to(&rtp(8, i, 2, &dc(G711::Alaw, 2000)), b_addr)
                        .await
                        .unwrap();
                    sup.send_to(&rtp(8, i, 3, &dc(G711::Alaw, 4000)), sup_to)
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    levels(caller, &mut heard.0);
                    levels(agent, &mut heard.1);
                    levels(sup, &mut heard.2);
                }
                heard
            }
        };
        let (c, a, s) = talk(15).await;
        assert!(
            heard(&c, 2000) && never_above(&c, 2000),
            "listen: the caller hears the agent only: {c:?}"
        );
        assert!(
            heard(&a, 1000) && never_above(&a, 1000),
            "listen: the agent hears the caller only: {a:?}"
        );
        assert!(heard(&s, 3000), "listen: the supervisor hears both: {s:?}");
        relay
            .set_mode(sup_id, Mode::Whisper { to: OTHER_SIDE })
            .await
            .unwrap();
        let (c, a, _) = talk(15).await;
        assert!(
            never_above(&c, 2000),
            "whisper never reaches the caller: {c:?}"
        );
        assert!(heard(&a, 5000), "whisper reaches the agent: {a:?}");
        relay.set_mode(sup_id, Mode::Barge).await.unwrap();
        let (c, a, s) = talk(15).await;
        assert!(heard(&c, 6000), "barge: {c:?}");
        assert!(heard(&a, 5000), "barge: {a:?}");
        assert!(heard(&s, 3000), "barge: {s:?}");
        assert!(relay.set_mode(ParticipantId(9), Mode::Barge).await.is_err());
        relay.leave(sup_id);
        tokio::time::sleep(Duration::from_millis(50)).await;
        levels(&agent, &mut Vec::new());
        // Forwarding again: the caller's exact payload reaches the agent.
        caller
            .send_to(&rtp(8, 99, 1, &[0x11; 160]), a_addr)
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), agent.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            RtpHeader::parse(&buf[..n]).unwrap().payload,
            &[0x11; 160][..]
        );
        drop(relay);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.in_use(), 0, "the supervisor's ports are released too");
    }

    #[tokio::test]
    async fn sends_sender_reports_and_measures_round_trip() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 43000, 43100);
        let (a, b) = (
            pool.allocate().await.unwrap(),
            pool.allocate().await.unwrap(),
        );
        let (a_addr, b_addr) = (
            SocketAddr::new(a.address(), a.port()),
            SocketAddr::new(b.address(), b.port()),
        );
        let (caller, caller_rtcp) = socket_pair().await;
        let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let relay = start(
            a,
            Some(caller.local_addr().unwrap()),
            b,
            Some(agent.local_addr().unwrap()),
            RelayOptions {
                rtcp_interval: Duration::from_millis(100),
                cname: "hotline@test".into(),
                ..Default::default()
            },
            tx,
        );
        let mut buf = [0u8; 512];
        for i in 0..10 {
            caller
                .send_to(&rtp(8, i, 0xabc, &[0xd5; 160]), a_addr)
                .await
                .unwrap();
            agent.recv_from(&mut buf).await.unwrap();
            agent
                .send_to(&rtp(8, i, 0xdef, &[0xd5; 160]), b_addr)
                .await
                .unwrap();
            caller.recv_from(&mut buf).await.unwrap();
        }
        let h = RtpHeader::parse(&buf[..172]).unwrap();
        let ours = h.ssrc;
        // Our SR to the caller: about the stream it receives, with a block
        // on what we received from it.
        let (n, from) =
            tokio::time::timeout(Duration::from_secs(3), caller_rtcp.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
        let reports = parse_rtcp(&buf[..n]).unwrap();
        let RtcpReport::Sender { ssrc, info, blocks } = &reports[0] else {
            panic!("expected an SR: {reports:?}");
        };
        assert_eq!(*ssrc, ours);
        assert_eq!(info.packet_count, 10);
        assert_eq!(blocks[0].ssrc, 0xabc);
        assert_eq!(blocks[0].highest_seq & 0xffff, 9);
        // The caller answers with an RR on our SR: RTT becomes known.
        let block = crate::media::rtp::ReportBlock {
            ssrc: ours,
            fraction_lost: 64,
            last_sr: crate::media::rtp::ntp_middle(info.ntp_timestamp),
            ..Default::default()
        };
        let mut rr = [0u8; 64];
        let m = write_rr(&mut rr, 0xabc, &[block]).unwrap();
        caller_rtcp.send_to(&rr[..m], from).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let report = relay.stop().await;
        assert_eq!(report.a.rtcp_received, 1);
        assert!(report.a.rtcp_sent >= 1);
        assert_eq!(report.a.peer_fraction_lost, Some(0.25));
        let rtt = report.a.rtt_ms.expect("round trip measured");
        assert!(rtt >= 0.0, "{rtt}");
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
