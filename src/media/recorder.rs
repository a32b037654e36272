//! Call recording: one stereo WAV per call, kept true to wall-clock time and
//! safe against crashes.
//!
//! Requirement (call recording issue): "one stereo WAV per call (caller
//! left, agent/other party right; 8 kHz 16-bit PCM via hound), aligned in
//! time through jitter, loss, hold and transfers (gaps filled with silence so
//! both channels keep wall-clock time). Writing happens off the packet path
//! (bounded queue to a writer; if the disk stalls, the call audio is never
//! delayed). A crash or `kill -9` leaves a playable file: the header is
//! patched at intervals and any unfinished file is repaired at the next
//! start. Path by tenant/date/call id; metadata (path, duration, bytes,
//! sha256) handed to the call for its events. Recording can be
//! paused/resumed for sensitive moments." (Retention is handled elsewhere.)
//!
//! The module has four parts:
//!
//! * [`ChannelAligner`] — a **pure core** (no clock, no I/O). The shell
//!   pushes each leg's decoded PCM with its *media time* (position on the
//!   call's wall clock since recording started, from arrival time or the RTP
//!   timestamp; after a transfer or an SSRC change the shell re-anchors that
//!   mapping) and periodically drains stereo frames up to "now minus a
//!   jitter allowance". Both channels always advance together, so *N*
//!   seconds of call are *N* seconds of audio whatever each side sent:
//!   gaps (loss, hold, a side that sends nothing) are silence, samples for a
//!   span already drained are dropped and counted, overlapping samples
//!   overwrite.
//! * [`RecordingWriter`] — the **shell**: one dedicated `std::thread` per
//!   recording fed by a bounded [`std::sync::mpsc::sync_channel`].
//!   [`RecordingHandle::try_send`] never blocks: when the queue is full
//!   (disk stalled) the chunk is dropped and counted, so the call's audio is
//!   never delayed. The thread writes `<name>.wav.part` with hound, patches
//!   the RIFF/data sizes every [`WriterOptions::header_interval`] of audio
//!   (hound's `flush`), and on [`RecordingHandle::finish`] finalises the
//!   header, fsyncs, renames to `<name>.wav` and returns [`RecordingMeta`]
//!   (path, duration, bytes, SHA-256 of the final file, dropped chunks).
//! * [`repair_unfinished`] — run **at startup, before any writer starts**:
//!   every `*.wav.part` under a directory is an unfinished recording (a
//!   finished one is always renamed to `.wav` after its header is final and
//!   fsynced, so `.wav` files are never scanned or read). Repair sets the
//!   header sizes to the data actually on disk, rounded down to a whole
//!   frame, and renames it to `.wav`; an empty or header-truncated file (no
//!   audio at all) is deleted. Each file gets a [`RepairReport`].
//! * [`recording_path`] — `root/<tenant>/<yyyy>/<mm>/<dd>/<call_id>.wav`
//!   with every component sanitised (no `..`, separators, control or
//!   bidi-override characters; Chinese tenant names are kept as they are).
//!
//! # Choices
//!
//! * **Paused spans are written as silence**, not cut out: the file stays a
//!   faithful wall-clock record (its length is the call's length, and times
//!   quoted in complaints or quality reviews line up with the CDR), and the
//!   pause itself is visible as silence. The call's events should carry the
//!   pause/resume times.
//! * **Crash safety is against process death** (`kill -9`, panic, OOM
//!   kill): the data written reaches the OS page cache, and the header
//!   covers all but the last [`WriterOptions::header_interval`]; repair
//!   then recovers everything up to the last hound buffer (≈ 8 KiB, a
//!   quarter second). Power loss is covered only for finished files
//!   (fsynced before the rename); fsyncing every open recording every second
//!   would cost too much with hundreds of concurrent calls.
//! * A WAV data chunk is limited to 4 GiB (about 37 h of 8 kHz stereo);
//!   audio past that is dropped and counted.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The recording format: 8 kHz, 16-bit signed PCM, stereo (caller left,
/// agent/other party right).
pub const CALL_WAV_SPEC: hound::WavSpec = hound::WavSpec {
    channels: 2,
    sample_rate: 8000,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// Suffix of a recording still being written (or left by a crash).
pub const PART_SUFFIX: &str = ".part";

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Errors of the recorder; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// The WAV spec is not one this recorder writes (16-bit integer PCM).
    #[error("recording {}: unsupported WAV format: {reason}", path.display())]
    UnsupportedSpec {
        /// The recording's path.
        path: PathBuf,
        /// What is wrong with the spec.
        reason: &'static str,
    },
    /// The recording (or its unfinished `.part`) already exists; recordings
    /// are never overwritten.
    #[error("recording {}: already exists, refusing to overwrite", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file-system operation failed.
    #[error("recording {}: {op}: {source}", path.display())]
    Io {
        /// The file operated on.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// hound failed to write the WAV file.
    #[error("recording {}: WAV {op}: {source}", path.display())]
    Wav {
        /// The file being written.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: hound::Error,
    },
    /// The writer thread panicked (a bug); the `.part` file is left for
    /// [`repair_unfinished`].
    #[error("recording {}: writer thread panicked", path.display())]
    WriterPanicked {
        /// The recording's path.
        path: PathBuf,
    },
    /// An unfinished file whose header this recorder cannot understand; it
    /// is left untouched.
    #[error("recording {}: cannot repair: {reason}", path.display())]
    Unrepairable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> RecorderError + 'a {
    move |source| RecorderError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn wav_err<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(hound::Error) -> RecorderError + 'a {
    move |source| RecorderError::Wav {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Sample index (at `rate` Hz) of a media time, rounded to the nearest
/// sample so arrival-time jitter below half a sample does not shift audio.
fn time_to_index(t: Duration, rate: u32) -> u64 {
    let scaled = t.as_nanos() * u128::from(rate) + NANOS_PER_SEC / 2;
    u64::try_from(scaled / NANOS_PER_SEC).unwrap_or(u64::MAX)
}

/// Media time of a sample index at `rate` Hz (exact to the nanosecond, floor).
fn index_to_time(index: u64, rate: u32) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let rate = u64::from(rate);
    let secs = index / rate;
    let rem = u128::from(index % rate);
    let nanos = rem * NANOS_PER_SEC / u128::from(rate);
    // `rem < rate`, so `nanos < 1e9`: the conversion cannot fail.
    Duration::from_secs(secs) + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

// ---------------------------------------------------------------------------
// ChannelAligner (pure core)
// ---------------------------------------------------------------------------

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

    /// An aligner for `sample_rate` Hz (8000 for [`CALL_WAV_SPEC`]), at media
    /// time zero, not paused.
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
        let buf = &mut self.chans[channel.index()];
        if buf.len() < needed {
            buf.resize(needed, 0);
        }
        for (slot, sample) in buf
            .range_mut(offset..needed)
            .zip(samples.iter().skip(skip).take(count))
        {
            *slot = *sample;
        }
    }

    /// Emits every stereo frame (`[caller, agent]`) before `up_to` that has
    /// not been emitted yet — typically `up_to` = now minus a jitter
    /// allowance (e.g. 100 ms). Missing audio is silence, paused spans are
    /// silence; both channels advance together. Returns nothing if `up_to`
    /// is not past [`Self::position`]. Use `Vec::into_flattened` for the
    /// interleaved samples [`RecordingHandle::try_send`] takes.
    pub fn drain_frames(&mut self, up_to: Duration) -> Vec<[i16; 2]> {
        let target = time_to_index(up_to, self.rate);
        if target <= self.drained {
            return Vec::new();
        }
        let Ok(n) = usize::try_from(target - self.drained) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(n);
        let [left, right] = &mut self.chans;
        let ln = n.min(left.len());
        let rn = n.min(right.len());
        let l = left.drain(..ln).chain(std::iter::repeat(0));
        let r = right.drain(..rn).chain(std::iter::repeat(0));
        out.extend(l.zip(r).take(n).map(|(a, b)| [a, b]));

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

// ---------------------------------------------------------------------------
// RecordingWriter (shell: one thread per recording)
// ---------------------------------------------------------------------------

/// Tuning of a [`RecordingWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Capacity of the queue to the writer thread, in chunks (at least 1).
    /// With 20 ms chunks, 256 is about 5 s of disk stall absorbed.
    pub queue_chunks: usize,
    /// How much audio is written between header patches (the most a crash
    /// leaves outside the header before repair).
    pub header_interval: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            queue_chunks: 256,
            header_interval: Duration::from_secs(1),
        }
    }
}

