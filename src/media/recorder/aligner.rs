//! The recording's pure core: [`ChannelAligner`] keeps the caller's and
//! the agent's channel on the call's wall clock through jitter, loss, hold
//! and transfers (gaps are silence, late samples dropped and counted),
//! pauses included (call recording issue; see the room's docs). No clock,
//! no I/O: media time comes in with every push and drain.

use std::collections::VecDeque;
use std::time::Duration;

use super::format::{index_to_time, time_to_index};

/// Which side of the call a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The citizen who called: the **left** channel.
    Caller,
    /// The agent, or whoever the other party is (IVR prompts, the party a
    /// call was transferred to): the **right** channel.
    Agent,
}

impl Channel {
    fn index(self) -> usize {
        match self {
            Channel::Caller => 0,
            Channel::Agent => 1,
        }
    }
}

/// Counters of what the aligner did with the audio it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlignerStats {
    /// Stereo frames emitted by [`ChannelAligner::drain_frames`].
    pub frames_drained: u64,
    /// Of those, frames silenced because recording was paused.
    pub paused_frames: u64,
    /// Samples dropped because their span had already been drained (they
    /// arrived later than the jitter allowance).
    pub late_samples: u64,
    /// Samples dropped because they lay further ahead of the drained
    /// position than [`ChannelAligner::max_ahead`] (a timestamp jump).
    pub future_samples: u64,
}

/// Lines the two legs of a call up on the call's wall clock (pure core:
/// time is an input).
///
/// See the module docs. All positions are sample indices at the aligner's
/// rate, counted from media time zero (recording start); `drained` is the
/// first frame not yet emitted, and each channel buffers the samples from
/// `drained` on (unwritten positions hold silence).
#[derive(Debug, Clone)]
pub struct ChannelAligner {
    rate: u32,
    drained: u64,
    chans: [VecDeque<i16>; 2],
    /// Closed paused spans `[start, end)`, not yet fully drained.
    pauses: Vec<(u64, u64)>,
    /// Start of the pause in force, if any.
    paused_since: Option<u64>,
    max_ahead: u64,
    stats: AlignerStats,
}

impl ChannelAligner {
    /// Default limit on how far ahead of the drained position a channel may
    /// buffer audio: 60 s. Bounds memory against a bogus timestamp jump.
    pub const DEFAULT_MAX_AHEAD: Duration = Duration::from_secs(60);

    /// An aligner for `sample_rate` Hz (8000 for
    /// [`CALL_WAV_SPEC`](super::CALL_WAV_SPEC)), at media time zero, not
    /// paused.
    pub fn new(sample_rate: u32) -> Self {
        ChannelAligner {
            rate: sample_rate,
            drained: 0,
            chans: [VecDeque::new(), VecDeque::new()],
            pauses: Vec::new(),
            paused_since: None,
            max_ahead: time_to_index(Self::DEFAULT_MAX_AHEAD, sample_rate),
            stats: AlignerStats::default(),
        }
    }

    /// Sets how far ahead of the drained position audio is buffered; samples
    /// beyond are dropped and counted in [`AlignerStats::future_samples`].
    pub fn with_max_ahead(mut self, max_ahead: Duration) -> Self {
        self.max_ahead = time_to_index(max_ahead, self.rate);
        self
    }

    /// The buffering limit set by [`Self::with_max_ahead`].
    pub fn max_ahead(&self) -> Duration {
        index_to_time(self.max_ahead, self.rate)
    }

    /// The sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Media time up to which frames have been drained (= length of audio
    /// emitted so far).
    pub fn position(&self) -> Duration {
        index_to_time(self.drained, self.rate)
    }

    /// Whether a pause is in force.
    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// What has been dropped, drained and silenced so far.
    pub fn stats(&self) -> AlignerStats {
        self.stats
    }

