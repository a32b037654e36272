//! Follow-up campaigns in hotline.db (issue 18 §3; `store::campaigns`).

use rusqlite::{params, OptionalExtension};

use super::Embedded;
use crate::store::campaigns::CampaignRow;
use crate::store::StoreError;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS campaign (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    active     INTEGER NOT NULL,
    body       TEXT NOT NULL
);
";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CampaignRow> {
    Ok(CampaignRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        created_ms: r.get(2)?,
        active: r.get::<_, i64>(3)? != 0,
        body: r.get(4)?,
    })
}

impl Embedded {
    /// `Store::save_campaign`.
    pub fn save_campaign(&self, c: &CampaignRow) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO campaign (id, tenant, created_ms, active, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c.id, c.tenant, c.created_ms, i64::from(c.active), c.body],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// `Store::campaign`.
    pub fn campaign(&self, id: &str) -> Result<Option<CampaignRow>, StoreError> {
        self.lock()
            .query_row(
                "SELECT id, tenant, created_ms, active, body FROM campaign WHERE id = ?1",
                params![id],
                row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// `Store::active_campaigns`.
    pub fn active_campaigns(&self) -> Result<Vec<CampaignRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, tenant, created_ms, active, body FROM campaign WHERE active <> 0
                 ORDER BY created_ms, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], row)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e));
        rows
    }
}
