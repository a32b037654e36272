//! Agents' registrations on disk without holding up the switch (issue 13
//! §5: a REGISTER's store write never blocks INVITE admission).
//!
//! The registrar core decides a REGISTER in memory, in the order requests
//! arrive; the binding changes it produced are then written by one thread
//! of its own, in that same order (a refresh never overtakes the
//! un-REGISTER before it), and the REGISTER is answered once its changes
//! are on disk, in a task of its own, so the switch's dispatch loop goes
//! on admitting INVITEs while SQLite is slow. [`BindingStore`] is the seam
//! a test uses to make the write slow.

use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::warn;

use crate::sip::registrar::BindingChange;
use crate::store::{Store, StoreError};

/// Where binding changes are kept.
pub trait BindingStore: Send + Sync + 'static {
    /// Apply `changes` in one transaction.
    fn apply(&self, changes: &[BindingChange]) -> Result<(), StoreError>;
}

impl BindingStore for Store {
    fn apply(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        Store::apply(self, changes)
    }
}

type Job = (Vec<BindingChange>, oneshot::Sender<()>);

/// One writer thread for binding changes, in the order they were handed.
#[derive(Clone)]
pub struct BindingWriter {
    jobs: mpsc::Sender<Job>,
}

impl BindingWriter {
    /// Start the thread; it ends when the last handle is dropped.
    pub fn start(store: Arc<dyn BindingStore>) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("registrations".into())
            .spawn(move || {
                while let Ok((changes, done)) = queue.recv() {
                    if let Err(e) = store.apply(&changes) {
                        warn!(error = %e, "cannot persist registrations");
                    }
                    done.send(()).ok();
                }
            });
        if let Err(e) = spawned {
            // Without the thread every write reports its failure below.
            warn!(error = %e, "cannot start the registrations writer thread");
        }
        Self { jobs }
    }

    /// Queue `changes`; the receiver resolves once they are written (or
    /// the write failed and was logged). Never waits.
    pub fn write(&self, changes: Vec<BindingChange>) -> Written {
        let (done, rx) = oneshot::channel();
        if changes.is_empty() {
            done.send(()).ok();
        } else {
            // A writer gone drops `done`: `wait` reports it.
            self.jobs.send((changes, done)).ok();
        }
        Written(rx)
    }

    /// Resolves once every change queued before it is kept.
    pub fn flush(&self) -> Written {
        let (done, rx) = oneshot::channel();
        self.jobs.send((Vec::new(), done)).ok();
        Written(rx)
    }
}

/// Resolves once the changes handed to [`BindingWriter::write`] are kept.
pub struct Written(oneshot::Receiver<()>);

impl Written {
    /// Wait for the write.
    pub async fn wait(self) {
        if self.0.await.is_err() {
            warn!("registration persistence task failed");
        }
    }
}
