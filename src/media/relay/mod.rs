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
//! A leg's peer address starts as its SDP announced and *latches* to where
//! its RTP really comes from ([`crate::media::latch`]: strict, with a
//! probation for NAT'd sources; the caller's latch carried over from the
//! player that had the leg before); once latched, packets from any other
//! source are dropped and counted. A re-INVITE that moves a peer calls
//! [`RelayHandle::set_remote`], which re-arms latching for that leg. What
//! waited on either port before the bridge is dropped.
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
//! [`ChannelAligner`](super::recorder::ChannelAligner) (caller left; the other side right — in mixing mode
//! what the caller heard, never a whisper) placed by media time so both
//! channels keep wall-clock time through loss and hold, and hands 100 ms
//! chunks to the recording's writer thread, never waiting for the disk.
//! The recording is the call's ([`CallRecording`], lent by the caller's
//! media session): [`RelayHandle::stop`] finishes the file,
//! [`RelayHandle::hand_back`] gives it back open when the call goes on (a
//! blind transfer) with side A's stream.
//!
//! Files: this one holds the handle, the options and the relay task (the
//! socket shell); `forward` the pure core of the two main legs (latching,
//! forwarding decisions and rewriting, RTCP), `mix` the
//! extra parties, `quality` the receive statistics, `recording` the
//! recording side.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::codec::{Codec, G711};
use super::conference::{Conference, Output};
use super::keys::Holder;
use super::mixer::{MixerError, Mode, ParticipantId, Role};
use super::player::Continuation;
use super::ports::PortPair;
use super::prompts::{Playout, Prompt};
use super::recorder::{Channel, RecordingMeta};
use super::rtp::RtpHeader;
use super::sdp::{AudioCodec, Negotiated, SrtpKeys};

mod forward;
mod mix;
mod quality;
mod recording;
#[cfg(test)]
mod tests;

use forward::{local_packet, Hop, Leg, Peer, Verdict, MAX_PACKET};
use mix::{join, next_extra, Extra, ExtraChannel};
use quality::ntp_now;
use quality::Quality;
use recording::{Recorder, RECORD_DELAY};

pub use recording::CallRecording;

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
    /// SRTP keys when the leg is SRTP (RFC 4568 SDES); its sockets are
    /// keyed with them when a task starts on the leg.
    pub srtp: Option<SrtpKeys>,
}

impl Default for LegFormat {
    fn default() -> Self {
        Self {
            law: G711::Alaw,
            payload_type: 8,
            telephone_event: None,
            srtp: None,
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
            srtp: n.srtp,
        }
    }
}

/// Key `pair` with SRTP when `format` says the leg is SRTP (a failure is
/// logged; the leg then refuses its packets rather than go plaintext).
pub(crate) fn key_leg(pair: &PortPair, srtp: Option<&SrtpKeys>, leg: &str) {
    if let Err(e) = pair.secure(srtp) {
        tracing::error!(error = %e, leg, "cannot key the leg's SRTP: its media is refused");
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
    AgentKeys(Box<SrtpKeys>),
    Hold(bool),
    Stop(tokio::sync::oneshot::Sender<RelayReport>, Stop),
    MusicOnHold(Option<Prompt>),
    Join(
        Box<Participant>,
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
    /// RTP and RTCP packets refused: from other sources than the leg's
    /// (strict latching, `media::latch`), or, on an SRTP leg, failing
    /// authentication or replayed (`media::srtp`): a stranger at the
    /// call's ports.
    pub refused: u64,
}

/// How a relay stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The call is over: finish the recording.
    Finish,
    /// The caller goes on: hand side A's stream back, and the recording
    /// open (`true`) or finished.
    HandBack(bool),
}

/// Side A's media state handed back when the relay stops so the call can
/// go on with that leg (an IVR survey after the agent hung up, a blind
/// transfer to the next agent).
pub struct LegMedia {
    /// Our RTP stream toward the leg (and its keys), to be continued.
    pub stream: Continuation,
    /// The call's recording, still open (a blind transfer: the next
    /// conversation is recorded into the same file).
    pub recording: Option<CallRecording>,
}

impl std::fmt::Debug for LegMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegMedia")
            .field("recording", &self.recording)
            .finish()
    }
}

