//! Plays prompts and music on hold to one leg and listens to its keys
//! (issue "Media engine" §4 prompts, §3 DTMF; used while a caller waits in a
//! queue). The shell around the pure [`Playout`] and [`OutgoingStream`]:
//! one task owns the leg's [`PortPair`], sends a 20 ms G.711 frame per tick
//! with one SSRC and continuous sequence/timestamps across prompts, sends
//! comfort silence between prompts (so NAT bindings and jitter buffers stay
//! warm), detects keys from RFC 4733 events and from tones in the leg's
//! audio (Goertzel), each press reported once whichever paths carried it, and
//! reports keys and finished prompts. The ports are the caller's media
//! session's (`media::caller`), shared with this task while it plays;
//! [`Player::finish`] stops at once and hands the leg's stream and keys
//! back so the call can bridge the leg at once: an agent's answer never
//! waits for a prompt to end.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::debug;

use super::codec::{Codec, G711};
use super::dtmf::DtmfKey;
use super::keys::{Holder, KeyReader};
use super::latch::Peer;
use super::ports::PortPair;
use super::prompts::{Playout, PlayoutEvent, Prompt};
use super::rtp::{write_rtp, OutgoingFrame, OutgoingStream, RtpHeader, SourceTiming};
use super::voicemail::{beep, VoicemailOptions, VoicemailRecorder, VoicemailStatus};

/// What the player reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayerEvent {
    /// A key pressed on the leg (RFC 4733).
    Key(char),
    /// A prompt played to its end.
    Finished(String),
    /// A prompt was cut short by a key (barge-in).
    Interrupted(String),
    /// A voicemail ended: saved at `path` (None: nothing was said, the
    /// file was discarded), `secs` long.
    Voicemail {
        /// The saved file.
        path: Option<String>,
        /// Its length in whole seconds.
        secs: u32,
    },
}

enum Command {
    RecordVoicemail(PathBuf, VoicemailOptions, bool),
    Play(Prompt),
    Queue(Prompt),
    Loop(bool),
    InterruptOnKey(bool),
    Stop,
    Finish,
    InfoKey(DtmfKey),
}

/// A running player; drop it or call [`Player::finish`] to stop.
pub struct Player {
    commands: mpsc::UnboundedSender<Command>,
    task: Option<tokio::task::JoinHandle<Option<Continuation>>>,
}

/// The leg's media state as its last owner left it: the outgoing RTP
/// stream, so whoever sends next (the bridge) continues the same SSRC,
/// sequence and timestamps, and the leg's keys, so a press is read once
/// whoever holds the media when its packets arrive ([`KeyReader`]).
pub struct Continuation {
    /// The stream.
    pub stream: OutgoingStream,
    /// The time base `stream` (and `keys`) were driven with.
    pub epoch: tokio::time::Instant,
    /// The keys the leg pressed so far.
    pub keys: KeyReader,
    /// The source the leg's RTP latched to (`media::latch`), kept across
    /// owners so a hand-over is no window for a stranger.
    pub latched: Option<SocketAddr>,
}

impl Continuation {
    /// A fresh stream with random SSRC, sequence and timestamp (RFC 3550
    /// §5.1), starting now, with no keys seen.
    pub fn fresh() -> Self {
        Continuation {
            stream: OutgoingStream::new(rand::random(), rand::random(), rand::random(), 8000),
            epoch: tokio::time::Instant::now(),
            keys: KeyReader::new(),
            latched: None,
        }
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Where and how the player sends.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The leg's RTP address (from its SDP).
    pub remote: SocketAddr,
    /// Negotiated law.
    pub law: G711,
    /// Negotiated payload type for it.
    pub payload_type: u8,
    /// Negotiated telephone-event payload type.
    pub telephone_event: Option<u8>,
    /// SRTP keys when the leg is SRTP (its sockets are keyed with them).
    pub srtp: Option<super::sdp::SrtpKeys>,
}

impl Target {
    /// Send to the leg as its offer/answer settled.
    pub fn from_negotiated(n: &super::sdp::Negotiated) -> Self {
        let format = super::relay::LegFormat::from_negotiated(n);
        Self {
            remote: n.remote,
            law: format.law,
            payload_type: format.payload_type,
            telephone_event: format.telephone_event,
            srtp: format.srtp,
        }
    }
}

impl Player {
    /// Start playing nothing (comfort silence) to `target` from `pair`.
    pub fn start(
        pair: Arc<PortPair>,
        target: Target,
        events: mpsc::UnboundedSender<PlayerEvent>,
    ) -> Self {
        Self::resume(pair, None, target, events)
    }

