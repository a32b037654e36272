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
//! With a recording, the relay places the audio (decoded; A-law bytes as they came for `alaw`) in the recorder's
//! [`ChannelAligner`](super::recorder::ChannelAligner) (caller left; the other side right — in mixing mode
//! what the caller heard, never a whisper) placed by media time so both
//! channels keep wall-clock time through loss and hold, and hands 100 ms
//! chunks to the recording's writer thread, never waiting for the disk.
//! The recording is the call's ([`CallRecording`], lent by the caller's
//! media session): [`RelayHandle::stop`] finishes the file,
//! [`RelayHandle::hand_back`] gives it back open when the call goes on (a
//! blind transfer) with side A's stream.
//!
//! Files: this one holds the handle and the options; `core` the relay's
//! state as the caller's media session runs it on an IO worker
//! ([`crate::media::session`]); `forward` the pure core of the two main legs (latching,
//! forwarding decisions and rewriting, RTCP), `mix` the
//! extra parties, `quality` the receive statistics, `recording` the
//! recording side.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::codec::G711;
use super::mixer::{MixerError, Mode, ParticipantId, Role};
use super::player::Continuation;
use super::ports::PortPair;
use super::prompts::Prompt;
use super::recorder::RecordingMeta;
use super::sdp::{AudioCodec, Negotiated, SrtpKeys};
use super::webrtc::Fingerprint;

pub(crate) mod core;
mod forward;
pub mod histograms;
mod mix;
mod quality;
mod recording;
#[cfg(test)]
mod tests;

use self::core::Stopped;
use super::player::Target;
use super::session::{Bridge, CallerSession, Command, Link};

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
    /// A browser's leg (DTLS-SRTP): its certificate's fingerprint; its
    /// sockets run ICE-lite and DTLS, and are keyed by the handshake.
    pub dtls: Option<Fingerprint>,
}

