//! Confirmed SIP legs on disk (issue 12 item 4): one `dialog_leg` row per
//! live leg, so the start after a crash can send each leg the BYE the crash
//! kept from it (`sip::recovery`).
//!
//! Writes come from the SIP stack's tasks, which must never wait on disk,
//! so [`DialogWriter`] hands them to its own thread over a channel; the
//! thread commits whatever has queued up in one transaction (WAL,
//! `synchronous = NORMAL`: a commit is a write to the WAL file, no fsync,
//! which survives the death of the process — the case this table is for).
//! A leg is in the table well under a millisecond after its ACK.

use std::sync::mpsc::{self, Receiver, Sender};

use rusqlite::params;
use tracing::warn;

use super::{Store, StoreError};
use crate::sip::journal::{DialogJournal, DialogRole, SavedDialog};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dialog_leg (
    key           TEXT PRIMARY KEY,
    call_id       TEXT NOT NULL,
    local_tag     TEXT NOT NULL,
    remote_tag    TEXT NOT NULL,
    role          TEXT NOT NULL,
    local_party   TEXT NOT NULL,
    remote_party  TEXT NOT NULL,
    remote_target TEXT NOT NULL,
    route_set     TEXT NOT NULL,
    local_contact TEXT,
    local_cseq    INTEGER NOT NULL
);
";

/// Most operations committed in one transaction.
const BATCH: usize = 256;

impl Store {
    fn dialog_table(&self) -> Result<(), StoreError> {
        self.lock().execute_batch(SCHEMA).map_err(|e| self.err(e))
    }

