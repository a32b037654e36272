//! The recording's shell: [`RecordingWriter`] hands each recording to the
//! writer pool (`pool`: a few threads for all recordings), fed through a
//! bounded count of chunks in flight that never blocks the call's audio
//! ([`RecordingHandle::try_send`] drops and counts when the disk stalls);
//! the pool writes `<name>.wav.part` (or `.opus.part`, per
//! [`WriterOptions::format`]) and patches the header (or ends an Ogg page)
//! at intervals,
//! and [`RecordingHandle::finish`] finalises, fsyncs, renames and hashes
//! the file ([`RecordingMeta`]) on the finishing thread. [`describe_finished`]
//! reads the same metadata back from a file a crash left (call recording
//! issue).
//!
//! A call's recording fills one chunk at a time ([`RecordingHandle::fill`])
//! and sends it once it holds [`WriterOptions::write_every`] of audio: the
//! chunk is the write buffer, written with one `write`, so a recording
//! holds no `BufWriter` and no spare buffers of its own (issue 16 "Media at
//! the limit": RSS growth ≤ 64 KiB per call; at 256 ms about four writes a
//! call a second, and one `pwrite` of the header).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Duration;

use super::error::{io_err, RecorderError};
use super::format::{
    hash_file, index_to_time, is_ogg_path, part_path, sync_parent_dir, time_to_index,
    RecordingFormat,
};
use super::ogg::scan;
use super::opus::{OpusSink, OpusSinkError};
use super::pool::{pool, Msg, Shared, MAX_SPARE_SAMPLES};
use super::sample::{Chunk, Sample};
use super::seal::{describe_sealed, seal_finished};
use super::wav::{parse_layout, WavFile, WavKind};
use crate::media::at_rest::{file_is_sealed, SealingKey};
use crate::media::codec::G711;

/// Tuning of a [`RecordingWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Chunks of this recording queued for the writer pool at most (at
    /// least 1). With 20 ms chunks, 256 is about 5 s of disk stall
    /// absorbed; [`RecordingHandle::fill`]'s chunks count once per 100 ms
    /// they carry (256: ≈ 26 s).
    pub queue_chunks: usize,
    /// How much audio is written between header patches (the most a crash
    /// leaves outside the header before repair).
    pub header_interval: Duration,
    /// Seal the finished file with this key (issue 14 §6); `None`: the
    /// file stays as written.
    pub seal: Option<SealingKey>,
    /// How the audio is stored (issue 16 item 3). The path's extension
    /// should be the format's ([`RecordingFormat::extension`]).
    pub format: RecordingFormat,
    /// How much audio a WAV recording's chunk carries before
    /// [`RecordingHandle::fill`] sends it (issue 16 "Media at the limit"):
    /// the chunk is the recording's write buffer, written with one
    /// `write`, so this sets the writes per call per second (256 ms: about
    /// four, 4 KiB each for A-law, 8 KiB for PCM16) and what a crash loses
    /// beyond the aligner's jitter allowance. Opus recordings send every
    /// fill (the encoder gathers a page per header interval itself).
    pub write_every: Duration,
}

/// [`WriterOptions::write_every`]'s default: 4 KiB of A-law stereo.
pub const DEFAULT_WRITE_EVERY: Duration = Duration::from_millis(256);

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            queue_chunks: 256,
            header_interval: Duration::from_secs(1),
            seal: None,
            format: RecordingFormat::Pcm16,
            write_every: DEFAULT_WRITE_EVERY,
        }
    }
}

/// What a finished recording is, for the call's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingMeta {
    /// The final file (`.wav`, or `.opus` for Ogg Opus).
    pub path: PathBuf,
    /// Length of the audio.
    pub duration: Duration,
    /// Frames of audio (one sample per channel each).
    pub frames: u64,
    /// Size of the file in bytes (of the plaintext when the file is sealed
    /// at rest: what a download delivers).
    pub bytes: u64,
    /// SHA-256 of the file (of the plaintext when sealed), lowercase hex.
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

/// Starts recordings; see [`RecordingHandle`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordingWriter;

