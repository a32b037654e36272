//! The WAV side of the recordings that hound does not do: the A-law
//! writer ([`AlawWav`], `[recording] format = "alaw"`, issue 16 item 3: a
//! RIFF/WAVE file with format tag 6, G.711 A-law, 8 bits a sample, the
//! `WAVEFORMATEX` of 18 bytes and no `fact` chunk) and the header parser
//! ([`parse_layout`]) the repair and `describe_finished` read both PCM16 and
//! A-law files with.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use crate::media::codec::G711;

/// `WAVE_FORMAT_ALAW`.
const FORMAT_ALAW: u16 = 6;
/// Bytes before the A-law data: RIFF (12) + fmt (8 + 18) + data header (8).
pub(super) const ALAW_HEADER_LEN: u64 = 46;

/// An A-law WAV being written: A-law bytes (a call's wire audio, issue 16
/// item 3) are appended as they are ([`Self::write_alaw`]), linear samples
/// encoded with G.711's table ([`Self::write`]); [`Self::patch`] sets the
/// RIFF and data sizes to what is written and hands the buffer to the OS.
pub(super) struct AlawWav {
    file: BufWriter<File>,
    data_bytes: u64,
    encoded: Vec<u8>,
}

impl AlawWav {
    /// Writes the header (sizes 0 until the first patch).
    pub(super) fn new(file: File, channels: u16, rate: u32) -> io::Result<Self> {
        let mut file = BufWriter::with_capacity(8 * 1024, file);
        let block_align = channels;
        let mut h = Vec::with_capacity(ALAW_HEADER_LEN as usize);
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&(ALAW_HEADER_LEN as u32 - 8).to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&18u32.to_le_bytes());
        h.extend_from_slice(&FORMAT_ALAW.to_le_bytes());
        h.extend_from_slice(&channels.to_le_bytes());
        h.extend_from_slice(&rate.to_le_bytes());
        h.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        h.extend_from_slice(&block_align.to_le_bytes());
        h.extend_from_slice(&8u16.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes()); // cbSize
        h.extend_from_slice(b"data");
        h.extend_from_slice(&0u32.to_le_bytes());
        file.write_all(&h)?;
        Ok(AlawWav {
            file,
            data_bytes: 0,
            encoded: Vec::new(),
        })
    }

    /// Encodes and appends interleaved linear samples.
    pub(super) fn write(&mut self, samples: &[i16]) -> io::Result<()> {
        let mut encoded = std::mem::take(&mut self.encoded);
        encoded.clear();
        encoded.extend(samples.iter().map(|&s| G711::Alaw.encode_sample(s)));
        let written = self.write_alaw(&encoded);
        self.encoded = encoded;
        written
    }

    /// Appends interleaved A-law bytes as they are.
    pub(super) fn write_alaw(&mut self, alaw: &[u8]) -> io::Result<()> {
        self.file.write_all(alaw)?;
        self.data_bytes += alaw.len() as u64;
        Ok(())
    }

    /// Sets the RIFF and data sizes to the data written and flushes to the
    /// OS (the header interval, and the end).
    pub(super) fn patch(&mut self) -> io::Result<()> {
        let data = u32::try_from(self.data_bytes).unwrap_or(u32::MAX);
        let riff = u32::try_from(ALAW_HEADER_LEN - 8 + self.data_bytes).unwrap_or(u32::MAX);
        self.file.seek(SeekFrom::Start(4))?;
        self.file.write_all(&riff.to_le_bytes())?;
        self.file.seek(SeekFrom::Start(ALAW_HEADER_LEN - 4))?;
        self.file.write_all(&data.to_le_bytes())?;
        self.file.seek(SeekFrom::End(0))?;
        self.file.flush()
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
