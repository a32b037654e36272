//! Announcing a change to the other nodes (`store::changes`): one
//! `pg_notify` inside the writing transaction, so it is heard when (and
//! only if) the change commits.

use postgres::GenericClient;

use crate::store::changes;

/// Announce that `node` changed `kind` rows keyed `key`.
pub fn announce<C: GenericClient>(
    c: &mut C,
    node: &str,
    kind: &str,
    key: &str,
) -> Result<(), postgres::Error> {
    let payload = changes::payload(node, kind, key);
    c.execute("SELECT pg_notify($1, $2)", &[&changes::CHANNEL, &payload])?;
    Ok(())
}
