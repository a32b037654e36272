//! The IVR `voicemail` node's recorder: a mono WAV of what the caller says
//! after the beep, ended by a maximum length or by silence.
//!
//! Requirement (IVR issue): "voicemail (prompt, beep, max length, silence
//! end; saved like a recording and announced as an event)". The IVR plays
//! the prompt, then [`beep`], then records with a [`VoicemailRecorder`]; the
//! interpreter is told `VoicemailSaved` (with [`VoicemailMeta`]) or
//! `VoicemailEmpty` (when [`VoicemailRecorder::finish`] returns `None`).
//!
//! # Shape
//!
//! [`VoicemailRecorder`] is a core with time as an input: the shell decodes
//! the caller's G.711 into 8 kHz mono `i16` frames (normally 160 samples,
//! 20 ms) and calls [`VoicemailRecorder::push`] with each frame and its
//! *media time* (the shell's clock since the recording started). It never
//! reads the clock. Writing goes through
//! [`RecordingWriter`](crate::media::recorder::RecordingWriter): frames are
//! collected into chunks of about 100 ms and queued with
//! [`RecordingHandle::try_send`], which never blocks (a full queue drops the
//! chunk and counts it in [`RecordingMeta::dropped_chunks`]). So `push` does
//! no I/O and is fine on the media task; [`VoicemailRecorder::start`] and
//! [`VoicemailRecorder::finish`] do blocking file-system work.
//!
//! # Silence rule
//!
//! A frame is *speech* when its RMS level is at or above
//! [`VoicemailOptions::silence_threshold_dbfs`] (default
//! [`DEFAULT_SILENCE_THRESHOLD_DBFS`], −45 dBFS, where 0 dBFS is the RMS of a
//! full-scale sine, as in AES17), otherwise *silence*. The message ends
//! ([`EndReason::Silence`]) once [`VoicemailOptions::silence_end`] of media
//! time has passed since the end of the last speech frame — or since the
//! start, if the caller has not spoken yet (then [`VoicemailRecorder::spoke`]
//! is `false`). Time is taken from `now`, so frames the shell never delivered
//! (loss) count as silence. It ends ([`EndReason::MaxLength`]) once the end
//! of a frame reaches [`VoicemailOptions::max`]; if both happen on the same
//! frame, `MaxLength` wins.
//!
//! Silence is trimmed from the saved audio: of every silent run at most
//! [`TRAILING_SILENCE_KEPT`] (0.5 s) is written at once, the rest is held
//! back and written only if speech resumes (so pauses inside the message
//! are kept whole), and dropped at the end. Leading silence (before the first
//! speech) is likewise cut to its last 0.5 s. The saved file therefore
//! differs from media time: it is the message, not a wall-clock record.
//! Held-back silence is bounded by [`MAX_HELD_SILENCE`]; beyond that (only
//! with a `silence_end` longer than it) the oldest is written out.
//!
//! A message with less than [`MIN_SPEECH`] (0.5 s) of speech — including one
//! where the caller never spoke — is not kept: `finish` deletes the file and
//! returns `Ok(None)`.
//!
//! # File format
//!
//! [`VOICEMAIL_WAV_SPEC`]: RIFF WAV, 8 kHz, 16-bit signed PCM, mono. It is
//! written as `<path>.part` and renamed to `<path>` when finished, with the
//! header patched every second, exactly like call recordings (see
//! [`crate::media::recorder`]), so a crash leaves a file that
//! [`repair_unfinished`](crate::media::recorder::repair_unfinished) makes
//! playable.
//! With [`VoicemailOptions::seal`] the finished file is sealed
//! (encrypted at rest, issue 14 §6) under the same name, as recordings
//! are; a message too short to keep is deleted after it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::at_rest::SealingKey;
use super::recorder::{
    RecorderError, RecordingHandle, RecordingMeta, RecordingWriter, WriterOptions,
};

/// Sample rate of voicemail audio (Hz).
pub const SAMPLE_RATE: u32 = 8000;

