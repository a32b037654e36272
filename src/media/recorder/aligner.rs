//! The recording's pure core: [`ChannelAligner`] keeps the caller's and
//! the agent's channel on the call's wall clock through jitter, loss, hold
//! and transfers (gaps are silence, late samples dropped and counted),
//! pauses included (call recording issue; see the room's docs). No clock,
//! no I/O: media time comes in with every push and drain.
//!
//! Generic over the [`Sample`] kind (issue 16 item 3): linear PCM for
//! `pcm16` and `opus` recordings ([`ChannelAligner::new`]), A-law bytes as
//! they came off the wire for `alaw` ones ([`ChannelAligner::new_alaw`]);
//! only the silence differs. [`ChannelAligner::drain_into`] appends the
//! interleaved frames to a buffer the caller reuses
//! ([`ChannelAligner::drain_at_most`]: no more than the room a chunk has).
//!
//! A recording's queues hold the jitter allowance plus a drain interval:
//! [`ChannelAligner::with_hold`] sizes them for that (issue 16 "Media at
//! the limit": grown by doubling they held 4,096 samples each for ≈ 2,600
//! used); audio beyond it (a timestamp jump, a late drain) grows a queue
//! to what it needs plus a quarter, and a drain shrinks a queue back once
//! it holds no more than that again.

use std::collections::VecDeque;
use std::time::Duration;

use super::media_time::{index_to_time, time_to_index};
use super::sample::Sample;

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
/// `drained` on (unwritten positions hold silence). `S` is the kind of
/// sample: `i16` linear PCM, or `u8` A-law bytes.
#[derive(Debug, Clone)]
pub struct ChannelAligner<S: Sample = i16> {
    rate: u32,
    drained: u64,
    chans: [VecDeque<S>; 2],
    /// Closed paused spans `[start, end)`, not yet fully drained.
    pauses: Vec<(u64, u64)>,
    /// Start of the pause in force, if any.
    paused_since: Option<u64>,
    max_ahead: u64,
    /// Samples per channel the queues are sized for (0: they grow as a
    /// `VecDeque` does, by doubling); `u32` packs it beside `rate`, so the
    /// aligner, which a call's future holds, is no bigger than it was.
    hold: u32,
    stats: AlignerStats,
}

impl ChannelAligner<i16> {
    /// A linear-PCM aligner (`pcm16` and `opus` recordings) for
    /// `sample_rate` Hz (8000 for [`CALL_WAV_SPEC`](super::CALL_WAV_SPEC)),
    /// at media time zero, not paused.
    pub fn new(sample_rate: u32) -> Self {
        Self::empty(sample_rate)
    }
}

impl ChannelAligner<u8> {
    /// An A-law aligner (`alaw` recordings: G.711 A-law bytes, silence
    /// `0xD5`), otherwise as [`ChannelAligner::new`].
    pub fn new_alaw(sample_rate: u32) -> Self {
        Self::empty(sample_rate)
    }
}

impl<S: Sample> ChannelAligner<S> {
    /// Default limit on how far ahead of the drained position a channel may
    /// buffer audio: 60 s. Bounds memory against a bogus timestamp jump.
    pub const DEFAULT_MAX_AHEAD: Duration = Duration::from_secs(60);

    fn empty(sample_rate: u32) -> Self {
        ChannelAligner {
            rate: sample_rate,
            drained: 0,
            chans: [VecDeque::new(), VecDeque::new()],
            pauses: Vec::new(),
            paused_since: None,
            max_ahead: time_to_index(Self::DEFAULT_MAX_AHEAD, sample_rate),
            hold: 0,
            stats: AlignerStats::default(),
        }
    }

    /// Sets how far ahead of the drained position audio is buffered; samples
    /// beyond are dropped and counted in [`AlignerStats::future_samples`].
    pub fn with_max_ahead(mut self, max_ahead: Duration) -> Self {
        self.max_ahead = time_to_index(max_ahead, self.rate);
        self
    }

