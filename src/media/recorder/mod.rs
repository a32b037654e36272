//! Call recording: one stereo file per call (WAV, or Ogg Opus), kept true
//! to wall-clock time and safe against crashes.
//!
//! Requirement (call recording issue): "one stereo WAV per call (caller
//! left, agent/other party right; 8 kHz 16-bit PCM via hound), aligned in
//! time through jitter, loss, hold and transfers (gaps filled with silence so
//! both channels keep wall-clock time). Writing happens off the packet path
//! (bounded queue to a writer; if the disk stalls, the call audio is never
//! delayed). A crash or `kill -9` leaves a playable file: the header is
//! patched at intervals and any unfinished file is repaired at the next
//! start. Path by tenant/date/call id; metadata (path, duration, bytes,
//! sha256) handed to the call for its events. Recording can be
//! paused/resumed for sensitive moments." (Retention is handled elsewhere.)
//!
//! # Formats (issue 16 item 3)
//!
//! `[recording] format` ([`RecordingFormat`], [`WriterOptions::format`]):
//! `pcm16` (the requirement's WAV, hound's header byte for byte, written
//! by `wav` without hound's buffer since issue 16 "Media at the limit"),
//! `alaw` (a WAV with
//! format tag 6, half the bytes: "wire-exact G.711 stereo WAV, no decode on
//! the hot path"; `wav`) and `opus` (Ogg Opus, about a tenth of PCM16 at
//! [`OPUS_BITRATE_BPS`]: the archive format; `opus` says why this one,
//! `ogg` frames its pages). The aligner and the writer's chunks carry the
//! recording's own kind of [`Sample`] (`sample`): linear PCM for `pcm16`
//! and `opus`, A-law bytes for `alaw` (an A-law leg's payloads placed as
//! they came and copied into the file, nothing decoded or encoded; a chunk
//! of the other kind is converted by the writer). The writer, repair,
//! sealing and [`describe_finished`] handle
//! every format: a WAV has its header sizes patched every header interval
//! and repaired to the whole frames on disk; an Ogg Opus file has a page
//! ended every header interval and is repaired by keeping its whole pages
//! (CRC checked) and marking the last one end-of-stream. Ogg Opus files are
//! `<call_id>.opus` ([`recording_path_as`]).
//!
//! The module has four parts:
//!
//! * [`ChannelAligner`] — a **pure core** (no clock, no I/O). The shell
//!   pushes each leg's samples (decoded PCM, or A-law bytes for an `alaw`
//!   recording) with its *media time* (position on the
//!   call's wall clock since recording started, from arrival time or the RTP
//!   timestamp; after a transfer or an SSRC change the shell re-anchors that
//!   mapping) and periodically drains stereo frames up to "now minus a
//!   jitter allowance". Both channels always advance together, so *N*
//!   seconds of call are *N* seconds of audio whatever each side sent:
//!   gaps (loss, hold, a side that sends nothing) are silence, samples for a
//!   span already drained are dropped and counted, overlapping samples
//!   overwrite.
//! * [`RecordingWriter`] — the **shell**: a small pool of writer threads
//!   (`pool`: one per core, at most four) serves every recording, each
//!   recording with its own bound on chunks in flight.
//!   [`RecordingHandle::try_send`] (linear PCM) and
//!   [`RecordingHandle::try_send_chunk`] (either kind) never block: when the bound is reached
//!   (disk stalled) the chunk is dropped and counted, so the call's audio is
//!   never delayed. A call's recording fills one chunk at a time
//!   ([`RecordingHandle::fill`], [`WriterOptions::write_every`]: 256 ms,
//!   4 KiB of A-law) and sends it once full: the chunk is the write
//!   buffer, written by the pool with one `write` straight to
//!   `<name>.wav.part` (no `BufWriter` per recording, issue 16 "Media at
//!   the limit"), and its buffer goes to the worker's free list for the
//!   next chunk of any recording. The pool patches the RIFF/data sizes
//!   every [`WriterOptions::header_interval`] of audio (one `pwrite` of
//!   the header), and on [`RecordingHandle::finish`] (the last partial
//!   chunk sent first) finalises the header, fsyncs, renames to
//!   `<name>.wav` and returns [`RecordingMeta`] (path, duration, bytes,
//!   SHA-256 of the final file, dropped chunks).
//! * [`repair_unfinished`] — run **at startup, before any writer starts**:
//!   every `*.wav.part` under a directory is an unfinished recording (a
//!   finished one is always renamed to `.wav` after its header is final and
//!   fsynced, so `.wav` files are never scanned or read). Repair sets the
//!   header sizes to the data actually on disk, rounded down to a whole
//!   frame, and renames it to `.wav`; an empty or header-truncated file (no
//!   audio at all) is deleted. Each file gets a [`RepairReport`].
//! * [`recording_path`] — `root/<tenant>/<yyyy>/<mm>/<dd>/<call_id>.wav`
//!   with every component sanitised (no `..`, separators, control or
//!   bidi-override characters; Chinese tenant names are kept as they are).
//!
//! # Choices
//!
//! * **Paused spans are written as silence**, not cut out: the file stays a
//!   faithful wall-clock record (its length is the call's length, and times
//!   quoted in complaints or quality reviews line up with the CDR), and the
//!   pause itself is visible as silence. The call's events should carry the
//!   pause/resume times.
//! * **Crash safety is against process death** (`kill -9`, panic, OOM
//!   kill): the data written reaches the OS page cache, and the header
//!   covers all but the last [`WriterOptions::header_interval`]; repair
//!   then recovers every chunk written: all but the chunk being filled
//!   (at most [`WriterOptions::write_every`]) and the aligner's jitter
//!   allowance and drain interval (≈ 0.3 s), about half a second in all.
//!   Power loss is covered only for finished files
//!   (fsynced before the rename); fsyncing every open recording every second
//!   would cost too much with hundreds of concurrent calls.
//! * A WAV data chunk is limited to 4 GiB (about 37 h of 8 kHz stereo);
//!   audio past that is dropped and counted.
//!
//! # Encryption at rest (issue 14 §6)
//!
//! With a key ([`WriterOptions::seal`], `[recording]
//! encryption_key_file`), the finished `.wav.part` is sealed into `.wav`
//! (see [`crate::media::at_rest`]) and the plaintext deleted; repair seals
//! what it repairs ([`repair_unfinished_with`]), and deletes a `.part`
//! whose sealed `.wav` is already complete and any `.wav.sealing` a crash
//! left. [`RecordingMeta::bytes`] and [`RecordingMeta::sha256`] always
//! describe the WAV itself (what a download delivers), sealed or not.
//! Plaintext exists only while the call is recorded (`.wav.part`) and
//! until it is sealed at its end.
//!
//! Files: `aligner` (the pure core), `sample` (its two kinds of sample and
//! the writer's chunks), `media_time` (sample index ↔ media time), `writer`
//! (the file and the handle, whose chunk is the write buffer), `pool` (the
//! writer threads, each with a free list of written chunks' buffers),
//! `repair` (unfinished files at startup), `path` (where a recording goes),
//! `kind` (the formats), `format` (the WAV spec, `.part` names, hashing),
//! `wav` (the PCM16 and A-law writer, the WAV header parser), `opus` (the Ogg Opus writer), `ogg` (Ogg pages), `encode` (a
//! format's bytes in memory), `seal` (sealing finished files) and `error`.

mod aligner;
mod encode;
mod error;
mod format;
mod kind;
mod media_time;
mod ogg;
mod opus;
mod path;
mod pool;
mod repair;
mod sample;
mod seal;
mod wav;
mod writer;

#[cfg(test)]
mod alaw_tests;
#[cfg(test)]
mod buffers_tests;
#[cfg(test)]
mod formats_tests;
#[cfg(test)]
mod seal_tests;
#[cfg(test)]
mod tests;

pub use aligner::{AlignerStats, Channel, ChannelAligner};
pub use encode::FormatEncoder;
pub use error::RecorderError;
pub use format::{content_type_of, RecordingFormat, CALL_WAV_SPEC, PART_SUFFIX};
pub use opus::{OpusSinkError, OPUS_BITRATE_BPS, OPUS_COMPLEXITY};
pub use path::{recording_path, recording_path_as};
pub use repair::{
    repair_unfinished, repair_unfinished_with, DeleteReason, RepairOutcome, RepairReport,
};
pub use sample::{Chunk, Sample};
pub use writer::{
    describe_finished, describe_finished_with, Backpressure, RecordingHandle, RecordingMeta,
    RecordingWriter, WriterOptions,
};
