//! The embedded backend: SQLite in `[data] dir`/hotline.db (WAL), the
//! single-machine default. One connection behind a mutex; its tables are
//! created at open (`CREATE TABLE IF NOT EXISTS`, one file per concern).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection};

use super::{sqlite, AcdRows, AcdWrite, Backend, DialogChange, StoreError};
use crate::ivr::blacklist::Entry;
use crate::roster::seed::{Row, RowChange};
use crate::sip::journal::SavedDialog;
use crate::sip::registrar::{Binding, BindingChange};
use crate::time::Time;

mod acd;
mod blacklist;
mod campaigns;
mod dialogs;
mod flows;
mod roster;

/// hotline.db.
pub struct Embedded {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Embedded {
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
    path       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (aor, contact)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

impl Embedded {
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
        for schema in [
            SCHEMA,
            acd::SCHEMA,
            blacklist::SCHEMA,
            campaigns::SCHEMA,
            dialogs::SCHEMA,
            flows::SCHEMA,
            roster::SCHEMA,
        ] {
            conn.execute_batch(schema).map_err(err)?;
        }
        // hotline.db files made before bindings kept their Path (RFC 3327).
        if conn
            .prepare("SELECT path FROM registration LIMIT 0")
            .is_err()
        {
            conn.execute_batch("ALTER TABLE registration ADD COLUMN path TEXT NOT NULL DEFAULT ''")
                .map_err(err)?;
        }
        // hotline.db files made before a callback had its own attempts.
        if conn
            .prepare("SELECT max_attempts FROM acd_callback LIMIT 0")
            .is_err()
        {
            conn.execute_batch("ALTER TABLE acd_callback ADD COLUMN max_attempts INTEGER")
                .map_err(err)?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    pub(super) fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        match self.conn.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Every stored binding (expired ones included; the registrar drops them).
    pub fn load_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        self.bindings_where("", &[])
    }

    /// The stored bindings of `aor`.
    pub fn load_bindings_of(&self, aor: &str) -> Result<Vec<Binding>, StoreError> {
        self.bindings_where(" WHERE aor = ?1", &[&aor])
    }

    fn bindings_where(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Binding>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT aor, contact, source, transport, expires_at, call_id, cseq, q, path FROM registration{filter}"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(args, |r| {
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
                        path: super::path_from_text(&r.get::<_, String>(8)?),
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
    pub fn apply_bindings(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for change in changes {
            match change {
                BindingChange::Upserted(b) => tx.execute(
                    "INSERT OR REPLACE INTO registration (aor, contact, source, transport, expires_at, call_id, cseq, q, path)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        b.aor,
                        b.contact,
                        b.source.to_string(),
                        b.transport,
                        b.expires_at.unix_secs() as i64,
                        b.call_id,
                        i64::from(b.cseq),
                        b.q.map(f64::from),
                        super::path_to_text(&b.path)
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

    /// The value under `key`, inserting `value` if there is none.
    pub fn meta_insert_or_get(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<(Vec<u8>, bool), StoreError> {
        let conn = self.lock();
        let inserted = conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )
            .map_err(|e| self.err(e))?
            > 0;
        let stored = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok((stored, inserted))
    }
}

impl Backend for Embedded {
    fn load_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        Embedded::load_bindings(self)
    }
    fn load_bindings_of(&self, aor: &str) -> Result<Vec<Binding>, StoreError> {
        Embedded::load_bindings_of(self, aor)
    }
    fn apply_bindings(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        Embedded::apply_bindings(self, changes)
    }
    fn meta_insert_or_get(&self, key: &str, value: &[u8]) -> Result<(Vec<u8>, bool), StoreError> {
        Embedded::meta_insert_or_get(self, key, value)
    }
    fn load_acd(&self) -> Result<AcdRows, StoreError> {
        Embedded::load_acd(self)
    }
    fn save_acd(&self, writes: &[AcdWrite], fence: Option<i64>) -> Result<(), StoreError> {
        if fence.is_some() {
            return Err(StoreError::NotShared("the ACD leader's lease"));
        }
        Embedded::save_acd(self, writes)
    }
    fn acd_lease(&self, _: i64) -> Result<super::Lease, StoreError> {
        Err(StoreError::NotShared("the ACD leader's lease"))
    }
    fn release_acd_lease(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn call_id_block(&self) -> Result<u64, StoreError> {
        Err(StoreError::NotShared("a block of call ids"))
    }
    fn load_dialogs(&self) -> Result<Vec<SavedDialog>, StoreError> {
        Embedded::load_dialogs(self)
    }
    fn apply_dialogs(&self, changes: &[DialogChange]) -> Result<(), StoreError> {
        Embedded::apply_dialogs(self, changes)
    }
    fn delete_dialog(&self, key: &str) -> Result<bool, StoreError> {
        Embedded::delete_dialog(self, key)
    }
    fn load_roster(&self) -> Result<Vec<Row>, StoreError> {
        Embedded::load_roster(self)
    }
    fn save_roster(&self, changes: &[RowChange], now: i64) -> Result<(), StoreError> {
        Embedded::save_roster(self, changes, now)
    }
    fn load_blacklist(&self) -> Result<Vec<(String, Entry)>, StoreError> {
        Embedded::load_blacklist(self)
    }
    fn save_blacklist_entry(&self, tenant: &str, e: &Entry) -> Result<(), StoreError> {
        Embedded::save_blacklist_entry(self, tenant, e)
    }
    fn delete_blacklist_entry(&self, tenant: &str, number: &str) -> Result<bool, StoreError> {
        Embedded::delete_blacklist_entry(self, tenant, number)
    }
    fn flow_went_live(
        &self,
        v: &crate::store::FlowVersion,
    ) -> Result<crate::store::Recorded, StoreError> {
        Embedded::flow_went_live(self, v)
    }
    fn flow_versions(&self, name: &str) -> Result<Vec<crate::store::FlowVersion>, StoreError> {
        Embedded::flow_versions(self, name)
    }
    fn flow_names(&self) -> Result<Vec<String>, StoreError> {
        Embedded::flow_names(self)
    }
    fn save_campaign(&self, c: &crate::store::CampaignRow) -> Result<(), StoreError> {
        Embedded::save_campaign(self, c)
    }
    fn campaign(&self, id: &str) -> Result<Option<crate::store::CampaignRow>, StoreError> {
        Embedded::campaign(self, id)
    }
    fn active_campaigns(&self) -> Result<Vec<crate::store::CampaignRow>, StoreError> {
        Embedded::active_campaigns(self)
    }
    fn shared(&self) -> bool {
        false
    }
    fn follow(&self) -> Result<Option<super::ChangeFeed>, StoreError> {
        Ok(None)
    }
    fn heartbeat(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn peers(&self, _: i32) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    fn take_over_dead(&self, _: i32) -> Result<Vec<(String, Vec<SavedDialog>)>, StoreError> {
        Ok(Vec::new())
    }
    fn ping(&self) -> Result<(), StoreError> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM meta", [], |r| r.get::<_, i64>(0))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
