//! Which format a recording is stored in ([`RecordingFormat`],
//! `[recording] format`: PCM16 or A-law WAV, Ogg Opus; issue 16 item 3),
//! its extension and media type. Depends on nothing else of the recorder,
//! so `bench/recording_formats/run.sh` compiles it alone.

use std::path::Path;

/// How a call's recording is stored (`[recording] format`, issue 16 item
/// 3). Every format is 8 kHz stereo, caller left, other party right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingFormat {
    /// WAV, 16-bit linear PCM (format tag 1): 32 kB/s.
    #[default]
    Pcm16,
    /// WAV, G.711 A-law (format tag 6, 8 bits a sample): 16 kB/s, half of
    /// `pcm16`, the wire's own quantisation.
    Alaw,
    /// Ogg Opus (RFC 7845), SILK narrowband at
    /// [`OPUS_BITRATE_BPS`](super::OPUS_BITRATE_BPS): the archive format.
    Opus,
}

impl RecordingFormat {
    /// Every format, the default first.
    pub const ALL: [RecordingFormat; 3] = [
        RecordingFormat::Pcm16,
        RecordingFormat::Alaw,
        RecordingFormat::Opus,
    ];

    /// The name in `[recording] format`.
    pub fn name(self) -> &'static str {
        match self {
            RecordingFormat::Pcm16 => "pcm16",
            RecordingFormat::Alaw => "alaw",
            RecordingFormat::Opus => "opus",
        }
    }

    /// The finished file's extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            RecordingFormat::Pcm16 | RecordingFormat::Alaw => "wav",
            RecordingFormat::Opus => "opus",
        }
    }

    /// The media type a download is served with (RFC 7845 §9 for Ogg Opus).
    pub fn content_type(self) -> &'static str {
        match self {
            RecordingFormat::Pcm16 | RecordingFormat::Alaw => "audio/wav",
            RecordingFormat::Opus => "audio/ogg",
        }
    }
}

/// The media type of a finished recording by its extension (`.opus`:
/// `audio/ogg`, anything else `audio/wav`).
pub fn content_type_of(path: &Path) -> &'static str {
    if is_ogg_path(path) {
        RecordingFormat::Opus.content_type()
    } else {
        RecordingFormat::Pcm16.content_type()
    }
}

/// Whether a recording's path (finished, `.part` or `.sealing`) is an Ogg
/// Opus file rather than a WAV.
pub(super) fn is_ogg_path(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".part").unwrap_or(name);
    name.ends_with(".opus")
}
