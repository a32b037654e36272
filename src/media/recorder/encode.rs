//! A recording format's bytes in memory ([`FormatEncoder`]): what the
//! writer pool does to each chunk of aligned frames, without the file, so
//! the cost of each format (issue 16 item 3: "CPU per call for each") is
//! measured on exactly the code that records (`benches/recording_formats.rs`),
//! and tools can turn audio into a recording's bytes. Chunks come as linear
//! PCM ([`FormatEncoder::write`]) or as A-law bytes
//! ([`FormatEncoder::write_alaw`], what an `alaw` call recording's writer
//! takes: copied as they are into `alaw`, decoded for the others).

use super::kind::RecordingFormat;
use super::opus::{OpusSink, OpusSinkError};
use crate::media::codec::G711;

/// Encodes interleaved stereo 8 kHz frames into one format's bytes (the
/// audio only, for WAV: no header).
pub struct FormatEncoder {
    inner: Inner,
}

enum Inner {
    Pcm16(Vec<u8>),
    Alaw(Vec<u8>),
    Opus(Box<OpusSink<Vec<u8>>>),
}

impl std::fmt::Debug for FormatEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.inner {
            Inner::Pcm16(_) => "pcm16",
            Inner::Alaw(_) => "alaw",
            Inner::Opus(_) => "opus",
        };
        f.debug_struct("FormatEncoder")
            .field("format", &name)
            .finish()
    }
}

impl FormatEncoder {
    /// An encoder for 8 kHz stereo in `format` (for Opus, the stream's
    /// header pages are already written).
    pub fn new(format: RecordingFormat) -> Result<Self, OpusSinkError> {
        let inner = match format {
            RecordingFormat::Pcm16 => Inner::Pcm16(Vec::new()),
            RecordingFormat::Alaw => Inner::Alaw(Vec::new()),
            RecordingFormat::Opus => Inner::Opus(Box::new(OpusSink::new(Vec::new(), 2, 8000)?)),
        };
        Ok(FormatEncoder { inner })
    }

    /// Encodes one chunk of interleaved frames (as the writer pool does;
    /// Opus ends a page at every [`Self::checkpoint`]).
    pub fn write(&mut self, interleaved: &[i16]) -> Result<(), OpusSinkError> {
        match &mut self.inner {
            Inner::Pcm16(out) => {
                out.extend(interleaved.iter().flat_map(|s| s.to_le_bytes()));
                Ok(())
            }
            Inner::Alaw(out) => {
                out.extend(interleaved.iter().map(|&s| G711::Alaw.encode_sample(s)));
                Ok(())
            }
            Inner::Opus(sink) => sink.write(interleaved),
        }
    }

    /// Encodes one chunk of interleaved A-law bytes: into `alaw` as they
    /// are (as the writer pool does with an `alaw` call recording's
    /// chunks), decoded into the other formats.
    pub fn write_alaw(&mut self, alaw: &[u8]) -> Result<(), OpusSinkError> {
        if let Inner::Alaw(out) = &mut self.inner {
            out.extend_from_slice(alaw);
            return Ok(());
        }
        let linear: Vec<i16> = alaw.iter().map(|&b| G711::Alaw.decode_sample(b)).collect();
        self.write(&linear)
    }

    /// The header interval: an Opus page ends here.
    pub fn checkpoint(&mut self) -> Result<(), OpusSinkError> {
        match &mut self.inner {
            Inner::Opus(sink) => sink.checkpoint(),
            _ => Ok(()),
        }
    }

    /// Ends the stream and returns its bytes.
    pub fn finish(self) -> Result<Vec<u8>, OpusSinkError> {
        match self.inner {
            Inner::Pcm16(out) | Inner::Alaw(out) => Ok(out),
            Inner::Opus(mut sink) => {
                sink.finish()?;
                sink.into_inner()
            }
        }
    }
}