/// The voicemail file format: 8 kHz, 16-bit signed PCM, mono.
pub const VOICEMAIL_WAV_SPEC: hound::WavSpec = hound::WavSpec {
    channels: 1,
    sample_rate: SAMPLE_RATE,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// Default speech/silence threshold: a frame whose RMS is below −45 dBFS
/// (full-scale sine = 0 dBFS; about 130 in `i16` units) is silence. Well
/// above G.711 idle-channel and typical line noise, well below speech
/// (around −20 dBFS).
pub const DEFAULT_SILENCE_THRESHOLD_DBFS: f32 = -45.0;

/// Most silence kept at the end (and start) of a saved message, and written
/// at once from each pause inside it.
pub const TRAILING_SILENCE_KEPT: Duration = Duration::from_millis(500);

/// Least speech for a message to be kept; below it `finish` deletes the file.
pub const MIN_SPEECH: Duration = Duration::from_millis(500);

/// Most silence held back in memory waiting to see whether speech resumes
/// (30 s, about 480 KB); beyond it the oldest held silence is written.
pub const MAX_HELD_SILENCE: Duration = Duration::from_secs(30);

/// Samples handed to the writer at a time (256 ms, 4 KiB): each chunk is
/// one `write` to the file, the writer keeping no buffer of its own (issue
/// 16 "Media at the limit").
const CHUNK_SAMPLES: usize = 2048;

/// RMS of a full-scale sine in `i16` units (the 0 dBFS reference).
const FULL_SCALE_SINE_RMS: f64 = 32767.0 / std::f64::consts::SQRT_2;

/// Samples at [`SAMPLE_RATE`] in `d` (rounded down).
fn samples_in(d: Duration) -> usize {
    let n = d.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000;
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Length of `n` samples at [`SAMPLE_RATE`] (125 µs each).
fn duration_of(n: u64) -> Duration {
    Duration::from_nanos(n.saturating_mul(1_000_000_000 / u64::from(SAMPLE_RATE)))
}

/// How the voicemail node records.
#[derive(Debug, Clone, PartialEq)]
pub struct VoicemailOptions {
    /// Longest message (media time from the start of recording).
    pub max: Duration,
    /// Continuous silence that ends the message (also the wait for a caller
    /// who never speaks).
    pub silence_end: Duration,
    /// RMS level (dBFS, full-scale sine = 0) below which a frame is silence;
    /// [`DEFAULT_SILENCE_THRESHOLD_DBFS`] unless tuned. A NaN makes every
    /// frame silence.
    pub silence_threshold_dbfs: f32,
    /// Seal the saved file with this key (encryption at rest, issue 14
    /// §6; see [`crate::media::at_rest`]); `None`: a plain WAV.
    pub seal: Option<SealingKey>,
}

impl Default for VoicemailOptions {
    /// 120 s at most, ended by 5 s of silence, default threshold.
    fn default() -> Self {
        VoicemailOptions::new(Duration::from_secs(120), Duration::from_secs(5))
    }
}

impl VoicemailOptions {
    /// Options with the default silence threshold (typically from the IVR
    /// action's `max_secs` and `silence_secs`).
    pub fn new(max: Duration, silence_end: Duration) -> Self {
        VoicemailOptions {
            max,
            silence_end,
            silence_threshold_dbfs: DEFAULT_SILENCE_THRESHOLD_DBFS,
            seal: None,
        }
    }

    /// These options, the file sealed with `key` when there is one.
    pub fn sealed_with(mut self, key: Option<SealingKey>) -> Self {
        self.seal = key;
        self
    }

    /// Mean square (in `i16` units²) at and above which a frame is speech.
    fn threshold_mean_square(&self) -> f64 {
        let rms = FULL_SCALE_SINE_RMS * 10f64.powf(f64::from(self.silence_threshold_dbfs) / 20.0);
        rms * rms
    }
}

/// Why a message ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// [`VoicemailOptions::max`] was reached.
    MaxLength,
    /// [`VoicemailOptions::silence_end`] of silence passed (after speech, or
    /// from the start if the caller never spoke).
    Silence,
}

/// What [`VoicemailRecorder::push`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoicemailStatus {
    /// Still recording.
    Recording,
    /// The message has ended; the shell should call
    /// [`VoicemailRecorder::finish`]. Further frames are ignored.
    Ended(EndReason),
}

