//! The two kinds of sample a recording carries (issue 16 item 3: `alaw`
//! recordings are "wire-exact G.711 stereo WAV, half the bytes, no decode
//! on the hot path"): linear PCM (`i16`, silence 0) for `pcm16` and `opus`
//! recordings, and G.711 A-law bytes (`u8`, silence `0xD5`) for `alaw`
//! ones, placed as they came off the wire. [`Sample`] is what the
//! [`ChannelAligner`](super::ChannelAligner) is generic over; [`Chunk`] is
//! what the writer pool takes, of either kind, so an A-law recording's
//! bytes go from the packet to the file without being decoded or encoded.
//! Depends only on `media::codec`, so `bench/recording_formats/run.sh`
//! compiles it alone.

use crate::media::codec::G711;

mod sealed {
    pub trait Sealed {}
    impl Sealed for i16 {}
    impl Sealed for u8 {}
}

/// A sample the recorder aligns and writes: `i16` is linear PCM, `u8` is a
/// G.711 A-law byte (the only byte kind the recorder has).
pub trait Sample: Copy + Send + Sync + 'static + sealed::Sealed {
    /// The sample of silence: what gaps, pauses and a side that sends
    /// nothing are filled with.
    const SILENCE: Self;

    /// Interleaved samples of this kind as a [`Chunk`] for the writer.
    fn into_chunk(samples: Vec<Self>) -> Chunk;

    /// The buffer of a chunk of this kind (a written chunk handed back for
    /// reuse), `None` for the other kind.
    fn from_chunk(chunk: Chunk) -> Option<Vec<Self>>;

    /// Whether `chunk` is of this kind.
    fn is_kind(chunk: &Chunk) -> bool;
}

impl Sample for i16 {
    const SILENCE: i16 = 0;

    fn into_chunk(samples: Vec<i16>) -> Chunk {
        Chunk::Linear(samples)
    }

    fn from_chunk(chunk: Chunk) -> Option<Vec<i16>> {
        match chunk {
            Chunk::Linear(v) => Some(v),
            Chunk::Alaw(_) => None,
        }
    }

    fn is_kind(chunk: &Chunk) -> bool {
        matches!(chunk, Chunk::Linear(_))
    }
}

/// A G.711 A-law byte. Silence is `0xD5`, what A-law encodes 0 as (the
/// smallest positive level, +8 in 16-bit), so a gap in an `alaw` file is
/// byte for byte what the linear path's silence encoded to.
impl Sample for u8 {
    const SILENCE: u8 = 0xD5;

    fn into_chunk(samples: Vec<u8>) -> Chunk {
        Chunk::Alaw(samples)
    }

    fn from_chunk(chunk: Chunk) -> Option<Vec<u8>> {
        match chunk {
            Chunk::Alaw(v) => Some(v),
            Chunk::Linear(_) => None,
        }
    }

    fn is_kind(chunk: &Chunk) -> bool {
        matches!(chunk, Chunk::Alaw(_))
    }
}

/// Interleaved frames for a recording
/// ([`RecordingHandle::try_send_chunk`](super::RecordingHandle::try_send_chunk)), of
/// either kind: a writer stores its own format's kind as it is and converts
/// the other (so `alaw` chunks into an `alaw` file are copied, nothing
/// else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// 16-bit linear PCM.
    Linear(Vec<i16>),
    /// G.711 A-law bytes.
    Alaw(Vec<u8>),
}

impl Chunk {
    /// Samples in the chunk (all channels).
    pub fn len(&self) -> usize {
        match self {
            Chunk::Linear(v) => v.len(),
            Chunk::Alaw(v) => v.len(),
        }
    }

    /// Whether the chunk has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples the chunk's buffer holds without growing.
    pub(super) fn capacity(&self) -> usize {
        match self {
            Chunk::Linear(v) => v.capacity(),
            Chunk::Alaw(v) => v.capacity(),
        }
    }

    /// Empties the chunk, keeping its buffer.
    pub(super) fn clear(&mut self) {
        match self {
            Chunk::Linear(v) => v.clear(),
            Chunk::Alaw(v) => v.clear(),
        }
    }

    /// The samples as linear PCM: a linear chunk as it is, an A-law one
    /// decoded into `scratch`.
    pub(super) fn linear<'a>(&'a self, scratch: &'a mut Vec<i16>) -> &'a [i16] {
        match self {
            Chunk::Linear(v) => v,
            Chunk::Alaw(bytes) => {
                scratch.clear();
                scratch.extend(bytes.iter().map(|&b| G711::Alaw.decode_sample(b)));
                scratch
            }
        }
    }
}

impl From<Vec<i16>> for Chunk {
    fn from(samples: Vec<i16>) -> Self {
        Chunk::Linear(samples)
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(alaw: Vec<u8>) -> Self {
        Chunk::Alaw(alaw)
    }
}
