//! The player's state as the caller's media session runs it on a shared IO
//! worker ([`crate::media::session`], issue 13 §3, issue 16 item 1):
//! prompts and music on hold paced one 20 ms G.711 frame per tick onto the
//! leg's one continuous RTP stream, comfort silence between prompts (NAT
//! bindings and jitter buffers stay warm), keys from RFC 4733 events, from
//! tones in the leg's audio (Goertzel) and from SIP INFO, each press
//! reported once whichever paths carried it ([`KeyReader`]), and the
//! leg's voicemail.
//!
//! No task, no wait, no clock read: the session feeds it datagrams,
//! commands and ticks with the time. Sending never waits (a full socket
//! buffer drops the frame, as the network would). A voicemail file is
//! opened before its command reaches the worker and finished off the
//! worker (closing writes to disk): [`PlayerCore`] hands the open
//! recorder to [`finish_voicemail`].

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use super::{Continuation, PlayerEvent, Target};
use crate::media::codec::Codec;
use crate::media::dtmf::DtmfKey;
use crate::media::keys::{Holder, KeyReader};
use crate::media::latch::Peer;
use crate::media::ports::PortPair;
use crate::media::prompts::{Playout, PlayoutEvent, Prompt};
use crate::media::rtp::{write_rtp, OutgoingFrame, OutgoingStream, RtpHeader, SourceTiming};
use crate::media::voicemail::{beep, VoicemailRecorder, VoicemailStatus};

/// What a [`Player`](super::Player) asks of its core.
pub(crate) enum PlayerCommand {
    /// Record a voicemail into this (open) recorder, after a beep when
    /// `true`.
    RecordVoicemail(Box<VoicemailRecorder>, bool),
    Play(Prompt),
    Queue(Prompt),
    Loop(bool),
    InterruptOnKey(bool),
    Stop,
    InfoKey(DtmfKey),
}

/// One frame of silence per tick between prompts.
const SILENCE: [i16; 160] = [0; 160];

/// The beep before a voicemail (never reported as a prompt).
const BEEP: &str = "__voicemail_beep";

/// A voicemail being recorded: the recorder and the media time it began.
type Recording = (Box<VoicemailRecorder>, Duration);

/// The player's state on one leg. See the module docs.
pub(crate) struct PlayerCore {
    target: Target,
    stream: OutgoingStream,
    epoch: Instant,
    keys: KeyReader,
    peer: Peer,
    playout: Playout,
    events: mpsc::UnboundedSender<PlayerEvent>,
    /// Where voicemails are finished (the runtime that started the call).
    runtime: Option<tokio::runtime::Handle>,
    /// The prompt generation (a new prompt is a new source: marker bit).
    source: u64,
    /// A voicemail waiting for its beep to end, and one being recorded.
    armed: Option<Box<VoicemailRecorder>>,
    recording: Option<Recording>,
    heard: Vec<i16>,
    payload: Vec<u8>,
}

impl PlayerCore {
    /// Take the leg's media over from whoever held it (`continued`), to
    /// send to `target`.
    pub(crate) fn resume(
        continued: Continuation,
        target: Target,
        events: mpsc::UnboundedSender<PlayerEvent>,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Self {
        let Continuation {
            stream,
            epoch,
            mut keys,
            latched,
        } = continued;
        // Whoever held the media before is done with it: a press it began
        // is its own (KeyReader), a press from now on is ours.
        keys.hand_over(Holder::Reader);
        Self {
            target,
            stream,
            epoch,
            keys,
            // Prompts go where the caller's RTP comes from (NAT), keys only
            // from there (strict latching, `media::latch`).
            peer: Peer::resume(Some(target.remote), latched),
            playout: Playout::new(),
            events,
            runtime,
            source: 1,
            armed: None,
            recording: None,
            heard: Vec::with_capacity(160),
            payload: Vec::with_capacity(160),
        }
    }

    /// Where it reports.
    pub(crate) fn events(&self) -> mpsc::UnboundedSender<PlayerEvent> {
        self.events.clone()
    }

    /// The leg's media moved (a re-INVITE): send there and latch afresh.
    pub(crate) fn set_remote(&mut self, remote: SocketAddr) {
        self.target.remote = remote;
        self.peer = Peer::new(Some(remote));
    }

    fn at(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.epoch)
    }

    /// The worker's tick: the next frame to the leg, finished prompts and
    /// keys the tone detector completed reported.
    pub(crate) fn on_tick(&mut self, pair: &PortPair, now: Instant) {
        let at = self.at(now);
        let (frame, src) = match self.playout.next_frame() {
            Some(f) => (f, self.source),
            None => (SILENCE, 0),
        };
        self.payload.clear();
        self.target.law.encode(&frame, &mut self.payload);
        let fields = self.stream.next_packet(
            at,
            &OutgoingFrame {
                source: src,
                timing: SourceTiming::Local,
                samples: 160,
                marker: false,
                payload_type: self.target.payload_type,
                payload_len: self.payload.len(),
            },
        );
        let mut packet = [0u8; 12 + 160];
        if let Ok(n) = write_rtp(&mut packet, &fields, &self.payload) {
            let to = self.peer.rtp.unwrap_or(self.target.remote);
            if let Err(e) = pair.send_rtp(&packet[..n], to) {
                debug!(error = %e, "prompt RTP send");
            }
        }
        while let Some(ev) = self.playout.poll_event() {
            let ev = match ev {
                PlayoutEvent::Finished(n) if &*n == BEEP => {
                    if let Some(r) = self.armed.take() {
                        self.recording = Some((r, at));
                    }
                    continue;
                }
                PlayoutEvent::Finished(n) => PlayerEvent::Finished(n.to_string()),
                PlayoutEvent::Interrupted(n) => PlayerEvent::Interrupted(n.to_string()),
            };
            self.events.send(ev).ok();
        }
        if let Some(key) = self.keys.poll(at) {
            self.pressed(key);
        }
    }

