//! Shared media IO (issue 16 item 1): a few worker threads, one per core
//! up to [`MAX_WORKERS`], serve every connected call's RTP and RTCP
//! sockets, instead of a tokio task per call woken once per packet.
//!
//! Each worker polls its calls' sockets (mio: epoll, edge-triggered) and
//! reads every ready socket in batches (quinn-udp: `recvmmsg`, GRO): one
//! system call reads all that waits, and a short batch proves the socket
//! empty, so there is no second, empty read per packet as with tokio's
//! readiness model, no futex and no task switch per packet. Optionally a
//! worker that has just read something sleeps a moment (`coalesce`,
//! `[media] io_coalesce_us`, off by default: 1 ms measured no gain on a
//! saturated 2-core box, BENCHMARKS.md) before it polls again, so one
//! wake-up serves many calls' packets; that adds at most that much delay
//! to a packet. Timers are the
//! worker's, not the call's: one 20 ms tick per worker drives every call's
//! pacing (music on hold, the mix), recording drain, RTCP reports and
//! silence check.
//!
//! A call's media is a [`MediaTask`]: sans-IO state that is told about
//! datagrams, commands and ticks, and sends through its
//! [`PortPair`](crate::media::ports::PortPair)s without waiting (UDP: a
//! datagram the kernel cannot take is dropped, as the network would). The
//! task lives on one worker for its whole life (its packets stay in
//! order); new tasks go to the worker with the fewest. Commands reach it
//! through the worker's queue, in order, with an eventfd wake-up.
//!
//! Why not tokio: tokio cannot tell one task which of many sockets is
//! ready, so serving many calls from one task would mean polling every
//! socket; and a task per call costs a wake-up and an empty read per
//! packet (BENCHMARKS.md, "Where the time goes"). Why not io_uring: it is
//! not available under every container's seccomp profile; the batched
//! reads take most of its gain here.

mod pressure;
mod worker;

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::ports::{Channel, PortPair};

pub use pressure::Pressure;
pub use worker::Registrar;

/// Most IO workers, whatever the core count.
pub const MAX_WORKERS: usize = 8;

/// The pacing tick every worker drives its tasks with (one G.711 frame).
pub const TICK: Duration = Duration::from_millis(20);

/// The longest a worker lets datagrams gather (a quarter of a frame).
pub const MAX_COALESCE: Duration = Duration::from_millis(5);

/// What a task tells its worker after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving the task.
    Continue,
    /// The task is over: drop it (it stopped watching its ports).
    Done,
}