/// What a finished recording is, for the call's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingMeta {
    /// The final `.wav` file.
    pub path: PathBuf,
    /// Length of the audio.
    pub duration: Duration,
    /// Frames of audio (one sample per channel each).
    pub frames: u64,
    /// Size of the final file in bytes.
    pub bytes: u64,
    /// SHA-256 of the final file, lowercase hex.
    pub sha256: String,
    /// Chunks dropped because the queue was full or the writer had stopped
    /// (each a gap in the file: the audio after it is early by its length),
    /// plus chunks past the 4 GiB WAV limit.
    pub dropped_chunks: u64,
}

/// Why [`RecordingHandle::try_send`] did not queue a chunk. The chunk is
/// dropped in every case (and counted in `dropped_chunks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Backpressure {
    /// The queue is full: the disk is not keeping up.
    #[error("recording queue full, chunk dropped")]
    Full,
    /// The writer thread has stopped (a write error; [`RecordingHandle::finish`]
    /// reports it).
    #[error("recording writer stopped, chunk dropped")]
    WriterGone,
    /// The chunk's length is not a whole number of frames (a caller bug).
    #[error("chunk of {samples} samples is not whole {channels}-channel frames, dropped")]
    PartialFrame {
        /// Samples in the chunk.
        samples: usize,
        /// Channels of the recording.
        channels: u16,
    },
}

enum Msg {
    Chunk(Vec<i16>),
    #[cfg(test)]
    Barrier(SyncSender<()>),
    #[cfg(test)]
    Stall {
        stalled: SyncSender<()>,
        release: Receiver<()>,
    },
    #[cfg(test)]
    Crash,
}

enum Done {
    Finished(RecordingMeta),
    #[cfg(test)]
    Crashed,
}

/// Starts recordings; see [`RecordingHandle`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordingWriter;

impl RecordingWriter {
    /// Starts recording to `path` (written as `path` + [`PART_SUFFIX`] until
    /// finished) with the default [`WriterOptions`].
    ///
    /// Creates the parent directories and the file on the calling thread
    /// (blocking file-system calls: call it from call setup, not the packet
    /// path). Fails if `path` or its `.part` exists. `path` should end in
    /// `.wav` (as [`recording_path`] does): [`repair_unfinished`] looks for
    /// `*.wav.part`.
    pub fn start(path: &Path, spec: hound::WavSpec) -> Result<RecordingHandle, RecorderError> {
        Self::start_with(path, spec, WriterOptions::default())
    }

    /// [`Self::start`] with explicit options.
    pub fn start_with(
        path: &Path,
        spec: hound::WavSpec,
        options: WriterOptions,
    ) -> Result<RecordingHandle, RecorderError> {
        let unsupported = |reason| RecorderError::UnsupportedSpec {
            path: path.to_path_buf(),
            reason,
        };
        if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
            return Err(unsupported("only 16-bit integer PCM is recorded"));
        }
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(unsupported("channels and sample rate must be non-zero"));
        }
        let part = part_path(path);
        if fs::symlink_metadata(path).is_ok() {
            return Err(RecorderError::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent).map_err(io_err(parent, "create directory"))?;
            }
        }
        let file = match OpenOptions::new().write(true).create_new(true).open(&part) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(RecorderError::AlreadyExists { path: part });
            }
            Err(e) => return Err(io_err(&part, "create")(e)),
        };
        let sync_handle = file.try_clone().map_err(io_err(&part, "clone handle"))?;
        let wav = hound::WavWriter::new(BufWriter::new(file), spec)
            .map_err(wav_err(&part, "write header"))?;

        let (tx, rx) = mpsc::sync_channel(options.queue_chunks.max(1));
        let block_align = u64::from(spec.channels) * 2;
        let header_bytes = 44u64; // hound's PCMWAVEFORMAT header for <= 2 channels, 16-bit
        let max_frames = (u64::from(u32::MAX) - header_bytes) / block_align;
        let header_every = time_to_index(options.header_interval, spec.sample_rate).max(1);
        let job = WriterJob {
            path: path.to_path_buf(),
            part: part.clone(),
            spec,
            wav,
            sync_handle,
            header_every,
            max_frames,
        };
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .stack_size(256 * 1024)
            .spawn(move || job.run(rx))
            .map_err(io_err(&part, "spawn writer thread"))?;
        Ok(RecordingHandle {
            path: path.to_path_buf(),
            channels: spec.channels,
            tx: Some(tx),
            thread: Some(thread),
            dropped: AtomicU64::new(0),
        })
    }
}

/// `path` + [`PART_SUFFIX`].
fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}

/// A recording in progress. Feed it with [`Self::try_send`] (never blocks)
/// and end it with [`Self::finish`]. Dropping it without `finish` still
/// finalises the file in the background, but the metadata is lost.
#[derive(Debug)]
pub struct RecordingHandle {
    path: PathBuf,
    channels: u16,
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<Result<(Done, u64), RecorderError>>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Chunk(v) => write!(f, "Chunk({} samples)", v.len()),
            #[cfg(test)]
            _ => write!(f, "TestHook"),
        }
    }
}

impl RecordingHandle {
    /// The final path of the recording (`.wav`, without `.part`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Chunks dropped so far.
    pub fn dropped_chunks(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues interleaved samples (whole frames) for writing, without ever
    /// blocking: if the queue is full or the writer has stopped, the chunk
    /// is dropped and counted.
    pub fn try_send(&self, interleaved: Vec<i16>) -> Result<(), Backpressure> {
        let result = if !interleaved.len().is_multiple_of(usize::from(self.channels)) {
            Err(Backpressure::PartialFrame {
                samples: interleaved.len(),
                channels: self.channels,
            })
        } else {
            match &self.tx {
                Some(tx) => match tx.try_send(Msg::Chunk(interleaved)) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(_)) => Err(Backpressure::Full),
                    Err(TrySendError::Disconnected(_)) => Err(Backpressure::WriterGone),
                },
                None => Err(Backpressure::WriterGone),
            }
        };
        if result.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Ends the recording: waits for the queue to be written, finalises the
    /// header, fsyncs, renames `.part` to `.wav` and hashes the final file.
    /// Blocks on disk I/O (call it from a blocking context). On error the
    /// `.part` file is left for [`repair_unfinished`].
    pub fn finish(mut self) -> Result<RecordingMeta, RecorderError> {
        match self.join()? {
            (Done::Finished(mut meta), overflow) => {
                meta.dropped_chunks = self.dropped_chunks() + overflow;
                Ok(meta)
            }
            #[cfg(test)]
            (Done::Crashed, _) => Err(RecorderError::WriterPanicked {
                path: self.path.clone(),
            }),
        }
    }

