//! The recorders' writer pool (issue 16 item 2): a few threads, one per
//! core up to [`MAX_WORKERS`], write every recording's chunks, instead of
//! one thread per recording woken ten times a second per call. Each
//! recording belongs to one worker (round robin at its start), so its
//! chunks stay in order; each keeps its own bound on chunks in flight
//! ([`WriterOptions::queue_chunks`](super::WriterOptions)), so a call
//! whose chunks pile up loses its own audio, never blocks anyone's.
//!
//! A worker only writes: a recording's finishing (the header, fsync,
//! rename or sealing, hashing) runs on the thread that calls
//! [`RecordingHandle::finish`](super::RecordingHandle::finish), so a long
//! recording's hash never holds up other calls' writes. A panic while
//! handling one recording fails that recording only.
//!
//! A written chunk's buffer goes back to its recording ([`Shared`]) for
//! the next drain to fill, so a recording's steady state allocates no
//! chunk buffers (issue 16 item 3).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

use super::error::RecorderError;
use super::sample::Chunk;
use super::writer::WriterJob;

/// Most worker threads, whatever the core count.
pub(super) const MAX_WORKERS: usize = 4;

/// Written chunks' buffers a recording keeps for reuse, at most: with a
/// drain every 100 ms and a worker that keeps up, one is in use at a time.
const MAX_SPARES: usize = 4;

/// Samples in a chunk whose buffer is kept for reuse, at most (a second of
/// 8 kHz stereo; a recording's drains are a tenth of that).
const MAX_SPARE_SAMPLES: usize = 16_000;

/// What a recording's handle and its worker share.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Chunks sent and not yet written.
    pub(super) inflight: AtomicUsize,
    /// Buffers of written chunks, emptied, for the handle to fill again.
    spares: Mutex<Vec<Chunk>>,
}

impl Shared {
    /// Keep a written chunk's buffer for reuse (unless enough are kept, or
    /// the handle holds the lock: never waits).
    fn give_back(&self, mut chunk: Chunk) {
        if chunk.len() > MAX_SPARE_SAMPLES {
            return;
        }
        chunk.clear();
        if let Ok(mut spares) = self.spares.try_lock() {
            if spares.len() < MAX_SPARES {
                spares.push(chunk);
            }
        }
    }

    /// A written chunk's buffer, emptied, if one is kept (never waits).
    pub(super) fn take_spare(&self) -> Option<Chunk> {
        self.spares.try_lock().ok()?.pop()
    }
}

/// What a finished recording hands back to the thread that finishes it:
/// the job (file still open, its frames and dropped chunks counted).
pub(super) type Finished = Result<Box<WriterJob>, RecorderError>;

/// A message to a worker.
pub(super) enum Msg {
    /// A new recording `id`, with what its handle shares.
    Start(u64, Box<WriterJob>, Arc<Shared>),
    /// Interleaved samples of recording `id`.
    Chunk(u64, Chunk),
    /// Hand recording `id` back for finishing.
    Finish(u64, SyncSender<Finished>),
    /// The handle was dropped without `finish`: finish it here.
    Abandon(u64),
    /// Test hook: acknowledge once everything queued before is written.
    #[cfg(test)]
    Barrier(SyncSender<()>),
    /// Test hook: block the worker (a hung disk) until `release` closes.
    #[cfg(test)]
    Stall {
        stalled: SyncSender<()>,
        release: Receiver<()>,
    },
    /// Test hook: recording `id` dies as under `kill -9` (its buffered
    /// bytes lost, its `.part` left).
    #[cfg(test)]
    Crash(u64, SyncSender<()>),
}

/// The process's writer pool.
pub(super) struct Pool {
    workers: Vec<Sender<Msg>>,
    next: AtomicUsize,
    ids: AtomicU64,
}

static POOL: OnceLock<Result<Pool, String>> = OnceLock::new();

/// The pool, started at the first recording.
pub(super) fn pool() -> Result<&'static Pool, String> {
    POOL.get_or_init(Pool::start).as_ref().map_err(Clone::clone)
}

impl Pool {
    fn start() -> Result<Pool, String> {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, MAX_WORKERS);
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name(format!("recorder-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || work(rx))
                .map_err(|e| format!("spawn recording writer thread: {e}"))?;
            workers.push(tx);
        }
        Ok(Pool {
            workers,
            next: AtomicUsize::new(0),
            ids: AtomicU64::new(1),
        })
    }

    /// Hand `job` to a worker: its id and the worker's queue.
    pub(super) fn submit(
        &self,
        job: WriterJob,
        shared: Arc<Shared>,
    ) -> Result<(u64, Sender<Msg>), String> {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let worker = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let tx = self.workers[worker].clone();
        tx.send(Msg::Start(id, Box::new(job), shared))
            .map_err(|_| "the recording writer thread has stopped".to_string())?;
        Ok((id, tx))
    }
}

/// One recording as its worker holds it.
struct Slot {
    job: Box<WriterJob>,
    shared: Arc<Shared>,
    failed: Option<RecorderError>,
}

/// A worker: every message in order, until the pool's senders are gone.
fn work(rx: Receiver<Msg>) {
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    while let Ok(msg) = rx.recv() {
        handle(&mut slots, msg);
    }
}

fn handle(slots: &mut HashMap<u64, Slot>, msg: Msg) {
    match msg {
        Msg::Start(id, job, shared) => {
            slots.insert(
                id,
                Slot {
                    job,
                    shared,
                    failed: None,
                },
            );
        }
        Msg::Chunk(id, chunk) => {
            let Some(slot) = slots.get_mut(&id) else {
                return;
            };
            slot.shared.inflight.fetch_sub(1, Ordering::AcqRel);
            if slot.failed.is_some() {
                slot.job.overflow += 1;
                return;
            }
            let written = catch_unwind(AssertUnwindSafe(|| slot.job.write_chunk(&chunk)));
            slot.shared.give_back(chunk);
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(path = %slot.job.part().display(), error = %e, "recording write failed; recording stopped");
                    slot.failed = Some(e);
                }
                Err(_) => {
                    tracing::error!(path = %slot.job.part().display(), "recording writer panicked; recording stopped");
                    slot.failed = Some(RecorderError::WriterPanicked {
                        path: slot.job.path().to_path_buf(),
                    });
                }
            }
        }
        Msg::Finish(id, reply) => {
            let Some(slot) = slots.remove(&id) else {
                return;
            };
            let done = match slot.failed {
                Some(e) => Err(e),
                None => Ok(slot.job),
            };
            reply.send(done).ok();
        }
        Msg::Abandon(id) => {
            let Some(slot) = slots.remove(&id) else {
                return;
            };
            if slot.failed.is_none() {
                let path = slot.job.path().to_path_buf();
                let completed = catch_unwind(AssertUnwindSafe(|| slot.job.complete()));
                match completed {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(path = %path.display(), error = %e, "finishing an abandoned recording failed")
                    }
                    Err(_) => {
                        tracing::error!(path = %path.display(), "finishing an abandoned recording panicked")
                    }
                }
            }
        }
        #[cfg(test)]
        Msg::Barrier(ack) => {
            ack.send(()).ok();
        }
        #[cfg(test)]
        Msg::Stall { stalled, release } => {
            stalled.send(()).ok();
            release.recv().ok();
        }
        #[cfg(test)]
        Msg::Crash(id, ack) => {
            if let Some(slot) = slots.remove(&id) {
                slot.job.crash();
            }
            ack.send(()).ok();
        }
    }
}
