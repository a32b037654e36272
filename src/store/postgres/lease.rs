//! The ACD leader's lease and the blocks of call ids (docs/ha.md §3): one
//! node at a time runs the ACD for every node; it holds the `acd_lease`
//! row, renewed every second. The database's clock decides expiry, never
//! a node's. Each change of holder raises the epoch; the leader's ACD
//! writes carry the epoch they were made under ([`check_fence`]), so a
//! deposed leader cannot overwrite its successor's state.

use postgres::{Client, Transaction};

use crate::store::{Lease, StoreError};

/// The lease's row name: one ACD for the whole hotline.
const ACD: &str = "acd";

/// Take the lease for `node` if it is free or expired, or renew it if
/// `node` holds it, for `ttl_ms`; then who holds it.
pub fn take(c: &mut Client, node: &str, ttl_ms: i64) -> Result<Lease, postgres::Error> {
    let taken = c.query_opt(
        "INSERT INTO acd_lease (name, holder, epoch, expires_at)
         VALUES ($1, $2, 1, now() + make_interval(secs => $3::float8))
         ON CONFLICT (name) DO UPDATE SET
            epoch = acd_lease.epoch + (acd_lease.holder <> EXCLUDED.holder)::int,
            holder = EXCLUDED.holder,
            expires_at = EXCLUDED.expires_at
         WHERE acd_lease.holder = EXCLUDED.holder OR acd_lease.expires_at < now()
         RETURNING epoch",
        &[&ACD, &node, &(ttl_ms as f64 / 1000.0)],
    )?;
    if let Some(row) = taken {
        return Ok(Lease {
            holder: node.to_string(),
            epoch: row.try_get(0)?,
            held: true,
        });
    }
    let row = c.query_one(
        "SELECT holder, epoch FROM acd_lease WHERE name = $1",
        &[&ACD],
    )?;
    Ok(Lease {
        holder: row.try_get(0)?,
        epoch: row.try_get(1)?,
        held: false,
    })
}

/// Give the lease up now (a draining node), if `node` holds it.
pub fn release(c: &mut Client, node: &str) -> Result<(), postgres::Error> {
    c.execute(
        "UPDATE acd_lease SET expires_at = now() - interval '1 millisecond'
         WHERE name = $1 AND holder = $2",
        &[&ACD, &node],
    )?;
    Ok(())
}

/// A fresh block of call ids for this run of a node: the ids are
/// `block << 32 | n`, so two nodes feeding one ACD never name two calls
/// alike.
pub fn call_id_block(c: &mut Client) -> Result<i64, postgres::Error> {
    c.query_one("SELECT nextval('acd_call_block')", &[])?
        .try_get(0)
}

/// In a writing transaction: `node` still holds the lease at `epoch`
/// (the row stays locked for share until the commit, so a successor's
/// take waits for this write and every later write of ours fails).
pub fn check_fence(
    tx: &mut Transaction<'_>,
    node: &str,
    epoch: i64,
) -> Result<bool, postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM acd_lease WHERE name = $1 AND holder = $2 AND epoch = $3 FOR SHARE",
            &[&ACD, &node, &epoch],
        )?
        .is_some())
}

/// The refusal of a deposed leader's write.
pub fn deposed(node: &str, epoch: i64) -> StoreError {
    StoreError::Deposed {
        node: node.to_string(),
        epoch,
    }
}
