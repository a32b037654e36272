//! One IO worker thread (see the module docs of [`super`]): a poll over
//! its tasks' sockets, a job queue with an eventfd wake-up, and the tick.
//!
//! A socket's token is its task's slot, the tag the task gave its ports
//! and the channel (RTP or RTCP). A ready socket is read in batches until
//! a batch comes back short (the socket is empty: edge-triggered readiness
//! fires again at the next datagram), or at most [`MAX_BATCHES`] batches,
//! so one flooded socket cannot starve the others; what it left waits for
//! its next datagram. A task that panics is dropped (its call loses its
//! media, logged), never the worker and its other calls.

use std::collections::HashMap;
use std::io::{ErrorKind, IoSliceMut};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use quinn_udp::RecvMeta;
use tokio::time::Instant;

use super::pressure::{thread_cpu, Published, Window};
use super::{Flow, Job, MediaTask, WorkerRef, TICK};
use crate::media::ports::{Channel, PortPair};

/// Datagrams read per system call.
pub(super) const BATCH: usize = 8;
/// Room per datagram (with GRO a buffer may hold several).
const BUF: usize = 2048;
/// Batches read from one ready socket before the worker moves on.
const MAX_BATCHES: usize = 16;
/// The waker's token.
const WAKE: Token = Token(usize::MAX);
/// Commands carried out in one pass at most (the tick runs between them
/// when due), and the time a pass may spend on them. A stream of commands
/// never starves the reads: the rest wait for the next pass, which does
/// not sleep. Commands take microseconds; the time bound is only met by a
/// worker already far behind.
const JOBS_PER_PASS: usize = 256;
const JOBS_TIME_PER_PASS: Duration = Duration::from_millis(100);

/// Token layout: slot, then the tag (16 bits), then the channel (1 bit).
fn token(slot: usize, tag: u16, channel: Channel) -> Token {
    let c = match channel {
        Channel::Rtp => 0,
        Channel::Rtcp => 1,
    };
    Token((slot << 17) | (usize::from(tag) << 1) | c)
}

fn untoken(t: Token) -> (usize, u16, Channel) {
    let channel = if t.0 & 1 == 0 {
        Channel::Rtp
    } else {
        Channel::Rtcp
    };
    (t.0 >> 17, ((t.0 >> 1) & 0xffff) as u16, channel)
}

/// Registers a task's ports with its worker's poll.
pub struct Registrar<'a> {
    registry: &'a mio::Registry,
    slot: usize,
}

impl Registrar<'_> {
    /// Read `pair`'s RTP and RTCP sockets for the task, as `tag`.
    pub fn watch(&mut self, tag: u16, pair: &PortPair) {
        for channel in [Channel::Rtp, Channel::Rtcp] {
            let fd = pair.socket(channel).as_raw_fd();
            if let Err(e) = self.registry.register(
                &mut SourceFd(&fd),
                token(self.slot, tag, channel),
                Interest::READABLE,
            ) {
                tracing::error!(error = %e, port = pair.port(), "an RTP port cannot be watched: its media is not read");
            }
        }
    }

    /// Stop reading `pair` (it goes on elsewhere: a player, another call).
    pub fn unwatch(&mut self, pair: &PortPair) {
        for channel in [Channel::Rtp, Channel::Rtcp] {
            let fd = pair.socket(channel).as_raw_fd();
            // Not registered (a failed watch): nothing to undo.
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
    }
}

/// Start a worker thread.
pub(super) fn spawn<T: MediaTask>(name: &str, coalesce: Duration) -> std::io::Result<WorkerRef<T>> {
    let poll = Poll::new()?;
    let waker = mio::Waker::new(poll.registry(), WAKE)?;
    let (jobs, rx) = mpsc::channel();
    let load = Arc::new(AtomicUsize::new(0));
    let pressure = Arc::new(Published::default());
    let worker = Worker {
        pressure: pressure.clone(),
        poll,
        jobs: rx,
        load: load.clone(),
        coalesce,
        tasks: Vec::new(),
        free: Vec::new(),
        index: HashMap::new(),
    };
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || worker.run())?;
    Ok(WorkerRef {
        jobs,
        waker,
        load,
        pressure,
    })
}

