//! The recording side of a running relay: each main leg's audio placed
//! in the call recording's [`ChannelAligner`] (caller left, the other
//! side right) by media time, drained [`RECORD_DELAY`] behind arrival so
//! jittered packets land in place, into the recording's chunk, which goes
//! to the writer pool once it holds a write's worth (issue 16 "Media at
//! the limit": the aligner's queues are sized for what they hold,
//! [`QUEUE_HOLD`], and the chunk is the recording's only write buffer).
//!
//! What is placed is the recording's own kind of sample (issue 16 item 3:
//! `alaw` recordings are "wire-exact G.711 stereo WAV, half the bytes, no
//! decode on the hot path"): for `pcm16` and `opus`, each packet decoded to
//! linear PCM; for `alaw`, an A-law leg's payload bytes as they came (the
//! file's data is the wire's bytes), a μ-law leg's bytes through
//! `media::codec`'s μ→A table, and the mix (supervision, three-way calls)
//! A-law-encoded once as it is placed. Why a table for μ-law: one lookup a
//! byte instead of a decode and an encode, and the table is built (at
//! compile time) from the same decode and encode, so the file is byte for
//! byte what decoding to linear and encoding to A-law would have written.
//!
//! A call has one recording from its first answer to its end
//! (REQUIREMENTS §4 "全程录音"), but may pass through several relays (a
//! blind transfer bridges the caller to a second agent): the open
//! [`CallRecording`] is lent to each relay ([`Recorder`]) and handed back
//! when the relay stops, its media time counted from the recording's own
//! start, so the time between two relays is silence in the file and the
//! second agent is heard where the call's clock says.

use std::time::Duration;

use tokio::time::Instant;

use super::LegFormat;
use crate::media::codec::{transcode_in_place, Codec, G711};
use crate::media::fork::ForkTap;
use crate::media::mixer::Frame;
use crate::media::recorder::{
    Channel, ChannelAligner, RecordingFormat, RecordingHandle, RecordingMeta, Sample,
};
use crate::media::rtp::RtpHeader;

/// How far behind arrival time the recording is drained, so jittered
/// packets still land in place.
pub(super) const RECORD_DELAY: Duration = Duration::from_millis(200);

/// How often the recording is drained to its writer.
pub(super) const DRAIN_EVERY: Duration = Duration::from_millis(100);

/// What the aligner's queues are sized for ([`ChannelAligner::with_hold`],
/// issue 16 "Media at the limit"): just before a drain they hold the
/// jitter allowance, a drain interval and the packet that just came
/// (≈ 320 ms); the rest is room for a late drain tick or packets placed a
/// little ahead of arrival. Past it a queue grows to what it needs.
pub(super) const QUEUE_HOLD: Duration = Duration::from_millis(400);

/// A call's open recording: the writer, the aligner and the instant that
/// is media time zero. Lent to a relay, finished once when the call ends.
pub struct CallRecording {
    handle: RecordingHandle,
    track: Track,
    epoch: Instant,
    /// The call's live audio fork (issue 18 §1), fed what is drained.
    fork: Option<ForkTap>,
}

/// The aligner of the recording's kind of sample.
enum Track {
    /// `pcm16` and `opus`: linear PCM.
    Linear(ChannelAligner<i16>),
    /// `alaw`: A-law bytes, the wire's own.
    Alaw(ChannelAligner<u8>),
}

impl std::fmt::Debug for CallRecording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecording")
            .field("path", &self.handle.path())
            .finish()
    }
}

impl CallRecording {
    /// A recording whose media time zero is now.
    pub fn new(handle: RecordingHandle) -> Self {
        let track = match handle.format() {
            RecordingFormat::Alaw => {
                Track::Alaw(ChannelAligner::new_alaw(8000).with_hold(QUEUE_HOLD))
            }
            RecordingFormat::Pcm16 | RecordingFormat::Opus => {
                Track::Linear(ChannelAligner::new(8000).with_hold(QUEUE_HOLD))
            }
        };
        Self {
            handle,
            track,
            epoch: Instant::now(),
            fork: None,
        }
    }

    /// Stream what the recording drains from now on to `fork` (a second
    /// fork replaces the first, which stops).
    pub fn fork(&mut self, fork: ForkTap) {
        self.fork = Some(fork);
    }

    /// Stop the call's fork, if any (its receiver is sent `stop`).
    pub fn unfork(&mut self) -> bool {
        self.fork.take().is_some()
    }

    /// The file being written.
    pub fn path(&self) -> &std::path::Path {
        self.handle.path()
    }

    fn drain(&mut self, up_to: Duration) {
        let fork = &mut self.fork;
        match &mut self.track {
            Track::Linear(aligner) => drain_to(aligner, &mut self.handle, up_to, |s| {
                if let Some(f) = fork {
                    f.push_linear(s);
                }
            }),
            Track::Alaw(aligner) => drain_to(aligner, &mut self.handle, up_to, |s| {
                if let Some(f) = fork {
                    f.push_alaw(s);
                }
            }),
        }
    }

    /// Write what is buffered, and silence up to now, the last chunk
    /// sent full or not: the writer, ready to close.
    fn close(mut self) -> RecordingHandle {
        self.drain(self.epoch.elapsed());
        self.handle.flush();
        self.handle
    }

