//! Prompts and music on hold: audio files from `sounds/`, decoded once,
//! shared by every call, and played out per leg in 20 ms frames.
//!
//! Requirement (media engine issue): "files from `sounds/` in any common
//! format (WAV of any rate/width, MP3, OGG/Vorbis, FLAC), decoded and
//! resampled to 8 kHz once and shared by all calls; paced at 20 ms; play,
//! queue several, loop, stop; a key press can interrupt a prompt
//! (barge-in). A missing or corrupt file is reported when the config/flow
//! is loaded, never as silence in a live call", and "music on hold from
//! sounds/ for a leg on hold" (a looping [`Playout`]).
//!
//! * [`PromptLibrary::load`] decodes every named file with `symphonia`
//!   (WAV PCM of 8/16/24/32-bit integer, float, A-law and µ-law; MP3;
//!   Ogg/Vorbis; FLAC), mixes any channel count down to mono by
//!   averaging, resamples to 8 kHz and stores the result as an
//!   `Arc<[i16]>`. It reports **every** failing file at once, each
//!   [`PromptError`] naming the prompt, the path and why (missing,
//!   unreadable, unsupported, corrupt, empty, too long), so an operator
//!   fixes a flow in one pass and a live call never meets a bad file.
//! * [`Prompt`] is a cheap clone (two `Arc`s): every call playing the
//!   welcome message shares one buffer.
//! * [`Playout`] is the pure per-leg player: a queue of prompts with
//!   play / queue / loop / stop / barge-in, yielding 160-sample (20 ms at
//!   8 kHz) frames on demand. It never reads the clock: the media shell
//!   calls [`Playout::next_frame`] once per 20 ms tick and paces it.
//!
//! # Decode strictness
//!
//! Any decoder error, a stream that ends before the length its header
//! declares, or content that does not match the file's extension (e.g. a
//! `.wav` that is really garbage in which the prober happened to find an
//! MP3 sync word) is reported as [`PromptErrorKind::Corrupt`]. A slightly
//! damaged file that a lenient player would still play is rejected on
//! purpose: re-encoding it is cheap; a clicking prompt in a citizen's call
//! is not.
//!
//! # Why the resampler is hand-written
//!
//! Resampling runs once per file at load time, so speed hardly matters,
//! but quality does: a 44.1 kHz or 48 kHz studio recording taken to 8 kHz
//! must be low-passed first or everything above 4 kHz folds back into the
//! voice band as hiss. `rubato` would do it, but brings an FFT stack and a
//! buffer-adapter API built for streaming, for what is ~80 lines here: a
//! polyphase windowed-sinc FIR for the exact rational ratio
//! `L/M = fout/fin` (reduced by their gcd). The design:
//!
//! * cut-off centred at 0.925 × min(fin, fout)/2 with a transition band of
//!   0.075 × min(fin, fout) — for 8 kHz output, pass-band to 3.4 kHz (the
//!   telephone band) and stop-band from 4.0 kHz, so nothing above the new
//!   Nyquist can alias into the band;
//! * Kaiser window, β = 7.857 (≈ 80 dB stop-band), length from Kaiser's
//!   formula `N = (A − 8) / (2.285 Δω) + 1` (≈ 370 taps at 44.1 kHz);
//! * one table of `L` phases when `L ≤ 2048` (every common rate), the
//!   kernel evaluated per output sample otherwise; each phase normalised
//!   to unity DC gain; zero delay (symmetric kernel), zeros outside the
//!   signal.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{self, CodecType, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Output sample rate of every prompt (G.711 / telephone band).
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// One 20 ms frame of 8 kHz mono 16-bit PCM.
pub type Frame = [i16; FRAME_SAMPLES];
/// Longest prompt accepted (one hour of music on hold is 57.6 MB at
/// 8 kHz; anything longer is a configuration mistake, not a prompt).
pub const MAX_PROMPT_SECONDS: u64 = 3600;
/// Extensions tried, in order, for a prompt name given without one.
pub const EXTENSIONS: [&str; 5] = ["wav", "flac", "ogg", "oga", "mp3"];

/// Why one prompt file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptErrorKind {
    /// The name is absolute or leaves the sounds directory (`..`).
    #[error("invalid prompt name (must be a relative path inside the sounds directory)")]
    InvalidName,
    /// No such file (for a name without extension: none of [`EXTENSIONS`]).
    #[error("file not found{0}")]
    Missing(String),
    /// The file exists but cannot be opened or read.
    #[error("cannot read file: {0}")]
    Unreadable(String),
    /// Not an audio format or codec this build decodes.
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// Recognised, but the data is damaged or truncated.
    #[error("corrupt audio: {0}")]
    Corrupt(String),
    /// Zero-length file, or a valid file holding no samples.
    #[error("empty: {0}")]
    Empty(String),
    /// Longer than [`MAX_PROMPT_SECONDS`].
    #[error("too long: {seconds} s (limit {MAX_PROMPT_SECONDS} s)")]
    TooLong {
        /// Duration of the file, whole seconds.
        seconds: u64,
    },
}

/// One prompt that failed to load: which, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prompt {name:?} ({}): {kind}", .path.display())]
pub struct PromptError {
    /// The prompt name as the flow/config gave it.
    pub name: String,
    /// The file looked at (for a missing name without extension, the
    /// name joined to the directory).
    pub path: PathBuf,
    /// Why it failed.
    pub kind: PromptErrorKind,
}

/// A decoded prompt: 8 kHz mono 16-bit PCM, shared. Cloning is two
/// reference-count increments.
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    name: Arc<str>,
    samples: Arc<[i16]>,
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("name", &self.name)
            .field("samples", &self.samples.len())
            .finish()
    }
}

impl Prompt {
    /// A prompt from 8 kHz mono PCM already in memory (generated tones,
    /// tests).
    pub fn from_pcm(name: &str, samples: Vec<i16>) -> Self {
        Self {
            name: Arc::from(name),
            samples: Arc::from(samples),
        }
    }

