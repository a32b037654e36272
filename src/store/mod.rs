//! SQLite persistence (embedded, WAL): agent registrations that survive a
//! restart, the block list (`blacklist`), the agents and skill groups
//! (`roster`), the ACD's state (`acd`: agents' states, pending callbacks,
//! missed calls, previous service, the day's figures), the confirmed SIP
//! legs a crash must not leave up (`dialogs`), and small key/value facts
//! such as the digest nonce key.
//!
//! Also [`sqlite`]: how every SQLite database of hotline is opened and
//! migrated (`hotline.db` here, `auth.db`, `events.db`), with the schemas
//! of the databases that own their `user_version`.
//!
//! One connection behind a mutex; writes are rare (a REGISTER, an expiry)
//! and run on the blocking pool so the async shells never wait on disk (the
//! legs through a writer thread of their own, [`DialogWriter`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection};

use crate::sip::registrar::{Binding, BindingChange};
use crate::time::Time;

mod acd;
mod blacklist;
mod dialogs;
mod roster;
pub mod sqlite;

pub use acd::{
    AcdAgentRow, AcdCallbackRow, AcdGroupRow, AcdMissedRow, AcdRows, AcdServedRow, AcdWrite,
};
pub use dialogs::DialogWriter;

/// Storage errors, naming the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A blocking database task did not finish (panicked or cancelled).
    #[error("database task failed: {0}")]
    Task(String),
    /// The data directory cannot be created.
    #[error("{path}: cannot create data directory: {source}")]
    Dir {
        /// Directory.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// The database.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS registration (
    aor        TEXT NOT NULL,
    contact    TEXT NOT NULL,
    source     TEXT NOT NULL,
    transport  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    call_id    TEXT NOT NULL,
    cseq       INTEGER NOT NULL,
    q          REAL,
    PRIMARY KEY (aor, contact)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

impl Store {
    /// Open (creating) `dir/hotline.db`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("hotline.db");
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = sqlite::connect(&path, sqlite::Mode::ReadWrite(sqlite::Synchronous::Normal))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        match self.conn.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Every stored binding (expired ones included; the registrar drops them).
    pub fn load_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT aor, contact, source, transport, expires_at, call_id, cseq, q FROM registration")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let source: String = r.get(2)?;
                Ok((
                    source,
                    Binding {
                        aor: r.get(0)?,
                        contact: r.get(1)?,
                        source: SocketAddr::from(([0, 0, 0, 0], 0)),
                        transport: r.get(3)?,
                        expires_at: Time::from_unix_secs(r.get::<_, i64>(4)?.max(0) as u64),
                        call_id: r.get(5)?,
                        cseq: r.get::<_, i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
                        q: r.get::<_, Option<f64>>(7)?.map(|q| q as f32),
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (source, mut b) = row.map_err(|e| self.err(e))?;
            // A row whose address no longer parses is skipped, not fatal.
            if let Ok(addr) = source.parse() {
                b.source = addr;
                out.push(b);
            }
        }
        Ok(out)
    }

    /// Apply registrar changes in one transaction.
    pub fn apply(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for change in changes {
            match change {
                BindingChange::Upserted(b) => tx.execute(
                    "INSERT OR REPLACE INTO registration (aor, contact, source, transport, expires_at, call_id, cseq, q)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        b.aor,
                        b.contact,
                        b.source.to_string(),
                        b.transport,
                        b.expires_at.unix_secs() as i64,
                        b.call_id,
                        i64::from(b.cseq),
                        b.q.map(f64::from)
                    ],
                ),
                BindingChange::Removed { aor, contact } => tx.execute(
                    "DELETE FROM registration WHERE aor = ?1 AND contact = ?2",
                    params![aor, contact],
                ),
            }
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// A stored value, or `make()`'s, stored for next time.
    pub fn meta_or_insert(
        &self,
        key: &str,
        make: impl FnOnce() -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let conn = self.lock();
        let found: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(|e| self.err(e))?;
        if let Some(v) = found {
            return Ok(v);
        }
        let v = make();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, v],
        )
        .map_err(|e| self.err(e))?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(aor: &str, contact: &str) -> Binding {
        Binding {
            aor: aor.into(),
            contact: contact.into(),
            source: "127.0.0.21:5060".parse().unwrap(),
            transport: "UDP".into(),
            expires_at: Time::from_unix_secs(1_000_000),
            call_id: "c1".into(),
            cseq: 7,
            q: Some(0.5),
        }
    }

    #[test]
    fn bindings_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .apply(&[
                BindingChange::Upserted(binding("1001", "sip:1001@127.0.0.21:5060")),
                BindingChange::Upserted(binding("1002", "sip:1002@127.0.0.22:5060")),
            ])
            .unwrap();
        store
            .apply(&[BindingChange::Removed {
                aor: "1002".into(),
                contact: "sip:1002@127.0.0.22:5060".into(),
            }])
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let all = store.load_bindings().unwrap();
        assert_eq!(all, vec![binding("1001", "sip:1001@127.0.0.21:5060")]);
    }

    #[test]
    fn meta_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.meta_or_insert("k", || vec![1, 2, 3]).unwrap();
        let b = store.meta_or_insert("k", || vec![9]).unwrap();
        assert_eq!(a, b);
    }
}
