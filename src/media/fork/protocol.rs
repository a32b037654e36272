//! The audio-fork wire protocol (issue 18 §1 "Live audio fork"), pure:
//! what hotline sends a receiver over one WebSocket and what it reads
//! back. Documented, with a JSON Schema, in docs/integrations.md
//! "Live audio fork".
//!
//! - a `start` text message first (the call's metadata and the format);
//! - binary messages, one per 20 ms frame: a 12-byte header (`"HLAF"`,
//!   the frame's sequence number, its media timestamp in samples, all
//!   little-endian) and the frame's interleaved PCM16LE samples;
//! - a `stop` text message last (frames sent, frames dropped).
//!
//! The receiver may send text messages back (a transcript, an intent):
//! a JSON object with a string `type`, at most [`MAX_RESULT_BYTES`].

use serde::Serialize;
use serde_json::Value;

/// The first four bytes of every binary frame.
pub const MAGIC: [u8; 4] = *b"HLAF";

/// Bytes before a frame's samples: magic, sequence number, timestamp.
pub const HEADER_BYTES: usize = 12;

/// Samples per second per channel.
pub const SAMPLE_RATE: u32 = 8000;

/// One frame's length.
pub const FRAME_MS: u32 = 20;

/// Samples per channel in one frame.
pub const FRAME_SAMPLES: usize = (SAMPLE_RATE * FRAME_MS / 1000) as usize;

/// The largest result message a receiver may send back.
pub const MAX_RESULT_BYTES: usize = 16 * 1024;

/// Who is heard on which channel: the caller left (channel 0), the other
/// side (the agent) right (channel 1). A fork of the caller alone (an IVR
/// bot) would name one track.
pub const STEREO_TRACKS: [&str; 2] = ["caller", "agent"];

/// The call a fork streams, as its `start` message names it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CallMeta {
    /// The call's id (as in its events).
    pub call_id: String,
    /// The tenant.
    pub tenant: String,
    /// The caller's number.
    pub caller: String,
    /// The number called.
    pub called: String,
    /// The agent talking with the caller when the fork started.
    pub agent: Option<String>,
}

/// The audio's format, as the `start` message states it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Format {
    /// Always `pcm16le`.
    pub encoding: &'static str,
    /// Samples per second per channel (8000).
    pub sample_rate: u32,
    /// Channels interleaved in a frame.
    pub channels: u16,
    /// Milliseconds per frame (20).
    pub frame_ms: u32,
    /// What each channel carries, in order.
    pub tracks: Vec<&'static str>,
}

impl Format {
    /// Caller left, agent right.
    pub fn stereo() -> Self {
        Self {
            encoding: "pcm16le",
            sample_rate: SAMPLE_RATE,
            channels: 2,
            frame_ms: FRAME_MS,
            tracks: STEREO_TRACKS.to_vec(),
        }
    }
}

/// The first message of a connection (and of each reconnection).
pub fn start_message(call: &CallMeta, format: &Format, fork_id: &str, sequence: u32) -> String {
    serde_json::json!({
        "type": "start",
        "version": 1,
        "fork_id": fork_id,
        "call": call,
        "format": format,
        "sequence": sequence,
    })
    .to_string()
}

/// The last message: `reason` is `call_ended` or `stopped`.
pub fn stop_message(fork_id: &str, reason: &str, sent: u64, dropped: u64) -> String {
    serde_json::json!({
        "type": "stop",
        "fork_id": fork_id,
        "reason": reason,
        "frames_sent": sent,
        "frames_dropped": dropped,
    })
    .to_string()
}

/// One binary frame: header, then `samples` (interleaved) as PCM16LE,
/// written into `out` (cleared first).
pub fn encode_frame(sequence: u32, timestamp: u32, samples: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(HEADER_BYTES + samples.len() * 2);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

/// A binary frame read back (receivers, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFrame {
    /// Frames since the fork started, from 0, one per frame made (a gap
    /// is a frame dropped).
    pub sequence: u32,
    /// Media time of the frame's first sample, in samples since the fork
    /// started (advances [`FRAME_SAMPLES`] per frame).
    pub timestamp: u32,
    /// Interleaved samples.
    pub samples: Vec<i16>,
}