    /// The name it was loaded under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 8 kHz mono samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Playing time.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 1_000_000 / u64::from(SAMPLE_RATE))
    }

    /// Number of 20 ms frames [`Playout`] yields for it:
    /// ceil(duration / 20 ms).
    pub fn frame_count(&self) -> usize {
        self.samples.len().div_ceil(FRAME_SAMPLES)
    }
}

/// Every prompt a configuration/flow uses, decoded once at load.
#[derive(Debug, Clone, Default)]
pub struct PromptLibrary {
    prompts: std::collections::BTreeMap<String, Prompt>,
}

impl PromptLibrary {
    /// Decode each of `names` from `dir`. A name may carry an extension
    /// (`welcome.mp3`, `moh/classic.ogg`) or not (`welcome`: the first of
    /// [`EXTENSIONS`] that exists). Duplicates are loaded once.
    ///
    /// # Errors
    /// Every prompt that failed, each naming its file and why; nothing is
    /// returned unless all loaded.
    pub fn load(dir: &Path, names: &[&str]) -> Result<Self, Vec<PromptError>> {
        let mut prompts = std::collections::BTreeMap::new();
        let mut errors = Vec::new();
        for &name in names {
            if prompts.contains_key(name) || errors.iter().any(|e: &PromptError| e.name == name) {
                continue;
            }
            match load_one(dir, name) {
                Ok(p) => {
                    tracing::debug!(prompt = name, samples = p.samples.len(), "prompt loaded");
                    prompts.insert(name.to_owned(), p);
                }
                Err(e) => {
                    errors.push(e);
                }
            }
        }
        if errors.is_empty() {
            Ok(Self { prompts })
        } else {
            Err(errors)
        }
    }

    /// Decode a single file (any path) as a prompt called `name`.
    ///
    /// # Errors
    /// As [`PromptLibrary::load`], for that one file.
    pub fn decode_file(name: &str, path: &Path) -> Result<Prompt, PromptError> {
        let samples = decode_path(path).map_err(|kind| PromptError {
            name: name.to_owned(),
            path: path.to_owned(),
            kind,
        })?;
        Ok(Prompt::from_pcm(name, samples))
    }

    /// Add (or replace) a prompt built in memory.
    pub fn insert(&mut self, prompt: Prompt) {
        self.prompts.insert(prompt.name().to_owned(), prompt);
    }

    /// The prompt loaded under `name` (a cheap clone).
    pub fn get(&self, name: &str) -> Option<Prompt> {
        self.prompts.get(name).cloned()
    }

    /// Names loaded, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.prompts.keys().map(String::as_str)
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// No prompts at all.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

fn load_one(dir: &Path, name: &str) -> Result<Prompt, PromptError> {
    let err = |path: PathBuf, kind| PromptError {
        name: name.to_owned(),
        path,
        kind,
    };
    let rel = Path::new(name);
    let valid = !name.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !valid {
        return Err(err(dir.join(name), PromptErrorKind::InvalidName));
    }
    let path = if rel.extension().is_some() {
        let p = dir.join(rel);
        if !p.exists() {
            return Err(err(p, PromptErrorKind::Missing(String::new())));
        }
        p
    } else {
        let found = EXTENSIONS
            .iter()
            .map(|ext| dir.join(format!("{name}.{ext}")))
            .find(|p| p.exists());
        match found {
            Some(p) => p,
            None => {
                let tried = EXTENSIONS
                    .iter()
                    .map(|e| format!(".{e}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(err(
                    dir.join(name),
                    PromptErrorKind::Missing(format!(" (tried {tried})")),
                ));
            }
        }
    };
    PromptLibrary::decode_file(name, &path)
}

/// A container family's name and a test of whether a codec belongs in it.
type Family = (&'static str, fn(CodecType) -> bool);

/// Which codec families a known extension may hold; `None` = any.
fn expected_codecs(path: &Path) -> Option<Family> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "wav" | "wave" => Some(("WAV", |c| {
            // RIFF/WAVE holds PCM/ADPCM; a compressed stream found in a
            // `.wav` means the prober latched onto garbage.
            ![
                codecs::CODEC_TYPE_MP1,
                codecs::CODEC_TYPE_MP2,
                codecs::CODEC_TYPE_MP3,
                codecs::CODEC_TYPE_VORBIS,
                codecs::CODEC_TYPE_FLAC,
                codecs::CODEC_TYPE_OPUS,
            ]
            .contains(&c)
        })),
        "mp3" => Some(("MP3", |c| {
            c == codecs::CODEC_TYPE_MP3
                || c == codecs::CODEC_TYPE_MP2
                || c == codecs::CODEC_TYPE_MP1
        })),
        "ogg" | "oga" => Some(("Ogg/Vorbis", |c| {
            c == codecs::CODEC_TYPE_VORBIS || c == codecs::CODEC_TYPE_FLAC
        })),
        "flac" => Some(("FLAC", |c| c == codecs::CODEC_TYPE_FLAC)),
        _ => None,
    }
}