    /// Start playing nothing to `target`, continuing `stream` (the leg's
    /// RTP stream as the bridge or an earlier player left it) so the phone
    /// sees one SSRC with continuous sequence numbers and timestamps.
    pub fn resume(
        pair: Arc<PortPair>,
        stream: Option<Continuation>,
        target: Target,
        events: mpsc::UnboundedSender<PlayerEvent>,
    ) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(pair, stream, target, rx, events));
        Self {
            commands,
            task: Some(task),
        }
    }

    /// Replace whatever plays with `prompt`.
    pub fn play(&self, prompt: Prompt) {
        self.commands.send(Command::Play(prompt)).ok();
    }

    /// Play `prompt` after what is queued.
    pub fn queue(&self, prompt: Prompt) {
        self.commands.send(Command::Queue(prompt)).ok();
    }

    /// Loop the queue (music on hold).
    pub fn set_loop(&self, on: bool) {
        self.commands.send(Command::Loop(on)).ok();
    }

    /// Let a key cut the current prompt (barge-in).
    pub fn interrupt_on_key(&self, on: bool) {
        self.commands.send(Command::InterruptOnKey(on)).ok();
    }

    /// A key the leg sent as SIP INFO (RFC 6086 `application/dtmf-relay`):
    /// it goes through the same combiner as the RTP paths.
    pub fn info_key(&self, key: DtmfKey) {
        self.commands.send(Command::InfoKey(key)).ok();
    }

    /// Record the leg's audio as a voicemail at `path` (after a beep when
    /// `beep`), until silence, the longest length, `#`, or [`Self::finish`];
    /// reported as [`PlayerEvent::Voicemail`].
    pub fn record_voicemail(&self, path: PathBuf, options: VoicemailOptions, beep: bool) {
        self.commands
            .send(Command::RecordVoicemail(path, options, beep))
            .ok();
    }

    /// Stop playing (comfort silence continues).
    pub fn stop(&self) {
        self.commands.send(Command::Stop).ok();
    }

    /// Stop at once and get the leg's RTP stream (and keys) back.
    pub async fn finish(mut self) -> Option<Continuation> {
        self.commands.send(Command::Finish).ok();
        self.task.take()?.await.ok().flatten()
    }
}

/// One frame of A-law/μ-law silence per tick between prompts.
const SILENCE: [i16; 160] = [0; 160];

