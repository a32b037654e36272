//! The roster on disk (CTI issue §6 "agents, skill groups … persisted in
//! SQLite"): one row per agent (keyed by SIP user) and per skill group,
//! the entry as JSON, who owns it (the config file or the API) and the file
//! entry it was seeded from; the merge rules are in [`crate::roster::seed`].
//! A change is written in one transaction.

use rusqlite::params;

use super::{Store, StoreError};
use crate::roster::seed::{Kind, Origin, Row, RowChange};

const SCHEMA: &str = "
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

impl Store {
    fn roster_table(&self) -> Result<(), StoreError> {
        self.lock().execute_batch(SCHEMA).map_err(|e| self.err(e))
    }

    /// Every stored roster row, tombstones included, in (kind, key) order.
    pub fn load_roster(&self) -> Result<Vec<Row>, StoreError> {
        self.roster_table()?;
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
    pub fn save_roster(&self, changes: &[RowChange]) -> Result<(), StoreError> {
        self.roster_table()?;
        let now = crate::util::unix_now() as i64;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_tombstones_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let row = |key: &str, body: Option<&str>, origin| Row {
            kind: Kind::Agent,
            key: key.into(),
            body: body.map(str::to_string),
            origin,
            seed: Some("{}".into()),
        };
        s.save_roster(&[
            RowChange::Put(row("1001", Some("{\"a\":1}"), Origin::Config)),
            RowChange::Put(row("1002", None, Origin::Api)),
            RowChange::Put(row("1003", Some("{}"), Origin::Config)),
        ])
        .expect("save");
        s.save_roster(&[RowChange::Remove(Kind::Agent, "1003".into())])
            .expect("remove");
        drop(s);
        let s = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            s.load_roster().expect("load"),
            vec![
                row("1001", Some("{\"a\":1}"), Origin::Config),
                row("1002", None, Origin::Api)
            ]
        );
    }
}