    /// Close the file, off the async threads.
    pub async fn finish(self) -> Option<RecordingMeta> {
        let handle = self.close();
        let path = handle.path().to_path_buf();
        match tokio::task::spawn_blocking(move || handle.finish()).await {
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

    /// Close the file from a synchronous context (a call dropped without
    /// finishing it): on a blocking thread, nobody waiting.
    pub fn finish_detached(self) {
        let handle = self.close();
        let path = handle.path().to_path_buf();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || {
                    if let Err(e) = handle.finish() {
                        tracing::warn!(error = %e, path = %path.display(), "recording could not be finished");
                    }
                });
            }
            Err(_) => drop(handle),
        }
    }
}

/// What is older than `up_to` into the recording's chunk, which goes to
/// the writer once full (a full queue drops it, counted, never the call
/// audio); each piece drained also to `tee` (the fork).
fn drain_to<S: Sample>(
    aligner: &mut ChannelAligner<S>,
    handle: &mut RecordingHandle,
    up_to: Duration,
    mut tee: impl FnMut(&[S]),
) {
    handle.fill::<S>(|chunk, room| {
        let from = chunk.len();
        let n = aligner.drain_at_most(up_to, room, chunk);
        if let Some(piece) = chunk.get(from..) {
            tee(piece);
        }
        n
    });
}

/// The recording side of a running relay: the call's recording lent to it.
pub(super) struct Recorder {
    recording: CallRecording,
    /// The caller's and the other side's formats.
    formats: [LegFormat; 2],
    /// A packet decoded (linear recordings).
    pcm: Vec<i16>,
    /// A μ-law packet or a mixed frame as A-law (`alaw` recordings).
    alaw: Vec<u8>,
    /// Per channel: `(ssrc, rtp timestamp, call time)` the placement of
    /// packets is anchored to.
    anchors: [Option<(u32, u32, Duration)>; 2],
    /// Media time of the relay's start (the relay counts from its start).
    offset: Duration,
}

/// A packet whose RTP-timestamp position strays this far from its arrival
/// re-anchors the channel (a new talkspurt after hold, a clock jump).
pub(super) const REANCHOR: Duration = Duration::from_millis(150);

impl Recorder {
    /// Lend `recording` to a relay started at `started` whose legs carry
    /// `formats` (caller, other side). What was not recorded before (the
    /// caller rang the next agent) is silence up to now.
    pub(super) fn lend(
        mut recording: CallRecording,
        started: Instant,
        formats: [LegFormat; 2],
    ) -> Self {
        let offset = started.saturating_duration_since(recording.epoch);
        recording.drain(offset);
        Self {
            recording,
            formats,
            // Grown at first use: an A-law recording of A-law legs uses
            // neither (issue 16 "Media at the limit").
            pcm: Vec::new(),
            alaw: Vec::new(),
            anchors: [None, None],
            offset,
        }
    }

    /// Place a packet by its RTP timestamp (so arrival jitter neither
    /// squeezes nor stretches the audio), anchored to arrival time (since
    /// the relay started).
    pub(super) fn push(&mut self, channel: Channel, arrival: Duration, rtp: &RtpHeader<'_>) {
        let arrival = arrival + self.offset;
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
        match (&mut self.recording.track, format.law) {
            (Track::Linear(aligner), law) => {
                self.pcm.clear();
                law.decode(rtp.payload, &mut self.pcm);
                aligner.push(channel, at, &self.pcm);
            }
            // Wire-exact: the payload is the file's data.
            (Track::Alaw(aligner), G711::Alaw) => aligner.push(channel, at, rtp.payload),
            (Track::Alaw(aligner), G711::Ulaw) => {
                self.alaw.clear();
                self.alaw.extend_from_slice(rtp.payload);
                transcode_in_place(G711::Ulaw, G711::Alaw, &mut self.alaw);
                aligner.push(channel, at, &self.alaw);
            }
        }
    }

    /// A mixed tick (time since the relay started): the caller's voice and
    /// what the caller heard.
    pub(super) fn push_mixed(&mut self, at: Duration, (left, right): (Frame, Frame)) {
        let at = at + self.offset;
        match &mut self.recording.track {
            Track::Linear(aligner) => {
                aligner.push(Channel::Caller, at, &left);
                aligner.push(Channel::Agent, at, &right);
            }
            Track::Alaw(aligner) => {
                for (channel, frame) in [(Channel::Caller, &left), (Channel::Agent, &right)] {
                    self.alaw.clear();
                    G711::Alaw.encode(frame, &mut self.alaw);
                    aligner.push(channel, at, &self.alaw);
                }
            }
        }
        // Packets after the mix re-anchor to arrival time.
        self.anchors = [None, None];
    }

    /// Write out what is older than `up_to` (time since the relay started).
    pub(super) fn drain(&mut self, up_to: Duration) {
        self.recording.drain(up_to + self.offset);
    }

    /// The relay stops at `at` (since it started): the recording goes back
    /// to the call, everything heard so far written.
    pub(super) fn give_back(mut self, at: Duration) -> CallRecording {
        self.drain(at);
        self.recording
    }
}

#[cfg(test)]
#[path = "recording_tests.rs"]
mod tests;
