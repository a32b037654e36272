//! Confirmed SIP legs (`store::dialogs`) in hotline.db's `dialog_leg` (WAL,
//! `synchronous = NORMAL`: a commit is a write to the WAL file, no fsync,
//! which survives the death of the process — the case this table is for).

use rusqlite::params;
use tracing::warn;

use super::Embedded;
use crate::sip::journal::{DialogRole, SavedDialog};
use crate::store::{DialogChange, StoreError};

pub(super) const SCHEMA: &str = "
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

impl Embedded {
    /// Every stored leg. A row that cannot be read back (an unknown role,
    /// a route set that is not a JSON list) is reported and skipped.
    pub fn load_dialogs(&self) -> Result<Vec<SavedDialog>, StoreError> {
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

    /// Remove one leg; whether it was there.
    pub fn delete_dialog(&self, key: &str) -> Result<bool, StoreError> {
        self.lock()
            .execute("DELETE FROM dialog_leg WHERE key = ?1", params![key])
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Saves and removes in one transaction.
    pub fn apply_dialogs(&self, ops: &[DialogChange]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for op in ops {
            match op {
                DialogChange::Save(d) => {
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
                DialogChange::Remove(key) => tx
                    .prepare_cached("DELETE FROM dialog_leg WHERE key = ?1")
                    .and_then(|mut delete| delete.execute(params![key])),
            }
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}
