//! The block list in hotline.db (CTI issue §6 "blacklist CRUD persisted;
//! the config file seeds them"): entries added or removed through the API
//! survive a restart (the seeds' bookkeeping is `Store::seed_blacklist_entry`).

use rusqlite::params;

use super::Embedded;
use crate::ivr::blacklist::Entry;
use crate::store::StoreError;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blacklist (
    tenant     TEXT NOT NULL,
    number     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (tenant, number)
);
";

impl Embedded {
    /// Every stored entry: (tenant, entry).
    pub fn load_blacklist(&self) -> Result<Vec<(String, Entry)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT tenant, number, reason, added_by, expires_at FROM blacklist ORDER BY tenant, number")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Entry {
                        number: r.get(1)?,
                        reason: r.get(2)?,
                        added_by: r.get(3)?,
                        expires_at: r.get(4)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Add or replace an entry (its number already normalised).
    pub fn save_blacklist_entry(&self, tenant: &str, e: &Entry) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO blacklist (tenant, number, reason, added_by, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, e.number, e.reason, e.added_by, e.expires_at],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Remove an entry; whether it was there.
    pub fn delete_blacklist_entry(&self, tenant: &str, number: &str) -> Result<bool, StoreError> {
        self.lock()
            .execute(
                "DELETE FROM blacklist WHERE tenant = ?1 AND number = ?2",
                params![tenant, number],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }
}