/// What a relay leaves behind when it stops.
#[derive(Debug, Default)]
pub struct RelayReport {
    /// Side A's media, when asked to hand it back ([`RelayHandle::hand_back`]).
    pub caller_media: Option<LegMedia>,
    /// The finished recording, if the call was recorded.
    pub recording: Option<RecordingMeta>,
    /// Side A (caller) quality.
    pub a: LegQuality,
    /// Side B (agent) quality.
    pub b: LegQuality,
}

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

    /// Side B's SRTP keys changed (a re-INVITE that rekeyed). Side A's
    /// ports belong to the caller's media session, which keys them.
    pub fn set_agent_keys(&self, keys: SrtpKeys) {
        self.control.send(Control::AgentKeys(Box::new(keys))).ok();
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
        if self
            .control
            .send(Control::Join(Box::new(participant), tx))
            .is_err()
        {
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
        self.stop_with(Stop::Finish).await
    }

    /// Stop relaying and hand side A's stream back in the report (the
    /// caller goes on), with the recording still open when
    /// `keep_recording` (else finished, as [`Self::stop`]).
    pub async fn hand_back(self, keep_recording: bool) -> RelayReport {
        self.stop_with(Stop::HandBack(keep_recording)).await
    }

    async fn stop_with(self, how: Stop) -> RelayReport {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Stop(tx, how)).is_err() {
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

/// Mean RTCP report interval (RFC 3550 §6.2 minimum for a two-party
/// session).
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// What a relay does besides forwarding.
#[derive(Default)]
pub struct RelayOptions {
    /// Report silence after this long without RTP (zero: never).
    pub silence: Duration,
    /// Record the call (stereo WAV: A left, B right), into the call's
    /// recording (lent: it may have recorded an earlier conversation).
    pub recording: Option<CallRecording>,
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

/// Start relaying between `a` (peer `a_remote`; the caller's ports, which
/// its media session keeps) and `b` (peer `b_remote`).
pub fn start(
    a: Arc<PortPair>,
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

/// Send what the forwarding core decided for a datagram (`verdict`) from
/// `pair` (the other leg's sockets), counting it; `true` when it came from
/// the latched peer (the call is alive).
async fn execute(
    verdict: Verdict,
    pair: &PortPair,
    packet: &[u8],
    s: &RelayStats,
    sent: &AtomicU64,
) -> bool {
    match verdict {
        Verdict::Send(to) => {
            if pair.send_rtp(packet, to).await.is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        Verdict::Stranger | Verdict::Kept { dropped: true } => {
            s.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::Kept { dropped: false } => {}
    }
    verdict.alive()
}

/// Next RTCP report time: the mean interval randomised over 0.5–1.5×.
fn next_rtcp(mean: Duration) -> Instant {
    let factor = 0.5 + rand::random::<f64>();
    Instant::now() + mean.mul_f64(factor)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    a: Arc<PortPair>,
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
    // The sockets are the shell's; the legs' state is the pure core's.
    let (a_pair, b_pair) = (a, Arc::new(b));
    key_leg(&a_pair, a_format.srtp.as_ref(), "caller");
    key_leg(&b_pair, b_format.srtp.as_ref(), "agent");
    let a_continuation = a_continuation.unwrap_or_else(Continuation::fresh);
    let mut la = Leg {
        // A player learnt where the caller's RTP comes from: no fresh
        // latch at the hand-over (`media::latch`).
        peer: Peer::resume(a_remote, a_continuation.latched),
        quality: Quality::default(),
        format: a_format,
        // Side A heard prompts before the bridge: keep its stream continuous
        // and its keys (a press a player took is not the agent's).
        out: a_continuation,
    };
    la.out.keys.hand_over(Holder::Relay);
    let mut lb = Leg {
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
    let mut recorder = recording.map(|r| Recorder::lend(r, started, [a_format, b_format]));
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
    while a_pair.discard_rtp(&mut buf_a).is_ok() {
        s.dropped.fetch_add(1, Ordering::Relaxed);
    }
    // Side B's port was offered before it answered: whatever waits there
    // is not its conversation (a stranger spraying the port would
    // otherwise be relayed in a burst at the bridge).
    while b_pair.discard_rtp(&mut buf_b).is_ok() {
        s.dropped.fetch_add(1, Ordering::Relaxed);
    }
    loop {
        tokio::select! {
            r = a_pair.recv_rtp(&mut buf_a) => {
                let Ok((n, from)) = r else { continue };
                let now = Instant::now();
                let hop = Hop { from: &mut la, to: &mut lb, channel: Channel::Caller, id: CALLER, muted: false, mix_muted: caller_muted };
                let verdict = hop.route(&mut buf_a[..n], from, now - started, now, &mut conference, &mut recorder);
                if execute(verdict, &b_pair, &buf_a[..n], &s, &s.a_to_b).await {
                    last_rtp = now;
                }
            }
            r = b_pair.recv_rtp(&mut buf_b) => {
                let Ok((n, from)) = r else { continue };
                let now = Instant::now();
                // While B holds, A hears music instead.
                let hop = Hop { from: &mut lb, to: &mut la, channel: Channel::Agent, id: OTHER_SIDE, muted: moh.is_some(), mix_muted: false };
                let verdict = hop.route(&mut buf_b[..n], from, now - started, now, &mut conference, &mut recorder);
                if execute(verdict, &a_pair, &buf_b[..n], &s, &s.b_to_a).await {
                    last_rtp = now;
                }
            }
            r = a_pair.recv_rtcp(&mut buf_c) => {
                let Ok((n, from)) = r else { continue };
                la.receive_rtcp(&buf_c[..n], from, started.elapsed(), &s);
            }
            r = b_pair.recv_rtcp(&mut buf_d) => {
                let Ok((n, from)) = r else { continue };
                lb.receive_rtcp(&buf_d[..n], from, started.elapsed(), &s);
            }
            Some((id, mut data, from)) = next_extra(&mut extra_chan) => {
                let Some(x) = extras.iter_mut().find(|x| x.id == id) else { continue };
                if !x.peer.admit_rtp(from, started.elapsed()) {
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
                Some(Control::AgentKeys(keys)) => key_leg(&b_pair, Some(&keys), "agent"),
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
                    let result = join(&mut conference, &mut extras, *p, (la.format.law, lb.format.law), b_role, &tx);
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
                Some(Control::Stop(reply, how)) => {
                    let open = recorder.take().map(|r| r.give_back(started.elapsed()));
                    let (kept, recording) = match (how, open) {
                        (Stop::HandBack(true), open) => (open, None),
                        (_, Some(r)) => (None, r.finish().await),
                        (_, None) => (None, None),
                    };
                    let (mut a, mut b) = (la.quality.report(), lb.quality.report());
                    a.refused = la.peer.refused() + a_pair.srtp_refused();
                    b.refused = lb.peer.refused() + b_pair.srtp_refused();
                    if a.refused + b.refused > 0 {
                        tracing::warn!(caller = a.refused, agent = b.refused, "packets from strangers refused at this call's ports");
                    }
                    la.out.latched = la.peer.latched();
                    let caller_media = matches!(how, Stop::HandBack(_))
                        .then_some(LegMedia { stream: la.out, recording: kept });
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
                    if let Some(n) = local_packet(&mut la.out, la.format.payload_type, &payload, &mut packet, Instant::now()) {
                        if a_pair.send_rtp(&packet[..n], to).await.is_ok() {
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
                        (&mut la.out, la.format.payload_type, &*a_pair, la.peer.rtp, Some(&s.b_to_a))
                    } else if o.id == OTHER_SIDE {
                        (&mut lb.out, lb.format.payload_type, &*b_pair, lb.peer.rtp, Some(&s.a_to_b))
                    } else if let Some(x) = extras.iter_mut().find(|x| x.id == o.id) {
                        (&mut x.out, x.format.payload_type, &*x.pair, x.peer.rtp, None)
                    } else {
                        continue;
                    };
                    let body = if o.id == CALLER && music.is_some() { &payload[..] } else { &o.payload[..] };
                    let (Some(to), Some(n)) = (to, local_packet(leg_out, pt, body, &mut packet, Instant::now())) else { continue };
                    if pair.send_rtp(&packet[..n], to).await.is_ok() {
                        if let Some(counter) = counter {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(rtcp_at) => {
                rtcp_at = next_rtcp(rtcp_interval);
                let (now, ntp) = (Instant::now(), ntp_now());
                for (leg, pair) in [(&mut la, &a_pair), (&mut lb, &b_pair)] {
                    let Some((n, to)) = leg.rtcp_report(now - started, now, ntp, &cname, &mut buf_c) else { continue };
                    if pair.send_rtcp(&buf_c[..n], to).await.is_ok() {
                        leg.quality.rtcp_sent += 1;
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
