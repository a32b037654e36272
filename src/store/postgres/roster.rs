//! The roster (`roster::seed`'s rows: agents and skill groups, their owner
//! and seed) in PostgreSQL.

use postgres::Client;

use super::announce::announce;
use crate::roster::seed::{Kind, Origin, Row, RowChange};
use crate::store::changes as announced;

/// Every stored row, tombstones included, in (kind, key) order.
pub fn load(c: &mut Client) -> Result<Vec<Row>, postgres::Error> {
    let mut out = Vec::new();
    for r in c.query(
        "SELECT kind, key, body, origin, seed FROM roster ORDER BY kind, key",
        &[],
    )? {
        let (kind, origin): (String, String) = (r.try_get(0)?, r.try_get(3)?);
        // The CHECK constraints keep these valid; skip anything else.
        let (Some(kind), Some(origin)) = (Kind::parse(&kind), Origin::parse(&origin)) else {
            continue;
        };
        out.push(Row {
            kind,
            key: r.try_get(1)?,
            body: r.try_get(2)?,
            origin,
            seed: r.try_get(4)?,
        });
    }
    Ok(out)
}

/// Write `changes` in one transaction, stamped `now` (Unix seconds),
/// announced to the other nodes as `node`.
pub fn save(
    c: &mut Client,
    changes: &[RowChange],
    now: i64,
    node: &str,
) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    for change in changes {
        match change {
            RowChange::Put(r) => tx.execute(
                "INSERT INTO roster (kind, key, body, origin, seed, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (kind, key) DO UPDATE SET body = EXCLUDED.body,
                    origin = EXCLUDED.origin, seed = EXCLUDED.seed,
                    updated_at = EXCLUDED.updated_at",
                &[
                    &r.kind.as_str(),
                    &r.key,
                    &r.body,
                    &r.origin.as_str(),
                    &r.seed,
                    &now,
                ],
            ),
            RowChange::Remove(kind, key) => tx.execute(
                "DELETE FROM roster WHERE kind = $1 AND key = $2",
                &[&kind.as_str(), key],
            ),
        }?;
    }
    if !changes.is_empty() {
        announce(&mut tx, node, announced::ROSTER, "*")?;
    }
    tx.commit()
}
