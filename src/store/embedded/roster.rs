//! The roster in hotline.db (CTI issue §6 "agents, skill groups …
//! persisted"): one row per agent (keyed by SIP user) and per skill group,
//! the entry as JSON, who owns it (the config file or the API) and the file
//! entry it was seeded from; the merge rules are in [`crate::roster::seed`].
//! A change is written in one transaction.

use rusqlite::params;

use super::Embedded;
use crate::roster::seed::{Kind, Origin, Row, RowChange};
use crate::store::StoreError;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS roster (
    kind       TEXT NOT NULL CHECK (kind IN ('agent', 'group')),
    key        TEXT NOT NULL,
    body       TEXT,
    origin     TEXT NOT NULL CHECK (origin IN ('config', 'api')),
    seed       TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
";

impl Embedded {
    /// Every stored roster row, tombstones included, in (kind, key) order.
    pub fn load_roster(&self) -> Result<Vec<Row>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT kind, key, body, origin, seed FROM roster ORDER BY kind, key")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, key, body, origin, seed) = row.map_err(|e| self.err(e))?;
            // The CHECK constraints keep these valid; skip anything else.
            let (Some(kind), Some(origin)) = (Kind::parse(&kind), Origin::parse(&origin)) else {
                continue;
            };
            out.push(Row {
                kind,
                key,
                body,
                origin,
                seed,
            });
        }
        Ok(out)
    }

    /// Write `changes` in one transaction.
    pub fn save_roster(&self, changes: &[RowChange], now: i64) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for c in changes {
            match c {
                RowChange::Put(r) => tx.execute(
                    "INSERT OR REPLACE INTO roster (kind, key, body, origin, seed, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        r.kind.as_str(),
                        r.key,
                        r.body,
                        r.origin.as_str(),
                        r.seed,
                        now
                    ],
                ),
                RowChange::Remove(kind, key) => tx.execute(
                    "DELETE FROM roster WHERE kind = ?1 AND key = ?2",
                    params![kind.as_str(), key],
                ),
            }
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}
