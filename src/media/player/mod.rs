//! Plays prompts and music on hold to the caller and listens to its keys
//! (issue "Media engine" §4 prompts, §3 DTMF; used by the IVR and while a
//! caller waits in a queue). A [`Player`] is a handle on the caller's media
//! session ([`crate::media::session`]) while the session plays: the work is
//! [`core::PlayerCore`]'s, on the session's IO worker, one 20 ms G.711
//! frame per tick with one SSRC and continuous sequence/timestamps across
//! prompts, comfort silence between them, keys from RFC 4733 events, tones
//! (Goertzel) and SIP INFO, each press reported once. [`Player::finish`]
//! stops at once and the session keeps the leg's stream and keys for the
//! bridge: an agent's answer never waits for a prompt to end.

pub(crate) mod core;

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::sync::mpsc;

use self::core::{finish_voicemail, PlayerCommand};
use super::codec::G711;
use super::dtmf::DtmfKey;
use super::keys::KeyReader;
use super::prompts::Prompt;
use super::rtp::OutgoingStream;
use super::session::{Command, Link};
use super::voicemail::{VoicemailOptions, VoicemailRecorder};

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

/// A running player on the caller's media session; [`Player::finish`]
/// (or dropping it) stops it.
pub struct Player {
    link: Option<Link>,
    events: mpsc::UnboundedSender<PlayerEvent>,
    done: bool,
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
        if !self.done {
            // The session keeps the stream; a voicemail is kept too.
            self.send(Command::EndPlay(None));
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
    /// Start playing nothing (comfort silence) on the session behind
    /// `link`, reporting to `events`.
    pub(crate) fn start(link: Option<Link>, events: mpsc::UnboundedSender<PlayerEvent>) -> Self {
        let player = Self {
            link,
            events: events.clone(),
            done: false,
        };
        player.send(Command::Play(events));
        player
    }

    fn send(&self, command: Command) -> bool {
        self.link.as_ref().is_some_and(|l| l.send(command))
    }

    fn command(&self, command: PlayerCommand) {
        self.send(Command::Player(command));
    }

    /// Replace whatever plays with `prompt`.
    pub fn play(&self, prompt: Prompt) {
        self.command(PlayerCommand::Play(prompt));
    }

    /// Play `prompt` after what is queued.
    pub fn queue(&self, prompt: Prompt) {
        self.command(PlayerCommand::Queue(prompt));
    }

    /// Loop the queue (music on hold).
    pub fn set_loop(&self, on: bool) {
        self.command(PlayerCommand::Loop(on));
    }

    /// Let a key cut the current prompt (barge-in).
    pub fn interrupt_on_key(&self, on: bool) {
        self.command(PlayerCommand::InterruptOnKey(on));
    }

    /// A key the leg sent as SIP INFO (RFC 6086 `application/dtmf-relay`):
    /// it goes through the same combiner as the RTP paths.
    pub fn info_key(&self, key: DtmfKey) {
        self.command(PlayerCommand::InfoKey(key));
    }

    /// Record the leg's audio as a voicemail at `path` (after a beep when
    /// `beep`), until silence, the longest length, `#`, or [`Self::finish`];
    /// reported as [`PlayerEvent::Voicemail`] (without a path when the file
    /// cannot be created: the flow goes on as after an empty message).
    pub fn record_voicemail(&self, path: PathBuf, options: VoicemailOptions, beep: bool) {
        match VoicemailRecorder::start(&path, options) {
            Ok(r) => self.command(PlayerCommand::RecordVoicemail(Box::new(r), beep)),
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "cannot record the voicemail");
                self.events
                    .send(PlayerEvent::Voicemail {
                        path: None,
                        secs: 0,
                    })
                    .ok();
            }
        }
    }

    /// Stop playing (comfort silence continues).
    pub fn stop(&self) {
        self.command(PlayerCommand::Stop);
    }

    /// Stop at once; the session keeps the leg's RTP stream and keys for
    /// whoever sends next. A voicemail being recorded is finished and
    /// reported before this returns (a caller who hangs up after speaking
    /// keeps the message).
    pub async fn finish(mut self) {
        self.done = true;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.send(Command::EndPlay(Some(tx))) {
            return;
        }
        if let Ok(open) = rx.await {
            finish_voicemail(open, &self.events).await;
        }
    }
}
