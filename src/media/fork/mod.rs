//! Live audio fork (issue 18 §1): a call's audio streamed in real time
//! to a WebSocket receiver (a transcriber, a quality bot), in the shape
//! users of Twilio Media Streams, FreeSWITCH `mod_audio_fork` or Asterisk
//! AudioSocket expect: a `start` message with the call's metadata, 20 ms
//! frames of 8 kHz PCM16 (caller left, agent right), a `stop` message
//! (`protocol`, documented in docs/integrations.md "Live audio fork").
//!
//! The tap (`tap`) sits where the call's recording drains its aligned
//! stereo frames on the media worker (`media::relay::recording`), so the
//! fork never touches the per-packet path; it offers each frame to a
//! bounded queue and never waits. The sender (`sink`) is one tokio task
//! per fork: reconnects with backoff, results sent back by the receiver
//! handed to a hook (the switch forwards them to the agent's live
//! WebSocket). Nothing here ties the fork to the agent conversation: the
//! protocol names its tracks, and a tap may be fed by any media mode.

pub mod protocol;
pub mod sink;
pub mod tap;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

pub use protocol::CallMeta;
pub use tap::ForkTap;

/// Forks running (their sender task alive), over the process.
static FORKS_ACTIVE: AtomicI64 = AtomicI64::new(0);
/// Forks started since the process started.
static FORKS_STARTED: AtomicU64 = AtomicU64::new(0);
/// Forks whose receiver was given up on (unreachable after the retries).
static FORKS_ABANDONED: AtomicU64 = AtomicU64::new(0);
/// Frames sent to receivers.
static FRAMES_SENT: AtomicU64 = AtomicU64::new(0);
/// Frames dropped (queue full, receiver slow or gone).
static FRAMES_DROPPED: AtomicU64 = AtomicU64::new(0);
/// Reconnection attempts.
static RECONNECTS: AtomicU64 = AtomicU64::new(0);
/// Results received from receivers.
static RESULTS: AtomicU64 = AtomicU64::new(0);

/// The process's audio-fork figures (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForkStats {
    /// Forks running now.
    pub active: i64,
    /// Forks started.
    pub started: u64,
    /// Forks given up on.
    pub abandoned: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames dropped.
    pub frames_dropped: u64,
    /// Reconnection attempts.
    pub reconnects: u64,
    /// Results received.
    pub results: u64,
}

/// The figures now.
pub fn stats() -> ForkStats {
    ForkStats {
        active: FORKS_ACTIVE.load(Ordering::Relaxed),
        started: FORKS_STARTED.load(Ordering::Relaxed),
        abandoned: FORKS_ABANDONED.load(Ordering::Relaxed),
        frames_sent: FRAMES_SENT.load(Ordering::Relaxed),
        frames_dropped: FRAMES_DROPPED.load(Ordering::Relaxed),
        reconnects: RECONNECTS.load(Ordering::Relaxed),
        results: RESULTS.load(Ordering::Relaxed),
    }
}

/// One fork's counts, shared by its tap and its sender.
#[derive(Debug, Default)]
pub struct ForkCounts {
    /// Frames sent.
    pub sent: AtomicU64,
    /// Frames dropped.
    pub dropped: AtomicU64,
    /// The sequence number after the last frame taken from the queue.
    pub last_sequence: AtomicU64,
}

/// Where a receiver's results go: the call they came for and the result
/// (a JSON object with a string `type`).
pub type ResultHook = Arc<dyn Fn(&CallMeta, serde_json::Value) + Send + Sync>;

/// Where and how a fork sends.
#[derive(Clone)]
pub struct ForkTarget {
    /// `ws://host:port/path`.
    pub url: String,
    /// Frames the queue holds before the tap drops (50 = 1 s).
    pub queue_frames: usize,
    /// Failed connection attempts in a row before the fork gives up.
    pub max_attempts: u32,
    /// Results sent back by the receiver.
    pub results: Option<ResultHook>,
}

impl std::fmt::Debug for ForkTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForkTarget")
            .field("url", &self.url)
            .field("queue_frames", &self.queue_frames)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// Start a fork of `call` to `target` on the current tokio runtime: the
/// tap to feed (dropping it ends the fork with `stop`).
pub fn start(target: &ForkTarget, call: CallMeta) -> ForkTap {
    let (tx, rx) = tokio::sync::mpsc::channel(target.queue_frames.max(1));
    let counts = Arc::new(ForkCounts::default());
    let n = FORKS_STARTED.fetch_add(1, Ordering::Relaxed);
    let sink = sink::Sink {
        url: target.url.clone(),
        fork_id: format!("{}-{n}", call.call_id),
        call,
        frames: rx,
        counts: counts.clone(),
        results: target.results.clone(),
        max_attempts: target.max_attempts,
    };
    FORKS_ACTIVE.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        sink.run().await;
        FORKS_ACTIVE.fetch_sub(1, Ordering::Relaxed);
    });
    ForkTap::new(tx, counts)
}
