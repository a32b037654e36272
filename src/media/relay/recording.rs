//! The recording side of a running relay: each main leg's audio decoded
//! into the recorder's [`ChannelAligner`] (caller left, the other side
//! right) placed by media time, drained [`RECORD_DELAY`] behind arrival
//! so jittered packets land in place, and handed to the writer thread.

use std::time::Duration;

use super::LegFormat;
use crate::media::codec::Codec;
use crate::media::mixer::Frame;
use crate::media::recorder::{Channel, ChannelAligner, RecordingHandle, RecordingMeta};
use crate::media::rtp::RtpHeader;

/// How far behind arrival time the recording is drained, so jittered
/// packets still land in place.
pub(super) const RECORD_DELAY: Duration = Duration::from_millis(200);

/// The recording side of a running relay.
pub(super) struct Recorder {
    pub(super) handle: RecordingHandle,
    /// The caller's and the other side's formats.
    pub(super) formats: [LegFormat; 2],
    pub(super) aligner: ChannelAligner,
    pub(super) pcm: Vec<i16>,
    /// Per channel: `(ssrc, rtp timestamp, call time)` the placement of
    /// packets is anchored to.
    pub(super) anchors: [Option<(u32, u32, Duration)>; 2],
}

/// A packet whose RTP-timestamp position strays this far from its arrival
/// re-anchors the channel (a new talkspurt after hold, a clock jump).
pub(super) const REANCHOR: Duration = Duration::from_millis(150);

impl Recorder {
    /// Place a packet by its RTP timestamp (so arrival jitter neither
    /// squeezes nor stretches the audio), anchored to arrival time.
    pub(super) fn push(&mut self, channel: Channel, arrival: Duration, rtp: &RtpHeader<'_>) {
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
    pub(super) fn push_mixed(&mut self, at: Duration, (left, right): (Frame, Frame)) {
        self.aligner.push(Channel::Caller, at, &left);
        self.aligner.push(Channel::Agent, at, &right);
        // Packets after the mix re-anchor to arrival time.
        self.anchors = [None, None];
    }

    pub(super) fn drain(&mut self, up_to: Duration) {
        let frames = self.aligner.drain_frames(up_to);
        if !frames.is_empty() {
            // A full queue drops the chunk (counted), never the call audio.
            let _ = self.handle.try_send(frames.into_flattened());
        }
    }

    pub(super) async fn finish(mut self, at: Duration) -> Option<RecordingMeta> {
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