fn decode_path(path: &Path) -> Result<Vec<i16>, PromptErrorKind> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => PromptErrorKind::Missing(String::new()),
        _ => PromptErrorKind::Unreadable(e.to_string()),
    })?;
    let len = file
        .metadata()
        .map_err(|e| PromptErrorKind::Unreadable(e.to_string()))?
        .len();
    if len == 0 {
        return Err(PromptErrorKind::Empty("zero-length file".into()));
    }
    let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions {
                // Trim MP3 encoder delay/padding (LAME/Xing header).
                enable_gapless: true,
                ..FormatOptions::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymError::IoError(e) => PromptErrorKind::Corrupt(format!("read error: {e}")),
            SymError::Unsupported(what) => {
                PromptErrorKind::Unsupported(format!("not a recognised audio file ({what})"))
            }
            other => PromptErrorKind::Corrupt(other.to_string()),
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| PromptErrorKind::Empty("no audio track".into()))?;
    let codec = track.codec_params.codec;
    let codec_name = symphonia::default::get_codecs()
        .get_codec(codec)
        .map_or("unknown codec", |d| d.short_name);
    if let Some((family, ok)) = expected_codecs(path) {
        if !ok(codec) {
            return Err(PromptErrorKind::Corrupt(format!(
                "content is not {family} (the prober found {codec_name})"
            )));
        }
    }
    let track_id = track.id;
    let declared_frames = track.codec_params.n_frames;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| PromptErrorKind::Unsupported(format!("codec {codec_name}: {e}")))?;

    let mut mono: Vec<f32> = Vec::new();
    let mut rate: Option<u32> = None;
    let mut frames: u64 = 0;
    let mut sbuf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => {
                return Err(PromptErrorKind::Unsupported(
                    "chained stream (parameters change mid-file)".into(),
                ))
            }
            Err(e) => return Err(PromptErrorKind::Corrupt(e.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(|e| {
            PromptErrorKind::Corrupt(format!(
                "{codec_name} decode error after {frames} frames: {e}"
            ))
        })?;
        let spec = *decoded.spec();
        match rate {
            None => rate = Some(spec.rate),
            Some(r) if r != spec.rate => {
                return Err(PromptErrorKind::Unsupported(format!(
                    "sample rate changes mid-file ({r} Hz to {} Hz)",
                    spec.rate
                )))
            }
            Some(_) => {}
        }
        let channels = spec.channels.count().max(1);
        let n = decoded.frames();
        if n == 0 {
            continue;
        }
        let buf = match &mut sbuf {
            Some(b) if b.capacity() >= decoded.capacity() * channels => b,
            _ => sbuf.insert(SampleBuffer::<f32>::new(decoded.capacity() as u64, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let inv = 1.0 / channels as f32;
        mono.extend(
            buf.samples()
                .chunks_exact(channels)
                .map(|c| c.iter().sum::<f32>() * inv),
        );
        frames += n as u64;
        let r = u64::from(rate.unwrap_or(SAMPLE_RATE).max(1));
        if frames / r > MAX_PROMPT_SECONDS {
            return Err(PromptErrorKind::TooLong {
                seconds: frames / r,
            });
        }
    }
    if let Some(declared) = declared_frames {
        // Lossless formats declare their exact length. Lossy ones may
        // differ by encoder delay/padding when the header lacks gapless
        // info: allow 1 % or two MP3 frames, never half the file.
        let lossless = codec == codecs::CODEC_TYPE_FLAC
            || expected_codecs(path).is_some_and(|(family, _)| family == "WAV");
        let slack = if lossless {
            0
        } else {
            (declared / 100).max(2304).min(declared / 2)
        };
        if frames + slack < declared {
            return Err(PromptErrorKind::Corrupt(format!(
                "truncated: header declares {declared} frames, file holds {frames}"
            )));
        }
    }
    let Some(rate) = rate.filter(|_| frames > 0) else {
        return Err(PromptErrorKind::Empty("no audio samples".into()));
    };
    if rate == 0 {
        return Err(PromptErrorKind::Corrupt("sample rate 0".into()));
    }
    let out = resample(&mono, rate, SAMPLE_RATE);
    Ok(out
        .iter()
        .map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

// ---------------------------------------------------------------------
// Resampler (see the module docs for the design and why it is here).

const KAISER_BETA: f64 = 7.857; // 0.1102 * (80 - 8.7)
const STOPBAND_DB: f64 = 80.0;
const MAX_TABLE_PHASES: usize = 2048;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Zeroth-order modified Bessel function of the first kind (series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

struct Kernel {
    /// Taps each side: tap offsets j run over (1 - half)..=half.
    half: i64,
    /// 2 * cutoff / fin (cycles per input sample, normalised to Nyquist).
    fc: f64,
    i0_beta: f64,
}

impl Kernel {
    fn new(fin: u32, fout: u32) -> Self {
        let base = f64::from(fin.min(fout));
        let cutoff = 0.925 * base / 2.0;
        let transition = 0.075 * base;
        let dw = 2.0 * std::f64::consts::PI * transition / f64::from(fin);
        let n = (STOPBAND_DB - 8.0) / (2.285 * dw) + 1.0;
        Self {
            half: (n / 2.0).ceil() as i64,
            fc: 2.0 * cutoff / f64::from(fin),
            i0_beta: bessel_i0(KAISER_BETA),
        }
    }

    /// Weights for the 2·half input samples around an output instant that
    /// lies `frac` (0 ≤ frac < 1) past input sample q; normalised to sum 1.
    fn phase(&self, frac: f64, out: &mut Vec<f32>) {
        out.clear();
        let half = self.half as f64;
        let mut sum = 0.0;
        let mut tmp = Vec::with_capacity(2 * self.half as usize);
        for j in (1 - self.half)..=self.half {
            let tau = j as f64 - frac;
            let x = tau / half;
            let w = if x.abs() >= 1.0 {
                0.0
            } else {
                bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / self.i0_beta
            };
            let arg = std::f64::consts::PI * self.fc * tau;
            let sinc = if arg.abs() < 1e-12 {
                1.0
            } else {
                arg.sin() / arg
            };
            let h = self.fc * sinc * w;
            sum += h;
            tmp.push(h);
        }
        let norm = if sum.abs() > 1e-12 { 1.0 / sum } else { 1.0 };
        out.extend(tmp.iter().map(|&h| (h * norm) as f32));
    }
}

/// Resample `input` (mono, `fin` Hz) to `fout` Hz with the polyphase
/// windowed-sinc filter described in the module docs.
pub fn resample(input: &[f32], fin: u32, fout: u32) -> Vec<f32> {
    if fin == fout || input.is_empty() || fin == 0 || fout == 0 {
        return input.to_vec();
    }
    let g = gcd(u64::from(fin), u64::from(fout));
    let l = u64::from(fout) / g; // up
    let m = u64::from(fin) / g; // down
    let kernel = Kernel::new(fin, fout);
    let taps = 2 * kernel.half as usize;
    let n_out = (input.len() as u64 * l).div_ceil(m);
    let table: Option<Vec<f32>> = (l as usize <= MAX_TABLE_PHASES).then(|| {
        let mut t = Vec::with_capacity(l as usize * taps);
        let mut ph = Vec::with_capacity(taps);
        for p in 0..l {
            kernel.phase(p as f64 / l as f64, &mut ph);
            t.extend_from_slice(&ph);
        }
        t
    });
    let mut scratch = Vec::with_capacity(taps);
    let mut out = Vec::with_capacity(n_out as usize);
    let len = input.len() as i64;
    for n in 0..n_out {
        let pos = n * m;
        let q = (pos / l) as i64;
        let p = pos % l;
        let weights: &[f32] = match &table {
            Some(t) => &t[p as usize * taps..(p as usize + 1) * taps],
            None => {
                kernel.phase(p as f64 / l as f64, &mut scratch);
                &scratch
            }
        };
        let first = q + 1 - kernel.half; // input index of weights[0]
        let lo = first.max(0);
        let hi = (first + taps as i64).min(len);
        let mut acc = 0.0f32;
        if lo < hi {
            let w = &weights[(lo - first) as usize..(hi - first) as usize];
            let x = &input[lo as usize..hi as usize];
            acc = w.iter().zip(x).map(|(a, b)| a * b).sum();
        }
        out.push(acc);
    }
    out
}

// ---------------------------------------------------------------------
// Playout

/// What happened to a prompt, reported by [`Playout::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayoutEvent {
    /// The prompt played to its end (not reported while looping).
    Finished(Arc<str>),
    /// A key press cut the prompt short (barge-in); prompts queued after
    /// it were dropped without events of their own.
    Interrupted(Arc<str>),
}

/// The per-leg player: a queue of prompts yielding 20 ms frames.
///
/// Semantics:
/// * [`play`](Self::play) replaces whatever is playing or queued;
///   [`queue`](Self::queue) appends.
/// * Each prompt starts on a frame boundary; its last partial frame is
///   zero-padded, so a prompt yields exactly [`Prompt::frame_count`]
///   frames.
/// * [`set_loop`](Self::set_loop)`(true)` repeats the whole queue (music on
///   hold) and suppresses `Finished` events.
/// * [`stop`](Self::stop) clears everything silently (the caller asked).
/// * [`interrupt_on_key`](Self::interrupt_on_key) is a sticky setting; when
///   on, [`on_key`](Self::on_key) stops the current and queued prompts and
///   reports `Interrupted(current)`.
#[derive(Debug, Clone, Default)]
pub struct Playout {
    queue: VecDeque<Prompt>,
    /// Sample position within `queue[0]`.
    pos: usize,
    looping: bool,
    interruptible: bool,
    events: VecDeque<PlayoutEvent>,
}

impl Playout {
    /// An idle player: not looping, not interruptible.
    pub fn new() -> Self {
        Self::default()
    }

    /// Play `prompt` now, dropping anything playing or queued.
    pub fn play(&mut self, prompt: Prompt) {
        self.stop();
        self.queue.push_back(prompt);
    }

    /// Play `prompt` after those already queued.
    pub fn queue(&mut self, prompt: Prompt) {
        self.queue.push_back(prompt);
    }

    /// Repeat the queue endlessly (music on hold) or not.
    pub fn set_loop(&mut self, on: bool) {
        self.looping = on;
    }

    /// Stop and clear the queue. No event: the caller knows.
    pub fn stop(&mut self) {
        self.queue.clear();
        self.pos = 0;
    }

    /// Whether a key press interrupts (barge-in). Sticky until changed.
    pub fn interrupt_on_key(&mut self, on: bool) {
        self.interruptible = on;
    }

    /// A key was pressed. If interruptible and playing, stops everything
    /// and reports `Interrupted`; returns whether it did.
    pub fn on_key(&mut self) -> bool {
        if !self.interruptible {
            return false;
        }
        let Some(current) = self.queue.front() else {
            return false;
        };
        self.events
            .push_back(PlayoutEvent::Interrupted(current.name.clone()));
        self.stop();
        true
    }

    /// Whether anything is playing or queued.
    pub fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Name of the prompt now playing.
    pub fn current(&self) -> Option<&str> {
        self.queue.front().map(Prompt::name)
    }

    /// The next 20 ms frame, or `None` when idle. The caller paces calls.
    pub fn next_frame(&mut self) -> Option<Frame> {
        // Bounded: each pass either returns or removes/rotates one empty
        // prompt; a queue of only empty prompts is dropped.
        let mut skipped = 0;
        loop {
            let prompt = self.queue.front()?;
            let samples = prompt.samples();
            if self.pos >= samples.len() {
                // Only reachable for an empty prompt.
                skipped += 1;
                if skipped > self.queue.len() {
                    self.stop();
                    return None;
                }
                self.finish_current();
                continue;
            }
            let end = (self.pos + FRAME_SAMPLES).min(samples.len());
            let mut frame = [0i16; FRAME_SAMPLES];
            frame[..end - self.pos].copy_from_slice(&samples[self.pos..end]);
            self.pos = end;
            if end == samples.len() {
                self.finish_current();
            }
            return Some(frame);
        }
    }

    fn finish_current(&mut self) {
        self.pos = 0;
        if let Some(done) = self.queue.pop_front() {
            if self.looping {
                self.queue.push_back(done);
            } else {
                self.events.push_back(PlayoutEvent::Finished(done.name));
            }
        }
    }

    /// The oldest unread event.
    pub fn poll_event(&mut self) -> Option<PlayoutEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

    fn tone(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<f64> {
        let n = (f64::from(rate) * secs).round() as usize;
        (0..n)
            .map(|i| amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
            .collect()
    }

    fn write_wav(path: &Path, rate: u32, bits: u16, channels: u16, interleaved: &[f64]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if bits == 32 {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut w = hound::WavWriter::create(path, spec).expect("create wav");
        for &s in interleaved {
            match bits {
                8 => w.write_sample((s * 127.0).round() as i8).expect("write"),
                16 => w.write_sample((s * 32767.0).round() as i16).expect("write"),
                24 => w
                    .write_sample((s * 8_388_607.0).round() as i32)
                    .expect("write"),
                _ => w.write_sample(s as f32).expect("write"),
            }
        }
        w.finalize().expect("finalize");
    }

    /// Amplitude of the `freq` component (Goertzel), in full-scale units.
    fn goertzel_amp(x: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(SAMPLE_RATE);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s = f64::from(v) / 32768.0 + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power.max(0.0).sqrt() / x.len() as f64
    }

    fn rms(x: &[i16]) -> f64 {
        let sum: f64 = x.iter().map(|&v| (f64::from(v) / 32768.0).powi(2)).sum();
        (sum / x.len().max(1) as f64).sqrt()
    }

    fn db(x: f64) -> f64 {
        20.0 * x.max(1e-12).log10()
    }

    /// Middle of a signal, away from the resampler's edge transients.
    fn middle(x: &[i16]) -> &[i16] {
        let cut = x.len() / 8;
        &x[cut..x.len() - cut]
    }

    fn zero_crossings(x: &[i16]) -> usize {
        x.windows(2)
            .filter(|w| (w[0] < 0 && w[1] >= 0) || (w[0] >= 0 && w[1] < 0))
            .count()
    }

    fn decode(path: &Path) -> Prompt {
        PromptLibrary::decode_file("t", path).unwrap_or_else(|e| panic!("{e}"))
    }

    fn have(tool: &str) -> bool {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn run(cmd: &mut Command) {
        let out = cmd.output().expect("spawn");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn wav_8k_16bit_is_bit_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.wav");
        let x = tone(440.0, 8000, 0.1, 0.5);
        write_wav(&p, 8000, 16, 1, &x);
        let got = decode(&p);
        let want: Vec<i16> = x.iter().map(|s| (s * 32767.0).round() as i16).collect();
        assert_eq!(got.samples(), &want[..]);
        assert_eq!(got.duration(), Duration::from_millis(100));
    }

    #[test]
    fn wav_16k_resampled_keeps_1khz() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.wav");
        write_wav(&p, 16000, 16, 1, &tone(1000.0, 16000, 1.0, 0.5));
        let got = decode(&p);
        assert_eq!(got.samples().len(), 8000);
        let m = middle(got.samples());
        let amp = goertzel_amp(m, 1000.0);
        assert!((db(amp) - db(0.5)).abs() < 0.2, "1 kHz amplitude {amp}");
        let zc = zero_crossings(m) as f64 / (m.len() as f64 / 8000.0);
        assert!((zc - 2000.0).abs() < 10.0, "{zc} crossings/s");
    }

    #[test]
    fn wav_44k1_resampled_keeps_1khz() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.wav");
        write_wav(&p, 44100, 16, 1, &tone(1000.0, 44100, 1.0, 0.5));
        let got = decode(&p);
        assert_eq!(got.samples().len(), 8000);
        let m = middle(got.samples());
        let zc = zero_crossings(m) as f64 / (m.len() as f64 / 8000.0);
        assert!((zc - 2000.0).abs() < 10.0, "{zc} crossings/s");
        let amp = goertzel_amp(m, 1000.0);
        assert!((db(amp) - db(0.5)).abs() < 0.2, "1 kHz amplitude {amp}");
        // Everything else in the output is tiny (no spurious tones).
        let residual = (rms(m).powi(2) - (amp * amp / 2.0)).max(0.0).sqrt();
        assert!(
            db(residual / 0.5) < -50.0,
            "residual {} dB",
            db(residual / 0.5)
        );
    }

    #[test]
    fn passband_is_flat_for_telephone_band() {
        for fin in [16000u32, 22050, 44100, 48000] {
            for f in [300.0, 1000.0, 2000.0, 3000.0, 3400.0] {
                let x: Vec<f32> = tone(f, fin, 0.5, 0.5).iter().map(|&v| v as f32).collect();
                let y: Vec<i16> = resample(&x, fin, SAMPLE_RATE)
                    .iter()
                    .map(|&v| (v * 32768.0).round() as i16)
                    .collect();
                let amp = goertzel_amp(middle(&y), f);
                assert!(
                    (db(amp) - db(0.5)).abs() < 0.5,
                    "{fin} Hz input, {f} Hz tone: {:.2} dB",
                    db(amp) - db(0.5)
                );
            }
        }
    }

    /// Tones above the new Nyquist (4 kHz) must not fold back into the
    /// band: the output's total energy must stay 60 dB below the input.
    #[test]
    fn out_of_band_tones_are_not_aliased() {
        for fin in [16000u32, 44100, 48000] {
            for f in [4100.0, 4500.0, 5000.0, 6000.0, 7000.0, 10000.0, 15000.0] {
                if f >= f64::from(fin) / 2.0 {
                    continue;
                }
                let x: Vec<f32> = tone(f, fin, 0.5, 0.5).iter().map(|&v| v as f32).collect();
                let y: Vec<i16> = resample(&x, fin, SAMPLE_RATE)
                    .iter()
                    .map(|&v| (v * 32768.0).round() as i16)
                    .collect();
                let alias = 8000.0 - f % 8000.0;
                let level = db(rms(middle(&y)) / (0.5 / 2f64.sqrt()));
                assert!(
                    level < -60.0,
                    "{fin} Hz input, {f} Hz tone (alias {alias} Hz): {level:.1} dB"
                );
            }
        }
        // The 3.9 kHz tone lies in the transition band (3.4–4.0 kHz): it
        // is attenuated, and nothing of it lands inside 300–3400 Hz.
        let x: Vec<f32> = tone(3900.0, 44100, 0.5, 0.5)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let y: Vec<i16> = resample(&x, 44100, SAMPLE_RATE)
            .iter()
            .map(|&v| (v * 32768.0).round() as i16)
            .collect();
        let m = middle(&y);
        let at = db(goertzel_amp(m, 3900.0) / 0.5);
        assert!(at < -3.0, "3.9 kHz passed at {at:.1} dB");
        for f in [300.0, 1000.0, 2000.0, 3000.0, 3400.0] {
            let lvl = db(goertzel_amp(m, f) / 0.5);
            assert!(lvl < -70.0, "3.9 kHz tone leaked {lvl:.1} dB at {f} Hz");
        }
    }

    #[test]
    fn upsampling_from_6k_keeps_tone() {
        let x: Vec<f32> = tone(1000.0, 6000, 0.5, 0.5)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let y: Vec<i16> = resample(&x, 6000, SAMPLE_RATE)
            .iter()
            .map(|&v| (v * 32768.0).round() as i16)
            .collect();
        assert_eq!(y.len(), 4000);
        let amp = goertzel_amp(middle(&y), 1000.0);
        assert!((db(amp) - db(0.5)).abs() < 0.2);
        // Image at 6 kHz - 1 kHz = 5 kHz cannot exist at 8 kHz, but the
        // 8 kHz-rate image at 3 kHz... must be absent too.
        assert!(db(goertzel_amp(middle(&y), 3000.0) / 0.5) < -60.0);
    }

    #[test]
    fn odd_rate_without_table_matches_length() {
        // 44101 and 8000 are coprime: L = 8000 > table limit, per-sample kernel.
        let x: Vec<f32> = tone(1000.0, 44101, 0.05, 0.5)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let y = resample(&x, 44101, SAMPLE_RATE);
        assert_eq!(y.len(), (x.len() as u64 * 8000).div_ceil(44101) as usize);
        let yi: Vec<i16> = y.iter().map(|&v| (v * 32768.0) as i16).collect();
        assert!((db(goertzel_amp(middle(&yi), 1000.0)) - db(0.5)).abs() < 0.5);
    }

    #[test]
    fn wav_8bit_16bit_24bit_float() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bits in [8u16, 16, 24, 32] {
            for rate in [8000u32, 11025, 22050] {
                let p = dir.path().join(format!("b{bits}-{rate}.wav"));
                write_wav(&p, rate, bits, 1, &tone(1000.0, rate, 0.5, 0.5));
                let got = decode(&p);
                let n = got.samples().len();
                assert!(n.abs_diff(4000) <= 1, "{bits} bit {rate} Hz: {n}");
                let amp = goertzel_amp(middle(got.samples()), 1000.0);
                assert!(
                    (db(amp) - db(0.5)).abs() < 0.3,
                    "{bits} bit {rate} Hz: amplitude {amp}"
                );
            }
        }
    }

    #[test]
    fn stereo_is_averaged_to_mono() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = tone(1000.0, 8000, 0.1, 0.5);
        // Left tone, right silence: mono is half the tone.
        let inter: Vec<f64> = l.iter().flat_map(|&s| [s, 0.0]).collect();
        let p = dir.path().join("lr.wav");
        write_wav(&p, 8000, 16, 2, &inter);
        let got = decode(&p);
        assert_eq!(got.samples().len(), l.len());
        for (g, s) in got.samples().iter().zip(&l) {
            let want = (s * 32767.0).round() / 2.0;
            assert!((f64::from(*g) - want).abs() <= 1.0, "{g} vs {want}");
        }
        // Anti-phase channels cancel.
        let inter: Vec<f64> = l.iter().flat_map(|&s| [s, -s]).collect();
        let p = dir.path().join("anti.wav");
        write_wav(&p, 48000, 16, 2, &inter);
        assert!(decode(&p).samples().iter().all(|&v| v.abs() <= 1));
        // Same on both at 48 kHz: full tone.
        let l = tone(1000.0, 48000, 0.5, 0.5);
        let inter: Vec<f64> = l.iter().flat_map(|&s| [s, s]).collect();
        let p = dir.path().join("both.wav");
        write_wav(&p, 48000, 16, 2, &inter);
        let got = decode(&p);
        assert_eq!(got.samples().len(), 4000);
        assert!((db(goertzel_amp(middle(got.samples()), 1000.0)) - db(0.5)).abs() < 0.2);
    }

    /// Small files checked in under tests/data (0.25 s, 1 kHz at half
    /// scale, 8 kHz), so MP3/Ogg/FLAC decoding is tested even where the
    /// encoders are not installed.
    #[test]
    fn checked_in_mp3_ogg_flac_decode() {
        for name in ["prompt-1khz.mp3", "prompt-1khz.ogg", "prompt-1khz.flac"] {
            let got = decode(&Path::new(DATA).join(name));
            let secs = got.duration().as_secs_f64();
            // Gapless info (LAME tag, FLAC STREAMINFO) gives the exact
            // length back; symphonia 0.5 does not trim the last Vorbis
            // block (2048 samples here).
            let n = got.samples().len();
            assert!((2000..=2048).contains(&n), "{name}: {n} samples, {secs} s");
            let m = middle(got.samples());
            let amp = goertzel_amp(m, 1000.0);
            assert!((db(amp) - db(0.5)).abs() < 1.5, "{name}: 1 kHz at {amp}");
            assert!(goertzel_amp(m, 2000.0) < amp / 100.0, "{name}: 2 kHz");
        }
    }

    /// Real speech made by espeak-ng, converted by sox (WAV 44.1 kHz
    /// stereo, FLAC, Ogg/Vorbis) and lame (MP3). Each tool that is absent
    /// is reported and its format skipped (sox cannot write MP3 here: it
    /// lacks the libmp3lame handler, hence lame).
    #[test]
    fn tool_generated_speech_in_every_format() {
        if !have("espeak-ng") || !have("sox") {
            eprintln!("SKIP: espeak-ng or sox not installed");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let src = d.join("speech.wav");
        run(Command::new("espeak-ng")
            .arg("-w")
            .arg(&src)
            .arg("Welcome to the twelve three four five hotline."));
        let reference = decode(&src);
        let ref_secs = reference.duration().as_secs_f64();
        assert!(ref_secs > 1.0, "espeak produced {ref_secs} s");
        let ref_rms = rms(reference.samples());

        let mut files = vec![];
        for (name, extra) in [
            ("s44.wav", &["-r", "44100", "-c", "2", "-b", "24"][..]),
            ("s.flac", &[][..]),
            ("s.ogg", &[][..]),
            (
                "s8.wav",
                &["-r", "8000", "-b", "8", "-e", "unsigned-integer"][..],
            ),
            ("ulaw.wav", &["-r", "8000", "-e", "u-law"][..]),
            ("alaw.wav", &["-r", "8000", "-e", "a-law"][..]),
        ] {
            let out = d.join(name);
            run(Command::new("sox").arg(&src).args(extra).arg(&out));
            files.push(out);
        }
        if have("lame") {
            let out = d.join("s.mp3");
            run(Command::new("lame").arg("--quiet").arg(&src).arg(&out));
            files.push(out);
        } else {
            eprintln!("SKIP mp3 from speech: lame not installed (checked-in MP3 still tested)");
        }
        for f in &files {
            let got = decode(f);
            let secs = got.duration().as_secs_f64();
            assert!(
                (secs - ref_secs).abs() < 0.1,
                "{}: {secs} s vs {ref_secs} s",
                f.display()
            );
            let level = db(rms(got.samples()) / ref_rms);
            assert!(level.abs() < 1.5, "{}: level {level:.2} dB", f.display());
        }
    }

    fn garbage(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn every_bad_file_is_reported_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_wav(
            &d.join("good.wav"),
            8000,
            16,
            1,
            &tone(1000.0, 8000, 0.1, 0.5),
        );
        std::fs::write(d.join("garbage.wav"), garbage(4000, 1)).expect("write");
        std::fs::write(d.join("garbage.mp3"), garbage(4000, 2)).expect("write");
        std::fs::write(d.join("garbage.ogg"), garbage(4000, 3)).expect("write");
        std::fs::write(d.join("zero.wav"), b"").expect("write");
        std::fs::write(
            d.join("readme.txt"),
            b"this is not audio at all\n".repeat(50),
        )
        .expect("write");
        write_wav(&d.join("nosamples.wav"), 8000, 16, 1, &[]);
        // Truncated: header promises 1 s, file holds ~0.25 s.
        write_wav(
            &d.join("full.wav"),
            8000,
            16,
            1,
            &tone(500.0, 8000, 1.0, 0.5),
        );
        let bytes = std::fs::read(d.join("full.wav")).expect("read");
        std::fs::write(d.join("truncated.wav"), &bytes[..44 + 4000]).expect("write");
        // A FLAC with its middle torn out.
        let flac = std::fs::read(Path::new(DATA).join("prompt-1khz.flac")).expect("read");
        let mut torn = flac[..flac.len() / 2].to_vec();
        torn.extend(garbage(300, 4));
        std::fs::write(d.join("torn.flac"), torn).expect("write");

        let names = [
            "good.wav",
            "missing.wav",
            "nothere",
            "garbage.wav",
            "garbage.mp3",
            "garbage.ogg",
            "zero.wav",
            "readme.txt",
            "nosamples.wav",
            "truncated.wav",
            "torn.flac",
            "../escape.wav",
            "/etc/passwd",
        ];
        let errors = PromptLibrary::load(d, &names).expect_err("must fail");
        for e in &errors {
            eprintln!("{e}");
        }
        assert_eq!(errors.len(), names.len() - 1, "{errors:#?}");
        for (e, name) in errors.iter().zip(&names[1..]) {
            assert_eq!(e.name, *name);
            assert!(e.to_string().contains(name), "{e}");
        }
        let kind = |n: &str| {
            errors
                .iter()
                .find(|e| e.name == n)
                .map(|e| e.kind.clone())
                .expect("reported")
        };
        assert!(matches!(kind("missing.wav"), PromptErrorKind::Missing(_)));
        assert!(matches!(kind("nothere"), PromptErrorKind::Missing(t) if t.contains(".mp3")));
        assert!(matches!(
            kind("garbage.wav"),
            PromptErrorKind::Corrupt(_) | PromptErrorKind::Unsupported(_)
        ));
        assert!(matches!(
            kind("garbage.mp3"),
            PromptErrorKind::Corrupt(_) | PromptErrorKind::Unsupported(_)
        ));
        assert!(matches!(
            kind("garbage.ogg"),
            PromptErrorKind::Corrupt(_) | PromptErrorKind::Unsupported(_)
        ));
        assert!(matches!(kind("zero.wav"), PromptErrorKind::Empty(_)));
        assert!(matches!(
            kind("readme.txt"),
            PromptErrorKind::Unsupported(_) | PromptErrorKind::Corrupt(_)
        ));
        assert!(matches!(kind("nosamples.wav"), PromptErrorKind::Empty(_)));
        assert!(
            matches!(kind("truncated.wav"), PromptErrorKind::Corrupt(t) if t.contains("truncated"))
        );
        assert!(matches!(kind("torn.flac"), PromptErrorKind::Corrupt(_)));
        assert_eq!(kind("../escape.wav"), PromptErrorKind::InvalidName);
        assert_eq!(kind("/etc/passwd"), PromptErrorKind::InvalidName);
    }

    #[test]
    fn library_resolves_extensions_and_shares_buffers() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("moh")).expect("mkdir");
        std::fs::copy(
            Path::new(DATA).join("prompt-1khz.flac"),
            dir.path().join("welcome.flac"),
        )
        .expect("copy");
        std::fs::copy(
            Path::new(DATA).join("prompt-1khz.ogg"),
            dir.path().join("moh/music.ogg"),
        )
        .expect("copy");
        let lib = PromptLibrary::load(dir.path(), &["welcome", "moh/music.ogg", "welcome"])
            .expect("loads");
        assert_eq!(lib.len(), 2);
        assert_eq!(
            lib.names().collect::<Vec<_>>(),
            ["moh/music.ogg", "welcome"]
        );
        let a = lib.get("welcome").expect("present");
        let b = lib.get("welcome").expect("present");
        assert!(Arc::ptr_eq(&a.samples, &b.samples));
        assert_eq!(a.name(), "welcome");
        assert!(lib.get("nope").is_none());
    }

    /// Not asserted: load-time cost of resampling 10 s of 48 kHz and
    /// 44.1 kHz audio to 8 kHz (once per file, at config load).
    #[test]
    #[allow(clippy::disallowed_methods)] // micro-timing in a test only
    fn resample_cost() {
        for fin in [48000u32, 44100, 16000] {
            let x: Vec<f32> = tone(1000.0, fin, 10.0, 0.5)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let start = std::time::Instant::now();
            let y = resample(&x, fin, SAMPLE_RATE);
            println!(
                "resample 10 s {fin} Hz -> 8 kHz: {:?} ({} samples)",
                start.elapsed(),
                y.len()
            );
        }
    }

    // ------------------------------------------------------------ playout

    fn ramp(name: &str, n: usize) -> Prompt {
        Prompt::from_pcm(name, (1..=n).map(|i| i as i16).collect())
    }

    fn drain(p: &mut Playout) -> Vec<Frame> {
        std::iter::from_fn(|| p.next_frame()).take(10_000).collect()
    }

    fn events(p: &mut Playout) -> Vec<PlayoutEvent> {
        std::iter::from_fn(|| p.poll_event()).collect()
    }

    fn fin(n: &str) -> PlayoutEvent {
        PlayoutEvent::Finished(Arc::from(n))
    }

    #[test]
    fn frame_count_is_ceil_of_duration_and_last_frame_padded() {
        for n in [1usize, 159, 160, 161, 320, 1000] {
            let pr = ramp("a", n);
            assert_eq!(pr.frame_count(), n.div_ceil(160));
            let dur_ms = pr.duration().as_secs_f64() * 1000.0;
            assert_eq!(pr.frame_count(), (dur_ms / 20.0).ceil() as usize);
            let mut p = Playout::new();
            p.play(pr);
            let frames = drain(&mut p);
            assert_eq!(frames.len(), n.div_ceil(160), "n={n}");
            let flat: Vec<i16> = frames.concat();
            assert_eq!(
                &flat[..n],
                &(1..=n).map(|i| i as i16).collect::<Vec<_>>()[..]
            );
            assert!(flat[n..].iter().all(|&s| s == 0));
            assert!(!p.is_playing());
            assert_eq!(events(&mut p), [fin("a")]);
        }
    }

    #[test]
    fn queue_plays_in_order_each_on_a_frame_boundary() {
        let mut p = Playout::new();
        assert!(p.next_frame().is_none());
        p.queue(ramp("one", 200));
        p.queue(ramp("two", 160));
        p.queue(ramp("three", 10));
        assert_eq!(p.current(), Some("one"));
        let f = drain(&mut p);
        assert_eq!(f.len(), 2 + 1 + 1);
        assert_eq!(f[1][39], 200);
        assert_eq!(f[1][40], 0);
        assert_eq!(f[2][0], 1);
        assert_eq!(f[3][9], 10);
        assert_eq!(events(&mut p), [fin("one"), fin("two"), fin("three")]);
    }

    #[test]
    fn finished_is_reported_with_the_last_frame() {
        let mut p = Playout::new();
        p.play(ramp("a", 320));
        assert!(p.next_frame().is_some());
        assert_eq!(p.poll_event(), None);
        assert!(p.next_frame().is_some());
        assert_eq!(p.poll_event(), Some(fin("a")));
        assert!(p.next_frame().is_none());
    }

    #[test]
    fn play_replaces_and_stop_clears_silently() {
        let mut p = Playout::new();
        p.queue(ramp("a", 1000));
        p.queue(ramp("b", 1000));
        p.next_frame();
        p.play(ramp("c", 100));
        assert_eq!(p.current(), Some("c"));
        assert_eq!(drain(&mut p).len(), 1);
        assert_eq!(events(&mut p), [fin("c")]);
        p.queue(ramp("d", 1000));
        p.next_frame();
        p.stop();
        assert!(!p.is_playing());
        assert!(p.next_frame().is_none());
        assert_eq!(events(&mut p), []);
        // After stop, a new prompt starts from its beginning.
        p.play(ramp("e", 5));
        assert_eq!(p.next_frame().map(|f| f[0]), Some(1));
    }

    #[test]
    fn loop_repeats_the_queue_without_finished_events() {
        let mut p = Playout::new();
        p.set_loop(true);
        p.queue(ramp("x", 160));
        p.queue(ramp("y", 80));
        let firsts: Vec<(i16, i16)> = (0..6)
            .map(|_| p.next_frame().map(|f| (f[0], f[100])).expect("looping"))
            .collect();
        assert_eq!(
            firsts,
            [(1, 101), (1, 0), (1, 101), (1, 0), (1, 101), (1, 0)]
        );
        assert_eq!(events(&mut p), []);
        // Turning the loop off lets the queue run out.
        p.set_loop(false);
        assert_eq!(drain(&mut p).len(), 2);
        assert_eq!(events(&mut p), [fin("x"), fin("y")]);
    }

    #[test]
    fn barge_in_stops_current_and_queued_when_interruptible() {
        let mut p = Playout::new();
        p.queue(ramp("menu", 1600));
        p.queue(ramp("options", 1600));
        // Not interruptible: key ignored.
        assert!(!p.on_key());
        p.next_frame();
        assert!(p.is_playing());
        p.interrupt_on_key(true);
        assert!(p.on_key());
        assert!(!p.is_playing());
        assert!(p.next_frame().is_none());
        assert_eq!(
            events(&mut p),
            [PlayoutEvent::Interrupted(Arc::from("menu"))]
        );
        // Idle: a key does nothing.
        assert!(!p.on_key());
        assert_eq!(events(&mut p), []);
        // Looping music on hold can be interrupted too.
        p.set_loop(true);
        p.play(ramp("moh", 100));
        p.next_frame();
        p.next_frame();
        assert!(p.on_key());
        assert_eq!(
            events(&mut p),
            [PlayoutEvent::Interrupted(Arc::from("moh"))]
        );
    }

    #[test]
    fn empty_prompts_do_not_hang() {
        let mut p = Playout::new();
        p.set_loop(true);
        p.queue(Prompt::from_pcm("e", vec![]));
        assert!(p.next_frame().is_none());
        assert!(!p.is_playing());
        p.set_loop(false);
        p.queue(Prompt::from_pcm("e", vec![]));
        p.queue(ramp("a", 3));
        assert_eq!(p.next_frame().map(|f| f[2]), Some(3));
        assert_eq!(events(&mut p), [fin("e"), fin("a")]);
    }
}
