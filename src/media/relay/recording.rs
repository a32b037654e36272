//! The recording side of a running relay: each main leg's audio decoded
//! into the call recording's [`ChannelAligner`] (caller left, the other
//! side right) placed by media time, drained [`RECORD_DELAY`] behind
//! arrival so jittered packets land in place, and handed to the writer
//! thread.
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
use crate::media::codec::Codec;
use crate::media::mixer::Frame;
use crate::media::recorder::{Channel, ChannelAligner, RecordingHandle, RecordingMeta};
use crate::media::rtp::RtpHeader;

/// How far behind arrival time the recording is drained, so jittered
/// packets still land in place.
pub(super) const RECORD_DELAY: Duration = Duration::from_millis(200);

/// A call's open recording: the writer, the aligner and the instant that
/// is media time zero. Lent to a relay, finished once when the call ends.
pub struct CallRecording {
    handle: RecordingHandle,
    aligner: ChannelAligner,
    epoch: Instant,
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
        Self {
            handle,
            aligner: ChannelAligner::new(8000),
            epoch: Instant::now(),
        }
    }

    /// The file being written.
    pub fn path(&self) -> &std::path::Path {
        self.handle.path()
    }

    fn drain(&mut self, up_to: Duration) {
        let frames = self.aligner.drain_frames(up_to);
        if !frames.is_empty() {
            // A full queue drops the chunk (counted), never the call audio.
            let _ = self.handle.try_send(frames.into_flattened());
        }
    }

    /// Write what is buffered, and silence up to now: the writer, ready to
    /// close.
    fn close(mut self) -> RecordingHandle {
        self.drain(self.epoch.elapsed());
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

/// The recording side of a running relay: the call's recording lent to it.
pub(super) struct Recorder {
    recording: CallRecording,
    /// The caller's and the other side's formats.
    formats: [LegFormat; 2],
    pcm: Vec<i16>,
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
            pcm: Vec::with_capacity(160),
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
        self.pcm.clear();
        format.law.decode(rtp.payload, &mut self.pcm);
        self.recording.aligner.push(channel, at, &self.pcm);
    }

    /// A mixed tick (time since the relay started): the caller's voice and
    /// what the caller heard.
    pub(super) fn push_mixed(&mut self, at: Duration, (left, right): (Frame, Frame)) {
        let at = at + self.offset;
        self.recording.aligner.push(Channel::Caller, at, &left);
        self.recording.aligner.push(Channel::Agent, at, &right);
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
