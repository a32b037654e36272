//! The Ogg Opus recording (`[recording] format = "opus"`, issue 16 item 3:
//! "a compressed format for the 3-year archive"): the aligned stereo
//! frames are coded in 20 ms Opus packets (RFC 6716) and framed in Ogg
//! (RFC 7845), one page per header interval.
//!
//! # Why Ogg Opus
//!
//! * **Bytes**: a minute of 8 kHz stereo is 1.92 MB as PCM16 and 0.96 MB as
//!   A-law; at [`OPUS_BITRATE_BPS`] it is about 0.18 MB (see BENCHMARKS.md),
//!   a tenth of PCM16, which is what three years of every call costs in
//!   disks. Opus's SILK mode is made for speech at these rates (narrowband,
//!   8 kHz input: nothing is resampled), and it beats the older speech
//!   codecs at the same rate.
//! * **Open and playable**: RFC 6716/7845, royalty free; browsers, VLC,
//!   ffmpeg, `opusdec` play it, and the recordings API serves it as
//!   `audio/ogg`.
//! * **Crash safety for free from the container**: Ogg pages are
//!   self-delimiting and carry a CRC and the granule position (samples so
//!   far) each, so a file cut anywhere is repaired by keeping its whole
//!   pages and marking the last one end-of-stream (see `repair`); no
//!   header size to patch.
//! * **No C library**: the encoder is the pure-Rust `opus-pure` crate
//!   (encoder and decoder for every mode, no dependencies), so
//!   `cargo run -- serve` still needs only cargo; the Ogg framing is ours
//!   (`ogg`) so pages are cut where crash safety wants them.
//!
//! The rejected alternatives: FLAC (lossless, about half of PCM16: five
//! times Opus's bytes), Vorbis (poor below 8 kHz input and at speech
//! rates), a libopus binding (needs the C library: a cargo feature and an
//! apt package for no gain over the pure-Rust encoder).
//!
//! Channels are coded as a stereo pair (caller left, the other party right)
//! at [`OPUS_BITRATE_BPS`] in all; Opus spends its bits where the speech
//! is, and silence (one side listening, hold) costs next to nothing.

use std::fs::File;
use std::io::Write;

use opus_pure::{Application, OpusEncoder, MAX_PACKET_BYTES};

use super::ogg::{opus_head, opus_tags, PageBuilder, FLAG_BOS, FLAG_EOS};

/// Target bitrate of an Opus recording, both channels together.
pub const OPUS_BITRATE_BPS: i32 = 24_000;

/// The encoder's effort (0–10; libopus's default is 9): measured with
/// `bench/recording_formats/run.sh`, 2 costs about a quarter of 5's and 9's
/// CPU (≈ 0.3–0.9 % of a core per call) with the same bytes and the same
/// waveform SNR on speech (BENCHMARKS.md, "Recording formats").
pub const OPUS_COMPLEXITY: i32 = 2;

/// Opus frame length: 20 ms.
const FRAME_MS: u32 = 20;

/// Why an Opus recording cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum OpusSinkError {
    /// The encoder refused (a rate or channel count Opus does not code).
    #[error("Opus encoder: {0}")]
    Encoder(String),
    /// Writing the file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn encoder_err(e: opus_pure::Error) -> OpusSinkError {
    OpusSinkError::Encoder(e.to_string())
}

/// An Ogg Opus file being written (to a [`File`], or any writer).
pub(super) struct OpusSink<W: Write = File> {
    /// Written to only at a checkpoint, one `write` of the pages gathered
    /// in `out` (no `BufWriter`: it was 16 KiB per recording for nothing,
    /// issue 16 "Media at the limit").
    file: W,
    encoder: OpusEncoder,
    channels: usize,
    /// Frames (per channel) in one Opus packet.
    frame_len: usize,
    /// 48 kHz samples one packet lasts.
    packet_48k: i64,
    /// Input frames are this many 48 kHz samples each.
    scale_48k: u64,
    serial: u32,
    sequence: u32,
    pre_skip: u16,
    /// Interleaved samples short of a whole packet.
    pending: Vec<i16>,
    page: PageBuilder,
    packet: Vec<u8>,
    out: Vec<u8>,
    /// 48 kHz samples of every packet coded so far (pre-skip included).
    granule: i64,
    /// Frames handed in.
    frames_in: u64,
}

