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

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, OnceLock};

use super::error::RecorderError;
use super::writer::WriterJob;

/// Most worker threads, whatever the core count.
pub(super) const MAX_WORKERS: usize = 4;

/// What a finished recording hands back to the thread that finishes it:
/// the job (file still open, its frames and dropped chunks counted).
pub(super) type Finished = Result<Box<WriterJob>, RecorderError>;

/// A message to a worker.
pub(super) enum Msg {
    /// A new recording `id`, with its in-flight counter.
    Start(u64, Box<WriterJob>, Arc<AtomicUsize>),
    /// Interleaved samples of recording `id`.
    Chunk(u64, Vec<i16>),
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
        inflight: Arc<AtomicUsize>,
    ) -> Result<(u64, Sender<Msg>), String> {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let worker = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let tx = self.workers[worker].clone();
        tx.send(Msg::Start(id, Box::new(job), inflight))
            .map_err(|_| "the recording writer thread has stopped".to_string())?;
        Ok((id, tx))
    }
}

/// One recording as its worker holds it.
struct Slot {
    job: Box<WriterJob>,
    inflight: Arc<AtomicUsize>,
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
        Msg::Start(id, job, inflight) => {
            slots.insert(
                id,
                Slot {
                    job,
                    inflight,
                    failed: None,
                },
            );
        }
        Msg::Chunk(id, samples) => {
            let Some(slot) = slots.get_mut(&id) else {
                return;
            };
            slot.inflight.fetch_sub(1, Ordering::AcqRel);
            if slot.failed.is_some() {
                slot.job.overflow += 1;
                return;
            }
            let written = catch_unwind(AssertUnwindSafe(|| slot.job.write_chunk(&samples)));
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
