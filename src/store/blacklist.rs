//! The block list on disk (CTI issue §6 "blacklist CRUD persisted in
//! SQLite; the config file seeds them"): entries added or removed through
//! the API survive a restart. A `[[blacklist]]` seed is written once: an
//! admin who deletes a seeded entry does not see it come back at the next
//! start (a `meta` row remembers each seed).

use rusqlite::params;

use super::{Store, StoreError};
use crate::ivr::blacklist::Entry;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blacklist (
    tenant     TEXT NOT NULL,
    number     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (tenant, number)
);
";

impl Store {
    fn blacklist_table(&self) -> Result<(), StoreError> {
        self.lock().execute_batch(SCHEMA).map_err(|e| self.err(e))
    }

    /// Every stored entry: (tenant, entry).
    pub fn load_blacklist(&self) -> Result<Vec<(String, Entry)>, StoreError> {
        self.blacklist_table()?;
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
        self.blacklist_table()?;
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
        self.blacklist_table()?;
        self.lock()
            .execute(
                "DELETE FROM blacklist WHERE tenant = ?1 AND number = ?2",
                params![tenant, number],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Write a configuration seed unless it was written before (even if an
    /// admin removed it since). Returns whether it was written now.
    pub fn seed_blacklist_entry(&self, tenant: &str, e: &Entry) -> Result<bool, StoreError> {
        let key = format!("blacklist-seed:{tenant}:{}", e.number);
        let mut fresh = false;
        self.meta_or_insert(&key, || {
            fresh = true;
            Vec::new()
        })?;
        if fresh {
            self.save_blacklist_entry(tenant, e)?;
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: &str) -> Entry {
        Entry {
            number: n.into(),
            reason: "abuse".into(),
            added_by: "admin".into(),
            expires_at: Some(1_900_000_000),
        }
    }

    #[test]
    fn entries_survive_a_reopen_and_a_removed_seed_stays_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        assert!(s
            .seed_blacklist_entry("default", &entry("13900000000"))
            .expect("seed"));
        s.save_blacklist_entry("b", &entry("95*")).expect("save");
        drop(s);
        let s = Store::open(dir.path()).expect("reopen");
        let all = s.load_blacklist().expect("load");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, "b");
        assert_eq!(all[0].1, entry("95*"));
        assert!(s
            .delete_blacklist_entry("default", "13900000000")
            .expect("delete"));
        assert!(!s
            .delete_blacklist_entry("default", "13900000000")
            .expect("again"));
        assert!(!s
            .seed_blacklist_entry("default", &entry("13900000000"))
            .expect("seed again"));
        assert_eq!(
            s.load_blacklist().expect("load").len(),
            1,
            "the removed seed stays removed"
        );
    }
}