    /// Sizes each channel's queue for `hold` of audio (the jitter allowance
    /// plus a drain interval): it is allocated at that at the first push,
    /// grows past it only to what a push needs plus a quarter of `hold`,
    /// and shrinks back after a drain once it holds no more than `hold`.
    /// Without it the queues grow by doubling and never shrink.
    pub fn with_hold(mut self, hold: Duration) -> Self {
        self.hold = u32::try_from(time_to_index(hold, self.rate)).unwrap_or(u32::MAX);
        self
    }

    /// Samples a channel's queue has room for (for tests and benches).
    pub fn queue_capacity(&self, channel: Channel) -> usize {
        self.chans[channel.index()].capacity()
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
    pub fn push(&mut self, channel: Channel, media_time: Duration, samples: &[S]) {
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
        let hold = self.hold as usize;
        if hold > 0 && buf.capacity() < needed {
            let target = if needed <= hold {
                hold
            } else {
                needed + hold / 4
            };
            buf.reserve_exact(target - buf.len());
        }
        // A gap before the samples is silence.
        if buf.len() < offset {
            buf.resize(offset, S::SILENCE);
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
    /// is not past [`Self::position`]. [`Self::drain_into`] does the same
    /// into a buffer of interleaved samples (what
    /// [`RecordingHandle::try_send`](super::RecordingHandle::try_send)
    /// takes) without a new allocation.
    pub fn drain_frames(&mut self, up_to: Duration) -> Vec<[S; 2]> {
        let mut interleaved = Vec::new();
        self.drain_into(up_to, &mut interleaved);
        interleaved
            .chunks_exact(2)
            .map(|pair| [pair[0], pair[1]])
            .collect()
    }

    /// [`Self::drain_frames`], the frames appended to `out` interleaved
    /// (caller, agent, caller, …); returns how many frames were appended.
    pub fn drain_into(&mut self, up_to: Duration, out: &mut Vec<S>) -> usize {
        self.drain_at_most(up_to, usize::MAX, out)
    }

    /// [`Self::drain_into`], but no more than `max_frames` frames (the room
    /// left in a chunk); the rest stays for the next drain.
    pub fn drain_at_most(&mut self, up_to: Duration, max_frames: usize, out: &mut Vec<S>) -> usize {
        let limit = self
            .drained
            .saturating_add(u64::try_from(max_frames).unwrap_or(u64::MAX));
        let target = time_to_index(up_to, self.rate).min(limit);
        if target <= self.drained {
            return 0;
        }
        let Ok(n) = usize::try_from(target - self.drained) else {
            return 0;
        };
        let start = out.len();
        let Some(end) = n.checked_mul(2).and_then(|len| len.checked_add(start)) else {
            return 0;
        };
        // Silence where a channel has nothing yet.
        out.resize(end, S::SILENCE);
        let frames = &mut out[start..];
        let [left, right] = &mut self.chans;
        let (ln, rn) = (n.min(left.len()), n.min(right.len()));
        {
            // One slice a channel (moves the samples only when the ring
            // has wrapped), so the frames are written in one pass.
            let (l, r) = (
                &left.make_contiguous()[..ln],
                &right.make_contiguous()[..rn],
            );
            let both = ln.min(rn);
            let (paired, single) = frames.split_at_mut(2 * both);
            for ((frame, &a), &b) in paired.chunks_exact_mut(2).zip(l).zip(r) {
                frame[0] = a;
                frame[1] = b;
            }
            // Past the shorter channel, one side only.
            for (frame, &a) in single.chunks_exact_mut(2).zip(&l[both..]) {
                frame[0] = a;
            }
            for (frame, &b) in single.chunks_exact_mut(2).zip(&r[both..]) {
                frame[1] = b;
            }
        }
        left.drain(..ln);
        right.drain(..rn);
        let hold = self.hold as usize;
        if hold > 0 {
            for queue in [left, right] {
                if queue.capacity() > 2 * hold && queue.len() <= hold {
                    queue.shrink_to(hold);
                }
            }
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
            if let Some(span) = frames.get_mut(2 * a..2 * b) {
                span.fill(S::SILENCE);
                silenced += (b - a) as u64;
            }
        }
        self.pauses.retain(|&(_, e)| e > target);
        self.drained = target;
        self.stats.frames_drained += n as u64;
        self.stats.paused_frames += silenced;
        n
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