impl<W: Write> OpusSink<W> {
    /// Starts the stream in `file`: the `OpusHead` and `OpusTags` pages,
    /// flushed to the OS.
    pub(super) fn new(file: W, channels: u16, rate: u32) -> Result<Self, OpusSinkError> {
        let rate_i32 = i32::try_from(rate).map_err(|_| OpusSinkError::Encoder("rate".into()))?;
        let mut encoder = OpusEncoder::new(rate_i32, usize::from(channels), Application::Voip)
            .map_err(encoder_err)?;
        encoder.bitrate_bps = OPUS_BITRATE_BPS;
        encoder.complexity = OPUS_COMPLEXITY;
        let frame_len = (rate * FRAME_MS / 1000) as usize;
        let scale_48k = u64::from(48_000 / rate.max(1));
        let pre_skip = u16::try_from(encoder.lookahead() as u64 * scale_48k).unwrap_or(u16::MAX);
        let mut sink = OpusSink {
            file,
            encoder,
            channels: usize::from(channels),
            frame_len,
            packet_48k: i64::from(48 * FRAME_MS),
            scale_48k,
            serial: rand::random(),
            sequence: 0,
            pre_skip,
            pending: Vec::with_capacity(frame_len * usize::from(channels)),
            page: PageBuilder::default(),
            packet: vec![0u8; MAX_PACKET_BYTES],
            out: Vec::new(),
            granule: 0,
            frames_in: 0,
        };
        let channels_u8 = u8::try_from(channels).unwrap_or(2);
        sink.page.push(&opus_head(channels_u8, pre_skip, rate));
        sink.emit(FLAG_BOS, 0);
        let vendor = concat!("hotline ", env!("CARGO_PKG_VERSION"), " (opus-pure)");
        sink.page
            .push(&opus_tags(vendor, &["ENCODER=hotline call recorder"]));
        sink.emit(0, 0);
        sink.checkpoint()?;
        Ok(sink)
    }

    /// Codes interleaved samples (whole frames); whole packets go on the
    /// page being gathered.
    pub(super) fn write(&mut self, samples: &[i16]) -> Result<(), OpusSinkError> {
        self.frames_in += (samples.len() / self.channels) as u64;
        let whole = self.frame_len * self.channels;
        let mut rest = samples;
        if !self.pending.is_empty() {
            let take = (whole - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() < whole {
                return Ok(());
            }
            let pending = std::mem::take(&mut self.pending);
            self.encode(&pending)?;
            self.pending = pending;
            self.pending.clear();
        }
        let mut chunks = rest.chunks_exact(whole);
        for frame in &mut chunks {
            self.encode(frame)?;
        }
        self.pending.extend_from_slice(chunks.remainder());
        Ok(())
    }

    /// Ends the page being gathered and hands everything to the OS (the
    /// header interval: what a crash may lose is the audio after this).
    pub(super) fn checkpoint(&mut self) -> Result<(), OpusSinkError> {
        if self.page.packets() > 0 {
            self.emit(0, self.granule);
        }
        if !self.out.is_empty() {
            self.file.write_all(&self.out)?;
            self.out.clear();
        }
        self.file.flush()?;
        Ok(())
    }

    /// Codes what is left (padded with silence until the encoder's delay
    /// is out), writes the last page with the end-of-stream flag and its
    /// granule trimmed to the audio handed in (RFC 7845 §4.4), and flushes.
    pub(super) fn finish(&mut self) -> Result<(), OpusSinkError> {
        let end = i64::from(self.pre_skip)
            + i64::try_from(self.frames_in * self.scale_48k).unwrap_or(i64::MAX);
        let whole = self.frame_len * self.channels;
        if !self.pending.is_empty() {
            let mut last = std::mem::take(&mut self.pending);
            last.resize(whole, 0);
            self.encode(&last)?;
        }
        if self.frames_in > 0 {
            let silence = vec![0i16; whole];
            while self.granule < end {
                self.encode(&silence)?;
            }
        }
        let end = if self.frames_in > 0 { end } else { 0 };
        if self.page.packets() == 0 {
            // A page holds at least one lacing value: an empty packet, as
            // Ogg muxers end a stream that has nothing left to carry.
            self.page.push(&[]);
        }
        self.emit(FLAG_EOS, end);
        self.checkpoint()
    }

    fn encode(&mut self, frame: &[i16]) -> Result<(), OpusSinkError> {
        let n = self
            .encoder
            .encode_s16(frame, self.frame_len, &mut self.packet)
            .map_err(encoder_err)?;
        if !self.page.fits(n) {
            self.emit(0, self.granule);
        }
        self.page.push(&self.packet[..n]);
        self.granule += self.packet_48k;
        Ok(())
    }

    /// The writer, flushed (after [`Self::finish`]).
    pub(super) fn into_inner(self) -> Result<W, OpusSinkError> {
        Ok(self.file)
    }

    /// Writes the gathered page into the output buffer.
    fn emit(&mut self, flags: u8, granule: i64) {
        self.page
            .write(flags, granule, self.serial, self.sequence, &mut self.out);
        self.sequence += 1;
    }
}
