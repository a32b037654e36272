//! The caller's media session as the call holds it (issue 13 §3 "one
//! media session per call"): the handle of the call's
//! [`CallerSession`](super::session::CallerSession), which owns the caller
//! leg's RTP ports on a shared IO worker from the first SDP answer to the
//! call's end, together with what must survive every hand-over of that
//! leg:
//!
//! * our outgoing RTP stream toward the caller (one SSRC, continuous
//!   sequence numbers and timestamps: RFC 3550 §5.1, so the phone never
//!   drops audio when prompts give way to an agent and back);
//! * the caller's keys ([`KeyReader`](super::keys::KeyReader)): each press
//!   detected and de-duplicated once, whichever mode read its packets
//!   (a key pressed in the IVR is never read again by the queue);
//! * the call's recording ([`CallRecording`]): one file from the first
//!   answer to the end, across blind transfers (REQUIREMENTS §4 "全程录音"),
//!   kept here between conversations and lent to each relay.
//!
//! The call switches the session between playing ([`CallerMedia::play`] /
//! [`CallerMedia::end_play`]: IVR prompts, queue music, voicemail) and
//! bridged ([`CallerMedia::bridge`] / [`CallerMedia::unbridge`]); the
//! stream, keys and latch pass between the modes inside the session, so no
//! path can lose them or the ports.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::warn;

use super::player::{Continuation, Player, PlayerEvent, Target};
use super::ports::PortPair;
use super::recorder::{RecordingHandle, RecordingMeta};
use super::relay::{CallRecording, LegFormat, RelayEvent, RelayHandle, RelayOptions, RelayReport};
use super::session::{CallerSession, Command, Link};

/// The caller leg's media for the whole call. See the module docs.
pub struct CallerMedia {
    ports: Arc<PortPair>,
    target: Target,
    /// The session on its IO worker (`None`: the workers could not start).
    link: Option<Link>,
    /// The call's recording while no relay holds it.
    recording: Option<CallRecording>,
}

impl std::fmt::Debug for CallerMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerMedia")
            .field("port", &self.ports.port())
            .field("remote", &self.target.remote)
            .field("recording", &self.recording)
            .finish()
    }
}

impl CallerMedia {
    /// The caller's media on `ports`, sending to `target` (what its SDP
    /// negotiated), with a fresh stream and no keys seen.
    pub fn new(ports: PortPair, target: Target) -> Self {
        super::relay::key_leg(&ports, target.srtp.as_ref(), "caller");
        let ports = Arc::new(ports);
        let link = CallerSession::start(ports.clone(), target, Continuation::fresh());
        Self {
            ports,
            target,
            link,
            recording: None,
        }
    }

    /// Our RTP port for the caller.
    pub fn port(&self) -> u16 {
        self.ports.port()
    }

    /// Where and how we send to the caller.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The caller's format, as the relay takes it.
    pub fn format(&self) -> LegFormat {
        LegFormat {
            law: self.target.law,
            payload_type: self.target.payload_type,
            telephone_event: self.target.telephone_event,
            srtp: self.target.srtp,
            dtls: None,
        }
    }

    /// The caller's media moved (a re-INVITE): the session sends there
    /// and latches afresh, whatever it is doing.
    pub fn set_remote(&mut self, remote: SocketAddr) {
        self.target.remote = remote;
        if let Some(l) = &self.link {
            l.send(Command::Remote(remote));
        }
    }

    /// The caller's SRTP keys changed (a re-INVITE that rekeyed): the
    /// ports use them now, and whoever sends next keys with them.
    pub fn set_keys(&mut self, keys: super::sdp::SrtpKeys) {
        self.target.srtp = Some(keys);
        super::relay::key_leg(&self.ports, Some(&keys), "caller");
    }

    /// Take the call's recording (opened once, at the first answer).
    pub fn record(&mut self, recording: RecordingHandle) {
        if let Some(old) = self.recording.replace(CallRecording::new(recording)) {
            warn!(path = %old.path().display(), "a second recording for one call: the first is closed");
            old.finish_detached();
        }
    }

    /// Stream the call's audio to `tap` (issue 18 §1), from its recording's
    /// drain; `false` (the tap dropped, its fork stopped) when the call has
    /// no recording here.
    pub fn fork(&mut self, tap: crate::media::fork::ForkTap) -> bool {
        match &mut self.recording {
            Some(r) => {
                r.fork(tap);
                true
            }
            None => false,
        }
    }

    /// The call has an open recording (a later conversation continues it).
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Play to the caller (comfort silence until told to play), continuing
    /// the stream and the keys. Stop with [`Self::end_play`].
    pub fn play(&mut self, events: mpsc::UnboundedSender<PlayerEvent>) -> Player {
        Player::start(self.link.clone(), events)
    }

    /// Stop `player` at once; the session keeps the stream and keys.
    pub async fn end_play(&mut self, player: Player) {
        player.finish().await;
    }

    /// Bridge the caller to `b` (peer `b_remote`): the relay continues the
    /// caller's stream and keys, and records into the call's recording;
    /// `options` says the rest (its caller-side fields are filled in here).
    /// Give it back with [`Self::unbridge`] when the caller goes on; when
    /// the call ends, [`RelayHandle::stop`] finishes the recording.
    pub fn bridge(
        &mut self,
        b: PortPair,
        b_remote: Option<SocketAddr>,
        mut options: RelayOptions,
        events: mpsc::UnboundedSender<RelayEvent>,
    ) -> RelayHandle {
        options.a_format = self.format();
        options.recording = self.recording.take();
        RelayHandle::bridge(
            self.link.clone(),
            Some(self.target.remote),
            (b, b_remote),
            options,
            events,
        )
    }

    /// Stop `relay`: the caller goes on (a survey, the next agent). With
    /// `keep_recording` the recording stays open for the next
    /// conversation; otherwise it is finished and in the report.
    pub async fn unbridge(&mut self, relay: RelayHandle, keep_recording: bool) -> RelayReport {
        let mut report = relay.hand_back(keep_recording).await;
        if let Some(r) = report.open_recording.take() {
            self.recording = Some(r);
        }
        report
    }

    /// Finish the call's recording, if one is open (the call ends after a
    /// conversation that kept it open).
    pub async fn finish_recording(&mut self) -> Option<RecordingMeta> {
        self.recording.take()?.finish().await
    }
}

impl Drop for CallerMedia {
    fn drop(&mut self) {
        if let Some(r) = self.recording.take() {
            warn!(path = %r.path().display(), "call ended with its recording open: closing it");
            r.finish_detached();
        }
    }
}

#[cfg(test)]
#[path = "caller_tests.rs"]
mod tests;
