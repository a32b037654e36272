//! Confirmed SIP legs (`store::dialogs`) in PostgreSQL's `dialog_leg`: what
//! a restarted node, or a surviving one (docs/ha.md §4), needs to send each
//! leg its BYE. Each leg is owned by the node that anchors it: a node reads
//! back only its own, and takes a dead node's over ([`take_over_dead`]).

use postgres::Client;
use tracing::warn;

use crate::sip::journal::{DialogRole, SavedDialog};
use crate::store::DialogChange;

/// Every stored leg; a row that cannot be read back (an unknown role, a
/// route set that is not a JSON list) is reported and skipped.
pub fn load(c: &mut Client, target: &str, node: &str) -> Result<Vec<SavedDialog>, postgres::Error> {
    let rows = c.query(
        "SELECT key, call_id, local_tag, remote_tag, role, local_party, remote_party,
                remote_target, route_set, local_contact, local_cseq
         FROM dialog_leg WHERE owner = $1 ORDER BY call_id",
        &[&node],
    )?;
    Ok(read_rows(rows, target))
}

fn read_rows(rows: Vec<postgres::Row>, target: &str) -> Vec<SavedDialog> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        match read_row(&r, target) {
            Ok(Some(d)) => out.push(d),
            Ok(None) => {}
            Err(e) => warn!(db = %target, error = %e, "dialog_leg row unreadable: skipped"),
        }
    }
    out
}

/// One row; `None` (reported) when its role or route set is not readable.
fn read_row(r: &postgres::Row, target: &str) -> Result<Option<SavedDialog>, postgres::Error> {
    {
        let key: String = r.try_get(0)?;
        let role: String = r.try_get(4)?;
        let Some(role) = DialogRole::parse(&role) else {
            warn!(db = %target, %key, %role, "dialog_leg row with an unknown role skipped");
            return Ok(None);
        };
        let Ok(route_set) = serde_json::from_str::<Vec<String>>(&r.try_get::<_, String>(8)?) else {
            warn!(db = %target, %key, "dialog_leg row whose route_set is not a JSON list skipped");
            return Ok(None);
        };
        Ok(Some(SavedDialog {
            call_id: r.try_get(1)?,
            local_tag: r.try_get(2)?,
            remote_tag: r.try_get(3)?,
            role,
            local_party: r.try_get(5)?,
            remote_party: r.try_get(6)?,
            remote_target: r.try_get(7)?,
            route_set,
            local_contact: r.try_get(9)?,
            local_cseq: r.try_get::<_, i64>(10)?.clamp(0, i64::from(u32::MAX)) as u32,
        }))
    }
}

/// Saves and removals in one transaction, with the statements prepared
/// once per batch.
pub fn apply(c: &mut Client, changes: &[DialogChange], node: &str) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    let upsert = tx.prepare(
        "INSERT INTO dialog_leg (key, call_id, local_tag, remote_tag, role, local_party,
            remote_party, remote_target, route_set, local_contact, local_cseq, owner)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (key) DO UPDATE SET call_id = EXCLUDED.call_id,
            local_tag = EXCLUDED.local_tag, remote_tag = EXCLUDED.remote_tag,
            role = EXCLUDED.role, local_party = EXCLUDED.local_party,
            remote_party = EXCLUDED.remote_party, remote_target = EXCLUDED.remote_target,
            route_set = EXCLUDED.route_set, local_contact = EXCLUDED.local_contact,
            local_cseq = EXCLUDED.local_cseq, owner = EXCLUDED.owner",
    )?;
    let remove = tx.prepare("DELETE FROM dialog_leg WHERE key = $1")?;
    for change in changes {
        match change {
            DialogChange::Save(d) => {
                let routes = serde_json::to_string(&d.route_set).unwrap_or_else(|_| "[]".into());
                tx.execute(
                    &upsert,
                    &[
                        &d.key(),
                        &d.call_id,
                        &d.local_tag,
                        &d.remote_tag,
                        &d.role.as_str(),
                        &d.local_party,
                        &d.remote_party,
                        &d.remote_target,
                        &routes,
                        &d.local_contact,
                        &i64::from(d.local_cseq),
                        &node,
                    ],
                )
            }
            DialogChange::Remove(key) => tx.execute(&remove, &[key]),
        }?;
    }
    tx.commit()
}

/// Remove one leg; whether it was there.
pub fn delete(c: &mut Client, key: &str) -> Result<bool, postgres::Error> {
    Ok(c.execute("DELETE FROM dialog_leg WHERE key = $1", &[&key])? > 0)
}

/// Note that `node` is alive now (the database's clock).
pub fn heartbeat(c: &mut Client, node: &str, http: &str) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO node (id, seen_at, http) VALUES ($1, now(), $2)
         ON CONFLICT (id) DO UPDATE SET seen_at = now(), http = EXCLUDED.http",
        &[&node, &http],
    )?;
    Ok(())
}

/// The HTTP base URLs of the other nodes seen within `alive_secs` (by the
/// database's clock), most recently seen first.
pub fn peers(c: &mut Client, node: &str, alive_secs: i32) -> Result<Vec<String>, postgres::Error> {
    c.query(
        "SELECT http FROM node
          WHERE id <> $1 AND http <> '' AND seen_at > now() - make_interval(secs => $2)
          ORDER BY seen_at DESC",
        &[&node, &f64::from(alive_secs)],
    )?
    .into_iter()
    .map(|r| r.try_get(0))
    .collect()
}

/// Give `node` the legs of every other node not seen for `dead_after_secs`
/// (by the database's clock, never a node's): one transaction, the dead
/// nodes' rows locked so two survivors never take the same legs, then
/// deleted so each death is reported once. Returns each dead node with the
/// legs taken from it (maybe none).
pub fn take_over_dead(
    c: &mut Client,
    node: &str,
    dead_after_secs: i32,
    target: &str,
) -> Result<Vec<(String, Vec<SavedDialog>)>, postgres::Error> {
    let mut tx = c.transaction()?;
    let dead: Vec<String> = tx
        .query(
            "SELECT id FROM node
             WHERE id <> $1 AND seen_at < now() - make_interval(secs => $2)
             FOR UPDATE SKIP LOCKED",
            &[&node, &f64::from(dead_after_secs)],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut taken = Vec::new();
    for from in dead {
        let rows = tx.query(
            "UPDATE dialog_leg SET owner = $1 WHERE owner = $2
             RETURNING key, call_id, local_tag, remote_tag, role, local_party, remote_party,
                       remote_target, route_set, local_contact, local_cseq",
            &[&node, &from],
        )?;
        let legs = read_rows(rows, target);
        // Reported once: a node that comes back writes its row again.
        tx.execute("DELETE FROM node WHERE id = $1", &[&from])?;
        taken.push((from, legs));
    }
    tx.commit()?;
    Ok(taken)
}