    fn join(&mut self) -> Result<(Done, u64), RecorderError> {
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| RecorderError::WriterPanicked {
                path: self.path.clone(),
            })?,
            None => Err(RecorderError::WriterPanicked {
                path: self.path.clone(),
            }),
        }
    }

    #[cfg(test)]
    fn send_hook(&self, msg: Msg) {
        if let Some(tx) = &self.tx {
            tx.send(msg).ok();
        }
    }

    /// Test hook: returns once the writer thread has processed everything
    /// queued before this call.
    #[cfg(test)]
    fn barrier(&self) {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.send_hook(Msg::Barrier(ack_tx));
        ack_rx.recv().ok();
    }

    /// Test hook: stalls the writer thread (as a hung disk would) until the
    /// returned sender is dropped; returns once the thread is stalled.
    #[cfg(test)]
    fn stall(&self) -> SyncSender<()> {
        let (stalled_tx, stalled_rx) = mpsc::sync_channel(1);
        let (release_tx, release_rx) = mpsc::sync_channel(1);
        self.send_hook(Msg::Stall {
            stalled: stalled_tx,
            release: release_rx,
        });
        stalled_rx.recv().ok();
        release_tx
    }

    /// Test hook: the writer thread dies as under `kill -9`: the hound
    /// writer is leaked without finalising (its buffered bytes are lost)
    /// and the `.part` file stays.
    #[cfg(test)]
    fn crash(mut self) {
        self.send_hook(Msg::Crash);
        let _ = self.join();
    }
}

struct WriterJob {
    path: PathBuf,
    part: PathBuf,
    spec: hound::WavSpec,
    wav: hound::WavWriter<BufWriter<File>>,
    sync_handle: File,
    header_every: u64,
    max_frames: u64,
}

impl WriterJob {
    /// The writer thread. Returns what it did and the chunks it dropped past
    /// the WAV size limit.
    fn run(mut self, rx: Receiver<Msg>) -> Result<(Done, u64), RecorderError> {
        let channels = u64::from(self.spec.channels);
        let mut frames = 0u64;
        let mut since_patch = 0u64;
        let mut overflow = 0u64;
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Chunk(samples) => {
                    let n = samples.len() as u64 / channels;
                    if frames + n > self.max_frames {
                        if overflow == 0 {
                            tracing::warn!(path = %self.part.display(), "recording reached the 4 GiB WAV limit; further audio dropped");
                        }
                        overflow += 1;
                        continue;
                    }
                    if let Err(e) = self.write(&samples) {
                        tracing::error!(path = %self.part.display(), error = %e, "recording write failed; recording stopped");
                        return Err(e);
                    }
                    frames += n;
                    since_patch += n;
                    if since_patch >= self.header_every {
                        since_patch = 0;
                        // Patch RIFF/data sizes and push the buffer to the OS.
                        self.wav
                            .flush()
                            .map_err(wav_err(&self.part, "patch header"))?;
                    }
                }
                #[cfg(test)]
                Msg::Barrier(ack) => {
                    ack.send(()).ok();
                }
                #[cfg(test)]
                Msg::Stall { stalled, release } => {
                    stalled.send(()).ok();
                    release.recv().ok();
                }
                #[cfg(test)]
                Msg::Crash => {
                    std::mem::forget(self.wav);
                    return Ok((Done::Crashed, overflow));
                }
            }
        }
        let meta = self.complete(frames)?;
        tracing::debug!(path = %meta.path.display(), frames, "recording finished");
        Ok((Done::Finished(meta), overflow))
    }

    fn write(&mut self, samples: &[i16]) -> Result<(), RecorderError> {
        // Bounded sub-chunks keep hound's sample buffer small and the count
        // within u32.
        for piece in samples.chunks(1 << 15) {
            let count = u32::try_from(piece.len()).unwrap_or(u32::MAX);
            let mut w = self.wav.get_i16_writer(count);
            for &s in piece {
                w.write_sample(s);
            }
            w.flush().map_err(wav_err(&self.part, "write samples"))?;
        }
        Ok(())
    }

    fn complete(self, frames: u64) -> Result<RecordingMeta, RecorderError> {
        let WriterJob {
            path,
            part,
            spec,
            wav,
            sync_handle,
            ..
        } = self;
        wav.finalize().map_err(wav_err(&part, "finalise header"))?;
        sync_handle.sync_all().map_err(io_err(&part, "fsync"))?;
        if fs::symlink_metadata(&path).is_ok() {
            return Err(RecorderError::AlreadyExists { path });
        }
        fs::rename(&part, &path).map_err(io_err(&path, "rename from .part"))?;
        sync_parent_dir(&path);
        let (bytes, sha256) = hash_file(&path)?;
        Ok(RecordingMeta {
            duration: index_to_time(frames, spec.sample_rate),
            path,
            frames,
            bytes,
            sha256,
            dropped_chunks: 0,
        })
    }
}

/// Makes a rename durable (best effort: not every platform can fsync a
/// directory).
fn sync_parent_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            if let Err(e) = d.sync_all() {
                tracing::debug!(dir = %dir.display(), error = %e, "directory fsync failed");
            }
        }
    }
}