/// What is wrong with a binary frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the header, or an odd number of sample bytes.
    #[error("audio-fork frame of {0} bytes: need a 12-byte header and whole 16-bit samples")]
    Length(usize),
    /// The first four bytes are not `HLAF`.
    #[error("audio-fork frame does not start with \"HLAF\"")]
    Magic,
}

/// Read a binary frame.
pub fn decode_frame(bytes: &[u8]) -> Result<DecodedFrame, FrameError> {
    if bytes.len() < HEADER_BYTES || !(bytes.len() - HEADER_BYTES).is_multiple_of(2) {
        return Err(FrameError::Length(bytes.len()));
    }
    if bytes[..4] != MAGIC {
        return Err(FrameError::Magic);
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Ok(DecodedFrame {
        sequence: word(4),
        timestamp: word(8),
        samples: bytes[HEADER_BYTES..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    })
}

/// What is wrong with a receiver's result message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResultError {
    /// Over [`MAX_RESULT_BYTES`].
    #[error("audio-fork result of {0} bytes is over the 16 KiB allowed")]
    TooLarge(usize),
    /// Not JSON, not an object, or no string `type`.
    #[error("audio-fork result is not a JSON object with a string \"type\"")]
    Shape,
}

/// A receiver's text message, checked: a JSON object with a string `type`.
pub fn parse_result(text: &str) -> Result<Value, ResultError> {
    if text.len() > MAX_RESULT_BYTES {
        return Err(ResultError::TooLarge(text.len()));
    }
    let v: Value = serde_json::from_str(text).map_err(|_| ResultError::Shape)?;
    match v.get("type") {
        Some(Value::String(_)) if v.is_object() => Ok(v),
        _ => Err(ResultError::Shape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_as_written() {
        let samples: Vec<i16> = (0..2 * FRAME_SAMPLES as i16)
            .map(|i| i * 100 - 9000)
            .collect();
        let mut out = Vec::new();
        encode_frame(7, 7 * 160, &samples, &mut out);
        assert_eq!(out.len(), HEADER_BYTES + 4 * FRAME_SAMPLES);
        assert_eq!(&out[..4], b"HLAF");
        let back = decode_frame(&out).expect("frame");
        assert_eq!((back.sequence, back.timestamp), (7, 1120));
        assert_eq!(back.samples, samples);
    }

    #[test]
    fn a_short_or_foreign_frame_is_refused() {
        assert_eq!(decode_frame(b"HLAF1234"), Err(FrameError::Length(8)));
        assert_eq!(decode_frame(b"HLAF12345678x"), Err(FrameError::Length(13)));
        assert_eq!(decode_frame(b"RIFF12345678"), Err(FrameError::Magic));
    }

    #[test]
    fn start_and_stop_name_the_call_and_the_counts() {
        let call = CallMeta {
            call_id: "c1".into(),
            tenant: "city".into(),
            caller: "13800000000".into(),
            called: "12345".into(),
            agent: Some("1001".into()),
        };
        let start: Value =
            serde_json::from_str(&start_message(&call, &Format::stereo(), "f1", 0)).expect("json");
        assert_eq!(start["type"], "start");
        assert_eq!(start["call"]["agent"], "1001");
        assert_eq!(start["format"]["encoding"], "pcm16le");
        assert_eq!(start["format"]["channels"], 2);
        assert_eq!(start["format"]["tracks"][1], "agent");
        let stop: Value =
            serde_json::from_str(&stop_message("f1", "call_ended", 50, 3)).expect("json");
        assert_eq!(
            (
                stop["frames_sent"].as_u64(),
                stop["frames_dropped"].as_u64()
            ),
            (Some(50), Some(3))
        );
    }

    #[test]
    fn results_must_be_small_typed_objects() {
        assert!(parse_result(r#"{"type":"transcript","text":"你好"}"#).is_ok());
        assert_eq!(parse_result("hello"), Err(ResultError::Shape));
        assert_eq!(parse_result(r#"{"text":"x"}"#), Err(ResultError::Shape));
        assert_eq!(parse_result(r#"["type"]"#), Err(ResultError::Shape));
        let big = format!(
            r#"{{"type":"t","text":"{}"}}"#,
            "x".repeat(MAX_RESULT_BYTES)
        );
        assert!(matches!(parse_result(&big), Err(ResultError::TooLarge(_))));
    }
}