    /// Every stored leg. A row that cannot be read back (an unknown role,
    /// a route set that is not a JSON list) is reported and skipped.
    pub fn load_dialogs(&self) -> Result<Vec<SavedDialog>, StoreError> {
        self.dialog_table()?;
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT key, call_id, local_tag, remote_tag, role, local_party, remote_party,
                        remote_target, route_set, local_contact, local_cseq
                 FROM dialog_leg ORDER BY call_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(8)?,
                    SavedDialog {
                        call_id: r.get(1)?,
                        local_tag: r.get(2)?,
                        remote_tag: r.get(3)?,
                        role: DialogRole::Uac,
                        local_party: r.get(5)?,
                        remote_party: r.get(6)?,
                        remote_target: r.get(7)?,
                        route_set: Vec::new(),
                        local_contact: r.get(9)?,
                        local_cseq: r.get::<_, i64>(10)?.clamp(0, i64::from(u32::MAX)) as u32,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, role, routes, mut d) = row.map_err(|e| self.err(e))?;
            let Some(role) = DialogRole::parse(&role) else {
                warn!(db = %self.path.display(), %key, %role, "dialog_leg row with an unknown role skipped");
                continue;
            };
            let Ok(route_set) = serde_json::from_str::<Vec<String>>(&routes) else {
                warn!(db = %self.path.display(), %key, "dialog_leg row whose route_set is not a JSON list skipped");
                continue;
            };
            d.role = role;
            d.route_set = route_set;
            out.push(d);
        }
        Ok(out)
    }

    /// Insert or replace one leg.
    pub fn save_dialog(&self, d: &SavedDialog) -> Result<(), StoreError> {
        self.dialog_table()?;
        self.apply_dialogs(&[DialogOp::Save(d.clone())])
    }

    /// Remove one leg; whether it was there.
    pub fn delete_dialog(&self, key: &str) -> Result<bool, StoreError> {
        self.dialog_table()?;
        self.lock()
            .execute("DELETE FROM dialog_leg WHERE key = ?1", params![key])
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Saves and removes in one transaction.
    fn apply_dialogs(&self, ops: &[DialogOp]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for op in ops {
            match op {
                DialogOp::Save(d) => {
                    let routes =
                        serde_json::to_string(&d.route_set).unwrap_or_else(|_| "[]".into());
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO dialog_leg (key, call_id, local_tag, remote_tag,
                             role, local_party, remote_party, remote_target, route_set,
                             local_contact, local_cseq)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )
                    .and_then(|mut insert| {
                        insert.execute(params![
                            d.key(),
                            d.call_id,
                            d.local_tag,
                            d.remote_tag,
                            d.role.as_str(),
                            d.local_party,
                            d.remote_party,
                            d.remote_target,
                            routes,
                            d.local_contact,
                            i64::from(d.local_cseq),
                        ])
                    })
                }
                DialogOp::Remove(key) => tx
                    .prepare_cached("DELETE FROM dialog_leg WHERE key = ?1")
                    .and_then(|mut delete| delete.execute(params![key])),
                DialogOp::Flush(_) => continue,
            }
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

enum DialogOp {
    Save(SavedDialog),
    Remove(String),
    Flush(Sender<()>),
}

/// The [`DialogJournal`] of `hotline serve`: `dialog_leg` in hotline.db,
/// written by a thread of its own.
#[derive(Debug)]
pub struct DialogWriter {
    store: Store,
    ops: Sender<DialogOp>,
}

impl DialogWriter {
    /// Create the table and start the writer thread.
    pub fn start(store: Store) -> Result<Self, StoreError> {
        store.dialog_table()?;
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
        if let Err(e) = store.apply_dialogs(&ops) {
            warn!(error = %e, ops = ops.len(), "dialog journal write failed: a crash now would leave these legs up");
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
        self.send(DialogOp::Save(dialog.clone()));
    }

    fn remove(&self, key: &str) {
        self.send(DialogOp::Remove(key.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(call: &str, cseq: u32) -> SavedDialog {
        SavedDialog {
            call_id: call.into(),
            local_tag: "ours".into(),
            remote_tag: "theirs".into(),
            role: DialogRole::Uas,
            local_party: "<sip:12345@127.0.0.1:5060>;tag=ours".into(),
            remote_party: "\"Carrier\" <sip:+15550100@127.0.0.10>;tag=theirs".into(),
            remote_target: "sip:+15550100@127.0.0.10:5060".into(),
            route_set: vec!["<sip:127.0.0.2;lr>".into(), "<sip:127.0.0.3;lr>".into()],
            local_contact: Some("sip:127.0.0.1:5060".into()),
            local_cseq: cseq,
        }
    }

    #[test]
    fn legs_survive_reopen_and_are_replaced_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.save_dialog(&leg("a", 1)).unwrap();
        store.save_dialog(&leg("a", 600)).unwrap();
        store.save_dialog(&leg("b", 1)).unwrap();
        assert!(store.delete_dialog(&leg("b", 1).key()).unwrap());
        assert!(!store.delete_dialog(&leg("b", 1).key()).unwrap());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load_dialogs().unwrap(), vec![leg("a", 600)]);
    }

    #[test]
    fn the_writer_thread_writes_in_order_and_flush_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writer = DialogWriter::start(store.clone()).unwrap();
        writer.save(&leg("a", 1));
        writer.save(&leg("b", 1));
        writer.remove(&leg("a", 1).key());
        writer.flush();
        assert_eq!(writer.leftovers().unwrap(), vec![leg("b", 1)]);
    }

    #[test]
    fn an_unreadable_row_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.save_dialog(&leg("good", 1)).unwrap();
        store.save_dialog(&leg("bad-role", 1)).unwrap();
        store.save_dialog(&leg("bad-routes", 1)).unwrap();
        store
            .lock()
            .execute_batch(
                "UPDATE dialog_leg SET role = 'proxy' WHERE call_id = 'bad-role';
                 UPDATE dialog_leg SET route_set = 'nope' WHERE call_id = 'bad-routes';",
            )
            .unwrap();
        assert_eq!(store.load_dialogs().unwrap(), vec![leg("good", 1)]);
    }
}