/// A saved voicemail, for the `VoicemailSaved` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoicemailMeta {
    /// The finished file: path, duration (of the saved, trimmed audio),
    /// bytes, SHA-256, dropped chunks.
    pub recording: RecordingMeta,
    /// How much of the message was speech, in milliseconds.
    pub spoke_ms: u64,
    /// Why it ended, or `None` if the shell stopped it (hang-up, '#', call
    /// ended).
    pub ended: Option<EndReason>,
}

impl VoicemailMeta {
    /// The saved `.wav` file.
    pub fn path(&self) -> &Path {
        &self.recording.path
    }

    /// Length of the saved audio.
    pub fn duration(&self) -> Duration {
        self.recording.duration
    }

    /// Size of the file in bytes.
    pub fn bytes(&self) -> u64 {
        self.recording.bytes
    }

    /// SHA-256 of the file, lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.recording.sha256
    }
}

/// Records one voicemail; see the module docs.
pub struct VoicemailRecorder {
    handle: RecordingHandle,
    options: VoicemailOptions,
    threshold_ms: f64,
    /// Audio to be written, sent once it reaches [`CHUNK_SAMPLES`].
    pending: Vec<i16>,
    /// Silence held back: written if speech follows, dropped at the end.
    held: Vec<i16>,
    /// Samples of the current silent run already written (at most
    /// [`TRAILING_SILENCE_KEPT`]).
    run_written: usize,
    keep_samples: usize,
    max_held: usize,
    speech_samples: u64,
    /// Media time at the end of the last speech frame (zero before any).
    last_speech_end: Duration,
    ended: Option<EndReason>,
}

impl fmt::Debug for VoicemailRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VoicemailRecorder")
            .field("path", &self.handle.path())
            .field("options", &self.options)
            .field("pending", &self.pending.len())
            .field("held", &self.held.len())
            .field("speech_samples", &self.speech_samples)
            .field("last_speech_end", &self.last_speech_end)
            .field("ended", &self.ended)
            .finish()
    }
}

impl VoicemailRecorder {
    /// Starts recording to `path` (creating its parent directories; written
    /// as `path.part` until finished) as a [`VOICEMAIL_WAV_SPEC`] WAV. Blocks
    /// on the file system: call it from call setup (or `spawn_blocking`),
    /// not the packet path. Fails if the file already exists.
    pub fn start(path: &Path, options: VoicemailOptions) -> Result<Self, RecorderError> {
        let writer = WriterOptions {
            seal: options.seal.clone(),
            ..WriterOptions::default()
        };
        let handle = RecordingWriter::start_with(path, VOICEMAIL_WAV_SPEC, writer)?;
        Ok(VoicemailRecorder {
            handle,
            threshold_ms: options.threshold_mean_square(),
            options,
            pending: Vec::with_capacity(CHUNK_SAMPLES * 2),
            held: Vec::new(),
            run_written: 0,
            keep_samples: samples_in(TRAILING_SILENCE_KEPT),
            max_held: samples_in(MAX_HELD_SILENCE),
            speech_samples: 0,
            last_speech_end: Duration::ZERO,
            ended: None,
        })
    }

    /// One frame of the caller's audio (8 kHz mono, normally 160 samples)
    /// starting at media time `now` (the shell's clock since the recording
    /// started). Never blocks and never fails: a frame of any length is
    /// accepted, and a chunk the writer cannot take is dropped and counted.
    /// Once [`VoicemailStatus::Ended`] is returned, later frames are ignored
    /// and the same status is returned again.
    pub fn push(&mut self, now: Duration, frame: &[i16]) -> VoicemailStatus {
        if let Some(reason) = self.ended {
            return VoicemailStatus::Ended(reason);
        }
        let end = now.saturating_add(duration_of(frame.len() as u64));
        if self.is_speech(frame) {
            self.pending.append(&mut self.held);
            self.pending.extend_from_slice(frame);
            self.run_written = 0;
            self.speech_samples = self.speech_samples.saturating_add(frame.len() as u64);
            self.last_speech_end = self.last_speech_end.max(end);
        } else if self.speech_samples == 0 {
            // Leading silence: keep only its last TRAILING_SILENCE_KEPT.
            self.held.extend_from_slice(frame);
            let excess = self.held.len().saturating_sub(self.keep_samples);
            self.held.drain(..excess);
        } else {
            // A pause: its first TRAILING_SILENCE_KEPT is written now (kept
            // whether or not speech follows), the rest held back.
            let room = self.keep_samples.saturating_sub(self.run_written);
            let (now_part, later) = frame.split_at(room.min(frame.len()));
            self.pending.extend_from_slice(now_part);
            self.run_written += now_part.len();
            self.held.extend_from_slice(later);
            let excess = self.held.len().saturating_sub(self.max_held);
            if excess > 0 {
                self.pending.extend(self.held.drain(..excess));
            }
        }
        if self.pending.len() >= CHUNK_SAMPLES {
            self.flush();
        }

        let reason = if end >= self.options.max {
            Some(EndReason::MaxLength)
        } else if end.saturating_sub(self.last_speech_end) >= self.options.silence_end {
            Some(EndReason::Silence)
        } else {
            None
        };
        match reason {
            Some(reason) => {
                self.ended = Some(reason);
                self.held = Vec::new();
                self.flush();
                VoicemailStatus::Ended(reason)
            }
            None => VoicemailStatus::Recording,
        }
    }

