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

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
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

/// One fork's counts and switch, shared by its tap, its sender and the
/// API that starts and stops it.
#[derive(Debug, Default)]
pub struct ForkCounts {
    /// Frames sent.
    pub sent: AtomicU64,
    /// Frames dropped.
    pub dropped: AtomicU64,
    /// The sequence number after the last frame taken from the queue.
    pub last_sequence: AtomicU64,
    /// Streaming (`true`) or stopped: a stopped fork makes no frames to
    /// send (their sequence numbers still pass, so timestamps stay media
    /// time) and holds no connection.
    pub on: AtomicBool,
    /// Told when `on` changes.
    changed: tokio::sync::Notify,
}

impl ForkCounts {
    /// Counts of a fork that streams (`on`) or waits to be started.
    pub fn new(on: bool) -> Self {
        Self {
            on: AtomicBool::new(on),
            ..Self::default()
        }
    }

    /// Start or stop streaming; the previous state.
    pub fn switch(&self, on: bool) -> bool {
        let was = self.on.swap(on, Ordering::Relaxed);
        if was != on {
            self.changed.notify_one();
        }
        was
    }

    fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }
}

/// The forks of calls in progress by the SIP user of the agent's phone
/// that answered (the API starts and stops the agent's current call's).
#[derive(Debug, Default)]
pub struct Forks {
    by_device: dashmap::DashMap<String, Arc<ForkCounts>>,
}

impl Forks {
    /// Start (`on`) or stop the fork of the call on `device`'s phone: its
    /// previous state, or `None` when that call has no fork.
    pub fn switch(&self, device: &str, on: bool) -> Option<bool> {
        let counts = self.by_device.get(device)?.value().clone();
        Some(counts.switch(on))
    }

    /// Forks of calls in progress.
    pub fn len(&self) -> usize {
        self.by_device.len()
    }

    /// No call has a fork.
    pub fn is_empty(&self) -> bool {
        self.by_device.is_empty()
    }
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
    /// Every call streams from its start (`true`), or only once started
    /// through the API.
    pub auto: bool,
    /// Results sent back by the receiver.
    pub results: Option<ResultHook>,
}

impl std::fmt::Debug for ForkTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForkTarget")
            .field("url", &self.url)
            .field("queue_frames", &self.queue_frames)
            .field("max_attempts", &self.max_attempts)
            .field("auto", &self.auto)
            .finish()
    }
}

/// Start a fork of `call` to `target` on the current tokio runtime: the
/// tap to feed (dropping it ends the fork with `stop`). With `registry`,
/// the fork is known there by the agent's phone (`device`) while it runs.
pub fn start(
    target: &ForkTarget,
    call: CallMeta,
    registry: Option<(Arc<Forks>, String)>,
) -> ForkTap {
    let (tx, rx) = tokio::sync::mpsc::channel(target.queue_frames.max(1));
    let counts = Arc::new(ForkCounts::new(target.auto));
    if let Some((forks, device)) = &registry {
        forks.by_device.insert(device.clone(), counts.clone());
    }
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
    let mine = counts.clone();
    tokio::spawn(async move {
        sink.run().await;
        FORKS_ACTIVE.fetch_sub(1, Ordering::Relaxed);
        if let Some((forks, device)) = registry {
            forks
                .by_device
                .remove_if(&device, |_, c| Arc::ptr_eq(c, &mine));
        }
    });
    ForkTap::new(tx, counts)
}