impl RecordingWriter {
    /// Starts recording to `path` (written as `path` +
    /// [`PART_SUFFIX`](super::PART_SUFFIX) until finished) with the default
    /// [`WriterOptions`].
    ///
    /// Creates the parent directories and the file on the calling thread
    /// (blocking file-system calls: call it from call setup, not the packet
    /// path). Fails if `path` or its `.part` exists. `path` should end in
    /// `.wav` (as [`recording_path`](super::recording_path) does), or
    /// `.opus` for [`RecordingFormat::Opus`]:
    /// [`repair_unfinished`](super::repair_unfinished) looks for
    /// `*.wav.part` and `*.opus.part`.
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
        let (sink, max_frames) = match open_sink(options.format, file, spec, &part) {
            Ok(opened) => opened,
            Err(e) => {
                fs::remove_file(&part).ok();
                return Err(e);
            }
        };
        let header_every = time_to_index(options.header_interval, spec.sample_rate).max(1);
        let job = WriterJob {
            path: path.to_path_buf(),
            part: part.clone(),
            spec,
            sink,
            sync_handle,
            header_every,
            max_frames,
            seal: options.seal,
            frames: 0,
            since_patch: 0,
            overflow: 0,
        };
        // A whole number of frames, and a buffer the free list keeps.
        let channels = usize::from(spec.channels);
        let batch = match options.format {
            RecordingFormat::Opus => 0,
            RecordingFormat::Pcm16 | RecordingFormat::Alaw => {
                let frames = time_to_index(options.write_every, spec.sample_rate).max(1);
                let frames = usize::try_from(frames).unwrap_or(usize::MAX);
                (frames.min(MAX_SPARE_SAMPLES / channels).max(1)) * channels
            }
        };
        let capacity = options.queue_chunks.max(1);
        let per_chunk = usize::try_from(options.write_every.as_millis() / 100)
            .unwrap_or(usize::MAX)
            .max(1);
        let fill_capacity = match options.format {
            RecordingFormat::Opus => capacity,
            RecordingFormat::Pcm16 | RecordingFormat::Alaw => capacity.div_ceil(per_chunk),
        };
        let filling = Filling {
            chunk: None,
            batch,
            capacity: fill_capacity,
        };
        let spawn_failed = |reason: String| io_err(&part, "start writer")(io::Error::other(reason));
        let (id, worker, shared) = pool()
            .map_err(spawn_failed)?
            .submit(job, filling)
            .map_err(spawn_failed)?;
        Ok(RecordingHandle {
            path: path.to_path_buf(),
            channels: spec.channels,
            format: options.format,
            id,
            worker,
            shared,
            capacity,
            open: true,
            dropped: AtomicU64::new(0),
        })
    }
}

/// A recording in progress. Feed it with [`Self::try_send`] (never blocks)
/// and end it with [`Self::finish`]. Dropping it without `finish` still
/// finalises the file in the background, but the metadata is lost.
pub struct RecordingHandle {
    path: PathBuf,
    channels: u16,
    format: RecordingFormat,
    /// Its id in the pool.
    id: u64,
    /// Its worker's queue.
    worker: Sender<Msg>,
    /// Chunks sent and not yet written, written chunks' buffers.
    shared: Arc<Shared>,
    /// The most chunks in flight ([`WriterOptions::queue_chunks`]).
    capacity: usize,
    /// Not yet finished (a drop then finishes it in the pool).
    open: bool,
    dropped: AtomicU64,
}

/// The chunk [`RecordingHandle::fill`] is filling, kept with what the
/// handle shares with its worker (behind the `Arc`, so the handle, which
/// a call's future holds in several of its states, stays as small as it
/// was; only the handle touches it).
#[derive(Debug)]
pub(super) struct Filling {
    /// The recording's write buffer.
    chunk: Option<Chunk>,
    /// Samples a chunk carries before it is sent (0: every fill is sent).
    batch: usize,
    /// The most filled chunks in flight: the bound counts a chunk once per
    /// 100 ms it carries, so what a stalled disk holds per call stays what
    /// it was with the relay's 100 ms chunks (256: ≈ 26 s, ≈ 400 KiB of
    /// A-law).
    capacity: usize,
}

impl std::fmt::Debug for RecordingHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingHandle")
            .field("path", &self.path)
            .field("id", &self.id)
            .field("inflight", &self.shared.inflight.load(Ordering::Relaxed))
            .field("dropped", &self.dropped_chunks())
            .finish()
    }
}

impl Drop for RecordingHandle {
    fn drop(&mut self) {
        if self.open {
            self.flush();
            self.worker.send(Msg::Abandon(self.id)).ok();
        }
    }
}

impl RecordingHandle {
    /// The final path of the recording (without `.part`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How the audio is stored ([`WriterOptions::format`]).
    pub fn format(&self) -> RecordingFormat {
        self.format
    }