impl Default for LegFormat {
    fn default() -> Self {
        Self {
            law: G711::Alaw,
            payload_type: 8,
            telephone_event: None,
            srtp: None,
            dtls: None,
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
            dtls: n.dtls,
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

/// Secure `pair` as `format` says: SDES keys ([`key_leg`]), or a
/// browser's DTLS-SRTP with its certificate's fingerprint (keyed by the
/// handshake); a failure is logged and the leg then refuses its packets.
pub(crate) fn secure_leg(pair: &PortPair, format: &LegFormat, leg: &str) {
    key_leg(pair, format.srtp.as_ref(), leg);
    let Some(peer) = format.dtls else { return };
    let now = tokio::time::Instant::now().into_std();
    if let Err(e) = pair.arm_webrtc(now, peer) {
        tracing::error!(error = %e, leg, "cannot set up DTLS on a WebRTC leg: its media is refused");
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

/// What a [`RelayHandle`] tells its relay.
pub enum Control {
    Remote(Side, SocketAddr),
    AgentKeys(Box<SrtpKeys>),
    Hold(bool),
    MusicOnHold(Option<Prompt>),
    Join(
        Box<Participant>,
        tokio::sync::oneshot::Sender<Result<(), MixerError>>,
    ),
    Leave(ParticipantId),
    MuteCaller(bool),
    MuteAgent(bool),
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
pub enum Stop {
    /// The call is over: finish the recording.
    Finish,
    /// The caller goes on: hand side A's stream back, and the recording
    /// open (`true`) or finished.
    HandBack(bool),
}

/// What a relay leaves behind when it stops.
#[derive(Debug, Default)]
pub struct RelayReport {
    /// The call's recording, still open, when asked to hand it back
    /// ([`RelayHandle::hand_back`] with `keep_recording`: a blind transfer
    /// records the next conversation into the same file).
    pub open_recording: Option<CallRecording>,
    /// The finished recording, if the call was recorded.
    pub recording: Option<RecordingMeta>,
    /// Side A (caller) quality.
    pub a: LegQuality,
    /// Side B (agent) quality.
    pub b: LegQuality,
}

/// Controls a running relay, a mode of the caller's media session
/// ([`crate::media::session`]); dropping it stops the relay (the session
/// goes on).
pub struct RelayHandle {
    /// The session (`None`: the media workers could not start).
    link: Option<Link>,
    /// Stopped (or handed back): dropping sends nothing more.
    done: bool,
    /// Live counters.
    pub stats: Arc<RelayStats>,
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        if !self.done {
            if let Some(l) = &self.link {
                l.send(Command::Unbridged);
            }
        }
    }
}

impl RelayHandle {
    /// Bridge the caller of the session behind `link` (peer `a_remote`) to
    /// `b` (peer `b_remote`).
    pub(crate) fn bridge(
        link: Option<Link>,
        a_remote: Option<SocketAddr>,
        (b, b_remote): (PortPair, Option<SocketAddr>),
        options: RelayOptions,
        events: mpsc::UnboundedSender<RelayEvent>,
    ) -> Self {
        let stats = Arc::new(RelayStats::default());
        // Side B's port was offered before it answered: whatever waits
        // there now is not its conversation (a stranger spraying the port
        // would otherwise be relayed in a burst at the bridge). What comes
        // from now on waits for the session's worker.
        let mut stale = [0u8; 2048];
        while b.discard_rtp(&mut stale).is_ok() {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        let handle = Self {
            link,
            done: false,
            stats: stats.clone(),
        };
        let sent = handle.link.as_ref().is_some_and(|l| {
            l.send(Command::Bridge(Box::new(Bridge {
                a_remote,
                b,
                b_remote,
                options,
                events,
                stats,
            })))
        });
        if !sent {
            tracing::error!("the call's media session is gone: the bridge carries no media");
        }
        handle
    }

    fn send(&self, control: Control) -> bool {
        self.link
            .as_ref()
            .is_some_and(|l| l.send(Command::Relay(control)))
    }

    /// The peer of `side` moved (re-INVITE): send there and re-latch.
    pub fn set_remote(&self, side: Side, addr: SocketAddr) {
        self.send(Control::Remote(side, addr));
    }

    /// Side B's SRTP keys changed (a re-INVITE that rekeyed). Side A's
    /// ports belong to the caller's media session, which keys them.
    pub fn set_agent_keys(&self, keys: SrtpKeys) {
        self.send(Control::AgentKeys(Box::new(keys)));
    }

    /// Suspend (or resume) the silence timeout while a leg is on hold.
    pub fn set_hold(&self, on_hold: bool) {
        self.send(Control::Hold(on_hold));
    }

    /// Play `prompt` (looped) to side A instead of B's audio while B holds;
    /// `None` resumes B.
    pub fn music_on_hold(&self, moh: Option<Prompt>) {
        self.send(Control::MusicOnHold(moh));
    }

    /// Keep side A's (the caller's) audio out of the mix while `muted`: the
    /// agent consults a third party and the caller, on hold, must not be
    /// heard by them (attended transfer). Only the mix is affected.
    pub fn mute_caller(&self, muted: bool) {
        self.send(Control::MuteCaller(muted));
    }

    /// Keep side B's (the agent's first line's) audio out of the mix while
    /// `muted`: the agent's phone consults from a second line and holds
    /// this one, which may carry the phone's own hold music. Only the mix
    /// is affected.
    pub fn mute_agent(&self, muted: bool) {
        self.send(Control::MuteAgent(muted));
    }

    /// Add an extra party to the call's mix (the call switches to mixing).
    ///
    /// # Errors
    /// The id is taken, or the relay has stopped.
    pub async fn join(&self, participant: Participant) -> Result<(), MixerError> {
        let id = participant.id;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.send(Control::Join(Box::new(participant), tx)) {
            return Err(MixerError::NotJoined(id));
        }
        rx.await.unwrap_or(Err(MixerError::NotJoined(id)))
    }

    /// Remove an extra party (its ports are released).
    pub fn leave(&self, id: ParticipantId) {
        self.send(Control::Leave(id));
    }

    /// Change a supervisor's mode.
    ///
    /// # Errors
    /// See [`super::mixer::Mixer::set_mode`].
    pub async fn set_mode(&self, id: ParticipantId, mode: Mode) -> Result<(), MixerError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.send(Control::Mode(id, mode, tx)) {
            return Err(MixerError::NotJoined(id));
        }
        rx.await.unwrap_or(Err(MixerError::NotJoined(id)))
    }

    /// Stop relaying, finish the recording (if any) and report quality.
    pub async fn stop(self) -> RelayReport {
        self.stop_with(Stop::Finish).await
    }

    /// Stop relaying (the session keeps side A's stream for whoever sends
    /// next: the caller goes on), with the recording still open in the
    /// report when `keep_recording` (else finished, as [`Self::stop`]).
    pub async fn hand_back(self, keep_recording: bool) -> RelayReport {
        self.stop_with(Stop::HandBack(keep_recording)).await
    }

    async fn stop_with(mut self, how: Stop) -> RelayReport {
        self.done = true;
        let Some(link) = self.link.take() else {
            return RelayReport::default();
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !link.send(Command::Unbridge(tx, how)) {
            return RelayReport::default();
        }
        let Ok(Stopped { mut report, finish }) = rx.await else {
            return RelayReport::default();
        };
        if let Some(r) = finish {
            report.recording = r.finish().await;
        }
        report
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
    /// Continue side A's outgoing stream (it heard prompts before); only
    /// [`start`] reads it (a call's session keeps the caller's stream).
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

/// Start relaying between `a` (peer `a_remote`; ports no session has yet)
/// and `b` (peer `b_remote`): a media session for `a` that starts bridged,
/// continuing `options.a_continuation` (or a fresh stream). It ends when
/// the relay stops. Calls bridge through their
/// [`CallerMedia`](super::caller::CallerMedia) instead.
pub fn start(
    a: Arc<PortPair>,
    a_remote: Option<SocketAddr>,
    b: PortPair,
    b_remote: Option<SocketAddr>,
    mut options: RelayOptions,
    events: mpsc::UnboundedSender<RelayEvent>,
) -> RelayHandle {
    let target = Target {
        remote: a_remote.unwrap_or_else(|| SocketAddr::new(a.address(), 0)),
        law: options.a_format.law,
        payload_type: options.a_format.payload_type,
        telephone_event: options.a_format.telephone_event,
        srtp: options.a_format.srtp,
    };
    key_leg(&a, options.a_format.srtp.as_ref(), "caller");
    let stream = options
        .a_continuation
        .take()
        .unwrap_or_else(Continuation::fresh);
    let link = CallerSession::start(a, target, stream);
    RelayHandle::bridge(link, a_remote, (b, b_remote), options, events)
}
