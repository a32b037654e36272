//! Flow history in hotline.db (issue 18 §4; `store::flows`).

use rusqlite::{params, OptionalExtension};

use super::Embedded;
use crate::store::flows::{FlowVersion, Recorded};
use crate::store::StoreError;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS flow_version (
    name     TEXT NOT NULL,
    version  TEXT NOT NULL,
    tenant   TEXT NOT NULL,
    content  TEXT NOT NULL,
    saved_at INTEGER NOT NULL,
    saved_by TEXT NOT NULL,
    live_at  INTEGER NOT NULL,
    live_by  TEXT NOT NULL,
    live_seq INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
";

const COLUMNS: &str =
    "name, version, tenant, content, saved_at, saved_by, live_at, live_by, live_seq";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FlowVersion> {
    Ok(FlowVersion {
        name: r.get(0)?,
        version: r.get(1)?,
        tenant: r.get(2)?,
        content: r.get(3)?,
        saved_at: r.get(4)?,
        saved_by: r.get(5)?,
        live_at: r.get(6)?,
        live_by: r.get(7)?,
        live_seq: r.get(8)?,
    })
}

impl Embedded {
    /// `Store::flow_went_live`, in one transaction.
    pub fn flow_went_live(&self, v: &FlowVersion) -> Result<Recorded, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let live: Option<(String, i64)> = tx
            .query_row(
                "SELECT version, live_seq FROM flow_version WHERE name = ?1
                 ORDER BY live_seq DESC LIMIT 1",
                params![v.name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let seq = match &live {
            Some((version, _)) if *version == v.version => return Ok(Recorded::Unchanged),
            Some((_, seq)) => seq + 1,
            None => 1,
        };
        let updated = tx
            .execute(
                "UPDATE flow_version SET live_at = ?3, live_by = ?4, live_seq = ?5
                 WHERE name = ?1 AND version = ?2",
                params![v.name, v.version, v.live_at, v.live_by, seq],
            )
            .map_err(|e| self.err(e))?;
        if updated == 0 {
            tx.execute(
                &format!("INSERT INTO flow_version ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    v.name, v.version, v.tenant, v.content, v.saved_at, v.saved_by, v.live_at,
                    v.live_by, seq
                ],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(if updated == 0 {
            Recorded::New
        } else {
            Recorded::Relive
        })
    }

    /// `Store::flow_versions`.
    pub fn flow_versions(&self, name: &str) -> Result<Vec<FlowVersion>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM flow_version WHERE name = ?1 ORDER BY saved_at, live_seq"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![name], row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// `Store::flow_names`.
    pub fn flow_names(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT DISTINCT name FROM flow_version ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}