    /// Whether the caller has spoken (any frame above the threshold).
    pub fn spoke(&self) -> bool {
        self.speech_samples > 0
    }

    /// Speech so far.
    pub fn spoken(&self) -> Duration {
        duration_of(self.speech_samples)
    }

    /// Why the message ended, if it has.
    pub fn ended(&self) -> Option<EndReason> {
        self.ended
    }

    /// The final path of the file.
    pub fn path(&self) -> &Path {
        self.handle.path()
    }

    /// Stops recording — after [`VoicemailStatus::Ended`], or because the
    /// caller hung up, pressed '#', or the call ended. Held-back silence is
    /// dropped, the writer is joined and the file finalised (see
    /// [`RecordingHandle::finish`]). If there was less than [`MIN_SPEECH`] of
    /// speech (or none), the file is deleted and `Ok(None)` returned
    /// (`VoicemailEmpty`).
    ///
    /// Blocks on the writer thread and disk I/O: the shell calls it inside
    /// `tokio::task::spawn_blocking`. On error the `.part` file is left for
    /// [`repair_unfinished`](crate::media::recorder::repair_unfinished).
    pub fn finish(mut self) -> Result<Option<VoicemailMeta>, RecorderError> {
        self.flush();
        let spoke_ms = u64::try_from(self.spoken().as_millis()).unwrap_or(u64::MAX);
        let keep = self.spoken() >= MIN_SPEECH;
        let recording = self.handle.finish()?;
        if !keep {
            delete(&recording.path)?;
            return Ok(None);
        }
        Ok(Some(VoicemailMeta {
            recording,
            spoke_ms,
            ended: self.ended,
        }))
    }

    fn is_speech(&self, frame: &[i16]) -> bool {
        if frame.is_empty() {
            return false;
        }
        let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        sum / frame.len() as f64 >= self.threshold_ms
    }

    /// Queues everything pending (a full queue drops it, counted by the
    /// handle).
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK_SAMPLES * 2));
        // A drop is counted in the handle's `dropped_chunks`; never block.
        let _ = self.handle.try_send(chunk);
    }
}

/// Removes an empty voicemail's file (already gone is fine).
fn delete(path: &Path) -> Result<(), RecorderError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RecorderError::Io {
            path: PathBuf::from(path),
            op: "delete empty voicemail",
            source,
        }),
    }
}

/// Length of [`beep`]: 400 ms.
pub const BEEP_DURATION: Duration = Duration::from_millis(400);