    /// An RTP datagram from the leg (already opened: SRTP removed).
    pub(crate) fn on_rtp(&mut self, packet: &[u8], from: SocketAddr, now: Instant) {
        let at = self.at(now);
        // Only the leg's own source may press keys.
        if !self.peer.admit_rtp(from, at) {
            return;
        }
        let Ok(rtp) = RtpHeader::parse(packet) else {
            return;
        };
        if Some(rtp.payload_type) == self.target.telephone_event {
            for key in self
                .keys
                .read_event(at, rtp.timestamp, rtp.marker, rtp.payload)
            {
                self.pressed(key);
            }
        } else if rtp.payload_type == self.target.payload_type {
            self.heard.clear();
            self.target.law.decode(rtp.payload, &mut self.heard);
            for key in self.keys.read_audio(at, &self.heard) {
                self.pressed(key);
            }
            let ended = self.recording.as_mut().is_some_and(|(r, since)| {
                matches!(
                    r.push(at.saturating_sub(*since), &self.heard),
                    VoicemailStatus::Ended(_)
                )
            });
            if ended {
                self.end_voicemail();
            }
        }
    }

    /// A command from the player's handle.
    pub(crate) fn on_command(&mut self, command: PlayerCommand, now: Instant) {
        match command {
            PlayerCommand::Play(p) => {
                self.source += 1;
                self.playout.play(p);
            }
            PlayerCommand::Queue(p) => self.playout.queue(p),
            PlayerCommand::Loop(on) => self.playout.set_loop(on),
            PlayerCommand::InterruptOnKey(on) => self.playout.interrupt_on_key(on),
            PlayerCommand::Stop => self.playout.stop(),
            PlayerCommand::InfoKey(key) => {
                if let Some(key) = self.keys.read_info(self.at(now), key) {
                    self.pressed(key);
                }
            }
            PlayerCommand::RecordVoicemail(recorder, with_beep) => {
                if with_beep {
                    self.source += 1;
                    self.playout.play(Prompt::from_pcm(BEEP, beep()));
                    self.armed = Some(recorder);
                } else {
                    tracing::info!(path = %recorder.path().display(), "recording a voicemail");
                    self.recording = Some((recorder, self.at(now)));
                }
            }
        }
    }

    /// A key pressed on the leg: it cuts a prompt that allows it, is
    /// reported, and `#` ends a voicemail (the prompt says so).
    fn pressed(&mut self, key: DtmfKey) {
        let key = key.to_char();
        self.playout.on_key();
        while let Some(PlayoutEvent::Interrupted(n)) = self.playout.poll_event() {
            self.events
                .send(PlayerEvent::Interrupted(n.to_string()))
                .ok();
        }
        self.events.send(PlayerEvent::Key(key)).ok();
        if key == '#' {
            self.end_voicemail();
        }
    }

    /// The voicemail ended (silence, its longest length, `#`): finished
    /// off the worker and reported.
    fn end_voicemail(&mut self) {
        if let Some((r, _)) = self.recording.take() {
            let events = self.events.clone();
            off_worker(self.runtime.as_ref(), move || {
                events.send(voicemail_event(r)).ok();
            });
        }
    }

    /// Stop playing: the leg's stream, keys and latch for whoever sends
    /// next, and the voicemail being recorded, if any (a caller who hangs
    /// up after speaking keeps the message: [`finish_voicemail`]).
    pub(crate) fn finish(self) -> (Continuation, Option<Box<VoicemailRecorder>>) {
        let continuation = Continuation {
            stream: self.stream,
            epoch: self.epoch,
            keys: self.keys,
            latched: self.peer.latched(),
        };
        // A voicemail still waiting for its beep holds an empty file.
        let open = self.recording.map(|(r, _)| r).or(self.armed);
        (continuation, open)
    }
}

/// Run blocking work (finishing a file) off the IO worker: on the call's
/// runtime's blocking pool, or on a thread of its own without one (tests).
pub(crate) fn off_worker(
    runtime: Option<&tokio::runtime::Handle>,
    f: impl FnOnce() + Send + 'static,
) {
    match runtime {
        Some(rt) => {
            rt.spawn_blocking(f);
        }
        None => {
            if let Err(e) = std::thread::Builder::new()
                .name("media-finish".into())
                .spawn(f)
            {
                tracing::error!(error = %e, "cannot start a thread to finish a media file");
            }
        }
    }
}

/// Finish a voicemail off the async threads and report it (see
/// [`voicemail_event`]).
pub(crate) async fn finish_voicemail(
    recording: Option<Box<VoicemailRecorder>>,
    events: &mpsc::UnboundedSender<PlayerEvent>,
) {
    let Some(r) = recording else { return };
    let event = tokio::task::spawn_blocking(move || voicemail_event(r))
        .await
        .unwrap_or(PlayerEvent::Voicemail {
            path: None,
            secs: 0,
        });
    events.send(event).ok();
}

/// Finish a voicemail (blocking: the writer is joined, the file closed)
/// and say what became of it: an empty one, nothing said, is discarded
/// and reported without a path.
pub(crate) fn voicemail_event(r: Box<VoicemailRecorder>) -> PlayerEvent {
    match r.finish() {
        Ok(Some(meta)) => {
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
        Ok(None) => PlayerEvent::Voicemail {
            path: None,
            secs: 0,
        },
        Err(e) => {
            tracing::warn!(error = %e, "voicemail could not be finished");
            PlayerEvent::Voicemail {
                path: None,
                secs: 0,
            }
        }
    }
}