/// Size and lowercase-hex SHA-256 of a file.
fn hash_file(path: &Path) -> Result<(u64, String), RecorderError> {
    let mut f = File::open(path).map_err(io_err(path, "open for hashing"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path, "read for hashing")(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// The metadata of a finished recording read back from disk (a file
/// [`repair_unfinished`] repaired after a crash, whose writer never returned
/// its [`RecordingMeta`]): length from the WAV header, size and SHA-256 of
/// the file. Chunks the writer dropped before the crash are not known from
/// the file: `dropped_chunks` is 0.
pub fn describe_finished(path: &Path) -> Result<RecordingMeta, RecorderError> {
    let reader = hound::WavReader::open(path).map_err(wav_err(path, "read header"))?;
    let frames = u64::from(reader.duration());
    let rate = reader.spec().sample_rate;
    drop(reader);
    let (bytes, sha256) = hash_file(path)?;
    Ok(RecordingMeta {
        path: path.to_path_buf(),
        duration: index_to_time(frames, rate),
        frames,
        bytes,
        sha256,
        dropped_chunks: 0,
    })
}

// ---------------------------------------------------------------------------
// Startup repair
// ---------------------------------------------------------------------------

/// Why an unfinished file was deleted rather than repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// The file was empty.
    Empty,
    /// The file ended inside the WAV header: it held no audio.
    TruncatedHeader,
}

/// What [`repair_unfinished`] did with one file.
#[derive(Debug)]
pub enum RepairOutcome {
    /// The header now covers the audio on disk and the file was renamed.
    Repaired {
        /// The `.wav` it now is.
        wav: PathBuf,
        /// Whole frames of audio kept.
        frames: u64,
        /// Their length.
        duration: Duration,
        /// Trailing bytes of an unfinished frame that were cut off.
        discarded_bytes: u64,
    },
    /// The file held no audio and was deleted.
    Deleted(DeleteReason),
    /// The file could not be repaired and was left as it is.
    Failed(RecorderError),
}

/// One unfinished recording found by [`repair_unfinished`].
#[derive(Debug)]
pub struct RepairReport {
    /// The `.part` file found.
    pub path: PathBuf,
    /// What was done with it.
    pub outcome: RepairOutcome,
}

/// Repairs every unfinished recording (`*.wav.part`) under `dir`, at any
/// depth (symbolic links are not followed). Run it at startup **before any
/// recording starts**: a `.part` being written would be taken for a crashed
/// one. Finished `.wav` files are not read. Directories that cannot be read
/// are reported as `Failed`.
pub fn repair_unfinished(dir: &Path) -> Vec<RepairReport> {
    let mut reports = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                reports.push(RepairReport {
                    outcome: RepairOutcome::Failed(io_err(&d, "read directory")(e)),
                    path: d,
                });
                continue;
            }
        };
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let p = entry.path();
            if kind.is_dir() {
                stack.push(p);
            } else if kind.is_file() && is_unfinished_name(&p) {
                files.push(p);
            }
        }
        files.sort();
        for p in files {
            let outcome = repair_one(&p);
            match &outcome {
                RepairOutcome::Repaired { wav, frames, .. } => {
                    tracing::info!(path = %wav.display(), frames, "repaired unfinished recording")
                }
                RepairOutcome::Deleted(reason) => {
                    tracing::info!(path = %p.display(), ?reason, "deleted unfinished recording without audio")
                }
                RepairOutcome::Failed(e) => {
                    tracing::warn!(error = %e, "could not repair unfinished recording")
                }
            }
            reports.push(RepairReport { path: p, outcome });
        }
    }
    reports
}

fn is_unfinished_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() > ".wav.part".len() && n.ends_with(".wav.part"))
}

/// Header facts needed to repair a WAV file.
struct WavLayout {
    /// Offset of the first data byte.
    data_offset: u64,
    /// Bytes per frame.
    block_align: u64,
    /// Frames per second.
    sample_rate: u32,
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// Parses the RIFF header in `head` (the first bytes of the file, all of
/// it if `whole_file`): `Ok(None)` if the file ends before the data chunk
/// starts (truncated header), `Err` if it is not a WAV file this recorder
/// can repair.
fn parse_layout(head: &[u8], whole_file: bool) -> Result<Option<WavLayout>, String> {
    let truncated = || {
        if whole_file {
            Ok(None)
        } else {
            Err(format!("no data chunk in the first {} bytes", head.len()))
        }
    };
    if head.len() < 12 {
        return if b"RIFF".starts_with(&head[..head.len().min(4)]) {
            Ok(None)
        } else {
            Err("not a RIFF file".into())
        };
    }
    if &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut pos = 12usize;
    let mut fmt: Option<(u16, u32)> = None; // (block_align, sample_rate)
    loop {
        let (Some(id), Some(size)) = (head.get(pos..pos + 4), le_u32(head, pos + 4)) else {
            return truncated();
        };
        let body = pos + 8;
        if id == b"data" {
            let Some((block_align, sample_rate)) = fmt else {
                return Err("data chunk before fmt chunk".into());
            };
            if block_align == 0 || sample_rate == 0 {
                return Err("fmt chunk has zero block align or sample rate".into());
            }
            return Ok(Some(WavLayout {
                data_offset: body as u64,
                block_align: u64::from(block_align),
                sample_rate,
            }));
        }
        if id == b"fmt " {
            let (Some(rate), Some(align)) = (le_u32(head, body + 4), le_u16(head, body + 12))
            else {
                return truncated();
            };
            fmt = Some((align, rate));
        }
        // Chunks are word-aligned.
        let Some(next) = usize::try_from(size)
            .ok()
            .and_then(|s| body.checked_add(s)?.checked_add(s & 1))
        else {
            return Err("chunk size out of range".into());
        };
        pos = next;
    }
}

fn repair_one(part: &Path) -> RepairOutcome {
    match try_repair(part) {
        Ok(outcome) => outcome,
        Err(e) => RepairOutcome::Failed(e),
    }
}

fn try_repair(part: &Path) -> Result<RepairOutcome, RecorderError> {
    let len = fs::metadata(part).map_err(io_err(part, "stat"))?.len();
    if len == 0 {
        fs::remove_file(part).map_err(io_err(part, "delete empty file"))?;
        return Ok(RepairOutcome::Deleted(DeleteReason::Empty));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(part)
        .map_err(io_err(part, "open"))?;
    const HEAD_MAX: u64 = 4096;
    let mut head = Vec::with_capacity(4096);
    (&mut file)
        .take(HEAD_MAX)
        .read_to_end(&mut head)
        .map_err(io_err(part, "read header"))?;
    let layout = match parse_layout(&head, len <= HEAD_MAX) {
        Ok(Some(l)) => l,
        Ok(None) => {
            drop(file);
            fs::remove_file(part).map_err(io_err(part, "delete truncated file"))?;
            return Ok(RepairOutcome::Deleted(DeleteReason::TruncatedHeader));
        }
        Err(reason) => {
            return Err(RecorderError::Unrepairable {
                path: part.to_path_buf(),
                reason,
            })
        }
    };
    if len < layout.data_offset {
        drop(file);
        fs::remove_file(part).map_err(io_err(part, "delete truncated file"))?;
        return Ok(RepairOutcome::Deleted(DeleteReason::TruncatedHeader));
    }
    let available = len - layout.data_offset;
    // RIFF sizes are u32: the data may not exceed u32::MAX minus the header.
    let cap = u64::from(u32::MAX) - (layout.data_offset - 8);
    let data_len = {
        let d = available.min(cap);
        d - d % layout.block_align
    };
    let discarded = len - layout.data_offset - data_len;
    let wav = part.with_extension(""); // strips ".part"
    if fs::symlink_metadata(&wav).is_ok() {
        return Err(RecorderError::AlreadyExists { path: wav });
    }
    let riff_size = u32::try_from(layout.data_offset - 8 + data_len).unwrap_or(u32::MAX);
    let data_size = u32::try_from(data_len).unwrap_or(u32::MAX);
    let write = |file: &mut File, at: u64, value: u32| -> io::Result<()> {
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&value.to_le_bytes())
    };
    write(&mut file, 4, riff_size).map_err(io_err(part, "patch RIFF size"))?;
    write(&mut file, layout.data_offset - 4, data_size).map_err(io_err(part, "patch data size"))?;
    if discarded > 0 {
        file.set_len(layout.data_offset + data_len)
            .map_err(io_err(part, "truncate partial frame"))?;
    }
    file.sync_all().map_err(io_err(part, "fsync"))?;
    drop(file);
    fs::rename(part, &wav).map_err(io_err(&wav, "rename from .part"))?;
    sync_parent_dir(&wav);
    let frames = data_len / layout.block_align;
    Ok(RepairOutcome::Repaired {
        duration: index_to_time(frames, layout.sample_rate),
        wav,
        frames,
        discarded_bytes: discarded,
    })
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

/// Longest sanitised component, in bytes (file systems allow 255; room is
/// left for the hash suffix and `.wav.part`).
const MAX_COMPONENT_BYTES: usize = 160;

/// `root/<tenant>/<yyyy>/<mm>/<dd>/<call_id>.wav`.
///
/// `tenant` and `call_id` are sanitised so each stays one harmless path
/// component: path separators, control characters, Unicode bidi/zero-width
/// format characters and the characters Windows forbids become `_`, leading
/// dots become `_` (no `.`/`..`, no hidden files), an empty name becomes
/// `_`, and long names are cut at a character boundary. Non-ASCII text (a
/// Chinese tenant name) is kept. When anything was changed, `-` and 8 hex
/// digits of the original's SHA-256 are appended, so two distinct ids never
/// share a file. The date comes from the shell's clock and is formatted as
/// given.
pub fn recording_path(root: &Path, tenant: &str, date: (i32, u8, u8), call_id: &str) -> PathBuf {
    let (year, month, day) = date;
    let mut p = root.to_path_buf();
    p.push(sanitize_component(tenant));
    p.push(format!("{year:04}"));
    p.push(format!("{month:02}"));
    p.push(format!("{day:02}"));
    p.push(format!("{}.wav", sanitize_component(call_id)));
    p
}

fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
        )
}

