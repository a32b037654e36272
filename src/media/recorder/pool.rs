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
//! A written chunk's buffer goes back to its worker's free list
//! ([`FreeList`]) for any of the worker's recordings to fill again, so a
//! recording's steady state allocates no chunk buffers (issue 16 item 3),
//! and a call holds only the chunk it is filling, not spares of its own
//! (issue 16 "Media at the limit": RSS growth ≤ 64 KiB per call). The
//! worker converts what needs converting (PCM16's bytes, another kind's
//! samples) in its own [`Scratch`], not one per recording.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

use super::error::RecorderError;
use super::sample::{Chunk, Sample};
use super::writer::{Filling, Scratch, WriterJob};

/// Most worker threads, whatever the core count.
pub(super) const MAX_WORKERS: usize = 4;

/// Written chunks' buffers a worker keeps for reuse, at most: chunks are
/// written as they come, so only the few in flight at a time come back
/// (after a stalled disk, the queued ones beyond this are freed).
pub(super) const MAX_FREE: usize = 16;

/// Samples a buffer kept for reuse may hold, at most (a second of 8 kHz
/// stereo; a recording's chunks are a quarter of that).
pub(super) const MAX_SPARE_SAMPLES: usize = 16_000;

/// Emptied buffers of written chunks, shared by a worker's recordings.
#[derive(Debug, Default)]
pub(super) struct FreeList {
    buffers: Mutex<Vec<Chunk>>,
}

impl FreeList {
    /// Keep a written chunk's buffer for reuse (unless enough are kept, it
    /// is too big, or another thread holds the lock: never waits).
    pub(super) fn give_back(&self, mut chunk: Chunk) {
        if chunk.capacity() > MAX_SPARE_SAMPLES || chunk.capacity() == 0 {
            return;
        }
        chunk.clear();
        if let Ok(mut buffers) = self.buffers.try_lock() {
            if buffers.len() < MAX_FREE {
                buffers.push(chunk);
            }
        }
    }

    /// An emptied buffer of kind `S`, if one is kept (never waits).
    pub(super) fn take<S: Sample>(&self) -> Option<Vec<S>> {
        let mut buffers = self.buffers.try_lock().ok()?;
        let at = buffers.iter().rposition(S::is_kind)?;
        S::from_chunk(buffers.swap_remove(at))
    }

    /// Buffers kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.buffers.lock().map(|b| b.len()).unwrap_or(0)
    }
}

/// What a recording's handle and its worker share.
#[derive(Debug)]
pub(super) struct Shared {
    /// Chunks sent and not yet written.
    pub(super) inflight: AtomicUsize,
    /// The worker's free list.
    pub(super) free: Arc<FreeList>,
    /// The chunk the handle is filling (only the handle locks it).
    pub(super) filling: Mutex<Filling>,
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
    workers: Vec<(Sender<Msg>, Arc<FreeList>)>,
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
            let free = Arc::new(FreeList::default());
            let theirs = free.clone();
            std::thread::Builder::new()
                .name(format!("recorder-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || work(rx, &theirs))
                .map_err(|e| format!("spawn recording writer thread: {e}"))?;
            workers.push((tx, free));
        }
        Ok(Pool {
            workers,
            next: AtomicUsize::new(0),
            ids: AtomicU64::new(1),
        })
    }

    /// Hand `job` to a worker: its id, the worker's queue and what the
    /// handle shares with the worker.
    pub(super) fn submit(
        &self,
        job: WriterJob,
        filling: Filling,
    ) -> Result<(u64, Sender<Msg>, Arc<Shared>), String> {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let worker = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let (tx, free) = &self.workers[worker];
        let shared = Arc::new(Shared {
            inflight: AtomicUsize::new(0),
            free: free.clone(),
            filling: Mutex::new(filling),
        });
        tx.send(Msg::Start(id, Box::new(job), shared.clone()))
            .map_err(|_| "the recording writer thread has stopped".to_string())?;
        Ok((id, tx.clone(), shared))
    }
}

/// One recording as its worker holds it.
struct Slot {
    job: Box<WriterJob>,
    shared: Arc<Shared>,
    failed: Option<RecorderError>,
}

/// A worker: every message in order, until the pool's senders are gone.
fn work(rx: Receiver<Msg>, free: &FreeList) {
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    let mut scratch = Scratch::default();
    while let Ok(msg) = rx.recv() {
        handle(&mut slots, &mut scratch, free, msg);
    }
}

fn handle(slots: &mut HashMap<u64, Slot>, scratch: &mut Scratch, free: &FreeList, msg: Msg) {
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
                free.give_back(chunk);
                return;
            }
            let written = catch_unwind(AssertUnwindSafe(|| slot.job.write_chunk(&chunk, scratch)));
            free.give_back(chunk);
            scratch.trim();
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