/// The beep played before recording: 400 ms of 1 kHz at −12 dBFS (peak
/// ≈ 8231) with 5 ms raised-cosine fades in and out, 8 kHz mono.
///
/// Generated by hand: a windowed sine is a dozen lines and needs no crate or
/// sound file. At 8 kHz, 1 kHz is exactly 8 samples per cycle, so the peak
/// is reached exactly. The shell should start the [`VoicemailRecorder`]
/// after the beep has been played, so its echo is not recorded as speech.
pub fn beep() -> Vec<i16> {
    let n = samples_in(BEEP_DURATION);
    let fade = samples_in(Duration::from_millis(5));
    let amplitude = 32767.0 * 10f64.powf(-12.0 / 20.0);
    let step = 2.0 * std::f64::consts::PI * 1000.0 / f64::from(SAMPLE_RATE);
    (0..n)
        .map(|i| {
            let edge = i.min(n - 1 - i);
            let gain = if edge < fade {
                0.5 * (1.0 - (std::f64::consts::PI * edge as f64 / fade as f64).cos())
            } else {
                1.0
            };
            // |value| <= amplitude < i16::MAX, so the cast cannot saturate.
            (amplitude * gain * (step * i as f64).sin()).round() as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRAME: usize = 160;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `n` 20 ms frames of a 440 Hz tone at about −20 dBFS, continuing
    /// the phase from `offset` samples.
    fn tone(frames: usize, offset: usize) -> Vec<Vec<i16>> {
        let amp = 3276.0;
        (0..frames)
            .map(|f| {
                (0..FRAME)
                    .map(|i| {
                        let k = (offset + f * FRAME + i) as f64;
                        (amp * (2.0 * std::f64::consts::PI * 440.0 * k / 8000.0).sin()) as i16
                    })
                    .collect()
            })
            .collect()
    }

    fn silence(frames: usize) -> Vec<Vec<i16>> {
        vec![vec![0; FRAME]; frames]
    }

    /// Pushes frames back to back from `*t`, returning every status.
    fn feed(
        rec: &mut VoicemailRecorder,
        t: &mut Duration,
        frames: &[Vec<i16>],
    ) -> Vec<VoicemailStatus> {
        frames
            .iter()
            .map(|f| {
                let s = rec.push(*t, f);
                *t += ms(20);
                s
            })
            .collect()
    }

    fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).expect("open wav");
        let spec = r.spec();
        let samples = r
            .samples::<i16>()
            .collect::<Result<Vec<_>, _>>()
            .expect("samples");
        (spec, samples)
    }

    #[test]
    fn speech_then_silence_ends_and_trims() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t/2024/vm1.wav");
        let mut rec = VoicemailRecorder::start(&path, VoicemailOptions::new(ms(60_000), ms(2000)))
            .expect("start");
        let mut t = Duration::ZERO;
        let a = tone(30, 0); // 600 ms
        let pause = silence(60); // 1.2 s, inside the message: kept whole
        let b = tone(30, 30 * FRAME);
        let tail = silence(200);
        let mut statuses = feed(&mut rec, &mut t, &a);
        statuses.extend(feed(&mut rec, &mut t, &pause));
        statuses.extend(feed(&mut rec, &mut t, &b));
        let tail_statuses = feed(&mut rec, &mut t, &tail);
        assert!(statuses.iter().all(|s| *s == VoicemailStatus::Recording));
        // Last speech ends at 2.4 s; 2 s of silence later is 4.4 s: frame 99.
        let first_end = tail_statuses
            .iter()
            .position(|s| *s != VoicemailStatus::Recording)
            .expect("ended");
        assert_eq!(first_end, 99);
        assert!(tail_statuses[first_end..]
            .iter()
            .all(|s| *s == VoicemailStatus::Ended(EndReason::Silence)));
        assert!(rec.spoke());
        assert_eq!(rec.ended(), Some(EndReason::Silence));

        let meta = rec.finish().expect("finish").expect("kept");
        assert_eq!(meta.path(), path);
        assert_eq!(meta.spoke_ms, 1200);
        assert_eq!(meta.ended, Some(EndReason::Silence));
        assert_eq!(meta.recording.dropped_chunks, 0);
        assert_eq!(meta.sha256().len(), 64);
        // 0.6 + 1.2 + 0.6 s, plus 0.5 s of the trailing silence.
        assert_eq!(meta.duration(), ms(2900));

        let (spec, samples) = read_wav(&path);
        assert_eq!(spec, VOICEMAIL_WAV_SPEC);
        let expected: Vec<i16> = a
            .iter()
            .chain(&pause)
            .chain(&b)
            .chain(&tail[..25])
            .flatten()
            .copied()
            .collect();
        assert!(samples.len().abs_diff(23_200) <= FRAME);
        assert_eq!(samples, expected);
        assert_eq!(meta.bytes(), 44 + 2 * samples.len() as u64);
    }

    #[test]
    fn leading_silence_cut_and_hangup_keeps_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vm2.wav");
        let mut rec = VoicemailRecorder::start(&path, VoicemailOptions::new(ms(60_000), ms(3000)))
            .expect("start");
        let mut t = Duration::ZERO;
        let lead = silence(100); // 2 s before speaking
        let talk = tone(50, 0);
        let pause = silence(10); // hang-up 200 ms into a pause
        feed(&mut rec, &mut t, &lead);
        feed(&mut rec, &mut t, &talk);
        let s = feed(&mut rec, &mut t, &pause);
        assert!(s.iter().all(|s| *s == VoicemailStatus::Recording));
        let meta = rec.finish().expect("finish").expect("kept");
        assert_eq!(meta.ended, None);
        assert_eq!(meta.spoke_ms, 1000);
        let (_, samples) = read_wav(&path);
        // 0.5 s of the lead-in, the speech, the 0.2 s of pause.
        assert_eq!(samples.len(), 4000 + 8000 + 1600);
        assert_eq!(samples[4000..12_000], talk.concat()[..]);
    }

    #[test]
    fn max_length_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vm3.wav");
        let mut rec = VoicemailRecorder::start(&path, VoicemailOptions::new(ms(1000), ms(5000)))
            .expect("start");
        let mut t = Duration::ZERO;
        let s = feed(&mut rec, &mut t, &tone(60, 0));
        assert!(s[..49].iter().all(|s| *s == VoicemailStatus::Recording));
        assert!(s[49..]
            .iter()
            .all(|s| *s == VoicemailStatus::Ended(EndReason::MaxLength)));
        let meta = rec.finish().expect("finish").expect("kept");
        assert_eq!(meta.ended, Some(EndReason::MaxLength));
        assert_eq!(meta.duration(), ms(1000));
        assert_eq!(read_wav(&path).1.len(), 8000);
    }

    #[test]
    fn never_speaking_ends_on_silence_and_is_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vm4.wav");
        let mut rec = VoicemailRecorder::start(&path, VoicemailOptions::new(ms(60_000), ms(1000)))
            .expect("start");
        let mut t = Duration::ZERO;
        // Line noise below the threshold (RMS 50 ≈ −53 dBFS) is silence.
        let noise = vec![vec![50i16; FRAME]; 80];
        let s = feed(&mut rec, &mut t, &noise);
        assert_eq!(s[48], VoicemailStatus::Recording);
        assert_eq!(s[49], VoicemailStatus::Ended(EndReason::Silence));
        assert!(!rec.spoke());
        assert_eq!(rec.finish().expect("finish"), None);
        assert!(!path.exists());
        assert!(!dir.path().join("vm4.wav.part").exists());
    }

    #[test]
    fn too_little_speech_is_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vm5.wav");
        let mut rec = VoicemailRecorder::start(&path, VoicemailOptions::new(ms(60_000), ms(1000)))
            .expect("start");
        let mut t = Duration::ZERO;
        feed(&mut rec, &mut t, &tone(20, 0)); // 400 ms < MIN_SPEECH
        let s = feed(&mut rec, &mut t, &silence(60));
        assert_eq!(s.last(), Some(&VoicemailStatus::Ended(EndReason::Silence)));
        assert!(rec.spoke());
        assert_eq!(rec.finish().expect("finish"), None);
        assert!(!path.exists());
    }

    #[test]
    fn lost_frames_count_as_silence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vm6.wav");
        let mut rec = VoicemailRecorder::start(&path, VoicemailOptions::new(ms(60_000), ms(1000)))
            .expect("start");
        let mut t = Duration::ZERO;
        feed(&mut rec, &mut t, &tone(40, 0));
        // Nothing delivered for a second, then one silent frame.
        assert_eq!(
            rec.push(t + ms(1000), &[0; FRAME]),
            VoicemailStatus::Ended(EndReason::Silence)
        );
        assert!(rec.finish().expect("finish").is_some());
    }

    #[test]
    fn threshold_level() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = VoicemailOptions::new(ms(1000), ms(1000));
        let rec = VoicemailRecorder::start(&dir.path().join("x.wav"), opts).expect("start");
        // −45 dBFS of a full-scale sine is an RMS of about 130.
        assert!(!rec.is_speech(&[120; FRAME]));
        assert!(rec.is_speech(&[140; FRAME]));
        assert!(!rec.is_speech(&[]));
        assert_eq!(rec.finish().expect("finish"), None);
        let d = VoicemailOptions::default();
        assert_eq!(d.silence_threshold_dbfs, DEFAULT_SILENCE_THRESHOLD_DBFS);
        assert!(d.silence_end < d.max);
    }

    #[test]
    fn existing_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vm7.wav");
        std::fs::write(&path, b"x").expect("write");
        let err = VoicemailRecorder::start(&path, VoicemailOptions::new(ms(1000), ms(1000)))
            .expect_err("must refuse");
        assert!(matches!(err, RecorderError::AlreadyExists { .. }));
    }

    #[test]
    fn beep_shape() {
        let b = beep();
        assert_eq!(b.len(), 3200);
        let peak = b.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        // −12 dBFS: 32767 × 10^(−12/20) ≈ 8231.
        assert!(peak.abs_diff(8231) <= 1, "peak {peak}");
        assert_eq!(b[0], 0);
        assert!(b[3199].unsigned_abs() < 100);
        // Faded: the first 5 ms stay well below the peak at its start.
        assert!(b[..10].iter().all(|s| s.unsigned_abs() < 1000));
        // 1 kHz: 8 samples per cycle.
        assert!((i32::from(b[1000]) + i32::from(b[1004])).abs() <= 1);
        // Loud enough to be speech to the recorder (so start it after).
        let rms = (b.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 3200.0).sqrt();
        assert!((rms - 5820.0).abs() < 60.0, "rms {rms}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn arbitrary_frames_never_panic(
            frames in proptest::collection::vec(
                (0u64..200_000, proptest::collection::vec(any::<i16>(), 0..400)),
                0..60,
            ),
            max_ms in 0u64..3000,
            silence_ms in 0u64..3000,
            db in -100f32..10.0,
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("p.wav");
            let mut opts = VoicemailOptions::new(ms(max_ms), ms(silence_ms));
            opts.silence_threshold_dbfs = db;
            let mut rec = VoicemailRecorder::start(&path, opts).expect("start");
            let mut ended = None;
            for (now_us, frame) in &frames {
                let s = rec.push(Duration::from_micros(*now_us), frame);
                if let Some(e) = ended {
                    prop_assert_eq!(s, VoicemailStatus::Ended(e));
                }
                if let VoicemailStatus::Ended(e) = s {
                    ended = Some(e);
                }
            }
            let spoken = rec.spoken();
            match rec.finish().expect("finish") {
                Some(meta) => {
                    prop_assert!(spoken >= MIN_SPEECH);
                    let (_, samples) = read_wav(&path);
                    prop_assert_eq!(samples.len() as u64, meta.recording.frames);
                }
                None => prop_assert!(!path.exists()),
            }
        }
    }

    #[test]
    fn a_sealed_voicemail_is_encrypted_and_an_empty_one_still_deleted() {
        use crate::media::at_rest::{file_is_sealed, SealedFile, SealingKey};
        use std::io::Read;
        let key = SealingKey::from_bytes([9; 32]);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t/2026/vm-sealed.wav");
        let options = VoicemailOptions::new(ms(60_000), ms(1000)).sealed_with(Some(key.clone()));
        let mut rec = VoicemailRecorder::start(&path, options.clone()).expect("start");
        let mut t = Duration::ZERO;
        feed(&mut rec, &mut t, &tone(50, 0));
        feed(&mut rec, &mut t, &silence(60));
        let meta = rec.finish().expect("finish").expect("kept");
        assert!(file_is_sealed(&path).expect("read"));
        let mut wav = Vec::new();
        SealedFile::open(&path, &key)
            .expect("open")
            .read_to_end(&mut wav)
            .expect("authenticates");
        assert_eq!(meta.bytes(), wav.len() as u64);
        let r = hound::WavReader::new(std::io::Cursor::new(&wav)).expect("a WAV inside");
        assert_eq!(r.spec(), VOICEMAIL_WAV_SPEC);
        assert!(r.duration() >= 50 * FRAME as u32);

        let short = dir.path().join("t/2026/vm-short.wav");
        let mut rec = VoicemailRecorder::start(&short, options).expect("start");
        feed(&mut rec, &mut t, &silence(10));
        assert_eq!(rec.finish().expect("finish"), None);
        assert!(!short.exists());
        assert!(!crate::media::at_rest::sealing_path(&short).exists());
    }
}