struct Worker<T: MediaTask> {
    poll: Poll,
    jobs: Receiver<Job<T>>,
    load: Arc<AtomicUsize>,
    /// Where the last window's figures go.
    pressure: Arc<Published>,
    /// How long to let datagrams gather after a pass that read some.
    coalesce: Duration,
    /// Tasks by slot, with their ids.
    tasks: Vec<Option<(u64, Box<T>)>>,
    free: Vec<usize>,
    index: HashMap<u64, usize>,
}

/// The receive buffers of one worker.
struct Buffers {
    data: Box<[[u8; BUF]; BATCH]>,
    meta: [RecvMeta; BATCH],
}

impl<T: MediaTask> Worker<T> {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut bufs = Buffers {
            data: Box::new([[0u8; BUF]; BATCH]),
            meta: [RecvMeta::default(); BATCH],
        };
        let mut next_tick = Instant::now() + TICK;
        let mut window = Window::new(Instant::now(), thread_cpu());
        let mut backlog = false;
        loop {
            let timeout = match backlog {
                true => Duration::ZERO,
                false => next_tick.saturating_duration_since(Instant::now()),
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    tracing::error!(error = %e, "media IO poll failed");
                    std::thread::sleep(TICK);
                }
                continue;
            }
            // Commands first, every one queued up to a bound: one sent
            // before a datagram (a bridge before the caller's first
            // packet) is carried out before that datagram is read, even
            // when the tick is due (it runs between commands then, so a
            // run of them never holds it back). Only a backlog beyond a
            // pass's bounds can still meet a datagram first.
            let woke = Instant::now();
            backlog = true;
            for _ in 0..JOBS_PER_PASS {
                if woke.elapsed() >= JOBS_TIME_PER_PASS {
                    break;
                }
                match self.jobs.try_recv() {
                    Ok(job) => self.job(job, Instant::now()),
                    Err(TryRecvError::Empty) => {
                        backlog = false;
                        break;
                    }
                    // The pool is gone: so is every handle.
                    Err(TryRecvError::Disconnected) => return,
                }
                self.tick_if_due(&mut next_tick, &mut window, woke);
            }
            let now = Instant::now();
            let mut read_some = false;
            for event in events.iter() {
                if event.token() == WAKE {
                    continue;
                }
                read_some = true;
                let (slot, tag, channel) = untoken(event.token());
                self.read(slot, tag, channel, now, &mut bufs);
            }
            self.tick_if_due(&mut next_tick, &mut window, woke);
            if read_some && !self.coalesce.is_zero() {
                // Let the next datagrams of many calls gather: one wake-up
                // for all of them, not one each.
                let until = (Instant::now() + self.coalesce).min(next_tick);
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
            }
        }
    }

    /// Every task's tick, when it is due, and the next one's time.
    ///
    /// How late it was, for the window: a tick already due when the
    /// worker woke (`woke`) counts as run then, when the worker came back
    /// to it, not after the pass's reads (measured that way it read 87 %
    /// of the ticks late at 43 % of a core while 800 calls lost 0.015 %,
    /// and refused 171 of them); one that fell due during the pass's work
    /// is late by that work.
    fn tick_if_due(&mut self, next_tick: &mut Instant, window: &mut Window, woke: Instant) {
        let now = Instant::now();
        if now < *next_tick {
            return;
        }
        window.tick(*next_tick, if *next_tick <= woke { woke } else { now });
        for slot in 0..self.tasks.len() {
            self.guarded(slot, |task, _| task.on_tick(now));
        }
        *next_tick += TICK;
        if *next_tick <= now {
            // Late by more than a tick: no burst, pace from now.
            *next_tick = now + TICK;
        }
        let served = Instant::now();
        if window.due(served) {
            if let Some(p) = window.close(served, thread_cpu()) {
                self.pressure.set(p);
            }
        }
    }

    /// Read what waits on one task's socket.
    fn read(&mut self, slot: usize, tag: u16, channel: Channel, now: Instant, bufs: &mut Buffers) {
        for _ in 0..MAX_BATCHES {
            let Some(Some((_, task))) = self.tasks.get_mut(slot) else {
                return;
            };
            let Some(pair) = task.port(tag) else { return };
            let mut slices = bufs.data.each_mut().map(|b| IoSliceMut::new(b));
            let n = match pair.recv_batch(channel, &mut slices, &mut bufs.meta) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // An ICMP error from an earlier send, reported once.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "RTP read");
                    return;
                }
            };
            for (buf, meta) in bufs.data.iter_mut().zip(&bufs.meta).take(n) {
                let stride = if meta.stride == 0 {
                    meta.len
                } else {
                    meta.stride
                };
                let mut at = 0;
                while at < meta.len {
                    let len = stride.min(meta.len - at);
                    let datagram = &mut buf[at..at + len];
                    at += len;
                    let opened = task
                        .port(tag)
                        .and_then(|p| p.open(channel, datagram, len, meta.addr, now.into_std()));
                    let Some((m, what)) = opened else { continue };
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        task.on_datagram(tag, what, &mut datagram[..m], meta.addr, now);
                    }));
                    if outcome.is_err() {
                        self.failed(slot);
                        return;
                    }
                }
            }
            if n < BATCH {
                return;
            }
        }
    }

    fn job(&mut self, job: Job<T>, now: Instant) {
        match job {
            Job::Adopt(id, task) => {
                let slot = match self.free.pop() {
                    Some(s) => s,
                    None => {
                        self.tasks.push(None);
                        self.tasks.len() - 1
                    }
                };
                self.tasks[slot] = Some((id, task));
                self.index.insert(id, slot);
                self.guarded(slot, |task, registrar| task.watch(registrar));
            }
            Job::Command(id, command) => {
                let Some(&slot) = self.index.get(&id) else {
                    return; // ended: the command's reply channel drops
                };
                let mut flow = Flow::Continue;
                self.guarded(slot, |task, registrar| {
                    flow = task.on_command(command, now, registrar);
                });
                if flow == Flow::Done {
                    self.remove(slot);
                }
            }
            Job::Abandon(id) => {
                let Some(&slot) = self.index.get(&id) else {
                    return;
                };
                self.guarded(slot, |task, registrar| task.abandon(registrar));
                self.remove(slot);
            }
        }
    }

    /// Run `f` on the task in `slot`; a panic drops the task.
    fn guarded(&mut self, slot: usize, f: impl FnOnce(&mut T, &mut Registrar<'_>)) {
        let Some(Some((_, task))) = self.tasks.get_mut(slot) else {
            return;
        };
        let mut registrar = Registrar {
            registry: self.poll.registry(),
            slot,
        };
        if catch_unwind(AssertUnwindSafe(|| f(task, &mut registrar))).is_err() {
            self.failed(slot);
        }
    }

    /// A task panicked: stop watching its ports and drop it.
    fn failed(&mut self, slot: usize) {
        tracing::error!(slot, "a call's media task failed: its media stops");
        if let Some(Some((_, task))) = self.tasks.get_mut(slot) {
            let mut registrar = Registrar {
                registry: self.poll.registry(),
                slot,
            };
            let _ = catch_unwind(AssertUnwindSafe(|| task.abandon(&mut registrar)));
        }
        self.remove(slot);
    }

    fn remove(&mut self, slot: usize) {
        if let Some(Some((id, task))) = self.tasks.get_mut(slot).map(Option::take) {
            self.index.remove(&id);
            self.free.push(slot);
            self.load.fetch_sub(1, Ordering::Relaxed);
            // A panicking drop must not take the worker with it.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(task)));
        }
    }
}