/// A call's media as the IO workers serve it: sans-IO state told about
/// what happens, sending through its ports without waiting.
pub trait MediaTask: Send + 'static {
    /// What its handle sends it.
    type Command: Send + 'static;

    /// Watch its ports: called once when a worker adopts the task.
    fn watch(&mut self, registrar: &mut Registrar<'_>);

    /// The ports behind `tag` (as given to [`Registrar::watch`]).
    fn port(&self, tag: u16) -> Option<&PortPair>;

    /// A datagram arrived on `tag`'s `channel` from `from` (already opened:
    /// SRTP decrypted and authenticated on a keyed leg).
    fn on_datagram(
        &mut self,
        tag: u16,
        channel: Channel,
        datagram: &mut [u8],
        from: SocketAddr,
        now: Instant,
    );

    /// A command from the task's handle.
    fn on_command(
        &mut self,
        command: Self::Command,
        now: Instant,
        registrar: &mut Registrar<'_>,
    ) -> Flow;

    /// The worker's tick (every [`TICK`], or later under load).
    fn on_tick(&mut self, now: Instant);

    /// The handle is gone without a last command: stop watching every
    /// port the task keeps alive beyond itself (its drop closes the rest).
    fn abandon(&mut self, registrar: &mut Registrar<'_>);
}

/// A message to a worker.
pub(crate) enum Job<T: MediaTask> {
    /// Serve a new task under this id.
    Adopt(u64, Box<T>),
    /// A command for task `id`.
    Command(u64, T::Command),
    /// Task `id`'s handle dropped.
    Abandon(u64),
}

/// One worker as the handles see it.
pub(crate) struct WorkerRef<T: MediaTask> {
    jobs: Sender<Job<T>>,
    waker: mio::Waker,
    /// Tasks it serves (the worker counts them down).
    load: Arc<AtomicUsize>,
    /// How hard it worked in its last window.
    pressure: Arc<pressure::Published>,
}

impl<T: MediaTask> WorkerRef<T> {
    fn send(&self, job: Job<T>) -> bool {
        if self.jobs.send(job).is_err() {
            return false;
        }
        // A lost wake-up would only delay the job to the next tick.
        let _ = self.waker.wake();
        true
    }
}

/// A pool of IO workers serving tasks of one kind.
pub struct MediaIo<T: MediaTask> {
    workers: Vec<Arc<WorkerRef<T>>>,
    ids: AtomicU64,
}

/// A running task's handle: sends it commands; dropping it ends the task.
pub struct TaskHandle<T: MediaTask> {
    worker: Arc<WorkerRef<T>>,
    id: u64,
    done: bool,
    _task: PhantomData<fn(T)>,
}

impl<T: MediaTask> TaskHandle<T> {
    /// Send the task a command; `false` when its worker is gone.
    pub fn send(&self, command: T::Command) -> bool {
        self.worker.send(Job::Command(self.id, command))
    }

    /// The command just sent was the task's last (it answers and ends):
    /// dropping the handle sends nothing more.
    pub fn finished(mut self) {
        self.done = true;
    }
}

impl<T: MediaTask> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        if !self.done {
            self.worker.send(Job::Abandon(self.id));
        }
    }
}

impl<T: MediaTask> MediaIo<T> {
    /// Start `workers` worker threads (at least one, at most
    /// [`MAX_WORKERS`]) named `name-N`, each letting datagrams gather for
    /// `coalesce` after a pass that read some (at most [`MAX_COALESCE`]).
    ///
    /// # Errors
    /// The poll or a thread could not be created.
    pub fn start(name: &str, workers: usize, coalesce: Duration) -> std::io::Result<Self> {
        let count = workers.clamp(1, MAX_WORKERS);
        let coalesce = coalesce.min(MAX_COALESCE);
        let mut refs = Vec::with_capacity(count);
        for i in 0..count {
            refs.push(Arc::new(worker::spawn::<T>(
                &format!("{name}-{i}"),
                coalesce,
            )?));
        }
        Ok(Self {
            workers: refs,
            ids: AtomicU64::new(1),
        })
    }

    /// Workers running.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Tasks served now, over all workers.
    pub fn tasks(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.load.load(Ordering::Relaxed))
            .sum()
    }

    /// The busiest worker's figures over its last window (see
    /// [`Pressure::overloaded`]).
    pub fn pressure(&self) -> Pressure {
        self.workers
            .iter()
            .map(|w| w.pressure.get())
            .fold(Pressure::default(), Pressure::max)
    }

    /// Serve `task` on the worker with the fewest tasks.
    pub fn adopt(&self, task: T) -> TaskHandle<T> {
        let worker = self
            .workers
            .iter()
            .min_by_key(|w| w.load.load(Ordering::Relaxed))
            .cloned()
            .unwrap_or_else(|| self.workers[0].clone());
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        worker.load.fetch_add(1, Ordering::Relaxed);
        let done = !worker.send(Job::Adopt(id, Box::new(task)));
        if done {
            worker.load.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("a media IO worker is gone: the call's media is not served");
        }
        TaskHandle {
            worker,
            id,
            done,
            _task: PhantomData,
        }
    }
}

/// Workers for a process: one per core, at most [`MAX_WORKERS`].
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_WORKERS)
}

#[cfg(test)]
mod tests;
