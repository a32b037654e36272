//! The block list (tenant, number, reason, who, until when) in PostgreSQL.

use postgres::Client;

use super::announce::announce;
use crate::ivr::blacklist::Entry;
use crate::store::changes;

/// Every entry: (tenant, entry), in (tenant, number) order.
pub fn load(c: &mut Client) -> Result<Vec<(String, Entry)>, postgres::Error> {
    c.query(
        "SELECT tenant, number, reason, added_by, expires_at FROM blacklist
         ORDER BY tenant, number",
        &[],
    )?
    .into_iter()
    .map(|r| {
        Ok((
            r.try_get(0)?,
            Entry {
                number: r.try_get(1)?,
                reason: r.try_get(2)?,
                added_by: r.try_get(3)?,
                expires_at: r.try_get(4)?,
            },
        ))
    })
    .collect()
}

/// Add or replace an entry, announced to the other nodes as `node`.
pub fn save(c: &mut Client, tenant: &str, e: &Entry, node: &str) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    tx.execute(
        "INSERT INTO blacklist (tenant, number, reason, added_by, expires_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant, number) DO UPDATE SET reason = EXCLUDED.reason,
            added_by = EXCLUDED.added_by, expires_at = EXCLUDED.expires_at",
        &[&tenant, &e.number, &e.reason, &e.added_by, &e.expires_at],
    )?;
    announce(&mut tx, node, changes::BLACKLIST, tenant)?;
    tx.commit()
}

/// Remove an entry (announced as `node`); whether it was there.
pub fn delete(
    c: &mut Client,
    tenant: &str,
    number: &str,
    node: &str,
) -> Result<bool, postgres::Error> {
    let mut tx = c.transaction()?;
    let gone = tx.execute(
        "DELETE FROM blacklist WHERE tenant = $1 AND number = $2",
        &[&tenant, &number],
    )? > 0;
    if gone {
        announce(&mut tx, node, changes::BLACKLIST, tenant)?;
    }
    tx.commit()?;
    Ok(gone)
}