fn sanitize_component(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| if is_unsafe_char(c) { '_' } else { c })
        .collect();
    let dots = out.len() - out.trim_start_matches('.').len();
    if dots > 0 {
        out.replace_range(..dots, &"_".repeat(dots));
    }
    if out.len() > MAX_COMPONENT_BYTES {
        let mut cut = MAX_COMPONENT_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    if out.is_empty() {
        out.push('_');
    }
    if out != raw {
        let digest = Sha256::digest(raw.as_bytes());
        out.push('-');
        out.push_str(&hex::encode(&digest[..4]));
    }
    out
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A 20 ms packet (160 samples) whose samples all equal `v`.
    fn pkt(v: i16) -> Vec<i16> {
        vec![v; 160]
    }

    fn reader_samples(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).expect("open wav");
        let spec = r.spec();
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
        (spec, s)
    }

    // ---- aligner ----------------------------------------------------------

    #[test]
    fn aligner_interleaves_caller_left_agent_right() {
        let mut a = ChannelAligner::new(RATE);
        a.push(Channel::Caller, ms(0), &pkt(1));
        a.push(Channel::Agent, ms(0), &pkt(2));
        let f = a.drain_frames(ms(20));
        assert_eq!(f.len(), 160);
        assert!(f.iter().all(|&x| x == [1, 2]));
        assert_eq!(a.position(), ms(20));
        assert_eq!(f.into_flattened()[..4], [1, 2, 1, 2]);
    }

    #[test]
    fn aligner_fills_loss_with_silence() {
        let mut a = ChannelAligner::new(RATE);
        // Caller packets 0, 1, 3 (packet 2 lost); agent all four.
        for i in [0u64, 1, 3] {
            a.push(Channel::Caller, ms(20 * i), &pkt(7));
        }
        for i in 0..4u64 {
            a.push(Channel::Agent, ms(20 * i), &pkt(9));
        }
        let f = a.drain_frames(ms(80));
        assert_eq!(f.len(), 640);
        assert!(f[..320].iter().all(|&x| x == [7, 9]));
        assert!(
            f[320..480].iter().all(|&x| x == [0, 9]),
            "lost packet is silence"
        );
        assert!(f[480..].iter().all(|&x| x == [7, 9]));
    }

    #[test]
    fn aligner_reorders_jittered_packets_within_allowance() {
        let mut a = ChannelAligner::new(RATE);
        // Packets arrive 2, 0, 1 (out of order), all before the drain.
        for (i, v) in [(2u64, 3i16), (0, 1), (1, 2)] {
            a.push(Channel::Caller, ms(20 * i), &pkt(v));
        }
        let f = a.drain_frames(ms(60));
        assert_eq!(f.len(), 480);
        for (k, v) in [1i16, 2, 3].iter().enumerate() {
            assert!(f[k * 160..(k + 1) * 160].iter().all(|&x| x == [*v, 0]));
        }
    }

    #[test]
    fn aligner_rounds_jittery_arrival_time_to_nearest_sample() {
        let mut a = ChannelAligner::new(RATE);
        // 20 ms + 40 µs of arrival jitter (< half a sample of 125 µs).
        a.push(Channel::Caller, ms(20) + Duration::from_micros(40), &[5]);
        let f = a.drain_frames(ms(21));
        assert_eq!(f[160], [5, 0]);
        assert_eq!(f[159], [0, 0]);
    }

    #[test]
    fn aligner_hold_one_side_silent_two_seconds_still_two_seconds() {
        let mut a = ChannelAligner::new(RATE);
        let mut frames = Vec::new();
        // Caller talks for 2 s; the agent put the call on hold (sends nothing).
        for i in 0..100u64 {
            a.push(Channel::Caller, ms(20 * i), &pkt(4));
            // Drain each tick with a 100 ms allowance.
            frames.extend(a.drain_frames(ms((20 * (i + 1)).saturating_sub(100))));
        }
        frames.extend(a.drain_frames(ms(2000)));
        assert_eq!(frames.len(), 16_000, "2 s of stereo audio");
        assert!(frames.iter().all(|&x| x == [4, 0]));
        // Neither side sends anything for 2 s more: time still advances.
        let f = a.drain_frames(ms(4000));
        assert_eq!(f.len(), 16_000);
        assert!(f.iter().all(|&x| x == [0, 0]));
        assert_eq!(a.position(), ms(4000));
        assert_eq!(a.stats().frames_drained, 32_000);
    }

    #[test]
    fn aligner_drops_and_counts_late_samples() {
        let mut a = ChannelAligner::new(RATE);
        a.push(Channel::Caller, ms(0), &pkt(1));
        assert_eq!(a.drain_frames(ms(40)).len(), 320);
        // Packet for 20..40 ms arrives after that span was written.
        a.push(Channel::Caller, ms(20), &pkt(8));
        assert_eq!(a.stats().late_samples, 160);
        // Straddling packet 30..50 ms: the first half is late, the rest kept.
        a.push(Channel::Caller, ms(30), &pkt(6));
        assert_eq!(a.stats().late_samples, 240);
        let f = a.drain_frames(ms(60));
        assert_eq!(f.len(), 160);
        assert!(f[..80].iter().all(|&x| x == [6, 0]));
        assert!(f[80..].iter().all(|&x| x == [0, 0]));
    }

    #[test]
    fn aligner_duplicates_and_overlaps_overwrite() {
        let mut a = ChannelAligner::new(RATE);
        a.push(Channel::Agent, ms(0), &pkt(1));
        a.push(Channel::Agent, ms(0), &pkt(1)); // duplicate
        a.push(Channel::Agent, ms(10), &pkt(2)); // overlaps 10..30 ms
        let f = a.drain_frames(ms(30));
        assert_eq!(f.len(), 240);
        assert!(f[..80].iter().all(|&x| x == [0, 1]));
        assert!(f[80..].iter().all(|&x| x == [0, 2]));
        assert_eq!(a.stats().late_samples, 0);
    }

    #[test]
    fn aligner_drain_not_past_position_is_empty() {
        let mut a = ChannelAligner::new(RATE);
        assert!(a.drain_frames(Duration::ZERO).is_empty());
        assert_eq!(a.drain_frames(ms(10)).len(), 80);
        assert!(a.drain_frames(ms(10)).is_empty());
        assert!(
            a.drain_frames(ms(5)).is_empty(),
            "time going back emits nothing"
        );
        assert_eq!(a.position(), ms(10));
    }

    #[test]
    fn aligner_bounds_memory_against_timestamp_jumps() {
        let mut a = ChannelAligner::new(RATE).with_max_ahead(Duration::from_secs(1));
        assert_eq!(a.max_ahead(), Duration::from_secs(1));
        // An hour ahead: dropped, not a 28.8 M sample allocation.
        a.push(Channel::Caller, Duration::from_secs(3600), &pkt(3));
        assert_eq!(a.stats().future_samples, 160);
        // Straddling the horizon: the part within it is kept.
        a.push(Channel::Caller, ms(990), &pkt(3));
        assert_eq!(a.stats().future_samples, 240);
        let f = a.drain_frames(Duration::from_secs(2));
        assert!(f[7920..8000].iter().all(|&x| x == [3, 0]));
        assert!(f[8000..].iter().all(|&x| x == [0, 0]));
        // Absurd media times do not overflow.
        a.push(Channel::Agent, Duration::MAX, &pkt(1));
        assert_eq!(a.stats().future_samples, 400);
        assert_eq!(a.stats().late_samples, 0);
    }

    #[test]
    fn aligner_pause_resume_writes_silence_keeping_time() {
        let mut a = ChannelAligner::new(RATE);
        for i in 0..50u64 {
            a.push(Channel::Caller, ms(20 * i), &pkt(1));
            a.push(Channel::Agent, ms(20 * i), &pkt(2));
        }
        let mut f = a.drain_frames(ms(200));
        assert_eq!(a.pause(ms(300)), ms(300));
        assert!(a.is_paused());
        assert_eq!(
            a.pause(ms(400)),
            ms(300),
            "second pause keeps the first start"
        );
        f.extend(a.drain_frames(ms(500)));
        a.resume(ms(700));
        assert!(!a.is_paused());
        f.extend(a.drain_frames(ms(1000)));
        assert_eq!(f.len(), 8000, "1 s of audio for 1 s of call");
        assert!(f[..2400].iter().all(|&x| x == [1, 2]));
        assert!(
            f[2400..5600].iter().all(|&x| x == [0, 0]),
            "paused span silent"
        );
        assert!(f[5600..].iter().all(|&x| x == [1, 2]));
        assert_eq!(a.stats().paused_frames, 3200);
        a.resume(ms(1000)); // resume without pause: no effect
        assert_eq!(a.drain_frames(ms(1020)).len(), 160);
    }

    #[test]
    fn aligner_late_pause_is_clamped_to_drained_position() {
        let mut a = ChannelAligner::new(RATE);
        a.push(Channel::Caller, ms(0), &vec![1; 1600]);
        assert_eq!(a.drain_frames(ms(100)).len(), 800);
        // The agent pressed "pause" at 50 ms but the signal arrived late.
        assert_eq!(a.pause(ms(50)), ms(100));
        a.resume(ms(150));
        let f = a.drain_frames(ms(200));
        assert!(f[..400].iter().all(|&x| x == [0, 0]));
        assert!(f[400..].iter().all(|&x| x == [1, 0]));
    }

    #[test]
    fn aligner_resume_before_pause_start_is_empty_span() {
        let mut a = ChannelAligner::new(RATE);
        a.push(Channel::Caller, ms(0), &vec![1; 800]);
        a.pause(ms(50));
        a.resume(ms(10));
        let f = a.drain_frames(ms(100));
        assert!(f.iter().all(|&x| x == [1, 0]));
        assert_eq!(a.stats().paused_frames, 0);
    }

    // ---- writer -----------------------------------------------------------

    /// 20 ms of stereo: caller ramps, agent is the negated ramp.
    fn chunk(seq: u64) -> Vec<i16> {
        (0..160)
            .flat_map(|i| {
                let v = ((seq * 160 + i) % 30_000) as i16;
                [v, -v]
            })
            .collect()
    }

    #[test]
    fn writer_end_to_end_stereo_8khz_with_sha256() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = recording_path(dir.path(), "市民热线", (2025, 3, 7), "abc@10.0.0.1");
        let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
        assert_eq!(h.path(), path);
        let mut a = ChannelAligner::new(RATE);
        // 2.5 s; the agent is on hold for the second half second.
        for i in 0..125u64 {
            let v = i as i16;
            a.push(Channel::Caller, ms(20 * i), &pkt(v));
            if i < 100 {
                a.push(Channel::Agent, ms(20 * i), &pkt(-v));
            }
            let frames = a.drain_frames(ms((20 * (i + 1)).saturating_sub(100)));
            h.try_send(frames.into_flattened()).expect("queued");
        }
        h.try_send(a.drain_frames(ms(2500)).into_flattened())
            .expect("queued");
        let meta = h.finish().expect("finish");

        assert_eq!(meta.path, path);
        assert!(path.exists());
        assert!(!part_path(&path).exists(), ".part renamed away");
        assert_eq!(meta.frames, 20_000);
        assert_eq!(meta.duration, ms(2500));
        assert_eq!(meta.dropped_chunks, 0);
        let bytes = fs::read(&path).expect("read");
        assert_eq!(meta.bytes, bytes.len() as u64);
        assert_eq!(meta.bytes, 44 + 20_000 * 4);
        assert_eq!(meta.sha256, hex::encode(Sha256::digest(&bytes)));

        let (spec, s) = reader_samples(&path);
        assert_eq!(spec, CALL_WAV_SPEC);
        assert_eq!(s.len(), 40_000);
        for (k, fr) in s.chunks(2).enumerate() {
            let i = (k / 160) as i16;
            let agent = if i < 100 { -i } else { 0 };
            assert_eq!(fr, [i, agent], "frame {k}");
        }
    }

    #[test]
    fn writer_patches_header_while_still_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c1.wav");
        let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
        for i in 0..75 {
            h.try_send(chunk(i)).expect("queued"); // 1.5 s
        }
        h.barrier();
        // Read the unfinished file while the writer still holds it open.
        let part = part_path(&path);
        let r = hound::WavReader::open(&part).expect("open .part");
        assert_eq!(r.duration(), 8000, "header covers the first whole second");
        let (_, s) = reader_samples(&part);
        assert_eq!(s[..2], chunk(0)[..2]);
        let meta = h.finish().expect("finish");
        assert_eq!(meta.frames, 12_000);
    }

    #[test]
    fn writer_backpressure_drops_instead_of_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stall.wav");
        let opts = WriterOptions {
            queue_chunks: 8,
            ..WriterOptions::default()
        };
        let h = RecordingWriter::start_with(&path, CALL_WAV_SPEC, opts).expect("start");
        let release = h.stall();
        // The disk "hangs": 8 chunks fit in the queue, the rest are dropped at
        // once (if try_send blocked, this test would hang).
        let results: Vec<_> = (0..13).map(|i| h.try_send(chunk(i))).collect();
        assert!(results[..8].iter().all(Result::is_ok));
        assert!(results[8..].iter().all(|r| *r == Err(Backpressure::Full)));
        assert_eq!(h.dropped_chunks(), 5);
        drop(release);
        let meta = h.finish().expect("finish");
        assert_eq!(meta.dropped_chunks, 5);
        assert_eq!(meta.frames, 8 * 160);
        let (_, s) = reader_samples(&path);
        assert_eq!(s[..320], chunk(0)[..]);
    }

    #[test]
    fn writer_rejects_partial_frames_and_bad_specs_and_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.wav");
        let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
        assert_eq!(
            h.try_send(vec![1, 2, 3]),
            Err(Backpressure::PartialFrame {
                samples: 3,
                channels: 2
            })
        );
        // The .part exists: a second recording to the same path is refused.
        assert!(matches!(
            RecordingWriter::start(&path, CALL_WAV_SPEC),
            Err(RecorderError::AlreadyExists { .. })
        ));
        let meta = h.finish().expect("finish");
        assert_eq!(meta.dropped_chunks, 1);
        assert_eq!(meta.frames, 0);
        let e = RecordingWriter::start(&path, CALL_WAV_SPEC).expect_err("exists");
        assert!(e.to_string().contains("x.wav"), "{e}");
        let float = hound::WavSpec {
            sample_format: hound::SampleFormat::Float,
            bits_per_sample: 32,
            ..CALL_WAV_SPEC
        };
        let e = RecordingWriter::start(&dir.path().join("f.wav"), float).expect_err("spec");
        assert!(matches!(e, RecorderError::UnsupportedSpec { .. }));
        assert!(e.to_string().contains("f.wav"), "{e}");
    }

    #[test]
    fn writer_error_names_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The parent "directory" is a file: creating it fails.
        let blocker = dir.path().join("blocker");
        fs::write(&blocker, b"x").expect("write");
        let e = RecordingWriter::start(&blocker.join("y.wav"), CALL_WAV_SPEC).expect_err("fails");
        assert!(matches!(e, RecorderError::Io { .. }));
        assert!(e.to_string().contains("blocker"), "{e}");
    }

    #[test]
    fn writer_dropped_without_finish_still_finalises() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dropped.wav");
        let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
        h.try_send(chunk(0)).expect("queued");
        drop(h);
        for _ in 0..500 {
            if path.exists() {
                break;
            }
            std::thread::sleep(ms(10));
        }
        let (_, s) = reader_samples(&path);
        assert_eq!(s, chunk(0));
    }

    #[test]
    fn crash_leaves_playable_file_repaired_at_next_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = recording_path(dir.path(), "t1", (2025, 1, 2), "crash-1");
        let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
        for i in 0..155 {
            h.try_send(chunk(i)).expect("queued"); // 3.1 s
            if i % 50 == 0 {
                h.barrier(); // keep within the queue
            }
        }
        h.barrier();
        h.crash(); // hound writer leaked: no finalise, buffered bytes lost
        let part = part_path(&path);
        assert!(!path.exists());
        // Even before repair, the header covers >= 2 s.
        let r = hound::WavReader::open(&part).expect("crashed .part is a WAV");
        assert!(
            r.duration() >= 16_000,
            "header covers {} frames",
            r.duration()
        );
        drop(r);

        let reports = repair_unfinished(dir.path());
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].path, part);
        let RepairOutcome::Repaired {
            wav,
            frames,
            duration,
            discarded_bytes,
        } = &reports[0].outcome
        else {
            panic!("not repaired: {reports:?}");
        };
        assert_eq!(wav, &path);
        assert!(*frames >= 24_000, "at least the 3 s patched: {frames}");
        assert!(*duration >= Duration::from_secs(3));
        assert_eq!(*discarded_bytes % 4, *discarded_bytes);
        let (_, s) = reader_samples(&path);
        assert_eq!(s.len() as u64, frames * 2);
        let expect: Vec<i16> = (0..155).flat_map(chunk).collect();
        assert_eq!(s[..], expect[..s.len()]);
        assert!(
            repair_unfinished(dir.path()).is_empty(),
            "nothing left to repair"
        );
        // Its metadata, read back as the restart links it to the record.
        let meta = describe_finished(&path).expect("describe");
        assert_eq!(meta.frames, *frames);
        assert_eq!(meta.duration, *duration);
        let bytes = fs::read(&path).expect("read");
        assert_eq!(meta.bytes, bytes.len() as u64);
        assert_eq!(meta.sha256, hex::encode(Sha256::digest(&bytes)));
        let missing = describe_finished(&dir.path().join("gone.wav")).expect_err("no file");
        assert!(missing.to_string().contains("gone.wav"), "{missing}");
    }

    const KILL_CHILD_ENV: &str = "RECORDER_KILL9_CHILD_DIR";

    /// Child half of `kill_9_leaves_repairable_file`: records until killed.
    /// Does nothing in a normal test run.
    #[test]
    fn kill_9_child() {
        let Ok(dir) = std::env::var(KILL_CHILD_ENV) else {
            return;
        };
        let path = Path::new(&dir).join("k9.wav");
        let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
        for i in 0..130 {
            h.try_send(chunk(i)).expect("queued");
        }
        h.barrier();
        println!("RECORDED");
        io::stdout().flush().ok();
        loop {
            std::thread::sleep(ms(100));
        }
    }

    #[cfg(unix)]
    #[test]
    fn kill_9_leaves_repairable_file() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = std::env::current_exe().expect("test binary");
        // Test name without the crate prefix, wherever this module lives.
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let mut child = std::process::Command::new(exe)
            .args([&format!("{module}::kill_9_child"), "--exact", "--nocapture"])
            .env(KILL_CHILD_ENV, dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let ready = io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("RECORDED"));
        child.kill().expect("SIGKILL"); // std kills with SIGKILL on Unix
        child.wait().expect("reap");
        assert!(ready, "child did not record");
        let reports = repair_unfinished(dir.path());
        assert_eq!(reports.len(), 1, "{reports:?}");
        let RepairOutcome::Repaired { wav, frames, .. } = &reports[0].outcome else {
            panic!("not repaired: {reports:?}");
        };
        assert!(*frames >= 16_000, "{frames} frames survive");
        let (_, s) = reader_samples(wav);
        assert_eq!(s[..320], chunk(0)[..]);
    }

    // ---- repair -----------------------------------------------------------

    /// A hound-written file of `frames` frames whose header sizes were
    /// never patched (as if killed before the first flush).
    fn unpatched_part(path: &Path, frames: u32) -> Vec<u8> {
        let mut cursor = io::Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut cursor, CALL_WAV_SPEC).expect("writer");
            for i in 0..frames * 2 {
                w.write_sample(i as i16).expect("sample");
            }
            w.finalize().expect("finalize");
        }
        let mut bytes = cursor.into_inner();
        bytes[4..8].fill(0);
        bytes[40..44].fill(0);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(path, &bytes).expect("write");
        bytes
    }

    #[test]
    fn repair_truncated_mid_sample() {
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("a/b/mid.wav.part");
        let mut bytes = unpatched_part(&part, 1000);
        bytes.extend_from_slice(&[1, 2, 3]); // 1.5 samples of the next frame
        fs::write(&part, &bytes).expect("write");
        let reports = repair_unfinished(dir.path());
        let RepairOutcome::Repaired {
            wav,
            frames,
            discarded_bytes,
            duration,
        } = &reports[0].outcome
        else {
            panic!("{reports:?}");
        };
        assert_eq!((*frames, *discarded_bytes), (1000, 3));
        assert_eq!(*duration, ms(125));
        assert_eq!(wav, &dir.path().join("a/b/mid.wav"));
        assert!(!part.exists());
        let (_, s) = reader_samples(wav);
        assert_eq!(s.len(), 2000);
        assert_eq!(s[1999], 1999);
        assert_eq!(fs::metadata(wav).expect("stat").len(), 44 + 4000);
    }

    #[test]
    fn repair_header_only_gives_valid_empty_wav() {
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("h.wav.part");
        let bytes = unpatched_part(&part, 0);
        assert_eq!(bytes.len(), 44);
        let reports = repair_unfinished(dir.path());
        assert!(matches!(
            reports[0].outcome,
            RepairOutcome::Repaired { frames: 0, .. }
        ));
        let (spec, s) = reader_samples(&dir.path().join("h.wav"));
        assert_eq!(spec, CALL_WAV_SPEC);
        assert!(s.is_empty());
    }

    #[test]
    fn repair_deletes_empty_and_header_truncated_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.wav.part");
        fs::write(&empty, b"").expect("write");
        let short = dir.path().join("short.wav.part");
        let head = unpatched_part(&short, 0);
        fs::write(&short, &head[..20]).expect("write");
        let noriff = dir.path().join("tiny.wav.part");
        fs::write(&noriff, b"RI").expect("write");
        let mut reports = repair_unfinished(dir.path());
        reports.sort_by(|a, b| a.path.cmp(&b.path));
        let outcomes: Vec<_> = reports
            .iter()
            .map(|r| match r.outcome {
                RepairOutcome::Deleted(why) => Some(why),
                _ => None,
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                Some(DeleteReason::Empty),
                Some(DeleteReason::TruncatedHeader),
                Some(DeleteReason::TruncatedHeader)
            ]
        );
        assert!(!empty.exists() && !short.exists() && !noriff.exists());
    }

    #[test]
    fn repair_leaves_foreign_and_conflicting_files_and_ignores_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.wav.part");
        fs::write(&junk, vec![7u8; 1000]).expect("write");
        // A RIFF file whose chunks before "data" run past 4 KiB: left alone,
        // never deleted as "truncated".
        let odd = dir.path().join("odd.wav.part");
        let mut bytes = b"RIFF\0\0\0\0WAVEJUNK".to_vec();
        bytes.extend_from_slice(&10_000u32.to_le_bytes());
        bytes.resize(20_000, 0);
        fs::write(&odd, &bytes).expect("write");
        // A .part whose .wav already exists is not overwritten.
        let part = dir.path().join("dup.wav.part");
        unpatched_part(&part, 10);
        fs::write(dir.path().join("dup.wav"), b"finished").expect("write");
        // Not unfinished recordings: untouched.
        fs::write(dir.path().join("other.part"), b"x").expect("write");
        fs::write(dir.path().join(".wav.part"), b"").expect("write");
        let mut reports = repair_unfinished(dir.path());
        reports.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(reports.len(), 3, "{reports:?}");
        for r in &reports {
            let RepairOutcome::Failed(e) = &r.outcome else {
                panic!("{reports:?}");
            };
            let file = r.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let name = file.split('.').next().unwrap_or("");
            assert!(e.to_string().contains(name), "{e}");
        }
        assert!(junk.exists() && part.exists() && odd.exists());
        assert_eq!(
            fs::read(dir.path().join("dup.wav")).expect("read"),
            b"finished"
        );
        assert!(dir.path().join("other.part").exists());
    }

    #[test]
    fn repair_of_missing_dir_reports_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reports = repair_unfinished(&dir.path().join("nope"));
        assert_eq!(reports.len(), 1);
        assert!(matches!(reports[0].outcome, RepairOutcome::Failed(_)));
    }

    // ---- paths ------------------------------------------------------------

    #[test]
    fn path_layout_and_chinese_tenant() {
        let p = recording_path(
            Path::new("/rec"),
            "北京市12345",
            (2025, 3, 7),
            "a84b4c76e66710@pc33.atlanta.com",
        );
        assert_eq!(
            p,
            Path::new("/rec/北京市12345/2025/03/07/a84b4c76e66710@pc33.atlanta.com.wav")
        );
    }

    #[test]
    fn path_components_are_sanitised() {
        let root = Path::new("/rec");
        for (tenant, call) in [
            ("..", "../../etc/passwd"),
            ("a/b", "x\\y"),
            ("", ""),
            (".hidden", "c\u{0}d\n"),
            ("t\u{202E}vaw.exe", "id:1*?<>|\""),
        ] {
            let p = recording_path(root, tenant, (2025, 12, 31), call);
            let rel = p.strip_prefix(root).expect("under root");
            let parts: Vec<_> = rel.components().collect();
            assert_eq!(parts.len(), 5, "{p:?}");
            for c in &parts {
                let std::path::Component::Normal(s) = c else {
                    panic!("non-normal component in {p:?}");
                };
                let s = s.to_str().expect("utf8");
                assert!(!s.starts_with('.'), "{p:?}");
                assert!(!s.chars().any(is_unsafe_char), "{p:?}");
            }
            assert!(p.to_string_lossy().ends_with(".wav"));
        }
        // Distinct ids that sanitise alike still get distinct files.
        let a = recording_path(root, "t", (2025, 1, 1), "a/b");
        let b = recording_path(root, "t", (2025, 1, 1), "a_b");
        let c = recording_path(root, "t", (2025, 1, 1), "a\\b");
        assert_ne!(a, b);
        assert_ne!(a, c);
        // Long names are cut on a character boundary.
        let long = "话".repeat(200);
        let p = recording_path(root, &long, (2025, 1, 1), "x");
        let tenant = p
            .strip_prefix(root)
            .expect("root")
            .iter()
            .next()
            .expect("tenant");
        assert!(tenant.len() <= MAX_COMPONENT_BYTES + 9);
    }

    // ---- timing -----------------------------------------------------------

    /// Not asserted: prints the packet-path cost (aligner push + drain +
    /// try_send) and the writer thread's cost per 20 ms stereo frame.
    #[test]
    #[allow(clippy::disallowed_methods)] // a benchmark reads the clock
    fn timing_per_20ms_frame() {
        use std::time::Instant;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("timing.wav");
        let ticks = 3000u64; // 60 s of call
        let h = RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start");
        let mut a = ChannelAligner::new(RATE);
        let caller = pkt(100);
        let agent = pkt(-100);
        let t0 = Instant::now();
        let mut packet_path = Duration::ZERO;
        for i in 0..ticks {
            let t = Instant::now();
            a.push(Channel::Caller, ms(20 * i), &caller);
            a.push(Channel::Agent, ms(20 * i), &agent);
            let f = a.drain_frames(ms((20 * (i + 1)).saturating_sub(100)));
            let _ = h.try_send(f.into_flattened());
            packet_path += t.elapsed();
            if i % 128 == 0 {
                h.barrier(); // stay within the queue: measure, don't drop
            }
        }
        let _ = h.try_send(a.drain_frames(ms(20 * ticks)).into_flattened());
        let meta = h.finish().expect("finish");
        let total = t0.elapsed();
        println!(
            "recorder timing: packet path (2 pushes + drain + try_send) {:?}/frame; \
             end to end incl. writer thread, finalise and sha256 {:?}/frame; \
             {} frames, {} dropped",
            packet_path / ticks as u32,
            total / ticks as u32,
            meta.frames,
            meta.dropped_chunks
        );
    }
}
