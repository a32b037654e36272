//! The WAV files the recorder writes itself ([`WavFile`]): the A-law
//! recording (`[recording] format = "alaw"`, issue 16 item 3: a RIFF/WAVE
//! file with format tag 6, G.711 A-law, 8 bits a sample, the
//! `WAVEFORMATEX` of 18 bytes and no `fact` chunk) and the PCM16 one (the
//! call recording issue's WAV, the header byte for byte what hound writes
//! for 16-bit PCM), and the header parser ([`parse_layout`]) the repair and
//! `describe_finished` read both with.
//!
//! Why not hound and a `BufWriter` (issue 16 "Media at the limit": RSS
//! growth ≤ 64 KiB per call): the buffer was 8 KiB per recording, and a
//! header patch through it was three writes and three seeks. The writer
//! pool's chunks are the write buffer now (a recording's handle fills one
//! to [`WriterOptions::write_every`](super::WriterOptions) before sending
//! it), so a chunk is one `write` straight to the file, and a patch is one
//! `pwrite` of the whole header at offset 0.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// `WAVE_FORMAT_PCM`.
const FORMAT_PCM: u16 = 1;
/// `WAVE_FORMAT_ALAW`.
const FORMAT_ALAW: u16 = 6;
/// Bytes before the A-law data: RIFF (12) + fmt (8 + 18) + data header (8).
pub(super) const ALAW_HEADER_LEN: u64 = 46;
/// Bytes before the PCM16 data: RIFF (12) + fmt (8 + 16) + data header (8).
pub(super) const PCM16_HEADER_LEN: u64 = 44;

/// What a [`WavFile`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WavKind {
    /// 16-bit little-endian linear PCM (`PCMWAVEFORMAT`, as hound writes).
    Pcm16,
    /// G.711 A-law bytes (`WAVEFORMATEX`, cbSize 0).
    Alaw,
}

impl WavKind {
    /// Bytes before the data.
    pub(super) fn header_len(self) -> u64 {
        match self {
            WavKind::Pcm16 => PCM16_HEADER_LEN,
            WavKind::Alaw => ALAW_HEADER_LEN,
        }
    }

    /// Bytes per sample.
    pub(super) fn sample_bytes(self) -> u16 {
        match self {
            WavKind::Pcm16 => 2,
            WavKind::Alaw => 1,
        }
    }
}

/// A WAV being written: data bytes are appended with one `write` each
/// ([`Self::append`]); [`Self::patch`] sets the RIFF and data sizes to
/// what is written with one `pwrite` of the header.
pub(super) struct WavFile {
    file: File,
    kind: WavKind,
    channels: u16,
    rate: u32,
    data_bytes: u64,
}

impl WavFile {
    /// Writes the header (no data until the first patch).
    pub(super) fn new(file: File, kind: WavKind, channels: u16, rate: u32) -> io::Result<Self> {
        let mut wav = WavFile {
            file,
            kind,
            channels,
            rate,
            data_bytes: 0,
        };
        let header = wav.header(0);
        wav.file.write_all(&header)?;
        Ok(wav)
    }

    /// The header for `data` bytes of data.
    fn header(&self, data: u64) -> Vec<u8> {
        let len = self.kind.header_len();
        let riff = u32::try_from(len - 8 + data).unwrap_or(u32::MAX);
        let data = u32::try_from(data).unwrap_or(u32::MAX);
        let bytes = self.kind.sample_bytes();
        let block_align = self.channels * bytes;
        let mut h = Vec::with_capacity(len as usize);
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&riff.to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        match self.kind {
            WavKind::Pcm16 => {
                h.extend_from_slice(&16u32.to_le_bytes());
                h.extend_from_slice(&FORMAT_PCM.to_le_bytes());
            }
            WavKind::Alaw => {
                h.extend_from_slice(&18u32.to_le_bytes());
                h.extend_from_slice(&FORMAT_ALAW.to_le_bytes());
            }
        }
        h.extend_from_slice(&self.channels.to_le_bytes());
        h.extend_from_slice(&self.rate.to_le_bytes());
        h.extend_from_slice(&(self.rate * u32::from(block_align)).to_le_bytes());
        h.extend_from_slice(&block_align.to_le_bytes());
        h.extend_from_slice(&(bytes * 8).to_le_bytes());
        if self.kind == WavKind::Alaw {
            h.extend_from_slice(&0u16.to_le_bytes()); // cbSize
        }
        h.extend_from_slice(b"data");
        h.extend_from_slice(&data.to_le_bytes());
        h
    }

    /// Appends data bytes (whole samples of the file's kind) with one
    /// `write_all`.
    pub(super) fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.data_bytes += data.len() as u64;
        Ok(())
    }

    /// Sets the RIFF and data sizes to the data written (the header
    /// interval, and the end): one `pwrite` at offset 0; the data's own
    /// writes went to the OS as they were made.
    pub(super) fn patch(&mut self) -> io::Result<()> {
        self.file.write_all_at(&self.header(self.data_bytes), 0)
    }
}

/// Header facts needed to repair a WAV file.
pub(super) struct WavLayout {
    /// Offset of the first data byte.
    pub(super) data_offset: u64,
    /// Bytes per frame.
    pub(super) block_align: u64,
    /// Frames per second.
    pub(super) sample_rate: u32,
    /// The data chunk's size as its header says.
    pub(super) data_size: u32,
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
pub(super) fn parse_layout(head: &[u8], whole_file: bool) -> Result<Option<WavLayout>, String> {
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
                data_size: size,
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