async fn run(
    pair: Arc<PortPair>,
    continued: Option<Continuation>,
    target: Target,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<PlayerEvent>,
) -> Option<Continuation> {
    let io = match pair.attach() {
        Ok(io) => io,
        Err(e) => {
            tracing::error!(error = %e, port = pair.port(), "the player cannot read the caller's port");
            return continued;
        }
    };
    let Continuation {
        mut stream,
        epoch: started,
        mut keys,
        latched,
    } = continued.unwrap_or_else(Continuation::fresh);
    super::relay::key_leg(&pair, target.srtp.as_ref(), "player");
    // Prompts go where the caller's RTP comes from (NAT), keys only from
    // there (strict latching, `media::latch`).
    let mut peer = Peer::resume(Some(target.remote), latched);
    if latched.is_none() {
        // The first owner of the leg's media: what waits on the port came
        // before the caller was answered (nobody's, or a stranger's).
        let mut stale = [0u8; 1500];
        while pair.discard_rtp(&mut stale).is_ok() {}
    }
    // Whoever held the media before is done with it: a press it began is
    // its own (KeyReader), a press from now on is ours.
    keys.hand_over(Holder::Reader);
    let mut playout = Playout::new();
    let mut heard = Vec::with_capacity(160);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut payload = Vec::with_capacity(160);
    let mut packet = [0u8; 12 + 160];
    let mut buf = [0u8; 1500];
    let mut source = 1u64;
    // A voicemail waiting for its beep to end, and one recording.
    let mut armed: Option<(PathBuf, VoicemailOptions)> = None;
    let mut recording: Option<(VoicemailRecorder, Duration)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = started.elapsed();
                let (frame, src) = match playout.next_frame() {
                    Some(f) => (f, source),
                    None => (SILENCE, 0),
                };
                payload.clear();
                target.law.encode(&frame, &mut payload);
                let fields = stream.next_packet(now, &OutgoingFrame {
                    source: src,
                    timing: SourceTiming::Local,
                    samples: 160,
                    marker: false,
                    payload_type: target.payload_type,
                    payload_len: payload.len(),
                });
                if let Ok(n) = write_rtp(&mut packet, &fields, &payload) {
                    let to = peer.rtp.unwrap_or(target.remote);
                    if let Err(e) = io.send_rtp(&packet[..n], to) {
                        debug!(error = %e, "prompt RTP send");
                    }
                }
                while let Some(ev) = playout.poll_event() {
                    let ev = match ev {
                        PlayoutEvent::Finished(n) if &*n == BEEP => {
                            if let Some((path, options)) = armed.take() {
                                recording = start_recording(&path, options, now);
                            }
                            continue;
                        }
                        PlayoutEvent::Finished(n) => PlayerEvent::Finished(n.to_string()),
                        PlayoutEvent::Interrupted(n) => PlayerEvent::Interrupted(n.to_string()),
                    };
                    events.send(ev).ok();
                }
                if let Some(key) = keys.poll(now) {
                    if report_key(&mut playout, &events, key.to_char()) == '#' {
                        // '#' ends a voicemail (the prompt says so).
                        end_recording(recording.take(), &events).await;
                    }
                }
            }
            r = io.recv_rtp(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                // Only the leg's own source may press keys.
                if !peer.admit_rtp(from, started.elapsed()) {
                    continue;
                }
                let Ok(rtp) = RtpHeader::parse(&buf[..n]) else { continue };
                let now = started.elapsed();
                if Some(rtp.payload_type) == target.telephone_event {
                    for key in keys.read_event(now, rtp.timestamp, rtp.marker, rtp.payload) {
                        if report_key(&mut playout, &events, key.to_char()) == '#' {
                            // '#' ends a voicemail (the prompt says so).
                            end_recording(recording.take(), &events).await;
                        }
                    }
                } else if rtp.payload_type == target.payload_type {
                    heard.clear();
                    target.law.decode(rtp.payload, &mut heard);
                    for key in keys.read_audio(now, &heard) {
                        if report_key(&mut playout, &events, key.to_char()) == '#' {
                            // '#' ends a voicemail (the prompt says so).
                            end_recording(recording.take(), &events).await;
                        }
                    }
                    let ended = recording.as_mut().is_some_and(|(r, since)| {
                        matches!(r.push(now.saturating_sub(*since), &heard), VoicemailStatus::Ended(_))
                    });
                    if ended {
                        end_recording(recording.take(), &events).await;
                    }
                }
            }
            c = commands.recv() => match c {
                Some(Command::Play(p)) => {
                    source += 1;
                    playout.play(p);
                }
                Some(Command::Queue(p)) => playout.queue(p),
                Some(Command::Loop(on)) => playout.set_loop(on),
                Some(Command::InterruptOnKey(on)) => playout.interrupt_on_key(on),
                Some(Command::Stop) => playout.stop(),
                Some(Command::InfoKey(key)) => {
                    let now = started.elapsed();
                    if let Some(key) = keys.read_info(now, key) {
                        if report_key(&mut playout, &events, key.to_char()) == '#' {
                            // '#' ends a voicemail (the prompt says so).
                            end_recording(recording.take(), &events).await;
                        }
                    }
                }
                Some(Command::RecordVoicemail(path, options, with_beep)) => {
                    if with_beep {
                        source += 1;
                        playout.play(Prompt::from_pcm(BEEP, beep()));
                        armed = Some((path, options));
                    } else {
                        recording = start_recording(&path, options, started.elapsed());
                    }
                }
                Some(Command::Finish) | None => {
                    // A caller who hangs up after speaking keeps the message.
                    end_recording(recording.take(), &events).await;
                    return Some(Continuation { stream, epoch: started, keys, latched: peer.latched() });
                }
            },
        }
    }
}

/// The beep before a voicemail (never reported as a prompt).
const BEEP: &str = "__voicemail_beep";

fn start_recording(
    path: &std::path::Path,
    options: VoicemailOptions,
    now: Duration,
) -> Option<(VoicemailRecorder, Duration)> {
    match VoicemailRecorder::start(path, options) {
        Ok(r) => {
            tracing::info!(path = %path.display(), "recording a voicemail");
            Some((r, now))
        }
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "cannot record the voicemail");
            None
        }
    }
}

/// Finish a voicemail off the async threads and report it.
async fn end_recording(
    recording: Option<(VoicemailRecorder, Duration)>,
    events: &mpsc::UnboundedSender<PlayerEvent>,
) {
    let Some((r, _)) = recording else { return };
    let finished = tokio::task::spawn_blocking(move || r.finish()).await;
    let event = match finished {
        Ok(Ok(Some(meta))) => {
            tracing::info!(
                path = %meta.path().display(),
                secs = meta.duration().as_secs_f64(),
                sha256 = %meta.sha256(),
                "voicemail saved"
            );
            PlayerEvent::Voicemail {
                path: Some(meta.path().display().to_string()),
                secs: meta.duration().as_secs() as u32,
            }
        }
        Ok(Ok(None)) => PlayerEvent::Voicemail {
            path: None,
            secs: 0,
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "voicemail could not be finished");
            PlayerEvent::Voicemail {
                path: None,
                secs: 0,
            }
        }
        Err(_) => PlayerEvent::Voicemail {
            path: None,
            secs: 0,
        },
    };
    events.send(event).ok();
}

fn report_key(
    playout: &mut Playout,
    events: &mpsc::UnboundedSender<PlayerEvent>,
    key: char,
) -> char {
    playout.on_key();
    while let Some(PlayoutEvent::Interrupted(n)) = playout.poll_event() {
        events.send(PlayerEvent::Interrupted(n.to_string())).ok();
    }
    events.send(PlayerEvent::Key(key)).ok();
    key
}
