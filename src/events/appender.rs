//! Group commit for the outbox (issue 7 §2): call tasks hand their events
//! to one writer thread and go on; the thread commits whatever has queued
//! up in one SQLite transaction.
//!
//! Why a thread: [`Outbox::append`] is a synchronous SQLite commit (tens of
//! microseconds, more when the disk is busy); run on a tokio worker it
//! would stall every call sharing that worker. One writer also batches:
//! under load, many calls' events share one commit (the outbox appends
//! ~69 k events/s batched against ~18 k/s one by one, BENCHMARKS.md).
//!
//! Order: events are committed in the order they were sent, so the events
//! of one call (sent by one task, or under its record's lock) keep their
//! order. Durability: an event is on disk one commit after it was sent
//! (a millisecond or so); [`Appender::flush`] waits for that, e.g. before a
//! clean shutdown. A commit that fails is retried with a short backoff; if
//! it keeps failing (disk full) the events are logged and counted as lost
//! (`/healthz` shows the count), and the writer goes on with the next ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, warn};

use super::outbox::{NewEvent, Outbox, OutboxError};

/// Most events committed in one transaction.
const MAX_BATCH: usize = 4096;
/// Attempts of one commit before its events are given up.
const ATTEMPTS: u32 = 5;

enum Job {
    Events(Vec<NewEvent>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Counters of the writer, for `/healthz`.
#[derive(Debug, Default)]
pub struct AppenderStats {
    /// Events committed.
    pub committed: AtomicU64,
    /// Commits (transactions).
    pub commits: AtomicU64,
    /// Events given up after repeated commit failures.
    pub lost: AtomicU64,
}

/// Sends events to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Appender {
    tx: mpsc::Sender<Job>,
    stats: Arc<AppenderStats>,
}

impl Appender {
    /// Start the writer thread for `outbox`. It stops when every
    /// `Appender` is dropped, after committing what was sent.
    pub fn start(outbox: Arc<Outbox>) -> std::io::Result<Appender> {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(AppenderStats::default());
        let s = stats.clone();
        std::thread::Builder::new()
            .name("events-writer".into())
            .spawn(move || write_loop(&outbox, &rx, &s))?;
        Ok(Appender { tx, stats })
    }

    /// Queue `events` for the next commit (never blocks).
    pub fn send(&self, events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        let n = events.len() as u64;
        if self.tx.send(Job::Events(events)).is_err() {
            self.stats.lost.fetch_add(n, Ordering::Relaxed);
            error!(events = n, "events writer is gone: events lost");
        }
    }

    /// Wait until everything sent before this call is committed (or given
    /// up).
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> &AppenderStats {
        &self.stats
    }
}

fn write_loop(outbox: &Outbox, rx: &mpsc::Receiver<Job>, stats: &AppenderStats) {
    let mut batch: Vec<NewEvent> = Vec::new();
    let mut flushes = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Events(evs) => batch.extend(evs),
                Job::Flush(done) => flushes.push(done),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        commit(outbox, &mut batch, stats);
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

fn commit(outbox: &Outbox, batch: &mut Vec<NewEvent>, stats: &AppenderStats) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len() as u64;
    for attempt in 1..=ATTEMPTS {
        match outbox.append(batch) {
            Ok(()) => {
                stats.committed.fetch_add(n, Ordering::Relaxed);
                stats.commits.fetch_add(1, Ordering::Relaxed);
                batch.clear();
                return;
            }
            Err(e) if attempt < ATTEMPTS && !matches!(e, OutboxError::DuplicateEvent { .. }) => {
                warn!(error = %e, attempt, events = n, "events commit failed: retrying");
                std::thread::sleep(Duration::from_millis(50 << attempt));
            }
            Err(e) => {
                // One bad event (a duplicate id) must not sink its batch:
                // commit them one by one and give up only the bad ones.
                let mut lost = 0u64;
                for ev in batch.drain(..) {
                    if let Err(e1) = outbox.append(std::slice::from_ref(&ev)) {
                        lost += 1;
                        error!(error = %e1, id = %ev.id, kind = %ev.kind, call = ?ev.call_id, "event lost");
                    } else {
                        stats.committed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                stats.lost.fetch_add(lost, Ordering::Relaxed);
                if lost > 0 {
                    error!(error = %e, lost, "events could not be committed");
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, call: &str) -> NewEvent {
        NewEvent {
            id: id.into(),
            call_id: Some(call.into()),
            kind: "call.started".into(),
            body_json: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    #[tokio::test]
    async fn events_from_many_tasks_are_committed_in_send_order_per_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Arc::new(Outbox::open(&dir.path().join("e.db")).expect("open"));
        outbox
            .register_sink("s", crate::events::backoff::RetryPolicy::default())
            .expect("sink");
        let app = Appender::start(outbox.clone()).expect("start");
        let mut tasks = Vec::new();
        for c in 0..20 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    app.send(vec![ev(&format!("c{c}-{i:03}"), &format!("c{c}"))]);
                    tokio::task::yield_now().await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        app.flush().await;
        assert_eq!(app.stats().committed.load(Ordering::Relaxed), 1000);
        assert!(app.stats().commits.load(Ordering::Relaxed) <= 1000);
        assert_eq!(app.stats().lost.load(Ordering::Relaxed), 0);
        // Each call's events come out of the outbox in the order sent.
        let mut seen: std::collections::HashMap<String, Vec<String>> = Default::default();
        loop {
            let batch = outbox.next_batch("s", 10_000, 0).expect("batch");
            if batch.is_empty() {
                break;
            }
            for p in &batch {
                seen.entry(p.call_id.clone().unwrap_or_default())
                    .or_default()
                    .push(p.id.clone());
                outbox.ack("s", &p.id).expect("ack");
            }
        }
        assert_eq!(seen.len(), 20);
        for ids in seen.values() {
            let mut sorted = ids.clone();
            sorted.sort();
            assert_eq!(ids, &sorted);
            assert_eq!(ids.len(), 50);
        }
    }

    #[tokio::test]
    async fn a_duplicate_id_loses_only_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Arc::new(Outbox::open(&dir.path().join("e.db")).expect("open"));
        let app = Appender::start(outbox).expect("start");
        app.send(vec![ev("a", "c"), ev("b", "c")]);
        app.flush().await;
        app.send(vec![ev("a", "c"), ev("d", "c")]);
        app.flush().await;
        assert_eq!(app.stats().committed.load(Ordering::Relaxed), 3);
        assert_eq!(app.stats().lost.load(Ordering::Relaxed), 1);
    }
}
