//! Confirmed SIP legs in the store (issue 12 item 4): one `dialog_leg` row
//! per live leg, so the start after a crash (or, with a shared store, a
//! surviving node: docs/ha.md §4) can send each leg the BYE the crash kept
//! from it (`sip::recovery`).
//!
//! Writes come from the SIP stack's tasks, which must never wait on the
//! database, so [`DialogWriter`] hands them to its own thread over a
//! channel; the thread commits whatever has queued up in one transaction.
//! With the embedded store a leg is in the table well under a millisecond
//! after its ACK.

use std::sync::mpsc::{self, Receiver, Sender};

use tracing::warn;

use super::{Store, StoreError};
use crate::sip::journal::{DialogJournal, SavedDialog};

/// Most operations committed in one transaction.
const BATCH: usize = 256;

/// One change to the stored legs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogChange {
    /// Insert or replace the leg (by its key).
    Save(SavedDialog),
    /// Remove the leg with this key.
    Remove(String),
}

enum DialogOp {
    Change(DialogChange),
    Flush(Sender<()>),
}

/// The [`DialogJournal`] of `hotline serve`: `dialog_leg` in the store,
/// written by a thread of its own.
#[derive(Debug)]
pub struct DialogWriter {
    store: Store,
    ops: Sender<DialogOp>,
}

impl DialogWriter {
    /// Start the writer thread.
    pub fn start(store: Store) -> Result<Self, StoreError> {
        let (ops, queue) = mpsc::channel();
        let writer = store.clone();
        std::thread::Builder::new()
            .name("dialog-journal".into())
            .spawn(move || write_loop(&writer, &queue))
            .map_err(|e| StoreError::Task(format!("dialog journal thread: {e}")))?;
        Ok(Self { store, ops })
    }

    fn send(&self, op: DialogOp) {
        // The thread only stops when this sender is dropped.
        self.ops.send(op).ok();
    }
}

fn write_loop(store: &Store, queue: &Receiver<DialogOp>) {
    while let Ok(first) = queue.recv() {
        let mut ops = vec![first];
        while ops.len() < BATCH {
            match queue.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let changes: Vec<DialogChange> = ops
            .iter()
            .filter_map(|op| match op {
                DialogOp::Change(c) => Some(c.clone()),
                DialogOp::Flush(_) => None,
            })
            .collect();
        if let Err(e) = store.apply_dialogs(&changes) {
            warn!(error = %e, ops = changes.len(), "dialog journal write failed: a crash now would leave these legs up");
        }
        for op in ops {
            if let DialogOp::Flush(done) = op {
                done.send(()).ok();
            }
        }
    }
}

impl DialogJournal for DialogWriter {
    fn save(&self, dialog: &SavedDialog) {
        self.send(DialogOp::Change(DialogChange::Save(dialog.clone())));
    }

    fn remove(&self, key: &str) {
        self.send(DialogOp::Change(DialogChange::Remove(key.to_string())));
    }

    fn leftovers(&self) -> Result<Vec<SavedDialog>, String> {
        self.store.load_dialogs().map_err(|e| e.to_string())
    }

    fn flush(&self) {
        let (done, wait) = mpsc::channel();
        self.send(DialogOp::Flush(done));
        wait.recv().ok();
    }
}