    /// Places `samples` (mono, this aligner's rate) of `channel` starting at
    /// `media_time`. Samples before the drained position are dropped and
    /// counted as late; samples more than [`Self::max_ahead`] beyond it are
    /// dropped and counted as future; samples over a span already pushed
    /// overwrite it (a duplicate packet is harmless).
    pub fn push(&mut self, channel: Channel, media_time: Duration, samples: &[i16]) {
        let len = samples.len() as u64;
        let start = time_to_index(media_time, self.rate);
        let end = start.saturating_add(len);
        let first = start.max(self.drained);
        let late = first.saturating_sub(start).min(len);
        let limit = self.drained.saturating_add(self.max_ahead);
        let last = end.min(limit);
        let kept = last.saturating_sub(first);
        self.stats.late_samples += late;
        self.stats.future_samples += len - late - kept;
        if kept == 0 {
            return;
        }
        let (Ok(offset), Ok(needed), Ok(skip), Ok(count)) = (
            usize::try_from(first - self.drained),
            usize::try_from(last - self.drained),
            usize::try_from(first - start),
            usize::try_from(last - first),
        ) else {
            return;
        };
        let Some(src) = samples.get(skip..skip + count) else {
            return;
        };
        let buf = &mut self.chans[channel.index()];
        // A gap before the samples is silence.
        if buf.len() < offset {
            buf.resize(offset, 0);
        }
        // What overlaps samples already placed (reordering, a re-anchor)
        // is overwritten; the rest, the common case, is appended.
        let overlap = buf.len().min(needed).saturating_sub(offset);
        for (slot, sample) in buf.range_mut(offset..offset + overlap).zip(src) {
            *slot = *sample;
        }
        buf.extend(&src[overlap..]);
    }

    /// Emits every stereo frame (`[caller, agent]`) before `up_to` that has
    /// not been emitted yet — typically `up_to` = now minus a jitter
    /// allowance (e.g. 100 ms). Missing audio is silence, paused spans are
    /// silence; both channels advance together. Returns nothing if `up_to`
    /// is not past [`Self::position`]. Use `Vec::into_flattened` for the
    /// interleaved samples
    /// [`RecordingHandle::try_send`](super::RecordingHandle::try_send)
    /// takes.
    pub fn drain_frames(&mut self, up_to: Duration) -> Vec<[i16; 2]> {
        let target = time_to_index(up_to, self.rate);
        if target <= self.drained {
            return Vec::new();
        }
        let Ok(n) = usize::try_from(target - self.drained) else {
            return Vec::new();
        };
        // Silence where a channel has nothing yet.
        let mut out = vec![[0i16; 2]; n];
        let [left, right] = &mut self.chans;
        let ln = n.min(left.len());
        let rn = n.min(right.len());
        for (frame, sample) in out.iter_mut().zip(left.drain(..ln)) {
            frame[0] = sample;
        }
        for (frame, sample) in out.iter_mut().zip(right.drain(..rn)) {
            frame[1] = sample;
        }

        // Silence the paused spans that overlap [drained, target).
        let base = self.drained;
        let open = self.paused_since.map(|s| (s, u64::MAX));
        let mut silenced = 0u64;
        for &(s, e) in self.pauses.iter().chain(open.iter()) {
            let from = s.max(base);
            let to = e.min(target);
            if from >= to {
                continue;
            }
            let (Ok(a), Ok(b)) = (usize::try_from(from - base), usize::try_from(to - base)) else {
                continue;
            };
            if let Some(span) = out.get_mut(a..b) {
                span.fill([0, 0]);
                silenced += (b - a) as u64;
            }
        }
        self.pauses.retain(|&(_, e)| e > target);
        self.drained = target;
        self.stats.frames_drained += n as u64;
        self.stats.paused_frames += silenced;
        out
    }

    /// Pauses recording at `at`: from then on frames are silence until
    /// [`Self::resume`]. A pause for a span already drained cannot un-write
    /// it, so it is moved to the drained position; the media time at which
    /// the pause really took effect is returned. Pausing while paused keeps
    /// the earlier start.
    pub fn pause(&mut self, at: Duration) -> Duration {
        let start = match self.paused_since {
            Some(s) => s,
            None => {
                let s = time_to_index(at, self.rate).max(self.drained);
                self.paused_since = Some(s);
                s
            }
        };
        index_to_time(start, self.rate)
    }

    /// Resumes recording at `at` (audio from `at` on is kept). Does nothing
    /// if not paused; a resume time before the pause start is taken as the
    /// pause start.
    pub fn resume(&mut self, at: Duration) {
        if let Some(start) = self.paused_since.take() {
            let end = time_to_index(at, self.rate).max(start);
            if end > self.drained {
                self.pauses.push((start, end));
            }
        }
    }
}