    /// Chunks dropped so far.
    pub fn dropped_chunks(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// An empty buffer for the next chunk: a written chunk's, handed back
    /// by the writer to its free list (so a recording's steady state
    /// allocates none), or a new one. Never blocks.
    pub fn spare_buffer<S: Sample>(&self) -> Vec<S> {
        self.shared.free.take().unwrap_or_default()
    }

    /// Samples (all channels) a chunk carries before [`Self::fill`] sends
    /// it; 0 when every fill is sent
    /// ([`WriterOptions::write_every`]).
    pub fn chunk_samples(&self) -> usize {
        self.filling().batch
    }

    /// The chunk being filled (only the handle locks it: never waits).
    fn filling(&self) -> std::sync::MutexGuard<'_, Filling> {
        self.shared
            .filling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends frames to the chunk being filled (the recording's write
    /// buffer, issue 16 "Media at the limit") and sends each chunk once it
    /// holds [`Self::chunk_samples`]: `fill(buffer, room)` appends at most
    /// `room` interleaved frames to `buffer` and returns how many it
    /// appended; it is called again with a new chunk while it fills the
    /// one it was given. A chunk not yet full stays for the next fill (an
    /// Opus recording's is sent at once), an empty one goes back to the
    /// free list. Never blocks; a chunk the queue refuses is dropped and
    /// counted as [`Self::try_send_chunk`] does.
    pub fn fill<S: Sample>(&mut self, mut fill: impl FnMut(&mut Vec<S>, usize) -> usize) {
        let channels = usize::from(self.channels);
        let mut filling = self.filling();
        let (batch, capacity) = (filling.batch, filling.capacity);
        if filling.chunk.as_ref().is_some_and(|c| !S::is_kind(c)) {
            // A chunk of the other kind (the caller changed kinds): it goes
            // as it is.
            if let Some(chunk) = filling.chunk.take() {
                self.send_filled(chunk, capacity);
            }
        }
        loop {
            let mut buffer = match filling.chunk.take().and_then(S::from_chunk) {
                Some(buffer) => buffer,
                None => self.fresh_buffer(batch),
            };
            let room = if batch == 0 {
                usize::MAX
            } else {
                batch.saturating_sub(buffer.len()) / channels
            };
            let added = fill(&mut buffer, room);
            if batch == 0 || buffer.len() >= batch || buffer.is_empty() {
                self.send_filled(S::into_chunk(buffer), capacity);
            } else {
                filling.chunk = Some(S::into_chunk(buffer));
            }
            if batch == 0 || added < room || added == 0 {
                return;
            }
        }
    }

    /// Sends the chunk being filled, full or not (the end of the
    /// recording).
    pub fn flush(&mut self) {
        let mut filling = self.filling();
        if let Some(chunk) = filling.chunk.take() {
            self.send_filled(chunk, filling.capacity);
        }
    }

    /// A filled chunk to the writer (dropped and counted past `capacity`
    /// in flight), an empty one back to the free list.
    fn send_filled(&self, chunk: Chunk, capacity: usize) {
        if chunk.is_empty() {
            self.shared.free.give_back(chunk);
        } else {
            let _ = self.send_within(chunk, capacity);
        }
    }

    /// A buffer for a chunk to fill: from the free list (grown to a whole
    /// chunk of `batch` samples once), or a new one of a whole chunk.
    fn fresh_buffer<S: Sample>(&self, batch: usize) -> Vec<S> {
        let mut buffer: Vec<S> = self.shared.free.take().unwrap_or_default();
        buffer.reserve_exact(batch);
        buffer
    }

    /// Queues interleaved linear samples (whole frames) for writing,
    /// without ever blocking: if the queue is full or the writer has
    /// stopped, the chunk is dropped and counted. ([`Self::try_send_chunk`]
    /// with [`Chunk::Linear`].)
    pub fn try_send(&self, interleaved: Vec<i16>) -> Result<(), Backpressure> {
        self.try_send_chunk(Chunk::Linear(interleaved))
    }

    /// Queues a chunk of either kind (whole frames) as [`Self::try_send`]
    /// does. Any kind goes into any format; the recording's own kind (A-law
    /// bytes for [`RecordingFormat::Alaw`], linear PCM for the others) is
    /// written with no conversion.
    pub fn try_send_chunk(&self, interleaved: Chunk) -> Result<(), Backpressure> {
        self.send_within(interleaved, self.capacity)
    }

    /// [`Self::try_send_chunk`] within `capacity` chunks in flight.
    fn send_within(&self, interleaved: Chunk, capacity: usize) -> Result<(), Backpressure> {
        let result = if !interleaved.len().is_multiple_of(usize::from(self.channels)) {
            Err(Backpressure::PartialFrame {
                samples: interleaved.len(),
                channels: self.channels,
            })
        } else {
            self.queue(interleaved, capacity)
        };
        if result.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Ends the recording: waits for the queue to be written, finalises the
    /// header, fsyncs, renames `.part` to `.wav` (or with
    /// [`WriterOptions::seal`] seals it into `.wav` and deletes the `.part`)
    /// and hashes the WAV.
    /// Blocks on disk I/O (call it from a blocking context). On error the
    /// `.part` file is left for [`repair_unfinished`](super::repair_unfinished).
    pub fn finish(mut self) -> Result<RecordingMeta, RecorderError> {
        self.flush();
        self.open = false;
        let (reply, done) = mpsc::sync_channel(1);
        let gone = || RecorderError::WriterPanicked {
            path: self.path.clone(),
        };
        self.worker
            .send(Msg::Finish(self.id, reply))
            .map_err(|_| gone())?;
        let job = done.recv().map_err(|_| gone())??;
        let overflow = job.overflow;
        let mut meta = job.complete()?;
        meta.dropped_chunks = self.dropped_chunks() + overflow;
        Ok(meta)
    }

    /// One chunk to the worker, within this recording's bound.
    fn queue(&self, interleaved: Chunk, capacity: usize) -> Result<(), Backpressure> {
        self.shared
            .inflight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .map_err(|_| Backpressure::Full)?;
        self.worker
            .send(Msg::Chunk(self.id, interleaved))
            .map_err(|_| {
                self.shared.inflight.fetch_sub(1, Ordering::AcqRel);
                Backpressure::WriterGone
            })
    }

    #[cfg(test)]
    fn send_hook(&self, msg: Msg) {
        self.worker.send(msg).ok();
    }

    /// Test hook: returns once the writer has processed everything queued
    /// before this call.
    #[cfg(test)]
    pub(super) fn barrier(&self) {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.send_hook(Msg::Barrier(ack_tx));
        ack_rx.recv().ok();
    }

    /// Test hook: stalls the recording's worker (as a hung disk would)
    /// until the returned sender is dropped; returns once it is stalled.
    #[cfg(test)]
    pub(super) fn stall(&self) -> mpsc::SyncSender<()> {
        let (stalled_tx, stalled_rx) = mpsc::sync_channel(1);
        let (release_tx, release_rx) = mpsc::sync_channel(1);
        self.send_hook(Msg::Stall {
            stalled: stalled_tx,
            release: release_rx,
        });
        stalled_rx.recv().ok();
        release_tx
    }

    /// Test hook: the recording dies as under `kill -9`: the writer is
    /// leaked without finalising (its buffered bytes are lost) and the
    /// `.part` file stays.
    #[cfg(test)]
    pub(super) fn crash(mut self) {
        self.open = false;
        self.filling().chunk = None; // lost with the process
        let (ack, acked) = mpsc::sync_channel(1);
        self.send_hook(Msg::Crash(self.id, ack));
        acked.recv().ok();
    }
}

/// The file being written, by format.
enum Sink {
    /// PCM16 WAV.
    Pcm16(WavFile),
    /// A-law WAV.
    Alaw(WavFile),
    /// Ogg Opus.
    Opus(Box<OpusSink>),
}

/// Opens the format's writer on the new file: the sink and the most frames
/// it can hold (a WAV's 4 GiB).
fn open_sink(
    format: RecordingFormat,
    file: File,
    spec: hound::WavSpec,
    part: &Path,
) -> Result<(Sink, u64), RecorderError> {
    let wav_limit = |header: u64, block_align: u64| (u64::from(u32::MAX) - header) / block_align;
    match format {
        RecordingFormat::Pcm16 | RecordingFormat::Alaw => {
            let kind = match format {
                RecordingFormat::Alaw => WavKind::Alaw,
                _ => WavKind::Pcm16,
            };
            let wav = WavFile::new(file, kind, spec.channels, spec.sample_rate)
                .map_err(io_err(part, "write header"))?;
            let block_align = u64::from(spec.channels) * u64::from(kind.sample_bytes());
            let max = wav_limit(kind.header_len(), block_align);
            Ok((
                match kind {
                    WavKind::Alaw => Sink::Alaw(wav),
                    WavKind::Pcm16 => Sink::Pcm16(wav),
                },
                max,
            ))
        }
        RecordingFormat::Opus => {
            let sink = OpusSink::new(file, spec.channels, spec.sample_rate)
                .map_err(opus_err(part, "start the Ogg Opus stream"))?;
            Ok((Sink::Opus(Box::new(sink)), u64::MAX))
        }
    }
}

fn opus_err<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(OpusSinkError) -> RecorderError + 'a {
    move |e| match e {
        OpusSinkError::Io(source) => io_err(path, op)(source),
        OpusSinkError::Encoder(reason) => RecorderError::Opus {
            path: path.to_path_buf(),
            op,
            reason,
        },
    }
}

pub(super) struct WriterJob {
    path: PathBuf,
    part: PathBuf,
    spec: hound::WavSpec,
    sink: Sink,
    sync_handle: File,
    header_every: u64,
    max_frames: u64,
    seal: Option<SealingKey>,
    /// Frames written.
    frames: u64,
    /// Frames written since the header was last patched.
    since_patch: u64,
    /// Chunks dropped here: past the 4 GiB WAV limit, or after a write
    /// error (counted by the pool).
    pub(super) overflow: u64,
}

/// A writer thread's conversion buffers, shared by its recordings (not
/// one per recording): a chunk's bytes for a PCM16 file or A-law ones for
/// a linear chunk, and a chunk of the other kind as linear PCM (an A-law
/// chunk for a `pcm16` or `opus` file).
#[derive(Debug, Default)]
pub(super) struct Scratch {
    bytes: Vec<u8>,
    linear: Vec<i16>,
}

impl Scratch {
    /// Most bytes kept between chunks (a test's or a voicemail's big
    /// chunk does not stay).
    const KEEP: usize = 64 * 1024;

    /// Frees what a big chunk grew.
    pub(super) fn trim(&mut self) {
        if self.bytes.capacity() > Self::KEEP {
            self.bytes = Vec::new();
        }
        if self.linear.capacity() * 2 > Self::KEEP {
            self.linear = Vec::new();
        }
    }
}

impl WriterJob {
    /// The final path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The file being written.
    pub(super) fn part(&self) -> &Path {
        &self.part
    }

    /// Write one chunk of interleaved samples, patching the header every
    /// `header_every` frames; a chunk past the 4 GiB WAV limit is dropped
    /// and counted (warned once).
    pub(super) fn write_chunk(
        &mut self,
        samples: &Chunk,
        scratch: &mut Scratch,
    ) -> Result<(), RecorderError> {
        let n = samples.len() as u64 / u64::from(self.spec.channels);
        if self.frames + n > self.max_frames {
            if self.overflow == 0 {
                tracing::warn!(path = %self.part.display(), "recording reached the 4 GiB WAV limit; further audio dropped");
            }
            self.overflow += 1;
            return Ok(());
        }
        self.write(samples, scratch)?;
        self.frames += n;
        self.since_patch += n;
        if self.since_patch >= self.header_every {
            self.since_patch = 0;
            // Patch RIFF/data sizes (end the Ogg page) and push the buffer
            // to the OS.
            match &mut self.sink {
                Sink::Pcm16(wav) | Sink::Alaw(wav) => {
                    wav.patch().map_err(io_err(&self.part, "patch header"))?
                }
                Sink::Opus(ogg) => ogg
                    .checkpoint()
                    .map_err(opus_err(&self.part, "write page"))?,
            }
        }
        Ok(())
    }

    /// Test hook: die as under `kill -9` (the writer leaked unfinalised,
    /// its buffered bytes lost).
    #[cfg(test)]
    pub(super) fn crash(self) {
        std::mem::forget(self.sink);
    }

    /// The chunk into the file: A-law bytes into an A-law WAV as they
    /// are, linear PCM encoded into it; any chunk into the other formats as
    /// linear PCM.
    fn write(&mut self, chunk: &Chunk, scratch: &mut Scratch) -> Result<(), RecorderError> {
        let part = &self.part;
        let Scratch { bytes, linear } = scratch;
        match &mut self.sink {
            Sink::Alaw(wav) => match chunk {
                Chunk::Alaw(alaw) => wav.append(alaw),
                Chunk::Linear(samples) => {
                    bytes.clear();
                    bytes.extend(samples.iter().map(|&s| G711::Alaw.encode_sample(s)));
                    wav.append(bytes)
                }
            }
            .map_err(io_err(part, "write samples")),
            Sink::Opus(ogg) => ogg
                .write(chunk.linear(linear))
                .map_err(opus_err(part, "encode")),
            Sink::Pcm16(wav) => {
                bytes.clear();
                bytes.extend(chunk.linear(linear).iter().flat_map(|s| s.to_le_bytes()));
                wav.append(bytes).map_err(io_err(part, "write samples"))
            }
        }
    }

    /// Finalise the header, fsync, rename (or seal) and hash.
    pub(super) fn complete(self) -> Result<RecordingMeta, RecorderError> {
        let frames = self.frames;
        let WriterJob {
            path,
            part,
            spec,
            sink,
            sync_handle,
            seal,
            ..
        } = self;
        match sink {
            Sink::Pcm16(mut wav) | Sink::Alaw(mut wav) => {
                wav.patch().map_err(io_err(&part, "finalise header"))?
            }
            Sink::Opus(mut ogg) => ogg.finish().map_err(opus_err(&part, "end the stream"))?,
        }
        sync_handle.sync_all().map_err(io_err(&part, "fsync"))?;
        let (bytes, sha256) = match &seal {
            Some(key) => seal_finished(&part, &path, key)?,
            None => {
                if fs::symlink_metadata(&path).is_ok() {
                    return Err(RecorderError::AlreadyExists { path });
                }
                fs::rename(&part, &path).map_err(io_err(&path, "rename from .part"))?;
                sync_parent_dir(&path);
                hash_file(&path)?
            }
        };
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

/// The metadata of a finished recording read back from disk (a file
/// [`repair_unfinished`](super::repair_unfinished) repaired after a crash,
/// whose writer never returned its [`RecordingMeta`]): length from the WAV
/// header, size and SHA-256 of the file. Chunks the writer dropped before
/// the crash are not known from the file: `dropped_chunks` is 0.
pub fn describe_finished(path: &Path) -> Result<RecordingMeta, RecorderError> {
    describe_finished_with(path, None)
}

/// [`describe_finished`] of a file that may be sealed (issue 14 §6): a
/// sealed one is read with `key` (length, size and SHA-256 of the WAV
/// inside, every chunk authenticated); without a key it is an error that
/// says so.
pub fn describe_finished_with(
    path: &Path,
    key: Option<&SealingKey>,
) -> Result<RecordingMeta, RecorderError> {
    if file_is_sealed(path).map_err(io_err(path, "open"))? {
        return match key {
            Some(key) => describe_sealed(path, key),
            None => Err(RecorderError::Seal {
                path: path.to_path_buf(),
                source: crate::media::at_rest::SealError::BadHeader {
                    path: path.to_path_buf(),
                    reason:
                        "the file is encrypted and no [recording] encryption_key_file is configured"
                            .into(),
                },
            }),
        };
    }
    let mut file = File::open(path).map_err(io_err(path, "open"))?;
    let (frames, rate) = read_length(path, &mut file)?;
    drop(file);
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

/// `(frames, sample rate)` of a finished recording read from `r`: the WAV
/// header's data size (PCM16 or A-law), or an Ogg Opus file's last granule
/// position less its pre-skip, at the input rate its `OpusHead` names.
pub(super) fn read_length(path: &Path, r: &mut impl io::Read) -> Result<(u64, u32), RecorderError> {
    if is_ogg_path(path) {
        let summary = scan(r).map_err(io_err(path, "read Ogg pages"))?;
        let Some((_, _, rate)) = summary.head else {
            return Err(RecorderError::NotARecording {
                path: path.to_path_buf(),
                reason: "not an Ogg Opus file",
            });
        };
        return Ok((summary.frames_at(rate), rate));
    }
    let mut head = Vec::with_capacity(4096);
    r.by_ref()
        .take(4096)
        .read_to_end(&mut head)
        .map_err(io_err(path, "read header"))?;
    match parse_layout(&head, false) {
        Ok(Some(layout)) => Ok((
            u64::from(layout.data_size) / layout.block_align,
            layout.sample_rate,
        )),
        Ok(None) | Err(_) => Err(RecorderError::NotARecording {
            path: path.to_path_buf(),
            reason: "not a WAV file this recorder wrote",
        }),
    }
}
